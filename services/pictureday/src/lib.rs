//! The `pictureday` launcher: the embedded default (all five services in one process, sharing
//! one HTTP port, one database, one storage and one NATS connection), the gateway that
//! gives a distributed deployment one address, and the command line for importing (`cli`).

pub mod cli;
pub mod embedded_nats;
pub mod gateway;
pub mod openapi;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use pictureday_access::new_token;
use pictureday_platform::Connections;
use pictureday_platform::runtime::Component;
use tokio_util::sync::CancellationToken;

/// Every service's component, in pipeline order, on one set of connections, the API's
/// document and reference page (`openapi`), and the console, which calls the API at
/// `api_base` (where this process serves it).
pub async fn all_components(
    connections: &Connections,
    shutdown: &CancellationToken,
    api_base: &str,
) -> anyhow::Result<Vec<Component>> {
    Ok(vec![
        pictureday_ingest::component(connections, shutdown).await?,
        pictureday_matcher::component(connections, shutdown).await?,
        pictureday_image_processor::component(connections, shutdown).await?,
        pictureday_roster::component(connections, shutdown).await?,
        pictureday_reporting::component(connections, shutdown).await?,
        Component::new("api-docs").routes(openapi::router()),
        console_component(connections, api_base)?,
    ])
}

/// Where a server bound at `addr` is reached from the same machine: an address bound on every
/// interface is reached on loopback. The console calls the API there.
pub fn local_base(mut addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

/// The console (`/console`), its sessions sealed under the installation's secrets key, else
/// the operator token.
pub fn console_component(connections: &Connections, api_base: &str) -> anyhow::Result<Component> {
    let settings = connections.settings();
    let operator_token = settings.operator_token()?;
    let secret = settings.api.secrets_key().unwrap_or(operator_token);
    let console =
        pictureday_console::Console::new(api_base, secret, settings.api.public_url.as_deref())?;
    Ok(Component::new("console").routes(pictureday_console::router(console)))
}

/// The operator token kept in the data directory, and whether it was made just now (only
/// then is it shown: a token read back is already known to whoever set it up, and logs are
/// kept and shipped where a secret must not go).
pub fn operator_token(data_dir: &Path) -> anyhow::Result<(String, bool)> {
    let path: PathBuf = data_dir.join("operator-token");
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => return Ok((token.trim().to_owned(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let token = new_token();
    write_secret(&path, &format!("{token}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((token, true))
}

/// Writes a file only its owner can read, from its first byte (no window in which it is
/// readable by others before a chmod).
fn write_secret(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // An existing (empty) file keeps its old mode through `open`.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Creates the data directory readable by its owner only (it holds the database, photos of
/// children and the operator token). An existing directory open to others is reported, not
/// changed: an operator may have shared it on purpose.
pub fn create_data_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let existed = dir.exists();
        builder.mode(0o700);
        builder
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if !existed && mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        } else if mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{:o}", mode & 0o777),
                "the data directory is readable by other users; 0700 is recommended"
            );
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        builder
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_data_dir_and_token_are_the_owners_alone() -> anyhow::Result<()> {
        let root = std::env::temp_dir().join(format!("pictureday-lib-{}", std::process::id()));
        let data = root.join("a/data");
        super::create_data_dir(&data)?;
        assert_eq!(
            std::fs::metadata(&data)?.permissions().mode() & 0o777,
            0o700
        );
        let (token, made) = super::operator_token(&data)?;
        assert!(made);
        let file = data.join("operator-token");
        assert_eq!(
            std::fs::metadata(&file)?.permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(super::operator_token(&data)?, (token, false));
        std::fs::remove_dir_all(&root)?;
        Ok(())
    }
}
