//! One CSV file of a OneRoster zip, read record by record: columns found by their header name
//! (any case, unknown ones ignored), a UTF-8 byte-order mark skipped, CRLF line ends and
//! Windows-1252 text handled as in the roster CSV. Row numbers count the header as row 1.

use std::collections::HashMap;
use std::io::BufRead;

use pictureday_platform::text::decode_spreadsheet_text;

use super::{FileError, OneRosterError};

pub(super) struct Table<R: BufRead> {
    pub(super) file: &'static str,
    reader: csv::Reader<R>,
    record: csv::ByteRecord,
    /// Lower-cased header name → position.
    columns: HashMap<String, usize>,
    read: u64,
}

/// The next record of a table.
pub(super) enum Next {
    /// A record is loaded (read its fields with [`Table::get`]) at this row.
    Row(u32),
    /// A record of nothing but blanks, at this row.
    Blank(u32),
    /// A record the CSV reader could not read: the row is rejected.
    Unreadable(FileError),
}

impl<R: BufRead> Table<R> {
    pub(super) fn new(file: &'static str, mut input: R) -> Result<Self, OneRosterError> {
        let unreadable = |reason: String| OneRosterError::Unreadable {
            file,
            row: 1,
            reason,
        };
        let head = input.fill_buf().map_err(|e| unreadable(e.to_string()))?;
        if head.starts_with(b"\xef\xbb\xbf") {
            input.consume(3);
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut header = csv::ByteRecord::new();
        match reader.read_byte_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Err(OneRosterError::EmptyFile(file)),
            Err(e) => return Err(unreadable(e.to_string())),
        }
        let mut columns = HashMap::new();
        for (i, raw) in header.iter().enumerate() {
            let name = decode_spreadsheet_text(raw)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_ascii_lowercase();
            if !name.is_empty() && columns.insert(name, i).is_some() {
                let name = decode_spreadsheet_text(raw).trim().to_owned();
                return Err(OneRosterError::DuplicateColumn { file, column: name });
            }
        }
        Ok(Self {
            file,
            reader,
            record: csv::ByteRecord::new(),
            columns,
            read: 0,
        })
    }

    pub(super) fn has(&self, column: &str) -> bool {
        self.columns.contains_key(&column.to_ascii_lowercase())
    }

    /// Fails unless the header names every one of `columns`.
    pub(super) fn require(&self, columns: &[&'static str]) -> Result<(), OneRosterError> {
        match columns.iter().find(|c| !self.has(c)) {
            Some(column) => Err(OneRosterError::MissingColumn {
                file: self.file,
                column,
            }),
            None => Ok(()),
        }
    }

    /// The next record, or `None` at the end; an I/O error (a damaged zip entry) ends the file.
    pub(super) fn next(&mut self) -> Result<Option<Next>, OneRosterError> {
        let row = u32::try_from(self.read)
            .unwrap_or(u32::MAX)
            .saturating_add(2);
        let more = self.reader.read_byte_record(&mut self.record);
        self.read += 1;
        match more {
            Ok(false) => Ok(None),
            Ok(true) if self.blank() => Ok(Some(Next::Blank(row))),
            Ok(true) => Ok(Some(Next::Row(row))),
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                Err(OneRosterError::Unreadable {
                    file: self.file,
                    row,
                    reason: e.to_string(),
                })
            }
            Err(e) => Ok(Some(Next::Unreadable(FileError {
                file: self.file,
                row,
                field: String::new(),
                reason: format!("unreadable: {e}"),
            }))),
        }
    }

    fn blank(&self) -> bool {
        self.record
            .iter()
            .all(|f| f.iter().all(u8::is_ascii_whitespace))
    }

    /// The trimmed value of `column` in the current record; `None` when empty or absent.
    pub(super) fn get(&self, column: &str) -> Option<String> {
        let i = *self.columns.get(&column.to_ascii_lowercase())?;
        let value = decode_spreadsheet_text(self.record.get(i)?);
        let value = value.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }
}
