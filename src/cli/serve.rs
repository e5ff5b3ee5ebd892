//! `sealcache serve`: load and validate the configuration, then run the proxy
//! and its admin listener until SIGTERM or SIGINT, then shut down gracefully.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::{ConfigArgs, EXIT_CONFIG, EXIT_FAILURE};
use crate::admin::AdminServer;
use crate::auth::Authenticator;
use crate::backend::Backend;
use crate::backend::memory::{MemoryBackend, MemoryConfig};
use crate::backend::redis::RedisBackend;
use crate::backend::router::{Route, Router};
use crate::config::{self, BackendSettings, UpstreamTarget};
use crate::crypto::Sealer;
use crate::keys::{KeyRing, MasterKey};
use crate::server::Server;
use crate::session::{Context, Shares, Stats};
use crate::values::ValueCrypt;
use crate::{logging, tls};

pub fn run(args: ConfigArgs) -> ExitCode {
    // Everything that can be wrong with the configuration fails here, before anything listens.
    let config = match super::load_config(&args) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let server_tls = match tls::server_config(&config.tls, config.profile) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Every Redis backend's TLS client configuration, checked before anything listens.
    let mut upstream_tls = Vec::with_capacity(config.backends.len());
    for backend in &config.backends {
        let tls = match &backend.settings {
            BackendSettings::Redis(upstream) => match &upstream.target {
                UpstreamTarget::Tls { .. } => {
                    match tls::upstream_client_config(upstream, config.profile) {
                        Ok(tls) => Some(tls),
                        Err(e) => {
                            eprintln!("error: backend '{}': {e}", backend.name);
                            return ExitCode::from(EXIT_CONFIG);
                        }
                    }
                }
                _ => None,
            },
            BackendSettings::Memory(_) => None,
        };
        upstream_tls.push(tls);
    }
    let mut upstream_tls = Vec::with_capacity(config.backends.len());
    for backend in &config.backends {
        let tls = match &backend.settings {
            BackendSettings::Redis(upstream) => match &upstream.target {
                UpstreamTarget::Tls { .. } => {
                    match tls::upstream_client_config(upstream, config.profile) {
                        Ok(tls) => Some(tls),
                        Err(e) => {
                            eprintln!("error: backend '{}': {e}", backend.name);
                            return ExitCode::from(EXIT_CONFIG);
                        }
                    }
                }
                _ => None,
            },
            BackendSettings::Memory(_) => None,
        };
        upstream_tls.push(tls);
    }
    let sealer = match MasterKey::load(
        |name| std::env::var(name).ok(),
        config.encryption.master_key_file.as_deref(),
    ) {
        Ok((master, _origin)) => Sealer::new(&KeyRing::from_master(&master)),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    logging::init(&config.logging);
    for warning in config::warnings(&config) {
        tracing::warn!("{warning}");
    }
    let upstream_connections = config
        .backends
        .iter()
        .map(|b| match &b.settings {
            BackendSettings::Redis(up) => up.pool_size + up.max_pinned + up.max_blocking,
            BackendSettings::Memory(_) => 0,
        })
        .sum();
    crate::server::raise_open_file_limit(config.limits.max_clients, upstream_connections);
    let runtime = match super::build_runtime(
        tokio::runtime::Builder::new_multi_thread().worker_threads(config.limits.worker_threads),
    ) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let signals = match Signals::install() {
            Ok(signals) => signals,
            Err(e) => {
                eprintln!("error: cannot install the SIGTERM/SIGINT handlers: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        let mut backends: Vec<Arc<dyn Backend>> = Vec::with_capacity(config.backends.len());
        for (backend, tls) in config.backends.iter().zip(upstream_tls) {
            backends.push(match &backend.settings {
                BackendSettings::Redis(upstream) => {
                    match RedisBackend::start(&backend.name, upstream, tls) {
                        Ok(b) => b,
                        Err(e) => {
                            eprintln!("error: backend '{}': {e}", backend.name);
                            return ExitCode::from(EXIT_CONFIG);
                        }
                    }
                }
                BackendSettings::Memory(memory) => MemoryBackend::start(
                    &backend.name,
                    MemoryConfig {
                        max_memory: memory.max_memory,
                        databases: memory.databases,
                    },
                    memory.command_timeout,
                ),
            });
        }
        let routes = config
            .routes
            .iter()
            .map(|r| Route {
                prefix: Bytes::from(r.prefix.clone()),
                backend: r.backend,
            })
            .collect();
        let router = match Router::new(routes) {
            Ok(router) => router,
            Err(e) => {
                eprintln!("error: routes: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let ctx = Arc::new(Context {
            auth: Authenticator::new(&config.auth),
            values: Arc::new(ValueCrypt::new(
                sealer,
                &config.encryption.namespace,
                config.encryption.on_decrypt_failure,
            )),
            backends,
            router,
            shares: Shares::new(&config),
            stats: Stats::default(),
            started: Instant::now(),
            config: Arc::new(config),
        });
        let server = match Server::bind(ctx.clone(), server_tls).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        let admin = match ctx.config.admin.listen {
            Some(addr) => match AdminServer::bind(addr).await {
                Ok(admin) => Some(admin),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_FAILURE);
                }
            },
            None => None,
        };
        let admin_addr = admin.as_ref().map(AdminServer::local_addr);
        if let Some(admin) = admin {
            admin.spawn(ctx.clone(), server.listening());
        }
        tracing::info!(
            listen.tcp = ?ctx.config.listen.tcp,
            listen.unix = ?ctx.config.listen.unix,
            backends = ?ctx.backends.iter().map(|b| b.name().to_string()).collect::<Vec<_>>(),
            admin.listen = ?admin_addr,
            profile = ?ctx.config.profile,
            "sealcache listening"
        );
        server.run(signals.recv()).await;
        report_unreplayed_journal(&ctx);
        ExitCode::SUCCESS
    })
}

/// SIGTERM and SIGINT. Installed before anything listens, so that a signal
/// arriving during startup shuts down gracefully instead of killing the
/// process (the default action).
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(mut self) {
        let name = tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutdown requested");
    }
}

/// Shutdown hook for the write journal (issue 10, criterion 7): once routes
/// keep a journal of writes accepted during an outage, log here, per route,
/// how many entries were not yet replayed to their backend, so that none is
/// ever dropped silently. Called after every session has ended, when no
/// write can be added. There is no journal yet, so nothing to report.
fn report_unreplayed_journal(_ctx: &Context) {}
