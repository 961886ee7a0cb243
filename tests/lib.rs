//! Test support: a real Pictureday (all five services in one process, split behind the gateway,
//! or with the image stage as separate processes) on a real nats-server and either backend — SQLite and a local directory, or PostgreSQL and S3 — driven
//! over HTTP; and photo-like test images.

pub mod bench_args;
pub mod bench_pipeline;
pub mod bench_server;
pub mod chaos;
pub mod corpus;
pub mod fake_clever;
pub mod images;
mod postgres;
mod process;
mod s3_server;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use std::sync::Arc;

use pictureday_platform::Connections;
use pictureday_platform::bus::Bus;
use pictureday_platform::config::{CommonArgs, Settings};
use pictureday_platform::nats_server::NatsServer;
use pictureday_platform::runtime::{Component, serve};
use pictureday_platform::storage::StorageConfig;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use postgres::PostgresServer;
pub use process::ServiceProcess;
pub use s3_server::S3Server;

/// Where data lives. Every end-to-end test runs on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite and a local directory: the embedded default.
    Embedded,
    /// PostgreSQL and an S3 bucket, as in production, each a real server on loopback.
    PostgresS3,
}

/// The servers behind [`Backend::PostgresS3`], one pair per test, stopped when dropped.
struct ProductionServers {
    database_url: String,
    s3: S3Server,
    _postgres: PostgresServer,
}

impl ProductionServers {
    async fn start() -> anyhow::Result<Self> {
        let (postgres, s3) = tokio::try_join!(PostgresServer::start(), S3Server::start())?;
        Ok(Self {
            database_url: postgres.create_database().await?,
            s3,
            _postgres: postgres,
        })
    }
}

/// A port free on loopback now (a server started right after will almost surely get it).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Under this prefix of the bucket, so keys are seen to stay beneath it.
const S3_PREFIX: &str = "pictureday";

/// HTTP calls to a running Pictureday, as an integrator makes them.
#[derive(Clone)]
pub struct TestClient {
    pub base_url: String,
    pub operator_token: String,
    pub http: reqwest::Client,
}

pub struct TestApp {
    /// The app's API (a `TestApp` is used as one: it dereferences to it).
    pub client: TestClient,
    pub nats_url: String,
    /// The connections the app's services share (database, storage, bus).
    pub connections: Arc<Connections>,
    /// The app's bus, for tests that look at streams and consumers.
    pub bus: Bus,
    pub dir: tempfile::TempDir,
    settings: Settings,
    shutdown: CancellationToken,
    servers: Vec<JoinHandle<anyhow::Result<()>>>,
    /// Services served on their own (behind the gateway), by name.
    separate: std::collections::BTreeMap<&'static str, SeparateService>,
    /// Extra replicas of roster and reporting.
    replicas: Vec<SeparateService>,
    nats: Option<NatsServer>,
    production: Option<ProductionServers>,
}

/// A service on its own address with its own connections, as its own process would be, so a
/// test can stop it and start it again.
struct SeparateService {
    addr: std::net::SocketAddr,
    stop: CancellationToken,
    /// `None` once stopped.
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The services with an HTTP API of their own.
const HTTP_SERVICES: [&str; 3] = ["ingest", "roster", "reporting"];

async fn http_service(
    name: &str,
    connections: &Connections,
    shutdown: &CancellationToken,
) -> anyhow::Result<Component> {
    match name {
        "ingest" => pictureday_ingest::component(connections, shutdown).await,
        "roster" => pictureday_roster::component(connections, shutdown).await,
        "reporting" => pictureday_reporting::component(connections, shutdown).await,
        other => bail!("{other} has no API of its own"),
    }
}

impl SeparateService {
    /// Builds the service on connections of its own and serves it on `addr` (0: a free port).
    async fn start(
        name: &'static str,
        settings: &Settings,
        addr: std::net::SocketAddr,
        parent: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let connections = Arc::new(Connections::new(settings.clone()));
        let stop = parent.child_token();
        let component = http_service(name, &connections, &stop).await?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let server = spawn_server(connections, listener, vec![component], stop.clone());
        Ok(Self {
            addr,
            stop,
            server: Some(server),
        })
    }
}

pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789abcdef";

fn settings(
    dir: &std::path::Path,
    production: Option<&ProductionServers>,
    nats_url: &str,
    instance: &str,
    image_workers: usize,
    layout: &AppLayout,
) -> anyhow::Result<Settings> {
    let ack_wait_secs = layout.ack_wait_secs;
    let args = CommonArgs {
        config: None,
        database_url: None,
        nats_url: None,
        storage: None,
        s3_force_path_style: Some(true),
        operator_token: None,
        spool_dir: production.map(|_| dir.join("spool")),
        image_workers: Some(image_workers),
        instance: Some(instance.into()),
        ack_wait_secs,
        nats_replicas: None,
        job_deadline_secs: layout.job_deadline_secs,
        stall_after_secs: layout.stall_after_secs,
        preview_ttl_secs: layout.preview_ttl_secs,
        photos: layout.photos.clone(),
        retention: layout.retention.clone(),
        webhooks: layout.webhooks.clone(),
        api: Default::default(),
        sftp: layout.sftp.clone(),
    };
    let Some(servers) = production else {
        return Ok(Settings::build(
            &args,
            Some(format!(
                "sqlite://{}?mode=rwc",
                dir.join("pictureday.db").display()
            )),
            nats_url.to_owned(),
            Some(&dir.join("photos").display().to_string()),
            Some(OPERATOR_TOKEN.to_owned()),
        )?);
    };
    let mut s3 = match StorageConfig::parse(&format!("s3://{}/{S3_PREFIX}", s3_server::BUCKET)) {
        Ok(StorageConfig::S3(s3)) => s3,
        other => bail!("not an S3 setting: {other:?}"),
    };
    // What AWS_ENDPOINT_URL, AWS_REGION and AWS_ACCESS_KEY_ID/… would say, without changing this
    // process's environment under other tests.
    s3.force_path_style = true;
    s3.endpoint_url = Some(servers.s3.endpoint.clone());
    s3.region = Some("us-east-1".into());
    s3.credentials = Some(servers.s3.credentials());
    Ok(Settings::build_with_storage(
        &args,
        Some(servers.database_url.clone()),
        nats_url.to_owned(),
        StorageConfig::S3(s3),
        Some(OPERATOR_TOKEN.to_owned()),
    )?)
}

/// How a test's Pictureday is put together.
#[derive(Debug, Clone, Default)]
pub struct AppLayout {
    /// Leave the image-processor out of the main instance: the test runs it as processes
    /// ([`TestApp::spawn_image_processor`]).
    pub without_image_processor: bool,
    /// The consumers' ack wait, when the test needs redelivery sooner than production's.
    pub ack_wait_secs: Option<u64>,
    /// Serve ingest, roster and reporting each on its own address, as when deployed separately,
    /// with the gateway in front: the app's base URL is the gateway's.
    pub behind_gateway: bool,
    /// `PICTUREDAY_JOB_DEADLINE_SECS`, when a test needs jobs to fail sooner than a day.
    pub job_deadline_secs: Option<u64>,
    /// `PICTUREDAY_STALL_AFTER_SECS`, when a test needs lost files replayed sooner.
    pub stall_after_secs: Option<u64>,
    /// `PICTUREDAY_PREVIEW_TTL_SECS`, when a test needs previews to expire sooner than 72 hours.
    pub preview_ttl_secs: Option<u64>,
    /// Replicas of roster and reporting beyond the first, each with connections of its own (as
    /// its own process would have), sharing their consumers with the first.
    pub extra_replicas: usize,
    /// Upload and photo limits (`PICTUREDAY_MAX_UPLOAD_BYTES`, …), when a test needs them lower.
    pub photos: pictureday_platform::config::PhotoArgs,
    /// How long originals are kept (`PICTUREDAY_ORIGINALS_RETENTION_DAYS`, …).
    pub retention: pictureday_platform::config::RetentionArgs,
    /// The HTTP listeners' limits (`PICTUREDAY_HTTP_*`), when a test needs them small.
    pub http_limits: Option<pictureday_platform::http_limits::HttpLimits>,
    /// Webhook delivery and event stream settings (`PICTUREDAY_WEBHOOK_*`, …): tests allow
    /// loopback receivers and shorten the retry schedule.
    pub webhooks: pictureday_platform::config::WebhookArgs,
    /// The SFTP server (`PICTUREDAY_SFTP_*`): off unless a test listens (on port 0).
    pub sftp: pictureday_platform::config::SftpArgs,
}

impl TestApp {
    /// All five services in one process, as the embedded default runs them.
    pub async fn spawn(backend: Backend) -> anyhow::Result<Self> {
        Self::spawn_with(backend, AppLayout::default()).await
    }

    pub async fn spawn_with(backend: Backend, layout: AppLayout) -> anyhow::Result<Self> {
        pictureday_platform::telemetry::init("pictureday-tests");
        let dir = tempfile::tempdir()?;
        let production = match backend {
            Backend::Embedded => None,
            Backend::PostgresS3 => Some(ProductionServers::start().await?),
        };
        let nats = NatsServer::start(&dir.path().join("nats")).await?;
        let nats_url = nats.url().to_owned();
        let mut main_settings = settings(
            dir.path(),
            production.as_ref(),
            &nats_url,
            "main",
            2,
            &layout,
        )?;
        if let Some(limits) = &layout.http_limits {
            main_settings.http = limits.clone();
        }
        let connections = Arc::new(Connections::new(main_settings));
        let settings = connections.settings().as_ref().clone();
        let bus = connections.bus().await?;
        let shutdown = CancellationToken::new();
        let mut servers = Vec::new();
        let mut separate = std::collections::BTreeMap::new();
        let base_url = if layout.behind_gateway {
            let mut workers = vec![pictureday_matcher::component(&connections, &shutdown).await?];
            if !layout.without_image_processor {
                workers.push(pictureday_image_processor::component(&connections, &shutdown).await?);
            }
            for name in HTTP_SERVICES {
                let service =
                    SeparateService::start(name, &settings, ([127, 0, 0, 1], 0).into(), &shutdown)
                        .await?;
                separate.insert(name, service);
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            servers.push(spawn_server(
                connections.clone(),
                listener,
                workers,
                shutdown.clone(),
            ));
            let upstream = |name: &str| {
                separate
                    .get(name)
                    .map(|s: &SeparateService| format!("http://{}", s.addr))
                    .unwrap_or_default()
            };
            let upstreams = pictureday::gateway::Upstreams {
                ingest: upstream("ingest"),
                roster: upstream("roster"),
                reporting: upstream("reporting"),
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            // The gateway serves the console, as a distributed deployment's does.
            let console = pictureday_console::Console::new(&url, settings.operator_token()?, None)?;
            servers.push(tokio::spawn(pictureday::gateway::serve_with_console(
                listener,
                upstreams,
                pictureday_platform::http_limits::HttpLimits::default(),
                Some(console),
                shutdown.clone(),
            )));
            url
        } else {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            let mut components = pictureday::all_components(&connections, &shutdown, &url).await?;
            if layout.without_image_processor {
                components.retain(|c| c.name != "image-processor");
            }
            servers.push(spawn_server(
                connections.clone(),
                listener,
                components,
                shutdown.clone(),
            ));
            url
        };
        let mut replicas = Vec::new();
        for _ in 0..layout.extra_replicas {
            for name in ["roster", "reporting"] {
                replicas.push(
                    SeparateService::start(name, &settings, ([127, 0, 0, 1], 0).into(), &shutdown)
                        .await?,
                );
            }
        }
        let app = Self {
            settings,
            separate,
            replicas,
            client: TestClient::new(&base_url, OPERATOR_TOKEN),
            nats_url,
            connections,
            bus,
            dir,
            shutdown,
            servers,
            nats: Some(nats),
            production,
        };
        app.wait_ready().await?;
        Ok(app)
    }

    /// Starts `binary` (the image-processor's `main`, which a test names with
    /// `env!("CARGO_BIN_EXE_image-processor-under-test")`) as its own process, configured by
    /// environment variables as an operator would, on this app's NATS, database and storage.
    pub async fn spawn_image_processor(
        &self,
        binary: &str,
        instance: &str,
    ) -> anyhow::Result<ServiceProcess> {
        let settings = self.connections.settings();
        // No database and no operator token: the image-processor uses neither.
        let mut env = vec![
            ("NATS_URL".to_owned(), settings.nats_url.clone()),
            ("PICTUREDAY_INSTANCE".to_owned(), instance.to_owned()),
            ("PICTUREDAY_IMAGE_WORKERS".to_owned(), "1".to_owned()),
            (
                "PICTUREDAY_SPOOL_DIR".to_owned(),
                self.dir
                    .path()
                    .join(format!("spool-{instance}"))
                    .display()
                    .to_string(),
            ),
            (
                "PICTUREDAY_ACK_WAIT_SECS".to_owned(),
                settings.topology.ack_wait.as_secs().to_string(),
            ),
        ];
        if let Ok(binary) = std::env::var(pictureday_platform::nats_server::BINARY_ENV) {
            env.push((
                pictureday_platform::nats_server::BINARY_ENV.to_owned(),
                binary,
            ));
        }
        match settings.storage()? {
            StorageConfig::Local { root } => {
                env.push(("PICTUREDAY_STORAGE".to_owned(), root.display().to_string()));
            }
            StorageConfig::S3(s3) => {
                let servers = self
                    .production
                    .as_ref()
                    .context("S3 storage without the test's S3 server")?;
                env.extend([
                    (
                        "PICTUREDAY_STORAGE".to_owned(),
                        format!("s3://{}/{}", s3.bucket, s3.prefix),
                    ),
                    (
                        "PICTUREDAY_S3_FORCE_PATH_STYLE".to_owned(),
                        "true".to_owned(),
                    ),
                    ("AWS_ENDPOINT_URL".to_owned(), servers.s3.endpoint.clone()),
                    ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
                    (
                        "AWS_ACCESS_KEY_ID".to_owned(),
                        s3_server::ACCESS_KEY.to_owned(),
                    ),
                    (
                        "AWS_SECRET_ACCESS_KEY".to_owned(),
                        s3_server::SECRET_KEY.to_owned(),
                    ),
                ]);
            }
        }
        ServiceProcess::start(binary, instance, env, self.dir.path()).await
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        for _ in 0..100 {
            if let Ok(r) = self
                .http
                .get(format!("{}/readyz", self.base_url))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the app did not become ready")
    }

    /// The directory holding stored objects, one file per key: the local store's root, or the
    /// S3 server's files for the configured prefix.
    pub fn storage_root(&self) -> PathBuf {
        match &self.production {
            None => self.dir.path().join("photos"),
            Some(servers) => servers.s3.bucket_dir().join(S3_PREFIX),
        }
    }

    /// Stops a service served on its own (behind the gateway), as if its process stopped.
    pub async fn stop_service(&mut self, name: &str) -> anyhow::Result<()> {
        let service = self
            .separate
            .get_mut(name)
            .with_context(|| format!("{name} is not served on its own"))?;
        service.stop.cancel();
        if let Some(server) = service.server.take() {
            server.await??;
        }
        Ok(())
    }

    /// Starts a stopped service again, on its old address and with new connections.
    pub async fn start_service(&mut self, name: &'static str) -> anyhow::Result<()> {
        let addr = self
            .separate
            .get(name)
            .with_context(|| format!("{name} is not served on its own"))?
            .addr;
        let service = SeparateService::start(name, &self.settings, addr, &self.shutdown).await?;
        self.separate.insert(name, service);
        Ok(())
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        for server in self.servers.drain(..) {
            server.await??;
        }
        let separate = std::mem::take(&mut self.separate).into_values();
        for service in separate.chain(std::mem::take(&mut self.replicas)) {
            if let Some(server) = service.server {
                server.await??;
            }
        }
        if let Some(nats) = self.nats.take() {
            nats.stop().await;
        }
        drop(self.production.take());
        Ok(())
    }
}

impl std::ops::Deref for TestApp {
    type Target = TestClient;
    fn deref(&self) -> &TestClient {
        &self.client
    }
}

impl TestClient {
    pub fn new(base_url: &str, operator_token: &str) -> Self {
        Self {
            base_url: base_url.to_owned(),
            operator_token: operator_token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn get(&self, token: &str, path: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await?)
    }

    pub async fn get_json(&self, token: &str, path: &str) -> anyhow::Result<Value> {
        let response = self.get(token, path).await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {body}");
        }
        Ok(body)
    }

    /// Creates a district and returns a token for it.
    pub async fn create_district(&self, id: &str, name: &str) -> anyhow::Result<String> {
        let created = self
            .http
            .post(self.url("/v1/districts"))
            .bearer_auth(&self.operator_token)
            .json(&json!({ "id": id, "name": name }))
            .send()
            .await?;
        anyhow::ensure!(
            created.status() == 201,
            "create district: {}",
            created.status()
        );
        let token: Value = self
            .http
            .post(self.url(&format!("/v1/districts/{id}/tokens")))
            .bearer_auth(&self.operator_token)
            .send()
            .await?
            .json()
            .await?;
        token["token"]
            .as_str()
            .map(str::to_owned)
            .context("no token in response")
    }

    pub async fn upload_roster(
        &self,
        token: &str,
        district: &str,
        csv: &str,
    ) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(self.url(&format!("/v1/districts/{district}/roster")))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(csv.to_owned())
            .send()
            .await?;
        Ok((response.status().as_u16(), response.json().await?))
    }

    /// Posts an import form; returns the status and body.
    pub async fn import(
        &self,
        token: &str,
        district: &str,
        form: Form,
    ) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(self.url(&format!("/v1/districts/{district}/imports")))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await?;
        Ok((response.status().as_u16(), response.json().await?))
    }

    /// A roster of `count` students numbered 0.. (student number `n`, SIS id `S<n>`).
    pub async fn upload_numbered_roster(
        &self,
        token: &str,
        district: &str,
        count: u32,
    ) -> anyhow::Result<()> {
        let mut roster = String::from("role,sis_id,student_number,first_name,last_name\n");
        for n in 0..count {
            roster.push_str(&format!("student,S{n},{n},First{n},Last{n}\n"));
        }
        let (status, body) = self.upload_roster(token, district, &roster).await?;
        anyhow::ensure!(status == 200, "roster upload: {status}: {body}");
        Ok(())
    }

    /// Imports a zip of `count` photos named `<n>.jpg`, one per numbered student; returns the
    /// job id.
    pub async fn import_numbered_photos(
        &self,
        token: &str,
        district: &str,
        count: u32,
        (width, height): (u32, u32),
    ) -> anyhow::Result<String> {
        let mut entries = Vec::new();
        for n in 0..count {
            entries.push((
                format!("{n}.jpg"),
                images::jpeg(images::photo(width, height, n))?,
            ));
        }
        let entries: Vec<(&str, Vec<u8>)> = entries
            .iter()
            .map(|(n, b)| (n.as_str(), b.clone()))
            .collect();
        self.import_archive(token, district, zip_of(&entries)?)
            .await
    }

    /// Imports `archive` as a zip; expects it accepted and returns the job id.
    pub async fn import_archive(
        &self,
        token: &str,
        district: &str,
        archive: Vec<u8>,
    ) -> anyhow::Result<String> {
        let (status, accepted) = self
            .import(
                token,
                district,
                Form::new().part("archive", file_part("batch.zip", archive)),
            )
            .await?;
        anyhow::ensure!(status == 202, "import: {status}: {accepted}");
        accepted["job_id"]
            .as_str()
            .map(str::to_owned)
            .context("no job_id in the import's answer")
    }

    /// Waits until the job reaches a final state (a preview's `previewed` is one until it is
    /// applied); returns its body.
    pub async fn wait_for_job(
        &self,
        token: &str,
        district: &str,
        job_id: &str,
    ) -> anyhow::Result<Value> {
        self.wait_for_job_within(token, district, job_id, Duration::from_secs(120))
            .await
    }

    /// As [`TestClient::wait_for_job`], for at most `patience`.
    pub async fn wait_for_job_within(
        &self,
        token: &str,
        district: &str,
        job_id: &str,
        patience: Duration,
    ) -> anyhow::Result<Value> {
        let path = format!("/v1/districts/{district}/jobs/{job_id}");
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let response = self.get(token, &path).await?;
            // 503: a dependency is briefly unavailable (a restart); ask again.
            if response.status() == 503 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let status = response.status();
            let job: Value = response.json().await?;
            anyhow::ensure!(status.is_success(), "GET {path}: {status}: {job}");
            if matches!(
                job["state"].as_str(),
                Some("finished" | "finished_with_errors" | "failed" | "previewed")
            ) {
                return Ok(job);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("job {job_id} did not finish: {job}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The job's log as (file name, outcome, reason) rows in file order.
    pub async fn log(
        &self,
        token: &str,
        district: &str,
        job_id: &str,
    ) -> anyhow::Result<Vec<Value>> {
        let log = self
            .get_json(
                token,
                &format!("/v1/districts/{district}/jobs/{job_id}/log"),
            )
            .await?;
        Ok(log["items"].as_array().cloned().unwrap_or_default())
    }
}

fn spawn_server(
    connections: Arc<Connections>,
    listener: tokio::net::TcpListener,
    components: Vec<Component>,
    shutdown: CancellationToken,
) -> JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move { serve(&connections, listener, components, shutdown).await })
}

/// A file part of a multipart form.
pub fn file_part(name: &str, bytes: Vec<u8>) -> Part {
    Part::bytes(bytes).file_name(name.to_owned())
}

/// Builds a zip of (path, bytes) entries, deflated.
pub fn zip_of(entries: &[(&str, Vec<u8>)]) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default();
        for (name, bytes) in entries {
            zip.start_file(*name, options)?;
            zip.write_all(bytes)?;
        }
        zip.finish()?;
    }
    Ok(out.into_inner())
}

/// Every file under `root` (a store's objects, a spool), as sorted paths relative to it; none
/// when `root` does not exist.
pub fn stored_files(root: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Ok(listing) = std::fs::read_dir(&dir) else {
            continue;
        };
        for item in listing {
            let path = item?.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path.strip_prefix(root)?.display().to_string());
            }
        }
    }
    found.sort();
    Ok(found)
}
