//! Strings: GET/SET with every option, MGET/MSET in batches, the INCR
//! family, APPEND, GETRANGE, SETRANGE, STRLEN — as redis-server 7.0 answers.
//! A value that does not fit one item is stored as chunks plus a manifest
//! (the meta item) written last; see `tx`.

use bytes::Bytes;
use futures_util::future::try_join_all;

use super::DynamoStore;
use super::commands::int;
use super::io::{Outcome, TRANSACT_MAX, TRANSACT_MAX_BYTES};
use super::item::{self, Kind, MAX_KEY_LEN, MAX_VALUE_IN_ITEM, Meta};
use super::tx::{Fail, Tx, now_ms, reply_err, transact};
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, int as int_reply, null, ok};
use crate::semantics::errors;
use crate::semantics::expiry::{SetCondition, StringOptions, TtlChange};
use crate::semantics::number::parse_i64;
use crate::semantics::range::string_range;

/// Redis's default proto-max-bulk-len: the longest string APPEND/SETRANGE may build.
const MAX_STRING_LEN: i64 = 512 * 1024 * 1024;
const TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
/// MSET groups run this many transactions at once.
const MSET_CONCURRENCY: usize = 4;

/// `key`'s string value; `None` when absent, WRONGTYPE for another type.
async fn string(tx: &mut Tx<'_>, key: &Bytes) -> Result<Option<(Meta, Bytes)>, Fail> {
    match tx.typed(key, Kind::String).await? {
        Some(meta) => {
            let value = tx.string_value(key, &meta).await?;
            Ok(Some((meta, value)))
        }
        None => Ok(None),
    }
}

fn bulk_or_null(value: Option<Bytes>) -> Frame {
    value.map_or_else(null, bulk)
}

pub async fn get(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    Ok(bulk_or_null(string(tx, &args[1]).await?.map(|(_, v)| v)))
}

pub async fn set(store: &DynamoStore, db: u32, args: &[Bytes]) -> Result<Frame, Fail> {
    let opts = StringOptions::parse_set(&args[3..]).map_err(reply_err)?;
    let (key, value) = (&args[1], &args[2]);
    let plain = opts.condition == SetCondition::Always && !opts.get && opts.ttl != TtlChange::Keep;
    if plain && key.len() <= MAX_KEY_LEN && value.len() + key.len() <= MAX_VALUE_IN_ITEM {
        // The common SET: one PutItem, unless the key it replaces has elements.
        let deadline = opts.ttl.deadline(now_ms(), "set").map_err(reply_err)?;
        let mut meta = Meta::string(value.clone());
        meta.expire_at = deadline;
        meta.version = rand::random::<u64>() >> 1;
        let item = meta.to_item(&item::pk(db, key));
        if store.put_unless_generation(item).await? == Outcome::Committed {
            return Ok(ok());
        }
    }
    transact!(store, db, true, |tx| set_in(tx, key, value.clone(), opts))
}

/// SET inside another command's transaction (the read-modify-write primitive's `Native`).
pub async fn set_in_tx(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let opts = StringOptions::parse_set(&args[3..]).map_err(reply_err)?;
    set_in(tx, &args[1], args[2].clone(), opts).await
}

/// SET's general form: read the key, then write on the condition that it is unchanged.
async fn set_in(
    tx: &mut Tx<'_>,
    key: &Bytes,
    value: Bytes,
    opts: StringOptions,
) -> Result<Frame, Fail> {
    let deadline = opts.ttl.deadline(tx.now, "set").map_err(reply_err)?;
    let old = if opts.get {
        Some(string(tx, key).await?.map(|(_, v)| v))
    } else {
        None
    };
    let current = tx.load(key).await?;
    let found = current.is_some();
    let refused = match opts.condition {
        SetCondition::IfAbsent => found,
        SetCondition::IfPresent => !found,
        SetCondition::Always => false,
    };
    if !refused {
        let expire_at = match opts.ttl {
            TtlChange::Keep => current.and_then(|m| m.expire_at),
            _ => deadline,
        };
        tx.set_string(key, value, expire_at);
    }
    Ok(match (old, refused) {
        (Some(old), _) => bulk_or_null(old),
        (None, true) => null(),
        (None, false) => ok(),
    })
}

pub async fn setnx(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    if tx.load(&args[1]).await?.is_some() {
        return Ok(int_reply(0));
    }
    tx.set_string(&args[1], args[2].clone(), None);
    Ok(int_reply(1))
}

pub async fn setex(tx: &mut Tx<'_>, args: &[Bytes], millis: bool) -> Result<Frame, Fail> {
    let command = if millis { "psetex" } else { "setex" };
    let ttl = TtlChange::In {
        amount: parse_i64(&args[2]),
        millis,
    };
    let deadline = ttl.deadline(tx.now, command).map_err(reply_err)?;
    tx.load(&args[1]).await?;
    tx.set_string(&args[1], args[3].clone(), deadline);
    Ok(ok())
}

pub async fn getset(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let old = string(tx, &args[1]).await?.map(|(_, v)| v);
    tx.set_string(&args[1], args[2].clone(), None);
    Ok(bulk_or_null(old))
}

pub async fn getdel(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let old = string(tx, &args[1]).await?;
    if old.is_some() {
        tx.delete(&args[1]);
    }
    Ok(bulk_or_null(old.map(|(_, v)| v)))
}

pub async fn getex(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let opts = StringOptions::parse_getex(&args[2..]).map_err(reply_err)?;
    let deadline = opts.ttl.deadline(tx.now, "getex").map_err(reply_err)?;
    let key = &args[1];
    let Some((meta, value)) = string(tx, key).await? else {
        return Ok(null());
    };
    match opts.ttl {
        TtlChange::At { .. } if deadline.is_some_and(|d| d <= tx.now) => tx.delete(key),
        TtlChange::In { .. } | TtlChange::At { .. } => {
            let mut meta = meta;
            meta.expire_at = deadline;
            tx.put(key, meta);
        }
        TtlChange::Persist if meta.expire_at.is_some() => {
            let mut meta = meta;
            meta.expire_at = None;
            tx.put(key, meta);
        }
        _ => {}
    }
    Ok(bulk(value))
}

pub async fn strlen(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let meta = tx.typed(&args[1], Kind::String).await?;
    Ok(int_reply(meta.map_or(0, |m| m.strlen())))
}

pub async fn getrange(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let start = int(&args[2])?;
    let end = int(&args[3])?;
    let key = &args[1];
    let Some(meta) = tx.typed(key, Kind::String).await? else {
        return Ok(bulk(Bytes::new()));
    };
    let Some((from, to)) = string_range(meta.strlen() as usize, start, end) else {
        return Ok(bulk(Bytes::new()));
    };
    if let Some(value) = &meta.value {
        return Ok(bulk(value.slice(from..=to)));
    }
    // Only the chunks the range touches.
    let first = from / MAX_VALUE_IN_ITEM;
    let last = to / MAX_VALUE_IN_ITEM;
    let suffixes: Vec<Vec<u8>> = (first..=last)
        .map(|i| item::chunk_suffix(i as u32))
        .collect();
    let chunks = tx.elems(key, &meta, &suffixes).await?;
    let mut out = Vec::with_capacity(to - from + 1);
    for (i, chunk) in (first..=last).zip(chunks) {
        let data = chunk.and_then(|c| c.value).ok_or(Fail::Conflict)?;
        let base = i * MAX_VALUE_IN_ITEM;
        let lo = from.max(base) - base;
        let hi = (to + 1).min(base + data.len()).saturating_sub(base);
        out.extend_from_slice(data.get(lo..hi).ok_or(Fail::Conflict)?);
    }
    Ok(bulk(Bytes::from(out)))
}

pub async fn setrange(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let offset = int(&args[2])?;
    if offset < 0 {
        return Err(reply_err("ERR offset is out of range"));
    }
    let (key, patch) = (&args[1], &args[3]);
    let current = string(tx, key).await?;
    if patch.is_empty() {
        return Ok(int_reply(current.map_or(0, |(m, _)| m.strlen())));
    }
    if offset.saturating_add(patch.len() as i64) > MAX_STRING_LEN {
        return Err(reply_err(TOO_LONG));
    }
    let (expire_at, old) = current.map_or((None, Bytes::new()), |(m, v)| (m.expire_at, v));
    let offset = offset as usize;
    let mut value = old.to_vec();
    if value.len() < offset + patch.len() {
        value.resize(offset + patch.len(), 0);
    }
    value[offset..offset + patch.len()].copy_from_slice(patch);
    let len = value.len() as i64;
    tx.set_string(key, Bytes::from(value), expire_at);
    Ok(int_reply(len))
}

pub async fn append(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let key = &args[1];
    let (expire_at, old) = string(tx, key)
        .await?
        .map_or((None, Bytes::new()), |(m, v)| (m.expire_at, v));
    if (old.len() + args[2].len()) as i64 > MAX_STRING_LEN {
        return Err(reply_err(TOO_LONG));
    }
    let mut value = old.to_vec();
    value.extend_from_slice(&args[2]);
    let len = value.len() as i64;
    tx.set_string(key, Bytes::from(value), expire_at);
    Ok(int_reply(len))
}

/// INCR, DECR, INCRBY, DECRBY.
pub async fn incrby(
    tx: &mut Tx<'_>,
    args: &[Bytes],
    sign: i64,
    by_arg: bool,
) -> Result<Frame, Fail> {
    let mut delta = if by_arg { int(&args[2])? } else { 1 };
    if sign < 0 {
        delta = delta
            .checked_neg()
            .ok_or_else(|| reply_err("ERR decrement would overflow"))?;
    }
    let key = &args[1];
    let (expire_at, current) = match string(tx, key).await? {
        None => (None, 0),
        Some((meta, value)) => (
            meta.expire_at,
            parse_i64(&value).ok_or_else(|| reply_err(errors::NOT_INTEGER))?,
        ),
    };
    let next = current
        .checked_add(delta)
        .ok_or_else(|| reply_err(errors::OVERFLOW))?;
    tx.set_string(key, Bytes::from(next.to_string()), expire_at);
    Ok(int_reply(next))
}

/// MGET: meta items in batches of 100 (BatchGetItem); a chunked value's
/// chunks are read after.
pub async fn mget(store: &DynamoStore, db: u32, args: &[Bytes]) -> Result<Frame, Fail> {
    let keys = &args[1..];
    if let Some(long) = keys.iter().find(|k| k.len() > MAX_KEY_LEN) {
        let _ = long;
        return Ok(array(keys.iter().map(|_| null()).collect()));
    }
    let lookups: Vec<_> = keys
        .iter()
        .map(|k| (item::pk(db, k), item::META_SK.to_vec()))
        .collect();
    let mut found = store.batch_get(&lookups, store.consistent_reads).await?;
    let now = now_ms();
    let mut replies = Vec::with_capacity(keys.len());
    for (key, lookup) in keys.iter().zip(&lookups) {
        let meta = match found.get(lookup) {
            Some(item) => Some(store.parse_meta(&lookup.0, item)?),
            None => None,
        };
        let reply = match meta.filter(|m| m.is_live(now) && m.kind == Kind::String) {
            None => null(),
            Some(meta) => match meta.value {
                Some(value) => bulk(value),
                // Rare: read the chunks as GET does (retrying if replaced meanwhile).
                None => transact!(store, db, false, |tx| chunked(tx, key))?,
            },
        };
        found.remove(lookup);
        replies.push(reply);
    }
    Ok(array(replies))
}

/// MSET: keys in groups of at most 100 (and ~3.5 MB), each group one
/// DynamoDB transaction conditioned on the versions read (so MSET of up to
/// 100 keys is atomic, as in Redis); groups run concurrently.
pub async fn mset(store: &DynamoStore, db: u32, args: &[Bytes]) -> Result<Frame, Fail> {
    if args.len().is_multiple_of(2) {
        return Err(reply_err(errors::wrong_arity("mset")));
    }
    // The last value of a key wins, as in Redis.
    let mut pairs: Vec<(Bytes, Bytes)> = Vec::with_capacity(args.len() / 2);
    for pair in args[1..].chunks(2) {
        match pairs.iter_mut().find(|(k, _)| *k == pair[0]) {
            Some(existing) => existing.1 = pair[1].clone(),
            None => pairs.push((pair[0].clone(), pair[1].clone())),
        }
    }
    let groups = groups(&pairs);
    for wave in groups.chunks(MSET_CONCURRENCY) {
        try_join_all(
            wave.iter()
                .map(|group| async move { transact!(store, db, true, |tx| set_group(tx, group)) }),
        )
        .await?;
    }
    Ok(ok())
}

/// One MSET group: every key read, then written in one transaction.
async fn set_group(tx: &mut Tx<'_>, group: &[(Bytes, Bytes)]) -> Result<(), Fail> {
    let keys: Vec<Bytes> = group.iter().map(|(k, _)| k.clone()).collect();
    tx.load_many(&keys).await?;
    for (key, value) in group {
        tx.set_string(key, value.clone(), None);
    }
    Ok(())
}

/// MGET's read of a value in chunks (a missing or replaced key reads as nil).
async fn chunked(tx: &mut Tx<'_>, key: &Bytes) -> Result<Frame, Fail> {
    match tx.typed(key, Kind::String).await {
        Ok(Some(meta)) => Ok(bulk(tx.string_value(key, &meta).await?)),
        Ok(None) | Err(Fail::Reply(_)) => Ok(null()),
        Err(e) => Err(e),
    }
}

/// Splits pairs into transaction-sized groups.
fn groups(pairs: &[(Bytes, Bytes)]) -> Vec<&[(Bytes, Bytes)]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, (key, value)) in pairs.iter().enumerate() {
        let size = key.len() + value.len().min(MAX_VALUE_IN_ITEM) + 100;
        if i > start && (i - start >= TRANSACT_MAX || bytes + size > TRANSACT_MAX_BYTES) {
            out.push(&pairs[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < pairs.len() {
        out.push(&pairs[start..]);
    }
    out
}

/// MSETNX: all keys or none, in one transaction (so at most 100 keys).
pub async fn msetnx(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    if args.len().is_multiple_of(2) {
        return Err(reply_err(errors::wrong_arity("msetnx")));
    }
    let pairs: Vec<(&Bytes, &Bytes)> = args[1..].chunks(2).map(|p| (&p[0], &p[1])).collect();
    let keys: Vec<Bytes> = pairs.iter().map(|(k, _)| (*k).clone()).collect();
    tx.load_many(&keys).await?;
    if keys.iter().any(|k| tx.meta(k).is_some()) {
        return Ok(int_reply(0));
    }
    let mut distinct = keys.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() > TRANSACT_MAX {
        return Err(reply_err(format!(
            "ERR sealcache: MSETNX of more than {TRANSACT_MAX} keys cannot be all-or-nothing on the dynamodb backend (one DynamoDB transaction holds {TRANSACT_MAX} items)"
        )));
    }
    for (key, value) in pairs {
        tx.set_string(key, value.clone(), None);
    }
    Ok(int_reply(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mset_groups_respect_transaction_limits() {
        let small: Vec<(Bytes, Bytes)> = (0..250)
            .map(|i| (Bytes::from(format!("k{i}")), Bytes::from_static(b"v")))
            .collect();
        let sizes: Vec<usize> = groups(&small).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        let big: Vec<(Bytes, Bytes)> = (0..20)
            .map(|i| {
                (
                    Bytes::from(format!("k{i}")),
                    Bytes::from(vec![0u8; 300_000]),
                )
            })
            .collect();
        for g in groups(&big) {
            let bytes: usize = g.iter().map(|(_, v)| v.len()).sum();
            assert!(bytes <= TRANSACT_MAX_BYTES, "{bytes}");
        }
    }
}
