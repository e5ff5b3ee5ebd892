//! Changes sealcache makes to an upstream reply before the client sees it.

use std::sync::Arc;

use bytes::Bytes;

use super::Context;
use crate::backend::pubsub::Credit;
use crate::backend::redis::{LeaseState, Purpose, RedisBackend};
use crate::backend::{Backend, Encoding, Reply, ReplyRx, Request};
use crate::config::DecryptFailure;
use crate::error::ProxyError;
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, error_text, text_of, verbatim_text};
use crate::values::{Check, Cleanup, Failure, OpenPlan};

/// CONFIG parameters never shown to clients: the upstream's secrets, and the
/// paths and addresses of the host it runs on, which are the operator's
/// business, not an application's.
const HIDDEN_PARAMETERS: &[&str] = &[
    // Secrets.
    "requirepass",
    "masterauth",
    "masteruser",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
    // Files and directories on the upstream's host.
    "dir",
    "logfile",
    "pidfile",
    "aclfile",
    "dbfilename",
    "appendfilename",
    "appenddirname",
    "cluster-config-file",
    "unixsocket",
    "tls-cert-file",
    "tls-key-file",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-dh-params-file",
    // Where it listens and what it connects to.
    "bind",
    "bind-source-addr",
    "port",
    "tls-port",
    "replicaof",
    "slaveof",
];

/// INFO fields about the upstream's process and host, removed like the
/// parameters above (`slave0:ip=…` lines are matched by prefix).
const HIDDEN_INFO_FIELDS: &[&str] = &[
    "executable",
    "config_file",
    "process_id",
    "tcp_port",
    "master_host",
    "master_port",
];

#[derive(Debug, Clone)]
pub enum Post {
    None,
    /// INFO: append the `# Proxy` section.
    ProxyInfo,
    /// CONFIG GET: drop upstream secrets.
    RedactConfig,
    /// Open the encrypted values in the reply.
    Open(OpenPlan),
    /// EXEC: each element as its queued command's post says.
    Exec(Vec<Post>),
    /// A Pub/Sub message: nothing to change; its bytes leave the
    /// subscriber's queue budget once the writer has it.
    Release(Arc<Credit>),
    /// The reply to a command queued in MULTI whose values come back in
    /// EXEC's reply: only `+QUEUED` or an error may reach the client.
    Queued,
}

impl Post {
    pub fn apply(self, reply: Reply, ctx: &Context) -> Reply {
        match self {
            Post::None | Post::Release(_) => reply,
            Post::Exec(posts) if posts.iter().any(|p| !matches!(p, Post::None)) => {
                match reply.frame {
                    Frame::Array { data, attributes } if data.len() == posts.len() => {
                        let data = data
                            .into_iter()
                            .zip(posts)
                            .map(|(f, p)| p.apply(Reply::new(f), ctx).frame)
                            .collect();
                        Reply::new(Frame::Array { data, attributes })
                    }
                    // Aborted (WATCH) or refused: nothing to open.
                    frame @ (Frame::Null | Frame::SimpleError { .. } | Frame::BlobError { .. }) => {
                        Reply::new(frame)
                    }
                    frame => Reply::new(ctx.values.forged_reply(
                        "EXEC",
                        &frame,
                        "an array with one reply per queued command",
                    )),
                }
            }
            Post::Exec(_) => reply,
            Post::Queued => match &reply.frame {
                Frame::SimpleString { data, .. } if data.as_ref() == b"QUEUED" => reply,
                Frame::SimpleError { .. } | Frame::BlobError { .. } => reply,
                other => Reply::new(ctx.values.forged_reply("MULTI", other, "+QUEUED")),
            },
            Post::Open(plan) => {
                let opened = ctx.values.open_reply(&plan, reply.frame);
                if ctx.values.on_failure() == DecryptFailure::Delete {
                    remove_undecryptable(ctx, &opened.failures, plan.db);
                }
                Reply::new(opened.frame)
            }
            Post::ProxyInfo => match text_of(&reply.frame) {
                Some(text) => {
                    let mut text = redact_info(&String::from_utf8_lossy(text));
                    if !text.is_empty() && !text.ends_with("\r\n") {
                        text.push_str("\r\n");
                    }
                    if !text.is_empty() {
                        text.push_str("\r\n");
                    }
                    text.push_str(&ctx.proxy_info());
                    let frame = match reply.frame {
                        Frame::VerbatimString { .. } => verbatim_text(text),
                        _ => bulk(Bytes::from(text)),
                    };
                    Reply::new(frame)
                }
                None => reply,
            },
            Post::RedactConfig => Reply::new(redact_config(reply.frame)),
        }
    }
}

/// `on_decrypt_failure: delete`: removes the values that did not open, in
/// the background (the client's reply does not wait for it). The client's
/// later commands may already have replaced a value — a pipelined `SET` after
/// the failed `GET` — so a string, hash field or stream entry is deleted only
/// while its key still holds the bytes that failed: read under WATCH on a
/// dedicated connection, compared, then deleted in MULTI/EXEC (one
/// transaction per key). Members and list elements are removed by their exact
/// bytes, which cannot hit anything newer.
fn remove_undecryptable(ctx: &Context, failures: &[Failure], db: u32) {
    let mut by_key: Vec<(Bytes, Vec<Check>)> = Vec::new();
    for cleanup in failures.iter().filter_map(Failure::cleanup) {
        match cleanup {
            Cleanup::Exact(args) => {
                let (request, _) = Request::new(args, db);
                let _ = ctx.backend.lane(0).send(request);
            }
            Cleanup::IfUnchanged { key, check } => {
                match by_key.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, checks)) => checks.push(check),
                    None => by_key.push((key, vec![check])),
                }
            }
        }
    }
    let limit = ctx.config.upstream.command_timeout;
    for (key, checks) in by_key {
        let backend = ctx.backend.clone();
        tokio::spawn(async move {
            let outcome =
                tokio::time::timeout(limit, delete_if_unchanged(&backend, &key, &checks, db)).await;
            let key = crate::logging::Untrusted(&key);
            match outcome {
                Ok(Ok((deleted, kept))) => {
                    if deleted > 0 {
                        tracing::info!(%key, db, deleted, "undecryptable value deleted");
                    }
                    if kept > 0 {
                        tracing::info!(
                            %key,
                            db,
                            kept,
                            "undecryptable value not deleted: the key changed since it was read"
                        );
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(%key, db, error = %e, "undecryptable value not deleted")
                }
                Err(_) => tracing::warn!(
                    %key,
                    db,
                    "undecryptable value not deleted: the upstream did not answer in time"
                ),
            }
        });
    }
}

/// WATCH `key`, run every check's read, then MULTI, the deletes of the
/// checks whose bytes are still there, EXEC. Returns how many values were
/// (deleted, kept because the key changed).
async fn delete_if_unchanged(
    backend: &RedisBackend,
    key: &Bytes,
    checks: &[Check],
    db: u32,
) -> Result<(usize, usize), ProxyError> {
    let word = |w: &'static str| Bytes::from_static(w.as_bytes());
    let upstream = backend.label();
    // Dropping the lease undoes WATCH or MULTI (UNWATCH/DISCARD) whatever happens.
    let pool = backend.pinned();
    let deadline = tokio::time::Instant::now() + pool.wait();
    let mut lease = pool.acquire(Purpose::Pinned, deadline).await?;
    lease.state = LeaseState::Watching;
    let mut pending = vec![
        lease
            .send(vec![word("WATCH"), key.clone()], Encoding::Args, db)
            .await?,
    ];
    for check in checks {
        pending.push(lease.send(check.read.clone(), Encoding::Args, db).await?);
    }
    let mut replies = Vec::with_capacity(pending.len());
    for rx in pending {
        replies.push(answer(rx, upstream).await?);
    }
    let unchanged: Vec<&Check> = checks
        .iter()
        .zip(&replies[1..])
        .filter(|(check, reply)| check.holds(reply))
        .map(|(check, _)| check)
        .collect();
    if unchanged.is_empty() {
        return Ok((0, checks.len()));
    }
    lease.state = LeaseState::InMulti;
    let mut commands = vec![vec![word("MULTI")]];
    commands.extend(unchanged.iter().map(|c| c.delete.clone()));
    commands.push(vec![word("EXEC")]);
    let mut pending = Vec::with_capacity(commands.len());
    for args in commands {
        pending.push(lease.send(args, Encoding::Args, db).await?);
    }
    let mut exec = Frame::Null;
    for rx in pending {
        exec = answer(rx, upstream).await?;
    }
    lease.state = LeaseState::Clean;
    // EXEC answers nil when a write to the key aborted the transaction.
    Ok(match exec {
        Frame::Array { .. } => (unchanged.len(), checks.len() - unchanged.len()),
        _ => (0, checks.len()),
    })
}

/// The frame of one reply; an error reply is an error.
async fn answer(rx: ReplyRx, upstream: &str) -> Result<Frame, ProxyError> {
    let reply = rx.await.map_err(|_| ProxyError::UpstreamLost {
        upstream: upstream.to_string(),
        reason: "the dedicated connection closed".into(),
    })??;
    match error_text(&reply.frame) {
        Some(err) => Err(ProxyError::Redis(err)),
        None => Ok(reply.frame),
    }
}

fn is_secret(name: &Frame) -> bool {
    text_of(name).is_some_and(|n| {
        HIDDEN_PARAMETERS
            .iter()
            .any(|s| n.eq_ignore_ascii_case(s.as_bytes()))
    })
}

/// The upstream's INFO text without the fields in [`HIDDEN_INFO_FIELDS`] and
/// without the addresses of its replicas.
fn redact_info(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let field = line.split(':').next().unwrap_or_default();
        let replica = field.starts_with("slave") && field[5..].bytes().all(|b| b.is_ascii_digit());
        if HIDDEN_INFO_FIELDS.contains(&field) || (replica && field.len() > 5) {
            continue;
        }
        out.push_str(line);
    }
    out
}

fn redact_config(frame: Frame) -> Frame {
    match frame {
        Frame::Map {
            mut data,
            attributes,
        } => {
            data.retain(|k, _| !is_secret(k));
            Frame::Map { data, attributes }
        }
        Frame::Array { data, .. } => {
            let mut kept = Vec::with_capacity(data.len());
            let mut items = data.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                if !is_secret(&k) {
                    kept.push(k);
                    kept.push(v);
                }
            }
            array(kept)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::reply::map;

    #[test]
    fn info_loses_the_upstreams_paths_process_and_replica_addresses() {
        let info = "# Server\r\nredis_version:7.0.15\r\nprocess_id:8438\r\nexecutable:/usr/bin/redis-server\r\nconfig_file:/etc/redis.conf\r\ntcp_port:6379\r\n\r\n# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=10.0.0.2,port=6379,state=online\r\nslave_expires_tracked_keys:0\r\n";
        assert_eq!(
            redact_info(info),
            "# Server\r\nredis_version:7.0.15\r\n\r\n# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave_expires_tracked_keys:0\r\n"
        );
    }

    #[test]
    fn config_secrets_are_removed_from_maps_and_arrays() {
        let m = map(vec![
            (bulk("requirepass"), bulk("s3cret")),
            (bulk("maxmemory"), bulk("0")),
        ]);
        let Frame::Map { data, .. } = redact_config(m) else {
            panic!("map expected")
        };
        assert_eq!(data.len(), 1);
        let a = array(vec![
            bulk("maxmemory"),
            bulk("0"),
            bulk("masterauth"),
            bulk("x"),
        ]);
        let Frame::Array { data, .. } = redact_config(a) else {
            panic!("array expected")
        };
        assert_eq!(data, vec![bulk("maxmemory"), bulk("0")]);
    }
}
