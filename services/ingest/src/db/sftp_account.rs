use sea_orm::entity::prelude::*;

/// A district's SFTP account.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sftp_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub username: String,
    pub district_id: String,
    /// Argon2 PHC string, `None` when the account logs in by key only.
    pub password_hash: Option<String>,
    /// JSON array of OpenSSH public keys (`ssh-ed25519 AAAA… comment`).
    #[sea_orm(column_type = "Text")]
    pub public_keys: String,
    pub disabled: bool,
    pub created_at: DateTimeUtc,
    /// When the password or keys were last set.
    pub rotated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
