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

    /// Photos one image-processor works on at once (defaults to the number of cores).
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
}

/// Settings after defaults are applied and values validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub nats_url: String,
    pub storage: StorageConfig,
    pub operator_token: String,
    pub spool_dir: PathBuf,
    pub image_workers: usize,
    pub instance: String,
    pub topology: crate::bus::Topology,
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
    /// could silently point at the wrong place.
    pub fn from_args(args: &CommonArgs) -> Result<Self, ConfigError> {
        let database_url = args.database_url.clone().ok_or(ConfigError::Missing {
            name: "DATABASE_URL",
            hint: "e.g. postgres://pictureday@db/pictureday or sqlite:///var/lib/pictureday/db.sqlite?mode=rwc",
        })?;
        let nats_url = args.nats_url.clone().ok_or(ConfigError::Missing {
            name: "NATS_URL",
            hint: "e.g. nats://nats:4222",
        })?;
        let storage_raw = args.storage.clone().ok_or(ConfigError::Missing {
            name: "PICTUREDAY_STORAGE",
            hint: "a directory or s3://bucket/prefix",
        })?;
        let operator_token = args.operator_token.clone().ok_or(ConfigError::Missing {
            name: "PICTUREDAY_OPERATOR_TOKEN",
            hint: "a random secret of at least 24 characters",
        })?;
        Self::build(args, database_url, nats_url, &storage_raw, operator_token)
    }

    pub fn build(
        args: &CommonArgs,
        database_url: String,
        nats_url: String,
        storage_raw: &str,
        operator_token: String,
    ) -> Result<Self, ConfigError> {
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(ConfigError::Invalid {
                name: "DATABASE_URL",
                reason: format!("{database_url:?} is neither sqlite:… nor postgres://…"),
            });
        }
        if operator_token.len() < MIN_TOKEN_LEN {
            return Err(ConfigError::Invalid {
                name: "PICTUREDAY_OPERATOR_TOKEN",
                reason: format!("it must be at least {MIN_TOKEN_LEN} characters"),
            });
        }
        let mut storage =
            StorageConfig::parse(storage_raw).map_err(|reason| ConfigError::Invalid {
                name: "PICTUREDAY_STORAGE",
                reason,
            })?;
        if let StorageConfig::S3(s3) = &mut storage {
            s3.force_path_style = args.s3_force_path_style.unwrap_or(false);
        }
        let spool_dir = match (&args.spool_dir, &storage) {
            (Some(dir), _) => dir.clone(),
            (None, StorageConfig::Local { root }) => root.join(".spool"),
            (None, StorageConfig::S3(_)) => {
                return Err(ConfigError::Missing {
                    name: "PICTUREDAY_SPOOL_DIR",
                    hint: "with S3 storage, uploads are spooled to a local directory first",
                });
            }
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
        Ok(Self {
            database_url,
            nats_url,
            storage,
            operator_token,
            spool_dir,
            image_workers,
            instance,
            topology,
        })
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
        }
    }

    fn build(args: &CommonArgs, storage: &str) -> Result<Settings, ConfigError> {
        Settings::build(
            args,
            "sqlite://x.db".into(),
            "nats://127.0.0.1:4222".into(),
            storage,
            "x".repeat(MIN_TOKEN_LEN),
        )
    }

    #[test]
    fn storage_errors_name_the_setting() {
        let bad = build(&args(), "s3://Not_A_Bucket/x").map(|_| ());
        assert!(
            matches!(&bad, Err(e) if e.to_string().starts_with("PICTUREDAY_STORAGE is invalid")),
            "{bad:?}"
        );
        let no_spool = build(&args(), "s3://photos/x").map(|_| ());
        assert!(
            matches!(&no_spool, Err(e) if e.to_string().starts_with("PICTUREDAY_SPOOL_DIR")),
            "{no_spool:?}"
        );
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
        let StorageConfig::S3(s3) = &settings.storage else {
            anyhow::bail!("not S3: {:?}", settings.storage);
        };
        assert!(s3.force_path_style);
        assert_eq!(s3.prefix, "prod");
        assert_eq!(settings.spool_dir, PathBuf::from("/var/spool/pictureday"));
        Ok(())
    }
}
