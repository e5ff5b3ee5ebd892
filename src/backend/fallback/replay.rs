//! Recovery. While the circuit is open, the primary is probed every
//! `probe_interval_ms` with a PING down each lane the layer uses. When every
//! lane answers, the circuit goes half-open and the journal is replayed to the
//! primary, oldest first, in pipelined batches on a connection of its own
//! (or, for a backend without dedicated connections such as DynamoDB, on one
//! of its lanes, which runs commands in the order sent); an entry leaves the
//! journal only once the primary has answered it. Commands
//! keep going to the fallback (and new writes to the journal's end) until
//! the journal is empty; then, with the fallback's order lock held so that
//! nothing can be journaled any more, the circuit closes and the fallback is
//! emptied. A replay that fails keeps what is left and the circuit reopens.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::journal::Entry;
use super::{CircuitState, LANES, Shared, is_outage_reply};
use crate::backend::capability::Capability;
use crate::backend::{ConnState, Connection, Lane, Purpose, Reply, ReplyRx, Request, await_reply};
use crate::protocol::Frame;
use crate::protocol::reply::error_text;

/// Journal entries sent per round trip during a replay.
const REPLAY_BATCH: usize = 256;
/// The longest a probe waits for its PONGs.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

fn word(w: &'static str) -> Bytes {
    Bytes::from_static(w.as_bytes())
}

/// Probes and replays whenever the circuit is open; runs for the process's life.
pub(super) async fn run(shared: Arc<Shared>) {
    loop {
        shared.breaker.wait_not_closed().await;
        tokio::time::sleep(shared.probe_interval).await;
        if shared.breaker.state() != CircuitState::Open {
            continue;
        }
        if let Err(reason) = probe(&shared).await {
            tracing::debug!(backend = %shared.name(), reason = %crate::logging::Untrusted(reason.as_bytes()), "backend still unavailable");
            continue;
        }
        if !shared.breaker.half_open() {
            continue;
        }
        let entries = shared.journal.lock().expect("journal lock").len();
        tracing::info!(
            backend = %shared.name(),
            routes = %shared.routes,
            entries,
            "backend answers again: replaying the write journal before commands go back to it"
        );
        let started = Instant::now();
        match replay(&shared).await {
            Ok(replayed) => tracing::info!(
                backend = %shared.name(),
                routes = %shared.routes,
                replayed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "circuit closed: the journal is replayed and commands go to the backend again"
            ),
            Err(reason) => {
                shared.stats.replay_failures.fetch_add(1, Ordering::Relaxed);
                shared.breaker.reopen();
                let left = shared.journal.lock().expect("journal lock").len();
                tracing::warn!(
                    backend = %shared.name(),
                    routes = %shared.routes,
                    left,
                    reason = %crate::logging::Untrusted(reason.as_bytes()),
                    "replay interrupted: the circuit stays open; the entries not replayed are kept for the next attempt"
                );
            }
        }
    }
}

/// A PING down every lane of the primary the layer uses.
async fn probe(shared: &Shared) -> Result<(), String> {
    let timeout = shared.primary.command_timeout().min(PROBE_TIMEOUT);
    let deadline = Instant::now() + timeout;
    let db = shared.primary.default_db();
    let mut pending = Vec::new();
    for index in 0..LANES {
        let (request, rx) = Request::new(vec![word("PING")], db);
        shared
            .primary
            .lane(index)
            .send(request)
            .map_err(|_| "lane closed".to_string())?;
        pending.push(rx);
    }
    for rx in pending {
        let reply = await_reply(rx, Some(deadline), shared.name(), timeout)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(error) = error_text(&reply.frame) {
            return Err(error);
        }
    }
    Ok(())
}

/// Where a replay sends the journal: in order, either way.
enum Sink {
    /// A dedicated connection: an entry of several commands (a transaction,
    /// a write and its PEXPIREAT) is replayed inside MULTI/EXEC.
    Connection(Box<dyn Connection>),
    /// One lane of a backend without dedicated connections (DynamoDB, which
    /// has no MULTI either): an entry's commands follow one another.
    Lane(Lane),
}

impl Sink {
    async fn open(shared: &Shared) -> Result<Sink, String> {
        if !shared.primary.capabilities().has(Capability::Transactions) {
            return Ok(Sink::Lane(shared.primary.lane(0)));
        }
        let deadline = Instant::now() + shared.primary.acquire_timeout();
        let conn = shared
            .primary
            .connection(Purpose::Pinned, deadline)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Sink::Connection(conn))
    }

    fn send(&mut self, args: Vec<Bytes>, db: u32) -> Result<ReplyRx, String> {
        let (request, rx) = Request::new(args, db);
        match self {
            Sink::Connection(conn) => conn.send(request).map_err(|e| e.to_string())?,
            Sink::Lane(lane) => lane.send(request).map_err(|_| "lane closed".to_string())?,
        }
        Ok(rx)
    }

    /// Whether an entry of several commands can be sent as one transaction.
    fn has_multi(&self) -> bool {
        matches!(self, Sink::Connection(_))
    }

    fn set_state(&mut self, state: ConnState) {
        if let Sink::Connection(conn) = self {
            conn.set_state(state);
        }
    }
}

/// Replays the journal until it is empty, then closes the circuit.
/// Returns how many entries were replayed.
async fn replay(shared: &Shared) -> Result<usize, String> {
    let mut conn = Sink::open(shared).await?;
    let mut replayed = 0;
    loop {
        let batch = shared
            .journal
            .lock()
            .expect("journal lock")
            .oldest(REPLAY_BATCH);
        let Some(last) = batch.last() else {
            let _order = shared.order.lock().await;
            if !shared.journal.lock().expect("journal lock").is_empty() {
                continue;
            }
            // Nothing runs on the fallback now, and the backend has every
            // write: switch back, and empty the fallback for the next outage.
            shared
                .fallback
                .store()
                .execute(0, &[word("FLUSHALL")])
                .await;
            shared.journal.lock().expect("journal lock").end_outage();
            shared.breaker.close();
            return Ok(replayed);
        };
        send_batch(&mut conn, shared, &batch).await?;
        shared
            .journal
            .lock()
            .expect("journal lock")
            .acknowledge(last.seq);
        replayed += batch.len();
    }
}

/// Sends `batch` pipelined and waits for every reply. An entry the backend
/// refuses (WRONGTYPE against what it holds) is counted and logged, and
/// counts as replayed: sending it again would be refused again.
async fn send_batch(conn: &mut Sink, shared: &Shared, batch: &[Arc<Entry>]) -> Result<(), String> {
    let mut pending = Vec::with_capacity(batch.len());
    for entry in batch {
        let group = entry.commands.len() > 1 && conn.has_multi();
        let mut replies = Vec::with_capacity(entry.commands.len() + 2);
        if group {
            conn.set_state(ConnState::InMulti);
            replies.push(conn.send(vec![word("MULTI")], entry.commands[0].db)?);
        }
        for command in &entry.commands {
            replies.push(conn.send(command.args.clone(), command.db)?);
        }
        if group {
            let db = entry.commands.last().map_or(0, |c| c.db);
            replies.push(conn.send(vec![word("EXEC")], db)?);
        }
        pending.push((entry, replies));
    }
    let timeout = shared.primary.command_timeout();
    let deadline = Instant::now() + timeout;
    for (entry, replies) in pending {
        let mut last = Frame::Null;
        let mut refused = None;
        for rx in replies {
            let reply: Reply = await_reply(rx, Some(deadline), shared.name(), timeout)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(error) = is_outage_reply(&reply) {
                return Err(error);
            }
            refused = refused.or_else(|| error_text(&reply.frame));
            last = reply.frame;
        }
        if let Frame::Array { data, .. } = &last {
            refused = refused.or_else(|| data.iter().find_map(error_text));
        }
        if let Some(error) = refused {
            shared.stats.replay_errors.fetch_add(1, Ordering::Relaxed);
            let command = entry
                .commands
                .first()
                .map(|c| String::from_utf8_lossy(&c.args[0]).into_owned())
                .unwrap_or_default();
            let keys: Vec<String> = entry
                .keys
                .iter()
                .map(|k| crate::logging::Untrusted(k).to_string())
                .collect();
            tracing::warn!(
                backend = %shared.name(),
                command = %command,
                keys = ?keys,
                error = %crate::logging::Untrusted(error.as_bytes()),
                "the backend refused a journaled write on replay; it is dropped"
            );
        }
    }
    conn.set_state(ConnState::Clean);
    Ok(())
}
