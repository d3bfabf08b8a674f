//! Signature checks, and a queue that runs them while a block is still
//! being looked up.
//!
//! [`verify_during`] is the analogue of Bitcoin Core's `CCheckQueue`: the
//! thread that walks a block's inputs hands each transaction's signature
//! checks to rayon's pool as it goes, and at the end takes what is still
//! queued beside the workers and waits for the last of them. The input lookups, sighashes and bookkeeping (one thread) then
//! overlap the signature checks (every core) instead of preceding them.
//! What is reported is what a walk followed by a check of every signature
//! would report: an error of the walk first, else the first bad signature
//! in block order.

use super::InputError;
use crate::hash::Txid;
use rayon::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Checks queued for each worker woken: a wake-up (about a microsecond)
/// is small beside them (tens of microseconds each). A woken worker takes
/// checks one at a time until none is left, so no core waits on another's
/// batch at the end.
const BATCH: usize = 4;

/// One signature to verify: everything is computed before it is queued.
pub(crate) struct SigJob<'a> {
    pub(crate) txid: Txid,
    pub(crate) index: usize,
    pub(crate) pubkey: &'a [u8],
    pub(crate) msg: [u8; 32],
    pub(crate) sig: &'a [u8],
}

impl SigJob<'_> {
    fn verify(&self) -> Result<(), InputError> {
        crate::keys::verify_signature(self.pubkey, &self.msg, self.sig).map_err(|e| {
            InputError::BadSignature {
                txid: self.txid,
                index: self.index,
                reason: e.to_string(),
            }
        })
    }
}

/// Verifies `jobs` across all cores; the first failure in their order is
/// reported.
pub(crate) fn verify_jobs(jobs: &[SigJob<'_>]) -> Result<(), InputError> {
    jobs.par_iter()
        .find_map_first(|j| j.verify().err())
        .map_or(Ok(()), Err)
}

/// What the walk and the workers share: the checks queued and not yet
/// taken, the first failure in block order, and whether the walk has
/// failed (then what is queued is dropped).
struct Shared<'a> {
    pending: Mutex<VecDeque<(usize, SigJob<'a>)>>,
    /// Block-order position of the first failing check found so far
    /// (`usize::MAX`: none); checks after it are skipped.
    first_failure: AtomicUsize,
    failure: Mutex<Option<(usize, InputError)>>,
    abandoned: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<'a> Shared<'a> {
    fn new() -> Shared<'a> {
        Shared {
            pending: Mutex::new(VecDeque::new()),
            first_failure: AtomicUsize::new(usize::MAX),
            failure: Mutex::new(None),
            abandoned: AtomicBool::new(false),
        }
    }

    /// Takes queued checks one at a time and runs them until none is left.
    fn drain(&self) {
        loop {
            let Some((at, job)) = lock(&self.pending).pop_front() else {
                return;
            };
            if self.abandoned.load(Ordering::Relaxed)
                || at > self.first_failure.load(Ordering::Relaxed)
            {
                continue;
            }
            if let Err(e) = job.verify() {
                self.first_failure.fetch_min(at, Ordering::Relaxed);
                let mut failure = lock(&self.failure);
                if failure.as_ref().is_none_or(|(f, _)| at < *f) {
                    *failure = Some((at, e));
                }
            }
        }
    }
}

/// Where a walk hands the signature checks it has computed.
pub(crate) struct SigQueue<'q, 'scope> {
    scope: &'q rayon::Scope<'scope>,
    shared: Arc<Shared<'scope>>,
    /// Checks queued so far.
    queued: usize,
}

impl<'scope> SigQueue<'_, 'scope> {
    /// Queues `jobs` (in block order, after everything queued before); a
    /// worker is woken for every [`BATCH`] of them.
    pub(crate) fn extend(&mut self, jobs: impl IntoIterator<Item = SigJob<'scope>>) {
        let mut pending = lock(&self.shared.pending);
        for job in jobs {
            pending.push_back((self.queued, job));
            self.queued += 1;
            if self.queued.is_multiple_of(BATCH) {
                let shared = Arc::clone(&self.shared);
                self.scope.spawn(move |_| shared.drain());
            }
        }
    }

    /// Signatures queued so far.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }
}

/// Runs `walk`, verifying the signatures it queues on rayon's pool while it
/// goes on; once it has succeeded, runs `meanwhile` on its result, then
/// checks what is still queued beside the workers, and returns when every
/// check has finished. An error of the walk is returned first (the queued
/// checks are then dropped, and `meanwhile` is not run), else the first
/// failing signature in queue order.
pub(crate) fn verify_during<'scope, T, U, E: From<InputError>>(
    walk: impl FnOnce(&mut SigQueue<'_, 'scope>) -> Result<T, E>,
    meanwhile: impl FnOnce(&T) -> U,
) -> Result<(T, U), E> {
    let shared = Arc::new(Shared::new());
    let walked = rayon::in_place_scope(|scope| {
        let mut queue = SigQueue {
            scope,
            shared: Arc::clone(&shared),
            queued: 0,
        };
        let walked = walk(&mut queue).map(|value| {
            let also = meanwhile(&value);
            (value, also)
        });
        if walked.is_err() {
            shared.abandoned.store(true, Ordering::Relaxed);
        }
        shared.drain();
        walked
    });
    let value = walked?;
    let failure = lock(&shared.failure).take();
    match failure {
        Some((_, e)) => Err(e.into()),
        None => Ok(value),
    }
}
