//! A client's output budget, as redis-server keeps one per client
//! (`client-output-buffer-limit normal`). Reply bytes are charged the moment
//! they arrive from the upstream (by the lane, see [`ReplyAccount`]) and
//! released once the writer has written them to the client, so the budget
//! measures what sealcache holds for a client that does not read.
//!
//! - Over the hard limit, or over the soft limit for longer than its time, the
//!   client is cut off: it is disconnected, the reason is logged, and replies
//!   still arriving for it are dropped on arrival.
//! - Over the soft limit, the session stops reading the client's requests.
//! - A pipeline window bounds how many commands a client may have in flight,
//!   sized from the requests it has been sending and the replies it has been
//!   getting, so one client's burst of large reads cannot fill a shared
//!   connection (and Redis's output buffer for it) ahead of everyone else, and
//!   a client pipelining large writes to a stalled upstream is held back (its
//!   requests stay unread in the socket) instead of queueing in memory.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::ReplyAccount;
use crate::config::Limits;

/// Expected reply bytes a client may have in flight upstream; with the
/// reply-size estimate this gives the pipeline window.
const WINDOW_BYTES: usize = 8 * 1024 * 1024;
/// Reply size assumed before a client has had replies: its first pipeline may
/// have `WINDOW_BYTES / INITIAL_ESTIMATE` commands in flight.
const INITIAL_ESTIMATE: usize = 1024 * 1024;
/// The window never closes below this, so a blocking command followed by
/// another command still lets the session read on (and see the client leave).
const MIN_WINDOW: usize = 2;

/// The output limits of one client (from `limits.output_buffer_*`; 0 = none).
#[derive(Debug, Clone, Copy)]
pub struct OutputLimits {
    pub hard: usize,
    pub soft: usize,
    pub soft_for: Duration,
}

impl OutputLimits {
    pub fn from_config(limits: &Limits) -> Self {
        OutputLimits {
            hard: limits.output_buffer.hard_bytes,
            soft: limits.output_buffer.soft_bytes,
            soft_for: limits.output_buffer.soft_time,
        }
    }
}

/// Why a client was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutOff {
    Hard,
    Soft,
}

/// What the session may do before it reads the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// Read on.
    Go,
    /// Wait for the writer; over the soft limit, cut the client off at the deadline.
    Wait { soft_deadline: Option<Instant> },
    /// The client has been cut off.
    CutOff,
}

/// Shared by the session, its writer and the lanes carrying its requests.
pub struct ClientOutput {
    client_id: u64,
    limits: OutputLimits,
    /// Upstream replies owed to the client and not yet taken by the writer.
    outstanding: AtomicUsize,
    /// Reply bytes charged and not yet written to the client.
    unwritten: AtomicUsize,
    /// A decaying maximum of recent request and reply sizes: what one
    /// command in flight holds (the session raises it, the writer decays it).
    estimate: AtomicUsize,
    /// Milliseconds since `epoch` (+1) when `unwritten` went over the soft
    /// limit; 0 while under it.
    soft_since: AtomicU64,
    epoch: Instant,
    cut: AtomicBool,
    /// A graceful shutdown started: the session reads no further command
    /// (see `super::shutdown`).
    draining: AtomicBool,
    /// The drained session has said goodbye and reads again, only to
    /// discard what the client still sends.
    lingering: AtomicBool,
    /// Cancelled when the client is cut off, for the session's rarer waits
    /// (fences, a full window). Its reads and its writer are stopped through
    /// `reader` and `writer`, which cost nothing per request.
    pub killed: CancellationToken,
    /// Wakes the session's pending read when the client is cut off.
    reader: AtomicWaker,
    /// Aborts the writer when the client is cut off (wherever it waits).
    writer: OnceLock<AbortHandle>,
    /// Cancelled when the client has closed its side: a blocking command
    /// still in flight is abandoned (its connection closed) at once.
    pub gone: CancellationToken,
    /// The writer made progress (took a reply or wrote bytes).
    progress: Notify,
}

impl ClientOutput {
    pub fn new(client_id: u64, limits: OutputLimits) -> Self {
        ClientOutput {
            client_id,
            limits,
            outstanding: AtomicUsize::new(0),
            unwritten: AtomicUsize::new(0),
            estimate: AtomicUsize::new(INITIAL_ESTIMATE),
            soft_since: AtomicU64::new(0),
            epoch: Instant::now(),
            cut: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            lingering: AtomicBool::new(false),
            killed: CancellationToken::new(),
            reader: AtomicWaker::new(),
            writer: OnceLock::new(),
            gone: CancellationToken::new(),
            progress: Notify::new(),
        }
    }

    /// The writer task, stopped at once if the client is cut off.
    pub fn set_writer(&self, writer: AbortHandle) {
        let _ = self.writer.set(writer);
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// The session read a request of `bytes`: while in flight it holds about
    /// that much, so large requests narrow the window as large replies do.
    pub fn request_read(&self, bytes: usize) {
        self.estimate.fetch_max(bytes, Ordering::Relaxed);
    }

    /// The session queued a slot whose reply comes from the upstream.
    pub fn reply_owed(&self) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
    }

    /// The writer has the reply of one owed slot (`size` bytes when it came
    /// from the upstream), so the session may send another command.
    pub fn reply_taken(&self, size: Option<usize>) {
        if let Some(size) = size {
            let estimate = self.estimate.load(Ordering::Relaxed);
            self.estimate
                .store(size.max(estimate - estimate / 8), Ordering::Relaxed);
        }
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
        self.progress.notify_one();
    }

    /// The writer has written `bytes` of charged replies to the client (or
    /// they were never delivered).
    pub fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        // Saturating: a reply that reached the writer uncharged (a path that
        // set no account) must not wrap the counter.
        let before = self
            .unwritten
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(bytes))
            })
            .unwrap_or(0);
        if before.saturating_sub(bytes) <= self.limits.soft
            && self.soft_since.load(Ordering::Relaxed) != 0
        {
            self.soft_since.store(0, Ordering::Release);
        }
        self.progress.notify_one();
    }

    /// Commands the client may have in flight, from the replies it has been getting.
    fn window(&self) -> usize {
        let estimate = self.estimate.load(Ordering::Relaxed).max(1);
        (WINDOW_BYTES / estimate).clamp(MIN_WINDOW, super::SLOT_QUEUE)
    }

    pub fn room(&self) -> Room {
        if self.cut.load(Ordering::Acquire) {
            return Room::CutOff;
        }
        let soft = self.limits.soft;
        if soft > 0 && self.unwritten.load(Ordering::Acquire) > soft {
            let since = self.soft_since.load(Ordering::Acquire);
            let started = if since == 0 {
                self.start_soft_timer().0
            } else {
                since - 1
            };
            let deadline = self.epoch + Duration::from_millis(started) + self.limits.soft_for;
            return Room::Wait {
                soft_deadline: Some(deadline),
            };
        }
        let outstanding = self.outstanding();
        if outstanding >= self.window() {
            return Room::Wait {
                soft_deadline: None,
            };
        }
        Room::Go
    }

    /// Waits until the writer makes progress.
    pub async fn progress(&self) {
        self.progress.notified().await
    }

    /// Starts the soft-limit clock unless it runs; returns its start (ms
    /// since epoch) and whether it started now.
    fn start_soft_timer(&self) -> (u64, bool) {
        let now = self.epoch.elapsed().as_millis() as u64;
        match self
            .soft_since
            .compare_exchange(0, now + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => (now, true),
            Err(since) => (since - 1, false),
        }
    }

    /// Disconnects the client (once), logging why.
    pub fn cut_off(&self, why: CutOff) {
        if self.cut.swap(true, Ordering::AcqRel) {
            return;
        }
        let bytes = self.unwritten.load(Ordering::Acquire);
        match why {
            CutOff::Hard => tracing::warn!(
                client.id = self.client_id,
                output.bytes = bytes,
                limit = self.limits.hard,
                "client output buffer over limits.output_buffer.hard_bytes; disconnecting the client (it does not read its replies)"
            ),
            CutOff::Soft => tracing::warn!(
                client.id = self.client_id,
                output.bytes = bytes,
                limit = self.limits.soft,
                seconds = self.limits.soft_for.as_secs(),
                "client output buffer over limits.output_buffer.soft_bytes for limits.output_buffer.soft_secs; disconnecting the client (it does not read its replies)"
            ),
        }
        self.killed.cancel();
        self.reader.wake();
        if let Some(writer) = self.writer.get() {
            writer.abort();
        }
    }

    /// Disconnects the client (once) for a reason someone else has logged
    /// (its Pub/Sub queue overflowed).
    pub fn disconnect(&self) {
        if self.cut.swap(true, Ordering::AcqRel) {
            return;
        }
        self.killed.cancel();
        self.reader.wake();
        if let Some(writer) = self.writer.get() {
            writer.abort();
        }
    }

    pub fn is_cut_off(&self) -> bool {
        self.cut.load(Ordering::Acquire)
    }

    /// Shutdown: the session stops reading requests (its pending read ends
    /// at once) but its replies owed are still written.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.reader.wake();
        // A session waiting for room in its pipeline window looks again.
        self.progress.notify_one();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// After a drained session's goodbye: reads reach the client again.
    pub fn linger(&self) {
        self.lingering.store(true, Ordering::Release);
    }

    /// Whether a read must end now for a shutdown.
    fn reads_stopped(&self) -> bool {
        self.is_draining() && !self.lingering.load(Ordering::Acquire)
    }
}

impl ReplyAccount for ClientOutput {
    fn charge(&self, bytes: usize) -> bool {
        if self.cut.load(Ordering::Acquire) {
            return false;
        }
        let total = self.unwritten.fetch_add(bytes, Ordering::AcqRel) + bytes;
        let limits = &self.limits;
        if limits.hard > 0 && total > limits.hard {
            self.cut_off(CutOff::Hard);
            return false;
        }
        if limits.soft > 0 && total > limits.soft {
            let (started, now_over) = self.start_soft_timer();
            if now_over {
                // A session waiting for its window must now watch the soft deadline.
                self.progress.notify_one();
            }
            let now = self.epoch.elapsed().as_millis() as u64;
            if Duration::from_millis(now.saturating_sub(started)) >= limits.soft_for {
                self.cut_off(CutOff::Soft);
                return false;
            }
        }
        true
    }

    fn refund(&self, bytes: usize) {
        self.release(bytes);
    }
}

/// The client's side of the connection, ending (as an error) the moment the
/// client is cut off or a shutdown drains the session, so a session waiting
/// for a request notices at once.
pub struct CutOffReader<R> {
    inner: R,
    output: Arc<ClientOutput>,
}

impl<R> CutOffReader<R> {
    pub fn new(inner: R, output: Arc<ClientOutput>) -> Self {
        CutOffReader { inner, output }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for CutOffReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        this.output.reader.register(cx.waker());
        if this.output.is_cut_off() {
            return Poll::Ready(Err(std::io::Error::other(
                "the client was cut off (output buffer limits)",
            )));
        }
        if this.output.reads_stopped() {
            return Poll::Ready(Err(std::io::Error::other("shutting down")));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(hard: usize, soft: usize, soft_for: Duration) -> ClientOutput {
        ClientOutput::new(
            1,
            OutputLimits {
                hard,
                soft,
                soft_for,
            },
        )
    }

    #[test]
    fn replies_over_the_hard_limit_cut_the_client_off_and_are_dropped() {
        let out = output(1000, 0, Duration::ZERO);
        assert!(out.charge(600));
        assert!(!out.charge(600), "over the hard limit");
        assert!(out.is_cut_off());
        assert!(out.killed.is_cancelled());
        assert!(!out.charge(1), "replies for a cut-off client are dropped");
        assert_eq!(out.room(), Room::CutOff);
    }

    #[test]
    fn over_the_soft_limit_the_session_waits_and_then_cuts_off() {
        let out = output(0, 100, Duration::from_secs(60));
        assert!(out.charge(150));
        let Room::Wait {
            soft_deadline: Some(deadline),
        } = out.room()
        else {
            panic!("over the soft limit the session must wait")
        };
        assert!(deadline > Instant::now() + Duration::from_secs(50));
        out.release(100);
        assert_eq!(out.room(), Room::Go, "back under the soft limit");

        let quick = output(0, 100, Duration::ZERO);
        assert!(quick.charge(50));
        assert!(
            !quick.charge(60),
            "over the soft limit for its whole (zero) time"
        );
        assert!(quick.is_cut_off());
    }

    #[test]
    fn the_window_follows_the_size_of_replies() {
        let out = output(0, 0, Duration::ZERO);
        let initial = out.window();
        assert_eq!(initial, WINDOW_BYTES / INITIAL_ESTIMATE);
        for _ in 0..200 {
            out.reply_owed();
            out.reply_taken(Some(100));
        }
        assert_eq!(
            out.window(),
            super::super::SLOT_QUEUE,
            "small replies open it"
        );
        out.reply_owed();
        out.reply_taken(Some(4 * 1024 * 1024));
        assert_eq!(
            out.window(),
            MIN_WINDOW,
            "one large reply closes it at once"
        );
        for _ in 0..out.window() {
            out.reply_owed();
        }
        assert_eq!(
            out.room(),
            Room::Wait {
                soft_deadline: None
            }
        );
    }

    #[test]
    fn large_requests_narrow_the_window_like_large_replies() {
        let out = output(0, 0, Duration::ZERO);
        for _ in 0..200 {
            out.reply_owed();
            out.reply_taken(Some(5));
        }
        assert_eq!(out.window(), super::super::SLOT_QUEUE);
        out.request_read(1024 * 1024);
        assert_eq!(out.window(), WINDOW_BYTES / (1024 * 1024));
        // Small replies to large writes do not reopen it while the writes go on.
        out.reply_owed();
        out.reply_taken(Some(5));
        out.request_read(1024 * 1024);
        assert_eq!(out.window(), WINDOW_BYTES / (1024 * 1024));
    }

    #[test]
    fn release_never_wraps() {
        let out = output(0, 10, Duration::ZERO);
        out.release(500);
        assert!(out.charge(5));
        assert_eq!(out.room(), Room::Go);
    }
}
