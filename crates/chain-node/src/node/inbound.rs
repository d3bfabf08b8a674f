//! Inbound requests: answered from the chain actor, with what a payment
//! or a status starts besides.

use super::peers::status_of;
use super::Node;
use crate::Network;
use chain_core::{Transaction, Txid};
use p2p_proto::{Announcement, Request, Response};
use std::sync::Arc;

impl<N: Network> Node<N> {
    /// Answers a peer's request.
    pub(super) async fn answer(self: &Arc<Self>, peer: N::Peer, request: Request) -> Response {
        let kind = request_kind(&request);
        let response = self.answer_inner(peer, request).await;
        let ok = !matches!(
            response,
            Response::Error { .. } | Response::TxRejected { .. }
        );
        self.chain.metrics().on_request(kind, ok);
        response
    }

    async fn answer_inner(self: &Arc<Self>, peer: N::Peer, request: Request) -> Response {
        match request {
            Request::Status(theirs) => {
                let ours = self.chain.view().map(|v| status_of(Some(v), &self.agent));
                let me = self.clone();
                tokio::spawn(async move { me.on_status(peer, theirs).await });
                ours.map(Response::Status)
                    .unwrap_or_else(|| Response::Error {
                        reason: "this node has no chain yet".into(),
                    })
            }
            Request::SubmitTx(tx) => match self.submit_tx(tx, Some(peer)).await {
                Submitted::Accepted(txid) => Response::TxAccepted { txid },
                Submitted::Refused(txid, reason) => Response::TxRejected {
                    txid,
                    reason: p2p_proto::clip_reason(reason),
                },
            },
            other => self.chain.answer(other).await,
        }
    }
}

/// What became of a submitted payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// In the mempool, relayed.
    Accepted(Txid),
    /// Refused, with the mempool's reason (its rule's name first).
    Refused(Txid, String),
}

impl<N: Network> Node<N> {
    /// Offers a payment to the mempool, as a peer's `SubmitTx` does
    /// (`from`: the peer, or `None` for this node's own clients, such as
    /// the HTTP API): relayed and maybe mined when taken.
    pub async fn submit_tx(self: &Arc<Self>, tx: Transaction, from: Option<N::Peer>) -> Submitted {
        let txid = tx.txid();
        let relay = tx.clone();
        let outcome = self.chain.accept_tx(tx, from).await;
        let who = from.map_or_else(|| "a local client".to_string(), |p| p.to_string());
        let who = who.as_str();
        match outcome.refused {
            None => {
                let pool = self.chain.view().map(|v| v.mempool_len).unwrap_or(0);
                tracing::info!(%txid, from = who, pool, "transaction submitted");
                self.net.publish(Announcement::Tx(relay)).await;
                self.clone().maybe_mine().await;
                Submitted::Accepted(txid)
            }
            Some(reason) => {
                tracing::info!(%txid, from = who, "refused a submitted transaction: {reason}");
                Submitted::Refused(txid, reason)
            }
        }
    }
}

/// The metrics' name for a kind of request.
fn request_kind(request: &Request) -> &'static str {
    match request {
        Request::Status(_) => "status",
        Request::GetBlocks { .. } => "getblocks",
        Request::GetData { .. } => "getdata",
        Request::SubmitTx(_) => "tx",
        Request::GetUtxos { .. } => "getutxos",
        Request::GetHeaders { .. } => "getheaders",
    }
}

/// The most memory answering `request` can take, in bytes.
pub(super) fn answer_cost(request: &Request) -> usize {
    match request {
        Request::GetData { .. } => p2p_proto::BLOCKS_REPLY_BUDGET + chain_core::MAX_BLOCK_SIZE,
        // About 100 bytes per encoded header.
        Request::GetHeaders { .. } => p2p_proto::MAX_HEADERS * 100,
        Request::GetBlocks { .. } => p2p_proto::MAX_INV * 32,
        // About 50 bytes per coin.
        Request::GetUtxos { .. } => p2p_proto::MAX_UTXOS * 50,
        Request::SubmitTx(_) | Request::Status(_) => p2p_proto::MAX_REQUEST_SIZE,
    }
}
