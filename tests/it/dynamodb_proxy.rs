//! A DynamoDB route through the proxy (issue 9): clients speak RESP to
//! sealcache, which keeps sealed data in a DynamoDB Local table. What lands
//! in the table is read raw with the SDK (criterion 8); two sealcache
//! processes share one table without losing an update (4); DynamoDB going
//! away gives clear errors and coming back gives service without restarting
//! sealcache (9); what the kind cannot do is refused by name (3); a missing
//! table with `create_table: false` stops the start (1).

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use redis::AsyncCommands as _;

use crate::support::dynamodb::DynamoDbLocal;
use crate::support::sealcache::EXIT_CONFIG;
use crate::support::{Certs, Sealcache, SealcacheBuilder, poll_until};

/// A proxy whose only route is the DynamoDB backend `shared` on `table`.
fn proxy(certs: &Certs, local: &DynamoDbLocal, table: &str) -> SealcacheBuilder {
    SealcacheBuilder::new(certs)
        .dynamodb_backend("shared", local, table)
        .route("", "shared")
}

/// Every byte string an attribute holds, nested ones included.
fn bytes_of(value: &AttributeValue, out: &mut Vec<Vec<u8>>) {
    match value {
        AttributeValue::B(b) => out.push(b.as_ref().to_vec()),
        AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.as_bytes().to_vec()),
        AttributeValue::Bs(list) => out.extend(list.iter().map(|b| b.as_ref().to_vec())),
        AttributeValue::Ss(list) | AttributeValue::Ns(list) => {
            out.extend(list.iter().map(|s| s.as_bytes().to_vec()))
        }
        AttributeValue::L(list) => list.iter().for_each(|v| bytes_of(v, out)),
        AttributeValue::M(map) => map.values().for_each(|v| bytes_of(v, out)),
        _ => {}
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_in_the_raw_table_is_plaintext() {
    let certs = Certs::generate();
    let local = DynamoDbLocal::start();
    let sealcache = proxy(&certs, &local, "sealed").start();
    let mut conn = sealcache.client().await;
    // Values, members and hash values carry a marker; key and field names
    // (in the clear, as on Redis) do not.
    let secret = |i: usize| format!("PLAINTEXT-MARKER-{i}");
    let _: () = conn.set("s", secret(1)).await.unwrap();
    let _: () = conn.set_ex("t", secret(2), 100).await.unwrap();
    let _: () = conn.hset("h", "f", secret(3)).await.unwrap();
    let _: () = conn.sadd("set", secret(4)).await.unwrap();
    let _: () = conn.zadd("z", secret(5), 2.5).await.unwrap();
    let _: () = conn.rpush("l", secret(6)).await.unwrap();
    let _: i64 = conn.incr("n", 41).await.unwrap();
    let _: () = conn.append("s", "-APPENDED").await.unwrap();
    // A value above the item limit goes in chunks.
    let big = format!("{}{}", secret(7), "x".repeat(1 << 20));
    let _: () = conn.set("big", &big).await.unwrap();
    // Everything reads back through the proxy.
    let got: String = conn.get("s").await.unwrap();
    assert_eq!(got, format!("{}-APPENDED", secret(1)));
    let got: String = conn.get("big").await.unwrap();
    assert_eq!(got, big);
    let got: i64 = conn.incr("n", 1).await.unwrap();
    assert_eq!(got, 42);
    let got: Vec<String> = conn.zrange("z", 0, -1).await.unwrap();
    assert_eq!(got, vec![secret(5)]);

    let items = local.raw_items("sealed").await;
    assert!(items.len() >= 8, "{} items", items.len());
    let mut stored = Vec::new();
    for item in &items {
        item.values().for_each(|v| bytes_of(v, &mut stored));
    }
    for bytes in &stored {
        assert!(
            !contains(bytes, b"PLAINTEXT-MARKER") && !contains(bytes, b"APPENDED"),
            "plaintext in the raw table: {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
        );
        // The integer 42 is sealed too: no attribute holds it as text.
        assert_ne!(bytes.as_slice(), b"42");
    }
    // And the envelopes are there: sealcache's magic bytes opening the
    // value attributes of s, t, h, l, n and big's first chunk (set and
    // sorted-set members sit inside sort keys, after a prefix).
    let envelopes = stored
        .iter()
        .filter(|b| b.starts_with(&[0xF5, 0xEA, 0x1C]))
        .count();
    assert!(envelopes >= 6, "{envelopes} envelopes in the raw table");
    let members = stored
        .iter()
        .filter(|b| contains(b, &[0xF5, 0xEA, 0x1C, 0x02]))
        .count();
    assert!(members >= 2, "{members} sealed members in the raw table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sealcache_processes_share_one_table_and_lose_no_update() {
    const ROUNDS: usize = 500;
    const CLIENTS: usize = 4;
    let certs = Certs::generate();
    let local = DynamoDbLocal::start();
    let first = proxy(&certs, &local, "shared").start();
    // The second shares the first's master key: one deployment, two sidecars.
    let second = proxy(&certs, &local, "shared")
        .master_key(first.master_key())
        .start();
    let mut tasks = Vec::new();
    for (p, sidecar) in [&first, &second].into_iter().enumerate() {
        for c in 0..CLIENTS {
            let mut conn = sidecar.client().await;
            tasks.push(tokio::spawn(async move {
                let mut errors = 0;
                for i in 0..ROUNDS {
                    let incr: redis::RedisResult<i64> = conn.incr("counter", 1).await;
                    let sadd: redis::RedisResult<i64> =
                        conn.sadd("members", format!("m-{p}-{c}-{i}")).await;
                    errors += usize::from(incr.is_err()) + usize::from(sadd.is_err());
                }
                errors
            }));
        }
    }
    let mut errors = 0;
    for task in tasks {
        errors += task.await.unwrap();
    }
    println!("client-visible errors: {errors}");
    assert_eq!(errors, 0);
    let mut conn = second.client().await;
    let total: i64 = conn.get("counter").await.unwrap();
    assert_eq!(total, (2 * CLIENTS * ROUNDS) as i64);
    let mut conn = first.client().await;
    let members: i64 = conn.scard("members").await.unwrap();
    assert_eq!(members, (2 * CLIENTS * ROUNDS) as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_going_away_gives_clear_errors_and_coming_back_gives_service() {
    let certs = Certs::generate();
    let mut local = DynamoDbLocal::start_persistent();
    let sealcache = proxy(&certs, &local, "outage").start();
    let mut conn = sealcache.client().await;
    let _: () = conn.set("kept", "before").await.unwrap();
    local.stop();
    let err = conn
        .get::<_, Option<String>>("kept")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sealcache: backend 'shared' is unavailable: table 'outage': GetItem failed"),
        "{err}"
    );
    // The connection survives the error; the proxy too.
    local.restart();
    let back = poll_until(Duration::from_secs(30), || blocking_get(&sealcache, "kept"));
    assert_eq!(back, Some(Some("before".to_string())));
    let _: () = conn.set("after", "yes").await.unwrap();
    let got: String = conn.get("after").await.unwrap();
    assert_eq!(got, "yes");
}

/// GET through a fresh blocking connection (for `poll_until`), `None` while
/// the proxy answers errors.
fn blocking_get(sealcache: &Sealcache, key: &str) -> Option<Option<String>> {
    let mut conn = sealcache.endpoint().try_sync_client().ok()?;
    redis::cmd("GET").arg(key).query(&mut conn).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_dynamodb_cannot_do_is_refused_by_name() {
    let certs = Certs::generate();
    let local = DynamoDbLocal::start();
    let sealcache = proxy(&certs, &local, "caps").start();
    let mut conn = sealcache.client().await;
    for (command, args) in [
        ("BLPOP", vec!["l", "1"]),
        ("MULTI", vec![]),
        ("WATCH", vec!["k"]),
        ("SUBSCRIBE", vec!["c"]),
        ("XADD", vec!["x", "*", "f", "v"]),
        ("OBJECT", vec!["ENCODING", "k"]),
    ] {
        let mut cmd = redis::cmd(command);
        for arg in &args {
            cmd.arg(*arg);
        }
        let err = cmd
            .query_async::<redis::Value>(&mut conn)
            .await
            .unwrap_err()
            .to_string();
        let shown = if command == "OBJECT" {
            "OBJECT ENCODING"
        } else {
            command
        };
        assert!(
            err.contains(&format!(
                "sealcache: {shown} is not supported by the dynamodb backend 'shared'"
            )),
            "{command}: {err}"
        );
    }
    let err = redis::cmd("SELECT")
        .arg(1)
        .query_async::<()>(&mut conn)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SELECT is not supported by the dynamodb backend 'shared'"),
        "{err}"
    );
    // The connection goes on.
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn a_missing_table_with_create_table_false_stops_the_start() {
    let certs = Certs::generate();
    let local = DynamoDbLocal::start();
    let exited = proxy(&certs, &local, "absent")
        .set(
            "backends.shared",
            &format!(
                "{{type: dynamodb, table: absent, region: us-east-1, endpoint_url: \"{}\", create_table: false}}",
                local.endpoint_url()
            ),
        )
        .run_until_exit("serve");
    assert_eq!(exited.code, Some(EXIT_CONFIG), "{}", exited.log);
    assert!(
        exited
            .log
            .contains("dynamodb backend 'shared' (table 'absent')")
            && exited
                .log
                .contains("the table does not exist and create_table is false"),
        "{}",
        exited.log
    );
}
