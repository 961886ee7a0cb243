//! Standard Webhooks signing: a secret is `whsec_` and base64 of 24 to 64 random bytes; a
//! delivery is signed with HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, sent as
//! `webhook-signature: v1,<base64>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use rand::RngCore as _;

const PREFIX: &str = "whsec_";
const MIN_KEY: usize = 24;
const MAX_KEY: usize = 64;

/// A signing secret, checked. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    text: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("secret must be \"whsec_\" followed by the base64 of {MIN_KEY} to {MAX_KEY} random bytes")]
pub struct BadSecret;

impl Secret {
    /// A new random secret of 32 bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self {
            text: format!("{PREFIX}{}", STANDARD.encode(&key)),
            key,
        }
    }

    pub fn parse(text: &str) -> Result<Self, BadSecret> {
        let encoded = text.strip_prefix(PREFIX).ok_or(BadSecret)?;
        let key = STANDARD.decode(encoded).map_err(|_| BadSecret)?;
        if !(MIN_KEY..=MAX_KEY).contains(&key.len()) {
            return Err(BadSecret);
        }
        Ok(Self {
            text: text.to_owned(),
            key,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The `webhook-signature` header's value for one attempt.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // Any key length is valid for HMAC, so this cannot fail.
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&self.key) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// Why a delivery's signature was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is {0} s away from now; a delivery is accepted within 5 minutes")]
    Stale(i64),
    #[error("no v1 signature in webhook-signature matches")]
    NoMatch,
}

/// Checks a delivery as a receiver does (Standard Webhooks): `signatures` is the
/// `webhook-signature` header (one or more space-separated `v1,<base64>`), and the timestamp
/// must be within 5 minutes of `now` (Unix seconds) so a captured delivery cannot be replayed
/// later.
pub fn verify(
    secret: &Secret,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let skew = now.saturating_sub(timestamp);
    if skew.abs() > 300 {
        return Err(VerifyError::Stale(skew));
    }
    let expected = secret.sign(id, timestamp, body);
    let matches = signatures.split(' ').any(|given| {
        // Compared in constant time: the signature is what an attacker would probe.
        given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    });
    if matches {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_example() -> anyhow::Result<()> {
        // The example of the Standard Webhooks specification.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        Ok(())
    }

    #[test]
    fn receivers_verify_and_refuse_forgeries() -> anyhow::Result<()> {
        let secret = Secret::generate();
        let body = br#"{"type":"job.status"}"#;
        let signature = secret.sign("msg_1", 1_700_000_000, body);
        let both = format!("v1,bm90IGl0 {signature}");
        assert_eq!(
            verify(&secret, "msg_1", "1700000000", &both, body, 1_700_000_010),
            Ok(())
        );
        assert_eq!(
            verify(
                &secret,
                "msg_2",
                "1700000000",
                &signature,
                body,
                1_700_000_010
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(
                &Secret::generate(),
                "msg_1",
                "1700000000",
                &signature,
                body,
                1_700_000_010
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(
                &secret,
                "msg_1",
                "1700000000",
                &signature,
                body,
                1_700_001_000
            ),
            Err(VerifyError::Stale(1000))
        );
        Ok(())
    }

    #[test]
    fn secrets_are_checked_and_generated_well() {
        assert_eq!(
            Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(BadSecret)
        );
        assert_eq!(Secret::parse("whsec_c2hvcnQ="), Err(BadSecret));
        assert_eq!(Secret::parse("whsec_not base64!"), Err(BadSecret));
        let secret = Secret::generate();
        assert_eq!(Secret::parse(secret.as_str()), Ok(secret.clone()));
        assert_ne!(Secret::generate(), secret);
        assert_eq!(format!("{secret:?}"), "Secret(…)");
    }
}
