//! The one place where sealcache's own failures become RESP error replies.
//! Upstream error replies are frames, not errors: they pass through unchanged.

use std::time::Duration;

use crate::commands::CommandError;
use crate::protocol::Frame;
use crate::protocol::reply;
use crate::protocol::scan::LimitExceeded;

/// A failure that ends one command (never the connection).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    #[error(
        "ERR sealcache: upstream {upstream} is unavailable: {reason}. Retrying in the background; check that Redis is running and reachable"
    )]
    UpstreamUnavailable { upstream: String, reason: String },
    #[error("ERR sealcache: upstream {upstream} did not reply within {}ms (upstream.command_timeout_ms)", .timeout.as_millis())]
    UpstreamTimeout { upstream: String, timeout: Duration },
    #[error(
        "ERR sealcache: the connection to upstream {upstream} was lost before the reply arrived: {reason}"
    )]
    UpstreamLost { upstream: String, reason: String },
    #[error(
        "ERR sealcache: the reply from upstream {upstream} {exceeded} and was discarded; raise the limit if such replies are expected"
    )]
    ReplyTooLarge {
        upstream: String,
        exceeded: LimitExceeded,
    },
    /// Stands in for a reply redis-protocol cannot represent, where sealcache
    /// must read the reply (values to decrypt, a reply to redact).
    #[error("ERR sealcache: cannot decode the reply from upstream {upstream}: {reason}")]
    UndecodableReply { upstream: String, reason: String },
    #[error(
        "ERR sealcache: all {limit} dedicated upstream connections are in use (MULTI/WATCH, blocking commands); retry later or raise upstream.max_pinned"
    )]
    TooManyPinned { limit: usize },
    #[error("ERR sealcache: {command} is not available on encrypted data: {reason}")]
    Rejected { command: String, reason: String },
    #[error(
        "ERR sealcache: {command} is disabled because it reconfigures or wipes the upstream; add \"{entry}\" to allowed_admin_commands to allow it"
    )]
    AdminDenied { command: String, entry: String },
    #[error("ERR sealcache: {0}")]
    Unsupported(String),
    /// An error already worded as Redis words it (`ERR …`, `EXECABORT …`).
    #[error("{0}")]
    Redis(String),
}

impl ProxyError {
    /// The RESP error reply for this failure (on one line whatever it
    /// quotes: see [`reply::error`]).
    pub fn to_frame(&self) -> Frame {
        reply::error(self.to_string())
    }
}
