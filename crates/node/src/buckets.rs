//! [`BucketCatalog`]: which buckets exist and their properties, the same on
//! every node.
//!
//! A bucket is created (or changed) on one node, which stamps the entry
//! with its wall clock and its id and sends it to every member it can
//! reach. Nodes also exchange their whole catalogue with one peer on every
//! hint round, so a node that was away catches up. Entries merge by last
//! writer wins on `(stamp, node)`: two concurrent changes of one bucket end
//! as the same one everywhere.

use std::collections::BTreeMap;
use std::sync::RwLock;

use gyre_replication::Replica;
use gyre_storage::Store;
use gyre_types::{BucketName, BucketProps};
use gyre_wire::BucketEntry;

/// The store's metadata entry holding the catalogue.
const META: &str = "bucket_catalog";
/// The tag of that entry's format (JSON after it).
const FORMAT: u8 = 1;

/// The buckets that exist, with their properties.
#[derive(Debug)]
pub struct BucketCatalog {
    entries: RwLock<BTreeMap<BucketName, BucketEntry>>,
    defaults: BucketProps,
    default_bucket: Option<BucketName>,
}

impl BucketCatalog {
    /// The bucket that exists without being created.
    pub const DEFAULT_BUCKET: &'static str = "default";

    /// A catalogue with only the default bucket (nothing read or stored).
    pub fn empty(defaults: BucketProps) -> Self {
        Self {
            entries: RwLock::new(BTreeMap::new()),
            defaults,
            default_bucket: BucketName::new(Self::DEFAULT_BUCKET).ok(),
        }
    }

    /// The catalogue kept in `replica`'s store; the default bucket has
    /// `defaults` until someone sets it. Applies every entry's properties
    /// to the replica.
    ///
    /// # Errors
    /// The store's, if it cannot be read or the entry does not decode.
    pub fn load<S: Store>(
        replica: &Replica<S>,
        defaults: BucketProps,
    ) -> Result<Self, gyre_storage::Error> {
        let entries: Vec<BucketEntry> = match replica.store().meta(META)? {
            None => Vec::new(),
            Some(bytes) => decode(&bytes)?,
        };
        let catalog = Self::empty(defaults);
        if let Some(default) = &catalog.default_bucket
            && !entries.iter().any(|e| &e.bucket == default)
        {
            replica.set_props(default, defaults).map_err(into_storage)?;
        }
        catalog.merge(replica, entries)?;
        Ok(catalog)
    }

    /// A bucket's properties, or `None` if it does not exist.
    pub fn props(&self, bucket: &BucketName) -> Option<BucketProps> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        match entries.get(bucket) {
            Some(e) => Some(e.props),
            None => (Some(bucket) == self.default_bucket.as_ref()).then_some(self.defaults),
        }
    }

    /// The properties a bucket created without any gets.
    pub fn defaults(&self) -> BucketProps {
        self.defaults
    }

    /// Every entry.
    pub fn entries(&self) -> Vec<BucketEntry> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.values().cloned().collect()
    }

    /// Every bucket that exists, with its properties (the default bucket
    /// included).
    pub fn buckets(&self) -> Vec<(BucketName, BucketProps)> {
        let mut all: BTreeMap<BucketName, BucketProps> = self
            .entries()
            .into_iter()
            .map(|e| (e.bucket, e.props))
            .collect();
        if let Some(default) = &self.default_bucket {
            all.entry(default.clone()).or_insert(self.defaults);
        }
        all.into_iter().collect()
    }

    /// The entry that sets `bucket` to `props` now: stamped at `wall_ms`, or
    /// just after the entry it replaces if that one is ahead of this clock.
    pub fn entry(
        &self,
        bucket: BucketName,
        props: BucketProps,
        wall_ms: u64,
        by: gyre_types::NodeId,
    ) -> BucketEntry {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let after = entries
            .get(&bucket)
            .map_or(0, |e| e.stamp.saturating_add(1));
        BucketEntry {
            bucket,
            props,
            stamp: wall_ms.max(after),
            by,
        }
    }

    /// Merges `incoming` entries: each that wins over what is held is kept,
    /// stored and applied to `replica`. Returns how many won.
    ///
    /// # Errors
    /// The store's; what was merged before the failure stays merged.
    pub fn merge<S: Store>(
        &self,
        replica: &Replica<S>,
        incoming: impl IntoIterator<Item = BucketEntry>,
    ) -> Result<usize, gyre_storage::Error> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let mut won = 0;
        for entry in incoming {
            let wins = entries
                .get(&entry.bucket)
                .is_none_or(|held| entry.supersedes(held));
            if !wins {
                continue;
            }
            replica
                .set_props(&entry.bucket, entry.props)
                .map_err(into_storage)?;
            entries.insert(entry.bucket.clone(), entry);
            won += 1;
        }
        if won > 0 {
            let all: Vec<&BucketEntry> = entries.values().collect();
            replica.store().set_meta(META, encode(&all)?)?;
        }
        Ok(won)
    }
}

fn encode(entries: &[&BucketEntry]) -> Result<Vec<u8>, gyre_storage::Error> {
    let mut out = vec![FORMAT];
    serde_json::to_writer(&mut out, entries)
        .map_err(|e| gyre_storage::Error::Config(format!("bucket catalogue: {e}")))?;
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Vec<BucketEntry>, gyre_storage::Error> {
    let corrupt = |reason: String| gyre_storage::Error::Corrupt {
        location: format!("metadata {META:?}"),
        reason,
    };
    match bytes.split_first() {
        Some((&FORMAT, json)) => serde_json::from_slice(json).map_err(|e| corrupt(e.to_string())),
        Some((tag, _)) => Err(corrupt(format!("unknown format {tag}"))),
        None => Err(corrupt("empty entry".to_owned())),
    }
}

fn into_storage(e: gyre_replication::Error) -> gyre_storage::Error {
    match e {
        gyre_replication::Error::Storage(e) => e,
        other => gyre_storage::Error::Config(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use gyre_storage::{Durability, MemStore, StoreConfig};
    use gyre_types::NodeId;

    use super::*;

    fn replica() -> Replica<std::sync::Arc<MemStore>> {
        let store = MemStore::new(StoreConfig {
            durability: Durability::None,
            ..StoreConfig::default()
        })
        .unwrap();
        Replica::new(
            NodeId::new(1),
            std::sync::Arc::new(store),
            gyre_replication::Config::default(),
        )
        .unwrap()
    }

    #[test]
    fn the_last_writer_wins_and_survives_a_reload() {
        let replica = replica();
        let defaults = BucketProps::new(3, 2, 2).unwrap();
        let catalog = BucketCatalog::load(&replica, defaults).unwrap();
        let carts = BucketName::new("carts").unwrap();
        assert_eq!(catalog.props(&carts), None);
        assert_eq!(
            catalog.props(&BucketName::new("default").unwrap()),
            Some(defaults)
        );

        let older = catalog.entry(
            carts.clone(),
            BucketProps::new(5, 3, 3).unwrap(),
            10,
            NodeId::new(2),
        );
        let newer = catalog.entry(
            carts.clone(),
            BucketProps::new(2, 1, 1).unwrap(),
            11,
            NodeId::new(1),
        );
        // Arrival order does not matter.
        assert_eq!(
            catalog
                .merge(&replica, [newer.clone(), older.clone()])
                .unwrap(),
            1
        );
        assert_eq!(catalog.merge(&replica, [older]).unwrap(), 0);
        assert_eq!(catalog.props(&carts), Some(newer.props));
        assert_eq!(replica.props(&carts), newer.props);

        let reloaded = BucketCatalog::load(&replica, defaults).unwrap();
        assert_eq!(reloaded.props(&carts), Some(newer.props));
        assert_eq!(reloaded.buckets().len(), 2);
        // A change made later is stamped after the one it replaces, even
        // with a clock behind.
        assert!(reloaded.entry(carts, defaults, 0, NodeId::new(3)).stamp > newer.stamp);
    }
}
