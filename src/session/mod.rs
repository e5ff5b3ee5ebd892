//! One client's session: authentication, protocol version, database,
//! transactions and Pub/Sub, and the decision of where each command runs. See
//! `LIFECYCLE.md` beside this file for the states and connection pinning.
//!
//! The session task reads and dispatches commands in order; a writer task
//! ([`writer`]) writes the replies in the same order. When a client's commands
//! move from one upstream connection to another, the session first waits for
//! the earlier replies (a fence), so commands never overtake each other.

mod emulate;
mod local;
mod long_double;
mod post;
mod pubsub;
mod shutdown;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::auth::Authenticator;
use crate::backend::redis::{LeaseState, PinnedLease, RedisBackend};
use crate::backend::{Backend, Encoding, Lane, Request};
use crate::commands::{Command, CommandSpec, Dispatch, Policy};
use crate::config::Config;
use crate::error::ProxyError;
use crate::protocol::reply::{self, NullStyle};
use crate::protocol::request::{RequestCodec, RequestError};
use crate::protocol::{Frame, Protocol};
use crate::values::{OpenPlan, Outgoing, ValueCrypt};

pub use post::Post;
use pubsub::PubSub;
pub use shutdown::Shutdown;
pub use writer::{Slot, SlotReply};

/// Replies a client may have queued before its reader waits (pipelining backpressure).
const SLOT_QUEUE: usize = 1024;

/// Process-wide state every session shares.
pub struct Context {
    pub config: Arc<Config>,
    pub auth: Authenticator,
    /// Shared with the lanes, which seal values as they write them.
    pub values: Arc<ValueCrypt>,
    pub backend: Arc<RedisBackend>,
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
    pub fn upstream_label(&self) -> String {
        self.backend.label().to_string()
    }

    /// The `# Proxy` section of INFO.
    pub fn proxy_info(&self) -> String {
        let b = self.backend.stats();
        let s = &self.stats;
        format!(
            "# Proxy\r\nsealcache_version:{}\r\nuptime_in_seconds:{}\r\nconnected_clients:{}\r\ntotal_connections_received:{}\r\nrejected_connections:{}\r\nauth_failures:{}\r\nupstream:{}\r\nupstream_backend:{}\r\nupstream_pool_size:{}\r\nupstream_pool_connected:{}\r\nupstream_pinned_in_use:{}\r\nupstream_pinned_idle:{}\r\nupstream_pinned_limit:{}\r\nupstream_connections:{}\r\nupstream_connections_opened:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            self.started.elapsed().as_secs(),
            s.connected_clients.load(Ordering::Relaxed),
            s.total_connections.load(Ordering::Relaxed),
            s.rejected_connections.load(Ordering::Relaxed),
            s.auth_failures.load(Ordering::Relaxed),
            self.backend.label(),
            self.backend.kind(),
            b.lanes,
            b.lanes_connected,
            b.pinned_in_use,
            b.pinned_idle,
            b.pinned_limit,
            b.lanes_connected + b.pinned_in_use + b.pinned_idle + self.pubsub_connections(),
            b.connections_opened,
        ) + &self.pubsub_info()
            + &self.encryption_info()
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

/// Which upstream connection a client's last command went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    None,
    Shared,
    Pinned,
    /// A blocking command's own connection.
    Dedicated,
    PubSub,
}

/// What the caller does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

struct Multi {
    /// A command was refused while queueing: EXEC must abort.
    failed: bool,
    /// How to open each queued command's reply inside EXEC's.
    posts: Vec<Post>,
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
    lane: Lane,
    /// The dedicated connection holding WATCH/MULTI state.
    pinned: Option<PinnedLease>,
    multi: Option<Multi>,
    pubsub: Option<PubSub>,
    /// Cancelled when the client must be disconnected at once (its Pub/Sub
    /// queue overflowed); whoever cancels it logs why. Also cancelled (from
    /// its parent) when a shutdown drains the session.
    cut_off: CancellationToken,
    slots: mpsc::Sender<Slot>,
    route: Route,
    /// Pending upstream replies not yet written (fences and idle checks read it).
    outstanding: Arc<AtomicUsize>,
    command_timeout: Duration,
}

/// Serves one client connection until it closes, or until `stop` drains it.
pub async fn run<S>(stream: S, ctx: Arc<Context>, peer: Peer, stop: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = ctx.stats.next_client_id.fetch_add(1, Ordering::Relaxed) + 1;
    let span = tracing::info_span!("client", client.id = id, client.addr = %peer.describe());
    serve(stream, ctx, peer, id, stop).instrument(span).await
}

async fn serve<S>(stream: S, ctx: Arc<Context>, peer: Peer, id: u64, stop: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let (slots, slot_rx) = mpsc::channel(SLOT_QUEUE);
    let outstanding = Arc::new(AtomicUsize::new(0));
    let mut writer = tokio::spawn(writer::run(wr, slot_rx, ctx.clone(), outstanding.clone()));
    let limits = &ctx.config.limits;
    let mut requests = FramedRead::new(
        rd,
        RequestCodec::new(limits.max_bulk_len, limits.max_multibulk_len),
    );
    let mut session = Session {
        lane: ctx.backend.lane(id),
        db: ctx.config.upstream.db,
        command_timeout: ctx.config.upstream.command_timeout,
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
        cut_off: stop.session_token(),
        slots,
        route: Route::None,
        outstanding,
    };
    tracing::debug!("client connected");
    loop {
        let limit = if session.user.is_none() {
            limits.auth_timeout
        } else {
            limits.idle_timeout
        };
        let read = async {
            if limit.is_zero() {
                Ok(requests.next().await)
            } else {
                tokio::time::timeout(limit, requests.next()).await
            }
        };
        let read = tokio::select! {
            biased;
            () = session.cut_off.cancelled() => {
                // A shutdown cancels it too: then no further command is read,
                // but the ones read are answered (below).
                if !stop.is_draining() {
                    writer.abort();
                }
                break;
            }
            read = read => read,
        };
        let next = match read {
            Ok(next) => next,
            Err(_) if session.busy() => continue,
            Err(_) => {
                let why = if session.user.is_none() {
                    "no authentication within auth_timeout_secs"
                } else {
                    "idle timeout"
                };
                tracing::info!(reason = why, "closing client connection");
                break;
            }
        };
        match next {
            None => break,
            Some(Err(RequestError::Protocol(msg))) => {
                tracing::info!(error = %msg, "protocol error; closing client connection");
                session
                    .push(Slot::ready(
                        reply::error(format!("ERR Protocol error: {msg}")),
                        session.proto,
                    ))
                    .await;
                session.push_close().await;
                break;
            }
            Some(Err(RequestError::Io(e))) => {
                tracing::debug!(error = %e, "client read failed");
                break;
            }
            Some(Ok(request)) => {
                if session.handle(request.args, request.raw).await == Flow::Close {
                    break;
                }
            }
        }
    }
    let grace = session.command_timeout;
    let owed = session.outstanding.clone();
    let draining = stop.is_draining();
    let finish = async {
        if draining {
            // After the replies owed: close_notify and FIN, a clean end of stream.
            session.push_close().await;
        }
        drop(session);
        // Let the writer deliver replies already owed (clients may half-close after
        // sending), but never wait on a blocking command for a client that is gone.
        matches!(tokio::time::timeout(grace, &mut writer).await, Ok(Ok(())))
    };
    if !stop.finish(finish, &owed).await {
        writer.abort();
    } else if draining {
        stop.linger(requests.into_inner()).await;
    }
    tracing::debug!("client disconnected");
}

impl Session {
    /// `allowed_admin_commands` entries may be written `CONFIG|SET` or `CONFIG SET`.
    fn admin_allowed(&self, name: &str) -> bool {
        self.ctx
            .config
            .allowed_admin_commands
            .iter()
            .any(|c| c.trim().replace(' ', "|").eq_ignore_ascii_case(name))
    }

    fn busy(&self) -> bool {
        self.outstanding.load(Ordering::Acquire) > 0
            || self.pubsub.as_ref().is_some_and(|p| p.active())
    }

    async fn push(&self, slot: Slot) {
        // A closed writer means the client is gone; the reader notices next.
        let _ = self.slots.send(slot).await;
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

    /// Waits until every reply owed so far has arrived, before a command goes
    /// to a different upstream connection than the previous one.
    async fn fence(&mut self, next: Route) {
        if self.route != next && self.outstanding.load(Ordering::Acquire) > 0 {
            let (tx, rx) = oneshot::channel();
            self.push(Slot {
                reply: SlotReply::Fence(tx),
                proto: self.proto,
                nulls: NullStyle::Bulk,
                post: Post::None,
            })
            .await;
            let _ = rx.await;
        }
        self.route = next;
    }

    fn pending_slot(
        &self,
        rx: crate::backend::ReplyRx,
        spec: &CommandSpec,
        timeout: Option<Duration>,
    ) -> Slot {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        let nulls = if spec.null_array {
            if spec.name == "GEOPOS" {
                NullStyle::ArrayInElements
            } else {
                NullStyle::ArrayAtTop
            }
        } else {
            NullStyle::Bulk
        };
        Slot {
            reply: SlotReply::Pending {
                rx,
                timeout,
                lease: None,
            },
            proto: self.proto,
            nulls,
            post: Post::None,
        }
    }

    /// Dispatches one command.
    async fn handle(&mut self, args: Vec<Bytes>, raw: Option<Bytes>) -> Flow {
        let cmd = match Command::parse(args) {
            Ok(cmd) => cmd,
            Err(e) => return self.fail(e.into()).await,
        };
        let name = cmd.name();
        if self.user.is_none() && !matches!(name, "AUTH" | "HELLO" | "PING" | "QUIT") {
            return self.reply(ProxyError::NoAuth.to_frame()).await;
        }
        if self.proto == Protocol::Resp2
            && self.pubsub.as_ref().is_some_and(|p| p.active())
            && !matches!(cmd.spec.dispatch, Dispatch::Subscribe)
            && !matches!(name, "PING" | "QUIT" | "RESET")
        {
            return self
                .fail(ProxyError::Redis(format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    name.to_ascii_lowercase().replace('|', " ")
                )))
                .await;
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
            Dispatch::Local => return self.local(cmd).await,
            Dispatch::Transaction => return self.transaction(cmd).await,
            Dispatch::Subscribe => return self.subscribe(cmd).await,
            _ => {}
        }
        if let Policy::Emulate(emulation) = cmd.spec.policy {
            return self.emulate(cmd, emulation).await;
        }
        let blocking = self.multi.is_none()
            && match cmd.spec.dispatch {
                Dispatch::Blocking => true,
                Dispatch::BlockingWithOption => cmd.has_word("BLOCK"),
                _ => false,
            };
        let (cmd, encoding, post) = match self.seal(cmd, raw) {
            Ok(prepared) => prepared,
            Err(e) => return self.fail(e).await,
        };
        if blocking {
            self.blocking(cmd, encoding, post).await
        } else {
            self.forward(cmd, encoding, post).await
        }
    }

    /// Decides how the command goes upstream: as the client sent it, or with
    /// its values sealed (by the lane, as it writes the command). The
    /// returned post-processing opens the reply's values.
    fn seal(
        &self,
        mut cmd: Command,
        raw: Option<Bytes>,
    ) -> Result<(Command, Encoding, Post), ProxyError> {
        let as_sent = |raw: Option<Bytes>| raw.map_or(Encoding::Args, Encoding::Raw);
        let Policy::Encrypt(rule) = cmd.spec.policy else {
            return Ok((cmd, as_sent(raw), Post::None));
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
            let args = if matches!(encoding, Encoding::Raw(_)) {
                std::mem::take(&mut cmd.args)
            } else {
                cmd.args.clone()
            };
            Post::Open(OpenPlan {
                rule,
                args,
                db: self.db,
                proto: self.proto,
            })
        } else {
            Post::None
        };
        Ok((cmd, encoding, post))
    }

    /// Sends a command to the client's current upstream connection: the
    /// pinned one inside MULTI/WATCH, else its shared lane.
    async fn forward(&mut self, cmd: Command, encoding: Encoding, post: Post) -> Flow {
        let timeout = Some(self.command_timeout);
        if let Some(mut lease) = self.pinned.take() {
            self.fence(Route::Pinned).await;
            let sent = lease.send(cmd.args, encoding, self.db).await;
            self.pinned = Some(lease);
            // A queued command's reply is +QUEUED; its values come back in EXEC's reply.
            let post = match self.multi.as_mut() {
                Some(multi) if !matches!(cmd.spec.name, "MULTI" | "EXEC" | "DISCARD") => {
                    multi.posts.push(post);
                    Post::None
                }
                _ => post,
            };
            return match sent {
                Ok(rx) => {
                    let mut slot = self.pending_slot(rx, cmd.spec, timeout);
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
        self.fence(Route::Shared).await;
        let (mut request, rx) = Request::new(cmd.args, self.db);
        request.encoding = encoding;
        if let Err(mpsc::error::SendError(request)) = self.lane.send(request) {
            request.fail(ProxyError::UpstreamLost {
                upstream: self.ctx.upstream_label(),
                reason: "lane closed".into(),
            });
        }
        let mut slot = self.pending_slot(rx, cmd.spec, timeout);
        slot.post = post;
        self.push(slot).await;
        Flow::Continue
    }

    /// A blocking command gets a dedicated connection for as long as it blocks.
    async fn blocking(&mut self, cmd: Command, encoding: Encoding, post: Post) -> Flow {
        self.fence(Route::Dedicated).await;
        let mut lease = match self.ctx.backend.pinned().acquire().await {
            Ok(lease) => lease,
            Err(e) => return self.fail(e).await,
        };
        lease.state = LeaseState::Blocked;
        match lease.send(cmd.args, encoding, self.db).await {
            Ok(rx) => {
                let mut slot = self.pending_slot(rx, cmd.spec, None);
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

    /// Ends MULTI/WATCH pinning; the lease cleans up and returns the connection.
    fn drop_pinned(&mut self) {
        self.pinned = None;
        self.multi = None;
    }

    async fn transaction(&mut self, cmd: Command) -> Flow {
        match cmd.name() {
            "MULTI" => {
                if self.multi.is_some() {
                    return self
                        .reply(reply::error("ERR MULTI calls can not be nested"))
                        .await;
                }
                if let Err(e) = self.ensure_pinned().await {
                    return self.fail(e).await;
                }
                if let Some(lease) = self.pinned.as_mut() {
                    lease.state = LeaseState::InMulti;
                }
                self.multi = Some(Multi {
                    failed: false,
                    posts: Vec::new(),
                });
                self.forward(cmd, Encoding::Args, Post::None).await
            }
            "EXEC" | "DISCARD" => {
                let Some(multi) = self.multi.take() else {
                    let msg = format!("ERR {} without MULTI", cmd.name());
                    return self.reply(reply::error(msg)).await;
                };
                let abort = multi.failed && cmd.name() == "EXEC";
                let flow = if abort {
                    if let Some(lease) = self.pinned.as_mut() {
                        // Its reply is not the client's: Redis answers EXEC with EXECABORT.
                        let _ = lease
                            .send(
                                vec![Bytes::from_static(b"DISCARD")],
                                Encoding::Args,
                                self.db,
                            )
                            .await;
                    }
                    self.reply(reply::error(
                        "EXECABORT Transaction discarded because of previous errors.",
                    ))
                    .await
                } else if cmd.name() == "EXEC" {
                    self.forward(cmd, Encoding::Args, Post::Exec(multi.posts))
                        .await
                } else {
                    self.forward(cmd, Encoding::Args, Post::None).await
                };
                if let Some(lease) = self.pinned.as_mut() {
                    lease.state = LeaseState::Clean;
                }
                self.pinned = None;
                flow
            }
            "WATCH" => {
                if self.multi.is_none() {
                    if let Err(e) = self.ensure_pinned().await {
                        return self.fail(e).await;
                    }
                    if let Some(lease) = self.pinned.as_mut() {
                        lease.state = LeaseState::Watching;
                    }
                }
                self.forward(cmd, Encoding::Args, Post::None).await
            }
            _ => {
                // UNWATCH
                if self.multi.is_some() {
                    return self.forward(cmd, Encoding::Args, Post::None).await;
                }
                if self.pinned.is_none() {
                    return self.reply(reply::ok()).await;
                }
                let flow = self.forward(cmd, Encoding::Args, Post::None).await;
                if let Some(lease) = self.pinned.as_mut() {
                    lease.state = LeaseState::Clean;
                }
                self.pinned = None;
                flow
            }
        }
    }

    async fn ensure_pinned(&mut self) -> Result<(), ProxyError> {
        if self.pinned.as_ref().is_some_and(|l| !l.is_alive()) {
            self.pinned = None;
        }
        if self.pinned.is_none() {
            self.fence(Route::Pinned).await;
            self.pinned = Some(self.ctx.backend.pinned().acquire().await?);
        }
        Ok(())
    }

    /// RESET: back to a fresh, unauthenticated RESP2 connection.
    async fn reset(&mut self) -> Flow {
        self.fence(Route::None).await;
        self.drop_pinned();
        self.pubsub = None;
        self.user = None;
        self.proto = Protocol::Resp2;
        self.db = self.ctx.config.upstream.db;
        self.name = None;
        self.reply(reply::simple("RESET")).await
    }
}

/// `CLIENT|KILL` → `CLIENT KILL`, as users type it.
fn display_name(name: &str) -> String {
    name.replace('|', " ")
}
