//! Photo links for apps: `<img>` tags cannot send a bearer header, so
//! `GET …/people/{person}/photo-url` hands out a URL that carries its own authorisation — an
//! HMAC over district, person, photo, size and expiry — and `GET /v1/photo-links/…` serves the
//! JPEG to whoever holds it until it expires. A link names the photo that was current when it
//! was made: while it still is, the response may be cached until the link expires; once it was
//! replaced, the link serves the person's current photo (or the placeholder), never anyone
//! else's, since the person and district are signed too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, TimeZone, Utc};
use pictureday_access::signing::{hmac_sha256, verify};
use pictureday_access::{Auth, Caller, Role};
use pictureday_contract::DistrictId;
use pictureday_contract::events::RenditionRef;
use pictureday_contract::renditions;
use pictureday_platform::http::ApiError;
use pictureday_platform::storage::Storage;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use crate::db::{person, photo};
use crate::placeholder::Placeholders;
use crate::rendition_objects;

/// A link's lifetime when none is asked for.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// The longest lifetime a link may have.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The shortest.
const MIN_TTL: Duration = Duration::from_secs(1);
/// A link to the current photo may be cached this long at most (and never past its expiry).
const MAX_CACHE: Duration = Duration::from_secs(24 * 3600);
/// The signed `photo` part of a link made while the person had no photo.
const NO_PHOTO: &str = "none";

/// The keys links are signed with: the first signs, every one verifies, so a new key can be
/// put first while links signed with the old one run out.
#[derive(Clone)]
pub struct LinkKeys {
    signing: (String, Arc<[u8]>),
    verifying: HashMap<String, Arc<[u8]>>,
}

/// `PICTUREDAY_PHOTO_LINK_KEYS` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LinkKeysError {
    #[error(
        "PICTUREDAY_PHOTO_LINK_KEYS: {0:?} is not `id:secret` (an id of letters and digits, a \
         secret of at least 32 characters); separate keys with commas, the signing key first"
    )]
    Malformed(String),
    #[error("PICTUREDAY_PHOTO_LINK_KEYS: key id {0:?} appears twice")]
    Duplicate(String),
}

impl LinkKeys {
    /// From `kid:secret,kid:secret` (the first signs); without any, one key derived from the
    /// operator token, so every replica of an installation agrees without more settings.
    pub fn from_settings(spec: Option<&str>, operator_token: &str) -> Result<Self, LinkKeysError> {
        let spec = spec.map(str::trim).filter(|s| !s.is_empty());
        let Some(spec) = spec else {
            let derived = hmac_sha256(operator_token.as_bytes(), b"pictureday photo links v1");
            return Ok(Self::single("op", &derived));
        };
        let mut keys = Vec::new();
        for part in spec.split(',').map(str::trim) {
            let malformed = || LinkKeysError::Malformed(part.chars().take(12).collect());
            let (id, secret) = part.split_once(':').ok_or_else(malformed)?;
            let id_ok =
                !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric());
            if !id_ok || secret.len() < 32 {
                return Err(malformed());
            }
            if keys.iter().any(|(k, _): &(String, Arc<[u8]>)| k == id) {
                return Err(LinkKeysError::Duplicate(id.to_owned()));
            }
            keys.push((id.to_owned(), Arc::from(secret.as_bytes())));
        }
        let signing = keys
            .first()
            .cloned()
            .ok_or_else(|| LinkKeysError::Malformed(String::new()))?;
        Ok(Self {
            signing,
            verifying: keys.into_iter().collect(),
        })
    }

    fn single(id: &str, key: &[u8]) -> Self {
        let key: Arc<[u8]> = Arc::from(key);
        Self {
            signing: (id.to_owned(), key.clone()),
            verifying: HashMap::from([(id.to_owned(), key)]),
        }
    }
}

/// What a link signs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signed<'a> {
    district: &'a str,
    person: &'a str,
    photo: &'a str,
    size: &'a str,
    expires: i64,
}

impl Signed<'_> {
    fn message(&self) -> Vec<u8> {
        format!(
            "pictureday-photo-link-v1\n{}\n{}\n{}\n{}\n{}",
            self.district, self.person, self.photo, self.size, self.expires
        )
        .into_bytes()
    }

    fn path(&self, keys: &LinkKeys) -> String {
        let (kid, key) = &keys.signing;
        let signature = hex::encode(hmac_sha256(key, &self.message()));
        format!(
            "/v1/photo-links/{}/{}/{}/{}?expires={}&key={kid}&sig={signature}",
            self.district, self.person, self.photo, self.size, self.expires
        )
    }
}

#[derive(Clone)]
pub struct PhotoLinksState {
    pub db: DatabaseConnection,
    pub storage: Storage,
    pub auth: Arc<Auth>,
    pub placeholders: Arc<Placeholders>,
    pub keys: LinkKeys,
    /// The address clients reach the API at (`https://photos.example.org`), for absolute links;
    /// without it, the request's forwarded or own host is used.
    pub public_url: Option<String>,
}

impl FromRef<PhotoLinksState> for Arc<Auth> {
    fn from_ref(state: &PhotoLinksState) -> Self {
        state.auth.clone()
    }
}

pub fn router(state: PhotoLinksState) -> Router {
    Router::new()
        .route(
            "/v1/districts/{district}/people/{person}/photo-url",
            get(make_link),
        )
        .route(
            "/v1/photo-links/{district}/{person}/{photo}/{size}",
            get(serve_link),
        )
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkQuery {
    size: Option<String>,
    /// Seconds the link is valid.
    ttl: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PhotoLink)]
struct LinkBody {
    url: String,
    expires_at: DateTime<Utc>,
    /// The photo the link names (none: the person had no photo, and the link serves the
    /// placeholder until they have one).
    photo_id: Option<String>,
}

/// A signed, expiring link to the person's photo, for `<img>` tags (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/people/{person}/photo-url",
    tag = "photo-links",
    operation_id = "makePhotoLink",
    params(
        ("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("person" = String, Path, description = "The person's id."),
        ("size" = Option<crate::openapi::PhotoSize>, Query, description = "The rendition (default `large`)."),
        ("ttl" = Option<u64>, Query, description = "Seconds the link is valid, 1–604800 (default 3600).", minimum = 1, maximum = 604800)
    ),
    responses(
        (status = 200, description = "The link.", body = LinkBody,
            example = json!({"url": "https://photos.example.org/v1/photo-links/springfield/0196f1c2-7d3a-7c4e-8a1b-2c3d4e5f6a7b/0196f1c3-1a2b-7c4e-8a1b-2c3d4e5f6a7b/small?expires=1893456000&key=k2&sig=9f2c…", "expires_at": "2030-01-01T00:00:00Z", "photo_id": "0196f1c3-1a2b-7c4e-8a1b-2c3d4e5f6a7b"})),
        (status = 400, description = "A bad `size` or `ttl`, or an unknown parameter.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn make_link(
    State(state): State<PhotoLinksState>,
    caller: Caller,
    Path((raw, person_id)): Path<(String, String)>,
    Query(query): Query<LinkQuery>,
    headers: HeaderMap,
) -> Result<Json<LinkBody>, ApiError> {
    let district = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let size = query.size.unwrap_or_else(|| "large".into());
    if renditions::by_name(&size).is_none() {
        return Err(ApiError::BadRequest(format!(
            "size={size}: use small, medium or large"
        )));
    }
    let ttl = query.ttl.map_or(DEFAULT_TTL, Duration::from_secs);
    if ttl < MIN_TTL || ttl > MAX_TTL {
        return Err(ApiError::BadRequest(format!(
            "ttl={}: a link lives {} to {} seconds",
            ttl.as_secs(),
            MIN_TTL.as_secs(),
            MAX_TTL.as_secs()
        )));
    }
    let person = person::Entity::find_by_id(person_id.clone())
        .filter(person::Column::DistrictId.eq(district.as_str()))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no person {person_id:?} in {district}")))?;
    let expires = Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let expires_at = Utc
        .timestamp_opt(expires, 0)
        .single()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("expiry {expires} out of range")))?;
    let signed = Signed {
        district: district.as_str(),
        person: &person.id,
        photo: person.current_photo_id.as_deref().unwrap_or(NO_PHOTO),
        size: &size,
        expires,
    };
    let url = format!("{}{}", base_url(&state, &headers), signed.path(&state.keys));
    Ok(Json(LinkBody {
        url,
        expires_at,
        photo_id: person.current_photo_id.clone(),
    }))
}

/// Where clients reach the API: the configured public address, else the host the request came
/// to (as a proxy or the gateway forwards it).
fn base_url(state: &PhotoLinksState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()))
    };
    let host = header("x-forwarded-host").or_else(|| header("host"));
    let proto = match header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    host.map(|host| format!("{proto}://{host}"))
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct ServeQuery {
    expires: Option<i64>,
    key: Option<String>,
    sig: Option<String>,
}

/// The photo a signed link names, to whoever holds the link (no token).
#[utoipa::path(
    get,
    path = "/v1/photo-links/{district}/{person}/{photo}/{size}",
    tag = "photo-links",
    operation_id = "servePhotoLink",
    description = "No token: the link's HMAC-SHA256 signature over district, person, photo, size and expiry is its authorisation. While the linked photo is current the response is cacheable (`Cache-Control: private, max-age=…`, `ETag`, `304` to `If-None-Match`); once it was replaced, the person's current photo with `no-cache`; with no photo, the placeholder.",
    security(()),
    params(
        ("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"), ("person" = String, Path, description = "The person's id."),
        ("photo" = String, Path, description = "The photo the link was made for (`none`: the person had none)."),
        ("size" = crate::openapi::PhotoSize, Path, description = "The rendition."),
        ("expires" = i64, Query, description = "Expiry, in seconds since 1970."),
        ("key" = String, Query, description = "The id of the key that signed the link."),
        ("sig" = String, Query, description = "The signature, hex.")
    ),
    responses(
        (status = 200, description = "The JPEG (or the placeholder, with `X-Pictureday-Placeholder: true`).", body = pictureday_platform::openapi::Jpeg, content_type = "image/jpeg"),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`."),
        (status = 403, description = "An expired link, or one with any part changed.", body = pictureday_platform::openapi::ErrorBody,
            example = json!({"error": {"code": "forbidden", "message": "this photo link has expired; ask the app for a new one"}})),
        (status = 404, description = "The person is no longer on the roster.", body = pictureday_platform::openapi::ErrorBody)
    )
)]
async fn serve_link(
    State(state): State<PhotoLinksState>,
    Path((district, person_id, photo_id, size)): Path<(String, String, String, String)>,
    Query(query): Query<ServeQuery>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let refused = |why: &str| {
        ApiError::Forbidden(format!("this photo link {why}; ask the app for a new one"))
    };
    let (Some(expires), Some(kid), Some(sig)) = (query.expires, query.key, query.sig) else {
        return Err(refused("is incomplete (expires, key and sig are needed)"));
    };
    let signed = Signed {
        district: &district,
        person: &person_id,
        photo: &photo_id,
        size: &size,
        expires,
    };
    let valid = state
        .keys
        .verifying
        .get(&kid)
        .zip(hex::decode(&sig).ok())
        .is_some_and(|(key, sig)| verify(key, &signed.message(), &sig));
    if !valid {
        tracing::debug!(%district, "photo link with a wrong signature or unknown key");
        return Err(refused("is not valid (its signature does not match)"));
    }
    let now = Utc::now().timestamp();
    if expires <= now {
        return Err(refused("has expired"));
    }
    // Signed, so these name a real district and size; parsed again all the same.
    let district =
        DistrictId::parse(&district).map_err(|_| refused("is not valid (bad district)"))?;
    if renditions::by_name(&size).is_none() {
        return Err(refused("is not valid (bad size)"));
    }
    let person = person::Entity::find_by_id(person_id.clone())
        .filter(person::Column::DistrictId.eq(district.as_str()))
        .one(&state.db)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound("the person of this link is no longer on the roster".into())
        })?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    let withheld = crate::visibility::withheld(&state.db, &person).await?;
    let (None, Some(current)) = (withheld, person.current_photo_id) else {
        let bytes = state
            .placeholders
            .get(&size)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no placeholder for {size}")))?;
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
        withheld
            .unwrap_or(crate::visibility::PlaceholderReason::NoPhoto)
            .mark(&mut headers);
        return Ok((headers, bytes).into_response());
    };
    let etag = format!("\"{current}-{size}\"");
    // The photo the link was made for is still current: cacheable until the link runs out.
    // Replaced since: the current one, checked again on every use.
    let cache = if current == photo_id {
        let left = u64::try_from(expires - now)
            .unwrap_or(0)
            .min(MAX_CACHE.as_secs());
        format!("private, max-age={left}")
    } else {
        "private, no-cache".to_owned()
    };
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cache).map_err(ApiError::internal)?,
    );
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(ApiError::internal)?,
    );
    let unchanged = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let photo = photo::Entity::find_by_id(current.clone())
        .filter(photo::Column::DistrictId.eq(district.as_str()))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("photo {current} is missing")))?;
    let refs: Vec<RenditionRef> =
        serde_json::from_str(&photo.renditions).map_err(ApiError::internal)?;
    let rendition = refs
        .iter()
        .find(|r| r.name == size)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("photo {current} has no {size}")))?;
    let bytes = rendition_objects::read(&state.storage, rendition).await?;
    Ok((headers, bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_setting_or_the_operator_token() -> anyhow::Result<()> {
        let derived = LinkKeys::from_settings(None, "operator-token-0123456789abcdef")?;
        assert_eq!(derived.signing.0, "op");
        let again = LinkKeys::from_settings(Some(" "), "operator-token-0123456789abcdef")?;
        assert_eq!(derived.signing.1, again.signing.1);

        let secret_a = "a".repeat(32);
        let secret_b = "b".repeat(40);
        let keys = LinkKeys::from_settings(Some(&format!("k2:{secret_b}, k1:{secret_a}")), "x")?;
        assert_eq!(keys.signing.0, "k2");
        assert_eq!(keys.verifying.len(), 2);
        for bad in [
            "k1",
            "k1:short",
            ":".repeat(40).as_str(),
            &format!("k-1:{secret_a}"),
        ] {
            assert!(LinkKeys::from_settings(Some(bad), "x").is_err(), "{bad}");
        }
        assert!(matches!(
            LinkKeys::from_settings(Some(&format!("k1:{secret_a},k1:{secret_b}")), "x"),
            Err(LinkKeysError::Duplicate(_))
        ));
        Ok(())
    }

    #[test]
    fn a_link_signs_everything_it_names() {
        let keys = LinkKeys::single("k1", b"0123456789abcdef0123456789abcdef");
        let signed = Signed {
            district: "springfield",
            person: "p1",
            photo: "ph1",
            size: "small",
            expires: 1_900_000_000,
        };
        let path = signed.path(&keys);
        assert!(path.starts_with(
            "/v1/photo-links/springfield/p1/ph1/small?expires=1900000000&key=k1&sig="
        ));
        let message = signed.message();
        let others = [
            Signed {
                district: "shelbyville",
                ..signed.clone()
            },
            Signed {
                person: "p2",
                ..signed.clone()
            },
            Signed {
                photo: "ph2",
                ..signed.clone()
            },
            Signed {
                size: "large",
                ..signed.clone()
            },
            Signed {
                expires: 1_900_000_001,
                ..signed.clone()
            },
        ];
        for other in others {
            assert_ne!(other.message(), message, "{other:?}");
        }
    }
}
