//! SFTP accounts: stored, checked at login. A password is kept only as an Argon2 hash; public
//! keys in OpenSSH format. User names are unique across districts, so a login names its district.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use chrono::Utc;
use pictureday_contract::DistrictId;
use pictureday_platform::db::{begin_write, write};
use russh::keys::PublicKey;
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};

use crate::db::sftp_account;

/// Why an account could not be made or changed, in words for the API.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("the user name {0:?} is taken")]
    Taken(String),
    #[error("no SFTP account {0:?} in this district")]
    NotFound(String),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error("hashing the password: {0}")]
    Hash(String),
}

/// A checked user name: what OpenSSH and Windows clients accept without quoting.
pub fn check_username(raw: &str) -> Result<String, AccountError> {
    let ok = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && raw.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(AccountError::Invalid(format!(
            "username {raw:?}: use 1 to 64 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit"
        )))
    }
}

const MIN_PASSWORD: usize = 12;
const MAX_PASSWORD: usize = 1024;

fn check_password(password: &str) -> Result<(), AccountError> {
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&password.chars().count()) {
        return Err(AccountError::Invalid(format!(
            "the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    Ok(())
}

/// Parses OpenSSH public keys, and returns them in a normal form (comment kept).
pub fn check_keys(keys: &[String]) -> Result<Vec<String>, AccountError> {
    keys.iter()
        .enumerate()
        .map(|(i, raw)| {
            let key = PublicKey::from_openssh(raw.trim()).map_err(|e| {
                AccountError::Invalid(format!(
                    "public_keys[{i}] is not an OpenSSH public key (ssh-ed25519 AAAA… comment): {e}"
                ))
            })?;
            key.to_openssh()
                .map_err(|e| AccountError::Invalid(format!("public_keys[{i}]: {e}")))
        })
        .collect()
}

/// Argon2id with the crate's recommended parameters; the PHC string carries salt and cost.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| AccountError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

fn password_matches(hash: &str, password: &str) -> bool {
    // The PHC string carries the parameters and salt it was made with.
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// What an account may be given: a password, keys, or both.
pub struct Credentials {
    pub password: Option<String>,
    pub public_keys: Option<Vec<String>>,
}

impl Credentials {
    /// Checks and hashes: `(hash, keys JSON)`. Argon2 is slow on purpose: off the runtime.
    async fn prepare(self) -> Result<(Option<String>, Vec<String>), AccountError> {
        let keys = check_keys(self.public_keys.as_deref().unwrap_or_default())?;
        let hash = match self.password {
            None => None,
            Some(password) => {
                check_password(&password)?;
                Some(
                    tokio::task::spawn_blocking(move || hash_password(&password))
                        .await
                        .map_err(|e| AccountError::Hash(e.to_string()))??,
                )
            }
        };
        if hash.is_none() && keys.is_empty() {
            return Err(AccountError::Invalid(
                "give a password, public_keys, or both".into(),
            ));
        }
        Ok((hash, keys))
    }
}

pub async fn create(
    db: &DatabaseConnection,
    district: &DistrictId,
    username: &str,
    credentials: Credentials,
) -> Result<sftp_account::Model, AccountError> {
    let username = check_username(username)?;
    let (hash, keys) = credentials.prepare().await?;
    if sftp_account::Entity::find_by_id(username.as_str())
        .one(db)
        .await?
        .is_some()
    {
        return Err(AccountError::Taken(username));
    }
    let now = Utc::now();
    let row = sftp_account::ActiveModel {
        username: Set(username.clone()),
        district_id: Set(district.as_str().to_owned()),
        password_hash: Set(hash),
        public_keys: Set(
            serde_json::to_string(&keys).map_err(|e| AccountError::Hash(e.to_string()))?
        ),
        disabled: Set(false),
        created_at: Set(now),
        rotated_at: Set(now),
    };
    // Two creations racing for one name: the primary key refuses the second.
    let txn = begin_write(db).await?;
    let created = row.insert(&txn).await.map_err(|e| match e {
        sea_orm::DbErr::Query(_) | sea_orm::DbErr::Exec(_) => AccountError::Taken(username),
        other => AccountError::Db(other),
    })?;
    txn.commit().await?;
    Ok(created)
}

pub async fn list(
    db: &DatabaseConnection,
    district: &DistrictId,
) -> Result<Vec<sftp_account::Model>, AccountError> {
    Ok(sftp_account::Entity::find()
        .filter(sftp_account::Column::DistrictId.eq(district.as_str()))
        .order_by_asc(sftp_account::Column::Username)
        .all(db)
        .await?)
}

pub async fn find(
    db: &DatabaseConnection,
    district: &DistrictId,
    username: &str,
) -> Result<sftp_account::Model, AccountError> {
    sftp_account::Entity::find_by_id(username)
        .filter(sftp_account::Column::DistrictId.eq(district.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| AccountError::NotFound(username.to_owned()))
}

/// Changes what is given: a new password and/or new keys (rotation), and/or disables or
/// enables the account.
pub async fn update(
    db: &DatabaseConnection,
    district: &DistrictId,
    username: &str,
    credentials: Credentials,
    disabled: Option<bool>,
) -> Result<sftp_account::Model, AccountError> {
    let current = find(db, district, username).await?;
    let rotating = credentials.password.is_some() || credentials.public_keys.is_some();
    let mut hash = current.password_hash.clone();
    let mut keys: Vec<String> = serde_json::from_str(&current.public_keys).unwrap_or_default();
    let mut row: sftp_account::ActiveModel = current.into();
    // What is not given is kept: a new password leaves the keys, and the reverse.
    if let Some(given) = credentials.public_keys {
        keys = check_keys(&given)?;
    }
    if let Some(password) = credentials.password {
        check_password(&password)?;
        hash = Some(
            tokio::task::spawn_blocking(move || hash_password(&password))
                .await
                .map_err(|e| AccountError::Hash(e.to_string()))??,
        );
    }
    if rotating {
        if hash.is_none() && keys.is_empty() {
            return Err(AccountError::Invalid(
                "the account would have neither a password nor keys".into(),
            ));
        }
        row.password_hash = Set(hash);
        row.public_keys =
            Set(serde_json::to_string(&keys).map_err(|e| AccountError::Hash(e.to_string()))?);
        row.rotated_at = Set(Utc::now());
    }
    if let Some(disabled) = disabled {
        row.disabled = Set(disabled);
    }
    let txn = begin_write(db).await?;
    let updated = row.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

pub async fn delete(
    db: &DatabaseConnection,
    district: &DistrictId,
    username: &str,
) -> Result<(), AccountError> {
    let found = find(db, district, username).await?;
    write(db, sftp_account::Entity::delete_by_id(found.username)).await?;
    Ok(())
}

/// A login that succeeded: whose folder it opens.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub username: String,
    pub district: DistrictId,
}

async fn enabled(db: &DatabaseConnection, username: &str) -> Option<sftp_account::Model> {
    match sftp_account::Entity::find_by_id(username).one(db).await {
        Ok(Some(account)) if !account.disabled => Some(account),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(%error, "reading an SFTP account at login");
            None
        }
    }
}

fn logged_in(account: sftp_account::Model) -> Option<LoggedIn> {
    Some(LoggedIn {
        district: DistrictId::parse(&account.district_id).ok()?,
        username: account.username,
    })
}

/// Checks a password login; `None` for any failure (unknown user, disabled, wrong password).
pub async fn check_password_login(
    db: &DatabaseConnection,
    username: &str,
    password: &str,
) -> Option<LoggedIn> {
    let account = enabled(db, username).await?;
    let hash = account.password_hash.clone()?;
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || password_matches(&hash, &password))
        .await
        .unwrap_or(false);
    if matches { logged_in(account) } else { None }
}

/// Checks that `key` is one of the account's keys (russh has verified the client holds it).
pub async fn check_key_login(
    db: &DatabaseConnection,
    username: &str,
    key: &PublicKey,
) -> Option<LoggedIn> {
    let account = enabled(db, username).await?;
    let keys: Vec<String> = serde_json::from_str(&account.public_keys).unwrap_or_default();
    let known = keys.iter().any(|k| {
        PublicKey::from_openssh(k)
            .map(|known| known.key_data() == key.key_data())
            .unwrap_or(false)
    });
    if known { logged_in(account) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_kept_only_as_a_hash_that_verifies() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(password_matches(&hash, "correct horse battery"));
        assert!(!password_matches(&hash, "correct horse batterY"));
    }

    #[test]
    fn user_names_and_keys_are_checked() {
        assert!(check_username("springfield-photos").is_ok());
        assert!(check_username("../etc").is_err());
        assert!(check_username("Upper").is_err());
        assert!(check_username("").is_err());
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl sis@district";
        assert_eq!(check_keys(&[key.to_owned()]).expect("a key").len(), 1);
        assert!(check_keys(&["ssh-ed25519 nonsense".to_owned()]).is_err());
    }
}
