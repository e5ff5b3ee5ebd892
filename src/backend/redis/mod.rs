//! The Redis backend: a few multiplexed, pipelined lanes that reconnect with
//! exponential backoff and jitter, bounded budgets of dedicated ("pinned")
//! connections for transactions and for blocking commands, and one shared
//! Pub/Sub connection fanned out to every subscriber ([`pubsub`]).

mod conn;
pub mod connect;
pub mod decode;
pub mod pinned;
pub mod pubsub;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::mpsc;

pub use connect::{BoxStream, Connector, Handshake};
pub use pinned::{LeaseState, PinnedLease, PinnedPool, Purpose};
pub use pubsub::{PubSubHub, PubSubStats, RedisSubscriber};

use super::{Backend, BackendStats, Lane, Request};
use crate::config::UpstreamConfig;
use crate::error::ProxyError;

/// Shared state of the backend, visible to lanes, pinned connections and INFO.
pub struct Shared {
    pub connector: Connector,
    pub connections_opened: AtomicU64,
    pub server_version: Mutex<Option<String>>,
}

impl Shared {
    /// Opens one connection and records what the server said about itself.
    pub async fn connect(&self) -> Result<(BoxStream, Handshake), String> {
        let (stream, handshake) = self.connector.connect().await?;
        self.connections_opened.fetch_add(1, Ordering::Relaxed);
        if let Some(v) = &handshake.version {
            *self.server_version.lock().expect("version lock") = Some(v.clone());
        }
        Ok((stream, handshake))
    }
}

pub struct RedisBackend {
    shared: Arc<Shared>,
    lanes: Vec<(Lane, Arc<LaneStatus>)>,
    pinned: Arc<PinnedPool>,
    pubsub: Arc<PubSubHub>,
}

#[derive(Default)]
pub struct LaneStatus {
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl RedisBackend {
    /// Starts the lanes (they connect in the background), the pinned pool and
    /// the Pub/Sub hub (it connects when a client first subscribes).
    pub fn start(
        config: &UpstreamConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Arc<Self>, String> {
        let shared = Arc::new(Shared {
            connector: Connector::new(config, tls)?,
            connections_opened: AtomicU64::new(0),
            server_version: Mutex::new(None),
        });
        let lanes = (0..config.pool_size.max(1))
            .map(|index| {
                let (tx, rx) = mpsc::unbounded_channel();
                let status = Arc::new(LaneStatus::default());
                tokio::spawn(supervise_lane(index, shared.clone(), rx, status.clone()));
                (tx, status)
            })
            .collect();
        let pinned = PinnedPool::new(
            shared.clone(),
            config.max_pinned,
            config.max_blocking,
            config.acquire_timeout,
        );
        let pubsub = PubSubHub::start(shared.clone());
        Ok(Arc::new(RedisBackend {
            shared,
            lanes,
            pinned,
            pubsub,
        }))
    }

    pub fn pinned(&self) -> &Arc<PinnedPool> {
        &self.pinned
    }

    /// The Pub/Sub hub every subscribed client shares.
    pub fn pubsub(&self) -> &Arc<PubSubHub> {
        &self.pubsub
    }

    pub fn server_version(&self) -> Option<String> {
        self.shared
            .server_version
            .lock()
            .expect("version lock")
            .clone()
    }

    /// Whether any lane is connected (for readiness).
    pub fn is_connected(&self) -> bool {
        self.lanes
            .iter()
            .any(|(_, s)| s.connected.load(Ordering::Acquire))
    }
}

impl Backend for RedisBackend {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn label(&self) -> &str {
        self.shared.connector.label()
    }

    fn lane(&self, client_id: u64) -> Lane {
        self.lanes[(client_id % self.lanes.len() as u64) as usize]
            .0
            .clone()
    }

    fn stats(&self) -> BackendStats {
        let usage = self.pinned.usage();
        BackendStats {
            lanes: self.lanes.len(),
            lanes_connected: self
                .lanes
                .iter()
                .filter(|(_, s)| s.connected.load(Ordering::Acquire))
                .count(),
            pinned_in_use: usage.pinned_in_use,
            pinned_idle: usage.idle,
            pinned_limit: self.pinned.limit(Purpose::Pinned),
            pinned_waiting: usage.pinned_waiting,
            blocking_in_use: usage.blocking_in_use,
            blocking_waiting: usage.blocking_waiting,
            blocking_limit: self.pinned.limit(Purpose::Blocking),
            connections_opened: self.shared.connections_opened.load(Ordering::Relaxed),
            server_version: self.server_version(),
        }
    }
}

fn backoff() -> impl Iterator<Item = std::time::Duration> {
    ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(50))
        .with_max_delay(std::time::Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Keeps one lane connected. While the upstream is down, requests fail at once
/// with the last connection error instead of queueing.
async fn supervise_lane(
    index: usize,
    shared: Arc<Shared>,
    mut requests: mpsc::UnboundedReceiver<Request>,
    status: Arc<LaneStatus>,
) {
    let label = shared.connector.label().to_string();
    let mut delays = backoff();
    let mut was_connected = true;
    loop {
        let reason = match shared.connect().await {
            Ok((stream, handshake)) => {
                tracing::info!(upstream = %label, lane = index, protocol = ?handshake.protocol, "upstream connected");
                status.connected.store(true, Ordering::Release);
                *status.last_error.lock().expect("lane lock") = None;
                delays = backoff();
                was_connected = true;
                let alive = AtomicBool::new(false);
                let ended = conn::run(
                    stream,
                    handshake,
                    shared.connector.db,
                    &mut requests,
                    &label,
                    &alive,
                )
                .await;
                status.connected.store(false, Ordering::Release);
                match ended {
                    conn::Ended::Closed => return,
                    conn::Ended::Failed(reason) => {
                        tracing::warn!(upstream = %label, lane = index, %reason, "upstream connection lost; reconnecting");
                        reason
                    }
                }
            }
            Err(reason) => {
                if was_connected {
                    tracing::warn!(upstream = %label, lane = index, %reason, "cannot connect to the upstream; retrying with backoff");
                    was_connected = false;
                }
                reason
            }
        };
        *status.last_error.lock().expect("lane lock") = Some(reason.clone());
        let delay = delays.next().unwrap_or(std::time::Duration::from_secs(5));
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                request = requests.recv() => match request {
                    None => return,
                    Some(request) => request.fail(ProxyError::UpstreamUnavailable { upstream: label.clone(), reason: reason.clone() }),
                },
            }
        }
    }
}
