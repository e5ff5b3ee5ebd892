//! A client's own connection served by a task of its own — the memory
//! backend's and the fallback layer's: requests go down a channel and run in
//! order on the task, which keeps the connection's state (WATCH, MULTI's
//! queue) between them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use crate::backend::{ConnState, Connection, Request};
use crate::error::ProxyError;

pub(crate) struct TaskConnection {
    id: u64,
    /// Names the store in the error of a request sent after the task ended.
    upstream: &'static str,
    requests: mpsc::UnboundedSender<Request>,
    task: tokio::task::AbortHandle,
    alive: Arc<AtomicBool>,
    state: ConnState,
}

impl TaskConnection {
    /// Spawns `run` over the connection's requests; it returns when the
    /// connection is dropped (the channel closes).
    pub(crate) fn start<F>(
        id: u64,
        upstream: &'static str,
        run: impl FnOnce(mpsc::UnboundedReceiver<Request>) -> F,
    ) -> TaskConnection
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (requests, rx) = mpsc::unbounded_channel();
        let alive = Arc::new(AtomicBool::new(true));
        let served = run(rx);
        let ended = alive.clone();
        let task = tokio::spawn(async move {
            served.await;
            ended.store(false, Ordering::Release);
        });
        TaskConnection {
            id,
            upstream,
            requests,
            task: task.abort_handle(),
            alive,
            state: ConnState::Clean,
        }
    }
}

impl Drop for TaskConnection {
    fn drop(&mut self) {
        // A blocking command in flight is abandoned: the store is
        // cancellation-safe, so it pops nothing for a client that left.
        // Anything else already sent still runs and answers (the session
        // lets go of a transaction's connection right after sending EXEC);
        // then the closed channel ends the task. A queue never reached by
        // EXEC is discarded with the task's state.
        if self.state == ConnState::Blocked {
            self.task.abort();
        }
    }
}

impl Connection for TaskConnection {
    fn id(&self) -> u64 {
        self.id
    }

    fn send(&mut self, request: Request) -> Result<(), ProxyError> {
        self.requests
            .send(request)
            .map_err(|_| ProxyError::UpstreamLost {
                upstream: self.upstream.into(),
                reason: "the connection closed".into(),
            })
    }

    fn state(&self) -> ConnState {
        self.state
    }

    fn set_state(&mut self, state: ConnState) {
        self.state = state;
    }

    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}
