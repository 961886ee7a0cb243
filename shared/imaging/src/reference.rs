//! The slow, obviously-correct path: everything with the `image` crate, at full resolution.

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};

use crate::common::{check_input, decode_other, flatten_on_white};
use crate::{Config, ImageError, Processed, Rendition};

/// Processes a photo with the `image` crate alone: full decode, orientation applied to
/// the full-resolution image, integer centre crop to 4:5, a Lanczos3 resize from the crop
/// for every rendition, and `image`'s own JPEG encoder.
///
/// Several times slower than [`Processor::process`](crate::Processor::process); used as
/// the yardstick that the fast path is tested and benchmarked against.
pub fn process_reference(config: &Config, bytes: &[u8]) -> Result<Processed, ImageError> {
    let (format, _) = check_input(config, bytes)?;
    let (mut img, orientation) = decode_other(format, bytes, &config.limits)?;
    if let Some(o) = Orientation::from_exif(orientation as u8) {
        img.apply_orientation(o);
    }
    let (source_width, source_height) = (img.width(), img.height());
    let (rgb, w, h) = flatten_on_white(img);
    let rgb = RgbImage::from_raw(w, h, rgb)
        .ok_or_else(|| ImageError::Internal("decoded buffer has the wrong size".into()))?;

    // Largest centred 4:5 rectangle, in whole pixels.
    let (cw, ch) = if u64::from(w) * 5 > u64::from(h) * 4 {
        (((u64::from(h) * 4 + 2) / 5).max(1) as u32, h)
    } else {
        (
            w,
            ((u64::from(w) * 5 + 2) / 4).clamp(1, u64::from(h)) as u32,
        )
    };
    let cropped = imageops::crop_imm(&rgb, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image();
    drop(rgb);

    let mut renditions = Vec::with_capacity(config.renditions.len());
    for spec in &config.renditions {
        let resized = imageops::resize(&cropped, spec.width, spec.height, FilterType::Lanczos3);
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, config.jpeg_quality.clamp(1, 100))
            .encode_image(&DynamicImage::ImageRgb8(resized))
            .map_err(|e| ImageError::Internal(format!("JPEG encoder: {e}")))?;
        renditions.push(Rendition {
            name: spec.name.clone(),
            width: spec.width,
            height: spec.height,
            jpeg,
        });
    }
    Ok(Processed {
        format,
        source_width,
        source_height,
        orientation,
        renditions,
    })
}
