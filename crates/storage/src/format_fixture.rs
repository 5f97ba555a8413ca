//! The on-disk formats, pinned: `tests/fixtures/store-v3.bin` holds every
//! entry of a small store (objects with siblings and tombstones, Merkle
//! leaves and tree sizes, hints, metadata) as written today; the same store
//! as earlier formats wrote it: `store-v1.bin` (its trees' marker named
//! `merkle_shape`, under which a batch that changed a leaf twice persisted
//! only its last change) and `store-v2.bin` (marker `merkle_leaves`, no
//! tree sizes). Trees under an earlier marker are rebuilt once at open.
//!
//! - Building the same store today must produce exactly the newest
//!   fixture's bytes, so an accidental change of any encoding fails here.
//! - A store opened over any fixture must read back what was written, so
//!   data written by every format stays readable.
//!
//! After an intended format change (with a new format tag and a reader for
//! the old one), add a fixture path, point `NEWEST` at it, write it with
//! `GYRE_BLESS_FIXTURES=1 cargo test -p gyre-storage format_fixture` and
//! commit it beside the old ones.

use bytes::Bytes;
use gyre_ring::{Layout, Member, RingConfig};
use gyre_types::{
    BucketName, BucketProps, ConflictMode, Key, NodeId, PartitionCount, Timestamp, ZoneName,
};
use gyre_versioning::Policy;

use crate::engine::{Engine, MemEngine, Op, Space};
use crate::{Change, Hint, MemStore, Object, ObjectId, Store, StoreConfig};

const V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v1.bin");
const V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v2.bin");
const V3: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v3.bin");
/// The fixture today's code writes.
const NEWEST: &str = V3;
const MAGIC: &[u8] = b"gyre-store-fixture-1\n";

fn config() -> StoreConfig {
    StoreConfig {
        partitions: PartitionCount::new(64).unwrap(),
        ..StoreConfig::default()
    }
}

fn oid(bucket: &str, key: &[u8]) -> ObjectId {
    ObjectId::new(
        BucketName::new(bucket).unwrap(),
        Key::new(key.to_vec()).unwrap(),
    )
}

fn ts(ms: u64) -> Timestamp {
    Timestamp::from_parts(ms, 3)
}

fn layout() -> Layout {
    let members = [(1, "eu-1"), (2, "eu-2"), (3, "eu-3")]
        .into_iter()
        .map(|(i, z)| Member::new(NodeId::new(i), ZoneName::new(z).unwrap(), 100))
        .collect();
    let config = RingConfig {
        partitions: PartitionCount::new(64).unwrap(),
        replication: 3,
    };
    Layout::initial(config, members).unwrap()
}

fn carts() -> BucketProps {
    BucketProps::new(5, 2, 3)
        .unwrap()
        .with_conflict_mode(ConflictMode::Lww)
        .with_max_value_len(1 << 20)
        .unwrap()
}

/// Concurrent writes by nodes 1 and 2: two siblings.
fn alice() -> Object {
    let p = Policy::default();
    let mut a = Object::new();
    a.put_blind(
        Bytes::from_static(b"apples"),
        NodeId::new(1),
        ts(1_700_000_000_000),
        &p,
    )
    .unwrap();
    let mut b = Object::new();
    b.put_blind(
        Bytes::from(vec![0xa5; 300]),
        NodeId::new(2),
        ts(1_700_000_000_001),
        &p,
    )
    .unwrap();
    a.sync(&b, &p);
    a
}

/// Written, then deleted: a tombstone.
fn bob() -> Object {
    let p = Policy::default();
    let mut o = Object::new();
    o.put_blind(
        Bytes::from_static(b"pears"),
        NodeId::new(3),
        ts(1_700_000_000_002),
        &p,
    )
    .unwrap();
    o.delete_blind(NodeId::new(3), ts(1_700_000_000_003), &p)
        .unwrap();
    o
}

fn hint(i: u8) -> Hint {
    let mut o = Object::new();
    o.put_blind(
        Bytes::from(vec![i; usize::from(i)]),
        NodeId::new(1),
        ts(1_700_000_000_100 + u64::from(i)),
        &Policy::default(),
    )
    .unwrap();
    Hint {
        id: oid("default", &[b'h', i, 0xff]),
        n_val: 3,
        object: o,
    }
}

fn build() -> MemStore {
    let s = MemStore::new(config()).unwrap();
    let put = |id: ObjectId, n_val: u8, o: Object| {
        s.update(&id, n_val, |_| Change::Write(o, ())).unwrap();
    };
    put(oid("carts", b"alice"), 3, alice());
    put(oid("carts", b"bob"), 3, bob());
    put(oid("default", b"\x00binary\xff"), 1, alice());
    s.add_hint(NodeId::new(7), &hint(1)).unwrap();
    s.add_hint(NodeId::new(7), &hint(2)).unwrap();
    s.add_hint(NodeId::new(9), &hint(3)).unwrap();
    s.set_node_id(NodeId::new(0x1234)).unwrap();
    s.set_cluster_id("fixture").unwrap();
    s.set_layout(&layout()).unwrap();
    s.set_bucket_props(&BucketName::new("carts").unwrap(), &carts())
        .unwrap();
    s
}

fn encode(rows: &[(Space, Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (space, k, v) in rows {
        out.push(*space as u8);
        for part in [k, v] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

fn decode(bytes: &[u8]) -> Vec<Op> {
    let mut rest = bytes.strip_prefix(MAGIC).expect("fixture magic");
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n);
        rest = tail;
        head.to_vec()
    };
    let mut ops = Vec::new();
    let mut remaining = bytes.len() - MAGIC.len();
    while remaining > 0 {
        let space = Space::ALL[usize::from(take(1)[0])];
        let klen = u32::from_le_bytes(take(4).try_into().unwrap()) as usize;
        let k = take(klen);
        let vlen = u32::from_le_bytes(take(4).try_into().unwrap()) as usize;
        let v = take(vlen);
        remaining -= 9 + klen + vlen;
        ops.push(Op::Put(space, k, v));
    }
    ops
}

#[test]
fn current_encoding_matches_the_fixture() {
    let bytes = encode(&build().engine().dump());
    if std::env::var_os("GYRE_BLESS_FIXTURES").is_some() {
        std::fs::write(NEWEST, &bytes).unwrap();
    }
    let committed = std::fs::read(NEWEST).expect("committed fixture");
    assert!(
        bytes == committed,
        "the store's on-disk encoding changed: see the docs of this module"
    );
}

fn open(ops: Vec<Op>) -> MemStore {
    let engine = MemEngine::default();
    engine.write(ops).unwrap();
    MemStore::with_engine(engine, config()).unwrap()
}

fn fixture(path: &str) -> Vec<Op> {
    decode(&std::fs::read(path).expect("committed fixture"))
}

#[test]
fn every_fixture_reads_back() {
    for path in [V1, V2, V3] {
        reads_back(&open(fixture(path)));
    }
}

/// Under an earlier format's marker the trees are rebuilt from the data
/// once (format 1's leaves may be off: a batch that changed a leaf twice
/// kept only its last change; format 2 kept no sizes), and kept under
/// today's marker from then on.
#[test]
fn earlier_formats_rebuild_their_trees_once() {
    for (path, old_marker) in [
        (V1, crate::meta::MERKLE_SHAPE_V1),
        (V2, crate::meta::MERKLE_LEAVES_V2),
    ] {
        let mut ops = fixture(path);
        let leaf = ops
            .iter_mut()
            .find_map(|op| match op {
                Op::Put(Space::Leaves, _, v) => Some(v),
                _ => None,
            })
            .expect("the fixture holds leaves");
        *leaf = crate::codec::encode_leaf(0x5eed).to_vec();
        let s = open(ops);
        assert_eq!(s.verify_trees().unwrap(), [], "{path}");
        assert_eq!(s.tree_sizes().len(), 3, "{path}");
        let dump = s.engine().dump();
        let marker = |name: &str| {
            dump.iter()
                .any(|(space, k, _)| *space == Space::Meta && k.as_slice() == name.as_bytes())
        };
        assert!(!marker(old_marker), "{path}");
        assert!(marker(crate::meta::MERKLE_TREES), "{path}");
    }
    // Today's marker: the leaves and sizes are loaded as they are.
    let corrupted = |what: Space, value: Vec<u8>, sizes: bool| {
        let mut ops = fixture(V3);
        for op in &mut ops {
            if let Op::Put(space, k, v) = op
                && *space == what
                && (k.ends_with(&[0xff; 4]) == sizes)
            {
                *v = value.clone();
            }
        }
        open(ops).verify_trees().unwrap()
    };
    let leaf = crate::codec::encode_leaf(0x5eed).to_vec();
    assert!(!corrupted(Space::Leaves, leaf, false).is_empty());
    let size = crate::codec::encode_sizes(crate::TreeSize {
        objects: 7,
        bytes: 7,
    });
    let mismatches = corrupted(Space::Leaves, size.to_vec(), true);
    assert_eq!(mismatches.len(), 3);
    assert!(mismatches.iter().all(|m| m.kept_root == m.data_root
        && m.kept_size.objects == 7
        && m.data_size.objects != 7));
}

fn reads_back(s: &MemStore) {
    assert_eq!(s.get(&oid("carts", b"alice")).unwrap(), Some(alice()));
    assert_eq!(s.get(&oid("carts", b"bob")).unwrap(), Some(bob()));
    assert!(s.get(&oid("carts", b"bob")).unwrap().unwrap().is_deleted());
    assert_eq!(
        s.get(&oid("default", b"\x00binary\xff")).unwrap(),
        Some(alice())
    );
    assert_eq!(s.verify_trees().unwrap(), []);
    assert_eq!(s.merkle_trees().len(), 3);

    let hints: Vec<Hint> = s
        .hints(NodeId::new(7), None, 10)
        .unwrap()
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    assert_eq!(hints, [hint(1), hint(2)]);
    assert_eq!(s.hint_backlog().get(&NodeId::new(9)), Some(&1));

    assert_eq!(s.node_id().unwrap(), Some(NodeId::new(0x1234)));
    assert_eq!(s.cluster_id().unwrap().as_deref(), Some("fixture"));
    assert_eq!(s.layout().unwrap(), Some(layout()));
    assert_eq!(
        s.bucket_props(&BucketName::new("carts").unwrap()).unwrap(),
        Some(carts())
    );
}
