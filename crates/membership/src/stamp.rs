//! Naming a layout by its version and a digest of its content.

use std::fmt;

use gyre_ring::Layout;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

/// A layout's identity: its version, and a digest of its content that tells
/// apart two layouts committed concurrently with the same version.
///
/// Stamps are ordered by version, then digest. Every node adopts the greatest
/// stamp it hears of, so two concurrent commits resolve the same way
/// everywhere: the one with the greater digest wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LayoutStamp {
    /// [`Layout::version`].
    pub version: u64,
    /// [`layout_digest`] of the layout.
    pub digest: u64,
}

impl LayoutStamp {
    /// The stamp of `layout` (hashes it: O(Q·N)).
    pub fn of(layout: &Layout) -> Self {
        Self {
            version: layout.version(),
            digest: layout_digest(layout),
        }
    }
}

impl fmt::Display for LayoutStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{} ({:016x})", self.version, self.digest)
    }
}

/// A deterministic 64-bit digest of everything in a layout: version, Q and
/// N, members (id, zone, capacity) and every partition's replicas in
/// preference order.
///
/// XXH3-64 over a fixed little-endian encoding, identical on every platform.
/// It is a format: nodes compare digests to agree on which of two layouts
/// of the same version wins, so a change here must not mix with old nodes
/// (a test vector pins it).
pub fn layout_digest(layout: &Layout) -> u64 {
    let mut h = Xxh3::new();
    h.update(b"gyre-layout-v1");
    h.update(&layout.version().to_le_bytes());
    h.update(&layout.partitions().get().to_le_bytes());
    h.update(&[layout.replication()]);
    h.update(&(layout.members().len() as u64).to_le_bytes());
    for m in layout.members() {
        h.update(&m.id.as_u64().to_le_bytes());
        let zone = m.zone.as_str().as_bytes();
        h.update(&(zone.len() as u64).to_le_bytes());
        h.update(zone);
        h.update(&m.capacity.to_le_bytes());
    }
    h.update(&(layout.width() as u64).to_le_bytes());
    for p in layout.partitions().iter() {
        for id in layout.replicas(p) {
            h.update(&id.as_u64().to_le_bytes());
        }
    }
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gyre_ring::{Member, RingConfig};
    use gyre_types::{NodeId, PartitionCount, ZoneName};

    fn layout(capacity: u32) -> Layout {
        let config = RingConfig {
            partitions: PartitionCount::new(64).unwrap(),
            replication: 3,
        };
        let members = (1..=4)
            .map(|i| {
                let zone = ZoneName::new(format!("z{}", i % 2)).unwrap();
                Member::new(NodeId::new(i), zone, if i == 1 { capacity } else { 1 })
            })
            .collect();
        Layout::initial(config, members).unwrap()
    }

    #[test]
    fn digest_is_pinned() {
        // A format: every node must compute the same digest for a layout. The
        // layout is read, not computed, so that the vector pins the digest
        // and not the ring's placement.
        let replicas: Vec<u16> = (0..64u16)
            .flat_map(|p| [p % 4, (p + 1) % 4, (p + 2) % 4])
            .collect();
        let json = serde_json::json!({
            "version": 7,
            "config": { "partitions": 64, "replication": 3 },
            "members": [
                { "id": 1, "zone": "a", "capacity": 1 },
                { "id": 2, "zone": "b", "capacity": 2 },
                { "id": 3, "zone": "c", "capacity": 1 },
                { "id": 4, "zone": "a", "capacity": 1 },
            ],
            "width": 3,
            "replicas": replicas,
        });
        let layout: Layout = serde_json::from_value(json).unwrap();
        // Computed independently with the reference xxHash (Python `xxhash`
        // 3.x, `xxh3_64_intdigest`) over the encoding documented above.
        assert_eq!(layout_digest(&layout), 5_536_897_140_932_338_402);
    }

    #[test]
    fn digest_tells_layouts_of_one_version_apart() {
        let (a, b) = (layout(1), layout(2));
        assert_eq!(a.version(), b.version());
        assert_ne!(layout_digest(&a), layout_digest(&b));
        assert_eq!(layout_digest(&a), layout_digest(&a.clone()));
        let next = a.next(a.members().to_vec()).unwrap();
        assert!(LayoutStamp::of(&next) > LayoutStamp::of(&b));
    }
}
