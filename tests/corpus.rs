//! The hostile-input corpus: every kind of upload a careless or hostile client can send, each
//! with how it is sent and exactly what Pictureday must answer. `tests/e2e/corpus.rs` drives every
//! case through the public API against one server; `scripts/hostile-corpus.sh DIR` writes the
//! files out (generated here, never committed as binaries) for manual use with curl.
//!
//! Image cases run in one district whose roster is [`ROSTER_SIZE`] numbered students (student
//! number `n`, SIS id `S<n>`, as [`crate::TestClient::upload_numbered_roster`] makes them); each
//! case uses student numbers of its own, so no case's outcome depends on another's. Roster cases
//! run in a district of their own.

use std::io::Write as _;

use image::{DynamicImage, ImageFormat, RgbImage};

use crate::images::{encode, jpeg, photo};

/// Students in the image cases' district: numbers `0..ROSTER_SIZE`.
pub const ROSTER_SIZE: u32 = 200;
/// The district the image cases use.
pub const DISTRICT: &str = "corpus";
/// The district the roster cases use.
pub const ROSTER_DISTRICT: &str = "corpus-roster";

/// One hostile input.
pub struct Case {
    /// Short, unique, usable as a directory name.
    pub name: &'static str,
    /// What it is and why it is hostile.
    pub about: &'static str,
    pub submit: Submit,
    pub expected: Expected,
}

/// How a case is sent.
pub enum Submit {
    /// `POST …/imports` with one `files` part per (name, bytes).
    Files(Vec<(String, Vec<u8>)>),
    /// `POST …/imports` with one `archive` part.
    Archive { file_name: String, bytes: Vec<u8> },
    /// `POST …/imports` with a `mapping` part (`mapping.csv`) and one `files` part per image.
    MappingAndFiles {
        mapping: Vec<u8>,
        files: Vec<(String, Vec<u8>)>,
    },
    /// `POST …/imports` with a `mapping` part (`mapping.csv`) and an `archive` part (`photos.zip`).
    MappingAndArchive { mapping: Vec<u8>, archive: Vec<u8> },
    /// `POST …/roster` with the bytes as the CSV body.
    Roster(Vec<u8>),
}

/// Exactly what must happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// `202`, then the job ends in `state` with exactly these warnings and log rows.
    Job {
        state: &'static str,
        warnings: Vec<String>,
        rows: Vec<Row>,
        /// Lines the job's CSV log (`?format=csv`) must contain, as written.
        csv_lines: Vec<String>,
    },
    /// Refused: this status, error code and message; no job is recorded.
    Refused {
        status: u16,
        code: &'static str,
        message: String,
    },
    /// The roster answer (status and whole JSON body), and lines the district's
    /// missing-photos report must contain afterwards, as written.
    Roster {
        status: u16,
        body: serde_json::Value,
        report_lines: Vec<String>,
    },
    /// Any one of these: where the order two photos of one person finish in decides the words.
    OneOf(Vec<Expected>),
}

impl Expected {
    /// Whether `got` (an outcome described as an expectation) is this one, or one of these.
    pub fn admits(&self, got: &Expected) -> bool {
        match self {
            Expected::OneOf(choices) => choices.iter().any(|c| c.admits(got)),
            exact => exact == got,
        }
    }

    /// Lines the job's CSV log must contain, of every choice.
    pub fn csv_lines(&self) -> Vec<String> {
        match self {
            Expected::Job { csv_lines, .. } => csv_lines.clone(),
            Expected::OneOf(choices) => choices.iter().flat_map(Expected::csv_lines).collect(),
            _ => Vec::new(),
        }
    }

    /// Lines the missing-photos report must contain, of every choice.
    pub fn report_lines(&self) -> Vec<String> {
        match self {
            Expected::Roster { report_lines, .. } => report_lines.clone(),
            Expected::OneOf(choices) => choices.iter().flat_map(Expected::report_lines).collect(),
            _ => Vec::new(),
        }
    }
}

/// One row of a job's log: file name, outcome, reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub file: String,
    pub outcome: String,
    pub reason: String,
}

pub fn row(file: &str, outcome: &str, reason: &str) -> Row {
    Row {
        file: file.to_owned(),
        outcome: outcome.to_owned(),
        reason: reason.to_owned(),
    }
}

fn job(state: &'static str, rows: Vec<Row>) -> Expected {
    Expected::Job {
        state,
        warnings: Vec::new(),
        rows,
        csv_lines: Vec::new(),
    }
}

fn job_warned(state: &'static str, warnings: &[&str], rows: Vec<Row>) -> Expected {
    Expected::Job {
        state,
        warnings: warnings.iter().map(|w| (*w).to_owned()).collect(),
        rows,
        csv_lines: Vec::new(),
    }
}

fn refused(status: u16, code: &'static str, message: &str) -> Expected {
    Expected::Refused {
        status,
        code,
        message: message.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// A photo that passes every check (160×200 JPEG).
pub fn portrait(seed: u32) -> Vec<u8> {
    jpeg(photo(160, 200, seed)).unwrap_or_default()
}

fn png_of(width: u32, height: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgb8(RgbImage::from_pixel(
            width,
            height,
            image::Rgb([90, 120, 200]),
        )),
        ImageFormat::Png,
    )
    .unwrap_or_default()
}

/// The zip format's CRC-32 (also PNG's), bit by bit: used for small data only.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

/// `len` zero bytes, raw-deflated (by the zip crate's encoder, which also gives their CRC).
/// Returns (compressed bytes, CRC-32 of the zeros).
pub fn deflated_zeros(len: u64) -> (Vec<u8>, u32) {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(len > u64::from(u32::MAX));
        if zip.start_file("z", options).is_err() {
            return (Vec::new(), 0);
        }
        let chunk = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if zip.write_all(&chunk[..n]).is_err() {
                return (Vec::new(), 0);
            }
            left -= n as u64;
        }
        let _ = zip.finish();
    }
    let bytes = out.into_inner();
    // Local header: CRC at 14, compressed size at 18 (0xFFFFFFFF with zip64), name length at 26,
    // extra length at 28; the data follows the name and extra field. The data ends where the
    // central directory (or a data descriptor) begins, so take it up to the first of those.
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
    let crc = u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]);
    let start = 30 + u16_at(26) + u16_at(28);
    let central = bytes
        .windows(4)
        .rposition(|w| w == [0x50, 0x4b, 0x01, 0x02])
        .unwrap_or(bytes.len());
    let mut end = central;
    // A data descriptor (signature, CRC, sizes) may sit between the data and the directory.
    for descriptor_len in [16usize, 24] {
        if end >= start + descriptor_len
            && bytes[end - descriptor_len..end - descriptor_len + 4] == [0x50, 0x4b, 0x07, 0x08]
        {
            end -= descriptor_len;
            break;
        }
    }
    (bytes[start..end].to_vec(), crc)
}

/// `len` zero bytes as a zlib stream (PNG's IDAT, TIFF's deflate strips).
pub fn zlib_zeros(len: u64) -> Vec<u8> {
    let (deflated, _) = deflated_zeros(len);
    let mut out = vec![0x78, 0x9c];
    out.extend_from_slice(&deflated);
    // Adler-32 of zeros: a stays 1, b grows by 1 per byte.
    let adler = ((len % 65521) as u32) << 16 | 1;
    out.extend_from_slice(&adler.to_be_bytes());
    out
}

/// One entry of a hand-made zip. The zip crate's writer refuses duplicates, unsafe names and
/// lies, so the format's records are written here.
#[derive(Clone)]
pub struct ZipEntry {
    /// The name as stored, any bytes.
    pub name: Vec<u8>,
    /// The entry's data as stored in the archive (compressed when `method` says so).
    pub data: Vec<u8>,
    /// 0 stored, 8 deflated, anything else as a lie.
    pub method: u16,
    pub crc: u32,
    /// What the records say the data inflates to.
    pub uncompressed_size: u32,
    /// What the central record says the stored size is, when it lies.
    pub claimed_compressed: Option<u32>,
    /// General-purpose flags (0x0800 UTF-8 names, 1 encrypted).
    pub flags: u16,
    /// Point the central record at another entry's local header (an overlap bomb).
    pub same_header_as: Option<usize>,
    /// The central record's local-header offset, when it lies.
    pub header_offset: Option<u32>,
    /// The local header's name, when it disagrees with the central record's.
    pub local_name: Option<Vec<u8>>,
    /// An extra field in the central record (zip64 and others).
    pub central_extra: Vec<u8>,
}

/// A stored entry with a UTF-8 name.
pub fn stored(name: &str, data: Vec<u8>) -> ZipEntry {
    stored_raw(name.as_bytes(), data, 0x0800)
}

/// A stored entry with the name's bytes as given and the given flags.
pub fn stored_raw(name: &[u8], data: Vec<u8>, flags: u16) -> ZipEntry {
    ZipEntry {
        name: name.to_vec(),
        crc: crc32(&data),
        uncompressed_size: data.len() as u32,
        data,
        method: 0,
        claimed_compressed: None,
        flags,
        same_header_as: None,
        header_offset: None,
        local_name: None,
        central_extra: Vec::new(),
    }
}

/// A deflated entry of `len` zeros, honest about its size.
pub fn zeros_entry(name: &str, len: u32) -> ZipEntry {
    let (data, crc) = deflated_zeros(u64::from(len));
    ZipEntry {
        name: name.as_bytes().to_vec(),
        data,
        method: 8,
        crc,
        uncompressed_size: len,
        claimed_compressed: None,
        flags: 0x0800,
        same_header_as: None,
        header_offset: None,
        local_name: None,
        central_extra: Vec::new(),
    }
}

/// Writes the zip: local headers and data, the central directory, the end record.
pub fn raw_zip(entries: &[ZipEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(out.len() as u32);
        if e.same_header_as.is_some() {
            continue;
        }
        let name = e.local_name.as_ref().unwrap_or(&e.name);
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&[0; 4]); // time, date
        out.extend_from_slice(&e.crc.to_le_bytes());
        out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.uncompressed_size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&e.data);
    }
    let directory_start = out.len() as u32;
    for (i, e) in entries.iter().enumerate() {
        let source = e.same_header_as.map_or(e, |j| &entries[j]);
        let header = e
            .header_offset
            .unwrap_or(offsets[e.same_header_as.unwrap_or(i)]);
        let compressed = e.claimed_compressed.unwrap_or(source.data.len() as u32);
        out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // made by
        out.extend_from_slice(&20u16.to_le_bytes()); // needed
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&source.method.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&source.crc.to_le_bytes());
        out.extend_from_slice(&compressed.to_le_bytes());
        out.extend_from_slice(&source.uncompressed_size.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(e.central_extra.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // comment length
        out.extend_from_slice(&[0; 4]); // disk, internal attributes
        out.extend_from_slice(&[0; 4]); // external attributes
        out.extend_from_slice(&header.to_le_bytes());
        out.extend_from_slice(&e.name);
        out.extend_from_slice(&e.central_extra);
    }
    let directory_size = out.len() as u32 - directory_start;
    let count = entries.len().min(0xFFFF) as u16;
    end_record(&mut out, count, directory_size, directory_start);
    out
}

fn end_record(out: &mut Vec<u8>, count: u16, directory_size: u32, directory_start: u32) {
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&directory_size.to_le_bytes());
    out.extend_from_slice(&directory_start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
}

/// A zip of `count` entries: more than the 16-bit end record can count, so written with the
/// zip crate (which adds the zip64 end record).
fn many_entries_zip(count: u32, name_of: impl Fn(u32) -> String, last: (&str, Vec<u8>)) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for n in 0..count {
            if zip.start_file(name_of(n), options).is_err() {
                return Vec::new();
            }
        }
        if zip.start_file(last.0, options).is_err() || zip.write_all(&last.1).is_err() {
            return Vec::new();
        }
        let _ = zip.finish();
    }
    out.into_inner()
}

/// A zip whose only record is an end record declaring `count` entries in an empty directory.
fn declared_entries_zip(count: u64) -> Vec<u8> {
    if count <= 0xFFFF {
        let mut out = Vec::new();
        end_record(&mut out, count as u16, 0, 0);
        return out;
    }
    // Zip64: end record, locator, then the classic end record with 0xFFFF placeholders.
    let mut out = Vec::new();
    out.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
    out.extend_from_slice(&44u64.to_le_bytes()); // size of the rest of the record
    out.extend_from_slice(&45u16.to_le_bytes()); // made by
    out.extend_from_slice(&45u16.to_le_bytes()); // needed
    out.extend_from_slice(&[0; 8]); // disk numbers
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // directory size
    out.extend_from_slice(&0u64.to_le_bytes()); // directory offset
    out.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // where the zip64 end record is
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&0xFFFFu16.to_le_bytes());
    out.extend_from_slice(&0xFFFFu16.to_le_bytes());
    out.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    out.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut checked = kind.to_vec();
    checked.extend_from_slice(data);
    out.extend_from_slice(&checked);
    out.extend_from_slice(&crc32(&checked).to_be_bytes());
}

/// A real decompression-bomb PNG: `width`×`height`, 1-bit grey, every pixel black, so the
/// pixel data deflates to a few kilobytes per hundred megapixels.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let row = 1 + u64::from(width).div_ceil(8);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // 1 bit, grey, deflate, filter 0, no interlace
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &zlib_zeros(row * u64::from(height)));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A GIF whose logical screen is `screen` but whose one frame is `frame`, with a minimal
/// LZW stream (clear, end).
pub fn gif_bomb(screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&screen.0.to_le_bytes());
    out.extend_from_slice(&screen.1.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2 entries
    out.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    out.push(0x2C);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&frame.0.to_le_bytes());
    out.extend_from_slice(&frame.1.to_le_bytes());
    out.push(0);
    out.push(2); // LZW minimum code size
    out.extend_from_slice(&[2, 0x44, 0x01, 0]); // clear code, end of information
    out.push(0x3B);
    out
}

/// A little-endian TIFF of `width`×`height` 1-bit grey pixels, deflate-compressed, one strip
/// of zeros: a real bomb when large.
pub fn tiff_bomb(width: u32, height: u32) -> Vec<u8> {
    let strip = zlib_zeros(u64::from(width).div_ceil(8) * u64::from(height));
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, width),              // ImageWidth
        (257, 4, height),             // ImageLength
        (258, 3, 1),                  // BitsPerSample
        (259, 3, 8),                  // Compression: deflate
        (262, 3, 1),                  // Photometric: black is zero
        (273, 4, 0),                  // StripOffsets (patched below)
        (277, 3, 1),                  // SamplesPerPixel
        (278, 4, height),             // RowsPerStrip
        (279, 4, strip.len() as u32), // StripByteCounts
    ];
    let ifd_len = 2 + entries.len() * 12 + 4;
    let data_at = (8 + ifd_len) as u32;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        let value = if tag == 273 { data_at } else { value };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        if kind == 3 {
            out.extend_from_slice(&(value as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&strip);
    out
}

/// A WebP with an extended (VP8X) header declaring a `width`×`height` canvas.
pub fn webp_vp8x(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"VP8X".to_vec();
    chunk.extend_from_slice(&10u32.to_le_bytes());
    chunk.extend_from_slice(&[0, 0, 0, 0]);
    chunk.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    chunk.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(4 + chunk.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&chunk);
    out
}

/// A lossless WebP (VP8L) header declaring `width`×`height` (each at most 16384), no data.
pub fn webp_vp8l(width: u32, height: u32) -> Vec<u8> {
    let bits = (width - 1) | ((height - 1) << 14);
    let mut data = vec![0x2F];
    data.extend_from_slice(&bits.to_le_bytes());
    data.extend_from_slice(&[0; 8]);
    let mut chunk = b"VP8L".to_vec();
    chunk.extend_from_slice(&(data.len() as u32).to_le_bytes());
    chunk.extend_from_slice(&data);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(4 + chunk.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&chunk);
    out
}

/// A real JPEG whose frame header is rewritten to say `width`×`height`.
pub fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = portrait(7);
    if let Some(at) = bytes.windows(2).position(|w| w == [0xFF, 0xC0]) {
        bytes[at + 5..at + 7].copy_from_slice(&height.to_be_bytes());
        bytes[at + 7..at + 9].copy_from_slice(&width.to_be_bytes());
    }
    bytes
}

/// A valid JPEG with `count` application segments of `marker` (0xE1 EXIF, 0xE2 ICC), each as
/// large as a segment can be, inserted after its SOI.
pub fn jpeg_with_segments(seed: u32, marker: u8, count: usize) -> Vec<u8> {
    let base = portrait(seed);
    let mut out = base[..2].to_vec();
    for i in 0..count {
        let mut payload = if marker == 0xE2 {
            let mut p = b"ICC_PROFILE\0".to_vec();
            p.push((i + 1).min(255) as u8);
            p.push(count.min(255) as u8);
            p
        } else {
            b"Exif\0\0II*\0\x08\0\0\0".to_vec()
        };
        payload.resize(65533, 0xAB);
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&payload);
    }
    out.extend_from_slice(&base[2..]);
    out
}

fn names_of(rows: &[(&str, &str, &str)]) -> Vec<Row> {
    rows.iter().map(|(f, o, r)| row(f, o, r)).collect()
}

// ---------------------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------------------

/// Every case, in the order the end-to-end test runs them.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(zip_cases());
    cases.extend(image_cases());
    cases.extend(csv_cases());
    cases
}

fn zip(file_name: &str, entries: &[ZipEntry]) -> Submit {
    Submit::Archive {
        file_name: file_name.to_owned(),
        bytes: raw_zip(entries),
    }
}

fn files(list: Vec<(&str, Vec<u8>)>) -> Submit {
    Submit::Files(list.into_iter().map(|(n, b)| (n.to_owned(), b)).collect())
}

/// What matching says of a file name that names no one.
fn nobody(id: &str) -> String {
    format!(
        "no person has {id} as student number, SIS id, state id, staff id or email (case and \
         leading zeros ignored)"
    )
}

fn zip_cases() -> Vec<Case> {
    let mut cases = Vec::new();

    cases.push(Case {
        name: "zip-traversal-names",
        about: "entries named ../, ..\\, /etc/, C: beside one good photo",
        submit: zip(
            "photos.zip",
            &[
                stored("0.jpg", portrait(0)),
                stored("../../0.jpg", portrait(1)),
                stored("..\\0.jpg", portrait(2)),
                stored("/etc/0.jpg", portrait(3)),
                stored("C:0.jpg", portrait(4)),
                stored("a/../../0.jpg", portrait(5)),
            ],
        ),
        expected: job(
            "finished_with_errors",
            names_of(&[
                ("0.jpg", "applied", ""),
                ("../../0.jpg", "rejected", "unsafe path: ../../0.jpg"),
                ("..\\0.jpg", "rejected", "unsafe path: ..\\0.jpg"),
                ("/etc/0.jpg", "rejected", "unsafe path: /etc/0.jpg"),
                ("C:0.jpg", "rejected", "unsafe path: C:0.jpg"),
                ("a/../../0.jpg", "rejected", "unsafe path: a/../../0.jpg"),
            ]),
        ),
    });

    cases.push(Case {
        name: "zip-nul-in-name",
        about: "an entry name with a NUL byte (a C string would end at 1.jpg)",
        submit: zip(
            "photos.zip",
            &[stored_raw(b"1.jpg\0../../evil", portrait(1), 0x0800)],
        ),
        expected: job(
            "finished_with_errors",
            // The name as stored and shown: the NUL, which no name has, is U+FFFD.
            names_of(&[(
                "1.jpg\u{fffd}../../evil",
                "rejected",
                "unsafe path: 1.jpg\u{fffd}../../evil",
            )]),
        ),
    });

    cases.push(Case {
        name: "zip-invalid-utf8-names",
        about: "entry names that are not UTF-8: with the UTF-8 flag (shown with U+FFFD), and \
                without it (read as code page 437)",
        submit: zip(
            "photos.zip",
            &[
                stored_raw(b"2\xff\xfe.jpg", portrait(2), 0x0800),
                stored_raw(b"3\x81\x90.jpg", portrait(3), 0),
            ],
        ),
        expected: job(
            "finished_with_errors",
            vec![
                row(
                    "2\u{fffd}\u{fffd}.jpg",
                    "unmatched",
                    &nobody("2\u{fffd}\u{fffd}"),
                ),
                row("3\u{fc}\u{c9}.jpg", "unmatched", &nobody("3\u{fc}\u{c9}")),
            ],
        ),
    });

    cases.push(Case {
        name: "zip-duplicate-names",
        about: "two entries named 4.jpg: both get an outcome, the last is used",
        submit: zip(
            "photos.zip",
            &[stored("4.jpg", portrait(41)), stored("4.jpg", portrait(42))],
        ),
        // The later entry wins: it is applied over the earlier one (which then ends
        // `replaced`), or the earlier one finishes last and is `superseded`.
        expected: {
            let warning = "photos.zip has several entries with one name: 4.jpg (2×); each is \
                           processed in archive order and the last one is used";
            Expected::OneOf(vec![
                job_warned(
                    "finished",
                    &[warning],
                    names_of(&[
                        (
                            "4.jpg",
                            "superseded",
                            "kept as an older version: a newer upload is the person's photo",
                        ),
                        ("4.jpg", "applied", ""),
                    ]),
                ),
                job_warned(
                    "finished",
                    &[warning],
                    names_of(&[
                        ("4.jpg", "applied", ""),
                        (
                            "4.jpg",
                            "replaced",
                            "replaced the person's previous photo, which is kept as an older \
                             version",
                        ),
                    ]),
                ),
            ])
        },
    });

    {
        let mut past_end = stored("6.jpg", portrait(6));
        past_end.claimed_compressed = Some(50_000_000);
        let mut offset_past_end = stored("7.jpg", portrait(7));
        offset_past_end.header_offset = Some(0x7FFF_FFFF);
        let mut wrong_local_name = stored("8.jpg", portrait(8));
        wrong_local_name.local_name = Some(b"9.jpg".to_vec());
        let mut zip64_huge = stored("9.jpg", portrait(9));
        // The compressed size is the zip64 placeholder; the zip64 extra field says 2^60.
        zip64_huge.claimed_compressed = Some(0xFFFF_FFFF);
        zip64_huge.central_extra = {
            let mut extra = 0x0001u16.to_le_bytes().to_vec();
            extra.extend_from_slice(&8u16.to_le_bytes());
            extra.extend_from_slice(&(1u64 << 60).to_le_bytes());
            extra
        };
        let damaged = |n: u32, why: &str| {
            row(
                &format!("{n}.jpg"),
                "rejected",
                &format!("photos.zip entry {n}.jpg is damaged: {why}"),
            )
        };
        cases.push(Case {
            name: "zip-sizes-past-end",
            about: "entries whose sizes or header offsets point past the archive's end, a local \
                    header that disagrees, a zip64 size of 2^60",
            submit: zip(
                "photos.zip",
                &[
                    stored("5.jpg", portrait(5)),
                    past_end,
                    offset_past_end,
                    wrong_local_name,
                    zip64_huge,
                ],
            ),
            expected: job(
                "finished_with_errors",
                vec![
                    row("5.jpg", "applied", ""),
                    damaged(6, "its data runs past the end of the archive"),
                    damaged(7, "its data runs past the end of the archive"),
                    damaged(8, "its local header does not match the archive's directory"),
                    damaged(9, "its data runs past the end of the archive"),
                ],
            ),
        });
    }

    {
        let mut entries = vec![stored("10.jpg", portrait(10))];
        for n in 11..16 {
            let mut copy = stored(&format!("{n}.jpg"), Vec::new());
            copy.same_header_as = Some(0);
            entries.push(copy);
        }
        cases.push(Case {
            name: "zip-overlapping-entries",
            about: "six directory records sharing one entry's data (an overlap bomb)",
            submit: zip("photos.zip", &entries),
            expected: refused(
                422,
                "unprocessable",
                "photos.zip is refused: entries share the same compressed data (10.jpg and \
                 11.jpg; 10.jpg and 12.jpg; 10.jpg and 13.jpg; 10.jpg and 14.jpg; 10.jpg and \
                 15.jpg), which no zip tool writes; it would be inflated again and again",
            ),
        });
    }

    {
        // An overlap bomb of the classic shape: many records, one deflated stream of zeros.
        let mut entries = vec![zeros_entry("16.jpg", 40_000_000)];
        for n in 0..1000 {
            let mut copy = stored(&format!("bomb/{n}.jpg"), Vec::new());
            copy.same_header_as = Some(0);
            entries.push(copy);
        }
        cases.push(Case {
            name: "zip-overlap-deflate-bomb",
            about: "1,001 records sharing one deflated 40 MB stream of zeros: 40 GB if each were \
                    inflated",
            submit: zip("photos.zip", &entries),
            expected: refused(
                422,
                "unprocessable",
                "photos.zip is refused: entries share the same compressed data (16.jpg and \
                 bomb/0.jpg; 16.jpg and bomb/1.jpg; 16.jpg and bomb/10.jpg; 16.jpg and \
                 bomb/100.jpg; 16.jpg and bomb/101.jpg; and 995 more), which no zip tool \
                 writes; it would be inflated again and again",
            ),
        });
    }

    cases.push(Case {
        name: "zip-deflate-bomb-honest",
        about: "an entry that says it inflates to 1 GB (1 MB of deflated zeros)",
        submit: zip("photos.zip", &[zeros_entry("17.jpg", 1_000_000_000)]),
        expected: job(
            "finished_with_errors",
            names_of(&[(
                "17.jpg",
                "rejected",
                "1000.0 MB exceeds the 52.4 MB file limit",
            )]),
        ),
    });

    {
        let mut lying = zeros_entry("18.jpg", 200_000_000);
        lying.uncompressed_size = 20_000;
        let mut lying_big = zeros_entry("19.jpg", 200_000_000);
        lying_big.uncompressed_size = 40_000_000;
        cases.push(Case {
            name: "zip-deflate-bomb-lying",
            about: "entries of 200 MB of deflated zeros whose records say 20 kB and 40 MB: \
                    inflating stops one byte past the declared size",
            submit: zip(
                "photos.zip",
                &[lying, lying_big, stored("20.jpg", portrait(20))],
            ),
            expected: job(
                "finished_with_errors",
                names_of(&[
                    (
                        "18.jpg",
                        "rejected",
                        "the zip entry is corrupt: 20001 bytes where the archive says 20000",
                    ),
                    (
                        "19.jpg",
                        "rejected",
                        "the zip entry is corrupt: 40000001 bytes where the archive says 40000000",
                    ),
                    ("20.jpg", "applied", ""),
                ]),
            ),
        });
    }

    {
        let mut encrypted = stored("21.jpg", portrait(21));
        encrypted.flags |= 1;
        let mut bzip2 = stored("22.jpg", portrait(22));
        bzip2.method = 12;
        let mut bad_crc = stored("23.jpg", portrait(23));
        bad_crc.crc ^= 0xFFFF;
        cases.push(Case {
            name: "zip-unsupported-entries",
            about: "an encrypted entry, a bzip2 entry, an entry whose CRC does not match",
            submit: zip("photos.zip", &[encrypted, bzip2, bad_crc]),
            expected: job(
                "finished_with_errors",
                names_of(&[
                    (
                        "21.jpg",
                        "rejected",
                        "the zip entry is encrypted; upload it without a password",
                    ),
                    (
                        "22.jpg",
                        "rejected",
                        "the zip entry uses compression method 12; only deflate and store are \
                         supported",
                    ),
                    (
                        "23.jpg",
                        "rejected",
                        "the zip entry is corrupt: its checksum does not match",
                    ),
                ]),
            ),
        });
    }

    cases.push(Case {
        name: "zip-100000-entries",
        about: "100,000 entries: 99,999 empty text files and one photo",
        submit: Submit::Archive {
            file_name: "photos.zip".into(),
            bytes: many_entries_zip(
                99_999,
                |n| format!("notes/{n}.txt"),
                ("24.jpg", portrait(24)),
            ),
        },
        expected: job_warned(
            "finished",
            &[
                "99999 text file(s) are not photos and were left out: notes/0.txt, notes/1.txt, \
               notes/2.txt, notes/3.txt, notes/4.txt and 99994 more",
            ],
            names_of(&[("24.jpg", "applied", "")]),
        ),
    });

    cases.push(Case {
        name: "zip-100000-hidden-entries",
        about: "100,000 entries: 99,999 macOS resource forks and one photo",
        submit: Submit::Archive {
            file_name: "photos.zip".into(),
            bytes: many_entries_zip(
                99_999,
                |n| format!("__MACOSX/._{n}.jpg"),
                ("25.jpg", portrait(25)),
            ),
        },
        expected: job("finished", names_of(&[("25.jpg", "applied", "")])),
    });

    cases.push(Case {
        name: "zip-declares-too-many-entries",
        about: "a 98-byte zip whose (zip64) end record declares 600,000 entries",
        submit: Submit::Archive {
            file_name: "photos.zip".into(),
            bytes: declared_entries_zip(600_000),
        },
        expected: refused(
            422,
            "unprocessable",
            "photos.zip has more than 500000 entries",
        ),
    });

    cases.push(Case {
        name: "zip-declares-entries-it-lacks",
        about: "an end record declaring 65,535 entries in an empty directory",
        submit: Submit::Archive {
            file_name: "photos.zip".into(),
            bytes: declared_entries_zip(65_535),
        },
        expected: refused(
            422,
            "unprocessable",
            "photos.zip is not a readable zip archive: its central directory lists 0 of the \
             65535 entries it declares",
        ),
    });

    cases.push(Case {
        name: "zip-not-a-zip",
        about: "a PDF sent as the archive",
        submit: Submit::Archive {
            file_name: "photos.zip".into(),
            bytes: b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n".to_vec(),
        },
        expected: refused(
            422,
            "unprocessable",
            "photos.zip is not a readable zip archive: it has no end of central directory record",
        ),
    });

    cases.push(Case {
        name: "zip-only-folders",
        about: "a zip of folders and dot-files only: no photos",
        submit: zip(
            "photos.zip",
            &[
                stored("a/", Vec::new()),
                stored(".DS_Store", vec![0; 16]),
                stored("__MACOSX/._26.jpg", vec![0; 16]),
            ],
        ),
        expected: refused(
            422,
            "unprocessable",
            "the upload has no photos: send files parts or an archive of images",
        ),
    });

    cases.push(Case {
        name: "zip-inside-zip",
        about: "a zip named 27.jpg inside the zip",
        submit: zip(
            "photos.zip",
            &[stored("27.jpg", raw_zip(&[stored("27.jpg", portrait(27))]))],
        ),
        expected: job(
            "finished_with_errors",
            names_of(&[(
                "27.jpg",
                "rejected",
                "not an image: starts with PK\\x03\\x04\\x14\\x00\\x00\\x08",
            )]),
        ),
    });

    {
        let why = "mapping.csv row 1 names photo.jpg, which is a/photo.jpg and b/photo.jpg; name \
                   the file by its path in the upload";
        cases.push(Case {
            name: "mapping-name-in-two-folders",
            about: "a mapping naming photo.jpg, which is in two folders of the zip: neither is \
                    used",
            submit: Submit::MappingAndArchive {
                mapping: b"S28,photo.jpg\n".to_vec(),
                archive: raw_zip(&[
                    stored("a/photo.jpg", portrait(281)),
                    stored("b/photo.jpg", portrait(282)),
                ]),
            },
            expected: job(
                "finished_with_errors",
                names_of(&[
                    ("a/photo.jpg", "unmatched", why),
                    ("b/photo.jpg", "unmatched", why),
                ]),
            ),
        });
    }

    cases.push(Case {
        name: "zip-two-mappings",
        about: "a zip carrying two mapping CSVs",
        submit: zip(
            "photos.zip",
            &[
                stored("one.csv", b"S29,29.jpg\n".to_vec()),
                stored("two.csv", b"S30,29.jpg\n".to_vec()),
                stored("29.jpg", portrait(29)),
            ],
        ),
        expected: refused(
            422,
            "unprocessable",
            "photos.zip has more than one CSV file (one.csv, two.csv); include at most one mapping",
        ),
    });

    cases
}

fn image_cases() -> Vec<Case> {
    let mut cases = Vec::new();

    cases.push(Case {
        name: "tiny-and-extreme-aspect",
        about: "1×1, 2×1 and 7999×1 images, and a 1×7999 one",
        submit: files(vec![
            ("40.png", png_of(1, 1)),
            ("41.png", png_of(2, 1)),
            ("42.png", png_of(7999, 1)),
            ("43.png", png_of(1, 7999)),
        ]),
        expected: job(
            "finished_with_errors",
            names_of(&[
                (
                    "40.png",
                    "rejected",
                    "the image is 1×1 pixels; a portrait needs at least 120×150",
                ),
                (
                    "41.png",
                    "rejected",
                    "the image is 2×1 pixels; a portrait needs at least 120×150",
                ),
                (
                    "42.png",
                    "rejected",
                    "the image is 7999×1, 7999.0 wide for 1 high; a portrait is 0.5 to 1.5 as \
                     wide as high",
                ),
                (
                    "43.png",
                    "rejected",
                    "the image is 1×7999, 1 wide for 7999.0 high; a portrait is 0.5 to 1.5 as \
                     wide as high",
                ),
            ]),
        ),
    });

    let too_large = |file: &str, side: u32| {
        row(
            file,
            "rejected",
            &format!("{side}×{side} exceeds the 8000 px limit"),
        )
    };
    cases.push(Case {
        name: "decompression-bombs",
        about: "PNG, GIF, TIFF, WebP and JPEG declaring 16,384 px sides or more (the PNG and \
                TIFF are real: 400 megapixels of deflated zeros), refused from their headers",
        submit: files(vec![
            ("44.png", png_bomb(20_000, 20_000)),
            ("45.gif", gif_bomb((20_000, 20_000), (20_000, 20_000))),
            ("46.tif", tiff_bomb(20_000, 20_000)),
            ("47.webp", webp_vp8x(20_000, 20_000)),
            ("48.webp", webp_vp8l(16_384, 16_384)),
            ("49.jpg", jpeg_claiming(65_000, 65_000)),
        ]),
        expected: job(
            "finished_with_errors",
            vec![
                too_large("44.png", 20_000),
                too_large("45.gif", 20_000),
                too_large("46.tif", 20_000),
                too_large("47.webp", 20_000),
                too_large("48.webp", 16_384),
                too_large("49.jpg", 65_000),
            ],
        ),
    });

    cases.push(Case {
        name: "gif-frame-larger-than-screen",
        about: "a GIF whose screen is 200×250 but whose frame is 20,000×20,000",
        submit: files(vec![("50.gif", gif_bomb((200, 250), (20_000, 20_000)))]),
        expected: job(
            "finished_with_errors",
            names_of(&[(
                "50.gif",
                "rejected",
                "corrupt GIF: decoding it would need more memory than allowed",
            )]),
        ),
    });

    cases.push(Case {
        name: "png-bomb-within-limits",
        about: "a real 6000×7500 PNG (45 megapixels, within the limits) of a few kB",
        submit: files(vec![("51.png", png_bomb(6000, 7500))]),
        expected: job("finished", names_of(&[("51.png", "applied", "")])),
    });

    cases.push(Case {
        name: "polyglots-named-jpg",
        about: "SVG, HTML, PDF, a zip and an empty file, each named .jpg; a GIF-headed script",
        submit: files(vec![
            (
                "52.jpg",
                b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" \
                  onload=\"alert(1)\"/>"
                    .to_vec(),
            ),
            (
                "53.jpg",
                b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>".to_vec(),
            ),
            (
                "54.jpg",
                b"%PDF-1.7\n1 0 obj << /JS (app.alert(1)) >> endobj\n".to_vec(),
            ),
            ("55.jpg", raw_zip(&[stored("x.jpg", portrait(55))])),
            ("56.jpg", Vec::new()),
            ("57.jpg", b"GIF89a/*\x00\x00*/=alert(1);".to_vec()),
        ]),
        expected: job(
            "finished_with_errors",
            names_of(&[
                ("52.jpg", "rejected", "unsupported image format: SVG"),
                ("53.jpg", "rejected", "not an image: starts with <!DOCTYP"),
                ("54.jpg", "rejected", "not an image: starts with %PDF-1.7"),
                (
                    "55.jpg",
                    "rejected",
                    "not an image: starts with PK\\x03\\x04\\x14\\x00\\x00\\x08",
                ),
                ("56.jpg", "rejected", "empty file"),
                ("57.jpg", "rejected", "10799×0 exceeds the 8000 px limit"),
            ]),
        ),
    });

    {
        let mut with_html = portrait(58);
        with_html.extend_from_slice(b"<html><script>alert(1)</script></html>");
        let mut with_zip = portrait(59);
        with_zip.extend_from_slice(&raw_zip(&[stored("evil.html", b"<script>".to_vec())]));
        cases.push(Case {
            name: "jpeg-with-trailing-payloads",
            about: "valid JPEGs with HTML and a zip appended (decoded and encoded again: the \
                    payload cannot survive)",
            submit: files(vec![("58.jpg", with_html), ("59.jpg", with_zip)]),
            expected: job(
                "finished",
                names_of(&[("58.jpg", "applied", ""), ("59.jpg", "applied", "")]),
            ),
        });
    }

    cases.push(Case {
        name: "huge-metadata-segments",
        about: "JPEGs with 200 maximal EXIF segments (13 MB) and a 255-part ICC profile (16 MB)",
        submit: files(vec![
            ("60.jpg", jpeg_with_segments(60, 0xE1, 200)),
            ("61.jpg", jpeg_with_segments(61, 0xE2, 255)),
        ]),
        expected: job(
            "finished",
            names_of(&[("60.jpg", "applied", ""), ("61.jpg", "applied", "")]),
        ),
    });

    cases.push(Case {
        name: "truncated-and-garbage-images",
        about: "a JPEG cut in half, a PNG cut after its header, random bytes behind a JPEG SOI",
        submit: files(vec![
            ("62.jpg", {
                let p = portrait(62);
                p[..p.len() / 2].to_vec()
            }),
            ("63.png", png_of(160, 200)[..40].to_vec()),
            ("64.jpg", {
                let mut b = vec![0xFF, 0xD8, 0xFF];
                b.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
                b
            }),
        ]),
        expected: job(
            "finished_with_errors",
            names_of(&[
                ("62.jpg", "rejected", "truncated JPEG"),
                ("63.png", "rejected", "truncated PNG"),
                ("64.jpg", "rejected", "truncated JPEG"),
            ]),
        ),
    });

    cases
}

fn csv_cases() -> Vec<Case> {
    let mut cases = Vec::new();

    cases.push(Case {
        name: "formula-file-names",
        about: "files named as spreadsheet formulas: the CSV log must defuse them",
        submit: zip(
            "photos.zip",
            &[
                stored("=HYPERLINK(\"http://x.test\",\"y\").jpg", portrait(70)),
                stored("+70.jpg", portrait(71)),
                stored("@SUM(1+1).jpg", portrait(72)),
            ],
        ),
        expected: Expected::Job {
            state: "finished_with_errors",
            warnings: Vec::new(),
            rows: vec![
                row(
                    "=HYPERLINK(\"http://x.test\",\"y\").jpg",
                    "unmatched",
                    "no person has x.test\",\"y\"), or any part of it, as student number, SIS \
                     id, state id, staff id or email (case and leading zeros ignored)",
                ),
                row("+70.jpg", "unmatched", &nobody("+70")),
                row(
                    "@SUM(1+1).jpg",
                    "unmatched",
                    "the file name says @SUM but 1 is the student number of First1 Last1",
                ),
            ],
            csv_lines: vec![
                "\"'=HYPERLINK(\"\"http://x.test\"\",\"\"y\"\").jpg\",unmatched,,,\"no person \
                 has x.test\"\",\"\"y\"\"), or any part of it, as student number, SIS id, state \
                 id, staff id or email (case and leading zeros ignored)\""
                    .to_owned(),
                format!("'+70.jpg,unmatched,,,\"{}\"", nobody("+70")),
                "'@SUM(1+1).jpg,unmatched,,,the file name says @SUM but 1 is the student number \
                 of First1 Last1"
                    .to_owned(),
            ],
        },
    });

    cases.push(Case {
        name: "mapping-formulas-nul-invalid-utf8",
        about: "a mapping with a formula id, a NUL byte, a byte that is not UTF-8 (read as \
                Windows-1252) and a row of NULs",
        submit: Submit::MappingAndFiles {
            mapping: b"=cmd|' /C calc'!A0,73.jpg\nS74\0,74.jpg\nS75,75\xff.jpg\n\0\0\0\n".to_vec(),
            files: vec![
                ("73.jpg".into(), portrait(73)),
                ("74.jpg".into(), portrait(74)),
                ("75\u{ff}.jpg".into(), portrait(75)),
            ],
        },
        expected: job_warned(
            "finished_with_errors",
            &[
                "mapping.csv row 2: contains a control character; skipped",
                "mapping.csv row 4: expected an email or identifier and a file name; skipped",
            ],
            vec![
                row(
                    "73.jpg",
                    "unmatched",
                    &format!("mapping row 1: {}", nobody("=cmd|' /C calc'!A0")),
                ),
                row("74.jpg", "unmatched", "not listed in the mapping CSV"),
                row("75\u{ff}.jpg", "applied", ""),
            ],
        ),
    });

    {
        // Rows of a JPEG read as CSV: most have one cell; two hold control characters.
        let mut warnings: Vec<String> = (1..=20)
            .map(|n| {
                if n == 3 || n == 16 {
                    format!("mapping.csv row {n}: contains a control character; skipped")
                } else {
                    format!(
                        "mapping.csv row {n}: expected an email or identifier and a file name; \
                         skipped"
                    )
                }
            })
            .collect();
        warnings.push("and 39 more mapping rows were skipped".into());
        cases.push(Case {
            name: "mapping-binary",
            about: "a JPEG sent as the mapping CSV",
            submit: Submit::MappingAndFiles {
                mapping: portrait(76),
                files: vec![("76.jpg".into(), portrait(76))],
            },
            expected: Expected::Job {
                state: "finished_with_errors",
                warnings,
                rows: names_of(&[("76.jpg", "unmatched", "not listed in the mapping CSV")]),
                csv_lines: Vec::new(),
            },
        });
    }

    cases.push(Case {
        name: "roster-formula-injection",
        about: "roster names that a spreadsheet would run: kept as written, defused in reports",
        submit: Submit::Roster(
            b"role,sis_id,first_name,last_name,school\n\
              student,F1,=HYPERLINK(\"http://x.test\"),Smith,North\n\
              student,F2,+1+1,-2-2,@SUM(A1)\n\
              student,F3,\"=cmd|' /C calc'!A0\",\"\tTab\",\"\rCr\"\n"
                .to_vec(),
        ),
        expected: Expected::Roster {
            status: 200,
            body: serde_json::json!({
                "created": 3, "updated": 0, "unchanged": 0, "rejected_rows": 0, "errors": []
            }),
            report_lines: vec![
                "student,F2,,,'+1+1,'-2-2,'@SUM(A1)".into(),
                "student,F3,,,'=cmd|' /C calc'!A0,Tab,Cr".into(),
                "student,F1,,,\"'=HYPERLINK(\"\"http://x.test\"\")\",Smith,North".into(),
            ],
        },
    });

    cases.push(Case {
        name: "roster-invalid-utf8-and-nul",
        about: "a roster with Windows-1252 bytes, NULs inside names (refused, naming the field), \
                a NUL in a SIS id",
        submit: Submit::Roster(
            b"role,sis_id,first_name,last_name\n\
              student,U1,Ren\xe9e,M\xfcller\n\
              student,U2,A\0da,Love\0lace\n\
              student,U3\0,\x81\x8d\x8f,\x90\x9d\n"
                .to_vec(),
        ),
        expected: Expected::Roster {
            status: 200,
            body: serde_json::json!({
                "created": 1, "updated": 0, "unchanged": 0, "rejected_rows": 2,
                "errors": [
                    {
                        "row": 3, "field": "first_name",
                        "reason": "\"A\\0da\" contains a control character; remove it"
                    },
                    {
                        "row": 3, "field": "last_name",
                        "reason": "\"Love\\0lace\" contains a control character; remove it"
                    },
                    {
                        "row": 4, "field": "sis_id",
                        "reason": "\"U3\\0\" contains a control character or '/'"
                    }
                ]
            }),
            report_lines: vec!["student,U1,,,Ren\u{e9}e,M\u{fc}ller,".into()],
        },
    });

    let header_refused = |message: &str| Expected::Roster {
        status: 422,
        body: serde_json::json!({"error": {"code": "unprocessable", "message": message}}),
        report_lines: Vec::new(),
    };
    let no_role = "roster CSV: the header row has no role column; expected role, email, sis_id, \
                   student_number, first_name, last_name, school";

    cases.push(Case {
        name: "roster-utf16",
        about: "a roster saved as UTF-16 with a byte-order mark",
        submit: Submit::Roster({
            let text = "role,sis_id,first_name,last_name\nstudent,W1,Wide,Chars\n";
            let mut bytes = vec![0xFF, 0xFE];
            for unit in text.encode_utf16() {
                bytes.extend_from_slice(&unit.to_le_bytes());
            }
            bytes
        }),
        expected: header_refused(no_role),
    });

    cases.push(Case {
        name: "roster-binary",
        about: "a PNG sent as the roster",
        submit: Submit::Roster(png_of(4, 4)),
        expected: header_refused(no_role),
    });

    cases.push(Case {
        name: "roster-duplicate-header",
        about: "a header naming sis_id twice",
        submit: Submit::Roster(
            b"role,sis_id,first_name,last_name,sis_id\nstudent,R1,Ann,Lee,R9\n".to_vec(),
        ),
        expected: header_refused("roster CSV: the header row names sis_id twice"),
    });

    cases.push(Case {
        name: "roster-ragged-and-duplicate",
        about: "rows with too many and too few cells, a SIS id given twice",
        submit: Submit::Roster(
            b"role,sis_id,first_name,last_name\n\
              student,R1,Ann,Lee\n\
              student,R2,Bo\n\
              student,R3,Cy,Day,x,y,z\n\
              student,R1,Ann,Again\n"
                .to_vec(),
        ),
        // Extra cells are ignored; a missing one is an empty field.
        expected: Expected::Roster {
            status: 200,
            body: serde_json::json!({
                "created": 2, "updated": 0, "unchanged": 0, "rejected_rows": 2,
                "errors": [
                    {"row": 3, "field": "last_name", "reason": "is empty"},
                    {"row": 5, "field": "sis_id", "reason": "\"R1\" is also on row 2"}
                ]
            }),
            report_lines: vec![
                "student,R1,,,Ann,Lee,".into(),
                "student,R3,,,Cy,Day,".into(),
            ],
        },
    });

    cases.push(Case {
        name: "roster-empty",
        about: "an empty roster body",
        submit: Submit::Roster(Vec::new()),
        expected: header_refused("roster CSV: the roster is empty"),
    });

    cases
}

pub fn write_all(dir: &std::path::Path) -> anyhow::Result<usize> {
    let cases = cases();
    for case in &cases {
        let folder = dir.join(case.name);
        std::fs::create_dir_all(&folder)?;
        let how = match &case.submit {
            Submit::Files(list) => {
                write_files(&folder, list)?;
                "POST /v1/districts/{d}/imports with each file in files/ as a `files` part"
            }
            Submit::Archive { file_name, bytes } => {
                std::fs::write(folder.join(file_name), bytes)?;
                "POST /v1/districts/{d}/imports with the zip as the `archive` part"
            }
            Submit::MappingAndFiles { mapping, files } => {
                std::fs::write(folder.join("mapping.csv"), mapping)?;
                write_files(&folder, files)?;
                "POST /v1/districts/{d}/imports with mapping.csv as `mapping` and each file in \
                 files/ as a `files` part"
            }
            Submit::MappingAndArchive { mapping, archive } => {
                std::fs::write(folder.join("mapping.csv"), mapping)?;
                std::fs::write(folder.join("photos.zip"), archive)?;
                "POST /v1/districts/{d}/imports with mapping.csv as `mapping` and photos.zip as \
                 `archive`"
            }
            Submit::Roster(bytes) => {
                std::fs::write(folder.join("roster.csv"), bytes)?;
                "POST /v1/districts/{d}/roster with roster.csv as the body (text/csv)"
            }
        };
        std::fs::write(
            folder.join("README.txt"),
            format!(
                "{}\n\n{}\n\nSend: {how}\n(image cases expect a roster of students numbered \
                 0..{ROSTER_SIZE}, SIS id S<n>)\n\nExpected:\n{:#?}\n",
                case.name, case.about, case.expected
            ),
        )?;
    }
    Ok(cases.len())
}

fn write_files(folder: &std::path::Path, list: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let dir = folder.join("files");
    std::fs::create_dir_all(&dir)?;
    for (i, (name, bytes)) in list.iter().enumerate() {
        // Files are sent under these names (which carry the student numbers); a name that is
        // not a plain file name on disk is written under a harmless one, numbered.
        let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0']);
        let on_disk = if plain {
            name.clone()
        } else {
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("{i:02}-{safe}")
        };
        std::fs::write(dir.join(on_disk), bytes)?;
    }
    Ok(())
}
