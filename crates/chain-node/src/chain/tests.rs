//! The chain actor, driven through its handle.

#![allow(clippy::unwrap_used)]
use super::*;
use chain_core::keys::PrivateKey;
use chain_core::test_utils::{child, easy_params, genesis, outputs_of, spend};
use chain_core::Amount;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A chain actor over a new store holding a genesis that pays `key`.
struct Actor {
    dir: tempfile::TempDir,
    key: PrivateKey,
    p: chain_core::ChainParams,
    g: Block,
    chain: ChainHandle<u8>,
}

fn actor() -> Actor {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate();
    let p = easy_params();
    let g = genesis(&p, key.public_key().pubkey_hash());
    let store = ChainStore::create(&dir.path().join("blocks"), &g).unwrap();
    let chain = spawn(
        Some(store),
        dir.path().join("blocks"),
        PoolSettings::default(),
    );
    Actor {
        dir,
        key,
        p,
        g,
        chain,
    }
}

/// A block on `parent` whose payment spends the genesis coin under
/// another key's signature: invalid.
fn theft(p: &chain_core::ChainParams, g: &Block, parent: &BlockHeader) -> Block {
    let to = g.transactions[0].outputs[0].pubkey_hash;
    let thief = PrivateKey::generate();
    let tx = spend(
        &thief,
        &outputs_of(&g.transactions[0]),
        to,
        Amount(20),
        Amount(0),
    );
    child(p, parent, vec![tx], Amount(0), to)
}

#[test]
fn blocks_handed_over_ahead_connect_in_order_and_only_the_first_bad_sender_is_blamed() {
    let Actor {
        dir: _dir,
        key,
        p,
        g,
        chain,
    } = actor();
    let pkh = key.public_key().pubkey_hash();
    let rt = runtime();
    rt.block_on(async {
        // Three good blocks handed over before any is answered.
        let b1 = child(&p, &g.header, vec![], Amount(0), pkh);
        let b2 = child(&p, &b1.header, vec![], Amount(0), pkh);
        let b3 = child(&p, &b2.header, vec![], Amount(0), pkh);
        let mut answers = Vec::new();
        for b in [&b1, &b2, &b3] {
            answers.push(chain.submit_requested_block(b.clone(), 1).await);
        }
        for a in answers {
            let out = a.await;
            assert!(out.valid && out.stored && out.tip_changed);
        }
        assert_eq!(chain.view().unwrap().tip.hash, b3.hash());

        // A block that steals a coin, then its child, handed over
        // together from two peers: the thief is blamed, the child's
        // sender is not (only its parent was invalid), and both end a sync.
        let bad = theft(&p, &g, &b3.header);
        let after = child(&p, &bad.header, vec![], Amount(0), pkh);
        let first = chain.submit_requested_block(bad, 7).await;
        let second = chain.submit_requested_block(after, 8).await;
        let (first, second) = (first.await, second.await);
        assert!(!first.valid);
        assert_eq!(first.offender, Some(7));
        assert_eq!(first.verdict, Verdict::Reject);
        assert!(!second.valid);
        assert_eq!(second.offender, None);
        assert_eq!(second.verdict, Verdict::Ignore);
        assert_eq!(chain.view().unwrap().tip.hash, b3.hash());
        chain.close().await;
    });
}

#[test]
fn the_actor_owns_the_chain_and_says_what_to_do_with_each_peer() {
    let Actor {
        dir,
        key,
        p,
        g,
        chain,
    } = actor();
    let pkh = key.public_key().pubkey_hash();
    let rt = runtime();
    rt.block_on(async {
        assert_eq!(chain.view().unwrap().tip.hash, g.hash());
        let mut tips = chain.subscribe();

        // A valid block from peer 1: connected, forwarded, the view moves.
        let b1 = child(&p, &g.header, vec![], Amount(0), pkh);
        let out = chain.accept_block(b1.clone(), Some(1)).await;
        assert_eq!(out.verdict, Verdict::Accept);
        assert!(out.valid && out.stored && out.tip_changed);
        assert_eq!(
            out.publish, None,
            "only this node's own blocks are announced"
        );
        tips.changed().await.unwrap();
        assert_eq!(chain.view().unwrap().tip.hash, b1.hash());

        // A block stealing the genesis coin from peer 2: rejected, peer 2 to punish.
        let bad = theft(&p, &g, &b1.header);
        let out = chain.accept_block(bad, Some(2)).await;
        assert_eq!(out.verdict, Verdict::Reject);
        assert_eq!(out.offender, Some(2));
        assert_eq!(chain.view().unwrap().tip.hash, b1.hash());

        // A side-branch block nobody asked for is neither stored nor
        // forwarded; asked for (in a sync), it is stored, not forwarded.
        let side =
            chain_core::test_utils::child_with_extra(&p, &g.header, vec![], Amount(0), pkh, 61);
        let out = chain.accept_block(side.clone(), Some(3)).await;
        assert_eq!(out.verdict, Verdict::Ignore);
        assert!(out.valid && !out.stored && !out.tip_changed);
        let out = chain.accept_requested_block(side, 3).await;
        assert_eq!(out.verdict, Verdict::Ignore);
        assert!(out.valid && out.stored && !out.tip_changed);

        // An orphan: held, and its sender is to be asked for its status.
        let b2 = child(&p, &b1.header, vec![], Amount(0), pkh);
        let b3 = child(&p, &b2.header, vec![], Amount(0), pkh);
        let out = chain.accept_block(b3.clone(), Some(4)).await;
        assert_eq!(out.ask_status, Some(4));
        assert!(!out.stored);
        // Its parent connects both.
        let b2_hash = b2.hash();
        let out = chain.accept_block(b2, Some(5)).await;
        assert!(out.tip_changed);
        assert_eq!(chain.view().unwrap().tip.hash, b3.hash());

        // Payments: into the mempool, then into a template of this node's.
        let pay = spend(
            &key,
            &outputs_of(&g.transactions[0]),
            pkh,
            Amount(5),
            Amount(0),
        );
        let out = chain.accept_tx(pay.clone(), None).await;
        assert_eq!(
            out,
            TxOutcome {
                verdict: Verdict::Accept,
                refused: None
            }
        );
        assert_eq!(chain.view().unwrap().mempool_len, 1);
        assert!(chain.template(pkh, 2).await.is_none(), "below --min-txs");
        let t = chain.template(pkh, 1).await.unwrap();
        assert_eq!(t.transactions.len(), 2);
        assert_eq!(t.header.prev, b3.hash());

        // Reads are answered from the actor's store, within their bounds.
        let r = chain
            .read(ReadRequest::Blocks {
                hashes: vec![b1.hash(), BlockHash([1; 32]), b2_hash],
                max_count: 2,
                max_bytes: usize::MAX,
            })
            .await
            .unwrap();
        let ReadResponse::Blocks { blocks, not_found } = r else {
            panic!("{r:?}")
        };
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0], b1.encode());
        assert_eq!(not_found, vec![BlockHash([1; 32])]);
        // Reading stops once the byte budget is reached.
        let r = chain
            .read(ReadRequest::Blocks {
                hashes: vec![b1.hash(), BlockHash([1; 32]), b2_hash],
                max_count: 16,
                max_bytes: 1,
            })
            .await
            .unwrap();
        assert_eq!(
            r,
            ReadResponse::Blocks {
                blocks: vec![b1.encode()],
                not_found: vec![],
            }
        );
        // The pool's two outputs count against the limit, the chain's
        // coins fill the rest; the coin the pool spends is left out.
        let r = chain
            .read(ReadRequest::Coins {
                pubkey_hash: pkh,
                limit: 3,
            })
            .await
            .unwrap();
        let ReadResponse::Coins { height, coins } = r else {
            panic!("{r:?}")
        };
        assert_eq!(height, 3);
        let heights: Vec<_> = coins.iter().map(|c| c.confirmed_height).collect();
        assert_eq!(heights.len(), 3);
        assert!(heights[0].is_some_and(|h| h > 0), "{heights:?}");
        assert_eq!(heights[1..], [None, None]);
        chain.close().await;
    });
    // Closed: the store is released and can be opened again.
    drop(chain);
    let reopened = ChainStore::open(&dir.path().join("blocks")).unwrap();
    assert_eq!(reopened.tip().height, 3);
}
