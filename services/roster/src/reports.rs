//! The missing-photos report, streamed: a district of a million people is a file of ~100 MB,
//! which must not be held in memory (it took 3.2 GB per download when it was).
//!
//! Rows are read in keyset pages of [`PAGE_ROWS`] through short queries rather than through one
//! cursor held for the whole download (`.stream()`): the download goes at the client's pace, so
//! a held cursor would keep a pooled connection (SQLite has 8, shared with apply and lookups)
//! and, on SQLite in WAL mode, a read transaction open for as long as a slow client likes, which
//! holds back every checkpoint and lets the WAL grow without bound. A page holds nothing between
//! queries. The price is that rows changed during a download may or may not be in it, as with
//! any paged list; each row is still read whole and in order, exactly once.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt, stream};
use pictureday_access::{Caller, Role};
use pictureday_platform::csv_out::CsvBuilder;
use pictureday_platform::http::ApiError;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Deserialize;

use crate::api::RosterState;
use crate::db::{person, person_school};

/// Rows per query: a page is ~0.5 MB of rows in memory, and each query is short.
const PAGE_ROWS: u64 = 1000;

/// The report's order, which is also its keyset: every column is `NOT NULL` and `id` is unique,
/// so the tuple orders the rows totally, and a page starts right after the last row of the one
/// before it.
const ORDER: [person::Column; 4] = [
    person::Column::School,
    person::Column::LastName,
    person::Column::FirstName,
    person::Column::Id,
];

const HEADER: [&str; 7] = [
    "role",
    "sis_id",
    "student_number",
    "email",
    "first_name",
    "last_name",
    "school",
];

/// Why the report stopped in the middle: the client sees its download cut short.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("reading the next page: {0}")]
    Database(#[from] DbErr),
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// The key of a row, in [`ORDER`]'s columns.
fn key_of(p: &person::Model) -> [String; 4] {
    [
        p.school.clone(),
        p.last_name.clone(),
        p.first_name.clone(),
        p.id.clone(),
    ]
}

/// Rows after `key` in [`ORDER`]: the row value `(school, last_name, first_name, id) > (…)`,
/// which SQLite and PostgreSQL compare with the same collation as `ORDER BY`, and which (unlike
/// `school > ? OR (school = ? AND …)`) both can seek to in an index on `(district_id, school,
/// last_name, first_name, id)`, so that with one a page costs its own rows and not a scan of the
/// district.
fn after(key: &[String; 4]) -> Expr {
    Expr::tuple(ORDER.map(|column| Expr::col((person::Entity, column)))).gt(Expr::tuple(
        key.iter().map(|value| Expr::val(value.as_str())),
    ))
}

/// Which people the report lists, besides being active and without a photo.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ReportFilter {
    /// Only students or only staff.
    role: Option<crate::roster_csv::Role>,
    /// Only the people of this school (its id).
    school: Option<String>,
}

async fn page(
    db: &DatabaseConnection,
    district: &str,
    filter: &ReportFilter,
    from: Option<&[String; 4]>,
) -> Result<Vec<person::Model>, DbErr> {
    let mut query = person::Entity::find()
        .filter(person::Column::DistrictId.eq(district))
        .filter(person::Column::CurrentPhotoId.is_null())
        // People who left are not missing a photo.
        .filter(person::Column::Status.eq(crate::db::person::PersonStatus::Active));
    if let Some(role) = filter.role {
        query = query.filter(person::Column::Role.eq(role));
    }
    if let Some(school) = &filter.school {
        query = query.filter(
            person::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(person_school::Column::PersonId)
                    .from(person_school::Entity)
                    .and_where(person_school::Column::SchoolId.eq(school.as_str()))
                    .to_owned(),
            ),
        );
    }
    if let Some(key) = from {
        query = query.filter(after(key));
    }
    for column in ORDER {
        query = query.order_by_asc(column);
    }
    query.limit(PAGE_ROWS).all(db).await
}

/// The CSV of `rows`. Pieces written by separate builders join into what one builder writes
/// (see `csv_out`), so each page is written on its own.
fn csv_of(rows: &[person::Model], header: bool) -> Result<Bytes, csv::Error> {
    let mut csv = CsvBuilder::new();
    if header {
        csv.row(HEADER)?;
    }
    for p in rows {
        csv.row([
            p.role.as_str(),
            p.sis_id.as_deref().unwrap_or(""),
            p.student_number.as_deref().unwrap_or(""),
            p.email.as_deref().unwrap_or(""),
            p.first_name.as_str(),
            p.last_name.as_str(),
            p.school.as_str(),
        ])?;
    }
    Ok(csv.finish()?.into())
}

/// Where the next page starts, when there may be one.
fn next_key(rows: &[person::Model]) -> Option<[String; 4]> {
    if rows.len() as u64 == PAGE_ROWS {
        rows.last().map(key_of)
    } else {
        None
    }
}

/// Everyone without a photo, as CSV, streamed (viewer).
#[utoipa::path(
    get,
    path = "/v1/districts/{district}/reports/missing-photos.csv",
    tag = "people",
    operation_id = "missingPhotosReport",
    description = "Active students and staff without a photo (people who left are not missing one), ordered by school, last name, first name. Streamed: an error after the first rows cuts the download short.",
    params(
        ("district" = String, Path, description = "The district's id (`a-z`, `0-9`, `-`).", example = "springfield"),
        ("role" = Option<crate::roster_csv::Role>, Query, description = "Only `student`s or only `staff`."),
        ("school" = Option<String>, Query, description = "Only the people of this school (its id).")
    ),
    responses((status = 200, description = "The CSV.", body = String, content_type = "text/csv",
        example = "role,sis_id,student_number,email,first_name,last_name,school\r\nstudent,S1002,1002,,Grace,Hopper,North\r\n"))
)]
pub(crate) async fn missing_photos(
    State(state): State<RosterState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(filter): Query<ReportFilter>,
) -> Result<Response, ApiError> {
    let id = state.auth.district_as(&caller, &raw, Role::Viewer).await?;
    let district = id.as_str().to_owned();
    // The first page is read before answering, so a database that is down is still a 503.
    let first = page(&state.db, &district, &filter, None).await?;
    let head = csv_of(&first, true).map_err(ApiError::internal)?;
    let db = state.db.clone();
    let pages_district = district.clone();
    let rest = stream::try_unfold(next_key(&first), move |from| {
        let (db, district, filter) = (db.clone(), pages_district.clone(), filter.clone());
        async move {
            let Some(from) = from else {
                return Ok::<_, StreamError>(None);
            };
            let rows = page(&db, &district, &filter, Some(&from)).await?;
            Ok(Some((csv_of(&rows, false)?, next_key(&rows))))
        }
    });
    let body = stream::once(async move { Ok(head) })
        .chain(rest)
        .try_filter(|chunk| std::future::ready(!chunk.is_empty()))
        // The status is sent already: an error can only cut the body short (hyper then ends the
        // chunked body without its last chunk, which clients see as a failed download), so it is
        // logged here.
        .inspect_err(move |error| {
            tracing::error!(%district, %error, "missing-photos report cut short");
        });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"missing-photos.csv\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
