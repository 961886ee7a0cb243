#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pictureday_platform::runtime::run_service("pictureday-ingest", |connections, shutdown| {
        Box::pin(pictureday_ingest::component(connections, shutdown))
    })
    .await
}
