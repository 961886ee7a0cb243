//! CSV for people to open in spreadsheets. A cell that starts with `=`, `+`, `-`, `@`, tab or
//! carriage return would be run as a formula by Excel and others, so it is prefixed with `'`.

/// Makes one cell safe to open in a spreadsheet.
pub fn safe_cell(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

/// Writes rows of cells as CSV, every cell made safe.
///
/// The writer keeps no state from one row to the next that changes the bytes, so rows written by
/// separate builders and joined are what one builder writes: a streamed report writes each page
/// with a builder of its own and never holds the whole file.
pub struct CsvBuilder {
    writer: csv::Writer<Vec<u8>>,
}

impl Default for CsvBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvBuilder {
    pub fn new() -> Self {
        Self {
            writer: csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::new()),
        }
    }

    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = &'a str>) -> Result<(), csv::Error> {
        self.writer
            .write_record(cells.into_iter().map(|c| safe_cell(c).into_owned()))
    }

    pub fn finish(self) -> Result<Vec<u8>, csv::Error> {
        self.writer
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_quoting_is_kept() -> anyhow::Result<()> {
        let mut csv = CsvBuilder::new();
        csv.row(["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "plain", "a,b"])?;
        let text = String::from_utf8(csv.finish()?)?;
        assert_eq!(
            text,
            "\"'=HYPERLINK(\"\"x\"\")\",'+1,'-2,'@SUM(A1),plain,\"a,b\"\r\n"
        );
        Ok(())
    }

    #[test]
    fn pages_written_apart_join_into_the_whole() -> anyhow::Result<()> {
        let rows = [
            ["role", "name", "note"],
            ["student", "=cmd", "line\nbreak"],
            ["staff", "a \"b\"", ""],
            ["student", "plain", "-1,2"],
        ];
        let mut whole = CsvBuilder::new();
        for row in rows {
            whole.row(row)?;
        }
        let mut joined = Vec::new();
        for page in rows.chunks(2) {
            let mut csv = CsvBuilder::new();
            for row in page {
                csv.row(*row)?;
            }
            joined.extend(csv.finish()?);
        }
        assert_eq!(joined, whole.finish()?);
        Ok(())
    }
}
