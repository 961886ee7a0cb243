//! OneRoster 1.2 `roles.csv`: a user's roles, each at an org (`roleType` primary or secondary).
//! Read whole before `users.csv` into a map of user → roles, primary first: small per user.

use std::collections::HashMap;
use std::io::BufRead;

use super::table::{Next, Table};
use super::{FileError, Kind, OneRosterError, Rejections};

pub(super) const FILE: &str = "roles.csv";

/// A user's role at an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UserRole {
    pub(super) kind: Kind,
    pub(super) org: Option<String>,
    pub(super) primary: bool,
}

/// Every user's roles, primary ones first.
pub(super) type Roles = HashMap<String, Vec<UserRole>>;

pub(super) fn read(input: impl BufRead) -> Result<(Roles, Rejections), OneRosterError> {
    let mut table = Table::new(FILE, input)?;
    table.require(&["userSourcedId", "role"])?;
    let mut roles: Roles = HashMap::new();
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
        if table
            .get("status")
            .is_some_and(|s| s.eq_ignore_ascii_case("tobedeleted"))
        {
            continue;
        }
        let error = |field: &str, reason: String| FileError {
            file: FILE,
            row,
            field: field.into(),
            reason,
        };
        let Some(user) = table.get("userSourcedId") else {
            rejections.reject(vec![error("userSourcedId", "is empty".into())]);
            continue;
        };
        let kind = match table.get("role").as_deref().map(Kind::parse) {
            Some(Ok(kind)) => kind,
            Some(Err(reason)) => {
                rejections.reject(vec![error("role", reason)]);
                continue;
            }
            None => {
                rejections.reject(vec![error("role", "is empty".into())]);
                continue;
            }
        };
        let primary = table
            .get("roleType")
            .is_some_and(|t| t.eq_ignore_ascii_case("primary"));
        let entry = roles.entry(user).or_default();
        let role = UserRole {
            kind,
            org: table.get("orgSourcedId"),
            primary,
        };
        if primary {
            let at = entry.iter().take_while(|r| r.primary).count();
            entry.insert(at, role);
        } else {
            entry.push(role);
        }
    }
    Ok((roles, rejections))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_roles_come_first() -> Result<(), OneRosterError> {
        let csv = "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId\r\n\
                   r1,active,,t1,secondary,teacher,,,s2,\r\n\
                   r2,active,,t1,primary,teacher,,,s1,\r\n\
                   r3,tobedeleted,,t1,secondary,teacher,,,s3,\r\n\
                   r4,active,,u9,primary,wizard,,,s1,\r\n";
        let (roles, rejections) = read(csv.as_bytes())?;
        let orgs: Vec<Option<&str>> = roles["t1"].iter().map(|r| r.org.as_deref()).collect();
        assert_eq!(orgs, vec![Some("s1"), Some("s2")]);
        assert!(roles["t1"][0].primary);
        assert_eq!(
            rejections
                .errors
                .first()
                .map(ToString::to_string)
                .as_deref(),
            Some("roles.csv row 5 column role: unknown role \"wizard\"")
        );
        Ok(())
    }
}
