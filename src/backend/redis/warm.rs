//! Warm connections for hot keys. An uncontended read-modify-write costs
//! two round trips: WATCH + read, then MULTI + write + EXEC. When one key
//! is written again and again (a counter), the second is enough: the
//! committing round trip also WATCHes and reads the key again, and the
//! connection is kept aside with what it found. The key's next operation
//! starts from there — EXEC fails if anything changed since that WATCH, so
//! it is as safe as a fresh read. Only keys used twice within [`IDLE`] get
//! the extra read, a few connections at most are kept (an eighth of
//! `upstream.max_pinned`), and each goes back to the pool (UNWATCHed) after
//! [`IDLE`] unused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::PinnedLease;
use crate::backend::rmw::{Read, Snapshot};

/// How long a key counts as hot, and a warm connection is kept unused.
pub const IDLE: Duration = Duration::from_millis(100);
/// Keys remembered as recently used before old ones are forgotten.
const RECENT: usize = 4096;

struct Entry {
    db: u32,
    reads: Vec<Read>,
    lease: PinnedLease,
    snapshot: Vec<Snapshot>,
    since: Instant,
}

pub struct Warm {
    entries: Mutex<Vec<Entry>>,
    recent: Mutex<HashMap<(u32, Bytes), Instant>>,
    limit: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The one key every read of `reads` is a string or hash field of.
pub fn single_key(reads: &[Read]) -> Option<&Bytes> {
    let key = reads.first()?.key();
    reads
        .iter()
        .all(|r| matches!(r, Read::String(_) | Read::HashField { .. }) && r.key() == key)
        .then_some(key)
}

impl Warm {
    /// Keeps up to `limit` connections; a task returns idle ones to the pool.
    pub fn start(limit: usize) -> Arc<Warm> {
        let warm = Arc::new(Warm {
            entries: Mutex::new(Vec::new()),
            recent: Mutex::new(HashMap::new()),
            limit,
        });
        if limit > 0 {
            tokio::spawn(sweep(Arc::downgrade(&warm)));
        }
        warm
    }

    /// Whether `key` was used within [`IDLE`] (and marks it used now).
    pub fn hot(&self, db: u32, key: &Bytes) -> bool {
        if self.limit == 0 {
            return false;
        }
        let now = Instant::now();
        let mut recent = lock(&self.recent);
        if recent.len() >= RECENT {
            recent.retain(|_, used| now.duration_since(*used) < IDLE);
        }
        let last = recent.insert((db, key.clone()), now);
        last.is_some_and(|used| now.duration_since(used) < IDLE)
    }

    /// The connection kept for exactly these reads, with what they found.
    pub fn take(&self, db: u32, reads: &[Read]) -> Option<(PinnedLease, Vec<Snapshot>)> {
        let mut entries = lock(&self.entries);
        let at = entries
            .iter()
            .position(|e| e.db == db && e.reads == reads)?;
        let entry = entries.swap_remove(at);
        (entry.lease.is_alive() && entry.since.elapsed() < IDLE)
            .then_some((entry.lease, entry.snapshot))
    }

    /// Keeps `lease`, WATCHing `reads`, with what they found; the oldest
    /// kept connection goes back to the pool when all places are taken.
    pub fn put(&self, db: u32, reads: Vec<Read>, lease: PinnedLease, snapshot: Vec<Snapshot>) {
        if self.limit == 0 {
            return;
        }
        let mut entries = lock(&self.entries);
        if entries.len() >= self.limit {
            let oldest = (0..entries.len())
                .min_by_key(|&i| entries[i].since)
                .expect("full");
            entries.swap_remove(oldest);
        }
        entries.push(Entry {
            db,
            reads,
            lease,
            snapshot,
            since: Instant::now(),
        });
    }

    /// How many connections are kept now (INFO).
    pub fn kept(&self) -> usize {
        lock(&self.entries).len()
    }
}

/// Returns connections unused for [`IDLE`] to the pool, until the backend goes.
async fn sweep(warm: Weak<Warm>) {
    let mut tick = tokio::time::interval(IDLE);
    loop {
        tick.tick().await;
        let Some(warm) = warm.upgrade() else {
            return;
        };
        // Dropped outside the lock: each lease sends UNWATCH as it goes.
        let idle: Vec<Entry> = {
            let mut entries = lock(&warm.entries);
            let (idle, kept) = std::mem::take(&mut *entries)
                .into_iter()
                .partition(|e| e.since.elapsed() >= IDLE);
            *entries = kept;
            idle
        };
        drop(idle);
    }
}
