//! The pass-through behaviour, around a behaviour that records what it is
//! shown and gives the commands it is told to.

use super::*;
use libp2p::core::transport::ListenerId;
use libp2p::swarm::{dummy, NewListenAddr};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::task::Waker;

/// Records the listen addresses it is shown; gives its queued commands.
#[derive(Default)]
struct Recorder {
    shown: Vec<Multiaddr>,
    commands: VecDeque<ToSwarm<u32, Infallible>>,
}

impl NetworkBehaviour for Recorder {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = u32;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::NewListenAddr(l) = event {
            self.shown.push(l.addr.clone());
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        e: THandlerOutEvent<Self>,
    ) {
        match e {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<u32, Infallible>> {
        match self.commands.pop_front() {
            Some(c) => Poll::Ready(c),
            None => Poll::Pending,
        }
    }
}

/// Shows only listen addresses on an even port, passes only odd events,
/// and keeps the addresses of the connections it is told of.
#[derive(Default)]
struct EvenPortsOddEvents {
    established: Vec<(ConnectionId, Multiaddr)>,
}

fn even_port(addr: &Multiaddr) -> bool {
    addr.iter()
        .any(|p| matches!(p, libp2p::multiaddr::Protocol::Tcp(n) if n % 2 == 0))
}

impl Filter<Recorder> for EvenPortsOddEvents {
    fn established(&mut self, id: ConnectionId, addr: &Multiaddr) {
        self.established.push((id, addr.clone()));
    }

    fn shows(&mut self, event: &FromSwarm) -> bool {
        match event {
            FromSwarm::NewListenAddr(l) => even_port(l.addr),
            _ => true,
        }
    }

    fn passes(&self, command: &ToSwarm<u32, Infallible>) -> bool {
        match command {
            ToSwarm::GenerateEvent(n) => n % 2 == 1,
            _ => true,
        }
    }
}

fn addr(port: u16) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{port}")
        .parse()
        .expect("an address")
}

#[test]
fn the_behaviour_sees_only_what_the_filter_shows() {
    let mut f = Filtered::<Recorder, EvenPortsOddEvents>::new(Recorder::default());
    for port in [4000, 4001, 4002] {
        let a = addr(port);
        f.on_swarm_event(FromSwarm::NewListenAddr(NewListenAddr {
            listener_id: ListenerId::next(),
            addr: &a,
        }));
    }
    assert_eq!(f.inner.shown, vec![addr(4000), addr(4002)]);
}

#[test]
fn commands_the_filter_holds_back_never_reach_the_swarm_and_the_rest_keep_their_order() {
    let mut f = Filtered::<Recorder, EvenPortsOddEvents>::new(Recorder::default());
    f.inner.commands.extend(
        [2, 1, 4, 6, 3, 8]
            .into_iter()
            .map(ToSwarm::GenerateEvent)
            .chain([ToSwarm::ExternalAddrConfirmed(addr(9))]),
    );
    let mut cx = Context::from_waker(Waker::noop());
    let mut given = Vec::new();
    while let Poll::Ready(c) = f.poll(&mut cx) {
        given.push(match c {
            ToSwarm::GenerateEvent(n) => n.to_string(),
            ToSwarm::ExternalAddrConfirmed(a) => a.to_string(),
            _ => "other".to_string(),
        });
    }
    assert_eq!(given, ["1", "3", "/ip4/127.0.0.1/tcp/9"]);
    assert!(
        f.inner.commands.is_empty(),
        "held-back commands are dropped"
    );
}

#[test]
fn the_filter_is_told_the_local_address_of_an_inbound_connection_and_the_dialled_one_of_an_outbound(
) {
    let mut f = Filtered::<Recorder, EvenPortsOddEvents>::new(Recorder::default());
    let peer = PeerId::random();
    let (inbound, outbound) = (
        ConnectionId::new_unchecked(1),
        ConnectionId::new_unchecked(2),
    );
    assert!(f
        .handle_established_inbound_connection(inbound, peer, &addr(5000), &addr(6000))
        .is_ok());
    assert!(f
        .handle_established_outbound_connection(
            outbound,
            peer,
            &addr(7000),
            Endpoint::Dialer,
            PortUse::Reuse
        )
        .is_ok());
    assert_eq!(
        f.filter.established,
        vec![(inbound, addr(5000)), (outbound, addr(7000))]
    );
}
