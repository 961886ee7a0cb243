#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pictureday_shared::runtime::run_service("pictureday-matcher", pictureday_matcher::component)
        .await
}
