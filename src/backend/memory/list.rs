//! List commands (t_list.c): LPUSH/RPUSH(X), LPOP/RPOP with a count,
//! LRANGE, LINDEX, LSET, LLEN, LTRIM, LMOVE, RPOPLPUSH, LMPOP. The blocking
//! forms live in `blocking.rs` and share the helpers here.

use bytes::Bytes;

use super::Ctx;
use super::commands::{arity_error, int_arg, mpop_args, positive_arg};
use super::value::ListValue;
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, error, int, null, ok};
use crate::semantics::errors;
use crate::semantics::range::index_range;

impl Ctx<'_> {
    pub fn list(&mut self, key: &[u8]) -> Result<Option<&ListValue>, Frame> {
        self.collection(key)
    }

    pub fn list_mut(&mut self, key: &[u8]) -> Result<Option<&mut ListValue>, Frame> {
        self.collection_mut(key)
    }

    /// The list at `key`, created empty when absent (call `changed` after).
    pub fn list_or_new(&mut self, key: &Bytes) -> Result<&mut ListValue, Frame> {
        self.collection_or_new(key)
    }
}

/// LEFT or RIGHT (true for LEFT).
pub fn side_arg(arg: &[u8]) -> Result<bool, Frame> {
    if arg.eq_ignore_ascii_case(b"LEFT") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"RIGHT") {
        Ok(false)
    } else {
        Err(error(errors::SYNTAX))
    }
}

fn push_generic(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool, only_existing: bool) -> Frame {
    if only_existing {
        match ctx.list(&args[1]) {
            Ok(Some(_)) => {}
            Ok(None) => return int(0),
            Err(e) => return e,
        }
    }
    let list = match ctx.list_or_new(&args[1]) {
        Ok(l) => l,
        Err(e) => return e,
    };
    for item in &args[2..] {
        list.push(item.clone(), left);
    }
    let len = list.len();
    ctx.changed(&args[1]);
    int(len as i64)
}

pub fn lpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    push_generic(ctx, args, true, false)
}

pub fn rpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    push_generic(ctx, args, false, false)
}

pub fn lpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    push_generic(ctx, args, true, true)
}

pub fn rpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    push_generic(ctx, args, false, true)
}

/// Pops up to `count` elements from one end of the list at `key` (which
/// must be a list); deletes it when emptied.
pub fn pop_items(ctx: &mut Ctx<'_>, key: &[u8], left: bool, count: usize) -> Vec<Bytes> {
    let Ok(Some(list)) = ctx.list_mut(key) else {
        return Vec::new();
    };
    let items: Vec<Bytes> = (0..count).map_while(|_| list.pop(left)).collect();
    if !items.is_empty() {
        ctx.changed(key);
    }
    items
}

fn pop_generic(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool) -> Frame {
    if args.len() > 3 {
        return arity_error(&args[0]);
    }
    let count = match args.get(2).map(|c| positive_arg(c)) {
        None => None,
        Some(Ok(n)) => Some(n as usize),
        Some(Err(e)) => return e,
    };
    match ctx.list(&args[1]) {
        Ok(Some(_)) => {}
        Ok(None) => return null(),
        Err(e) => return e,
    }
    match count {
        None => pop_items(ctx, &args[1], left, 1)
            .into_iter()
            .next()
            .map_or_else(null, bulk),
        Some(0) => array(vec![]),
        Some(n) => array(
            pop_items(ctx, &args[1], left, n)
                .into_iter()
                .map(bulk)
                .collect(),
        ),
    }
}

pub fn lpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    pop_generic(ctx, args, true)
}

pub fn rpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    pop_generic(ctx, args, false)
}

pub fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.list(&args[1]) {
        Ok(l) => int(l.map_or(0, |l| l.len() as i64)),
        Err(e) => e,
    }
}

pub fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (start, end) = match (int_arg(&args[2]), int_arg(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    match ctx.list(&args[1]) {
        Ok(Some(l)) => match index_range(l.len(), start, end) {
            Some((from, to)) => array(l.items.range(from..=to).cloned().map(bulk).collect()),
            None => array(vec![]),
        },
        Ok(None) => array(vec![]),
        Err(e) => e,
    }
}

/// A list index (negative from the end) as a position, if in range.
fn position(len: usize, index: i64) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    (0..len as i64).contains(&i).then_some(i as usize)
}

pub fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let index = match int_arg(&args[2]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    match ctx.list(&args[1]) {
        Ok(Some(l)) => position(l.len(), index).map_or_else(null, |i| bulk(l.items[i].clone())),
        Ok(None) => null(),
        Err(e) => e,
    }
}

pub fn lset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let list = match ctx.list_mut(&args[1]) {
        Ok(Some(l)) => l,
        Ok(None) => return error(errors::NO_SUCH_KEY),
        Err(e) => return e,
    };
    let index = match int_arg(&args[2]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    match position(list.len(), index) {
        Some(i) => {
            list.set(i, args[3].clone());
            ctx.changed(&args[1]);
            ok()
        }
        None => error(errors::INDEX_OUT_OF_RANGE),
    }
}

pub fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (start, end) = match (int_arg(&args[2]), int_arg(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let list = match ctx.list_mut(&args[1]) {
        Ok(Some(l)) => l,
        Ok(None) => return ok(),
        Err(e) => return e,
    };
    let before = list.len();
    list.keep(index_range(before, start, end));
    if list.len() != before {
        ctx.changed(&args[1]);
    }
    ok()
}

/// LMOVE's work once the source is known to be a non-empty list: checks the
/// destination's type, moves one element, returns it.
pub fn move_one(
    ctx: &mut Ctx<'_>,
    src: &Bytes,
    dst: &Bytes,
    from_left: bool,
    to_left: bool,
) -> Result<Bytes, Frame> {
    ctx.list(dst)?;
    let item = pop_items(ctx, src, from_left, 1)
        .pop()
        .expect("the source is a non-empty list");
    let list = ctx.list_or_new(dst)?;
    list.push(item.clone(), to_left);
    ctx.changed(dst);
    Ok(item)
}

fn lmove_generic(
    ctx: &mut Ctx<'_>,
    src: &Bytes,
    dst: &Bytes,
    from_left: bool,
    to_left: bool,
) -> Frame {
    match ctx.list(src) {
        Ok(Some(_)) => {}
        Ok(None) => return null(),
        Err(e) => return e,
    }
    match move_one(ctx, src, dst, from_left, to_left) {
        Ok(item) => bulk(item),
        Err(e) => e,
    }
}

pub fn lmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (from, to) = match (side_arg(&args[3]), side_arg(&args[4])) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    lmove_generic(ctx, &args[1], &args[2], from, to)
}

pub fn rpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    lmove_generic(ctx, &args[1], &args[2], false, true)
}

/// LMPOP/BLMPOP's `numkeys key… LEFT|RIGHT [COUNT n]` from `args[at]`.
pub fn parse_mpop(args: &[Bytes], at: usize) -> Result<(Vec<Bytes>, bool, usize), Frame> {
    mpop_args(args, at, side_arg)
}

/// Pops from the first non-empty list among `keys`: `[key, [items…]]`.
pub fn mpop_from(
    ctx: &mut Ctx<'_>,
    keys: &[Bytes],
    left: bool,
    count: usize,
) -> Result<Option<Frame>, Frame> {
    for key in keys {
        if ctx.list(key)?.is_some() {
            let items = pop_items(ctx, key, left, count);
            return Ok(Some(array(vec![
                bulk(key.clone()),
                array(items.into_iter().map(bulk).collect()),
            ])));
        }
    }
    Ok(None)
}

pub fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (keys, left, count) = match parse_mpop(args, 1) {
        Ok(p) => p,
        Err(e) => return e,
    };
    match mpop_from(ctx, &keys, left, count) {
        Ok(Some(frame)) => frame,
        Ok(None) => null(),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::tests::Harness;

    #[tokio::test]
    async fn list_basics() {
        let h = Harness::new();
        h.is("RPUSH l a b c d", ":4").await;
        h.is("LRANGE l 1 -2", "[$b, $c]").await;
        h.is("LPOP l 2", "[$a, $b]").await;
        h.is("LPOP nope 2", "_").await;
        h.is(
            "LPOP l 1 2",
            "-ERR wrong number of arguments for 'lpop' command",
        )
        .await;
        h.is("LPOP l -1", "-ERR value is out of range, must be positive")
            .await;
        h.is("LSET l 5 x", "-ERR index out of range").await;
        h.is("LSET nope 0 x", "-ERR no such key").await;
        h.is("LINDEX l -1", "$d").await;
        h.is("LMOVE l l2 LEFT RIGHT", "$c").await;
        h.is("RPOPLPUSH l l2", "$d").await;
        h.is("EXISTS l", ":0").await;
        h.is("LRANGE l2 0 -1", "[$d, $c]").await;
        h.is("LMPOP 2 nope l2 RIGHT COUNT 5", "[$l2, [$c, $d]]")
            .await;
        h.is("LMPOP 0 l2 LEFT", "-ERR numkeys should be greater than 0")
            .await;
        h.is("LPUSHX l2 x", ":0").await;
        h.is("RPUSH t a b c", ":3").await;
        h.is("LTRIM t 1 0", "+OK").await;
        h.is("EXISTS t", ":0").await;
    }
}
