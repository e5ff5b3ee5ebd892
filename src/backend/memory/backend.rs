//! The memory store as a [`Backend`]: `type: memory` in the configuration.
//! Lanes are tasks that run each client's commands on the store in order;
//! a [`Connection`] is a task with redis-server's per-connection state (WATCH,
//! MULTI's queue, one blocking command); Pub/Sub is the store's in-process
//! hub; read-modify-write runs under the store's lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::txn::{EntryValue, KeyType as MemoryType, Txn};
use super::{MemoryConfig, MemoryStore, TaskConnection, WatchToken};
use crate::backend::capability::BackendKind;
use crate::backend::pubsub::{
    Counts, Delivery, Kind, Message, OutputBudget, Push, SubscribeCommand, Subscriber,
    Subscriptions,
};
use crate::backend::rmw::{self, KeySnapshot, KeyType, KeyValue, Read, Snapshot, Write};
use crate::backend::{Backend, Connection, InfoField, Lane, Purpose, Reply, Request, RequestKind};
use crate::commands::{Dispatch, Transaction};
use crate::config::OutputBufferLimit;
use crate::error::ProxyError;
use crate::protocol::Frame;
use crate::protocol::reply::{array, error, ok, simple};
use crate::semantics::errors;

/// Lanes per memory backend: the store runs one command at a time, so more
/// would only add tasks.
const LANES: usize = 1;
/// Connection ids start here, apart from the Redis backend's.
const FIRST_CONNECTION_ID: u64 = 1 << 48;

pub struct MemoryBackend {
    name: String,
    store: Arc<MemoryStore>,
    lanes: Vec<Lane>,
    next_connection: AtomicU64,
    command_timeout: Duration,
}

impl MemoryBackend {
    pub fn start(name: &str, config: MemoryConfig, command_timeout: Duration) -> Arc<Self> {
        let store = MemoryStore::new(config);
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run_lane(store.clone(), rx));
                tx
            })
            .collect();
        // moka evicts and expires on its own schedule too; keep it moving.
        let maintained = Arc::downgrade(&store);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(store) = maintained.upgrade() else {
                    return;
                };
                store.maintain().await;
            }
        });
        Arc::new(MemoryBackend {
            name: name.to_string(),
            store,
            lanes,
            next_connection: AtomicU64::new(FIRST_CONNECTION_ID),
            command_timeout,
        })
    }

    pub fn store(&self) -> &Arc<MemoryStore> {
        &self.store
    }
}

/// Runs a lane's requests on the store, in order.
async fn run_lane(store: Arc<MemoryStore>, mut requests: mpsc::UnboundedReceiver<Request>) {
    while let Some(mut request) = requests.recv().await {
        let frame = match request.kind {
            RequestKind::SelectProbe => select_probe(&store, &request.args),
            RequestKind::Normal => match request.sealed_args() {
                Ok(args) => store.execute(request.db, &args).await,
                Err(e) => {
                    request.fail(e);
                    continue;
                }
            },
        };
        request.answer(Ok(Reply::new(frame)));
    }
}

/// `SELECT n` checked against the store's databases.
fn select_probe(store: &MemoryStore, args: &[Bytes]) -> Frame {
    let db = args
        .get(1)
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|a| a.parse::<u32>().ok());
    match db {
        Some(db) if db < store.dbs() => ok(),
        _ => error(errors::DB_OUT_OF_RANGE),
    }
}

impl Backend for MemoryBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Memory
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn lane(&self, client_id: u64) -> Lane {
        self.lanes[(client_id % self.lanes.len() as u64) as usize].clone()
    }

    fn connection(
        &self,
        _purpose: Purpose,
        _deadline: Instant,
    ) -> BoxFuture<'_, Result<Box<dyn Connection>, ProxyError>> {
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let store = self.store.clone();
        let conn = TaskConnection::start(id, "memory", |rx| run_connection(store, rx));
        Box::pin(async move { Ok(Box::new(conn) as Box<dyn Connection>) })
    }

    fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    fn subscriber(
        &self,
        _client_id: u64,
        limit: OutputBufferLimit,
        overflow: CancellationToken,
    ) -> Result<Box<dyn Subscriber>, ProxyError> {
        Ok(Box::new(MemorySubscriber {
            inner: self.store.subscriber(),
            subscriptions: Subscriptions::default(),
            budget: OutputBudget::new(limit, overflow),
            backend: self.name.clone(),
        }))
    }

    fn read_modify_write<'a>(
        &'a self,
        db: u32,
        op: &'a mut dyn rmw::Rmw,
    ) -> BoxFuture<'a, Result<(), ProxyError>> {
        Box::pin(async move {
            let keys: Vec<Bytes> = op.reads().iter().map(|r| r.key().clone()).collect();
            // Under the store's lock nothing else runs: no conflict, no retry.
            self.store
                .update(db, &keys, |txn| {
                    let snapshot = op
                        .reads()
                        .iter()
                        .map(|read| snapshot(txn, db, read))
                        .collect::<Result<Vec<_>, _>>()?;
                    let replies = op
                        .decide(snapshot)?
                        .into_iter()
                        .map(|write| apply(txn, write))
                        .collect();
                    op.committed(replies)
                })
                .await
        })
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn info(&self) -> Vec<InfoField> {
        let stats = self.store.stats();
        vec![
            ("used_memory", stats.used_bytes.to_string()),
            ("max_memory", stats.max_memory.to_string()),
            ("keys", stats.keys.iter().sum::<u64>().to_string()),
            ("evictions", stats.evictions.to_string()),
            ("expirations", stats.expirations.to_string()),
            ("blocked_clients", stats.blocked_clients.to_string()),
        ]
    }
}

fn wrong_type() -> ProxyError {
    ProxyError::Redis(errors::WRONGTYPE.to_string())
}

/// Reads one [`Read`] under the lock.
fn snapshot(txn: &mut Txn<'_, '_>, db: u32, read: &Read) -> Result<Snapshot, ProxyError> {
    Ok(match read {
        Read::String(key) => Snapshot::String(txn.get_string(key).map_err(|_| wrong_type())?),
        Read::HashField { key, field } => {
            Snapshot::HashField(txn.hash_get(key, field).map_err(|_| wrong_type())?)
        }
        Read::Key(key) => {
            let now = txn.now_ms();
            Snapshot::Key(match txn.get(key) {
                None => KeySnapshot {
                    kind: KeyType::None,
                    ttl_ms: None,
                    value: KeyValue::None,
                },
                Some(entry) => KeySnapshot {
                    kind: match entry.value.key_type() {
                        MemoryType::String => KeyType::String,
                        MemoryType::Hash => KeyType::Hash,
                        MemoryType::List => KeyType::List,
                        MemoryType::Set => KeyType::Set,
                        MemoryType::ZSet => KeyType::ZSet,
                        MemoryType::Stream => KeyType::Stream,
                    },
                    ttl_ms: entry.expire_at.map(|at| (at - now).max(0)),
                    value: match entry.value {
                        EntryValue::String(v) => KeyValue::String(v),
                        EntryValue::Hash(pairs) => KeyValue::Hash(pairs),
                        _ => KeyValue::None,
                    },
                },
            })
        }
        Read::Command { args, .. } => Snapshot::Reply(txn.execute(args)),
        Read::Exists { key, db: other } => {
            let previous = txn
                .switch_db(*other)
                .ok_or_else(|| ProxyError::Redis(errors::DB_OUT_OF_RANGE.to_string()))?;
            let exists = txn.key_type(key).is_some();
            txn.switch_db(previous);
            let _ = db;
            Snapshot::Exists(exists)
        }
    })
}

/// Applies one [`Write`] under the lock; its reply (a native command's own).
fn apply(txn: &mut Txn<'_, '_>, write: Write) -> Frame {
    match write {
        Write::SetString {
            key,
            value,
            keep_ttl,
        } => txn.set_string(&key, value, keep_ttl),
        Write::HashSet { key, field, value } => {
            // The read that preceded it already answered WRONGTYPE for other types.
            let _ = txn.hash_set(&key, field, value);
        }
        Write::HashDelete { key, field } => {
            return txn.execute(&[Bytes::from_static(b"HDEL"), key, field]);
        }
        Write::Delete { key, db: other } => {
            // Every write's database was read first (Read::Exists), which
            // refused one out of range.
            let Some(previous) = txn.switch_db(other) else {
                return error(errors::DB_OUT_OF_RANGE);
            };
            txn.delete(&key);
            txn.switch_db(previous);
        }
        Write::PutKey {
            key,
            db: other,
            value,
            ttl_ms,
        } => {
            let Some(previous) = txn.switch_db(other) else {
                return error(errors::DB_OUT_OF_RANGE);
            };
            txn.delete(&key);
            let now = txn.now_ms();
            let value = match value {
                KeyValue::None => None,
                KeyValue::String(v) => Some(EntryValue::String(v)),
                KeyValue::Hash(pairs) => Some(EntryValue::Hash(pairs)),
            };
            if let Some(value) = value {
                txn.put(
                    &key,
                    super::txn::Entry {
                        value,
                        expire_at: ttl_ms.filter(|ms| *ms > 0).map(|ms| now + ms),
                    },
                );
            }
            txn.switch_db(previous);
        }
        Write::Native(args) => return txn.execute(&args),
    }
    ok()
}

/// What a connection remembers between commands.
#[derive(Default)]
struct ConnectionState {
    watched: Vec<WatchToken>,
    /// MULTI's queue (`None` outside MULTI) and whether a command was refused.
    queue: Option<Vec<Vec<Bytes>>>,
}

/// A client's own connection: its commands in order with redis-server's
/// connection state (WATCHed keys, MULTI's queue) and one blocking command at
/// a time.
async fn run_connection(store: Arc<MemoryStore>, mut requests: mpsc::UnboundedReceiver<Request>) {
    let mut state = ConnectionState::default();
    while let Some(mut request) = requests.recv().await {
        let args = match request.sealed_args() {
            Ok(args) => args,
            Err(e) => {
                request.fail(e);
                continue;
            }
        };
        let db = request.db;
        let frame = match request.spec.map(|s| s.dispatch) {
            Some(Dispatch::Transaction(t)) => transaction(&store, &mut state, db, t, &args).await,
            _ if state.queue.is_some() => {
                state.queue.as_mut().expect("checked").push(args);
                simple("QUEUED")
            }
            Some(Dispatch::Blocking | Dispatch::BlockingWithOption) => {
                store.execute_blocking(db, &args).await
            }
            _ => store.execute(db, &args).await,
        };
        request.answer(Ok(Reply::new(frame)));
    }
}

/// MULTI, EXEC, DISCARD, WATCH and UNWATCH as redis-server answers them.
async fn transaction(
    store: &Arc<MemoryStore>,
    state: &mut ConnectionState,
    db: u32,
    command: Transaction,
    args: &[Bytes],
) -> Frame {
    match command {
        Transaction::Multi if state.queue.is_some() => error("ERR MULTI calls can not be nested"),
        Transaction::Multi => {
            state.queue = Some(Vec::new());
            ok()
        }
        Transaction::Watch if state.queue.is_some() => {
            error("ERR WATCH inside MULTI is not allowed")
        }
        Transaction::Watch => {
            for key in &args[1..] {
                state.watched.push(store.watch(db, key));
            }
            ok()
        }
        Transaction::Unwatch => {
            state.watched.clear();
            ok()
        }
        Transaction::Discard => match state.queue.take() {
            Some(_) => {
                state.watched.clear();
                ok()
            }
            None => error("ERR DISCARD without MULTI"),
        },
        Transaction::Exec => match state.queue.take() {
            Some(queued) => {
                let watched = std::mem::take(&mut state.watched);
                match store.exec(db, queued, &watched).await {
                    Some(replies) => array(replies),
                    None => Frame::Null,
                }
            }
            None => error("ERR EXEC without MULTI"),
        },
    }
}

/// One client's Pub/Sub handle on the store's in-process hub. Confirmations
/// come from the backend-neutral [`Subscriptions`]; the store delivers the
/// messages.
struct MemorySubscriber {
    inner: super::pubsub::Subscriber,
    subscriptions: Subscriptions,
    budget: OutputBudget,
    backend: String,
}

impl MemorySubscriber {
    fn deliver(&mut self, frame: Frame) -> Option<Delivery> {
        let size = Reply::new(frame.clone()).wire_size();
        match self.budget.charge(size) {
            Ok(credit) => Some(Delivery {
                message: Arc::new(Message::new(frame, size)),
                credit,
            }),
            Err(overflow) => {
                tracing::warn!(backend = %self.backend, reason = %overflow, "disconnecting a Pub/Sub subscriber");
                self.budget.cut_off();
                None
            }
        }
    }
}

impl Subscriber for MemorySubscriber {
    fn command(&mut self, command: SubscribeCommand) -> BoxFuture<'_, Vec<Push>> {
        Box::pin(async move {
            if command.kind == Kind::Shard {
                let refusal = ProxyError::NotSupported {
                    command: command.kind.word(command.subscribe).to_ascii_uppercase(),
                    kind: BackendKind::Memory.as_str(),
                    backend: self.backend.clone(),
                };
                return vec![Push::Reply(refusal.to_frame())];
            }
            // Messages delivered before the command come first.
            let mut out = Vec::new();
            while let Some(frame) = self.inner.try_recv() {
                if let Some(delivery) = self.deliver(frame) {
                    out.push(Push::Message(delivery));
                }
            }
            let (replies, change) = self.subscriptions.apply(&command);
            match (command.kind, command.subscribe) {
                (Kind::Channel, true) => drop(self.inner.subscribe(&change.added)),
                (Kind::Channel, false) => drop(self.inner.unsubscribe(&change.removed)),
                (Kind::Pattern, true) => drop(self.inner.psubscribe(&change.added)),
                (Kind::Pattern, false) => drop(self.inner.punsubscribe(&change.removed)),
                (Kind::Shard, _) => {}
            }
            out.extend(replies.into_iter().map(Push::Reply));
            out
        })
    }

    fn next_message(&mut self) -> BoxFuture<'_, Option<Delivery>> {
        Box::pin(async move {
            let frame = self.inner.recv().await?;
            // A message the budget refuses ends the subscriber.
            self.deliver(frame)
        })
    }

    fn counts(&self) -> Counts {
        self.subscriptions.counts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ConnState;

    /// COPY … DB n's read of the destination.
    struct ExistsIn {
        reads: Vec<Read>,
        found: Option<Vec<Snapshot>>,
    }

    impl rmw::Rmw for ExistsIn {
        fn reads(&self) -> &[Read] {
            &self.reads
        }

        fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<rmw::Write>, ProxyError> {
            self.found = Some(snapshot);
            Ok(Vec::new())
        }

        fn deadline(&self) -> Instant {
            Instant::now() + Duration::from_secs(5)
        }
    }

    fn request(line: &str) -> (Request, crate::backend::ReplyRx) {
        let args = line
            .split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()));
        Request::new(args.collect(), 0)
    }

    /// The session lets go of a transaction's connection as soon as it has
    /// sent EXEC: the commands already sent still run and answer.
    #[tokio::test]
    async fn a_connection_dropped_after_exec_still_answers_it() {
        let backend = MemoryBackend::start("m", MemoryConfig::default(), Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut conn = backend.connection(Purpose::Pinned, deadline).await.unwrap();
        let mut replies = Vec::new();
        for line in ["MULTI", "SET k v", "EXEC"] {
            let (request, rx) = request(line);
            conn.send(request).unwrap();
            replies.push(rx);
        }
        conn.set_state(ConnState::InMulti);
        drop(conn);
        let exec = replies.pop().unwrap().await.unwrap().unwrap();
        assert_eq!(exec.frame, array(vec![ok()]));
        assert_eq!(
            backend
                .store()
                .execute(0, &[Bytes::from("GET"), Bytes::from("k")])
                .await,
            crate::protocol::reply::bulk("v")
        );
    }

    /// A blocking command in flight is abandoned with its connection.
    #[tokio::test]
    async fn a_dropped_blocked_connection_pops_nothing() {
        let backend = MemoryBackend::start("m", MemoryConfig::default(), Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut conn = backend
            .connection(Purpose::Blocking, deadline)
            .await
            .unwrap();
        let (request, rx) = request("BLPOP q 0");
        conn.send(request).unwrap();
        conn.set_state(ConnState::Blocked);
        while backend.store().stats().blocked_clients == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(conn);
        assert!(rx.await.is_err(), "no reply for a client that left");
        let push = [Bytes::from("RPUSH"), Bytes::from("q"), Bytes::from("a")];
        backend.store().execute(0, &push).await;
        let len = [Bytes::from("LLEN"), Bytes::from("q")];
        assert_eq!(
            backend.store().execute(0, &len).await,
            crate::protocol::reply::int(1)
        );
    }

    /// A database the store does not have is Redis's out-of-range error,
    /// never another database (it was once clamped to the last one).
    #[tokio::test]
    async fn a_database_out_of_range_is_an_error() {
        let backend = MemoryBackend::start("m", MemoryConfig::default(), Duration::from_secs(5));
        let read = |db| ExistsIn {
            reads: vec![Read::Exists {
                key: Bytes::from_static(b"k"),
                db,
            }],
            found: None,
        };
        let mut in_range = read(15);
        backend.read_modify_write(0, &mut in_range).await.unwrap();
        assert_eq!(in_range.found, Some(vec![Snapshot::Exists(false)]));
        let mut out_of_range = read(16);
        let err = backend
            .read_modify_write(0, &mut out_of_range)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), errors::DB_OUT_OF_RANGE);
        assert!(out_of_range.found.is_none());
    }
}
