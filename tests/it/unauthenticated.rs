//! What a client can make the proxy do before it authenticates, and what
//! client-supplied text can do to the log: bounded argon2 work (issue 7,
//! criterion 7), escaped and truncated log fields (issue 12, criterion 3),
//! and a HELLO that changes nothing when it fails (issue 12, criterion 8).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{RedisServer, Sealcache, random_password};

fn upstream() -> RedisServer {
    RedisServer::start_tls(&crate::support::Certs::generate(), &random_password(32))
}

/// Peak resident memory of a process so far (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kib * 1024
}

/// One RESP command as bytes.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads until one CRLF-terminated simple reply line is in (errors and
/// status replies are one line).
async fn read_line<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut byte))
            .await
            .expect("a reply within 30 s")
            .expect("read");
        assert_eq!(
            n,
            1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&line)
        );
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// 500 clients send a wrong password at once to argon2-hashed users (known
/// and unknown names). argon2 needs ~19 MiB per verification: unbounded, that
/// is gigabytes. Bounded to one per CPU, the proxy stays small, every client
/// gets WRONGPASS, and an authenticated client keeps being answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_passwords_do_bounded_work_and_others_are_served() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .hashed_passwords()
        .set("auth.failure_delay_ms", "1")
        .set("auth.max_failure_delay_ms", "10")
        .start();
    let pid = proxy.pid().expect("running");
    let mut authed = proxy.client().await;
    let rss_before = peak_rss(pid);

    let attackers: Vec<_> = (0..500)
        .map(|i| {
            let user = if i % 2 == 0 { "default" } else { "nobody" };
            let endpoint = proxy.endpoint();
            tokio::spawn(async move {
                let mut raw = endpoint.raw_tls().await;
                let auth = resp(&[b"AUTH", user.as_bytes(), b"not-the-password-at-all"]);
                raw.write_all(&auth).await.expect("send AUTH");
                read_line(&mut raw).await
            })
        })
        .collect();

    let mut slowest = Duration::ZERO;
    let mut pings = 0;
    while !attackers.iter().all(|a| a.is_finished()) {
        let started = Instant::now();
        let pong: String = redis::cmd("PING")
            .query_async(&mut authed)
            .await
            .expect("PING answered during the flood");
        assert_eq!(pong, "PONG");
        slowest = slowest.max(started.elapsed());
        pings += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for attacker in attackers {
        let reply = attacker.await.expect("attacker task");
        assert_eq!(
            reply, "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
            "unknown and known users get the same answer"
        );
    }
    let grown = peak_rss(pid).saturating_sub(rss_before);
    eprintln!(
        "500 wrong AUTHs: {pings} PINGs answered meanwhile, slowest {slowest:?}; peak RSS grew {} MiB",
        grown >> 20
    );
    assert!(pings > 0, "the flood ended before any PING");
    assert!(
        grown < 256 << 20,
        "peak RSS grew {} MiB: argon2 verifications are not bounded",
        grown >> 20
    );
    assert!(
        slowest < Duration::from_secs(5),
        "an authenticated PING took {slowest:?} during the flood"
    );
}

/// A user name with a newline and ANSI escapes must not start a line of its
/// own in the log, and a long one is cut: in the text and JSON formats.
#[tokio::test]
async fn client_supplied_text_cannot_forge_or_flood_log_lines() {
    let redis = upstream();
    for format in ["text", "json"] {
        let proxy = Sealcache::builder(&redis)
            .arg("--log-format")
            .arg(format)
            .start();
        let forged =
            b"evil\n2099-01-01T00:00:00.000000Z  INFO sealcache: FORGED admin logged in\x1b[2K";
        let long = vec![b'L'; 12 * 1024];
        let mut raw = proxy.raw_tls().await;
        for user in [&forged[..], &long[..]] {
            raw.write_all(&resp(&[b"AUTH", user, b"wrong-password"]))
                .await
                .unwrap();
            let reply = read_line(&mut raw).await;
            assert!(reply.starts_with("-WRONGPASS"), "{reply}");
        }
        let log = proxy.wait_for_log("LLLL", Duration::from_secs(10));
        for line in log.lines() {
            assert!(
                !line.trim_start().starts_with("2099-01-01"),
                "{format}: the user name started a log line of its own: {line:?}"
            );
            if format == "json" && line.contains("FORGED") {
                let parsed: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
                let user = parsed["auth.user"].as_str().expect("auth.user field");
                assert!(!user.contains('\n'), "{user:?}");
            }
            assert!(
                !line.contains("\x1b[2K"),
                "{format}: an escape sequence from the client reached the log: {line:?}"
            );
            assert!(
                line.len() < 2048,
                "{format}: a {} byte log line: a long user name was logged whole",
                line.len()
            );
        }
        assert!(log.contains("…(+"), "{format}: the cut is marked\n{log}");
    }
}

/// `HELLO 3 AUTH <user> <right password> SETNAME "a b"` answers an error and
/// leaves the connection unauthenticated: every option is checked before AUTH
/// runs (as redis-server 7.2 does; 7.0 authenticated first).
#[tokio::test]
async fn a_failing_hello_changes_nothing() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let password = proxy.password().to_owned();
    let cases: [&[&[u8]]; 3] = [
        &[
            b"HELLO",
            b"3",
            b"AUTH",
            b"default",
            password.as_bytes(),
            b"SETNAME",
            b"a b",
        ],
        &[
            b"HELLO",
            b"3",
            b"SETNAME",
            b"a b",
            b"AUTH",
            b"default",
            password.as_bytes(),
        ],
        &[
            b"HELLO",
            b"3",
            b"AUTH",
            b"default",
            password.as_bytes(),
            b"BOGUS",
        ],
    ];
    for hello in cases {
        let mut raw = proxy.raw_tls().await;
        raw.write_all(&resp(hello)).await.unwrap();
        let reply = read_line(&mut raw).await;
        assert!(reply.starts_with("-ERR "), "{reply}");
        if hello.contains(&&b"BOGUS"[..]) {
            assert_eq!(reply, "-ERR Syntax error in HELLO option 'BOGUS'\r\n");
        }
        raw.write_all(&resp(&[b"GET", b"k"])).await.unwrap();
        assert_eq!(
            read_line(&mut raw).await,
            "-NOAUTH Authentication required.\r\n",
            "after {reply:?} the connection must still be unauthenticated"
        );
        raw.write_all(&resp(&[b"CLIENT", b"GETNAME"]))
            .await
            .unwrap();
        assert!(read_line(&mut raw).await.starts_with("-NOAUTH"));
    }
}
