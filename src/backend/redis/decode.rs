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
            .map(|r| r.map(|(frame, _, raw)| (frame, Some(raw))))
            .map_err(|e| format!("malformed reply from the upstream: {}", e.details())),
        Protocol::Resp2 => redis_protocol::resp2::decode::decode_bytes_mut(buf)
            .map(|r| r.map(|(frame, _, _)| (from_resp2(frame), None)))
            .map_err(|e| format!("malformed reply from the upstream: {}", e.details())),
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
