//! Every message between nodes.
//!
//! Postcard encodes enums by variant index and structs by field order, so
//! the order of variants and fields below is part of the protocol: append
//! new variants at the end, and change anything else only with a new
//! [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).

use bytes::Bytes;
use gyre_membership::{LayoutStamp, Message};
use gyre_merkle::KeyRange;
use gyre_ring::Layout;
use gyre_types::{BucketName, BucketProps, Key, NodeId, PartitionId};
use gyre_versioning::{Dot, DvvSet};
use serde::{Deserialize, Serialize};

/// The most elements of each list a message may carry. A decoded message
/// may take more memory than its encoding (a few bytes can become a struct
/// of a hundred); capping every list bounds that growth.
pub mod limits {
    /// Sibling values in a read's answer.
    pub const MAX_VALUES: usize = 4096;
    /// Objects in one hint delivery, fetch answer or anti-entropy push.
    pub const MAX_ITEMS: usize = 65_536;
    /// Hash ranges in one key listing.
    pub const MAX_RANGES: usize = 65_536;
    /// Keys in one fetch.
    pub const MAX_KEYS: usize = 65_536;
    /// Keys in one listing's answer.
    pub const MAX_KEY_VERSIONS: usize = 1 << 20;
    /// Buckets in one catalogue exchange.
    pub const MAX_BUCKETS: usize = 65_536;
    /// Partitions in one size report (Q is at most 4,096).
    pub const MAX_PARTITIONS: usize = 4096;
    /// Keys in one key scan's answer.
    pub const MAX_SCAN_KEYS: usize = 65_536;
    /// Layouts in one layout history.
    pub const MAX_LAYOUTS: usize = gyre_membership::MAX_HISTORY;
}

/// One bucket of the cluster's catalogue: its properties, as last set.
/// Replicas of the catalogue converge by last writer wins on
/// `(stamp, by)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketEntry {
    /// The bucket.
    pub bucket: BucketName,
    /// Its properties.
    #[serde(with = "props_fields")]
    pub props: BucketProps,
    /// When they were set: wall-clock milliseconds at the node that set them.
    pub stamp: u64,
    /// The node that set them (breaks ties of `stamp`).
    pub by: NodeId,
}

/// [`BucketProps`] as a fixed tuple of fields (their own serde form has
/// optional fields, which suit JSON but not postcard), checked on decode.
mod props_fields {
    use gyre_types::{BucketProps, ConflictMode};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Fields = (u8, u8, u8, ConflictMode, u32, u32, Option<u32>);

    pub(super) fn serialize<S: Serializer>(p: &BucketProps, s: S) -> Result<S::Ok, S::Error> {
        let fields: Fields = (
            p.n_val(),
            p.r(),
            p.w(),
            p.conflict_mode(),
            p.max_siblings(),
            p.max_value_len(),
            p.default_ttl(),
        );
        fields.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BucketProps, D::Error> {
        let (n, r, w, mode, siblings, len, ttl) = Fields::deserialize(d)?;
        BucketProps::new(n, r, w)
            .and_then(|p| p.with_max_siblings(siblings))
            .and_then(|p| p.with_max_value_len(len))
            .and_then(|p| p.with_default_ttl(ttl))
            .map(|p| p.with_conflict_mode(mode))
            .map_err(serde::de::Error::custom)
    }
}

impl BucketEntry {
    /// Whether this entry wins over `other` (last writer wins).
    pub fn supersedes(&self, other: &BucketEntry) -> bool {
        (self.stamp, self.by, self.props_key()) > (other.stamp, other.by, other.props_key())
    }

    /// Orders entries of equal stamp and node (the same change, or a
    /// corrupt peer) deterministically.
    fn props_key(&self) -> (u8, u8, u8, u32, u32, u8, Option<u32>) {
        let p = &self.props;
        (
            p.n_val(),
            p.r(),
            p.w(),
            p.max_siblings(),
            p.max_value_len(),
            match p.conflict_mode() {
                gyre_types::ConflictMode::Siblings => 0,
                gyre_types::ConflictMode::Lww => 1,
                gyre_types::ConflictMode::Counter => 2,
            },
            p.default_ttl(),
        )
    }
}

/// A replica's state of one key, as it travels: a DVV set of byte values.
pub type Object = DvvSet<Bytes>;

/// The first frame on a new connection, from the node that opened it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the sender speaks.
    pub protocol: u16,
    /// The cluster the sender belongs to; nodes of other clusters are refused.
    pub cluster: String,
    /// The sender's node id; the receiver checks it against the sender's
    /// certificate.
    pub node: NodeId,
}

/// The answer to a [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// The connection is accepted.
    Welcome {
        /// The protocol version the receiver speaks (the same).
        protocol: u16,
        /// The receiver's node id.
        node: NodeId,
    },
    /// The connection is refused; the receiver closes it.
    Refused {
        /// Why, for the sender's log.
        reason: String,
    },
}

/// One object with what a replica needs to file it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The bucket.
    pub bucket: BucketName,
    /// The key.
    pub key: Key,
    /// The bucket's n_val (which Merkle tree the key belongs to).
    pub n_val: u8,
    /// The state to merge.
    pub object: Object,
}

/// A key and the digest of the version a replica holds, for anti-entropy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersion {
    /// The bucket.
    pub bucket: BucketName,
    /// The key.
    pub key: Key,
    /// `DvvSet::version_digest` of the replica's state.
    pub version: u128,
}

/// A client operation forwarded to a node that may coordinate it (one in
/// the key's preference list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientOp {
    /// Read a key at quorum `r` (the bucket's default if `None`).
    Get {
        /// The bucket.
        bucket: BucketName,
        /// The key.
        key: Key,
        /// Read quorum override.
        r: Option<u8>,
    },
    /// Write a value with the context of an earlier read (`None`: blind).
    Put {
        /// The bucket.
        bucket: BucketName,
        /// The key.
        key: Key,
        /// The opaque context bytes the client got from a read.
        context: Option<Bytes>,
        /// The value.
        value: Bytes,
        /// Write quorum override.
        w: Option<u8>,
        /// When the value expires.
        expiry: Expiry,
    },
    /// Delete with the context of an earlier read (`None`: blind).
    Delete {
        /// The bucket.
        bucket: BucketName,
        /// The key.
        key: Key,
        /// The opaque context bytes the client got from a read.
        context: Option<Bytes>,
        /// Write quorum override.
        w: Option<u8>,
    },
    /// Add `delta` to a counter (a key of a `counter` bucket).
    Increment {
        /// The bucket.
        bucket: BucketName,
        /// The key.
        key: Key,
        /// What to add (negative: subtract).
        delta: i64,
        /// Write quorum override.
        w: Option<u8>,
    },
}

impl ClientOp {
    /// The bucket and key the operation is about.
    pub fn target(&self) -> (&BucketName, &Key) {
        match self {
            Self::Get { bucket, key, .. }
            | Self::Put { bucket, key, .. }
            | Self::Delete { bucket, key, .. }
            | Self::Increment { bucket, key, .. } => (bucket, key),
        }
    }
}

/// When a written value expires, as the client asked. The coordinator turns
/// it into an absolute expiry stored with the version (see
/// [`gyre_versioning::Sibling::expires`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiry {
    /// The bucket's `default_ttl`, or never if it has none.
    #[default]
    Default,
    /// Never (Redis `PERSIST`).
    Never,
    /// This many milliseconds after the coordinator stamps the write
    /// (Redis `EX`/`PX`).
    After {
        /// Milliseconds to live.
        ms: u64,
    },
    /// At this wall-clock time, milliseconds since the Unix epoch (Redis
    /// `EXAT`/`PXAT`).
    At {
        /// The expiry.
        unix_ms: u64,
    },
    /// The expiry of the value the write supersedes, the latest if several
    /// (Redis `KEEPTTL`).
    Keep,
}

/// The result of a forwarded [`ClientOp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientReply {
    /// A read: the live values and the context to write them back with.
    Values {
        /// The siblings' values (empty: not found or deleted).
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_VALUES }>")]
        values: Vec<Bytes>,
        /// Which of `values` was written last by the hybrid clock (greatest
        /// timestamp, then node, then counter): what a protocol that cannot
        /// show siblings returns. `None` when there are no values.
        latest: Option<u32>,
        /// The opaque context.
        context: Bytes,
        /// When each of `values` expires (same order; milliseconds since the
        /// Unix epoch), `None` for a value that does not.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_VALUES }>")]
        expires: Vec<Option<u64>>,
    },
    /// A write reached its quorum.
    Written {
        /// The new version's dot.
        dot: Dot,
        /// The context the write was made with (the client's, or for a
        /// blind write the coordinator's own): the versions it superseded.
        supersedes: Bytes,
        /// The context of the state after the write, to write again with.
        context: Bytes,
    },
    /// Too few replicas answered. A write may still exist on some of them:
    /// not confirmed, not "not written".
    Unavailable {
        /// Replicas that answered in time.
        answered: u8,
        /// Replicas the quorum required.
        required: u8,
        /// What fell short, whom the coordinator asked, how long it waited.
        detail: String,
    },
    /// An increment reached its quorum.
    Counted {
        /// The counter as its coordinator holds it after the increment
        /// (increments still on their way to it are not in it).
        value: i64,
        /// The context of the state after the increment.
        context: Bytes,
    },
}

/// A request that expects one [`Response`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Liveness and round-trip check; answered with [`Response::Pong`].
    Ping,
    /// A replica's state of one key; answered with [`Response::Object`].
    ReplicaGet {
        /// The version of the layout the sender routed the read with (its
        /// read layout). A replica that retired that layout refuses the
        /// read ([`ErrorKind::WrongLayout`]).
        layout: u64,
        /// The bucket.
        bucket: BucketName,
        /// The key.
        key: Key,
    },
    /// Merge a state into a replica (a coordinated put or delete, or read
    /// repair); answered with [`Response::Stored`] once durable.
    ReplicaPut {
        /// The version of the layout the sender routed with (a write's
        /// newest layout, a read repair's read layout). A replica that
        /// retired that layout refuses the write ([`ErrorKind::WrongLayout`]).
        layout: u64,
        /// The object.
        item: Item,
    },
    /// Coordinate a client operation; answered with [`Response::Client`].
    Coordinate {
        /// The layout version the sender routed with.
        layout: u64,
        /// The operation.
        op: ClientOp,
        /// For a forwarded write, the sender's ticket: before the receiver
        /// starts the write (mints its dot), it asks the sender for a
        /// [`Request::Permit`] of it, and the sender permits it to one
        /// primary only, so a write forwarded to several primaries in turn
        /// (the first slow or dead) is applied at most once. 0: no permit
        /// needed (reads, which may be asked of several primaries at once).
        ticket: u64,
    },
    /// Hinted handoff: states held for the receiver while it was away;
    /// answered with [`Response::Stored`] once all are durable.
    DeliverHints {
        /// The objects to merge.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_ITEMS }>")]
        items: Vec<Item>,
    },
    /// One step of a Merkle exchange over the tree of (partition, n_val);
    /// answered with [`Response::Merkle`].
    Merkle {
        /// The n_val of the tree (the request names the partition).
        n_val: u8,
        /// The exchange step.
        request: gyre_merkle::Request,
    },
    /// The keys (and versions) a replica holds in some ranges of a tree;
    /// answered with [`Response::Keys`].
    ListKeys {
        /// The partition.
        partition: PartitionId,
        /// The n_val of the tree.
        n_val: u8,
        /// The hash ranges, as a Merkle exchange reported them.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_RANGES }>")]
        ranges: Vec<KeyRange>,
    },
    /// The states of some keys (anti-entropy); answered with [`Response::Items`].
    Fetch {
        /// The keys.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_KEYS }>")]
        keys: Vec<(BucketName, Key)>,
    },
    /// The receiver's layout history if its newest stamp is greater than
    /// `have`; answered with [`Response::Layout`].
    PullLayout {
        /// The stamp of the layout the sender holds, if any.
        have: Option<LayoutStamp>,
    },
    /// Sloppy quorum: keep `item` as a hint for `target` (a replica that
    /// could not be reached), apart from the receiver's own data; answered
    /// with [`Response::Stored`] once durable.
    StoreHint {
        /// The replica the write is meant for.
        target: NodeId,
        /// The state to hand it.
        item: Item,
    },
    /// Remove a tombstone that every replica holds, if the receiver's state
    /// is still exactly that tombstone; answered with [`Response::Stored`].
    Purge {
        /// The bucket.
        bucket: BucketName,
        /// The key.
        key: Key,
        /// The tombstone's `DvvSet::version_digest`.
        version: u128,
    },
    /// Bucket catalogue exchange: merge the sender's entries; answered with
    /// [`Response::Buckets`], the receiver's whole catalogue after the merge.
    Buckets {
        /// The sender's entries (all, or just a change).
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_BUCKETS }>")]
        entries: Vec<BucketEntry>,
    },
    /// Partition handoff: the next chunk of one (partition, n_val), in key
    /// order, from a replica that holds it; answered with
    /// [`Response::Chunk`]. The receiver serves it only while `layout` is
    /// its own newest layout, so a chunk of a transfer that a newer layout
    /// (an abort, say) replaced is never served.
    HandoffChunk {
        /// The layout the sender is filling its replica for.
        layout: LayoutStamp,
        /// The partition.
        partition: PartitionId,
        /// Which keys: those of buckets with this n_val.
        n_val: u8,
        /// Resume after this key (the `next` of the last chunk); `None`
        /// starts at the beginning.
        after: Option<(BucketName, Key)>,
        /// Most objects in the answer.
        max_items: u32,
        /// About most value bytes in the answer (at least one object goes).
        max_bytes: u32,
    },
    /// How much this node holds per partition, for a plan's estimate of
    /// what a change moves; answered with [`Response::Sizes`].
    PartitionSizes,
    /// May the sender start the forwarded write of this ticket (see
    /// [`Request::Coordinate`])? Answered with [`Response::Permit`].
    Permit {
        /// The ticket the receiver gave the write when it forwarded it.
        ticket: u64,
    },
    /// The live keys of `bucket` this replica holds from key hash `from` on,
    /// within the partition of `from` (a client's `SCAN`); answered with
    /// [`Response::Scanned`].
    ScanKeys {
        /// The bucket.
        bucket: BucketName,
        /// The first key hash to list.
        from: u64,
        /// About how many keys to answer (at most
        /// [`limits::MAX_SCAN_KEYS`]).
        limit: u32,
    },
    /// The version digest of a replica's state of one key (a read asks one
    /// replica for the object and the others for this); answered with
    /// [`Response::Digest`]. Refused like [`Request::ReplicaGet`].
    ReplicaDigest {
        /// The version of the layout the sender routed the read with.
        layout: u64,
        /// The bucket.
        bucket: BucketName,
        /// The key.
        key: Key,
    },
}

impl Request {
    /// The request's kind, in snake case: a metrics label, a log field.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::ReplicaGet { .. } => "replica_get",
            Self::ReplicaPut { .. } => "replica_put",
            Self::Coordinate { .. } => "coordinate",
            Self::DeliverHints { .. } => "deliver_hints",
            Self::Merkle { .. } => "merkle",
            Self::ListKeys { .. } => "list_keys",
            Self::Fetch { .. } => "fetch",
            Self::PullLayout { .. } => "pull_layout",
            Self::StoreHint { .. } => "store_hint",
            Self::Purge { .. } => "purge",
            Self::Buckets { .. } => "buckets",
            Self::HandoffChunk { .. } => "handoff_chunk",
            Self::PartitionSizes => "partition_sizes",
            Self::Permit { .. } => "permit",
            Self::ScanKeys { .. } => "scan_keys",
            Self::ReplicaDigest { .. } => "replica_digest",
        }
    }
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// To [`Request::Ping`].
    Pong,
    /// To [`Request::ReplicaGet`]: the replica's state, if any.
    Object(Option<Object>),
    /// To [`Request::ReplicaPut`] and [`Request::DeliverHints`]: durable.
    Stored,
    /// To [`Request::Coordinate`].
    Client(ClientReply),
    /// To [`Request::Merkle`].
    Merkle(gyre_merkle::Response),
    /// To [`Request::ListKeys`].
    Keys(
        #[serde(
            deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_KEY_VERSIONS }>"
        )]
        Vec<KeyVersion>,
    ),
    /// To [`Request::Fetch`]: the states the replica holds.
    Items(
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_ITEMS }>")]
        Vec<Item>,
    ),
    /// To [`Request::PullLayout`]: the layouts in use, oldest first (the
    /// last is the newest), or none if the sender's is not newer.
    Layout(
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_LAYOUTS }>")]
        Vec<Layout>,
    ),
    /// To [`Request::Buckets`]: the receiver's catalogue.
    Buckets(
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_BUCKETS }>")]
        Vec<BucketEntry>,
    ),
    /// The request failed at the receiver.
    Error(RemoteError),
    /// To [`Request::HandoffChunk`].
    Chunk {
        /// The objects, in key order.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_ITEMS }>")]
        items: Vec<Item>,
        /// Where the next chunk starts (pass it as `after`); `None` when the
        /// partition is done.
        next: Option<(BucketName, Key)>,
    },
    /// To [`Request::PartitionSizes`]: per partition held, its objects and
    /// their stored bytes (keys and values).
    Sizes(
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_PARTITIONS }>")]
        Vec<PartitionSize>,
    ),
    /// To [`Request::Permit`]: whether the asker may start the write (the
    /// first primary to ask gets it, every later one is refused).
    Permit(bool),
    /// To [`Request::ScanKeys`]: keys in key-hash order (those of one hash
    /// never split between answers), and the hash to go on from, `None`
    /// once the partition is done.
    Scanned {
        /// The keys.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, { limits::MAX_SCAN_KEYS }>")]
        keys: Vec<Key>,
        /// Where the next scan of this partition starts.
        next: Option<u64>,
    },
    /// To [`Request::ReplicaDigest`]: the `DvvSet::version_digest` of the
    /// replica's state (of an empty state if it holds none). Equal digests
    /// mean equal states: a digest covers every dot, and a dot names one
    /// value.
    Digest(u128),
}

/// What one node holds of one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSize {
    /// The partition.
    pub partition: PartitionId,
    /// Objects stored.
    pub objects: u64,
    /// Bytes of their keys and values.
    pub bytes: u64,
}

/// Why a request failed at the node that received it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct RemoteError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A human-readable explanation.
    pub message: String,
}

/// Kinds of [`RemoteError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The request was malformed or not allowed.
    BadRequest,
    /// The receiver routes with a different layout version.
    WrongLayout,
    /// Not enough replicas answered.
    Unavailable,
    /// The receiver's storage failed.
    Storage,
    /// The receiver is overloaded or shutting down; try another node.
    Busy,
    /// Anything else.
    Internal,
    /// A forwarded write its forwarder did not permit (another primary
    /// took it, or the forwarder gave up on it): nothing was written.
    Withdrawn,
    /// An operator removed the asking node (or the receiver) from the
    /// cluster: nothing was done. Appended: older nodes cannot decode it.
    Removed,
}

/// A message that expects no answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OneWay {
    /// One step of a gossip round (membership).
    Gossip(Message),
}

/// What a bulk stream carries, sent as its first frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamOpen {
    /// Partition handoff: every object of a partition, then
    /// [`StreamItem::End`].
    Handoff {
        /// The partition.
        partition: PartitionId,
        /// The layout version that moved it.
        layout: u64,
    },
}

/// The frames of a bulk stream after its [`StreamOpen`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamItem {
    /// One object.
    Item(Item),
    /// The sender is done; `sent` objects went.
    End {
        /// How many items were sent, so the receiver can check.
        sent: u64,
    },
}

/// The receiver's last word on a bulk stream, once every item is durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamDone {
    /// Every item was received and stored.
    Stored {
        /// How many items the receiver stored.
        received: u64,
    },
    /// The receiver gave up; the sender should retry later.
    Failed(RemoteError),
}

/// The first frame of every stream: what the stream carries.
///
/// - `Request` opens a bidirectional stream; one [`Response`] comes back.
/// - `Message` opens a unidirectional stream that carries only it.
/// - `Stream` opens a bidirectional stream; [`StreamItem`] frames follow
///   up to [`StreamItem::End`], and one [`StreamDone`] comes back. QUIC flow
///   control is the backpressure: a sender that outruns the receiver waits.
/// - `Lane` opens a long-lived bidirectional stream for many small
///   requests: tagged [`Request`] frames one way, tagged [`Answer`] frames
///   the other, in any order ([`frame::encode_tagged`]).
///
/// [`frame::encode_tagged`]: crate::frame::encode_tagged
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Open {
    /// A request.
    Request(Request),
    /// A one-way message.
    Message(OneWay),
    /// A bulk stream.
    Stream(StreamOpen),
    /// A lane of tagged requests.
    Lane,
}

/// What a lane carries back for one tagged request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// The node's response.
    Response(Response),
    /// No response will come: the frame was refused (too large, did not
    /// decode) or the node dropped the request. The counterpart of a reset
    /// stream.
    Failed {
        /// Why, for the requester's error.
        reason: String,
    },
}
