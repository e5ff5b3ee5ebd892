//! Serving a route from its fallback during an outage. Reads answer from
//! what the fallback holds: the outage's writes, nothing older (a key the
//! outage has not written reads as missing). Every write is applied to the
//! fallback and journaled in the same step, under [`Shared::order`], with
//! the absolute expiry it left on its keys, so that the replay sets the same
//! deadlines however late it runs.
//!
//! A read-modify-write (INCR, APPEND, RENAME…) computes from a key's value,
//! which for a key the outage has not written whole only the backend has:
//! it is refused rather than computed from nothing and later replayed over
//! the backend's value.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::time::Instant;

use super::journal::Journaled;
use super::{Call, Shared, replaces, takes, writes};
use crate::backend::rmw::{Read, Rmw, Snapshot, Write};
use crate::backend::{Backend, Reply, ReplyResult, RequestKind};
use crate::commands::KeyArg;
use crate::commands::{Dispatch, Keyspace, Local, Policy, ValueRule};
use crate::error::ProxyError;
use crate::protocol::Frame;
use crate::protocol::reply::{bulk, error, error_text, ok};
use crate::semantics::errors;

/// What running a call on the fallback came to.
pub(super) enum Outcome {
    Done(ReplyResult),
    /// The circuit closed meanwhile: the call belongs to the primary.
    Closed(Call),
}

/// A key a write touched, and whether it replaced the key whole.
pub(super) struct Written {
    pub db: u32,
    pub key: Bytes,
    pub whole: bool,
}

fn word(w: &'static str) -> Bytes {
    Bytes::from_static(w.as_bytes())
}

impl Shared {
    /// Runs `call` on the fallback; a write is journaled.
    pub(super) async fn run_on_fallback(&self, mut call: Call) -> Outcome {
        let db = call.db;
        match self.check(&mut call) {
            Err(e) => return Outcome::Done(Err(e)),
            Ok(Some(frame)) => return Outcome::Done(Ok(Reply::new(frame))),
            Ok(None) => {}
        }
        let prepared = call
            .sealed_args()
            .and_then(|args| Ok((args, call.is_write()?, call.key_args()?)));
        let (args, write, keys) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => return Outcome::Done(Err(e)),
        };
        let flush = call
            .spec
            .is_some_and(|s| s.extras.keyspace == Keyspace::Flush);
        let _order = self.order.lock().await;
        if self.breaker.is_closed() {
            return Outcome::Closed(call);
        }
        if let Err(e) = self.check_takes(call.name(), db, &args, &keys) {
            return Outcome::Done(Err(e));
        }
        self.stats.fallback_commands.fetch_add(1, Ordering::Relaxed);
        let frame = self.fallback.store().execute(db, &args).await;
        if write && error_text(&frame).is_none() {
            let written = keys
                .iter()
                .filter(|k| writes(k))
                .map(|k| Written {
                    db,
                    key: args[k.index].clone(),
                    whole: replaces(k),
                })
                .collect();
            let commands = vec![Journaled { db, args }];
            self.journal(commands, written, flush.then_some(db)).await;
        }
        Outcome::Done(Ok(Reply::new(frame)))
    }

    /// Answers what needs no store, and refuses what the fallback cannot
    /// serve. `Ok(None)`: run it.
    pub(super) fn check(&self, call: &mut Call) -> Result<Option<Frame>, ProxyError> {
        if call.kind == RequestKind::SelectProbe {
            let dbs = self.fallback.store().dbs();
            let wanted = call
                .args()?
                .get(1)
                .and_then(|a| std::str::from_utf8(a).ok())
                .and_then(|a| a.parse::<u32>().ok());
            return Ok(Some(match wanted {
                Some(db) if db < dbs => ok(),
                _ => error(errors::DB_OUT_OF_RANGE),
            }));
        }
        let Some(spec) = call.spec else {
            return Err(self.refuse(call.name(), "the fallback does not know it"));
        };
        if spec.dispatch == Dispatch::Local(Local::Info) {
            // sealcache's own sections follow (the circuit among them).
            let version = self.primary.server_version().unwrap_or_default();
            return Ok(Some(bulk(Bytes::from(format!(
                "# Server\r\nredis_version:{version}\r\nredis_mode:standalone\r\n"
            )))));
        }
        if spec.policy == Policy::Encrypt(ValueRule::Publish) {
            return Err(self.refuse(
                spec.name,
                "Pub/Sub messages travel through the backend, and subscribers are connected there",
            ));
        }
        if !self.fallback.serves(spec) {
            return Err(self.refuse(spec.name, "the memory store does not run it"));
        }
        Ok(None)
    }

    /// Refuses a command that reads a key's value and changes it (LPOP,
    /// LMOVE, GETDEL…) when the outage has not written that key whole: the
    /// fallback would answer from part of the value, and the replay would
    /// then take from the backend's value what no client received.
    pub(super) fn check_takes(
        &self,
        command: &str,
        db: u32,
        args: &[Bytes],
        keys: &[KeyArg],
    ) -> Result<(), ProxyError> {
        let journal = self.journal.lock().expect("journal lock");
        match keys
            .iter()
            .find(|k| takes(k) && !journal.is_established(db, &args[k.index]))
        {
            None => Ok(()),
            Some(k) => {
                drop(journal);
                Err(self.refuse(
                    command,
                    format!(
                        "it takes from the value of '{}', which only the backend holds (the key was not set or deleted since the outage began)",
                        String::from_utf8_lossy(&args[k.index])
                    ),
                ))
            }
        }
    }

    /// Appends one entry, with the absolute expiries the write left on its
    /// keys, and notes the keys it replaced whole. Call with
    /// [`Shared::order`] held, right after the fallback applied the write.
    pub(super) async fn journal(
        &self,
        mut commands: Vec<Journaled>,
        written: Vec<Written>,
        flushed: Option<u32>,
    ) {
        let store = self.fallback.store();
        for w in &written {
            let at = store
                .update(w.db, std::slice::from_ref(&w.key), |txn| {
                    txn.expire_at(&w.key)
                })
                .await;
            if let Some(Some(at)) = at {
                commands.push(Journaled {
                    db: w.db,
                    args: vec![
                        word("PEXPIREAT"),
                        w.key.clone(),
                        Bytes::from(at.to_string()),
                    ],
                });
            }
        }
        let mut journal = self.journal.lock().expect("journal lock");
        let keys = written.iter().map(|w| w.key.clone()).collect();
        if journal.push(commands, keys) && journal.dropped % 10_000 == 1 {
            tracing::warn!(
                backend = %self.name(),
                routes = %self.routes,
                dropped = journal.dropped,
                "write journal full (journal_max_entries): dropping its oldest entries; those writes will not reach the backend"
            );
        }
        for w in written.into_iter().filter(|w| w.whole) {
            journal.establish(w.db, w.key);
        }
        if let Some(db) = flushed {
            journal.establish_db(db);
        }
    }

    /// A read-modify-write on the fallback, journaled. `None`: the circuit
    /// closed meanwhile, and the primary must run it.
    pub(super) async fn read_modify_write(
        &self,
        db: u32,
        op: &mut dyn Rmw,
    ) -> Option<Result<(), ProxyError>> {
        let _order = self.order.lock().await;
        if self.breaker.is_closed() {
            return None;
        }
        self.stats.fallback_commands.fetch_add(1, Ordering::Relaxed);
        let mut recorded = Recorded {
            op,
            db,
            shared: self,
            writes: Vec::new(),
        };
        let result = self.fallback.read_modify_write(db, &mut recorded).await;
        let done = std::mem::take(&mut recorded.writes);
        if result.is_ok() && !done.is_empty() {
            let (commands, written) = journal_writes(db, done);
            self.journal(commands, written, None).await;
        }
        Some(result)
    }
}

/// An operation whose writes are kept for the journal, refused when it would
/// write what it computed from a key only the backend holds.
struct Recorded<'a> {
    op: &'a mut dyn Rmw,
    db: u32,
    shared: &'a Shared,
    writes: Vec<Write>,
}

impl Rmw for Recorded<'_> {
    fn reads(&self) -> &[Read] {
        self.op.reads()
    }

    fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<Write>, ProxyError> {
        let writes = self.op.decide(snapshot)?;
        if !writes.is_empty() {
            let journal = self.shared.journal.lock().expect("journal lock");
            for read in self.op.reads() {
                let db = match read {
                    Read::Exists { db, .. } => *db,
                    _ => self.db,
                };
                if !journal.is_established(db, read.key()) {
                    return Err(self.shared.refuse(
                        "this command",
                        format!(
                            "it computes what it writes from the value of '{}', which only the backend holds (the key was not set or deleted since the outage began)",
                            String::from_utf8_lossy(read.key())
                        ),
                    ));
                }
            }
        }
        self.writes = writes.clone();
        Ok(writes)
    }

    fn deadline(&self) -> Instant {
        self.op.deadline()
    }

    fn committed(&mut self, replies: Vec<Frame>) -> Result<(), ProxyError> {
        self.op.committed(replies)
    }
}

/// The commands that replay `writes` on the backend, and the keys they touch.
fn journal_writes(db: u32, changes: Vec<Write>) -> (Vec<Journaled>, Vec<Written>) {
    let mut commands = Vec::new();
    let mut written = Vec::new();
    for write in changes {
        let at = write.db(db);
        match &write {
            Write::SetString { key, .. }
            | Write::HashSet { key, .. }
            | Write::HashDelete { key, .. } => written.push(Written {
                db: at,
                key: key.clone(),
                whole: false,
            }),
            // The expiry of a put follows as an absolute PEXPIREAT
            // (Shared::journal).
            Write::Delete { key, .. } | Write::PutKey { key, .. } => written.push(Written {
                db: at,
                key: key.clone(),
                whole: true,
            }),
            Write::Native(args) => {
                if let Ok(cmd) = crate::commands::Command::parse(args.clone()) {
                    for k in cmd.key_args().iter().filter(|k| writes(k)) {
                        written.push(Written {
                            db: at,
                            key: args[k.index].clone(),
                            whole: replaces(k),
                        });
                    }
                }
            }
        }
        commands.extend(
            write
                .commands()
                .into_iter()
                .map(|args| Journaled { db: at, args }),
        );
    }
    (commands, written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::rmw::KeyValue;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn writes_become_the_commands_that_replay_them() {
        let (commands, written) = journal_writes(
            2,
            vec![
                Write::SetString {
                    key: b("n"),
                    value: b("<env>"),
                    keep_ttl: true,
                },
                Write::PutKey {
                    key: b("dst"),
                    db: 3,
                    value: KeyValue::Hash(vec![(b("f"), b("<env>"))]),
                    ttl_ms: Some(5000),
                },
                Write::Delete {
                    key: b("src"),
                    db: 2,
                },
                Write::Native(vec![b("RENAME"), b("l1"), b("l2")]),
            ],
        );
        let shown: Vec<(u32, Vec<Bytes>)> = commands.into_iter().map(|c| (c.db, c.args)).collect();
        assert_eq!(
            shown,
            vec![
                (2, vec![b("SET"), b("n"), b("<env>"), b("KEEPTTL")]),
                (3, vec![b("DEL"), b("dst")]),
                (3, vec![b("HSET"), b("dst"), b("f"), b("<env>")]),
                (2, vec![b("DEL"), b("src")]),
                (2, vec![b("RENAME"), b("l1"), b("l2")]),
            ]
        );
        let whole: Vec<(u32, Bytes, bool)> = written
            .into_iter()
            .map(|w| (w.db, w.key, w.whole))
            .collect();
        assert_eq!(
            whole,
            vec![
                (2, b("n"), false),
                (3, b("dst"), true),
                (2, b("src"), true),
                (2, b("l1"), false),
                (2, b("l2"), true),
            ]
        );
    }
}
