//! The one-shot client: a short-lived host with a fresh identity that
//! connects to one node, asks, and goes. A [`Session`] keeps its one
//! connection for several requests (a wallet's coins, then its payment).

use crate::addr::split_peer;
use crate::behaviour::{rr_behaviour, tcp_swarm};
use crate::codec;
use crate::config::REQUEST_TIMEOUT;
use crate::handle::NetError;
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{request_response, Multiaddr, PeerId, Swarm};
use p2p_proto::{Request, Response};
use std::time::{Duration, Instant};

/// A connection closed this soon after it was set up, unanswered, was
/// refused by the node's connection limits.
const REFUSED_WITHIN: Duration = Duration::from_secs(2);

/// One connection to one node, speaking `C`'s request-response codec.
struct Conn<C: request_response::Codec + Clone + Send + 'static> {
    swarm: Swarm<request_response::Behaviour<C>>,
    peer: PeerId,
    addr: Multiaddr,
    established: Instant,
}

impl<C> Conn<C>
where
    C: request_response::Codec + Clone + Send + 'static,
    C::Protocol: Send,
{
    async fn open(
        addr: &Multiaddr,
        behaviour: request_response::Behaviour<C>,
        connect_timeout: Duration,
    ) -> Result<Self, NetError> {
        let (peer, _) = split_peer(addr).ok_or_else(|| NetError::NoPeerId(addr.clone()))?;
        let unreachable = |reason: String| NetError::Unreachable {
            addr: addr.to_string(),
            reason,
        };
        let mut swarm = tcp_swarm(|_| Ok(behaviour), Duration::from_secs(5))?;
        swarm
            .dial(addr.clone())
            .map_err(|e| unreachable(e.to_string()))?;
        let connect = async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => {
                        return Ok(())
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        return Err(unreachable(error.to_string()))
                    }
                    _ => {}
                }
            }
        };
        tokio::time::timeout(connect_timeout, connect)
            .await
            .map_err(|_| {
                unreachable(format!("no answer within {}s", connect_timeout.as_secs()))
            })??;
        Ok(Conn {
            swarm,
            peer,
            addr: addr.clone(),
            established: Instant::now(),
        })
    }

    async fn ask(&mut self, request: C::Request) -> Result<C::Response, NetError> {
        let peer = self.peer;
        let id = self.swarm.behaviour_mut().send_request(&peer, request);
        let (swarm, addr, established) = (&mut self.swarm, &self.addr, self.established);
        let exchange = async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::Behaviour(request_response::Event::Message {
                        message:
                            request_response::Message::Response {
                                request_id,
                                response,
                            },
                        ..
                    }) if request_id == id => return Ok(response),
                    SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                        request_id,
                        error,
                        ..
                    }) if request_id == id => {
                        return Err(NetError::RequestFailed {
                            peer,
                            reason: error.to_string(),
                        })
                    }
                    SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == peer => {
                        // A node at its connection limit closes a connection
                        // as soon as it is set up; one closed later went away
                        // while answering.
                        if established.elapsed() < REFUSED_WITHIN {
                            return Err(NetError::Refused {
                                addr: addr.to_string(),
                            });
                        }
                        return Err(NetError::RequestFailed {
                            peer,
                            reason: "the connection closed".into(),
                        });
                    }
                    _ => {}
                }
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| NetError::RequestFailed {
                peer,
                reason: "timed out".into(),
            })?
    }
}

/// One connection to a node for a client's few requests, made in turn.
pub struct Session(Conn<codec::SyncCodec>);

impl Session {
    /// Connects to the node at `addr` (ending in `/p2p/<id>`), waiting at
    /// most `connect_timeout`.
    pub async fn connect(addr: &Multiaddr, connect_timeout: Duration) -> Result<Self, NetError> {
        Conn::open(addr, rr_behaviour(), connect_timeout)
            .await
            .map(Session)
    }

    /// Sends a request and waits for its answer (bounded by [`REQUEST_TIMEOUT`]).
    pub async fn request(&mut self, request: Request) -> Result<Response, NetError> {
        self.0.ask(codec::Inbound::Valid(request)).await
    }
}

/// Sends one request to the node at `addr` through a short-lived host and
/// returns its answer. Connecting is bounded by `connect_timeout` and the
/// exchange by [`REQUEST_TIMEOUT`].
pub async fn request_once(
    addr: &Multiaddr,
    request: Request,
    connect_timeout: Duration,
) -> Result<Response, NetError> {
    Session::connect(addr, connect_timeout)
        .await?
        .request(request)
        .await
}

/// Writes `bytes` as they are on the sync protocol of the node at `addr`,
/// as a misbehaving peer would, and returns what the node answered (raw) or
/// how the exchange failed. For tests of the node's defences.
#[cfg(feature = "test-utils")]
pub async fn send_raw(
    addr: &Multiaddr,
    bytes: Vec<u8>,
    connect_timeout: Duration,
) -> Result<Vec<u8>, NetError> {
    let cfg = request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT);
    let behaviour = request_response::Behaviour::with_codec(
        codec::RawCodec,
        [(
            libp2p::StreamProtocol::new(p2p_proto::SYNC_PROTOCOL),
            request_response::ProtocolSupport::Outbound,
        )],
        cfg,
    );
    Conn::open(addr, behaviour, connect_timeout)
        .await?
        .ask(bytes)
        .await
}
