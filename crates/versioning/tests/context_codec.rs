//! The client context encoding: round trips, is canonical, and turns every
//! kind of garbage (random bytes, flipped bits, truncations, crafted
//! encodings with a valid checksum) into a typed error, never a panic.

use gyre_types::NodeId;
use gyre_versioning::{Context, ContextError, Error};
use proptest::prelude::*;

fn context() -> impl Strategy<Value = Context> {
    prop::collection::vec(
        (
            prop_oneof![any::<u64>(), 0u64..8],
            prop_oneof![any::<u64>(), 0u64..300],
        ),
        0..12,
    )
    .prop_map(|e| Context::from_entries(e.into_iter().map(|(n, c)| (NodeId::new(n), c))))
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// An encoding of arbitrary entries, with a valid checksum: what a client
/// that knows the format could send.
fn crafted(count: u64, entries: &[(u64, &[u8])]) -> Vec<u8> {
    let mut out = vec![1];
    varint(count, &mut out);
    for (node, counter) in entries {
        out.extend_from_slice(&node.to_be_bytes());
        out.extend_from_slice(counter);
    }
    let sum = xxhash_rust::xxh3::xxh3_64(&out) as u32;
    out.extend_from_slice(&sum.to_be_bytes());
    out
}

fn decode_err(bytes: &[u8]) -> ContextError {
    match Context::from_bytes(bytes) {
        Err(Error::InvalidContext(e)) => e,
        other => panic!("expected a context error, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trips(ctx in context()) {
        let bytes = ctx.to_bytes();
        let back = Context::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &ctx);
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    /// Any input is either the one encoding of some context or a typed error.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        match Context::from_bytes(&bytes) {
            Ok(ctx) => prop_assert_eq!(ctx.to_bytes(), bytes),
            Err(e) => prop_assert!(matches!(e, Error::InvalidContext(_))),
        }
    }

    /// Garbage behind a plausible header reaches the deeper checks.
    #[test]
    fn garbage_after_a_valid_header_never_panics(
        count in prop_oneof![0u64..4, any::<u64>()],
        tail in prop::collection::vec(any::<u8>(), 0..48),
    ) {
        let mut bytes = vec![1];
        varint(count, &mut bytes);
        bytes.extend_from_slice(&tail);
        if let Ok(ctx) = Context::from_bytes(&bytes) {
            prop_assert_eq!(ctx.to_bytes(), bytes);
        }
    }

    #[test]
    fn every_flipped_bit_is_detected(ctx in context()) {
        let bytes = ctx.to_bytes();
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            prop_assert!(Context::from_bytes(&bad).is_err(), "bit {} flipped went unnoticed", i);
        }
    }

    #[test]
    fn every_truncation_and_extension_is_detected(ctx in context(), extra in any::<u8>()) {
        let bytes = ctx.to_bytes();
        for len in 0..bytes.len() {
            prop_assert!(Context::from_bytes(&bytes[..len]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(extra);
        prop_assert_eq!(decode_err(&longer), ContextError::TrailingBytes(1));
    }
}

#[test]
fn specific_errors() {
    assert_eq!(decode_err(&[]), ContextError::Truncated);
    assert_eq!(
        decode_err(&[2, 0, 0, 0, 0, 0]),
        ContextError::UnknownVersion(2)
    );
    assert_eq!(decode_err(&[0]), ContextError::UnknownVersion(0));
    let mut good = Context::empty().to_bytes();
    *good.last_mut().unwrap() ^= 0x10;
    assert_eq!(decode_err(&good), ContextError::BadChecksum);
    assert_eq!(
        decode_err(&Context::empty().to_bytes()[..5]),
        ContextError::Truncated
    );

    let one: &[u8] = &[1];
    let two: &[u8] = &[2];
    assert_eq!(
        decode_err(&crafted(2, &[(5, one), (3, one)])),
        ContextError::NotSorted
    );
    assert_eq!(
        decode_err(&crafted(2, &[(5, one), (5, two)])),
        ContextError::Duplicate
    );
    assert_eq!(
        decode_err(&crafted(1, &[(5, &[0])])),
        ContextError::ZeroCounter
    );
    assert_eq!(
        decode_err(&crafted(1, &[(5, &[0x81, 0x00])])),
        ContextError::OverlongVarint
    );
    assert_eq!(
        decode_err(&crafted(
            1,
            &[(
                5,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]
            )]
        )),
        ContextError::VarintOverflow
    );
    // A count the input cannot hold is refused before anything is allocated.
    assert_eq!(decode_err(&crafted(u64::MAX, &[])), ContextError::Truncated);
    assert_eq!(
        decode_err(&crafted(2, &[(5, one)])),
        ContextError::Truncated
    );
    // A well-formed, checksummed, canonical encoding decodes.
    let ok = crafted(2, &[(3, &[0xac, 0x02]), (5, one)]);
    assert_eq!(
        Context::from_bytes(&ok).unwrap(),
        Context::from_entries([(NodeId::new(3), 300), (NodeId::new(5), 1)])
    );
}

#[test]
fn errors_read_well() {
    let e = Context::from_bytes(&[9]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid causal context: unknown format version 9"
    );
}

#[test]
fn display_and_debug() {
    let ctx = Context::from_entries([(NodeId::new(0xab), 3)]);
    assert_eq!(ctx.to_string(), "{00000000000000ab:3}");
    assert_eq!(format!("{ctx:?}"), "Context{00000000000000ab:3}");
    assert_eq!(Context::empty().to_string(), "{}");
}

#[test]
fn serde_form_is_validated() {
    let n = NodeId::new;
    assert!(Context::try_from(vec![(n(1), 1), (n(2), 5)]).is_ok());
    assert_eq!(
        Context::try_from(vec![(n(2), 1), (n(1), 5)]),
        Err(Error::InvalidContext(ContextError::NotSorted))
    );
    assert_eq!(
        Context::try_from(vec![(n(1), 1), (n(1), 5)]),
        Err(Error::InvalidContext(ContextError::Duplicate))
    );
    assert_eq!(
        Context::try_from(vec![(n(1), 0)]),
        Err(Error::InvalidContext(ContextError::ZeroCounter))
    );
}
