//! What a request must pass before its handler runs: a `Host` header that
//! names this server (a web page the operator opens cannot reach the API
//! through a name it controls, DNS rebinding), and, for an event stream, a
//! free stream slot (streams stay open, so they have their own small cap,
//! a cap per client address and a lifetime).

use crate::error::json_error;
use crate::server::App;
use crate::NetView;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use chain_node::Network;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The address a connection came from, put on each of its requests.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerIp(pub IpAddr);

/// Whether a `Host` header's value names this server: an IP address (no
/// page can rebind one), `localhost`, or one of `names`, with any port.
pub(crate) fn host_allowed(host: &str, names: &[String]) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(name, _)| name)
    };
    name.parse::<IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Refuses, with 403, a request whose `Host` is not this server's. A
/// request without one (HTTP/1.0, some tools) passes: every browser sends it.
pub(crate) async fn check_host<N: Network, V: NetView>(
    State(app): State<Arc<App<N, V>>>,
    req: Request,
    next: Next,
) -> Response {
    let refused = match req.headers().get(header::HOST) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(h) if host_allowed(h, &app.host_names) => None,
            Ok(h) => Some(h.chars().take(100).collect::<String>()),
            Err(_) => Some("(not text)".to_string()),
        },
    };
    match refused {
        None => next.run(req).await,
        Some(h) => json_error(
            StatusCode::FORBIDDEN,
            &format!(
                "the Host header '{h}' does not name this node; use its IP address or localhost, or start it with --http-host NAME"
            ),
        ),
    }
}

/// Slots for event streams: at most `total` open, `per_ip` from one
/// address.
#[derive(Debug)]
pub(crate) struct StreamSlots {
    total: usize,
    per_ip: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open stream's slot, given back when dropped.
#[derive(Debug)]
pub(crate) struct StreamSlot {
    slots: Arc<StreamSlots>,
    ip: IpAddr,
}

impl StreamSlots {
    pub(crate) fn new(total: usize, per_ip: usize) -> Arc<StreamSlots> {
        Arc::new(StreamSlots {
            total,
            per_ip,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a stream from `ip`, or why there is none.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr) -> Result<StreamSlot, String> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let all: usize = open.values().sum();
        if all >= self.total {
            return Err(format!(
                "{all} event streams are open, the most this node serves; try again later"
            ));
        }
        let mine = open.entry(ip).or_insert(0);
        if *mine >= self.per_ip {
            return Err(format!(
                "{mine} event streams are open from {ip}, the most for one address; close one first"
            ));
        }
        *mine += 1;
        Ok(StreamSlot {
            slots: self.clone(),
            ip,
        })
    }

    /// Streams open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_ip_addresses_localhost_or_named() {
        let names = vec!["node.example".to_string()];
        for ok in [
            "127.0.0.1:4000",
            "127.0.0.1",
            "192.0.2.7:80",
            "[::1]:4000",
            "localhost:4000",
            "LOCALHOST",
            "node.example:4000",
            "Node.Example",
        ] {
            assert!(host_allowed(ok, &names), "{ok}");
        }
        for bad in [
            "attacker.example:4000",
            "localhost.attacker.example",
            "127.0.0.1.attacker.example",
            "node.example.attacker:4000",
            "",
        ] {
            assert!(!host_allowed(bad, &names), "{bad}");
        }
    }

    #[test]
    fn streams_are_capped_in_all_and_per_address() {
        let slots = StreamSlots::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = slots.take(a).unwrap();
        let _a2 = slots.take(a).unwrap();
        assert!(slots.take(a).unwrap_err().contains("for one address"));
        let _b1 = slots.take(b).unwrap();
        assert!(slots
            .take(b)
            .unwrap_err()
            .contains("the most this node serves"));
        drop(a1);
        assert_eq!(slots.open(), 2);
        assert!(slots.take(b).is_ok());
    }
}
