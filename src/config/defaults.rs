//! Every built-in default, named. `docs/sealcache.example.yaml` shows the same
//! values; a unit test keeps the two in step.

pub const PROFILE: &str = "development";

pub const LISTEN_TCP: &str = "127.0.0.1:6380";
/// Owner and group may connect; nobody else.
pub const LISTEN_UNIX_MODE: &str = "0660";
/// The loosest Unix socket mode we accept.
pub const MAX_UNIX_MODE: u32 = 0o660;

pub const TLS_CERT_FILE: &str = "certs/server.crt";
pub const TLS_KEY_FILE: &str = "certs/server.key";
pub const TLS_MIN_VERSION: &str = "1.2";
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

pub const AUTH_FAILURE_DELAY_MS: u64 = 100;
pub const AUTH_MAX_FAILURE_DELAY_MS: u64 = 5_000;

pub const MAX_CLIENTS: usize = 10_000;
/// Redis's own `proto-max-bulk-len` is 512 MiB; a proxy holding values in memory
/// to encrypt them wants a tighter default.
pub const MAX_BULK_LEN: usize = 64 * 1024 * 1024;
pub const MAX_MULTIBULK_LEN: usize = 1024 * 1024;
pub const IDLE_TIMEOUT_SECS: u64 = 300;
pub const AUTH_TIMEOUT_SECS: u64 = 10;
/// A Pub/Sub subscriber's queue of undelivered messages, as redis-server's
/// `client-output-buffer-limit pubsub 32mb 8mb 60`.
pub const PUBSUB_OUTPUT_BUFFER_HARD_BYTES: usize = 32 * 1024 * 1024;
pub const PUBSUB_OUTPUT_BUFFER_SOFT_BYTES: usize = 8 * 1024 * 1024;
pub const PUBSUB_OUTPUT_BUFFER_SOFT_SECS: u64 = 60;
/// Async worker threads; 0 = half the CPUs (at least one): a sidecar shares
/// its host with the application and Redis, and one thread avoids cross-thread
/// wake-ups (measured faster than two on a 2-core host).
pub const WORKER_THREADS: usize = 0;
/// Graceful shutdown: how long commands already read may take to finish after
/// SIGTERM/SIGINT before their connections are closed anyway.
pub const SHUTDOWN_TIMEOUT_MS: u64 = 10_000;

/// The admin HTTP listener (`/healthz`, `/readyz`): on, and on loopback only.
pub const ADMIN_LISTEN: &str = "127.0.0.1:9380";
/// Production refuses a non-loopback admin address unless this is set.
pub const ADMIN_ALLOW_NON_LOOPBACK: bool = false;

/// The name of the Redis backend the top-level `upstream:` section defines
/// (in `/readyz`, `sealcache health` and messages).
pub const UPSTREAM_BACKEND_NAME: &str = "upstream";
pub const UPSTREAM_URL: &str = "rediss://127.0.0.1:6379/0";
/// Port used when an upstream URL names none (Redis's own default).
pub const UPSTREAM_DEFAULT_PORT: u16 = 6379;
pub const UPSTREAM_VERIFY_CERTIFICATES: bool = true;
pub const UPSTREAM_ALLOW_PLAINTEXT: bool = false;
pub const UPSTREAM_MIN_TLS_VERSION: &str = "1.2";
/// Two lanes keep Redis busy (it is single-threaded) while batching many clients per write.
pub const UPSTREAM_POOL_SIZE: usize = 2;
pub const UPSTREAM_MAX_PINNED: usize = 64;
pub const UPSTREAM_CONNECT_TIMEOUT_MS: u64 = 5_000;
pub const UPSTREAM_COMMAND_TIMEOUT_MS: u64 = 10_000;

pub const MASTER_KEY_FILE: &str = "master.key";
pub const NAMESPACE: &str = "default";
pub const ON_DECRYPT_FAILURE: &str = "miss";

pub const LOG_FORMAT: &str = "text";
pub const LOG_LEVEL: &str = "info";

/// Shortest client password accepted in development.
pub const MIN_PASSWORD_LEN_DEVELOPMENT: usize = 16;
/// Shortest client password accepted in production.
pub const MIN_PASSWORD_LEN_PRODUCTION: usize = 32;
/// Production passwords need this many of: lower case, upper case, digits, symbols.
pub const MIN_PASSWORD_CLASSES_PRODUCTION: usize = 3;
/// Production passwords need this many distinct characters (rejects `aA1aA1aA1…`).
pub const MIN_PASSWORD_DISTINCT_PRODUCTION: usize = 12;

/// Upper bounds that catch a misplaced digit rather than limit real deployments.
pub const MAX_POOL_SIZE: usize = 1024;
