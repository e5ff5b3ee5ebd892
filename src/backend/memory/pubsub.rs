//! Pub/Sub within the process (pubsub.c): a hub of subscribers, each with a
//! handle that subscribes, unsubscribes and yields Redis's push frames
//! (`subscribe`/`unsubscribe` confirmations, `message`, `pmessage`).
//! PUBLISH and PUBSUB CHANNELS/NUMSUB/NUMPAT run as ordinary commands.
//!
//! A subscriber that does not read keeps at most [`QUEUE_LIMIT`] messages;
//! past that it is disconnected (its handle yields `None`), as Redis
//! disconnects a Pub/Sub client over its output-buffer limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::commands::arity_ok;
use super::{Ctx, lock};
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, error, int, null, simple};
use crate::semantics::errors;
use crate::semantics::glob;

/// Messages a subscriber may have waiting before it is disconnected.
pub const QUEUE_LIMIT: usize = 8192;

fn text(s: &'static str) -> Frame {
    bulk(Bytes::from_static(s.as_bytes()))
}

fn push(items: Vec<Frame>) -> Frame {
    Frame::Push {
        data: items,
        attributes: None,
    }
}

struct Member {
    tx: mpsc::Sender<Frame>,
    channels: Vec<Bytes>,
    patterns: Vec<Bytes>,
}

#[derive(Default)]
struct HubState {
    next_id: u64,
    members: HashMap<u64, Member>,
    /// Subscribers of each channel, in subscription order.
    channels: HashMap<Bytes, Vec<u64>>,
    /// Pattern subscriptions, in subscription order.
    patterns: Vec<(Bytes, u64)>,
}

impl HubState {
    fn drop_member(&mut self, id: u64) {
        let Some(member) = self.members.remove(&id) else {
            return;
        };
        for channel in member.channels {
            if let Some(ids) = self.channels.get_mut(&channel) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.channels.remove(&channel);
                }
            }
        }
        self.patterns.retain(|(_, i)| *i != id);
    }
}

#[derive(Default)]
pub struct Hub {
    state: Arc<Mutex<HubState>>,
}

impl Hub {
    pub fn subscriber(&self) -> Subscriber {
        let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
        let mut st = lock(&self.state);
        st.next_id += 1;
        let id = st.next_id;
        st.members.insert(
            id,
            Member {
                tx,
                channels: Vec::new(),
                patterns: Vec::new(),
            },
        );
        Subscriber {
            id,
            hub: Arc::clone(&self.state),
            rx,
        }
    }

    /// PUBLISH: delivers to channel subscribers, then pattern subscribers;
    /// the number of deliveries.
    pub fn publish(&self, channel: &Bytes, message: &Bytes) -> i64 {
        let mut st = lock(&self.state);
        let mut deliveries: Vec<(u64, Frame)> = Vec::new();
        if let Some(ids) = st.channels.get(channel) {
            for id in ids {
                deliveries.push((
                    *id,
                    push(vec![
                        text("message"),
                        bulk(channel.clone()),
                        bulk(message.clone()),
                    ]),
                ));
            }
        }
        for (pattern, id) in &st.patterns {
            if glob::matches(pattern, channel) {
                deliveries.push((
                    *id,
                    push(vec![
                        text("pmessage"),
                        bulk(pattern.clone()),
                        bulk(channel.clone()),
                        bulk(message.clone()),
                    ]),
                ));
            }
        }
        let mut overflowed = Vec::new();
        for (id, frame) in &deliveries {
            if let Some(member) = st.members.get(id)
                && member.tx.try_send(frame.clone()).is_err()
            {
                overflowed.push(*id);
            }
        }
        for id in overflowed {
            st.drop_member(id);
        }
        deliveries.len() as i64
    }
}

/// One Pub/Sub client. Dropping it unsubscribes from everything.
pub struct Subscriber {
    id: u64,
    hub: Arc<Mutex<HubState>>,
    rx: mpsc::Receiver<Frame>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        lock(&self.hub).drop_member(self.id);
    }
}

impl Subscriber {
    /// Channels plus patterns (the count in confirmations).
    pub fn count(&self) -> usize {
        lock(&self.hub)
            .members
            .get(&self.id)
            .map_or(0, |m| m.channels.len() + m.patterns.len())
    }

    /// SUBSCRIBE: one confirmation per channel.
    pub fn subscribe(&mut self, channels: &[Bytes]) -> Vec<Frame> {
        let mut st = lock(&self.hub);
        let mut out = Vec::with_capacity(channels.len());
        for channel in channels {
            let Some(member) = st.members.get_mut(&self.id) else {
                break;
            };
            let new = !member.channels.contains(channel);
            if new {
                member.channels.push(channel.clone());
            }
            let count = member.channels.len() + member.patterns.len();
            if new {
                st.channels
                    .entry(channel.clone())
                    .or_default()
                    .push(self.id);
            }
            out.push(push(vec![
                text("subscribe"),
                bulk(channel.clone()),
                int(count as i64),
            ]));
        }
        out
    }

    /// PSUBSCRIBE: one confirmation per pattern.
    pub fn psubscribe(&mut self, patterns: &[Bytes]) -> Vec<Frame> {
        let mut st = lock(&self.hub);
        let mut out = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            let Some(member) = st.members.get_mut(&self.id) else {
                break;
            };
            let new = !member.patterns.contains(pattern);
            if new {
                member.patterns.push(pattern.clone());
            }
            let count = member.channels.len() + member.patterns.len();
            if new {
                st.patterns.push((pattern.clone(), self.id));
            }
            out.push(push(vec![
                text("psubscribe"),
                bulk(pattern.clone()),
                int(count as i64),
            ]));
        }
        out
    }

    /// UNSUBSCRIBE (no channels: all of them).
    pub fn unsubscribe(&mut self, channels: &[Bytes]) -> Vec<Frame> {
        self.leave(channels, false)
    }

    /// PUNSUBSCRIBE (no patterns: all of them).
    pub fn punsubscribe(&mut self, patterns: &[Bytes]) -> Vec<Frame> {
        self.leave(patterns, true)
    }

    fn leave(&mut self, names: &[Bytes], patterns: bool) -> Vec<Frame> {
        let kind = if patterns {
            "punsubscribe"
        } else {
            "unsubscribe"
        };
        let mut st = lock(&self.hub);
        let names: Vec<Bytes> = if names.is_empty() {
            st.members.get(&self.id).map_or_else(Vec::new, |m| {
                if patterns {
                    m.patterns.clone()
                } else {
                    m.channels.clone()
                }
            })
        } else {
            names.to_vec()
        };
        let mut out = Vec::with_capacity(names.len().max(1));
        for name in &names {
            let Some(member) = st.members.get_mut(&self.id) else {
                break;
            };
            let list = if patterns {
                &mut member.patterns
            } else {
                &mut member.channels
            };
            let was = list.contains(name);
            list.retain(|n| n != name);
            let count = member.channels.len() + member.patterns.len();
            if was {
                if patterns {
                    st.patterns.retain(|(p, i)| !(p == name && *i == self.id));
                } else if let Some(ids) = st.channels.get_mut(name) {
                    ids.retain(|i| *i != self.id);
                    if ids.is_empty() {
                        st.channels.remove(name);
                    }
                }
            }
            out.push(push(vec![
                text(kind),
                bulk(name.clone()),
                int(count as i64),
            ]));
        }
        if out.is_empty() {
            let count = st
                .members
                .get(&self.id)
                .map_or(0, |m| m.channels.len() + m.patterns.len());
            out.push(push(vec![text(kind), null(), int(count as i64)]));
        }
        out
    }

    /// The next message (`message`/`pmessage` push); `None` once the
    /// subscriber was disconnected for not reading.
    pub async fn recv(&mut self) -> Option<Frame> {
        self.rx.recv().await
    }

    /// A message if one is waiting.
    pub fn try_recv(&mut self) -> Option<Frame> {
        self.rx.try_recv().ok()
    }
}

pub fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    int(ctx.shared.hub.publish(&args[1], &args[2]))
}

/// PUBSUB CHANNELS / NUMSUB / NUMPAT / HELP.
/// redis-server 7.0's `PUBSUB HELP`.
const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

pub fn pubsub(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let sub = args[1].to_ascii_uppercase();
    let (arity, name) = match sub.as_slice() {
        b"CHANNELS" => (-2, "pubsub|channels"),
        b"NUMSUB" => (-2, "pubsub|numsub"),
        b"NUMPAT" => (2, "pubsub|numpat"),
        b"SHARDCHANNELS" => (-2, "pubsub|shardchannels"),
        b"SHARDNUMSUB" => (-2, "pubsub|shardnumsub"),
        b"HELP" => (2, "pubsub|help"),
        _ => {
            return error(format!(
                "ERR unknown subcommand '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(&args[1])
                    .chars()
                    .take(128)
                    .collect::<String>()
            ));
        }
    };
    if !arity_ok(arity, args.len()) {
        return error(errors::wrong_arity(name));
    }
    if matches!(sub.as_slice(), b"CHANNELS" | b"SHARDCHANNELS") && args.len() > 3 {
        // Redis's own wording for a pattern too many, quoting the word as sent.
        return error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(&args[1])
        ));
    }
    let st = lock(&ctx.shared.hub.state);
    match sub.as_slice() {
        b"HELP" => array(PUBSUB_HELP.iter().map(|line| simple(line)).collect()),
        // Shard channels are refused (SSUBSCRIBE is not served): none is active.
        b"SHARDCHANNELS" => array(Vec::new()),
        b"SHARDNUMSUB" => array(
            args[2..]
                .iter()
                .flat_map(|c| [bulk(c.clone()), int(0)])
                .collect(),
        ),
        b"CHANNELS" => {
            let pattern = args.get(2);
            array(
                st.channels
                    .keys()
                    .filter(|c| pattern.is_none_or(|p| glob::matches(p, c)))
                    .cloned()
                    .map(bulk)
                    .collect(),
            )
        }
        b"NUMSUB" => array(
            args[2..]
                .iter()
                .flat_map(|c| {
                    let n = st.channels.get(c).map_or(0, Vec::len);
                    [bulk(c.clone()), int(n as i64)]
                })
                .collect(),
        ),
        _ => {
            let unique: std::collections::HashSet<&Bytes> =
                st.patterns.iter().map(|(p, _)| p).collect();
            int(unique.len() as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::tests::{Harness, args};

    /// The subcommands a memory store answers with nothing subscribed to
    /// shard channels (SSUBSCRIBE is not served), and its HELP.
    #[tokio::test]
    async fn shard_introspection_and_help() {
        let h = Harness::new();
        h.is("PUBSUB SHARDCHANNELS", "[]").await;
        h.is("PUBSUB SHARDNUMSUB a b", "[$a, :0, $b, :0]").await;
        h.is(
            "PUBSUB channels a b",
            "-ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB HELP.",
        )
        .await;
        let help = h.render(&h.run("PUBSUB HELP").await);
        assert!(help.starts_with("[+PUBSUB <subcommand>"), "{help}");
        assert!(help.ends_with("+HELP, +    Prints this help.]"), "{help}");
    }

    #[tokio::test]
    async fn publish_reaches_channels_and_patterns() {
        let h = Harness::new();
        let mut a = h.store.subscriber();
        let mut b = h.store.subscriber();
        let confirm = a.subscribe(&args("news sport"));
        assert_eq!(h.render(&confirm[1]), ">[$subscribe, $sport, :2]");
        b.psubscribe(&args("n*"));
        h.is("PUBLISH news hi", ":2").await;
        assert_eq!(
            h.render(&a.recv().await.unwrap()),
            ">[$message, $news, $hi]"
        );
        assert_eq!(
            h.render(&b.recv().await.unwrap()),
            ">[$pmessage, $n*, $news, $hi]"
        );
        h.is("PUBSUB NUMSUB news x", "[$news, :1, $x, :0]").await;
        h.is("PUBSUB NUMPAT", ":1").await;
        h.is(
            "PUBSUB NUMPAT x",
            "-ERR wrong number of arguments for 'pubsub|numpat' command",
        )
        .await;
        h.is(
            "PUBSUB FOO",
            "-ERR unknown subcommand 'FOO'. Try PUBSUB HELP.",
        )
        .await;
        assert_eq!(a.unsubscribe(&[]).len(), 2);
        let none = a.unsubscribe(&[]);
        assert_eq!(h.render(&none[0]), ">[$unsubscribe, _, :0]");
        drop(b);
        h.is("PUBSUB NUMPAT", ":0").await;
        h.is("PUBLISH news hi", ":0").await;
    }
}
