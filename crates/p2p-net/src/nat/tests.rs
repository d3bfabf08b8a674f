use super::*;
use crate::config::{DIRECT_SETTLES_IN, PUNCH_TRIES, RESERVE_EVERY};

fn ma(s: &str) -> Multiaddr {
    s.parse().expect("a multiaddress")
}

fn conn(n: usize) -> ConnectionId {
    ConnectionId::new_unchecked(n)
}

#[test]
fn reachability_is_unknown_until_a_confirmation_or_enough_failures() {
    let mut nat = Nat::default();
    assert_eq!(nat.reachability(), Reachability::Unknown);
    for _ in 0..PRIVATE_AFTER_FAILURES {
        assert_ne!(nat.reachability(), Reachability::Private);
        nat.test_failed();
    }
    assert_eq!(nat.reachability(), Reachability::Private);
    // A relayed address says nothing of this node's own reachability.
    let relay = PeerId::random();
    nat.address_confirmed(circuit_address(&ma("/ip4/198.51.100.1/tcp/4000"), relay));
    assert_eq!(nat.reachability(), Reachability::Private);
    let own = ma("/ip4/203.0.113.5/tcp/3000");
    nat.address_confirmed(own.clone());
    assert_eq!(nat.reachability(), Reachability::Public);
    assert_eq!(nat.confirmed().collect::<Vec<_>>(), vec![&own]);
    nat.address_expired(&own);
    assert_eq!(nat.reachability(), Reachability::Unknown);
}

#[test]
fn a_private_node_reserves_once_on_a_public_relay_it_dialled() {
    let mut nat = Nat::default();
    let lan = PeerId::random();
    let inbound = PeerId::random();
    let public = PeerId::random();
    nat.relay_offered(lan, &ma("/ip4/192.168.1.7/tcp/3000"), true);
    nat.relay_offered(inbound, &ma("/ip4/198.51.100.9/tcp/3000"), false);
    nat.relay_offered(public, &ma("/ip4/198.51.100.1/tcp/4000"), true);
    let t0 = Instant::now();
    // Not while reachability is unknown.
    assert_eq!(nat.reservation_wanted(t0), None);
    for _ in 0..PRIVATE_AFTER_FAILURES {
        nat.test_failed();
    }
    let r = nat.reservation_wanted(t0).expect("a reservation");
    assert_eq!(r.relay, public);
    assert_eq!(
        r.address,
        ma(&format!(
            "/ip4/198.51.100.1/tcp/4000/p2p/{public}/p2p-circuit"
        ))
    );
    assert_eq!(relay_of(&r.address), Some(public));
    // Asked for once; accepted once.
    assert_eq!(nat.reservation_wanted(t0 + RESERVE_EVERY), None);
    assert_eq!(nat.reservation_accepted(PeerId::random()), None);
    assert_eq!(nat.reservation_accepted(public), Some(r.address.clone()));
    assert_eq!(
        nat.reservation_accepted(public),
        None,
        "a renewal prints nothing"
    );
    // Lost (refused, or the relay went): asked for again, not at once.
    assert!(nat.reservation_lost(&r.address));
    assert_eq!(nat.reservation_wanted(t0 + RESERVE_EVERY / 2), None);
    assert_eq!(
        nat.reservation_wanted(t0 + RESERVE_EVERY).map(|r| r.relay),
        Some(public)
    );
    assert!(nat.reservation_lost(&r.address));
    nat.on_closed(public, conn(1), 0);
    assert_eq!(
        nat.reservation_wanted(t0 + RESERVE_EVERY * 3),
        None,
        "no public relay is left"
    );
}

#[test]
fn circuits_go_once_a_direct_connection_settles_or_a_hole_punch_succeeds() {
    let mut nat = Nat::default();
    let (peer, relay) = (PeerId::random(), PeerId::random());
    let t0 = Instant::now();
    let circuit_addr = ma(&format!(
        "/ip4/198.51.100.1/tcp/4000/p2p/{relay}/p2p-circuit"
    ));
    let direct = ma("/ip4/203.0.113.9/tcp/3000");
    assert_eq!(
        nat.on_established(peer, conn(1), Some(Some(relay)), &circuit_addr, t0),
        OnConnection::Keep
    );
    assert!(nat.is_relayed_connection(&conn(1)));
    assert!(!nat.has_direct(&peer), "sync waits for a direct connection");
    // A passing direct connection (AutoNAT's dial-back) closes nothing.
    assert_eq!(
        nat.on_established(peer, conn(2), None, &direct, t0),
        OnConnection::Keep
    );
    assert!(nat.has_direct(&peer));
    assert!(nat.superseded(t0 + DIRECT_SETTLES_IN / 2).is_empty());
    nat.on_closed(peer, conn(2), 1);
    assert!(!nat.has_direct(&peer));
    assert!(nat.superseded(t0 + DIRECT_SETTLES_IN * 2).is_empty());
    // One that lasts does.
    let t1 = t0 + DIRECT_SETTLES_IN * 3;
    nat.on_established(peer, conn(3), None, &direct, t1);
    assert!(nat.superseded(t1).is_empty());
    let gone = nat.superseded(t1 + DIRECT_SETTLES_IN);
    assert_eq!(
        gone,
        vec![Superseded {
            peer,
            circuit: conn(1),
            direct: direct.clone()
        }]
    );
    // A circuit opened beside a settled direct connection is closed at once.
    assert_eq!(
        nat.on_established(
            peer,
            conn(4),
            Some(Some(relay)),
            &circuit_addr,
            t1 + DIRECT_SETTLES_IN
        ),
        OnConnection::CloseThis
    );
    // A hole punch closes the circuits at once.
    let other = PeerId::random();
    nat.on_established(other, conn(5), Some(Some(relay)), &circuit_addr, t1);
    assert!(
        nat.hole_punched(&other).is_empty(),
        "no direct connection yet"
    );
    nat.on_established(other, conn(6), None, &direct, t1);
    assert_eq!(nat.hole_punched(&other).len(), 1);
    for (p, c, left) in [
        (peer, 1, 2),
        (peer, 4, 1),
        (peer, 3, 0),
        (other, 5, 1),
        (other, 6, 0),
    ] {
        nat.on_closed(p, conn(c), left);
    }
    assert!(!nat.has_direct(&peer));
    assert_eq!(nat.relayed_connections(), 0);
}

#[test]
fn one_relay_carries_a_bounded_number_of_circuits_to_this_node() {
    let mut nat = Nat::default();
    let relay = PeerId::random();
    let now = Instant::now();
    let addr = ma(&format!(
        "/ip4/198.51.100.1/tcp/4000/p2p/{relay}/p2p-circuit"
    ));
    for i in 0..MAX_CIRCUITS_PER_RELAY {
        assert_eq!(
            nat.on_established(PeerId::random(), conn(i), Some(Some(relay)), &addr, now),
            OnConnection::Keep
        );
    }
    assert_eq!(
        nat.on_established(PeerId::random(), conn(1000), Some(Some(relay)), &addr, now),
        OnConnection::CloseThis
    );
    // Another relay has its own allowance.
    assert_eq!(
        nat.on_established(
            PeerId::random(),
            conn(1001),
            Some(Some(PeerId::random())),
            &addr,
            now
        ),
        OnConnection::Keep
    );
}

#[test]
fn a_failed_punch_closes_the_circuit_for_another_try_a_bounded_number_of_times() {
    let mut nat = Nat::default();
    let (peer, relay) = (PeerId::random(), PeerId::random());
    let now = Instant::now();
    let addr = ma(&format!(
        "/ip4/198.51.100.1/tcp/4000/p2p/{relay}/p2p-circuit"
    ));
    for attempt in 1..=PUNCH_TRIES {
        let c = conn(attempt as usize);
        nat.on_established(peer, c, Some(Some(relay)), &addr, now);
        let close = nat.punch_failed(&peer);
        if attempt < PUNCH_TRIES {
            assert_eq!(close, vec![c], "attempt {attempt}: try again");
            nat.on_closed(peer, c, 0);
        } else {
            assert!(
                close.is_empty(),
                "after {PUNCH_TRIES} failures the circuit stays"
            );
        }
    }
    // A success forgets the failures.
    nat.on_established(peer, conn(100), None, &ma("/ip4/203.0.113.9/tcp/3000"), now);
    assert_eq!(nat.hole_punched(&peer).len(), 1);
    nat.on_closed(peer, conn(100), 1);
    assert_eq!(nat.punch_failed(&peer), vec![conn(PUNCH_TRIES as usize)]);
}

#[test]
fn an_external_address_must_be_one_peers_can_dial() {
    for good in [
        "/ip4/203.0.113.7/tcp/3000",
        "/ip4/203.0.113.7/udp/3000/quic-v1",
        "/ip6/2001:db8::7/tcp/3000",
    ] {
        assert_eq!(check_external_address(&ma(good)), Ok(()), "{good}");
    }
    let relay = PeerId::random();
    for bad in [
        "/ip4/0.0.0.0/tcp/3000".to_string(),
        "/ip4/203.0.113.7/tcp/0".to_string(),
        "/ip4/203.0.113.7/udp/3000".to_string(),
        "/memory/5".to_string(),
        format!("/ip4/198.51.100.1/tcp/4000/p2p/{relay}/p2p-circuit"),
    ] {
        let e = check_external_address(&ma(&bad)).expect_err(&bad);
        assert!(e.contains("not an address peers can dial"), "{e}");
    }
}
