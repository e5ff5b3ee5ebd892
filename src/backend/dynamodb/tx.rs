//! One command as an optimistic transaction ([`Tx`]): it reads meta items
//! (remembering each version) and elements, stages its writes, and commits
//! them on the condition that no key it read has changed — one conditional
//! write, or TransactWriteItems when several items change. A lost race
//! retries the whole command with backoff and jitter, up to a deadline.
//!
//! # Commit
//!
//! - A key whose content is replaced (new key, new type, SINTERSTORE…, a
//!   large string) gets a new generation: its elements are written first
//!   (invisible: the meta item still names the old generation), then the
//!   meta item, then the old generation is deleted.
//! - Changes to an existing generation go in the same transaction as the
//!   meta item. When they exceed a transaction (100 items, 4 MB) the key is
//!   copied to a new generation instead, so nothing is ever half-applied.
//! - Elements carry a TTL no earlier than their key's deadline (plus a day of
//!   slack), so DynamoDB reaps them after the key; a deadline moving beyond
//!   it (or PERSIST) copies the key to a new generation with new TTLs.
//! - Read-only commands that read several items check afterwards that every
//!   key's version is unchanged, so their reply is one snapshot.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem};
use bytes::Bytes;

use super::DynamoStore;
use super::error::DynamoError;
use super::io::{self, Expect, Outcome, QuerySpec, Range, TRANSACT_MAX, TRANSACT_MAX_BYTES};
use super::item::{
    self, ELEM_TTL_SLACK_SECS, Elem, Gen, Item, Kind, MAX_KEY_LEN, MAX_VALUE_IN_ITEM, META_SK,
    Meta, PK, SK, get_b, key_item,
};
use crate::protocol::Frame;
use crate::protocol::reply::error;
use crate::semantics::errors;

/// Why a command's attempt ended without a reply of its own.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Answer this (a Redis error such as WRONGTYPE); nothing is written.
    Reply(Box<Frame>),
    Dynamo(Box<DynamoError>),
    /// Someone wrote a key this attempt read: run the command again.
    Conflict,
}

impl From<DynamoError> for Fail {
    fn from(e: DynamoError) -> Self {
        Fail::Dynamo(Box::new(e))
    }
}

pub(crate) fn reply_err(msg: impl Into<String>) -> Fail {
    Fail::Reply(Box::new(error(msg)))
}

pub(crate) fn wrongtype() -> Fail {
    reply_err(errors::WRONGTYPE)
}

/// The wall clock in Unix milliseconds (expiry is wall-clock time, shared by
/// every sidecar on the table).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The reply to a failure of the store itself.
pub(crate) fn failure_reply(e: &DynamoError) -> Frame {
    error(format!("ERR sealcache: {e}"))
}

fn new_version() -> u64 {
    rand::random::<u64>() >> 1
}

/// A key this attempt read, and what it will write there.
struct Slot {
    pk: Vec<u8>,
    /// The meta item as stored (expired or not).
    found: Option<Meta>,
    change: Option<Change>,
    /// Used without being read first: a bug, refused at commit (a write on
    /// it could not be conditioned on what it replaces).
    unread: bool,
}

struct Change {
    /// `None` deletes the key.
    meta: Option<Meta>,
    /// Element writes by suffix, relative to `meta`'s generation: `None` deletes.
    elems: BTreeMap<Vec<u8>, Option<Elem>>,
}

impl Slot {
    fn live(&self, now: i64) -> Option<&Meta> {
        self.found.as_ref().filter(|m| m.is_live(now))
    }
}

pub(crate) struct Tx<'s> {
    pub store: &'s DynamoStore,
    pub db: u32,
    /// The time the command runs at (Unix ms).
    pub now: i64,
    consistent: bool,
    slots: Vec<Slot>,
    elems_read: usize,
    /// A list item was read by position, which depends on the meta item.
    position_read: bool,
}

impl<'s> Tx<'s> {
    pub(crate) fn new(store: &'s DynamoStore, db: u32, write: bool) -> Tx<'s> {
        Tx {
            store,
            db,
            now: now_ms(),
            // Writes always read consistently: they commit on what they read.
            consistent: write || store.consistent_reads,
            slots: Vec::new(),
            elems_read: 0,
            position_read: false,
        }
    }

    /// The slot of `key` in the current database.
    fn index(&self, key: &[u8]) -> Option<usize> {
        let pk = item::pk(self.db, key);
        self.slots.iter().position(|s| s.pk == pk)
    }

    /// The slot of `key`; a key used before it was read gets an unread slot
    /// (caught in debug builds, refused at commit otherwise; never a panic).
    fn slot_index(&mut self, key: &[u8]) -> usize {
        if let Some(i) = self.index(key) {
            return i;
        }
        debug_assert!(false, "a key is loaded before it is used");
        self.slots.push(Slot {
            pk: item::pk(self.db, key),
            found: None,
            change: None,
            unread: true,
        });
        self.slots.len() - 1
    }

    fn change(&mut self, key: &[u8]) -> &mut Change {
        let i = self.slot_index(key);
        let slot = &mut self.slots[i];
        slot.change.get_or_insert_with(|| Change {
            meta: slot.found.clone().filter(|m| m.is_live(self.now)),
            elems: BTreeMap::new(),
        })
    }

    /// Reads `key`'s meta item; its live meta (`None` if absent or expired).
    /// A key too long to store reads as absent (writing it fails at commit).
    pub async fn load(&mut self, key: &Bytes) -> Result<Option<Meta>, Fail> {
        if self.index(key).is_none() {
            let pk = item::pk(self.db, key);
            let found = if key.len() > MAX_KEY_LEN {
                None
            } else {
                self.store.get_meta(&pk, self.consistent).await?
            };
            self.slots.push(Slot {
                pk,
                found,
                change: None,
                unread: false,
            });
        }
        Ok(self.meta(key).cloned())
    }

    /// Reads several keys' meta items in batches.
    pub async fn load_many(&mut self, keys: &[Bytes]) -> Result<(), Fail> {
        let mut wanted = Vec::new();
        for key in keys {
            if self.index(key).is_none() && !wanted.iter().any(|(k, _): &(Bytes, Vec<u8>)| k == key)
            {
                wanted.push((key.clone(), item::pk(self.db, key)));
            }
        }
        if wanted.len() == 1 {
            self.load(&wanted[0].0).await?;
            return Ok(());
        }
        let lookups: Vec<_> = wanted
            .iter()
            .filter(|(key, _)| key.len() <= MAX_KEY_LEN)
            .map(|(_, pk)| (pk.clone(), META_SK.to_vec()))
            .collect();
        let mut found = self.store.batch_get(&lookups, self.consistent).await?;
        for (_, pk) in wanted {
            let meta = match found.remove(&(pk.clone(), META_SK.to_vec())) {
                Some(item) => Some(self.store.parse_meta(&pk, &item)?),
                None => None,
            };
            self.slots.push(Slot {
                pk,
                found: meta,
                change: None,
                unread: false,
            });
        }
        Ok(())
    }

    /// The live meta of a loaded key.
    /// Writes this transaction staged already count: a key it deleted reads
    /// as absent, one it changed as changed.
    pub fn meta(&self, key: &[u8]) -> Option<&Meta> {
        let Some(i) = self.index(key) else {
            debug_assert!(false, "a key is loaded before it is used");
            return None;
        };
        let slot = &self.slots[i];
        match &slot.change {
            Some(change) => change.meta.as_ref(),
            None => slot.live(self.now),
        }
    }

    /// Loads `key` and checks its type: `None` when absent, WRONGTYPE when another type.
    pub async fn typed(&mut self, key: &Bytes, kind: Kind) -> Result<Option<Meta>, Fail> {
        match self.load(key).await? {
            Some(m) if m.kind != kind => Err(wrongtype()),
            other => Ok(other),
        }
    }

    pub fn pk(&self, key: &[u8]) -> Vec<u8> {
        item::pk(self.db, key)
    }

    // --- Reading elements ------------------------------------------------------------------

    fn generation(meta: &Meta) -> Gen {
        meta.generation.unwrap_or_default()
    }

    /// Elements of `meta`'s generation by suffix, in the order asked.
    pub async fn elems(
        &mut self,
        key: &[u8],
        meta: &Meta,
        suffixes: &[Vec<u8>],
    ) -> Result<Vec<Option<Elem>>, Fail> {
        let pk = self.pk(key);
        let generation = Self::generation(meta);
        // Elements this transaction wrote already, or a whole new content.
        let i = self.slot_index(key);
        let (staged, whole) = match &self.slots[i].change {
            Some(change) => {
                let live = self.slots[i].live(self.now).and_then(|m| m.generation);
                (
                    change.elems.clone(),
                    change.meta.as_ref().is_some_and(|m| m.generation != live),
                )
            }
            None => (BTreeMap::new(), false),
        };
        if whole || (!suffixes.is_empty() && suffixes.iter().all(|s| staged.contains_key(s))) {
            return Ok(suffixes
                .iter()
                .map(|s| staged.get(s).cloned().flatten())
                .collect());
        }
        let keys: Vec<(Vec<u8>, Vec<u8>)> = suffixes
            .iter()
            .map(|s| (pk.clone(), item::elem_sk(meta.kind, &generation, s)))
            .collect();
        self.elems_read += keys.len();
        let found = if keys.len() == 1 {
            let item = self
                .store
                .get_item(&keys[0].0, &keys[0].1, self.consistent)
                .await?;
            item.map(|i| vec![(keys[0].clone(), i)])
                .unwrap_or_default()
                .into_iter()
                .collect()
        } else {
            self.store.batch_get(&keys, self.consistent).await?
        };
        Ok(keys
            .iter()
            .zip(suffixes)
            .map(|(k, suffix)| match staged.get(suffix) {
                Some(elem) => elem.clone(),
                None => found
                    .get(k)
                    .and_then(|i| Elem::from_item(i, meta.kind, &generation)),
            })
            .collect())
    }

    pub async fn elem(
        &mut self,
        key: &[u8],
        meta: &Meta,
        suffix: Vec<u8>,
    ) -> Result<Option<Elem>, Fail> {
        Ok(self.elems(key, meta, &[suffix]).await?.pop().flatten())
    }

    fn spec(&self, key: &[u8], meta: &Meta, range: Range, forward: bool) -> QuerySpec {
        let mut spec = QuerySpec::new(self.pk(key), range, self.consistent);
        spec.forward = forward;
        let _ = meta;
        spec
    }

    pub fn everything(meta: &Meta) -> Range {
        Range::Prefix(item::elem_prefix(meta.kind, &Self::generation(meta)))
    }

    /// Elements in sort-key order (or reversed), up to `max`.
    pub async fn range(
        &mut self,
        key: &[u8],
        meta: &Meta,
        range: Range,
        forward: bool,
        max: Option<usize>,
    ) -> Result<Vec<Elem>, Fail> {
        let spec = self.spec(key, meta, range, forward);
        let items = self.store.query_all(spec, max).await?;
        self.elems_read += items.len().max(1);
        let generation = Self::generation(meta);
        Ok(items
            .iter()
            .filter_map(|i| Elem::from_item(i, meta.kind, &generation))
            .collect())
    }

    /// Every element of a key.
    pub async fn all(&mut self, key: &[u8], meta: &Meta) -> Result<Vec<Elem>, Fail> {
        self.range(key, meta, Self::everything(meta), true, None)
            .await
    }

    /// Sorted-set members in `zorder` (score, then member) between two index
    /// keys' score parts (inclusive; `None`: unbounded), up to `max`.
    pub async fn zorder(
        &mut self,
        key: &[u8],
        meta: &Meta,
        bounds: Option<([u8; 8], [u8; 8])>,
        forward: bool,
        max: Option<usize>,
    ) -> Result<Vec<Elem>, Fail> {
        let mut spec = self.spec(key, meta, Self::zrange(meta, bounds), forward);
        spec.zorder = true;
        let items = self.store.query_all(spec, max).await?;
        self.elems_read += items.len().max(1);
        let generation = Self::generation(meta);
        Ok(items
            .iter()
            .filter_map(|i| Elem::from_item(i, Kind::ZSet, &generation))
            .collect())
    }

    fn zrange(meta: &Meta, bounds: Option<([u8; 8], [u8; 8])>) -> Range {
        let generation = Self::generation(meta);
        match bounds {
            None => Range::Prefix(generation.to_vec()),
            Some((lo, hi)) => {
                let mut low = generation.to_vec();
                low.extend_from_slice(&lo);
                let mut high = generation.to_vec();
                high.extend_from_slice(&hi);
                // Above every member with this score (members are at most 1000 bytes).
                high.extend(std::iter::repeat_n(0xFF, item::MAX_NAME_IN_KEY + 1));
                Range::Between(low, high)
            }
        }
    }

    /// How many `zorder` entries lie between two index keys (inclusive).
    pub async fn zcount_between(
        &mut self,
        key: &[u8],
        meta: &Meta,
        lo: Vec<u8>,
        hi: Vec<u8>,
    ) -> Result<i64, Fail> {
        let mut spec = self.spec(key, meta, Range::Between(lo, hi), true);
        spec.zorder = true;
        self.elems_read += 2;
        Ok(self.store.query_count(spec).await?)
    }

    /// Marks that an element was addressed through the meta item (list
    /// positions), so a read-only command checks the meta item after.
    pub fn read_by_position(&mut self) {
        self.position_read = true;
    }

    /// The sort-key range of elements with suffixes `lo..=hi`.
    pub fn between(meta: &Meta, lo: &[u8], hi: &[u8]) -> Range {
        let generation = Self::generation(meta);
        Range::Between(
            item::elem_sk(meta.kind, &generation, lo),
            item::elem_sk(meta.kind, &generation, hi),
        )
    }

    /// A string's value (its chunks when it does not fit the meta item).
    pub async fn string_value(&mut self, key: &[u8], meta: &Meta) -> Result<Bytes, Fail> {
        if let Some(value) = &meta.value {
            return Ok(value.clone());
        }
        let suffixes: Vec<Vec<u8>> = (0..meta.count as u32).map(item::chunk_suffix).collect();
        // Chunks never change (a new value gets a new generation), so reading
        // them needs no check of the meta item afterwards.
        let read_before = self.elems_read;
        let chunks = self.elems(key, meta, &suffixes).await?;
        self.elems_read = read_before;
        // A missing chunk: the value was replaced (and its chunks removed) since
        // the meta item was read. Read again.
        assemble(chunks, meta.length).ok_or(Fail::Conflict)
    }

    // --- Staging writes --------------------------------------------------------------------

    /// Sets `key`'s meta item (new or changed; same generation unless `meta`'s differs).
    pub fn put(&mut self, key: &[u8], meta: Meta) {
        self.change(key).meta = Some(meta);
    }

    pub fn put_elem(&mut self, key: &[u8], elem: Elem) {
        let suffix = elem.suffix.clone();
        self.change(key).elems.insert(suffix, Some(elem));
    }

    pub fn del_elem(&mut self, key: &[u8], suffix: Vec<u8>) {
        self.change(key).elems.insert(suffix, None);
    }

    /// Deletes the key (its elements go with it).
    pub fn delete(&mut self, key: &[u8]) {
        let change = self.change(key);
        change.meta = None;
        change.elems.clear();
    }

    /// Replaces the key's whole content: `meta` under a new generation with exactly `elems`.
    pub fn replace(&mut self, key: &[u8], mut meta: Meta, elems: Vec<Elem>) {
        if meta.kind != Kind::String || !elems.is_empty() {
            meta.generation = Some(item::new_gen());
        }
        let change = self.change(key);
        change.elems = elems
            .into_iter()
            .map(|e| (e.suffix.clone(), Some(e)))
            .collect();
        change.meta = Some(meta);
    }

    /// Stores a string value, inline or in chunks, with deadline `expire_at`.
    pub fn set_string(&mut self, key: &[u8], value: Bytes, expire_at: Option<i64>) {
        let (mut meta, chunks) = string_meta(key, value);
        meta.expire_at = expire_at;
        self.replace(key, meta, chunks);
    }

    pub fn has_writes(&self) -> bool {
        self.slots.iter().any(|s| s.change.is_some())
    }

    // --- Commit ----------------------------------------------------------------------------

    fn needs_validation(&self) -> bool {
        self.consistent
            && (self.elems_read > 1
                || (self.slots.len() > 1 && self.elems_read > 0)
                || self.position_read)
    }

    /// Re-reads the meta items of `slots`: a conflict if any changed.
    async fn validate(&self, which: &[usize]) -> Result<(), Fail> {
        if which.is_empty() {
            return Ok(());
        }
        let keys: Vec<_> = which
            .iter()
            .map(|&i| (self.slots[i].pk.clone(), META_SK.to_vec()))
            .collect();
        let found = self.store.batch_get(&keys, true).await?;
        for &i in which {
            let slot = &self.slots[i];
            let now = found
                .get(&(slot.pk.clone(), META_SK.to_vec()))
                .and_then(|item| item::get_n::<u64>(item, "v"));
            if now != slot.found.as_ref().map(|m| m.version) {
                return Err(Fail::Conflict);
            }
        }
        Ok(())
    }

    pub(crate) async fn commit(mut self) -> Result<(), Fail> {
        if !self.has_writes() {
            if self.needs_validation() {
                let all: Vec<usize> = (0..self.slots.len()).collect();
                self.validate(&all).await?;
            }
            return Ok(());
        }
        if self.slots.iter().any(|s| s.unread && s.change.is_some()) {
            return Err(reply_err(
                "ERR sealcache: internal error: the dynamodb backend was about to write a key it had not read; nothing was written (please report this)",
            ));
        }
        if self
            .slots
            .iter()
            .any(|s| s.change.is_some() && s.pk.len() > item::MAX_PK)
        {
            return Err(reply_err(format!(
                "ERR sealcache: keys longer than {MAX_KEY_LEN} bytes are not supported by the dynamodb backend (DynamoDB's partition key limit)"
            )));
        }
        let now = self.now;
        let mut plans = Vec::new();
        let mut checks = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(change) = slot.change.take() else {
                checks.push(i);
                continue;
            };
            plans.push(Plan::new(i, slot, change, now));
        }
        // Fit the transaction: move the largest element sets out of it
        // (written first under a new generation) until it fits.
        let mut validate_checks = false;
        loop {
            let in_tx: usize = plans
                .iter()
                .filter(|p| !p.staged)
                .map(|p| p.elems.len())
                .sum();
            let actions = plans.len() + if validate_checks { 0 } else { checks.len() } + in_tx;
            let bytes: usize = plans.iter().map(|p| p.bytes(&self.slots[p.slot].pk)).sum();
            if actions <= TRANSACT_MAX && bytes <= TRANSACT_MAX_BYTES {
                break;
            }
            let biggest = plans
                .iter_mut()
                .filter(|p| !p.staged && !p.elems.is_empty())
                .max_by_key(|p| p.elems.len());
            match biggest {
                Some(plan) => {
                    plan.staged = true;
                    plan.copy = plan.in_place;
                }
                None if !validate_checks && !checks.is_empty() => validate_checks = true,
                None => {
                    return Err(reply_err(format!(
                        "ERR sealcache: this command changes more than {TRANSACT_MAX} keys, more than one DynamoDB transaction holds"
                    )));
                }
            }
        }
        for plan in &mut plans {
            if plan.copy {
                let slot = &self.slots[plan.slot];
                plan.copy_to_new_generation(self.store, slot).await?;
            }
        }
        // Stage new generations' elements.
        let mut staged = Vec::new();
        for plan in plans.iter().filter(|p| p.staged) {
            let pk = &self.slots[plan.slot].pk;
            if let Some(meta) = &plan.meta {
                let generation = meta.generation.unwrap_or_default();
                for elem in plan.elems.values().flatten() {
                    staged.push(elem.to_item(pk, meta.kind, &generation, meta.elem_ttl));
                }
            }
        }
        let staged_keys: Vec<Item> = staged
            .iter()
            .filter_map(|i| Some(key_item(get_b(i, PK)?, get_b(i, SK)?)))
            .collect();
        if !staged.is_empty() {
            self.store.batch_write(staged, Vec::new()).await?;
        }
        let outcome = self
            .execute(
                &plans,
                if validate_checks { &[] } else { &checks },
                validate_checks.then_some(&checks),
            )
            .await;
        match outcome {
            Ok(Outcome::Committed) => {}
            Ok(Outcome::Conflict) | Err(_) => {
                // Our new generation never became visible: remove it.
                if !staged_keys.is_empty()
                    && let Err(e) = self.store.batch_write(Vec::new(), staged_keys).await
                {
                    tracing::warn!(backend = %self.store.at.backend, error = %e, "could not remove the elements of a write that did not commit");
                }
                return match outcome {
                    Err(e) => Err(e),
                    _ => Err(Fail::Conflict),
                };
            }
        }
        // Old generations are garbage now.
        for plan in &plans {
            let slot = &self.slots[plan.slot];
            if let Some((kind, generation)) = plan.garbage(slot) {
                self.store.cleanup(&slot.pk, kind, &generation).await?;
            }
        }
        Ok(())
    }

    async fn execute(
        &self,
        plans: &[Plan],
        checks: &[usize],
        revalidate: Option<&Vec<usize>>,
    ) -> Result<Outcome, Fail> {
        if let Some(which) = revalidate {
            self.validate(which).await?;
        }
        let in_tx: usize = plans
            .iter()
            .filter(|p| !p.staged)
            .map(|p| p.elems.len())
            .sum();
        if plans.len() == 1 && checks.is_empty() && in_tx == 0 {
            let plan = &plans[0];
            let slot = &self.slots[plan.slot];
            let expect = Expect::of(slot.found.as_ref());
            return Ok(match &plan.meta {
                Some(meta) => self.store.put_if(meta.to_item(&slot.pk), expect).await?,
                None => self.store.delete_if(&slot.pk, expect).await?,
            });
        }
        let mut actions = Vec::new();
        let table = &self.store.table;
        let build = |e: aws_sdk_dynamodb::error::BuildError| {
            Fail::Dynamo(Box::new(DynamoError::Request {
                at: self.store.at.clone(),
                operation: "TransactWriteItems",
                reason: format!("the request could not be built: {e}"),
            }))
        };
        for plan in plans {
            let slot = &self.slots[plan.slot];
            let (condition, names, values) = Expect::of(slot.found.as_ref()).condition();
            let values = (!values.is_empty()).then_some(values);
            let action = match &plan.meta {
                Some(meta) => TransactWriteItem::builder().put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(meta.to_item(&slot.pk)))
                        .condition_expression(condition)
                        .set_expression_attribute_names(Some(names))
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(build)?,
                ),
                None => TransactWriteItem::builder().delete(
                    Delete::builder()
                        .table_name(table)
                        .set_key(Some(key_item(&slot.pk, &META_SK)))
                        .condition_expression(condition)
                        .set_expression_attribute_names(Some(names))
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(build)?,
                ),
            };
            actions.push(action.build());
            if plan.staged {
                continue;
            }
            let (kind, generation) = match &plan.meta {
                Some(meta) => (meta.kind, meta.generation.unwrap_or_default()),
                None => continue,
            };
            let elem_ttl = plan.meta.as_ref().and_then(|m| m.elem_ttl);
            for (suffix, elem) in &plan.elems {
                let action = match elem {
                    Some(elem) => TransactWriteItem::builder().put(
                        Put::builder()
                            .table_name(table)
                            .set_item(Some(elem.to_item(&slot.pk, kind, &generation, elem_ttl)))
                            .build()
                            .map_err(build)?,
                    ),
                    None => TransactWriteItem::builder().delete(
                        Delete::builder()
                            .table_name(table)
                            .set_key(Some(key_item(
                                &slot.pk,
                                &item::elem_sk(kind, &generation, suffix),
                            )))
                            .build()
                            .map_err(build)?,
                    ),
                };
                actions.push(action.build());
            }
        }
        for &i in checks {
            let slot = &self.slots[i];
            let (condition, names, values) = Expect::of(slot.found.as_ref()).condition();
            actions.push(
                TransactWriteItem::builder()
                    .condition_check(
                        ConditionCheck::builder()
                            .table_name(table)
                            .set_key(Some(key_item(&slot.pk, &META_SK)))
                            .condition_expression(condition)
                            .set_expression_attribute_names(Some(names))
                            .set_expression_attribute_values((!values.is_empty()).then_some(values))
                            .build()
                            .map_err(build)?,
                    )
                    .build(),
            );
        }
        Ok(self.store.transact(actions).await?)
    }
}

/// How one key's change is written.
struct Plan {
    slot: usize,
    /// `None`: delete the key.
    meta: Option<Meta>,
    elems: BTreeMap<Vec<u8>, Option<Elem>>,
    /// Changes to the live generation (else a new generation's whole content).
    in_place: bool,
    /// Elements written before the transaction (new generation only).
    staged: bool,
    /// Copy the live generation with the changes into a new one first.
    copy: bool,
}

impl Plan {
    fn new(slot_index: usize, slot: &Slot, change: Change, now: i64) -> Plan {
        let live = slot.live(now);
        let mut meta = change.meta;
        let mut elems = change.elems;
        // An emptied collection is deleted, as Redis does.
        if meta.as_ref().is_some_and(Meta::is_empty) {
            meta = None;
        }
        let mut in_place = false;
        let mut copy = false;
        if let Some(m) = &mut meta {
            m.version = new_version();
            in_place = m.generation.is_some()
                && live.is_some_and(|l| l.kind == m.kind && l.generation == m.generation);
            let wanted = m.expire_at.map(item::ttl_secs);
            let fresh = wanted.map(|secs| secs + ELEM_TTL_SLACK_SECS);
            if m.generation.is_none() {
                m.elem_ttl = None;
            } else if in_place {
                let current = live.and_then(|l| l.elem_ttl);
                let covered = match (wanted, current) {
                    (None, None) => true,
                    (Some(w), Some(c)) => c >= w,
                    _ => false,
                };
                if covered {
                    m.elem_ttl = current;
                } else {
                    // Existing elements need new TTLs: copy them to a new generation.
                    m.elem_ttl = fresh;
                    copy = true;
                }
            } else {
                m.elem_ttl = fresh;
            }
            if !in_place {
                // A new generation holds only what is put.
                elems.retain(|_, e| e.is_some());
            }
        } else {
            elems.clear();
        }
        Plan {
            slot: slot_index,
            meta,
            elems,
            in_place,
            staged: copy,
            copy,
        }
    }

    fn bytes(&self, pk: &[u8]) -> usize {
        let meta = self.meta.as_ref().map_or(pk.len() + 10, |m| m.size(pk));
        let elems: usize = if self.staged {
            0
        } else {
            self.elems
                .iter()
                .map(|(s, e)| e.as_ref().map_or(pk.len() + s.len() + 20, |e| e.size(pk)))
                .sum()
        };
        meta + elems
    }

    /// Reads the live generation, applies the staged changes, and makes the
    /// result a new generation's content.
    async fn copy_to_new_generation(
        &mut self,
        store: &DynamoStore,
        slot: &Slot,
    ) -> Result<(), Fail> {
        let Some(meta) = &mut self.meta else {
            return Ok(());
        };
        let old_gen = meta.generation.unwrap_or_default();
        let spec = QuerySpec::new(
            slot.pk.clone(),
            Range::Prefix(item::elem_prefix(meta.kind, &old_gen)),
            true,
        );
        let items = store.query_all(spec, None).await?;
        let mut content: BTreeMap<Vec<u8>, Option<Elem>> = items
            .iter()
            .filter_map(|i| Elem::from_item(i, meta.kind, &old_gen))
            .map(|e| (e.suffix.clone(), Some(e)))
            .collect();
        content.append(&mut self.elems);
        content.retain(|_, e| e.is_some());
        self.elems = content;
        meta.generation = Some(item::new_gen());
        self.in_place = false;
        self.copy = false;
        self.staged = true;
        Ok(())
    }

    /// The generation this commit made garbage, if any.
    fn garbage(&self, slot: &Slot) -> Option<(Kind, Gen)> {
        let found = slot.found.as_ref()?;
        let old = found.generation?;
        let kept = self
            .meta
            .as_ref()
            .is_some_and(|m| m.generation == Some(old));
        (!kept).then_some((found.kind, old))
    }
}

/// A string's meta item and, when it does not fit, its chunks.
pub(crate) fn string_meta(key: &[u8], value: Bytes) -> (Meta, Vec<Elem>) {
    let inline_max = MAX_VALUE_IN_ITEM.saturating_sub(key.len());
    if value.len() <= inline_max {
        return (Meta::string(value), Vec::new());
    }
    let mut meta = Meta::new(Kind::String);
    meta.length = value.len() as i64;
    let chunks: Vec<Elem> = (0..value.len())
        .step_by(MAX_VALUE_IN_ITEM)
        .enumerate()
        .map(|(i, start)| {
            let end = (start + MAX_VALUE_IN_ITEM).min(value.len());
            Elem::chunk(i as u32, value.slice(start..end))
        })
        .collect();
    meta.count = chunks.len() as i64;
    meta.generation = Some(item::new_gen());
    (meta, chunks)
}

/// A chunked value from its chunks in order; `None` when one is missing or
/// the lengths disagree (a concurrent replacement).
pub(crate) fn assemble(chunks: Vec<Option<Elem>>, length: i64) -> Option<Bytes> {
    let mut out = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    for chunk in chunks {
        out.extend_from_slice(chunk?.value.as_deref()?);
    }
    (out.len() as i64 == length).then(|| Bytes::from(out))
}

/// Counts the lost races of one command and spaces its retries.
pub(crate) struct Retry<'s> {
    store: &'s DynamoStore,
    started: Instant,
    deadline: Instant,
    attempt: u32,
}

impl<'s> Retry<'s> {
    /// Retries until `deadline`, by default the conflict budget from now.
    pub fn new(store: &'s DynamoStore, deadline: Option<tokio::time::Instant>) -> Retry<'s> {
        let started = Instant::now();
        Retry {
            store,
            started,
            deadline: deadline.map_or(started + store.conflict_budget, |d| d.into_std()),
            attempt: 0,
        }
    }

    pub fn tx(&self, db: u32, write: bool) -> Tx<'s> {
        Tx::new(self.store, db, write)
    }

    /// Waits before the next attempt (exponential backoff, full jitter); an
    /// error once the command has tried for longer than the conflict budget.
    pub async fn lost_race(&mut self) -> Result<(), Fail> {
        self.attempt += 1;
        let pause = io::backoff(self.attempt, io::CONTENDED);
        if Instant::now() + pause >= self.deadline {
            return Err(Fail::Dynamo(Box::new(
                self.store.contention(self.attempt, self.started.elapsed()),
            )));
        }
        tokio::time::sleep(pause).await;
        Ok(())
    }
}

/// Runs `$body` — an expression of a future over `$tx: &mut Tx` — as
/// optimistic transactions until one commits, a reply ends it, or the
/// conflict budget is spent: `Result<R, Fail>`. A macro rather than a
/// function taking a closure, so the command's future stays plainly `Send`.
macro_rules! transact {
    ($store:expr, $db:expr, $write:expr, |$tx:ident| $body:expr) => {
        $crate::backend::dynamodb::tx::transact!($store, $db, $write, None, |$tx| $body)
    };
    ($store:expr, $db:expr, $write:expr, $deadline:expr, |$tx:ident| $body:expr) => {{
        let mut retry = $crate::backend::dynamodb::tx::Retry::new($store, $deadline);
        loop {
            let mut attempt = retry.tx($db, $write);
            let result = {
                let $tx = &mut attempt;
                $body.await
            };
            let result = match result {
                Ok(value) => Box::pin(attempt.commit()).await.map(|()| value),
                Err(e) => Err(e),
            };
            match result {
                Err($crate::backend::dynamodb::tx::Fail::Conflict) => {
                    if let Err(e) = retry.lost_race().await {
                        break Err(e);
                    }
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use transact;

/// The reply to a command's outcome.
/// A command's outcome: its reply (Redis's errors included), or the failure
/// of DynamoDB itself, also noted for readiness.
pub(crate) fn finish(
    store: &DynamoStore,
    result: Result<Frame, Fail>,
) -> Result<Frame, DynamoError> {
    let outcome = match result {
        Ok(frame) => Ok(frame),
        Err(Fail::Reply(frame)) => Ok(*frame),
        Err(Fail::Dynamo(e)) => Err(*e),
        Err(Fail::Conflict) => Err(store.contention(0, Duration::ZERO)),
    };
    store.note(outcome.as_ref().map(|_| ()));
    outcome
}

impl DynamoStore {
    pub(crate) fn contention(&self, attempts: u32, elapsed: Duration) -> DynamoError {
        DynamoError::Contention {
            at: self.at.clone(),
            attempts,
            elapsed,
        }
    }
}
