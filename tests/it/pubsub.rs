//! Pub/Sub through the shared hub: one upstream connection for every
//! subscriber, redis-server's exact bytes for each client, resubscription
//! after the upstream connection dies, and subscribers that do not read.

use std::time::Duration;

use futures_util::future::join_all;

use crate::support::resp::{RawConn, Reply, Value};
use crate::support::{
    Certs, Endpoint, RedisServer, Sealcache, SealcacheBuilder, poll_until_async, random_password,
};

const SUBSCRIBERS: usize = 200;
const CHANNELS: usize = 10;
const SHARDS: usize = 7;
/// How long the hub may take to be connected and subscribed again.
const RESUBSCRIBE_WAIT: Duration = Duration::from_secs(20);

fn upstream() -> RedisServer {
    RedisServer::start_tls(&Certs::generate(), &random_password(32))
}

fn bulk(bytes: impl AsRef<[u8]>) -> Value {
    Value::bulk(bytes)
}

/// `[subscribe, name, count]` as a RESP2 client gets it.
fn confirmed(word: &str, name: &str, count: i64) -> Value {
    Value::Array(vec![bulk(word), bulk(name), Value::Int(count)])
}

/// Subscriber `i` of [`SUBSCRIBERS`]: a third each on a channel, a pattern and
/// a shard channel, every name shared by several clients.
fn subscription(i: usize) -> (&'static str, String) {
    match i % 3 {
        0 => ("SUBSCRIBE", format!("news.{}", i % CHANNELS)),
        1 => ("PSUBSCRIBE", format!("news.{}*", i % CHANNELS)),
        _ => ("SSUBSCRIBE", format!("shard.{}", i % SHARDS)),
    }
}

/// What subscriber `i` receives of publication round `round`.
fn expected_message(i: usize, round: usize) -> Value {
    let channel = format!("news.{}", i % CHANNELS);
    let shard = format!("shard.{}", i % SHARDS);
    match i % 3 {
        0 => Value::Array(vec![
            bulk("message"),
            bulk(&channel),
            bulk(payload(&channel, round)),
        ]),
        1 => Value::Array(vec![
            bulk("pmessage"),
            bulk(format!("{channel}*")),
            bulk(&channel),
            bulk(payload(&channel, round)),
        ]),
        _ => Value::Array(vec![
            bulk("smessage"),
            bulk(&shard),
            bulk(payload(&shard, round)),
        ]),
    }
}

fn payload(channel: &str, round: usize) -> String {
    format!("round {round} on {channel}: {}", "x".repeat(round * 7))
}

/// The (sub, psub, ssub) counts of every upstream connection in Pub/Sub mode.
async fn pubsub_connections(upstream: &mut RawConn) -> Vec<(u64, u64, u64)> {
    let list = upstream.call(&["CLIENT", "LIST"]).await;
    let text = String::from_utf8_lossy(list.value.as_bulk()).into_owned();
    text.lines()
        .filter_map(|line| {
            let field = |name: &str| -> u64 {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(&format!("{name}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let counts = (field("sub"), field("psub"), field("ssub"));
            (counts != (0, 0, 0)).then_some(counts)
        })
        .collect()
}

/// Waits until the upstream has exactly one Pub/Sub connection, with these counts.
async fn wait_for_hub(proxy: &Sealcache, counts: (u64, u64, u64)) {
    let upstream = proxy.raw_upstream();
    let seen = poll_until_async(RESUBSCRIBE_WAIT, || {
        let upstream = upstream.clone();
        async move {
            let mut raw = RawConn::open(&upstream).await;
            let seen = pubsub_connections(&mut raw).await;
            (seen == vec![counts]).then_some(seen)
        }
    })
    .await;
    assert!(
        seen.is_some(),
        "the upstream never showed one Pub/Sub connection with (sub, psub, ssub) = {counts:?}"
    );
}

#[tokio::test]
async fn two_hundred_subscribers_share_one_upstream_connection_and_get_every_message_once() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let endpoint = proxy.endpoint();
    let mut subscribers = join_all((0..SUBSCRIBERS).map(|i| {
        let endpoint = endpoint.clone();
        async move {
            let mut c = RawConn::open(&endpoint).await;
            let (command, name) = subscription(i);
            let reply = c.call(&[command, name.as_str()]).await;
            assert_eq!(
                reply.value,
                confirmed(&command.to_ascii_lowercase(), &name, 1),
                "subscriber {i}"
            );
            c
        }
    }))
    .await;

    // 200 subscribers are more than upstream.max_pinned (64): dedicated
    // connections are still free for transactions and blocking commands.
    let mut c = RawConn::open(&endpoint).await;
    assert_eq!(c.call(&["INCR", "counter"]).await.value, Value::Int(1));
    assert_eq!(c.call(&["MULTI"]).await.value, Value::Simple("OK".into()));
    for args in [&["SET", "tx", "v"][..], &["GET", "tx"]] {
        assert_eq!(c.call(args).await.value, Value::Simple("QUEUED".into()));
    }
    assert_eq!(
        c.call(&["EXEC"]).await.value,
        Value::Array(vec![Value::Simple("OK".into()), bulk("v")])
    );
    let mut blocked = RawConn::open(&endpoint).await;
    blocked.send(&["BLPOP", "queue", "20"]).await;
    assert_eq!(
        c.call(&["RPUSH", "queue", "job"]).await.value,
        Value::Int(1)
    );
    assert_eq!(
        blocked.read().await.value,
        Value::Array(vec![bulk("queue"), bulk("job")])
    );

    // One upstream connection holds every distinct name once.
    let mut raw = RawConn::open(&proxy.raw_upstream()).await;
    assert_eq!(
        pubsub_connections(&mut raw).await,
        vec![(CHANNELS as u64, CHANNELS as u64, SHARDS as u64)],
        "exactly one upstream Pub/Sub connection from sealcache"
    );
    let info = c.call(&["INFO", "proxy"]).await;
    let info = String::from_utf8_lossy(info.value.as_bulk()).into_owned();
    for line in [
        "backend_main_pubsub_connected:1",
        "backend_main_pubsub_clients:200",
        "backend_main_pubsub_channels:10",
        "backend_main_pubsub_patterns:10",
        "backend_main_pubsub_shard_channels:7",
    ] {
        assert!(
            info.lines().any(|l| l == line),
            "INFO lacks {line}:\n{info}"
        );
    }

    // Three rounds, then a fourth: each subscriber's next four messages are
    // exactly those, so nothing came twice. PUBLISH counts the subscribers
    // as redis-server would with a connection each, not the one hub.
    let receivers = |kinds: &[usize], n: usize, of: usize| {
        (0..SUBSCRIBERS)
            .filter(|i| kinds.contains(&(i % 3)) && i % of == n)
            .count() as i64
    };
    let mut publisher = RawConn::open(&endpoint).await;
    for round in 0..4 {
        for n in 0..CHANNELS {
            let channel = format!("news.{n}");
            let sent = publisher
                .call(&["PUBLISH", &channel, &payload(&channel, round)])
                .await;
            let want = receivers(&[0, 1], n, CHANNELS);
            assert_eq!(sent.value, Value::Int(want), "{channel}");
        }
        for n in 0..SHARDS {
            let shard = format!("shard.{n}");
            let sent = publisher
                .call(&["SPUBLISH", &shard, &payload(&shard, round)])
                .await;
            let want = receivers(&[2], n, SHARDS);
            assert_eq!(sent.value, Value::Int(want), "{shard}");
        }
    }
    join_all(subscribers.iter_mut().enumerate().map(|(i, s)| async move {
        for round in 0..4 {
            assert_eq!(
                s.read().await.value,
                expected_message(i, round),
                "subscriber {i}, round {round}"
            );
        }
    }))
    .await;

    // Sealed upstream: a raw subscriber sees no plaintext.
    let mut raw_subscriber = RawConn::open(&proxy.raw_upstream()).await;
    raw_subscriber.call(&["SUBSCRIBE", "news.3"]).await;
    publisher
        .call(&["PUBLISH", "news.3", "the-plaintext-payload"])
        .await;
    let sealed = raw_subscriber.read().await;
    let stored = sealed.value.items()[2].as_bulk();
    assert!(
        !stored
            .windows(b"plaintext".len())
            .any(|w| w == b"plaintext"),
        "the payload went upstream unsealed"
    );
}

/// One side of a comparison: a subscriber and a publisher on the same server.
struct Side {
    subscriber: RawConn,
    publisher: RawConn,
    password: String,
}

enum Step {
    /// A command on the subscriber, and how many replies (confirmations,
    /// messages) it then reads.
    Command(&'static [&'static str], usize),
    /// A publication, and how many messages the subscriber then reads.
    Publish(&'static str, &'static str, &'static str, usize),
    /// AUTH again (after RESET), with the side's own password.
    Auth,
    /// A command whose one reply differs by design (HELLO's server details).
    Uncompared(&'static [&'static str]),
}

/// Subscribing, messages, unsubscribing, every edge case; then RESET and QUIT.
const SCRIPT: &[Step] = &[
    Step::Command(&["SUBSCRIBE", "a", "a", "b"], 3),
    Step::Publish("PUBLISH", "a", "m1", 1),
    Step::Command(&["PSUBSCRIBE", "p*"], 1),
    Step::Publish("PUBLISH", "pa", "m2", 1),
    Step::Publish("PUBLISH", "a", "m3", 1),
    Step::Command(&["PING"], 1),
    Step::Command(&["PING", "hi"], 1),
    Step::Command(&["SSUBSCRIBE", "s1", "s1"], 2),
    Step::Publish("SPUBLISH", "s1", "m4", 1),
    Step::Command(&["SET", "k", "v"], 1),
    Step::Command(&["GET", "k"], 1),
    Step::Command(&["EXEC"], 1),
    Step::Command(&["UNSUBSCRIBE", "x"], 1),
    Step::Command(&["UNSUBSCRIBE", "b"], 1),
    Step::Publish("PUBLISH", "b", "m5", 0),
    Step::Command(&["UNSUBSCRIBE"], 1),
    Step::Command(&["UNSUBSCRIBE"], 1),
    Step::Publish("PUBLISH", "a", "m6", 0),
    Step::Publish("PUBLISH", "pb", "m7", 1),
    Step::Command(&["PUNSUBSCRIBE"], 1),
    Step::Command(&["PUNSUBSCRIBE"], 1),
    Step::Command(&["SUNSUBSCRIBE", "s1"], 1),
    Step::Command(&["SUNSUBSCRIBE"], 1),
    Step::Command(&["PING"], 1),
    Step::Command(&["SUBSCRIBE", "c"], 1),
    // Messages follow a protocol switch (RESP3 → RESP2; refused in RESP2 mode).
    Step::Uncompared(&["HELLO", "2"]),
    Step::Publish("PUBLISH", "c", "m9", 1),
    Step::Command(&["RESET"], 1),
    Step::Publish("PUBLISH", "c", "m8", 0),
    Step::Auth,
    Step::Command(&["PING"], 1),
    // RESET inside MULTI ends the transaction at once and the
    // authentication with it: PING and EXEC then answer NOAUTH.
    Step::Command(&["MULTI"], 1),
    Step::Command(&["SET", "k", "w"], 1),
    Step::Command(&["RESET"], 1),
    Step::Command(&["PING"], 1),
    Step::Command(&["EXEC"], 1),
    Step::Auth,
    Step::Command(&["EXEC"], 1),
    Step::Command(&["GET", "k"], 1),
    Step::Command(&["SUBSCRIBE", "d"], 1),
    Step::Command(&["QUIT"], 1),
];

impl Side {
    /// What the subscriber receives for `step` (the publisher's reply first).
    async fn run(&mut self, step: &Step) -> Vec<Reply> {
        let (mut got, expected) = match step {
            Step::Command(args, n) => {
                self.subscriber.send(args).await;
                (Vec::new(), *n)
            }
            Step::Publish(command, channel, message, n) => {
                let sent = self.publisher.call(&[command, channel, message]).await;
                (vec![sent], *n)
            }
            Step::Auth => {
                let password = self.password.clone();
                self.subscriber.send(&["AUTH", "default", &password]).await;
                (Vec::new(), 1)
            }
            Step::Uncompared(args) => {
                self.subscriber.call(args).await;
                return Vec::new();
            }
        };
        for _ in 0..expected {
            got.push(self.subscriber.read().await);
        }
        got
    }
}

async fn compare_with_redis_server(resp3: bool) {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let direct = RedisServer::start_tls(redis.certs(), &random_password(32));
    let open = |endpoint| async move {
        if resp3 {
            RawConn::open_resp3(&endpoint).await
        } else {
            RawConn::open(&endpoint).await
        }
    };
    let mut through = Side {
        subscriber: open(proxy.endpoint()).await,
        publisher: RawConn::open(&proxy.endpoint()).await,
        password: proxy.password().to_owned(),
    };
    let mut straight = Side {
        subscriber: open(direct.endpoint()).await,
        publisher: RawConn::open(&direct.endpoint()).await,
        password: direct.password().to_owned(),
    };
    for (n, step) in SCRIPT.iter().enumerate() {
        let want = straight.run(step).await;
        let got = through.run(step).await;
        let bytes = |replies: &[Reply]| -> Vec<String> {
            replies
                .iter()
                .map(|r| String::from_utf8_lossy(&r.bytes).into_owned())
                .collect()
        };
        assert_eq!(
            bytes(&got),
            bytes(&want),
            "step {n} (RESP{}): sealcache answered {got:?}, redis-server {want:?}",
            if resp3 { 3 } else { 2 }
        );
    }
    // QUIT closed both, with nothing else sent.
    assert!(
        straight
            .subscriber
            .closes_within(Duration::from_secs(5))
            .await
    );
    assert!(
        through
            .subscriber
            .closes_within(Duration::from_secs(5))
            .await
    );
}

#[tokio::test]
async fn confirmations_and_messages_are_redis_servers_bytes_in_resp2() {
    compare_with_redis_server(false).await;
}

#[tokio::test]
async fn confirmations_and_messages_are_redis_servers_bytes_in_resp3() {
    compare_with_redis_server(true).await;
}

/// Subscriptions spread over connections: PUBLISH, SPUBLISH and PUBSUB
/// NUMSUB must count the same receivers through sealcache (one hub
/// connection upstream) as on redis-server (a connection each), a subscriber
/// straight on the upstream included.
#[tokio::test]
async fn publish_and_numsub_count_receivers_as_redis_server_does() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let direct = RedisServer::start_tls(redis.certs(), &random_password(32));
    let _through = subscribe_all(&proxy.endpoint(), true).await;
    let _straight = subscribe_all(&direct.endpoint(), true).await;
    // Another receiver straight on each server: it counts on both.
    let mut outsider = RawConn::open(&proxy.raw_upstream()).await;
    subscribe_replies(&mut outsider, &["PSUBSCRIBE", "*"]).await;
    let mut direct_outsider = RawConn::open(&direct.endpoint()).await;
    subscribe_replies(&mut direct_outsider, &["PSUBSCRIBE", "*"]).await;
    // The hub holds a, b, a*, ?, s, t once each.
    let upstream_connections = || async {
        let mut raw = RawConn::open(&proxy.raw_upstream()).await;
        pubsub_connections(&mut raw).await
    };
    let hub_seen = poll_until_async(RESUBSCRIBE_WAIT, || async {
        upstream_connections()
            .await
            .contains(&(2, 2, 2))
            .then_some(())
    })
    .await;
    assert!(hub_seen.is_some(), "the hub never held (2, 2, 2)");

    compare_counts(&proxy.endpoint(), &direct.endpoint(), true).await;
    // The same after a subscriber leaves.
    let mut through = RawConn::open(&proxy.endpoint()).await;
    drop(_through);
    let drained = poll_until_async(RESUBSCRIBE_WAIT, || async {
        (upstream_connections().await.len() == 1).then_some(())
    })
    .await;
    assert!(drained.is_some(), "the hub kept its subscriptions");
    let got = through.call(&["PUBLISH", "a", "m"]).await.value;
    assert_eq!(got, Value::Int(1), "only the outsider is left");
    let got = through.call(&["PUBSUB", "NUMSUB", "a"]).await.value;
    assert_eq!(got, Value::Array(vec![bulk("a"), Value::Int(0)]));
}

/// The same counts on a memory route, which runs Pub/Sub in the process
/// (it has no shard channels).
#[tokio::test]
async fn publish_and_numsub_count_receivers_as_redis_server_does_on_a_memory_route() {
    let certs = Certs::generate();
    let proxy = SealcacheBuilder::new(&certs)
        .unset("upstream.url")
        .unset("upstream.ca_file")
        .yaml("backends:\n  main: {type: memory}\nroutes:\n  - {prefix: \"\", backend: main}\n")
        .start();
    let direct = RedisServer::start_tls(&certs, &random_password(32));
    let _through = subscribe_all(&proxy.endpoint(), false).await;
    let _straight = subscribe_all(&direct.endpoint(), false).await;
    compare_counts(&proxy.endpoint(), &direct.endpoint(), false).await;
}

/// Subscribers spread over connections (shard channels too when `shards`),
/// each connection confirmed, held open by the caller.
async fn subscribe_all(endpoint: &Endpoint, shards: bool) -> Vec<RawConn> {
    const SUBSCRIPTIONS: &[&[&str]] = &[
        &["SUBSCRIBE", "a"],
        &["SUBSCRIBE", "a", "b"],
        &["PSUBSCRIBE", "a*"],
        &["PSUBSCRIBE", "a*", "?"],
        &["SUBSCRIBE", "a"],
        &["SSUBSCRIBE", "s"],
        &["SSUBSCRIBE", "s", "t"],
    ];
    let mut held = Vec::new();
    for args in SUBSCRIPTIONS {
        if args[0] == "SSUBSCRIBE" && !shards {
            continue;
        }
        let mut c = RawConn::open(endpoint).await;
        subscribe_replies(&mut c, args).await;
        held.push(c);
    }
    held
}

/// PUBLISH, SPUBLISH and PUBSUB counts through sealcache and straight to
/// redis-server, replies compared in RESP2 and RESP3.
async fn compare_counts(through: &Endpoint, straight: &Endpoint, shards: bool) {
    const COMMANDS: &[&[&str]] = &[
        &["PUBLISH", "a", "m"],
        &["PUBLISH", "b", "m"],
        &["PUBLISH", "ab", "m"],
        &["PUBLISH", "z", "m"],
        &["PUBLISH", "s", "m"],
        &["SPUBLISH", "s", "m"],
        &["SPUBLISH", "t", "m"],
        &["SPUBLISH", "a", "m"],
        &["PUBSUB", "NUMSUB", "a", "b", "ab", "s"],
        &["PUBSUB", "SHARDNUMSUB", "s", "t", "a"],
        &["PUBSUB", "NUMPAT"],
    ];
    for resp3 in [false, true] {
        let mut through = RawConn::open_proto(through, resp3).await;
        let mut straight = RawConn::open_proto(straight, resp3).await;
        for command in COMMANDS {
            if command[0] == "SPUBLISH" && !shards {
                continue;
            }
            let want = straight.call(command).await.bytes;
            let got = through.call(command).await.bytes;
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{command:?} in RESP{}",
                if resp3 { 3 } else { 2 }
            );
        }
    }
}

#[tokio::test]
async fn subscriptions_come_back_when_the_upstream_connection_is_killed_or_restarted() {
    let mut redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let endpoint = proxy.endpoint();
    let mut channel = RawConn::open(&endpoint).await;
    let mut pattern = RawConn::open(&endpoint).await;
    let mut shard = RawConn::open(&endpoint).await;
    channel.call(&["SUBSCRIBE", "news"]).await;
    pattern.call(&["PSUBSCRIBE", "ne*"]).await;
    shard.call(&["SSUBSCRIBE", "orders"]).await;
    wait_for_hub(&proxy, (1, 1, 1)).await;

    let mut publisher = RawConn::open(&endpoint).await;
    let mut check = async |round: &str| {
        let sent = publisher.call(&["PUBLISH", "news", round]).await;
        assert_eq!(sent.value, Value::Int(2), "channel and pattern, {round}");
        let sent = publisher.call(&["SPUBLISH", "orders", round]).await;
        assert_eq!(sent.value, Value::Int(1), "{round}");
        assert_eq!(
            channel.read().await.value,
            Value::Array(vec![bulk("message"), bulk("news"), bulk(round)])
        );
        assert_eq!(
            pattern.read().await.value,
            Value::Array(vec![
                bulk("pmessage"),
                bulk("ne*"),
                bulk("news"),
                bulk(round)
            ])
        );
        assert_eq!(
            shard.read().await.value,
            Value::Array(vec![bulk("smessage"), bulk("orders"), bulk(round)])
        );
    };
    check("before").await;

    let mut raw = RawConn::open(&proxy.raw_upstream()).await;
    let killed = raw.call(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    assert_eq!(killed.value, Value::Int(1), "the hub's connection");
    wait_for_hub(&proxy, (1, 1, 1)).await;
    check("after CLIENT KILL").await;

    redis.restart();
    wait_for_hub(&proxy, (1, 1, 1)).await;
    // The lanes reconnect on their own schedule: publish once every lane has
    // (clients take lanes in turn, so a few consecutive connections cover them all,
    // the publisher's included).
    let endpoint_ok = poll_until_async(RESUBSCRIBE_WAIT, || {
        let endpoint = endpoint.clone();
        async move {
            for _ in 0..4 {
                let mut c = RawConn::open(&endpoint).await;
                let reply = c.call(&["EXISTS", "nothing"]).await;
                if reply.value != Value::Int(0) {
                    return None;
                }
            }
            Some(())
        }
    })
    .await;
    assert!(
        endpoint_ok.is_some(),
        "the proxy never reached the restarted upstream"
    );
    check("after a restart").await;
}

#[tokio::test]
async fn a_subscriber_that_never_reads_is_disconnected_and_the_others_get_every_message() {
    const MESSAGES: usize = 400;
    const SIZE: usize = 64 * 1024;
    let redis = upstream();
    let proxy = Sealcache::builder(&redis)
        .set(
            "limits.pubsub_output_buffer",
            "{hard_bytes: 1048576, soft_bytes: 0, soft_secs: 0}",
        )
        .start();
    let endpoint = proxy.endpoint();
    let mut slow = RawConn::open(&endpoint).await;
    assert_eq!(
        slow.call(&["SUBSCRIBE", "flood"]).await.value,
        confirmed("subscribe", "flood", 1)
    );
    let mut fast = RawConn::open(&endpoint).await;
    assert_eq!(
        fast.call(&["SUBSCRIBE", "flood"]).await.value,
        confirmed("subscribe", "flood", 1)
    );
    let message = |n: usize| {
        let mut m = format!("{n:06}-").into_bytes();
        m.resize(SIZE, b'a' + (n % 26) as u8);
        m
    };
    let reader = tokio::spawn(async move {
        let mut got = Vec::with_capacity(MESSAGES);
        for _ in 0..MESSAGES {
            got.push(fast.read().await.value);
        }
        (fast, got)
    });
    let mut publisher = RawConn::open(&endpoint).await;
    // Both subscribers count until the one that does not read is cut off,
    // then only the other, as on redis-server.
    let mut receivers = Vec::with_capacity(MESSAGES);
    for n in 0..MESSAGES {
        let payload = message(n);
        let sent = publisher
            .call(&[b"PUBLISH".as_slice(), b"flood", &payload])
            .await;
        receivers.push(sent.value.as_int());
    }
    assert_eq!(
        receivers[0], 2,
        "both subscribers receive the first message"
    );
    assert!(
        receivers.windows(2).all(|w| w[0] >= w[1]) && receivers.iter().all(|&n| n >= 1),
        "PUBLISH counts only shrink, to the reader: {receivers:?}"
    );
    let (_fast, got) = reader.await.expect("reader task");
    for (n, value) in got.iter().enumerate() {
        assert_eq!(
            value,
            &Value::Array(vec![bulk("message"), bulk("flood"), bulk(message(n))]),
            "message {n} to the reading subscriber"
        );
    }
    let log = proxy.wait_for_log(
        "disconnecting a Pub/Sub subscriber",
        Duration::from_secs(10),
    );
    assert!(
        log.contains("limits.pubsub_output_buffer.hard_bytes"),
        "{log}"
    );
    assert!(
        slow.closes_within(Duration::from_secs(10)).await,
        "the subscriber that did not read is disconnected"
    );
    // The hub still serves the others.
    wait_for_hub(&proxy, (1, 0, 0)).await;
}

/// The replies to one (un)subscribe: an error, or one confirmation per name.
async fn subscribe_replies(conn: &mut RawConn, args: &[&str]) -> Vec<Reply> {
    conn.send(args).await;
    let first = conn.read().await;
    let mut replies = vec![first.clone()];
    if !matches!(first.value, Value::Error(_)) {
        for _ in 2..args.len() {
            replies.push(conn.read().await);
        }
    }
    replies
}

#[tokio::test]
async fn subscriptions_the_upstream_refuses_fail_as_on_redis_server_and_leave_nothing_behind() {
    let redis = upstream();
    let mut admin = RawConn::open(&redis.endpoint()).await;
    let password = format!(">{}", redis.password());
    let user = [
        "ACL",
        "SETUSER",
        "limited",
        "on",
        &password,
        "~*",
        "&allowed*",
        "+@all",
    ];
    assert_eq!(admin.call(&user).await.value, Value::Simple("OK".into()));
    let proxy = Sealcache::builder(&redis)
        .set("upstream.username", "limited")
        .start();
    let mut through = RawConn::open(&proxy.endpoint()).await;
    let mut straight =
        RawConn::open(&redis.endpoint().with_auth("limited", redis.password())).await;
    for args in [
        &["SUBSCRIBE", "allowed.1"][..],
        &["SUBSCRIBE", "forbidden"],
        &["SUBSCRIBE", "allowed.2", "forbidden"],
        &["SUBSCRIBE", "allowed.2"],
        &["PSUBSCRIBE", "*"],
        &["PSUBSCRIBE", "allowed*"],
        &["UNSUBSCRIBE", "forbidden"],
    ] {
        let want = subscribe_replies(&mut straight, args).await;
        let got = subscribe_replies(&mut through, args).await;
        let bytes = |r: &[Reply]| -> Vec<Vec<u8>> { r.iter().map(|r| r.bytes.clone()).collect() };
        assert_eq!(
            bytes(&got),
            bytes(&want),
            "{args:?}: {got:?} against {want:?}"
        );
    }
    // What was refused is not held upstream; what was allowed works.
    drop(straight);
    wait_for_hub(&proxy, (2, 1, 0)).await;
    let mut publisher = RawConn::open(&proxy.endpoint()).await;
    publisher.call(&["PUBLISH", "allowed.2", "hello"]).await;
    assert_eq!(
        through.read().await.value,
        Value::Array(vec![bulk("message"), bulk("allowed.2"), bulk("hello")])
    );
    assert_eq!(
        through.read().await.value,
        Value::Array(vec![
            bulk("pmessage"),
            bulk("allowed*"),
            bulk("allowed.2"),
            bulk("hello")
        ])
    );
}
