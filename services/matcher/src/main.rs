use clap::Parser;
use pictureday_shared::runtime::{ServiceArgs, run_service};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run_service(
        "pictureday-matcher",
        ServiceArgs::parse(),
        pictureday_matcher::component,
    )
    .await
}
