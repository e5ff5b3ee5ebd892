//! The fuzz targets' checks, one function per target. Each takes the fuzzer's
//! bytes and panics when sealcache misbehaves on them: a panic inside
//! sealcache, or a broken invariant asserted here. Besides the AFL++ binaries,
//! the main crate's `tests/it/fuzz_regressions.rs` includes this file to replay
//! the inputs in `fuzz/regressions/<target>/`, so it may use only `sealcache`
//! and `bytes`.
//!
//! The first byte of an input picks options (limits, protocol, context); the
//! rest is the data under test.

use bytes::BytesMut;
use sealcache::backend::Reply;
use sealcache::backend::redis::decode::{Upstream, UpstreamDecoder};
use sealcache::crypto::{MemberContext, Sealer, ValueContext, is_envelope};
use sealcache::keys::{KeyRing, MasterKey};
use sealcache::protocol::reply::NullStyle;
use sealcache::protocol::request::{Request, RequestCodec, RequestLimits};
use sealcache::protocol::scan::ReplyLimits;
use sealcache::protocol::{Protocol, transcode};
use tokio_util::codec::Decoder;

/// A target's check: panics when sealcache misbehaves on the input.
pub type Check = fn(&[u8]);

/// The targets by name, as `scripts/fuzz.sh` and the regression replay know them.
pub const TARGETS: &[(&str, Check)] = &[
    ("request", request),
    ("reply", reply),
    ("envelope", envelope),
    ("config", config),
];

/// Splits off the options byte.
fn options(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&first, rest)) => (first, rest),
        None => (0, data),
    }
}

/// The size of the reads a chunked decode sees: 1 to 16 bytes.
fn chunk_size(options: u8) -> usize {
    usize::from(options >> 4) + 1
}

// ---- request: the client request decoder ------------------------------------------

/// What decoding a client byte stream produced: the requests, then the error
/// that ended it (if one did).
#[derive(Debug, PartialEq, Eq)]
struct Requests {
    requests: Vec<Request>,
    error: Option<String>,
}

fn request_limits(options: u8) -> RequestLimits {
    // Small limits reach the checks; the defaults reach the rest of the code.
    let (max_bulk_len, max_multibulk_len) = if options & 1 == 0 {
        (64, 8)
    } else {
        (64 * 1024 * 1024, 1024 * 1024)
    };
    RequestLimits {
        max_bulk_len,
        max_multibulk_len,
        authenticated: options & 2 == 0,
    }
}

fn decode_requests(limits: RequestLimits, input: &[u8], chunk: usize) -> Requests {
    let mut codec = RequestCodec::with_limits(limits);
    let mut buf = BytesMut::new();
    let mut out = Requests {
        requests: Vec::new(),
        error: None,
    };
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(request)) => {
                    assert!(
                        !request.args.is_empty(),
                        "a request without arguments was decoded"
                    );
                    out.requests.push(request);
                }
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(e.to_string());
                    return out;
                }
            }
        }
    }
    out
}

/// Any bytes decode to requests and at most one protocol error, never a
/// panic; the same bytes arriving in small reads decode to the same; an array
/// request's raw bytes decode to its own arguments.
pub fn request(data: &[u8]) {
    let (options, input) = options(data);
    let limits = request_limits(options);
    let whole = decode_requests(limits, input, input.len());
    let chunked = decode_requests(limits, input, chunk_size(options));
    assert_eq!(
        whole,
        chunked,
        "reads of {} bytes decode differently",
        chunk_size(options)
    );
    for request in &whole.requests {
        if let Some(raw) = &request.raw {
            let again = decode_requests(limits, raw, raw.len());
            assert_eq!(again.error, None, "a request's raw bytes do not decode");
            assert_eq!(
                again.requests.len(),
                1,
                "a request's raw bytes are not one request"
            );
            assert_eq!(again.requests[0].args, request.args);
        }
    }
}

// ---- reply: the upstream reply scanner and decoder --------------------------------

fn reply_limits(options: u8) -> ReplyLimits {
    if options & 2 == 0 {
        // The smallest limits configuration accepts.
        ReplyLimits {
            max_len: 4096,
            max_depth: 8,
            max_elements: 1024,
        }
    } else {
        ReplyLimits::default()
    }
}

/// One reply as the proxy would hand it to the client writer.
fn summary(reply: &Upstream) -> String {
    format!("{reply:?}")
}

fn decode_replies(
    protocol: Protocol,
    limits: ReplyLimits,
    input: &[u8],
    chunk: usize,
) -> Vec<String> {
    let mut decoder = UpstreamDecoder::with_limits(protocol, limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.next(&mut buf) {
                Ok(Some(reply)) => {
                    deliver(&reply);
                    out.push(summary(&reply));
                }
                Ok(None) => break,
                Err(e) => {
                    out.push(format!("malformed: {e}"));
                    return out;
                }
            }
        }
    }
    out
}

/// Encodes a reply for clients of both protocols and every null style, as
/// the writer would.
fn deliver(upstream: &Upstream) {
    let reply = match upstream {
        Upstream::Frame { frame, raw } => Reply::upstream(frame.clone(), raw.clone()),
        Upstream::Undecodable { raw, .. } => Reply::undecoded(
            raw.clone(),
            sealcache::protocol::reply::error("ERR undecodable"),
        ),
        Upstream::TooLarge { .. } => return,
    };
    for proto in [Protocol::Resp2, Protocol::Resp3] {
        for nulls in [
            NullStyle::Bulk,
            NullStyle::ArrayAtTop,
            NullStyle::ArrayInElements,
        ] {
            let mut out = BytesMut::new();
            reply.encode(&mut out, proto, nulls);
            assert!(!out.is_empty(), "a reply encoded to nothing");
        }
    }
    let _ = reply.wire_size();
    if let Upstream::Frame { raw: Some(raw), .. } = upstream {
        let mut out = BytesMut::new();
        let _ = transcode::resp3_to_resp2(&mut out, raw, NullStyle::Bulk);
    }
}

/// Any upstream bytes give replies, replies over a limit, or one
/// "malformed" that ends the connection; never a panic. Small reads give
/// the same replies. Every reply can be encoded for RESP2 and RESP3 clients.
pub fn reply(data: &[u8]) {
    let (options, input) = options(data);
    let protocol = if options & 1 == 0 {
        Protocol::Resp3
    } else {
        Protocol::Resp2
    };
    let limits = reply_limits(options);
    let whole = decode_replies(protocol, limits, input, input.len());
    let chunked = decode_replies(protocol, limits, input, chunk_size(options));
    assert_eq!(
        whole,
        chunked,
        "reads of {} bytes decode differently",
        chunk_size(options)
    );
}

// ---- envelope: parsing and opening value and member envelopes ---------------------

/// One sealer for every input: expanding the keys is the slow part.
fn sealer() -> &'static Sealer {
    static SEALER: std::sync::OnceLock<Sealer> = std::sync::OnceLock::new();
    SEALER.get_or_init(|| {
        let master = MasterKey::from_bytes(&[7u8; 32]);
        Sealer::new(&KeyRing::from_master(&master))
    })
}

/// Opening bytes that are not an envelope sealed for that context fails
/// cleanly; sealing then changing any byte never opens; sealing then opening
/// unchanged gives the plaintext back.
pub fn envelope(data: &[u8]) {
    let (options, input) = options(data);
    let sealer = sealer();
    let namespace: &[u8] = b"fuzz";
    let (key, rest) = input.split_at(input.len().min(usize::from(options & 0x0f)));
    let value_ctx = match options >> 4 & 3 {
        0 => ValueContext::string(namespace, key),
        1 => ValueContext::hash(namespace, key, b"field"),
        2 => ValueContext::list(namespace, key),
        _ => ValueContext::stream(namespace, key, b"0-1"),
    };
    let member_ctx = if options & 0x40 == 0 {
        MemberContext::set_member(namespace)
    } else {
        MemberContext::hash_field(namespace)
    };

    // The input as an envelope: it cannot have been sealed with this key.
    let _ = is_envelope(rest);
    assert!(
        sealer.open(&value_ctx, rest).is_err(),
        "forged bytes opened"
    );
    assert!(
        sealer.open_member(&member_ctx, rest).is_err(),
        "forged member opened"
    );
    let mut out = BytesMut::from(&b"kept"[..]);
    assert!(sealer.open_into(&value_ctx, rest, &mut out).is_err());
    assert_eq!(&out[..], b"kept", "a failed open changed its output");

    // The input as a plaintext, and as a change to its envelope.
    let (flip, plaintext) = match rest.split_first() {
        Some((&flip, plaintext)) => (flip, plaintext),
        None => (0, rest),
    };
    let member = options & 0x80 != 0;
    let sealed = if member {
        sealer.seal_member(&member_ctx, plaintext)
    } else {
        sealer.seal(&value_ctx, plaintext)
    }
    .expect("a small plaintext seals");
    assert!(is_envelope(&sealed));
    let open = |bytes: &[u8]| {
        if member {
            sealer.open_member(&member_ctx, bytes)
        } else {
            sealer.open(&value_ctx, bytes)
        }
    };
    assert_eq!(open(&sealed).expect("an envelope opens"), plaintext);
    let mut changed = sealed.clone();
    let at = usize::from(flip) % changed.len();
    changed[at] ^= 1 << (flip % 8);
    assert!(open(&changed).is_err(), "a changed envelope opened");
    assert!(
        open(&sealed[..sealed.len() - 1]).is_err(),
        "a truncated envelope opened"
    );
}

// ---- config: the configuration loader (YAML file + environment) -------------------

/// Loads a configuration from YAML and `SEALCACHE_*` variables: an error or
/// a configuration, never a panic; a loaded one renders and yields its warnings.
///
/// Input: the YAML file, then optionally a NUL byte and `NAME=value` lines
/// (each name gets the `SEALCACHE_` prefix).
pub fn config(data: &[u8]) {
    let (yaml, env_text) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let mut env = std::collections::HashMap::new();
    for line in String::from_utf8_lossy(env_text).lines() {
        if let Some((name, value)) = line.split_once('=') {
            env.insert(format!("SEALCACHE_{name}"), value.to_string());
        }
    }
    // One file per process, rewritten for each input.
    let path =
        std::env::temp_dir().join(format!("sealcache-fuzz-config-{}.yaml", std::process::id()));
    std::fs::write(&path, yaml).expect("write the fuzz configuration file");
    let args = sealcache::cli::ConfigArgs {
        config: Some(path),
        ..Default::default()
    };
    if let Ok(config) = sealcache::config::load(&args, &env) {
        let _ = sealcache::config::render_redacted(&config);
        let _ = sealcache::config::warnings(&config);
    }
}
