//! MULTI / EXEC / DISCARD / WATCH / UNWATCH.
//!
//! sealcache queues a transaction itself and answers `+QUEUED` (or the
//! errors it can tell at queue time: arity, unknown commands, refusals). At
//! EXEC it takes a dedicated connection for that one step and sends MULTI,
//! the queue and EXEC together ([`ExecOp`], through the backend's
//! read-modify-write), so a client between MULTI and EXEC holds no upstream
//! connection and many open transactions cannot starve the others. An error
//! the upstream gives at queue time for its own state (OOM, READONLY,
//! NOPERM) therefore aborts EXEC with EXECABORT instead of answering the
//! queued command.
//!
//! - **An emulated command is queued** (`MULTI; INCR k; EXPIRE k 60; EXEC`).
//!   sealcache answers `+QUEUED` for it; at EXEC it reads and opens the keys
//!   the emulated commands use (WATCHed, through the backend's atomic
//!   read-modify-write), computes their results in queue order, following
//!   what earlier commands of the transaction write there (`SET k 5` then
//!   `INCR k`), and runs the queue with each emulated command replaced by its
//!   sealed write, answering EXEC's array as redis-server would. A key whose
//!   value an earlier queued command computes on the server (SUNIONSTORE into
//!   `k`, then APPEND `k`) cannot be followed: that emulated command is
//!   refused when it is queued.
//! - **The transaction follows the client's WATCH.** The WATCH holds a
//!   dedicated connection from WATCH to EXEC; at EXEC sealcache sends
//!   MULTI … EXEC on that connection, after its own WATCH and reads when an
//!   emulated command is queued. An abort there is the client's: EXEC
//!   answers nil and nothing is retried.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::dedicated::Dedicated;
use super::{Flow, Post, Route, Session, Slot, SlotReply, display_name};
use crate::backend::rmw::{self, Read, Rmw, Snapshot, Write};
use crate::backend::{Capability, ConnState, Encoding, Purpose, not_supported};
use crate::commands::{Command, Emulation, Follow, KeyFlags, Transaction};
use crate::error::ProxyError;
use crate::protocol::Frame;
use crate::protocol::reply::{self, NullStyle, error, text_of};
use crate::semantics::emulated::Step;
use crate::semantics::errors::WRONGTYPE;
use crate::semantics::transaction::{KeyState, Value, can_follow, follow};
use crate::values::{Binding, ValueCrypt};

const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

/// A client's open transaction (between MULTI and EXEC/DISCARD).
pub(super) struct Multi {
    /// A command was refused while queueing: EXEC must abort.
    pub failed: bool,
    /// About what the queue holds, in bytes (`limits.max_transaction_bytes`).
    pub queued_bytes: usize,
    /// Every command queued, in order: what sealcache runs when it runs EXEC.
    pub queued: Vec<Queued>,
    /// An emulated command is queued: sealcache runs EXEC.
    pub emulated: bool,
    /// The connection holding the client's WATCH (MULTI came after WATCH):
    /// sealcache queues the commands and runs EXEC on it.
    pub watcher: Option<Dedicated>,
    /// The backend of the transaction's keys, once a command names one.
    pub backend: Option<usize>,
}

impl Multi {
    fn new(watcher: Option<Dedicated>) -> Multi {
        Multi {
            failed: false,
            queued_bytes: 0,
            queued: Vec::new(),
            emulated: false,
            backend: watcher.as_ref().map(Dedicated::backend),
            watcher,
        }
    }
}

/// One queued command of a transaction.
pub(super) enum Queued {
    /// Run by the backend, as prepared for it (values sealed by `encoding`).
    Server {
        cmd: Command,
        encoding: Encoding,
        post: Post,
    },
    /// Computed by sealcache at EXEC.
    Emulated(Command, Emulation),
}

impl Session {
    /// Ends MULTI/WATCH pinning; the lease cleans up and returns the connection.
    pub(super) fn drop_pinned(&mut self) {
        self.pinned = None;
        self.multi = None;
    }

    /// The backend of the client's transaction or WATCH, if it has one.
    pub(super) fn transaction_backend(&self) -> Option<usize> {
        self.pinned
            .as_ref()
            .map(Dedicated::backend)
            .or_else(|| self.multi.as_ref().and_then(|m| m.backend))
    }

    pub(super) async fn transaction(&mut self, cmd: Command, command: Transaction) -> Flow {
        // Without a backend that has transactions, MULTI, EXEC, WATCH and
        // the rest are refused alike (a WATCH names its key's backend below).
        let ctx = &self.ctx;
        if !ctx
            .backends
            .iter()
            .any(|b| b.capabilities().has(Capability::Transactions))
        {
            let refused = not_supported(cmd.name(), ctx.default_backend().as_ref());
            return self.fail(refused).await;
        }
        match command {
            Transaction::Multi => {
                if self.multi.is_some() {
                    return self
                        .reply(reply::error("ERR MULTI calls can not be nested"))
                        .await;
                }
                // A WATCHed connection is set aside for EXEC; without one the
                // first queued command decides the backend.
                let watcher = self.pinned.take();
                self.multi = Some(Multi::new(watcher));
                self.reply(reply::ok()).await
            }
            Transaction::Exec | Transaction::Discard => {
                let exec = command == Transaction::Exec;
                let Some(multi) = self.multi.take() else {
                    let msg = format!("ERR {} without MULTI", cmd.name());
                    return self.reply(reply::error(msg)).await;
                };
                if multi.failed && exec {
                    // The client's WATCH is dropped with its lease (UNWATCH).
                    return self.reply(reply::error(EXECABORT)).await;
                }
                if exec && (!multi.queued.is_empty() || multi.watcher.is_some()) {
                    return self.exec_here(multi).await;
                }
                // An empty EXEC, or DISCARD: nothing reached a backend (a
                // WATCH goes with its lease, which UNWATCHes).
                let answer = if exec {
                    reply::array(Vec::new())
                } else {
                    reply::ok()
                };
                self.reply(answer).await
            }
            Transaction::Watch => {
                if self.multi.is_some() {
                    // Refused, not queued: redis-server's EXEC still runs the
                    // transaction.
                    return self
                        .reply(reply::error("ERR WATCH inside MULTI is not allowed"))
                        .await;
                }
                let backend = match self.backend_for(&cmd) {
                    Ok(backend) => backend,
                    Err(e) => return self.fail(e).await,
                };
                match self.pin_for_watch(backend).await {
                    Ok(true) => {}
                    Ok(false) => return Flow::Close,
                    Err(e) => return self.fail(e).await,
                }
                if let Some(lease) = self.pinned.as_mut() {
                    lease.set_state(ConnState::Watching);
                }
                self.forward(cmd, Encoding::Args, Post::None, NullStyle::Bulk, backend)
                    .await
            }
            Transaction::Unwatch => {
                if self.multi.is_some() {
                    // Queued like any command (it answers OK inside EXEC).
                    let Some(backend) = self.transaction_backend() else {
                        let default = self.ctx.default_backend_index();
                        return self
                            .forward(cmd, Encoding::Args, Post::None, NullStyle::Bulk, default)
                            .await;
                    };
                    return self
                        .forward(cmd, Encoding::Args, Post::None, NullStyle::Bulk, backend)
                        .await;
                }
                let Some(backend) = self.pinned.as_ref().map(Dedicated::backend) else {
                    return self.reply(reply::ok()).await;
                };
                let flow = self
                    .forward(cmd, Encoding::Args, Post::None, NullStyle::Bulk, backend)
                    .await;
                if let Some(lease) = self.pinned.as_mut() {
                    lease.set_state(ConnState::Clean);
                }
                self.pinned = None;
                flow
            }
        }
    }

    /// EXEC refused before it runs (wrong arity, not authenticated, in
    /// RESP2 Pub/Sub mode): redis-server discards the transaction (and the
    /// watch) and words the error as EXECABORT with `reason`, in or out of
    /// MULTI (`rejectCommand`). The leases dropped here send DISCARD or
    /// UNWATCH as they go.
    pub(super) async fn reject_exec(&mut self, reason: &str) -> Flow {
        self.drop_pinned();
        let error = format!("EXECABORT Transaction discarded because of: {reason}");
        self.reply(reply::error(error)).await
    }

    /// Takes a dedicated connection on `backend` for WATCH unless one is
    /// held (it stays until EXEC, DISCARD or UNWATCH). `Ok(false)`: the
    /// client has left or was cut off.
    pub(super) async fn pin_for_watch(&mut self, backend: usize) -> Result<bool, ProxyError> {
        if self.pinned.as_ref().is_some_and(|l| !l.is_alive()) {
            self.pinned = None;
        }
        if self.pinned.is_none() {
            // After EXEC the previous connection may come back or not: either
            // way the earlier replies must be in first.
            if !self.fence(Route::Fresh).await {
                return Ok(false);
            }
            let caps = self.ctx.backends[backend].capabilities();
            if !caps.has(Capability::Transactions) {
                return Err(not_supported("WATCH", self.ctx.backends[backend].as_ref()));
            }
            let lease = self.dedicated(backend, Purpose::Pinned).await?;
            self.route = Route::Pinned(lease.id());
            self.pinned = Some(lease);
        }
        Ok(true)
    }

    /// Counts a command into the transaction's queue, which sealcache holds
    /// until EXEC: within `limits.max_transaction_bytes`, or refused (and
    /// EXEC then aborts, as after any command refused while queueing).
    pub(super) fn charge_queue(&mut self, args: &[Bytes]) -> Result<(), ProxyError> {
        let limit = self.ctx.config.limits.max_transaction_bytes;
        let Some(multi) = self.multi.as_mut() else {
            return Ok(());
        };
        // Each argument as it travels in RESP: its bytes and its header.
        let size: usize = args.iter().map(|a| a.len() + 16).sum();
        if multi.queued_bytes.saturating_add(size) > limit {
            return Err(ProxyError::Unsupported(format!(
                "this transaction's queued commands would hold more than {limit} bytes (limits.max_transaction_bytes), which sealcache keeps until EXEC. Run it as several smaller transactions, or raise the limit"
            )));
        }
        multi.queued_bytes += size;
        Ok(())
    }

    /// A command inside MULTI: sealcache keeps it for EXEC. `None` when it
    /// did; outside MULTI the command comes back.
    pub(super) fn queue_here(
        &mut self,
        cmd: Command,
        encoding: Encoding,
        post: Post,
        backend: usize,
    ) -> Option<(Command, Encoding, Post)> {
        match self.multi.as_mut() {
            // EXEC will abort: nothing more needs keeping.
            Some(multi) if multi.failed => None,
            Some(multi) => {
                multi.backend.get_or_insert(backend);
                multi.queued.push(Queued::Server {
                    cmd,
                    encoding,
                    post,
                });
                None
            }
            _ => Some((cmd, encoding, post)),
        }
    }

    /// An emulated command inside MULTI: checked, kept for EXEC, `+QUEUED`.
    pub(super) async fn queue_emulated(
        &mut self,
        cmd: Command,
        emulation: Emulation,
        backend: usize,
    ) -> Flow {
        if !emulation.on_one_value() {
            let msg = format!(
                "{} is not available inside MULTI through sealcache: it re-seals or ranks values by reading them first, which sealcache does only outside a transaction; run it before MULTI or after EXEC",
                display_name(cmd.name())
            );
            return self.fail(ProxyError::Unsupported(msg)).await;
        }
        // EXEC runs the queue natively (Read::Command, Write::Native).
        let target = self.ctx.backends[backend].as_ref();
        if !target.capabilities().has(Capability::Transactions) {
            return self.fail(not_supported("MULTI", target)).await;
        }
        if let Err(e) = self.charge_queue(&cmd.args) {
            return self.fail(e).await;
        }
        let Some(multi) = self.multi.as_mut() else {
            unreachable!("queue_emulated runs inside MULTI");
        };
        let key = &cmd.args[1];
        if let Some(refusal) = unfollowable(&multi.queued, &cmd, key) {
            return self.fail(ProxyError::Unsupported(refusal)).await;
        }
        multi.backend.get_or_insert(backend);
        multi.emulated = true;
        multi.queued.push(Queued::Emulated(cmd, emulation));
        self.reply(reply::simple("QUEUED")).await
    }

    /// EXEC run by sealcache (see the module's documentation).
    async fn exec_here(&mut self, multi: Multi) -> Flow {
        // The earlier replies must be in before the transaction reads.
        if !self.fence(Route::Fresh).await {
            return Flow::Close;
        }
        let index = multi
            .backend
            .unwrap_or_else(|| self.ctx.default_backend_index());
        let backend = self.ctx.backends[index].clone();
        let deadline = Instant::now() + backend.command_timeout();
        let posts = multi
            .queued
            .iter()
            .map(|q| match q {
                Queued::Server { post, cmd, .. } => (post.clone(), cmd.null_style()),
                Queued::Emulated(cmd, _) => (Post::None, cmd.null_style()),
            })
            .collect();
        let mut op = match ExecOp::new(&multi.queued, &self.ctx.values, deadline) {
            Ok(op) => op,
            Err(e) => return self.reply(e.to_frame()).await,
        };
        let keys: Vec<(u32, Bytes)> = op.keys().map(|k| (self.db, k.clone())).collect();
        let frame = match multi.watcher {
            Some(mut watcher) => {
                // The client's WATCH is on this connection: an abort is its.
                let _held = self.ctx.gate.lock(index, &keys).await;
                let timeout = backend.command_timeout();
                let run = rmw::attempt_once(
                    &mut *watcher,
                    backend.name(),
                    timeout,
                    self.db,
                    &mut op,
                    true,
                );
                match run.await {
                    Ok(true) => reply::array(op.replies()),
                    Ok(false) => Frame::Null,
                    Err(e) => e.to_frame(),
                }
            }
            None => match self.hold(Purpose::Pinned, backend.acquire_timeout()).await {
                Err(e) => e.to_frame(),
                Ok(_hold) => {
                    let _held = self.ctx.gate.lock(index, &keys).await;
                    match backend.read_modify_write(self.db, &mut op).await {
                        Ok(()) => reply::array(op.replies()),
                        Err(e) => e.to_frame(),
                    }
                }
            },
        };
        self.push(Slot {
            reply: SlotReply::Ready(frame),
            proto: self.proto,
            nulls: NullStyle::ArrayAtTop,
            post: Post::Exec(posts),
        })
        .await;
        Flow::Continue
    }
}

/// Why an emulated command on `key` cannot be queued after the commands
/// already queued: one of them changes the key in a way sealcache cannot
/// follow from its arguments.
fn unfollowable(queued: &[Queued], cmd: &Command, key: &Bytes) -> Option<String> {
    queued.iter().find_map(|q| {
        let Queued::Server { cmd: earlier, .. } = q else {
            return None;
        };
        let follow = earlier.spec.extras.follow;
        let writes_key = follow == Follow::Everything
            || earlier
                .key_args()
                .iter()
                .any(|k| written(k.flags) && earlier.args[k.index] == *key);
        (writes_key && !can_follow(follow, &earlier.args)).then(|| {
            format!(
                "{} of '{}' inside MULTI comes after {}, which changes that key on the server in a way sealcache cannot follow: sealcache reads the key before the transaction runs. Run {} after EXEC, or in a transaction of its own",
                display_name(cmd.name()),
                String::from_utf8_lossy(key),
                display_name(earlier.name()),
                display_name(cmd.name()),
            )
        })
    })
}

/// Whether a key argument with these flags may be written (keys found by a
/// key procedure carry no flags: they may).
fn written(flags: KeyFlags) -> bool {
    !flags.contains(crate::commands::keys::flags::RO)
}

/// What an emulated command of the transaction computes on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    String(Bytes),
    Hash(Bytes, Bytes),
}

impl Target {
    fn key(&self) -> &Bytes {
        match self {
            Target::String(key) | Target::Hash(key, _) => key,
        }
    }
}

/// One queued command as EXEC runs it.
enum Entry {
    Server {
        /// As the backend gets it: values sealed, reads reworded.
        upstream: Vec<Bytes>,
        /// As the client sent it: what sealcache follows.
        plain: Vec<Bytes>,
        follow: Follow,
        /// The emulated commands' keys it may write.
        writes: Vec<Bytes>,
    },
    /// `step` is Redis's error for its arguments when they do not parse.
    Emulated {
        target: Target,
        step: Result<Step, ProxyError>,
    },
}

/// A transaction run by sealcache, as one read-modify-write: the emulated
/// commands' keys are read (their type, and the string or the fields they
/// use), the queue is followed in order, and the writes are the queue with
/// each emulated command replaced by its sealed write.
struct ExecOp {
    values: Arc<ValueCrypt>,
    entries: Vec<Entry>,
    reads: Vec<Read>,
    deadline: Instant,
    /// Per entry: its reply so far (an emulated command's), and which write
    /// answers it (a server command's).
    results: Vec<Frame>,
    answered_by: Vec<Option<usize>>,
}

fn word(w: &'static str) -> Bytes {
    Bytes::from_static(w.as_bytes())
}

impl ExecOp {
    fn new(
        queued: &[Queued],
        values: &Arc<ValueCrypt>,
        deadline: Instant,
    ) -> Result<ExecOp, ProxyError> {
        let mut entries = Vec::with_capacity(queued.len());
        let mut targets: Vec<Target> = Vec::new();
        for q in queued {
            entries.push(match q {
                Queued::Server { cmd, encoding, .. } => Entry::Server {
                    upstream: match encoding {
                        Encoding::Sealed { by, rule } => by.seal_args(*rule, &cmd.args)?,
                        Encoding::Args | Encoding::Raw(_) => cmd.args.clone(),
                    },
                    plain: cmd.args.clone(),
                    follow: cmd.spec.extras.follow,
                    writes: cmd
                        .key_args()
                        .iter()
                        .filter(|k| written(k.flags))
                        .map(|k| cmd.args[k.index].clone())
                        .collect(),
                },
                Queued::Emulated(cmd, emulation) => {
                    let (read, step) = match super::emulate::step_of(cmd, *emulation) {
                        Ok((read, step)) => (Some(read), Ok(step)),
                        Err(e) => (None, Err(e)),
                    };
                    let target = match read {
                        Some(Read::HashField { key, field }) => Target::Hash(key, field),
                        _ => Target::String(cmd.args[1].clone()),
                    };
                    if step.is_ok() && !targets.contains(&target) {
                        targets.push(target.clone());
                    }
                    Entry::Emulated { target, step }
                }
            });
        }
        // Per key: TYPE, then GET when a string command reads it and HGET per field.
        let mut reads = Vec::new();
        let mut keys: Vec<&Bytes> = Vec::new();
        for target in &targets {
            if !keys.contains(&target.key()) {
                keys.push(target.key());
            }
        }
        for key in keys {
            let read = |args: Vec<Bytes>| Read::Command {
                key: key.clone(),
                args,
            };
            reads.push(read(vec![word("TYPE"), key.clone()]));
            for target in targets.iter().filter(|t| t.key() == key) {
                reads.push(match target {
                    Target::String(_) => read(vec![word("GET"), key.clone()]),
                    Target::Hash(_, field) => read(vec![word("HGET"), key.clone(), field.clone()]),
                });
            }
        }
        let n = entries.len();
        Ok(ExecOp {
            values: values.clone(),
            entries,
            reads,
            deadline,
            results: vec![Frame::Null; n],
            answered_by: vec![None; n],
        })
    }

    /// The keys the emulated commands read.
    fn keys(&self) -> impl Iterator<Item = &Bytes> {
        self.reads.iter().map(Read::key)
    }

    /// EXEC's array, once committed.
    fn replies(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.results)
    }

    /// The keys' states from what the reads found.
    fn states(&self, snapshot: Vec<Snapshot>) -> HashMap<Bytes, KeyState> {
        let mut states = HashMap::new();
        let found = self.reads.iter().zip(snapshot);
        for (read, snapshot) in found {
            let Read::Command { key, args } = read else {
                continue;
            };
            let Snapshot::Reply(frame) = snapshot else {
                continue;
            };
            let text = text_of(&frame);
            match args[0].as_ref() {
                b"TYPE" => {
                    let state = match text.unwrap_or_default() {
                        b"none" => KeyState::Absent,
                        b"string" => KeyState::String(Ok(Vec::new())),
                        b"hash" => KeyState::Hash(HashMap::new()),
                        _ => KeyState::Other,
                    };
                    states.insert(key.clone(), state);
                }
                b"GET" => {
                    if let (Some(state @ KeyState::String(_)), Some(envelope)) =
                        (states.get_mut(key), text)
                    {
                        *state = match self.open(&Binding::String(key.clone()), envelope) {
                            Some(value) => KeyState::String(value),
                            None => KeyState::Absent,
                        };
                    }
                }
                _ => {
                    let field = args[2].clone();
                    if let Some(KeyState::Hash(fields)) = states.get_mut(key) {
                        let binding = Binding::Hash {
                            key: key.clone(),
                            field: field.clone(),
                        };
                        let value = text.and_then(|envelope| self.open(&binding, envelope));
                        fields.insert(field, value);
                    }
                }
            }
        }
        states
    }

    /// Opens a value read; `None` when it is to be taken as missing (it did
    /// not decrypt, and `on_decrypt_failure` says to carry on without it).
    fn open(&self, binding: &Binding, envelope: &[u8]) -> Option<Value> {
        match self.values.open(binding, envelope) {
            Ok(plain) => Some(Ok(plain)),
            Err(reason) => {
                match super::emulate::undecryptable(&self.values, binding.key(), reason) {
                    Ok(_) => None,
                    Err(e) => Some(Err(e.to_string())),
                }
            }
        }
    }
}

/// The wall clock in Unix milliseconds (SET … EXAT in the past deletes).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What an emulated command finds at its target: the current plaintext
/// (`None`: missing), or the error it answers (WRONGTYPE, undecryptable).
fn current(state: Option<&KeyState>, target: &Target) -> Result<Option<Vec<u8>>, String> {
    let value = |v: &Value| v.clone().map(Some);
    match (state, target) {
        (None | Some(KeyState::Absent), _) => Ok(None),
        (Some(KeyState::String(v)), Target::String(_)) => value(v),
        (Some(KeyState::Hash(fields)), Target::Hash(_, field)) => match fields.get(field) {
            Some(Some(v)) => value(v),
            _ => Ok(None),
        },
        _ => Err(WRONGTYPE.to_string()),
    }
}

impl Rmw for ExecOp {
    fn reads(&self) -> &[Read] {
        &self.reads
    }

    fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<Write>, ProxyError> {
        let mut states = self.states(snapshot);
        let now_ms = now_ms();
        let mut writes = Vec::with_capacity(self.entries.len());
        for (i, entry) in self.entries.iter().enumerate() {
            self.answered_by[i] = None;
            match entry {
                Entry::Server {
                    upstream,
                    plain,
                    follow: how,
                    writes: keys,
                } => {
                    for key in keys {
                        if let Some(state) = states.get_mut(key) {
                            follow(*how, plain, key, state, now_ms);
                        }
                    }
                    self.answered_by[i] = Some(writes.len());
                    writes.push(Write::Native(upstream.clone()));
                }
                Entry::Emulated { target, step } => {
                    let step = match step {
                        Ok(step) => step,
                        Err(e) => {
                            self.results[i] = e.to_frame();
                            continue;
                        }
                    };
                    let state = states.get(target.key());
                    let outcome = current(state, target)
                        .and_then(|now| step.apply(now.as_deref()).map_err(str::to_string));
                    let outcome = match outcome {
                        Ok(outcome) => outcome,
                        Err(msg) => {
                            self.results[i] = error(msg);
                            continue;
                        }
                    };
                    self.results[i] = outcome.reply;
                    let Some(value) = outcome.store else {
                        continue;
                    };
                    let (binding, write) = match target {
                        Target::String(key) => (Binding::String(key.clone()), None),
                        Target::Hash(key, field) => (
                            Binding::Hash {
                                key: key.clone(),
                                field: field.clone(),
                            },
                            Some(field),
                        ),
                    };
                    let sealed = self.values.seal(&binding, &value)?;
                    let key = target.key().clone();
                    match write {
                        None => {
                            states.insert(key.clone(), KeyState::String(Ok(value)));
                            writes.push(Write::SetString {
                                key,
                                value: sealed,
                                keep_ttl: true,
                            });
                        }
                        Some(field) => {
                            let state = states.entry(key.clone()).or_insert(KeyState::Absent);
                            if !matches!(state, KeyState::Hash(_)) {
                                *state = KeyState::Hash(HashMap::new());
                            }
                            if let KeyState::Hash(fields) = state {
                                fields.insert(field.clone(), Some(Ok(value)));
                            }
                            writes.push(Write::HashSet {
                                key,
                                field: field.clone(),
                                value: sealed,
                            });
                        }
                    }
                }
            }
        }
        Ok(writes)
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Each server command's reply goes in its place; errors are replies.
    fn committed(&mut self, replies: Vec<Frame>) -> Result<(), ProxyError> {
        for (result, at) in self.results.iter_mut().zip(&self.answered_by) {
            if let Some(reply) = at.and_then(|at| replies.get(at)) {
                *result = reply.clone();
            }
        }
        Ok(())
    }
}
