//! Bytes from a peer are untrusted: decoding anything — random bytes, or valid
//! frames with bits flipped, cut short, extended or spliced together — as any
//! top-level message is an error or a value that round-trips, never a panic.
//! The frame reader refuses an oversized frame from its header alone, and a
//! length prefix that lies cannot make the decoder allocate what it claims.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::fmt::Debug;
use std::time::{Duration, Instant};

use common::any_frame;
use gyre_wire::{
    Answer, Error, FrameLimit, FrameReader, Hello, HelloReply, Open, Response, StreamDone,
    StreamItem, frame,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes `body` as a `T`: either a decode error, or a value that survives
/// another encode/decode round trip.
fn check<T>(body: &[u8]) -> Result<bool, TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    match frame::decode::<T>(body) {
        Err(Error::Decode(_)) => Ok(false),
        Err(e) => Err(TestCaseError::fail(format!("not a decode error: {e}"))),
        Ok(value) => {
            let encoded = frame::encode(&value, FrameLimit::DEFAULT).unwrap();
            let again: T = frame::decode(&encoded[frame::HEADER_LEN..]).unwrap();
            prop_assert_eq!(again, value);
            Ok(true)
        }
    }
}

/// [`check`] as every top-level type; how many accepted the bytes.
fn check_all(body: &[u8]) -> Result<usize, TestCaseError> {
    let accepted = [
        check::<Open>(body)?,
        check::<Response>(body)?,
        check::<Answer>(body)?,
        check::<Hello>(body)?,
        check::<HelloReply>(body)?,
        check::<StreamItem>(body)?,
        check::<StreamDone>(body)?,
    ];
    Ok(accepted.into_iter().filter(|&a| a).count())
}

/// Random bytes, biased towards the small values (variant tags, short
/// lengths, `None`) that postcard encodings are made of.
fn noise(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![3 => 0u8..4, 1 => 0x7f..=0x81u8, 4 => any::<u8>()],
        0..max,
    )
}

/// One way of damaging an encoding.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(Index, u8),
    Overwrite(Index, u8),
    Truncate(Index),
    Remove(Index, usize),
    Insert(Index, Vec<u8>),
    Extend(Vec<u8>),
    /// The front of this encoding, then the back of another one.
    Splice(Index, Vec<u8>, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Overwrite(i, b)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 1usize..8).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (any::<Index>(), noise(8)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => noise(16).prop_map(Mutation::Extend),
        2 => (any::<Index>(), any_frame(), any::<Index>())
            .prop_map(|(i, f, j)| Mutation::Splice(i, f.encode()[frame::HEADER_LEN..].to_vec(), j)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
    match m {
        Mutation::FlipBit(i, bit) => {
            if !bytes.is_empty() {
                let k = at(i, bytes.len());
                bytes[k] ^= 1 << bit;
            }
        }
        Mutation::Overwrite(i, b) => {
            if !bytes.is_empty() {
                let k = at(i, bytes.len());
                bytes[k] = *b;
            }
        }
        Mutation::Truncate(i) => bytes.truncate(at(i, bytes.len())),
        Mutation::Remove(i, n) => {
            let k = at(i, bytes.len());
            let end = (k + n).min(bytes.len());
            bytes.drain(k..end);
        }
        Mutation::Insert(i, extra) => {
            let k = at(i, bytes.len() + 1);
            bytes.splice(k..k, extra.iter().copied());
        }
        Mutation::Extend(extra) => bytes.extend_from_slice(extra),
        Mutation::Splice(i, other, j) => {
            bytes.truncate(at(i, bytes.len() + 1));
            bytes.extend_from_slice(&other[at(j, other.len() + 1)..]);
        }
    }
}

/// Splits `stream` into frames the way a correct reader must: the bodies of
/// the whole frames, and whether it stopped at an oversized header.
fn reference_split(mut stream: &[u8], max: u32) -> (Vec<&[u8]>, bool) {
    let mut bodies = Vec::new();
    while let Some(header) = stream.get(..frame::HEADER_LEN) {
        let len = u32::from_le_bytes(header.try_into().unwrap());
        if len > max {
            return (bodies, true);
        }
        let Some(body) = stream.get(frame::HEADER_LEN..frame::HEADER_LEN + len as usize) else {
            break;
        };
        bodies.push(body);
        stream = &stream[frame::HEADER_LEN + len as usize..];
    }
    (bodies, false)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop_oneof![noise(64), noise(4096)]) {
        check_all(&bytes)?;
    }

    #[test]
    fn damaged_encodings_never_panic(
        msg in any_frame(),
        mutations in vec(mutation(), 1..4),
    ) {
        let mut bytes = msg.encode()[frame::HEADER_LEN..].to_vec();
        prop_assert!(check_all(&bytes)? >= 1, "the undamaged body decodes");
        for m in &mutations {
            apply(&mut bytes, m);
            check_all(&bytes)?;
        }
    }

    /// A `FrameReader` fed any bytes in any chunks returns exactly the frames
    /// a reference splitter finds, refuses an oversized header as soon as it
    /// is complete (holding no more than that chunk), and never panics.
    #[test]
    fn the_frame_reader_handles_any_stream(
        parts in vec(prop_oneof![
            3 => any_frame().prop_map(|f| f.encode().to_vec()),
            1 => noise(64),
            1 => (1025u32..=u32::MAX).prop_map(|len| len.to_le_bytes().to_vec()),
        ], 0..6),
        mutations in vec(mutation(), 0..3),
        chunks in vec(1usize..100, 1..20),
        max in prop_oneof![Just(1024u32), 1024u32..4096, Just(FrameLimit::DEFAULT.get())],
    ) {
        let mut stream: Vec<u8> = parts.concat();
        for m in &mutations {
            apply(&mut stream, m);
        }
        let (expected, oversized) = reference_split(&stream, max);
        let mut reader = FrameReader::new(FrameLimit::new(max).unwrap());
        let mut bodies = Vec::new();
        let mut refused = false;
        let mut rest = stream.as_slice();
        'feed: for &n in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            reader.extend(piece);
            loop {
                match reader.next_body() {
                    Ok(Some(body)) => {
                        prop_assert!(body.len() <= max as usize);
                        check_all(&body)?;
                        bodies.push(body);
                    }
                    Ok(None) => break,
                    Err(Error::FrameTooLarge { len, max: m }) => {
                        prop_assert_eq!(m, max);
                        prop_assert!(len > u64::from(max));
                        prop_assert!(reader.buffered() < frame::HEADER_LEN + n);
                        prop_assert!(reader.next_body().is_err(), "the refusal sticks");
                        refused = true;
                        break 'feed;
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
                }
            }
        }
        prop_assert_eq!(refused, oversized);
        prop_assert_eq!(bodies.len(), expected.len());
        for (got, want) in bodies.iter().zip(&expected) {
            prop_assert_eq!(&got[..], *want);
        }
    }

    /// A header over the limit is refused at once, whatever (little) follows
    /// it: the reader does not wait for the announced body.
    #[test]
    fn an_oversized_header_is_refused_before_its_body(
        max in 1024u32..1 << 20,
        excess in 1u32..=u32::MAX,
        body in noise(32),
    ) {
        let len = max.saturating_add(excess).max(max + 1);
        let limit = FrameLimit::new(max).unwrap();
        let mut reader = FrameReader::new(limit);
        for &b in &len.to_le_bytes()[..frame::HEADER_LEN - 1] {
            reader.extend(&[b]);
            prop_assert_eq!(reader.next_body(), Ok(None));
        }
        reader.extend(&len.to_le_bytes()[frame::HEADER_LEN - 1..]);
        let refused = Err(Error::FrameTooLarge { len: u64::from(len), max });
        prop_assert_eq!(&reader.next_body(), &refused);
        prop_assert_eq!(reader.buffered(), frame::HEADER_LEN);
        reader.extend(&body);
        prop_assert_eq!(&reader.next_body(), &refused);
        prop_assert_eq!(reader.buffered(), frame::HEADER_LEN + body.len());
    }
}

#[test]
fn a_valid_frame_then_an_oversized_header() {
    let limit = FrameLimit::new(1024).unwrap();
    let ok = frame::encode(&StreamDone::Stored { received: 3 }, limit).unwrap();
    let mut reader = FrameReader::new(limit);
    reader.extend(&ok);
    reader.extend(&u32::MAX.to_le_bytes());
    let body = reader.next_body().unwrap().unwrap();
    assert_eq!(
        frame::decode::<StreamDone>(&body).unwrap(),
        StreamDone::Stored { received: 3 }
    );
    assert_eq!(
        reader.next_body(),
        Err(Error::FrameTooLarge {
            len: u64::from(u32::MAX),
            max: 1024
        })
    );
    assert_eq!(reader.buffered(), frame::HEADER_LEN);
}

/// A postcard varint.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// The process's peak virtual memory in bytes (Linux), to show that a lying
/// length prefix reserved nothing like what it claimed.
fn peak_virtual_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmPeak:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn lying_length_prefixes_allocate_nothing_like_their_claim() {
    const BUCKET: &[u8] = b"\x07default";
    const KEY: &[u8] = b"\x01k";
    let huge = varint(u64::from(u32::MAX));
    let cat = |parts: &[&[u8]]| parts.concat();
    // (what, as which type, body): each names a sequence of u32::MAX (or
    // u64::MAX) elements and then holds a few bytes.
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        // Open::Request(Request::Fetch { keys }) with 2^32 - 1 (bucket, key) pairs.
        (
            "fetch keys",
            "open",
            cat(&[&[0, 7], &huge, BUCKET, KEY, BUCKET, KEY]),
        ),
        (
            "fetch keys (u64::MAX)",
            "open",
            cat(&[&[0, 7], &varint(u64::MAX), BUCKET, KEY]),
        ),
        // Open::Request(Request::ReplicaGet { layout: 1, bucket, key }), the key's bytes.
        (
            "key bytes",
            "open",
            cat(&[&[0, 1, 1], BUCKET, &huge, b"abc"]),
        ),
        // Open::Request(Request::DeliverHints { items }).
        (
            "hinted items",
            "open",
            cat(&[&[0, 4], &huge, BUCKET, KEY, &[3]]),
        ),
        // Open::Request(Request::ListKeys { partition: 0, n_val: 3, ranges }).
        (
            "key ranges",
            "open",
            cat(&[&[0, 6, 0, 3], &huge, &[1, 2, 3]]),
        ),
        // Open::Request(Request::Merkle { n_val, Children { tree, level, nodes } }).
        (
            "merkle nodes",
            "open",
            cat(&[&[0, 5, 3, 1, 64, 0, 2, 2, 0], &huge, &[1, 2]]),
        ),
        // Open::Message(OneWay::Gossip(Message::Ack2 { states, .. })).
        (
            "gossip states",
            "open",
            cat(&[&[1, 0, 2], &huge, &[1, 1, 1, 1, 1, b'a']]),
        ),
        // Response::Object(Some(dvv)) with 2^32 - 1 entries.
        ("dvv entries", "response", cat(&[&[1, 1], &huge, &[1, 1]])),
        // Response::Object(Some(dvv)): one entry with 2^32 - 1 siblings.
        (
            "dvv siblings",
            "response",
            cat(&[&[1, 1, 1, 5, 9], &huge, &[1, 1, 1]]),
        ),
        // Response::Keys(versions).
        ("key versions", "response", cat(&[&[5], &huge, BUCKET, KEY])),
        // Response::Merkle(Children { level, digests }).
        (
            "merkle digests",
            "response",
            cat(&[&[4, 1, 0], &huge, &[0; 20]]),
        ),
        // Response::Layout(Some(layout)): version, config, then members.
        (
            "layout members",
            "response",
            cat(&[&[7, 1, 1, 64, 3], &huge, &[1, 1, b'a', 1]]),
        ),
        // Response::Client(Values { values, context }).
        (
            "reply values",
            "response",
            cat(&[&[3, 0], &huge, &[3, b'a', b'b', b'c']]),
        ),
        // Hello { protocol, cluster, node } whose cluster claims 4 GiB.
        ("cluster name", "hello", cat(&[&[1], &huge, b"prod"])),
        // HelloReply::Refused { reason }.
        ("refusal", "hello reply", cat(&[&[1], &huge, b"no"])),
        // StreamItem::Item with a key of 2^32 - 1 bytes.
        (
            "stream key",
            "stream item",
            cat(&[&[0], BUCKET, &huge, b"k"]),
        ),
        // StreamDone::Failed { message }.
        (
            "failure message",
            "stream done",
            cat(&[&[1, 0], &huge, b"x"]),
        ),
    ];
    let before = peak_virtual_memory();
    let started = Instant::now();
    for (what, ty, body) in &cases {
        let result = match *ty {
            "open" => frame::decode::<Open>(body).map(drop),
            "response" => frame::decode::<Response>(body).map(drop),
            "hello" => frame::decode::<Hello>(body).map(drop),
            "hello reply" => frame::decode::<HelloReply>(body).map(drop),
            "stream item" => frame::decode::<StreamItem>(body).map(drop),
            "stream done" => frame::decode::<StreamDone>(body).map(drop),
            _ => unreachable!(),
        };
        assert!(
            matches!(result, Err(Error::Decode(_))),
            "{what}: {result:?} from {body:?}"
        );
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    if let (Some(before), Some(after)) = (before, peak_virtual_memory()) {
        // Honouring the smallest claim (2^32 - 1 single bytes) would take
        // 4 GiB; serde caps pre-allocation at 1 MiB per sequence.
        let grown = after.saturating_sub(before);
        assert!(grown < 1 << 30, "peak virtual memory grew by {grown} bytes");
    }
}

/// The crafted bodies above are the right shape: with an honest length they
/// decode (or fail only where the data runs out), so the errors come from
/// the lying prefix, not from a wrong variant tag.
#[test]
fn the_crafted_prefixes_are_read_where_intended() {
    use gyre_wire::Request;
    let honest = [&[0u8, 7, 2][..], b"\x07default\x01k\x07default\x01k"].concat();
    assert_eq!(
        frame::decode::<Open>(&honest).unwrap(),
        Open::Request(Request::Fetch {
            keys: vec![
                (
                    Default::default(),
                    gyre_types::Key::new(b"k".to_vec()).unwrap()
                );
                2
            ]
        })
    );
    let lying = [
        &[0u8, 7][..],
        &varint(u64::from(u32::MAX)),
        b"\x07default\x01k",
    ]
    .concat();
    let err = frame::decode::<Open>(&lying).unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
}

/// The fuzz target's seed corpus (`crates/wire/fuzz`): inputs in its format
/// (a control byte, then a stream of valid frames of every type). Every
/// seed must split into exactly its frames, each decoding to what was
/// encoded. With `GYRE_WIRE_FUZZ_SEEDS=<dir>` the seeds are also written
/// there, to start a fuzzing run from.
#[test]
fn fuzz_seeds_are_valid_frame_streams() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let dir = std::env::var_os("GYRE_WIRE_FUZZ_SEEDS");
    if let Some(dir) = &dir {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut runner = TestRunner::deterministic();
    let seeds = (any::<u8>(), vec(any_frame(), 1..4));
    for n in 0..500 {
        let (control, frames) = seeds.new_tree(&mut runner).unwrap().current();
        let mut input = vec![control];
        for f in &frames {
            input.extend_from_slice(&f.encode());
        }
        let mut reader = FrameReader::new(FrameLimit::DEFAULT);
        reader.extend(&input[1..]);
        for f in &frames {
            let body = reader.next_body().unwrap().expect("a whole frame");
            assert_eq!(&body[..], &f.encode()[frame::HEADER_LEN..]);
        }
        assert_eq!(reader.buffered(), 0);
        if let Some(dir) = &dir {
            let path = std::path::Path::new(dir).join(format!("seed-{n:03}"));
            std::fs::write(path, input).unwrap();
        }
    }
}

/// Every list a peer can send has an element cap (a few encoded bytes can
/// decode into a struct of a hundred): at the cap it decodes, one more is a
/// decode error.
#[test]
fn lists_over_their_caps_are_refused() {
    use gyre_membership::{Digest, MAX_LIST, Message};
    use gyre_types::{BucketName, Key, NodeId, Timestamp};
    use gyre_versioning::{DvvSet, MAX_ENTRIES};
    use gyre_wire::{Item, Object, OneWay, Request, limits};

    let limit = FrameLimit::DEFAULT;
    let decodes = |msg: &Open| {
        let bytes = frame::encode(msg, limit).unwrap();
        frame::decode::<Open>(&bytes[frame::HEADER_LEN..])
    };
    let bucket = BucketName::new("b").unwrap();
    let key = Key::new(b"k".to_vec()).unwrap();

    let fetch = |n: usize| {
        Open::Request(Request::Fetch {
            keys: vec![(bucket.clone(), key.clone()); n],
        })
    };
    assert!(decodes(&fetch(limits::MAX_KEYS)).is_ok());
    assert!(matches!(
        decodes(&fetch(limits::MAX_KEYS + 1)),
        Err(Error::Decode(_))
    ));

    let item = Item {
        bucket: bucket.clone(),
        key: key.clone(),
        n_val: 3,
        object: Object::default(),
    };
    let hints = |n: usize| {
        Open::Request(Request::DeliverHints {
            items: vec![item.clone(); n],
        })
    };
    assert!(decodes(&hints(limits::MAX_ITEMS)).is_ok());
    assert!(matches!(
        decodes(&hints(limits::MAX_ITEMS + 1)),
        Err(Error::Decode(_))
    ));

    let syn = |n: usize| {
        Open::Message(OneWay::Gossip(Message::Syn {
            digests: (0..n as u64)
                .map(|i| Digest {
                    id: NodeId::new(i),
                    generation: 1,
                    heartbeat: 1,
                    version: 1,
                })
                .collect(),
            tombstones: Vec::new(),
        }))
    };
    assert!(decodes(&syn(MAX_LIST)).is_ok());
    assert!(matches!(decodes(&syn(MAX_LIST + 1)), Err(Error::Decode(_))));

    let object = |entries: usize| -> Object {
        DvvSet::from_parts((1..=entries as u64).map(|n| {
            (
                NodeId::new(n),
                1,
                vec![(1, Timestamp::from_u64(n), Some(bytes::Bytes::new()), None)],
            )
        }))
        .unwrap()
    };
    let put = |entries: usize| {
        Open::Request(Request::ReplicaPut {
            layout: 1,
            item: Item {
                object: object(entries),
                ..item.clone()
            },
        })
    };
    assert!(decodes(&put(MAX_ENTRIES)).is_ok());
    assert!(matches!(
        decodes(&put(MAX_ENTRIES + 1)),
        Err(Error::Decode(_))
    ));
}
