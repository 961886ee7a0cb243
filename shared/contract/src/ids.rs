//! Identifiers that are parsed once at the edge and trusted inside.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A district's id: a slug of lower-case ASCII letters, digits and dashes. It appears in URLs,
/// NATS subjects and storage keys, so anything else is refused where it enters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DistrictId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid district id {0:?}: use 1 to 63 lower-case letters, digits and dashes, starting with a letter or digit"
)]
pub struct InvalidDistrictId(pub String);

impl DistrictId {
    pub fn parse(raw: &str) -> Result<Self, InvalidDistrictId> {
        let ok = !raw.is_empty()
            && raw.len() <= 63
            && !raw.starts_with('-')
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidDistrictId(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DistrictId {
    type Error = InvalidDistrictId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DistrictId> for String {
    fn from(value: DistrictId) -> Self {
        value.0
    }
}

impl fmt::Display for DistrictId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Ids that are only ever made by the system and compared, never parsed for meaning: a type
/// each, so a person's id cannot be passed where a photo's is meant. They read as `&str`
/// (`Deref`), for subjects, keys and queries.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A job (one upload): a UUID v7, so jobs sort by when they were accepted.
    JobId
);
string_id!(
    /// A person on a district's roster.
    PersonId
);
string_id!(
    /// A photo: derived from the file it came from ([`photo_id`]).
    PhotoId
);

impl JobId {
    /// A new job id: time-ordered (UUID v7), which keyset pagination and the "newest upload
    /// wins" rule rely on.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

impl PersonId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for PersonId {
    fn default() -> Self {
        Self::new()
    }
}

/// A photo's id is derived from the file it came from, so a redelivered event names the same photo.
pub fn photo_id(job_id: &JobId, seq: u32) -> PhotoId {
    PhotoId(
        uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("{job_id}/{seq}").as_bytes(),
        )
        .to_string(),
    )
}

/// The order in which uploads take effect: jobs by their time-ordered id, files by position.
pub fn upload_rank(job_id: &JobId, seq: u32) -> String {
    format!("{job_id}/{seq:010}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn district_ids_are_slugs() {
        assert!(DistrictId::parse("springfield-usd-12").is_ok());
        for bad in [
            "",
            "Springfield",
            "a.b",
            "a b",
            "-x",
            "a>b",
            "x*",
            &"a".repeat(64),
        ] {
            assert!(DistrictId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn upload_rank_orders_by_job_then_file() {
        let early = JobId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let late = JobId::new();
        assert!(upload_rank(&early, 99) < upload_rank(&late, 0));
        assert!(upload_rank(&late, 9) < upload_rank(&late, 10));
    }

    #[test]
    fn photo_ids_are_deterministic() {
        let job = JobId::from("j");
        assert_eq!(photo_id(&job, 1), photo_id(&job, 1));
        assert_ne!(photo_id(&job, 1), photo_id(&job, 2));
    }
}
