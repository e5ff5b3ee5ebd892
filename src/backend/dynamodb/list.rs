//! Lists: items at consecutive positions `head..tail` (in the meta item),
//! each an element whose sort key is its position. Pushing moves an end,
//! indexing is one GetItem, ranges are one Query.

use bytes::Bytes;

use super::commands::{int, is};
use super::hash::check_size;
use super::item::{self, Elem, Kind, Meta};
use super::tx::{Fail, Tx, reply_err};
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, int as int_reply, null, ok};
use crate::semantics::errors;
use crate::semantics::range::index_range;

async fn list(tx: &mut Tx<'_>, key: &Bytes) -> Result<Option<Meta>, Fail> {
    tx.typed(key, Kind::List).await
}

/// Items at positions `from..=to`, in order.
async fn items(
    tx: &mut Tx<'_>,
    key: &Bytes,
    meta: &Meta,
    from: i64,
    to: i64,
) -> Result<Vec<Elem>, Fail> {
    if from > to {
        return Ok(Vec::new());
    }
    tx.read_by_position();
    let range = Tx::between(meta, &item::pos_suffix(from), &item::pos_suffix(to));
    tx.range(key, meta, range, true, None).await
}

/// Makes room for one item at an end; its position.
fn grow(meta: &mut Meta, left: bool) -> i64 {
    if left {
        meta.head -= 1;
        meta.head
    } else {
        meta.tail += 1;
        meta.tail - 1
    }
}

/// LPUSH, RPUSH, LPUSHX, RPUSHX.
pub async fn push(
    tx: &mut Tx<'_>,
    args: &[Bytes],
    left: bool,
    existing: bool,
) -> Result<Frame, Fail> {
    let key = &args[1];
    for value in &args[2..] {
        check_size(b"", value, "list elements")?;
    }
    let mut meta = match list(tx, key).await? {
        Some(meta) => meta,
        None if existing => return Ok(int_reply(0)),
        None => Meta::new(Kind::List),
    };
    for value in &args[2..] {
        let pos = grow(&mut meta, left);
        tx.put_elem(key, Elem::list_item(pos, value.clone()));
    }
    let len = meta.len();
    tx.put(key, meta);
    Ok(int_reply(len))
}

/// Takes up to `count` items from one end; the meta item is updated.
async fn take(
    tx: &mut Tx<'_>,
    key: &Bytes,
    meta: &mut Meta,
    left: bool,
    count: i64,
) -> Result<Vec<Bytes>, Fail> {
    let count = count.min(meta.len());
    let (from, to) = if left {
        (meta.head, meta.head + count - 1)
    } else {
        (meta.tail - count, meta.tail - 1)
    };
    let mut taken = items(tx, key, meta, from, to).await?;
    if taken.len() as i64 != count {
        // The meta item and the items disagree: someone wrote in between.
        return Err(Fail::Conflict);
    }
    for elem in &taken {
        tx.del_elem(key, elem.suffix.clone());
    }
    if left {
        meta.head += count;
    } else {
        meta.tail -= count;
        taken.reverse();
    }
    Ok(taken.iter().map(Elem::value).collect())
}

/// LPOP and RPOP, with or without a count.
pub async fn pop(tx: &mut Tx<'_>, args: &[Bytes], left: bool) -> Result<Frame, Fail> {
    if args.len() > 3 {
        let name = if left { "lpop" } else { "rpop" };
        return Err(reply_err(errors::wrong_arity(name)));
    }
    let count = match args.get(2) {
        Some(arg) => Some(
            int(arg)
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| reply_err(errors::MUST_BE_POSITIVE))?,
        ),
        None => None,
    };
    let key = &args[1];
    let Some(mut meta) = list(tx, key).await? else {
        return Ok(null());
    };
    if count == Some(0) {
        return Ok(array(Vec::new()));
    }
    let taken = take(tx, key, &mut meta, left, count.unwrap_or(1)).await?;
    tx.put(key, meta);
    Ok(match count {
        None => taken.into_iter().next().map_or_else(null, bulk),
        Some(_) => array(taken.into_iter().map(bulk).collect()),
    })
}

pub async fn llen(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    Ok(int_reply(list(tx, &args[1]).await?.map_or(0, |m| m.len())))
}

pub async fn lrange(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let start = int(&args[2])?;
    let end = int(&args[3])?;
    let key = &args[1];
    let Some(meta) = list(tx, key).await? else {
        return Ok(array(Vec::new()));
    };
    let Some((s, e)) = index_range(meta.len() as usize, start, end) else {
        return Ok(array(Vec::new()));
    };
    let found = items(tx, key, &meta, meta.head + s as i64, meta.head + e as i64).await?;
    Ok(array(found.iter().map(|e| bulk(e.value())).collect()))
}

/// The position of index `index` (negative from the tail), if inside the list.
fn position(meta: &Meta, index: i64) -> Option<i64> {
    let len = meta.len();
    let index = if index < 0 {
        len.checked_add(index)?
    } else {
        index
    };
    (0..len).contains(&index).then_some(meta.head + index)
}

pub async fn lindex(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let index = int(&args[2])?;
    let key = &args[1];
    let Some(meta) = list(tx, key).await? else {
        return Ok(null());
    };
    let Some(pos) = position(&meta, index) else {
        return Ok(null());
    };
    tx.read_by_position();
    let elem = tx.elem(key, &meta, item::pos_suffix(pos)).await?;
    Ok(elem.map_or_else(null, |e| bulk(e.value())))
}

pub async fn lset(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let index = int(&args[2])?;
    let key = &args[1];
    check_size(b"", &args[3], "list elements")?;
    let Some(meta) = list(tx, key).await? else {
        return Err(reply_err(errors::NO_SUCH_KEY));
    };
    let Some(pos) = position(&meta, index) else {
        return Err(reply_err(errors::INDEX_OUT_OF_RANGE));
    };
    tx.put_elem(key, Elem::list_item(pos, args[3].clone()));
    tx.put(key, meta);
    Ok(ok())
}

pub async fn ltrim(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let start = int(&args[2])?;
    let end = int(&args[3])?;
    let key = &args[1];
    let Some(mut meta) = list(tx, key).await? else {
        return Ok(ok());
    };
    let len = meta.len();
    let (keep_from, keep_to) = match index_range(len as usize, start, end) {
        Some((s, e)) => (meta.head + s as i64, meta.head + e as i64),
        None => (meta.tail, meta.tail - 1),
    };
    // Dropped items are known by position: no need to read them.
    for pos in (meta.head..keep_from).chain(keep_to + 1..meta.tail) {
        tx.del_elem(key, item::pos_suffix(pos));
    }
    if keep_from > keep_to {
        tx.delete(key);
        return Ok(ok());
    }
    meta.head = keep_from;
    meta.tail = keep_to + 1;
    tx.put(key, meta);
    Ok(ok())
}

fn side(arg: &[u8]) -> Result<bool, Fail> {
    if is(arg, "LEFT") {
        Ok(true)
    } else if is(arg, "RIGHT") {
        Ok(false)
    } else {
        Err(reply_err(errors::SYNTAX))
    }
}

pub async fn lmove(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let from = side(&args[3])?;
    let to = side(&args[4])?;
    move_item(tx, &args[1], &args[2], from, to).await
}

pub async fn rpoplpush(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    move_item(tx, &args[1], &args[2], false, true).await
}

/// Pops from one end of `src` and pushes onto one end of `dst` (maybe the same list).
async fn move_item(
    tx: &mut Tx<'_>,
    src: &Bytes,
    dst: &Bytes,
    from_left: bool,
    to_left: bool,
) -> Result<Frame, Fail> {
    let Some(mut src_meta) = list(tx, src).await? else {
        return Ok(null());
    };
    let dst_meta = tx.load(dst).await?;
    if dst_meta.as_ref().is_some_and(|m| m.kind != Kind::List) {
        return Err(reply_err(errors::WRONGTYPE));
    }
    let value = take(tx, src, &mut src_meta, from_left, 1)
        .await?
        .into_iter()
        .next()
        .ok_or(Fail::Conflict)?;
    let mut dst_meta = if src == dst {
        src_meta
    } else {
        tx.put(src, src_meta);
        dst_meta.unwrap_or_else(|| Meta::new(Kind::List))
    };
    let pos = grow(&mut dst_meta, to_left);
    tx.put_elem(dst, Elem::list_item(pos, value.clone()));
    tx.put(dst, dst_meta);
    Ok(bulk(value))
}
