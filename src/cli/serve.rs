//! `sealcache serve`: load and validate the configuration, then run the proxy.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use super::{ConfigArgs, EXIT_CONFIG, EXIT_FAILURE};
use crate::auth::Authenticator;
use crate::backend::redis::RedisBackend;
use crate::config::{self, UpstreamTarget};
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
    let upstream_tls = match &config.upstream.target {
        UpstreamTarget::Tls { .. } => {
            match tls::upstream_client_config(&config.upstream, config.profile) {
                Ok(tls) => Some(tls),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
        }
        _ => None,
    };
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.limits.worker_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    runtime.block_on(async move {
        let backend = match RedisBackend::start(&config.upstream, upstream_tls) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
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
            backend,
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
        tracing::info!(
            listen.tcp = ?ctx.config.listen.tcp,
            listen.unix = ?ctx.config.listen.unix,
            upstream = %ctx.upstream_label(),
            profile = ?ctx.config.profile,
            "sealcache listening"
        );
        server.run(shutdown_signal()).await;
        ExitCode::SUCCESS
    })
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
