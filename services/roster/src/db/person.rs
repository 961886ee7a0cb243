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
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
