//! Percentiles and the few Prometheus counters the simulation reads.

use std::time::Duration;

/// The `q`-quantile (0 to 1) of `sorted` by the nearest-rank method:
/// the smallest value with at least `q` of the values at or below it.
pub fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// The sum of every sample of the counter `name` whose labels contain all
/// of `labels` (each `key="value"`), in Prometheus text format.
pub fn counter_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, r)) => (m, r),
                None => (series, ""),
            };
            (metric == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// What the simulation reads of one host's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Traffic {
    /// Bytes received, all protocols.
    pub bytes_in: f64,
    /// Bytes sent.
    pub bytes_out: f64,
    /// Gossip messages received, duplicates included.
    pub gossip_received: f64,
    /// Gossip messages received for the first time.
    pub gossip_first: f64,
    /// Connections established.
    pub connections: f64,
}

impl Traffic {
    /// Reads the counters from a host's metrics.
    pub fn parse(text: &str) -> Traffic {
        Traffic {
            bytes_in: counter_sum(
                text,
                "libp2p_bandwidth_bytes_total",
                &["direction=\"Inbound\""],
            ),
            bytes_out: counter_sum(
                text,
                "libp2p_bandwidth_bytes_total",
                &["direction=\"Outbound\""],
            ),
            gossip_received: counter_sum(
                text,
                "gossipsub_topic_msg_recv_counts_unfiltered_total",
                &[],
            ),
            gossip_first: counter_sum(text, "gossipsub_topic_msg_recv_counts_total", &[]),
            connections: counter_sum(text, "libp2p_swarm_connections_established_total", &[]),
        }
    }

    /// Both readings' counts added.
    pub fn plus(&self, other: &Traffic) -> Traffic {
        Traffic {
            bytes_in: self.bytes_in + other.bytes_in,
            bytes_out: self.bytes_out + other.bytes_out,
            gossip_received: self.gossip_received + other.gossip_received,
            gossip_first: self.gossip_first + other.gossip_first,
            connections: self.connections + other.connections,
        }
    }

    /// What was counted between `earlier` and this reading.
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            bytes_in: self.bytes_in - earlier.bytes_in,
            bytes_out: self.bytes_out - earlier.bytes_out,
            gossip_received: self.gossip_received - earlier.gossip_received,
            gossip_first: self.gossip_first - earlier.gossip_first,
            connections: self.connections - earlier.connections,
        }
    }

    /// Copies received beyond the first of each message.
    pub fn duplicates(&self) -> f64 {
        (self.gossip_received - self.gossip_first).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(quantile(&v, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(quantile(&v, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(quantile(&v, 0.0), Some(Duration::from_millis(1)));
        let three: Vec<Duration> = (1..=3).map(Duration::from_millis).collect();
        assert_eq!(quantile(&three, 0.5), Some(Duration::from_millis(2)));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn counters_are_summed_by_name_and_label() {
        let text = "# HELP libp2p_bandwidth_bytes Bandwidth\n\
            # TYPE libp2p_bandwidth_bytes counter\n\
            libp2p_bandwidth_bytes_total{protocols=\"/memory\",direction=\"Inbound\"} 100\n\
            libp2p_bandwidth_bytes_total{protocols=\"/ip4/tcp\",direction=\"Inbound\"} 20\n\
            libp2p_bandwidth_bytes_total{protocols=\"/memory\",direction=\"Outbound\"} 7\n\
            gossipsub_topic_msg_recv_counts_unfiltered_total{hash=\"a\"} 5\n\
            gossipsub_topic_msg_recv_counts_unfiltered_total{hash=\"b\"} 4\n\
            gossipsub_topic_msg_recv_counts_total{hash=\"a\"} 2\n\
            gossipsub_topic_msg_recv_counts_total{hash=\"b\"} 1\n";
        let t = Traffic::parse(text);
        assert_eq!(t.bytes_in, 120.0);
        assert_eq!(t.bytes_out, 7.0);
        assert_eq!(t.duplicates(), 6.0);
        let later = Traffic {
            bytes_in: 150.0,
            ..t
        };
        assert_eq!(later.since(&t).bytes_in, 30.0);
    }
}
