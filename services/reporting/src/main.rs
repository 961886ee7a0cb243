use clap::Parser;
use pictureday_shared::runtime::{ServiceArgs, run_service};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run_service(
        "pictureday-reporting",
        ServiceArgs::parse(),
        pictureday_reporting::component,
    )
    .await
}
