//! Runs a node ([`chain_node::Node`]) on a libp2p host ([`p2p_net`]).
//!
//! [`Net`] adapts p2p-net's handle to the node's [`Network`] trait, and
//! [`run`] is the loop that feeds the node the host's events, the status
//! tick and finished searches until it is told to stop, then closes the
//! host and the chain. The node binary's `startp2p` is this plus its flags;
//! a process that runs many nodes (over the memory transport) runs this
//! once per node.

use chain_node::{Inbound, Network, Node, NodeConfig, PoolSettings, Verdict};
use chain_store::ChainStore;
use p2p_net::{GossipId, Multiaddr, NetConfig, NetEvent, NetHandle, PeerId, ReplyHandle};
use p2p_proto::{Announcement, Request, Response};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use node_api::ApiSettings;

/// p2p-net's handle as the node's network.
#[derive(Clone)]
pub struct Net(pub NetHandle);

impl Network for Net {
    type Peer = PeerId;
    type GossipId = GossipId;
    type Reply = ReplyHandle;

    async fn request(&self, peer: PeerId, request: Request) -> Result<Response, String> {
        self.0
            .request(peer, request)
            .await
            .map_err(|e| e.to_string())
    }
    async fn respond(&self, reply: ReplyHandle, response: Response) {
        let _ = self.0.respond(reply, response).await;
    }
    async fn publish(&self, announcement: Announcement) {
        let _ = self.0.publish(announcement).await;
    }
    async fn validate(&self, id: GossipId, verdict: Verdict) {
        let v = match verdict {
            Verdict::Accept => p2p_net::Verdict::Accept,
            Verdict::Reject => p2p_net::Verdict::Reject,
            Verdict::Ignore => p2p_net::Verdict::Ignore,
        };
        let _ = self.0.validate(id, v).await;
    }
    async fn ban(&self, peer: PeerId, period: Duration) {
        let _ = self.0.ban(peer, period).await;
    }
}

impl node_api::NetView for Net {
    async fn info(&self) -> Option<node_api::NetSummary> {
        let info = self.0.info().await.ok()?;
        Some(node_api::NetSummary {
            peer_id: self.0.local_peer_id().to_string(),
            listening: info.listening.iter().map(|a| a.to_string()).collect(),
            reachability: info.reachability.as_str(),
            external: info.external.iter().map(|a| a.to_string()).collect(),
            relayed: info.relayed.as_ref().map(|a| a.to_string()),
            peers: info
                .peers
                .into_iter()
                .map(|p| node_api::PeerSummary {
                    id: p.id.to_string(),
                    address: p.address.to_string(),
                    direction: if p.inbound { "inbound" } else { "outbound" },
                    connected_secs: p.connected_for.as_secs(),
                    ping_ms: p.ping.map(|d| d.as_secs_f64() * 1000.0),
                })
                .collect(),
            bans: info
                .bans
                .into_iter()
                .map(|(id, left)| node_api::BanSummary {
                    id: id.to_string(),
                    remaining_secs: left.as_secs(),
                })
                .collect(),
        })
    }

    async fn metrics(&self) -> Option<String> {
        let text = self.0.metrics().await.ok()?;
        // The API appends its own metrics and the one closing line.
        Some(match text.strip_suffix("# EOF\n") {
            Some(t) => t.to_string(),
            None => text,
        })
    }
}

/// What the node is started with, besides the host's configuration.
pub struct NodeSetup {
    /// The chain, when there is one already.
    pub store: Option<ChainStore>,
    /// Where the chain is (or will be created from a peer's genesis).
    pub chain_dir: PathBuf,
    /// The mempool's limits and file.
    pub pool: PoolSettings,
    /// The node's behaviour.
    pub node: NodeConfig<PeerId>,
    /// Where and how to serve the HTTP API and explorer (`None`: not served).
    pub http: Option<node_api::ApiSettings>,
}

/// The node's view of one host event; `None` for what only the caller
/// sees (an address the host listens on).
fn inbound(ev: NetEvent) -> Option<Inbound<Net>> {
    Some(match ev {
        NetEvent::Listening(_) => return None,
        NetEvent::Connected { peer, address } => Inbound::Connected {
            peer,
            address: address.to_string(),
        },
        NetEvent::Disconnected { peer } => Inbound::Disconnected { peer },
        NetEvent::Request {
            peer,
            request,
            reply,
        } => Inbound::Request {
            peer,
            request,
            reply,
        },
        NetEvent::Announcement {
            peer,
            id,
            announcement,
            size,
        } => Inbound::Announcement {
            peer,
            id,
            announcement,
            size,
        },
        NetEvent::Misbehaved { peer, reason } => Inbound::Misbehaved { peer, reason },
    })
}

/// How often the node logs a `status` line (height, tip, peers, mempool),
/// for a person or a script watching its log.
pub const INFORMANT: Duration = Duration::from_secs(5);

async fn inform(node: &Node<Net>, net: &NetHandle) {
    let Ok(info) = net.info().await else {
        return;
    };
    if let Some(v) = node.chain().view() {
        tracing::info!(
            height = v.tip.height,
            tip = %v.tip.hash.short(),
            peers = info.peers.len(),
            mempool = v.mempool_len,
            reachable = info.reachability.as_str(),
            "status"
        );
    }
}

/// A running node, for a caller that drives it besides the network (a
/// simulation submitting payments and blocks, an API).
#[derive(Clone)]
pub struct Running {
    /// The node.
    pub node: Arc<Node<Net>>,
    /// Its host.
    pub net: NetHandle,
    /// Where its HTTP API listens, if it serves one.
    pub http: Option<std::net::SocketAddr>,
}

/// Starts the host and the node and runs them until `stop` completes or
/// the host stops; `listening` is told each address the host listens on.
/// Closes the host, then the chain (the store and the mempool file).
pub async fn run(
    cfg: NetConfig,
    setup: NodeSetup,
    stop: impl Future<Output = ()>,
    listening: impl FnMut(&Multiaddr),
) -> anyhow::Result<()> {
    run_with(cfg, setup, stop, listening, |_| {}).await
}

/// [`run`], handing `started` the node and its host once they run.
pub async fn run_with(
    cfg: NetConfig,
    setup: NodeSetup,
    stop: impl Future<Output = ()>,
    mut listening: impl FnMut(&Multiaddr),
    started: impl FnOnce(Running),
) -> anyhow::Result<()> {
    let (net, mut events, net_task) = p2p_net::start(cfg).await?;
    tracing::info!(peer_id = %net.local_peer_id(), "node started");
    if let Some(s) = &setup.store {
        let t = s.tip();
        tracing::info!(height = t.height, tip = %t.hash.short(), "chain loaded");
    }
    let chain = chain_node::chain::spawn::<PeerId>(setup.store, setup.chain_dir, setup.pool);
    let (node, mut mined) = Node::new(chain, Net(net.clone()), setup.node);
    let api = match setup.http {
        None => None,
        Some(settings) => match node_api::start(settings, node.clone(), Net(net.clone())) {
            Ok(api) => {
                tracing::info!(address = %api.local_addr(), "serving the HTTP API and explorer");
                Some(api)
            }
            Err(e) => {
                net.shutdown().await;
                let _ = tokio::time::timeout(Duration::from_secs(5), net_task).await;
                node.shutdown().await;
                return Err(e);
            }
        },
    };
    started(Running {
        node: node.clone(),
        net: net.clone(),
        http: api.as_ref().map(|a| a.local_addr()),
    });
    let mut poll = tokio::time::interval(chain_node::node::STATUS_POLL);
    let mut informant = tokio::time::interval(INFORMANT);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                if let NetEvent::Listening(addr) = &ev {
                    listening(addr);
                }
                if let Some(inbound) = inbound(ev) {
                    node.clone().on_event(inbound).await;
                }
            }
            found = mined.recv() => node.clone().on_mined(found.flatten()).await,
            _ = poll.tick() => node.clone().tick().await,
            _ = informant.tick() => inform(&node, &net).await,
        }
    }
    tracing::info!("shutting down");
    if let Some(api) = api {
        // Joins the server's thread: off the runtime's workers.
        let _ = tokio::task::spawn_blocking(move || api.stop()).await;
    }
    net.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), net_task).await;
    node.shutdown().await;
    tracing::info!("chain closed cleanly");
    Ok(())
}
