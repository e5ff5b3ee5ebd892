//! The atomic read-modify-write primitive for commands sealcache computes on
//! plaintext (INCR on sealed values, APPEND, SETRANGE, HINCRBY[FLOAT],
//! RENAME/COPY re-sealing…): [`DynamoStore::update`] reads what the caller
//! names, lets it decide, and writes on the condition that none of it
//! changed — retried from the read on a lost race, across every sidecar on
//! the table. The decision function may run several times and must not have
//! side effects; it opens and seals values itself, so the store never sees
//! plaintext.
//!
//! The reads and writes mirror the backend contract's (`backend::rmw`), one
//! for one, so the `type: dynamodb` backend only translates names.

use bytes::Bytes;
use tokio::time::Instant;

use super::DynamoStore;
use super::commands::run_in;
use super::error::DynamoError;
use super::hash::check_size;
use super::item::{self, Elem, Kind, MAX_NAME_IN_KEY, Meta};
use super::tx::{Fail, Tx, reply_err, transact};
use crate::protocol::Frame;
use crate::protocol::reply::error_text;
use crate::semantics::errors;

/// What an update reads, in the update's database unless it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A string's value ([`WrongType`] for another type).
    String(Bytes),
    /// One field of a hash ([`WrongType`] for another type).
    HashField { key: Bytes, field: Bytes },
    /// A whole key: its type and deadline, and the value of a string or a
    /// hash (other types are not read whole: move them with a `Native` write).
    Key(Bytes),
    /// Whether a key exists in database `db`.
    Exists { key: Bytes, db: u32 },
    /// A read-only command's reply, read as part of the update.
    Command(Vec<Bytes>),
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

/// What [`Read::Key`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFound {
    pub kind: Kind,
    /// Unix ms.
    pub expire_at: Option<i64>,
    /// A string's or hash's value; `None` for other types.
    pub value: Option<EntryValue>,
}

/// What one [`Read`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    String(Result<Option<Bytes>, WrongType>),
    HashField(Result<Option<Bytes>, WrongType>),
    /// `None`: no such key.
    Key(Option<KeyFound>),
    Exists(bool),
    Reply(Frame),
}

/// What the update read, as of one moment: one [`Found`] per [`Read`].
#[derive(Debug, Clone)]
pub struct Snapshot {
    now: i64,
    found: Vec<Found>,
}

impl Snapshot {
    /// The time (Unix ms) the update runs at, for TTL arithmetic.
    pub fn now_ms(&self) -> i64 {
        self.now
    }

    /// What each read found, in the order of the reads.
    pub fn found(&self) -> &[Found] {
        &self.found
    }
}

/// How [`Change::SetString`] treats the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlUpdate {
    /// Keep the key's current deadline (INCR, APPEND).
    Keep,
    /// No deadline.
    Clear,
    /// This deadline (Unix ms).
    At(i64),
}

/// One write of an update; all of one decision apply atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Store a string (replacing whatever the key held).
    SetString {
        key: Bytes,
        value: Bytes,
        ttl: TtlUpdate,
    },
    /// Set one field of a hash (creating it), keeping its deadline.
    HashSet {
        key: Bytes,
        field: Bytes,
        value: Bytes,
    },
    /// Remove one field of a hash (the hash goes with its last field).
    HashDelete { key: Bytes, field: Bytes },
    /// Delete `key` in database `db`.
    Delete { key: Bytes, db: u32 },
    /// Replace whatever is at `key` in database `db` with `entry` (an empty
    /// collection deletes it).
    Put { key: Bytes, db: u32, entry: Entry },
    /// A command run as it is, in the same atomic step (RENAME or COPY of a
    /// list, set or sorted set, whose members are not bound to the key).
    Native(Vec<Bytes>),
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
    /// `decide` again, with backoff and jitter, until `deadline` (by default
    /// request_timeout_ms × max_attempts from now). Redis's own replies
    /// (WRONGTYPE…) come back as [`DynamoError::Reply`].
    pub async fn update<R>(
        &self,
        db: u32,
        reads: &[Read],
        deadline: Option<Instant>,
        mut decide: impl FnMut(&Snapshot) -> Decision<R>,
    ) -> Result<R, DynamoError> {
        let result = transact!(self, db, true, deadline, |tx| attempt(
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
async fn attempt<R>(
    tx: &mut Tx<'_>,
    reads: &[Read],
    decide: &mut impl FnMut(&Snapshot) -> Decision<R>,
) -> Result<R, Fail> {
    let snapshot = read(tx, reads).await?;
    match decide(&snapshot) {
        Decision::Keep(value) => Ok(value),
        Decision::Write(changes, value) => {
            for change in changes {
                apply(tx, change).await?;
            }
            Ok(value)
        }
    }
}

/// Runs `f` with the transaction switched to database `db`.
macro_rules! in_db {
    ($tx:ident, $db:expr, $body:expr) => {{
        let previous = std::mem::replace(&mut $tx.db, $db);
        let result = $body;
        $tx.db = previous;
        result
    }};
}

async fn read(tx: &mut Tx<'_>, reads: &[Read]) -> Result<Snapshot, Fail> {
    let keys: Vec<Bytes> = reads
        .iter()
        .filter_map(|r| match r {
            Read::String(k) | Read::Key(k) | Read::HashField { key: k, .. } => Some(k.clone()),
            _ => None,
        })
        .collect();
    tx.load_many(&keys).await?;
    let mut found = Vec::with_capacity(reads.len());
    for read in reads {
        found.push(match read {
            Read::String(key) => Found::String(match tx.meta(key).cloned() {
                None => Ok(None),
                Some(meta) if meta.kind == Kind::String => {
                    Ok(Some(tx.string_value(key, &meta).await?))
                }
                Some(_) => Err(WrongType),
            }),
            Read::HashField { key, field } => Found::HashField(match tx.meta(key).cloned() {
                None => Ok(None),
                Some(meta) if meta.kind == Kind::Hash => Ok(tx
                    .elem(key, &meta, item::name_suffix(field))
                    .await?
                    .map(|e| e.value())),
                Some(_) => Err(WrongType),
            }),
            Read::Key(key) => Found::Key(match tx.meta(key).cloned() {
                None => None,
                Some(meta) => Some(KeyFound {
                    kind: meta.kind,
                    expire_at: meta.expire_at,
                    value: match meta.kind {
                        Kind::String => {
                            Some(EntryValue::String(tx.string_value(key, &meta).await?))
                        }
                        Kind::Hash => Some(EntryValue::Hash(
                            tx.all(key, &meta)
                                .await?
                                .iter()
                                .map(|e| (e.name(), e.value()))
                                .collect(),
                        )),
                        _ => None,
                    },
                }),
            }),
            Read::Exists { key, db } => {
                Found::Exists(in_db!(tx, *db, tx.load(key).await)?.is_some())
            }
            Read::Command(args) => Found::Reply(run_in(tx, args).await?),
        });
    }
    Ok(Snapshot { now: tx.now, found })
}

async fn apply(tx: &mut Tx<'_>, change: Change) -> Result<(), Fail> {
    match change {
        Change::SetString { key, value, ttl } => {
            let current = tx.load(&key).await?;
            let expire_at = match ttl {
                TtlUpdate::Keep => current.and_then(|m| m.expire_at),
                TtlUpdate::Clear => None,
                TtlUpdate::At(at) => Some(at),
            };
            tx.set_string(&key, value, expire_at);
        }
        Change::HashSet { key, field, value } => {
            check_size(&field, &value, "hash values")?;
            let (mut meta, exists) = match tx.typed(&key, Kind::Hash).await? {
                Some(meta) => {
                    let exists = tx
                        .elem(&key, &meta, item::name_suffix(&field))
                        .await?
                        .is_some();
                    (meta, exists)
                }
                None => (Meta::new(Kind::Hash), false),
            };
            meta.count += i64::from(!exists);
            tx.put_elem(&key, Elem::named(&field, Some(value)));
            tx.put(&key, meta);
        }
        Change::HashDelete { key, field } => {
            if let Some(mut meta) = tx.typed(&key, Kind::Hash).await?
                && tx
                    .elem(&key, &meta, item::name_suffix(&field))
                    .await?
                    .is_some()
            {
                meta.count -= 1;
                tx.del_elem(&key, item::name_suffix(&field));
                tx.put(&key, meta);
            }
        }
        Change::Delete { key, db } => {
            in_db!(tx, db, {
                if tx.load(&key).await?.is_some() {
                    tx.delete(&key);
                }
                Ok::<_, Fail>(())
            })?;
        }
        Change::Put { key, db, entry } => {
            let (meta, elems) = stored(&key, entry)?;
            in_db!(tx, db, {
                let exists = tx.load(&key).await?.is_some();
                match meta {
                    Some(meta) => tx.replace(&key, meta, elems),
                    None if exists => tx.delete(&key),
                    None => {}
                }
                Ok::<_, Fail>(())
            })?;
        }
        Change::Native(args) => {
            let reply = run_in(tx, &args).await?;
            if let Some(text) = error_text(&reply) {
                return Err(reply_err(text));
            }
        }
    }
    Ok(())
}

/// The meta item and elements of an entry; `None` for an empty collection.
fn stored(key: &[u8], entry: Entry) -> Result<(Option<Meta>, Vec<Elem>), Fail> {
    let (mut meta, elems) = match entry.value {
        EntryValue::String(value) => super::tx::string_meta(key, value),
        EntryValue::Hash(pairs) => {
            let mut elems = Vec::with_capacity(pairs.len());
            for (field, value) in pairs {
                check_size(&field, &value, "hash values")?;
                elems.push(Elem::named(&field, Some(value)));
            }
            collection(Kind::Hash, elems)
        }
        EntryValue::Set(members) => {
            let mut elems = Vec::with_capacity(members.len());
            for member in members {
                check_size(&member, b"", "set members")?;
                elems.push(Elem::named(&member, None));
            }
            collection(Kind::Set, elems)
        }
        EntryValue::ZSet(members) => {
            let mut elems = Vec::with_capacity(members.len());
            for (member, score) in members {
                if member.len() > MAX_NAME_IN_KEY {
                    return Err(super::zset::member_too_long());
                }
                if score.is_nan() {
                    return Err(reply_err(errors::NOT_FLOAT));
                }
                elems.push(Elem::member(&member, score));
            }
            collection(Kind::ZSet, elems)
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

/// A collection's meta item; a field or member given twice counts once.
fn collection(kind: Kind, mut elems: Vec<Elem>) -> (Meta, Vec<Elem>) {
    elems.sort_by(|a, b| a.suffix.cmp(&b.suffix));
    elems.dedup_by(|later, earlier| {
        if later.suffix == earlier.suffix {
            // The last of equal ones wins, as in HSET.
            std::mem::swap(later, earlier);
            true
        } else {
            false
        }
    });
    let mut meta = Meta::new(kind);
    meta.count = elems.len() as i64;
    (meta, elems)
}
