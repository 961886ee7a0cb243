//! Recognising a file by its first bytes, never by its name.

use crate::{Format, ImageError};

/// Identifies the image format from the file's magic bytes.
///
/// Supported formats return `Ok`. Known image formats we do not take (BMP, SVG, ...)
/// return [`ImageError::Unsupported`]; anything else [`ImageError::NotAnImage`].
pub fn sniff(bytes: &[u8]) -> Result<Format, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(Format::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(Format::Gif);
    }
    if bytes.starts_with(b"II*\0")
        || bytes.starts_with(b"MM\0*")
        || bytes.starts_with(b"II+\0")
        || bytes.starts_with(b"MM\0+")
    {
        return Ok(Format::Tiff);
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Ok(Format::Webp);
    }
    if let Some(result) = ftyp_brands(bytes).and_then(iso_media_format) {
        return result;
    }
    if let Some(format) = unsupported_format(bytes) {
        return Err(ImageError::Unsupported { format });
    }
    Err(ImageError::NotAnImage {
        starts_with: leading_bytes(bytes),
    })
}

/// The major brand, minor version and compatible brands of an ISO base media file (an
/// `ftyp` box at the start: HEIC/HEIF, AVIF, Canon CR3, MP4 or QuickTime video...).
fn ftyp_brands(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < 12 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    let box_len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = box_len.clamp(12, 256).min(bytes.len());
    Some(&bytes[8..end])
}

/// AVIF, HEIC and HEIF (HEVC images, or a still image of any codec libheif may know) are
/// decoded; animated AVIF and Canon raw are named and refused; `None` for anything else
/// (video).
fn iso_media_format(brands: &[u8]) -> Option<Result<Format, ImageError>> {
    let has = |brand: &[u8; 4]| brands.chunks(4).any(|b| b == brand);
    // AVIF files list mif1 too.
    if has(b"avif") {
        return Some(Ok(Format::Avif));
    }
    if has(b"avis") {
        return Some(Err(ImageError::Unsupported {
            format: "animated AVIF",
        }));
    }
    let heif: [&[u8; 4]; 8] = [
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
    ];
    if heif.into_iter().any(has) {
        return Some(Ok(Format::Heic));
    }
    if has(b"crx ") {
        return Some(Err(ImageError::Unsupported {
            format: "Canon CR3 raw",
        }));
    }
    None
}

/// Names image formats we recognise but do not decode.
fn unsupported_format(bytes: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"BM") && bytes.len() >= 14 {
        return Some("BMP");
    }
    if starts(&[0, 0, 1, 0]) && bytes.len() >= 6 {
        return Some("ICO");
    }
    if starts(b"8BPS") {
        return Some("PSD (Photoshop)");
    }
    if starts(&[0xFF, 0x0A]) || starts(b"\0\0\0\x0cJXL \r\n\x87\n") {
        return Some("JPEG XL");
    }
    if starts(b"\0\0\0\x0cjP  \r\n\x87\n") || starts(&[0xFF, 0x4F, 0xFF, 0x51]) {
        return Some("JPEG 2000");
    }
    if starts(b"qoif") {
        return Some("QOI");
    }
    if starts(b"FUJIFILMCCD-RAW") {
        return Some("Fujifilm RAF raw");
    }
    if starts(&[0x76, 0x2F, 0x31, 0x01]) {
        return Some("OpenEXR");
    }
    if starts(b"#?RADIANCE") || starts(b"#?RGBE") {
        return Some("Radiance HDR");
    }
    if starts(b"DDS ") {
        return Some("DDS");
    }
    let head = &bytes[..bytes.len().min(1024)];
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with("<svg") || (trimmed.starts_with("<?xml") && trimmed.contains("<svg")) {
        return Some("SVG");
    }
    None
}

/// Up to eight leading bytes, stopping at the first whitespace, printable ASCII kept and
/// everything else escaped as `\xNN`.
fn leading_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, &b) in bytes.iter().take(8).enumerate() {
        if i > 0 && b.is_ascii_whitespace() {
            break;
        }
        if b.is_ascii_graphic() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_supported_formats() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest").ok(), Some(Format::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n....").ok(), Some(Format::Png));
        assert_eq!(sniff(b"GIF89a...").ok(), Some(Format::Gif));
        assert_eq!(sniff(b"II*\0\x08\0\0\0").ok(), Some(Format::Tiff));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08").ok(), Some(Format::Tiff));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 ").ok(), Some(Format::Webp));
    }

    #[test]
    fn recognises_heif_by_its_brands() {
        // An iPhone photo: major brand heic, compatible mif1, MiHE, miaf, heic.
        let iphone = b"\0\0\0\x24ftypheic\0\0\0\0mif1MiHEmiafMiHBheic\0\0\0\0meta";
        assert_eq!(sniff(iphone).ok(), Some(Format::Heic));
        for brand in [
            b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
        ] {
            let mut file = b"\0\0\0\x14ftyp".to_vec();
            file.extend_from_slice(brand);
            file.extend_from_slice(b"\0\0\0\0");
            file.extend_from_slice(brand);
            assert_eq!(sniff(&file).ok(), Some(Format::Heic), "{brand:?}");
        }
        // Only among the compatible brands.
        assert_eq!(
            sniff(b"\0\0\0\x18ftypXXXX\0\0\0\0miafmif1").ok(),
            Some(Format::Heic)
        );
        assert_eq!(
            sniff(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf").ok(),
            Some(Format::Avif)
        );
        // Brands past the end of the ftyp box do not count.
        assert!(sniff(b"\0\0\0\x10ftypisom\0\0\0\0mif1").is_err());
    }

    #[test]
    fn names_unsupported_and_non_images() {
        let msg = |b: &[u8]| sniff(b).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg(b""), "empty file");
        assert_eq!(
            msg(b"BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00"),
            "unsupported image format: BMP"
        );
        assert_eq!(
            msg(b"\0\0\0\x1cftypavis\0\0\0\0avismsf1miaf"),
            "unsupported image format: animated AVIF"
        );
        assert_eq!(
            msg(b"\0\0\0\x18ftypcrx \0\0\0\x01crx isom"),
            "unsupported image format: Canon CR3 raw"
        );
        assert_eq!(
            msg(b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom"),
            "not an image: starts with \\x00\\x00\\x00\\x18ftyp"
        );
        assert_eq!(
            msg(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"...\">"),
            "unsupported image format: SVG"
        );
        assert_eq!(
            msg(b"%PDF-1.7\n%\xe2\xe3"),
            "not an image: starts with %PDF-1.7"
        );
        assert_eq!(
            msg(b"PK\x03\x04\x14\x00\x06\x00"),
            "not an image: starts with PK\\x03\\x04\\x14\\x00\\x06\\x00"
        );
        assert_eq!(msg(b"hello world"), "not an image: starts with hello");
    }
}
