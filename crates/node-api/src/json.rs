//! The JSON the API answers with, and how chain types become it. Hashes,
//! txids and work are strings (hex, decimal for work); amounts are whole
//! units as numbers; times are unix seconds.

use chain_core::block::BlockHeader;
use chain_core::validation::Coin;
use chain_core::{Address, Amount, BlockHash, OutPoint, PubkeyHash, Transaction};
use serde::Serialize;
use std::collections::HashMap;

/// The network's view: this node's id and addresses, its peers and bans.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NetSummary {
    /// This node's peer id.
    pub peer_id: String,
    /// The addresses it listens on.
    pub listening: Vec<String>,
    /// Whether peers can dial it: "public", "private" or "unknown".
    pub reachability: &'static str,
    /// Its addresses confirmed reachable from outside.
    pub external: Vec<String>,
    /// Its address through a relay, while it holds a reservation.
    pub relayed: Option<String>,
    /// Its peers.
    pub peers: Vec<PeerSummary>,
    /// The bans in force.
    pub bans: Vec<BanSummary>,
}

/// A peer.
#[derive(Clone, Debug, Serialize)]
pub struct PeerSummary {
    /// Its peer id.
    pub id: String,
    /// The address of the connection.
    pub address: String,
    /// "inbound" (it dialled) or "outbound".
    pub direction: &'static str,
    /// Seconds it has been a peer.
    pub connected_secs: u64,
    /// The last ping's round trip in milliseconds, once measured.
    pub ping_ms: Option<f64>,
}

/// A ban in force.
#[derive(Clone, Debug, Serialize)]
pub struct BanSummary {
    /// The banned peer's id.
    pub id: String,
    /// Seconds the ban has left.
    pub remaining_secs: u64,
}

#[derive(Serialize)]
pub(crate) struct TipJson {
    pub height: u32,
    pub hash: String,
    pub work: String,
    pub time: u64,
}

impl From<&chain_store::Tip> for TipJson {
    fn from(t: &chain_store::Tip) -> Self {
        TipJson {
            height: t.height,
            hash: t.hash.to_string(),
            work: t.work.to_string(),
            time: t.header.time,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct BlockSummary {
    pub id: String,
    pub height: u32,
    pub version: u32,
    pub timestamp: u64,
    pub tx_count: usize,
    pub size: usize,
    pub previousblockhash: Option<String>,
    pub merkle_root: String,
    pub bits: String,
    pub nonce: u64,
}

impl BlockSummary {
    pub fn new(hash: &BlockHash, h: &BlockHeader, tx_count: usize, size: usize) -> Self {
        BlockSummary {
            id: hash.to_string(),
            height: h.height,
            version: h.version,
            timestamp: h.time,
            tx_count,
            size,
            previousblockhash: (h.prev != BlockHash::ZERO).then(|| h.prev.to_string()),
            merkle_root: h.merkle_root.to_string(),
            bits: format!("{:08x}", h.bits.0),
            nonce: h.nonce,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct BlockJson {
    #[serde(flatten)]
    pub summary: BlockSummary,
    pub chain_work: String,
    pub in_best_chain: bool,
    /// Blocks on top of it and itself; 0 off the best chain.
    pub confirmations: u32,
    pub txids: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct TxStatus {
    pub confirmed: bool,
    pub in_mempool: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u32>,
}

impl TxStatus {
    pub fn mempool() -> Self {
        TxStatus {
            confirmed: false,
            in_mempool: true,
            block_height: None,
            block_hash: None,
            block_time: None,
            confirmations: None,
        }
    }

    pub fn confirmed(hash: &BlockHash, h: &BlockHeader, tip_height: u32) -> Self {
        TxStatus {
            confirmed: true,
            in_mempool: false,
            block_height: Some(h.height),
            block_hash: Some(hash.to_string()),
            block_time: Some(h.time),
            confirmations: Some(tip_height.saturating_sub(h.height) + 1),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct InputJson {
    pub txid: String,
    pub vout: u32,
    /// The address that signed: the one the spent coin paid.
    pub address: String,
    /// The spent coin's value, when known.
    pub value: Option<u64>,
}

#[derive(Serialize)]
pub(crate) struct OutputJson {
    pub value: u64,
    pub address: String,
}

#[derive(Serialize)]
pub(crate) struct TxJson {
    pub txid: String,
    pub version: u32,
    pub size: usize,
    pub coinbase: bool,
    /// Inputs' values less outputs', when every input's value is known.
    pub fee: Option<u64>,
    pub inputs: Vec<InputJson>,
    pub outputs: Vec<OutputJson>,
    pub status: TxStatus,
}

/// The address an output or input names.
pub(crate) fn address(pkh: PubkeyHash) -> String {
    Address::from_pubkey_hash(pkh).to_string()
}

impl TxJson {
    /// `values` holds the spent coins' values, where known.
    pub fn new(tx: &Transaction, values: &HashMap<OutPoint, Amount>, status: TxStatus) -> Self {
        let coinbase = tx.is_coinbase();
        let inputs: Vec<InputJson> = if coinbase {
            Vec::new()
        } else {
            tx.inputs
                .iter()
                .map(|i| InputJson {
                    txid: i.prevout.txid.to_string(),
                    vout: i.prevout.vout,
                    address: address(PubkeyHash::from_pubkey_bytes(&i.pubkey)),
                    value: values.get(&i.prevout).map(|a| a.0),
                })
                .collect()
        };
        let out_sum = Amount::checked_sum(tx.outputs.iter().map(|o| o.value));
        let in_sum: Option<Vec<u64>> = inputs.iter().map(|i| i.value).collect();
        let fee = match (coinbase, in_sum, out_sum) {
            (false, Some(v), Some(out)) => Amount::checked_sum(v.into_iter().map(Amount))
                .and_then(|i| i.checked_sub(out))
                .map(|a| a.0),
            _ => None,
        };
        TxJson {
            txid: tx.txid().to_string(),
            version: tx.version,
            size: tx.size(),
            coinbase,
            fee,
            inputs,
            outputs: tx
                .outputs
                .iter()
                .map(|o| OutputJson {
                    value: o.value.0,
                    address: address(o.pubkey_hash),
                })
                .collect(),
            status,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct UtxoJson {
    pub txid: String,
    pub vout: u32,
    pub value: u64,
    pub coinbase: bool,
    pub status: TxStatus,
}

impl UtxoJson {
    pub fn confirmed(op: &OutPoint, c: &Coin) -> Self {
        UtxoJson {
            txid: op.txid.to_string(),
            vout: op.vout,
            value: c.output.value.0,
            coinbase: c.is_coinbase,
            status: TxStatus {
                confirmed: true,
                in_mempool: false,
                block_height: Some(c.height),
                block_hash: None,
                block_time: None,
                confirmations: None,
            },
        }
    }
}
