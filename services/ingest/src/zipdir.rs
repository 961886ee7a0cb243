//! Reads a zip's central directory record by record. The zip crate keys entries by name, so of
//! two entries with one name it shows only one; every entry of an upload must get an outcome,
//! so the directory is read here, in archive order, duplicates and all. Zip64 is supported.
//!
//! Each entry's local header is read too: its data offset comes from it, and a missing or
//! inconsistent one, or data that runs past the end of the file, marks the entry damaged (a
//! per-file outcome) rather than failing the whole archive.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

const EOCD_SIGNATURE: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIGNATURE: u32 = 0x0606_4b50;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
const LOCAL_SIGNATURE: u32 = 0x0403_4b50;
const EOCD_LEN: u64 = 22;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: u64 = 30;
/// The end record's comment is at most this long, so the record is within this of the end.
const MAX_COMMENT: u64 = 0xFFFF;
/// A central directory larger than this is not a photo delivery (500 000 entries with long
/// names fit well within it); it is refused rather than read into memory.
const MAX_DIRECTORY_BYTES: u64 = 256 * 1024 * 1024;

/// One central directory record, with what its local header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub name: String,
    pub method: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub encrypted: bool,
    /// Where its local header starts.
    pub header_offset: u64,
    /// Where its data starts, if its local header could be read and the data lies within the
    /// archive.
    pub data_offset: Option<u64>,
    /// Why the entry cannot be read, in words for the job log (`its data runs past …`).
    pub damage: Option<String>,
}

impl RawEntry {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/') || self.name.ends_with('\\')
    }

    /// The bytes the entry occupies, header to end of data, when both are in the archive, even
    /// if its local header disagrees with the directory (entries of an overlap bomb share one).
    pub fn span(&self) -> Option<(u64, u64)> {
        self.data_offset
            .map(|data| (self.header_offset, data + self.compressed_size))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("it has more than {0} entries")]
    TooManyEntries(usize),
}

fn invalid(detail: impl Into<String>) -> DirectoryError {
    DirectoryError::Invalid(detail.into())
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    })
}

fn read_at(file: &mut File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0; len];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// Where the central directory is and how many records it declares.
struct Directory {
    offset: u64,
    size: u64,
    entries: u64,
    /// Bytes prepended to the archive (a self-extractor): every stored offset is shifted by it.
    shift: u64,
}

fn find_directory(file: &mut File, len: u64) -> Result<Directory, DirectoryError> {
    if len < EOCD_LEN {
        return Err(invalid("it is too short to be a zip archive"));
    }
    let tail_len = len.min(EOCD_LEN + MAX_COMMENT);
    let tail_start = len - tail_len;
    let tail = read_at(file, tail_start, usize::try_from(tail_len).unwrap_or(0))?;
    // The last signature is the record: an earlier one may sit inside the comment's text.
    let at = (0..=tail.len().saturating_sub(EOCD_LEN as usize))
        .rev()
        .find(|&i| u32_at(&tail, i) == EOCD_SIGNATURE)
        .ok_or_else(|| invalid("it has no end of central directory record"))?;
    let eocd_pos = tail_start + at as u64;
    let eocd = &tail[at..];
    let mut entries = u64::from(u16_at(eocd, 10));
    let mut size = u64::from(u32_at(eocd, 12));
    let mut offset = u64::from(u32_at(eocd, 16));
    let mut end_of_directory = eocd_pos;
    let zip64 = entries == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF;
    if zip64 && eocd_pos >= 20 {
        let locator = read_at(file, eocd_pos - 20, 20)?;
        if u32_at(&locator, 0) == ZIP64_LOCATOR_SIGNATURE {
            let record_pos = u64_at(&locator, 8);
            let record = read_at(file, record_pos, 56)
                .map_err(|_| invalid("its zip64 end record is missing"))?;
            if u32_at(&record, 0) != ZIP64_EOCD_SIGNATURE {
                return Err(invalid("its zip64 end record is missing"));
            }
            entries = u64_at(&record, 32);
            size = u64_at(&record, 40);
            offset = u64_at(&record, 48);
            end_of_directory = record_pos;
        }
    }
    let stored_end = offset
        .checked_add(size)
        .ok_or_else(|| invalid("its central directory is out of range"))?;
    if stored_end > end_of_directory {
        return Err(invalid(
            "its central directory runs past the end of the file",
        ));
    }
    if size > MAX_DIRECTORY_BYTES {
        return Err(invalid("its central directory is too large"));
    }
    Ok(Directory {
        offset,
        size,
        entries,
        shift: end_of_directory - stored_end,
    })
}

/// The fields a zip64 extra field replaces, in its order: those that were `0xFFFFFFFF`.
fn apply_zip64(extra: &[u8], usize_: &mut u64, csize: &mut u64, offset: &mut u64) {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let id = u16_at(extra, at);
        let len = usize::from(u16_at(extra, at + 2));
        let body = extra.get(at + 4..at + 4 + len).unwrap_or_default();
        if id == 0x0001 {
            let mut pos = 0;
            for field in [usize_, csize, offset] {
                if *field == 0xFFFF_FFFF && pos + 8 <= body.len() {
                    *field = u64_at(body, pos);
                    pos += 8;
                }
            }
            return;
        }
        at += 4 + len;
    }
}

/// Names are UTF-8 when flagged so (bit 11) or valid as such; otherwise IBM code page 437, the
/// zip format's default, which Windows' own zipper still writes.
fn decode_name(raw: &[u8], utf8: bool) -> String {
    if utf8 || raw.is_ascii() {
        return String::from_utf8_lossy(raw).into_owned();
    }
    if let Ok(text) = std::str::from_utf8(raw) {
        return text.to_owned();
    }
    const HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";
    let high: Vec<char> = HIGH.chars().collect();
    raw.iter()
        .map(|&b| {
            if b < 0x80 {
                char::from(b)
            } else {
                high.get(usize::from(b - 0x80)).copied().unwrap_or('?')
            }
        })
        .collect()
}

/// Every record of the central directory of the zip at `file`, in archive order.
pub fn read(file: &mut File, max_entries: usize) -> Result<Vec<RawEntry>, DirectoryError> {
    let len = file.metadata()?.len();
    let dir = find_directory(file, len)?;
    if dir.entries > max_entries as u64 {
        return Err(DirectoryError::TooManyEntries(max_entries));
    }
    let bytes = read_at(
        file,
        dir.offset + dir.shift,
        usize::try_from(dir.size).map_err(|_| invalid("its central directory is too large"))?,
    )?;
    let mut entries = Vec::new();
    let mut at = 0usize;
    while at + CENTRAL_LEN <= bytes.len() && u32_at(&bytes, at) == CENTRAL_SIGNATURE {
        if entries.len() >= max_entries {
            return Err(DirectoryError::TooManyEntries(max_entries));
        }
        let record = &bytes[at..];
        let flags = u16_at(record, 8);
        let name_len = usize::from(u16_at(record, 28));
        let extra_len = usize::from(u16_at(record, 30));
        let comment_len = usize::from(u16_at(record, 32));
        let end = CENTRAL_LEN + name_len + extra_len + comment_len;
        if record.len() < end {
            return Err(invalid("its central directory is cut short"));
        }
        let raw_name = &record[CENTRAL_LEN..CENTRAL_LEN + name_len];
        let extra = &record[CENTRAL_LEN + name_len..CENTRAL_LEN + name_len + extra_len];
        let mut uncompressed_size = u64::from(u32_at(record, 24));
        let mut compressed_size = u64::from(u32_at(record, 20));
        let mut header_offset = u64::from(u32_at(record, 42));
        apply_zip64(
            extra,
            &mut uncompressed_size,
            &mut compressed_size,
            &mut header_offset,
        );
        let mut entry = RawEntry {
            name: decode_name(raw_name, flags & 0x0800 != 0),
            method: u16_at(record, 10),
            crc32: u32_at(record, 16),
            compressed_size,
            uncompressed_size,
            encrypted: flags & 1 != 0,
            header_offset: header_offset.saturating_add(dir.shift),
            data_offset: None,
            damage: None,
        };
        check_local_header(file, len, raw_name, &mut entry)?;
        entries.push(entry);
        at += end;
    }
    if (entries.len() as u64) < dir.entries {
        return Err(invalid(format!(
            "its central directory lists {} of the {} entries it declares",
            entries.len(),
            dir.entries
        )));
    }
    Ok(entries)
}

/// Finds the entry's data through its local header, or says why it cannot be read.
fn check_local_header(
    file: &mut File,
    len: u64,
    raw_name: &[u8],
    entry: &mut RawEntry,
) -> Result<(), DirectoryError> {
    const PAST_END: &str = "its data runs past the end of the archive";
    if entry.header_offset.saturating_add(LOCAL_LEN) > len {
        entry.damage = Some(PAST_END.into());
        return Ok(());
    }
    let header = read_at(file, entry.header_offset, LOCAL_LEN as usize)?;
    if u32_at(&header, 0) != LOCAL_SIGNATURE {
        entry.damage = Some("its local header is missing".into());
        return Ok(());
    }
    let name_len = u64::from(u16_at(&header, 26));
    let extra_len = u64::from(u16_at(&header, 28));
    let data_offset = entry.header_offset + LOCAL_LEN + name_len + extra_len;
    let local_name = if name_len == raw_name.len() as u64 && data_offset <= len {
        read_at(file, entry.header_offset + LOCAL_LEN, raw_name.len())?
    } else {
        Vec::new()
    };
    match data_offset.checked_add(entry.compressed_size) {
        Some(end) if end <= len => entry.data_offset = Some(data_offset),
        _ => {
            entry.damage = Some(PAST_END.into());
            return Ok(());
        }
    }
    if local_name != raw_name || u16_at(&header, 8) != entry.method {
        entry.damage = Some("its local header does not match the archive's directory".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn names_in_code_page_437_are_decoded() {
        assert_eq!(decode_name(b"Fran\x87ois.jpg", false), "François.jpg");
        assert_eq!(decode_name("Zoë.jpg".as_bytes(), false), "Zoë.jpg");
    }

    #[test]
    fn reads_zip64_archives() -> anyhow::Result<()> {
        let mut file = tempfile::tempfile()?;
        {
            let mut zip = zip::ZipWriter::new(&mut file);
            let options = zip::write::SimpleFileOptions::default().large_file(true);
            zip.start_file("a.jpg", options)?;
            zip.write_all(b"zip64 entry")?;
            zip.finish()?;
        }
        let entries = read(&mut file, 10)?;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].damage, None);
        assert_eq!(entries[0].uncompressed_size, 11);
        Ok(())
    }
}
