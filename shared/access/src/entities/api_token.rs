use sea_orm::entity::prelude::*;

use crate::Role;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    /// SHA-256 of the token, hex: a leaked database does not leak usable tokens.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub district_id: String,
    pub created_at: DateTimeUtc,
    /// The token's public id (`tok_…`), to list and revoke it by; never the token itself.
    pub id: String,
    /// What the token is for (`hall-pass app`), as its maker named it.
    pub name: Option<String>,
    pub role: Role,
    /// After this, the token is refused.
    pub expires_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
