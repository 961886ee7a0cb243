#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pictureday_shared::runtime::run_service("pictureday-ingest", pictureday_ingest::component).await
}
