//! The database layer on each backend: every service's migrations run together and adopt a
//! database made before each service kept its own history; a job's projection is written by one
//! writer at a time while writers of other jobs, and other services, are never held up.

use std::time::Duration;

use chrono::Utc;
use pictureday_platform::db;
use pictureday_reporting::db::job_status;
use pictureday_reporting::projection::lock_job;
use pictureday_tests::{Backend, PostgresServer};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Set};

on_each_backend!(
    services_starting_together_migrate_once,
    a_jobs_writers_take_turns,
    writers_of_other_jobs_are_not_held_up,
    a_database_from_before_keeps_its_data
);

/// A database URL on the backend, and what keeps its server or file alive.
async fn database(backend: Backend) -> anyhow::Result<(String, Box<dyn std::any::Any>)> {
    Ok(match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir()?;
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("db.sqlite").display()
            );
            (url, Box::new(dir))
        }
        Backend::PostgresS3 => {
            let server = PostgresServer::start().await?;
            (server.create_database().await?, Box::new(server))
        }
    })
}

/// Every service's migrations, as the services run them at start.
async fn migrate_all(url: &str) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let conn = db::connect(url).await?;
    db::migrate::<pictureday_access::Migrator>(&conn).await?;
    db::migrate::<pictureday_ingest::db::Migrator>(&conn).await?;
    db::migrate::<pictureday_roster::db::Migrator>(&conn).await?;
    db::migrate::<pictureday_reporting::db::Migrator>(&conn).await?;
    Ok(conn)
}

async fn services_starting_together_migrate_once(backend: Backend) -> anyhow::Result<()> {
    let (url, _keep) = database(backend).await?;
    // SQLite is migrated by the one process that owns it; on PostgreSQL every service may start
    // at once.
    let starting = if backend == Backend::PostgresS3 { 5 } else { 1 };
    let connections =
        futures::future::try_join_all((0..starting).map(|_| migrate_all(&url))).await?;
    for connection in &connections {
        assert!(job_status::Entity::find().all(connection).await?.is_empty());
    }
    // Each service keeps its own migration history.
    let conn = &connections[0];
    for (table, migrations) in [
        ("seaql_migrations_access", 4),
        ("seaql_migrations_ingest", 9),
        ("seaql_migrations_roster", 6),
        ("seaql_migrations_reporting", 5),
    ] {
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await?
            .ok_or_else(|| anyhow::anyhow!("no count from {table}"))?;
        let n: i64 = row.try_get("", "n")?;
        assert_eq!(n, migrations, "{table}");
    }
    // And again, on an up-to-date schema.
    migrate_all(&url).await?;
    Ok(())
}

fn job(id: &str) -> job_status::ActiveModel {
    let now = Utc::now();
    job_status::ActiveModel {
        job_id: Set(id.into()),
        district_id: Set("d".into()),
        state: Set(pictureday_contract::events::JobState::Queued),
        created_seen: Set(false),
        files: Set(0),
        matched: Set(0),
        unmatched: Set(0),
        processed: Set(0),
        rejected: Set(0),
        applied: Set(0),
        warnings: Set("[]".into()),
        created_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
        updated_at: Set(now),
        parked: Set(0),
        replayed: Set(0),
        failure: Set(None),
        skipped: Set(0),
        previewed: Set(0),
        mode: Set(Default::default()),
        replace: Set(Default::default()),
        undo: Set(None),
    }
}

/// Adds one to the job's `matched` the way the projection does: lock, read, decide, write.
async fn count_one(
    conn: &sea_orm::DatabaseConnection,
    id: &str,
    think: Duration,
) -> anyhow::Result<()> {
    let txn = db::begin_write(conn).await?;
    lock_job(&txn, id).await?;
    let job = job_status::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no job"))?;
    // Another writer of this job would read the same count here, were it not waiting its turn.
    tokio::time::sleep(think).await;
    let matched = job.matched + 1;
    let mut job = job.into_active_model();
    job.matched = Set(matched);
    job.update(&txn).await?;
    txn.commit().await?;
    Ok(())
}

async fn a_jobs_writers_take_turns(backend: Backend) -> anyhow::Result<()> {
    const WRITERS: i32 = 12;
    let (url, _keep) = database(backend).await?;
    let conn = migrate_all(&url).await?;
    job("job").insert(&conn).await?;
    let writers = (0..WRITERS).map(|_| {
        let conn = conn.clone();
        tokio::spawn(async move { count_one(&conn, "job", Duration::from_millis(20)).await })
    });
    for writer in futures::future::join_all(writers).await {
        writer??;
    }
    let job = job_status::Entity::find_by_id("job")
        .one(&conn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no job"))?;
    assert_eq!(job.matched, WRITERS);
    Ok(())
}

/// While one transaction holds a job's lock, another job's writer and another service's
/// writer finish: nothing serialises the fleet. (SQLite has one writer at a time by design;
/// there the check is that they finish once the first commits.)
async fn writers_of_other_jobs_are_not_held_up(backend: Backend) -> anyhow::Result<()> {
    let (url, _keep) = database(backend).await?;
    let conn = migrate_all(&url).await?;
    job("slow").insert(&conn).await?;
    job("other").insert(&conn).await?;
    let hold = Duration::from_secs(3);
    let slow = {
        let conn = conn.clone();
        tokio::spawn(async move { count_one(&conn, "slow", hold).await })
    };
    // Let the slow writer take its lock.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    count_one(&conn, "other", Duration::ZERO).await?;
    let ingest_write = async {
        let txn = db::begin_write(&conn).await?;
        txn.execute_unprepared(
            "INSERT INTO districts (id, name, created_at) VALUES ('d2', 'D2', '2026-12-01T00:00:00Z')",
        )
        .await?;
        txn.commit().await?;
        anyhow::Ok(())
    };
    ingest_write.await?;
    let others_took = started.elapsed();
    slow.await??;
    if backend == Backend::PostgresS3 {
        assert!(
            others_took < hold / 2,
            "writers of another job and another table waited {others_took:?} for an unrelated lock"
        );
    }
    let other = job_status::Entity::find_by_id("other")
        .one(&conn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no job"))?;
    assert_eq!(other.matched, 1);
    Ok(())
}

/// A database made before each service kept its own migration history (one shared
/// `seaql_migrations` and the tables as they were) is adopted as it is: nothing is lost, and
/// the columns added since appear with their defaults.
async fn a_database_from_before_keeps_its_data(backend: Backend) -> anyhow::Result<()> {
    let (url, _keep) = database(backend).await?;
    let conn = db::connect(&url).await?;
    let ts = if backend == Backend::PostgresS3 {
        "timestamp with time zone"
    } else {
        "timestamp_with_timezone_text"
    };
    for statement in [
        "CREATE TABLE seaql_migrations (version varchar NOT NULL PRIMARY KEY, applied_at bigint NOT NULL)".to_owned(),
        "INSERT INTO seaql_migrations VALUES ('m20261121_000001_initial_schema', 1763700000)".to_owned(),
        format!("CREATE TABLE districts (id varchar NOT NULL PRIMARY KEY, name varchar NOT NULL, created_at {ts} NOT NULL)"),
        format!("CREATE TABLE api_tokens (token_hash varchar NOT NULL PRIMARY KEY, district_id varchar NOT NULL, created_at {ts} NOT NULL)"),
        format!("CREATE TABLE job_status (job_id varchar NOT NULL PRIMARY KEY, district_id varchar NOT NULL, state varchar NOT NULL, created_seen boolean NOT NULL, files integer NOT NULL, matched integer NOT NULL, unmatched integer NOT NULL, processed integer NOT NULL, rejected integer NOT NULL, applied integer NOT NULL, warnings text NOT NULL, created_at {ts} NOT NULL, started_at {ts}, finished_at {ts}, updated_at {ts} NOT NULL)"),
        "INSERT INTO districts VALUES ('springfield', 'Springfield', '2026-11-21T10:00:00Z')".to_owned(),
        "INSERT INTO job_status VALUES ('j1', 'springfield', 'finished', true, 2, 2, 0, 2, 0, 2, '[]', '2026-11-21T10:00:00Z', '2026-11-21T10:00:01Z', '2026-11-21T10:00:02Z', '2026-11-21T10:00:02Z')".to_owned(),
    ] {
        conn.execute_unprepared(&statement).await?;
    }
    let conn = migrate_all(&url).await?;
    let job = job_status::Entity::find_by_id("j1")
        .one(&conn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the job from before is gone"))?;
    assert_eq!(
        (job.files, job.applied, job.state.as_str()),
        (2, 2, "finished")
    );
    assert_eq!((job.parked, job.replayed, job.failure), (0, 0, None));
    let districts = pictureday_access::entities::district::Entity::find()
        .all(&conn)
        .await?;
    assert_eq!(districts.len(), 1);
    Ok(())
}
