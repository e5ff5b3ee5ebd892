//! Named backends and key-prefix routes in one proxy (issue 8, criteria 4
//! and 7): every key lands in its route's store — each store read raw —
//! commands whose keys span routes are refused naming the routes, and the
//! whole-keyspace commands merge, fan out or refuse as docs/backends.md says.

use std::collections::BTreeSet;

use redis::AsyncCommands as _;

use crate::support::{Certs, RedisServer, Sealcache, random_password};

/// Envelope magic (docs/envelope.md): every stored value starts with it.
const MAGIC: [u8; 3] = [0xF5, 0xEA, 0x1C];

/// Two Redis servers and a memory store: `b:` keys on `other`, `tmp:` keys
/// in `scratch`, every other key on `main`.
struct Routed {
    main: RedisServer,
    other: RedisServer,
    proxy: Sealcache,
}

fn routed() -> Routed {
    let certs = Certs::generate();
    let main = RedisServer::start_tls(&certs, &random_password(24));
    let other = RedisServer::start_tls(&certs, &random_password(24));
    let proxy = Sealcache::builder(&main)
        .redis_backend("main", &main)
        .redis_backend("other", &other)
        .memory_backend("scratch", "64MiB")
        .route("tmp:", "scratch")
        .route("b:", "other")
        .route("", "main")
        .set("allowed_admin_commands", "[FLUSHDB]")
        .start();
    Routed { main, other, proxy }
}

/// One key of every type under `prefix`, written through the proxy.
async fn write_every_type(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) {
    let k = |name: &str| format!("{prefix}{name}");
    let secret = format!("secret-of-{prefix}");
    let _: () = conn.set(k("string"), &secret).await.unwrap();
    let _: () = conn.hset(k("hash"), "field", &secret).await.unwrap();
    let _: () = conn.rpush(k("list"), &secret).await.unwrap();
    let _: () = conn.sadd(k("set"), &secret).await.unwrap();
    let _: () = conn.zadd(k("zset"), &secret, 1).await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg(k("stream"))
        .arg("*")
        .arg("field")
        .arg(&secret)
        .query_async(conn)
        .await
        .unwrap();
    let n: i64 = conn.incr(k("counter"), 5).await.unwrap();
    assert_eq!(n, 5);
}

fn names(prefix: &str) -> BTreeSet<String> {
    ["string", "hash", "list", "set", "zset", "stream", "counter"]
        .iter()
        .map(|n| format!("{prefix}{n}"))
        .collect()
}

/// Every key of a raw redis-server, and a check that no stored byte string
/// holds a plaintext secret and every string value is an envelope.
async fn raw_keys(redis: &RedisServer) -> BTreeSet<String> {
    let mut raw = redis.client().await;
    let keys: Vec<String> = raw.keys("*").await.unwrap();
    for key in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut raw)
            .await
            .unwrap();
        let dumped: Vec<Vec<u8>> = match kind.as_str() {
            "string" => vec![raw.get(key).await.unwrap()],
            "hash" => raw.hvals(key).await.unwrap(),
            "list" => raw.lrange(key, 0, -1).await.unwrap(),
            "set" => raw.smembers(key).await.unwrap(),
            "zset" => raw.zrange(key, 0, -1).await.unwrap(),
            "stream" => {
                // [[id, [field, value, …]] …]: the values are every second item.
                let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
                    .arg(key)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut raw)
                    .await
                    .unwrap();
                entries
                    .into_iter()
                    .flat_map(|(_, fields)| fields.into_iter().skip(1).step_by(2))
                    .collect()
            }
            other => panic!("{key}: unexpected type {other}"),
        };
        assert!(!dumped.is_empty(), "{key}: nothing stored");
        for value in dumped {
            assert!(
                value.starts_with(&MAGIC),
                "{key} ({kind}) holds something that is not an envelope: {:?}",
                String::from_utf8_lossy(&value)
            );
            assert!(
                !String::from_utf8_lossy(&value).contains("secret-of-"),
                "{key}: plaintext reached the store"
            );
        }
    }
    keys.into_iter().collect()
}

#[tokio::test]
async fn every_key_lands_in_its_routes_store_sealed() {
    let r = routed();
    let mut conn = r.proxy.client().await;
    for prefix in ["", "b:", "tmp:"] {
        write_every_type(&mut conn, prefix).await;
    }
    // Raw stores: main holds exactly the unprefixed keys, other the `b:` keys,
    // neither a `tmp:` key (they live in the proxy's memory backend).
    assert_eq!(raw_keys(&r.main).await, names(""));
    assert_eq!(raw_keys(&r.other).await, names("b:"));
    // Through the proxy every key reads back, from its own store.
    for prefix in ["", "b:", "tmp:"] {
        let secret = format!("secret-of-{prefix}");
        let got: String = conn.get(format!("{prefix}string")).await.unwrap();
        assert_eq!(got, secret);
        let got: String = conn.hget(format!("{prefix}hash"), "field").await.unwrap();
        assert_eq!(got, secret);
        let got: Vec<String> = conn.lrange(format!("{prefix}list"), 0, -1).await.unwrap();
        assert_eq!(got, vec![secret.clone()]);
        let got: Vec<String> = conn.smembers(format!("{prefix}set")).await.unwrap();
        assert_eq!(got, vec![secret.clone()]);
        let got: i64 = conn.incr(format!("{prefix}counter"), 1).await.unwrap();
        assert_eq!(got, 6, "{prefix}counter");
    }
    // KEYS merges every route's answer.
    let mut all: Vec<String> = conn.keys("*").await.unwrap();
    all.sort();
    let expected: BTreeSet<String> = ["", "b:", "tmp:"].iter().flat_map(|p| names(p)).collect();
    assert_eq!(all.into_iter().collect::<BTreeSet<_>>(), expected);
}

#[tokio::test]
async fn commands_across_routes_are_refused_naming_the_routes() {
    let r = routed();
    let mut conn = r.proxy.client().await;
    let err = redis::cmd("MSET")
        .arg("a")
        .arg("1")
        .arg("tmp:a")
        .arg("2")
        .query_async::<()>(&mut conn)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sealcache: MSET has keys in more than one route")
            && err.contains("'a' in route \"\"")
            && err.contains("'tmp:a' in route \"tmp:\""),
        "{err}"
    );
    // Nothing was written anywhere.
    let mut raw = r.main.client().await;
    let exists: i64 = raw.exists("a").await.unwrap();
    assert_eq!(exists, 0);
    let got: Option<String> = conn.get("tmp:a").await.unwrap();
    assert_eq!(got, None);
    // One route's keys together are fine, whichever route.
    let _: () = redis::cmd("MSET")
        .arg("b:x")
        .arg("1")
        .arg("b:y")
        .arg("2")
        .query_async(&mut conn)
        .await
        .unwrap();
    let err = redis::cmd("RENAME")
        .arg("b:x")
        .arg("x")
        .query_async::<()>(&mut conn)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than one route"), "{err}");
}

#[tokio::test]
async fn whole_keyspace_commands_merge_fan_out_or_refuse() {
    let r = routed();
    let mut conn = r.proxy.client().await;
    for prefix in ["", "b:", "tmp:"] {
        let _: () = conn.set(format!("{prefix}k"), "v").await.unwrap();
    }
    for command in ["SCAN 0", "DBSIZE", "RANDOMKEY"] {
        let mut cmd = redis::cmd(command.split(' ').next().unwrap());
        for arg in command.split(' ').skip(1) {
            cmd.arg(arg);
        }
        let err = cmd
            .query_async::<redis::Value>(&mut conn)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sealcache:") && err.contains("route"),
            "{command}: {err}"
        );
    }
    // FLUSHDB empties every route's store.
    let _: () = redis::cmd("FLUSHDB").query_async(&mut conn).await.unwrap();
    let mut main = r.main.client().await;
    let mut other = r.other.client().await;
    let main_keys: Vec<String> = main.keys("*").await.unwrap();
    let other_keys: Vec<String> = other.keys("*").await.unwrap();
    assert!(main_keys.is_empty() && other_keys.is_empty());
    let got: Option<String> = conn.get("tmp:k").await.unwrap();
    assert_eq!(got, None);
}

#[tokio::test]
async fn info_shows_each_backend_and_route() {
    let r = routed();
    let mut conn = r.proxy.client().await;
    let info: String = redis::cmd("INFO")
        .arg("proxy")
        .query_async(&mut conn)
        .await
        .unwrap();
    for needle in [
        "backends:3\r\n",
        "routes:3\r\n",
        "backend_main:type=redis,ready=1\r\n",
        "backend_other:type=redis,ready=1\r\n",
        "backend_scratch:type=memory,ready=1\r\n",
        "route_0:prefix=tmp:,backend=scratch\r\n",
        "route_1:prefix=b:,backend=other\r\n",
        "route_2:prefix=,backend=main\r\n",
    ] {
        assert!(info.contains(needle), "missing {needle} in:\n{info}");
    }
}

#[tokio::test]
async fn a_command_the_routes_backend_lacks_is_refused_by_name() {
    let r = routed();
    let mut conn = r.proxy.client().await;
    let _: () = conn.set("tmp:k", "v").await.unwrap();
    let err = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("tmp:k")
        .query_async::<redis::Value>(&mut conn)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sealcache: OBJECT ENCODING is not supported by the memory backend 'scratch'"),
        "{err}"
    );
    // The same command on a Redis route runs.
    let _: () = conn.set("k", "v").await.unwrap();
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("k")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!encoding.is_empty());
}
