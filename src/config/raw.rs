//! The configuration file's shape, field for field as in
//! `docs/sealcache.example.yaml`. Every struct denies unknown fields; values are
//! checked and converted into the model by `validate`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::defaults as d;
use super::model::{DecryptFailure, LogFormat, Profile};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub profile: Profile,
    pub listen: RawListen,
    pub tls: RawTls,
    pub auth: RawAuth,
    pub limits: RawLimits,
    /// The shorthand for one Redis backend named `main` on the default route.
    pub upstream: RawUpstream,
    /// Named backends, each a map with a `type` (checked per type by `validate`).
    pub backends: BTreeMap<String, serde_json::Value>,
    pub routes: Vec<RawRoute>,
    pub encryption: RawEncryption,
    pub logging: RawLogging,
    pub admin: RawAdmin,
    #[serde(deserialize_with = "lenient::strings")]
    pub allowed_admin_commands: Vec<String>,
}

/// One route: keys starting with `prefix` go to `backend`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    #[serde(deserialize_with = "lenient::string")]
    pub prefix: String,
    #[serde(deserialize_with = "lenient::string")]
    pub backend: String,
    /// A memory backend that serves the route while `backend` is unreachable.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub fallback: Option<String>,
    /// Writes kept for replay during an outage (default with `fallback`).
    #[serde(default)]
    pub journal_max_entries: Option<usize>,
    #[serde(default)]
    pub breaker: Option<RawBreaker>,
}

/// Keys a route may have (the key checker needs them: lists have no defaults).
pub(super) const ROUTE_KEYS: &[&str] = &[
    "prefix",
    "backend",
    "fallback",
    "journal_max_entries",
    "breaker",
];

/// A route's circuit breaker; keys left out take their defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawBreaker {
    pub failures: u32,
    pub window_ms: u64,
    pub probe_interval_ms: u64,
}

impl Default for RawBreaker {
    fn default() -> Self {
        RawBreaker {
            failures: d::BREAKER_FAILURES,
            window_ms: d::BREAKER_WINDOW_MS,
            probe_interval_ms: d::BREAKER_PROBE_INTERVAL_MS,
        }
    }
}

/// A `type: memory` backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMemoryBackend {
    /// `256MiB`, `1GB`, `65536`…
    #[serde(deserialize_with = "lenient::string")]
    pub max_memory: String,
    pub databases: u32,
    pub command_timeout_ms: u64,
}

impl Default for RawMemoryBackend {
    fn default() -> Self {
        RawMemoryBackend {
            max_memory: d::MEMORY_MAX_MEMORY.into(),
            databases: d::MEMORY_DATABASES,
            command_timeout_ms: d::UPSTREAM_COMMAND_TIMEOUT_MS,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListen {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub tcp: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub unix: Option<String>,
    /// Octal text ("0660"); numbers are accepted and read as octal digits.
    #[serde(deserialize_with = "lenient::string")]
    pub unix_mode: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub cert_file: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub key_file: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub client_ca_file: Option<String>,
    /// "1.2" or "1.3"; an unquoted YAML `1.3` (a float) is accepted too.
    #[serde(deserialize_with = "lenient::string")]
    pub min_version: String,
    pub handshake_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub users: Vec<RawUser>,
    pub failure_delay_ms: u64,
    pub max_failure_delay_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub password_hash: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub password_env: Option<String>,
}

/// Keys a user entry may have (the key checker needs them: lists have no defaults).
pub(super) const USER_KEYS: &[&str] = &["name", "password_hash", "password_env"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub max_clients: usize,
    pub max_bulk_len: usize,
    pub max_multibulk_len: usize,
    pub idle_timeout_secs: u64,
    pub auth_timeout_secs: u64,
    pub worker_threads: usize,
    pub output_buffer: RawOutputBuffer,
    pub max_dedicated_per_client: usize,
    pub max_transaction_bytes: usize,
    pub max_pinned_per_user: usize,
    pub max_blocking_per_user: usize,
    pub pubsub_output_buffer: RawOutputBuffer,
    pub shutdown_timeout_ms: u64,
    pub rate_limit: RawRateLimit,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub commands_per_sec: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutputBuffer {
    pub hard_bytes: usize,
    pub soft_bytes: usize,
    pub soft_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    #[serde(deserialize_with = "lenient::string")]
    pub url: String,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub username: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub password_env: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub password_file: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub ca_file: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub client_cert_file: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub client_key_file: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub server_name: Option<String>,
    pub verify_certificates: bool,
    pub allow_plaintext_upstream: bool,
    #[serde(deserialize_with = "lenient::string")]
    pub min_tls_version: String,
    pub pool_size: usize,
    pub max_pinned: usize,
    pub max_blocking: usize,
    pub acquire_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub command_timeout_ms: u64,
    pub max_reply_len: usize,
    pub max_reply_depth: usize,
    pub max_reply_elements: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEncryption {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub master_key_file: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub namespace: String,
    pub on_decrypt_failure: DecryptFailure,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLogging {
    pub format: LogFormat,
    #[serde(deserialize_with = "lenient::string")]
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    /// `null` (or empty) disables the admin listener.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub listen: Option<String>,
    pub allow_non_loopback: bool,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            profile: Profile::Development,
            listen: RawListen {
                tcp: Some(d::LISTEN_TCP.into()),
                unix: None,
                unix_mode: d::LISTEN_UNIX_MODE.into(),
            },
            tls: RawTls {
                cert_file: Some(d::TLS_CERT_FILE.into()),
                key_file: Some(d::TLS_KEY_FILE.into()),
                client_ca_file: None,
                min_version: d::TLS_MIN_VERSION.into(),
                handshake_timeout_ms: d::TLS_HANDSHAKE_TIMEOUT_MS,
            },
            auth: RawAuth {
                users: Vec::new(),
                failure_delay_ms: d::AUTH_FAILURE_DELAY_MS,
                max_failure_delay_ms: d::AUTH_MAX_FAILURE_DELAY_MS,
            },
            limits: RawLimits {
                max_clients: d::MAX_CLIENTS,
                max_bulk_len: d::MAX_BULK_LEN,
                max_multibulk_len: d::MAX_MULTIBULK_LEN,
                idle_timeout_secs: d::IDLE_TIMEOUT_SECS,
                auth_timeout_secs: d::AUTH_TIMEOUT_SECS,
                worker_threads: d::WORKER_THREADS,
                output_buffer: RawOutputBuffer {
                    hard_bytes: d::OUTPUT_BUFFER_HARD_BYTES,
                    soft_bytes: d::OUTPUT_BUFFER_SOFT_BYTES,
                    soft_secs: d::OUTPUT_BUFFER_SOFT_SECS,
                },
                max_dedicated_per_client: d::MAX_DEDICATED_PER_CLIENT,
                max_transaction_bytes: d::MAX_TRANSACTION_BYTES,
                max_pinned_per_user: d::MAX_PINNED_PER_USER,
                max_blocking_per_user: d::MAX_BLOCKING_PER_USER,
                pubsub_output_buffer: RawOutputBuffer {
                    hard_bytes: d::PUBSUB_OUTPUT_BUFFER_HARD_BYTES,
                    soft_bytes: d::PUBSUB_OUTPUT_BUFFER_SOFT_BYTES,
                    soft_secs: d::PUBSUB_OUTPUT_BUFFER_SOFT_SECS,
                },
                shutdown_timeout_ms: d::SHUTDOWN_TIMEOUT_MS,
                rate_limit: RawRateLimit {
                    commands_per_sec: d::RATE_LIMIT_COMMANDS_PER_SEC,
                    burst: d::RATE_LIMIT_BURST,
                },
            },
            upstream: RawUpstream {
                url: d::UPSTREAM_URL.into(),
                username: None,
                password_env: None,
                password_file: None,
                ca_file: None,
                client_cert_file: None,
                client_key_file: None,
                server_name: None,
                verify_certificates: d::UPSTREAM_VERIFY_CERTIFICATES,
                allow_plaintext_upstream: d::UPSTREAM_ALLOW_PLAINTEXT,
                min_tls_version: d::UPSTREAM_MIN_TLS_VERSION.into(),
                pool_size: d::UPSTREAM_POOL_SIZE,
                max_pinned: d::UPSTREAM_MAX_PINNED,
                max_blocking: d::UPSTREAM_MAX_BLOCKING,
                acquire_timeout_ms: d::UPSTREAM_ACQUIRE_TIMEOUT_MS,
                connect_timeout_ms: d::UPSTREAM_CONNECT_TIMEOUT_MS,
                command_timeout_ms: d::UPSTREAM_COMMAND_TIMEOUT_MS,
                max_reply_len: d::UPSTREAM_MAX_REPLY_LEN,
                max_reply_depth: d::UPSTREAM_MAX_REPLY_DEPTH,
                max_reply_elements: d::UPSTREAM_MAX_REPLY_ELEMENTS,
            },
            backends: BTreeMap::new(),
            routes: Vec::new(),
            encryption: RawEncryption {
                master_key_file: Some(d::MASTER_KEY_FILE.into()),
                namespace: d::NAMESPACE.into(),
                on_decrypt_failure: DecryptFailure::Miss,
            },
            logging: RawLogging {
                format: LogFormat::Text,
                level: d::LOG_LEVEL.into(),
            },
            admin: RawAdmin {
                listen: Some(d::ADMIN_LISTEN.into()),
                allow_non_loopback: d::ADMIN_ALLOW_NON_LOOPBACK,
            },
            allowed_admin_commands: Vec::new(),
        }
    }
}

/// Deserializers that take a string setting from any YAML scalar: `min_version: 1.3`
/// is a float to YAML and `unix_mode: 0600` an integer, but the user meant text.
mod lenient {
    use super::*;
    use serde::de::{self, SeqAccess, Visitor};
    use std::fmt;

    struct ScalarText;

    impl<'de> Visitor<'de> for ScalarText {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(ScalarText)
        }
    }

    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        // An empty string means "not set", like null: SEALCACHE_TLS__CLIENT_CA_FILE= unsets it.
        Ok(d.deserialize_any(ScalarText)?.filter(|s| !s.is_empty()))
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_any(ScalarText)?
            .ok_or_else(|| de::Error::invalid_type(de::Unexpected::Unit, &"a string"))
    }

    struct ScalarList;

    impl<'de> Visitor<'de> for ScalarList {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of strings")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<Text>()? {
                out.push(item.0);
            }
            Ok(out)
        }
    }

    struct Text(String);

    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            string(d).map(Text)
        }
    }

    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_any(ScalarList)
    }
}
