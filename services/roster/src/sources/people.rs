//! Applies a source's people to a district: each is found by the source's own id (so a changed
//! SIS id updates the same person and keeps their photo), or adopted from the roster CSV by SIS id
//! or email the first time a source lists them; created otherwise. People a source says left are
//! deactivated, never deleted; people who come back are reactivated with their photo.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use pictureday_contract::{DistrictId, PersonId};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use serde::Serialize;

use crate::db::person::{self, PersonStatus, RosterSource};
use crate::db::{person_school, school};
use crate::person_fields::{Origin, PersonFields};
use crate::roster_csv::Role;

/// A person as a source describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePerson {
    /// The source's id for the person (Clever id, OneRoster `sourcedId`).
    pub source_id: String,
    pub role: Role,
    pub email: Option<String>,
    pub sis_id: Option<String>,
    pub student_number: Option<String>,
    pub state_id: Option<String>,
    pub staff_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub preferred_first_name: Option<String>,
    pub grade: Option<String>,
    pub homeroom: Option<String>,
    pub teacher: Option<String>,
    /// The source ids of the person's schools, the primary one first.
    pub schools: Vec<String>,
    /// `false` when the source lists the person as gone (OneRoster `tobedeleted`).
    pub active: bool,
}

impl SourcePerson {
    /// What the source says about the person, `school` being their first school's name.
    fn fields(&self, school: String) -> PersonFields {
        PersonFields {
            role: self.role,
            email: self.email.as_deref().map(str::to_lowercase),
            sis_id: self.sis_id.clone(),
            student_number: self.student_number.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            school,
            state_id: self.state_id.clone(),
            staff_id: self.staff_id.clone(),
            preferred_first_name: self.preferred_first_name.clone(),
            grade: self.grade.clone(),
            homeroom: self.homeroom.clone(),
            teacher: self.teacher.clone(),
        }
    }
}

/// What applying a source did to the district's people.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SyncCounts {
    pub created: u64,
    pub updated: u64,
    pub deactivated: u64,
    pub reactivated: u64,
    pub unchanged: u64,
}

impl SyncCounts {
    pub fn add(&mut self, other: SyncCounts) {
        self.created += other.created;
        self.updated += other.updated;
        self.deactivated += other.deactivated;
        self.reactivated += other.reactivated;
        self.unchanged += other.unchanged;
    }
}

/// How much of the roster a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// A full sync or a bulk file: everyone listed is marked seen at the stamp, and
    /// `deactivate_unseen` afterwards deactivates the source's people it did not list.
    Complete,
    /// Changes only (events, a delta file): people not listed are left alone.
    Changes,
}

const CHUNK: usize = 500;

/// Applies `people` (a chunk: the caller's transaction should stay short) from `source`.
/// `schools` maps the source's school ids to the district's schools (`schools::apply`).
pub async fn apply(
    db: &impl ConnectionTrait,
    district: &DistrictId,
    source: RosterSource,
    people: Vec<SourcePerson>,
    schools: &HashMap<String, school::Model>,
    listing: Listing,
    stamp: DateTime<Utc>,
) -> Result<SyncCounts, DbErr> {
    let mut counts = SyncCounts::default();
    if people.is_empty() {
        return Ok(counts);
    }
    // A source listing one id twice means its last entry.
    let mut positions: HashMap<String, usize> = HashMap::new();
    for (i, p) in people.iter().enumerate() {
        positions.insert(p.source_id.clone(), i);
    }
    let people: Vec<SourcePerson> = people
        .into_iter()
        .enumerate()
        .filter(|(i, p)| positions.get(&p.source_id) == Some(i))
        .map(|(_, p)| p)
        .collect();
    let existing = existing(db, district, source, &people).await?;
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    let mut seen_unchanged = Vec::new();
    let mut memberships = Vec::new();
    let mut claimed: HashSet<String> = HashSet::new();
    for listed in people {
        let school_ids: Vec<String> = listed
            .schools
            .iter()
            .filter_map(|s| schools.get(s).map(|s| s.id.clone()))
            .collect();
        let school_name = listed
            .schools
            .iter()
            .find_map(|s| schools.get(s).map(|s| s.name.clone()))
            .unwrap_or_default();
        let status = if listed.active {
            PersonStatus::Active
        } else {
            PersonStatus::Inactive
        };
        let seen = match listing {
            Listing::Complete => Some(stamp),
            Listing::Changes => None,
        };
        let found = existing.find(&listed).filter(|p| !claimed.contains(&p.id));
        match found {
            Some(current) => {
                claimed.insert(current.id.clone());
                let fields = listed.fields(school_name);
                let fields_changed = fields.differs_from(current)
                    || current.source != source
                    || current.source_id.as_deref() != Some(listed.source_id.as_str());
                let mut listed_schools = school_ids.clone();
                listed_schools.sort_unstable();
                listed_schools.dedup();
                let schools_changed = existing
                    .schools
                    .get(&current.id)
                    .map_or(!listed_schools.is_empty(), |had| *had != listed_schools);
                let fields_changed = fields_changed || schools_changed;
                let status_changed = current.status != status;
                if !fields_changed && !status_changed {
                    counts.unchanged += 1;
                    if seen.is_some() {
                        seen_unchanged.push(current.id.clone());
                    }
                    continue;
                }
                match (status_changed, status) {
                    (true, PersonStatus::Inactive) => counts.deactivated += 1,
                    (true, PersonStatus::Active) => counts.reactivated += 1,
                    (false, _) => counts.updated += 1,
                }
                let mut model: person::ActiveModel = current.clone().into();
                fields.write(&mut model);
                model.source = Set(source);
                model.source_id = Set(Some(listed.source_id));
                if status_changed {
                    model.status = Set(status);
                    model.inactive_since = Set(match status {
                        PersonStatus::Active => None,
                        PersonStatus::Inactive => Some(stamp),
                    });
                }
                if seen.is_some() {
                    model.source_seen_at = Set(seen);
                }
                model.updated_at = Set(stamp);
                memberships.push((current.id.clone(), school_ids));
                updates.push(model);
            }
            None => {
                let id: String = PersonId::new().into();
                memberships.push((id.clone(), school_ids));
                let origin = Origin {
                    source,
                    source_id: Some(listed.source_id.clone()),
                    status,
                    seen,
                };
                inserts.push(
                    listed
                        .fields(school_name)
                        .new_person(id, district, origin, stamp),
                );
                counts.created += 1;
            }
        }
    }

    let changed = !inserts.is_empty() || !updates.is_empty();
    while !inserts.is_empty() {
        let rest = inserts.split_off(inserts.len().min(CHUNK));
        person::Entity::insert_many(std::mem::replace(&mut inserts, rest))
            .exec_without_returning(db)
            .await?;
    }
    for model in updates {
        person::Entity::update(model).exec(db).await?;
    }
    for ids in seen_unchanged.chunks(CHUNK) {
        person::Entity::update_many()
            .col_expr(person::Column::SourceSeenAt, Expr::value(stamp))
            .filter(person::Column::Id.is_in(ids.iter().map(String::as_str)))
            .exec(db)
            .await?;
    }
    super::schools::set_memberships(db, district, &memberships).await?;
    if changed {
        crate::lookup::roster_changed(db, district).await?;
    }
    Ok(counts)
}

/// Deactivates the people of `source` with these source ids (a deletion event, a delta file's
/// `tobedeleted`). People already inactive, and ids the district does not know, are left alone.
pub async fn deactivate(
    db: &impl ConnectionTrait,
    district: &DistrictId,
    source: RosterSource,
    source_ids: &[String],
    stamp: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut deactivated = 0;
    for ids in source_ids.chunks(CHUNK) {
        let listed = person::Column::SourceId.is_in(ids.iter().map(String::as_str));
        deactivated += deactivate_where(db, district, source, listed, stamp).await?;
    }
    Ok(deactivated)
}

/// After a complete listing stamped `stamp`: deactivates the active people of `source` it did not
/// list. Returns how many.
pub async fn deactivate_unseen(
    db: &impl ConnectionTrait,
    district: &DistrictId,
    source: RosterSource,
    stamp: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let unseen = Condition::any()
        .add(person::Column::SourceSeenAt.is_null())
        .add(person::Column::SourceSeenAt.lt(stamp));
    deactivate_where(db, district, source, unseen, stamp).await
}

/// Deactivates the active people of `source` that `condition` picks.
async fn deactivate_where(
    db: &impl ConnectionTrait,
    district: &DistrictId,
    source: RosterSource,
    condition: impl sea_orm::sea_query::IntoCondition,
    stamp: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let deactivated = person::Entity::update_many()
        .col_expr(
            person::Column::Status,
            Expr::value(PersonStatus::Inactive.as_str()),
        )
        .col_expr(person::Column::InactiveSince, Expr::value(stamp))
        .col_expr(person::Column::UpdatedAt, Expr::value(stamp))
        .filter(person::Column::DistrictId.eq(district.as_str()))
        .filter(person::Column::Source.eq(source))
        .filter(person::Column::Status.eq(PersonStatus::Active))
        .filter(condition)
        .exec(db)
        .await?
        .rows_affected;
    if deactivated > 0 {
        crate::lookup::roster_changed(db, district).await?;
    }
    Ok(deactivated)
}

/// The people a chunk may already be: by the source's ids, then (for people the source has not
/// adopted yet) by SIS id and email.
struct Existing {
    /// The schools each of them belongs to, sorted.
    schools: HashMap<String, Vec<String>>,
    by_source_id: HashMap<String, person::Model>,
    by_sis: HashMap<String, person::Model>,
    by_email: HashMap<String, person::Model>,
}

impl Existing {
    fn find(&self, listed: &SourcePerson) -> Option<&person::Model> {
        self.by_source_id.get(&listed.source_id).or_else(|| {
            listed
                .sis_id
                .as_ref()
                .and_then(|s| self.by_sis.get(s))
                .or_else(|| {
                    listed
                        .email
                        .as_ref()
                        .and_then(|e| self.by_email.get(&e.to_lowercase()))
                        .filter(|p| p.sis_id.is_none() || p.sis_id == listed.sis_id)
                })
        })
    }
}

async fn existing(
    db: &impl ConnectionTrait,
    district: &DistrictId,
    source: RosterSource,
    people: &[SourcePerson],
) -> Result<Existing, DbErr> {
    let source_ids: Vec<&str> = people.iter().map(|p| p.source_id.as_str()).collect();
    let by_source_id: HashMap<String, person::Model> = person::Entity::find()
        .filter(person::Column::DistrictId.eq(district.as_str()))
        .filter(person::Column::Source.eq(source))
        .filter(person::Column::SourceId.is_in(source_ids))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|p| p.source_id.clone().map(|id| (id, p)))
        .collect();
    // Adoption: people another source (the roster CSV) created, found once by SIS id or email.
    let sis_ids: Vec<&str> = people
        .iter()
        .filter(|p| !by_source_id.contains_key(&p.source_id))
        .filter_map(|p| p.sis_id.as_deref())
        .collect();
    let emails: Vec<String> = people
        .iter()
        .filter(|p| !by_source_id.contains_key(&p.source_id))
        .filter_map(|p| p.email.as_deref().map(str::to_lowercase))
        .collect();
    let by_sis = adoptable_by(db, district, source, person::Column::SisId, sis_ids, |p| {
        p.sis_id.clone()
    })
    .await?;
    let by_email = adoptable_by(db, district, source, person::Column::Email, emails, |p| {
        p.email.clone()
    })
    .await?;
    let ids: Vec<&str> = by_source_id
        .values()
        .chain(by_sis.values())
        .chain(by_email.values())
        .map(|p| p.id.as_str())
        .collect();
    let mut schools: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        for m in person_school::Entity::find()
            .filter(person_school::Column::PersonId.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            schools.entry(m.person_id).or_default().push(m.school_id);
        }
    }
    for list in schools.values_mut() {
        list.sort_unstable();
    }
    Ok(Existing {
        schools,
        by_source_id,
        by_sis,
        by_email,
    })
}

/// People of another source whose `column` is one of `values`, by that value (the first of two
/// with one value, in id order).
async fn adoptable_by<V: Into<sea_orm::Value>>(
    db: &impl ConnectionTrait,
    district: &DistrictId,
    source: RosterSource,
    column: person::Column,
    values: Vec<V>,
    key: impl Fn(&person::Model) -> Option<String>,
) -> Result<HashMap<String, person::Model>, DbErr> {
    let mut found = HashMap::new();
    if values.is_empty() {
        return Ok(found);
    }
    for p in person::Entity::find()
        .filter(person::Column::DistrictId.eq(district.as_str()))
        .filter(column.is_in(values))
        .filter(person::Column::Source.ne(source))
        .order_by_asc(person::Column::Id)
        .all(db)
        .await?
    {
        if let Some(value) = key(&p) {
            found.entry(value).or_insert(p);
        }
    }
    Ok(found)
}
