//! Who is calling: the operator (every district) or one district's token (that district only,
//! within its role). A district token asking about another district gets a 404, the same as for
//! a district that does not exist, so ids of other tenants cannot be probed; one asking for more
//! than its role allows gets a 403 naming the role needed.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use chrono::Utc;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use pictureday_contract::DistrictId;
use pictureday_platform::db::begin_write;
use pictureday_platform::http::ApiError;

use crate::Role;
use crate::entities::{api_token, district};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Operator,
    District {
        district: DistrictId,
        role: Role,
        /// The token's public id (`tok_…`).
        token: String,
    },
}

impl Caller {
    /// Who did something, for records of it: `operator` or the token's id.
    pub fn who(&self) -> String {
        match self {
            Caller::Operator => "operator".to_owned(),
            Caller::District { token, .. } => token.clone(),
        }
    }
}

/// What a new token is made with; every part optional.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub role: Option<Role>,
    pub name: Option<String>,
    pub expires_at: Option<chrono::DateTime<Utc>>,
}

/// A token as listed: never the token itself.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: Option<String>,
    pub role: Role,
    pub created_at: chrono::DateTime<Utc>,
    pub expires_at: Option<chrono::DateTime<Utc>>,
}

impl From<api_token::Model> for TokenInfo {
    fn from(row: api_token::Model) -> Self {
        Self {
            id: row.id,
            name: row.name,
            role: row.role,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

/// The longest name a token may be given.
const MAX_TOKEN_NAME: usize = 200;

/// Token checks, shared by every service's router state.
#[derive(Clone)]
pub struct Auth {
    db: DatabaseConnection,
    operator_token_hash: [u8; 32],
}

fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Auth {
    /// Token checks on `db`, whose access tables are brought up to date first (every service
    /// with an API may be the first to start on a new database).
    pub async fn open(db: DatabaseConnection, operator_token: &str) -> anyhow::Result<Arc<Self>> {
        pictureday_platform::db::migrate::<crate::Migrator>(&db).await?;
        Ok(Arc::new(Self {
            db,
            operator_token_hash: sha256(operator_token),
        }))
    }

    /// The database the access tables are in (roster writes districts there).
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    async fn caller(&self, token: &str) -> Result<Caller, ApiError> {
        let hash = sha256(token);
        if bool::from(hash.ct_eq(&self.operator_token_hash)) {
            return Ok(Caller::Operator);
        }
        let row = api_token::Entity::find_by_id(hex::encode(hash))
            .one(&self.db)
            .await?;
        let Some(row) = row else {
            return Err(ApiError::Unauthorized);
        };
        if row.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(ApiError::Unauthorized);
        }
        Ok(Caller::District {
            district: DistrictId::parse(&row.district_id).map_err(ApiError::internal)?,
            role: row.role,
            token: row.id,
        })
    }

    /// Checks that `caller` may act on district `raw` with a role of at least `needed`, and
    /// that the district exists; returns its parsed id.
    pub async fn district_as(
        &self,
        caller: &Caller,
        raw: &str,
        needed: Role,
    ) -> Result<DistrictId, ApiError> {
        let not_found = || ApiError::NotFound(format!("no district {raw:?}"));
        let id = DistrictId::parse(raw).map_err(|_| not_found())?;
        if let Caller::District { district, role, .. } = caller {
            // Another district's ids are not found, whatever the role.
            if *district != id {
                return Err(not_found());
            }
            if !role.allows(needed) {
                return Err(ApiError::Forbidden(format!(
                    "this needs a token with role {}; this token's role is {role}",
                    needed.and_above()
                )));
            }
        }
        district::Entity::find_by_id(id.as_str().to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        Ok(id)
    }

    /// Issues a new token for a district and stores only its hash; returns the token (shown
    /// this once) and what is kept of it.
    pub async fn issue_district_token(
        &self,
        district: &DistrictId,
        new: NewToken,
    ) -> Result<(String, TokenInfo), ApiError> {
        let name = new
            .name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        if name
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_TOKEN_NAME)
        {
            return Err(ApiError::BadRequest(format!(
                "name: at most {MAX_TOKEN_NAME} characters"
            )));
        }
        let now = Utc::now();
        if new.expires_at.is_some_and(|at| at <= now) {
            return Err(ApiError::BadRequest(
                "expires_at: must be in the future".into(),
            ));
        }
        let token = new_token();
        let mut id_bytes = [0u8; 12];
        rand::rng().fill_bytes(&mut id_bytes);
        let row = api_token::ActiveModel {
            token_hash: Set(hex::encode(sha256(&token))),
            district_id: Set(district.as_str().to_owned()),
            created_at: Set(now),
            id: Set(format!("tok_{}", hex::encode(id_bytes))),
            name: Set(name),
            role: Set(new.role.unwrap_or(Role::Admin)),
            expires_at: Set(new.expires_at),
        };
        let txn = begin_write(&self.db).await?;
        let row = row.insert(&txn).await?;
        txn.commit().await?;
        Ok((token, row.into()))
    }

    /// The district's tokens, oldest first.
    pub async fn list_tokens(&self, district: &DistrictId) -> Result<Vec<TokenInfo>, ApiError> {
        Ok(api_token::Entity::find()
            .filter(api_token::Column::DistrictId.eq(district.as_str()))
            .order_by_asc(api_token::Column::CreatedAt)
            .order_by_asc(api_token::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(TokenInfo::from)
            .collect())
    }

    /// Revokes one of the district's tokens: it is refused from the next request on.
    pub async fn revoke_token(&self, district: &DistrictId, id: &str) -> Result<(), ApiError> {
        let txn = begin_write(&self.db).await?;
        let deleted = api_token::Entity::delete_many()
            .filter(api_token::Column::DistrictId.eq(district.as_str()))
            .filter(api_token::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::NotFound(format!(
                "no token {id:?} in district {district}"
            )));
        }
        Ok(())
    }
}

/// A new random token: 32 bytes from the OS generator, hex, with a recognisable prefix.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("pd_{}", hex::encode(bytes))
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<Auth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Auth>::from_ref(state);
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        auth.caller(token).await
    }
}

impl Caller {
    pub fn require_operator(&self) -> Result<(), ApiError> {
        match self {
            Caller::Operator => Ok(()),
            Caller::District { .. } => Err(ApiError::Forbidden(
                "this needs the operator token; a district token may not do it".into(),
            )),
        }
    }
}
