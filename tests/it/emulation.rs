//! Emulated commands at full strength (issue 11): hot keys never fail, the
//! commands waiting on one key are applied together in arrival order with
//! redis-server's replies, emulated commands work inside MULTI/EXEC.

use std::time::Duration;

use redis::AsyncCommands as _;

use crate::support::twin::{Conn, Proto, Reply, Twin, show_args};
use crate::support::{Certs, RedisServer, Sealcache, SealcacheBuilder, random_password};

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
    let info: String = redis::cmd("INFO").query_async(&mut con).await.unwrap();
    let coalesced = info
        .lines()
        .find_map(|l| l.strip_prefix("rmw_coalesced:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("INFO rmw_coalesced");
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
