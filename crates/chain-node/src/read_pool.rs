//! The threads that serve peers' reads of the chain ([`crate::reads`]):
//! [`READ_THREADS`] of them, in Linux's idle scheduling class, fed from a
//! queue of [`READ_QUEUE`] reads. A read runs only on CPU time the node's
//! own work (validating blocks and payments, syncing) leaves over, so
//! however many peers ask, and however much each read costs, they cannot
//! slow a sync; a read that finds the queue full is refused at once as
//! busy, so waiting reads are bounded too.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Threads serving reads.
pub const READ_THREADS: usize = 2;
/// Reads waiting for a thread; one more is refused as busy.
pub const READ_QUEUE: usize = 32;

type Job = Box<dyn FnOnce() + Send>;

/// A pool of low-priority threads for reads. The threads end once every
/// handle to the pool is dropped.
pub struct ReadPool {
    jobs: SyncSender<Job>,
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
    /// Starts `threads` threads (at least 1) behind a queue of `queue` reads.
    pub fn start(threads: usize, queue: usize) -> std::io::Result<ReadPool> {
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
        Ok(ReadPool { jobs })
    }

    /// Runs `read` on a pool thread and waits for its result.
    pub async fn run<T: Send + 'static>(
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
        let pool = ReadPool::start(1, 1).unwrap();
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        rt.block_on(async {
            let name = pool
                .run(|| std::thread::current().name().map(str::to_string))
                .await
                .unwrap();
            assert_eq!(name.as_deref(), Some("reads-0"));
            // The one thread held by a read...
            let first = pool.run(move || {
                started_tx.send(()).unwrap();
                released.recv().unwrap();
                1
            });
            tokio::pin!(first);
            assert!(futures::poll!(&mut first).is_pending());
            started.recv().unwrap();
            // ...and the one queue place taken by another...
            let second = pool.run(|| 2);
            tokio::pin!(second);
            assert!(futures::poll!(&mut second).is_pending());
            // ...the next is refused without waiting.
            assert_eq!(pool.run(|| 3).await, Err(NotRun::Busy));
            release.send(()).unwrap();
            assert_eq!(first.await, Ok(1));
            assert_eq!(second.await, Ok(2));
        });
    }
}
