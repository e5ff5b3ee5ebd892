//! Storage backends behind one contract ([`Backend`]), so a route can store
//! its sealed data in Redis, in the process's memory or in DynamoDB and the
//! session cannot tell them apart. `docs/backends.md` describes the contract.
//!
//! A backend offers:
//! - ordered *lanes*: a client's ordinary commands all go down one lane and
//!   their replies come back in order;
//! - the capabilities it declares ([`capability`]): connections of a client's
//!   own for MULTI/WATCH and for blocking commands ([`Connection`]), a Pub/Sub
//!   hub ([`pubsub`]), several databases;
//! - one atomic read-modify-write primitive ([`rmw`]) for the commands
//!   sealcache emulates (INCR, APPEND, RENAME…), behind the process's
//!   [`gate`], which keeps operations on one key from overlapping and
//!   coalesces those that wait.
//!
//! A backend knows nothing of sessions and never sees plaintext: requests
//! carry their values sealed, or a [`SealOnWrite`] that seals them as the
//! backend writes them (the Redis lanes' zero-copy path).

pub mod capability;
pub mod dynamodb;
pub mod fallback;
pub mod gate;
pub mod memory;
pub mod pubsub;
pub mod redis;
pub mod rmw;
pub mod router;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use capability::{BackendKind, Capabilities, Capability};

use crate::commands::{CommandSpec, ValueRule};
use crate::config::OutputBufferLimit;
use crate::error::ProxyError;
use crate::protocol::reply::{self, NullStyle};
use crate::protocol::{Frame, Protocol};

/// A reply from a backend: the frame, and its exact RESP3 bytes when the
/// backend received it that way (so it can be forwarded without re-encoding).
#[derive(Debug, Clone)]
pub struct Reply {
    pub frame: Frame,
    pub raw: Option<Bytes>,
    /// `raw` is a reply the decoder cannot represent (a RESP3 set holding
    /// maps…), and `frame` an error saying so. The bytes reach the client
    /// (transcoded for RESP2) when nothing needs to read the reply; whatever
    /// must read it (decrypting values, redacting, emulating) sees the error.
    pub undecoded: bool,
}

impl Reply {
    pub fn new(frame: Frame) -> Self {
        Reply {
            frame,
            raw: None,
            undecoded: false,
        }
    }

    /// A decoded upstream reply and, when the upstream speaks RESP3, its bytes.
    pub fn upstream(frame: Frame, raw: Option<Bytes>) -> Self {
        Reply {
            frame,
            raw,
            undecoded: false,
        }
    }

    /// An upstream reply known only as bytes; `error` stands in for its frame.
    pub fn undecoded(raw: Bytes, error: Frame) -> Self {
        Reply {
            frame: error,
            raw: Some(raw),
            undecoded: true,
        }
    }

    /// Appends the reply in the client's protocol.
    pub fn encode(&self, out: &mut BytesMut, proto: Protocol, nulls: NullStyle) {
        match &self.raw {
            Some(raw) if self.undecoded => reply::encode_undecoded(out, raw, proto, nulls),
            raw => reply::encode(out, &self.frame, raw.as_ref(), proto, nulls),
        }
    }

    /// Bytes this reply is charged to its client's output budget: its RESP3
    /// bytes, or an estimate from the frame when it came from a RESP2
    /// upstream. Lane and writer both call this, so charge and release match.
    pub fn wire_size(&self) -> usize {
        match &self.raw {
            Some(raw) => raw.len(),
            None => frame_size(&self.frame),
        }
    }
}

/// Roughly the RESP bytes of `frame`: its payload plus a header per element.
fn frame_size(frame: &Frame) -> usize {
    const HEADER: usize = 16;
    match frame {
        Frame::Array { data, .. } | Frame::Push { data, .. } => {
            data.iter().map(frame_size).sum::<usize>() + HEADER
        }
        Frame::Set { data, .. } => data.iter().map(frame_size).sum::<usize>() + HEADER,
        Frame::Map { data, .. } => {
            data.iter()
                .map(|(k, v)| frame_size(k) + frame_size(v))
                .sum::<usize>()
                + HEADER
        }
        Frame::BlobString { data, .. }
        | Frame::BlobError { data, .. }
        | Frame::SimpleString { data, .. }
        | Frame::BigNumber { data, .. }
        | Frame::VerbatimString { data, .. } => data.len() + HEADER,
        Frame::SimpleError { data, .. } => data.len() + HEADER,
        _ => HEADER,
    }
}

pub type ReplyResult = Result<Reply, ProxyError>;
pub type ReplyTx = oneshot::Sender<ReplyResult>;
pub type ReplyRx = oneshot::Receiver<ReplyResult>;

/// One command for a backend lane.
pub struct Request {
    /// The command's row of the table (`None` only for a name the table does
    /// not have, which sealcache never sends).
    pub spec: Option<&'static CommandSpec>,
    /// Arguments, name first. Empty when `encoding` is [`Encoding::Raw`] and
    /// the session lent them to the reply's post-processing: the client's
    /// bytes are then their only copy ([`Request::sealed_args`] decodes them).
    pub args: Vec<Bytes>,
    /// How the lane writes `args`.
    pub encoding: Encoding,
    /// Database the command runs in.
    pub db: u32,
    pub kind: RequestKind,
    pub reply: ReplyTx,
    /// The client that will receive the reply, charged as the reply arrives.
    pub account: Option<Arc<dyn ReplyAccount>>,
}

/// A client's output budget, as a lane sees it. The lane charges every reply
/// the moment it arrives (not when the client's writer gets to it), so a
/// client that does not read is measured, and cut off, while the shared
/// connection keeps being drained.
pub trait ReplyAccount: Send + Sync {
    /// Charges `bytes` for a reply that just arrived. `false`: the client has
    /// been cut off, and the reply is dropped on arrival.
    fn charge(&self, bytes: usize) -> bool;
    /// Gives back a charge for a reply nobody took (its command timed out).
    fn refund(&self, bytes: usize);
}

/// How a lane turns a request into bytes.
#[derive(Clone)]
pub enum Encoding {
    /// `args` as a RESP array.
    Args,
    /// The client's exact RESP bytes for `args`, sent as they are.
    Raw(Bytes),
    /// `args` with the values among them sealed while the lane writes them:
    /// each envelope is built once, in place in the connection's output
    /// buffer, instead of in a buffer of its own that is then copied.
    Sealed {
        by: Arc<dyn SealOnWrite>,
        rule: ValueRule,
    },
}

impl fmt::Debug for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::Args => f.write_str("Args"),
            Encoding::Raw(raw) => write!(f, "Raw({} bytes)", raw.len()),
            Encoding::Sealed { rule, .. } => write!(f, "Sealed({rule:?})"),
        }
    }
}

/// Seals the values among a command's arguments as a lane writes it
/// (implemented by `values::ValueCrypt`; a backend only calls it).
pub trait SealOnWrite: Send + Sync {
    /// Appends `args` to `out` as a RESP array, the values `rule` names
    /// sealed. On error `out` is left as it was.
    fn encode_sealed(
        &self,
        rule: ValueRule,
        args: &[Bytes],
        out: &mut BytesMut,
    ) -> Result<(), ProxyError>;

    /// The arguments [`Self::encode_sealed`] writes (values sealed, reads
    /// reworded), as a list: for backends that store arguments rather than
    /// write them to a socket, and for commands replayed later (a
    /// transaction that sealcache runs at EXEC).
    fn seal_args(&self, rule: ValueRule, args: &[Bytes]) -> Result<Vec<Bytes>, ProxyError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Normal,
    /// A client's `SELECT n`: validated upstream without changing the
    /// connection's database (other clients share it).
    SelectProbe,
}

impl fmt::Debug for Request {
    /// Arguments may hold plaintext values (sealed only as the lane writes
    /// them), so only the command name and the argument count are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field(
                "command",
                &self.args.first().map(|name| String::from_utf8_lossy(name)),
            )
            .field("args", &self.args.len())
            .field("encoding", &self.encoding)
            .field("db", &self.db)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// A request for `args`, its table row looked up by name (sealcache's
    /// own commands: SELECT, DEL, WATCH…).
    pub fn new(args: Vec<Bytes>, db: u32) -> (Request, ReplyRx) {
        let spec = args.first().and_then(|name| {
            let row = crate::commands::lookup(name, None)?;
            match (row.dispatch, args.get(1)) {
                (crate::commands::Dispatch::Container, Some(sub)) => {
                    crate::commands::lookup(name, Some(sub))
                }
                _ => Some(row),
            }
        });
        Self::with_spec(spec, args, db)
    }

    /// A request for a client's command, whose row the session already has.
    pub fn with_spec(
        spec: Option<&'static CommandSpec>,
        args: Vec<Bytes>,
        db: u32,
    ) -> (Request, ReplyRx) {
        let (reply, rx) = oneshot::channel();
        (
            Request {
                spec,
                args,
                encoding: Encoding::Args,
                db,
                kind: RequestKind::Normal,
                reply,
                account: None,
            },
            rx,
        )
    }

    /// Answers the request with an error without running it.
    pub fn fail(self, err: ProxyError) {
        let _ = self.reply.send(Err(err));
    }

    /// The arguments as the backend must store them: values sealed. Lanes
    /// that write to a socket use [`Encoding`] directly instead.
    pub fn sealed_args(&mut self) -> Result<Vec<Bytes>, ProxyError> {
        match &self.encoding {
            Encoding::Sealed { by, rule } => by.seal_args(*rule, &self.args),
            Encoding::Raw(raw) if self.args.is_empty() => args_of(raw),
            Encoding::Args | Encoding::Raw(_) => Ok(std::mem::take(&mut self.args)),
        }
    }

    /// Delivers the reply, charging the client's output budget first (a
    /// client that was cut off gets nothing, and the charge is refunded when
    /// nobody takes the reply).
    pub fn answer(self, reply: ReplyResult) {
        match self.account {
            None => {
                let _ = self.reply.send(reply);
            }
            Some(account) => {
                let size = reply.as_ref().map_or(0, Reply::wire_size);
                if account.charge(size) && self.reply.send(reply).is_err() {
                    account.refund(size);
                }
            }
        }
    }
}

/// The arguments of a client's RESP array, sharing its bytes.
pub(crate) fn args_of(raw: &Bytes) -> Result<Vec<Bytes>, ProxyError> {
    use redis_protocol::resp2::decode::decode_bytes;
    use redis_protocol::resp2::types::BytesFrame;
    let not_an_array = || ProxyError::Unsupported("a request's bytes are not a RESP array".into());
    match decode_bytes(raw) {
        Ok(Some((BytesFrame::Array(items), _))) => items
            .into_iter()
            .map(|item| match item {
                BytesFrame::BulkString(arg) => Ok(arg),
                _ => Err(not_an_array()),
            })
            .collect(),
        _ => Err(not_an_array()),
    }
}

/// The sending end of an ordered lane. Unbounded: each client has at most
/// its reply-queue length of commands in flight, which bounds every lane.
pub type Lane = mpsc::UnboundedSender<Request>;

/// Which budget a connection of a client's own comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// MULTI/WATCH state, emulated commands (`upstream.max_pinned`).
    Pinned,
    /// One blocking command (`upstream.max_blocking`).
    Blocking,
}

impl Purpose {
    /// What a budget's connections are for, in errors.
    pub fn pool_name(self) -> &'static str {
        match self {
            Purpose::Pinned => {
                "dedicated upstream connections (MULTI/WATCH, emulated commands such as INCR)"
            }
            Purpose::Blocking => "upstream connections for blocking commands",
        }
    }
}

/// State a connection holds that must be undone before it is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Clean,
    Watching,
    InMulti,
    /// A blocking command is outstanding: dropping the connection abandons
    /// the command at once (it cannot pop anything for a client that left).
    Blocked,
}

/// A connection of one client's own, for state that lives across commands
/// (MULTI/WATCH) and for blocking commands. Dropping it undoes its state
/// ([`ConnState`]) and returns it to its backend.
pub trait Connection: Send + Sync {
    /// Tells this connection from every other of the process (a session
    /// fences when its commands move between connections).
    fn id(&self) -> u64;
    /// Queues a command; its reply arrives on the request's receiver, in order.
    fn send(&mut self, request: Request) -> Result<(), ProxyError>;
    fn state(&self) -> ConnState;
    fn set_state(&mut self, state: ConnState);
    fn is_alive(&self) -> bool;
}

/// One line of a backend's part of INFO (`backend_<name>_<field>:<value>`).
pub type InfoField = (&'static str, String);

/// What every backend provides to sessions.
pub trait Backend: Send + Sync + 'static {
    fn kind(&self) -> BackendKind;
    /// The configured name: errors, logs and INFO name the backend by it.
    fn name(&self) -> &str;
    fn capabilities(&self) -> Capabilities {
        self.kind().capabilities()
    }
    /// Whether the backend runs `spec` at all (its kind's column of the
    /// command table, `docs/commands.md`).
    fn serves(&self, spec: &CommandSpec) -> bool {
        self.kind().serves(spec)
    }
    /// The lane that carries the ordinary commands of client `client_id`.
    fn lane(&self, client_id: u64) -> Lane;
    /// A connection of the caller's own from `purpose`'s budget, waiting in
    /// line until `deadline` (backends without the capability refuse).
    fn connection(
        &self,
        purpose: Purpose,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<Box<dyn Connection>, ProxyError>>;
    /// How long a command waits in line for a connection by default (a
    /// backend without a pool of them: its command timeout).
    fn acquire_timeout(&self) -> Duration {
        self.command_timeout()
    }
    /// Deadline of a non-blocking command's reply.
    fn command_timeout(&self) -> Duration;
    /// The database a client starts in.
    fn default_db(&self) -> u32 {
        0
    }
    /// A Pub/Sub handle for one client; `overflow` is cancelled (and the
    /// reason logged) when the client falls further behind than `limit`.
    fn subscriber(
        &self,
        client_id: u64,
        limit: OutputBufferLimit,
        overflow: CancellationToken,
    ) -> Result<Box<dyn pubsub::Subscriber>, ProxyError>;
    /// How many keys' read-modify-writes the process's [`gate`] may put in
    /// one call of [`Backend::read_modify_write`] (their reads and writes
    /// together, one atomic step): fewer round trips where each costs one.
    /// 1 (the default): one key per call.
    fn rmw_group(&self) -> usize {
        1
    }
    /// The atomic read-modify-write of emulated commands ([`rmw`]).
    fn read_modify_write<'a>(
        &'a self,
        db: u32,
        op: &'a mut dyn rmw::Rmw,
    ) -> BoxFuture<'a, Result<(), ProxyError>>;
    /// What PUBLISH (SPUBLISH when `shard`) answers when the upstream counted
    /// `counted` receivers: a backend that fans one upstream subscription out
    /// to many clients counts its own clients instead.
    fn publish_receivers(&self, channel: &[u8], shard: bool, counted: i64) -> i64 {
        let _ = (channel, shard);
        counted
    }
    /// What PUBSUB NUMSUB (SHARDNUMSUB when `shard`) answers for `channel`
    /// when the upstream counted `counted` subscribers (see
    /// [`Backend::publish_receivers`]).
    fn subscribers(&self, channel: &[u8], shard: bool, counted: i64) -> i64 {
        let _ = (channel, shard);
        counted
    }
    /// The version HELLO reports (the upstream's, when there is one).
    fn server_version(&self) -> Option<String> {
        None
    }
    /// Whether the backend writes commands to its store as RESP, so a
    /// command the client sent can go up as the client's own bytes
    /// ([`Encoding::Raw`], without its arguments); other backends get the
    /// arguments.
    fn takes_client_bytes(&self) -> bool {
        false
    }
    /// Whether the backend can serve commands now (readiness).
    fn is_ready(&self) -> bool;
    /// The backend's fields for INFO.
    fn info(&self) -> Vec<InfoField>;
    /// The circuit breaker and fallback in front of the backend, when its
    /// routes have one ([`fallback`]).
    fn circuit(&self) -> Option<fallback::CircuitStatus> {
        None
    }
}

/// The error for a capability a backend lacks.
pub fn not_supported(command: &str, backend: &dyn Backend) -> ProxyError {
    ProxyError::NotSupported {
        command: command.replace('|', " "),
        kind: backend.kind().as_str(),
        backend: backend.name().to_string(),
    }
}

/// Waits for `rx` until `deadline`, as a request's reply.
pub async fn await_reply(
    rx: ReplyRx,
    deadline: Option<Instant>,
    backend: &str,
    timeout: Duration,
) -> ReplyResult {
    let lost = || ProxyError::UpstreamLost {
        upstream: backend.to_string(),
        reason: "the connection closed".into(),
    };
    match deadline {
        None => rx.await.unwrap_or_else(|_| Err(lost())),
        Some(deadline) => match tokio::time::timeout_at(deadline, rx).await {
            Ok(result) => result.unwrap_or_else(|_| Err(lost())),
            Err(_) => Err(ProxyError::UpstreamTimeout {
                upstream: backend.to_string(),
                timeout,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request whose arguments the session lent to the reply's plan
    /// still gives a storing backend every argument, from the client's bytes.
    #[test]
    fn sealed_args_decode_lent_arguments_from_the_raw_bytes() {
        let (mut request, _rx) = Request::new(Vec::new(), 0);
        request.encoding = Encoding::Raw(Bytes::from_static(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"));
        assert_eq!(request.sealed_args().unwrap(), ["GET", "k"]);
        let (mut request, _rx) = Request::new(vec![Bytes::from("PING")], 0);
        request.encoding = Encoding::Raw(Bytes::from_static(b"*1\r\n$4\r\nPING\r\n"));
        assert_eq!(request.sealed_args().unwrap(), ["PING"]);
    }

    #[test]
    fn debug_output_never_shows_arguments() {
        let args = ["SET", "session:1", "the-plaintext-secret"]
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .to_vec();
        let (mut request, _rx) = Request::new(args, 0);
        request.encoding = Encoding::Raw(Bytes::from_static(b"*3\r\n...the-plaintext-secret"));
        let shown = format!("{request:?}");
        assert!(
            shown.contains("SET") && shown.contains("args: 3"),
            "{shown}"
        );
        assert!(!shown.contains("the-plaintext-secret"), "{shown}");
        assert!(!shown.contains("session:1"), "{shown}");
    }
}
