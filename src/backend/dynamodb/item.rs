//! The table's items: the key schema, attribute names, and how one Redis key
//! becomes a meta item plus element items (docs/dynamodb.md draws it).
//!
//! - Partition key `pk` (binary): the database index (4 bytes, big-endian)
//!   then the Redis key's bytes. Every item of a Redis key shares its `pk`.
//! - Sort key `sk` (binary): `0x00` for the key's **meta** item (type,
//!   version, expiry, counts, and a string's value when it fits);
//!   `tag ‖ generation ‖ suffix` for its **elements** (hash fields, set and
//!   sorted-set members, list items, chunks of a large string).
//! - The generation is 8 random bytes in the meta item. Replacing a key's
//!   content writes a new generation and then the meta item naming it, so
//!   readers see the old content or the new, never a mix; elements of any
//!   other generation are garbage, removed right after.
//! - Sorted-set members also carry `zo` = generation ‖ score ‖ member, the
//!   sort key of the local secondary index `zorder`: score order, then
//!   member bytes, as Redis orders them.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use sha2::{Digest, Sha256};

pub type Item = HashMap<String, AttributeValue>;
pub use aws_sdk_dynamodb::types::AttributeValue as AttrValue;

/// Partition key: database index ‖ Redis key.
pub const PK: &str = "pk";
/// Sort key: `0x00` (meta) or tag ‖ generation ‖ suffix (elements).
pub const SK: &str = "sk";
/// Sort key of the `zorder` index (sorted-set members only: a sparse index).
pub const ZO: &str = "zo";
/// The table's TTL attribute: Unix seconds, rounded up from the key's deadline.
pub const TTL: &str = "ttl";
pub const ZORDER_INDEX: &str = "zorder";

// Meta item attributes.
const TYPE: &str = "t";
const VERSION: &str = "v";
/// The deadline in Unix milliseconds: what reads compare, exactly.
const EXPIRE: &str = "x";
/// Every element of the current generation has a TTL of at least this (Unix
/// seconds), or none when absent, so DynamoDB reaps them only after the key.
const ELEM_TTL: &str = "et";
const GEN: &str = "g";
const COUNT: &str = "n";
const HEAD: &str = "lh";
const TAIL: &str = "lt";
const LENGTH: &str = "cl";
// Meta and element attributes.
pub const VALUE: &str = "val";
const SCORE: &str = "s";
/// A field or member too long for the sort key (the key holds its SHA-256).
const NAME: &str = "m";

pub const META_SK: [u8; 1] = [0];
/// Bytes of the database index at the start of every partition key.
pub const DB_PREFIX_LEN: usize = 4;
/// DynamoDB's limit on a binary partition key.
pub const MAX_PK: usize = 2048;
/// Longest Redis key: the partition key's limit less the database index.
pub const MAX_KEY_LEN: usize = MAX_PK - DB_PREFIX_LEN;
/// Hash fields and set members up to this length live in the sort key; longer
/// ones are stored by hash. Sorted-set members must fit (the `zorder` key has
/// the same 1024-byte limit and orders by the member's bytes).
pub const MAX_NAME_IN_KEY: usize = 1000;
/// DynamoDB's item limit is 409,600 bytes including names and keys; a value
/// of this size plus the largest key and our attributes stays under it.
pub const MAX_VALUE_IN_ITEM: usize = 390_000;
/// How long past the key's own deadline its elements may outlive it: element
/// TTLs are rewritten only when a deadline moves beyond this slack.
pub const ELEM_TTL_SLACK_SECS: i64 = 24 * 3600;

pub type Gen = [u8; 8];

pub fn new_gen() -> Gen {
    rand::random()
}

/// A Redis key's type, as TYPE names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Hash,
    Set,
    ZSet,
    List,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::List => "list",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<Kind> {
        Some(match name {
            b"string" => Kind::String,
            b"hash" => Kind::Hash,
            b"set" => Kind::Set,
            b"zset" => Kind::ZSet,
            b"list" => Kind::List,
            _ => return None,
        })
    }

    /// The first byte of its elements' sort keys.
    pub fn tag(self) -> u8 {
        match self {
            Kind::Hash => 1,
            Kind::Set => 2,
            Kind::ZSet => 3,
            Kind::List => 4,
            Kind::String => 5,
        }
    }
}

pub fn pk(db: u32, key: &[u8]) -> Vec<u8> {
    let mut pk = Vec::with_capacity(DB_PREFIX_LEN + key.len());
    pk.extend_from_slice(&db.to_be_bytes());
    pk.extend_from_slice(key);
    pk
}

/// The Redis key of a partition key.
pub fn key_of(pk: &[u8]) -> &[u8] {
    pk.get(DB_PREFIX_LEN..).unwrap_or_default()
}

/// Sort-key prefix of a generation's elements.
pub fn elem_prefix(kind: Kind, generation: &Gen) -> Vec<u8> {
    let mut sk = Vec::with_capacity(9);
    sk.push(kind.tag());
    sk.extend_from_slice(generation);
    sk
}

pub fn elem_sk(kind: Kind, generation: &Gen, suffix: &[u8]) -> Vec<u8> {
    let mut sk = elem_prefix(kind, generation);
    sk.extend_from_slice(suffix);
    sk
}

/// Suffix of a hash field or (sorted-)set member: `0x00 ‖ name`, or
/// `0x01 ‖ SHA-256(name)` when the name is longer than [`MAX_NAME_IN_KEY`].
pub fn name_suffix(name: &[u8]) -> Vec<u8> {
    let mut suffix = Vec::with_capacity(1 + name.len().min(32));
    if name.len() <= MAX_NAME_IN_KEY {
        suffix.push(0);
        suffix.extend_from_slice(name);
    } else {
        suffix.push(1);
        suffix.extend_from_slice(&Sha256::digest(name));
    }
    suffix
}

/// Suffix of a list item at `pos`: order-preserving big-endian.
pub fn pos_suffix(pos: i64) -> Vec<u8> {
    ((pos as u64) ^ (1 << 63)).to_be_bytes().to_vec()
}

pub fn chunk_suffix(index: u32) -> Vec<u8> {
    index.to_be_bytes().to_vec()
}

/// A score's order-preserving bytes (-0 sorts as 0, as Redis compares them).
pub fn score_key(score: f64) -> [u8; 8] {
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = score.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    };
    ordered.to_be_bytes()
}

pub fn score_from_key(key: [u8; 8]) -> f64 {
    let ordered = u64::from_be_bytes(key);
    let bits = if ordered >> 63 == 1 {
        ordered & !(1 << 63)
    } else {
        !ordered
    };
    f64::from_bits(bits)
}

/// The `zorder` index key of a member.
pub fn zo(generation: &Gen, score: f64, member: &[u8]) -> Vec<u8> {
    let mut zo = Vec::with_capacity(16 + member.len());
    zo.extend_from_slice(generation);
    zo.extend_from_slice(&score_key(score));
    zo.extend_from_slice(member);
    zo
}

/// Unix seconds for the TTL attribute: never before the deadline.
pub fn ttl_secs(expire_at_ms: i64) -> i64 {
    expire_at_ms.div_euclid(1000) + i64::from(expire_at_ms.rem_euclid(1000) != 0)
}

pub fn b(bytes: impl Into<Vec<u8>>) -> AttributeValue {
    AttributeValue::B(Blob::new(bytes))
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn key_item(pk: &[u8], sk: &[u8]) -> Item {
    HashMap::from([(PK.into(), b(pk)), (SK.into(), b(sk))])
}

pub fn get_b<'a>(item: &'a Item, name: &str) -> Option<&'a [u8]> {
    match item.get(name)? {
        AttributeValue::B(blob) => Some(blob.as_ref()),
        _ => None,
    }
}

pub fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    match item.get(name)? {
        AttributeValue::N(text) => text.parse().ok(),
        _ => None,
    }
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name)? {
        AttributeValue::S(text) => Some(text),
        _ => None,
    }
}

/// A key's meta item.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub kind: Kind,
    /// Random per write: a conditional write on it fails if anyone wrote in between.
    pub version: u64,
    /// Unix ms.
    pub expire_at: Option<i64>,
    /// See [`ELEM_TTL`].
    pub elem_ttl: Option<i64>,
    /// The elements' generation (collections and chunked strings).
    pub generation: Option<Gen>,
    /// Hash fields, set or sorted-set members, or a chunked string's chunks.
    pub count: i64,
    /// List items live at positions `head..tail`.
    pub head: i64,
    pub tail: i64,
    /// A string's value, when it fits in the item.
    pub value: Option<Bytes>,
    /// A chunked string's length.
    pub length: i64,
}

impl Meta {
    /// A new, empty key of `kind` (a fresh generation for collections).
    pub fn new(kind: Kind) -> Meta {
        Meta {
            kind,
            version: 0,
            expire_at: None,
            elem_ttl: None,
            generation: (kind != Kind::String).then(new_gen),
            count: 0,
            head: 0,
            tail: 0,
            value: None,
            length: 0,
        }
    }

    pub fn string(value: Bytes) -> Meta {
        Meta {
            value: Some(value),
            ..Meta::new(Kind::String)
        }
    }

    pub fn is_live(&self, now_ms: i64) -> bool {
        self.expire_at.is_none_or(|at| at > now_ms)
    }

    /// Elements in a collection (list length included).
    pub fn len(&self) -> i64 {
        match self.kind {
            Kind::List => self.tail - self.head,
            _ => self.count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.kind != Kind::String && self.len() <= 0
    }

    /// A string's length in bytes.
    pub fn strlen(&self) -> i64 {
        match &self.value {
            Some(v) => v.len() as i64,
            None => self.length,
        }
    }

    pub fn to_item(&self, pk: &[u8]) -> Item {
        let mut item = key_item(pk, &META_SK);
        item.insert(TYPE.into(), AttributeValue::S(self.kind.name().into()));
        item.insert(VERSION.into(), n(self.version));
        if let Some(at) = self.expire_at {
            item.insert(EXPIRE.into(), n(at));
            item.insert(TTL.into(), n(ttl_secs(at)));
        }
        if let Some(et) = self.elem_ttl {
            item.insert(ELEM_TTL.into(), n(et));
        }
        if let Some(generation) = &self.generation {
            item.insert(GEN.into(), b(generation.to_vec()));
        }
        match self.kind {
            Kind::List => {
                item.insert(HEAD.into(), n(self.head));
                item.insert(TAIL.into(), n(self.tail));
            }
            Kind::String => match &self.value {
                Some(value) => {
                    item.insert(VALUE.into(), b(value.to_vec()));
                }
                None => {
                    item.insert(COUNT.into(), n(self.count));
                    item.insert(LENGTH.into(), n(self.length));
                }
            },
            _ => {
                item.insert(COUNT.into(), n(self.count));
            }
        }
        item
    }

    pub fn from_item(item: &Item) -> Result<Meta, String> {
        let kind = get_s(item, TYPE)
            .and_then(|t| Kind::from_name(t.as_bytes()))
            .ok_or("no type attribute")?;
        let version = get_n(item, VERSION).ok_or("no version attribute")?;
        let generation = match get_b(item, GEN) {
            Some(g) => Some(Gen::try_from(g).map_err(|_| "a generation that is not 8 bytes")?),
            None => None,
        };
        let mut meta = Meta {
            kind,
            version,
            expire_at: get_n(item, EXPIRE),
            elem_ttl: get_n(item, ELEM_TTL),
            generation,
            count: get_n(item, COUNT).unwrap_or(0),
            head: get_n(item, HEAD).unwrap_or(0),
            tail: get_n(item, TAIL).unwrap_or(0),
            value: get_b(item, VALUE).map(Bytes::copy_from_slice),
            length: get_n(item, LENGTH).unwrap_or(0),
        };
        if kind == Kind::String && meta.value.is_none() && meta.generation.is_none() {
            meta.value = Some(Bytes::new());
        }
        if kind != Kind::String && meta.generation.is_none() {
            return Err("a collection without a generation".into());
        }
        Ok(meta)
    }

    /// Approximate bytes of the item (for the transaction size limit).
    pub fn size(&self, pk: &[u8]) -> usize {
        pk.len() + 120 + self.value.as_ref().map_or(0, |v| v.len())
    }
}

/// One element of a collection or chunk of a string, apart from its
/// generation (which the commit adds).
#[derive(Debug, Clone, PartialEq)]
pub struct Elem {
    pub suffix: Vec<u8>,
    /// Hash value, list item, chunk bytes.
    pub value: Option<Bytes>,
    /// The field or member itself when the suffix holds its hash.
    pub long_name: Option<Bytes>,
    pub score: Option<f64>,
}

impl Elem {
    fn bare(suffix: Vec<u8>) -> Elem {
        Elem {
            suffix,
            value: None,
            long_name: None,
            score: None,
        }
    }

    /// A hash field or set member (`value` for hashes).
    pub fn named(name: &[u8], value: Option<Bytes>) -> Elem {
        let mut e = Elem::bare(name_suffix(name));
        if name.len() > MAX_NAME_IN_KEY {
            e.long_name = Some(Bytes::copy_from_slice(name));
        }
        e.value = value;
        e
    }

    pub fn member(member: &[u8], score: f64) -> Elem {
        let mut e = Elem::named(member, None);
        e.score = Some(score);
        e
    }

    pub fn list_item(pos: i64, value: Bytes) -> Elem {
        let mut e = Elem::bare(pos_suffix(pos));
        e.value = Some(value);
        e
    }

    pub fn chunk(index: u32, value: Bytes) -> Elem {
        let mut e = Elem::bare(chunk_suffix(index));
        e.value = Some(value);
        e
    }

    /// The field or member this element stands for.
    pub fn name(&self) -> Bytes {
        match (&self.long_name, self.suffix.split_first()) {
            (Some(name), _) => name.clone(),
            (None, Some((0, name))) => Bytes::copy_from_slice(name),
            _ => Bytes::new(),
        }
    }

    pub fn value(&self) -> Bytes {
        self.value.clone().unwrap_or_default()
    }

    pub fn to_item(&self, pk: &[u8], kind: Kind, generation: &Gen, elem_ttl: Option<i64>) -> Item {
        let mut item = key_item(pk, &elem_sk(kind, generation, &self.suffix));
        if let Some(value) = &self.value {
            item.insert(VALUE.into(), b(value.to_vec()));
        }
        if let Some(name) = &self.long_name {
            item.insert(NAME.into(), b(name.to_vec()));
        }
        if let Some(score) = self.score {
            item.insert(SCORE.into(), b(score.to_be_bytes().to_vec()));
            item.insert(ZO.into(), b(zo(generation, score, &self.name())));
        }
        if let Some(et) = elem_ttl {
            item.insert(TTL.into(), n(et));
        }
        item
    }

    /// An element item of `kind`'s generation `generation`; `None` if it is not one.
    pub fn from_item(item: &Item, kind: Kind, generation: &Gen) -> Option<Elem> {
        let sk = get_b(item, SK)?;
        let prefix = elem_prefix(kind, generation);
        let suffix = sk.strip_prefix(prefix.as_slice())?;
        let score = match get_b(item, SCORE) {
            Some(bytes) => Some(f64::from_be_bytes(bytes.try_into().ok()?)),
            // A `zorder` index entry (keys only): the score is in `zo`.
            None if kind == Kind::ZSet => {
                let zo = get_b(item, ZO)?;
                Some(score_from_key(zo.get(8..16)?.try_into().ok()?))
            }
            None => None,
        };
        Some(Elem {
            suffix: suffix.to_vec(),
            value: get_b(item, VALUE).map(Bytes::copy_from_slice),
            long_name: get_b(item, NAME).map(Bytes::copy_from_slice),
            score,
        })
    }

    pub fn size(&self, pk: &[u8]) -> usize {
        pk.len()
            + 9
            + self.suffix.len()
            + 60
            + self.value.as_ref().map_or(0, |v| v.len())
            + self.long_name.as_ref().map_or(0, |v| v.len())
            + if self.score.is_some() {
                30 + self.suffix.len()
            } else {
                0
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_sort_as_numbers() {
        let scores = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -1e-300,
            0.0,
            1e-310,
            1.0,
            1.5,
            1e300,
            f64::INFINITY,
        ];
        for pair in scores.windows(2) {
            assert!(score_key(pair[0]) < score_key(pair[1]), "{pair:?}");
        }
        for s in scores {
            assert_eq!(score_from_key(score_key(s)), s);
        }
        assert_eq!(score_key(-0.0), score_key(0.0));
    }

    #[test]
    fn positions_sort_as_numbers() {
        let positions = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for pair in positions.windows(2) {
            assert!(pos_suffix(pair[0]) < pos_suffix(pair[1]));
        }
    }

    #[test]
    fn deadlines_round_up_to_seconds() {
        assert_eq!(ttl_secs(1000), 1);
        assert_eq!(ttl_secs(1001), 2);
        assert_eq!(ttl_secs(1999), 2);
        assert_eq!(ttl_secs(-1), 0);
    }

    #[test]
    fn meta_items_round_trip() {
        let mut m = Meta::new(Kind::List);
        m.version = 42;
        m.expire_at = Some(1_700_000_000_123);
        m.elem_ttl = Some(1_700_086_401);
        m.head = -3;
        m.tail = 9;
        let item = m.to_item(&pk(3, b"k"));
        assert_eq!(get_n::<i64>(&item, TTL), Some(1_700_000_001));
        assert_eq!(Meta::from_item(&item).unwrap(), m);
        let s = Meta::string(Bytes::from_static(b""));
        assert_eq!(Meta::from_item(&s.to_item(b"pk")).unwrap(), s);
    }

    #[test]
    fn long_names_live_in_an_attribute() {
        let long = vec![b'x'; MAX_NAME_IN_KEY + 1];
        let e = Elem::named(&long, Some(Bytes::from_static(b"v")));
        assert_eq!(e.suffix.len(), 33);
        let generation = [7; 8];
        let item = e.to_item(b"pk", Kind::Hash, &generation, None);
        let back = Elem::from_item(&item, Kind::Hash, &generation).unwrap();
        assert_eq!(back.name(), Bytes::from(long));
        let short = Elem::member(b"m", -1.5);
        let item = short.to_item(b"pk", Kind::ZSet, &generation, Some(5));
        assert_eq!(Elem::from_item(&item, Kind::ZSet, &generation), Some(short));
        assert_eq!(Elem::from_item(&item, Kind::ZSet, &[8; 8]), None);
    }
}
