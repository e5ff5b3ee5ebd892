//! One client session end to end, in process: the client speaks RESP over a
//! `tokio::io::duplex` pair to [`super::run`], and a memory backend is the
//! only store (the session's fake, issue 8). The store is read raw to prove
//! what reaches it is sealed. Expected replies are redis-server 7.0's, byte
//! for byte, except where sealcache answers `-ERR sealcache: …`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use redis_protocol::{resp2, resp3};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{Context, Peer, Shutdown};
use crate::backend::memory::{MemoryBackend, MemoryConfig};
use crate::backend::router::{Route, Router};
use crate::config::{
    AdminConfig, AuthConfig, BackendConfig, BackendSettings, Config, Credential, DecryptFailure,
    EncryptionConfig, Limits, ListenConfig, LogFormat, LoggingConfig, MemoryBackendConfig,
    OutputBufferLimit, Profile, RouteConfig, ServerTlsConfig, TlsVersion, User, defaults,
};
use crate::crypto::Sealer;
use crate::keys::{KeyRing, MasterKey};
use crate::protocol::{Frame, wire};
use crate::values::ValueCrypt;

const PASSWORD: &str = "a session test password";
const BACKEND: &str = "scratch";
/// How long one reply may take before the test fails.
const REPLY_DEADLINE: Duration = Duration::from_secs(5);
/// Small, so an oversized frame is cheap to announce.
const MAX_BULK_LEN: usize = 1024 * 1024;

// ---------------------------------------------------------------- harness

/// A proxy with one memory backend on the default route, and no listener:
/// each [`Proxy::connect`] runs a session over an in-memory pipe.
struct Proxy {
    ctx: Arc<Context>,
    memory: Arc<MemoryBackend>,
    stop: Shutdown,
}

fn config(on_decrypt_failure: DecryptFailure) -> Config {
    let unbounded = OutputBufferLimit {
        hard_bytes: 0,
        soft_bytes: 0,
        soft_time: Duration::ZERO,
    };
    let memory = MemoryBackendConfig {
        max_memory: 64 << 20,
        databases: defaults::MEMORY_DATABASES,
        command_timeout: REPLY_DEADLINE,
    };
    Config {
        profile: Profile::Development,
        listen: ListenConfig {
            tcp: None,
            unix: None,
            unix_mode: defaults::MAX_UNIX_MODE,
        },
        tls: ServerTlsConfig {
            cert_file: "unused.crt".into(),
            key_file: "unused.key".into(),
            client_ca_file: None,
            min_version: TlsVersion::Tls12,
            handshake_timeout: REPLY_DEADLINE,
        },
        auth: AuthConfig {
            users: vec![User {
                name: crate::auth::DEFAULT_USER.into(),
                credential: Credential::Password(SecretString::from(PASSWORD)),
            }],
            // Wrong passwords are tested; their throttle is not.
            failure_delay: Duration::ZERO,
            max_failure_delay: Duration::ZERO,
        },
        limits: Limits {
            max_clients: 64,
            max_bulk_len: MAX_BULK_LEN,
            max_multibulk_len: defaults::MAX_MULTIBULK_LEN,
            idle_timeout: Duration::ZERO,
            auth_timeout: Duration::from_secs(60),
            worker_threads: 1,
            output_buffer: unbounded,
            max_dedicated_per_client: defaults::MAX_DEDICATED_PER_CLIENT,
            max_transaction_bytes: defaults::MAX_TRANSACTION_BYTES,
            max_pinned_per_user: 0,
            max_blocking_per_user: 0,
            pubsub_output_buffer: unbounded,
            shutdown_timeout: REPLY_DEADLINE,
            rate_limit: None,
        },
        backends: vec![BackendConfig {
            name: BACKEND.into(),
            settings: BackendSettings::Memory(memory),
        }],
        routes: vec![RouteConfig {
            prefix: String::new(),
            backend: 0,
            fallback: None,
        }],
        encryption: EncryptionConfig {
            master_key_file: None,
            namespace: "session-tests".into(),
            on_decrypt_failure,
        },
        logging: LoggingConfig {
            format: LogFormat::Text,
            level: "info".into(),
        },
        admin: AdminConfig {
            listen: None,
            allow_non_loopback: false,
        },
        allowed_admin_commands: Vec::new(),
    }
}

impl Proxy {
    /// The default `on_decrypt_failure: miss`.
    fn start() -> Proxy {
        Proxy::with(DecryptFailure::Miss)
    }

    fn with(on_decrypt_failure: DecryptFailure) -> Proxy {
        Proxy::from_config(config(on_decrypt_failure))
    }

    /// The default configuration with `tweak` applied.
    fn tweaked(tweak: impl FnOnce(&mut Config)) -> Proxy {
        let mut config = config(DecryptFailure::Miss);
        tweak(&mut config);
        Proxy::from_config(config)
    }

    fn from_config(config: Config) -> Proxy {
        let BackendSettings::Memory(settings) = config.backends[0].settings else {
            unreachable!("one memory backend");
        };
        let memory = MemoryBackend::start(
            BACKEND,
            MemoryConfig {
                max_memory: settings.max_memory,
                databases: settings.databases,
            },
            settings.command_timeout,
        );
        let router = Router::new(vec![Route {
            prefix: Bytes::new(),
            backend: 0,
        }])
        .expect("one default route");
        let master = MasterKey::from_bytes(&[7; MasterKey::LEN]);
        let sealer = Sealer::new(&KeyRing::from_master(&master));
        let ctx = Arc::new(Context::new(config, sealer, vec![memory.clone()], router));
        Proxy {
            ctx,
            memory,
            stop: Shutdown::new(),
        }
    }

    /// A new client connection, not authenticated.
    fn connect(&self) -> Client {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let peer = Peer {
            addr: Some(SocketAddr::from(([127, 0, 0, 1], 40_000))),
            local: "duplex".into(),
        };
        tokio::spawn(super::run(
            server,
            self.ctx.clone(),
            peer,
            self.stop.clone(),
        ));
        Client {
            io: client,
            buf: BytesMut::new(),
        }
    }

    /// A new client connection, authenticated as `default`.
    async fn login(&self) -> Client {
        let mut client = self.connect();
        client.is(&["AUTH", PASSWORD], &["+OK"]).await;
        client
    }

    /// Runs `line` on the store itself, past the session: what is stored.
    async fn raw(&self, line: &str) -> Frame {
        let args: Vec<Bytes> = line
            .split_whitespace()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        self.run(&args).await
    }

    /// The bytes the store holds for string `key`.
    async fn stored(&self, key: &str) -> Bytes {
        match self.raw(&format!("GET {key}")).await {
            Frame::BlobString { data, .. } => data,
            other => panic!("{key} holds no string in the store: {other:?}"),
        }
    }

    /// Runs `args` on the store itself (binary arguments).
    async fn run(&self, args: &[Bytes]) -> Frame {
        self.memory.store().execute(0, args).await
    }

    fn values(&self) -> &ValueCrypt {
        &self.ctx.values
    }
}

/// A raw RESP client: requests are written as bytes, replies read one frame
/// at a time (with redis-protocol's decoders) and returned exactly as they
/// came over the wire.
struct Client {
    io: DuplexStream,
    buf: BytesMut,
}

/// `args` as a RESP array of bulk strings.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = BytesMut::new();
    wire::put_length(&mut out, b'*', args.len());
    for arg in args {
        wire::put_bulk(&mut out, arg);
    }
    out.to_vec()
}

/// The first whole reply in `buf`, taken out of it. RESP2's decoder reads
/// what only RESP2 has (`$-1`, `*-1`) and refuses RESP3's types, which the
/// RESP3 decoder then reads.
fn decode(buf: &mut BytesMut) -> Option<Bytes> {
    match resp2::decode::decode_bytes_mut(buf) {
        Ok(decoded) => decoded.map(|(_, _, raw)| raw),
        Err(_) => resp3::decode::complete::decode_bytes_mut(buf)
            .expect("the session writes valid RESP")
            .map(|(_, _, raw)| raw),
    }
}

/// RESP lines, each ended by CRLF: `crlf(&["$1", "v"])` is `"$1\r\nv\r\n"`.
fn crlf(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

impl Client {
    async fn send_raw(&mut self, bytes: &[u8]) {
        self.io
            .write_all(bytes)
            .await
            .expect("the session reads its requests");
    }

    async fn send(&mut self, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_raw(&resp(&args)).await;
    }

    /// The next whole reply, or `None` once the session closed the connection.
    async fn next(&mut self) -> Option<String> {
        let read = async {
            loop {
                if let Some(raw) = decode(&mut self.buf) {
                    return Some(String::from_utf8_lossy(&raw).into_owned());
                }
                let n = self.io.read_buf(&mut self.buf).await.expect("read");
                if n == 0 {
                    assert!(
                        self.buf.is_empty(),
                        "a partial reply before the end: {:?}",
                        self.buf
                    );
                    return None;
                }
            }
        };
        tokio::time::timeout(REPLY_DEADLINE, read)
            .await
            .expect("no reply within the deadline")
    }

    async fn reply(&mut self) -> String {
        self.next()
            .await
            .expect("a reply, not the end of the connection")
    }

    /// Sends one command and returns its reply.
    async fn call(&mut self, args: &[&str]) -> String {
        self.send(args).await;
        self.reply().await
    }

    /// Sends a command written as one line (space-separated arguments).
    async fn cmd(&mut self, line: &str) -> String {
        let args: Vec<&str> = line.split(' ').collect();
        self.call(&args).await
    }

    /// Asserts the reply to `args` is exactly these RESP lines.
    async fn is(&mut self, args: &[&str], lines: &[&str]) {
        assert_eq!(self.call(args).await, crlf(lines), "{args:?}");
    }

    /// Like [`Client::is`] for a command written as one line.
    async fn line_is(&mut self, line: &str, lines: &[&str]) {
        assert_eq!(self.cmd(line).await, crlf(lines), "{line}");
    }

    /// Switches to RESP3 (already authenticated); the HELLO map is checked elsewhere.
    async fn resp3(&mut self) {
        let reply = self.cmd("HELLO 3").await;
        assert!(reply.starts_with("%7\r\n"), "{reply:?}");
    }

    /// Asserts the session closes the connection with nothing more to say.
    async fn closes(&mut self) {
        assert_eq!(self.next().await, None, "the connection stays open");
    }
}

/// Polls `check` until it holds or the deadline passes (background work).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + REPLY_DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn blob(frame: &Frame) -> Bytes {
    match frame {
        Frame::BlobString { data, .. } => data.clone(),
        other => panic!("not a bulk string: {other:?}"),
    }
}

fn items(frame: Frame) -> Vec<Frame> {
    match frame {
        Frame::Array { data, .. } => data,
        Frame::Set { data, .. } => data.into_iter().collect(),
        Frame::Push { data, .. } => data,
        other => panic!("not an array: {other:?}"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

const NOAUTH: &str = "-NOAUTH Authentication required.";
const WRONGPASS: &str = "-WRONGPASS invalid username-password pair or user is disabled.";
const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INTEGER: &str = "-ERR value is not an integer or out of range";

// ------------------------------------------------------------------ auth

#[tokio::test]
async fn commands_before_auth_get_noauth_and_reach_no_store() {
    let proxy = Proxy::start();
    let mut c = proxy.connect();
    c.line_is("SET k v", &[NOAUTH]).await;
    c.line_is("GET k", &[NOAUTH]).await;
    c.line_is("INCR n", &[NOAUTH]).await;
    // As redis-server 7.0 with a password: PING is no exception.
    c.line_is("PING", &[NOAUTH]).await;
    assert_eq!(proxy.raw("DBSIZE").await, crate::protocol::reply::int(0));
    c.is(&["AUTH", PASSWORD], &["+OK"]).await;
    c.line_is("GET k", &["$-1"]).await;
}

#[tokio::test]
async fn a_wrong_password_is_wrongpass_and_the_connection_stays_usable() {
    let proxy = Proxy::start();
    let mut c = proxy.connect();
    c.line_is("AUTH wrong", &[WRONGPASS]).await;
    c.line_is("AUTH default wrong", &[WRONGPASS]).await;
    c.is(&["AUTH", "nobody", PASSWORD], &[WRONGPASS]).await;
    c.line_is("GET k", &[NOAUTH]).await;
    c.is(&["AUTH", "default", PASSWORD], &["+OK"]).await;
    c.line_is("GET k", &["$-1"]).await;
    let failures = proxy
        .ctx
        .stats
        .auth_failures
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(failures, 3);
}

#[tokio::test]
async fn hello_without_credentials_before_auth_is_redis_noauth() {
    let proxy = Proxy::start();
    let mut c = proxy.connect();
    // redis-server 7.0.15's wording, word for word.
    c.line_is(
        "HELLO 3",
        &["-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"],
    )
    .await;
    // Nothing changed: still RESP2 and unauthenticated.
    c.line_is("GET k", &[NOAUTH]).await;
}

#[tokio::test]
async fn hello_3_with_auth_authenticates_and_speaks_resp3() {
    let proxy = Proxy::start();
    let mut c = proxy.connect();
    c.is(
        &["HELLO", "3", "AUTH", "default", PASSWORD],
        &[
            "%7",
            "$6",
            "server",
            "$5",
            "redis",
            "$7",
            "version",
            "$6",
            "7.0.15",
            "$5",
            "proto",
            ":3",
            "$2",
            "id",
            ":1",
            "$4",
            "mode",
            "$10",
            "standalone",
            "$4",
            "role",
            "$6",
            "master",
            "$7",
            "modules",
            "*0",
        ],
    )
    .await;
    c.line_is("GET missing", &["_"]).await;
    c.line_is("SET k v", &["+OK"]).await;
    c.line_is("MGET k missing", &["*2", "$1", "v", "_"]).await;
    // HELLO 2 goes back: the map is a flat array and nulls are RESP2's.
    let hello = c.cmd("HELLO 2").await;
    assert!(hello.starts_with("*14\r\n$6\r\nserver\r\n"), "{hello:?}");
    c.line_is("MGET k missing", &["*2", "$1", "v", "$-1"]).await;
}

#[tokio::test]
async fn hello_with_a_wrong_password_changes_nothing() {
    let proxy = Proxy::start();
    let mut c = proxy.connect();
    c.line_is("HELLO 3 AUTH default nope SETNAME app", &[WRONGPASS])
        .await;
    // Still RESP2 (a RESP3 client would get `_`), still unauthenticated.
    c.line_is("GET k", &[NOAUTH]).await;
    c.is(&["AUTH", PASSWORD], &["+OK"]).await;
    c.line_is("GET k", &["$-1"]).await;
    c.line_is("CLIENT GETNAME", &["$-1"]).await;
}

// --------------------------------------------------------------- sealing

#[tokio::test]
async fn set_stores_an_envelope_bound_to_its_key_never_the_plaintext() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    let plaintext = "a secret value of some length";
    c.is(&["SET", "k", plaintext], &["+OK"]).await;
    let stored = proxy.stored("k").await;
    assert_ne!(stored.as_ref(), plaintext.as_bytes());
    assert!(
        !contains(&stored, plaintext.as_bytes()),
        "plaintext in {stored:?}"
    );
    assert!(stored.len() > plaintext.len(), "no room for nonce and tag");
    assert_eq!(
        proxy.values().open_value(b"k", &stored).unwrap(),
        plaintext.as_bytes()
    );
    // Bound to the key: the same envelope does not open as another key's.
    assert!(proxy.values().open_value(b"other", &stored).is_err());
    // The same value sealed twice is two different envelopes (random nonces).
    c.is(&["SET", "k2", plaintext], &["+OK"]).await;
    assert_ne!(proxy.stored("k2").await, stored);
}

#[tokio::test]
async fn hash_list_set_and_sorted_set_values_are_sealed_in_the_store() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("HSET h field hashvalue", &[":1"]).await;
    c.line_is("RPUSH l listvalue", &[":1"]).await;
    c.line_is("SADD s setmember", &[":1"]).await;
    c.line_is("ZADD z 1 zsetmember", &[":1"]).await;
    let values = proxy.values();

    assert_eq!(
        items(proxy.raw("HKEYS h").await),
        [crate::protocol::reply::bulk("field")],
        "field names stay plain"
    );
    let envelope = blob(&proxy.raw("HGET h field").await);
    assert!(!contains(&envelope, b"hashvalue"));
    assert_eq!(
        values.open_hash_value(b"h", b"field", &envelope).unwrap(),
        b"hashvalue"
    );

    let list = items(proxy.raw("LRANGE l 0 -1").await);
    let envelope = blob(&list[0]);
    assert!(!contains(&envelope, b"listvalue"));
    assert_eq!(values.open_list_element(&envelope).unwrap(), b"listvalue");

    let set = items(proxy.raw("SMEMBERS s").await);
    let envelope = blob(&set[0]);
    assert!(!contains(&envelope, b"setmember"));
    assert_eq!(values.open_member(&envelope).unwrap(), b"setmember");

    let zset = items(proxy.raw("ZRANGE z 0 -1").await);
    let envelope = blob(&zset[0]);
    assert!(!contains(&envelope, b"zsetmember"));
    assert_eq!(values.open_member(&envelope).unwrap(), b"zsetmember");
    // Members are deterministic, so equality works in the store: SISMEMBER.
    c.line_is("SISMEMBER s setmember", &[":1"]).await;
    c.line_is("ZSCORE z zsetmember", &["$1", "1"]).await;
}

// ----------------------------------------------- replies opened, RESP2/3

/// Reads of sealed values with their replies in RESP2 and in RESP3, as
/// redis-server gives them.
const READS: &[(&str, &[&str], &[&str])] = &[
    ("GET s", &["$5", "hello"], &["$5", "hello"]),
    ("GET missing", &["$-1"], &["_"]),
    (
        "MGET s missing",
        &["*2", "$5", "hello", "$-1"],
        &["*2", "$5", "hello", "_"],
    ),
    (
        "HGETALL h",
        &["*2", "$2", "f1", "$2", "v1"],
        &["%1", "$2", "f1", "$2", "v1"],
    ),
    ("HGETALL nokey", &["*0"], &["%0"]),
    ("HGET h f1", &["$2", "v1"], &["$2", "v1"]),
    (
        "LRANGE l 0 -1",
        &["*3", "$1", "a", "$1", "b", "$1", "c"],
        &["*3", "$1", "a", "$1", "b", "$1", "c"],
    ),
    ("SMEMBERS st", &["*1", "$1", "x"], &["~1", "$1", "x"]),
    (
        "ZRANGE z 0 -1 WITHSCORES",
        &["*4", "$2", "m1", "$3", "1.5", "$2", "m2", "$1", "2"],
        &["*2", "*2", "$2", "m1", ",1.5", "*2", "$2", "m2", ",2"],
    ),
    ("ZRANGE z 0 0", &["*1", "$2", "m1"], &["*1", "$2", "m1"]),
];

/// Writes the data [`READS`] reads, then checks each reply in one protocol.
async fn check_reads(resp3: bool) {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("SET s hello", &["+OK"]).await;
    // One field: the memory store gives hash order, not Redis's insertion
    // order (`backend/memory/DIFFERENCES.md`).
    c.line_is("HSET h f1 v1", &[":1"]).await;
    c.line_is("RPUSH l a b c", &[":3"]).await;
    c.line_is("SADD st x", &[":1"]).await;
    c.line_is("ZADD z 1.5 m1 2 m2", &[":2"]).await;
    if resp3 {
        c.resp3().await;
    }
    for (line, resp2_reply, resp3_reply) in READS {
        c.line_is(line, if resp3 { resp3_reply } else { resp2_reply })
            .await;
    }
}

#[tokio::test]
async fn reads_open_values_in_resp2() {
    check_reads(false).await;
}

#[tokio::test]
async fn reads_open_values_in_resp3() {
    check_reads(true).await;
}

// ---------------------------------------------------- emulated commands

#[tokio::test]
async fn the_incr_family_computes_on_sealed_values() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("INCR n", &[":1"]).await;
    c.line_is("INCRBY n 41", &[":42"]).await;
    c.line_is("DECR n", &[":41"]).await;
    c.line_is("DECRBY n 1", &[":40"]).await;
    c.line_is("GET n", &["$2", "40"]).await;
    // The result is stored sealed too.
    let stored = proxy.stored("n").await;
    assert_ne!(stored.as_ref(), b"40");
    assert_eq!(proxy.values().open_value(b"n", &stored).unwrap(), b"40");
    c.line_is("INCRBYFLOAT f 1.5", &["$3", "1.5"]).await;
    c.line_is("INCRBYFLOAT f 0.25", &["$4", "1.75"]).await;
    c.line_is("INCRBYFLOAT n 0.5", &["$4", "40.5"]).await;
    c.resp3().await;
    // INCRBYFLOAT answers a bulk string in RESP3 too.
    c.line_is("INCRBYFLOAT f 1", &["$4", "2.75"]).await;
}

#[tokio::test]
async fn append_setrange_getrange_and_strlen_work_on_the_plaintext() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("APPEND s Hello", &[":5"]).await;
    c.line_is("APPEND s World", &[":10"]).await;
    c.line_is("STRLEN s", &[":10"]).await;
    c.line_is("SETRANGE s 5 _world", &[":11"]).await;
    c.line_is("GET s", &["$11", "Hello_world"]).await;
    c.line_is("GETRANGE s 0 4", &["$5", "Hello"]).await;
    c.line_is("GETRANGE s -5 -1", &["$5", "world"]).await;
    c.line_is("GETRANGE missing 0 -1", &["$0", ""]).await;
    c.line_is("STRLEN missing", &[":0"]).await;
    // SETRANGE past the end pads with zero bytes, as Redis does.
    c.line_is("SETRANGE p 2 x", &[":3"]).await;
    c.line_is("GET p", &["$3", "\0\0x"]).await;
    // Lengths are the plaintext's, not the envelope's.
    assert!(proxy.stored("s").await.len() > 11);
}

#[tokio::test]
async fn hincrby_computes_on_a_sealed_hash_value() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("HINCRBY h f 5", &[":5"]).await;
    c.line_is("HINCRBY h f -7", &[":-2"]).await;
    c.line_is("HSET h g text", &[":1"]).await;
    c.line_is("HGET h f", &["$2", "-2"]).await;
    let envelope = blob(&proxy.raw("HGET h f").await);
    assert_eq!(
        proxy
            .values()
            .open_hash_value(b"h", b"f", &envelope)
            .unwrap(),
        b"-2"
    );
}

#[tokio::test]
async fn rename_and_copy_reseal_the_value_for_its_new_key() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("SET a value", &["+OK"]).await;
    c.line_is("RENAME a b", &["+OK"]).await;
    c.line_is("GET a", &["$-1"]).await;
    c.line_is("GET b", &["$5", "value"]).await;
    let renamed = proxy.stored("b").await;
    assert_eq!(proxy.values().open_value(b"b", &renamed).unwrap(), b"value");
    assert!(proxy.values().open_value(b"a", &renamed).is_err());

    c.line_is("COPY b c", &[":1"]).await;
    c.line_is("GET c", &["$5", "value"]).await;
    let copied = proxy.stored("c").await;
    assert_eq!(proxy.values().open_value(b"c", &copied).unwrap(), b"value");
    c.line_is("SET d other", &["+OK"]).await;
    c.line_is("COPY b d", &[":0"]).await;
    c.line_is("GET d", &["$5", "other"]).await;
    c.line_is("COPY b d REPLACE", &[":1"]).await;
    c.line_is("GET d", &["$5", "value"]).await;
    c.line_is("HSET hh f v", &[":1"]).await;
    c.line_is("RENAME hh hh2", &["+OK"]).await;
    c.line_is("HGET hh2 f", &["$1", "v"]).await;
    c.line_is("RENAME nokey x", &["-ERR no such key"]).await;
    c.line_is("COPY nokey x", &[":0"]).await;
}

#[tokio::test]
async fn emulated_command_errors_are_worded_as_redis() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("SET n abc", &["+OK"]).await;
    c.line_is("HSET h f x", &[":1"]).await;
    c.line_is("INCR n", &[NOT_INTEGER]).await;
    c.line_is("INCRBY n x", &[NOT_INTEGER]).await;
    c.line_is("INCRBYFLOAT n 1", &["-ERR value is not a valid float"])
        .await;
    c.line_is("HINCRBY h f 1", &["-ERR hash value is not an integer"])
        .await;
    c.line_is("INCR h", &[WRONGTYPE]).await;
    c.line_is("APPEND h x", &[WRONGTYPE]).await;
    c.line_is("STRLEN h", &[WRONGTYPE]).await;
    c.line_is("GETRANGE h 0 1", &[WRONGTYPE]).await;
    c.line_is("HINCRBY n f 1", &[WRONGTYPE]).await;
    c.line_is("SETRANGE n -1 x", &["-ERR offset is out of range"])
        .await;
    c.line_is("GETRANGE n a b", &[NOT_INTEGER]).await;
    c.line_is("SET big 9223372036854775807", &["+OK"]).await;
    c.line_is("INCR big", &["-ERR increment or decrement would overflow"])
        .await;
    c.line_is(
        "INCR",
        &["-ERR wrong number of arguments for 'incr' command"],
    )
    .await;
    // A failed emulated command changed nothing.
    c.line_is("GET n", &["$3", "abc"]).await;
    c.line_is("GET big", &["$19", "9223372036854775807"]).await;
}

// ------------------------------------------------------------ pipelining

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    let mut pipeline = Vec::new();
    let mut expected = String::new();
    for i in 0..100 {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        pipeline.extend(resp(&[b"SET", key.as_bytes(), value.as_bytes()]));
        expected += &crlf(&["+OK"]);
        // Emulated commands run elsewhere than the lane: they must not overtake.
        pipeline.extend(resp(&[b"APPEND", key.as_bytes(), b"!"]));
        expected += &crlf(&[&format!(":{}", value.len() + 1)]);
        pipeline.extend(resp(&[b"GET", key.as_bytes()]));
        expected += &crlf(&[&format!("${}", value.len() + 1), &format!("{value}!")]);
        pipeline.extend(resp(&[b"INCR", b"counter"]));
        expected += &crlf(&[&format!(":{}", i + 1)]);
    }
    c.send_raw(&pipeline).await;
    let mut got = String::new();
    for _ in 0..400 {
        got += &c.reply().await;
    }
    assert_eq!(got, expected);
}

// ----------------------------------------------------- MULTI / EXEC

#[tokio::test]
async fn multi_exec_runs_emulated_commands_in_queue_order() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("MULTI", &["+OK"]).await;
    c.line_is("SET a 1", &["+QUEUED"]).await;
    c.line_is("INCR a", &["+QUEUED"]).await;
    c.line_is("APPEND a 0", &["+QUEUED"]).await;
    c.line_is("GET a", &["+QUEUED"]).await;
    c.line_is("INCRBYFLOAT a 0.5", &["+QUEUED"]).await;
    c.line_is("EXEC", &["*5", "+OK", ":2", ":2", "$2", "20", "$4", "20.5"])
        .await;
    c.line_is("GET a", &["$4", "20.5"]).await;
    let stored = proxy.stored("a").await;
    assert_eq!(proxy.values().open_value(b"a", &stored).unwrap(), b"20.5");
}

/// sealcache holds a transaction's queue until EXEC, so its size is bounded:
/// the command that would pass the limit is refused and EXEC aborts.
#[tokio::test]
async fn a_transaction_queue_is_bounded_by_max_transaction_bytes() {
    let proxy = Proxy::tweaked(|c| c.limits.max_transaction_bytes = 1000);
    let mut c = proxy.login().await;
    // 302 bytes as counted (each argument and 16 for its header): three fit.
    let value = "v".repeat(250);
    c.line_is("MULTI", &["+OK"]).await;
    for _ in 0..3 {
        c.is(&["SET", "k", &value], &["+QUEUED"]).await;
    }
    c.is(
        &["SET", "k", &value],
        &["-ERR sealcache: this transaction's queued commands would hold more than 1000 bytes (limits.max_transaction_bytes), which sealcache keeps until EXEC. Run it as several smaller transactions, or raise the limit"],
    )
    .await;
    c.line_is("INCR n", &["+QUEUED"]).await;
    c.line_is(
        "EXEC",
        &["-EXECABORT Transaction discarded because of previous errors."],
    )
    .await;
    c.line_is("EXISTS k n", &[":0"]).await;
    // The next transaction starts from an empty queue.
    c.line_is("MULTI", &["+OK"]).await;
    c.is(&["SET", "k", &value], &["+QUEUED"]).await;
    c.line_is("EXEC", &["*1", "+OK"]).await;
}

#[tokio::test]
async fn discard_drops_the_queued_commands() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("MULTI", &["+OK"]).await;
    c.line_is("SET x 1", &["+QUEUED"]).await;
    c.line_is("INCR y", &["+QUEUED"]).await;
    c.line_is("DISCARD", &["+OK"]).await;
    c.line_is("GET x", &["$-1"]).await;
    c.line_is("GET y", &["$-1"]).await;
    c.line_is("EXEC", &["-ERR EXEC without MULTI"]).await;
}

#[tokio::test]
async fn exec_and_discard_without_multi_and_nested_multi_are_errors() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("EXEC", &["-ERR EXEC without MULTI"]).await;
    c.line_is("DISCARD", &["-ERR DISCARD without MULTI"]).await;
    c.line_is("MULTI", &["+OK"]).await;
    c.line_is("MULTI", &["-ERR MULTI calls can not be nested"])
        .await;
    c.line_is("SET z 1", &["+QUEUED"]).await;
    // The nested MULTI did not abort the transaction (as in Redis).
    c.line_is("EXEC", &["*1", "+OK"]).await;
    c.line_is("MULTI", &["+OK"]).await;
    c.line_is("EXEC", &["*0"]).await;
}

#[tokio::test]
async fn a_command_refused_while_queueing_aborts_exec() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("MULTI", &["+OK"]).await;
    c.line_is("SET k 1", &["+QUEUED"]).await;
    c.line_is(
        "NOSUCHCMD x",
        &["-ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' "],
    )
    .await;
    c.line_is(
        "EXEC",
        &["-EXECABORT Transaction discarded because of previous errors."],
    )
    .await;
    c.line_is("GET k", &["$-1"]).await;
}

// ------------------------------------------------------------- refusals

#[tokio::test]
async fn a_command_the_table_rejects_gets_a_sealcache_error() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("SET k v", &["+OK"]).await;
    c.line_is(
        "BITCOUNT k",
        &["-ERR sealcache: BITCOUNT is not available on encrypted data: bit operations would act on the ciphertext, not on your value"],
    )
    .await;
    c.line_is(
        "EVAL return 0",
        &["-ERR sealcache: EVAL is not available on encrypted data: scripts run inside Redis, where values are ciphertext"],
    )
    .await;
    c.line_is(
        "FLUSHALL",
        &["-ERR sealcache: FLUSHALL is disabled because it reconfigures or wipes the upstream; add \"FLUSHALL\" to allowed_admin_commands to allow it"],
    )
    .await;
    // Refused, not run: the key is still there, and the connection goes on.
    c.line_is("GET k", &["$1", "v"]).await;
}

#[tokio::test]
async fn a_command_the_memory_backend_cannot_serve_names_the_backend() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    // The memory store has no geo commands…
    c.line_is(
        "GEOADD g 13.36 38.11 palermo",
        &["-ERR sealcache: GEOADD is not supported by the memory backend 'scratch'"],
    )
    .await;
    // …and lacks the scripts capability, the only one it does not declare.
    c.line_is(
        "SCRIPT EXISTS 0123",
        &["-ERR sealcache: SCRIPT EXISTS is not supported by the memory backend 'scratch'"],
    )
    .await;
    assert_eq!(proxy.raw("DBSIZE").await, crate::protocol::reply::int(0));
    c.line_is("PING", &["+PONG"]).await;
}

// ------------------------------------------------------ error sanitising

#[tokio::test]
async fn an_unknown_command_with_cr_lf_gets_exactly_one_error_line() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.send(&["FOO\r\nBAR", "x\ny"]).await;
    c.send(&["PING"]).await;
    assert_eq!(
        c.reply().await,
        crlf(&["-ERR unknown command 'FOO  BAR', with args beginning with: 'x y' "])
    );
    // The very next reply is PING's: nothing of the name leaked onto a line of its own.
    assert_eq!(c.reply().await, crlf(&["+PONG"]));
}

// --------------------------------------------------------- protocol errors

#[tokio::test]
async fn a_malformed_bulk_length_closes_with_a_protocol_error() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.send_raw(b"*1\r\n$abc\r\n").await;
    assert_eq!(
        c.reply().await,
        crlf(&["-ERR Protocol error: invalid bulk length"])
    );
    c.closes().await;
}

#[tokio::test]
async fn a_bulk_over_max_bulk_len_closes_with_a_protocol_error() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("SET k v", &["+OK"]).await;
    c.send_raw(format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", MAX_BULK_LEN + 1).as_bytes())
        .await;
    assert_eq!(
        c.reply().await,
        crlf(&["-ERR Protocol error: invalid bulk length"])
    );
    c.closes().await;
    assert_eq!(
        proxy
            .values()
            .open_value(b"k", &proxy.stored("k").await)
            .unwrap(),
        b"v"
    );
}

#[tokio::test]
async fn unauthenticated_clients_get_redis_tight_frame_caps() {
    let proxy = Proxy::start();
    let mut c = proxy.connect();
    c.send_raw(b"*11\r\n").await;
    assert_eq!(
        c.reply().await,
        crlf(&["-ERR Protocol error: unauthenticated multibulk length"])
    );
    c.closes().await;

    let mut c = proxy.connect();
    c.send_raw(b"*2\r\n$4\r\nAUTH\r\n$20000\r\n").await;
    assert_eq!(
        c.reply().await,
        crlf(&["-ERR Protocol error: unauthenticated bulk length"])
    );
    c.closes().await;

    // After AUTH the configured limits apply: eleven arguments are fine.
    let mut c = proxy.login().await;
    c.line_is("MSET a 1 b 2 c 3 d 4 e 5", &["+OK"]).await;
    c.line_is("DEL a b c d e f g h i j", &[":5"]).await;
}

// -------------------------------------------------------------- Pub/Sub

#[tokio::test]
async fn a_message_published_on_one_session_reaches_a_subscriber_on_another() {
    let proxy = Proxy::start();
    let mut sub = proxy.login().await;
    let mut publisher = proxy.login().await;
    // A subscriber on the store itself sees what crosses the backend.
    let mut eavesdropper = proxy.memory.store().subscriber();
    eavesdropper.subscribe(&[Bytes::from_static(b"news")]);
    sub.line_is(
        "SUBSCRIBE news",
        &["*3", "$9", "subscribe", "$4", "news", ":1"],
    )
    .await;
    publisher.line_is("PUBLISH news hello", &[":2"]).await;
    assert_eq!(
        sub.reply().await,
        crlf(&["*3", "$7", "message", "$4", "news", "$5", "hello"])
    );
    let crossed = tokio::time::timeout(REPLY_DEADLINE, eavesdropper.recv())
        .await
        .expect("the store delivers the message")
        .expect("still subscribed");
    let envelope = blob(&items(crossed)[2]);
    assert!(!contains(&envelope, b"hello"), "{envelope:?}");
    assert_eq!(
        proxy.values().open_message(b"news", &envelope).unwrap(),
        b"hello"
    );
    drop(eavesdropper);
    publisher.line_is("PUBLISH other nobody", &[":0"]).await;
    // A RESP2 subscriber may only (un)subscribe, PING, QUIT and RESET.
    sub.line_is(
        "GET k",
        &["-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"],
    )
    .await;
    sub.line_is("PING", &["*2", "$4", "pong", "$0", ""]).await;
    sub.line_is(
        "UNSUBSCRIBE news",
        &["*3", "$11", "unsubscribe", "$4", "news", ":0"],
    )
    .await;
    sub.line_is("GET k", &["$-1"]).await;
}

#[tokio::test]
async fn a_resp3_subscriber_gets_pushes_and_may_run_commands() {
    let proxy = Proxy::start();
    let mut sub = proxy.login().await;
    let mut publisher = proxy.login().await;
    sub.resp3().await;
    sub.line_is(
        "PSUBSCRIBE n*",
        &[">3", "$10", "psubscribe", "$2", "n*", ":1"],
    )
    .await;
    publisher.line_is("PUBLISH news sealed", &[":1"]).await;
    assert_eq!(
        sub.reply().await,
        crlf(&[
            ">4", "$8", "pmessage", "$2", "n*", "$4", "news", "$6", "sealed"
        ])
    );
    sub.line_is("SET k v", &["+OK"]).await;
    sub.line_is("GET k", &["$1", "v"]).await;
}

// ------------------------------------------- QUIT, RESET, CLIENT SETNAME

#[tokio::test]
async fn quit_answers_ok_and_closes() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.send(&["QUIT"]).await;
    c.send(&["SET", "after", "quit"]).await;
    assert_eq!(c.reply().await, crlf(&["+OK"]));
    c.closes().await;
    assert_eq!(
        proxy.raw("EXISTS after").await,
        crate::protocol::reply::int(0)
    );
}

#[tokio::test]
async fn reset_returns_to_an_unauthenticated_resp2_connection() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.resp3().await;
    c.line_is("CLIENT SETNAME app", &["+OK"]).await;
    c.line_is("SUBSCRIBE ch", &[">3", "$9", "subscribe", "$2", "ch", ":1"])
        .await;
    c.line_is("RESET", &["+RESET"]).await;
    c.line_is("GET k", &[NOAUTH]).await;
    c.is(&["AUTH", PASSWORD], &["+OK"]).await;
    // RESP2 again, no subscription, no name.
    c.line_is("GET k", &["$-1"]).await;
    c.line_is("CLIENT GETNAME", &["$-1"]).await;
    let info = c.cmd("CLIENT INFO").await;
    assert!(
        info.contains(" sub=0 ") && info.contains(" resp=2 "),
        "{info:?}"
    );
}

#[tokio::test]
async fn reset_and_quit_inside_multi_act_at_once_and_end_the_transaction() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("WATCH w", &["+OK"]).await;
    c.line_is("MULTI", &["+OK"]).await;
    c.line_is("SET k v", &["+QUEUED"]).await;
    c.line_is("INCR n", &["+QUEUED"]).await;
    c.line_is("RESET", &["+RESET"]).await;
    c.is(&["AUTH", PASSWORD], &["+OK"]).await;
    c.line_is("EXEC", &["-ERR EXEC without MULTI"]).await;
    c.line_is("MULTI", &["+OK"]).await;
    c.line_is("SET k v", &["+QUEUED"]).await;
    c.send(&["QUIT"]).await;
    c.send(&["EXEC"]).await;
    assert_eq!(c.reply().await, crlf(&["+OK"]));
    c.closes().await;
    // Neither transaction ran.
    assert_eq!(proxy.raw("DBSIZE").await, crate::protocol::reply::int(0));
}

#[tokio::test]
async fn reset_before_auth_answers_reset_as_redis_does() {
    let proxy = Proxy::start();
    let mut c = proxy.connect();
    c.line_is("RESET", &["+RESET"]).await;
    c.line_is("GET k", &[NOAUTH]).await;
    c.line_is("ECHO x", &[NOAUTH]).await;
}

#[tokio::test]
async fn client_setname_and_getname() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    c.line_is("CLIENT GETNAME", &["$-1"]).await;
    c.line_is("CLIENT SETNAME app1", &["+OK"]).await;
    c.line_is("CLIENT GETNAME", &["$4", "app1"]).await;
    c.is(
        &["CLIENT", "SETNAME", "bad name"],
        &["-ERR Client names cannot contain spaces, newlines or special characters."],
    )
    .await;
    c.line_is("CLIENT GETNAME", &["$4", "app1"]).await;
    let info = c.cmd("CLIENT INFO").await;
    assert!(info.contains(" name=app1 "), "{info:?}");
    // An empty name clears it.
    c.is(&["CLIENT", "SETNAME", ""], &["+OK"]).await;
    c.line_is("CLIENT GETNAME", &["$-1"]).await;
}

// ------------------------------------------------- decrypt failures

/// Stores `value` under `key` through the session, then flips one byte of
/// its envelope in the store (the tag), as a tampered or foreign value.
async fn tampered(proxy: &Proxy, c: &mut Client, key: &str, value: &str) {
    c.is(&["SET", key, value], &["+OK"]).await;
    let mut envelope = proxy.stored(key).await.to_vec();
    *envelope.last_mut().unwrap() ^= 0x01;
    let set = [b"SET".as_slice(), key.as_bytes(), &envelope].map(Bytes::copy_from_slice);
    assert_eq!(proxy.run(&set).await, crate::protocol::reply::ok());
}

#[tokio::test]
async fn a_tampered_value_is_a_miss_by_default() {
    let proxy = Proxy::start();
    let mut c = proxy.login().await;
    tampered(&proxy, &mut c, "k", "original").await;
    c.line_is("SET good fine", &["+OK"]).await;
    c.line_is("GET k", &["$-1"]).await;
    c.line_is("MGET good k", &["*2", "$4", "fine", "$-1"]).await;
    assert_eq!(proxy.values().failure_count(), 2);
    // A miss leaves the stored bytes alone.
    assert_eq!(proxy.raw("EXISTS k").await, crate::protocol::reply::int(1));
    // An emulated command goes on as if the value were absent.
    c.line_is("APPEND k x", &[":1"]).await;
    c.line_is("GET k", &["$1", "x"]).await;
    // In a collection the element is left out.
    c.line_is("RPUSH l a b c", &[":3"]).await;
    let mut element = blob(&proxy.raw("LINDEX l 1").await).to_vec();
    let middle = element.len() / 2;
    element[middle] ^= 0x01;
    let lset = [b"LSET".as_slice(), b"l", b"1", &element].map(Bytes::copy_from_slice);
    assert_eq!(proxy.run(&lset).await, crate::protocol::reply::ok());
    c.line_is("LRANGE l 0 -1", &["*2", "$1", "a", "$1", "c"])
        .await;
}

#[tokio::test]
async fn a_tampered_value_is_an_error_with_on_decrypt_failure_error() {
    let proxy = Proxy::with(DecryptFailure::Error);
    let mut c = proxy.login().await;
    tampered(&proxy, &mut c, "k", "original").await;
    let why = "envelope failed authentication: tampered with, truncated, or moved to another key, field or namespace";
    c.line_is(
        "GET k",
        &[&format!("-ERR sealcache: a value at key 'k' failed to decrypt ({why}); on_decrypt_failure is 'error'")],
    )
    .await;
    // An emulated command on it fails too, rather than computing on garbage.
    c.line_is(
        "APPEND k x",
        &[&format!("-ERR sealcache: the value at key 'k' failed to decrypt ({why}); on_decrypt_failure is 'error'")],
    )
    .await;
    assert_eq!(proxy.raw("EXISTS k").await, crate::protocol::reply::int(1));
}

#[tokio::test]
async fn a_tampered_value_is_removed_with_on_decrypt_failure_delete() {
    let proxy = Proxy::with(DecryptFailure::Delete);
    let mut c = proxy.login().await;
    tampered(&proxy, &mut c, "k", "original").await;
    c.line_is("SET keep me", &["+OK"]).await;
    c.line_is("GET k", &["$-1"]).await;
    eventually("the undecryptable key is deleted", || async {
        proxy.raw("EXISTS k").await == crate::protocol::reply::int(0)
    })
    .await;
    c.line_is("GET keep", &["$2", "me"]).await;
}
