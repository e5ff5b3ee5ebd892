//! Sets: one element item per member (the member in the sort key), the
//! member count in the meta item. SINTER/SUNION/SDIFF read whole sets; their
//! STORE forms replace the destination with a new generation.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::commands::int;
use super::hash::{check_size, pick, signed_count};
use super::item::{self, Elem, Kind, Meta};
use super::tx::{Fail, Tx, reply_err};
use crate::protocol::Frame;
use crate::protocol::reply::{self, array, bulk, int as int_reply, null};
use crate::semantics::errors;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Inter,
    Union,
    Diff,
}

/// A RESP3 set reply (an array in RESP2).
pub(super) fn set_frame(items: impl IntoIterator<Item = Bytes>) -> Frame {
    reply::set_frame(items.into_iter().map(bulk).collect())
}

async fn set(tx: &mut Tx<'_>, key: &Bytes) -> Result<Option<Meta>, Fail> {
    tx.typed(key, Kind::Set).await
}

async fn members_present(
    tx: &mut Tx<'_>,
    key: &Bytes,
    meta: &Meta,
    members: &[&Bytes],
) -> Result<Vec<bool>, Fail> {
    let suffixes: Vec<Vec<u8>> = members.iter().map(|m| item::name_suffix(m)).collect();
    Ok(tx
        .elems(key, meta, &suffixes)
        .await?
        .iter()
        .map(Option::is_some)
        .collect())
}

/// Every member of a set (empty when absent).
pub(super) async fn members(tx: &mut Tx<'_>, key: &Bytes) -> Result<Vec<Bytes>, Fail> {
    match set(tx, key).await? {
        Some(meta) => Ok(tx.all(key, &meta).await?.iter().map(Elem::name).collect()),
        None => Ok(Vec::new()),
    }
}

pub async fn sadd(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let key = &args[1];
    let mut new: Vec<&Bytes> = args[2..].iter().collect();
    new.sort();
    new.dedup();
    for member in &new {
        check_size(member, b"", "set members")?;
    }
    let meta = match set(tx, key).await? {
        Some(meta) => {
            let present = members_present(tx, key, &meta, &new).await?;
            new = new
                .into_iter()
                .zip(present)
                .filter(|(_, p)| !p)
                .map(|(m, _)| m)
                .collect();
            meta
        }
        None => Meta::new(Kind::Set),
    };
    if new.is_empty() {
        return Ok(int_reply(0));
    }
    let mut meta = meta;
    meta.count += new.len() as i64;
    for member in &new {
        tx.put_elem(key, Elem::named(member, None));
    }
    tx.put(key, meta);
    Ok(int_reply(new.len() as i64))
}

pub async fn srem(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let key = &args[1];
    let Some(mut meta) = set(tx, key).await? else {
        return Ok(int_reply(0));
    };
    let mut gone: Vec<&Bytes> = args[2..].iter().collect();
    gone.sort();
    gone.dedup();
    let present = members_present(tx, key, &meta, &gone).await?;
    let mut removed = 0;
    for (member, present) in gone.iter().zip(present) {
        if present {
            tx.del_elem(key, item::name_suffix(member));
            removed += 1;
        }
    }
    if removed > 0 {
        meta.count -= removed;
        tx.put(key, meta);
    }
    Ok(int_reply(removed))
}

pub async fn sismember(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let Some(meta) = set(tx, &args[1]).await? else {
        return Ok(int_reply(0));
    };
    let present = members_present(tx, &args[1], &meta, &[&args[2]]).await?;
    Ok(int_reply(i64::from(present[0])))
}

pub async fn smismember(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let asked: Vec<&Bytes> = args[2..].iter().collect();
    let present = match set(tx, &args[1]).await? {
        Some(meta) => members_present(tx, &args[1], &meta, &asked).await?,
        None => vec![false; asked.len()],
    };
    Ok(array(
        present
            .into_iter()
            .map(|p| int_reply(i64::from(p)))
            .collect(),
    ))
}

pub async fn smembers(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    Ok(set_frame(members(tx, &args[1]).await?))
}

pub async fn scard(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    Ok(int_reply(set(tx, &args[1]).await?.map_or(0, |m| m.count)))
}

pub async fn smove(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let src_meta = tx.load(src).await?;
    let dst_meta = tx.load(dst).await?;
    let Some(mut src_meta) = src_meta else {
        return Ok(int_reply(0));
    };
    if src_meta.kind != Kind::Set || dst_meta.as_ref().is_some_and(|m| m.kind != Kind::Set) {
        return Err(reply_err(errors::WRONGTYPE));
    }
    let in_src = members_present(tx, src, &src_meta, &[member]).await?[0];
    if src == dst {
        return Ok(int_reply(i64::from(in_src)));
    }
    if !in_src {
        return Ok(int_reply(0));
    }
    src_meta.count -= 1;
    tx.del_elem(src, item::name_suffix(member));
    tx.put(src, src_meta);
    let mut dst_meta = match dst_meta {
        Some(meta) => {
            if members_present(tx, dst, &meta, &[member]).await?[0] {
                // Already there: only the removal from the source happens.
                return Ok(int_reply(1));
            }
            meta
        }
        None => Meta::new(Kind::Set),
    };
    dst_meta.count += 1;
    tx.put_elem(dst, Elem::named(member, None));
    tx.put(dst, dst_meta);
    Ok(int_reply(1))
}

/// SPOP [count]: random members removed.
pub async fn spop(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let key = &args[1];
    let count = match args.len() {
        2 => None,
        3 => {
            let n = int(&args[2]).map_err(|_| reply_err(errors::MUST_BE_POSITIVE))?;
            if n < 0 {
                return Err(reply_err(errors::MUST_BE_POSITIVE));
            }
            Some(n)
        }
        _ => return Err(reply_err(errors::SYNTAX)),
    };
    let Some(mut meta) = set(tx, key).await? else {
        return Ok(if count.is_some() {
            set_frame(Vec::new())
        } else {
            null()
        });
    };
    if count == Some(0) {
        return Ok(set_frame(Vec::new()));
    }
    let elems = tx.all(key, &meta).await?;
    let chosen = pick(&elems, count.unwrap_or(1));
    for elem in &chosen {
        tx.del_elem(key, elem.suffix.clone());
    }
    meta.count -= chosen.len() as i64;
    tx.put(key, meta);
    let names = chosen.iter().map(Elem::name);
    Ok(match count {
        None => names.into_iter().next().map_or_else(null, bulk),
        Some(_) => set_frame(names),
    })
}

pub async fn srandmember(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let key = &args[1];
    let count = match args.len() {
        2 => None,
        3 => Some(signed_count(&args[2])?),
        _ => return Err(reply_err(errors::SYNTAX)),
    };
    let Some(meta) = set(tx, key).await? else {
        return Ok(if count.is_some() {
            array(Vec::new())
        } else {
            null()
        });
    };
    if count == Some(0) {
        return Ok(array(Vec::new()));
    }
    let elems = tx.all(key, &meta).await?;
    let chosen = pick(&elems, count.unwrap_or(1));
    Ok(match count {
        None => chosen.first().map_or_else(null, |e| bulk(e.name())),
        Some(_) => array(chosen.iter().map(|e| bulk(e.name())).collect()),
    })
}

/// Reads `keys` as sets (all checked for type first, as Redis does) and combines them.
async fn combine(tx: &mut Tx<'_>, keys: &[Bytes], op: SetOp) -> Result<BTreeSet<Bytes>, Fail> {
    tx.load_many(keys).await?;
    let mut metas = Vec::with_capacity(keys.len());
    for key in keys {
        let meta = tx.meta(key).cloned();
        if meta.as_ref().is_some_and(|m| m.kind != Kind::Set) {
            return Err(reply_err(errors::WRONGTYPE));
        }
        metas.push(meta);
    }
    if op == SetOp::Inter && metas.iter().any(Option::is_none) {
        return Ok(BTreeSet::new());
    }
    let mut result: Option<BTreeSet<Bytes>> = None;
    for (key, meta) in keys.iter().zip(metas) {
        let members: BTreeSet<Bytes> = match &meta {
            Some(meta) => tx.all(key, meta).await?.iter().map(Elem::name).collect(),
            None => BTreeSet::new(),
        };
        result = Some(match (result, op) {
            (None, _) => members,
            (Some(acc), SetOp::Inter) => acc.intersection(&members).cloned().collect(),
            (Some(mut acc), SetOp::Union) => {
                acc.extend(members);
                acc
            }
            (Some(acc), SetOp::Diff) => acc.difference(&members).cloned().collect(),
        });
        if op != SetOp::Union && result.as_ref().is_some_and(BTreeSet::is_empty) {
            break;
        }
    }
    Ok(result.unwrap_or_default())
}

/// SINTER, SUNION, SDIFF and their STORE forms.
pub async fn setop(tx: &mut Tx<'_>, args: &[Bytes], op: SetOp, store: bool) -> Result<Frame, Fail> {
    let (dst, sources) = if store {
        (Some(&args[1]), &args[2..])
    } else {
        (None, &args[1..])
    };
    if let Some(dst) = dst {
        tx.load(dst).await?;
    }
    let result = combine(tx, sources, op).await?;
    let Some(dst) = dst else {
        return Ok(set_frame(result));
    };
    let count = result.len() as i64;
    if result.is_empty() {
        if tx.meta(dst).is_some() {
            tx.delete(dst);
        }
    } else {
        let mut meta = Meta::new(Kind::Set);
        meta.count = count;
        let elems = result.iter().map(|m| Elem::named(m, None)).collect();
        tx.replace(dst, meta, elems);
    }
    Ok(int_reply(count))
}

pub async fn sintercard(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let numkeys = int(&args[1])
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| reply_err("ERR numkeys should be greater than 0"))?;
    if numkeys > (args.len() - 2) as i64 {
        return Err(reply_err(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let keys = &args[2..2 + numkeys as usize];
    let mut limit = 0i64;
    let mut i = 2 + numkeys as usize;
    while i < args.len() {
        if super::commands::is(&args[i], "LIMIT") && i + 1 < args.len() {
            limit = int(&args[i + 1])
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| reply_err("ERR LIMIT can't be negative"))?;
            i += 2;
        } else {
            return Err(reply_err(errors::SYNTAX));
        }
    }
    let result = combine(tx, keys, SetOp::Inter).await?;
    let count = result.len() as i64;
    Ok(int_reply(if limit > 0 { count.min(limit) } else { count }))
}
