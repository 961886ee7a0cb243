#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pictureday_platform::runtime::run_service(
        "pictureday-image-processor",
        |connections, shutdown| {
            Box::pin(pictureday_image_processor::component(connections, shutdown))
        },
    )
    .await
}
