//! Turns school ID photos into clean portrait renditions.
//!
//! Every supported image (JPEG, PNG, GIF, TIFF, WebP, HEIC, AVIF — recognised by magic
//! bytes, never by name) is turned upright according to its EXIF orientation (HEIC and
//! AVIF: their own rotation and mirroring, applied by libheif), centre-cropped to the 4:5 portrait shape,
//! resized to each configured rendition's exact size, flattened onto white, and encoded as
//! a baseline 4:2:0 JPEG that carries no metadata at all.
//!
//! Two paths produce the same result:
//! - [`Processor`], the fast path the service runs: libjpeg-turbo decoding with DCT
//!   scaling, SIMD resizing, orientation applied to the small result, libjpeg-turbo
//!   encoding, all state reused between photos;
//! - [`process_reference`], a slow path built from the `image` crate alone, kept as an
//!   obviously-correct yardstick for tests and benchmarks.

mod common;
mod error;
mod fast;
mod heif;
mod jpeg;
mod reference;
mod sniff;

pub use error::ImageError;
pub use fast::{DecodePlan, Processor};
pub use reference::process_reference;
pub use sniff::sniff;

/// Limits on what a single upload may be, checked before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest accepted file, in bytes.
    pub max_input_bytes: u64,
    /// Longest accepted side, in pixels.
    pub max_dimension: u32,
    /// Most pixels (width × height) accepted.
    pub max_pixels: u64,
    /// Narrowest accepted image as displayed, in pixels: a smaller one cannot be an ID portrait.
    pub min_width: u32,
    /// Shortest accepted image as displayed, in pixels.
    pub min_height: u32,
    /// Accepted shapes as displayed, width ÷ height, from `min_aspect` to `max_aspect`: a strip
    /// of pixels is not a portrait, however many it has.
    pub min_aspect: f64,
    /// See `min_aspect`.
    pub max_aspect: f64,
}

impl Default for Limits {
    /// 50 MiB, 8000 px per side, 50 megapixels; at least 120×150, 0.5 to 1.5 as wide as high.
    fn default() -> Self {
        Limits {
            max_input_bytes: 50 * 1024 * 1024,
            max_dimension: 8000,
            max_pixels: 50_000_000,
            min_width: 120,
            min_height: 150,
            min_aspect: 0.5,
            max_aspect: 1.5,
        }
    }
}

/// One output size. Renditions are expected to be 4:5 portraits like the crop; any other
/// shape is filled exactly (stretched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionSpec {
    /// Name the rendition is stored under, e.g. `"large"`.
    pub name: String,
    /// Exact output width in pixels.
    pub width: u32,
    /// Exact output height in pixels.
    pub height: u32,
}

impl RenditionSpec {
    /// Shorthand constructor.
    pub fn new(name: impl Into<String>, width: u32, height: u32) -> Self {
        RenditionSpec {
            name: name.into(),
            width,
            height,
        }
    }
}

/// What to produce and what to accept.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Input limits.
    pub limits: Limits,
    /// Output sizes, conventionally largest first.
    pub renditions: Vec<RenditionSpec>,
    /// JPEG quality of the renditions, 1..=100.
    pub jpeg_quality: u8,
}

impl Default for Config {
    /// Default limits; "large" 480×600, "medium" 240×300, "small" 96×120; quality 85.
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            renditions: vec![
                RenditionSpec::new("large", 480, 600),
                RenditionSpec::new("medium", 240, 300),
                RenditionSpec::new("small", 96, 120),
            ],
            jpeg_quality: 85,
        }
    }
}

/// A supported input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// JPEG / JFIF / EXIF.
    Jpeg,
    /// PNG.
    Png,
    /// GIF (the first frame is used).
    Gif,
    /// TIFF.
    Tiff,
    /// WebP.
    Webp,
    /// HEIC / HEIF, as iPhones write it: HEVC-coded images in an ISO base media file,
    /// decoded by the system libheif.
    Heic,
    /// AVIF: AV1-coded images in the same container as HEIC, decoded by the system libheif.
    Avif,
}

impl Format {
    /// Human name: `"JPEG"`, `"PNG"`, `"GIF"`, `"TIFF"`, `"WebP"`, `"HEIC"`, `"AVIF"`.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Gif => "GIF",
            Format::Tiff => "TIFF",
            Format::Webp => "WebP",
            Format::Heic => "HEIC",
            Format::Avif => "AVIF",
        }
    }

    /// The `image` crate's decoder for this format; `None` for HEIC and AVIF, which libheif
    /// decodes.
    pub(crate) fn image_format(self) -> Option<image::ImageFormat> {
        match self {
            Format::Jpeg => Some(image::ImageFormat::Jpeg),
            Format::Png => Some(image::ImageFormat::Png),
            Format::Gif => Some(image::ImageFormat::Gif),
            Format::Tiff => Some(image::ImageFormat::Tiff),
            Format::Webp => Some(image::ImageFormat::WebP),
            Format::Heic | Format::Avif => None,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One encoded output image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// Name from the [`RenditionSpec`].
    pub name: String,
    /// Width in pixels (exactly the spec's).
    pub width: u32,
    /// Height in pixels (exactly the spec's).
    pub height: u32,
    /// Baseline JPEG bytes, no metadata.
    pub jpeg: Vec<u8>,
}

/// The result of processing one photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// Format of the input.
    pub format: Format,
    /// Width of the input as displayed, i.e. after orientation.
    pub source_width: u32,
    /// Height of the input as displayed, i.e. after orientation.
    pub source_height: u32,
    /// EXIF orientation of the input, 1..=8 (1 when it had none). Always 1 for HEIC and AVIF: libheif
    /// has already applied the file's own rotation and mirroring, and its EXIF orientation
    /// tag, which may disagree, is ignored (see the `heif` module).
    pub orientation: u16,
    /// One rendition per [`RenditionSpec`], in the config's order.
    pub renditions: Vec<Rendition>,
}
