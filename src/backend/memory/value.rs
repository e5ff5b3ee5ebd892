//! What a key holds, with its size kept up to date as it changes (the
//! store's weigher reads it on every write, so it must be O(1)), and Redis's
//! small-encoding flags, which decide how HSCAN/SSCAN/ZSCAN page.

use std::collections::VecDeque;

use bytes::Bytes;

use super::scanmap::ScanMap;
use super::sorted::SortedList;
use super::stream::StreamValue;

/// Bookkeeping bytes charged per key (map slot, cache entry, token).
pub const KEY_OVERHEAD: usize = 96;
/// Bookkeeping bytes charged per element of a collection.
pub const ELEMENT_OVERHEAD: usize = 32;

pub use crate::semantics::scan::{INTSET_ENTRIES, LISTPACK_ENTRIES, LISTPACK_VALUE};

#[derive(Debug, Clone)]
pub enum Value {
    Str(Bytes),
    Hash(HashValue),
    List(ListValue),
    Set(SetValue),
    ZSet(ZSetValue),
    Stream(Box<StreamValue>),
}

impl Value {
    /// The name TYPE answers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    pub fn mem(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Hash(h) => h.bytes,
            Value::List(l) => l.bytes,
            Value::Set(s) => s.bytes,
            Value::ZSet(z) => z.bytes,
            Value::Stream(s) => s.mem(),
        }
    }

    /// Redis never keeps an empty collection (streams excepted).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) | Value::Stream(_) => false,
            Value::Hash(h) => h.fields.is_empty(),
            Value::List(l) => l.items.is_empty(),
            Value::Set(s) => s.members.is_empty(),
            Value::ZSet(z) => z.scores.is_empty(),
        }
    }
}

/// A collection type a key can hold: one lookup (with its WRONGTYPE) and
/// one create-when-absent serve hashes, lists, sets, sorted sets and streams.
pub trait Collection: Default {
    fn of(value: &Value) -> Option<&Self>;
    fn of_mut(value: &mut Value) -> Option<&mut Self>;
    fn into_value(self) -> Value;
}

macro_rules! collection {
    ($ty:ty, $variant:ident, $wrap:expr) => {
        impl Collection for $ty {
            fn of(value: &Value) -> Option<&Self> {
                match value {
                    Value::$variant(v) => Some(v),
                    _ => None,
                }
            }

            fn of_mut(value: &mut Value) -> Option<&mut Self> {
                match value {
                    Value::$variant(v) => Some(v),
                    _ => None,
                }
            }

            fn into_value(self) -> Value {
                $wrap(self)
            }
        }
    };
}

collection!(HashValue, Hash, Value::Hash);
collection!(ListValue, List, Value::List);
collection!(SetValue, Set, Value::Set);
collection!(ZSetValue, ZSet, Value::ZSet);
collection!(StreamValue, Stream, |s| Value::Stream(Box::new(s)));

#[derive(Debug, Clone)]
pub struct HashValue {
    pub fields: ScanMap<Bytes>,
    bytes: usize,
    /// Still a listpack in Redis (small, short values): HSCAN returns it whole.
    pub compact: bool,
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue {
            fields: ScanMap::new(),
            bytes: 0,
            compact: true,
        }
    }
}

impl HashValue {
    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.fields.get(field)
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Sets a field; true when it is new.
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> bool {
        if field.len() > LISTPACK_VALUE || value.len() > LISTPACK_VALUE {
            self.compact = false;
        }
        let (field_len, value_len) = (field.len(), value.len());
        match self.fields.insert(field, value) {
            Some(old) => {
                self.bytes = self.bytes + value_len - old.len();
                false
            }
            None => {
                self.bytes += field_len + value_len + ELEMENT_OVERHEAD;
                if self.fields.len() > LISTPACK_ENTRIES {
                    self.compact = false;
                }
                true
            }
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.fields.remove(field) {
            Some((f, v)) => {
                self.bytes -= f.len() + v.len() + ELEMENT_OVERHEAD;
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListValue {
    pub items: VecDeque<Bytes>,
    bytes: usize,
}

impl ListValue {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn push(&mut self, item: Bytes, left: bool) {
        self.bytes += item.len() + ELEMENT_OVERHEAD;
        if left {
            self.items.push_front(item);
        } else {
            self.items.push_back(item);
        }
    }

    pub fn pop(&mut self, left: bool) -> Option<Bytes> {
        let item = if left {
            self.items.pop_front()
        } else {
            self.items.pop_back()
        }?;
        self.bytes -= item.len() + ELEMENT_OVERHEAD;
        Some(item)
    }

    pub fn set(&mut self, index: usize, item: Bytes) {
        self.bytes += item.len();
        self.bytes -= self.items[index].len();
        self.items[index] = item;
    }

    /// Keeps `start..=end` (already clamped, `start <= end`) or nothing.
    pub fn keep(&mut self, range: Option<(usize, usize)>) {
        match range {
            Some((start, end)) => {
                self.items.truncate(end + 1);
                self.items.drain(..start);
            }
            None => self.items.clear(),
        }
        self.bytes = self.items.iter().map(|i| i.len() + ELEMENT_OVERHEAD).sum();
    }
}

#[derive(Debug, Clone)]
pub struct SetValue {
    pub members: ScanMap<()>,
    bytes: usize,
    /// Still an intset in Redis (integers only, few): SSCAN returns it whole
    /// and SMEMBERS answers in numeric order.
    pub intset: bool,
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue {
            members: ScanMap::new(),
            bytes: 0,
            intset: true,
        }
    }
}

impl SetValue {
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains(member)
    }

    pub fn insert(&mut self, member: Bytes) -> bool {
        if self.members.contains(&member) {
            return false;
        }
        if self.intset
            && (crate::semantics::number::parse_i64(&member).is_none()
                || self.members.len() >= INTSET_ENTRIES)
        {
            self.intset = false;
        }
        self.bytes += member.len() + ELEMENT_OVERHEAD;
        self.members.insert(member, ());
        true
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.members.remove(member) {
            Some((m, ())) => {
                self.bytes -= m.len() + ELEMENT_OVERHEAD;
                true
            }
            None => false,
        }
    }

    /// Members in the order SMEMBERS gives them: numeric for an intset.
    pub fn ordered(&self) -> Vec<Bytes> {
        let mut members: Vec<Bytes> = self.members.keys().cloned().collect();
        if self.intset {
            members.sort_by_key(|m| crate::semantics::number::parse_i64(m).unwrap_or(0));
        }
        members
    }
}

#[derive(Debug, Clone)]
pub struct ZSetValue {
    pub scores: ScanMap<f64>,
    pub order: SortedList,
    bytes: usize,
    /// Still a listpack in Redis: ZSCAN returns it whole, in order.
    pub compact: bool,
}

impl Default for ZSetValue {
    fn default() -> Self {
        ZSetValue {
            scores: ScanMap::new(),
            order: SortedList::default(),
            bytes: 0,
            compact: true,
        }
    }
}

impl ZSetValue {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets `member`'s score; true when it is new.
    pub fn insert(&mut self, member: Bytes, score: f64) -> bool {
        // Redis stores -0 as 0 (listpack scores are printed, then parsed).
        let score = score + 0.0;
        match self.scores.get_mut(&member) {
            Some(old) => {
                let previous = *old;
                *old = score;
                if previous.to_bits() != score.to_bits() {
                    self.order.remove(previous, &member);
                    self.order.insert(score, member);
                }
                false
            }
            None => {
                if member.len() > LISTPACK_VALUE || self.scores.len() >= LISTPACK_ENTRIES {
                    self.compact = false;
                }
                self.bytes += member.len() * 2 + 16 + ELEMENT_OVERHEAD * 2;
                self.scores.insert(member.clone(), score);
                self.order.insert(score, member);
                true
            }
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (m, score) = self.scores.remove(member)?;
        self.order.remove(score, &m);
        self.bytes -= m.len() * 2 + 16 + ELEMENT_OVERHEAD * 2;
        Some(score)
    }
}
