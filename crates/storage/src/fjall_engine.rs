//! The on-disk engine: one fjall database per node, one keyspace per
//! [`Space`]. This is the only module of the workspace that touches fjall.

use std::ops::Bound;
use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Slice};

use crate::engine::{Engine, Op, Space, SyncMode, is_empty_range, sealed};
use crate::{Result, StoreConfig};

/// The fjall engine behind [`FjallStore`](crate::FjallStore).
pub struct FjallEngine {
    db: Database,
    spaces: [Keyspace; 4],
}

impl FjallEngine {
    /// Opens (or creates) the database in `dir`, recovering its journal.
    pub(crate) fn open(dir: &Path, config: &StoreConfig) -> Result<Self> {
        let db = Database::builder(dir)
            .cache_size(config.cache_bytes)
            // Durability is the store's business: batches are written
            // without flushing and `sync` decides when they reach the disk.
            .manual_journal_persist(true)
            .open()?;
        let open = |s: Space| db.keyspace(s.name(), KeyspaceCreateOptions::default);
        let spaces = [
            open(Space::Objects)?,
            open(Space::Leaves)?,
            open(Space::Hints)?,
            open(Space::Meta)?,
        ];
        Ok(Self { db, spaces })
    }

    fn space(&self, s: Space) -> &Keyspace {
        // `spaces` is built from `Space::ALL` order above: one per variant.
        match s {
            Space::Objects => &self.spaces[0],
            Space::Leaves => &self.spaces[1],
            Space::Hints => &self.spaces[2],
            Space::Meta => &self.spaces[3],
        }
    }
}

impl sealed::Sealed for FjallEngine {}

impl Engine for FjallEngine {
    type Bytes = Slice;

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Slice>> {
        Ok(self.space(space).get(key)?)
    }

    fn write(&self, ops: Vec<Op>) -> Result<()> {
        let mut batch = self.db.batch();
        for op in ops {
            match op {
                Op::Put(s, k, v) => batch.insert(self.space(s), k, v),
                Op::Delete(s, k) => batch.remove(self.space(s), k),
            }
        }
        Ok(batch.commit()?)
    }

    fn range(
        &self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Slice)>> {
        if is_empty_range(from, to) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for guard in self.space(space).range::<&[u8], _>((from, to)).take(limit) {
            let (k, v) = guard.into_inner()?;
            out.push((k.to_vec(), v));
        }
        Ok(out)
    }

    fn last_key(
        &self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
    ) -> Result<Option<Vec<u8>>> {
        if is_empty_range(from, to) {
            return Ok(None);
        }
        match self.space(space).range::<&[u8], _>((from, to)).next_back() {
            None => Ok(None),
            Some(guard) => Ok(Some(guard.key()?.to_vec())),
        }
    }

    fn sync(&self, mode: SyncMode) -> Result<()> {
        let mode = match mode {
            SyncMode::Os => PersistMode::Buffer,
            SyncMode::Disk => PersistMode::SyncData,
        };
        Ok(self.db.persist(mode)?)
    }
}
