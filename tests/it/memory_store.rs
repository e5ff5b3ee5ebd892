//! The memory store against the oracle: the same command scripts run on a
//! real redis-server (raw RESP3 and RESP2 connections) and on
//! `sealcache::backend::memory::MemoryStore`, and the replies are compared
//! byte for byte, the store's RESP3 frame rendered as the proxy renders it.
//! Replies Redis leaves unordered (SMEMBERS, HGETALL, SCAN pages…) are
//! compared as multisets of elements; nothing else is relaxed.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sealcache::backend::memory::{MemoryConfig, MemoryStore};
use sealcache::protocol::reply::{NullStyle, encode};
use sealcache::protocol::{Frame, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::support::endpoint::RawStream;
use super::support::{Certs, RedisServer, random_password};

/// A raw connection to redis-server that returns each reply's exact bytes.
struct Raw {
    stream: Box<dyn RawStream>,
    buf: BytesMut,
    resp3: bool,
}

impl Raw {
    async fn open(redis: &RedisServer, resp3: bool) -> Raw {
        let stream = redis.endpoint().without_auth().raw().await;
        let mut raw = Raw {
            stream,
            buf: BytesMut::new(),
            resp3: false,
        };
        let password = redis.password().to_owned();
        let hello = if resp3 {
            vec!["HELLO", "3", "AUTH", "default", &password]
        } else {
            vec!["AUTH", &password]
        };
        raw.send(
            &hello
                .iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect::<Vec<_>>(),
        )
        .await;
        raw.resp3 = resp3;
        let reply = raw.read().await;
        assert!(
            !reply.starts_with(b"-"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
        raw
    }

    async fn send(&mut self, args: &[Bytes]) {
        let mut out = Vec::new();
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream
            .write_all(&out)
            .await
            .expect("write to redis-server");
    }

    /// One whole reply, as sent.
    async fn read(&mut self) -> Vec<u8> {
        loop {
            if let Some(n) = frame_len(&self.buf, self.resp3) {
                return self.buf.split_to(n).to_vec();
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .expect("redis-server answers within 10 s")
                .expect("read from redis-server");
            assert!(n > 0, "redis-server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn call(&mut self, args: &[Bytes]) -> Vec<u8> {
        self.send(args).await;
        self.read().await
    }
}

/// The length of the complete frame at the start of `buf`, if there is one.
fn frame_len(buf: &[u8], resp3: bool) -> Option<usize> {
    if resp3 {
        redis_protocol::resp3::decode::complete::decode(buf)
            .expect("valid RESP3")
            .map(|(_, n)| n)
    } else {
        redis_protocol::resp2::decode::decode(buf)
            .expect("valid RESP2")
            .map(|(_, n)| n)
    }
}

fn args(line: &str) -> Vec<Bytes> {
    line.split_whitespace()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect()
}

fn upper(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_uppercase()
}

/// How the proxy picks RESP2's null for a command: the command table's null style.
fn null_style(args: &[Bytes]) -> NullStyle {
    sealcache::commands::Command::parse(args.to_vec())
        .map(|c| c.null_style())
        .unwrap_or(NullStyle::Bulk)
}

/// The RESP2 shapes Redis gives beyond the generic rendering, as the value
/// layer reshapes them: `[member, score]` pairs flattened, XREAD's map as
/// `[stream, entries]` pairs.
fn resp2_shape(args: &[Bytes], frame: Frame) -> Frame {
    let name = upper(&args[0]);
    let flatten = matches!(
        name.as_str(),
        "ZRANGE"
            | "ZRANGEBYSCORE"
            | "ZREVRANGE"
            | "ZREVRANGEBYSCORE"
            | "ZPOPMIN"
            | "ZPOPMAX"
            | "ZRANDMEMBER"
            | "ZUNION"
            | "ZINTER"
            | "ZDIFF"
            | "HRANDFIELD"
    );
    match frame {
        Frame::Array { data, attributes } if flatten => Frame::Array {
            data: data
                .into_iter()
                .flat_map(|item| match item {
                    Frame::Array { data, .. } => data,
                    other => vec![other],
                })
                .collect(),
            attributes,
        },
        Frame::Map { data, attributes } if name == "XREAD" => Frame::Array {
            data: data
                .into_iter()
                .map(|(k, v)| Frame::Array {
                    data: vec![k, v],
                    attributes: None,
                })
                .collect(),
            attributes,
        },
        other => other,
    }
}

/// The store's reply rendered for a client speaking `resp3` or RESP2.
fn render(args: &[Bytes], frame: Frame, resp3: bool) -> Vec<u8> {
    let mut out = BytesMut::new();
    if resp3 {
        encode(&mut out, &frame, None, Protocol::Resp3, NullStyle::Bulk);
    } else {
        let frame = resp2_shape(args, frame);
        encode(&mut out, &frame, None, Protocol::Resp2, null_style(args));
    }
    out.to_vec()
}

/// How a reply is unordered: groups of `chunk` elements in any order, at
/// the top level or (SCAN family) in the second element.
fn unordered(args: &[Bytes], resp3: bool) -> Option<(bool, usize)> {
    let name = upper(&args[0]);
    let has = |word: &str| args.iter().any(|a| upper(a) == word);
    match name.as_str() {
        "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF" | "KEYS" | "HKEYS" | "HVALS" => Some((false, 1)),
        "SPOP" | "SRANDMEMBER" if args.len() == 3 => Some((false, 1)),
        "PUBSUB" => Some((false, 1)),
        "HGETALL" => Some((false, 2)),
        "HRANDFIELD" | "ZRANDMEMBER" if args.len() >= 3 => {
            Some((false, if !resp3 && args.len() == 4 { 2 } else { 1 }))
        }
        "SCAN" | "SSCAN" => Some((true, 1)),
        "HSCAN" | "ZSCAN" => Some((true, 2)),
        _ => {
            let _ = has;
            None
        }
    }
}

/// `header` and the raw bytes of each element of the aggregate `raw`.
fn split(raw: &[u8], resp3: bool) -> (Vec<u8>, Vec<Vec<u8>>) {
    let line_end = raw
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a header line")
        + 2;
    let header = raw[..line_end].to_vec();
    let count: usize = std::str::from_utf8(&raw[1..line_end - 2])
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let count = if raw[0] == b'%' { count * 2 } else { count };
    let mut items = Vec::with_capacity(count);
    let mut at = line_end;
    for _ in 0..count {
        let n = frame_len(&raw[at..], resp3).expect("a whole element");
        items.push(raw[at..at + n].to_vec());
        at += n;
    }
    (header, items)
}

fn sorted_groups(raw: &[u8], resp3: bool, chunk: usize) -> Vec<u8> {
    if !matches!(raw.first(), Some(b'*' | b'~' | b'%')) {
        return raw.to_vec();
    }
    let (mut out, items) = split(raw, resp3);
    let mut groups: Vec<Vec<u8>> = items.chunks(chunk).map(|c| c.concat()).collect();
    groups.sort();
    out.extend(groups.concat());
    out
}

fn normalize(args: &[Bytes], raw: &[u8], resp3: bool) -> Vec<u8> {
    match unordered(args, resp3) {
        None => raw.to_vec(),
        Some((false, chunk)) => sorted_groups(raw, resp3, chunk),
        Some((true, _)) if raw.first() != Some(&b'*') => raw.to_vec(),
        Some((true, chunk)) => {
            let (mut out, items) = split(raw, resp3);
            out.extend_from_slice(&items[0]);
            out.extend(sorted_groups(&items[1], resp3, chunk));
            out
        }
    }
}

/// Runs `script` (one command a line; `#` starts a comment) on both, in
/// database 0 of a flushed server and a fresh store, and compares replies.
async fn compare(redis: &RedisServer, script: &str, resp3: bool) {
    let mut raw = Raw::open(redis, resp3).await;
    raw.call(&args("FLUSHALL")).await;
    let store = MemoryStore::new(MemoryConfig::default());
    for line in script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let args = args(line);
        let expected = raw.call(&args).await;
        let got = render(&args, store.execute(0, &args).await, resp3);
        assert_eq!(
            String::from_utf8_lossy(&normalize(&args, &got, resp3)),
            String::from_utf8_lossy(&normalize(&args, &expected, resp3)),
            "{} reply to `{line}` differs",
            if resp3 { "RESP3" } else { "RESP2" },
        );
    }
}

fn redis() -> RedisServer {
    let certs = Certs::generate();
    RedisServer::start_tls(&certs, &random_password(24))
}

const STRINGS: &str = "
    GET s
    SET s v
    GET s
    SET s w NX
    SET s w XX GET
    SET s x NX XX
    SET s x EX 0
    SET s x EX abc
    SET s x PX -5
    SET s x EX 10 PX 10
    SET s x EX 10 KEEPTTL
    SET s x KEEPTTL GET
    SET s x EX 100
    TTL s
    SET s y KEEPTTL
    TTL s
    SET s z EXAT 4102444800
    EXPIRETIME s
    SET s z PXAT 4102444800123
    PEXPIRETIME s
    SET s z
    TTL s
    PTTL s
    PTTL nothing
    SET s x FOO
    SET s x EX 9223372036854775807
    SET n2 v NX GET
    SETNX s a
    SETNX t a
    SETEX e 100 v
    TTL e
    SETEX e 0 v
    SETEX e x v
    PSETEX e 100000 v
    TTL e
    PSETEX e -1 v
    GETSET s new
    GETSET missing new
    GETDEL s
    GETDEL s
    GETEX t
    GETEX t EX 100
    TTL t
    GETEX t PERSIST
    TTL t
    GETEX t EX 10 PX 10
    GETEX t NX
    GETEX t EX 0
    GETEX t PXAT 1
    EXISTS t
    GETEX missing EX 10
    MSET a 1 b 2 c 3
    MSET a 1 b
    MGET a b c nope
    MSETNX a 1 z 2
    MSETNX y 1 z 2
    MGET y z
    LPUSH list x
    GET list
    MGET list a
    GETSET list v
    SET big 9223372036854775807
    INCR big
    DECR big
    INCRBY a 10
    DECRBY a 3
    DECRBY a -9223372036854775808
    INCR s0
    INCRBY a x
    SET f 1.5
    INCR f
    APPEND ap hello
    APPEND ap world
    STRLEN ap
    STRLEN nope
    GETRANGE ap 0 4
    GETRANGE ap -5 -1
    GETRANGE ap -1 -5
    GETRANGE ap 100 200
    GETRANGE nope 0 -1
    SUBSTR ap 1 3
    SETRANGE ap 5 _
    GET ap
    SETRANGE sr 3 ab
    GET sr
    SETRANGE sr -1 x
    SETRANGE sr 0 \"\"
    STRLEN list
    GET
    SET k
    GETEX
";

const KEYS: &str = "
    SET a 1
    SET b 2
    HSET h f v
    LPUSH l x
    SADD s m
    ZADD z 1 m
    XADD x 1-1 f v
    TYPE a
    TYPE h
    TYPE l
    TYPE s
    TYPE z
    TYPE x
    TYPE nope
    EXISTS a b nope a
    TOUCH a nope
    DEL a nope a
    UNLINK b
    KEYS *
    KEYS [hl]
    KEYS nothing*
    DBSIZE
    SCAN 0 COUNT 1000
    SCAN 0 COUNT 1000 MATCH [sz]
    SCAN 0 COUNT 1000 TYPE zset
    SCAN 0 COUNT 1000 TYPE nonsense
    SCAN 0 COUNT 0
    SCAN 0 FOO
    SCAN x
    SCAN -1 MATCH nothing COUNT 1000
    EXPIRE h 100
    TTL h
    EXPIRE h 100 NX
    EXPIRE h 50 GT
    EXPIRE h 200 GT
    EXPIRE h 50 LT
    TTL h
    EXPIRE h 10 XX LT
    EXPIRE s 10 XX
    EXPIRE s 10 GT
    EXPIRE s 10 LT
    TTL s
    EXPIRE s 10 NX XX
    EXPIRE s 10 GT LT
    EXPIRE s 10 FOO
    EXPIRE s abc
    EXPIRE s 9223372036854775807
    PEXPIRE s 9223372036854775807
    EXPIREAT s 9223372036854775807
    EXPIRE nope 10
    PEXPIRE l 100000
    TTL l
    PEXPIREAT l 4102444800123
    PEXPIRETIME l
    EXPIRETIME l
    EXPIREAT l 4102444800
    PEXPIRETIME l
    EXPIRETIME nope
    PERSIST l
    PERSIST l
    PERSIST nope
    EXPIRE l -1
    EXISTS l
    EXPIREAT z 1
    EXISTS z
    RENAME nope x2
    RENAME s s
    RENAMENX s s
    EXPIRE s 100
    RENAME s s2
    TTL s2
    RENAMENX h s2
    RENAMENX s2 s3
    COPY s3 s3
    COPY s3 c1
    COPY s3 c1
    COPY s3 c1 REPLACE
    COPY s3 c2 DB 1
    COPY s3 c2 DB 1
    COPY s3 c2 DB 99
    COPY s3 c2 DB x
    COPY s3 c2 FOO
    COPY nope c2
    TTL c1
    SMEMBERS c1
    MOVE c1 1
    MOVE c1 1
    EXISTS c1
    MOVE h 0
    MOVE h 99
    MOVE h x
    MOVE nope 1
    FLUSHDB FOO
    FLUSHDB ASYNC
    DBSIZE
    RANDOMKEY
    SET only 1
    RANDOMKEY
    FLUSHALL SYNC
    DBSIZE
    PING
    PING hello
    PING a b
    ECHO hi
    DEL
    TYPE
";

const HASHES: &str = "
    HSET h a 1 b 2 c 3
    HSET h a 9 d 4
    HSET h a
    HMSET h e 5
    HGET h a
    HGET h nope
    HGET nope a
    HMGET h a nope b
    HMGET nope a
    HGETALL h
    HGETALL nope
    HKEYS h
    HVALS h
    HLEN h
    HLEN nope
    HEXISTS h a
    HEXISTS h nope
    HSETNX h a 1
    HSETNX h z 1
    HSTRLEN h a
    HSTRLEN h nope
    HINCRBY h a 5
    HINCRBY h new -3
    HINCRBY h a x
    HSET h str abc
    HINCRBY h str 1
    HSET h max 9223372036854775807
    HINCRBY h max 1
    HDEL h a b nope
    HDEL nope a
    HSCAN h 0
    HSCAN h 0 MATCH [de]
    HSCAN h 0 COUNT 0
    HSCAN h x
    HSCAN nope 0
    HSET one f v
    HRANDFIELD one
    HRANDFIELD one 1
    HRANDFIELD one 5 WITHVALUES
    HRANDFIELD one -2
    HRANDFIELD one -2 WITHVALUES
    HRANDFIELD one 0
    HRANDFIELD one 1 FOO
    HRANDFIELD one x
    HRANDFIELD one -9223372036854775808
    HRANDFIELD nope
    HRANDFIELD nope 3
    HDEL h c d e z new str max
    EXISTS h
    SET s v
    HGET s a
    HSET s a b
    HGETALL s
    HSCAN s 0
";

const SETS: &str = "
    SADD a 1 2 3 4
    SADD a 3 5
    SADD b 3 4 x y
    SADD c z
    SMEMBERS a
    SMEMBERS nope
    SCARD a
    SCARD nope
    SISMEMBER a 3
    SISMEMBER a 9
    SMISMEMBER a 1 9 2
    SREM a 5 9
    SREM nope a
    SINTER a b
    SINTER a nope
    SUNION a b c
    SDIFF a b
    SDIFF nope a
    SINTERSTORE d a b
    SMEMBERS d
    SUNIONSTORE d a c
    SCARD d
    SDIFFSTORE d a a
    EXISTS d
    SINTERCARD 2 a b
    SINTERCARD 2 a b LIMIT 1
    SINTERCARD 0 a
    SINTERCARD x a
    SINTERCARD 3 a b
    SINTERCARD 1 a LIMIT -1
    SINTERCARD 1 a FOO
    SSCAN a 0
    SSCAN b 0 MATCH [xy]
    SSCAN nope 0
    SMOVE a b 1
    SMOVE a b 1
    SMOVE nope b 1
    SMOVE a a 2
    SMOVE c new z
    EXISTS c
    SMEMBERS new
    SPOP new
    SPOP new
    SADD one m
    SRANDMEMBER one
    SRANDMEMBER one 3
    SRANDMEMBER one -2
    SRANDMEMBER one 0
    SRANDMEMBER nope
    SRANDMEMBER nope 2
    SRANDMEMBER one 1 2
    SPOP one 0
    SPOP one -1
    SPOP one 5
    SPOP nope 2
    SPOP nope
    SPOP a 1 2
    SPOP b 10
    SET s v
    SADD s m
    SMEMBERS s
    SINTER a s
    SUNIONSTORE s2 s
    SMOVE a s 2
";

const ZSETS: &str = "
    ZADD z 1 a 2 b 3 c
    ZADD z 1.5 d 1e2 e -inf f +inf g
    ZADD z NX 9 a 9 h
    ZADD z XX 8 a 8 i
    ZADD z GT CH 0 a 10 b
    ZADD z LT CH 100 c 0.5 d
    ZADD z NX XX 1 a
    ZADD z GT LT 1 a
    ZADD z NX GT 1 a
    ZADD z INCR 1 a 2 b
    ZADD z INCR 0.1 a
    ZADD z INCR GT -5 a
    ZADD z XX INCR 1 missing
    ZADD z 1 a 2
    ZADD z x a
    ZADD z nan a
    ZADD z
    ZADD nope XX 1 a
    ZADD nope XX INCR 1 a
    EXISTS nope
    ZINCRBY z 2.5 c
    ZINCRBY z x c
    ZINCRBY z 1 new
    ZINCRBY z -inf g
    ZSCORE z a
    ZSCORE z nope
    ZSCORE nope a
    ZMSCORE z a nope b
    ZMSCORE nope a
    ZCARD z
    ZCARD nope
    ZRANGE z 0 -1
    ZRANGE z 0 -1 WITHSCORES
    ZRANGE z 2 4 WITHSCORES
    ZRANGE z -3 -1
    ZRANGE z 5 1
    ZRANGE z 0 -1 REV WITHSCORES
    ZRANGE z -inf +inf BYSCORE WITHSCORES
    ZRANGE z (1 3 BYSCORE
    ZRANGE z 3 (1 BYSCORE REV
    ZRANGE z -inf +inf BYSCORE LIMIT 1 2
    ZRANGE z -inf +inf BYSCORE LIMIT 1 -1
    ZRANGE z -inf +inf BYSCORE LIMIT -1 2
    ZRANGE z +inf -inf BYSCORE REV LIMIT 0 3 WITHSCORES
    ZRANGE z 0 -1 LIMIT 0 1
    ZRANGE z - + BYLEX WITHSCORES
    ZRANGE z x y BYSCORE
    ZRANGE z a b BYLEX
    ZRANGE z 0 1 FOO
    ZRANGE z a 1
    ZRANGE nope 0 -1
    ZRANGEBYSCORE z 1 3
    ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 0 2
    ZRANGEBYSCORE z 1 3 BYSCORE
    ZREVRANGEBYSCORE z 3 1 WITHSCORES
    ZREVRANGE z 0 2 WITHSCORES
    ZREVRANGE z 0 1 REV
    ZRANK z c
    ZRANK z nope
    ZRANK nope a
    ZREVRANK z c
    ZCOUNT z 1 3
    ZCOUNT z (1 (3
    ZCOUNT z -inf +inf
    ZCOUNT z x 1
    ZCOUNT nope 0 1
    ZRANGESTORE dst z 0 2
    ZRANGE dst 0 -1 WITHSCORES
    ZRANGESTORE dst z 1 3 BYSCORE LIMIT 0 1
    ZRANGE dst 0 -1 WITHSCORES
    ZRANGESTORE dst nope 0 -1
    EXISTS dst
    ZRANGESTORE dst z 0 -1 WITHSCORES
    ZREM z a nope
    ZREM nope a
    ZREMRANGEBYRANK z 0 0
    ZREMRANGEBYSCORE z 100 +inf
    ZREMRANGEBYSCORE z x 1
    ZREMRANGEBYRANK z x 1
    ZRANGE z 0 -1 WITHSCORES
    ZPOPMIN z
    ZPOPMAX z
    ZPOPMIN z 2
    ZPOPMAX z 0
    ZPOPMIN z -1
    ZPOPMIN z 1 2
    ZPOPMIN nope
    ZPOPMIN nope 2
    ZADD lex 0 a 0 b 0 c 0 d 0 e
    ZRANGEBYLEX lex [b (d
    ZRANGEBYLEX lex - +
    ZRANGEBYLEX lex - + LIMIT 1 2
    ZREVRANGEBYLEX lex + [c
    ZRANGEBYLEX lex b d
    ZLEXCOUNT lex [b +
    ZLEXCOUNT lex x y
    ZRANGE lex [b [d BYLEX
    ZRANGE lex [d [b BYLEX REV LIMIT 0 1
    ZREMRANGEBYLEX lex - (b
    ZRANGE lex 0 -1
    ZADD u1 1 a 2 b 3 c
    ZADD u2 10 b 20 c 30 d
    SADD plain b x
    ZUNION 2 u1 u2
    ZUNION 2 u1 u2 WITHSCORES
    ZUNION 2 u1 u2 WEIGHTS 2 0.5 WITHSCORES
    ZUNION 2 u1 u2 AGGREGATE MAX WITHSCORES
    ZUNION 2 u1 u2 AGGREGATE MIN WITHSCORES
    ZUNION 3 u1 u2 plain WITHSCORES
    ZUNION 2 u1 nope WITHSCORES
    ZUNION 0 u1
    ZUNION 3 u1 u2
    ZUNION 2 u1 u2 WEIGHTS 1
    ZUNION 2 u1 u2 WEIGHTS 1 x
    ZUNION 2 u1 u2 AGGREGATE AVG
    ZINTER 2 u1 u2 WITHSCORES
    ZINTER 2 u1 plain WITHSCORES
    ZINTER 2 u1 nope
    ZDIFF 2 u1 u2 WITHSCORES
    ZDIFF 2 u1 u2 WEIGHTS 1 1
    ZUNIONSTORE out 2 u1 u2
    ZRANGE out 0 -1 WITHSCORES
    ZUNIONSTORE out 2 u1 u2 WITHSCORES
    ZINTERSTORE out 2 u1 u2 AGGREGATE MAX
    ZRANGE out 0 -1 WITHSCORES
    ZDIFFSTORE out 2 u1 u1
    EXISTS out
    ZINTERCARD 2 u1 u2
    ZINTERCARD 2 u1 u2 LIMIT 1
    ZINTERCARD 0 u1
    ZINTERCARD 3 u1
    ZINTERCARD 1 u1 LIMIT -1
    ZINTERCARD 1 u1 WITHSCORES
    ZMPOP 2 nope u1 MIN
    ZMPOP 1 u1 MAX COUNT 5
    ZMPOP 1 u1 MIN
    ZMPOP 0 u1 MIN
    ZMPOP 1 u2 FOO
    ZMPOP 1 u2 MIN COUNT 0
    ZMPOP 1 u2 MIN COUNT 1 COUNT 1
    ZMPOP 3 u2 MIN
    ZSCAN u2 0
    ZSCAN u2 0 MATCH [bc]
    ZSCAN nope 0
    ZADD one 1.1 m
    ZRANDMEMBER one
    ZRANDMEMBER one 3
    ZRANDMEMBER one 3 WITHSCORES
    ZRANDMEMBER one -2 WITHSCORES
    ZRANDMEMBER one 0
    ZRANDMEMBER one 1 FOO
    ZRANDMEMBER nope
    ZRANDMEMBER nope 1
    ZADD zz -0 m 1e17 n 0.1 o 123456789.123 p
    ZRANGE zz 0 -1 WITHSCORES
    ZSCAN zz 0
    SET s v
    ZADD s 1 a
    ZRANGE s 0 -1
    ZUNION 1 s
    ZSCORE s a
";

const LISTS: &str = "
    RPUSH l a b c d e
    LPUSH l z
    LRANGE l 0 -1
    LRANGE l -100 100
    LRANGE l 3 1
    LRANGE l x 1
    LRANGE nope 0 -1
    LLEN l
    LLEN nope
    LINDEX l 0
    LINDEX l -1
    LINDEX l 100
    LINDEX l x
    LINDEX nope 0
    LSET l 1 A
    LSET l 100 A
    LSET l x A
    LSET nope 0 A
    LPOP l
    RPOP l
    LPOP l 2
    RPOP l 0
    LPOP l -1
    LPOP l x
    LPOP l 1 2
    LPOP nope
    LPOP nope 3
    RPOP nope 3
    LPUSHX nope a
    RPUSHX l y
    LRANGE l 0 -1
    LTRIM l 1 -1
    LRANGE l 0 -1
    LTRIM l 5 1
    EXISTS l
    LTRIM nope 0 1
    RPUSH src 1 2 3
    LMOVE src dst LEFT RIGHT
    LMOVE src dst RIGHT LEFT
    LMOVE src src LEFT RIGHT
    LRANGE src 0 -1
    LMOVE src dst UP DOWN
    LMOVE nope dst LEFT LEFT
    RPOPLPUSH src dst
    EXISTS src
    LRANGE dst 0 -1
    RPOPLPUSH nope dst
    LMPOP 2 nope dst LEFT
    LMPOP 1 dst RIGHT COUNT 10
    LMPOP 1 dst RIGHT
    LMPOP 0 dst LEFT
    LMPOP 2 dst LEFT
    LMPOP 1 dst MIDDLE
    LMPOP 1 dst LEFT COUNT 0
    RPUSH b1 x
    BLPOP nope b1 0
    BLPOP nope 0.01
    BRPOP b1 x
    BRPOP b1 -1
    RPUSH b1 y z
    BRPOPLPUSH b1 b2 0
    BLMOVE b1 b2 LEFT LEFT 0
    BLMOVE b1 b2 LEFT LEFT 0.01
    BLMPOP 0.01 1 b2 LEFT COUNT 5
    BLMPOP 0.01 1 b2 LEFT
    SET s v
    LPUSH s a
    LRANGE s 0 -1
    LPOP s
    LMOVE s dst LEFT LEFT
    RPUSH l2 a
    LMOVE l2 s LEFT LEFT
    BLPOP s 0
";

const STREAMS: &str = "
    XADD s 1-1 a 1
    XADD s 1-1 a 1
    XADD s 1-* b 2
    XADD s 2 c 3
    XADD s 0-0 a 1
    XADD s 0 a 1
    XADD s 3-0 a
    XADD s x a 1
    XADD s 3-x a 1
    XADD s MAXLEN x 4-0 a 1
    XADD s MAXLEN -1 4-0 a 1
    XADD s MAXLEN 1 MINID 0 4-0 a 1
    XADD s LIMIT 1 4-0 a 1
    XADD s MAXLEN 5 LIMIT 1 4-0 a 1
    XADD nope NOMKSTREAM * a 1
    EXISTS nope
    XLEN s
    XLEN nope
    XRANGE s - +
    XRANGE s 1 1
    XRANGE s (1-1 +
    XRANGE s - (2-0
    XRANGE s - + COUNT 1
    XRANGE s - + COUNT 0
    XRANGE s - + COUNT -1
    XRANGE s - + COUNT x
    XRANGE s - + FOO
    XRANGE s x +
    XRANGE s 3 1
    XRANGE nope - +
    XRANGE s (18446744073709551615-18446744073709551615 +
    XREVRANGE s + -
    XREVRANGE s + - COUNT 2
    XREVRANGE s (2-0 -
    XADD s MAXLEN = 2 5-0 d 4
    XRANGE s - +
    XADD s MINID 3 6-0 e 5
    XRANGE s - +
    XADD s MAXLEN ~ 1 7-0 f 6
    XLEN s
    XTRIM s MAXLEN 1
    XTRIM s MINID 100
    XTRIM nope MAXLEN 0
    XTRIM s
    XTRIM s FOO 1
    XTRIM s MAXLEN ~ 0 LIMIT 10
    XADD s 8-0 g 7
    XADD s 9-0 h 8
    XDEL s 8-0 100-0
    XDEL s x
    XDEL nope 1-0
    XRANGE s - +
    XADD s 8-5 late 1
    XREAD STREAMS s 0
    XREAD COUNT 1 STREAMS s nope 0 0
    XREAD STREAMS s $
    XREAD STREAMS s
    XREAD STREAMS s nope 0
    XREAD FOO STREAMS s 0
    XREAD GROUP g c STREAMS s 0
    XREAD NOACK STREAMS s 0
    XREAD STREAMS s >
    XREAD COUNT x STREAMS s 0
    XREAD BLOCK 10 STREAMS s 9-0
    XREAD BLOCK -1 STREAMS s 0
    XREAD BLOCK x STREAMS s 0
    SET str v
    XADD str * a 1
    XRANGE str - +
    XREAD STREAMS str 0
    XLEN str
";

const PUBSUB_AND_TIME: &str = "
    PUBLISH ch hello
    PUBSUB CHANNELS
    PUBSUB NUMSUB a b
    PUBSUB NUMPAT
    PUBSUB NUMPAT x
    PUBSUB
";

/// Every script, both protocols, against one redis-server.
#[tokio::test]
async fn replies_match_redis_server_in_resp3_and_resp2() {
    let redis = redis();
    for script in [
        STRINGS,
        KEYS,
        HASHES,
        SETS,
        ZSETS,
        LISTS,
        STREAMS,
        PUBSUB_AND_TIME,
    ] {
        compare(&redis, script, true).await;
        compare(&redis, script, false).await;
    }
}

/// A key set with PX 100 disappears from both within a deadline, and
/// neither ever answers with it once it has expired.
#[tokio::test]
async fn expired_keys_are_never_returned() {
    let store = MemoryStore::new(MemoryConfig::default());
    store.execute(0, &args("SET k v PX 100")).await;
    store.execute(0, &args("HSET h f v")).await;
    store.execute(0, &args("PEXPIRE h 100")).await;
    let start = std::time::Instant::now();
    loop {
        let reply = render(&args("GET k"), store.execute(0, &args("GET k")).await, true);
        if reply == b"_\r\n" {
            break;
        }
        assert_eq!(reply, b"$1\r\nv\r\n");
        assert!(start.elapsed() < Duration::from_secs(5), "k never expired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        start.elapsed() >= Duration::from_millis(99),
        "expired early"
    );
    assert_eq!(
        render(&args("TTL k"), store.execute(0, &args("TTL k")).await, true),
        b":-2\r\n"
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    let keys = store.execute(0, &args("KEYS *")).await;
    assert_eq!(render(&args("KEYS *"), keys, true), b"*0\r\n");
    assert_eq!(
        render(
            &args("HLEN h"),
            store.execute(0, &args("HLEN h")).await,
            true
        ),
        b":0\r\n"
    );
    assert!(store.stats().expirations >= 2);
}

/// With a tiny bound, old keys are evicted whole: a surviving hash always
/// has every field, and the bytes held stay near the bound.
#[tokio::test]
async fn eviction_removes_whole_keys_within_the_bound() {
    let max = 64 * 1024;
    let store = MemoryStore::new(MemoryConfig {
        max_memory: max,
        databases: 16,
    });
    let value = "x".repeat(100);
    for i in 0..200 {
        let mut cmd = vec![Bytes::from("HSET"), Bytes::from(format!("h{i}"))];
        for f in 0..20 {
            cmd.push(Bytes::from(format!("f{f}")));
            cmd.push(Bytes::from(value.clone()));
        }
        store.execute(0, &cmd).await;
        store.maintain().await;
    }
    store.maintain().await;
    let stats = store.stats();
    assert!(stats.evictions > 0, "{stats:?}");
    assert!(stats.used_bytes <= max + max / 4, "{stats:?}");
    assert!(stats.keys[0] > 0 && stats.keys[0] < 200, "{stats:?}");
    for i in 0..200 {
        let len = store.execute(0, &args(&format!("HLEN h{i}"))).await;
        let len = render(&args("HLEN"), len, true);
        assert!(
            len == b":0\r\n" || len == b":20\r\n",
            "h{i}: {}",
            String::from_utf8_lossy(&len)
        );
    }
    // The most recent keys survive (LRU).
    assert_eq!(
        render(
            &args("HLEN"),
            store.execute(0, &args("HLEN h199")).await,
            true
        ),
        b":20\r\n"
    );
}

/// Blocking pops: woken by a push from another client with Redis's reply,
/// timing out with its null, in both protocols.
#[tokio::test]
async fn blocking_pops_wake_and_time_out_like_redis() {
    let redis = redis();
    for resp3 in [true, false] {
        let mut blocked = Raw::open(&redis, resp3).await;
        let mut pusher = Raw::open(&redis, resp3).await;
        pusher.call(&args("FLUSHALL")).await;
        let store = MemoryStore::new(MemoryConfig::default());
        let cases = [
            ("BLPOP q1 q2 0", "RPUSH q2 a"),
            ("BRPOPLPUSH q3 d 0", "RPUSH q3 c"),
            ("BLMOVE q4 d RIGHT LEFT 0", "LPUSH q4 x"),
            ("BLMPOP 0 2 q5 q6 RIGHT COUNT 2", "RPUSH q6 1 2 3"),
            ("BZPOPMIN z1 0", "ZADD z1 2 b 1 a"),
            ("BZPOPMAX z3 0", "ZADD z3 3 c"),
            ("BZMPOP 0 1 z2 MAX COUNT 2", "ZADD z2 1 a 2 b 3 c"),
            ("XREAD BLOCK 0 STREAMS st $", "XADD st 5-0 f v"),
            ("XREAD COUNT 1 BLOCK 0 STREAMS st 5-0", "XADD st 6-0 g w"),
        ];
        for (wait, push) in cases {
            let wait_args = args(wait);
            blocked.send(&wait_args).await;
            let engine = {
                let store = Arc::clone(&store);
                let wait_args = wait_args.clone();
                tokio::spawn(async move { store.execute_blocking(0, &wait_args).await })
            };
            // The Redis client is blocked once CLIENT LIST shows it so; the
            // store's call once its waiter is queued (a command behind it
            // would otherwise be served first).
            wait_blocked(&mut pusher).await;
            for _ in 0..250 {
                if store.stats().blocked_clients == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(
                store.stats().blocked_clients,
                1,
                "{wait} blocks in the store"
            );
            let push_args = args(push);
            let expected_push = pusher.call(&push_args).await;
            let got_push = render(&push_args, store.execute(0, &push_args).await, resp3);
            assert_eq!(got_push, expected_push, "{push}");
            let expected = blocked.read().await;
            let got = render(&wait_args, engine.await.unwrap(), resp3);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
                "{wait} woken by {push} (resp3: {resp3})"
            );
        }
        for timeout in [
            "BLPOP nope 0.05",
            "BZPOPMIN nope 0.05",
            "XREAD BLOCK 50 STREAMS nope 0",
            "BLMPOP 0.05 1 nope LEFT",
        ] {
            let a = args(timeout);
            let expected = blocked.call(&a).await;
            let got = render(&a, store.execute_blocking(0, &a).await, resp3);
            assert_eq!(got, expected, "{timeout} (resp3: {resp3})");
        }
    }
}

/// Waits until redis-server reports a blocked client.
async fn wait_blocked(con: &mut Raw) {
    for _ in 0..250 {
        let info = con.call(&args("INFO clients")).await;
        if String::from_utf8_lossy(&info).contains("blocked_clients:1") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let info = con.call(&args("INFO clients")).await;
    panic!(
        "the client never blocked: {}",
        String::from_utf8_lossy(&info)
    );
}

/// A blocked call that is dropped takes nothing, even when a push served
/// it just before it was dropped.
#[tokio::test]
async fn cancelled_blocking_pops_lose_nothing() {
    let store = MemoryStore::new(MemoryConfig::default());
    for wait in [
        "BLPOP q 0",
        "BLMOVE q d LEFT RIGHT 0",
        "BLMPOP 0 1 q LEFT COUNT 3",
    ] {
        let wait_args = args(wait);
        let mut call = Box::pin(store.execute_blocking(0, &wait_args));
        // Poll once: the call queues its waiter.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut call)
                .await
                .is_err()
        );
        store.execute(0, &args("RPUSH q a b")).await;
        drop(call);
        let list = store.execute(0, &args("LRANGE q 0 -1")).await;
        assert_eq!(
            render(&args("LRANGE"), list, true),
            b"*2\r\n$1\r\na\r\n$1\r\nb\r\n",
            "{wait}"
        );
        assert_eq!(
            render(
                &args("EXISTS"),
                store.execute(0, &args("EXISTS d")).await,
                true
            ),
            b":0\r\n"
        );
        store.execute(0, &args("DEL q")).await;
    }
    // A zset pop put back keeps its score.
    let wait_args = args("BZPOPMIN z 0");
    let mut call = Box::pin(store.execute_blocking(0, &wait_args));
    assert!(
        tokio::time::timeout(Duration::from_millis(20), &mut call)
            .await
            .is_err()
    );
    store.execute(0, &args("ZADD z 1.5 m")).await;
    drop(call);
    let score = store.execute(0, &args("ZSCORE z m")).await;
    assert_eq!(render(&args("ZSCORE"), score, true), b",1.5\r\n");
}

/// MULTI/EXEC: the queued replies as Redis gives them, and a WATCH
/// conflict aborting EXEC with Redis's null (`*-1` in RESP2).
#[tokio::test]
async fn exec_and_watch_match_redis() {
    let redis = redis();
    for resp3 in [true, false] {
        let mut a = Raw::open(&redis, resp3).await;
        let mut b = Raw::open(&redis, resp3).await;
        a.call(&args("FLUSHALL")).await;
        let store = MemoryStore::new(MemoryConfig::default());
        let queued = [
            "SET k 1",
            "INCR k",
            "LPUSH k x",
            "GET k",
            "BLPOP nope 0",
            "SELECT 1",
            "SET k 2",
        ];
        a.call(&args("MULTI")).await;
        for q in queued {
            a.call(&args(q)).await;
        }
        let expected = a.call(&args("EXEC")).await;
        let replies = store
            .exec(0, queued.iter().map(|q| args(q)).collect(), &[])
            .await
            .expect("nothing watched");
        let frame = Frame::Array {
            data: replies,
            attributes: None,
        };
        let mut got = BytesMut::new();
        if resp3 {
            encode(&mut got, &frame, None, Protocol::Resp3, NullStyle::Bulk);
        } else {
            // EXEC renders each reply by its own command's rules.
            got.extend_from_slice(format!("*{}\r\n", queued.len()).as_bytes());
            let Frame::Array { data, .. } = frame else {
                unreachable!()
            };
            for (q, reply) in queued.iter().zip(data) {
                got.extend_from_slice(&render(&args(q), reply, false));
            }
        }
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected)
        );
        b.call(&args("SELECT 1")).await;
        assert_eq!(
            render(&args("GET"), store.execute(1, &args("GET k")).await, resp3),
            b.call(&args("GET k")).await
        );
        b.call(&args("SELECT 0")).await;
        a.call(&args("SELECT 0")).await;
        // WATCH, a change by someone else, EXEC: aborted.
        a.call(&args("WATCH w")).await;
        let token = store.watch(0, &Bytes::from("w"));
        b.call(&args("SET w changed")).await;
        store.execute(0, &args("SET w changed")).await;
        a.call(&args("MULTI")).await;
        a.call(&args("SET w mine")).await;
        let expected = a.call(&args("EXEC")).await;
        let got = store.exec(0, vec![args("SET w mine")], &[token]).await;
        assert!(got.is_none());
        let mut rendered = BytesMut::new();
        encode(
            &mut rendered,
            &Frame::Null,
            None,
            if resp3 {
                Protocol::Resp3
            } else {
                Protocol::Resp2
            },
            NullStyle::ArrayAtTop,
        );
        assert_eq!(rendered.to_vec(), expected);
        // WATCH without a change: EXEC runs.
        a.call(&args("WATCH w")).await;
        let token = store.watch(0, &Bytes::from("w"));
        a.call(&args("MULTI")).await;
        a.call(&args("GET w")).await;
        let expected = a.call(&args("EXEC")).await;
        let got = store
            .exec(0, vec![args("GET w")], &[token])
            .await
            .expect("unchanged");
        let mut rendered = BytesMut::new();
        encode(
            &mut rendered,
            &Frame::Array {
                data: got,
                attributes: None,
            },
            None,
            if resp3 {
                Protocol::Resp3
            } else {
                Protocol::Resp2
            },
            NullStyle::Bulk,
        );
        assert_eq!(rendered.to_vec(), expected);
    }
}

/// Pub/Sub: confirmations and message frames byte for byte.
#[tokio::test]
async fn pubsub_frames_match_redis() {
    let redis = redis();
    for resp3 in [true, false] {
        let proto = if resp3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        };
        let frame_bytes = |f: &Frame| {
            let mut out = BytesMut::new();
            encode(&mut out, f, None, proto, NullStyle::Bulk);
            out.to_vec()
        };
        let mut sub = Raw::open(&redis, resp3).await;
        let mut publisher = Raw::open(&redis, resp3).await;
        let store = MemoryStore::new(MemoryConfig::default());
        let mut subscriber = store.subscriber();
        sub.send(&args("SUBSCRIBE news sport")).await;
        for got in subscriber.subscribe(&args("news sport")) {
            assert_eq!(frame_bytes(&got), sub.read().await);
        }
        sub.send(&args("PSUBSCRIBE n*")).await;
        for got in subscriber.psubscribe(&args("n*")) {
            assert_eq!(frame_bytes(&got), sub.read().await);
        }
        let publish = args("PUBLISH news hello");
        assert_eq!(
            render(&publish, store.execute(0, &publish).await, resp3),
            publisher.call(&publish).await
        );
        for _ in 0..2 {
            let got = subscriber.recv().await.expect("a message");
            assert_eq!(frame_bytes(&got), sub.read().await);
        }
        let numsub = args("PUBSUB NUMSUB news sport none");
        assert_eq!(
            render(&numsub, store.execute(0, &numsub).await, resp3),
            publisher.call(&numsub).await
        );
        sub.send(&args("UNSUBSCRIBE news")).await;
        for got in subscriber.unsubscribe(&args("news")) {
            assert_eq!(frame_bytes(&got), sub.read().await);
        }
        sub.send(&args("PUNSUBSCRIBE")).await;
        for got in subscriber.punsubscribe(&[]) {
            assert_eq!(frame_bytes(&got), sub.read().await);
        }
        sub.send(&args("UNSUBSCRIBE")).await;
        for got in subscriber.unsubscribe(&[]) {
            assert_eq!(frame_bytes(&got), sub.read().await);
        }
        sub.send(&args("UNSUBSCRIBE")).await;
        for got in subscriber.unsubscribe(&[]) {
            assert_eq!(frame_bytes(&got), sub.read().await);
        }
    }
}

/// A plain GET/SET costs microseconds (measured in a debug build, so the
/// bound is generous; release builds are several times faster).
#[tokio::test]
async fn get_and_set_cost_microseconds() {
    let store = MemoryStore::new(MemoryConfig::default());
    let set = args("SET key value");
    let get = args("GET key");
    let n = 20_000;
    let start = std::time::Instant::now();
    for _ in 0..n {
        store.execute(0, &set).await;
        store.execute(0, &get).await;
    }
    let per_command = start.elapsed() / (2 * n);
    eprintln!("memory store: {per_command:?} per GET/SET (debug build)");
    assert!(per_command < Duration::from_micros(100), "{per_command:?}");
}
