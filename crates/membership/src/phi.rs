//! The phi-accrual failure detector (Hayashibara et al., 2004), as Akka
//! computes it: inter-arrival times of a node's heartbeats fitted to a normal
//! distribution, and `phi = -log10(P(a heartbeat comes later than now))`.
//!
//! Phi is a suspicion level, not a verdict: 1 means a 10% chance that the
//! silence so far is normal, 8 means 10⁻⁸. The caller compares it with its
//! threshold. `acceptable_pause` is added to the mean (it lets a node skip
//! a few heartbeats without suspicion) and `min_std` bounds the deviation
//! below (perfectly regular heartbeats would otherwise make the slightest
//! delay look like a crash).

use std::collections::VecDeque;
use std::time::Duration;

/// Phi is capped here: the approximation's tail reaches infinity, and a
/// status page or a metric wants a number.
pub const MAX_PHI: f64 = 1000.0;

/// Heartbeat arrival history of one node.
#[derive(Clone, Debug)]
pub(crate) struct PhiDetector {
    /// Recent inter-arrival times, in microseconds, oldest first.
    intervals: VecDeque<u64>,
    /// Exact running sums over `intervals`, so mean and variance never drift.
    sum: u128,
    sum_sq: u128,
    /// The last arrival.
    last: Duration,
}

/// Parameters of [`PhiDetector::phi`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct PhiParams {
    pub(crate) min_std: Duration,
    pub(crate) acceptable_pause: Duration,
}

impl PhiDetector {
    /// A detector whose history holds two samples around `first_estimate`
    /// (mean ± a quarter), as Akka's does: the first verdicts rest on the
    /// configured interval until real arrivals replace it.
    pub(crate) fn new(now: Duration, first_estimate: Duration) -> Self {
        let mean = micros(first_estimate);
        let std = mean / 4;
        let mut d = Self {
            intervals: VecDeque::new(),
            sum: 0,
            sum_sq: 0,
            last: now,
        };
        d.push(mean.saturating_sub(std), usize::MAX);
        d.push(mean.saturating_add(std), usize::MAX);
        d
    }

    /// A heartbeat arrived: record the interval since the last one.
    pub(crate) fn heartbeat(&mut self, now: Duration, window: usize) {
        let interval = micros(now.saturating_sub(self.last));
        self.push(interval, window.max(1));
        self.last = now;
    }

    /// Restart the clock without recording an interval: the silence before
    /// `now` (a crash, a partition) says nothing about the heartbeat rhythm.
    pub(crate) fn restart(&mut self, now: Duration) {
        self.last = now;
    }

    /// Number of intervals in the history.
    #[cfg(test)]
    pub(crate) fn samples(&self) -> usize {
        self.intervals.len()
    }

    fn push(&mut self, interval: u64, window: usize) {
        while self.intervals.len() >= window {
            let Some(old) = self.intervals.pop_front() else {
                break;
            };
            self.sum -= u128::from(old);
            self.sum_sq -= u128::from(old) * u128::from(old);
        }
        self.intervals.push_back(interval);
        self.sum += u128::from(interval);
        self.sum_sq += u128::from(interval) * u128::from(interval);
    }

    /// The suspicion level at `now`, in `0.0..=MAX_PHI`.
    pub(crate) fn phi(&self, now: Duration, params: PhiParams) -> f64 {
        let n = self.intervals.len().max(1) as f64;
        let mean = self.sum as f64 / n;
        let variance = (self.sum_sq as f64 / n - mean * mean).max(0.0);
        let std = variance.sqrt().max(micros(params.min_std) as f64).max(1.0);
        let mean = mean + micros(params.acceptable_pause) as f64;
        let t = micros(now.saturating_sub(self.last)) as f64;
        phi(t, mean, std)
    }
}

/// `-log10(1 - F(t))` for the normal distribution `N(mean, std)`, with the
/// logistic approximation of its CDF that Akka uses (error below 0.02%).
fn phi(t: f64, mean: f64, std: f64) -> f64 {
    let y = (t - mean) / std;
    let e = (-y * (1.5976 + 0.070_566 * y * y)).exp();
    let p = if t > mean {
        -(e / (1.0 + e)).log10()
    } else {
        -(1.0 - 1.0 / (1.0 + e)).log10()
    };
    if p.is_nan() {
        MAX_PHI
    } else {
        p.clamp(0.0, MAX_PHI)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);
    const PARAMS: PhiParams = PhiParams {
        min_std: Duration::from_millis(100),
        acceptable_pause: Duration::ZERO,
    };

    fn regular(n: u32) -> PhiDetector {
        let mut d = PhiDetector::new(Duration::ZERO, SEC);
        for i in 1..=n {
            d.heartbeat(SEC * i, 1000);
        }
        d
    }

    #[test]
    fn phi_rises_with_silence() {
        let d = regular(20);
        let last = SEC * 20;
        let mut prev = -1.0;
        for ms in (0..10_000).step_by(100) {
            let p = d.phi(last + Duration::from_millis(ms), PARAMS);
            assert!(p >= prev, "phi fell from {prev} to {p} at +{ms} ms");
            prev = p;
        }
        assert!(d.phi(last + SEC * 2, PARAMS) > 8.0);
        assert_eq!(d.phi(last + SEC * 3600, PARAMS), MAX_PHI);
    }

    #[test]
    fn phi_stays_low_with_regular_heartbeats() {
        let mut d = PhiDetector::new(Duration::ZERO, SEC);
        for i in 1..=200u32 {
            let now = SEC * i;
            assert!(
                d.phi(now, PARAMS) < 1.0,
                "phi {} at beat {i}",
                d.phi(now, PARAMS)
            );
            d.heartbeat(now, 100);
        }
        assert_eq!(d.samples(), 100);
        assert!(d.phi(SEC * 200 + Duration::from_millis(500), PARAMS) < 0.1);
    }

    #[test]
    fn irregular_heartbeats_make_phi_more_patient() {
        let steady = regular(50);
        let mut jittery = PhiDetector::new(Duration::ZERO, SEC);
        let mut now = Duration::ZERO;
        for i in 0..50u64 {
            now += Duration::from_millis(if i % 2 == 0 { 400 } else { 1600 });
            jittery.heartbeat(now, 1000);
        }
        let silence = Duration::from_millis(2500);
        assert!(jittery.phi(now + silence, PARAMS) < steady.phi(SEC * 50 + silence, PARAMS));
    }

    #[test]
    fn acceptable_pause_delays_suspicion() {
        let d = regular(20);
        let paused = PhiParams {
            acceptable_pause: SEC * 3,
            ..PARAMS
        };
        let at = SEC * 20 + SEC * 2;
        assert!(d.phi(at, PARAMS) > 8.0);
        assert!(d.phi(at, paused) < 1.0);
    }

    #[test]
    fn restart_forgets_the_silence_without_learning_from_it() {
        let mut d = regular(20);
        let back = SEC * 600;
        assert_eq!(d.phi(back, PARAMS), MAX_PHI);
        d.restart(back);
        assert!(d.phi(back + Duration::from_millis(500), PARAMS) < 1.0);
        assert_eq!(d.samples(), 22);
    }

    #[test]
    fn time_going_backwards_is_no_silence() {
        let d = regular(5);
        assert_eq!(d.phi(Duration::ZERO, PARAMS), 0.0);
    }
}
