use sea_orm::entity::prelude::*;

/// One attempt of a delivery: what the endpoint answered, and how fast.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub delivery_id: String,
    /// 1 for the first attempt.
    #[sea_orm(primary_key, auto_increment = false)]
    pub attempt: i32,
    pub endpoint_id: String,
    pub attempted_at: DateTimeUtc,
    /// The HTTP status, when the endpoint answered.
    pub status: Option<i32>,
    /// Why there was no answer (a timeout, a refused connection, a refused address).
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub latency_ms: i64,
    /// The start of the answer's body, at most 1 KiB.
    #[sea_orm(column_type = "Text", nullable)]
    pub response_excerpt: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
