//! The memory store against the oracle: the same command scripts run on a
//! real redis-server (raw RESP3 and RESP2 connections) and on
//! `sealcache::backend::memory::MemoryStore`, and the replies are compared
//! byte for byte, the store's RESP3 frame rendered as the proxy renders it.
//! The scripts are the behaviour suite's (`behaviour/scripts.rs`), which
//! runs them through sealcache on every route. Replies Redis leaves
//! unordered (SMEMBERS, HGETALL, SCAN pages…) are compared as multisets of
//! elements; nothing else is relaxed.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sealcache::backend::memory::{CommandKind, MemoryConfig, MemoryStore, commands};
use sealcache::commands::{Command, Dispatch};
use sealcache::protocol::reply::{NullStyle, encode};
use sealcache::protocol::{Frame, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::behaviour::script::{Action, Script, difference, lines};
use super::behaviour::scripts::DATA;
use super::support::endpoint::RawStream;
use super::support::twin::parse;
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
    Command::parse(args.to_vec())
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

/// Runs `script` on both, in database 0 of a flushed server and a fresh
/// store, and compares replies. Only the lines the engine itself answers
/// run: one client's commands that the store supports and runs without the
/// session (not MULTI or SUBSCRIBE); the behaviour suite runs every line
/// through the session, where some are refused (`=> …`).
async fn compare(redis: &RedisServer, script: &Script, resp3: bool) {
    let mut raw = Raw::open(redis, resp3).await;
    raw.call(&args("FLUSHALL")).await;
    let store = MemoryStore::new(MemoryConfig::default());
    for line in lines(script.text) {
        // SELECT (outside EXEC) is the session's: the store runs each call in a database.
        let session_local = Command::parse(line.args.clone())
            .is_ok_and(|c| matches!(c.spec.dispatch, Dispatch::Local(l) if !l.queued_upstream()));
        let engine_runs = line.client == 1
            && line.action == Action::Call
            && !session_local
            && commands::lookup(&line.args[0])
                .is_some_and(|c| matches!(c.kind, CommandKind::Plain | CommandKind::Blocking));
        if !engine_runs {
            continue;
        }
        let args = line.args;
        let line = line.text;
        let expected = raw.call(&args).await;
        let got = render(&args, store.execute(0, &args).await, resp3);
        let (got, _) = parse(&got).expect("a whole reply");
        let (expected, _) = parse(&expected).expect("a whole reply");
        if let Some((got, expected)) = difference(&args, got, expected, resp3) {
            panic!(
                "{} reply to `{line}` differs\n    store:        {got:?}\n    redis-server: {expected:?}",
                if resp3 { "RESP3" } else { "RESP2" },
            );
        }
    }
}

fn redis() -> RedisServer {
    let certs = Certs::generate();
    RedisServer::start_tls(&certs, &random_password(24))
}

/// Every script, both protocols, against one redis-server.
#[tokio::test]
async fn replies_match_redis_server_in_resp3_and_resp2() {
    let redis = redis();
    for script in DATA {
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
