#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pictureday_shared::runtime::run_service("pictureday-reporting", pictureday_reporting::component)
        .await
}
