//! Pub/Sub behind any backend: the per-client [`Subscriber`] handle a
//! backend's hub hands out, the confirmations redis-server sends one client
//! for its (un)subscribe commands ([`Subscriptions`], a pure state machine),
//! and the byte budget of the queue between a hub and one client
//! ([`OutputBudget`]). Messages stay sealed here: a hub routes envelopes, the
//! session opens them.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use indexmap::IndexSet;
use tokio_util::sync::CancellationToken;

use crate::config::OutputBufferLimit;
use crate::protocol::Frame;
use crate::protocol::reply::{bulk, int, null};

/// What a subscription names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Channel, Kind::Pattern, Kind::Shard];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The command that subscribes (`subscribe`) or unsubscribes, as Redis
    /// names it in confirmations.
    pub fn word(self, subscribe: bool) -> &'static str {
        match (self, subscribe) {
            (Kind::Channel, true) => "subscribe",
            (Kind::Channel, false) => "unsubscribe",
            (Kind::Pattern, true) => "psubscribe",
            (Kind::Pattern, false) => "punsubscribe",
            (Kind::Shard, true) => "ssubscribe",
            (Kind::Shard, false) => "sunsubscribe",
        }
    }

    /// The inverse of [`Kind::word`].
    pub fn from_word(word: &[u8]) -> Option<(Kind, bool)> {
        Kind::ALL
            .into_iter()
            .flat_map(|kind| [(kind, true), (kind, false)])
            .find(|(kind, subscribe)| kind.word(*subscribe).as_bytes() == word)
    }
}

/// One SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE or SUNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeCommand {
    pub kind: Kind,
    pub subscribe: bool,
    /// Empty for an unsubscribe from everything of its kind.
    pub names: Vec<Bytes>,
}

impl SubscribeCommand {
    /// From the table's row and the command's arguments after the name.
    pub fn of(subscription: crate::commands::Subscription, names: &[Bytes]) -> SubscribeCommand {
        use crate::commands::Subscription as S;
        let (kind, subscribe) = match subscription {
            S::Subscribe => (Kind::Channel, true),
            S::Unsubscribe => (Kind::Channel, false),
            S::PSubscribe => (Kind::Pattern, true),
            S::PUnsubscribe => (Kind::Pattern, false),
            S::SSubscribe => (Kind::Shard, true),
            S::SUnsubscribe => (Kind::Shard, false),
        };
        SubscribeCommand {
            kind,
            subscribe,
            names: names.to_vec(),
        }
    }

    /// From a command's upper-case name and its arguments after the name.
    pub fn parse(name: &str, names: &[Bytes]) -> Option<SubscribeCommand> {
        let (kind, subscribe) = Kind::from_word(name.to_ascii_lowercase().as_bytes())?;
        Some(SubscribeCommand {
            kind,
            subscribe,
            names: names.to_vec(),
        })
    }
}

/// How many channels, patterns and shard channels a client is subscribed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub channels: usize,
    pub patterns: usize,
    pub shards: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.channels + self.patterns + self.shards
    }
}

/// The names one command added to or removed from a client's subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub added: Vec<Bytes>,
    pub removed: Vec<Bytes>,
}

/// One client's subscriptions, kept as redis-server 7.0 keeps them: sets in
/// subscription order (patterns are a list in Redis 7.0 and leave in that
/// order; channels are a hash table there, so their order is arbitrary).
#[derive(Debug, Clone, Default)]
pub struct Subscriptions {
    sets: [IndexSet<Bytes>; 3],
}

impl Subscriptions {
    /// Runs `command` against these subscriptions: the confirmations
    /// redis-server sends the client, in order, and what changed.
    pub fn apply(&mut self, command: &SubscribeCommand) -> (Vec<Frame>, Change) {
        let kind = command.kind;
        let word = kind.word(command.subscribe);
        let mut frames = Vec::with_capacity(command.names.len().max(1));
        let mut change = Change::default();
        if command.subscribe {
            for name in &command.names {
                if self.sets[kind.index()].insert(name.clone()) {
                    change.added.push(name.clone());
                }
                frames.push(confirmation(word, Some(name), self.count_for(kind)));
            }
        } else if command.names.is_empty() {
            // Everything of this kind, one confirmation each; a null when there is nothing.
            let names = std::mem::take(&mut self.sets[kind.index()]);
            let mut left = self.count_for(kind) + names.len();
            for name in &names {
                left -= 1;
                frames.push(confirmation(word, Some(name), left));
            }
            if names.is_empty() {
                frames.push(confirmation(word, None, left));
            }
            change.removed = names.into_iter().collect();
        } else {
            for name in &command.names {
                if self.sets[kind.index()].shift_remove(name) {
                    change.removed.push(name.clone());
                }
                frames.push(confirmation(word, Some(name), self.count_for(kind)));
            }
        }
        (frames, change)
    }

    pub fn counts(&self) -> Counts {
        Counts {
            channels: self.sets[Kind::Channel.index()].len(),
            patterns: self.sets[Kind::Pattern.index()].len(),
            shards: self.sets[Kind::Shard.index()].len(),
        }
    }

    pub fn contains(&self, kind: Kind, name: &[u8]) -> bool {
        self.sets[kind.index()].contains(name)
    }

    pub fn names(&self, kind: Kind) -> impl Iterator<Item = &Bytes> {
        self.sets[kind.index()].iter()
    }

    /// Drops `name` without a confirmation (a refused subscription).
    pub fn forget(&mut self, kind: Kind, name: &[u8]) {
        self.sets[kind.index()].shift_remove(name);
    }

    /// The count a confirmation carries: shard channels alone, or channels
    /// and patterns together (as Redis counts them).
    fn count_for(&self, kind: Kind) -> usize {
        let c = self.counts();
        match kind {
            Kind::Shard => c.shards,
            Kind::Channel | Kind::Pattern => c.channels + c.patterns,
        }
    }
}

/// `[subscribe, name, count]`: a push in RESP3, an array in RESP2 (the encoder renders either).
fn confirmation(word: &'static str, name: Option<&Bytes>, count: usize) -> Frame {
    Frame::Push {
        data: vec![
            bulk(word),
            name.cloned().map_or_else(null, bulk),
            int(i64::try_from(count).unwrap_or(i64::MAX)),
        ],
        attributes: None,
    }
}

/// A `message`, `pmessage` or `smessage` push as the backend received it,
/// shared by every subscriber it goes to.
pub struct Message {
    frame: Frame,
    size: usize,
    delivered: OnceLock<Option<Frame>>,
}

impl Message {
    /// `size` is what the message costs in a subscriber's queue (its wire size).
    pub fn new(frame: Frame, size: usize) -> Message {
        Message {
            frame,
            size,
            delivered: OnceLock::new(),
        }
    }

    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The form subscribers get, made once by the first of them to ask and
    /// shared by the rest; `None` when the message is not delivered. (The
    /// session opens sealed payloads here: one decryption per message, not
    /// one per subscriber.)
    pub fn delivered_with(&self, prepare: impl FnOnce(&Frame) -> Option<Frame>) -> Option<&Frame> {
        self.delivered.get_or_init(|| prepare(&self.frame)).as_ref()
    }
}

impl fmt::Debug for Message {
    /// Payloads are sealed, but channel names are the application's business.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A message on its way to one subscriber, holding its bytes in that
/// subscriber's budget until dropped (once written to the client).
#[derive(Debug)]
pub struct Delivery {
    pub message: Arc<Message>,
    pub credit: Credit,
}

/// Bytes charged to one subscriber's queue, given back on drop.
pub struct Credit {
    queued: Arc<AtomicUsize>,
    bytes: usize,
}

impl Drop for Credit {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl fmt::Debug for Credit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credit({} bytes)", self.bytes)
    }
}

/// What one (un)subscribe command brings the client, in order.
#[derive(Debug)]
pub enum Push {
    /// A message the backend delivered before the command took effect.
    Message(Delivery),
    /// A reply of the command itself: a confirmation, or an error.
    Reply(Frame),
}

/// A client's Pub/Sub handle on a backend. A backend's hub keeps the
/// subscriptions of all its clients and fans messages out to them; this
/// handle is one client's view, with redis-server's replies for that client.
///
/// Dropping it unsubscribes the client from everything.
pub trait Subscriber: Send {
    /// Runs one (un)subscribe command. Returns, in order, the messages the
    /// backend delivered to this client before the command took effect, then
    /// the replies redis-server sends this client for it: one confirmation per
    /// name with the client's own counts, `[unsubscribe, nil, n]` for an
    /// unsubscribe from nothing, or an error.
    fn command(&mut self, command: SubscribeCommand) -> BoxFuture<'_, Vec<Push>>;

    /// This client's next message; `None` once the backend has cut the client
    /// off or is gone for good. Cancel-safe: dropping the future loses nothing.
    fn next_message(&mut self) -> BoxFuture<'_, Option<Delivery>>;

    /// The client's subscription counts after its last command.
    fn counts(&self) -> Counts;
}

/// Why a subscriber was cut off.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Overflow {
    #[error(
        "{queued} bytes of undelivered Pub/Sub messages passed limits.pubsub_output_buffer.hard_bytes ({limit}); the client does not read fast enough"
    )]
    Hard { queued: usize, limit: usize },
    #[error(
        "undelivered Pub/Sub messages stayed above limits.pubsub_output_buffer.soft_bytes ({limit}) for more than {secs}s; the client does not read fast enough"
    )]
    Soft { limit: usize, secs: u64 },
}

/// A hub's account of what one subscriber has not yet written to its client,
/// judged as redis-server judges a client's output buffer.
pub struct OutputBudget {
    limit: OutputBufferLimit,
    queued: Arc<AtomicUsize>,
    soft_since: Option<Instant>,
    cut_off: CancellationToken,
}

impl OutputBudget {
    /// `cut_off` is cancelled when the subscriber overflows: its owner then
    /// disconnects the client.
    pub fn new(limit: OutputBufferLimit, cut_off: CancellationToken) -> OutputBudget {
        OutputBudget {
            limit,
            queued: Arc::new(AtomicUsize::new(0)),
            soft_since: None,
            cut_off,
        }
    }

    /// Charges a message of `size` bytes about to be queued: the credit to
    /// queue with it, or why the subscriber must be cut off instead.
    pub fn charge(&mut self, size: usize) -> Result<Credit, Overflow> {
        let queued = self.queued.load(Ordering::Acquire) + size;
        let OutputBufferLimit {
            hard_bytes,
            soft_bytes,
            soft_time,
        } = self.limit;
        if hard_bytes > 0 && queued > hard_bytes {
            return Err(Overflow::Hard {
                queued,
                limit: hard_bytes,
            });
        }
        if soft_bytes > 0 && queued > soft_bytes {
            // As Redis: the first time over only starts the clock.
            match self.soft_since {
                None => self.soft_since = Some(Instant::now()),
                Some(since) if since.elapsed() > soft_time => {
                    return Err(Overflow::Soft {
                        limit: soft_bytes,
                        secs: soft_time.as_secs(),
                    });
                }
                Some(_) => {}
            }
        } else {
            self.soft_since = None;
        }
        self.queued.fetch_add(size, Ordering::AcqRel);
        Ok(Credit {
            queued: self.queued.clone(),
            bytes: size,
        })
    }

    /// Tells the subscriber's owner to disconnect the client.
    pub fn cut_off(&self) {
        self.cut_off.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    use crate::protocol::Protocol;
    use crate::protocol::reply::{NullStyle, encode};

    fn run(subs: &mut Subscriptions, name: &str, args: &[&str], proto: Protocol) -> String {
        let names: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.to_string())).collect();
        let command = SubscribeCommand::parse(name, &names).expect("a subscribe command");
        let (frames, _) = subs.apply(&command);
        let mut out = BytesMut::new();
        for frame in &frames {
            encode(&mut out, frame, None, proto, NullStyle::Bulk);
        }
        String::from_utf8(out.to_vec()).unwrap()
    }

    /// The bytes below are redis-server 7.0.15's for the same commands on one connection.
    #[test]
    fn confirmations_are_redis_servers_in_resp2() {
        let mut s = Subscriptions::default();
        let p = Protocol::Resp2;
        assert_eq!(
            run(&mut s, "SUBSCRIBE", &["a", "a", "b"], p),
            "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
        );
        assert_eq!(
            run(&mut s, "PSUBSCRIBE", &["p*"], p),
            "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n"
        );
        assert_eq!(
            run(&mut s, "SSUBSCRIBE", &["s1", "s1"], p),
            "*3\r\n$10\r\nssubscribe\r\n$2\r\ns1\r\n:1\r\n*3\r\n$10\r\nssubscribe\r\n$2\r\ns1\r\n:1\r\n"
        );
        assert_eq!(
            run(&mut s, "UNSUBSCRIBE", &["x"], p),
            "*3\r\n$11\r\nunsubscribe\r\n$1\r\nx\r\n:3\r\n"
        );
        assert_eq!(
            run(&mut s, "UNSUBSCRIBE", &[], p),
            "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n"
        );
        assert_eq!(
            run(&mut s, "UNSUBSCRIBE", &[], p),
            "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:1\r\n"
        );
        assert_eq!(
            run(&mut s, "PUNSUBSCRIBE", &[], p),
            "*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n"
        );
        assert_eq!(
            run(&mut s, "PUNSUBSCRIBE", &[], p),
            "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"
        );
        assert_eq!(s.counts().total(), 1, "the shard channel is left");
        assert_eq!(
            run(&mut s, "SUNSUBSCRIBE", &[], p),
            "*3\r\n$12\r\nsunsubscribe\r\n$2\r\ns1\r\n:0\r\n"
        );
        assert_eq!(
            run(&mut s, "SUNSUBSCRIBE", &[], p),
            "*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n"
        );
        assert_eq!(s.counts(), Counts::default());
    }

    #[test]
    fn confirmations_are_pushes_with_null_in_resp3() {
        let mut s = Subscriptions::default();
        let p = Protocol::Resp3;
        assert_eq!(
            run(&mut s, "SUBSCRIBE", &["a"], p),
            ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            run(&mut s, "UNSUBSCRIBE", &[], p),
            ">3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n"
        );
        assert_eq!(
            run(&mut s, "UNSUBSCRIBE", &[], p),
            ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n"
        );
    }

    #[test]
    fn patterns_leave_in_the_order_they_came() {
        let mut s = Subscriptions::default();
        run(&mut s, "PSUBSCRIBE", &["c*", "a*", "b*"], Protocol::Resp2);
        run(&mut s, "PUNSUBSCRIBE", &["a*"], Protocol::Resp2);
        run(&mut s, "PSUBSCRIBE", &["a*"], Protocol::Resp2);
        let command = SubscribeCommand::parse("PUNSUBSCRIBE", &[]).unwrap();
        let (_, change) = s.apply(&command);
        assert_eq!(change.removed, vec!["c*", "b*", "a*"]);
    }

    #[test]
    fn changes_name_only_what_moved() {
        let mut s = Subscriptions::default();
        let sub = SubscribeCommand::parse("SUBSCRIBE", &["a".into(), "a".into()]).unwrap();
        assert_eq!(s.apply(&sub).1.added, vec!["a"]);
        assert!(s.apply(&sub).1.added.is_empty(), "already subscribed");
        let unsub = SubscribeCommand::parse("UNSUBSCRIBE", &["a".into(), "b".into()]).unwrap();
        assert_eq!(s.apply(&unsub).1.removed, vec!["a"]);
    }

    fn limit(hard: usize, soft: usize, secs: u64) -> OutputBufferLimit {
        OutputBufferLimit {
            hard_bytes: hard,
            soft_bytes: soft,
            soft_time: std::time::Duration::from_secs(secs),
        }
    }

    #[test]
    fn the_hard_limit_cuts_off_and_credits_give_bytes_back() {
        let mut budget = OutputBudget::new(limit(100, 0, 0), CancellationToken::new());
        let first = budget.charge(60).unwrap();
        assert_eq!(
            budget.charge(60).unwrap_err(),
            Overflow::Hard {
                queued: 120,
                limit: 100
            }
        );
        drop(first);
        assert!(
            budget.charge(60).is_ok(),
            "written messages no longer count"
        );
    }

    #[test]
    fn the_soft_limit_starts_a_clock_and_resets_below_it() {
        let mut budget = OutputBudget::new(limit(0, 10, 0), CancellationToken::new());
        let held = budget.charge(20).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(
            budget.charge(1).unwrap_err(),
            Overflow::Soft { limit: 10, secs: 0 }
        );
        drop(held);
        let _below = budget.charge(5).unwrap();
        assert!(
            budget.charge(10).is_ok(),
            "the clock restarted below the limit"
        );
    }

    #[test]
    fn no_limits_mean_no_limits() {
        let mut budget = OutputBudget::new(limit(0, 0, 0), CancellationToken::new());
        let _held: Vec<Credit> = (0..10).map(|_| budget.charge(1 << 30).unwrap()).collect();
    }
}
