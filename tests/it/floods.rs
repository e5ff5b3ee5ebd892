//! Floods and limits: many connections at once, a client that pipelines a
//! gigabyte without reading, slowloris handshakes, half-open connections and
//! the per-client command rate limit. Each test checks that a fresh client is
//! served during and after the flood, and prints the proxy's peak resident
//! memory (VmHWM) with a bound generous enough to catch a leak, not a timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::support::endpoint::HOST;
use crate::support::resp::{RawConn, Value, encode};
use crate::support::{
    Certs, POLL_INTERVAL, RedisServer, Sealcache, poll_until_async, random_password,
};

const MIB: u64 = 1024;

fn upstream() -> RedisServer {
    RedisServer::start_tls(&Certs::generate(), &random_password(32))
}

/// A `kB` field of `/proc/<pid>/status` (VmHWM, VmRSS).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc fd")
        .count()
}

/// Prints the proxy's peak and current memory and asserts the peak bound.
fn report_memory(test: &str, proxy: &Sealcache, bound_mib: u64) -> u64 {
    let pid = proxy.pid().expect("the proxy runs");
    let peak = status_kib(pid, "VmHWM");
    let now = status_kib(pid, "VmRSS");
    println!(
        "{test}: sealcache peak RSS (VmHWM) {:.1} MiB, RSS now {:.1} MiB, open fds {} (bound {bound_mib} MiB)",
        peak as f64 / MIB as f64,
        now as f64 / MIB as f64,
        open_fds(pid)
    );
    assert!(
        peak < bound_mib * MIB,
        "{test}: peak RSS {peak} KiB is over the {bound_mib} MiB bound"
    );
    peak
}

/// A fresh client is answered PING and reads back what it wrote.
async fn assert_serving(proxy: &Sealcache, key: &str) {
    let serve = async {
        let mut con = RawConn::open(&proxy.endpoint()).await;
        assert_eq!(
            con.call(&["PING"]).await.value,
            Value::Simple("PONG".into())
        );
        let value = format!("value of {key}");
        assert_eq!(
            con.call(&["SET", key, &value]).await.value,
            Value::Simple("OK".into())
        );
        assert_eq!(con.call(&["GET", key]).await.value, Value::bulk(&value));
    };
    tokio::time::timeout(Duration::from_secs(20), serve)
        .await
        .unwrap_or_else(|_| panic!("a fresh client was not served within 20 s ({key})"));
}

/// `connected_clients` of the proxy's INFO, through a fresh client (counted too).
async fn connected_clients(proxy: &Sealcache) -> i64 {
    let mut con = RawConn::open(&proxy.endpoint()).await;
    let info = con.call(&["INFO", "proxy"]).await;
    let text = String::from_utf8_lossy(info.value.as_bulk()).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("connected_clients in INFO")
}

/// The test process holds one descriptor per client: make room for `n`.
fn raise_fd_limit(n: u64) {
    let got = rlimit::increase_nofile_limit(n).expect("raise RLIMIT_NOFILE");
    assert!(
        got >= n,
        "this test needs {n} open files; the hard limit allows {got} (raise it with ulimit -Hn)"
    );
}

fn connector(proxy: &Sealcache) -> TlsConnector {
    TlsConnector::from(Arc::new(proxy.endpoint().rustls_config()))
}

/// TLS handshake, then `AUTH` and `PING` pipelined, answered `+OK` `+PONG`.
async fn authenticated(
    connector: &TlsConnector,
    port: u16,
    password: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect((HOST, port)).await?;
    let name = ServerName::try_from(HOST).expect("server name").to_owned();
    let mut tls = connector.connect(name, tcp).await?;
    let mut hello = encode(&["AUTH", "default", password]);
    hello.extend_from_slice(&encode(&["PING"]));
    tls.write_all(&hello).await?;
    expect_bytes(&mut tls, b"+OK\r\n+PONG\r\n").await?;
    Ok(tls)
}

async fn expect_bytes<S: AsyncReadExt + Unpin>(
    stream: &mut S,
    expected: &[u8],
) -> std::io::Result<()> {
    let mut got = vec![0u8; expected.len()];
    stream.read_exact(&mut got).await?;
    if got != expected {
        return Err(std::io::Error::other(format!(
            "expected {:?}, got {:?}",
            String::from_utf8_lossy(expected),
            String::from_utf8_lossy(&got)
        )));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_tls_connections_at_once_are_all_served() {
    const CLIENTS: usize = 2000;
    raise_fd_limit(CLIENTS as u64 + 512);
    let redis = upstream();
    // 2,000 handshakes queue for one worker thread of a debug build: on a busy
    // machine the last ones wait longer than the default 10 s handshake
    // timeout, which would (rightly) close them.
    let proxy = Sealcache::builder(&redis)
        .set("tls.handshake_timeout_ms", "60000")
        .start();
    let pid = proxy.pid().unwrap();
    let fds_before = open_fds(pid);
    let connector = connector(&proxy);
    let (port, password) = (proxy.port(), proxy.password().to_owned());

    let opened: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (connector, password) = (connector.clone(), password.clone());
            tokio::spawn(async move { authenticated(&connector, port, &password).await })
        })
        .collect();
    assert_serving(&proxy, "flood:during-connect").await;
    let mut clients = Vec::with_capacity(CLIENTS);
    for (i, task) in opened.into_iter().enumerate() {
        let client = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("2,000 connections open within two minutes")
            .expect("client task");
        clients.push(client.unwrap_or_else(|e| panic!("client {i} was not served: {e}")));
    }
    assert_eq!(connected_clients(&proxy).await, CLIENTS as i64 + 1);
    assert_serving(&proxy, "flood:all-connected").await;

    // Every one of them is still served.
    let pings: Vec<_> = clients
        .into_iter()
        .map(|mut tls| {
            tokio::spawn(async move {
                tls.write_all(&encode(&["PING"])).await?;
                expect_bytes(&mut tls, b"+PONG\r\n").await?;
                Ok::<_, std::io::Error>(tls)
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(CLIENTS);
    for task in pings {
        clients.push(task.await.unwrap().expect("each connection answers PING"));
    }
    report_memory("2000 TLS connections", &proxy, 192);

    drop(clients);
    let closed = poll_until_async(Duration::from_secs(30), || async {
        (connected_clients(&proxy).await == 1).then_some(())
    })
    .await;
    assert!(
        closed.is_some(),
        "the proxy still counts flood connections 30 s after they closed"
    );
    assert_serving(&proxy, "flood:after").await;
    let fds_after = open_fds(pid);
    assert!(
        fds_after < fds_before + 32,
        "descriptors leaked: {fds_before} before the flood, {fds_after} after"
    );
}

/// Reads replies from `stream` until `count` `+OK` lines arrived.
async fn read_oks<S: AsyncReadExt + Unpin>(stream: &mut S, count: usize) -> std::io::Result<()> {
    let expected = b"+OK\r\n".repeat(count);
    let mut got = vec![0u8; expected.len()];
    stream.read_exact(&mut got).await?;
    assert!(got == expected, "replies other than +OK");
    Ok(())
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// Samples `counter` until it has not moved for `still`; `false` if it reached `done` first.
async fn stalls(counter: &AtomicUsize, done: usize, still: Duration) -> bool {
    let mut last = counter.load(Ordering::Acquire);
    let mut since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = counter.load(Ordering::Acquire);
        if now >= done {
            return false;
        }
        if now != last {
            (last, since) = (now, tokio::time::Instant::now());
        } else if since.elapsed() >= still {
            return true;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pipelining_a_gigabyte_without_reading_is_held_back_in_bounded_memory() {
    const VALUE: usize = 1024 * 1024;
    const COMMANDS: usize = 1024; // 1 GiB of values, plus the commands' headers
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let flood = authenticated(&connector(&proxy), proxy.port(), proxy.password())
        .await
        .expect("the flooding client connects");
    let command = encode(&["SET", "flood:big", &"v".repeat(VALUE)]);
    let started = std::time::Instant::now();
    let (mut reader, mut writer) = tokio::io::split(flood);
    let written = Arc::new(AtomicUsize::new(0));
    let sender = tokio::spawn({
        let written = written.clone();
        async move {
            for _ in 0..COMMANDS {
                writer.write_all(&command).await?;
                written.fetch_add(1, Ordering::Release);
            }
            writer.flush().await?;
            Ok::<_, std::io::Error>(writer)
        }
    });
    // Redis stops taking commands a little way in: what the proxy holds for
    // this client must stay bounded, and the client's writes must stall.
    let in_flight = poll_until_async(Duration::from_secs(30), || async {
        (written.load(Ordering::Acquire) >= 64).then_some(())
    })
    .await;
    assert!(
        in_flight.is_some(),
        "the proxy did not read 64 MiB of commands in 30 s"
    );
    let redis_pid = redis.pid().expect("redis runs");
    signal(redis_pid, "STOP");
    let held_back = stalls(&written, COMMANDS, Duration::from_secs(1)).await;
    let pid = proxy.pid().unwrap();
    let rss_stalled = status_kib(pid, "VmRSS");
    let stalled_at = written.load(Ordering::Acquire);
    signal(redis_pid, "CONT");
    assert!(
        held_back,
        "with Redis stopped, the proxy read the whole gigabyte instead of holding the client back"
    );
    println!(
        "Redis stopped at {stalled_at} MiB sent: the client's writes stalled; sealcache RSS {:.1} MiB",
        rss_stalled as f64 / MIB as f64
    );

    // While the rest streams in unread, others are served.
    let mut probes = 0;
    while !sender.is_finished() {
        assert_serving(&proxy, &format!("flood:probe:{probes}")).await;
        probes += 1;
    }
    let writer = sender
        .await
        .unwrap()
        .expect("the proxy reads the whole gigabyte");
    let sent = started.elapsed();
    // Every command was run, in order: 1,024 replies wait unread.
    tokio::time::timeout(Duration::from_secs(60), read_oks(&mut reader, COMMANDS))
        .await
        .expect("the replies arrive")
        .expect("read the replies");
    let flood = reader.unsplit(writer);
    println!(
        "1 GiB pipelined without reading: sent in {sent:?}; {probes} fresh clients served meanwhile"
    );
    // VmHWM may miss a peak the allocator gave back with madvise (the kernel
    // updates it lazily): the sample taken while Redis was stopped counts too.
    report_memory("1 GiB pipelined without reading", &proxy, 256);
    assert!(
        rss_stalled < 256 * MIB,
        "with Redis stopped, sealcache held {rss_stalled} KiB"
    );
    drop(flood);
    assert_serving(&proxy, "flood:after-gigabyte").await;
}

/// The first bytes a TLS client sends: a real ClientHello.
fn client_hello(proxy: &Sealcache) -> Vec<u8> {
    let name = ServerName::try_from(HOST).expect("server name").to_owned();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(proxy.endpoint().rustls_config()), name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("a ClientHello");
    hello
}

/// How long until the proxy closes a connection that trickles `bytes` one at
/// a time, `pace` apart (the attacker's pace, not a synchronisation).
async fn trickle_until_closed(bytes: Vec<u8>, port: u16, pace: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    let stream = TcpStream::connect((HOST, port)).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let closed = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    for byte in bytes.iter().cycle() {
        if closed.is_finished() || wr.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(pace).await;
    }
    let _ = closed.await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_handshakes_are_cut_at_the_handshake_timeout() {
    const LORISES: usize = 200;
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .set("tls.handshake_timeout_ms", "1000")
        .start();
    let hello = client_hello(&proxy);
    let port = proxy.port();
    // At 10 bytes a second the ClientHello alone would take half a minute.
    let lorises: Vec<_> = (0..LORISES)
        .map(|_| {
            tokio::spawn(trickle_until_closed(
                hello.clone(),
                port,
                Duration::from_millis(100),
            ))
        })
        .collect();
    assert_serving(&proxy, "loris:during").await;
    let mut slowest = Duration::ZERO;
    for loris in lorises {
        let lasted = tokio::time::timeout(Duration::from_secs(30), loris)
            .await
            .expect("the proxy closes every slowloris connection")
            .unwrap();
        slowest = slowest.max(lasted);
    }
    println!("{LORISES} slowloris handshakes: the last was closed after {slowest:?}");
    assert!(
        slowest < Duration::from_secs(8),
        "a trickled handshake lasted {slowest:?} against a 1 s handshake timeout"
    );
    proxy.wait_for_log("TLS handshake timed out", Duration::from_secs(5));
    report_memory("slowloris handshakes", &proxy, 256);
    assert_serving(&proxy, "loris:after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed_and_leave_nothing_behind() {
    const HALF_OPEN: usize = 500;
    raise_fd_limit(HALF_OPEN as u64 + 512);
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .set("tls.handshake_timeout_ms", "1000")
        .start();
    let (port, pid) = (proxy.port(), proxy.pid().unwrap());
    let fds_before = open_fds(pid);

    // Connect and never send.
    let mut silent = Vec::with_capacity(HALF_OPEN);
    for _ in 0..HALF_OPEN {
        silent.push(TcpStream::connect((HOST, port)).await.expect("connect"));
    }
    assert_serving(&proxy, "half-open:silent").await;
    // Connect and vanish: a reset, some halfway through a ClientHello.
    let hello = client_hello(&proxy);
    for i in 0..HALF_OPEN {
        let mut stream = TcpStream::connect((HOST, port)).await.expect("connect");
        if i % 2 == 0 {
            stream.write_all(&hello[..hello.len() / 2]).await.unwrap();
        }
        #[allow(
            deprecated,
            reason = "a zero linger resets at once; it never blocks the thread"
        )]
        stream.set_linger(Some(Duration::ZERO)).unwrap();
        drop(stream);
    }
    assert_serving(&proxy, "half-open:vanished").await;

    // The silent ones are closed by the proxy at its handshake timeout.
    let closes: Vec<_> = silent
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut buf = [0u8; 16];
                tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buf)).await
            })
        })
        .collect();
    for close in closes {
        let read = close.await.unwrap();
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a silent connection was not closed by the handshake timeout: {read:?}"
        );
    }
    report_memory("1000 half-open connections", &proxy, 256);
    let settled = poll_until_async(Duration::from_secs(10), || async {
        (open_fds(pid) < fds_before + 16).then_some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "descriptors leaked: {fds_before} before, {} after",
        open_fds(pid)
    );
    assert_serving(&proxy, "half-open:after").await;
}

#[tokio::test]
async fn the_rate_limit_refuses_the_excess_with_a_clear_error_and_leaves_others_alone() {
    const PIPELINE: usize = 100;
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .set("limits.rate_limit", "{commands_per_sec: 20, burst: 10}")
        .start();
    // AUTH takes the first token of the burst.
    let mut flood = RawConn::open(&proxy.endpoint()).await;
    let mut pipeline = Vec::new();
    for _ in 0..PIPELINE {
        pipeline.extend_from_slice(&encode(&["PING"]));
    }
    flood.send_raw(&pipeline).await;
    let (mut pongs, mut refused) = (0, 0);
    for _ in 0..PIPELINE {
        match flood.read().await.value {
            Value::Simple(s) if s == "PONG" => pongs += 1,
            Value::Error(e) => {
                assert_eq!(
                    e,
                    "ERR sealcache: rate limit exceeded: this connection may send 20 commands per second (bursts of 10); the command was not run. Retry later, or raise limits.rate_limit.commands_per_sec (and burst)"
                );
                refused += 1;
            }
            other => panic!("unexpected reply {other:?}"),
        }
    }
    println!(
        "rate limit 20/s, burst 10: {pongs} of {PIPELINE} pipelined PINGs ran, {refused} refused"
    );
    // The rest of the burst, plus what refilled while the pipeline was read
    // (a slow, loaded machine refills more).
    assert!((9..=30).contains(&pongs), "{pongs} PINGs ran");
    // Each connection has its own bucket.
    assert_serving(&proxy, "rate:other-client").await;
    // The limited connection goes on, and is served again once its bucket refills.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while flood.call(&["PING"]).await.value != Value::Simple("PONG".into()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bucket never refilled"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    report_memory("rate limit", &proxy, 256);
}
