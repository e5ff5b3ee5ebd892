//! Commands that cannot run on ciphertext, done by sealcache: each is a pure
//! function over plaintext ([`crate::semantics::emulated`]) run through its
//! backend's atomic read-modify-write ([`crate::backend::rmw`]). The
//! operation opens what it read, computes, and seals what it writes; the
//! backend only moves envelopes. Replies and errors match redis-server's.

use bytes::Bytes;
use tokio::time::Instant;

use super::{Flow, Route, Session};
use crate::backend::rmw::{KeyType, KeyValue, Read, Rmw, Snapshot, Write};
use crate::commands::{Command, Delta, Emulation};
use crate::config::DecryptFailure;
use crate::crypto::OpenError;
use crate::error::ProxyError;
use crate::protocol::Frame;
use crate::protocol::reply::{self, int, text_of};
use crate::semantics::emulated::Step;
use crate::semantics::number::parse_i64;
use crate::semantics::zset::{Direction, rank_among_ties};
use crate::values::{Binding, ValueCrypt};

fn redis_err(msg: &str) -> ProxyError {
    ProxyError::Redis(msg.to_string())
}

impl Session {
    pub(super) async fn emulate(
        &mut self,
        cmd: Command,
        emulation: Emulation,
        backend: usize,
    ) -> Flow {
        if self.multi.is_some() {
            return self.queue_emulated(cmd, emulation, backend).await;
        }
        // Earlier commands must have run before this one reads.
        if !self.fence(Route::Fresh).await {
            return Flow::Close;
        }
        let result = self.run_emulation(&cmd, emulation, backend).await;
        match result {
            Ok(frame) => self.reply(frame).await,
            Err(e) => self.reply(e.to_frame()).await,
        }
    }

    async fn run_emulation(
        &self,
        cmd: &Command,
        emulation: Emulation,
        index: usize,
    ) -> Result<Frame, ProxyError> {
        let backend = self.ctx.backends[index].clone();
        let deadline = Instant::now() + backend.command_timeout();
        // An emulation holds a connection of its own while it runs: it counts
        // against this client's and its user's shares, like MULTI.
        let _hold = self
            .hold(crate::backend::Purpose::Pinned, backend.acquire_timeout())
            .await?;
        let values = &self.ctx.values;
        let (read, step) = match emulation {
            Emulation::Rename { .. } | Emulation::Copy => {
                let mut op = MoveKey::new(cmd, emulation, self.db, deadline)?;
                op.values = Some(values.clone());
                // Both keys, against this process's other read-modify-writes.
                let _held = self
                    .ctx
                    .gate
                    .lock(
                        index,
                        &[(self.db, op.src.clone()), (op.target_db, op.dst.clone())],
                    )
                    .await;
                backend.read_modify_write(self.db, &mut op).await?;
                return op.reply.ok_or_else(not_run);
            }
            Emulation::Rank { rev } => {
                return self.rank(cmd, rev, backend.as_ref(), deadline).await;
            }
            _ => step_of(cmd, emulation)?,
        };
        let op = Compute {
            reads: [read],
            step,
            values: values.clone(),
            deadline,
            reply: None,
        };
        // Applied in arrival order with the other commands waiting on this key.
        let op = self.ctx.gate.coalesce(index, &backend, self.db, op).await?;
        op.reply.ok_or_else(not_run)
    }

    /// ZRANK/ZREVRANK. The upstream orders equal scores by ciphertext, so
    /// its rank is wrong among ties: read the member's score, then — in one
    /// consistent read — the score again (it must not have moved), how many
    /// members come before that score and the members sharing it, and rank
    /// the member among those by plaintext.
    async fn rank(
        &self,
        cmd: &Command,
        rev: bool,
        backend: &dyn crate::backend::Backend,
        deadline: Instant,
    ) -> Result<Frame, ProxyError> {
        let (key, plain) = (&cmd.args[1], &cmd.args[2]);
        let direction = if rev {
            Direction::Descending
        } else {
            Direction::Ascending
        };
        let values = &self.ctx.values;
        let member = values.seal_member(plain)?;
        let word = |w: &'static str| Bytes::from_static(w.as_bytes());
        let zscore = vec![word("ZSCORE"), key.clone(), member.clone()];
        loop {
            let mut first = ReadOnly::new(key, vec![zscore.clone()], deadline);
            backend.read_modify_write(self.db, &mut first).await?;
            let reply = first.replies.pop().unwrap_or(Frame::Null);
            check(&reply)?;
            let Some(score) = score_of(&reply) else {
                return Ok(Frame::Null);
            };
            // `{:e}` is the shortest text that reads back as the same double.
            let at = Bytes::from(format!("{score:e}"));
            let past = Bytes::from(format!("({score:e}"));
            let before = match direction {
                Direction::Ascending => [word("-inf"), past],
                Direction::Descending => [past, word("+inf")],
            };
            let mut reads = ReadOnly::new(
                key,
                vec![
                    zscore.clone(),
                    [vec![word("ZCOUNT"), key.clone()], before.to_vec()].concat(),
                    vec![word("ZRANGEBYSCORE"), key.clone(), at.clone(), at],
                ],
                deadline,
            );
            backend.read_modify_write(self.db, &mut reads).await?;
            let [now, count, ties] = <[Frame; 3]>::try_from(reads.replies)
                .map_err(|_| redis_err("ERR sealcache: unexpected reply to the ZRANK reads"))?;
            if score_of(&now) != Some(score) {
                // Moved or removed between the two reads: start again.
                if Instant::now() >= deadline {
                    return Err(crate::backend::rmw::gave_up(std::time::Duration::ZERO));
                }
                continue;
            }
            check(&count)?;
            let Frame::Number { data: before, .. } = count else {
                return Err(redis_err("ERR sealcache: unexpected reply to ZCOUNT"));
            };
            let Frame::Array { data: ties, .. } = ties else {
                return Err(redis_err(
                    "ERR sealcache: unexpected reply to ZRANGEBYSCORE",
                ));
            };
            let mut opened = Vec::with_capacity(ties.len());
            for tie in &ties {
                let Some(envelope) = text_of(tie) else {
                    continue;
                };
                match values.open_member(envelope) {
                    Ok(m) => opened.push(m),
                    // Left out, as every read leaves undecryptable members out.
                    Err(reason) => {
                        undecryptable(values, key, reason)?;
                    }
                }
            }
            let rank = rank_among_ties(before, opened.iter().map(Vec::as_slice), plain, direction);
            return Ok(int(rank));
        }
    }
}

/// What a string or hash-field emulation reads and the step it applies,
/// its arguments checked as Redis checks them before it reads the key.
pub(super) fn step_of(cmd: &Command, emulation: Emulation) -> Result<(Read, Step), ProxyError> {
    let a = &cmd.args;
    let key = a[1].clone();
    let step = |parsed: Result<Step, &'static str>| parsed.map_err(redis_err);
    let field = || Read::HashField {
        key: key.clone(),
        field: a[2].clone(),
    };
    Ok(match emulation {
        Emulation::IncrBy(delta) => {
            let step = match delta {
                Delta::One => Step::IncrBy(1),
                Delta::MinusOne => Step::IncrBy(-1),
                Delta::Argument => step(Step::incr_by(Some(&a[2]), false))?,
                Delta::NegatedArgument => step(Step::incr_by(Some(&a[2]), true))?,
            };
            (Read::String(key), step)
        }
        Emulation::IncrByFloat => (Read::String(key), Step::incr_by_float(&a[2])),
        Emulation::Append => (Read::String(key), Step::Append(a[2].to_vec())),
        Emulation::SetRange => (Read::String(key), step(Step::set_range(&a[2], &a[3]))?),
        Emulation::Strlen => (Read::String(key), Step::Length),
        Emulation::GetRange => (Read::String(key), step(Step::range(&a[2], &a[3]))?),
        Emulation::HashIncrBy => (field(), step(Step::hash_incr_by(&a[3]))?),
        Emulation::HashIncrByFloat => (field(), step(Step::hash_incr_by_float(&a[3]))?),
        Emulation::HashStrlen => (field(), Step::Length),
        Emulation::Rename { .. }
        | Emulation::Copy
        | Emulation::Rank { .. }
        | Emulation::Session => {
            return Err(redis_err(
                "ERR sealcache: this command is not computed on one value",
            ));
        }
    })
}

fn not_run() -> ProxyError {
    redis_err("ERR sealcache: the emulated command did not run")
}

/// An upstream error reply (WRONGTYPE…) stops the emulation and reaches the client as is.
fn check(frame: &Frame) -> Result<(), ProxyError> {
    match reply::error_text(frame) {
        Some(err) => Err(ProxyError::Redis(err)),
        None => Ok(()),
    }
}

/// The score in a ZSCORE reply (a RESP3 double, or RESP2 text).
fn score_of(frame: &Frame) -> Option<f64> {
    match frame {
        Frame::Double { data, .. } => Some(*data),
        other => std::str::from_utf8(text_of(other)?).ok()?.parse().ok(),
    }
}

/// A value that failed to open, for a read-modify-write: logged and counted;
/// in `miss` and `delete` mode the command goes on as if it were absent.
pub(super) fn undecryptable(
    values: &ValueCrypt,
    key: &[u8],
    reason: OpenError,
) -> Result<Option<Vec<u8>>, ProxyError> {
    values.count_failure();
    tracing::warn!(key = %crate::logging::Untrusted(key), %reason, "value failed to decrypt");
    match values.on_failure() {
        DecryptFailure::Error => Err(ProxyError::Redis(format!(
            "ERR sealcache: the value at key '{}' failed to decrypt ({reason}); on_decrypt_failure is 'error'",
            String::from_utf8_lossy(key)
        ))),
        // A miss: the computation starts from an empty value, as for a missing key.
        DecryptFailure::Miss | DecryptFailure::Delete => Ok(None),
    }
}

/// One string or hash-field emulation: open, [`Step::apply`], seal.
struct Compute {
    reads: [Read; 1],
    step: Step,
    values: std::sync::Arc<ValueCrypt>,
    deadline: Instant,
    reply: Option<Frame>,
}

impl Rmw for Compute {
    fn reads(&self) -> &[Read] {
        &self.reads
    }

    fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<Write>, ProxyError> {
        let (binding, envelope) = match (&self.reads[0], snapshot.into_iter().next()) {
            (Read::String(key), Some(Snapshot::String(envelope))) => {
                (Binding::String(key.clone()), envelope)
            }
            (Read::HashField { key, field }, Some(Snapshot::HashField(envelope))) => (
                Binding::Hash {
                    key: key.clone(),
                    field: field.clone(),
                },
                envelope,
            ),
            _ => return Err(redis_err("ERR sealcache: unexpected snapshot")),
        };
        let current = match envelope {
            None => None,
            Some(envelope) => match self.values.open(&binding, &envelope) {
                Ok(plain) => Some(plain),
                Err(reason) => undecryptable(&self.values, binding.key(), reason)?,
            },
        };
        let outcome = self.step.apply(current.as_deref()).map_err(redis_err)?;
        self.reply = Some(outcome.reply);
        let Some(value) = outcome.store else {
            return Ok(Vec::new());
        };
        let sealed = self.values.seal(&binding, &value)?;
        Ok(vec![match binding {
            Binding::String(key) => Write::SetString {
                key,
                value: sealed,
                keep_ttl: true,
            },
            Binding::Hash { key, field } => Write::HashSet {
                key,
                field,
                value: sealed,
            },
        }])
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// Read-only commands of one key, read consistently (ZRANK's reads).
struct ReadOnly {
    reads: Vec<Read>,
    replies: Vec<Frame>,
    deadline: Instant,
}

impl ReadOnly {
    fn new(key: &Bytes, commands: Vec<Vec<Bytes>>, deadline: Instant) -> ReadOnly {
        ReadOnly {
            reads: commands
                .into_iter()
                .map(|args| Read::Command {
                    key: key.clone(),
                    args,
                })
                .collect(),
            replies: Vec::new(),
            deadline,
        }
    }
}

impl Rmw for ReadOnly {
    fn reads(&self) -> &[Read] {
        &self.reads
    }

    fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<Write>, ProxyError> {
        self.replies = snapshot
            .into_iter()
            .map(|s| match s {
                Snapshot::Reply(frame) => frame,
                _ => Frame::Null,
            })
            .collect();
        Ok(Vec::new())
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// RENAME/RENAMENX/COPY: values bound to the source key name are re-sealed
/// for the destination; the TTL is kept. Lists, sets and sorted sets are
/// bound to the namespace, not the key: the backend moves them as they are.
struct MoveKey {
    args: Vec<Bytes>,
    name: &'static str,
    src: Bytes,
    dst: Bytes,
    rename: bool,
    nx: bool,
    replace: bool,
    db: u32,
    target_db: u32,
    reads: Vec<Read>,
    values: Option<std::sync::Arc<ValueCrypt>>,
    deadline: Instant,
    reply: Option<Frame>,
}

impl MoveKey {
    fn new(
        cmd: &Command,
        emulation: Emulation,
        db: u32,
        deadline: Instant,
    ) -> Result<MoveKey, ProxyError> {
        let a = &cmd.args;
        let (src, dst) = (a[1].clone(), a[2].clone());
        let (rename, nx) = match emulation {
            Emulation::Rename { nx } => (true, nx),
            _ => (false, false),
        };
        let mut replace = false;
        let mut target_db = db;
        if !rename {
            let mut i = 3;
            while i < a.len() {
                if a[i].eq_ignore_ascii_case(b"REPLACE") {
                    replace = true;
                    i += 1;
                } else if a[i].eq_ignore_ascii_case(b"DB") && i + 1 < a.len() {
                    let n = parse_i64(&a[i + 1])
                        .filter(|d| i32::try_from(*d).is_ok())
                        .ok_or_else(|| redis_err(crate::semantics::emulated::NOT_AN_INTEGER))?;
                    target_db =
                        u32::try_from(n).map_err(|_| redis_err("ERR DB index is out of range"))?;
                    i += 2;
                } else {
                    return Err(redis_err("ERR syntax error"));
                }
            }
        }
        // COPY checks this before it looks the source up.
        if !rename && target_db == db && src == dst {
            return Err(redis_err("ERR source and destination objects are the same"));
        }
        let reads = vec![
            Read::Key(src.clone()),
            Read::Exists {
                key: dst.clone(),
                db: target_db,
            },
        ];
        Ok(MoveKey {
            args: a.clone(),
            name: cmd.name(),
            src,
            dst,
            rename,
            nx,
            replace,
            db,
            target_db,
            reads,
            values: None,
            deadline,
            reply: None,
        })
    }
}

impl Rmw for MoveKey {
    fn reads(&self) -> &[Read] {
        &self.reads
    }

    fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<Write>, ProxyError> {
        let [Snapshot::Key(source), Snapshot::Exists(dst_exists)] =
            <[Snapshot; 2]>::try_from(snapshot)
                .map_err(|_| redis_err("ERR sealcache: unexpected snapshot"))?
        else {
            return Err(redis_err("ERR sealcache: unexpected snapshot"));
        };
        if source.kind == KeyType::None {
            self.reply = Some(int(0));
            return if self.rename {
                Err(redis_err("ERR no such key"))
            } else {
                Ok(Vec::new())
            };
        }
        if self.src == self.dst && self.target_db == self.db {
            self.reply = Some(match (self.rename, self.nx) {
                (true, false) => reply::ok(),
                (true, true) => int(0),
                (false, _) => {
                    return Err(redis_err("ERR source and destination objects are the same"));
                }
            });
            return Ok(Vec::new());
        }
        if (self.nx || (!self.rename && !self.replace)) && dst_exists {
            self.reply = Some(int(0));
            return Ok(Vec::new());
        }
        self.reply = Some(match (self.rename, self.nx) {
            (true, false) => reply::ok(),
            _ => int(1),
        });
        let value = match source.value {
            _ if !matches!(
                source.kind,
                KeyType::String | KeyType::Hash | KeyType::Stream
            ) =>
            {
                // Lists, sets and sorted sets move as they are.
                return Ok(vec![Write::Native(self.args.clone())]);
            }
            _ if source.kind == KeyType::Stream => {
                return Err(ProxyError::Rejected {
                    command: super::display_name(self.name),
                    reason: "stream values are bound to the key name, and rebuilding the stream under a new name would lose its consumer groups".into(),
                });
            }
            value => value,
        };
        let values = self.values.as_ref().expect("set by the caller");
        let value = match value {
            KeyValue::String(envelope) => KeyValue::String(values.reseal(
                &Binding::String(self.src.clone()),
                &Binding::String(self.dst.clone()),
                envelope,
            )?),
            KeyValue::Hash(pairs) => {
                let mut resealed = Vec::with_capacity(pairs.len());
                for (field, envelope) in pairs {
                    let from = Binding::Hash {
                        key: self.src.clone(),
                        field: field.clone(),
                    };
                    let to = Binding::Hash {
                        key: self.dst.clone(),
                        field: field.clone(),
                    };
                    resealed.push((field, values.reseal(&from, &to, envelope)?));
                }
                KeyValue::Hash(resealed)
            }
            KeyValue::None => KeyValue::None,
        };
        let mut writes = vec![Write::PutKey {
            key: self.dst.clone(),
            db: self.target_db,
            value,
            ttl_ms: source.ttl_ms,
        }];
        if self.rename {
            writes.push(Write::Delete {
                key: self.src.clone(),
                db: self.db,
            });
        }
        Ok(writes)
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }
}
