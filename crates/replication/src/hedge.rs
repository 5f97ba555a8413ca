//! How long a coordinator waits for one peer before it hedges: a round-trip
//! estimate per peer (Jacobson's smoothed RTT and its variation, as TCP
//! computes its retransmission timeout), clamped between a floor and a cap.

use std::time::Duration;

/// When a request to a peer counts as slow: its smoothed round trip plus
/// four times the round trips' variation (TCP's retransmission timeout,
/// RFC 6298: a request slower than that is in the tail), between `floor`
/// and `cap`. A peer not yet measured gets `cap`.
///
/// Pure arithmetic: the driver measures, [`RttEstimator::observe`]s and
/// asks [`RttEstimator::delay`].
///
/// ```
/// use std::time::Duration;
/// use gyre_replication::RttEstimator;
///
/// let ms = Duration::from_millis;
/// let mut rtt = RttEstimator::new(ms(5), ms(400));
/// assert_eq!(rtt.delay(), ms(400), "unmeasured: the cap");
/// for _ in 0..20 {
///     rtt.observe(ms(2));
/// }
/// assert_eq!(rtt.delay(), ms(5), "steady 2 ms round trips: the floor");
/// rtt.observe(ms(60));
/// assert!(rtt.delay() > ms(30), "a jump widens the margin: {:?}", rtt.delay());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttEstimator {
    floor: Duration,
    cap: Duration,
    /// Smoothed round trip and its mean deviation, once measured.
    state: Option<(Duration, Duration)>,
}

impl RttEstimator {
    /// An estimator with no measurement yet, whose delays stay within
    /// `floor..=cap`.
    pub fn new(floor: Duration, cap: Duration) -> Self {
        Self {
            floor,
            cap: cap.max(floor),
            state: None,
        }
    }

    /// One measured round trip (of a request that was answered).
    pub fn observe(&mut self, rtt: Duration) {
        self.state = Some(match self.state {
            None => (rtt, rtt / 2),
            Some((srtt, rttvar)) => {
                let deviation = srtt.abs_diff(rtt);
                // rttvar = 3/4 rttvar + 1/4 |srtt - rtt|; srtt = 7/8 srtt + 1/8 rtt.
                (srtt * 7 / 8 + rtt / 8, rttvar * 3 / 4 + deviation / 4)
            }
        });
    }

    /// How long to wait for this peer before hedging.
    pub fn delay(&self) -> Duration {
        match self.state {
            None => self.cap,
            Some((srtt, rttvar)) => (srtt + rttvar * 4).clamp(self.floor, self.cap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever was measured, the delay stays within its bounds.
        #[test]
        fn the_delay_stays_between_floor_and_cap(
            rtts in proptest::collection::vec(0u64..5_000, 0..50),
            floor in 0u64..50,
            cap in 0u64..2_000,
        ) {
            let (floor, cap) = (Duration::from_millis(floor), Duration::from_millis(cap));
            let mut e = RttEstimator::new(floor, cap);
            for r in rtts {
                e.observe(Duration::from_millis(r));
                prop_assert!(e.delay() >= floor && e.delay() <= cap.max(floor));
            }
        }
    }

    #[test]
    fn steady_round_trips_converge_to_them() {
        let ms = Duration::from_millis;
        let mut e = RttEstimator::new(ms(1), ms(1_000));
        for _ in 0..100 {
            e.observe(ms(20));
        }
        let d = e.delay();
        assert!(d >= ms(20) && d <= ms(22), "{d:?}");
    }
}
