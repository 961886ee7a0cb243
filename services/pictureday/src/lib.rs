//! The `pictureday` launcher: the embedded default (all five services in one process, sharing
//! one HTTP port, one database, one storage and one NATS connection), and the gateway that
//! gives a distributed deployment one address.

pub mod embedded_nats;
pub mod gateway;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use pictureday_access::new_token;
use pictureday_platform::Connections;
use pictureday_platform::runtime::Component;
use tokio_util::sync::CancellationToken;

/// Every service's component, in pipeline order, on one set of connections.
pub async fn all_components(
    connections: &Connections,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<Component>> {
    Ok(vec![
        pictureday_ingest::component(connections, shutdown).await?,
        pictureday_matcher::component(connections, shutdown).await?,
        pictureday_image_processor::component(connections, shutdown).await?,
        pictureday_roster::component(connections, shutdown).await?,
        pictureday_reporting::component(connections, shutdown).await?,
    ])
}

/// The operator token kept in the data directory: made on first start, readable only by its
/// owner.
pub fn operator_token(data_dir: &Path) -> anyhow::Result<String> {
    let path: PathBuf = data_dir.join("operator-token");
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let token = new_token();
    std::fs::write(&path, format!("{token}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(token)
}
