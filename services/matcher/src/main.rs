#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pictureday_platform::runtime::run_service("pictureday-matcher", |connections, shutdown| {
        Box::pin(pictureday_matcher::component(connections, shutdown))
    })
    .await
}
