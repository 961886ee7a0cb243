#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pictureday_shared::runtime::run_service("pictureday-roster", pictureday_roster::component).await
}
