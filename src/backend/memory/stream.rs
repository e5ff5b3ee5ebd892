//! Streams without consumer groups (t_stream.c): XADD (NOMKSTREAM,
//! MAXLEN/MINID with `=`/`~` and LIMIT, explicit, `ms-*` and generated IDs),
//! XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XREAD (and its BLOCK form through
//! `blocking.rs`).
//!
//! Approximate trimming (`~`) removes whole blocks of [`NODE_ENTRIES`]
//! entries from the oldest, as Redis removes whole radix-tree nodes; Redis's
//! own node boundaries also depend on entry sizes (4 KiB nodes), so with
//! large entries it may keep fewer.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::commands::{arity_error, int_arg};
use super::value::{ELEMENT_OVERHEAD, Value};
use super::{Ctx, now_ms};
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, error, int, map, null};
use crate::semantics::errors;
use crate::semantics::number::parse_i64;

/// Redis's stream-node-max-entries default: approximate trimming removes
/// whole blocks of this many entries.
pub const NODE_ENTRIES: usize = 100;
/// An XREAD that blocked with no COUNT returns at most this many entries.
const BLOCKED_DEFAULT_COUNT: usize = 1000;

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// A stream entry ID, `ms-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn text(self) -> Bytes {
        Bytes::from(format!("{}-{}", self.ms, self.seq))
    }

    fn incr(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    fn decr(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self
                .ms
                .checked_sub(1)
                .map(|ms| StreamId { ms, seq: u64::MAX }),
        }
    }
}

/// Redis's `string2ull`: `string2ll` when it fits, else `strtoull` rules.
fn parse_u64(text: &[u8]) -> Option<u64> {
    if let Some(n) = parse_i64(text) {
        return u64::try_from(n).ok();
    }
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let body = &text[start..];
    let (negative, digits) = match body.split_first() {
        Some((b'-', r)) => (true, r),
        Some((b'+', r)) => (false, r),
        _ => (false, body),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { v.wrapping_neg() } else { v })
}

/// `streamGenericParseIDOrReply`: `ms[-seq]`, `-`, `+` (not when strict),
/// `ms-*` (when `seq_auto`); the second value says whether a sequence was given.
fn parse_id(
    text: &[u8],
    missing_seq: u64,
    strict: bool,
    seq_auto: bool,
) -> Result<(StreamId, bool), Frame> {
    let invalid = || error(INVALID_ID);
    if text.len() > 127 {
        return Err(invalid());
    }
    match text {
        b"-" | b"+" if strict => return Err(invalid()),
        b"-" => return Ok((StreamId::default(), true)),
        b"+" => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    let (ms_text, seq_text) = match text.iter().position(|&b| b == b'-') {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let ms = parse_u64(ms_text).ok_or_else(invalid)?;
    match seq_text {
        Some(b"*") if seq_auto => Ok((StreamId { ms, seq: 0 }, false)),
        Some(s) => Ok((
            StreamId {
                ms,
                seq: parse_u64(s).ok_or_else(invalid)?,
            },
            true,
        )),
        None => Ok((
            StreamId {
                ms,
                seq: missing_seq,
            },
            true,
        )),
    }
}

/// An interval end for XRANGE: `(` makes it exclusive.
fn parse_interval(text: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Frame> {
    if text.len() > 1 && text[0] == b'(' {
        Ok((parse_id(&text[1..], missing_seq, true, false)?.0, true))
    } else {
        Ok((parse_id(text, missing_seq, false, false)?.0, false))
    }
}

#[derive(Debug, Clone, Default)]
pub struct StreamValue {
    pub entries: BTreeMap<StreamId, Vec<Bytes>>,
    pub last_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    bytes: usize,
}

impl StreamValue {
    pub fn mem(&self) -> usize {
        self.bytes
    }

    fn entry_size(fields: &[Bytes]) -> usize {
        16 + ELEMENT_OVERHEAD + fields.iter().map(|f| f.len() + 8).sum::<usize>()
    }

    pub fn insert(&mut self, id: StreamId, fields: Vec<Bytes>) {
        self.bytes += Self::entry_size(&fields);
        self.entries.insert(id, fields);
        self.last_id = self.last_id.max(id);
        self.entries_added += 1;
    }

    pub fn remove(&mut self, id: StreamId) -> bool {
        match self.entries.remove(&id) {
            Some(fields) => {
                self.bytes -= Self::entry_size(&fields);
                self.max_deleted = self.max_deleted.max(id);
                true
            }
            None => false,
        }
    }

    /// Removes the oldest entries while `drop` says so, whole blocks of
    /// [`NODE_ENTRIES`] when `approx`, at most `limit` entries (0: none).
    fn trim(&mut self, strategy: &Trim) -> usize {
        let mut removed = 0;
        loop {
            let block = if strategy.approx { NODE_ENTRIES } else { 1 };
            let candidates: Vec<StreamId> = self.entries.keys().take(block).copied().collect();
            if candidates.is_empty() || (strategy.approx && candidates.len() < block) {
                break;
            }
            let fits = match strategy.rule {
                TrimRule::MaxLen(max) => self.entries.len() - candidates.len() >= max as usize,
                TrimRule::MinId(min) => candidates.last().is_some_and(|id| *id < min),
            };
            if !fits || (strategy.limit > 0 && removed + candidates.len() > strategy.limit) {
                break;
            }
            for id in candidates {
                if let Some(fields) = self.entries.remove(&id) {
                    self.bytes -= Self::entry_size(&fields);
                    removed += 1;
                }
            }
        }
        removed
    }
}

#[derive(Debug, Clone, Copy)]
enum TrimRule {
    MaxLen(i64),
    MinId(StreamId),
}

#[derive(Debug, Clone, Copy)]
struct Trim {
    rule: TrimRule,
    approx: bool,
    limit: usize,
}

/// XADD's and XTRIM's options (`streamParseAddOrTrimArgsOrReply`): the
/// trimming, NOMKSTREAM, and for XADD the ID's position and value.
struct AddArgs {
    trim: Option<Trim>,
    no_mkstream: bool,
    id_at: usize,
    id: Option<(StreamId, bool)>,
}

fn parse_add_or_trim(args: &[Bytes], xadd: bool) -> Result<AddArgs, Frame> {
    let mut out = AddArgs {
        trim: None,
        no_mkstream: false,
        id_at: args.len(),
        id: None,
    };
    let mut rule = None;
    let mut approx = false;
    let mut limit: Option<i64> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (opt.eq_ignore_ascii_case(b"MAXLEN") || opt.eq_ignore_ascii_case(b"MINID"))
            && more > 0
        {
            if rule.is_some() {
                return Err(error(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            approx = false;
            let next = &args[i + 1];
            if more >= 2 && next.as_ref() == b"~" {
                approx = true;
                i += 1;
            } else if more >= 2 && next.as_ref() == b"=" {
                i += 1;
            }
            let value = &args[i + 1];
            rule = Some(if opt.eq_ignore_ascii_case(b"MAXLEN") {
                let n = int_arg(value)?;
                if n < 0 {
                    return Err(error("ERR The MAXLEN argument must be >= 0."));
                }
                TrimRule::MaxLen(n)
            } else {
                TrimRule::MinId(parse_id(value, 0, true, false)?.0)
            });
            i += 1;
        } else if opt.eq_ignore_ascii_case(b"LIMIT") && more > 0 {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(error("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(n);
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"NOMKSTREAM") {
            out.no_mkstream = true;
        } else if xadd {
            out.id = Some(parse_id(opt, 0, true, true)?);
            break;
        } else {
            return Err(error(errors::SYNTAX));
        }
        i += 1;
    }
    out.id_at = i;
    if limit.is_some_and(|l| l > 0) && rule.is_none() {
        return Err(error(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && rule.is_none() {
        return Err(error(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit.is_some() && !approx {
        return Err(error(
            "ERR syntax error, LIMIT cannot be used without the special ~ option",
        ));
    }
    let limit = match limit {
        Some(l) => l as usize,
        None if approx => 100 * NODE_ENTRIES,
        None => 0,
    };
    out.trim = rule.map(|rule| Trim {
        rule,
        approx,
        limit,
    });
    Ok(out)
}

impl Ctx<'_> {
    pub fn stream(&mut self, key: &[u8]) -> Result<Option<&StreamValue>, Frame> {
        self.collection(key)
    }

    pub fn stream_mut(&mut self, key: &[u8]) -> Result<Option<&mut StreamValue>, Frame> {
        self.collection_mut(key)
    }
}

fn entry_frame(id: StreamId, fields: &[Bytes]) -> Frame {
    array(vec![
        bulk(id.text()),
        array(fields.iter().cloned().map(bulk).collect()),
    ])
}

pub fn xadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let parsed = match parse_add_or_trim(args, true) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let fields = &args[(parsed.id_at + 1).min(args.len())..];
    if fields.len() < 2 || fields.len() % 2 == 1 {
        return arity_error(&args[0]);
    }
    if let Some((id, true)) = parsed.id
        && id == StreamId::default()
    {
        return error("ERR The ID specified in XADD must be greater than 0-0");
    }
    let key = &args[1];
    match ctx.stream(key) {
        Ok(Some(_)) => {}
        Ok(None) if parsed.no_mkstream => return null(),
        Ok(None) => ctx.put(key.clone(), Value::Stream(Box::default()), None),
        Err(e) => return e,
    }
    let stream = ctx.stream_mut(key).ok().flatten().expect("created above");
    if stream.last_id == StreamId::MAX {
        return error(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        );
    }
    let last = stream.last_id;
    let id = match parsed.id {
        Some((id, true)) => Some(id),
        Some((id, false)) if id.ms == last.ms => {
            if last.seq == u64::MAX {
                None
            } else {
                Some(StreamId {
                    ms: id.ms,
                    seq: last.seq + 1,
                })
            }
        }
        Some((id, false)) => Some(id),
        None => {
            let ms = now_ms().max(0) as u64;
            if ms > last.ms {
                Some(StreamId { ms, seq: 0 })
            } else {
                last.incr()
            }
        }
    };
    let Some(id) = id.filter(|id| *id > last) else {
        return error(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        );
    };
    stream.insert(id, fields.to_vec());
    if let Some(trim) = &parsed.trim {
        stream.trim(trim);
    }
    ctx.changed(key);
    bulk(id.text())
}

pub fn xtrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let parsed = match parse_add_or_trim(args, false) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let stream = match ctx.stream_mut(&args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return int(0),
        Err(e) => return e,
    };
    let removed = parsed.trim.map_or(0, |t| stream.trim(&t));
    if removed > 0 {
        ctx.changed(&args[1]);
    }
    int(removed as i64)
}

pub fn xdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut ids = Vec::with_capacity(args.len() - 2);
    for arg in &args[2..] {
        match parse_id(arg, 0, true, false) {
            Ok((id, _)) => ids.push(id),
            Err(e) => return e,
        }
    }
    let stream = match ctx.stream_mut(&args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return int(0),
        Err(e) => return e,
    };
    let removed = ids.into_iter().filter(|id| stream.remove(*id)).count();
    if removed > 0 {
        ctx.changed(&args[1]);
    }
    int(removed as i64)
}

pub fn xlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.stream(&args[1]) {
        Ok(s) => int(s.map_or(0, |s| s.entries.len() as i64)),
        Err(e) => e,
    }
}

fn range_generic(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> Frame {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let (mut start, start_ex) = match parse_interval(start_arg, 0) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if start_ex {
        match start.incr() {
            Some(s) => start = s,
            None => return error("ERR invalid start ID for the interval"),
        }
    }
    let (mut end, end_ex) = match parse_interval(end_arg, u64::MAX) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if end_ex {
        match end.decr() {
            Some(e) => end = e,
            None => return error("ERR invalid end ID for the interval"),
        }
    }
    let mut count: Option<usize> = None;
    let mut j = 4;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"COUNT") && j + 1 < args.len() {
            match int_arg(&args[j + 1]) {
                Ok(n) => count = Some(n.max(0) as usize),
                Err(e) => return e,
            }
            j += 2;
        } else {
            return error(errors::SYNTAX);
        }
    }
    let stream = match ctx.stream(&args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return array(vec![]),
        Err(e) => return e,
    };
    if count == Some(0) {
        return null();
    }
    if start > end {
        return array(vec![]);
    }
    let take = count.unwrap_or(usize::MAX);
    let range = stream.entries.range(start..=end);
    let items: Vec<Frame> = if rev {
        range
            .rev()
            .take(take)
            .map(|(id, f)| entry_frame(*id, f))
            .collect()
    } else {
        range
            .take(take)
            .map(|(id, f)| entry_frame(*id, f))
            .collect()
    };
    array(items)
}

pub fn xrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_generic(ctx, args, false)
}

pub fn xrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_generic(ctx, args, true)
}

/// XREAD's parsed arguments.
#[derive(Debug, Clone)]
pub struct XRead {
    pub count: usize,
    /// BLOCK milliseconds (0: forever), `None` without BLOCK.
    pub block: Option<i64>,
    pub keys: Vec<Bytes>,
    /// `None` for `$` until resolved against the stream.
    pub ids: Vec<Option<StreamId>>,
}

pub fn parse_xread(args: &[Bytes]) -> Result<XRead, Frame> {
    let mut x = XRead {
        count: 0,
        block: None,
        keys: Vec::new(),
        ids: Vec::new(),
    };
    let mut streams_at = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let opt = &args[i];
        if opt.eq_ignore_ascii_case(b"BLOCK") && more > 0 {
            i += 1;
            x.block = Some(super::blocking::block_ms_arg(&args[i])?);
        } else if opt.eq_ignore_ascii_case(b"COUNT") && more > 0 {
            i += 1;
            x.count = int_arg(&args[i])?.max(0) as usize;
        } else if opt.eq_ignore_ascii_case(b"STREAMS") && more > 0 {
            if !more.is_multiple_of(2) {
                return Err(error(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            streams_at = Some(i + 1);
            break;
        } else if opt.eq_ignore_ascii_case(b"GROUP") && more >= 2 {
            return Err(error(
                "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
            ));
        } else if opt.eq_ignore_ascii_case(b"NOACK") {
            return Err(error(
                "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
            ));
        } else {
            return Err(error(errors::SYNTAX));
        }
        i += 1;
    }
    let Some(at) = streams_at else {
        return Err(error(errors::SYNTAX));
    };
    let n = (args.len() - at) / 2;
    x.keys = args[at..at + n].to_vec();
    for id in &args[at + n..] {
        x.ids.push(match id.as_ref() {
            b"$" => None,
            b">" => {
                return Err(error(
                    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ));
            }
            text => Some(parse_id(text, 0, true, false)?.0),
        });
    }
    Ok(x)
}

/// Replaces `$` by each stream's last ID (0-0 for a missing stream).
pub fn resolve_last_ids(ctx: &mut Ctx<'_>, x: &mut XRead) {
    for (key, id) in x.keys.iter().zip(x.ids.iter_mut()) {
        if id.is_none() {
            *id = Some(
                ctx.stream(key)
                    .ok()
                    .flatten()
                    .map_or_else(StreamId::default, |s| s.last_id),
            );
        }
    }
}

/// XREAD's reply: a map of the streams with entries after the given IDs
/// (only `only` when set), `None` when there are none. Type errors first.
pub fn xread_serve(
    ctx: &mut Ctx<'_>,
    x: &XRead,
    only: Option<&Bytes>,
) -> Result<Option<Frame>, Frame> {
    let mut x = x.clone();
    for key in &x.keys {
        ctx.stream(key)?;
    }
    resolve_last_ids(ctx, &mut x);
    let count = match (x.count, only) {
        (0, Some(_)) => BLOCKED_DEFAULT_COUNT,
        (0, None) => usize::MAX,
        (n, _) => n,
    };
    let mut out = Vec::new();
    for (key, id) in x.keys.iter().zip(&x.ids) {
        if only.is_some_and(|k| k != key) {
            continue;
        }
        let after = id.expect("resolved above");
        let Some(stream) = ctx.stream(key)? else {
            continue;
        };
        let Some(from) = after.incr() else {
            continue;
        };
        let entries: Vec<Frame> = stream
            .entries
            .range(from..)
            .take(count)
            .map(|(id, f)| entry_frame(*id, f))
            .collect();
        if !entries.is_empty() {
            out.push((bulk(key.clone()), array(entries)));
        }
    }
    Ok((!out.is_empty()).then(|| map(out)))
}

pub fn xread(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let x = match parse_xread(args) {
        Ok(x) => x,
        Err(e) => return e,
    };
    match xread_serve(ctx, &x, None) {
        Ok(Some(frame)) => frame,
        Ok(None) => null(),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::tests::Harness;

    #[tokio::test]
    async fn xadd_ids_and_trimming() {
        let h = Harness::new();
        h.is("XADD s 1-1 f v", "$1-1").await;
        h.is("XADD s 1-* f v", "$1-2").await;
        h.is(
            "XADD s 1-1 f v",
            "-ERR The ID specified in XADD is equal or smaller than the target stream top item",
        )
        .await;
        h.is(
            "XADD s 0-0 f v",
            "-ERR The ID specified in XADD must be greater than 0-0",
        )
        .await;
        h.is(
            "XADD s 5 f",
            "-ERR wrong number of arguments for 'xadd' command",
        )
        .await;
        h.is("XADD nope NOMKSTREAM * f v", "_").await;
        h.is("XADD s MAXLEN 1 2-0 f v", "$2-0").await;
        h.is("XLEN s", ":1").await;
        h.is("XRANGE s - +", "[[$2-0, [$f, $v]]]").await;
        h.is("XRANGE s - + COUNT 0", "_").await;
        h.is("XRANGE s (2-0 +", "[]").await;
        h.is(
            "XTRIM s MAXLEN 0 LIMIT 1",
            "-ERR syntax error, LIMIT cannot be used without the special ~ option",
        )
        .await;
        h.is("XREAD STREAMS s 0", "%[$s: [[$2-0, [$f, $v]]]]").await;
        h.is("XREAD STREAMS s $", "_").await;
        h.is("XDEL s 2-0", ":1").await;
        h.is("XLEN s", ":0").await;
        h.is(
            "XADD s 1-5 f v",
            "-ERR The ID specified in XADD is equal or smaller than the target stream top item",
        )
        .await;
    }
}
