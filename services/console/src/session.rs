//! A signed-in admin's session, kept in the browser and nowhere else: the token they signed in
//! with, who it is, and a CSRF secret, sealed (AES-256-GCM under a key derived from the
//! installation's secret) into an `HttpOnly`, `SameSite=Strict` cookie — `Secure` when the
//! console is served over TLS — that expires after eight hours. Every replica opens every cookie;
//! no server keeps session state.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use pictureday_platform::sealing::SealingKey;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "pictureday_console";
/// How long a session lasts.
pub const LIFETIME: Duration = Duration::hours(8);

const SALT: &[u8] = b"pictureday console v1";
const AAD: &[u8] = b"console session";

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The token, for the API calls made for them. Never shown.
    pub token: String,
    /// `operator`, or the district's token's role (`admin`, `importer`, `viewer`).
    pub role: String,
    /// The district a district token belongs to; `None` for the operator.
    pub district: Option<String>,
    /// Sent back with every form; a form without it is refused.
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    pub fn is_operator(&self) -> bool {
        self.role == "operator"
    }

    /// May this session do what needs `role` (`viewer` ⊂ `importer` ⊂ `admin` ⊂ operator)?
    pub fn may(&self, role: &str) -> bool {
        let rank = |r: &str| match r {
            "viewer" => 1,
            "importer" => 2,
            "admin" => 3,
            "operator" => 4,
            _ => 0,
        };
        rank(&self.role) >= rank(role)
    }

    /// The form's CSRF value matches this session's.
    pub fn csrf_matches(&self, sent: &str) -> bool {
        !sent.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(sent.as_bytes()))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("the session cookie is not valid")]
    Invalid,
    #[error("the session has expired")]
    Expired,
    #[error("sealing the session failed")]
    Seal,
}

/// The key sessions are sealed with.
pub struct SessionKey {
    key: SealingKey,
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(***)")
    }
}

impl SessionKey {
    /// Derived from the installation's secret (the secrets key, else the operator token), so
    /// every replica agrees and a new secret signs everyone out.
    pub fn derive(secret: &str) -> Result<Self, SessionError> {
        Ok(Self {
            key: SealingKey::derive(secret, SALT, b"sessions").map_err(|_| SessionError::Seal)?,
        })
    }

    /// A random value for a new session's CSRF secret.
    pub fn random_hex(&self, bytes: usize) -> Result<String, SessionError> {
        let random = self.key.random(bytes).map_err(|_| SessionError::Seal)?;
        Ok(hex::encode(random))
    }

    pub fn seal(&self, session: &Session) -> Result<String, SessionError> {
        let plain = serde_json::to_vec(session).map_err(|_| SessionError::Seal)?;
        let sealed = self.key.seal(AAD, &plain).map_err(|_| SessionError::Seal)?;
        Ok(hex::encode(sealed))
    }

    pub fn open(&self, cookie: &str, now: DateTime<Utc>) -> Result<Session, SessionError> {
        let bytes = hex::decode(cookie).map_err(|_| SessionError::Invalid)?;
        let plain = self
            .key
            .open(AAD, &bytes)
            .map_err(|_| SessionError::Invalid)?;
        let session: Session = serde_json::from_slice(&plain).map_err(|_| SessionError::Invalid)?;
        if session.expires_at <= now {
            return Err(SessionError::Expired);
        }
        Ok(session)
    }
}

/// The `Set-Cookie` value for a session (or, with `None`, one that removes it).
pub fn set_cookie(value: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(value) => format!(
            "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            LIFETIME.num_seconds()
        ),
        None => format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// The session cookie's value in a `Cookie` header.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .map(str::trim)
        .find_map(|pair| pair.strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(key: &SessionKey) -> Result<Session, SessionError> {
        Ok(Session {
            token: "pd_secret".into(),
            role: "admin".into(),
            district: Some("springfield".into()),
            csrf: key.random_hex(16)?,
            expires_at: Utc::now() + LIFETIME,
        })
    }

    #[test]
    fn a_session_opens_only_with_its_key_unaltered_and_unexpired() -> Result<(), SessionError> {
        let key = SessionKey::derive("operator-token")?;
        let s = session(&key)?;
        let sealed = key.seal(&s)?;
        assert!(!sealed.contains("pd_secret"));
        assert_eq!(key.open(&sealed, Utc::now())?, s);
        let other = SessionKey::derive("another-secret")?;
        assert_eq!(other.open(&sealed, Utc::now()), Err(SessionError::Invalid));
        let mut altered = sealed.clone().into_bytes();
        if let Some(last) = altered.last_mut() {
            *last = if *last == b'0' { b'1' } else { b'0' };
        }
        let altered = String::from_utf8(altered).unwrap_or_default();
        assert_eq!(key.open(&altered, Utc::now()), Err(SessionError::Invalid));
        assert_eq!(
            key.open(&sealed, s.expires_at + Duration::seconds(1)),
            Err(SessionError::Expired)
        );
        assert_eq!(key.open("zz", Utc::now()), Err(SessionError::Invalid));
        Ok(())
    }

    #[test]
    fn roles_and_csrf() -> Result<(), SessionError> {
        let key = SessionKey::derive("x")?;
        let s = session(&key)?;
        assert!(s.may("viewer") && s.may("admin") && !s.may("operator"));
        assert!(s.csrf_matches(&s.csrf.clone()));
        assert!(!s.csrf_matches(""));
        assert!(!s.csrf_matches("00"));
        assert_eq!(
            cookie_value("a=1; pictureday_console=abc; b=2"),
            Some("abc")
        );
        assert_eq!(cookie_value("pictureday_console="), None);
        assert!(set_cookie(Some("v"), true).ends_with("; Secure"));
        assert!(set_cookie(Some("v"), false).contains("HttpOnly; SameSite=Strict"));
        Ok(())
    }
}
