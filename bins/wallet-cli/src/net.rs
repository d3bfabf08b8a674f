//! Talking to a node: balances and payments through a short-lived libp2p host.

use anyhow::{bail, Context, Result};
use chain_core::{Address, Amount};
use p2p_net::Multiaddr;
use p2p_proto::{Request, Response, UtxoEntry};
use serde_json::json;
use std::time::Duration;
use wallet::{Spendable, WalletKey};

/// How long to wait for a connection before calling the peer unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn parse_peer(peer: &str) -> Result<Multiaddr> {
    let addr: Multiaddr = peer.parse().with_context(|| format!("--peer '{peer}' is not a multiaddress (for example /ip4/127.0.0.1/tcp/3000/p2p/12D3KooW...)"))?;
    if p2p_net::split_peer(&addr).is_none() {
        bail!("--peer {addr} does not end with /p2p/<peer id>; copy the full address the node printed when it started");
    }
    Ok(addr)
}

fn ask(rt: &tokio::runtime::Runtime, addr: &Multiaddr, req: Request) -> Result<Response> {
    let resp = rt.block_on(p2p_net::request_once(addr, req, CONNECT_TIMEOUT))?;
    if let Response::Error { reason } = &resp {
        bail!("the node at {addr} answered: {reason}");
    }
    Ok(resp)
}

fn utxos(
    rt: &tokio::runtime::Runtime,
    addr: &Multiaddr,
    who: &Address,
) -> Result<(u32, Vec<UtxoEntry>)> {
    match ask(
        rt,
        addr,
        Request::GetUtxos {
            pubkey_hash: who.pubkey_hash(),
        },
    )? {
        Response::Utxos { height, utxos } => Ok((height, utxos)),
        other => bail!("unexpected answer from {addr}: {other:?}"),
    }
}

/// The balance of `who` as the node at `peer` sees it: confirmed coins not
/// spent in its mempool, and unconfirmed coins, apart; and its height.
pub fn balance(peer: &str, who: &Address) -> Result<(Amount, Amount, Option<u32>)> {
    let addr = parse_peer(peer)?;
    let rt = runtime()?;
    let (height, list) = utxos(&rt, &addr, who)?;
    let sum = |confirmed: bool| {
        Amount::checked_sum(
            list.iter()
                .filter(|u| u.confirmed_height.is_some() == confirmed)
                .map(|u| u.value),
        )
        .context("the node reported a balance that overflows")
    };
    Ok((sum(true)?, sum(false)?, Some(height)))
}

/// Builds the payment from the coins the node reports (confirmed ones
/// first, unconfirmed ones only when they are the payer's own change) and
/// submits it there.
pub fn send(
    peer: &str,
    from: &WalletKey,
    to: &Address,
    amount: Amount,
    fee: wallet::Fee,
    json: bool,
) -> Result<()> {
    let addr = parse_peer(peer)?;
    let rt = runtime()?;
    let (_, list) = utxos(&rt, &addr, &from.address)?;
    let coin = |u: &UtxoEntry| Spendable {
        outpoint: u.outpoint,
        output: chain_core::TxOut {
            value: u.value,
            pubkey_hash: from.address.pubkey_hash(),
        },
    };
    let confirmed = list
        .iter()
        .filter(|u| u.confirmed_height.is_some())
        .map(coin)
        .collect();
    let change = list
        .iter()
        .filter(|u| u.confirmed_height.is_none() && u.change)
        .map(coin)
        .collect();
    let pending = Amount::checked_sum(
        list.iter()
            .filter(|u| u.confirmed_height.is_none() && !u.change)
            .map(|u| u.value),
    )
    .unwrap_or(Amount::ZERO);
    let (tx, fee) = wallet::build_payment(from, confirmed, change, to, amount, fee).map_err(|e| {
        let mut e = anyhow::Error::from(e);
        if pending > Amount::ZERO {
            e = e.context(format!("{pending} more is on its way from others but unconfirmed; send again once a block includes it"));
        }
        e
    })?;
    let txid = tx.txid();
    match ask(&rt, &addr, Request::SubmitTx(tx))? {
        Response::TxAccepted { txid: t } if t == txid => {
            if json {
                println!(
                    "{}",
                    json!({"txid": txid.to_string(), "accepted": true, "from": from.address.to_string(), "to": to.to_string(), "amount": amount.0, "fee": fee.0})
                );
            } else {
                println!("Transaction {txid} accepted by {addr}");
            }
            Ok(())
        }
        Response::TxRejected { reason, .. } => {
            if json {
                println!(
                    "{}",
                    json!({"txid": txid.to_string(), "accepted": false, "reason": reason})
                );
            }
            bail!("the node refused transaction {txid}: {reason}")
        }
        other => bail!("unexpected answer from {addr}: {other:?}"),
    }
}
