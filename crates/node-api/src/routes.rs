//! The endpoints. `docs/api.md` lists each with an example answer.

use crate::error::{json_error, ApiError};
use crate::json::*;
use crate::server::{count, deadline, App};
use crate::{explorer, NetView};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chain_core::validation::Coin;
use chain_core::{Address, Amount, BlockHash, OutPoint, PubkeyHash, Transaction, Txid};
use chain_node::pool_reads::{PoolRequest, PoolResponse};
use chain_node::{ChainEvent, Network, Submitted};
use chain_store::StoreReader;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

type Shared<N, V> = State<Arc<App<N, V>>>;
type ApiResult<T> = Result<T, ApiError>;

/// Block summaries one `/api/blocks` page holds at most.
pub const MAX_BLOCKS_PAGE: u32 = 100;
/// Confirmed transactions per `/api/address/:addr/txs` page.
pub const TXS_PAGE: usize = 25;
/// Mempool transactions on an address's first page at most.
pub const MEMPOOL_TXS_PAGE: usize = 50;
/// Txids one `/api/mempool/txids` page holds by default, and at most.
pub const TXIDS_PAGE: usize = 1_000;
/// The largest `/api/mempool/txids` page.
pub const MAX_TXIDS_PAGE: usize = 10_000;
/// Coins `/api/address/:addr/utxo` lists at most, newest first.
pub const MAX_UTXOS: usize = 1000;
/// The largest `POST /api/tx` body: a transaction of the largest size, in hex.
pub const MAX_TX_BODY: usize = 2 * chain_core::transaction::MAX_TX_SIZE + 2;

pub(crate) fn router<N: Network, V: NetView>(app: Arc<App<N, V>>) -> Router {
    let timed = Router::new()
        .route("/api/status", get(status::<N, V>))
        .route("/api/blocks", get(blocks::<N, V>))
        .route("/api/blocks/tip/height", get(tip_height::<N, V>))
        .route("/api/blocks/tip/hash", get(tip_hash::<N, V>))
        .route("/api/block/{hash}", get(block::<N, V>))
        .route("/api/block/{hash}/raw", get(block_raw::<N, V>))
        .route("/api/block-height/{height}", get(block_height::<N, V>))
        .route("/api/tx", axum::routing::post(post_tx::<N, V>))
        .route("/api/tx/{txid}", get(tx::<N, V>))
        .route("/api/tx/{txid}/raw", get(tx_raw::<N, V>))
        .route("/api/address/{addr}", get(address_info::<N, V>))
        .route("/api/address/{addr}/utxo", get(address_utxo::<N, V>))
        .route("/api/address/{addr}/txs", get(address_txs::<N, V>))
        .route("/api/mempool", get(mempool::<N, V>))
        .route("/api/mempool/txids", get(mempool_txids::<N, V>))
        .route("/api/peers", get(peers::<N, V>))
        .route("/metrics", get(metrics::<N, V>))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            deadline::<N, V>,
        ));
    Router::new()
        .merge(timed)
        .route("/api/events", get(events::<N, V>))
        .route("/healthz", get(crate::health::healthz::<N, V>))
        .route("/readyz", get(crate::health::readyz::<N, V>))
        .merge(explorer::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            count::<N, V>,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::guard::check_host::<N, V>,
        ))
        .with_state(app)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        &format!("no such endpoint: {} (see docs/api.md)", uri.path()),
    )
}

fn parse_hash<T: std::str::FromStr>(text: &str, what: &str) -> ApiResult<T> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::BadRequest(format!(
            "'{}' is not a {what}: expected 64 hex digits",
            clip(text)
        )));
    }
    text.parse()
        .map_err(|_| ApiError::BadRequest(format!("'{}' is not a {what}", clip(text))))
}

fn parse_height(text: &str) -> ApiResult<u32> {
    text.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "'{}' is not a block height: expected a whole number from 0 to {}",
            clip(text),
            u32::MAX
        ))
    })
}

fn parse_address(text: &str) -> ApiResult<PubkeyHash> {
    Address::parse(text)
        .map(|a| a.pubkey_hash())
        .map_err(|e| ApiError::BadRequest(format!("'{}' is not an address: {e}", clip(text))))
}

/// A page's `limit` parameter: `default` when absent, else 1 to `max`.
fn page_limit<T>(q: &HashMap<String, String>, default: T, max: T) -> ApiResult<T>
where
    T: std::str::FromStr + PartialOrd + From<u8> + std::fmt::Display + Copy,
{
    let Some(l) = q.get("limit") else {
        return Ok(default);
    };
    match l.parse::<T>() {
        Ok(n) if n >= T::from(1) && n <= max => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "limit '{}' must be a whole number from 1 to {max}",
            clip(l)
        ))),
    }
}

/// Echoes at most 100 characters of a client's input.
fn clip(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

fn reader<N: Network, V: NetView>(app: &App<N, V>) -> ApiResult<StoreReader> {
    app.node
        .chain()
        .reader()
        .ok_or_else(|| ApiError::Unavailable("this node has no chain yet".into()))
}

fn tip_of<N: Network, V: NetView>(app: &App<N, V>) -> ApiResult<chain_store::Tip> {
    app.node
        .chain()
        .view()
        .map(|v| v.tip)
        .ok_or_else(|| ApiError::Unavailable("this node has no chain yet".into()))
}

/// Runs store reads on a blocking thread of the server's runtime.
async fn blocking<T: Send + 'static>(
    r: StoreReader,
    f: impl FnOnce(&StoreReader) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(move || f(&r))
        .await
        .map_err(|e| ApiError::Internal(format!("the read failed: {e}")))?
}

fn stopping() -> ApiError {
    ApiError::Unavailable("the node is stopping".into())
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn octets(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}

async fn status<N: Network, V: NetView>(State(app): Shared<N, V>) -> ApiResult<Json<Value>> {
    let view = app.node.chain().view();
    let net = app.net_info().await.unwrap_or_default();
    let sync = app.node.sync_progress();
    let (state, height, target) = match (view, sync) {
        (None, _) => ("waiting for a chain", 0, 0),
        (Some(v), Some(p)) if !p.done => ("syncing", v.tip.height, p.target.max(v.tip.height)),
        (Some(v), _) => ("synced", v.tip.height, v.tip.height),
    };
    let progress = if target == 0 {
        f64::from(u8::from(view.is_some()))
    } else {
        f64::from(height) / f64::from(target)
    };
    Ok(Json(json!({
        "peer_id": net.peer_id,
        "listening": net.listening,
        "reachability": {
            "state": net.reachability,
            "external": net.external,
            "relayed": net.relayed,
        },
        "agent": app.node.agent(),
        "genesis": view.map(|v| v.genesis.to_string()),
        "tip": view.map(|v| TipJson::from(&v.tip)),
        "sync": { "state": state, "height": height, "target": target, "progress": progress },
        "mempool": {
            "count": view.map(|v| v.mempool_len).unwrap_or(0),
            "bytes": view.map(|v| v.mempool_bytes).unwrap_or(0),
        },
        "peer_count": net.peers.len(),
    })))
}

async fn tip_height<N: Network, V: NetView>(State(app): Shared<N, V>) -> ApiResult<Response> {
    Ok(text(tip_of(&app)?.height.to_string()))
}

async fn tip_hash<N: Network, V: NetView>(State(app): Shared<N, V>) -> ApiResult<Response> {
    Ok(text(tip_of(&app)?.hash.to_string()))
}

fn summary_at(r: &StoreReader, hash: &BlockHash) -> ApiResult<Option<BlockSummary>> {
    let Some(bytes) = r.block_bytes(hash)? else {
        return Ok(None);
    };
    let block = chain_core::Block::decode(&bytes)
        .map_err(|e| ApiError::Internal(format!("stored block {hash} does not decode: {e}")))?;
    Ok(Some(BlockSummary::new(
        hash,
        &block.header,
        block.transactions.len(),
        bytes.len(),
    )))
}

async fn blocks<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<BlockSummary>>> {
    let tip = tip_of(&app)?;
    let start = match q.get("start_height") {
        Some(h) => parse_height(h)?.min(tip.height),
        None => tip.height,
    };
    let limit = page_limit(&q, 10, MAX_BLOCKS_PAGE)?;
    let r = reader(&app)?;
    let list = blocking(r, move |r| {
        let mut out = Vec::new();
        let lowest = start.saturating_sub(limit - 1);
        for h in (lowest..=start).rev() {
            // A reorganisation may shorten the chain under the read.
            let Some(hash) = r.hash_at(h)? else { continue };
            if let Some(s) = summary_at(r, &hash)? {
                out.push(s);
            }
        }
        Ok(out)
    })
    .await?;
    Ok(Json(list))
}

async fn block<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    Path(hash): Path<String>,
) -> ApiResult<Json<BlockJson>> {
    let hash: BlockHash = parse_hash(&hash, "block hash")?;
    let tip = tip_of(&app)?;
    let r = reader(&app)?;
    blocking(r, move |r| {
        let (Some(entry), Some(block)) = (r.header_entry(&hash)?, r.checked_block(&hash)?) else {
            return Err(ApiError::NotFound(format!(
                "block {hash} is not known to this node"
            )));
        };
        let best = r.hash_at(entry.header.height)? == Some(hash);
        Ok(Json(BlockJson {
            summary: BlockSummary::new(
                &hash,
                &entry.header,
                block.block().transactions.len(),
                block.bytes().len(),
            ),
            chain_work: entry.chain_work.to_string(),
            in_best_chain: best,
            confirmations: if best {
                tip.height.saturating_sub(entry.header.height) + 1
            } else {
                0
            },
            txids: block.txids().iter().map(|t| t.to_string()).collect(),
        }))
    })
    .await
}

async fn block_raw<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    Path(hash): Path<String>,
) -> ApiResult<Response> {
    let hash: BlockHash = parse_hash(&hash, "block hash")?;
    let r = reader(&app)?;
    let bytes = blocking(r, move |r| Ok(r.block_bytes(&hash)?)).await?;
    bytes
        .map(octets)
        .ok_or_else(|| ApiError::NotFound(format!("block {hash} is not known to this node")))
}

async fn block_height<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    Path(height): Path<String>,
) -> ApiResult<Response> {
    let height = parse_height(&height)?;
    let r = reader(&app)?;
    let hash = blocking(r, move |r| Ok(r.hash_at(height)?)).await?;
    hash.map(|h| text(h.to_string())).ok_or_else(|| {
        ApiError::NotFound(format!("the best chain has no block at height {height}"))
    })
}

/// A mempool transaction with the values of the coins it spends.
type PoolTx = (Transaction, HashMap<OutPoint, Amount>);

async fn pool_tx<N: Network, V: NetView>(app: &App<N, V>, txid: Txid) -> ApiResult<Option<PoolTx>> {
    let answer = app
        .node
        .chain()
        .pool(PoolRequest::Tx(txid))
        .await
        .ok_or_else(stopping)?;
    let PoolResponse::Tx(Some((tx, from_pool))) = answer else {
        return Ok(None);
    };
    // Coins of the chain are read from the store, off the chain actor.
    let reader = app.node.chain().reader();
    tokio::task::spawn_blocking(move || {
        let values = tx
            .inputs
            .iter()
            .zip(from_pool)
            .filter_map(|(i, out)| {
                let out = out.or_else(|| {
                    reader
                        .as_ref()?
                        .coin(&i.prevout)
                        .ok()
                        .flatten()
                        .map(|c| c.output)
                })?;
                Some((i.prevout, out.value))
            })
            .collect();
        Some((tx, values))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("the read failed: {e}")))
}

/// A confirmed transaction as JSON, with its inputs' values from the
/// block's undo data.
fn confirmed_tx(r: &StoreReader, txid: &Txid, tip_height: u32) -> ApiResult<Option<TxJson>> {
    let Some((hash, _, _, tx)) = r.find_transaction(txid)? else {
        return Ok(None);
    };
    let entry = r
        .header_entry(&hash)?
        .ok_or_else(|| ApiError::Internal(format!("block {hash} has no header entry")))?;
    let mut values: HashMap<OutPoint, Amount> = r
        .spent_coins(&hash)?
        .unwrap_or_default()
        .into_iter()
        .map(|(op, c)| (op, c.output.value))
        .collect();
    // A coin created earlier in the same block is not in its undo data:
    // the block is read once for all such inputs.
    let missing: Vec<OutPoint> = tx
        .inputs
        .iter()
        .map(|i| i.prevout)
        .filter(|op| !values.contains_key(op) && !tx.is_coinbase())
        .collect();
    if !missing.is_empty() {
        if let Some(block) = r.checked_block(&hash)? {
            let by_txid: HashMap<&Txid, &chain_core::Transaction> =
                block.txids().iter().zip(&block.transactions).collect();
            for op in missing {
                let out = by_txid
                    .get(&op.txid)
                    .and_then(|p| p.outputs.get(op.vout as usize));
                if let Some(o) = out {
                    values.insert(op, o.value);
                }
            }
        }
    }
    Ok(Some(TxJson::new(
        &tx,
        &values,
        TxStatus::confirmed(&hash, &entry.header, tip_height),
    )))
}

async fn tx<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    Path(txid): Path<String>,
) -> ApiResult<Json<TxJson>> {
    let txid: Txid = parse_hash(&txid, "txid")?;
    if let Some((tx, values)) = pool_tx(&app, txid).await? {
        return Ok(Json(TxJson::new(&tx, &values, TxStatus::mempool())));
    }
    let tip = tip_of(&app)?;
    let r = reader(&app)?;
    blocking(r, move |r| confirmed_tx(r, &txid, tip.height))
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "transaction {txid} is neither in the best chain nor in the mempool"
            ))
        })
}

async fn tx_raw<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    Path(txid): Path<String>,
) -> ApiResult<Response> {
    let txid: Txid = parse_hash(&txid, "txid")?;
    if let Some((tx, _)) = pool_tx(&app, txid).await? {
        return Ok(octets(tx.encode()));
    }
    let r = reader(&app)?;
    blocking(r, move |r| Ok(r.find_transaction(&txid)?))
        .await?
        .map(|(_, _, _, tx)| octets(tx.encode()))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "transaction {txid} is neither in the best chain nor in the mempool"
            ))
        })
}

async fn post_tx<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    body: Body,
) -> ApiResult<Response> {
    let bytes = axum::body::to_bytes(body, MAX_TX_BODY).await.map_err(|_| {
        ApiError::TooLarge(format!(
            "the body is over {MAX_TX_BODY} bytes: a transaction is at most {} bytes, so {MAX_TX_BODY} hex digits",
            chain_core::transaction::MAX_TX_SIZE
        ))
    })?;
    let hex_text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::BadRequest("the body must be the transaction in hex".into()))?
        .trim();
    if hex_text.is_empty() {
        return Err(ApiError::BadRequest(
            "the body is empty: send the raw transaction in hex".into(),
        ));
    }
    let raw = hex::decode(hex_text)
        .map_err(|e| ApiError::BadRequest(format!("the body is not hex: {e}")))?;
    let tx = Transaction::decode(&raw)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a transaction: {e}")))?;
    let node = app.node.clone();
    let answer = app
        .node_rt
        .spawn(async move { node.submit_tx(tx, None).await })
        .await
        .map_err(|_| stopping())?;
    match answer {
        Submitted::Accepted(txid) => Ok(text(txid.to_string())),
        Submitted::Refused(_, reason) if reason.starts_with("NoChain") => {
            Err(ApiError::Unavailable(reason))
        }
        Submitted::Refused(_, reason) => Err(ApiError::BadRequest(format!(
            "the mempool refused the transaction: {reason}"
        ))),
    }
}

/// An address's coins after the mempool, and its mempool transactions.
struct AddressView {
    confirmed: Vec<(OutPoint, Coin)>,
    /// Confirmed coins the mempool spends.
    spent: HashSet<OutPoint>,
    /// Mempool outputs paying it, unspent in the mempool.
    pending: Vec<(OutPoint, Amount)>,
    /// Mempool transactions paying or spending from it, newest first.
    pool_txids: Vec<Txid>,
}

async fn address_view<N: Network, V: NetView>(
    app: &App<N, V>,
    pkh: PubkeyHash,
) -> ApiResult<AddressView> {
    let r = reader(app)?;
    let confirmed = blocking(r, move |r| Ok(r.utxos_for(&pkh)?)).await?;
    let answer = app.node.chain().pool(PoolRequest::Address(pkh)).await;
    let view = answer.map(|a| {
        let PoolResponse::Address(a) = a else {
            return AddressView {
                confirmed,
                spent: HashSet::new(),
                pending: Vec::new(),
                pool_txids: Vec::new(),
            };
        };
        AddressView {
            confirmed,
            spent: a.spent.into_iter().collect(),
            pending: a.pending,
            pool_txids: a.txids,
        }
    });
    view.ok_or_else(stopping)
}

fn sum(values: impl Iterator<Item = Amount>) -> u64 {
    Amount::checked_sum(values).map(|a| a.0).unwrap_or(u64::MAX)
}

async fn address_info<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    Path(addr): Path<String>,
) -> ApiResult<Json<Value>> {
    let pkh = parse_address(&addr)?;
    let v = address_view(&app, pkh).await?;
    let r = reader(&app)?;
    let tx_count = blocking(r, move |r| Ok(r.history_len(&pkh)?)).await?;
    let confirmed = sum(v.confirmed.iter().map(|c| c.1.output.value));
    let unconfirmed = sum(v
        .confirmed
        .iter()
        .filter(|c| !v.spent.contains(&c.0))
        .map(|c| c.1.output.value)
        .chain(v.pending.iter().map(|p| p.1)));
    Ok(Json(json!({
        "address": address(pkh),
        "confirmed_balance": confirmed,
        "unconfirmed_balance": unconfirmed,
        "tx_count": tx_count,
        "mempool_tx_count": v.pool_txids.len(),
        "utxo_count": v.confirmed.len(),
    })))
}

async fn address_utxo<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    Path(addr): Path<String>,
) -> ApiResult<Json<Vec<UtxoJson>>> {
    let pkh = parse_address(&addr)?;
    let v = address_view(&app, pkh).await?;
    let mut list: Vec<UtxoJson> = v
        .pending
        .iter()
        .map(|(op, value)| UtxoJson {
            txid: op.txid.to_string(),
            vout: op.vout,
            value: value.0,
            coinbase: false,
            status: TxStatus::mempool(),
        })
        .collect();
    let mut confirmed: Vec<&(OutPoint, Coin)> = v
        .confirmed
        .iter()
        .filter(|c| !v.spent.contains(&c.0))
        .collect();
    confirmed.sort_by_key(|c| std::cmp::Reverse(c.1.height));
    list.extend(
        confirmed
            .into_iter()
            .map(|(op, c)| UtxoJson::confirmed(op, c)),
    );
    list.truncate(MAX_UTXOS);
    Ok(Json(list))
}

async fn address_txs<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    Path(addr): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<TxJson>>> {
    let pkh = parse_address(&addr)?;
    let after: Option<Txid> = q
        .get("after_txid")
        .map(|t| parse_hash(t, "txid (after_txid)"))
        .transpose()?;
    let mut out = Vec::new();
    if after.is_none() {
        let v = address_view(&app, pkh).await?;
        for txid in v.pool_txids.into_iter().take(MEMPOOL_TXS_PAGE) {
            if let Some((tx, values)) = pool_tx(&app, txid).await? {
                out.push(TxJson::new(&tx, &values, TxStatus::mempool()));
            }
        }
    }
    let tip = tip_of(&app)?;
    let r = reader(&app)?;
    let confirmed = blocking(r, move |r| {
        let before = match after {
            None => None,
            Some(t) => match r.find_transaction(&t)? {
                Some((_, height, pos, _)) => Some((height, pos)),
                None => {
                    return Err(ApiError::BadRequest(format!(
                        "after_txid {t} is not a transaction of the best chain"
                    )))
                }
            },
        };
        let mut list = Vec::new();
        for (_, _, txid) in r.history(&pkh, before, TXS_PAGE)? {
            if let Some(t) = confirmed_tx(r, &txid, tip.height)? {
                list.push(t);
            }
        }
        Ok(list)
    })
    .await?;
    out.extend(confirmed);
    Ok(Json(out))
}

async fn mempool<N: Network, V: NetView>(State(app): Shared<N, V>) -> ApiResult<Json<Value>> {
    let Some(PoolResponse::Summary(summary)) = app.node.chain().pool(PoolRequest::Summary).await
    else {
        return Err(stopping());
    };
    let (count, bytes, fees, bands) = (
        summary.count,
        summary.bytes,
        summary.total_fee.0,
        summary.bands,
    );
    let histogram: Vec<Value> = bands
        .iter()
        .rev()
        .filter(|b| b.count > 0)
        .map(|b| json!({ "min_fee_rate": b.min_rate, "count": b.count, "bytes": b.bytes }))
        .collect();
    Ok(Json(json!({
        "count": count,
        "bytes": bytes,
        "total_fee": fees,
        "fee_histogram": histogram,
    })))
}

async fn mempool_txids<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<String>>> {
    let after: Option<Txid> = q
        .get("after_txid")
        .map(|t| parse_hash(t, "txid"))
        .transpose()?;
    let limit = page_limit(&q, TXIDS_PAGE, MAX_TXIDS_PAGE)?;
    let Some(PoolResponse::Page(page)) = app
        .node
        .chain()
        .pool(PoolRequest::Page { after, limit })
        .await
    else {
        return Err(stopping());
    };
    let list = page.ok_or_else(|| {
        ApiError::NotFound(format!(
            "transaction {} is no longer in the mempool; start again without after_txid",
            after.map(|t| t.to_string()).unwrap_or_default()
        ))
    })?;
    Ok(Json(list.iter().map(|t| t.to_string()).collect()))
}

async fn peers<N: Network, V: NetView>(State(app): Shared<N, V>) -> ApiResult<Json<Value>> {
    let net = app.net_info().await.ok_or_else(stopping)?;
    let statuses: HashMap<String, chain_node::PeerChain> = app
        .node
        .peer_chains()
        .into_iter()
        .filter_map(|(p, s)| Some((p.to_string(), s?)))
        .collect();
    let peers: Vec<Value> = net
        .peers
        .iter()
        .map(|p| {
            let s = statuses.get(&p.id);
            json!({
                "id": p.id,
                "address": p.address,
                "direction": p.direction,
                "connected_secs": p.connected_secs,
                "ping_ms": p.ping_ms,
                "height": s.map(|s| s.height),
                "tip": s.map(|s| s.tip.to_string()),
                "agent": s.map(|s| s.agent.clone()),
            })
        })
        .collect();
    Ok(Json(json!({ "peers": peers, "bans": net.bans })))
}

/// OpenMetrics to a client that asks for it (Prometheus does), else
/// Prometheus' text format.
async fn metrics<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    headers: axum::http::HeaderMap,
) -> Response {
    let net = app.net_metrics.get(|| app.net.metrics()).await;
    if let Some(info) = app.net_info().await {
        app.metrics
            .set_peers(info.peers.iter().map(|p| p.direction));
    }
    let page = app.metrics.render(app.node.chain().view(), net);
    let open = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if open {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            page,
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            crate::metrics::to_prometheus_text(&page),
        )
            .into_response()
    }
}

/// The event stream: `tip` for each move of the best tip (with the depth
/// of the reorganisation, 0 when none), `reorg` besides when blocks were
/// disconnected, `tx` for each transaction the mempool takes, `lagged`
/// when this client fell behind and missed some.
async fn events<N: Network, V: NetView>(
    State(app): Shared<N, V>,
    peer: Option<axum::Extension<crate::guard::PeerIp>>,
) -> Response {
    let ip = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0 .0);
    let slot = match app.streams.take(ip) {
        Ok(s) => s,
        Err(why) => {
            let mut r = json_error(StatusCode::SERVICE_UNAVAILABLE, &why);
            // The connection goes too: it is not kept idle for another try.
            r.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return r;
        }
    };
    let rx = app.node.chain().events();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let events: Vec<Event> = match rx.recv().await {
            Ok(ChainEvent::Tip { tip, disconnected }) => {
                let data = json!({
                    "height": tip.height,
                    "hash": tip.hash.to_string(),
                    "time": tip.header.time,
                    "reorg_depth": disconnected,
                });
                let mut v = vec![Event::default().event("tip").data(data.to_string())];
                if disconnected > 0 {
                    v.push(Event::default().event("reorg").data(data.to_string()));
                }
                v
            }
            Ok(ChainEvent::TxAccepted(txid)) => vec![Event::default()
                .event("tx")
                .data(json!({ "txid": txid.to_string() }).to_string())],
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => vec![Event::default()
                .event("lagged")
                .data(json!({ "missed": n }).to_string())],
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((
            futures::stream::iter(events.into_iter().map(Ok::<_, std::convert::Infallible>)),
            rx,
        ))
    });
    use futures::StreamExt;
    // The slot is held as long as the stream, which ends after its lifetime.
    let stream = stream
        .flatten()
        .take_until(tokio::time::sleep(app.stream_lifetime))
        .map(move |e| {
            let _held = &slot;
            e
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
