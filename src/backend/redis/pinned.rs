//! Dedicated upstream connections. MULTI/WATCH, emulated commands and
//! blocking commands hold connection state, so a client gets one to itself
//! for as long as that state lives; afterwards a clean connection goes back to
//! an idle list, so a client doing hundreds of transactions a second reuses a
//! few connections. (Pub/Sub shares one connection instead: [`super::pubsub`].)
//!
//! Two budgets: `upstream.max_pinned` for transactions and emulated commands,
//! and `upstream.max_blocking` for blocking commands, so clients waiting in
//! BLPOP never starve the others. When a budget is spent, a command waits in
//! line for a connection (first come, first served: tokio's semaphore is
//! fair) until its deadline.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

use super::{Shared, conn};
use crate::backend::{ConnState, Connection, Lane, Purpose, Request};
use crate::error::ProxyError;

struct PinnedConn {
    lane: Lane,
    alive: Arc<AtomicBool>,
    /// Tells this connection from every other (a session fences when its
    /// commands move between connections).
    id: u64,
}

struct Budget {
    permits: Arc<Semaphore>,
    limit: usize,
    /// Commands waiting in line now (INFO shows it).
    waiting: AtomicUsize,
}

/// Counts a command in line until it leaves it (served, timed out or dropped).
struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Budget {
    fn new(limit: usize) -> Self {
        Budget {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            waiting: AtomicUsize::new(0),
        }
    }

    fn in_use(&self) -> usize {
        self.limit - self.permits.available_permits()
    }
}

pub struct PinnedPool {
    shared: Arc<Shared>,
    idle: Mutex<Vec<PinnedConn>>,
    pinned: Budget,
    blocking: Budget,
    /// How long a command waits in line by default (`upstream.acquire_timeout_ms`).
    wait: std::time::Duration,
    next_id: AtomicU64,
}

/// Connection counts for INFO.
#[derive(Debug, Clone, Copy, Default)]
pub struct PinnedUsage {
    pub pinned_in_use: usize,
    pub pinned_waiting: usize,
    pub blocking_in_use: usize,
    pub blocking_waiting: usize,
    pub idle: usize,
}

impl PinnedPool {
    pub fn new(
        shared: Arc<Shared>,
        max_pinned: usize,
        max_blocking: usize,
        wait: std::time::Duration,
    ) -> Arc<Self> {
        Arc::new(PinnedPool {
            shared,
            idle: Mutex::new(Vec::new()),
            pinned: Budget::new(max_pinned),
            blocking: Budget::new(max_blocking),
            wait,
            next_id: AtomicU64::new(1),
        })
    }

    pub fn limit(&self, purpose: Purpose) -> usize {
        self.budget(purpose).limit
    }

    /// How long a command waits in line for a connection.
    pub fn wait(&self) -> std::time::Duration {
        self.wait
    }

    pub fn usage(&self) -> PinnedUsage {
        PinnedUsage {
            pinned_in_use: self.pinned.in_use(),
            pinned_waiting: self.pinned.waiting.load(Ordering::Relaxed),
            blocking_in_use: self.blocking.in_use(),
            blocking_waiting: self.blocking.waiting.load(Ordering::Relaxed),
            idle: self.idle.lock().expect("idle lock").len(),
        }
    }

    fn budget(&self, purpose: Purpose) -> &Budget {
        match purpose {
            Purpose::Pinned => &self.pinned,
            Purpose::Blocking => &self.blocking,
        }
    }

    /// A place in `purpose`'s budget, waiting in line until `deadline`.
    async fn permit(
        &self,
        purpose: Purpose,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, ProxyError> {
        let budget = self.budget(purpose);
        if let Ok(permit) = budget.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        budget.waiting.fetch_add(1, Ordering::Relaxed);
        let _in_line = InLine(&budget.waiting);
        match tokio::time::timeout_at(deadline, budget.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ProxyError::DedicatedBusy {
                limit: budget.limit,
                pool: purpose.pool_name(),
                key: match purpose {
                    Purpose::Pinned => "upstream.max_pinned",
                    Purpose::Blocking => "upstream.max_blocking",
                },
                waited: self.wait,
            }),
        }
    }

    fn unavailable(&self, reason: String) -> ProxyError {
        ProxyError::UpstreamUnavailable {
            upstream: self.shared.name.clone(),
            reason,
        }
    }

    /// A dedicated, pipelined connection from `purpose`'s budget: an idle one
    /// if any is still alive, else a new one. Waits in line until `deadline`
    /// when the budget is spent.
    pub async fn acquire(
        self: &Arc<Self>,
        purpose: Purpose,
        deadline: Instant,
    ) -> Result<PinnedLease, ProxyError> {
        let permit = self.permit(purpose, deadline).await?;
        let reused = {
            let mut idle = self.idle.lock().expect("idle lock");
            idle.retain(|c| c.alive.load(Ordering::Acquire));
            idle.pop()
        };
        let conn = match reused {
            Some(conn) => conn,
            None => {
                let (stream, handshake) = self
                    .shared
                    .connect()
                    .await
                    .map_err(|r| self.unavailable(r))?;
                let (lane, mut requests) = mpsc::unbounded_channel();
                let alive = Arc::new(AtomicBool::new(true));
                let task_alive = alive.clone();
                let shared = self.shared.clone();
                tokio::spawn(async move {
                    let label = shared.name.clone();
                    let ended = conn::run(
                        stream,
                        handshake,
                        shared.connector.db,
                        &mut requests,
                        &label,
                        &task_alive,
                    )
                    .await;
                    if let conn::Ended::Failed(reason) = ended {
                        tracing::debug!(upstream = %label, %reason, "dedicated upstream connection ended");
                    }
                });
                PinnedConn {
                    lane,
                    alive,
                    id: self.next_id.fetch_add(1, Ordering::Relaxed),
                }
            }
        };
        Ok(PinnedLease {
            conn: Some(conn),
            pool: self.clone(),
            _permit: permit,
            state: ConnState::Clean,
            db: 0,
        })
    }

    fn release(&self, conn: PinnedConn) {
        if conn.alive.load(Ordering::Acquire) {
            let mut idle = self.idle.lock().expect("idle lock");
            if idle.len() < self.pinned.limit {
                idle.push(conn);
            }
        }
    }
}

/// A dedicated connection held by one client. Dropping it cleans the
/// connection's state and returns it to the pool (or closes it if a blocking
/// command is still outstanding).
pub struct PinnedLease {
    conn: Option<PinnedConn>,
    pool: Arc<PinnedPool>,
    _permit: OwnedSemaphorePermit,
    pub state: ConnState,
    /// Database of the last command, so cleanup commands need no SELECT.
    db: u32,
}

impl PinnedLease {
    /// The connection's identity (stable while it lives, never reused).
    pub fn id(&self) -> u64 {
        self.conn.as_ref().map_or(0, |c| c.id)
    }

    pub fn is_alive(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| c.alive.load(Ordering::Acquire))
    }
}

impl Connection for PinnedLease {
    fn id(&self) -> u64 {
        PinnedLease::id(self)
    }

    fn send(&mut self, request: Request) -> Result<(), ProxyError> {
        self.db = request.db;
        let conn = self
            .conn
            .as_ref()
            .expect("lease holds a connection until dropped");
        conn.lane
            .send(request)
            .map_err(|_| ProxyError::UpstreamLost {
                upstream: self.pool.shared.name.clone(),
                reason: "the dedicated connection closed".into(),
            })
    }

    fn state(&self) -> ConnState {
        self.state
    }

    fn set_state(&mut self, state: ConnState) {
        self.state = state;
    }

    fn is_alive(&self) -> bool {
        PinnedLease::is_alive(self)
    }
}

impl Drop for PinnedLease {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let cleanup: &[&'static str] = match self.state {
            ConnState::Clean => &[],
            ConnState::Watching => &["UNWATCH"],
            ConnState::InMulti => &["DISCARD"],
            // Dropping the lane closes the connection now, so a blocking
            // command nobody waits for can no longer pop anything.
            ConnState::Blocked => return,
        };
        if !cleanup.is_empty() {
            let args = cleanup
                .iter()
                .map(|w| Bytes::from_static(w.as_bytes()))
                .collect();
            // The reply is not awaited: the connection is ordered, so the next
            // user's commands run after the cleanup.
            let (request, _) = Request::new(args, self.db);
            if conn.lane.send(request).is_err() {
                return;
            }
        }
        self.pool.release(conn);
    }
}
