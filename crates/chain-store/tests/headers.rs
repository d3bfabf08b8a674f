//! Header branches: headers are checked (links, proof of work against the
//! expected difficulty, retargets across the branch and the store) before
//! any body is fetched, and what fails is remembered without being written.

#![allow(clippy::unwrap_used)]

use chain_core::block::{Block, BlockHeader, ChainParams};
use chain_core::miner::{assemble_block, solve};
use chain_core::pow::POW_LIMIT_BITS;
use chain_core::test_utils::{child, child_with_extra, easy_params, genesis, GENESIS_TIME};
use chain_core::validation::{next_bits, BlockError};
use chain_core::{Amount, BlockHash, PubkeyHash};
use chain_store::{Accepted, ChainStore, HeaderBranch, StoreError};
use std::sync::atomic::AtomicBool;

const NOW: u64 = GENESIS_TIME + 1_000_000;
const PKH: PubkeyHash = PubkeyHash([7; 20]);

fn store_with(g: &Block) -> (tempfile::TempDir, ChainStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ChainStore::create(&dir.path().join("blocks"), g).unwrap();
    (dir, s)
}

fn headers(blocks: &[Block]) -> Vec<BlockHeader> {
    blocks.iter().map(|b| b.header).collect()
}

/// `n` children of `parent`, `step` seconds apart, each on `parent.bits`.
fn run_of(p: &ChainParams, parent: &BlockHeader, n: usize, step: u64) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for _ in 0..n {
        let last = out.last().map(|b| b.header).unwrap_or(*parent);
        out.push(child_with_extra(p, &last, vec![], Amount(0), PKH, step));
    }
    out
}

#[test]
fn headers_are_checked_linked_and_counted_before_any_body() {
    let p = easy_params();
    let g = genesis(&p, PKH);
    let (_dir, mut s) = store_with(&g);
    let main = run_of(&p, &g.header, 2, 60);
    for b in &main {
        s.accept_block(b, NOW).unwrap();
    }
    // A rival branch from the genesis, five blocks long.
    let side = run_of(&p, &g.header, 5, 61);
    let mut branch: Option<HeaderBranch> = None;
    assert_eq!(
        s.extend_branch(&mut branch, &headers(&side[..3]), NOW)
            .unwrap(),
        3
    );
    let b = branch.as_ref().unwrap();
    assert_eq!(b.fork(), g.hash());
    assert_eq!(b.tip_hash(), side[2].hash());
    assert!(
        b.work() > s.tip().work,
        "three rival headers outweigh two blocks"
    );
    assert_eq!(
        s.extend_branch(&mut branch, &headers(&side[3..]), NOW)
            .unwrap(),
        2
    );
    assert_eq!(branch.as_ref().unwrap().len(), 5);
    // Nothing was written: the bodies were never seen.
    for b in &side {
        assert!(s.header_entry(&b.hash()).unwrap().is_none());
    }

    // Headers that skip one do not connect: the sender's fault.
    let mut other = None;
    let e = s
        .extend_branch(&mut other, &[side[0].header, side[2].header], NOW)
        .unwrap_err();
    assert!(matches!(e, StoreError::Unconnected { .. }) && e.is_sender_fault());
    // Nor does a header whose parent nobody has.
    let mut stray = side[0].header;
    stray.prev = BlockHash([3; 32]);
    let e = s.extend_branch(&mut None, &[stray], NOW).unwrap_err();
    assert!(matches!(e, StoreError::Unconnected { .. }));

    // Leading headers the store holds move the fork point.
    let next = child(&p, &main[1].header, vec![], Amount(0), PKH);
    let mut on_main = None;
    let added = s
        .extend_branch(
            &mut on_main,
            &[main[0].header, main[1].header, next.header],
            NOW,
        )
        .unwrap();
    assert_eq!(added, 1);
    assert_eq!(on_main.as_ref().unwrap().fork(), main[1].hash());

    // Blocks fetched for the branch are stored; the branch then starts
    // after them.
    for b in &side[..2] {
        assert_eq!(s.accept_block(b, NOW).unwrap(), Accepted::SideChain);
    }
    let more = run_of(&p, &side[4].header, 1, 61);
    s.extend_branch(&mut branch, &headers(&more), NOW).unwrap();
    let b = branch.as_ref().unwrap();
    assert_eq!(b.fork(), side[1].hash());
    assert_eq!(b.len(), 4);
}

#[test]
fn a_header_at_the_wrong_difficulty_fails_and_is_remembered_not_stored() {
    // A chain at 16 times the easiest target: a header at the easiest bits
    // is cheap to make and must be refused before its body is looked at.
    let p = ChainParams {
        initial_bits: chain_core::pow::CompactTarget(0x1f0f_ffff),
        ..easy_params()
    };
    let g = genesis(&p, PKH);
    let (_dir, mut s) = store_with(&g);
    let mut cheap = assemble_block(
        &p,
        &g.header,
        POW_LIMIT_BITS,
        g.header.time + 60,
        PKH,
        vec![],
        Amount(0),
    );
    assert!(solve(&mut cheap, 1, &AtomicBool::new(false), &mut |_| {}));
    let e = s
        .extend_branch(&mut None, &[cheap.header], NOW)
        .unwrap_err();
    assert!(matches!(
        e.block_error(),
        Some(BlockError::UnexpectedBits { .. })
    ));
    assert!(e.is_sender_fault());
    // Remembered: the block is refused as known invalid, and nothing is on disk.
    let e = s.accept_unrequested_block(&cheap, NOW).unwrap_err();
    assert!(matches!(e.block_error(), Some(BlockError::KnownInvalid(_))));
    assert!(s.header_entry(&cheap.hash()).unwrap().is_none());

    // A header that misses its own target.
    let mut lazy = child(&p, &g.header, vec![], Amount(0), PKH).header;
    let target = lazy.bits.to_target().unwrap();
    while target.is_met_by(&lazy.hash()) {
        lazy.nonce += 1;
    }
    let e = s.extend_branch(&mut None, &[lazy], NOW).unwrap_err();
    assert!(matches!(
        e.block_error(),
        Some(BlockError::BadProofOfWork { .. })
    ));
}

/// Grows `chain` by `n` blocks `step` seconds apart, each at the bits the
/// retarget rule expects.
fn grow(p: &ChainParams, chain: &mut Vec<Block>, n: usize, step: u64) {
    for _ in 0..n {
        let parent = chain.last().unwrap().header;
        let bits = next_bits(p, &parent, |h| {
            chain
                .get(usize::try_from(h).unwrap())
                .map(|b| b.header.time)
        });
        let mut b = assemble_block(p, &parent, bits, parent.time + step, PKH, vec![], Amount(0));
        assert!(solve(&mut b, 1, &AtomicBool::new(false), &mut |_| {}));
        chain.push(b);
    }
}

#[test]
fn retargets_are_checked_across_the_store_and_the_branch() {
    // Retarget every 4 blocks; blocks 4 times too fast make each retarget
    // 4 times harder.
    let p = ChainParams {
        retarget_interval: 4,
        ..easy_params()
    };
    let g = genesis(&p, PKH);
    let mut chain = vec![g.clone()];
    grow(&p, &mut chain, 10, 15);
    assert_ne!(chain[4].header.bits, chain[3].header.bits);
    assert_ne!(chain[8].header.bits, chain[7].header.bits);

    let (_dir, mut s) = store_with(&g);
    for b in &chain[1..3] {
        s.accept_block(b, NOW).unwrap();
    }
    // Heights 3..=10 as headers: the boundary at 4 needs the genesis time
    // (in the store), the one at 8 the time at 4 (in the branch).
    let mut branch = None;
    s.extend_branch(&mut branch, &headers(&chain[3..7]), NOW)
        .unwrap();
    s.extend_branch(&mut branch, &headers(&chain[7..]), NOW)
        .unwrap();
    assert_eq!(branch.as_ref().unwrap().tip_height(), 10);

    // The same branch with block 8 left at the old bits is refused there.
    let mut wrong = chain[..8].to_vec();
    let parent = wrong[7].header;
    let mut b8 = assemble_block(
        &p,
        &parent,
        parent.bits,
        parent.time + 15,
        PKH,
        vec![],
        Amount(0),
    );
    assert!(solve(&mut b8, 1, &AtomicBool::new(false), &mut |_| {}));
    wrong.push(b8);
    let mut branch = None;
    let e = s
        .extend_branch(&mut branch, &headers(&wrong[3..]), NOW)
        .unwrap_err();
    assert!(matches!(
        e.block_error(),
        Some(BlockError::UnexpectedBits { .. })
    ));
}
