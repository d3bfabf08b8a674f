//! The simulation's observer: each node's events (a new tip, a payment in
//! its mempool, a gossiped block whole), timed on a thread of the
//! simulation's own as they are sent, and each node's first time for each
//! block and payment.

use chain_core::{BlockHash, Txid};
use chain_node::ChainEvent;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};

/// What a node reported.
pub(crate) enum Event {
    /// From its chain actor: a new tip, a payment in the mempool.
    Chain(ChainEvent),
    /// From its engine: a gossiped block it has whole, not yet connected.
    InHand(BlockHash),
}

/// An event at node `.0`, when it was seen.
type Seen = (usize, Event, Instant);

/// How often [`Observer::until`] asks whether it is done.
const CHECK_EVERY: Duration = Duration::from_millis(10);

/// When each node had each block (whole, then as its tip) and each payment.
pub(crate) struct Observer {
    rx: mpsc::UnboundedReceiver<Seen>,
    tx: mpsc::UnboundedSender<Seen>,
    pub(crate) tips: Vec<BlockHash>,
    pub(crate) blocks: HashMap<BlockHash, Vec<Option<Instant>>>,
    pub(crate) in_hand: HashMap<BlockHash, Vec<Option<Instant>>>,
    pub(crate) txs: HashMap<Txid, Vec<Option<Instant>>>,
    /// Events a watcher missed by falling behind.
    pub(crate) lost: Arc<std::sync::atomic::AtomicUsize>,
    /// The watchers' own thread: an event is timed when it is sent, not
    /// when the runtime the nodes share, busy with their networking, gets
    /// round to a watcher.
    watchers: Watchers,
}

/// A thread of its own running the watchers' tasks, stopped on drop.
struct Watchers {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl Watchers {
    fn start() -> Watchers {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("net-sim-watch".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        eprintln!("cannot start the watchers' runtime: {e}");
                        return;
                    }
                };
                let _ = handle_tx.send(rt.handle().clone());
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })
            .ok();
        let handle = handle_rx
            .recv()
            // Without a thread of their own, the watchers share the nodes'.
            .unwrap_or_else(|_| tokio::runtime::Handle::current());
        Watchers {
            handle,
            stop: Some(stop),
        }
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Observer {
    pub(crate) fn new() -> Observer {
        let (tx, rx) = mpsc::unbounded_channel();
        Observer {
            rx,
            tx,
            tips: Vec::new(),
            blocks: HashMap::new(),
            in_hand: HashMap::new(),
            txs: HashMap::new(),
            lost: Arc::default(),
            watchers: Watchers::start(),
        }
    }

    /// Watches node `i`'s chain and the blocks it has whole from now on.
    pub(crate) fn watch(
        &mut self,
        i: usize,
        events: broadcast::Receiver<ChainEvent>,
        in_hand: broadcast::Receiver<BlockHash>,
        tip: BlockHash,
    ) {
        if self.tips.len() <= i {
            self.tips.resize(i + 1, tip);
        }
        self.tips[i] = tip;
        self.forward(i, events, Event::Chain);
        self.forward(i, in_hand, Event::InHand);
    }

    /// Passes what `rx` receives to the observer as node `i`'s, timed when
    /// the watchers' thread takes it.
    fn forward<T: Clone + Send + 'static>(
        &self,
        i: usize,
        mut rx: broadcast::Receiver<T>,
        wrap: fn(T) -> Event,
    ) {
        let (tx, lost) = (self.tx.clone(), self.lost.clone());
        self.watchers.handle.spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        if tx.send((i, wrap(ev), Instant::now())).is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        lost.fetch_add(n as usize, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    fn record(&mut self, (i, ev, at): Seen) {
        let n = self.tips.len();
        match ev {
            Event::Chain(ChainEvent::Tip { tip, .. }) => {
                self.tips[i] = tip.hash;
                first_at(&mut self.blocks, tip.hash, (i, n), at);
                // A node that connected a block has it (the minter's own).
                first_at(&mut self.in_hand, tip.hash, (i, n), at);
            }
            Event::Chain(ChainEvent::TxAccepted(txid)) => first_at(&mut self.txs, txid, (i, n), at),
            Event::InHand(hash) => first_at(&mut self.in_hand, hash, (i, n), at),
        }
    }

    /// Each of `nodes`' delay from `t0` to its first time in `seen[hash]`.
    pub(crate) fn delays(
        seen: &HashMap<BlockHash, Vec<Option<Instant>>>,
        hash: &BlockHash,
        nodes: &[usize],
        t0: Instant,
    ) -> Vec<Option<Duration>> {
        let seen = seen.get(hash).map(Vec::as_slice).unwrap_or_default();
        nodes
            .iter()
            .map(|&i| {
                seen.get(i)
                    .copied()
                    .flatten()
                    .map(|t| t.saturating_duration_since(t0))
            })
            .collect()
    }

    /// Takes events until `done` holds or `deadline` passes; whether it holds.
    /// `done` is asked at most every [`CHECK_EVERY`]: with a thousand
    /// payments at a hundred nodes it costs a hundred thousand lookups,
    /// and the events come one by one. Times are the events' own, so a
    /// later check does not change them.
    pub(crate) async fn until(
        &mut self,
        deadline: Instant,
        done: impl Fn(&Observer) -> bool,
    ) -> bool {
        let mut next_check = Instant::now();
        loop {
            while let Ok(seen) = self.rx.try_recv() {
                self.record(seen);
            }
            let now = Instant::now();
            if now >= next_check || now >= deadline {
                if done(self) {
                    return true;
                }
                if now >= deadline {
                    return false;
                }
                next_check = now + CHECK_EVERY;
            }
            match tokio::time::timeout_at(next_check.min(deadline).into(), self.rx.recv()).await {
                Ok(Some(seen)) => self.record(seen),
                Ok(None) => return done(self),
                Err(_) => {}
            }
        }
    }

    /// Whether every node in `nodes` has `hash` as its tip.
    pub(crate) fn all_at(&self, nodes: &[usize], hash: BlockHash) -> bool {
        nodes.iter().all(|&i| self.tips[i] == hash)
    }
}

/// A minted block, and each node's delay from its minting until it had
/// the block whole and until it connected it (`None`: it never did).
pub(crate) struct Arrivals {
    pub(crate) hash: BlockHash,
    pub(crate) connected: Vec<Option<Duration>>,
    pub(crate) in_hand: Vec<Option<Duration>>,
}

/// Records `at` as node `i`'s (of `n`) time for `key`, unless it has an
/// earlier one (the watchers of one node forward their events in tasks of
/// their own, so an earlier event can be recorded after a later one).
fn first_at<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Vec<Option<Instant>>>,
    key: K,
    (i, n): (usize, usize),
    at: Instant,
) {
    let seen = map.entry(key).or_insert_with(|| vec![None; n]);
    seen.resize(n, None);
    seen[i] = Some(seen[i].map_or(at, |t| t.min(at)));
}
