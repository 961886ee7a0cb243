use clap::Parser;
use pictureday_shared::runtime::{ServiceArgs, run_service};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run_service(
        "pictureday-image-processor",
        ServiceArgs::parse(),
        pictureday_image_processor::component,
    )
    .await
}
