use sea_orm::entity::prelude::*;

/// One event to send to one endpoint, with where its sending stands. Its id is the
/// `webhook-id` the receiver sees, the same on every attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    /// A UUID v7 made in event order, so an endpoint's deliveries are sent in that order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub endpoint_id: String,
    pub district_id: String,
    pub event_type: String,
    /// What the event is, unique per endpoint (`job.status:<stream sequence>`), so an event
    /// handled twice is delivered once.
    pub event_key: String,
    /// The body sent, exactly (it is signed).
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub state: DeliveryState,
    pub attempts: i32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTimeUtc>,
    /// The last attempt's HTTP status, when it got one.
    pub last_status: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, serde::Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet; attempts go on.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The endpoint answered 2xx.
    #[sea_orm(string_value = "delivered")]
    Delivered,
    /// Every attempt of the retry schedule failed.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Not sent (any more): the endpoint was disabled.
    #[sea_orm(string_value = "abandoned")]
    Abandoned,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
