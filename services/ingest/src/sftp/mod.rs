//! SFTP drop folders: districts (their SIS or photographer) push photos and roster CSVs over
//! SFTP, and what they push becomes jobs exactly as an HTTP upload does. See `docs/sftp.md`.
//!
//! - `server`: the listener and the SSH settings;
//! - `session`: one connection, its login and its SFTP requests;
//! - `paths`: the folders an account sees, and nothing outside them;
//! - `drops`: files held until they become a job, kept in the database;
//! - `seal`: drops made jobs;
//! - `roster`: roster CSVs handed to roster;
//! - `accounts`, `accounts_api`: the accounts and their routes;
//! - `host_key`, `limiter`: the kept host key, and failed logins.

pub mod accounts;
pub(crate) mod accounts_api;
mod drops;
pub mod host_key;
pub mod limiter;
pub mod paths;
mod roster;
mod seal;
mod server;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::Ingest;

pub(crate) use server::Server;

/// What every connection works with.
pub(crate) struct Shared {
    pub ingest: Ingest,
    pub drops: Arc<drops::Drops>,
    pub limiter: limiter::Limiter,
    pub max_file_bytes: u64,
}

/// What the API says of the SFTP server (`GET /v1/sftp`).
#[derive(Clone, Debug)]
pub(crate) struct Info {
    /// Where it listens, as bound (`None`: no SFTP server).
    pub listen: Option<SocketAddr>,
    pub fingerprint: Option<String>,
    pub public_key: Option<String>,
    /// The host name from `PICTUREDAY_PUBLIC_URL`, if set: what clients connect to (behind a
    /// gateway or proxy the request's own `Host` may name something else).
    pub host: Option<String>,
}

/// `https://photos.example.org:8443/x` → `photos.example.org`.
pub(crate) fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_owned())
}
