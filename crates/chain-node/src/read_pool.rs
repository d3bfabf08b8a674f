//! The threads that serve peers' reads of the chain ([`crate::reads`]):
//! [`READ_THREADS`] of them, in Linux's idle scheduling class, fed from a
//! queue of [`READ_QUEUE`] reads. A read runs only on CPU time the node's
//! own work (validating blocks and payments, syncing) leaves over, so
//! however many peers ask, and however much each read costs, they cannot
//! slow a sync; a read that finds the queue full is refused at once as
//! busy, so waiting reads are bounded too.
//!
//! What the reads answer is bounded as well, across all peers: sending an
//! answer costs the network task CPU at normal priority (encoding,
//! encryption), so the pool keeps a budget of [`READ_BYTES_PER_SEC`]
//! answer bytes a second. Each read is charged what it answered once it
//! has run. While the budget is spent, reads that only serve wallets
//! (an address's coins, up to 20,000 of them, about 1 MB) are refused as
//! busy, whatever the number of peers asking; reads that serve other
//! nodes' syncs (blocks, headers, hashes) always run, and count against
//! the budget, so the network's sync comes before wallets' reads.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Threads serving reads.
pub const READ_THREADS: usize = 2;
/// Reads waiting for a thread; one more is refused as busy.
pub const READ_QUEUE: usize = 32;
/// Answer bytes the reads may produce a second, across all peers; also
/// the most they may produce at once after a quiet spell.
pub const READ_BYTES_PER_SEC: usize = 16 * 1024 * 1024;

type Job = Box<dyn FnOnce() + Send>;

/// A pool of low-priority threads for reads. The threads end once every
/// handle to the pool is dropped.
pub struct ReadPool {
    jobs: SyncSender<Job>,
    budget: Mutex<Budget>,
}

/// Answer bytes left to spend; refilled with time up to one second's worth.
struct Budget {
    per_sec: f64,
    left: f64,
    at: std::time::Instant,
}

impl Budget {
    fn refill(&mut self) -> f64 {
        let now = std::time::Instant::now();
        let secs = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.left = (self.left + secs * self.per_sec).min(self.per_sec);
        self.left
    }
}

/// How a read is held to the answer budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    /// It runs only while the budget lasts (wallets' reads).
    WithinBudget,
    /// It always runs, and is charged (other nodes' syncs).
    Always,
}

/// Why a read was not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotRun {
    /// The queue was full.
    Busy,
    /// The pool is shutting down.
    Stopping,
}

impl ReadPool {
    /// Starts `threads` threads (at least 1) behind a queue of `queue`
    /// reads, whose answers may take `bytes_per_sec` a second.
    pub fn start(threads: usize, queue: usize, bytes_per_sec: usize) -> std::io::Result<ReadPool> {
        let (jobs, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("reads-{i}"))
                .spawn(move || {
                    crate::priority::idle_class();
                    work(&rx);
                })?;
        }
        Ok(ReadPool {
            jobs,
            budget: Mutex::new(Budget {
                per_sec: bytes_per_sec as f64,
                left: bytes_per_sec as f64,
                at: std::time::Instant::now(),
            }),
        })
    }

    /// Runs `read` on a pool thread and waits for its result, which is
    /// charged `size(&result)` bytes of the budget.
    pub async fn run<T: Send + 'static>(
        &self,
        read: impl FnOnce() -> T + Send + 'static,
        size: impl FnOnce(&T) -> usize,
        charge: Charge,
    ) -> Result<T, NotRun> {
        if charge == Charge::WithinBudget && self.spend(0) <= 0.0 {
            return Err(NotRun::Busy);
        }
        let answer = self.queue(read).await?;
        self.spend(size(&answer));
        Ok(answer)
    }

    /// Whether reads within the budget would run now.
    pub fn has_budget(&self) -> bool {
        self.spend(0) > 0.0
    }

    /// Charges `bytes` to the budget; returns what is left (below zero
    /// when an answer was larger than what remained).
    fn spend(&self, bytes: usize) -> f64 {
        let Ok(mut b) = self.budget.lock() else {
            return 0.0;
        };
        b.refill();
        b.left -= bytes as f64;
        b.left
    }

    async fn queue<T: Send + 'static>(
        &self,
        read: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NotRun> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(read());
        });
        match self.jobs.try_send(job) {
            Ok(()) => answer.await.map_err(|_| NotRun::Stopping),
            Err(TrySendError::Full(_)) => Err(NotRun::Busy),
            Err(TrySendError::Disconnected(_)) => Err(NotRun::Stopping),
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job.
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_run_on_the_pool_and_a_full_queue_is_busy_at_once() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let pool = ReadPool::start(1, 1, usize::MAX / 2).unwrap();
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        rt.block_on(async {
            let name = pool
                .run(
                    || std::thread::current().name().map(str::to_string),
                    |_| 0,
                    Charge::WithinBudget,
                )
                .await
                .unwrap();
            assert_eq!(name.as_deref(), Some("reads-0"));
            // The one thread held by a read...
            let first = pool.run(
                move || {
                    started_tx.send(()).unwrap();
                    released.recv().unwrap();
                    1
                },
                |_| 0,
                Charge::WithinBudget,
            );
            tokio::pin!(first);
            assert!(futures::poll!(&mut first).is_pending());
            started.recv().unwrap();
            // ...and the one queue place taken by another...
            let second = pool.run(|| 2, |_| 0, Charge::WithinBudget);
            tokio::pin!(second);
            assert!(futures::poll!(&mut second).is_pending());
            // ...the next is refused without waiting.
            assert_eq!(
                pool.run(|| 3, |_| 0, Charge::WithinBudget).await,
                Err(NotRun::Busy)
            );
            release.send(()).unwrap();
            assert_eq!(first.await, Ok(1));
            assert_eq!(second.await, Ok(2));
        });
    }

    #[test]
    fn answers_spend_the_byte_budget_and_reads_wait_for_it_to_refill() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // 1,000 bytes a second.
        let pool = ReadPool::start(1, 4, 1_000).unwrap();
        rt.block_on(async {
            // An answer larger than what is left is still given...
            let within = Charge::WithinBudget;
            assert_eq!(pool.run(|| 5_000usize, |n| *n, within).await, Ok(5_000));
            // ...and reads within the budget are refused until the debt is
            // paid off, while the others still run (and add to the debt).
            assert_eq!(pool.run(|| 1usize, |n| *n, within).await, Err(NotRun::Busy));
            assert_eq!(
                pool.run(|| 1_000usize, |n| *n, Charge::Always).await,
                Ok(1_000)
            );
            std::thread::sleep(std::time::Duration::from_millis(4_200));
            assert_eq!(pool.run(|| 1usize, |n| *n, within).await, Err(NotRun::Busy));
            std::thread::sleep(std::time::Duration::from_millis(1_000));
            assert_eq!(pool.run(|| 1usize, |n| *n, within).await, Ok(1));
        });
    }
}
