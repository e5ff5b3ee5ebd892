//! `sealcache serve`: load and validate the configuration, then run the proxy
//! and its admin listener until SIGTERM or SIGINT, then shut down gracefully.

use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::{ConfigArgs, EXIT_CONFIG, EXIT_FAILURE};
use crate::admin::AdminServer;
use crate::backend::Backend;
use crate::backend::dynamodb::{DynamoBackend, DynamoError};
use crate::backend::fallback::FallbackBackend;
use crate::backend::memory::{MemoryBackend, MemoryConfig};
use crate::backend::redis::RedisBackend;
use crate::backend::router::{Route, Router};
use crate::config::{self, BackendSettings, UpstreamTarget};
use crate::crypto::Sealer;
use crate::keys::{KeyRing, MasterKey};
use crate::server::Server;
use crate::session::Context;
use crate::{logging, tls};

/// Descriptors reserved for a DynamoDB backend's HTTPS connections.
const DYNAMODB_CONNECTIONS: usize = 256;

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
            BackendSettings::Memory(_) | BackendSettings::DynamoDb(_) => None,
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
            // The SDK's HTTPS pool: about one per request in flight.
            BackendSettings::DynamoDb(_) => DYNAMODB_CONNECTIONS,
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
        let mut memories = Vec::with_capacity(config.backends.len());
        for (backend, tls) in config.backends.iter().zip(upstream_tls) {
            let mut memory = None;
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
                BackendSettings::Memory(settings) => {
                    let started = MemoryBackend::start(
                        &backend.name,
                        MemoryConfig {
                            max_memory: settings.max_memory,
                            databases: settings.databases,
                        },
                        settings.command_timeout,
                    );
                    memory = Some(started.clone());
                    started
                }
                BackendSettings::DynamoDb(dynamo) => {
                    match DynamoBackend::start((**dynamo).clone()).await {
                        Ok(b) => b,
                        Err(e) => {
                            // The message names the backend and the table.
                            eprintln!("error: {e}");
                            let code = match e {
                                DynamoError::TableMissing { .. } | DynamoError::Schema { .. } => {
                                    EXIT_CONFIG
                                }
                                _ => EXIT_FAILURE,
                            };
                            return ExitCode::from(code);
                        }
                    }
                }
            });
            memories.push(memory);
        }
        with_fallbacks(&config, &mut backends, &memories);
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
        let ctx = Arc::new(Context::new(config, sealer, backends, router));
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

/// Puts the fallback layer in front of each backend whose routes have a
/// fallback (validation made those routes agree on it): sessions then reach
/// that backend through its circuit breaker.
fn with_fallbacks(
    config: &config::Config,
    backends: &mut [Arc<dyn Backend>],
    memories: &[Option<Arc<MemoryBackend>>],
) {
    let mut wrapped = Vec::new();
    for route in &config.routes {
        let Some(fallback) = route.fallback else {
            continue;
        };
        if wrapped.contains(&route.backend) {
            continue;
        }
        wrapped.push(route.backend);
        let Some(memory) = memories[fallback.backend].clone() else {
            unreachable!("validation accepts only a memory backend as a fallback");
        };
        let prefixes: Vec<String> = config
            .routes
            .iter()
            .filter(|r| r.backend == route.backend)
            .map(|r| format!("{:?}", r.prefix))
            .collect();
        backends[route.backend] = FallbackBackend::start(
            backends[route.backend].clone(),
            memory,
            &fallback,
            prefixes.join(", "),
        );
    }
}

/// At shutdown, after every session has ended (no write can be added): logs,
/// per route with a fallback, the journal entries not replayed to its
/// backend, so that none is ever dropped silently.
fn report_unreplayed_journal(ctx: &Context) {
    let mut reported = Vec::new();
    for route in ctx.router.routes() {
        let backend = &ctx.backends[route.backend];
        let Some(circuit) = backend.circuit() else {
            continue;
        };
        if reported.contains(&route.backend) {
            continue;
        }
        reported.push(route.backend);
        let routes: Vec<String> = ctx
            .router
            .routes()
            .iter()
            .filter(|r| r.backend == route.backend)
            .map(|r| r.label())
            .collect();
        if circuit.journal_entries == 0 {
            tracing::info!(
                backend = %backend.name(),
                routes = %routes.join(", "),
                "write journal empty at shutdown: every write accepted during an outage reached the backend"
            );
        } else {
            let oldest_secs_ago = circuit
                .journal_oldest
                .and_then(|t| t.elapsed().ok())
                .map_or(0, |d| d.as_secs());
            tracing::warn!(
                backend = %backend.name(),
                routes = %routes.join(", "),
                unreplayed = circuit.journal_entries,
                dropped = circuit.journal_dropped,
                oldest_secs_ago,
                circuit = circuit.state.as_str(),
                "shutdown with journal entries not replayed: these writes, accepted while the backend was unavailable, never reached it"
            );
        }
    }
}
