//! The per-client writer task: takes reply slots in command order, waits for
//! each pending upstream reply, encodes it in the client's protocol and writes
//! in batches (flushing whenever it would otherwise wait).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::Context;
use super::post::Post;
use crate::backend::redis::{LeaseState, PinnedLease};
use crate::backend::{Reply, ReplyRx};
use crate::error::ProxyError;
use crate::protocol::reply::NullStyle;
use crate::protocol::{Frame, Protocol};

/// Write once this much is buffered even if more replies are ready.
const MAX_BATCH: usize = 64 * 1024;
/// Output buffers larger than this are released after use.
const KEEP_BUFFER: usize = 1024 * 1024;

/// One reply position in the client's stream.
pub struct Slot {
    pub reply: SlotReply,
    pub proto: Protocol,
    pub nulls: NullStyle,
    pub post: Post,
}

pub enum SlotReply {
    Ready(Frame),
    /// A frame relayed from a Pub/Sub connection, with its raw bytes.
    Relayed(Reply),
    Pending {
        rx: ReplyRx,
        /// `None` for blocking commands, which may wait forever.
        timeout: Option<Duration>,
        /// A dedicated connection returned to the pool once the reply is in.
        lease: Option<PinnedLease>,
    },
    /// Signals when every earlier reply has been received.
    Fence(oneshot::Sender<()>),
    /// Flush and close the connection.
    Close,
}

impl Slot {
    pub fn ready(frame: Frame, proto: Protocol) -> Slot {
        Slot {
            reply: SlotReply::Ready(frame),
            proto,
            nulls: NullStyle::Bulk,
            post: Post::None,
        }
    }
}

pub async fn run<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut slots: mpsc::Receiver<Slot>,
    ctx: Arc<Context>,
    outstanding: Arc<AtomicUsize>,
) {
    let mut out = BytesMut::with_capacity(16 * 1024);
    while let Some(first) = slots.recv().await {
        let mut next = Some(first);
        while let Some(slot) = next.take() {
            let close = matches!(slot.reply, SlotReply::Close);
            if close || !process(slot, &mut out, &mut wr, &ctx, &outstanding).await {
                let _ = write_out(&mut wr, &mut out).await;
                let _ = wr.shutdown().await;
                return;
            }
            if out.len() >= MAX_BATCH && write_out(&mut wr, &mut out).await.is_err() {
                return;
            }
            next = slots.try_recv().ok();
        }
        if write_out(&mut wr, &mut out).await.is_err() {
            return;
        }
    }
    let _ = write_out(&mut wr, &mut out).await;
}

async fn write_out<W: AsyncWrite + Unpin>(wr: &mut W, out: &mut BytesMut) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    wr.write_all(out).await?;
    wr.flush().await?;
    out.clear();
    // One large reply must not pin its buffer for the rest of the session.
    if out.capacity() > KEEP_BUFFER {
        *out = BytesMut::with_capacity(16 * 1024);
    }
    Ok(())
}

/// Encodes one slot; `false` when the client is gone.
async fn process<W: AsyncWrite + Unpin>(
    slot: Slot,
    out: &mut BytesMut,
    wr: &mut W,
    ctx: &Context,
    outstanding: &AtomicUsize,
) -> bool {
    let Slot {
        reply,
        proto,
        nulls,
        post,
    } = slot;
    let reply = match reply {
        SlotReply::Ready(frame) => Reply::new(frame),
        SlotReply::Relayed(reply) => reply,
        SlotReply::Close => return false,
        SlotReply::Fence(done) => {
            let _ = done.send(());
            return true;
        }
        SlotReply::Pending {
            mut rx,
            timeout,
            mut lease,
        } => {
            let result = match rx.try_recv() {
                Ok(result) => result,
                Err(oneshot::error::TryRecvError::Closed) => Err(lost(ctx)),
                Err(oneshot::error::TryRecvError::Empty) => {
                    // Replies of one pipeline often arrive in several upstream
                    // reads: give those a turn so they share this client's write.
                    if !out.is_empty() {
                        tokio::task::yield_now().await;
                    }
                    // Send what is ready before waiting on the upstream.
                    if write_out(wr, out).await.is_err() {
                        outstanding.fetch_sub(1, Ordering::AcqRel);
                        return false;
                    }
                    match timeout {
                        None => rx.await.unwrap_or_else(|_| Err(lost(ctx))),
                        Some(limit) => match tokio::time::timeout(limit, rx).await {
                            Ok(result) => result.unwrap_or_else(|_| Err(lost(ctx))),
                            Err(_) => Err(ProxyError::UpstreamTimeout {
                                upstream: ctx.upstream_label(),
                                timeout: limit,
                            }),
                        },
                    }
                }
            };
            if let Some(lease) = lease.as_mut()
                && result.is_ok()
            {
                lease.state = LeaseState::Clean;
            }
            drop(lease);
            outstanding.fetch_sub(1, Ordering::AcqRel);
            match result {
                Ok(reply) => reply,
                Err(err) => Reply::new(err.to_frame()),
            }
        }
    };
    if let Post::Open(plan) = &post
        && ctx.values.encode_single_value(plan, &reply.frame, out)
    {
        return true;
    }
    let reply = post.apply(reply, ctx);
    reply.encode(out, proto, nulls);
    true
}

fn lost(ctx: &Context) -> ProxyError {
    ProxyError::UpstreamLost {
        upstream: ctx.upstream_label(),
        reason: "the upstream connection closed".into(),
    }
}
