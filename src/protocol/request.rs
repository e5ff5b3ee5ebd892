//! Client request decoding. redis-protocol frames the RESP arrays; this codec
//! adds what it lacks: Redis's size limits (checked on the headers before a
//! frame is buffered whole), with Redis's much tighter ones before the client
//! has authenticated, and inline commands (`PING\r\n`).

use bytes::{Buf, Bytes, BytesMut};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame as Resp2Frame;
use tokio_util::codec::Decoder;

/// Longest inline command or RESP header line accepted (Redis's PROTO_INLINE_MAX_SIZE).
pub const MAX_INLINE_LEN: usize = 64 * 1024;
/// Before authentication, redis-server (since 6.2.6, CVE-2021-32675) accepts
/// at most 10 arguments of at most 16 KiB each, so an unauthenticated client
/// cannot make it buffer much. The same caps here bound what sealcache
/// buffers per unauthenticated connection to one such frame plus one read.
pub const UNAUTHENTICATED_MAX_MULTIBULK_LEN: usize = 10;
pub const UNAUTHENTICATED_MAX_BULK_LEN: usize = 16 * 1024;

/// The frame limits in force for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// `limits.max_bulk_len`.
    pub max_bulk_len: usize,
    /// `limits.max_multibulk_len`.
    pub max_multibulk_len: usize,
    /// Whether the client has authenticated; before, Redis's unauthenticated caps apply too.
    pub authenticated: bool,
}

/// One decoded client command: its arguments, name first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub args: Vec<Bytes>,
    /// The exact RESP bytes of an array request, forwarded as-is when unchanged.
    pub raw: Option<Bytes>,
}

/// A request stream error: the connection is answered `-ERR Protocol error: …` and closed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("Protocol error: {0}")]
    Protocol(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn protocol(msg: impl Into<String>) -> RequestError {
    RequestError::Protocol(msg.into())
}

/// Decodes client requests with limits on bulk and multibulk lengths.
#[derive(Debug)]
pub struct RequestCodec {
    limits: RequestLimits,
    /// Progress of the header scan over a partially received array, so a large
    /// frame arriving in many reads is scanned once, not once per read.
    scan: Option<Scan>,
}

#[derive(Debug, Clone, Copy)]
struct Scan {
    /// Offset of the next unscanned element header.
    pos: usize,
    /// Elements not yet scanned.
    remaining: usize,
}

impl RequestCodec {
    /// A codec for an authenticated client.
    pub fn new(max_bulk_len: usize, max_multibulk_len: usize) -> Self {
        Self::with_limits(RequestLimits {
            max_bulk_len,
            max_multibulk_len,
            authenticated: true,
        })
    }

    pub fn with_limits(limits: RequestLimits) -> Self {
        RequestCodec { limits, scan: None }
    }

    /// Switches limits between frames (after AUTH, and back on RESET).
    pub fn set_limits(&mut self, limits: RequestLimits) {
        self.limits = limits;
    }

    /// Walks the array's headers, enforcing the limits. Returns whether the
    /// whole frame is buffered, and `Some(0)` for an empty array (skipped as Redis does).
    fn scan_array(&mut self, src: &[u8]) -> Result<ScanResult, RequestError> {
        let mut scan = match self.scan {
            Some(scan) => scan,
            None => {
                let Some((line, next)) = read_line(src, 0)? else {
                    return Ok(ScanResult::Incomplete);
                };
                let count =
                    parse_int(&line[1..]).ok_or_else(|| protocol("invalid multibulk length"))?;
                if count > self.limits.max_multibulk_len as i64 {
                    return Err(protocol("invalid multibulk length"));
                }
                if !self.limits.authenticated && count > UNAUTHENTICATED_MAX_MULTIBULK_LEN as i64 {
                    return Err(protocol("unauthenticated multibulk length"));
                }
                if count <= 0 {
                    return Ok(ScanResult::Empty(next));
                }
                Scan {
                    pos: next,
                    remaining: count as usize,
                }
            }
        };
        while scan.remaining > 0 {
            let Some((line, next)) = read_line(src, scan.pos)? else {
                self.scan = Some(scan);
                return Ok(ScanResult::Incomplete);
            };
            if line.first() != Some(&b'$') {
                let got = line.first().map(|&b| b as char).unwrap_or(' ');
                return Err(protocol(format!("expected '$', got '{got}'")));
            }
            let len = parse_int(&line[1..])
                .filter(|&len| len >= 0 && len as usize <= self.limits.max_bulk_len)
                .ok_or_else(|| protocol("invalid bulk length"))?;
            if !self.limits.authenticated && len as usize > UNAUTHENTICATED_MAX_BULK_LEN {
                return Err(protocol("unauthenticated bulk length"));
            }
            let end = next + len as usize + 2;
            if src.len() < end {
                self.scan = Some(scan);
                return Ok(ScanResult::Incomplete);
            }
            if &src[end - 2..end] != b"\r\n" {
                return Err(protocol("bulk string not terminated by CRLF"));
            }
            scan = Scan {
                pos: end,
                remaining: scan.remaining - 1,
            };
        }
        self.scan = None;
        Ok(ScanResult::Complete)
    }
}

enum ScanResult {
    Incomplete,
    Complete,
    Empty(usize),
}

impl Decoder for RequestCodec {
    type Item = Request;
    type Error = RequestError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Request>, RequestError> {
        loop {
            if src.is_empty() {
                return Ok(None);
            }
            if src[0] != b'*' {
                match decode_inline(src)? {
                    Some(args) if args.is_empty() => continue,
                    other => return Ok(other.map(|args| Request { args, raw: None })),
                }
            }
            match self.scan_array(src)? {
                ScanResult::Incomplete => return Ok(None),
                ScanResult::Empty(len) => {
                    src.advance(len);
                    continue;
                }
                ScanResult::Complete => {}
            }
            let (frame, _, raw) = decode_bytes_mut(src)
                .map_err(|e| protocol(e.details().to_string()))?
                .ok_or_else(|| protocol("incomplete frame after a complete header scan"))?;
            let Resp2Frame::Array(items) = frame else {
                return Err(protocol("expected an array of bulk strings"));
            };
            let args = items
                .into_iter()
                .map(|item| match item {
                    Resp2Frame::BulkString(b) => Ok(b),
                    _ => Err(protocol("expected an array of bulk strings")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Some(Request {
                args,
                raw: Some(raw),
            }));
        }
    }
}

/// The line starting at `from`, without its terminator, and the offset after it.
fn read_line(src: &[u8], from: usize) -> Result<Option<(&[u8], usize)>, RequestError> {
    let rest = &src[from..];
    match memchr(b'\n', rest) {
        Some(i) => {
            let line = if i > 0 && rest[i - 1] == b'\r' {
                &rest[..i - 1]
            } else {
                &rest[..i]
            };
            if line.len() > MAX_INLINE_LEN {
                return Err(protocol("too big mbulk count string"));
            }
            Ok(Some((line, from + i + 1)))
        }
        None if rest.len() > MAX_INLINE_LEN => Err(protocol("too big mbulk count string")),
        None => Ok(None),
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

fn parse_int(digits: &[u8]) -> Option<i64> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Decodes one inline command line, split as Redis's `sdssplitargs` does.
fn decode_inline(src: &mut BytesMut) -> Result<Option<Vec<Bytes>>, RequestError> {
    let Some(newline) = memchr(b'\n', src) else {
        if src.len() > MAX_INLINE_LEN {
            return Err(protocol("too big inline request"));
        }
        return Ok(None);
    };
    let line = src.split_to(newline + 1);
    let mut line = &line[..newline];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    split_args(line)
        .map(Some)
        .ok_or_else(|| protocol("unbalanced quotes in request"))
}

/// Splits a line into arguments with Redis's quoting rules: "double quotes"
/// with \n \r \t \b \a \\ \" and \xHH escapes, 'single quotes' with \' only.
/// `None` for unbalanced quotes or a closing quote not followed by a space.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let c = line.get(i).copied();
            if in_double {
                match c {
                    None => return None,
                    Some(b'\\')
                        if line.get(i + 1) == Some(&b'x') && hex_pair(line, i + 2).is_some() =>
                    {
                        current.push(hex_pair(line, i + 2)?);
                        i += 3;
                    }
                    Some(b'\\') if i + 1 < line.len() => {
                        i += 1;
                        current.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if line.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace()) {
                            return None;
                        }
                        in_double = false;
                        i += 1;
                        break;
                    }
                    Some(c) => current.push(c),
                }
            } else if in_single {
                match c {
                    None => return None,
                    Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        current.push(b'\'');
                    }
                    Some(b'\'') => {
                        if line.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace()) {
                            return None;
                        }
                        in_single = false;
                        i += 1;
                        break;
                    }
                    Some(c) => current.push(c),
                }
            } else {
                match c {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(c) => current.push(c),
                }
            }
            i += 1;
        }
        debug_assert!(!in_double && !in_single);
        args.push(Bytes::from(current));
    }
}

fn hex_pair(line: &[u8], at: usize) -> Option<u8> {
    let hi = (*line.get(at)? as char).to_digit(16)?;
    let lo = (*line.get(at + 1)? as char).to_digit(16)?;
    Some((hi * 16 + lo) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(
        codec: &mut RequestCodec,
        input: &[u8],
    ) -> Result<Vec<Vec<String>>, RequestError> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(req) = codec.decode(&mut buf)? {
            out.push(
                req.args
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            );
        }
        Ok(out)
    }

    #[test]
    fn decodes_arrays_and_inline_commands() {
        let mut codec = RequestCodec::new(1024, 16);
        let got = decode_all(
            &mut codec,
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\r\n*0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![vec!["GET", "k"], vec!["PING"], vec!["set", "a", "b c"]]
        );
    }

    #[test]
    fn waits_for_partial_frames_and_resumes_the_scan() {
        let mut codec = RequestCodec::new(1024, 16);
        let full = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut buf = BytesMut::new();
        for chunk in full.chunks(3) {
            buf.extend_from_slice(chunk);
            if buf.len() < full.len() {
                assert!(codec.decode(&mut buf).unwrap().is_none());
            }
        }
        let req = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(req.args[2].as_ref(), b"hello");
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_oversized_and_malformed_frames() {
        let mut codec = RequestCodec::new(10, 4);
        let err = |codec: &mut RequestCodec, input: &[u8]| {
            decode_all(codec, input).unwrap_err().to_string()
        };
        assert_eq!(
            err(&mut codec, b"*1\r\n$11\r\n"),
            "Protocol error: invalid bulk length"
        );
        let mut codec = RequestCodec::new(10, 4);
        assert_eq!(
            err(&mut codec, b"*5\r\n"),
            "Protocol error: invalid multibulk length"
        );
        let mut codec = RequestCodec::new(10, 4);
        assert_eq!(
            err(&mut codec, b"*1\r\n:1\r\n"),
            "Protocol error: expected '$', got ':'"
        );
        let mut codec = RequestCodec::new(10, 4);
        assert_eq!(
            err(&mut codec, b"*x\r\n"),
            "Protocol error: invalid multibulk length"
        );
        let mut codec = RequestCodec::new(10, 4);
        assert_eq!(
            err(&mut codec, b"set \"a\r\n"),
            "Protocol error: unbalanced quotes in request"
        );
    }

    #[test]
    fn unauthenticated_clients_get_redis_caps_until_limits_switch() {
        let unauthenticated = RequestLimits {
            max_bulk_len: 1 << 20,
            max_multibulk_len: 1000,
            authenticated: false,
        };
        let err = |input: &[u8]| {
            let mut codec = RequestCodec::with_limits(unauthenticated);
            decode_all(&mut codec, input).unwrap_err().to_string()
        };
        assert_eq!(
            err(b"*11\r\n"),
            "Protocol error: unauthenticated multibulk length"
        );
        assert_eq!(
            err(b"*1\r\n$16385\r\n"),
            "Protocol error: unauthenticated bulk length"
        );
        // The absolute limits are checked first, as in Redis.
        assert_eq!(
            err(b"*1001\r\n"),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            err(b"*1\r\n$2000000\r\n"),
            "Protocol error: invalid bulk length"
        );

        let mut codec = RequestCodec::with_limits(unauthenticated);
        let big = "x".repeat(20_000);
        let wire = format!(
            "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n{big}\r\n",
            big.len()
        );
        let mut buf = BytesMut::from(wire.as_bytes());
        let auth = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(auth.args[0].as_ref(), b"AUTH");
        codec.set_limits(RequestLimits {
            authenticated: true,
            ..unauthenticated
        });
        let set = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(set.args[2].len(), 20_000);
    }

    #[test]
    fn inline_quoting_follows_redis() {
        let args = split_args(br#"a "b\x41\n" 'c\'d'"#).unwrap();
        assert_eq!(
            args,
            vec![Bytes::from("a"), Bytes::from("bA\n"), Bytes::from("c'd")]
        );
        assert!(split_args(br#""a"b"#).is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn encode(args: &[Vec<u8>]) -> Vec<u8> {
            let mut out = format!("*{}\r\n", args.len()).into_bytes();
            for a in args {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
            out
        }

        proptest! {
            /// Any byte soup gives frames or a protocol error, never a panic or a hang.
            #[test]
            fn arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..512)) {
                let mut codec = RequestCodec::new(64, 8);
                let mut buf = BytesMut::from(&input[..]);
                for _ in 0..input.len() + 1 {
                    match codec.decode(&mut buf) {
                        Ok(Some(_)) => continue,
                        Ok(None) | Err(_) => break,
                    }
                }
            }

            /// Commands split at arbitrary points decode to exactly what was sent.
            #[test]
            fn split_frames_decode_to_the_sent_arguments(
                commands in proptest::collection::vec(
                    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..5), 1..6),
                cut in 1usize..64,
            ) {
                let wire: Vec<u8> = commands.iter().flat_map(|c| encode(c)).collect();
                let mut codec = RequestCodec::new(1024, 16);
                let mut buf = BytesMut::new();
                let mut got = Vec::new();
                for chunk in wire.chunks(cut) {
                    buf.extend_from_slice(chunk);
                    while let Some(req) = codec.decode(&mut buf).unwrap() {
                        got.push(req.args.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
                    }
                }
                prop_assert_eq!(got, commands);
            }
        }
    }
}
