use sea_orm::entity::prelude::*;

/// A district's Clever connection: its sealed token, where the API is, how often to sync and
/// where in Clever's event feed the last sync stopped.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clever_sources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub district_id: String,
    pub token_sealed: String,
    pub base_url: String,
    pub interval_secs: i64,
    pub enabled: bool,
    pub event_cursor: Option<String>,
    pub last_full_sync_at: Option<DateTimeUtc>,
    pub next_run_at: DateTimeUtc,
    pub lease_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
