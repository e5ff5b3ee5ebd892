//! The validated configuration every other module reads. Built only by
//! [`super::load`] after validation, so holding a `Config` means it is safe to run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// Security floor. Production tightens TLS, passwords and upstream verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Development,
    Production,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// What a read does with a value that fails to decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecryptFailure {
    Miss,
    Error,
    Delete,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub profile: Profile,
    pub listen: ListenConfig,
    pub tls: ServerTlsConfig,
    pub auth: AuthConfig,
    pub limits: Limits,
    /// Named backends; the `upstream:` shorthand gives one Redis backend
    /// named `main`. Never empty.
    pub backends: Vec<BackendConfig>,
    /// Key-prefix routes in order (first match wins); one has the prefix `""`.
    pub routes: Vec<RouteConfig>,
    pub encryption: EncryptionConfig,
    pub logging: LoggingConfig,
    pub admin: AdminConfig,
    /// Upper-case command names that reconfigure or wipe the upstream and are
    /// rejected unless listed here (FLUSHALL, CONFIG|SET, …).
    pub allowed_admin_commands: Vec<String>,
}

/// One named backend.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub name: String,
    pub settings: BackendSettings,
}

#[derive(Debug, Clone)]
pub enum BackendSettings {
    Redis(Box<UpstreamConfig>),
    Memory(MemoryBackendConfig),
    DynamoDb(Box<super::dynamodb::DynamoConfig>),
}

impl BackendSettings {
    /// As the configuration's `type:` names it.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendSettings::Redis(_) => "redis",
            BackendSettings::Memory(_) => "memory",
            BackendSettings::DynamoDb(_) => "dynamodb",
        }
    }
}

/// A `type: memory` backend: an in-process store on moka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBackendConfig {
    /// Bytes of keys, values and bookkeeping before whole keys are evicted.
    pub max_memory: u64,
    pub databases: u32,
    pub command_timeout: Duration,
}

/// Keys starting with `prefix` are stored in `backends[backend]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    pub prefix: String,
    pub backend: usize,
    /// What serves the route while its backend is unreachable.
    pub fallback: Option<FallbackConfig>,
}

/// A route's fallback (`docs/resilience.md`): a memory backend, the write
/// journal replayed on recovery, and the circuit breaker that decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackConfig {
    /// Index of a memory backend in `Config::backends`.
    pub backend: usize,
    pub journal_max_entries: usize,
    pub breaker: BreakerConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Backend failures (errors and timeouts) within `window` that open the circuit.
    pub failures: u32,
    pub window: Duration,
    /// How often an open circuit probes the backend.
    pub probe_interval: Duration,
}

impl Config {
    /// The backend of the default (`""`) route.
    pub fn default_backend(&self) -> &BackendConfig {
        let route = self
            .routes
            .iter()
            .find(|r| r.prefix.is_empty())
            .expect("validation guarantees a default route");
        &self.backends[route.backend]
    }
}

#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// TLS-over-TCP listener address. `None` only when a Unix socket is configured.
    pub tcp: Option<SocketAddr>,
    pub unix: Option<PathBuf>,
    /// Permission bits for the Unix socket; never looser than 0o660.
    pub unix_mode: u32,
}

#[derive(Debug, Clone)]
pub struct ServerTlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
    pub min_version: TlsVersion,
    pub handshake_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub users: Vec<User>,
    /// Delay after the first failed attempt from an address; doubles per failure.
    pub failure_delay: Duration,
    pub max_failure_delay: Duration,
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub credential: Credential,
}

#[derive(Debug, Clone)]
pub enum Credential {
    /// PHC string of an argon2id hash (`$argon2id$v=19$…`).
    Argon2Hash(String),
    /// Plain password read from an environment variable at load time.
    Password(SecretString),
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_clients: usize,
    pub max_bulk_len: usize,
    pub max_multibulk_len: usize,
    /// Zero disables the idle timeout (as Redis's `timeout 0`).
    pub idle_timeout: Duration,
    /// How long a connected client may stay unauthenticated.
    pub auth_timeout: Duration,
    /// Async worker threads (resolved: never 0).
    pub worker_threads: usize,
    /// How much reply data a client may leave unread before its requests wait
    /// (soft) and it is disconnected (hard, or soft for too long).
    pub output_buffer: OutputBufferLimit,
    /// Dedicated upstream connections one client connection may hold at once.
    pub max_dedicated_per_client: usize,
    /// Bytes of commands one client may queue between MULTI and EXEC
    /// (sealcache holds the queue until EXEC).
    pub max_transaction_bytes: usize,
    /// Each user's share of `upstream.max_pinned` / `max_blocking` (0 = no cap).
    pub max_pinned_per_user: usize,
    pub max_blocking_per_user: usize,
    /// How much a Pub/Sub subscriber may fall behind before it is disconnected.
    pub pubsub_output_buffer: OutputBufferLimit,
    /// How long graceful shutdown lets commands already started finish.
    pub shutdown_timeout: Duration,
    /// Commands per second one client connection may send; `None`: no limit.
    pub rate_limit: Option<RateLimit>,
}

/// A token bucket per client connection: `burst` commands at once, refilled
/// at `commands_per_sec`. Commands over it are answered with an error, not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub commands_per_sec: std::num::NonZeroU32,
    pub burst: std::num::NonZeroU32,
}

/// redis-server's `client-output-buffer-limit`: a client whose undelivered
/// output passes `hard_bytes`, or stays above `soft_bytes` for longer than
/// `soft_time`, is disconnected. A zero byte limit is no limit (as in Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputBufferLimit {
    pub hard_bytes: usize,
    pub soft_bytes: usize,
    pub soft_time: Duration,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub target: UpstreamTarget,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub db: u32,
    /// CA bundle for verifying the upstream; `None` means the system roots.
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// Development only: skip certificate verification.
    pub verify_certificates: bool,
    pub min_tls_version: TlsVersion,
    pub pool_size: usize,
    /// Dedicated connections for MULTI/WATCH, emulated commands and Pub/Sub.
    pub max_pinned: usize,
    /// Dedicated connections for blocking commands (a budget of their own).
    pub max_blocking: usize,
    /// How long a command waits in line for a dedicated connection.
    pub acquire_timeout: Duration,
    pub connect_timeout: Duration,
    /// Deadline for a non-blocking command's reply.
    pub command_timeout: Duration,
    /// Bounds on one upstream reply (bytes, nesting, elements); a reply over
    /// one fails its command and is discarded as it arrives.
    pub max_reply_len: usize,
    pub max_reply_depth: usize,
    pub max_reply_elements: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTarget {
    /// `rediss://host:port`; `server_name` is the TLS name checked against the certificate.
    Tls {
        host: String,
        port: u16,
        server_name: String,
    },
    /// `redis://` to a loopback address: only with `allow_plaintext_upstream`.
    PlainTcp { host: String, port: u16 },
    /// `unix:///path`: only with `allow_plaintext_upstream`.
    Unix { path: PathBuf },
}

#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    /// File holding the base64 master key (0600). `SEALCACHE_MASTER_KEY` wins when set.
    pub master_key_file: Option<PathBuf>,
    pub namespace: String,
    pub on_decrypt_failure: DecryptFailure,
}

/// The admin HTTP listener: `/healthz` and `/readyz` (see `crate::admin`).
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// `None` disables the listener.
    pub listen: Option<SocketAddr>,
    /// Whether a non-loopback `listen` was explicitly allowed (production).
    pub allow_non_loopback: bool,
}

#[derive(Debug, Clone)]
pub struct LoggingConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `sealcache=debug`.
    pub level: String,
}
