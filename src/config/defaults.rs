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
/// Reply bytes sealcache holds for a client that does not read, like Redis's
/// `client-output-buffer-limit normal`: over the hard limit the client is
/// disconnected. 256 MiB fits any value `max_bulk_len` lets a client store.
pub const OUTPUT_BUFFER_HARD_BYTES: usize = 256 * 1024 * 1024;
/// Over this many bytes the client's requests are not read, and if it stays
/// over for `OUTPUT_BUFFER_SOFT_SECS` it is disconnected.
pub const OUTPUT_BUFFER_SOFT_BYTES: usize = 64 * 1024 * 1024;
pub const OUTPUT_BUFFER_SOFT_SECS: u64 = 60;
/// A Pub/Sub subscriber's queue of undelivered messages, as redis-server's
/// `client-output-buffer-limit pubsub 32mb 8mb 60`.
pub const PUBSUB_OUTPUT_BUFFER_HARD_BYTES: usize = 32 * 1024 * 1024;
pub const PUBSUB_OUTPUT_BUFFER_SOFT_BYTES: usize = 8 * 1024 * 1024;
pub const PUBSUB_OUTPUT_BUFFER_SOFT_SECS: u64 = 60;
/// Dedicated upstream connections one client connection may hold at once. A
/// client holds at most one transaction, one emulated command and one blocking
/// command at a time, so only a misbehaving path ever reaches this.
pub const MAX_DEDICATED_PER_CLIENT: usize = 4;
/// Bytes of commands one client may queue between MULTI and EXEC: sealcache
/// holds a transaction's queue itself until EXEC, so it is bounded like a
/// client's unread replies (`OUTPUT_BUFFER_HARD_BYTES`).
pub const MAX_TRANSACTION_BYTES: usize = 256 * 1024 * 1024;
/// Per-user shares of `upstream.max_pinned` and `upstream.max_blocking`; 0 = no per-user cap.
pub const MAX_PINNED_PER_USER: usize = 0;
pub const MAX_BLOCKING_PER_USER: usize = 0;
/// Async worker threads; 0 = half the CPUs (at least one): a sidecar shares
/// its host with the application and Redis, and one thread avoids cross-thread
/// wake-ups (measured faster than two on a 2-core host).
pub const WORKER_THREADS: usize = 0;
/// The per-client command rate limit (`limits.rate_limit`), off by default: a
/// sidecar serves its own application, whose bursts are its business.
/// 0 = no limit.
pub const RATE_LIMIT_COMMANDS_PER_SEC: u32 = 0;
/// Commands a client may send at once above the rate; 0 = one second's worth.
pub const RATE_LIMIT_BURST: u32 = 0;
/// Graceful shutdown: how long commands already started may take to finish after
/// SIGTERM/SIGINT before their connections are closed anyway.
pub const SHUTDOWN_TIMEOUT_MS: u64 = 10_000;

/// The admin HTTP listener (`/healthz`, `/readyz`): on, and on loopback only.
pub const ADMIN_LISTEN: &str = "127.0.0.1:9380";
/// Production refuses a non-loopback admin address unless this is set.
pub const ADMIN_ALLOW_NON_LOOPBACK: bool = false;

pub const UPSTREAM_URL: &str = "rediss://127.0.0.1:6379/0";
/// Port used when an upstream URL names none (Redis's own default).
pub const UPSTREAM_DEFAULT_PORT: u16 = 6379;
pub const UPSTREAM_VERIFY_CERTIFICATES: bool = true;
pub const UPSTREAM_ALLOW_PLAINTEXT: bool = false;
pub const UPSTREAM_MIN_TLS_VERSION: &str = "1.2";
/// Two lanes keep Redis busy (it is single-threaded) while batching many clients per write.
pub const UPSTREAM_POOL_SIZE: usize = 2;
pub const UPSTREAM_MAX_PINNED: usize = 64;
/// Blocking commands have their own connections, so clients waiting in BLPOP
/// never starve transactions and emulated commands. Redis serves thousands
/// of blocked clients; each costs one connection here.
pub const UPSTREAM_MAX_BLOCKING: usize = 1024;
/// How long a command waits in line (first come, first served) for a dedicated
/// connection before it fails.
pub const UPSTREAM_ACQUIRE_TIMEOUT_MS: u64 = 2_000;
pub const UPSTREAM_CONNECT_TIMEOUT_MS: u64 = 5_000;
pub const UPSTREAM_COMMAND_TIMEOUT_MS: u64 = 10_000;
/// Bytes in one upstream reply: twice Redis's largest string (proto-max-bulk-len, 512 MiB).
pub const UPSTREAM_MAX_REPLY_LEN: usize = 1024 * 1024 * 1024;
/// Aggregates nested in one upstream reply. Redis's own replies nest at most
/// about 8 deep (COMMAND DOCS). Replies are decoded recursively, about 4 KiB
/// of stack per level in a release build (24 KiB in a debug build), so this
/// also bounds the stack a reply can take.
pub const UPSTREAM_MAX_REPLY_DEPTH: usize = 32;
/// Elements in one upstream reply, all aggregates together (a map of n pairs
/// counts 2n). A decoded element takes about 150 bytes, so this bounds a
/// reply's frames near 600 MiB.
pub const UPSTREAM_MAX_REPLY_ELEMENTS: usize = 4 * 1024 * 1024;

/// The name the `upstream:` shorthand gives its Redis backend.
pub const SHORTHAND_BACKEND: &str = "main";
/// A memory backend's bound on keys, values and bookkeeping.
pub const MEMORY_MAX_MEMORY: &str = "256MiB";
pub const MEMORY_DATABASES: u32 = 16;
/// A route's write journal during an outage (`journal_max_entries`): past
/// it, the oldest entries are dropped and counted.
pub const ROUTE_JOURNAL_MAX_ENTRIES: usize = 100_000;
/// The largest journal accepted (a digit too many, not a real need).
pub const MAX_JOURNAL_ENTRIES: usize = 100_000_000;
/// A route's circuit opens after this many backend failures (errors and
/// timeouts) within `BREAKER_WINDOW_MS`.
pub const BREAKER_FAILURES: u32 = 5;
pub const BREAKER_WINDOW_MS: u64 = 2_000;
/// While the circuit is open, the backend is probed this often.
pub const BREAKER_PROBE_INTERVAL_MS: u64 = 500;
/// The smallest `max_memory` a memory backend accepts (1 MiB).
pub const MIN_MEMORY_MAX: u64 = 1 << 20;
/// The most databases a memory backend may have (Redis allows any number; a
/// digit too many is more likely than a need for more).
pub const MAX_DATABASES: u32 = 1024;

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
/// Deepest `upstream.max_reply_depth` accepted: decoding a level takes stack.
pub const MAX_REPLY_DEPTH: usize = 128;
/// The smallest reply limits accepted: below these, Redis's own replies
/// (HELLO's map, XREAD's nesting) would be refused.
pub const MIN_REPLY_LEN: usize = 4096;
pub const MIN_REPLY_DEPTH: usize = 8;
pub const MIN_REPLY_ELEMENTS: usize = 1024;
