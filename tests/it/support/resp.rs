//! A raw RESP2/RESP3 connection for byte-exact tests: writes commands and
//! reads whole replies, each with its exact bytes and a parsed [`Value`], so
//! a test can compare sealcache's bytes with redis-server's and still look
//! inside them. [`span`] gives each value's byte span inside a reply, for
//! tests that cut replies apart (COMMAND DOCS).
//!
//! ```ignore
//! let mut c = RawConn::open(&proxy.endpoint()).await;     // AUTH, RESP2
//! let reply = c.call(&["SUBSCRIBE", "news"]).await;
//! assert_eq!(reply.value, Value::push(["subscribe", "news"], 1));
//! ```

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Endpoint;
use super::endpoint::RawStream;

/// How long one reply may take (debug builds on two shared cores).
pub const REPLY_WAIT: Duration = Duration::from_secs(30);

/// A parsed reply. Pushes (RESP3 `>`) are kept apart from arrays.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Value>),
    Push(Vec<Value>),
    Map(Vec<(Value, Value)>),
    /// Any other RESP3 type, as its header line.
    Other(String),
}

impl Value {
    pub fn bulk(bytes: impl AsRef<[u8]>) -> Value {
        Value::Bulk(bytes.as_ref().to_vec())
    }

    /// The items of an array or a push.
    #[track_caller]
    pub fn items(&self) -> &[Value] {
        match self {
            Value::Array(items) | Value::Push(items) => items,
            other => panic!("expected an array or a push, got {other:?}"),
        }
    }

    #[track_caller]
    pub fn as_bulk(&self) -> &[u8] {
        match self {
            Value::Bulk(bytes) => bytes,
            other => panic!("expected a bulk string, got {other:?}"),
        }
    }

    #[track_caller]
    pub fn as_error(&self) -> &str {
        match self {
            Value::Error(e) => e,
            other => panic!("expected an error reply, got {other:?}"),
        }
    }

    #[track_caller]
    pub fn as_int(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            other => panic!("expected an integer, got {other:?}"),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Simple(s) => write!(f, "+{s}"),
            Value::Error(e) => write!(f, "-{e}"),
            Value::Int(n) => write!(f, ":{n}"),
            Value::Null => write!(f, "nil"),
            Value::Bulk(b) if b.len() > 64 => write!(
                f,
                "{:?}…({} bytes)",
                String::from_utf8_lossy(&b[..64]),
                b.len()
            ),
            Value::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Value::Array(items) => f.debug_list().entries(items).finish(),
            Value::Push(items) => {
                write!(f, ">")?;
                f.debug_list().entries(items).finish()
            }
            Value::Map(pairs) => f
                .debug_map()
                .entries(pairs.iter().map(|(k, v)| (k, v)))
                .finish(),
            Value::Other(header) => write!(f, "<{header}>"),
        }
    }
}

/// One reply: its exact bytes and what they say.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub value: Value,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.value)
    }
}

/// Parses one reply from the front of `buf`: the value and the bytes it took,
/// `None` when it is incomplete.
pub fn parse(buf: &[u8]) -> Option<(Value, usize)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[1..line_end]).expect("RESP header is text");
    let after = line_end + 2;
    let number = || line.parse::<i64>().expect("RESP length");
    let aggregate = |count: i64, at: usize| -> Option<(Vec<Value>, usize)> {
        let mut items = Vec::new();
        let mut at = at;
        for _ in 0..count {
            let (item, used) = parse(&buf[at..])?;
            items.push(item);
            at += used;
        }
        Some((items, at))
    };
    match buf[0] {
        b'+' => Some((Value::Simple(line.to_owned()), after)),
        b'-' => Some((Value::Error(line.to_owned()), after)),
        b':' => Some((Value::Int(number()), after)),
        b'_' => Some((Value::Null, after)),
        b'$' | b'*' if number() < 0 => Some((Value::Null, after)),
        b'$' | b'=' | b'!' => {
            let end = after + number() as usize;
            (buf.len() >= end + 2).then(|| (Value::Bulk(buf[after..end].to_vec()), end + 2))
        }
        b'*' | b'~' => aggregate(number(), after).map(|(items, at)| (Value::Array(items), at)),
        b'>' => aggregate(number(), after).map(|(items, at)| (Value::Push(items), at)),
        b'%' => aggregate(2 * number(), after).map(|(items, at)| {
            let pairs = items
                .chunks(2)
                .map(|kv| (kv[0].clone(), kv[1].clone()))
                .collect();
            (Value::Map(pairs), at)
        }),
        b',' | b'#' | b'(' => Some((Value::Other(line.to_owned()), after)),
        other => panic!("not a RESP reply: type byte {other:#04x}"),
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A connection that writes commands and reads whole replies.
pub struct RawConn {
    stream: Box<dyn RawStream>,
    buf: Vec<u8>,
}

impl RawConn {
    /// Connects without saying anything.
    pub async fn connect(endpoint: &Endpoint) -> RawConn {
        RawConn {
            stream: endpoint.raw().await,
            buf: Vec::new(),
        }
    }

    /// Connects and authenticates with `AUTH` (RESP2).
    pub async fn open(endpoint: &Endpoint) -> RawConn {
        let mut conn = RawConn::connect(endpoint).await;
        let user = endpoint.username().unwrap_or("default");
        let password = endpoint.password().expect("an endpoint with a password");
        let reply = conn.call(&["AUTH", user, password]).await;
        assert_eq!(reply.value, Value::Simple("OK".into()), "AUTH");
        conn
    }

    /// Connects and authenticates with `HELLO 3 AUTH` (RESP3).
    pub async fn open_resp3(endpoint: &Endpoint) -> RawConn {
        let mut conn = RawConn::connect(endpoint).await;
        let user = endpoint.username().unwrap_or("default");
        let password = endpoint.password().expect("an endpoint with a password");
        let reply = conn.call(&["HELLO", "3", "AUTH", user, password]).await;
        assert!(matches!(reply.value, Value::Map(_)), "HELLO 3: {reply:?}");
        conn
    }

    /// Connects and authenticates, then switches to RESP3 with `HELLO 3`
    /// when `resp3` (two commands, as clients that learn the protocol late do).
    pub async fn open_proto(endpoint: &Endpoint, resp3: bool) -> RawConn {
        let mut conn = RawConn::open(endpoint).await;
        if resp3 {
            let hello = conn.call(&["HELLO", "3"]).await;
            assert!(matches!(hello.value, Value::Map(_)), "HELLO 3: {hello:?}");
        }
        conn
    }

    /// Sends one command and returns the reply's exact bytes.
    pub async fn call_bytes(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.call(args).await.bytes
    }

    /// [`RawConn::call_bytes`] for a line from [`words`].
    pub async fn words(&mut self, line: &[Vec<u8>]) -> Vec<u8> {
        self.call(line).await.bytes
    }

    pub async fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.send_raw(&encode(args)).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write command");
        self.stream.flush().await.expect("flush command");
    }

    /// Sends one command and reads one reply.
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        self.send(args).await;
        self.read().await
    }

    /// The next reply; panics after [`REPLY_WAIT`] or when the connection closes.
    #[track_caller]
    pub fn read(&mut self) -> impl Future<Output = Reply> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            self.try_read(REPLY_WAIT)
                .await
                .unwrap_or_else(|| panic!("no reply within {REPLY_WAIT:?} (read at {caller})"))
        }
    }

    /// The next reply, or `None` if none is complete within `wait`.
    pub async fn try_read(&mut self, wait: Duration) -> Option<Reply> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some((value, used)) = parse(&self.buf) {
                let bytes = self.buf.drain(..used).collect();
                return Some(Reply { bytes, value });
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .ok()?
                .expect("read reply");
            assert!(n > 0, "connection closed while waiting for a reply");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads (and drops) everything until the server closes the connection;
    /// `false` if it is still open after `wait`.
    pub async fn closes_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        let mut chunk = vec![0u8; 256 * 1024];
        self.buf.clear();
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// One RESP2/RESP3 value inside a buffer: its type, where its header ends,
/// where it ends, and its elements (map keys and values alternate).
#[derive(Debug)]
pub struct Node {
    pub kind: u8,
    pub start: usize,
    pub body: usize,
    pub end: usize,
    pub children: Vec<Node>,
}

/// The value at `pos`, or `None` when the buffer holds only part of it.
pub fn span(buf: &[u8], pos: usize) -> Option<Node> {
    let eol = pos + buf.get(pos..)?.windows(2).position(|w| w == b"\r\n")?;
    let kind = buf[pos];
    let head = std::str::from_utf8(&buf[pos + 1..eol]).expect("RESP header");
    let body = eol + 2;
    let mut node = Node {
        kind,
        start: pos,
        body,
        end: body,
        children: Vec::new(),
    };
    match kind {
        b'$' | b'=' | b'!' => {
            let n: i64 = head.parse().expect("bulk length");
            if n >= 0 {
                node.end = body + n as usize + 2;
                if node.end > buf.len() {
                    return None;
                }
            }
        }
        b'*' | b'~' | b'%' | b'>' => {
            let n: i64 = head.parse().expect("aggregate length");
            let count = if kind == b'%' { 2 * n } else { n };
            for _ in 0..count.max(0) {
                let child = span(buf, node.end)?;
                node.end = child.end;
                node.children.push(child);
            }
        }
        _ => {}
    }
    Some(node)
}

pub fn text(buf: &[u8], node: &Node) -> String {
    let raw = match node.kind {
        b'$' => &buf[node.body..node.end - 2],
        _ => &buf[node.start + 1..node.body - 2],
    };
    String::from_utf8_lossy(raw).into_owned()
}

/// A command line: words split on spaces; `''` is an empty argument and
/// `\0` a NUL byte.
pub fn words(line: &str) -> Vec<Vec<u8>> {
    line.split(' ')
        .map(|w| match w {
            "''" => Vec::new(),
            w => w.replace("\\0", "\0").into_bytes(),
        })
        .collect()
}
