//! The layer's ordered lanes. A lane sends its commands to the primary,
//! pipelined, and settles their replies in order: a command the primary lost
//! (connection gone, refused, timed out) counts against the breaker, and is
//! run on the fallback instead when it is a write (which opens the circuit)
//! or when the circuit is open by then. While the circuit is not closed,
//! commands run on the fallback — but only once every command the lane sent
//! to the primary before has settled, so a client's commands still take
//! effect in the order it sent them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::outage::Outcome;
use super::{Answer, Call, Shared, is_outage, is_outage_reply};
use crate::backend::{Lane, ReplyResult, ReplyRx, Request};
use crate::error::ProxyError;

/// A command sent to the primary, kept until its reply settles it.
struct InFlight {
    call: Call,
    answer: Answer,
    rx: ReplyRx,
    deadline: Instant,
}

struct LaneState {
    shared: Arc<Shared>,
    primary: Lane,
    in_flight: VecDeque<InFlight>,
    /// Commands for the fallback that wait for `in_flight` to settle.
    held: VecDeque<(Call, Answer)>,
}

/// Runs lane `index` until every sender is gone.
pub(super) async fn run(
    shared: Arc<Shared>,
    index: u64,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    let mut lane = LaneState {
        primary: shared.primary.lane(index),
        shared,
        in_flight: VecDeque::new(),
        held: VecDeque::new(),
    };
    loop {
        tokio::select! {
            biased;
            result = front(&mut lane.in_flight, &lane.shared), if !lane.in_flight.is_empty() => {
                let flight = lane.in_flight.pop_front().expect("the front was awaited");
                lane.settle(flight, result).await;
                lane.release().await;
            }
            request = requests.recv() => match request {
                Some(request) => {
                    let (call, answer) = Call::take(request);
                    lane.dispatch(call, answer).await;
                }
                None => break,
            },
        }
    }
}

/// The reply of the oldest command in flight, or why there is none.
async fn front(in_flight: &mut VecDeque<InFlight>, shared: &Shared) -> ReplyResult {
    let flight = in_flight.front_mut().expect("only polled when not empty");
    match tokio::time::timeout_at(flight.deadline, &mut flight.rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(ProxyError::UpstreamLost {
            upstream: shared.name().to_string(),
            reason: "the connection closed".into(),
        }),
        Err(_) => Err(ProxyError::UpstreamTimeout {
            upstream: shared.name().to_string(),
            timeout: shared.primary.command_timeout(),
        }),
    }
}

impl LaneState {
    async fn dispatch(&mut self, call: Call, answer: Answer) {
        if !self.held.is_empty() {
            self.held.push_back((call, answer));
        } else if self.shared.breaker.is_closed() {
            self.send(call, answer);
        } else if self.in_flight.is_empty() {
            self.fallback(call, answer).await;
        } else {
            self.held.push_back((call, answer));
        }
    }

    /// Runs what waited for the primary's replies, in order, as far as it can.
    async fn release(&mut self) {
        while let Some((call, answer)) = self.held.pop_front() {
            if self.shared.breaker.is_closed() {
                self.send(call, answer);
            } else if self.in_flight.is_empty() {
                self.fallback(call, answer).await;
            } else {
                self.held.push_front((call, answer));
                break;
            }
        }
    }

    fn send(&mut self, call: Call, answer: Answer) {
        let (tx, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(request)) = self.primary.send(call.request(tx)) {
            request.fail(ProxyError::UpstreamLost {
                upstream: self.shared.name().to_string(),
                reason: "lane closed".into(),
            });
        }
        self.in_flight.push_back(InFlight {
            call,
            answer,
            rx,
            deadline: Instant::now() + self.shared.primary.command_timeout(),
        });
    }

    async fn fallback(&mut self, call: Call, answer: Answer) {
        match self.shared.run_on_fallback(call).await {
            Outcome::Done(result) => answer.deliver(result),
            Outcome::Closed(call) => self.send(call, answer),
        }
    }

    /// A reply from the primary: delivered, or — when the primary is out of
    /// reach — counted, and the command run on the fallback if it must not
    /// be lost or the circuit is open.
    async fn settle(&mut self, flight: InFlight, result: ReplyResult) {
        let InFlight {
            mut call, answer, ..
        } = flight;
        let reason = match &result {
            Ok(reply) => match is_outage_reply(reply) {
                Some(error) => error,
                None => return answer.deliver(result),
            },
            Err(e) if is_outage(e) => e.to_string(),
            Err(_) => return answer.deliver(result),
        };
        // A command that cannot even be read back is treated as a write: losing it is worse.
        if call.is_write().unwrap_or(true) {
            self.shared.trip(&reason);
        } else {
            self.shared.failure(&reason);
        }
        if self.shared.breaker.is_closed() {
            return answer.deliver(result);
        }
        self.shared.stats.retried.fetch_add(1, Ordering::Relaxed);
        self.fallback(call, answer).await;
    }
}
