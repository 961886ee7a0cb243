//! End-to-end: the real services on a real nats-server, driven over HTTP, on each backend.

/// Makes each named `async fn(Backend) -> anyhow::Result<()>` a module of two tests,
/// `<name>::on_sqlite_local` and `<name>::on_postgres_s3`, so every scenario runs on both.
macro_rules! on_each_backend {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn on_sqlite_local() -> anyhow::Result<()> {
                    super::$name(pictureday_tests::Backend::Embedded).await
                }

                #[tokio::test]
                async fn on_postgres_s3() -> anyhow::Result<()> {
                    super::$name(pictureday_tests::Backend::PostgresS3).await
                }
            }
        )+
    };
}

mod access;
mod browser;
mod bus_security;
mod chaos;
mod clever;
mod cli;
mod console;
mod corpus;
mod crashes;
mod database;
mod gateway;
mod heic;
mod hostile_input;
mod http_hardening;
mod large_mapping;
mod lifecycle;
mod matching;
mod metrics;
mod one_photo;
mod oneroster;
mod openapi;
mod pipeline;
mod previews;
mod processes;
mod recovery;
mod retention;
mod roles;
mod roster_imports;
mod sftp;
mod sftp_client;
mod sftp_restarts;
mod sse;
mod storage;
mod streaming;
mod tokens_and_links;
mod tracing;
mod undo;
mod webhooks;
