//! The effective configuration as YAML in the file's own shape, with every
//! secret (passwords, password hashes, URL passwords) shown as `<redacted>`.

use std::path::Path;

use serde::Serialize;

use super::dynamodb::{BillingMode, DynamoConfig};
use super::model::*;

/// What `check-config` prints in place of a secret.
pub const REDACTED: &str = "<redacted>";

#[derive(Serialize)]
struct View<'a> {
    profile: Profile,
    listen: ListenView,
    tls: TlsView,
    auth: AuthView<'a>,
    limits: LimitsView,
    backends: std::collections::BTreeMap<&'a str, BackendView<'a>>,
    routes: Vec<RouteView<'a>>,
    encryption: EncryptionView<'a>,
    logging: LoggingView<'a>,
    admin: AdminView,
    allowed_admin_commands: &'a [String],
}

#[derive(Serialize)]
struct AdminView {
    listen: Option<String>,
    allow_non_loopback: bool,
}

#[derive(Serialize)]
struct ListenView {
    tcp: Option<String>,
    unix: Option<String>,
    unix_mode: String,
}

#[derive(Serialize)]
struct TlsView {
    cert_file: String,
    key_file: String,
    client_ca_file: Option<String>,
    min_version: TlsVersion,
    handshake_timeout_ms: u128,
}

#[derive(Serialize)]
struct AuthView<'a> {
    users: Vec<UserView<'a>>,
    failure_delay_ms: u128,
    max_failure_delay_ms: u128,
}

#[derive(Serialize)]
struct UserView<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    password_hash: Option<&'static str>,
    /// A password taken from the environment at load time.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'static str>,
}

#[derive(Serialize)]
struct LimitsView {
    max_clients: usize,
    max_bulk_len: usize,
    max_multibulk_len: usize,
    idle_timeout_secs: u64,
    auth_timeout_secs: u64,
    worker_threads: usize,
    output_buffer: OutputBufferView,
    max_dedicated_per_client: usize,
    max_transaction_bytes: usize,
    max_pinned_per_user: usize,
    max_blocking_per_user: usize,
    pubsub_output_buffer: OutputBufferView,
    shutdown_timeout_ms: u128,
    rate_limit: RateLimitView,
}

#[derive(Serialize)]
struct RateLimitView {
    commands_per_sec: u32,
    burst: u32,
}

#[derive(Serialize)]
struct OutputBufferView {
    hard_bytes: usize,
    soft_bytes: usize,
    soft_secs: u64,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum BackendView<'a> {
    Redis(Box<UpstreamView<'a>>),
    Memory(MemoryView),
    #[serde(rename = "dynamodb")]
    DynamoDb(DynamoView<'a>),
}

#[derive(Serialize)]
struct DynamoView<'a> {
    table: &'a str,
    region: Option<&'a str>,
    endpoint_url: Option<&'a str>,
    create_table: bool,
    billing_mode: &'static str,
    read_capacity: Option<u64>,
    write_capacity: Option<u64>,
    kms_key_id: Option<&'a str>,
    consistent_reads: bool,
    request_timeout_ms: u128,
    max_attempts: u32,
}

fn dynamo_view(d: &DynamoConfig) -> DynamoView<'_> {
    let (billing_mode, read_capacity, write_capacity) = match d.billing_mode {
        BillingMode::OnDemand => ("on_demand", None, None),
        BillingMode::Provisioned {
            read_capacity,
            write_capacity,
        } => ("provisioned", Some(read_capacity), Some(write_capacity)),
    };
    DynamoView {
        table: &d.table,
        region: d.region.as_deref(),
        endpoint_url: d.endpoint_url.as_deref(),
        create_table: d.create_table,
        billing_mode,
        read_capacity,
        write_capacity,
        kms_key_id: d.kms_key_id.as_deref(),
        consistent_reads: d.consistent_reads,
        request_timeout_ms: d.request_timeout.as_millis(),
        max_attempts: d.max_attempts,
    }
}

#[derive(Serialize)]
struct MemoryView {
    max_memory: u64,
    databases: u32,
    command_timeout_ms: u128,
}

#[derive(Serialize)]
struct RouteView<'a> {
    prefix: &'a str,
    backend: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    journal_max_entries: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    breaker: Option<BreakerView>,
}

#[derive(Serialize)]
struct BreakerView {
    failures: u32,
    window_ms: u128,
    probe_interval_ms: u128,
}

#[derive(Serialize)]
struct UpstreamView<'a> {
    url: String,
    username: Option<&'a str>,
    password: Option<&'static str>,
    ca_file: Option<String>,
    client_cert_file: Option<String>,
    client_key_file: Option<String>,
    server_name: Option<&'a str>,
    verify_certificates: bool,
    allow_plaintext_upstream: bool,
    min_tls_version: TlsVersion,
    pool_size: usize,
    max_pinned: usize,
    max_blocking: usize,
    acquire_timeout_ms: u128,
    connect_timeout_ms: u128,
    command_timeout_ms: u128,
    max_reply_len: usize,
    max_reply_depth: usize,
    max_reply_elements: usize,
}

#[derive(Serialize)]
struct EncryptionView<'a> {
    master_key_file: Option<String>,
    namespace: &'a str,
    on_decrypt_failure: DecryptFailure,
}

#[derive(Serialize)]
struct LoggingView<'a> {
    format: LogFormat,
    level: &'a str,
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The effective configuration as YAML with every secret redacted.
pub fn render_redacted(config: &Config) -> String {
    let view = View {
        profile: config.profile,
        listen: ListenView {
            tcp: config.listen.tcp.map(|a| a.to_string()),
            unix: config.listen.unix.as_deref().map(path),
            unix_mode: format!("{:04o}", config.listen.unix_mode),
        },
        tls: TlsView {
            cert_file: path(&config.tls.cert_file),
            key_file: path(&config.tls.key_file),
            client_ca_file: config.tls.client_ca_file.as_deref().map(path),
            min_version: config.tls.min_version,
            handshake_timeout_ms: config.tls.handshake_timeout.as_millis(),
        },
        auth: AuthView {
            users: config
                .auth
                .users
                .iter()
                .map(|u| UserView {
                    name: &u.name,
                    password_hash: matches!(u.credential, Credential::Argon2Hash(_))
                        .then_some(REDACTED),
                    password: matches!(u.credential, Credential::Password(_)).then_some(REDACTED),
                })
                .collect(),
            failure_delay_ms: config.auth.failure_delay.as_millis(),
            max_failure_delay_ms: config.auth.max_failure_delay.as_millis(),
        },
        limits: LimitsView {
            max_clients: config.limits.max_clients,
            max_bulk_len: config.limits.max_bulk_len,
            max_multibulk_len: config.limits.max_multibulk_len,
            idle_timeout_secs: config.limits.idle_timeout.as_secs(),
            auth_timeout_secs: config.limits.auth_timeout.as_secs(),
            worker_threads: config.limits.worker_threads,
            output_buffer: OutputBufferView {
                hard_bytes: config.limits.output_buffer.hard_bytes,
                soft_bytes: config.limits.output_buffer.soft_bytes,
                soft_secs: config.limits.output_buffer.soft_time.as_secs(),
            },
            max_dedicated_per_client: config.limits.max_dedicated_per_client,
            max_transaction_bytes: config.limits.max_transaction_bytes,
            max_pinned_per_user: config.limits.max_pinned_per_user,
            max_blocking_per_user: config.limits.max_blocking_per_user,
            pubsub_output_buffer: OutputBufferView {
                hard_bytes: config.limits.pubsub_output_buffer.hard_bytes,
                soft_bytes: config.limits.pubsub_output_buffer.soft_bytes,
                soft_secs: config.limits.pubsub_output_buffer.soft_time.as_secs(),
            },
            shutdown_timeout_ms: config.limits.shutdown_timeout.as_millis(),
            rate_limit: match config.limits.rate_limit {
                Some(limit) => RateLimitView {
                    commands_per_sec: limit.commands_per_sec.get(),
                    burst: limit.burst.get(),
                },
                None => RateLimitView {
                    commands_per_sec: 0,
                    burst: 0,
                },
            },
        },
        backends: config
            .backends
            .iter()
            .map(|b| {
                let view = match &b.settings {
                    BackendSettings::Redis(up) => BackendView::Redis(Box::new(upstream_view(up))),
                    BackendSettings::Memory(m) => BackendView::Memory(MemoryView {
                        max_memory: m.max_memory,
                        databases: m.databases,
                        command_timeout_ms: m.command_timeout.as_millis(),
                    }),
                    BackendSettings::DynamoDb(d) => BackendView::DynamoDb(dynamo_view(d)),
                };
                (b.name.as_str(), view)
            })
            .collect(),
        routes: config
            .routes
            .iter()
            .map(|r| RouteView {
                prefix: &r.prefix,
                backend: &config.backends[r.backend].name,
                fallback: r.fallback.map(|f| config.backends[f.backend].name.as_str()),
                journal_max_entries: r.fallback.map(|f| f.journal_max_entries),
                breaker: r.fallback.map(|f| BreakerView {
                    failures: f.breaker.failures,
                    window_ms: f.breaker.window.as_millis(),
                    probe_interval_ms: f.breaker.probe_interval.as_millis(),
                }),
            })
            .collect(),
        encryption: EncryptionView {
            master_key_file: config.encryption.master_key_file.as_deref().map(path),
            namespace: &config.encryption.namespace,
            on_decrypt_failure: config.encryption.on_decrypt_failure,
        },
        logging: LoggingView {
            format: config.logging.format,
            level: &config.logging.level,
        },
        admin: AdminView {
            listen: config.admin.listen.map(|a| a.to_string()),
            allow_non_loopback: config.admin.allow_non_loopback,
        },
        allowed_admin_commands: &config.allowed_admin_commands,
    };
    serde_saphyr::to_string(&view).expect("the view serializes")
}

fn upstream_view(up: &UpstreamConfig) -> UpstreamView<'_> {
    // The URL is rebuilt from its parts, so a password given in it cannot leak.
    let (url, server_name, plaintext) = match &up.target {
        UpstreamTarget::Tls {
            host,
            port,
            server_name,
        } => (
            format!("rediss://{}:{port}/{}", url_host(host), up.db),
            Some(server_name.as_str()),
            false,
        ),
        UpstreamTarget::PlainTcp { host, port } => (
            format!("redis://{}:{port}/{}", url_host(host), up.db),
            None,
            true,
        ),
        UpstreamTarget::Unix { path } => (
            format!("unix://{}?db={}", path.display(), up.db),
            None,
            true,
        ),
    };
    UpstreamView {
        url,
        username: up.username.as_deref(),
        password: up.password.as_ref().map(|_| REDACTED),
        ca_file: up.ca_file.as_deref().map(path),
        client_cert_file: up.client_cert_file.as_deref().map(path),
        client_key_file: up.client_key_file.as_deref().map(path),
        server_name,
        verify_certificates: up.verify_certificates,
        allow_plaintext_upstream: plaintext,
        min_tls_version: up.min_tls_version,
        pool_size: up.pool_size,
        max_pinned: up.max_pinned,
        max_blocking: up.max_blocking,
        acquire_timeout_ms: up.acquire_timeout.as_millis(),
        connect_timeout_ms: up.connect_timeout.as_millis(),
        command_timeout_ms: up.command_timeout.as_millis(),
        max_reply_len: up.max_reply_len,
        max_reply_depth: up.max_reply_depth,
        max_reply_elements: up.max_reply_elements,
    }
}

fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}
