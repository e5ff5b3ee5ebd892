//! Raw RESP2/RESP3 for tests that compare replies byte for byte: a
//! connection that sends one command and returns exactly the bytes of one
//! reply (read until the reply is complete, never until a timeout), and a
//! parser giving each value's byte span.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Endpoint;
use super::endpoint::RawStream;

const REPLY_DEADLINE: Duration = Duration::from_secs(10);

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
pub fn parse(buf: &[u8], pos: usize) -> Option<Node> {
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
                let child = parse(buf, node.end)?;
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

pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A connection that sends one command and reads exactly one reply.
pub struct Raw {
    stream: Box<dyn RawStream>,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects and authenticates; `resp3` switches with HELLO 3.
    pub async fn open(endpoint: &Endpoint, resp3: bool) -> Raw {
        let mut raw = Raw {
            stream: endpoint.raw().await,
            buf: Vec::new(),
        };
        let user = endpoint.username().unwrap_or("default").as_bytes().to_vec();
        let password = endpoint.password().expect("a password").as_bytes().to_vec();
        let auth = raw.call(&[b"AUTH", &user, &password]).await;
        assert_eq!(auth, b"+OK\r\n", "AUTH: {}", String::from_utf8_lossy(&auth));
        if resp3 {
            let hello = raw.call(&[b"HELLO", b"3"]).await;
            assert!(
                hello.starts_with(b"%"),
                "HELLO 3: {}",
                String::from_utf8_lossy(&hello)
            );
        }
        raw
    }

    pub async fn send(&mut self, args: &[&[u8]]) {
        self.stream.write_all(&encode(args)).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    /// The next complete reply's bytes.
    pub async fn read(&mut self) -> Vec<u8> {
        loop {
            if let Some(node) = parse(&self.buf, 0) {
                return self.buf.drain(..node.end).collect();
            }
            // On the heap: a 64 KiB array would live in every future that awaits a reply.
            let mut chunk = vec![0u8; 64 * 1024];
            let n = tokio::time::timeout(REPLY_DEADLINE, self.stream.read(&mut chunk))
                .await
                .expect("a reply within the deadline")
                .expect("read");
            assert!(n > 0, "connection closed while waiting for a reply");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(args).await;
        self.read().await
    }

    pub async fn words(&mut self, line: &[Vec<u8>]) -> Vec<u8> {
        let args: Vec<&[u8]> = line.iter().map(|a| a.as_slice()).collect();
        self.call(&args).await
    }
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
