//! Replies: building sealcache's own frames and encoding any reply in the
//! client's protocol. Internally every reply is a RESP3 frame (the upstream
//! speaks RESP3); RESP2 clients get Redis's RESP2 rendering of it.

use bytes::{BufMut, Bytes, BytesMut};
use redis_protocol::resp2::encode::extend_encode as resp2_encode;
use redis_protocol::resp2::types::BytesFrame as Resp2Frame;
use redis_protocol::resp3::encode::complete::extend_encode as resp3_encode;
use redis_protocol::resp3::types::{FrameMap, VerbatimStringFormat};

use super::{Frame, Protocol, transcode};

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

/// Encodes a reply the decoder could not represent, from its RESP3 bytes:
/// as they are for RESP3 clients, transcoded for RESP2 ones (or an error
/// saying why they cannot be shown).
pub fn encode_undecoded(out: &mut BytesMut, raw: &[u8], proto: Protocol, nulls: NullStyle) {
    match proto {
        Protocol::Resp3 => out.extend_from_slice(raw),
        Protocol::Resp2 => {
            if let Err(e) = transcode::resp3_to_resp2(out, raw, nulls) {
                let msg = format!(
                    "ERR sealcache: the upstream's reply cannot be rendered in RESP2 ({e}); use HELLO 3 for this command"
                );
                encode_resp2(out, &error(msg), NullStyle::Bulk);
            }
        }
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

/// An array whose elements have null styles of their own (EXEC's reply:
/// one per queued command) for a RESP2 client; anything else, such as an
/// aborted EXEC's null, with `nulls`.
pub fn encode_resp2_each(out: &mut BytesMut, frame: &Frame, each: &[NullStyle], nulls: NullStyle) {
    match frame {
        Frame::Array { data, .. } if data.len() == each.len() => {
            array_header(out, data.len());
            for (item, nulls) in data.iter().zip(each) {
                encode_resp2(out, item, *nulls);
            }
        }
        other => encode_resp2(out, other, nulls),
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
        // A blob error may hold CR/LF; RESP2's one-line error must not.
        Frame::BlobError { data, .. } => {
            Resp2Frame::Error(one_line(&String::from_utf8_lossy(data)).into())
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
///
/// The only way sealcache builds an error frame (a unit test below keeps it
/// so): messages echo client bytes (command names, key names, options), and
/// a CR or LF among them would end the error line early and let the rest
/// pass for a reply of its own. Like redis-server (`rejectCommandFormat`,
/// `addReplyErrorFormat`), each CR and LF becomes a space.
pub fn error(msg: impl Into<String>) -> Frame {
    Frame::SimpleError {
        data: one_line(&msg.into()).into(),
        attributes: None,
    }
}

/// `text` with each CR and LF replaced by a space, so it fits one RESP line.
pub fn one_line(text: &str) -> String {
    if text.contains(['\r', '\n']) {
        text.replace(['\r', '\n'], " ")
    } else {
        text.to_owned()
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

/// A RESP3 set (an array in RESP2).
pub fn set_frame(items: Vec<Frame>) -> Frame {
    Frame::Set {
        data: items.into_iter().collect(),
        attributes: None,
    }
}

/// A double (RESP3 `,`; Redis's `%.17g` text in RESP2).
pub fn double(d: f64) -> Frame {
    Frame::Double {
        data: d,
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

/// A frame's type, for failure messages (never its contents).
pub fn kind_name(frame: &Frame) -> &'static str {
    match frame {
        Frame::BlobString { .. } => "a bulk string",
        Frame::BlobError { .. } | Frame::SimpleError { .. } => "an error",
        Frame::SimpleString { .. } => "a simple string",
        Frame::Number { .. } => "an integer",
        Frame::Double { .. } => "a double",
        Frame::Boolean { .. } => "a boolean",
        Frame::Null => "nil",
        Frame::Array { .. } => "an array",
        Frame::Map { .. } => "a map",
        Frame::Set { .. } => "a set",
        Frame::Push { .. } => "a push",
        Frame::VerbatimString { .. } => "a verbatim string",
        Frame::BigNumber { .. } => "a big number",
        _ => "an unexpected frame",
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

    /// EXEC: `GET missing`, `LPOP missing 2`, `BLPOP nope 0` and GEOPOS
    /// each keep their own RESP2 nulls inside the array.
    #[test]
    fn exec_elements_keep_their_commands_null_styles() {
        let exec = array(vec![null(), null(), null(), array(vec![null()])]);
        let each = [
            NullStyle::Bulk,
            NullStyle::ArrayAtTop,
            NullStyle::ArrayAtTop,
            NullStyle::ArrayInElements,
        ];
        let mut out = BytesMut::new();
        encode_resp2_each(&mut out, &exec, &each, NullStyle::ArrayAtTop);
        assert_eq!(&out[..], b"*4\r\n$-1\r\n*-1\r\n*-1\r\n*1\r\n*-1\r\n");
        // An aborted EXEC is a null array.
        let mut out = BytesMut::new();
        encode_resp2_each(&mut out, &null(), &each, NullStyle::ArrayAtTop);
        assert_eq!(&out[..], b"*-1\r\n");
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
    fn doubles_print_as_printf_percent_17g() {
        // Expected values from C's printf("%.17g"), as Redis 7.0 replies.
        for (d, text) in [
            (0.1, "0.10000000000000001"),
            (1e20, "1e+20"),
            (1.5, "1.5"),
            (3.0, "3"),
            (1e-5, "1.0000000000000001e-05"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (-0.0, "-0"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (2.5e-4, "0.00025000000000000001"),
            (9.999999999999998e16, "99999999999999984"),
            (0.30000000000000004, "0.30000000000000004"),
            (-1234.5678, "-1234.5678"),
            (5e-324, "4.9406564584124654e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(double_text(d), text, "{d:?}");
        }
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
    fn error_text_never_spans_lines() {
        let frame = error("ERR unknown command 'FOO\r\n+INJECTED', with args beginning with: ");
        assert_eq!(
            resp3(&frame),
            "-ERR unknown command 'FOO  +INJECTED', with args beginning with: \r\n"
        );
        assert_eq!(
            resp2(&frame, NullStyle::Bulk),
            "-ERR unknown command 'FOO  +INJECTED', with args beginning with: \r\n"
        );
        let blob = Frame::BlobError {
            data: Bytes::from_static(b"ERR a\nb"),
            attributes: None,
        };
        assert_eq!(resp2(&blob, NullStyle::Bulk), "-ERR a b\r\n");
    }

    /// Error frames come from [`error`] only: any other construction of a
    /// `SimpleError` in the crate's source fails this test.
    #[test]
    fn error_frames_are_built_only_by_reply_error() {
        fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("read src/") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    sources(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        assert!(files.len() > 20, "found only {} source files", files.len());
        let mut offenders = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read source");
            for (at, _) in text.match_indices(concat!("SimpleError", " {")) {
                // A construction gives fields values (`data: …`); a pattern
                // binds them (`{ data, .. }`) or ignores them (`{ .. }`).
                let body: String = text[at..].chars().take(120).collect();
                let fields = body
                    .split_once('{')
                    .map_or("", |(_, b)| b.split('}').next().unwrap_or(""));
                let builds = fields.contains(':') && !fields.contains("..");
                // Inside `fn error` itself: the nearest function before it is `error`.
                let enclosing = text[..at].rfind("fn ").map(|f| &text[f..]);
                let allowed = file.ends_with("protocol/reply.rs")
                    && enclosing.is_some_and(|f| f.starts_with("fn error("));
                if builds && !allowed {
                    offenders.push(format!("{}: {body}", file.display()));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "build error frames with protocol::reply::error, which keeps them on one line:\n{}",
            offenders.join("\n")
        );
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
