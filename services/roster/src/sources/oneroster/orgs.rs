//! `orgs.csv`: the orgs of type `school` become the district's schools (keyed by `sourcedId`);
//! districts, departments and other orgs are not schools and are skipped.

use std::io::BufRead;

use super::table::{Next, Table};
use super::{FileError, OneRosterError, Rejections};
use crate::sources::schools::SourceSchool;

pub(super) const FILE: &str = "orgs.csv";

/// The schools of `orgs.csv`, and the rows rejected. Orgs with `status=tobedeleted` are not
/// listed (a school is never deleted; its people leave with their own rows).
pub(super) fn read(input: impl BufRead) -> Result<(Vec<SourceSchool>, Rejections), OneRosterError> {
    let mut table = Table::new(FILE, input)?;
    table.require(&["sourcedId", "name", "type"])?;
    let mut schools = Vec::new();
    let mut rejections = Rejections::default();
    while let Some(next) = table.next()? {
        let row = match next {
            Next::Row(row) => row,
            Next::Blank(_) => continue,
            Next::Unreadable(error) => {
                rejections.reject(vec![error]);
                continue;
            }
        };
        let is_school = table
            .get("type")
            .is_some_and(|t| t.eq_ignore_ascii_case("school"));
        let deleted = table
            .get("status")
            .is_some_and(|s| s.eq_ignore_ascii_case("tobedeleted"));
        if !is_school || deleted {
            continue;
        }
        let error = |field: &str, reason: &str| FileError {
            file: FILE,
            row,
            field: field.into(),
            reason: reason.into(),
        };
        match (table.get("sourcedId"), table.get("name")) {
            (Some(source_id), Some(name)) => schools.push(SourceSchool { source_id, name }),
            (None, _) => rejections.reject(vec![error("sourcedId", "is empty")]),
            (_, None) => rejections.reject(vec![error("name", "is empty")]),
        }
    }
    Ok((schools, rejections))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_schools_are_kept() -> Result<(), OneRosterError> {
        let csv = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n\
                   d1,active,2026-01-01,Springfield USD,district,,\n\
                   s1,active,2026-01-01,North Elementary,school,N1,d1\n\
                   s2,tobedeleted,2026-01-01,Old School,school,,d1\n\
                   s3,,,,school,,d1\n\
                   s4,,,South High,SCHOOL,,d1\n";
        let (schools, rejections) = read(csv.as_bytes())?;
        let names: Vec<(&str, &str)> = schools
            .iter()
            .map(|s| (s.source_id.as_str(), s.name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![("s1", "North Elementary"), ("s4", "South High")]
        );
        assert_eq!(rejections.rows, 1);
        assert_eq!(
            rejections
                .errors
                .first()
                .map(ToString::to_string)
                .as_deref(),
            Some("orgs.csv row 5 column name: is empty")
        );
        Ok(())
    }
}
