use std::time::Duration;

use gyre_merkle::TreeShape;
use gyre_types::{BucketProps, PartitionCount};
use serde::{Deserialize, Serialize};

/// When a write counts as durable, and so when it is acknowledged.
///
/// | mode | acknowledged after | survives kill -9 | survives power loss / kernel crash |
/// |------|--------------------|------------------|------------------------------------|
/// | `always` | its own `fdatasync` of the journal | yes | yes |
/// | `group` | an `fdatasync` that covers it, shared with concurrent writers | yes | yes |
/// | `none` | the journal write reaches the operating system | yes | no: the last moments of writes may be lost |
///
/// `always` and `group` make the same promise; `group` keeps one fsync in
/// flight at a time, lets writers keep appending to the journal while it
/// runs, and has every writer that arrived meanwhile share the next one, so
/// many concurrent writers cost few fsyncs at the price of waiting for the
/// fsync in progress. With `none`, the operating system
/// writes the journal back when it chooses (Linux: within about 30 s), and
/// the store fsyncs when a journal file is sealed and on a clean close.
/// A failed fsync is fatal in every mode: see [`Error::Fatal`](crate::Error::Fatal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync before every acknowledgement.
    Always,
    /// Group commit: concurrent writers share fsyncs (the default).
    #[default]
    Group,
    /// Hand writes to the operating system; never wait for the disk.
    None,
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Self::Always),
            "group" => Ok(Self::Group),
            "none" => Ok(Self::None),
            other => Err(format!(
                "unknown durability {other:?}: expected always, group or none"
            )),
        }
    }
}

/// Size limits on what the store accepts. Anything larger is refused with a
/// typed error and nothing is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// The longest key, in bytes; at most [`Limits::MAX_KEY_LEN`].
    pub max_key_len: usize,
    /// The largest single value (sibling), in bytes.
    pub max_value_len: usize,
}

impl Limits {
    /// The longest key any store accepts: fjall's 65,536-byte key limit less
    /// the record key's prefix (an 8-byte hash, a length byte and a bucket
    /// name of up to 64 bytes), which is what every [`Key`] fits in.
    ///
    /// [`Key`]: gyre_types::Key
    pub const MAX_KEY_LEN: usize = gyre_types::Key::MAX_LEN;
}

impl Default for Limits {
    /// The longest keys the store can hold, and values up to the largest a
    /// bucket may allow ([`BucketProps::MAX_VALUE_LEN`]).
    fn default() -> Self {
        Self {
            max_key_len: Self::MAX_KEY_LEN,
            max_value_len: BucketProps::MAX_VALUE_LEN as usize,
        }
    }
}

/// How a store is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// The cluster's partition count. Fixed for the life of the data: a
    /// store reopened with another count refuses to open.
    pub partitions: PartitionCount,
    /// When writes are acknowledged.
    pub durability: Durability,
    /// In [`Durability::Group`], how long the fsync thread lingers after the
    /// first waiting writer arrives, to gather more writers into one fsync.
    /// Zero (the default) still batches every writer that arrives while an
    /// fsync is in flight, without delaying a lone writer.
    pub group_window: Duration,
    /// Size limits.
    pub limits: Limits,
    /// The shape of the Merkle tree kept per (partition, n_val). Changing it
    /// rebuilds every tree from the data at the next open.
    pub merkle_shape: TreeShape,
    /// Block cache of the storage engine, in bytes.
    pub cache_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            partitions: PartitionCount::DEFAULT,
            durability: Durability::default(),
            group_window: Duration::ZERO,
            limits: Limits::default(),
            merkle_shape: TreeShape::DEFAULT,
            cache_bytes: 64 << 20,
        }
    }
}
