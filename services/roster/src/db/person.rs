use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "people")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub district_id: String,
    pub role: crate::roster_csv::Role,
    /// Stored lower-case; matching on email ignores case.
    pub email: Option<String>,
    pub sis_id: Option<String>,
    pub student_number: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub school: String,
    pub state_id: Option<String>,
    pub staff_id: Option<String>,
    /// The first name a person goes by, when it is not their legal one (matched too).
    pub preferred_first_name: Option<String>,
    /// As the source writes it (`05`, `K`); compared through `matching::grade`.
    pub grade: Option<String>,
    pub homeroom: Option<String>,
    pub teacher: Option<String>,
    pub current_photo_id: Option<String>,
    /// The upload rank of the current photo; a photo only becomes current if it ranks higher.
    pub current_photo_rank: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub status: PersonStatus,
    /// When the person left (their source withdrew or deleted them); `None` while active.
    pub inactive_since: Option<DateTimeUtc>,
    /// What keeps this person current: the roster CSV, Clever or OneRoster.
    pub source: RosterSource,
    /// The person's id in their source (Clever id, OneRoster `sourcedId`): the key a source
    /// updates them by, so a changed SIS id is the same person.
    pub source_id: Option<String>,
    /// The last full sync or bulk file that listed the person (who is missing is deactivated).
    pub source_seen_at: Option<DateTimeUtc>,
}

/// Whether a person is still enrolled or employed. Inactive people keep their photos (until the
/// district's retention for them ends) but are not matched, listed as missing or shown.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    EnumIter,
    DeriveActiveEnum,
    utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum PersonStatus {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "inactive")]
    Inactive,
}

/// Where a district's people (and schools) come from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    EnumIter,
    DeriveActiveEnum,
    utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum RosterSource {
    #[sea_orm(string_value = "csv")]
    Csv,
    #[sea_orm(string_value = "clever")]
    Clever,
    #[sea_orm(string_value = "oneroster")]
    OneRoster,
}

impl PersonStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonStatus::Active => "active",
            PersonStatus::Inactive => "inactive",
        }
    }
}

impl RosterSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RosterSource::Csv => "csv",
            RosterSource::Clever => "clever",
            RosterSource::OneRoster => "oneroster",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
