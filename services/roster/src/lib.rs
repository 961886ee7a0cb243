//! The roster service: owns districts, people and their photos; answers lookups for the matcher;
//! applies processed photos; serves photos and reports.

mod api;
mod apply;
mod import;
mod lookup;
mod placeholder;
pub mod roster_csv;

use std::sync::Arc;

use pictureday_shared::Context;
use pictureday_shared::runtime::Component;
use tokio_util::sync::CancellationToken;

pub fn component(ctx: &Context, shutdown: &CancellationToken) -> anyhow::Result<Component> {
    let placeholders = Arc::new(placeholder::Placeholders::render()?);
    let state = api::RosterState {
        ctx: ctx.clone(),
        placeholders,
    };
    let (apply_ctx, apply_stop) = (ctx.clone(), shutdown.clone());
    let (lookup_ctx, lookup_stop) = (ctx.clone(), shutdown.clone());
    Ok(Component::new("roster")
        .routes(api::router(state))
        .worker("apply", move || {
            apply::run(apply_ctx.clone(), apply_stop.clone())
        })
        .worker("lookup", move || {
            lookup::serve(lookup_ctx.clone(), lookup_stop.clone())
        }))
}
