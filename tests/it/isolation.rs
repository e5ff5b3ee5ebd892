//! Isolation between clients, against a real TLS redis-server: one client's
//! commands keep their order across upstream connections; a client that does
//! not read is cut off without stalling the shared connection or growing
//! Redis's buffers; unauthenticated clients get Redis's frame caps; dedicated
//! connections are shared fairly and blocking commands have their own; a
//! client that leaves takes its blocking command with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::support::endpoint::{HOST, exchange};
use crate::support::{Certs, RedisServer, Sealcache, poll_until_async, random_password};

fn upstream() -> RedisServer {
    RedisServer::start_tls(&Certs::generate(), &random_password(32))
}

/// A raw TLS connection to the proxy, authenticated as `default`.
async fn authenticated_raw(proxy: &Sealcache) -> TlsStream<tokio::net::TcpStream> {
    let mut raw = proxy.raw_tls().await;
    let auth = format!("AUTH {}\r\n", proxy.password());
    raw.write_all(auth.as_bytes()).await.unwrap();
    read_exactly(&mut raw, "+OK\r\n", Duration::from_secs(5)).await;
    raw
}

/// Reads until `expected` bytes arrived (or fails after `deadline`).
async fn read_exactly<S: AsyncRead + Unpin>(stream: &mut S, expected: &str, deadline: Duration) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + deadline;
    while got.len() < expected.len() {
        match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            other => panic!(
                "connection ended or timed out ({other:?}) after {:?}; expected {expected:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    assert_eq!(String::from_utf8_lossy(&got), expected);
}

/// Sends `request` and expects exactly `reply` back.
async fn ask<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, request: &[u8], reply: &str) {
    stream.write_all(request).await.unwrap();
    read_exactly(stream, reply, Duration::from_secs(5)).await;
}

fn info_field(info: &str, name: &str) -> i64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("INFO has no {name}:\n{info}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("INFO {name} is not a number: {e}"))
}

/// Clients blocked in a blocking command on redis-server itself.
async fn blocked_clients(side: &mut MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(side)
        .await
        .unwrap();
    info_field(&info, "blocked_clients")
}

/// Polls redis-server until `want` clients are blocked.
async fn wait_for_blocked(side: &mut MultiplexedConnection, want: i64, deadline: Duration) {
    let reached = poll_until_async(deadline, || {
        let mut side = side.clone();
        async move { (blocked_clients(&mut side).await == want).then_some(()) }
    })
    .await;
    let now = blocked_clients(side).await;
    assert!(
        reached.is_some(),
        "redis-server should have {want} blocked clients within {deadline:?}; it has {now}"
    );
}

/// One atomic look at redis-server: `command`'s reply and how many clients
/// are blocked, at the same instant (MULTI/EXEC on the side connection).
async fn snapshot(side: &mut MultiplexedConnection, command: &[&str]) -> (i64, i64) {
    let mut cmd = redis::cmd(command[0]);
    for arg in &command[1..] {
        cmd.arg(*arg);
    }
    let (value, info): (i64, String) = redis::pipe()
        .atomic()
        .add_command(cmd)
        .cmd("INFO")
        .arg("clients")
        .query_async(side)
        .await
        .unwrap();
    (value, info_field(&info, "blocked_clients"))
}

/// While a pipelined blocking command still blocks upstream, `probe` on the
/// side connection must keep reading `before`: the next command has not run.
async fn assert_not_run_while_blocked(
    side: &mut MultiplexedConnection,
    probe: &[&str],
    before: i64,
) {
    wait_for_blocked(side, 1, Duration::from_secs(5)).await;
    let mut looks = 0;
    loop {
        let (value, blocked) = snapshot(side, probe).await;
        if blocked == 0 {
            break;
        }
        looks += 1;
        assert_eq!(
            value, before,
            "{probe:?} changed while the earlier blocking command was still blocked: the later command ran first"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(looks > 0, "the blocking command was never seen blocked");
}

// ---- 7.4: command order across upstream connections ------------------------

#[tokio::test]
async fn an_emulated_command_waits_for_the_blocking_command_before_it() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut side = proxy.raw_upstream().client().await;
    let mut raw = authenticated_raw(&proxy).await;
    raw.write_all(b"BLPOP ord:q 1.5\r\nINCR ord:c\r\n")
        .await
        .unwrap();
    assert_not_run_while_blocked(&mut side, &["EXISTS", "ord:c"], 0).await;
    read_exactly(&mut raw, "*-1\r\n:1\r\n", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn two_blocking_commands_run_one_after_the_other() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut side = proxy.raw_upstream().client().await;
    let mut con = proxy.client().await;
    let _: i64 = con.rpush("ord:q2", "v").await.unwrap();
    let mut raw = authenticated_raw(&proxy).await;
    raw.write_all(b"BLPOP ord:q1 1.5\r\nBLPOP ord:q2 1\r\n")
        .await
        .unwrap();
    assert_not_run_while_blocked(&mut side, &["LLEN", "ord:q2"], 1).await;
    read_exactly(
        &mut raw,
        "*-1\r\n*2\r\n$6\r\nord:q2\r\n$1\r\nv\r\n",
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test]
async fn a_new_multi_waits_for_the_previous_exec() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut side = proxy.raw_upstream().client().await;
    // Other clients take and return dedicated connections all along, so the
    // second transaction may well get another connection than the first.
    let stop = Arc::new(AtomicBool::new(false));
    let mut churn = Vec::new();
    for _ in 0..3 {
        let mut con = proxy.client().await;
        let stop = stop.clone();
        churn.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let _: (Option<String>,) = redis::pipe()
                    .atomic()
                    .get("ord:other")
                    .query_async(&mut con)
                    .await
                    .unwrap();
            }
        }));
    }
    // Writes wait upstream for 1.5 s; reads do not. The first EXEC (a write)
    // is held there: the GET in the next transaction must still see its SET.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("WRITE")
        .query_async(&mut side)
        .await
        .unwrap();
    let mut raw = authenticated_raw(&proxy).await;
    raw.write_all(b"MULTI\r\nSET ord:a 1\r\nEXEC\r\nMULTI\r\nGET ord:a\r\nEXEC\r\n")
        .await
        .unwrap();
    read_exactly(
        &mut raw,
        "+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n$1\r\n1\r\n",
        Duration::from_secs(10),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in churn {
        task.await.unwrap();
    }
}

// ---- 12.1: a client that does not read --------------------------------------

/// A TLS connection to the proxy whose socket receive buffer is tiny, so the
/// proxy's writes to it stall as soon as the client stops reading.
async fn slow_reader(proxy: &Sealcache) -> TlsStream<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket
        .connect(format!("{HOST}:{}", proxy.port()).parse().unwrap())
        .await
        .unwrap();
    let connector = TlsConnector::from(Arc::new(proxy.endpoint().rustls_config()));
    let name = ServerName::try_from(HOST).unwrap().to_owned();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let auth = format!("AUTH {}\r\n", proxy.password());
    tls.write_all(auth.as_bytes()).await.unwrap();
    read_exactly(&mut tls, "+OK\r\n", Duration::from_secs(5)).await;
    tls
}

/// Largest `omem` among redis-server's clients, and its `used_memory`.
async fn redis_memory(side: &mut MultiplexedConnection) -> (u64, u64) {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(side)
        .await
        .unwrap();
    let omem = list
        .split_whitespace()
        .filter_map(|f| f.strip_prefix("omem="))
        .filter_map(|n| n.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(side)
        .await
        .unwrap();
    (omem, info_field(&info, "used_memory") as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_client_that_does_not_read_is_cut_off_without_stalling_others() {
    const VALUE: usize = 4 * 1024 * 1024;
    const GETS: usize = 300;
    let redis = upstream();
    // One shared connection: the slow client and the fast one share it.
    let proxy = Sealcache::builder(&redis)
        .set("upstream.pool_size", "1")
        .set(
            "limits.output_buffer",
            &format!("{{soft_bytes: {}, soft_secs: 2}}", 16 * 1024 * 1024),
        )
        .start();
    let mut side = proxy.raw_upstream().client().await;
    let mut con = proxy.client().await;
    let big: Vec<u8> = (0..VALUE).map(|i| (i % 251) as u8).collect();
    let _: () = con.set("iso:big", big).await.unwrap();
    let _: () = con.set("iso:small", "x").await.unwrap();
    let (_, baseline) = redis_memory(&mut side).await;

    let done = Arc::new(AtomicBool::new(false));
    let fast = {
        let done = done.clone();
        let mut con = proxy.client().await;
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                let v: String = con.get("iso:small").await.unwrap();
                latencies.push(started.elapsed());
                assert_eq!(v, "x");
            }
            latencies
        })
    };
    let watch = {
        let done = done.clone();
        let mut side = side.clone();
        tokio::spawn(async move {
            let (mut omem, mut used) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                let (o, u) = redis_memory(&mut side).await;
                omem = omem.max(o);
                used = used.max(u);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (omem, used)
        })
    };

    let mut slow = slow_reader(&proxy).await;
    slow.write_all("GET iso:big\r\n".repeat(GETS).as_bytes())
        .await
        .unwrap();
    let log = proxy.wait_for_log("disconnecting the client", Duration::from_secs(30));
    assert!(
        log.contains("limits.output_buffer.soft_bytes"),
        "the reason is logged"
    );
    // Let the fast client run on a little after the cut-off too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, Ordering::Relaxed);
    let mut latencies = fast.await.unwrap();
    let (omem, used) = watch.await.unwrap();

    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let max = latencies[latencies.len() - 1];
    println!(
        "fast client: {} GETs, p99 {:.1} ms, max {:.1} ms; redis-server: max omem {} KiB, used_memory {} KiB above the start",
        latencies.len(),
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        omem / 1024,
        used.saturating_sub(baseline) / 1024,
    );
    assert!(
        latencies.len() >= 100,
        "too few samples: {}",
        latencies.len()
    );
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
    // Without limits Redis would buffer all 300 replies (1.2 GB) for the proxy.
    assert!(omem < 64 * 1024 * 1024, "omem reached {omem}");
    assert!(
        used.saturating_sub(baseline) < 100 * 1024 * 1024,
        "used_memory grew by {}",
        used - baseline
    );

    // The slow client is disconnected: draining what reached it ends in EOF.
    let mut sink = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match slow.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the slow client should have been disconnected"
    );
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
}

// ---- 12.2: bounded work before authentication --------------------------------

/// Resident memory of a process, from /proc/PID/status.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS in /proc/PID/status")
        * 1024
}

/// Sends `*1000` and then 60 MiB bulks, as fast as the proxy takes them;
/// returns how long until the proxy closed the connection.
async fn flood_unauthenticated(proxy: &Sealcache) -> Duration {
    let raw = proxy.raw_tls().await;
    let (mut rd, mut wr) = tokio::io::split(raw);
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'a'; 1024 * 1024];
        let _ = wr.write_all(b"*1000\r\n").await;
        for _ in 0..1000 {
            if wr.write_all(b"$62914560\r\n").await.is_err() {
                return;
            }
            for _ in 0..60 {
                if wr.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            if wr.write_all(b"\r\n").await.is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the proxy never closed the flooding connection");
    writer.abort();
    closed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_clients_get_redis_frame_caps() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let pid = proxy.pid().expect("proxy pid");
    let wait = Duration::from_secs(2);

    // Redis 7.0's words, byte for byte (checked against redis-server itself).
    for (request, error) in [
        (
            &b"*11\r\n"[..],
            "-ERR Protocol error: unauthenticated multibulk length\r\n",
        ),
        (
            &b"*1\r\n$16385\r\n"[..],
            "-ERR Protocol error: unauthenticated bulk length\r\n",
        ),
    ] {
        let mut raw = proxy.raw_tls().await;
        let reply = exchange(&mut raw, request, wait).await;
        assert_eq!(reply.text(), error);
        assert!(reply.closed, "the connection is closed after {error}");
        let mut direct = proxy.raw_upstream().without_auth().raw_tls().await;
        let redis_reply = exchange(&mut direct, request, wait).await;
        assert_eq!(redis_reply.text(), error, "redis-server says the same");
    }

    // Within the caps, an unauthenticated client still gets NOAUTH, and after
    // AUTH the configured limits apply again (and RESET restores the caps).
    let mut raw = proxy.raw_tls().await;
    ask(
        &mut raw,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nabc\r\n",
        "-NOAUTH Authentication required.\r\n",
    )
    .await;
    let auth = format!("AUTH {}\r\n", proxy.password());
    ask(&mut raw, auth.as_bytes(), "+OK\r\n").await;
    let value = "v".repeat(100_000);
    let set = format!(
        "*3\r\n$3\r\nSET\r\n$5\r\niso:k\r\n${}\r\n{value}\r\n",
        value.len()
    );
    ask(&mut raw, set.as_bytes(), "+OK\r\n").await;
    ask(&mut raw, b"RESET\r\n", "+RESET\r\n").await;
    let again = exchange(&mut raw, set.as_bytes(), wait).await;
    assert_eq!(
        again.text(),
        "-ERR Protocol error: unauthenticated bulk length\r\n"
    );

    // The reproduction: `*1000` then 60 MiB bulks, from four connections at once.
    let base_rss = rss_bytes(pid);
    let watching = Arc::new(AtomicBool::new(true));
    let peak = {
        let watching = watching.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while watching.load(Ordering::Relaxed) {
                peak = peak.max(rss_bytes(pid));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        })
    };
    let floods: Vec<_> = (0..4)
        .map(|_| {
            let proxy = &proxy;
            async move { flood_unauthenticated(proxy).await }
        })
        .collect();
    let times = futures_util::future::join_all(floods).await;
    watching.store(false, Ordering::Relaxed);
    let peak = peak.await.unwrap();
    println!(
        "flooding connections closed after {times:?}; proxy RSS {} MiB at start, {} MiB at peak",
        base_rss >> 20,
        peak >> 20
    );
    for t in &times {
        assert!(*t < Duration::from_secs(1), "closed after {t:?}");
    }
    assert!(peak < 100 * 1024 * 1024, "proxy RSS peaked at {peak} bytes");
    // Authenticated clients were served all along.
    let mut con = proxy.client().await;
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
}

// ---- 12.4: fair shares of dedicated connections ------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_clients_do_not_starve_transactions_or_emulated_commands() {
    const BLOCKED: usize = 200;
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut side = proxy.raw_upstream().client().await;
    let mut waiters = Vec::new();
    for _ in 0..BLOCKED {
        let mut raw = authenticated_raw(&proxy).await;
        raw.write_all(b"BLPOP iso:never 0\r\n").await.unwrap();
        waiters.push(raw);
    }
    wait_for_blocked(&mut side, BLOCKED as i64, Duration::from_secs(30)).await;

    // More clients than upstream.max_pinned run emulated commands and
    // transactions at the same time, and all of them get through.
    let mut workers = Vec::new();
    for i in 0..80 {
        let mut con = proxy.client().await;
        workers.push(tokio::spawn(async move {
            let n: i64 = con.incr("iso:counter", 1).await.unwrap();
            assert!(n >= 1);
            let len: i64 = con.append(format!("iso:text:{i}"), "ab").await.unwrap();
            assert_eq!(len, 2);
            let (set, got): (String, String) = redis::pipe()
                .atomic()
                .set(format!("iso:tx:{i}"), "v")
                .get(format!("iso:tx:{i}"))
                .query_async(&mut con)
                .await
                .unwrap();
            assert_eq!((set.as_str(), got.as_str()), ("OK", "v"));
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let mut con = proxy.client().await;
    let counter: i64 = con.get("iso:counter").await.unwrap();
    assert_eq!(counter, 80);
    let info: String = redis::cmd("INFO").query_async(&mut con).await.unwrap();
    assert_eq!(
        info_field(&info, "backend_main_blocking_in_use"),
        BLOCKED as i64
    );
    assert_eq!(blocked_clients(&mut side).await, BLOCKED as i64);
    drop(waiters);
}

/// The other reproduction: more clients than `upstream.max_pinned`
/// each open a transaction (MULTI and a queued command) and leave it open.
/// sealcache queues transactions itself, so they hold no upstream
/// connection: other clients' transactions and emulated commands run at
/// once, and the open transactions still commit when they EXEC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_transactions_hold_no_dedicated_connection() {
    const OPEN: usize = 100;
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .set("upstream.max_pinned", "4")
        .set("upstream.acquire_timeout_ms", "500")
        .start();
    let mut side = proxy.raw_upstream().client().await;
    let connections = |side: &mut MultiplexedConnection| {
        let mut side = side.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query_async(&mut side)
                .await
                .unwrap();
            info_field(&info, "connected_clients")
        }
    };
    let before = connections(&mut side).await;
    let mut open = Vec::new();
    for i in 0..OPEN {
        let mut raw = authenticated_raw(&proxy).await;
        ask(&mut raw, b"MULTI\r\n", "+OK\r\n").await;
        let set = format!("SET iso:open:{i} v{i}\r\n");
        ask(&mut raw, set.as_bytes(), "+QUEUED\r\n").await;
        open.push(raw);
    }
    assert_eq!(
        connections(&mut side).await,
        before,
        "open transactions took upstream connections"
    );

    // Each of these would wait out acquire_timeout_ms and fail if the open
    // transactions held the four connections.
    let mut con = proxy.client().await;
    for i in 0..20 {
        let n: i64 = con.incr("iso:open:counter", 1).await.unwrap();
        assert_eq!(n, i + 1);
        let (set, got): (String, String) = redis::pipe()
            .atomic()
            .set("iso:open:tx", i)
            .get("iso:open:tx")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!((set, got), ("OK".to_owned(), i.to_string()));
    }
    for (i, raw) in open.iter_mut().enumerate() {
        ask(raw, b"EXEC\r\n", "*1\r\n+OK\r\n").await;
        let got: String = con.get(format!("iso:open:{i}")).await.unwrap();
        assert_eq!(got, format!("v{i}"));
    }
}

/// A proxy with one pinned connection, held by a client in WATCH.
async fn one_connection_held(
    redis: &RedisServer,
    acquire_timeout_ms: u64,
) -> (Sealcache, TlsStream<tokio::net::TcpStream>) {
    let proxy = Sealcache::builder(redis)
        .set("upstream.max_pinned", "1")
        .set(
            "upstream.acquire_timeout_ms",
            &acquire_timeout_ms.to_string(),
        )
        .start();
    let mut holder = authenticated_raw(&proxy).await;
    ask(&mut holder, b"WATCH iso:held\r\n", "+OK\r\n").await;
    (proxy, holder)
}

#[tokio::test]
async fn commands_wait_in_line_for_a_dedicated_connection() {
    let redis = upstream();
    let (proxy, mut holder) = one_connection_held(&redis, 5000).await;

    // Two clients queue for the one connection, in this order.
    let mut first = authenticated_raw(&proxy).await;
    first.write_all(b"INCR iso:line\r\n").await.unwrap();
    let mut probe = proxy.client().await;
    let field_is = |name: &'static str, n: i64| {
        let probe = probe.clone();
        async move {
            let mut probe = probe;
            let info: String = redis::cmd("INFO").query_async(&mut probe).await.unwrap();
            (info_field(&info, name) == n).then_some(())
        }
    };
    let waiting = |n: i64| field_is("backend_main_pinned_waiting", n);
    assert!(
        poll_until_async(Duration::from_secs(5), || waiting(1))
            .await
            .is_some()
    );
    let mut second = authenticated_raw(&proxy).await;
    second.write_all(b"INCR iso:line2\r\n").await.unwrap();
    assert!(
        poll_until_async(Duration::from_secs(5), || waiting(2))
            .await
            .is_some()
    );
    // A command on a key whose read-modify-write is already in line waits
    // behind it (in the gate), not for a connection of its own.
    let mut third = authenticated_raw(&proxy).await;
    third.write_all(b"INCR iso:line\r\n").await.unwrap();
    assert!(
        poll_until_async(Duration::from_secs(5), || field_is("rmw_waiting", 3))
            .await
            .is_some()
    );
    let info: String = redis::cmd("INFO").query_async(&mut probe).await.unwrap();
    assert_eq!(info_field(&info, "backend_main_pinned_waiting"), 2);

    ask(&mut holder, b"UNWATCH\r\n", "+OK\r\n").await;
    read_exactly(&mut first, ":1\r\n", Duration::from_secs(5)).await;
    read_exactly(&mut second, ":1\r\n", Duration::from_secs(5)).await;
    read_exactly(&mut third, ":2\r\n", Duration::from_secs(5)).await;
    let info: String = redis::cmd("INFO").query_async(&mut probe).await.unwrap();
    assert_eq!(info_field(&info, "backend_main_pinned_waiting"), 0);
}

#[tokio::test]
async fn a_command_that_waits_too_long_gets_a_clear_error() {
    let redis = upstream();
    let (proxy, _holder) = one_connection_held(&redis, 300).await;
    let mut other = authenticated_raw(&proxy).await;
    let started = Instant::now();
    let reply = exchange(&mut other, b"APPEND iso:t x\r\n", Duration::from_secs(2)).await;
    assert_eq!(
        reply.text(),
        "-ERR sealcache: all 1 dedicated upstream connections (MULTI/WATCH, emulated commands such as INCR) are in use and none came free within 300ms (upstream.acquire_timeout_ms); retry later or raise upstream.max_pinned\r\n"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Lanes are not dedicated connections: plain commands are unaffected.
    ask(&mut other, b"SET iso:u 1\r\n", "+OK\r\n").await;
}

#[tokio::test]
async fn one_user_cannot_take_every_dedicated_connection() {
    let redis = upstream();
    let noisy_password = random_password(24);
    let proxy = Sealcache::builder(&redis)
        .user("noisy", &noisy_password)
        .set("limits.max_pinned_per_user", "2")
        .set("limits.max_blocking_per_user", "1")
        .set("upstream.acquire_timeout_ms", "300")
        .start();
    let noisy = proxy.endpoint().with_auth("noisy", &noisy_password);
    let login = |mut raw: TlsStream<tokio::net::TcpStream>| {
        let auth = format!("AUTH noisy {noisy_password}\r\n");
        async move {
            ask(&mut raw, auth.as_bytes(), "+OK\r\n").await;
            raw
        }
    };
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut raw = login(noisy.raw_tls().await).await;
        ask(&mut raw, b"WATCH iso:k\r\n", "+OK\r\n").await;
        held.push(raw);
    }
    let mut third = login(noisy.raw_tls().await).await;
    ask(
        &mut third,
        b"WATCH iso:k\r\n",
        "-ERR sealcache: user 'noisy' has all 2 of its dedicated upstream connections (MULTI/WATCH, emulated commands such as INCR) in use and none came free within 300ms (upstream.acquire_timeout_ms); retry later or raise limits.max_pinned_per_user\r\n",
    )
    .await;
    let mut blocker = login(noisy.raw_tls().await).await;
    blocker.write_all(b"BLPOP iso:never 0\r\n").await.unwrap();
    let mut side = proxy.raw_upstream().client().await;
    wait_for_blocked(&mut side, 1, Duration::from_secs(5)).await;
    let reply = exchange(&mut third, b"BLPOP iso:never 0\r\n", Duration::from_secs(2)).await;
    assert!(
        reply.text().contains("limits.max_blocking_per_user"),
        "{}",
        reply.text()
    );

    // Another user is not affected.
    let mut con = proxy.client().await;
    let n: i64 = con.incr("iso:n", 1).await.unwrap();
    assert_eq!(n, 1);
    let (ok,): (String,) = redis::pipe()
        .atomic()
        .set("iso:m", "1")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(ok, "OK");

    // A share that comes free is taken by the next in line.
    ask(&mut held[0], b"UNWATCH\r\n", "+OK\r\n").await;
    ask(&mut third, b"WATCH iso:k\r\n", "+OK\r\n").await;
}

#[tokio::test]
async fn one_client_connection_holds_a_bounded_number_of_dedicated_connections() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .set("limits.max_dedicated_per_client", "1")
        .start();
    let mut raw = authenticated_raw(&proxy).await;
    ask(&mut raw, b"WATCH iso:w\r\n", "+OK\r\n").await;
    ask(
        &mut raw,
        b"INCR iso:c\r\n",
        "-ERR sealcache: this connection already holds 1 dedicated upstream connections (limits.max_dedicated_per_client); end its transaction or blocking command first\r\n",
    )
    .await;
    ask(&mut raw, b"UNWATCH\r\n", "+OK\r\n").await;
    ask(&mut raw, b"INCR iso:c\r\n", ":1\r\n").await;
}

// ---- 12.5: a client that leaves takes its blocking command with it ----------

/// What a blocking command waits on, which decides how another client adds
/// an element and how to see that the element was not taken.
#[derive(Clone, Copy)]
enum Waits {
    List,
    SortedSet,
    Stream,
    /// A stream read by a consumer group: a taken entry would be pending.
    Group,
}

impl Waits {
    fn setup(self) -> &'static [&'static str] {
        match self {
            Waits::Group => &["XGROUP", "CREATE", "lost:s", "g", "$", "MKSTREAM"],
            _ => &[],
        }
    }

    fn push(self) -> &'static [&'static str] {
        match self {
            Waits::List => &["RPUSH", "lost:l", "important"],
            Waits::SortedSet => &["ZADD", "lost:z", "1", "important"],
            Waits::Stream | Waits::Group => &["XADD", "lost:s", "*", "f", "important"],
        }
    }

    /// A command through the proxy, and the first item of its reply.
    fn check(self) -> (&'static [&'static str], &'static str) {
        match self {
            Waits::List => (&["LRANGE", "lost:l", "0", "-1"], "important"),
            Waits::SortedSet => (&["ZRANGE", "lost:z", "0", "-1"], "important"),
            Waits::Stream => (&["XLEN", "lost:s"], "1"),
            Waits::Group => (&["XPENDING", "lost:s", "g"], "0"),
        }
    }
}

/// Every blocking command, blocking forever.
const CASES: &[(&str, Waits)] = &[
    ("BLPOP lost:l 0", Waits::List),
    ("BRPOP lost:l 0", Waits::List),
    ("BLMOVE lost:l lost:dst LEFT RIGHT 0", Waits::List),
    ("BRPOPLPUSH lost:l lost:dst 0", Waits::List),
    ("BLMPOP 0 1 lost:l LEFT", Waits::List),
    ("BZPOPMIN lost:z 0", Waits::SortedSet),
    ("BZPOPMAX lost:z 0", Waits::SortedSet),
    ("BZMPOP 0 1 lost:z MIN", Waits::SortedSet),
    ("XREAD BLOCK 0 STREAMS lost:s $", Waits::Stream),
    (
        "XREADGROUP GROUP g c1 BLOCK 0 STREAMS lost:s >",
        Waits::Group,
    ),
];

async fn run(con: &mut MultiplexedConnection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(con).await.unwrap()
}

/// The first element or integer of a reply, as text.
fn first_text(value: &redis::Value) -> String {
    match value {
        redis::Value::Array(items) => items.first().map(first_text).unwrap_or_default(),
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// Sends `blocking` from a fresh client (plus `then`, pipelined behind it),
/// waits until redis-server has it blocked, disconnects, and checks that the
/// blocked upstream connection goes away at once.
async fn leave_while_blocked(
    proxy: &Sealcache,
    side: &mut MultiplexedConnection,
    blocking: &str,
    then: &str,
) {
    let mut raw = authenticated_raw(proxy).await;
    raw.write_all(format!("{blocking}\r\n{then}").as_bytes())
        .await
        .unwrap();
    wait_for_blocked(side, 1, Duration::from_secs(5)).await;
    drop(raw);
    let left = Instant::now();
    wait_for_blocked(side, 0, Duration::from_secs(2)).await;
    println!(
        "{blocking}: upstream unblocked {:?} after the client left",
        left.elapsed()
    );
}

#[tokio::test]
async fn a_client_that_leaves_takes_its_blocking_command_with_it() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut side = proxy.raw_upstream().client().await;
    let mut con = proxy.client().await;
    for &(blocking, waits) in CASES {
        let _: () = redis::cmd("DEL")
            .arg(&["lost:l", "lost:dst", "lost:z", "lost:s"])
            .query_async(&mut con)
            .await
            .unwrap();
        if !waits.setup().is_empty() {
            run(&mut con, waits.setup()).await;
        }
        leave_while_blocked(&proxy, &mut side, blocking, "").await;
        run(&mut con, waits.push()).await;
        let (check, expect) = waits.check();
        let got = first_text(&run(&mut con, check).await);
        assert_eq!(got, expect, "{blocking}: the element was taken");
    }
    // Also when the client had pipelined more commands behind the blocking one.
    let _: () = con.del("lost:l").await.unwrap();
    leave_while_blocked(
        &proxy,
        &mut side,
        "BLPOP lost:l 0",
        "GET lost:x\r\nINCR lost:n\r\n",
    )
    .await;
    let _: i64 = con.rpush("lost:l", "important").await.unwrap();
    let list: Vec<String> = con.lrange("lost:l", 0, -1).await.unwrap();
    assert_eq!(list, ["important"]);
    let n: Option<i64> = con.get("lost:n").await.unwrap();
    assert_eq!(n, None, "nothing after the abandoned blocking command ran");
    // The connection was closed, not reused: the pool holds no blocked connection.
    let info: String = redis::cmd("INFO").query_async(&mut con).await.unwrap();
    assert_eq!(info_field(&info, "backend_main_blocking_in_use"), 0);
}
