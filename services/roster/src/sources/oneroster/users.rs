//! `users.csv`, read row by row into [`SourcePerson`]s. Both column sets are read: OneRoster 1.1
//! (`role`, `orgSourcedIds`) and 1.2 (`primaryOrgSourcedId`, roles in `roles.csv`, preferred
//! names); columns are found by name and the ones Pictureday has no use for are ignored.

use std::collections::HashMap;
use std::io::BufRead;

use super::identifiers::{IdentifierMap, UserIdentifiers, parse_user_ids};
use super::roles::Roles;
use super::table::{Next, Table};
use super::{FileError, Kind, OneRosterError};
use crate::roster_csv::Role;
use crate::sources::people::SourcePerson;

pub(super) const FILE: &str = "users.csv";

/// What a row of `users.csv` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    Person(Box<SourcePerson>),
    /// `status=tobedeleted`: the person with this `sourcedId` is deactivated.
    Deleted(String),
    /// A OneRoster 1.2 user whose role neither `users.csv` nor `roles.csv` gives (a delta that
    /// changes a user but not their roles): as a student and as staff, for the caller to pick by
    /// the role the person already has.
    Unroled {
        student: Box<SourcePerson>,
        staff: Box<SourcePerson>,
    },
    /// A guardian, parent or relative: not photographed.
    Ignored,
    /// Errors: the row is skipped (its `sourcedId`, if it has one, so that a bulk file does not
    /// deactivate a person over a row it could not read).
    Rejected(Option<String>, Vec<FileError>),
    Blank,
}

pub struct UsersReader<'a, R: BufRead> {
    table: Table<R>,
    roles: &'a Roles,
    map: &'a IdentifierMap,
    /// `sourcedId` → the row it was first on, to report a repeat.
    seen: HashMap<String, u32>,
}

impl<'a, R: BufRead> UsersReader<'a, R> {
    pub(super) fn new(
        input: R,
        roles: &'a Roles,
        map: &'a IdentifierMap,
    ) -> Result<Self, OneRosterError> {
        let table = Table::new(FILE, input)?;
        table.require(&["sourcedId", "givenName", "familyName"])?;
        Ok(Self {
            table,
            roles,
            map,
            seen: HashMap::new(),
        })
    }

    /// The next row and its number (the header is row 1), or `None` at the end.
    pub fn next_user(&mut self) -> Result<Option<(u32, User)>, OneRosterError> {
        let row = match self.table.next()? {
            None => return Ok(None),
            Some(Next::Row(row)) => row,
            Some(Next::Blank(row)) => return Ok(Some((row, User::Blank))),
            Some(Next::Unreadable(error)) => {
                return Ok(Some((error.row, User::Rejected(None, vec![error]))));
            }
        };
        Ok(Some((row, self.user(row))))
    }

    fn user(&mut self, row: u32) -> User {
        let t = &self.table;
        let mut errors = Vec::new();
        let at = |field: &str, reason: String| FileError {
            file: FILE,
            row,
            field: field.into(),
            reason,
        };
        let Some(sourced_id) = t.get("sourcedId") else {
            errors.push(at("sourcedId", "is empty".into()));
            return User::Rejected(None, errors);
        };
        let status = t.get("status").map(|s| s.to_ascii_lowercase());
        match status.as_deref() {
            None | Some("active") => {}
            Some("tobedeleted" | "inactive") => return User::Deleted(sourced_id),
            Some(other) => {
                errors.push(at(
                    "status",
                    format!("must be active or tobedeleted, not {other:?}"),
                ));
            }
        }
        let active = match t
            .get("enabledUser")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                errors.push(at(
                    "enabledUser",
                    format!("must be true or false, not {other:?}"),
                ));
                true
            }
        };
        let user_roles = self.roles.get(&sourced_id);
        let mut unroled = false;
        // 1.1: the `role` column; 1.2: the user's primary role in roles.csv.
        let kind = match t.get("role") {
            Some(role) => match Kind::parse(&role) {
                Ok(kind) => Some(kind),
                Err(reason) => {
                    errors.push(at("role", reason));
                    None
                }
            },
            None => match user_roles.and_then(|r| r.first()) {
                Some(role) => Some(role.kind),
                None => {
                    unroled = true;
                    None
                }
            },
        };
        if kind == Some(Kind::Ignored) && errors.is_empty() {
            return User::Ignored;
        }
        let first_name = t.get("givenName");
        let last_name = t.get("familyName");
        if first_name.is_none() {
            errors.push(at("givenName", "is empty".into()));
        }
        if last_name.is_none() {
            errors.push(at("familyName", "is empty".into()));
        }
        let preferred = t.get("preferredGivenName");
        for (column, value) in [
            ("givenName", &first_name),
            ("familyName", &last_name),
            ("preferredGivenName", &preferred),
        ] {
            if let Some(value) = value
                && value.chars().any(|c| c.is_control() && !c.is_whitespace())
            {
                errors.push(at(
                    column,
                    format!("{value:?} contains a control character; remove it"),
                ));
            }
        }
        let email = t.get("email").map(|e| e.to_lowercase());
        if let Some(email) = &email
            && !looks_like_email(email)
        {
            errors.push(at("email", format!("{email:?} is not an email address")));
        }
        let user_ids = match t.get("userIds").map(|raw| parse_user_ids(&raw)) {
            None => Vec::new(),
            Some(Ok(ids)) => ids,
            Some(Err(reason)) => {
                errors.push(at("userIds", reason));
                Vec::new()
            }
        };
        let identifier = t.get("identifier");
        let username = t.get("username");
        let master = t.get("userMasterIdentifier");
        let role = match kind {
            Some(Kind::Student) => Role::Student,
            _ => Role::Staff,
        };
        let user = UserIdentifiers {
            sourced_id: &sourced_id,
            identifier: identifier.as_deref(),
            username: username.as_deref(),
            user_master_identifier: master.as_deref(),
            user_ids: &user_ids,
        };
        let ids = self.map.apply(role, &user);
        // Unroled: `role` is staff, and these are the identifiers as a student.
        let student_ids = unroled.then(|| self.map.apply(Role::Student, &user));
        for ids in [Some(&ids), student_ids.as_ref()].into_iter().flatten() {
            for (name, value) in [
                ("sis_id", &ids.sis_id),
                ("student_number", &ids.student_number),
                ("state_id", &ids.state_id),
                ("staff_id", &ids.staff_id),
            ] {
                if let Some(value) = value
                    && (value.chars().any(char::is_control) || value.contains('/'))
                {
                    errors.push(at(
                        "identifier",
                        format!("{value:?} (as {name}) contains a control character or '/'"),
                    ));
                }
            }
        }
        errors.dedup();
        if let Some(first) = self.seen.get(&sourced_id) {
            errors.push(at(
                "sourcedId",
                format!("{sourced_id:?} is also on row {first}"),
            ));
        }
        if !errors.is_empty() {
            return User::Rejected(Some(sourced_id), errors);
        }
        self.seen.insert(sourced_id.clone(), row);
        // Schools: 1.1 lists the user's orgs; 1.2 names a primary one and the rest are the orgs
        // of the user's roles. Which of them are schools is for the caller (orgs.csv) to say.
        let mut schools: Vec<String> = Vec::new();
        let mut add = |org: &str| {
            if !org.is_empty() && !schools.iter().any(|s| s == org) {
                schools.push(org.to_owned());
            }
        };
        if let Some(primary) = t.get("primaryOrgSourcedId") {
            add(&primary);
        }
        for role in user_roles.into_iter().flatten() {
            if let Some(org) = &role.org {
                add(org);
            }
        }
        if let Some(orgs) = t.get("orgSourcedIds") {
            for org in orgs.split(',') {
                add(org.trim());
            }
        }
        let grade = t.get("grades").and_then(|g| {
            g.split(',')
                .map(str::trim)
                .find(|g| !g.is_empty())
                .map(str::to_owned)
        });
        match (first_name, last_name) {
            (Some(first_name), Some(last_name)) => {
                let person = SourcePerson {
                    source_id: sourced_id,
                    role,
                    email,
                    sis_id: ids.sis_id,
                    student_number: ids.student_number,
                    state_id: ids.state_id,
                    staff_id: ids.staff_id,
                    first_name,
                    last_name,
                    preferred_first_name: preferred,
                    grade,
                    homeroom: None,
                    teacher: None,
                    schools,
                    active,
                };
                match student_ids {
                    None => User::Person(Box::new(person)),
                    Some(ids) => User::Unroled {
                        student: Box::new(SourcePerson {
                            role: Role::Student,
                            sis_id: ids.sis_id,
                            student_number: ids.student_number,
                            state_id: ids.state_id,
                            staff_id: ids.staff_id,
                            ..person.clone()
                        }),
                        staff: Box::new(person),
                    },
                }
            }
            // Unreachable: each missing one was an error above.
            _ => User::Blank,
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
    use super::super::roles;
    use super::*;

    const V11: &str = "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\r\n";

    fn users(
        csv: &[u8],
        roles: &Roles,
        map: &IdentifierMap,
    ) -> Result<Vec<(u32, User)>, OneRosterError> {
        let mut reader = UsersReader::new(csv, roles, map)?;
        let mut all = Vec::new();
        while let Some(user) = reader.next_user()? {
            all.push(user);
        }
        Ok(all)
    }

    fn person(user: &User) -> Option<&SourcePerson> {
        match user {
            User::Person(p) => Some(p),
            _ => None,
        }
    }

    #[test]
    fn reads_a_1_1_file() -> Result<(), OneRosterError> {
        let csv = format!(
            "\u{feff}{V11}\
             u1,active,2026-01-01,true,\"s1,d1\",student,ada,\"{{LDAP:ada}},{{SIS:S-1}}\",Ada,Lovelace,,1001,Ada@Example.org,,,p1,\"05,06\",\r\n\
             u2,,,false,s2,teacher,bob,,Bob,Ng,,T-7,,,,,,\r\n\
             p1,,,true,s1,guardian,,,Pat,Lovelace,,,,,,,,\r\n\
             u3,tobedeleted,,,,,,,,,,,,,,,,\r\n"
        );
        let all = users(csv.as_bytes(), &Roles::new(), &IdentifierMap::default())?;
        assert_eq!(all.len(), 4);
        let ada = person(&all[0].1).ok_or(OneRosterError::NoUsers)?;
        assert_eq!(all[0].0, 2);
        assert_eq!(ada.source_id, "u1");
        assert_eq!(ada.role, Role::Student);
        assert_eq!(ada.student_number.as_deref(), Some("1001"));
        assert_eq!(ada.sis_id, None);
        assert_eq!(ada.email.as_deref(), Some("ada@example.org"));
        assert_eq!(ada.schools, vec!["s1".to_owned(), "d1".to_owned()]);
        assert_eq!(ada.grade.as_deref(), Some("05"));
        assert!(ada.active);
        let bob = person(&all[1].1).ok_or(OneRosterError::NoUsers)?;
        assert_eq!((bob.role, bob.active), (Role::Staff, false));
        assert_eq!(bob.staff_id.as_deref(), Some("T-7"));
        assert_eq!(all[2].1, User::Ignored);
        assert_eq!(all[3].1, User::Deleted("u3".into()));
        Ok(())
    }

    #[test]
    fn reads_a_1_2_file_with_its_roles() -> Result<(), OneRosterError> {
        let roles_csv = "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId\n\
                         r1,,,t1,secondary,teacher,,,s2,\n\
                         r2,,,t1,primary,teacher,,,s1,\n\
                         r3,,,u1,primary,student,,,s1,\n\
                         r4,,,g1,primary,parent,,,s1,\n";
        let (roles, _) = roles::read(roles_csv.as_bytes())?;
        let csv = "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,resourceSourcedIds,preferredGivenName,preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns\n\
                   u1,active,,true,ada,{SIS:S-1},Adaline,Lovelace,,1001,,,,,KG,,M-1,,Ada,,,s1,she/her\n\
                   t1,active,,true,min,,Min,Lee,,T-77,min@example.org,,,,,,,,,,,s2,\n\
                   g1,active,,true,,,Pat,Lovelace,,,,,,,,,,,,,,s1,\n";
        let map = IdentifierMap::from_parameters([
            ("oneroster.userIds.SIS", "sis_id"),
            ("oneroster.userMasterIdentifier", "state_id"),
        ])
        .map_err(|_| OneRosterError::NoUsers)?;
        let all = users(csv.as_bytes(), &roles, &map)?;
        let ada = person(&all[0].1).ok_or(OneRosterError::NoUsers)?;
        assert_eq!(ada.role, Role::Student);
        assert_eq!(ada.first_name, "Adaline");
        assert_eq!(ada.preferred_first_name.as_deref(), Some("Ada"));
        assert_eq!(ada.sis_id.as_deref(), Some("S-1"));
        assert_eq!(ada.state_id.as_deref(), Some("M-1"));
        assert_eq!(ada.student_number.as_deref(), Some("1001"));
        assert_eq!(ada.grade.as_deref(), Some("KG"));
        let min = person(&all[1].1).ok_or(OneRosterError::NoUsers)?;
        assert_eq!(min.role, Role::Staff);
        // The primary org first, then the roles' orgs (primary role first).
        assert_eq!(min.schools, vec!["s2".to_owned(), "s1".to_owned()]);
        assert_eq!(all[2].1, User::Ignored);
        Ok(())
    }

    #[test]
    fn errors_name_file_row_and_column() -> Result<(), OneRosterError> {
        let mut csv = V11.to_owned();
        for n in 0..5 {
            csv.push_str(&format!("u{n},,,,s1,student,,,A{n},B,,{n},,,,,,\n"));
        }
        csv.push_str("u9,,,,s1,wizard,,,A,B,,9,,,,,,\n");
        csv.push_str("u0,,,,s1,student,,{nope},,B,,9,not-mail,,,,,\n");
        let all = users(csv.as_bytes(), &Roles::new(), &IdentifierMap::default())?;
        let errors: Vec<String> = all
            .iter()
            .filter_map(|(_, u)| match u {
                User::Rejected(_, errors) => Some(errors.iter().map(ToString::to_string)),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(
            errors,
            vec![
                "users.csv row 7 column role: unknown role \"wizard\"".to_owned(),
                "users.csv row 8 column givenName: is empty".to_owned(),
                "users.csv row 8 column email: \"not-mail\" is not an email address".to_owned(),
                "users.csv row 8 column userIds: \"nope\" is not {type:id}".to_owned(),
                "users.csv row 8 column sourcedId: \"u0\" is also on row 2".to_owned(),
            ]
        );
        assert!(matches!(&all[6].1, User::Rejected(Some(id), _) if id == "u0"));
        Ok(())
    }

    #[test]
    fn windows_1252_is_decoded() -> Result<(), OneRosterError> {
        let mut csv = V11.as_bytes().to_vec();
        csv.extend_from_slice(b"u1,,,,s1,Student,,,Jos\xe9,Pe\xf1a,,1,,,,,,\r\n");
        let all = users(&csv, &Roles::new(), &IdentifierMap::default())?;
        let jose = person(&all[0].1).ok_or(OneRosterError::NoUsers)?;
        assert_eq!(
            (jose.first_name.as_str(), jose.last_name.as_str()),
            ("José", "Peña")
        );
        Ok(())
    }

    #[test]
    fn a_file_without_names_is_refused() {
        let error = users(
            b"sourcedId,role\nu1,student\n",
            &Roles::new(),
            &IdentifierMap::default(),
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("users.csv has no givenName column"));
    }
}
