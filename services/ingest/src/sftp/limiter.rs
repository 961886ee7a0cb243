//! Failed logins, counted per account and per client address over a sliding window: once
//! either has failed too often, further attempts are refused without checking the password, so
//! guessing is slow whether it tries many passwords on one account or one password on many.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed within [`WINDOW`] before attempts are refused.
pub const MAX_FAILURES: usize = 10;
pub const WINDOW: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Limiter {
    by_account: Mutex<HashMap<String, Vec<Instant>>>,
    by_address: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

fn recent(times: &mut Vec<Instant>, now: Instant) -> usize {
    times.retain(|t| now.duration_since(*t) < WINDOW);
    times.len()
}

impl Limiter {
    /// Whether an attempt for `user` from `address` may be checked now.
    pub fn allows(&self, user: &str, address: Option<IpAddr>) -> bool {
        let now = Instant::now();
        let account_ok = self
            .by_account
            .lock()
            .map(|mut map| {
                map.get_mut(user)
                    .is_none_or(|times| recent(times, now) < MAX_FAILURES)
            })
            .unwrap_or(false);
        let address_ok = address.is_none_or(|address| {
            self.by_address
                .lock()
                .map(|mut map| {
                    map.get_mut(&address)
                        .is_none_or(|times| recent(times, now) < MAX_FAILURES)
                })
                .unwrap_or(false)
        });
        account_ok && address_ok
    }

    pub fn failed(&self, user: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        if let Ok(mut map) = self.by_account.lock() {
            // Bounded: entries with nothing recent are dropped as the map grows.
            if map.len() > 10_000 {
                map.retain(|_, times| recent(times, now) > 0);
            }
            map.entry(user.to_owned()).or_default().push(now);
        }
        if let (Some(address), Ok(mut map)) = (address, self.by_address.lock()) {
            if map.len() > 10_000 {
                map.retain(|_, times| recent(times, now) > 0);
            }
            map.entry(address).or_default().push(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_or_address_that_keeps_failing_is_refused() {
        let limiter = Limiter::default();
        let here: IpAddr = [127, 0, 0, 1].into();
        let there: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.allows("a", Some(here)));
            limiter.failed("a", Some(here));
        }
        assert!(!limiter.allows("a", Some(there)), "the account is limited");
        assert!(!limiter.allows("b", Some(here)), "the address is limited");
        assert!(limiter.allows("b", Some(there)));
    }
}
