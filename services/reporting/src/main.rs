#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pictureday_platform::runtime::run_service("pictureday-reporting", |connections, shutdown| {
        Box::pin(pictureday_reporting::component(connections, shutdown))
    })
    .await
}
