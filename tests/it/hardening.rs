//! Issue 7, what crosses the wire to and from the upstream: error replies
//! that quote client bytes stay on one line (criterion 1); nothing
//! unauthenticated from the upstream reaches a client as a value (2); a reply
//! the decoder cannot represent fails alone (3); upstream replies over the
//! size, depth and element limits fail their command and nothing else (7).
//! The upstream side of 2, 3 and 7 is the hostile fixture.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::endpoint::RawStream;
use crate::support::{
    Answer, Certs, Endpoint, HostileUpstream, RedisServer, Script, Sealcache, Step, random_password,
};
use sealcache::backend::redis::connect::encode_command;
use sealcache::protocol::scan::{ReplyLimits, ReplyScanner, Scanned};

/// How long one reply may take (debug builds on two shared cores).
const REPLY_WAIT: Duration = Duration::from_secs(30);
/// What the forged replies carry: it must never reach a client or the log.
const FORGED: &str = "PLAINTEXT-FORGED";

/// A client connection that reads exactly one reply per command, as bytes.
struct Wire {
    stream: Box<dyn RawStream>,
    buf: BytesMut,
    replies: ReplyScanner,
}

impl Wire {
    /// Connects and authenticates (RESP2), or says `HELLO 3` with `resp3`.
    async fn open(endpoint: &Endpoint, resp3: bool) -> Wire {
        let limits = ReplyLimits {
            max_len: 1 << 30,
            max_depth: 64,
            max_elements: 1 << 20,
        };
        let mut wire = Wire {
            stream: endpoint.raw().await,
            buf: BytesMut::new(),
            replies: ReplyScanner::new(limits, true),
        };
        let (user, password) = (
            endpoint.username().unwrap_or("default"),
            endpoint.password().expect("an authenticated endpoint"),
        );
        let reply = if resp3 {
            wire.cmd(&["HELLO", "3", "AUTH", user, password]).await
        } else {
            wire.cmd(&["AUTH", user, password]).await
        };
        assert!(
            reply.starts_with(if resp3 { "%" } else { "+OK" }),
            "login: {reply}"
        );
        wire
    }

    /// Writes commands without reading (a pipeline).
    async fn send<A: AsRef<[u8]>>(&mut self, commands: &[&[A]]) {
        let mut out = BytesMut::new();
        for args in commands {
            let args: Vec<Bytes> = args
                .iter()
                .map(|a| Bytes::copy_from_slice(a.as_ref()))
                .collect();
            encode_command(&mut out, &args);
        }
        self.stream.write_all(&out).await.expect("write commands");
        self.stream.flush().await.expect("flush commands");
    }

    /// The next whole reply, as text (lossy).
    async fn reply(&mut self) -> String {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match self
                .replies
                .next(&mut self.buf)
                .expect("valid RESP from the proxy")
            {
                Some(Scanned::Reply(reply)) => return String::from_utf8_lossy(&reply).into_owned(),
                Some(other) => panic!("unexpected {other:?}"),
                None => {}
            }
            let n = tokio::time::timeout(REPLY_WAIT, self.stream.read(&mut chunk))
                .await
                .expect("a reply within the deadline")
                .expect("read a reply");
            assert!(n > 0, "the proxy closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> String {
        self.send(&[args]).await;
        self.reply().await
    }

    /// Nothing more arrives within `wait`: no stray reply was sent.
    async fn assert_quiet(&mut self, wait: Duration) {
        let mut chunk = [0u8; 1024];
        let extra = tokio::time::timeout(wait, self.stream.read(&mut chunk)).await;
        assert!(
            self.buf.is_empty() && extra.is_err(),
            "unexpected bytes from the proxy: {:?} {:?}",
            String::from_utf8_lossy(&self.buf),
            extra.map(|r| r.map(|n| String::from_utf8_lossy(&chunk[..n]).into_owned()))
        );
    }
}

/// The value of `field:` in INFO's text.
fn info_field(info: &str, field: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO has no {field}: {info}"))
        .trim()
        .parse()
        .expect("a number")
}

// ---- criterion 1: no reply injection ----------------------------------------------------------

#[tokio::test]
async fn errors_that_quote_client_bytes_stay_on_one_line() {
    let redis = RedisServer::start_tls(&Certs::generate(), &random_password(32));
    let proxy = Sealcache::builder(&redis)
        .set("encryption.on_decrypt_failure", "error")
        .start();
    let bad_key = "bad\r\n+INJECTED";
    let stream = "stream\r\n+INJECTED";
    let mut direct = redis.client().await;
    let _: () = redis::cmd("SET")
        .arg(bad_key)
        .arg("plaintext written around the proxy")
        .query_async(&mut direct)
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("1-1")
        .arg("f")
        .arg("v")
        .query_async(&mut direct)
        .await
        .unwrap();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["FOO\r\n+INJECTED", "x\r\n:1"],
            "-ERR unknown command 'FOO  +INJECTED', with args beginning with: 'x  :1' \r\n",
        ),
        (
            vec!["CLIENT", "NOPE\r\n+INJECTED"],
            "-ERR unknown subcommand 'NOPE  +INJECTED'. Try CLIENT HELP.\r\n",
        ),
        (
            vec!["HELLO", "3", "FOO\r\n+INJECTED"],
            "-ERR Syntax error in HELLO option 'FOO  +INJECTED'\r\n",
        ),
        (
            vec!["CLIENT", "SETINFO", "LIB-X\r\n+INJECTED", "v"],
            "-ERR Unrecognized option 'LIB-X  +INJECTED'\r\n",
        ),
        (
            vec!["CLIENT", "SETINFO", "lib\r\n+INJECTED", "bad value"],
            "-ERR Unrecognized option 'lib  +INJECTED'\r\n",
        ),
        (
            vec!["CLIENT", "SETINFO", "LIB-NAME", "bad\r\nvalue"],
            "-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n",
        ),
        (
            vec!["GET", bad_key],
            "-ERR sealcache: a value at key 'bad  +INJECTED' failed to decrypt (",
        ),
        (
            vec!["INCR", bad_key],
            "-ERR sealcache: the value at key 'bad  +INJECTED' failed to decrypt (",
        ),
        (
            vec!["RENAME", stream, "dst\r\n+INJECTED"],
            "-ERR sealcache: RENAME is not available on encrypted data: ",
        ),
        (
            vec!["COPY", "a", "b", "DB", "1\r\n+INJECTED"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            vec!["SELECT", "1\r\n+INJECTED"],
            "-ERR value is not an integer or out of range\r\n",
        ),
    ];
    let mut wire = Wire::open(&proxy.endpoint(), false).await;
    // All at once, then PING: exactly one reply each, in order.
    let mut pipeline: Vec<&[&str]> = cases.iter().map(|(args, _)| args.as_slice()).collect();
    pipeline.push(&["PING"]);
    wire.send(&pipeline).await;
    for (args, expected) in &cases {
        let reply = wire.reply().await;
        assert!(
            reply.starts_with(expected) && reply.ends_with("\r\n"),
            "{args:?}: expected {expected:?}, got {reply:?}"
        );
        assert_eq!(
            reply.matches("\r\n").count(),
            1,
            "{args:?}: one line: {reply:?}"
        );
    }
    assert_eq!(wire.reply().await, "+PONG\r\n", "still in step");
    wire.assert_quiet(Duration::from_millis(300)).await;

    // The same bytes straight to redis-server: the same replies, byte for byte.
    let mut theirs = Wire::open(&redis.endpoint(), false).await;
    for args in [&cases[0].0, &cases[1].0] {
        assert_eq!(wire.cmd(args).await, theirs.cmd(args).await, "{args:?}");
    }
}

// ---- criterion 2: nothing unauthenticated reaches a client as a value ---------------------------

/// Each value read, and what the hostile upstream forges for it.
fn forged_reads() -> Vec<(Vec<&'static str>, String)> {
    let f = FORGED;
    let n = f.len();
    vec![
        (vec!["GET", "forged:get"], format!("+{f}\r\n")),
        (vec!["GETDEL", "forged:getdel"], ":42\r\n".into()),
        (vec!["GETEX", "forged:getex"], ",1.5\r\n".into()),
        (
            vec!["GETSET", "forged:getset", "v"],
            format!("%1\r\n$1\r\na\r\n${n}\r\n{f}\r\n"),
        ),
        (
            vec!["SET", "forged:setget", "v", "GET"],
            format!("*1\r\n${n}\r\n{f}\r\n"),
        ),
        (
            vec!["MGET", "forged:mget1", "forged:mget2"],
            format!("*2\r\n+{f}\r\n:1\r\n"),
        ),
        (vec!["HGET", "forged:hget", "f"], "#t\r\n".into()),
        (
            vec!["HMGET", "forged:hmget", "f", "g"],
            format!("*1\r\n${n}\r\n{f}\r\n"),
        ),
        (
            vec!["HGETALL", "forged:hgetall"],
            format!("%1\r\n$1\r\nf\r\n+{f}\r\n"),
        ),
        (
            vec!["LRANGE", "forged:lrange", "0", "-1"],
            format!("*2\r\n+{f}\r\n:7\r\n"),
        ),
        (vec!["LPOP", "forged:lpop"], "(12345\r\n".into()),
        (
            vec!["LINDEX", "forged:lindex", "0"],
            format!("={}\r\ntxt:{f}\r\n", n + 4),
        ),
        (
            vec!["SMEMBERS", "forged:smembers"],
            format!("~2\r\n+{f}\r\n:1\r\n"),
        ),
        (vec!["SRANDMEMBER", "forged:srandmember"], ":3\r\n".into()),
        (
            vec!["ZRANGE", "forged:zrange", "0", "-1"],
            format!("*1\r\n*2\r\n+{f}\r\n,1\r\n"),
        ),
        (
            vec!["ZPOPMIN", "forged:zpopmin"],
            format!("*2\r\n+{f}\r\n,1\r\n"),
        ),
        (
            vec!["SSCAN", "forged:sscan", "0"],
            format!("*2\r\n$1\r\n0\r\n*1\r\n+{f}\r\n"),
        ),
        (
            vec!["HSCAN", "forged:hscan", "0"],
            format!("*2\r\n$1\r\n0\r\n*2\r\n$1\r\nf\r\n:{}\r\n", 7),
        ),
        (
            vec!["ZSCAN", "forged:zscan", "0"],
            format!("*2\r\n$1\r\n0\r\n*2\r\n+{f}\r\n,1\r\n"),
        ),
        (
            vec!["LMPOP", "1", "forged:lmpop", "LEFT"],
            format!("*2\r\n$12\r\nforged:lmpop\r\n+{f}\r\n"),
        ),
        (
            vec!["XRANGE", "forged:xrange", "-", "+"],
            format!("*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n+{f}\r\n"),
        ),
        (
            vec!["XREAD", "STREAMS", "forged:xread", "0"],
            format!("%1\r\n$12\r\nforged:xread\r\n+{f}\r\n"),
        ),
        (
            vec!["XINFO", "STREAM", "forged:xinfo"],
            format!("*1\r\n+{f}\r\n"),
        ),
        (
            vec!["BLPOP", "forged:blpop", "1"],
            format!("*2\r\n$12\r\nforged:blpop\r\n+{f}\r\n"),
        ),
    ]
}

/// What a RESP2 client gets in miss mode for each of [`forged_reads`].
const MISSES: &[&str] = &[
    "$-1\r\n",
    "$-1\r\n",
    "$-1\r\n",
    "$-1\r\n",
    "$-1\r\n",
    "*2\r\n$-1\r\n$-1\r\n",
    "$-1\r\n",
    "*2\r\n$-1\r\n$-1\r\n",
    "*0\r\n",
    "*0\r\n",
    "$-1\r\n",
    "$-1\r\n",
    "*0\r\n",
    "$-1\r\n",
    "*0\r\n",
    "*0\r\n",
    "*2\r\n$1\r\n0\r\n*0\r\n",
    "*2\r\n$1\r\n0\r\n*0\r\n",
    "*2\r\n$1\r\n0\r\n*0\r\n",
    "*-1\r\n",
    "*1\r\n*2\r\n$3\r\n1-1\r\n*0\r\n",
    "*1\r\n*2\r\n$12\r\nforged:xread\r\n*0\r\n",
    "$-1\r\n",
    "*-1\r\n",
];

/// A hostile upstream answering each of [`forged_reads`] with its forgery,
/// a transaction as Redis does around GETs of `forged:exec…` (then a forged
/// EXEC array), a forged Pub/Sub message, and INFO with nothing (the proxy
/// adds its own section).
fn forging_upstream(certs: &Certs) -> HostileUpstream {
    let reads = forged_reads();
    let message = format!(
        ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n+{FORGED}\r\n"
    );
    let mut table: Vec<(&str, Answer)> = reads
        .iter()
        .map(|(args, reply)| (args[0], Answer::raw(reply)))
        .collect();
    table.extend([
        ("INFO", Answer::raw("$0\r\n\r\n")),
        // The Pub/Sub hub follows each (un)subscribe with a PING.
        ("PING", Answer::raw("+PONG\r\n")),
        ("MULTI", Answer::raw("+OK\r\n")),
        ("DISCARD", Answer::raw("+OK\r\n")),
        ("EXEC", Answer::raw(format!("*1\r\n+{FORGED}\r\n"))),
        ("SUBSCRIBE", Answer::raw(message)),
        (
            "UNSUBSCRIBE",
            Answer::raw(">3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n"),
        ),
    ]);
    let by_name = Script::table(table, Answer::raw("+OK\r\n"));
    HostileUpstream::start(
        certs,
        Script::new(move |args| {
            if args.get(1).is_some_and(|k| k.starts_with(b"forged:exec")) {
                Answer::raw("+QUEUED\r\n")
            } else {
                by_name.answer(args)
            }
        }),
    )
}

#[tokio::test]
async fn forged_value_types_are_misses_counted_and_logged_without_their_bytes() {
    let certs = Certs::generate();
    let upstream = forging_upstream(&certs);
    let proxy = upstream.proxy().start();
    let mut c = Wire::open(&proxy.endpoint(), false).await;
    let reads = forged_reads();
    assert_eq!(reads.len(), MISSES.len());
    for ((args, _), miss) in reads.iter().zip(MISSES) {
        assert_eq!(&c.cmd(args).await, miss, "{args:?}");
    }
    // EXEC's replies are walked like the commands they answer.
    assert_eq!(c.cmd(&["MULTI"]).await, "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "forged:exec"]).await, "+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]).await, "*1\r\n$-1\r\n");
    // A queued command answered with anything but +QUEUED or an error
    // (sealcache queues the transaction and sends it at EXEC).
    assert_eq!(c.cmd(&["MULTI"]).await, "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "forged:queued"]).await, "+QUEUED\r\n");
    let exec = c.cmd(&["EXEC"]).await;
    assert!(
        exec.starts_with(
            "-ERR sealcache: the upstream's reply is a simple string where +QUEUED belongs"
        ),
        "{exec}"
    );
    assert_eq!(c.cmd(&["PING"]).await, "+PONG\r\n");
    // A forged message is dropped: the unsubscribe confirmation comes next.
    let mut s = Wire::open(&proxy.endpoint(), true).await;
    let subscribed = s.cmd(&["SUBSCRIBE", "ch"]).await;
    assert!(
        subscribed.starts_with(">3\r\n$9\r\nsubscribe"),
        "{subscribed}"
    );
    let next = s.cmd(&["UNSUBSCRIBE", "ch"]).await;
    assert!(next.starts_with(">3\r\n$11\r\nunsubscribe"), "{next}");

    let info = c.cmd(&["INFO"]).await;
    assert!(
        info_field(&info, "decrypt_failures") >= (reads.len() + 3) as u64,
        "{info}"
    );
    assert!(!info.contains(FORGED));
    let log = proxy.wait_for_log("forged:blpop", REPLY_WAIT);
    for (args, _) in &reads {
        let key = args[1..]
            .iter()
            .find(|a| a.starts_with("forged:"))
            .expect("a forged key");
        assert!(
            log.lines()
                .any(|l| l.contains(key) && l.contains("value failed to decrypt")),
            "{key} not logged:\n{log}"
        );
    }
    assert!(log.contains("where a sealed value belongs"), "{log}");
    assert!(
        !log.contains(FORGED),
        "forged bytes reached the log:\n{log}"
    );
}

#[tokio::test]
async fn forged_value_types_are_errors_in_error_mode() {
    let certs = Certs::generate();
    let upstream = forging_upstream(&certs);
    let proxy = upstream
        .proxy()
        .set("encryption.on_decrypt_failure", "error")
        .start();
    let mut c = Wire::open(&proxy.endpoint(), true).await;
    for (args, _) in forged_reads() {
        let reply = c.cmd(&args).await;
        assert!(
            reply.starts_with("-ERR sealcache: a value at key '") && reply.contains("forged:"),
            "{args:?}: {reply}"
        );
        assert!(!reply.contains(FORGED), "{args:?}: {reply}");
    }
    // EXEC's array not matching the queued commands: an error, whatever the mode.
    c.cmd(&["MULTI"]).await;
    c.cmd(&["GET", "forged:exec"]).await;
    c.cmd(&["GET", "forged:exec2"]).await;
    let exec = c.cmd(&["EXEC"]).await;
    assert!(exec.starts_with("-ERR sealcache: the upstream's reply to EXEC is an array of 1 where an array with one reply per queued command (2) belongs"), "{exec}");
    assert_eq!(c.cmd(&["PING"]).await, "+PONG\r\n");
}

/// The shapes the opener checks, as a real redis-server answers them: none
/// may be taken for a forgery (scores, counts, ids, nils where Redis puts them).
#[tokio::test]
async fn real_replies_are_not_taken_for_forgeries() {
    let redis = RedisServer::start_tls(&Certs::generate(), &random_password(32));
    let proxy = Sealcache::builder(&redis).start();
    for resp3 in [false, true] {
        let mut c = Wire::open(&proxy.endpoint(), resp3).await;
        let setup: &[&[&str]] = &[
            &["DEL", "z", "s", "h", "g", "g2", "g3", "st"][..],
            &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
            &["SADD", "s", "x", "y"],
            &["HSET", "h", "f", "v"],
            &[
                "GEOADD", "g", "13.36", "38.11", "palermo", "15.08", "37.50", "catania",
            ],
            &["XADD", "st", "1-1", "f", "v"],
            &["XADD", "st", "2-1", "f", "w"],
            &["XGROUP", "CREATE", "st", "grp", "0"],
            &["XREADGROUP", "GROUP", "grp", "alice", "STREAMS", "st", ">"],
            &["XDEL", "st", "2-1"],
        ];
        for args in setup {
            let reply = c.cmd(args).await;
            assert!(!reply.starts_with('-'), "{args:?}: {reply}");
        }
        let checks: &[(&[&str], Option<&str>)] = &[
            (&["ZPOPMIN", "z"], None),
            (&["ZPOPMAX", "z", "1"], None),
            (&["ZRANDMEMBER", "z"], Some("$1\r\nb\r\n")),
            (&["ZRANDMEMBER", "z", "1", "WITHSCORES"], None),
            (&["ZMPOP", "1", "z", "MIN"], None),
            (&["ZMPOP", "1", "z", "MIN"], None),
            (&["SRANDMEMBER", "s"], None),
            (&["SPOP", "s", "1"], None),
            (&["SPOP", "nokey"], None),
            (&["LPOP", "nokey", "2"], None),
            (&["BLPOP", "nokey", "0.01"], None),
            (&["HRANDFIELD", "h", "1", "WITHVALUES"], None),
            (
                &[
                    "GEORADIUS",
                    "g",
                    "15",
                    "37",
                    "200",
                    "km",
                    "WITHCOORD",
                    "WITHDIST",
                    "WITHHASH",
                ],
                None,
            ),
            (
                &[
                    "GEOSEARCH",
                    "g",
                    "FROMLONLAT",
                    "15",
                    "37",
                    "BYRADIUS",
                    "200",
                    "km",
                    "WITHDIST",
                ],
                None,
            ),
            (
                &["GEORADIUS", "g", "15", "37", "200", "km", "STORE", "g2"],
                Some(":2\r\n"),
            ),
            (
                &[
                    "GEORADIUSBYMEMBER",
                    "g",
                    "palermo",
                    "200",
                    "km",
                    "STOREDIST",
                    "g3",
                ],
                Some(":2\r\n"),
            ),
            (
                &["XREADGROUP", "GROUP", "grp", "alice", "STREAMS", "st", "0"],
                None,
            ),
            (&["XCLAIM", "st", "grp", "bob", "0", "1-1", "JUSTID"], None),
            (
                &["XAUTOCLAIM", "st", "grp", "carol", "0", "0", "JUSTID"],
                None,
            ),
            (&["XAUTOCLAIM", "st", "grp", "dave", "0", "0"], None),
            (&["XINFO", "STREAM", "st"], None),
            (&["XINFO", "STREAM", "st", "FULL"], None),
            (&["XREAD", "COUNT", "1", "STREAMS", "st", "0"], None),
        ];
        for (args, exact) in checks {
            let reply = c.cmd(args).await;
            assert!(!reply.starts_with('-'), "{args:?}: {reply}");
            if let Some(exact) = exact {
                assert_eq!(&reply, exact, "{args:?}");
            }
        }
        let info = c.cmd(&["INFO"]).await;
        assert_eq!(info_field(&info, "decrypt_failures"), 0, "resp3: {resp3}");
    }
}

/// Scores cross from RESP3 (upstream) to RESP2 (client) as Redis prints them
/// for RESP2 (`%.17g`), whether the reply is passed on or rebuilt after opening.
#[tokio::test]
async fn scores_read_as_redis_prints_them() {
    let redis = RedisServer::start_tls(&Certs::generate(), &random_password(32));
    let proxy = Sealcache::builder(&redis).start();
    let mut ours = Wire::open(&proxy.endpoint(), false).await;
    let mut theirs = Wire::open(&redis.endpoint(), false).await;
    // The proxy's members are sealed: redis-server's own copy lives under another key.
    let commands: &[&[&str]] = &[
        &["ZADD", "KEY", "0.1", "a", "1e20", "b", "2.5e-4", "c"],
        &["ZSCORE", "KEY", "a"],
        &["ZMSCORE", "KEY", "a", "b", "c"],
        &["ZRANGE", "KEY", "0", "-1", "WITHSCORES"],
        &["ZINCRBY", "KEY", "0.2", "a"],
    ];
    for args in commands {
        let with = |key: &'static str| -> Vec<&str> {
            args.iter()
                .map(|a| if *a == "KEY" { key } else { a })
                .collect()
        };
        let reply = theirs.cmd(&with("plain:scores")).await;
        assert_eq!(ours.cmd(&with("scores")).await, reply, "{args:?}");
    }
}

// ---- criterion 3: a reply the decoder cannot represent fails alone --------------------------------

/// A RESP3 set holding a map (what COMMAND DOCS sends): redis-protocol 6
/// cannot build it ("to_set: Invalid hash key").
const SET_OF_MAPS: &str = "~1\r\n%2\r\n+summary\r\n$3\r\nget\r\n+flags\r\n~2\r\n+a\r\n#t\r\n";

#[tokio::test]
async fn a_reply_the_decoder_cannot_build_is_forwarded_or_fails_its_command_alone() {
    let certs = Certs::generate();
    let upstream = HostileUpstream::start(
        &certs,
        Script::table(
            [
                ("TYPE", Answer::raw(SET_OF_MAPS)),
                ("GET", Answer::raw(SET_OF_MAPS)),
                ("DBSIZE", Answer::raw(":5\r\n")),
            ],
            Answer::raw("+OK\r\n"),
        ),
    );
    let proxy = upstream.proxy().set("upstream.pool_size", "1").start();
    let mut resp3 = Wire::open(&proxy.endpoint(), true).await;
    let mut resp2 = Wire::open(&proxy.endpoint(), false).await;
    // The lane connects in the background: once it answers, count connections.
    assert_eq!(resp2.cmd(&["DBSIZE"]).await, ":5\r\n");
    let connections = upstream.connections();

    // No values in it: forwarded as bytes, rendered as Redis renders it in RESP2.
    resp3.send(&[&["TYPE", "t"][..], &["DBSIZE"]]).await;
    resp2.send(&[&["TYPE", "t"][..], &["DBSIZE"]]).await;
    assert_eq!(resp3.reply().await, SET_OF_MAPS);
    assert_eq!(resp3.reply().await, ":5\r\n");
    assert_eq!(
        resp2.reply().await,
        "*1\r\n*4\r\n+summary\r\n$3\r\nget\r\n+flags\r\n*2\r\n+a\r\n:1\r\n"
    );
    assert_eq!(resp2.reply().await, ":5\r\n");
    // A value to decrypt in it: that command fails, with a clear error.
    resp3.send(&[&["GET", "k"][..], &["DBSIZE"]]).await;
    let get = resp3.reply().await;
    assert!(
        get.starts_with("-ERR sealcache: cannot decode the reply from backend 'main'")
            && get.contains("Invalid hash key"),
        "{get}"
    );
    assert_eq!(resp3.reply().await, ":5\r\n");
    assert_eq!(resp2.cmd(&["DBSIZE"]).await, ":5\r\n");
    assert_eq!(
        upstream.connections(),
        connections,
        "the shared connection was not torn down"
    );
}

// ---- criterion 7: bounded work for the upstream ---------------------------------------------------

/// The proxy's peak resident memory, from /proc.
fn peak_rss_kib(proxy: &Sealcache) -> u64 {
    let pid = proxy.pid().expect("the proxy runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}

/// A hostile upstream whose TYPE reply is `reply`, DBSIZE `:5`; a proxy on
/// one shared connection to it; two clients.
async fn limit_case(
    reply: Answer,
    settings: &[(&str, &str)],
) -> (HostileUpstream, Sealcache, Wire, Wire) {
    let certs = Certs::generate();
    let upstream = HostileUpstream::start(
        &certs,
        Script::table(
            [("TYPE", reply), ("DBSIZE", Answer::raw(":5\r\n"))],
            Answer::raw("+OK\r\n"),
        ),
    );
    let mut builder = upstream.proxy().set("upstream.pool_size", "1");
    for (key, value) in settings {
        builder = builder.set(key, value);
    }
    let proxy = builder.start();
    let mut a = Wire::open(&proxy.endpoint(), false).await;
    let b = Wire::open(&proxy.endpoint(), true).await;
    // The lane connects in the background: once it answers, connections are counted.
    assert_eq!(a.cmd(&["DBSIZE"]).await, ":5\r\n");
    (upstream, proxy, a, b)
}

#[tokio::test]
async fn a_reply_nested_ten_thousand_deep_fails_that_command_only() {
    let mut deep = "*1\r\n".repeat(10_000);
    deep.push_str(":1\r\n");
    let (upstream, proxy, mut a, mut b) = limit_case(Answer::raw(deep), &[]).await;
    let connections = upstream.connections();
    a.send(&[&["TYPE", "deep"][..], &["DBSIZE"]]).await;
    let refused = a.reply().await;
    assert!(
        refused.starts_with("-ERR sealcache: the reply from backend 'main' ")
            && refused.contains(
                "exceeds upstream.max_reply_depth (32 nested aggregates) and was discarded"
            ),
        "{refused}"
    );
    assert_eq!(
        a.reply().await,
        ":5\r\n",
        "the next command on the same client"
    );
    assert_eq!(b.cmd(&["DBSIZE"]).await, ":5\r\n", "another client");
    assert_eq!(upstream.connections(), connections, "no reconnect");
    assert!(peak_rss_kib(&proxy) < 256 * 1024);
}

#[tokio::test]
async fn a_bulk_claiming_two_gib_fails_that_command_and_is_skipped_unbuffered() {
    let two_gib: u64 = 2 << 30;
    let chunk = vec![b'x'; 1 << 20];
    let huge = Answer::raw(format!("${two_gib}\r\n"))
        .then(Step::Repeat {
            chunk,
            count: two_gib >> 20,
        })
        .then(Step::Write(b"\r\n".to_vec()));
    let (upstream, proxy, mut a, mut b) =
        limit_case(huge, &[("upstream.command_timeout_ms", "300000")]).await;
    let connections = upstream.connections();
    a.send(&[&["TYPE", "huge"][..], &["DBSIZE"]]).await;
    let refused = a.reply().await;
    assert!(
        refused.starts_with("-ERR sealcache: the reply from backend 'main' ")
            && refused
                .contains("exceeds upstream.max_reply_len (1073741824 bytes) and was discarded"),
        "{refused}"
    );
    // Both wait until the 2 GiB have streamed past, then are answered.
    let (next, other) = tokio::join!(
        async {
            tokio::time::timeout(Duration::from_secs(300), a.reply())
                .await
                .expect("answered once the bulk is skipped")
        },
        b.cmd(&["DBSIZE"])
    );
    assert_eq!(next, ":5\r\n", "the next command on the same client");
    assert_eq!(other, ":5\r\n", "another client");
    assert_eq!(upstream.connections(), connections, "no reconnect");
    assert!(
        upstream.bytes_written() > two_gib,
        "the whole bulk went through the proxy"
    );
    let peak = peak_rss_kib(&proxy);
    assert!(peak < 256 * 1024, "the proxy peaked at {peak} KiB");
}

#[tokio::test]
async fn replies_with_too_many_elements_fail_their_command() {
    let mut wide = "*2000\r\n".to_string();
    wide.push_str(&":1\r\n".repeat(2000));
    let (upstream, _proxy, mut a, mut b) = limit_case(
        Answer::raw(wide),
        &[("upstream.max_reply_elements", "1024")],
    )
    .await;
    let connections = upstream.connections();
    let refused = a.cmd(&["TYPE", "wide"]).await;
    assert!(
        refused.contains("exceeds upstream.max_reply_elements (1024 elements)"),
        "{refused}"
    );
    assert_eq!(b.cmd(&["DBSIZE"]).await, ":5\r\n");
    assert_eq!(upstream.connections(), connections);
}
