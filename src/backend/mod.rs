//! Storage backends behind one contract. A backend is a set of ordered
//! *lanes*: a client's ordinary commands all go down one lane and their replies
//! come back in order. The Redis backend also offers dedicated connections for
//! transactions, blocking commands and Pub/Sub. A backend knows nothing of
//! sessions, and of encryption only that some requests carry a
//! [`SealOnWrite`] to call while it writes them.

pub mod dynamodb;
pub mod redis;

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

use crate::commands::ValueRule;
use crate::error::ProxyError;
use crate::protocol::Frame;

/// A reply from a backend: the frame, and its exact RESP3 bytes when the
/// backend received it that way (so it can be forwarded without re-encoding).
#[derive(Debug, Clone)]
pub struct Reply {
    pub frame: Frame,
    pub raw: Option<Bytes>,
}

impl Reply {
    pub fn new(frame: Frame) -> Self {
        Reply { frame, raw: None }
    }
}

pub type ReplyResult = Result<Reply, ProxyError>;
pub type ReplyTx = oneshot::Sender<ReplyResult>;
pub type ReplyRx = oneshot::Receiver<ReplyResult>;

/// One command for a backend lane.
pub struct Request {
    /// Arguments, name first.
    pub args: Vec<Bytes>,
    /// How the lane writes `args`.
    pub encoding: Encoding,
    /// Database the command runs in.
    pub db: u32,
    pub kind: RequestKind,
    pub reply: ReplyTx,
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
    pub fn new(args: Vec<Bytes>, db: u32) -> (Request, ReplyRx) {
        let (reply, rx) = oneshot::channel();
        (
            Request {
                args,
                encoding: Encoding::Args,
                db,
                kind: RequestKind::Normal,
                reply,
            },
            rx,
        )
    }

    /// Answers the request with an error without running it.
    pub fn fail(self, err: ProxyError) {
        let _ = self.reply.send(Err(err));
    }
}

/// The sending end of an ordered lane. Unbounded: each client has at most
/// its reply-queue length of commands in flight, which bounds every lane.
pub type Lane = mpsc::UnboundedSender<Request>;

/// Counters for INFO and health output.
#[derive(Debug, Clone, Default)]
pub struct BackendStats {
    pub lanes: usize,
    pub lanes_connected: usize,
    pub pinned_in_use: usize,
    pub pinned_idle: usize,
    pub pinned_limit: usize,
    pub connections_opened: u64,
    pub server_version: Option<String>,
}

/// What every backend provides to sessions.
pub trait Backend: Send + Sync + 'static {
    /// `redis`, `dynamodb`, `memory`.
    fn kind(&self) -> &'static str;
    /// A human label for errors and logs (host:port, table name…).
    fn label(&self) -> &str;
    /// The lane that carries the ordinary commands of client `client_id`.
    fn lane(&self, client_id: u64) -> Lane;
    fn stats(&self) -> BackendStats;
}

#[cfg(test)]
mod tests {
    use super::*;

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
