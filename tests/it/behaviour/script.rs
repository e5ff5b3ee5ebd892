//! Command scripts and how they run: each line goes to redis-server and,
//! through sealcache, to the route under test, and the replies must be the
//! same bytes, unless the command table says sealcache refuses the line
//! (then the refusal must be exactly sealcache's).
//!
//! # Script lines
//!
//! ```text
//! SET k v                     client 1 runs it on both sides; replies compared
//! [2] RPUSH q a               client 2 does
//! [1 blocks] BLPOP q 0        client 1 sends it; the suite waits until both
//!                             sides report one more blocked client
//! [1 sends] SUBSCRIBE a b     client 1 sends it without reading
//! [1 reads]                   client 1 reads one reply (or push) on both sides
//! [1 reads 2 unordered]       two, compared as a multiset
//! [awaits :0] EXISTS k        each side repeats it until it answers `:0`
//! [iterates] SCAN 0 COUNT 2   each side iterates to cursor 0; the elements
//!                             of all pages compared as a multiset
//! [redis] DISCARD             redis-server alone runs it (reply unchecked), to
//!                             follow sealcache into the state a refusal left
//! INCR k => -ERR sealcache: … sealcache must answer exactly this, and the
//!                             line is not run on redis-server
//! # a comment
//! ```
//!
//! Set `BEHAVIOUR_TRACE=1` to print every line and reply.
//!
//! Arguments are split at spaces. Replies Redis leaves unordered (SMEMBERS,
//! HGETALL, SCAN pages…: [`unordered`]) are compared as multisets; TIME as
//! two clocks that agree to a second. Nothing else is relaxed.
//!
//! # Which lines are refused
//!
//! [`expect`] follows the session's order: a command redis-server itself
//! refuses (unknown, wrong arity) is compared; one the table rejects on
//! encrypted data, an admin command not allowed, and one the route's
//! backend does not serve or lacks the capability for are refused with
//! sealcache's exact error; then an explicit `=> …` applies; anything else
//! is compared.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use sealcache::backend::Capability;
use sealcache::commands::{Command, Dispatch, Policy};

use super::route::{ALLOWED_ADMIN, Fixture, Route};
use crate::support::Endpoint;
use crate::support::twin::{Conn, Proto, Reply, show_args};

/// How long `[awaits …]` and `[n blocks]` poll before giving up.
const POLL_DEADLINE: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How long a reply may take before the script is abandoned.
const REPLY_DEADLINE: Duration = Duration::from_secs(10);

/// A named script and the capabilities its lines need as a whole (a route
/// without them only checks that each line is refused).
#[derive(Debug, Clone, Copy)]
pub struct Script {
    pub name: &'static str,
    pub needs: &'static [Capability],
    pub text: &'static str,
}

/// What a line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send and read one reply.
    Call,
    /// Send without reading.
    Send,
    /// Send without reading, then wait until the command blocks.
    Block,
    /// Read this many replies sent earlier; in any order when `unordered`.
    Read { count: usize, unordered: bool },
    /// Repeat until the reply is these bytes (a one-line reply, no CRLF).
    Await(String),
    /// Iterate a SCAN-family command to its end.
    Iterate,
    /// Run on redis-server only.
    RedisOnly,
}

/// One parsed script line.
#[derive(Debug, Clone)]
pub struct Line {
    pub text: String,
    /// 1-based client number.
    pub client: usize,
    pub action: Action,
    pub args: Vec<Bytes>,
    /// `=> …`: sealcache's exact one-line reply (refusals), without CRLF.
    pub explicit: Option<String>,
}

impl Line {
    /// Parses `text`; `None` for blank lines and comments.
    pub fn parse(text: &str) -> Option<Line> {
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            return None;
        }
        let (body, explicit) = match text.split_once(" => ") {
            Some((body, expected)) => (body.trim(), Some(expected.trim().to_owned())),
            None => (text, None),
        };
        let (client, action, words) = match body.strip_prefix('[') {
            None => (1, Action::Call, body),
            Some(rest) => {
                let (directive, words) = rest
                    .split_once(']')
                    .unwrap_or_else(|| panic!("unclosed [ in script line {text:?}"));
                let (client, action) = directive_of(directive, text);
                (client, action, words)
            }
        };
        let args: Vec<Bytes> = words
            .split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        assert_eq!(
            args.is_empty(),
            matches!(action, Action::Read { .. }),
            "script line {text:?}: only [n reads] has no command"
        );
        Some(Line {
            text: text.to_owned(),
            client,
            action,
            args,
            explicit,
        })
    }
}

/// `[client action …]` of a script line.
fn directive_of(directive: &str, text: &str) -> (usize, Action) {
    let mut client = 1;
    let mut action = Action::Call;
    let mut parts = directive.split_whitespace().peekable();
    while let Some(part) = parts.next() {
        action = match part {
            "sends" => Action::Send,
            "blocks" => Action::Block,
            "iterates" => Action::Iterate,
            "redis" => Action::RedisOnly,
            "reads" => {
                let count = parts.next_if(|p| p.parse::<usize>().is_ok());
                let count = count.map_or(1, |c| c.parse().expect("a count"));
                let unordered = parts.next_if_eq(&"unordered").is_some();
                Action::Read { count, unordered }
            }
            "awaits" => {
                let reply = parts
                    .next()
                    .unwrap_or_else(|| panic!("awaits without a reply: {text:?}"));
                Action::Await(reply.to_owned())
            }
            n => {
                client = n
                    .parse()
                    .unwrap_or_else(|_| panic!("bad directive {n:?} in {text:?}"));
                continue;
            }
        };
    }
    (client, action)
}

/// The parsed lines of a script text.
pub fn lines(text: &str) -> Vec<Line> {
    text.lines().filter_map(Line::parse).collect()
}

/// What the route under test must answer to a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// redis-server's reply, byte for byte.
    Same,
    /// sealcache's refusal, this exact one-line error (without `-` and CRLF).
    Refused(String),
}

/// What `route` must answer to `line` (see the module docs for the order).
pub fn expect(route: Route, line: &Line) -> Expect {
    if line.args.is_empty() || line.action == Action::RedisOnly {
        return Expect::Same;
    }
    if let Some((_, refusal)) = route.refuses.iter().find(|(text, _)| *text == line.text) {
        return Expect::Refused((*refusal).to_owned());
    }
    let Ok(cmd) = Command::parse(line.args.clone()) else {
        return Expect::Same;
    };
    let spec = cmd.spec;
    let shown = spec.name.replace('|', " ");
    if let Policy::Reject(reason) = spec.policy {
        assert!(
            line.explicit.is_none(),
            "{:?}: the table already rejects {shown}",
            line.text
        );
        return Expect::Refused(format!(
            "ERR sealcache: {shown} is not available on encrypted data: {reason}"
        ));
    }
    if spec.policy == Policy::Admin && !ALLOWED_ADMIN.contains(&spec.name) {
        return Expect::Refused(format!(
            "ERR sealcache: {shown} is disabled because it reconfigures or wipes the upstream; add \"{}\" to allowed_admin_commands to allow it",
            spec.name
        ));
    }
    let needs = match spec.dispatch {
        Dispatch::BlockingWithOption if cmd.has_word("BLOCK") => Some(Capability::Blocking),
        _ => spec.needs(),
    };
    let local = matches!(spec.dispatch, Dispatch::Local(_));
    let capable = needs.is_none_or(|c| (route.capabilities)().has(c));
    if !local && (!(route.serves)(spec) || !capable) {
        return Expect::Refused(format!(
            "ERR sealcache: {shown} is not supported by the {} backend '{}'",
            route.kind, route.backend
        ));
    }
    match &line.explicit {
        Some(reply) => Expect::Refused(
            reply
                .strip_prefix('-')
                .unwrap_or_else(|| panic!("{:?}: => takes an error reply", line.text))
                .to_owned(),
        ),
        None => Expect::Same,
    }
}

/// Whether `route` can run `script` at all (else only its refusals are checked).
pub fn runs(route: Route, script: &Script) -> bool {
    script.needs.iter().all(|c| (route.capabilities)().has(*c))
}

/// A side that did not answer within [`REPLY_DEADLINE`]: the script cannot go on.
struct Silent(String);

/// One side: redis-server or sealcache, with its clients.
struct Side {
    name: &'static str,
    endpoint: Endpoint,
    proto: Proto,
    /// Client n is `clients[n - 1]`, opened when first used.
    clients: Vec<Option<Conn>>,
    /// The arguments each client sent and has not read the reply of
    /// ((un)subscribing commands excepted: they answer once per channel).
    pending: Vec<VecDeque<Vec<Bytes>>>,
    /// The last command each client sent.
    last: Vec<Vec<Bytes>>,
    /// For INFO polls and resets, never in a script.
    control: Conn,
}

impl Side {
    async fn open(name: &'static str, endpoint: Endpoint, proto: Proto) -> Side {
        let control = Conn::open(&endpoint, proto).await;
        Side {
            name,
            endpoint,
            proto,
            clients: Vec::new(),
            pending: Vec::new(),
            last: Vec::new(),
            control,
        }
    }

    async fn client(&mut self, n: usize) -> &mut Conn {
        assert!(n >= 1, "clients are numbered from 1");
        while self.clients.len() < n {
            self.clients.push(None);
            self.pending.push(VecDeque::new());
            self.last.push(Vec::new());
        }
        if self.clients[n - 1].is_none() {
            self.clients[n - 1] = Some(Conn::open(&self.endpoint, self.proto).await);
        }
        self.clients[n - 1].as_mut().expect("just opened")
    }

    async fn send(&mut self, n: usize, args: &[Bytes]) {
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        self.client(n).await.send(&[&refs]).await;
        if !subscribing(args) {
            self.pending[n - 1].push_back(args.to_vec());
        }
        self.last[n - 1] = args.to_vec();
    }

    /// The next reply of client `n`, and the command it answers (for a
    /// push or a subscription's confirmation, the last command sent).
    async fn read(&mut self, n: usize) -> Result<(Reply, Vec<Bytes>), Silent> {
        let name = self.name;
        let conn = self.client(n).await;
        let reply = tokio::time::timeout(REPLY_DEADLINE, conn.read())
            .await
            .map_err(|_| {
                Silent(format!(
                    "{name} sent client {n} nothing within {REPLY_DEADLINE:?}"
                ))
            })?;
        trace(|| format!("{name} client {n}: {reply:?}"));
        let args = match reply.kind {
            b'>' => None,
            _ => self.pending[n - 1].pop_front(),
        };
        Ok((reply, args.unwrap_or_else(|| self.last[n - 1].clone())))
    }

    async fn call(&mut self, n: usize, args: &[Bytes]) -> Result<Reply, Silent> {
        self.send(n, args).await;
        Ok(self.read(n).await?.0)
    }

    /// Clients this side reports blocked: redis-server's `blocked_clients`
    /// (through sealcache, the upstream's INFO or the memory backend's line).
    async fn blocked(&mut self) -> usize {
        let info = self.control.call(&[b"INFO"]).await;
        let text = String::from_utf8_lossy(info.text().unwrap_or_default()).into_owned();
        text.lines()
            .filter_map(|l| l.trim().split_once(':'))
            .filter(|(k, _)| *k == "blocked_clients" || k.ends_with("_blocked_clients"))
            .filter_map(|(_, v)| v.parse::<usize>().ok())
            .max()
            .unwrap_or(0)
    }

    /// Waits until at least `count` clients are blocked.
    async fn await_blocked(&mut self, count: usize) -> bool {
        let end = tokio::time::Instant::now() + POLL_DEADLINE;
        while self.blocked().await < count {
            if tokio::time::Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        true
    }

    /// Repeats `args` on client `n` until it answers `wanted`; the last
    /// other answer when it never does.
    async fn await_reply(
        &mut self,
        n: usize,
        args: &[Bytes],
        wanted: &[u8],
    ) -> Result<Result<(), Reply>, Silent> {
        let end = tokio::time::Instant::now() + POLL_DEADLINE;
        loop {
            let reply = self.call(n, args).await?;
            if reply.bytes() == wanted {
                return Ok(Ok(()));
            }
            if tokio::time::Instant::now() >= end {
                return Ok(Err(reply));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Every element of a SCAN-family iteration (`args[at]` is the cursor),
    /// or the first reply that is not a page.
    async fn iterate(&mut self, n: usize, args: &[Bytes], at: usize) -> Result<Vec<Reply>, Silent> {
        let mut call = args.to_vec();
        let mut items = Vec::new();
        for _ in 0..10_000 {
            let mut page = self.call(n, &call).await?;
            if page.is_error() || page.items.len() != 2 {
                return Ok(vec![page]);
            }
            let elements = page.items.pop().expect("two items");
            items.extend(elements.items);
            let cursor = page.items[0].text().unwrap_or_default();
            if cursor == b"0" {
                return Ok(items);
            }
            call[at] = Bytes::copy_from_slice(cursor);
        }
        panic!("{} never ended the iteration of {}", self.name, show(args));
    }

    async fn reset(&mut self) {
        self.clients.clear();
        self.pending.clear();
        self.last.clear();
        let reply = self.control.call(&[b"FLUSHALL"]).await;
        assert_eq!(reply.bytes(), b"+OK\r\n", "FLUSHALL: {reply:?}");
    }
}

/// Whether `args` is a (P|S)(UN)SUBSCRIBE, which answers with one frame per channel.
fn subscribing(args: &[Bytes]) -> bool {
    Command::parse(args.to_vec()).is_ok_and(|c| matches!(c.spec.dispatch, Dispatch::Subscribe(_)))
}

/// sealcache on one route against redis-server, in one protocol.
pub struct Runner {
    pub route: Route,
    pub proto: Proto,
    oracle: Side,
    proxy: Side,
    /// Commands blocked on each side and not yet read.
    blocked: usize,
    /// Clients whose last command sealcache refused: their `[n reads]` lines
    /// have nothing to read.
    refused: Vec<usize>,
    pub mismatches: Vec<String>,
}

impl Runner {
    pub async fn open(fixture: &Fixture, proto: Proto) -> Runner {
        Runner {
            route: fixture.route,
            proto,
            oracle: Side::open("redis-server", fixture.oracle_endpoint(), proto).await,
            proxy: Side::open("sealcache", fixture.proxy_endpoint(), proto).await,
            blocked: 0,
            refused: Vec::new(),
            mismatches: Vec::new(),
        }
    }

    /// Runs `script` from empty databases and new clients. A side that stops
    /// answering ends the script (its connections are in an unknown state).
    pub async fn run(&mut self, script: &Script) {
        self.oracle.reset().await;
        self.proxy.reset().await;
        self.blocked = 0;
        self.refused.clear();
        let runs = runs(self.route, script);
        for line in lines(script.text) {
            let expect = expect(self.route, &line);
            if !runs && (expect == Expect::Same || line.explicit.is_some()) {
                // The route lacks what the script needs: only the refusals
                // of what it lacks are checked (a script's own `=>` lines
                // assume the state its earlier lines built).
                continue;
            }
            let what = format!(
                "{} ({:?}, {:?}): {}",
                script.name, self.route, self.proto, line.text
            );
            if let Err(Silent(why)) = self.line(&what, &line, expect).await {
                self.mismatches.push(format!(
                    "{what}\n    {why}; the rest of the script was not run"
                ));
                return;
            }
        }
        if let Err(Silent(why)) = self.drained(script).await {
            self.mismatches.push(why);
        }
    }

    /// Every client of both sides has read every reply: a PING's answer is
    /// the next one (a script a read short would otherwise compare the
    /// same stale frames on both sides and pass).
    async fn drained(&mut self, script: &Script) -> Result<(), Silent> {
        let ping = [Bytes::from_static(b"PING")];
        for n in 1..=self.oracle.clients.len() {
            if self.oracle.clients[n - 1].is_none() {
                continue;
            }
            for side in [&mut self.oracle, &mut self.proxy] {
                let reply = side.call(n, &ping).await?;
                let pong = match reply.kind {
                    b'+' => reply.line == b"PONG",
                    b'*' | b'>' => reply.items.first().and_then(Reply::text) == Some(b"pong"),
                    _ => false,
                };
                if !pong {
                    return Err(Silent(format!(
                        "{} ({:?}, {:?}): client {n} of {} had a reply nobody read at the end: {reply:?}",
                        script.name, self.route, self.proto, side.name
                    )));
                }
            }
        }
        Ok(())
    }

    async fn line(&mut self, what: &str, line: &Line, expect: Expect) -> Result<(), Silent> {
        let n = line.client;
        trace(|| format!("{:?} {:?}: {expect:?}", line.text, line.action));
        if let Expect::Refused(error) = expect {
            if matches!(line.action, Action::Read { .. }) {
                return Ok(());
            }
            let reply = self.proxy.call(n, &line.args).await?;
            let wanted = format!("-{error}\r\n");
            if reply.bytes() != wanted.as_bytes() {
                self.mismatches.push(format!(
                    "{what}\n    sealcache:         {reply:?}\n    expected refusal:  {wanted:?}"
                ));
            }
            if matches!(line.action, Action::Send | Action::Block) {
                self.refused.push(n);
            }
            return Ok(());
        }
        if !matches!(line.action, Action::Read { .. }) {
            self.refused.retain(|c| *c != n);
        }
        match &line.action {
            Action::Call => {
                let direct = self.oracle.call(n, &line.args).await?;
                let through = self.proxy.call(n, &line.args).await?;
                self.compare(what, &line.args, through, direct);
            }
            Action::RedisOnly => {
                self.oracle.call(n, &line.args).await?;
            }
            Action::Send => {
                self.oracle.send(n, &line.args).await;
                self.proxy.send(n, &line.args).await;
            }
            Action::Block => {
                self.blocked += 1;
                self.oracle.send(n, &line.args).await;
                self.proxy.send(n, &line.args).await;
                for side in [&mut self.oracle, &mut self.proxy] {
                    if !side.await_blocked(self.blocked).await {
                        self.mismatches.push(format!(
                            "{what}\n    {} never reported the client blocked",
                            side.name
                        ));
                    }
                }
            }
            Action::Read { count, unordered } => {
                if self.refused.contains(&n) {
                    return Ok(());
                }
                let (mut direct, mut through, mut args) = (Vec::new(), Vec::new(), Vec::new());
                for _ in 0..*count {
                    let (reply, answers) = self.oracle.read(n).await?;
                    direct.push(reply);
                    through.push(self.proxy.read(n).await?.0);
                    if blocking(&answers) {
                        self.blocked = self.blocked.saturating_sub(1);
                    }
                    args = answers;
                }
                let what = format!("{what} (replies to {})", show(&args));
                if *unordered {
                    let direct = Reply::aggregate(b'*', direct).sorted(1);
                    let through = Reply::aggregate(b'*', through).sorted(1);
                    self.compare(&what, &[], through, direct);
                } else {
                    for (through, direct) in through.into_iter().zip(direct) {
                        self.compare(&what, &args, through, direct);
                    }
                }
            }
            Action::Await(reply) => {
                let wanted = format!("{reply}\r\n").into_bytes();
                for side in [&mut self.oracle, &mut self.proxy] {
                    if let Err(last) = side.await_reply(n, &line.args, &wanted).await? {
                        self.mismatches.push(format!(
                            "{what}\n    {} still answers {last:?} after {POLL_DEADLINE:?}",
                            side.name
                        ));
                    }
                }
            }
            Action::Iterate => {
                let (at, chunk) = match unordered(&line.args, false) {
                    Some((true, chunk)) if is(&line.args, "SCAN") => (1, chunk),
                    Some((true, chunk)) => (2, chunk),
                    _ => panic!("{what}: [iterates] takes a SCAN-family command"),
                };
                let direct = self.oracle.iterate(n, &line.args, at).await?;
                let through = self.proxy.iterate(n, &line.args, at).await?;
                let direct = Reply::aggregate(b'*', direct).sorted(chunk);
                let through = Reply::aggregate(b'*', through).sorted(chunk);
                self.compare(&format!("{what} (whole iteration)"), &[], through, direct);
            }
        }
        Ok(())
    }

    fn compare(&mut self, what: &str, args: &[Bytes], through: Reply, direct: Reply) {
        if let Some((through, direct)) =
            difference(args, through, direct, self.proto == Proto::Resp3)
        {
            self.mismatches.push(format!(
                "{what}\n    sealcache:    {through:?}\n    redis-server: {direct:?}"
            ));
        }
    }
}

/// The two replies to `args`, as compared, when they are not the same
/// (see the module docs for what is normalised).
pub fn difference(
    args: &[Bytes],
    got: Reply,
    expected: Reply,
    resp3: bool,
) -> Option<(Reply, Reply)> {
    if is(args, "TIME") && !got.is_error() && !expected.is_error() {
        return (!clocks_agree(&got, &expected)).then_some((got, expected));
    }
    let got = normalise(args, got, resp3);
    let expected = normalise(args, expected, resp3);
    (got.bytes() != expected.bytes()).then_some((got, expected))
}

/// With `BEHAVIOUR_TRACE` set, prints every line and every reply read (to
/// find where a script and a side fell out of step).
fn trace(text: impl FnOnce() -> String) {
    if std::env::var_os("BEHAVIOUR_TRACE").is_some() {
        eprintln!("behaviour: {}", text());
    }
}

fn show(args: &[Bytes]) -> String {
    show_args(&args.iter().map(|a| a.as_ref()).collect::<Vec<_>>())
}

fn upper(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_uppercase()
}

fn is(args: &[Bytes], name: &str) -> bool {
    args.first().is_some_and(|a| upper(a) == name)
}

fn blocking(args: &[Bytes]) -> bool {
    Command::parse(args.to_vec()).is_ok_and(|c| match c.spec.dispatch {
        Dispatch::Blocking => true,
        Dispatch::BlockingWithOption => c.has_word("BLOCK"),
        _ => false,
    })
}

/// TIME: two `[seconds, microseconds]` pairs at most a second apart.
fn clocks_agree(a: &Reply, b: &Reply) -> bool {
    let seconds = |r: &Reply| -> Option<i64> {
        if r.kind != b'*' || r.items.len() != 2 {
            return None;
        }
        let micros: i64 = std::str::from_utf8(r.items[1].text()?).ok()?.parse().ok()?;
        (0..1_000_000).contains(&micros).then_some(())?;
        std::str::from_utf8(r.items[0].text()?).ok()?.parse().ok()
    };
    matches!((seconds(a), seconds(b)), (Some(x), Some(y)) if (x - y).abs() <= 1)
}

/// How a reply is unordered: groups of `chunk` elements in any order, at
/// the top level or (SCAN family) in the second element.
pub fn unordered(args: &[Bytes], resp3: bool) -> Option<(bool, usize)> {
    let name = upper(args.first()?);
    match name.as_str() {
        "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF" | "KEYS" | "HKEYS" | "HVALS" => Some((false, 1)),
        "SPOP" | "SRANDMEMBER" if args.len() == 3 => Some((false, 1)),
        "PUBSUB" => Some((false, 1)),
        "HGETALL" => Some((false, 2)),
        "HRANDFIELD" | "ZRANDMEMBER" if args.len() >= 3 => {
            Some((false, if !resp3 && args.len() == 4 { 2 } else { 1 }))
        }
        "SCAN" | "SSCAN" => Some((true, 1)),
        "HSCAN" | "ZSCAN" => Some((true, 2)),
        _ => None,
    }
}

/// `reply` with the elements Redis leaves unordered sorted.
pub fn normalise(args: &[Bytes], mut reply: Reply, resp3: bool) -> Reply {
    let Some((nested, chunk)) = unordered(args, resp3) else {
        return reply;
    };
    if reply.is_error() {
        return reply;
    }
    if !nested {
        return reply.sorted(chunk);
    }
    if reply.items.len() == 2 {
        let inner = reply.items.pop().expect("two items");
        reply.items.push(inner.sorted(chunk));
    }
    reply
}
