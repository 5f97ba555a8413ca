//! Who holds a key and who may coordinate it.

use std::sync::Arc;

use gyre_ring::Layout;
use gyre_types::{BucketName, BucketProps, Key, KeyHash, NodeId, PartitionId};

use crate::{Error, Result};

/// The layouts a node routes with. Reads go to the replicas of `read`;
/// writes to the replicas of every layout in `write` (oldest first, the last
/// the newest), W in each. One layout in both outside layout changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    /// The layout reads use.
    pub read: Arc<Layout>,
    /// Every layout in use, oldest first.
    pub write: Vec<Arc<Layout>>,
}

impl Routing {
    /// Routing with one layout.
    pub fn single(layout: Arc<Layout>) -> Self {
        Self {
            read: Arc::clone(&layout),
            write: vec![layout],
        }
    }

    /// The newest layout.
    pub fn newest(&self) -> &Arc<Layout> {
        self.write.last().unwrap_or(&self.read)
    }

    /// Whether a layout change is moving data.
    pub fn is_changing(&self) -> bool {
        self.write.len() > 1
    }

    /// The key's replica set under each layout in use, oldest first, each
    /// set once.
    ///
    /// # Errors
    /// [`Error::BadRequest`] if the bucket's n_val exceeds the layout's N.
    pub fn write_sets(
        &self,
        bucket: &BucketName,
        key: &Key,
        props: &BucketProps,
    ) -> Result<Vec<Vec<NodeId>>> {
        let mut sets: Vec<Vec<NodeId>> = Vec::with_capacity(self.write.len());
        for layout in &self.write {
            let set = primaries(layout, bucket, key, props)?;
            if !sets.contains(&set) {
                sets.push(set);
            }
        }
        Ok(sets)
    }
}

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

/// The first `n_val` replicas of `partition` under `layout`: the
/// primaries of its keys in buckets with that n_val.
pub fn partition_primaries(layout: &Layout, partition: PartitionId, n_val: u8) -> &[NodeId] {
    layout.primaries(partition, n_val)
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
    Route::Forward(up_first(primaries, is_up))
}

/// Where a write should be coordinated when this node cannot write (its
/// store failed): at the other primaries, up ones first. Forwarding to
/// none is refused as unavailable, as for any key whose primaries are
/// all out of reach.
pub fn coordinator_elsewhere(
    me: NodeId,
    primaries: &[NodeId],
    is_up: impl Fn(NodeId) -> bool,
) -> Route {
    let others: Vec<NodeId> = primaries.iter().copied().filter(|&n| n != me).collect();
    Route::Forward(up_first(&others, is_up))
}

fn up_first(nodes: &[NodeId], is_up: impl Fn(NodeId) -> bool) -> Vec<NodeId> {
    let mut order = nodes.to_vec();
    order.sort_by_key(|n| !is_up(*n));
    order
}

/// See [`coordinator`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// This node coordinates.
    Local,
    /// Forward to one of these, in order.
    Forward(Vec<NodeId>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_cannot_write_forwards_to_the_other_primaries_up_first() {
        let (a, b, c) = (NodeId::new(1), NodeId::new(2), NodeId::new(3));
        assert_eq!(coordinator(a, &[a, b, c], |_| true), Route::Local);
        assert_eq!(
            coordinator_elsewhere(a, &[a, b, c], |n| n != b),
            Route::Forward(vec![c, b])
        );
        assert_eq!(
            coordinator_elsewhere(a, &[a], |_| true),
            Route::Forward(vec![])
        );
    }
}
