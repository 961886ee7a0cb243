//! Where webhooks may go: never, unless the operator allows it, to an address inside a network
//! (loopback, private, link-local, carrier-grade NAT, multicast, unspecified, reserved), so a
//! district's endpoint cannot reach into the operator's own network. IP literals are checked
//! before sending; host names are checked on every resolution, so a name that later resolves
//! to an internal address is refused too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

/// Why an address is not one webhooks are sent to, if it is not.
pub fn internal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_v4(v4);
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private (unique local) address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if first == 0x2001 && v6.segments()[1] == 0x0db8 {
                Some("a documentation address")
            } else if first == 0x0064 && v6.segments()[1] == 0xff9b {
                // NAT64 can reach any IPv4 address, the internal ones too.
                Some("a NAT64 address")
            } else {
                None
            }
        }
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if ip.is_unspecified() || a == 0 {
        Some("the unspecified address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_broadcast() || a >= 240 {
        Some("a reserved address")
    } else if ip.is_documentation() || (a == 198 && (18..20).contains(&b)) {
        Some("a documentation or benchmarking address")
    } else {
        None
    }
}

/// Resolves host names for deliveries, keeping only the addresses they may go to.
#[derive(Clone)]
pub struct GuardedResolver {
    pub allow_internal: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{host} could not be resolved: {source}")]
    Lookup {
        host: String,
        source: std::io::Error,
    },
    #[error(
        "{host} resolves only to addresses webhooks are not sent to ({ip} is {why}); this server sends webhooks only to public addresses"
    )]
    Internal {
        host: String,
        ip: IpAddr,
        why: &'static str,
    },
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_internal = self.allow_internal;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|source| ResolveError::Lookup {
                    host: host.clone(),
                    source,
                })?
                .collect();
            if allow_internal {
                return Ok(found.into_iter());
            }
            let mut refused = None;
            let public: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match internal(addr.ip()) {
                    Some(why) => {
                        refused.get_or_insert((addr.ip(), why));
                        false
                    }
                    None => true,
                })
                .collect();
            match (public.is_empty(), refused) {
                (true, Some((ip, why))) => Err(ResolveError::Internal { host, ip, why }),
                _ => Ok(public.into_iter()),
            }
        })
    }
}

/// The HTTP client deliveries are sent with: HTTP/1.1, HTTPS with the system's roots, no
/// proxy, no redirects followed (a redirect is an answer like any other non-2xx).
pub type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<
        hyper_util::client::legacy::connect::HttpConnector<GuardedResolver>,
    >,
    http_body_util::Full<bytes::Bytes>,
>;

pub fn client(allow_internal: bool, timeout: std::time::Duration) -> anyhow::Result<Client> {
    let mut http =
        hyper_util::client::legacy::connect::HttpConnector::new_with_resolver(GuardedResolver {
            allow_internal,
        });
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!(
            errors = ?native.errors,
            "no trusted root certificates found: webhooks to https:// endpoints will fail"
        );
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            // A receiver's idle connection is not kept long: most close theirs sooner.
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .build(https),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_named() {
        for (ip, expected) in [
            ("127.0.0.1", Some("a loopback address")),
            ("10.1.2.3", Some("a private address")),
            ("172.16.0.1", Some("a private address")),
            ("192.168.1.1", Some("a private address")),
            ("169.254.169.254", Some("a link-local address")),
            ("100.64.0.1", Some("a carrier-grade NAT address")),
            ("0.0.0.0", Some("the unspecified address")),
            ("224.0.0.1", Some("a multicast address")),
            ("255.255.255.255", Some("a reserved address")),
            ("::1", Some("a loopback address")),
            ("::", Some("the unspecified address")),
            ("fd00::1", Some("a private (unique local) address")),
            ("fe80::1", Some("a link-local address")),
            ("::ffff:10.0.0.1", Some("a private address")),
            ("64:ff9b::a00:1", Some("a NAT64 address")),
            ("8.8.8.8", None),
            ("100.128.0.1", None),
            ("2606:4700:4700::1111", None),
        ] {
            let parsed: IpAddr = match ip.parse() {
                Ok(parsed) => parsed,
                Err(error) => panic!("{ip}: {error}"),
            };
            assert_eq!(internal(parsed), expected, "{ip}");
        }
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        use tower_service::Service as _;
        let name = |host: &str| host.parse::<Name>();
        let Ok(localhost) = name("localhost") else {
            panic!("not a name")
        };
        let refused = GuardedResolver {
            allow_internal: false,
        }
        .call(localhost.clone())
        .await;
        assert!(
            matches!(&refused, Err(ResolveError::Internal { why, .. }) if why.contains("loopback")),
            "{:?}",
            refused.map(|a| a.collect::<Vec<_>>())
        );
        let allowed = GuardedResolver {
            allow_internal: true,
        }
        .call(localhost)
        .await;
        assert!(allowed.is_ok_and(|mut addrs| addrs.next().is_some()));
    }
}
