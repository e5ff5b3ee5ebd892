//! Pub/Sub: a subscribed client gets its own upstream connection. A relay
//! task forwards everything that connection pushes (messages and subscription
//! confirmations) into the client's reply stream; the session waits for the
//! confirmations of each (un)subscribe so replies stay in command order.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Flow, Post, Route, Session, Slot, SlotReply};
use crate::backend::Reply;
use crate::backend::redis::connect::{BoxStream, encode_command};
use crate::backend::redis::{PinnedPermit, PubSubConn};
use crate::error::ProxyError;
use crate::protocol::reply::{NullStyle, bulk, int, null, text_of};
use crate::protocol::{Frame, Protocol};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

struct Confirmation {
    kind: Kind,
    subscribed: bool,
    channel: Option<Bytes>,
}

pub struct PubSub {
    writer: WriteHalf<BoxStream>,
    confirmations: mpsc::UnboundedReceiver<Confirmation>,
    relay: JoinHandle<()>,
    resp3: Arc<AtomicBool>,
    channels: HashSet<Bytes>,
    patterns: HashSet<Bytes>,
    shards: HashSet<Bytes>,
    // Holds the connection's place in upstream.max_pinned.
    _permit: PinnedPermit,
}

impl PubSub {
    /// Whether the client is subscribed to anything.
    pub fn active(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shards.is_empty())
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        (self.channels.len(), self.patterns.len(), self.shards.len())
    }

    fn set(&mut self, kind: Kind) -> &mut HashSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shards,
        }
    }
}

impl Drop for PubSub {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

fn command_kind(name: &str) -> (Kind, bool) {
    match name {
        "SUBSCRIBE" => (Kind::Channel, true),
        "UNSUBSCRIBE" => (Kind::Channel, false),
        "PSUBSCRIBE" => (Kind::Pattern, true),
        "PUNSUBSCRIBE" => (Kind::Pattern, false),
        "SSUBSCRIBE" => (Kind::Shard, true),
        _ => (Kind::Shard, false),
    }
}

/// Recognises a subscription confirmation pushed by the upstream.
fn confirmation(frame: &Frame) -> Option<Confirmation> {
    let (Frame::Push { data, .. } | Frame::Array { data, .. }) = frame else {
        return None;
    };
    let (kind, subscribed) = match text_of(data.first()?)? {
        b"subscribe" => (Kind::Channel, true),
        b"unsubscribe" => (Kind::Channel, false),
        b"psubscribe" => (Kind::Pattern, true),
        b"punsubscribe" => (Kind::Pattern, false),
        b"ssubscribe" => (Kind::Shard, true),
        b"sunsubscribe" => (Kind::Shard, false),
        _ => return None,
    };
    let channel = data.get(1).and_then(text_of).map(Bytes::copy_from_slice);
    Some(Confirmation {
        kind,
        subscribed,
        channel,
    })
}

impl Session {
    pub(super) async fn subscribe(&mut self, cmd: crate::commands::Command) -> Flow {
        let name = cmd.name();
        if self.multi.is_some() {
            let msg = format!("{name} inside MULTI is not supported by sealcache");
            return self.fail(ProxyError::Unsupported(msg)).await;
        }
        let (kind, subscribing) = command_kind(name);
        if !subscribing && self.pubsub.is_none() {
            // Nothing to leave: answer as Redis does, without a connection.
            let channels: Vec<Option<Bytes>> = if cmd.args.len() > 1 {
                cmd.args[1..].iter().cloned().map(Some).collect()
            } else {
                vec![None]
            };
            for channel in channels {
                let items = vec![
                    bulk(name.to_ascii_lowercase()),
                    channel.map(bulk).unwrap_or_else(null),
                    int(0),
                ];
                self.reply(self.push_frame(items)).await;
            }
            return Flow::Continue;
        }
        self.fence(Route::PubSub).await;
        if self.pubsub.is_none() {
            match self.ctx.backend.pinned().acquire_pubsub().await {
                Ok(conn) => self.pubsub = Some(self.start_relay(conn)),
                Err(e) => return self.fail(e).await,
            }
        }
        let pubsub = self.pubsub.as_mut().expect("started above");
        pubsub
            .resp3
            .store(self.proto == Protocol::Resp3, Ordering::Release);
        let expected = if cmd.args.len() > 1 {
            cmd.args.len() - 1
        } else {
            pubsub.set(kind).len().max(1)
        };
        let mut out = BytesMut::new();
        encode_command(&mut out, &cmd.args);
        let written = async {
            pubsub.writer.write_all(&out).await?;
            pubsub.writer.flush().await
        };
        if let Err(e) = written.await {
            self.pubsub = None;
            let lost = ProxyError::UpstreamLost {
                upstream: self.ctx.upstream_label(),
                reason: e.to_string(),
            };
            return self.fail(lost).await;
        }
        let deadline = tokio::time::Instant::now() + self.command_timeout;
        for _ in 0..expected {
            let pubsub = self.pubsub.as_mut().expect("still subscribed");
            match tokio::time::timeout_at(deadline, pubsub.confirmations.recv()).await {
                Ok(Some(c)) => {
                    if let Some(channel) = c.channel {
                        let set = pubsub.set(c.kind);
                        if c.subscribed {
                            set.insert(channel);
                        } else {
                            set.remove(&channel);
                        }
                    }
                }
                Ok(None) | Err(_) => {
                    // The relay has closed the client connection or the upstream is stuck.
                    self.pubsub = None;
                    let lost = ProxyError::UpstreamTimeout {
                        upstream: self.ctx.upstream_label(),
                        timeout: self.command_timeout,
                    };
                    return self.fail(lost).await;
                }
            }
        }
        Flow::Continue
    }

    /// A push in RESP3, an array in RESP2 (the encoder renders either).
    fn push_frame(&self, items: Vec<Frame>) -> Frame {
        Frame::Push {
            data: items,
            attributes: None,
        }
    }

    fn start_relay(&self, conn: PubSubConn) -> PubSub {
        let PubSubConn {
            stream,
            handshake,
            permit,
        } = conn;
        let protocol = handshake.protocol;
        let (rd, writer) = tokio::io::split(stream);
        let (confirm_tx, confirmations) = mpsc::unbounded_channel();
        let resp3 = Arc::new(AtomicBool::new(self.proto == Protocol::Resp3));
        let relay = tokio::spawn(relay(
            rd,
            protocol,
            self.slots.clone(),
            resp3.clone(),
            confirm_tx,
            self.ctx.clone(),
        ));
        PubSub {
            writer,
            confirmations,
            relay,
            resp3,
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shards: HashSet::new(),
            _permit: permit,
        }
    }
}

async fn relay(
    mut rd: ReadHalf<BoxStream>,
    protocol: Protocol,
    slots: mpsc::Sender<Slot>,
    resp3: Arc<AtomicBool>,
    confirmations: mpsc::UnboundedSender<Confirmation>,
    ctx: Arc<super::Context>,
) {
    let mut decoder = crate::backend::redis::decode::UpstreamDecoder::new(protocol);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        loop {
            let (frame, raw) =
                match crate::backend::redis::decode::decode_reply(&mut decoder, &mut buf) {
                    Ok(Some(reply)) => reply,
                    Ok(None) => break,
                    Err(reason) => {
                        tracing::warn!(%reason, "Pub/Sub connection failed");
                        return close(&slots).await;
                    }
                };
            let confirmed = confirmation(&frame);
            let (frame, raw) = if confirmed.is_none() {
                let mut frame = frame;
                if !ctx.values.open_push(&mut frame) {
                    // Undecryptable payloads are dropped (counted and logged), never delivered.
                    continue;
                }
                (frame, None)
            } else {
                (frame, raw)
            };
            let proto = if resp3.load(Ordering::Acquire) {
                Protocol::Resp3
            } else {
                Protocol::Resp2
            };
            let slot = Slot {
                reply: SlotReply::Relayed(Reply::upstream(frame, raw)),
                proto,
                nulls: NullStyle::Bulk,
                post: Post::None,
            };
            if slots.send(slot).await.is_err() {
                return;
            }
            if let Some(c) = confirmed {
                let _ = confirmations.send(c);
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                tracing::warn!(
                    "Pub/Sub upstream connection closed; closing the client so it resubscribes"
                );
                return close(&slots).await;
            }
            Ok(_) => {}
        }
    }
}

async fn close(slots: &mpsc::Sender<Slot>) {
    let _ = slots
        .send(Slot {
            reply: SlotReply::Close,
            proto: Protocol::Resp2,
            nulls: NullStyle::Bulk,
            post: Post::None,
        })
        .await;
}
