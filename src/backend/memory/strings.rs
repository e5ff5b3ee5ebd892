//! String commands (t_string.c): GET, SET and its options, SETNX, SETEX,
//! PSETEX, GETSET, GETDEL, GETEX, MGET, MSET, MSETNX, and the ones that are
//! cheap on bytes: STRLEN, APPEND, GETRANGE, SETRANGE and the integer INCR
//! family (sealcache emulates those on plaintext; here they act on whatever
//! bytes are stored, as Redis would).

use bytes::{Bytes, BytesMut};

use super::Ctx;
use super::commands::{arity_error, int_arg};
use super::value::Value;
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, error, int, null, ok};
use crate::semantics::errors;
use crate::semantics::expiry::{SetCondition, StringOptions, TtlChange};
use crate::semantics::number::parse_i64;
use crate::semantics::range::string_range;

/// Redis's proto-max-bulk-len default: the longest string SETRANGE/APPEND build.
const MAX_STRING: usize = 512 * 1024 * 1024;

impl Ctx<'_> {
    /// The string at `key`: `Ok(None)` when absent, WRONGTYPE for another type.
    pub fn string(&mut self, key: &[u8]) -> Result<Option<Bytes>, Frame> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(error(errors::WRONGTYPE)),
        }
    }
}

pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.string(&args[1]) {
        Ok(Some(s)) => {
            ctx.touch_read(&args[1]);
            bulk(s)
        }
        Ok(None) => null(),
        Err(e) => e,
    }
}

pub fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let opts = match StringOptions::parse_set(&args[3..]) {
        Ok(o) => o,
        Err(msg) => return error(msg),
    };
    set_generic(ctx, &args[1], &args[2], &opts, ok(), null(), "set")
}

fn set_generic(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    value: &Bytes,
    opts: &StringOptions,
    ok_reply: Frame,
    abort_reply: Frame,
    command: &str,
) -> Frame {
    let deadline = match opts.ttl.deadline(ctx.now, command) {
        Ok(d) => d,
        Err(msg) => return error(msg),
    };
    let previous = if opts.get {
        match ctx.string(key) {
            Ok(p) => Some(p),
            Err(e) => return e,
        }
    } else {
        None
    };
    let found = ctx.exists(key);
    let blocked = match opts.condition {
        SetCondition::Always => false,
        SetCondition::IfAbsent => found,
        SetCondition::IfPresent => !found,
    };
    let get_reply = || previous.clone().flatten().map_or_else(null, bulk);
    if blocked {
        return if opts.get { get_reply() } else { abort_reply };
    }
    let expire_at = match opts.ttl {
        TtlChange::Keep => ctx.slot(key).and_then(|s| s.expire_at),
        _ => deadline,
    };
    ctx.put(key.clone(), Value::Str(value.clone()), expire_at);
    if opts.get { get_reply() } else { ok_reply }
}

pub fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let opts = StringOptions {
        condition: SetCondition::IfAbsent,
        ..StringOptions::default()
    };
    set_generic(ctx, &args[1], &args[2], &opts, int(1), int(0), "setnx")
}

pub fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    setex_generic(ctx, args, false)
}

pub fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    setex_generic(ctx, args, true)
}

fn setex_generic(ctx: &mut Ctx<'_>, args: &[Bytes], millis: bool) -> Frame {
    let opts = StringOptions {
        ttl: TtlChange::In {
            amount: parse_i64(&args[2]),
            millis,
        },
        ..StringOptions::default()
    };
    let name = if millis { "psetex" } else { "setex" };
    set_generic(ctx, &args[1], &args[3], &opts, ok(), null(), name)
}

pub fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let previous = match ctx.string(&args[1]) {
        Ok(p) => p,
        Err(e) => return e,
    };
    ctx.put(args[1].clone(), Value::Str(args[2].clone()), None);
    previous.map_or_else(null, bulk)
}

pub fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.string(&args[1]) {
        Ok(Some(s)) => {
            ctx.remove(ctx.db, &args[1]);
            bulk(s)
        }
        Ok(None) => null(),
        Err(e) => e,
    }
}

pub fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let opts = match StringOptions::parse_getex(&args[2..]) {
        Ok(o) => o,
        Err(msg) => return error(msg),
    };
    let value = match ctx.string(&args[1]) {
        Ok(Some(v)) => v,
        Ok(None) => return null(),
        Err(e) => return e,
    };
    let deadline = match opts.ttl.deadline(ctx.now, "getex") {
        Ok(d) => d,
        Err(msg) => return error(msg),
    };
    match opts.ttl {
        TtlChange::At { .. } if deadline.is_some_and(|t| t <= ctx.now) => {
            ctx.remove(ctx.db, &args[1]);
        }
        TtlChange::In { .. } | TtlChange::At { .. } => {
            ctx.set_expire_in(ctx.db, &args[1], deadline)
        }
        TtlChange::Persist => {
            if ctx.slot(&args[1]).is_some_and(|s| s.expire_at.is_some()) {
                ctx.set_expire_in(ctx.db, &args[1], None);
            }
        }
        TtlChange::Clear | TtlChange::Keep => ctx.touch_read(&args[1]),
    }
    bulk(value)
}

pub fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let items = args[1..]
        .iter()
        .map(|key| match ctx.value(key) {
            Some(Value::Str(s)) => bulk(s.clone()),
            _ => null(),
        })
        .collect();
    array(items)
}

pub fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len().is_multiple_of(2) {
        return arity_error(&args[0]);
    }
    for pair in args[1..].chunks(2) {
        ctx.put(pair[0].clone(), Value::Str(pair[1].clone()), None);
    }
    ok()
}

pub fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len().is_multiple_of(2) {
        return arity_error(&args[0]);
    }
    if args[1..].chunks(2).any(|pair| ctx.exists(&pair[0])) {
        return int(0);
    }
    for pair in args[1..].chunks(2) {
        ctx.put(pair[0].clone(), Value::Str(pair[1].clone()), None);
    }
    int(1)
}

pub fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.string(&args[1]) {
        Ok(s) => int(s.map_or(0, |s| s.len() as i64)),
        Err(e) => e,
    }
}

/// Replaces a string in place, keeping its deadline (APPEND, SETRANGE, INCR).
fn overwrite(ctx: &mut Ctx<'_>, key: &Bytes, value: Bytes) {
    let expire_at = ctx.slot(key).and_then(|s| s.expire_at);
    ctx.put(key.clone(), Value::Str(value), expire_at);
}

pub fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let current = match ctx.string(&args[1]) {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return e,
    };
    if current.len() + args[2].len() > MAX_STRING {
        return error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let mut joined = BytesMut::with_capacity(current.len() + args[2].len());
    joined.extend_from_slice(&current);
    joined.extend_from_slice(&args[2]);
    let len = joined.len();
    overwrite(ctx, &args[1], joined.freeze());
    int(len as i64)
}

pub fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let start = match int_arg(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let end = match int_arg(&args[3]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    match ctx.string(&args[1]) {
        Ok(Some(s)) => match string_range(s.len(), start, end) {
            Some((from, to)) => bulk(s.slice(from..=to)),
            None => bulk(Bytes::new()),
        },
        Ok(None) => bulk(Bytes::new()),
        Err(e) => e,
    }
}

pub fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let offset = match int_arg(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if offset < 0 {
        return error("ERR offset is out of range");
    }
    let offset = offset as usize;
    let piece = &args[3];
    let current = match ctx.string(&args[1]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    if piece.is_empty() {
        return int(current.map_or(0, |c| c.len() as i64));
    }
    if offset.saturating_add(piece.len()) > MAX_STRING {
        return error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let current = current.unwrap_or_default();
    let mut out = BytesMut::from(&current[..]);
    if out.len() < offset + piece.len() {
        out.resize(offset + piece.len(), 0);
    }
    out[offset..offset + piece.len()].copy_from_slice(piece);
    let len = out.len();
    overwrite(ctx, &args[1], out.freeze());
    int(len as i64)
}

fn incr_generic(ctx: &mut Ctx<'_>, key: &Bytes, by: i64) -> Frame {
    let current = match ctx.string(key) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let value = match current {
        None => 0,
        Some(s) => match parse_i64(&s) {
            Some(v) => v,
            None => return error(errors::NOT_INTEGER),
        },
    };
    let Some(next) = value.checked_add(by) else {
        return error(errors::OVERFLOW);
    };
    overwrite(ctx, key, Bytes::from(next.to_string()));
    int(next)
}

pub fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    incr_generic(ctx, &args[1], 1)
}

pub fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    incr_generic(ctx, &args[1], -1)
}

pub fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match int_arg(&args[2]) {
        Ok(by) => incr_generic(ctx, &args[1], by),
        Err(e) => e,
    }
}

pub fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match int_arg(&args[2]) {
        Ok(i64::MIN) => error("ERR decrement would overflow"),
        Ok(by) => incr_generic(ctx, &args[1], -by),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::tests::{Harness, b};

    #[tokio::test]
    async fn set_options_and_ttl() {
        let h = Harness::new();
        h.is("SET k v NX", "+OK").await;
        h.is("SET k w NX", "_").await;
        h.is("SET k w XX GET", "$v").await;
        h.is("SET k x NX XX", "-ERR syntax error").await;
        h.is("SET k x EX 0", "-ERR invalid expire time in 'set' command")
            .await;
        h.is("SET k x EX 10 KEEPTTL", "-ERR syntax error").await;
        h.is("SET k x EX 100", "+OK").await;
        h.is("TTL k", ":100").await;
        h.is("SET k y KEEPTTL", "+OK").await;
        h.is("TTL k", ":100").await;
        h.is("SET k z", "+OK").await;
        h.is("TTL k", ":-1").await;
        h.is(
            "SETEX k -1 v",
            "-ERR invalid expire time in 'setex' command",
        )
        .await;
        h.is("GETEX k PX 5000", "$z").await;
        h.is("GETEX k PERSIST", "$z").await;
        h.is("TTL k", ":-1").await;
        h.is("GETEX k EXAT 1", "$z").await;
        h.is("EXISTS k", ":0").await;
        h.is("SET n 9223372036854775807", "+OK").await;
        h.is("INCR n", "-ERR increment or decrement would overflow")
            .await;
        h.is(
            "DECRBY n -9223372036854775808",
            "-ERR decrement would overflow",
        )
        .await;
        h.is(
            "MSET a",
            "-ERR wrong number of arguments for 'mset' command",
        )
        .await;
        h.is("SETRANGE r 3 ab", ":5").await;
        assert_eq!(h.run("GET r").await, h.bulk(b("\0\0\0ab")));
        h.is("GETRANGE r -2 -1", "$ab").await;
    }
}
