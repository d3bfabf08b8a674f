//! Answers to peers' chain reads (`GetBlocks`, `GetHeaders`, `GetData`,
//! the confirmed half of `GetUtxos`), served from the store's reader on a
//! blocking thread, never on the chain actor's: a flood of reads does not
//! hold up blocks, sync or payments. Each answer is bounded in what it
//! reads: hashes and headers by the reply's cap, blocks by the reply's
//! count and byte budget (a block not validated in full is not read at
//! all), coins by the reply's cap.

use chain_core::{OutPoint, PubkeyHash};
use chain_store::StoreReader;
use p2p_proto::{BlockBytes, Request, Response, UtxoEntry};
use std::collections::HashSet;

/// The pool's part of a `GetUtxos` answer, from the chain actor: the
/// address's coins that pool transactions spend, and the pool's unspent
/// outputs paying it.
#[derive(Clone, Debug, Default)]
pub struct PoolCoins {
    /// Confirmed coins the pool spends: left out of the answer.
    pub spent: HashSet<OutPoint>,
    /// Unconfirmed outputs paying the address.
    pub unconfirmed: Vec<UtxoEntry>,
}

fn error(e: impl ToString) -> Response {
    Response::Error {
        reason: p2p_proto::clip_reason(e.to_string()),
    }
}

/// Answers a read from the store; `None` for requests that are not reads.
pub fn answer_read(r: &StoreReader, request: &Request) -> Option<Response> {
    Some(match request {
        Request::GetBlocks { locator, stop } => {
            match r.hashes_after(locator, *stop, p2p_proto::MAX_INV) {
                Ok(hashes) => Response::Inv { hashes },
                Err(e) => error(e),
            }
        }
        Request::GetHeaders { locator, stop } => {
            match r.headers_after(locator, *stop, p2p_proto::MAX_HEADERS) {
                Ok(headers) => Response::Headers { headers },
                Err(e) => error(e),
            }
        }
        Request::GetData { hashes } => {
            let mut blocks = Vec::new();
            let mut not_found = Vec::new();
            let mut bytes = 0usize;
            for h in hashes {
                if blocks.len() >= p2p_proto::MAX_BLOCKS_PER_REPLY
                    || bytes >= p2p_proto::BLOCKS_REPLY_BUDGET
                {
                    break;
                }
                // Served as stored: the bytes are what was checked.
                match r.valid_block_bytes(h).ok().flatten().map(BlockBytes::new) {
                    Some(b) => {
                        bytes += b.len();
                        blocks.push(b);
                    }
                    None => not_found.push(*h),
                }
            }
            Response::Blocks { blocks, not_found }
        }
        _ => return None,
    })
}

/// A `GetUtxos` answer: the pool's unconfirmed outputs first, then
/// confirmed coins the pool does not spend, up to the reply's cap; the read
/// of confirmed coins stops there.
pub fn utxos(r: &StoreReader, pkh: &PubkeyHash, pool: PoolCoins) -> Response {
    let height = match r.tip() {
        Ok((_, h)) => h,
        Err(e) => return error(e),
    };
    let mut utxos = pool.unconfirmed;
    utxos.truncate(p2p_proto::MAX_UTXOS);
    let room = p2p_proto::MAX_UTXOS - utxos.len();
    let confirmed = match r.utxos_for_at_most(pkh, room, |op| pool.spent.contains(op)) {
        Ok(c) => c,
        Err(e) => return error(e),
    };
    let confirmed = confirmed.into_iter().map(|(op, c)| UtxoEntry {
        outpoint: op,
        value: c.output.value,
        confirmed_height: Some(c.height),
        change: false,
    });
    // Confirmed coins first, as wallets expect them.
    let mut all: Vec<UtxoEntry> = confirmed.collect();
    all.append(&mut utxos);
    Response::Utxos { height, utxos: all }
}
