use sea_orm::entity::prelude::*;

/// A roster upload, imported in the background: its spooled CSV, where it has got to and what it
/// did. A district's imports run one at a time, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "roster_imports")]
pub struct Model {
    /// A UUID v7: imports sort by arrival.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub district_id: String,
    /// `queued`, `running`, `completed` or `failed`.
    pub state: String,
    /// Where the uploaded CSV is stored until the import ends.
    pub spool_key: String,
    pub bytes: i64,
    /// The row number (the header is row 1) up to which the roster has been applied; a resumed
    /// import skips to the row after it.
    pub last_row: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected_rows: i64,
    /// Rows of the error log written so far.
    pub errors: i64,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// The worker running it, and until when its claim holds without a sign of progress.
    pub owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// Also the time stamp of every person the import creates or updates.
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// `csv` or `oneroster` (`None` before the worker first read the file).
    pub format: Option<String>,
    /// A OneRoster import's identifier mapping, as JSON (`sources::oneroster::IdentifierMap`).
    #[sea_orm(column_type = "Text", nullable)]
    pub options: Option<String>,
    /// People a OneRoster import deactivated (`tobedeleted`, disabled, or missing from a bulk
    /// file) and reactivated.
    pub deactivated: i64,
    pub reactivated: i64,
    /// Rows skipped on purpose: OneRoster guardians, parents and relatives.
    pub ignored: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A new import, queued: nothing read or applied yet. `format` may be left to the worker, which
/// reads it from the file (`None`).
pub fn queued(
    id: &str,
    district: &str,
    spool_key: String,
    bytes: u64,
    format: Option<String>,
    options: Option<String>,
    now: DateTimeUtc,
) -> ActiveModel {
    use sea_orm::ActiveValue::Set;
    ActiveModel {
        id: Set(id.to_owned()),
        district_id: Set(district.to_owned()),
        // `ImportState::Queued`, as stored.
        state: Set("queued".to_owned()),
        spool_key: Set(spool_key),
        bytes: Set(i64::try_from(bytes).unwrap_or(i64::MAX)),
        last_row: Set(1),
        created: Set(0),
        updated: Set(0),
        unchanged: Set(0),
        rejected_rows: Set(0),
        errors: Set(0),
        error: Set(None),
        owner: Set(None),
        lease_until: Set(None),
        created_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
        format: Set(format),
        options: Set(options),
        deactivated: Set(0),
        reactivated: Set(0),
        ignored: Set(0),
    }
}
