//! What the API asks of the network host, asked at most once per
//! [`NET_FRESH_FOR`]. The host's event loop also carries the node's sync and
//! relay: a flood of status or metrics requests must not queue on it. Many
//! requests at once wait for the one question in flight.

use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How old an answer from the network host may be when served.
pub const NET_FRESH_FOR: Duration = Duration::from_secs(1);

/// The last answer to one question, and when it came.
pub(crate) struct Cached<T: Clone> {
    last: Mutex<Option<(Instant, T)>>,
    fresh_for: Duration,
}

impl<T: Clone> Cached<T> {
    pub(crate) fn new(fresh_for: Duration) -> Cached<T> {
        Cached {
            last: Mutex::new(None),
            fresh_for,
        }
    }

    /// The last answer while it is fresh, else a new one from `ask`
    /// (`None` from `ask` is not kept).
    pub(crate) async fn get<F>(&self, ask: impl FnOnce() -> F) -> Option<T>
    where
        F: Future<Output = Option<T>>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, v)) = &*last {
            if at.elapsed() < self.fresh_for {
                return Some(v.clone());
            }
        }
        let v = ask().await?;
        *last = Some((Instant::now(), v.clone()));
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn asks_once_while_fresh_and_again_when_stale() {
        let asked = AtomicU32::new(0);
        let ask = || async { Some(asked.fetch_add(1, Ordering::SeqCst)) };
        let c = Cached::new(Duration::from_millis(200));
        assert_eq!(c.get(ask).await, Some(0));
        assert_eq!(c.get(ask).await, Some(0));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(c.get(ask).await, Some(1));
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_missing_answer_is_not_kept() {
        let c: Cached<u32> = Cached::new(Duration::from_secs(60));
        assert_eq!(c.get(|| async { None }).await, None);
        assert_eq!(c.get(|| async { Some(7) }).await, Some(7));
    }
}
