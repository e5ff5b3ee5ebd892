//! A route's circuit breaker: it counts the backend's failures (errors that
//! say it is unreachable, and timeouts) in a sliding window, opens when they
//! reach the threshold, and remembers since when the backend is unavailable.
//! The layer logs the transitions; the breaker only decides and counts.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use crate::config::BreakerConfig;

/// Where a route's commands go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// To the backend.
    Closed,
    /// To the fallback: the backend is unreachable, and probed every
    /// `probe_interval_ms`.
    Open,
    /// Still to the fallback: the backend answers again and the journal is
    /// being replayed to it. Closes when the journal is empty.
    HalfOpen,
}

impl CircuitState {
    /// As INFO and `/readyz` show it.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    fn from_u8(v: u8) -> CircuitState {
        match v {
            1 => CircuitState::Open,
            2 => CircuitState::HalfOpen,
            _ => CircuitState::Closed,
        }
    }
}

pub struct Breaker {
    state: AtomicU8,
    threshold: usize,
    window: Duration,
    /// When recent failures happened (closed circuit only).
    failures: Mutex<VecDeque<Instant>>,
    /// When the outage began (`None` while closed).
    since: Mutex<Option<SystemTime>>,
    /// Wakes the probe when the circuit opens.
    opened_signal: Notify,
    pub opened: AtomicU64,
    pub closed: AtomicU64,
    /// Backend failures seen, whatever the state.
    pub failures_seen: AtomicU64,
}

impl Breaker {
    pub fn new(config: &BreakerConfig) -> Breaker {
        Breaker {
            state: AtomicU8::new(CircuitState::Closed as u8),
            threshold: config.failures.max(1) as usize,
            window: config.window,
            failures: Mutex::new(VecDeque::new()),
            since: Mutex::new(None),
            opened_signal: Notify::new(),
            opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            failures_seen: AtomicU64::new(0),
        }
    }

    pub fn state(&self) -> CircuitState {
        CircuitState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn is_closed(&self) -> bool {
        self.state() == CircuitState::Closed
    }

    /// When the outage began; `None` while the circuit is closed.
    pub fn since(&self) -> Option<SystemTime> {
        *self.since.lock().expect("breaker lock")
    }

    /// Counts one backend failure. `true` when it opened the circuit.
    pub fn failure(&self) -> bool {
        self.failures_seen.fetch_add(1, Ordering::Relaxed);
        if !self.is_closed() {
            return false;
        }
        let now = Instant::now();
        let reached = {
            let mut recent = self.failures.lock().expect("breaker lock");
            recent.push_back(now);
            while recent
                .front()
                .is_some_and(|t| now.duration_since(*t) > self.window)
            {
                recent.pop_front();
            }
            recent.len() >= self.threshold
        };
        reached && self.open()
    }

    /// Counts one backend failure that must open the circuit at once (a
    /// write the backend lost went to the fallback). `true` when it opened it.
    pub fn trip(&self) -> bool {
        self.failures_seen.fetch_add(1, Ordering::Relaxed);
        self.open()
    }

    /// Opens the circuit now, whatever the count. `true` when it was closed.
    pub fn open(&self) -> bool {
        if self
            .state
            .compare_exchange(
                CircuitState::Closed as u8,
                CircuitState::Open as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return false;
        }
        *self.since.lock().expect("breaker lock") = Some(SystemTime::now());
        self.failures.lock().expect("breaker lock").clear();
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.opened_signal.notify_one();
        true
    }

    /// The probe reached the backend: replay starts (open → half-open).
    pub fn half_open(&self) -> bool {
        self.transition(CircuitState::Open, CircuitState::HalfOpen)
    }

    /// Replay failed: back to open (the outage goes on, since unchanged).
    pub fn reopen(&self) -> bool {
        self.transition(CircuitState::HalfOpen, CircuitState::Open)
    }

    /// The journal is replayed: commands go to the backend again.
    pub fn close(&self) -> bool {
        if !self.transition(CircuitState::HalfOpen, CircuitState::Closed) {
            return false;
        }
        *self.since.lock().expect("breaker lock") = None;
        self.closed.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn transition(&self, from: CircuitState, to: CircuitState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Returns once the circuit is not closed.
    pub async fn wait_not_closed(&self) {
        loop {
            let opened = self.opened_signal.notified();
            if !self.is_closed() {
                return;
            }
            opened.await;
        }
    }
}

/// `2026-03-02T10:00:00Z (42s ago)`: when an outage began, for errors.
pub fn describe_since(since: Option<SystemTime>) -> String {
    let Some(since) = since else {
        return "just now".into();
    };
    let at = time::OffsetDateTime::from(since);
    let ago = SystemTime::now()
        .duration_since(since)
        .unwrap_or_default()
        .as_secs();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z ({ago}s ago)",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, window_ms: u64) -> Breaker {
        Breaker::new(&BreakerConfig {
            failures,
            window: Duration::from_millis(window_ms),
            probe_interval: Duration::from_millis(10),
        })
    }

    #[test]
    fn opens_at_the_threshold_within_the_window() {
        let b = breaker(3, 60_000);
        assert!(!b.failure() && !b.failure());
        assert!(b.is_closed() && b.since().is_none());
        assert!(b.failure(), "the third failure opens it");
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.since().is_some());
        assert!(!b.failure(), "already open");
        assert_eq!(b.opened.load(Ordering::Relaxed), 1);
        assert_eq!(b.failures_seen.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let b = breaker(2, 1);
        assert!(!b.failure());
        std::thread::sleep(Duration::from_millis(5));
        assert!(!b.failure(), "the first failure left the window");
        assert!(b.is_closed());
    }

    #[test]
    fn closes_only_through_half_open() {
        let b = breaker(1, 1000);
        assert!(!b.close() && !b.half_open());
        assert!(b.open());
        assert!(!b.close(), "an open circuit replays before it closes");
        assert!(b.half_open());
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(b.reopen() && b.half_open());
        let since = b.since();
        assert!(b.close());
        assert!(b.is_closed() && b.since().is_none() && since.is_some());
        assert_eq!(b.closed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn since_reads_as_utc_and_age() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 + 3_661);
        assert!(
            describe_since(Some(t)).starts_with("1970-01-02T01:01:01Z ("),
            "{}",
            describe_since(Some(t))
        );
    }
}
