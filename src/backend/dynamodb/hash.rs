//! Hashes: one element item per field (the field in the sort key, the value
//! in `val`), the field count in the meta item.

use std::collections::BTreeMap;

use bytes::Bytes;
use rand::Rng;
use rand::seq::SliceRandom;

use super::commands::int;
use super::item::{self, Elem, Kind, MAX_VALUE_IN_ITEM, Meta};
use super::tx::{Fail, Tx, reply_err};
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, int as int_reply, map, null, ok};
use crate::semantics::errors;
use crate::semantics::number::{parse_i64, random_count, random_count_and_flag};

/// Refuses an element that cannot fit one item.
pub(super) fn check_size(name: &[u8], value: &[u8], what: &str) -> Result<(), Fail> {
    let stored = value.len()
        + if name.len() > item::MAX_NAME_IN_KEY {
            name.len()
        } else {
            0
        };
    if stored > MAX_VALUE_IN_ITEM {
        return Err(reply_err(format!(
            "ERR sealcache: {what} larger than {MAX_VALUE_IN_ITEM} bytes are not supported by the dynamodb backend (one DynamoDB item holds 400 KB); store large values as strings"
        )));
    }
    Ok(())
}

async fn hash(tx: &mut Tx<'_>, key: &Bytes) -> Result<Option<Meta>, Fail> {
    tx.typed(key, Kind::Hash).await
}

/// Fields' current elements, in the order given.
async fn fields(
    tx: &mut Tx<'_>,
    key: &Bytes,
    meta: &Meta,
    names: &[&Bytes],
) -> Result<Vec<Option<Elem>>, Fail> {
    let suffixes: Vec<Vec<u8>> = names.iter().map(|n| item::name_suffix(n)).collect();
    tx.elems(key, meta, &suffixes).await
}

/// HSET and HMSET.
pub async fn hset(tx: &mut Tx<'_>, args: &[Bytes], hmset: bool) -> Result<Frame, Fail> {
    if !args.len().is_multiple_of(2) {
        return Err(reply_err(errors::wrong_arity(if hmset {
            "hmset"
        } else {
            "hset"
        })));
    }
    let key = &args[1];
    // The last value of a field wins.
    let mut pairs: BTreeMap<&Bytes, &Bytes> = BTreeMap::new();
    for pair in args[2..].chunks(2) {
        check_size(&pair[0], &pair[1], "hash values")?;
        pairs.insert(&pair[0], &pair[1]);
    }
    let meta = hash(tx, key).await?;
    let names: Vec<&Bytes> = pairs.keys().copied().collect();
    let (mut meta, added) = match meta {
        Some(meta) => {
            let existing = fields(tx, key, &meta, &names).await?;
            let added = existing.iter().filter(|e| e.is_none()).count() as i64;
            (meta, added)
        }
        None => (Meta::new(Kind::Hash), pairs.len() as i64),
    };
    meta.count += added;
    for (field, value) in &pairs {
        tx.put_elem(key, Elem::named(field, Some((*value).clone())));
    }
    tx.put(key, meta);
    Ok(if hmset { ok() } else { int_reply(added) })
}

pub async fn hsetnx(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let (key, field, value) = (&args[1], &args[2], &args[3]);
    check_size(field, value, "hash values")?;
    let mut meta = match hash(tx, key).await? {
        Some(meta) => {
            if fields(tx, key, &meta, &[field]).await?[0].is_some() {
                return Ok(int_reply(0));
            }
            meta
        }
        None => Meta::new(Kind::Hash),
    };
    meta.count += 1;
    tx.put_elem(key, Elem::named(field, Some(value.clone())));
    tx.put(key, meta);
    Ok(int_reply(1))
}

pub async fn hget(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let Some(meta) = hash(tx, &args[1]).await? else {
        return Ok(null());
    };
    let found = fields(tx, &args[1], &meta, &[&args[2]]).await?;
    Ok(found[0].as_ref().map_or_else(null, |e| bulk(e.value())))
}

pub async fn hmget(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let names: Vec<&Bytes> = args[2..].iter().collect();
    let Some(meta) = hash(tx, &args[1]).await? else {
        return Ok(array(names.iter().map(|_| null()).collect()));
    };
    let found = fields(tx, &args[1], &meta, &names).await?;
    Ok(array(
        found
            .into_iter()
            .map(|e| e.map_or_else(null, |e| bulk(e.value())))
            .collect(),
    ))
}

async fn all(tx: &mut Tx<'_>, key: &Bytes) -> Result<Vec<Elem>, Fail> {
    match hash(tx, key).await? {
        Some(meta) => tx.all(key, &meta).await,
        None => Ok(Vec::new()),
    }
}

pub async fn hgetall(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let elems = all(tx, &args[1]).await?;
    Ok(map(elems
        .into_iter()
        .map(|e| (bulk(e.name()), bulk(e.value())))
        .collect()))
}

pub async fn hkeys(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let elems = all(tx, &args[1]).await?;
    Ok(array(elems.into_iter().map(|e| bulk(e.name())).collect()))
}

pub async fn hvals(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let elems = all(tx, &args[1]).await?;
    Ok(array(elems.into_iter().map(|e| bulk(e.value())).collect()))
}

pub async fn hlen(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    Ok(int_reply(hash(tx, &args[1]).await?.map_or(0, |m| m.count)))
}

pub async fn hexists(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let Some(meta) = hash(tx, &args[1]).await? else {
        return Ok(int_reply(0));
    };
    let found = fields(tx, &args[1], &meta, &[&args[2]]).await?;
    Ok(int_reply(i64::from(found[0].is_some())))
}

pub async fn hstrlen(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let Some(meta) = hash(tx, &args[1]).await? else {
        return Ok(int_reply(0));
    };
    let found = fields(tx, &args[1], &meta, &[&args[2]]).await?;
    Ok(int_reply(
        found[0].as_ref().map_or(0, |e| e.value().len() as i64),
    ))
}

pub async fn hdel(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let key = &args[1];
    let Some(mut meta) = hash(tx, key).await? else {
        return Ok(int_reply(0));
    };
    let mut names: Vec<&Bytes> = args[2..].iter().collect();
    names.sort();
    names.dedup();
    let found = fields(tx, key, &meta, &names).await?;
    let mut removed = 0;
    for elem in found.into_iter().flatten() {
        tx.del_elem(key, elem.suffix);
        removed += 1;
    }
    if removed > 0 {
        meta.count -= removed;
        tx.put(key, meta);
    }
    Ok(int_reply(removed))
}

pub async fn hincrby(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let (key, field) = (&args[1], &args[2]);
    let delta = int(&args[3])?;
    let (mut meta, current) = match hash(tx, key).await? {
        Some(meta) => {
            let found = fields(tx, key, &meta, &[field]).await?.pop().flatten();
            (meta, found)
        }
        None => (Meta::new(Kind::Hash), None),
    };
    let value = match &current {
        Some(elem) => {
            parse_i64(&elem.value()).ok_or_else(|| reply_err("ERR hash value is not an integer"))?
        }
        None => 0,
    };
    let next = value
        .checked_add(delta)
        .ok_or_else(|| reply_err(errors::OVERFLOW))?;
    if current.is_none() {
        meta.count += 1;
    }
    tx.put_elem(key, Elem::named(field, Some(Bytes::from(next.to_string()))));
    tx.put(key, meta);
    Ok(int_reply(next))
}

/// A count argument in `-i64::MAX..=i64::MAX` (Redis's getRangeLong with ±LONG_MAX).
pub(super) fn signed_count(arg: &[u8]) -> Result<i64, Fail> {
    random_count(arg).map_err(reply_err)
}

/// `count` random picks of `items`: distinct when positive (at most all of
/// them), with repetition when negative.
pub(super) fn pick<T: Clone>(items: &[T], count: i64) -> Vec<T> {
    let mut rng = rand::rng();
    if items.is_empty() {
        return Vec::new();
    }
    if count < 0 {
        return (0..count.unsigned_abs())
            .map(|_| items[rng.random_range(0..items.len())].clone())
            .collect();
    }
    let mut all = items.to_vec();
    all.shuffle(&mut rng);
    all.truncate(usize::try_from(count).unwrap_or(usize::MAX));
    all
}

pub async fn hrandfield(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let key = &args[1];
    let (count, with_values) = if args.len() == 2 {
        (None, false)
    } else {
        let (count, with_values) = random_count_and_flag(args, b"WITHVALUES").map_err(reply_err)?;
        (Some(count), with_values)
    };
    let meta = hash(tx, key).await?;
    let Some(count) = count else {
        let Some(meta) = meta else {
            return Ok(null());
        };
        let elems = tx.all(key, &meta).await?;
        return Ok(pick(&elems, 1).pop().map_or_else(null, |e| bulk(e.name())));
    };
    let Some(meta) = meta else {
        return Ok(array(Vec::new()));
    };
    if count == 0 {
        return Ok(array(Vec::new()));
    }
    let elems = tx.all(key, &meta).await?;
    Ok(array(
        pick(&elems, count)
            .into_iter()
            .map(|e| {
                if with_values {
                    array(vec![bulk(e.name()), bulk(e.value())])
                } else {
                    bulk(e.name())
                }
            })
            .collect(),
    ))
}
