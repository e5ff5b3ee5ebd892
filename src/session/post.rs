//! Changes sealcache makes to an upstream reply before the client sees it.

use bytes::Bytes;

use super::Context;
use crate::backend::Reply;
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, text_of, verbatim_text};

/// CONFIG parameters whose values are upstream secrets: never shown to clients.
const SECRET_PARAMETERS: &[&str] = &[
    "requirepass",
    "masterauth",
    "masteruser",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    None,
    /// INFO: append the `# Proxy` section.
    ProxyInfo,
    /// CONFIG GET: drop upstream secrets.
    RedactConfig,
}

impl Post {
    pub fn apply(self, reply: Reply, ctx: &Context) -> Reply {
        match self {
            Post::None => reply,
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
