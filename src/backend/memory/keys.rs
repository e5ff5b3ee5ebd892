//! Keyspace commands (db.c, expire.c): DEL, UNLINK, EXISTS, TYPE, TOUCH, the
//! EXPIRE family, TTL/PTTL/EXPIRETIME/PEXPIRETIME, PERSIST, RENAME(NX),
//! COPY, MOVE, SCAN, KEYS, DBSIZE, RANDOMKEY, FLUSHDB, FLUSHALL; and the
//! connection commands that need no session: PING, ECHO, TIME.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::Ctx;
use super::commands::{ScanOptions, db_index_arg, int_arg, scan_options};
use super::value::{Collection, Value};
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, error, int, null, ok, simple};
use crate::semantics::errors;
use crate::semantics::expiry::{ExpireFlags, expire_deadline, ttl_reply};
use crate::semantics::glob;
use crate::semantics::number::parse_cursor;

fn count_keys(
    ctx: &mut Ctx<'_>,
    keys: &[Bytes],
    mut f: impl FnMut(&mut Ctx<'_>, &Bytes) -> bool,
) -> Frame {
    let mut n = 0;
    for key in keys {
        if f(ctx, key) {
            n += 1;
        }
    }
    int(n)
}

pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    count_keys(ctx, &args[1..], |ctx, key| {
        ctx.expire_if_needed(ctx.db, key);
        ctx.remove(ctx.db, key).is_some()
    })
}

pub fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    count_keys(ctx, &args[1..], |ctx, key| ctx.exists(key))
}

pub fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    count_keys(ctx, &args[1..], |ctx, key| {
        let found = ctx.exists(key);
        if found {
            ctx.touch_read(key);
        }
        found
    })
}

pub fn type_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let name = ctx.value(&args[1]).map_or("none", Value::type_name);
    simple(name)
}

fn expire_generic(ctx: &mut Ctx<'_>, args: &[Bytes], millis: bool, absolute: bool) -> Frame {
    let flags = match ExpireFlags::parse(&args[3..]) {
        Ok(f) => f,
        Err(msg) => return error(msg),
    };
    let amount = match int_arg(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let base = if absolute { 0 } else { ctx.now };
    let command = String::from_utf8_lossy(&args[0]);
    let when = match expire_deadline(amount, millis, base, &command) {
        Ok(w) => w,
        Err(msg) => return error(msg),
    };
    let Some(current) = ctx.slot(&args[1]).map(|s| s.expire_at) else {
        return int(0);
    };
    if !flags.allow(current, when) {
        return int(0);
    }
    if when <= ctx.now {
        ctx.remove(ctx.db, &args[1]);
    } else {
        ctx.set_expire_in(ctx.db, &args[1], Some(when));
    }
    int(1)
}

pub fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    expire_generic(ctx, args, false, false)
}

pub fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    expire_generic(ctx, args, true, false)
}

pub fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    expire_generic(ctx, args, false, true)
}

pub fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    expire_generic(ctx, args, true, true)
}

fn ttl_generic(ctx: &mut Ctx<'_>, args: &[Bytes], millis: bool, absolute: bool) -> Frame {
    let now = ctx.now;
    match ctx.slot(&args[1]) {
        None => int(-2),
        Some(slot) => int(ttl_reply(slot.expire_at, now, millis, absolute)),
    }
}

pub fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    ttl_generic(ctx, args, false, false)
}

pub fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    ttl_generic(ctx, args, true, false)
}

pub fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    ttl_generic(ctx, args, false, true)
}

pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    ttl_generic(ctx, args, true, true)
}

pub fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.slot(&args[1]) {
        Some(slot) if slot.expire_at.is_some() => {
            ctx.set_expire_in(ctx.db, &args[1], None);
            int(1)
        }
        _ => int(0),
    }
}

fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> Frame {
    let (from, to) = (&args[1], &args[2]);
    if ctx.slot(from).is_none() {
        return error(errors::NO_SUCH_KEY);
    }
    if from == to {
        return if nx { int(0) } else { ok() };
    }
    if nx && ctx.exists(to) {
        return int(0);
    }
    let slot = ctx.remove(ctx.db, from).expect("checked above");
    ctx.put(to.clone(), slot.value, slot.expire_at);
    if nx { int(1) } else { ok() }
}

pub fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    rename_generic(ctx, args, false)
}

pub fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    rename_generic(ctx, args, true)
}

pub fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut replace = false;
    let mut dst_db = ctx.db;
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"REPLACE") {
            replace = true;
        } else if opt.eq_ignore_ascii_case(b"DB") && j + 1 < args.len() {
            dst_db = match db_index_arg(ctx, &args[j + 1]) {
                Ok(db) => db,
                Err(e) => return e,
            };
            j += 1;
        } else {
            return error(errors::SYNTAX);
        }
        j += 1;
    }
    let (key, new_key) = (&args[1], &args[2]);
    if dst_db == ctx.db && key == new_key {
        return error(errors::SAME_OBJECT);
    }
    let Some(slot) = ctx.slot(key) else {
        return int(0);
    };
    let (value, expire_at) = (slot.value.clone(), slot.expire_at);
    if ctx.slot_in(dst_db, new_key).is_some() {
        if !replace {
            return int(0);
        }
        ctx.remove(dst_db, new_key);
    }
    ctx.put_in(dst_db, new_key.clone(), value, expire_at);
    int(1)
}

pub fn move_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let dst = match db_index_arg(ctx, &args[2]) {
        Ok(db) => db,
        Err(e) => return e,
    };
    if dst == ctx.db {
        return error(errors::SAME_OBJECT);
    }
    if ctx.slot(&args[1]).is_none() {
        return int(0);
    }
    if ctx.slot_in(dst, &args[1]).is_some() {
        return int(0);
    }
    let slot = ctx.remove(ctx.db, &args[1]).expect("checked above");
    ctx.put_in(dst, args[1].clone(), slot.value, slot.expire_at);
    int(1)
}

/// `[cursor, [items…]]`, the reply of every SCAN-family command.
pub fn scan_reply(cursor: u64, items: Vec<Frame>) -> Frame {
    array(vec![bulk(Bytes::from(cursor.to_string())), array(items)])
}

/// HSCAN/SSCAN/ZSCAN's opening, checked in Redis's order (the cursor, the
/// key's type, then the options): the collection, the cursor and the
/// options, or the reply to give instead (an error, or a missing key's
/// empty page).
pub fn scan_collection<'c, T: Collection>(
    ctx: &'c mut Ctx<'_>,
    args: &[Bytes],
) -> Result<(&'c T, u64, ScanOptions), Frame> {
    let Some(cursor) = parse_cursor(&args[2]) else {
        return Err(error(errors::INVALID_CURSOR));
    };
    let Some(value) = ctx.collection::<T>(&args[1])? else {
        return Err(scan_reply(0, vec![]));
    };
    let opts = scan_options(&args[3..], false)?;
    Ok((value, cursor, opts))
}

pub fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(cursor) = parse_cursor(&args[1]) else {
        return error(errors::INVALID_CURSOR);
    };
    let opts = match scan_options(&args[2..], true) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let db = ctx.db as usize;
    let (next, candidates) = {
        let (next, page) = ctx.st.dbs[db].keys.scan(cursor, opts.count);
        let keys: Vec<Bytes> = page.into_iter().map(|(k, _)| k.clone()).collect();
        (next, keys)
    };
    let mut items = Vec::with_capacity(candidates.len());
    for key in candidates {
        if opts
            .pattern
            .as_ref()
            .is_some_and(|p| !glob::matches(p, &key))
        {
            continue;
        }
        if let Some(wanted) = &opts.type_name {
            let name = ctx.st.dbs[db]
                .keys
                .get(&key)
                .map_or("none", |s| s.value.type_name());
            if !wanted.eq_ignore_ascii_case(name.as_bytes()) {
                continue;
            }
        }
        if ctx.expire_if_needed(ctx.db, &key) {
            continue;
        }
        items.push(bulk(key));
    }
    scan_reply(next, items)
}

pub fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let pattern = &args[1];
    let all = pattern.as_ref() == b"*";
    let now = ctx.now;
    let items = ctx.st.dbs[ctx.db as usize]
        .keys
        .iter()
        .filter(|(key, slot)| {
            (all || glob::matches(pattern, key)) && slot.expire_at.is_none_or(|t| now <= t)
        })
        .map(|(key, _)| bulk(key.clone()))
        .collect();
    array(items)
}

pub fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    int(ctx.st.dbs[ctx.db as usize].keys.len() as i64)
}

pub fn randomkey(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let mut rng = rand::rng();
    loop {
        let picked = ctx.st.dbs[ctx.db as usize]
            .keys
            .random(&mut rng)
            .map(|(k, _)| k.clone());
        match picked {
            None => return null(),
            Some(key) => {
                if !ctx.expire_if_needed(ctx.db, &key) {
                    return bulk(key);
                }
            }
        }
    }
}

/// FLUSHDB/FLUSHALL's optional ASYNC|SYNC (both flush at once here).
fn flush_mode(args: &[Bytes]) -> Result<(), Frame> {
    match args {
        [_] => Ok(()),
        [_, mode] if mode.eq_ignore_ascii_case(b"ASYNC") || mode.eq_ignore_ascii_case(b"SYNC") => {
            Ok(())
        }
        _ => Err(error(errors::SYNTAX)),
    }
}

pub fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if let Err(e) = flush_mode(args) {
        return e;
    }
    ctx.flush(ctx.db);
    ok()
}

pub fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if let Err(e) = flush_mode(args) {
        return e;
    }
    for db in 0..ctx.dbs() {
        ctx.flush(db);
    }
    ok()
}

pub fn ping(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match args {
        [_] => simple("PONG"),
        [_, message] => bulk(message.clone()),
        _ => super::commands::arity_error(&args[0]),
    }
}

pub fn echo(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    bulk(args[1].clone())
}

pub fn time(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    array(vec![
        bulk(Bytes::from(now.as_secs().to_string())),
        bulk(Bytes::from(now.subsec_micros().to_string())),
    ])
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::tests::Harness;

    #[tokio::test]
    async fn expire_family_and_ttl() {
        let h = Harness::new();
        h.is("EXPIRE missing 10", ":0").await;
        h.is("SET k v", "+OK").await;
        h.is("EXPIRE k 100 XX", ":0").await;
        h.is("EXPIRE k 100 NX", ":1").await;
        h.is("EXPIRE k 50 GT", ":0").await;
        h.is("EXPIRE k 200 GT", ":1").await;
        h.is("TTL k", ":200").await;
        h.is(
            "EXPIRE k 10 NX GT",
            "-ERR NX and XX, GT or LT options at the same time are not compatible",
        )
        .await;
        h.is("EXPIRE k 10 foo", "-ERR Unsupported option foo").await;
        h.is(
            "EXPIRE k 9223372036854775807",
            "-ERR invalid expire time in 'expire' command",
        )
        .await;
        h.is("PERSIST k", ":1").await;
        h.is("PERSIST k", ":0").await;
        h.is("PEXPIREAT k 4102444800000", ":1").await;
        h.is("PEXPIRETIME k", ":4102444800000").await;
        h.is("EXPIRETIME k", ":4102444800").await;
        h.is("EXPIRE k -1", ":1").await;
        h.is("EXISTS k", ":0").await;
        h.is("TTL k", ":-2").await;
    }

    #[tokio::test]
    async fn rename_copy_move() {
        let h = Harness::new();
        h.is("RENAME a b", "-ERR no such key").await;
        h.is("SET a 1", "+OK").await;
        h.is("EXPIRE a 100", ":1").await;
        h.is("RENAME a b", "+OK").await;
        h.is("TTL b", ":100").await;
        h.is(
            "COPY b b",
            "-ERR source and destination objects are the same",
        )
        .await;
        h.is("COPY b c DB 1", ":1").await;
        h.is("COPY b c DB 16", "-ERR DB index is out of range")
            .await;
        h.is("COPY b c DB 1", ":0").await;
        h.is("COPY b c DB 1 REPLACE", ":1").await;
        h.is("MOVE b 1", ":1").await;
        h.is("EXISTS b", ":0").await;
        h.is(
            "MOVE b 0",
            "-ERR source and destination objects are the same",
        )
        .await;
        h.is("DBSIZE", ":0").await;
    }

    #[tokio::test]
    async fn scan_pages_cover_every_key() {
        let h = Harness::new();
        for i in 0..50 {
            h.run(&format!("SET key:{i} v")).await;
        }
        h.run("SADD other x").await;
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor = "0".to_string();
        loop {
            let page = h
                .run(&format!("SCAN {cursor} COUNT 7 MATCH key:* TYPE string"))
                .await;
            let (next, items) = h.scan_page(&page);
            seen.extend(items);
            if next == "0" {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen.len(), 50);
        h.is("SCAN x", "-ERR invalid cursor").await;
        h.is("SCAN 0 COUNT 0", "-ERR syntax error").await;
    }
}
