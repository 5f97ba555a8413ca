//! [`Schedule`]: the replicas a layout change gives a node to fill, run as
//! a state machine with no IO and fed the time. It says which to start now
//! (at most so many at once, in order), when one that had to wait is tried
//! again (after a wait that doubles per failure, so a replica whose sources
//! are down is not asked every second), and when every one is done. The
//! driver starts what [`Schedule::start`] names, hands each outcome back
//! ([`Schedule::finished`]) and sleeps until [`Schedule::next_timeout`].

use std::collections::BTreeMap;
use std::time::Duration;

use gyre_types::PartitionId;

/// A (partition, n_val) replica to fill.
pub type Replica = (PartitionId, u8);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// To start at `not_before`; `wait` is how long the last failure made
    /// it wait (zero: none failed yet).
    Queued {
        not_before: Duration,
        wait: Duration,
    },
    /// Started; `wait` as when it was queued.
    Running {
        wait: Duration,
    },
    Done,
}

/// The fill of the replicas one layout change gives a node.
#[derive(Clone, Debug)]
pub struct Schedule {
    slots: BTreeMap<Replica, Slot>,
    /// The first wait after a failure.
    retry: Duration,
    /// The longest wait.
    retry_max: Duration,
}

impl Schedule {
    /// The fill of `work`; `done` says which replicas a recorded cursor
    /// says are filled already. A replica that fails waits `retry`, then
    /// twice as long per failure, up to `retry_max`.
    pub fn new(
        work: &[Replica],
        done: impl Fn(Replica) -> bool,
        retry: Duration,
        retry_max: Duration,
    ) -> Self {
        let slots = work
            .iter()
            .map(|&r| {
                let slot = if done(r) {
                    Slot::Done
                } else {
                    Slot::Queued {
                        not_before: Duration::ZERO,
                        wait: Duration::ZERO,
                    }
                };
                (r, slot)
            })
            .collect();
        Self {
            slots,
            retry,
            retry_max: retry_max.max(retry),
        }
    }

    /// The replicas to start now, in order, so that at most `max_running`
    /// run at once; each is running until [`finished`](Self::finished).
    pub fn start(&mut self, now: Duration, max_running: usize) -> Vec<Replica> {
        let running = self.running();
        let mut started = Vec::new();
        for (&replica, slot) in &mut self.slots {
            if running + started.len() >= max_running {
                break;
            }
            if let Slot::Queued { not_before, wait } = *slot
                && not_before <= now
            {
                *slot = Slot::Running { wait };
                started.push(replica);
            }
        }
        started
    }

    /// A started replica's outcome: done, or failed and to wait.
    pub fn finished(&mut self, now: Duration, replica: Replica, done: bool) {
        let Some(slot) = self.slots.get_mut(&replica) else {
            return;
        };
        let Slot::Running { wait } = *slot else {
            return;
        };
        *slot = if done {
            Slot::Done
        } else {
            let wait = if wait.is_zero() {
                self.retry
            } else {
                (wait * 2).min(self.retry_max)
            };
            Slot::Queued {
                not_before: now + wait,
                wait,
            }
        };
    }

    /// When a waiting replica may start next, if one waits and there is
    /// room for it (none: wait for a running one to finish, or all done).
    pub fn next_timeout(&self, max_running: usize) -> Option<Duration> {
        if self.running() >= max_running {
            return None;
        }
        self.slots
            .values()
            .filter_map(|s| match s {
                Slot::Queued { not_before, .. } => Some(*not_before),
                _ => None,
            })
            .min()
    }

    /// Whether every replica is filled.
    pub fn is_done(&self) -> bool {
        self.slots.values().all(|s| *s == Slot::Done)
    }

    /// How many run now.
    pub fn running(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s, Slot::Running { .. }))
            .count()
    }

    /// How many replicas it fills, and how many of them are done.
    pub fn counts(&self) -> (usize, usize) {
        let done = self.slots.values().filter(|s| **s == Slot::Done).count();
        (self.slots.len(), done)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn work(n: u32) -> Vec<Replica> {
        (0..n).map(|p| (PartitionId::new(p), 3)).collect()
    }

    #[test]
    fn it_starts_in_order_up_to_the_limit_and_skips_what_is_done() {
        let done = (PartitionId::new(1), 3);
        let mut s = Schedule::new(&work(5), |r| r == done, SEC, 60 * SEC);
        assert_eq!(s.counts(), (5, 1));
        let first = s.start(Duration::ZERO, 2);
        assert_eq!(first, [(PartitionId::new(0), 3), (PartitionId::new(2), 3)]);
        assert!(s.start(Duration::ZERO, 2).is_empty(), "full");
        assert_eq!(s.next_timeout(2), None, "nothing to wake for while full");
        s.finished(Duration::ZERO, first[0], true);
        assert_eq!(s.start(Duration::ZERO, 2), [(PartitionId::new(3), 3)]);
    }

    #[test]
    fn a_failure_waits_and_each_next_one_twice_as_long_up_to_the_most() {
        let r = (PartitionId::new(0), 3);
        let mut s = Schedule::new(&[r], |_| false, SEC, 3 * SEC);
        let mut now = Duration::ZERO;
        for wait in [SEC, 2 * SEC, 3 * SEC, 3 * SEC] {
            assert_eq!(s.start(now, 1), [r]);
            s.finished(now, r, false);
            assert_eq!(s.next_timeout(1), Some(now + wait));
            assert!(s.start(now + wait - Duration::from_millis(1), 1).is_empty());
            now += wait;
        }
        assert_eq!(s.start(now, 1), [r]);
        s.finished(now, r, true);
        assert!(s.is_done());
        assert_eq!(s.next_timeout(1), None);
    }

    #[test]
    fn outcomes_of_what_did_not_start_change_nothing() {
        let r = (PartitionId::new(0), 3);
        let mut s = Schedule::new(&[r], |_| false, SEC, SEC);
        s.finished(Duration::ZERO, r, true);
        s.finished(Duration::ZERO, (PartitionId::new(9), 3), true);
        assert!(!s.is_done());
        assert_eq!(s.start(Duration::ZERO, 1), [r]);
    }

    proptest! {
        /// Driven on a virtual clock with random outcomes: never more than
        /// the limit at once, nothing started before its wait is over or
        /// after it is done, and every replica done once each of its
        /// attempts from some point on succeeds.
        #[test]
        fn a_driven_schedule_keeps_its_limits_and_finishes(
            n in 1u32..24,
            max in 1usize..5,
            outcomes in prop::collection::vec(any::<bool>(), 0..200),
        ) {
            let mut s = Schedule::new(&work(n), |_| false, SEC, 8 * SEC);
            let mut outcomes = outcomes.into_iter();
            let mut now = Duration::ZERO;
            let mut running: BTreeSet<Replica> = BTreeSet::new();
            let mut done: BTreeSet<Replica> = BTreeSet::new();
            let mut not_before: BTreeMap<Replica, Duration> = BTreeMap::new();
            for _ in 0..10_000 {
                for r in s.start(now, max) {
                    prop_assert!(!done.contains(&r));
                    prop_assert!(not_before.get(&r).is_none_or(|&t| t <= now));
                    prop_assert!(running.insert(r));
                }
                prop_assert!(running.len() <= max);
                prop_assert_eq!(s.running(), running.len());
                if let Some(&r) = running.iter().next() {
                    // Outcomes run out: from then on everything succeeds.
                    let ok = outcomes.next().unwrap_or(true);
                    running.remove(&r);
                    s.finished(now, r, ok);
                    if ok {
                        done.insert(r);
                    } else {
                        not_before.insert(r, now + SEC);
                    }
                } else if let Some(t) = s.next_timeout(max) {
                    prop_assert!(t > now);
                    now = t;
                } else {
                    break;
                }
            }
            prop_assert!(s.is_done());
            prop_assert_eq!(done.len(), n as usize);
            prop_assert_eq!(s.counts(), (n as usize, n as usize));
        }
    }
}
