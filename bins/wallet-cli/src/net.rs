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

/// One connection to the node at `addr`, for a command's requests.
struct Node {
    rt: tokio::runtime::Runtime,
    addr: Multiaddr,
    session: p2p_net::Session,
}

impl Node {
    fn connect(addr: Multiaddr) -> Result<Node> {
        let rt = runtime()?;
        let session = rt.block_on(p2p_net::Session::connect(&addr, CONNECT_TIMEOUT))?;
        Ok(Node { rt, addr, session })
    }

    fn ask(&mut self, req: Request) -> Result<Response> {
        let resp = self.rt.block_on(self.session.request(req))?;
        if let Response::Error { reason } = &resp {
            bail!("the node at {} answered: {reason}", self.addr);
        }
        Ok(resp)
    }

    fn utxos(&mut self, who: &Address) -> Result<(u32, Vec<UtxoEntry>)> {
        match self.ask(Request::GetUtxos {
            pubkey_hash: who.pubkey_hash(),
        })? {
            Response::Utxos { height, utxos } => Ok((height, utxos)),
            other => bail!("unexpected answer from {}: {other:?}", self.addr),
        }
    }
}

/// The balance of `who` as the node at `peer` sees it: confirmed coins not
/// spent in its mempool, and unconfirmed coins, apart; and its height.
pub fn balance(peer: &str, who: &Address) -> Result<(Amount, Amount, Option<u32>)> {
    let (height, list) = Node::connect(parse_peer(peer)?)?.utxos(who)?;
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
    // The coins and the payment go over one connection.
    let mut node = Node::connect(parse_peer(peer)?)?;
    let addr = node.addr.clone();
    let (_, list) = node.utxos(&from.address)?;
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
    match node.ask(Request::SubmitTx(tx))? {
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
