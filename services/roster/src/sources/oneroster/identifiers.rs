//! Which of a OneRoster user's identifiers become which Pictureday identifier. The district
//! chooses with query parameters on `POST …/roster`, `oneroster.<source>=<target>`:
//!
//! - sources: `identifier`, `sourcedId`, `username`, `userMasterIdentifier`, or `userIds.<type>`
//!   for the `{type:id}` entries of `userIds` (`userIds.SIS`; the type's case is ignored);
//! - targets: `sis_id`, `student_number`, `state_id`, `staff_id`, or `none` (not used).
//!
//! Without any, `identifier` is a student's `student_number` and a staff member's `staff_id`;
//! `sourcedId` is always the person's source id (the key updates and deletions use). When two
//! sources fill one target, the first non-empty in the order above wins (`userIds` types in the
//! order given).

use serde::{Deserialize, Serialize};

use crate::roster_csv::Role;

/// A Pictureday identifier a OneRoster one can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    SisId,
    StudentNumber,
    StateId,
    StaffId,
    None,
}

impl Target {
    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "sis_id" => Target::SisId,
            "student_number" => Target::StudentNumber,
            "state_id" => Target::StateId,
            "staff_id" => Target::StaffId,
            "none" => Target::None,
            _ => return None,
        })
    }
}

/// A district's mapping; stored with the import as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifierMap {
    /// `None`: the default (by role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sourced_id: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_master_identifier: Option<Target>,
    /// `userIds` types (lower-cased) and their targets, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_ids: Vec<(String, Target)>,
}

/// The prefix of the query parameters that set the mapping.
pub const PARAMETER_PREFIX: &str = "oneroster.";

/// The identifiers a user row ends up with.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Identifiers {
    pub sis_id: Option<String>,
    pub student_number: Option<String>,
    pub state_id: Option<String>,
    pub staff_id: Option<String>,
}

impl Identifiers {
    fn fill(&mut self, target: Target, value: Option<&str>) {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return;
        };
        let slot = match target {
            Target::SisId => &mut self.sis_id,
            Target::StudentNumber => &mut self.student_number,
            Target::StateId => &mut self.state_id,
            Target::StaffId => &mut self.staff_id,
            Target::None => return,
        };
        if slot.is_none() {
            *slot = Some(value.to_owned());
        }
    }
}

/// A user's identifiers as the file gives them.
pub struct UserIdentifiers<'a> {
    pub sourced_id: &'a str,
    pub identifier: Option<&'a str>,
    pub username: Option<&'a str>,
    pub user_master_identifier: Option<&'a str>,
    /// `userIds` parsed: `(type, id)`.
    pub user_ids: &'a [(String, String)],
}

impl IdentifierMap {
    /// The mapping from a post's query parameters (those starting `oneroster.`); an unknown
    /// source or target is an error naming the parameter.
    pub fn from_parameters<'a>(
        parameters: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut map = IdentifierMap::default();
        for (name, value) in parameters {
            let Some(source) = name.strip_prefix(PARAMETER_PREFIX) else {
                continue;
            };
            let target = Target::parse(value.trim()).ok_or_else(|| {
                format!(
                    "{name}={}: use sis_id, student_number, state_id, staff_id or none",
                    value.chars().take(32).collect::<String>()
                )
            })?;
            if let Some(kind) = source
                .strip_prefix("userIds.")
                .or_else(|| source.strip_prefix("userids."))
            {
                if kind.is_empty() {
                    return Err(format!(
                        "{name}: name a userIds type, as in oneroster.userIds.SIS"
                    ));
                }
                map.user_ids.push((kind.to_ascii_lowercase(), target));
                continue;
            }
            let slot = match source.to_ascii_lowercase().as_str() {
                "identifier" => &mut map.identifier,
                "sourcedid" => &mut map.sourced_id,
                "username" => &mut map.username,
                "usermasteridentifier" => &mut map.user_master_identifier,
                _ => {
                    return Err(format!(
                        "{}: not a OneRoster identifier; use oneroster.identifier, oneroster.sourcedId, oneroster.username, oneroster.userMasterIdentifier or oneroster.userIds.<type>",
                        name.chars().take(64).collect::<String>()
                    ));
                }
            };
            *slot = Some(target);
        }
        Ok(map)
    }

    pub fn is_default(&self) -> bool {
        *self == IdentifierMap::default()
    }

    /// The Pictureday identifiers of a user of `role`.
    pub fn apply(&self, role: Role, user: &UserIdentifiers<'_>) -> Identifiers {
        let mut ids = Identifiers::default();
        if let Some(target) = self.sourced_id {
            ids.fill(target, Some(user.sourced_id));
        }
        let identifier = self.identifier.unwrap_or(match role {
            Role::Student => Target::StudentNumber,
            Role::Staff => Target::StaffId,
        });
        ids.fill(identifier, user.identifier);
        if let Some(target) = self.username {
            ids.fill(target, user.username);
        }
        if let Some(target) = self.user_master_identifier {
            ids.fill(target, user.user_master_identifier);
        }
        for (kind, target) in &self.user_ids {
            for (_, id) in user
                .user_ids
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(kind))
            {
                ids.fill(*target, Some(id));
            }
        }
        ids
    }
}

/// `userIds` as OneRoster writes them, `{type:id}` entries separated by commas
/// (`{LDAP:jsmith},{SIS:12345}`); entries without braces (`SIS:12345`) are read too. An entry
/// that is not `type:id` is an error naming it.
pub fn parse_user_ids(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut entries = Vec::new();
    let pieces: Vec<&str> = if raw.contains('{') {
        raw.split('}')
            .map(|p| p.trim().trim_start_matches(',').trim())
            .filter(|p| !p.is_empty())
            .map(|p| p.strip_prefix('{').unwrap_or(p))
            .collect()
    } else {
        raw.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect()
    };
    for piece in pieces {
        match piece.split_once(':') {
            Some((kind, id)) if !kind.trim().is_empty() && !id.trim().is_empty() => {
                entries.push((kind.trim().to_owned(), id.trim().to_owned()));
            }
            _ => return Err(format!("{piece:?} is not {{type:id}}")),
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user<'a>(ids: &'a [(String, String)]) -> UserIdentifiers<'a> {
        UserIdentifiers {
            sourced_id: "u-1",
            identifier: Some("1001"),
            username: Some("jsmith"),
            user_master_identifier: None,
            user_ids: ids,
        }
    }

    #[test]
    fn user_ids_are_type_and_id() -> Result<(), String> {
        assert_eq!(
            parse_user_ids("{LDAP:jsmith},{SIS:12345}")?,
            vec![
                ("LDAP".to_owned(), "jsmith".to_owned()),
                ("SIS".to_owned(), "12345".to_owned())
            ]
        );
        assert_eq!(
            parse_user_ids(" {State:CA:99} , SIS:1")?,
            vec![
                ("State".to_owned(), "CA:99".to_owned()),
                ("SIS".to_owned(), "1".to_owned())
            ]
        );
        assert_eq!(parse_user_ids("SIS:1, LDAP:x")?.len(), 2);
        assert_eq!(parse_user_ids("")?, vec![]);
        assert!(parse_user_ids("{nocolon}").is_err());
        Ok(())
    }

    #[test]
    fn defaults_depend_on_the_role() {
        let ids = [("SIS".to_owned(), "S-9".to_owned())];
        let map = IdentifierMap::default();
        let student = map.apply(Role::Student, &user(&ids));
        assert_eq!(student.student_number.as_deref(), Some("1001"));
        assert_eq!((student.sis_id, student.staff_id), (None, None));
        let staff = map.apply(Role::Staff, &user(&ids));
        assert_eq!(staff.staff_id.as_deref(), Some("1001"));
        assert_eq!(staff.student_number, None);
    }

    #[test]
    fn parameters_choose_the_mapping() -> Result<(), String> {
        let map = IdentifierMap::from_parameters([
            ("wait", "false"),
            ("oneroster.identifier", "state_id"),
            ("oneroster.userIds.sis", "sis_id"),
            ("oneroster.sourcedId", "none"),
        ])?;
        assert!(!map.is_default());
        let ids = [
            ("LDAP".to_owned(), "jsmith".to_owned()),
            ("SIS".to_owned(), "S-9".to_owned()),
        ];
        let got = map.apply(Role::Student, &user(&ids));
        assert_eq!(
            got,
            Identifiers {
                sis_id: Some("S-9".into()),
                student_number: None,
                state_id: Some("1001".into()),
                staff_id: None,
            }
        );
        let json = serde_json::to_string(&map).map_err(|e| e.to_string())?;
        let back: IdentifierMap = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        assert_eq!(back, map);
        assert!(IdentifierMap::from_parameters([("oneroster.identifier", "ssn")]).is_err());
        assert!(IdentifierMap::from_parameters([("oneroster.birthday", "sis_id")]).is_err());
        Ok(())
    }
}
