//! Addresses: a peer's `/p2p/<id>` suffix, whether an address can be
//! dialled, and the network group an address belongs to.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use std::net::IpAddr;

/// Splits `/…/p2p/<id>` into the peer id and the address before it. A
/// repeated trailing `/p2p/<id>` of the same peer is dropped too; one that
/// names two different peers is not a peer's address.
pub fn split_peer(addr: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut a = addr.clone();
    let Some(Protocol::P2p(peer)) = a.pop() else {
        return None;
    };
    while let Some(Protocol::P2p(other)) = a.iter().last() {
        if other != peer {
            return None;
        }
        a.pop();
    }
    Some((peer, a))
}

/// `addr` with its trailing `/p2p/…` parts, if any, replaced by exactly one
/// `/p2p/<peer>`. Addresses learnt from identify, Kademlia or mDNS may
/// already end with the peer id; appending blindly doubled it.
pub fn peer_address(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    transport_address(addr).with(Protocol::P2p(peer))
}

/// `addr` without its trailing `/p2p/…` parts.
pub fn transport_address(addr: &Multiaddr) -> Multiaddr {
    let mut base = addr.clone();
    while let Some(Protocol::P2p(_)) = base.iter().last() {
        base.pop();
    }
    base
}

/// False for an address on 0.0.0.0 or `::`, which no peer can dial.
pub fn is_dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| match p {
        Protocol::Ip4(a) => a.is_unspecified(),
        Protocol::Ip6(a) => a.is_unspecified(),
        _ => false,
    })
}

/// Whether this node could dial `addr` as a peer's listening address:
/// TCP or QUIC (v1) on a real IP address, or libp2p's memory transport,
/// and no relay hop. Addresses a peer merely claims are kept only when
/// this holds.
pub fn is_peer_listen_address(addr: &Multiaddr) -> bool {
    let mut ip = false;
    let mut port = false;
    let mut udp = false;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) if !a.is_unspecified() && !a.is_broadcast() && !a.is_multicast() => {
                ip = true
            }
            Protocol::Ip6(a) if !a.is_unspecified() && !a.is_multicast() => ip = true,
            Protocol::Tcp(n) if n != 0 && !udp => port = true,
            Protocol::Udp(n) if n != 0 => udp = true,
            Protocol::QuicV1 if udp => port = true,
            Protocol::Memory(n) if n != 0 => return true,
            Protocol::P2p(_) => {}
            _ => return false,
        }
    }
    ip && port
}

/// Whether `claimed` is on the host `observed` is: the same IP address,
/// or both on the in-process memory transport.
pub fn same_host(claimed: &Multiaddr, observed: &Multiaddr) -> bool {
    let memory = |a: &Multiaddr| a.iter().any(|p| matches!(p, Protocol::Memory(_)));
    match (ip_of(claimed), ip_of(observed)) {
        (Some(a), Some(b)) => a == b,
        (None, None) => memory(claimed) && memory(observed),
        _ => false,
    }
}

/// Whether `addr` is a QUIC address.
pub fn is_quic(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::QuicV1))
}

/// Whether a dial to a peer at `addrs` goes from the listening port: when
/// one of them is public, so that a NAT maps the dial to the port peers
/// observe (the one hole punching uses); not to private or local ones,
/// where two nodes dialling each other at once would meet in one TCP
/// connection by simultaneous open (see `host::dial_opts`).
pub fn dial_from_listening_port(addrs: &[Multiaddr]) -> bool {
    addrs
        .iter()
        .any(|a| ip_of(a).is_some_and(|ip| !is_local_ip(ip)))
}

/// The first IP address in `addr`.
pub fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(a) => Some(IpAddr::V4(a)),
        Protocol::Ip6(a) => Some(IpAddr::V6(a)),
        _ => None,
    })
}

/// A network group: addresses an attacker of one network can hold many of.
/// Public IPv4 addresses group by /16 and public IPv6 by /32, as Bitcoin
/// Core's `GetGroup`. An address on this machine or a private network
/// (loopback, RFC 1918, link-local, unique local) is its own group, port
/// included, so that many nodes on one machine or LAN still count as
/// distinct; an attacker there is already inside.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NetGroup {
    /// A public IPv4 /16.
    V4([u8; 2]),
    /// A public IPv6 /32.
    V6([u8; 4]),
    /// A local or private address, with its port.
    Local(IpAddr, u16),
    /// An in-process memory address.
    Memory(u64),
    /// Anything else (a DNS name, a relay), grouped by its text.
    Other(String),
    /// Peers found by mDNS on the LAN, whatever address they claim.
    Lan,
    /// Peers from this node's own store (`peers.json`, anchors).
    Stored,
}

/// Whether `ip` is on this machine or a private network.
pub fn is_local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            a.is_loopback() || a.is_private() || a.is_link_local() || a.is_unspecified()
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_loopback()
                || a.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// The network group of `addr` (see [`NetGroup`]).
pub fn netgroup(addr: &Multiaddr) -> NetGroup {
    let port = addr
        .iter()
        .find_map(|p| match p {
            Protocol::Tcp(n) | Protocol::Udp(n) => Some(n),
            _ => None,
        })
        .unwrap_or(0);
    for p in addr.iter() {
        match p {
            Protocol::Memory(n) => return NetGroup::Memory(n),
            Protocol::Ip4(a) if is_local_ip(IpAddr::V4(a)) => {
                return NetGroup::Local(IpAddr::V4(a), port)
            }
            Protocol::Ip6(a) if is_local_ip(IpAddr::V6(a)) => {
                return NetGroup::Local(IpAddr::V6(a), port)
            }
            Protocol::Ip4(a) => {
                let o = a.octets();
                return NetGroup::V4([o[0], o[1]]);
            }
            Protocol::Ip6(a) => {
                let o = a.octets();
                return NetGroup::V6([o[0], o[1], o[2], o[3]]);
            }
            _ => {}
        }
    }
    NetGroup::Other(transport_address(addr).to_string())
}

/// What an inbound connection's remote address counts against for
/// [`crate::MAX_INBOUND_PER_IP`]: its IPv4 address, or its IPv6 /64 (one
/// subscriber's usual allocation). Loopback does not count, so local
/// multi-node set-ups and wallets keep working.
pub fn inbound_ip_key(addr: &Multiaddr) -> Option<IpAddr> {
    match ip_of(addr)? {
        ip if ip.is_loopback() => None,
        IpAddr::V4(a) => Some(IpAddr::V4(a)),
        IpAddr::V6(a) => {
            let s = a.segments();
            Some(IpAddr::V6(std::net::Ipv6Addr::new(
                s[0], s[1], s[2], s[3], 0, 0, 0, 0,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ma(s: &str) -> Multiaddr {
        s.parse().expect("a multiaddress")
    }

    #[test]
    fn a_peer_address_ends_with_one_peer_id() {
        let peer = PeerId::random();
        let base = ma("/ip4/127.0.0.1/tcp/48285");
        let once = peer_address(&base, peer);
        assert_eq!(once.to_string(), format!("{base}/p2p/{peer}"));
        // Already ending with the id, once or twice: still exactly once.
        assert_eq!(peer_address(&once, peer), once);
        let twice = once.clone().with(Protocol::P2p(peer));
        assert_eq!(peer_address(&twice, peer), once);
        assert_eq!(transport_address(&twice), base);
        assert_eq!(split_peer(&twice), Some((peer, base.clone())));
        // Two different ids do not make one peer's address.
        let other = once.with(Protocol::P2p(PeerId::random()));
        assert_eq!(split_peer(&other), None);
        assert_eq!(split_peer(&base), None);
    }

    #[test]
    fn public_addresses_group_by_prefix_and_local_ones_by_address_and_port() {
        assert_eq!(
            netgroup(&ma("/ip4/203.0.113.7/tcp/1")),
            netgroup(&ma("/ip4/203.0.200.9/tcp/2"))
        );
        assert_ne!(
            netgroup(&ma("/ip4/203.0.113.7/tcp/1")),
            netgroup(&ma("/ip4/203.1.113.7/tcp/1"))
        );
        assert_eq!(
            netgroup(&ma("/ip6/2001:db8:1:2::1/tcp/1")),
            netgroup(&ma("/ip6/2001:db8:ffff::9/tcp/1"))
        );
        // A devnet on one machine: every node its own group.
        assert_ne!(
            netgroup(&ma("/ip4/127.0.0.1/tcp/4000")),
            netgroup(&ma("/ip4/127.0.0.1/tcp/4001"))
        );
        assert_ne!(
            netgroup(&ma("/ip4/192.168.1.2/tcp/4000")),
            netgroup(&ma("/ip4/192.168.1.3/tcp/4000"))
        );
        assert_eq!(netgroup(&ma("/memory/7")), NetGroup::Memory(7));
    }

    #[test]
    fn the_inbound_cap_counts_ipv6_by_64_and_exempts_loopback() {
        let a = inbound_ip_key(&ma("/ip6/2001:db8:0:1::1/tcp/5")).expect("counted");
        let b = inbound_ip_key(&ma("/ip6/2001:db8:0:1:ffff:1:2:3/tcp/6")).expect("counted");
        let c = inbound_ip_key(&ma("/ip6/2001:db8:0:2::1/tcp/5")).expect("counted");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(inbound_ip_key(&ma("/ip4/127.0.0.1/tcp/5")), None);
        assert_eq!(inbound_ip_key(&ma("/ip6/::1/tcp/5")), None);
        assert!(inbound_ip_key(&ma("/ip4/198.51.100.1/tcp/5")).is_some());
    }

    #[test]
    fn a_claimed_address_is_on_the_observed_host_only_with_the_same_ip() {
        let seen = ma("/ip4/198.51.100.7/tcp/50123");
        assert!(same_host(&ma("/ip4/198.51.100.7/tcp/4000"), &seen));
        assert!(!same_host(&ma("/ip4/198.51.100.8/tcp/4000"), &seen));
        assert!(!same_host(&ma("/memory/5"), &seen));
        assert!(same_host(&ma("/memory/5"), &ma("/memory/9")));
    }

    #[test]
    fn dials_to_public_addresses_reuse_the_listening_port_and_lan_dials_do_not() {
        let public = ma("/ip4/198.51.100.1/tcp/4100");
        let lan = ma("/ip4/192.168.1.7/tcp/4100");
        assert!(dial_from_listening_port(std::slice::from_ref(&public)));
        assert!(dial_from_listening_port(&[ma(
            "/ip6/2001:db8::1/udp/4100/quic-v1"
        )]));
        assert!(dial_from_listening_port(&[lan.clone(), public]));
        for local in [
            lan,
            ma("/ip4/10.0.1.2/tcp/4100"),
            ma("/ip4/127.0.0.1/tcp/4100"),
            ma("/ip6/fe80::1/tcp/4100"),
            ma("/memory/7"),
        ] {
            assert!(
                !dial_from_listening_port(std::slice::from_ref(&local)),
                "{local}"
            );
        }
        assert!(!dial_from_listening_port(&[]));
    }

    #[test]
    fn only_dialable_listen_addresses_are_taken_from_peers() {
        assert!(is_peer_listen_address(&ma("/ip4/198.51.100.1/tcp/4000")));
        assert!(is_peer_listen_address(&ma("/memory/12")));
        assert!(!is_peer_listen_address(&ma("/ip4/0.0.0.0/tcp/4000")));
        assert!(!is_peer_listen_address(&ma("/ip4/198.51.100.1/tcp/0")));
        // QUIC v1 is dialled as TCP is; bare UDP, or QUIC without a port, is not.
        assert!(is_peer_listen_address(&ma(
            "/ip4/198.51.100.1/udp/4000/quic-v1"
        )));
        assert!(is_quic(&ma("/ip4/198.51.100.1/udp/4000/quic-v1")));
        assert!(!is_peer_listen_address(&ma("/ip4/198.51.100.1/udp/4000")));
        assert!(!is_peer_listen_address(&ma(
            "/ip4/198.51.100.1/udp/0/quic-v1"
        )));
        assert!(!is_peer_listen_address(&ma(
            "/ip4/198.51.100.1/udp/4000/quic"
        )));
        // No relay hop.
        assert!(!is_peer_listen_address(&ma(
            "/ip4/198.51.100.1/tcp/4000/p2p/12D3KooWA1KYW6sJ5Ynk1fTaghybsPa7t53WtRJEEqvRjdFQjWZE/p2p-circuit"
        )));
        assert!(!is_peer_listen_address(&ma("/dns4/example.org/tcp/4000")));
    }
}
