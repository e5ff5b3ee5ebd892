//! The command table against a real redis-server: every command and
//! subcommand that `COMMAND` and `COMMAND DOCS` list has a row, and each row
//! the server knows has the server's arity and key positions.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::Value;
use sealcache::commands::lookup;

/// Rows for commands newer than the server under test (Redis 7.2 commands
/// that real clients send to any server); absent from an older `COMMAND`.
const NEWER_THAN_SERVER: &[&str] = &["CLIENT|NO-TOUCH", "CLIENT|SETINFO", "WAITAOF"];
const READY_DEADLINE: Duration = Duration::from_secs(10);

/// A redis-server on a free loopback port, killed on drop; its log is printed
/// when the test fails.
struct RedisServer {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> RedisServer {
        // A port can be taken between probing and binding: retry a few times.
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temporary directory");
            let log = dir.path().join("redis.log");
            let port = free_port();
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start redis-server ({e}); install it (apt-get install redis-server): \
                         this test needs a real server and is never skipped"
                    )
                });
            let mut server = RedisServer {
                child,
                port,
                log,
                _dir: dir,
            };
            if server.wait_ready() {
                return server;
            }
            last_log = server.read_log();
        }
        panic!("redis-server did not become ready; last log:\n{last_log}");
    }

    /// Polls PING until it answers, the process exits or the deadline passes.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + READY_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut con) = self.connect()
                && redis::cmd("PING").query::<String>(&mut con).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?
            .get_connection_with_timeout(Duration::from_secs(2))
    }

    fn read_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- redis-server log ---\n{}", self.read_log());
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

/// One entry of `COMMAND` (subcommands flattened), name upper-cased as our
/// table spells it (`CLIENT|SETNAME`).
#[derive(Debug)]
struct ServerCommand {
    name: String,
    arity: i64,
    first: i64,
    last: i64,
    step: i64,
    movable_keys: bool,
}

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::Okay => "OK".into(),
        other => panic!("expected a string, got {other:?}"),
    }
}

fn int(value: &Value) -> i64 {
    match value {
        Value::Int(i) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// A RESP3 map or a RESP2 flat `[key, value, …]` array as pairs.
fn pairs(value: &Value) -> Vec<(String, &Value)> {
    match value {
        Value::Map(map) => map.iter().map(|(k, v)| (text(k), v)).collect(),
        Value::Array(flat) => flat.chunks(2).map(|kv| (text(&kv[0]), &kv[1])).collect(),
        other => panic!("expected a map, got {other:?}"),
    }
}

fn parse_command(entry: &Value, out: &mut Vec<ServerCommand>) {
    let f = items(entry);
    out.push(ServerCommand {
        name: text(&f[0]).to_ascii_uppercase(),
        arity: int(&f[1]),
        first: int(&f[3]),
        last: int(&f[4]),
        step: int(&f[5]),
        movable_keys: items(&f[2]).iter().any(|flag| text(flag) == "movablekeys"),
    });
    if let Some(subcommands) = f.get(9) {
        for sub in items(subcommands) {
            parse_command(sub, out);
        }
    }
}

fn parse_docs(docs: &Value, out: &mut BTreeSet<String>) {
    for (name, doc) in pairs(docs) {
        out.insert(name.to_ascii_uppercase());
        if let Some((_, subs)) = pairs(doc).into_iter().find(|(k, _)| k == "subcommands") {
            parse_docs(subs, out);
        }
    }
}

fn row(name: &str) -> Option<&'static sealcache::commands::CommandSpec> {
    match name.split_once('|') {
        Some((container, sub)) => lookup(container.as_bytes(), Some(sub.as_bytes())),
        None => lookup(name.as_bytes(), None),
    }
}

#[test]
fn every_server_command_has_a_row_with_its_arity_and_keys() {
    let server = RedisServer::start();
    let mut con = server.connect().expect("connect to redis-server");
    let command: Value = redis::cmd("COMMAND").query(&mut con).expect("COMMAND");
    let docs: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .query(&mut con)
        .expect("COMMAND DOCS");

    let mut listed = Vec::new();
    for entry in items(&command) {
        parse_command(entry, &mut listed);
    }
    let mut documented = BTreeSet::new();
    parse_docs(&docs, &mut documented);
    assert!(
        listed.len() > 200 && documented.len() > 200,
        "COMMAND listed {} and COMMAND DOCS {} commands: the replies were not parsed",
        listed.len(),
        documented.len()
    );

    let known: BTreeSet<String> = listed.iter().map(|c| c.name.clone()).collect();
    let missing: Vec<&String> = known
        .union(&documented)
        .filter(|name| row(name).is_none())
        .collect();

    let mut mismatched = Vec::new();
    for c in &listed {
        let Some(spec) = row(&c.name) else { continue };
        let ours = (
            spec.arity as i64,
            spec.keys.first as i64,
            spec.keys.last as i64,
            spec.keys.step as i64,
            spec.movable_keys,
        );
        let theirs = (c.arity, c.first, c.last, c.step, c.movable_keys);
        if ours != theirs {
            mismatched.push(format!(
                "{}: table (arity, first, last, step, movablekeys) = {ours:?}, server = {theirs:?}",
                c.name
            ));
        }
    }

    let unknown: Vec<&str> = sealcache::commands::table::COMMANDS
        .iter()
        .map(|spec| spec.name)
        .filter(|name| !known.contains(*name) && !NEWER_THAN_SERVER.contains(name))
        .collect();

    assert!(
        missing.is_empty() && mismatched.is_empty() && unknown.is_empty(),
        "the command table disagrees with redis-server's COMMAND / COMMAND DOCS\n\
         commands without a row ({}): {missing:?}\n\
         rows with other arity or key positions ({}):\n  {}\n\
         rows the server does not know and NEWER_THAN_SERVER does not list ({}): {unknown:?}",
        missing.len(),
        mismatched.len(),
        mismatched.join("\n  "),
        unknown.len(),
    );
}
