//! The memory store: an in-process engine that runs Redis commands with
//! redis-server 7.0's semantics over opaque byte values (sealcache stores
//! envelopes here and never decrypts), bounded in bytes.
//!
//! # How it is built
//!
//! - **Atomicity.** One engine-wide lock (a plain mutex, never held across an
//!   `.await`) covers every command, MULTI/EXEC batch, blocking-pop hand-off
//!   and read-modify-write ([`MemoryStore::update`]). Commands are synchronous
//!   functions over a [`Ctx`]; a GET/SET costs about a microsecond.
//! - **Memory bound.** The keyspace itself is a hash-ordered map per
//!   database (cheap SCAN cursors and random keys). A moka cache shadows it:
//!   one entry per key, weighed by the bytes of the key, its value and a
//!   fixed overhead, with LRU eviction and per-key expiry. When moka evicts or
//!   expires an entry, its listener queues the key and the next command
//!   removes it from the keyspace, so whole keys go (never half a hash) and
//!   expired memory is reclaimed. Changes reach moka through an ordered queue
//!   applied after the lock is released, so moka's view is always a prefix
//!   of the keyspace's history.
//! - **Expiry.** Lazy, as Redis: every access checks the deadline first, so an
//!   expired key is never returned; moka's timer (a second late) reclaims
//!   keys nobody touches.
//! - **Blocking commands** are served in Redis's FIFO order by the command
//!   that makes their key ready; a blocked call that is dropped after being
//!   served puts its elements back, so a disconnecting client loses nothing.
//!
//! Where exact Redis behaviour is impossible or meaningless (SCAN cursors,
//! the order of unordered replies, random picks, approximate stream
//! trimming), the choices are listed in `DIFFERENCES.md` beside this file.
#![allow(
    clippy::result_large_err,
    reason = "a command's error is its Redis reply frame, built once on the failure path"
)]

pub mod backend;
mod blocking;
pub mod commands;
mod hash;
mod keys;
mod list;
mod pubsub;
mod scanmap;
mod set;
mod sorted;
mod stream;
mod strings;
mod task;
mod txn;
mod value;
mod zset;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use moka::Expiry;
use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;

use crate::protocol::Frame;
use crate::protocol::reply::error;
use crate::semantics::errors;

pub use backend::MemoryBackend;
pub use commands::{CommandKind, MemoryCommand, SUPPORTED};
pub use pubsub::Subscriber;
pub use stream::StreamId;
pub(crate) use task::TaskConnection;
pub use txn::{Entry, EntryValue, KeyType, StreamEntries, Txn, WrongType};

use scanmap::ScanMap;
use value::{Collection, KEY_OVERHEAD, Value};

/// Default size bound: 256 MiB.
pub const DEFAULT_MAX_MEMORY: u64 = 256 * 1024 * 1024;
/// Redis's default number of databases.
pub const DEFAULT_DATABASES: u32 = 16;
/// moka drops an expired key this long after its deadline; until then the
/// lazy check hides it. The margin keeps moka's clock, which is not the wall
/// clock, from removing a key Redis would still serve.
const EXPIRY_GRACE_MS: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Bytes of keys, values and bookkeeping the store may hold.
    pub max_memory: u64,
    /// Databases 0..databases (SELECT's range).
    pub databases: u32,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_memory: DEFAULT_MAX_MEMORY,
            databases: DEFAULT_DATABASES,
        }
    }
}

/// Counters for INFO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Weighed bytes of every key held (keys, values, overhead).
    pub used_bytes: u64,
    pub max_memory: u64,
    /// Keys per database (expired keys nobody touched yet included, as Redis's DBSIZE).
    pub keys: Vec<u64>,
    /// Keys removed to stay within `max_memory`.
    pub evictions: u64,
    /// Keys removed because their time to live passed.
    pub expirations: u64,
    /// Blocking calls waiting for a key.
    pub blocked_clients: usize,
}

/// Milliseconds since the Unix epoch (Redis's `mstime()`).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

const NO_EXPIRY: i64 = i64::MAX;

/// moka's view of one key: its weight and deadline. A new token is made
/// whenever a key is (re)created, so an eviction notice can tell whether it
/// is about the key still stored or an older one.
#[derive(Debug)]
struct Token {
    weight: AtomicU32,
    expire_at: AtomicI64,
}

impl Token {
    fn ttl(&self) -> Option<Duration> {
        let at = self.expire_at.load(Ordering::Relaxed);
        (at != NO_EXPIRY)
            .then(|| Duration::from_millis((at - now_ms() + EXPIRY_GRACE_MS).max(0) as u64))
    }
}

struct TokenExpiry;

impl Expiry<CacheKey, Arc<Token>> for TokenExpiry {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        token: &Arc<Token>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        token.ttl()
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        token: &Arc<Token>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        token.ttl()
    }
}

type CacheKey = (u32, Bytes);

/// A change for moka, applied in the order the keyspace changed.
enum CacheOp {
    Insert(CacheKey, Arc<Token>),
    Remove(CacheKey),
    /// A read, so that LRU eviction sees reads as well as writes.
    Touch(CacheKey),
}

/// One key: its value, its deadline (Unix ms), and moka's token.
#[derive(Debug)]
pub(crate) struct Slot {
    pub value: Value,
    pub expire_at: Option<i64>,
    token: Arc<Token>,
}

#[derive(Debug, Default)]
pub(crate) struct Db {
    pub keys: ScanMap<Slot>,
}

/// Everything the engine-wide lock protects.
pub(crate) struct State {
    pub dbs: Vec<Db>,
    cache_ops: Vec<CacheOp>,
    used_bytes: u64,
    evictions: u64,
    expirations: u64,
    pub blocked: blocking::Blocked,
    /// Keys that may let blocked clients proceed, in the order they became so.
    ready: VecDeque<(u32, Bytes)>,
}

/// A watched key's modification counter. Only watched keys are tracked.
#[derive(Debug, Default)]
struct Watched {
    count: usize,
    version: u64,
}

/// WATCH bookkeeping, under its own small lock (a token is released from
/// `Drop`, which must not wait for the engine lock).
#[derive(Default)]
struct Watches {
    keys: Mutex<HashMap<CacheKey, Watched>>,
    active: AtomicUsize,
}

/// Eviction notices from moka's listener, waiting for the next command.
#[derive(Default)]
struct Evicted {
    queue: Mutex<Vec<(CacheKey, Arc<Token>, RemovalCause)>>,
    pending: AtomicBool,
}

/// The parts of the store outside the engine lock that commands use.
pub(crate) struct Shared {
    pub databases: u32,
    watches: Watches,
    pub hub: pubsub::Hub,
}

pub struct MemoryStore {
    config: MemoryConfig,
    state: Mutex<State>,
    shared: Shared,
    cache: Cache<CacheKey, Arc<Token>>,
    /// Serialises applying `cache_ops`, so moka sees them in order.
    applying: tokio::sync::Mutex<()>,
    evicted: Arc<Evicted>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside a command leaves consistent data (each command checks
    // before it changes anything), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What WATCH remembers about a key, checked by [`MemoryStore::exec`].
pub struct WatchToken {
    key: CacheKey,
    version: u64,
    store: Arc<MemoryStore>,
}

impl std::fmt::Debug for WatchToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchToken")
            .field("db", &self.key.0)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Drop for WatchToken {
    fn drop(&mut self) {
        let watches = &self.store.shared.watches;
        let mut keys = lock(&watches.keys);
        if let Some(w) = keys.get_mut(&self.key) {
            w.count -= 1;
            if w.count == 0 {
                keys.remove(&self.key);
                watches.active.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl MemoryStore {
    pub fn new(config: MemoryConfig) -> Arc<MemoryStore> {
        let evicted = Arc::new(Evicted::default());
        let notices = Arc::clone(&evicted);
        let cache = Cache::builder()
            .max_capacity(config.max_memory)
            .eviction_policy(EvictionPolicy::lru())
            .weigher(|_key: &CacheKey, token: &Arc<Token>| token.weight.load(Ordering::Relaxed))
            .expire_after(TokenExpiry)
            .eviction_listener(move |key: Arc<CacheKey>, token, cause| {
                if matches!(cause, RemovalCause::Size | RemovalCause::Expired) {
                    lock(&notices.queue).push(((*key).clone(), token, cause));
                    notices.pending.store(true, Ordering::Release);
                }
            })
            .build();
        let databases = config.databases.max(1);
        Arc::new(MemoryStore {
            config,
            state: Mutex::new(State {
                dbs: (0..databases).map(|_| Db::default()).collect(),
                cache_ops: Vec::new(),
                used_bytes: 0,
                evictions: 0,
                expirations: 0,
                blocked: blocking::Blocked::default(),
                ready: VecDeque::new(),
            }),
            shared: Shared {
                databases,
                watches: Watches::default(),
                hub: pubsub::Hub::default(),
            },
            cache,
            applying: tokio::sync::Mutex::new(()),
            evicted,
        })
    }

    pub fn config(&self) -> MemoryConfig {
        self.config
    }

    /// Databases 0..dbs (SELECT's range).
    pub fn dbs(&self) -> u32 {
        self.shared.databases
    }

    /// Runs one command (name first) in database `db` and returns Redis's
    /// reply as a RESP3 frame. Blocking commands run as they do inside
    /// MULTI: they answer at once (a null when there is nothing to pop).
    /// Pub/Sub subscriptions need a [`Subscriber`]; transactions [`Self::exec`].
    pub async fn execute(&self, db: u32, args: &[Bytes]) -> Frame {
        let frame = match self.check_db(db) {
            Some(err) => err,
            None => self.with_ctx(db, |ctx| commands::dispatch(ctx, args)),
        };
        self.apply_cache_ops().await;
        frame
    }

    /// Runs a blocking command (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
    /// BZPOPMIN, BZPOPMAX, BZMPOP, XREAD … BLOCK), waiting for its keys as
    /// redis-server does. Cancellation-safe: dropping the future before it
    /// completes takes nothing from the store.
    pub async fn execute_blocking(self: &Arc<Self>, db: u32, args: &[Bytes]) -> Frame {
        if let Some(err) = self.check_db(db) {
            return err;
        }
        blocking::execute(self, db, args).await
    }

    /// Starts watching `key` (WATCH). Keep the token until EXEC or UNWATCH.
    pub fn watch(self: &Arc<Self>, db: u32, key: &Bytes) -> WatchToken {
        // A key that is already expired is deleted first, so that its
        // expiry counts as no change (Redis's rule).
        if db < self.shared.databases {
            self.with_ctx(db, |ctx| {
                ctx.expire_if_needed(db, key);
            });
        }
        let cache_key = (db, key.clone());
        let mut keys = lock(&self.shared.watches.keys);
        let watched = keys.entry(cache_key.clone()).or_insert_with(|| {
            self.shared.watches.active.fetch_add(1, Ordering::Relaxed);
            Watched::default()
        });
        watched.count += 1;
        WatchToken {
            key: cache_key,
            version: watched.version,
            store: Arc::clone(self),
        }
    }

    /// EXEC: runs `queued` (each a command, name first) atomically from
    /// database `db`, unless a watched key changed since its WATCH (then
    /// `None`, Redis's null reply). A queued SELECT switches the database for
    /// the commands after it; blocking commands answer at once.
    pub async fn exec(
        &self,
        db: u32,
        queued: Vec<Vec<Bytes>>,
        watched: &[WatchToken],
    ) -> Option<Vec<Frame>> {
        let replies = self.with_ctx(db, |ctx| {
            if !self.watches_hold(ctx, watched) {
                return None;
            }
            let mut replies = Vec::with_capacity(queued.len());
            for args in &queued {
                replies.push(commands::dispatch(ctx, args));
            }
            Some(replies)
        });
        self.apply_cache_ops().await;
        replies
    }

    fn watches_hold(&self, ctx: &mut Ctx<'_>, watched: &[WatchToken]) -> bool {
        for token in watched {
            let (db, key) = &token.key;
            // Expired since WATCH: changed, even if nobody touched it yet.
            let expired = ctx.st.dbs.get(*db as usize).is_some_and(|d| {
                d.keys
                    .get(key)
                    .is_some_and(|s| s.expire_at.is_some_and(|t| ctx.now > t))
            });
            if expired {
                return false;
            }
            let keys = lock(&self.shared.watches.keys);
            if keys.get(&token.key).map(|w| w.version) != Some(token.version) {
                return false;
            }
        }
        true
    }

    /// The atomic read-modify-write primitive: `f` runs under the engine
    /// lock with typed access to whole entries ([`Txn`]); nothing else runs
    /// in between. `keys` names the keys `f` will touch (other backends lock
    /// or condition on them; here the engine lock already covers all).
    pub async fn update<R>(
        &self,
        db: u32,
        keys: &[Bytes],
        f: impl FnOnce(&mut Txn<'_, '_>) -> R,
    ) -> R {
        let _ = keys;
        let db = db.min(self.shared.databases - 1);
        let result = self.with_ctx(db, |ctx| f(&mut Txn::new(ctx)));
        self.apply_cache_ops().await;
        result
    }

    /// A Pub/Sub subscriber (SUBSCRIBE, PSUBSCRIBE…); dropping it unsubscribes.
    pub fn subscriber(&self) -> Subscriber {
        self.shared.hub.subscriber()
    }

    pub fn stats(&self) -> MemoryStats {
        let st = lock(&self.state);
        MemoryStats {
            used_bytes: st.used_bytes,
            max_memory: self.config.max_memory,
            keys: st.dbs.iter().map(|d| d.keys.len() as u64).collect(),
            evictions: st.evictions,
            expirations: st.expirations,
            blocked_clients: st.blocked.count(),
        }
    }

    /// Brings moka up to date and lets it evict and expire now (it otherwise
    /// does so every few writes); call it now and then, e.g. from a timer.
    pub async fn maintain(&self) {
        self.apply_cache_ops().await;
        self.cache.run_pending_tasks().await;
        self.with_ctx(0, |_| ());
        self.apply_cache_ops().await;
    }

    fn check_db(&self, db: u32) -> Option<Frame> {
        (db >= self.shared.databases).then(|| error(errors::DB_OUT_OF_RANGE))
    }

    /// Runs `f` under the engine lock, after handling moka's eviction
    /// notices and before serving clients blocked on keys `f` made ready.
    pub(crate) fn with_ctx<R>(&self, db: u32, f: impl FnOnce(&mut Ctx<'_>) -> R) -> R {
        let mut st = lock(&self.state);
        let now = now_ms();
        self.drain_evictions(&mut st, now);
        let mut ctx = Ctx {
            st: &mut st,
            shared: &self.shared,
            db,
            now,
        };
        let result = f(&mut ctx);
        blocking::serve_ready(&mut ctx);
        result
    }

    fn drain_evictions(&self, st: &mut State, now: i64) {
        if !self.evicted.pending.swap(false, Ordering::Acquire) {
            return;
        }
        let notices = std::mem::take(&mut *lock(&self.evicted.queue));
        let mut ctx = Ctx {
            st,
            shared: &self.shared,
            db: 0,
            now,
        };
        for ((db, key), token, cause) in notices {
            let Some(slot) = ctx.st.dbs[db as usize].keys.get(&key) else {
                continue;
            };
            if !Arc::ptr_eq(&slot.token, &token) {
                // An older incarnation of the key; the current one is queued.
                continue;
            }
            let expired = slot.expire_at.is_some_and(|t| now > t);
            match cause {
                RemovalCause::Expired if !expired => {
                    // moka's clock ran ahead, or the deadline moved: track it again.
                    ctx.st
                        .cache_ops
                        .push(CacheOp::Insert((db, key), Arc::clone(&token)));
                }
                _ => {
                    ctx.remove(db, &key);
                    if expired {
                        ctx.st.expirations += 1;
                    } else {
                        ctx.st.evictions += 1;
                    }
                }
            }
        }
        blocking::serve_ready(&mut ctx);
    }

    /// Applies queued keyspace changes to moka, in order.
    async fn apply_cache_ops(&self) {
        let _turn = self.applying.lock().await;
        let ops = std::mem::take(&mut lock(&self.state).cache_ops);
        for op in ops {
            match op {
                CacheOp::Insert(key, token) => self.cache.insert(key, token).await,
                CacheOp::Remove(key) => self.cache.invalidate(&key).await,
                CacheOp::Touch(key) => {
                    self.cache.get(&key).await;
                }
            }
        }
    }
}

/// A command's view of the store: the locked state, the current database
/// and the time the command started (Redis's notion of "now" for expiry).
pub(crate) struct Ctx<'a> {
    pub st: &'a mut State,
    pub shared: &'a Shared,
    pub db: u32,
    pub now: i64,
}

impl Ctx<'_> {
    pub fn dbs(&self) -> u32 {
        self.shared.databases
    }

    /// Deletes `key` if its deadline has passed; true if it did.
    pub fn expire_if_needed(&mut self, db: u32, key: &[u8]) -> bool {
        let expired = self.st.dbs[db as usize]
            .keys
            .get(key)
            .is_some_and(|s| s.expire_at.is_some_and(|t| self.now > t));
        if expired {
            self.remove(db, key);
            self.st.expirations += 1;
        }
        expired
    }

    /// The live slot of `key` in database `db`.
    pub fn slot_in(&mut self, db: u32, key: &[u8]) -> Option<&Slot> {
        self.expire_if_needed(db, key);
        self.st.dbs[db as usize].keys.get(key)
    }

    pub fn slot(&mut self, key: &[u8]) -> Option<&Slot> {
        self.slot_in(self.db, key)
    }

    pub fn slot_mut_in(&mut self, db: u32, key: &[u8]) -> Option<&mut Slot> {
        self.expire_if_needed(db, key);
        self.st.dbs[db as usize].keys.get_mut(key)
    }

    pub fn value(&mut self, key: &[u8]) -> Option<&Value> {
        self.slot(key).map(|s| &s.value)
    }

    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.slot(key).is_some()
    }

    /// The collection at `key`: `Ok(None)` when absent, WRONGTYPE when the
    /// key holds another type.
    pub fn collection<T: Collection>(&mut self, key: &[u8]) -> Result<Option<&T>, Frame> {
        match self.value(key) {
            None => Ok(None),
            Some(v) => T::of(v).map(Some).ok_or_else(|| error(errors::WRONGTYPE)),
        }
    }

    pub fn collection_mut<T: Collection>(&mut self, key: &[u8]) -> Result<Option<&mut T>, Frame> {
        self.collection::<T>(key)?;
        let db = self.db;
        Ok(self
            .slot_mut_in(db, key)
            .and_then(|s| T::of_mut(&mut s.value)))
    }

    /// The collection at `key`, created empty when absent (call `changed`
    /// after).
    pub fn collection_or_new<T: Collection>(&mut self, key: &Bytes) -> Result<&mut T, Frame> {
        self.collection::<T>(key)?;
        if !self.exists(key) {
            self.put(key.clone(), T::default().into_value(), None);
        }
        Ok(self.collection_mut(key)?.expect("created above"))
    }

    /// Records a read for LRU.
    pub fn touch_read(&mut self, key: &[u8]) {
        self.st
            .cache_ops
            .push(CacheOp::Touch((self.db, Bytes::copy_from_slice(key))));
    }

    /// Stores `value` at `key` in `db` (replacing anything there), with
    /// deadline `expire_at`.
    pub fn put_in(&mut self, db: u32, key: Bytes, value: Value, expire_at: Option<i64>) {
        let weight = weight_of(&key, &value);
        let token = Arc::new(Token {
            weight: AtomicU32::new(weight),
            expire_at: AtomicI64::new(expire_at.unwrap_or(NO_EXPIRY)),
        });
        let slot = Slot {
            value,
            expire_at,
            token: Arc::clone(&token),
        };
        let old = self.st.dbs[db as usize].keys.insert(key.clone(), slot);
        if let Some(old) = old {
            self.st.used_bytes -= u64::from(old.token.weight.load(Ordering::Relaxed));
        }
        self.st.used_bytes += u64::from(weight);
        self.st
            .cache_ops
            .push(CacheOp::Insert((db, key.clone()), token));
        self.signal(db, &key);
    }

    pub fn put(&mut self, key: Bytes, value: Value, expire_at: Option<i64>) {
        self.put_in(self.db, key, value, expire_at);
    }

    /// Deletes `key` from `db`; the removed slot, if there was one.
    pub fn remove(&mut self, db: u32, key: &[u8]) -> Option<Slot> {
        let (key, slot) = self.st.dbs[db as usize].keys.remove(key)?;
        self.st.used_bytes -= u64::from(slot.token.weight.load(Ordering::Relaxed));
        self.signal(db, &key);
        self.st.cache_ops.push(CacheOp::Remove((db, key)));
        Some(slot)
    }

    /// Call after changing `key`'s value in place: an emptied collection is
    /// deleted (as Redis does), anything else is re-weighed and signalled.
    pub fn changed_in(&mut self, db: u32, key: &[u8]) {
        let Some((stored, slot)) = self.st.dbs[db as usize].keys.get_key_value(key) else {
            return;
        };
        if slot.value.is_empty_collection() {
            self.remove(db, key);
            return;
        }
        let stored = stored.clone();
        let weight = weight_of(&stored, &slot.value);
        let old = slot.token.weight.swap(weight, Ordering::Relaxed);
        let token = Arc::clone(&slot.token);
        self.st.used_bytes = self.st.used_bytes - u64::from(old) + u64::from(weight);
        self.signal(db, &stored);
        self.st.cache_ops.push(CacheOp::Insert((db, stored), token));
    }

    pub fn changed(&mut self, key: &[u8]) {
        self.changed_in(self.db, key);
    }

    /// Sets or clears the deadline of an existing key.
    pub fn set_expire_in(&mut self, db: u32, key: &[u8], expire_at: Option<i64>) {
        let Some((stored, slot)) = self.st.dbs[db as usize].keys.get_key_value(key) else {
            return;
        };
        let (stored, token) = (stored.clone(), Arc::clone(&slot.token));
        if let Some(slot) = self.st.dbs[db as usize].keys.get_mut(key) {
            slot.expire_at = expire_at;
        }
        token
            .expire_at
            .store(expire_at.unwrap_or(NO_EXPIRY), Ordering::Relaxed);
        self.signal(db, &stored);
        self.st.cache_ops.push(CacheOp::Insert((db, stored), token));
    }

    /// A key changed: WATCH sees it, blocked clients may proceed.
    pub fn signal(&mut self, db: u32, key: &[u8]) {
        let watches = &self.shared.watches;
        if watches.active.load(Ordering::Relaxed) > 0 {
            let mut keys = lock(&watches.keys);
            if let Some(w) = keys.get_mut(&(db, Bytes::copy_from_slice(key))) {
                w.version += 1;
            }
        }
        if self.st.blocked.is_waiting(db, key)
            && !self.st.ready.iter().any(|(d, k)| *d == db && k == key)
        {
            self.st.ready.push_back((db, Bytes::copy_from_slice(key)));
        }
    }

    /// Signals every watched key of `db` that exists (FLUSHDB, FLUSHALL).
    pub fn signal_all_watched(&mut self, db: u32) {
        let watches = &self.shared.watches;
        if watches.active.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut keys = lock(&watches.keys);
        for ((d, key), w) in keys.iter_mut() {
            if *d == db && self.st.dbs[db as usize].keys.contains(key) {
                w.version += 1;
            }
        }
    }

    /// Empties database `db` (FLUSHDB).
    pub fn flush(&mut self, db: u32) {
        self.signal_all_watched(db);
        let keys = std::mem::take(&mut self.st.dbs[db as usize].keys);
        for (key, slot) in keys.iter() {
            self.st.used_bytes -= u64::from(slot.token.weight.load(Ordering::Relaxed));
            self.st.cache_ops.push(CacheOp::Remove((db, key.clone())));
        }
    }
}

fn weight_of(key: &[u8], value: &Value) -> u32 {
    u32::try_from(key.len() + value.mem() + KEY_OVERHEAD).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
