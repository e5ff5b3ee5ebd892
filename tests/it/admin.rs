//! Issue 10 (criteria 5 and 7): the admin HTTP listener (`/healthz`,
//! `/readyz`), `sealcache health`, graceful shutdown on SIGTERM/SIGINT, and
//! `check-config`'s refusals for `admin.listen` — all against the real binary
//! and a real redis-server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::resp::{self, RawConn};
use crate::support::{
    Certs, RedisServer, Sealcache, SealcacheBuilder, free_port, poll_until, random_password,
};

/// How long the proxy may take to notice the upstream came or went (lanes
/// reconnect with backoff up to 5 s).
const UPSTREAM_CHANGE: Duration = Duration::from_secs(20);

/// An HTTP answer: status code, header block and body.
pub(crate) struct Http {
    pub(crate) status: u16,
    head: String,
    body: String,
}

impl Http {
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends `request` as it is and reads until the admin listener closes (it
/// serves one request per connection).
fn exchange(port: u16, request: &str) -> std::io::Result<Http> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // An error, not a panic: a poll may meet a connection closed unanswered.
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    Ok(Http {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

#[track_caller]
pub(crate) fn get(port: u16, path: &str) -> Http {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    )
    .unwrap_or_else(|e| panic!("GET {path} on the admin port {port}: {e}"))
}

/// Polls `/readyz` until it answers `status`; returns that answer.
#[track_caller]
fn readyz_until(proxy: &Sealcache, status: u16) -> Http {
    let port = proxy.admin_port();
    let mut last = None;
    let found = poll_until(UPSTREAM_CHANGE, || {
        let answer = get(port, "/readyz");
        if answer.status == status {
            return Some(answer);
        }
        last = Some(answer.body);
        None
    });
    found.unwrap_or_else(|| {
        panic!("/readyz did not answer {status} within {UPSTREAM_CHANGE:?}; last: {last:?}")
    })
}

fn proxy_with_admin(redis: &RedisServer) -> Sealcache {
    Sealcache::builder(redis).admin().start()
}

#[test]
fn healthz_and_readyz_follow_the_upstream() {
    let certs = Certs::generate();
    let mut redis = RedisServer::start_tls(&certs, &random_password(24));
    let proxy = proxy_with_admin(&redis);
    let port = proxy.admin_port();

    let health = get(port, "/healthz");
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["status"], "alive");
    assert!(
        health.head.contains("content-type: application/json"),
        "{}",
        health.head
    );
    assert!(
        health.head.contains("cache-control: no-store"),
        "{}",
        health.head
    );

    let ready = readyz_until(&proxy, 200).json();
    assert_eq!(
        ready,
        json!({
            "ready": true,
            "listeners": [{"kind": "tls", "address": format!("127.0.0.1:{}", proxy.port()), "accepting": true}],
            "routes": [{"prefix": "", "backend": "main", "kind": "redis", "connected": true, "circuit": "closed"}],
        })
    );

    redis.stop();
    let down = readyz_until(&proxy, 503).json();
    assert_eq!(down["ready"], false);
    assert_eq!(down["routes"][0]["connected"], false);
    assert_eq!(down["routes"][0]["circuit"], "closed");
    assert_eq!(down["listeners"][0]["accepting"], true);
    // Alive is not ready: the process still answers.
    assert_eq!(get(port, "/healthz").status, 200);

    redis.restart();
    let back = readyz_until(&proxy, 200).json();
    assert_eq!(back["routes"][0]["connected"], true);
}

#[test]
fn admin_serves_only_healthz_and_readyz_without_bodies_or_secrets() {
    let certs = Certs::generate();
    let redis = RedisServer::start_tls(&certs, &random_password(24));
    let proxy = proxy_with_admin(&redis);
    let port = proxy.admin_port();

    for path in [
        "/",
        "/metrics",
        "/healthz/",
        "/healthz/x",
        "/readyz.json",
        "/../readyz",
    ] {
        let answer = get(port, path);
        assert_eq!(answer.status, 404, "GET {path}: {}", answer.body);
    }
    let post = exchange(
        port,
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(post.status, 405);
    assert!(post.head.contains("allow: GET, HEAD"), "{}", post.head);
    let with_body = exchange(
        port,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    )
    .unwrap();
    assert_eq!(with_body.status, 413, "{}", with_body.body);
    let chunked = exchange(
        port,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(chunked.status, 413, "{}", chunked.body);
    let head = exchange(port, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!((head.status, head.body.as_str()), (200, ""));

    // Neither the client password nor the upstream's appears anywhere.
    let ready = readyz_until(&proxy, 200);
    for secret in [proxy.password(), redis.password()] {
        assert!(!ready.body.contains(secret) && !ready.head.contains(secret));
    }
}

#[tokio::test]
async fn admin_connections_are_capped_and_never_stall_the_proxy() {
    let certs = Certs::generate();
    let redis = RedisServer::start_tls(&certs, &random_password(24));
    let proxy = proxy_with_admin(&redis);
    let port = proxy.admin_port();

    // Every admin slot held by a client that sends nothing (the server's own
    // cap is 16; each would wait for its header timeout).
    let idle: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // One more is closed at once, unanswered, rather than queued.
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(4)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = extra
        .read(&mut buf)
        .expect("the extra connection is closed, not left waiting");
    assert_eq!(n, 0, "the extra connection got an answer");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed only after {:?}",
        started.elapsed()
    );

    // Meanwhile the proxy serves Redis clients as ever.
    let mut client = proxy.client().await;
    let pong: String = redis::cmd("PING").query_async(&mut client).await.unwrap();
    assert_eq!(pong, "PONG");

    drop(idle);
    let answer = poll_until(Duration::from_secs(10), || {
        exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").ok()
    })
    .expect("the admin listener serves again once the slots are free");
    assert_eq!(answer.status, 200);
}

/// `sealcache health` with this proxy's configuration and environment.
fn health(proxy: &Sealcache, json: bool) -> (Option<i32>, String, String) {
    let args: &[&str] = if json { &["--json"] } else { &[] };
    let out = proxy.command("health", args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn health_command_reports_backends_and_the_proxy() {
    let certs = Certs::generate();
    let mut redis = RedisServer::start_tls(&certs, &random_password(24));
    let mut proxy = proxy_with_admin(&redis);
    readyz_until(&proxy, 200);

    let (code, table, stderr) = health(&proxy, false);
    assert_eq!(code, Some(0), "{table}{stderr}");
    let row = table
        .lines()
        .find(|l| l.starts_with("backend main"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("redis")
            && row.contains(&format!("127.0.0.1:{}", redis.port()))
            && row.contains(" up "),
        "{row}"
    );
    assert!(row.contains(" ms"), "latencies: {row}");
    let proxy_row = table.lines().find(|l| l.starts_with("proxy")).unwrap();
    assert!(
        proxy_row.contains("ready") && proxy_row.contains("connected, circuit closed"),
        "{proxy_row}"
    );
    assert_eq!(table.lines().last(), Some("healthy"));

    let (code, out, _) = health(&proxy, true);
    assert_eq!(code, Some(0));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["healthy"], true);
    let backend = &report["backends"][0];
    assert_eq!(
        (
            backend["name"].as_str(),
            backend["kind"].as_str(),
            backend["up"].as_bool()
        ),
        (Some("main"), Some("redis"), Some(true))
    );
    assert!(backend["connect_ms"].as_f64().unwrap() > 0.0, "{backend}");
    assert!(backend["ping_ms"].as_f64().unwrap() > 0.0, "{backend}");
    assert_eq!(backend["error"], Value::Null);
    assert_eq!(report["proxy"]["state"], "ready");
    assert_eq!(report["proxy"]["status"], 200);
    assert_eq!(report["proxy"]["readiness"]["routes"][0]["connected"], true);

    // The upstream dies: the backend is down, the running proxy not ready.
    redis.stop();
    readyz_until(&proxy, 503);
    let (code, table, _) = health(&proxy, false);
    assert_eq!(code, Some(1), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("backend main"))
        .unwrap();
    assert!(row.contains("DOWN") && row.contains("refused"), "{row}");
    assert!(
        table.contains("NOT READY") && table.contains("disconnected"),
        "{table}"
    );
    assert_eq!(table.lines().last(), Some("UNHEALTHY"));
    let (code, out, _) = health(&proxy, true);
    assert_eq!(code, Some(1));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["healthy"], false);
    assert_eq!(report["backends"][0]["up"], false);
    assert!(
        report["backends"][0]["error"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{report}"
    );
    assert_eq!(report["proxy"]["state"], "not_ready");

    // A proxy that is not running is reported, not a failure.
    proxy.kill();
    redis.restart();
    let (code, out, _) = health(&proxy, true);
    assert_eq!(code, Some(0), "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["backends"][0]["up"], true);
    assert_eq!(report["proxy"]["state"], "not_running");
}

#[test]
fn health_uses_the_configured_upstream_credentials() {
    let certs = Certs::generate();
    let redis = RedisServer::start_tls(&certs, &random_password(24));
    let wrong = random_password(24);
    let exited = Sealcache::builder(&redis)
        .unset("upstream.password_file")
        .set("upstream.password_env", "IT_WRONG_UPSTREAM_PASSWORD")
        .env("IT_WRONG_UPSTREAM_PASSWORD", &wrong)
        .run_until_exit("health");
    assert_eq!(exited.code, Some(1), "{}", exited.log);
    assert!(
        exited.log.contains("authentication to the upstream failed"),
        "{}",
        exited.log
    );
    assert!(
        exited.log.contains("not checked"),
        "admin.listen is null here: {}",
        exited.log
    );
    assert!(!exited.log.contains(&wrong), "the password was printed");
}

/// Expected reply for pipelined command `i`: SET k{n} / GET k{n} pairs.
fn pipelined_command(i: usize) -> Vec<Vec<u8>> {
    let n = i / 2;
    let key = format!("pipeline:{n}").into_bytes();
    if i.is_multiple_of(2) {
        vec![b"SET".to_vec(), key, value(n)]
    } else {
        vec![b"GET".to_vec(), key]
    }
}

fn value(n: usize) -> Vec<u8> {
    format!("{n:08}-{}", "v".repeat(200)).into_bytes()
}

fn expected_reply(i: usize) -> resp::Value {
    if i.is_multiple_of(2) {
        resp::Value::Simple("OK".into())
    } else {
        resp::Value::Bulk(value(i / 2))
    }
}

/// SIGTERM while a client pipelines thousands of commands and another waits
/// in BLPOP: new connections are refused at once, every reply the pipelining
/// client gets is complete and right, its stream ends with a clean TLS close
/// on a reply boundary; the BLPOP is abandoned at the deadline and counted;
/// the proxy exits 0 within the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_pipeline_answers_every_command_read() {
    const DEADLINE: Duration = Duration::from_millis(4000);
    /// Replies received before the signal is sent.
    const SIGNAL_AFTER: usize = 3_000;
    let certs = Certs::generate();
    let redis = RedisServer::start_tls(&certs, &random_password(24));
    let mut proxy = Sealcache::builder(&redis)
        .admin()
        .set("limits.shutdown_timeout_ms", "4000")
        .start();
    readyz_until(&proxy, 200);

    // A blocked client keeps a reply owed until the deadline.
    let mut blocked = RawConn::open(&proxy.endpoint()).await;
    blocked.send(&["BLPOP", "never-pushed", "0"]).await;
    let mut upstream = redis.client().await;
    poll_until_async_blocked(&mut upstream).await;

    let stream = proxy.raw_tls().await;
    let (mut rd, mut wr) = tokio::io::split(stream);
    wr.write_all(&resp::encode(&["AUTH", "default", proxy.password()]))
        .await
        .unwrap();
    let stop_writing = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, sent) = (stop_writing.clone(), sent.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Acquire) && i < 400_000 {
                let mut batch = Vec::new();
                for _ in 0..200 {
                    batch.extend(resp::encode(&pipelined_command(i)));
                    i += 1;
                }
                if wr.write_all(&batch).await.is_err() {
                    break;
                }
                sent.store(i, Ordering::Release);
            }
            wr
        })
    };
    let received = Arc::new(AtomicUsize::new(0));
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            let mut replies = 0usize;
            let mut paused = false;
            let end = loop {
                match rd.read(&mut chunk).await {
                    Ok(0) => break Ok(()),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) => break Err(e),
                }
                let mut at = 0;
                while let Some((value, used)) = resp::parse(&buf[at..]) {
                    let expected = if replies == 0 {
                        resp::Value::Simple("OK".into()) // AUTH
                    } else {
                        expected_reply(replies - 1)
                    };
                    assert_eq!(value, expected, "reply {replies}");
                    replies += 1;
                    at += used;
                }
                buf.drain(..at);
                received.store(replies, Ordering::Release);
                // Around the SIGTERM the client stops reading for a while and
                // its commands pile up unread at the proxy: a proxy that then
                // closed the socket would reset it, and the reset destroys
                // replies not read yet (the proxy must linger until it sees EOF).
                if replies > SIGNAL_AFTER && !paused {
                    paused = true;
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                }
            };
            (end, replies, buf)
        })
    };
    let progressed = crate::support::poll_until_async(Duration::from_secs(60), || async {
        (received.load(Ordering::Acquire) > SIGNAL_AFTER).then_some(())
    })
    .await;
    assert!(progressed.is_some(), "the pipeline did not get going");

    proxy.signal("TERM");
    let signalled = Instant::now();
    // From the moment the shutdown starts, new connections are refused,
    // while the proxy is still draining.
    proxy.wait_for_log("shutdown started", Duration::from_secs(5));
    let refused = TcpStream::connect(("127.0.0.1", proxy.port()));
    assert!(
        matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "a new connection after SIGTERM: {refused:?}"
    );
    assert!(
        proxy.is_running(),
        "the proxy exited before the deadline despite a blocked command"
    );
    let draining = get(proxy.admin_port(), "/readyz");
    assert_eq!(draining.status, 503, "{}", draining.body);
    assert_eq!(draining.json()["listeners"][0]["accepting"], false);

    let (end, replies, rest) = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the pipelining client's stream ended")
        .unwrap();
    stop_writing.store(true, Ordering::Release);
    drop(writer.await);
    assert!(
        end.is_ok(),
        "the stream did not end with a clean TLS close: {end:?}"
    );
    assert!(
        rest.is_empty(),
        "the stream ended inside a reply: {} stray bytes",
        rest.len()
    );
    let sent = sent.load(Ordering::Acquire);
    eprintln!("{replies} complete replies (AUTH included) for {sent} commands sent");
    assert!(
        replies > SIGNAL_AFTER && replies <= sent + 1,
        "{replies} replies for {sent} commands"
    );

    // The blocked command was abandoned at the deadline: no reply, a close.
    assert!(blocked.closes_within(Duration::from_secs(10)).await);
    let status = proxy
        .wait_for_exit(DEADLINE + Duration::from_secs(5))
        .expect("the proxy did not exit after the shutdown deadline");
    assert!(status.success(), "exit status {status}");
    let took = signalled.elapsed();
    assert!(
        took >= DEADLINE - Duration::from_millis(500),
        "exited after {took:?}, before the deadline"
    );
    assert!(
        took < DEADLINE + Duration::from_secs(3),
        "exited after {took:?}"
    );
    let log = proxy.log().read();
    assert!(
        log.contains("signal=\"SIGTERM\"") || log.contains("signal=SIGTERM"),
        "{log}"
    );
    assert!(log.contains("shutdown started"), "{log}");
    assert!(log.contains("connections_closed=2"), "{log}");
    assert!(log.contains("commands_abandoned=1"), "{log}");
}

/// Waits until redis-server reports one blocked client.
async fn poll_until_async_blocked(upstream: &mut redis::aio::MultiplexedConnection) {
    let blocked = crate::support::poll_until_async(Duration::from_secs(10), || {
        let mut upstream = upstream.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query_async(&mut upstream)
                .await
                .ok()?;
            info.contains("blocked_clients:1").then_some(())
        }
    })
    .await;
    assert!(blocked.is_some(), "BLPOP never reached redis-server");
}

#[tokio::test]
async fn sigint_closes_idle_clients_cleanly_and_exits_at_once() {
    let certs = Certs::generate();
    let redis = RedisServer::start_tls(&certs, &random_password(24));
    let mut proxy = Sealcache::builder(&redis).start();
    let mut idle = RawConn::open(&proxy.endpoint()).await;
    let mut tls = proxy.raw_tls().await;
    tls.write_all(&resp::encode(&["AUTH", "default", proxy.password()]))
        .await
        .unwrap();
    let mut auth = [0u8; 5];
    tls.read_exact(&mut auth).await.unwrap();
    assert_eq!(&auth, b"+OK\r\n");

    proxy.signal("INT");
    let signalled = Instant::now();
    // A clean TLS close (close_notify), not a reset or a bare EOF.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut rest)).await;
    assert!(matches!(end, Ok(Ok(0))), "{end:?}");
    assert!(idle.closes_within(Duration::from_secs(10)).await);
    let status = proxy.wait_for_exit(Duration::from_secs(10)).expect("exit");
    assert!(status.success(), "exit status {status}");
    // Nothing was owed: no waiting for the 10 s deadline.
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
    let log = proxy.log().read();
    assert!(
        log.contains("SIGINT") && log.contains("every command started was answered"),
        "{log}"
    );
}

/// A production configuration that passes, but for what the test changes.
fn production(certs: &Certs) -> SealcacheBuilder {
    SealcacheBuilder::new(certs)
        .set("profile", "production")
        .set("tls.min_version", "\"1.3\"")
        .set("upstream.min_tls_version", "\"1.3\"")
}

#[test]
fn check_config_refuses_a_non_loopback_admin_listener_in_production() {
    let certs = Certs::generate();
    let addr = format!("\"0.0.0.0:{}\"", free_port());
    production(&certs)
        .set("admin.listen", &addr)
        .run_until_exit("check-config")
        .assert_config_error("is not a loopback address in the production profile");
    // Allowed explicitly: accepted, with a warning.
    let allowed = production(&certs)
        .set("admin.listen", &addr)
        .set("admin.allow_non_loopback", "true")
        .run_until_exit("check-config");
    assert_eq!(allowed.code, Some(0), "{}", allowed.log);
    assert!(
        allowed.log.contains("warning: admin.listen 0.0.0.0:"),
        "{}",
        allowed.log
    );
    // Loopback is fine in production; development takes any address, with the warning.
    let loopback = production(&certs).run_until_exit("check-config");
    assert_eq!(loopback.code, Some(0), "{}", loopback.log);
    let development = SealcacheBuilder::new(&certs)
        .set("admin.listen", &addr)
        .run_until_exit("check-config");
    assert_eq!(development.code, Some(0), "{}", development.log);
    assert!(
        development.log.contains("warning: admin.listen"),
        "{}",
        development.log
    );
}

#[test]
fn check_config_refuses_bad_admin_addresses() {
    let certs = Certs::generate();
    SealcacheBuilder::new(&certs)
        .set("admin.listen", "\"health.example:9380\"")
        .run_until_exit("check-config")
        .assert_config_error("admin.listen (health.example:9380) is not an IP address and port");
    let port = free_port();
    SealcacheBuilder::new(&certs)
        .set("listen.tcp", &format!("\"127.0.0.1:{port}\""))
        .set("admin.listen", &format!("\"127.0.0.1:{port}\""))
        .run_until_exit("check-config")
        .assert_config_error("uses the same address as listen.tcp");
    SealcacheBuilder::new(&certs)
        .set("limits.shutdown_timeout_ms", "0")
        .run_until_exit("check-config")
        .assert_config_error("limits.shutdown_timeout_ms is 0");
}

#[test]
fn serve_fails_fast_when_the_admin_port_is_taken() {
    let certs = Certs::generate();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let exited = SealcacheBuilder::new(&certs)
        .set("admin.listen", &format!("\"127.0.0.1:{port}\""))
        .run_until_exit("serve");
    assert_eq!(exited.code, Some(1), "{}", exited.log);
    assert!(
        exited
            .log
            .contains(&format!("cannot listen on 127.0.0.1:{port} (admin.listen)")),
        "{}",
        exited.log
    );
}
