//! RESP3 bytes rendered in RESP2 as Redis renders the same reply for a RESP2
//! client, without building frames. Used for upstream replies redis-protocol
//! cannot represent (a set holding maps…), which are forwarded as bytes.
//! Iterative, like the scanner: the input's nesting never reaches the stack.
//!
//! Maps become flat arrays, sets and pushes arrays; doubles, big numbers and
//! verbatim strings bulk strings with the same text (Redis 7 prints a double
//! with `%.17g` in both protocols); booleans the integers 1 and 0; nulls `$-1`
//! or `*-1` per [`NullStyle`]; blob errors simple errors; attributes vanish.

use bytes::{BufMut, BytesMut};

use super::reply::{NullStyle, one_line};
use super::scan::{Finished, Level, find_crlf, finish_item, parse_len};
use super::wire;

/// Why bytes could not be rendered in RESP2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TranscodeError(String);

fn invalid(what: &str) -> TranscodeError {
    TranscodeError(what.to_string())
}

/// Appends `raw`, one complete RESP3 reply, rendered in RESP2. On error `out`
/// is left as it was.
pub fn resp3_to_resp2(
    out: &mut BytesMut,
    raw: &[u8],
    nulls: NullStyle,
) -> Result<(), TranscodeError> {
    let start = out.len();
    let result = transcode(out, raw, nulls);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn transcode(out: &mut BytesMut, raw: &[u8], nulls: NullStyle) -> Result<(), TranscodeError> {
    let mut pos = 0;
    let mut open = vec![Level::reply()];
    // Attribute levels open: nothing inside them is written.
    let mut hidden = 0usize;
    loop {
        let at = pos;
        let &byte = raw.get(at).ok_or_else(|| invalid("truncated reply"))?;
        let cr = find_crlf(raw, pos + 1).ok_or_else(|| invalid("truncated reply"))?;
        let line = &raw[pos + 1..cr];
        let after = cr + 2;
        let emit = hidden == 0;
        let len = |null_ok| parse_len(line, null_ok).map_err(|e| TranscodeError(e.to_string()));
        let payload = |n: u64| -> Result<&[u8], TranscodeError> {
            let end = usize::try_from(n)
                .ok()
                .and_then(|n| after.checked_add(n))
                .filter(|&end| raw.get(end..end + 2) == Some(b"\r\n"))
                .ok_or_else(|| invalid("bulk string not followed by CRLF"))?;
            Ok(&raw[after..end])
        };
        pos = after;
        match byte {
            b'+' | b'-' | b':' => {
                if emit {
                    out.put_slice(&raw[at..after]);
                }
            }
            b'_' => {
                if emit {
                    out.put_slice(null_text(&open, nulls));
                }
            }
            b',' | b'(' => {
                if emit {
                    wire::put_bulk(out, line);
                }
            }
            b'#' => {
                let as_int: &[u8] = match line {
                    b"t" => b":1\r\n",
                    b"f" => b":0\r\n",
                    _ => return Err(invalid("invalid boolean")),
                };
                if emit {
                    out.put_slice(as_int);
                }
            }
            b'$' | b'=' | b'!' => match len(byte == b'$')? {
                None => {
                    if emit {
                        out.put_slice(b"$-1\r\n");
                    }
                }
                Some(n) => {
                    let data = payload(n)?;
                    pos = after + data.len() + 2;
                    if !emit {
                    } else if byte == b'$' {
                        wire::put_bulk(out, data);
                    } else if byte == b'=' {
                        // `txt:` or `mkd:` before the text, which is all RESP2 shows.
                        let text = data
                            .get(4..)
                            .ok_or_else(|| invalid("verbatim string without a format"))?;
                        wire::put_bulk(out, text);
                    } else {
                        out.put_u8(b'-');
                        out.put_slice(one_line(&String::from_utf8_lossy(data)).as_bytes());
                        out.put_slice(b"\r\n");
                    }
                }
            },
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let Some(n) = len(byte == b'*')? else {
                    if emit {
                        out.put_slice(b"*-1\r\n");
                    }
                    if finish(&mut open, &mut hidden) {
                        return done(pos, raw);
                    }
                    continue;
                };
                let pairs = matches!(byte, b'%' | b'|');
                let count = if pairs { n.saturating_mul(2) } else { n };
                let attribute = byte == b'|';
                if emit && !attribute {
                    let count = usize::try_from(count).map_err(|_| invalid("invalid length"))?;
                    wire::put_length(out, b'*', count);
                }
                if count > 0 {
                    hidden += usize::from(attribute);
                    open.push(Level {
                        remaining: count,
                        kind: byte,
                    });
                    continue;
                }
                if attribute {
                    // An empty attribute: the item it annotates comes next.
                    continue;
                }
            }
            _ => return Err(invalid("unexpected type byte")),
        }
        if finish(&mut open, &mut hidden) {
            return done(pos, raw);
        }
    }
}

/// The whole input must be the one reply.
fn done(pos: usize, raw: &[u8]) -> Result<(), TranscodeError> {
    if pos == raw.len() {
        Ok(())
    } else {
        Err(invalid("bytes after the reply"))
    }
}

/// Marks an item done; `true` when that completes the reply.
fn finish(open: &mut Vec<Level>, hidden: &mut usize) -> bool {
    match finish_item(open) {
        Finished::Reply => true,
        Finished::Attribute => {
            *hidden -= 1;
            false
        }
        Finished::Item => false,
    }
}

/// RESP2's null for an item at this point, as `encode_resp2` picks it.
fn null_text(open: &[Level], nulls: NullStyle) -> &'static [u8] {
    // Level 0 is the reply itself; attributes do not count.
    let mut visible = open.iter().skip(1).filter(|l| !l.attribute());
    let parent = visible.next_back();
    let depth = visible.count() + usize::from(parent.is_some());
    let array = match (depth, parent) {
        (0, _) => nulls == NullStyle::ArrayAtTop,
        // An array or a push: its direct elements take the top level's null style.
        (1, Some(p)) => matches!(p.kind, b'*' | b'>') && nulls == NullStyle::ArrayInElements,
        _ => false,
    };
    if array { b"*-1\r\n" } else { b"$-1\r\n" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp2(raw: &[u8], nulls: NullStyle) -> String {
        let mut out = BytesMut::new();
        resp3_to_resp2(&mut out, raw, nulls).unwrap();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn renders_each_resp3_type_as_redis_does_for_resp2() {
        let cases: &[(&[u8], &str)] = &[
            (b"%1\r\n+a\r\n:1\r\n", "*2\r\n+a\r\n:1\r\n"),
            (
                b"~2\r\n$1\r\nx\r\n,1.5\r\n",
                "*2\r\n$1\r\nx\r\n$3\r\n1.5\r\n",
            ),
            (b">1\r\n#t\r\n", "*1\r\n:1\r\n"),
            (b"#f\r\n", ":0\r\n"),
            (b",inf\r\n", "$3\r\ninf\r\n"),
            (
                b"(12345678901234567890\r\n",
                "$20\r\n12345678901234567890\r\n",
            ),
            (b"=8\r\ntxt:abcd\r\n", "$4\r\nabcd\r\n"),
            (b"!6\r\nE a\r\nb\r\n", "-E a  b\r\n"),
            (b"|1\r\n+key\r\n*1\r\n:2\r\n:7\r\n", ":7\r\n"),
            (
                b"*2\r\n|1\r\n+k\r\n+v\r\n:1\r\n:2\r\n",
                "*2\r\n:1\r\n:2\r\n",
            ),
            (b"*-1\r\n", "*-1\r\n"),
            (b"$-1\r\n", "$-1\r\n"),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                resp2(raw, NullStyle::Bulk),
                *expected,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn a_set_of_maps_becomes_arrays() {
        let raw = b"~1\r\n%1\r\n$4\r\nname\r\n$3\r\nget\r\n";
        assert_eq!(
            resp2(raw, NullStyle::Bulk),
            "*1\r\n*2\r\n$4\r\nname\r\n$3\r\nget\r\n"
        );
    }

    #[test]
    fn nulls_follow_the_command_style() {
        assert_eq!(resp2(b"_\r\n", NullStyle::Bulk), "$-1\r\n");
        assert_eq!(resp2(b"_\r\n", NullStyle::ArrayAtTop), "*-1\r\n");
        assert_eq!(
            resp2(b"*2\r\n_\r\n*1\r\n_\r\n", NullStyle::ArrayInElements),
            "*2\r\n*-1\r\n*1\r\n$-1\r\n"
        );
        assert_eq!(
            resp2(b"~1\r\n_\r\n", NullStyle::ArrayInElements),
            "*1\r\n$-1\r\n"
        );
        assert_eq!(
            resp2(b"*1\r\n_\r\n", NullStyle::ArrayAtTop),
            "*1\r\n$-1\r\n"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The transcoder and the frame encoder render every reply alike.
        #[test]
        fn agrees_with_the_frame_encoder(
            frame in crate::protocol::scan::tests::frame(),
            style in 0..3u8,
        ) {
            let nulls = [NullStyle::Bulk, NullStyle::ArrayAtTop, NullStyle::ArrayInElements][style as usize];
            let raw = crate::protocol::scan::tests::encode(&frame);
            let mut expected = BytesMut::new();
            crate::protocol::reply::encode_resp2(&mut expected, &frame, nulls);
            let mut got = BytesMut::new();
            resp3_to_resp2(&mut got, &raw, nulls).unwrap();
            proptest::prop_assert_eq!(got, expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let _ = resp3_to_resp2(&mut BytesMut::new(), &raw, NullStyle::ArrayInElements);
        }
    }

    #[test]
    fn garbage_is_refused_and_leaves_nothing_behind() {
        for raw in [
            &b"#x\r\n"[..],
            b"*2\r\n:1\r\n",
            b"$3\r\nab\r\n",
            b"=2\r\nab\r\n",
            b"?\r\n",
            b":1\r\n:2\r\n",
        ] {
            let mut out = BytesMut::from(&b"kept"[..]);
            assert!(resp3_to_resp2(&mut out, raw, NullStyle::Bulk).is_err());
            assert_eq!(&out[..], b"kept");
        }
    }
}
