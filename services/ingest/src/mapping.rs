//! The SmartPass-style mapping CSV: no header; column 1 an email or identifier, column 2 the image
//! file name, exact and case-sensitive, with its extension.

use std::collections::HashMap;

use pictureday_contract::events::MappedKey;
use pictureday_platform::text::decode_spreadsheet_text;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// File name → the identifier it maps to.
    pub by_file: HashMap<String, MappedKey>,
    /// Rows that were skipped, and why, for the job's warnings.
    pub warnings: Vec<String>,
}

impl Mapping {
    /// The key for a file, by its full path in the upload or its base name.
    pub fn key_for(&self, path: &str) -> Option<&MappedKey> {
        self.by_file
            .get(path)
            .or_else(|| self.by_file.get(base_name(path)))
    }
}

pub fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Parses a mapping; `source` names it in warnings (e.g. `mapping.csv`).
pub fn parse(source: &str, data: &[u8]) -> Mapping {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut mapping = Mapping::default();
    let mut rows_of: HashMap<String, u32> = HashMap::new();
    for (n, record) in reader.byte_records().enumerate() {
        let row = u32::try_from(n).unwrap_or(u32::MAX).saturating_add(1);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                mapping
                    .warnings
                    .push(format!("{source} row {row}: unreadable ({e}); skipped"));
                continue;
            }
        };
        let cells: Vec<String> = record
            .iter()
            .map(|c| decode_spreadsheet_text(c).trim().to_owned())
            .collect();
        if cells.iter().all(String::is_empty) {
            continue;
        }
        let (Some(key), Some(file)) = (
            cells.first().filter(|c| !c.is_empty()),
            cells.get(1).filter(|c| !c.is_empty()),
        ) else {
            mapping.warnings.push(format!(
                "{source} row {row}: expected an email or identifier and a file name; skipped"
            ));
            continue;
        };
        if key.chars().chain(file.chars()).any(char::is_control) {
            // Never a real id or file name, and not storable as text everywhere (NUL).
            mapping.warnings.push(format!(
                "{source} row {row}: contains a control character; skipped"
            ));
            continue;
        }
        if row == 1 && !file.contains('.') && !key.contains('@') {
            mapping.warnings.push(format!(
                "{source} row 1 looks like a header ({key}, {file}) and was skipped; a mapping has no header"
            ));
            continue;
        }
        if let Some(first) = rows_of.get(file) {
            mapping.warnings.push(format!(
                "{source} row {row}: {file} is already mapped on row {first}; the first is used"
            ));
            continue;
        }
        rows_of.insert(file.clone(), row);
        mapping.by_file.insert(
            file.clone(),
            MappedKey {
                value: key.clone(),
                row,
            },
        );
    }
    mapping
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_control_characters_are_skipped() {
        let mapping = parse("m.csv", b"S74\0,74.jpg\nS75,75\x07.jpg\nS76,76.jpg\n");
        assert_eq!(
            mapping.warnings,
            [
                "m.csv row 1: contains a control character; skipped",
                "m.csv row 2: contains a control character; skipped"
            ]
        );
        assert_eq!(mapping.by_file.len(), 1);
    }

    #[test]
    fn maps_files_to_keys_with_rows() {
        let mapping = parse(
            "mapping.csv",
            b"\xef\xbb\xbfada@example.org,IMG_0001.JPG\r\n\"S 2\",\"a,b.jpg\"\r\n\r\n",
        );
        assert_eq!(mapping.warnings, Vec::<String>::new());
        assert_eq!(
            mapping.key_for("IMG_0001.JPG"),
            Some(&MappedKey {
                value: "ada@example.org".into(),
                row: 1
            })
        );
        assert_eq!(mapping.key_for("sub/dir/a,b.jpg").map(|k| k.row), Some(2));
        // Exact and case-sensitive.
        assert_eq!(mapping.key_for("img_0001.jpg"), None);
    }

    #[test]
    fn bad_rows_become_warnings() {
        let mapping = parse(
            "mapping.csv",
            b"identifier,filename\n1001\n1002,a.jpg\n1003,a.jpg\n",
        );
        assert_eq!(
            mapping.warnings,
            vec![
                "mapping.csv row 1 looks like a header (identifier, filename) and was skipped; a mapping has no header",
                "mapping.csv row 2: expected an email or identifier and a file name; skipped",
                "mapping.csv row 4: a.jpg is already mapped on row 3; the first is used",
            ]
        );
        assert_eq!(
            mapping.key_for("a.jpg").map(|k| k.value.as_str()),
            Some("1002")
        );
    }
}
