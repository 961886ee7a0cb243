//! The rules of docs/matching.md, case by case, and the property that no normalisation ever puts
//! a file on one of two people.

use pictureday_contract::events::{
    Identifier, IndexEntry, LookupResult, MatchQuery, MatchRule, MatchedBy,
};
use proptest::prelude::*;

use super::*;
use crate::roster_csv::Role;

fn student(id: &str, first: &str, last: &str) -> PersonRecord {
    PersonRecord {
        id: id.into(),
        role: Some(Role::Student),
        first_name: first.into(),
        last_name: last.into(),
        ..PersonRecord::default()
    }
}

fn staff(id: &str, first: &str, last: &str) -> PersonRecord {
    PersonRecord {
        role: Some(Role::Staff),
        ..student(id, first, last)
    }
}

/// The district most cases below are about.
fn district() -> DistrictIndex {
    DistrictIndex::build([
        PersonRecord {
            student_number: Some("3030".into()),
            sis_id: Some("S-1".into()),
            ..student("dev", "Dev", "Patel")
        },
        PersonRecord {
            sis_id: Some("3030".into()),
            ..student("eli", "Eli", "Stone")
        },
        PersonRecord {
            student_number: Some("004521".into()),
            ..student("ana", "Ana", "Ruiz")
        },
        PersonRecord {
            student_number: Some("7788".into()),
            ..student("bo", "Bo", "Kim")
        },
        PersonRecord {
            sis_id: Some("AB123".into()),
            email: Some("cy@school.org".into()),
            ..student("cy", "Cy", "Young")
        },
        PersonRecord {
            student_number: Some("5566".into()),
            ..student("siobhan", "Siobhan", "O'Brien")
        },
        PersonRecord {
            student_number: Some("2525".into()),
            ..student("lea", "Lea", "Ngo")
        },
        PersonRecord {
            student_number: Some("9911".into()),
            ..student("min", "Min", "Lee")
        },
        // Two ids that read the same once zeros are ignored, of two different people.
        PersonRecord {
            student_number: Some("0042".into()),
            ..student("zed", "Zed", "Ali")
        },
        PersonRecord {
            staff_id: Some("042".into()),
            ..staff("yan", "Yan", "Ode")
        },
        // Two ids that read the same once case is ignored.
        PersonRecord {
            sis_id: Some("Xy9".into()),
            ..student("xa", "Xa", "One")
        },
        PersonRecord {
            sis_id: Some("XY9".into()),
            ..student("xb", "Xb", "Two")
        },
        // One person, the same value under two identifiers.
        PersonRecord {
            student_number: Some("6001".into()),
            sis_id: Some("6001".into()),
            ..student("uma", "Uma", "Sen")
        },
    ])
}

fn by_file_name(index: &DistrictIndex, stem: &str) -> LookupResult {
    resolve(
        index,
        &MatchQuery::Identifier {
            value: stem.into(),
            file_name: true,
        },
    )
}

fn by_mapping(index: &DistrictIndex, value: &str) -> LookupResult {
    resolve(
        index,
        &MatchQuery::Identifier {
            value: value.into(),
            file_name: false,
        },
    )
}

fn found(
    person: &str,
    identifier: Identifier,
    rule: MatchRule,
    in_file_name: bool,
) -> LookupResult {
    LookupResult::Found {
        person_id: person.into(),
        matched_by: MatchedBy {
            identifier,
            rule,
            in_file_name,
        },
    }
}

fn unmatched(reason: &str) -> LookupResult {
    LookupResult::Unmatched {
        reason: reason.into(),
    }
}

#[test]
fn tier_1_exact_on_any_identifier_and_two_people_are_ambiguous() {
    let index = district();
    assert_eq!(
        by_file_name(&index, "3030"),
        unmatched(
            "3030 is the student number of Dev Patel and the SIS id of Eli Stone; make it unique in the roster or use a mapping CSV"
        )
    );
    assert_eq!(
        by_file_name(&index, "S-1"),
        found("dev", Identifier::SisId, MatchRule::Exact, false)
    );
    assert_eq!(
        by_mapping(&index, "CY@School.org"),
        found("cy", Identifier::Email, MatchRule::Exact, false)
    );
    // The same person through two identifiers is fine.
    assert_eq!(
        by_file_name(&index, "6001"),
        found("uma", Identifier::StudentNumber, MatchRule::Exact, false)
    );
}

#[test]
fn tier_2_case_ignored_only_for_one_person() {
    let index = district();
    assert_eq!(
        by_file_name(&index, "ab123"),
        found("cy", Identifier::SisId, MatchRule::CaseIgnored, false)
    );
    // Exact wins over case-insensitive readings of others.
    assert_eq!(
        by_file_name(&index, "XY9"),
        found("xb", Identifier::SisId, MatchRule::Exact, false)
    );
    assert_eq!(
        by_file_name(&index, "xy9"),
        unmatched(
            "xy9, case ignored, is the SIS id of Xa One (Xy9) and the SIS id of Xb Two (XY9); make it unique in the roster or use a mapping CSV"
        )
    );
}

#[test]
fn tier_3_leading_zeros_ignored_only_for_one_person() {
    let index = district();
    assert_eq!(
        by_file_name(&index, "4521"),
        found(
            "ana",
            Identifier::StudentNumber,
            MatchRule::LeadingZerosIgnored,
            false
        )
    );
    assert_eq!(
        by_mapping(&index, "0007788"),
        found(
            "bo",
            Identifier::StudentNumber,
            MatchRule::LeadingZerosIgnored,
            false
        )
    );
    assert_eq!(
        by_file_name(&index, "42"),
        unmatched(
            "42, leading zeros ignored, is the student number of Zed Ali (0042) and the staff id of Yan Ode (042); make it unique in the roster or use a mapping CSV"
        )
    );
    // Zeros matter where there are letters.
    assert_eq!(
        by_mapping(&index, "0AB123"),
        unmatched(
            "no person has 0AB123 as student number, SIS id, state id, staff id or email (case and leading zeros ignored)"
        )
    );
}

#[test]
fn tier_4_ids_inside_longer_names_agree_with_the_name() {
    let index = district();
    for stem in [
        "5566_OBrien_Siobhan",
        "5566 - Siobhan O'Brien",
        "obrien-siobhan-5566",
    ] {
        assert_eq!(
            by_file_name(&index, stem),
            found("siobhan", Identifier::StudentNumber, MatchRule::Exact, true),
            "{stem}"
        );
    }
    for stem in ["Ngo_Lea_2525", "2525 - Lea Ngo", "NGO LEA 002525 2024"] {
        let rule = if stem.contains("002525") {
            MatchRule::LeadingZerosIgnored
        } else {
            MatchRule::Exact
        };
        assert_eq!(
            by_file_name(&index, stem),
            found("lea", Identifier::StudentNumber, rule, true),
            "{stem}"
        );
    }
    assert_eq!(
        by_file_name(&index, "9911_Smith_John"),
        unmatched("the file name says Smith John but 9911 is the student number of Min Lee")
    );
    assert_eq!(
        by_file_name(&index, "2525_9911"),
        unmatched("the file name holds the ids of two people: 2525 (Lea Ngo) and 9911 (Min Lee)")
    );
    assert_eq!(
        by_file_name(&index, "3030_Dev_Patel"),
        unmatched(
            "in the file name, 3030 is the student number of Dev Patel and the SIS id of Eli Stone; make it unique in the roster or use a mapping CSV"
        )
    );
    assert_eq!(
        by_file_name(&index, "Jane_Doe_1234"),
        unmatched(
            "no person has Jane_Doe_1234, or any part of it, as student number, SIS id, state id, staff id or email (case and leading zeros ignored)"
        )
    );
    // A mapping names one identifier: its value is never searched for parts.
    assert!(matches!(
        by_mapping(&index, "5566_OBrien_Siobhan"),
        LookupResult::Unmatched { .. }
    ));
}

fn index_row(first: &str, last: &str, grade: Option<&str>, homeroom: Option<&str>) -> IndexEntry {
    IndexEntry {
        index: "INDEX.TXT".into(),
        row: 2,
        first_name: first.into(),
        last_name: last.into(),
        grade: grade.map(Into::into),
        homeroom: homeroom.map(Into::into),
        ..IndexEntry::default()
    }
}

fn photographed_school() -> DistrictIndex {
    DistrictIndex::build([
        PersonRecord {
            grade: Some("05".into()),
            homeroom: Some("101".into()),
            sis_id: Some("S1".into()),
            ..student("lea5", "Lea", "Ngo")
        },
        PersonRecord {
            grade: Some("7".into()),
            homeroom: Some("201".into()),
            sis_id: Some("S2".into()),
            ..student("lea7", "Lea", "Ngo")
        },
        PersonRecord {
            grade: Some("3".into()),
            homeroom: Some("301".into()),
            teacher: Some("Ms. Ruiz".into()),
            sis_id: Some("S3".into()),
            ..student("sam-a", "Sam", "Lee")
        },
        PersonRecord {
            grade: Some("3".into()),
            homeroom: Some("302".into()),
            teacher: Some("Mr. Cole".into()),
            sis_id: Some("S4".into()),
            ..student("sam-b", "Sam", "Lee")
        },
        PersonRecord {
            grade: Some("K".into()),
            preferred_first_name: Some("Zoë".into()),
            sis_id: Some("S5".into()),
            ..student("zoe", "Zoella", "Dupont-Martin")
        },
        PersonRecord {
            staff_id: Some("T1".into()),
            ..staff("ann-staff", "Ann", "Ray")
        },
        PersonRecord {
            grade: Some("2".into()),
            sis_id: Some("S6".into()),
            ..student("ann-student", "Ann", "Ray")
        },
        PersonRecord {
            grade: Some("4".into()),
            sis_id: Some("S7".into()),
            ..student("jose", "José", "Peña")
        },
    ])
}

fn by_name(index: &DistrictIndex, entry: IndexEntry) -> LookupResult {
    resolve(index, &MatchQuery::Name(entry))
}

#[test]
fn names_are_narrowed_by_grade_then_homeroom_or_teacher() {
    let index = photographed_school();
    assert_eq!(
        by_name(&index, index_row("LEA", "NGO", Some("5"), None)),
        found("lea5", Identifier::Name, MatchRule::NarrowedByGrade, false)
    );
    assert_eq!(
        by_name(&index, index_row("Lea", "Ngo", Some("07"), Some("201"))),
        found("lea7", Identifier::Name, MatchRule::NarrowedByGrade, false)
    );
    assert_eq!(
        by_name(&index, index_row("Sam", "Lee", Some("3"), Some("302"))),
        found(
            "sam-b",
            Identifier::Name,
            MatchRule::NarrowedByHomeroom,
            false
        )
    );
    let by_teacher = IndexEntry {
        teacher: Some("RUIZ".into()),
        ..index_row("SAM", "LEE", Some("03"), None)
    };
    assert_eq!(
        by_name(&index, by_teacher),
        found(
            "sam-a",
            Identifier::Name,
            MatchRule::NarrowedByTeacher,
            false
        )
    );
    assert_eq!(
        by_name(&index, index_row("Sam", "Lee", Some("3"), None)),
        unmatched(
            "2 people are named Sam Lee in grade 3: Sam Lee (grade 3, homeroom 301, SIS id S3) and Sam Lee (grade 3, homeroom 302, SIS id S4); add an id to the file name or use a mapping CSV"
        )
    );
    assert_eq!(
        by_name(&index, index_row("Lea", "Ngo", None, None)),
        unmatched(
            "2 people are named Lea Ngo: Lea Ngo (grade 5, homeroom 101, SIS id S1) and Lea Ngo (grade 7, homeroom 201, SIS id S2); add an id to the file name or use a mapping CSV"
        )
    );
}

#[test]
fn names_ignore_case_accents_punctuation_and_take_preferred_names() {
    let index = photographed_school();
    assert_eq!(
        by_name(&index, index_row("JOSE", "PENA", Some("4"), None)),
        found("jose", Identifier::Name, MatchRule::Exact, false)
    );
    assert_eq!(
        by_name(&index, index_row("Zoe", "Dupont Martin", Some("KG"), None)),
        found("zoe", Identifier::Name, MatchRule::Exact, false)
    );
    assert_eq!(
        by_name(&index, index_row("ZOELLA", "DUPONTMARTIN", Some("0"), None)),
        found("zoe", Identifier::Name, MatchRule::Exact, false)
    );
}

#[test]
fn contradictions_leave_the_file_unmatched() {
    let index = photographed_school();
    assert_eq!(
        by_name(&index, index_row("Jose", "Pena", Some("6"), None)),
        unmatched("the index says grade 6 but José Peña is in grade 4")
    );
    assert_eq!(
        by_name(&index, index_row("Nobody", "Here", Some("6"), None)),
        unmatched("no person is named Nobody Here")
    );
}

#[test]
fn staff_rows_match_staff() {
    let index = photographed_school();
    let staff_row = IndexEntry {
        title: Some("Counselor".into()),
        ..index_row("Ann", "Ray", None, None)
    };
    assert_eq!(
        by_name(&index, staff_row),
        found("ann-staff", Identifier::Name, MatchRule::Exact, false)
    );
    assert_eq!(
        by_name(&index, index_row("Ann", "Ray", Some("2"), None)),
        found("ann-student", Identifier::Name, MatchRule::Exact, false)
    );
    let only_staff = DistrictIndex::build([staff("t", "Min", "Lee")]);
    assert_eq!(
        by_name(&only_staff, index_row("Min", "Lee", Some("5"), None)),
        unmatched("the index row is a student in a grade, but Min Lee (staff) is staff")
    );
}

/// An id that differs from another only by case and leading zeros: what such a pair of people
/// may look like.
fn id_variant() -> impl Strategy<Value = (String, String)> {
    (
        "[0-9]{1,4}|[A-Za-z][A-Za-z0-9]{0,3}",
        0..3usize,
        any::<bool>(),
    )
        .prop_map(|(base, zeros, flip)| {
            let padded = format!("{}{base}", "0".repeat(zeros));
            let other = if flip {
                base.chars()
                    .map(|c| {
                        if c.is_ascii_uppercase() {
                            c.to_ascii_lowercase()
                        } else {
                            c.to_ascii_uppercase()
                        }
                    })
                    .collect()
            } else {
                base
            };
            (padded, other)
        })
}

fn identifier_field(record: &mut PersonRecord, which: usize, value: String) {
    match which % 5 {
        0 => record.student_number = Some(value),
        1 => record.sis_id = Some(value),
        2 => record.state_id = Some(value),
        3 => record.staff_id = Some(value),
        _ => record.email = Some(format!("{value}@school.org")),
    }
}

/// The tiers written the plainest way, as the reference the index is checked against: the
/// people each tier reads `value` as, tier by tier.
fn reference_tiers(people: &[PersonRecord], value: &str) -> Option<Vec<String>> {
    let ids = |r: &PersonRecord| -> Vec<(bool, String)> {
        [&r.student_number, &r.sis_id, &r.state_id, &r.staff_id]
            .into_iter()
            .flatten()
            .map(|id| (false, id.clone()))
            .chain(r.email.iter().map(|e| (true, e.to_lowercase())))
            .collect()
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    type Reads<'a> = &'a dyn Fn(bool, &str) -> bool;
    let tiers: [Reads; 3] = [
        &|email, id| {
            if email {
                id == value.to_lowercase()
            } else {
                id == value
            }
        },
        &|email, id| !email && id.to_lowercase() == value.to_lowercase(),
        &|email, id| {
            !email
                && digits(id)
                && digits(value)
                && id.trim_start_matches('0') == value.trim_start_matches('0')
        },
    ];
    for reads in tiers {
        let found: Vec<String> = people
            .iter()
            .filter(|p| ids(p).iter().any(|(email, id)| reads(*email, id)))
            .map(|p| p.id.clone())
            .collect();
        if !found.is_empty() {
            return Some(found);
        }
    }
    None
}

proptest! {
    /// Two different people whose ids read alike once case and leading zeros are ignored, under
    /// any two identifiers, and a file carrying any variant of them: the file goes to a person
    /// exactly when the first tier that reads it as anyone reads it as that one person alone;
    /// otherwise it stays unmatched. Never the other person, never a guess.
    #[test]
    fn normalisation_never_puts_a_file_on_the_wrong_one_of_two(
        (first, second) in id_variant(),
        which_a in 0..5usize,
        which_b in 0..5usize,
        query in 0..4usize,
        file_name in any::<bool>(),
    ) {
        let mut a = student("a", "Ann", "Able");
        identifier_field(&mut a, which_a, first.clone());
        let mut b = student("b", "Bea", "Bell");
        identifier_field(&mut b, which_b, second.clone());
        let value = match query {
            0 => first.clone(),
            1 => second.clone(),
            2 => first.to_lowercase(),
            _ => first.trim_start_matches('0').to_owned(),
        };
        let people = [a.clone(), b.clone()];
        let index = DistrictIndex::build(people.clone());
        let expected = reference_tiers(&people, &value);
        let result = resolve(&index, &MatchQuery::Identifier { value: value.clone(), file_name });
        match (expected.as_deref(), &result) {
            (Some([only]), LookupResult::Found { person_id, .. }) => {
                prop_assert_eq!(person_id.as_str(), only.as_str());
            }
            (Some([_, _, ..]), LookupResult::Unmatched { reason }) => {
                prop_assert!(reason.contains("Ann Able") && reason.contains("Bea Bell"), "{}", reason);
            }
            (None, LookupResult::Unmatched { .. }) => {}
            (expected, result) => {
                prop_assert!(false, "{:?} read as {:?}, but resolved to {:?}", value, expected, result);
            }
        }
    }
}

#[test]
fn people_who_left_are_named_but_never_matched() {
    let left = chrono::DateTime::parse_from_rfc3339("2026-10-15T08:00:00Z")
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok();
    let index = DistrictIndex::build([
        PersonRecord {
            student_number: Some("9001".into()),
            inactive_since: left,
            ..student("gone", "Max", "Weber")
        },
        PersonRecord {
            student_number: Some("9002".into()),
            ..student("here", "Mia", "Weber")
        },
        PersonRecord {
            student_number: Some("9003".into()),
            inactive_since: left,
            ..student("gone2", "Mia", "Weber")
        },
    ]);
    assert_eq!(
        by_file_name(&index, "9001"),
        unmatched(
            "the file names Max Weber (student number 9001, inactive since 2026-10-15), who is no longer active; photos are not matched to people who left (reactivate them on the roster first)"
        )
    );
    // Leading zeros: the same tiers, the same refusal.
    assert!(matches!(
        by_file_name(&index, "09001"),
        LookupResult::Unmatched { reason } if reason.contains("inactive since 2026-10-15")
    ));
    assert_eq!(
        by_file_name(&index, "9002"),
        found("here", Identifier::StudentNumber, MatchRule::Exact, false)
    );
    // Two people of one name, one of whom left: still two candidates, never the other one.
    let by_name = resolve(
        &index,
        &MatchQuery::Name(IndexEntry {
            first_name: "Mia".into(),
            last_name: "Weber".into(),
            ..IndexEntry::default()
        }),
    );
    assert!(
        matches!(&by_name, LookupResult::Unmatched { reason } if reason.contains("inactive since 2026-10-15")),
        "{by_name:?}"
    );
}
