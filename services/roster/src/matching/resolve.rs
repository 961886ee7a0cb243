//! The matching rules (docs/matching.md). One rule stands above the others: when the evidence
//! points at more than one person, or contradicts itself, the file stays unmatched with a reason
//! that names the candidates. Each tier is tried only when the one before found no one at all;
//! a tier that finds two people ends the search there, unmatched.

use pictureday_contract::events::{
    Identifier, IndexEntry, LookupResult, MatchQuery, MatchRule, MatchedBy,
};

use super::index::{DistrictIndex, Hit, Person, PersonIndex};
use super::normalize::{Grade, folded, name_key, teacher_words, unpadded};
use crate::roster_csv::Role;

/// What an id reads as in one tier.
#[derive(Debug, PartialEq, Eq)]
enum IdReading {
    /// No one, in any tier.
    Nobody,
    One(PersonIndex, MatchedBy),
    /// Several people, in the first tier that found anyone; the reason names them.
    Several(String),
}

pub fn resolve(index: &DistrictIndex, query: &MatchQuery) -> LookupResult {
    let outcome = match query {
        MatchQuery::Identifier { value, file_name } => {
            resolve_identifier(index, value.trim(), *file_name)
        }
        MatchQuery::Name(entry) => resolve_name(index, entry),
        MatchQuery::Person { person_id } => resolve_person(index, person_id),
    };
    match outcome {
        Ok((person, matched_by)) => match index.person(person) {
            // The evidence names one person, who has left: the file is theirs or no one's.
            Some(person) if person.inactive_since.is_some() => LookupResult::Unmatched {
                reason: format!(
                    "the file names {}, who is no longer active; photos are not matched to people who left (reactivate them on the roster first)",
                    person.describe_fully()
                ),
            },
            Some(person) => LookupResult::Found {
                person_id: person.id.as_str().into(),
                matched_by,
            },
            None => LookupResult::Unmatched {
                // Positions come from the same index, so this cannot happen; if it ever did, the
                // file must not go to anyone, and the reason must not promise a retry.
                reason:
                    "the roster's index for this district was inconsistent; upload the file again"
                        .into(),
            },
        },
        Err(reason) => LookupResult::Unmatched { reason },
    }
}

type Resolved = Result<(PersonIndex, MatchedBy), String>;

/// A file uploaded for one person is theirs while the roster has them; nothing else is weighed.
/// A scan, not a map: these queries come one per upload of one photo, and a map of every id
/// would cost each district's index memory for them.
fn resolve_person(index: &DistrictIndex, person_id: &str) -> Resolved {
    let found = index.people.iter().position(|p| p.id == person_id);
    match found.and_then(|at| PersonIndex::try_from(at).ok()) {
        Some(at) => Ok((
            at,
            MatchedBy {
                identifier: Identifier::Person,
                rule: MatchRule::Chosen,
                in_file_name: false,
            },
        )),
        None => Err(format!(
            "the photo was uploaded for person {person_id}, who is not on the district's roster"
        )),
    }
}

const EVERY_IDENTIFIER: &str = "student number, SIS id, state id, staff id or email";

fn resolve_identifier(index: &DistrictIndex, value: &str, file_name: bool) -> Resolved {
    if value.is_empty() {
        return Err("the identifier is empty".into());
    }
    match read_id(index, value) {
        IdReading::One(person, matched_by) => return Ok((person, matched_by)),
        IdReading::Several(reason) => return Err(reason),
        IdReading::Nobody => {}
    }
    if file_name && let Some(resolved) = resolve_within_name(index, value) {
        return resolved;
    }
    if file_name && name_parts(value, is_loose_separator).len() > 1 {
        return Err(format!(
            "no person has {value}, or any part of it, as {EVERY_IDENTIFIER} (case and leading zeros ignored)"
        ));
    }
    Err(format!(
        "no person has {value} as {EVERY_IDENTIFIER} (case and leading zeros ignored)"
    ))
}

/// Tiers 1 to 3 for one id.
fn read_id(index: &DistrictIndex, value: &str) -> IdReading {
    let mut exact: Vec<Hit> = index.exact.get(value).cloned().unwrap_or_default();
    let lower = value.to_lowercase();
    if lower != value {
        // Emails are indexed lower-case: an exact match on them ignores case.
        let emails: Vec<Hit> = index
            .exact
            .get(&lower)
            .into_iter()
            .flatten()
            .filter(|h| h.identifier == Identifier::Email && !exact.contains(h))
            .copied()
            .collect();
        exact.extend(emails);
    }
    let tiers: [(MatchRule, Vec<Hit>); 3] = [
        (MatchRule::Exact, exact),
        (
            MatchRule::CaseIgnored,
            index
                .case_folded
                .get(&folded(value))
                .cloned()
                .unwrap_or_default(),
        ),
        (
            MatchRule::LeadingZerosIgnored,
            unpadded(value)
                .and_then(|short| index.unpadded.get(short))
                .cloned()
                .unwrap_or_default(),
        ),
    ];
    for (rule, hits) in tiers {
        if hits.is_empty() {
            continue;
        }
        let people = distinct_people(&hits);
        return match people.as_slice() {
            [only] => IdReading::One(
                *only,
                MatchedBy {
                    identifier: best_identifier(&hits, *only),
                    rule,
                    in_file_name: false,
                },
            ),
            _ => IdReading::Several(several_reason(index, value, rule, &hits)),
        };
    }
    IdReading::Nobody
}

fn distinct_people(hits: &[Hit]) -> Vec<PersonIndex> {
    let mut people: Vec<PersonIndex> = Vec::new();
    for hit in hits {
        if !people.contains(&hit.person) {
            people.push(hit.person);
        }
    }
    people
}

/// When one person has the value under several identifiers, the first in the roster's order.
fn best_identifier(hits: &[Hit], person: PersonIndex) -> Identifier {
    hits.iter()
        .filter(|h| h.person == person)
        .map(|h| h.identifier)
        .min()
        .unwrap_or(Identifier::StudentNumber)
}

/// "3030 is the student number of Dev Patel and the SIS id of Eli Stone".
fn several_reason(index: &DistrictIndex, value: &str, rule: MatchRule, hits: &[Hit]) -> String {
    let mut sorted = hits.to_vec();
    sorted.sort_by_key(|h| (h.identifier, h.person));
    let described: Vec<String> = sorted
        .iter()
        .filter_map(|hit| {
            let person = index.person(hit.person)?;
            let what = hit.identifier.describe();
            Some(match (rule, person.id_value(hit.identifier)) {
                (MatchRule::Exact, _) | (_, None) => format!("the {what} of {}", person.display),
                (_, Some(written)) => format!("the {what} of {} ({written})", person.display),
            })
        })
        .collect();
    let how = match rule {
        MatchRule::CaseIgnored => ", case ignored,",
        MatchRule::LeadingZerosIgnored => ", leading zeros ignored,",
        _ => "",
    };
    format!(
        "{value}{how} is {}; make it unique in the roster or use a mapping CSV",
        and_list(&described)
    )
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Tier 4: ids inside a longer file name (`5566_OBrien_Siobhan`, `2525 - Lea Ngo`). The id
/// decides; every name part must belong to that person's names. `None` when no part is an id.
fn resolve_within_name(index: &DistrictIndex, stem: &str) -> Option<Resolved> {
    // Hyphens first stay inside parts (`S-77` is an id); only if no part is an id are they split.
    for separator in [is_strict_separator, is_loose_separator] {
        let parts = name_parts(stem, separator);
        if parts.len() < 2 {
            continue;
        }
        if let Some(resolved) = resolve_parts(index, &parts) {
            return Some(resolved);
        }
    }
    None
}

fn is_strict_separator(c: char) -> bool {
    c.is_whitespace() || "_,;()[]{}+#&".contains(c)
}

fn is_loose_separator(c: char) -> bool {
    is_strict_separator(c) || c == '-' || c == '.'
}

fn name_parts(stem: &str, separator: fn(char) -> bool) -> Vec<&str> {
    stem.split(separator)
        .map(|p| p.trim_matches(|c| c == '-' || c == '.'))
        .filter(|p| !p.is_empty())
        .collect()
}

fn resolve_parts(index: &DistrictIndex, parts: &[&str]) -> Option<Resolved> {
    let mut found: Vec<(&str, PersonIndex, MatchedBy)> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for part in parts {
        match read_id(index, part) {
            IdReading::One(person, matched_by) => found.push((part, person, matched_by)),
            IdReading::Several(reason) => return Some(Err(format!("in the file name, {reason}"))),
            // Digits that are no one's id (a year, a sequence number) say nothing of the name.
            IdReading::Nobody if part.chars().any(char::is_alphabetic) => names.push(part),
            IdReading::Nobody => {}
        }
    }
    let (id_part, person, matched_by) = *found.first()?;
    if let Some((other_part, other, _)) = found.iter().find(|(_, p, _)| *p != person) {
        let describe = |part: &str, who: PersonIndex| {
            let name = index.person(who).map_or("", |p| p.display.as_str());
            format!("{part} ({name})")
        };
        return Some(Err(format!(
            "the file name holds the ids of two people: {} and {}",
            describe(id_part, person),
            describe(other_part, *other)
        )));
    }
    let who = index.person(person)?;
    let disagreeing = names
        .iter()
        .any(|name| !who.name_words.contains(&name_key(name)));
    if disagreeing {
        return Some(Err(format!(
            "the file name says {} but {id_part} is the {} of {}",
            names.join(" "),
            matched_by.identifier.describe(),
            who.display
        )));
    }
    Some(Ok((
        person,
        MatchedBy {
            in_file_name: true,
            ..matched_by
        },
    )))
}

/// A photographer's index row: last and first name (a preferred first name counts), narrowed by
/// grade, then homeroom or teacher. Staff rows match staff; rows with a grade match students.
fn resolve_name(index: &DistrictIndex, entry: &IndexEntry) -> Resolved {
    let written = format!("{} {}", entry.first_name.trim(), entry.last_name.trim());
    let key = (name_key(&entry.last_name), name_key(&entry.first_name));
    if key.0.is_empty() || key.1.is_empty() {
        return Err(format!("the index row has no full name ({written})"));
    }
    let positions: Vec<PersonIndex> = index.names.get(&key).cloned().unwrap_or_default();
    if positions.is_empty() {
        return Err(format!("no person is named {written}"));
    }

    let wanted_role = if entry.is_staff() {
        Some(Role::Staff)
    } else if entry.grade.is_some() {
        Some(Role::Student)
    } else {
        None
    };
    let mut candidates: Vec<PersonIndex> = positions
        .iter()
        .copied()
        .filter(|&p| {
            let role = index.person(p).and_then(|person| person.role);
            wanted_role.is_none() || role.is_none() || role == wanted_role
        })
        .collect();
    if candidates.is_empty() {
        let who = describe_all(index, &positions);
        return Err(match wanted_role {
            Some(Role::Staff) => format!("the index row is a member of staff, but {who} is not"),
            _ => format!("the index row is a student in a grade, but {who} is staff"),
        });
    }

    let mut rule = MatchRule::Exact;
    if let Some(grade) = entry.grade.as_deref().and_then(Grade::parse) {
        let before = candidates.len();
        let all = candidates.clone();
        candidates.retain(|&p| {
            index
                .person(p)
                .is_some_and(|person| person.grade.as_ref().is_none_or(|g| *g == grade))
        });
        if candidates.is_empty() {
            return Err(format!(
                "the index says {} but {}",
                grade.describe(),
                and_list(
                    &all.iter()
                        .filter_map(|&p| index.person(p))
                        .map(|p| format!(
                            "{} is in {}",
                            p.display,
                            p.grade.as_ref().map_or("no grade".into(), Grade::describe)
                        ))
                        .collect::<Vec<_>>()
                )
            ));
        }
        if before > 1 && candidates.len() == 1 {
            rule = MatchRule::NarrowedByGrade;
        }
    }
    if candidates.len() > 1 {
        if let Some(narrowed) = narrow_by_homeroom(index, entry, &candidates) {
            candidates = vec![narrowed];
            rule = MatchRule::NarrowedByHomeroom;
        } else if let Some(narrowed) = narrow_by_teacher(index, entry, &candidates) {
            candidates = vec![narrowed];
            rule = MatchRule::NarrowedByTeacher;
        }
    }
    match candidates.as_slice() {
        [only] => Ok((
            *only,
            MatchedBy {
                identifier: Identifier::Name,
                rule,
                in_file_name: false,
            },
        )),
        several => Err(format!(
            "{} people are named {written}{}: {}; add an id to the file name or use a mapping CSV",
            several.len(),
            entry
                .grade
                .as_deref()
                .and_then(Grade::parse)
                .map(|g| format!(" in {}", g.describe()))
                .unwrap_or_default(),
            describe_all(index, several)
        )),
    }
}

fn describe_all(index: &DistrictIndex, people: &[PersonIndex]) -> String {
    and_list(
        &people
            .iter()
            .filter_map(|&p| index.person(p))
            .map(Person::describe_fully)
            .collect::<Vec<_>>(),
    )
}

/// The one candidate in the index row's homeroom, if exactly one is.
fn narrow_by_homeroom(
    index: &DistrictIndex,
    entry: &IndexEntry,
    candidates: &[PersonIndex],
) -> Option<PersonIndex> {
    let homeroom = entry.homeroom.as_deref().map(name_key)?;
    if homeroom.is_empty() {
        return None;
    }
    exactly_one(candidates.iter().copied().filter(|&p| {
        index
            .person(p)
            .and_then(|person| person.homeroom.as_deref())
            .is_some_and(|h| name_key(h) == homeroom)
    }))
}

/// The one candidate whose teacher shares a name word with the index row's teacher.
fn narrow_by_teacher(
    index: &DistrictIndex,
    entry: &IndexEntry,
    candidates: &[PersonIndex],
) -> Option<PersonIndex> {
    let teacher = teacher_words(entry.teacher.as_deref()?);
    if teacher.is_empty() {
        return None;
    }
    exactly_one(candidates.iter().copied().filter(|&p| {
        index
            .person(p)
            .is_some_and(|person| person.teacher_words.iter().any(|w| teacher.contains(w)))
    }))
}

fn exactly_one(mut people: impl Iterator<Item = PersonIndex>) -> Option<PersonIndex> {
    let first = people.next()?;
    people.next().is_none().then_some(first)
}

#[cfg(test)]
mod chosen_tests {
    use super::*;
    use crate::matching::PersonRecord;

    #[test]
    fn a_chosen_person_is_found_while_on_the_roster() {
        let index = DistrictIndex::build([PersonRecord {
            id: "p-1".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            student_number: Some("1001".into()),
            ..PersonRecord::default()
        }]);
        let query = |id: &str| MatchQuery::Person {
            person_id: id.into(),
        };
        assert_eq!(
            resolve(&index, &query("p-1")),
            LookupResult::Found {
                person_id: "p-1".into(),
                matched_by: MatchedBy {
                    identifier: Identifier::Person,
                    rule: MatchRule::Chosen,
                    in_file_name: false,
                },
            }
        );
        // An id that is someone's student number is still no person id.
        assert_eq!(
            resolve(&index, &query("1001")),
            LookupResult::Unmatched {
                reason:
                    "the photo was uploaded for person 1001, who is not on the district's roster"
                        .into()
            }
        );
    }
}
