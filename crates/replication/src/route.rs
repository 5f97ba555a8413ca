//! Who holds a key and who may coordinate it.

use gyre_ring::Layout;
use gyre_types::{BucketName, BucketProps, Key, KeyHash, NodeId};

use crate::{Error, Result};

/// The key's primaries under `layout` for a bucket with `props`: the first
/// n_val nodes of its partition's preference list.
///
/// # Errors
/// [`Error::BadRequest`] if the bucket's n_val exceeds the layout's N.
pub fn primaries(
    layout: &Layout,
    bucket: &BucketName,
    key: &Key,
    props: &BucketProps,
) -> Result<Vec<NodeId>> {
    let hash = KeyHash::of(bucket, key);
    layout
        .preference_list(hash, usize::from(props.n_val()))
        .map(<[NodeId]>::to_vec)
        .map_err(|e| Error::BadRequest(e.to_string()))
}

/// The partition's extended preference list (for sloppy-quorum fallbacks).
pub fn extended(layout: &Layout, bucket: &BucketName, key: &Key) -> Vec<NodeId> {
    let p = layout.partition_of(KeyHash::of(bucket, key));
    layout.extended_preference_list(p).collect()
}

/// Checks an R or W override against the bucket: between 1 and n_val.
///
/// # Errors
/// [`Error::BadRequest`] naming the quorum and n_val.
pub fn quorum(name: &str, value: Option<u8>, default: u8, n_val: u8) -> Result<u8> {
    let q = value.unwrap_or(default);
    if q == 0 || q > n_val {
        return Err(Error::BadRequest(format!(
            "{name}={q} is impossible with n_val={n_val}: it must be between 1 and {n_val}"
        )));
    }
    Ok(q)
}

/// Where a client operation on a key should be coordinated: here if this
/// node is a primary, else the primaries to forward to, up ones first.
pub fn coordinator(me: NodeId, primaries: &[NodeId], is_up: impl Fn(NodeId) -> bool) -> Route {
    if primaries.contains(&me) {
        return Route::Local;
    }
    let mut order: Vec<NodeId> = primaries.to_vec();
    order.sort_by_key(|n| !is_up(*n));
    Route::Forward(order)
}

/// See [`coordinator`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// This node coordinates.
    Local,
    /// Forward to one of these, in order.
    Forward(Vec<NodeId>),
}
