//! The roster service: owns people and their photos (`db`), imports rosters in the background
//! (`imports`, `imports_api`), creates districts and their tokens
//! (in `pictureday-access`), answers lookups for the matcher, applies processed photos (or
//! records what a preview would do, and applies it on request: `preview`) and serves photos and
//! reports.

mod api;
mod apply;
pub mod db;
mod import;
mod imports;
mod imports_api;
mod inactive_retention;
mod lookup;
pub mod matching;
pub mod openapi;
mod person_fields;
mod person_photos;
mod photo_links;
mod placeholder;
mod placement;
mod policy;
mod preview;
mod preview_expiry;
mod rendition_objects;
mod reports;
pub mod roster_csv;
mod schools_api;
mod sftp_imports;
pub mod sources;
mod tokens;
mod undo;
mod visibility;

use std::sync::Arc;

use anyhow::Context as _;

use pictureday_access::Auth;
use pictureday_platform::Connections;
use pictureday_platform::runtime::{Component, Dependency};
use pictureday_platform::stage;
use tokio_util::sync::CancellationToken;

pub async fn component(
    connections: &Connections,
    shutdown: &CancellationToken,
) -> anyhow::Result<Component> {
    let db = connections
        .migrated_database::<db::Migrator>("roster")
        .await?;
    let auth = Auth::open(db.clone(), connections.settings().operator_token()?).await?;
    let storage = connections.storage().await?;
    let links = photo_links::PhotoLinksState {
        db: db.clone(),
        storage: storage.clone(),
        auth: auth.clone(),
        placeholders: Arc::new(placeholder::Placeholders::render()?),
        keys: photo_links::LinkKeys::from_settings(
            connections.settings().api.photo_link_keys(),
            connections.settings().operator_token()?,
        )?,
        public_url: connections.settings().api.public_url.clone(),
    };
    let tokens_auth = auth.clone();
    let schools_auth = auth.clone();
    let person_photos = person_photos::PersonPhotosState {
        db: db.clone(),
        storage: storage.clone(),
        bus: connections.bus().await?,
        auth: auth.clone(),
    };
    let bus = connections.bus().await?;
    let previews = preview::PreviewState {
        db: db.clone(),
        bus: bus.clone(),
        auth: auth.clone(),
        preview_ttl: connections.settings().preview_ttl,
    };
    let settings = connections.settings();
    // Roster uploads are spooled beside ingest's, or in the system's temporary directory when
    // no spool directory is set (a roster service of its own on S3).
    let spool = settings
        .spool_dir()
        .map(|dir| dir.join("rosters"))
        .unwrap_or_else(|_| std::env::temp_dir().join("pictureday-rosters"));
    tokio::fs::create_dir_all(&spool)
        .await
        .with_context(|| format!("creating the roster spool directory {}", spool.display()))?;
    let imports = imports::Imports::new(db.clone(), storage.clone(), spool);
    let state = api::RosterState {
        db: db.clone(),
        storage: storage.clone(),
        auth,
        placeholders: Arc::new(placeholder::Placeholders::render()?),
        imports: imports.clone(),
        roster_wait: settings.api.roster_wait,
    };
    let apply = Arc::new(apply::Apply {
        db: db.clone(),
        bus: bus.clone(),
    });
    let expiry = preview_expiry::PreviewExpiry {
        db: db.clone(),
        storage: storage.clone(),
        bus: bus.clone(),
        preview_ttl: connections.settings().preview_ttl,
        check_every: connections.settings().retention.check_every,
    };
    let clever_schedule =
        sources::clever::schedule::Schedule::new(Arc::new(sources::clever::sync::Syncer {
            db: db.clone(),
            publisher: bus.publisher.clone(),
            keys: Arc::new(sources::secret::SecretKey::from_settings(
                settings.api.secrets_key(),
                settings.operator_token()?,
            )?),
            pacing: Default::default(),
        }));
    let clever = sources::clever::api::CleverState {
        db: db.clone(),
        auth: state.auth.clone(),
        schedule: clever_schedule.clone(),
        default_interval: settings.api.clever_interval,
    };
    let clever_stop = shutdown.clone();
    let inactive = inactive_retention::InactiveRetention {
        photos: person_photos.clone(),
        keep: settings.retention.inactive_photos,
        check_every: settings.retention.check_every,
    };
    let inactive_stop = shutdown.clone();
    let expiry_stop = shutdown.clone();
    let apply_stop = shutdown.clone();
    let imports_stop = shutdown.clone();
    let (sftp_nats, sftp_imports, sftp_stop) =
        (bus.nats.clone(), imports.clone(), shutdown.clone());
    let (lookup_nats, lookup_db, lookup_stop) = (bus.nats.clone(), db.clone(), shutdown.clone());
    Ok(Component::new("roster")
        .routes(api::router(state))
        .routes(preview::router(previews))
        .routes(tokens::router(tokens_auth))
        .routes(photo_links::router(links))
        .routes(person_photos::router(person_photos.clone()))
        .routes(undo::router(person_photos))
        .routes(sources::clever::api::router(clever))
        .routes(schools_api::router(schools_api::SchoolsState {
            db: db.clone(),
            auth: schools_auth,
        }))
        .worker("apply", move || {
            let (apply, shutdown) = (apply.clone(), apply_stop.clone());
            async move { stage::run_batched(&*apply, &apply.bus, apply::MAX_BATCH, shutdown).await }
        })
        .worker("roster-imports", move || {
            imports.clone().run(imports_stop.clone())
        })
        .worker("sftp-imports", move || {
            sftp_imports::serve(sftp_nats.clone(), sftp_imports.clone(), sftp_stop.clone())
        })
        .worker("lookup", move || {
            lookup::serve(lookup_nats.clone(), lookup_db.clone(), lookup_stop.clone())
        })
        .worker("clever-sync", move || {
            clever_schedule.clone().run(clever_stop.clone())
        })
        .worker("inactive-retention", move || {
            inactive_retention::run(inactive.clone(), inactive_stop.clone())
        })
        .worker("preview-expiry", move || {
            preview_expiry::run(expiry.clone(), expiry_stop.clone())
        })
        .depends_on(Dependency::Nats(bus))
        .depends_on(Dependency::Database(db))
        .depends_on(Dependency::Storage(storage)))
}
