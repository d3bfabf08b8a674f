//! Minting: a search starts when this node mints, no sync runs, and the
//! mempool holds enough transactions; a found block is connected and
//! announced like any other.

use super::Node;
use crate::Network;
use chain_core::miner::solve;
use chain_core::{Block, ReceivedBlock};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

impl<N: Network> Node<N> {
    /// Starts mining when this node mints and the mempool holds enough transactions.
    pub(super) async fn maybe_mine(self: Arc<Self>) {
        let Some(to) = self.minting.to else { return };
        let held = {
            let l = self.local();
            l.mining.is_some() || l.sync_holds_minting()
        };
        if held {
            return;
        }
        if self.chain.view().map(|v| v.mempool_len).unwrap_or(0) < self.minting.min_txs {
            return;
        }
        let Some(mut block) = self.chain.template(to, self.minting.min_txs).await else {
            return;
        };
        let cancel = Arc::new(AtomicBool::new(false));
        {
            let mut l = self.local();
            // Another task may have started a search meanwhile.
            if l.mining.is_some() || l.sync_holds_minting() {
                return;
            }
            l.mining = Some(cancel.clone());
        }
        tracing::info!(
            height = block.header.height,
            txs = block.transactions.len() - 1,
            "minting"
        );
        let tx = self.mined_tx.clone();
        let threads = self.minting.threads;
        let on_error = tx.clone();
        let search = std::thread::Builder::new()
            .name("miner".into())
            .spawn(move || {
                lower_priority();
                let found = solve(&mut block, threads, &cancel, &mut |p| {
                    tracing::debug!(
                        hashes = p.hashes,
                        rate = format!("{:.0}/s", p.rate()),
                        "mining"
                    );
                });
                let _ = tx.blocking_send(found.then_some(block));
            });
        if let Err(e) = search {
            tracing::error!("cannot start the mining thread: {e}");
            let _ = on_error.send(None).await;
        }
    }

    /// A search ended: connect and announce what it found, then maybe mine again.
    pub async fn on_mined(self: Arc<Self>, found: Option<Block>) {
        self.local().mining = None;
        if let Some(block) = found {
            // Encoded and hashed once, here.
            let block = ReceivedBlock::new(block);
            let _ = self.clone().on_block(block, None, None, false).await;
        }
        self.maybe_mine().await;
    }
}

/// Puts the mining thread, and the search threads it starts (Linux threads
/// inherit it), at nice 19: the node's own work (validating and relaying
/// blocks, serving peers) comes first, and the HTTP API, which runs in the
/// idle scheduling class, still gets a share of a core while a search
/// keeps every core busy.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::process::nice(19);
    }
}
