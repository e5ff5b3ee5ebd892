//! The proxy core against a real TLS redis-server: authentication, RESP2 and
//! RESP3, pipelining, transactions, blocking commands, Pub/Sub, bad input,
//! upstream failure and recovery, mutual TLS and the Unix socket listener.

use std::time::Duration;

use futures_util::StreamExt;
use redis::{AsyncCommands, Value};

use crate::support::endpoint::exchange;
use crate::support::{Certs, RedisServer, Sealcache, random_password};

fn upstream() -> RedisServer {
    RedisServer::start_tls(&Certs::generate(), &random_password(32))
}

fn proxy(redis: &RedisServer) -> Sealcache {
    Sealcache::builder(redis).start()
}

#[tokio::test]
async fn auth_and_hello_accept_right_and_refuse_wrong_passwords() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let mut raw = proxy.raw_tls().await;
    let wait = Duration::from_millis(300);

    let before = exchange(&mut raw, b"GET k\r\n", wait).await;
    assert_eq!(before.text(), "-NOAUTH Authentication required.\r\n");
    let ping = exchange(&mut raw, b"PING\r\n", wait).await;
    assert_eq!(
        ping.text(),
        "-NOAUTH Authentication required.\r\n",
        "PING before AUTH, as redis-server 7.0 with a password answers it"
    );

    let wrong = exchange(
        &mut raw,
        b"AUTH default not-the-password\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        wrong.text(),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    let still = exchange(&mut raw, b"GET k\r\n", wait).await;
    assert!(still.text().starts_with("-NOAUTH"), "{}", still.text());

    let auth = format!("AUTH {}\r\n", proxy.password());
    assert_eq!(
        exchange(&mut raw, auth.as_bytes(), wait).await.text(),
        "+OK\r\n"
    );
    assert_eq!(
        exchange(&mut raw, b"GET k\r\n", wait).await.text(),
        "$-1\r\n"
    );

    // HELLO with AUTH, on a fresh connection.
    let mut raw = proxy.raw_tls().await;
    let hello_wrong = exchange(
        &mut raw,
        b"HELLO 3 AUTH default nope\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert!(
        hello_wrong.text().starts_with("-WRONGPASS"),
        "{}",
        hello_wrong.text()
    );
    let hello_noauth = exchange(&mut raw, b"HELLO 3\r\n", wait).await;
    assert!(
        hello_noauth
            .text()
            .starts_with("-NOAUTH HELLO must be called"),
        "{}",
        hello_noauth.text()
    );
    let hello = format!("HELLO 3 AUTH default {} SETNAME app1\r\n", proxy.password());
    let reply = exchange(&mut raw, hello.as_bytes(), wait).await.text();
    assert!(reply.starts_with("%7\r\n"), "RESP3 map expected: {reply}");
    assert!(reply.contains("proto\r\n:3"), "{reply}");
    let name = exchange(&mut raw, b"CLIENT GETNAME\r\n", wait).await.text();
    assert_eq!(name, "$4\r\napp1\r\n");
    let bad_proto = exchange(&mut raw, b"HELLO 4\r\n", wait).await.text();
    assert!(bad_proto.starts_with("-NOPROTO"), "{bad_proto}");
}

#[tokio::test]
async fn failed_logins_are_delayed_more_each_time() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .set("auth.failure_delay_ms", "200")
        .start();
    let mut raw = proxy.raw_tls().await;
    let mut delays = Vec::new();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let reply = exchange(
            &mut raw,
            b"AUTH wrong-password-here\r\n",
            Duration::from_secs(3),
        )
        .await;
        assert!(reply.text().starts_with("-WRONGPASS"), "{}", reply.text());
        delays.push(started.elapsed());
    }
    assert!(delays[0] >= Duration::from_millis(200), "{delays:?}");
    assert!(
        delays[2] >= Duration::from_millis(800),
        "third failure waits 4× the base: {delays:?}"
    );
    let log = proxy.wait_for_log("authentication failed", Duration::from_secs(5));
    assert!(
        !log.contains("wrong-password-here"),
        "passwords never reach the log"
    );
}

#[tokio::test]
async fn ten_thousand_pipelined_commands_reply_in_order() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let mut con = proxy.client().await;
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        if i % 2 == 0 {
            pipe.set(format!("p:{i}"), i);
        } else {
            pipe.incr("p:counter", 1);
        }
    }
    let replies: Vec<Value> = pipe.query_async(&mut con).await.unwrap();
    assert_eq!(replies.len(), 10_000);
    for (i, reply) in replies.iter().enumerate() {
        if i % 2 == 1 {
            assert_eq!(
                *reply,
                Value::Int((i as i64 + 1) / 2),
                "reply {i} out of order"
            );
        }
    }
    let mut get = redis::pipe();
    for i in (0..10_000).step_by(2) {
        get.get(format!("p:{i}"));
    }
    let values: Vec<i64> = get.query_async(&mut con).await.unwrap();
    assert_eq!(values, (0..10_000).step_by(2).collect::<Vec<i64>>());
}

#[tokio::test]
async fn multi_exec_and_watch_conflicts() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let mut a = proxy.client().await;
    let mut b = proxy.client().await;

    let (x, y): (String, String) = redis::pipe()
        .atomic()
        .set("tx:x", "1")
        .get("tx:x")
        .query_async(&mut a)
        .await
        .unwrap();
    assert_eq!((x.as_str(), y.as_str()), ("OK", "1"));

    // A WATCHed key changed by another client aborts EXEC (nil).
    let _: () = redis::cmd("WATCH")
        .arg("tx:w")
        .query_async(&mut a)
        .await
        .unwrap();
    let _: () = b.set("tx:w", "changed").await.unwrap();
    let _: () = redis::cmd("MULTI").query_async(&mut a).await.unwrap();
    let queued: String = redis::cmd("SET")
        .arg("tx:w")
        .arg("mine")
        .query_async(&mut a)
        .await
        .unwrap();
    assert_eq!(queued, "QUEUED");
    let exec: Value = redis::cmd("EXEC").query_async(&mut a).await.unwrap();
    assert_eq!(exec, Value::Nil);
    let w: String = b.get("tx:w").await.unwrap();
    assert_eq!(w, "changed");

    // Without interference the same transaction commits.
    let _: () = redis::cmd("WATCH")
        .arg("tx:w")
        .query_async(&mut a)
        .await
        .unwrap();
    let _: () = redis::cmd("MULTI").query_async(&mut a).await.unwrap();
    let _: String = redis::cmd("SET")
        .arg("tx:w")
        .arg("mine")
        .query_async(&mut a)
        .await
        .unwrap();
    let exec: Vec<String> = redis::cmd("EXEC").query_async(&mut a).await.unwrap();
    assert_eq!(exec, vec!["OK"]);

    // Errors while queueing abort EXEC, as Redis does.
    let _: () = redis::cmd("MULTI").query_async(&mut a).await.unwrap();
    let err = redis::cmd("NOSUCHCOMMAND")
        .query_async::<Value>(&mut a)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown command"), "{err}");
    let exec = redis::cmd("EXEC")
        .query_async::<Value>(&mut a)
        .await
        .unwrap_err();
    assert!(
        exec.to_string()
            .contains("Transaction discarded because of previous errors"),
        "{exec}"
    );
    let nested = redis::cmd("EXEC")
        .query_async::<Value>(&mut a)
        .await
        .unwrap_err();
    assert!(
        nested.to_string().contains("EXEC without MULTI"),
        "{nested}"
    );
}

#[tokio::test]
async fn transactions_reuse_a_bounded_set_of_upstream_connections() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let mut con = proxy.client().await;
    for i in 0..300 {
        let (v,): (String,) = redis::pipe()
            .atomic()
            .set("tx:reuse", i)
            .ignore()
            .get("tx:reuse")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(v, i.to_string());
    }
    let info: String = redis::cmd("INFO").query_async(&mut con).await.unwrap();
    let opened: u64 = info_field(&info, "backend_main_connections_opened")
        .parse()
        .unwrap();
    let pool: u64 = info_field(&info, "backend_main_pool_size").parse().unwrap();
    assert!(
        opened <= pool + 2,
        "300 transactions opened {opened} upstream connections"
    );
}

fn info_field<'a>(info: &'a str, name: &str) -> &'a str {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("INFO has no {name}:\n{info}"))
        .trim()
}

#[tokio::test]
async fn info_has_a_proxy_section_and_config_get_hides_upstream_secrets() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let mut con = proxy.client().await;
    let info: String = redis::cmd("INFO").query_async(&mut con).await.unwrap();
    assert!(info.contains("# Proxy"), "{info}");
    assert_eq!(
        info_field(&info, "sealcache_version"),
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        info_field(&info, "connected_clients")
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let config: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*pass*")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        !config.iter().any(|v| v == redis.password()),
        "the upstream password leaked: {config:?}"
    );
    assert!(!config.iter().any(|v| v == "requirepass"), "{config:?}");
}

#[tokio::test]
async fn blpop_is_woken_by_another_client() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let mut waiter = proxy.client().await;
    let mut pusher = proxy.client().await;
    let blocked = tokio::spawn(async move {
        let popped: (String, String) = redis::cmd("BLPOP")
            .arg("bl:q")
            .arg(10)
            .query_async(&mut waiter)
            .await
            .unwrap();
        popped
    });
    // The waiter is blocked upstream once a dedicated connection is in use.
    let mut probe = proxy.client().await;
    for _ in 0..200 {
        let info: String = redis::cmd("INFO").query_async(&mut probe).await.unwrap();
        if info_field(&info, "backend_main_blocking_in_use") == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _: i64 = pusher.rpush("bl:q", "hello").await.unwrap();
    let popped = tokio::time::timeout(Duration::from_secs(5), blocked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(popped, ("bl:q".to_string(), "hello".to_string()));
    // Other clients were not blocked behind it meanwhile.
    let pong: String = redis::cmd("PING").query_async(&mut pusher).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn blpop_timeout_is_a_null_array_in_resp2() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let mut raw = proxy.raw_tls().await;
    let auth = format!("AUTH {}\r\nBLPOP bl:none 0.1\r\n", proxy.password());
    let reply = exchange(&mut raw, auth.as_bytes(), Duration::from_secs(2)).await;
    assert_eq!(reply.text(), "+OK\r\n*-1\r\n");
}

#[tokio::test]
async fn subscribe_receives_published_messages() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let client = proxy.endpoint().redis_client();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("news").await.unwrap();
    pubsub.psubscribe("alerts.*").await.unwrap();
    let mut publisher = proxy.client().await;
    let receivers: i64 = publisher.publish("news", "hello").await.unwrap();
    assert_eq!(receivers, 1);
    let _: i64 = publisher.publish("alerts.fire", "hot").await.unwrap();
    let mut stream = pubsub.on_message();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.get_channel_name(), "news");
    assert_eq!(first.get_payload::<String>().unwrap(), "hello");
    let second = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.get_channel_name(), "alerts.fire");
    assert_eq!(second.get_payload::<String>().unwrap(), "hot");
}

#[tokio::test]
async fn resp2_subscribed_clients_get_redis_replies_for_ping_and_other_commands() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let mut raw = proxy.raw_tls().await;
    let wait = Duration::from_millis(500);
    let auth = format!("AUTH {}\r\nSUBSCRIBE c1\r\n", proxy.password());
    let reply = exchange(&mut raw, auth.as_bytes(), wait).await.text();
    assert_eq!(reply, "+OK\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n");
    assert_eq!(
        exchange(&mut raw, b"PING\r\n", wait).await.text(),
        "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    );
    let get = exchange(&mut raw, b"GET k\r\n", wait).await.text();
    assert!(get.starts_with("-ERR Can't execute 'get'"), "{get}");
    let unsub = exchange(&mut raw, b"UNSUBSCRIBE\r\n", wait).await.text();
    assert_eq!(unsub, "*3\r\n$11\r\nunsubscribe\r\n$2\r\nc1\r\n:0\r\n");
    assert_eq!(
        exchange(&mut raw, b"GET k\r\n", wait).await.text(),
        "$-1\r\n"
    );
}

#[tokio::test]
async fn resp3_replies_use_maps_and_nulls() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let mut raw = proxy.raw_tls().await;
    let wait = Duration::from_millis(500);
    let hello = format!("HELLO 3 AUTH default {}\r\n", proxy.password());
    assert!(
        exchange(&mut raw, hello.as_bytes(), wait)
            .await
            .text()
            .starts_with('%')
    );
    assert_eq!(
        exchange(&mut raw, b"GET r3:missing\r\n", wait).await.text(),
        "_\r\n"
    );
    let _ = exchange(&mut raw, b"HSET r3:h f v\r\n", wait).await;
    let map = exchange(&mut raw, b"HGETALL r3:h\r\n", wait).await.text();
    assert_eq!(map, "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    // The same reply for a RESP2 client is a flat array.
    let mut con = proxy.client().await;
    let flat: Value = redis::cmd("HGETALL")
        .arg("r3:h")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        flat,
        Value::Array(vec![
            Value::BulkString(b"f".to_vec()),
            Value::BulkString(b"v".to_vec())
        ])
    );
    let score: Value = redis::cmd("ZADD")
        .arg("r3:z")
        .arg(1.5)
        .arg("m")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(score, Value::Int(1));
    let score: String = redis::cmd("ZSCORE")
        .arg("r3:z")
        .arg("m")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(score, "1.5");
}

#[tokio::test]
async fn garbage_and_oversized_frames_close_only_that_connection() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .set("limits.max_bulk_len", "1024")
        .start();
    let mut healthy = proxy.client().await;
    let _: () = healthy.set("g:k", "v").await.unwrap();

    let mut raw = proxy.raw_tls().await;
    let auth = format!("AUTH {}\r\n", proxy.password());
    assert_eq!(
        exchange(&mut raw, auth.as_bytes(), Duration::from_millis(300))
            .await
            .text(),
        "+OK\r\n"
    );
    let bad = exchange(&mut raw, b"*1\r\n:12\r\n", Duration::from_secs(2)).await;
    assert_eq!(bad.text(), "-ERR Protocol error: expected '$', got ':'\r\n");
    assert!(
        bad.closed,
        "the connection must be closed after a protocol error"
    );

    let mut raw = proxy.raw_tls().await;
    let big = exchange(
        &mut raw,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(big.text(), "-ERR Protocol error: invalid bulk length\r\n");
    assert!(big.closed);

    // Not TLS at all.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port()))
        .await
        .unwrap();
    let reply = exchange(&mut plain, b"PING\r\n", Duration::from_secs(2)).await;
    assert!(
        !reply.text().contains("PONG"),
        "plaintext must never be served"
    );

    let v: String = healthy.get("g:k").await.unwrap();
    assert_eq!(v, "v", "other clients are unaffected");
    let mut fresh = proxy.client().await;
    let v: String = fresh.get("g:k").await.unwrap();
    assert_eq!(v, "v", "the proxy still accepts clients");
}

#[tokio::test]
async fn unknown_commands_and_wrong_arity_are_errors_not_disconnects() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let mut con = proxy.client().await;
    let err = redis::cmd("NOSUCH")
        .arg("x")
        .query_async::<Value>(&mut con)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown command 'NOSUCH'"),
        "{err}"
    );
    let err = redis::cmd("GET")
        .query_async::<Value>(&mut con)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("wrong number of arguments for 'get' command"),
        "{err}"
    );
    let err = redis::cmd("FLUSHALL")
        .query_async::<Value>(&mut con)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("allowed_admin_commands"), "{err}");
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn upstream_killed_mid_session_gives_a_clear_error_then_recovers() {
    let mut redis = upstream();
    let proxy = proxy(&redis);
    let mut con = proxy.client().await;
    let _: () = con.set("up:k", "v").await.unwrap();
    redis.stop();
    let err = con.get::<_, String>("up:k").await.unwrap_err();
    assert!(err.to_string().contains("sealcache: "), "{err}");
    assert!(
        err.to_string().contains("backend 'main'")
            && !err.to_string().contains(&redis.port().to_string()),
        "the error names the backend, not its address: {err}"
    );
    redis.restart();
    // The lane reconnects with backoff; poll until it does.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match con.set::<_, _, ()>("up:k", "back").await {
            Ok(()) => break,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "no recovery: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let v: String = con.get("up:k").await.unwrap();
    assert_eq!(v, "back");
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).mutual_tls().start();
    let mut con = proxy
        .endpoint()
        .with_client_cert(proxy.certs())
        .client()
        .await;
    let _: () = con.set("m:k", "v").await.unwrap();
    let refused = proxy.endpoint().without_client_cert().try_client().await;
    assert!(
        refused.is_err(),
        "a client without a certificate must be refused"
    );
}

#[tokio::test]
async fn unix_socket_listener_serves_with_restricted_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).unix_socket().start();
    let mode = std::fs::metadata(proxy.unix_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode & 0o007, 0, "no access for others: {mode:o}");
    let mut raw = proxy.unix_endpoint().raw().await;
    let request = format!("AUTH {}\r\nSET u:k v\r\nGET u:k\r\n", proxy.password());
    let reply = exchange(&mut raw, request.as_bytes(), Duration::from_millis(500)).await;
    assert_eq!(reply.text(), "+OK\r\n+OK\r\n$1\r\nv\r\n");
}

#[tokio::test]
async fn redis_cli_works_through_the_proxy() {
    let redis = upstream();
    let proxy = proxy(&redis);
    assert_eq!(proxy.redis_cli(&["SET", "cli:k", "hello world"]), "OK");
    assert_eq!(proxy.redis_cli(&["GET", "cli:k"]), "hello world");
    assert_eq!(
        proxy.redis_cli(&["SELECT", "99"]).trim(),
        "ERR DB index is out of range"
    );
    let info = proxy.redis_cli(&["INFO", "server"]);
    assert!(info.contains("redis_version"), "{info}");
}

#[tokio::test]
async fn select_isolates_databases_per_client() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let mut a = proxy.client().await;
    let mut b = proxy.client().await;
    let _: () = redis::cmd("SELECT")
        .arg(3)
        .query_async(&mut a)
        .await
        .unwrap();
    let _: () = a.set("db:k", "three").await.unwrap();
    let in_zero: Option<String> = b.get("db:k").await.unwrap();
    assert_eq!(in_zero, None, "client b is still in db 0");
    let v: String = a.get("db:k").await.unwrap();
    assert_eq!(v, "three");
    let mut direct = proxy.raw_upstream().client().await;
    let _: () = redis::cmd("SELECT")
        .arg(3)
        .query_async(&mut direct)
        .await
        .unwrap();
    let exists: bool = direct.exists("db:k").await.unwrap();
    assert!(exists, "stored in database 3 upstream");
}

#[tokio::test]
async fn silent_clients_are_disconnected_by_the_handshake_and_auth_timeouts() {
    use tokio::io::AsyncReadExt;
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .set("tls.handshake_timeout_ms", "300")
        .set("limits.auth_timeout_secs", "1")
        .start();
    // TCP only, no TLS handshake: closed after the handshake timeout.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port()))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "silent TCP client must be dropped: {read:?}"
    );
    // TLS but never AUTH: closed after the auth timeout.
    let mut tls = proxy.raw_tls().await;
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "unauthenticated client must be dropped: {read:?}"
    );
    // Others are fine.
    let mut con = proxy.client().await;
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_without_secrets() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .arg("--log-format")
        .arg("json")
        .start();
    let mut raw = proxy.raw_tls().await;
    let _ = exchange(
        &mut raw,
        b"AUTH default a-wrong-secret-password\r\n",
        Duration::from_secs(2),
    )
    .await;
    let log = proxy.wait_for_log("authentication failed", Duration::from_secs(5));
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .collect();
    assert!(!lines.is_empty(), "no JSON lines in:\n{log}");
    for line in &lines {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(parsed.get("level").is_some(), "{line}");
    }
    assert!(!log.contains("a-wrong-secret-password"));
    assert!(!log.contains(proxy.password()));
}

#[tokio::test]
async fn max_clients_and_idle_timeout_are_enforced() {
    use tokio::io::AsyncReadExt;
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .set("limits.max_clients", "2")
        .set("limits.idle_timeout_secs", "4")
        .start();
    let wait = Duration::from_millis(300);
    let auth = format!("AUTH {}\r\n", proxy.password());
    let mut first = proxy.raw_tls().await;
    assert_eq!(
        exchange(&mut first, auth.as_bytes(), wait).await.text(),
        "+OK\r\n"
    );
    let mut second = proxy.raw_tls().await;
    assert_eq!(
        exchange(&mut second, auth.as_bytes(), wait).await.text(),
        "+OK\r\n"
    );
    let mut third = proxy.raw_tls().await;
    let refused = exchange(&mut third, b"PING\r\n", Duration::from_secs(2)).await;
    assert_eq!(refused.text(), "-ERR max number of clients reached\r\n");
    assert!(refused.closed);
    // An authenticated client that stays silent past idle_timeout_secs is closed.
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), first.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "idle client must be closed: {read:?}"
    );
}

/// A TLS handshake with only the given protocol versions offered.
async fn handshake_with(
    proxy: &Sealcache,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(proxy.certs().ca_cert()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port())).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
}

#[tokio::test]
async fn tls_versions_follow_the_configured_floor() {
    let redis = upstream();
    let dev = proxy(&redis);
    assert!(
        handshake_with(&dev, &[&rustls::version::TLS12])
            .await
            .is_ok(),
        "TLS 1.2 is allowed in development"
    );
    let strict = Sealcache::builder(&redis)
        .set("tls.min_version", "\"1.3\"")
        .start();
    assert!(
        handshake_with(&strict, &[&rustls::version::TLS12])
            .await
            .is_err(),
        "TLS 1.2 must be refused"
    );
    let mut tls13 = handshake_with(&strict, &[&rustls::version::TLS13])
        .await
        .unwrap();
    let reply = exchange(&mut tls13, b"PING\r\n", Duration::from_millis(300)).await;
    assert_eq!(reply.text(), "-NOAUTH Authentication required.\r\n");
}
