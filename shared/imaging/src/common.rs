//! Pieces shared by the fast and the reference path.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder};

use crate::jpeg::{self, JpegInfo};
use crate::{Config, Format, ImageError, Limits, heif, sniff};

/// Checks the file against the limits and identifies it, before decoding anything.
///
/// For JPEGs this also walks the markers, so truncated files and oversized frames are
/// refused here with the same message on both paths.
pub(crate) fn check_input(
    config: &Config,
    bytes: &[u8],
) -> Result<(Format, Option<JpegInfo>), ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if len > config.limits.max_input_bytes {
        return Err(ImageError::InputTooLarge {
            bytes: len,
            limit: config.limits.max_input_bytes,
        });
    }
    check_config(config)?;
    let format = sniff(bytes)?;
    if format != Format::Jpeg {
        if let Some((w, h)) = header_dimensions(format, bytes) {
            check_dimensions(&config.limits, w, h)?;
            // The orientation is not known yet: refuse here only what no turn makes a
            // portrait; the decoder's header is checked again once it is.
            if let (Err(error), Err(_)) = (
                check_portrait(&config.limits, w, h),
                check_portrait(&config.limits, h, w),
            ) {
                return Err(error);
            }
        }
        return Ok((format, None));
    }
    let info = jpeg::parse(bytes)?;
    let (w, h) = displayed(info.width, info.height, info.orientation);
    check_dimensions(&config.limits, w, h)?;
    check_portrait(&config.limits, w, h)?;
    if info.precision != 8 {
        return Err(ImageError::Unsupported {
            format: "JPEG with more than 8 bits per sample",
        });
    }
    Ok((format, Some(info)))
}

/// Image size from the fixed-position header fields of PNG, GIF and WebP, read before
/// any decoder is started. TIFF has no fixed header and is checked once its decoder has
/// read the first directory; HEIC once libheif has read the item properties, before it
/// decodes anything.
fn header_dimensions(format: Format, bytes: &[u8]) -> Option<(u32, u32)> {
    let be32 = |at: usize| -> Option<u32> {
        let b = bytes.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let le16 = |at: usize| -> Option<u32> {
        let b = bytes.get(at..at + 2)?;
        Some(u32::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let le24 = |at: usize| -> Option<u32> {
        let b = bytes.get(at..at + 3)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    };
    match format {
        Format::Png if bytes.get(12..16) == Some(b"IHDR") => Some((be32(16)?, be32(20)?)),
        Format::Gif => Some((le16(6)?, le16(8)?)),
        Format::Webp => match bytes.get(12..16)? {
            b"VP8X" => Some((le24(24)? + 1, le24(27)? + 1)),
            b"VP8L" if bytes.get(20) == Some(&0x2F) => {
                let bits = u32::from_le_bytes(bytes.get(21..25)?.try_into().ok()?);
                Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
            }
            b"VP8 " => Some((le16(26)? & 0x3FFF, le16(28)? & 0x3FFF)),
            _ => None,
        },
        _ => None,
    }
}

fn check_config(config: &Config) -> Result<(), ImageError> {
    for spec in &config.renditions {
        if spec.width == 0 || spec.height == 0 || spec.width > 10_000 || spec.height > 10_000 {
            return Err(ImageError::Internal(format!(
                "rendition {:?} has an unusable size {}×{}",
                spec.name, spec.width, spec.height
            )));
        }
    }
    Ok(())
}

/// Width and height as displayed once `orientation` is applied.
pub(crate) fn displayed(width: u32, height: u32, orientation: u16) -> (u32, u32) {
    if transposes(orientation) {
        (height, width)
    } else {
        (width, height)
    }
}

/// Orientations 5..=8 swap width and height.
pub(crate) fn transposes(orientation: u16) -> bool {
    matches!(orientation, 5..=8)
}

pub(crate) fn check_dimensions(limits: &Limits, width: u32, height: u32) -> Result<(), ImageError> {
    if width > limits.max_dimension || height > limits.max_dimension {
        return Err(ImageError::TooLarge {
            width,
            height,
            limit: limits.max_dimension,
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

/// Refuses an image as displayed that cannot be an ID portrait: too small on both sides, the
/// wrong shape (a strip of pixels), or too small on one side.
pub(crate) fn check_portrait(limits: &Limits, width: u32, height: u32) -> Result<(), ImageError> {
    let too_small = ImageError::TooSmall {
        width,
        height,
        min_width: limits.min_width,
        min_height: limits.min_height,
    };
    let (narrow, short) = (width < limits.min_width, height < limits.min_height);
    // A tiny image is too small whatever its shape; a long strip is the wrong shape first.
    if narrow && short {
        return Err(too_small);
    }
    let aspect = f64::from(width) / f64::from(height.max(1));
    if height == 0 || aspect < limits.min_aspect || aspect > limits.max_aspect {
        return Err(ImageError::NotPortrait {
            width,
            height,
            min_aspect: limits.min_aspect,
            max_aspect: limits.max_aspect,
        });
    }
    if narrow || short {
        return Err(too_small);
    }
    Ok(())
}

/// Decoder memory limits for the `image` crate derived from ours.
fn image_limits(limits: &Limits) -> image::Limits {
    let mut out = image::Limits::default();
    // Width and height are checked by us against the header, with a clearer message.
    out.max_image_width = None;
    out.max_image_height = None;
    // Room for the largest allowed image at 16 bits per RGBA channel, plus decoder overhead.
    out.max_alloc = Some(
        limits
            .max_pixels
            .saturating_mul(8)
            .saturating_add(64 * 1024 * 1024),
    );
    out
}

/// Decodes anything but the JPEG fast path: HEIC and AVIF with libheif, the rest with the `image`
/// crate, each after checking the size the file declares against the limits. Returns the
/// image as stored and the EXIF orientation (1..=8) still to be applied to it.
pub(crate) fn decode_other(
    format: Format,
    bytes: &[u8],
    limits: &Limits,
) -> Result<(DynamicImage, u16), ImageError> {
    match format.image_format() {
        Some(image_format) => decode_with_image(format, image_format, bytes, limits),
        // libheif hands back the pixels already upright: nothing is left to turn.
        None => Ok((heif::decode(format, bytes, limits)?, 1)),
    }
}

/// Decodes with the `image` crate after checking the header's size against the limits.
/// Returns the image as stored and its EXIF orientation (1..=8).
fn decode_with_image(
    format: Format,
    image_format: image::ImageFormat,
    bytes: &[u8],
    limits: &Limits,
) -> Result<(DynamicImage, u16), ImageError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format);
    reader.limits(image_limits(limits));
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(format, e))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(ImageError::Corrupt {
            format,
            detail: format!("image size is {w}×{h}"),
        });
    }
    // An unreadable orientation is not worth refusing the photo for.
    let orientation = decoder
        .orientation()
        .map(|o| u16::from(o.to_exif()))
        .unwrap_or(1);
    let (dw, dh) = displayed(w, h, orientation);
    check_dimensions(limits, dw, dh)?;
    check_portrait(limits, dw, dh)?;
    let img = DynamicImage::from_decoder(decoder).map_err(|e| map_image_error(format, e))?;
    Ok((img, orientation))
}

/// Turns an `image` error into one of ours.
pub(crate) fn map_image_error(format: Format, err: image::ImageError) -> ImageError {
    use image::error::ImageError as E;
    match err {
        E::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated { format }
        }
        E::IoError(e) => ImageError::Corrupt {
            format,
            detail: short(&e.to_string()),
        },
        E::Decoding(d) => {
            let detail = match std::error::Error::source(&d) {
                Some(source) => source.to_string(),
                None => d.to_string(),
            };
            let lower = detail.to_ascii_lowercase();
            if lower.contains("unexpected eof")
                || lower.contains("unexpected end")
                || lower.contains("end of file")
                || lower.contains("no more data")
            {
                ImageError::Truncated { format }
            } else {
                ImageError::Corrupt {
                    format,
                    detail: short(&detail),
                }
            }
        }
        E::Limits(_) => ImageError::Corrupt {
            format,
            detail: "decoding it would need more memory than allowed".to_owned(),
        },
        E::Unsupported(_) => ImageError::Unsupported {
            format: match format {
                Format::Jpeg => "JPEG variant (coding process or colour layout)",
                Format::Png => "PNG variant",
                Format::Gif => "GIF variant",
                Format::Tiff => "TIFF variant (compression or colour layout)",
                Format::Webp => "WebP variant",
                Format::Heic => "HEIC variant",
                Format::Avif => "AVIF variant",
            },
        },
        other => ImageError::Internal(other.to_string()),
    }
}

/// Keeps decoder details to one short line.
pub(crate) fn short(detail: &str) -> String {
    let line = detail.lines().next().unwrap_or("").trim();
    if line.chars().count() > 120 {
        let cut: String = line.chars().take(117).collect();
        format!("{cut}...")
    } else {
        line.to_owned()
    }
}

/// Converts any decoded image to packed RGB8, compositing transparency onto white.
pub(crate) fn flatten_on_white(img: DynamicImage) -> (Vec<u8>, u32, u32) {
    let (w, h) = (img.width(), img.height());
    if !img.color().has_alpha() {
        return (img.into_rgb8().into_raw(), w, h);
    }
    let rgba = img.into_rgba8().into_raw();
    let mut rgb = Vec::with_capacity(rgba.len() / 4 * 3);
    for px in rgba.chunks_exact(4) {
        let a = u32::from(px[3]);
        for &c in &px[..3] {
            let v = (u32::from(c) * a + 255 * (255 - a) + 127) / 255;
            rgb.push(v as u8);
        }
    }
    (rgb, w, h)
}

/// The largest rectangle of shape `aspect_w:aspect_h` centred in a `width`×`height` image:
/// `(left, top, width, height)`, fractional.
pub(crate) fn centre_crop(width: f64, height: f64, aspect_w: f64, aspect_h: f64) -> [f64; 4] {
    let (cw, ch) = if width * aspect_h > height * aspect_w {
        (height * aspect_w / aspect_h, height)
    } else {
        (width, width * aspect_h / aspect_w)
    };
    [(width - cw) / 2.0, (height - ch) / 2.0, cw, ch]
}

/// Applies EXIF `orientation` to a packed image of `N`-byte pixels, writing the upright
/// image into `dst` (which must hold exactly width × height pixels). Returns the new
/// width and height.
pub(crate) fn orient<const N: usize>(
    src: &[u8],
    width: usize,
    height: usize,
    orientation: u16,
    dst: &mut [u8],
) -> (usize, usize) {
    let (w, h) = (width, height);
    let (ow, oh) = if transposes(orientation) {
        (h, w)
    } else {
        (w, h)
    };
    debug_assert_eq!(dst.len(), ow * oh * N);
    for (y, row) in dst.chunks_exact_mut(ow * N).enumerate() {
        for (x, px) in row.chunks_exact_mut(N).enumerate() {
            let (sx, sy) = match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                8 => (w - 1 - y, x),
                _ => (x, y),
            };
            let s = (sy * w + sx) * N;
            px.copy_from_slice(&src[s..s + N]);
        }
    }
    (ow, oh)
}
