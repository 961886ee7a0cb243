use sea_orm::entity::prelude::*;

/// A district's webhook endpoint: where its events are sent, and whether they still are.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    /// A UUID v7, so newer endpoints sort after older ones.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub district_id: String,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    /// The event types sent to it, a JSON array of names (`["job.status"]`).
    #[sea_orm(column_type = "Text")]
    pub event_types: String,
    /// `whsec_…`: signs every delivery. Kept in the clear because signing needs it; shown only
    /// when the endpoint is created and never logged.
    pub secret: String,
    pub enabled: bool,
    /// Why it was disabled, while it is.
    #[sea_orm(column_type = "Text", nullable)]
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTimeUtc>,
    /// When the failures since its last success began (none while it succeeds).
    pub failing_since: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// Until when one reporting instance sends its deliveries (at most one in flight per
    /// endpoint, whatever the number of instances).
    pub lease_until: Option<DateTimeUtc>,
}

/// By hand, so the secret never reaches a log line.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("district_id", &self.district_id)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
