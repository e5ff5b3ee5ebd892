//! Hash commands (t_hash.c): HSET, HSETNX, HMSET, HGET, HMGET, HGETALL,
//! HKEYS, HVALS, HLEN, HEXISTS, HDEL, HSTRLEN, HINCRBY, HRANDFIELD, HSCAN.

use bytes::Bytes;

use super::Ctx;
use super::commands::{arity_error, int_arg, random_count_and_flag};
use super::keys::{scan_collection, scan_reply};
use super::value::{HashValue, Value};
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, error, int, map, null, ok};
use crate::semantics::errors;
use crate::semantics::glob;
use crate::semantics::number::parse_i64;

impl Ctx<'_> {
    pub fn hash(&mut self, key: &[u8]) -> Result<Option<&HashValue>, Frame> {
        self.collection(key)
    }

    /// The hash at `key`, created empty when absent (call `changed` after).
    pub fn hash_or_new(&mut self, key: &Bytes) -> Result<&mut HashValue, Frame> {
        self.collection_or_new(key)
    }
}

pub fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() % 2 == 1 {
        return arity_error(&args[0]);
    }
    let h = match ctx.hash_or_new(&args[1]) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let mut created = 0;
    for pair in args[2..].chunks(2) {
        if h.insert(pair[0].clone(), pair[1].clone()) {
            created += 1;
        }
    }
    ctx.changed(&args[1]);
    if args[0].eq_ignore_ascii_case(b"HMSET") {
        ok()
    } else {
        int(created)
    }
}

pub fn hmset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    hset(ctx, args)
}

pub fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let h = match ctx.hash_or_new(&args[1]) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let added = h.get(&args[2]).is_none() && h.insert(args[2].clone(), args[3].clone());
    ctx.changed(&args[1]);
    int(i64::from(added))
}

pub fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.hash(&args[1]) {
        Ok(Some(h)) => h.get(&args[2]).cloned().map_or_else(null, bulk),
        Ok(None) => null(),
        Err(e) => e,
    }
}

pub fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.hash(&args[1]) {
        Ok(h) => array(
            args[2..]
                .iter()
                .map(|f| h.and_then(|h| h.get(f)).cloned().map_or_else(null, bulk))
                .collect(),
        ),
        Err(e) => e,
    }
}

pub fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.hash(&args[1]) {
        Ok(h) => map(h.map_or_else(Vec::new, |h| {
            h.fields
                .iter()
                .map(|(f, v)| (bulk(f.clone()), bulk(v.clone())))
                .collect()
        })),
        Err(e) => e,
    }
}

pub fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.hash(&args[1]) {
        Ok(h) => array(h.map_or_else(Vec::new, |h| h.fields.keys().cloned().map(bulk).collect())),
        Err(e) => e,
    }
}

pub fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.hash(&args[1]) {
        Ok(h) => array(h.map_or_else(Vec::new, |h| {
            h.fields.iter().map(|(_, v)| bulk(v.clone())).collect()
        })),
        Err(e) => e,
    }
}

pub fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.hash(&args[1]) {
        Ok(h) => int(h.map_or(0, |h| h.len() as i64)),
        Err(e) => e,
    }
}

pub fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.hash(&args[1]) {
        Ok(h) => int(i64::from(h.is_some_and(|h| h.get(&args[2]).is_some()))),
        Err(e) => e,
    }
}

pub fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.hash(&args[1]) {
        Ok(h) => int(h
            .and_then(|h| h.get(&args[2]))
            .map_or(0, |v| v.len() as i64)),
        Err(e) => e,
    }
}

pub fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if let Err(e) = ctx.hash(&args[1]) {
        return e;
    }
    let db = ctx.db;
    let Some(Value::Hash(h)) = ctx.slot_mut_in(db, &args[1]).map(|s| &mut s.value) else {
        return int(0);
    };
    let deleted = args[2..].iter().filter(|f| h.remove(f)).count();
    if deleted > 0 {
        ctx.changed(&args[1]);
    }
    int(deleted as i64)
}

pub fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let by = match int_arg(&args[3]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let h = match ctx.hash_or_new(&args[1]) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let current = match h.get(&args[2]) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => {
                ctx.changed(&args[1]);
                return error("ERR hash value is not an integer");
            }
        },
    };
    let Some(next) = current.checked_add(by) else {
        ctx.changed(&args[1]);
        return error(errors::OVERFLOW);
    };
    h.insert(args[2].clone(), Bytes::from(next.to_string()));
    ctx.changed(&args[1]);
    int(next)
}

pub fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() == 2 {
        return match ctx.hash(&args[1]) {
            Ok(Some(h)) => h
                .fields
                .random(&mut rand::rng())
                .map_or_else(null, |(f, _)| bulk(f.clone())),
            Ok(None) => null(),
            Err(e) => e,
        };
    }
    let (count, with_values) = match random_count_and_flag(args, b"WITHVALUES") {
        Ok(parsed) => parsed,
        Err(e) => return e,
    };
    let h = match ctx.hash(&args[1]) {
        Ok(Some(h)) => h,
        Ok(None) => return array(vec![]),
        Err(e) => return e,
    };
    array(
        h.fields
            .sample(count)
            .into_iter()
            .map(|(f, v)| {
                if with_values {
                    array(vec![bulk(f.clone()), bulk(v.clone())])
                } else {
                    bulk(f.clone())
                }
            })
            .collect(),
    )
}

pub fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (h, cursor, opts) = match scan_collection::<HashValue>(ctx, args) {
        Ok(opened) => opened,
        Err(reply) => return reply,
    };
    let (next, page): (u64, Vec<(&Bytes, &Bytes)>) = if h.compact {
        (0, h.fields.iter().collect())
    } else {
        h.fields.scan(cursor, opts.count)
    };
    let mut items = Vec::new();
    for (f, v) in page {
        if opts.pattern.as_ref().is_some_and(|p| !glob::matches(p, f)) {
            continue;
        }
        items.push(bulk(f.clone()));
        items.push(bulk(v.clone()));
    }
    scan_reply(next, items)
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::tests::Harness;

    #[tokio::test]
    async fn hash_basics() {
        let h = Harness::new();
        h.is("HSET h a 1 b 2", ":2").await;
        h.is("HSET h a 3", ":0").await;
        h.is(
            "HSET h a",
            "-ERR wrong number of arguments for 'hset' command",
        )
        .await;
        h.is("HGET h a", "$3").await;
        h.is("HMGET h a x", "[$3, _]").await;
        h.is("HSETNX h a 9", ":0").await;
        h.is("HSTRLEN h a", ":1").await;
        h.is("HINCRBY h a 2", ":5").await;
        h.is("HDEL h a b c", ":2").await;
        h.is("EXISTS h", ":0").await;
        h.is("SET s v", "+OK").await;
        h.is(
            "HGET s a",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
        )
        .await;
        h.is("HRANDFIELD nope 3", "[]").await;
        h.is("HSCAN nope 0", "[$0, []]").await;
    }
}
