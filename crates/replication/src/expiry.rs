//! Expiry: what a client asked for ([`Expiry`]) turned into the absolute
//! expiry stored with the version, and what a read at a given time sees.
//!
//! The coordinator decides once, when it mints the write's dot, so every
//! replica stores the same expiry and no replica's clock matters later. An
//! expiry is a wall-clock reading (`Timestamp` with a zero logical part):
//! a time to live counts from the physical part of the write's hybrid
//! timestamp, which is never behind the coordinator's wall clock.
//!
//! Clock tolerance: a value is readable until the wall clock of the node
//! coordinating a read passes its expiry. If node clocks differ by at most
//! δ, a value disappears at most δ early or late as seen from the writer's
//! clock; the hybrid clock only ever moves expiries later (a coordinator
//! that observed a timestamp ahead of its wall clock counts from it).

use gyre_types::{BucketProps, Timestamp};
use gyre_versioning::{Context, DvvSet};
use gyre_wire::Expiry;

/// The absolute expiry of a value written at `ts` as `expiry` asks, in a
/// bucket with `props`, over the key's state `current`, superseding what
/// `supersedes` covers. `None`: it never expires.
pub fn expires<V>(
    expiry: Expiry,
    ts: Timestamp,
    props: &BucketProps,
    current: &DvvSet<V>,
    supersedes: &Context,
) -> Option<Timestamp> {
    let after = |ms: u64| {
        Some(Timestamp::from_parts(
            ts.physical_ms().saturating_add(ms),
            0,
        ))
    };
    match expiry {
        Expiry::Default => props
            .default_ttl()
            .and_then(|secs| after(u64::from(secs) * 1000)),
        Expiry::Never => None,
        Expiry::After { ms } => after(ms),
        Expiry::At { unix_ms } => Some(Timestamp::from_parts(unix_ms, 0)),
        Expiry::Keep => current
            .siblings()
            .filter(|s| s.value.is_some() && supersedes.covers(s.dot))
            .max_by_key(|s| s.lww_key())
            .and_then(|s| s.expires),
    }
}

/// The time a read at wall-clock `wall_ms` compares expiries with.
pub fn read_time(wall_ms: u64) -> Timestamp {
    Timestamp::from_parts(wall_ms, 0)
}

/// An expiry as clients see it: milliseconds since the Unix epoch.
pub fn unix_ms(expires: Option<Timestamp>) -> Option<u64> {
    expires.map(Timestamp::physical_ms)
}

#[cfg(test)]
mod tests {
    use gyre_types::NodeId;
    use gyre_versioning::Policy;

    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_parts(ms, 0)
    }

    #[test]
    fn each_request_turns_into_an_absolute_expiry() {
        let props = BucketProps::default();
        let none = DvvSet::<u8>::new();
        let ctx = Context::empty();
        // The logical part of the write's timestamp does not count.
        let ts = Timestamp::from_parts(10_000, 7);
        assert_eq!(expires(Expiry::Default, ts, &props, &none, &ctx), None);
        assert_eq!(expires(Expiry::Never, ts, &props, &none, &ctx), None);
        assert_eq!(
            expires(Expiry::After { ms: 1_500 }, ts, &props, &none, &ctx),
            Some(at(11_500))
        );
        assert_eq!(
            expires(Expiry::At { unix_ms: 5 }, ts, &props, &none, &ctx),
            Some(at(5))
        );
        let with_default = props.with_default_ttl(Some(30)).unwrap();
        assert_eq!(
            expires(Expiry::Default, ts, &with_default, &none, &ctx),
            Some(at(40_000))
        );
        assert_eq!(expires(Expiry::Never, ts, &with_default, &none, &ctx), None);
        // Huge times to live saturate instead of wrapping.
        let far = expires(Expiry::After { ms: u64::MAX }, ts, &props, &none, &ctx);
        assert_eq!(
            far.map(Timestamp::physical_ms),
            Some(Timestamp::MAX_PHYSICAL_MS)
        );
    }

    #[test]
    fn keep_takes_the_latest_superseded_value_s_expiry() {
        let p = Policy::default();
        let (a, b) = (NodeId::new(1), NodeId::new(2));
        let mut s = DvvSet::new();
        s.put_expiring(&Context::empty(), 1u8, Some(at(100)), a, at(1), &p)
            .unwrap();
        s.put_expiring(&Context::empty(), 2u8, Some(at(200)), b, at(2), &p)
            .unwrap();
        let ts = at(50);
        let props = BucketProps::default();
        assert_eq!(
            expires(Expiry::Keep, ts, &props, &s, &s.context()),
            Some(at(200))
        );
        // Only what the write supersedes counts.
        let only_a = Context::from_entries([(a, 1)]);
        assert_eq!(
            expires(Expiry::Keep, ts, &props, &s, &only_a),
            Some(at(100))
        );
        assert_eq!(
            expires(Expiry::Keep, ts, &props, &s, &Context::empty()),
            None
        );
    }
}
