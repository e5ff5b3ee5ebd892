//! Changes sealcache makes to an upstream reply before the client sees it.

use bytes::Bytes;

use super::Context;
use crate::backend::{Backend, Reply, Request};
use crate::config::DecryptFailure;
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, text_of, verbatim_text};
use crate::values::OpenPlan;

/// CONFIG parameters whose values are upstream secrets: never shown to clients.
const SECRET_PARAMETERS: &[&str] = &[
    "requirepass",
    "masterauth",
    "masteruser",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
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
    /// The reply to a command queued in MULTI whose values come back in
    /// EXEC's reply: only `+QUEUED` or an error may reach the client.
    Queued,
}

impl Post {
    pub fn apply(self, reply: Reply, ctx: &Context) -> Reply {
        match self {
            Post::None => reply,
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
                    for failure in &opened.failures {
                        if let Some(args) = failure.delete_command() {
                            // Fire and forget: the reply to the client does not wait for the cleanup.
                            let (request, _) = Request::new(args, plan.db);
                            let _ = ctx.backend.lane(0).send(request);
                        }
                    }
                }
                Reply::new(opened.frame)
            }
            Post::ProxyInfo => match text_of(&reply.frame) {
                Some(text) => {
                    let mut text = String::from_utf8_lossy(text).into_owned();
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

fn is_secret(name: &Frame) -> bool {
    text_of(name).is_some_and(|n| {
        SECRET_PARAMETERS
            .iter()
            .any(|s| n.eq_ignore_ascii_case(s.as_bytes()))
    })
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
