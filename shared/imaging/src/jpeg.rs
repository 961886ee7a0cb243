//! A small, bounds-checked walk over a JPEG's markers: frame size, colour layout, EXIF
//! orientation, and whether the file actually reaches its end-of-image marker.
//!
//! This runs before any decoder so that hostile or cut-off files are turned away with a
//! clear message and without allocating anything sized by the file.

use crate::{Format, ImageError};

/// What the marker walk learned about a JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JpegInfo {
    /// Stored (not display) width.
    pub width: u32,
    /// Stored (not display) height.
    pub height: u32,
    /// Number of colour components: 1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK.
    pub components: u8,
    /// Sample precision in bits (8 for nearly everything).
    pub precision: u8,
    /// EXIF orientation, 1..=8 (1 when absent or invalid).
    pub orientation: u16,
    /// MCUs between restart markers (a DRI segment before the first scan); 0 when there are none.
    pub restart_interval: u16,
}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DRI: u8 = 0xDD;
const APP1: u8 = 0xE1;

fn corrupt(detail: impl Into<String>) -> ImageError {
    ImageError::Corrupt {
        format: Format::Jpeg,
        detail: detail.into(),
    }
}

fn truncated() -> ImageError {
    ImageError::Truncated {
        format: Format::Jpeg,
    }
}

fn is_sof(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// Walks the markers of `bytes` up to the end-of-image marker.
pub(crate) fn parse(bytes: &[u8]) -> Result<JpegInfo, ImageError> {
    if bytes.get(..2) != Some(&[0xFF, SOI]) {
        return Err(corrupt("missing start-of-image marker"));
    }
    let mut frame: Option<(u32, u32, u8, u8)> = None;
    let mut orientation: Option<u16> = None;
    let mut restart_interval = 0u16;
    let mut pos = 2usize;
    loop {
        // A marker: one or more 0xFF fill bytes, then the marker code.
        match bytes.get(pos) {
            None => return Err(truncated()),
            Some(0xFF) => {}
            Some(_) => return Err(corrupt(format!("expected a marker at byte {pos}"))),
        }
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *bytes.get(pos).ok_or_else(truncated)?;
        pos += 1;
        match marker {
            EOI => {
                return match frame {
                    Some(_) => Err(corrupt("no image data")),
                    None => Err(corrupt("no frame header")),
                };
            }
            SOI => return Err(corrupt("unexpected second start-of-image marker")),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len_bytes = bytes.get(pos..pos + 2).ok_or_else(truncated)?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        if len < 2 {
            return Err(corrupt(format!("bad segment length at byte {pos}")));
        }
        let segment = bytes.get(pos + 2..pos + len).ok_or_else(truncated)?;
        pos += len;

        if is_sof(marker) {
            if frame.is_some() {
                return Err(corrupt("more than one frame header"));
            }
            if segment.len() < 6 {
                return Err(corrupt("frame header too short"));
            }
            let precision = segment[0];
            let height = u32::from(u16::from_be_bytes([segment[1], segment[2]]));
            let width = u32::from(u16::from_be_bytes([segment[3], segment[4]]));
            let components = segment[5];
            if width == 0 || height == 0 {
                return Err(corrupt(format!("image size is {width}×{height}")));
            }
            if !matches!(components, 1 | 3 | 4) {
                return Err(corrupt(format!("{components} colour components")));
            }
            frame = Some((width, height, components, precision));
        } else if marker == DRI && frame.is_some() && segment.len() >= 2 {
            restart_interval = u16::from_be_bytes([segment[0], segment[1]]);
        } else if marker == APP1 && orientation.is_none() {
            if let Some(exif) = segment.strip_prefix(b"Exif\0\0") {
                orientation = exif_orientation(exif);
            }
        } else if marker == SOS {
            if frame.is_none() {
                return Err(corrupt("image data before the frame header"));
            }
            match skip_entropy_data(bytes, pos) {
                Some((next, EOI)) => {
                    let (width, height, components, precision) =
                        frame.ok_or_else(|| corrupt("no frame header"))?;
                    let _ = next;
                    return Ok(JpegInfo {
                        width,
                        height,
                        components,
                        precision,
                        orientation: orientation.unwrap_or(1),
                        restart_interval,
                    });
                }
                // Another marker after this scan (progressive JPEGs have many scans).
                Some((next, _)) => pos = next,
                None => return Err(truncated()),
            }
        }
    }
}

/// Scans entropy-coded data from `pos` to the next real marker. Returns the position of
/// that marker's 0xFF and the marker code, or `None` when the data runs out first.
fn skip_entropy_data(bytes: &[u8], mut pos: usize) -> Option<(usize, u8)> {
    loop {
        let rest = bytes.get(pos..)?;
        let at = pos + find_ff(rest)?;
        let mut code_at = at + 1;
        while bytes.get(code_at) == Some(&0xFF) {
            code_at += 1;
        }
        let code = *bytes.get(code_at)?;
        match code {
            // Stuffed zero byte or restart marker: still inside the scan.
            0x00 | 0xD0..=0xD7 => pos = code_at + 1,
            _ => return Some((code_at - 1, code)),
        }
    }
}

/// Position of the first 0xFF byte, eight bytes at a time (entropy-coded data is most
/// of a JPEG, and this scan runs before every decode).
fn find_ff(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // A byte of !v is zero exactly where v has 0xFF.
        let inverted = !u64::from_le_bytes(word);
        if inverted.wrapping_sub(ONES) & !inverted & HIGHS != 0 {
            return chunk.iter().position(|&b| b == 0xFF).map(|i| offset + i);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == 0xFF)
        .map(|i| offset + i)
}

/// Reads the Orientation tag (0x0112) from IFD0 of an EXIF block (the bytes after
/// `Exif\0\0`). Returns `None` when absent, malformed, or outside 1..=8.
pub(crate) fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let big_endian = match tiff.get(..2)? {
        b"II" => false,
        b"MM" => true,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = tiff.get(at..at.checked_add(2)?)?;
        Some(if big_endian {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b = tiff.get(at..at.checked_add(4)?)?;
        Some(if big_endian {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })
    };
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    for i in 0..count {
        let entry = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        if u16_at(entry)? != 0x0112 {
            continue;
        }
        let value = match u16_at(entry + 2)? {
            3 => u16_at(entry + 8)?,
            4 => u16::try_from(u32_at(entry + 8)?).ok()?,
            _ => return None,
        };
        return (1..=8).contains(&value).then_some(value);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFF, marker];
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn minimal(width: u16, height: u16, extra: &[u8]) -> Vec<u8> {
        let mut jpeg = vec![0xFF, SOI];
        jpeg.extend_from_slice(extra);
        let mut sof = vec![8];
        sof.extend_from_slice(&height.to_be_bytes());
        sof.extend_from_slice(&width.to_be_bytes());
        sof.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        jpeg.extend(segment(0xC0, &sof));
        jpeg.extend(segment(SOS, &[3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]));
        jpeg.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        jpeg.extend_from_slice(&[0xFF, EOI]);
        jpeg
    }

    #[test]
    fn reads_frame_and_orientation() {
        let exif =
            b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0\0\0";
        let jpeg = minimal(12000, 9000, &segment(APP1, exif));
        let info = parse(&jpeg).expect("parses");
        assert_eq!((info.width, info.height, info.components), (12000, 9000, 3));
        assert_eq!(info.orientation, 6);
    }

    #[test]
    fn detects_truncation_anywhere() {
        let jpeg = minimal(10, 10, &[]);
        for cut in 3..jpeg.len() - 1 {
            let err = parse(&jpeg[..cut]).expect_err("cut file must fail");
            assert!(
                matches!(err, ImageError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn finds_ff_like_a_plain_scan() {
        let mut bytes = vec![0u8; 40];
        assert_eq!(find_ff(&bytes), None);
        for at in 0..40 {
            bytes.iter_mut().for_each(|b| *b = 0xFE);
            bytes[at] = 0xFF;
            for start in 0..=at {
                assert_eq!(find_ff(&bytes[start..]), Some(at - start));
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 12345u32;
        for len in 0..300 {
            let mut bytes = vec![0xFF, SOI];
            for _ in 0..len {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                bytes.push((state >> 16) as u8);
            }
            let _ = parse(&bytes);
            let _ = exif_orientation(&bytes);
        }
    }
}
