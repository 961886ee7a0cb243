//! HEIC/HEIF photos (what iPhones write) through the system libheif and its HEVC decoder
//! (libde265); AVIF, the same container around AV1 images, through libheif's AV1 decoder
//! (dav1d or libaom; Debian 12's libheif1 depends on both).
//!
//! Orientation: a HEIF file carries its rotation and mirroring as `irot`/`imir` properties
//! of the image item, and libheif applies them (and any `clap` crop) while decoding, so
//! the pixels come back upright. The EXIF block that iPhones also store often still says
//! "orientation 6" for the same photo: by the HEIF rules it only describes the pixels
//! before those transformations, and turning the decoded image by it as well would rotate
//! the photo twice. So no EXIF orientation is applied to HEIC or AVIF, and it is reported
//! as 1.
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
pub(crate) fn decode(
    format: Format,
    bytes: &[u8],
    limits: &Limits,
) -> Result<DynamicImage, ImageError> {
    // libheif 1.15 sizes a grid's or an overlay's canvas from the item's own data, not from
    // the size it reports, and allocates it before decoding the first tile: a file of a few
    // hundred bytes could ask for 32767×32767. Those canvases are read here first.
    for (w, h) in derived_canvases(bytes) {
        check_dimensions(limits, w, h)?;
    }
    let mut context =
        HeifContext::read_from_bytes(bytes).map_err(|e| heif_error(format, e, bytes))?;
    // A processor runs on one worker thread among several; HEIC grids (an iPhone photo is
    // 48 tiles of 512×512) would otherwise be decoded on threads of libheif's own.
    context.set_max_decoding_threads(1);
    let handle = context
        .primary_image_handle()
        .map_err(|e| heif_error(format, e, bytes))?;
    let (w, h) = (handle.width(), handle.height());
    if w == 0 || h == 0 {
        return Err(corrupt(format, format!("image size is {w}×{h}")));
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
        .map_err(|e| heif_error(format, e, bytes))?;
    let channels: usize = if alpha { 4 } else { 3 };
    let plane = image
        .planes()
        .interleaved
        .ok_or_else(|| corrupt(format, "the decoder returned no RGB image".into()))?;
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
    let size_error = || ImageError::Internal(format!("decoded {format} buffer has the wrong size"));
    Ok(if alpha {
        DynamicImage::ImageRgba8(RgbaImage::from_raw(pw, ph, pixels).ok_or_else(size_error)?)
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(pw, ph, pixels).ok_or_else(size_error)?)
    })
}

fn corrupt(format: Format, detail: String) -> ImageError {
    ImageError::Corrupt { format, detail }
}

/// The boxes directly inside `bytes[start..end]`: (type, payload start, payload end), the
/// payload cut at `end` when a box claims more.
fn boxes(bytes: &[u8], start: usize, end: usize) -> Vec<([u8; 4], usize, usize)> {
    let mut out = Vec::new();
    let mut at = start;
    let end = end.min(bytes.len());
    while at + 8 <= end {
        let size = be(bytes, at, 4).unwrap_or(0);
        let kind = [bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]];
        let (header, size) = match size {
            0 => (8, (end - at) as u64),
            1 => match be(bytes, at + 8, 8) {
                Some(large) => (16, large),
                None => break,
            },
            size => (8, size),
        };
        let Some(next) = usize::try_from(size)
            .ok()
            .filter(|&s| s >= header)
            .and_then(|s| at.checked_add(s))
        else {
            break;
        };
        out.push((kind, at + header, next.min(end)));
        at = next;
    }
    out
}

/// A big-endian unsigned number of `len` (0..=8) bytes at `at`.
fn be(bytes: &[u8], at: usize, len: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(len)?)?;
    Some(field.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
}

/// The output sizes that the grid (`grid`) and overlay (`iovl`) items of a HEIF file
/// declare in their data, found through `meta`'s `iinf`, `iloc` and `idat`. Anything that
/// does not parse is skipped: libheif refuses it later.
fn derived_canvases(bytes: &[u8]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let Some(&(_, meta, meta_end)) = boxes(bytes, 0, bytes.len())
        .iter()
        .find(|(kind, ..)| kind == b"meta")
    else {
        return out;
    };
    // meta is a full box: version and flags come first.
    let children = boxes(bytes, meta + 4, meta_end);
    let child = |name: &[u8; 4]| children.iter().find(|(kind, ..)| kind == name).copied();
    let derived = child(b"iinf").map_or_else(Vec::new, |(_, s, e)| derived_items(bytes, s, e));
    if derived.is_empty() {
        return out;
    }
    let Some((_, iloc, iloc_end)) = child(b"iloc") else {
        return out;
    };
    let idat = child(b"idat").map(|(_, s, e)| (s, e));
    for (id, kind) in derived {
        let Some(data) = item_data(bytes, iloc, iloc_end, idat, id) else {
            continue;
        };
        // grid: version, flags, rows - 1, columns - 1; iovl: version, flags, four 16-bit
        // fill values. Then width and height, 32 bits each if flags & 1, else 16.
        let skip = if &kind == b"grid" { 4 } else { 10 };
        let wide = data.get(1).is_some_and(|flags| flags & 1 == 1);
        let len = if wide { 4 } else { 2 };
        if let (Some(w), Some(h)) = (be(&data, skip, len), be(&data, skip + len, len)) {
            out.push((
                u32::try_from(w).unwrap_or(u32::MAX),
                u32::try_from(h).unwrap_or(u32::MAX),
            ));
        }
    }
    out
}

/// (item id, type) of every `grid` and `iovl` item listed in an `iinf` box's payload.
fn derived_items(bytes: &[u8], start: usize, end: usize) -> Vec<(u32, [u8; 4])> {
    let version = bytes.get(start).copied().unwrap_or(0);
    let entries = start + 4 + if version == 0 { 2 } else { 4 };
    let mut out = Vec::new();
    for (kind, s, _) in boxes(bytes, entries, end) {
        if &kind != b"infe" {
            continue;
        }
        // infe versions 2 and 3 carry the item type: id (16 or 32 bits), protection index.
        let (id, id_len) = match bytes.get(s) {
            Some(2) => (be(bytes, s + 4, 2), 2),
            Some(3) => (be(bytes, s + 4, 4), 4),
            _ => continue,
        };
        let Some(item_type) = bytes.get(s + 4 + id_len + 2..s + 4 + id_len + 6) else {
            continue;
        };
        if let (Some(id), b"grid" | b"iovl") = (id, item_type) {
            let mut kind = [0; 4];
            kind.copy_from_slice(item_type);
            out.push((u32::try_from(id).unwrap_or(0), kind));
        }
    }
    out
}

/// The first bytes (up to 32) of item `id`'s data: its first extent, located by `iloc`,
/// in the file or in `idat`.
fn item_data(
    bytes: &[u8],
    start: usize,
    end: usize,
    idat: Option<(usize, usize)>,
    id: u32,
) -> Option<Vec<u8>> {
    let version = *bytes.get(start)?;
    let sizes = be(bytes, start + 4, 2)?;
    let offset_size = ((sizes >> 12) & 15) as usize;
    let length_size = ((sizes >> 8) & 15) as usize;
    let base_size = ((sizes >> 4) & 15) as usize;
    let index_size = if matches!(version, 1 | 2) {
        (sizes & 15) as usize
    } else {
        0
    };
    let wide = version == 2;
    let mut at = start + 6;
    let count = be(bytes, at, if wide { 4 } else { 2 })?;
    at += if wide { 4 } else { 2 };
    for _ in 0..count.min(65_536) {
        let item = be(bytes, at, if wide { 4 } else { 2 })?;
        at += if wide { 4 } else { 2 };
        let method = if matches!(version, 1 | 2) {
            let m = be(bytes, at, 2)? & 15;
            at += 2;
            m
        } else {
            0
        };
        at += 2; // data reference index
        let base = be(bytes, at, base_size)?;
        at += base_size;
        let extents = be(bytes, at, 2)?;
        at += 2;
        let first = at + index_size;
        at += extents as usize * (index_size + offset_size + length_size);
        if at > end {
            return None;
        }
        if item != u64::from(id) || extents == 0 {
            continue;
        }
        let offset = base.checked_add(be(bytes, first, offset_size)?)?;
        let from = match method {
            0 => usize::try_from(offset).ok()?,
            1 => idat?.0.checked_add(usize::try_from(offset).ok()?)?,
            _ => return None,
        };
        let limit = if method == 1 { idat?.1 } else { bytes.len() };
        let to = from.checked_add(32)?.min(limit);
        return bytes.get(from..to).map(<[u8]>::to_vec);
    }
    None
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
fn heif_error(format: Format, err: HeifError, bytes: &[u8]) -> ImageError {
    match (err.code, err.sub_code) {
        (_, HeifErrorSubCode::EndOfData) => ImageError::Truncated { format },
        _ if cut_short(bytes) => ImageError::Truncated { format },
        (HeifErrorCode::UnsupportedFeature, HeifErrorSubCode::UnsupportedCodec)
        | (HeifErrorCode::DecoderPluginError, HeifErrorSubCode::UnsupportedCodec) => {
            ImageError::Unsupported {
                format: "HEIF coded with a codec this installation's libheif cannot decode",
            }
        }
        (HeifErrorCode::MemoryAllocationError, _)
        | (_, HeifErrorSubCode::SecurityLimitExceeded) => corrupt(
            format,
            "decoding it would need more memory than allowed".to_owned(),
        ),
        (HeifErrorCode::ContextCreateFailed, _) => {
            ImageError::Internal(format!("libheif: {}", short(&err.message)))
        }
        _ => {
            let message = err.message.trim();
            corrupt(
                format,
                short(if message.is_empty() {
                    "libheif could not decode it"
                } else {
                    message
                }),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    /// A HEIF file whose item 7 is a `kind` item with `data` kept in `idat` (iloc version
    /// 1, construction method 1), plus an hvc1 item 1 the way files list their tiles.
    fn derived_file(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let infe = |id: u16, item_type: &[u8; 4]| {
            let mut p = vec![2, 0, 0, 0];
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&[0, 0]);
            p.extend_from_slice(item_type);
            p.push(0); // empty name
            boxed(b"infe", &p)
        };
        let mut iinf = vec![0, 0, 0, 0, 0, 2];
        iinf.extend(infe(1, b"hvc1"));
        iinf.extend(infe(7, kind));
        // version 1; offset 4, length 4, base 0, index 0; two items.
        let mut iloc = vec![1, 0, 0, 0, 0x44, 0x00, 0, 2];
        for (id, method, offset, len) in [(1u16, 0u16, 9999u32, 10u32), (7, 1, 0, 32)] {
            iloc.extend_from_slice(&id.to_be_bytes());
            iloc.extend_from_slice(&method.to_be_bytes());
            iloc.extend_from_slice(&[0, 0, 0, 1]); // data reference index, one extent
            iloc.extend_from_slice(&offset.to_be_bytes());
            iloc.extend_from_slice(&len.to_be_bytes());
        }
        let mut meta = vec![0, 0, 0, 0];
        meta.extend(boxed(b"hdlr", &[0; 25]));
        meta.extend(boxed(b"iinf", &iinf));
        meta.extend(boxed(b"iloc", &iloc));
        meta.extend(boxed(b"idat", data));
        let mut file = boxed(b"ftyp", b"heic\0\0\0\0mif1heic");
        file.extend(boxed(b"meta", &meta));
        file
    }

    #[test]
    fn reads_grid_and_overlay_canvases() {
        let grid16 = [0, 0, 7, 7, 0x0F, 0xA0, 0x0B, 0xB8];
        assert_eq!(
            derived_canvases(&derived_file(b"grid", &grid16)),
            [(4000, 3000)]
        );
        let grid32 = [0, 1, 0, 0, 0, 0, 0x9C, 0x40, 0, 0, 0x75, 0x30];
        assert_eq!(
            derived_canvases(&derived_file(b"grid", &grid32)),
            [(40_000, 30_000)]
        );
        let iovl = [0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0x7F, 0xFF, 0x7F, 0xFF];
        assert_eq!(
            derived_canvases(&derived_file(b"iovl", &iovl)),
            [(32767, 32767)]
        );
        assert!(derived_canvases(&derived_file(b"hvc1", &grid16)).is_empty());
    }

    #[test]
    fn a_huge_grid_is_refused_before_libheif_allocates_it() {
        let grid = [0, 1, 0, 0, 0, 0, 0x7F, 0xFF, 0, 0, 0x7F, 0xFF];
        let err = decode(
            Format::Heic,
            &derived_file(b"grid", &grid),
            &Limits::default(),
        )
        .expect_err("over the limits");
        assert_eq!(err.to_string(), "32767×32767 exceeds the 8000 px limit");
    }

    #[test]
    fn garbage_never_panics() {
        let good = derived_file(b"grid", &[0, 0, 7, 7, 0x0F, 0xA0, 0x0B, 0xB8]);
        let mut state = 99u32;
        for round in 0..2000 {
            let mut bytes = good.clone();
            for _ in 0..1 + round % 6 {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (state >> 8) as usize % bytes.len();
                bytes[at] = (state >> 20) as u8;
            }
            bytes.truncate(bytes.len() - round % 40);
            let _ = derived_canvases(&bytes);
            let _ = cut_short(&bytes);
        }
    }

    #[test]
    fn reads_the_canvas_of_the_grid_fixture() {
        let grid = include_bytes!("../tests/data/grid-160x200.heic");
        assert_eq!(derived_canvases(grid), [(160, 200)]);
        assert!(!cut_short(grid));
    }

    #[test]
    fn the_fixtures_have_no_derived_items() {
        let fixture = include_bytes!("../tests/data/quadrants-160x200.heic");
        assert!(derived_canvases(fixture).is_empty());
        assert!(!cut_short(fixture));
        assert!(cut_short(&fixture[..fixture.len() - 1]));
    }
}
