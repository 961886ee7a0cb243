//! Ingest: accepts uploads over HTTP, streams their bytes to storage, records each job and
//! publishes one event per photo file.

mod api;
pub mod archive;
mod jobs;
pub mod mapping;
mod upload;

use pictureday_shared::Context;
use pictureday_shared::runtime::Component;
use tokio_util::sync::CancellationToken;

pub fn component(ctx: &Context, shutdown: &CancellationToken) -> anyhow::Result<Component> {
    let (outbox_ctx, outbox_stop) = (ctx.clone(), shutdown.clone());
    Ok(Component::new("ingest")
        .routes(api::router(ctx.clone()))
        .worker("outbox", move || {
            jobs::run_outbox(outbox_ctx.clone(), outbox_stop.clone())
        }))
}
