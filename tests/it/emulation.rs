//! Emulated commands at full strength (issue 11): hot keys never fail, the
//! commands waiting on one key are applied together in arrival order with
//! redis-server's replies, emulated commands work inside MULTI/EXEC.

use std::time::Duration;

use redis::AsyncCommands as _;

use crate::support::twin::{Conn, Proto, Reply, Twin, show_args};
use crate::support::{
    Answer, Certs, HostileUpstream, RedisServer, Script, Sealcache, SealcacheBuilder,
    random_password,
};

const POLL: Duration = crate::support::POLL_INTERVAL;

fn upstream() -> RedisServer {
    RedisServer::start_tls(&Certs::generate(), &random_password(32))
}

/// A proxy whose only backend is the in-process memory store.
fn memory_proxy() -> Sealcache {
    SealcacheBuilder::new(&Certs::generate())
        .unset("upstream.url")
        .unset("upstream.ca_file")
        .yaml("backends:\n  main: {type: memory}\nroutes:\n  - {prefix: \"\", backend: main}\n")
        .start()
}

fn args(line: &str) -> Vec<&[u8]> {
    line.split_whitespace().map(str::as_bytes).collect()
}

/// A field of the proxy's INFO.
fn info_field(info: &Reply, name: &str) -> Option<i64> {
    let text = String::from_utf8_lossy(info.text()?).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
}

/// A counter of the proxy's INFO, through a `redis` crate connection.
async fn info_count(con: &mut redis::aio::MultiplexedConnection, name: &str) -> u64 {
    let info: String = redis::cmd("INFO").query_async(con).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO has no {name}"))
}

// ---- criterion 1: hot keys never fail ------------------------------------------------------

/// Waits for client tasks that return the errors they saw; fails on any.
async fn assert_no_errors(tasks: Vec<tokio::task::JoinHandle<Vec<String>>>) {
    let mut errors = Vec::new();
    for task in tasks {
        errors.extend(task.await.unwrap());
    }
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
}

/// 50 clients × 200 INCR on one key: every one answered, none lost.
async fn hot_key_takes_every_increment(proxy: &Sealcache) -> redis::aio::MultiplexedConnection {
    const CLIENTS: usize = 50;
    const EACH: usize = 200;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let endpoint = proxy.endpoint();
        tasks.push(tokio::spawn(async move {
            let mut con = endpoint.client().await;
            let mut errors = Vec::new();
            for _ in 0..EACH {
                if let Err(e) = con.incr::<_, _, i64>("hot", 1).await {
                    errors.push(e.to_string());
                }
            }
            errors
        }));
    }
    assert_no_errors(tasks).await;
    let mut con = proxy.client().await;
    // INCRBY 0 reads the total through the emulation on every backend.
    let total: i64 = con.incr("hot", 0).await.unwrap();
    assert_eq!(total, (CLIENTS * EACH) as i64);
    con
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_increment_one_key_without_an_error() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut con = hot_key_takes_every_increment(&proxy).await;
    // Increments that waited behind a run shared the next one.
    let coalesced = info_count(&mut con, "rmw_coalesced").await;
    assert!(coalesced > 0, "50 clients on one key never shared a run");
    // Stored sealed: the upstream holds no plaintext counter.
    let mut raw = proxy.raw_upstream().client().await;
    let stored: Vec<u8> = raw.get("hot").await.unwrap();
    assert_ne!(
        stored, b"10000",
        "the counter reached the upstream in plaintext"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_increment_one_key_on_the_memory_backend() {
    let proxy = memory_proxy();
    hot_key_takes_every_increment(&proxy).await;
}

/// Two proxies on one Redis (other writers for each other), 20 clients each,
/// APPEND and HINCRBY on shared keys: conflicts are retried until they go
/// through, so the totals are exact and no client sees an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proxies_share_hot_keys_without_errors() {
    const CLIENTS: usize = 20;
    const EACH: usize = 50;
    let redis = upstream();
    let master_key: [u8; 32] = rand::random();
    let proxies = [
        Sealcache::builder(&redis).master_key(master_key).start(),
        Sealcache::builder(&redis).master_key(master_key).start(),
    ];
    let mut tasks = Vec::new();
    for proxy in &proxies {
        for i in 0..CLIENTS {
            let endpoint = proxy.endpoint();
            tasks.push(tokio::spawn(async move {
                let mut con = endpoint.client().await;
                let mut errors = Vec::new();
                for _ in 0..EACH {
                    let result = if i % 2 == 0 {
                        con.append::<_, _, i64>("shared:text", "x").await
                    } else {
                        con.hincr::<_, _, _, i64>("shared:hash", "n", 1).await
                    };
                    if let Err(e) = result {
                        errors.push(e.to_string());
                    }
                }
                errors
            }));
        }
    }
    assert_no_errors(tasks).await;
    let each_kind = (proxies.len() * CLIENTS / 2 * EACH) as i64;
    for proxy in &proxies {
        let mut con = proxy.client().await;
        let len: i64 = con.strlen("shared:text").await.unwrap();
        assert_eq!(len, each_kind, "APPENDs lost");
        let n: i64 = con.hget("shared:hash", "n").await.unwrap();
        assert_eq!(n, each_kind, "HINCRBYs lost");
    }
}

/// Another writer that changes the key every time (an upstream whose EXEC
/// always aborts): sealcache retries with growing pauses until the command
/// timeout, then says why it gave up.
#[tokio::test]
async fn a_key_that_always_changes_gives_up_at_the_command_timeout() {
    let certs = Certs::generate();
    let upstream = HostileUpstream::start(
        &certs,
        Script::table(
            [
                ("GET", Answer::raw("_\r\n")),
                ("SET", Answer::raw("+QUEUED\r\n")),
                ("EXEC", Answer::raw("_\r\n")),
            ],
            Answer::raw("+OK\r\n"),
        ),
    );
    let proxy = upstream
        .proxy()
        .set("upstream.command_timeout_ms", "600")
        .start();
    let mut c = Conn::open(&proxy.endpoint(), Proto::Resp2).await;
    let started = std::time::Instant::now();
    let reply = c.words("INCR contended").await;
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&reply.bytes()).into_owned();
    assert!(
        text.starts_with("-ERR sealcache: gave up after ")
            && text.contains("ms of conflicting concurrent writes to the same key; retry"),
        "{text}"
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "gave up after {waited:?}"
    );
    // Backoff between attempts, not a busy loop (1 ms doubling to 256 ms, jittered).
    let attempts = upstream.count("EXEC");
    assert!((3..200).contains(&attempts), "{attempts} attempts");
}

/// Runs on different keys share the backend's round trips (one WATCH,
/// MULTI and EXEC for several keys); a key of the wrong type among them
/// fails only its own commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_different_keys_share_round_trips() {
    const CLIENTS: usize = 30;
    const EACH: i64 = 60;
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut con = proxy.client().await;
    let _: i64 = con.rpush("list", "x").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let endpoint = proxy.endpoint();
        tasks.push(tokio::spawn(async move {
            let mut con = endpoint.client().await;
            let mut errors = Vec::new();
            for j in 1..=EACH {
                match con.incr::<_, _, i64>(format!("key:{i}"), 1).await {
                    Ok(n) if n == j => {}
                    other => errors.push(format!("INCR key:{i} #{j}: {other:?}")),
                }
                match con.hincr::<_, _, _, i64>(format!("hash:{i}"), "f", 2).await {
                    Ok(n) if n == 2 * j => {}
                    other => errors.push(format!("HINCRBY hash:{i} #{j}: {other:?}")),
                }
                if j % 10 == 0 {
                    match con.incr::<_, _, i64>("list", 1).await {
                        Err(e) if e.code() == Some("WRONGTYPE") => {}
                        other => errors.push(format!("INCR list: {other:?}")),
                    }
                }
            }
            errors
        }));
    }
    assert_no_errors(tasks).await;
    let grouped = info_count(&mut con, "rmw_grouped").await;
    assert!(grouped > 0, "no two keys ever shared a read-modify-write");
}

/// A hot key keeps a connection WATCHing it between its read-modify-writes
/// (one round trip each); a write through another proxy in between makes
/// the next EXEC fail and start again from a fresh read, so nothing is lost.
#[tokio::test]
async fn a_hot_key_written_elsewhere_between_increments_loses_nothing() {
    let redis = upstream();
    let master_key: [u8; 32] = rand::random();
    let proxy = Sealcache::builder(&redis).master_key(master_key).start();
    let other = Sealcache::builder(&redis).master_key(master_key).start();
    let mut c = proxy.client().await;
    let mut o = other.client().await;
    let mut expected = 0;
    let mut warm_seen = 0;
    for round in 0..20 {
        for _ in 0..3 {
            expected += 1;
            let n: i64 = c.incr("warm", 1).await.unwrap();
            assert_eq!(n, expected, "round {round}");
        }
        warm_seen = warm_seen.max(info_count(&mut c, "backend_main_pinned_warm").await);
        expected = 1000 * (round + 1);
        let () = o.set("warm", expected).await.unwrap();
        let m: i64 = o.incr("warm:other", 1).await.unwrap();
        assert_eq!(m, round + 1);
    }
    assert!(warm_seen > 0, "no connection was kept for the hot key");
}

// ---- criterion 2: coalescing -------------------------------------------------------------------

/// Commands that wait together on their keys; each client's reply must be
/// redis-server's at the command's place in arrival order. (DECRBY with a
/// non-integer argument is refused before it reads, so it never waits.)
const WAITING: &[&str] = &[
    "INCR c",
    "INCRBY c 5",
    "HINCRBY h f 2",
    "INCRBYFLOAT c 0.5",
    "INCR c",
    "DECRBY c notanumber",
    "HINCRBYFLOAT h f 0.25",
    "INCRBYFLOAT c 0.5",
    "DECR c",
    "HINCRBY h f 1",
    "DECRBY c 4",
    "APPEND c 7",
    "HINCRBYFLOAT h f 0.75",
    "HINCRBY h f 1",
    "SETRANGE c 0 9",
    "STRLEN c",
    "INCRBY c -100",
    "INCR max",
    "INCR max",
    "DECR max",
    "APPEND fresh abc",
    "SETRANGE fresh 5 z",
    "INCR fresh",
    "HINCRBY h g 3",
    "HSTRLEN h f",
];

/// Holds every emulated command of the proxy behind its key's first run:
/// the upstream pauses writes, the commands are sent one by one (each seen
/// waiting in INFO before the next, so arrival order is known), then the
/// upstream resumes and each key's waiting commands go in one run.
async fn coalesced_replies_match_redis(proxy: &Sealcache, proto: Proto) {
    let mut t = Twin::open(proxy, proto).await;
    t.lines(&[
        "SET c 10 EX 1000",
        "HSET h f 1",
        "EXPIRE h 1000",
        "SET max 9223372036854775806",
    ])
    .await;
    let mut admin = Conn::open(&proxy.raw_upstream(), proto).await;
    let mut probe = Conn::open(&proxy.endpoint(), proto).await;
    let before = info_field(&probe.words("INFO").await, "rmw_coalesced").expect("rmw_coalesced");
    let paused = admin.words("CLIENT PAUSE 20000 WRITE").await;
    assert_eq!(paused.bytes(), b"+OK\r\n", "{paused:?}");
    let mut clients = Vec::new();
    let mut expected = 0;
    for (i, line) in WAITING.iter().enumerate() {
        let mut conn = Conn::open(&proxy.endpoint(), proto).await;
        conn.send(&[&args(line)]).await;
        clients.push(conn);
        if line.ends_with("notanumber") {
            continue;
        }
        expected += 1;
        // A readiness poll, with a deadline: the command has reached its key's queue.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut waiting = info_field(&probe.words("INFO").await, "rmw_waiting");
        while waiting != Some(expected) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
            waiting = info_field(&probe.words("INFO").await, "rmw_waiting");
        }
        assert_eq!(
            waiting,
            Some(expected),
            "{line} (command {i}) is not waiting"
        );
    }
    assert_eq!(admin.words("CLIENT UNPAUSE").await.bytes(), b"+OK\r\n");
    for (line, conn) in WAITING.iter().zip(clients.iter_mut()) {
        let through = conn.read().await;
        let direct = t.direct.call(&args(line)).await;
        t.compare(&show_args(&args(line)), &through, &direct);
    }
    for line in ["GET c", "HGETALL h", "GET max", "GET fresh", "TTL h"] {
        t.words(line).await;
    }
    let ttl = t.proxy.words("PTTL c").await;
    assert!(
        ttl.kind == b':' && ttl.line.first() != Some(&b'-'),
        "INCR lost the TTL: {ttl:?}"
    );
    t.assert_no_mismatch();
    let after = info_field(&probe.words("INFO").await, "rmw_coalesced").expect("rmw_coalesced");
    // 24 commands in 10 runs: c [INCR], [the other 10]; h [HINCRBY f],
    // [the next 4 on f], [HINCRBY g], [HSTRLEN f]; max and fresh [first], [other 2].
    assert!(
        after - before >= 14,
        "only {} of {} waiting commands shared a run",
        after - before,
        WAITING.len()
    );
}

#[tokio::test]
async fn waiting_commands_share_a_run_and_answer_as_redis_resp2() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    coalesced_replies_match_redis(&proxy, Proto::Resp2).await;
}

#[tokio::test]
async fn waiting_commands_share_a_run_and_answer_as_redis_resp3() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    coalesced_replies_match_redis(&proxy, Proto::Resp3).await;
}

// ---- criterion 3: emulated commands inside MULTI/EXEC ------------------------------------------

/// Transactions with emulated commands, each line run on both sides.
const TRANSACTIONS: &[&[&str]] = &[
    // The rate limiter: INCR, then the window's TTL, atomically.
    &["MULTI", "INCR rl", "EXPIRE rl 60", "EXEC"],
    &[
        "MULTI",
        "INCR rl",
        "EXPIRE rl 60",
        "EXEC",
        "TTL rl",
        "GET rl",
    ],
    // Two INCRs (and more) on one key, and a read after them.
    &[
        "MULTI",
        "INCR c",
        "INCR c",
        "INCRBY c 5",
        "DECR c",
        "GET c",
        "EXEC",
    ],
    // SET then INCR: the INCR computes on the value the SET queued.
    &[
        "MULTI",
        "SET s 41 EX 100",
        "INCR s",
        "GET s",
        "EXEC",
        "TTL s",
    ],
    &[
        "MULTI",
        "SET s2 x",
        "SET s2 9 XX",
        "SET s2 100 NX",
        "INCRBY s2 -10",
        "EXEC",
    ],
    &[
        "MULTI",
        "MSET m1 1 m2 2",
        "INCR m2",
        "DEL m1",
        "INCR m1",
        "GETSET m2 7",
        "DECR m2",
        "EXEC",
    ],
    // A non-integer in the middle: its error in its place, the rest applied.
    &[
        "SET w hello",
        "MULTI",
        "SET a 1",
        "INCR w",
        "INCR a",
        "APPEND w !",
        "GET w",
        "EXEC",
    ],
    &[
        "MULTI",
        "INCRBY a notanumber",
        "INCRBYFLOAT a 0.5",
        "INCR a",
        "EXEC",
        "GET a",
    ],
    // Types: WRONGTYPE in place, and a key deleted and reused in the queue.
    &[
        "RPUSH l x",
        "MULTI",
        "INCR l",
        "DEL l",
        "INCR l",
        "HINCRBY l f 1",
        "EXEC",
    ],
    &[
        "MULTI",
        "HSET h f 1",
        "HINCRBY h f 2",
        "HINCRBYFLOAT h f 0.5",
        "HGET h f",
        "HSTRLEN h f",
        "EXEC",
    ],
    &[
        "MULTI",
        "HINCRBY h2 f 1",
        "INCR h2",
        "SETRANGE h2 0 x",
        "EXEC",
    ],
    &[
        "MULTI",
        "APPEND ap abc",
        "SETRANGE ap 1 Z",
        "GETRANGE ap 0 -1",
        "STRLEN ap",
        "EXEC",
    ],
    &[
        "MULTI",
        "SET big 9223372036854775806",
        "INCR big",
        "INCR big",
        "DECR big",
        "EXEC",
    ],
    // Only emulated commands, and an empty transaction.
    &["MULTI", "INCR x", "INCR y", "INCRBYFLOAT y 1.5", "EXEC"],
    &["MULTI", "EXEC"],
    // A queue-time error still aborts, and DISCARD drops emulated commands.
    &["MULTI", "INCR q", "GET", "EXEC", "EXISTS q"],
    &["MULTI", "INCR d", "DISCARD", "EXISTS d"],
    // After WATCH, with and without emulated commands, nobody interfering.
    &["WATCH c", "MULTI", "INCR c", "GET c", "EXEC"],
    &["WATCH c s", "GET c", "MULTI", "SET c 1", "GET c", "EXEC"],
    &["WATCH c", "MULTI", "EXEC"],
    &["WATCH c", "MULTI", "INCR c", "DISCARD", "GET c"],
];

/// Runs every transaction of [`TRANSACTIONS`] on both sides of `t`.
async fn transactions_match(t: &mut Twin, reads: Reads) {
    for script in TRANSACTIONS {
        run_script(t, script, reads).await;
    }
}

/// How a script reads a string outside MULTI.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    Get,
    /// GETRANGE k 0 -1 instead of GET k: GET of a memory route (outside a
    /// transaction) is not what these tests are about, and fails there today.
    GetRange,
}

async fn run_script(t: &mut Twin, script: &[&str], reads: Reads) {
    let mut queued = false;
    for line in script {
        let line = match line.strip_prefix("GET ") {
            Some(key) if !queued && reads == Reads::GetRange => format!("GETRANGE {key} 0 -1"),
            _ => (*line).to_owned(),
        };
        queued = match line.as_str() {
            "MULTI" => true,
            "EXEC" | "DISCARD" => false,
            _ => queued,
        };
        t.words(&line).await;
    }
}

/// Another client writes a key between WATCH and EXEC: the transaction
/// aborts, emulated commands and all, as on redis-server.
async fn watch_conflict_aborts(
    t: &mut Twin,
    other_proxy: &mut Conn,
    other_direct: &mut Conn,
    reads: Reads,
) {
    t.lines(&["SET wk 1", "WATCH wk", "MULTI", "INCR wk", "SET other 1"])
        .await;
    assert_eq!(other_proxy.words("SET wk 10").await.bytes(), b"+OK\r\n");
    assert_eq!(other_direct.words("SET wk 10").await.bytes(), b"+OK\r\n");
    let aborted = t.words("EXEC").await;
    assert!(
        aborted.items.is_empty(),
        "EXEC after a conflict: {aborted:?}"
    );
    run_script(t, &["GET wk", "EXISTS other"], reads).await;
    // The WATCH is gone after EXEC: the next transaction goes through.
    t.lines(&["MULTI", "INCR wk", "EXEC"]).await;
    // A conflict on another watched key than the emulated command's.
    t.lines(&["WATCH w2", "MULTI", "INCR wk", "EXEC"]).await;
    t.lines(&["WATCH w2", "MULTI", "INCR wk"]).await;
    assert_eq!(other_proxy.words("SET w2 x").await.bytes(), b"+OK\r\n");
    assert_eq!(other_direct.words("SET w2 x").await.bytes(), b"+OK\r\n");
    t.words("EXEC").await;
    run_script(t, &["GET wk"], reads).await;
}

async fn select_direct(conn: &mut Conn) {
    let selected = conn
        .words(&format!("SELECT {}", crate::support::twin::DIRECT_DB))
        .await;
    assert_eq!(selected.bytes(), b"+OK\r\n", "{selected:?}");
}

async fn transactions_answer_as_redis(proto: Proto) {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut t = Twin::open(&proxy, proto).await;
    transactions_match(&mut t, Reads::Get).await;
    let mut other_proxy = Conn::open(&proxy.endpoint(), proto).await;
    let mut other_direct = Conn::open(&proxy.raw_upstream(), proto).await;
    select_direct(&mut other_direct).await;
    watch_conflict_aborts(&mut t, &mut other_proxy, &mut other_direct, Reads::Get).await;
    t.assert_no_mismatch();
    // What the transactions computed is stored sealed.
    let mut raw = Conn::open(&proxy.raw_upstream(), proto).await;
    let stored = raw.words("GET rl").await;
    assert!(
        stored.text().is_some_and(|v| v != b"2"),
        "upstream: {stored:?}"
    );
    assert_eq!(t.proxy.words("GET rl").await.text(), Some(&b"2"[..]));
}

#[tokio::test]
async fn emulated_commands_inside_multi_answer_as_redis_resp2() {
    transactions_answer_as_redis(Proto::Resp2).await;
}

#[tokio::test]
async fn emulated_commands_inside_multi_answer_as_redis_resp3() {
    transactions_answer_as_redis(Proto::Resp3).await;
}

/// The same transactions on a memory backend, against redis-server.
#[tokio::test]
async fn emulated_commands_inside_multi_on_the_memory_backend() {
    let redis = upstream();
    let proxy = memory_proxy();
    let proto = Proto::Resp3;
    let mut direct = Conn::open(&redis.endpoint(), proto).await;
    select_direct(&mut direct).await;
    let mut t = Twin {
        proxy: Conn::open(&proxy.endpoint(), proto).await,
        direct,
        proto,
        mismatches: Vec::new(),
    };
    transactions_match(&mut t, Reads::GetRange).await;
    let mut other_proxy = Conn::open(&proxy.endpoint(), proto).await;
    let mut other_direct = Conn::open(&redis.endpoint(), proto).await;
    select_direct(&mut other_direct).await;
    watch_conflict_aborts(&mut t, &mut other_proxy, &mut other_direct, Reads::GetRange).await;
    t.assert_no_mismatch();
}

/// An emulated command on a key whose value an earlier queued command
/// computes on the server is refused when queued, and EXEC aborts.
#[tokio::test]
async fn emulated_command_after_a_server_computed_value_is_refused() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut c = Conn::open(&proxy.endpoint(), Proto::Resp2).await;
    for (line, reply) in [
        ("SADD a 1", ":1\r\n"),
        ("MULTI", "+OK\r\n"),
        ("SUNIONSTORE k a", "+QUEUED\r\n"),
        ("INCR other", "+QUEUED\r\n"),
    ] {
        assert_eq!(
            String::from_utf8_lossy(&c.words(line).await.bytes()),
            reply,
            "{line}"
        );
    }
    let refused = c.words("APPEND k x").await;
    assert_eq!(
        String::from_utf8_lossy(&refused.bytes()),
        "-ERR sealcache: APPEND of 'k' inside MULTI comes after SUNIONSTORE, which changes that key on the server in a way sealcache cannot follow: sealcache reads the key before the transaction runs. Run APPEND after EXEC, or in a transaction of its own\r\n"
    );
    let exec = c.words("EXEC").await;
    assert_eq!(
        exec.bytes(),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(c.words("EXISTS other k").await.bytes(), b":0\r\n");
    // EXPIRE with a positive TTL is followed; with 0 it deletes, which is not.
    assert_eq!(c.words("MULTI").await.bytes(), b"+OK\r\n");
    assert_eq!(c.words("EXPIRE e 60").await.bytes(), b"+QUEUED\r\n");
    assert_eq!(c.words("INCR e").await.bytes(), b"+QUEUED\r\n");
    assert_eq!(c.words("EXPIRE e 0").await.bytes(), b"+QUEUED\r\n");
    assert!(c.words("INCR e").await.is_error());
    assert_eq!(c.words("DISCARD").await.bytes(), b"+OK\r\n");

    // A command the upstream refuses to queue (out of memory) aborts EXEC.
    // sealcache queues transactions itself and sends them at EXEC, so the
    // refusal comes at EXEC (README, known differences).
    let mut admin = Conn::open(&proxy.raw_upstream(), Proto::Resp2).await;
    assert_eq!(
        admin.words("CONFIG SET maxmemory 1").await.bytes(),
        b"+OK\r\n"
    );
    assert_eq!(c.words("MULTI").await.bytes(), b"+OK\r\n");
    assert_eq!(c.words("INCR oom").await.bytes(), b"+QUEUED\r\n");
    assert_eq!(c.words("SET oom 1").await.bytes(), b"+QUEUED\r\n");
    let refused = c.words("EXEC").await;
    assert!(refused.bytes().starts_with(b"-EXECABORT"), "{refused:?}");
    assert_eq!(
        admin.words("CONFIG SET maxmemory 0").await.bytes(),
        b"+OK\r\n"
    );
    assert_eq!(c.words("EXISTS oom").await.bytes(), b":0\r\n");
}
