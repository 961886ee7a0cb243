//! What the matcher asks the roster and what it hears back, and how a match is described.
//!
//! The roster decides: it holds every identifier and name of a district, so it alone can tell
//! that `3030` is one person's student number and another's SIS id. The matcher says what a file
//! carries (an identifier, a file stem, or a photographer's index row) and passes on the answer.

use serde::{Deserialize, Serialize};

use crate::DistrictId;
use crate::ids::PersonId;

/// Which of a person's identifiers, or their name, a file was matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identifier {
    StudentNumber,
    SisId,
    StateId,
    StaffId,
    Email,
    Name,
    /// The person the file was uploaded for (`PUT …/people/{person}/photo`).
    Person,
}

impl Identifier {
    pub fn describe(self) -> &'static str {
        match self {
            Identifier::StudentNumber => "student number",
            Identifier::SisId => "SIS id",
            Identifier::StateId => "state id",
            Identifier::StaffId => "staff id",
            Identifier::Email => "email",
            Identifier::Name => "name",
            Identifier::Person => "person",
        }
    }
}

/// How the identifier was compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchRule {
    /// As written (emails ignore case).
    #[default]
    Exact,
    /// `ab123` for `AB123`; only when one person reads that way.
    CaseIgnored,
    /// `4521` for `004521`; digit-only ids, only when one person reads that way.
    LeadingZerosIgnored,
    /// A name that more than one person has, narrowed to one by the index's grade.
    NarrowedByGrade,
    /// … and then by homeroom.
    NarrowedByHomeroom,
    /// … and then by teacher.
    NarrowedByTeacher,
    /// Uploaded for one person, who the roster confirmed is there.
    Chosen,
}

/// Which rule matched a file, as its log row shows it (`student number, leading zeros ignored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "MatchedByWire")]
pub struct MatchedBy {
    pub identifier: Identifier,
    pub rule: MatchRule,
    /// The identifier was one part of a longer file name whose other parts agree with the name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_file_name: bool,
}

/// Version 1 events wrote only the identifier (`"student_number"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum MatchedByWire {
    Identifier(Identifier),
    Rule {
        identifier: Identifier,
        #[serde(default)]
        rule: MatchRule,
        #[serde(default)]
        in_file_name: bool,
    },
}

impl From<MatchedByWire> for MatchedBy {
    fn from(wire: MatchedByWire) -> Self {
        match wire {
            MatchedByWire::Identifier(identifier) => MatchedBy::exact(identifier),
            MatchedByWire::Rule {
                identifier,
                rule,
                in_file_name,
            } => MatchedBy {
                identifier,
                rule,
                in_file_name,
            },
        }
    }
}

impl MatchedBy {
    pub fn exact(identifier: Identifier) -> Self {
        MatchedBy {
            identifier,
            rule: MatchRule::Exact,
            in_file_name: false,
        }
    }

    /// `student number`, `SIS id, case ignored`, `staff id in the file name, leading zeros
    /// ignored`, `name and grade`.
    pub fn describe(self) -> String {
        if self.rule == MatchRule::Chosen {
            return "chosen for this person".into();
        }
        let mut text = String::from(self.identifier.describe());
        if self.in_file_name {
            text.push_str(" in the file name");
        }
        text.push_str(match self.rule {
            MatchRule::Exact => "",
            MatchRule::CaseIgnored => ", case ignored",
            MatchRule::LeadingZerosIgnored => ", leading zeros ignored",
            MatchRule::NarrowedByGrade => " and grade",
            MatchRule::NarrowedByHomeroom => ", grade and homeroom",
            MatchRule::NarrowedByTeacher => ", grade and teacher",
            MatchRule::Chosen => "",
        });
        text
    }
}

/// One row of a photographer's index (PSPA `INDEX.TXT` / `MASTER.TXT`): who is in the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The index file, as its path in the upload (`CD1/MASTER.TXT`).
    pub index: String,
    /// Its row, counted from 1 as an editor shows it.
    pub row: u32,
    pub last_name: String,
    pub first_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homeroom: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<String>,
    /// Staff rows carry a title or a department instead of a grade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
}

impl IndexEntry {
    /// Whether the row describes a member of staff: no grade, and a title or a department.
    pub fn is_staff(&self) -> bool {
        self.grade.is_none() && (self.title.is_some() || self.department.is_some())
    }
}

/// What one file offers to be matched on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum MatchQuery {
    /// An identifier: from a mapping CSV (`file_name` false), or a file's stem (`file_name`
    /// true, when ids inside a longer name such as `5566_OBrien_Siobhan` are looked for too).
    Identifier { value: String, file_name: bool },
    /// A photographer's index row: matched by name, narrowed by grade, homeroom and teacher.
    Name(IndexEntry),
    /// A file uploaded for one person (`PUT …/people/{person}/photo`), or a check that a person
    /// is on the district's roster: found if they are (matched by `person`, rule `chosen`).
    Person { person_id: PersonId },
}

/// Request/reply between matcher and roster: resolve many files of one district at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRequest {
    pub v: u32,
    pub district: DistrictId,
    pub queries: Vec<MatchQuery>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LookupResult {
    Found {
        person_id: PersonId,
        matched_by: MatchedBy,
    },
    /// No one, more than one person, or evidence that contradicts itself; the reason says which
    /// in words a person can act on, naming the candidates.
    Unmatched { reason: String },
}

/// `results[i]` answers `queries[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupResponse {
    pub v: u32,
    pub results: Vec<LookupResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_matched_by_is_read_as_an_exact_match() -> anyhow::Result<()> {
        let legacy: MatchedBy = serde_json::from_str("\"sis_id\"")?;
        assert_eq!(legacy, MatchedBy::exact(Identifier::SisId));
        let current = MatchedBy {
            identifier: Identifier::StudentNumber,
            rule: MatchRule::LeadingZerosIgnored,
            in_file_name: true,
        };
        let json = serde_json::to_string(&current)?;
        assert_eq!(serde_json::from_str::<MatchedBy>(&json)?, current);
        Ok(())
    }

    #[test]
    fn descriptions_say_which_rule_matched() {
        let zeros = MatchedBy {
            identifier: Identifier::StudentNumber,
            rule: MatchRule::LeadingZerosIgnored,
            in_file_name: false,
        };
        assert_eq!(zeros.describe(), "student number, leading zeros ignored");
        let in_name = MatchedBy {
            identifier: Identifier::SisId,
            rule: MatchRule::Exact,
            in_file_name: true,
        };
        assert_eq!(in_name.describe(), "SIS id in the file name");
        let grade = MatchedBy {
            identifier: Identifier::Name,
            rule: MatchRule::NarrowedByGrade,
            in_file_name: false,
        };
        assert_eq!(grade.describe(), "name and grade");
        let chosen = MatchedBy {
            identifier: Identifier::Person,
            rule: MatchRule::Chosen,
            in_file_name: false,
        };
        assert_eq!(chosen.describe(), "chosen for this person");
    }
}
