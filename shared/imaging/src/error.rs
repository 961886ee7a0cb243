//! Errors, worded for the school admins who read them in a job log.

use crate::Format;

/// Why a photo could not be turned into renditions.
///
/// The `Display` text is shown verbatim to people, so every message says what is wrong
/// with the file in plain words.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file has no bytes at all.
    #[error("empty file")]
    Empty,
    /// The file is not an image of any kind we recognise (a PDF, a Word file, a web page...).
    #[error("not an image: starts with {starts_with}")]
    NotAnImage {
        /// The first few bytes, printable ASCII as is, anything else escaped as `\xNN`.
        starts_with: String,
    },
    /// An image, but in a format we do not take (BMP, HEIC, AVIF, ...).
    #[error("unsupported image format: {format}")]
    Unsupported {
        /// Human name of the format, e.g. `"HEIC"`.
        format: &'static str,
    },
    /// The file ends before the image data does (an interrupted upload or copy).
    #[error("truncated {format}")]
    Truncated {
        /// Format of the file.
        format: Format,
    },
    /// The file is damaged in some other way.
    #[error("corrupt {format}: {detail}")]
    Corrupt {
        /// Format of the file.
        format: Format,
        /// Short technical detail from the decoder.
        detail: String,
    },
    /// A side of the image is longer than [`Limits::max_dimension`](crate::Limits).
    #[error("{width}×{height} exceeds the {limit} px limit")]
    TooLarge {
        /// Width as displayed.
        width: u32,
        /// Height as displayed.
        height: u32,
        /// The per-side limit in pixels.
        limit: u32,
    },
    /// The image has more pixels than [`Limits::max_pixels`](crate::Limits).
    #[error(
        "too many pixels: {width}×{height} is {} megapixels, which exceeds the {} megapixel limit",
        megapixels(u64::from(*width) * u64::from(*height)),
        megapixels(*limit)
    )]
    TooManyPixels {
        /// Width as displayed.
        width: u32,
        /// Height as displayed.
        height: u32,
        /// The limit in pixels.
        limit: u64,
    },
    /// The image is smaller than [`Limits::min_width`](crate::Limits) ×
    /// [`Limits::min_height`](crate::Limits) as displayed.
    #[error(
        "the image is {width}×{height} pixels; a portrait needs at least {min_width}×{min_height}"
    )]
    TooSmall {
        /// Width as displayed.
        width: u32,
        /// Height as displayed.
        height: u32,
        /// Smallest accepted width.
        min_width: u32,
        /// Smallest accepted height.
        min_height: u32,
    },
    /// The image's shape is outside [`Limits::min_aspect`](crate::Limits) to
    /// [`Limits::max_aspect`](crate::Limits).
    #[error(
        "the image is {width}×{height}, {}; a portrait is {min_aspect} to {max_aspect} as wide \
         as high",
        shape(*width, *height)
    )]
    NotPortrait {
        /// Width as displayed.
        width: u32,
        /// Height as displayed.
        height: u32,
        /// Narrowest accepted width ÷ height.
        min_aspect: f64,
        /// Widest accepted width ÷ height.
        max_aspect: f64,
    },
    /// The file is bigger than [`Limits::max_input_bytes`](crate::Limits).
    #[error("{} exceeds the {} file limit", megabytes(*bytes), megabytes(*limit))]
    InputTooLarge {
        /// Size of the file in bytes.
        bytes: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// Something went wrong on our side (an encoder or resizer failure), not in the file.
    #[error("internal error while processing the image: {0}")]
    Internal(String),
}

impl ImageError {
    /// True when the file itself is at fault (re-uploading the same file will fail again);
    /// false for [`ImageError::Internal`], which is worth retrying or reporting.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, ImageError::Internal(_))
    }
}

/// `1.5` → `"1.5"`, `50.0` → `"50"`.
fn one_decimal(value: f64) -> String {
    let text = format!("{value:.1}");
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_owned(),
        None => text,
    }
}

/// Sizes as people read them off a file manager (1 MB = 1024 × 1024 bytes).
fn megabytes(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KB * KB {
        format!("{} MB", one_decimal(b / (KB * KB)))
    } else if b >= KB {
        format!("{} KB", one_decimal(b / KB))
    } else {
        format!("{bytes} bytes")
    }
}

fn megapixels(pixels: u64) -> String {
    one_decimal(pixels as f64 / 1_000_000.0)
}

/// `7999.0 wide for 1 high`, or `1 wide for 7999.0 high` for a tall one: a ratio below 1 would
/// round to nothing.
fn shape(width: u32, height: u32) -> String {
    let (width, height) = (f64::from(width.max(1)), f64::from(height.max(1)));
    if width >= height {
        format!("{:.1} wide for 1 high", width / height)
    } else {
        format!("1 wide for {:.1} high", height / width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_well() {
        let e = ImageError::InputTooLarge {
            bytes: 63_124_275,
            limit: 50 * 1024 * 1024,
        };
        assert_eq!(e.to_string(), "60.2 MB exceeds the 50 MB file limit");
        let e = ImageError::TooLarge {
            width: 12000,
            height: 9000,
            limit: 8000,
        };
        assert_eq!(e.to_string(), "12000×9000 exceeds the 8000 px limit");
        let e = ImageError::TooManyPixels {
            width: 7500,
            height: 7000,
            limit: 50_000_000,
        };
        assert_eq!(
            e.to_string(),
            "too many pixels: 7500×7000 is 52.5 megapixels, which exceeds the 50 megapixel limit"
        );
        assert!(e.is_input_error());
        assert!(!ImageError::Internal("x".into()).is_input_error());
        let e = ImageError::Corrupt {
            format: Format::Png,
            detail: "bad CRC".into(),
        };
        assert_eq!(e.to_string(), "corrupt PNG: bad CRC");
        let e = ImageError::TooSmall {
            width: 2,
            height: 1,
            min_width: 120,
            min_height: 150,
        };
        assert_eq!(
            e.to_string(),
            "the image is 2×1 pixels; a portrait needs at least 120×150"
        );
        let e = ImageError::NotPortrait {
            width: 7999,
            height: 1,
            min_aspect: 0.5,
            max_aspect: 1.5,
        };
        assert_eq!(
            e.to_string(),
            "the image is 7999×1, 7999.0 wide for 1 high; a portrait is 0.5 to 1.5 as wide as high"
        );
        let tall = ImageError::NotPortrait {
            width: 1,
            height: 7999,
            min_aspect: 0.5,
            max_aspect: 1.5,
        };
        assert_eq!(
            tall.to_string(),
            "the image is 1×7999, 1 wide for 7999.0 high; a portrait is 0.5 to 1.5 as wide as high"
        );
        assert_eq!(
            ImageError::Truncated {
                format: Format::Jpeg
            }
            .to_string(),
            "truncated JPEG"
        );
    }
}
