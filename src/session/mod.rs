//! One client's session: authentication, protocol version, database,
//! transactions and Pub/Sub, and the decision of where each command runs. See
//! `LIFECYCLE.md` beside this file for the states and connection pinning.
//!
//! The session task reads and dispatches commands in order; a writer task
//! ([`writer`]) writes the replies in the same order. When a client's next
//! command goes to a different upstream connection than its previous one, the
//! session first waits for the earlier replies (a fence), so commands never
//! overtake each other. What one client may hold (output bytes, commands in
//! flight, dedicated connections) is bounded by [`output`] and [`dedicated`].

mod dedicated;
mod emulate;
mod local;
mod output;
mod post;
mod pubsub;
mod rate;
mod shutdown;
mod transaction;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;
use tracing::Instrument;

use crate::auth::Authenticator;
use crate::backend::gate::Gate;
use crate::backend::router::Router;
use crate::backend::{
    Backend, Capability, ConnState, Encoding, Lane, Purpose, ReplyAccount, Request, not_supported,
};
use crate::commands::{
    Command, CommandError, Dispatch, Keyspace, Local, Policy, Syntax, Transaction, ValueRule,
};
use crate::config::Config;
use crate::crypto::Sealer;
use crate::error::ProxyError;
use crate::protocol::reply::{self, NullStyle};
use crate::protocol::request::{self as request, RequestCodec, RequestError, RequestLimits};
use crate::protocol::{Frame, Protocol};
use crate::values::{OpenPlan, Outgoing, ValueCrypt};

use dedicated::Dedicated;
pub use dedicated::Shares;
use output::{ClientOutput, CutOff, CutOffReader, OutputLimits, Room};
pub use post::Post;
use pubsub::PubSub;
pub use shutdown::Shutdown;
use transaction::Multi;
pub use writer::{Slot, SlotReply};

/// Replies a client may have queued before its reader waits (pipelining
/// backpressure); also the widest pipeline window (see [`output`]).
const SLOT_QUEUE: usize = 1024;
/// While a blocking command is in flight and the session waits to send the
/// next command, it reads ahead this much, only to see the client leave.
const READ_AHEAD_BYTES: usize = 64 * 1024;
const READ_AHEAD_REQUESTS: usize = 64;
/// The request buffer a client waiting to send holds. It grows for a larger
/// request and is replaced by a fresh one of this size once that request is
/// read, so a quiet client holds 1 KiB, not what its largest request took
/// (tokio-util's default is 8 KiB from the start).
const READ_BUFFER: usize = 1024;

/// The client's side of the connection, boxed so the session is not generic.
type ClientReader = Box<dyn AsyncRead + Send + Sync + Unpin>;

/// Process-wide state every session shares.
pub struct Context {
    pub config: Arc<Config>,
    pub auth: Authenticator,
    /// Shared with the lanes, which seal values as they write them.
    pub values: Arc<ValueCrypt>,
    /// The configured backends, in `config.backends` order.
    pub backends: Vec<Arc<dyn Backend>>,
    /// Which backend serves which key.
    pub router: Router,
    /// Per-user shares of the dedicated connections.
    pub shares: Shares,
    /// Read-modify-writes of one key, one at a time and coalesced.
    pub gate: Gate,
    pub stats: Stats,
    pub started: Instant,
}

#[derive(Default)]
pub struct Stats {
    pub connected_clients: AtomicUsize,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub next_client_id: AtomicU64,
    pub auth_failures: AtomicU64,
}

impl Context {
    /// The state for `config`, over its backends (started) and their router.
    pub fn new(
        config: Config,
        sealer: Sealer,
        backends: Vec<Arc<dyn Backend>>,
        router: Router,
    ) -> Context {
        Context {
            auth: Authenticator::new(&config.auth),
            values: Arc::new(ValueCrypt::new(
                sealer,
                &config.encryption.namespace,
                config.encryption.on_decrypt_failure,
            )),
            backends,
            router,
            shares: Shares::new(&config),
            gate: Gate::default(),
            stats: Stats::default(),
            started: Instant::now(),
            config: Arc::new(config),
        }
    }

    /// The backend of the default (`""`) route: keyless commands, Pub/Sub,
    /// SELECT's check and INFO go there.
    pub fn default_backend(&self) -> &Arc<dyn Backend> {
        &self.backends[self.default_backend_index()]
    }

    pub fn default_backend_index(&self) -> usize {
        self.router.routes()[self.router.default_route()].backend
    }

    /// The `# Proxy` section of INFO: the proxy, each backend and route, encryption.
    pub fn proxy_info(&self) -> String {
        let s = &self.stats;
        let mut out = format!(
            "# Proxy\r\nsealcache_version:{}\r\nuptime_in_seconds:{}\r\nconnected_clients:{}\r\ntotal_connections_received:{}\r\nrejected_connections:{}\r\nauth_failures:{}\r\nbackends:{}\r\nroutes:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            self.started.elapsed().as_secs(),
            s.connected_clients.load(Ordering::Relaxed),
            s.total_connections.load(Ordering::Relaxed),
            s.rejected_connections.load(Ordering::Relaxed),
            s.auth_failures.load(Ordering::Relaxed),
            self.backends.len(),
            self.router.routes().len(),
        );
        for backend in &self.backends {
            let name = backend.name();
            out.push_str(&format!(
                "backend_{name}:type={},ready={}\r\n",
                backend.kind(),
                u8::from(backend.is_ready())
            ));
            for (field, value) in backend.info() {
                out.push_str(&format!("backend_{name}_{field}:{value}\r\n"));
            }
        }
        for (i, route) in self.router.routes().iter().enumerate() {
            let backend = &self.backends[route.backend];
            out.push_str(&format!(
                "route_{i}:prefix={},backend={}\r\n",
                String::from_utf8_lossy(&route.prefix),
                backend.name()
            ));
            if let Some(circuit) = backend.circuit() {
                out.push_str(&format!("route_{i}_circuit:{}\r\n", circuit.info_value()));
            }
        }
        let gate = self.gate.stats();
        out.push_str(&format!(
            "rmw_waiting:{}\r\nrmw_runs:{}\r\nrmw_coalesced:{}\r\nrmw_grouped:{}\r\n",
            gate.waiting, gate.runs, gate.coalesced, gate.grouped
        ));
        out + &self.encryption_info()
    }

    /// Encryption state for INFO: key ids and how close each is to its nonce budget.
    fn encryption_info(&self) -> String {
        let mut out = format!(
            "encryption:aes-256-gcm\r\nencryption_namespace:{}\r\nencryption_primary_key_id:{}\r\ndecrypt_failures:{}\r\n",
            self.config.encryption.namespace,
            self.values.sealer().primary_key_id(),
            self.values.failure_count(),
        );
        for usage in self.values.sealer().encryption_counts() {
            out.push_str(&format!(
                "encryption_key_{}:value_seals={},member_seals={},primary={},nonce_budget_warning={}\r\n",
                usage.key_id,
                usage.value_seals,
                usage.member_seals,
                u8::from(usage.primary),
                u8::from(usage.nonce_budget_warning()),
            ));
        }
        out
    }
}

/// Who is on the other end of a client connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// `None` for Unix-socket clients.
    pub addr: Option<SocketAddr>,
    /// The listener's address or socket path.
    pub local: String,
}

impl Peer {
    pub fn describe(&self) -> String {
        self.addr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unix".into())
    }
}

/// Which upstream connection a client's last command went to. Two routes
/// are the same connection only if they compare equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    None,
    /// The client's shared lane of the backend with this index.
    Lane(usize),
    /// A dedicated connection, by identity (MULTI/WATCH, emulated commands).
    Pinned(u64),
    /// A blocking command's own connection (never used by the next command).
    Blocking,
    /// A dedicated connection not taken yet: always a different connection.
    Fresh,
    PubSub,
}

/// What the caller does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// Why a session ended, which decides what happens to replies still owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// QUIT, a protocol error, a timeout: replies owed are still delivered.
    Closed,
    /// The client closed its side: a blocking command in flight is abandoned
    /// (its connection closed) at once; other replies are still delivered.
    Gone,
    /// Cut off for not reading (output buffer limits): nothing more is written.
    CutOff,
    /// A shutdown: no further request is read; replies owed are delivered.
    Drained,
}

/// The next thing from the client.
enum Next {
    Request(request::Request),
    Protocol(String),
    Gone,
    /// No request within the idle or authentication timeout.
    Idle,
    CutOff,
    Drained,
}

pub struct Session {
    ctx: Arc<Context>,
    id: u64,
    peer: Peer,
    user: Option<String>,
    proto: Protocol,
    db: u32,
    name: Option<Bytes>,
    lib_name: Option<Bytes>,
    lib_ver: Option<Bytes>,
    /// This client's lane of each backend, taken when first used.
    lanes: Vec<Option<Lane>>,
    /// The dedicated connection holding WATCH/MULTI state, on one backend.
    pinned: Option<Dedicated>,
    multi: Option<Multi>,
    pubsub: Option<PubSub>,
    slots: writer::SlotSender,
    route: Route,
    /// Replies owed, output bytes, window and cut-off (shared with the writer and lanes).
    output: Arc<ClientOutput>,
    /// Dedicated connections this client holds now (`limits.max_dedicated_per_client`).
    held: Arc<AtomicUsize>,
    requests: FramedRead<ClientReader, RequestCodec>,
    /// Requests read ahead while a fence waited on a blocking command.
    stash: VecDeque<Next>,
    stash_bytes: usize,
    /// The client has left (seen while reading ahead).
    gone: bool,
    /// `limits.rate_limit`, when set.
    rate: Option<rate::CommandRate>,
}

/// Serves one client connection until it closes, or until `stop` drains it.
pub async fn run<S>(stream: S, ctx: Arc<Context>, peer: Peer, stop: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
{
    let id = ctx.stats.next_client_id.fetch_add(1, Ordering::Relaxed) + 1;
    let span = tracing::info_span!("client", client.id = id, client.addr = %peer.describe());
    serve(stream, ctx, peer, id, stop).instrument(span).await
}

async fn serve<S>(stream: S, ctx: Arc<Context>, peer: Peer, id: u64, stop: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let (slots, slot_rx) = mpsc::channel(SLOT_QUEUE);
    let limits = &ctx.config.limits;
    let output = Arc::new(ClientOutput::new(id, OutputLimits::from_config(limits)));
    let mut writer = tokio::spawn(writer::run(wr, slot_rx, ctx.clone(), output.clone()));
    output.set_writer(writer.abort_handle());
    let _registered = stop.register(&output);
    let reader: ClientReader = Box::new(CutOffReader::new(rd, output.clone()));
    let mut session = Session {
        lanes: vec![None; ctx.backends.len()],
        db: ctx.default_backend().default_db(),
        requests: FramedRead::with_capacity(
            reader,
            RequestCodec::with_limits(request_limits(&ctx, false)),
            READ_BUFFER,
        ),
        ctx: ctx.clone(),
        id,
        peer,
        user: None,
        proto: Protocol::Resp2,
        name: None,
        lib_name: None,
        lib_ver: None,
        pinned: None,
        multi: None,
        pubsub: None,
        slots,
        route: Route::None,
        output: output.clone(),
        held: Arc::new(AtomicUsize::new(0)),
        stash: VecDeque::new(),
        stash_bytes: 0,
        gone: false,
        rate: rate::CommandRate::new(limits.rate_limit),
    };
    tracing::debug!("client connected");
    let ended = session.serve().await;
    let grace = ctx.default_backend().command_timeout();
    if ended == Ended::Drained {
        // After the replies owed: close_notify and FIN, a clean end of stream.
        let finish = async {
            session.push_close().await;
            matches!(tokio::time::timeout(grace, &mut writer).await, Ok(Ok(())))
        };
        // Boxed here and below: the end of a session must not make every
        // connection's task reserve room for it (see `Session::serve`).
        if Box::pin(stop.finish(finish, || output.outstanding())).await {
            output.linger();
            Box::pin(stop.linger(session.requests.get_mut())).await;
        } else {
            writer.abort();
        }
        tracing::debug!("client disconnected (shutdown)");
        return;
    }
    // The session's connections and leases go back now; only the client's
    // read half stays, for the linger below.
    let requests = {
        let session = session;
        session.requests
    };
    match ended {
        Ended::CutOff => writer.abort(),
        // A blocking command waits for a client that is gone: abandon it now,
        // before it can pop what another client pushes.
        Ended::Gone => output.gone.cancel(),
        Ended::Closed | Ended::Drained => {}
    }
    // Let the writer deliver replies already owed (clients may half-close after
    // sending), within the command timeout (and a shutdown's deadline).
    let finish = async { matches!(tokio::time::timeout(grace, &mut writer).await, Ok(Ok(()))) };
    if !Box::pin(stop.finish(finish, || output.outstanding())).await {
        writer.abort();
    } else if ended == Ended::Closed {
        // Closed by sealcache (a protocol error, QUIT, a timeout) while the
        // client may still be sending: the goodbye is out, and what arrives
        // meanwhile is read and dropped, so the kernel does not answer it
        // with a reset that destroys the last reply before the client reads it.
        let mut reader = requests.into_inner();
        Box::pin(stop.linger(&mut reader)).await;
    }
    tracing::debug!("client disconnected");
}

/// The frame limits for a client: Redis's tight ones until it authenticates.
fn request_limits(ctx: &Context, authenticated: bool) -> RequestLimits {
    RequestLimits {
        max_bulk_len: ctx.config.limits.max_bulk_len,
        max_multibulk_len: ctx.config.limits.max_multibulk_len,
        authenticated,
    }
}

impl Session {
    /// Reads and dispatches requests until the connection ends.
    async fn serve(&mut self) -> Ended {
        loop {
            if !self.wait_for_room().await {
                return Ended::CutOff;
            }
            // Shutdown: no further request runs, not even one read ahead.
            if self.output.is_draining() {
                return Ended::Drained;
            }
            let next = match self.stash.pop_front() {
                Some(next) => {
                    if let Next::Request(r) = &next {
                        self.stash_bytes -= request_size(r);
                    }
                    next
                }
                None => self.read().await,
            };
            match next {
                Next::Request(request) => {
                    self.output.request_read(request_size(&request));
                    // Boxed: a command's future is large and lives only while
                    // it runs; the connection's task must not reserve its
                    // room for as long as the client is connected.
                    let handled = Box::pin(self.handle(request.args, request.raw)).await;
                    if handled == Flow::Close {
                        return self.ended();
                    }
                }
                Next::Protocol(msg) => {
                    tracing::info!(error = %crate::logging::Untrusted(msg.as_bytes()), "protocol error; closing client connection");
                    self.push(Slot::ready(
                        reply::error(format!("ERR Protocol error: {msg}")),
                        self.proto,
                    ))
                    .await;
                    self.push_close().await;
                    return Ended::Closed;
                }
                Next::Gone => return Ended::Gone,
                Next::CutOff => return Ended::CutOff,
                Next::Drained => return Ended::Drained,
                Next::Idle if self.busy() => continue,
                Next::Idle => {
                    let why = if self.user.is_none() {
                        "no authentication within auth_timeout_secs"
                    } else {
                        "idle timeout"
                    };
                    tracing::info!(reason = why, "closing client connection");
                    return Ended::Closed;
                }
            }
        }
    }

    fn ended(&self) -> Ended {
        if self.output.is_cut_off() {
            Ended::CutOff
        } else if self.gone {
            Ended::Gone
        } else {
            Ended::Closed
        }
    }

    /// Reads the next request, within the authentication or idle timeout.
    async fn read(&mut self) -> Next {
        let buffer = self.requests.read_buffer_mut();
        if buffer.is_empty() && buffer.capacity() != READ_BUFFER {
            *buffer = bytes::BytesMut::with_capacity(READ_BUFFER);
        }
        let limit = if self.user.is_none() {
            self.ctx.config.limits.auth_timeout
        } else {
            self.ctx.config.limits.idle_timeout
        };
        // A cut-off ends the read at once (`CutOffReader`).
        let next = if limit.is_zero() {
            Some(self.requests.next().await)
        } else {
            tokio::time::timeout(limit, self.requests.next()).await.ok()
        };
        if self.output.is_cut_off() {
            return Next::CutOff;
        }
        if self.output.is_draining() {
            return Next::Drained;
        }
        match next {
            None => Next::Idle,
            Some(next) => classify(next),
        }
    }

    /// Holds the next read while the client's output is over the soft limit or
    /// its pipeline window is full. `false`: the client was cut off (`true`
    /// at once when a shutdown drains the session; the caller sees that).
    async fn wait_for_room(&mut self) -> bool {
        loop {
            if self.output.is_draining() {
                return true;
            }
            let soft_deadline = match self.output.room() {
                Room::Go => return true,
                Room::CutOff => return false,
                Room::Wait { soft_deadline } => soft_deadline,
            };
            if soft_deadline.is_some_and(|d| d <= Instant::now()) {
                self.output.cut_off(CutOff::Soft);
                return false;
            }
            let deadline = soft_deadline.map(tokio::time::Instant::from_std);
            tokio::select! {
                _ = self.output.progress() => {}
                _ = self.output.killed.cancelled() => return false,
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if deadline.is_some() => {}
            }
        }
    }

    /// Switches the request limits when the client authenticates or RESETs.
    fn apply_request_limits(&mut self) {
        let limits = request_limits(&self.ctx, self.user.is_some());
        self.requests.decoder_mut().set_limits(limits);
    }

    /// `allowed_admin_commands` entries may be written `CONFIG|SET` or `CONFIG SET`.
    fn admin_allowed(&self, name: &str) -> bool {
        self.ctx
            .config
            .allowed_admin_commands
            .iter()
            .any(|c| c.trim().replace(' ', "|").eq_ignore_ascii_case(name))
    }

    fn busy(&self) -> bool {
        self.output.outstanding() > 0 || self.pubsub.as_ref().is_some_and(|p| p.active())
    }

    /// Where this client's replies are charged as they arrive.
    fn account(&self) -> Arc<dyn ReplyAccount> {
        self.output.clone()
    }

    async fn push(&self, slot: Slot) {
        // A closed writer means the client is gone; the reader notices next.
        let _ = self.slots.send(Box::new(slot)).await;
    }

    async fn push_close(&self) {
        self.push(Slot {
            reply: SlotReply::Close,
            proto: self.proto,
            nulls: NullStyle::Bulk,
            post: Post::None,
        })
        .await;
    }

    async fn reply(&self, frame: Frame) -> Flow {
        self.push(Slot::ready(frame, self.proto)).await;
        Flow::Continue
    }

    async fn fail(&mut self, err: ProxyError) -> Flow {
        if let Some(multi) = self.multi.as_mut() {
            multi.failed = true;
        }
        self.reply(err.to_frame()).await
    }

    /// Before a command goes to `next`, waits until every reply owed so far
    /// has arrived if the previous command went to another connection, so the
    /// client's commands take effect in the order it sent them. `false`: the
    /// client has left or was cut off, and the command must not be sent.
    async fn fence(&mut self, next: Route) -> bool {
        let moves = next == Route::Fresh || self.route != next;
        if moves && self.output.outstanding() > 0 {
            let (tx, rx) = oneshot::channel();
            self.push(Slot {
                reply: SlotReply::Fence(tx),
                proto: self.proto,
                nulls: NullStyle::Bulk,
                post: Post::None,
            })
            .await;
            let read_ahead = self.route == Route::Blocking;
            if !self.await_fence(rx, read_ahead).await {
                return false;
            }
        }
        self.route = next;
        !self.gone && !self.output.is_cut_off()
    }

    /// Waits for a fence. Behind a blocking command (which may wait forever)
    /// it keeps reading the client, a little, to notice when the client leaves.
    async fn await_fence(&mut self, mut done: oneshot::Receiver<()>, read_ahead: bool) -> bool {
        loop {
            let can_read = read_ahead
                && !self.output.is_draining()
                && self.stash.len() < READ_AHEAD_REQUESTS
                && self.stash_bytes < READ_AHEAD_BYTES
                && !matches!(self.stash.back(), Some(Next::Protocol(_)));
            tokio::select! {
                biased;
                _ = &mut done => return true,
                _ = self.output.killed.cancelled() => return false,
                next = self.requests.next(), if can_read => match classify(next) {
                    Next::Request(r) => {
                        self.stash_bytes += request_size(&r);
                        self.stash.push_back(Next::Request(r));
                    }
                    Next::Protocol(msg) => self.stash.push_back(Next::Protocol(msg)),
                    // The read ended for a shutdown, not for a client that left.
                    _ if self.output.is_draining() => {}
                    _ => {
                        // Gone: as redis-server frees a blocked client that
                        // disconnects, nothing after this runs.
                        self.gone = true;
                        self.output.gone.cancel();
                        self.stash.clear();
                        self.stash_bytes = 0;
                        self.stash.push_back(Next::Gone);
                        return false;
                    }
                },
            }
        }
    }

    fn pending_slot(
        &self,
        rx: crate::backend::ReplyRx,
        nulls: NullStyle,
        timeout: Option<Duration>,
        backend: usize,
    ) -> Slot {
        self.output.reply_owed();
        Slot {
            reply: SlotReply::Pending {
                rx,
                timeout,
                lease: None,
                backend,
            },
            proto: self.proto,
            nulls,
            post: Post::None,
        }
    }

    /// This client's lane of backend `backend`.
    fn lane(&mut self, backend: usize) -> Lane {
        self.lanes[backend]
            .get_or_insert_with(|| self.ctx.backends[backend].lane(self.id))
            .clone()
    }

    /// Dispatches one command.
    async fn handle(&mut self, args: Vec<Bytes>, raw: Option<Bytes>) -> Flow {
        if let Some(Err(e)) = self.rate.as_ref().map(rate::CommandRate::admit) {
            return self.fail(e).await;
        }
        let cmd = match Command::parse(args) {
            Ok(cmd) => cmd,
            Err(CommandError::Arity(name)) if is_exec(&name) => {
                let reason = format!("wrong number of arguments for '{name}' command");
                return self.reject_exec(&reason).await;
            }
            Err(e) => return self.fail(e.into()).await,
        };
        let name = cmd.name();
        let local = match cmd.spec.dispatch {
            Dispatch::Local(local) => Some(local),
            _ => None,
        };
        // Refused before it runs: EXEC words it as EXECABORT, as redis-server's
        // `rejectCommand` does.
        let exec = cmd.spec.dispatch == Dispatch::Transaction(Transaction::Exec);
        if self.user.is_none() && !local.is_some_and(Local::before_auth) {
            if exec {
                return self.reject_exec(&ProxyError::NoAuth.to_string()).await;
            }
            return self.reply(ProxyError::NoAuth.to_frame()).await;
        }
        if self.proto == Protocol::Resp2
            && self.pubsub.as_ref().is_some_and(|p| p.active())
            && !matches!(cmd.spec.dispatch, Dispatch::Subscribe(_))
            && !local.is_some_and(Local::while_subscribed)
        {
            let refusal = format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                name.to_ascii_lowercase().replace('|', " ")
            );
            if exec {
                return self.reject_exec(&refusal).await;
            }
            return self.fail(ProxyError::Redis(format!("ERR {refusal}"))).await;
        }
        match cmd.spec.policy {
            Policy::Reject(reason) => {
                return self
                    .fail(ProxyError::Rejected {
                        command: display_name(name),
                        reason: reason.into(),
                    })
                    .await;
            }
            Policy::Admin if !self.admin_allowed(name) => {
                let denied = ProxyError::AdminDenied {
                    command: display_name(name),
                    entry: name.to_string(),
                };
                return self.fail(denied).await;
            }
            _ => {}
        }
        match cmd.spec.dispatch {
            Dispatch::Local(local) => {
                let authenticated = self.user.is_some();
                let flow = self.local(cmd, local).await;
                if self.user.is_some() != authenticated {
                    // AUTH/HELLO succeeded, or RESET: frames from now on get its limits.
                    self.apply_request_limits();
                }
                return flow;
            }
            Dispatch::Transaction(t) => return self.transaction(cmd, t).await,
            Dispatch::Subscribe(s) => return self.subscribe(cmd, s).await,
            _ => {}
        }
        if cmd.spec.extras.keyspace != Keyspace::Keys && self.ctx.router.backends().len() > 1 {
            return self.keyspace(cmd).await;
        }
        let backend = match self.backend_for(&cmd) {
            Ok(backend) => backend,
            Err(e) => return self.fail(e).await,
        };
        if let Policy::Emulate(emulation) = cmd.spec.policy {
            return self.emulate(cmd, emulation, backend).await;
        }
        let blocking = self.multi.is_none()
            && match cmd.spec.dispatch {
                Dispatch::Blocking => true,
                Dispatch::BlockingWithOption => cmd.has_word("BLOCK"),
                _ => false,
            };
        let nulls = cmd.null_style();
        let (cmd, encoding, post) = match self.seal(cmd, raw, backend) {
            Ok(prepared) => prepared,
            Err(e) => return self.fail(e).await,
        };
        if blocking {
            self.blocking(cmd, encoding, post, nulls, backend).await
        } else {
            self.forward(cmd, encoding, post, nulls, backend).await
        }
    }

    /// The backend that runs `cmd`: its keys' route (the default route for a
    /// keyless command), which must serve the command and have what it needs,
    /// and must be the transaction's backend inside MULTI/WATCH.
    fn backend_for(&self, cmd: &Command) -> Result<usize, ProxyError> {
        let ctx = &self.ctx;
        let route = ctx.router.route_command(cmd).map_err(ProxyError::Routing)?;
        let index = ctx.router.routes()[route].backend;
        let backend = &ctx.backends[index];
        let caps = backend.capabilities();
        let needs = match cmd.spec.dispatch {
            Dispatch::BlockingWithOption if cmd.has_word("BLOCK") => Some(Capability::Blocking),
            _ => cmd.spec.needs(),
        };
        let served = match cmd.spec.policy {
            Policy::Emulate(e) if e.on_one_value() => true,
            _ => backend.serves(cmd.spec),
        };
        if !served || needs.is_some_and(|c| !caps.has(c)) {
            return Err(not_supported(cmd.name(), backend.as_ref()));
        }
        if self.db != 0 && !caps.has(Capability::Databases) {
            return Err(not_supported(
                &format!("SELECT {}", self.db),
                backend.as_ref(),
            ));
        }
        if let Some(held) = self.transaction_backend()
            && held != index
        {
            return Err(ProxyError::Unsupported(format!(
                "{} is in route {} but this client's transaction or WATCH is on backend '{}'; a transaction's keys must share a backend",
                display_name(cmd.name()),
                ctx.router.routes()[route].label(),
                ctx.backends[held].name()
            )));
        }
        Ok(index)
    }

    /// Decides how the command goes upstream: as the client sent it, or with
    /// its values sealed (by the lane, as it writes the command). The
    /// returned post-processing opens the reply's values.
    fn seal(
        &self,
        mut cmd: Command,
        raw: Option<Bytes>,
        backend: usize,
    ) -> Result<(Command, Encoding, Post), ProxyError> {
        let raw = raw.filter(|_| self.ctx.backends[backend].takes_client_bytes());
        let as_sent = |raw: Option<Bytes>| raw.map_or(Encoding::Args, Encoding::Raw);
        let Policy::Encrypt(rule) = cmd.spec.policy else {
            let post = match cmd.spec.extras.syntax {
                Syntax::NumSub { shard } => Post::Subscribers { shard, backend },
                _ => Post::None,
            };
            return Ok((cmd, as_sent(raw), post));
        };
        let prepared = crate::values::prepare(rule, &mut cmd)?;
        let encoding = match prepared.outgoing {
            Outgoing::Unchanged => as_sent(raw),
            Outgoing::Rewritten => Encoding::Args,
            Outgoing::Sealed => Encoding::Sealed {
                by: self.ctx.values.clone(),
                rule,
            },
        };
        let post = if prepared.reply_has_values {
            // Client bytes going upstream as they are: the plan can take the
            // arguments instead of copying them.
            // Inside MULTI the command is kept for EXEC too.
            let args = if matches!(encoding, Encoding::Raw(_)) && self.multi.is_none() {
                std::mem::take(&mut cmd.args)
            } else {
                cmd.args.clone()
            };
            Post::Open(
                OpenPlan {
                    rule,
                    args,
                    db: self.db,
                    proto: self.proto,
                },
                backend,
            )
        } else if rule == ValueRule::Publish {
            Post::Published {
                channel: cmd.args[1].clone(),
                shard: cmd.spec.extras.syntax == Syntax::ShardPublish,
                backend,
            }
        } else {
            Post::None
        };
        Ok((cmd, encoding, post))
    }

    /// Sends a command to the client's current upstream connection on
    /// `backend`: the pinned one inside MULTI/WATCH, else its shared lane.
    async fn forward(
        &mut self,
        cmd: Command,
        encoding: Encoding,
        post: Post,
        nulls: NullStyle,
        backend: usize,
    ) -> Flow {
        let timeout = Some(self.ctx.backends[backend].command_timeout());
        let target = self.ctx.backends[backend].as_ref();
        if self.multi.is_some() && !target.capabilities().has(Capability::Transactions) {
            return self.fail(not_supported("MULTI", target)).await;
        }
        if let Err(e) = self.charge_queue(&cmd.args) {
            return self.fail(e).await;
        }
        let Some((cmd, encoding, post)) = self.queue_here(cmd, encoding, post, backend) else {
            return self.reply(reply::simple("QUEUED")).await;
        };
        if let Some(lease) = self.pinned.take() {
            let route = Route::Pinned(lease.id());
            self.pinned = Some(lease);
            if !self.fence(route).await {
                return Flow::Close;
            }
            let (mut request, rx) = Request::with_spec(Some(cmd.spec), cmd.args, self.db);
            request.encoding = encoding;
            request.account = Some(self.account());
            let sent = self.pinned.as_mut().expect("put back above").send(request);
            return match sent {
                Ok(()) => {
                    let mut slot = self.pending_slot(rx, nulls, timeout, backend);
                    slot.post = post;
                    self.push(slot).await;
                    Flow::Continue
                }
                Err(e) => {
                    self.drop_pinned();
                    self.fail(e).await
                }
            };
        }
        if !self.fence(Route::Lane(backend)).await {
            return Flow::Close;
        }
        let (mut request, rx) = Request::with_spec(Some(cmd.spec), cmd.args, self.db);
        request.encoding = encoding;
        request.account = Some(self.account());
        if let Err(mpsc::error::SendError(request)) = self.lane(backend).send(request) {
            request.fail(ProxyError::UpstreamLost {
                upstream: self.ctx.backends[backend].name().to_string(),
                reason: "lane closed".into(),
            });
        }
        let mut slot = self.pending_slot(rx, nulls, timeout, backend);
        slot.post = post;
        self.push(slot).await;
        Flow::Continue
    }

    /// A blocking command gets a dedicated connection for as long as it blocks.
    async fn blocking(
        &mut self,
        cmd: Command,
        encoding: Encoding,
        post: Post,
        nulls: NullStyle,
        backend: usize,
    ) -> Flow {
        if !self.fence(Route::Fresh).await {
            return Flow::Close;
        }
        let mut lease = match self.dedicated(backend, Purpose::Blocking).await {
            Ok(lease) => lease,
            Err(e) => return self.fail(e).await,
        };
        lease.set_state(ConnState::Blocked);
        self.route = Route::Blocking;
        let (mut request, rx) = Request::with_spec(Some(cmd.spec), cmd.args, self.db);
        request.encoding = encoding;
        request.account = Some(self.account());
        match lease.send(request) {
            Ok(()) => {
                let mut slot = self.pending_slot(rx, nulls, None, backend);
                slot.post = post;
                if let SlotReply::Pending {
                    lease: slot_lease, ..
                } = &mut slot.reply
                {
                    *slot_lease = Some(lease);
                }
                self.push(slot).await;
                Flow::Continue
            }
            Err(e) => self.fail(e).await,
        }
    }

    /// A command over the whole database (SCAN, KEYS, DBSIZE, RANDOMKEY,
    /// FLUSHDB/FLUSHALL) with routes to several backends.
    async fn keyspace(&mut self, cmd: Command) -> Flow {
        match cmd.spec.extras.keyspace {
            Keyspace::Keys => unreachable!("only whole-database commands come here"),
            Keyspace::Scan | Keyspace::DbSize | Keyspace::RandomKey => {
                let msg = format!(
                    "{} is not available with routes to several backends: it would have to span stores that share no cursor or count; run it per prefix with KEYS, or on each store",
                    display_name(cmd.name())
                );
                self.fail(ProxyError::Unsupported(msg)).await
            }
            Keyspace::KeysPattern | Keyspace::Flush => self.fan_out(cmd).await,
        }
    }

    /// KEYS (each backend's keys that its routes own, merged) and FLUSHDB /
    /// FLUSHALL (every backend), run on every backend in turn.
    async fn fan_out(&mut self, cmd: Command) -> Flow {
        if !self.fence(Route::None).await {
            return Flow::Close;
        }
        let flush = cmd.spec.extras.keyspace == Keyspace::Flush;
        let mut keys = Vec::new();
        for index in self.ctx.router.backends() {
            let backend = self.ctx.backends[index].clone();
            if !backend.serves(cmd.spec) {
                return self.fail(not_supported(cmd.name(), backend.as_ref())).await;
            }
            let (request, rx) = Request::with_spec(Some(cmd.spec), cmd.args.clone(), self.db);
            if self.lane(index).send(request).is_err() {
                let lost = ProxyError::UpstreamLost {
                    upstream: backend.name().to_string(),
                    reason: "lane closed".into(),
                };
                return self.fail(lost).await;
            }
            let timeout = backend.command_timeout();
            let deadline = tokio::time::Instant::now() + timeout;
            let reply = match crate::backend::await_reply(
                rx,
                Some(deadline),
                backend.name(),
                timeout,
            )
            .await
            {
                Ok(reply) => reply.frame,
                Err(e) => return self.fail(e).await,
            };
            if reply::error_text(&reply).is_some() {
                return self.reply(reply).await;
            }
            let listed: Vec<Frame> = match reply {
                Frame::Array { data, .. } => data,
                Frame::Set { data, .. } => data.into_iter().collect(),
                _ => Vec::new(),
            };
            if !flush {
                // A key a backend holds under another route's prefix is not visible.
                keys.extend(listed.into_iter().filter(|k| {
                    reply::text_of(k).is_some_and(|k| {
                        let route = self.ctx.router.route_of(k);
                        self.ctx.router.routes()[route].backend == index
                    })
                }));
            }
        }
        if flush {
            self.reply(reply::ok()).await
        } else {
            self.reply(reply::array(keys)).await
        }
    }

    /// RESET: back to a fresh, unauthenticated RESP2 connection.
    async fn reset(&mut self) -> Flow {
        if !self.fence(Route::None).await {
            return Flow::Close;
        }
        self.drop_pinned();
        self.pubsub = None;
        self.user = None;
        self.proto = Protocol::Resp2;
        self.db = self.ctx.default_backend().default_db();
        self.name = None;
        self.reply(reply::simple("RESET")).await
    }
}

/// What a read from the client yielded.
fn classify(next: Option<Result<request::Request, RequestError>>) -> Next {
    match next {
        Some(Ok(request)) => Next::Request(request),
        Some(Err(RequestError::Protocol(msg))) => Next::Protocol(msg),
        Some(Err(RequestError::Io(e))) => {
            tracing::debug!(error = %e, "client read failed");
            Next::Gone
        }
        None => Next::Gone,
    }
}

/// Bytes a request holds (for the read-ahead bound).
fn request_size(request: &request::Request) -> usize {
    request.args.iter().map(Bytes::len).sum::<usize>() + request.raw.as_ref().map_or(0, Bytes::len)
}

/// `CLIENT|KILL` → `CLIENT KILL`, as users type it.
/// Whether a command the table could not classify is EXEC (by its row).
fn is_exec(name: &str) -> bool {
    crate::commands::lookup(name.as_bytes(), None)
        .is_some_and(|spec| spec.dispatch == Dispatch::Transaction(Transaction::Exec))
}

fn display_name(name: &str) -> String {
    name.replace('|', " ")
}
