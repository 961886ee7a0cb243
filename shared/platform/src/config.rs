//! Settings every service reads, from flags, the environment or a settings file (the ecosystem's
//! own names where there is one: `DATABASE_URL`, `NATS_URL`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::storage::StorageConfig;

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// A settings file of `NAME=value` lines with the environment variables' names; flags and
    /// the environment override it.
    #[arg(long, env = crate::config_file::CONFIG_ENV)]
    pub config: Option<PathBuf>,

    /// Database: `sqlite://PATH?mode=rwc` or `postgres://USER:PASS@HOST/DB`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// NATS server with JetStream, e.g. `nats://127.0.0.1:4222`.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,

    /// Where photos are stored: a directory, or `s3://BUCKET/PREFIX` (endpoint, region and
    /// credentials then come from the standard `AWS_*` variables and files).
    #[arg(long, env = "PICTUREDAY_STORAGE")]
    pub storage: Option<String>,

    /// Address S3 buckets by path (`endpoint/bucket`), as most S3-compatible servers want,
    /// rather than by host name (`bucket.endpoint`).
    #[arg(long, env = "PICTUREDAY_S3_FORCE_PATH_STYLE", value_parser = clap::builder::BoolishValueParser::new())]
    pub s3_force_path_style: Option<bool>,

    /// The operator token: may act on every district and create districts and district tokens.
    #[arg(long, env = "PICTUREDAY_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,

    /// Where uploads are spooled while they arrive (defaults to a folder beside local storage;
    /// required with S3 storage).
    #[arg(long, env = "PICTUREDAY_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,

    /// Photos one image-processor decodes at once, a thread each (defaults to the number of cores).
    #[arg(long, env = "PICTUREDAY_IMAGE_WORKERS")]
    pub image_workers: Option<usize>,

    /// A name for this instance in events and logs (defaults to host name and process id).
    #[arg(long, env = "PICTUREDAY_INSTANCE")]
    pub instance: Option<String>,

    /// Seconds a consumer waits for a message's ack before delivering it again (to another
    /// instance, if the one that had it died). Workers signal progress on longer work.
    #[arg(long, env = "PICTUREDAY_ACK_WAIT_SECS")]
    pub ack_wait_secs: Option<u64>,

    /// Copies JetStream keeps of each stream: 1 on a single server, 3 on a production cluster.
    #[arg(long, env = "PICTUREDAY_NATS_REPLICAS")]
    pub nats_replicas: Option<usize>,

    /// Seconds a job may take before it is failed, with every file still without an outcome
    /// rejected for the reason it waited (default 86400: a day).
    #[arg(long, env = "PICTUREDAY_JOB_DEADLINE_SECS")]
    pub job_deadline_secs: Option<u64>,

    /// Seconds a file may go without its next event, with nothing in flight for it, before its
    /// events are published again (default: 3 × the ack wait, at least 180).
    #[arg(long, env = "PICTUREDAY_STALL_AFTER_SECS")]
    pub stall_after_secs: Option<u64>,

    /// Seconds after a preview finished that it may still be applied (roster; default 259200:
    /// 72 hours). Later, `POST …/jobs/{job}/apply` answers 410 and the photos must be uploaded
    /// again: the roster may have changed a lot since the preview looked at it.
    #[arg(long, env = "PICTUREDAY_PREVIEW_TTL_SECS")]
    pub preview_ttl_secs: Option<u64>,
    /// What a photo and an upload may be (`PICTUREDAY_MAX_FILE_BYTES`, …).
    #[command(flatten)]
    pub photos: PhotoArgs,
    /// How long uploaded originals are kept (`PICTUREDAY_ORIGINALS_RETENTION_DAYS`, …).
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// How webhooks are delivered and events streamed (`PICTUREDAY_WEBHOOK_*`, …).
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    /// The public address, photo-link keys and roster waits (`PICTUREDAY_PUBLIC_URL`, …).
    #[command(flatten)]
    pub api: ApiArgs,
    /// The SFTP drop folders (`PICTUREDAY_SFTP_LISTEN`, …).
    #[command(flatten)]
    pub sftp: SftpArgs,
}

/// Ingest's SFTP server, as given.
#[derive(Debug, Clone, Default, Args)]
pub struct SftpArgs {
    /// Address the SFTP server listens on, e.g. `0.0.0.0:2222`, or `off`. Without it there is
    /// no SFTP server, except in the embedded default, which listens on `127.0.0.1:2222`.
    #[arg(long, env = "PICTUREDAY_SFTP_LISTEN")]
    pub sftp_listen: Option<String>,
    /// Seconds without a new file, once no session of the account is open, after which the
    /// files an account dropped become one job (default 60).
    #[arg(long, env = "PICTUREDAY_SFTP_QUIET_SECS")]
    pub sftp_quiet_secs: Option<u64>,
    /// An OpenSSH Ed25519 private key to use as the host key (a mounted Kubernetes Secret);
    /// without it, one is generated once and kept in storage.
    #[arg(long, env = "PICTUREDAY_SFTP_HOST_KEY_FILE")]
    pub sftp_host_key_file: Option<PathBuf>,
}

/// Ingest's SFTP server, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpSettings {
    /// `None`: no SFTP server.
    pub listen: Option<std::net::SocketAddr>,
    /// How long a drop stays open after its last file once its sessions have ended.
    pub quiet: Duration,
    pub host_key_file: Option<PathBuf>,
}

impl SftpSettings {
    const DEFAULT_QUIET: Duration = Duration::from_secs(60);

    fn from_args(args: &SftpArgs) -> Result<Self, ConfigError> {
        let listen = match args.sftp_listen.as_deref().map(str::trim) {
            None | Some("" | "off") => None,
            Some(raw) => Some(raw.parse().map_err(|_| ConfigError::Invalid {
                name: "PICTUREDAY_SFTP_LISTEN",
                reason: format!("{raw:?} is not an address like 0.0.0.0:2222 (or off)"),
            })?),
        };
        Ok(Self {
            listen,
            quiet: seconds(
                "PICTUREDAY_SFTP_QUIET_SECS",
                args.sftp_quiet_secs,
                Self::DEFAULT_QUIET,
            )?,
            host_key_file: args.sftp_host_key_file.clone(),
        })
    }
}

/// What the API answers with, as given.
#[derive(Debug, Clone, Default, Args)]
pub struct ApiArgs {
    /// The address clients reach the API at (`https://photos.example.org`), for the absolute
    /// links the API hands out; without it, the host a request came to.
    #[arg(long, env = "PICTUREDAY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Keys photo links are signed with, `id:secret,id:secret` (secrets of at least 32
    /// characters): the first signs, all verify. Without it, one key derived from the operator
    /// token.
    #[arg(long, env = "PICTUREDAY_PHOTO_LINK_KEYS", hide_env_values = true)]
    pub photo_link_keys: Option<String>,
    /// Seconds a roster post waits for its import before answering `202` (default 10, at most
    /// 60).
    #[arg(long, env = "PICTUREDAY_ROSTER_WAIT_SECS")]
    pub roster_wait_secs: Option<u64>,
    /// The key roster sources' tokens (a district's Clever token) are sealed with at rest, at
    /// least 32 characters. Without it, a key derived from the operator token.
    #[arg(long, env = "PICTUREDAY_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,
    /// Seconds between two Clever syncs of a district that does not set its own interval
    /// (default 900: every 15 minutes).
    #[arg(long, env = "PICTUREDAY_CLEVER_INTERVAL_SECS")]
    pub clever_interval_secs: Option<u64>,
}

/// What the API answers with, validated.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiSettings {
    /// `https://photos.example.org`, without a trailing `/`.
    pub public_url: Option<String>,
    photo_link_keys: Option<String>,
    pub roster_wait: Duration,
    secrets_key: Option<String>,
    /// How often a district's Clever source syncs unless it says otherwise.
    pub clever_interval: Duration,
}

/// Secrets stay out of debug output (and so out of logs).
impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings")
            .field("public_url", &self.public_url)
            .field(
                "photo_link_keys",
                &self.photo_link_keys.as_ref().map(|_| "***"),
            )
            .field("roster_wait", &self.roster_wait)
            .field("secrets_key", &self.secrets_key.as_ref().map(|_| "***"))
            .field("clever_interval", &self.clever_interval)
            .finish()
    }
}

impl ApiSettings {
    const DEFAULT_ROSTER_WAIT: Duration = Duration::from_secs(10);
    const MAX_ROSTER_WAIT_SECS: u64 = 60;

    fn from_args(args: &ApiArgs) -> Result<Self, ConfigError> {
        let public_url = match args.public_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => {
                let plain = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"));
                if plain.is_none_or(|rest| rest.is_empty() || rest.contains(['?', '#', '@'])) {
                    return Err(ConfigError::Invalid {
                        name: "PICTUREDAY_PUBLIC_URL",
                        reason: format!(
                            "{url:?} is not an http:// or https:// address (with an optional path)"
                        ),
                    });
                }
                Some(url.trim_end_matches('/').to_owned())
            }
        };
        let roster_wait = match args.roster_wait_secs {
            None => Self::DEFAULT_ROSTER_WAIT,
            Some(secs) if secs <= Self::MAX_ROSTER_WAIT_SECS => Duration::from_secs(secs),
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "PICTUREDAY_ROSTER_WAIT_SECS",
                    reason: format!("it must be at most {}", Self::MAX_ROSTER_WAIT_SECS),
                });
            }
        };
        Ok(Self {
            public_url,
            photo_link_keys: args
                .photo_link_keys
                .clone()
                .filter(|k| !k.trim().is_empty()),
            roster_wait,
            secrets_key: args.secrets_key.clone().filter(|k| !k.trim().is_empty()),
            clever_interval: match args.clever_interval_secs {
                None => Duration::from_secs(900),
                Some(0) => {
                    return Err(ConfigError::Invalid {
                        name: "PICTUREDAY_CLEVER_INTERVAL_SECS",
                        reason: "it must be at least 1".into(),
                    });
                }
                Some(secs) => Duration::from_secs(secs),
            },
        })
    }

    /// `PICTUREDAY_SECRETS_KEY` as given (a secret: never log it).
    pub fn secrets_key(&self) -> Option<&str> {
        self.secrets_key.as_deref()
    }

    /// `PICTUREDAY_PHOTO_LINK_KEYS` as given (a secret: never log it).
    pub fn photo_link_keys(&self) -> Option<&str> {
        self.photo_link_keys.as_deref()
    }
}

/// How webhooks are delivered and job events streamed, as given.
#[derive(Debug, Clone, Default, Args)]
pub struct WebhookArgs {
    /// Send webhooks to private, loopback, link-local and other internal addresses too (default
    /// false): a district's endpoint must not reach into the operator's own network.
    #[arg(long, env = "PICTUREDAY_WEBHOOK_ALLOW_PRIVATE", value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_allow_private: Option<bool>,
    /// Seconds to wait before each retry of a failed delivery, comma-separated (default
    /// `5,300,1800,7200,18000,36000,36000`: about a day in all); after the last, it has failed.
    #[arg(long, env = "PICTUREDAY_WEBHOOK_RETRY_SCHEDULE")]
    pub webhook_retry_schedule: Option<String>,
    /// Seconds an endpoint may fail without a success before it is disabled (default 259200: 3
    /// days).
    #[arg(long, env = "PICTUREDAY_WEBHOOK_DISABLE_AFTER_SECS")]
    pub webhook_disable_after_secs: Option<u64>,
    /// Seconds one delivery may take, connecting included (default 10).
    #[arg(long, env = "PICTUREDAY_WEBHOOK_TIMEOUT_SECS")]
    pub webhook_timeout_secs: Option<u64>,
    /// Deliveries sent at once by one reporting instance, at most one per endpoint (default 16).
    #[arg(long, env = "PICTUREDAY_WEBHOOK_CONCURRENCY")]
    pub webhook_concurrency: Option<usize>,
    /// Seconds between two heartbeats of an idle event stream (`GET …/events`; default 15).
    #[arg(long, env = "PICTUREDAY_EVENTS_HEARTBEAT_SECS")]
    pub events_heartbeat_secs: Option<u64>,
}

/// How webhooks are delivered and job events streamed, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhooks {
    /// Whether endpoints may be at private, loopback and other internal addresses.
    pub allow_private: bool,
    /// The wait before each retry; a delivery is tried once more than it has entries.
    pub retry_schedule: Vec<Duration>,
    /// How long an endpoint may fail without a success before it is disabled.
    pub disable_after: Duration,
    /// How long one delivery may take.
    pub timeout: Duration,
    /// Deliveries in flight at once per instance.
    pub concurrency: usize,
    /// How often an idle event stream sends a heartbeat.
    pub heartbeat: Duration,
}

impl Default for Webhooks {
    /// Retries after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (a day and a few hours in
    /// all, so a receiver down overnight misses nothing); disabled after 3 days of failures.
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_schedule: [5, 300, 1800, 7200, 18_000, 36_000, 36_000]
                .map(Duration::from_secs)
                .to_vec(),
            disable_after: Duration::from_secs(3 * 86_400),
            timeout: Duration::from_secs(10),
            concurrency: 16,
            heartbeat: Duration::from_secs(15),
        }
    }
}

impl Webhooks {
    /// The most retries a schedule may list: each is a row of a delivery's log.
    const MAX_RETRIES: usize = 30;

    pub fn from_args(args: &WebhookArgs) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let retry_schedule = match &args.webhook_retry_schedule {
            None => defaults.retry_schedule,
            Some(raw) => {
                let invalid = |reason: String| ConfigError::Invalid {
                    name: "PICTUREDAY_WEBHOOK_RETRY_SCHEDULE",
                    reason,
                };
                let schedule = raw
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse::<u64>()
                            .map(Duration::from_secs)
                            .map_err(|_| invalid(format!("{s:?} is not a number of seconds")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if schedule.len() > Self::MAX_RETRIES {
                    return Err(invalid(format!(
                        "{} retries; at most {} are allowed",
                        schedule.len(),
                        Self::MAX_RETRIES
                    )));
                }
                schedule
            }
        };
        Ok(Self {
            allow_private: args.webhook_allow_private.unwrap_or(defaults.allow_private),
            retry_schedule,
            disable_after: seconds(
                "PICTUREDAY_WEBHOOK_DISABLE_AFTER_SECS",
                args.webhook_disable_after_secs,
                defaults.disable_after,
            )?,
            timeout: match args.webhook_timeout_secs {
                None => defaults.timeout,
                Some(secs @ 1..=300) => Duration::from_secs(secs),
                Some(_) => {
                    return Err(ConfigError::Invalid {
                        name: "PICTUREDAY_WEBHOOK_TIMEOUT_SECS",
                        reason: "it must be between 1 and 300 seconds".into(),
                    });
                }
            },
            concurrency: match args.webhook_concurrency {
                None => defaults.concurrency,
                Some(n @ 1..=1024) => n,
                Some(_) => {
                    return Err(ConfigError::Invalid {
                        name: "PICTUREDAY_WEBHOOK_CONCURRENCY",
                        reason: "it must be between 1 and 1024".into(),
                    });
                }
            },
            heartbeat: seconds(
                "PICTUREDAY_EVENTS_HEARTBEAT_SECS",
                args.events_heartbeat_secs,
                defaults.heartbeat,
            )?,
        })
    }
}

/// How long what users uploaded is kept, as given.
#[derive(Debug, Clone, Default, Args)]
pub struct RetentionArgs {
    /// Days an upload's original files are kept after its job ends (default 30; 0 deletes them
    /// as soon as the job ends). Renditions, which are the photos, are not affected.
    #[arg(long, env = "PICTUREDAY_ORIGINALS_RETENTION_DAYS")]
    pub originals_retention_days: Option<u64>,
    /// Seconds between two looks for originals that are due (default 3600).
    #[arg(long, env = "PICTUREDAY_RETENTION_CHECK_SECS")]
    pub retention_check_secs: Option<u64>,
    /// Days the photos of people who left (inactive) are kept before they are purged with their
    /// versions and originals (default 365).
    #[arg(long, env = "PICTUREDAY_INACTIVE_RETENTION_DAYS")]
    pub inactive_retention_days: Option<u64>,
}

/// How long what users uploaded is kept, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// After its job ends, how long an upload's originals are kept.
    pub originals: Duration,
    /// How often due originals are looked for.
    pub check_every: Duration,
    /// After a person becomes inactive, how long their photos are kept.
    pub inactive_photos: Duration,
}

impl Retention {
    const DEFAULT_DAYS: u64 = 30;
    const DEFAULT_INACTIVE_DAYS: u64 = 365;
    const DEFAULT_CHECK: Duration = Duration::from_secs(3600);

    fn from_args(args: &RetentionArgs) -> Result<Self, ConfigError> {
        let days = args.originals_retention_days.unwrap_or(Self::DEFAULT_DAYS);
        let originals = days
            .checked_mul(86_400)
            .map(Duration::from_secs)
            .ok_or_else(|| ConfigError::Invalid {
                name: "PICTUREDAY_ORIGINALS_RETENTION_DAYS",
                reason: format!("{days} days is too long"),
            })?;
        let check_every = match args.retention_check_secs {
            None => Self::DEFAULT_CHECK,
            Some(0) => {
                return Err(ConfigError::Invalid {
                    name: "PICTUREDAY_RETENTION_CHECK_SECS",
                    reason: "it must be at least 1".into(),
                });
            }
            Some(secs) => Duration::from_secs(secs),
        };
        let inactive_days = args
            .inactive_retention_days
            .unwrap_or(Self::DEFAULT_INACTIVE_DAYS);
        let inactive_photos = inactive_days
            .checked_mul(86_400)
            .map(Duration::from_secs)
            .ok_or_else(|| ConfigError::Invalid {
                name: "PICTUREDAY_INACTIVE_RETENTION_DAYS",
                reason: format!("{inactive_days} days is too long"),
            })?;
        Ok(Self {
            originals,
            check_every,
            inactive_photos,
        })
    }
}

/// Settings after defaults are applied and values validated. What a service does not use may be
/// absent: the matcher runs with no database or storage setting.
#[derive(Debug, Clone)]
pub struct Settings {
    database_url: Option<String>,
    pub nats_url: String,
    storage: Option<StorageConfig>,
    operator_token: Option<String>,
    spool_dir: Option<PathBuf>,
    pub image_workers: usize,
    pub instance: String,
    pub topology: crate::bus::Topology,
    /// How long a job may go without finishing before it is failed.
    pub job_deadline: Duration,
    /// How long a file may wait for its next event, with nothing in flight, before its events
    /// are published again.
    pub stall_after: Duration,
    /// How long after a preview finished it may still be applied.
    pub preview_ttl: Duration,
    pub photos: PhotoLimits,
    pub retention: Retention,
    /// How webhooks are delivered and job events streamed.
    pub webhooks: Webhooks,
    /// The public address, photo-link keys and roster waits.
    pub api: ApiSettings,
    /// Ingest's SFTP server.
    pub sftp: SftpSettings,
    /// The limits of this process's HTTP listener ([`Settings::with_http`]).
    pub http: crate::http_limits::HttpLimits,
}

/// Limits on uploads and photos, as given.
#[derive(Debug, Clone, Default, Args)]
pub struct PhotoArgs {
    /// Largest photo file, in bytes (default 50 MiB): ingest refuses a larger `files` part as it
    /// arrives, the image-processor a larger archive entry.
    #[arg(long, env = "PICTUREDAY_MAX_FILE_BYTES")]
    pub max_file_bytes: Option<u64>,
    /// Largest import request, every part together, in bytes (default 10 GiB).
    #[arg(long, env = "PICTUREDAY_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<u64>,
    /// Smallest photo as displayed, `WIDTHxHEIGHT` (default `120x150`).
    #[arg(long, env = "PICTUREDAY_MIN_PHOTO_SIZE")]
    pub min_photo_size: Option<String>,
    /// How wide a photo may be for its height, `MIN-MAX` (default `0.5-1.5`).
    #[arg(long, env = "PICTUREDAY_PHOTO_ASPECT")]
    pub photo_aspect: Option<String>,
}

/// Limits on uploads and photos, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhotoLimits {
    pub max_file_bytes: u64,
    pub max_upload_bytes: u64,
    pub min_width: u32,
    pub min_height: u32,
    pub min_aspect: f64,
    pub max_aspect: f64,
}

impl Default for PhotoLimits {
    /// Portraits at least 120×150, 0.5 to 1.5 as wide as high; 50 MiB a file, 10 GiB a request.
    fn default() -> Self {
        Self {
            max_file_bytes: 50 * 1024 * 1024,
            max_upload_bytes: 10 * 1024 * 1024 * 1024,
            min_width: 120,
            min_height: 150,
            min_aspect: 0.5,
            max_aspect: 1.5,
        }
    }
}

impl PhotoLimits {
    fn from_args(args: &PhotoArgs) -> Result<Self, ConfigError> {
        let mut limits = Self::default();
        let invalid = |name, reason: &str| ConfigError::Invalid {
            name,
            reason: reason.to_owned(),
        };
        match args.max_file_bytes {
            Some(0) => {
                return Err(invalid(
                    "PICTUREDAY_MAX_FILE_BYTES",
                    "it must be at least 1",
                ));
            }
            Some(n) => limits.max_file_bytes = n,
            None => {}
        }
        match args.max_upload_bytes {
            Some(0) => {
                return Err(invalid(
                    "PICTUREDAY_MAX_UPLOAD_BYTES",
                    "it must be at least 1",
                ));
            }
            Some(n) => limits.max_upload_bytes = n,
            None => {}
        }
        if let Some(raw) = &args.min_photo_size {
            let size = raw
                .split_once(['x', 'X', '×'])
                .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)));
            (limits.min_width, limits.min_height) = size.ok_or_else(|| {
                invalid(
                    "PICTUREDAY_MIN_PHOTO_SIZE",
                    "write it as WIDTHxHEIGHT, e.g. 120x150",
                )
            })?;
        }
        if let Some(raw) = &args.photo_aspect {
            let window = raw
                .split_once('-')
                .and_then(|(lo, hi)| Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?)))
                .filter(|&(lo, hi): &(f64, f64)| lo > 0.0 && lo <= hi && hi.is_finite());
            (limits.min_aspect, limits.max_aspect) = window.ok_or_else(|| {
                invalid(
                    "PICTUREDAY_PHOTO_ASPECT",
                    "write it as MIN-MAX, e.g. 0.5-1.5",
                )
            })?;
        }
        Ok(limits)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set; {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The shortest operator token accepted: it guards every district's photos.
pub const MIN_TOKEN_LEN: usize = 24;

impl Settings {
    /// Validates settings for a service running on its own, where nothing has a default that
    /// could silently point at the wrong place. Settings a service does not use may be absent;
    /// asking for one that is ([`Settings::database_url`], …) says which is missing.
    pub fn from_args(args: &CommonArgs) -> Result<Self, ConfigError> {
        let nats_url = args.nats_url.clone().ok_or(ConfigError::Missing {
            name: "NATS_URL",
            hint: "e.g. nats://nats:4222",
        })?;
        Self::build(
            args,
            args.database_url.clone(),
            nats_url,
            args.storage.as_deref(),
            args.operator_token.clone(),
        )
    }

    pub fn build(
        args: &CommonArgs,
        database_url: Option<String>,
        nats_url: String,
        storage_raw: Option<&str>,
        operator_token: Option<String>,
    ) -> Result<Self, ConfigError> {
        if let Some(url) = &database_url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres"))
        {
            return Err(ConfigError::Invalid {
                name: "DATABASE_URL",
                reason: format!("{url:?} is neither sqlite:… nor postgres://…"),
            });
        }
        if let Some(token) = &operator_token
            && token.len() < MIN_TOKEN_LEN
        {
            return Err(ConfigError::Invalid {
                name: "PICTUREDAY_OPERATOR_TOKEN",
                reason: format!("it must be at least {MIN_TOKEN_LEN} characters"),
            });
        }
        let storage = match storage_raw {
            None => None,
            Some(raw) => {
                let mut storage =
                    StorageConfig::parse(raw).map_err(|reason| ConfigError::Invalid {
                        name: "PICTUREDAY_STORAGE",
                        reason,
                    })?;
                if let StorageConfig::S3(s3) = &mut storage {
                    s3.force_path_style = args.s3_force_path_style.unwrap_or(false);
                }
                Some(storage)
            }
        };
        let spool_dir = match (&args.spool_dir, &storage) {
            (Some(dir), _) => Some(dir.clone()),
            (None, Some(StorageConfig::Local { root })) => Some(root.join(".spool")),
            (None, _) => None,
        };
        let image_workers = match args.image_workers {
            Some(0) => {
                return Err(ConfigError::Invalid {
                    name: "PICTUREDAY_IMAGE_WORKERS",
                    reason: "it must be at least 1".into(),
                });
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let instance = args.instance.clone().unwrap_or_else(default_instance_name);
        let topology = topology(args)?;
        let job_deadline = seconds(
            "PICTUREDAY_JOB_DEADLINE_SECS",
            args.job_deadline_secs,
            DEFAULT_JOB_DEADLINE,
        )?;
        // A file is only taken for lost once every delivery it could still be waiting for
        // would have happened: well past the ack wait.
        let stall_after = seconds(
            "PICTUREDAY_STALL_AFTER_SECS",
            args.stall_after_secs,
            (topology.ack_wait * 3).max(Duration::from_secs(180)),
        )?;
        let preview_ttl = seconds(
            "PICTUREDAY_PREVIEW_TTL_SECS",
            args.preview_ttl_secs,
            DEFAULT_PREVIEW_TTL,
        )?;
        let photos = PhotoLimits::from_args(&args.photos)?;
        let retention = Retention::from_args(&args.retention)?;
        let webhooks = Webhooks::from_args(&args.webhooks)?;
        let api = ApiSettings::from_args(&args.api)?;
        let sftp = SftpSettings::from_args(&args.sftp)?;
        Ok(Self {
            sftp,
            photos,
            retention,
            webhooks,
            api,
            database_url,
            nats_url,
            storage,
            operator_token,
            spool_dir,
            image_workers,
            instance,
            topology,
            job_deadline,
            stall_after,
            preview_ttl,
            http: crate::http_limits::HttpLimits::default(),
        })
    }

    /// These settings with the HTTP limits read from `args` (they live beside the listen
    /// address, which only binaries with a listener have).
    pub fn with_http(mut self, args: &crate::http_limits::HttpArgs) -> Result<Self, ConfigError> {
        self.http = crate::http_limits::HttpLimits::from_args(args)?;
        Ok(self)
    }

    /// As [`Settings::build`], with storage already made (tests pin an S3 endpoint and keys
    /// without touching the process's environment).
    pub fn build_with_storage(
        args: &CommonArgs,
        database_url: Option<String>,
        nats_url: String,
        storage: StorageConfig,
        operator_token: Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut settings = Self::build(args, database_url, nats_url, None, operator_token)?;
        if settings.spool_dir.is_none()
            && let StorageConfig::Local { root } = &storage
        {
            settings.spool_dir = Some(root.join(".spool"));
        }
        settings.storage = Some(storage);
        Ok(settings)
    }

    pub fn database_url(&self) -> Result<&str, ConfigError> {
        self.database_url.as_deref().ok_or(ConfigError::Missing {
            name: "DATABASE_URL",
            hint: "e.g. postgres://pictureday@db/pictureday or sqlite:///var/lib/pictureday/db.sqlite?mode=rwc",
        })
    }

    pub fn storage(&self) -> Result<&StorageConfig, ConfigError> {
        self.storage.as_ref().ok_or(ConfigError::Missing {
            name: "PICTUREDAY_STORAGE",
            hint: "a directory or s3://bucket/prefix",
        })
    }

    pub fn operator_token(&self) -> Result<&str, ConfigError> {
        self.operator_token.as_deref().ok_or(ConfigError::Missing {
            name: "PICTUREDAY_OPERATOR_TOKEN",
            hint: "a random secret of at least 24 characters",
        })
    }

    /// Where uploads are spooled: the setting, or a folder beside local storage.
    pub fn spool_dir(&self) -> Result<&std::path::Path, ConfigError> {
        self.spool_dir.as_deref().ok_or(ConfigError::Missing {
            name: "PICTUREDAY_SPOOL_DIR",
            hint: "with S3 storage, uploads are spooled to a local directory first",
        })
    }
}

const DEFAULT_JOB_DEADLINE: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_PREVIEW_TTL: Duration = Duration::from_secs(72 * 3600);

fn seconds(
    name: &'static str,
    value: Option<u64>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Err(ConfigError::Invalid {
            name,
            reason: "it must be at least 1 second".into(),
        }),
        Some(secs) => Ok(Duration::from_secs(secs)),
    }
}

fn topology(args: &CommonArgs) -> Result<crate::bus::Topology, ConfigError> {
    let defaults = crate::bus::Topology::default();
    let ack_wait = match args.ack_wait_secs {
        None => defaults.ack_wait,
        Some(secs @ 1..=3600) => Duration::from_secs(secs),
        Some(_) => {
            return Err(ConfigError::Invalid {
                name: "PICTUREDAY_ACK_WAIT_SECS",
                reason: "it must be between 1 and 3600 seconds".into(),
            });
        }
    };
    let replicas = match args.nats_replicas {
        None => defaults.replicas,
        Some(n @ 1..=5) => n,
        Some(_) => {
            return Err(ConfigError::Invalid {
                name: "PICTUREDAY_NATS_REPLICAS",
                reason: "JetStream keeps 1 to 5 copies of a stream".into(),
            });
        }
    };
    Ok(crate::bus::Topology { ack_wait, replicas })
}

fn default_instance_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CommonArgs {
        CommonArgs {
            config: None,
            database_url: None,
            nats_url: None,
            storage: None,
            s3_force_path_style: None,
            operator_token: None,
            spool_dir: None,
            image_workers: Some(1),
            instance: Some("test".into()),
            ack_wait_secs: None,
            nats_replicas: None,
            job_deadline_secs: None,
            stall_after_secs: None,
            preview_ttl_secs: None,
            photos: PhotoArgs::default(),
            retention: RetentionArgs::default(),
            webhooks: WebhookArgs::default(),
            api: ApiArgs::default(),
            sftp: SftpArgs::default(),
        }
    }

    #[test]
    fn api_settings_are_checked_and_keys_never_shown() -> Result<(), ConfigError> {
        let mut args = args();
        let settings = build(&args, "/tmp/photos")?;
        assert_eq!(settings.api.public_url, None);
        assert_eq!(settings.api.roster_wait, Duration::from_secs(10));
        args.api.public_url = Some("https://photos.example.org/".into());
        args.api.photo_link_keys = Some("k1:0123456789abcdef0123456789abcdef".into());
        args.api.roster_wait_secs = Some(0);
        let settings = build(&args, "/tmp/photos")?;
        assert_eq!(
            settings.api.public_url.as_deref(),
            Some("https://photos.example.org")
        );
        assert_eq!(settings.api.roster_wait, Duration::ZERO);
        assert!(!format!("{settings:?}").contains("0123456789abcdef"));
        for bad in ["photos.example.org", "ftp://x", "https://", "https://u:p@x"] {
            args.api.public_url = Some(bad.into());
            assert!(build(&args, "/tmp/photos").is_err(), "{bad}");
        }
        args.api.public_url = None;
        args.api.roster_wait_secs = Some(61);
        assert!(build(&args, "/tmp/photos").is_err());
        Ok(())
    }

    fn build(args: &CommonArgs, storage: &str) -> Result<Settings, ConfigError> {
        Settings::build(
            args,
            Some("sqlite://x.db".into()),
            "nats://127.0.0.1:4222".into(),
            Some(storage),
            Some("x".repeat(MIN_TOKEN_LEN)),
        )
    }

    #[test]
    fn storage_errors_name_the_setting() -> anyhow::Result<()> {
        let bad = build(&args(), "s3://Not_A_Bucket/x").map(|_| ());
        assert!(
            matches!(&bad, Err(e) if e.to_string().starts_with("PICTUREDAY_STORAGE is invalid")),
            "{bad:?}"
        );
        let no_spool = build(&args(), "s3://photos/x")?;
        let spool = no_spool.spool_dir().map(|_| ());
        assert!(
            matches!(&spool, Err(e) if e.to_string().starts_with("PICTUREDAY_SPOOL_DIR")),
            "{spool:?}"
        );
        Ok(())
    }

    #[test]
    fn topology_settings_are_checked() -> anyhow::Result<()> {
        let mut args = args();
        args.ack_wait_secs = Some(0);
        let bad = build(&args, "/tmp/photos").map(|_| ());
        assert!(
            matches!(&bad, Err(e) if e.to_string().starts_with("PICTUREDAY_ACK_WAIT_SECS is invalid")),
            "{bad:?}"
        );
        args.ack_wait_secs = Some(5);
        args.nats_replicas = Some(3);
        let settings = build(&args, "/tmp/photos")?;
        assert_eq!(settings.topology.ack_wait, Duration::from_secs(5));
        assert_eq!(settings.topology.replicas, 3);
        Ok(())
    }

    #[test]
    fn s3_settings_take_the_spool_dir_and_addressing_style() -> anyhow::Result<()> {
        let mut args = args();
        args.spool_dir = Some("/var/spool/pictureday".into());
        args.s3_force_path_style = Some(true);
        let settings = build(&args, "s3://photos/prod")?;
        let StorageConfig::S3(s3) = settings.storage()? else {
            anyhow::bail!("not S3: {:?}", settings.storage());
        };
        assert!(s3.force_path_style);
        assert_eq!(s3.prefix, "prod");
        assert_eq!(
            settings.spool_dir()?,
            PathBuf::from("/var/spool/pictureday")
        );
        Ok(())
    }

    #[test]
    fn previews_keep_for_72_hours_unless_told() -> anyhow::Result<()> {
        let mut args = args();
        assert_eq!(
            build(&args, "/tmp/photos")?.preview_ttl,
            Duration::from_secs(72 * 3600)
        );
        args.preview_ttl_secs = Some(60);
        assert_eq!(
            build(&args, "/tmp/photos")?.preview_ttl,
            Duration::from_secs(60)
        );
        args.preview_ttl_secs = Some(0);
        let bad = build(&args, "/tmp/photos").map(|_| ());
        assert!(
            matches!(&bad, Err(e) if e.to_string().starts_with("PICTUREDAY_PREVIEW_TTL_SECS is invalid")),
            "{bad:?}"
        );
        Ok(())
    }

    #[test]
    fn webhook_settings_have_defaults_and_name_a_bad_setting() -> anyhow::Result<()> {
        let mut args = args();
        let defaults = build(&args, "/tmp/photos")?.webhooks;
        assert_eq!(defaults, Webhooks::default());
        assert!(!defaults.allow_private);
        let total: Duration = defaults.retry_schedule.iter().sum();
        assert!(total >= Duration::from_secs(86_400), "{total:?}");
        args.webhooks.webhook_retry_schedule = Some("1, 2,3".into());
        args.webhooks.webhook_allow_private = Some(true);
        let webhooks = build(&args, "/tmp/photos")?.webhooks;
        assert_eq!(webhooks.retry_schedule, [1, 2, 3].map(Duration::from_secs));
        assert!(webhooks.allow_private);
        args.webhooks.webhook_retry_schedule = Some("1,soon".into());
        let bad = build(&args, "/tmp/photos").map(|_| ());
        assert!(
            matches!(&bad, Err(e) if e.to_string().starts_with("PICTUREDAY_WEBHOOK_RETRY_SCHEDULE is invalid")),
            "{bad:?}"
        );
        args.webhooks.webhook_retry_schedule = None;
        args.webhooks.webhook_timeout_secs = Some(0);
        let bad = build(&args, "/tmp/photos").map(|_| ());
        assert!(
            matches!(&bad, Err(e) if e.to_string().starts_with("PICTUREDAY_WEBHOOK_TIMEOUT_SECS is invalid")),
            "{bad:?}"
        );
        Ok(())
    }

    #[test]
    fn a_service_needs_only_what_it_uses() -> anyhow::Result<()> {
        let mut args = args();
        args.nats_url = Some("nats://127.0.0.1:4222".into());
        let settings = Settings::from_args(&args)?;
        let missing = settings.database_url().map(|_| ());
        assert!(
            matches!(&missing, Err(e) if e.to_string().starts_with("DATABASE_URL is not set")),
            "{missing:?}"
        );
        assert!(settings.storage().is_err());
        assert!(settings.operator_token().is_err());
        Ok(())
    }
    #[test]
    fn photo_limits_have_defaults_and_name_a_bad_setting() -> anyhow::Result<()> {
        let mut args = args();
        assert_eq!(build(&args, "/tmp/photos")?.photos, PhotoLimits::default());
        args.photos.min_photo_size = Some("200x250".into());
        args.photos.photo_aspect = Some("0.7-0.9".into());
        args.photos.max_file_bytes = Some(1000);
        let photos = build(&args, "/tmp/photos")?.photos;
        assert_eq!(
            (
                photos.min_width,
                photos.min_height,
                photos.min_aspect,
                photos.max_aspect
            ),
            (200, 250, 0.7, 0.9)
        );
        assert_eq!(photos.max_file_bytes, 1000);
        for (size, aspect, name) in [
            ("200", "0.5-1.5", "PICTUREDAY_MIN_PHOTO_SIZE"),
            ("200x250", "1.5-0.5", "PICTUREDAY_PHOTO_ASPECT"),
            ("200x250", "0-1", "PICTUREDAY_PHOTO_ASPECT"),
        ] {
            args.photos.min_photo_size = Some(size.into());
            args.photos.photo_aspect = Some(aspect.into());
            let bad = build(&args, "/tmp/photos").map(|_| ());
            assert!(
                matches!(&bad, Err(e) if e.to_string().starts_with(&format!("{name} is invalid"))),
                "{bad:?}"
            );
        }
        Ok(())
    }
}
