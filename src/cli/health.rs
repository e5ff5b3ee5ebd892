//! `sealcache health [--json]`: loads the configuration as `check-config`
//! does, then checks every backend's connectivity and round-trip latency and,
//! when the admin listener is configured, the running proxy's `/readyz`.
//!
//! Exits 0 when every backend is up and the proxy, if it runs, is ready; 1
//! when a backend is down or the running proxy is not ready; 78 when the
//! configuration is invalid. A proxy that is not running is reported, not a
//! failure: the command also serves to check backends before the first start.
//!
//! Each backend kind has one check function; [`targets`] lists the backends.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use clap::Args;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ConfigArgs, EXIT_FAILURE};
use crate::backend::dynamodb::{DynamoConfig, DynamoStore};
use crate::backend::redis::Connector;
use crate::backend::redis::connect::{BoxStream, encode_command};
use crate::backend::redis::decode::{UpstreamDecoder, decode_reply};
use crate::config::{BackendSettings, Config, Profile, UpstreamConfig, UpstreamTarget};
use crate::protocol::Protocol;
use crate::protocol::reply::{error_text, text_of};
use crate::tls;

/// How long the proxy's `/readyz` may take to answer.
const READYZ_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Everything `health` found, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Report {
    healthy: bool,
    backends: Vec<BackendHealth>,
    proxy: ProxyHealth,
}

#[derive(Debug, Serialize)]
struct BackendHealth {
    name: String,
    kind: &'static str,
    address: String,
    up: bool,
    /// Opening a connection: TCP, TLS and authentication (HELLO/AUTH).
    connect_ms: Option<f64>,
    /// One PING round trip on the open connection.
    ping_ms: Option<f64>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ProxyHealth {
    /// The admin address probed; `None` when `admin.listen` is null.
    admin: Option<String>,
    state: ProxyState,
    /// The HTTP status of `/readyz`.
    status: Option<u16>,
    latency_ms: Option<f64>,
    /// The `/readyz` document as the proxy sent it.
    readiness: Option<serde_json::Value>,
    error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum ProxyState {
    /// `admin.listen` is null (or port 0): the proxy cannot be asked.
    NotChecked,
    /// Nothing listens on the admin address.
    NotRunning,
    Ready,
    NotReady,
    /// Something answered, but not a `/readyz` answer in time.
    Failed,
}

pub fn run(args: HealthArgs) -> ExitCode {
    let config = match super::load_config(&args.config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let runtime = match super::build_runtime(&mut tokio::runtime::Builder::new_current_thread()) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let report = runtime.block_on(check_all(&config));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        print!("{}", table(&report));
    }
    if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

async fn check_all(config: &Config) -> Report {
    let backends = futures_util::future::join_all(
        targets(config)
            .into_iter()
            .map(|target| check(target, config.profile)),
    );
    let (backends, proxy) = tokio::join!(backends, check_proxy(config.admin.listen));
    let healthy = backends.iter().all(|b| b.up)
        && !matches!(proxy.state, ProxyState::NotReady | ProxyState::Failed);
    Report {
        healthy,
        backends,
        proxy,
    }
}

/// A backend to check, by kind: each kind has its `check_*` function.
enum Target<'a> {
    Redis {
        name: &'a str,
        config: &'a UpstreamConfig,
    },
    /// In-process: up whenever the proxy runs, nothing to connect to.
    Memory { name: &'a str },
    DynamoDb {
        name: &'a str,
        config: &'a DynamoConfig,
    },
}

/// Every configured backend, in configuration order.
fn targets(config: &Config) -> Vec<Target<'_>> {
    config
        .backends
        .iter()
        .map(|backend| match &backend.settings {
            BackendSettings::Redis(upstream) => Target::Redis {
                name: &backend.name,
                config: upstream,
            },
            BackendSettings::Memory(_) => Target::Memory {
                name: &backend.name,
            },
            BackendSettings::DynamoDb(config) => Target::DynamoDb {
                name: &backend.name,
                config,
            },
        })
        .collect()
}

async fn check(target: Target<'_>, profile: Profile) -> BackendHealth {
    match target {
        Target::Redis { name, config } => check_redis(name, config, profile).await,
        Target::Memory { name } => BackendHealth {
            name: name.to_string(),
            kind: "memory",
            address: "in-process".into(),
            up: true,
            connect_ms: None,
            ping_ms: None,
            error: None,
        },
        Target::DynamoDb { name, config } => check_dynamodb(name, config).await,
    }
}

/// Describes the table (its schema checked, nothing changed) and times it.
async fn check_dynamodb(name: &str, config: &DynamoConfig) -> BackendHealth {
    let started = Instant::now();
    let outcome = DynamoStore::inspect(config).await;
    BackendHealth {
        name: name.to_string(),
        kind: "dynamodb",
        address: format!(
            "{} ({})",
            config.table,
            config
                .endpoint_url
                .as_deref()
                .or(config.region.as_deref())
                .unwrap_or("the environment's region")
        ),
        up: outcome.is_ok(),
        connect_ms: None,
        ping_ms: outcome.is_ok().then(|| millis(started.elapsed())),
        error: outcome.err().map(|e| e.to_string()),
    }
}

/// Connects as the proxy does (TLS, credentials, HELLO/AUTH, SELECT), then
/// times one PING.
async fn check_redis(name: &str, config: &UpstreamConfig, profile: Profile) -> BackendHealth {
    let mut health = BackendHealth {
        name: name.to_string(),
        kind: "redis",
        address: address(&config.target),
        up: false,
        connect_ms: None,
        ping_ms: None,
        error: None,
    };
    let tls = match &config.target {
        UpstreamTarget::Tls { .. } => match tls::upstream_client_config(config, profile) {
            Ok(tls) => Some(tls),
            Err(e) => {
                health.error = Some(e.to_string());
                return health;
            }
        },
        _ => None,
    };
    let connector = match Connector::new(config, tls) {
        Ok(connector) => connector,
        Err(e) => {
            health.error = Some(e);
            return health;
        }
    };
    let started = Instant::now();
    let (mut stream, handshake) = match connector.connect().await {
        Ok(connected) => connected,
        Err(e) => {
            health.error = Some(e);
            return health;
        }
    };
    health.connect_ms = Some(millis(started.elapsed()));
    let started = Instant::now();
    match tokio::time::timeout(
        config.command_timeout,
        ping(&mut stream, handshake.protocol),
    )
    .await
    {
        Ok(Ok(())) => {
            health.ping_ms = Some(millis(started.elapsed()));
            health.up = true;
        }
        Ok(Err(e)) => health.error = Some(e),
        Err(_) => {
            health.error = Some(format!(
                "no PONG within {} ms (the backend's command_timeout_ms)",
                config.command_timeout.as_millis()
            ))
        }
    }
    health
}

/// One PING and its PONG.
async fn ping(stream: &mut BoxStream, protocol: Protocol) -> Result<(), String> {
    let mut out = BytesMut::new();
    encode_command(&mut out, &[Bytes::from_static(b"PING")]);
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let mut decoder = UpstreamDecoder::new(protocol);
    let mut buf = BytesMut::with_capacity(64);
    loop {
        if let Some((frame, _)) = decode_reply(&mut decoder, &mut buf)? {
            if let Some(err) = error_text(&frame) {
                return Err(format!("PING failed: {err}"));
            }
            return match text_of(&frame) {
                Some(b"PONG") => Ok(()),
                _ => Err("PING was not answered with PONG".into()),
            };
        }
        if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("the upstream closed the connection after the handshake".into());
        }
    }
}

fn address(target: &UpstreamTarget) -> String {
    match target {
        UpstreamTarget::Tls { host, port, .. } | UpstreamTarget::PlainTcp { host, port } => {
            format!("{host}:{port}")
        }
        UpstreamTarget::Unix { path } => path.display().to_string(),
    }
}

/// Asks a running proxy's admin listener for `/readyz`.
async fn check_proxy(admin: Option<SocketAddr>) -> ProxyHealth {
    let mut health = ProxyHealth {
        admin: admin.map(|a| a.to_string()),
        state: ProxyState::NotChecked,
        status: None,
        latency_ms: None,
        readiness: None,
        error: None,
    };
    let Some(mut addr) = admin.filter(|a| a.port() != 0) else {
        return health;
    };
    // A wildcard listener answers on loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        });
    }
    let started = Instant::now();
    match tokio::time::timeout(READYZ_TIMEOUT, get_readyz(addr)).await {
        Err(_) => {
            health.state = ProxyState::Failed;
            health.error = Some(format!(
                "no answer from http://{addr}/readyz within {} ms",
                READYZ_TIMEOUT.as_millis()
            ));
        }
        Ok(Err(Probe::Refused)) => health.state = ProxyState::NotRunning,
        Ok(Err(Probe::Failed(e))) => {
            health.state = ProxyState::Failed;
            health.error = Some(format!("http://{addr}/readyz: {e}"));
        }
        Ok(Ok((status, body))) => {
            health.latency_ms = Some(millis(started.elapsed()));
            health.status = Some(status);
            health.readiness = serde_json::from_slice(&body).ok();
            health.state = match status {
                200 => ProxyState::Ready,
                503 => ProxyState::NotReady,
                _ => {
                    health.error = Some(format!(
                        "http://{addr}/readyz answered HTTP {status}: is another program on admin.listen?"
                    ));
                    ProxyState::Failed
                }
            };
        }
    }
    health
}

enum Probe {
    Refused,
    Failed(String),
}

async fn get_readyz(addr: SocketAddr) -> Result<(u16, Bytes), Probe> {
    let stream = TcpStream::connect(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            Probe::Refused
        } else {
            Probe::Failed(e.to_string())
        }
    })?;
    let failed = |e: hyper::Error| Probe::Failed(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failed)?;
    let request = Request::get("/readyz")
        .header(header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .expect("a static request is valid");
    let exchange = async {
        let response = sender.send_request(request).await.map_err(failed)?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(failed)?;
        Ok((status, body.to_bytes()))
    };
    // The connection task drives the exchange; it ends when the proxy closes.
    let (result, _) = tokio::join!(exchange, connection);
    result
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

/// The human-readable report: one row per check, then the verdict.
fn table(report: &Report) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2} ms"));
    let mut rows = vec![[
        "CHECK".to_string(),
        "KIND".into(),
        "ADDRESS".into(),
        "STATUS".into(),
        "CONNECT".into(),
        "ROUND TRIP".into(),
        "DETAIL".into(),
    ]];
    for b in &report.backends {
        rows.push([
            format!("backend {}", b.name),
            b.kind.into(),
            b.address.clone(),
            if b.up { "up" } else { "DOWN" }.into(),
            ms(b.connect_ms),
            ms(b.ping_ms),
            b.error.clone().unwrap_or_default(),
        ]);
    }
    let p = &report.proxy;
    let (status, detail) = match p.state {
        ProxyState::NotChecked => ("not checked", "admin.listen is not set".to_string()),
        ProxyState::NotRunning => ("not running", "nothing listens on admin.listen".to_string()),
        ProxyState::Ready => ("ready", routes_detail(p.readiness.as_ref())),
        ProxyState::NotReady => ("NOT READY", routes_detail(p.readiness.as_ref())),
        ProxyState::Failed => ("FAILED", p.error.clone().unwrap_or_default()),
    };
    rows.push([
        "proxy".into(),
        "admin /readyz".into(),
        p.admin.clone().unwrap_or_else(|| "-".into()),
        status.into(),
        "-".into(),
        ms(p.latency_ms),
        detail,
    ]);
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(if report.healthy {
        "healthy\n"
    } else {
        "UNHEALTHY\n"
    });
    out
}

/// `route "" → upstream (redis): connected, circuit closed; listeners accepting`.
fn routes_detail(readiness: Option<&serde_json::Value>) -> String {
    let Some(r) = readiness else {
        return String::new();
    };
    let mut parts = Vec::new();
    for route in r["routes"].as_array().into_iter().flatten() {
        parts.push(format!(
            "route {:?} → {} ({}): {}, circuit {}",
            route["prefix"].as_str().unwrap_or_default(),
            route["backend"].as_str().unwrap_or_default(),
            route["kind"].as_str().unwrap_or_default(),
            if route["connected"].as_bool() == Some(true) {
                "connected"
            } else {
                "disconnected"
            },
            route["circuit"].as_str().unwrap_or_default(),
        ));
    }
    let listeners = r["listeners"].as_array().into_iter().flatten();
    let closed = listeners
        .filter(|l| l["accepting"].as_bool() != Some(true))
        .count();
    parts.push(if closed == 0 {
        "listeners accepting".to_string()
    } else {
        format!("{closed} listener(s) not accepting")
    });
    parts.join("; ")
}
