//! Every command the memory store runs, in one sorted list ([`SUPPORTED`]),
//! with its arity and how it is reached; dispatch; and the argument parsing
//! shared by many commands.

use bytes::Bytes;

use super::{Ctx, blocking, hash, keys, list, pubsub, set, stream, strings, zset};
use crate::protocol::Frame;
use crate::protocol::reply::{error, ok};
use crate::semantics::errors;
use crate::semantics::number::parse_i64;

/// How a command reaches the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// [`MemoryStore::execute`](super::MemoryStore::execute) (and inside EXEC).
    Plain,
    /// [`MemoryStore::execute_blocking`](super::MemoryStore::execute_blocking)
    /// to wait; `execute` and EXEC answer at once, as Redis inside MULTI.
    Blocking,
    /// Through a [`Subscriber`](super::Subscriber).
    Subscribe,
    /// MULTI/EXEC/DISCARD/WATCH/UNWATCH: the session queues, then calls
    /// [`MemoryStore::watch`](super::MemoryStore::watch) and
    /// [`MemoryStore::exec`](super::MemoryStore::exec).
    Transaction,
}

type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> Frame;

/// One supported command.
pub struct MemoryCommand {
    /// Upper case; a subcommand is `CONTAINER|SUB`, as in the command table.
    pub name: &'static str,
    /// Redis's arity: exact when positive, a minimum when negative.
    pub arity: i32,
    pub kind: CommandKind,
    run: Option<Handler>,
}

impl std::fmt::Debug for MemoryCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCommand")
            .field("name", &self.name)
            .field("arity", &self.arity)
            .field("kind", &self.kind)
            .finish()
    }
}

use CommandKind::*;

const fn cmd(name: &'static str, arity: i32, run: Handler) -> MemoryCommand {
    MemoryCommand {
        name,
        arity,
        kind: Plain,
        run: Some(run),
    }
}

const fn blocking(name: &'static str, arity: i32, run: Handler) -> MemoryCommand {
    MemoryCommand {
        name,
        arity,
        kind: Blocking,
        run: Some(run),
    }
}

const fn session(name: &'static str, arity: i32, kind: CommandKind) -> MemoryCommand {
    MemoryCommand {
        name,
        arity,
        kind,
        run: None,
    }
}

/// Every command the memory store supports, sorted by name.
#[rustfmt::skip]
pub static SUPPORTED: &[MemoryCommand] = &[
    cmd("APPEND", 3, strings::append),
    blocking("BLMOVE", 6, blocking::blmove),
    blocking("BLMPOP", -5, blocking::blmpop),
    blocking("BLPOP", -3, blocking::blpop),
    blocking("BRPOP", -3, blocking::brpop),
    blocking("BRPOPLPUSH", 4, blocking::brpoplpush),
    blocking("BZMPOP", -5, blocking::bzmpop),
    blocking("BZPOPMAX", -3, blocking::bzpopmax),
    blocking("BZPOPMIN", -3, blocking::bzpopmin),
    cmd("COPY", -3, keys::copy),
    cmd("DBSIZE", 1, keys::dbsize),
    cmd("DECR", 2, strings::decr),
    cmd("DECRBY", 3, strings::decrby),
    cmd("DEL", -2, keys::del),
    session("DISCARD", 1, Transaction),
    cmd("ECHO", 2, keys::echo),
    session("EXEC", 1, Transaction),
    cmd("EXISTS", -2, keys::exists),
    cmd("EXPIRE", -3, keys::expire),
    cmd("EXPIREAT", -3, keys::expireat),
    cmd("EXPIRETIME", 2, keys::expiretime),
    cmd("FLUSHALL", -1, keys::flushall),
    cmd("FLUSHDB", -1, keys::flushdb),
    cmd("GET", 2, strings::get),
    cmd("GETDEL", 2, strings::getdel),
    cmd("GETEX", -2, strings::getex),
    cmd("GETRANGE", 4, strings::getrange),
    cmd("GETSET", 3, strings::getset),
    cmd("HDEL", -3, hash::hdel),
    cmd("HEXISTS", 3, hash::hexists),
    cmd("HGET", 3, hash::hget),
    cmd("HGETALL", 2, hash::hgetall),
    cmd("HINCRBY", 4, hash::hincrby),
    cmd("HKEYS", 2, hash::hkeys),
    cmd("HLEN", 2, hash::hlen),
    cmd("HMGET", -3, hash::hmget),
    cmd("HMSET", -4, hash::hmset),
    cmd("HRANDFIELD", -2, hash::hrandfield),
    cmd("HSCAN", -3, hash::hscan),
    cmd("HSET", -4, hash::hset),
    cmd("HSETNX", 4, hash::hsetnx),
    cmd("HSTRLEN", 3, hash::hstrlen),
    cmd("HVALS", 2, hash::hvals),
    cmd("INCR", 2, strings::incr),
    cmd("INCRBY", 3, strings::incrby),
    cmd("KEYS", 2, keys::keys),
    cmd("LINDEX", 3, list::lindex),
    cmd("LLEN", 2, list::llen),
    cmd("LMOVE", 5, list::lmove),
    cmd("LMPOP", -4, list::lmpop),
    cmd("LPOP", -2, list::lpop),
    cmd("LPUSH", -3, list::lpush),
    cmd("LPUSHX", -3, list::lpushx),
    cmd("LRANGE", 4, list::lrange),
    cmd("LSET", 4, list::lset),
    cmd("LTRIM", 4, list::ltrim),
    cmd("MGET", -2, strings::mget),
    cmd("MOVE", 3, keys::move_),
    cmd("MSET", -3, strings::mset),
    cmd("MSETNX", -3, strings::msetnx),
    session("MULTI", 1, Transaction),
    cmd("PERSIST", 2, keys::persist),
    cmd("PEXPIRE", -3, keys::pexpire),
    cmd("PEXPIREAT", -3, keys::pexpireat),
    cmd("PEXPIRETIME", 2, keys::pexpiretime),
    cmd("PING", -1, keys::ping),
    cmd("PSETEX", 4, strings::psetex),
    session("PSUBSCRIBE", -2, Subscribe),
    cmd("PTTL", 2, keys::pttl),
    cmd("PUBLISH", 3, pubsub::publish),
    cmd("PUBSUB", -2, pubsub::pubsub),
    cmd("PUBSUB|CHANNELS", -2, pubsub::pubsub),
    cmd("PUBSUB|HELP", 2, pubsub::pubsub),
    cmd("PUBSUB|NUMPAT", 2, pubsub::pubsub),
    cmd("PUBSUB|NUMSUB", -2, pubsub::pubsub),
    cmd("PUBSUB|SHARDCHANNELS", -2, pubsub::pubsub),
    cmd("PUBSUB|SHARDNUMSUB", -2, pubsub::pubsub),
    session("PUNSUBSCRIBE", -1, Subscribe),
    cmd("RANDOMKEY", 1, keys::randomkey),
    cmd("RENAME", 3, keys::rename),
    cmd("RENAMENX", 3, keys::renamenx),
    cmd("RPOP", -2, list::rpop),
    cmd("RPOPLPUSH", 3, list::rpoplpush),
    cmd("RPUSH", -3, list::rpush),
    cmd("RPUSHX", -3, list::rpushx),
    cmd("SADD", -3, set::sadd),
    cmd("SCAN", -2, keys::scan),
    cmd("SCARD", 2, set::scard),
    cmd("SDIFF", -2, set::sdiff),
    cmd("SDIFFSTORE", -3, set::sdiffstore),
    cmd("SELECT", 2, select),
    cmd("SET", -3, strings::set),
    cmd("SETEX", 4, strings::setex),
    cmd("SETNX", 3, strings::setnx),
    cmd("SETRANGE", 4, strings::setrange),
    cmd("SINTER", -2, set::sinter),
    cmd("SINTERCARD", -3, set::sintercard),
    cmd("SINTERSTORE", -3, set::sinterstore),
    cmd("SISMEMBER", 3, set::sismember),
    cmd("SMEMBERS", 2, set::smembers),
    cmd("SMISMEMBER", -3, set::smismember),
    cmd("SMOVE", 4, set::smove),
    cmd("SPOP", -2, set::spop),
    cmd("SRANDMEMBER", -2, set::srandmember),
    cmd("SREM", -3, set::srem),
    cmd("SSCAN", -3, set::sscan),
    cmd("STRLEN", 2, strings::strlen),
    session("SUBSCRIBE", -2, Subscribe),
    cmd("SUBSTR", 4, strings::getrange),
    cmd("SUNION", -2, set::sunion),
    cmd("SUNIONSTORE", -3, set::sunionstore),
    cmd("TIME", 1, keys::time),
    cmd("TOUCH", -2, keys::touch),
    cmd("TTL", 2, keys::ttl),
    cmd("TYPE", 2, keys::type_),
    cmd("UNLINK", -2, keys::del),
    session("UNSUBSCRIBE", -1, Subscribe),
    session("UNWATCH", 1, Transaction),
    session("WATCH", -2, Transaction),
    cmd("XADD", -5, stream::xadd),
    cmd("XDEL", -3, stream::xdel),
    cmd("XLEN", 2, stream::xlen),
    cmd("XRANGE", -4, stream::xrange),
    blocking("XREAD", -4, stream::xread),
    cmd("XREVRANGE", -4, stream::xrevrange),
    cmd("XTRIM", -4, stream::xtrim),
    cmd("ZADD", -4, zset::zadd),
    cmd("ZCARD", 2, zset::zcard),
    cmd("ZCOUNT", 4, zset::zcount),
    cmd("ZDIFF", -3, zset::zdiff),
    cmd("ZDIFFSTORE", -4, zset::zdiffstore),
    cmd("ZINCRBY", 4, zset::zincrby),
    cmd("ZINTER", -3, zset::zinter),
    cmd("ZINTERCARD", -3, zset::zintercard),
    cmd("ZINTERSTORE", -4, zset::zinterstore),
    cmd("ZLEXCOUNT", 4, zset::zlexcount),
    cmd("ZMPOP", -4, zset::zmpop),
    cmd("ZMSCORE", -3, zset::zmscore),
    cmd("ZPOPMAX", -2, zset::zpopmax),
    cmd("ZPOPMIN", -2, zset::zpopmin),
    cmd("ZRANDMEMBER", -2, zset::zrandmember),
    cmd("ZRANGE", -4, zset::zrange),
    cmd("ZRANGEBYLEX", -4, zset::zrangebylex),
    cmd("ZRANGEBYSCORE", -4, zset::zrangebyscore),
    cmd("ZRANGESTORE", -5, zset::zrangestore),
    cmd("ZRANK", 3, zset::zrank),
    cmd("ZREM", -3, zset::zrem),
    cmd("ZREMRANGEBYLEX", 4, zset::zremrangebylex),
    cmd("ZREMRANGEBYRANK", 4, zset::zremrangebyrank),
    cmd("ZREMRANGEBYSCORE", 4, zset::zremrangebyscore),
    cmd("ZREVRANGE", -4, zset::zrevrange),
    cmd("ZREVRANGEBYLEX", -4, zset::zrevrangebylex),
    cmd("ZREVRANGEBYSCORE", -4, zset::zrevrangebyscore),
    cmd("ZREVRANK", 3, zset::zrevrank),
    cmd("ZSCAN", -3, zset::zscan),
    cmd("ZSCORE", 3, zset::zscore),
    cmd("ZUNION", -3, zset::zunion),
    cmd("ZUNIONSTORE", -4, zset::zunionstore),
];

/// The row for `name` (any case), subcommands excluded.
pub fn lookup(name: &[u8]) -> Option<&'static MemoryCommand> {
    // Compared upper-cased byte by byte: no allocation per command.
    let upper = name.iter().map(u8::to_ascii_uppercase);
    SUPPORTED
        .binary_search_by(|c| c.name.bytes().cmp(upper.clone()))
        .ok()
        .map(|i| &SUPPORTED[i])
}

/// Whether the store runs the command the table names `name` (a
/// subcommand, `PUBSUB|CHANNELS`, by its container's row).
pub fn supports(name: &str) -> bool {
    lookup(name.split('|').next().unwrap_or(name).as_bytes()).is_some()
}

/// Whether `args` has the number of arguments `arity` allows.
pub fn arity_ok(arity: i32, argc: usize) -> bool {
    if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= arity.unsigned_abs() as usize
    }
}

/// Runs one command under the engine lock.
pub(crate) fn dispatch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(name) = args.first() else {
        return error("ERR empty command");
    };
    let Some(command) = lookup(name) else {
        return unknown_command(args);
    };
    if !arity_ok(command.arity, args.len()) {
        return arity_error(name);
    }
    match command.run {
        Some(run) => run(ctx, args),
        None => error(format!(
            "ERR sealcache: {} is run by the session, not by the memory store",
            command.name
        )),
    }
}

/// Redis's reply to a command it does not know.
pub fn unknown_command(args: &[Bytes]) -> Frame {
    let mut shown = String::new();
    for arg in &args[1..] {
        if shown.len() >= 128 {
            break;
        }
        let room = 128 - shown.len();
        let text = String::from_utf8_lossy(arg);
        let text: String = text.chars().take(room).collect();
        shown.push_str(&format!("'{text}' "));
    }
    let name: String = String::from_utf8_lossy(&args[0])
        .chars()
        .take(128)
        .collect();
    error(
        format!("ERR unknown command '{name}', with args beginning with: {shown}")
            .replace(['\r', '\n'], " "),
    )
}

pub fn arity_error(name: &[u8]) -> Frame {
    error(errors::wrong_arity(&String::from_utf8_lossy(name)))
}

/// An integer argument (Redis's `getLongLongFromObjectOrReply`).
pub fn int_arg(arg: &[u8]) -> Result<i64, Frame> {
    parse_i64(arg).ok_or_else(|| error(errors::NOT_INTEGER))
}

/// A count that must not be negative (`getPositiveLongFromObjectOrReply`:
/// a non-integer gets the same message).
pub fn positive_arg(arg: &[u8]) -> Result<i64, Frame> {
    match parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n),
        _ => Err(error(errors::MUST_BE_POSITIVE)),
    }
}

/// LMPOP/ZMPOP's (and their blocking forms') `numkeys key… END [COUNT n]`
/// from `args[at]`: the keys, the end as `end` reads it (LEFT|RIGHT,
/// MIN|MAX) and the count.
pub fn mpop_args(
    args: &[Bytes],
    at: usize,
    end: fn(&[u8]) -> Result<bool, Frame>,
) -> Result<(Vec<Bytes>, bool, usize), Frame> {
    let numkeys = count_arg(&args[at], "numkeys should be greater than 0")? as usize;
    let end_at = at.saturating_add(numkeys).saturating_add(1);
    if end_at >= args.len() {
        return Err(error(errors::SYNTAX));
    }
    let end = end(&args[end_at])?;
    let mut count = None;
    let mut j = end_at + 1;
    while j < args.len() {
        if count.is_none() && args[j].eq_ignore_ascii_case(b"COUNT") && j + 1 < args.len() {
            j += 1;
            count = Some(count_arg(&args[j], "count should be greater than 0")? as usize);
        } else {
            return Err(error(errors::SYNTAX));
        }
        j += 1;
    }
    Ok((args[at + 1..end_at].to_vec(), end, count.unwrap_or(1)))
}

/// The count of HRANDFIELD, SRANDMEMBER and ZRANDMEMBER
/// (`getRangeLongFromObjectOrReply(…, -LONG_MAX, LONG_MAX, …)`).
pub fn random_count_arg(arg: &[u8]) -> Result<i64, Frame> {
    crate::semantics::number::random_count(arg).map_err(error)
}

/// The count and `flag` (WITHVALUES, WITHSCORES) of HRANDFIELD and
/// ZRANDMEMBER, checked in Redis's order: the count, the flag, then the
/// count's tighter bound with the flag (`LONG_MAX / 2`).
pub fn random_count_and_flag(args: &[Bytes], flag: &[u8]) -> Result<(i64, bool), Frame> {
    crate::semantics::number::random_count_and_flag(args, flag).map_err(error)
}

/// A count in `1..` (`getRangeLongFromObjectOrReply(…, 1, LONG_MAX, …)`),
/// with the command's own message for zero or less.
pub fn count_arg(arg: &[u8], message: &str) -> Result<i64, Frame> {
    match parse_i64(arg) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(error(format!("ERR {message}"))),
    }
}

/// A database index for SELECT, MOVE and COPY … DB.
pub(crate) fn db_index_arg(ctx: &Ctx<'_>, arg: &[u8]) -> Result<u32, Frame> {
    let index = parse_i64(arg)
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| error(errors::NOT_INTEGER))?;
    u32::try_from(index)
        .ok()
        .filter(|i| *i < ctx.dbs())
        .ok_or_else(|| error(errors::DB_OUT_OF_RANGE))
}

/// SELECT inside EXEC: later queued commands run in the new database.
fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match db_index_arg(ctx, &args[1]) {
        Ok(db) => {
            ctx.db = db;
            ok()
        }
        Err(e) => e,
    }
}

/// The options of SCAN, HSCAN, SSCAN and ZSCAN.
#[derive(Debug, Default)]
pub struct ScanOptions {
    pub count: usize,
    /// None for no pattern (a lone `*` is no pattern, as in Redis).
    pub pattern: Option<Bytes>,
    pub type_name: Option<Bytes>,
}

pub fn scan_options(args: &[Bytes], keyspace: bool) -> Result<ScanOptions, Frame> {
    let mut opts = ScanOptions {
        count: 10,
        ..ScanOptions::default()
    };
    let mut i = 0;
    while i < args.len() {
        let more = args.len() - i >= 2;
        let opt = &args[i];
        if opt.eq_ignore_ascii_case(b"COUNT") && more {
            let count = int_arg(&args[i + 1])?;
            if count < 1 {
                return Err(error(errors::SYNTAX));
            }
            opts.count = usize::try_from(count).unwrap_or(usize::MAX);
        } else if opt.eq_ignore_ascii_case(b"MATCH") && more {
            let pattern = &args[i + 1];
            opts.pattern = (pattern.as_ref() != b"*").then(|| pattern.clone());
        } else if opt.eq_ignore_ascii_case(b"TYPE") && keyspace && more {
            opts.type_name = Some(args[i + 1].clone());
        } else {
            return Err(error(errors::SYNTAX));
        }
        i += 2;
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_is_sorted_and_unique() {
        for pair in SUPPORTED.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        assert!(lookup(b"get").is_some());
        assert!(lookup(b"nosuch").is_none());
    }

    /// Every row agrees with the proxy's command table on arity.
    #[test]
    fn arities_match_the_command_table() {
        for c in SUPPORTED {
            let (name, sub) = match c.name.split_once('|') {
                Some((n, s)) => (n, Some(s.as_bytes())),
                None => (c.name, None),
            };
            let row = crate::commands::lookup(name.as_bytes(), sub)
                .unwrap_or_else(|| panic!("{} has no command-table row", c.name));
            assert_eq!(i32::from(row.arity), c.arity, "{}", c.name);
        }
    }
}
