//! The Pub/Sub hub: one shared upstream connection in Pub/Sub mode for every
//! subscribed client of a Redis backend, fanned out here.
//!
//! The hub reference-counts channels, patterns and shard channels across its
//! clients: the upstream is subscribed to each once and unsubscribed when the
//! last client leaves. Each `message`, `pmessage` and `smessage` goes to every
//! client subscribed to that channel, pattern or shard channel, in the order
//! the upstream sent them. When the connection is lost the hub reconnects with
//! backoff and subscribes again to everything still wanted; clients keep
//! their subscriptions and do nothing.
//!
//! A client's command takes effect at a point of the upstream's stream: the
//! hub writes whatever (un)subscribe it needs, then a PING, and applies the
//! command when the PONG arrives. So the client gets exactly the messages the
//! upstream sent after that point, and its confirmations come after every
//! message it got before, as from its own connection.
//!
//! PUBLISH through the proxy counts receivers as redis-server would if each
//! client had its own connection: the upstream counts this hub's connection
//! once per name it holds, so the backend subtracts that and adds the
//! clients the hub delivers to ([`PubSubHub::receivers`]). Another sidecar's
//! hub still counts as one receiver per name it holds.
//!
//! The hub task never waits for a client: each has an unbounded queue charged
//! in bytes ([`OutputBudget`]); one that falls too far behind is cut off, so
//! the upstream connection is always drained. Payloads stay sealed: the hub
//! routes by channel and never opens a message.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connect::{BoxStream, Handshake, encode_command};
use super::decode::{UpstreamDecoder, decode_reply};
use super::{Shared, backoff};
use crate::backend::pubsub::{
    Change, Counts, Delivery, Kind, Message, OutputBudget, Overflow, Push, SubscribeCommand,
    Subscriber, Subscriptions,
};
use crate::config::OutputBufferLimit;
use crate::error::ProxyError;
use crate::protocol::reply::{error_text, text_of};
use crate::protocol::{Frame, Protocol};
use crate::semantics::glob;

/// Names per upstream command when subscribing again after a reconnect.
const RESUBSCRIBE_BATCH: usize = 1024;
const READ_CHUNK: usize = 64 * 1024;

/// The backend's side of the hub: hands out [`RedisSubscriber`]s.
pub struct PubSubHub {
    ops: mpsc::UnboundedSender<Op>,
    next_id: AtomicU64,
    label: String,
    stats: Arc<Gauges>,
    census: Arc<RwLock<Census>>,
}

/// Who the upstream counts for a PUBLISH on this hub's behalf, and who the
/// hub delivers it to.
#[derive(Default)]
struct Census {
    /// Names the upstream connection holds (confirmed), by kind.
    held: [HashSet<Bytes>; 3],
    /// Clients receiving each name, by kind.
    receivers: [HashMap<Bytes, usize>; 3],
}

impl Census {
    /// PUBLISH's count with the hub's connection replaced by its clients: one
    /// per channel subscription and one per matching pattern, as Redis
    /// counts (SPUBLISH: shard channels only).
    fn receivers(&self, channel: &[u8], shard: bool, counted: i64) -> i64 {
        let (held, local) = if shard {
            self.exact(Kind::Shard, channel)
        } else {
            let (held, local) = self.exact(Kind::Channel, channel);
            let patterns = Kind::Pattern.index();
            let held_patterns = self.held[patterns]
                .iter()
                .filter(|p| glob::matches(p, channel))
                .count();
            let local_patterns: usize = self.receivers[patterns]
                .iter()
                .filter(|(p, _)| glob::matches(p, channel))
                .map(|(_, n)| n)
                .sum();
            (held + held_patterns, local + local_patterns)
        };
        replace(counted, held, local)
    }

    /// Whether the upstream connection holds `name` of `kind` (0 or 1), and
    /// how many clients receive it.
    fn exact(&self, kind: Kind, name: &[u8]) -> (usize, usize) {
        let held = self.held[kind.index()].contains(name);
        let local = self.receivers[kind.index()].get(name).copied();
        (usize::from(held), local.unwrap_or(0))
    }

    /// `id` receives `name` now; false if it already did.
    fn route(
        &mut self,
        routes: &mut HashMap<Bytes, HashSet<HandleId>>,
        kind: Kind,
        name: Bytes,
        id: HandleId,
    ) {
        if routes.entry(name.clone()).or_default().insert(id) {
            *self.receivers[kind.index()].entry(name).or_insert(0) += 1;
        }
    }

    /// `id` no longer receives `name`.
    fn unroute(
        &mut self,
        routes: &mut HashMap<Bytes, HashSet<HandleId>>,
        kind: Kind,
        name: &Bytes,
        id: HandleId,
    ) {
        let Some(ids) = routes.get_mut(name) else {
            return;
        };
        if !ids.remove(&id) {
            return;
        }
        if ids.is_empty() {
            routes.remove(name);
        }
        let receivers = &mut self.receivers[kind.index()];
        if let Some(n) = receivers.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                receivers.remove(name);
            }
        }
    }
}

/// What INFO shows of the hub.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PubSubStats {
    /// Whether its upstream connection is up.
    pub connected: bool,
    /// Clients with a handle (subscribed now or before).
    pub clients: usize,
    /// Distinct names the upstream is asked to hold.
    pub channels: usize,
    pub patterns: usize,
    pub shard_channels: usize,
}

/// [`PubSubStats`] as the hub task keeps them.
#[derive(Default)]
struct Gauges {
    connected: AtomicBool,
    clients: AtomicUsize,
    wanted: [AtomicUsize; 3],
}

impl PubSubHub {
    /// Starts the hub task. It connects when the first client subscribes.
    pub fn start(shared: Arc<Shared>) -> Arc<PubSubHub> {
        let (ops, rx) = mpsc::unbounded_channel();
        let label = shared.name.clone();
        let stats = Arc::new(Gauges::default());
        let census = Arc::new(RwLock::new(Census::default()));
        let hub = Hub {
            label: label.clone(),
            stats: stats.clone(),
            census: census.clone(),
            shared,
            clients: HashMap::new(),
            routes: Default::default(),
            wanted: Default::default(),
            link: None,
            parked: VecDeque::new(),
            retry_at: None,
            delays: Box::new(backoff()),
            was_connected: true,
        };
        tokio::spawn(hub.run(rx));
        Arc::new(PubSubHub {
            ops,
            next_id: AtomicU64::new(0),
            label,
            stats,
            census,
        })
    }

    /// What PUBLISH (SPUBLISH when `shard`) on `channel` answers when the
    /// upstream counted `counted` receivers: this hub's clients in place of
    /// its one connection.
    pub fn receivers(&self, channel: &[u8], shard: bool, counted: i64) -> i64 {
        let census = self.census.read().unwrap_or_else(PoisonError::into_inner);
        census.receivers(channel, shard, counted)
    }

    /// What PUBSUB NUMSUB (SHARDNUMSUB when `shard`) answers for `channel`
    /// when the upstream counted `counted`: patterns do not count there.
    pub fn subscribers(&self, channel: &[u8], shard: bool, counted: i64) -> i64 {
        let census = self.census.read().unwrap_or_else(PoisonError::into_inner);
        let kind = if shard { Kind::Shard } else { Kind::Channel };
        let (held, local) = census.exact(kind, channel);
        replace(counted, held, local)
    }

    pub fn stats(&self) -> PubSubStats {
        let g = &self.stats;
        let [channels, patterns, shard_channels] =
            g.wanted.each_ref().map(|n| n.load(Ordering::Relaxed));
        PubSubStats {
            connected: g.connected.load(Ordering::Relaxed),
            clients: g.clients.load(Ordering::Relaxed),
            channels,
            patterns,
            shard_channels,
        }
    }

    /// A handle for one client (`client` names it in logs). When the client
    /// falls further behind than `limit`, the hub drops it and cancels `cut_off`.
    pub fn subscriber(
        &self,
        client: u64,
        limit: OutputBufferLimit,
        cut_off: CancellationToken,
    ) -> RedisSubscriber {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, rx) = mpsc::unbounded_channel();
        // Ops are ordered: the join arrives before any command of this handle.
        let _ = self.ops.send(Op::Join {
            id,
            client,
            queue,
            budget: OutputBudget::new(limit, cut_off),
        });
        RedisSubscriber {
            id,
            ops: self.ops.clone(),
            queue: rx,
            seq: 0,
            counts: Counts::default(),
            label: self.label.clone(),
        }
    }
}

/// The hub's id for a handle.
type HandleId = u64;

enum Op {
    Join {
        id: HandleId,
        client: u64,
        queue: mpsc::UnboundedSender<Item>,
        budget: OutputBudget,
    },
    Command {
        id: HandleId,
        seq: u64,
        command: SubscribeCommand,
    },
    Leave {
        id: HandleId,
    },
}

/// What a handle's queue carries, in the order the client receives it.
enum Item {
    Message(Delivery),
    /// The replies of the handle's command `seq`, and its counts afterwards.
    Done {
        seq: u64,
        replies: Vec<Frame>,
        counts: Counts,
    },
}

/// One client's handle on the hub. Dropping it unsubscribes the client.
pub struct RedisSubscriber {
    id: HandleId,
    ops: mpsc::UnboundedSender<Op>,
    queue: mpsc::UnboundedReceiver<Item>,
    seq: u64,
    counts: Counts,
    label: String,
}

impl RedisSubscriber {
    fn gone(&self) -> Frame {
        ProxyError::UpstreamLost {
            upstream: self.label.clone(),
            reason: "the Pub/Sub hub has stopped".into(),
        }
        .to_frame()
    }
}

impl Subscriber for RedisSubscriber {
    fn command(&mut self, command: SubscribeCommand) -> BoxFuture<'_, Vec<Push>> {
        Box::pin(async move {
            self.seq += 1;
            let seq = self.seq;
            let op = Op::Command {
                id: self.id,
                seq,
                command,
            };
            if self.ops.send(op).is_err() {
                return vec![Push::Reply(self.gone())];
            }
            let mut pushes = Vec::new();
            loop {
                match self.queue.recv().await {
                    Some(Item::Message(delivery)) => pushes.push(Push::Message(delivery)),
                    Some(Item::Done {
                        seq: done,
                        replies,
                        counts,
                    }) if done == seq => {
                        self.counts = counts;
                        pushes.extend(replies.into_iter().map(Push::Reply));
                        return pushes;
                    }
                    // A command whose caller stopped waiting for it.
                    Some(Item::Done { .. }) => {}
                    None => {
                        pushes.push(Push::Reply(self.gone()));
                        return pushes;
                    }
                }
            }
        })
    }

    fn next_message(&mut self) -> BoxFuture<'_, Option<Delivery>> {
        Box::pin(async move {
            loop {
                match self.queue.recv().await? {
                    Item::Message(delivery) => return Some(delivery),
                    Item::Done { .. } => {}
                }
            }
        })
    }

    fn counts(&self) -> Counts {
        self.counts
    }
}

impl Drop for RedisSubscriber {
    fn drop(&mut self) {
        let _ = self.ops.send(Op::Leave { id: self.id });
    }
}

/// A client as the hub sees it.
struct Client {
    /// The session's client id, for logs.
    client: u64,
    queue: mpsc::UnboundedSender<Item>,
    budget: OutputBudget,
    /// Its subscriptions after every command the hub has taken from it.
    wanted: Subscriptions,
    /// What it receives now (commands in flight take effect at their PONG).
    receiving: [HashSet<Bytes>; 3],
}

/// A client command waiting for its PONG.
struct Pending {
    id: HandleId,
    seq: u64,
    kind: Kind,
    change: Change,
    replies: Vec<Frame>,
}

/// A reply the upstream owes the hub, in order.
enum Expect {
    /// One confirmation per name of an (un)subscribe the hub sent, or one error.
    Confirmations {
        kind: Kind,
        subscribe: bool,
        names: Vec<Bytes>,
        left: usize,
    },
    /// The PING written after a client's command.
    Sync(Pending),
}

/// The connection in Pub/Sub mode, and what the upstream said on it.
struct Link {
    rd: ReadHalf<BoxStream>,
    wr: WriteHalf<BoxStream>,
    protocol: Protocol,
    decoder: UpstreamDecoder,
    buf: BytesMut,
    out: BytesMut,
    expected: VecDeque<Expect>,
    /// Confirmed by the upstream on this connection.
    subscribed: [HashSet<Bytes>; 3],
    /// Subscriptions the upstream refused, with its error.
    refused: [HashMap<Bytes, String>; 3],
}

impl Link {
    fn new(stream: BoxStream, handshake: Handshake) -> Link {
        let (rd, wr) = tokio::io::split(stream);
        Link {
            rd,
            wr,
            protocol: handshake.protocol,
            decoder: UpstreamDecoder::with_limits(handshake.protocol, handshake.limits),
            buf: BytesMut::with_capacity(READ_CHUNK),
            out: BytesMut::new(),
            expected: VecDeque::new(),
            subscribed: Default::default(),
            refused: Default::default(),
        }
    }

    /// Queues an upstream (un)subscribe of `names`.
    fn send(&mut self, kind: Kind, subscribe: bool, names: Vec<Bytes>) {
        if names.is_empty() {
            return;
        }
        let mut args = Vec::with_capacity(names.len() + 1);
        args.push(Bytes::from_static(kind.word(subscribe).as_bytes()));
        args.extend(names.iter().cloned());
        encode_command(&mut self.out, &args);
        self.expected.push_back(Expect::Confirmations {
            kind,
            subscribe,
            left: names.len(),
            names,
        });
    }

    fn sync(&mut self, pending: Pending) {
        encode_command(&mut self.out, &[Bytes::from_static(b"PING")]);
        self.expected.push_back(Expect::Sync(pending));
    }
}

struct Hub {
    shared: Arc<Shared>,
    label: String,
    stats: Arc<Gauges>,
    /// Shared with [`PubSubHub`] for PUBLISH counts; kept in step with
    /// `routes` and the link's confirmed subscriptions.
    census: Arc<RwLock<Census>>,
    clients: HashMap<HandleId, Client>,
    /// Who receives each channel, pattern and shard channel now.
    routes: [HashMap<Bytes, HashSet<HandleId>>; 3],
    /// How many clients want each (the upstream is subscribed while > 0).
    wanted: [HashMap<Bytes, usize>; 3],
    link: Option<Link>,
    /// Subscribe commands waiting for a connection.
    parked: VecDeque<Op>,
    /// When to try connecting again after a failure.
    retry_at: Option<Instant>,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    /// Whether the last attempt worked (failures are logged once per outage).
    was_connected: bool,
}

impl Hub {
    async fn run(mut self, mut ops: mpsc::UnboundedReceiver<Op>) {
        loop {
            self.show_stats();
            if let Some(link) = self.link.as_mut() {
                if link.buf.capacity() - link.buf.len() < READ_CHUNK / 4 {
                    link.buf.reserve(READ_CHUNK);
                }
                tokio::select! {
                    op = ops.recv() => match op {
                        Some(op) => self.take(op),
                        None => return,
                    },
                    read = link.rd.read_buf(&mut link.buf) => match read {
                        Ok(0) => self.lost("the upstream closed the connection".into()),
                        Err(e) => self.lost(format!("read failed: {e}")),
                        Ok(_) => {
                            if let Err(reason) = self.drain() {
                                self.lost(reason);
                            }
                        }
                    },
                }
                self.flush().await;
                continue;
            }
            if !self.needs_link() {
                // Nothing to subscribe to: connect again when a client asks.
                self.retry_at = None;
                match ops.recv().await {
                    Some(op) => self.take(op),
                    None => return,
                }
                continue;
            }
            if let Some(at) = self.retry_at {
                tokio::select! {
                    op = ops.recv() => match op {
                        Some(op) => self.take(op),
                        None => return,
                    },
                    () = tokio::time::sleep_until(at) => self.retry_at = None,
                }
                continue;
            }
            let shared = self.shared.clone();
            let connect = async move { shared.connect().await };
            tokio::pin!(connect);
            let connected = loop {
                tokio::select! {
                    result = &mut connect => break result,
                    op = ops.recv() => match op {
                        Some(op) => self.take(op),
                        None => return,
                    },
                }
            };
            match connected {
                Ok((stream, handshake)) => {
                    self.up(Link::new(stream, handshake));
                    self.flush().await;
                }
                Err(reason) => self.unreachable(reason),
            }
        }
    }

    fn show_stats(&self) {
        let g = &self.stats;
        g.connected.store(self.link.is_some(), Ordering::Relaxed);
        g.clients.store(self.clients.len(), Ordering::Relaxed);
        for (gauge, wanted) in g.wanted.iter().zip(&self.wanted) {
            gauge.store(wanted.len(), Ordering::Relaxed);
        }
    }

    fn needs_link(&self) -> bool {
        !self.parked.is_empty() || self.wanted.iter().any(|w| !w.is_empty())
    }

    fn take(&mut self, op: Op) {
        match op {
            Op::Join {
                id,
                client,
                queue,
                budget,
            } => {
                self.clients.insert(
                    id,
                    Client {
                        client,
                        queue,
                        budget,
                        wanted: Subscriptions::default(),
                        receiving: Default::default(),
                    },
                );
            }
            Op::Leave { id } => self.leave(id),
            Op::Command { id, seq, command } => {
                if self.link.is_none() && command.subscribe {
                    // Only a connection can confirm a subscription.
                    self.parked.push_back(Op::Command { id, seq, command });
                } else {
                    self.command(id, seq, command);
                }
            }
        }
    }

    /// Takes a client's command: the upstream changes it needs now, the
    /// client's own replies when it takes effect.
    fn command(&mut self, id: HandleId, seq: u64, command: SubscribeCommand) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let kind = command.kind;
        let (replies, change) = client.wanted.apply(&command);
        let wanted = &mut self.wanted[kind.index()];
        let subscribe: Vec<Bytes> = change
            .added
            .iter()
            .filter(|name| want(wanted, name))
            .cloned()
            .collect();
        let unsubscribe: Vec<Bytes> = change
            .removed
            .iter()
            .filter(|name| unwant(wanted, name))
            .cloned()
            .collect();
        let pending = Pending {
            id,
            seq,
            kind,
            change,
            replies,
        };
        match self.link.as_mut() {
            Some(link) => {
                link.send(kind, true, subscribe);
                link.send(kind, false, unsubscribe);
                link.sync(pending);
            }
            // Leaving needs no upstream while there is none: the next
            // connection subscribes only to what is still wanted.
            None => self.settle(pending, None),
        }
    }

    /// A client's command takes effect (or fails, with `error` or because
    /// the upstream refused a subscription it needed).
    fn settle(&mut self, pending: Pending, error: Option<String>) {
        let Pending {
            id,
            seq,
            kind,
            change,
            replies,
        } = pending;
        let refusal = error.or_else(|| {
            let link = self.link.as_ref()?;
            let missing = change
                .added
                .iter()
                .find(|name| !link.subscribed[kind.index()].contains(*name))?;
            Some(
                link.refused[kind.index()]
                    .get(missing)
                    .cloned()
                    .unwrap_or_else(|| {
                        ProxyError::UpstreamLost {
                            upstream: self.label.clone(),
                            reason: "the upstream dropped the subscription".into(),
                        }
                        .to_string()
                    }),
            )
        });
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let replies = match refusal {
            Some(error) => {
                // Redis refuses such a command whole: nothing of it stays.
                let mut released = Vec::new();
                for name in &change.added {
                    client.wanted.forget(kind, name);
                    if unwant(&mut self.wanted[kind.index()], name) {
                        released.push(name.clone());
                    }
                }
                if let Some(link) = self.link.as_mut() {
                    let still_subscribed = released
                        .into_iter()
                        .filter(|name| {
                            link.refused[kind.index()].remove(name);
                            link.subscribed[kind.index()].contains(name)
                        })
                        .collect();
                    link.send(kind, false, still_subscribed);
                }
                vec![ProxyError::Redis(error).to_frame()]
            }
            None => {
                let routes = &mut self.routes[kind.index()];
                let mut census = self.census.write().unwrap_or_else(PoisonError::into_inner);
                for name in change.added {
                    census.route(routes, kind, name.clone(), id);
                    client.receiving[kind.index()].insert(name);
                }
                for name in change.removed {
                    census.unroute(routes, kind, &name, id);
                    client.receiving[kind.index()].remove(&name);
                }
                replies
            }
        };
        let _ = client.queue.send(Item::Done {
            seq,
            replies,
            counts: client.wanted.counts(),
        });
    }

    fn leave(&mut self, id: HandleId) {
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        for kind in Kind::ALL {
            let wanted = &mut self.wanted[kind.index()];
            let released: Vec<Bytes> = client
                .wanted
                .names(kind)
                .filter(|name| unwant(wanted, name))
                .cloned()
                .collect();
            if let Some(link) = self.link.as_mut() {
                link.send(kind, false, released);
            }
            let mut census = self.census.write().unwrap_or_else(PoisonError::into_inner);
            for name in &client.receiving[kind.index()] {
                census.unroute(&mut self.routes[kind.index()], kind, name, id);
            }
        }
    }

    /// Drops a client that fell too far behind, and has its session disconnect it.
    fn cut_off(&mut self, id: HandleId, why: Overflow) {
        if let Some(client) = self.clients.get(&id) {
            tracing::warn!(client.id = client.client, reason = %why, "disconnecting a Pub/Sub subscriber");
            client.budget.cut_off();
        }
        self.leave(id);
    }

    /// A new connection: subscribe to everything wanted, then take the
    /// commands that waited for it.
    fn up(&mut self, mut link: Link) {
        tracing::info!(upstream = %self.label, protocol = ?link.protocol, "Pub/Sub upstream connected");
        for kind in Kind::ALL {
            let names: Vec<Bytes> = self.wanted[kind.index()].keys().cloned().collect();
            for batch in names.chunks(RESUBSCRIBE_BATCH) {
                link.send(kind, true, batch.to_vec());
            }
        }
        self.link = Some(link);
        self.delays = Box::new(backoff());
        self.was_connected = true;
        for op in std::mem::take(&mut self.parked) {
            self.take(op);
        }
    }

    /// A connection attempt failed: the commands waiting for it fail, and
    /// the next attempt waits its backoff.
    fn unreachable(&mut self, reason: String) {
        if self.was_connected {
            tracing::warn!(upstream = %self.label, %reason, "cannot connect the Pub/Sub upstream connection; retrying with backoff");
            self.was_connected = false;
        }
        for op in std::mem::take(&mut self.parked) {
            let Op::Command { id, seq, .. } = op else {
                continue;
            };
            if let Some(client) = self.clients.get(&id) {
                let error = ProxyError::UpstreamUnavailable {
                    upstream: self.label.clone(),
                    reason: reason.clone(),
                };
                let _ = client.queue.send(Item::Done {
                    seq,
                    replies: vec![error.to_frame()],
                    counts: client.wanted.counts(),
                });
            }
        }
        self.schedule_retry();
    }

    fn schedule_retry(&mut self) {
        let delay = self.delays.next().unwrap_or(Duration::from_secs(5));
        self.retry_at = Some(Instant::now() + delay);
    }

    /// The connection is gone. Commands in flight take effect (what they
    /// subscribe is wanted, so the next connection subscribes to it).
    fn lost(&mut self, reason: String) {
        let Some(link) = self.link.take() else {
            return;
        };
        let mut census = self.census.write().unwrap_or_else(PoisonError::into_inner);
        census.held = Default::default();
        drop(census);
        for expect in link.expected {
            if let Expect::Sync(pending) = expect {
                self.settle(pending, None);
            }
        }
        if self.needs_link() {
            let [channels, patterns, shards] = self.wanted.each_ref().map(HashMap::len);
            tracing::warn!(upstream = %self.label, %reason, channels, patterns, shards, "Pub/Sub upstream connection lost; reconnecting and subscribing again");
        } else {
            tracing::debug!(upstream = %self.label, %reason, "idle Pub/Sub upstream connection closed");
        }
        self.schedule_retry();
    }

    async fn flush(&mut self) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if link.out.is_empty() {
            return;
        }
        let written = async {
            link.wr.write_all(&link.out).await?;
            link.wr.flush().await
        };
        let result = written.await;
        link.out.clear();
        if let Err(e) = result {
            self.lost(format!("write failed: {e}"));
        }
    }

    /// Handles every complete frame read so far.
    fn drain(&mut self) -> Result<(), String> {
        loop {
            let Some(link) = self.link.as_mut() else {
                return Ok(());
            };
            let Some((frame, raw)) = decode_reply(&mut link.decoder, &mut link.buf)? else {
                return Ok(());
            };
            let resp2 = link.protocol == Protocol::Resp2;
            let size = raw.as_ref().map_or_else(|| wire_size(&frame), Bytes::len);
            match frame {
                Frame::Push { data, .. } => self.on_push(data, size),
                // A RESP2 upstream sends pushes as arrays; only PING's reply is one too.
                Frame::Array { data, .. } if resp2 && !is_pong(&data) => self.on_push(data, size),
                reply => self.on_reply(reply)?,
            }
        }
    }

    fn on_push(&mut self, data: Vec<Frame>, size: usize) {
        let word = data.first().and_then(text_of);
        let kind = match word {
            Some(b"message") => Kind::Channel,
            Some(b"pmessage") => Kind::Pattern,
            Some(b"smessage") => Kind::Shard,
            Some(word) => {
                match Kind::from_word(word) {
                    Some((kind, subscribe)) => {
                        let name = data.get(1).and_then(text_of).map(Bytes::copy_from_slice);
                        self.on_confirmation(kind, subscribe, name);
                    }
                    None => tracing::debug!(upstream = %self.label, "ignored an unknown push"),
                }
                return;
            }
            None => return,
        };
        let Some(name) = data.get(1).and_then(text_of) else {
            return;
        };
        let Some(ids) = self.routes[kind.index()].get(name) else {
            return;
        };
        let message = Arc::new(Message::new(
            Frame::Push {
                data,
                attributes: None,
            },
            size,
        ));
        let mut overflowed = Vec::new();
        for id in ids {
            let Some(client) = self.clients.get_mut(id) else {
                continue;
            };
            match client.budget.charge(size) {
                Ok(credit) => {
                    let delivery = Delivery {
                        message: message.clone(),
                        credit,
                    };
                    let _ = client.queue.send(Item::Message(delivery));
                }
                Err(why) => overflowed.push((*id, why)),
            }
        }
        for (id, why) in overflowed {
            self.cut_off(id, why);
        }
    }

    fn on_confirmation(&mut self, kind: Kind, subscribe: bool, name: Option<Bytes>) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if let Some(name) = name {
            let mut census = self.census.write().unwrap_or_else(PoisonError::into_inner);
            if subscribe {
                link.refused[kind.index()].remove(&name);
                census.held[kind.index()].insert(name.clone());
                link.subscribed[kind.index()].insert(name);
            } else {
                census.held[kind.index()].remove(&name);
                link.subscribed[kind.index()].remove(&name);
            }
        }
        match link.expected.front_mut() {
            Some(Expect::Confirmations {
                kind: k,
                subscribe: s,
                left,
                ..
            }) if *k == kind && *s == subscribe => {
                *left -= 1;
                if *left == 0 {
                    link.expected.pop_front();
                }
            }
            // Not asked for (a cluster moving a shard channel away, say): the
            // state above is all there is to it.
            _ => tracing::debug!(upstream = %self.label, "unsolicited Pub/Sub confirmation"),
        }
    }

    /// A reply that is not a push: a PONG or an error, for the oldest command.
    fn on_reply(&mut self, frame: Frame) -> Result<(), String> {
        let error = error_text(&frame);
        let pong = match &frame {
            Frame::SimpleString { data, .. } => &data[..] == b"PONG",
            Frame::Array { data, .. } => is_pong(data),
            _ => false,
        };
        let link = self.link.as_mut().ok_or("no connection")?;
        match (link.expected.pop_front(), error) {
            (Some(Expect::Sync(pending)), error) if pong || error.is_some() => {
                self.settle(pending, error);
                Ok(())
            }
            (
                Some(Expect::Confirmations {
                    kind,
                    subscribe,
                    names,
                    ..
                }),
                Some(error),
            ) => {
                tracing::warn!(upstream = %self.label, error = %crate::logging::Untrusted(error.as_bytes()), command = kind.word(subscribe), "the upstream refused a Pub/Sub command");
                if subscribe {
                    for name in names {
                        link.refused[kind.index()].insert(name, error.clone());
                    }
                }
                Ok(())
            }
            _ => Err("the upstream sent a Pub/Sub reply nobody asked for".into()),
        }
    }
}

/// An upstream count with the `held` subscriptions of the hub's connection
/// replaced by the `local` clients they stand for.
fn replace(counted: i64, held: usize, local: usize) -> i64 {
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    (counted - count(held)).max(0).saturating_add(count(local))
}

/// One more client wants `name`: whether the upstream must subscribe to it.
fn want(wanted: &mut HashMap<Bytes, usize>, name: &Bytes) -> bool {
    let count = wanted.entry(name.clone()).or_insert(0);
    *count += 1;
    *count == 1
}

/// One client fewer wants `name`: whether the upstream must unsubscribe.
fn unwant(wanted: &mut HashMap<Bytes, usize>, name: &Bytes) -> bool {
    match wanted.get_mut(name) {
        Some(count) if *count > 1 => {
            *count -= 1;
            false
        }
        Some(_) => {
            wanted.remove(name);
            true
        }
        None => false,
    }
}

/// PING's reply on a RESP2 connection in Pub/Sub mode: `["pong", ""]`.
fn is_pong(data: &[Frame]) -> bool {
    data.first().and_then(text_of) == Some(b"pong")
}

/// About what a frame takes on the wire (for RESP2 upstreams, which give no raw bytes).
fn wire_size(frame: &Frame) -> usize {
    match frame {
        Frame::Push { data, .. } | Frame::Array { data, .. } => {
            16 + data.iter().map(wire_size).sum::<usize>()
        }
        other => 16 + text_of(other).map_or(0, <[u8]>::len),
    }
}
