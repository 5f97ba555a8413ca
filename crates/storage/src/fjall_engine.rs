//! The on-disk engine: one fjall database per node, one keyspace per
//! [`Space`]. This is the only module of the workspace that touches fjall.

use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode, Slice};

use crate::engine::{Engine, EngineStats, Op, Space, SyncMode, is_empty_range, sealed};
use crate::{Error, Result, StoreConfig};

/// The fjall engine behind [`FjallStore`](crate::FjallStore).
pub struct FjallEngine {
    db: Database,
    spaces: [Keyspace; 4],
    db_dir: PathBuf,
    /// The newest journal file (by id) and a handle to fsync it with.
    journal: Mutex<Option<(u64, File)>>,
}

/// The database's directory inside the store's.
const DB_DIR: &str = "fjall";
/// Where a new database is created before it is renamed to [`DB_DIR`].
const STAGING_DIR: &str = "fjall.creating";

impl FjallEngine {
    /// Opens (or creates) the database in `dir`, recovering its journal.
    ///
    /// A new database is created in a staging directory and renamed into
    /// place once fjall finished creating it: fjall cannot reopen a database
    /// whose creation was interrupted (its journal exists, its version
    /// marker does not), and a node killed during its first start must be
    /// able to start again.
    pub(crate) fn open(dir: &Path, config: &StoreConfig) -> Result<Self> {
        let db_dir = dir.join(DB_DIR);
        if !db_dir.try_exists().map_err(io)? {
            let staging = dir.join(STAGING_DIR);
            if staging.try_exists().map_err(io)? {
                std::fs::remove_dir_all(&staging).map_err(io)?;
            }
            std::fs::create_dir_all(dir).map_err(io)?;
            drop(Database::builder(&staging).open()?);
            std::fs::rename(&staging, &db_dir).map_err(io)?;
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        let db = Database::builder(&db_dir)
            .cache_size(config.cache_bytes)
            // Durability is the store's business: batches are written
            // without flushing and `sync` decides when they reach the disk.
            .manual_journal_persist(true)
            .open()?;
        let open = |s: Space| db.keyspace(s.name(), KeyspaceCreateOptions::default);
        let spaces = [
            db.keyspace(Space::Objects.name(), || {
                KeyspaceCreateOptions::default()
                    .with_kv_separation(Some(KvSeparationOptions::default()))
            })?,
            open(Space::Leaves)?,
            open(Space::Hints)?,
            open(Space::Meta)?,
        ];
        Ok(Self {
            db,
            spaces,
            db_dir,
            journal: Mutex::new(None),
        })
    }

    /// fsyncs the active journal through a handle of our own, so that
    /// fjall's journal lock is not held meanwhile.
    ///
    /// This leans on fjall's journal layout (`<id>.jnl` files in the
    /// database directory, the active one the highest id) and on its
    /// rotation, which fsyncs a journal before it starts the next. Every
    /// batch handed to the OS before this call is in the newest journal or
    /// in an older one that rotation already synced. If the layout ever
    /// changes, finding no journal is an error (fatal to the store), never
    /// a silently skipped fsync.
    fn sync_journal(&self) -> Result<()> {
        let mut cached = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        // Rotation creates `<id + 1>.jnl`: one stat per sync finds it.
        let id = match cached.as_ref() {
            Some((id, _)) => {
                let mut id = *id;
                while self.journal_path(id + 1).try_exists().map_err(io)? {
                    id += 1;
                }
                id
            }
            None => self.newest_journal()?,
        };
        if cached
            .as_ref()
            .is_none_or(|(cached_id, _)| *cached_id != id)
        {
            let file = File::open(self.journal_path(id)).map_err(io)?;
            *cached = Some((id, file));
        }
        match cached.as_ref() {
            Some((_, file)) => file.sync_data().map_err(io),
            None => unreachable!("the cache was filled just above"),
        }
    }

    fn space(&self, s: Space) -> &Keyspace {
        // `spaces` is built in `Space::ALL` order: one per variant.
        match s {
            Space::Objects => &self.spaces[0],
            Space::Leaves => &self.spaces[1],
            Space::Hints => &self.spaces[2],
            Space::Meta => &self.spaces[3],
        }
    }

    fn journal_path(&self, id: u64) -> PathBuf {
        self.db_dir.join(format!("{id}.jnl"))
    }

    /// The highest journal id in the database directory.
    fn newest_journal(&self) -> Result<u64> {
        let mut newest: Option<u64> = None;
        for entry in std::fs::read_dir(&self.db_dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            let id = name
                .to_str()
                .and_then(|n| n.strip_suffix(".jnl"))
                .and_then(|n| n.parse::<u64>().ok());
            newest = newest.max(id);
        }
        newest.ok_or_else(|| {
            io(std::io::Error::other(format!(
                "no journal file in {}",
                self.db_dir.display()
            )))
        })
    }
}

fn io(e: std::io::Error) -> Error {
    Error::Engine(Box::new(e))
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

    fn range_keys(
        &self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        if is_empty_range(from, to) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        // `key()` leaves a value kept in a blob file unread.
        for guard in self.space(space).range::<&[u8], _>((from, to)).take(limit) {
            out.push(guard.key()?.to_vec());
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

    fn stats(&self) -> EngineStats {
        // The write buffer and compaction figures are fjall's
        // "experimental" accessors: pinned by Cargo.lock, checked by the
        // metrics test when fjall is upgraded.
        let journal_bytes = self.db.journal_disk_space().unwrap_or(0);
        let spaces = || self.spaces.iter();
        EngineStats {
            objects: self.space(Space::Objects).approximate_len() as u64,
            disk_bytes: journal_bytes + spaces().map(Keyspace::disk_space).sum::<u64>(),
            journal_bytes,
            memtable_bytes: self.db.write_buffer_size(),
            tables: spaces().map(|k| k.table_count() as u64).sum(),
            compactions: self.db.compactions_completed() as u64,
            compacting: self.db.active_compactions() as u64,
            compaction_micros: u64::try_from(self.db.time_compacting().as_micros())
                .unwrap_or(u64::MAX),
        }
    }

    fn sync(&self, mode: SyncMode) -> Result<()> {
        match mode {
            SyncMode::Os => Ok(self.db.persist(PersistMode::Buffer)?),
            SyncMode::Disk => Ok(self.db.persist(PersistMode::SyncData)?),
            SyncMode::DiskOverlapped => {
                self.db.persist(PersistMode::Buffer)?;
                self.sync_journal()
            }
        }
    }
}
