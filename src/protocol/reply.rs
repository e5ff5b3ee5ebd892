//! Replies: building sealcache's own frames and encoding any reply in the
//! client's protocol. Internally every reply is a RESP3 frame (the upstream
//! speaks RESP3); RESP2 clients get Redis's RESP2 rendering of it.

use bytes::{BufMut, Bytes, BytesMut};
use redis_protocol::resp2::encode::extend_encode as resp2_encode;
use redis_protocol::resp2::types::BytesFrame as Resp2Frame;
use redis_protocol::resp3::encode::complete::extend_encode as resp3_encode;
use redis_protocol::resp3::types::{FrameMap, VerbatimStringFormat};

use super::{Frame, Protocol};

/// How RESP3's single null maps onto RESP2's two (`$-1` and `*-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullStyle {
    /// Null bulk string everywhere (most commands).
    Bulk,
    /// A top-level null is a null array (blocking pops timing out, EXEC aborted…).
    ArrayAtTop,
    /// Nulls inside the top-level array are null arrays (GEOPOS).
    ArrayInElements,
}

/// Encodes `frame` for a client speaking `proto`. `raw` is the frame's exact
/// upstream bytes (RESP3) when unchanged, forwarded as-is when they are valid
/// in the client's protocol.
pub fn encode(
    out: &mut BytesMut,
    frame: &Frame,
    raw: Option<&Bytes>,
    proto: Protocol,
    nulls: NullStyle,
) {
    match proto {
        Protocol::Resp3 => match raw {
            Some(raw) => out.extend_from_slice(raw),
            None => encode_resp3(out, frame),
        },
        Protocol::Resp2 => match raw {
            Some(raw) if resp2_compatible(frame) => out.extend_from_slice(raw),
            _ => encode_resp2(out, frame, nulls),
        },
    }
}

fn encode_resp3(out: &mut BytesMut, frame: &Frame) {
    // redis-protocol prints doubles in Rust's shortest form; Redis 7.0
    // prints them as `%.17g`, so doubles (and the aggregates holding them)
    // are written here.
    let header = |out: &mut BytesMut, kind: u8, len: usize| {
        out.put_u8(kind);
        out.put_slice(len.to_string().as_bytes());
        out.put_slice(b"\r\n");
    };
    match frame {
        Frame::Double {
            data,
            attributes: None,
        } => {
            out.put_u8(b',');
            out.put_slice(double_text(*data).as_bytes());
            out.put_slice(b"\r\n");
        }
        Frame::Array {
            data,
            attributes: None,
        }
        | Frame::Push {
            data,
            attributes: None,
        } if data.iter().any(has_double) => {
            header(
                out,
                if matches!(frame, Frame::Push { .. }) {
                    b'>'
                } else {
                    b'*'
                },
                data.len(),
            );
            data.iter().for_each(|item| encode_resp3(out, item));
        }
        Frame::Map {
            data,
            attributes: None,
        } if data.iter().any(|(k, v)| has_double(k) || has_double(v)) => {
            header(out, b'%', data.len());
            for (k, v) in data {
                encode_resp3(out, k);
                encode_resp3(out, v);
            }
        }
        // Encoding a well-formed frame into a growable buffer cannot fail.
        _ => {
            let _ = resp3_encode(out, frame, false);
        }
    }
}

fn has_double(frame: &Frame) -> bool {
    match frame {
        Frame::Double { .. } => true,
        Frame::Array { data, .. } | Frame::Push { data, .. } => data.iter().any(has_double),
        Frame::Map { data, .. } => data.iter().any(|(k, v)| has_double(k) || has_double(v)),
        _ => false,
    }
}

/// Whether the RESP3 bytes of `frame` are also valid RESP2 with the same meaning.
pub fn resp2_compatible(frame: &Frame) -> bool {
    match frame {
        Frame::BlobString {
            attributes: None, ..
        }
        | Frame::SimpleString {
            attributes: None, ..
        }
        | Frame::SimpleError {
            attributes: None, ..
        }
        | Frame::Number {
            attributes: None, ..
        } => true,
        Frame::Array {
            data,
            attributes: None,
        } => data.iter().all(resp2_compatible),
        _ => false,
    }
}

/// RESP2 rendering, as Redis renders a reply for a RESP2 client.
pub fn encode_resp2(out: &mut BytesMut, frame: &Frame, nulls: NullStyle) {
    match frame {
        Frame::Null => match nulls {
            NullStyle::ArrayAtTop => out.put_slice(b"*-1\r\n"),
            _ => out.put_slice(b"$-1\r\n"),
        },
        Frame::Array { data, .. } | Frame::Push { data, .. } => {
            array_header(out, data.len());
            let inner = if nulls == NullStyle::ArrayInElements {
                NullStyle::ArrayAtTop
            } else {
                NullStyle::Bulk
            };
            for item in data {
                encode_resp2(out, item, inner);
            }
        }
        Frame::Set { data, .. } => {
            array_header(out, data.len());
            for item in data {
                encode_resp2(out, item, NullStyle::Bulk);
            }
        }
        Frame::Map { data, .. } => {
            array_header(out, data.len() * 2);
            for (k, v) in data {
                encode_resp2(out, k, NullStyle::Bulk);
                encode_resp2(out, v, NullStyle::Bulk);
            }
        }
        leaf => {
            let _ = resp2_encode(out, &resp2_leaf(leaf), false);
        }
    }
}

fn array_header(out: &mut BytesMut, len: usize) {
    out.put_u8(b'*');
    out.put_slice(len.to_string().as_bytes());
    out.put_slice(b"\r\n");
}

fn resp2_leaf(frame: &Frame) -> Resp2Frame {
    match frame {
        Frame::BlobString { data, .. } | Frame::BigNumber { data, .. } => {
            Resp2Frame::BulkString(data.clone())
        }
        Frame::VerbatimString { data, .. } => Resp2Frame::BulkString(data.clone()),
        Frame::SimpleString { data, .. } => Resp2Frame::SimpleString(data.clone()),
        Frame::SimpleError { data, .. } => Resp2Frame::Error(data.clone()),
        Frame::BlobError { data, .. } => {
            Resp2Frame::Error(String::from_utf8_lossy(data).into_owned().into())
        }
        Frame::Number { data, .. } => Resp2Frame::Integer(*data),
        Frame::Boolean { data, .. } => Resp2Frame::Integer(i64::from(*data)),
        Frame::Double { data, .. } => Resp2Frame::BulkString(Bytes::from(double_text(*data))),
        Frame::Null => Resp2Frame::Null,
        // Aggregates are handled by the caller; HELLO and chunks never reach clients.
        _ => Resp2Frame::Null,
    }
}

/// A double as redis-server 7.0 prints it (RESP2 bulk and RESP3 `,`):
/// `inf`, `-inf`, else `%.17g` (`1.1000000000000001`, `3`, `1e+17`).
pub fn double_text(d: f64) -> String {
    crate::semantics::number::format_double(d)
}

// --- Building sealcache's own replies -------------------------------------------------------

pub fn ok() -> Frame {
    simple("OK")
}

pub fn simple(s: &'static str) -> Frame {
    Frame::SimpleString {
        data: Bytes::from_static(s.as_bytes()),
        attributes: None,
    }
}

/// An error reply; `msg` starts with its code (`ERR`, `NOAUTH`, `WRONGPASS`…).
pub fn error(msg: impl Into<String>) -> Frame {
    Frame::SimpleError {
        data: msg.into().into(),
        attributes: None,
    }
}

pub fn bulk(data: impl Into<Bytes>) -> Frame {
    Frame::BlobString {
        data: data.into(),
        attributes: None,
    }
}

pub fn int(n: i64) -> Frame {
    Frame::Number {
        data: n,
        attributes: None,
    }
}

pub fn null() -> Frame {
    Frame::Null
}

pub fn array(items: Vec<Frame>) -> Frame {
    Frame::Array {
        data: items,
        attributes: None,
    }
}

/// A map in RESP3, a flat key/value array in RESP2 (done by the encoder).
pub fn map(pairs: Vec<(Frame, Frame)>) -> Frame {
    let mut data = FrameMap::with_capacity(pairs.len());
    data.extend(pairs);
    Frame::Map {
        data,
        attributes: None,
    }
}

/// Text shown verbatim in RESP3 (INFO), a bulk string in RESP2.
pub fn verbatim_text(text: String) -> Frame {
    Frame::VerbatimString {
        data: Bytes::from(text),
        format: VerbatimStringFormat::Text,
        attributes: None,
    }
}

/// The text of a bulk, simple or verbatim string reply.
pub fn text_of(frame: &Frame) -> Option<&[u8]> {
    match frame {
        Frame::BlobString { data, .. }
        | Frame::SimpleString { data, .. }
        | Frame::VerbatimString { data, .. } => Some(data),
        _ => None,
    }
}

/// The message of an error reply.
pub fn error_text(frame: &Frame) -> Option<String> {
    match frame {
        Frame::SimpleError { data, .. } => Some(data.to_string()),
        Frame::BlobError { data, .. } => Some(String::from_utf8_lossy(data).into_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp2(frame: &Frame, nulls: NullStyle) -> String {
        let mut out = BytesMut::new();
        encode(&mut out, frame, None, Protocol::Resp2, nulls);
        String::from_utf8(out.to_vec()).unwrap()
    }

    fn resp3(frame: &Frame) -> String {
        let mut out = BytesMut::new();
        encode(&mut out, frame, None, Protocol::Resp3, NullStyle::Bulk);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn maps_and_doubles_become_resp2_arrays_and_bulks() {
        let m = map(vec![(
            bulk("a"),
            Frame::Double {
                data: 1.5,
                attributes: None,
            },
        )]);
        assert_eq!(resp2(&m, NullStyle::Bulk), "*2\r\n$1\r\na\r\n$3\r\n1.5\r\n");
        assert_eq!(resp3(&m), "%1\r\n$1\r\na\r\n,1.5\r\n");
        let score = Frame::Double {
            data: 1.1,
            attributes: None,
        };
        assert_eq!(
            resp2(&score, NullStyle::Bulk),
            "$18\r\n1.1000000000000001\r\n"
        );
        assert_eq!(resp3(&array(vec![score])), "*1\r\n,1.1000000000000001\r\n");
        let b = Frame::Boolean {
            data: true,
            attributes: None,
        };
        assert_eq!(resp2(&b, NullStyle::Bulk), ":1\r\n");
    }

    #[test]
    fn nulls_follow_the_command_style() {
        assert_eq!(resp2(&null(), NullStyle::Bulk), "$-1\r\n");
        assert_eq!(resp2(&null(), NullStyle::ArrayAtTop), "*-1\r\n");
        let geopos = array(vec![null()]);
        assert_eq!(resp2(&geopos, NullStyle::ArrayInElements), "*1\r\n*-1\r\n");
        assert_eq!(
            resp2(&array(vec![null()]), NullStyle::ArrayAtTop),
            "*1\r\n$-1\r\n"
        );
        assert_eq!(resp3(&null()), "_\r\n");
    }

    #[test]
    fn raw_bytes_pass_when_compatible() {
        let raw = Bytes::from_static(b"$1\r\nx\r\n");
        let mut out = BytesMut::new();
        encode(
            &mut out,
            &bulk("x"),
            Some(&raw),
            Protocol::Resp2,
            NullStyle::Bulk,
        );
        assert_eq!(&out[..], &raw[..]);
        let raw_map = Bytes::from_static(b"%1\r\n$1\r\na\r\n$1\r\nb\r\n");
        let mut out = BytesMut::new();
        encode(
            &mut out,
            &map(vec![(bulk("a"), bulk("b"))]),
            Some(&raw_map),
            Protocol::Resp2,
            NullStyle::Bulk,
        );
        assert_eq!(&out[..], b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    }
}
