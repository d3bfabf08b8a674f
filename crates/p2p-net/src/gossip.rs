//! Gossipsub's parameters and peer scoring. `docs/protocol.md` gives the
//! values and the measurements behind them.

use libp2p::gossipsub::{self, IdentTopic, PeerScoreParams, PeerScoreThresholds, TopicScoreParams};
use std::time::Duration;

/// The gossipsub parameters that shape propagation. The defaults are the
/// values measured best on the simulation (`docs/protocol.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GossipParams {
    /// Peers in each topic's mesh; a heartbeat grafts below
    /// `mesh_n_low` and prunes above `mesh_n_high`.
    pub mesh_n: usize,
    /// Fewest mesh peers before a heartbeat grafts more.
    pub mesh_n_low: usize,
    /// Most mesh peers before a heartbeat prunes.
    pub mesh_n_high: usize,
    /// Peers outside the mesh told of recent messages at each heartbeat.
    pub gossip_lazy: usize,
    /// How often the mesh is repaired and gossip (IHAVE) sent.
    pub heartbeat: Duration,
    /// Whether a node's own message goes to every topic peer, not only its mesh.
    pub flood_publish: bool,
}

impl Default for GossipParams {
    fn default() -> Self {
        GossipParams {
            mesh_n: 6,
            mesh_n_low: 5,
            mesh_n_high: 12,
            gossip_lazy: 6,
            heartbeat: Duration::from_millis(700),
            flood_publish: true,
        }
    }
}

/// The gossipsub configuration: unsigned messages validated by the node
/// before they are forwarded, ids from the content, and the mesh `p`
/// describes.
pub fn config(p: &GossipParams, max_transmit: usize) -> Result<gossipsub::Config, String> {
    gossipsub::ConfigBuilder::default()
        .mesh_n(p.mesh_n)
        .mesh_n_low(p.mesh_n_low)
        .mesh_n_high(p.mesh_n_high)
        .mesh_outbound_min((p.mesh_n_low / 2).min(p.mesh_n / 2))
        .gossip_lazy(p.gossip_lazy)
        .heartbeat_interval(p.heartbeat)
        .flood_publish(p.flood_publish)
        // Unsigned, like Ethereum's consensus gossip (StrictNoSign): a
        // block carries its proof of work and a payment its signatures,
        // so an author's signature adds bytes and a verification per
        // copy received and proves nothing the content does not.
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|m: &gossipsub::Message| {
            use sha2::Digest;
            gossipsub::MessageId::from(sha2::Sha256::digest(&m.data)[..20].to_vec())
        })
        .max_transmit_size(max_transmit)
        .max_publish_messages(64)
        .duplicate_cache_time(Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())
}

/// Score below which a peer is sent no gossip (IHAVE/IWANT).
pub const GOSSIP_THRESHOLD: f64 = -400.0;
/// Score below which a peer gets none of this node's own messages.
pub const PUBLISH_THRESHOLD: f64 = -800.0;
/// Score below which everything a peer sends is dropped unread.
pub const GRAYLIST_THRESHOLD: f64 = -1600.0;

/// Scoring for one topic. `invalid_weight` is what one message the node
/// rejected costs (squared: two cost four times one).
fn topic_score(invalid_weight: f64) -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        // P1: time in the mesh, up to +10 after 100 s.
        time_in_mesh_weight: 0.1,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        // P2: being first to deliver a message, up to +20, forgotten
        // in about a minute.
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.95,
        first_message_deliveries_cap: 20.0,
        // P3 and P3b: off. Blocks and payments come when they come; a
        // quiet mesh peer is not a faulty one.
        mesh_message_deliveries_weight: 0.0,
        mesh_message_deliveries_decay: 0.5,
        mesh_message_deliveries_cap: 100.0,
        mesh_message_deliveries_threshold: 20.0,
        mesh_message_deliveries_window: Duration::from_millis(10),
        mesh_message_deliveries_activation: Duration::from_secs(5),
        mesh_failure_penalty_weight: 0.0,
        mesh_failure_penalty_decay: 0.5,
        // P4: messages the node rejected, forgiven slowly (1% a second).
        invalid_message_deliveries_weight: invalid_weight,
        invalid_message_deliveries_decay: 0.99,
    }
}

/// Peer scoring: what earns a peer standing and what loses it. An invalid
/// block alone puts a peer past the gossip threshold, two past the
/// graylist; invalid payments cost less (they can be honest races).
/// Peers on loopback share an address without penalty (devnets, tests).
pub fn scoring(blocks: &IdentTopic, txs: &IdentTopic) -> (PeerScoreParams, PeerScoreThresholds) {
    let mut params = PeerScoreParams {
        topic_score_cap: 50.0,
        // P5: the node sets no application scores.
        app_specific_weight: 0.0,
        // P6: more than 8 peers from one IP address cost each of them.
        ip_colocation_factor_weight: -50.0,
        ip_colocation_factor_threshold: 8.0,
        ip_colocation_factor_whitelist: [
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ]
        .into_iter()
        .collect(),
        // P7: protocol misbehaviour (broken IWANT promises, GRAFT floods).
        behaviour_penalty_weight: -10.0,
        behaviour_penalty_threshold: 6.0,
        behaviour_penalty_decay: 0.99,
        decay_interval: Duration::from_secs(1),
        decay_to_zero: 0.01,
        retain_score: Duration::from_secs(3600),
        ..PeerScoreParams::default()
    };
    params.topics.insert(blocks.hash(), topic_score(-1000.0));
    params.topics.insert(txs.hash(), topic_score(-50.0));
    let thresholds = PeerScoreThresholds {
        gossip_threshold: GOSSIP_THRESHOLD,
        publish_threshold: PUBLISH_THRESHOLD,
        graylist_threshold: GRAYLIST_THRESHOLD,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 5.0,
    };
    (params, thresholds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parameters_are_accepted_by_gossipsub() {
        let blocks = IdentTopic::new("b");
        let txs = IdentTopic::new("t");
        let (params, thresholds) = scoring(&blocks, &txs);
        params.validate().expect("valid score parameters");
        thresholds.validate().expect("valid thresholds");
        config(&GossipParams::default(), 1 << 20).expect("valid config");
        // One invalid block, even from a peer at the positive cap: below
        // the gossip threshold but not graylisted; two (the count is
        // squared): graylisted. One invalid payment costs far less.
        let block = params.topics[&blocks.hash()].invalid_message_deliveries_weight;
        let cap = params.topic_score_cap;
        assert!(block + cap < GOSSIP_THRESHOLD, "{block}");
        assert!(block > GRAYLIST_THRESHOLD, "{block}");
        assert!(block * 4.0 + cap < GRAYLIST_THRESHOLD, "{block}");
        let tx = params.topics[&txs.hash()].invalid_message_deliveries_weight;
        assert!(tx < 0.0 && tx + cap > GOSSIP_THRESHOLD, "{tx}");
    }
}
