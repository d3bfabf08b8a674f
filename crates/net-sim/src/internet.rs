//! The internet's latencies and rates, for `--latency internet`.
//!
//! The regions, their weights, the one-way latencies between them and the
//! two kinds of node are those of libp2p's gossipsub interoperability
//! simulation: `gossipsub-interop/network_graph.py` in
//! <https://github.com/libp2p/test-plans> (MIT or Apache-2.0), which gives
//! them to the Shadow simulator as its network graph's edge latencies.
//! The weights are node counts per region; 20% of nodes have 1,024 Mbit/s
//! up and down, 80% have 50 Mbit/s.

use p2p_net::link::{LinkNetwork, LinkSpec};
use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;

/// Region names, in matrix order.
pub const REGIONS: [&str; 8] = [
    "australia",
    "europe",
    "east_asia",
    "west_asia",
    "na_east",
    "na_west",
    "south_africa",
    "south_america",
];

/// How many nodes each region has, relative to the others.
const WEIGHTS: [u32; 8] = [290, 5599, 1059, 161, 2894, 1240, 47, 36];

/// One-way latency in ms from region `row` to region `column`.
const ONE_WAY_MS: [[u64; 8]; 8] = [
    // aus  eu   e.as w.as na-e na-w s.af s.am
    [2, 165, 110, 180, 150, 110, 220, 190], // australia
    [165, 2, 125, 60, 70, 110, 95, 140],    // europe
    [110, 125, 4, 110, 140, 100, 175, 175], // east_asia
    [180, 60, 110, 5, 110, 150, 110, 145],  // west_asia
    [150, 70, 140, 110, 2, 60, 130, 100],   // na_east
    [110, 110, 100, 150, 60, 2, 160, 100],  // na_west
    [220, 95, 175, 110, 130, 160, 7, 190],  // south_africa
    [190, 140, 175, 145, 100, 100, 195, 7], // south_america
];

/// The two kinds of node: (share in percent, rate in Mbit/s both ways).
const KINDS: [(u32, u64); 2] = [(20, 1024), (80, 50)];

/// A link network with the internet's latencies, losing a write with
/// probability `loss`.
pub fn network(loss: f64, seed: u64) -> Arc<LinkNetwork> {
    let one_way = ONE_WAY_MS
        .iter()
        .map(|row| row.iter().map(|&ms| Duration::from_millis(ms)).collect())
        .collect();
    LinkNetwork::new(one_way, loss, seed)
}

/// A node's place and rate, drawn as the interop simulation draws them.
pub fn draw(rng: &mut impl Rng) -> LinkSpec {
    let region = WeightedIndex::new(WEIGHTS)
        .map(|w| w.sample(rng))
        .unwrap_or(0);
    let kind = WeightedIndex::new(KINDS.map(|k| k.0))
        .map(|w| w.sample(rng))
        .unwrap_or(1);
    let bits = KINDS[kind].1 * 1_000_000;
    LinkSpec {
        region,
        up_bits_per_s: bits,
        down_bits_per_s: bits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_matrix_is_the_sources_and_draws_follow_the_weights() {
        // Spot checks against network_graph.py's edges.
        let net = network(0.0, 1);
        let ms = Duration::from_millis;
        assert_eq!(net.latency(1, 4), ms(70), "europe to na_east");
        assert_eq!(net.latency(0, 1), ms(165), "australia to europe");
        assert_eq!(net.latency(6, 7), ms(190), "south_africa to south_america");
        assert_eq!(net.latency(7, 6), ms(195), "south_america to south_africa");
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let draws: Vec<LinkSpec> = (0..10_000).map(|_| draw(&mut rng)).collect();
        let europe = draws.iter().filter(|s| s.region == 1).count();
        let fast = draws
            .iter()
            .filter(|s| s.up_bits_per_s == 1_024_000_000)
            .count();
        // Europe is 5599 of 11326 (49.4%); fast nodes 20%.
        assert!((4_700..5_200).contains(&europe), "{europe}");
        assert!((1_800..2_200).contains(&fast), "{fast}");
    }
}
