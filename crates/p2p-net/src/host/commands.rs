//! The program's commands carried out on the swarm: requests and their
//! answers, gossip published and validated, bans, dials; and the
//! network's state for the API.

use super::Host;
use crate::addr::{peer_address, split_peer};
use crate::codec;
use crate::handle::{Command, NetError, NetInfo, PeerDetail, Verdict};
use crate::peers::{Direction, Origin};
use libp2p::gossipsub;
use p2p_proto::Announcement;
use std::time::Instant;

impl Host {
    pub(super) fn on_command(&mut self, c: Command) {
        match c {
            Command::Request {
                peer,
                request,
                reply,
            } => {
                // Requests go to connected peers only: request-response
                // would otherwise dial a peer that was just disconnected
                // (pruned, banned by the other side, gone), and the node
                // never means to reconnect by asking.
                if !self.swarm.is_connected(&peer) {
                    let _ = reply.send(Err(NetError::RequestFailed {
                        peer,
                        reason: "not connected".into(),
                    }));
                    return;
                }
                // Requests (the handshake and sync) wait for a direct
                // connection: a relay carries a circuit's few megabytes.
                if !self.nat.has_direct(&peer) {
                    let _ = reply.send(Err(NetError::RequestFailed {
                        peer,
                        reason: "connected only through a relay".into(),
                    }));
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .rr
                    .send_request(&peer, codec::Inbound::Valid(request));
                self.pending.insert(id, reply);
            }
            Command::Respond { handle, response } => {
                if self
                    .swarm
                    .behaviour_mut()
                    .rr
                    .send_response(handle.0, response)
                    .is_err()
                {
                    tracing::debug!("response not sent: the peer went away");
                }
            }
            Command::Publish {
                announcement,
                reply,
            } => {
                let topic = match announcement {
                    Announcement::Block(_) | Announcement::CompactBlock(_) => self.blocks.clone(),
                    Announcement::Tx(_) => self.txs.clone(),
                };
                let result = match self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, announcement.encode())
                {
                    Ok(_) | Err(gossipsub::PublishError::Duplicate) => Ok(()),
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                        tracing::debug!("nothing published: no peers yet");
                        Err(NetError::NotPublished("no peers on the topic yet".into()))
                    }
                    Err(e) => {
                        tracing::warn!("publish failed: {e}");
                        Err(NetError::NotPublished(e.to_string()))
                    }
                };
                let _ = reply.send(result);
            }
            Command::Validate { id, verdict } => {
                let acceptance = match verdict {
                    Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                    Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                    Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                };
                if verdict == Verdict::Accept {
                    if let Some(e) = self.table.get_mut(&id.source) {
                        let now = Some(Instant::now());
                        if id.block {
                            e.last_block = now;
                            if e.direction == Direction::Outbound {
                                e.served_blocks = true;
                            }
                        } else {
                            e.last_tx = now;
                        }
                    }
                }
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id.id, &id.source, acceptance);
            }
            Command::Ban { peer, duration } => {
                self.swarm.behaviour_mut().blocked.block_peer(peer);
                self.banned.insert(peer, Instant::now() + duration);
                self.book.remove(&peer);
                self.store.forget(&peer);
                tracing::warn!(%peer, secs = duration.as_secs(), "peer banned");
            }
            Command::Unban { peer } => {
                self.swarm.behaviour_mut().blocked.unblock_peer(peer);
                self.banned.remove(&peer);
            }
            Command::Dial { addr } => {
                if let Some((peer, base)) = split_peer(&addr) {
                    self.dial(peer, vec![base], Origin::Asked);
                }
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.table.peers().copied().collect());
            }
            Command::Metrics { reply } => {
                let mut text = String::new();
                if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry)
                {
                    tracing::warn!("cannot encode the metrics: {e}");
                }
                let _ = reply.send(text);
            }
            Command::Info { reply } => {
                let _ = reply.send(self.info(Instant::now()));
            }
            Command::Shutdown => {}
        }
    }

    pub(super) fn info(&self, now: Instant) -> NetInfo {
        NetInfo {
            listening: self
                .swarm
                .listeners()
                .map(|a| peer_address(a, self.local))
                .collect(),
            peers: self
                .table
                .iter()
                .filter_map(|(id, e)| match e.state {
                    crate::peers::State::Peer { since } => Some(PeerDetail {
                        id: *id,
                        address: e.address.clone(),
                        inbound: e.direction == Direction::Inbound,
                        connected_for: now.saturating_duration_since(since),
                        ping: e.rtt,
                    }),
                    _ => None,
                })
                .collect(),
            bans: self
                .banned
                .iter()
                .filter(|(_, until)| **until > now)
                .map(|(p, until)| (*p, until.saturating_duration_since(now)))
                .collect(),
            reachability: self.nat.reachability(),
            external: self
                .nat
                .confirmed()
                .map(|a| peer_address(a, self.local))
                .collect(),
            relayed: self.nat.reservation().filter(|r| r.accepted).map(|r| {
                r.address
                    .clone()
                    .with(libp2p::multiaddr::Protocol::P2p(self.local))
            }),
        }
    }
}
