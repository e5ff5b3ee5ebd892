//! Set commands (t_set.c): SADD, SREM, SISMEMBER, SMISMEMBER, SMEMBERS,
//! SCARD, SPOP, SRANDMEMBER, SMOVE, SINTER/SUNION/SDIFF and their STORE
//! forms, SINTERCARD, SSCAN.

use bytes::Bytes;
use rand::seq::IteratorRandom;

use super::Ctx;
use super::commands::{count_arg, positive_arg, random_count_arg};
use super::keys::{scan_collection, scan_reply};
use super::value::{SetValue, Value};
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, error, int, null, set_frame};
use crate::semantics::errors;
use crate::semantics::glob;

impl Ctx<'_> {
    pub fn set(&mut self, key: &[u8]) -> Result<Option<&SetValue>, Frame> {
        self.collection(key)
    }

    pub fn set_mut(&mut self, key: &[u8]) -> Result<Option<&mut SetValue>, Frame> {
        self.collection_mut(key)
    }

    /// The set at `key`, created empty when absent (call `changed` after).
    pub fn set_or_new(&mut self, key: &Bytes) -> Result<&mut SetValue, Frame> {
        self.collection_or_new(key)
    }
}

pub fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let set = match ctx.set_or_new(&args[1]) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let added = args[2..]
        .iter()
        .filter(|m| set.insert((*m).clone()))
        .count();
    ctx.changed(&args[1]);
    int(added as i64)
}

pub fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let set = match ctx.set_mut(&args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return int(0),
        Err(e) => return e,
    };
    let removed = args[2..].iter().filter(|m| set.remove(m)).count();
    if removed > 0 {
        ctx.changed(&args[1]);
    }
    int(removed as i64)
}

pub fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.set(&args[1]) {
        Ok(s) => int(i64::from(s.is_some_and(|s| s.contains(&args[2])))),
        Err(e) => e,
    }
}

pub fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.set(&args[1]) {
        Ok(s) => array(
            args[2..]
                .iter()
                .map(|m| int(i64::from(s.is_some_and(|s| s.contains(m)))))
                .collect(),
        ),
        Err(e) => e,
    }
}

pub fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.set(&args[1]) {
        Ok(s) => {
            set_frame(s.map_or_else(Vec::new, |s| s.ordered().into_iter().map(bulk).collect()))
        }
        Err(e) => e,
    }
}

pub fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.set(&args[1]) {
        Ok(s) => int(s.map_or(0, |s| s.len() as i64)),
        Err(e) => e,
    }
}

pub fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() > 3 {
        return error(errors::SYNTAX);
    }
    let count = match args.get(2).map(|c| positive_arg(c)) {
        None => None,
        Some(Ok(n)) => Some(n as usize),
        Some(Err(e)) => return e,
    };
    let empty = || {
        if count.is_some() {
            set_frame(vec![])
        } else {
            null()
        }
    };
    let set = match ctx.set_mut(&args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return empty(),
        Err(e) => return e,
    };
    if count == Some(0) {
        return set_frame(vec![]);
    }
    let mut rng = rand::rng();
    let n = count.unwrap_or(1).min(set.len());
    let picked: Vec<Bytes> = set.members.keys().cloned().choose_multiple(&mut rng, n);
    for m in &picked {
        set.remove(m);
    }
    ctx.changed(&args[1]);
    match count {
        None => picked.into_iter().next().map_or_else(null, bulk),
        Some(_) => set_frame(picked.into_iter().map(bulk).collect()),
    }
}

pub fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() > 3 {
        return error(errors::SYNTAX);
    }
    if args.len() == 2 {
        return match ctx.set(&args[1]) {
            Ok(Some(s)) => s
                .members
                .random(&mut rand::rng())
                .map_or_else(null, |(m, _)| bulk(m.clone())),
            Ok(None) => null(),
            Err(e) => e,
        };
    }
    let count = match random_count_arg(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let set = match ctx.set(&args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return array(vec![]),
        Err(e) => return e,
    };
    let picked = set.members.sample(count);
    array(picked.into_iter().map(|(m, _)| bulk(m.clone())).collect())
}

pub fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let src_exists = ctx.exists(src);
    if !src_exists {
        return int(0);
    }
    if let Err(e) = ctx.set(src) {
        return e;
    }
    if let Err(e) = ctx.set(dst) {
        return e;
    }
    if src == dst {
        let member_of = ctx
            .set(src)
            .ok()
            .flatten()
            .is_some_and(|s| s.contains(member));
        return int(i64::from(member_of));
    }
    let removed = ctx
        .set_mut(src)
        .ok()
        .flatten()
        .is_some_and(|s| s.remove(member));
    if !removed {
        return int(0);
    }
    ctx.changed(src);
    match ctx.set_or_new(dst) {
        Ok(d) => {
            d.insert(member.clone());
        }
        Err(e) => return e,
    }
    ctx.changed(dst);
    int(1)
}

/// The sets at `keys` (None for missing ones), or WRONGTYPE.
fn sets_at(ctx: &mut Ctx<'_>, keys: &[Bytes]) -> Result<Vec<Option<SetValue>>, Frame> {
    keys.iter()
        .map(|k| ctx.set(k).map(|s| s.cloned()))
        .collect()
}

fn intersection(sets: &[Option<SetValue>], limit: usize) -> Vec<Bytes> {
    if sets.iter().any(Option::is_none) {
        return Vec::new();
    }
    let mut sets: Vec<&SetValue> = sets.iter().flatten().collect();
    sets.sort_by_key(|s| s.len());
    let mut out = Vec::new();
    for m in sets[0].members.keys() {
        if sets[1..].iter().all(|s| s.contains(m)) {
            out.push(m.clone());
            if limit > 0 && out.len() >= limit {
                break;
            }
        }
    }
    out
}

fn union(sets: &[Option<SetValue>]) -> SetValue {
    let mut out = SetValue::default();
    for s in sets.iter().flatten() {
        for m in s.members.keys() {
            out.insert(m.clone());
        }
    }
    out
}

fn difference(sets: &[Option<SetValue>]) -> SetValue {
    let mut out = SetValue::default();
    if let Some(Some(first)) = sets.first() {
        for m in first.members.keys() {
            if !sets[1..].iter().flatten().any(|s| s.contains(m)) {
                out.insert(m.clone());
            }
        }
    }
    out
}

fn set_of(members: Vec<Bytes>) -> SetValue {
    let mut out = SetValue::default();
    for m in members {
        out.insert(m);
    }
    out
}

/// Stores `result` at `dst` (deleting `dst` when empty); the reply.
fn store(ctx: &mut Ctx<'_>, dst: &Bytes, result: SetValue) -> Frame {
    let n = result.len();
    if n == 0 {
        ctx.expire_if_needed(ctx.db, dst);
        ctx.remove(ctx.db, dst);
    } else {
        ctx.put(dst.clone(), Value::Set(result), None);
    }
    int(n as i64)
}

fn reply(result: &SetValue) -> Frame {
    set_frame(result.ordered().into_iter().map(bulk).collect())
}

pub fn sinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match sets_at(ctx, &args[1..]) {
        Ok(sets) => reply(&set_of(intersection(&sets, 0))),
        Err(e) => e,
    }
}

pub fn sinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match sets_at(ctx, &args[2..]) {
        Ok(sets) => store(ctx, &args[1], set_of(intersection(&sets, 0))),
        Err(e) => e,
    }
}

pub fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let numkeys = match count_arg(&args[1], "numkeys should be greater than 0") {
        Ok(n) => n as usize,
        Err(e) => return e,
    };
    if numkeys > args.len() - 2 {
        return error("ERR Number of keys can't be greater than number of args");
    }
    let mut limit = 0;
    let mut j = 2 + numkeys;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"LIMIT") && j + 1 < args.len() {
            j += 1;
            limit = match crate::semantics::number::parse_i64(&args[j]) {
                Some(n) if n >= 0 => n as usize,
                _ => return error("ERR LIMIT can't be negative"),
            };
        } else {
            return error(errors::SYNTAX);
        }
        j += 1;
    }
    match sets_at(ctx, &args[2..2 + numkeys]) {
        Ok(sets) => int(intersection(&sets, limit).len() as i64),
        Err(e) => e,
    }
}

pub fn sunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match sets_at(ctx, &args[1..]) {
        Ok(sets) => reply(&union(&sets)),
        Err(e) => e,
    }
}

pub fn sunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match sets_at(ctx, &args[2..]) {
        Ok(sets) => store(ctx, &args[1], union(&sets)),
        Err(e) => e,
    }
}

pub fn sdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match sets_at(ctx, &args[1..]) {
        Ok(sets) => reply(&difference(&sets)),
        Err(e) => e,
    }
}

pub fn sdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match sets_at(ctx, &args[2..]) {
        Ok(sets) => store(ctx, &args[1], difference(&sets)),
        Err(e) => e,
    }
}

pub fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (set, cursor, opts) = match scan_collection::<SetValue>(ctx, args) {
        Ok(opened) => opened,
        Err(reply) => return reply,
    };
    let (next, page): (u64, Vec<Bytes>) = if set.intset {
        (0, set.ordered())
    } else {
        let (next, page) = set.members.scan(cursor, opts.count);
        (next, page.into_iter().map(|(m, _)| m.clone()).collect())
    };
    let items = page
        .into_iter()
        .filter(|m| opts.pattern.as_ref().is_none_or(|p| glob::matches(p, m)))
        .map(bulk)
        .collect();
    scan_reply(next, items)
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::tests::Harness;

    #[tokio::test]
    async fn set_algebra() {
        let h = Harness::new();
        h.is("SADD a 3 1 2", ":3").await;
        h.is("SADD b 2 3 4", ":3").await;
        h.is("SMEMBERS a", "~[$1, $2, $3]").await;
        h.is("SINTER a b", "~[$2, $3]").await;
        h.is("SINTERCARD 2 a b LIMIT 1", ":1").await;
        h.is("SINTERCARD 0 a", "-ERR numkeys should be greater than 0")
            .await;
        h.is("SDIFFSTORE d a b", ":1").await;
        h.is("SMEMBERS d", "~[$1]").await;
        h.is("SINTERSTORE d a missing", ":0").await;
        h.is("EXISTS d", ":0").await;
        h.is("SMOVE a b 1", ":1").await;
        h.is("SCARD b", ":4").await;
        h.is("SPOP nope 2", "~[]").await;
        h.is("SPOP nope", "_").await;
        h.is("SPOP a 10", "~[$2, $3]").await;
        h.is("EXISTS a", ":0").await;
    }
}
