use sea_orm::entity::prelude::*;

/// A counter per district, raised by every roster change: cached match indexes compare it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "roster_generations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub district_id: String,
    pub generation: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
