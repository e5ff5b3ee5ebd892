//! Dedicated upstream connections. MULTI/WATCH and blocking commands hold
//! connection state, so a client gets one to itself for as long as that
//! state lives; afterwards a clean connection goes back to an idle list, so a
//! client doing hundreds of transactions a second reuses a few connections.
//! (Pub/Sub shares one connection instead: [`super::pubsub`].)
//! At most `upstream.max_pinned` are in use at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::{Shared, conn};
use crate::backend::{Encoding, Lane, ReplyRx, Request};
use crate::error::ProxyError;

struct PinnedConn {
    lane: Lane,
    alive: Arc<AtomicBool>,
}

pub struct PinnedPool {
    shared: Arc<Shared>,
    idle: Mutex<Vec<PinnedConn>>,
    permits: Arc<Semaphore>,
    limit: usize,
}

/// Connection state that must be undone before a connection is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Clean,
    Watching,
    InMulti,
    /// A blocking command is outstanding: the connection cannot be reused.
    Blocked,
}

impl PinnedPool {
    pub fn new(shared: Arc<Shared>, limit: usize) -> Arc<Self> {
        Arc::new(PinnedPool {
            shared,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// (in use, idle) connection counts.
    pub fn usage(&self) -> (usize, usize) {
        (
            self.limit - self.permits.available_permits(),
            self.idle.lock().expect("idle lock").len(),
        )
    }

    fn permit(&self) -> Result<OwnedSemaphorePermit, ProxyError> {
        self.permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| ProxyError::TooManyPinned { limit: self.limit })
    }

    fn unavailable(&self, reason: String) -> ProxyError {
        ProxyError::UpstreamUnavailable {
            upstream: self.shared.connector.label().to_string(),
            reason,
        }
    }

    /// A dedicated, pipelined connection: an idle one if any is still alive, else a new one.
    pub async fn acquire(self: &Arc<Self>) -> Result<PinnedLease, ProxyError> {
        let permit = self.permit()?;
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
                    let label = shared.connector.label().to_string();
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
                PinnedConn { lane, alive }
            }
        };
        Ok(PinnedLease {
            conn: Some(conn),
            pool: self.clone(),
            _permit: permit,
            state: LeaseState::Clean,
            db: 0,
        })
    }

    fn release(&self, conn: PinnedConn) {
        if conn.alive.load(Ordering::Acquire) {
            let mut idle = self.idle.lock().expect("idle lock");
            if idle.len() < self.limit {
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
    pub state: LeaseState,
    /// Database of the last command, so cleanup commands need no SELECT.
    db: u32,
}

impl PinnedLease {
    /// Queues a command, written as `encoding` says; the reply arrives on the
    /// returned receiver.
    pub async fn send(
        &mut self,
        args: Vec<Bytes>,
        encoding: Encoding,
        db: u32,
    ) -> Result<ReplyRx, ProxyError> {
        self.db = db;
        let conn = self
            .conn
            .as_ref()
            .expect("lease holds a connection until dropped");
        let (mut request, rx) = Request::new(args, db);
        request.encoding = encoding;
        conn.lane
            .send(request)
            .map_err(|_| ProxyError::UpstreamLost {
                upstream: self.pool.shared.connector.label().to_string(),
                reason: "the dedicated connection closed".into(),
            })?;
        Ok(rx)
    }

    pub fn is_alive(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| c.alive.load(Ordering::Acquire))
    }
}

impl Drop for PinnedLease {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let cleanup: &[&'static str] = match self.state {
            LeaseState::Clean => &[],
            LeaseState::Watching => &["UNWATCH"],
            LeaseState::InMulti => &["DISCARD"],
            LeaseState::Blocked => return, // dropping the lane closes the connection
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
