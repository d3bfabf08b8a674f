//! The program's side of the host: the handle, its commands, the events
//! it reads, and the errors.

use libp2p::{gossipsub, request_response, Multiaddr, PeerId};
use p2p_proto::{Announcement, Request, Response};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Errors of the network layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Identity, transport or listener set-up failed.
    #[error("network set-up failed: {0}")]
    Setup(String),
    /// A multiaddress without the peer id.
    #[error(
        "{0} does not end with /p2p/<peer id>; use the full address the node prints when it starts"
    )]
    NoPeerId(Multiaddr),
    /// The peer could not be reached.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A request failed.
    #[error("request to {peer} failed: {reason}")]
    RequestFailed {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The node closed a new connection at once, before answering: it is
    /// at its connection limit.
    #[error("the node at {addr} refused the connection: it is at its connection limit; try again shortly, or use another node")]
    Refused {
        /// The address.
        addr: String,
    },
    /// An announcement was not sent.
    #[error("not published: {0}")]
    NotPublished(String),
    /// The host stopped.
    #[error("the network host has stopped")]
    Stopped,
}

/// Where to send the answer to an inbound request.
pub struct ReplyHandle(pub(crate) request_response::ResponseChannel<Response>);

impl std::fmt::Debug for ReplyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyHandle")
    }
}

/// Identifies a received announcement, for reporting its validation result.
#[derive(Clone, Debug)]
pub struct GossipId {
    pub(crate) id: gossipsub::MessageId,
    pub(crate) source: PeerId,
    /// A block (true) or a payment: an accepted one credits its source.
    pub(crate) block: bool,
}

/// The result of validating an announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it.
    Accept,
    /// Invalid: drop it and penalise the sender.
    Reject,
    /// Neither (already known, or not checkable yet): drop it quietly.
    Ignore,
}

/// What the host reports.
#[derive(Debug)]
pub enum NetEvent {
    /// Listening on an address (with this node's /p2p/ id appended).
    Listening(Multiaddr),
    /// A connection to a peer opened.
    Connected {
        /// The peer.
        peer: PeerId,
        /// Its address.
        address: Multiaddr,
    },
    /// The last connection to a peer closed.
    Disconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A peer asks something; answer with [`NetHandle::respond`].
    Request {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: Request,
        /// Where to answer.
        reply: ReplyHandle,
    },
    /// An announcement arrived; report its validity with [`NetHandle::validate`].
    Announcement {
        /// The peer it came from.
        peer: PeerId,
        /// Its id.
        id: GossipId,
        /// The content.
        announcement: Announcement,
        /// Its encoded size in bytes, as received.
        size: usize,
    },
    /// A peer sent something undecodable.
    Misbehaved {
        /// The peer.
        peer: PeerId,
        /// What it did.
        reason: String,
    },
}

pub(crate) enum Command {
    Request {
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<Result<Response, NetError>>,
    },
    Respond {
        handle: ReplyHandle,
        response: Response,
    },
    Publish {
        announcement: Announcement,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Validate {
        id: GossipId,
        verdict: Verdict,
    },
    Ban {
        peer: PeerId,
        duration: Duration,
    },
    Unban {
        peer: PeerId,
    },
    Dial {
        addr: Multiaddr,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Metrics {
        reply: oneshot::Sender<String>,
    },
    Info {
        reply: oneshot::Sender<NetInfo>,
    },
    Shutdown,
}

/// A peer as the host sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerDetail {
    /// Its id.
    pub id: PeerId,
    /// The address of its connection (ending in /p2p/<id>).
    pub address: Multiaddr,
    /// Whether it dialled this node. Taken from the connection once and
    /// never changed: a peer this node did not dial is never outbound.
    pub inbound: bool,
    /// How long it has been a peer.
    pub connected_for: Duration,
    /// The last ping's round trip, once one has been measured.
    pub ping: Option<Duration>,
}

/// What the host is doing: for an API or a status display.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetInfo {
    /// The addresses it listens on (ending in /p2p/<id>).
    pub listening: Vec<Multiaddr>,
    /// Its peers.
    pub peers: Vec<PeerDetail>,
    /// Peers banned now, with the time their ban has left.
    pub bans: Vec<(PeerId, Duration)>,
    /// Whether peers can dial this node.
    pub reachability: crate::nat::Reachability,
    /// The addresses of this node confirmed reachable (AutoNAT,
    /// `--external-address`, UPnP), ending in /p2p/<id>.
    pub external: Vec<Multiaddr>,
    /// The address through the relay this node holds a reservation on,
    /// once accepted (ending in /p2p-circuit/p2p/<id>).
    pub relayed: Option<Multiaddr>,
}

/// The program's handle on the host. Cheap to clone.
#[derive(Clone, Debug)]
pub struct NetHandle {
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) local: PeerId,
}

impl NetHandle {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    async fn send(&self, c: Command) -> Result<(), NetError> {
        self.tx.send(c).await.map_err(|_| NetError::Stopped)
    }

    /// Sends the command `make` builds around a reply channel and waits for the reply.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(make(reply)).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Sends a request and waits for the answer (bounded by [`REQUEST_TIMEOUT`](crate::REQUEST_TIMEOUT)).
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, NetError> {
        self.ask(|reply| Command::Request {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Answers an inbound request.
    pub async fn respond(&self, handle: ReplyHandle, response: Response) -> Result<(), NetError> {
        self.send(Command::Respond { handle, response }).await
    }

    /// Announces a block or transaction to the network. Fails with
    /// [`NetError::NotPublished`] when no connected peer takes the topic yet
    /// or the message is over the size limit.
    pub async fn publish(&self, announcement: Announcement) -> Result<(), NetError> {
        self.ask(|reply| Command::Publish {
            announcement,
            reply,
        })
        .await?
    }

    /// Reports whether a received announcement is valid.
    pub async fn validate(&self, id: GossipId, verdict: Verdict) -> Result<(), NetError> {
        self.send(Command::Validate { id, verdict }).await
    }

    /// Disconnects a peer and refuses it for `duration`.
    pub async fn ban(&self, peer: PeerId, duration: Duration) -> Result<(), NetError> {
        self.send(Command::Ban { peer, duration }).await
    }

    /// Lifts a ban at once.
    pub async fn unban(&self, peer: PeerId) -> Result<(), NetError> {
        self.send(Command::Unban { peer }).await
    }

    /// Dials `addr` (ending in `/p2p/<id>`) unless already connected to it.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.send(Command::Dial { addr }).await
    }

    /// The host's metrics (libp2p's: connections, bandwidth, identify,
    /// Kademlia, ping, gossipsub) in Prometheus text format.
    pub async fn metrics(&self) -> Result<String, NetError> {
        self.ask(|reply| Command::Metrics { reply }).await
    }

    /// Listening addresses, peers and bans.
    pub async fn info(&self) -> Result<NetInfo, NetError> {
        self.ask(|reply| Command::Info { reply }).await
    }

    /// The peers connected now.
    pub async fn peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    /// Stops the host.
    pub async fn shutdown(&self) {
        let _ = self.send(Command::Shutdown).await;
    }
}
