//! A small simulated network: every block and payment reaches every
//! node, a healed partition converges on the branch with more work, and a
//! newcomer syncs. Correctness only; the figures are the binary's job.

#![allow(clippy::unwrap_used)]

use net_sim::{run, SimConfig};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_payments_a_heal_and_a_newcomer_reach_every_node() {
    let cfg = SimConfig {
        nodes: 8,
        blocks: 3,
        txs: 20,
        seed: 7,
        dials: (2, 3),
        partition: 2,
        newcomer_peers: 3,
        timeout: Duration::from_secs(60),
        settle: Duration::from_secs(1),
        ..SimConfig::default()
    };
    let report = run(cfg).await.unwrap();
    assert_eq!(report.blocks.len(), 3);
    for (b, per_node) in report.blocks.iter().enumerate() {
        assert_eq!(per_node.len(), 8);
        assert!(
            per_node.iter().all(Option::is_some),
            "block {b}: {per_node:?}"
        );
    }
    // Each node had each block whole no later than it connected it.
    assert_eq!(report.blocks_in_hand.len(), 3);
    for (hand, tip) in report.blocks_in_hand.iter().zip(&report.blocks) {
        for (h, t) in hand.iter().zip(tip) {
            assert!(h.is_some() && *h <= *t, "in hand {h:?}, connected {t:?}");
        }
    }
    assert_eq!(report.txs.len(), 20);
    assert!(report.txs.iter().flatten().all(Option::is_some));
    assert!(report.txs_everywhere.is_some());
    assert_eq!(report.partition, Some((2, 6)));
    assert!(report.heal.is_some(), "the partition did not converge");
    let (_, height, synced) = report.newcomer.unwrap();
    assert!(synced.is_some(), "the newcomer did not sync");
    // The fixture's 4 blocks, 3 minted, then 3 on the winning side.
    assert_eq!(height, 4 + 3 + 3);
    // Blocks and payments moved bytes, and each node was sent some.
    assert!(report.block_traffic.iter().all(|t| t.bytes_in > 0.0));
    assert!(report.tx_traffic.iter().all(|t| t.gossip_received >= 1.0));
    assert_eq!(report.lost_events, 0);
    let csv = report.csv();
    assert_eq!(
        csv.lines().filter(|l| l.starts_with("block_ms,")).count(),
        3 * 8
    );
    assert_eq!(
        csv.lines()
            .filter(|l| l.starts_with("block_in_hand_ms,"))
            .count(),
        3 * 8
    );
}
