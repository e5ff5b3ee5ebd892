//! One pipelined upstream connection: a writer that batches queued requests
//! into as few TLS records and syscalls as possible, and a reader task that
//! matches replies to requests in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf};
use tokio::sync::mpsc;

use super::connect::{BoxStream, Handshake, encode_command};
use super::decode::{Upstream, UpstreamDecoder};
use crate::backend::{Encoding, Reply, ReplyAccount, ReplyTx, Request, RequestKind};
use crate::error::ProxyError;
use crate::protocol::reply::error_text;

/// Stop batching and write once this much is buffered.
const MAX_BATCH_BYTES: usize = 256 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// Who waits for the next reply.
enum Pending {
    /// With the client the reply is charged to.
    Reply(ReplyTx, Option<Arc<dyn ReplyAccount>>),
    /// A reply to a command sealcache added itself (SELECT bookkeeping).
    Discard,
}

/// Why a connection ended.
#[derive(Debug, Clone)]
pub enum Ended {
    /// Every sender is gone: the connection is no longer wanted.
    Closed,
    Failed(String),
}

/// Runs the connection until it fails or `requests` closes. Requests still
/// waiting for replies are answered with an error naming the upstream.
pub async fn run(
    stream: BoxStream,
    handshake: Handshake,
    initial_db: u32,
    requests: &mut mpsc::UnboundedReceiver<Request>,
    label: &str,
    alive: &AtomicBool,
) -> Ended {
    let (rd, mut wr) = tokio::io::split(stream);
    let (pending_tx, pending_rx) = mpsc::unbounded_channel::<Pending>();
    let reader_label: Arc<str> = label.into();
    let mut reader = tokio::spawn(read_loop(rd, pending_rx, handshake, reader_label));
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut db = initial_db;
    alive.store(true, Ordering::Release);
    let ended = loop {
        tokio::select! {
            biased;
            result = &mut reader => {
                alive.store(false, Ordering::Release);
                // The reader is done (and answered everything pending): nothing left to await.
                return Ended::Failed(result.unwrap_or_else(|e| format!("reader task failed: {e}")));
            }
            request = requests.recv() => {
                let Some(request) = request else { break Ended::Closed };
                if let Err(reason) = encode(request, &mut buf, &mut db, &pending_tx, label) {
                    break Ended::Failed(reason);
                }
                // Gather what other clients queue meanwhile: one yield lets the
                // sessions that are running now add their commands to this write.
                let mut yielded = false;
                while buf.len() < MAX_BATCH_BYTES {
                    match requests.try_recv() {
                        Ok(request) => {
                            if let Err(reason) = encode(request, &mut buf, &mut db, &pending_tx, label) {
                                return finish(reader, Ended::Failed(reason), alive).await;
                            }
                        }
                        Err(_) if !yielded => {
                            yielded = true;
                            tokio::task::yield_now().await;
                        }
                        Err(_) => break,
                    }
                }
                let written = async {
                    wr.write_all(&buf).await?;
                    wr.flush().await
                };
                if let Err(e) = written.await {
                    break Ended::Failed(format!("write failed: {e}"));
                }
                buf.clear();
                if buf.capacity() > 4 * MAX_BATCH_BYTES {
                    // A large value passed through: give the memory back.
                    buf = BytesMut::with_capacity(READ_CHUNK);
                }
            }
        }
    };
    drop(pending_tx);
    finish(reader, ended, alive).await
}

async fn finish(
    reader: tokio::task::JoinHandle<String>,
    ended: Ended,
    alive: &AtomicBool,
) -> Ended {
    alive.store(false, Ordering::Release);
    // The reader answers everything still pending once its queue closes or the socket fails.
    reader.abort();
    let _ = reader.await;
    ended
}

/// Queues one request's bytes, switching the connection's database first when needed.
fn encode(
    request: Request,
    buf: &mut BytesMut,
    db: &mut u32,
    pending: &mpsc::UnboundedSender<Pending>,
    label: &str,
) -> Result<(), String> {
    let lost = |reason: &str| ProxyError::UpstreamLost {
        upstream: label.to_string(),
        reason: reason.to_string(),
    };
    if request.db != *db {
        if pending.send(Pending::Discard).is_err() {
            request.fail(lost("connection closed"));
            return Err("connection closed".into());
        }
        encode_command(
            buf,
            &[
                Bytes::from_static(b"SELECT"),
                Bytes::from(request.db.to_string()),
            ],
        );
        *db = request.db;
    }
    let kind = request.kind;
    match &request.encoding {
        Encoding::Raw(raw) => buf.extend_from_slice(raw),
        Encoding::Args => encode_command(buf, &request.args),
        Encoding::Sealed { by, rule } => {
            if let Err(e) = by.encode_sealed(*rule, &request.args, buf) {
                // Nothing was written: the command fails alone.
                request.fail(e);
                return Ok(());
            }
        }
    }
    if let Err(mpsc::error::SendError(Pending::Reply(tx, _))) =
        pending.send(Pending::Reply(request.reply, request.account))
    {
        let _ = tx.send(Err(lost("connection closed")));
        return Err("connection closed".into());
    }
    if kind == RequestKind::SelectProbe {
        // Put the shared connection back on its database whatever the probe did.
        encode_command(
            buf,
            &[Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())],
        );
        if pending.send(Pending::Discard).is_err() {
            return Err("connection closed".into());
        }
    }
    Ok(())
}

async fn read_loop(
    mut rd: ReadHalf<BoxStream>,
    mut pending: mpsc::UnboundedReceiver<Pending>,
    handshake: Handshake,
    label: Arc<str>,
) -> String {
    let mut decoder = UpstreamDecoder::with_limits(handshake.protocol, handshake.limits);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let reason = 'read: loop {
        loop {
            let upstream = match decoder.next(&mut buf) {
                Ok(Some(upstream)) => upstream,
                Ok(None) => break,
                Err(reason) => break 'read reason,
            };
            if upstream.is_push() {
                // Out-of-band data (never requested on these connections): not a reply.
                continue;
            }
            // A reply that cannot be decoded or is too large fails its own command only.
            let reply = match upstream {
                Upstream::Frame { frame, raw } => Ok(Reply::upstream(frame, raw)),
                Upstream::Undecodable { raw, reason } => {
                    tracing::warn!(upstream = %label, %reason, "upstream reply cannot be decoded; forwarding its bytes");
                    let error = ProxyError::UndecodableReply {
                        upstream: label.to_string(),
                        reason,
                    };
                    Ok(Reply::undecoded(raw, error.to_frame()))
                }
                Upstream::TooLarge { exceeded, .. } => {
                    tracing::warn!(upstream = %label, %exceeded, "upstream reply over a limit; discarding it");
                    Err(ProxyError::ReplyTooLarge {
                        upstream: label.to_string(),
                        exceeded,
                    })
                }
            };
            match pending.try_recv() {
                Ok(Pending::Reply(tx, None)) => {
                    let _ = tx.send(reply);
                }
                Ok(Pending::Reply(tx, Some(account))) => {
                    // Never wait for a client here: charge it (or drop the
                    // reply of one that was cut off); refund what nobody takes.
                    let size = reply.as_ref().map_or(0, Reply::wire_size);
                    if account.charge(size) && tx.send(reply).is_err() {
                        account.refund(size);
                    }
                }
                Ok(Pending::Discard) => {
                    let err = match &reply {
                        Ok(r) => error_text(&r.frame),
                        Err(e) => Some(e.to_string()),
                    };
                    if let Some(err) = err {
                        tracing::warn!(upstream = %label, error = %crate::logging::Untrusted(err.as_bytes()), "internal upstream command failed");
                    }
                }
                Err(_) => break 'read "the upstream sent a reply nobody asked for".to_string(),
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => break "the upstream closed the connection".to_string(),
            Ok(_) => {}
            Err(e) => break format!("read failed: {e}"),
        }
    };
    pending.close();
    while let Ok(p) = pending.try_recv() {
        if let Pending::Reply(tx, _) = p {
            let _ = tx.send(Err(ProxyError::UpstreamLost {
                upstream: label.to_string(),
                reason: reason.clone(),
            }));
        }
    }
    reason
}
