//! Photo-like test images: smooth gradients with grain (never flat colour, which encoders
//! flatter), in every accepted format, plus EXIF and broken files.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// Deterministic grain, so tests are repeatable.
fn grain(x: u32, y: u32, seed: u32) -> i32 {
    let mut h = x.wrapping_mul(374_761_393)
        ^ y.wrapping_mul(668_265_263)
        ^ seed.wrapping_mul(2_246_822_519);
    h = (h ^ (h >> 13)).wrapping_mul(1_274_126_177);
    ((h >> 24) as i32 % 17) - 8
}

fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// A portrait-like picture: a warm gradient with grain.
pub fn photo(width: u32, height: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let g = grain(x, y, seed);
        let fx = x * 255 / width.max(1);
        let fy = y * 255 / height.max(1);
        Rgb([
            clamp(120 + (fx as i32) / 3 + g),
            clamp(90 + (fy as i32) / 3 + g),
            clamp(70 + ((fx + fy) as i32) / 6 + g),
        ])
    })
}

/// Left half red, right half blue (with grain): shows where a rotation put things.
pub fn halves(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let g = grain(x, y, 7);
        if x < width / 2 {
            Rgb([clamp(220 + g), clamp(30 + g), clamp(30 + g)])
        } else {
            Rgb([clamp(30 + g), clamp(40 + g), clamp(220 + g)])
        }
    })
}

pub fn encode(image: DynamicImage, format: ImageFormat) -> anyhow::Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format)?;
    Ok(out.into_inner())
}

pub fn jpeg(image: RgbImage) -> anyhow::Result<Vec<u8>> {
    encode(DynamicImage::ImageRgb8(image), ImageFormat::Jpeg)
}

/// A JPEG at the given quality (photographers deliver q90 or so).
pub fn jpeg_q(image: RgbImage, quality: u8) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(&image)?;
    Ok(out)
}

/// A PNG whose left half is fully transparent.
pub fn png_with_alpha(width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    let base = photo(width, height, 3);
    let image = RgbaImage::from_fn(width, height, |x, y| {
        let Rgb([r, g, b]) = *base.get_pixel(x, y);
        Rgba([r, g, b, if x < width / 2 { 0 } else { 255 }])
    });
    encode(DynamicImage::ImageRgba8(image), ImageFormat::Png)
}

/// Inserts an EXIF APP1 segment with `orientation` and a GPS position right after the JPEG's SOI.
pub fn with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff: Vec<u8> = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    // IFD0: Orientation, GPS IFD pointer.
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&u32::from(orientation).to_le_bytes());
    let gps_offset: u32 = 8 + 2 + 2 * 12 + 4;
    tiff.extend_from_slice(&0x8825u16.to_le_bytes());
    tiff.extend_from_slice(&4u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&gps_offset.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD: latitude reference "N" (enough to prove GPS data is dropped).
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0001u16.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&2u32.to_le_bytes());
    tiff.extend_from_slice(b"N\0\0\0");
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let length = u16::try_from(payload.len() + 2).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(jpeg.len() + payload.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The JPEG markers (second byte) before the image data.
pub fn jpeg_markers(jpeg: &[u8]) -> Vec<u8> {
    let mut markers = Vec::new();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xff {
        let marker = jpeg[i + 1];
        markers.push(marker);
        if marker == 0xda {
            break;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        i += 2 + len;
    }
    markers
}

/// The average colour of a square around (x, y).
pub fn average(image: &RgbImage, x: u32, y: u32, radius: u32) -> [u32; 3] {
    let mut sum = [0u32; 3];
    let mut n = 0;
    for yy in y.saturating_sub(radius)..(y + radius).min(image.height()) {
        for xx in x.saturating_sub(radius)..(x + radius).min(image.width()) {
            let p = image.get_pixel(xx, yy);
            for c in 0..3 {
                sum[c] += u32::from(p[c]);
            }
            n += 1;
        }
    }
    sum.map(|s| s / n.max(1))
}
