//! HEIC/HEIF photos (what iPhones write) through the system libheif and its HEVC decoder
//! (libde265).
//!
//! Orientation: a HEIF file carries its rotation and mirroring as `irot`/`imir` properties
//! of the image item, and libheif applies them (and any `clap` crop) while decoding, so
//! the pixels come back upright. The EXIF block that iPhones also store often still says
//! "orientation 6" for the same photo: by the HEIF rules it only describes the pixels
//! before those transformations, and turning the decoded image by it as well would rotate
//! the photo twice. So no EXIF orientation is applied to HEIC, and it is reported as 1.
//!
//! Metadata: only the pixels leave this module; EXIF, XMP, depth maps, thumbnails and
//! colour profiles stay behind in the file, and the renditions are fresh JPEGs.

use std::sync::OnceLock;

use image::{DynamicImage, RgbImage, RgbaImage};
use libheif_rs::{
    ColorSpace, HeifContext, HeifError, HeifErrorCode, HeifErrorSubCode, LibHeif, RgbChroma,
};

use crate::common::{check_dimensions, check_portrait, short};
use crate::{Format, ImageError, Limits};

/// libheif's global state, initialised once and kept for the life of the process.
fn libheif() -> &'static LibHeif {
    static LIBHEIF: OnceLock<LibHeif> = OnceLock::new();
    LIBHEIF.get_or_init(LibHeif::new)
}

/// Decodes the primary image of a HEIF file to 8-bit RGB (RGBA when it has alpha), upright;
/// 10- and 12-bit photos (newer iPhones' HDR) come out as 8 bits like everything else.
///
/// The size is read from the file's item properties and checked against the limits before
/// anything is decoded: both the image's size and the coded size (`ispe`), which is what
/// the decoder allocates and may be larger when a `clap` crop is applied.
pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<DynamicImage, ImageError> {
    let mut context = HeifContext::read_from_bytes(bytes).map_err(|e| heif_error(e, bytes))?;
    // A processor runs on one worker thread among several; HEIC grids (an iPhone photo is
    // 48 tiles of 512×512) would otherwise be decoded on threads of libheif's own.
    context.set_max_decoding_threads(1);
    let handle = context
        .primary_image_handle()
        .map_err(|e| heif_error(e, bytes))?;
    let (w, h) = (handle.width(), handle.height());
    if w == 0 || h == 0 {
        return Err(ImageError::Corrupt {
            format: Format::Heic,
            detail: format!("image size is {w}×{h}"),
        });
    }
    check_dimensions(limits, w, h)?;
    let (coded_w, coded_h) = (handle.ispe_width(), handle.ispe_height());
    if let (Ok(cw), Ok(ch)) = (u32::try_from(coded_w), u32::try_from(coded_h)) {
        check_dimensions(limits, cw, ch)?;
    }
    // libheif 1.15 reports the size as stored, before any rotation (the sides and pixel
    // count above do not depend on it); a turn of it must be a portrait, and the decoded
    // size is checked exactly below, as displayed.
    if let (Err(error), Err(_)) = (check_portrait(limits, w, h), check_portrait(limits, h, w)) {
        return Err(error);
    }

    let alpha = handle.has_alpha_channel();
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    // No decoding options are passed: libheif's defaults apply irot/imir/clap, which is the
    // orientation contract above, and 8-bit interleaved RGB(A) is what libheif converts
    // 10- and 12-bit images to when asked for it. (libheif-rs 0.20 frees options it is given
    // before libheif reads them; the fix, in 1.0.1, needs libheif 1.17.)
    let image = libheif()
        .decode(&handle, ColorSpace::Rgb(chroma), None)
        .map_err(|e| heif_error(e, bytes))?;
    let channels: usize = if alpha { 4 } else { 3 };
    let plane = image
        .planes()
        .interleaved
        .ok_or_else(|| corrupt("the decoder returned no RGB image".into()))?;
    if usize::from(plane.storage_bits_per_pixel) != channels * 8 {
        return Err(ImageError::Internal(format!(
            "libheif returned {} bits per pixel for {channels} 8-bit channels",
            plane.storage_bits_per_pixel
        )));
    }
    let (pw, ph) = (plane.width, plane.height);
    check_dimensions(limits, pw, ph)?;
    check_portrait(limits, pw, ph)?;
    let row = pw as usize * channels;
    let rows_end = plane.stride * (ph as usize).saturating_sub(1) + row;
    if plane.stride < row || plane.data.len() < rows_end {
        return Err(ImageError::Internal(format!(
            "libheif returned a {pw}×{ph} plane with stride {} and {} bytes",
            plane.stride,
            plane.data.len()
        )));
    }
    let mut pixels = Vec::with_capacity(row * ph as usize);
    for y in 0..ph as usize {
        pixels.extend_from_slice(&plane.data[y * plane.stride..y * plane.stride + row]);
    }
    let size_error = || ImageError::Internal("decoded HEIC buffer has the wrong size".into());
    Ok(if alpha {
        DynamicImage::ImageRgba8(RgbaImage::from_raw(pw, ph, pixels).ok_or_else(size_error)?)
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(pw, ph, pixels).ok_or_else(size_error)?)
    })
}

fn corrupt(detail: String) -> ImageError {
    ImageError::Corrupt {
        format: Format::Heic,
        detail,
    }
}

/// Whether a top-level box of the file says it is longer than what is left of the file: an
/// interrupted upload or copy, which libheif reports as whatever it then missed.
fn cut_short(bytes: &[u8]) -> bool {
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at + 8) {
        let size = u64::from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let size = match size {
            // To the end of the file.
            0 => return false,
            // A 64-bit size follows the type.
            1 => match bytes.get(at + 8..at + 16) {
                Some(large) => u64::from_be_bytes(large.try_into().unwrap_or_default()),
                None => return true,
            },
            size => size,
        };
        let Some(next) = usize::try_from(size)
            .ok()
            .filter(|&s| s >= 8)
            .and_then(|s| at.checked_add(s))
        else {
            return false;
        };
        if next > bytes.len() {
            return true;
        }
        at = next;
    }
    at < bytes.len()
}

/// Turns a libheif error into one of ours, keeping libheif's own words as the detail.
fn heif_error(err: HeifError, bytes: &[u8]) -> ImageError {
    match (err.code, err.sub_code) {
        (_, HeifErrorSubCode::EndOfData) => ImageError::Truncated {
            format: Format::Heic,
        },
        _ if cut_short(bytes) => ImageError::Truncated {
            format: Format::Heic,
        },
        (HeifErrorCode::UnsupportedFeature, HeifErrorSubCode::UnsupportedCodec)
        | (HeifErrorCode::DecoderPluginError, HeifErrorSubCode::UnsupportedCodec) => {
            ImageError::Unsupported {
                format: "HEIF coded with a codec this installation's libheif cannot decode",
            }
        }
        (HeifErrorCode::MemoryAllocationError, _)
        | (_, HeifErrorSubCode::SecurityLimitExceeded) => {
            corrupt("decoding it would need more memory than allowed".to_owned())
        }
        (HeifErrorCode::ContextCreateFailed, _) => {
            ImageError::Internal(format!("libheif: {}", short(&err.message)))
        }
        _ => {
            let message = err.message.trim();
            corrupt(short(if message.is_empty() {
                "libheif could not decode it"
            } else {
                message
            }))
        }
    }
}
