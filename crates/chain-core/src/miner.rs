//! Proof-of-work search and block assembly.
//!
//! The search hashes the header's first 64 bytes once (the midstate) and
//! prepares both padded last chunks once; per nonce it writes the nonce and
//! runs exactly two SHA-256 compressions, on every requested thread. The hot loop does
//! no allocation and no printing; it publishes its hash count and checks for
//! cancellation once per batch.

use crate::address::PubkeyHash;
use crate::amount::Amount;
use crate::block::{merkle_root, Block, BlockHeader, ChainParams, BLOCK_VERSION};
use crate::checked::UnminedTx;
use crate::hash::BlockHash;
use crate::pow::CompactTarget;
use crate::transaction::Transaction;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Hashes between checks of the stop flags.
const BATCH: u64 = 4096;
/// How often progress is reported.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

/// Progress of a search.
#[derive(Clone, Copy, Debug)]
pub struct MiningProgress {
    /// Hashes tried so far.
    pub hashes: u64,
    /// Time since the search started.
    pub elapsed: Duration,
}

impl MiningProgress {
    /// Hashes per second so far.
    pub fn rate(&self) -> f64 {
        // Precision loss in the conversion is irrelevant for a rate display.
        self.hashes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `1234567.0` as `1.23M`: three significant digits and an SI prefix.
fn si(x: f64) -> String {
    const PREFIXES: [(f64, &str); 4] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, prefix) in PREFIXES {
        if x >= scale {
            let v = x / scale;
            let digits = if v >= 100.0 {
                0
            } else if v >= 10.0 {
                1
            } else {
                2
            };
            return format!("{v:.digits$}{prefix}");
        }
    }
    format!("{x:.0}")
}

/// `8.39M hashes, 16.2M hashes/s, 0.5 s`: what a person waiting wants to see.
impl std::fmt::Display for MiningProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Precision loss in the conversion is irrelevant for a display.
        let hashes = self.hashes as f64;
        write!(
            f,
            "{} hashes, {} hashes/s, {:.1} s",
            si(hashes),
            si(self.rate()),
            self.elapsed.as_secs_f64()
        )
    }
}

/// Searches nonces for `header` on `threads` threads until one meets its
/// target, `cancel` is set, or the nonce space is exhausted. Returns the
/// solved header, or `None` when cancelled or the target is invalid.
/// `progress` is called from the calling thread every
/// [`PROGRESS_INTERVAL`] and once more when the search ends, with the final
/// count.
pub fn mine(
    header: &BlockHeader,
    threads: usize,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(MiningProgress),
) -> Option<BlockHeader> {
    mine_inner(header, threads, cancel, progress, u64::MAX)
}

/// Searches at most `per_thread` nonces on each of `threads` threads (thread
/// `t` tries `t`, `t + threads`, ...). Returns the solved header if one of
/// them meets the target. Exactly `threads * per_thread` hashes are tried
/// when none does, which makes hash rates measurable.
pub fn search_range(header: &BlockHeader, threads: usize, per_thread: u64) -> Option<BlockHeader> {
    mine_inner(
        header,
        threads,
        &AtomicBool::new(false),
        &mut |_| {},
        per_thread,
    )
}

fn mine_inner(
    header: &BlockHeader,
    threads: usize,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(MiningProgress),
    per_thread: u64,
) -> Option<BlockHeader> {
    let target = header.bits.to_target()?;
    // The target as eight big-endian words, compared with the hash's state
    // words: the same order as comparing the bytes, without producing them.
    let target_bytes = target.0.to_big_endian();
    let target_words: [u32; 8] = std::array::from_fn(|i| {
        u32::from_be_bytes(
            target_bytes[i * 4..i * 4 + 4]
                .try_into()
                .expect("4-byte range"),
        )
    });
    let threads = threads.max(1);
    let hashes = AtomicU64::new(0);
    let found = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let start = Instant::now();
    let midstate = NonceHasher::new(header);
    let reporter = std::thread::current();
    let running = std::sync::atomic::AtomicUsize::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (hashes, found, done, running) = (&hashes, &found, &done, &running);
            let mut hasher = midstate.clone();
            let reporter = reporter.clone();
            // Thread counts are small; the conversion is lossless.
            let (first, step) = (t as u64, threads as u64);
            s.spawn(move || {
                search(
                    &mut hasher,
                    &target_words,
                    first,
                    step,
                    hashes,
                    found,
                    done,
                    cancel,
                    per_thread,
                );
                running.fetch_sub(1, Ordering::AcqRel);
                // Wake the reporting thread so a quick solution is not held up by its poll interval.
                reporter.unpark();
            });
        }
        let mut last = Instant::now();
        while !done.load(Ordering::Acquire) && running.load(Ordering::Acquire) > 0 {
            std::thread::park_timeout(Duration::from_millis(50));
            if cancel.load(Ordering::Relaxed) {
                done.store(true, Ordering::Release);
            }
            if last.elapsed() >= PROGRESS_INTERVAL {
                last = Instant::now();
                progress(MiningProgress {
                    hashes: hashes.load(Ordering::Relaxed),
                    elapsed: start.elapsed(),
                });
            }
        }
    });
    progress(MiningProgress {
        hashes: hashes.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    });
    if cancel.load(Ordering::Relaxed) && found.load(Ordering::Acquire) == 0 {
        return None;
    }
    let nonce_plus_one = found.load(Ordering::Acquire);
    if nonce_plus_one == 0 {
        return None;
    }
    let mut solved = *header;
    solved.nonce = nonce_plus_one - 1;
    Some(solved)
}

#[allow(clippy::too_many_arguments)]
fn search(
    hasher: &mut NonceHasher,
    target: &[u32; 8],
    first: u64,
    step: u64,
    hashes: &AtomicU64,
    found: &AtomicU64,
    done: &AtomicBool,
    cancel: &AtomicBool,
    limit: u64,
) {
    let mut nonce = first;
    let mut tried = 0u64;
    loop {
        let batch = BATCH.min(limit - tried);
        if batch == 0 {
            return;
        }
        for i in 0..batch {
            let twice = hasher.hash_words(nonce);
            // Almost every nonce fails on the first word.
            if twice[0] <= target[0] && twice <= *target {
                hashes.fetch_add(i + 1, Ordering::Relaxed);
                // Store nonce + 1 so that zero means "not found".
                if found
                    .compare_exchange(
                        0,
                        nonce.wrapping_add(1),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    done.store(true, Ordering::Release);
                }
                return;
            }
            nonce = match nonce.checked_add(step) {
                Some(n) if n != u64::MAX => n,
                _ => {
                    hashes.fetch_add(i + 1, Ordering::Relaxed);
                    done.store(true, Ordering::Release);
                    return;
                }
            };
        }
        tried += batch;
        hashes.fetch_add(batch, Ordering::Relaxed);
        if done.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
            return;
        }
    }
}

/// Assembles an unsolved block on top of `parent`: a coinbase paying the
/// reward plus `fees` to `to`, then `txs` in the order given.
pub fn assemble_block(
    params: &ChainParams,
    parent: &BlockHeader,
    bits: CompactTarget,
    time: u64,
    to: PubkeyHash,
    txs: Vec<Transaction>,
    fees: Amount,
) -> Block {
    let txs = txs.into_iter().map(UnminedTx::new).collect();
    assemble_block_of(params, parent, bits, time, to, txs, fees)
}

/// [`assemble_block`] from transactions that carry their txids (the
/// mempool's template): only the coinbase is hashed for the Merkle root's
/// leaves.
pub fn assemble_block_of(
    params: &ChainParams,
    parent: &BlockHeader,
    bits: CompactTarget,
    time: u64,
    to: PubkeyHash,
    txs: Vec<UnminedTx>,
    fees: Amount,
) -> Block {
    let height = parent.height + 1;
    let value = params.reward.checked_add(fees).unwrap_or(params.reward);
    let coinbase = Transaction::coinbase(height, to, value, b"");
    let mut txids = Vec::with_capacity(txs.len() + 1);
    txids.push(coinbase.txid());
    let mut transactions = Vec::with_capacity(txs.len() + 1);
    transactions.push(coinbase);
    for tx in txs {
        txids.push(tx.txid());
        transactions.push(tx.into_tx());
    }
    let root = merkle_root(&txids);
    Block {
        header: BlockHeader {
            version: BLOCK_VERSION,
            prev: parent.hash(),
            merkle_root: root,
            time,
            bits,
            height,
            nonce: 0,
        },
        transactions,
    }
}

/// Assembles the unsolved genesis block of a chain with `params`, paying the reward to `to`.
pub fn assemble_genesis(params: &ChainParams, to: PubkeyHash, time: u64) -> Block {
    let cb = params.genesis_coinbase(to);
    let root = merkle_root(&[cb.txid()]);
    Block {
        header: BlockHeader {
            version: BLOCK_VERSION,
            prev: BlockHash::ZERO,
            merkle_root: root,
            time,
            bits: params.initial_bits,
            height: 0,
            nonce: 0,
        },
        transactions: vec![cb],
    }
}

/// SHA-256's initial state.
const SHA256_INIT: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// A header's double SHA-256 with only the nonce left to vary: the first
/// chunk's state (the midstate) and both padded last chunks are prepared
/// once, so each nonce costs exactly two SHA-256 compressions.
#[derive(Clone)]
struct NonceHasher {
    midstate: [u32; 8],
    /// Header bytes 64..92, padding, and the 736-bit length.
    second: [u8; 64],
    /// The first hash's 32 bytes, padding, and the 256-bit length.
    outer: [u8; 64],
}

impl NonceHasher {
    fn new(header: &BlockHeader) -> Self {
        let bytes = header.to_bytes();
        let mut midstate = SHA256_INIT;
        compress(&mut midstate, bytes[..64].try_into().expect("64 bytes"));
        let mut second = [0u8; 64];
        second[..28].copy_from_slice(&bytes[64..]);
        second[28] = 0x80;
        second[56..].copy_from_slice(&(92u64 * 8).to_be_bytes());
        let mut outer = [0u8; 64];
        outer[32] = 0x80;
        outer[56..].copy_from_slice(&256u64.to_be_bytes());
        NonceHasher {
            midstate,
            second,
            outer,
        }
    }

    /// The header's hash with this nonce, as SHA-256's eight state words:
    /// the hash's bytes are their big-endian bytes in order.
    fn hash_words(&mut self, nonce: u64) -> [u32; 8] {
        // The nonce is the header's last 8 bytes, little-endian.
        self.second[20..28].copy_from_slice(&nonce.to_le_bytes());
        let mut state = self.midstate;
        compress(&mut state, &self.second);
        for (i, w) in state.iter().enumerate() {
            self.outer[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        let mut state = SHA256_INIT;
        compress(&mut state, &self.outer);
        state
    }

    /// The header's hash with this nonce.
    #[cfg(test)]
    fn hash(&mut self, nonce: u64) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, w) in self.hash_words(nonce).iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    let block = sha2::digest::generic_array::GenericArray::from_slice(block);
    sha2::compress256(state, std::slice::from_ref(block));
}

/// Mines `block` in place on `threads` threads. Returns false if cancelled.
pub fn solve(
    block: &mut Block,
    threads: usize,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(MiningProgress),
) -> bool {
    match mine(&block.header, threads, cancel, progress) {
        Some(h) => {
            block.header = h;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mines_and_cancels() {
        let params = ChainParams::default();
        let mut g = assemble_genesis(&params, PubkeyHash([1; 20]), 1_700_000_000);
        let cancel = AtomicBool::new(false);
        assert!(solve(&mut g, 2, &cancel, &mut |_| {}));
        assert!(g.header.hash().to_string().starts_with("000"));
        assert!(crate::validation::check_block(&g).is_ok());

        // An impossible target (one leading-zero bit short of everything) with cancel set stops.
        let mut hard = g.header;
        hard.bits = CompactTarget(0x0300_0001);
        let cancel = AtomicBool::new(true);
        assert!(mine(&hard, 2, &cancel, &mut |_| {}).is_none());
    }

    #[test]
    fn reports_a_final_count_that_includes_the_winning_hash() {
        let params = ChainParams::default();
        let g = assemble_genesis(&params, PubkeyHash([2; 20]), 1_700_000_000);
        let mut last = None;
        let solved = mine(&g.header, 1, &AtomicBool::new(false), &mut |p| {
            last = Some(p)
        })
        .expect("the default target is easy");
        let last = last.expect("a final report is always made");
        // One thread tries nonces 0, 1, 2, ... so the winning nonce is the count minus one.
        assert_eq!(last.hashes, solved.nonce + 1);
    }

    #[test]
    fn progress_reads_as_hashes_rate_and_time() {
        let p = MiningProgress {
            hashes: 8_388_608,
            elapsed: Duration::from_millis(500),
        };
        assert_eq!(p.to_string(), "8.39M hashes, 16.8M hashes/s, 0.5 s");
        let p = MiningProgress {
            hashes: 950,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(p.to_string(), "950 hashes, 475 hashes/s, 2.0 s");
        assert_eq!(si(123_456_789_000.0), "123G");
    }

    #[test]
    fn the_nonce_hasher_gives_the_header_hash() {
        let mut h = BlockHeader::from_bytes(&[7u8; 92]);
        let mut fast = NonceHasher::new(&h);
        for nonce in [0u64, 1, 255, 1 << 40, u64::MAX - 1] {
            h.nonce = nonce;
            assert_eq!(fast.hash(nonce), h.hash().0, "nonce {nonce}");
        }
    }
}
