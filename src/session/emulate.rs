//! Commands that cannot run on ciphertext, done by sealcache: read the value,
//! decrypt, compute, encrypt, write back — atomically, with an optimistic
//! transaction (WATCH / MULTI / EXEC, retried on conflict a bounded number of
//! times) on a dedicated upstream connection. Replies and errors match redis-server's.

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use super::dedicated::Dedicated;
use super::long_double::LongDouble;
use super::{Flow, Route, Session};
use crate::backend::Encoding;
use crate::backend::redis::{LeaseState, Purpose};
use crate::commands::{Command, Emulation};
use crate::error::ProxyError;
use crate::protocol::Frame;
use crate::protocol::reply::{self, bulk, error_text, int, text_of};
use crate::semantics::number::parse_i64;
use crate::semantics::zset::{Direction, rank_among_ties};

/// Optimistic transactions retried at most this many times before giving up.
const MAX_ATTEMPTS: u32 = 100;
/// Redis's default proto-max-bulk-len, the largest string SETRANGE may build.
const MAX_STRING_LEN: i64 = 512 * 1024 * 1024;

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
const NOT_A_FLOAT: &str = "ERR value is not a valid float";
const OVERFLOW: &str = "ERR increment or decrement would overflow";
const NAN_OR_INF: &str = "ERR increment would produce NaN or Infinity";
const INCREMENT_NAN_OR_INF: &str = "ERR value is NaN or Infinity";
const TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// The outcome of one attempt.
enum Attempt {
    Done(Frame),
    /// EXEC was aborted by a concurrent write: try again.
    Conflict,
}

fn word(w: &'static str) -> Bytes {
    Bytes::from_static(w.as_bytes())
}

fn redis_err(msg: &str) -> ProxyError {
    ProxyError::Redis(msg.to_string())
}

/// A dedicated connection and the database the emulation runs in.
struct Txn<'a> {
    session: &'a Session,
    lease: Dedicated,
}

impl Txn<'_> {
    /// Sends commands pipelined and waits for every reply.
    async fn run(&mut self, commands: Vec<Vec<Bytes>>) -> Result<Vec<Frame>, ProxyError> {
        let mut pending = Vec::with_capacity(commands.len());
        for args in commands {
            pending.push(
                self.lease
                    .send(args, Encoding::Args, self.session.db)
                    .await?,
            );
        }
        let timeout = self.session.command_timeout;
        let upstream = self.session.ctx.upstream_label();
        let mut replies = Vec::with_capacity(pending.len());
        for rx in pending {
            let reply = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(result)) => result?,
                Ok(Err(_)) => {
                    return Err(ProxyError::UpstreamLost {
                        upstream,
                        reason: "connection closed".into(),
                    });
                }
                Err(_) => return Err(ProxyError::UpstreamTimeout { upstream, timeout }),
            };
            replies.push(reply.frame);
        }
        Ok(replies)
    }

    async fn one(&mut self, args: Vec<Bytes>) -> Result<Frame, ProxyError> {
        Ok(self.run(vec![args]).await?.remove(0))
    }

    /// WATCHes `keys`, then runs `reads` in the same round trip.
    async fn watch_and_read(
        &mut self,
        keys: &[&Bytes],
        reads: Vec<Vec<Bytes>>,
    ) -> Result<Vec<Frame>, ProxyError> {
        self.lease.state = LeaseState::Watching;
        let mut watch = vec![word("WATCH")];
        watch.extend(keys.iter().map(|k| (*k).clone()));
        let mut commands = vec![watch];
        commands.extend(reads);
        let mut replies = self.run(commands).await?;
        replies.remove(0);
        Ok(replies)
    }

    async fn unwatch(&mut self) -> Result<(), ProxyError> {
        self.one(vec![word("UNWATCH")]).await?;
        self.lease.state = LeaseState::Clean;
        Ok(())
    }

    /// MULTI, `writes`, EXEC. `None` when EXEC was aborted by a conflicting write.
    async fn commit(&mut self, writes: Vec<Vec<Bytes>>) -> Result<Option<Vec<Frame>>, ProxyError> {
        let mut commands = vec![vec![word("MULTI")]];
        commands.extend(writes);
        commands.push(vec![word("EXEC")]);
        self.lease.state = LeaseState::InMulti;
        let mut replies = self.run(commands).await?;
        self.lease.state = LeaseState::Clean;
        match replies.pop() {
            Some(Frame::Array { data, .. }) => {
                if let Some(err) = data.iter().find_map(error_text) {
                    return Err(ProxyError::Redis(err));
                }
                Ok(Some(data))
            }
            Some(Frame::Null) => Ok(None),
            Some(other) => Err(ProxyError::Redis(
                error_text(&other).unwrap_or_else(|| "ERR EXEC failed".into()),
            )),
            None => Err(redis_err("ERR EXEC failed")),
        }
    }
}

/// A score reply: a RESP3 double, or text from a RESP2 upstream; `None` for nil.
fn score_of(frame: &Frame) -> Option<f64> {
    match frame {
        Frame::Double { data, .. } => Some(*data),
        other => std::str::from_utf8(text_of(other)?).ok()?.parse().ok(),
    }
}

/// An upstream error reply (WRONGTYPE…) stops the emulation and reaches the client as is.
fn check(frame: &Frame) -> Result<(), ProxyError> {
    match error_text(frame) {
        Some(err) => Err(ProxyError::Redis(err)),
        None => Ok(()),
    }
}

impl Session {
    pub(super) async fn emulate(&mut self, cmd: Command, emulation: Emulation) -> Flow {
        if self.multi.is_some() {
            let msg = format!(
                "{} is not available inside MULTI through sealcache: it reads, decrypts and writes back, which a queued transaction cannot do",
                super::display_name(cmd.name())
            );
            return self.fail(ProxyError::Unsupported(msg)).await;
        }
        // Earlier commands must have run before this one reads.
        if !self.fence(Route::Fresh).await {
            return Flow::Close;
        }
        let lease = match self.dedicated(Purpose::Pinned).await {
            Ok(lease) => lease,
            Err(e) => return self.fail(e).await,
        };
        let mut txn = Txn {
            session: self,
            lease,
        };
        let mut result = Err(redis_err("ERR sealcache: the emulated command did not run"));
        for attempt in 0..MAX_ATTEMPTS {
            match txn.attempt(&cmd, emulation).await {
                Ok(Attempt::Done(frame)) => {
                    result = Ok(frame);
                    break;
                }
                Ok(Attempt::Conflict) => {
                    // Back off a little, with jitter, so contending clients spread out.
                    let max = 200 * u64::from(attempt + 1).min(10);
                    let jitter = Duration::from_micros(rand::rng().random_range(0..=max));
                    tokio::time::sleep(jitter).await;
                    result = Err(ProxyError::Unsupported(format!(
                        "{} gave up after {MAX_ATTEMPTS} conflicting concurrent writes to the same key; retry",
                        super::display_name(cmd.name())
                    )));
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        drop(txn);
        match result {
            Ok(frame) => self.reply(frame).await,
            Err(e) => self.reply(e.to_frame()).await,
        }
    }
}

impl Txn<'_> {
    async fn attempt(
        &mut self,
        cmd: &Command,
        emulation: Emulation,
    ) -> Result<Attempt, ProxyError> {
        let a = &cmd.args;
        let key = &a[1];
        match emulation {
            Emulation::IncrBy => {
                let delta = match cmd.name() {
                    "INCR" => 1,
                    "DECR" => -1,
                    "INCRBY" => parse_i64(&a[2]).ok_or_else(|| redis_err(NOT_AN_INTEGER))?,
                    _ => {
                        let n = parse_i64(&a[2]).ok_or_else(|| redis_err(NOT_AN_INTEGER))?;
                        n.checked_neg()
                            .ok_or_else(|| redis_err("ERR decrement would overflow"))?
                    }
                };
                let current = self.read_string(key).await?;
                let current = match current {
                    None => 0,
                    Some(v) => match parse_i64(&v) {
                        Some(n) => n,
                        None => return self.abort(NOT_AN_INTEGER).await,
                    },
                };
                let Some(next) = current.checked_add(delta) else {
                    return self.abort(OVERFLOW).await;
                };
                self.write_string(key, next.to_string().as_bytes(), int(next))
                    .await
            }
            Emulation::IncrByFloat => {
                // Redis checks the key's type and value before the increment.
                let current = match self.read_string(key).await? {
                    None => LongDouble::ZERO,
                    Some(v) => match LongDouble::parse(&v) {
                        Some(f) => f,
                        None => return self.abort(NOT_A_FLOAT).await,
                    },
                };
                let Some(delta) = LongDouble::parse(&a[2]) else {
                    return self.abort(NOT_A_FLOAT).await;
                };
                let Some(text) = current.add(&delta).and_then(|n| n.to_redis_string()) else {
                    return self.abort(NAN_OR_INF).await;
                };
                self.write_string(key, text.as_bytes(), bulk(text.clone()))
                    .await
            }
            Emulation::HashIncrBy | Emulation::HashIncrByFloat => {
                let field = &a[2];
                let float = emulation == Emulation::HashIncrByFloat;
                let (parse_err, hash_err) = if float {
                    (NOT_A_FLOAT, "ERR hash value is not a float")
                } else {
                    (NOT_AN_INTEGER, "ERR hash value is not an integer")
                };
                // Redis checks the increment before it looks at the key.
                let int_delta = if float {
                    0
                } else {
                    parse_i64(&a[3]).ok_or_else(|| redis_err(parse_err))?
                };
                let float_delta = if float {
                    let delta = LongDouble::parse(&a[3]).ok_or_else(|| redis_err(parse_err))?;
                    if !delta.is_finite() {
                        return Err(redis_err(INCREMENT_NAN_OR_INF));
                    }
                    delta
                } else {
                    LongDouble::ZERO
                };
                let current = self.read_hash_field(key, field).await?;
                let (text, reply) = if float {
                    let current = match current.map(|v| LongDouble::parse(&v)) {
                        None => LongDouble::ZERO,
                        Some(Some(f)) => f,
                        Some(None) => return self.abort(hash_err).await,
                    };
                    let next = current.add(&float_delta).and_then(|n| n.to_redis_string());
                    let Some(text) = next else {
                        return self.abort(NAN_OR_INF).await;
                    };
                    (text.clone(), bulk(text))
                } else {
                    let delta = int_delta;
                    let current = match current.map(|v| parse_i64(&v)) {
                        None => 0,
                        Some(Some(n)) => n,
                        Some(None) => return self.abort(hash_err).await,
                    };
                    let Some(next) = current.checked_add(delta) else {
                        return self.abort(OVERFLOW).await;
                    };
                    (next.to_string(), int(next))
                };
                let sealed =
                    self.session
                        .ctx
                        .values
                        .seal_hash_value(key, field, text.as_bytes())?;
                self.finish(
                    vec![vec![word("HSET"), key.clone(), field.clone(), sealed]],
                    reply,
                )
                .await
            }
            Emulation::Append => {
                let mut value = self.read_string(key).await?.unwrap_or_default();
                if (value.len() + a[2].len()) as i64 > MAX_STRING_LEN {
                    return self.abort(TOO_LONG).await;
                }
                value.extend_from_slice(&a[2]);
                let len = value.len() as i64;
                self.write_string(key, &value, int(len)).await
            }
            Emulation::SetRange => {
                let offset = parse_i64(&a[2]).ok_or_else(|| redis_err(NOT_AN_INTEGER))?;
                if offset < 0 {
                    return Err(redis_err("ERR offset is out of range"));
                }
                let patch = &a[3];
                // Redis's order: the key's type, then an empty patch, then the size limit.
                let mut value = self.read_string(key).await?.unwrap_or_default();
                if patch.is_empty() {
                    self.unwatch().await?;
                    return Ok(Attempt::Done(int(value.len() as i64)));
                }
                if offset.saturating_add(patch.len() as i64) > MAX_STRING_LEN {
                    return self.abort(TOO_LONG).await;
                }
                let offset = offset as usize;
                if value.len() < offset + patch.len() {
                    value.resize(offset + patch.len(), 0);
                }
                value[offset..offset + patch.len()].copy_from_slice(patch);
                let len = value.len() as i64;
                self.write_string(key, &value, int(len)).await
            }
            Emulation::Strlen => {
                let value = self.get_plain(key).await?;
                Ok(Attempt::Done(int(value.map_or(0, |v| v.len() as i64))))
            }
            Emulation::GetRange => {
                let start = parse_i64(&a[2]).ok_or_else(|| redis_err(NOT_AN_INTEGER))?;
                let end = parse_i64(&a[3]).ok_or_else(|| redis_err(NOT_AN_INTEGER))?;
                let value = self.get_plain(key).await?.unwrap_or_default();
                Ok(Attempt::Done(bulk(redis_range(&value, start, end))))
            }
            Emulation::HashStrlen => {
                let reply = self
                    .one(vec![word("HGET"), key.clone(), a[2].clone()])
                    .await?;
                check(&reply)?;
                let len = match text_of(&reply) {
                    Some(envelope) => self
                        .open_hash(key, &a[2], envelope)?
                        .map_or(0, |v| v.len() as i64),
                    None => 0,
                };
                Ok(Attempt::Done(int(len)))
            }
            Emulation::Rename | Emulation::Copy => self.copy_key(cmd, emulation).await,
            Emulation::Rank => self.rank(cmd).await,
            Emulation::Session => Err(redis_err(
                "ERR sealcache: session commands are not emulated here",
            )),
        }
    }

    /// Ends a watched attempt with an error reply.
    async fn abort(&mut self, msg: &str) -> Result<Attempt, ProxyError> {
        self.unwatch().await?;
        Err(redis_err(msg))
    }

    /// Opens a string value; a value that does not open counts as a failure and reads as missing.
    fn open_string(&self, key: &[u8], envelope: &[u8]) -> Result<Option<Vec<u8>>, ProxyError> {
        match self.session.ctx.values.open_value(key, envelope) {
            Ok(v) => Ok(Some(v)),
            Err(reason) => self.undecryptable(key, reason),
        }
    }

    fn open_hash(
        &self,
        key: &[u8],
        field: &[u8],
        envelope: &[u8],
    ) -> Result<Option<Vec<u8>>, ProxyError> {
        match self
            .session
            .ctx
            .values
            .open_hash_value(key, field, envelope)
        {
            Ok(v) => Ok(Some(v)),
            Err(reason) => self.undecryptable(key, reason),
        }
    }

    fn undecryptable(
        &self,
        key: &[u8],
        reason: crate::crypto::OpenError,
    ) -> Result<Option<Vec<u8>>, ProxyError> {
        tracing::warn!(key = %crate::logging::Untrusted(key), %reason, "value failed to decrypt");
        match self.session.ctx.values.on_failure() {
            crate::config::DecryptFailure::Error => Err(ProxyError::Redis(format!(
                "ERR sealcache: the value at key '{}' failed to decrypt ({reason}); on_decrypt_failure is 'error'",
                String::from_utf8_lossy(key)
            ))),
            // A miss: the computation starts from an empty value, as for a missing key.
            _ => Ok(None),
        }
    }

    /// GET without a transaction (read-only emulations).
    async fn get_plain(&mut self, key: &Bytes) -> Result<Option<Vec<u8>>, ProxyError> {
        let reply = self.one(vec![word("GET"), key.clone()]).await?;
        check(&reply)?;
        match text_of(&reply) {
            Some(envelope) => self.open_string(key, envelope),
            None => Ok(None),
        }
    }

    async fn read_string(&mut self, key: &Bytes) -> Result<Option<Vec<u8>>, ProxyError> {
        let reply = self
            .watch_and_get(key, vec![word("GET"), key.clone()])
            .await?;
        text_of(&reply).map_or(Ok(None), |e| self.open_string(key, e))
    }

    async fn read_hash_field(
        &mut self,
        key: &Bytes,
        field: &Bytes,
    ) -> Result<Option<Vec<u8>>, ProxyError> {
        let reply = self
            .watch_and_get(key, vec![word("HGET"), key.clone(), field.clone()])
            .await?;
        text_of(&reply).map_or(Ok(None), |e| self.open_hash(key, field, e))
    }

    /// WATCHes `key` and runs `read`; an error reply (WRONGTYPE…) unwatches and ends the attempt.
    async fn watch_and_get(&mut self, key: &Bytes, read: Vec<Bytes>) -> Result<Frame, ProxyError> {
        let reply = self.watch_and_read(&[key], vec![read]).await?.remove(0);
        if let Err(e) = check(&reply) {
            self.unwatch().await?;
            return Err(e);
        }
        Ok(reply)
    }

    /// Writes a string value back, keeping its TTL, and answers `reply` if no one raced us.
    async fn write_string(
        &mut self,
        key: &Bytes,
        value: &[u8],
        reply: Frame,
    ) -> Result<Attempt, ProxyError> {
        let sealed = self.session.ctx.values.seal_value(key, value)?;
        self.finish(
            vec![vec![word("SET"), key.clone(), sealed, word("KEEPTTL")]],
            reply,
        )
        .await
    }

    async fn finish(
        &mut self,
        writes: Vec<Vec<Bytes>>,
        reply: Frame,
    ) -> Result<Attempt, ProxyError> {
        Ok(match self.commit(writes).await? {
            Some(_) => Attempt::Done(reply),
            None => Attempt::Conflict,
        })
    }

    /// ZRANK/ZREVRANK. The upstream orders equal scores by ciphertext, so
    /// its rank is wrong among ties: read the member's score, then in one
    /// MULTI/EXEC the score again (it must not have moved), how many members
    /// come before that score and the members sharing it, and rank the member
    /// among those by plaintext.
    async fn rank(&mut self, cmd: &Command) -> Result<Attempt, ProxyError> {
        let (key, plain) = (&cmd.args[1], &cmd.args[2]);
        let direction = if cmd.name() == "ZREVRANK" {
            Direction::Descending
        } else {
            Direction::Ascending
        };
        let member = self.session.ctx.values.seal_member(plain)?;
        let reply = self
            .one(vec![word("ZSCORE"), key.clone(), member.clone()])
            .await?;
        check(&reply)?;
        let Some(score) = score_of(&reply) else {
            return Ok(Attempt::Done(Frame::Null));
        };
        // `{:e}` is the shortest text that reads back as the same double.
        let at = Bytes::from(format!("{score:e}"));
        let past = Bytes::from(format!("({score:e}"));
        let before = match direction {
            Direction::Ascending => [word("-inf"), past],
            Direction::Descending => [past, word("+inf")],
        };
        let reads = vec![
            vec![word("ZSCORE"), key.clone(), member],
            [vec![word("ZCOUNT"), key.clone()], before.to_vec()].concat(),
            vec![word("ZRANGEBYSCORE"), key.clone(), at.clone(), at],
        ];
        let Some(replies) = self.commit(reads).await? else {
            return Ok(Attempt::Conflict);
        };
        let [now, count, ties] = <[Frame; 3]>::try_from(replies)
            .map_err(|_| redis_err("ERR sealcache: unexpected reply to the ZRANK reads"))?;
        if score_of(&now) != Some(score) {
            // Moved or removed between the two round trips: start again.
            return Ok(Attempt::Conflict);
        }
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
            match self.session.ctx.values.open_member(envelope) {
                Ok(m) => opened.push(m),
                // Left out, as every read leaves undecryptable members out.
                Err(reason) => {
                    self.undecryptable(key, reason)?;
                }
            }
        }
        let rank = rank_among_ties(before, opened.iter().map(Vec::as_slice), plain, direction);
        Ok(Attempt::Done(int(rank)))
    }

    /// RENAME/RENAMENX/COPY: values bound to the source key name are
    /// re-encrypted for the destination; the TTL is kept.
    async fn copy_key(
        &mut self,
        cmd: &Command,
        emulation: Emulation,
    ) -> Result<Attempt, ProxyError> {
        let a = &cmd.args;
        let (src, dst) = (&a[1], &a[2]);
        let rename = emulation == Emulation::Rename;
        let nx = cmd.name() == "RENAMENX";
        let mut replace = false;
        let mut target_db = self.session.db;
        if !rename {
            let mut i = 3;
            while i < a.len() {
                if a[i].eq_ignore_ascii_case(b"REPLACE") {
                    replace = true;
                    i += 1;
                } else if a[i].eq_ignore_ascii_case(b"DB") && i + 1 < a.len() {
                    let db = parse_i64(&a[i + 1])
                        .filter(|d| i32::try_from(*d).is_ok())
                        .ok_or_else(|| redis_err(NOT_AN_INTEGER))?;
                    target_db =
                        u32::try_from(db).map_err(|_| redis_err("ERR DB index is out of range"))?;
                    i += 2;
                } else {
                    return Err(redis_err("ERR syntax error"));
                }
            }
        }
        let switch_db = target_db != self.session.db;
        // COPY checks this before it looks the source up.
        if !rename && !switch_db && src == dst {
            return Err(redis_err("ERR source and destination objects are the same"));
        }
        let mut reads = vec![
            vec![word("TYPE"), src.clone()],
            vec![word("PTTL"), src.clone()],
        ];
        let watched: &[&Bytes] = if switch_db {
            // The destination lives in the other database: watch and probe it there.
            reads.extend([
                vec![word("SELECT"), Bytes::from(target_db.to_string())],
                vec![word("WATCH"), dst.clone()],
                vec![word("EXISTS"), dst.clone()],
                vec![word("SELECT"), Bytes::from(self.session.db.to_string())],
            ]);
            &[src]
        } else {
            reads.push(vec![word("EXISTS"), dst.clone()]);
            &[src, dst]
        };
        let replies = self.watch_and_read(watched, reads).await?;
        if let Some(err) = replies.iter().find_map(error_text) {
            // DB index out of range (SELECT), or the upstream refused a read.
            self.unwatch().await?;
            return Err(ProxyError::Redis(err));
        }
        let kind = text_of(&replies[0]).map(|t| t.to_vec()).unwrap_or_default();
        let ttl = match replies[1] {
            Frame::Number { data, .. } => data,
            _ => -1,
        };
        let exists = if switch_db { &replies[4] } else { &replies[2] };
        let dst_exists = matches!(exists, Frame::Number { data, .. } if *data > 0);
        if kind == b"none" {
            self.unwatch().await?;
            return if rename {
                Err(redis_err("ERR no such key"))
            } else {
                Ok(Attempt::Done(int(0)))
            };
        }
        let same_key = src == dst && target_db == self.session.db;
        if same_key {
            self.unwatch().await?;
            return Ok(Attempt::Done(match (rename, nx) {
                (true, false) => reply::ok(),
                (true, true) => int(0),
                (false, _) => {
                    return Err(redis_err("ERR source and destination objects are the same"));
                }
            }));
        }
        if (nx || (!rename && !replace)) && dst_exists {
            self.unwatch().await?;
            return Ok(Attempt::Done(int(0)));
        }
        let done = match (rename, nx) {
            (true, false) => reply::ok(),
            _ => int(1),
        };
        // Lists, sets and sorted sets are bound to the namespace, not the key: Redis can move them as they are.
        let native = !matches!(kind.as_slice(), b"string" | b"hash" | b"stream");
        if native {
            self.unwatch().await?;
            let reply = self.one(a.clone()).await?;
            return Ok(Attempt::Done(reply));
        }
        if kind == b"stream" {
            self.unwatch().await?;
            return Err(ProxyError::Rejected {
                command: super::display_name(cmd.name()),
                reason: "stream values are bound to the key name, and rebuilding the stream under a new name would lose its consumer groups".into(),
            });
        }
        let ctx = &self.session.ctx;
        let mut writes = Vec::new();
        if switch_db {
            writes.push(vec![word("SELECT"), Bytes::from(target_db.to_string())]);
        }
        writes.push(vec![word("DEL"), dst.clone()]);
        if kind == b"string" {
            let reply = self.one(vec![word("GET"), src.clone()]).await?;
            check(&reply)?;
            let sealed = match text_of(&reply) {
                Some(envelope) => match ctx.values.open_value(src, envelope) {
                    Ok(plain) => ctx.values.seal_value(dst, &plain)?,
                    // Unreadable under the old name too: carried over as it is.
                    Err(_) => Bytes::copy_from_slice(envelope),
                },
                None => Bytes::new(),
            };
            writes.push(vec![word("SET"), dst.clone(), sealed]);
        } else {
            let reply = self.one(vec![word("HGETALL"), src.clone()]).await?;
            check(&reply)?;
            let pairs: Vec<(Frame, Frame)> = match reply {
                Frame::Map { data, .. } => data.into_iter().collect(),
                Frame::Array { data, .. } => {
                    let mut it = data.into_iter();
                    std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
                }
                _ => Vec::new(),
            };
            let mut hset = vec![word("HSET"), dst.clone()];
            for (field, value) in pairs {
                let (Some(field), Some(envelope)) = (text_of(&field), text_of(&value)) else {
                    continue;
                };
                let sealed = match ctx.values.open_hash_value(src, field, envelope) {
                    Ok(plain) => ctx.values.seal_hash_value(dst, field, &plain)?,
                    Err(_) => Bytes::copy_from_slice(envelope),
                };
                hset.push(Bytes::copy_from_slice(field));
                hset.push(sealed);
            }
            if hset.len() > 2 {
                writes.push(hset);
            }
        }
        if ttl > 0 {
            writes.push(vec![
                word("PEXPIRE"),
                dst.clone(),
                Bytes::from(ttl.to_string()),
            ]);
        }
        if switch_db {
            writes.push(vec![
                word("SELECT"),
                Bytes::from(self.session.db.to_string()),
            ]);
        }
        if rename {
            writes.push(vec![word("DEL"), src.clone()]);
        }
        self.finish(writes, done).await
    }
}

/// GETRANGE's index arithmetic, as Redis does it.
fn redis_range(value: &[u8], start: i64, end: i64) -> Vec<u8> {
    let len = value.len() as i64;
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return Vec::new();
    }
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end {
        return Vec::new();
    }
    value[start as usize..=end as usize].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_matches_redis_index_rules() {
        let v = b"This is a string";
        assert_eq!(redis_range(v, 0, 3), b"This");
        assert_eq!(redis_range(v, -3, -1), b"ing");
        assert_eq!(redis_range(v, 0, -1), v.to_vec());
        assert_eq!(redis_range(v, 10, 100), b"string");
        assert_eq!(redis_range(v, 5, 2), b"");
        assert_eq!(redis_range(b"", 0, -1), b"");
        // Both negative and reversed: empty, even when clamping would meet at 0.
        assert_eq!(redis_range(b"abc", -10, -20), b"");
    }

    #[test]
    fn integers_parse_as_redis_string2ll() {
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b"-01"), None);
        assert_eq!(parse_i64(b"-"), None);
    }
}
