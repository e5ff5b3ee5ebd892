//! The proxy under test, `sealcache serve`, as an RAII guard.
//!
//! Lifecycle: the builder writes `sealcache.yaml` (plus a 0600 master key and
//! upstream password file) into a tempdir, spawns the binary with stdout+stderr
//! appended to `sealcache.log`, and polls a connect to its port (and Unix
//! socket) until it listens — failing at once, with the log, if the process
//! exits first. Drop kills it and, if the test is failing, prints the log.
//!
//! Client passwords reach the proxy through `auth.users[].password_env`
//! (variables named `IT_PASSWORD_<n>`; never `SEALCACHE_*`, which the config
//! loader reads as overrides), or as argon2id hashes with
//! [`SealcacheBuilder::hashed_passwords`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use base64::Engine as _;
use tempfile::TempDir;

use super::certs::write;
use super::dynamodb::{self, DynamoDbLocal};
use super::{
    Certs, Endpoint, LogFile, RedisServer, free_port, poll_until, random_password, spawn_error,
};

/// How long a debug build may take to listen, on two shared cores.
pub const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a fail-fast run may take to exit.
pub const EXIT_DEADLINE: Duration = Duration::from_secs(30);
/// Exit code for configuration errors (EX_CONFIG), as `src/cli/mod.rs`.
pub const EXIT_CONFIG: i32 = 78;

/// Writes `value` as a double-quoted YAML scalar.
pub fn yaml_str(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A path as a double-quoted YAML scalar.
pub fn yaml_path(path: &Path) -> String {
    yaml_str(&path.to_string_lossy())
}

/// Configuration for one proxy. Start from [`Sealcache::builder`].
#[must_use]
pub struct SealcacheBuilder {
    certs: Certs,
    upstream: Option<Endpoint>,
    upstream_url: String,
    /// (user, password); the first is the one [`Sealcache::client`] uses.
    users: Vec<(String, String)>,
    hashed_passwords: bool,
    master_key: [u8; 32],
    master_key_in_env: bool,
    mutual_tls: bool,
    tcp: bool,
    unix_socket: bool,
    /// Serve the admin HTTP listener on a free port (else `admin.listen: null`).
    admin: bool,
    /// `(main, route)`: write the upstream as a redis backend `main` whose
    /// route has the memory fallback `spare`; extra flow-map entries for each.
    fallback: Option<(String, String)>,
    /// Dotted key → raw YAML value, applied over the generated file.
    settings: Vec<(String, Option<String>)>,
    extra_yaml: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
    /// Named backends (`backends:`); when any is set they and `routes`
    /// replace the `upstream:` shorthand.
    backends: Vec<(String, BackendSpec)>,
    routes: Vec<(String, String)>,
}

/// A backend the harness writes into `backends:`.
#[derive(Clone)]
enum BackendSpec {
    Redis(Endpoint),
    Memory {
        max_memory: String,
    },
    /// A table on DynamoDB Local (`endpoint_url`), with its test credentials.
    DynamoDb {
        endpoint_url: String,
        table: String,
    },
}

impl SealcacheBuilder {
    /// A proxy with `certs` whose upstream is nothing (a free port no one
    /// listens on): enough for fail-fast and listener-only tests.
    pub fn new(certs: &Certs) -> SealcacheBuilder {
        SealcacheBuilder {
            certs: certs.clone(),
            upstream: None,
            upstream_url: format!("rediss://127.0.0.1:{}", free_port()),
            users: vec![("default".to_owned(), random_password(32))],
            hashed_passwords: false,
            master_key: rand::random(),
            master_key_in_env: false,
            mutual_tls: false,
            tcp: true,
            unix_socket: false,
            admin: false,
            fallback: None,
            settings: Vec::new(),
            extra_yaml: String::new(),
            env: Vec::new(),
            args: Vec::new(),
            backends: Vec::new(),
            routes: Vec::new(),
        }
    }

    /// A `type: redis` backend named `name` on `redis` (URL, CA, password
    /// file). With any named backend the file has `backends:` and `routes:`
    /// instead of `upstream:`.
    pub fn redis_backend(mut self, name: &str, redis: &RedisServer) -> SealcacheBuilder {
        self.backends
            .push((name.to_owned(), BackendSpec::Redis(redis.endpoint())));
        self
    }

    /// A `type: memory` backend named `name`, bounded by `max_memory` ("64MiB").
    pub fn memory_backend(mut self, name: &str, max_memory: &str) -> SealcacheBuilder {
        self.backends.push((
            name.to_owned(),
            BackendSpec::Memory {
                max_memory: max_memory.to_owned(),
            },
        ));
        self
    }

    /// A `type: dynamodb` backend named `name` on DynamoDB Local's `table`
    /// (created at start), with the credentials DynamoDB Local accepts.
    pub fn dynamodb_backend(
        mut self,
        name: &str,
        local: &DynamoDbLocal,
        table: &str,
    ) -> SealcacheBuilder {
        self.backends.push((
            name.to_owned(),
            BackendSpec::DynamoDb {
                endpoint_url: local.endpoint_url(),
                table: table.to_owned(),
            },
        ));
        self.env
            .push(("AWS_ACCESS_KEY_ID".into(), dynamodb::ACCESS_KEY_ID.into()));
        self.env.push((
            "AWS_SECRET_ACCESS_KEY".into(),
            dynamodb::SECRET_ACCESS_KEY.into(),
        ));
        self
    }

    /// A route: keys starting with `prefix` go to `backend` (in the order added).
    pub fn route(mut self, prefix: &str, backend: &str) -> SealcacheBuilder {
        self.routes.push((prefix.to_owned(), backend.to_owned()));
        self
    }

    /// Forward to `redis` (URL, CA, password file), like `sealcache init` sets up.
    pub fn upstream(mut self, redis: &RedisServer) -> SealcacheBuilder {
        self.upstream_url = redis.url();
        self.upstream = Some(redis.endpoint());
        self
    }

    /// Replace the upstream URL (e.g. a plaintext or unreachable one).
    pub fn upstream_url(mut self, url: &str) -> SealcacheBuilder {
        self.upstream_url = url.to_owned();
        self
    }

    /// The `default` user's password (≥ 16 characters in development).
    pub fn password(mut self, password: &str) -> SealcacheBuilder {
        self.users[0].1 = password.to_owned();
        self
    }

    /// Another user, with its password in an environment variable.
    pub fn user(mut self, name: &str, password: &str) -> SealcacheBuilder {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Store users as argon2id hashes (`password_hash`) instead of `password_env`.
    pub fn hashed_passwords(mut self) -> SealcacheBuilder {
        self.hashed_passwords = true;
        self
    }

    pub fn master_key(mut self, key: [u8; 32]) -> SealcacheBuilder {
        self.master_key = key;
        self
    }

    /// Pass the master key in `SEALCACHE_MASTER_KEY` instead of a 0600 file.
    pub fn master_key_in_env(mut self) -> SealcacheBuilder {
        self.master_key_in_env = true;
        self
    }

    /// Require client certificates signed by the test CA (`tls.client_ca_file`).
    /// The endpoint then presents the test client certificate.
    pub fn mutual_tls(mut self) -> SealcacheBuilder {
        self.mutual_tls = true;
        self
    }

    /// Also listen on a Unix socket in the tempdir.
    pub fn unix_socket(mut self) -> SealcacheBuilder {
        self.unix_socket = true;
        self
    }

    /// Listen on the Unix socket only (`listen.tcp: null`).
    pub fn unix_socket_only(mut self) -> SealcacheBuilder {
        self.unix_socket = true;
        self.tcp = false;
        self
    }

    /// Serve the admin HTTP listener (`/healthz`, `/readyz`) on a free
    /// loopback port, [`Sealcache::admin_port`]. Without this the harness
    /// writes `admin.listen: null`, so parallel proxies never share a port.
    pub fn admin(mut self) -> SealcacheBuilder {
        self.admin = true;
        self
    }

    /// Writes the upstream as `backends.main` (with `main`'s extra settings,
    /// e.g. `"command_timeout_ms: 1000"`) and routes every key to it with the
    /// memory backend `spare` as its fallback (with `route`'s extra settings,
    /// e.g. `"breaker: {failures: 1}"`), instead of the `upstream:` shorthand.
    pub fn fallback(mut self, main: &str, route: &str) -> SealcacheBuilder {
        self.fallback = Some((main.to_owned(), route.to_owned()));
        self
    }

    /// Sets a configuration key to a raw YAML value: `"upstream.pool_size", "2"`,
    /// `"profile", "production"`, `"tls.cert_file", &yaml_path(p)`. Nested keys
    /// are dotted (one level below a section).
    pub fn set(mut self, key: &str, yaml_value: &str) -> SealcacheBuilder {
        self.settings
            .push((key.to_owned(), Some(yaml_value.to_owned())));
        self
    }

    /// Removes a key the harness would write (e.g. `"tls.cert_file"`).
    pub fn unset(mut self, key: &str) -> SealcacheBuilder {
        self.settings.push((key.to_owned(), None));
        self
    }

    /// Appends raw YAML at the end of the file (top-level keys the harness
    /// does not write, or deliberate typos).
    pub fn yaml(mut self, raw: &str) -> SealcacheBuilder {
        self.extra_yaml.push_str(raw);
        if !raw.ends_with('\n') {
            self.extra_yaml.push('\n');
        }
        self
    }

    /// An environment variable for the process, e.g.
    /// `.env("SEALCACHE_UPSTREAM__POOL_SIZE", "2")`.
    pub fn env(mut self, key: &str, value: &str) -> SealcacheBuilder {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// An extra command-line argument after `serve --config FILE`.
    pub fn arg(mut self, arg: &str) -> SealcacheBuilder {
        self.args.push(arg.to_owned());
        self
    }

    /// Starts `sealcache serve` and returns once it listens.
    pub fn start(self) -> Sealcache {
        let prepared = self.prepare();
        let mut proxy = Sealcache {
            child: None,
            port: prepared.port,
            admin_port: prepared.admin_port,
            env: prepared.env.clone(),
            unix_path: prepared.unix_path.clone(),
            config_path: prepared.config_path.clone(),
            log: prepared.log.clone(),
            certs: prepared.builder.certs.clone(),
            users: prepared.builder.users.clone(),
            mutual_tls: prepared.builder.mutual_tls,
            upstream: prepared.builder.upstream.clone(),
            master_key: prepared.builder.master_key,
            dir: prepared.dir,
        };
        let mut command = prepared.command;
        proxy.child = Some(
            command
                .arg("serve")
                .arg("--config")
                .arg(&proxy.config_path)
                .args(&prepared.builder.args)
                .spawn()
                .unwrap_or_else(|e| spawn_error(env!("CARGO_BIN_EXE_sealcache"), e)),
        );
        proxy.wait_until_listening();
        proxy
    }

    /// Runs `sealcache SUBCOMMAND --config FILE [args]` (e.g. `serve` with a bad
    /// configuration, or `check-config`) and returns how it exited. Panics if it
    /// is still running after [`EXIT_DEADLINE`].
    pub fn run_until_exit(self, subcommand: &str) -> Exited {
        let prepared = self.prepare();
        let mut command = prepared.command;
        let mut child = command
            .arg(subcommand)
            .arg("--config")
            .arg(&prepared.config_path)
            .args(&prepared.builder.args)
            .spawn()
            .unwrap_or_else(|e| spawn_error(env!("CARGO_BIN_EXE_sealcache"), e));
        let status = poll_until(EXIT_DEADLINE, || child.try_wait().expect("poll sealcache"));
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            prepared.log.dump("sealcache");
            panic!(
                "`sealcache {subcommand}` was expected to exit but still ran after {EXIT_DEADLINE:?}"
            );
        };
        Exited {
            status,
            code: status.code(),
            log: prepared.log.read(),
            config: std::fs::read_to_string(&prepared.config_path).unwrap_or_default(),
        }
    }

    fn prepare(self) -> Prepared {
        let dir = tempfile::Builder::new()
            .prefix("sealcache-proxy-")
            .tempdir()
            .expect("create proxy tempdir");
        let port = self.tcp.then(free_port);
        let admin_port = self.admin.then(free_port);
        let unix_path = self.unix_socket.then(|| dir.path().join("sealcache.sock"));
        let config_path = dir.path().join("sealcache.yaml");
        let config = self.render(dir.path(), port, admin_port, unix_path.as_deref());
        write(dir.path(), "sealcache.yaml", config.as_bytes(), 0o600);

        let (log, out, err) = LogFile::open(dir.path().join("sealcache.log"));
        let mut env = Vec::new();
        if !self.hashed_passwords {
            for (i, (_, password)) in self.users.iter().enumerate() {
                env.push((format!("IT_PASSWORD_{i}"), password.clone()));
            }
        }
        if self.master_key_in_env {
            env.push((
                "SEALCACHE_MASTER_KEY".to_owned(),
                base64::engine::general_purpose::STANDARD.encode(self.master_key),
            ));
        }
        env.extend(self.env.iter().cloned());
        let mut command = sealcache_command(&env);
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        Prepared {
            dir,
            config_path,
            port,
            admin_port,
            unix_path,
            log,
            command,
            env,
            builder: self,
        }
    }

    /// The YAML file: generated sections, then `set`/`unset`, then raw `yaml`.
    fn render(
        &self,
        dir: &Path,
        port: Option<u16>,
        admin_port: Option<u16>,
        unix_path: Option<&Path>,
    ) -> String {
        let mut doc = Document::default();
        doc.set("profile", "development");
        doc.set(
            "listen.tcp",
            &port.map_or("null".to_owned(), |p| yaml_str(&format!("127.0.0.1:{p}"))),
        );
        if let Some(path) = unix_path {
            doc.set("listen.unix", &yaml_path(path));
        }
        doc.set("tls.cert_file", &yaml_path(&self.certs.server_cert()));
        doc.set("tls.key_file", &yaml_path(&self.certs.server_key()));
        if self.mutual_tls {
            doc.set("tls.client_ca_file", &yaml_path(&self.certs.ca_cert()));
        }
        let users: Vec<String> = self
            .users
            .iter()
            .enumerate()
            .map(|(i, (name, password))| {
                let credential = if self.hashed_passwords {
                    format!("password_hash: {}", yaml_str(&argon2_hash(password)))
                } else {
                    format!("password_env: IT_PASSWORD_{i}")
                };
                format!("{{name: {}, {credential}}}", yaml_str(name))
            })
            .collect();
        doc.set("auth.users", &format!("[{}]", users.join(", ")));
        let mut upstream = vec![
            ("url", yaml_str(&self.upstream_url)),
            ("ca_file", yaml_path(&self.certs.ca_cert())),
        ];
        if let Some(password) = self.upstream.as_ref().and_then(Endpoint::password) {
            write(dir, "upstream.password", password.as_bytes(), 0o600);
            upstream.push(("password_file", yaml_path(&dir.join("upstream.password"))));
        }
        match &self.fallback {
            None if !self.backends.is_empty() => self.render_backends(dir, &mut doc),
            None => {
                for (key, value) in upstream {
                    doc.set(&format!("upstream.{key}"), &value);
                }
            }
            Some((main, route)) => {
                let mut main_entries: Vec<String> = vec!["type: redis".into()];
                main_entries.extend(upstream.iter().map(|(k, v)| format!("{k}: {v}")));
                main_entries.extend((!main.is_empty()).then(|| main.clone()));
                doc.set(
                    "backends",
                    &format!(
                        "{{main: {{{}}}, spare: {{type: memory}}}}",
                        main_entries.join(", ")
                    ),
                );
                let extra = if route.is_empty() {
                    String::new()
                } else {
                    format!(", {route}")
                };
                doc.set(
                    "routes",
                    &format!("[{{prefix: \"\", backend: main, fallback: spare{extra}}}]"),
                );
            }
        }
        if !self.master_key_in_env {
            let encoded = base64::engine::general_purpose::STANDARD.encode(self.master_key);
            write(dir, "master.key", encoded.as_bytes(), 0o600);
            doc.set(
                "encryption.master_key_file",
                &yaml_path(&dir.join("master.key")),
            );
        }
        doc.set(
            "admin.listen",
            &admin_port.map_or("null".to_owned(), |p| yaml_str(&format!("127.0.0.1:{p}"))),
        );
        for (key, value) in &self.settings {
            match value {
                Some(value) => doc.set(key, value),
                None => doc.unset(key),
            }
        }
        let mut text = doc.render();
        text.push_str(&self.extra_yaml);
        text
    }
}

impl SealcacheBuilder {
    /// `backends:` (one flow map each) and `routes:`.
    fn render_backends(&self, dir: &Path, doc: &mut Document) {
        for (name, spec) in &self.backends {
            let body = match spec {
                BackendSpec::Redis(endpoint) => {
                    let mut body = format!(
                        "type: redis, url: {}, ca_file: {}",
                        yaml_str(&endpoint.url()),
                        yaml_path(&self.certs.ca_cert())
                    );
                    if let Some(password) = endpoint.password() {
                        let file = format!("{name}.password");
                        write(dir, &file, password.as_bytes(), 0o600);
                        body.push_str(&format!(", password_file: {}", yaml_path(&dir.join(&file))));
                    }
                    body
                }
                BackendSpec::Memory { max_memory } => {
                    format!("type: memory, max_memory: {}", yaml_str(max_memory))
                }
                BackendSpec::DynamoDb {
                    endpoint_url,
                    table,
                } => format!(
                    "type: dynamodb, table: {}, region: {}, endpoint_url: {}",
                    yaml_str(table),
                    yaml_str(dynamodb::REGION),
                    yaml_str(endpoint_url)
                ),
            };
            doc.set(&format!("backends.{name}"), &format!("{{{body}}}"));
        }
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|(prefix, backend)| {
                format!(
                    "{{prefix: {}, backend: {}}}",
                    yaml_str(prefix),
                    yaml_str(backend)
                )
            })
            .collect();
        doc.set("routes", &format!("[{}]", routes.join(", ")));
    }
}

struct Prepared {
    dir: TempDir,
    config_path: PathBuf,
    port: Option<u16>,
    admin_port: Option<u16>,
    unix_path: Option<PathBuf>,
    log: LogFile,
    command: Command,
    /// The variables set for the process (passwords, overrides).
    env: Vec<(String, String)>,
    builder: SealcacheBuilder,
}

/// The sealcache binary with `env` and no inherited `SEALCACHE_*` variable
/// (an inherited one would be an override the test did not ask for).
fn sealcache_command(env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sealcache"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SEALCACHE_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command
}

/// Two-level YAML: top-level scalars and sections of `key: raw value`.
#[derive(Default)]
struct Document {
    entries: Vec<(String, Entry)>,
}

enum Entry {
    Scalar(String),
    Section(Vec<(String, String)>),
}

impl Document {
    fn set(&mut self, key: &str, value: &str) {
        match key.split_once('.') {
            None => {
                self.entries.retain(|(k, _)| k != key);
                self.entries
                    .push((key.to_owned(), Entry::Scalar(value.to_owned())));
            }
            Some((section, sub)) => {
                let position = self.entries.iter().position(|(k, _)| k == section);
                let index = match position {
                    Some(i) if matches!(self.entries[i].1, Entry::Section(_)) => i,
                    other => {
                        if let Some(i) = other {
                            self.entries.remove(i);
                        }
                        self.entries
                            .push((section.to_owned(), Entry::Section(Vec::new())));
                        self.entries.len() - 1
                    }
                };
                let Entry::Section(items) = &mut self.entries[index].1 else {
                    unreachable!("just made a section");
                };
                match items.iter_mut().find(|(k, _)| k == sub) {
                    Some(item) => item.1 = value.to_owned(),
                    None => items.push((sub.to_owned(), value.to_owned())),
                }
            }
        }
    }

    fn unset(&mut self, key: &str) {
        match key.split_once('.') {
            None => self.entries.retain(|(k, _)| k != key),
            Some((section, sub)) => {
                for (k, entry) in &mut self.entries {
                    if let (true, Entry::Section(items)) = (k == section, entry) {
                        items.retain(|(k, _)| k != sub);
                    }
                }
            }
        }
    }

    fn render(&self) -> String {
        let mut text = String::from("# Written by the integration-test harness.\n");
        for (key, entry) in &self.entries {
            match entry {
                Entry::Scalar(value) => text.push_str(&format!("{key}: {value}\n")),
                Entry::Section(items) if items.is_empty() => {}
                Entry::Section(items) => {
                    text.push_str(&format!("{key}:\n"));
                    for (k, v) in items {
                        text.push_str(&format!("  {k}: {v}\n"));
                    }
                }
            }
        }
        text
    }
}

/// An argon2id PHC string with the crate's default (OWASP) parameters.
pub fn argon2_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("salt");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hash")
        .to_string()
}

/// How a `run_until_exit` run ended.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    /// stdout and stderr, interleaved.
    pub log: String,
    /// The configuration file it ran with.
    pub config: String,
}

impl Exited {
    /// Asserts exit code 78 (configuration error) and that the output names
    /// the problem (`needle`, e.g. the setting).
    #[track_caller]
    pub fn assert_config_error(&self, needle: &str) {
        assert!(
            self.code == Some(EXIT_CONFIG) && self.log.contains(needle),
            "expected exit code {EXIT_CONFIG} and output containing {needle:?}; got {:?}\n\
             ----- output -----\n{}\n----- config -----\n{}",
            self.code,
            self.log,
            self.config
        );
    }
}

/// A running `sealcache serve`. Killed on drop.
pub struct Sealcache {
    child: Option<Child>,
    port: Option<u16>,
    admin_port: Option<u16>,
    env: Vec<(String, String)>,
    unix_path: Option<PathBuf>,
    config_path: PathBuf,
    log: LogFile,
    certs: Certs,
    users: Vec<(String, String)>,
    mutual_tls: bool,
    upstream: Option<Endpoint>,
    master_key: [u8; 32],
    dir: TempDir,
}

impl Sealcache {
    /// A builder for a proxy in front of `redis`, using `redis`'s certificates
    /// for its own listener (as `sealcache init` does).
    pub fn builder(redis: &RedisServer) -> SealcacheBuilder {
        SealcacheBuilder::new(redis.certs()).upstream(redis)
    }

    fn wait_until_listening(&mut self) {
        let tcp = self
            .port
            .map(|port| std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        let unix = self.unix_path.clone();
        let ready = poll_until(START_DEADLINE, || {
            if let Some(status) = self.try_wait() {
                self.log.dump("sealcache");
                panic!("sealcache exited during startup ({status}); log above");
            }
            if let Some(addr) = tcp {
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(250)).ok()?;
            }
            if let Some(path) = &unix {
                std::os::unix::net::UnixStream::connect(path).ok()?;
            }
            Some(())
        });
        if ready.is_none() {
            self.log.dump("sealcache");
            panic!(
                "sealcache did not listen on {:?} / {:?} within {START_DEADLINE:?}",
                self.port, self.unix_path
            );
        }
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().expect("poll sealcache")
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_wait().is_none()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends a signal (`"TERM"`, `"INT"`, …) without waiting for the proxy to exit.
    pub fn signal(&self, name: &str) {
        super::send_signal(self.pid().expect("sealcache is not running"), name);
    }

    /// Waits up to `deadline` for the proxy to exit; `None` if it still runs.
    pub fn wait_for_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let status = poll_until(deadline, || self.try_wait())?;
        self.child = None;
        Some(status)
    }

    /// Runs `sealcache SUBCOMMAND --config <this proxy's file> ARGS` with this
    /// proxy's environment (passwords, overrides) and returns its output.
    pub fn command(&self, subcommand: &str, args: &[&str]) -> std::process::Output {
        let mut child = sealcache_command(&self.env)
            .arg(subcommand)
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| spawn_error(env!("CARGO_BIN_EXE_sealcache"), e));
        let exited = poll_until(EXIT_DEADLINE, || child.try_wait().expect("poll sealcache"));
        if exited.is_none() {
            let _ = child.kill();
            panic!("`sealcache {subcommand}` still ran after {EXIT_DEADLINE:?}");
        }
        child.wait_with_output().expect("collect sealcache output")
    }

    /// The admin HTTP port; panics unless built with [`SealcacheBuilder::admin`].
    pub fn admin_port(&self) -> u16 {
        self.admin_port
            .expect("this proxy has no admin listener: build it with .admin()")
    }

    /// Sends SIGTERM and waits (up to [`EXIT_DEADLINE`]) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("sealcache is not running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", child.id());
        let exited = poll_until(EXIT_DEADLINE, || child.try_wait().expect("poll sealcache"));
        exited.unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            self.log.dump("sealcache");
            panic!("sealcache ignored SIGTERM for {EXIT_DEADLINE:?}");
        })
    }

    /// Kills the proxy (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The TLS port; panics for a Unix-socket-only proxy.
    pub fn port(&self) -> u16 {
        self.port.expect("this proxy has no TCP listener")
    }

    pub fn unix_path(&self) -> &Path {
        self.unix_path
            .as_deref()
            .expect("this proxy has no Unix socket")
    }

    /// The `default` user's password.
    pub fn password(&self) -> &str {
        &self.users[0].1
    }

    /// A configured user's password.
    pub fn password_of(&self, user: &str) -> &str {
        self.users
            .iter()
            .find(|(name, _)| name == user)
            .map(|(_, password)| password.as_str())
            .unwrap_or_else(|| panic!("no user {user:?} configured"))
    }

    pub fn master_key(&self) -> [u8; 32] {
        self.master_key
    }

    pub fn certs(&self) -> &Certs {
        &self.certs
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> &LogFile {
        &self.log
    }

    /// Waits until the log contains `needle`; panics with the log after `deadline`.
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str, deadline: Duration) -> String {
        let found = poll_until(deadline, || {
            let text = self.log.read();
            text.contains(needle).then_some(text)
        });
        found.unwrap_or_else(|| {
            self.log.dump("sealcache");
            panic!("sealcache log did not contain {needle:?} within {deadline:?}")
        })
    }

    /// TLS endpoint authenticated as `default` (with the client certificate
    /// when mutual TLS is on). Derive others with `without_auth()` etc.
    pub fn endpoint(&self) -> Endpoint {
        let endpoint =
            Endpoint::tls(self.port(), &self.certs).with_auth(&self.users[0].0, self.password());
        if self.mutual_tls {
            endpoint.with_client_cert(&self.certs)
        } else {
            endpoint
        }
    }

    /// Unix-socket endpoint authenticated as `default`.
    pub fn unix_endpoint(&self) -> Endpoint {
        Endpoint::unix(self.unix_path(), &self.certs).with_auth(&self.users[0].0, self.password())
    }

    /// An authenticated async connection through the proxy (TLS, RESP2).
    pub async fn client(&self) -> redis::aio::MultiplexedConnection {
        self.endpoint().client().await
    }

    /// `redis-cli --tls … --user default ARGS` through the proxy; returns stdout.
    pub fn redis_cli(&self, args: &[&str]) -> String {
        self.endpoint().redis_cli(args)
    }

    /// A TLS stream to the proxy for raw bytes (nothing sent yet, not authenticated).
    pub async fn raw_tls(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        self.endpoint().raw_tls().await
    }

    /// The upstream redis-server itself, authenticated: read what the proxy stored.
    pub fn raw_upstream(&self) -> Endpoint {
        self.upstream
            .clone()
            .expect("this proxy was built without an upstream RedisServer")
    }
}

impl Drop for Sealcache {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            self.log.dump("sealcache");
        }
    }
}

/// Environment variable names the harness uses for passwords, for tests that
/// override them.
pub fn password_env(index: usize) -> String {
    format!("IT_PASSWORD_{index}")
}
