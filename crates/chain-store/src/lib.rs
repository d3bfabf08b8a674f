//! Chain state on RocksDB: blocks, the header index, the best chain, the UTXO
//! set with an address index, a transaction index and undo data.
//!
//! Invariants:
//! - Connecting or disconnecting a block is one `WriteBatch`, tip included;
//!   the tip always names a fully connected block. The write-ahead log is
//!   synced at most a second apart and at close. A block connected on the
//!   tip is written behind (the `behind` module): its batch lands on another
//!   thread while the next block is checked, and reads see it meanwhile.
//! - Fork choice is most cumulative work. A block on a side chain is stored;
//!   when its branch has more work than the tip, the store disconnects back
//!   to the fork point with the undo data and connects the new branch.
//! - A block is marked invalid only when its body is committed by its header
//!   (Merkle root matches, no duplicate txids). A block refused for a body
//!   that does not match its header leaves no trace, so the honest block with
//!   the same header is still accepted (CVE-2012-2459).
//! - Checks run cheapest first: the header's own proof of work (one header
//!   hash), then the header against its parent (expected difficulty, time,
//!   height), and only then the body. A header that fails against its
//!   parent is remembered in a bounded in-memory set ([`FAILED_HEADERS`]
//!   entries), never on disk, and so are its descendants: a peer cannot make
//!   the store write what it refused. (One that fails its own proof of work
//!   is not remembered: checking it again costs one hash.)
//! - A branch that holds an invalid block is invalid from that block on:
//!   when a reorganisation meets an invalid block, every stored block after
//!   it on that branch is marked invalid with it, and a branch whose walk
//!   back to the best chain meets an invalid block is refused without
//!   validating anything again.
//! - The best chain is the most-work branch the store holds that is not
//!   known to be invalid. Opening the store for writing activates it
//!   ([`ChainStore::activate_best_chain`], Bitcoin Core's `ActivateBestChain`
//!   at start-up), so a reorganisation cut by a crash is finished before
//!   anything else happens.

mod audit;
mod behind;
mod best_chain;
mod connect;
mod error;
mod headers;
mod reads;
pub mod schema;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

pub use error::StoreError;
pub use headers::{HeaderBranch, MAX_BRANCH_HEADERS};
pub use reads::StoreReader;
pub use schema::{HeaderEntry, Status};

#[cfg(any(test, feature = "test-utils"))]
use audit::clear_cf;
use behind::{Staged, Writer};
use chain_core::block::{Block, BlockHeader, ChainParams};
use chain_core::pow::Work;
use chain_core::validation::{
    self, check_block, check_header_context, connect_block, BlockError, CheckedBlock, Coin,
    HeaderContext, NoCache, SignatureCache, UtxoView,
};
use chain_core::{
    Amount, BlockHash, OutPoint, PubkeyHash, ReceivedBlock, Transaction, Txid, UnminedTx,
};
use connect::stage_connect;
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use schema::*;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

/// How many failed headers are remembered (in memory only); the oldest are
/// forgotten first. A forgotten header is simply checked again.
pub const FAILED_HEADERS: usize = 16_384;

/// Hashes of headers that failed, and of their descendants: bounded, FIFO.
#[derive(Debug, Default)]
struct FailedHeaders {
    set: HashSet<BlockHash>,
    order: VecDeque<BlockHash>,
}

impl FailedHeaders {
    fn contains(&self, h: &BlockHash) -> bool {
        self.set.contains(h)
    }

    fn insert(&mut self, h: BlockHash) {
        if self.set.insert(h) {
            self.order.push_back(h);
            while self.order.len() > FAILED_HEADERS {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// The best chain's tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// Cumulative work of the chain ending there.
    pub work: Work,
    /// Its header.
    pub header: BlockHeader,
}

/// What happened to a block handed to [`ChainStore::accept_block`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Already stored.
    AlreadyHave,
    /// The parent is unknown; nothing was stored.
    Orphan {
        /// The missing parent.
        parent: BlockHash,
        /// The block, handed back (to hold until its parent comes).
        block: Box<ReceivedBlock>,
    },
    /// Stored on a side chain with no more work than the tip.
    SideChain,
    /// Not asked for, on a branch with no more work than the tip: the
    /// header passed its checks and nothing was stored.
    LessWork,
    /// The best chain changed.
    NewTip(ChainUpdate),
}

/// How the best chain changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainUpdate {
    /// Blocks disconnected, tip first.
    pub disconnected: Vec<CheckedBlock>,
    /// Blocks connected, oldest first.
    pub connected: Vec<CheckedBlock>,
}

impl ChainUpdate {
    /// Transactions of disconnected blocks (coinbases left out), oldest first, for the mempool.
    pub fn returned_transactions(&self) -> Vec<Transaction> {
        self.disconnected
            .iter()
            .rev()
            .flat_map(|b| b.transactions.iter().skip(1).cloned())
            .collect()
    }
}

/// Result of [`ChainStore::check_db`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Blocks replayed.
    pub blocks: u32,
    /// Coins in the recomputed set.
    pub expected_utxos: usize,
    /// Coins in the stored set.
    pub stored_utxos: usize,
    /// Problems found (empty when consistent).
    pub problems: Vec<String>,
}

/// The chain store.
pub struct ChainStore {
    db: std::sync::Arc<DB>,
    /// The connected block's batch being written behind, if any.
    writer: Writer,
    path: PathBuf,
    read_only: bool,
    params: ChainParams,
    genesis: BlockHash,
    tip: Tip,
    failed: FailedHeaders,
    /// When the write-ahead log was last synced to disk.
    synced_at: std::time::Instant,
}

impl Drop for ChainStore {
    fn drop(&mut self) {
        if !self.read_only {
            if let Err(e) = self.writer.shut_down() {
                tracing::error!("writing the last block to the chain failed: {e}");
            }
            if let Err(e) = self.db.flush_wal(true) {
                tracing::warn!("syncing the chain's write-ahead log at close failed: {e}");
            }
        }
    }
}

impl std::fmt::Debug for ChainStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainStore")
            .field("path", &self.path)
            .field("tip", &self.tip)
            .finish()
    }
}

fn db_options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_max_open_files(256);
    o.set_keep_log_file_num(4);
    // Memtables of every column family together: without a cap each family
    // may hold two 64 MiB memtables, and memory grows with the chain.
    o.set_db_write_buffer_size(MEMTABLE_BYTES);
    o
}

/// Memory all of the store's memtables may hold together.
pub const MEMTABLE_BYTES: usize = 32 * 1024 * 1024;

fn map_open_error(path: &Path, e: rocksdb::Error) -> StoreError {
    let msg = e.to_string();
    // RocksDB's words for a LOCK file another process (or this one) holds.
    // Not any message with "lock" in it: the directory is `blocks_<id>`.
    if msg.contains("While lock file") || msg.contains("lock hold by current process") {
        StoreError::InUse(path.to_path_buf())
    } else {
        StoreError::Db(e)
    }
}

fn sync_write() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

/// How often the write-ahead log is synced to disk at most: what a power
/// cut can lose. A process crash loses nothing written.
pub const WAL_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Current unix time in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ChainStore {
    /// True when a chain store exists at `path`.
    pub fn exists(path: &Path) -> bool {
        path.join("CURRENT").exists()
    }

    /// Creates a new store at `path` holding `genesis`. Fails if one exists.
    /// Nothing is left behind on failure.
    pub fn create(path: &Path, genesis: &Block) -> Result<ChainStore, StoreError> {
        if Self::exists(path) {
            return Err(StoreError::AlreadyExists(path.to_path_buf()));
        }
        let params = ChainParams::from_genesis(genesis)?;
        let genesis = check_block(genesis).map_err(|error| StoreError::InvalidBlock {
            hash: genesis.hash(),
            error,
        })?;
        if genesis.header.prev != BlockHash::ZERO {
            return Err(StoreError::InvalidBlock {
                hash: genesis.hash(),
                error: BlockError::BadHeight {
                    found: 0,
                    expected: 0,
                },
            });
        }
        // Build in a sibling temporary directory and rename it into place, so a
        // failure or crash never leaves a half-made chain at `path`.
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Corrupt(format!("cannot create {}: {e}", parent.display())))?;
        let tmp = parent.join(format!(
            ".{}.creating-{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("chain"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        {
            let cfs = ALL_CFS
                .iter()
                .map(|n| ColumnFamilyDescriptor::new(*n, Options::default()));
            let db = DB::open_cf_descriptors(&db_options(), &tmp, cfs)?;
            let hash = genesis.hash();
            let work = genesis.header.work();
            let entry = HeaderEntry {
                header: genesis.header,
                chain_work: work,
                status: Status::Valid,
            };
            let mut staged = Staged::new(&db);
            staged.put(META, META_FORMAT, &FORMAT_VERSION.to_be_bytes());
            staged.put(META, META_GENESIS, &hash.0);
            staged.put(BLOCK_BY_HASH, &hash.0, genesis.bytes());
            staged.put(HEADER_BY_HASH, &hash.0, &entry.encode());
            let changes = connect_block(&genesis, &params, &HashMap::new())
                .map_err(|error| StoreError::InvalidBlock { hash, error })?;
            stage_connect(&mut staged, &genesis, &changes);
            db.write_opt(staged.batch, &sync_write())?;
        }
        if Self::exists(path) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(StoreError::AlreadyExists(path.to_path_buf()));
        }
        std::fs::rename(&tmp, path).map_err(|e| {
            StoreError::Corrupt(format!(
                "cannot move the new chain into {}: {e}",
                path.display()
            ))
        })?;
        Self::open(path)
    }

    /// Opens an existing store for writing. A second writer gets [`StoreError::InUse`].
    pub fn open(path: &Path) -> Result<ChainStore, StoreError> {
        if !Self::exists(path) {
            return Err(StoreError::NotFound(path.to_path_buf()));
        }
        let cfs = ALL_CFS
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(*n, Options::default()));
        let db = DB::open_cf_descriptors(&db_options(), path, cfs)
            .map_err(|e| map_open_error(path, e))?;
        Self::finish_open(db, path, false)
    }

    /// Opens an existing store read-only; works while a node has it open.
    pub fn open_read_only(path: &Path) -> Result<ChainStore, StoreError> {
        if !Self::exists(path) {
            return Err(StoreError::NotFound(path.to_path_buf()));
        }
        // A store of an older format lacks the newer families; opening it
        // with those present lets the format check explain.
        let present =
            DB::list_cf(&Options::default(), path).map_err(|e| map_open_error(path, e))?;
        let cfs = ALL_CFS.iter().filter(|n| present.iter().any(|p| p == *n));
        let db = DB::open_cf_for_read_only(&Options::default(), path, cfs, false)
            .map_err(|e| map_open_error(path, e))?;
        Self::finish_open(db, path, true)
    }

    fn finish_open(db: DB, path: &Path, read_only: bool) -> Result<ChainStore, StoreError> {
        let meta = db
            .cf_handle(META)
            .ok_or_else(|| StoreError::Corrupt("no meta column family".into()))?;
        let format = db.get_cf(meta, META_FORMAT)?;
        let format_ok = format
            .as_deref()
            .map(|f| f == FORMAT_VERSION.to_be_bytes())
            .unwrap_or(false);
        let upgrade = format.as_deref() == Some(&UPGRADABLE_FORMAT.to_be_bytes()[..]);
        if upgrade && read_only {
            return Err(StoreError::NeedsUpgrade(path.to_path_buf()));
        }
        if !format_ok && !upgrade {
            let found = match format.as_deref().and_then(|f| <[u8; 4]>::try_from(f).ok()) {
                Some(b) => u32::from_be_bytes(b).to_string(),
                None => "unknown (none recorded)".into(),
            };
            return Err(StoreError::UnknownFormat {
                path: path.to_path_buf(),
                found,
                expected: FORMAT_VERSION,
            });
        }
        let read_hash = |k: &[u8]| -> Result<BlockHash, StoreError> {
            let v = db.get_cf(meta, k)?.ok_or_else(|| {
                StoreError::Corrupt(format!("meta key {} missing", String::from_utf8_lossy(k)))
            })?;
            Ok(BlockHash(v.as_slice().try_into().map_err(|_| {
                StoreError::Corrupt("bad meta hash".into())
            })?))
        };
        let genesis = read_hash(META_GENESIS)?;
        let tip_hash = read_hash(META_TIP)?;
        let mut s = ChainStore {
            db: std::sync::Arc::new(db),
            writer: Writer::default(),
            path: path.to_path_buf(),
            read_only,
            params: ChainParams::default(),
            genesis,
            tip: Tip {
                hash: tip_hash,
                height: 0,
                work: Work::default(),
                header: BlockHeader::from_bytes(&[0; 92]),
            },
            failed: FailedHeaders::default(),
            synced_at: std::time::Instant::now(),
        };
        let g = s
            .block(&genesis)?
            .ok_or_else(|| StoreError::Corrupt("genesis block missing".into()))?;
        s.params = ChainParams::from_genesis(&g)?;
        let e = s
            .header_entry(&tip_hash)?
            .ok_or_else(|| StoreError::Corrupt("tip header missing".into()))?;
        s.tip = Tip {
            hash: tip_hash,
            height: e.header.height,
            work: e.chain_work,
            header: e.header,
        };
        if upgrade {
            s.upgrade_to_3()?;
        }
        if !read_only {
            s.activate_best_chain()?;
        }
        Ok(s)
    }

    /// Format 2 to 3: builds the address history from the best chain's
    /// blocks and undo data, and records the new format in the same batch.
    fn upgrade_to_3(&mut self) -> Result<(), StoreError> {
        tracing::info!(
            blocks = self.tip.height + 1,
            "upgrading the chain's storage format from 2 to 3 (adding the address history)"
        );
        let mut batch = WriteBatch::default();
        for height in 0..=self.tip.height {
            let hash = self.hash_at(height)?.ok_or_else(|| {
                StoreError::Corrupt(format!("no best-chain block at height {height}"))
            })?;
            let block = self.stored_block(&hash)?;
            let spent = match self.get(UNDO_BY_HASH, &hash.0)? {
                Some(u) => decode_undo(&u)
                    .ok_or_else(|| StoreError::Corrupt(format!("undo data of {hash}")))?,
                // The genesis block spends nothing and has no undo entry.
                None if height == 0 => Vec::new(),
                None => return Err(StoreError::Corrupt(format!("undo data of {hash} missing"))),
            };
            for (k, txid) in history_entries(&block, block.txids(), &spent) {
                batch.put_cf(self.cf(TXID_BY_PUBKEY_HASH), k, txid.0);
            }
        }
        batch.put_cf(self.cf(META), META_FORMAT, FORMAT_VERSION.to_be_bytes());
        self.db.write_opt(batch, &sync_write())?;
        Ok(())
    }

    /// The best-chain transactions that paid or spent from `pkh`, newest
    /// first: at most `limit`, starting below `before` (a height and a
    /// position in the block; `None`: from the tip). Each comes with its
    /// height and position, the cursor for the next page.
    pub fn history(
        &self,
        pkh: &PubkeyHash,
        before: Option<(u32, u32)>,
        limit: usize,
    ) -> Result<Vec<(u32, u32, Txid)>, StoreError> {
        self.writer.settle()?;
        reads::history(&self.db, pkh, before, limit)
    }

    /// How many best-chain transactions paid or spent from `pkh`.
    pub fn history_len(&self, pkh: &PubkeyHash) -> Result<usize, StoreError> {
        self.writer.settle()?;
        reads::history_len(&self.db, pkh)
    }

    /// A reader of what this store has written, for other threads: see
    /// [`StoreReader`].
    pub fn reader(&self) -> StoreReader {
        StoreReader::new(&self.db)
    }

    /// Writes a batch atomically. It goes to the write-ahead log without an
    /// fsync, so a process crash loses nothing; the log is synced to disk at
    /// most every [`WAL_SYNC_INTERVAL`] and when the store is dropped, which
    /// bounds what a power cut can lose, and RocksDB's recovery replays the
    /// log up to the last whole batch, so the store stays consistent.
    fn write(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        self.writer.settle()?;
        self.db.write(batch)?;
        if self.synced_at.elapsed() >= WAL_SYNC_INTERVAL {
            self.sync()?;
        }
        Ok(())
    }

    /// Waits until every block accepted so far has been written (to the
    /// write-ahead log: a process crash no longer loses it). A block that
    /// extends the tip is written behind, while the next block is checked;
    /// a caller that reports a block as connected waits for this first.
    pub fn wait_written(&self) -> Result<(), StoreError> {
        self.writer.settle()
    }

    /// Syncs the write-ahead log to disk now.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.writer.settle()?;
        self.db.flush_wal(true)?;
        self.synced_at = std::time::Instant::now();
        Ok(())
    }

    /// A point read that sees the batch being written behind.
    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.writer.get(&self.db, cf, key)
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every column family is opened with the store")
    }

    /// The directory of this store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The chain's parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The genesis hash.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis
    }

    /// The best chain's tip.
    pub fn tip(&self) -> Tip {
        self.tip
    }

    /// A stored block.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        reads::block(self, hash)
    }

    /// A stored block with its hash, txids and size, computed from its
    /// bytes (stored blocks passed their checks when they were stored).
    pub fn checked_block(&self, hash: &BlockHash) -> Result<Option<CheckedBlock>, StoreError> {
        reads::checked_block(self, hash)
    }

    fn stored_block(&self, hash: &BlockHash) -> Result<CheckedBlock, StoreError> {
        self.checked_block(hash)?
            .ok_or_else(|| StoreError::Corrupt(format!("block {hash} missing")))
    }

    /// A stored block's encoding, without decoding it.
    pub fn block_bytes(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(BLOCK_BY_HASH, &hash.0)
    }

    /// A header-index entry.
    pub fn header_entry(&self, hash: &BlockHash) -> Result<Option<HeaderEntry>, StoreError> {
        reads::header_entry(self, hash)
    }

    /// The best-chain block hash at `height`.
    pub fn hash_at(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        reads::hash_at(self, height)
    }

    /// True when `hash` is on the best chain.
    pub fn is_on_best_chain(&self, hash: &BlockHash) -> Result<bool, StoreError> {
        let Some(e) = self.header_entry(hash)? else {
            return Ok(false);
        };
        Ok(self.hash_at(e.header.height)? == Some(*hash))
    }

    /// An unspent output.
    pub fn coin(&self, op: &OutPoint) -> Result<Option<Coin>, StoreError> {
        reads::coin(self, op)
    }

    /// The unspent outputs paying `pkh`, from the address index.
    pub fn utxos_for(&self, pkh: &PubkeyHash) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        self.writer.settle()?;
        reads::utxos_for(&self.db, pkh)
    }

    /// The confirmed balance of `pkh`.
    pub fn balance(&self, pkh: &PubkeyHash) -> Result<Amount, StoreError> {
        let coins = self.utxos_for(pkh)?;
        Amount::checked_sum(coins.iter().map(|c| c.1.output.value))
            .ok_or_else(|| StoreError::Corrupt("balance overflows".into()))
    }

    /// Finds a best-chain transaction by txid: (block hash, height, transaction).
    pub fn find_transaction(
        &self,
        txid: &Txid,
    ) -> Result<Option<(BlockHash, u32, Transaction)>, StoreError> {
        Ok(reads::find_transaction(self, txid)?.map(|(hash, height, _, tx)| (hash, height, tx)))
    }

    /// A block locator for the best chain: the tip, then exponentially sparser ancestors, then genesis.
    pub fn locator(&self) -> Result<Vec<BlockHash>, StoreError> {
        let mut out = Vec::new();
        let mut h = i64::from(self.tip.height);
        let mut step = 1i64;
        while h > 0 {
            // h is in 1..=u32::MAX here.
            if let Some(hash) = self.hash_at(h as u32)? {
                out.push(hash);
            }
            if out.len() >= 10 {
                step *= 2;
            }
            h -= step;
        }
        out.push(self.genesis);
        Ok(out)
    }

    /// Best-chain hashes after the first locator entry found on the best chain, at most `max`.
    pub fn hashes_after(
        &self,
        locator: &[BlockHash],
        stop: Option<BlockHash>,
        max: usize,
    ) -> Result<Vec<BlockHash>, StoreError> {
        reads::hashes_after(self, self.tip.height, locator, stop, max)
    }

    /// Median time of the 11 blocks ending at `hash`.
    fn median_time_past(&self, mut hash: BlockHash) -> Result<u64, StoreError> {
        let mut times = Vec::with_capacity(validation::MEDIAN_TIME_SPAN);
        for _ in 0..validation::MEDIAN_TIME_SPAN {
            let Some(e) = self.header_entry(&hash)? else {
                break;
            };
            times.push(e.header.time);
            if e.header.height == 0 {
                break;
            }
            hash = e.header.prev;
        }
        Ok(validation::median_time(&times))
    }

    /// The ancestor of `from` at `height` (walking the header index).
    fn ancestor(&self, from: &HeaderEntry, height: u32) -> Result<Option<HeaderEntry>, StoreError> {
        let mut e = *from;
        while e.header.height > height {
            let hash = e.header.prev;
            // Fast path: once on the best chain, jump by height.
            if self.hash_at(e.header.height - 1)? == Some(hash) {
                let Some(h) = self.hash_at(height)? else {
                    return Ok(None);
                };
                return self.header_entry(&h);
            }
            match self.header_entry(&hash)? {
                Some(p) => e = p,
                None => return Ok(None),
            }
        }
        Ok(Some(e))
    }

    /// The header context a child of `parent` is checked against.
    pub fn context_for_child(
        &self,
        parent_hash: &BlockHash,
        parent: &HeaderEntry,
        now: u64,
    ) -> Result<HeaderContext, StoreError> {
        let mut anc_err = None;
        let expected_bits = validation::next_bits(&self.params, &parent.header, |h| {
            match self.ancestor(parent, h) {
                Ok(e) => e.map(|e| e.header.time),
                Err(e) => {
                    anc_err = Some(e);
                    None
                }
            }
        });
        if let Some(e) = anc_err {
            return Err(e);
        }
        Ok(HeaderContext {
            parent_height: parent.header.height,
            median_time_past: self.median_time_past(*parent_hash)?,
            expected_bits,
            now,
        })
    }

    /// A block on the tip, ready to mine: `txs` with `fees`, the coinbase
    /// paying `to`, the expected difficulty, and the time `now` or just
    /// after the median time past, whichever is later.
    pub fn template(
        &self,
        to: PubkeyHash,
        txs: Vec<Transaction>,
        fees: Amount,
        now: u64,
    ) -> Result<Block, StoreError> {
        let txs = txs.into_iter().map(UnminedTx::new).collect();
        self.template_of(to, txs, fees, now)
    }

    /// [`ChainStore::template`] from transactions that carry their txids
    /// (the mempool's template): none of them is hashed again.
    pub fn template_of(
        &self,
        to: PubkeyHash,
        txs: Vec<UnminedTx>,
        fees: Amount,
        now: u64,
    ) -> Result<Block, StoreError> {
        let ctx = self.context_for_tip(now)?;
        Ok(chain_core::miner::assemble_block_of(
            &self.params,
            &self.tip.header,
            ctx.expected_bits,
            now.max(ctx.median_time_past + 1),
            to,
            txs,
            fees,
        ))
    }

    /// The context for a block on top of the current tip (for mining).
    pub fn context_for_tip(&self, now: u64) -> Result<HeaderContext, StoreError> {
        let e = self
            .header_entry(&self.tip.hash)?
            .ok_or_else(|| StoreError::Corrupt("tip header missing".into()))?;
        self.context_for_child(&self.tip.hash, &e, now)
    }

    /// Validates and stores a block, and moves the best chain if its branch
    /// now has the most work. `now` is the local clock in unix seconds.
    ///
    /// The header is checked before the body: its own proof of work, then
    /// against its parent. Only a block whose header passes both has its body
    /// hashed and checked, and only a block that passes every check is
    /// written.
    ///
    /// This is for a block the caller asked for (or made): one on a side
    /// branch with no more work than the tip is stored too, as part of a
    /// branch whose headers showed more work. A block nobody asked for goes
    /// to [`ChainStore::accept_unrequested_block`].
    pub fn accept_block(&mut self, block: &Block, now: u64) -> Result<Accepted, StoreError> {
        self.accept(ReceivedBlock::new(block.clone()), now, true, &NoCache)
    }

    /// [`ChainStore::accept_block`] for a block decoded at the edge (its
    /// hash, txids and bytes computed once, and not again here), verifying
    /// no signature `cache` holds (the mempool's: a block of payments the
    /// pool took checks none of their signatures again). `requested` as
    /// the two methods above.
    pub fn accept_block_with(
        &mut self,
        block: ReceivedBlock,
        now: u64,
        requested: bool,
        cache: &dyn SignatureCache,
    ) -> Result<Accepted, StoreError> {
        self.accept(block, now, requested, cache)
    }

    /// Like [`ChainStore::accept_block`], for a block nobody asked for (one
    /// relayed by a peer): when its branch has no more work than the tip,
    /// only its header is checked and nothing is stored
    /// ([`Accepted::LessWork`]). So what a peer can make the store write
    /// unasked costs it more work than the best chain holds.
    pub fn accept_unrequested_block(
        &mut self,
        block: &Block,
        now: u64,
    ) -> Result<Accepted, StoreError> {
        self.accept(ReceivedBlock::new(block.clone()), now, false, &NoCache)
    }

    fn accept(
        &mut self,
        block: ReceivedBlock,
        now: u64,
        requested: bool,
        cache: &dyn SignatureCache,
    ) -> Result<Accepted, StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        let hash = block.hash();
        let invalid = |error| StoreError::InvalidBlock { hash, error };
        if let Some(e) = self.header_entry(&hash)? {
            if e.status == Status::Invalid {
                return Err(invalid(BlockError::KnownInvalid(hash)));
            }
            return Ok(Accepted::AlreadyHave);
        }
        if self.failed.contains(&hash) {
            return Err(invalid(BlockError::KnownInvalid(hash)));
        }
        // The header's hash, computed at the edge, against its target.
        block.check_header().map_err(invalid)?;
        let prev = block.header.prev;
        if self.failed.contains(&prev) {
            self.failed.insert(hash);
            return Err(invalid(BlockError::InvalidParent(prev)));
        }
        let Some(parent) = self.header_entry(&prev)? else {
            return Ok(Accepted::Orphan {
                parent: prev,
                block: Box::new(block),
            });
        };
        if parent.status == Status::Invalid {
            self.failed.insert(hash);
            return Err(invalid(BlockError::InvalidParent(prev)));
        }
        let ctx = self.context_for_child(&prev, &parent, now)?;
        if let Err(error) = check_header_context(&block.header, &ctx) {
            // A block too far in the future may become valid later: don't remember it.
            if error.is_final() {
                self.failed.insert(hash);
            }
            return Err(invalid(error));
        }
        let chain_work = parent.chain_work.saturating_add(block.header.work());
        if !requested && chain_work <= self.tip.work {
            return Ok(Accepted::LessWork);
        }
        // Only now is the body checked, on the txids hashed at the edge. A
        // body that does not match its header says nothing about the header
        // (see the module docs): nothing is kept.
        let block = block.check_body().map_err(invalid)?;
        let entry = HeaderEntry {
            header: block.header,
            chain_work,
            status: Status::Stored,
        };
        if prev == self.tip.hash {
            // The common case: one batch stores and connects it.
            return self.extend_tip(block, entry, cache).map(Accepted::NewTip);
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(BLOCK_BY_HASH), hash.0, block.bytes());
        batch.put_cf(self.cf(HEADER_BY_HASH), hash.0, entry.encode());
        self.write(batch)?;
        if entry.chain_work <= self.tip.work {
            return Ok(Accepted::SideChain);
        }
        let result = self.reorganize_to(hash, entry, Some(block), cache);
        if let Err(StoreError::InvalidBlock { .. }) = &result {
            // The target's branch failed; another stored branch may now be
            // the best valid one.
            self.activate_best_chain()?;
        }
        result.map(Accepted::NewTip)
    }

    /// Disconnects the tip, as a crash in the middle of a reorganisation
    /// would leave it: for tests of start-up recovery.
    #[cfg(any(test, feature = "test-utils"))]
    pub fn disconnect_tip_for_tests(&mut self) -> Result<Block, StoreError> {
        self.disconnect_tip().map(CheckedBlock::into_block)
    }

    /// Rewrites the store as format 2 left it (no address history), for
    /// tests of the upgrade.
    #[cfg(any(test, feature = "test-utils"))]
    pub fn downgrade_to_format_2_for_tests(&mut self) -> Result<(), StoreError> {
        self.writer.settle()?;
        let mut batch = WriteBatch::default();
        clear_cf(&self.db, &mut batch, TXID_BY_PUBKEY_HASH)?;
        batch.put_cf(self.cf(META), META_FORMAT, UPGRADABLE_FORMAT.to_be_bytes());
        self.write(batch)
    }
}

impl UtxoView for ChainStore {
    /// A read error is reported as a missing coin; callers that must tell
    /// the two apart use [`ChainStore::coin`].
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        ChainStore::coin(self, outpoint).ok().flatten()
    }
}
