//! Changes sealcache makes to an upstream reply before the client sees it.

use std::sync::Arc;

use bytes::Bytes;

use super::Context;
use crate::backend::pubsub::Credit;
use crate::backend::rmw::{Read, Rmw, Snapshot, Write};
use crate::backend::{Reply, Request};
use crate::config::DecryptFailure;
use crate::error::ProxyError;
use crate::protocol::Frame;
use crate::protocol::reply::{NullStyle, array, bulk, int, text_of, verbatim_text};
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
    /// Open the encrypted values in the reply, from the backend with this index.
    Open(OpenPlan, usize),
    /// PUBLISH (or SPUBLISH, `shard`) to this channel on the backend with
    /// this index: its count of receivers, as the backend counts them.
    Published {
        channel: Bytes,
        shard: bool,
        backend: usize,
    },
    /// PUBSUB NUMSUB (SHARDNUMSUB when `shard`) on the backend with this
    /// index: each count as the backend counts subscribers.
    Subscribers {
        shard: bool,
        backend: usize,
    },
    /// EXEC: each element as its queued command's post says (and, for
    /// RESP2 clients, with its command's null style).
    Exec(Vec<(Post, NullStyle)>),
    /// A Pub/Sub message: nothing to change; its bytes leave the
    /// subscriber's queue budget once the writer has it.
    Release(Arc<Credit>),
}

impl Post {
    pub fn apply(self, reply: Reply, ctx: &Context) -> Reply {
        match self {
            Post::None | Post::Release(_) => reply,
            Post::Exec(posts) if posts.iter().any(|(p, _)| !matches!(p, Post::None)) => {
                match reply.frame {
                    Frame::Array { data, attributes } if data.len() == posts.len() => {
                        let data = data
                            .into_iter()
                            .zip(posts)
                            .map(|(f, (p, _))| p.apply(Reply::new(f), ctx).frame)
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
            Post::Open(plan, backend) => {
                let opened = ctx.values.open_reply(&plan, reply.frame);
                if ctx.values.on_failure() == DecryptFailure::Delete {
                    remove_undecryptable(ctx, backend, &opened.failures, plan.db);
                }
                Reply::new(opened.frame)
            }
            Post::Published {
                channel,
                shard,
                backend,
            } => match reply.frame {
                Frame::Number { data, .. } => Reply::new(int(
                    ctx.backends[backend].publish_receivers(&channel, shard, data)
                )),
                _ => reply,
            },
            Post::Subscribers { shard, backend } => match reply.frame {
                Frame::Array {
                    mut data,
                    attributes,
                } => {
                    for pair in data.chunks_exact_mut(2) {
                        if let [name, Frame::Number { data: counted, .. }] = pair
                            && let Some(channel) = text_of(name)
                        {
                            let count = ctx.backends[backend].subscribers(channel, shard, *counted);
                            pair[1] = int(count);
                        }
                    }
                    Reply::new(Frame::Array { data, attributes })
                }
                _ => reply,
            },
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
fn remove_undecryptable(ctx: &Context, index: usize, failures: &[Failure], db: u32) {
    let mut by_key: Vec<(Bytes, Vec<Check>)> = Vec::new();
    let backend = ctx.backends[index].clone();
    for cleanup in failures.iter().filter_map(Failure::cleanup) {
        match cleanup {
            Cleanup::Exact(args) => {
                let (request, _) = Request::new(args, db);
                let _ = backend.lane(0).send(request);
            }
            Cleanup::IfUnchanged { key, check } => {
                match by_key.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, checks)) => checks.push(check),
                    None => by_key.push((key, vec![check])),
                }
            }
        }
    }
    let limit = backend.command_timeout();
    for (key, checks) in by_key {
        let backend = backend.clone();
        let gate = ctx.gate.clone();
        tokio::spawn(async move {
            // Not while an emulated command of this process runs on the key.
            let _held = gate.lock(index, &[(db, key.clone())]).await;
            let mut op = DeleteIfUnchanged {
                reads: checks
                    .iter()
                    .map(|c| Read::Command {
                        key: key.clone(),
                        args: c.read.clone(),
                    })
                    .collect(),
                checks,
                deadline: tokio::time::Instant::now() + limit,
                deleted: 0,
                kept: 0,
            };
            let outcome = backend.read_modify_write(db, &mut op).await;
            let key = crate::logging::Untrusted(&key);
            match outcome {
                Ok(()) => {
                    if op.deleted > 0 {
                        tracing::info!(%key, db, deleted = op.deleted, "undecryptable value deleted");
                    }
                    if op.kept > 0 {
                        tracing::info!(
                            %key,
                            db,
                            kept = op.kept,
                            "undecryptable value not deleted: the key changed since it was read"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(%key, db, error = %e, "undecryptable value not deleted")
                }
            }
        });
    }
}

/// Deletes each undecryptable value of one key that the key still holds,
/// atomically with the reads that show it (a newer value is never deleted).
struct DeleteIfUnchanged {
    reads: Vec<Read>,
    checks: Vec<Check>,
    deadline: tokio::time::Instant,
    deleted: usize,
    kept: usize,
}

impl Rmw for DeleteIfUnchanged {
    fn reads(&self) -> &[Read] {
        &self.reads
    }

    fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<Write>, ProxyError> {
        let mut writes = Vec::new();
        for (check, found) in self.checks.iter().zip(snapshot) {
            match found {
                Snapshot::Reply(reply) if check.holds(&reply) => {
                    writes.push(Write::Native(check.delete.clone()))
                }
                _ => {}
            }
        }
        self.deleted = writes.len();
        self.kept = self.checks.len() - writes.len();
        Ok(writes)
    }

    fn deadline(&self) -> tokio::time::Instant {
        self.deadline
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
