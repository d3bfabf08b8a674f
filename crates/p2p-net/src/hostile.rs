//! A hostile-peer kit for tests of the node's defences: many identities
//! from one process, each its own libp2p host that can connect to a node,
//! make requests (a chainless `Status`), push identify messages listing
//! addresses of its choosing, hold its connection (it takes part in
//! gossipsub, so the connection never idles out) or drop it.
//!
//! Each [`Identity`] runs its swarm on a task of its own; dropping it
//! stops the task and closes its connections.

use crate::addr::split_peer;
use crate::behaviour::{rr_behaviour, subscribe_topics, tcp_swarm};
use crate::codec::{self, SyncCodec};
use crate::handle::NetError;
use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, identify, request_response, Multiaddr, PeerId};
use p2p_proto::{Request, Response};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(NetworkBehaviour)]
struct Kit {
    identify: identify::Behaviour,
    rr: request_response::Behaviour<SyncCodec>,
    gossipsub: gossipsub::Behaviour,
    push: request_response::Behaviour<PushCodec>,
}

/// Identify's push protocol, written by hand: the kit sends a push
/// listing any addresses it likes, as many as fit in identify's 4 KiB,
/// where libp2p's own identify lists at most 20 of the swarm's.
const PUSH_PROTOCOL: &str = "/ipfs/id/push/1.0.0";

/// Writes a ready-made identify push; there is no answer to read.
#[derive(Clone, Copy, Debug, Default)]
struct PushCodec;

impl request_response::Codec for PushCodec {
    type Protocol = libp2p::StreamProtocol;
    type Request = Vec<u8>;
    type Response = ();

    async fn read_request<T>(&mut self, _: &Self::Protocol, _: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        Err(std::io::Error::other("the kit takes no pushes"))
    }

    async fn read_response<T>(&mut self, _: &Self::Protocol, io: &mut T) -> std::io::Result<()>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut sink = Vec::new();
        let _ = futures::AsyncReadExt::read_to_end(io, &mut sink).await;
        Ok(())
    }

    async fn write_request<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        futures::AsyncWriteExt::write_all(io, &bytes).await?;
        futures::AsyncWriteExt::close(io).await
    }

    async fn write_response<T>(
        &mut self,
        _: &Self::Protocol,
        _: &mut T,
        _: (),
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        Ok(())
    }
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// An identify message (protobuf) listing `addrs` as listen addresses
/// (field 2), length-prefixed as on the wire.
fn push_message(addrs: &[Multiaddr]) -> Vec<u8> {
    let mut body = Vec::new();
    for a in addrs {
        let bytes = a.to_vec();
        body.push(0x12);
        varint(bytes.len(), &mut body);
        body.extend_from_slice(&bytes);
    }
    let mut framed = Vec::new();
    varint(body.len(), &mut framed);
    framed.extend(body);
    framed
}

enum Cmd {
    Connect(Multiaddr, oneshot::Sender<Result<(), NetError>>),
    Request(Request, oneshot::Sender<Result<Response, NetError>>),
    Push(Vec<Multiaddr>, oneshot::Sender<()>),
    Disconnect(oneshot::Sender<()>),
    Connected(oneshot::Sender<bool>),
}

/// One identity under the test's control.
pub struct Identity {
    id: PeerId,
    cmds: mpsc::Sender<Cmd>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Identity {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Identity {
    /// A new identity with a host of its own.
    pub fn spawn() -> Result<Identity, NetError> {
        let mut swarm = tcp_swarm(
            |key| {
                let gcfg = gossipsub::ConfigBuilder::default()
                    .validation_mode(gossipsub::ValidationMode::None)
                    .build()?;
                Ok(Kit {
                    identify: identify::Behaviour::new(
                        identify::Config::new("/chain/id/1".into(), key.public())
                            .with_agent_version("hostile".into())
                            .with_cache_size(0),
                    ),
                    rr: rr_behaviour(),
                    gossipsub: gossipsub::Behaviour::new(
                        gossipsub::MessageAuthenticity::Anonymous,
                        gcfg,
                    )?,
                    push: request_response::Behaviour::with_codec(
                        PushCodec,
                        [(
                            libp2p::StreamProtocol::new(PUSH_PROTOCOL),
                            request_response::ProtocolSupport::Outbound,
                        )],
                        request_response::Config::default()
                            .with_request_timeout(Duration::from_secs(5)),
                    ),
                })
            },
            Duration::from_secs(3600),
        )?;
        subscribe_topics(&mut swarm.behaviour_mut().gossipsub)?;
        let id = *swarm.local_peer_id();
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(run(swarm, rx));
        Ok(Identity { id, cmds: tx, task })
    }

    /// `n` new identities.
    pub fn many(n: usize) -> Result<Vec<Identity>, NetError> {
        (0..n).map(|_| Identity::spawn()).collect()
    }

    /// Its peer id.
    pub fn id(&self) -> PeerId {
        self.id
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(make(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Dials the node at `addr` (ending in `/p2p/<id>`) and waits, at most
    /// 10 s, until connected.
    pub async fn connect(&self, addr: &Multiaddr) -> Result<(), NetError> {
        let target = addr.clone();
        tokio::time::timeout(
            Duration::from_secs(10),
            self.ask(|r| Cmd::Connect(target, r)),
        )
        .await
        .map_err(|_| NetError::Unreachable {
            addr: addr.to_string(),
            reason: "not connected within 10 s".into(),
        })??
    }

    /// Sends `request` to the node connected last, and waits for its answer.
    pub async fn request(&self, request: Request) -> Result<Response, NetError> {
        self.ask(|r| Cmd::Request(request, r)).await?
    }

    /// Sends an identify push listing exactly `addrs` as its listen
    /// addresses (about 350 IPv4 TCP addresses fit in one).
    pub async fn push_addresses(&self, addrs: Vec<Multiaddr>) -> Result<(), NetError> {
        self.ask(|r| Cmd::Push(addrs, r)).await
    }

    /// Closes its connections.
    pub async fn disconnect(&self) -> Result<(), NetError> {
        self.ask(Cmd::Disconnect).await
    }

    /// Whether it is connected to the node now.
    pub async fn connected(&self) -> bool {
        self.ask(Cmd::Connected).await.unwrap_or(false)
    }
}

async fn run(mut swarm: libp2p::Swarm<Kit>, mut cmds: mpsc::Receiver<Cmd>) {
    let mut node: Option<PeerId> = None;
    let mut dialing: Option<(PeerId, oneshot::Sender<Result<(), NetError>>)> = None;
    let mut pending: HashMap<
        request_response::OutboundRequestId,
        oneshot::Sender<Result<Response, NetError>>,
    > = HashMap::new();
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None => return,
                Some(Cmd::Connect(addr, reply)) => {
                    let Some((peer, _)) = split_peer(&addr) else {
                        let _ = reply.send(Err(NetError::NoPeerId(addr)));
                        continue;
                    };
                    node = Some(peer);
                    if swarm.is_connected(&peer) {
                        let _ = reply.send(Ok(()));
                    } else if let Err(e) = swarm.dial(addr.clone()) {
                        let _ = reply.send(Err(NetError::Unreachable { addr: addr.to_string(), reason: e.to_string() }));
                    } else {
                        dialing = Some((peer, reply));
                    }
                }
                Some(Cmd::Request(request, reply)) => match node {
                    Some(peer) if swarm.is_connected(&peer) => {
                        let id = swarm.behaviour_mut().rr.send_request(&peer, codec::Inbound::Valid(request));
                        pending.insert(id, reply);
                    }
                    _ => {
                        let _ = reply.send(Err(NetError::Stopped));
                    }
                },
                Some(Cmd::Push(addrs, reply)) => {
                    if let Some(peer) = node {
                        swarm.behaviour_mut().push.send_request(&peer, push_message(&addrs));
                    }
                    let _ = reply.send(());
                }
                Some(Cmd::Disconnect(reply)) => {
                    if let Some(peer) = node {
                        let _ = swarm.disconnect_peer_id(peer);
                    }
                    let _ = reply.send(());
                }
                Some(Cmd::Connected(reply)) => {
                    let _ = reply.send(node.is_some_and(|p| swarm.is_connected(&p)));
                }
            },
            ev = swarm.select_next_some() => match ev {
                SwarmEvent::ConnectionEstablished { peer_id, .. }
                    if dialing.as_ref().is_some_and(|(p, _)| *p == peer_id) =>
                {
                    if let Some((_, reply)) = dialing.take() {
                        let _ = reply.send(Ok(()));
                    }
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    if let Some((_, reply)) = dialing.take() {
                        let _ = reply.send(Err(NetError::Unreachable { addr: String::new(), reason: error.to_string() }));
                    }
                }
                SwarmEvent::Behaviour(KitEvent::Rr(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) => {
                    if let Some(tx) = pending.remove(&request_id) {
                        let _ = tx.send(Ok(response));
                    }
                }
                SwarmEvent::Behaviour(KitEvent::Rr(request_response::Event::OutboundFailure {
                    peer, request_id, error, ..
                })) => {
                    if let Some(tx) = pending.remove(&request_id) {
                        let _ = tx.send(Err(NetError::RequestFailed { peer, reason: error.to_string() }));
                    }
                }
                _ => {}
            },
        }
    }
}
