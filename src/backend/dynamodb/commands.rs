//! Every command the DynamoDB store runs, in one sorted list
//! ([`SUPPORTED`]: name, arity, whether it writes), dispatch, and the
//! argument parsing many commands share. A command missing here is refused
//! by sealcache with the backend contract's capability error.

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::tx::{Fail, Tx, finish, reply_err, transact};
use super::{DynamoStore, hash, keys, list, scan, set, strings, zset};
use crate::protocol::Frame;
use crate::semantics::errors;
use crate::semantics::number::parse_i64;

/// One supported command.
#[derive(Debug)]
pub struct DynamoCommand {
    /// Upper case.
    pub name: &'static str,
    /// Redis's arity: exact when positive, a minimum when negative.
    pub arity: i32,
    /// Whether it may write (its reads are then always strongly consistent).
    pub write: bool,
    op: Op,
}

impl DynamoCommand {
    fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Append,
    Copy,
    DbSize,
    Del,
    Exists,
    Expire { millis: bool, at: bool },
    ExpireTime { millis: bool },
    FlushAll,
    FlushDb,
    Get,
    GetDel,
    GetEx,
    GetRange,
    GetSet,
    HDel,
    HExists,
    HGet,
    HGetAll,
    HIncrBy,
    HKeys,
    HLen,
    HMGet,
    HMSet,
    HRandField,
    HScan,
    HSet,
    HSetNx,
    HStrLen,
    HVals,
    IncrBy { sign: i64, by_arg: bool },
    Keys,
    LIndex,
    LLen,
    LMove,
    Pop { left: bool },
    Push { left: bool, existing: bool },
    LRange,
    LSet,
    LTrim,
    MGet,
    MSet,
    MSetNx,
    Persist,
    Ping,
    RandomKey,
    Rename { nx: bool },
    RPopLPush,
    SAdd,
    Scan,
    SCard,
    SetAlgebra { op: set::SetOp, store: bool },
    Set,
    SetEx { millis: bool },
    SetNx,
    SetRange,
    SInterCard,
    SIsMember,
    SMembers,
    SMIsMember,
    SMove,
    SPop,
    SRandMember,
    SRem,
    SScan,
    StrLen,
    Ttl { millis: bool },
    Type,
    ZAdd { incr: bool },
    ZCard,
    ZCount,
    ZMScore,
    ZPop { max: bool },
    ZRange(zset::RangeForm),
    ZRangeStore,
    ZRank { rev: bool },
    ZRem,
    ZRemRange { by_score: bool },
    ZScan,
    ZScore,
}

const fn r(name: &'static str, arity: i32, op: Op) -> DynamoCommand {
    DynamoCommand {
        name,
        arity,
        write: false,
        op,
    }
}

const fn w(name: &'static str, arity: i32, op: Op) -> DynamoCommand {
    DynamoCommand {
        name,
        arity,
        write: true,
        op,
    }
}

use zset::RangeForm;

/// Every command the DynamoDB store supports, sorted by name.
#[rustfmt::skip]
pub static SUPPORTED: &[DynamoCommand] = &[
    w("APPEND", 3, Op::Append),
    w("COPY", -3, Op::Copy),
    r("DBSIZE", 1, Op::DbSize),
    w("DECR", 2, Op::IncrBy { sign: -1, by_arg: false }),
    w("DECRBY", 3, Op::IncrBy { sign: -1, by_arg: true }),
    w("DEL", -2, Op::Del),
    r("EXISTS", -2, Op::Exists),
    w("EXPIRE", -3, Op::Expire { millis: false, at: false }),
    w("EXPIREAT", -3, Op::Expire { millis: false, at: true }),
    r("EXPIRETIME", 2, Op::ExpireTime { millis: false }),
    w("FLUSHALL", -1, Op::FlushAll),
    w("FLUSHDB", -1, Op::FlushDb),
    r("GET", 2, Op::Get),
    w("GETDEL", 2, Op::GetDel),
    w("GETEX", -2, Op::GetEx),
    r("GETRANGE", 4, Op::GetRange),
    w("GETSET", 3, Op::GetSet),
    w("HDEL", -3, Op::HDel),
    r("HEXISTS", 3, Op::HExists),
    r("HGET", 3, Op::HGet),
    r("HGETALL", 2, Op::HGetAll),
    w("HINCRBY", 4, Op::HIncrBy),
    r("HKEYS", 2, Op::HKeys),
    r("HLEN", 2, Op::HLen),
    r("HMGET", -3, Op::HMGet),
    w("HMSET", -4, Op::HMSet),
    r("HRANDFIELD", -2, Op::HRandField),
    r("HSCAN", -3, Op::HScan),
    w("HSET", -4, Op::HSet),
    w("HSETNX", 4, Op::HSetNx),
    r("HSTRLEN", 3, Op::HStrLen),
    r("HVALS", 2, Op::HVals),
    w("INCR", 2, Op::IncrBy { sign: 1, by_arg: false }),
    w("INCRBY", 3, Op::IncrBy { sign: 1, by_arg: true }),
    r("KEYS", 2, Op::Keys),
    r("LINDEX", 3, Op::LIndex),
    r("LLEN", 2, Op::LLen),
    w("LMOVE", 5, Op::LMove),
    w("LPOP", -2, Op::Pop { left: true }),
    w("LPUSH", -3, Op::Push { left: true, existing: false }),
    w("LPUSHX", -3, Op::Push { left: true, existing: true }),
    r("LRANGE", 4, Op::LRange),
    w("LSET", 4, Op::LSet),
    w("LTRIM", 4, Op::LTrim),
    r("MGET", -2, Op::MGet),
    w("MSET", -3, Op::MSet),
    w("MSETNX", -3, Op::MSetNx),
    w("PERSIST", 2, Op::Persist),
    w("PEXPIRE", -3, Op::Expire { millis: true, at: false }),
    w("PEXPIREAT", -3, Op::Expire { millis: true, at: true }),
    r("PEXPIRETIME", 2, Op::ExpireTime { millis: true }),
    r("PING", -1, Op::Ping),
    w("PSETEX", 4, Op::SetEx { millis: true }),
    r("PTTL", 2, Op::Ttl { millis: true }),
    r("RANDOMKEY", 1, Op::RandomKey),
    w("RENAME", 3, Op::Rename { nx: false }),
    w("RENAMENX", 3, Op::Rename { nx: true }),
    w("RPOP", -2, Op::Pop { left: false }),
    w("RPOPLPUSH", 3, Op::RPopLPush),
    w("RPUSH", -3, Op::Push { left: false, existing: false }),
    w("RPUSHX", -3, Op::Push { left: false, existing: true }),
    w("SADD", -3, Op::SAdd),
    r("SCAN", -2, Op::Scan),
    r("SCARD", 2, Op::SCard),
    r("SDIFF", -2, Op::SetAlgebra { op: set::SetOp::Diff, store: false }),
    w("SDIFFSTORE", -3, Op::SetAlgebra { op: set::SetOp::Diff, store: true }),
    w("SET", -3, Op::Set),
    w("SETEX", 4, Op::SetEx { millis: false }),
    w("SETNX", 3, Op::SetNx),
    w("SETRANGE", 4, Op::SetRange),
    r("SINTER", -2, Op::SetAlgebra { op: set::SetOp::Inter, store: false }),
    r("SINTERCARD", -3, Op::SInterCard),
    w("SINTERSTORE", -3, Op::SetAlgebra { op: set::SetOp::Inter, store: true }),
    r("SISMEMBER", 3, Op::SIsMember),
    r("SMEMBERS", 2, Op::SMembers),
    r("SMISMEMBER", -3, Op::SMIsMember),
    w("SMOVE", 4, Op::SMove),
    w("SPOP", -2, Op::SPop),
    r("SRANDMEMBER", -2, Op::SRandMember),
    w("SREM", -3, Op::SRem),
    r("SSCAN", -3, Op::SScan),
    r("STRLEN", 2, Op::StrLen),
    r("SUBSTR", 4, Op::GetRange),
    r("SUNION", -2, Op::SetAlgebra { op: set::SetOp::Union, store: false }),
    w("SUNIONSTORE", -3, Op::SetAlgebra { op: set::SetOp::Union, store: true }),
    r("TOUCH", -2, Op::Exists),
    r("TTL", 2, Op::Ttl { millis: false }),
    r("TYPE", 2, Op::Type),
    w("UNLINK", -2, Op::Del),
    w("ZADD", -4, Op::ZAdd { incr: false }),
    r("ZCARD", 2, Op::ZCard),
    r("ZCOUNT", 4, Op::ZCount),
    w("ZINCRBY", 4, Op::ZAdd { incr: true }),
    r("ZMSCORE", -3, Op::ZMScore),
    w("ZPOPMAX", -2, Op::ZPop { max: true }),
    w("ZPOPMIN", -2, Op::ZPop { max: false }),
    r("ZRANGE", -4, Op::ZRange(RangeForm::Range)),
    r("ZRANGEBYSCORE", -4, Op::ZRange(RangeForm::ByScore)),
    w("ZRANGESTORE", -5, Op::ZRangeStore),
    r("ZRANK", 3, Op::ZRank { rev: false }),
    w("ZREM", -3, Op::ZRem),
    w("ZREMRANGEBYRANK", 4, Op::ZRemRange { by_score: false }),
    w("ZREMRANGEBYSCORE", 4, Op::ZRemRange { by_score: true }),
    r("ZREVRANGE", -4, Op::ZRange(RangeForm::RevRange)),
    r("ZREVRANGEBYSCORE", -4, Op::ZRange(RangeForm::RevByScore)),
    r("ZREVRANK", 3, Op::ZRank { rev: true }),
    r("ZSCAN", -3, Op::ZScan),
    r("ZSCORE", 3, Op::ZScore),
];

/// The supported command named `name` (any case).
pub fn lookup(name: &[u8]) -> Option<&'static DynamoCommand> {
    let upper = name.to_ascii_uppercase();
    SUPPORTED
        .binary_search_by(|c| c.name.as_bytes().cmp(&upper))
        .ok()
        .map(|i| &SUPPORTED[i])
}

/// PING reaches the table (a DescribeTable, which costs no capacity), so a
/// PONG says DynamoDB answers: the fallback layer's probe relies on it.
async fn ping(store: &DynamoStore, _db: u32, args: &[Bytes]) -> Result<Frame, Fail> {
    use futures_util::FutureExt as _;
    if args.len() > 2 {
        return Err(reply_err(errors::wrong_arity("ping")));
    }
    store.counts.count(super::client::Op::DescribeTable);
    store
        .client
        .describe_table()
        .table_name(&store.table)
        .send()
        .boxed()
        .await
        .map_err(|e| super::DynamoError::request(&store.at, "DescribeTable", &e))?;
    Ok(match args.get(1) {
        Some(message) => crate::protocol::reply::bulk(message.clone()),
        None => crate::protocol::reply::simple("PONG"),
    })
}

/// The command named `args[0]`, or the reply refusing it.
fn command(store: &DynamoStore, args: &[Bytes]) -> Result<&'static DynamoCommand, Fail> {
    let Some(name) = args.first() else {
        return Err(reply_err("ERR empty command"));
    };
    let Some(cmd) = lookup(name) else {
        return Err(reply_err(format!(
            "ERR sealcache: {} is not supported by the dynamodb backend '{}'",
            String::from_utf8_lossy(name).to_ascii_uppercase(),
            store.at.backend
        )));
    };
    if !cmd.arity_ok(args.len()) {
        return Err(reply_err(errors::wrong_arity(cmd.name)));
    }
    Ok(cmd)
}

/// Runs one command: its reply, Redis's errors included, or the failure of
/// DynamoDB itself.
pub(super) async fn dispatch(
    store: &DynamoStore,
    db: u32,
    args: &[Bytes],
) -> Result<Frame, super::DynamoError> {
    let cmd = match command(store, args) {
        Ok(cmd) => cmd,
        Err(e) => return finish(store, Err(e)),
    };
    // A command that does its own calls (batches, scans).
    macro_rules! direct {
        ($f:path $(, $extra:expr)*) => {
            finish(store, Box::pin($f(store, db, args $(, $extra)*)).await)
        };
    }
    match cmd.op {
        Op::DbSize => direct!(scan::dbsize),
        Op::Del => direct!(keys::del),
        Op::Exists => direct!(keys::exists),
        Op::FlushAll => direct!(scan::flush, true),
        Op::FlushDb => direct!(scan::flush, false),
        Op::HScan => direct!(scan::element_scan, super::item::Kind::Hash),
        Op::Keys => direct!(scan::keys),
        Op::Ping => direct!(ping),
        Op::MGet => direct!(strings::mget),
        Op::MSet => direct!(strings::mset),
        Op::RandomKey => direct!(scan::randomkey),
        Op::Scan => direct!(scan::scan),
        Op::Set => direct!(strings::set),
        Op::SScan => direct!(scan::element_scan, super::item::Kind::Set),
        Op::ZScan => direct!(scan::element_scan, super::item::Kind::ZSet),
        op => finish(
            store,
            transact!(store, db, cmd.write, |tx| in_tx(tx, op, args)),
        ),
    }
}

/// Runs a command inside `tx` (the `Native` writes and `Command` reads of
/// the read-modify-write primitive): its writes commit with the transaction's.
pub(super) async fn run_in(tx: &mut Tx<'_>, args: &[Bytes]) -> Result<Frame, Fail> {
    let cmd = command(tx.store, args)?;
    in_tx(tx, cmd.op, args).await
}

/// One command as part of an optimistic transaction.
fn in_tx<'a>(tx: &'a mut Tx<'_>, op: Op, args: &'a [Bytes]) -> BoxFuture<'a, Result<Frame, Fail>> {
    Box::pin(async move {
        match op {
            Op::Append => strings::append(tx, args).await,
            Op::Copy => keys::copy(tx, args).await,
            Op::Expire { millis, at } => keys::expire(tx, args, millis, at).await,
            Op::ExpireTime { millis } => keys::ttl(tx, args, millis, true).await,
            Op::Get => strings::get(tx, args).await,
            Op::GetDel => strings::getdel(tx, args).await,
            Op::GetEx => strings::getex(tx, args).await,
            Op::GetRange => strings::getrange(tx, args).await,
            Op::GetSet => strings::getset(tx, args).await,
            Op::HDel => hash::hdel(tx, args).await,
            Op::HExists => hash::hexists(tx, args).await,
            Op::HGet => hash::hget(tx, args).await,
            Op::HGetAll => hash::hgetall(tx, args).await,
            Op::HIncrBy => hash::hincrby(tx, args).await,
            Op::HKeys => hash::hkeys(tx, args).await,
            Op::HLen => hash::hlen(tx, args).await,
            Op::HMGet => hash::hmget(tx, args).await,
            Op::HMSet => hash::hset(tx, args, true).await,
            Op::HRandField => hash::hrandfield(tx, args).await,
            Op::HSet => hash::hset(tx, args, false).await,
            Op::HSetNx => hash::hsetnx(tx, args).await,
            Op::HStrLen => hash::hstrlen(tx, args).await,
            Op::HVals => hash::hvals(tx, args).await,
            Op::IncrBy { sign, by_arg } => strings::incrby(tx, args, sign, by_arg).await,
            Op::LIndex => list::lindex(tx, args).await,
            Op::LLen => list::llen(tx, args).await,
            Op::LMove => list::lmove(tx, args).await,
            Op::Pop { left } => list::pop(tx, args, left).await,
            Op::Push { left, existing } => list::push(tx, args, left, existing).await,
            Op::LRange => list::lrange(tx, args).await,
            Op::LSet => list::lset(tx, args).await,
            Op::LTrim => list::ltrim(tx, args).await,
            Op::MSetNx => strings::msetnx(tx, args).await,
            Op::Persist => keys::persist(tx, args).await,
            Op::Rename { nx } => keys::rename(tx, args, nx).await,
            Op::RPopLPush => list::rpoplpush(tx, args).await,
            Op::SAdd => set::sadd(tx, args).await,
            Op::SCard => set::scard(tx, args).await,
            Op::SetAlgebra { op, store: into } => set::setop(tx, args, op, into).await,
            Op::SetEx { millis } => strings::setex(tx, args, millis).await,
            Op::SetNx => strings::setnx(tx, args).await,
            Op::SetRange => strings::setrange(tx, args).await,
            Op::SInterCard => set::sintercard(tx, args).await,
            Op::SIsMember => set::sismember(tx, args).await,
            Op::SMembers => set::smembers(tx, args).await,
            Op::SMIsMember => set::smismember(tx, args).await,
            Op::SMove => set::smove(tx, args).await,
            Op::SPop => set::spop(tx, args).await,
            Op::SRandMember => set::srandmember(tx, args).await,
            Op::SRem => set::srem(tx, args).await,
            Op::StrLen => strings::strlen(tx, args).await,
            Op::Ttl { millis } => keys::ttl(tx, args, millis, false).await,
            Op::Type => keys::type_(tx, args).await,
            Op::ZAdd { incr } => zset::zadd(tx, args, incr).await,
            Op::ZCard => zset::zcard(tx, args).await,
            Op::ZCount => zset::zcount(tx, args).await,
            Op::ZMScore => zset::zmscore(tx, args).await,
            Op::ZPop { max } => zset::zpop(tx, args, max).await,
            Op::ZRange(form) => zset::zrange(tx, args, form).await,
            Op::ZRangeStore => zset::zrangestore(tx, args).await,
            Op::ZRank { rev } => zset::zrank(tx, args, rev).await,
            Op::ZRem => zset::zrem(tx, args).await,
            Op::ZRemRange { by_score } => zset::zremrange(tx, args, by_score).await,
            Op::ZScore => zset::zscore(tx, args).await,
            Op::Set => strings::set_in_tx(tx, args).await,
            Op::Del => keys::del_in_tx(tx, args).await,
            _ => Err(reply_err(format!(
                "ERR sealcache: {} runs in batches of its own and cannot be part of another command on the dynamodb backend",
                String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
            ))),
        }
    })
}

/// Whether `arg` is `word`, ignoring case.
pub(super) fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// An integer argument, or Redis's "value is not an integer" error.
pub(super) fn int(arg: &[u8]) -> Result<i64, Fail> {
    parse_i64(arg).ok_or_else(|| reply_err(errors::NOT_INTEGER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_unique() {
        for pair in SUPPORTED.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
        assert_eq!(lookup(b"zadd").map(|c| c.name), Some("ZADD"));
        assert!(lookup(b"BLPOP").is_none());
        assert!(lookup(b"SUBSCRIBE").is_none());
        assert!(lookup(b"MULTI").is_none());
        assert!(lookup(b"XADD").is_none());
    }
}
