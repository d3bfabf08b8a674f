//! Write-behind for connected blocks.
//!
//! Connecting a block on the tip ends with one `WriteBatch`, whose memtable
//! inserts take one core while the block's signatures took both. So the
//! batch is written on a thread of its own while the store goes on with the
//! next block (its header checks, UTXO reads and signatures), and at most
//! one batch is in flight. One thread does every such write for the life of
//! the store (RocksDB keeps per-thread state that makes a thread's next
//! memtable insert cheaper):
//! - every point read looks in the batch in flight first ([`Writer::get`]),
//!   so it sees the store as if the batch had landed; the families that
//!   are only ever iterated (an address's coins and history: over half of
//!   a block's entries) are not remembered for it, and a point read of
//!   one waits for the batch like an iteration;
//! - iteration, every other write, syncing and closing wait for it
//!   ([`Writer::settle`]);
//! - the batch is still one atomic RocksDB write, so a crash leaves the
//!   store at the block before or the block after, as before;
//! - a failed write is kept and every later call fails with it: the store
//!   must be reopened, which reads the state that really landed.

use crate::schema::{TXID_BY_PUBKEY_HASH, UTXO_BY_PUBKEY_HASH};
use crate::StoreError;
use rocksdb::{WriteBatch, DB};
use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Column family -> key -> the value written, or `None` for a delete.
type Writes = HashMap<&'static str, HashMap<Vec<u8>, Option<Vec<u8>>>>;

/// Column families read only by iteration, which waits for the batch in
/// flight: what a batch writes to them is not kept for point reads.
const ITERATED_ONLY: [&str; 2] = [UTXO_BY_PUBKEY_HASH, TXID_BY_PUBKEY_HASH];

/// Whether the batch in flight keeps its writes to `cf` for point reads.
fn remembered(cf: &str) -> bool {
    !ITERATED_ONLY.contains(&cf)
}

/// What `writes` holds for `key` of `cf`: `None` when it does not touch it.
fn lookup(writes: &Writes, cf: &str, key: &[u8]) -> Option<Option<Vec<u8>>> {
    writes.get(cf)?.get(key).cloned()
}

/// A batch being built, with what it writes remembered for reads.
pub(crate) struct Staged<'a> {
    db: &'a DB,
    pub(crate) batch: WriteBatch,
    writes: Writes,
}

impl<'a> Staged<'a> {
    pub(crate) fn new(db: &'a DB) -> Self {
        Staged {
            db,
            batch: WriteBatch::default(),
            writes: Writes::new(),
        }
    }

    fn cf(&self, name: &str) -> &'a rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every column family is opened with the store")
    }

    pub(crate) fn put(&mut self, cf: &'static str, key: &[u8], value: &[u8]) {
        self.batch.put_cf(self.cf(cf), key, value);
        if remembered(cf) {
            self.writes
                .entry(cf)
                .or_default()
                .insert(key.to_vec(), Some(value.to_vec()));
        }
    }

    pub(crate) fn delete(&mut self, cf: &'static str, key: &[u8]) {
        self.batch.delete_cf(self.cf(cf), key);
        if remembered(cf) {
            self.writes
                .entry(cf)
                .or_default()
                .insert(key.to_vec(), None);
        }
    }
}

struct InFlight {
    done: Receiver<Result<(), String>>,
    writes: Writes,
}

/// A batch for the writing thread, whether to sync the log after it, and
/// where to say how it went.
type Job = (WriteBatch, bool, Sender<Result<(), String>>);

#[derive(Default)]
struct State {
    in_flight: Option<InFlight>,
    failed: Option<String>,
    thread: Option<(Sender<Job>, JoinHandle<()>)>,
}

/// The batch in flight, if any, and a failure, if one happened.
#[derive(Default)]
pub(crate) struct Writer(Mutex<State>);

impl Writer {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays meaningful if a holder panicked: take it as it is.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failure(state: &State) -> Result<(), StoreError> {
        match &state.failed {
            Some(e) => Err(StoreError::WriteFailed(e.clone())),
            None => Ok(()),
        }
    }

    /// Waits for the batch in flight to land.
    pub(crate) fn settle(&self) -> Result<(), StoreError> {
        let mut s = self.lock();
        if let Some(f) = s.in_flight.take() {
            match f.done.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => s.failed = Some(e),
                Err(_) => s.failed = Some("the writing thread stopped".into()),
            }
        }
        Self::failure(&s)
    }

    /// Waits for the batch in flight, then stops the writing thread, so
    /// that nothing holds the database any more.
    pub(crate) fn shut_down(&self) -> Result<(), StoreError> {
        let settled = self.settle();
        if let Some((jobs, thread)) = self.lock().thread.take() {
            drop(jobs);
            if thread.join().is_err() {
                return Err(StoreError::WriteFailed(
                    "the writing thread panicked".into(),
                ));
            }
        }
        settled
    }

    /// A point read: the batch in flight first, then the database.
    pub(crate) fn get(
        &self,
        db: &DB,
        cf: &'static str,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if !remembered(cf) {
            self.settle()?;
        }
        {
            let s = self.lock();
            Self::failure(&s)?;
            if let Some(v) = s
                .in_flight
                .as_ref()
                .and_then(|f| lookup(&f.writes, cf, key))
            {
                return Ok(v);
            }
        }
        // A key the batch in flight does not touch reads the same before
        // and after it lands.
        let handle = db
            .cf_handle(cf)
            .expect("every column family is opened with the store");
        Ok(db.get_cf(handle, key)?)
    }

    /// Point reads of many keys of one column family: those the batch in
    /// flight touches from it, the rest in one multi-get.
    pub(crate) fn get_many(
        &self,
        db: &DB,
        cf: &'static str,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if !remembered(cf) {
            self.settle()?;
        }
        let mut out: Vec<Option<Option<Vec<u8>>>> = {
            let s = self.lock();
            Self::failure(&s)?;
            keys.iter()
                .map(|k| s.in_flight.as_ref().and_then(|f| lookup(&f.writes, cf, k)))
                .collect()
        };
        let handle = db
            .cf_handle(cf)
            .expect("every column family is opened with the store");
        let missing: Vec<usize> = (0..keys.len()).filter(|i| out[*i].is_none()).collect();
        let read = db.multi_get_cf(missing.iter().map(|i| (handle, keys[*i])));
        for (i, r) in missing.into_iter().zip(read) {
            out[i] = Some(r?);
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Writes `staged` on a thread of its own, after the batch before it
    /// landed; `sync` also syncs the write-ahead log after it.
    pub(crate) fn write_behind(
        &self,
        db: &Arc<DB>,
        staged: Staged<'_>,
        sync: bool,
    ) -> Result<(), StoreError> {
        self.settle()?;
        let Staged { batch, writes, .. } = staged;
        let mut s = self.lock();
        if s.thread.is_none() {
            let (jobs, inbox) = channel::<Job>();
            let db = Arc::clone(db);
            let thread = std::thread::Builder::new()
                .name("chain-write".into())
                .spawn(move || {
                    for (batch, sync, done) in inbox {
                        let mut result = db.write(batch);
                        if sync && result.is_ok() {
                            result = db.flush_wal(true);
                        }
                        // The store waits on `done` before anything else.
                        let _ = done.send(result.map_err(|e| e.to_string()));
                    }
                })
                .map_err(|e| {
                    StoreError::WriteFailed(format!("cannot start the writing thread: {e}"))
                })?;
            s.thread = Some((jobs, thread));
        }
        let (done_tx, done) = channel();
        let sent = s
            .thread
            .as_ref()
            .map(|(jobs, _)| jobs.send((batch, sync, done_tx)).is_ok());
        if sent != Some(true) {
            s.failed = Some("the writing thread stopped".into());
            return Self::failure(&s);
        }
        s.in_flight = Some(InFlight { done, writes });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::schema::{ALL_CFS, UTXO_BY_OUTPOINT};
    use rocksdb::{ColumnFamilyDescriptor, Options};

    fn open(dir: &std::path::Path) -> Arc<DB> {
        let mut o = Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        let cfs = ALL_CFS
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(*n, Options::default()));
        Arc::new(DB::open_cf_descriptors(&o, dir, cfs).unwrap())
    }

    /// A point read sees a batch still being written, whether its family's
    /// writes are remembered (read from the batch) or not (the read waits
    /// for the batch to land). The batch is large, so it is still being
    /// written when the reads come.
    #[test]
    fn point_reads_see_the_batch_in_flight_in_every_family() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let writer = Writer::default();
        let mut staged = Staged::new(&db);
        for i in 0..200_000u32 {
            staged.put(UTXO_BY_OUTPOINT, &i.to_be_bytes(), &[7; 64]);
        }
        staged.put(UTXO_BY_PUBKEY_HASH, b"address", b"coin");
        assert_eq!(
            lookup(&staged.writes, UTXO_BY_PUBKEY_HASH, b"address"),
            None,
            "an iterated-only family is not remembered"
        );
        writer.write_behind(&db, staged, false).unwrap();
        assert_eq!(
            writer.get(&db, UTXO_BY_PUBKEY_HASH, b"address").unwrap(),
            Some(b"coin".to_vec())
        );
        assert_eq!(
            writer
                .get_many(&db, UTXO_BY_PUBKEY_HASH, &[b"address", b"other"])
                .unwrap(),
            vec![Some(b"coin".to_vec()), None]
        );
        assert_eq!(
            writer
                .get(&db, UTXO_BY_OUTPOINT, &7u32.to_be_bytes())
                .unwrap(),
            Some(vec![7; 64])
        );
        writer.shut_down().unwrap();
    }
}
