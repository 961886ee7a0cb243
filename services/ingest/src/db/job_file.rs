use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_files")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i32,
    pub district_id: String,
    pub file_name: String,
    /// JSON of `events::Source`.
    #[sea_orm(column_type = "Text")]
    pub source: String,
    pub mapped_key: Option<String>,
    pub mapped_row: Option<i32>,
    /// JSON of `events::IndexEntry`: the index row naming this file.
    #[sea_orm(column_type = "Text", nullable)]
    pub index_entry: Option<String>,
    /// Why the upload itself rules out matching this file.
    #[sea_orm(column_type = "Text", nullable)]
    pub unmatchable: Option<String>,
    /// Why ingest rejected this file without reading it (an unsafe path, a damaged entry).
    #[sea_orm(column_type = "Text", nullable)]
    pub rejected: Option<String>,
    /// The person the file was uploaded for (`PUT …/people/{person}/photo`), if it was.
    pub chosen_person: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
