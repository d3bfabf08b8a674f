//! `/metrics`: the network's metrics (libp2p's), the chain's and the
//! server's own, in one OpenMetrics text page.

use chain_node::{ChainMetrics, ChainView};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: String,
}

/// Buckets of the request latency histogram, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 10.0];

/// The served registry and the gauges read at each scrape.
pub(crate) struct ApiMetrics {
    registry: Registry,
    http: Family<HttpLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    peers: Family<DirectionLabels, Gauge>,
    tip_height: Gauge,
    tip_age: Gauge,
    mempool_txs: Gauge,
    mempool_bytes: Gauge,
}

impl ApiMetrics {
    pub fn new(chain: &ChainMetrics) -> Self {
        let mut registry = Registry::default();
        chain.register(&mut registry);
        let m = ApiMetrics {
            http: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(LATENCY_BUCKETS.iter().copied())
            }),
            peers: Family::default(),
            tip_height: Gauge::default(),
            tip_age: Gauge::default(),
            mempool_txs: Gauge::default(),
            mempool_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        {
            let c = registry.sub_registry_with_prefix("chain");
            c.register("tip_height", "Height of the best tip", m.tip_height.clone());
            c.register(
                "tip_age_seconds",
                "Seconds since the best tip's timestamp",
                m.tip_age.clone(),
            );
            c.register(
                "mempool_transactions",
                "Transactions in the mempool",
                m.mempool_txs.clone(),
            );
            c.register(
                "mempool_bytes",
                "Encoded bytes of the mempool's transactions",
                m.mempool_bytes.clone(),
            );
        }
        let http = registry.sub_registry_with_prefix("http");
        http.register(
            "requests",
            "HTTP requests answered, by route and status",
            m.http.clone(),
        );
        http.register(
            "request_duration_seconds",
            "Time to answer an HTTP request, by route (an event stream: until its headers)",
            m.latency.clone(),
        );
        registry.sub_registry_with_prefix("node").register(
            "peers",
            "Connected peers, by direction (inbound: the peer dialled)",
            m.peers.clone(),
        );
        ApiMetrics { registry, ..m }
    }

    pub fn on_request(&self, route: String, status: u16, seconds: f64) {
        self.latency
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(seconds);
        self.http.get_or_create(&HttpLabels { route, status }).inc();
    }

    /// Sets the peer gauges from the network's summary.
    pub fn set_peers<'a>(&self, directions: impl Iterator<Item = &'a str>) {
        let (mut inbound, mut outbound) = (0i64, 0i64);
        for d in directions {
            if d == "inbound" {
                inbound += 1;
            } else {
                outbound += 1;
            }
        }
        for (direction, n) in [("inbound", inbound), ("outbound", outbound)] {
            self.peers
                .get_or_create(&DirectionLabels {
                    direction: direction.into(),
                })
                .set(n);
        }
    }

    /// The page: `net` (already encoded, no `# EOF`) then the rest.
    pub fn render(&self, view: Option<ChainView>, net: Option<String>) -> String {
        if let Some(v) = view {
            self.tip_height.set(v.tip.height.into());
            let age = chain_store::unix_now().saturating_sub(v.tip.header.time);
            self.tip_age.set(i64::try_from(age).unwrap_or(i64::MAX));
            self.mempool_txs
                .set(i64::try_from(v.mempool_len).unwrap_or(i64::MAX));
            self.mempool_bytes
                .set(i64::try_from(v.mempool_bytes).unwrap_or(i64::MAX));
        }
        let mut text = net.unwrap_or_default();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!("cannot encode the metrics: {e}");
        }
        text
    }
}

/// The OpenMetrics page in Prometheus' text format (0.0.4), for a client
/// that does not ask for OpenMetrics (Prometheus asks; `promtool check
/// metrics` and most other tools read this): a counter's family is named
/// with its `_total` suffix, an info metric becomes a gauge named with
/// `_info`, and the `# UNIT` and `# EOF` lines go.
pub(crate) fn to_prometheus_text(open: &str) -> String {
    let mut types = std::collections::HashMap::new();
    for line in open.lines() {
        if let Some((name, kind)) = line.strip_prefix("# TYPE ").and_then(|r| r.split_once(' ')) {
            types.insert(name, kind);
        }
    }
    let renamed = |name: &str| match types.get(name) {
        Some(&"counter") => format!("{name}_total"),
        Some(&"info") => format!("{name}_info"),
        _ => name.to_string(),
    };
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some((name, help)) = line.strip_prefix("# HELP ").and_then(|r| r.split_once(' ')) {
            out.push_str(&format!("# HELP {} {help}\n", renamed(name)));
        } else if let Some((name, kind)) =
            line.strip_prefix("# TYPE ").and_then(|r| r.split_once(' '))
        {
            let kind = match kind {
                "info" => "gauge",
                "unknown" | "gaugehistogram" | "stateset" => "untyped",
                k => k,
            };
            out.push_str(&format!("# TYPE {} {kind}\n", renamed(name)));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_infos_are_renamed_for_the_text_format() {
        let open = "# HELP a Things.\n# TYPE a counter\na_total 3\n# HELP v Version.\n# TYPE v info\nv_info{x=\"1\"} 1\n# HELP t Time.\n# TYPE t histogram\n# UNIT t seconds\nt_sum 1.0\nt_count 1\nt_bucket{le=\"+Inf\"} 1\n# EOF\n";
        let text = to_prometheus_text(open);
        assert_eq!(
            text,
            "# HELP a_total Things.\n# TYPE a_total counter\na_total 3\n# HELP v_info Version.\n# TYPE v_info gauge\nv_info{x=\"1\"} 1\n# HELP t Time.\n# TYPE t histogram\nt_sum 1.0\nt_count 1\nt_bucket{le=\"+Inf\"} 1\n"
        );
    }
}
