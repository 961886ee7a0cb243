//! Applies a roster's rows to the database, a chunk at a time: people are upserted by SIS id,
//! else by email.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use pictureday_contract::DistrictId;
use pictureday_contract::PersonId;
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use serde::Serialize;

use crate::db::person;
use crate::roster_csv::RosterRow;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

const INSERT_CHUNK: usize = 500;

/// Applies one chunk of a roster's rows inside `txn` (the caller's short write transaction):
/// the people the rows name are looked up by SIS id and email, then inserted or updated.
///
/// People the same import created in an earlier chunk (their `created_at` is the import's
/// `stamp`) are not matched again, as if the whole file had been matched against the roster as
/// it was before the import: chunking does not change what a file does.
pub async fn upsert_chunk(
    txn: &DatabaseTransaction,
    district: &DistrictId,
    rows: Vec<RosterRow>,
    stamp: DateTime<Utc>,
) -> Result<ImportCounts, DbErr> {
    let mut counts = ImportCounts::default();
    if rows.is_empty() {
        return Ok(counts);
    }
    let sis_ids: Vec<&str> = rows.iter().filter_map(|r| r.sis_id.as_deref()).collect();
    let emails: Vec<&str> = rows.iter().filter_map(|r| r.email.as_deref()).collect();
    let mut existing: Vec<person::Model> = Vec::new();
    if !sis_ids.is_empty() {
        existing.extend(
            person::Entity::find()
                .filter(person::Column::DistrictId.eq(district.as_str()))
                .filter(person::Column::SisId.is_in(sis_ids))
                .all(txn)
                .await?,
        );
    }
    if !emails.is_empty() {
        let by_email = person::Entity::find()
            .filter(person::Column::DistrictId.eq(district.as_str()))
            .filter(person::Column::Email.is_in(emails))
            .all(txn)
            .await?;
        let known: HashSet<String> = existing.iter().map(|p| p.id.clone()).collect();
        existing.extend(by_email.into_iter().filter(|p| !known.contains(&p.id)));
    }
    // Same order as reading the whole district once did: by id, so that of two people with one
    // email the same one is found.
    existing.retain(|p| p.created_at != stamp);
    existing.sort_by(|a, b| a.id.cmp(&b.id));
    let mut by_sis: HashMap<String, usize> = HashMap::new();
    let mut by_email: HashMap<String, usize> = HashMap::new();
    for (i, p) in existing.iter().enumerate() {
        if let Some(sis) = &p.sis_id {
            by_sis.insert(sis.clone(), i);
        }
        if let Some(email) = &p.email {
            by_email.insert(email.clone(), i);
        }
    }

    let now = stamp;
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    for row in rows {
        let found = match &row.sis_id {
            Some(sis) => by_sis.get(sis).copied().or_else(|| {
                // An email-only person gains a SIS id; one that has another SIS id is someone else.
                row.email
                    .as_ref()
                    .and_then(|e| by_email.get(e).copied())
                    .filter(|&i| existing[i].sis_id.is_none())
            }),
            None => row.email.as_ref().and_then(|e| by_email.get(e).copied()),
        };
        match found {
            Some(i) => {
                let current = &existing[i];
                let changed = current.role != row.role
                    || current.email != row.email
                    || current.sis_id != row.sis_id
                    || current.student_number != row.student_number
                    || current.first_name != row.first_name
                    || current.last_name != row.last_name
                    || current.school != row.school
                    || current.state_id != row.state_id
                    || current.staff_id != row.staff_id
                    || current.preferred_first_name != row.preferred_first_name
                    || current.grade != row.grade
                    || current.homeroom != row.homeroom
                    || current.teacher != row.teacher;
                if changed {
                    let mut model: person::ActiveModel = current.clone().into();
                    model.role = Set(row.role);
                    model.email = Set(row.email);
                    model.sis_id = Set(row.sis_id);
                    model.student_number = Set(row.student_number);
                    model.first_name = Set(row.first_name);
                    model.last_name = Set(row.last_name);
                    model.school = Set(row.school);
                    model.state_id = Set(row.state_id);
                    model.staff_id = Set(row.staff_id);
                    model.preferred_first_name = Set(row.preferred_first_name);
                    model.grade = Set(row.grade);
                    model.homeroom = Set(row.homeroom);
                    model.teacher = Set(row.teacher);
                    model.updated_at = Set(now);
                    updates.push(model);
                    counts.updated += 1;
                } else {
                    counts.unchanged += 1;
                }
            }
            None => {
                inserts.push(person::ActiveModel {
                    id: Set(PersonId::new().into()),
                    district_id: Set(district.as_str().to_owned()),
                    role: Set(row.role),
                    email: Set(row.email),
                    sis_id: Set(row.sis_id),
                    student_number: Set(row.student_number),
                    first_name: Set(row.first_name),
                    last_name: Set(row.last_name),
                    school: Set(row.school),
                    state_id: Set(row.state_id),
                    staff_id: Set(row.staff_id),
                    preferred_first_name: Set(row.preferred_first_name),
                    grade: Set(row.grade),
                    homeroom: Set(row.homeroom),
                    teacher: Set(row.teacher),
                    current_photo_id: Set(None),
                    current_photo_rank: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                });
                counts.created += 1;
            }
        }
    }

    let changed = !inserts.is_empty() || !updates.is_empty();
    while !inserts.is_empty() {
        let rest = inserts.split_off(inserts.len().min(INSERT_CHUNK));
        person::Entity::insert_many(std::mem::replace(&mut inserts, rest))
            .exec_without_returning(txn)
            .await?;
    }
    for model in updates {
        person::Entity::update(model).exec(txn).await?;
    }
    if changed {
        crate::lookup::roster_changed(txn, district).await?;
    }
    Ok(counts)
}
