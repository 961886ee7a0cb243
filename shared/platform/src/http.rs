//! HTTP plumbing shared by every service: the error type every handler returns and the health
//! endpoints.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error as an API client sees it: a status, a stable code and a message that says what was
/// wrong. Internal errors are logged in full and answered with an opaque 500.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The token is valid but may not do this (the message names what it would need).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// What was asked for existed and is no more (an expired preview).
    #[error("{0}")]
    Gone(String),
    #[error("{message}")]
    Unprocessable {
        message: String,
        details: Vec<serde_json::Value>,
    },
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A dependency is down or out of room: the request may succeed later (503, Retry-After).
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    #[track_caller]
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(error.into())
    }

    /// A local file operation that failed: a full disk is a `503` the client can retry later;
    /// anything else is internal.
    #[track_caller]
    pub fn io(error: std::io::Error) -> Self {
        if matches!(
            error.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ) {
            tracing::warn!(%error, "out of disk space");
            ApiError::Unavailable(
                "the server is out of disk space; nothing of this request was kept, try again later"
                    .into(),
            )
        } else {
            ApiError::Internal(error.into())
        }
    }

    /// An error from code that returns `anyhow`: an outage it carries (database, storage, a full
    /// disk) is still a `503`.
    #[track_caller]
    pub fn from_anyhow(error: anyhow::Error) -> Self {
        let error = match error.downcast::<sea_orm::DbErr>() {
            Ok(db) => return db.into(),
            Err(error) => error,
        };
        let error = match error.downcast::<crate::storage::StorageError>() {
            Ok(storage) => return storage.into(),
            Err(error) => error,
        };
        match error.downcast::<std::io::Error>() {
            Ok(io) => ApiError::io(io),
            Err(error) => ApiError::Internal(error),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone"),
            ApiError::Unprocessable { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    #[track_caller]
    fn from(error: sea_orm::DbErr) -> Self {
        if crate::db::is_outage(&error) {
            tracing::warn!(%error, "database unavailable");
            ApiError::Unavailable(
                "the database is unavailable (down, busy or out of disk); try again shortly".into(),
            )
        } else {
            ApiError::Internal(error.into())
        }
    }
}

impl From<crate::storage::StorageError> for ApiError {
    #[track_caller]
    fn from(error: crate::storage::StorageError) -> Self {
        if error.is_outage() {
            tracing::warn!(%error, "storage unavailable");
            ApiError::Unavailable(
                "storage is unavailable (down or out of space); try again shortly".into(),
            )
        } else {
            ApiError::Internal(error.into())
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    details: &'a [serde_json::Value],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let details = match &self {
            ApiError::Unprocessable { details, .. } => details.as_slice(),
            _ => &[],
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code,
                    message,
                    details,
                },
            }),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Keyset pagination parameters shared by list endpoints.
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Items per page, 1 to 1000 (default 100).
    #[serde(default, deserialize_with = "number_in_text")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The last id of the previous page: its `next_after`.
    pub after: Option<String>,
}

/// A number from a query string. A query string carries every value as text, and once the
/// page is embedded in an endpoint's own filter (`#[serde(flatten)]`) serde hands that text over
/// as it is rather than as the number the field wants, so text is parsed here.
fn number_in_text<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match <Option<Raw> as serde::Deserialize>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Raw::Number(n)) => Ok(Some(n)),
        Some(Raw::Text(text)) => text.parse().map(Some).map_err(|_| {
            <D::Error as serde::de::Error>::custom(format!("limit={text}: not a number"))
        }),
    }
}

impl Page {
    pub const DEFAULT_LIMIT: u64 = 100;
    pub const MAX_LIMIT: u64 = 1000;

    pub fn limit(&self) -> Result<u64, ApiError> {
        match self.limit {
            None => Ok(Self::DEFAULT_LIMIT),
            Some(n) if (1..=Self::MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::BadRequest(format!(
                "limit={n}: use 1 to {}",
                Self::MAX_LIMIT
            ))),
        }
    }

    /// The id to continue after. Every paginated list is keyed by UUIDs (people, jobs) and
    /// compares them as text, so anything but a canonical UUID — which no `next_after` ever
    /// was — is refused rather than silently answered with a first or an empty page.
    pub fn after(&self) -> Result<Option<&str>, ApiError> {
        let Some(raw) = self.after.as_deref() else {
            return Ok(None);
        };
        match uuid::Uuid::try_parse(raw) {
            Ok(id) if id.hyphenated().to_string() == raw => Ok(Some(raw)),
            _ => {
                let shown: String = raw.chars().take(64).collect();
                Err(ApiError::BadRequest(format!(
                    "after={shown:?}: not a cursor of this list; pass the previous page's next_after"
                )))
            }
        }
    }
}

/// One page of a list, with the cursor for the next (`null` on the last page).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<String>,
}

#[cfg(test)]
mod page_tests {
    use super::Page;
    use axum::extract::Query;

    #[derive(Debug, serde::Deserialize)]
    struct Filter {
        #[allow(dead_code)]
        sis_id: Option<String>,
        #[serde(flatten)]
        page: Page,
    }

    fn query<T: serde::de::DeserializeOwned>(uri: &str) -> anyhow::Result<T> {
        let uri: axum::http::Uri = uri.parse()?;
        Ok(Query::<T>::try_from_uri(&uri)?.0)
    }

    #[test]
    fn a_limit_is_read_alone_and_inside_a_filter() -> anyhow::Result<()> {
        assert_eq!(query::<Page>("/people?limit=7")?.limit, Some(7));
        let filter = query::<Filter>("/people?limit=1000&after=p1&sis_id=S1")?;
        assert_eq!(filter.page.limit, Some(1000));
        assert_eq!(filter.page.after.as_deref(), Some("p1"));
        assert_eq!(query::<Filter>("/people")?.page.limit, None);
        assert!(query::<Filter>("/people?limit=many").is_err());
        Ok(())
    }

    #[test]
    fn only_an_id_from_a_page_is_a_cursor() -> anyhow::Result<()> {
        let id = "0196f1c2-7d3a-7c4e-8a1b-2c3d4e5f6a7b";
        assert_eq!(query::<Page>(&format!("/p?after={id}"))?.after()?, Some(id));
        assert_eq!(query::<Page>("/p")?.after()?, None);
        for bad in [
            "p1",
            "",
            "0196F1C2-7D3A-7C4E-8A1B-2C3D4E5F6A7B",
            "zzz%27%20or%201=1",
        ] {
            let page = query::<Page>(&format!("/p?after={bad}"))?;
            let refused = page.after().map_err(|e| e.to_string());
            assert!(
                matches!(&refused, Err(m) if m.starts_with("after=")),
                "{bad}: {refused:?}"
            );
        }
        Ok(())
    }
}
