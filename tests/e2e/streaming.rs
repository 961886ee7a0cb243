//! Reports and logs are streamed page by page, and the bytes are those the whole-in-memory
//! versions wrote: each is compared with what that code (kept here as the reference) makes of
//! the same rows, for a district of a few thousand people and a job of a few thousand files,
//! with cells a spreadsheet would run as formulas, quotes, commas, line breaks, ties in the
//! sort order that only the id breaks, and other districts' and jobs' rows that must not leak.

use anyhow::Context as _;
use chrono::Utc;
use pictureday_contract::events::{ImportMode, JobState, ReplacePolicy};
use pictureday_platform::csv_out::CsvBuilder;
use pictureday_reporting::db::{file_outcome, job_status};
use pictureday_roster::db::person;
use pictureday_tests::{Backend, TestApp};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

on_each_backend!(reports_and_logs_stream_the_same_bytes);

/// People without a photo in the district: three pages of the report exactly, so the last page
/// is full and the one after it empty.
const MISSING: u32 = 3000;
/// People given a photo, who must not be in the report.
const WITH_PHOTO: u32 = 437;
/// Files in the job's log: two pages and a bit.
const FILES: i32 = 2345;

async fn reports_and_logs_stream_the_same_bytes(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("stream", "Streamville").await?;
    let other = app.create_district("other", "Elsewhere").await?;
    upload(&app, &token, "stream", 0..MISSING + WITH_PHOTO).await?;
    upload(&app, &other, "other", 0..50).await?;
    let db = app.connections.database().await?;
    give_photos(&db, "stream", WITH_PHOTO).await?;

    let response = app
        .get(&token, "/v1/districts/stream/reports/missing-photos.csv")
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/csv; charset=utf-8");
    assert_eq!(
        header(&response, "content-disposition"),
        "attachment; filename=\"missing-photos.csv\""
    );
    // Streamed: sent chunked, its length not known when the headers were.
    assert!(response.headers().get("content-length").is_none());
    let body = response.bytes().await?;
    let expected = missing_photos_in_memory(&db, "stream").await?;
    assert_same(&body, &expected, "missing-photos.csv")?;

    let job = "job-stream-1";
    add_job(&db, "stream", job, FILES).await?;
    add_job(&db, "stream", "job-stream-2", 10).await?;
    add_job(&db, "stream", "job-empty", 0).await?;
    for job_id in [job, "job-empty"] {
        let path = format!("/v1/districts/stream/jobs/{job_id}/log");
        let rows = log_rows(&db, "stream", job_id).await?;
        let json = log_json_in_memory(job_id, &rows)?;
        let csv = log_csv_in_memory(&rows)?;
        for (query, accept, want, content_type) in [
            ("", None, &json, "application/json"),
            ("?format=json", None, &json, "application/json"),
            ("?format=csv", None, &csv, "text/csv; charset=utf-8"),
            ("", Some("text/csv"), &csv, "text/csv; charset=utf-8"),
        ] {
            let mut request = app
                .http
                .get(app.url(&format!("{path}{query}")))
                .bearer_auth(&token);
            if let Some(accept) = accept {
                request = request.header("accept", accept);
            }
            let response = request.send().await?;
            assert_eq!(response.status(), 200, "{path}{query}");
            assert_eq!(header(&response, "content-type"), content_type);
            if content_type.starts_with("text/csv") {
                assert_eq!(
                    header(&response, "content-disposition"),
                    format!("attachment; filename=\"job-{job_id}-log.csv\"")
                );
            }
            assert!(response.headers().get("content-length").is_none());
            let body = response.bytes().await?;
            assert_same(&body, want, &format!("{path}{query} accept={accept:?}"))?;
        }
    }
    // Another district's token still cannot read either.
    let response = app
        .get(&other, &format!("/v1/districts/stream/jobs/{job}/log"))
        .await?;
    assert_eq!(response.status(), 404);
    app.stop().await
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Equal bytes, or where they first differ.
fn assert_same(got: &[u8], want: &[u8], what: &str) -> anyhow::Result<()> {
    if got == want {
        return Ok(());
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let around = |b: &[u8]| {
        String::from_utf8_lossy(&b[at.saturating_sub(80)..(at + 80).min(b.len())]).into_owned()
    };
    anyhow::bail!(
        "{what}: {} bytes, {} expected; first difference at {at}:\n got: {:?}\nwant: {:?}",
        got.len(),
        want.len(),
        around(got),
        around(want)
    )
}

/// A CSV cell as a roster export writes it.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// People numbered `range`: few schools, last and first names, so many rows tie on all three
/// and only the id orders them; some cells a spreadsheet would run, some with quotes, commas
/// or a line break.
async fn upload(
    app: &TestApp,
    token: &str,
    district: &str,
    range: std::ops::Range<u32>,
) -> anyhow::Result<()> {
    const SCHOOLS: [&str; 5] = [
        "North",
        "south",
        "Ünion",
        "=HYPERLINK(\"x\")",
        "East, Annex",
    ];
    let mut roster = String::from("role,sis_id,student_number,email,first_name,last_name,school\n");
    for n in range {
        let role = if n % 9 == 0 { "staff" } else { "student" };
        let first = match n % 11 {
            0 => "-Dash".to_owned(),
            1 => "@At".to_owned(),
            2 => "Line\nBreak".to_owned(),
            3 => "Quote \"Q\"".to_owned(),
            k => format!("First{k}"),
        };
        let first = if n % 11 == 2 && n > 30 {
            "Plain".to_owned()
        } else {
            first
        };
        let last = if n % 13 == 0 {
            "+Plus".to_owned()
        } else {
            format!("Last{}", n % 7)
        };
        let school = SCHOOLS[(n % 5) as usize];
        let email = if n % 3 == 0 {
            format!("p{n}@example.org")
        } else {
            String::new()
        };
        let number = if n % 4 == 0 {
            String::new()
        } else {
            n.to_string()
        };
        roster.push_str(&format!(
            "{role},S{n},{number},{email},{},{},{}\n",
            quoted(&first),
            quoted(&last),
            quoted(school)
        ));
    }
    let (status, body) = app.upload_roster(token, district, &roster).await?;
    anyhow::ensure!(status == 200, "roster upload: {status}: {body}");
    anyhow::ensure!(body["rejected_rows"] == 0, "rows rejected: {body}");
    Ok(())
}

/// Gives the first `count` people (by id) a photo, as applying one would leave them.
async fn give_photos(db: &DatabaseConnection, district: &str, count: u32) -> anyhow::Result<()> {
    let ids: Vec<String> = person::Entity::find()
        .select_only()
        .column(person::Column::Id)
        .filter(person::Column::DistrictId.eq(district))
        .order_by_asc(person::Column::Id)
        .limit(u64::from(count))
        .into_tuple()
        .all(db)
        .await?;
    for chunk in ids.chunks(200) {
        person::Entity::update_many()
            .col_expr(person::Column::CurrentPhotoId, Expr::value("photo-x"))
            .filter(person::Column::Id.is_in(chunk.iter().cloned()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The report as it was built before it was streamed.
async fn missing_photos_in_memory(
    db: &DatabaseConnection,
    district: &str,
) -> anyhow::Result<Vec<u8>> {
    let people = person::Entity::find()
        .filter(person::Column::DistrictId.eq(district))
        .filter(person::Column::CurrentPhotoId.is_null())
        .order_by_asc(person::Column::School)
        .order_by_asc(person::Column::LastName)
        .order_by_asc(person::Column::FirstName)
        .order_by_asc(person::Column::Id)
        .all(db)
        .await?;
    anyhow::ensure!(people.len() == MISSING as usize, "{} missing", people.len());
    let mut csv = CsvBuilder::new();
    csv.row([
        "role",
        "sis_id",
        "student_number",
        "email",
        "first_name",
        "last_name",
        "school",
    ])?;
    for p in &people {
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
    Ok(csv.finish()?)
}

/// A finished job with `files` outcomes (sequence numbers with gaps), written as the projection
/// would have.
async fn add_job(
    db: &DatabaseConnection,
    district: &str,
    job_id: &str,
    files: i32,
) -> anyhow::Result<()> {
    let now = Utc::now();
    job_status::Entity::insert(job_status::ActiveModel {
        job_id: Set(job_id.to_owned()),
        district_id: Set(district.to_owned()),
        state: Set(JobState::FinishedWithErrors),
        created_seen: Set(true),
        files: Set(files),
        matched: Set(0),
        unmatched: Set(0),
        processed: Set(0),
        rejected: Set(0),
        applied: Set(0),
        warnings: Set("[]".into()),
        created_at: Set(now),
        started_at: Set(Some(now)),
        finished_at: Set(Some(now)),
        updated_at: Set(now),
        parked: Set(0),
        replayed: Set(0),
        failure: Set(None),
        skipped: Set(0),
        previewed: Set(0),
        mode: Set(ImportMode::Apply),
        replace: Set(ReplacePolicy::Always),
        undo: Set(None),
    })
    .exec(db)
    .await?;
    use file_outcome::Outcome;
    const OUTCOMES: [Outcome; 8] = [
        Outcome::Pending,
        Outcome::Applied,
        Outcome::Replaced,
        Outcome::Superseded,
        Outcome::Skipped,
        Outcome::Previewed,
        Outcome::Unmatched,
        Outcome::Rejected,
    ];
    let rows: Vec<file_outcome::ActiveModel> = (0..files)
        .map(|n| {
            let file_name = match n % 6 {
                0 => format!("=cmd{n}.jpg"),
                1 => format!("+{n}.jpg"),
                2 => format!("dir/Ünïcode \"{n}\", copy.jpg"),
                _ => format!("{n}.jpg"),
            };
            let reason = match n % 5 {
                0 => None,
                1 => Some(format!(
                    "no person with student number, SIS id or email {n}"
                )),
                2 => Some("-line one\nline two, \"quoted\"".to_owned()),
                _ => Some(format!("@reason {n}")),
            };
            file_outcome::ActiveModel {
                job_id: Set(job_id.to_owned()),
                seq: Set(n * 3 + 1),
                district_id: Set(district.to_owned()),
                file_name: Set(file_name),
                outcome: Set(OUTCOMES[(n % 8) as usize]),
                person_id: Set((n % 2 == 0).then(|| format!("person-{n}"))),
                matched_by: Set((n % 4 == 0).then(|| "student_number".to_owned())),
                photo_id: Set((n % 3 == 0).then(|| format!("photo-{n}"))),
                reason: Set(reason),
                matched: Set(false),
                unmatched: Set(false),
                processed: Set(false),
                rejected: Set(false),
                applied: Set(false),
                updated_at: Set(now),
                replays: Set(0),
            }
        })
        .collect();
    for chunk in rows.chunks(500) {
        file_outcome::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await
            .context("inserting log rows")?;
    }
    Ok(())
}

async fn log_rows(
    db: &DatabaseConnection,
    district: &str,
    job_id: &str,
) -> anyhow::Result<Vec<file_outcome::Model>> {
    Ok(file_outcome::Entity::find()
        .filter(file_outcome::Column::JobId.eq(job_id))
        .filter(file_outcome::Column::DistrictId.eq(district))
        .order_by_asc(file_outcome::Column::Seq)
        .all(db)
        .await?)
}

/// A log row as the whole-in-memory log serialised it.
#[derive(serde::Serialize)]
struct LogRow {
    seq: i32,
    file_name: String,
    outcome: file_outcome::Outcome,
    person_id: Option<String>,
    matched_by: Option<String>,
    photo_id: Option<String>,
    reason: Option<String>,
}

fn log_json_in_memory(job_id: &str, rows: &[file_outcome::Model]) -> anyhow::Result<Vec<u8>> {
    let rows: Vec<LogRow> = rows
        .iter()
        .cloned()
        .map(|f| LogRow {
            seq: f.seq,
            file_name: f.file_name,
            outcome: f.outcome,
            person_id: f.person_id,
            matched_by: f.matched_by,
            photo_id: f.photo_id,
            reason: f.reason,
        })
        .collect();
    Ok(serde_json::to_vec(
        &serde_json::json!({ "job_id": job_id, "items": rows }),
    )?)
}

fn log_csv_in_memory(rows: &[file_outcome::Model]) -> anyhow::Result<Vec<u8>> {
    let mut csv = CsvBuilder::new();
    csv.row(["file_name", "outcome", "person_id", "matched_by", "reason"])?;
    for row in rows {
        csv.row([
            row.file_name.as_str(),
            row.outcome.as_str(),
            row.person_id.as_deref().unwrap_or(""),
            row.matched_by.as_deref().unwrap_or(""),
            row.reason.as_deref().unwrap_or(""),
        ])?;
    }
    Ok(csv.finish()?)
}
