//! Decoding upstream replies: RESP3 normally, RESP2 from servers without HELLO
//! (converted to the RESP3 frame type used everywhere inside sealcache).

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::types::BytesFrame as Resp2Frame;

use crate::protocol::{Frame, Protocol};

pub struct UpstreamDecoder {
    protocol: Protocol,
}

impl UpstreamDecoder {
    pub fn new(protocol: Protocol) -> Self {
        UpstreamDecoder { protocol }
    }
}

/// One complete reply from `buf`, with its raw RESP3 bytes (`None` for RESP2 upstreams).
pub fn decode_reply(
    decoder: &mut UpstreamDecoder,
    buf: &mut BytesMut,
) -> Result<Option<(Frame, Option<Bytes>)>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    match decoder.protocol {
        Protocol::Resp3 => redis_protocol::resp3::decode::complete::decode_bytes_mut(buf)
            .map(|r| {
                r.map(|(mut frame, _, raw)| {
                    restore_map_order(&mut frame);
                    (frame, Some(raw))
                })
            })
            .map_err(|e| format!("malformed reply from the upstream: {}", e.details())),
        Protocol::Resp2 => redis_protocol::resp2::decode::decode_bytes_mut(buf)
            .map(|r| r.map(|(frame, _, _)| (from_resp2(frame), None)))
            .map_err(|e| format!("malformed reply from the upstream: {}", e.details())),
    }
}

/// redis-protocol 6 builds RESP3 maps from their last pair to their first;
/// put them back in the server's order (XREAD's streams, HGETALL, INFO maps…).
fn restore_map_order(frame: &mut Frame) {
    match frame {
        Frame::Map { data, .. } => {
            data.reverse();
            data.values_mut().for_each(restore_map_order);
        }
        Frame::Array { data, .. } | Frame::Push { data, .. } => {
            data.iter_mut().for_each(restore_map_order)
        }
        _ => {}
    }
}

fn from_resp2(frame: Resp2Frame) -> Frame {
    match frame {
        Resp2Frame::SimpleString(data) => Frame::SimpleString {
            data,
            attributes: None,
        },
        Resp2Frame::Error(data) => Frame::SimpleError {
            data,
            attributes: None,
        },
        Resp2Frame::Integer(data) => Frame::Number {
            data,
            attributes: None,
        },
        Resp2Frame::BulkString(data) => Frame::BlobString {
            data,
            attributes: None,
        },
        Resp2Frame::Array(items) => Frame::Array {
            data: items.into_iter().map(from_resp2).collect(),
            attributes: None,
        },
        Resp2Frame::Null => Frame::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::reply::text_of;

    #[test]
    fn maps_keep_the_servers_order() {
        let mut buf = BytesMut::from(&b"%3\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n%2\r\n$1\r\nx\r\n:1\r\n$1\r\ny\r\n:2\r\n$1\r\nc\r\n:3\r\n"[..]);
        let (frame, _) = decode_reply(&mut UpstreamDecoder::new(Protocol::Resp3), &mut buf)
            .unwrap()
            .unwrap();
        let Frame::Map { data, .. } = frame else {
            panic!("map expected")
        };
        let keys: Vec<&[u8]> = data.keys().filter_map(text_of).collect();
        assert_eq!(keys, vec![&b"a"[..], b"b", b"c"]);
        let Some(Frame::Map { data: inner, .. }) = data.values().nth(1) else {
            panic!("inner map expected")
        };
        let inner: Vec<&[u8]> = inner.keys().filter_map(text_of).collect();
        assert_eq!(inner, vec![&b"x"[..], b"y"]);
    }
}
