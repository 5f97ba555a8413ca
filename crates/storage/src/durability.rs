//! Waiting until a write is as durable as the store's [`Durability`] promises.
//!
//! Every write takes a ticket after its batch is in the engine. A sync that
//! starts after ticket `t` was handed out covers every batch up to `t`, so
//! "synced up to t" is exactly "every write with a ticket ≤ t is durable".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::engine::{Engine, SyncMode};
use crate::metrics::SyncMetrics;
use crate::{Durability, Error, Result};

#[derive(Default)]
struct State {
    /// Tickets handed out: batches written to the engine.
    written: u64,
    /// Every ticket up to this one is durable.
    synced: u64,
    /// Why the store failed, once it has.
    failed: Option<String>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signals the group-commit thread that someone waits.
    work: Condvar,
    /// Signals waiters that `synced` moved (or the store failed).
    done: Condvar,
    failed: AtomicBool,
    metrics: SyncMetrics,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few integers updated in single statements: a
        // panic elsewhere cannot leave it half-changed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails the store: `what` failed (a write, or a sync) for `why`.
    fn fail(&self, state: &mut State, what: &str, why: String) {
        if state.failed.is_none() {
            tracing::error!(error = %why, "storage {what} failed; the store refuses writes until restarted");
        }
        state.failed.get_or_insert(why);
        self.failed.store(true, Ordering::Release);
        self.done.notify_all();
    }
}

/// Tracks written and durable batches and makes writers wait for theirs.
pub(crate) struct Syncer<E: Engine> {
    engine: Arc<E>,
    mode: Durability,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl<E: Engine> Syncer<E> {
    pub(crate) fn new(engine: Arc<E>, mode: Durability, window: Duration) -> Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            failed: AtomicBool::new(false),
            metrics: SyncMetrics::new(),
        });
        let thread = match mode {
            Durability::Group => {
                let (engine, shared) = (Arc::clone(&engine), Arc::clone(&shared));
                let handle = std::thread::Builder::new()
                    .name("gyre-group-commit".to_owned())
                    .spawn(move || group_commit(&*engine, &shared, window))
                    .map_err(|e| Error::Engine(Box::new(e)))?;
                Some(handle)
            }
            Durability::Always | Durability::None => None,
        };
        Ok(Self {
            engine,
            mode,
            shared,
            thread,
        })
    }

    /// fsync latency and group size, as recorded so far.
    pub(crate) fn metrics(&self) -> &SyncMetrics {
        &self.shared.metrics
    }

    /// Refuses to start a write once the store has failed.
    pub(crate) fn check(&self) -> Result<()> {
        if self.shared.failed.load(Ordering::Acquire) {
            let state = self.shared.lock();
            return Err(Error::Fatal(state.failed.clone().unwrap_or_default()));
        }
        Ok(())
    }

    /// Records that a batch was just written; returns its ticket.
    pub(crate) fn written(&self) -> u64 {
        let mut state = self.shared.lock();
        state.written += 1;
        state.written
    }

    /// Records a failed engine write: durability of what was written is
    /// now unknown, so the store fails.
    pub(crate) fn write_failed(&self, e: &Error) {
        let mut state = self.shared.lock();
        self.shared.fail(&mut state, "write", e.to_string());
    }

    /// Waits until every batch written so far is durable (used by
    /// operations that change nothing but answer for what is stored).
    pub(crate) fn wait_all(&self) -> Result<()> {
        let ticket = self.shared.lock().written;
        self.wait(ticket)
    }

    /// Waits until ticket `ticket` is as durable as the mode promises.
    pub(crate) fn wait(&self, ticket: u64) -> Result<()> {
        match self.mode {
            Durability::None => self.sync_now(SyncMode::Os),
            Durability::Always => {
                if self.shared.lock().synced >= ticket {
                    return self.check();
                }
                self.sync_now(SyncMode::Disk)
            }
            Durability::Group => {
                let mut state = self.shared.lock();
                if state.synced < ticket {
                    self.shared.work.notify_one();
                }
                while state.synced < ticket && state.failed.is_none() {
                    state = self
                        .shared
                        .done
                        .wait(state)
                        .unwrap_or_else(|p| p.into_inner());
                }
                match &state.failed {
                    Some(why) => Err(Error::Fatal(why.clone())),
                    None => Ok(()),
                }
            }
        }
    }

    /// Syncs everything written so far, whatever the mode (clean shutdown,
    /// explicit flush).
    pub(crate) fn sync_all(&self) -> Result<()> {
        self.sync_now(SyncMode::Disk)
    }

    fn sync_now(&self, mode: SyncMode) -> Result<()> {
        self.check()?;
        let (target, before) = {
            let state = self.shared.lock();
            (state.written, state.synced)
        };
        let started = Instant::now();
        let result = self.engine.sync(mode);
        let mut state = self.shared.lock();
        match result {
            Ok(()) => {
                if mode == SyncMode::Disk {
                    let batches = target.saturating_sub(before.max(state.synced));
                    self.shared.metrics.synced(batches, started.elapsed());
                }
                if mode == SyncMode::Disk && target > state.synced {
                    state.synced = target;
                    self.shared.done.notify_all();
                }
                Ok(())
            }
            Err(e) => {
                self.shared.fail(&mut state, "sync", e.to_string());
                Err(Error::Fatal(e.to_string()))
            }
        }
    }
}

impl<E: Engine> Drop for Syncer<E> {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The group-commit loop: one fsync in flight at a time; whoever waits when
/// it ends shares the next one.
fn group_commit<E: Engine>(engine: &E, shared: &Shared, window: Duration) {
    let mut state = shared.lock();
    loop {
        while state.synced >= state.written && !state.shutdown && state.failed.is_none() {
            state = shared.work.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.failed.is_some() || (state.shutdown && state.synced >= state.written) {
            return;
        }
        if !window.is_zero() {
            drop(state);
            std::thread::sleep(window);
            state = shared.lock();
        }
        let (target, before) = (state.written, state.synced);
        drop(state);
        let started = Instant::now();
        let result = engine.sync(SyncMode::DiskOverlapped);
        state = shared.lock();
        match result {
            Ok(()) => {
                shared
                    .metrics
                    .synced(target.saturating_sub(before), started.elapsed());
                state.synced = state.synced.max(target);
                shared.done.notify_all();
            }
            Err(e) => {
                shared.fail(&mut state, "sync", e.to_string());
                return;
            }
        }
    }
}
