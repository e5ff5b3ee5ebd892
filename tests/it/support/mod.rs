//! Test harness: real servers as RAII guards (STYLE habit 11).
//!
//! Every guard picks a free loopback port, polls readiness with a deadline
//! (never a fixed sleep), captures its server's log to a file that is printed
//! when the test fails, and kills its process on drop. A missing
//! `redis-server`/`redis-cli` fails the test loudly; nothing is skipped.
//!
//! ```ignore
//! let certs = Certs::generate();
//! let redis = RedisServer::start_tls(&certs, &random_password());
//! let proxy = Sealcache::builder(&redis).start();
//! let mut con = proxy.client().await;           // TLS + AUTH as `default`
//! let stored = proxy.raw_upstream().client().await; // straight to redis-server
//! ```
//!
//! - [`certs`] — CA, server and client certificates in a tempdir.
//! - [`redis_server`] — `redis-server` with a TLS-only port; stop/restart on the same port.
//! - [`sealcache`] — the proxy under test, configured through a builder.
//! - [`endpoint`] — how to reach a server: `redis` crate clients, `redis-cli`, raw TLS bytes.
//! - [`resp`] — a raw RESP2/RESP3 connection that reads whole replies with their exact bytes.
//! - [`twin`] — differential tests: the same commands through sealcache and on redis-server, replies compared byte for byte.
//! - [`hostile`] — a scripted TLS RESP server standing in for a hostile or broken upstream.
//! - [`dynamodb`] — AWS DynamoDB Local (Java) on a free port; stop/restart on the same port.
//! - [`process`] — the process guard both servers are: log file, readiness deadline, kill on drop.
#![allow(
    dead_code,
    unused_imports,
    reason = "shared harness: each test module uses a different subset"
)]

pub mod certs;
pub mod dynamodb;
pub mod endpoint;
pub mod hostile;
pub mod process;
pub mod redis_server;
pub mod resp;
pub mod sealcache;
pub mod twin;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use certs::Certs;
pub use endpoint::{Address, Endpoint, RawReply};
pub use hostile::{Answer, HostileUpstream, Script, Step};
pub use redis_server::RedisServer;
pub use sealcache::{Exited, Sealcache, SealcacheBuilder};

/// How often readiness checks are retried. Polling, not waiting: the check
/// returns as soon as the server answers.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How much of a server log is printed when a test fails.
const LOG_TAIL_BYTES: u64 = 64 * 1024;

/// A loopback port nothing listens on right now: bind port 0, read the port, drop.
/// The kernel may hand the same port out again once it is dropped, so ports
/// already given to this test process are skipped: one server's two listeners
/// never get the same port.
pub fn free_port() -> u16 {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed_out = HANDED_OUT.get_or_init(Default::default);
    loop {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
        let port = listener.local_addr().expect("local_addr").port();
        if handed_out.lock().expect("port set").insert(port) {
            return port;
        }
    }
}

/// A random password of `len` (≥ 3) characters with upper case, lower case and
/// digits, so it passes every profile's strength check.
pub fn random_password(len: usize) -> String {
    use rand::Rng;
    use rand::distr::{Alphanumeric, SampleString};
    assert!(len >= 3, "password length must be at least 3");
    let mut rng = rand::rng();
    let upper = rng.random_range(b'A'..=b'Z') as char;
    let lower = rng.random_range(b'a'..=b'z') as char;
    let digit = rng.random_range(b'0'..=b'9') as char;
    format!(
        "{upper}{lower}{digit}{}",
        Alphanumeric.sample_string(&mut rng, len - 3)
    )
}

/// Polls `check` until it returns `Some` or `deadline` passes.
pub fn poll_until<T>(deadline: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// `kill -NAME PID`: sends a signal (`"TERM"`, `"STOP"`, …) to a process
/// the harness started, without waiting for it.
pub fn send_signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Async twin of [`poll_until`] for checks that talk to a server.
pub async fn poll_until_async<T, F, Fut>(deadline: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A server's stdout+stderr, captured to a file.
#[derive(Debug, Clone)]
pub struct LogFile {
    path: PathBuf,
}

impl LogFile {
    /// Creates (or appends to) the log file and returns it with two handles
    /// for the child's stdout and stderr.
    fn open(path: PathBuf) -> (LogFile, File, File) {
        let out = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open log file {}: {e}", path.display()));
        let err = out.try_clone().expect("clone log file handle");
        (LogFile { path }, out, err)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole log so far (lossy UTF-8).
    pub fn read(&self) -> String {
        std::fs::read(&self.path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last [`LOG_TAIL_BYTES`] of the log.
    pub fn tail(&self) -> String {
        let Ok(mut file) = File::open(&self.path) else {
            return String::from("<no log file>");
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(LOG_TAIL_BYTES);
        let _ = file.seek(SeekFrom::Start(start));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if start > 0 {
            format!("[… {start} earlier bytes omitted …]\n{text}")
        } else {
            text
        }
    }

    /// Prints the log tail to stderr, where the test runner shows it for failed tests.
    pub fn dump(&self, what: &str) {
        eprintln!(
            "\n----- {what} log ({}) -----\n{}\n----- end of {what} log -----",
            self.path.display(),
            self.tail()
        );
    }
}

/// Fails the test with install instructions when a required tool is missing.
fn spawn_error(program: &str, err: std::io::Error) -> ! {
    if err.kind() == std::io::ErrorKind::NotFound {
        panic!(
            "`{program}` is not installed; the integration tests need it \
             (scripts/test.sh installs it: apt-get install redis-server redis-tools)"
        );
    }
    panic!("failed to start `{program}`: {err}");
}

/// Absolute path of a file in the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Python interpreter with redis-py installed by scripts/test.sh: `$IT_PYTHON`
/// (test.sh exports it) or the venv it creates, `target/py-clients/bin/python`.
pub fn python() -> PathBuf {
    let python = std::env::var_os("IT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("target/py-clients/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run scripts/test.sh once to install the client libraries",
        python.display()
    );
    python
}

/// `node_modules` with ioredis, installed by scripts/test.sh; pass it as NODE_PATH.
pub fn node_modules() -> PathBuf {
    let dir = repo_path("tests/clients/node_modules");
    assert!(
        dir.join("ioredis").exists(),
        "{} has no ioredis: run scripts/test.sh once to install the client libraries",
        dir.display()
    );
    dir
}
