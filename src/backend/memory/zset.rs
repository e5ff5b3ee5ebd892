//! Sorted-set commands (t_zset.c): ZADD and its options, ZINCRBY, ZSCORE,
//! ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT, the ZRANGE family (rank, BYSCORE,
//! BYLEX, REV, LIMIT, WITHSCORES) and ZRANGESTORE, ZRANK/ZREVRANK, ZREM,
//! ZREMRANGEBY*, ZPOPMIN/ZPOPMAX, ZMPOP, ZUNION/ZINTER/ZDIFF and their
//! STORE forms, ZINTERCARD, ZRANDMEMBER, ZSCAN. Members order by their
//! bytes, as in Redis (sealcache's members are deterministic envelopes).

use bytes::Bytes;

use super::Ctx;
use super::commands::{int_arg, mpop_args, positive_arg, random_count_and_flag};
use super::keys::{scan_collection, scan_reply};
use super::value::{Value, ZSetValue};
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, double, error, int, null};
use crate::semantics::errors;
use crate::semantics::glob;
use crate::semantics::number::{format_double, parse_f64};
use crate::semantics::range::{LexRange, ScoreRange, index_range};

const NAN_SCORE: &str = "ERR resulting score is not a number (NaN)";

impl Ctx<'_> {
    pub fn zset(&mut self, key: &[u8]) -> Result<Option<&ZSetValue>, Frame> {
        self.collection(key)
    }

    pub fn zset_mut(&mut self, key: &[u8]) -> Result<Option<&mut ZSetValue>, Frame> {
        self.collection_mut(key)
    }

    /// The sorted set at `key`, created empty when absent (call `changed` after).
    pub fn zset_or_new(&mut self, key: &Bytes) -> Result<&mut ZSetValue, Frame> {
        self.collection_or_new(key)
    }
}

fn pair(member: Bytes, score: f64) -> Frame {
    array(vec![bulk(member), double(score)])
}

/// Members, or `[member, score]` pairs (RESP3's shape; the proxy flattens
/// them for RESP2 clients, as Redis does).
fn members_reply(items: Vec<(Bytes, f64)>, with_scores: bool) -> Frame {
    array(
        items
            .into_iter()
            .map(|(m, s)| if with_scores { pair(m, s) } else { bulk(m) })
            .collect(),
    )
}

pub fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    zadd_generic(ctx, args, false)
}

pub fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    zadd_generic(ctx, args, true)
}

fn zadd_generic(ctx: &mut Ctx<'_>, args: &[Bytes], zincrby: bool) -> Frame {
    let (mut nx, mut xx, mut ch, mut incr, mut gt, mut lt) =
        (false, false, false, zincrby, false, false);
    let mut i = 2;
    while i < args.len() {
        let opt = &args[i];
        let flag = if opt.eq_ignore_ascii_case(b"NX") {
            &mut nx
        } else if opt.eq_ignore_ascii_case(b"XX") {
            &mut xx
        } else if opt.eq_ignore_ascii_case(b"CH") {
            &mut ch
        } else if opt.eq_ignore_ascii_case(b"INCR") {
            &mut incr
        } else if opt.eq_ignore_ascii_case(b"GT") {
            &mut gt
        } else if opt.eq_ignore_ascii_case(b"LT") {
            &mut lt
        } else {
            break;
        };
        *flag = true;
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() || rest.len() % 2 == 1 {
        return error(errors::SYNTAX);
    }
    if nx && xx {
        return error("ERR XX and NX options at the same time are not compatible");
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && rest.len() > 2 {
        return error("ERR INCR option supports a single increment-element pair");
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks(2) {
        match parse_f64(&p[0]) {
            Some(score) => pairs.push((score, p[1].clone())),
            None => return error(errors::NOT_FLOAT),
        }
    }
    let key = &args[1];
    if let Err(e) = ctx.zset(key) {
        return e;
    }
    if !ctx.exists(key) && xx {
        return if incr { null() } else { int(0) };
    }
    let z = ctx.zset_or_new(key).expect("type checked");
    let (mut added, mut updated, mut processed) = (0, 0, 0);
    let mut last = 0.0;
    for (score, member) in pairs {
        match z.score(&member) {
            Some(current) => {
                if nx {
                    continue;
                }
                let new = if incr { current + score } else { score };
                if new.is_nan() {
                    ctx.changed(key);
                    return error(NAN_SCORE);
                }
                if (lt && new >= current) || (gt && new <= current) {
                    continue;
                }
                last = new;
                processed += 1;
                if new != current {
                    z.insert(member, new);
                    updated += 1;
                }
            }
            None => {
                if xx {
                    continue;
                }
                if score.is_nan() {
                    ctx.changed(key);
                    return error(NAN_SCORE);
                }
                z.insert(member, score);
                last = score;
                added += 1;
                processed += 1;
            }
        }
    }
    if added + updated > 0 {
        ctx.changed(key);
    } else {
        // Nothing changed: drop the set if this call created it empty.
        let db = ctx.db;
        if ctx
            .slot_in(db, key)
            .is_some_and(|s| s.value.is_empty_collection())
        {
            ctx.remove(db, key);
        }
    }
    if incr {
        if processed > 0 { double(last) } else { null() }
    } else {
        int(if ch { added + updated } else { added })
    }
}

pub fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let z = match ctx.zset_mut(&args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return int(0),
        Err(e) => return e,
    };
    let removed = args[2..].iter().filter(|m| z.remove(m).is_some()).count();
    if removed > 0 {
        ctx.changed(&args[1]);
    }
    int(removed as i64)
}

pub fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.zset(&args[1]) {
        Ok(z) => int(z.map_or(0, |z| z.len() as i64)),
        Err(e) => e,
    }
}

pub fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.zset(&args[1]) {
        Ok(z) => z.and_then(|z| z.score(&args[2])).map_or_else(null, double),
        Err(e) => e,
    }
}

pub fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.zset(&args[1]) {
        Ok(z) => array(
            args[2..]
                .iter()
                .map(|m| z.and_then(|z| z.score(m)).map_or_else(null, double))
                .collect(),
        ),
        Err(e) => e,
    }
}

fn rank_generic(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> Frame {
    match ctx.zset(&args[1]) {
        Ok(Some(z)) => match z.score(&args[2]) {
            Some(score) => {
                let rank = z.order.rank(score, &args[2]);
                int(if rev { z.len() - 1 - rank } else { rank } as i64)
            }
            None => null(),
        },
        Ok(None) => null(),
        Err(e) => e,
    }
}

pub fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    rank_generic(ctx, args, false)
}

pub fn zrevrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    rank_generic(ctx, args, true)
}

fn score_range_arg(min: &[u8], max: &[u8]) -> Result<ScoreRange, Frame> {
    ScoreRange::parse(min, max).ok_or_else(|| error(errors::MIN_MAX_NOT_FLOAT))
}

fn lex_range_arg(min: &[u8], max: &[u8]) -> Result<LexRange, Frame> {
    LexRange::parse(min, max).ok_or_else(|| error(errors::MIN_MAX_NOT_STRING))
}

/// Indices `[from, to)` of the elements within a score range.
fn score_span(z: &ZSetValue, range: &ScoreRange) -> (usize, usize) {
    let from = z.order.partition_point(|s, _| !range.above_min(s));
    let to = z.order.partition_point(|s, _| range.below_max(s));
    (from, to.max(from))
}

fn lex_span(z: &ZSetValue, range: &LexRange) -> (usize, usize) {
    let from = z.order.partition_point(|_, m| !range.above_min(m));
    let to = z.order.partition_point(|_, m| range.below_max(m));
    (from, to.max(from))
}

pub fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let range = match score_range_arg(&args[2], &args[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match ctx.zset(&args[1]) {
        Ok(Some(z)) => {
            let (from, to) = score_span(z, &range);
            int((to - from) as i64)
        }
        Ok(None) => int(0),
        Err(e) => e,
    }
}

pub fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let range = match lex_range_arg(&args[2], &args[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match ctx.zset(&args[1]) {
        Ok(Some(z)) => {
            let (from, to) = lex_span(z, &range);
            int((to - from) as i64)
        }
        Ok(None) => int(0),
        Err(e) => e,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

/// What a ZRANGE-family call selects.
enum Selection {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

struct RangeQuery {
    selection: Selection,
    rev: bool,
    with_scores: bool,
    offset: i64,
    limit: i64,
}

/// `zrangeGenericCommand`'s parsing: `key min max [options]` from `args[at]`.
fn parse_range(
    args: &[Bytes],
    at: usize,
    store: bool,
    mut kind: RangeType,
    rev: Option<bool>,
) -> Result<RangeQuery, Frame> {
    let mut reverse = rev;
    let (mut with_scores, mut offset, mut limit) = (false, 0, -1);
    let mut j = at + 3;
    while j < args.len() {
        let opt = &args[j];
        let left = args.len() - j - 1;
        if !store && opt.eq_ignore_ascii_case(b"WITHSCORES") {
            with_scores = true;
        } else if opt.eq_ignore_ascii_case(b"LIMIT") && left >= 2 {
            offset = int_arg(&args[j + 1])?;
            limit = int_arg(&args[j + 2])?;
            j += 2;
        } else if rev.is_none() && opt.eq_ignore_ascii_case(b"REV") {
            reverse = Some(true);
        } else if kind == RangeType::Auto && opt.eq_ignore_ascii_case(b"BYLEX") {
            kind = RangeType::Lex;
        } else if kind == RangeType::Auto && opt.eq_ignore_ascii_case(b"BYSCORE") {
            kind = RangeType::Score;
        } else {
            return Err(error(errors::SYNTAX));
        }
        j += 1;
    }
    let rev = reverse.unwrap_or(false);
    if kind == RangeType::Auto {
        kind = RangeType::Rank;
    }
    if limit != -1 && kind == RangeType::Rank {
        return Err(error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && kind == RangeType::Lex {
        return Err(error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut min, mut max) = (&args[at + 1], &args[at + 2]);
    if rev && kind != RangeType::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let selection = match kind {
        RangeType::Score => Selection::Score(score_range_arg(min, max)?),
        RangeType::Lex => Selection::Lex(lex_range_arg(min, max)?),
        _ => Selection::Rank(int_arg(min)?, int_arg(max)?),
    };
    Ok(RangeQuery {
        selection,
        rev,
        with_scores,
        offset,
        limit,
    })
}

/// Applies Redis's LIMIT to elements in order: a negative offset selects
/// nothing, a negative count everything after the offset.
fn limited<'a>(
    items: impl Iterator<Item = (f64, &'a Bytes)>,
    offset: i64,
    limit: i64,
) -> Vec<(Bytes, f64)> {
    if offset < 0 {
        return Vec::new();
    }
    let take = if limit < 0 {
        usize::MAX
    } else {
        limit as usize
    };
    items
        .skip(offset as usize)
        .take(take)
        .map(|(s, m)| (m.clone(), s))
        .collect()
}

fn select(z: &ZSetValue, q: &RangeQuery) -> Vec<(Bytes, f64)> {
    let len = z.len();
    match &q.selection {
        Selection::Rank(start, end) => {
            let Some((from, to)) = index_range(len, *start, *end) else {
                return Vec::new();
            };
            let n = to - from + 1;
            if q.rev {
                z.order
                    .iter_rev_from(len - 1 - from)
                    .take(n)
                    .map(|(s, m)| (m.clone(), s))
                    .collect()
            } else {
                z.order
                    .iter_from(from)
                    .take(n)
                    .map(|(s, m)| (m.clone(), s))
                    .collect()
            }
        }
        Selection::Score(range) => select_span(z, score_span(z, range), q),
        Selection::Lex(range) => select_span(z, lex_span(z, range), q),
    }
}

/// The members in ranks `from..to` (a BYSCORE or BYLEX span), in the
/// query's direction, after its LIMIT.
fn select_span(z: &ZSetValue, (from, to): (usize, usize), q: &RangeQuery) -> Vec<(Bytes, f64)> {
    if from == to {
        return Vec::new();
    }
    if q.rev {
        limited(
            z.order.iter_rev_from(to - 1).take(to - from),
            q.offset,
            q.limit,
        )
    } else {
        limited(z.order.iter_from(from).take(to - from), q.offset, q.limit)
    }
}

fn range_generic(ctx: &mut Ctx<'_>, args: &[Bytes], kind: RangeType, rev: Option<bool>) -> Frame {
    let q = match parse_range(args, 1, false, kind, rev) {
        Ok(q) => q,
        Err(e) => return e,
    };
    match ctx.zset(&args[1]) {
        Ok(Some(z)) => members_reply(select(z, &q), q.with_scores),
        Ok(None) => array(vec![]),
        Err(e) => e,
    }
}

pub fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_generic(ctx, args, RangeType::Auto, None)
}

pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_generic(ctx, args, RangeType::Score, Some(false))
}

pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_generic(ctx, args, RangeType::Score, Some(true))
}

pub fn zrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_generic(ctx, args, RangeType::Rank, Some(true))
}

pub fn zrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_generic(ctx, args, RangeType::Lex, Some(false))
}

pub fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_generic(ctx, args, RangeType::Lex, Some(true))
}

/// Stores `items` as the sorted set `dst` (deleting it when empty).
fn store(ctx: &mut Ctx<'_>, dst: &Bytes, items: Vec<(Bytes, f64)>) -> Frame {
    let n = items.len();
    if n == 0 {
        ctx.expire_if_needed(ctx.db, dst);
        ctx.remove(ctx.db, dst);
        return int(0);
    }
    let mut z = ZSetValue::default();
    for (m, s) in items {
        z.insert(m, s);
    }
    ctx.put(dst.clone(), Value::ZSet(z), None);
    int(n as i64)
}

pub fn zrangestore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let q = match parse_range(args, 2, true, RangeType::Auto, None) {
        Ok(q) => q,
        Err(e) => return e,
    };
    let items = match ctx.zset(&args[2]) {
        Ok(Some(z)) => select(z, &q),
        Ok(None) => Vec::new(),
        Err(e) => return e,
    };
    store(ctx, &args[1], items)
}

fn remrange_generic(ctx: &mut Ctx<'_>, args: &[Bytes], kind: RangeType) -> Frame {
    let selection = match kind {
        RangeType::Rank => match (int_arg(&args[2]), int_arg(&args[3])) {
            (Ok(s), Ok(e)) => Selection::Rank(s, e),
            (Err(e), _) | (_, Err(e)) => return e,
        },
        RangeType::Score => match score_range_arg(&args[2], &args[3]) {
            Ok(r) => Selection::Score(r),
            Err(e) => return e,
        },
        _ => match lex_range_arg(&args[2], &args[3]) {
            Ok(r) => Selection::Lex(r),
            Err(e) => return e,
        },
    };
    let q = RangeQuery {
        selection,
        rev: false,
        with_scores: false,
        offset: 0,
        limit: -1,
    };
    let z = match ctx.zset_mut(&args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return int(0),
        Err(e) => return e,
    };
    let doomed = select(z, &q);
    for (m, _) in &doomed {
        z.remove(m);
    }
    if !doomed.is_empty() {
        ctx.changed(&args[1]);
    }
    int(doomed.len() as i64)
}

pub fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    remrange_generic(ctx, args, RangeType::Rank)
}

pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    remrange_generic(ctx, args, RangeType::Score)
}

pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    remrange_generic(ctx, args, RangeType::Lex)
}

/// Removes up to `count` lowest (or highest) members.
pub fn pop(z: &mut ZSetValue, max: bool, count: usize) -> Vec<(Bytes, f64)> {
    let picked: Vec<(Bytes, f64)> = if max {
        z.order
            .iter()
            .rev()
            .take(count)
            .map(|(s, m)| (m.clone(), s))
            .collect()
    } else {
        z.order
            .iter()
            .take(count)
            .map(|(s, m)| (m.clone(), s))
            .collect()
    };
    for (m, _) in &picked {
        z.remove(m);
    }
    picked
}

fn zpop_generic(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> Frame {
    if args.len() > 3 {
        return error(errors::SYNTAX);
    }
    let count = match args.get(2).map(|c| positive_arg(c)) {
        None => None,
        Some(Ok(n)) => Some(n as usize),
        Some(Err(e)) => return e,
    };
    let z = match ctx.zset_mut(&args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return array(vec![]),
        Err(e) => return e,
    };
    if count == Some(0) {
        return array(vec![]);
    }
    let popped = pop(z, max, count.unwrap_or(1));
    ctx.changed(&args[1]);
    match count {
        // One pop: a flat [member, score].
        None => array(
            popped
                .into_iter()
                .flat_map(|(m, s)| [bulk(m), double(s)])
                .collect(),
        ),
        Some(_) => members_reply(popped, true),
    }
}

pub fn zpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    zpop_generic(ctx, args, false)
}

pub fn zpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    zpop_generic(ctx, args, true)
}

/// ZMPOP/BZMPOP's `numkeys key… MIN|MAX [COUNT n]` from `args[at]`:
/// (keys, max, count).
pub fn parse_mpop(args: &[Bytes], at: usize) -> Result<(Vec<Bytes>, bool, usize), Frame> {
    mpop_args(args, at, max_arg)
}

/// MIN or MAX (true for MAX).
fn max_arg(arg: &[u8]) -> Result<bool, Frame> {
    if arg.eq_ignore_ascii_case(b"MIN") {
        Ok(false)
    } else if arg.eq_ignore_ascii_case(b"MAX") {
        Ok(true)
    } else {
        Err(error(errors::SYNTAX))
    }
}

/// Pops from the first non-empty sorted set among `keys`: `[key, [[m, s]…]]`,
/// or `None` when all are empty.
pub fn mpop_from(
    ctx: &mut Ctx<'_>,
    keys: &[Bytes],
    max: bool,
    count: usize,
) -> Result<Option<Frame>, Frame> {
    for key in keys {
        if let Some(z) = ctx.zset_mut(key)? {
            let popped = pop(z, max, count);
            ctx.changed(key);
            return Ok(Some(array(vec![
                bulk(key.clone()),
                members_reply(popped, true),
            ])));
        }
    }
    Ok(None)
}

pub fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (keys, max, count) = match parse_mpop(args, 1) {
        Ok(p) => p,
        Err(e) => return e,
    };
    match mpop_from(ctx, &keys, max, count) {
        Ok(Some(frame)) => frame,
        Ok(None) => null(),
        Err(e) => e,
    }
}

pub fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() == 2 {
        return match ctx.zset(&args[1]) {
            Ok(Some(z)) => z
                .scores
                .random(&mut rand::rng())
                .map_or_else(null, |(m, _)| bulk(m.clone())),
            Ok(None) => null(),
            Err(e) => e,
        };
    }
    let (count, with_scores) = match random_count_and_flag(args, b"WITHSCORES") {
        Ok(parsed) => parsed,
        Err(e) => return e,
    };
    let z = match ctx.zset(&args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return array(vec![]),
        Err(e) => return e,
    };
    let picked = z.scores.sample(count);
    members_reply(
        picked.into_iter().map(|(m, s)| (m.clone(), *s)).collect(),
        with_scores,
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(target: &mut f64, value: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += value;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if value < *target {
                *target = value;
            }
        }
        Aggregate::Max => {
            if value > *target {
                *target = value;
            }
        }
    }
}

/// One input of ZUNION/ZINTER/ZDIFF: a sorted set, or a set (scores 1).
struct Source {
    members: Vec<(Bytes, f64)>,
    lookup: std::collections::HashMap<Bytes, f64>,
    weight: f64,
}

/// `zunionInterDiffGenericCommand`: `numkeys key… [WEIGHTS…] [AGGREGATE…]
/// [WITHSCORES] [LIMIT]` from `args[at]`.
fn set_op(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    at: usize,
    dst: Option<&Bytes>,
    op: SetOp,
    card_only: bool,
) -> Frame {
    let numkeys = match int_arg(&args[at]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if numkeys < 1 {
        return error(format!(
            "ERR at least 1 input key is needed for '{}' command",
            String::from_utf8_lossy(&args[0]).to_ascii_lowercase()
        ));
    }
    if numkeys as usize > args.len() - (at + 1) {
        return error(errors::SYNTAX);
    }
    let numkeys = numkeys as usize;
    let mut sources = Vec::with_capacity(numkeys);
    for key in &args[at + 1..at + 1 + numkeys] {
        let members: Vec<(Bytes, f64)> = match ctx.value(key) {
            None => Vec::new(),
            Some(Value::ZSet(z)) => z.order.iter().map(|(s, m)| (m.clone(), s)).collect(),
            Some(Value::Set(s)) => s.members.keys().map(|m| (m.clone(), 1.0)).collect(),
            Some(_) => return error(errors::WRONGTYPE),
        };
        let lookup = members.iter().cloned().collect();
        sources.push(Source {
            members,
            lookup,
            weight: 1.0,
        });
    }
    let (mut how, mut with_scores, mut limit) = (Aggregate::Sum, false, 0usize);
    let mut j = at + 1 + numkeys;
    while j < args.len() {
        let remaining = args.len() - j;
        let opt = &args[j];
        if op != SetOp::Diff
            && !card_only
            && remaining > numkeys
            && opt.eq_ignore_ascii_case(b"WEIGHTS")
        {
            for (i, source) in sources.iter_mut().enumerate() {
                match parse_f64(&args[j + 1 + i]) {
                    Some(w) => source.weight = w,
                    None => return error("ERR weight value is not a float"),
                }
            }
            j += 1 + numkeys;
        } else if op != SetOp::Diff
            && !card_only
            && remaining >= 2
            && opt.eq_ignore_ascii_case(b"AGGREGATE")
        {
            let v = &args[j + 1];
            how = if v.eq_ignore_ascii_case(b"SUM") {
                Aggregate::Sum
            } else if v.eq_ignore_ascii_case(b"MIN") {
                Aggregate::Min
            } else if v.eq_ignore_ascii_case(b"MAX") {
                Aggregate::Max
            } else {
                return error(errors::SYNTAX);
            };
            j += 2;
        } else if dst.is_none() && !card_only && opt.eq_ignore_ascii_case(b"WITHSCORES") {
            with_scores = true;
            j += 1;
        } else if card_only && remaining >= 2 && opt.eq_ignore_ascii_case(b"LIMIT") {
            limit = match crate::semantics::number::parse_i64(&args[j + 1]) {
                Some(n) if n >= 0 => n as usize,
                _ => return error("ERR LIMIT can't be negative"),
            };
            j += 2;
        } else {
            return error(errors::SYNTAX);
        }
    }
    if op != SetOp::Diff {
        // Redis sorts its inputs by size (a stable sort); sums are taken in that order.
        sources.sort_by_key(|s| s.members.len());
    }
    let weighted = |score: f64, weight: f64| {
        let v = score * weight;
        if v.is_nan() { 0.0 } else { v }
    };
    let mut result = ZSetValue::default();
    let mut cardinality = 0usize;
    match op {
        SetOp::Inter => {
            'members: for (member, score) in &sources[0].members {
                let mut total = weighted(*score, sources[0].weight);
                for s in &sources[1..] {
                    match s.lookup.get(member) {
                        Some(v) => aggregate(&mut total, *v * s.weight, how),
                        None => continue 'members,
                    }
                }
                if card_only {
                    cardinality += 1;
                    if limit > 0 && cardinality >= limit {
                        break;
                    }
                } else {
                    result.insert(member.clone(), total);
                }
            }
        }
        SetOp::Union => {
            let mut acc: std::collections::HashMap<Bytes, f64> = std::collections::HashMap::new();
            let mut order = Vec::new();
            for s in &sources {
                for (member, score) in &s.members {
                    let v = weighted(*score, s.weight);
                    match acc.get_mut(member) {
                        Some(t) => aggregate(t, v, how),
                        None => {
                            acc.insert(member.clone(), v);
                            order.push(member.clone());
                        }
                    }
                }
            }
            for m in order {
                let s = acc[&m];
                result.insert(m, s);
            }
        }
        SetOp::Diff => {
            for (member, score) in &sources[0].members {
                if !sources[1..].iter().any(|s| s.lookup.contains_key(member)) {
                    result.insert(member.clone(), *score);
                }
            }
        }
    }
    if card_only {
        return int(cardinality as i64);
    }
    let items: Vec<(Bytes, f64)> = result.order.iter().map(|(s, m)| (m.clone(), s)).collect();
    match dst {
        Some(dst) => store(ctx, dst, items),
        None => members_reply(items, with_scores),
    }
}

pub fn zunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    set_op(ctx, args, 1, None, SetOp::Union, false)
}

pub fn zinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    set_op(ctx, args, 1, None, SetOp::Inter, false)
}

pub fn zdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    set_op(ctx, args, 1, None, SetOp::Diff, false)
}

pub fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    set_op(ctx, args, 1, None, SetOp::Inter, true)
}

pub fn zunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let dst = args[1].clone();
    set_op(ctx, args, 2, Some(&dst), SetOp::Union, false)
}

pub fn zinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let dst = args[1].clone();
    set_op(ctx, args, 2, Some(&dst), SetOp::Inter, false)
}

pub fn zdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let dst = args[1].clone();
    set_op(ctx, args, 2, Some(&dst), SetOp::Diff, false)
}

pub fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (z, cursor, opts) = match scan_collection::<ZSetValue>(ctx, args) {
        Ok(opened) => opened,
        Err(reply) => return reply,
    };
    let (next, page): (u64, Vec<(Bytes, f64)>) = if z.compact {
        (0, z.order.iter().map(|(s, m)| (m.clone(), s)).collect())
    } else {
        let (next, page) = z.scores.scan(cursor, opts.count);
        (
            next,
            page.into_iter().map(|(m, s)| (m.clone(), *s)).collect(),
        )
    };
    let mut items = Vec::new();
    for (m, s) in page {
        if opts.pattern.as_ref().is_some_and(|p| !glob::matches(p, &m)) {
            continue;
        }
        items.push(bulk(m));
        let text = if z.compact {
            crate::semantics::scan::listpack_score(s)
        } else {
            format_double(s)
        };
        items.push(bulk(Bytes::from(text)));
    }
    scan_reply(next, items)
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::tests::Harness;

    #[tokio::test]
    async fn zadd_options_and_ranges() {
        let h = Harness::new();
        h.is("ZADD z 1 a 2 b 3 c", ":3").await;
        h.is(
            "ZADD z NX XX 1 a",
            "-ERR XX and NX options at the same time are not compatible",
        )
        .await;
        h.is("ZADD z GT CH 0 a 5 b", ":1").await;
        h.is("ZADD z INCR 1.1 a", ",2.1000000000000001").await;
        h.is("ZADD z 1 a 2", "-ERR syntax error").await;
        h.is("ZADD z x a", "-ERR value is not a valid float").await;
        h.is(
            "ZRANGE z 0 -1 WITHSCORES",
            "[[$a, ,2.1000000000000001], [$c, ,3], [$b, ,5]]",
        )
        .await;
        h.is("ZRANGE z (2.1 +inf BYSCORE LIMIT 0 1", "[$c]").await;
        h.is("ZRANGE z +inf -inf BYSCORE REV", "[$b, $c, $a]").await;
        h.is("ZRANGE z 0 1 LIMIT 0 1", "-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX").await;
        h.is("ZREVRANGE z 0 0", "[$b]").await;
        h.is("ZRANK z c", ":1").await;
        h.is("ZREVRANK z c", ":1").await;
        h.is("ZCOUNT z (2 5", ":3").await;
        h.is("ZCOUNT z x 5", "-ERR min or max is not a float").await;
        h.is("ZPOPMIN z", "[$a, ,2.1000000000000001]").await;
        h.is("ZPOPMAX z 5", "[[$b, ,5], [$c, ,3]]").await;
        h.is("EXISTS z", ":0").await;
        h.is("ZADD l 0 a 0 b 0 c", ":3").await;
        h.is("ZRANGEBYLEX l [b +", "[$b, $c]").await;
        h.is("ZREVRANGEBYLEX l + (b", "[$c]").await;
        h.is("ZLEXCOUNT l - +", ":3").await;
        h.is(
            "ZUNION 2 l nope WITHSCORES",
            "[[$a, ,0], [$b, ,0], [$c, ,0]]",
        )
        .await;
        h.is(
            "ZUNIONSTORE dst 0 l",
            "-ERR at least 1 input key is needed for 'zunionstore' command",
        )
        .await;
        h.is("ZMPOP 1 l MAX COUNT 2", "[$l, [[$c, ,0], [$b, ,0]]]")
            .await;
        h.is("ZMPOP 1 nope MIN", "_").await;
        h.is("ZSCAN l 0", "[$0, [$a, $0]]").await;
    }
}
