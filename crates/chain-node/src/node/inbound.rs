//! Inbound requests: the one place that translates peers' requests into
//! the chain's typed reads and writes ([`crate::reads`], payments) and
//! their answers back into the wire's, with what a payment or a status
//! starts besides.

use super::peers::status_of;
use super::Node;
use crate::reads::{ReadError, ReadRequest, ReadResponse};
use crate::Network;
use chain_core::{BlockHash, Txid, UnminedTx};
use p2p_proto::{Announcement, BlockBytes, Request, Response, UtxoEntry};
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
            Request::SubmitTx(tx) => match self.submit_tx(UnminedTx::new(tx), Some(peer)).await {
                Submitted::Accepted(txid) => Response::TxAccepted { txid },
                Submitted::Refused(txid, reason) => Response::TxRejected {
                    txid,
                    reason: p2p_proto::clip_reason(reason),
                },
            },
            Request::GetBlockTxn { hash, indexes } => self.block_txn(hash, indexes).await,
            other => match to_read(other) {
                Some(read) => to_response(self.chain.read(read).await),
                None => Response::Error {
                    reason: "not a request this node answers".into(),
                },
            },
        }
    }
}

/// The chain read a peer's request asks for, with the wire's limits;
/// `None` for requests that are not reads.
pub(crate) fn to_read(request: Request) -> Option<ReadRequest> {
    Some(match request {
        Request::GetBlocks { locator, stop } => ReadRequest::HashesAfter {
            locator,
            stop,
            limit: p2p_proto::MAX_INV,
        },
        Request::GetHeaders { locator, stop } => ReadRequest::HeadersAfter {
            locator,
            stop,
            limit: p2p_proto::MAX_HEADERS,
        },
        Request::GetData { hashes } => ReadRequest::Blocks {
            hashes,
            max_count: p2p_proto::MAX_BLOCKS_PER_REPLY,
            max_bytes: p2p_proto::BLOCKS_REPLY_BUDGET,
        },
        Request::GetUtxos { pubkey_hash } => ReadRequest::Coins {
            pubkey_hash,
            limit: p2p_proto::MAX_UTXOS,
        },
        Request::Status(_) | Request::SubmitTx(_) | Request::GetBlockTxn { .. } => return None,
    })
}

/// The wire's answer to a chain read.
pub(crate) fn to_response(read: Result<ReadResponse, ReadError>) -> Response {
    match read {
        Ok(ReadResponse::Hashes(hashes)) => Response::Inv { hashes },
        Ok(ReadResponse::Headers(headers)) => Response::Headers { headers },
        Ok(ReadResponse::Blocks { blocks, not_found }) => Response::Blocks {
            blocks: blocks.into_iter().map(BlockBytes::new).collect(),
            not_found,
        },
        Ok(ReadResponse::Coins { height, coins }) => Response::Utxos {
            height,
            utxos: coins
                .into_iter()
                .map(|c| UtxoEntry {
                    outpoint: c.outpoint,
                    value: c.value,
                    confirmed_height: c.confirmed_height,
                    change: c.change,
                })
                .collect(),
        },
        Err(e) => Response::Error {
            reason: p2p_proto::clip_reason(e.to_string()),
        },
    }
}

impl<N: Network> Node<N> {
    /// The transactions at `indexes` (strictly ascending) of the stored
    /// block `hash`, for a peer finishing a compact block.
    async fn block_txn(self: &Arc<Self>, hash: BlockHash, indexes: Vec<u32>) -> Response {
        if indexes.windows(2).any(|w| w[0] >= w[1]) {
            return Response::Error {
                reason: "indexes must be strictly ascending".into(),
            };
        }
        let transactions = match self.rebuilt(&hash) {
            Some(block) => block.transactions.clone(),
            None => match self.stored_transactions(hash).await {
                Ok(txs) => txs,
                Err(answer) => return answer,
            },
        };
        match pick(transactions, &indexes) {
            Some(txs) => Response::BlockTxn { hash, txs },
            None => Response::Error {
                reason: format!("block {hash} has no transaction at one of those indexes"),
            },
        }
    }
}

impl<N: Network> Node<N> {
    /// The transactions of the stored block `hash`, or the answer saying
    /// why there are none.
    async fn stored_transactions(
        &self,
        hash: BlockHash,
    ) -> Result<Vec<chain_core::Transaction>, Response> {
        let read = self
            .chain
            .read(ReadRequest::Blocks {
                hashes: vec![hash],
                max_count: 1,
                max_bytes: chain_core::MAX_BLOCK_SIZE,
            })
            .await;
        let bytes = match read {
            Ok(ReadResponse::Blocks { mut blocks, .. }) if !blocks.is_empty() => {
                blocks.swap_remove(0)
            }
            Ok(_) => {
                return Err(Response::Error {
                    reason: format!("no block {hash}"),
                })
            }
            Err(e) => return Err(to_response(Err(e))),
        };
        chain_core::Block::decode(&bytes)
            .map(|b| b.transactions)
            .map_err(|_| Response::Error {
                reason: "the stored block does not decode".into(),
            })
    }
}

/// The transactions at `indexes` (ascending), or `None` if one is past the end.
fn pick(
    txs: Vec<chain_core::Transaction>,
    indexes: &[u32],
) -> Option<Vec<chain_core::Transaction>> {
    let mut wanted = indexes.iter().peekable();
    let mut out = Vec::with_capacity(indexes.len());
    for (i, tx) in txs.into_iter().enumerate() {
        if wanted.peek().is_some_and(|&&w| w as usize == i) {
            out.push(tx);
            wanted.next();
        }
    }
    wanted.peek().is_none().then_some(out)
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
    /// Offers a payment to the mempool (hashed once here, if it does not
    /// carry its txid already), as a peer's `SubmitTx` does
    /// (`from`: the peer, or `None` for this node's own clients, such as
    /// the HTTP API): relayed and maybe mined when taken.
    pub async fn submit_tx(
        self: &Arc<Self>,
        tx: impl Into<UnminedTx>,
        from: Option<N::Peer>,
    ) -> Submitted {
        let tx = tx.into();
        let txid = tx.txid();
        let relay = tx.tx().clone();
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
        Request::GetBlockTxn { .. } => "getblocktxn",
    }
}

/// The most memory answering `request` can take, in bytes.
pub(super) fn answer_cost(request: &Request) -> usize {
    match request {
        Request::GetData { .. } => p2p_proto::BLOCKS_REPLY_BUDGET + chain_core::MAX_BLOCK_SIZE,
        // The block read, decoded, and the transactions picked from it.
        Request::GetBlockTxn { .. } => 3 * chain_core::MAX_BLOCK_SIZE,
        // About 100 bytes per encoded header.
        Request::GetHeaders { .. } => p2p_proto::MAX_HEADERS * 100,
        Request::GetBlocks { .. } => p2p_proto::MAX_INV * 32,
        // About 50 bytes per coin.
        Request::GetUtxos { .. } => p2p_proto::MAX_UTXOS * 50,
        Request::SubmitTx(_) | Request::Status(_) => p2p_proto::MAX_REQUEST_SIZE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chain_core::{BlockHash, PubkeyHash};

    #[test]
    fn peers_reads_carry_the_wires_limits_and_other_requests_are_not_reads() {
        let got = to_read(Request::GetData {
            hashes: vec![BlockHash([1; 32])],
        });
        assert_eq!(
            got,
            Some(ReadRequest::Blocks {
                hashes: vec![BlockHash([1; 32])],
                max_count: p2p_proto::MAX_BLOCKS_PER_REPLY,
                max_bytes: p2p_proto::BLOCKS_REPLY_BUDGET,
            })
        );
        let got = to_read(Request::GetUtxos {
            pubkey_hash: PubkeyHash([2; 20]),
        });
        assert_eq!(
            got,
            Some(ReadRequest::Coins {
                pubkey_hash: PubkeyHash([2; 20]),
                limit: p2p_proto::MAX_UTXOS,
            })
        );
        let got = to_read(Request::GetHeaders {
            locator: vec![],
            stop: None,
        });
        assert!(matches!(
            got,
            Some(ReadRequest::HeadersAfter { limit, .. }) if limit == p2p_proto::MAX_HEADERS
        ));
        assert_eq!(
            to_read(Request::SubmitTx(chain_core::Transaction {
                version: 1,
                inputs: vec![],
                outputs: vec![],
            })),
            None
        );
    }

    #[test]
    fn block_txn_picks_by_position_and_refuses_one_past_the_end() {
        let tx = |v: u32| chain_core::Transaction {
            version: v,
            inputs: vec![],
            outputs: vec![],
        };
        let txs: Vec<_> = (0..5).map(tx).collect();
        let got = pick(txs.clone(), &[1, 3, 4]).unwrap();
        assert_eq!(got, vec![tx(1), tx(3), tx(4)]);
        assert_eq!(pick(txs.clone(), &[]), Some(vec![]));
        assert_eq!(pick(txs, &[2, 5]), None);
    }

    #[test]
    fn typed_answers_become_the_wires_and_errors_say_why() {
        let r = to_response(Ok(ReadResponse::Blocks {
            blocks: vec![vec![7; 3]],
            not_found: vec![BlockHash([1; 32])],
        }));
        assert_eq!(
            r,
            Response::Blocks {
                blocks: vec![BlockBytes::new(vec![7; 3])],
                not_found: vec![BlockHash([1; 32])],
            }
        );
        let r = to_response(Err(ReadError::NoChain));
        assert_eq!(
            r,
            Response::Error {
                reason: "this node has no chain yet".into()
            }
        );
    }
}
