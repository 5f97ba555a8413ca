//! Typed node metadata over the store's raw metadata entries: a format tag
//! byte, then JSON (small, rarely written, readable in a hex dump).

use std::collections::BTreeMap;

use gyre_types::{BucketName, BucketProps};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result, Store};

pub(crate) const NODE_ID: &str = "node_id";
pub(crate) const CLUSTER_ID: &str = "cluster_id";
pub(crate) const LAYOUT: &str = "layout";
pub(crate) const OLDER_LAYOUTS: &str = "older_layouts";
pub(crate) const PARTITIONS: &str = "partitions";
/// The trees' shape, marking leaves written as whole batches' sums and a
/// size row kept per tree (see `Trees::load`).
pub(crate) const MERKLE_TREES: &str = "merkle_trees";
/// Format 2's marker: leaves right, but no sizes kept. Trees under it are
/// rebuilt once.
pub(crate) const MERKLE_LEAVES_V2: &str = "merkle_leaves";
/// Format 1's marker: leaves kept by earlier versions, where a batch that
/// changed a leaf twice persisted only its last change. Trees under it are
/// rebuilt once.
pub(crate) const MERKLE_SHAPE_V1: &str = "merkle_shape";
const BUCKET_PREFIX: &str = "bucket/";

/// The tag of metadata entries in this format.
const FORMAT: u8 = 1;

/// The last hint sequence number issued for `target`.
pub(crate) fn hint_seq(target: gyre_types::NodeId) -> String {
    format!("hint_seq/{target}")
}

pub(crate) fn bucket(b: &BucketName) -> String {
    format!("{BUCKET_PREFIX}{b}")
}

pub(crate) fn encode<T: Serialize + ?Sized>(name: &str, value: &T) -> Result<Vec<u8>> {
    let mut out = vec![FORMAT];
    serde_json::to_writer(&mut out, value)
        .map_err(|e| Error::Config(format!("metadata {name:?} does not serialise: {e}")))?;
    Ok(out)
}

pub(crate) fn decode<T: DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T> {
    let corrupt = |reason: String| Error::Corrupt {
        location: format!("metadata {name:?}"),
        reason,
    };
    match bytes.split_first() {
        Some((&FORMAT, json)) => serde_json::from_slice(json).map_err(|e| corrupt(e.to_string())),
        Some((tag, _)) => Err(corrupt(format!("unknown metadata format {tag}"))),
        None => Err(corrupt("empty entry".to_owned())),
    }
}

pub(crate) fn get<S: Store + ?Sized, T: DeserializeOwned>(s: &S, name: &str) -> Result<Option<T>> {
    s.meta(name)?.map(|b| decode(name, &b)).transpose()
}

pub(crate) fn set<S: Store + ?Sized, T: Serialize + ?Sized>(
    s: &S,
    name: &str,
    value: &T,
) -> Result<()> {
    s.set_meta(name, encode(name, value)?)
}

pub(crate) fn all_buckets<S: Store + ?Sized>(s: &S) -> Result<BTreeMap<BucketName, BucketProps>> {
    let mut out = BTreeMap::new();
    for (name, bytes) in s.meta_with_prefix(BUCKET_PREFIX)? {
        let bucket = name
            .strip_prefix(BUCKET_PREFIX)
            .and_then(|b| BucketName::new(b).ok())
            .ok_or_else(|| Error::Corrupt {
                location: format!("metadata {name:?}"),
                reason: "not a bucket name".to_owned(),
            })?;
        out.insert(bucket, decode(&name, &bytes)?);
    }
    Ok(out)
}
