use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "file_outcomes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i32,
    pub district_id: String,
    pub file_name: String,
    pub outcome: Outcome,
    pub person_id: Option<String>,
    pub matched_by: Option<String>,
    pub photo_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    pub matched: bool,
    pub unmatched: bool,
    pub processed: bool,
    pub rejected: bool,
    pub applied: bool,
    pub updated_at: DateTimeUtc,
    /// How often the file's events were published again after it stalled.
    pub replays: i32,
}

/// What happened to a file, as its log row says; stored as its name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    EnumIter,
    DeriveActiveEnum,
    serde::Serialize,
    utoipa::ToSchema,
)]
#[schema(as = FileOutcome, description = "What happened to a file, as its log row says.")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No outcome yet.
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "applied")]
    Applied,
    #[sea_orm(string_value = "replaced")]
    Replaced,
    #[sea_orm(string_value = "superseded")]
    Superseded,
    /// The import's replace policy left the person's photo as it is (`reason` says why).
    #[sea_orm(string_value = "skipped")]
    Skipped,
    /// A preview's file, waiting to be applied (`reason` says what applying would do).
    #[sea_orm(string_value = "previewed")]
    Previewed,
    #[sea_orm(string_value = "unmatched")]
    Unmatched,
    #[sea_orm(string_value = "rejected")]
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Applied => "applied",
            Outcome::Replaced => "replaced",
            Outcome::Superseded => "superseded",
            Outcome::Skipped => "skipped",
            Outcome::Previewed => "previewed",
            Outcome::Unmatched => "unmatched",
            Outcome::Rejected => "rejected",
        }
    }
}

impl From<pictureday_contract::events::ApplyOutcome> for Outcome {
    fn from(outcome: pictureday_contract::events::ApplyOutcome) -> Self {
        use pictureday_contract::events::ApplyOutcome;
        match outcome {
            ApplyOutcome::Applied => Outcome::Applied,
            ApplyOutcome::Replaced => Outcome::Replaced,
            ApplyOutcome::Superseded => Outcome::Superseded,
            ApplyOutcome::Skipped => Outcome::Skipped,
            ApplyOutcome::Previewed => Outcome::Previewed,
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
