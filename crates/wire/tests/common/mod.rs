//! Strategies for every peer message, with realistic contents: objects with
//! siblings and tombstones built by real writes and merges, Merkle requests
//! and responses from real exchanges, layouts computed by the ring.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // test helpers; each test file uses a subset

use bytes::Bytes;
use gyre_membership::{Digest, Heartbeat, LayoutStamp, Message, NodeState, NodeStatus, Tombstone};
use gyre_merkle::{Exchange, ItemDigest, KeyRange, MerkleTree, Step, TreeShape};
use gyre_ring::{Layout, Member, RingConfig};
use gyre_types::{
    BucketName, BucketProps, Key, KeyHash, NodeId, PartitionCount, PartitionId, Timestamp, ZoneName,
};
use gyre_versioning::{Dot, DvvSet, Policy};
use gyre_wire::{
    Answer, BucketEntry, ClientOp, ClientReply, ErrorKind, Expiry, Hello, HelloReply, Item,
    KeyVersion, Object, OneWay, Open, PartitionSize, RemoteError, Request, Response, StreamDone,
    StreamItem, StreamOpen,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------------------
// Validated field types

pub fn bucket() -> impl Strategy<Value = BucketName> {
    prop_oneof![
        Just(BucketName::default()),
        "[A-Za-z0-9._-]{1,64}".prop_map(|s| BucketName::new(s).unwrap()),
    ]
}

pub fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        "[a-z]{1,8}:[0-9]{1,6}".prop_map(|s| Key::new(s).unwrap()),
        vec(any::<u8>(), 1..48).prop_map(|b| Key::new(b).unwrap()),
    ]
}

pub fn zone() -> impl Strategy<Value = ZoneName> {
    "[a-z0-9-]{1,12}".prop_map(|s| ZoneName::new(s).unwrap())
}

pub fn node() -> impl Strategy<Value = NodeId> {
    any::<u64>().prop_map(NodeId::new)
}

pub fn value() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..48).prop_map(Bytes::from)
}

pub fn n_val() -> impl Strategy<Value = u8> {
    1u8..=9
}

pub fn partition() -> impl Strategy<Value = PartitionId> {
    (0u32..256).prop_map(PartitionId::new)
}

// ---------------------------------------------------------------------------
// Objects: DVV sets built the way replicas build them

#[derive(Clone, Debug)]
enum Op {
    /// A client write (`None`: a delete) coordinated by replica `at`.
    Write {
        at: usize,
        value: Option<Bytes>,
        ts: u64,
    },
    /// Replica `to` merges replica `from`'s state.
    Sync { from: usize, to: usize },
}

const REPLICAS: usize = 3;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..REPLICAS, option::weighted(0.8, value()), 1u64..1_000_000)
            .prop_map(|(at, value, ts)| Op::Write { at, value, ts }),
        1 => (0..REPLICAS, 0..REPLICAS).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

/// A replica's state after a history of concurrent writes, deletes and
/// merges on three replicas: siblings and tombstones included.
pub fn object() -> impl Strategy<Value = Object> {
    (vec(op(), 0..12), prop::bool::weighted(0.7)).prop_map(|(ops, merge_all)| {
        let policy = Policy::default();
        let mut replicas: Vec<Object> = vec![DvvSet::new(); REPLICAS];
        for op in ops {
            match op {
                Op::Write { at, value, ts } => {
                    let node = NodeId::new(0x100 + at as u64);
                    let ts = Timestamp::from_u64(ts);
                    let r = &mut replicas[at];
                    match value {
                        // Some values expire, a while after their stamp.
                        Some(v) if ts.as_u64().is_multiple_of(3) => {
                            let ctx = r.context();
                            let expires = Some(Timestamp::from_u64(ts.as_u64() + 1_000));
                            r.put_expiring(&ctx, v, expires, node, ts, &policy).unwrap()
                        }
                        Some(v) => r.put_blind(v, node, ts, &policy).unwrap(),
                        None => r.delete_blind(node, ts, &policy).unwrap(),
                    };
                }
                Op::Sync { from, to } => {
                    let other = replicas[from].clone();
                    replicas[to].sync(&other, &policy);
                }
            }
        }
        let mut out = replicas[0].clone();
        if merge_all {
            for r in &replicas[1..] {
                out.sync(r, &policy);
            }
        }
        out
    })
}

/// An object with at least two siblings, one of them a tombstone.
pub fn conflicted_object() -> Object {
    let policy = Policy::default();
    let (mut a, mut b, mut c) = (DvvSet::new(), DvvSet::new(), DvvSet::new());
    a.put_blind(
        Bytes::from_static(b"red"),
        NodeId::new(1),
        Timestamp::from_u64(10),
        &policy,
    )
    .unwrap();
    b.put_blind(
        Bytes::from_static(b"blue"),
        NodeId::new(2),
        Timestamp::from_u64(11),
        &policy,
    )
    .unwrap();
    c.delete_blind(NodeId::new(3), Timestamp::from_u64(12), &policy)
        .unwrap();
    a.sync(&b, &policy);
    a.sync(&c, &policy);
    assert_eq!(a.sibling_count(), 3);
    assert_eq!(a.read().len(), 2);
    a
}

pub fn item() -> impl Strategy<Value = Item> {
    (bucket(), key(), n_val(), object()).prop_map(|(bucket, key, n_val, object)| Item {
        bucket,
        key,
        n_val,
        object,
    })
}

pub fn key_version() -> impl Strategy<Value = KeyVersion> {
    (bucket(), key(), object()).prop_map(|(bucket, key, object)| KeyVersion {
        bucket,
        key,
        version: object.version_digest(),
    })
}

/// The opaque context bytes a client got from a read.
pub fn context() -> impl Strategy<Value = Bytes> {
    object().prop_map(|o| Bytes::from(o.read().context().to_bytes()))
}

// ---------------------------------------------------------------------------
// Merkle messages from real exchanges

/// Everything one exchange between two real trees sent and received.
#[derive(Clone, Debug)]
pub struct Transcript {
    pub requests: Vec<gyre_merkle::Request>,
    pub responses: Vec<gyre_merkle::Response>,
    pub ranges: Vec<KeyRange>,
}

fn hash_in(q: PartitionCount, p: PartitionId, offset: u64) -> KeyHash {
    let r = q.range(p);
    KeyHash::from_u64(r.start() | (offset & (u64::MAX >> q.bits())))
}

/// An exchange between two replicas' trees of one partition, which differ in
/// some items (or not at all).
pub fn transcript() -> impl Strategy<Value = Transcript> {
    let shapes = prop_oneof![Just((2u8, 2u8)), Just((1, 4)), Just((3, 2)), Just((4, 1))];
    (
        shapes,
        0u32..64,
        vec(any::<u64>(), 0..40),
        vec(any::<Index>(), 0..4),
    )
        .prop_map(|((fanout_bits, depth), p, offsets, changed)| {
            let q = PartitionCount::new(64).unwrap();
            let p = PartitionId::new(p);
            let shape = TreeShape::new(fanout_bits, depth).unwrap();
            let items = |version_of: &dyn Fn(usize) -> u128| {
                offsets
                    .iter()
                    .enumerate()
                    .map(|(i, &o)| {
                        (
                            hash_in(q, p, o),
                            ItemDigest::of(&o.to_le_bytes(), version_of(i)),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            let changed: Vec<usize> = if offsets.is_empty() {
                Vec::new()
            } else {
                changed.iter().map(|i| i.index(offsets.len())).collect()
            };
            let a = MerkleTree::from_items(q, p, shape, items(&|_| 1)).unwrap();
            let b = MerkleTree::from_items(
                q,
                p,
                shape,
                items(&|i| if changed.contains(&i) { 2 } else { 1 }),
            )
            .unwrap();
            let (mut exchange, mut request) = Exchange::new(&a);
            let mut requests = Vec::new();
            let mut responses = Vec::new();
            let ranges = loop {
                requests.push(request.clone());
                let response = b.answer(&request).unwrap();
                responses.push(response.clone());
                match exchange.on_response(&a, response).unwrap() {
                    Step::Send(next) => request = next,
                    Step::Done(outcome) => break outcome.ranges,
                }
            };
            Transcript {
                requests,
                responses,
                ranges,
            }
        })
}

pub fn merkle_request() -> impl Strategy<Value = gyre_merkle::Request> {
    (transcript(), any::<Index>()).prop_map(|(t, i)| i.get(&t.requests).clone())
}

pub fn merkle_response() -> impl Strategy<Value = gyre_merkle::Response> {
    (transcript(), any::<Index>()).prop_map(|(t, i)| i.get(&t.responses).clone())
}

pub fn key_ranges() -> impl Strategy<Value = (PartitionId, Vec<KeyRange>)> {
    transcript().prop_map(|t| {
        let p = t.requests[0].tree().partition();
        (p, t.ranges)
    })
}

// ---------------------------------------------------------------------------
// Layouts

/// A small layout computed by the ring: 1 to 5 members in 1 to 3 zones.
pub fn layout() -> impl Strategy<Value = Layout> {
    (
        vec((0u64..64, 0usize..3, 1u32..=3), 1..=5),
        1u8..=3,
        any::<bool>(),
    )
        .prop_map(|(members, replication, next)| {
            let mut members: Vec<Member> = members
                .into_iter()
                .map(|(id, z, cap)| {
                    Member::new(
                        NodeId::new(id),
                        ZoneName::new(format!("zone-{z}")).unwrap(),
                        cap,
                    )
                })
                .collect();
            members.sort_by_key(|m| m.id);
            members.dedup_by_key(|m| m.id);
            let config = RingConfig {
                partitions: PartitionCount::new(64).unwrap(),
                replication,
            };
            let first = Layout::initial(config, members.clone()).unwrap();
            if next && members.len() > 1 {
                members.pop();
                first.next(members).unwrap()
            } else {
                first
            }
        })
}

// ---------------------------------------------------------------------------
// Messages

pub fn error_kind() -> impl Strategy<Value = ErrorKind> {
    prop_oneof![
        Just(ErrorKind::BadRequest),
        Just(ErrorKind::WrongLayout),
        Just(ErrorKind::Removed),
        Just(ErrorKind::Unavailable),
        Just(ErrorKind::Storage),
        Just(ErrorKind::Busy),
        Just(ErrorKind::Internal),
        Just(ErrorKind::Withdrawn),
    ]
}

pub fn remote_error() -> impl Strategy<Value = RemoteError> {
    (error_kind(), "\\PC{0,40}").prop_map(|(kind, message)| RemoteError { kind, message })
}

pub fn expiry() -> impl Strategy<Value = Expiry> {
    prop_oneof![
        Just(Expiry::Default),
        Just(Expiry::Never),
        Just(Expiry::Keep),
        any::<u64>().prop_map(|ms| Expiry::After { ms }),
        any::<u64>().prop_map(|unix_ms| Expiry::At { unix_ms }),
    ]
}

pub fn client_op() -> impl Strategy<Value = ClientOp> {
    let quorum = || option::of(1u8..=9);
    prop_oneof![
        (bucket(), key(), quorum()).prop_map(|(bucket, key, r)| ClientOp::Get { bucket, key, r }),
        (
            bucket(),
            key(),
            option::of(context()),
            value(),
            quorum(),
            expiry()
        )
            .prop_map(|(bucket, key, context, value, w, expiry)| ClientOp::Put {
                bucket,
                key,
                context,
                value,
                w,
                expiry,
            }),
        (bucket(), key(), option::of(context()), quorum()).prop_map(|(bucket, key, context, w)| {
            ClientOp::Delete {
                bucket,
                key,
                context,
                w,
            }
        }),
    ]
}

pub fn client_reply() -> impl Strategy<Value = ClientReply> {
    prop_oneof![
        object().prop_map(|o| {
            let read = o.read();
            ClientReply::Values {
                values: read.values().cloned().collect(),
                latest: (!read.is_empty()).then_some(0),
                context: Bytes::from(read.context().to_bytes()),
                expires: read
                    .siblings()
                    .iter()
                    .map(|s| s.expires.map(Timestamp::physical_ms))
                    .collect(),
            }
        }),
        (node(), 1u64..1000, context(), context()).prop_map(
            |(node, counter, supersedes, context)| {
                ClientReply::Written {
                    dot: Dot { node, counter },
                    supersedes,
                    context,
                }
            }
        ),
        (any::<u8>(), any::<u8>()).prop_map(|(answered, required)| ClientReply::Unavailable {
            answered,
            required,
            detail: format!("asked {answered}"),
        }),
    ]
}

pub fn request() -> impl Strategy<Value = Request> {
    let layout_version = || 1u64..1000;
    prop_oneof![
        Just(Request::Ping),
        (layout_version(), bucket(), key()).prop_map(|(layout, bucket, key)| {
            Request::ReplicaGet {
                layout,
                bucket,
                key,
            }
        }),
        (layout_version(), item()).prop_map(|(layout, item)| Request::ReplicaPut { layout, item }),
        (layout_version(), client_op(), any::<u64>())
            .prop_map(|(layout, op, ticket)| { Request::Coordinate { layout, op, ticket } }),
        vec(item(), 0..4).prop_map(|items| Request::DeliverHints { items }),
        (n_val(), merkle_request()).prop_map(|(n_val, request)| Request::Merkle { n_val, request }),
        (n_val(), key_ranges()).prop_map(|(n_val, (partition, ranges))| Request::ListKeys {
            partition,
            n_val,
            ranges
        }),
        vec((bucket(), key()), 0..6).prop_map(|keys| Request::Fetch { keys }),
        option::of(layout_stamp()).prop_map(|have| Request::PullLayout { have }),
        (node(), item()).prop_map(|(target, item)| Request::StoreHint { target, item }),
        (bucket(), key(), any::<u128>()).prop_map(|(bucket, key, version)| Request::Purge {
            bucket,
            key,
            version
        }),
        vec(bucket_entry(), 0..4).prop_map(|entries| Request::Buckets { entries }),
        (
            layout_stamp(),
            partition(),
            1u8..=9,
            option::of((bucket(), key())),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(layout, partition, n_val, after, max_items, max_bytes)| {
                Request::HandoffChunk {
                    layout,
                    partition,
                    n_val,
                    after,
                    max_items,
                    max_bytes,
                }
            }),
        Just(Request::PartitionSizes),
        any::<u64>().prop_map(|ticket| Request::Permit { ticket }),
        (layout_version(), bucket(), key()).prop_map(|(layout, bucket, key)| {
            Request::ReplicaDigest {
                layout,
                bucket,
                key,
            }
        }),
    ]
}

pub fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        Just(Response::Pong),
        option::of(object()).prop_map(Response::Object),
        Just(Response::Stored),
        client_reply().prop_map(Response::Client),
        merkle_response().prop_map(Response::Merkle),
        vec(key_version(), 0..6).prop_map(Response::Keys),
        vec(item(), 0..4).prop_map(Response::Items),
        vec(layout(), 0..3).prop_map(Response::Layout),
        (vec(item(), 0..4), option::of((bucket(), key())))
            .prop_map(|(items, next)| Response::Chunk { items, next }),
        vec(
            (partition(), any::<u64>(), any::<u64>()).prop_map(|(partition, objects, bytes)| {
                PartitionSize {
                    partition,
                    objects,
                    bytes,
                }
            }),
            0..4
        )
        .prop_map(Response::Sizes),
        vec(bucket_entry(), 0..4).prop_map(Response::Buckets),
        remote_error().prop_map(Response::Error),
        any::<bool>().prop_map(Response::Permit),
        any::<u128>().prop_map(Response::Digest),
    ]
}

pub fn node_status() -> impl Strategy<Value = NodeStatus> {
    prop_oneof![
        Just(NodeStatus::Joining),
        Just(NodeStatus::Member),
        Just(NodeStatus::Leaving),
        Just(NodeStatus::Left),
    ]
}

fn addr() -> impl Strategy<Value = String> {
    ("[a-z0-9.-]{1,20}", any::<u16>()).prop_map(|(host, port)| format!("{host}:{port}"))
}

pub fn layout_stamp() -> impl Strategy<Value = LayoutStamp> {
    (any::<u64>(), any::<u64>()).prop_map(|(version, digest)| LayoutStamp { version, digest })
}

pub fn node_state() -> impl Strategy<Value = NodeState> {
    (
        (node(), any::<u64>(), any::<u64>(), any::<u64>()),
        (addr(), vec(addr(), 0..3), zone(), 1u32..=100),
        (
            node_status(),
            option::of(layout_stamp()),
            option::of(layout_stamp()),
            option::of(layout_stamp()),
        ),
    )
        .prop_map(
            |(
                (id, generation, heartbeat, version),
                (peer_addr, client_addrs, zone, capacity),
                (status, layout, synced, reading),
            )| NodeState {
                id,
                generation,
                heartbeat,
                version,
                peer_addr,
                client_addrs,
                zone,
                capacity,
                status,
                layout,
                synced,
                reading,
            },
        )
}

fn digest() -> impl Strategy<Value = Digest> {
    (node(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
        |(id, generation, heartbeat, version)| Digest {
            id,
            generation,
            heartbeat,
            version,
        },
    )
}

fn heartbeat() -> impl Strategy<Value = Heartbeat> {
    (node(), any::<u64>(), any::<u64>()).prop_map(|(id, generation, heartbeat)| Heartbeat {
        id,
        generation,
        heartbeat,
    })
}

fn tombstone() -> impl Strategy<Value = Tombstone> {
    (node(), any::<u64>()).prop_map(|(id, age_ms)| Tombstone { id, age_ms })
}

pub fn gossip() -> impl Strategy<Value = Message> {
    prop_oneof![
        (vec(digest(), 0..5), vec(tombstone(), 0..2)).prop_map(|(digests, tombstones)| {
            Message::Syn {
                digests,
                tombstones,
            }
        }),
        (
            vec(node_state(), 0..3),
            vec(heartbeat(), 0..3),
            vec(digest(), 0..3),
            vec(tombstone(), 0..2)
        )
            .prop_map(|(states, heartbeats, want, tombstones)| Message::Ack {
                states,
                heartbeats,
                want,
                tombstones
            }),
        (vec(node_state(), 0..3), vec(heartbeat(), 0..3))
            .prop_map(|(states, heartbeats)| Message::Ack2 { states, heartbeats }),
        Just(Message::Ping),
        Just(Message::Pong),
    ]
}

pub fn one_way() -> impl Strategy<Value = OneWay> {
    gossip().prop_map(OneWay::Gossip)
}

pub fn stream_open() -> impl Strategy<Value = StreamOpen> {
    (partition(), any::<u64>())
        .prop_map(|(partition, layout)| StreamOpen::Handoff { partition, layout })
}

pub fn stream_item() -> impl Strategy<Value = StreamItem> {
    prop_oneof![
        item().prop_map(StreamItem::Item),
        any::<u64>().prop_map(|sent| StreamItem::End { sent }),
    ]
}

pub fn stream_done() -> impl Strategy<Value = StreamDone> {
    prop_oneof![
        any::<u64>().prop_map(|received| StreamDone::Stored { received }),
        remote_error().prop_map(StreamDone::Failed),
    ]
}

pub fn open() -> impl Strategy<Value = Open> {
    prop_oneof![
        request().prop_map(Open::Request),
        one_way().prop_map(Open::Message),
        stream_open().prop_map(Open::Stream),
        Just(Open::Lane),
    ]
}

pub fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        response().prop_map(Answer::Response),
        "\\PC{0,40}".prop_map(|reason| Answer::Failed { reason }),
    ]
}

pub fn hello() -> impl Strategy<Value = Hello> {
    prop_oneof![
        ("[a-z0-9-]{0,16}", node()).prop_map(|(cluster, node)| Hello::new(cluster, node)),
        (any::<u16>(), "\\PC{0,24}", node()).prop_map(|(protocol, cluster, node)| Hello {
            protocol,
            cluster,
            node
        }),
    ]
}

pub fn hello_reply() -> impl Strategy<Value = HelloReply> {
    prop_oneof![
        (any::<u16>(), node()).prop_map(|(protocol, node)| HelloReply::Welcome { protocol, node }),
        "\\PC{0,60}".prop_map(|reason| HelloReply::Refused { reason }),
    ]
}

/// A message of any of the types that travel as whole frames.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Open(Open),
    Response(Response),
    Hello(Hello),
    HelloReply(HelloReply),
    StreamItem(StreamItem),
    StreamDone(StreamDone),
}

impl Frame {
    /// The encoded frame (header and body) under the default limit.
    pub fn encode(&self) -> Bytes {
        use gyre_wire::{FrameLimit, frame};
        let limit = FrameLimit::default();
        match self {
            Self::Open(m) => frame::encode(m, limit),
            Self::Response(m) => frame::encode(m, limit),
            Self::Hello(m) => frame::encode(m, limit),
            Self::HelloReply(m) => frame::encode(m, limit),
            Self::StreamItem(m) => frame::encode(m, limit),
            Self::StreamDone(m) => frame::encode(m, limit),
        }
        .unwrap()
    }
}

pub fn any_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        open().prop_map(Frame::Open),
        response().prop_map(Frame::Response),
        hello().prop_map(Frame::Hello),
        hello_reply().prop_map(Frame::HelloReply),
        stream_item().prop_map(Frame::StreamItem),
        stream_done().prop_map(Frame::StreamDone),
    ]
}

pub fn bucket_entry() -> impl Strategy<Value = BucketEntry> {
    (
        bucket(),
        1u8..=9,
        any::<u64>(),
        node(),
        option::of(1u32..=BucketProps::MAX_DEFAULT_TTL),
    )
        .prop_map(|(bucket, n, stamp, by, ttl)| BucketEntry {
            bucket,
            props: BucketProps::new(n, n / 2 + 1, n / 2 + 1)
                .unwrap()
                .with_default_ttl(ttl)
                .unwrap(),
            stamp,
            by,
        })
}
