//! Schools as a source names them, created or renamed in place; and people's memberships.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use pictureday_contract::DistrictId;
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::db::person::RosterSource;
use crate::db::{person_school, school};

/// A school as a source describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSchool {
    /// The source's id for it (Clever school id, OneRoster org `sourcedId`).
    pub source_id: String,
    pub name: String,
}

/// What applying a source's schools did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchoolCounts {
    pub created: u64,
    pub updated: u64,
}

/// Creates or renames the schools a source lists; returns every school of that source in the
/// district by its source id (those listed and those known before).
pub async fn apply(
    db: &impl ConnectionTrait,
    district: &DistrictId,
    source: RosterSource,
    schools: &[SourceSchool],
    stamp: DateTime<Utc>,
) -> Result<(HashMap<String, school::Model>, SchoolCounts), DbErr> {
    let mut known = of_source(db, district, source).await?;
    let mut counts = SchoolCounts::default();
    for listed in schools {
        match known.get(&listed.source_id) {
            Some(existing) if existing.name == listed.name => {}
            Some(existing) => {
                let mut model: school::ActiveModel = existing.clone().into();
                model.name = Set(listed.name.clone());
                model.updated_at = Set(stamp);
                let updated = school::Entity::update(model).exec(db).await?;
                known.insert(listed.source_id.clone(), updated);
                counts.updated += 1;
            }
            None => {
                let created = new_school(
                    district,
                    source,
                    Some(&listed.source_id),
                    &listed.name,
                    stamp,
                );
                school::Entity::insert(insertable(created.clone()))
                    .exec_without_returning(db)
                    .await?;
                known.insert(listed.source_id.clone(), created);
                counts.created += 1;
            }
        }
    }
    Ok((known, counts))
}

/// Every school of `source` in the district, by its source id.
pub async fn of_source(
    db: &impl ConnectionTrait,
    district: &DistrictId,
    source: RosterSource,
) -> Result<HashMap<String, school::Model>, DbErr> {
    Ok(school::Entity::find()
        .filter(school::Column::DistrictId.eq(district.as_str()))
        .filter(school::Column::Source.eq(source))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|s| s.source_id.clone().map(|id| (id, s)))
        .collect())
}

/// The schools a roster CSV names (by name), created when new; returns their ids by name.
pub async fn named(
    db: &impl ConnectionTrait,
    district: &DistrictId,
    names: &HashSet<&str>,
    stamp: DateTime<Utc>,
) -> Result<HashMap<String, String>, DbErr> {
    let mut ids: HashMap<String, String> = HashMap::new();
    if names.is_empty() {
        return Ok(ids);
    }
    let existing = school::Entity::find()
        .filter(school::Column::DistrictId.eq(district.as_str()))
        .filter(school::Column::Name.is_in(names.iter().copied()))
        .all(db)
        .await?;
    // A name a CSV school and a source's school share is the source's school: the same school.
    let mut sorted = existing;
    sorted.sort_by_key(|s| (s.source == RosterSource::Csv, s.created_at, s.id.clone()));
    for s in sorted {
        ids.entry(s.name.clone()).or_insert(s.id);
    }
    let mut inserts = Vec::new();
    let mut new_names: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !ids.contains_key(*n))
        .collect();
    new_names.sort_unstable();
    for name in new_names {
        let model = new_school(district, RosterSource::Csv, None, name, stamp);
        ids.insert(name.to_owned(), model.id.clone());
        inserts.push(insertable(model));
    }
    if !inserts.is_empty() {
        school::Entity::insert_many(inserts)
            .exec_without_returning(db)
            .await?;
    }
    Ok(ids)
}

/// Makes `person`'s schools exactly `schools` (a person may belong to several).
pub async fn set_memberships(
    db: &impl ConnectionTrait,
    district: &DistrictId,
    memberships: &[(String, Vec<String>)],
) -> Result<(), DbErr> {
    if memberships.is_empty() {
        return Ok(());
    }
    let people: Vec<&str> = memberships.iter().map(|(p, _)| p.as_str()).collect();
    for chunk in people.chunks(500) {
        person_school::Entity::delete_many()
            .filter(person_school::Column::PersonId.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    let rows: Vec<person_school::ActiveModel> = memberships
        .iter()
        .flat_map(|(person, schools)| {
            let unique: HashSet<&String> = schools.iter().collect();
            unique
                .into_iter()
                .map(move |school| person_school::ActiveModel {
                    person_id: Set(person.clone()),
                    school_id: Set(school.clone()),
                    district_id: Set(district.as_str().to_owned()),
                })
        })
        .collect();
    let mut rows = rows;
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(500));
        person_school::Entity::insert_many(std::mem::replace(&mut rows, rest))
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

fn new_school(
    district: &DistrictId,
    source: RosterSource,
    source_id: Option<&str>,
    name: &str,
    stamp: DateTime<Utc>,
) -> school::Model {
    school::Model {
        id: Uuid::new_v4().to_string(),
        district_id: district.as_str().to_owned(),
        name: name.to_owned(),
        source,
        source_id: source_id.map(str::to_owned),
        photos_enabled: true,
        photos_changed_at: None,
        photos_changed_by: None,
        created_at: stamp,
        updated_at: stamp,
    }
}

fn insertable(model: school::Model) -> school::ActiveModel {
    school::ActiveModel::from(model).reset_all()
}
