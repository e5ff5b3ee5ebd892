//! The atomic read-modify-write primitive's view ([`Txn`]): typed access to
//! whole entries under the engine lock, for commands sealcache emulates
//! (INCR, APPEND, HINCRBY… on decrypted values; RENAME/COPY re-sealing).

use bytes::Bytes;

use super::Ctx;
use super::stream::{StreamId, StreamValue};
use super::value::{HashValue, ListValue, SetValue, Value, ZSetValue};

/// A key's type, as TYPE names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    String,
    List,
    Set,
    ZSet,
    Hash,
    Stream,
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::List => "list",
            KeyType::Set => "set",
            KeyType::ZSet => "zset",
            KeyType::Hash => "hash",
            KeyType::Stream => "stream",
        }
    }
}

/// The key holds another type (the caller answers WRONGTYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
pub struct WrongType;

/// A stream's entries and bookkeeping, for copying a stream whole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamEntries {
    /// `(id, [field, value, …])`, ascending.
    pub entries: Vec<(StreamId, Vec<Bytes>)>,
    pub last_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
}

impl EntryValue {
    pub fn key_type(&self) -> KeyType {
        match self {
            EntryValue::String(_) => KeyType::String,
            EntryValue::List(_) => KeyType::List,
            EntryValue::Set(_) => KeyType::Set,
            EntryValue::ZSet(_) => KeyType::ZSet,
            EntryValue::Hash(_) => KeyType::Hash,
            EntryValue::Stream(_) => KeyType::Stream,
        }
    }
}

/// A whole value, detached from the store.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryValue {
    String(Bytes),
    /// Elements from head to tail.
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    /// `(member, score)`, in score order.
    ZSet(Vec<(Bytes, f64)>),
    /// `(field, value)`.
    Hash(Vec<(Bytes, Bytes)>),
    Stream(StreamEntries),
}

/// A whole key: its value and deadline (Unix ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: EntryValue,
    pub expire_at: Option<i64>,
}

fn key_type(value: &Value) -> KeyType {
    match value {
        Value::Str(_) => KeyType::String,
        Value::Hash(_) => KeyType::Hash,
        Value::List(_) => KeyType::List,
        Value::Set(_) => KeyType::Set,
        Value::ZSet(_) => KeyType::ZSet,
        Value::Stream(_) => KeyType::Stream,
    }
}

fn export(value: &Value) -> EntryValue {
    match value {
        Value::Str(s) => EntryValue::String(s.clone()),
        Value::Hash(h) => EntryValue::Hash(
            h.fields
                .iter()
                .map(|(f, v)| (f.clone(), v.clone()))
                .collect(),
        ),
        Value::List(l) => EntryValue::List(l.items.iter().cloned().collect()),
        Value::Set(s) => EntryValue::Set(s.members.keys().cloned().collect()),
        Value::ZSet(z) => EntryValue::ZSet(z.order.iter().map(|(s, m)| (m.clone(), s)).collect()),
        Value::Stream(s) => EntryValue::Stream(StreamEntries {
            entries: s.entries.iter().map(|(id, f)| (*id, f.clone())).collect(),
            last_id: s.last_id,
            max_deleted: s.max_deleted,
            entries_added: s.entries_added,
        }),
    }
}

fn import(value: EntryValue) -> Value {
    match value {
        EntryValue::String(s) => Value::Str(s),
        EntryValue::Hash(pairs) => {
            let mut h = HashValue::default();
            for (f, v) in pairs {
                h.insert(f, v);
            }
            Value::Hash(h)
        }
        EntryValue::List(items) => {
            let mut l = ListValue::default();
            for item in items {
                l.push(item, false);
            }
            Value::List(l)
        }
        EntryValue::Set(members) => {
            let mut s = SetValue::default();
            for m in members {
                s.insert(m);
            }
            Value::Set(s)
        }
        EntryValue::ZSet(pairs) => {
            let mut z = ZSetValue::default();
            for (m, score) in pairs {
                z.insert(m, score);
            }
            Value::ZSet(z)
        }
        EntryValue::Stream(data) => {
            let mut s = StreamValue::default();
            for (id, fields) in data.entries {
                s.insert(id, fields);
            }
            s.last_id = data.last_id;
            s.max_deleted = data.max_deleted;
            s.entries_added = data.entries_added;
            Value::Stream(Box::new(s))
        }
    }
}

/// Typed access to one database under the engine lock; nothing else runs
/// until the closure given to [`MemoryStore::update`](super::MemoryStore::update) returns.
pub struct Txn<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
}

impl<'c, 'a> Txn<'c, 'a> {
    pub(crate) fn new(ctx: &'c mut Ctx<'a>) -> Self {
        Txn { ctx }
    }

    /// The time (Unix ms) the update runs at, for TTL arithmetic.
    pub fn now_ms(&self) -> i64 {
        self.ctx.now
    }

    /// The type of `key`, `None` when it does not exist (or has expired).
    pub fn key_type(&mut self, key: &[u8]) -> Option<KeyType> {
        self.ctx.value(key).map(key_type)
    }

    /// The deadline of `key`: `None` when absent, `Some(None)` without TTL.
    pub fn expire_at(&mut self, key: &[u8]) -> Option<Option<i64>> {
        self.ctx.slot(key).map(|s| s.expire_at)
    }

    pub fn get_string(&mut self, key: &[u8]) -> Result<Option<Bytes>, WrongType> {
        match self.ctx.value(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(WrongType),
        }
    }

    /// Stores a string. `keep_ttl` keeps the current deadline (INCR, APPEND),
    /// otherwise the key has none.
    pub fn set_string(&mut self, key: &Bytes, value: Bytes, keep_ttl: bool) {
        let expire_at = if keep_ttl {
            self.ctx.slot(key).and_then(|s| s.expire_at)
        } else {
            None
        };
        self.ctx.put(key.clone(), Value::Str(value), expire_at);
    }

    pub fn hash_get(&mut self, key: &[u8], field: &[u8]) -> Result<Option<Bytes>, WrongType> {
        match self.ctx.value(key) {
            None => Ok(None),
            Some(Value::Hash(h)) => Ok(h.get(field).cloned()),
            Some(_) => Err(WrongType),
        }
    }

    /// Sets a hash field (creating the hash); true when the field is new.
    pub fn hash_set(&mut self, key: &Bytes, field: Bytes, value: Bytes) -> Result<bool, WrongType> {
        let h = self.ctx.hash_or_new(key).map_err(|_| WrongType)?;
        let new = h.insert(field, value);
        self.ctx.changed(key);
        Ok(new)
    }

    /// The whole entry at `key`.
    pub fn get(&mut self, key: &[u8]) -> Option<Entry> {
        self.ctx.slot(key).map(|s| Entry {
            value: export(&s.value),
            expire_at: s.expire_at,
        })
    }

    /// Replaces whatever is at `key` with `entry` (an empty collection deletes it).
    pub fn put(&mut self, key: &Bytes, entry: Entry) {
        let value = import(entry.value);
        if value.is_empty_collection() {
            self.delete(key);
        } else {
            self.ctx.put(key.clone(), value, entry.expire_at);
        }
    }

    /// Moves to database `db` (a cross-database COPY); returns the one it
    /// was in, to switch back, or `None` (staying put) when the store has
    /// no database `db`: the caller answers Redis's out-of-range error.
    pub fn switch_db(&mut self, db: u32) -> Option<u32> {
        let previous = self.ctx.db;
        (db < self.ctx.dbs()).then(|| {
            self.ctx.db = db;
            previous
        })
    }

    /// Runs a command natively in the current database, under the same lock.
    pub fn execute(&mut self, args: &[Bytes]) -> crate::protocol::Frame {
        super::commands::dispatch(self.ctx, args)
    }

    /// Deletes `key`; true if it existed.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        self.ctx.expire_if_needed(self.ctx.db, key);
        self.ctx.remove(self.ctx.db, key).is_some()
    }
}
