//! The server's host key: Ed25519, made once and kept, so the fingerprint districts were given
//! never changes across restarts or replicas. It comes from a file (a mounted Kubernetes
//! Secret) when one is configured, else from storage, where the first instance to start puts
//! it and every later one (or replica) reads it.

use std::path::Path;

use anyhow::Context as _;
use bytes::Bytes;
use pictureday_platform::storage::{Storage, StorageError};
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{HashAlg, PrivateKey};

/// Where the host key is kept in storage: not under any district's prefix.
pub const STORAGE_KEY: &str = "sftp/host_key";

/// The host key and what clients are told of it.
#[derive(Clone)]
pub struct HostKey {
    pub key: PrivateKey,
    /// `SHA256:…`, as `ssh-keygen -l` and clients print it.
    pub fingerprint: String,
    /// The public key, OpenSSH format (`ssh-ed25519 AAAA…`), for a `known_hosts` line.
    pub public_key: String,
}

impl HostKey {
    fn from_private(key: PrivateKey) -> anyhow::Result<Self> {
        let public = key.public_key();
        Ok(Self {
            fingerprint: public.fingerprint(HashAlg::Sha256).to_string(),
            public_key: public
                .to_openssh()
                .context("encoding the host public key")?,
            key,
        })
    }

    fn parse(text: &[u8]) -> anyhow::Result<Self> {
        let key = PrivateKey::from_openssh(text).context("reading the SFTP host key")?;
        if !matches!(key.key_data(), KeypairData::Ed25519(_)) {
            anyhow::bail!("the SFTP host key must be Ed25519");
        }
        Self::from_private(key)
    }
}

/// A new Ed25519 key from the operating system's random source.
fn generate() -> anyhow::Result<PrivateKey> {
    let seed: [u8; 32] = rand::random();
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    Ok(key)
}

/// Loads the host key from `file` if given, else from storage, making it there on first start.
pub async fn load(file: Option<&Path>, storage: &Storage) -> anyhow::Result<HostKey> {
    if let Some(file) = file {
        let text = tokio::fs::read(file)
            .await
            .with_context(|| format!("reading the SFTP host key {}", file.display()))?;
        return HostKey::parse(&text);
    }
    match storage.get(STORAGE_KEY).await {
        Ok(text) => return HostKey::parse(&text),
        Err(StorageError::NotFound { .. }) => {}
        Err(error) => return Err(error).context("reading the SFTP host key from storage"),
    }
    let made = generate()?;
    let text = made
        .to_openssh(LineEnding::LF)
        .context("encoding the SFTP host key")?;
    storage
        .put_bytes(STORAGE_KEY, Bytes::from(text.as_bytes().to_vec()))
        .await
        .context("storing the SFTP host key")?;
    // Two replicas starting together may each have written one: the one that stayed in
    // storage is the one every later start reads, so use it too.
    let stored = storage
        .get(STORAGE_KEY)
        .await
        .context("reading back the SFTP host key")?;
    let key = HostKey::parse(&stored)?;
    tracing::info!(fingerprint = %key.fingerprint, "made a new SFTP host key");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_round_trips_with_its_fingerprint() -> anyhow::Result<()> {
        let key = HostKey::from_private(generate()?)?;
        let text = key.key.to_openssh(LineEnding::LF)?;
        let again = HostKey::parse(text.as_bytes())?;
        assert_eq!(again.fingerprint, key.fingerprint);
        assert!(
            key.fingerprint.starts_with("SHA256:"),
            "{}",
            key.fingerprint
        );
        assert!(key.public_key.starts_with("ssh-ed25519 "));
        Ok(())
    }
}
