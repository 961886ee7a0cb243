//! Secrets kept at rest sealed (a district's Clever bearer token): AES-256-GCM with a random
//! nonce, the district's id as associated data (a sealed token copied to another district's row
//! does not open), under a key derived with HKDF-SHA256 from `PICTUREDAY_SECRETS_KEY`, or, when
//! that is not set, from the operator token (as photo-link keys are), so every replica of an
//! installation agrees without more settings.
//!
//! Sealed form: `v1:` then the hex of nonce ‖ ciphertext ‖ tag.

use std::fmt;

use pictureday_platform::sealing::{SealingError, SealingKey};

const PREFIX: &str = "v1:";
const SALT: &[u8] = b"pictureday secrets v1";
const PURPOSE: &[u8] = b"source tokens";
/// The shortest `PICTUREDAY_SECRETS_KEY` accepted.
pub const MIN_KEY_CHARS: usize = 32;

/// The key source tokens are sealed with.
pub struct SecretKey {
    key: SealingKey,
}

/// Secrets stay out of debug output.
impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "PICTUREDAY_SECRETS_KEY must have at least {MIN_KEY_CHARS} characters; leave it unset to \
         derive the key from the operator token"
    )]
    ShortKey,
    #[error("the sealed secret is not in a form this version reads")]
    Malformed,
    /// Another key sealed it (the secrets key changed), or it was altered.
    #[error("the sealed secret does not open with this installation's key")]
    WrongKey,
    #[error("sealing failed")]
    Seal,
}

impl From<SealingError> for SecretError {
    fn from(error: SealingError) -> Self {
        match error {
            SealingError::Seal => SecretError::Seal,
            SealingError::Malformed => SecretError::Malformed,
            SealingError::WrongKey => SecretError::WrongKey,
        }
    }
}

impl SecretKey {
    /// From `PICTUREDAY_SECRETS_KEY` when given, else from the operator token.
    pub fn from_settings(
        secrets_key: Option<&str>,
        operator_token: &str,
    ) -> Result<Self, SecretError> {
        let secret = match secrets_key.map(str::trim).filter(|k| !k.is_empty()) {
            Some(key) if key.chars().count() < MIN_KEY_CHARS => return Err(SecretError::ShortKey),
            Some(key) => key,
            None => operator_token,
        };
        Ok(Self {
            key: SealingKey::derive(secret, SALT, PURPOSE)?,
        })
    }

    /// Seals `secret` for `district`.
    pub fn seal(&self, district: &str, secret: &str) -> Result<String, SecretError> {
        let sealed = self.key.seal(district.as_bytes(), secret.as_bytes())?;
        Ok(format!("{PREFIX}{}", hex::encode(sealed)))
    }

    /// Opens what [`seal`](Self::seal) made for `district`.
    pub fn open(&self, district: &str, sealed: &str) -> Result<String, SecretError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|h| hex::decode(h).ok())
            .ok_or(SecretError::Malformed)?;
        let plain = self.key.open(district.as_bytes(), &bytes)?;
        String::from_utf8(plain).map_err(|_| SecretError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_for_one_district() -> Result<(), SecretError> {
        let key = SecretKey::from_settings(None, "operator-token")?;
        let sealed = key.seal("springfield", "clever-token-1")?;
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("clever-token-1"));
        assert_eq!(key.open("springfield", &sealed)?, "clever-token-1");
        // Random nonces: sealing twice differs.
        assert_ne!(sealed, key.seal("springfield", "clever-token-1")?);
        // Another district's row, another key, an altered byte: refused.
        assert_eq!(key.open("shelbyville", &sealed), Err(SecretError::WrongKey));
        let other = SecretKey::from_settings(Some(&"k".repeat(32)), "operator-token")?;
        assert_eq!(
            other.open("springfield", &sealed),
            Err(SecretError::WrongKey)
        );
        let mut altered = sealed.clone();
        let last = altered
            .pop()
            .map_or('0', |c| if c == '0' { '1' } else { '0' });
        altered.push(last);
        assert_eq!(
            key.open("springfield", &altered),
            Err(SecretError::WrongKey)
        );
        assert_eq!(
            key.open("springfield", "plain"),
            Err(SecretError::Malformed)
        );
        Ok(())
    }

    #[test]
    fn a_short_key_is_refused() {
        assert_eq!(
            SecretKey::from_settings(Some("short"), "operator-token").err(),
            Some(SecretError::ShortKey)
        );
        assert!(format!("{:?}", SecretKey::from_settings(None, "x")).contains("***"));
    }
}
