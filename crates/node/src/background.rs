//! Threads for store work no client waits on, at a lower CPU priority.
//!
//! A layout change reads chunks on the old replicas, merges them on the
//! new ones and drops what moved; none of it has a client waiting. Run on
//! tokio's blocking threads, that work competed for the CPU with the
//! client requests the same nodes serve, and on a loaded machine every
//! millisecond of it queued a GET behind it: the change lengthened the
//! GET tail however its bytes were throttled (deploy/bench/HANDOFF.md).
//! These threads run it at a Unix nice value (10 by default), so the
//! kernel gives client work the CPU first and the change what is left:
//! under a light load it streams as fast as before; under a saturating
//! one it slows down instead of slowing the clients. The store's own locks
//! are held for microseconds at a time, so a thread preempted while
//! holding one delays client work by little.
//!
//! The priority is set per thread (Linux's `setpriority` on a thread id),
//! relative to the thread that starts the pool: a node started with `nice`
//! keeps its background that much further below it. Where it cannot be set,
//! the threads run at the process's priority and say so in the log.

use std::sync::{Arc, Mutex, mpsc};

/// Threads of the background pool: enough that four partitions pulled and
/// four served at once (the default throttle) each have one, with their
/// durability waits, and a drop beside them. More streams queue for them.
pub(crate) const BACKGROUND_THREADS: usize = 9;

/// The nice value the background threads add to the node's by default.
pub const DEFAULT_BACKGROUND_NICE: i32 = 10;

/// Where a node's store calls that may wait for the disk run
/// ([`crate::ReplicationService::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offload {
    /// In place, on the task that makes them: in-memory stores, and the
    /// simulator, whose replay needs one thread.
    InPlace,
    /// Client work on tokio's blocking threads; the store work of layout
    /// changes on threads of its own whose nice value is
    /// `background_nice` (0 to 19) above the node's.
    Threads {
        /// How much lower the background threads' CPU priority is.
        background_nice: i32,
    },
}

/// A job: runs on one of the pool's threads.
type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of threads at a lower CPU priority that run closures and
/// hand back their results. Dropping it lets the threads finish the jobs
/// already queued and exit.
#[derive(Debug)]
pub(crate) struct Background {
    jobs: mpsc::Sender<Job>,
}

impl Background {
    /// Starts `threads` threads (at least one) whose nice value is `nice`
    /// more than the caller's (0 to 19 more, and at most 19).
    pub(crate) fn start(threads: usize, nice: i32) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let nice = nice.clamp(0, 19);
        for n in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("gyre-background-{n}"))
                .spawn(move || {
                    lower_priority(nice);
                    loop {
                        // One waiter at a time takes the next job; the lock
                        // is released before the job runs.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self { jobs: tx })
    }

    /// Runs `f` on one of the pool's threads and waits for its result. A
    /// panic in `f` is carried on here, as if `f` ran in place.
    pub(crate) async fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        });
        // The threads exit only once the sender is gone, so while the pool
        // lives a job is always queued.
        if self.jobs.send(job).is_err() {
            unreachable!("the background pool is gone while in use");
        }
        match rx.await {
            Ok(Ok(r)) => r,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => unreachable!("a background thread exited with a job queued"),
        }
    }
}

/// Raises the calling thread's nice value by `steps` (to at most 19), or
/// logs why it could not.
fn lower_priority(steps: i32) {
    let me = rustix::thread::gettid();
    let Ok(now) = rustix::process::getpriority_process(Some(me)) else {
        return;
    };
    let nice = (now + steps).min(19);
    if nice <= now {
        return;
    }
    if let Err(e) = rustix::process::setpriority_process(Some(me), nice) {
        tracing::warn!(error = %e, nice, "a background thread keeps the process's CPU priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_at_the_lower_priority_and_returns_their_results() {
        let pool = Background::start(2, 10).unwrap();
        let (sum, nice) = pool
            .run(|| {
                let me = rustix::thread::gettid();
                let nice = rustix::process::getpriority_process(Some(me)).unwrap();
                ((1..=10).sum::<u32>(), nice)
            })
            .await;
        assert_eq!(sum, 55);
        // Ten below the thread that started the pool (a test runner may
        // itself run niced), at most 19.
        let starter = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        assert_eq!(
            nice,
            (starter + 10).min(19),
            "the starter's nice is {starter}"
        );
    }

    #[tokio::test]
    async fn a_panicking_job_panics_its_caller_and_the_pool_goes_on() {
        let pool = Arc::new(Background::start(1, 0).unwrap());
        let p = Arc::clone(&pool);
        let caller = tokio::spawn(async move { p.run(|| panic!("boom")).await });
        assert!(caller.await.unwrap_err().is_panic());
        assert_eq!(pool.run(|| 7).await, 7);
    }

    #[tokio::test]
    async fn many_jobs_share_the_threads() {
        let pool = Arc::new(Background::start(2, 0).unwrap());
        let mut set = tokio::task::JoinSet::new();
        for i in 0..100u64 {
            let p = Arc::clone(&pool);
            set.spawn(async move { p.run(move || i * 2).await });
        }
        let mut total = 0;
        while let Some(r) = set.join_next().await {
            total += r.unwrap();
        }
        assert_eq!(total, (0..100u64).map(|i| i * 2).sum::<u64>());
    }
}
