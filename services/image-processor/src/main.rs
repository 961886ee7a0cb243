#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pictureday_shared::runtime::run_service(
        "pictureday-image-processor",
        pictureday_image_processor::component,
    )
    .await
}
