//! Differential testing: the same commands through sealcache and straight to
//! its upstream redis-server, replies compared byte for byte, in RESP2 or
//! RESP3.
//!
//! ```ignore
//! let mut t = Twin::open(&proxy, Proto::Resp3).await;
//! t.words("ZADD z 0 a 0 b").await;          // both sides, replies compared
//! t.run(&[b"SSCAN", b"s", b"0", b"MATCH", b"\xff*"]).await;
//! t.assert_no_mismatch();                    // every difference, at once
//! ```
//!
//! sealcache runs in database 0 and the direct side in database 9 of the same
//! redis-server, so both see the same key names without meeting. Replies are
//! read as exact bytes ([`Reply::bytes`]); a [`Reply`] can also be
//! normalised before comparing, for replies whose order Redis does not
//! define (SMEMBERS, full SSCAN iterations).

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Sealcache;
use super::endpoint::{Endpoint, RawStream};

/// Database the direct side runs in (sealcache uses 0).
pub const DIRECT_DB: &str = "9";
const REPLY_WAIT: Duration = Duration::from_secs(30);

/// The protocol both sides speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Resp2,
    Resp3,
}

/// One reply, parsed just enough to normalise it and to print it, and
/// written back to exactly the bytes it was read from.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    /// The RESP type byte (`+ - : $ * % ~ , # _ ( = ! > |`).
    pub kind: u8,
    /// The header line after the type byte (a simple string, a number, or a length).
    pub line: Vec<u8>,
    /// The payload of a blob (`$ = !`).
    pub blob: Option<Vec<u8>>,
    /// The elements of an aggregate (a map's keys and values alternate).
    pub items: Vec<Reply>,
}

impl Reply {
    /// The exact RESP bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = vec![self.kind];
        out.extend_from_slice(&self.line);
        out.extend_from_slice(b"\r\n");
        if let Some(blob) = &self.blob {
            out.extend_from_slice(blob);
            out.extend_from_slice(b"\r\n");
        }
        for item in &self.items {
            out.extend(item.bytes());
        }
        out
    }

    pub fn is_error(&self) -> bool {
        matches!(self.kind, b'-' | b'!')
    }

    /// The text of a simple string, blob or verbatim string.
    pub fn text(&self) -> Option<&[u8]> {
        match (self.kind, &self.blob) {
            (b'+', _) => Some(&self.line),
            (b'=', Some(b)) => Some(&b[4.min(b.len())..]),
            (_, Some(b)) => Some(b),
            _ => None,
        }
    }

    /// An aggregate with its elements sorted by their bytes (`chunk`
    /// elements kept together: 2 for `[member, score]` flat lists and maps).
    pub fn sorted(mut self, chunk: usize) -> Reply {
        let mut chunks: Vec<Vec<Reply>> = self.items.chunks(chunk).map(<[Reply]>::to_vec).collect();
        chunks.sort_by_key(|c| c.iter().flat_map(Reply::bytes).collect::<Vec<u8>>());
        self.items = chunks.concat();
        self
    }

    /// A reply built by the test (an aggregate of `items`), to compare sets of results.
    pub fn aggregate(kind: u8, items: Vec<Reply>) -> Reply {
        let count = if matches!(kind, b'%' | b'|') {
            items.len() / 2
        } else {
            items.len()
        };
        Reply {
            kind,
            line: count.to_string().into_bytes(),
            blob: None,
            items,
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind as char;
        match (&self.blob, self.items.is_empty()) {
            (Some(blob), _) => write!(f, "{kind}{:?}", String::from_utf8_lossy(blob)),
            (None, false) => {
                write!(f, "{kind}")?;
                f.debug_list().entries(&self.items).finish()
            }
            (None, true) if matches!(self.kind, b'*' | b'%' | b'~' | b'>') => {
                write!(f, "{kind}{}[]", String::from_utf8_lossy(&self.line))
            }
            (None, true) => write!(f, "{kind}{}", String::from_utf8_lossy(&self.line)),
        }
    }
}

/// Parses one reply from the front of `buf`; `None` when it is incomplete.
pub fn parse(buf: &[u8]) -> Option<(Reply, usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    let kind = buf[0];
    let line = buf[1..end].to_vec();
    let mut at = end + 2;
    let number = || -> i64 {
        std::str::from_utf8(&line)
            .ok()
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("RESP length in {:?}", String::from_utf8_lossy(&line)))
    };
    let mut reply = Reply {
        kind,
        line: line.clone(),
        blob: None,
        items: Vec::new(),
    };
    match kind {
        b'+' | b'-' | b':' | b',' | b'#' | b'_' | b'(' => {}
        b'$' | b'=' | b'!' => {
            if number() >= 0 {
                let len = number() as usize;
                if buf.len() < at + len + 2 {
                    return None;
                }
                reply.blob = Some(buf[at..at + len].to_vec());
                at += len + 2;
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let mut count = number().max(0) as usize;
            if matches!(kind, b'%' | b'|') {
                count *= 2;
            }
            for _ in 0..count {
                let (item, used) = parse(&buf[at..])?;
                reply.items.push(item);
                at += used;
            }
        }
        other => panic!("not a RESP reply: type byte {other:#04x}"),
    }
    Some((reply, at))
}

/// A raw connection that sends commands and reads [`Reply`]s.
pub struct Conn {
    stream: Box<dyn RawStream>,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects, authenticates as `endpoint` says and switches to `proto`.
    pub async fn open(endpoint: &Endpoint, proto: Proto) -> Conn {
        let mut conn = Conn {
            stream: endpoint.raw().await,
            buf: Vec::new(),
        };
        let mut auth: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(user) = endpoint.username() {
            auth.push(user.as_bytes());
        }
        if let Some(password) = endpoint.password() {
            auth.push(password.as_bytes());
            let reply = conn.call(&auth).await;
            assert_eq!(reply.bytes(), b"+OK\r\n", "AUTH: {reply:?}");
        }
        if proto == Proto::Resp3 {
            let reply = conn.call(&[b"HELLO", b"3"]).await;
            assert_eq!(reply.kind, b'%', "HELLO 3: {reply:?}");
        }
        conn
    }

    /// Sends several commands in one write (a pipeline) without reading.
    pub async fn send(&mut self, commands: &[&[&[u8]]]) {
        let mut out = Vec::new();
        for args in commands {
            out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for arg in *args {
                out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                out.extend_from_slice(arg);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.stream.write_all(&out).await.expect("write command");
        self.stream.flush().await.expect("flush command");
    }

    /// Reads the next reply (pushes included).
    pub async fn read(&mut self) -> Reply {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some((reply, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return reply;
            }
            let n = tokio::time::timeout(REPLY_WAIT, self.stream.read(&mut chunk))
                .await
                .expect("reply within the deadline")
                .expect("read reply");
            assert!(n > 0, "connection closed while waiting for a reply");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn call(&mut self, args: &[&[u8]]) -> Reply {
        self.send(&[args]).await;
        self.read().await
    }

    pub async fn words(&mut self, line: &str) -> Reply {
        let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
        self.call(&args).await
    }
}

/// sealcache and redis-server side by side, each difference recorded.
pub struct Twin {
    pub proxy: Conn,
    pub direct: Conn,
    pub proto: Proto,
    pub mismatches: Vec<String>,
}

impl Twin {
    /// Both sides of `proxy` (its upstream in [`DIRECT_DB`]), speaking `proto`.
    pub async fn open(proxy: &Sealcache, proto: Proto) -> Twin {
        let mut direct = Conn::open(&proxy.raw_upstream(), proto).await;
        let selected = direct.call(&[b"SELECT", DIRECT_DB.as_bytes()]).await;
        assert_eq!(selected.bytes(), b"+OK\r\n", "SELECT: {selected:?}");
        Twin {
            proxy: Conn::open(&proxy.endpoint(), proto).await,
            direct,
            proto,
            mismatches: Vec::new(),
        }
    }

    /// Runs `args` on both sides; records a difference in the exact bytes.
    pub async fn run(&mut self, args: &[&[u8]]) -> Reply {
        self.run_normalised(args, |r| r).await
    }

    pub async fn words(&mut self, line: &str) -> Reply {
        let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
        self.run(&args).await
    }

    /// Runs each command line on both sides (arguments split at spaces).
    pub async fn lines(&mut self, lines: &[&str]) {
        for line in lines {
            self.words(line).await;
        }
    }

    /// Runs `args` on both sides and compares the replies after `normalise`
    /// (for replies whose order Redis leaves open).
    pub async fn run_normalised(
        &mut self,
        args: &[&[u8]],
        normalise: impl Fn(Reply) -> Reply,
    ) -> Reply {
        let through = normalise(self.proxy.call(args).await);
        let direct = normalise(self.direct.call(args).await);
        self.compare(&show_args(args), &through, &direct);
        through
    }

    /// Records a difference between two replies to the same thing.
    pub fn compare(&mut self, what: &str, through: &Reply, direct: &Reply) {
        if through.bytes() != direct.bytes() {
            self.mismatches.push(format!(
                "{what} ({:?})\n    sealcache:    {through:?}\n    redis-server: {direct:?}",
                self.proto
            ));
        }
    }

    /// Iterates a SCAN-family command (`args[cursor_at]` is the cursor) to
    /// the end on both sides and compares what each returned in all, sorted
    /// (`chunk` as in [`Reply::sorted`]): cursors are the upstream's, and
    /// sealcache's encoding may differ, so only the whole is comparable.
    pub async fn scan_all(&mut self, args: &[&[u8]], cursor_at: usize, chunk: usize) -> Reply {
        let mut through = Vec::new();
        let mut direct = Vec::new();
        for (conn, out) in [
            (&mut self.proxy, &mut through),
            (&mut self.direct, &mut direct),
        ] {
            let mut cursor = b"0".to_vec();
            loop {
                let mut call: Vec<&[u8]> = args.to_vec();
                call[cursor_at] = &cursor;
                let reply = conn.call(&call).await;
                if reply.is_error() || reply.items.len() != 2 {
                    out.push(reply);
                    break;
                }
                out.extend(reply.items[1].items.iter().cloned());
                cursor = reply.items[0].text().expect("cursor").to_vec();
                if cursor == b"0" {
                    break;
                }
            }
        }
        let through = Reply::aggregate(b'*', through).sorted(chunk);
        let direct = Reply::aggregate(b'*', direct).sorted(chunk);
        self.compare(
            &format!("{} (whole iteration)", show_args(args)),
            &through,
            &direct,
        );
        through
    }

    /// Fails the test with every recorded difference.
    #[track_caller]
    pub fn assert_no_mismatch(&self) {
        assert!(
            self.mismatches.is_empty(),
            "{} replies differ from redis-server's:\n{}",
            self.mismatches.len(),
            self.mismatches.join("\n")
        );
    }
}

/// Arguments as a readable command line (lossy for binary arguments).
pub fn show_args(args: &[&[u8]]) -> String {
    args.iter()
        .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
        .collect::<Vec<_>>()
        .join(" ")
}
