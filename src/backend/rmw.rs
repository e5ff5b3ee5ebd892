//! The one atomic read-modify-write primitive every backend provides, for the
//! commands sealcache computes itself (INCR, APPEND, SETRANGE, HINCRBY,
//! RENAME/COPY re-sealing, `delete`-mode cleanups, and later key rotation).
//!
//! An operation ([`Rmw`]) names what it reads; the backend reads it, hands
//! the [`Snapshot`]s to [`Rmw::decide`] (which opens, computes and seals —
//! the backend only ever moves envelopes), and applies the [`Write`]s it
//! returns as one atomic step, provided nothing it read changed meanwhile,
//! then hands it the writes' replies ([`Rmw::committed`]: a transaction that
//! sealcache runs at EXEC answers with them). When something changed, the
//! backend reads again and calls `decide` again, with exponential backoff and
//! jitter, until the operation's deadline.
//!
//! Redis does it with WATCH / MULTI / EXEC on a connection of its own
//! ([`via_connection`], [`Attempt`]); the memory backend under its engine
//! lock; DynamoDB with conditional writes on a version attribute. Callers go
//! through the process's [`super::gate`], so two operations of one process
//! never touch one key at once.

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::time::Instant;

use super::{ConnState, Connection, Request, await_reply};
use crate::error::ProxyError;
use crate::protocol::Frame;
use crate::protocol::reply::{error_text, text_of};

/// Something an operation reads, in the operation's database unless it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A string key's value; a key of another type is Redis's WRONGTYPE.
    String(Bytes),
    /// One field of a hash; a key of another type is WRONGTYPE.
    HashField { key: Bytes, field: Bytes },
    /// A whole key: its type, its TTL, and the value of a string or hash.
    Key(Bytes),
    /// Whether a key exists, in database `db`.
    Exists { key: Bytes, db: u32 },
    /// A read-only command of `key`, its reply as it comes (XRANGE of one
    /// entry, say): for backends that run Redis commands natively.
    Command { key: Bytes, args: Vec<Bytes> },
}

impl Read {
    /// The key read (what a backend watches or conditions on).
    pub fn key(&self) -> &Bytes {
        match self {
            Read::String(key) | Read::Key(key) => key,
            Read::HashField { key, .. } | Read::Exists { key, .. } | Read::Command { key, .. } => {
                key
            }
        }
    }
}

/// What a [`Read`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snapshot {
    /// The envelope, or `None` for a missing key.
    String(Option<Bytes>),
    /// The field's envelope, or `None`.
    HashField(Option<Bytes>),
    Key(KeySnapshot),
    Exists(bool),
    /// A [`Read::Command`]'s reply.
    Reply(Frame),
}

/// Redis's types, as TYPE names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    None,
    String,
    Hash,
    List,
    Set,
    ZSet,
    Stream,
}

impl KeyType {
    pub fn from_name(name: &[u8]) -> KeyType {
        match name {
            b"string" => KeyType::String,
            b"hash" => KeyType::Hash,
            b"list" => KeyType::List,
            b"set" => KeyType::Set,
            b"zset" => KeyType::ZSet,
            b"stream" => KeyType::Stream,
            _ => KeyType::None,
        }
    }
}

/// A whole key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySnapshot {
    pub kind: KeyType,
    /// Milliseconds to live, `None` without an expiry.
    pub ttl_ms: Option<i64>,
    pub value: KeyValue,
}

/// The value of a string or hash key (other types are not read whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    None,
    String(Bytes),
    /// Field name and envelope pairs.
    Hash(Vec<(Bytes, Bytes)>),
}

/// A change an operation makes; all of one decision apply atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// `SET key value`, keeping the key's TTL when `keep_ttl`.
    SetString {
        key: Bytes,
        value: Bytes,
        keep_ttl: bool,
    },
    /// `HSET key field value`.
    HashSet {
        key: Bytes,
        field: Bytes,
        value: Bytes,
    },
    /// `HDEL key field`.
    HashDelete { key: Bytes, field: Bytes },
    /// `DEL key` in database `db`.
    Delete { key: Bytes, db: u32 },
    /// The whole key replaced in database `db`: a string or hash, with a TTL.
    PutKey {
        key: Bytes,
        db: u32,
        value: KeyValue,
        ttl_ms: Option<i64>,
    },
    /// A command the backend runs as it is, in the same atomic step (RENAME
    /// or COPY of a list, set or sorted set, whose members are bound to the
    /// namespace rather than the key).
    Native(Vec<Bytes>),
}

impl Write {
    /// The database the write is in: `db` (the operation's) unless it names
    /// another.
    pub fn db(&self, db: u32) -> u32 {
        match self {
            Write::Delete { db: other, .. } | Write::PutKey { db: other, .. } => *other,
            _ => db,
        }
    }

    /// The Redis commands that make the write, in its database; a
    /// [`Write::PutKey`]'s TTL is left to the caller (a relative PEXPIRE in a
    /// transaction, an absolute PEXPIREAT in the fallback's journal).
    pub fn commands(self) -> Vec<Vec<Bytes>> {
        match self {
            Write::SetString {
                key,
                value,
                keep_ttl,
            } => {
                let mut set = vec![word("SET"), key, value];
                if keep_ttl {
                    set.push(word("KEEPTTL"));
                }
                vec![set]
            }
            Write::HashSet { key, field, value } => vec![vec![word("HSET"), key, field, value]],
            Write::HashDelete { key, field } => vec![vec![word("HDEL"), key, field]],
            Write::Delete { key, .. } => vec![vec![word("DEL"), key]],
            Write::PutKey { key, value, .. } => {
                let mut commands = vec![vec![word("DEL"), key.clone()]];
                match value {
                    KeyValue::None => {}
                    KeyValue::String(v) => commands.push(vec![word("SET"), key, v]),
                    KeyValue::Hash(pairs) if pairs.is_empty() => {}
                    KeyValue::Hash(pairs) => {
                        let mut hset = vec![word("HSET"), key];
                        for (field, value) in pairs {
                            hset.push(field);
                            hset.push(value);
                        }
                        commands.push(hset);
                    }
                }
                commands
            }
            Write::Native(args) => vec![args],
        }
    }
}

/// One read-modify-write operation.
pub trait Rmw: Send {
    /// What it reads; the same every attempt.
    fn reads(&self) -> &[Read];
    /// Given what the reads found, the writes to apply (none: nothing to
    /// change). Called again if a concurrent write forced another attempt; an
    /// error ends the operation (the client's reply is that error).
    fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<Write>, ProxyError>;
    /// When to give up retrying.
    fn deadline(&self) -> Instant;
    /// The writes of the last decision were applied: `replies` holds one
    /// reply per write, in order, as the backend's own command answered it
    /// (a backend that does not run Redis commands answers `+OK`). An error
    /// here is the operation's; by default an error reply is (a transaction
    /// that sealcache runs keeps per-command errors as replies instead).
    fn committed(&mut self, replies: Vec<Frame>) -> Result<(), ProxyError> {
        match replies.iter().find_map(error_text) {
            Some(err) => Err(ProxyError::Redis(err)),
            None => Ok(()),
        }
    }
}

/// Backoff between attempts after a conflict: exponential from 1 ms, with full jitter.
pub fn conflict_backoff(attempt: u32) -> Duration {
    let cap = Duration::from_micros(1000u64 << attempt.min(8));
    cap.mul_f64(rand::rng().random_range(0.0..1.0))
}

/// The error when conflicting writers kept an operation from completing.
pub fn gave_up(waited: Duration) -> ProxyError {
    ProxyError::Unsupported(format!(
        "gave up after {}ms of conflicting concurrent writes to the same key; retry",
        waited.as_millis()
    ))
}

fn word(w: &'static str) -> Bytes {
    Bytes::from_static(w.as_bytes())
}

fn select(db: u32) -> Vec<Bytes> {
    vec![word("SELECT"), Bytes::from(db.to_string())]
}

/// Runs `op` on a connection that speaks WATCH / MULTI / EXEC (Redis), in
/// database `db`. `backend` names the backend in errors.
pub async fn via_connection(
    conn: &mut dyn Connection,
    backend: &str,
    command_timeout: Duration,
    db: u32,
    op: &mut dyn Rmw,
) -> Result<(), ProxyError> {
    let attempt = Attempt {
        backend,
        timeout: command_timeout,
        db,
        always_exec: false,
        read_again: false,
    };
    attempt.until_committed(conn, op, None).await.map(drop)
}

/// Sends `commands` pipelined and returns every reply.
async fn round_trip(
    conn: &mut dyn Connection,
    backend: &str,
    timeout: Duration,
    db: u32,
    commands: Vec<Vec<Bytes>>,
) -> Result<Vec<Frame>, ProxyError> {
    let mut pending = Vec::with_capacity(commands.len());
    for args in commands {
        let (request, rx) = Request::new(args, db);
        conn.send(request)?;
        pending.push(rx);
    }
    let deadline = Instant::now() + timeout;
    let mut replies = Vec::with_capacity(pending.len());
    for rx in pending {
        replies.push(
            await_reply(rx, Some(deadline), backend, timeout)
                .await?
                .frame,
        );
    }
    Ok(replies)
}

/// One attempt of `op` on `conn`; `Ok(false)` when EXEC was aborted by a
/// write to a watched key (the operation's, or any the connection watched
/// before: a client's own WATCH, whose transaction must not be retried).
/// `always_exec`: MULTI/EXEC even with nothing to write, so that such a
/// WATCH still decides the outcome.
pub async fn attempt_once(
    conn: &mut dyn Connection,
    backend: &str,
    timeout: Duration,
    db: u32,
    op: &mut dyn Rmw,
    always_exec: bool,
) -> Result<bool, ProxyError> {
    let attempt = Attempt {
        backend,
        timeout,
        db,
        always_exec,
        read_again: false,
    };
    Ok(attempt.run(conn, op, None).await?.0)
}

/// How [`Attempt::run`] goes about one attempt.
pub struct Attempt<'a> {
    /// Names the backend in errors.
    pub backend: &'a str,
    pub timeout: Duration,
    pub db: u32,
    /// MULTI/EXEC even with nothing to write.
    pub always_exec: bool,
    /// WATCH and read the operation's reads again right after EXEC, in the
    /// same round trip: the next attempt (or the next operation on the same
    /// reads, on this connection) starts from them without a round trip.
    pub read_again: bool,
}

impl Attempt<'_> {
    /// Attempts `op` until it commits, with backoff after each conflict,
    /// until its deadline (the first attempt from `known`, as [`Self::run`];
    /// each next one from what the last read again, when it did). Returns
    /// what the reads found after the committing EXEC, with `read_again`.
    pub async fn until_committed(
        &self,
        conn: &mut dyn Connection,
        op: &mut dyn Rmw,
        mut known: Option<Vec<Snapshot>>,
    ) -> Result<Option<Vec<Snapshot>>, ProxyError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let (committed, again) = self.run(conn, op, known.take()).await?;
            if committed {
                return Ok(again);
            }
            let backoff = conflict_backoff(attempt);
            if Instant::now() + backoff >= op.deadline() {
                return Err(gave_up(started.elapsed()));
            }
            tokio::time::sleep(backoff).await;
            attempt += 1;
            known = again;
        }
    }

    /// One attempt of `op` on `conn`, from `known` when given (what `op`'s
    /// reads found on this connection, still WATCHed since: EXEC fails if
    /// anything changed, so the attempt is as safe as after a fresh read).
    /// Returns whether EXEC committed, and with `read_again` what the reads
    /// found after it (`None` if they failed).
    pub async fn run(
        &self,
        conn: &mut dyn Connection,
        op: &mut dyn Rmw,
        known: Option<Vec<Snapshot>>,
    ) -> Result<(bool, Option<Vec<Snapshot>>), ProxyError> {
        let (backend, timeout, db) = (self.backend, self.timeout, self.db);
        let reads = op.reads().to_vec();
        // A known snapshot may be stale: EXEC, even an empty one, checks it.
        let always_exec = self.always_exec || known.is_some();
        let found = match known {
            Some(known) => Ok(known),
            None => {
                let (commands, watches) = read_commands(&reads, db);
                conn.set_state(ConnState::Watching);
                let replies = if commands.is_empty() {
                    Vec::new()
                } else {
                    round_trip(conn, backend, timeout, db, commands).await?
                };
                snapshot_of(&reads, db, replies.into_iter().skip(watches))
            }
        };
        let writes = match found.and_then(|snapshot| op.decide(snapshot)) {
            Ok(writes) => writes,
            Err(e) => {
                round_trip(conn, backend, timeout, db, vec![vec![word("UNWATCH")]]).await?;
                conn.set_state(ConnState::Clean);
                return Err(e);
            }
        };
        if writes.is_empty() && !always_exec {
            round_trip(conn, backend, timeout, db, vec![vec![word("UNWATCH")]]).await?;
            conn.set_state(ConnState::Clean);
            op.committed(Vec::new())?;
            return Ok((true, None));
        }
        let (mut commands, answers) = write_commands(writes, db);
        let exec_at = commands.len() - 1;
        let mut watches = 0;
        if self.read_again {
            let (again, again_watches) = read_commands(&reads, db);
            watches = again_watches;
            commands.extend(again);
        }
        conn.set_state(ConnState::InMulti);
        let replies = round_trip(conn, backend, timeout, db, commands).await?;
        // A queued command is answered +QUEUED, or an error that aborts EXEC.
        if let Some(odd) = replies
            .get(1..exec_at)
            .unwrap_or_default()
            .iter()
            .find(|f| {
                error_text(f).is_none()
                    && !matches!(f, Frame::SimpleString { data, .. } if &data[..] == b"QUEUED")
            })
        {
            return Err(ProxyError::Unsupported(format!(
                "the upstream's reply is {} where +QUEUED belongs",
                crate::protocol::reply::kind_name(odd)
            )));
        }
        let mut replies = replies.into_iter();
        let exec = replies.nth(exec_at);
        conn.set_state(if self.read_again {
            ConnState::Watching
        } else {
            ConnState::Clean
        });
        let again = self
            .read_again
            .then(|| snapshot_of(&reads, db, replies.skip(watches)).ok())
            .flatten();
        // Between MULTI and EXEC.
        let queued = exec_at - 1;
        match exec {
            // The upstream is not trusted: one reply per queued command, or
            // the transaction's outcome is unknown.
            Some(Frame::Array { data, .. }) if data.len() != queued => {
                Err(ProxyError::Unsupported(format!(
                    "the upstream's reply to EXEC is an array of {} where an array with one reply per queued command ({queued}) belongs",
                    data.len()
                )))
            }
            Some(Frame::Array { data, .. }) => {
                let replies = answers
                    .iter()
                    .map(|&(first, last)| {
                        let own = data.get(first..=last).unwrap_or_default();
                        own.iter()
                            .find(|f| error_text(f).is_some())
                            .or(own.last())
                            .cloned()
                            .unwrap_or(Frame::Null)
                    })
                    .collect();
                op.committed(replies)?;
                Ok((true, again))
            }
            Some(Frame::Null) => Ok((false, again)),
            Some(other) => Err(error_or_shape(&other)),
            None => Err(ProxyError::Redis("ERR EXEC failed".into())),
        }
    }
}

/// The commands that WATCH `reads`' keys (one WATCH for this database's;
/// another database's between SELECTs), then read them; and how many of
/// them come before the reads.
fn read_commands(reads: &[Read], db: u32) -> (Vec<Vec<Bytes>>, usize) {
    let mut commands = Vec::new();
    let mut watch = vec![word("WATCH")];
    for read in reads {
        match read {
            Read::Exists { key, db: other } if *other != db => {
                commands.push(select(*other));
                commands.push(vec![word("WATCH"), key.clone()]);
                commands.push(select(db));
            }
            read if !watch[1..].contains(read.key()) => watch.push(read.key().clone()),
            _ => {}
        }
    }
    if watch.len() > 1 {
        commands.push(watch);
    }
    let watches = commands.len();
    for read in reads {
        match read {
            Read::String(key) => commands.push(vec![word("GET"), key.clone()]),
            Read::HashField { key, field } => {
                commands.push(vec![word("HGET"), key.clone(), field.clone()])
            }
            Read::Key(key) => {
                commands.push(vec![word("TYPE"), key.clone()]);
                commands.push(vec![word("PTTL"), key.clone()]);
                // One of these answers WRONGTYPE; TYPE says which to keep.
                commands.push(vec![word("GET"), key.clone()]);
                commands.push(vec![word("HGETALL"), key.clone()]);
            }
            Read::Exists { key, db: other } if *other != db => {
                commands.push(select(*other));
                commands.push(vec![word("EXISTS"), key.clone()]);
                commands.push(select(db));
            }
            Read::Exists { key, .. } => commands.push(vec![word("EXISTS"), key.clone()]),
            Read::Command { args, .. } => commands.push(args.clone()),
        }
    }
    (commands, watches)
}

/// What `reads` found, from the replies to their read commands.
fn snapshot_of(
    reads: &[Read],
    db: u32,
    mut replies: impl Iterator<Item = Frame>,
) -> Result<Vec<Snapshot>, ProxyError> {
    let mut snapshot = Vec::with_capacity(reads.len());
    for read in reads {
        let mut next = || replies.next().unwrap_or(Frame::Null);
        snapshot.push(match read {
            Read::String(_) => bulk_or_error(next()).map(Snapshot::String)?,
            Read::HashField { .. } => bulk_or_error(next()).map(Snapshot::HashField)?,
            Read::Key(_) => {
                let (kind, ttl, get, hgetall) = (next(), next(), next(), next());
                key_snapshot(kind, ttl, get, hgetall).map(Snapshot::Key)?
            }
            Read::Exists { db: other, .. } => {
                let (selected, exists) = if *other != db {
                    let (selected, exists, _) = (next(), next(), next());
                    (selected, exists)
                } else {
                    (Frame::Null, next())
                };
                match (error_text(&selected), exists) {
                    // No such database (COPY … DB 99).
                    (Some(err), _) => return Err(ProxyError::Redis(err)),
                    (None, Frame::Number { data, .. }) => Snapshot::Exists(data > 0),
                    (None, other) => return Err(error_or_shape(&other)),
                }
            }
            Read::Command { .. } => Snapshot::Reply(next()),
        });
    }
    Ok(snapshot)
}

/// MULTI, the commands of `writes`, EXEC; and per write where its commands
/// sit in EXEC's array: its reply is the first error among them, else the
/// last one's (before a SELECT back).
fn write_commands(writes: Vec<Write>, db: u32) -> (Vec<Vec<Bytes>>, Vec<(usize, usize)>) {
    let mut commands = vec![vec![word("MULTI")]];
    let mut answers = Vec::with_capacity(writes.len());
    for write in writes {
        let first = commands.len() - 1;
        let other = write.db(db);
        // A whole key put again keeps its TTL, relative to now.
        let pexpire = match &write {
            Write::PutKey {
                key,
                ttl_ms: Some(ms),
                ..
            } if *ms > 0 => Some(vec![
                word("PEXPIRE"),
                key.clone(),
                Bytes::from(ms.to_string()),
            ]),
            _ => None,
        };
        in_db(&mut commands, db, other, |c| {
            c.extend(write.commands());
            c.extend(pexpire);
        });
        let after_select = matches!(commands.last(), Some(c) if c[0] == "SELECT");
        answers.push((first, commands.len() - 2 - usize::from(after_select)));
    }
    commands.push(vec![word("EXEC")]);
    (commands, answers)
}

/// Runs `write` in database `other`, returning to `db` after.
fn in_db(
    commands: &mut Vec<Vec<Bytes>>,
    db: u32,
    other: u32,
    write: impl FnOnce(&mut Vec<Vec<Bytes>>),
) {
    if other != db {
        commands.push(select(other));
    }
    write(commands);
    if other != db {
        commands.push(select(db));
    }
}

/// A bulk string or nil; an error reply (WRONGTYPE…) ends the operation.
fn bulk_or_error(frame: Frame) -> Result<Option<Bytes>, ProxyError> {
    match frame {
        Frame::BlobString { data, .. } => Ok(Some(data)),
        Frame::Null => Ok(None),
        other => Err(error_or_shape(&other)),
    }
}

fn error_or_shape(frame: &Frame) -> ProxyError {
    match error_text(frame) {
        Some(err) => ProxyError::Redis(err),
        None => ProxyError::Unsupported(format!(
            "the upstream answered a read with {} where a value or nil belongs",
            crate::protocol::reply::kind_name(frame)
        )),
    }
}

fn key_snapshot(
    kind: Frame,
    ttl: Frame,
    get: Frame,
    hgetall: Frame,
) -> Result<KeySnapshot, ProxyError> {
    let kind = match &kind {
        Frame::SimpleString { data, .. } | Frame::BlobString { data, .. } => {
            KeyType::from_name(data)
        }
        other => return Err(error_or_shape(other)),
    };
    let ttl_ms = match ttl {
        Frame::Number { data, .. } if data >= 0 => Some(data),
        Frame::Number { .. } => None,
        other => return Err(error_or_shape(&other)),
    };
    let value = match kind {
        KeyType::String => match get {
            Frame::BlobString { data, .. } => KeyValue::String(data),
            other => return Err(error_or_shape(&other)),
        },
        KeyType::Hash => {
            let items: Vec<Frame> = match hgetall {
                Frame::Map { data, .. } => data.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                Frame::Array { data, .. } => data,
                other => return Err(error_or_shape(&other)),
            };
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut items = items.into_iter();
            while let (Some(field), Some(value)) = (items.next(), items.next()) {
                match (text_of(&field), text_of(&value)) {
                    (Some(f), Some(v)) => {
                        pairs.push((Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)))
                    }
                    _ => return Err(error_or_shape(&value)),
                }
            }
            KeyValue::Hash(pairs)
        }
        _ => KeyValue::None,
    };
    Ok(KeySnapshot {
        kind,
        ttl_ms,
        value,
    })
}
