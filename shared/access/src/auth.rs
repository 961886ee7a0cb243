//! Who is calling: the operator (every district) or one district's token (that district only).
//! A district token asking about another district gets a 404, the same as for a district that does
//! not exist, so ids of other tenants cannot be probed.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use chrono::Utc;
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use pictureday_contract::DistrictId;
use pictureday_platform::http::ApiError;

use crate::entities::{api_token, district};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Operator,
    District(DistrictId),
}

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
        match row {
            Some(row) => Ok(Caller::District(
                DistrictId::parse(&row.district_id).map_err(ApiError::internal)?,
            )),
            None => Err(ApiError::Unauthorized),
        }
    }

    /// Checks that `caller` may act on district `raw` and that it exists; returns its parsed id.
    pub async fn district(&self, caller: &Caller, raw: &str) -> Result<DistrictId, ApiError> {
        let not_found = || ApiError::NotFound(format!("no district {raw:?}"));
        let id = DistrictId::parse(raw).map_err(|_| not_found())?;
        match caller {
            Caller::District(own) if *own != id => return Err(not_found()),
            _ => {}
        }
        district::Entity::find_by_id(id.as_str().to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        Ok(id)
    }

    /// Issues a new token for a district and stores only its hash.
    pub async fn issue_district_token(&self, district: &DistrictId) -> Result<String, ApiError> {
        let token = new_token();
        api_token::ActiveModel {
            token_hash: Set(hex::encode(sha256(&token))),
            district_id: Set(district.as_str().to_owned()),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await?;
        Ok(token)
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
            Caller::District(_) => Err(ApiError::Forbidden),
        }
    }
}
