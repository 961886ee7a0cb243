use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use pictureday::embedded_nats::EmbeddedNats;
use pictureday_platform::config::{CommonArgs, Settings};
use pictureday_platform::http_limits::{HttpArgs, HttpLimits};
use pictureday_platform::runtime::{cancel_on_signal, serve};
use pictureday_platform::storage::StorageConfig;
use pictureday_platform::{Connections, telemetry};
use tokio_util::sync::CancellationToken;

/// Pictureday: school ID photos from upload to roster.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Runs every service in this process (the embedded default).
    Serve(ServeArgs),
    /// Serves the whole public API on one address, forwarding each request to the service
    /// that serves it (for services deployed separately).
    Gateway(GatewayArgs),
    /// Uploads a zip, a folder or photo files to a district, follows the job and saves its log.
    /// Exit code 0 when every file was applied, 2 when the job finished with errors, 1 on failure.
    Import(pictureday::cli::ImportArgs),
    /// A district's latest jobs.
    Jobs(pictureday::cli::JobsArgs),
    /// One job; `--follow` waits until it ends.
    Job(pictureday::cli::JobArgs),
    /// Who has no photo (`--csv` for the report itself).
    Missing(pictureday::cli::MissingArgs),
}

#[derive(clap::Args)]
struct GatewayArgs {
    /// Address of the public API.
    #[arg(long, env = "PICTUREDAY_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,

    /// The ingest service (imports), e.g. `http://ingest:8080`.
    #[arg(long, env = "PICTUREDAY_INGEST_URL")]
    ingest_url: String,

    /// The roster service (districts, tokens, people, photos, reports, applying previews).
    #[arg(long, env = "PICTUREDAY_ROSTER_URL")]
    roster_url: String,

    /// The reporting service (jobs and their logs).
    #[arg(long, env = "PICTUREDAY_REPORTING_URL")]
    reporting_url: String,

    /// Seals the console's sessions (the key the services share); the console is served
    /// only with it or the operator token.
    #[arg(long, env = "PICTUREDAY_SECRETS_KEY", hide_env_values = true)]
    secrets_key: Option<String>,

    #[arg(long, env = "PICTUREDAY_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,

    /// The address users reach (`https://…` makes the console's cookie Secure).
    #[arg(long, env = "PICTUREDAY_PUBLIC_URL")]
    public_url: Option<String>,

    #[command(flatten)]
    http: HttpArgs,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Where the database, photos, NATS data and the operator token live.
    #[arg(long, env = "PICTUREDAY_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,

    /// Address of the HTTP API.
    #[arg(long, env = "PICTUREDAY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    #[command(flatten)]
    http: HttpArgs,

    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli: Cli = pictureday_platform::config_file::parse_args()?;
    let client = match cli.command {
        Command::Serve(args) => {
            telemetry::init("pictureday");
            return run(args).await.map(|()| std::process::ExitCode::SUCCESS);
        }
        Command::Gateway(args) => {
            telemetry::init("pictureday");
            return gateway(args)
                .await
                .map(|()| std::process::ExitCode::SUCCESS);
        }
        Command::Import(args) => pictureday::cli::import(args).await,
        Command::Jobs(args) => pictureday::cli::jobs(args).await,
        Command::Job(args) => pictureday::cli::job(args).await,
        Command::Missing(args) => pictureday::cli::missing(args).await,
    };
    // The command line's own errors are one readable line, and exit code 1.
    Ok(match client {
        Ok(outcome) => std::process::ExitCode::from(outcome.code()),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(1)
        }
    })
}

async fn gateway(args: GatewayArgs) -> anyhow::Result<()> {
    let upstreams = pictureday::gateway::Upstreams {
        ingest: args.ingest_url,
        roster: args.roster_url,
        reporting: args.reporting_url,
    };
    let limits = HttpLimits::from_args(&args.http)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    // The console's sessions are sealed under the secrets key the services share (else the
    // operator token); without either the gateway serves the API alone.
    let console = match args
        .secrets_key
        .as_deref()
        .or(args.operator_token.as_deref())
    {
        Some(secret) => Some(pictureday_console::Console::new(
            &pictureday::local_base(listener.local_addr()?),
            secret,
            args.public_url.as_deref(),
        )?),
        None => {
            tracing::info!(
                "no console: set PICTUREDAY_SECRETS_KEY (or PICTUREDAY_OPERATOR_TOKEN) to serve it"
            );
            None
        }
    };
    tracing::info!(listen = %args.listen, console = console.is_some(), "gateway serving");
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let served =
        pictureday::gateway::serve_with_console(listener, upstreams, limits, console, shutdown)
            .await;
    telemetry::shutdown();
    served
}

const DEFAULT_SFTP_LISTEN: &str = "127.0.0.1:2222";

async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let data = &args.data_dir;
    pictureday::create_data_dir(data)?;
    let data = data.canonicalize()?;
    let (operator_token, token_made) = match &args.common.operator_token {
        Some(token) => (token.clone(), false),
        None => pictureday::operator_token(&data)?,
    };
    // Without NATS_URL the embedded default runs its own nats-server, its data beside ours.
    let (nats_url, nats_server) = match &args.common.nats_url {
        Some(url) => (url.clone(), None),
        None => {
            let server = std::sync::Arc::new(EmbeddedNats::start(&data.join("nats")).await?);
            (server.url().to_owned(), Some(server))
        }
    };
    let database_url =
        args.common.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}?mode=rwc", data.join("pictureday.db").display())
        });
    let storage = args
        .common
        .storage
        .clone()
        .unwrap_or_else(|| data.join("photos").display().to_string());
    // With S3 storage there is no directory beside the photos to spool uploads to.
    let mut common = args.common.clone();
    if common.spool_dir.is_none()
        && matches!(StorageConfig::parse(&storage), Ok(StorageConfig::S3(_)))
    {
        common.spool_dir = Some(data.join("spool"));
    }
    // The embedded default has its SFTP drop folders on, on loopback like the API.
    if common.sftp.sftp_listen.is_none() {
        common.sftp.sftp_listen = Some(DEFAULT_SFTP_LISTEN.to_owned());
    }
    let settings = Settings::build(
        &common,
        Some(database_url),
        nats_url,
        Some(&storage),
        Some(operator_token.clone()),
    )?
    .with_http(&args.http)?;
    let connections = Connections::new(settings);
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let api_base = pictureday::local_base(listener.local_addr()?);
    let components = pictureday::all_components(&connections, &shutdown, &api_base).await?;
    if let Some(server) = &nats_server {
        let (server, shutdown) = (server.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(error) = server.supervise(shutdown).await {
                tracing::error!(
                    error = format!("{error:#}"),
                    "watching the nats-server failed"
                );
            }
        });
    }
    println!("Pictureday is running at http://{}", listener.local_addr()?);
    println!(
        "Console: http://{}/console (sign in with a district token or the operator token)",
        listener.local_addr()?
    );
    // The token is shown once, when it is made: it is a secret, and output is often kept.
    if token_made {
        println!(
            "Operator token (made now; kept in {}): {operator_token}",
            data.join("operator-token").display()
        );
    } else if args.common.operator_token.is_none() {
        println!(
            "Operator token: in {}",
            data.join("operator-token").display()
        );
    }
    println!("Data directory: {}", data.display());
    let served = serve(&connections, listener, components, shutdown).await;
    if let Some(server) = nats_server {
        server.stop().await;
    }
    telemetry::shutdown();
    served
}
