//! A session's part in graceful shutdown. The server owns the signal and the
//! deadline; every session registers with its [`Shutdown`] and, when the
//! drain starts, stops reading requests, lets its writer deliver every reply
//! already owed, says goodbye (TLS close_notify, then FIN) and lingers until
//! the client closes. When the deadline passes first, the session gives up
//! the replies still owed and counts them as abandoned.
//!
//! The drain reaches a session through its [`ClientOutput`] (a flag and the
//! waker of its pending read), so waiting for it costs the read loop nothing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::output::ClientOutput;

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
    /// Stop reading requests; deliver what is owed, then close.
    drain: CancellationToken,
    /// The deadline passed: drop what is still owed and close now.
    abort: CancellationToken,
    /// Replies still owed when sessions were aborted.
    abandoned: Arc<AtomicU64>,
    sessions: Arc<Mutex<Sessions>>,
}

/// The live sessions, for the drain to reach each one.
#[derive(Default)]
struct Sessions {
    next: u64,
    live: HashMap<u64, Weak<ClientOutput>>,
}

/// A session's place in [`Sessions`], given up when it ends.
pub(super) struct Registered {
    id: u64,
    sessions: Arc<Mutex<Sessions>>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.sessions).live.remove(&self.id);
    }
}

fn lock(sessions: &Mutex<Sessions>) -> std::sync::MutexGuard<'_, Sessions> {
    // The map stays consistent whatever panicked while holding it.
    sessions.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts the drain: every session, and any that registers later, reads
    /// no further request.
    pub fn drain(&self) {
        let sessions = lock(&self.sessions);
        self.drain.cancel();
        for output in sessions.live.values().filter_map(Weak::upgrade) {
            output.drain();
        }
    }

    pub fn is_draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// Resolves once the drain has started (for waits outside a session,
    /// such as a TLS handshake).
    pub fn draining(&self) -> WaitForCancellationFuture<'_> {
        self.drain.cancelled()
    }

    /// The deadline passed: sessions abandon the replies they still owe.
    pub fn abort(&self) {
        self.drain();
        self.abort.cancel();
    }

    /// How many replies aborted sessions still owed (commands read but never answered).
    pub fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Acquire)
    }

    /// Makes a session reachable by the drain for as long as the guard lives.
    pub(super) fn register(&self, output: &Arc<ClientOutput>) -> Registered {
        let mut sessions = lock(&self.sessions);
        let id = sessions.next;
        sessions.next += 1;
        sessions.live.insert(id, Arc::downgrade(output));
        // Checked under the lock `drain` takes: a session is drained either
        // here or there, never missed.
        if self.drain.is_cancelled() {
            output.drain();
        }
        Registered {
            id,
            sessions: self.sessions.clone(),
        }
    }

    /// Runs `finish` (the writer delivering what is owed; `true` when it did)
    /// unless the deadline passes first: then the replies still `owed` are
    /// counted as abandoned and the answer is `false`.
    pub(super) async fn finish(
        &self,
        finish: impl Future<Output = bool>,
        owed: impl FnOnce() -> usize,
    ) -> bool {
        tokio::select! {
            biased;
            done = finish => done,
            () = self.abort.cancelled() => {
                self.abandoned.fetch_add(owed() as u64, Ordering::AcqRel);
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
    use crate::session::output::OutputLimits;

    fn output() -> Arc<ClientOutput> {
        Arc::new(ClientOutput::new(
            1,
            OutputLimits {
                hard: 0,
                soft: 0,
                soft_for: Duration::ZERO,
            },
        ))
    }

    #[test]
    fn the_drain_reaches_registered_and_late_sessions_only_while_they_live() {
        let stop = Shutdown::new();
        let early = output();
        let registered = stop.register(&early);
        let gone = output();
        drop(stop.register(&gone));
        stop.drain();
        assert!(early.is_draining());
        assert!(!gone.is_draining(), "an ended session is no longer reached");
        let late = output();
        let _late = stop.register(&late);
        assert!(late.is_draining(), "a session starting during the drain");
        drop(registered);
        assert_eq!(lock(&stop.sessions).live.len(), 1);
    }

    #[tokio::test]
    async fn a_drain_ends_a_pending_read_and_the_linger_reads_again() {
        use tokio::io::AsyncWriteExt;
        let out = output();
        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = crate::session::output::CutOffReader::new(server, out.clone());
        let mut buf = [0u8; 8];
        let (read, ()) = tokio::join!(reader.read(&mut buf), async {
            tokio::task::yield_now().await;
            out.drain();
        });
        assert!(read.is_err(), "the pending read ends at the drain");
        out.linger();
        client.write_all(b"x").await.unwrap();
        assert_eq!(reader.read(&mut buf).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn abort_counts_the_replies_still_owed() {
        let stop = Shutdown::new();
        stop.abort();
        assert!(stop.is_draining(), "an abort also stops reading");
        let done = stop.finish(std::future::pending(), || 3).await;
        assert!(!done);
        assert_eq!(stop.abandoned(), 3);
    }

    #[tokio::test]
    async fn a_finished_writer_abandons_nothing() {
        let stop = Shutdown::new();
        stop.drain();
        let done = stop.finish(async { true }, || 0).await;
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
        // Would take LINGER_QUIET if the end of input were not noticed.
        tokio::time::timeout(Duration::from_millis(300), stop.linger(server))
            .await
            .expect("linger returns at the client's EOF");
    }
}
