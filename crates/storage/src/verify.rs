use std::collections::{BTreeMap, BTreeSet};

use gyre_merkle::{ItemDigest, MerkleTree};
use gyre_types::KeyHash;

use crate::{Result, Store, TreeMismatch};

/// How many objects one scan page holds while verifying.
const PAGE: usize = 1024;

/// See [`Store::verify_trees`].
pub(crate) fn verify_trees<S: Store + ?Sized>(store: &S) -> Result<Vec<TreeMismatch>> {
    let config = store.config();
    let (q, shape) = (config.partitions, config.merkle_shape);
    let kept: BTreeSet<_> = store.merkle_trees().into_iter().collect();
    let mut mismatches = Vec::new();
    for partition in q.iter() {
        let mut items: BTreeMap<u8, Vec<(KeyHash, ItemDigest)>> = kept
            .iter()
            .filter(|(p, _)| *p == partition)
            .map(|&(_, n)| (n, Vec::new()))
            .collect();
        let mut after = None;
        loop {
            let page = store.scan(partition, after.as_ref(), PAGE)?;
            for s in page.items {
                let digest =
                    ItemDigest::of_bucket_key(s.id.bucket(), s.id.key(), s.object.version_digest());
                items
                    .entry(s.n_val)
                    .or_default()
                    .push((s.id.hash(), digest));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        for (n_val, items) in items {
            let rebuilt =
                crate::node_store::tree_error(MerkleTree::from_items(q, partition, shape, items))?;
            let kept = store.merkle_tree(partition, n_val)?;
            if kept.root() != rebuilt.root() || kept.leaves() != rebuilt.leaves() {
                mismatches.push(TreeMismatch {
                    partition,
                    n_val,
                    kept_root: kept.root(),
                    data_root: rebuilt.root(),
                });
            }
        }
    }
    Ok(mismatches)
}
