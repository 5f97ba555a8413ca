//! Slowing down guessing: each address's recent failed authentications
//! delay its next attempts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failures forgiven: the first few cost nothing.
const FREE: u32 = 3;
/// The delay after the first failure past the free ones; it doubles with
/// each further one.
const BASE: Duration = Duration::from_millis(100);
/// The longest delay.
const MAX: Duration = Duration::from_secs(5);
/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most (the oldest are dropped first).
const MAX_ADDRESSES: usize = 10_000;

/// Recent failures per address.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Throttle {
    /// How long an attempt from `ip` should wait before it is answered.
    pub fn delay(&self, ip: IpAddr) -> Duration {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match failures.get(&ip) {
            Some(&(n, at)) if at.elapsed() < WINDOW && n > FREE => {
                BASE.saturating_mul(1 << (n - FREE - 1).min(16)).min(MAX)
            }
            _ => Duration::ZERO,
        }
    }

    /// An attempt from `ip` failed.
    pub fn failed(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&ip) {
            failures.retain(|_, (_, at)| at.elapsed() < WINDOW);
            if failures.len() >= MAX_ADDRESSES
                && let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(ip, _)| *ip)
            {
                failures.remove(&oldest);
            }
        }
        let entry = failures.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            entry.0 = 0;
        }
        *entry = (entry.0.saturating_add(1), Instant::now());
    }

    /// An attempt from `ip` succeeded: its failures are forgiven.
    pub fn succeeded(&self, ip: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_free_ones_double_the_delay_until_a_success() {
        let t = Throttle::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let mut delays = Vec::new();
        for _ in 0..10 {
            delays.push(t.delay(ip));
            t.failed(ip);
        }
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 0, 0, 0, 100, 200, 400, 800, 1600, 3200]);
        t.failed(ip);
        t.failed(ip);
        assert_eq!(t.delay(ip), MAX);
        assert_eq!(t.delay(other), Duration::ZERO);
        t.succeeded(ip);
        assert_eq!(t.delay(ip), Duration::ZERO);
    }
}
