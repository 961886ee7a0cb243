//! A district's people, indexed every way a file can name them: by each identifier as written,
//! with case ignored, with leading zeros ignored, and by name. Built once per roster generation
//! and shared by every lookup until the roster changes.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use pictureday_contract::events::Identifier;

use super::normalize::{Grade, folded, name_key, name_words, teacher_words, unpadded};
use crate::roster_csv::Role;

/// What matching needs of one person, as the roster has it.
#[derive(Debug, Clone, Default)]
pub struct PersonRecord {
    pub id: String,
    pub role: Option<Role>,
    pub first_name: String,
    pub last_name: String,
    pub preferred_first_name: Option<String>,
    pub email: Option<String>,
    pub sis_id: Option<String>,
    pub student_number: Option<String>,
    pub state_id: Option<String>,
    pub staff_id: Option<String>,
    pub grade: Option<String>,
    pub homeroom: Option<String>,
    pub teacher: Option<String>,
    /// When the person left; inactive people are indexed (so a file naming them says so, and
    /// never falls to someone else of the same name) but are not matched.
    pub inactive_since: Option<DateTime<Utc>>,
}

/// One person as the index keeps them.
#[derive(Debug)]
pub struct Person {
    pub id: String,
    pub role: Option<Role>,
    /// `Lea Ngo`, for reasons.
    pub display: String,
    /// Every identifier, as written (emails lower-case).
    pub ids: Vec<(Identifier, String)>,
    /// Every word of every name, and each name whole, as `name_key`s: what a file name's name
    /// parts must be among.
    pub name_words: HashSet<String>,
    pub grade: Option<Grade>,
    pub homeroom: Option<String>,
    pub teacher_words: Vec<String>,
    pub inactive_since: Option<DateTime<Utc>>,
}

impl Person {
    /// The person's value of one identifier.
    pub fn id_value(&self, identifier: Identifier) -> Option<&str> {
        self.ids
            .iter()
            .find(|(i, _)| *i == identifier)
            .map(|(_, v)| v.as_str())
    }

    /// `Lea Ngo (grade 5, homeroom 101, SIS id S1)`: enough to tell two people of one name apart.
    pub fn describe_fully(&self) -> String {
        let mut details = Vec::new();
        if self.role == Some(Role::Staff) {
            details.push("staff".to_owned());
        }
        if let Some(grade) = &self.grade {
            details.push(grade.describe());
        }
        if let Some(homeroom) = &self.homeroom {
            details.push(format!("homeroom {homeroom}"));
        }
        if let Some((identifier, value)) = self.ids.first() {
            details.push(format!("{} {value}", identifier.describe()));
        }
        if let Some(since) = self.inactive_since {
            details.push(format!("inactive since {}", since.format("%Y-%m-%d")));
        }
        if details.is_empty() {
            self.display.clone()
        } else {
            format!("{} ({})", self.display, details.join(", "))
        }
    }
}

/// A position in `DistrictIndex::people`.
pub type PersonIndex = u32;

/// Someone an id reads as, through which identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub person: PersonIndex,
    pub identifier: Identifier,
}

#[derive(Debug, Default)]
pub struct DistrictIndex {
    pub people: Vec<Person>,
    /// Ids as written; emails lower-case (they are compared without case in every tier).
    pub exact: HashMap<String, Vec<Hit>>,
    /// Ids (not emails) lower-case.
    pub case_folded: HashMap<String, Vec<Hit>>,
    /// Digit-only ids without leading zeros.
    pub unpadded: HashMap<String, Vec<Hit>>,
    /// (last name, first or preferred first name) as `name_key`s.
    pub names: HashMap<(String, String), Vec<PersonIndex>>,
}

/// The identifiers in the order a match is described by when one person has the same value
/// under several of them.
const IDENTIFIERS: [Identifier; 5] = [
    Identifier::StudentNumber,
    Identifier::SisId,
    Identifier::StateId,
    Identifier::StaffId,
    Identifier::Email,
];

fn push_hit(map: &mut HashMap<String, Vec<Hit>>, key: String, hit: Hit) {
    let hits = map.entry(key).or_default();
    if !hits.contains(&hit) {
        hits.push(hit);
    }
}

impl DistrictIndex {
    pub fn build(records: impl IntoIterator<Item = PersonRecord>) -> Self {
        let mut index = DistrictIndex::default();
        for record in records {
            index.add(record);
        }
        index
    }

    fn add(&mut self, record: PersonRecord) {
        let Ok(position) = PersonIndex::try_from(self.people.len()) else {
            return;
        };
        let ids: Vec<(Identifier, String)> = IDENTIFIERS
            .iter()
            .filter_map(|&identifier| {
                let value = match identifier {
                    Identifier::StudentNumber => record.student_number.as_deref(),
                    Identifier::SisId => record.sis_id.as_deref(),
                    Identifier::StateId => record.state_id.as_deref(),
                    Identifier::StaffId => record.staff_id.as_deref(),
                    Identifier::Email => record.email.as_deref(),
                    Identifier::Name | Identifier::Person => None,
                }?;
                let value = value.trim();
                let value = if identifier == Identifier::Email {
                    value.to_lowercase()
                } else {
                    value.to_owned()
                };
                (!value.is_empty()).then_some((identifier, value))
            })
            .collect();
        for (identifier, value) in &ids {
            let hit = Hit {
                person: position,
                identifier: *identifier,
            };
            push_hit(&mut self.exact, value.clone(), hit);
            if *identifier != Identifier::Email {
                push_hit(&mut self.case_folded, folded(value), hit);
                if let Some(short) = unpadded(value) {
                    push_hit(&mut self.unpadded, short.to_owned(), hit);
                }
            }
        }

        let last = name_key(&record.last_name);
        let mut firsts = vec![name_key(&record.first_name)];
        if let Some(preferred) = &record.preferred_first_name {
            firsts.push(name_key(preferred));
        }
        firsts.dedup();
        for first in &firsts {
            let people = self.names.entry((last.clone(), first.clone())).or_default();
            if !people.contains(&position) {
                people.push(position);
            }
        }
        let mut words: HashSet<String> = HashSet::new();
        for name in [Some(&record.first_name), Some(&record.last_name)]
            .into_iter()
            .chain([record.preferred_first_name.as_ref()])
            .flatten()
        {
            words.extend(name_words(name));
            words.insert(name_key(name));
        }
        words.remove("");

        self.people.push(Person {
            id: record.id,
            role: record.role,
            display: format!("{} {}", record.first_name.trim(), record.last_name.trim()),
            ids,
            name_words: words,
            grade: record.grade.as_deref().and_then(Grade::parse),
            homeroom: record
                .homeroom
                .as_deref()
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned),
            teacher_words: record
                .teacher
                .as_deref()
                .map(teacher_words)
                .unwrap_or_default(),
            inactive_since: record.inactive_since,
        });
    }

    pub fn person(&self, position: PersonIndex) -> Option<&Person> {
        self.people.get(usize::try_from(position).ok()?)
    }
}
