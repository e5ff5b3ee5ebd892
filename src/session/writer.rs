//! The per-client writer task: takes reply slots in command order, waits for
//! each pending upstream reply, encodes it in the client's protocol and writes
//! in batches (flushing whenever it would otherwise wait). It releases the
//! client's output budget as bytes reach the client, stops at once when the
//! client is cut off, and abandons a blocking command when the client leaves.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::Context;
use super::dedicated::Dedicated;
use super::output::ClientOutput;
use super::post::Post;
use crate::backend::ConnState;
use crate::backend::{Reply, ReplyRx};
use crate::error::ProxyError;
use crate::protocol::reply::NullStyle;
use crate::protocol::{Frame, Protocol};

/// Write once this much is buffered even if more replies are ready.
const MAX_BATCH: usize = 64 * 1024;
/// Output buffers larger than this are released after use.
const KEEP_BUFFER: usize = 1024 * 1024;

/// The session's queue of reply slots to its writer. Boxed slots: a channel
/// allocates its first block of 32 elements up front, and an idle client
/// should not hold 32 slots' worth (8 KiB) for it.
pub type SlotSender = mpsc::Sender<Box<Slot>>;
pub type SlotReceiver = mpsc::Receiver<Box<Slot>>;

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
        /// A blocking command's connection, returned to the pool once the
        /// reply is in (closed if the reply never comes).
        lease: Option<Dedicated>,
        /// Index of the backend that answers (named in errors).
        backend: usize,
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

/// Bytes encoded for the client, and how much of them was charged to its
/// output budget (released once written).
struct Out {
    buf: BytesMut,
    charged: usize,
}

/// Writes replies until the client closes. A client cut off for not reading
/// has this task aborted (see `ClientOutput::cut_off`) wherever it waits,
/// even mid-write; dropping the slots drops their replies.
pub async fn run<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut slots: SlotReceiver,
    ctx: Arc<Context>,
    output: Arc<ClientOutput>,
) {
    let (ctx, output) = (&*ctx, &*output);
    let mut out = Out {
        buf: BytesMut::new(),
        charged: 0,
    };
    loop {
        let first = match slots.try_recv() {
            Ok(slot) => slot,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Everything is written: an idle client holds no output buffer.
                out.buf = BytesMut::new();
                match slots.recv().await {
                    Some(slot) => slot,
                    None => break,
                }
            }
        };
        let mut next = Some(first);
        while let Some(slot) = next.take() {
            let close = matches!(slot.reply, SlotReply::Close);
            if close || !process(*slot, &mut out, &mut wr, ctx, output).await {
                let _ = write_out(&mut wr, &mut out, output).await;
                let _ = wr.shutdown().await;
                return;
            }
            if out.buf.len() >= MAX_BATCH && write_out(&mut wr, &mut out, output).await.is_err() {
                return;
            }
            next = slots.try_recv().ok();
        }
        if write_out(&mut wr, &mut out, output).await.is_err() {
            return;
        }
    }
    let _ = write_out(&mut wr, &mut out, output).await;
}

async fn write_out<W: AsyncWrite + Unpin>(
    wr: &mut W,
    out: &mut Out,
    output: &ClientOutput,
) -> std::io::Result<()> {
    if out.buf.is_empty() {
        return Ok(());
    }
    wr.write_all(&out.buf).await?;
    wr.flush().await?;
    out.buf.clear();
    output.release(std::mem::take(&mut out.charged));
    // One large reply must not pin its buffer for the rest of a pipeline.
    if out.buf.capacity() > KEEP_BUFFER {
        out.buf = BytesMut::new();
    }
    Ok(())
}

/// Encodes one slot; `false` when the client is gone.
async fn process<W: AsyncWrite + Unpin>(
    slot: Slot,
    out: &mut Out,
    wr: &mut W,
    ctx: &Context,
    output: &ClientOutput,
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
            backend,
        } => {
            let name = ctx.backends[backend].name();
            let result = match rx.try_recv() {
                Ok(result) => result,
                Err(oneshot::error::TryRecvError::Closed) => Err(lost(name)),
                Err(oneshot::error::TryRecvError::Empty) => {
                    // Replies of one pipeline often arrive in several upstream
                    // reads: give those a turn so they share this client's write.
                    if !out.buf.is_empty() {
                        tokio::task::yield_now().await;
                    }
                    // Send what is ready before waiting on the upstream.
                    if write_out(wr, out, output).await.is_err() {
                        output.reply_taken(None);
                        return false;
                    }
                    match timeout {
                        // A blocking command: for as long as the client is there.
                        None => tokio::select! {
                            biased;
                            result = rx => result.unwrap_or_else(|_| Err(lost(name))),
                            _ = output.gone.cancelled() => {
                                // Dropping the lease closes its connection now.
                                drop(lease);
                                output.reply_taken(None);
                                return false;
                            }
                        },
                        Some(limit) => match tokio::time::timeout(limit, &mut rx).await {
                            Ok(result) => result.unwrap_or_else(|_| Err(lost(name))),
                            Err(_) => {
                                // A reply that raced the deadline was charged:
                                // give it back (a later one the lane refunds).
                                rx.close();
                                if let Ok(Ok(late)) = rx.try_recv() {
                                    output.release(late.wire_size());
                                }
                                Err(ProxyError::UpstreamTimeout {
                                    upstream: name.to_string(),
                                    timeout: limit,
                                })
                            }
                        },
                    }
                }
            };
            if let Some(lease) = lease.as_mut()
                && result.is_ok()
            {
                lease.set_state(ConnState::Clean);
            }
            drop(lease);
            let size = result.as_ref().ok().map(Reply::wire_size);
            out.charged += size.unwrap_or(0);
            output.reply_taken(size);
            match result {
                Ok(reply) => reply,
                Err(err) => Reply::new(err.to_frame()),
            }
        }
    };
    if let Post::Open(plan, _) = &post
        && ctx
            .values
            .encode_opened(plan, &reply.frame, proto, nulls, &mut out.buf)
    {
        return true;
    }
    // EXEC's elements are each rendered by their own command's rules.
    let each: Option<Vec<NullStyle>> = match &post {
        Post::Exec(queued) if proto == Protocol::Resp2 => {
            Some(queued.iter().map(|(_, nulls)| *nulls).collect())
        }
        _ => None,
    };
    let reply = post.apply(reply, ctx);
    match each {
        Some(each) if !reply.undecoded => {
            crate::protocol::reply::encode_resp2_each(&mut out.buf, &reply.frame, &each, nulls)
        }
        _ => reply.encode(&mut out.buf, proto, nulls),
    }
    true
}

fn lost(backend: &str) -> ProxyError {
    ProxyError::UpstreamLost {
        upstream: backend.to_string(),
        reason: "the upstream connection closed".into(),
    }
}
