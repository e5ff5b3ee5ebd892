//! The DynamoDB store against AWS DynamoDB Local: the table's lifecycle,
//! replies compared byte for byte with a real redis-server (RESP3 and RESP2),
//! expiry exact to the millisecond, large values in chunks, batches past
//! DynamoDB's limits, read-modify-write across two stores sharing a table,
//! and DynamoDB going away and coming back.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode as SdkBillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveStatus,
};
use bytes::{Bytes, BytesMut};
use sealcache::backend::dynamodb::{BillingMode, DynamoConfig, DynamoError, DynamoStore};
use sealcache::protocol::reply::{NullStyle, encode};
use sealcache::protocol::{Frame, Protocol};
use sealcache::semantics::number::format_double;

use crate::support::dynamodb::{DynamoDbLocal, credentials};
use crate::support::resp::{RawConn, span, words};
use crate::support::{Certs, RedisServer, random_password};

/// A store as a sidecar opens it (with DynamoDB Local's static credentials).
async fn open(config: DynamoConfig) -> Result<Arc<DynamoStore>, DynamoError> {
    let loader = sealcache::backend::dynamodb::default_loader().credentials_provider(credentials());
    DynamoStore::open_with(config, loader).await
}

fn config(local: &DynamoDbLocal, table: &str) -> DynamoConfig {
    DynamoConfig::local("shared", table, &local.endpoint_url())
}

async fn open_store(local: &DynamoDbLocal, table: &str) -> Arc<DynamoStore> {
    open(config(local, table)).await.expect("open the store")
}

fn args(line: &str) -> Vec<Bytes> {
    words(line).into_iter().map(Bytes::from).collect()
}

/// A reply, compactly: `+OK`, `:1`, `$v`, `_`, `[a, b]`, `-ERR …`.
fn show(frame: &Frame) -> String {
    match frame {
        Frame::SimpleString { data, .. } => format!("+{}", String::from_utf8_lossy(data)),
        Frame::SimpleError { data, .. } => format!("-{data}"),
        Frame::Number { data, .. } => format!(":{data}"),
        Frame::Double { data, .. } => format!(",{}", format_double(*data)),
        Frame::BlobString { data, .. } => format!("${}", String::from_utf8_lossy(data)),
        Frame::Null => "_".into(),
        Frame::Array { data, .. } => {
            format!("[{}]", data.iter().map(show).collect::<Vec<_>>().join(", "))
        }
        Frame::Set { data, .. } => {
            let mut items: Vec<String> = data.iter().map(show).collect();
            items.sort();
            format!("~[{}]", items.join(", "))
        }
        Frame::Map { data, .. } => format!(
            "%[{}]",
            data.iter()
                .map(|(k, v)| format!("{}: {}", show(k), show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => format!("{other:?}"),
    }
}

async fn run(store: &DynamoStore, line: &str) -> String {
    show(&store.execute(0, &args(line)).await)
}

// --- Table lifecycle ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_lifecycle_creates_checks_and_refuses_clearly() {
    let local = DynamoDbLocal::start();
    let raw = local.client().await;

    // Created with its schema, TTL enabled and the billing mode.
    let store = open_store(&local, "cache").await;
    let table = raw
        .describe_table()
        .table_name("cache")
        .send()
        .await
        .unwrap();
    let table = table.table().unwrap();
    let keys: Vec<(String, String)> = table
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]
    );
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&SdkBillingMode::PayPerRequest)
    );
    assert_eq!(table.local_secondary_indexes().len(), 1);
    let ttl = raw
        .describe_time_to_live()
        .table_name("cache")
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    assert_eq!(run(&store, "SET k v").await, "+OK");

    // A second sidecar on the same table: TTL is already on, and enabling
    // it again would be an error, so it must not try.
    let second = open_store(&local, "cache").await;
    assert_eq!(run(&second, "GET k").await, "$v");

    // Provisioned billing.
    let mut provisioned = config(&local, "provisioned");
    provisioned.billing_mode = BillingMode::Provisioned {
        read_capacity: 7,
        write_capacity: 3,
    };
    open(provisioned).await.unwrap();
    let table = raw
        .describe_table()
        .table_name("provisioned")
        .send()
        .await
        .unwrap();
    let throughput = table.table().unwrap().provisioned_throughput().unwrap();
    assert_eq!(throughput.read_capacity_units(), Some(7));
    assert_eq!(throughput.write_capacity_units(), Some(3));

    // Server-side encryption with a KMS key is accepted (DynamoDB Local does
    // not report it back; table::tests checks the CreateTable request).
    let mut encrypted = config(&local, "encrypted");
    encrypted.kms_key_id = Some("alias/sealcache".into());
    open(encrypted).await.unwrap();

    // A table of someone else's schema is refused, saying what differs and how to fix it.
    raw.create_table()
        .table_name("foreign")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(SdkBillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let err = open(config(&local, "foreign"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "dynamodb backend 'shared' (table 'foreign'): the existing table does not fit"
        ),
        "{err}"
    );
    assert!(
        err.contains("the partition key is 'id' but must be the binary attribute 'pk'"),
        "{err}"
    );
    assert!(err.contains("no sort key"), "{err}");
    assert!(err.contains("Fix:"), "{err}");

    // No table and create_table: false.
    let mut missing = config(&local, "missing");
    missing.create_table = false;
    let err = open(missing).await.unwrap_err();
    assert!(matches!(err, DynamoError::TableMissing { .. }), "{err}");
    assert!(err.to_string().contains("create_table is false"), "{err}");
    let tables = raw.list_tables().send().await.unwrap();
    assert!(!tables.table_names().iter().any(|t| t == "missing"));
}

// --- Differential: the same script on redis-server and on the store -----------------------------

/// How a line's replies are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Byte for byte.
    Exact,
    /// The top-level elements as a multiset (Redis's order is its hash order).
    Unordered,
    /// Like `Unordered`, in (field, value) pairs.
    UnorderedPairs,
    /// Only the reply's type and length (random picks).
    Shape,
    /// A SCAN-family command run from cursor 0 until 0 on each side; the
    /// elements found compared as a set (pairs for HSCAN/ZSCAN).
    ScanAll,
}

/// `= cmd`, `~ cmd`, `~p cmd`, `? cmd`, `* cmd`.
fn script(text: &str) -> Vec<(Mode, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (mode, cmd) = l.split_once(' ').expect("mode and command");
            let mode = match mode {
                "=" => Mode::Exact,
                "~" => Mode::Unordered,
                "~p" => Mode::UnorderedPairs,
                "?" => Mode::Shape,
                "*" => Mode::ScanAll,
                other => panic!("unknown mode {other}"),
            };
            (mode, cmd.to_owned())
        })
        .collect()
}

/// The store's reply as sealcache renders it for a client: RESP3 as it is,
/// RESP2 with the command table's null style and Redis's RESP2 shapes
/// (`[member, score]` pairs flattened, as the value layer does).
fn render(cmd: &[Bytes], frame: Frame, resp3: bool) -> BytesMut {
    let mut out = BytesMut::new();
    if resp3 {
        encode(&mut out, &frame, None, Protocol::Resp3, NullStyle::Bulk);
        return out;
    }
    let name = String::from_utf8_lossy(&cmd[0]).to_ascii_uppercase();
    let flatten = name.starts_with('Z') || name == "HRANDFIELD";
    let frame = match frame {
        Frame::Array { data, attributes } if flatten => Frame::Array {
            data: data
                .into_iter()
                .flat_map(|item| match item {
                    Frame::Array { data, .. } => data,
                    other => vec![other],
                })
                .collect(),
            attributes,
        },
        other => other,
    };
    let nulls = sealcache::commands::Command::parse(cmd.to_vec())
        .map(|c| c.null_style())
        .unwrap_or(NullStyle::Bulk);
    encode(&mut out, &frame, None, Protocol::Resp2, nulls);
    out
}

/// The reply's bytes, its elements sorted for unordered comparisons.
fn normalize(bytes: &[u8], mode: Mode) -> Vec<u8> {
    match mode {
        Mode::Exact | Mode::ScanAll => bytes.to_vec(),
        Mode::Shape => {
            let node = span(bytes, 0).expect("a whole reply");
            format!("{}{}", node.kind as char, node.children.len()).into_bytes()
        }
        Mode::Unordered | Mode::UnorderedPairs => {
            let node = span(bytes, 0).expect("a whole reply");
            if node.children.is_empty() {
                return bytes.to_vec();
            }
            let pairs = mode == Mode::UnorderedPairs || node.kind == b'%';
            let mut items: Vec<Vec<u8>> = if pairs {
                node.children
                    .chunks(2)
                    .map(|p| bytes[p[0].start..p[p.len() - 1].end].to_vec())
                    .collect()
            } else {
                node.children
                    .iter()
                    .map(|c| bytes[c.start..c.end].to_vec())
                    .collect()
            };
            items.sort();
            let mut out = bytes[node.start..node.body].to_vec();
            items.iter().for_each(|i| out.extend_from_slice(i));
            out
        }
    }
}

/// Where a SCAN-family command has its cursor, and whether it finds pairs.
fn cursor_at(cmd: &[Bytes]) -> (usize, bool) {
    let name = String::from_utf8_lossy(&cmd[0]).to_ascii_uppercase();
    match name.as_str() {
        "SCAN" => (1, false),
        "SSCAN" => (2, false),
        _ => (2, true),
    }
}

/// Everything a scan finds, from cursor 0 back to 0, as a sorted set.
fn found(items: Vec<Vec<u8>>, pairs: bool) -> BTreeSet<Vec<u8>> {
    if pairs {
        items.chunks(2).map(|p| p.concat()).collect()
    } else {
        items.into_iter().collect()
    }
}

async fn scan_oracle(oracle: &mut RawConn, cmd: &[Bytes]) -> BTreeSet<Vec<u8>> {
    let (at, pairs) = cursor_at(cmd);
    let mut cmd: Vec<Vec<u8>> = cmd.iter().map(|a| a.to_vec()).collect();
    let mut items = Vec::new();
    for _ in 0..10_000 {
        let reply = oracle.words(&cmd).await;
        let node = span(&reply, 0).expect("a scan page");
        let text = |n: &crate::support::resp::Node| reply[n.body..n.end - 2].to_vec();
        let cursor = text(&node.children[0]);
        items.extend(node.children[1].children.iter().map(text));
        if cursor == b"0" {
            return found(items, pairs);
        }
        cmd[at] = cursor;
    }
    panic!("redis-server's scan never ended");
}

async fn scan_store(store: &DynamoStore, cmd: &[Bytes]) -> BTreeSet<Vec<u8>> {
    let (at, pairs) = cursor_at(cmd);
    let mut cmd = cmd.to_vec();
    let mut items = Vec::new();
    for _ in 0..10_000 {
        let Frame::Array { data, .. } = store.execute(0, &cmd).await else {
            panic!("not a scan page");
        };
        let bulk = |f: &Frame| match f {
            Frame::BlobString { data, .. } => data.to_vec(),
            other => panic!("not a bulk string: {other:?}"),
        };
        let cursor = bulk(&data[0]);
        let Frame::Array { data: page, .. } = &data[1] else {
            panic!("not a scan page");
        };
        items.extend(page.iter().map(bulk));
        if cursor == b"0" {
            return found(items, pairs);
        }
        cmd[at] = Bytes::from(cursor);
    }
    panic!("the store's scan never ended");
}

/// Runs `text` on redis-server and on the store, in RESP3 and then in RESP2
/// (each from empty), and fails listing every line whose replies differ.
async fn differential(text: &str) {
    let certs = Certs::generate();
    let redis = RedisServer::start_tls(&certs, &random_password(24));
    let local = DynamoDbLocal::start();
    let store = open_store(&local, "differential").await;
    let lines = script(text);
    let mut failures = Vec::new();
    for resp3_pass in [true, false] {
        let mut oracle = RawConn::open_proto(&redis.endpoint(), resp3_pass).await;
        assert_eq!(oracle.call_bytes(&[b"FLUSHALL"]).await, b"+OK\r\n");
        assert_eq!(show(&store.execute(0, &args("FLUSHALL")).await), "+OK");
        for (mode, line) in &lines {
            let cmd = args(line);
            if *mode == Mode::ScanAll {
                let expected = scan_oracle(&mut oracle, &cmd).await;
                let got = scan_store(&store, &cmd).await;
                if expected != got {
                    failures.push(format!(
                        "RESP{} {line} (whole iteration)\n    redis: {expected:?}\n    store: {got:?}",
                        if resp3_pass { 3 } else { 2 },
                    ));
                }
                continue;
            }
            let expected = oracle.words(&words(line)).await;
            let frame = store.execute(0, &cmd).await;
            let got = render(&cmd, frame, resp3_pass);
            if normalize(&expected, *mode) != normalize(&got, *mode) {
                failures.push(format!(
                    "RESP{} {line}\n    redis: {:?}\n    store: {:?}",
                    if resp3_pass { 3 } else { 2 },
                    String::from_utf8_lossy(&expected),
                    String::from_utf8_lossy(&got)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} replies differ from redis-server's:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strings_and_keys_answer_as_redis() {
    differential(STRINGS_AND_KEYS).await;
}

const STRINGS_AND_KEYS: &str = r"
= GET nothing
= SET s hello
= GET s
= SET s world XX
= SET t x XX
= SET s again NX
= SET n 1 NX
= SET s v GET
= SET t v GET
= SET t w NX GET
= SET s v EX 100
= TTL s
= SET s v KEEPTTL
= TTL s
= SET s v PX 100000 KEEPTTL
= SET s v EX 10 PX 10
= SET s v NX XX
= SET s v EX 0
= SET s v EX -1
= SET s v EX notanumber
= SET s v PXAT 1
= GET s
= SET s v EXAT 99999999999
= EXPIRETIME s
= SET s v BADOPTION
= SET s v GET GET
= SETNX s x
= SETNX fresh x
= SETEX e 100 v
= TTL e
= SETEX e 0 v
= SETEX e abc v
= PSETEX p 100000 v
= PTTL nothing
= PSETEX p -5 v
= GETSET s new
= GETSET brandnew v
= GETDEL s
= GETDEL s
= SET g v EX 100
= GETEX g
= TTL g
= GETEX g PERSIST
= TTL g
= GETEX g EX 50
= TTL g
= GETEX g PXAT 1
= EXISTS g
= GETEX missing EX 10
= GETEX g EX 1 PX 1
= GETEX g NX
= SET num 10
= INCR num
= INCRBY num 5
= DECR num
= DECRBY num 7
= INCRBY num notanumber
= INCRBY num 9223372036854775807
= DECRBY num -9223372036854775808
= SET num 9223372036854775806
= INCR num
= INCR num
= SET bad abc
= INCR bad

= INCR newcounter
= SET z 007
= INCR z
= APPEND ap hello
= APPEND ap _world
= GET ap
= STRLEN ap
= STRLEN nothing
= GETRANGE ap 0 4
= GETRANGE ap -5 -1
= GETRANGE ap 5 2
= GETRANGE ap -1 -5
= GETRANGE ap 0 100
= GETRANGE nothing 0 -1
= GETRANGE ap x 1
= SUBSTR ap 1 3
= SETRANGE sr 5 abc
= GET sr
= SETRANGE sr 0 XY
= GET sr
= SETRANGE sr -1 x
= SETRANGE sr 1 ''
= SETRANGE missing 3 ''
= EXISTS missing
= SETRANGE sr 600000000 x
= MSET a 1 b 2 c 3
= MGET a b c missing
= MSET a 1 b
= MSETNX a 1 d 4
= MSETNX d 4 e 5
= MGET d e
= MSET dup 1 dup 2
= GET dup
= DEL a b missing
= EXISTS a b c c
= TYPE c
= TYPE missing
= UNLINK c
= SET k v
= EXPIRE k 100
= TTL k
? PTTL k
= EXPIRE k 50 GT
= EXPIRE k 200 GT
= TTL k
= EXPIRE k 300 LT
= EXPIRE k 100 LT
= TTL k
= EXPIRE k 100 NX
= EXPIRE k 100 XX
= PERSIST k
= PERSIST k
= TTL k
= EXPIRE k 100 XX
= EXPIRE k 100 GT
= EXPIRE k 100 LT
= EXPIRE k 100 NX XX
= EXPIRE k 100 GT LT
= EXPIRE k 100 FOO
= EXPIRE k abc
= EXPIRE k 9223372036854775807
= EXPIRE missing 100
= PEXPIRE k 100000
? PTTL k
= EXPIREAT k 99999999999
= EXPIRETIME k
= PEXPIRETIME k
= PEXPIREAT k 99999999999000
= TTL k
= EXPIRETIME missing
= EXPIRETIME fresh
= EXPIRE k -1
= EXISTS k
= SET r1 v EX 100
= RENAME r1 r2
= GET r1
= GET r2
= TTL r2
= RENAME missing x
= RENAME r2 r2
= RENAMENX r2 r2
= SET r3 other
= RENAMENX r2 r3
= RENAMENX r2 r4
= COPY r4 r5
= COPY r4 r5
= COPY r4 r5 REPLACE
= COPY r4 r4
= COPY missing r6
= COPY r4 r5 FOO
= COPY r4 r5 DB 99
= COPY r4 r5 DB x
= COPY r4 r5 DB 1
= TTL r5
= GET r5
= DEL r4 r5 r3
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashes_and_sets_answer_as_redis() {
    // Fields and members too long for a sort key are stored by their hash;
    // keys too long for a partition key cannot exist, so they read as absent.
    let long = "f".repeat(1500);
    let key = "k".repeat(3000);
    let extra = format!(
        "= HSET long {long} v short w\n= HGET long {long}\n~ HGETALL long\n= HSTRLEN long {long}\n\
         = HEXISTS long {long}\n= HDEL long {long}\n~ HKEYS long\n= SADD longset {long} short\n\
         ~ SMEMBERS longset\n= SISMEMBER longset {long}\n= SREM longset {long}\n~ SMEMBERS longset\n\
         = GET {key}\n= EXISTS {key} long\n= DEL {key}\n= TTL {key}\n= HGET {key} f\n= MGET {key} long\n"
    );
    differential(&format!("{HASHES_AND_SETS}{extra}")).await;
}

const HASHES_AND_SETS: &str = r"
= HSET h f1 v1 f2 v2
= HSET h f1 new f3 v3
= HSET h f1
= HGET h f1
= HGET h nope
= HGET nothing f
= HMGET h f1 nope f2
= HMGET nothing a b
~ HGETALL h
~ HKEYS h
~ HVALS h
~ HGETALL nothing
= HLEN h
= HLEN nothing
= HEXISTS h f2
= HEXISTS h nope
= HSTRLEN h f1
= HSTRLEN h nope
= HSETNX h f1 x
= HSETNX h f4 x
= HMSET h a 1 b 2
= HMSET h a
= HDEL h a b nope a
= HDEL nothing a
= HINCRBY h counter 5
= HINCRBY h counter -2
= HINCRBY h f1 1
= HINCRBY h counter x
= HINCRBY h counter 9223372036854775807
= HINCRBY fresh c 1
= HDEL fresh c
= EXISTS fresh
= SET str v
= HGET str f
= HSET str f v
= HGETALL str
= HDEL str f
= HLEN str
= HINCRBY str f 1
= HRANDFIELD nothing
= HRANDFIELD nothing 3
= HRANDFIELD h 0
? HRANDFIELD h
? HRANDFIELD h 2
? HRANDFIELD h -5
? HRANDFIELD h 100 WITHVALUES
? HRANDFIELD h -3 WITHVALUES
= HRANDFIELD h 1 FOO
= HRANDFIELD h x
= HRANDFIELD h -9223372036854775808
= TYPE h
= SADD s a b c
= SADD s a d a
= SCARD s
= SCARD nothing
= SISMEMBER s a
= SISMEMBER s z
= SISMEMBER nothing a
= SMISMEMBER s a z b
= SMISMEMBER nothing a
~ SMEMBERS s
~ SMEMBERS nothing
= SREM s a z a
= SREM nothing a
= SADD s2 c d e f
~ SINTER s s2
~ SINTER s nothing
~ SUNION s s2 nothing
~ SDIFF s s2
~ SDIFF s2 s
~ SDIFF nothing s
= SINTERSTORE dst s s2
~ SMEMBERS dst
= SUNIONSTORE dst s s2
= SCARD dst
= SDIFFSTORE dst s s2
~ SMEMBERS dst
= SINTERSTORE dst s nothing
= EXISTS dst
= SDIFFSTORE dst s s
= SINTER s str
= SUNIONSTORE dst str s
= SINTERCARD 2 s s2
= SINTERCARD 2 s s2 LIMIT 1
= SINTERCARD 0 s
= SINTERCARD 3 s s2
= SINTERCARD 1 s LIMIT -1
= SINTERCARD 1 s FOO 1
= SINTERCARD x s
= SMOVE s s2 c
= SMOVE s s2 b
= SMOVE s s2 zz
= SMOVE s s b
= SMOVE nothing s2 a
= SMOVE s str b
~ SMEMBERS s
~ SMEMBERS s2
= SADD single only
= SMOVE single newset only
= EXISTS single
~ SMEMBERS newset
= SPOP nothing
= SPOP nothing 2
= SPOP s 0
= SPOP s -1
? SPOP s2
? SPOP s2 2
= SCARD s2
? SPOP s2 100
= EXISTS s2
= SRANDMEMBER nothing
= SRANDMEMBER nothing 2
= SADD r a b c
? SRANDMEMBER r
? SRANDMEMBER r 2
? SRANDMEMBER r -5
= SRANDMEMBER r 0
= SRANDMEMBER r 1 2
= SADD str x
= SMEMBERS str
= TYPE r
= RENAME r r2
~ SMEMBERS r2
= COPY r2 r3
~ SMEMBERS r3
= COPY h h2
~ HGETALL h2
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorted_sets_and_lists_answer_as_redis() {
    differential(SORTED_SETS_AND_LISTS).await;
}

const SORTED_SETS_AND_LISTS: &str = r"
= ZADD z 1 a 2 b 3 c
= ZADD z 1.5 a 10 d -inf m +inf n
= ZADD z 0.1 e -2.5 f 1e-310 g 1e300 h
= ZCARD z
= ZSCORE z a
= ZSCORE z e
= ZSCORE z g
= ZSCORE z m
= ZSCORE z nope
= ZSCORE nothing a
= ZMSCORE z a nope n
= ZMSCORE nothing a
= ZRANGE z 0 -1
= ZRANGE z 0 -1 WITHSCORES
= ZRANGE z 2 4
= ZRANGE z -3 -1 WITHSCORES
= ZRANGE z 5 2
= ZRANGE z 100 200
= ZRANGE z 0 -1 REV
= ZRANGE z 1 3 REV WITHSCORES
= ZREVRANGE z 0 2 WITHSCORES
= ZRANGE z 1 3 BYSCORE
= ZRANGE z (1 3 BYSCORE WITHSCORES
= ZRANGE z 1 (3 BYSCORE
= ZRANGE z -inf +inf BYSCORE
= ZRANGE z -inf +inf BYSCORE LIMIT 2 3
= ZRANGE z -inf +inf BYSCORE LIMIT 2 -1
= ZRANGE z -inf +inf BYSCORE LIMIT -1 3
= ZRANGE z -inf +inf BYSCORE LIMIT 100 3
= ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2 WITHSCORES
= ZRANGE z 3 1 BYSCORE
= ZRANGE z (1 (1 BYSCORE
= ZRANGE z 0 -1 LIMIT 0 1
= ZRANGE z x 1
= ZRANGE z a b BYSCORE
= ZRANGE z 0 1 FOO
= ZRANGE nothing 0 -1
= ZRANGEBYSCORE z 1 3 WITHSCORES
= ZRANGEBYSCORE z -inf 2 LIMIT 1 1
= ZRANGEBYSCORE z 1 3 BYSCORE
= ZREVRANGEBYSCORE z 3 1
= ZREVRANGEBYSCORE z +inf (2 WITHSCORES LIMIT 0 2
= ZCOUNT z 1 3
= ZCOUNT z (1 3
= ZCOUNT z -inf +inf
= ZCOUNT z (-inf (+inf
= ZCOUNT z 5 1
= ZCOUNT z x 1
= ZCOUNT nothing 0 1
= ZRANK z a
= ZRANK z m
= ZRANK z n
= ZRANK z nope
= ZREVRANK z a
= ZRANK nothing a
= ZADD z NX 100 a 7 new
= ZADD z XX 100 a 7 other
= ZADD z XX CH 101 a
= ZADD z CH 101 a 5 b 6 c2
= ZADD z GT 50 a 200 b
= ZADD z LT CH 50 a 200 b
= ZADD z NX XX 1 a
= ZADD z NX GT 1 a
= ZADD z GT LT 1 a
= ZADD z INCR 1 a 2 b
= ZADD z INCR 5 a
= ZADD z INCR NX 5 a
= ZADD z INCR XX 5 zz
= ZADD z 1 a 2
= ZADD z x a
= ZADD z
= ZADD z nan a
= ZADD nothing XX 1 a
= EXISTS nothing
= ZADD nothing XX INCR 1 a
= ZINCRBY z 2.5 a
= ZINCRBY z 1 brandnew
= ZINCRBY z x a
= ZADD inf +inf x
= ZINCRBY inf -inf x
= ZADD same 1 a 1 b 1 c 1 aa
= ZRANGE same 0 -1
= ZADD dup 1 a 2 a 3 a
= ZSCORE dup a
= ZADD z 0 zero -0 negzero
= ZSCORE z negzero
= ZADD z INCR -0 incrzero
= ZSCORE z incrzero
= ZINCRBY z -0 zincrzero
= ZSCORE z zincrzero
= ZRANGE z -0 0 BYSCORE WITHSCORES
= ZREM z a nope a
= ZREM nothing a
= ZCARD z
= ZREMRANGEBYSCORE z -inf (0
= ZREMRANGEBYRANK z 0 1
= ZREMRANGEBYRANK z -2 -1
= ZREMRANGEBYRANK z 5 1
= ZREMRANGEBYSCORE z x 1
= ZRANGE z 0 -1 WITHSCORES
= ZPOPMIN z
= ZPOPMAX z
= ZPOPMIN z 2
= ZPOPMAX z 0
= ZPOPMIN z -1
= ZPOPMIN nothing
= ZPOPMIN nothing 3
= ZPOPMAX z 100
= EXISTS z
= ZADD src 1 a 2 b 3 c 4 d
= ZRANGESTORE dst src 1 2
= ZRANGE dst 0 -1 WITHSCORES
= ZRANGESTORE dst src (1 +inf BYSCORE LIMIT 0 2
= ZRANGE dst 0 -1 WITHSCORES
= ZRANGESTORE dst src 0 -1 REV
= ZRANGESTORE dst nothing 0 -1
= EXISTS dst
= ZRANGESTORE dst src 0 1 WITHSCORES
= SET str v
= ZADD str 1 a
= ZRANGE str 0 -1
= ZSCORE str a
= RENAME src src2
= ZRANGE src2 0 -1 WITHSCORES
= COPY src2 src3
= ZRANGE src3 0 -1 WITHSCORES
= TYPE src3
= LPUSH l a b c
= RPUSH l d e
= LRANGE l 0 -1
= LLEN l
= LLEN nothing
= LINDEX l 0
= LINDEX l -1
= LINDEX l 10
= LINDEX l -10
= LINDEX l x
= LINDEX nothing 0
= LRANGE l 1 3
= LRANGE l -2 -1
= LRANGE l 3 1
= LRANGE l 0 100
= LRANGE l x 1
= LRANGE nothing 0 -1
= LSET l 0 first
= LSET l -1 last
= LSET l 10 x
= LSET nothing 0 x
= LRANGE l 0 -1
= LPOP l
= RPOP l
= LPOP l 2
= RPOP l 0
= LPOP l -1
= LPOP l x
= LPOP l 1 2
= LPOP nothing
= LPOP nothing 2
= RPOP l 10
= EXISTS l
= LPUSHX l a
= RPUSHX l a
= RPUSH l 1 2 3 4 5 6
= LPUSHX l 0
= LTRIM l 1 -2
= LRANGE l 0 -1
= LTRIM l 0 100
= LTRIM l -2 -1
= LRANGE l 0 -1
= LTRIM l 5 1
= EXISTS l
= LTRIM nothing 0 1
= LTRIM l x 1
= RPUSH a 1 2 3
= RPUSH b x
= LMOVE a b LEFT RIGHT
= LMOVE a b RIGHT LEFT
= LRANGE a 0 -1
= LRANGE b 0 -1
= LMOVE a a LEFT RIGHT
= LRANGE a 0 -1
= LMOVE a b UP DOWN
= LMOVE nothing b LEFT LEFT
= LMOVE a newlist LEFT LEFT
= EXISTS a
= LRANGE newlist 0 -1
= RPOPLPUSH b b
= LRANGE b 0 -1
= RPOPLPUSH b str
= RPOPLPUSH str b
= LPUSH str x
= LRANGE str 0 -1
= RPUSH big 1 2 3
= RENAME big big2
= LRANGE big2 0 -1
= COPY big2 big3
= LRANGE big3 0 -1
= TYPE big3
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_find_what_redis_finds() {
    differential(SCANS).await;
}

const SCANS: &str = r"
= MSET user:1 a user:2 b user:10 c other x
= HSET h f1 1 f2 2 g3 3
= SADD s m1 m2 n3
= ZADD z 1 z1 2 z2 3 y3
= RPUSH l a
= DBSIZE
= SET expired v PX 1
~ KEYS *
~ KEYS user:*
~ KEYS user:?
~ KEYS *[12]
~ KEYS nomatch*
* SCAN 0
* SCAN 0 COUNT 1
* SCAN 0 MATCH user:*
* SCAN 0 MATCH user:* COUNT 2
* SCAN 0 TYPE hash
* SCAN 0 TYPE string MATCH user:1*
* SCAN 0 TYPE zset COUNT 100
* SCAN 0 TYPE nosuchtype
= SCAN x
= SCAN 0 COUNT 0
= SCAN 0 COUNT x
= SCAN 0 FOO bar
= SCAN 0 MATCH
* HSCAN h 0
* HSCAN h 0 MATCH f*
* HSCAN h 0 COUNT 1
* SSCAN s 0 MATCH m*
* ZSCAN z 0
* ZSCAN z 0 MATCH z*
* HSCAN nothing 0
= HSCAN h 0 TYPE hash
= HSCAN h x
= SSCAN h 0
= EXISTS expired
";

// --- Expiry -----------------------------------------------------------------------------------

/// Wall-clock Unix milliseconds (deadlines are wall-clock time).
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

type Judge = Box<dyn Fn(&Frame) -> bool>;

/// One read command, the keys it reads, and how it answers while they live and after.
struct Check {
    line: &'static str,
    keys: &'static [&'static str],
    present: Judge,
    absent: Judge,
}

fn shows(text: &'static str) -> Judge {
    Box::new(move |f| show(f) == text)
}

fn len_is(n: usize) -> Judge {
    Box::new(move |f| matches!(f, Frame::Array { data, .. } if data.len() == n))
}

fn scan_len_is(n: usize) -> Judge {
    Box::new(move |f| match f {
        Frame::Array { data, .. } => {
            matches!(&data[1], Frame::Array { data, .. } if data.len() == n)
        }
        _ => false,
    })
}

/// A TTL of a live key (TTL rounds to 0 in its last half second).
fn live_ttl() -> Judge {
    Box::new(|f| matches!(f, Frame::Number { data, .. } if *data >= 0))
}

fn check(
    line: &'static str,
    keys: &'static [&'static str],
    present: Judge,
    absent: Judge,
) -> Check {
    Check {
        line,
        keys,
        present,
        absent,
    }
}

const ALL: &[&str] = &["str", "h", "s", "z", "l"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_vanish_from_every_read_to_the_millisecond() {
    let local = DynamoDbLocal::start();
    let store = open_store(&local, "expiry").await;
    // Every key first lives with a long TTL; then each gets 1500 ms, its
    // deadline between the wall clock before and after that command + 1500.
    for line in [
        "SET str v PX 600000",
        "HSET h f v",
        "PEXPIRE h 600000",
        "SADD s m",
        "PEXPIRE s 600000",
        "ZADD z 1 m",
        "PEXPIRE z 600000",
        "RPUSH l a",
        "PEXPIRE l 600000",
    ] {
        run(&store, line).await;
    }
    let checks = vec![
        check("GET str", &["str"], shows("$v"), shows("_")),
        check("MGET str h", &["str"], shows("[$v, _]"), shows("[_, _]")),
        check("EXISTS str h s z l", ALL, shows(":5"), shows(":0")),
        check("TTL str", &["str"], live_ttl(), shows(":-2")),
        check("PTTL h", &["h"], live_ttl(), shows(":-2")),
        check("EXPIRETIME s", &["s"], live_ttl(), shows(":-2")),
        check("PEXPIRETIME z", &["z"], live_ttl(), shows(":-2")),
        check("TYPE z", &["z"], shows("+zset"), shows("+none")),
        check("STRLEN str", &["str"], shows(":1"), shows(":0")),
        check("GETRANGE str 0 -1", &["str"], shows("$v"), shows("$")),
        check("HGETALL h", &["h"], shows("%[$f: $v]"), shows("%[]")),
        check("HGET h f", &["h"], shows("$v"), shows("_")),
        check("HMGET h f", &["h"], shows("[$v]"), shows("[_]")),
        check("HLEN h", &["h"], shows(":1"), shows(":0")),
        check("HKEYS h", &["h"], shows("[$f]"), shows("[]")),
        check("HVALS h", &["h"], shows("[$v]"), shows("[]")),
        check("HEXISTS h f", &["h"], shows(":1"), shows(":0")),
        check("HSTRLEN h f", &["h"], shows(":1"), shows(":0")),
        check("SMEMBERS s", &["s"], shows("~[$m]"), shows("~[]")),
        check("SCARD s", &["s"], shows(":1"), shows(":0")),
        check("SISMEMBER s m", &["s"], shows(":1"), shows(":0")),
        check("SMISMEMBER s m", &["s"], shows("[:1]"), shows("[:0]")),
        check("ZRANGE z 0 -1", &["z"], shows("[$m]"), shows("[]")),
        check("ZSCORE z m", &["z"], shows(",1"), shows("_")),
        check("ZMSCORE z m", &["z"], shows("[,1]"), shows("[_]")),
        check("ZCARD z", &["z"], shows(":1"), shows(":0")),
        check("ZRANK z m", &["z"], shows(":0"), shows("_")),
        check("ZCOUNT z -inf +inf", &["z"], shows(":1"), shows(":0")),
        check("LRANGE l 0 -1", &["l"], shows("[$a]"), shows("[]")),
        check("LLEN l", &["l"], shows(":1"), shows(":0")),
        check("LINDEX l 0", &["l"], shows("$a"), shows("_")),
        check("KEYS *", ALL, len_is(5), len_is(0)),
        check("SCAN 0 COUNT 1000", ALL, scan_len_is(5), scan_len_is(0)),
        check("DBSIZE", ALL, shows(":5"), shows(":0")),
        check("HSCAN h 0", &["h"], scan_len_is(2), scan_len_is(0)),
        check("SSCAN s 0", &["s"], scan_len_is(1), scan_len_is(0)),
        check("ZSCAN z 0", &["z"], scan_len_is(2), scan_len_is(0)),
        check(
            "RANDOMKEY",
            ALL,
            Box::new(|f| matches!(f, Frame::BlobString { .. })),
            shows("_"),
        ),
    ];
    // With a TTL to spare, every read sees every key.
    for c in &checks {
        let frame = store.execute(0, &args(c.line)).await;
        assert!(
            (c.present)(&frame),
            "{} while the key lives: {}",
            c.line,
            show(&frame)
        );
    }
    let mut deadlines = HashMap::new();
    for (key, line) in [
        ("str", "SET str v PX 1500"),
        ("h", "PEXPIRE h 1500"),
        ("s", "PEXPIRE s 1500"),
        ("z", "PEXPIRE z 1500"),
        ("l", "PEXPIRE l 1500"),
    ] {
        let before = wall_ms();
        let reply = run(&store, line).await;
        assert!(reply == "+OK" || reply == ":1", "{reply}");
        deadlines.insert(key, (before + 1500, wall_ms() + 1500));
    }
    let bounds = |keys: &[&str]| {
        let lo = keys.iter().map(|k| deadlines[k].0).min().unwrap();
        let hi = keys.iter().map(|k| deadlines[k].1).max().unwrap();
        (lo, hi)
    };
    let mut seen_absent = vec![false; checks.len()];
    let give_up = Instant::now() + Duration::from_secs(20);
    while seen_absent.iter().any(|s| !s) {
        assert!(
            Instant::now() < give_up,
            "some reads still see expired keys"
        );
        // Every read of a pass at once, so each is seen on both sides of
        // the deadline soon after it, even on loaded cores.
        let pass = futures_util::future::join_all(checks.iter().map(|c| async {
            let start = wall_ms();
            let frame = store.execute(0, &args(c.line)).await;
            (start, frame, wall_ms())
        }))
        .await;
        for (i, (c, (start, frame, end))) in checks.iter().zip(pass).enumerate() {
            let (lo, hi) = bounds(c.keys);
            if end < lo {
                assert!(
                    (c.present)(&frame),
                    "{} before the deadline: {}",
                    c.line,
                    show(&frame)
                );
            } else if start > hi {
                assert!(
                    (c.absent)(&frame),
                    "{} after the deadline: {}",
                    c.line,
                    show(&frame)
                );
                seen_absent[i] = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // DynamoDB has not deleted them: the reads filtered them out.
    let raw = local.client().await;
    let items = raw.scan().table_name("expiry").send().await.unwrap();
    assert_eq!(
        items.count(),
        9,
        "5 meta items and 4 elements are still stored"
    );

    // Writing to an expired key starts it afresh; its old elements do not come back.
    assert_eq!(run(&store, "SADD s other").await, ":1");
    assert_eq!(run(&store, "SMEMBERS s").await, "~[$other]");
    assert_eq!(run(&store, "RPUSH l b").await, ":1");
    assert_eq!(run(&store, "LRANGE l 0 -1").await, "[$b]");
    assert_eq!(run(&store, "HINCRBY h f 1").await, ":1");
    assert_eq!(run(&store, "TTL s").await, ":-1");
    let items = local.raw_items("expiry").await;
    for key in ["s", "l", "h"] {
        let of_key = items.iter().filter(|i| pk_of(i) == key.as_bytes()).count();
        assert_eq!(
            of_key, 2,
            "{key}: its meta item and its one new element, the old one removed"
        );
    }
}

fn binary<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a [u8] {
    match item.get(name) {
        Some(AttributeValue::B(blob)) => blob.as_ref(),
        other => panic!("{name} is not binary: {other:?}"),
    }
}

/// The Redis key of a raw item (its partition key after the 4-byte database index).
fn pk_of(item: &HashMap<String, AttributeValue>) -> &[u8] {
    &binary(item, "pk")[4..]
}

// --- Large values -------------------------------------------------------------------------------

/// Checks the raw table's invariants: every element belongs to a live
/// generation of its key (no orphans), and no element can be reaped by
/// DynamoDB's TTL before its key.
async fn assert_consistent(local: &DynamoDbLocal, table: &str) -> usize {
    let items = local.raw_items(table).await;
    let number = |item: &HashMap<String, AttributeValue>, name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => Some(n.parse::<i64>().unwrap()),
        _ => None,
    };
    let metas: HashMap<&[u8], &HashMap<String, AttributeValue>> = items
        .iter()
        .filter(|i| binary(i, "sk") == [0])
        .map(|i| (binary(i, "pk"), i))
        .collect();
    for item in items.iter().filter(|i| binary(i, "sk") != [0]) {
        let key = String::from_utf8_lossy(pk_of(item));
        let Some(meta) = metas.get(binary(item, "pk")) else {
            panic!("orphaned element of key {key}: its key has no meta item");
        };
        assert_eq!(
            &binary(item, "sk")[1..9],
            binary(meta, "g"),
            "orphaned element of key {key}: an old generation"
        );
        match (number(meta, "ttl"), number(item, "ttl")) {
            (None, None) => {}
            (Some(key_ttl), Some(elem_ttl)) => {
                assert!(elem_ttl >= key_ttl, "{key}: an element expires first")
            }
            (None, Some(_)) => panic!("{key} has no TTL but an element does"),
            (Some(_), None) => panic!("{key} has a TTL but an element does not"),
        }
    }
    items.len()
}

fn value_of(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| seed.wrapping_add((i % 251) as u8))
            .collect::<Vec<u8>>(),
    )
}

async fn get(store: &DynamoStore, key: &str) -> Option<Bytes> {
    match store.execute(0, &args(&format!("GET {key}"))).await {
        Frame::BlobString { data, .. } => Some(data),
        Frame::Null => None,
        other => panic!("GET {key}: {}", show(&other)),
    }
}

async fn set(store: &DynamoStore, key: &str, value: &Bytes, extra: &str) {
    let mut cmd = vec![
        Bytes::from_static(b"SET"),
        Bytes::from(key.to_owned()),
        value.clone(),
    ];
    if !extra.is_empty() {
        cmd.extend(args(extra));
    }
    assert_eq!(show(&store.execute(0, &cmd).await), "+OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_are_chunks_behind_a_manifest_written_last() {
    let local = DynamoDbLocal::start();
    let store = open_store(&local, "large").await;
    const MIB: usize = 1024 * 1024;
    let one = value_of(MIB, 1);
    let ten = value_of(10 * MIB, 2);
    let small = Bytes::from_static(b"small");

    set(&store, "big", &one, "").await;
    assert_eq!(get(&store, "big").await.as_ref(), Some(&one));
    set(&store, "big", &ten, "").await;
    assert_eq!(get(&store, "big").await.as_ref(), Some(&ten));
    assert_eq!(run(&store, "STRLEN big").await, format!(":{}", 10 * MIB));
    // The chunks of the 1 MiB value went with it.
    assert_eq!(assert_consistent(&local, "large").await, 1 + 27);
    set(&store, "big", &small, "").await;
    assert_eq!(get(&store, "big").await.as_ref(), Some(&small));
    assert_eq!(assert_consistent(&local, "large").await, 1);
    set(&store, "big", &one, "").await;
    assert_eq!(get(&store, "big").await.as_ref(), Some(&one));

    // Reads and writes across chunk boundaries.
    let edge = 390_000;
    let line = format!("GETRANGE big {} {}", edge - 3, edge + 2);
    assert_eq!(
        store.execute(0, &args(&line)).await,
        Frame::BlobString {
            data: one.slice(edge - 3..=edge + 2),
            attributes: None
        }
    );
    assert_eq!(
        run(&store, &format!("SETRANGE big {} XYZ", edge - 1)).await,
        format!(":{MIB}")
    );
    let mut patched = one.to_vec();
    patched[edge - 1..edge + 2].copy_from_slice(b"XYZ");
    assert_eq!(get(&store, "big").await.as_deref(), Some(&patched[..]));
    assert_eq!(run(&store, "APPEND big !").await, format!(":{}", MIB + 1));
    patched.push(b'!');
    assert_eq!(get(&store, "big").await.as_deref(), Some(&patched[..]));
    let mget = store.execute(0, &args("MGET big nothing")).await;
    let Frame::Array { data, .. } = mget else {
        panic!("MGET")
    };
    assert_eq!(
        data[0],
        Frame::BlobString {
            data: Bytes::from(patched.clone()),
            attributes: None
        }
    );

    // A deadline beyond the elements' TTL rewrites them; PERSIST removes it.
    assert_eq!(run(&store, "EXPIRE big 100").await, ":1");
    assert_consistent(&local, "large").await;
    assert_eq!(run(&store, "EXPIRE big 10000000").await, ":1");
    assert_consistent(&local, "large").await;
    assert_eq!(run(&store, "PERSIST big").await, ":1");
    assert_consistent(&local, "large").await;
    assert_eq!(get(&store, "big").await.as_deref(), Some(&patched[..]));

    // RENAME and COPY carry the chunks; DEL removes every item.
    assert_eq!(run(&store, "RENAME big moved").await, "+OK");
    assert_eq!(run(&store, "COPY moved copied").await, ":1");
    assert_eq!(get(&store, "copied").await.as_deref(), Some(&patched[..]));
    assert_eq!(run(&store, "DEL moved copied").await, ":2");
    assert_eq!(assert_consistent(&local, "large").await, 0);

    // A reader racing a writer sees the old value or the new one, never a mix.
    // (Values too large for one transaction: chunks first, then the manifest.)
    let a = value_of(4 * MIB + 17, 3);
    let b = value_of(5 * MIB - 5, 4);
    set(&store, "raced", &a, "").await;
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (store, stop, writes) = (store.clone(), stop.clone(), writes.clone());
        let (a, b) = (a.clone(), b.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) || i % 2 == 1 {
                set(&store, "raced", if i % 2 == 0 { &b } else { &a }, "").await;
                writes.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        })
    };
    for _ in 0..6 {
        let seen = get(&store, "raced").await.expect("always a value");
        assert!(
            seen == a || seen == b,
            "a read saw a mix of two values ({} bytes)",
            seen.len()
        );
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert!(
        writes.load(Ordering::SeqCst) >= 2,
        "the reads did not race any write"
    );
    // The last write was `a`: its meta item and its chunks, nothing else.
    assert_eq!(
        assert_consistent(&local, "large").await,
        1 + a.len().div_ceil(390_000)
    );
}

// --- Batches --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_keys_go_in_batches_within_dynamodb_limits() {
    use sealcache::backend::dynamodb::DynamoOp;
    let local = DynamoDbLocal::start();
    let store = open_store(&local, "batches").await;
    let keys: Vec<String> = (0..1000).map(|i| format!("key:{i}")).collect();
    let mut mset = vec![Bytes::from_static(b"MSET")];
    for key in &keys {
        mset.push(Bytes::from(key.clone()));
        mset.push(Bytes::from(format!("value of {key}")));
    }
    let line = |name: &str, extra: &[&str]| {
        let mut cmd = vec![Bytes::from(name.to_owned())];
        cmd.extend(keys.iter().map(|k| Bytes::from(k.clone())));
        cmd.extend(extra.iter().map(|k| Bytes::from(k.to_string())));
        cmd
    };
    let counts = store.requests();
    let before = |op| counts.get(op);

    // MSET: meta items read 100 at a time, written in transactions of 100.
    let (gets, txs) = (
        before(DynamoOp::BatchGetItem),
        before(DynamoOp::TransactWriteItems),
    );
    assert_eq!(show(&store.execute(0, &mset).await), "+OK");
    assert_eq!(counts.get(DynamoOp::BatchGetItem) - gets, 10);
    assert_eq!(counts.get(DynamoOp::TransactWriteItems) - txs, 10);

    // MGET: 10 BatchGetItem requests, every value in order, a missing key as nil.
    let gets = before(DynamoOp::BatchGetItem);
    let Frame::Array { data, .. } = store.execute(0, &line("MGET", &["missing"])).await else {
        panic!("MGET")
    };
    assert_eq!(counts.get(DynamoOp::BatchGetItem) - gets, 11);
    assert_eq!(data.len(), 1001);
    for (key, value) in keys.iter().zip(&data) {
        assert_eq!(show(value), format!("$value of {key}"));
    }
    assert_eq!(data[1000], Frame::Null);

    // EXISTS counts a repeated key twice.
    let mut exists = line("EXISTS", &["missing"]);
    exists.push(Bytes::from_static(b"key:0"));
    assert_eq!(show(&store.execute(0, &exists).await), ":1001");
    assert_eq!(run(&store, "DBSIZE").await, ":1000");

    // DEL: half of them are gone already; each key counted once.
    let mut first_half = vec![Bytes::from_static(b"DEL")];
    first_half.extend(keys[..500].iter().map(|k| Bytes::from(k.clone())));
    assert_eq!(show(&store.execute(0, &first_half).await), ":500");
    let mut del = line("DEL", &["missing", "key:999"]);
    del.push(Bytes::from_static(b"key:999"));
    assert_eq!(show(&store.execute(0, &del).await), ":500");
    assert_eq!(show(&store.execute(0, &line("EXISTS", &[])).await), ":0");
    assert_eq!(assert_consistent(&local, "batches").await, 0);

    // Large collections: more than one transaction's worth of elements at once.
    let mut sadd = vec![Bytes::from_static(b"SADD"), Bytes::from_static(b"set")];
    sadd.extend(keys.iter().map(|k| Bytes::from(k.clone())));
    assert_eq!(show(&store.execute(0, &sadd).await), ":1000");
    assert_eq!(run(&store, "SCARD set").await, ":1000");
    assert_eq!(run(&store, "SADD set key:1 extra").await, ":1");
    let mut srem = vec![Bytes::from_static(b"SREM"), Bytes::from_static(b"set")];
    srem.extend(keys[..300].iter().map(|k| Bytes::from(k.clone())));
    assert_eq!(show(&store.execute(0, &srem).await), ":300");
    assert_eq!(run(&store, "SCARD set").await, ":701");
    assert_eq!(run(&store, "SISMEMBER set key:299").await, ":0");
    assert_eq!(run(&store, "SISMEMBER set key:300").await, ":1");
    let mut rpush = vec![Bytes::from_static(b"RPUSH"), Bytes::from_static(b"list")];
    rpush.extend(keys.iter().map(|k| Bytes::from(k.clone())));
    assert_eq!(show(&store.execute(0, &rpush).await), ":1000");
    assert_eq!(run(&store, "LTRIM list 100 -101").await, "+OK");
    assert_eq!(run(&store, "LLEN list").await, ":800");
    assert_eq!(run(&store, "LINDEX list 0").await, "$key:100");
    assert_eq!(run(&store, "LINDEX list -1").await, "$key:899");
    assert_eq!(run(&store, "EXPIRE set 1000000").await, ":1");
    assert_consistent(&local, "batches").await;
    assert_eq!(run(&store, "DEL set list").await, ":2");
    assert_eq!(assert_consistent(&local, "batches").await, 0);
}

// --- Read-modify-write across processes -----------------------------------------------------------

/// An INCR as sealcache runs it on a sealed value: read, compute on the
/// plaintext (here the value itself), write on the condition nothing changed.
async fn incr_through_update(store: &DynamoStore, key: &str) -> i64 {
    use sealcache::backend::dynamodb::{Change, Decision, Found, Read, TtlUpdate};
    let key = Bytes::from(key.to_owned());
    store
        .update(0, &[Read::String(key.clone())], None, |snapshot| {
            let Found::String(Ok(current)) = &snapshot.found()[0] else {
                panic!("not a string: {:?}", snapshot.found());
            };
            let current = current.as_ref().map_or(0, |v| {
                std::str::from_utf8(v).unwrap().parse::<i64>().unwrap()
            });
            let next = current + 1;
            Decision::Write(
                vec![Change::SetString {
                    key: key.clone(),
                    value: Bytes::from(next.to_string()),
                    ttl: TtlUpdate::Keep,
                }],
                next,
            )
        })
        .await
        .expect("update")
}

/// The primitive itself under contention from two stores (as two processes
/// have); the proxy-level test with INCR and SADD is in `dynamodb_proxy`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_updating_one_key_lose_no_update() {
    const ROUNDS: usize = 50;
    let local = DynamoDbLocal::start();
    let stores = [
        open_store(&local, "shared").await,
        open_store(&local, "shared").await,
    ];
    let mut tasks = Vec::new();
    for store in &stores {
        for _ in 0..2 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    incr_through_update(&store, "counter").await;
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        run(&stores[1], "GET counter").await,
        format!("${}", 4 * ROUNDS)
    );
}

// --- Failure ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_going_away_gives_clear_errors_and_coming_back_gives_service() {
    use sealcache::backend::dynamodb::{Change, Decision, Read};
    let mut local = DynamoDbLocal::start_persistent();
    let mut config = config(&local, "outage");
    config.request_timeout = Duration::from_millis(500);
    config.max_attempts = 3;
    let store = open(config).await.unwrap();
    assert_eq!(run(&store, "SET kept before").await, "+OK");
    assert_eq!(run(&store, "HSET h f v").await, ":1");

    local.stop();
    let prefix = "-ERR sealcache: dynamodb backend 'shared' (table 'outage'): ";
    for line in [
        "GET kept",
        "SET other v",
        "MGET kept h",
        "HGETALL h",
        "DEL kept h",
        "SCAN 0",
        "INCR n",
    ] {
        let started = Instant::now();
        let reply = run(&store, line).await;
        assert!(reply.starts_with(prefix), "{line}: {reply}");
        assert!(
            reply.contains("cannot reach DynamoDB")
                || reply.contains("no answer within request_timeout_ms"),
            "{line}: {reply}"
        );
        // Three attempts of at most 500 ms each, and backoff: not a hang.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{line} took {:?}",
            started.elapsed()
        );
    }
    let key = Bytes::from_static(b"n");
    let err = store
        .update(0, &[Read::Key(key.clone())], None, |_| {
            Decision::Write(
                vec![Change::Delete {
                    key: key.clone(),
                    db: 0,
                }],
                (),
            )
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("dynamodb backend 'shared' (table 'outage'): "),
        "{err}"
    );

    // Back (with its table; DynamoDB Local may lose its last writes when
    // killed, real DynamoDB does not): the same store serves again.
    local.restart();
    let back = crate::support::poll_until_async(Duration::from_secs(30), || async {
        (run(&store, "SET after v").await == "+OK").then_some(())
    })
    .await;
    assert!(back.is_some(), "no service after DynamoDB came back");
    assert_eq!(run(&store, "GET after").await, "$v");
    assert_eq!(run(&store, "HSET h2 f v").await, ":1");
    assert_eq!(run(&store, "HGETALL h2").await, "%[$f: $v]");
    assert_eq!(run(&store, "INCR n").await, ":1");
    assert_eq!(run(&store, "MGET after nothing").await, "[$v, _]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_reads_decides_again_after_a_conflict_and_writes_atomically() {
    use sealcache::backend::dynamodb::{
        Change, Decision, Entry, EntryValue, Found, KeyFound, KeyType, Read, TtlUpdate, WrongType,
    };
    let local = DynamoDbLocal::start();
    let store = open_store(&local, "rmw").await;
    let b = |s: &str| Bytes::from(s.to_owned());
    run(&store, "SET s 10").await;

    // A concurrent write between the read and the commit: decided again.
    let mut calls = 0;
    let handle = tokio::runtime::Handle::current();
    let result = store
        .update(0, &[Read::String(b("s"))], None, |snap| {
            calls += 1;
            let Found::String(Ok(Some(v))) = &snap.found()[0] else {
                panic!("{:?}", snap.found())
            };
            if calls == 1 {
                let other = store.clone();
                tokio::task::block_in_place(|| {
                    handle.block_on(async { run(&other, "SET s 20").await })
                });
            }
            let next = std::str::from_utf8(v).unwrap().parse::<i64>().unwrap() + 1;
            Decision::Write(
                vec![Change::SetString {
                    key: b("s"),
                    value: Bytes::from(next.to_string()),
                    ttl: TtlUpdate::Keep,
                }],
                next,
            )
        })
        .await
        .unwrap();
    assert_eq!((calls, result), (2, 21));
    assert_eq!(run(&store, "GET s").await, "$21");

    // Every kind of read.
    run(&store, "HSET h f v g w").await;
    run(&store, "PEXPIRE h 100000").await;
    run(&store, "SADD set a b").await;
    run(&store, "SET other x").await;
    let reads = [
        Read::String(b("h")),
        Read::HashField {
            key: b("h"),
            field: b("f"),
        },
        Read::HashField {
            key: b("h"),
            field: b("nope"),
        },
        Read::Key(b("h")),
        Read::Key(b("set")),
        Read::Key(b("missing")),
        Read::Exists {
            key: b("other"),
            db: 0,
        },
        Read::Exists {
            key: b("other"),
            db: 3,
        },
        Read::Command(vec![b("SCARD"), b("set")]),
    ];
    let found = store
        .update(0, &reads, None, |snap| {
            Decision::Keep(snap.found().to_vec())
        })
        .await
        .unwrap();
    assert_eq!(found[0], Found::String(Err(WrongType)));
    assert_eq!(found[1], Found::HashField(Ok(Some(b("v")))));
    assert_eq!(found[2], Found::HashField(Ok(None)));
    let Found::Key(Some(KeyFound {
        kind,
        expire_at,
        value,
    })) = &found[3]
    else {
        panic!("{:?}", found[3])
    };
    assert_eq!(*kind, KeyType::Hash);
    assert!(expire_at.is_some());
    let Some(EntryValue::Hash(pairs)) = value else {
        panic!("{value:?}")
    };
    assert_eq!(pairs, &[(b("f"), b("v")), (b("g"), b("w"))]);
    assert!(matches!(
        &found[4],
        Found::Key(Some(KeyFound {
            kind: KeyType::Set,
            value: None,
            ..
        }))
    ));
    assert_eq!(found[5], Found::Key(None));
    assert_eq!(found[6], Found::Exists(true));
    assert_eq!(found[7], Found::Exists(false));
    assert!(matches!(
        &found[8],
        Found::Reply(Frame::Number { data: 2, .. })
    ));

    // Every kind of write, as one atomic step: a re-sealed RENAME of a hash
    // (Put, then Delete), a native RENAME of a set, a field set and removed.
    let changes = vec![
        Change::Put {
            key: b("h2"),
            db: 0,
            entry: Entry {
                value: EntryValue::Hash(vec![(b("f"), b("resealed"))]),
                expire_at: Some(4_000_000_000_000),
            },
        },
        Change::Delete { key: b("h"), db: 0 },
        Change::Native(vec![b("RENAME"), b("set"), b("set2")]),
        Change::HashSet {
            key: b("h3"),
            field: b("a"),
            value: b("1"),
        },
        Change::HashSet {
            key: b("h3"),
            field: b("b"),
            value: b("2"),
        },
        Change::HashDelete {
            key: b("h3"),
            field: b("a"),
        },
        Change::Put {
            key: b("copied"),
            db: 3,
            entry: Entry {
                value: EntryValue::String(b("x")),
                expire_at: None,
            },
        },
    ];
    store
        .update(0, &[], None, |_| Decision::Write(changes.clone(), ()))
        .await
        .unwrap();
    assert_eq!(run(&store, "HGETALL h2").await, "%[$f: $resealed]");
    assert_eq!(run(&store, "EXPIRETIME h2").await, ":4000000000");
    assert_eq!(run(&store, "EXISTS h set").await, ":0");
    assert_eq!(run(&store, "SMEMBERS set2").await, "~[$a, $b]");
    assert_eq!(run(&store, "HGETALL h3").await, "%[$b: $2]");
    assert_eq!(show(&store.execute(3, &args("GET copied")).await), "$x");
    assert_consistent(&local, "rmw").await;

    // A native command's error ends the update with Redis's reply, writing nothing.
    let err = store
        .update(0, &[], None, |_| {
            Decision::Write(
                vec![
                    Change::SetString {
                        key: b("untouched"),
                        value: b("v"),
                        ttl: TtlUpdate::Clear,
                    },
                    Change::Native(vec![b("RENAME"), b("missing"), b("x")]),
                ],
                (),
            )
        })
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "ERR no such key");
    assert_eq!(run(&store, "EXISTS untouched").await, ":0");
}

// --- The backend contract's read-modify-write ---------------------------------------------------

mod contract {
    use bytes::Bytes;
    use sealcache::backend::rmw::{KeyType, KeyValue, Read, Rmw, Snapshot, Write};
    use sealcache::error::ProxyError;
    use tokio::time::{Duration, Instant};

    /// INCR as the session emulates it on sealed values (here, plain ones).
    pub struct Incr {
        pub reads: Vec<Read>,
        pub result: i64,
    }

    impl Incr {
        pub fn new(key: &str) -> Incr {
            Incr {
                reads: vec![Read::String(Bytes::from(key.to_owned()))],
                result: 0,
            }
        }
    }

    impl Rmw for Incr {
        fn reads(&self) -> &[Read] {
            &self.reads
        }
        fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<Write>, ProxyError> {
            let Snapshot::String(value) = &snapshot[0] else {
                panic!("{snapshot:?}")
            };
            let current = value
                .as_ref()
                .map_or(Ok(0), |v| std::str::from_utf8(v).unwrap().parse::<i64>())
                .map_err(|_| {
                    ProxyError::Redis("ERR value is not an integer or out of range".into())
                })?;
            self.result = current + 1;
            Ok(vec![Write::SetString {
                key: self.reads[0].key().clone(),
                value: Bytes::from(self.result.to_string()),
                keep_ttl: true,
            }])
        }
        fn deadline(&self) -> Instant {
            Instant::now() + Duration::from_secs(30)
        }
    }

    /// RENAME as the session emulates it: strings and hashes re-written under
    /// the new name (re-sealed there), other types moved natively.
    pub struct Rename {
        pub reads: Vec<Read>,
        pub args: Vec<Bytes>,
    }

    impl Rename {
        pub fn new(src: &str, dst: &str) -> Rename {
            let (src, dst) = (Bytes::from(src.to_owned()), Bytes::from(dst.to_owned()));
            Rename {
                reads: vec![
                    Read::Key(src.clone()),
                    Read::Exists {
                        key: dst.clone(),
                        db: 0,
                    },
                ],
                args: vec![Bytes::from_static(b"RENAME"), src, dst],
            }
        }
    }

    impl Rmw for Rename {
        fn reads(&self) -> &[Read] {
            &self.reads
        }
        fn decide(&mut self, snapshot: Vec<Snapshot>) -> Result<Vec<Write>, ProxyError> {
            let Snapshot::Key(source) = &snapshot[0] else {
                panic!("{snapshot:?}")
            };
            if source.kind == KeyType::None {
                return Err(ProxyError::Redis("ERR no such key".into()));
            }
            if !matches!(source.kind, KeyType::String | KeyType::Hash) {
                return Ok(vec![Write::Native(self.args.clone())]);
            }
            assert_ne!(source.value, KeyValue::None);
            Ok(vec![
                Write::PutKey {
                    key: self.args[2].clone(),
                    db: 0,
                    value: source.value.clone(),
                    ttl_ms: source.ttl_ms,
                },
                Write::Delete {
                    key: self.args[1].clone(),
                    db: 0,
                },
            ])
        }
        fn deadline(&self) -> Instant {
            Instant::now() + Duration::from_secs(30)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contracts_read_modify_write_runs_on_the_table() {
    let local = DynamoDbLocal::start();
    let store = open_store(&local, "contract").await;

    // Concurrent INCRs through the contract lose nothing.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    let mut op = contract::Incr::new("n");
                    store.read_modify_write(0, &mut op).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(run(&store, "GET n").await, "$100");

    // Redis's errors come back as Redis words them, and nothing is written.
    run(&store, "HSET h f v").await;
    let err = store
        .read_modify_write(0, &mut contract::Incr::new("h"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    let err = store
        .read_modify_write(0, &mut contract::Rename::new("missing", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "ERR no such key");

    // RENAME of a hash (re-written, TTL kept) and of a set (moved natively).
    run(&store, "PEXPIRE h 100000").await;
    store
        .read_modify_write(0, &mut contract::Rename::new("h", "h2"))
        .await
        .unwrap();
    assert_eq!(run(&store, "HGETALL h2").await, "%[$f: $v]");
    assert!(run(&store, "PTTL h2").await.starts_with(":9"));
    assert_eq!(run(&store, "EXISTS h").await, ":0");
    run(&store, "SADD s a b").await;
    store
        .read_modify_write(0, &mut contract::Rename::new("s", "s2"))
        .await
        .unwrap();
    assert_eq!(run(&store, "SMEMBERS s2").await, "~[$a, $b]");
    assert_eq!(run(&store, "EXISTS s").await, ":0");
    assert_consistent(&local, "contract").await;
    assert!(sealcache::backend::dynamodb::supports("ZADD"));
    assert!(!sealcache::backend::dynamodb::supports("BLPOP"));
}
