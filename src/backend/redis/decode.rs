//! Decoding upstream replies: RESP3 normally, RESP2 from servers without HELLO
//! (converted to the RESP3 frame type used everywhere inside sealcache).
//!
//! Each reply's extent is found first by [`ReplyScanner`] (iterative, within
//! `upstream.max_reply_*`), then exactly those bytes are decoded. A reply that
//! redis-protocol cannot represent (a RESP3 set holding maps…) or that is over
//! a limit fails alone: the connection, and every other command on it, goes on.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::types::BytesFrame as Resp2Frame;

use crate::protocol::scan::{LimitExceeded, ReplyLimits, ReplyScanner, Scanned};
use crate::protocol::{Frame, Protocol, reply};

pub struct UpstreamDecoder {
    protocol: Protocol,
    scanner: ReplyScanner,
}

impl UpstreamDecoder {
    /// A decoder with the default reply limits.
    pub fn new(protocol: Protocol) -> Self {
        Self::with_limits(protocol, ReplyLimits::default())
    }

    pub fn with_limits(protocol: Protocol, limits: ReplyLimits) -> Self {
        UpstreamDecoder {
            protocol,
            scanner: ReplyScanner::new(limits, protocol == Protocol::Resp3),
        }
    }

    /// The next reply in `buf`, `None` until one is complete (or while a reply
    /// over a limit is being discarded). `Err` means the stream is not RESP:
    /// the connection has lost its place and must close.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Upstream>, String> {
        let raw = match self.scanner.next(buf).map_err(|e| e.to_string())? {
            None => return Ok(None),
            Some(Scanned::TooLarge { exceeded, push }) => {
                return Ok(Some(Upstream::TooLarge { exceeded, push }));
            }
            Some(Scanned::Reply(raw)) => raw,
        };
        let decoded = match self.protocol {
            Protocol::Resp3 if let Some(frame) = decode_plain(&raw) => Ok(Some((frame, raw.len()))),
            Protocol::Resp3 => redis_protocol::resp3::decode::complete::decode_bytes(&raw)
                .map(|found| {
                    found.map(|(mut frame, len)| {
                        restore_map_order(&mut frame);
                        (frame, len)
                    })
                })
                .map_err(|e| e.details().to_string()),
            Protocol::Resp2 => redis_protocol::resp2::decode::decode_bytes(&raw)
                .map(|found| found.map(|(frame, len)| (from_resp2(frame), len)))
                .map_err(|e| e.details().to_string()),
        };
        Ok(Some(match decoded {
            Ok(Some((frame, len))) if len == raw.len() => Upstream::Frame {
                frame,
                // RESP2 bytes are not what a RESP3 client expects: re-encoded instead.
                raw: (self.protocol == Protocol::Resp3).then_some(raw),
            },
            Ok(_) => Upstream::Undecodable {
                raw,
                reason: "the decoder disagrees with the scanner on its length".into(),
            },
            Err(reason) => Upstream::Undecodable { raw, reason },
        }))
    }
}

/// One reply read from the upstream.
#[derive(Debug)]
pub enum Upstream {
    /// A decoded reply, with its exact bytes when the upstream speaks RESP3.
    Frame { frame: Frame, raw: Option<Bytes> },
    /// A whole reply redis-protocol cannot represent: its bytes and why.
    Undecodable { raw: Bytes, reason: String },
    /// A reply over a limit, discarded as it arrives.
    TooLarge { exceeded: LimitExceeded, push: bool },
}

impl Upstream {
    /// Out-of-band data (a RESP3 push), which answers no command.
    pub fn is_push(&self) -> bool {
        match self {
            Upstream::Frame { frame, .. } => matches!(frame, Frame::Push { .. }),
            Upstream::Undecodable { raw, .. } => raw.first() == Some(&b'>'),
            Upstream::TooLarge { push, .. } => *push,
        }
    }
}

/// One complete reply from `buf`, with its raw RESP3 bytes (`None` for RESP2
/// upstreams). For readers that need a frame (the handshake, Pub/Sub): a reply
/// that cannot be decoded or is over a limit is an error.
pub fn decode_reply(
    decoder: &mut UpstreamDecoder,
    buf: &mut BytesMut,
) -> Result<Option<(Frame, Option<Bytes>)>, String> {
    match decoder.next(buf)? {
        None => Ok(None),
        Some(Upstream::Frame { frame, raw }) => Ok(Some((frame, raw))),
        Some(Upstream::Undecodable { reason, .. }) => Err(format!(
            "the upstream sent a reply sealcache cannot decode: {reason}"
        )),
        Some(Upstream::TooLarge { exceeded, .. }) => {
            Err(format!("the upstream's reply {exceeded}"))
        }
    }
}

/// The commonest replies — bulk strings, nulls and arrays of them, nested or
/// not (LRANGE, MGET, XRANGE, a GET's value) — decoded in one pass, each bulk
/// a slice of `raw`; `None` for anything else (or anything unusual in these),
/// which redis-protocol decodes. Replies of hundreds of elements spend less
/// than half the time here that redis-protocol's two passes take, and they
/// decode to the same frames (a property test below compares the two).
fn decode_plain(raw: &Bytes) -> Option<Frame> {
    let mut at = 0;
    let frame = plain_frame(raw, &mut at)?;
    (at == raw.len()).then_some(frame)
}

/// The frame at `raw[*at..]`, with `*at` moved past it. Nesting is bounded:
/// the scanner has already checked the reply against `upstream.max_reply_depth`.
fn plain_frame(raw: &Bytes, at: &mut usize) -> Option<Frame> {
    let kind = *raw.get(*at)?;
    let line_start = *at + 1;
    let cr = line_start + memchr::memchr(b'\r', raw.get(line_start..)?)?;
    if raw.get(cr + 1) != Some(&b'\n') {
        return None;
    }
    let line = &raw[line_start..cr];
    *at = cr + 2;
    match kind {
        b'$' => {
            let start = *at;
            let end = start.checked_add(plain_len(line)?)?;
            if raw.get(end..end.checked_add(2)?)? != b"\r\n" {
                return None;
            }
            *at = end + 2;
            Some(Frame::BlobString {
                data: raw.slice(start..end),
                attributes: None,
            })
        }
        b'*' => {
            let n = plain_len(line)?;
            // Every element takes at least three bytes: no allocation beyond the reply.
            let mut data = Vec::with_capacity(n.min((raw.len() - *at) / 3));
            for _ in 0..n {
                data.push(plain_frame(raw, at)?);
            }
            Some(Frame::Array {
                data,
                attributes: None,
            })
        }
        b'_' if line.is_empty() => Some(Frame::Null),
        _ => None,
    }
}

/// A length of decimal digits only (no sign, no streaming `?`).
fn plain_len(line: &[u8]) -> Option<usize> {
    if line.is_empty() || line.len() > 18 || !line.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(line.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0')))
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
        Resp2Frame::Error(data) => reply::error(data.to_string()),
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
    use proptest::prelude::*;

    /// Replies of the shapes `decode_plain` takes, and a few it leaves.
    fn frame() -> impl Strategy<Value = Frame> {
        let leaf = prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(|d| Frame::BlobString {
                data: d.into(),
                attributes: None,
            }),
            1 => Just(Frame::Null),
            1 => any::<i64>().prop_map(reply::int),
            1 => Just(reply::simple("OK")),
        ];
        leaf.prop_recursive(3, 40, 8, |inner| {
            proptest::collection::vec(inner, 0..8).prop_map(reply::array)
        })
    }

    fn full_decode(raw: &[u8]) -> Option<Frame> {
        match redis_protocol::resp3::decode::complete::decode_bytes(&Bytes::copy_from_slice(raw)) {
            Ok(Some((frame, len))) if len == raw.len() => Some(frame),
            _ => None,
        }
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn the_one_pass_decoder_agrees_with_redis_protocol(frame in frame()) {
            let mut raw = BytesMut::new();
            redis_protocol::resp3::encode::complete::extend_encode(&mut raw, &frame, false).unwrap();
            let raw = raw.freeze();
            fn plain(frame: &Frame) -> bool {
                match frame {
                    Frame::BlobString { .. } | Frame::Null => true,
                    Frame::Array { data, .. } => data.iter().all(plain),
                    _ => false,
                }
            }
            let decoded = decode_plain(&raw);
            prop_assert_eq!(decoded.is_some(), plain(&frame), "taken exactly when plain");
            if let Some(decoded) = decoded {
                prop_assert_eq!(Some(decoded), full_decode(&raw));
            }
        }

        #[test]
        fn the_one_pass_decoder_takes_nothing_redis_protocol_reads_otherwise(
            frame in frame(),
            cut in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let mut raw = BytesMut::new();
            redis_protocol::resp3::encode::complete::extend_encode(&mut raw, &frame, false).unwrap();
            let mut raw = raw.to_vec();
            let at = cut % raw.len();
            raw[at] = byte;
            if let Some(plain) = decode_plain(&Bytes::from(raw.clone())) {
                prop_assert_eq!(Some(plain), full_decode(&raw));
            }
        }
    }

    #[test]
    fn a_reply_redis_protocol_cannot_build_fails_alone() {
        // COMMAND DOCS-like: a set holding a map, between two ordinary replies.
        let mut buf = BytesMut::from(&b"+OK\r\n~1\r\n%1\r\n+summary\r\n+x\r\n:7\r\n"[..]);
        let mut decoder = UpstreamDecoder::new(Protocol::Resp3);
        assert!(matches!(
            decoder.next(&mut buf).unwrap(),
            Some(Upstream::Frame { .. })
        ));
        match decoder.next(&mut buf).unwrap() {
            Some(Upstream::Undecodable { raw, reason }) => {
                assert_eq!(&raw[..], b"~1\r\n%1\r\n+summary\r\n+x\r\n");
                assert!(reason.contains("hash key"), "{reason}");
            }
            other => panic!("expected an undecodable reply, got {other:?}"),
        }
        let Some(Upstream::Frame { frame, .. }) = decoder.next(&mut buf).unwrap() else {
            panic!("the next reply decodes");
        };
        assert_eq!(frame, reply::int(7));
    }

    #[test]
    fn a_reply_over_a_limit_is_reported_then_skipped() {
        let limits = ReplyLimits {
            max_depth: 3,
            ..ReplyLimits::default()
        };
        let mut decoder = UpstreamDecoder::with_limits(Protocol::Resp3, limits);
        let mut buf = BytesMut::from(
            &b"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n>1\r\n*1\r\n*1\r\n*1\r\n+x\r\n:2\r\n"[..],
        );
        let first = decoder.next(&mut buf).unwrap().unwrap();
        assert!(
            matches!(
                first,
                Upstream::TooLarge {
                    exceeded: LimitExceeded::Depth { limit: 3 },
                    ..
                }
            ) && !first.is_push()
        );
        let second = decoder.next(&mut buf).unwrap().unwrap();
        assert!(second.is_push(), "{second:?}");
        assert!(matches!(
            decoder.next(&mut buf).unwrap(),
            Some(Upstream::Frame {
                frame: Frame::Number { data: 2, .. },
                ..
            })
        ));
        // Readers that need frames (handshake, Pub/Sub) get an error instead.
        let mut buf = BytesMut::from(&b"~1\r\n*0\r\n"[..]);
        assert!(decode_reply(&mut UpstreamDecoder::new(Protocol::Resp3), &mut buf).is_err());
    }

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
