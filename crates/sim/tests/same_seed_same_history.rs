//! A seed replays exactly: two runs of one seed record the same history
//! (every operation, outcome, dot, context and virtual time, every fault),
//! and another seed records another.
#![allow(clippy::unwrap_used)]

use gyre_sim::{SimConfig, run};

#[test]
fn one_seed_twice_gives_the_same_history() {
    let config = SimConfig::default();
    let a = run(1234, &config);
    let b = run(1234, &config);
    assert!(a.is_ok(), "{a}");
    assert!(
        a.history.ops.len() > 50 && a.history.events.len() > 5,
        "{a}"
    );
    assert_eq!(a.history.digest(), b.history.digest());
    assert_eq!(a.history, b.history);
    assert_eq!(a.virtual_time, b.virtual_time);
    assert_eq!(a.traffic, b.traffic);

    let other = run(1235, &config);
    assert_ne!(a.history.digest(), other.history.digest());
}
