//! [`Snapshots`]: state in memory whose changes are made durable as
//! whole snapshots, in the order they were taken, with the changes saved
//! while one snapshot is being written sharing the next write (a group
//! commit): the transfer cursors of every partition being filled.

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A value, how many changes were made to it, and how many of those are
/// durable.
#[derive(Debug, Default)]
pub(crate) struct Snapshots<T> {
    /// The value, and how many changes were saved to it.
    state: Mutex<(T, u64)>,
    /// How many changes are durable. Held from taking a snapshot to
    /// writing it, so a later snapshot is never overwritten by an earlier.
    durable: tokio::sync::Mutex<u64>,
}

impl<T> Snapshots<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            state: Mutex::new((value, 0)),
            durable: tokio::sync::Mutex::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (T, u64)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the value.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.lock().0)
    }

    /// Changes the value in memory only: the change is durable with the
    /// next save.
    pub(crate) fn change<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.lock().0)
    }

    /// Makes `change` and returns once a snapshot holding it is durable:
    /// written by `write` here (`encode` taking it just before), or by a
    /// save that took its snapshot after this change and finished first,
    /// in which case nothing is written here. If `change` fails, nothing
    /// changed and nothing is written.
    ///
    /// # Errors
    /// `change`'s error, or `write`'s (the change stays in memory and the
    /// next save writes it).
    pub(crate) async fn save<E, W>(
        &self,
        change: impl FnOnce(&mut T) -> Result<(), E>,
        encode: impl FnOnce(&T) -> Vec<u8>,
        write: impl FnOnce(Vec<u8>) -> W,
    ) -> Result<(), E>
    where
        W: Future<Output = Result<(), E>>,
    {
        let mine = {
            let mut state = self.lock();
            change(&mut state.0)?;
            state.1 += 1;
            state.1
        };
        let mut durable = self.durable.lock().await;
        if *durable >= mine {
            return Ok(());
        }
        let (changes, bytes) = {
            let state = self.lock();
            (state.1, encode(&state.0))
        };
        write(bytes).await?;
        *durable = changes;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A set of numbers saved to a "disk" that records every write, each
    /// write yielding before it lands as a real one would wait for a sync.
    #[derive(Default)]
    struct Disk {
        writes: Mutex<Vec<Vec<u8>>>,
        saves_returned: AtomicUsize,
    }

    async fn save(s: &Snapshots<Vec<u8>>, disk: &Disk, n: u8) -> Result<(), String> {
        s.save(
            |v| {
                v.push(n);
                Ok::<(), String>(())
            },
            Clone::clone,
            |bytes| async move {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                disk.writes.lock().unwrap().push(bytes);
                Ok(())
            },
        )
        .await?;
        // What is on disk once the save returned holds its change.
        let last = disk.writes.lock().unwrap().last().cloned().unwrap();
        assert!(last.contains(&n), "{n} saved, the disk holds {last:?}");
        disk.saves_returned.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_saves_share_writes_in_order_and_each_is_durable_when_it_returns() {
        let s = Arc::new(Snapshots::new(Vec::new()));
        let disk = Arc::new(Disk::default());
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..50u8 {
            let (s, disk) = (Arc::clone(&s), Arc::clone(&disk));
            tasks.spawn(async move { save(&s, &disk, n).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        let writes = disk.writes.lock().unwrap();
        assert_eq!(disk.saves_returned.load(Ordering::Relaxed), 50);
        assert!(
            writes.len() < 50,
            "saves made while one write waited share the next: {} writes",
            writes.len()
        );
        for pair in writes.windows(2) {
            assert!(pair[0].len() < pair[1].len(), "a later snapshot first");
        }
        assert_eq!(writes.last().unwrap().len(), 50);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_change_writes_nothing_and_a_failed_write_is_retried_by_the_next_save() {
        let s = Snapshots::new(Vec::<u8>::new());
        let refused = s
            .save(
                |_| Err("refused".to_owned()),
                Clone::clone,
                |_| async { panic!("nothing to write") },
            )
            .await;
        assert_eq!(refused, Err("refused".to_owned()));
        let failed = s
            .save(
                |v| {
                    v.push(1);
                    Ok(())
                },
                Clone::clone,
                |_| async { Err("disk full".to_owned()) },
            )
            .await;
        assert_eq!(failed, Err("disk full".to_owned()));
        let disk = Disk::default();
        save(&s, &disk, 2).await.unwrap();
        assert_eq!(disk.writes.lock().unwrap().as_slice(), [vec![1, 2]]);
        assert_eq!(s.with(Clone::clone), [1, 2]);
    }
}
