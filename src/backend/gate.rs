//! The process's gate in front of every backend's read-modify-write
//! ([`super::rmw`]): operations on one key (per backend, database and key)
//! never run at the same time, so they never conflict with each other, and
//! those waiting behind a key's running operation are applied together, in
//! arrival order, in its next one.
//!
//! - [`Gate::coalesce`] takes operations that read one string or one hash
//!   field and write it back (INCR, APPEND, HINCRBY…). The key's next run
//!   (`Batch`) reads once and hands each operation, in arrival order, the
//!   value the ones before it left; each keeps its own reply or error, and one
//!   write stores the last value. Operations that arrive while the run reads
//!   still join it: the run commits after they arrived, so each takes effect
//!   at that commit, in arrival order.
//! - [`Gate::lock`] holds several keys for an operation that is not
//!   coalesced (RENAME, COPY, a transaction): keys are taken in sorted order,
//!   so two such operations never wait on each other in a circle.
//! - Runs of different keys share round trips where the backend asks for it
//!   ([`Backend::rmw_group`], Redis): at most `GROUPS` groups per backend
//!   and database run at once, and the key runs ready meanwhile go together
//!   in the next group — one WATCH, one MULTI/EXEC for all of them.
//!
//! Only conflicts with other writers (another proxy, a direct client) remain;
//! the backend retries those until the operation's deadline.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::{OwnedMutexGuard, oneshot};
use tokio::time::Instant;

use super::Backend;
use super::rmw::{Read, Rmw, Snapshot, Write};
use crate::error::ProxyError;
use crate::protocol::Frame;

/// Operations one run takes at most: bounds the time and memory of one write.
const MAX_BATCH: usize = 1024;

/// A key as the gate tells keys apart: backend index, database, key.
type SlotKey = (usize, u32, Bytes);

/// One key's place in the gate: the lock its runs hold, and the operations
/// waiting for the next run.
#[derive(Default)]
struct Slot {
    running: Arc<tokio::sync::Mutex<()>>,
    queue: Mutex<VecDeque<Box<dyn Waiting>>>,
}

/// Counters for INFO.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateStats {
    /// Operations waiting for their key's run or inside one now.
    pub waiting: usize,
    /// Runs of coalesced operations so far.
    pub runs: u64,
    /// Operations that shared a run with an earlier one.
    pub coalesced: u64,
    /// Runs that shared a backend round trip with another key's.
    pub grouped: u64,
}

/// The gate of one process (the session context owns it; clones share it).
#[derive(Default, Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    slots: Mutex<HashMap<SlotKey, Arc<Slot>>>,
    /// Per backend index and database.
    groups: Mutex<HashMap<(usize, u32), Arc<Grouper>>>,
    waiting: AtomicUsize,
    runs: AtomicU64,
    coalesced: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data under these locks is consistent between statements.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An operation waiting in a key's queue, its type erased.
trait Waiting: Send {
    fn op(&mut self) -> &mut dyn Rmw;
    /// Hands the operation back to its caller with how it ended.
    fn finish(self: Box<Self>, result: Result<(), ProxyError>);
}

struct Pending<T> {
    op: T,
    done: oneshot::Sender<Result<T, ProxyError>>,
}

impl<T: Rmw + 'static> Waiting for Pending<T> {
    fn op(&mut self) -> &mut dyn Rmw {
        &mut self.op
    }

    fn finish(self: Box<Self>, result: Result<(), ProxyError>) {
        let Pending { op, done } = *self;
        let _ = done.send(result.map(|()| op));
    }
}

/// Keys held by [`Gate::lock`]; dropping it lets the next operation on them run.
pub struct KeyGuard {
    inner: Arc<Inner>,
    held: Vec<(SlotKey, Arc<Slot>, OwnedMutexGuard<()>)>,
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        for (key, slot, guard) in self.held.drain(..) {
            drop(guard);
            self.inner.release(&key, slot);
        }
    }
}

impl Inner {
    fn slot(&self, key: &SlotKey) -> Arc<Slot> {
        lock(&self.slots).entry(key.clone()).or_default().clone()
    }

    /// Gives back a reference to a slot, forgetting the slot when nobody
    /// else holds one (every waiter, run and guard holds one, and references
    /// are only taken under the map's lock).
    fn release(&self, key: &SlotKey, slot: Arc<Slot>) {
        let mut slots = lock(&self.slots);
        if Arc::strong_count(&slot) == 2 {
            slots.remove(key);
        }
        drop(slot);
    }
}

impl Gate {
    pub fn stats(&self) -> GateStats {
        let inner = &self.inner;
        GateStats {
            waiting: inner.waiting.load(Ordering::Relaxed),
            runs: inner.runs.load(Ordering::Relaxed),
            coalesced: inner.coalesced.load(Ordering::Relaxed),
            grouped: lock(&inner.groups)
                .values()
                .map(|g| g.grouped.load(Ordering::Relaxed))
                .sum(),
        }
    }

    /// Runs `op` — one read ([`Read::String`] or [`Read::HashField`]) whose
    /// writes only store that value back — on `backend` (index `index`),
    /// together with the operations on the same key that are waiting when
    /// the key's next run reads. The operation comes back once its run
    /// committed; an error is its own (its `decide` failed) or its run's.
    pub async fn coalesce<T: Rmw + 'static>(
        &self,
        index: usize,
        backend: &Arc<dyn Backend>,
        db: u32,
        op: T,
    ) -> Result<T, ProxyError> {
        let inner = &self.inner;
        let key: SlotKey = (index, db, op.reads()[0].key().clone());
        let slot = inner.slot(&key);
        let (done, mut rx) = oneshot::channel();
        inner.waiting.fetch_add(1, Ordering::Relaxed);
        lock(&slot.queue).push_back(Box::new(Pending { op, done }));
        let outcome = loop {
            tokio::select! {
                biased;
                outcome = &mut rx => break outcome,
                running = slot.running.clone().lock_owned() => {
                    // This caller leads the key's next run, in a task of its
                    // own: the other operations in it complete even if this
                    // caller goes away. The run answers this caller through
                    // `rx`, or served only others and this caller leads again.
                    let run = Run {
                        gate: inner.clone(),
                        key: key.clone(),
                        slot: slot.clone(),
                        backend: backend.clone(),
                        db,
                    };
                    let _ = tokio::spawn(run.once(running)).await;
                }
            }
        };
        inner.waiting.fetch_sub(1, Ordering::Relaxed);
        inner.release(&key, slot);
        outcome.unwrap_or_else(|_| {
            Err(ProxyError::Unsupported(
                "the read-modify-write of this command was abandoned; retry".into(),
            ))
        })
    }

    /// Holds `keys` (database and key, on backend `index`) until the guard is
    /// dropped, after the runs and holders before it.
    pub async fn lock(&self, index: usize, keys: &[(u32, Bytes)]) -> KeyGuard {
        let mut keys: Vec<SlotKey> = keys
            .iter()
            .map(|(db, key)| (index, *db, key.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        let mut guard = KeyGuard {
            inner: self.inner.clone(),
            held: Vec::with_capacity(keys.len()),
        };
        for key in keys {
            let slot = self.inner.slot(&key);
            let running = slot.running.clone().lock_owned().await;
            guard.held.push((key, slot, running));
        }
        guard
    }
}

/// One run of a key: what it needs after its leader may have gone.
struct Run {
    gate: Arc<Inner>,
    key: SlotKey,
    slot: Arc<Slot>,
    backend: Arc<dyn Backend>,
    db: u32,
}

impl Run {
    async fn once(self, running: OwnedMutexGuard<()>) {
        if let Some(mut batch) = Batch::start(&self.slot, &self.backend) {
            let done = if self.backend.rmw_group() > 1 {
                let grouper = self.gate.grouper(self.key.0, self.db);
                grouper.submit(batch, &self.backend, self.db).await
            } else {
                let result = self.backend.read_modify_write(self.db, &mut batch).await;
                Some((batch, result))
            };
            // `None`: the group's task failed; the parts' callers see that.
            let Some((mut batch, result)) = done else {
                drop(running);
                self.gate.release(&self.key, self.slot);
                return;
            };
            let served = batch.finish(result) as u64;
            self.gate.runs.fetch_add(1, Ordering::Relaxed);
            self.gate
                .coalesced
                .fetch_add(served.saturating_sub(1), Ordering::Relaxed);
        }
        drop(running);
        self.gate.release(&self.key, self.slot);
    }
}

/// The operations of one run, as one [`Rmw`] over their common read.
struct Batch {
    slot: Arc<Slot>,
    backend: Arc<dyn Backend>,
    read: [Read; 1],
    parts: Vec<Box<dyn Waiting>>,
    /// Each part's own error in the last decision (`None`: it went through).
    outcomes: Vec<Option<ProxyError>>,
    deadline: Instant,
}

impl Batch {
    /// A run for the operations at the front of `slot`'s queue, if any.
    fn start(slot: &Arc<Slot>, backend: &Arc<dyn Backend>) -> Option<Batch> {
        let mut queue = lock(&slot.queue);
        loop {
            let front = queue.front_mut()?;
            let op = front.op();
            if Instant::now() < op.deadline() {
                let (read, deadline) = (op.reads()[0].clone(), op.deadline());
                return Some(Batch {
                    slot: slot.clone(),
                    backend: backend.clone(),
                    read: [read],
                    parts: Vec::new(),
                    outcomes: Vec::new(),
                    deadline,
                });
            }
            let expired = queue.pop_front().expect("front exists");
            expired.finish(Err(timed_out(backend.as_ref())));
        }
    }

    /// Takes the waiting operations that share this run's read, in order,
    /// up to the first that does not (it waits for the next run).
    fn take_waiting(&mut self) {
        let mut queue = lock(&self.slot.queue);
        while self.parts.len() < MAX_BATCH {
            let Some(front) = queue.front_mut() else {
                break;
            };
            let op = front.op();
            if op.reads() != self.read.as_slice() {
                break;
            }
            let deadline = op.deadline();
            let part = queue.pop_front().expect("front exists");
            if Instant::now() >= deadline {
                part.finish(Err(timed_out(self.backend.as_ref())));
                continue;
            }
            self.deadline = if self.parts.is_empty() {
                deadline
            } else {
                self.deadline.min(deadline)
            };
            self.parts.push(part);
            self.outcomes.push(None);
        }
    }

    /// Answers every part; returns how many there were.
    fn finish(&mut self, result: Result<(), ProxyError>) -> usize {
        if self.parts.is_empty() {
            // Failed before it decided (the read failed): the operations
            // waiting for this read would fail alike, so they get the error.
            self.take_waiting();
        }
        let served = self.parts.len();
        for (part, own) in self.parts.drain(..).zip(self.outcomes.drain(..)) {
            let outcome = match (&result, own) {
                (Err(e), _) => Err(e.clone()),
                (Ok(()), Some(e)) => Err(e),
                (Ok(()), None) => Ok(()),
            };
            part.finish(outcome);
        }
        served
    }
}

/// Concurrent groups one backend and database run at most: the key runs
/// that are ready meanwhile wait and go together in the next group.
const GROUPS: usize = 2;

/// Key runs of one backend and database waiting to go together in one
/// read-modify-write (backends whose [`Backend::rmw_group`] is above 1).
#[derive(Default)]
struct Grouper {
    queue: Mutex<Vec<Grouped>>,
    running: AtomicUsize,
    /// Key runs that went with an earlier one of their group.
    grouped: AtomicU64,
}

/// A key run in a group, and where it goes back when the group is done.
struct Grouped {
    batch: Batch,
    done: oneshot::Sender<(Batch, Result<(), ProxyError>)>,
    /// Its run's own error (its write failed), after the group committed.
    own: Option<ProxyError>,
    /// How many writes of the group's are its own (its last decision).
    writes: usize,
}

impl Inner {
    fn grouper(&self, index: usize, db: u32) -> Arc<Grouper> {
        lock(&self.groups).entry((index, db)).or_default().clone()
    }
}

impl Grouper {
    /// Runs `batch` in the next group; gives it back with how it ended.
    async fn submit(
        self: Arc<Self>,
        batch: Batch,
        backend: &Arc<dyn Backend>,
        db: u32,
    ) -> Option<(Batch, Result<(), ProxyError>)> {
        let (done, rx) = oneshot::channel();
        lock(&self.queue).push(Grouped {
            batch,
            done,
            own: None,
            writes: 0,
        });
        if self.start() {
            tokio::spawn(self.drain(backend.clone(), db));
        }
        rx.await.ok()
    }

    /// Takes a place among the running groups if one is free.
    fn start(&self) -> bool {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < GROUPS).then_some(n + 1)
            })
            .is_ok()
    }

    /// Runs groups until none is waiting.
    async fn drain(self: Arc<Self>, backend: Arc<dyn Backend>, db: u32) {
        let limit = backend.rmw_group();
        loop {
            let items: Vec<Grouped> = {
                let mut queue = lock(&self.queue);
                let n = queue.len().min(limit);
                queue.drain(..n).collect()
            };
            if items.is_empty() {
                self.running.fetch_sub(1, Ordering::AcqRel);
                // A run queued after the take above sees a free place, or this does.
                if lock(&self.queue).is_empty() || !self.start() {
                    return;
                }
                continue;
            }
            let shared = items.len() as u64 - 1;
            run_group(items, backend.as_ref(), db).await;
            self.grouped.fetch_add(shared, Ordering::Relaxed);
        }
    }
}

/// One group: its key runs' reads and writes in one read-modify-write. When
/// it fails before anything was written (a read answered WRONGTYPE, EXEC
/// was refused), each run goes again alone, so an error reaches only the
/// operations it concerns.
async fn run_group(items: Vec<Grouped>, backend: &dyn Backend, db: u32) {
    let mut group = Group {
        reads: items.iter().map(|g| g.batch.read[0].clone()).collect(),
        deadline: items
            .iter()
            .map(|g| g.batch.deadline)
            .min()
            .unwrap_or_else(Instant::now),
        items,
    };
    let result = backend.read_modify_write(db, &mut group).await;
    // These end an operation before EXEC, or EXEC refused the whole queue.
    let alone = group.items.len() > 1
        && matches!(
            result,
            Err(ProxyError::Redis(_) | ProxyError::Unsupported(_))
        );
    for mut item in group.items {
        let outcome = match (&result, item.own.take()) {
            (Err(_), _) if alone => backend.read_modify_write(db, &mut item.batch).await,
            (Err(e), _) => Err(e.clone()),
            (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) => Ok(()),
        };
        let _ = item.done.send((item.batch, outcome));
    }
}

/// Key runs of one group as one [`Rmw`]: each decides on its own read's
/// snapshot; the writes are all of theirs, in order.
struct Group {
    items: Vec<Grouped>,
    reads: Vec<Read>,
    deadline: Instant,
}

impl Rmw for Group {
    fn reads(&self) -> &[Read] {
        &self.reads
    }

    fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<Write>, ProxyError> {
        let mut writes = Vec::new();
        for (item, found) in self.items.iter_mut().zip(snapshot) {
            item.own = None;
            item.writes = 0;
            match item.batch.decide(vec![found]) {
                Ok(own) => {
                    item.writes = own.len();
                    writes.extend(own);
                }
                Err(e) => item.own = Some(e),
            }
        }
        Ok(writes)
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Each run's writes answered apart: one that failed fails that run only.
    fn committed(&mut self, replies: Vec<Frame>) -> Result<(), ProxyError> {
        let mut replies = replies.into_iter();
        for item in &mut self.items {
            let own: Vec<Frame> = replies.by_ref().take(item.writes).collect();
            if let Err(e) = item.batch.committed(own) {
                item.own = Some(e);
            }
        }
        Ok(())
    }
}

fn timed_out(backend: &dyn Backend) -> ProxyError {
    ProxyError::UpstreamTimeout {
        upstream: backend.name().to_string(),
        timeout: backend.command_timeout(),
    }
}

/// Applies a part's write to the value the next part sees; `None`: the write
/// is not one a run can combine (it goes elsewhere than the run's read).
fn thread(read: &Read, state: &mut Snapshot, write: &Write) -> Option<()> {
    match (read, write) {
        (Read::String(key), Write::SetString { key: k, value, .. }) if k == key => {
            *state = Snapshot::String(Some(value.clone()));
        }
        (
            Read::HashField { key, field },
            Write::HashSet {
                key: k,
                field: f,
                value,
            },
        ) if k == key && f == field => {
            *state = Snapshot::HashField(Some(value.clone()));
        }
        _ => return None,
    }
    Some(())
}

impl Rmw for Batch {
    fn reads(&self) -> &[Read] {
        &self.read
    }

    /// Each part decides on the value the parts before it left, in arrival
    /// order; the run writes the last value (keeping the TTL only if every
    /// part's write kept it, as the writes one after another would).
    fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<Write>, ProxyError> {
        self.take_waiting();
        let mut state = snapshot
            .into_iter()
            .next()
            .ok_or_else(|| ProxyError::Unsupported("a read-modify-write read nothing".into()))?;
        let mut last: Option<Write> = None;
        let mut keep_ttl = true;
        for (part, outcome) in self.parts.iter_mut().zip(self.outcomes.iter_mut()) {
            *outcome = None;
            let writes = match part.op().decide(vec![state.clone()]) {
                Ok(writes) => writes,
                Err(e) => {
                    *outcome = Some(e);
                    continue;
                }
            };
            let mut next = state.clone();
            if writes
                .iter()
                .any(|w| thread(&self.read[0], &mut next, w).is_none())
            {
                *outcome = Some(ProxyError::Unsupported(
                    "this read-modify-write cannot share a run with others".into(),
                ));
                continue;
            }
            state = next;
            for write in writes {
                if let Write::SetString { keep_ttl: kept, .. } = &write {
                    keep_ttl &= *kept;
                }
                last = Some(write);
            }
        }
        Ok(last
            .map(|write| match write {
                Write::SetString { key, value, .. } => Write::SetString {
                    key,
                    value,
                    keep_ttl,
                },
                other => other,
            })
            .into_iter()
            .collect())
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::memory::{MemoryBackend, MemoryConfig};

    /// Appends `tail` to a string and answers the new value, or refuses
    /// (its own error) when the value is already `refuse_at` long.
    struct Append {
        reads: [Read; 1],
        tail: &'static [u8],
        refuse_at: Option<usize>,
        seen: Option<Bytes>,
    }

    fn append(tail: &'static [u8]) -> Append {
        Append {
            reads: [Read::String(Bytes::from_static(b"k"))],
            tail,
            refuse_at: None,
            seen: None,
        }
    }

    impl Rmw for Append {
        fn reads(&self) -> &[Read] {
            &self.reads
        }

        fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<Write>, ProxyError> {
            let Some(Snapshot::String(current)) = snapshot.into_iter().next() else {
                return Err(ProxyError::Unsupported("snapshot".into()));
            };
            let mut value = current.map(|v| v.to_vec()).unwrap_or_default();
            if Some(value.len()) == self.refuse_at {
                return Err(ProxyError::Redis("ERR refused".into()));
            }
            value.extend_from_slice(self.tail);
            let value = Bytes::from(value);
            self.seen = Some(value.clone());
            Ok(vec![Write::SetString {
                key: Bytes::from_static(b"k"),
                value,
                keep_ttl: true,
            }])
        }

        fn deadline(&self) -> Instant {
            Instant::now() + Duration::from_secs(5)
        }
    }

    #[tokio::test]
    async fn waiting_operations_share_a_run_in_arrival_order() {
        let backend: Arc<dyn Backend> =
            MemoryBackend::start("m", MemoryConfig::default(), Duration::from_secs(5));
        let gate = Gate::default();
        // Hold the key so that everything below waits for one run.
        let held = gate.lock(0, &[(0, Bytes::from_static(b"k"))]).await;
        let mut refused = append(b"!");
        refused.refuse_at = Some(2);
        let ops = [append(b"a"), append(b"b"), refused, append(b"c")];
        let mut calls = Vec::new();
        for op in ops {
            calls.push(gate.coalesce(0, &backend, 0, op));
        }
        let all = futures_util::future::join_all(calls);
        tokio::pin!(all);
        // Every operation queues behind the held key before it is let go.
        let queued = async {
            while gate.stats().waiting < 4 {
                tokio::task::yield_now().await;
            }
        };
        tokio::select! {
            biased;
            _ = &mut all => panic!("ran while the key was held"),
            _ = queued => {}
        }
        drop(held);
        let results = all.await;
        let seen: Vec<Result<Option<Bytes>, String>> = results
            .into_iter()
            .map(|r| r.map(|op| op.seen).map_err(|e| e.to_string()))
            .collect();
        let some = |v: &'static [u8]| Ok(Some(Bytes::from_static(v)));
        assert_eq!(
            seen,
            [
                some(b"a"),
                some(b"ab"),
                Err("ERR refused".into()),
                some(b"abc")
            ]
        );
        let stats = gate.stats();
        assert_eq!((stats.waiting, stats.runs, stats.coalesced), (0, 1, 3));
        // The key is forgotten once nobody waits on it.
        assert!(lock(&gate.inner.slots).is_empty());
    }
}
