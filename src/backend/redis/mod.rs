//! The Redis backend: a few multiplexed, pipelined lanes that reconnect with
//! exponential backoff and jitter, bounded budgets of dedicated ("pinned")
//! connections for transactions and for blocking commands, and one shared
//! Pub/Sub connection fanned out to every subscriber ([`pubsub`]).

mod conn;
pub mod connect;
pub mod decode;
pub mod pinned;
pub mod pubsub;
mod warm;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use connect::{BoxStream, Connector, Handshake};
pub use pinned::{PinnedLease, PinnedPool};
pub use pubsub::{PubSubHub, PubSubStats, RedisSubscriber};

use super::capability::BackendKind;
use super::{Backend, Connection, InfoField, Lane, Purpose, Request, rmw};
use crate::config::{OutputBufferLimit, UpstreamConfig};
use crate::error::ProxyError;

/// Shared state of the backend, visible to lanes, pinned connections and INFO.
pub struct Shared {
    /// The backend's configured name: what client-facing errors say (never
    /// the upstream's address).
    pub name: String,
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

/// Keys one read-modify-write may cover: every key costs a WATCH, a read
/// and a write in the same two round trips, so concurrent emulated commands
/// on different keys share them.
const RMW_GROUP: usize = 64;

pub struct RedisBackend {
    shared: Arc<Shared>,
    lanes: Vec<(Lane, Arc<LaneStatus>)>,
    pinned: Arc<PinnedPool>,
    pubsub: Arc<PubSubHub>,
    /// Connections kept WATCHing hot keys between their read-modify-writes.
    warm: Arc<warm::Warm>,
    db: u32,
    command_timeout: Duration,
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
        name: &str,
        config: &UpstreamConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Arc<Self>, String> {
        let shared = Arc::new(Shared {
            name: name.to_string(),
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
            warm: warm::Warm::start(config.max_pinned / 8),
            db: config.db,
            command_timeout: config.command_timeout,
        }))
    }

    pub fn pinned(&self) -> &Arc<PinnedPool> {
        &self.pinned
    }

    /// The Pub/Sub hub every subscribed client shares.
    pub fn pubsub(&self) -> &Arc<PubSubHub> {
        &self.pubsub
    }

    /// `host:port` or the socket path, for logs and operators (never clients).
    pub fn address(&self) -> &str {
        self.shared.connector.label()
    }

    /// Whether any lane is connected (for readiness).
    pub fn is_connected(&self) -> bool {
        self.lanes
            .iter()
            .any(|(_, s)| s.connected.load(Ordering::Acquire))
    }
}

impl Backend for RedisBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Redis
    }

    fn name(&self) -> &str {
        &self.shared.name
    }

    fn takes_client_bytes(&self) -> bool {
        true
    }

    fn lane(&self, client_id: u64) -> Lane {
        self.lanes[(client_id % self.lanes.len() as u64) as usize]
            .0
            .clone()
    }

    fn connection(
        &self,
        purpose: Purpose,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<Box<dyn Connection>, ProxyError>> {
        Box::pin(async move {
            let lease = self.pinned.acquire(purpose, deadline).await?;
            Ok(Box::new(lease) as Box<dyn Connection>)
        })
    }

    fn acquire_timeout(&self) -> Duration {
        self.pinned.wait()
    }

    fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    fn default_db(&self) -> u32 {
        self.db
    }

    fn subscriber(
        &self,
        client_id: u64,
        limit: OutputBufferLimit,
        overflow: CancellationToken,
    ) -> Result<Box<dyn super::pubsub::Subscriber>, ProxyError> {
        Ok(Box::new(self.pubsub.subscriber(client_id, limit, overflow)))
    }

    fn rmw_group(&self) -> usize {
        RMW_GROUP
    }

    fn read_modify_write<'a>(
        &'a self,
        db: u32,
        op: &'a mut dyn rmw::Rmw,
    ) -> BoxFuture<'a, Result<(), ProxyError>> {
        Box::pin(async move {
            let reads = op.reads().to_vec();
            // A key written again and again keeps a connection WATCHing it.
            let single = warm::single_key(&reads);
            let hot = single.is_some_and(|key| self.warm.hot(db, key));
            let kept = single.and_then(|_| self.warm.take(db, &reads));
            let (mut lease, known) = match kept {
                Some((lease, snapshot)) => (lease, Some(snapshot)),
                None => {
                    // Waiting in line for a connection is bounded like any other wait.
                    let deadline = op.deadline().min(Instant::now() + self.pinned.wait());
                    (self.pinned.acquire(Purpose::Pinned, deadline).await?, None)
                }
            };
            let attempt = rmw::Attempt {
                backend: self.name(),
                timeout: self.command_timeout,
                db,
                always_exec: false,
                read_again: hot,
            };
            if let Some(snapshot) = attempt.until_committed(&mut lease, op, known).await? {
                self.warm.put(db, reads, lease, snapshot);
            }
            Ok(())
        })
    }

    fn publish_receivers(&self, channel: &[u8], shard: bool, counted: i64) -> i64 {
        self.pubsub.receivers(channel, shard, counted)
    }

    fn subscribers(&self, channel: &[u8], shard: bool, counted: i64) -> i64 {
        self.pubsub.subscribers(channel, shard, counted)
    }

    fn server_version(&self) -> Option<String> {
        self.shared
            .server_version
            .lock()
            .expect("version lock")
            .clone()
    }

    fn is_ready(&self) -> bool {
        self.is_connected()
    }

    fn info(&self) -> Vec<InfoField> {
        let usage = self.pinned.usage();
        let hub = self.pubsub.stats();
        let lanes_connected = self
            .lanes
            .iter()
            .filter(|(_, s)| s.connected.load(Ordering::Acquire))
            .count();
        vec![
            ("address", self.address().to_string()),
            ("pool_size", self.lanes.len().to_string()),
            ("pool_connected", lanes_connected.to_string()),
            ("pinned_in_use", usage.pinned_in_use.to_string()),
            ("pinned_idle", usage.idle.to_string()),
            (
                "pinned_limit",
                self.pinned.limit(Purpose::Pinned).to_string(),
            ),
            ("pinned_waiting", usage.pinned_waiting.to_string()),
            ("pinned_warm", self.warm.kept().to_string()),
            ("blocking_in_use", usage.blocking_in_use.to_string()),
            (
                "blocking_limit",
                self.pinned.limit(Purpose::Blocking).to_string(),
            ),
            ("blocking_waiting", usage.blocking_waiting.to_string()),
            ("pubsub_connected", u8::from(hub.connected).to_string()),
            ("pubsub_clients", hub.clients.to_string()),
            ("pubsub_channels", hub.channels.to_string()),
            ("pubsub_patterns", hub.patterns.to_string()),
            ("pubsub_shard_channels", hub.shard_channels.to_string()),
            (
                "connections",
                (lanes_connected
                    + usage.pinned_in_use
                    + usage.blocking_in_use
                    + usage.idle
                    + usize::from(hub.connected))
                .to_string(),
            ),
            (
                "connections_opened",
                self.shared
                    .connections_opened
                    .load(Ordering::Relaxed)
                    .to_string(),
            ),
        ]
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
    let name = shared.name.clone();
    let mut delays = backoff();
    let mut was_connected = true;
    loop {
        let reason = match shared.connect().await {
            Ok((stream, handshake)) => {
                tracing::info!(backend = %name, upstream = %label, lane = index, protocol = ?handshake.protocol, "upstream connected");
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
                    &name,
                    &alive,
                )
                .await;
                status.connected.store(false, Ordering::Release);
                match ended {
                    conn::Ended::Closed => return,
                    conn::Ended::Failed(reason) => {
                        tracing::warn!(backend = %name, upstream = %label, lane = index, %reason, "upstream connection lost; reconnecting");
                        reason
                    }
                }
            }
            Err(reason) => {
                if was_connected {
                    tracing::warn!(backend = %name, upstream = %label, lane = index, %reason, "cannot connect to the upstream; retrying with backoff");
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
                    Some(request) => request.fail(ProxyError::UpstreamUnavailable { upstream: name.clone(), reason: reason.clone() }),
                },
            }
        }
    }
}
