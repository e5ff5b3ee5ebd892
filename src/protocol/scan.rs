//! Where one upstream reply ends. An iterative scanner (no recursion, state
//! kept across reads) finds each reply's extent before anything decodes it,
//! and enforces `upstream.max_reply_*` as headers arrive: a hostile or broken
//! upstream can neither make the proxy buffer without bound nor overflow its
//! stack. A reply over a limit is reported at once and then discarded as its
//! bytes stream past, never buffered whole, so the connection (and the other
//! commands pipelined on it) carries on with the next reply.
//!
//! The scanner checks framing only: type bytes, lengths and the CRLF after
//! each bulk payload. Whether the contents make sense (a boolean that is
//! neither `t` nor `f`, a set holding maps) is the decoder's business; such a
//! reply still has a known extent and fails alone. Streamed RESP3 types
//! (`$?`, `*?`, `;`, `.`) and inline text are malformed: Redis never sends
//! them, and without them the scanner cannot know where the stream resumes.

use bytes::{Buf, Bytes, BytesMut};

use crate::config::defaults;

/// Bounds on one upstream reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Bytes in the whole reply, headers included.
    pub max_len: usize,
    /// Aggregates (arrays, maps, sets, pushes, attributes) nested in each other.
    pub max_depth: usize,
    /// Elements declared by all the reply's aggregates together (a map of
    /// `n` pairs declares `2n`).
    pub max_elements: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_len: defaults::UPSTREAM_MAX_REPLY_LEN,
            max_depth: defaults::UPSTREAM_MAX_REPLY_DEPTH,
            max_elements: defaults::UPSTREAM_MAX_REPLY_ELEMENTS,
        }
    }
}

/// Which limit a reply went over; the text completes "the upstream's reply …".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("exceeds upstream.max_reply_len ({limit} bytes)")]
    Len { limit: usize },
    #[error("exceeds upstream.max_reply_depth ({limit} nested aggregates)")]
    Depth { limit: usize },
    #[error("exceeds upstream.max_reply_elements ({limit} elements)")]
    Elements { limit: usize },
}

/// The byte stream cannot be read as RESP: the connection has lost its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed reply from the upstream: {0}")]
pub struct Malformed(String);

/// What [`ReplyScanner::next`] found at the start of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    /// One whole reply, split off the buffer.
    Reply(Bytes),
    /// A reply over a limit. Its bytes are discarded by this and later calls
    /// as they arrive; `push` says it is out-of-band data (`>`), which no
    /// command is waiting for.
    TooLarge { exceeded: LimitExceeded, push: bool },
}

/// Length lines (`$12`, `*3`) are never longer than this; longer is garbage.
const MAX_LENGTH_LINE: usize = 24;

/// A length line of `len` bytes (type byte included, CRLF not), once whole,
/// is refused as "too long" exactly when a read ending inside it would have
/// been (`len` bytes and its CR exceed [`MAX_LENGTH_LINE`]), so the error does
/// not depend on how the bytes were split into reads.
fn check_length_line(len: usize) -> Result<(), Malformed> {
    if len >= MAX_LENGTH_LINE {
        return Err(Malformed("length line too long".into()));
    }
    Ok(())
}

/// Finds reply boundaries in an upstream byte stream, one reply at a time.
pub struct ReplyScanner {
    limits: ReplyLimits,
    resp3: bool,
    /// The reply being scanned; it starts at the beginning of the buffer.
    progress: Progress,
    /// Set while the rest of a reply over a limit is being discarded.
    skip: Option<Skip>,
}

#[derive(Default)]
struct Progress {
    /// Bytes of the reply scanned so far (whole items and headers).
    pos: usize,
    /// Items left in each open level, outermost (the reply itself) first;
    /// empty between replies.
    open: Vec<Level>,
    /// Elements declared so far.
    elements: usize,
    /// Where to resume looking for the CRLF of an incomplete line.
    line_search: usize,
    /// The reply's first byte (`>` marks a push).
    first: u8,
}

/// An open level of a reply: the reply itself (level 0) or an aggregate.
#[derive(Debug, Clone, Copy)]
pub(super) struct Level {
    /// Items not yet finished at this level.
    pub(super) remaining: u64,
    /// The aggregate's type byte (`*`, `%`, `|`…); 0 for the reply itself.
    pub(super) kind: u8,
}

impl Level {
    /// Level 0: the reply, one item.
    pub(super) fn reply() -> Level {
        Level {
            remaining: 1,
            kind: 0,
        }
    }

    /// An attribute map: when it ends, the item it annotates is still to come.
    pub(super) fn attribute(&self) -> bool {
        self.kind == b'|'
    }
}

/// What finishing an item completed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Finished {
    /// Only the item (or aggregates ending with it).
    Item,
    /// An attribute map: the item it annotates comes next.
    Attribute,
    /// The whole reply.
    Reply,
}

/// The rest of a reply being discarded: no stack, only counts, because the
/// end of a prefix-encoded reply depends on nothing else.
#[derive(Debug, Default)]
struct Skip {
    /// Items not yet begun, all levels together.
    items: u64,
    /// Bytes of a bulk payload and its CRLF still to discard.
    bulk: u64,
    /// Discarding a line up to its CRLF.
    line: bool,
    /// The last byte discarded was a CR (its LF may start the next read).
    cr: bool,
}

enum Kind {
    /// Up to CRLF: `+ - : _ , # (`.
    Line,
    /// Length, payload, CRLF: `$ ! =`.
    Bulk,
    /// Length, then that many items (twice as many for `%` and `|`).
    Aggregate { pairs: bool, attribute: bool },
}

fn kind(byte: u8, resp3: bool) -> Option<Kind> {
    match byte {
        b'+' | b'-' | b':' => Some(Kind::Line),
        b'$' => Some(Kind::Bulk),
        b'*' => Some(Kind::Aggregate {
            pairs: false,
            attribute: false,
        }),
        _ if !resp3 => None,
        b'_' | b',' | b'#' | b'(' => Some(Kind::Line),
        b'!' | b'=' => Some(Kind::Bulk),
        b'~' | b'>' => Some(Kind::Aggregate {
            pairs: false,
            attribute: false,
        }),
        b'%' => Some(Kind::Aggregate {
            pairs: true,
            attribute: false,
        }),
        b'|' => Some(Kind::Aggregate {
            pairs: true,
            attribute: true,
        }),
        _ => None,
    }
}

fn unexpected(byte: u8) -> Malformed {
    Malformed(format!(
        "unexpected byte {byte:#04x} where a reply type belongs"
    ))
}

/// The index of the first CRLF at or after `from`.
pub(super) fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < buf.len() {
        let cr = at + memchr::memchr(b'\r', &buf[at..])?;
        if buf.get(cr + 1) == Some(&b'\n') {
            return Some(cr);
        }
        at = cr + 1;
    }
    None
}

/// A length: decimal digits, or `-1` (a RESP2-style null) where `null_ok`.
pub(super) fn parse_len(line: &[u8], null_ok: bool) -> Result<Option<u64>, Malformed> {
    if null_ok && line == b"-1" {
        return Ok(None);
    }
    if line == b"?" {
        return Err(Malformed("streamed RESP3 types are not supported".into()));
    }
    if line.is_empty() || line.len() > 19 || !line.iter().all(u8::is_ascii_digit) {
        return Err(Malformed("invalid length".into()));
    }
    let n = line.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    if n > i64::MAX as u64 {
        return Err(Malformed("invalid length".into()));
    }
    Ok(Some(n))
}

impl ReplyScanner {
    /// A scanner for a connection speaking RESP3 (`resp3`) or RESP2.
    pub fn new(limits: ReplyLimits, resp3: bool) -> Self {
        ReplyScanner {
            limits,
            resp3,
            progress: Progress::default(),
            skip: None,
        }
    }

    pub fn limits(&self) -> ReplyLimits {
        self.limits
    }

    /// The next reply at the start of `buf`, or `None` until more bytes
    /// arrive. Bytes of a reply over a limit are removed from `buf` as they
    /// are discarded; a whole reply is split off it.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Scanned>, Malformed> {
        if let Some(skip) = self.skip.as_mut() {
            if !skip.discard(buf, self.resp3)? {
                return Ok(None);
            }
            self.skip = None;
        }
        self.scan(buf)
    }

    fn scan(&mut self, buf: &mut BytesMut) -> Result<Option<Scanned>, Malformed> {
        let limits = self.limits;
        let p = &mut self.progress;
        if p.open.is_empty() {
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            p.first = first;
            p.open.push(Level::reply());
        }
        loop {
            let start = p.pos;
            let Some(&byte) = buf.get(start) else {
                return Ok(None);
            };
            let kind = kind(byte, self.resp3).ok_or_else(|| unexpected(byte))?;
            let Some(cr) = find_crlf(buf, p.line_search.max(start + 1)) else {
                // Resume after what was searched (keeping a CR whose LF may come next).
                p.line_search = buf.len().saturating_sub(1).max(start + 1);
                if !matches!(kind, Kind::Line) {
                    if buf.len() - start > MAX_LENGTH_LINE {
                        return Err(Malformed("length line too long".into()));
                    }
                    // The header, once whole, says whether the item fits.
                    return Ok(None);
                }
                if buf.len() > limits.max_len {
                    // A line longer than a whole reply may be: drop it as it streams in.
                    let skip = Skip {
                        items: pending(&p.open) - 1,
                        line: true,
                        ..Skip::default()
                    };
                    return Ok(Some(self.exceeded(buf, buf.len(), skip, |l| {
                        LimitExceeded::Len { limit: l.max_len }
                    })));
                }
                return Ok(None);
            };
            p.line_search = 0;
            if !matches!(kind, Kind::Line) {
                check_length_line(cr - start)?;
            }
            let line = &buf[start + 1..cr];
            let after = cr + 2;
            let complete = match kind {
                Kind::Line => {
                    p.pos = after;
                    finish_item(&mut p.open) == Finished::Reply
                }
                Kind::Bulk => match parse_len(line, byte == b'$')? {
                    None => {
                        p.pos = after;
                        finish_item(&mut p.open) == Finished::Reply
                    }
                    Some(len) => {
                        let end = (after as u64).saturating_add(len).saturating_add(2);
                        if end > limits.max_len as u64 {
                            let skip = Skip {
                                items: pending(&p.open) - 1,
                                bulk: len + 2,
                                ..Skip::default()
                            };
                            return Ok(Some(self.exceeded(buf, after, skip, |l| {
                                LimitExceeded::Len { limit: l.max_len }
                            })));
                        }
                        let end = end as usize;
                        if buf.len() < end {
                            return Ok(None);
                        }
                        if &buf[end - 2..end] != b"\r\n" {
                            return Err(Malformed("bulk string not followed by CRLF".into()));
                        }
                        p.pos = end;
                        finish_item(&mut p.open) == Finished::Reply
                    }
                },
                Kind::Aggregate { pairs, attribute } => match parse_len(line, byte == b'*')? {
                    None => {
                        p.pos = after;
                        finish_item(&mut p.open) == Finished::Reply
                    }
                    Some(n) => {
                        let count = if pairs { n.saturating_mul(2) } else { n };
                        // The reply itself is level 0, so a top-level array is depth 1.
                        let over = if p.open.len() > limits.max_depth {
                            Some(LimitExceeded::Depth {
                                limit: limits.max_depth,
                            })
                        } else if (p.elements as u64).saturating_add(count)
                            > limits.max_elements as u64
                        {
                            Some(LimitExceeded::Elements {
                                limit: limits.max_elements,
                            })
                        } else {
                            None
                        };
                        if let Some(over) = over {
                            // An attribute annotates an item not yet begun; anything else is that item.
                            let begun = u64::from(!attribute);
                            let skip = Skip {
                                items: (pending(&p.open) - begun).saturating_add(count),
                                ..Skip::default()
                            };
                            return Ok(Some(self.exceeded(buf, after, skip, |_| over)));
                        }
                        p.elements += count as usize;
                        p.pos = after;
                        if count > 0 {
                            p.open.push(Level {
                                remaining: count,
                                kind: byte,
                            });
                            false
                        } else {
                            !attribute && finish_item(&mut p.open) == Finished::Reply
                        }
                    }
                },
            };
            if p.pos > limits.max_len {
                let skip = Skip {
                    items: if complete { 0 } else { pending(&p.open) },
                    ..Skip::default()
                };
                let pos = p.pos;
                return Ok(Some(self.exceeded(buf, pos, skip, |l| {
                    LimitExceeded::Len { limit: l.max_len }
                })));
            }
            if complete {
                let reply = buf.split_to(p.pos).freeze();
                p.pos = 0;
                p.elements = 0;
                return Ok(Some(Scanned::Reply(reply)));
            }
        }
    }

    /// Drops the reply's first `consumed` bytes and discards the rest as it arrives.
    fn exceeded(
        &mut self,
        buf: &mut BytesMut,
        consumed: usize,
        mut skip: Skip,
        which: impl FnOnce(&ReplyLimits) -> LimitExceeded,
    ) -> Scanned {
        let push = self.progress.first == b'>';
        // A line cut off after its CR: the LF may start the next read.
        skip.cr = skip.line && buf[..consumed].last() == Some(&b'\r');
        buf.advance(consumed);
        let p = &mut self.progress;
        p.open.clear();
        p.pos = 0;
        p.elements = 0;
        p.line_search = 0;
        self.skip = Some(skip);
        Scanned::TooLarge {
            exceeded: which(&self.limits),
            push,
        }
    }
}

/// Items not yet finished, the current one included: each level's remaining
/// count, less one for every open aggregate (it is counted by its parent too).
fn pending(open: &[Level]) -> u64 {
    let nested = open.iter().skip(1).filter(|l| !l.attribute()).count() as u64;
    open.iter()
        .map(|l| l.remaining)
        .fold(0u64, u64::saturating_add)
        - nested
}

/// Marks the current item done, and every level it completes.
pub(super) fn finish_item(open: &mut Vec<Level>) -> Finished {
    loop {
        let top = open.last_mut().expect("an item belongs to an open level");
        top.remaining -= 1;
        if top.remaining > 0 {
            return Finished::Item;
        }
        let done = open.pop().expect("just looked at it");
        if done.attribute() {
            // The annotated item is still to come at the parent level.
            return Finished::Attribute;
        }
        if open.is_empty() {
            return Finished::Reply;
        }
    }
}

impl Skip {
    /// Discards what `buf` holds of the reply; `true` once all of it is gone.
    fn discard(&mut self, buf: &mut BytesMut, resp3: bool) -> Result<bool, Malformed> {
        loop {
            if self.bulk > 0 {
                let n = self.bulk.min(buf.len() as u64);
                buf.advance(n as usize);
                self.bulk -= n;
                if self.bulk > 0 {
                    return Ok(false);
                }
                continue;
            }
            if self.line {
                if buf.is_empty() {
                    return Ok(false);
                }
                if self.cr && buf[0] == b'\n' {
                    buf.advance(1);
                    self.line = false;
                    self.cr = false;
                    continue;
                }
                self.cr = false;
                match find_crlf(buf, 0) {
                    Some(cr) => {
                        buf.advance(cr + 2);
                        self.line = false;
                        continue;
                    }
                    None => {
                        self.cr = buf.last() == Some(&b'\r');
                        let n = buf.len();
                        buf.advance(n);
                        return Ok(false);
                    }
                }
            }
            if self.items == 0 {
                return Ok(true);
            }
            let Some(&byte) = buf.first() else {
                return Ok(false);
            };
            let kind = kind(byte, resp3).ok_or_else(|| unexpected(byte))?;
            if matches!(kind, Kind::Line) {
                buf.advance(1);
                self.items -= 1;
                self.line = true;
                continue;
            }
            let Some(cr) = find_crlf(buf, 1) else {
                if buf.len() > MAX_LENGTH_LINE {
                    return Err(Malformed("length line too long".into()));
                }
                return Ok(false);
            };
            check_length_line(cr)?;
            let len = parse_len(&buf[1..cr], byte == b'$' || byte == b'*')?;
            buf.advance(cr + 2);
            match (kind, len) {
                (_, None) => self.items -= 1,
                (Kind::Bulk, Some(n)) => {
                    self.items -= 1;
                    self.bulk = n + 2;
                }
                (Kind::Aggregate { pairs, attribute }, Some(n)) => {
                    let count = if pairs { n.saturating_mul(2) } else { n };
                    let begun = u64::from(!attribute);
                    self.items = (self.items - begun).saturating_add(count);
                }
                (Kind::Line, _) => unreachable!("handled above"),
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::protocol::Frame;
    use proptest::prelude::*;
    use redis_protocol::resp3::types::VerbatimStringFormat;

    const ROOMY: ReplyLimits = ReplyLimits {
        max_len: 1 << 30,
        max_depth: 64,
        max_elements: 1 << 20,
    };

    /// Feeds `input` in pieces of `chunk` bytes and collects what comes out.
    fn scan_all(
        input: &[u8],
        chunk: usize,
        limits: ReplyLimits,
    ) -> Result<Vec<Scanned>, Malformed> {
        let mut scanner = ReplyScanner::new(limits, true);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            while let Some(found) = scanner.next(&mut buf)? {
                out.push(found);
            }
        }
        Ok(out)
    }

    fn replies(input: &[u8]) -> Vec<Vec<u8>> {
        scan_all(input, usize::MAX, ROOMY)
            .unwrap()
            .into_iter()
            .map(|s| match s {
                Scanned::Reply(b) => b.to_vec(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn finds_each_reply_of_a_pipeline() {
        let input: &[u8] = b"+OK\r\n$3\r\na\r\n\r\n*2\r\n:1\r\n%1\r\n+k\r\n~1\r\n_\r\n$-1\r\n*-1\r\n|1\r\n+a\r\n+b\r\n#t\r\n>2\r\n+m\r\n=7\r\ntxt:abc\r\n";
        let expected: Vec<&[u8]> = vec![
            b"+OK\r\n",
            b"$3\r\na\r\n\r\n",
            b"*2\r\n:1\r\n%1\r\n+k\r\n~1\r\n_\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"|1\r\n+a\r\n+b\r\n#t\r\n",
            b">2\r\n+m\r\n=7\r\ntxt:abc\r\n",
        ];
        assert_eq!(replies(input), expected);
        for chunk in 1..8 {
            let pieces: Vec<Vec<u8>> = scan_all(input, chunk, ROOMY)
                .unwrap()
                .into_iter()
                .map(|s| match s {
                    Scanned::Reply(b) => b.to_vec(),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            assert_eq!(pieces, expected, "chunks of {chunk}");
        }
    }

    /// Found by fuzzing (fuzz/regressions/reply): a long garbage length line
    /// was "invalid length" when it arrived whole and "length line too long"
    /// when it arrived in small reads.
    #[test]
    fn a_malformed_length_line_fails_alike_however_it_is_split() {
        for line in [
            &b"*****************************1\r\n"[..],
            b"$0000000000000000000000005\r\n",
        ] {
            let whole = scan_all(line, usize::MAX, ROOMY).unwrap_err();
            for chunk in 1..line.len() {
                assert_eq!(
                    scan_all(line, chunk, ROOMY).unwrap_err(),
                    whole,
                    "chunks of {chunk}"
                );
            }
            assert_eq!(
                whole.to_string(),
                "malformed reply from the upstream: length line too long"
            );
        }
    }

    #[test]
    fn a_bulk_over_the_limit_fails_at_its_header_and_is_skipped_unbuffered() {
        let limits = ReplyLimits {
            max_len: 1024,
            ..ROOMY
        };
        let mut scanner = ReplyScanner::new(limits, true);
        let mut buf = BytesMut::from(&b"$2147483648\r\n"[..]);
        assert_eq!(
            scanner.next(&mut buf).unwrap(),
            Some(Scanned::TooLarge {
                exceeded: LimitExceeded::Len { limit: 1024 },
                push: false
            })
        );
        assert!(buf.is_empty(), "the header is dropped, not kept");
        let chunk = vec![b'x'; 64 * 1024];
        let mut left = 2_147_483_648u64;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            buf.extend_from_slice(&chunk[..n]);
            left -= n as u64;
            assert_eq!(scanner.next(&mut buf).unwrap(), None);
            assert!(buf.is_empty(), "payload bytes are discarded as they come");
        }
        buf.extend_from_slice(b"\r\n+PONG\r\n");
        assert_eq!(
            scanner.next(&mut buf).unwrap(),
            Some(Scanned::Reply(Bytes::from_static(b"+PONG\r\n")))
        );
    }

    #[test]
    fn a_reply_nested_too_deep_is_skipped_with_constant_memory() {
        let mut input = b"*1\r\n".repeat(10_000);
        input.extend_from_slice(b":1\r\n>1\r\n+next\r\n");
        let found = scan_all(&input, 4096, ROOMY).unwrap();
        assert_eq!(
            found,
            vec![
                Scanned::TooLarge {
                    exceeded: LimitExceeded::Depth { limit: 64 },
                    push: false
                },
                Scanned::Reply(Bytes::from_static(b">1\r\n+next\r\n")),
            ]
        );
        let mut scanner = ReplyScanner::new(ROOMY, true);
        let mut buf = BytesMut::from(&input[..]);
        scanner.next(&mut buf).unwrap();
        assert!(
            scanner.progress.open.capacity() <= 128,
            "the stack stays bounded"
        );
    }

    #[test]
    fn too_many_elements_and_lines_too_long_are_refused() {
        let limits = ReplyLimits {
            max_len: 64,
            max_depth: 8,
            max_elements: 4,
        };
        let input = b"*3\r\n:1\r\n*2\r\n:2\r\n:3\r\n:4\r\n+ok\r\n";
        assert_eq!(
            scan_all(input, 1, limits).unwrap(),
            vec![
                Scanned::TooLarge {
                    exceeded: LimitExceeded::Elements { limit: 4 },
                    push: false
                },
                Scanned::Reply(Bytes::from_static(b"+ok\r\n")),
            ]
        );
        let mut long = b">2\r\n+".to_vec();
        long.extend_from_slice(&[b'a'; 200]);
        long.extend_from_slice(b"\r\n:1\r\n:9\r\n");
        for chunk in [1, 7, 65, 1000] {
            assert_eq!(
                scan_all(&long, chunk, limits).unwrap(),
                vec![
                    Scanned::TooLarge {
                        exceeded: LimitExceeded::Len { limit: 64 },
                        push: true
                    },
                    Scanned::Reply(Bytes::from_static(b":9\r\n")),
                ],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn attributes_belong_to_the_reply_they_annotate() {
        assert_eq!(
            replies(b"|0\r\n:1\r\n*1\r\n|1\r\n+k\r\n+v\r\n:2\r\n"),
            vec![
                b"|0\r\n:1\r\n".to_vec(),
                b"*1\r\n|1\r\n+k\r\n+v\r\n:2\r\n".to_vec()
            ]
        );
    }

    #[test]
    fn malformed_streams_are_errors() {
        for input in [
            &b"H\r\n"[..],
            b"$3\r\nabcde\r\n",
            b"$x\r\n",
            b"*?\r\n",
            b"$?\r\n",
            b";3\r\nabc\r\n",
            b"$99999999999999999999\r\n",
            b"*1234567890123456789012345678",
        ] {
            assert!(scan_all(input, usize::MAX, ROOMY).is_err(), "{input:?}");
        }
        let mut resp2 = ReplyScanner::new(ROOMY, false);
        assert!(resp2.next(&mut BytesMut::from(&b"%1\r\n"[..])).is_err());
    }

    fn leaf() -> impl Strategy<Value = Frame> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|d| Frame::BlobString {
                data: d.into(),
                attributes: None
            }),
            "[a-zA-Z0-9 ]{0,20}".prop_map(|s| Frame::SimpleString {
                data: s.into(),
                attributes: None
            }),
            "ERR [a-z ]{0,20}".prop_map(crate::protocol::reply::error),
            any::<i64>().prop_map(|n| Frame::Number {
                data: n,
                attributes: None
            }),
            // Values whose Rust and %.17g texts agree: the transcoder copies
            // the upstream's text, the frame encoder prints %.17g.
            prop_oneof![
                Just(1.5f64),
                Just(0.5),
                Just(3.0),
                Just(-2.25),
                Just(1024.0),
                Just(f64::INFINITY)
            ]
            .prop_map(|d| Frame::Double {
                data: d,
                attributes: None
            }),
            any::<bool>().prop_map(|b| Frame::Boolean {
                data: b,
                attributes: None
            }),
            Just(Frame::Null),
            "[0-9]{1,30}".prop_map(|s| Frame::BigNumber {
                data: s.into(),
                attributes: None
            }),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(|d| Frame::BlobError {
                data: d.into(),
                attributes: None
            }),
            "[a-z\r\n]{0,20}".prop_map(|s| Frame::VerbatimString {
                data: s.into(),
                format: VerbatimStringFormat::Text,
                attributes: None
            }),
        ]
    }

    fn key() -> impl Strategy<Value = Frame> {
        prop_oneof![
            "[a-z]{0,8}".prop_map(|s| Frame::BlobString {
                data: s.into(),
                attributes: None
            }),
            any::<i64>().prop_map(|n| Frame::Number {
                data: n,
                attributes: None
            }),
        ]
    }

    /// Any frame redis-protocol can encode (no streamed types).
    pub(crate) fn frame() -> impl Strategy<Value = Frame> {
        leaf().prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(|data| Frame::Array {
                    data,
                    attributes: None
                }),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|data| Frame::Push {
                    data,
                    attributes: None
                }),
                proptest::collection::vec((key(), inner.clone()), 0..4).prop_map(|pairs| {
                    Frame::Map {
                        data: pairs.into_iter().collect(),
                        attributes: None,
                    }
                }),
                proptest::collection::vec(key(), 0..4).prop_map(|items| Frame::Set {
                    data: items.into_iter().collect(),
                    attributes: None
                }),
                (proptest::collection::vec((key(), key()), 1..3), inner).prop_map(
                    |(attrs, data)| Frame::Array {
                        data: vec![data],
                        attributes: Some(attrs.into_iter().collect()),
                    }
                ),
            ]
        })
    }

    pub(crate) fn encode(frame: &Frame) -> Vec<u8> {
        let mut out = BytesMut::new();
        redis_protocol::resp3::encode::complete::extend_encode(&mut out, frame, false)
            .expect("generated frames encode");
        out.to_vec()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(
            input in proptest::collection::vec(any::<u8>(), 0..300),
            chunk in 1usize..40,
            max_len in 1usize..200,
            max_depth in 0usize..6,
            max_elements in 0usize..20,
            resp3 in any::<bool>(),
        ) {
            let limits = ReplyLimits { max_len, max_depth, max_elements };
            let mut scanner = ReplyScanner::new(limits, resp3);
            let mut buf = BytesMut::new();
            'feed: for piece in input.chunks(chunk) {
                buf.extend_from_slice(piece);
                loop {
                    match scanner.next(&mut buf) {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
            }
        }

        #[test]
        fn every_encoded_frame_scans_to_its_exact_length(
            first in frame(),
            second in frame(),
            chunk in 1usize..64,
        ) {
            let (a, b) = (encode(&first), encode(&second));
            let input = [a.clone(), b.clone()].concat();
            let found = scan_all(&input, chunk, ROOMY).unwrap();
            prop_assert_eq!(found, vec![Scanned::Reply(a.into()), Scanned::Reply(b.into())]);
        }

        #[test]
        fn a_reply_over_any_limit_is_skipped_exactly(
            first in frame(),
            second in frame(),
            chunk in 1usize..64,
            max_len in 1usize..400,
            max_depth in 0usize..4,
            max_elements in 0usize..12,
        ) {
            let (a, b) = (encode(&first), encode(&second));
            let input = [a.clone(), b.clone()].concat();
            let limits = ReplyLimits { max_len, max_depth, max_elements };
            let mut found = scan_all(&input, chunk, limits).unwrap().into_iter();
            match found.next() {
                Some(Scanned::Reply(r)) => prop_assert_eq!(&r[..], &a[..]),
                Some(Scanned::TooLarge { push, .. }) => prop_assert_eq!(push, a[0] == b'>'),
                None => prop_assert!(false, "nothing found"),
            }
            // Whatever happened to the first, the second is found, whole or refused.
            match found.next() {
                Some(Scanned::Reply(r)) => prop_assert_eq!(&r[..], &b[..]),
                Some(Scanned::TooLarge { .. }) => {}
                None => prop_assert!(false, "the second reply was lost"),
            }
            prop_assert!(found.next().is_none());
        }
    }
}
