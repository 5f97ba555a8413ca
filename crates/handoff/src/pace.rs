//! [`Pacer`]: the handoff throttle, a token bucket with no burst, fed the
//! time.

use std::time::Duration;

/// Paces the bytes a node pulls to at most `rate` bytes per second,
/// whichever stream they belong to: each chunk books its bytes' time after
/// every chunk booked before it (a token bucket that holds no burst). Time
/// is given, never read: `now` is any monotonic clock's time since a fixed
/// start (the node's, or the simulator's virtual one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pacer {
    /// Bytes per second, 0 for no limit.
    rate: u64,
    /// Until when the bytes booked so far have been paid for.
    paid_until: Option<Duration>,
}

impl Pacer {
    /// A pacer at `rate` bytes per second (0: no limit).
    pub fn new(rate: u64) -> Self {
        Self {
            rate,
            paid_until: None,
        }
    }

    /// The rate, bytes per second (0: no limit).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Books `bytes` received at `now`: until when the receiver should wait
    /// before it asks for more (`None`: it need not wait).
    pub fn book(&mut self, now: Duration, bytes: u64) -> Option<Duration> {
        if self.rate == 0 || bytes == 0 {
            return None;
        }
        let start = self.paid_until.filter(|&p| p > now).unwrap_or(now);
        let until = start + Duration::from_secs_f64(bytes as f64 / self.rate as f64);
        self.paid_until = Some(until);
        Some(until)
    }

    /// Changes the rate at `now`. What is left of every booking scales by
    /// old ÷ new at once (a wait under a lifted limit ends; one under a
    /// tighter limit grows); waiters rescale their own with
    /// [`Pacer::rescale`].
    pub fn set_rate(&mut self, now: Duration, rate: u64) {
        let old = std::mem::replace(&mut self.rate, rate);
        self.paid_until = match (self.paid_until, rate) {
            (_, 0) | (None, _) => None,
            (Some(until), new) => Some(Self::rescale(until, now, old, new)),
        };
    }

    /// A wait until `until`, booked at `old` bytes per second, at `new`
    /// instead, seen at `now`: what is left of it scales by `old / new`
    /// (`new` 0, or `old` 0: it ends now).
    pub fn rescale(until: Duration, now: Duration, old: u64, new: u64) -> Duration {
        if old == 0 || new == 0 {
            return now;
        }
        now + until.saturating_sub(now).mul_f64(old as f64 / new as f64)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn no_limit_never_waits() {
        let mut p = Pacer::new(0);
        assert_eq!(p.book(secs(1.0), 1 << 30), None);
        let mut p = Pacer::new(100);
        assert_eq!(p.book(secs(1.0), 0), None);
    }

    #[test]
    fn bookings_queue_after_each_other_and_idle_time_is_not_saved_up() {
        let mut p = Pacer::new(1000);
        assert_eq!(p.book(secs(0.0), 500), Some(secs(0.5)));
        // A second stream's chunk at the same moment waits behind the first.
        assert_eq!(p.book(secs(0.0), 500), Some(secs(1.0)));
        // Idle for a while: no burst was saved up.
        assert_eq!(p.book(secs(10.0), 1000), Some(secs(11.0)));
    }

    #[test]
    fn a_new_rate_rescales_what_is_left() {
        let mut p = Pacer::new(1000);
        assert_eq!(p.book(secs(0.0), 2000), Some(secs(2.0)));
        // At 1 s, one second is left at 1000 B/s: half a second at 2000.
        p.set_rate(secs(1.0), 2000);
        assert_eq!(p.book(secs(1.0), 2000), Some(secs(2.5)));
        // Lifted: nothing is left to wait for.
        p.set_rate(secs(1.2), 0);
        assert_eq!(p.book(secs(1.2), 2000), None);
        assert_eq!(Pacer::rescale(secs(5.0), secs(1.0), 1000, 0), secs(1.0));
    }

    proptest! {
        /// Whatever the chunks, the bytes booked by a time never exceed
        /// what the rate allows by then (plus the chunk being paid for).
        #[test]
        fn the_rate_is_never_exceeded(
            rate in 1u64..1_000_000,
            chunks in prop::collection::vec((0u64..2_000_000, 1u64..500_000), 1..50),
        ) {
            let mut p = Pacer::new(rate);
            let mut now = Duration::ZERO;
            let mut booked = 0u64;
            for (gap_us, bytes) in chunks {
                now += Duration::from_micros(gap_us);
                let until = p.book(now, bytes).unwrap_or(now);
                booked += bytes;
                // Everything booked so far is paid for by `until`.
                let allowed = until.as_secs_f64() * rate as f64;
                prop_assert!(booked as f64 <= allowed + 1.0, "{booked} booked by {until:?} at {rate}/s");
                now = now.max(until);
            }
        }
    }
}
