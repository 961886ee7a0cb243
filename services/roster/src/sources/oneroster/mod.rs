//! OneRoster 1.1 and 1.2 CSV zips posted to `POST …/roster` (recognised by their
//! `manifest.csv`): `orgs.csv` schools become the district's schools, `users.csv` people are
//! applied through [`crate::sources::people`] keyed by their `sourcedId`, and for 1.2 `roles.csv`
//! gives each user's roles and orgs. `users.csv` is read from the zip as a stream, a chunk of
//! people at a time; only `roles.csv` (small per user) is read whole first.
//!
//! `manifest.csv` says whether `users.csv` is `bulk` (the whole roster: the source's people it
//! does not list are deactivated once it is applied) or `delta` (changes: `status=tobedeleted`
//! deactivates). People are never deleted. Guardians, parents and relatives are not
//! photographed: their rows are counted as ignored. Row errors name the file, row (the header is
//! row 1) and column.

pub mod identifiers;
pub mod manifest;
mod orgs;
mod roles;
mod table;
pub mod users;

use std::collections::HashMap;
use std::fmt;
use std::io::{BufReader, Read, Seek};

pub use identifiers::IdentifierMap;
pub use manifest::{Manifest, Mode};
use users::{User, UsersReader};

use crate::sources::people::SourcePerson;
use crate::sources::schools::SourceSchool;

/// Whether a file starts as a zip does (a local file header, or the end record of an empty zip).
pub fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

/// A row error: the file of the zip, the row (the header is row 1), the column and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: &'static str,
    pub row: u32,
    pub field: String,
    pub reason: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{} row {}: {}", self.file, self.row, self.reason)
        } else {
            write!(
                f,
                "{} row {} column {}: {}",
                self.file, self.row, self.field, self.reason
            )
        }
    }
}

/// Rows of a file that were skipped, and their errors.
#[derive(Debug, Default)]
pub struct Rejections {
    pub rows: u64,
    pub errors: Vec<FileError>,
}

impl Rejections {
    fn reject(&mut self, errors: Vec<FileError>) {
        self.rows += 1;
        self.errors.extend(errors);
    }
}

/// What a OneRoster role is to Pictureday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Student,
    /// Teachers, aides, administrators, counselors, proctors: photographed as staff.
    Staff,
    /// Guardians, parents and relatives: not photographed.
    Ignored,
}

impl Kind {
    /// A role of OneRoster 1.1 or 1.2 (any case).
    pub fn parse(role: &str) -> Result<Self, String> {
        Ok(match role.to_ascii_lowercase().as_str() {
            "student" => Kind::Student,
            "teacher"
            | "administrator"
            | "aide"
            | "proctor"
            | "principal"
            | "siteadministrator"
            | "systemadministrator"
            | "districtadministrator"
            | "counselor" => Kind::Staff,
            "guardian" | "parent" | "relative" => Kind::Ignored,
            _ => return Err(format!("unknown role {role:?}")),
        })
    }
}

/// Why a zip cannot be imported at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OneRosterError {
    #[error("not a readable zip: {0}")]
    Zip(String),
    #[error("the zip has no manifest.csv, so it is not a OneRoster zip")]
    NoManifest,
    #[error("{0}")]
    Manifest(FileError),
    #[error("oneroster.version {0} is not supported; send OneRoster 1.1 or 1.2")]
    Version(String),
    #[error("manifest.csv says file.{property} is {mode}, but the zip has no {file}")]
    MissingFile {
        property: &'static str,
        mode: &'static str,
        file: &'static str,
    },
    #[error("manifest.csv lists neither users nor orgs (file.users and file.orgs are absent)")]
    NoUsers,
    #[error("{0} is empty: it needs at least a header row")]
    EmptyFile(&'static str),
    #[error("{file} has no {column} column")]
    MissingColumn {
        file: &'static str,
        column: &'static str,
    },
    #[error("{file} names the column {column} twice")]
    DuplicateColumn { file: &'static str, column: String },
    #[error("{file} row {row}: {reason}")]
    Unreadable {
        file: &'static str,
        row: u32,
        reason: String,
    },
}

/// A OneRoster zip: its entries (by name, any case, beside `manifest.csv`) and its manifest.
pub struct Package<R: Read + Seek> {
    archive: zip::ZipArchive<R>,
    /// Lower-cased file name → the entry's name.
    entries: HashMap<String, String>,
    pub manifest: Manifest,
}

impl<R: Read + Seek> Package<R> {
    /// Opens the zip and reads its manifest. The files may be at the top of the zip or in one
    /// folder (the one `manifest.csv` is in).
    pub fn open(reader: R) -> Result<Self, OneRosterError> {
        let zip_error = |e: zip::result::ZipError| OneRosterError::Zip(e.to_string());
        let mut archive = zip::ZipArchive::new(reader).map_err(zip_error)?;
        let names: Vec<String> = archive
            .file_names()
            .filter_map(Result::ok)
            .map(|n| n.into_owned())
            .collect();
        let manifest = names
            .iter()
            .filter(|n| {
                let lower = n.to_ascii_lowercase();
                lower == "manifest.csv" || lower.ends_with("/manifest.csv")
            })
            .min_by_key(|n| n.len())
            .ok_or(OneRosterError::NoManifest)?
            .clone();
        let folder = &manifest[..manifest.len() - "manifest.csv".len()];
        let entries: HashMap<String, String> = names
            .iter()
            .filter_map(|n| {
                let file = n.strip_prefix(folder)?;
                (!file.contains('/')).then(|| (file.to_ascii_lowercase(), n.clone()))
            })
            .collect();
        let entry = archive.by_name(&manifest).map_err(zip_error)?;
        let manifest = Manifest::read(BufReader::new(entry))?;
        Ok(Self {
            archive,
            entries,
            manifest,
        })
    }

    fn has(&self, file: &str) -> bool {
        self.entries.contains_key(file)
    }

    /// The files the manifest says are there, checked; `Absent` for those it does not send.
    fn planned(
        &self,
        property: &'static str,
        mode: Mode,
        file: &'static str,
    ) -> Result<Mode, OneRosterError> {
        match mode {
            Mode::Absent => Ok(Mode::Absent),
            _ if self.has(file) => Ok(mode),
            // roles.csv is optional: a 1.1 zip has none; a 1.2 user's role may be in users.csv.
            _ if file == roles::FILE => Ok(Mode::Absent),
            _ => Err(OneRosterError::MissingFile {
                property,
                mode: mode.as_str(),
                file,
            }),
        }
    }

    fn open_entry(
        &mut self,
        file: &str,
    ) -> Result<BufReader<zip::read::ZipFile<'_, R>>, OneRosterError> {
        let name = self
            .entries
            .get(file)
            .cloned()
            .ok_or_else(|| OneRosterError::Zip(format!("no entry {file}")))?;
        let entry = self
            .archive
            .by_name(&name)
            .map_err(|e| OneRosterError::Zip(format!("{file}: {e}")))?;
        Ok(BufReader::with_capacity(64 * 1024, entry))
    }

    /// What an upload is checked for before it is recorded: the manifest, the files it names, and
    /// the header rows of `users.csv` and `orgs.csv`.
    pub fn check(&mut self) -> Result<(), OneRosterError> {
        let users = self.planned("users", self.manifest.users, users::FILE)?;
        let orgs = self.planned("orgs", self.manifest.orgs, orgs::FILE)?;
        if users == Mode::Absent && orgs == Mode::Absent {
            return Err(OneRosterError::NoUsers);
        }
        if users != Mode::Absent {
            let empty = roles::Roles::new();
            let map = IdentifierMap::default();
            UsersReader::new(self.open_entry(users::FILE)?, &empty, &map)?;
        }
        if orgs != Mode::Absent {
            table::Table::new(orgs::FILE, self.open_entry(orgs::FILE)?)?.require(&[
                "sourcedId",
                "name",
                "type",
            ])?;
        }
        Ok(())
    }

    /// Reads the zip for an import: first a [`Piece::Prelude`] (the manifest, the schools of
    /// `orgs.csv`, and the rows of `orgs.csv` and `roles.csv` rejected), then `users.csv` in
    /// chunks of about `chunk_rows` rows. `send` returns `false` to stop.
    pub fn read(
        &mut self,
        map: &IdentifierMap,
        chunk_rows: usize,
        mut send: impl FnMut(Piece) -> bool,
    ) -> Result<(), OneRosterError> {
        let users_mode = self.planned("users", self.manifest.users, users::FILE)?;
        let orgs_mode = self.planned("orgs", self.manifest.orgs, orgs::FILE)?;
        let roles_mode = self.planned("roles", self.manifest.roles, roles::FILE)?;
        let mut prelude = Prelude {
            manifest: self.manifest.clone(),
            schools: Vec::new(),
            rejected_rows: 0,
            errors: Vec::new(),
        };
        if orgs_mode != Mode::Absent {
            let (schools, rejections) = orgs::read(self.open_entry(orgs::FILE)?)?;
            prelude.schools = schools;
            prelude.rejected_rows += rejections.rows;
            prelude.errors.extend(rejections.errors);
        }
        let mut roles = roles::Roles::new();
        if roles_mode != Mode::Absent {
            let (read, rejections) = roles::read(self.open_entry(roles::FILE)?)?;
            roles = read;
            prelude.rejected_rows += rejections.rows;
            prelude.errors.extend(rejections.errors);
        }
        if !send(Piece::Prelude(prelude)) || users_mode == Mode::Absent {
            return Ok(());
        }
        let mut reader = UsersReader::new(self.open_entry(users::FILE)?, &roles, map)?;
        let mut chunk = UsersChunk::default();
        while let Some((row, user)) = reader.next_user()? {
            chunk.last_row = row;
            match user {
                User::Person(person) => chunk.people.push(*person),
                User::Deleted(id) => chunk.deleted.push(id),
                User::Unroled { student, staff } => chunk.unroled.push(Unroled {
                    row,
                    student: *student,
                    staff: *staff,
                }),
                User::Ignored => chunk.ignored += 1,
                User::Rejected(id, errors) => {
                    chunk.rejected_rows += 1;
                    chunk.rejected_ids.extend(id);
                    chunk.errors.extend(errors);
                }
                User::Blank => {}
            }
            if chunk.records() >= chunk_rows && !send(Piece::Users(std::mem::take(&mut chunk))) {
                return Ok(());
            }
        }
        if chunk.last_row > 0 {
            send(Piece::Users(chunk));
        }
        Ok(())
    }
}

/// A part of a OneRoster zip, in the order it is read.
#[derive(Debug)]
pub enum Piece {
    Prelude(Prelude),
    Users(UsersChunk),
}

/// What comes before the users.
#[derive(Debug)]
pub struct Prelude {
    pub manifest: Manifest,
    pub schools: Vec<SourceSchool>,
    /// Rows of `orgs.csv` and `roles.csv` rejected, and their errors.
    pub rejected_rows: u64,
    pub errors: Vec<FileError>,
}

/// Consecutive rows of `users.csv`.
#[derive(Debug, Default)]
pub struct UsersChunk {
    pub people: Vec<SourcePerson>,
    /// `sourcedId`s with `status=tobedeleted`.
    pub deleted: Vec<String>,
    /// 1.2 users without a role in the zip: they keep the one they have.
    pub unroled: Vec<Unroled>,
    /// `sourcedId`s of rejected rows: left as they are, even by a bulk file.
    pub rejected_ids: Vec<String>,
    pub errors: Vec<FileError>,
    pub rejected_rows: u64,
    /// Guardians, parents and relatives.
    pub ignored: u64,
    /// The row number of the chunk's last row.
    pub last_row: u32,
}

impl UsersChunk {
    pub fn records(&self) -> usize {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        self.people.len()
            + self.deleted.len()
            + self.unroled.len()
            + n(self.rejected_rows)
            + n(self.ignored)
    }
}

/// A 1.2 user whose role the zip does not give, as either role.
#[derive(Debug)]
pub struct Unroled {
    pub row: u32,
    pub student: SourcePerson,
    pub staff: SourcePerson,
}

/// The chunk's people, with its [`Unroled`] users in the role the district already has them in;
/// those it does not know are rejected (the returned errors).
pub async fn with_known_roles(
    db: &impl sea_orm::ConnectionTrait,
    district: &pictureday_contract::DistrictId,
    chunk: &UsersChunk,
) -> Result<(Vec<SourcePerson>, Vec<FileError>), sea_orm::DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    use crate::db::person::{self, RosterSource};
    use crate::roster_csv::Role;
    let mut people = chunk.people.clone();
    let mut errors = Vec::new();
    if chunk.unroled.is_empty() {
        return Ok((people, errors));
    }
    let ids: Vec<&str> = chunk
        .unroled
        .iter()
        .map(|u| u.staff.source_id.as_str())
        .collect();
    let roles: HashMap<String, Role> = person::Entity::find()
        .filter(person::Column::DistrictId.eq(district.as_str()))
        .filter(person::Column::Source.eq(RosterSource::OneRoster))
        .filter(person::Column::SourceId.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|p| p.source_id.map(|id| (id, p.role)))
        .collect();
    for user in &chunk.unroled {
        match roles.get(&user.staff.source_id) {
            Some(Role::Student) => people.push(user.student.clone()),
            Some(Role::Staff) => people.push(user.staff.clone()),
            None => errors.push(FileError {
                file: users::FILE,
                row: user.row,
                field: "role".into(),
                reason:
                    "is empty, and neither roles.csv nor an earlier import gives this user a role"
                        .into(),
            }),
        }
    }
    Ok((people, errors))
}

/// Checks an uploaded file that starts as a zip does (see [`Package::check`]).
pub fn check_file(file: std::fs::File) -> Result<Manifest, OneRosterError> {
    let mut package = Package::open(BufReader::new(file))?;
    package.check()?;
    Ok(package.manifest)
}

/// Marks the OneRoster people with these source ids as listed by the bulk file stamped `stamp`
/// although their rows were rejected: a row the file got wrong does not deactivate its person.
pub async fn keep_seen(
    db: &impl sea_orm::ConnectionTrait,
    district: &pictureday_contract::DistrictId,
    source_ids: &[String],
    stamp: chrono::DateTime<chrono::Utc>,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    use crate::db::person::{self, RosterSource};
    for ids in source_ids.chunks(500) {
        person::Entity::update_many()
            .col_expr(person::Column::SourceSeenAt, Expr::value(stamp))
            .filter(person::Column::DistrictId.eq(district.as_str()))
            .filter(person::Column::Source.eq(RosterSource::OneRoster))
            .filter(person::Column::SourceId.is_in(ids.iter().map(String::as_str)))
            .exec(db)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;

    fn zip_of(entries: &[(&str, &str)]) -> Result<Vec<u8>, zip::result::ZipError> {
        let mut out = Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut out);
            for (name, text) in entries {
                zip.start_file(*name, zip::write::SimpleFileOptions::default())?;
                zip.write_all(text.as_bytes())?;
            }
            zip.finish()?;
        }
        Ok(out.into_inner())
    }

    const ORGS: &str = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n\
                        d1,,,Springfield USD,district,,\n\
                        s1,,,North,school,,d1\n";

    fn read_all(zip: Vec<u8>, chunk_rows: usize) -> Result<Vec<Piece>, Box<dyn std::error::Error>> {
        let mut package = Package::open(Cursor::new(zip))?;
        package.check()?;
        let mut pieces = Vec::new();
        package.read(&IdentifierMap::default(), chunk_rows, |p| {
            pieces.push(p);
            true
        })?;
        Ok(pieces)
    }

    #[test]
    fn a_bulk_zip_is_read_in_chunks() -> Result<(), Box<dyn std::error::Error>> {
        let mut users = String::from(
            "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n",
        );
        for n in 0..25 {
            let role = match n % 5 {
                0 => "teacher",
                1 => "guardian",
                2 => "pirate",
                _ => "student",
            };
            users.push_str(&format!("u{n},,,,s1,{role},,,A{n},B,,{n},,,,,03,\n"));
        }
        users.push_str("u99,tobedeleted,,,,,,,,,,,,,,,,\n\n");
        let zip = zip_of(&[
            (
                "export/manifest.csv",
                "propertyName,value\noneroster.version,1.1\nfile.users,bulk\nfile.orgs,bulk\n",
            ),
            ("export/orgs.csv", ORGS),
            ("export/Users.csv", &users),
        ])?;
        let pieces = read_all(zip, 10)?;
        let Some(Piece::Prelude(prelude)) = pieces.first() else {
            return Err("no prelude".into());
        };
        assert_eq!(prelude.manifest.users, Mode::Bulk);
        assert_eq!(prelude.schools.len(), 1);
        let chunks: Vec<(usize, usize, u64, u64, u32)> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Users(c) => Some((
                    c.people.len(),
                    c.deleted.len(),
                    c.rejected_rows,
                    c.ignored,
                    c.last_row,
                )),
                Piece::Prelude(_) => None,
            })
            .collect();
        assert_eq!(
            chunks,
            vec![(6, 0, 2, 2, 11), (6, 0, 2, 2, 21), (3, 1, 1, 1, 27)]
        );
        Ok(())
    }

    #[test]
    fn zips_that_are_not_oneroster_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let no_manifest = zip_of(&[("users.csv", "sourcedId\n")])?;
        assert_eq!(
            Package::open(Cursor::new(no_manifest)).err(),
            Some(OneRosterError::NoManifest)
        );
        let no_users = zip_of(&[("manifest.csv", "propertyName,value\nfile.users,bulk\n")])?;
        assert_eq!(
            read_all(no_users, 10)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("manifest.csv says file.users is bulk, but the zip has no users.csv")
        );
        assert!(is_zip(b"PK\x03\x04rest"));
        assert!(!is_zip(b"role,sis_id"));
        Ok(())
    }
}
