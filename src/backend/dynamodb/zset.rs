//! Sorted sets: one element item per member (the member in the sort key,
//! its score beside it) that is also an entry of the `zorder` index, whose
//! sort key is generation ‖ score ‖ member — Redis's order. Ranges by score
//! are index Queries between two keys; ranks count from the nearer end.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::commands::{int, is};
use super::item::{self, Elem, Gen, Kind, MAX_NAME_IN_KEY, Meta, score_key};
use super::tx::{Fail, Tx, reply_err};
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, double, int as int_reply, null};
use crate::semantics::errors;
use crate::semantics::number::parse_f64;
use crate::semantics::range::{ScoreRange, index_range};

/// The forms of ZRANGE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeForm {
    /// ZRANGE, with BYSCORE/REV/LIMIT/WITHSCORES.
    Range,
    ByScore,
    RevRange,
    RevByScore,
}

pub(super) fn member_too_long() -> Fail {
    reply_err(format!(
        "ERR sealcache: sorted-set members longer than {MAX_NAME_IN_KEY} bytes are not supported by the dynamodb backend (DynamoDB's sort-key limit)"
    ))
}

async fn zset(tx: &mut Tx<'_>, key: &Bytes) -> Result<Option<Meta>, Fail> {
    tx.typed(key, Kind::ZSet).await
}

/// Members' current scores, in the order asked (`None`: not a member).
async fn scores(
    tx: &mut Tx<'_>,
    key: &Bytes,
    meta: &Meta,
    members: &[&Bytes],
) -> Result<Vec<Option<f64>>, Fail> {
    let asked: Vec<(usize, Vec<u8>)> = members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.len() <= MAX_NAME_IN_KEY)
        .map(|(i, m)| (i, item::name_suffix(m)))
        .collect();
    let suffixes: Vec<Vec<u8>> = asked.iter().map(|(_, s)| s.clone()).collect();
    let found = if suffixes.is_empty() {
        Vec::new()
    } else {
        tx.elems(key, meta, &suffixes).await?
    };
    let mut out = vec![None; members.len()];
    for ((i, _), elem) in asked.iter().zip(found) {
        out[*i] = elem.and_then(|e| e.score);
    }
    Ok(out)
}

fn float(arg: &[u8]) -> Result<f64, Fail> {
    parse_f64(arg).ok_or_else(|| reply_err(errors::NOT_FLOAT))
}

/// ZADD and ZINCRBY, with Redis's option rules.
pub async fn zadd(tx: &mut Tx<'_>, args: &[Bytes], incr_command: bool) -> Result<Frame, Fail> {
    let (mut nx, mut xx, mut ch, mut incr, mut gt, mut lt) =
        (false, false, false, incr_command, false, false);
    let mut i = 2;
    while i < args.len() {
        let opt = &args[i];
        if is(opt, "NX") {
            nx = true;
        } else if is(opt, "XX") {
            xx = true;
        } else if is(opt, "CH") {
            ch = true;
        } else if is(opt, "INCR") {
            incr = true;
        } else if is(opt, "GT") {
            gt = true;
        } else if is(opt, "LT") {
            lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let pairs = &args[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(reply_err(errors::SYNTAX));
    }
    if xx && nx {
        return Err(reply_err(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(reply_err(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && pairs.len() > 2 {
        return Err(reply_err(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let mut wanted = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks(2) {
        wanted.push((float(&pair[0])?, &pair[1]));
    }
    let key = &args[1];
    let meta = zset(tx, key).await?;
    if meta.is_none() && xx {
        return Ok(if incr { null() } else { int_reply(0) });
    }
    if let Some((_, member)) = wanted.iter().find(|(_, m)| m.len() > MAX_NAME_IN_KEY) {
        let _ = member;
        return Err(member_too_long());
    }
    let members: Vec<&Bytes> = wanted.iter().map(|(_, m)| *m).collect();
    let (mut meta, current) = match meta {
        Some(meta) => {
            let current = scores(tx, key, &meta, &members).await?;
            (meta, current)
        }
        None => (Meta::new(Kind::ZSet), vec![None; members.len()]),
    };
    // Later pairs for the same member see the earlier ones, as in Redis.
    let mut now: BTreeMap<&Bytes, Option<f64>> = BTreeMap::new();
    for (member, score) in members.iter().zip(&current) {
        now.entry(member).or_insert(*score);
    }
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last_score = 0.0;
    for (score, member) in wanted {
        let existing = now[member];
        let mut score = score;
        match existing {
            Some(current) => {
                if nx {
                    continue;
                }
                if incr {
                    score += current;
                    if score.is_nan() {
                        return Err(reply_err("ERR resulting score is not a number (NaN)"));
                    }
                }
                if (lt && score >= current) || (gt && score <= current) {
                    continue;
                }
                processed += 1;
                last_score = score;
                if score != current {
                    updated += 1;
                    now.insert(member, Some(score));
                }
            }
            None if !xx => {
                added += 1;
                processed += 1;
                last_score = score;
                now.insert(member, Some(score));
            }
            None => {}
        }
    }
    let mut changed = false;
    for (member, score) in &now {
        let before = members
            .iter()
            .position(|m| m == member)
            .and_then(|i| current[i]);
        if let Some(score) = score
            && before != Some(*score)
        {
            // Replies show -0, but it reads back as 0 (Redis's listpack encoding
            // of small sorted sets stores it as the integer 0).
            let stored = if *score == 0.0 { 0.0 } else { *score };
            tx.put_elem(key, Elem::member(member, stored));
            changed = true;
        }
    }
    if changed {
        meta.count += added;
        tx.put(key, meta);
    }
    Ok(if incr {
        if processed > 0 {
            double(last_score)
        } else {
            null()
        }
    } else {
        int_reply(if ch { added + updated } else { added })
    })
}

pub async fn zrem(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let key = &args[1];
    let Some(mut meta) = zset(tx, key).await? else {
        return Ok(int_reply(0));
    };
    let mut gone: Vec<&Bytes> = args[2..].iter().collect();
    gone.sort();
    gone.dedup();
    let current = scores(tx, key, &meta, &gone).await?;
    let mut removed = 0;
    for (member, score) in gone.iter().zip(current) {
        if score.is_some() {
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

pub async fn zscore(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let Some(meta) = zset(tx, &args[1]).await? else {
        return Ok(null());
    };
    let found = scores(tx, &args[1], &meta, &[&args[2]]).await?;
    Ok(found[0].map_or_else(null, double))
}

pub async fn zmscore(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let asked: Vec<&Bytes> = args[2..].iter().collect();
    let found = match zset(tx, &args[1]).await? {
        Some(meta) => scores(tx, &args[1], &meta, &asked).await?,
        None => vec![None; asked.len()],
    };
    Ok(array(
        found
            .into_iter()
            .map(|s| s.map_or_else(null, double))
            .collect(),
    ))
}

pub async fn zcard(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    Ok(int_reply(zset(tx, &args[1]).await?.map_or(0, |m| m.count)))
}

/// The `zorder` keys bounding a score range (inclusive), `None` when empty.
fn score_bounds(range: &ScoreRange) -> Option<([u8; 8], [u8; 8])> {
    if range.is_empty() {
        return None;
    }
    let lo = u64::from_be_bytes(score_key(range.min.value));
    let hi = u64::from_be_bytes(score_key(range.max.value));
    // An exclusive end moves to the neighbouring score's key.
    let lo = if range.min.exclusive {
        lo.checked_add(1)?
    } else {
        lo
    };
    let hi = if range.max.exclusive {
        hi.checked_sub(1)?
    } else {
        hi
    };
    (lo <= hi).then_some((lo.to_be_bytes(), hi.to_be_bytes()))
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Fail> {
    ScoreRange::parse(min, max).ok_or_else(|| reply_err(errors::MIN_MAX_NOT_FLOAT))
}

/// Members in a score range, in order (or reversed), after skipping `offset`, at most `limit`.
async fn by_score(
    tx: &mut Tx<'_>,
    key: &Bytes,
    meta: &Meta,
    range: &ScoreRange,
    reverse: bool,
    offset: usize,
    limit: Option<usize>,
) -> Result<Vec<Elem>, Fail> {
    let Some((lo, hi)) = score_bounds(range) else {
        return Ok(Vec::new());
    };
    let max = limit.map(|l| l.saturating_add(offset));
    let mut elems = tx.zorder(key, meta, Some((lo, hi)), !reverse, max).await?;
    Ok(elems.split_off(offset.min(elems.len())))
}

/// Members with ascending ranks `lo..=hi`, read from the nearer end.
async fn by_rank(
    tx: &mut Tx<'_>,
    key: &Bytes,
    meta: &Meta,
    lo: usize,
    hi: usize,
) -> Result<Vec<Elem>, Fail> {
    let n = meta.count.max(0) as usize;
    if n - lo < hi + 1 {
        // Closer to the end: read ranks n-1 down to lo, then put them in order.
        let mut elems = tx.zorder(key, meta, None, false, Some(n - lo)).await?;
        elems.reverse();
        elems.truncate(hi - lo + 1);
        return Ok(elems);
    }
    let elems = tx.zorder(key, meta, None, true, Some(hi + 1)).await?;
    Ok(elems.into_iter().skip(lo).collect())
}

fn members_reply(elems: &[Elem], with_scores: bool) -> Frame {
    array(
        elems
            .iter()
            .map(|e| {
                if with_scores {
                    array(vec![bulk(e.name()), double(e.score.unwrap_or_default())])
                } else {
                    bulk(e.name())
                }
            })
            .collect(),
    )
}

/// A parsed ZRANGE-family request.
struct RangeRequest {
    by_score: bool,
    reverse: bool,
    with_scores: bool,
    offset: i64,
    limit: i64,
    min: Bytes,
    max: Bytes,
}

/// ZRANGE's options after `min max` (Redis's zrangeGenericCommand), from `args[first..]`.
fn parse_range(
    args: &[Bytes],
    first: usize,
    form: RangeForm,
    store: bool,
) -> Result<RangeRequest, Fail> {
    let mut r = RangeRequest {
        by_score: matches!(form, RangeForm::ByScore | RangeForm::RevByScore),
        reverse: matches!(form, RangeForm::RevRange | RangeForm::RevByScore),
        with_scores: false,
        offset: 0,
        limit: -1,
        min: args[first].clone(),
        max: args[first + 1].clone(),
    };
    let legacy = form != RangeForm::Range;
    let mut by_lex = false;
    let mut limited = false;
    let mut j = first + 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        if !store && is(&args[j], "WITHSCORES") {
            r.with_scores = true;
        } else if is(&args[j], "LIMIT") && left >= 2 {
            r.offset = int(&args[j + 1])?;
            r.limit = int(&args[j + 2])?;
            limited = true;
            j += 2;
        } else if !legacy && !r.reverse && is(&args[j], "REV") {
            r.reverse = true;
        } else if !legacy && !r.by_score && !by_lex && is(&args[j], "BYLEX") {
            by_lex = true;
        } else if !legacy && !r.by_score && !by_lex && is(&args[j], "BYSCORE") {
            r.by_score = true;
        } else {
            return Err(reply_err(errors::SYNTAX));
        }
        j += 1;
    }
    if limited && !r.by_score && !by_lex {
        return Err(reply_err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if by_lex {
        return Err(reply_err(
            "ERR sealcache: BYLEX ranges are not supported by the dynamodb backend; use scores or ranks",
        ));
    }
    if r.reverse && r.by_score {
        std::mem::swap(&mut r.min, &mut r.max);
    }
    Ok(r)
}

/// The members a range request selects, in reply order.
async fn select(
    tx: &mut Tx<'_>,
    key: &Bytes,
    meta: &Meta,
    r: &RangeRequest,
) -> Result<Vec<Elem>, Fail> {
    if r.by_score {
        let range = parse_score_range(&r.min, &r.max)?;
        if r.offset < 0 || (r.offset > 0 && r.offset >= meta.count) {
            return Ok(Vec::new());
        }
        let limit = usize::try_from(r.limit).ok();
        return by_score(tx, key, meta, &range, r.reverse, r.offset as usize, limit).await;
    }
    let start = int(&r.min)?;
    let end = int(&r.max)?;
    let n = meta.count.max(0) as usize;
    let Some((s, e)) = index_range(n, start, end) else {
        return Ok(Vec::new());
    };
    if r.reverse {
        let mut elems = by_rank(tx, key, meta, n - 1 - e, n - 1 - s).await?;
        elems.reverse();
        Ok(elems)
    } else {
        by_rank(tx, key, meta, s, e).await
    }
}

/// ZRANGE, ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE.
pub async fn zrange(tx: &mut Tx<'_>, args: &[Bytes], form: RangeForm) -> Result<Frame, Fail> {
    let r = parse_range(args, 2, form, false)?;
    if !r.by_score {
        int(&r.min)?;
        int(&r.max)?;
    } else {
        parse_score_range(&r.min, &r.max)?;
    }
    let Some(meta) = zset(tx, &args[1]).await? else {
        return Ok(array(Vec::new()));
    };
    let elems = select(tx, &args[1], &meta, &r).await?;
    Ok(members_reply(&elems, r.with_scores))
}

pub async fn zrangestore(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let (dst, src) = (&args[1], &args[2]);
    let r = parse_range(args, 3, RangeForm::Range, true)?;
    if !r.by_score {
        int(&r.min)?;
        int(&r.max)?;
    } else {
        parse_score_range(&r.min, &r.max)?;
    }
    tx.load(dst).await?;
    let elems = match zset(tx, src).await? {
        Some(meta) => select(tx, src, &meta, &r).await?,
        None => Vec::new(),
    };
    store_members(tx, dst, elems)
}

/// Replaces `dst` with these members (deleting it when there are none).
fn store_members(tx: &mut Tx<'_>, dst: &Bytes, elems: Vec<Elem>) -> Result<Frame, Fail> {
    let count = elems.len() as i64;
    if elems.is_empty() {
        if tx.meta(dst).is_some() {
            tx.delete(dst);
        }
    } else {
        let mut meta = Meta::new(Kind::ZSet);
        meta.count = count;
        let elems = elems
            .into_iter()
            .map(|e| Elem::member(&e.name(), e.score.unwrap_or_default()))
            .collect();
        tx.replace(dst, meta, elems);
    }
    Ok(int_reply(count))
}

pub async fn zcount(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let range = parse_score_range(&args[2], &args[3])?;
    let Some(meta) = zset(tx, &args[1]).await? else {
        return Ok(int_reply(0));
    };
    let Some((lo, hi)) = score_bounds(&range) else {
        return Ok(int_reply(0));
    };
    let generation = meta.generation.unwrap_or_default();
    let (low, high) = zorder_keys(&generation, lo, hi);
    Ok(int_reply(
        tx.zcount_between(&args[1], &meta, low, high).await?,
    ))
}

/// Index keys covering every member with a score key in `lo..=hi`.
fn zorder_keys(generation: &Gen, lo: [u8; 8], hi: [u8; 8]) -> (Vec<u8>, Vec<u8>) {
    let mut low = generation.to_vec();
    low.extend_from_slice(&lo);
    let mut high = generation.to_vec();
    high.extend_from_slice(&hi);
    high.extend(std::iter::repeat_n(0xFF, MAX_NAME_IN_KEY + 1));
    (low, high)
}

/// ZRANK and ZREVRANK: how many members sort before this one.
pub async fn zrank(tx: &mut Tx<'_>, args: &[Bytes], rev: bool) -> Result<Frame, Fail> {
    let (key, member) = (&args[1], &args[2]);
    let Some(meta) = zset(tx, key).await? else {
        return Ok(null());
    };
    let Some(score) = scores(tx, key, &meta, &[member]).await?[0] else {
        return Ok(null());
    };
    let generation = meta.generation.unwrap_or_default();
    let own = item::zo(&generation, score, member);
    let at_or_before = tx
        .zcount_between(key, &meta, generation.to_vec(), own)
        .await?;
    let rank = at_or_before - 1;
    Ok(int_reply(if rev { meta.count - 1 - rank } else { rank }))
}

/// ZREMRANGEBYRANK and ZREMRANGEBYSCORE.
pub async fn zremrange(tx: &mut Tx<'_>, args: &[Bytes], scored: bool) -> Result<Frame, Fail> {
    let key = &args[1];
    let range = if scored {
        Some(parse_score_range(&args[2], &args[3])?)
    } else {
        int(&args[2])?;
        int(&args[3])?;
        None
    };
    let Some(mut meta) = zset(tx, key).await? else {
        return Ok(int_reply(0));
    };
    let doomed = match range {
        Some(range) => by_score(tx, key, &meta, &range, false, 0, None).await?,
        None => {
            let n = meta.count.max(0) as usize;
            match index_range(n, int(&args[2])?, int(&args[3])?) {
                Some((s, e)) => by_rank(tx, key, &meta, s, e).await?,
                None => Vec::new(),
            }
        }
    };
    for elem in &doomed {
        tx.del_elem(key, elem.suffix.clone());
    }
    if !doomed.is_empty() {
        meta.count -= doomed.len() as i64;
        tx.put(key, meta);
    }
    Ok(int_reply(doomed.len() as i64))
}

/// ZPOPMIN and ZPOPMAX.
pub async fn zpop(tx: &mut Tx<'_>, args: &[Bytes], max: bool) -> Result<Frame, Fail> {
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
    if count == Some(0) {
        return Ok(array(Vec::new()));
    }
    let Some(mut meta) = zset(tx, key).await? else {
        return Ok(array(Vec::new()));
    };
    let wanted = usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX);
    let popped = tx.zorder(key, &meta, None, !max, Some(wanted)).await?;
    for elem in &popped {
        tx.del_elem(key, elem.suffix.clone());
    }
    meta.count -= popped.len() as i64;
    tx.put(key, meta);
    Ok(match count {
        // A single pop is a flat [member, score] in both protocols.
        None => array(
            popped
                .first()
                .map(|e| vec![bulk(e.name()), double(e.score.unwrap_or_default())])
                .unwrap_or_default(),
        ),
        Some(_) => members_reply(&popped, true),
    })
}
