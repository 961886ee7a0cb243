//! `manifest.csv`: rows of `propertyName,value` saying which OneRoster version the zip is and, for
//! each file, whether it is the whole roster (`bulk`), changes only (`delta`) or not sent
//! (`absent`).

use std::io::BufRead;

use super::table::{Next, Table};
use super::{FileError, OneRosterError};

/// How a file of the zip covers the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything: people of the source the file does not list are deactivated.
    Bulk,
    /// Changes only: `status=tobedeleted` deactivates, people not listed are left alone.
    Delta,
    /// Not sent.
    Absent,
}

impl Mode {
    fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "bulk" => Some(Mode::Bulk),
            "delta" => Some(Mode::Delta),
            "absent" | "" => Some(Mode::Absent),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Bulk => "bulk",
            Mode::Delta => "delta",
            Mode::Absent => "absent",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// `oneroster.version` as written (`1.1`, `1.2`), if it is there.
    pub version: Option<String>,
    pub users: Mode,
    pub orgs: Mode,
    pub roles: Mode,
}

impl Manifest {
    pub fn read(input: impl BufRead) -> Result<Self, OneRosterError> {
        const FILE: &str = "manifest.csv";
        let mut table = Table::new(FILE, input)?;
        table.require(&["propertyName", "value"])?;
        let mut manifest = Manifest {
            version: None,
            users: Mode::Absent,
            orgs: Mode::Absent,
            roles: Mode::Absent,
        };
        while let Some(next) = table.next()? {
            let row = match next {
                Next::Row(row) => row,
                Next::Blank(_) => continue,
                Next::Unreadable(error) => return Err(OneRosterError::Manifest(error)),
            };
            let Some(name) = table.get("propertyName") else {
                continue;
            };
            let value = table.get("value").unwrap_or_default();
            let slot = match name.to_ascii_lowercase().as_str() {
                "oneroster.version" => {
                    manifest.version = Some(value);
                    continue;
                }
                "file.users" => &mut manifest.users,
                "file.orgs" => &mut manifest.orgs,
                "file.roles" => &mut manifest.roles,
                _ => continue,
            };
            *slot = Mode::parse(&value).ok_or_else(|| {
                OneRosterError::Manifest(FileError {
                    file: FILE,
                    row,
                    field: "value".into(),
                    reason: format!("{name} must be bulk, delta or absent, not {value:?}"),
                })
            })?;
        }
        if let Some(version) = &manifest.version
            && !(version.starts_with("1.1") || version.starts_with("1.2"))
        {
            return Err(OneRosterError::Version(version.clone()));
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_modes_and_version() -> Result<(), OneRosterError> {
        let manifest = Manifest::read(
            "\u{feff}\"propertyName\",\"value\"\r\n\"manifest.version\",\"1.0\"\r\n\"oneroster.version\",\"1.2\"\r\n\"file.users\",\"delta\"\r\n\"file.orgs\",\"bulk\"\r\n\"file.courses\",\"absent\"\r\n"
                .as_bytes(),
        )?;
        assert_eq!(manifest.version.as_deref(), Some("1.2"));
        assert_eq!(
            (manifest.users, manifest.orgs, manifest.roles),
            (Mode::Delta, Mode::Bulk, Mode::Absent)
        );
        Ok(())
    }

    #[test]
    fn a_bad_mode_names_its_row() {
        let error = Manifest::read(
            "propertyName,value\noneroster.version,1.1\nfile.users,sometimes\n".as_bytes(),
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "manifest.csv row 3 column value: file.users must be bulk, delta or absent, not \"sometimes\""
            )
        );
        let version = Manifest::read("propertyName,value\noneroster.version,1.0\n".as_bytes())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            version.as_deref(),
            Some("oneroster.version 1.0 is not supported; send OneRoster 1.1 or 1.2")
        );
    }
}
