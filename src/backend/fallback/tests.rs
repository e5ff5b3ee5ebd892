//! The layer over a primary that can be taken down at will: a memory store
//! behind a switch, whose dedicated connections can also die after a given
//! number of commands (a backend that fails again in the middle of a replay).
//! The fault tests against redis-server are in `tests/it/resilience.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{CircuitState, CircuitStatus, FallbackBackend};
use crate::backend::memory::{MemoryBackend, MemoryConfig};
use crate::backend::{
    Backend, BackendKind, Capabilities, ConnState, Connection, InfoField, Lane, Purpose, Request,
    await_reply, rmw,
};
use crate::commands::CommandSpec;
use crate::config::{BreakerConfig, FallbackConfig, OutputBufferLimit};
use crate::error::ProxyError;
use crate::protocol::Frame;

/// A memory store that answers like an unreachable backend while `down`.
struct Flaky {
    store: Arc<MemoryBackend>,
    down: Arc<AtomicBool>,
    /// Commands dedicated connections may still run before the backend goes
    /// down; negative: no limit.
    budget: Arc<AtomicI64>,
    lane: Lane,
}

fn unavailable() -> ProxyError {
    ProxyError::UpstreamUnavailable {
        upstream: "main".into(),
        reason: "connection refused".into(),
    }
}

impl Flaky {
    fn start() -> Arc<Flaky> {
        let store = MemoryBackend::start("main", MemoryConfig::default(), Duration::from_secs(1));
        let down = Arc::new(AtomicBool::new(false));
        let (lane, mut requests) = mpsc::unbounded_channel::<Request>();
        let (inner, is_down) = (store.lane(0), down.clone());
        tokio::spawn(async move {
            while let Some(request) = requests.recv().await {
                if is_down.load(Ordering::Acquire) {
                    request.fail(unavailable());
                } else {
                    let _ = inner.send(request);
                }
            }
        });
        Arc::new(Flaky {
            store,
            down,
            budget: Arc::new(AtomicI64::new(-1)),
            lane,
        })
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Release);
    }

    async fn get(&self, key: &str) -> Frame {
        let args = [
            Bytes::from_static(b"GET"),
            Bytes::copy_from_slice(key.as_bytes()),
        ];
        self.store.store().execute(0, &args).await
    }
}

/// A dedicated connection that dies (and takes the backend down) when the
/// budget runs out.
struct FlakyConnection {
    inner: Box<dyn Connection>,
    down: Arc<AtomicBool>,
    budget: Arc<AtomicI64>,
}

impl Connection for FlakyConnection {
    fn id(&self) -> u64 {
        self.inner.id()
    }

    fn send(&mut self, request: Request) -> Result<(), ProxyError> {
        if self.budget.fetch_sub(1, Ordering::AcqRel) == 0 {
            self.down.store(true, Ordering::Release);
        }
        if self.down.load(Ordering::Acquire) {
            request.fail(ProxyError::UpstreamLost {
                upstream: "main".into(),
                reason: "the connection closed".into(),
            });
            return Ok(());
        }
        self.inner.send(request)
    }

    fn state(&self) -> ConnState {
        self.inner.state()
    }

    fn set_state(&mut self, state: ConnState) {
        self.inner.set_state(state);
    }

    fn is_alive(&self) -> bool {
        self.inner.is_alive()
    }
}

impl Backend for Flaky {
    fn kind(&self) -> BackendKind {
        BackendKind::Redis
    }

    fn name(&self) -> &str {
        "main"
    }

    fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }

    fn serves(&self, spec: &CommandSpec) -> bool {
        self.store.serves(spec)
    }

    fn lane(&self, _client_id: u64) -> Lane {
        self.lane.clone()
    }

    fn connection(
        &self,
        purpose: Purpose,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<Box<dyn Connection>, ProxyError>> {
        Box::pin(async move {
            if self.down.load(Ordering::Acquire) {
                return Err(unavailable());
            }
            Ok(Box::new(FlakyConnection {
                inner: self.store.connection(purpose, deadline).await?,
                down: self.down.clone(),
                budget: self.budget.clone(),
            }) as Box<dyn Connection>)
        })
    }

    fn acquire_timeout(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn command_timeout(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn default_db(&self) -> u32 {
        0
    }

    fn subscriber(
        &self,
        client_id: u64,
        limit: OutputBufferLimit,
        overflow: CancellationToken,
    ) -> Result<Box<dyn crate::backend::pubsub::Subscriber>, ProxyError> {
        self.store.subscriber(client_id, limit, overflow)
    }

    fn read_modify_write<'a>(
        &'a self,
        db: u32,
        op: &'a mut dyn rmw::Rmw,
    ) -> BoxFuture<'a, Result<(), ProxyError>> {
        Box::pin(async move {
            if self.down.load(Ordering::Acquire) {
                return Err(unavailable());
            }
            self.store.read_modify_write(db, op).await
        })
    }

    fn is_ready(&self) -> bool {
        !self.down.load(Ordering::Acquire)
    }

    fn info(&self) -> Vec<InfoField> {
        Vec::new()
    }
}

fn layer(
    primary: &Arc<Flaky>,
    journal_max_entries: usize,
) -> (Arc<FallbackBackend>, Arc<MemoryBackend>) {
    let spare = MemoryBackend::start("spare", MemoryConfig::default(), Duration::from_secs(1));
    let config = FallbackConfig {
        backend: 1,
        journal_max_entries,
        breaker: BreakerConfig {
            failures: 3,
            window: Duration::from_secs(10),
            probe_interval: Duration::from_millis(10),
        },
    };
    let layer = FallbackBackend::start(primary.clone(), spare.clone(), &config, "\"\"".into());
    (layer, spare)
}

async fn call(lane: &Lane, words: &[&str]) -> Result<Frame, ProxyError> {
    let args = words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    let (request, rx) = Request::new(args, 0);
    lane.send(request).expect("lane open");
    let timeout = Duration::from_secs(10);
    let deadline = Instant::now() + timeout;
    await_reply(rx, Some(deadline), "layer", timeout)
        .await
        .map(|r| r.frame)
}

fn bulk(text: &str) -> Frame {
    crate::protocol::reply::bulk(Bytes::copy_from_slice(text.as_bytes()))
}

/// Polls the layer's circuit until `done` holds (10 s at most).
async fn until(layer: &FallbackBackend, done: impl Fn(&CircuitStatus) -> bool) -> CircuitStatus {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let status = layer.circuit().expect("the layer has a circuit");
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < end, "gave up waiting; last: {status:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_write_the_backend_loses_lands_on_the_fallback_and_reaches_the_backend_in_order() {
    let primary = Flaky::start();
    let (layer, spare) = layer(&primary, 1000);
    let lane = layer.lane(7);
    assert_eq!(
        call(&lane, &["SET", "k", "before"]).await.unwrap(),
        crate::protocol::reply::ok()
    );

    primary.set_down(true);
    // No error for the client, and the circuit opens on the first lost write.
    assert_eq!(
        call(&lane, &["SET", "k", "one"]).await.unwrap(),
        crate::protocol::reply::ok()
    );
    let open = layer.circuit().unwrap();
    assert_eq!(
        (open.state, open.retried, open.journal_entries),
        (CircuitState::Open, 1, 1)
    );
    call(&lane, &["SET", "k", "two"]).await.unwrap();
    call(&lane, &["RPUSH", "list", "a"]).await.unwrap();
    assert_eq!(call(&lane, &["GET", "k"]).await.unwrap(), bulk("two"));
    // A pop would take from a value only the backend has.
    let pop = call(&lane, &["LPOP", "list"])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        pop.contains("LPOP cannot be served by its fallback 'spare'"),
        "{pop}"
    );
    // Reads of what the outage did not write are misses; nothing is journaled for them.
    assert_eq!(call(&lane, &["GET", "other"]).await.unwrap(), Frame::Null);

    primary.set_down(false);
    let closed = until(&layer, |s| s.state == CircuitState::Closed).await;
    assert_eq!(
        (closed.replayed, closed.journal_entries),
        (3, 0),
        "{closed:?}"
    );
    assert_eq!(primary.get("k").await, bulk("two"), "replayed in order");
    // The fallback starts the next outage empty.
    assert_eq!(spare.store().stats().keys.iter().sum::<u64>(), 0);
    assert_eq!(call(&lane, &["GET", "k"]).await.unwrap(), bulk("two"));
}

#[tokio::test]
async fn a_replay_cut_short_keeps_what_is_left_and_finishes_at_the_next_probe() {
    let primary = Flaky::start();
    let (layer, _spare) = layer(&primary, 10_000);
    let lane = layer.lane(1);
    primary.set_down(true);
    for i in 0..600 {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        call(&lane, &["SET", &key, &value]).await.unwrap();
    }
    // The backend comes back, takes the first batch of the replay (256
    // entries) and part of the second, and dies again.
    primary.budget.store(300, Ordering::Release);
    primary.set_down(false);
    let cut = until(&layer, |s| s.replay_failures == 1).await;
    assert_eq!(cut.state, CircuitState::Open);
    assert_eq!((cut.replayed, cut.journal_entries), (256, 344), "{cut:?}");
    // A write while it is down again goes behind what is left.
    call(&lane, &["SET", "k0", "newest"]).await.unwrap();

    primary.budget.store(-1, Ordering::Release);
    primary.set_down(false);
    let closed = until(&layer, |s| s.state == CircuitState::Closed).await;
    assert_eq!(closed.journal_entries, 0, "{closed:?}");
    assert_eq!(closed.replayed, 601);
    assert_eq!(primary.get("k0").await, bulk("newest"));
    assert_eq!(primary.get("k599").await, bulk("v599"));
    assert_eq!(closed.opened, 1, "one outage, one opening");
}
