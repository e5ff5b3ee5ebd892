//! The fallback layer against real redis-server processes (issue 10): a
//! route's backend killed, restarted from an older snapshot, restarted again
//! and again, and paused, while clients keep going. Each test counts the
//! errors its clients saw — none once the circuit is open — and checks in
//! redis-server itself, byte by byte, that every write accepted during the
//! outage arrived there, sealed, after the replay.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::AsyncCommands as _;
use redis::aio::MultiplexedConnection;
use sealcache::crypto::{Sealer, ValueContext, ValueKind};
use sealcache::keys::{KeyRing, MasterKey};
use tokio::time::Instant;

use crate::support::dynamodb::DynamoDbLocal;
use crate::support::{
    Certs, RedisServer, Sealcache, SealcacheBuilder, poll_until_async, random_password,
};

/// How long a recovery may take: the proxy's lanes reconnect with backoff
/// (at most 5 s apart), then the probe and the replay run.
const RECOVERY: Duration = Duration::from_secs(30);
/// The envelope's first bytes (docs/envelope.md).
const MAGIC: [u8; 3] = [0xF5, 0xEA, 0x1C];

/// The fast breaker the tests use: a probe every 100 ms.
const ROUTE: &str =
    "journal_max_entries: 100000, breaker: {failures: 3, window_ms: 2000, probe_interval_ms: 100}";

fn redis() -> RedisServer {
    RedisServer::start_tls(&Certs::generate(), &random_password(24))
}

/// A proxy whose only route has the fallback `spare`; `main` is extra
/// settings of its Redis backend.
fn proxy(redis: &RedisServer, main: &str, route: &str) -> Sealcache {
    Sealcache::builder(redis)
        .admin()
        .fallback(main, route)
        .start()
}

/// The `route_0_circuit` line of INFO, as field → value.
struct Circuit(HashMap<String, String>);

impl Circuit {
    fn state(&self) -> &str {
        &self.0["state"]
    }

    #[track_caller]
    fn count(&self, field: &str) -> u64 {
        self.0[field]
            .parse()
            .unwrap_or_else(|_| panic!("{field} is not a count: {:?}", self.0))
    }
}

impl std::fmt::Debug for Circuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut fields: Vec<_> = self.0.iter().collect();
        fields.sort();
        f.debug_list().entries(fields).finish()
    }
}

async fn circuit(con: &mut MultiplexedConnection) -> Circuit {
    let info: String = redis::cmd("INFO")
        .query_async(con)
        .await
        .expect("INFO through the proxy");
    parse_circuit(&info)
}

/// [`circuit`], or `None` when INFO itself fails: INFO goes to the backend,
/// and fails like any read while the circuit is still closed.
async fn try_circuit(con: &mut MultiplexedConnection) -> Option<Circuit> {
    let info: String = redis::cmd("INFO").query_async(con).await.ok()?;
    Some(parse_circuit(&info))
}

#[track_caller]
fn parse_circuit(info: &str) -> Circuit {
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("route_0_circuit:"))
        .unwrap_or_else(|| panic!("no route_0_circuit line in INFO:\n{info}"));
    Circuit(
        line.split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// Polls INFO until the circuit is in `state` (and, when closing, the
/// journal is empty); returns the circuit then.
async fn wait_for(con: &mut MultiplexedConnection, state: &str, within: Duration) -> Circuit {
    let mut last = None;
    let found = poll_until_async(within, || {
        let mut con = con.clone();
        async move { try_circuit(&mut con).await.filter(|c| c.state() == state) }
    })
    .await;
    if found.is_none() {
        last = try_circuit(con).await;
    }
    found
        .unwrap_or_else(|| panic!("the circuit did not become {state} within {within:?}: {last:?}"))
}

/// Opens what redis-server holds at `key` as sealcache would, after checking
/// that it is an envelope and that `plain` appears nowhere in it.
#[track_caller]
fn open_stored(proxy: &Sealcache, key: &str, stored: &[u8], plain: &[u8]) -> Vec<u8> {
    assert!(
        stored.starts_with(&MAGIC),
        "{key}: not an envelope upstream: {:02x?}",
        &stored[..stored.len().min(12)]
    );
    if plain.len() >= 8 {
        assert!(
            !stored.windows(plain.len()).any(|w| w == plain),
            "{key}: plaintext upstream"
        );
    }
    let sealer = Sealer::new(&KeyRing::from_master(&MasterKey::from_bytes(
        &proxy.master_key(),
    )));
    let context = ValueContext {
        namespace: b"default",
        key: key.as_bytes(),
        kind: ValueKind::String,
    };
    sealer
        .open(&context, stored)
        .unwrap_or_else(|e| panic!("{key}: the stored envelope does not open: {e}"))
}

/// What redis-server itself holds at `key`, opened.
async fn stored_value(
    proxy: &Sealcache,
    raw: &mut MultiplexedConnection,
    key: &str,
    plain: &[u8],
) -> Option<Vec<u8>> {
    let stored: Option<Vec<u8>> = raw.get(key).await.expect("GET straight from redis-server");
    stored.map(|s| open_stored(proxy, key, &s, plain))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_served_from_the_fallback_and_replayed_over_an_older_snapshot() {
    let mut redis = redis();
    let proxy = proxy(&redis, "command_timeout_ms: 2000", ROUTE);
    let mut con = proxy.client().await;
    for i in 0..50 {
        let () = con
            .set(format!("k:{i}"), format!("old value {i}"))
            .await
            .unwrap();
    }
    let () = con.set("gone", "deleted during the outage").await.unwrap();
    let () = con.set("counter", 10).await.unwrap();
    let () = con.hset("h", "f", "old field value").await.unwrap();
    // The snapshot redis-server comes back with holds these older values.
    redis.save_snapshot();
    assert_eq!(circuit(&mut con).await.state(), "closed");

    redis.stop();
    // The first write meets the dead backend and lands on the fallback: the
    // client sees no error, and the circuit is open from then on.
    for i in 0..50 {
        let () = con
            .set(format!("k:{i}"), format!("outage value {i}"))
            .await
            .unwrap_or_else(|e| panic!("SET k:{i} during the outage: {e}"));
    }
    let open = circuit(&mut con).await;
    assert_eq!(open.state(), "open", "{open:?}");
    assert!(open.count("retried") >= 1, "{open:?}");
    // Reads see the outage's writes; a key it did not write reads as missing.
    let got: String = con.get("k:7").await.unwrap();
    assert_eq!(got, "outage value 7");
    let missing: Option<String> = con.get("k:99").await.unwrap();
    assert_eq!(missing, None);
    // A delete reaches the backend too, through the journal.
    let _: i64 = con.del("gone").await.unwrap();
    // A read-modify-write of a key the outage wrote works; of one it did not,
    // it is refused: its value is in the backend.
    let () = con.set("fresh", 5).await.unwrap();
    let n: i64 = con.incr("fresh", 1).await.unwrap();
    assert_eq!(n, 6);
    let refused = con.incr::<_, _, i64>("counter", 1).await.unwrap_err();
    let text = refused.to_string();
    assert!(
        text.contains("backend 'main' is unavailable since")
            && text.contains("only the backend holds"),
        "{text}"
    );
    // A pop takes from a value: on a list the outage has not replaced it is
    // refused (the replay would pop what no client received); on one it has,
    // it works.
    let _: i64 = con
        .rpush("queue", "pushed during the outage")
        .await
        .unwrap();
    let pop = con
        .lpop::<_, Option<String>>("queue", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        pop.contains("LPOP cannot be served by its fallback 'spare'"),
        "{pop}"
    );
    let _: i64 = con.del("jobs").await.unwrap();
    let _: i64 = con.rpush("jobs", "job one").await.unwrap();
    let job: Option<String> = con.lpop("jobs", None).await.unwrap();
    assert_eq!(job.as_deref(), Some("job one"));
    // Expiries are replayed as absolute deadlines.
    let () = redis::cmd("SET")
        .arg("ttl")
        .arg("expires later")
        .arg("EX")
        .arg(100)
        .query_async(&mut con)
        .await
        .unwrap();
    // A transaction runs on the fallback and is replayed as one.
    let (a, b): (String, String) = redis::pipe()
        .atomic()
        .set("m1", "transaction one")
        .set("m2", "transaction two")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("OK", "OK"));
    // A blocking command cannot wait on the fallback: a clear error.
    let blpop = redis::cmd("BLPOP")
        .arg("queue")
        .arg(1)
        .query_async::<Option<Vec<String>>>(&mut con)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        blpop.contains("cannot be served by its fallback 'spare'"),
        "{blpop}"
    );
    let ready = crate::admin::get(proxy.admin_port(), "/readyz");
    assert_eq!(ready.status, 200, "a route served by its fallback is ready");
    let route = &ready.json()["routes"][0];
    assert_eq!(route["circuit"], "open");
    assert_eq!(route["fallback"], "spare");

    // Back with its older snapshot: the replay puts the outage's writes over it.
    redis.restart();
    let closed = wait_for(&mut con, "closed", RECOVERY).await;
    assert_eq!(closed.count("journal_entries"), 0, "{closed:?}");
    assert_eq!((closed.count("opened"), closed.count("closed")), (1, 1));
    // 50 SETs, DEL, SET, INCR, RPUSH, DEL, RPUSH, LPOP, SET … EX (with its
    // PEXPIREAT), MULTI/EXEC.
    assert_eq!(closed.count("replayed"), 59, "{closed:?}");
    assert!(closed.count("failures") >= 1, "{closed:?}");
    let mut raw = redis.client().await;
    for i in 0..50 {
        let plain = format!("outage value {i}");
        let stored = stored_value(&proxy, &mut raw, &format!("k:{i}"), plain.as_bytes()).await;
        assert_eq!(
            stored.as_deref(),
            Some(plain.as_bytes()),
            "k:{i} in redis-server"
        );
    }
    let gone: bool = raw.exists("gone").await.unwrap();
    assert!(!gone, "the delete was replayed");
    assert_eq!(
        stored_value(&proxy, &mut raw, "fresh", b"6")
            .await
            .as_deref(),
        Some(&b"6"[..])
    );
    assert_eq!(
        stored_value(&proxy, &mut raw, "counter", b"10")
            .await
            .as_deref(),
        Some(&b"10"[..]),
        "the refused INCR changed nothing"
    );
    let queue: Vec<Vec<u8>> = raw.lrange("queue", 0, -1).await.unwrap();
    assert_eq!(queue.len(), 1, "the refused LPOP was not replayed");
    let jobs: i64 = raw.llen("jobs").await.unwrap();
    assert_eq!(jobs, 0);
    let pttl: i64 = raw.pttl("ttl").await.unwrap();
    assert!((1..=100_000).contains(&pttl), "PTTL {pttl}");
    for (key, plain) in [("m1", "transaction one"), ("m2", "transaction two")] {
        assert_eq!(
            stored_value(&proxy, &mut raw, key, plain.as_bytes())
                .await
                .as_deref(),
            Some(plain.as_bytes())
        );
    }
    // Untouched by the outage: the snapshot's value.
    let field: String = con.hget("h", "f").await.unwrap();
    assert_eq!(field, "old field value");
    // And through the proxy, from the backend again.
    let got: String = con.get("k:7").await.unwrap();
    assert_eq!(got, "outage value 7");
    let ready = crate::admin::get(proxy.admin_port(), "/readyz");
    assert_eq!(ready.json()["routes"][0]["circuit"], "closed");
}

/// A write a client saw acknowledged, and when it sent it.
#[derive(Clone)]
struct Acked {
    key: String,
    value: String,
    sent: Instant,
}

/// Clients writing and reading back their own keys until stopped: what they
/// saw, and whether the circuit was open (as a side connection saw it, every
/// few milliseconds) when they sent each command.
struct Load {
    stop: Arc<AtomicBool>,
    commands: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    /// Errors of commands sent while the circuit was seen open.
    errors_while_open: Arc<AtomicU64>,
    /// Reads that did not return what the client had just written (a write
    /// the backend took just before it died, read back from the fallback).
    stale_reads: Arc<AtomicU64>,
    first_errors: Arc<std::sync::Mutex<Vec<String>>>,
    open: Arc<AtomicBool>,
    acked: Arc<std::sync::Mutex<Vec<Acked>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    async fn start(proxy: &Sealcache, clients: usize) -> Load {
        let mut load = Load {
            stop: Arc::default(),
            commands: Arc::default(),
            errors: Arc::default(),
            errors_while_open: Arc::default(),
            stale_reads: Arc::default(),
            first_errors: Arc::default(),
            open: Arc::default(),
            acked: Arc::default(),
            tasks: Vec::new(),
        };
        for client in 0..clients {
            let con = proxy.client().await;
            load.tasks.push(tokio::spawn(load.client(con, client)));
        }
        // The side connection that watches the circuit.
        let mut side = proxy.client().await;
        let (stop, open) = (load.stop.clone(), load.open.clone());
        load.tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(c) = try_circuit(&mut side).await {
                    open.store(c.state() != "closed", Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
        load
    }

    fn client(
        &self,
        mut con: MultiplexedConnection,
        client: usize,
    ) -> impl Future<Output = ()> + use<> {
        let (stop, commands, acked) =
            (self.stop.clone(), self.commands.clone(), self.acked.clone());
        let (errors, while_open, stale) = (
            self.errors.clone(),
            self.errors_while_open.clone(),
            self.stale_reads.clone(),
        );
        let (first_errors, open) = (self.first_errors.clone(), self.open.clone());
        async move {
            let failed = |open_when_sent: bool, what: String| {
                errors.fetch_add(1, Ordering::Relaxed);
                if open_when_sent {
                    while_open.fetch_add(1, Ordering::Relaxed);
                }
                let mut first = first_errors.lock().unwrap();
                if first.len() < 10 {
                    first.push(what);
                }
            };
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let key = format!("load:{client}:{n}");
                let value = format!("value of client {client}, write {n}");
                let (sent, open_when_sent) = (Instant::now(), open.load(Ordering::Relaxed));
                commands.fetch_add(1, Ordering::Relaxed);
                match con.set::<_, _, ()>(&key, &value).await {
                    Ok(()) => acked.lock().unwrap().push(Acked {
                        key: key.clone(),
                        value: value.clone(),
                        sent,
                    }),
                    Err(e) => failed(open_when_sent, format!("SET {key}: {e}")),
                }
                let open_when_sent = open.load(Ordering::Relaxed);
                commands.fetch_add(1, Ordering::Relaxed);
                match con.get::<_, Option<String>>(&key).await {
                    Ok(Some(got)) if got == value => {}
                    Ok(_) => {
                        stale.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failed(open_when_sent, format!("GET {key}: {e}")),
                }
            }
        }
    }

    fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    /// Waits until the clients have sent `more` commands beyond now (never
    /// a fixed sleep: as fast as they go).
    async fn progress(&self, more: u64) {
        let target = self.commands() + more;
        let done = poll_until_async(RECOVERY, || async {
            (self.commands() >= target).then_some(())
        })
        .await;
        assert!(
            done.is_some(),
            "the clients stalled at {} commands",
            self.commands()
        );
    }

    /// Stops the clients; returns the report line.
    async fn finish(&mut self, what: &str) -> String {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks.drain(..) {
            task.await.expect("a load client panicked");
        }
        let report = format!(
            "{what}: {} commands, {} client-visible errors ({} while the circuit was open), {} reads of a write the dead backend had taken; first errors: {:?}",
            self.commands(),
            self.errors.load(Ordering::Relaxed),
            self.errors_while_open.load(Ordering::Relaxed),
            self.stale_reads.load(Ordering::Relaxed),
            self.first_errors.lock().unwrap(),
        );
        println!("{report}");
        report
    }

    fn errors_while_open(&self) -> u64 {
        self.errors_while_open.load(Ordering::Relaxed)
    }

    fn acked_since(&self, since: Instant) -> Vec<Acked> {
        self.acked
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.sent >= since)
            .cloned()
            .collect()
    }
}

/// Every write in `acked` is in redis-server, sealed, with its value.
async fn assert_stored(proxy: &Sealcache, redis: &RedisServer, acked: &[Acked]) {
    let mut raw = redis.client().await;
    for chunk in acked.chunks(500) {
        let keys: Vec<&str> = chunk.iter().map(|a| a.key.as_str()).collect();
        let stored: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut raw)
            .await
            .expect("MGET straight from redis-server");
        for (a, stored) in chunk.iter().zip(stored) {
            let stored = stored
                .unwrap_or_else(|| panic!("{} was acknowledged but is not in redis-server", a.key));
            let opened = open_stored(proxy, &a.key, &stored, a.value.as_bytes());
            assert_eq!(opened, a.value.as_bytes(), "{} in redis-server", a.key);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_under_load_from_8_clients_shows_them_no_error_while_the_circuit_is_open() {
    let mut redis = redis();
    let proxy = proxy(&redis, "command_timeout_ms: 2000", ROUTE);
    let mut side = proxy.client().await;
    let mut load = Load::start(&proxy, 8).await;
    load.progress(400).await;

    redis.stop();
    let killed = Instant::now();
    wait_for(&mut side, "open", RECOVERY).await;
    load.progress(800).await;

    redis.restart();
    let closed = wait_for(&mut side, "closed", RECOVERY).await;
    load.progress(400).await;
    let report = load.finish("SIGKILL under load, 8 clients").await;

    assert_eq!(load.errors_while_open(), 0, "{report}");
    assert_eq!(
        (closed.count("opened"), closed.count("closed")),
        (1, 1),
        "{closed:?}"
    );
    assert!(closed.count("replayed") > 0, "{closed:?}");
    // Everything written since the kill (replayed, or written after the
    // recovery) is in the restarted redis-server, sealed.
    let since_kill = load.acked_since(killed);
    assert!(
        since_kill.len() > 100,
        "only {} writes after the kill",
        since_kill.len()
    );
    assert_stored(&proxy, &redis, &since_kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_outages_in_a_row_each_replay_and_close() {
    let mut redis = redis();
    let proxy = proxy(&redis, "command_timeout_ms: 2000", ROUTE);
    let mut side = proxy.client().await;
    let mut load = Load::start(&proxy, 4).await;
    load.progress(200).await;
    for round in 1..=5 {
        redis.stop();
        let killed = Instant::now();
        let open = wait_for(&mut side, "open", RECOVERY).await;
        assert_eq!(open.count("opened"), round, "{open:?}");
        load.progress(200).await;
        redis.restart();
        let closed = wait_for(&mut side, "closed", RECOVERY).await;
        assert_eq!(closed.count("closed"), round, "{closed:?}");
        load.progress(100).await;
        // This redis-server started empty: it has what was written since
        // the kill, through the replay or directly.
        assert_stored(&proxy, &redis, &load.acked_since(killed)).await;
    }
    let report = load.finish("5 × SIGKILL and restart, 4 clients").await;
    assert_eq!(load.errors_while_open(), 0, "{report}");
    // Each change of state is logged once, naming the backend.
    let log = proxy.log().read();
    for (change, times) in [("circuit opened", 5), ("circuit closed", 5)] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(change)).collect();
        assert_eq!(lines.len(), times, "{change}:\n{log}");
        assert!(lines.iter().all(|l| l.contains("main")), "{lines:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_times_out_into_the_fallback_and_its_late_writes_lose_to_the_replay() {
    let redis = redis();
    // Commands time out after 500 ms; the layer waits at most 2 × 500 ms + 1 s.
    let proxy = proxy(&redis, "command_timeout_ms: 500", ROUTE);
    let mut side = proxy.client().await;
    let mut con = proxy.client().await;
    let () = con.set("hot", "before the pause").await.unwrap();
    let mut load = Load::start(&proxy, 4).await;
    load.progress(200).await;

    redis.pause();
    let paused = Instant::now();
    // Sent to the paused server, timed out, run on the fallback: a client
    // sees it succeed, late but bounded by the layer's deadline (2 s, with
    // room for a loaded CI machine; without the retry it would fail).
    let () = con.set("hot", "first write of the pause").await.unwrap();
    assert!(
        paused.elapsed() < Duration::from_secs(6),
        "{:?}",
        paused.elapsed()
    );
    wait_for(&mut side, "open", RECOVERY).await;
    let () = con.set("hot", "last write of the pause").await.unwrap();
    load.progress(400).await;

    // The paused server still holds the first write in its socket buffer and
    // applies it when it resumes; the replay comes after it and wins.
    redis.resume();
    let closed = wait_for(&mut side, "closed", RECOVERY).await;
    load.progress(200).await;
    let report = load.finish("SIGSTOP / SIGCONT, 4 clients").await;
    assert_eq!(load.errors_while_open(), 0, "{report}");
    assert!(closed.count("retried") >= 1, "{closed:?}");
    let mut raw = redis.client().await;
    assert_eq!(
        stored_value(&proxy, &mut raw, "hot", b"last write of the pause")
            .await
            .as_deref(),
        Some(&b"last write of the pause"[..])
    );
    assert_stored(&proxy, &redis, &load.acked_since(paused)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_drops_its_oldest_entries_and_counts_them() {
    let mut redis = redis();
    let proxy = proxy(
        &redis,
        "command_timeout_ms: 2000",
        "journal_max_entries: 5, breaker: {probe_interval_ms: 100}",
    );
    let mut con = proxy.client().await;
    redis.stop();
    for i in 0..8 {
        let () = con
            .set(format!("j:{i}"), format!("journal entry {i}"))
            .await
            .unwrap();
    }
    let full = circuit(&mut con).await;
    assert_eq!(
        (full.count("journal_entries"), full.count("journal_dropped")),
        (5, 3),
        "{full:?}"
    );
    redis.restart();
    let closed = wait_for(&mut con, "closed", RECOVERY).await;
    assert_eq!(closed.count("replayed"), 5, "{closed:?}");
    let mut raw = redis.client().await;
    for i in 0..8 {
        let plain = format!("journal entry {i}");
        let stored = stored_value(&proxy, &mut raw, &format!("j:{i}"), plain.as_bytes()).await;
        let expected = (i >= 3).then(|| plain.into_bytes());
        assert_eq!(stored, expected, "j:{i}: the oldest 3 were dropped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_the_journal_entries_not_replayed() {
    let mut redis = redis();
    let mut proxy = proxy(&redis, "command_timeout_ms: 2000", ROUTE);
    let mut con = proxy.client().await;
    redis.stop();
    for i in 0..3 {
        let () = con.set(format!("s:{i}"), "never replayed").await.unwrap();
    }
    drop(con);
    assert!(proxy.terminate().success());
    let log = proxy.log().read();
    let line = log
        .lines()
        .find(|l| l.contains("journal entries not replayed"))
        .unwrap_or_else(|| panic!("no report of the unreplayed journal:\n{log}"));
    assert!(
        line.contains("unreplayed=3") && line.contains("backend=main"),
        "{line}"
    );
}

#[test]
fn check_config_refuses_a_fallback_that_is_not_a_memory_backend() {
    let redis = redis();
    Sealcache::builder(&redis)
        .fallback("", "")
        .set("routes", "[{prefix: \"\", backend: main, fallback: main}]")
        .run_until_exit("check-config")
        .assert_config_error("a fallback must be a memory backend");
}

/// A DynamoDB route with a memory fallback (`routes: [{prefix: "", backend:
/// shared, fallback: scratch}]`): DynamoDB Local is killed and comes back
/// empty (it runs `-inMemory`, so its table is gone too). The outage is
/// served from the fallback with no client error; on recovery the backend
/// creates its table again (`create_table: true`) and the journal is
/// replayed into it, sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamodb_route_outage_is_served_from_the_fallback_and_replayed_into_a_recreated_table() {
    let certs = Certs::generate();
    let mut local = DynamoDbLocal::start();
    // Short SDK retries, so the dead emulator is noticed quickly.
    let shared = format!(
        "{{type: dynamodb, table: outage, region: us-east-1, endpoint_url: \"{}\", request_timeout_ms: 500, max_attempts: 2}}",
        local.endpoint_url()
    );
    let proxy = SealcacheBuilder::new(&certs)
        .dynamodb_backend("shared", &local, "outage")
        .memory_backend("scratch", "64MiB")
        .set("backends.shared", &shared)
        .set(
            "routes",
            &format!("[{{prefix: \"\", backend: shared, fallback: scratch, {ROUTE}}}]"),
        )
        .start();
    let mut con = proxy.client().await;
    for i in 0..5 {
        let () = con
            .set(
                format!("before:{i}"),
                format!("written before the outage {i}"),
            )
            .await
            .unwrap();
    }
    assert_eq!(circuit(&mut con).await.state(), "closed");

    local.stop();
    // Every command of the outage succeeds: the first write meets the dead
    // backend and is run on the fallback, which opens the circuit.
    let mut errors = Vec::new();
    for i in 0..20 {
        let set: redis::RedisResult<()> =
            con.set(format!("o:{i}"), format!("outage value {i}")).await;
        errors.extend(set.err().map(|e| format!("SET o:{i}: {e}")));
    }
    let open = wait_for(&mut con, "open", RECOVERY).await;
    assert!(open.count("retried") >= 1, "{open:?}");
    let got: redis::RedisResult<String> = con.get("o:7").await;
    match got {
        Ok(got) => assert_eq!(got, "outage value 7"),
        Err(e) => errors.push(format!("GET o:7: {e}")),
    }
    let set: redis::RedisResult<()> = con.set("n", 5).await;
    errors.extend(set.err().map(|e| format!("SET n: {e}")));
    for expected in 6..=8 {
        match con.incr::<_, _, i64>("n", 1).await {
            Ok(n) => assert_eq!(n, expected),
            Err(e) => errors.push(format!("INCR n: {e}")),
        }
    }
    // A write with an expiry is journaled with its absolute PEXPIREAT.
    let set: redis::RedisResult<()> = redis::cmd("SET")
        .arg("ttl")
        .arg("expires later")
        .arg("EX")
        .arg(100)
        .query_async(&mut con)
        .await;
    errors.extend(set.err().map(|e| format!("SET ttl EX: {e}")));
    println!(
        "client-visible errors during the DynamoDB outage: {}",
        errors.len()
    );
    assert_eq!(errors, Vec::<String>::new());

    // Back, empty: no table. The probe finds it missing, the backend
    // creates it again, and the journal is replayed into it.
    local.restart();
    let closed = wait_for(&mut con, "closed", RECOVERY).await;
    assert_eq!(closed.count("journal_entries"), 0, "{closed:?}");
    assert_eq!((closed.count("opened"), closed.count("closed")), (1, 1));
    // 20 SETs, SET, 3 INCRs, SET … EX (with its PEXPIREAT, as one entry).
    assert_eq!(closed.count("replayed"), 25, "{closed:?}");
    assert_eq!(closed.count("replay_errors"), 0, "{closed:?}");
    for i in 0..20 {
        let (key, plain) = (format!("o:{i}"), format!("outage value {i}"));
        let stored = local
            .raw_string("outage", &key)
            .await
            .unwrap_or_else(|| panic!("{key} was not replayed into the table"));
        assert_eq!(
            open_stored(&proxy, &key, &stored, plain.as_bytes()),
            plain.as_bytes()
        );
    }
    let stored = local.raw_string("outage", "n").await.expect("n replayed");
    assert_eq!(open_stored(&proxy, "n", &stored, b"8"), b"8");
    // Through the proxy, from the table again.
    let got: String = con.get("o:7").await.unwrap();
    assert_eq!(got, "outage value 7");
    let n: i64 = con.incr("n", 1).await.unwrap();
    assert_eq!(n, 9);
    let ttl: i64 = con.ttl("ttl").await.unwrap();
    assert!((1..=100).contains(&ttl), "TTL {ttl}");
    // What the emulator lost when it restarted empty is gone: the journal
    // holds the outage's writes, not the table's earlier content.
    let before: Option<String> = con.get("before:0").await.unwrap();
    assert_eq!(before, None);
}
