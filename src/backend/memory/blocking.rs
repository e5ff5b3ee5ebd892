//! Blocking commands (blocked.c): BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
//! BZPOPMIN, BZPOPMAX, BZMPOP and XREAD … BLOCK.
//!
//! A call first runs as the non-blocking command would. When there is
//! nothing to take, it queues a waiter on each of its keys. A command that
//! changes such a key makes it *ready*; before the engine lock is released,
//! the waiters of every ready key are served in FIFO order (Redis's order):
//! the element is taken on the waiter's behalf and its reply left in the
//! waiter's slot. A waiter dropped before it returns that reply (the client
//! went away) puts what it took back, so a cancelled call loses nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::commands::{self, arity_error, int_arg, unknown_command};
use super::{Ctx, MemoryStore, list, lock, now_ms, stream, zset};
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, double, error, null};
use crate::semantics::errors;
use crate::semantics::number::parse_f64;

/// What a blocked call does once a key is ready.
#[derive(Debug, Clone)]
enum Op {
    /// BLPOP/BRPOP: `[key, element]`.
    Pop { keys: Vec<Bytes>, left: bool },
    /// BLMOVE/BRPOPLPUSH: the element.
    Move {
        src: Bytes,
        dst: Bytes,
        from_left: bool,
        to_left: bool,
    },
    /// BLMPOP: `[key, [elements…]]`.
    MPop {
        keys: Vec<Bytes>,
        left: bool,
        count: usize,
    },
    /// BZPOPMIN/BZPOPMAX: `[key, member, score]`.
    ZPop { keys: Vec<Bytes>, max: bool },
    /// BZMPOP: `[key, [[member, score]…]]`.
    ZMPop {
        keys: Vec<Bytes>,
        max: bool,
        count: usize,
    },
    /// XREAD: reads, takes nothing.
    XRead(stream::XRead),
}

impl Op {
    fn keys(&self) -> Vec<Bytes> {
        match self {
            Op::Pop { keys, .. }
            | Op::MPop { keys, .. }
            | Op::ZPop { keys, .. }
            | Op::ZMPop { keys, .. } => keys.clone(),
            Op::Move { src, .. } => vec![src.clone()],
            Op::XRead(x) => x.keys.clone(),
        }
    }
}

/// How to put back what serving a waiter took.
#[derive(Debug)]
enum Undo {
    Nothing,
    Popped {
        key: Bytes,
        items: Vec<Bytes>,
        left: bool,
    },
    Moved {
        src: Bytes,
        dst: Bytes,
        item: Bytes,
        from_left: bool,
        to_left: bool,
    },
    ZPopped {
        key: Bytes,
        items: Vec<(Bytes, f64)>,
    },
}

struct Served {
    frame: Frame,
    undo: Undo,
}

pub(crate) struct Waiter {
    db: u32,
    op: Op,
    keys: Vec<Bytes>,
    slot: Mutex<Option<Served>>,
    notify: Notify,
}

/// Waiters by key, oldest first.
#[derive(Default)]
pub(crate) struct Blocked {
    by_key: HashMap<(u32, Bytes), VecDeque<Arc<Waiter>>>,
}

impl Blocked {
    /// How many calls wait on `key`.
    #[cfg(test)]
    pub fn waiting(&self, db: u32, key: &[u8]) -> usize {
        self.by_key
            .get(&(db, Bytes::copy_from_slice(key)))
            .map_or(0, VecDeque::len)
    }

    /// Distinct waiting calls.
    pub fn count(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        for queue in self.by_key.values() {
            for w in queue {
                seen.insert(Arc::as_ptr(w));
            }
        }
        seen.len()
    }

    pub fn is_waiting(&self, db: u32, key: &[u8]) -> bool {
        !self.by_key.is_empty() && self.by_key.contains_key(&(db, Bytes::copy_from_slice(key)))
    }

    fn register(&mut self, waiter: &Arc<Waiter>) {
        for key in &waiter.keys {
            let queue = self.by_key.entry((waiter.db, key.clone())).or_default();
            if !queue.iter().any(|w| Arc::ptr_eq(w, waiter)) {
                queue.push_back(Arc::clone(waiter));
            }
        }
    }

    fn unregister(&mut self, waiter: &Arc<Waiter>) {
        for key in &waiter.keys {
            let k = (waiter.db, key.clone());
            if let Some(queue) = self.by_key.get_mut(&k) {
                queue.retain(|w| !Arc::ptr_eq(w, waiter));
                if queue.is_empty() {
                    self.by_key.remove(&k);
                }
            }
        }
    }
}

/// A parsed blocking call: what to do and how long to wait (ms, 0 = forever;
/// `None` for XREAD without BLOCK).
struct Call {
    op: Op,
    timeout: Option<i64>,
}

/// Redis's `getTimeoutFromObjectOrReply` in seconds: a float, rounded up to
/// whole milliseconds, not negative. Redis casts the milliseconds to a
/// `long long`; a value beyond its range (±inf included) becomes
/// `LLONG_MIN`, so it too is "negative".
fn timeout_arg(arg: &[u8]) -> Result<i64, Frame> {
    let secs = parse_f64(arg).ok_or_else(|| error(errors::TIMEOUT_NOT_FLOAT))?;
    let ms = (secs * 1000.0).ceil();
    if ms < 0.0 || ms >= i64::MAX as f64 {
        return Err(error(errors::TIMEOUT_NEGATIVE));
    }
    Ok(ms as i64)
}

fn parse(args: &[Bytes]) -> Result<Call, Frame> {
    let name = args[0].to_ascii_uppercase();
    let last = args.len() - 1;
    let call = match name.as_slice() {
        b"BLPOP" | b"BRPOP" => Call {
            timeout: Some(timeout_arg(&args[last])?),
            op: Op::Pop {
                keys: args[1..last].to_vec(),
                left: name == b"BLPOP",
            },
        },
        b"BLMOVE" => {
            let from_left = list::side_arg(&args[3])?;
            let to_left = list::side_arg(&args[4])?;
            Call {
                timeout: Some(timeout_arg(&args[5])?),
                op: Op::Move {
                    src: args[1].clone(),
                    dst: args[2].clone(),
                    from_left,
                    to_left,
                },
            }
        }
        b"BRPOPLPUSH" => Call {
            timeout: Some(timeout_arg(&args[3])?),
            op: Op::Move {
                src: args[1].clone(),
                dst: args[2].clone(),
                from_left: false,
                to_left: true,
            },
        },
        b"BLMPOP" => {
            let timeout = timeout_arg(&args[1])?;
            let (keys, left, count) = list::parse_mpop(args, 2)?;
            Call {
                timeout: Some(timeout),
                op: Op::MPop { keys, left, count },
            }
        }
        b"BZPOPMIN" | b"BZPOPMAX" => Call {
            timeout: Some(timeout_arg(&args[last])?),
            op: Op::ZPop {
                keys: args[1..last].to_vec(),
                max: name == b"BZPOPMAX",
            },
        },
        b"BZMPOP" => {
            let timeout = timeout_arg(&args[1])?;
            let (keys, max, count) = zset::parse_mpop(args, 2)?;
            Call {
                timeout: Some(timeout),
                op: Op::ZMPop { keys, max, count },
            }
        }
        b"XREAD" => {
            let x = stream::parse_xread(args)?;
            Call {
                timeout: x.block,
                op: Op::XRead(x),
            }
        }
        _ => return Err(unknown_command(args)),
    };
    Ok(call)
}

/// BLPOP/BLMPOP's pop: `count` items from the first non-empty list among
/// `keys`, answered with `reply(key, items)`.
fn pop_first(
    ctx: &mut Ctx<'_>,
    keys: Vec<Bytes>,
    left: bool,
    count: usize,
    reply: fn(&Bytes, &[Bytes]) -> Frame,
) -> Result<Option<Served>, Frame> {
    for key in keys {
        if ctx.list(&key)?.is_some() {
            let items = list::pop_items(ctx, &key, left, count);
            let frame = reply(&key, &items);
            return Ok(Some(Served {
                frame,
                undo: Undo::Popped { key, items, left },
            }));
        }
    }
    Ok(None)
}

/// Tries the call now, on `only` (a key that became ready) or on all its
/// keys in order: the reply and how to undo it, `None` when it must wait.
fn try_serve(ctx: &mut Ctx<'_>, op: &Op, only: Option<&Bytes>) -> Result<Option<Served>, Frame> {
    let pick = |keys: &[Bytes]| -> Vec<Bytes> {
        match only {
            Some(k) => vec![k.clone()],
            None => keys.to_vec(),
        }
    };
    match op {
        Op::Pop { keys, left } => pop_first(ctx, pick(keys), *left, 1, |key, items| {
            array(vec![bulk(key.clone()), bulk(items[0].clone())])
        }),
        Op::Move {
            src,
            dst,
            from_left,
            to_left,
        } => {
            if ctx.list(src)?.is_none() {
                return Ok(None);
            }
            let item = list::move_one(ctx, src, dst, *from_left, *to_left)?;
            Ok(Some(Served {
                frame: bulk(item.clone()),
                undo: Undo::Moved {
                    src: src.clone(),
                    dst: dst.clone(),
                    item,
                    from_left: *from_left,
                    to_left: *to_left,
                },
            }))
        }
        Op::MPop { keys, left, count } => {
            pop_first(ctx, pick(keys), *left, *count, |key, items| {
                array(vec![
                    bulk(key.clone()),
                    array(items.iter().cloned().map(bulk).collect()),
                ])
            })
        }
        Op::ZPop { keys, max } => {
            for key in pick(keys) {
                if let Some(z) = ctx.zset_mut(&key)? {
                    let items = zset::pop(z, *max, 1);
                    ctx.changed(&key);
                    let (m, s) = items[0].clone();
                    return Ok(Some(Served {
                        frame: array(vec![bulk(key.clone()), bulk(m), double(s)]),
                        undo: Undo::ZPopped { key, items },
                    }));
                }
            }
            Ok(None)
        }
        Op::ZMPop { keys, max, count } => {
            for key in pick(keys) {
                if let Some(z) = ctx.zset_mut(&key)? {
                    let items = zset::pop(z, *max, *count);
                    ctx.changed(&key);
                    let pairs = items
                        .iter()
                        .map(|(m, s)| array(vec![bulk(m.clone()), double(*s)]))
                        .collect();
                    return Ok(Some(Served {
                        frame: array(vec![bulk(key.clone()), array(pairs)]),
                        undo: Undo::ZPopped { key, items },
                    }));
                }
            }
            Ok(None)
        }
        Op::XRead(x) => Ok(stream::xread_serve(ctx, x, only)?.map(|frame| Served {
            frame,
            undo: Undo::Nothing,
        })),
    }
}

/// Puts back what a served-but-abandoned waiter took.
fn undo(ctx: &mut Ctx<'_>, undo: Undo) {
    match undo {
        Undo::Nothing => {}
        Undo::Popped { key, items, left } => {
            if let Ok(list) = ctx.list_or_new(&key) {
                for item in items.into_iter().rev() {
                    list.push(item, left);
                }
                ctx.changed(&key);
            }
        }
        Undo::Moved {
            src,
            dst,
            item,
            from_left,
            to_left,
        } => {
            // Only if the element is still where it was pushed: if someone
            // took it since, it was delivered, not lost.
            let still_there = matches!(ctx.list(&dst), Ok(Some(l))
                if (if to_left { l.items.front() } else { l.items.back() }) == Some(&item));
            if still_there {
                list::pop_items(ctx, &dst, to_left, 1);
                if let Ok(list) = ctx.list_or_new(&src) {
                    list.push(item, from_left);
                    ctx.changed(&src);
                }
            }
        }
        Undo::ZPopped { key, items } => {
            if let Ok(z) = ctx.zset_or_new(&key) {
                for (m, s) in items {
                    if z.score(&m).is_none() {
                        z.insert(m, s);
                    }
                }
                ctx.changed(&key);
            }
        }
    }
}

/// Serves the waiters of every ready key, oldest first, in the order the
/// keys became ready (called before the engine lock is released).
pub(crate) fn serve_ready(ctx: &mut Ctx<'_>) {
    let own_db = ctx.db;
    while let Some((db, key)) = ctx.st.ready.pop_front() {
        let waiters: Vec<Arc<Waiter>> = ctx
            .st
            .blocked
            .by_key
            .get(&(db, key.clone()))
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        for waiter in waiters {
            ctx.db = db;
            let outcome = try_serve(ctx, &waiter.op, Some(&key));
            let served = match outcome {
                Ok(Some(served)) => served,
                Ok(None) => continue,
                Err(frame) => Served {
                    frame,
                    undo: Undo::Nothing,
                },
            };
            ctx.st.blocked.unregister(&waiter);
            *lock(&waiter.slot) = Some(served);
            waiter.notify.notify_one();
        }
    }
    ctx.db = own_db;
}

/// Runs a blocking command without waiting (inside EXEC, or through
/// `execute`): the reply now, or a null.
fn run_now(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let call = match parse(args) {
        Ok(c) => c,
        Err(e) => return e,
    };
    match try_serve(ctx, &call.op, None) {
        Ok(Some(served)) => served.frame,
        Ok(None) => null(),
        Err(e) => e,
    }
}

pub fn blpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    run_now(ctx, args)
}
pub fn brpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    run_now(ctx, args)
}
pub fn blmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    run_now(ctx, args)
}
pub fn brpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    run_now(ctx, args)
}
pub fn blmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    run_now(ctx, args)
}
pub fn bzpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    run_now(ctx, args)
}
pub fn bzpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    run_now(ctx, args)
}
pub fn bzmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    run_now(ctx, args)
}

/// Unregisters (and, if it was served but not returned, undoes) a waiter
/// whose call is dropped.
struct WaitGuard<'a> {
    store: &'a MemoryStore,
    waiter: Arc<Waiter>,
    finished: bool,
}

impl WaitGuard<'_> {
    /// The served reply, or the timeout's null.
    fn finish(mut self) -> Frame {
        self.finished = true;
        let waiter = Arc::clone(&self.waiter);
        self.store.with_ctx(waiter.db, |ctx| {
            ctx.st.blocked.unregister(&waiter);
            match lock(&waiter.slot).take() {
                Some(served) => served.frame,
                None => null(),
            }
        })
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let waiter = Arc::clone(&self.waiter);
        self.store.with_ctx(waiter.db, |ctx| {
            ctx.st.blocked.unregister(&waiter);
            let served = lock(&waiter.slot).take();
            if let Some(served) = served {
                undo(ctx, served.undo);
            }
        });
    }
}

pub(crate) async fn execute(store: &Arc<MemoryStore>, db: u32, args: &[Bytes]) -> Frame {
    let Some(command) = args.first().and_then(|name| commands::lookup(name)) else {
        return if args.is_empty() {
            error("ERR empty command")
        } else {
            unknown_command(args)
        };
    };
    if !commands::arity_ok(command.arity, args.len()) {
        return arity_error(&args[0]);
    }
    if command.kind != commands::CommandKind::Blocking {
        return store.execute(db, args).await;
    }
    let call = match parse(args) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let Some(timeout) = call.timeout else {
        // XREAD without BLOCK.
        return store.execute(db, args).await;
    };
    let deadline = (timeout > 0).then(|| now_ms().saturating_add(timeout));
    let registered = store.with_ctx(db, |ctx| match try_serve(ctx, &call.op, None) {
        Ok(Some(served)) => Err(served.frame),
        Err(e) => Err(e),
        Ok(None) => {
            let mut op = call.op.clone();
            if let Op::XRead(x) = &mut op {
                stream::resolve_last_ids(ctx, x);
            }
            let waiter = Arc::new(Waiter {
                db,
                keys: op.keys(),
                op,
                slot: Mutex::new(None),
                notify: Notify::new(),
            });
            ctx.st.blocked.register(&waiter);
            Ok(waiter)
        }
    });
    store.apply_cache_ops().await;
    let waiter = match registered {
        Ok(w) => w,
        Err(frame) => return frame,
    };
    let guard = WaitGuard {
        store,
        waiter: Arc::clone(&waiter),
        finished: false,
    };
    let notified = waiter.notify.notified();
    match deadline {
        Some(at) => {
            let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
            let _ = tokio::time::timeout(wait, notified).await;
        }
        None => notified.await,
    }
    let frame = guard.finish();
    store.apply_cache_ops().await;
    frame
}

/// XREAD's BLOCK argument: milliseconds, an integer, not negative.
pub fn block_ms_arg(arg: &[u8]) -> Result<i64, Frame> {
    let ms = int_arg(arg).map_err(|_| error("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(error(errors::TIMEOUT_NEGATIVE));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::backend::memory::tests::{Harness, args};

    #[tokio::test]
    async fn waiters_are_served_in_fifo_order() {
        let h = Harness::new();
        let store = Arc::clone(&h.store);
        let first = tokio::spawn({
            let store = Arc::clone(&store);
            async move { store.execute_blocking(0, &args("BLPOP q 0")).await }
        });
        h.wait_for_waiters("q", 1).await;
        let second = tokio::spawn({
            let store = Arc::clone(&store);
            async move { store.execute_blocking(0, &args("BLPOP q 0")).await }
        });
        h.wait_for_waiters("q", 2).await;
        h.is("RPUSH q a b c", ":3").await;
        assert_eq!(h.render(&first.await.unwrap()), "[$q, $a]");
        assert_eq!(h.render(&second.await.unwrap()), "[$q, $b]");
        h.is("LRANGE q 0 -1", "[$c]").await;
    }

    #[tokio::test]
    async fn timeouts_and_cancellation_lose_nothing() {
        let h = Harness::new();
        let reply = h.store.execute_blocking(0, &args("BRPOP q 0.05")).await;
        assert_eq!(h.render(&reply), "_");
        h.is("BLPOP q -1", "-ERR timeout is negative").await;
        // Beyond a long long of milliseconds: Redis's cast makes it negative.
        h.is("BLPOP q 1e99", "-ERR timeout is negative").await;
        h.is("BLPOP q inf", "-ERR timeout is negative").await;
        h.is("BLPOP q -inf", "-ERR timeout is negative").await;
        h.is("BLPOP q nan", "-ERR timeout is not a float or out of range")
            .await;
        h.is("BLPOP q x", "-ERR timeout is not a float or out of range")
            .await;
        // A dropped call takes nothing, even if it was served meanwhile.
        let store = Arc::clone(&h.store);
        let task = tokio::spawn(async move {
            store
                .execute_blocking(0, &args("BLMOVE q d LEFT RIGHT 0"))
                .await
        });
        h.wait_for_waiters("q", 1).await;
        task.abort();
        let _ = task.await;
        h.is("RPUSH q a", ":1").await;
        h.is("LRANGE q 0 -1", "[$a]").await;
        h.is("EXISTS d", ":0").await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
