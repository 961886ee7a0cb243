//! A job's log as a streamed body, CSV or JSON: a job of a million files has a log of hundreds of
//! MB, which must not be held in memory.
//!
//! Rows are read in keyset pages of [`PAGE_ROWS`] on the primary key `(job_id, seq)` through short
//! queries rather than through one cursor held for the whole download (`.stream()`): the
//! download goes at the client's pace, so a held cursor would keep a pooled connection and, on
//! SQLite in WAL mode, a read transaction open for as long as a slow client likes, which holds
//! back every checkpoint (the projection writes to this table all the time) and lets the WAL
//! grow without bound. The bytes are the same as when the log was built whole: the same CSV
//! (through `csv_out`), and the same JSON object `{"items": […], "job_id": "…"}`.

use axum::body::{Body, Bytes};
use futures::{Stream, StreamExt, TryStreamExt, stream};
use pictureday_platform::csv_out::CsvBuilder;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;

use crate::db::file_outcome;

/// Rows per query: a page is at most a few MB (reasons are short texts), each query short.
const PAGE_ROWS: u64 = 1000;

/// Which log is read.
#[derive(Clone)]
pub(crate) struct LogOf {
    pub district: String,
    pub job_id: String,
}

/// The form of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    #[error("reading the next page: {0}")]
    Database(#[from] DbErr),
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = JobLogRow)]
pub(crate) struct LogRow<'a> {
    seq: i32,
    file_name: &'a str,
    outcome: file_outcome::Outcome,
    person_id: Option<&'a str>,
    matched_by: Option<&'a str>,
    photo_id: Option<&'a str>,
    reason: Option<&'a str>,
}

impl<'a> From<&'a file_outcome::Model> for LogRow<'a> {
    fn from(f: &'a file_outcome::Model) -> Self {
        Self {
            seq: f.seq,
            file_name: &f.file_name,
            outcome: f.outcome,
            person_id: f.person_id.as_deref(),
            matched_by: f.matched_by.as_deref(),
            photo_id: f.photo_id.as_deref(),
            reason: f.reason.as_deref(),
        }
    }
}

async fn page(
    db: &DatabaseConnection,
    log: &LogOf,
    after: Option<i32>,
) -> Result<Vec<file_outcome::Model>, DbErr> {
    let mut query = file_outcome::Entity::find()
        .filter(file_outcome::Column::JobId.eq(log.job_id.as_str()))
        .filter(file_outcome::Column::DistrictId.eq(log.district.as_str()))
        .order_by_asc(file_outcome::Column::Seq)
        .limit(PAGE_ROWS);
    if let Some(seq) = after {
        query = query.filter(file_outcome::Column::Seq.gt(seq));
    }
    query.all(db).await
}

fn next_after(rows: &[file_outcome::Model]) -> Option<i32> {
    if rows.len() as u64 == PAGE_ROWS {
        rows.last().map(|f| f.seq)
    } else {
        None
    }
}

/// What comes before the rows and after them. The JSON envelope is cut out of the object the
/// log was built as, so key order and escaping are `serde_json`'s own, whichever map it uses.
struct Envelope {
    head: Bytes,
    tail: Bytes,
}

const ITEMS: &str = "\"items\":[]";

fn envelope(format: Format, job_id: &str) -> Result<Envelope, StreamError> {
    match format {
        Format::Csv => {
            let mut csv = CsvBuilder::new();
            csv.row(["file_name", "outcome", "person_id", "matched_by", "reason"])?;
            Ok(Envelope {
                head: csv.finish()?.into(),
                tail: Bytes::new(),
            })
        }
        Format::Json => {
            let whole =
                serde_json::to_string(&serde_json::json!({ "job_id": job_id, "items": [] }))?;
            // `"items":[]` cannot occur inside the job id's string: its quotes would be escaped.
            let at = whole
                .find(ITEMS)
                .map(|at| at + ITEMS.len() - 1)
                .ok_or_else(|| {
                    serde_json::Error::io(std::io::Error::other("no items in the log envelope"))
                })?;
            Ok(Envelope {
                head: Bytes::copy_from_slice(&whole.as_bytes()[..at]),
                tail: Bytes::copy_from_slice(&whole.as_bytes()[at..]),
            })
        }
    }
}

/// The rows of one page; `first_of_all` says whether a row of the log came before (a JSON row
/// after another is preceded by a comma).
fn rows_of(
    format: Format,
    rows: &[file_outcome::Model],
    first_of_all: bool,
) -> Result<Bytes, StreamError> {
    match format {
        Format::Csv => {
            let mut csv = CsvBuilder::new();
            for f in rows {
                csv.row([
                    f.file_name.as_str(),
                    f.outcome.as_str(),
                    f.person_id.as_deref().unwrap_or(""),
                    f.matched_by.as_deref().unwrap_or(""),
                    f.reason.as_deref().unwrap_or(""),
                ])?;
            }
            Ok(csv.finish()?.into())
        }
        Format::Json => {
            let mut out = Vec::new();
            for (i, f) in rows.iter().enumerate() {
                if i > 0 || !first_of_all {
                    out.push(b',');
                }
                // Through a `Value`, as the whole log was (`json!`): its object orders the keys.
                serde_json::to_writer(&mut out, &serde_json::to_value(LogRow::from(f))?)?;
            }
            Ok(out.into())
        }
    }
}

/// Where the next page starts (`None`: no more), and whether a row has been written yet.
type Cursor = (Option<i32>, bool);

/// The log as a body. The first page is read before this returns, so a database that is down
/// is still an error the handler answers with a status; later errors end the body early (hyper
/// then ends the chunked body without its last chunk, which clients see as a failed download)
/// and are logged.
pub(crate) async fn body(
    db: DatabaseConnection,
    log: LogOf,
    format: Format,
) -> Result<Body, StreamError> {
    let envelope = envelope(format, &log.job_id)?;
    let first = page(&db, &log, None).await?;
    let mut head = Vec::from(envelope.head.as_ref());
    head.extend_from_slice(&rows_of(format, &first, true)?);
    let cursor: Cursor = (next_after(&first), first.is_empty());
    let pages_log = log.clone();
    let rest = stream::try_unfold(cursor, move |(after, none_yet)| {
        let (db, log) = (db.clone(), pages_log.clone());
        async move {
            let Some(after) = after else {
                return Ok::<_, StreamError>(None);
            };
            let rows = page(&db, &log, Some(after)).await?;
            let bytes = rows_of(format, &rows, none_yet)?;
            Ok(Some((
                bytes,
                (next_after(&rows), none_yet && rows.is_empty()),
            )))
        }
    });
    let tail = envelope.tail;
    let chunks = stream::once(async move { Ok(Bytes::from(head)) })
        .chain(rest)
        .chain(stream::once(async move { Ok(tail) }));
    Ok(Body::from_stream(logged(chunks, log, format)))
}

fn logged(
    chunks: impl Stream<Item = Result<Bytes, StreamError>> + Send + 'static,
    log: LogOf,
    format: Format,
) -> impl Stream<Item = Result<Bytes, StreamError>> + Send + 'static {
    chunks
        .try_filter(|chunk| std::future::ready(!chunk.is_empty()))
        .inspect_err(move |error| {
            tracing::error!(
                district = %log.district,
                job_id = %log.job_id,
                ?format,
                %error,
                "job log cut short"
            );
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_envelope_is_the_whole_object_cut_at_its_items() -> anyhow::Result<()> {
        let job_id = "job \"1\" \\ ]";
        let envelope = envelope(Format::Json, job_id)?;
        let joined = [envelope.head.as_ref(), envelope.tail.as_ref()].concat();
        let whole = serde_json::to_vec(&serde_json::json!({ "job_id": job_id, "items": [] }))?;
        assert_eq!(joined, whole);
        assert!(envelope.head.ends_with(b"\"items\":["));
        Ok(())
    }

    /// An error after the status was sent must not look like the end of the log: the chunked
    /// body stops without its last (zero-length) chunk, which clients report as a failed download.
    #[tokio::test]
    async fn an_error_mid_stream_cuts_the_body_short() -> anyhow::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().route(
            "/log",
            axum::routing::get(|| async {
                // The next page fails a moment after the first was sent, as a query would.
                let chunks =
                    stream::once(async { Ok(Bytes::from_static(b"file_name,outcome\r\n")) }).chain(
                        stream::once(async {
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            Err(StreamError::Csv(csv::Error::from(std::io::Error::other(
                                "the database went away",
                            ))))
                        }),
                    );
                let log = LogOf {
                    district: "d".into(),
                    job_id: "j".into(),
                };
                Body::from_stream(logged(chunks, log, Format::Csv))
            }),
        );
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let mut client = tokio::net::TcpStream::connect(addr).await?;
        client
            .write_all(b"GET /log HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        // The server closes the connection when the body fails; a reset is as good.
        let _ = client.read_to_end(&mut response).await;
        server.abort();
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.contains("transfer-encoding: chunked"),
            "{response}"
        );
        assert!(response.contains("file_name,outcome"), "{response}");
        assert!(!response.ends_with("0\r\n\r\n"), "{response}");
        Ok(())
    }
}
