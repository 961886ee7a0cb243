//! Resolves match keys (file stems or mapping identifiers) to people, for the matcher over NATS
//! request/reply. A key is tried as student number / local id, then SIS id, then email.

use std::collections::HashMap;

use futures::StreamExt;
use pictureday_contract::events::{
    LookupRequest, LookupResponse, LookupResult, MatchedBy, SCHEMA_VERSION,
};
use pictureday_contract::subjects::ROSTER_LOOKUP_SUBJECT;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use tokio_util::sync::CancellationToken;

use crate::db::person;

/// Keys per query, well under both databases' bound-parameter limits.
const KEYS_PER_QUERY: usize = 300;

/// A person's id, student number, SIS id and email.
type IdentifierRow = (String, Option<String>, Option<String>, Option<String>);

/// People's identifiers, indexed by each field's value.
#[derive(Default)]
struct Index {
    student_number: HashMap<String, Vec<String>>,
    sis_id: HashMap<String, Vec<String>>,
    email: HashMap<String, Vec<String>>,
}

pub async fn resolve(
    db: &DatabaseConnection,
    district: &str,
    keys: &[String],
) -> Result<Vec<LookupResult>, DbErr> {
    let mut index = Index::default();
    for chunk in keys.chunks(KEYS_PER_QUERY) {
        let lowered: Vec<String> = chunk.iter().map(|k| k.to_lowercase()).collect();
        let rows: Vec<IdentifierRow> = person::Entity::find()
            .select_only()
            .column(person::Column::Id)
            .column(person::Column::StudentNumber)
            .column(person::Column::SisId)
            .column(person::Column::Email)
            .filter(person::Column::DistrictId.eq(district))
            .filter(
                Condition::any()
                    .add(person::Column::StudentNumber.is_in(chunk.iter().cloned()))
                    .add(person::Column::SisId.is_in(chunk.iter().cloned()))
                    .add(person::Column::Email.is_in(lowered)),
            )
            .into_tuple()
            .all(db)
            .await?;
        for (id, student_number, sis_id, email) in rows {
            for (map, value) in [
                (&mut index.student_number, student_number),
                (&mut index.sis_id, sis_id),
                (&mut index.email, email),
            ] {
                if let Some(value) = value {
                    let ids = map.entry(value).or_default();
                    if !ids.contains(&id) {
                        ids.push(id.clone());
                    }
                }
            }
        }
    }
    Ok(keys.iter().map(|key| resolve_one(&index, key)).collect())
}

fn resolve_one(index: &Index, key: &str) -> LookupResult {
    let email_key = key.to_lowercase();
    let attempts = [
        (MatchedBy::StudentNumber, index.student_number.get(key)),
        (MatchedBy::SisId, index.sis_id.get(key)),
        (MatchedBy::Email, index.email.get(&email_key)),
    ];
    for (matched_by, ids) in attempts {
        match ids.map(Vec::as_slice) {
            Some([only]) => {
                return LookupResult::Found {
                    person_id: only.as_str().into(),
                    matched_by,
                };
            }
            Some(many) if many.len() > 1 => {
                return LookupResult::Ambiguous {
                    matched_by,
                    count: u32::try_from(many.len()).unwrap_or(u32::MAX),
                };
            }
            _ => {}
        }
    }
    LookupResult::NotFound
}

/// Answers lookup requests until shutdown. Replicas share the work through a queue group.
pub async fn serve(
    nats: async_nats::Client,
    db: DatabaseConnection,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut requests = nats
        .queue_subscribe(ROSTER_LOOKUP_SUBJECT, "roster".into())
        .await?;
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = requests.next() => m,
        };
        let Some(message) = message else {
            anyhow::bail!("lookup subscription ended");
        };
        let Some(reply) = message.reply.clone() else {
            continue;
        };
        let response = match serde_json::from_slice::<LookupRequest>(&message.payload) {
            Ok(request) if request.v == SCHEMA_VERSION => {
                match resolve(&db, request.district.as_str(), &request.keys).await {
                    Ok(results) => serde_json::to_vec(&LookupResponse {
                        v: SCHEMA_VERSION,
                        results,
                    })?,
                    Err(error) => {
                        // No reply: the matcher times out and retries, which suits a passing
                        // database failure.
                        tracing::warn!(%error, "roster lookup failed");
                        continue;
                    }
                }
            }
            Ok(request) => {
                tracing::warn!(v = request.v, "lookup request of unknown version");
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "malformed lookup request");
                continue;
            }
        };
        if let Err(error) = nats.publish(reply, response.into()).await {
            tracing::warn!(%error, "could not answer lookup");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        let mut index = Index::default();
        index
            .student_number
            .insert("1001".into(), vec!["p1".into()]);
        index.sis_id.insert("1001".into(), vec!["p2".into()]);
        index.sis_id.insert("S7".into(), vec!["p3".into()]);
        index
            .student_number
            .insert("42".into(), vec!["p4".into(), "p5".into()]);
        index
            .email
            .insert("ada@example.org".into(), vec!["p6".into()]);
        index
    }

    #[test]
    fn student_number_wins_over_sis_id_then_email() {
        let index = index();
        assert_eq!(
            resolve_one(&index, "1001"),
            LookupResult::Found {
                person_id: "p1".into(),
                matched_by: MatchedBy::StudentNumber
            }
        );
        assert_eq!(
            resolve_one(&index, "S7"),
            LookupResult::Found {
                person_id: "p3".into(),
                matched_by: MatchedBy::SisId
            }
        );
        assert_eq!(
            resolve_one(&index, "Ada@Example.ORG"),
            LookupResult::Found {
                person_id: "p6".into(),
                matched_by: MatchedBy::Email
            }
        );
        assert_eq!(resolve_one(&index, "s7"), LookupResult::NotFound);
    }

    #[test]
    fn two_people_with_one_key_is_ambiguous() {
        assert_eq!(
            resolve_one(&index(), "42"),
            LookupResult::Ambiguous {
                matched_by: MatchedBy::StudentNumber,
                count: 2
            }
        );
    }
}
