//! A client's own connection on the fallback, for MULTI/EXEC and WATCH
//! during an outage: a task with redis-server's per-connection state on the
//! fallback store. EXEC runs the queued commands atomically on the store and
//! journals its writes as one entry, replayed as one MULTI/EXEC.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::journal::Journaled;
use super::outage::{Outcome, Written};
use super::{Answer, Call, Shared, replaces, writes};
use crate::backend::memory::{TaskConnection, WatchToken};
use crate::backend::{Reply, Request};
use crate::commands::{Dispatch, Keyspace, Transaction};
use crate::error::ProxyError;
use crate::protocol::Frame;
use crate::protocol::reply::{array, error, error_text, ok, simple};

/// Connection ids start here, apart from the Redis and memory backends'.
pub(super) const FIRST_ID: u64 = 1 << 56;

/// A client's own connection on the fallback store.
pub(super) fn start(shared: Arc<Shared>) -> TaskConnection {
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    TaskConnection::start(id, "fallback", |rx| run(shared, rx))
}

/// MULTI's queue.
struct Queued {
    db: u32,
    commands: Vec<(Vec<Bytes>, bool)>,
    written: Vec<Written>,
    flushes: bool,
    /// A command was refused while queueing: EXEC aborts, as in Redis.
    failed: bool,
}

struct State {
    shared: Arc<Shared>,
    multi: Option<Queued>,
    watched: Vec<WatchToken>,
}

async fn run(shared: Arc<Shared>, mut requests: mpsc::UnboundedReceiver<Request>) {
    let mut state = State {
        shared,
        multi: None,
        watched: Vec::new(),
    };
    while let Some(request) = requests.recv().await {
        let (call, answer) = Call::take(request);
        state.handle(call, answer).await;
    }
}

impl State {
    async fn handle(&mut self, mut call: Call, answer: Answer) {
        let frame = match call.spec.map(|s| s.dispatch) {
            Some(Dispatch::Transaction(t)) => self.transaction(t, &mut call).await,
            _ if self.multi.is_some() => self.queue(call),
            _ => match self.shared.run_on_fallback(call).await {
                Outcome::Done(result) => return answer.deliver(result),
                // The backend is back: this connection's state is not there.
                Outcome::Closed(call) => Err(self.backend_back(call.name())),
            },
        };
        answer.deliver(frame.map(Reply::new));
    }

    fn backend_back(&self, command: &str) -> ProxyError {
        ProxyError::Unsupported(format!(
            "backend '{}' came back while this connection's transaction or WATCH was on the fallback; {command} was not run: start the transaction again",
            self.shared.name()
        ))
    }

    /// Queues a command inside MULTI, as redis-server does: refusals now,
    /// EXECABORT at EXEC.
    fn queue(&mut self, mut call: Call) -> Result<Frame, ProxyError> {
        let db = call.db;
        let checked = self.shared.check(&mut call).and_then(|local| {
            if local.is_some() || self.multi.as_ref().is_some_and(|m| m.db != db) {
                return Err(self.shared.refuse(
                    call.name(),
                    "inside MULTI on the fallback only commands that run on the store, in the transaction's database, are served",
                ));
            }
            let (args, write, keys) = (call.sealed_args()?, call.is_write()?, call.key_args()?);
            self.shared.check_takes(call.name(), db, &args, &keys)?;
            Ok((args, write, keys))
        });
        let multi = self.multi.as_mut().expect("queueing inside MULTI");
        let (args, write, keys) = match checked {
            Ok(prepared) => prepared,
            Err(e) => {
                multi.failed = true;
                return Err(e);
            }
        };
        if write {
            multi
                .written
                .extend(keys.iter().filter(|k| writes(k)).map(|k| Written {
                    db,
                    key: args[k.index].clone(),
                    whole: replaces(k),
                }));
            multi.flushes |= call
                .spec
                .is_some_and(|s| s.extras.keyspace == Keyspace::Flush);
        }
        multi.commands.push((args, write));
        Ok(simple("QUEUED"))
    }

    async fn transaction(&mut self, t: Transaction, call: &mut Call) -> Result<Frame, ProxyError> {
        let db = call.db;
        Ok(match t {
            Transaction::Multi if self.multi.is_some() => {
                error("ERR MULTI calls can not be nested")
            }
            Transaction::Multi => {
                self.multi = Some(Queued {
                    db,
                    commands: Vec::new(),
                    written: Vec::new(),
                    flushes: false,
                    failed: false,
                });
                ok()
            }
            Transaction::Watch if self.multi.is_some() => {
                error("ERR WATCH inside MULTI is not allowed")
            }
            Transaction::Watch => {
                let store = self.shared.fallback.store();
                for key in &call.args()?[1..] {
                    self.watched.push(store.watch(db, key));
                }
                ok()
            }
            Transaction::Unwatch => {
                self.watched.clear();
                ok()
            }
            Transaction::Discard => match self.multi.take() {
                Some(_) => {
                    self.watched.clear();
                    ok()
                }
                None => error("ERR DISCARD without MULTI"),
            },
            Transaction::Exec => match self.multi.take() {
                None => error("ERR EXEC without MULTI"),
                Some(queued) if queued.failed => {
                    self.watched.clear();
                    error("EXECABORT Transaction discarded because of previous errors.")
                }
                Some(queued) => return self.exec(queued).await,
            },
        })
    }

    /// Runs the queue atomically on the fallback and journals its writes as
    /// one entry.
    async fn exec(&mut self, queued: Queued) -> Result<Frame, ProxyError> {
        let watched = std::mem::take(&mut self.watched);
        let shared = &self.shared;
        let _order = shared.order.lock().await;
        if shared.breaker.is_closed() {
            return Err(self.backend_back("EXEC"));
        }
        let (commands, is_write): (Vec<Vec<Bytes>>, Vec<bool>) =
            queued.commands.into_iter().unzip();
        let store = shared.fallback.store();
        let Some(replies) = store.exec(queued.db, commands.clone(), &watched).await else {
            return Ok(Frame::Null);
        };
        let journaled: Vec<Journaled> = commands
            .into_iter()
            .zip(is_write)
            .zip(&replies)
            .filter(|((_, write), reply)| *write && error_text(reply).is_none())
            .map(|((args, _), _)| Journaled {
                db: queued.db,
                args,
            })
            .collect();
        if !journaled.is_empty() {
            shared
                .journal(
                    journaled,
                    queued.written,
                    queued.flushes.then_some(queued.db),
                )
                .await;
        }
        Ok(array(replies))
    }
}
