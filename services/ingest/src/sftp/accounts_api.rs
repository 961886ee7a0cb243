//! The SFTP routes: where the server is and its host key (`GET /v1/sftp`), and a district's
//! accounts (`/v1/districts/{district}/sftp-accounts`, district admin). Passwords are taken,
//! hashed and never shown again; nothing here logs them.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header::HOST};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use pictureday_access::{Caller, Role};
use pictureday_platform::http::ApiError;
use serde::{Deserialize, Serialize};

use super::Info;
use super::accounts::{self, AccountError, Credentials};
use crate::Ingest;
use crate::db::sftp_account;

#[derive(Clone)]
pub(crate) struct SftpApi {
    pub ingest: Ingest,
    pub info: Info,
}

impl axum::extract::FromRef<SftpApi> for std::sync::Arc<pictureday_access::Auth> {
    fn from_ref(state: &SftpApi) -> Self {
        state.ingest.auth.clone()
    }
}

pub(crate) fn router(api: SftpApi) -> Router {
    Router::new()
        .route("/v1/sftp", get(get_sftp))
        .route(
            "/v1/districts/{district}/sftp-accounts",
            get(list_accounts).post(create_account),
        )
        .route(
            "/v1/districts/{district}/sftp-accounts/{username}",
            get(get_account)
                .patch(update_account)
                .delete(delete_account),
        )
        .with_state(api)
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Invalid(message) => ApiError::BadRequest(message),
            AccountError::Taken(_) => ApiError::Conflict(error.to_string()),
            AccountError::NotFound(_) => ApiError::NotFound(error.to_string()),
            AccountError::Db(e) => ApiError::from(e),
            AccountError::Hash(e) => ApiError::internal(anyhow::anyhow!(e)),
        }
    }
}

/// Where districts connect, and the host key they should expect.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SftpServer {
    /// Whether this installation runs an SFTP server.
    enabled: bool,
    /// The host name clients use: `PICTUREDAY_PUBLIC_URL`'s, else the API's as this request
    /// reached it.
    host: Option<String>,
    port: Option<u16>,
    /// `SHA256:…`, as OpenSSH, FileZilla and WinSCP show it.
    fingerprint: Option<String>,
    /// The host's public key (`ssh-ed25519 AAAA…`).
    public_key: Option<String>,
    /// A line for an OpenSSH `known_hosts` file.
    known_hosts: Option<String>,
}

/// The SFTP server's address and host key fingerprint (any valid token).
#[utoipa::path(
    get,
    path = "/v1/sftp",
    tag = "sftp",
    operation_id = "getSftpServer",
    responses((status = 200, description = "Where to connect, and the fingerprint to expect.", body = SftpServer,
        example = json!({"enabled": true, "host": "photos.example.org", "port": 2222, "fingerprint": "SHA256:Zk3n5yQ0mVnq2o2Lx8GwJ0W2l7v9hP1aE4r6t8y0uIo", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", "known_hosts": "[photos.example.org]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"})))
)]
async fn get_sftp(
    State(api): State<SftpApi>,
    _caller: Caller,
    headers: HeaderMap,
) -> Json<SftpServer> {
    let host = api.info.host.clone().or_else(|| {
        headers.get(HOST).and_then(|h| h.to_str().ok()).map(|h| {
            // `host:port` or `[v6]:port`: the name alone.
            match h.rsplit_once(':') {
                Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
                _ => h.to_owned(),
            }
        })
    });
    let port = api.info.listen.map(|a| a.port());
    let known_hosts = match (&host, port, &api.info.public_key) {
        (Some(host), Some(port), Some(key)) => Some(if port == 22 {
            format!("{host} {key}")
        } else {
            format!("[{host}]:{port} {key}")
        }),
        _ => None,
    };
    Json(SftpServer {
        enabled: api.info.listen.is_some(),
        host,
        port,
        fingerprint: api.info.fingerprint.clone(),
        public_key: api.info.public_key.clone(),
        known_hosts,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAccount {
    /// Unique across districts: 1 to 64 of `a-z`, `0-9`, `-`, `_`, `.`.
    username: String,
    /// At least 12 characters; stored as an Argon2 hash.
    password: Option<String>,
    /// OpenSSH public keys, `ssh-ed25519 AAAA… comment`.
    public_keys: Option<Vec<String>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountUpdate {
    /// A new password (rotation); the keys are kept unless given too.
    password: Option<String>,
    /// New keys, replacing the account's; `[]` removes them (a password must remain).
    public_keys: Option<Vec<String>>,
    /// Disable (`true`) or enable (`false`) logins.
    disabled: Option<bool>,
}

/// An account as shown: never its password.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Account {
    username: String,
    district: String,
    has_password: bool,
    public_keys: Vec<String>,
    disabled: bool,
    created_at: DateTime<Utc>,
    rotated_at: DateTime<Utc>,
}

impl From<sftp_account::Model> for Account {
    fn from(m: sftp_account::Model) -> Self {
        Account {
            has_password: m.password_hash.is_some(),
            public_keys: serde_json::from_str(&m.public_keys).unwrap_or_default(),
            username: m.username,
            district: m.district_id,
            disabled: m.disabled,
            created_at: m.created_at,
            rotated_at: m.rotated_at,
        }
    }
}

const DISTRICT: &str = "The district's id (`a-z`, `0-9`, `-`).";

/// Creates an SFTP account for the district (admin).
#[utoipa::path(
    post,
    path = "/v1/districts/{district}/sftp-accounts",
    tag = "sftp",
    operation_id = "createSftpAccount",
    params(("district" = String, Path, description = DISTRICT, example = "springfield")),
    request_body(content = NewAccount, example = json!({"username": "springfield-sis", "password": "a long passphrase", "public_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl sis@springfield"]})),
    responses(
        (status = 201, description = "Created.", body = Account),
        (status = 400, description = "A bad user name, password or key, or neither a password nor keys.", body = pictureday_platform::openapi::ErrorBody),
        (status = 409, description = "The user name is taken (in any district).", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn create_account(
    State(api): State<SftpApi>,
    caller: Caller,
    Path(raw): Path<String>,
    Json(body): Json<NewAccount>,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    let district = api
        .ingest
        .auth
        .district_as(&caller, &raw, Role::Admin)
        .await?;
    let row = accounts::create(
        &api.ingest.db,
        &district,
        &body.username,
        Credentials {
            password: body.password,
            public_keys: body.public_keys,
        },
    )
    .await?;
    tracing::info!(%district, user = %row.username, "SFTP account created");
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// The district's SFTP accounts (admin).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/sftp-accounts",
    tag = "sftp",
    operation_id = "listSftpAccounts",
    params(("district" = String, Path, description = DISTRICT, example = "springfield")),
    responses((status = 200, description = "Every account, by user name.", body = Vec<Account>))
)]
async fn list_accounts(
    State(api): State<SftpApi>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Vec<Account>>, ApiError> {
    let district = api
        .ingest
        .auth
        .district_as(&caller, &raw, Role::Admin)
        .await?;
    let rows = accounts::list(&api.ingest.db, &district).await?;
    Ok(Json(rows.into_iter().map(Account::from).collect()))
}

/// One SFTP account (admin).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/sftp-accounts/{username}",
    tag = "sftp",
    operation_id = "getSftpAccount",
    params(
        ("district" = String, Path, description = DISTRICT, example = "springfield"),
        ("username" = String, Path, description = "The account's user name.", example = "springfield-sis")
    ),
    responses(
        (status = 200, description = "The account.", body = Account),
        (status = 404, description = "No such account in this district.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn get_account(
    State(api): State<SftpApi>,
    caller: Caller,
    Path((raw, username)): Path<(String, String)>,
) -> Result<Json<Account>, ApiError> {
    let district = api
        .ingest
        .auth
        .district_as(&caller, &raw, Role::Admin)
        .await?;
    Ok(Json(
        accounts::find(&api.ingest.db, &district, &username)
            .await?
            .into(),
    ))
}

/// Rotates an account's password or keys, or disables or enables it (admin).
#[utoipa::path(
    patch,
    path = "/v1/districts/{district}/sftp-accounts/{username}",
    tag = "sftp",
    operation_id = "updateSftpAccount",
    params(
        ("district" = String, Path, description = DISTRICT, example = "springfield"),
        ("username" = String, Path, description = "The account's user name.", example = "springfield-sis")
    ),
    request_body(content = AccountUpdate, example = json!({"password": "a new long passphrase"})),
    responses(
        (status = 200, description = "The account as it is now.", body = Account),
        (status = 400, description = "A bad password or key, or an account left with neither.", body = pictureday_platform::openapi::ErrorBody),
        (status = 404, description = "No such account in this district.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn update_account(
    State(api): State<SftpApi>,
    caller: Caller,
    Path((raw, username)): Path<(String, String)>,
    Json(body): Json<AccountUpdate>,
) -> Result<Json<Account>, ApiError> {
    let district = api
        .ingest
        .auth
        .district_as(&caller, &raw, Role::Admin)
        .await?;
    let row = accounts::update(
        &api.ingest.db,
        &district,
        &username,
        Credentials {
            password: body.password,
            public_keys: body.public_keys,
        },
        body.disabled,
    )
    .await?;
    tracing::info!(%district, user = %row.username, disabled = row.disabled, "SFTP account changed");
    Ok(Json(row.into()))
}

/// Deletes an account: it can no longer log in (admin).
#[utoipa::path(
    delete,
    path = "/v1/districts/{district}/sftp-accounts/{username}",
    tag = "sftp",
    operation_id = "deleteSftpAccount",
    params(
        ("district" = String, Path, description = DISTRICT, example = "springfield"),
        ("username" = String, Path, description = "The account's user name.", example = "springfield-sis")
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such account in this district.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn delete_account(
    State(api): State<SftpApi>,
    caller: Caller,
    Path((raw, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let district = api
        .ingest
        .auth
        .district_as(&caller, &raw, Role::Admin)
        .await?;
    accounts::delete(&api.ingest.db, &district, &username).await?;
    tracing::info!(%district, user = %username, "SFTP account deleted");
    Ok(StatusCode::NO_CONTENT)
}
