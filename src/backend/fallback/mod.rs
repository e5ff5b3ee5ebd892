//! The fallback layer: a [`Backend`] that wraps a route's backend (the
//! *primary*) and a memory backend (the *fallback*), so that the route keeps
//! serving while the primary is unreachable. Sessions see one backend; the
//! layer decides, per command, where it runs. `LIFECYCLE.md` beside this file
//! draws the states; `docs/resilience.md` says what clients see.
//!
//! - [`breaker`]: failures and timeouts of the primary, counted in a window,
//!   open the circuit; from then on commands go to the fallback.
//! - [`lane`]: the ordered lanes sessions send to. A write the primary lost
//!   (connection gone, refused, timed out) is run on the fallback instead,
//!   and opens the circuit at once: the fallback now holds data the primary
//!   lacks, and nothing may read the primary until it has it.
//! - [`outage`]: running commands on the fallback. Every write is also
//!   appended to the [`journal`] — the sealed command, its keys, the time —
//!   in the order the fallback applied it.
//! - [`replay`]: a probe while the circuit is open; when the primary answers,
//!   the journal is replayed to it in order (half-open), and only when it is
//!   empty do commands go back to the primary (closed). The fallback is then
//!   emptied, so the next outage starts from nothing.
//!
//! Values stay sealed everywhere: the fallback and the journal hold the same
//! envelopes the primary would.

mod breaker;
mod connection;
mod journal;
mod lane;
mod outage;
mod replay;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use breaker::CircuitState;
use breaker::{Breaker, describe_since};
use journal::Journal;

use super::memory::MemoryBackend;
use super::{
    Backend, BackendKind, Capabilities, Connection, Encoding, InfoField, Lane, Purpose, Reply,
    ReplyAccount, ReplyResult, ReplyTx, Request, RequestKind, rmw,
};
use crate::commands::keys::{KeyArg, flags};
use crate::commands::{CommandSpec, Keyspace};
use crate::config::{FallbackConfig, OutputBufferLimit};
use crate::error::ProxyError;

/// Lanes of the layer; lane `i` forwards to the primary's lane for client
/// `i`, so up to this many primary lanes carry the route's traffic.
const LANES: u64 = 16;
/// How much longer than the primary's a command may take through the layer:
/// a command can wait for one that timed out before it, then be retried on
/// the fallback.
const TIMEOUT_MARGIN: Duration = Duration::from_secs(1);

/// What `/readyz`, INFO and the shutdown report show of a route's circuit.
#[derive(Debug, Clone)]
pub struct CircuitStatus {
    pub state: CircuitState,
    pub fallback: String,
    /// When the outage began (`None` while closed).
    pub since: Option<SystemTime>,
    pub opened: u64,
    pub closed: u64,
    pub failures: u64,
    pub journal_entries: usize,
    /// When the oldest entry not yet replayed was written.
    pub journal_oldest: Option<SystemTime>,
    pub journal_appended: u64,
    pub journal_dropped: u64,
    pub replayed: u64,
    /// Journal entries the backend answered with an error on replay.
    pub replay_errors: u64,
    /// Replays cut short by the backend failing again.
    pub replay_failures: u64,
    pub fallback_commands: u64,
    /// Commands the primary lost that were run on the fallback instead.
    pub retried: u64,
    /// Commands refused because the fallback cannot serve them.
    pub refused: u64,
}

impl CircuitStatus {
    /// The INFO line's value: `state=open,since=…,fallback=…,…`.
    pub fn info_value(&self) -> String {
        let since = self
            .since
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        format!(
            "state={},fallback={},since={since},opened={},closed={},failures={},journal_entries={},journal_appended={},journal_dropped={},replayed={},replay_errors={},replay_failures={},fallback_commands={},retried={},refused={}",
            self.state.as_str(),
            self.fallback,
            self.opened,
            self.closed,
            self.failures,
            self.journal_entries,
            self.journal_appended,
            self.journal_dropped,
            self.replayed,
            self.replay_errors,
            self.replay_failures,
            self.fallback_commands,
            self.retried,
            self.refused,
        )
    }
}

#[derive(Default)]
struct Stats {
    fallback_commands: AtomicU64,
    retried: AtomicU64,
    refused: AtomicU64,
    replay_errors: AtomicU64,
    replay_failures: AtomicU64,
}

/// State every lane, connection and the replay task share.
struct Shared {
    primary: Arc<dyn Backend>,
    fallback: Arc<MemoryBackend>,
    /// The routes served, as their prefixes (for logs).
    routes: String,
    probe_interval: Duration,
    breaker: Breaker,
    journal: Mutex<Journal>,
    /// Held while a command runs on the fallback and is journaled, and
    /// while the circuit closes: the journal's order is the fallback's
    /// order, and nothing runs on the fallback after the journal was found
    /// empty and the circuit closed.
    order: tokio::sync::Mutex<()>,
    stats: Stats,
    next_connection: AtomicU64,
}

impl Shared {
    fn name(&self) -> &str {
        self.primary.name()
    }

    fn fallback_name(&self) -> &str {
        self.fallback.name()
    }

    /// The error for a command the fallback cannot serve.
    fn refuse(&self, command: &str, reason: impl Into<String>) -> ProxyError {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        ProxyError::FallbackRefused {
            backend: self.name().to_string(),
            fallback: self.fallback_name().to_string(),
            since: describe_since(self.breaker.since()),
            command: command.replace('|', " "),
            reason: reason.into(),
        }
    }

    /// Counts a failure of the primary; opens the circuit at the threshold.
    fn failure(&self, reason: &str) {
        if self.breaker.failure() {
            self.opened(reason);
        }
    }

    /// Opens the circuit now: the fallback took a write the primary lost.
    fn trip(&self, reason: &str) {
        if self.breaker.trip() {
            self.opened(reason);
        }
    }

    fn opened(&self, reason: &str) {
        tracing::warn!(
            backend = %self.name(),
            routes = %self.routes,
            fallback = %self.fallback_name(),
            reason = %crate::logging::Untrusted(reason.as_bytes()),
            "circuit opened: the backend is unavailable; the route is served by its fallback and writes are journaled"
        );
    }

    fn status(&self) -> CircuitStatus {
        let journal = self.journal.lock().expect("journal lock");
        let stats = &self.stats;
        CircuitStatus {
            state: self.breaker.state(),
            fallback: self.fallback_name().to_string(),
            since: self.breaker.since(),
            opened: self.breaker.opened.load(Ordering::Relaxed),
            closed: self.breaker.closed.load(Ordering::Relaxed),
            failures: self.breaker.failures_seen.load(Ordering::Relaxed),
            journal_entries: journal.len(),
            journal_oldest: journal.oldest_at(),
            journal_appended: journal.appended,
            journal_dropped: journal.dropped,
            replayed: journal.replayed,
            replay_errors: stats.replay_errors.load(Ordering::Relaxed),
            replay_failures: stats.replay_failures.load(Ordering::Relaxed),
            fallback_commands: stats.fallback_commands.load(Ordering::Relaxed),
            retried: stats.retried.load(Ordering::Relaxed),
            refused: stats.refused.load(Ordering::Relaxed),
        }
    }
}

/// Failures that say the primary is unreachable, rather than that the command
/// was wrong: they count towards the breaker, and a write that meets one is
/// run on the fallback.
fn is_outage(error: &ProxyError) -> bool {
    matches!(
        error,
        ProxyError::UpstreamUnavailable { .. }
            | ProxyError::UpstreamTimeout { .. }
            | ProxyError::UpstreamLost { .. }
    )
}

/// An error reply that says the server cannot serve anything yet (a Redis
/// loading its RDB snapshot after a restart).
fn is_outage_reply(reply: &Reply) -> Option<String> {
    crate::protocol::reply::error_text(&reply.frame)
        .filter(|e| e.starts_with("LOADING") || e.starts_with("MASTERDOWN"))
}

/// A request taken apart: what it asks ([`Call`]) and where its reply goes
/// ([`Answer`]). A call can be sent to the primary, and still be run on the
/// fallback if the primary loses it.
struct Call {
    spec: Option<&'static CommandSpec>,
    args: Vec<Bytes>,
    encoding: Encoding,
    db: u32,
    kind: RequestKind,
}

struct Answer {
    reply: ReplyTx,
    account: Option<Arc<dyn ReplyAccount>>,
}

impl Answer {
    /// Delivers the reply, charged to the client's output budget.
    fn deliver(self, reply: ReplyResult) {
        Request {
            spec: None,
            args: Vec::new(),
            encoding: Encoding::Args,
            db: 0,
            kind: RequestKind::Normal,
            reply: self.reply,
            account: self.account,
        }
        .answer(reply);
    }
}

impl Call {
    fn take(request: Request) -> (Call, Answer) {
        (
            Call {
                spec: request.spec,
                args: request.args,
                encoding: request.encoding,
                db: request.db,
                kind: request.kind,
            },
            Answer {
                reply: request.reply,
                account: request.account,
            },
        )
    }

    /// A request for the primary, keeping the call (the primary may lose it).
    fn request(&self, reply: ReplyTx) -> Request {
        Request {
            spec: self.spec,
            args: self.args.clone(),
            encoding: self.encoding.clone(),
            db: self.db,
            kind: self.kind,
            reply,
            account: None,
        }
    }

    fn name(&self) -> &'static str {
        self.spec.map_or("this command", |s| s.name)
    }

    /// The arguments, name first. A command sent as the client's bytes may
    /// have lent its arguments to the reply's decryption plan: read them back
    /// from those bytes.
    fn args(&mut self) -> Result<&[Bytes], ProxyError> {
        if self.args.is_empty()
            && let Encoding::Raw(raw) = &self.encoding
        {
            self.args = super::args_of(raw)?;
        }
        Ok(&self.args)
    }

    /// The arguments as a store keeps them: values sealed.
    fn sealed_args(&mut self) -> Result<Vec<Bytes>, ProxyError> {
        self.args()?;
        match &self.encoding {
            Encoding::Sealed { by, rule } => by.seal_args(*rule, &self.args),
            Encoding::Args | Encoding::Raw(_) => Ok(self.args.clone()),
        }
    }

    /// The keys and how the command uses them.
    fn key_args(&mut self) -> Result<Vec<KeyArg>, ProxyError> {
        let Some(spec) = self.spec else {
            return Ok(Vec::new());
        };
        Ok(crate::commands::keys::key_args(&spec.keys, self.args()?))
    }

    /// Whether the command changes stored data (and so must reach the
    /// backend, through the journal, when the fallback runs it).
    fn is_write(&mut self) -> Result<bool, ProxyError> {
        let flush = self
            .spec
            .is_some_and(|s| s.extras.keyspace == Keyspace::Flush);
        Ok(flush || self.key_args()?.iter().any(writes))
    }
}

/// Whether a key argument is written (Redis's RW, OW and RM flags).
fn writes(key: &KeyArg) -> bool {
    key.flags.bits() & (flags::RW | flags::OW | flags::RM) != 0
}

/// Whether a key argument's value is read and changed by one command (a pop,
/// a move, GETDEL, SET … GET): Redis's ACCESS flag with RW or RM.
fn takes(key: &KeyArg) -> bool {
    key.flags.contains(flags::ACCESS) && writes(key)
}

/// Whether a key argument is replaced or removed whole (OW, RM): after it,
/// the fallback holds all there is of that key.
fn replaces(key: &KeyArg) -> bool {
    key.flags.bits() & (flags::OW | flags::RM) != 0
}

/// A route's backend with a fallback: see the module documentation.
pub struct FallbackBackend {
    shared: Arc<Shared>,
    lanes: Vec<Lane>,
}

impl FallbackBackend {
    /// Wraps `primary`; `fallback` serves while it is unreachable. `routes`
    /// names the routes served, for logs. Starts the lanes and the probe.
    pub fn start(
        primary: Arc<dyn Backend>,
        fallback: Arc<MemoryBackend>,
        config: &FallbackConfig,
        routes: String,
    ) -> Arc<FallbackBackend> {
        let shared = Arc::new(Shared {
            primary,
            fallback,
            routes,
            probe_interval: config.breaker.probe_interval,
            breaker: Breaker::new(&config.breaker),
            journal: Mutex::new(Journal::new(config.journal_max_entries)),
            order: tokio::sync::Mutex::new(()),
            stats: Stats::default(),
            next_connection: AtomicU64::new(connection::FIRST_ID),
        });
        let lanes = (0..LANES)
            .map(|index| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(lane::run(shared.clone(), index, rx));
                tx
            })
            .collect();
        tokio::spawn(replay::run(shared.clone()));
        Arc::new(FallbackBackend { shared, lanes })
    }
}

impl Backend for FallbackBackend {
    fn kind(&self) -> BackendKind {
        self.shared.primary.kind()
    }

    fn name(&self) -> &str {
        self.shared.primary.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.shared.primary.capabilities()
    }

    /// The primary's choice: the layer reads arguments back from the
    /// client's bytes when the fallback needs them.
    fn takes_client_bytes(&self) -> bool {
        self.shared.primary.takes_client_bytes()
    }

    fn serves(&self, spec: &CommandSpec) -> bool {
        // What the fallback cannot run is refused during an outage only,
        // with the outage's error.
        self.shared.primary.serves(spec)
    }

    fn lane(&self, client_id: u64) -> Lane {
        self.lanes[(client_id % LANES) as usize].clone()
    }

    fn connection(
        &self,
        purpose: Purpose,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<Box<dyn Connection>, ProxyError>> {
        Box::pin(async move {
            let shared = &self.shared;
            if shared.breaker.is_closed() {
                match shared.primary.connection(purpose, deadline).await {
                    Ok(conn) => return Ok(conn),
                    Err(e) if is_outage(&e) => {
                        shared.failure(&e.to_string());
                        if shared.breaker.is_closed() {
                            return Err(e);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            match purpose {
                Purpose::Pinned => {
                    Ok(Box::new(connection::start(shared.clone())) as Box<dyn Connection>)
                }
                Purpose::Blocking => Err(shared.refuse(
                    "a blocking command",
                    "a command that waits for data is not run on the fallback (what it pops could not be journaled in order)",
                )),
            }
        })
    }

    fn acquire_timeout(&self) -> Duration {
        self.shared.primary.acquire_timeout()
    }

    fn command_timeout(&self) -> Duration {
        self.shared.primary.command_timeout() * 2 + TIMEOUT_MARGIN
    }

    fn default_db(&self) -> u32 {
        self.shared.primary.default_db()
    }

    fn subscriber(
        &self,
        client_id: u64,
        limit: OutputBufferLimit,
        overflow: CancellationToken,
    ) -> Result<Box<dyn super::pubsub::Subscriber>, ProxyError> {
        // Pub/Sub stays on the primary: the fallback carries no messages.
        self.shared.primary.subscriber(client_id, limit, overflow)
    }

    fn read_modify_write<'a>(
        &'a self,
        db: u32,
        op: &'a mut dyn rmw::Rmw,
    ) -> BoxFuture<'a, Result<(), ProxyError>> {
        Box::pin(async move {
            let shared = &self.shared;
            if shared.breaker.is_closed() {
                match shared.primary.read_modify_write(db, op).await {
                    Err(e) if is_outage(&e) => {
                        shared.failure(&e.to_string());
                        if shared.breaker.is_closed() {
                            return Err(e);
                        }
                    }
                    done => return done,
                }
            }
            match shared.read_modify_write(db, op).await {
                Some(done) => done,
                // The circuit closed meanwhile: the primary has everything.
                None => shared.primary.read_modify_write(db, op).await,
            }
        })
    }

    fn publish_receivers(&self, channel: &[u8], shard: bool, counted: i64) -> i64 {
        self.shared
            .primary
            .publish_receivers(channel, shard, counted)
    }

    fn subscribers(&self, channel: &[u8], shard: bool, counted: i64) -> i64 {
        self.shared.primary.subscribers(channel, shard, counted)
    }

    fn server_version(&self) -> Option<String> {
        self.shared.primary.server_version()
    }

    fn is_ready(&self) -> bool {
        self.shared.primary.is_ready()
    }

    fn info(&self) -> Vec<InfoField> {
        self.shared.primary.info()
    }

    fn circuit(&self) -> Option<CircuitStatus> {
        Some(self.shared.status())
    }
}
