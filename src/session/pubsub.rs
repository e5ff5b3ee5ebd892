//! Pub/Sub for one client: its handle on the backend's hub (a
//! [`Subscriber`]; one upstream connection serves every subscriber), driven by
//! a relay task that opens each message and queues it in the client's reply
//! stream. The session hands each (un)subscribe to the relay and waits until
//! its confirmations are queued, so replies stay in command order with
//! messages between.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Context, Flow, Post, Route, Session, Slot, SlotReply};
use crate::backend::pubsub::{Counts, Delivery, Push, SubscribeCommand, Subscriber, Subscriptions};
use crate::error::ProxyError;
use crate::protocol::Protocol;
use crate::protocol::reply::NullStyle;

/// A command for the relay, and the signal that its replies are queued.
type RelayCommand = (SubscribeCommand, oneshot::Sender<()>);

pub struct PubSub {
    commands: mpsc::Sender<RelayCommand>,
    relay: JoinHandle<()>,
    resp3: Arc<AtomicBool>,
    counts: Arc<Mutex<Counts>>,
}

impl PubSub {
    /// Whether the client is subscribed to anything.
    pub fn active(&self) -> bool {
        self.counts.lock().expect("counts lock").total() > 0
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        let c = *self.counts.lock().expect("counts lock");
        (c.channels, c.patterns, c.shards)
    }
}

impl Drop for PubSub {
    fn drop(&mut self) {
        // Dropping the relay drops the handle, which unsubscribes the client.
        self.relay.abort();
    }
}

impl Session {
    /// HELLO's protocol switch, which messages of a subscribed client follow too.
    pub(super) fn set_proto(&mut self, proto: Protocol) {
        self.proto = proto;
        if let Some(pubsub) = &self.pubsub {
            pubsub
                .resp3
                .store(proto == Protocol::Resp3, Ordering::Release);
        }
    }

    pub(super) async fn subscribe(
        &mut self,
        cmd: crate::commands::Command,
        subscription: crate::commands::Subscription,
    ) -> Flow {
        let name = cmd.name();
        if self.multi.is_some() {
            let msg = format!("{name} inside MULTI is not supported by sealcache");
            return self.fail(ProxyError::Unsupported(msg)).await;
        }
        // Channels are not keys: every subscription lives on the default route's backend.
        let backend = self.ctx.default_backend().clone();
        if !backend
            .capabilities()
            .has(crate::backend::Capability::PubSub)
        {
            return self
                .fail(crate::backend::not_supported(name, backend.as_ref()))
                .await;
        }
        let command = SubscribeCommand::of(subscription, &cmd.args[1..]);
        if !command.subscribe && self.pubsub.is_none() {
            // Nothing to leave: answer as Redis does, without the backend.
            let (replies, _) = Subscriptions::default().apply(&command);
            for frame in replies {
                self.reply(frame).await;
            }
            return Flow::Continue;
        }
        self.fence(Route::PubSub).await;
        let pubsub = match self.pubsub.take() {
            Some(pubsub) => pubsub,
            None => match self.start_relay() {
                Ok(pubsub) => pubsub,
                Err(e) => return self.fail(e).await,
            },
        };
        let timeout = backend.command_timeout();
        let (done, queued) = oneshot::channel();
        // A relay that stopped drops `done`: `queued` then fails at once.
        let _ = pubsub.commands.send((command, done)).await;
        match tokio::time::timeout(timeout, queued).await {
            Ok(Ok(())) => {
                self.pubsub = Some(pubsub);
                Flow::Continue
            }
            Ok(Err(_)) => {
                let lost = ProxyError::UpstreamLost {
                    upstream: backend.name().to_string(),
                    reason: "the Pub/Sub relay stopped".into(),
                };
                self.fail(lost).await
            }
            Err(_) => {
                // The backend is stuck: this client's subscriptions go with the handle.
                let stuck = ProxyError::UpstreamTimeout {
                    upstream: backend.name().to_string(),
                    timeout,
                };
                self.fail(stuck).await
            }
        }
    }

    fn start_relay(&self) -> Result<PubSub, ProxyError> {
        // The hub cancels this when the subscriber overflows its queue (and
        // logs why): the client is then disconnected like any other cut-off.
        let overflow = CancellationToken::new();
        let output = self.output.clone();
        let watch = overflow.clone();
        tokio::spawn(async move {
            watch.cancelled().await;
            output.disconnect();
        });
        let subscriber: Box<dyn Subscriber> = self.ctx.default_backend().subscriber(
            self.id,
            self.ctx.config.limits.pubsub_output_buffer,
            overflow,
        )?;
        let (commands, rx) = mpsc::channel(1);
        let resp3 = Arc::new(AtomicBool::new(self.proto == Protocol::Resp3));
        let counts = Arc::new(Mutex::new(Counts::default()));
        let out = Relay {
            slots: self.slots.clone(),
            resp3: resp3.clone(),
            counts: counts.clone(),
            ctx: self.ctx.clone(),
        };
        let relay = tokio::spawn(relay(subscriber, rx, out).in_current_span());
        Ok(PubSub {
            commands,
            relay,
            resp3,
            counts,
        })
    }
}

/// Where the relay puts what the client receives.
struct Relay {
    slots: super::writer::SlotSender,
    resp3: Arc<AtomicBool>,
    counts: Arc<Mutex<Counts>>,
    ctx: Arc<Context>,
}

async fn relay(
    mut subscriber: Box<dyn Subscriber>,
    mut commands: mpsc::Receiver<RelayCommand>,
    out: Relay,
) {
    loop {
        tokio::select! {
            biased;
            command = commands.recv() => {
                let Some((command, done)) = command else { return };
                for push in subscriber.command(command).await {
                    let queued = match push {
                        Push::Message(delivery) => out.message(delivery).await,
                        Push::Reply(frame) => out.queue(Slot::ready(frame, out.proto())).await,
                    };
                    if !queued {
                        return;
                    }
                }
                *out.counts.lock().expect("counts lock") = subscriber.counts();
                let _ = done.send(());
            }
            delivery = subscriber.next_message() => match delivery {
                Some(delivery) => {
                    if !out.message(delivery).await {
                        return;
                    }
                }
                None => {
                    tracing::info!("Pub/Sub ended for this client; closing its connection");
                    let close = Slot {
                        reply: SlotReply::Close,
                        proto: out.proto(),
                        nulls: NullStyle::Bulk,
                        post: Post::None,
                    };
                    out.queue(close).await;
                    return;
                }
            },
        }
    }
}

impl Relay {
    fn proto(&self) -> Protocol {
        if self.resp3.load(Ordering::Acquire) {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        }
    }

    /// `false` when the client is gone.
    async fn queue(&self, slot: Slot) -> bool {
        self.slots.send(Box::new(slot)).await.is_ok()
    }

    /// Opens the message's payload (once for all its subscribers) and queues
    /// it; its bytes stay charged to the client until the writer has it.
    async fn message(&self, delivery: Delivery) -> bool {
        let Delivery { message, credit } = delivery;
        let values = &self.ctx.values;
        let opened = message.delivered_with(|sealed| {
            let mut frame = sealed.clone();
            // Undecryptable payloads are dropped (counted and logged), never delivered.
            values.open_push(&mut frame).then_some(frame)
        });
        let Some(frame) = opened else {
            return true;
        };
        let slot = Slot {
            reply: SlotReply::Ready(frame.clone()),
            proto: self.proto(),
            nulls: NullStyle::Bulk,
            post: Post::Release(Arc::new(credit)),
        };
        self.queue(slot).await
    }
}
