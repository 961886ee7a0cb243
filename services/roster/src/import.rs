//! Applies a roster's rows to the database, a chunk at a time: people are upserted by SIS id,
//! else by email, and belong to the school their row names (created when new).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use pictureday_contract::DistrictId;
use pictureday_contract::PersonId;
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use serde::Serialize;

use crate::db::person::{self, PersonStatus, RosterSource};
use crate::db::person_school;
use crate::person_fields::Origin;
use crate::roster_csv::RosterRow;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// People the file withdrew (`status` inactive).
    pub deactivated: u64,
    /// People the file brought back.
    pub reactivated: u64,
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

    let members: HashSet<String> = person_school::Entity::find()
        .filter(person_school::Column::PersonId.is_in(existing.iter().map(|p| p.id.as_str())))
        .all(txn)
        .await?
        .into_iter()
        .map(|m| m.person_id)
        .collect();
    let now = stamp;
    let mut memberships: Vec<(String, String)> = Vec::new();
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
                let fields = row.fields();
                let changed = fields.differs_from(current);
                // A roster CSV withdraws people (`status` inactive) and brings them back (listed
                // as active again); people of another source come and go by that source.
                let own = current.source == RosterSource::Csv;
                let returns = own && current.status == PersonStatus::Inactive && row.active;
                let leaves = own && current.status == PersonStatus::Active && !row.active;
                // Memberships are written for new schools and for people imported before
                // schools were kept, not again for every unchanged row.
                if current.school != row.school || !members.contains(&current.id) {
                    memberships.push((current.id.clone(), row.school.clone()));
                }
                if changed || returns || leaves {
                    let mut model: person::ActiveModel = current.clone().into();
                    fields.write(&mut model);
                    model.updated_at = Set(now);
                    if returns {
                        model.status = Set(PersonStatus::Active);
                        model.inactive_since = Set(None);
                    }
                    if leaves {
                        model.status = Set(PersonStatus::Inactive);
                        model.inactive_since = Set(Some(now));
                    }
                    updates.push(model);
                    match (returns, leaves) {
                        (true, _) => counts.reactivated += 1,
                        (_, true) => counts.deactivated += 1,
                        _ => counts.updated += 1,
                    }
                } else {
                    counts.unchanged += 1;
                }
            }
            None => {
                let id: String = PersonId::new().into();
                memberships.push((id.clone(), row.school.clone()));
                let origin = Origin {
                    source: RosterSource::Csv,
                    source_id: None,
                    status: if row.active {
                        PersonStatus::Active
                    } else {
                        PersonStatus::Inactive
                    },
                    seen: None,
                };
                inserts.push(row.fields().new_person(id, district, origin, now));
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
    // Every person the file lists belongs to the school it names (created when new).
    let names: HashSet<&str> = memberships
        .iter()
        .map(|(_, school)| school.as_str())
        .filter(|school| !school.is_empty())
        .collect();
    let school_ids = crate::sources::schools::named(txn, district, &names, stamp).await?;
    let memberships: Vec<(String, Vec<String>)> = memberships
        .iter()
        .map(|(person, school)| {
            (
                person.clone(),
                school_ids.get(school).cloned().into_iter().collect(),
            )
        })
        .collect();
    crate::sources::schools::set_memberships(txn, district, &memberships).await?;
    if changed {
        crate::lookup::roster_changed(txn, district).await?;
    }
    Ok(counts)
}
