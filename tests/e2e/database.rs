//! The database layer on each backend: services starting together migrate once, and write
//! transactions that read, decide and write never lose each other's updates.

use std::time::Duration;

use chrono::Utc;
use pictureday_shared::db::{self, entities::job_status};
use pictureday_tests::{Backend, PostgresServer};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};

on_each_backend!(
    services_starting_together_migrate_once,
    write_transactions_take_turns
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

async fn services_starting_together_migrate_once(backend: Backend) -> anyhow::Result<()> {
    let (url, _keep) = database(backend).await?;
    // SQLite is migrated by the one process that owns it; on PostgreSQL every service may start
    // at once.
    let starting = if backend == Backend::PostgresS3 { 5 } else { 1 };
    let connections =
        futures::future::try_join_all((0..starting).map(|_| db::connect(&url))).await?;
    for connection in connections {
        assert!(
            job_status::Entity::find()
                .all(&connection)
                .await?
                .is_empty()
        );
    }
    // And again, on an up-to-date schema.
    db::connect(&url).await?;
    Ok(())
}

async fn write_transactions_take_turns(backend: Backend) -> anyhow::Result<()> {
    const WRITERS: i32 = 12;
    let (url, _keep) = database(backend).await?;
    let conn = db::connect(&url).await?;
    let now = Utc::now();
    job_status::ActiveModel {
        job_id: Set("job".into()),
        district_id: Set("d".into()),
        state: Set("queued".into()),
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
    }
    .insert(&conn)
    .await?;
    let writers = (0..WRITERS).map(|_| {
        let conn = conn.clone();
        tokio::spawn(async move {
            let txn = db::begin_write(&conn).await?;
            let job = job_status::Entity::find_by_id("job")
                .one(&txn)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no job"))?;
            // Another writer would read the same count here, were it not waiting its turn.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let matched = job.matched + 1;
            let mut job = job.into_active_model();
            job.matched = Set(matched);
            job.update(&txn).await?;
            txn.commit().await?;
            anyhow::Ok(())
        })
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
