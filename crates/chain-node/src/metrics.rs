//! The chain's Prometheus metrics: what the chain actor and the node count
//! as they work. Registered into a registry by whoever serves them (the
//! HTTP API's `/metrics`); counting costs an atomic add, served or not.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Why a peer was banned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BanReason {
    /// It sent a block that failed validation.
    InvalidBlock,
    /// It sent headers that failed validation.
    InvalidHeaders,
    /// It relayed a transaction that failed validation.
    InvalidTx,
    /// It broke the protocol (bad frames, unasked answers, rate abuse).
    Protocol,
    /// It speaks another protocol version, or is on another chain.
    Incompatible,
}

impl BanReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BanReason::InvalidBlock => "invalid_block",
            BanReason::InvalidHeaders => "invalid_headers",
            BanReason::InvalidTx => "invalid_tx",
            BanReason::Protocol => "protocol",
            BanReason::Incompatible => "incompatible",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    kind: &'static str,
    outcome: &'static str,
}

/// The chain's counters, gauges and histograms.
#[derive(Debug)]
pub struct ChainMetrics {
    blocks_connected: Counter,
    blocks_disconnected: Counter,
    reorgs: Counter,
    reorg_depth: Histogram,
    orphans: Gauge,
    validation_seconds: Histogram,
    sync_height: Gauge,
    sync_target: Gauge,
    bans: Family<ReasonLabel, Counter>,
    requests: Family<RequestLabels, Counter>,
    compact: Family<OutcomeLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

impl Default for ChainMetrics {
    fn default() -> Self {
        ChainMetrics {
            blocks_connected: Counter::default(),
            blocks_disconnected: Counter::default(),
            reorgs: Counter::default(),
            reorg_depth: Histogram::new([1.0, 2.0, 3.0, 6.0, 10.0, 20.0, 50.0, 100.0]),
            orphans: Gauge::default(),
            // From 100 µs (an empty block) to 2.5 s (a full one on a slow machine).
            validation_seconds: Histogram::new([
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ]),
            sync_height: Gauge::default(),
            sync_target: Gauge::default(),
            bans: Family::default(),
            requests: Family::default(),
            compact: Family::default(),
        }
    }
}

impl ChainMetrics {
    /// Registers every metric under `chain_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("chain");
        r.register(
            "blocks_connected",
            "Blocks connected to the best chain",
            self.blocks_connected.clone(),
        );
        r.register(
            "blocks_disconnected",
            "Blocks disconnected from the best chain by reorganisations",
            self.blocks_disconnected.clone(),
        );
        r.register(
            "reorgs",
            "Reorganisations of the best chain",
            self.reorgs.clone(),
        );
        r.register(
            "reorg_depth",
            "Blocks disconnected by each reorganisation",
            self.reorg_depth.clone(),
        );
        r.register(
            "orphans",
            "Blocks held in the orphan pool, waiting for their parent",
            self.orphans.clone(),
        );
        r.register(
            "block_validation_seconds",
            "Time to check, connect and store one block",
            self.validation_seconds.clone(),
        );
        r.register(
            "sync_height",
            "The local tip height as the last sync reported it",
            self.sync_height.clone(),
        );
        r.register(
            "sync_target",
            "The height the sync peer claimed (0: no sync has run)",
            self.sync_target.clone(),
        );
        r.register("peer_bans", "Peers banned, by reason", self.bans.clone());
        r.register(
            "compact_blocks",
            "Compact blocks taken, by how: rebuilt from the mempool alone, needing transactions asked for, or the full block asked for",
            self.compact.clone(),
        );
        r.register(
            "peer_requests",
            "Requests from peers answered, by kind and outcome",
            self.requests.clone(),
        );
    }

    /// A block was connected; `disconnected` blocks left the best chain
    /// before it (a reorganisation when above zero).
    pub(crate) fn on_tip(&self, connected: usize, disconnected: usize) {
        self.blocks_connected.inc_by(connected as u64);
        if disconnected > 0 {
            self.blocks_disconnected.inc_by(disconnected as u64);
            self.reorgs.inc();
            self.reorg_depth.observe(disconnected as f64);
        }
    }

    pub(crate) fn set_orphans(&self, n: usize) {
        self.orphans.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn observe_validation(&self, d: std::time::Duration) {
        self.validation_seconds.observe(d.as_secs_f64());
    }

    pub(crate) fn on_sync(&self, height: u32, target: u32) {
        self.sync_height.set(height.into());
        self.sync_target.set(target.into());
    }

    /// A compact block was rebuilt from the mempool alone (`true`) or
    /// needed the network.
    pub(crate) fn on_compact(&self, from_pool: bool) {
        let outcome = if from_pool { "from_mempool" } else { "asked" };
        self.compact.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// A compact block was given up for the full block.
    pub(crate) fn on_compact_fallback(&self) {
        self.compact
            .get_or_create(&OutcomeLabel {
                outcome: "full_block",
            })
            .inc();
    }

    pub(crate) fn on_ban(&self, reason: BanReason) {
        self.bans
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    pub(crate) fn on_request(&self, kind: &'static str, ok: bool) {
        self.requests
            .get_or_create(&RequestLabels {
                kind,
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// Blocks connected so far.
    pub fn blocks_connected(&self) -> u64 {
        self.blocks_connected.get()
    }

    /// Bans so far for `reason`.
    pub fn bans(&self, reason: BanReason) -> u64 {
        self.bans
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .get()
    }
}
