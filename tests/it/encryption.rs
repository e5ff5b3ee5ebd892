//! Value encryption against real servers (issue 3). What reaches the upstream
//! is ciphertext for every data type, and reads through sealcache return
//! exactly what was written (criteria 5 and 10); ciphertexts are bound to
//! their key, field and namespace (2); undecryptable values follow
//! `on_decrypt_failure` (8); emulated commands answer as redis-server does
//! and stay atomic under concurrency (6); commands that cannot work on
//! ciphertext are refused in one wording (7).
//!
//! Most tests speak RESP through [`RespConn`] rather than the `redis` crate,
//! so replies — error texts included — compare byte for byte with what a
//! plain redis-server answers.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::RngCore as _;
use rand::distr::{Alphanumeric, SampleString as _};
use redis::AsyncCommands as _;

use crate::support::dynamodb::DynamoDbLocal;
use crate::support::resp::{RawConn as RespConn, Value as Resp};
use crate::support::{Certs, Endpoint, RedisServer, Sealcache, SealcacheBuilder, random_password};

/// `cmd!(conn; "SET", key, value)`: one command on a [`RespConn`], any mix
/// of `AsRef<[u8]>` arguments.
macro_rules! cmd {
    ($conn:expr; $($arg:expr),+ $(,)?) => {
        $conn.call(&[$(AsRef::<[u8]>::as_ref(&$arg)),+]).await.value
    };
}

/// `twin!(t; "SETRANGE", key, "0", "")`: one command on both sides of a [`Twin`].
/// An HGETALL reply with its field/value pairs sorted by field.
fn sorted_pairs(reply: Resp) -> Resp {
    match reply {
        Resp::Array(items) => Resp::Array(
            pairs(&items)
                .into_iter()
                .flat_map(|(f, v)| [Resp::Bulk(f), Resp::Bulk(v)])
                .collect(),
        ),
        other => other,
    }
}

macro_rules! twin {
    ($twin:expr; $($arg:expr),+ $(,)?) => {
        $twin.run(&[$(AsRef::<[u8]>::as_ref(&$arg)),+]).await
    };
}

// ---- envelope facts (docs/envelope.md) --------------------------------------------------------

const MAGIC: [u8; 3] = [0xF5, 0xEA, 0x1C];
/// Version byte of randomized AES-256-GCM value envelopes.
const VALUE_ENVELOPE: u8 = 0x01;
/// Version byte of deterministic AES-256-GCM-SIV member envelopes.
const MEMBER_ENVELOPE: u8 = 0x02;
/// magic 3 + version 1 + key id 4 + nonce 12 + tag 16.
const OVERHEAD: usize = 36;
/// No run of this many plaintext bytes may appear upstream.
const WINDOW: usize = 8;
const BIG: usize = 10 * 1024 * 1024;
const LOG_WAIT: Duration = Duration::from_secs(10);
const REPLY_WAIT: Duration = Duration::from_secs(30);

fn upstream() -> RedisServer {
    RedisServer::start_tls(&Certs::generate(), &random_password(32))
}

// ---- plaintexts -------------------------------------------------------------------------------

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// `prefix-` and 24 random alphanumerics: distinctive, printable.
fn random_text(prefix: &str) -> Vec<u8> {
    format!(
        "{prefix}-{}",
        Alphanumeric.sample_string(&mut rand::rng(), 24)
    )
    .into_bytes()
}

/// Invalid UTF-8 (0xFF never occurs in it) followed by random bytes.
fn non_utf8() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xC3, 0x28, 0x00];
    bytes.extend(random_bytes(28));
    assert!(std::str::from_utf8(&bytes).is_err());
    bytes
}

fn all_byte_values() -> Vec<u8> {
    (0..=255).collect()
}

/// A random 64 KiB block repeated to `len`: every 8-byte window still comes
/// from random bytes, and the window set stays small enough to check 10 MiB.
fn big_value(len: usize) -> Vec<u8> {
    let block = random_bytes(64 * 1024);
    block.iter().copied().cycle().take(len).collect()
}

/// The values every data type is checked with.
fn samples() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", Vec::new()),
        ("all-bytes", all_byte_values()),
        ("non-utf8", non_utf8()),
        ("text", random_text("text")),
        (
            "unicode",
            [
                "héllo wörld ✓ ".as_bytes(),
                &random_text("unicode"),
                b"\r\n",
            ]
            .concat(),
        ),
    ]
}

// ---- what the upstream holds ------------------------------------------------------------------

/// First offset of `stored` where a plaintext window (or the whole plaintext,
/// when shorter than a window) occurs.
/// Shorter plaintexts are not searched for (see `plaintext_in`).
const MIN_SEARCHED: usize = 4;

fn plaintext_in(stored: &[u8], plain: &[u8]) -> Option<usize> {
    // A value of 1–3 bytes turns up by chance in ~40 random ciphertext bytes
    // (a single byte about one time in seven): too short to say anything.
    if plain.len() < MIN_SEARCHED {
        return None;
    }
    if plain.len() < WINDOW {
        return stored.windows(plain.len()).position(|w| w == plain);
    }
    let window = |w: &[u8]| u64::from_ne_bytes(w.try_into().expect("window of 8"));
    let windows: HashSet<u64> = plain.windows(WINDOW).map(window).collect();
    stored
        .windows(WINDOW)
        .position(|w| windows.contains(&window(w)))
}

/// `stored` is an envelope of `version` sealing `plain`: magic, version, the
/// exact length, and not one 8-byte run of the plaintext.
#[track_caller]
fn assert_envelope(stored: &[u8], plain: &[u8], version: u8, what: &str) {
    assert!(
        stored.starts_with(&MAGIC),
        "{what}: stored bytes do not start with the envelope magic: {:02x?}",
        &stored[..stored.len().min(12)]
    );
    assert_eq!(stored[3], version, "{what}: envelope version byte");
    assert_eq!(
        stored.len(),
        plain.len() + OVERHEAD,
        "{what}: envelope length"
    );
    if let Some(at) = plaintext_in(stored, plain) {
        panic!("{what}: plaintext bytes appear upstream at offset {at}");
    }
}

#[track_caller]
fn assert_sealed_value(stored: &Resp, plain: &[u8], what: &str) {
    assert_envelope(stored.as_bulk(), plain, VALUE_ENVELOPE, what);
}

/// `stored` (an array of member envelopes) seals exactly `plains`, in any order.
#[track_caller]
fn assert_sealed_members(stored: &[Resp], plains: &[Vec<u8>], what: &str) {
    assert_eq!(stored.len(), plains.len(), "{what}: member count upstream");
    for member in stored {
        let member = member.as_bulk();
        assert!(
            member.starts_with(&MAGIC) && member[3] == MEMBER_ENVELOPE,
            "{what}: member is not a member envelope: {:02x?}",
            &member[..member.len().min(12)]
        );
        for plain in plains {
            assert!(
                plaintext_in(member, plain).is_none(),
                "{what}: plaintext bytes appear in a stored member"
            );
        }
    }
    let mut lengths: Vec<usize> = stored.iter().map(|m| m.as_bulk().len()).collect();
    let mut expected: Vec<usize> = plains.iter().map(|p| p.len() + OVERHEAD).collect();
    lengths.sort_unstable();
    expected.sort_unstable();
    assert_eq!(lengths, expected, "{what}: member envelope lengths");
}

fn sorted(mut items: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    items.sort();
    items
}

fn bulks(reply: &Resp) -> Vec<Vec<u8>> {
    reply.items().iter().map(|r| r.as_bulk().to_vec()).collect()
}

/// `[f1, v1, f2, v2…]` as sorted pairs.
fn pairs(items: &[Resp]) -> Vec<(Vec<u8>, Vec<u8>)> {
    assert!(
        items.len().is_multiple_of(2),
        "odd field/value list: {items:?}"
    );
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = items
        .chunks(2)
        .map(|p| (p[0].as_bulk().to_vec(), p[1].as_bulk().to_vec()))
        .collect();
    out.sort();
    out
}

// ---- criterion 10 (and 5): every data type is ciphertext upstream ----------------------------

#[tokio::test]
async fn strings_are_sealed_upstream_and_read_back_exactly() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;

    let mut values = samples();
    values.push(("10MiB", big_value(BIG)));
    for (name, value) in &values {
        let key = format!("str:{name}");
        assert_eq!(cmd!(c; "SET", key, value), ok(), "SET {key}");
        assert_eq!(cmd!(c; "GET", key), bulk(value), "GET {key}");
        assert_sealed_value(&cmd!(raw; "GET", key), value, &key);
    }

    // MSET / MGET, with a missing key in place.
    let (a, b) = (random_text("mset-a"), non_utf8());
    assert_eq!(cmd!(c; "MSET", "m:a", a, "m:b", b, "m:empty", ""), ok());
    assert_eq!(
        cmd!(c; "MGET", "m:a", "m:missing", "m:b", "m:empty"),
        Resp::Array(vec![bulk(&a), Resp::Null, bulk(&b), bulk(b"")])
    );
    assert_sealed_value(&cmd!(raw; "GET", "m:a"), &a, "MSET m:a");
    assert_sealed_value(&cmd!(raw; "GET", "m:b"), &b, "MSET m:b");
    assert_sealed_value(&cmd!(raw; "GET", "m:empty"), b"", "MSET m:empty");
    assert_eq!(cmd!(c; "MSETNX", "m:new", a, "m:a", b), Resp::Int(0));
    assert_eq!(cmd!(c; "MSETNX", "m:new", a, "m:new2", b), Resp::Int(1));
    assert_eq!(cmd!(c; "GET", "m:new2"), bulk(&b));
    assert_sealed_value(&cmd!(raw; "GET", "m:new"), &a, "MSETNX m:new");

    // SETEX / PSETEX / SETNX.
    let v = random_text("setex");
    assert_eq!(cmd!(c; "SETEX", "s:ex", "1000", v), ok());
    assert_eq!(cmd!(c; "GET", "s:ex"), bulk(&v));
    assert!(cmd!(c; "TTL", "s:ex").as_int() > 0);
    assert_sealed_value(&cmd!(raw; "GET", "s:ex"), &v, "SETEX");
    assert_eq!(cmd!(c; "PSETEX", "s:pex", "1000000", v), ok());
    assert_eq!(cmd!(c; "GET", "s:pex"), bulk(&v));
    assert_sealed_value(&cmd!(raw; "GET", "s:pex"), &v, "PSETEX");
    assert_eq!(cmd!(c; "SETNX", "s:nx", v), Resp::Int(1));
    assert_eq!(cmd!(c; "SETNX", "s:nx", "other"), Resp::Int(0));
    assert_eq!(cmd!(c; "GET", "s:nx"), bulk(&v));
    assert_sealed_value(&cmd!(raw; "GET", "s:nx"), &v, "SETNX");

    // GETSET answers the old value and stores the new one sealed.
    let (old, new) = (random_text("old"), all_byte_values());
    assert_eq!(cmd!(c; "SET", "s:swap", old), ok());
    assert_eq!(cmd!(c; "GETSET", "s:swap", new), bulk(&old));
    assert_eq!(cmd!(c; "GET", "s:swap"), bulk(&new));
    assert_sealed_value(&cmd!(raw; "GET", "s:swap"), &new, "GETSET");
    assert_eq!(cmd!(c; "GETSET", "s:swap-missing", new), Resp::Null);

    // GETDEL / GETEX.
    assert_eq!(cmd!(c; "GETDEL", "s:swap"), bulk(&new));
    assert_eq!(cmd!(c; "EXISTS", "s:swap"), Resp::Int(0));
    assert_eq!(cmd!(c; "GETDEL", "s:swap"), Resp::Null);
    assert_eq!(cmd!(c; "SET", "s:getex", old), ok());
    assert_eq!(cmd!(c; "GETEX", "s:getex", "EX", "1000"), bulk(&old));
    assert!(cmd!(c; "TTL", "s:getex").as_int() > 0);
    assert_eq!(cmd!(c; "GETEX", "s:getex", "PERSIST"), bulk(&old));
    assert_eq!(cmd!(c; "TTL", "s:getex"), Resp::Int(-1));
    assert_sealed_value(&cmd!(raw; "GET", "s:getex"), &old, "GETEX");

    // SET's options.
    let (x, y) = (random_text("opt-x"), random_text("opt-y"));
    assert_eq!(cmd!(c; "SET", "s:opt", x, "NX"), ok());
    assert_eq!(cmd!(c; "SET", "s:opt", y, "NX"), Resp::Null);
    assert_eq!(cmd!(c; "SET", "s:opt", y, "XX", "GET"), bulk(&x));
    assert_eq!(cmd!(c; "SET", "s:opt-none", y, "XX"), Resp::Null);
    assert_eq!(cmd!(c; "SET", "s:opt", x, "EX", "1000", "GET"), bulk(&y));
    assert_eq!(cmd!(c; "SET", "s:opt", y, "KEEPTTL"), ok());
    assert!(cmd!(c; "TTL", "s:opt").as_int() > 0, "KEEPTTL kept the TTL");
    assert_eq!(cmd!(c; "SET", "s:opt", x, "PX", "1000000"), ok());
    assert_eq!(cmd!(c; "SET", "s:opt", x, "EXAT", "4102444800"), ok());
    assert_eq!(
        cmd!(c; "SET", "s:opt", y, "PXAT", "4102444800000", "GET"),
        bulk(&x)
    );
    assert_eq!(cmd!(c; "SET", "s:opt-get", x, "GET"), Resp::Null);
    assert_eq!(cmd!(c; "GET", "s:opt"), bulk(&y));
    assert_sealed_value(&cmd!(raw; "GET", "s:opt"), &y, "SET PXAT");

    // Keys stay plaintext: KEYS, SCAN, TYPE, EXISTS pass unchanged.
    assert_eq!(
        sorted(bulks(&cmd!(c; "KEYS", "m:*"))),
        sorted(bulks(&cmd!(raw; "KEYS", "m:*")))
    );
    assert_eq!(cmd!(c; "TYPE", "m:a"), Resp::Simple("string".into()));
    let scan = cmd!(c; "SCAN", "0", "MATCH", "str:*", "COUNT", "1000");
    assert_eq!(scan.items()[1].items().len(), values.len());
}

#[tokio::test]
async fn hashes_are_sealed_upstream_and_read_back_exactly() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;

    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = samples()
        .into_iter()
        .map(|(name, value)| (format!("f-{name}").into_bytes(), value))
        .collect();
    fields.push((b"f-1MiB".to_vec(), big_value(1024 * 1024)));
    let mut hset: Vec<&[u8]> = vec![b"HSET", b"h"];
    for (f, v) in &fields {
        hset.push(f);
        hset.push(v);
    }
    assert_eq!(c.call(&hset).await.value, Resp::Int(fields.len() as i64));
    let mut expected = fields.clone();
    expected.sort();

    for (f, v) in &fields {
        assert_eq!(cmd!(c; "HGET", "h", f), bulk(v), "HGET {f:?}");
        assert_sealed_value(
            &cmd!(raw; "HGET", "h", f),
            v,
            &format!("HSET field {}", String::from_utf8_lossy(f)),
        );
    }
    let (f0, v0) = &fields[1];
    let (f1, v1) = &fields[3];
    assert_eq!(
        cmd!(c; "HMGET", "h", f0, "f-missing", f1),
        Resp::Array(vec![bulk(v0), Resp::Null, bulk(v1)])
    );
    assert_eq!(pairs(cmd!(c; "HGETALL", "h").items()), expected);
    let mut values: Vec<Vec<u8>> = fields.iter().map(|(_, v)| v.clone()).collect();
    values.sort();
    assert_eq!(sorted(bulks(&cmd!(c; "HVALS", "h"))), values);
    assert_eq!(
        pairs(cmd!(c; "HRANDFIELD", "h", "100", "WITHVALUES").items()),
        expected
    );
    let random = cmd!(c; "HRANDFIELD", "h", "-3", "WITHVALUES");
    for (f, v) in pairs(random.items()) {
        assert!(expected.contains(&(f, v)), "HRANDFIELD -3 WITHVALUES");
    }
    let mut scanned = Vec::new();
    let mut cursor = b"0".to_vec();
    loop {
        let reply = cmd!(c; "HSCAN", "h", cursor, "COUNT", "1000");
        scanned.extend(reply.items()[1].items().iter().cloned());
        cursor = reply.items()[0].as_bulk().to_vec();
        if cursor == b"0" {
            break;
        }
    }
    assert_eq!(pairs(&scanned), expected, "HSCAN");

    // Field names stay plaintext upstream; every value is an envelope.
    let stored = pairs(cmd!(raw; "HGETALL", "h").items());
    for ((f, v), (sf, sv)) in expected.iter().zip(&stored) {
        assert_eq!(f, sf, "field names stay plaintext");
        assert_envelope(sv, v, VALUE_ENVELOPE, "HGETALL upstream");
    }
    assert_eq!(
        sorted(bulks(&cmd!(c; "HKEYS", "h"))),
        sorted(fields.iter().map(|(f, _)| f.clone()).collect())
    );

    // HSETNX and HMSET.
    let v = random_text("hsetnx");
    assert_eq!(cmd!(c; "HSETNX", "h", "f-new", v), Resp::Int(1));
    assert_eq!(cmd!(c; "HSETNX", "h", "f-new", "other"), Resp::Int(0));
    assert_eq!(cmd!(c; "HGET", "h", "f-new"), bulk(&v));
    assert_sealed_value(&cmd!(raw; "HGET", "h", "f-new"), &v, "HSETNX");
    let w = non_utf8();
    assert_eq!(cmd!(c; "HMSET", "h2", "a", w, "b", v), ok());
    assert_eq!(
        cmd!(c; "HMGET", "h2", "b", "a"),
        Resp::Array(vec![bulk(&v), bulk(&w)])
    );
    assert_sealed_value(&cmd!(raw; "HGET", "h2", "a"), &w, "HMSET");
}

#[tokio::test]
async fn lists_are_sealed_upstream_and_read_back_exactly() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;

    let mut values: Vec<Vec<u8>> = samples().into_iter().map(|(_, v)| v).collect();
    values.push(big_value(1024 * 1024));
    let mut rpush: Vec<&[u8]> = vec![b"RPUSH", b"l"];
    rpush.extend(values.iter().map(Vec::as_slice));
    assert_eq!(c.call(&rpush).await.value, Resp::Int(values.len() as i64));
    let head = random_text("head");
    assert_eq!(
        cmd!(c; "LPUSH", "l", head),
        Resp::Int(values.len() as i64 + 1)
    );
    let mut all = vec![head.clone()];
    all.extend(values.iter().cloned());
    assert_eq!(bulks(&cmd!(c; "LRANGE", "l", "0", "-1")), all);
    let stored = cmd!(raw; "LRANGE", "l", "0", "-1");
    assert_eq!(stored.items().len(), all.len());
    for (s, v) in stored.items().iter().zip(&all) {
        assert_sealed_value(s, v, "RPUSH/LPUSH element");
    }

    assert_eq!(cmd!(c; "LINDEX", "l", "2"), bulk(&all[2]));
    assert_eq!(cmd!(c; "LINDEX", "l", "100"), Resp::Null);
    let replaced = random_text("lset");
    assert_eq!(cmd!(c; "LSET", "l", "2", replaced), ok());
    assert_eq!(cmd!(c; "LINDEX", "l", "2"), bulk(&replaced));
    assert_sealed_value(&cmd!(raw; "LINDEX", "l", "2"), &replaced, "LSET");

    // Pops, with and without counts.
    assert_eq!(
        cmd!(c; "LPOP", "l", "2"),
        Resp::Array(vec![bulk(&all[0]), bulk(&all[1])])
    );
    assert_eq!(cmd!(c; "RPOP", "l"), bulk(&all[all.len() - 1]));
    assert_eq!(
        cmd!(c; "RPOP", "l", "1"),
        Resp::Array(vec![bulk(&all[all.len() - 2])])
    );
    // Left now: replaced, all[3], all[4].
    assert_eq!(cmd!(c; "LPOP", "l"), bulk(&replaced));

    // Moves between lists keep elements readable (bound to the namespace).
    assert_eq!(cmd!(c; "LMOVE", "l", "l2", "LEFT", "RIGHT"), bulk(&all[3]));
    assert_eq!(cmd!(c; "RPOPLPUSH", "l", "l2"), bulk(&all[4]));
    assert_eq!(
        bulks(&cmd!(c; "LRANGE", "l2", "0", "-1")),
        vec![all[4].clone(), all[3].clone()]
    );
    assert_sealed_value(&cmd!(raw; "LINDEX", "l2", "1"), &all[3], "LMOVE");
    assert_eq!(
        cmd!(c; "BLPOP", "l-empty", "l2", "1"),
        Resp::Array(vec![bulk(b"l2"), bulk(&all[4])])
    );
    assert_eq!(
        cmd!(c; "BRPOP", "l2", "1"),
        Resp::Array(vec![bulk(b"l2"), bulk(&all[3])])
    );

    let (p, q, r) = (random_text("p"), non_utf8(), Vec::new());
    assert_eq!(cmd!(c; "RPUSH", "l3", p, q, r), Resp::Int(3));
    assert_eq!(
        cmd!(c; "LMPOP", "2", "l-empty", "l3", "LEFT", "COUNT", "2"),
        Resp::Array(vec![bulk(b"l3"), Resp::Array(vec![bulk(&p), bulk(&q)])])
    );
    assert_eq!(
        cmd!(c; "BLMPOP", "1", "1", "l3", "RIGHT"),
        Resp::Array(vec![bulk(b"l3"), Resp::Array(vec![bulk(&r)])])
    );
    assert_eq!(cmd!(c; "LMPOP", "1", "l3", "LEFT"), Resp::Null);
    assert_eq!(cmd!(c; "RPUSHX", "l3", p), Resp::Int(0));
    assert_eq!(cmd!(c; "RPUSH", "l3", p), Resp::Int(1));
    assert_eq!(cmd!(c; "LPUSHX", "l3", q), Resp::Int(2));
    assert_eq!(cmd!(c; "RPUSHX", "l3", r), Resp::Int(3));
    assert_eq!(cmd!(c; "BLMOVE", "l3", "l4", "LEFT", "LEFT", "1"), bulk(&q));
    assert_eq!(
        cmd!(c; "LRANGE", "l4", "0", "-1"),
        Resp::Array(vec![bulk(&q)])
    );
    let stored = cmd!(raw; "LRANGE", "l3", "0", "-1");
    assert_sealed_value(&stored.items()[0], &p, "RPUSH l3");
    assert_sealed_value(&stored.items()[1], &r, "RPUSHX l3");
    assert_sealed_value(&cmd!(raw; "LINDEX", "l4", "0"), &q, "BLMOVE");
}

#[tokio::test]
async fn sets_are_sealed_upstream_and_work_on_ciphertext() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;

    let m: Vec<Vec<u8>> = samples().into_iter().map(|(_, v)| v).collect();
    let extra = random_text("extra");
    let mut sadd: Vec<&[u8]> = vec![b"SADD", b"s1"];
    sadd.extend(m.iter().map(Vec::as_slice));
    assert_eq!(c.call(&sadd).await.value, Resp::Int(m.len() as i64));
    assert_eq!(
        cmd!(c; "SADD", "s1", m[0]),
        Resp::Int(0),
        "equal members are equal"
    );
    assert_eq!(sorted(bulks(&cmd!(c; "SMEMBERS", "s1"))), sorted(m.clone()));
    assert_sealed_members(cmd!(raw; "SMEMBERS", "s1").items(), &m, "SADD s1");
    assert_eq!(cmd!(c; "SCARD", "s1"), Resp::Int(m.len() as i64));

    assert_eq!(cmd!(c; "SISMEMBER", "s1", m[1]), Resp::Int(1));
    assert_eq!(cmd!(c; "SISMEMBER", "s1", extra), Resp::Int(0));
    assert_eq!(
        cmd!(c; "SMISMEMBER", "s1", m[2], extra, m[0]),
        Resp::Array(vec![Resp::Int(1), Resp::Int(0), Resp::Int(1)])
    );

    assert_eq!(cmd!(c; "SADD", "s2", m[1], m[2], extra), Resp::Int(3));
    let both = sorted(vec![m[1].clone(), m[2].clone()]);
    assert_eq!(sorted(bulks(&cmd!(c; "SINTER", "s1", "s2"))), both);
    let mut union = m.clone();
    union.push(extra.clone());
    assert_eq!(
        sorted(bulks(&cmd!(c; "SUNION", "s1", "s2"))),
        sorted(union.clone())
    );
    let only_s1: Vec<Vec<u8>> = m
        .iter()
        .filter(|v| **v != m[1] && **v != m[2])
        .cloned()
        .collect();
    assert_eq!(
        sorted(bulks(&cmd!(c; "SDIFF", "s1", "s2"))),
        sorted(only_s1.clone())
    );
    assert_eq!(cmd!(c; "SINTERSTORE", "s3", "s1", "s2"), Resp::Int(2));
    assert_eq!(sorted(bulks(&cmd!(c; "SMEMBERS", "s3"))), both);
    assert_eq!(
        cmd!(c; "SUNIONSTORE", "s4", "s1", "s2"),
        Resp::Int(union.len() as i64)
    );
    assert_eq!(sorted(bulks(&cmd!(c; "SMEMBERS", "s4"))), sorted(union));
    assert_eq!(
        cmd!(c; "SDIFFSTORE", "s5", "s1", "s2"),
        Resp::Int(only_s1.len() as i64)
    );
    assert_eq!(sorted(bulks(&cmd!(c; "SMEMBERS", "s5"))), sorted(only_s1));
    assert_sealed_members(cmd!(raw; "SMEMBERS", "s3").items(), &both, "SINTERSTORE");

    assert_eq!(cmd!(c; "SREM", "s1", m[0], extra), Resp::Int(1));
    assert_eq!(cmd!(c; "SISMEMBER", "s1", m[0]), Resp::Int(0));
    assert_eq!(cmd!(c; "SMOVE", "s1", "s6", m[3]), Resp::Int(1));
    assert_eq!(cmd!(c; "SMOVE", "s1", "s6", m[3]), Resp::Int(0));
    assert_eq!(cmd!(c; "SMEMBERS", "s6"), Resp::Array(vec![bulk(&m[3])]));
    assert_eq!(cmd!(c; "SISMEMBER", "s1", m[3]), Resp::Int(0));
    assert_sealed_members(
        cmd!(raw; "SMEMBERS", "s6").items(),
        std::slice::from_ref(&m[3]),
        "SMOVE",
    );

    let s2 = sorted(vec![m[1].clone(), m[2].clone(), extra.clone()]);
    assert_eq!(
        sorted(bulks(&cmd!(c; "SRANDMEMBER", "s2", "10"))),
        s2.clone()
    );
    let mut scanned = bulks(&cmd!(c; "SSCAN", "s2", "0", "COUNT", "100").items()[1]);
    scanned.sort();
    assert_eq!(scanned, s2);
    let popped = cmd!(c; "SPOP", "s2").as_bulk().to_vec();
    assert!(s2.contains(&popped), "SPOP returned a member");
    assert_eq!(cmd!(c; "SCARD", "s2"), Resp::Int(2));
}

#[tokio::test]
async fn sorted_sets_are_sealed_upstream_and_work_on_ciphertext() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;

    let m: Vec<Vec<u8>> = samples().into_iter().map(|(_, v)| v).collect();
    let (m0, m1, m2, m3, m4) = (&m[0], &m[1], &m[2], &m[3], &m[4]);
    assert_eq!(
        cmd!(c; "ZADD", "z", "1", m0, "2", m1, "3", m2, "4", m3),
        Resp::Int(4)
    );
    assert_eq!(
        cmd!(c; "ZRANGE", "z", "0", "-1", "WITHSCORES"),
        Resp::Array(vec![
            bulk(m0),
            bulk(b"1"),
            bulk(m1),
            bulk(b"2"),
            bulk(m2),
            bulk(b"3"),
            bulk(m3),
            bulk(b"4")
        ])
    );
    let stored = cmd!(raw; "ZRANGE", "z", "0", "-1", "WITHSCORES");
    let stored = stored.items();
    assert_eq!(
        stored
            .iter()
            .skip(1)
            .step_by(2)
            .cloned()
            .collect::<Vec<_>>(),
        vec![bulk(b"1"), bulk(b"2"), bulk(b"3"), bulk(b"4")],
        "scores stay plaintext"
    );
    let members: Vec<Resp> = stored.iter().step_by(2).cloned().collect();
    assert_sealed_members(&members, &m[..4], "ZADD");

    assert_eq!(cmd!(c; "ZSCORE", "z", m2), bulk(b"3"));
    assert_eq!(cmd!(c; "ZSCORE", "z", m4), Resp::Null);
    assert_eq!(cmd!(c; "ZRANK", "z", m2), Resp::Int(2));
    assert_eq!(cmd!(c; "ZREVRANK", "z", m2), Resp::Int(1));
    assert_eq!(
        cmd!(c; "ZMSCORE", "z", m1, m4),
        Resp::Array(vec![bulk(b"2"), Resp::Null])
    );
    assert_eq!(cmd!(c; "ZINCRBY", "z", "10", m0), bulk(b"11"));
    assert_eq!(
        bulks(&cmd!(c; "ZRANGE", "z", "0", "-1")),
        vec![m1.clone(), m2.clone(), m3.clone(), m0.clone()]
    );
    assert_eq!(cmd!(c; "ZREM", "z", m1, m4), Resp::Int(1));
    assert_eq!(
        cmd!(c; "ZRANGEBYSCORE", "z", "3", "5", "WITHSCORES"),
        Resp::Array(vec![bulk(m2), bulk(b"3"), bulk(m3), bulk(b"4")])
    );
    assert_eq!(
        bulks(&cmd!(c; "ZREVRANGEBYSCORE", "z", "+inf", "4")),
        vec![m0.clone(), m3.clone()]
    );
    assert_eq!(
        bulks(&cmd!(c; "ZREVRANGE", "z", "0", "0")),
        vec![m0.clone()]
    );

    // Set algebra across keys works because members are bound to the namespace.
    assert_eq!(cmd!(c; "ZADD", "z2", "5", m2, "7", m4), Resp::Int(2));
    assert_eq!(
        cmd!(c; "ZUNION", "2", "z", "z2", "WITHSCORES"),
        Resp::Array(vec![
            bulk(m3),
            bulk(b"4"),
            bulk(m4),
            bulk(b"7"),
            bulk(m2),
            bulk(b"8"),
            bulk(m0),
            bulk(b"11")
        ])
    );
    assert_eq!(
        cmd!(c; "ZINTER", "2", "z", "z2"),
        Resp::Array(vec![bulk(m2)])
    );
    assert_eq!(
        bulks(&cmd!(c; "ZDIFF", "2", "z", "z2")),
        vec![m3.clone(), m0.clone()]
    );
    assert_eq!(cmd!(c; "ZUNIONSTORE", "z3", "2", "z", "z2"), Resp::Int(4));
    assert_eq!(
        bulks(&cmd!(c; "ZRANGE", "z3", "0", "-1")),
        vec![m3.clone(), m4.clone(), m2.clone(), m0.clone()]
    );
    let stored = cmd!(raw; "ZRANGE", "z3", "0", "-1");
    assert_sealed_members(
        stored.items(),
        &[m3.clone(), m4.clone(), m2.clone(), m0.clone()],
        "ZUNIONSTORE",
    );

    // SCAN order follows the upstream encoding, which longer (sealed) members change.
    let scan = cmd!(c; "ZSCAN", "z2", "0");
    assert_eq!(scan.items()[0], bulk(b"0"));
    let mut expected = vec![(m2.clone(), b"5".to_vec()), (m4.clone(), b"7".to_vec())];
    expected.sort();
    assert_eq!(pairs(scan.items()[1].items()), expected);
    assert_eq!(
        cmd!(c; "ZPOPMIN", "z"),
        Resp::Array(vec![bulk(m2), bulk(b"3")])
    );
    assert_eq!(
        cmd!(c; "ZPOPMAX", "z", "1"),
        Resp::Array(vec![bulk(m0), bulk(b"11")])
    );
    assert_eq!(
        cmd!(c; "BZPOPMIN", "z-empty", "z2", "1"),
        Resp::Array(vec![bulk(b"z2"), bulk(m2), bulk(b"5")])
    );
    assert_eq!(
        cmd!(c; "ZMPOP", "1", "z2", "MAX"),
        Resp::Array(vec![
            bulk(b"z2"),
            Resp::Array(vec![Resp::Array(vec![bulk(m4), bulk(b"7")])])
        ])
    );
    assert_eq!(
        cmd!(c; "ZRANDMEMBER", "z", "5"),
        Resp::Array(vec![bulk(m3)])
    );

    // Geo members are sorted-set members too.
    let (palermo, catania) = (random_text("palermo"), random_text("catania"));
    assert_eq!(
        cmd!(c; "GEOADD", "g", "13.361389", "38.115556", palermo, "15.087269", "37.502669", catania),
        Resp::Int(2)
    );
    assert_eq!(
        cmd!(c; "GEODIST", "g", palermo, catania, "km"),
        bulk(b"166.2742")
    );
    assert_eq!(
        bulks(&cmd!(c; "GEOSEARCH", "g", "FROMMEMBER", palermo, "BYRADIUS", "200", "km", "ASC")),
        vec![palermo.clone(), catania.clone()]
    );
    assert_eq!(cmd!(c; "GEOPOS", "g", palermo).items().len(), 1);
    assert_sealed_members(
        cmd!(raw; "ZRANGE", "g", "0", "-1").items(),
        &[palermo, catania],
        "GEOADD",
    );
}

#[tokio::test]
async fn streams_are_sealed_upstream_and_read_back_exactly() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;

    let fields: Vec<(Vec<u8>, Vec<u8>)> = samples()
        .into_iter()
        .map(|(name, value)| (format!("f-{name}").into_bytes(), value))
        .collect();
    let mut xadd: Vec<&[u8]> = vec![b"XADD", b"x", b"*"];
    for (f, v) in &fields {
        xadd.push(f);
        xadd.push(v);
    }
    let id1 = c.call(&xadd).await.value.as_bulk().to_vec();
    let second = random_text("second");
    let id2 = cmd!(c; "XADD", "x", "MAXLEN", "~", "100", "*", "only", second)
        .as_bulk()
        .to_vec();
    let flat: Vec<Resp> = fields
        .iter()
        .flat_map(|(f, v)| [bulk(f), bulk(v)])
        .collect();
    let entry1 = Resp::Array(vec![bulk(&id1), Resp::Array(flat)]);
    let entry2 = Resp::Array(vec![
        bulk(&id2),
        Resp::Array(vec![bulk(b"only"), bulk(&second)]),
    ]);

    assert_eq!(
        cmd!(c; "XRANGE", "x", "-", "+"),
        Resp::Array(vec![entry1.clone(), entry2.clone()])
    );
    assert_eq!(
        cmd!(c; "XREVRANGE", "x", "+", "-"),
        Resp::Array(vec![entry2.clone(), entry1.clone()])
    );
    let read = Resp::Array(vec![Resp::Array(vec![
        bulk(b"x"),
        Resp::Array(vec![entry1.clone(), entry2.clone()]),
    ])]);
    assert_eq!(cmd!(c; "XREAD", "COUNT", "10", "STREAMS", "x", "0"), read);
    assert_eq!(
        cmd!(c; "XREAD", "BLOCK", "100", "STREAMS", "x", "0"),
        read,
        "XREAD BLOCK"
    );

    // Field names stay plaintext upstream; values are envelopes.
    let stored = cmd!(raw; "XRANGE", "x", "-", "+");
    let stored_fields = stored.items()[0].items()[1].items();
    for ((f, v), pair) in fields.iter().zip(stored_fields.chunks(2)) {
        assert_eq!(pair[0], bulk(f), "stream field names stay plaintext");
        assert_sealed_value(&pair[1], v, "XADD value");
    }
    assert_sealed_value(
        &stored.items()[1].items()[1].items()[1],
        &second,
        "XADD MAXLEN value",
    );

    // Consumer groups.
    assert_eq!(cmd!(c; "XGROUP", "CREATE", "x", "g", "0"), ok());
    assert_eq!(
        cmd!(c; "XREADGROUP", "GROUP", "g", "c1", "COUNT", "10", "STREAMS", "x", ">"),
        read
    );
    assert_eq!(
        cmd!(c; "XAUTOCLAIM", "x", "g", "c2", "0", "0-0", "COUNT", "10"),
        Resp::Array(vec![
            bulk(b"0-0"),
            Resp::Array(vec![entry1.clone(), entry2.clone()]),
            Resp::Array(vec![])
        ])
    );
    assert_eq!(
        cmd!(c; "XCLAIM", "x", "g", "c3", "0", id2),
        Resp::Array(vec![entry2.clone()])
    );
    assert_eq!(cmd!(c; "XACK", "x", "g", id1, id2), Resp::Int(2));
    assert_eq!(cmd!(c; "XLEN", "x"), Resp::Int(2));
}

/// Redis answers XREAD's streams in the order they were asked for.
#[tokio::test]
async fn xread_of_several_streams_answers_them_in_the_order_asked() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let (a, b) = (random_text("a"), random_text("b"));
    cmd!(c; "XADD", "xa", "1-1", "f", a);
    cmd!(c; "XADD", "xb", "1-1", "f", b);
    let entry = |v: &[u8]| {
        Resp::Array(vec![Resp::Array(vec![
            bulk(b"1-1"),
            Resp::Array(vec![bulk(b"f"), bulk(v)]),
        ])])
    };
    assert_eq!(
        cmd!(c; "XREAD", "STREAMS", "xa", "xb", "0", "0"),
        Resp::Array(vec![
            Resp::Array(vec![bulk(b"xa"), entry(&a)]),
            Resp::Array(vec![bulk(b"xb"), entry(&b)]),
        ])
    );
}

#[tokio::test]
async fn pubsub_payloads_are_sealed_upstream_and_opened_for_subscribers() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut through = proxy
        .endpoint()
        .redis_client()
        .get_async_pubsub()
        .await
        .unwrap();
    through.subscribe("news").await.unwrap();
    through.psubscribe("ne*").await.unwrap();
    let mut direct = proxy
        .raw_upstream()
        .redis_client()
        .get_async_pubsub()
        .await
        .unwrap();
    direct.subscribe("news").await.unwrap();
    let mut publisher = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;

    let values: Vec<Vec<u8>> = samples().into_iter().map(|(_, v)| v).collect();
    for v in &values {
        // Two connections subscribed to the channel, one to a matching pattern.
        assert_eq!(cmd!(publisher; "PUBLISH", "news", v), Resp::Int(3));
    }
    // Around the proxy: plaintext, and a payload sealed for another channel.
    let last = random_text("last");
    let mut direct_messages = direct.on_message();
    let mut sealed_for_news = Vec::new();
    for v in &values {
        let msg = tokio::time::timeout(REPLY_WAIT, direct_messages.next())
            .await
            .expect("message on the raw subscriber")
            .expect("raw subscription open");
        assert_envelope(
            msg.get_payload_bytes(),
            v,
            VALUE_ENVELOPE,
            "PUBLISH payload",
        );
        sealed_for_news.push(msg.get_payload_bytes().to_vec());
    }
    assert_eq!(
        cmd!(raw; "PUBLISH", "news", "plaintext around the proxy"),
        Resp::Int(3)
    );
    assert_eq!(
        cmd!(raw; "PUBLISH", "newt", sealed_for_news[3]),
        Resp::Int(1)
    );
    assert_eq!(cmd!(publisher; "PUBLISH", "news", last), Resp::Int(3));

    let mut messages = through.on_message();
    let mut got: Vec<(String, Vec<u8>)> = Vec::new();
    while got.len() < 2 * (values.len() + 1) {
        let msg = tokio::time::timeout(REPLY_WAIT, messages.next())
            .await
            .unwrap_or_else(|_| panic!("only {} messages arrived: {got:?}", got.len()))
            .expect("subscription open");
        got.push((
            msg.get_channel_name().to_owned(),
            msg.get_payload_bytes().to_vec(),
        ));
    }
    let mut expected: Vec<(String, Vec<u8>)> = Vec::new();
    for v in values.iter().chain([&last]) {
        expected.push(("news".into(), v.clone()));
        expected.push(("news".into(), v.clone()));
    }
    got.sort();
    expected.sort();
    assert_eq!(
        got, expected,
        "subscribers through sealcache get plaintexts; undecryptable messages are dropped"
    );

    // Sharded Pub/Sub: SPUBLISH payloads are sealed too, and opened for SSUBSCRIBE.
    let mut shard = RespConn::open(&proxy.endpoint()).await;
    let mut raw_shard = RespConn::open(&proxy.raw_upstream()).await;
    let confirmed =
        |channel: &str| Resp::Array(vec![bulk(b"ssubscribe"), bulk(channel), Resp::Int(1)]);
    assert_eq!(cmd!(shard; "SSUBSCRIBE", "orders"), confirmed("orders"));
    assert_eq!(cmd!(raw_shard; "SSUBSCRIBE", "orders"), confirmed("orders"));
    let order = non_utf8();
    assert_eq!(cmd!(publisher; "SPUBLISH", "orders", order), Resp::Int(2));
    assert_eq!(
        shard.read().await.value,
        Resp::Array(vec![bulk(b"smessage"), bulk(b"orders"), bulk(&order)])
    );
    let sealed = raw_shard.read().await.value;
    assert_eq!(sealed.items()[0], bulk(b"smessage"));
    assert_envelope(
        sealed.items()[2].as_bulk(),
        &order,
        VALUE_ENVELOPE,
        "SPUBLISH payload",
    );
}

#[tokio::test]
async fn multi_exec_seals_queued_commands_and_opens_exec_replies() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;
    let (v, w, e, m) = (
        random_text("tx"),
        non_utf8(),
        random_text("elem"),
        random_text("member"),
    );

    assert_eq!(cmd!(c; "MULTI"), ok());
    let queued = Resp::Simple("QUEUED".into());
    for reply in [
        cmd!(c; "SET", "t:s", v),
        cmd!(c; "HSET", "t:h", "f", w),
        cmd!(c; "RPUSH", "t:l", e, v),
        cmd!(c; "SADD", "t:set", m),
        cmd!(c; "ZADD", "t:z", "1", m),
        cmd!(c; "GET", "t:s"),
        cmd!(c; "MGET", "t:s", "t:missing"),
        cmd!(c; "HGETALL", "t:h"),
        cmd!(c; "LRANGE", "t:l", "0", "-1"),
        cmd!(c; "SMEMBERS", "t:set"),
        cmd!(c; "ZRANGE", "t:z", "0", "-1", "WITHSCORES"),
        cmd!(c; "TTL", "t:s"),
    ] {
        assert_eq!(reply, queued);
    }
    assert_eq!(
        cmd!(c; "EXEC"),
        Resp::Array(vec![
            ok(),
            Resp::Int(1),
            Resp::Int(2),
            Resp::Int(1),
            Resp::Int(1),
            bulk(&v),
            Resp::Array(vec![bulk(&v), Resp::Null]),
            Resp::Array(vec![bulk(b"f"), bulk(&w)]),
            Resp::Array(vec![bulk(&e), bulk(&v)]),
            Resp::Array(vec![bulk(&m)]),
            Resp::Array(vec![bulk(&m), bulk(b"1")]),
            Resp::Int(-1),
        ])
    );
    assert_sealed_value(&cmd!(raw; "GET", "t:s"), &v, "SET in MULTI");
    assert_sealed_value(&cmd!(raw; "HGET", "t:h", "f"), &w, "HSET in MULTI");
    assert_sealed_value(&cmd!(raw; "LINDEX", "t:l", "0"), &e, "RPUSH in MULTI");
    assert_sealed_members(
        cmd!(raw; "SMEMBERS", "t:set").items(),
        std::slice::from_ref(&m),
        "SADD in MULTI",
    );

    // A command sealcache cannot queue is refused, and EXEC aborts as Redis does.
    assert_eq!(cmd!(c; "MULTI"), ok());
    assert_eq!(cmd!(c; "SET", "t:s", w), queued);
    let refused = cmd!(c; "RENAME", "t:s", "t:r");
    assert!(
        refused
            .as_error()
            .starts_with("ERR sealcache: RENAME is not available inside MULTI"),
        "{refused:?}"
    );
    assert_eq!(
        cmd!(c; "EXEC"),
        Resp::Error("EXECABORT Transaction discarded because of previous errors.".into())
    );
    assert_eq!(
        cmd!(c; "GET", "t:s"),
        bulk(&v),
        "the aborted SET did not run"
    );

    // An emulated command in a transaction writes its result sealed.
    assert_eq!(cmd!(c; "MULTI"), ok());
    assert_eq!(cmd!(c; "INCR", "t:n"), queued);
    assert_eq!(cmd!(c; "APPEND", "t:n", "0"), queued);
    assert_eq!(
        cmd!(c; "EXEC"),
        Resp::Array(vec![Resp::Int(1), Resp::Int(2)])
    );
    assert_sealed_value(&cmd!(raw; "GET", "t:n"), b"10", "INCR and APPEND in MULTI");

    // WATCH + MULTI with an encrypted write commits sealed.
    assert_eq!(cmd!(c; "WATCH", "t:s"), ok());
    assert_eq!(cmd!(c; "MULTI"), ok());
    assert_eq!(cmd!(c; "GETSET", "t:s", w), queued);
    assert_eq!(cmd!(c; "EXEC"), Resp::Array(vec![bulk(&v)]));
    assert_sealed_value(&cmd!(raw; "GET", "t:s"), &w, "GETSET in MULTI");
}

// ---- criterion 2: ciphertexts are bound to where they live -----------------------------------

#[tokio::test]
async fn ciphertexts_moved_to_another_key_field_or_namespace_do_not_open() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;
    let (secret, hidden) = (random_text("secret"), random_text("hidden"));

    // A string's ciphertext copied to another key.
    assert_eq!(cmd!(c; "SET", "b:a", secret), ok());
    let sealed = cmd!(raw; "GET", "b:a").as_bulk().to_vec();
    assert_eq!(cmd!(raw; "SET", "b:copy", sealed), ok());
    assert_eq!(
        cmd!(c; "GET", "b:copy"),
        Resp::Null,
        "copied to another key"
    );
    assert_eq!(
        cmd!(c; "MGET", "b:a", "b:copy"),
        Resp::Array(vec![bulk(&secret), Resp::Null])
    );
    assert_eq!(
        cmd!(c; "GET", "b:a"),
        bulk(&secret),
        "the original still opens"
    );

    // A hash value copied to another field of the same hash, and to another hash.
    assert_eq!(cmd!(c; "HSET", "b:h", "f1", hidden), Resp::Int(1));
    let sealed_field = cmd!(raw; "HGET", "b:h", "f1").as_bulk().to_vec();
    assert_eq!(cmd!(raw; "HSET", "b:h", "f2", sealed_field), Resp::Int(1));
    assert_eq!(
        cmd!(c; "HGET", "b:h", "f2"),
        Resp::Null,
        "copied to another field"
    );
    assert_eq!(
        cmd!(c; "HMGET", "b:h", "f1", "f2"),
        Resp::Array(vec![bulk(&hidden), Resp::Null])
    );
    assert_eq!(
        cmd!(c; "HGETALL", "b:h"),
        Resp::Array(vec![bulk(b"f1"), bulk(&hidden)])
    );
    assert_eq!(cmd!(c; "HVALS", "b:h"), Resp::Array(vec![bulk(&hidden)]));
    assert_eq!(cmd!(raw; "HSET", "b:h2", "f1", sealed_field), Resp::Int(1));
    assert_eq!(
        cmd!(c; "HGET", "b:h2", "f1"),
        Resp::Null,
        "copied to another hash"
    );

    // Across data types: a string's envelope as a hash value and the reverse.
    assert_eq!(cmd!(raw; "HSET", "b:a-as-hash", "f1", sealed), Resp::Int(1));
    assert_eq!(cmd!(c; "HGET", "b:a-as-hash", "f1"), Resp::Null);
    assert_eq!(cmd!(raw; "SET", "b:h", sealed_field), ok());
    assert_eq!(cmd!(c; "GET", "b:h"), Resp::Null);

    // A stream value copied to another field.
    let id = cmd!(c; "XADD", "b:x", "*", "f1", secret).as_bulk().to_vec();
    let stored = cmd!(raw; "XRANGE", "b:x", "-", "+");
    let sealed_stream = stored.items()[0].items()[1].items()[1].as_bulk().to_vec();
    let moved = cmd!(raw; "XADD", "b:x", "*", "f2", sealed_stream)
        .as_bulk()
        .to_vec();
    assert_eq!(
        cmd!(c; "XRANGE", "b:x", "-", "+"),
        Resp::Array(vec![
            Resp::Array(vec![
                bulk(&id),
                Resp::Array(vec![bulk(b"f1"), bulk(&secret)])
            ]),
            Resp::Array(vec![bulk(&moved), Resp::Array(vec![])]),
        ])
    );

    // Another namespace with the same master key reads nothing.
    let other = Sealcache::builder(&redis)
        .master_key(proxy.master_key())
        .set("encryption.namespace", "other")
        .start();
    let mut o = RespConn::open(&other.endpoint()).await;
    assert_eq!(cmd!(o; "GET", "b:a"), Resp::Null, "another namespace");
    assert_eq!(cmd!(o; "HGET", "b:h2", "f1"), Resp::Null);
    // The same namespace and key in another proxy reads everything.
    let twin = Sealcache::builder(&redis)
        .master_key(proxy.master_key())
        .start();
    let mut t = RespConn::open(&twin.endpoint()).await;
    assert_eq!(cmd!(t; "GET", "b:a"), bulk(&secret));
}

// ---- criterion 8: values that fail to decrypt -------------------------------------------------

/// Undecryptable values of every kind planted upstream, next to good ones.
struct Planted {
    good: Vec<u8>,
    /// Plaintexts that must never reach the log.
    secrets: Vec<Vec<u8>>,
    list: [Vec<u8>; 3],
    set: [Vec<u8>; 2],
    hash: [Vec<u8>; 2],
}

/// String keys holding undecryptable values, and the reason each is logged with.
const BAD_STRINGS: &[(&str, &str)] = &[
    ("bad:tampered", "envelope failed authentication"),
    ("bad:truncated", "envelope failed authentication"),
    ("bad:short", "envelope truncated"),
    ("bad:moved", "envelope failed authentication"),
    ("bad:plain", "not a sealcache envelope"),
    ("bad:foreign", "unknown key id"),
];

fn flip_byte(envelope: &[u8], at: usize) -> Vec<u8> {
    let mut bad = envelope.to_vec();
    bad[at] ^= 0x01;
    bad
}

async fn plant(proxy: &Sealcache, redis: &RedisServer) -> Planted {
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;
    let good = random_text("good");
    let plain = random_text("plain");
    let secret = random_text("secret");
    assert_eq!(cmd!(c; "SET", "good", good), ok());
    for key in ["bad:tampered", "bad:truncated", "bad:short", "bad:source"] {
        assert_eq!(cmd!(c; "SET", key, secret), ok());
    }
    let sealed = cmd!(raw; "GET", "bad:tampered").as_bulk().to_vec();
    let last = sealed.len() - 1;
    assert_eq!(
        cmd!(raw; "SET", "bad:tampered", flip_byte(&sealed, 30)),
        ok()
    );
    assert_eq!(cmd!(raw; "SET", "bad:truncated", sealed[..last - 3]), ok());
    assert_eq!(cmd!(raw; "SET", "bad:short", sealed[..20]), ok());
    let source = cmd!(raw; "GET", "bad:source").as_bulk().to_vec();
    assert_eq!(cmd!(raw; "SET", "bad:moved", source), ok());
    assert_eq!(cmd!(raw; "SET", "bad:plain", plain), ok());
    let foreign = Sealcache::builder(redis).start();
    let mut f = RespConn::open(&foreign.endpoint()).await;
    assert_eq!(cmd!(f; "SET", "bad:foreign", secret), ok());
    drop(foreign);

    // A list with a tampered element in the middle.
    let list = [random_text("l0"), random_text("l1"), random_text("l2")];
    assert_eq!(
        cmd!(c; "RPUSH", "bad:list", list[0], list[1], list[2]),
        Resp::Int(3)
    );
    let element = cmd!(raw; "LINDEX", "bad:list", "1").as_bulk().to_vec();
    assert_eq!(
        cmd!(raw; "LSET", "bad:list", "1", flip_byte(&element, 25)),
        ok()
    );
    // A set and a sorted set with a tampered member each.
    let set = [random_text("s0"), random_text("s1")];
    assert_eq!(cmd!(c; "SADD", "bad:set", set[0], set[1]), Resp::Int(2));
    assert_eq!(
        cmd!(c; "ZADD", "bad:zset", "1", set[0], "2", set[1]),
        Resp::Int(2)
    );
    assert_eq!(cmd!(c; "SADD", "bad:member-source", secret), Resp::Int(1));
    let member = cmd!(raw; "SPOP", "bad:member-source").as_bulk().to_vec();
    let bad_member = flip_byte(&member, 22);
    assert_eq!(cmd!(raw; "SADD", "bad:set", bad_member), Resp::Int(1));
    assert_eq!(cmd!(raw; "ZADD", "bad:zset", "3", bad_member), Resp::Int(1));
    // A hash with a tampered field value, and a stream with a plaintext entry.
    let hash = [random_text("h0"), random_text("h1")];
    assert_eq!(
        cmd!(c; "HSET", "bad:hash", "f0", hash[0], "f1", hash[1]),
        Resp::Int(2)
    );
    let value = cmd!(raw; "HGET", "bad:hash", "f1").as_bulk().to_vec();
    assert_eq!(
        cmd!(raw; "HSET", "bad:hash", "f1", flip_byte(&value, 40)),
        Resp::Int(0)
    );
    cmd!(c; "XADD", "bad:stream", "1-1", "f", good);
    cmd!(raw; "XADD", "bad:stream", "2-1", "f", plain);

    Planted {
        good,
        secrets: vec![plain, secret, list[1].clone(), hash[1].clone()],
        list,
        set,
        hash,
    }
}

/// What miss and delete mode answer alike: each bad string is nil, and each
/// collection leaves its undecryptable elements out.
async fn assert_undecryptable_left_out(c: &mut RespConn, p: &Planted) {
    for (key, _) in BAD_STRINGS {
        assert_eq!(cmd!(c; "GET", key), Resp::Null, "GET {key}");
    }
    assert_eq!(
        cmd!(c; "LRANGE", "bad:list", "0", "-1"),
        Resp::Array(vec![bulk(&p.list[0]), bulk(&p.list[2])])
    );
    assert_eq!(
        sorted(bulks(&cmd!(c; "SMEMBERS", "bad:set"))),
        sorted(p.set.to_vec())
    );
    assert_eq!(
        bulks(&cmd!(c; "ZRANGE", "bad:zset", "0", "-1")),
        p.set.to_vec()
    );
    assert_eq!(
        cmd!(c; "HGETALL", "bad:hash"),
        Resp::Array(vec![bulk(b"f0"), bulk(&p.hash[0])])
    );
}

#[tokio::test]
async fn undecryptable_values_are_misses_by_default_and_logged_without_plaintext() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let p = plant(&proxy, &redis).await;
    let mut c = RespConn::open(&proxy.endpoint()).await;

    assert_undecryptable_left_out(&mut c, &p).await;
    assert_eq!(
        cmd!(c; "MGET", "good", "bad:tampered", "bad:plain", "good", "bad:foreign"),
        Resp::Array(vec![
            bulk(&p.good),
            Resp::Null,
            Resp::Null,
            bulk(&p.good),
            Resp::Null
        ])
    );
    assert_eq!(cmd!(c; "GETDEL", "bad:moved"), Resp::Null);
    assert_eq!(cmd!(c; "LINDEX", "bad:list", "1"), Resp::Null);
    assert_eq!(
        cmd!(c; "HMGET", "bad:hash", "f1", "f0"),
        Resp::Array(vec![Resp::Null, bulk(&p.hash[0])])
    );
    assert_eq!(cmd!(c; "HGET", "bad:hash", "f1"), Resp::Null);
    assert_eq!(
        cmd!(c; "XRANGE", "bad:stream", "-", "+"),
        Resp::Array(vec![
            Resp::Array(vec![
                bulk(b"1-1"),
                Resp::Array(vec![bulk(b"f"), bulk(&p.good)])
            ]),
            Resp::Array(vec![bulk(b"2-1"), Resp::Array(vec![])]),
        ])
    );
    // Nothing was deleted in miss mode.
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;
    assert_eq!(
        cmd!(raw; "EXISTS", "bad:tampered", "bad:plain"),
        Resp::Int(2)
    );
    assert_eq!(cmd!(raw; "LLEN", "bad:list"), Resp::Int(3));

    // Every failure is logged with its key and reason, never the value.
    proxy.wait_for_log("bad:foreign", LOG_WAIT);
    let log = without_colors(&proxy.log().read());
    for (key, reason) in BAD_STRINGS {
        let line = log
            .lines()
            .find(|l| l.contains("failed to decrypt") && l.contains(&format!("key={key} ")))
            .unwrap_or_else(|| panic!("no decrypt failure logged for {key}:\n{log}"));
        assert!(
            line.contains(reason),
            "{key} logged without {reason:?}: {line}"
        );
    }
    for key in ["bad:list", "bad:set", "bad:zset", "bad:hash", "bad:stream"] {
        assert!(
            log.contains(&format!("key={key} ")),
            "{key} not logged:\n{log}"
        );
    }
    for secret in &p.secrets {
        let secret = String::from_utf8_lossy(secret);
        assert!(!log.contains(&*secret), "a plaintext reached the log");
    }
    let info = cmd!(c; "INFO");
    let failures: u64 = String::from_utf8_lossy(info.as_bulk())
        .lines()
        .find_map(|l| l.strip_prefix("decrypt_failures:"))
        .expect("INFO decrypt_failures")
        .trim()
        .parse()
        .unwrap();
    assert!(failures >= 15, "decrypt_failures:{failures}");
}

#[tokio::test]
async fn undecryptable_values_are_errors_in_error_mode() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .set("encryption.on_decrypt_failure", "error")
        .start();
    let p = plant(&proxy, &redis).await;
    let mut c = RespConn::open(&proxy.endpoint()).await;

    for (key, reason) in BAD_STRINGS {
        let reply = cmd!(c; "GET", key);
        let prefix = format!("ERR sealcache: a value at key '{key}' failed to decrypt (");
        assert!(
            reply.as_error().starts_with(&prefix)
                && reply.as_error().contains(reason)
                && reply.as_error().ends_with("on_decrypt_failure is 'error'"),
            "GET {key}: {reply:?}"
        );
    }
    for reply in [
        cmd!(c; "MGET", "good", "bad:tampered"),
        cmd!(c; "LRANGE", "bad:list", "0", "-1"),
        cmd!(c; "SMEMBERS", "bad:set"),
        cmd!(c; "ZRANGE", "bad:zset", "0", "-1"),
        cmd!(c; "HGETALL", "bad:hash"),
        cmd!(c; "HGET", "bad:hash", "f1"),
        cmd!(c; "XRANGE", "bad:stream", "-", "+"),
        cmd!(c; "INCR", "bad:plain"),
    ] {
        assert!(
            reply.as_error().starts_with("ERR sealcache: ")
                && reply.as_error().contains("failed to decrypt"),
            "{reply:?}"
        );
    }
    // Good values still read, on the same connection.
    assert_eq!(cmd!(c; "GET", "good"), bulk(&p.good));
    assert_eq!(cmd!(c; "HGET", "bad:hash", "f0"), bulk(&p.hash[0]));
    proxy.wait_for_log("bad:stream", LOG_WAIT);
    let log = without_colors(&proxy.log().read());
    for secret in &p.secrets {
        assert!(!log.contains(&*String::from_utf8_lossy(secret)));
    }
}

#[tokio::test]
async fn undecryptable_values_are_removed_upstream_in_delete_mode() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .set("encryption.on_decrypt_failure", "delete")
        .start();
    let p = plant(&proxy, &redis).await;
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;

    assert_undecryptable_left_out(&mut c, &p).await;
    assert_eq!(cmd!(c; "XRANGE", "bad:stream", "-", "+").items().len(), 2);

    // The cleanup runs in the background: poll the upstream.
    let checks: Vec<(Vec<&str>, Resp)> = vec![
        (
            [
                vec!["EXISTS"],
                BAD_STRINGS.iter().map(|(k, _)| *k).collect(),
            ]
            .concat(),
            Resp::Int(0),
        ),
        (vec!["LLEN", "bad:list"], Resp::Int(2)),
        (vec!["SCARD", "bad:set"], Resp::Int(2)),
        (vec!["ZCARD", "bad:zset"], Resp::Int(2)),
        (vec!["HKEYS", "bad:hash"], Resp::Array(vec![bulk(b"f0")])),
        (vec!["XLEN", "bad:stream"], Resp::Int(1)),
        (vec!["EXISTS", "good"], Resp::Int(1)),
    ];
    for (args, expected) in checks {
        let deadline = Instant::now() + LOG_WAIT;
        loop {
            let now = raw.call(&args).await.value;
            if now == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{args:?}: expected {expected:?}, upstream has {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // What is left reads cleanly.
    assert_eq!(
        cmd!(c; "LRANGE", "bad:list", "0", "-1"),
        Resp::Array(vec![bulk(&p.list[0]), bulk(&p.list[2])])
    );
    assert_eq!(cmd!(c; "GET", "good"), bulk(&p.good));
}

/// The log as text: terminal colour sequences removed.
fn without_colors(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ parameters… final letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---- criterion 6: emulated commands ------------------------------------------------------------

/// Runs each command through sealcache (database 0) and on the upstream
/// itself (database 9, same key names) and records every reply that differs.
struct Twin {
    proxy: RespConn,
    redis: RespConn,
    mismatches: Vec<String>,
}

impl Twin {
    async fn run(&mut self, args: &[&[u8]]) -> Resp {
        let mut through = self.proxy.call(args).await.value;
        let mut direct = self.redis.call(args).await.value;
        if args[0].eq_ignore_ascii_case(b"HGETALL") {
            // Field order is the hash encoding's business, not part of the contract.
            (through, direct) = (sorted_pairs(through), sorted_pairs(direct));
        }
        if through != direct {
            self.mismatches.push(format!(
                "{}\n    sealcache:    {through:?}\n    redis-server: {direct:?}",
                show_args(args)
            ));
        }
        through
    }

    async fn words(&mut self, line: &str) -> Resp {
        let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
        self.run(&args).await
    }

    /// Both PTTLs of `key` are positive.
    async fn ttl_kept(&mut self, key: &str, after: &str) {
        let through = cmd!(self.proxy; "PTTL", key);
        let direct = cmd!(self.redis; "PTTL", key);
        if through.as_int() <= 0 || direct.as_int() <= 0 {
            self.mismatches.push(format!(
                "PTTL {key} after {after}: sealcache {through:?}, redis-server {direct:?}"
            ));
        }
    }
}

#[tokio::test]
async fn emulated_commands_reply_exactly_as_redis_server_does() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut direct = RespConn::open(&proxy.raw_upstream()).await;
    assert_eq!(cmd!(direct; "SELECT", "9"), ok());
    let mut t = Twin {
        proxy: RespConn::open(&proxy.endpoint()).await,
        redis: direct,
        mismatches: Vec::new(),
    };

    // INCR and friends.
    for line in [
        "SET n 10",
        "INCR n",
        "DECR n",
        "INCRBY n 5",
        "DECRBY n 3",
        "INCRBY n -20",
        "GET n",
        "INCRBY n notanumber",
        "INCRBY n 1.5",
        "INCRBY n +1",
        "DECRBY n 9223372036854775808",
        "DECRBY n -9223372036854775808",
        "INCR fresh",
        "DECR fresh-down",
        "INCRBY fresh-by -7",
        "SET max 9223372036854775807",
        "INCR max",
        "SET min -9223372036854775808",
        "DECR min",
        "INCRBY min -1",
        "GET min",
        "SET word hello",
        "INCR word",
        "SET negzero -0",
        "INCR negzero",
        "SET lead 007",
        "INCR lead",
        "SET plus +5",
        "INCR plus",
        "SET long 123456789012345678901",
        "INCR long",
        "RPUSH list a b",
        "INCR list",
        "INCRBY list x",
        "DECRBY list 1",
    ] {
        t.words(line).await;
    }
    twin!(t; "SET", "spaced", " 1");
    twin!(t; "INCR", "spaced");
    twin!(t; "SET", "empty", "");
    twin!(t; "INCR", "empty");

    // INCRBYFLOAT.
    for line in [
        "INCRBYFLOAT fl 0.1",
        "INCRBYFLOAT fl 0.2",
        "GET fl",
        "SET fl2 10.50",
        "INCRBYFLOAT fl2 0.1",
        "INCRBYFLOAT fl2 -5",
        "SET fl3 5.0e3",
        "INCRBYFLOAT fl3 2.0e2",
        "INCRBYFLOAT fl3 -5200",
        "INCRBYFLOAT fl3 1.5",
        "INCRBYFLOAT n 1",
        "INCRBYFLOAT n 3.0",
        "INCRBYFLOAT fl3 abc",
        "INCRBYFLOAT word 1",
        "INCRBYFLOAT list 1",
        "INCRBYFLOAT list abc",
        "SET fl4 123456.789",
        "INCRBYFLOAT fl4 0.001",
        "INCRBYFLOAT fl4 1e20",
        "SET fl5 1e308",
        "INCRBYFLOAT fl5 1e308",
        "INCRBYFLOAT fl5 1.1e4932",
        "INCRBYFLOAT fl5 0x1p-2",
        "INCRBYFLOAT fl5 1e5000",
        "INCRBYFLOAT fresh-float -0.000000000000000001",
        "INCRBYFLOAT fl inf",
        "INCRBYFLOAT fl nan",
        "GET fl",
    ] {
        t.words(line).await;
    }

    // HINCRBY / HINCRBYFLOAT.
    for line in [
        "HSET h a 5 b x c 1.5 big 9223372036854775807",
        "HINCRBY h a 3",
        "HINCRBY h new 2",
        "HINCRBY h b 1",
        "HINCRBY h c 1",
        "HINCRBY h a x",
        "HINCRBY h big 1",
        "HINCRBY h a -9223372036854775808",
        "HINCRBY word f 1",
        "HINCRBY word f x",
        "HINCRBY fresh-hash f -4",
        "HINCRBYFLOAT h c 1.25",
        "HINCRBYFLOAT h a 0.5",
        "HINCRBYFLOAT h b 1",
        "HINCRBYFLOAT h a x",
        "HINCRBYFLOAT h a inf",
        "HINCRBYFLOAT word f 1",
        "HINCRBYFLOAT word f x",
        "HINCRBYFLOAT fresh-hash g 2.5e1",
        "HGETALL h",
        "HGETALL fresh-hash",
    ] {
        t.words(line).await;
    }

    // APPEND, STRLEN, GETRANGE, SETRANGE, HSTRLEN.
    t.words("APPEND ap hello").await;
    twin!(t; "APPEND", "ap", " world");
    twin!(t; "APPEND", "ap", "");
    for line in [
        "GET ap",
        "APPEND list x",
        "APPEND h x",
        "STRLEN ap",
        "STRLEN nothing",
        "STRLEN list",
        "STRLEN n",
        "GETRANGE ap 0 4",
        "GETRANGE ap -5 -1",
        "GETRANGE ap 5 2",
        "GETRANGE ap -100 -200",
        "GETRANGE ap -1 -5",
        "GETRANGE ap 0 100",
        "GETRANGE ap -3 100",
        "GETRANGE ap 3 -100",
        "GETRANGE ap 100 200",
        "GETRANGE nothing 0 -1",
        "GETRANGE ap x 1",
        "GETRANGE list 0 1",
        "SUBSTR ap 0 2",
        "SETRANGE ap 6 Redis",
        "GET ap",
        "SETRANGE pad 5 x",
        "GET pad",
        "SETRANGE ap -1 x",
        "SETRANGE ap x y",
        "SETRANGE list 0 x",
        "SETRANGE ap 536870912 x",
        "SETRANGE list 536870912 x",
        "GET ap",
        "HSTRLEN h a",
        "HSTRLEN h none",
        "HSTRLEN word a",
        "HSTRLEN nothing a",
    ] {
        t.words(line).await;
    }
    twin!(t; "SETRANGE", "nothing", "0", "");
    twin!(t; "SETRANGE", "ap", "0", "");
    twin!(t; "SETRANGE", "nothing", "600000000", "");
    twin!(t; "EXISTS", "nothing");

    // RENAME, RENAMENX, COPY.
    for line in [
        "RENAME ap ap2",
        "GET ap2",
        "EXISTS ap",
        "RENAME nothing x",
        "RENAME ap2 ap2",
        "RENAMENX ap2 n",
        "RENAMENX ap2 ap3",
        "RENAMENX nothing x",
        "RENAMENX ap3 ap3",
        "GET ap3",
        "COPY ap3 c1",
        "GET c1",
        "COPY ap3 c1",
        "COPY ap3 c1 REPLACE",
        "COPY nothing c2",
        "COPY ap3 ap3",
        "COPY nothing nothing",
        "COPY ap3 c9 DB x",
        "COPY ap3 c9 DB -1",
        "COPY ap3 c9 DB 99",
        "COPY ap3 c1 BOGUS",
        "COPY h h2",
        "HGETALL h2",
        "RENAME h h3",
        "HGET h3 a",
        "EXISTS h",
        "RENAME list list2",
        "LRANGE list2 0 -1",
        "COPY list2 list3",
        "LRANGE list3 0 -1",
        "RENAME word list3",
        "TYPE list3",
        "GET list3",
    ] {
        t.words(line).await;
    }

    // TTLs survive APPEND, INCR, SETRANGE, RENAME and COPY.
    t.words("SET t1 5 EX 1000").await;
    t.words("INCR t1").await;
    t.ttl_kept("t1", "INCR").await;
    t.words("APPEND t1 0").await;
    t.ttl_kept("t1", "APPEND").await;
    t.words("SETRANGE t1 0 7").await;
    t.ttl_kept("t1", "SETRANGE").await;
    t.words("RENAME t1 t2").await;
    t.ttl_kept("t2", "RENAME").await;
    t.words("COPY t2 t3").await;
    t.ttl_kept("t3", "COPY").await;
    t.words("GET t3").await;
    t.words("HSET th f 1").await;
    t.words("EXPIRE th 1000").await;
    t.words("HINCRBY th f 1").await;
    t.ttl_kept("th", "HINCRBY").await;
    t.words("RENAME th th2").await;
    t.ttl_kept("th2", "RENAME of a hash").await;

    assert!(
        t.mismatches.is_empty(),
        "{} replies differ from redis-server's:\n{}",
        t.mismatches.len(),
        t.mismatches.join("\n")
    );

    // What the emulations wrote is sealed upstream (database 0); redis-server
    // holds the same plaintexts in database 9.
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;
    for key in [
        "n",
        "fl",
        "fl2",
        "fl4",
        "fresh-float",
        "ap3",
        "c1",
        "pad",
        "t3",
    ] {
        let plain = cmd!(t.redis; "GET", key);
        assert_sealed_value(&cmd!(raw; "GET", key), plain.as_bulk(), key);
    }
    for (key, field) in [("h3", "a"), ("h3", "c"), ("h2", "a"), ("th2", "f")] {
        let plain = cmd!(t.redis; "HGET", key, field);
        let what = format!("{key} {field}");
        assert_sealed_value(&cmd!(raw; "HGET", key, field), plain.as_bulk(), &what);
    }
}

#[tokio::test]
async fn copy_to_another_database_and_move_keep_values_readable() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;
    let (v, w) = (random_text("v"), random_text("w"));

    assert_eq!(cmd!(c; "SET", "src", v, "EX", "1000"), ok());
    assert_eq!(cmd!(c; "HSET", "hsrc", "f", w), Resp::Int(1));
    assert_eq!(cmd!(c; "COPY", "src", "dst", "DB", "1"), Resp::Int(1));
    assert_eq!(cmd!(c; "COPY", "hsrc", "hdst", "DB", "1"), Resp::Int(1));
    // COPY without REPLACE leaves an existing destination in the other database alone.
    assert_eq!(cmd!(c; "SELECT", "1"), ok());
    assert_eq!(cmd!(c; "SET", "taken", w), ok());
    assert_eq!(cmd!(c; "SELECT", "0"), ok());
    assert_eq!(cmd!(c; "COPY", "src", "taken", "DB", "1"), Resp::Int(0));
    assert_eq!(cmd!(c; "MOVE", "hsrc", "2"), Resp::Int(1));

    assert_eq!(cmd!(c; "SELECT", "1"), ok());
    assert_eq!(cmd!(c; "GET", "dst"), bulk(&v));
    assert!(cmd!(c; "PTTL", "dst").as_int() > 0, "COPY kept the TTL");
    assert_eq!(cmd!(c; "HGET", "hdst", "f"), bulk(&w));
    assert_eq!(
        cmd!(c; "GET", "taken"),
        bulk(&w),
        "COPY without REPLACE overwrote"
    );
    assert_eq!(
        cmd!(c; "COPY", "dst", "src", "DB", "0", "REPLACE"),
        Resp::Int(1)
    );
    assert_eq!(cmd!(c; "SELECT", "2"), ok());
    assert_eq!(cmd!(c; "HGET", "hsrc", "f"), bulk(&w), "MOVE");
    assert_eq!(cmd!(raw; "SELECT", "1"), ok());
    assert_sealed_value(&cmd!(raw; "GET", "dst"), &v, "COPY … DB 1");
}

/// `clients` × `each` INCRs of one key, then as many APPENDs to another,
/// client `i` through `endpoints[i % len]`: every increment and every append lands once (the
/// totals read back through the proxy are exact) and no client sees an
/// error. Returns the total. Shared by the routes below, so one body proves
/// the read-modify-write primitive of every backend kind (issue 8).
async fn incr_and_append_concurrently(endpoints: &[Endpoint], clients: usize, each: usize) -> i64 {
    async fn run(endpoints: &[Endpoint], clients: usize, each: usize, append: bool) -> Vec<String> {
        let mut tasks = Vec::new();
        for i in 0..clients {
            let endpoint = endpoints[i % endpoints.len()].clone();
            tasks.push(tokio::spawn(async move {
                let mut con = endpoint.client().await;
                let mut errors = Vec::new();
                for _ in 0..each {
                    let done: redis::RedisResult<i64> = if append {
                        con.append("appended", "x").await
                    } else {
                        con.incr("counter", 1).await
                    };
                    errors.extend(done.err().map(|e| e.to_string()));
                }
                errors
            }));
        }
        let mut errors = Vec::new();
        for task in tasks {
            errors.extend(task.await.unwrap());
        }
        errors
    }
    let started = Instant::now();
    let incr_errors = run(endpoints, clients, each, false).await;
    let incr_time = started.elapsed();
    let started = Instant::now();
    let append_errors = run(endpoints, clients, each, true).await;
    let append_time = started.elapsed();
    eprintln!("{clients} × {each} INCR: {incr_time:?}; {clients} × {each} APPEND: {append_time:?}");
    assert_eq!(incr_errors, Vec::<String>::new(), "INCR errors");
    assert_eq!(append_errors, Vec::<String>::new(), "APPEND errors");

    let mut c = RespConn::open(&endpoints[0]).await;
    let total = (clients * each) as i64;
    assert_eq!(cmd!(c; "GET", "counter"), bulk(total.to_string()));
    assert_eq!(cmd!(c; "STRLEN", "appended"), Resp::Int(total));
    assert_eq!(cmd!(c; "GET", "appended"), bulk("x".repeat(clients * each)));
    assert!(
        incr_time + append_time < Duration::from_secs(60),
        "emulation too slow: INCR {incr_time:?}, APPEND {append_time:?}"
    );
    total
}

/// 8 clients × 500 on one key of a Redis route (WATCH/MULTI/EXEC); what
/// redis-server holds is sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_incr_and_append_are_atomic_on_a_redis_route() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let total = incr_and_append_concurrently(&[proxy.endpoint()], 8, 500).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;
    assert_sealed_value(
        &cmd!(raw; "GET", "counter"),
        total.to_string().as_bytes(),
        "INCR",
    );
    assert_sealed_value(
        &cmd!(raw; "GET", "appended"),
        &vec![b'x'; total as usize],
        "APPEND",
    );
}

/// The same on a proxy whose only backend is `type: memory` (an atomic
/// entry update under the store's lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_incr_and_append_are_atomic_on_a_memory_route() {
    let proxy = SealcacheBuilder::new(&Certs::generate())
        .memory_backend("scratch", "64MiB")
        .route("", "scratch")
        .start();
    incr_and_append_concurrently(&[proxy.endpoint()], 8, 500).await;
}

/// The same on a DynamoDB Local table (a conditional write on the item's
/// version, retried on conflict), smaller: each command is a few HTTP round
/// trips to a Java emulator sharing two cores. The clients alternate between
/// two sidecars sharing the table: within one proxy the gate serialises
/// commands on one key, so only across proxies do writes race, and only the
/// conditional write keeps the totals exact. What the table holds is sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_incr_and_append_are_atomic_on_a_dynamodb_route() {
    const CLIENTS: usize = 4;
    const EACH: usize = 50;
    let local = DynamoDbLocal::start();
    let sidecar = || {
        SealcacheBuilder::new(&Certs::generate())
            .dynamodb_backend("shared", &local, "atomic")
            .route("", "shared")
    };
    let first = sidecar().start();
    let second = sidecar().master_key(first.master_key()).start();
    let endpoints = [first.endpoint(), second.endpoint()];
    let total = incr_and_append_concurrently(&endpoints, CLIENTS, EACH).await;
    for endpoint in &endpoints {
        let mut c = RespConn::open(endpoint).await;
        let info = String::from_utf8_lossy(cmd!(c; "INFO").as_bulk()).into_owned();
        let requests: Vec<&str> = info
            .lines()
            .filter(|l| l.contains("requests_") && !l.ends_with(":0"))
            .collect();
        eprintln!("DynamoDB requests of one sidecar: {requests:?}");
    }
    for (key, plain) in [
        ("counter", total.to_string().into_bytes()),
        ("appended", vec![b'x'; total as usize]),
    ] {
        let stored = local
            .raw_string("atomic", key)
            .await
            .unwrap_or_else(|| panic!("{key} is not in the raw table"));
        assert_envelope(&stored, &plain, VALUE_ENVELOPE, key);
    }
}

// ---- criterion 7: commands refused on encrypted data -------------------------------------------

#[tokio::test]
async fn commands_that_cannot_work_on_ciphertext_are_refused_and_the_connection_goes_on() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut c = RespConn::open(&proxy.endpoint()).await;
    let mut raw = RespConn::open(&proxy.raw_upstream()).await;
    let v = random_text("kept");
    assert_eq!(cmd!(c; "SET", "k", v), ok());
    assert_eq!(cmd!(c; "RPUSH", "l", "3", "1", "2"), Resp::Int(3));
    assert_eq!(cmd!(c; "ZADD", "z", "0", "a", "0", "b"), Resp::Int(2));

    let rejected = |command: &str, reason: &str| {
        Resp::Error(format!(
            "ERR sealcache: {command} is not available on encrypted data: {reason}"
        ))
    };
    let admin = |command: &str| {
        Resp::Error(format!(
            "ERR sealcache: {command} is disabled because it reconfigures or wipes the upstream; \
             add \"{}\" to allowed_admin_commands to allow it",
            command.replace(' ', "|")
        ))
    };
    let cases: Vec<(Vec<&str>, Resp)> = vec![
        (
            vec!["EVAL", "return redis.call('GET', KEYS[1])", "1", "k"],
            rejected(
                "EVAL",
                "scripts run inside Redis, where values are ciphertext",
            ),
        ),
        (
            vec!["SORT", "l", "BY", "nosort", "GET", "#"],
            rejected(
                "SORT",
                "sorting compares values, which Redis holds only as ciphertext",
            ),
        ),
        (
            vec!["BITCOUNT", "k"],
            rejected(
                "BITCOUNT",
                "bit operations would act on the ciphertext, not on your value",
            ),
        ),
        (
            vec!["LPOS", "l", "1"],
            rejected(
                "LPOS",
                "list elements are encrypted with a random nonce, so Redis cannot find equal elements",
            ),
        ),
        (
            vec!["ZRANGEBYLEX", "z", "-", "+"],
            rejected(
                "ZRANGEBYLEX",
                "lexicographic ranges would compare encrypted members, not yours; use scores or ranks",
            ),
        ),
        (
            vec!["DUMP", "k"],
            rejected(
                "DUMP",
                "a dump holds ciphertext bound to this key and readable nowhere else",
            ),
        ),
        (
            vec!["MONITOR"],
            rejected(
                "MONITOR",
                "it would stream upstream traffic, which is ciphertext, and bypass the proxy's access control",
            ),
        ),
        (vec!["FLUSHALL"], admin("FLUSHALL")),
        (vec!["FLUSHDB", "ASYNC"], admin("FLUSHDB")),
        (vec!["CONFIG", "SET", "maxmemory", "1"], admin("CONFIG SET")),
    ];
    for (args, expected) in cases {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        assert_eq!(c.call(&args).await.value, expected, "{}", show_args(&args));
        // The connection goes on.
        assert_eq!(cmd!(c; "GET", "k"), bulk(&v));
    }
    let bylex = cmd!(c; "ZRANGE", "z", "[a", "[b", "BYLEX");
    assert!(
        bylex
            .as_error()
            .starts_with("ERR sealcache: ZRANGE … BYLEX is not available on encrypted data: "),
        "{bylex:?}"
    );
    assert_eq!(cmd!(c; "PING"), Resp::Simple("PONG".into()));
    // Nothing reached the upstream: data and configuration are intact.
    assert_eq!(cmd!(raw; "DBSIZE"), Resp::Int(3));
    assert_eq!(
        cmd!(raw; "CONFIG", "GET", "maxmemory"),
        Resp::Array(vec![bulk(b"maxmemory"), bulk(b"0")])
    );

    // Listed in allowed_admin_commands, an admin command passes.
    let allowing = Sealcache::builder(&redis)
        .master_key(proxy.master_key())
        .set("allowed_admin_commands", "[FLUSHDB, \"CONFIG SET\"]")
        .start();
    let mut a = RespConn::open(&allowing.endpoint()).await;
    assert_eq!(cmd!(a; "CONFIG", "SET", "maxmemory-samples", "6"), ok());
    assert_eq!(cmd!(a; "FLUSHDB"), ok());
    assert_eq!(cmd!(raw; "DBSIZE"), Resp::Int(0));
    assert_eq!(cmd!(a; "FLUSHALL"), admin("FLUSHALL"));
}

// ---- the RESP client: support::resp, with these short names ------------------------------

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn bulk(bytes: impl AsRef<[u8]>) -> Resp {
    Resp::bulk(bytes)
}

fn show_args(args: &[&[u8]]) -> String {
    args.iter()
        .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
        .collect::<Vec<_>>()
        .join(" ")
}
