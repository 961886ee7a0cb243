//! Limits every HTTP listener enforces on its clients: how long a request head, an idle
//! keep-alive connection and a slow request body may hold a connection, and how many
//! connections are served at once. Without them a few thousand idle sockets exhaust the process's
//! file descriptors and even `/healthz` stops answering.

use std::time::Duration;

use crate::config::ConfigError;

/// The flags and variables of [`HttpLimits`], shared by every binary with a listener.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HttpArgs {
    /// Seconds a client has, from connecting or from its first byte after an idle keep-alive
    /// pause, to send a complete request line and headers.
    #[arg(long, env = "PICTUREDAY_HTTP_HEADER_TIMEOUT_SECS")]
    pub http_header_timeout_secs: Option<u64>,

    /// Seconds a kept-alive connection may wait, with no request in progress, for its next
    /// request.
    #[arg(long, env = "PICTUREDAY_HTTP_IDLE_TIMEOUT_SECS")]
    pub http_idle_timeout_secs: Option<u64>,

    /// Seconds a request body may go while the server waits for it without the minimum rate
    /// arriving; the request is then answered 408 and the connection closed.
    #[arg(long, env = "PICTUREDAY_HTTP_BODY_TIMEOUT_SECS")]
    pub http_body_timeout_secs: Option<u64>,

    /// Bytes per second a request body must average over each body-timeout window.
    #[arg(long, env = "PICTUREDAY_HTTP_BODY_MIN_RATE")]
    pub http_body_min_rate: Option<u64>,

    /// Connections served at once. Beyond it, as many again are answered `503` (`/healthz` and
    /// `/readyz` still answer) and closed; further ones are closed as they are accepted.
    #[arg(long, env = "PICTUREDAY_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<usize>,
}

/// The limits after defaults and validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    /// Bytes per second.
    pub body_min_rate: u64,
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            // A school's worst uplink still does far better; a stalled sender does not.
            body_min_rate: 1024,
            max_connections: 4096,
        }
    }
}

impl HttpLimits {
    pub fn from_args(args: &HttpArgs) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let secs = |name: &'static str, value: Option<u64>, default: Duration| match value {
            None => Ok(default),
            Some(secs @ 1..=86_400) => Ok(Duration::from_secs(secs)),
            Some(_) => Err(ConfigError::Invalid {
                name,
                reason: "it must be between 1 and 86400 seconds".into(),
            }),
        };
        let max_connections = match args.http_max_connections {
            None => defaults.max_connections,
            Some(n @ 1..=1_000_000) => n,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "PICTUREDAY_HTTP_MAX_CONNECTIONS",
                    reason: "it must be between 1 and 1000000".into(),
                });
            }
        };
        Ok(Self {
            header_timeout: secs(
                "PICTUREDAY_HTTP_HEADER_TIMEOUT_SECS",
                args.http_header_timeout_secs,
                defaults.header_timeout,
            )?,
            idle_timeout: secs(
                "PICTUREDAY_HTTP_IDLE_TIMEOUT_SECS",
                args.http_idle_timeout_secs,
                defaults.idle_timeout,
            )?,
            body_timeout: secs(
                "PICTUREDAY_HTTP_BODY_TIMEOUT_SECS",
                args.http_body_timeout_secs,
                defaults.body_timeout,
            )?,
            body_min_rate: args.http_body_min_rate.unwrap_or(defaults.body_min_rate),
            max_connections,
        })
    }

    /// Connections beyond the cap that are still accepted, to be answered `503` (or a health
    /// probe) and closed; beyond these, a connection is closed at once.
    pub fn shed_connections(&self) -> usize {
        self.max_connections
    }

    /// Bytes a body must deliver in each window of `body_timeout` spent waiting for it.
    pub fn body_min_bytes(&self) -> u64 {
        self.body_min_rate
            .saturating_mul(self.body_timeout.as_secs())
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_bad_values_name_the_setting() -> anyhow::Result<()> {
        assert_eq!(
            HttpLimits::from_args(&HttpArgs::default())?,
            HttpLimits::default()
        );
        let args = HttpArgs {
            http_header_timeout_secs: Some(2),
            http_max_connections: Some(20),
            http_body_min_rate: Some(0),
            ..HttpArgs::default()
        };
        let limits = HttpLimits::from_args(&args)?;
        assert_eq!(limits.header_timeout, Duration::from_secs(2));
        assert_eq!(limits.max_connections, 20);
        assert_eq!(limits.body_min_bytes(), 1);
        let bad = HttpLimits::from_args(&HttpArgs {
            http_idle_timeout_secs: Some(0),
            ..HttpArgs::default()
        })
        .map(|_| ());
        assert!(
            matches!(&bad, Err(e) if e.to_string().starts_with("PICTUREDAY_HTTP_IDLE_TIMEOUT_SECS is invalid")),
            "{bad:?}"
        );
        let bad = HttpLimits::from_args(&HttpArgs {
            http_max_connections: Some(0),
            ..HttpArgs::default()
        })
        .map(|_| ());
        assert!(bad.is_err());
        Ok(())
    }
}
