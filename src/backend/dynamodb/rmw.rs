//! The atomic read-modify-write primitive for commands sealcache computes on
//! plaintext (INCR on sealed values, APPEND, SETRANGE, HINCRBY[FLOAT],
//! RENAME/COPY re-sealing…): [`DynamoStore::update`] reads what the caller
//! names, lets it decide, and writes on the condition that none of it
//! changed — retried from the read on a lost race, across every sidecar on
//! the table. The decision function may run several times and must not
//! have side effects; it opens and seals values itself, so the store never
//! sees plaintext.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::DynamoStore;
use super::error::DynamoError;
use super::hash::check_size;
use super::item::{self, Elem, Kind, MAX_NAME_IN_KEY, Meta};
use super::tx::{Fail, Tx, transact};
use crate::protocol::reply::error_text;

/// What an update reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The whole key: type, deadline and content.
    Key(Bytes),
    /// Only the key's type and deadline.
    Meta(Bytes),
    /// The key's type and deadline, and one hash field.
    Field(Bytes, Bytes),
}

impl Read {
    fn key(&self) -> &Bytes {
        match self {
            Read::Key(k) | Read::Meta(k) | Read::Field(k, _) => k,
        }
    }
}

/// The key holds another type (the caller answers WRONGTYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
pub struct WrongType;

/// A whole value.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryValue {
    String(Bytes),
    /// Items from head to tail.
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    /// `(member, score)` in score order.
    ZSet(Vec<(Bytes, f64)>),
    /// `(field, value)`.
    Hash(Vec<(Bytes, Bytes)>),
}

/// A whole key: its value and deadline (Unix ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: EntryValue,
    pub expire_at: Option<i64>,
}

/// A key's type and deadline.
type KindAndDeadline = (Kind, Option<i64>);

/// What the update read, as of one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    now: i64,
    metas: Vec<(Bytes, Option<KindAndDeadline>)>,
    entries: Vec<(Bytes, Option<Entry>)>,
    fields: Vec<(Bytes, Bytes, Option<Bytes>)>,
}

impl Snapshot {
    /// The time (Unix ms) the update runs at, for TTL arithmetic.
    pub fn now_ms(&self) -> i64 {
        self.now
    }

    fn meta(&self, key: &[u8]) -> Option<KindAndDeadline> {
        self.metas
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, m)| *m)
    }

    /// The type of `key`; `None` when absent (or expired).
    pub fn key_type(&self, key: &[u8]) -> Option<Kind> {
        self.meta(key).map(|(kind, _)| kind)
    }

    /// The deadline of `key`: `None` when absent, `Some(None)` without TTL.
    pub fn expire_at(&self, key: &[u8]) -> Option<Option<i64>> {
        self.meta(key).map(|(_, at)| at)
    }

    /// The whole key (read with [`Read::Key`]).
    pub fn entry(&self, key: &[u8]) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, e)| e.as_ref())
    }

    /// A string's value (read with [`Read::Key`]).
    pub fn string(&self, key: &[u8]) -> Result<Option<&Bytes>, WrongType> {
        match self.entry(key).map(|e| &e.value) {
            None => Ok(None),
            Some(EntryValue::String(s)) => Ok(Some(s)),
            Some(_) => Err(WrongType),
        }
    }

    /// A hash field (read with [`Read::Field`]).
    pub fn field(&self, key: &[u8], field: &[u8]) -> Result<Option<&Bytes>, WrongType> {
        match self.key_type(key) {
            None => Ok(None),
            Some(Kind::Hash) => Ok(self
                .fields
                .iter()
                .find(|(k, f, _)| k == key && f == field)
                .and_then(|(_, _, v)| v.as_ref())),
            Some(_) => Err(WrongType),
        }
    }
}

/// How a key's deadline changes with [`Change::SetString`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlUpdate {
    /// Keep the key's current deadline (INCR, APPEND).
    Keep,
    /// No deadline.
    Clear,
    /// This deadline (Unix ms).
    At(i64),
}

/// One write of an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Store a string (replacing whatever the key held).
    SetString {
        key: Bytes,
        value: Bytes,
        ttl: TtlUpdate,
    },
    /// Set one field of a hash (creating it), keeping its deadline.
    SetField {
        key: Bytes,
        field: Bytes,
        value: Bytes,
    },
    /// Replace whatever is at `key` with `entry` (an empty collection deletes it).
    Put {
        key: Bytes,
        entry: Entry,
    },
    Delete {
        key: Bytes,
    },
}

impl Change {
    fn key(&self) -> &Bytes {
        match self {
            Change::SetString { key, .. }
            | Change::SetField { key, .. }
            | Change::Put { key, .. }
            | Change::Delete { key } => key,
        }
    }
}

/// What the decision function wants.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<R> {
    /// Write nothing; return this.
    Keep(R),
    /// Apply these changes atomically, then return this.
    Write(Vec<Change>, R),
}

impl DynamoStore {
    /// Reads `reads` in database `db`, calls `decide` with what it found, and
    /// applies its changes atomically on the condition that no key it read
    /// (or writes) changed meanwhile; on a lost race it reads again and calls
    /// `decide` again, with backoff and jitter, until the conflict budget
    /// (request_timeout_ms × max_attempts) is spent.
    pub async fn update<R>(
        &self,
        db: u32,
        reads: &[Read],
        mut decide: impl FnMut(&Snapshot) -> Decision<R>,
    ) -> Result<R, DynamoError> {
        let result = transact!(self, db, true, |tx| decide_and_apply(
            tx,
            reads,
            &mut decide
        ));
        result.map_err(|fail| match fail {
            Fail::Dynamo(e) => *e,
            Fail::Reply(frame) => DynamoError::Reply {
                reply: error_text(&frame).unwrap_or_default(),
            },
            Fail::Conflict => self.contention(0, std::time::Duration::ZERO),
        })
    }
}

/// One attempt: read, decide, stage the changes.
async fn decide_and_apply<R>(
    tx: &mut Tx<'_>,
    reads: &[Read],
    decide: &mut impl FnMut(&Snapshot) -> Decision<R>,
) -> Result<R, Fail> {
    let snapshot = read(tx, reads).await?;
    match decide(&snapshot) {
        Decision::Keep(value) => Ok(value),
        Decision::Write(changes, value) => {
            apply(tx, changes).await?;
            Ok(value)
        }
    }
}

async fn read(tx: &mut Tx<'_>, reads: &[Read]) -> Result<Snapshot, Fail> {
    let keys: Vec<Bytes> = reads.iter().map(|r| r.key().clone()).collect();
    tx.load_many(&keys).await?;
    let mut snap = Snapshot {
        now: tx.now,
        ..Snapshot::default()
    };
    for read in reads {
        let key = read.key();
        let meta = tx.meta(key).cloned();
        if !snap.metas.iter().any(|(k, _)| k == key) {
            snap.metas
                .push((key.clone(), meta.as_ref().map(|m| (m.kind, m.expire_at))));
        }
        match read {
            Read::Meta(_) => {}
            Read::Key(_) => {
                let entry = match &meta {
                    Some(meta) => Some(entry(tx, key, meta).await?),
                    None => None,
                };
                snap.entries.push((key.clone(), entry));
            }
            Read::Field(_, field) => {
                let value = match &meta {
                    Some(meta) if meta.kind == Kind::Hash => tx
                        .elem(key, meta, item::name_suffix(field))
                        .await?
                        .map(|e| e.value()),
                    _ => None,
                };
                snap.fields.push((key.clone(), field.clone(), value));
            }
        }
    }
    Ok(snap)
}

/// A key's whole content.
async fn entry(tx: &mut Tx<'_>, key: &Bytes, meta: &Meta) -> Result<Entry, Fail> {
    let value = match meta.kind {
        Kind::String => EntryValue::String(tx.string_value(key, meta).await?),
        Kind::Hash => EntryValue::Hash(
            tx.all(key, meta)
                .await?
                .iter()
                .map(|e| (e.name(), e.value()))
                .collect(),
        ),
        Kind::Set => EntryValue::Set(tx.all(key, meta).await?.iter().map(Elem::name).collect()),
        Kind::ZSet => EntryValue::ZSet(
            tx.zorder(key, meta, None, true, None)
                .await?
                .iter()
                .map(|e| (e.name(), e.score.unwrap_or_default()))
                .collect(),
        ),
        Kind::List => EntryValue::List(tx.all(key, meta).await?.iter().map(Elem::value).collect()),
    };
    Ok(Entry {
        value,
        expire_at: meta.expire_at,
    })
}

async fn apply(tx: &mut Tx<'_>, changes: Vec<Change>) -> Result<(), Fail> {
    let keys: Vec<Bytes> = changes.iter().map(|c| c.key().clone()).collect();
    tx.load_many(&keys).await?;
    for change in changes {
        match change {
            Change::SetString { key, value, ttl } => {
                let expire_at = match ttl {
                    TtlUpdate::Keep => tx.meta(&key).and_then(|m| m.expire_at),
                    TtlUpdate::Clear => None,
                    TtlUpdate::At(at) => Some(at),
                };
                tx.set_string(&key, value, expire_at);
            }
            Change::SetField { key, field, value } => {
                check_size(&field, &value, "hash values")?;
                let mut meta = match tx.typed(&key, Kind::Hash).await? {
                    Some(meta) => {
                        let exists = tx
                            .elem(&key, &meta, item::name_suffix(&field))
                            .await?
                            .is_some();
                        let mut meta = meta;
                        meta.count += i64::from(!exists);
                        meta
                    }
                    None => {
                        let mut meta = Meta::new(Kind::Hash);
                        meta.count = 1;
                        meta
                    }
                };
                meta.version = 0;
                tx.put_elem(&key, Elem::named(&field, Some(value)));
                tx.put(&key, meta);
            }
            Change::Put { key, entry } => {
                let (meta, elems) = stored(&key, entry)?;
                match meta {
                    Some(meta) => tx.replace(&key, meta, elems),
                    None if tx.meta(&key).is_some() => tx.delete(&key),
                    None => {}
                }
            }
            Change::Delete { key } => {
                if tx.meta(&key).is_some() {
                    tx.delete(&key);
                }
            }
        }
    }
    Ok(())
}

/// The meta item and elements of an entry; `None` for an empty collection.
fn stored(key: &[u8], entry: Entry) -> Result<(Option<Meta>, Vec<Elem>), Fail> {
    let (mut meta, elems) = match entry.value {
        EntryValue::String(value) => super::strings::stored(key, value),
        EntryValue::Hash(pairs) => {
            let mut unique = BTreeMap::new();
            for (field, value) in pairs {
                check_size(&field, &value, "hash values")?;
                let elem = Elem::named(&field, Some(value));
                unique.insert(elem.suffix.clone(), elem);
            }
            collection(Kind::Hash, unique.into_values().collect())
        }
        EntryValue::Set(members) => {
            let mut unique = BTreeMap::new();
            for member in members {
                check_size(&member, b"", "set members")?;
                let elem = Elem::named(&member, None);
                unique.insert(elem.suffix.clone(), elem);
            }
            collection(Kind::Set, unique.into_values().collect())
        }
        EntryValue::ZSet(members) => {
            let mut unique = BTreeMap::new();
            for (member, score) in members {
                if member.len() > MAX_NAME_IN_KEY {
                    return Err(super::zset::member_too_long());
                }
                let elem = Elem::member(&member, score);
                unique.insert(elem.suffix.clone(), elem);
            }
            collection(Kind::ZSet, unique.into_values().collect())
        }
        EntryValue::List(items) => {
            for value in &items {
                check_size(b"", value, "list elements")?;
            }
            let mut meta = Meta::new(Kind::List);
            meta.tail = items.len() as i64;
            let elems = items
                .into_iter()
                .enumerate()
                .map(|(i, v)| Elem::list_item(i as i64, v))
                .collect();
            (meta, elems)
        }
    };
    if meta.is_empty() {
        return Ok((None, Vec::new()));
    }
    meta.expire_at = entry.expire_at;
    Ok((Some(meta), elems))
}

fn collection(kind: Kind, elems: Vec<Elem>) -> (Meta, Vec<Elem>) {
    let mut meta = Meta::new(kind);
    meta.count = elems.len() as i64;
    (meta, elems)
}
