//! Running services: one HTTP listener for the routes of every component it hosts (one in
//! distributed mode, all five in the embedded default), their background workers, health
//! endpoints and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::future::BoxFuture;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::Connections;
use crate::bus::Bus;
use crate::storage::Storage;

/// A background loop; it is started again after a failure until shutdown.
pub type WorkerFn = Box<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// Something a component cannot work without; `/readyz` fails while it does not answer.
// A handful are made at start: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Dependency {
    Nats(Bus),
    Database(DatabaseConnection),
    Storage(Storage),
}

impl Dependency {
    fn name(&self) -> &'static str {
        match self {
            Dependency::Nats(_) => "nats",
            Dependency::Database(_) => "database",
            Dependency::Storage(_) => "storage",
        }
    }

    async fn check(&self) -> Result<(), String> {
        match self {
            Dependency::Nats(bus) => bus.probe().await,
            Dependency::Database(db) => {
                if crate::db::ping(db).await {
                    Ok(())
                } else {
                    Err("does not answer".into())
                }
            }
            Dependency::Storage(storage) => storage.probe().await,
        }
    }
}

/// One service's part in a process: its HTTP routes, its background workers and what it
/// depends on.
pub struct Component {
    pub name: &'static str,
    pub router: Router,
    pub workers: Vec<(&'static str, WorkerFn)>,
    pub dependencies: Vec<Dependency>,
}

impl Component {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            router: Router::new(),
            workers: Vec::new(),
            dependencies: Vec::new(),
        }
    }

    pub fn routes(mut self, router: Router) -> Self {
        self.router = self.router.merge(router);
        self
    }

    pub fn worker<F, Fut>(mut self, name: &'static str, make: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.workers
            .push((name, Box::new(move || Box::pin(make()))));
        self
    }

    /// Readiness reports `dependency`.
    pub fn depends_on(mut self, dependency: Dependency) -> Self {
        self.dependencies.push(dependency);
        self
    }
}

/// Serves `components` on `listener` until `shutdown` is cancelled, then lets in-flight requests
/// and work finish.
pub async fn serve(
    connections: &Connections,
    listener: TcpListener,
    components: Vec<Component>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut dependencies: Vec<Dependency> = Vec::new();
    for component in &components {
        for dependency in &component.dependencies {
            // One check per kind: a process hosting several components shares one connection.
            if !dependencies.iter().any(|d| d.name() == dependency.name()) {
                dependencies.push(dependency.clone());
            }
        }
    }
    let mut router = Router::new()
        .route("/healthz", get(crate::openapi::healthz))
        .route("/readyz", get(ready).with_state(Arc::new(dependencies)));
    let mut workers = JoinSet::new();
    for component in components {
        router = router.merge(component.router);
        for (name, make) in component.workers {
            let shutdown = shutdown.clone();
            let component_name = component.name;
            workers.spawn(supervise(component_name, name, make, shutdown));
        }
    }
    let limits = connections.settings().http.clone();
    let served = crate::http_server::serve_router(listener, router, limits, shutdown.clone()).await;
    // The server only returns on shutdown or failure; make sure workers stop too.
    shutdown.cancel();
    while workers.join_next().await.is_some() {}
    if let Some(bus) = connections.connected_bus() {
        // Send what was published but not yet sent, then close subscriptions and the connection.
        if let Err(error) = bus.nats.flush().await {
            tracing::warn!(%error, "flushing NATS at shutdown");
        }
        drain_nats(&bus.nats).await;
    }
    served?;
    Ok(())
}

/// How long shutdown waits for the NATS connection to drain.
const DRAIN_PATIENCE: Duration = Duration::from_secs(5);

async fn drain_nats(nats: &async_nats::Client) {
    if let Err(error) = nats.drain().await {
        tracing::warn!(%error, "draining NATS at shutdown");
        return;
    }
    // The client closes once drained, after which every command (a flush among them) fails.
    let deadline = tokio::time::Instant::now() + DRAIN_PATIENCE;
    while nats.flush().await.is_ok() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn supervise(
    component: &'static str,
    name: &'static str,
    make: WorkerFn,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        match make().await {
            Ok(()) => {
                if !shutdown.is_cancelled() {
                    tracing::warn!(component, worker = name, "worker stopped; restarting");
                }
            }
            Err(error) => {
                tracing::error!(
                    component,
                    worker = name,
                    error = format!("{error:#}"),
                    "worker failed; restarting"
                );
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// 200 when every dependency of the hosted components answers; 503 naming those that do not.
async fn ready(State(dependencies): State<Arc<Vec<Dependency>>>) -> (StatusCode, String) {
    let checks = dependencies.iter().map(|d| async move {
        match d.check().await {
            Ok(()) => None,
            Err(problem) => Some(format!("{} unavailable: {problem}", d.name())),
        }
    });
    let problems: Vec<String> = futures::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect();
    if problems.is_empty() {
        (StatusCode::OK, "ready".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("; "))
    }
}

/// Cancels the token on ctrl-c or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(error) => {
                        tracing::error!(%error, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        token.cancel();
    });
}

/// Flags of a service binary running on its own (distributed mode).
#[derive(Debug, clap::Parser)]
pub struct ServiceArgs {
    /// Address for this service's HTTP API and health endpoints.
    #[arg(long, env = "PICTUREDAY_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: std::net::SocketAddr,

    #[command(flatten)]
    pub http: crate::http_limits::HttpArgs,

    #[command(flatten)]
    pub common: crate::config::CommonArgs,
}

/// Builds a service's component from the process's connections.
pub type BuildFn =
    for<'a> fn(&'a Connections, &'a CancellationToken) -> BoxFuture<'a, anyhow::Result<Component>>;

/// The whole of a service binary's `main`: settings (flags, environment, settings file),
/// connections, signals, serve.
pub async fn run_service(service_name: &str, build: BuildFn) -> anyhow::Result<()> {
    let args: ServiceArgs = crate::config_file::parse_args()?;
    crate::telemetry::init(service_name);
    let settings = crate::config::Settings::from_args(&args.common)?.with_http(&args.http)?;
    let connections = Connections::new(settings);
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let component = build(&connections, &shutdown).await?;
    let listener = TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %args.listen, "serving");
    let served = serve(&connections, listener, vec![component], shutdown).await;
    crate::telemetry::shutdown();
    served
}
