//! Text from spreadsheets. Excel on Windows saves CSV as Windows-1252 unless told otherwise, so a
//! field that is not valid UTF-8 is read as Windows-1252 rather than refused.

/// Windows-1252 characters for bytes 0x80–0x9F (where it differs from Latin-1); unassigned bytes
/// become U+FFFD.
const CP1252_HIGH: [char; 32] = [
    '€', '\u{fffd}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{fffd}', 'Ž',
    '\u{fffd}', '\u{fffd}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{fffd}',
    'ž', 'Ÿ',
];

/// Decodes one CSV field: UTF-8 when it is valid UTF-8, else Windows-1252.
pub fn decode_spreadsheet_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes
            .iter()
            .map(|&b| match b {
                0x80..=0x9f => CP1252_HIGH[usize::from(b - 0x80)],
                _ => char::from(b),
            })
            .collect(),
    }
}

/// A name from an upload (a file or archive entry name) as it may be stored and shown: control
/// characters, which no real name has and PostgreSQL cannot store (NUL), become U+FFFD.
pub fn printable(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_not_kept_in_names() {
        assert_eq!(printable("1.jpg\0../../evil"), "1.jpg\u{fffd}../../evil");
        assert_eq!(printable("a\tb\x07.jpg"), "a\u{fffd}b\u{fffd}.jpg");
        assert_eq!(printable("Zoë.jpg"), "Zoë.jpg");
    }

    #[test]
    fn utf8_passes_and_windows_1252_is_decoded() {
        assert_eq!(decode_spreadsheet_text("José".as_bytes()), "José");
        assert_eq!(
            decode_spreadsheet_text(b"Jos\xe9 \x93Pe\xf1a\x94 \x80"),
            "José “Peña” €"
        );
    }
}
