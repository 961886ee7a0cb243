#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pictureday_platform::runtime::run_service("pictureday-roster", |connections, shutdown| {
        Box::pin(pictureday_roster::component(connections, shutdown))
    })
    .await
}
