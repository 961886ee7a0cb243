//! Small secrets sealed with the installation's secret, for one purpose each (a district's
//! Clever token at rest, a console session in its cookie): AES-256-GCM with a random nonce, under
//! a key derived with HKDF-SHA256 from the secret, a salt and the purpose, so one purpose's
//! sealed values never open as another's. Associated data binds a value to where it belongs (a
//! district's row): copied elsewhere, it does not open. Sealed bytes: nonce ‖ ciphertext ‖ tag.

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use ring::rand::{SecureRandom, SystemRandom};

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum SealingError {
    #[error("sealing failed")]
    Seal,
    #[error("the sealed value is not in a form this version reads")]
    Malformed,
    /// Another key sealed it, for another place, or it was altered.
    #[error("the sealed value does not open with this key")]
    WrongKey,
}

/// A key for one purpose.
pub struct SealingKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

/// Keys stay out of debug output.
impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(***)")
    }
}

impl SealingKey {
    /// The key for `purpose`, derived from `secret` with `salt`.
    pub fn derive(secret: &str, salt: &[u8], purpose: &[u8]) -> Result<Self, SealingError> {
        let prk = Salt::new(HKDF_SHA256, salt).extract(secret.as_bytes());
        let info = [purpose];
        let okm = prk
            .expand(&info, &AES_256_GCM)
            .map_err(|_| SealingError::Seal)?;
        Ok(Self {
            key: LessSafeKey::new(UnboundKey::from(okm)),
            rng: SystemRandom::new(),
        })
    }

    /// Seals `plain`, bound to `place`.
    pub fn seal(&self, place: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealingError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealingError::Seal)?;
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(place),
                &mut sealed,
            )
            .map_err(|_| SealingError::Seal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`seal`](Self::seal) made for `place`.
    pub fn open(&self, place: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealingError> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SealingError::Malformed);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealingError::Malformed)?;
        let mut rest = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(place), &mut rest)
            .map_err(|_| SealingError::WrongKey)?;
        Ok(plain.to_vec())
    }

    /// `bytes` random bytes from the same generator.
    pub fn random(&self, bytes: usize) -> Result<Vec<u8>, SealingError> {
        let mut buf = vec![0u8; bytes];
        self.rng.fill(&mut buf).map_err(|_| SealingError::Seal)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_with_its_key_purpose_and_place() -> Result<(), SealingError> {
        let key = SealingKey::derive("secret", b"salt", b"tokens")?;
        let sealed = key.seal(b"springfield", b"value")?;
        assert_eq!(key.open(b"springfield", &sealed)?, b"value");
        assert_ne!(sealed, key.seal(b"springfield", b"value")?, "random nonces");
        assert_eq!(
            key.open(b"shelbyville", &sealed),
            Err(SealingError::WrongKey)
        );
        let other_purpose = SealingKey::derive("secret", b"salt", b"sessions")?;
        assert_eq!(
            other_purpose.open(b"springfield", &sealed),
            Err(SealingError::WrongKey)
        );
        let mut altered = sealed.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(
            key.open(b"springfield", &altered),
            Err(SealingError::WrongKey)
        );
        assert_eq!(
            key.open(b"springfield", b"short"),
            Err(SealingError::Malformed)
        );
        assert_eq!(key.random(16)?.len(), 16);
        Ok(())
    }
}
