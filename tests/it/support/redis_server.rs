//! `redis-server` with only a TLS port on 127.0.0.1, as an RAII guard.
//!
//! Lifecycle: `start_tls` writes a 0600 config (the password stays out of
//! argv), spawns the server ([`ServerProcess`]: output appended to `redis.log`) and polls
//! `PING` until it answers. `stop` kills it (the "upstream died" case);
//! `restart` starts it again on the same port. Drop kills it and, if the test
//! is failing, prints the log.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::certs::write;
use super::process::ServerProcess;
use super::{Certs, Endpoint, LogFile, free_port};

/// How long redis-server may take to answer PING after starting (~0.2 s usually).
pub const START_DEADLINE: Duration = Duration::from_secs(15);
/// Deadline of one readiness probe (connect, TLS handshake, PING).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub struct RedisServer {
    process: ServerProcess,
    port: u16,
    password: String,
    certs: Certs,
    dir: TempDir,
}

impl RedisServer {
    /// Starts `redis-server --port 0 --tls-port <free> --requirepass PASSWORD`
    /// with `certs`' server certificate; returns once it answers PING.
    pub fn start_tls(certs: &Certs, password: &str) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("sealcache-redis-")
            .tempdir()
            .expect("create redis tempdir");
        let port = free_port();
        let config = format!(
            "port 0\n\
             tls-port {port}\n\
             bind 127.0.0.1\n\
             tls-cert-file {cert}\n\
             tls-key-file {key}\n\
             tls-ca-cert-file {ca}\n\
             tls-auth-clients no\n\
             requirepass {password}\n\
             save \"\"\n\
             appendonly no\n\
             daemonize no\n\
             dir {dir}\n\
             logfile \"\"\n",
            cert = quote(&certs.server_cert()),
            key = quote(&certs.server_key()),
            ca = quote(&certs.ca_cert()),
            password = quote_str(password),
            dir = quote(dir.path()),
        );
        write(dir.path(), "redis.conf", config.as_bytes(), 0o600);
        let process =
            ServerProcess::new("redis-server", "redis-server", dir.path().join("redis.log"));
        let mut server = RedisServer {
            process,
            port,
            password: password.to_owned(),
            certs: certs.clone(),
            dir,
        };
        server.spawn_and_wait();
        server
    }

    fn spawn_and_wait(&mut self) {
        let endpoint = self.endpoint();
        let mut command = Command::new("redis-server");
        command.arg(self.dir.path().join("redis.conf"));
        let waiting_for = format!("answer PING on TLS port {}", self.port);
        self.process
            .spawn_and_wait(&mut command, START_DEADLINE, &waiting_for, || {
                let mut con = endpoint
                    .try_sync_client_with_timeout(PROBE_TIMEOUT, PROBE_TIMEOUT)
                    .ok()?;
                let pong: String = redis::cmd("PING").query(&mut con).ok()?;
                (pong == "PONG").then_some(())
            });
    }

    /// Kills the server (SIGKILL, no goodbye to clients) and waits for it.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Stops the server if it runs, then starts it again on the same port.
    /// It starts empty unless [`RedisServer::save_snapshot`] wrote an RDB
    /// snapshot, which it then loads. Returns once it answers PING.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn_and_wait();
    }

    /// `SAVE`: writes the dataset to `dump.rdb` in the server's directory,
    /// which the next [`RedisServer::restart`] loads.
    pub fn save_snapshot(&self) {
        let reply = self.redis_cli(&["SAVE"]);
        assert_eq!(reply.trim(), "OK", "SAVE failed: {reply}");
    }

    /// SIGSTOP: the server keeps its connections but answers nothing (a
    /// hung or overloaded Redis) until [`RedisServer::resume`].
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        super::send_signal(self.pid().expect("redis-server is not running"), name);
    }

    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rediss://127.0.0.1:PORT` (without credentials).
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    /// The `requirepass` password.
    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn certs(&self) -> &Certs {
        &self.certs
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    pub fn log(&self) -> &LogFile {
        self.process.log()
    }

    /// TLS endpoint authenticated as `default` with the server password.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::tls(self.port, &self.certs).with_auth("default", &self.password)
    }

    /// An authenticated async connection straight to redis-server.
    pub async fn client(&self) -> redis::aio::MultiplexedConnection {
        self.endpoint().client().await
    }

    /// `redis-cli --tls … ARGS` against redis-server; returns stdout.
    pub fn redis_cli(&self, args: &[&str]) -> String {
        self.endpoint().redis_cli(args)
    }
}

/// A path as a double-quoted redis.conf string.
fn quote(path: &Path) -> String {
    quote_str(&PathBuf::from(path).to_string_lossy())
}

/// A double-quoted redis.conf string (redis accepts C-style escapes in quotes).
fn quote_str(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}
