//! Key commands: DEL/UNLINK and EXISTS/TOUCH in batches, TYPE, the EXPIRE
//! family, TTL/PTTL/EXPIRETIME, PERSIST, RENAME/RENAMENX and COPY.

use bytes::Bytes;
use futures_util::future::try_join_all;

use super::DynamoStore;
use super::commands::{int, is};
use super::io::TRANSACT_MAX;
use super::item::{self, MAX_KEY_LEN, Meta};
use super::tx::{Fail, Tx, now_ms, reply_err, transact};
use crate::protocol::Frame;
use crate::protocol::reply::{int as int_reply, ok, simple};
use crate::semantics::errors;
use crate::semantics::expiry::{ExpireFlags, expire_deadline, ttl_reply};

/// Redis's default `databases`: COPY … DB accepts 0 to 15.
pub const DATABASES: i64 = 16;
/// DEL groups in flight at once.
const DEL_CONCURRENCY: usize = 4;

/// Distinct keys that can exist (longer ones cannot be stored).
fn distinct(keys: &[Bytes]) -> Vec<Bytes> {
    let mut out: Vec<Bytes> = Vec::with_capacity(keys.len());
    for key in keys {
        if key.len() <= MAX_KEY_LEN && !out.contains(key) {
            out.push(key.clone());
        }
    }
    out
}

/// DEL/UNLINK: meta items read in batches, then deleted in transactions of
/// up to 100 keys, each on the condition that the keys are as read (so the
/// count is exact and a key's elements are never orphaned).
pub async fn del(store: &DynamoStore, db: u32, args: &[Bytes]) -> Result<Frame, Fail> {
    let keys = distinct(&args[1..]);
    let mut deleted = 0;
    for wave in keys.chunks(TRANSACT_MAX * DEL_CONCURRENCY) {
        let counts =
            try_join_all(wave.chunks(TRANSACT_MAX).map(|group| async move {
                transact!(store, db, true, |tx| delete_group(tx, group))
            }))
            .await?;
        deleted += counts.iter().sum::<i64>();
    }
    Ok(int_reply(deleted))
}

/// DEL inside another command's transaction (at most 100 keys).
pub async fn del_in_tx(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let keys = distinct(&args[1..]);
    Ok(int_reply(delete_group(tx, &keys).await?))
}

/// One DEL group: the live keys among `group` deleted in one transaction.
async fn delete_group(tx: &mut Tx<'_>, group: &[Bytes]) -> Result<i64, Fail> {
    tx.load_many(group).await?;
    let mut n = 0;
    for key in group {
        if tx.meta(key).is_some() {
            tx.delete(key);
            n += 1;
        }
    }
    Ok(n)
}

/// EXISTS/TOUCH: meta items in batches of 100; a key named twice counts twice.
pub async fn exists(store: &DynamoStore, db: u32, args: &[Bytes]) -> Result<Frame, Fail> {
    let keys: Vec<&Bytes> = args[1..]
        .iter()
        .filter(|k| k.len() <= MAX_KEY_LEN)
        .collect();
    let lookups: Vec<_> = keys
        .iter()
        .map(|k| (item::pk(db, k), item::META_SK.to_vec()))
        .collect();
    let found = store.batch_get(&lookups, store.consistent_reads).await?;
    let now = now_ms();
    let mut count = 0;
    for lookup in &lookups {
        if let Some(item) = found.get(lookup)
            && store.parse_meta(&lookup.0, item)?.is_live(now)
        {
            count += 1;
        }
    }
    Ok(int_reply(count))
}

pub async fn type_(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    Ok(simple(
        tx.load(&args[1]).await?.map_or("none", |m| m.kind.name()),
    ))
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT.
pub async fn expire(
    tx: &mut Tx<'_>,
    args: &[Bytes],
    millis: bool,
    at: bool,
) -> Result<Frame, Fail> {
    let command = match (millis, at) {
        (false, false) => "expire",
        (true, false) => "pexpire",
        (false, true) => "expireat",
        (true, true) => "pexpireat",
    };
    let flags = ExpireFlags::parse(&args[3..]).map_err(reply_err)?;
    let amount = int(&args[2])?;
    let base = if at { 0 } else { tx.now };
    let when = expire_deadline(amount, millis, base, command).map_err(reply_err)?;
    let key = &args[1];
    let Some(mut meta) = tx.load(key).await? else {
        return Ok(int_reply(0));
    };
    if !flags.allow(meta.expire_at, when) {
        return Ok(int_reply(0));
    }
    if when <= tx.now {
        tx.delete(key);
    } else {
        meta.expire_at = Some(when);
        tx.put(key, meta);
    }
    Ok(int_reply(1))
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME.
pub async fn ttl(
    tx: &mut Tx<'_>,
    args: &[Bytes],
    millis: bool,
    absolute: bool,
) -> Result<Frame, Fail> {
    Ok(int_reply(match tx.load(&args[1]).await? {
        None => -2,
        Some(meta) => ttl_reply(meta.expire_at, tx.now, millis, absolute),
    }))
}

pub async fn persist(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    match tx.load(&args[1]).await? {
        Some(mut meta) if meta.expire_at.is_some() => {
            meta.expire_at = None;
            tx.put(&args[1], meta);
            Ok(int_reply(1))
        }
        _ => Ok(int_reply(0)),
    }
}

/// Writes `meta`'s content (read from `src` in the current database) to
/// `dst` in database `dst_db`, replacing whatever is there.
async fn copy_content(
    tx: &mut Tx<'_>,
    src: &Bytes,
    meta: &Meta,
    dst_db: u32,
    dst: &Bytes,
) -> Result<(), Fail> {
    let elems = if meta.generation.is_some() {
        tx.all(src, meta).await?
    } else {
        Vec::new()
    };
    let db = tx.db;
    tx.db = dst_db;
    tx.replace(dst, meta.clone(), elems);
    tx.db = db;
    Ok(())
}

pub async fn rename(tx: &mut Tx<'_>, args: &[Bytes], nx: bool) -> Result<Frame, Fail> {
    let (src, dst) = (&args[1], &args[2]);
    let Some(meta) = tx.load(src).await? else {
        return Err(reply_err(errors::NO_SUCH_KEY));
    };
    if src == dst {
        return Ok(if nx { int_reply(0) } else { ok() });
    }
    if tx.load(dst).await?.is_some() && nx {
        return Ok(int_reply(0));
    }
    copy_content(tx, src, &meta, tx.db, dst).await?;
    tx.delete(src);
    Ok(if nx { int_reply(1) } else { ok() })
}

pub async fn copy(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let (src, dst) = (&args[1], &args[2]);
    let mut replace = false;
    let mut dst_db = tx.db;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "REPLACE") {
            replace = true;
        } else if is(&args[i], "DB") && i + 1 < args.len() {
            let db = int(&args[i + 1])?;
            if i32::try_from(db).is_err() {
                return Err(reply_err(errors::NOT_INTEGER));
            }
            if !(0..DATABASES).contains(&db) {
                return Err(reply_err(errors::DB_OUT_OF_RANGE));
            }
            dst_db = db as u32;
            i += 1;
        } else {
            return Err(reply_err(errors::SYNTAX));
        }
        i += 1;
    }
    if dst_db == tx.db && src == dst {
        return Err(reply_err(errors::SAME_OBJECT));
    }
    let Some(meta) = tx.load(src).await? else {
        return Ok(int_reply(0));
    };
    let db = tx.db;
    tx.db = dst_db;
    let exists = tx.load(dst).await?.is_some();
    tx.db = db;
    if exists && !replace {
        return Ok(int_reply(0));
    }
    copy_content(tx, src, &meta, dst_db, dst).await?;
    Ok(int_reply(1))
}
