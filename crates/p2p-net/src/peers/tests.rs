//! The connection policy, without a swarm.

use super::*;
use crate::config::{BOOTSTRAP_RELEASE_AFTER, BOOTSTRAP_RELEASE_PEERS, GRACE, SHORT_LIVED_SLOTS};

const SLOTS: usize = 8;

fn table() -> PeerTable {
    PeerTable::new(Limits {
        inbound_peer_slots: SLOTS,
        max_connections: SLOTS + 8,
    })
}

fn addr(i: u32) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{}", 10_000 + i)
        .parse()
        .expect("an address")
}

fn public(i: u32) -> Multiaddr {
    format!("/ip4/198.{}.0.1/tcp/4000", i % 250)
        .parse()
        .expect("an address")
}

struct Net {
    t: PeerTable,
    next: usize,
}

impl Net {
    fn new() -> Net {
        Net {
            t: table(),
            next: 0,
        }
    }

    fn conn(&mut self) -> ConnectionId {
        self.next += 1;
        ConnectionId::new_unchecked(self.next)
    }

    /// An inbound connection that asks something at once.
    fn inbound_peer(&mut self, at: &Multiaddr, now: Instant) -> (PeerId, Vec<Action>) {
        let p = PeerId::random();
        let c = self.conn();
        let mut a = self.t.on_established(p, c, false, at, now);
        a.extend(self.t.on_request(p, now));
        (p, a)
    }

    fn outbound(&mut self, origin: Origin, at: &Multiaddr, now: Instant) -> PeerId {
        let p = PeerId::random();
        self.t.dial_started(p, at, origin, now);
        let c = self.conn();
        self.t.on_established(p, c, true, at, now);
        p
    }
}

#[test]
fn an_inbound_connection_is_never_outbound_whatever_this_node_does_later() {
    let mut n = Net::new();
    let t0 = Instant::now();
    let p = PeerId::random();
    let c = n.conn();
    n.t.on_established(p, c, false, &addr(1), t0);
    // This node decides to dial it (Kademlia found it): it is connected
    // already, so no dial starts and its direction stays.
    assert!(n.t.knows(&p));
    let a = n.t.on_request(p, t0);
    assert_eq!(a, vec![Action::Connected(p, peer_address(&addr(1), p))]);
    let e = n.t.get(&p).expect("an entry");
    assert_eq!(e.direction, Direction::Inbound);
    assert_eq!(n.t.outbound_peers(), 0);
    // A second connection, dialled by this node, changes nothing either.
    let c2 = n.conn();
    n.t.on_established(p, c2, true, &addr(1), t0);
    assert_eq!(n.t.get(&p).expect("an entry").direction, Direction::Inbound);
    assert_eq!(n.t.outbound_peers(), 0);
    // Nor does a dial of this node's choosing that meets a peer's own
    // dial: the peer is a peer at once, and still inbound.
    let q = PeerId::random();
    let c3 = n.conn();
    n.t.on_established(q, c3, false, &addr(2), t0);
    n.t.dial_started(q, &addr(2), Origin::Book, t0);
    let c4 = n.conn();
    let a = n.t.on_established(q, c4, true, &addr(2), t0);
    assert_eq!(a, vec![Action::Connected(q, peer_address(&addr(2), q))]);
    assert_eq!(n.t.get(&q).expect("an entry").direction, Direction::Inbound);
    assert_eq!(n.t.outbound_peers(), 0);
}

#[test]
fn only_dials_of_this_nodes_choosing_are_peers_at_once() {
    let mut n = Net::new();
    let t0 = Instant::now();
    let chosen = n.outbound(Origin::Book, &addr(1), t0);
    assert!(n.t.is_peer(&chosen));
    // A Kademlia lookup's connection: outbound, not a peer until it asks.
    let lookup = PeerId::random();
    let c = n.conn();
    n.t.on_established(lookup, c, true, &addr(2), t0);
    assert!(!n.t.is_peer(&lookup));
    assert_eq!(n.t.outbound_peers(), 1);
}

#[test]
fn eight_inbound_identities_do_not_release_the_bootstrap_peer() {
    let mut n = Net::new();
    let t0 = Instant::now();
    let boot = n.outbound(Origin::Bootstrap, &addr(1), t0);
    for i in 0..(SLOTS as u32 * 3) {
        n.inbound_peer(&addr(100 + i), t0);
    }
    let later = t0 + BOOTSTRAP_RELEASE_AFTER * 2;
    let (actions, _) = n.t.tick(later);
    assert!(!actions.contains(&Action::Disconnect(boot)), "{actions:?}");
    assert!(!n.t.bootstrap_not_needed());
    // Other outbound peers let it go, but never below two outbound.
    for i in 0..BOOTSTRAP_RELEASE_PEERS as u32 {
        n.outbound(Origin::Book, &addr(200 + i), t0);
    }
    let (actions, _) = n.t.tick(later);
    assert!(actions.contains(&Action::Disconnect(boot)), "{actions:?}");
}

#[test]
fn a_full_node_evicts_an_unprotected_inbound_peer_for_a_newcomer() {
    let mut n = Net::new();
    let t0 = Instant::now();
    // Honest inbound peers that delivered blocks, with low pings.
    let mut honest = Vec::new();
    for i in 0..4 {
        let (p, _) = n.inbound_peer(&public(i), t0);
        let e = n.t.get_mut(&p).expect("an entry");
        e.last_block = Some(t0);
        e.rtt = Some(Duration::from_millis(5));
        honest.push(p);
    }
    // Attackers fill the rest, from one /16, each with a slow ping.
    let mut attackers = Vec::new();
    let t1 = t0 + Duration::from_secs(60);
    let total = SLOTS + SHORT_LIVED_SLOTS as usize;
    for i in 0..(total - 4) as u32 {
        let at: Multiaddr = format!("/ip4/203.0.{}.{}/tcp/5", i / 200, i % 200 + 1)
            .parse()
            .expect("an address");
        let (p, a) = n.inbound_peer(&at, t1 + Duration::from_millis(u64::from(i)));
        assert!(a
            .iter()
            .all(|x| !matches!(x, Action::Disconnect(_) | Action::Close(_))));
        attackers.push(p);
    }
    // A wallet comes: someone is evicted, and it is an attacker.
    let t2 = t1 + Duration::from_secs(60);
    let (wallet, actions) = n.inbound_peer(&addr(9), t2);
    let victim = actions
        .iter()
        .find_map(|a| match a {
            Action::Disconnect(p) => Some(*p),
            _ => None,
        })
        .expect("a peer evicted");
    assert!(attackers.contains(&victim), "evicted {victim}");
    assert_ne!(victim, wallet);
    assert!(!honest.contains(&victim));
}

#[test]
fn a_newcomer_is_closed_only_when_every_inbound_connection_is_protected() {
    let mut n = Net::new();
    let t0 = Instant::now();
    let total = SLOTS + SHORT_LIVED_SLOTS as usize;
    for i in 0..total as u32 {
        n.inbound_peer(&addr(i), t0);
    }
    // Within the grace period every one is protected: the newcomer goes.
    let p = PeerId::random();
    let c = n.conn();
    let a = n.t.on_established(p, c, false, &addr(999), t0 + GRACE / 2);
    assert_eq!(a, vec![Action::Close(c)]);
    n.t.on_closed(p, c, false, 0);
    // Short-lived ones stay protected for their time; peers do not.
    let later = t0 + GRACE * 2;
    let p = PeerId::random();
    let c = n.conn();
    let a = n.t.on_established(p, c, false, &addr(998), later);
    let victim = a.iter().find_map(|x| match x {
        Action::Disconnect(v) => Some(*v),
        _ => None,
    });
    let v = victim.expect("a peer evicted");
    assert!(
        n.t.is_peer(&v),
        "a peer, not a short-lived client, is evicted"
    );
}

#[test]
fn connections_that_never_asked_anything_go_first() {
    let mut n = Net::new();
    let t0 = Instant::now();
    let total = SLOTS + SHORT_LIVED_SLOTS as usize;
    let idle = PeerId::random();
    let c = n.conn();
    n.t.on_established(idle, c, false, &addr(0), t0);
    for i in 1..total as u32 {
        n.inbound_peer(&addr(i), t0);
    }
    let later = t0 + GRACE * 2;
    let p = PeerId::random();
    let c = n.conn();
    let a = n.t.on_established(p, c, false, &addr(500), later);
    assert_eq!(a, vec![Action::Disconnect(idle)]);
}

#[test]
fn the_per_ip_cap_counts_an_ipv6_64_as_one() {
    let mut n = Net::new();
    let t0 = Instant::now();
    let mut closed = 0;
    for i in 0..10u32 {
        let at: Multiaddr = format!("/ip6/2001:db8:0:7::{:x}/tcp/5", i + 1)
            .parse()
            .expect("an address");
        let p = PeerId::random();
        let c = n.conn();
        if n.t
            .on_established(p, c, false, &at, t0)
            .contains(&Action::Close(c))
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 10 - MAX_INBOUND_PER_IP);
}

#[test]
fn slow_dials_are_given_up_and_closed_connections_leave_the_table() {
    let mut n = Net::new();
    let t0 = Instant::now();
    let p = PeerId::random();
    n.t.dial_started(p, &addr(1), Origin::Book, t0);
    assert_eq!(n.t.dialing(Origin::Book), 1);
    let (actions, late) = n.t.tick(t0 + DIAL_DEADLINE);
    assert_eq!(late, vec![(p, Origin::Book)]);
    assert!(actions.contains(&Action::Disconnect(p)));
    assert_eq!(n.t.dialing(Origin::Book), 0);
    let q = n.outbound(Origin::Asked, &addr(2), t0);
    let c = ConnectionId::new_unchecked(n.next);
    assert_eq!(n.t.on_closed(q, c, true, 0), vec![Action::Disconnected(q)]);
    assert!(!n.t.knows(&q));
}
