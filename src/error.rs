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
    /// A command whose keys fall in different routes.
    #[error(transparent)]
    Routing(#[from] crate::backend::router::CrossRoute),
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    #[error(
        "ERR sealcache: backend '{upstream}' is unavailable: {reason}. Check that it is running and reachable; commands succeed again as soon as it answers"
    )]
    UpstreamUnavailable { upstream: String, reason: String },
    #[error("ERR sealcache: backend '{upstream}' did not reply within {}ms (command_timeout_ms)", .timeout.as_millis())]
    UpstreamTimeout { upstream: String, timeout: Duration },
    #[error(
        "ERR sealcache: the connection to backend '{upstream}' was lost before the reply arrived: {reason}"
    )]
    UpstreamLost { upstream: String, reason: String },
    /// A command waited in line for a dedicated connection until its deadline.
    #[error(
        "ERR sealcache: the reply from backend '{upstream}' {exceeded} and was discarded; raise the limit if such replies are expected"
    )]
    ReplyTooLarge {
        upstream: String,
        exceeded: LimitExceeded,
    },
    /// Stands in for a reply redis-protocol cannot represent, where sealcache
    /// must read the reply (values to decrypt, a reply to redact).
    #[error("ERR sealcache: cannot decode the reply from backend '{upstream}': {reason}")]
    UndecodableReply { upstream: String, reason: String },
    #[error(
        "ERR sealcache: all {limit} {pool} are in use and none came free within {}ms (upstream.acquire_timeout_ms); retry later or raise {key}", .waited.as_millis()
    )]
    DedicatedBusy {
        limit: usize,
        pool: &'static str,
        key: &'static str,
        waited: Duration,
    },
    /// Like `DedicatedBusy`, for one user's share.
    #[error(
        "ERR sealcache: user '{user}' has all {limit} of its {pool} in use and none came free within {}ms (upstream.acquire_timeout_ms); retry later or raise {key}", .waited.as_millis()
    )]
    UserDedicatedBusy {
        user: String,
        limit: usize,
        pool: &'static str,
        key: &'static str,
        waited: Duration,
    },
    #[error(
        "ERR sealcache: this connection already holds {limit} dedicated upstream connections (limits.max_dedicated_per_client); end its transaction or blocking command first"
    )]
    ClientDedicatedLimit { limit: usize },
    /// A command over the client's `limits.rate_limit`; it was not run.
    #[error(
        "ERR sealcache: rate limit exceeded: this connection may send {commands_per_sec} commands per second (bursts of {burst}); the command was not run. Retry later, or raise limits.rate_limit.commands_per_sec (and burst)"
    )]
    RateLimited { commands_per_sec: u32, burst: u32 },
    /// The route's backend lacks what the command needs.
    #[error("ERR sealcache: {command} is not supported by the {kind} backend '{backend}'")]
    NotSupported {
        command: String,
        kind: &'static str,
        backend: String,
    },
    /// A route's backend is unreachable (its circuit is open) and the
    /// route's fallback cannot serve this command.
    #[error(
        "ERR sealcache: backend '{backend}' is unavailable since {since}, and {command} cannot be served by its fallback '{fallback}': {reason}. Retry when the backend is back"
    )]
    FallbackRefused {
        backend: String,
        fallback: String,
        /// When the outage began (UTC, and how long ago).
        since: String,
        command: String,
        reason: String,
    },
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
