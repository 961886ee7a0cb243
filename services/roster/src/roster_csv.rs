//! Parses a roster CSV (header row: role, email, sis_id, student_number, first_name, last_name,
//! school; optional state_id, staff_id, preferred_first_name, grade, homeroom, teacher, status)
//! into
//! validated rows and per-row errors. Quoted fields, a UTF-8 byte-order mark, CRLF
//! line ends and Windows-1252 exports from spreadsheets are all handled.
//!
//! Row numbers count the header as row 1, as a spreadsheet shows them.

use std::collections::HashMap;
use std::io::{BufRead, Read};

use pictureday_platform::text::decode_spreadsheet_text;
use sea_orm::sea_query::StringLen;
use serde::Serialize;

/// A person's role; stored by its name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    sea_orm::EnumIter,
    sea_orm::DeriveActiveEnum,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[derive(utoipa::ToSchema)]
#[schema(as = PersonRole)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[sea_orm(string_value = "student")]
    Student,
    #[sea_orm(string_value = "staff")]
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Staff => "staff",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    pub row: u32,
    pub role: Role,
    pub email: Option<String>,
    pub sis_id: Option<String>,
    pub student_number: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub school: String,
    pub state_id: Option<String>,
    pub staff_id: Option<String>,
    pub preferred_first_name: Option<String>,
    pub grade: Option<String>,
    pub homeroom: Option<String>,
    pub teacher: Option<String>,
    /// The optional `status` column: `false` for `inactive` (withdrawn, left); absent or
    /// `active`, `true`.
    pub active: bool,
}

impl RosterRow {
    /// What the row says about the person.
    pub fn fields(&self) -> crate::person_fields::PersonFields {
        crate::person_fields::PersonFields {
            role: self.role,
            email: self.email.clone(),
            sis_id: self.sis_id.clone(),
            student_number: self.student_number.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            school: self.school.clone(),
            state_id: self.state_id.clone(),
            staff_id: self.staff_id.clone(),
            preferred_first_name: self.preferred_first_name.clone(),
            grade: self.grade.clone(),
            homeroom: self.homeroom.clone(),
            teacher: self.teacher.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub row: u32,
    pub field: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RosterCsvError {
    #[error("the roster is empty")]
    Empty,
    #[error(
        "the header row has no {0} column; expected role, email, sis_id, student_number, first_name, last_name, school"
    )]
    MissingColumn(&'static str),
    #[error("the header row names {0} twice")]
    DuplicateColumn(String),
    #[error("the header row needs a sis_id or an email column to identify people")]
    NoIdentifierColumn,
    #[error("row {row}: {reason}")]
    Unreadable { row: u32, reason: String },
}

#[derive(Debug, Default)]
pub struct ParsedRoster {
    pub rows: Vec<RosterRow>,
    pub errors: Vec<RowError>,
}

const COLUMNS: [&str; 14] = [
    "role",
    "email",
    "sis_id",
    "student_number",
    "first_name",
    "last_name",
    "school",
    "state_id",
    "staff_id",
    "preferred_first_name",
    "grade",
    "homeroom",
    "teacher",
    "status",
];

/// Other names exports give the optional columns.
const ALIASES: [(&str, &str); 5] = [
    ("local_id", "student_number"),
    ("preferred_name", "preferred_first_name"),
    ("nickname", "preferred_first_name"),
    ("teacher_number", "staff_id"),
    ("grade_level", "grade"),
];

fn normalise_header(raw: &[u8]) -> String {
    let text = decode_spreadsheet_text(raw);
    text.trim_start_matches('\u{feff}')
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
}

pub fn parse(data: &[u8]) -> Result<ParsedRoster, RosterCsvError> {
    let mut reader = RosterReader::new(data)?;
    let mut parsed = ParsedRoster::default();
    while let Some((_, record)) = reader.next_record()? {
        match record {
            Record::Row(row) => parsed.rows.push(*row),
            Record::Rejected(errors) => parsed.errors.extend(errors),
            Record::Blank => {}
        }
    }
    Ok(parsed)
}

/// One record of a roster after its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A valid row.
    Row(Box<RosterRow>),
    /// A row with errors: skipped, and every error reported.
    Rejected(Vec<RowError>),
    /// A row of nothing but blanks: ignored.
    Blank,
}

/// Reads a roster record by record, from any reader: memory stays flat however long the file is
/// (only the identifiers seen so far are kept, to report a row that repeats an earlier one).
pub struct RosterReader<R: Read> {
    reader: csv::Reader<R>,
    record: csv::ByteRecord,
    index: HashMap<&'static str, usize>,
    seen_sis: HashMap<String, u32>,
    seen_email: HashMap<String, u32>,
    /// Records read after the header.
    read: u64,
}

impl<R: BufRead> RosterReader<R> {
    /// Reads and checks the header row (a UTF-8 byte-order mark before it is skipped).
    pub fn new(mut input: R) -> Result<Self, RosterCsvError> {
        let unreadable = |e: std::io::Error| RosterCsvError::Unreadable {
            row: 1,
            reason: e.to_string(),
        };
        let head = input.fill_buf().map_err(unreadable)?;
        if head.starts_with(b"\xef\xbb\xbf") {
            input.consume(3);
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut header = csv::ByteRecord::new();
        match reader.read_byte_record(&mut header) {
            Ok(false) => return Err(RosterCsvError::Empty),
            Err(e) => {
                return Err(RosterCsvError::Unreadable {
                    row: 1,
                    reason: e.to_string(),
                });
            }
            Ok(true) => {}
        }
        let mut index: HashMap<&'static str, usize> = HashMap::new();
        for (i, raw) in header.iter().enumerate() {
            let header = normalise_header(raw);
            let name = ALIASES
                .iter()
                .find(|(alias, _)| *alias == header)
                .map_or(header.as_str(), |(_, column)| column)
                .to_owned();
            if let Some(column) = COLUMNS.iter().find(|c| **c == name)
                && index.insert(column, i).is_some()
            {
                return Err(RosterCsvError::DuplicateColumn(name));
            }
        }
        for required in ["role", "first_name", "last_name"] {
            if !index.contains_key(required) {
                return Err(RosterCsvError::MissingColumn(required));
            }
        }
        if !index.contains_key("sis_id") && !index.contains_key("email") {
            return Err(RosterCsvError::NoIdentifierColumn);
        }
        Ok(Self {
            reader,
            record: csv::ByteRecord::new(),
            index,
            seen_sis: HashMap::new(),
            seen_email: HashMap::new(),
            read: 0,
        })
    }
}

impl<R: Read> RosterReader<R> {
    /// The next record and its row number (the header is row 1), or `None` at the end. A
    /// record the CSV reader cannot read is a rejected row; failing to read the input at all
    /// (an I/O error) ends the roster with an error.
    pub fn next_record(&mut self) -> Result<Option<(u32, Record)>, RosterCsvError> {
        let row = u32::try_from(self.read)
            .unwrap_or(u32::MAX)
            .saturating_add(2);
        let more = self.reader.read_byte_record(&mut self.record);
        self.read += 1;
        match more {
            Ok(false) => Ok(None),
            Ok(true) => Ok(Some((row, self.check(row)))),
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                Err(RosterCsvError::Unreadable {
                    row,
                    reason: e.to_string(),
                })
            }
            Err(e) => Ok(Some((
                row,
                Record::Rejected(vec![RowError {
                    row,
                    field: String::new(),
                    reason: format!("unreadable: {e}"),
                }]),
            ))),
        }
    }

    fn check(&mut self, row: u32) -> Record {
        let record = &self.record;
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            return Record::Blank;
        }
        let index = &self.index;
        let field = |name: &str| -> Option<String> {
            let i = *index.get(name)?;
            let value = decode_spreadsheet_text(record.get(i)?);
            let value = value.trim();
            (!value.is_empty()).then(|| value.to_owned())
        };
        let mut errors = Vec::new();
        let mut error = |field: &str, reason: String| {
            errors.push(RowError {
                row,
                field: field.into(),
                reason,
            })
        };
        // No name or other text a person has holds a control character (and PostgreSQL cannot
        // store a NUL): the row is refused, naming the field, rather than stored half-readable.
        for name in [
            "first_name",
            "last_name",
            "preferred_first_name",
            "email",
            "school",
            "grade",
            "homeroom",
            "teacher",
        ] {
            if let Some(value) = field(name)
                && value.chars().any(|c| c.is_control() && !c.is_whitespace())
            {
                error(
                    name,
                    format!("{value:?} contains a control character; remove it"),
                );
            }
        }
        let role = match field("role").map(|r| r.to_ascii_lowercase()).as_deref() {
            Some("student") => Some(Role::Student),
            Some("staff") => Some(Role::Staff),
            Some(other) => {
                error("role", format!("must be student or staff, not {other:?}"));
                None
            }
            None => {
                error("role", "is empty; use student or staff".into());
                None
            }
        };
        let active = match field("status").map(|r| r.to_ascii_lowercase()).as_deref() {
            None | Some("active") => true,
            Some("inactive") => false,
            Some(other) => {
                error(
                    "status",
                    format!("must be active or inactive (or empty for active), not {other:?}"),
                );
                true
            }
        };
        let email = field("email").map(|e| e.to_lowercase());
        if let Some(email) = &email
            && !looks_like_email(email)
        {
            error("email", format!("{email:?} is not an email address"));
        }
        let sis_id = field("sis_id");
        let student_number = field("student_number");
        let state_id = field("state_id");
        let staff_id = field("staff_id");
        for (name, value) in [
            ("sis_id", &sis_id),
            ("student_number", &student_number),
            ("state_id", &state_id),
            ("staff_id", &staff_id),
        ] {
            if let Some(value) = value
                && (value.chars().any(char::is_control) || value.contains('/'))
            {
                error(
                    name,
                    format!("{value:?} contains a control character or '/'"),
                );
            }
        }
        if sis_id.is_none() && email.is_none() {
            error(
                "sis_id",
                "is empty and so is email; a person needs one of them".into(),
            );
        }
        let first_name = field("first_name");
        let last_name = field("last_name");
        if first_name.is_none() {
            error("first_name", "is empty".into());
        }
        if last_name.is_none() {
            error("last_name", "is empty".into());
        }
        if let Some(sis) = &sis_id {
            if let Some(first) = self.seen_sis.get(sis) {
                error("sis_id", format!("{sis:?} is also on row {first}"));
            }
        } else if let Some(email) = &email
            && let Some(first) = self.seen_email.get(email)
        {
            error("email", format!("{email:?} is also on row {first}"));
        }
        if !errors.is_empty() {
            return Record::Rejected(errors);
        }
        if let Some(sis) = &sis_id {
            self.seen_sis.insert(sis.clone(), row);
        } else if let Some(email) = &email {
            self.seen_email.insert(email.clone(), row);
        }
        match (role, first_name, last_name) {
            (Some(role), Some(first_name), Some(last_name)) => Record::Row(Box::new(RosterRow {
                row,
                role,
                email,
                sis_id,
                student_number,
                first_name,
                last_name,
                school: field("school").unwrap_or_default(),
                state_id,
                staff_id,
                preferred_first_name: field("preferred_first_name"),
                grade: field("grade"),
                homeroom: field("homeroom"),
                teacher: field("teacher"),
                active,
            })),
            // Unreachable: each missing one was an error above.
            _ => Record::Blank,
        }
    }
}

fn looks_like_email(value: &str) -> bool {
    let mut parts = value.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !value.chars().any(char::is_whitespace)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "role,email,sis_id,student_number,first_name,last_name,school\r\n";

    #[test]
    fn parses_quotes_bom_and_crlf() -> Result<(), RosterCsvError> {
        let data = format!(
            "\u{feff}{HEADER}student,Ada@Example.org,S1,1001,\"Ada, Jr.\",\"Love\"\"lace\",North\r\nstaff,bob@example.org,,,Bob,Ng,\r\n"
        );
        let parsed = parse(data.as_bytes())?;
        assert_eq!(parsed.errors, vec![]);
        assert_eq!(parsed.rows.len(), 2);
        let ada = &parsed.rows[0];
        assert_eq!(ada.row, 2);
        assert_eq!(ada.email.as_deref(), Some("ada@example.org"));
        assert_eq!(ada.first_name, "Ada, Jr.");
        assert_eq!(ada.last_name, "Love\"lace");
        assert_eq!(ada.student_number.as_deref(), Some("1001"));
        assert_eq!(parsed.rows[1].role, Role::Staff);
        assert_eq!(parsed.rows[1].sis_id, None);
        Ok(())
    }

    #[test]
    fn names_with_control_characters_are_refused() -> Result<(), RosterCsvError> {
        let data = format!("{HEADER}student,,S1,,A\0da,Love\u{7}lace,X\nstudent,,S2,,Bo,Ng,X\n");
        let parsed = parse(data.as_bytes())?;
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(
            parsed.errors,
            vec![
                RowError {
                    row: 2,
                    field: "first_name".into(),
                    reason: "\"A\\0da\" contains a control character; remove it".into()
                },
                RowError {
                    row: 2,
                    field: "last_name".into(),
                    reason: "\"Love\\u{7}lace\" contains a control character; remove it".into()
                }
            ]
        );
        Ok(())
    }

    #[test]
    fn multi_line_quoted_fields_keep_row_numbers() -> Result<(), RosterCsvError> {
        let data = format!("{HEADER}student,,S1,,\"Multi\nLine\",A,X\nteacher,,S2,,B,C,X\n");
        let parsed = parse(data.as_bytes())?;
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(
            parsed.errors,
            vec![RowError {
                row: 3,
                field: "role".into(),
                reason: "must be student or staff, not \"teacher\"".into()
            }]
        );
        Ok(())
    }

    #[test]
    fn reports_every_bad_field_with_its_row() -> Result<(), RosterCsvError> {
        let data = format!(
            "{HEADER}student,not-an-email,,,A,B,X\nstudent,,S1,,,B,X\nstudent,,S1,,A,B,X\nstudent,,S1,,A2,B2,X\n"
        );
        let parsed = parse(data.as_bytes())?;
        let summary: Vec<(u32, &str)> = parsed
            .errors
            .iter()
            .map(|e| (e.row, e.field.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![(2, "email"), (3, "first_name"), (5, "sis_id")]
        );
        assert_eq!(parsed.errors[2].reason, "\"S1\" is also on row 4");
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(parsed.rows[0].row, 4);
        Ok(())
    }

    #[test]
    fn latin1_exports_are_decoded() -> Result<(), RosterCsvError> {
        let mut data = HEADER.as_bytes().to_vec();
        data.extend_from_slice(b"student,,S9,,Jos\xe9,Pe\xf1a,X\n");
        let parsed = parse(&data)?;
        assert_eq!(parsed.rows[0].first_name, "José");
        assert_eq!(parsed.rows[0].last_name, "Peña");
        Ok(())
    }

    #[test]
    fn optional_matching_columns_are_read() -> Result<(), RosterCsvError> {
        let data = "role,sis_id,first_name,last_name,Local ID,State ID,Staff ID,Preferred Name,Grade,Homeroom,Teacher\n\
                    student,S1,Siobhan,O'Brien,005566,ST-9,,Shiv,05,101,Ms. Ruiz\n\
                    staff,S2,Min,Lee,,,T-77,,,,\n";
        let parsed = parse(data.as_bytes())?;
        assert_eq!(parsed.errors, vec![]);
        let siobhan = &parsed.rows[0];
        assert_eq!(siobhan.student_number.as_deref(), Some("005566"));
        assert_eq!(siobhan.state_id.as_deref(), Some("ST-9"));
        assert_eq!(siobhan.preferred_first_name.as_deref(), Some("Shiv"));
        assert_eq!(siobhan.grade.as_deref(), Some("05"));
        assert_eq!(siobhan.homeroom.as_deref(), Some("101"));
        assert_eq!(siobhan.teacher.as_deref(), Some("Ms. Ruiz"));
        assert_eq!(parsed.rows[1].staff_id.as_deref(), Some("T-77"));
        assert_eq!(parsed.rows[1].grade, None);
        Ok(())
    }

    #[test]
    fn header_problems_are_errors() {
        assert_eq!(parse(b"").err(), Some(RosterCsvError::Empty));
        assert_eq!(
            parse(b"email,first_name,last_name\n").err(),
            Some(RosterCsvError::MissingColumn("role"))
        );
        assert_eq!(
            parse(b"role,first_name,last_name,school\n").err(),
            Some(RosterCsvError::NoIdentifierColumn)
        );
        assert_eq!(
            parse(b"Role,First Name,Last-Name,SIS_ID\n").map(|p| p.rows.len()),
            Ok(0)
        );
    }
}
