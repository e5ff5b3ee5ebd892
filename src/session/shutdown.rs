//! A session's part in graceful shutdown. The server owns the signal and the
//! deadline; every session gets a [`Shutdown`] and, when it is drained, stops
//! reading commands, lets its writer deliver every reply already owed, says
//! goodbye (TLS close_notify, then FIN) and lingers until the client closes.
//! When the deadline passes first, the session gives up the replies still
//! owed and counts them as abandoned.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// How long a drained session keeps reading (and discarding) what its client
/// still sends after the goodbye. Closing a socket with unread input makes the
/// kernel send a reset, and a reset can destroy replies the client has not
/// read yet; a client that saw the goodbye closes well within this.
const LINGER: Duration = Duration::from_secs(2);
/// A client that sends nothing for this long is not pipelining into the
/// closing connection: it can be closed without a reset (an idle pooled
/// connection does not hold the shutdown up for the whole [`LINGER`]).
const LINGER_QUIET: Duration = Duration::from_millis(500);

/// Shared by the server and every session it started.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Stop reading commands; deliver what is owed, then close.
    drain: CancellationToken,
    /// The deadline passed: drop what is still owed and close now.
    abort: CancellationToken,
    /// Replies still owed when sessions were aborted.
    abandoned: Arc<AtomicU64>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts the drain: sessions read no further command.
    pub fn drain(&self) {
        self.drain.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// Resolves once the drain has started.
    pub fn draining(&self) -> WaitForCancellationFuture<'_> {
        self.drain.cancelled()
    }

    /// A token for one session that the drain cancels (and that can be
    /// cancelled alone): the session's read loop waits on one token, so a
    /// shutdown costs it nothing per command.
    pub(super) fn session_token(&self) -> CancellationToken {
        self.drain.child_token()
    }

    /// The deadline passed: sessions abandon the replies they still owe.
    pub fn abort(&self) {
        self.drain.cancel();
        self.abort.cancel();
    }

    /// How many replies aborted sessions still owed (commands read but never answered).
    pub fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Acquire)
    }

    /// Runs `finish` (the writer delivering what is owed; `true` when it did)
    /// unless the deadline passes first: then the `owed` replies are counted
    /// as abandoned and the answer is `false`.
    pub(super) async fn finish(
        &self,
        finish: impl Future<Output = bool>,
        owed: &AtomicUsize,
    ) -> bool {
        tokio::select! {
            biased;
            done = finish => done,
            () = self.abort.cancelled() => {
                let owed = owed.load(Ordering::Acquire) as u64;
                self.abandoned.fetch_add(owed, Ordering::AcqRel);
                false
            }
        }
    }

    /// After the goodbye: discards what the client still sends until it
    /// closes or goes quiet, [`LINGER`] passes or the deadline does (see
    /// [`LINGER`] for why).
    pub(super) async fn linger<R: AsyncRead + Unpin>(&self, mut rd: R) {
        let discard = async {
            let mut scratch = vec![0u8; 4096];
            while matches!(
                tokio::time::timeout(LINGER_QUIET, rd.read(&mut scratch)).await,
                Ok(Ok(n)) if n > 0
            ) {}
        };
        tokio::select! {
            _ = tokio::time::timeout(LINGER, discard) => {}
            () = self.abort.cancelled() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn abort_counts_the_replies_still_owed() {
        let stop = Shutdown::new();
        let owed = AtomicUsize::new(3);
        stop.abort();
        assert!(stop.is_draining(), "an abort also stops reading");
        let done = stop.finish(std::future::pending(), &owed).await;
        assert!(!done);
        assert_eq!(stop.abandoned(), 3);
    }

    #[test]
    fn the_drain_cancels_session_tokens_but_not_the_other_way() {
        let stop = Shutdown::new();
        let one = stop.session_token();
        let other = stop.session_token();
        one.cancel(); // a Pub/Sub cut-off of one client
        assert!(!stop.is_draining() && !other.is_cancelled());
        stop.drain();
        assert!(other.is_cancelled());
    }

    #[tokio::test]
    async fn a_finished_writer_abandons_nothing() {
        let stop = Shutdown::new();
        stop.drain();
        let done = stop.finish(async { true }, &AtomicUsize::new(0)).await;
        assert!(done);
        assert_eq!(stop.abandoned(), 0);
    }

    #[tokio::test]
    async fn linger_ends_when_the_client_goes_quiet() {
        let stop = Shutdown::new();
        let (_client, server) = tokio::io::duplex(64);
        let started = std::time::Instant::now();
        stop.linger(server).await;
        assert!(
            started.elapsed() < LINGER,
            "lingered {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn linger_ends_when_the_client_closes() {
        let stop = Shutdown::new();
        let (client, server) = tokio::io::duplex(64);
        drop(client);
        // Would take LINGER if the end of input were not noticed.
        tokio::time::timeout(Duration::from_millis(500), stop.linger(server))
            .await
            .expect("linger returns at the client's EOF");
    }
}
