//! Whether a person's photo may be shown: not while they are inactive, nor while photos are off
//! for their district or for any of their schools (SmartPass's Disable). Nothing is deleted;
//! every photo request gets the placeholder instead, with a header saying why.

use axum::http::{HeaderMap, HeaderValue};
use pictureday_access::entities::district;
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter};

use crate::db::person::{self, PersonStatus};
use crate::db::{person_school, school};

/// Why the placeholder is served (`X-Pictureday-Placeholder-Reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceholderReason {
    /// The person has no current photo.
    NoPhoto,
    /// The person left (their source withdrew them); their photos are kept for a while.
    PersonInactive,
    /// Photos are turned off for the whole district.
    DistrictPhotosOff,
    /// Photos are turned off for one of the person's schools.
    SchoolPhotosOff,
}

impl PlaceholderReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PlaceholderReason::NoPhoto => "no-photo",
            PlaceholderReason::PersonInactive => "person-inactive",
            PlaceholderReason::DistrictPhotosOff => "district-photos-off",
            PlaceholderReason::SchoolPhotosOff => "school-photos-off",
        }
    }

    /// Marks a response as the placeholder and says why.
    pub fn mark(self, headers: &mut HeaderMap) {
        headers.insert("x-pictureday-placeholder", HeaderValue::from_static("true"));
        headers.insert(
            "x-pictureday-placeholder-reason",
            HeaderValue::from_static(self.as_str()),
        );
    }
}

/// Why `person`'s photos may not be shown now, if they may not.
pub async fn withheld(
    db: &impl ConnectionTrait,
    person: &person::Model,
) -> Result<Option<PlaceholderReason>, DbErr> {
    if person.status == PersonStatus::Inactive {
        return Ok(Some(PlaceholderReason::PersonInactive));
    }
    let district_on = district::Entity::find_by_id(person.district_id.clone())
        .one(db)
        .await?
        .is_none_or(|d| d.photos_enabled);
    if !district_on {
        return Ok(Some(PlaceholderReason::DistrictPhotosOff));
    }
    // One query for the person's schools that have photos off.
    let off = school::Entity::find()
        .filter(school::Column::PhotosEnabled.eq(false))
        .filter(
            school::Column::Id.in_subquery(
                Query::select()
                    .column(person_school::Column::SchoolId)
                    .from(person_school::Entity)
                    .and_where(person_school::Column::PersonId.eq(person.id.as_str()))
                    .to_owned(),
            ),
        )
        .count(db)
        .await?;
    Ok((off > 0).then_some(PlaceholderReason::SchoolPhotosOff))
}
