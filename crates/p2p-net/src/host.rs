//! The event loop: it owns the swarm, turns swarm events and the
//! program's commands into calls on the peer table, the address book and
//! the behaviours, and carries out what the table decides.

use crate::addr::{netgroup, peer_address, split_peer, transport_address, NetGroup};
use crate::behaviour::{build_swarm, gossip_topics, subscribe_topics, Behaviour, BehaviourEvent};
use crate::codec;
use crate::config::{
    inbound_peer_slots, NetConfig, ADDRESS_UPDATE_EVERY, CHANNEL, DIALS_IN_FLIGHT,
    MAX_ADDRS_PER_PEER, OUTBOUND_TARGET,
};
use crate::discovery::{AddressBook, Redial};
use crate::events::EventQueue;
use crate::handle::{Command, GossipId, NetError, NetEvent, NetHandle, ReplyHandle};
use crate::nat::{is_relayed, relay_of, Nat, Reachability};
use crate::peers::{Action, Direction, Limits, Origin, PeerTable};
use crate::persist;
use crate::rate_limit::{Bucket, RATE_STATE_KEPT, RATE_STRIKES_TO_BAN, REQUESTS_PER_SEC};
use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{DialError, SwarmEvent};
use libp2p::{
    gossipsub, identify, kad, mdns, ping, relay, request_response, Multiaddr, PeerId, Swarm,
};
use p2p_proto::{Announcement, Response};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Starts the host. Returns the handle, the event stream, and the task running the swarm.
pub async fn start(
    cfg: NetConfig,
) -> Result<
    (
        NetHandle,
        mpsc::Receiver<NetEvent>,
        tokio::task::JoinHandle<()>,
    ),
    NetError,
> {
    persist::create_private_dir(&cfg.identity_dir).map_err(NetError::Setup)?;
    let keypair = persist::load_or_create_identity(&cfg.identity_dir.join("identity.key"))
        .map_err(NetError::Setup)?;
    let local = keypair.public().to_peer_id();
    let mut registry = prometheus_client::registry::Registry::default();
    let mut swarm = build_swarm(&cfg, keypair, &mut registry)?;
    let metrics = libp2p::metrics::Metrics::new(&mut registry);
    let nat_metrics = NatMetrics::register(&mut registry);
    subscribe_topics(&mut swarm.behaviour_mut().gossipsub)?;
    let (blocks, txs) = gossip_topics();
    for addr in &cfg.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Setup(format!("cannot listen on {addr}: {e}")))?;
    }
    let mut bootstrap = HashMap::new();
    for addr in &cfg.bootstrap {
        let (peer, base) = split_peer(addr).ok_or_else(|| NetError::NoPeerId(addr.clone()))?;
        if peer == local {
            return Err(NetError::Setup(format!("{addr} is this node itself")));
        }
        bootstrap.insert(peer, base);
    }
    // The peers that served this node's sync before go into the book, to
    // be dialled in batches; the anchors and the bootstrap peers at once.
    let store = persist::PeerStore::load(&cfg.identity_dir.join("peers.json"));
    let mut book = AddressBook::default();
    for (peer, addr) in store.known() {
        if peer != local
            && !bootstrap.contains_key(&peer)
            && book.add(peer, [addr], NetGroup::Stored)
        {
            book.success(&peer);
        }
    }
    let anchors = persist::take_anchors(&cfg.identity_dir.join("anchors.json"));
    let mut nat = Nat::default();
    for addr in &cfg.reach.external {
        crate::nat::check_external_address(addr).map_err(NetError::Setup)?;
        let addr = transport_address(addr);
        swarm.add_external_address(addr.clone());
        nat.address_confirmed(addr);
    }
    let (cmd_tx, cmd_rx) = mpsc::channel(CHANNEL);
    let (ev_tx, ev_rx) = mpsc::channel(CHANNEL);
    let now = Instant::now();
    let mut host = Host {
        swarm,
        local,
        events: EventQueue::new(ev_tx),
        pending: HashMap::new(),
        banned: HashMap::new(),
        store,
        anchors_path: cfg.identity_dir.join("anchors.json"),
        blocks,
        txs,
        rates: HashMap::new(),
        registry,
        metrics,
        nat_metrics,
        nat,
        reservation_listener: None,
        table: PeerTable::new(Limits {
            inbound_peer_slots: inbound_peer_slots(cfg.max_connections) as usize,
            max_connections: cfg.max_connections as usize,
        }),
        book,
        redial: bootstrap
            .iter()
            .map(|(p, a)| (*p, Redial::new(a.clone(), now)))
            .collect(),
    };
    for (peer, base) in &bootstrap {
        host.swarm
            .behaviour_mut()
            .kad
            .add_address(peer, base.clone());
        host.dial(*peer, vec![base.clone()], Origin::Bootstrap);
    }
    for (peer, base) in anchors {
        if peer != local && !bootstrap.contains_key(&peer) {
            host.dial(peer, vec![base], Origin::Anchor);
        }
    }
    host.fill_outbound(now);
    let task = tokio::spawn(host.run(cmd_rx));
    Ok((NetHandle { tx: cmd_tx, local }, ev_rx, task))
}

struct Host {
    swarm: Swarm<Behaviour>,
    local: PeerId,
    events: EventQueue,
    pending:
        HashMap<request_response::OutboundRequestId, oneshot::Sender<Result<Response, NetError>>>,
    banned: HashMap<PeerId, Instant>,
    /// Peers that served this node's sync (`peers.json`).
    store: persist::PeerStore,
    anchors_path: std::path::PathBuf,
    blocks: gossipsub::IdentTopic,
    txs: gossipsub::IdentTopic,
    rates: HashMap<PeerId, Bucket>,
    registry: prometheus_client::registry::Registry,
    metrics: libp2p::metrics::Metrics,
    table: PeerTable,
    book: AddressBook,
    /// The bootstrap (`--dest`) peers and when to dial each again.
    redial: HashMap<PeerId, Redial>,
    nat_metrics: NatMetrics,
    nat: Nat,
    /// The listener of the relay reservation asked for.
    reservation_listener: Option<ListenerId>,
}

/// Options for a dial this node chooses to make.
///
/// To a public address the dial goes from the listening port: a NAT in
/// front of this node then maps it to the port peers observe, which is the
/// address hole punching (DCUtR) tells the other side to dial.
///
/// To a private or local address it goes from a fresh port: two nodes that
/// find each other on a LAN dial each other at the same moment, and from
/// their listening ports the two dials meet in one TCP connection by
/// simultaneous open, on which both act as the dialer and protocol
/// negotiation fails. (DCUtR's own dials reuse the port and settle the
/// roles with `override_role`.)
///
/// A peer's addresses are dialled together, QUIC first (see the address
/// book): the first connection made wins.
fn dial_opts(peer: PeerId, addrs: &[Multiaddr]) -> DialOpts {
    let opts =
        DialOpts::peer_id(peer).addresses(addrs.iter().map(|a| peer_address(a, peer)).collect());
    if crate::addr::dial_from_listening_port(addrs) {
        opts.build()
    } else {
        opts.allocate_new_port().build()
    }
}

mod commands;
mod reach;
use reach::NatMetrics;

impl Host {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        // Redials, dial deadlines and outbound places are timed to the second.
        let mut second = tokio::time::interval(Duration::from_secs(1));
        let events = self.events.sender();
        loop {
            tokio::select! {
                permit = events.reserve(), if self.events.has_held() => {
                    if let Ok(permit) = permit {
                        self.events.send_held(permit);
                    }
                }
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(c) => self.on_command(c),
                },
                _ = tick.tick() => self.housekeeping(),
                _ = second.tick() => self.every_second(Instant::now()),
            }
        }
        self.save_anchors();
        if let Err(e) = self.store.save() {
            tracing::warn!("cannot save the peer store: {e}");
        }
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(NetError::Stopped));
        }
    }

    /// Saves two outbound peers that served blocks, to be dialled first at
    /// the next start (Bitcoin Core's `anchors.dat`).
    fn save_anchors(&self) {
        let anchors: Vec<(PeerId, Multiaddr)> = self
            .table
            .iter()
            .filter(|(_, e)| e.direction == Direction::Outbound && e.is_peer() && e.served_blocks)
            .map(|(p, e)| (*p, transport_address(&e.address)))
            .take(2)
            .collect();
        if let Err(e) = persist::save_anchors(&self.anchors_path, &anchors) {
            tracing::warn!("cannot save the anchors: {e}");
        }
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in expired {
            self.banned.remove(&p);
            self.swarm.behaviour_mut().blocked.unblock_peer(p);
            tracing::info!(peer = %p, "ban lifted");
        }
        // Rate state outlives a connection for the ban period.
        let table = &self.table;
        self.rates
            .retain(|p, b| table.get(p).is_some() || now.duration_since(b.last) < RATE_STATE_KEPT);
        if let Err(e) = self.store.save() {
            tracing::warn!("cannot save the peer store: {e}");
        }
    }

    fn every_second(&mut self, now: Instant) {
        let (actions, late) = self.table.tick(now);
        for (peer, origin) in late {
            tracing::debug!(%peer, ?origin, "a dial took too long: given up");
            self.book.failure(&peer, now);
        }
        self.apply(actions);
        let superseded = self.nat.superseded(now);
        self.close_circuits(superseded);
        self.maybe_reserve();
        self.nat_metrics
            .public
            .set(i64::from(self.nat.reachability() == Reachability::Public));
        self.nat_metrics
            .relayed
            .set(self.nat.relayed_connections() as i64);
        let bootstrap_needed = !self.table.bootstrap_not_needed();
        let due: Vec<(PeerId, Multiaddr)> = self
            .redial
            .iter_mut()
            .filter(|(p, _)| !self.table.is_peer(p))
            .filter_map(|(p, r)| r.due(now).then(|| (*p, r.addr.clone())))
            .collect();
        for (peer, addr) in due {
            // A bootstrap peer is not dialled again while the node has
            // enough other outbound peers. One already connected but not
            // a peer (it dialled this node, or a Kademlia lookup reached
            // it) is made one: `dial` chooses the connection it has.
            if bootstrap_needed {
                tracing::debug!(%peer, "a bootstrap peer is due to be dialled again");
                self.dial(peer, vec![addr], Origin::Bootstrap);
            }
        }
        self.fill_outbound(now);
    }

    /// Carries out the peer table's decisions.
    fn apply(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Connected(peer, address) => self
                    .events
                    .emit(NetEvent::Connected { peer, address }, &mut self.swarm),
                Action::Disconnected(peer) => self
                    .events
                    .emit(NetEvent::Disconnected { peer }, &mut self.swarm),
                Action::Close(c) => {
                    self.swarm.close_connection(c);
                }
                Action::Disconnect(peer) => {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
        }
    }

    /// Dials `peer` at `addr` for `origin`, unless it is connected, being
    /// dialled, banned or this node.
    fn dial(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, origin: Origin) {
        if self.table.get(&peer).is_some() {
            let actions = self.table.choose_connected(peer, origin, Instant::now());
            self.apply(actions);
            return;
        }
        let Some(first) = addrs.first() else {
            return;
        };
        if peer == self.local
            || self.table.knows(&peer)
            || self.swarm.is_connected(&peer)
            || self.banned.contains_key(&peer)
        {
            return;
        }
        tracing::debug!(%peer, ?origin, "dialling a peer");
        let now = Instant::now();
        self.table.dial_started(peer, first, origin, now);
        if let Err(e) = self.swarm.dial(dial_opts(peer, &addrs)) {
            tracing::debug!(%peer, %first, "dial failed: {e}");
            self.table.dial_failed(&peer);
            self.book.failure(&peer, now);
        }
    }

    /// Dials peers from the address book while the node has fewer than
    /// [`OUTBOUND_TARGET`] outbound peers: each from a network group no
    /// other outbound peer is in, at most [`DIALS_IN_FLIGHT`] at once.
    fn fill_outbound(&mut self, now: Instant) {
        let mut groups = self.table.outbound_groups();
        loop {
            let in_flight = self.table.dialing(Origin::Book);
            if self.table.outbound_peers() + in_flight >= OUTBOUND_TARGET
                || in_flight >= DIALS_IN_FLIGHT
            {
                return;
            }
            let (table, banned, local) = (&self.table, &self.banned, self.local);
            let Some((peer, addrs)) = self.book.pick(now, |p, a| {
                *p == local
                    || !table.may_become_outbound(p)
                    || banned.contains_key(p)
                    || groups.contains(&netgroup(a))
            }) else {
                return;
            };
            groups.insert(netgroup(&addrs[0]));
            self.dial(peer, addrs, Origin::Book);
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        use libp2p::metrics::Recorder;
        match &ev {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(_) => {}
            other => self.metrics.record(other),
        }
        let now = Instant::now();
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = peer_address(&address, self.local);
                self.events.emit(NetEvent::Listening(full), &mut self.swarm);
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                if !is_relayed(&address) {
                    tracing::info!(%address, "reachable from outside at this address");
                }
                self.nat.address_confirmed(address);
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                self.nat.address_expired(&address);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } if Some(listener_id) == self.reservation_listener => {
                tracing::info!("relay reservation ended: {reason:?}");
                self.reservation_ended();
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                let remote = endpoint.get_remote_address().clone();
                let relayed = endpoint.is_relayed();
                let via = endpoint.is_relayed().then(|| match &endpoint {
                    libp2p::core::ConnectedPoint::Dialer { address, .. } => relay_of(address),
                    libp2p::core::ConnectedPoint::Listener { local_addr, .. } => {
                        relay_of(local_addr)
                    }
                });
                self.on_nat_connection(peer_id, connection_id, via, &remote, now);
                if endpoint.is_dialer() && !relayed {
                    // Kademlia's table takes only peers this node dialled,
                    // at the address it dialled.
                    self.learn_address(peer_id, transport_address(&remote));
                    self.book.success(&peer_id);
                }
                let actions = self.table.on_established(
                    peer_id,
                    connection_id,
                    endpoint.is_dialer(),
                    &remote,
                    now,
                );
                self.apply(actions);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                endpoint,
                connection_id,
                ..
            } => {
                let stayed = self
                    .table
                    .get(&peer_id)
                    .map(|e| now.saturating_duration_since(e.connected_at));
                if num_established == 0 {
                    // Not dialled again at once: a node at its limits that
                    // closed the connection is not asked again in the same
                    // second. A peer that stayed a while starts again from
                    // the shortest wait.
                    if let Some(r) = self.redial.get_mut(&peer_id) {
                        r.closed(stayed, now);
                    }
                }
                if let Some(direct) = self.nat.on_closed(peer_id, connection_id, num_established) {
                    self.table.direct_address(&peer_id, &direct);
                }
                // The rate state stays (see housekeeping): a reconnect does
                // not refill the bucket or clear the strikes.
                let actions = self.table.on_closed(
                    peer_id,
                    connection_id,
                    endpoint.is_dialer(),
                    num_established,
                );
                self.apply(actions);
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                tracing::debug!(%peer, peers = self.table.peers().count(), "dial failed: {error:?}");
                let origin = self.table.dial_failed(&peer);
                // A dial this node's own limits refused says nothing of the peer.
                if !matches!(error, DialError::Denied { .. }) && origin.is_some() {
                    self.book.failure(&peer, now);
                }
            }
            SwarmEvent::Behaviour(b) => self.on_behaviour_event(b, now),
            _ => {}
        }
    }

    /// Gives Kademlia an address of a peer this node dialled, when the peer
    /// is in its routing table already or its bucket has room, and the
    /// entry holds fewer than [`MAX_ADDRS_PER_PEER`] addresses. Into a full
    /// bucket, Kademlia would dial the bucket's oldest disconnected peer to
    /// see whether it is still there, once for every address it is given.
    fn learn_address(&mut self, peer: PeerId, addr: Multiaddr) {
        let kad = &mut self.swarm.behaviour_mut().kad;
        let fits = kad.kbucket(peer).is_some_and(|b| {
            let len = b.num_entries();
            match b.iter().find(|e| *e.node.key.preimage() == peer) {
                Some(e) => {
                    e.node.value.len() < MAX_ADDRS_PER_PEER
                        && !e.node.value.iter().any(|a| *a == addr)
                }
                None => len < kad::K_VALUE.get(),
            }
        });
        if fits {
            kad.add_address(&peer, addr);
        }
    }

    /// A request from `peer` (within its rate): its connection may become
    /// a peer's.
    fn on_inbound_request(
        &mut self,
        peer: PeerId,
        request: codec::Inbound,
        channel: request_response::ResponseChannel<Response>,
        now: Instant,
    ) {
        let bucket = self.rates.entry(peer).or_insert_with(|| Bucket::new(now));
        if !bucket.take(now) {
            let strikes = bucket.strikes;
            let _ = self.swarm.behaviour_mut().rr.send_response(
                channel,
                Response::Error {
                    reason: format!("rate limited: at most {REQUESTS_PER_SEC} requests per second"),
                },
            );
            if strikes == RATE_STRIKES_TO_BAN {
                self.events.emit(
                    NetEvent::Misbehaved {
                        peer,
                        reason: format!("{strikes} requests over the rate limit"),
                    },
                    &mut self.swarm,
                );
            }
            return;
        }
        let request = match request {
            codec::Inbound::Valid(r) => r,
            codec::Inbound::Malformed(reason) => {
                // Dropping the channel resets the stream unanswered.
                drop(channel);
                self.events.emit(
                    NetEvent::Misbehaved {
                        peer,
                        reason: format!("undecodable request: {reason}"),
                    },
                    &mut self.swarm,
                );
                return;
            }
        };
        let actions = self.table.on_request(peer, now);
        self.apply(actions);
        self.events.emit(
            NetEvent::Request {
                peer,
                request,
                reply: ReplyHandle(channel),
            },
            &mut self.swarm,
        );
    }

    /// An answer to this node's request: a peer that answers sync with
    /// blocks is one worth keeping (`peers.json`, anchors).
    fn on_response(&mut self, peer: PeerId, response: &Response) {
        if !matches!(response, Response::Blocks { blocks, .. } if !blocks.is_empty()) {
            return;
        }
        if let Some(e) = self.table.get_mut(&peer) {
            e.served_blocks = true;
            if e.direction == Direction::Outbound {
                self.store.success(&peer, &transport_address(&e.address));
            }
        }
    }

    fn on_behaviour_event(&mut self, ev: BehaviourEvent, now: Instant) {
        match ev {
            BehaviourEvent::Rr(request_response::Event::Message {
                peer,
                message,
                connection_id,
            }) => {
                match message {
                    request_response::Message::Request { channel, .. }
                        if self.nat.is_relayed_connection(&connection_id) =>
                    {
                        // Unanswered: requests wait for a direct connection.
                        tracing::debug!(%peer, "a request over a relayed connection: not served");
                        drop(channel);
                    }
                    request_response::Message::Request {
                        request, channel, ..
                    } => self.on_inbound_request(peer, request, channel, now),
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => {
                        self.on_response(peer, &response);
                        if let Some(tx) = self.pending.remove(&request_id) {
                            let _ = tx.send(Ok(response));
                        }
                    }
                }
            }
            BehaviourEvent::Rr(request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            }) => {
                if let Some(tx) = self.pending.remove(&request_id) {
                    let _ = tx.send(Err(NetError::RequestFailed {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            BehaviourEvent::Rr(request_response::Event::InboundFailure { peer, error, .. }) => {
                // Malformed bytes arrive as `Inbound::Malformed`, not here.
                tracing::debug!(%peer, "inbound request failed: {error}");
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let id = GossipId {
                    id: message_id,
                    source: propagation_source,
                    block: message.topic == self.blocks.hash(),
                };
                let size = message.data.len();
                match Announcement::decode(&message.data) {
                    Ok(announcement) => self.events.emit(
                        NetEvent::Announcement {
                            peer: propagation_source,
                            id,
                            announcement,
                            size,
                        },
                        &mut self.swarm,
                    ),
                    Err(e) => {
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .report_message_validation_result(
                                &id.id,
                                &id.source,
                                gossipsub::MessageAcceptance::Reject,
                            );
                        self.events.emit(
                            NetEvent::Misbehaved {
                                peer: propagation_source,
                                reason: format!("undecodable announcement: {e}"),
                            },
                            &mut self.swarm,
                        );
                    }
                }
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                if let Some(e) = self.table.get_mut(&peer) {
                    e.rtt = Some(rtt);
                }
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if info.protocols.contains(&relay::HOP_PROTOCOL_NAME) {
                    if let Some(e) = self.table.get(&peer_id) {
                        let dialled = e.direction == Direction::Outbound;
                        let addr = e.address.clone();
                        self.nat.relay_offered(peer_id, &addr, dialled);
                        self.maybe_reserve();
                    }
                }
                self.on_identify(peer_id, info.listen_addrs, now);
            }
            BehaviourEvent::Autonat(e) => self.on_autonat(e),
            BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                ..
            }) => self.on_reservation_accepted(relay_peer_id),
            BehaviourEvent::Dcutr(e) => self.on_hole_punch(e),
            BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, addresses, ..
            }) => {
                let source = netgroup(addresses.first());
                self.book.add(peer, addresses.into_vec(), source);
                self.fill_outbound(now);
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                result,
                stats,
                step,
                ..
            }) if step.last => {
                let kind = match result {
                    kad::QueryResult::Bootstrap(Err(_)) => "bootstrap (failed)",
                    kad::QueryResult::Bootstrap(_) => "bootstrap",
                    kad::QueryResult::GetClosestPeers(_) => "closest peers",
                    _ => "other",
                };
                tracing::debug!(
                    kind,
                    requests = stats.num_requests(),
                    book = self.book.len(),
                    "Kademlia query finished"
                );
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(list)) => {
                for (peer, addr) in list {
                    if peer != self.local && self.book.add(peer, [addr.clone()], NetGroup::Lan) {
                        tracing::info!(%peer, %addr, "found a peer on the LAN");
                    }
                }
                self.fill_outbound(now);
            }
            _ => {}
        }
    }

    /// A peer's identify: its listen addresses go into the address book
    /// (at most [`MAX_ADDRS_PER_PEER`], at most once per
    /// [`ADDRESS_UPDATE_EVERY`]), and into Kademlia's table when this node
    /// dialled the peer, or, for a peer that dialled in, those on the
    /// address its connection comes from (which TCP does not let it
    /// choose): what it claims of other hosts never reaches the table.
    fn on_identify(&mut self, peer: PeerId, listen: Vec<Multiaddr>, now: Instant) {
        let Some(e) = self.table.get_mut(&peer) else {
            return;
        };
        if e.addresses_taken
            .is_some_and(|t| now.duration_since(t) < ADDRESS_UPDATE_EVERY)
        {
            return;
        }
        e.addresses_taken = Some(now);
        let (source, outbound) = (e.group.clone(), e.direction == Direction::Outbound);
        let observed = e.address.clone();
        let addrs: Vec<Multiaddr> = listen
            .into_iter()
            .filter(crate::addr::is_peer_listen_address)
            .take(MAX_ADDRS_PER_PEER)
            .collect();
        for a in &addrs {
            if outbound || crate::addr::same_host(a, &observed) {
                self.learn_address(peer, transport_address(a));
            }
        }
        self.book.add(peer, addrs, source);
    }
}
