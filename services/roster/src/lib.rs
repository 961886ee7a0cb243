//! The roster service: owns people and their photos (`db`), creates districts and their tokens
//! (in `pictureday-access`), answers lookups for the matcher, applies processed photos (or
//! records what a preview would do, and applies it on request: `preview`) and serves photos and
//! reports.

mod api;
mod apply;
pub mod db;
mod import;
mod lookup;
pub mod matching;
mod placeholder;
mod placement;
mod policy;
mod preview;
mod reports;
pub mod roster_csv;

use std::sync::Arc;

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
    let bus = connections.bus().await?;
    let previews = preview::PreviewState {
        db: db.clone(),
        bus: bus.clone(),
        auth: auth.clone(),
        preview_ttl: connections.settings().preview_ttl,
    };
    let state = api::RosterState {
        db: db.clone(),
        storage: storage.clone(),
        auth,
        placeholders: Arc::new(placeholder::Placeholders::render()?),
    };
    let apply = Arc::new(apply::Apply {
        db: db.clone(),
        bus: bus.clone(),
    });
    let apply_stop = shutdown.clone();
    let (lookup_nats, lookup_db, lookup_stop) = (bus.nats.clone(), db.clone(), shutdown.clone());
    Ok(Component::new("roster")
        .routes(api::router(state))
        .routes(preview::router(previews))
        .worker("apply", move || {
            let (apply, shutdown) = (apply.clone(), apply_stop.clone());
            async move { stage::run_batched(&*apply, &apply.bus, apply::MAX_BATCH, shutdown).await }
        })
        .worker("lookup", move || {
            lookup::serve(lookup_nats.clone(), lookup_db.clone(), lookup_stop.clone())
        })
        .depends_on(Dependency::Nats(bus))
        .depends_on(Dependency::Database(db))
        .depends_on(Dependency::Storage(storage)))
}
