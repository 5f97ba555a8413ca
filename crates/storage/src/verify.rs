use std::collections::{BTreeMap, BTreeSet};

use gyre_merkle::{ItemDigest, MerkleTree};
use gyre_types::KeyHash;

use crate::{Result, Store, TreeMismatch, TreeSize, object_bytes};

/// How many objects one scan page holds while verifying.
const PAGE: usize = 1024;

/// See [`Store::verify_trees`].
pub(crate) fn verify_trees<S: Store + ?Sized>(store: &S) -> Result<Vec<TreeMismatch>> {
    let config = store.config();
    let (q, shape) = (config.partitions, config.merkle_shape);
    let kept_sizes = store.tree_sizes();
    let kept: BTreeSet<_> = store
        .merkle_trees()
        .into_iter()
        .chain(kept_sizes.keys().copied())
        .collect();
    let mut mismatches = Vec::new();
    for partition in q.iter() {
        let mut items: BTreeMap<u8, (Vec<(KeyHash, ItemDigest)>, TreeSize)> = kept
            .iter()
            .filter(|(p, _)| *p == partition)
            .map(|&(_, n)| (n, Default::default()))
            .collect();
        let mut after = None;
        loop {
            let page = store.scan(partition, after.as_ref(), PAGE)?;
            for s in page.items {
                let digest =
                    ItemDigest::of_bucket_key(s.id.bucket(), s.id.key(), s.object.version_digest());
                let (digests, size) = items.entry(s.n_val).or_default();
                digests.push((s.id.hash(), digest));
                size.objects += 1;
                size.bytes += object_bytes(s.id.key(), &s.object);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        for (n_val, (digests, data_size)) in items {
            let rebuilt =
                crate::trees::tree_error(MerkleTree::from_items(q, partition, shape, digests))?;
            let kept = store.merkle_tree(partition, n_val)?;
            let kept_size = kept_sizes
                .get(&(partition, n_val))
                .copied()
                .unwrap_or_default();
            if kept.root() != rebuilt.root()
                || kept.leaves() != rebuilt.leaves()
                || kept_size != data_size
            {
                mismatches.push(TreeMismatch {
                    partition,
                    n_val,
                    kept_root: kept.root(),
                    data_root: rebuilt.root(),
                    kept_size,
                    data_size,
                });
            }
        }
    }
    Ok(mismatches)
}
