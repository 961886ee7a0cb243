use sea_orm::entity::prelude::*;

/// One error of a roster import's rows, in file order (`seq`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "roster_import_errors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub import_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub row: i64,
    pub field: String,
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    /// The file of a OneRoster zip the row is in (`users.csv`); `None` for a roster CSV.
    pub file: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
