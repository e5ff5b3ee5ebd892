//! Real clients against sealcache (issue 3, criterion 11): redis-py and ioredis
//! each open with `HELLO 3 AUTH …` over TLS with the test CA and run
//! `tests/clients/*` — strings, hashes, lists, sets, sorted sets, a pipeline, a
//! transaction and Pub/Sub. Then the raw upstream must hold what they wrote
//! only as envelopes.
//!
//! The interpreters and libraries come from `scripts/test.sh` (a venv in
//! `target/py-clients`, or `$IT_PYTHON`; `tests/clients/node_modules`). When
//! they are missing the tests fail and say so: they are never skipped.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{Certs, RedisServer, Sealcache, poll_until, random_password, repo_path};

/// First bytes of every stored value (docs/envelope.md), spelled out here so
/// the test does not trust the crate's own constant.
const ENVELOPE_MAGIC: [u8; 3] = [0xF5, 0xEA, 0x1C];
/// A script's own deadline is 60 s; this one catches a hung interpreter.
const CLIENT_DEADLINE: Duration = Duration::from_secs(120);
/// What each script reports as exercised, in its summary line.
const GROUPS: [&str; 8] = [
    "strings",
    "hashes",
    "lists",
    "sets",
    "sorted sets",
    "pipeline(",
    "transaction",
    "pubsub",
];
/// No run of this many plaintext bytes may appear in a stored value.
const LEAK_WINDOW: usize = 8;

#[test]
fn redis_py_round_trips_through_sealcache() {
    let python = crate::support::python();
    let version = Command::new(&python)
        .args(["-c", "import redis; print(redis.__version__)"])
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    assert!(
        version.status.success(),
        "redis-py is not installed for {}: run scripts/test.sh (it installs \
         tests/clients/requirements.txt)\n{}",
        python.display(),
        String::from_utf8_lossy(&version.stderr)
    );

    let mut command = Command::new(&python);
    command
        .arg(repo_path("tests/clients/redis_py_client.py"))
        // argv and the marker may hold non-ASCII text whatever the locale.
        .env("PYTHONUTF8", "1");
    drive_and_check("redis-py", command);
}

#[test]
fn ioredis_round_trips_through_sealcache() {
    let node_modules = crate::support::node_modules();
    let mut command = Command::new("node");
    command
        .arg(repo_path("tests/clients/ioredis_client.js"))
        .current_dir(repo_path("tests/clients"))
        .env("NODE_PATH", &node_modules);
    drive_and_check("ioredis", command);
}

/// Starts redis-server and sealcache, runs `command` (a client script) against
/// the proxy, checks its summary, then checks the raw upstream.
fn drive_and_check(client: &str, mut command: Command) {
    let redis = RedisServer::start_tls(&Certs::generate(), &random_password(32));
    let proxy = Sealcache::builder(&redis).start();
    let prefix = format!("{client}:");
    let marker = format!("sealcache-marker-{}-héllo-日本語-🚀", random_password(24));

    command
        .args(["--host", "127.0.0.1", "--port", &proxy.port().to_string()])
        .arg("--ca")
        .arg(proxy.certs().ca_cert())
        .args(["--prefix", &prefix, "--marker", &marker])
        .env("REDIS_PASSWORD", proxy.password());
    let stdout = run_script(client, command, proxy.dir());

    let summary = stdout.lines().rev().find(|l| !l.trim().is_empty());
    let summary = summary.unwrap_or_default();
    assert!(
        summary.starts_with(&format!("sealcache-clients: {client} "))
            && summary.contains("RESP3 TLS")
            && summary.contains("checks passed")
            && GROUPS.iter().all(|group| summary.contains(group)),
        "{client}: unexpected summary line {summary:?}; stdout:\n{stdout}"
    );

    assert_stored_as_envelopes(&proxy, &prefix, &marker);
}

/// Runs a client script to completion (or [`CLIENT_DEADLINE`]) with its
/// output in files under `dir`; panics with both outputs unless it exits 0.
/// Returns stdout.
fn run_script(client: &str, mut command: Command, dir: &Path) -> String {
    let out_path = dir.join(format!("{client}.stdout"));
    let err_path = dir.join(format!("{client}.stderr"));
    let file = |path: &Path| {
        std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
    };
    command
        .stdin(Stdio::null())
        .stdout(file(&out_path))
        .stderr(file(&err_path));
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.spawn().unwrap_or_else(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            panic!("`{program}` is not installed: run scripts/test.sh (it installs the {client} test client)");
        }
        panic!("start {program} for {client}: {e}")
    });
    let status = poll_until(CLIENT_DEADLINE, || child.try_wait().expect("poll client"));
    let read = |path: &Path| {
        String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{client} did not finish within {CLIENT_DEADLINE:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            read(&out_path),
            read(&err_path)
        );
    };
    let (stdout, stderr) = (read(&out_path), read(&err_path));
    assert!(
        status.success(),
        "{client} failed ({status})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    stdout
}

/// The scripts leave `marker` under `<prefix>proof:*`, one key per data type.
/// Through the proxy (read by another client library) it is the marker; in
/// redis-server it is an envelope with no run of the marker's bytes in it.
fn assert_stored_as_envelopes(proxy: &Sealcache, prefix: &str, marker: &str) {
    let key = |kind: &str| format!("{prefix}proof:{kind}");

    let mut through = proxy.endpoint().sync_client();
    let read_back: Vec<u8> = redis::cmd("GET")
        .arg(key("string"))
        .query(&mut through)
        .expect("GET proof:string through sealcache");
    assert_eq!(
        String::from_utf8_lossy(&read_back),
        marker,
        "another client reads what the script wrote"
    );

    let mut raw = proxy.raw_upstream().sync_client();
    let mut query = |kind: &str, cmd: &mut redis::Cmd| -> (String, Vec<u8>) {
        let mut values: Vec<Vec<u8>> = cmd
            .query(&mut raw)
            .unwrap_or_else(|e| panic!("raw upstream {cmd:?}: {e}"));
        assert_eq!(
            values.len(),
            1,
            "{kind}: one stored value expected: {values:02x?}"
        );
        (kind.to_owned(), values.remove(0))
    };
    let stored = [
        query("string", redis::cmd("MGET").arg(key("string"))),
        query("hash", redis::cmd("HVALS").arg(key("hash"))),
        query("list", redis::cmd("LRANGE").arg(key("list")).arg(0).arg(-1)),
        query("set", redis::cmd("SMEMBERS").arg(key("set"))),
        query("zset", redis::cmd("ZRANGE").arg(key("zset")).arg(0).arg(-1)),
    ];
    for (kind, bytes) in stored {
        assert!(
            bytes.starts_with(&ENVELOPE_MAGIC),
            "{kind}: the upstream holds no envelope under {}: {bytes:02x?}",
            key(&kind)
        );
        if let Some(leak) = marker
            .as_bytes()
            .windows(LEAK_WINDOW)
            .find(|window| bytes.windows(LEAK_WINDOW).any(|w| w == *window))
        {
            panic!(
                "{kind}: plaintext {:?} reached the upstream under {}",
                String::from_utf8_lossy(leak),
                key(&kind)
            );
        }
    }
}
