//! A district's tokens: `POST /v1/districts/{d}/tokens` makes one (with a role, a name and an
//! expiry, all optional: an admin token that never expires when absent), `GET` lists them
//! without the tokens themselves, `DELETE …/tokens/{token}` revokes one. The operator and the
//! district's admins may do all three.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use pictureday_access::{Auth, Caller, NewToken, Role, TokenInfo};
use pictureday_platform::http::ApiError;
use serde::Serialize;

pub fn router(auth: Arc<Auth>) -> Router {
    Router::new()
        .route(
            "/v1/districts/{district}/tokens",
            post(create_token).get(list_tokens),
        )
        .route(
            "/v1/districts/{district}/tokens/{token}",
            delete(revoke_token),
        )
        .route("/v1/whoami", get(whoami))
        .with_state(auth)
}

#[derive(Serialize, utoipa::ToSchema)]
struct CreatedToken {
    /// The token: shown this once, kept only as a hash.
    token: String,
    district: String,
    #[serde(flatten)]
    info: TokenInfo,
}

/// Makes a district token (operator or admin).
#[utoipa::path(
    post,
    path = "/v1/districts/{district}/tokens",
    tag = "tokens",
    operation_id = "createToken",
    description = "Every field is optional; no body at all makes an `admin` token that never expires. The token is shown this once: only its SHA-256 hash is kept.",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield")),
    request_body(content = Option<pictureday_access::NewToken>, example = json!({"role": "viewer", "name": "hall-pass app", "expires_at": "2027-06-30T00:00:00Z"})),
    responses(
        (status = 201, description = "The token, shown this once.", body = CreatedToken,
            example = json!({"token": "pd_5mQ2…", "district": "springfield", "id": "tok_0196f1c5", "name": "hall-pass app", "role": "viewer", "created_at": "2026-11-30T10:00:00Z", "expires_at": "2027-06-30T00:00:00Z"})),
        (status = 422, description = "A body that is not such JSON.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn create_token(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let district = auth.district_as(&caller, &raw, Role::Admin).await?;
    // No body at all is a plain admin token, as before roles existed.
    let new: NewToken = if body.iter().all(u8::is_ascii_whitespace) {
        NewToken::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::Unprocessable {
            message: format!(
                "token: {e}; send {{\"role\": \"admin|importer|viewer\", \"name\": \"…\", \
                 \"expires_at\": \"2027-06-30T00:00:00Z\"}}, every field optional"
            ),
            details: vec![],
        })?
    };
    let (token, info) = auth.issue_district_token(&district, new).await?;
    tracing::info!(%district, token = %info.id, role = %info.role, by = %caller.who(), "token issued");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            district: district.to_string(),
            info,
        }),
    ))
}

/// The district's tokens, oldest first, never the tokens themselves (operator or admin).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/tokens",
    tag = "tokens",
    operation_id = "listTokens",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield")),
    responses((status = 200, description = "The tokens.", body = Vec<pictureday_access::TokenInfo>, example = json!([{"id": "tok_0196f1c5", "name": "hall-pass app", "role": "viewer", "created_at": "2026-11-30T10:00:00Z", "expires_at": "2027-06-30T00:00:00Z"}])))
)]
async fn list_tokens(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let district = auth.district_as(&caller, &raw, Role::Admin).await?;
    Ok(Json(auth.list_tokens(&district).await?))
}

/// Revokes a token: it is refused from the next request on (operator or admin).
#[utoipa::path(
    delete,
    path = "/v1/districts/{district}/tokens/{token}",
    tag = "tokens",
    operation_id = "revokeToken",
    params(("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("token" = String, Path, description = "The token's `id` (`tok_…`), not the token.")),
    responses((status = 204, description = "Revoked."))
)]
async fn revoke_token(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
    Path((raw, token)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let district = auth.district_as(&caller, &raw, Role::Admin).await?;
    auth.revoke_token(&district, &token).await?;
    tracing::info!(%district, %token, by = %caller.who(), "token revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Who a token is, for tools that are given only a token (a command line, a console sign-in).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Whoami {
    /// The operator token: every district.
    Operator,
    /// A district's token, with its role.
    District {
        district: String,
        role: Role,
        /// The token's public id (`tok_…`).
        token: String,
    },
}

/// Who the token is: the operator, or which district's token with which role (any valid token).
#[utoipa::path(
    get,
    path = "/v1/whoami",
    tag = "tokens",
    operation_id = "whoami",
    responses(
        (status = 200, description = "The caller.", body = Whoami,
            example = json!({"kind": "district", "district": "springfield", "role": "importer", "token": "tok_0196f1c5"}))
    )
)]
async fn whoami(caller: Caller) -> Json<Whoami> {
    Json(match caller {
        Caller::Operator => Whoami::Operator,
        Caller::District {
            district,
            role,
            token,
        } => Whoami::District {
            district: district.to_string(),
            role,
            token,
        },
    })
}
