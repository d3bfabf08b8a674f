//! What a simulation measured: a table for a person, a CSV for a program.

use crate::stats::{quantile, Traffic};
use crate::SimConfig;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// The measurements of one run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Nodes in the network.
    pub nodes: usize,
    /// The seed.
    pub seed: u64,
    /// Time to build the starting chain, start the nodes and connect them.
    pub startup: Duration,
    /// For each block, each node's delay from minting to having it as its
    /// tip (`None`: it never did).
    pub blocks: Vec<Vec<Option<Duration>>>,
    /// For each block, each node's delay from minting to having it whole
    /// from gossip (a compact block rebuilt, a full block received), before
    /// connecting it: what the network took, without this machine's cores
    /// shared by every node's connect.
    pub blocks_in_hand: Vec<Vec<Option<Duration>>>,
    /// For each payment, each node's delay from submission to its mempool.
    pub txs: Vec<Vec<Option<Duration>>>,
    /// From the first payment's submission until every node held every
    /// payment (`None`: not within the timeout).
    pub txs_everywhere: Option<Duration>,
    /// Each node's traffic while the blocks spread.
    pub block_traffic: Vec<Traffic>,
    /// Each node's traffic while the payments spread.
    pub tx_traffic: Vec<Traffic>,
    /// The partition's sides (small, large).
    pub partition: Option<(usize, usize)>,
    /// From the heal until every node was on the winning branch.
    pub heal: Option<Duration>,
    /// The newcomer's peers, the height it reached and its sync time.
    pub newcomer: Option<(usize, u32, Option<Duration>)>,
    /// Each node's connected peers after the blocks spread.
    pub peers: Vec<usize>,
    /// Chain events a watcher missed (the figures are then incomplete).
    pub lost_events: usize,
}

/// Percentiles of arrival over every (message, node) pair, and the
/// share of pairs that arrived.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Median arrival.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The slowest arrival.
    pub max: Duration,
    /// Pairs that arrived, out of all.
    pub arrived: usize,
    /// All pairs.
    pub total: usize,
}

impl Spread {
    /// The spread of `arrivals` (per message, per node).
    pub fn of(arrivals: &[Vec<Option<Duration>>]) -> Option<Spread> {
        let total = arrivals.iter().map(Vec::len).sum();
        let mut all: Vec<Duration> = arrivals.iter().flatten().flatten().copied().collect();
        all.sort_unstable();
        Some(Spread {
            p50: quantile(&all, 0.5)?,
            p90: quantile(&all, 0.9)?,
            p99: quantile(&all, 0.99)?,
            max: quantile(&all, 1.0)?,
            arrived: all.len(),
            total,
        })
    }
}

/// The mean of each message's time to reach a share `q` of the nodes.
fn mean_time_to_reach(arrivals: &[Vec<Option<Duration>>], q: f64) -> Option<Duration> {
    let mut sum = Duration::ZERO;
    let mut count = 0u32;
    for per_node in arrivals {
        let mut v: Vec<Duration> = per_node.iter().flatten().copied().collect();
        if v.len() < per_node.len() && q >= 1.0 {
            continue;
        }
        v.sort_unstable();
        let rank = (q * per_node.len() as f64).ceil().max(1.0) as usize;
        if let Some(t) = v.get(rank - 1) {
            sum += *t;
            count += 1;
        }
    }
    (count > 0).then(|| sum / count)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn opt_ms(d: Option<Duration>) -> String {
    d.map(ms).unwrap_or_else(|| "-".into())
}

/// Mean and max of `f` over the nodes.
fn mean_max(traffic: &[Traffic], f: impl Fn(&Traffic) -> f64) -> (f64, f64) {
    let v: Vec<f64> = traffic.iter().map(f).collect();
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    (mean, v.iter().copied().fold(0.0, f64::max))
}

impl Report {
    /// An empty report for `cfg`.
    pub fn new(cfg: &SimConfig) -> Report {
        Report {
            nodes: cfg.nodes,
            seed: cfg.seed,
            ..Report::default()
        }
    }

    /// The table a person reads.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{} nodes, seed {}, {} blocks, {} payments (started and connected in {:.1} s)",
            self.nodes,
            self.seed,
            self.blocks.len(),
            self.txs.len(),
            self.startup.as_secs_f64()
        );
        let _ = writeln!(
            t,
            "{:<22} {:>9} {:>9} {:>9} {:>9}   {:>26}",
            "arrival (ms)", "p50", "p90", "p99", "max", "mean time to 50/90/99/100%"
        );
        for (name, arrivals) in [
            ("blocks: in hand", &self.blocks_in_hand),
            ("blocks: connected", &self.blocks),
            ("payments", &self.txs),
        ] {
            let Some(s) = Spread::of(arrivals) else {
                continue;
            };
            let reach: Vec<String> = [0.5, 0.9, 0.99, 1.0]
                .iter()
                .map(|q| opt_ms(mean_time_to_reach(arrivals, *q)))
                .collect();
            let _ = writeln!(
                t,
                "{:<22} {:>9} {:>9} {:>9} {:>9}   {:>26}{}",
                name,
                ms(s.p50),
                ms(s.p90),
                ms(s.p99),
                ms(s.max),
                reach.join("/"),
                if s.arrived < s.total {
                    format!(
                        "  ({} of {} arrivals missing)",
                        s.total - s.arrived,
                        s.total
                    )
                } else {
                    String::new()
                }
            );
        }
        if !self.peers.is_empty() {
            let mut p = self.peers.clone();
            p.sort_unstable();
            let mean = p.iter().sum::<usize>() as f64 / p.len() as f64;
            let _ = writeln!(
                t,
                "peers per node: mean {mean:.1}, fewest {}, median {}, most {}",
                p[0],
                p[p.len() / 2],
                p[p.len() - 1]
            );
        }
        if !self.txs.is_empty() {
            let _ = writeln!(
                t,
                "all payments in every mempool: {} ms after the first was submitted",
                opt_ms(self.txs_everywhere)
            );
        }
        let _ = writeln!(
            t,
            "{:<22} {:>14} {:>14} {:>22} {:>16}",
            "per node (mean/max)",
            "KiB in",
            "KiB out",
            "duplicates per message",
            "connections made"
        );
        for (name, traffic, msgs) in [
            (
                "while blocks spread",
                &self.block_traffic,
                self.blocks.len(),
            ),
            ("while payments spread", &self.tx_traffic, self.txs.len()),
        ] {
            if traffic.is_empty() || msgs == 0 {
                continue;
            }
            let kib = |x: f64| x / 1024.0;
            let (in_mean, in_max) = mean_max(traffic, |t| kib(t.bytes_in));
            let (out_mean, out_max) = mean_max(traffic, |t| kib(t.bytes_out));
            let (dup_mean, dup_max) = mean_max(traffic, |t| t.duplicates() / msgs as f64);
            let (conn_mean, conn_max) = mean_max(traffic, |t| t.connections);
            let _ = writeln!(
                t,
                "{:<22} {:>14} {:>14} {:>22} {:>16}",
                name,
                format!("{in_mean:.0}/{in_max:.0}"),
                format!("{out_mean:.0}/{out_max:.0}"),
                format!("{dup_mean:.2}/{dup_max:.2}"),
                format!("{conn_mean:.1}/{conn_max:.0}")
            );
        }
        if !self.block_traffic.is_empty() && !self.blocks.is_empty() {
            let per = self.blocks.len() as f64 * 1024.0;
            let (in_mean, in_max) = mean_max(&self.block_traffic, |t| t.bytes_in / per);
            let (out_mean, out_max) = mean_max(&self.block_traffic, |t| t.bytes_out / per);
            let _ = writeln!(
                t,
                "per node per block: KiB in {in_mean:.1} (max {in_max:.1}), KiB out {out_mean:.1} (max {out_max:.1})"
            );
        }
        if let Some((small, large)) = self.partition {
            let _ = writeln!(
                t,
                "partition {small}/{large}, the small side ahead: every node on its branch {} ms after the heal",
                opt_ms(self.heal)
            );
        }
        if let Some((peers, height, time)) = self.newcomer {
            let _ = writeln!(
                t,
                "newcomer with {peers} peers: synced to height {height} in {} ms",
                opt_ms(time)
            );
        }
        if self.lost_events > 0 {
            let _ = writeln!(
                t,
                "warning: {} chain events were missed; the figures above are incomplete",
                self.lost_events
            );
        }
        t
    }

    /// The measurements as CSV, one row per value: `kind,item,node,value`.
    /// Kinds: `block_ms`, `block_in_hand_ms` and `tx_ms` (delay of item at
    /// node until it was connected, had whole, or in the mempool; empty
    /// when it never was), `bytes_in`, `bytes_out` and `duplicates`
    /// for each phase (`blocks`, `payments`) and node, and `heal_ms`,
    /// `txs_everywhere_ms`, `newcomer_ms`.
    pub fn csv(&self) -> String {
        let mut out = String::from("kind,item,node,value\n");
        for (kind, arrivals) in [
            ("block_ms", &self.blocks),
            ("block_in_hand_ms", &self.blocks_in_hand),
            ("tx_ms", &self.txs),
        ] {
            for (item, per_node) in arrivals.iter().enumerate() {
                for (node, a) in per_node.iter().enumerate() {
                    let v = a.map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0));
                    let _ = writeln!(out, "{kind},{item},{node},{}", v.unwrap_or_default());
                }
            }
        }
        for (phase, traffic) in [
            ("blocks", &self.block_traffic),
            ("payments", &self.tx_traffic),
        ] {
            for (node, t) in traffic.iter().enumerate() {
                let _ = writeln!(out, "bytes_in,{phase},{node},{}", t.bytes_in);
                let _ = writeln!(out, "bytes_out,{phase},{node},{}", t.bytes_out);
                let _ = writeln!(out, "duplicates,{phase},{node},{}", t.duplicates());
                let _ = writeln!(out, "connections,{phase},{node},{}", t.connections);
            }
        }
        for (kind, v) in [
            ("heal_ms", self.heal),
            ("txs_everywhere_ms", self.txs_everywhere),
            ("newcomer_ms", self.newcomer.and_then(|n| n.2)),
        ] {
            if let Some(d) = v {
                let _ = writeln!(out, "{kind},,,{:.3}", d.as_secs_f64() * 1000.0);
            }
        }
        out
    }

    /// Writes [`Report::csv`] to `path`.
    pub fn write_csv(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.csv())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Option<Duration> {
        Some(Duration::from_millis(ms))
    }

    #[test]
    fn spread_and_reach_count_missing_arrivals() {
        let arrivals = vec![
            vec![d(0), d(10), d(20), d(30)],
            vec![d(0), d(40), None, d(20)],
        ];
        let s = Spread::of(&arrivals).expect("arrivals");
        assert_eq!((s.arrived, s.total), (7, 8));
        assert_eq!(s.max, Duration::from_millis(40));
        assert_eq!(s.p50, Duration::from_millis(20));
        // Half the nodes: 10 ms and 20 ms; all of them: only the first
        // block reached every node.
        assert_eq!(mean_time_to_reach(&arrivals, 0.5), d(15));
        assert_eq!(mean_time_to_reach(&arrivals, 1.0), d(30));
    }

    #[test]
    fn the_csv_has_a_row_per_value() {
        let r = Report {
            blocks: vec![vec![d(1), None]],
            heal: d(5),
            ..Report::default()
        };
        let csv = r.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "kind,item,node,value");
        assert_eq!(lines[1], "block_ms,0,0,1.000");
        assert_eq!(lines[2], "block_ms,0,1,");
        assert_eq!(lines[3], "heal_ms,,,5.000");
        assert!(r.table().contains("blocks"));
    }
}
