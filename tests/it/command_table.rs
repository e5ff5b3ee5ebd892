//! The command table and the COMMAND family against a real redis-server.
//!
//! - Every command and subcommand the server lists has a row with the
//!   server's arity, legacy key positions and key specifications.
//! - Through sealcache, COMMAND INFO / DOCS of every command it serves are
//!   byte for byte the server's, in RESP2 and RESP3 (with the subcommands it
//!   does not serve left out, and subcommands sorted); COMMAND, COUNT and
//!   LIST list exactly what it serves; GETKEYS and GETKEYSANDFLAGS answer as
//!   the server does, and the table's key extraction agrees with the server
//!   for every row with keys and for movable keys in many shapes.
//! - None of it reaches the upstream: a raw MONITOR sees no COMMAND and no
//!   value (issue 12, criterion 6).

use std::collections::BTreeSet;

use crate::support::resp::{Node, RawConn, span as parse, text, words};
use crate::support::{Certs, RedisServer, Sealcache, random_password};
use sealcache::commands::table::COMMANDS;
use sealcache::commands::{CommandSpec, Dispatch, Policy, keys, lookup};

/// Rows for commands newer than the server under test (Redis 7.2 commands
/// that real clients send to any server); absent from an older `COMMAND`.
const NEWER_THAN_SERVER: &[&str] = &["CLIENT|NO-TOUCH", "CLIENT|SETINFO", "WAITAOF"];
/// The admin command the proxy under test allows, so it must be listed.
const ALLOWED_ADMIN: &str = "CONFIG|SET";

fn upstream() -> RedisServer {
    RedisServer::start_tls(&Certs::generate(), &random_password(32))
}

fn proxy(redis: &RedisServer) -> Sealcache {
    Sealcache::builder(redis)
        .set("allowed_admin_commands", &format!("[\"{ALLOWED_ADMIN}\"]"))
        .start()
}

// ---- what sealcache serves -------------------------------------------------------------------

fn row(name: &str) -> Option<&'static CommandSpec> {
    match name.split_once('|') {
        Some((container, sub)) => lookup(container.as_bytes(), Some(sub.as_bytes())),
        None => lookup(name.as_bytes(), None),
    }
}

/// What the proxy under test lists, derived from the table alone: not
/// rejected, admin only when allowed, a container when one of its
/// subcommands is listed, and known to the server.
struct Served {
    /// Lower-case full names the server lists.
    known: BTreeSet<String>,
}

impl Served {
    fn shown(&self, name: &str) -> bool {
        let Some(spec) = row(name) else { return false };
        let served = match spec.policy {
            Policy::Reject(_) => false,
            Policy::Admin => spec.name == ALLOWED_ADMIN,
            _ => true,
        };
        served
            && self.known.contains(name)
            && (spec.dispatch != Dispatch::Container
                || self
                    .known
                    .iter()
                    .any(|sub| sub.starts_with(&format!("{name}|")) && self.shown(sub)))
    }
}

/// redis-server's COMMAND INFO reply as sealcache should give it: each
/// container's subcommands filtered to those shown and sorted by name.
fn expected_info(buf: &[u8], served: &Served) -> Vec<u8> {
    let top = parse(buf, 0).expect("a whole reply");
    let mut out = buf[..top.body].to_vec();
    for entry in &top.children {
        let subs = entry.children.get(9);
        match subs {
            Some(subs) if subs.kind == b'*' => {
                out.extend_from_slice(&buf[entry.start..subs.start]);
                let mut kept: Vec<&Node> = subs
                    .children
                    .iter()
                    .filter(|s| served.shown(&text(buf, &s.children[0])))
                    .collect();
                kept.sort_by_key(|s| text(buf, &s.children[0]));
                out.extend_from_slice(format!("*{}\r\n", kept.len()).as_bytes());
                for s in kept {
                    out.extend_from_slice(&buf[s.start..s.end]);
                }
            }
            _ => out.extend_from_slice(&buf[entry.start..entry.end]),
        }
    }
    out
}

/// redis-server's COMMAND DOCS reply as sealcache should give it.
fn expected_docs(buf: &[u8], served: &Served) -> Vec<u8> {
    let top = parse(buf, 0).expect("a whole reply");
    let mut out = buf[..top.body].to_vec();
    for pair in top.children.chunks(2) {
        out.extend_from_slice(&buf[pair[0].start..pair[0].end]);
        docs_value(buf, &pair[1], served, &mut out);
    }
    out
}

fn docs_value(buf: &[u8], docs: &Node, served: &Served, out: &mut Vec<u8>) {
    let fields: Vec<&[Node]> = docs.children.chunks(2).collect();
    match fields.iter().find(|f| text(buf, &f[0]) == "subcommands") {
        Some(field) => {
            let subs = &field[1];
            out.extend_from_slice(&buf[docs.start..subs.start]);
            let mut kept: Vec<&[Node]> = subs
                .children
                .chunks(2)
                .filter(|p| served.shown(&text(buf, &p[0])))
                .collect();
            kept.sort_by_key(|p| text(buf, &p[0]));
            let len = if subs.kind == b'%' {
                kept.len()
            } else {
                2 * kept.len()
            };
            out.extend_from_slice(format!("{}{len}\r\n", subs.kind as char).as_bytes());
            for p in kept {
                out.extend_from_slice(&buf[p[0].start..p[0].end]);
                docs_value(buf, &p[1], served, out);
            }
            assert_eq!(subs.end, docs.end, "subcommands is the last field");
        }
        None => out.extend_from_slice(&buf[docs.start..docs.end]),
    }
}

fn names(buf: &[u8]) -> Vec<String> {
    let list = parse(buf, 0).expect("a whole reply");
    assert_eq!(
        list.kind,
        b'*',
        "an array: {}",
        String::from_utf8_lossy(buf)
    );
    list.children.iter().map(|n| text(buf, n)).collect()
}

async fn known_commands(redis: &RedisServer) -> Served {
    let mut con = RawConn::open_proto(&redis.endpoint(), false).await;
    let list = con.call_bytes(&[b"COMMAND", b"LIST"]).await;
    let known: BTreeSet<String> = names(&list).into_iter().collect();
    assert!(known.len() > 300, "COMMAND LIST gave {} names", known.len());
    Served { known }
}

// ---- the tests ------------------------------------------------------------------------------

/// A key specification as both sides print it.
fn spec_text(spec: &keys::KeySpec) -> String {
    let flags: Vec<&str> = spec.flags.names().collect();
    format!("{} {:?} {:?}", flags.join(" "), spec.begin, spec.find)
}

fn server_spec_text(buf: &[u8], spec: &Node) -> String {
    let field = |node: &Node, name: &str| -> Option<usize> {
        let idx = node
            .children
            .chunks(2)
            .position(|f| text(buf, &f[0]) == name)?;
        Some(2 * idx + 1)
    };
    let get = |node: &'_ Node, name: &str| -> String {
        field(node, name)
            .map(|i| text(buf, &node.children[i]))
            .unwrap_or_default()
    };
    let flags: Vec<String> = spec.children[field(spec, "flags").unwrap()]
        .children
        .iter()
        .map(|f| text(buf, f))
        .collect();
    let begin = &spec.children[field(spec, "begin_search").unwrap()];
    let find = &spec.children[field(spec, "find_keys").unwrap()];
    let (bspec, fspec) = (
        &begin.children[field(begin, "spec").unwrap()],
        &find.children[field(find, "spec").unwrap()],
    );
    let begin = match get(begin, "type").as_str() {
        "index" => format!("Index({})", get(bspec, "index")),
        "keyword" => format!(
            "Keyword({:?}, {})",
            get(bspec, "keyword"),
            get(bspec, "startfrom")
        ),
        _ => "Unknown".into(),
    };
    let find = match get(find, "type").as_str() {
        "range" => format!(
            "Range({}, {}, {})",
            get(fspec, "lastkey"),
            get(fspec, "keystep"),
            get(fspec, "limit")
        ),
        "keynum" => format!(
            "KeyNum({}, {}, {})",
            get(fspec, "keynumidx"),
            get(fspec, "firstkey"),
            get(fspec, "keystep")
        ),
        _ => "Unknown".into(),
    };
    format!("{} {begin} {find}", flags.join(" "))
}

#[tokio::test]
async fn every_server_command_has_a_row_with_its_arity_and_key_specs() {
    let redis = upstream();
    let served = known_commands(&redis).await;
    let mut con = RawConn::open_proto(&redis.endpoint(), true).await;

    let mut mismatched = Vec::new();
    let mut missing = Vec::new();
    for name in &served.known {
        let Some(spec) = row(name) else {
            missing.push(name.clone());
            continue;
        };
        let buf = con
            .call_bytes(&[b"COMMAND", b"INFO", name.as_bytes()])
            .await;
        let reply = parse(&buf, 0).unwrap();
        let entry = &reply.children[0];
        let int = |i: usize| text(&buf, &entry.children[i]).parse::<i64>().unwrap();
        let flags: Vec<String> = entry.children[2]
            .children
            .iter()
            .map(|f| text(&buf, f))
            .collect();
        let theirs_specs: Vec<String> = entry.children[8]
            .children
            .iter()
            .map(|s| server_spec_text(&buf, s))
            .collect();
        let ours_specs: Vec<String> = spec.keys.specs.iter().map(spec_text).collect();
        let ours = (
            spec.arity as i64,
            spec.legacy_keys.first as i64,
            spec.legacy_keys.last as i64,
            spec.legacy_keys.step as i64,
            spec.movable_keys,
            spec.keys.no_mandatory_keys,
            ours_specs,
        );
        let theirs = (
            int(1),
            int(3),
            int(4),
            int(5),
            flags.iter().any(|f| f == "movablekeys"),
            flags.iter().any(|f| f == "no_mandatory_keys"),
            theirs_specs,
        );
        if ours != theirs {
            mismatched.push(format!("{name}: table {ours:?}\n     server {theirs:?}"));
        }
    }
    let unknown: Vec<&str> = COMMANDS
        .iter()
        .map(|spec| spec.name)
        .filter(|name| {
            !served.known.contains(&name.to_ascii_lowercase()) && !NEWER_THAN_SERVER.contains(name)
        })
        .collect();
    assert!(
        missing.is_empty() && mismatched.is_empty() && unknown.is_empty(),
        "the command table disagrees with redis-server (rerun scripts/dev/gen_command_table.py)\n\
         commands without a row: {missing:?}\n\
         rows the server does not know and NEWER_THAN_SERVER does not list: {unknown:?}\n\
         rows with other arity, key positions or key specs:\n  {}",
        mismatched.join("\n  "),
    );
}

#[tokio::test]
async fn command_info_docs_count_and_list_answer_as_redis_for_what_sealcache_serves() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let served = known_commands(&redis).await;
    let shown: Vec<&String> = served.known.iter().filter(|n| served.shown(n)).collect();
    let shown_top: Vec<&String> = shown.iter().copied().filter(|n| !n.contains('|')).collect();
    assert!(
        shown.iter().any(|n| *n == "config|set"),
        "allowed admin command listed"
    );
    assert!(!shown.iter().any(|n| *n == "flushall" || *n == "eval"));

    let mut diffs = Vec::new();
    for resp3 in [false, true] {
        let mut theirs = RawConn::open_proto(&redis.endpoint(), resp3).await;
        let mut ours = RawConn::open_proto(&proxy.endpoint(), resp3).await;
        let proto = if resp3 { "RESP3" } else { "RESP2" };
        let (null, empty_map) = if resp3 {
            (&b"*1\r\n_\r\n"[..], &b"%0\r\n"[..])
        } else {
            (&b"*1\r\n$-1\r\n"[..], &b"*0\r\n"[..])
        };
        for name in &served.known {
            for sub in ["INFO", "DOCS"] {
                let line: [&[u8]; 3] = [b"COMMAND", sub.as_bytes(), name.as_bytes()];
                let server = theirs.call_bytes(&line).await;
                let proxied = ours.call_bytes(&line).await;
                let expected = match (served.shown(name), sub) {
                    (true, "INFO") => expected_info(&server, &served),
                    (true, _) => expected_docs(&server, &served),
                    (false, "INFO") => null.to_vec(),
                    (false, _) => empty_map.to_vec(),
                };
                if proxied != expected {
                    diffs.push(format!(
                        "{proto} COMMAND {sub} {name}:\n  sealcache {}\n  expected  {}",
                        String::from_utf8_lossy(&proxied).escape_debug(),
                        String::from_utf8_lossy(&expected).escape_debug()
                    ));
                }
            }
        }

        // COMMAND and COMMAND INFO / DOCS without names: the shown commands, sorted.
        let all = ours.call_bytes(&[b"COMMAND"]).await;
        let tree = parse(&all, 0).unwrap();
        let listed: Vec<String> = tree
            .children
            .iter()
            .map(|e| text(&all, &e.children[0]))
            .collect();
        assert_eq!(
            listed,
            shown_top.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{proto} COMMAND"
        );
        assert_eq!(
            ours.call_bytes(&[b"COMMAND", b"INFO"]).await,
            all,
            "{proto} COMMAND INFO"
        );
        let docs = ours.call_bytes(&[b"COMMAND", b"DOCS"]).await;
        let tree = parse(&docs, 0).unwrap();
        assert_eq!(
            tree.children.len(),
            2 * shown_top.len(),
            "{proto} COMMAND DOCS"
        );

        let count = ours.call_bytes(&[b"COMMAND", b"COUNT"]).await;
        assert_eq!(
            count,
            format!(":{}\r\n", shown_top.len()).into_bytes(),
            "{proto} COUNT"
        );
        let list = names(&ours.call_bytes(&[b"COMMAND", b"LIST"]).await);
        assert_eq!(
            list.iter().collect::<BTreeSet<_>>(),
            shown.iter().copied().collect::<BTreeSet<_>>(),
            "{proto} COMMAND LIST"
        );
        for filter in [
            "FILTERBY ACLCAT write",
            "FILTERBY ACLCAT Admin",
            "FILTERBY ACLCAT nosuch",
            "FILTERBY PATTERN *set*",
            "FILTERBY PATTERN CONFIG|*",
            "FILTERBY PATTERN [a-c]?*",
            "FILTERBY MODULE json",
        ] {
            let mut line = words("COMMAND LIST");
            line.extend(words(filter));
            let server: BTreeSet<String> = names(&theirs.words(&line).await)
                .into_iter()
                .filter(|n| served.shown(n))
                .collect();
            let proxied: BTreeSet<String> = names(&ours.words(&line).await).into_iter().collect();
            assert_eq!(proxied, server, "{proto} COMMAND LIST {filter}");
        }
        for line in [
            "COMMAND HELP",
            "COMMAND LIST FILTERBY",
            "COMMAND LIST FILTERBY PATTERN a b",
            "COMMAND LIST BOGUS x y",
            "COMMAND LIST FILTERBY BOGUS x",
            "COMMAND BOGUS",
            "COMMAND COUNT x",
            "COMMAND HELP x",
            "COMMAND INFO get nosuch config|get Config|Set config|flushall get|x",
            "COMMAND DOCS get nosuch config|get",
        ] {
            let line = words(line);
            let server = theirs.words(&line).await;
            let server = if line[1] == b"INFO" {
                expected_info(&server, &served)
            } else if line[1] == b"DOCS" {
                expected_docs(&server, &served)
            } else {
                server
            };
            assert_eq!(
                String::from_utf8_lossy(&ours.words(&line).await),
                String::from_utf8_lossy(&server),
                "{proto} {}",
                String::from_utf8_lossy(&line.join(&b' '))
            );
        }
        // The shared upstream connection is still fine.
        assert_eq!(ours.call_bytes(&[b"SET", b"k", b"v"]).await, b"+OK\r\n");
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// Command lines for GETKEYS: the movable-key commands in several shapes,
/// option words as keys, counts that do not fit, and every error.
const GETKEYS_LINES: &[&str] = &[
    "SET k v",
    "SET k v GET",
    "SET k v get\\0x",
    "SET k v EX 10 GeT",
    "SET k v ge",
    "BITFIELD k GET u8 0",
    "BITFIELD k GET u8 0 SET u8 0 1",
    "BITFIELD k OVERFLOW WRAP GET u8 0",
    "BITFIELD k bogus",
    "BITFIELD_RO k GET u8 0",
    "SORT k",
    "SORT k STORE d",
    "SORT k BY w GET # LIMIT 0 10 STORE d",
    "SORT k STORE a STORE b",
    "SORT k LIMIT STORE x y STORE",
    "SORT k store",
    "SORT_RO k BY x",
    "MIGRATE h 6379 k 0 1000",
    "MIGRATE h 6379 '' 0 1000 KEYS a b c",
    "MIGRATE h 6379 '' 0 1000 COPY REPLACE AUTH pw KEYS a",
    "MIGRATE h 6379 '' 0 1000 AUTH2 u KEYS KEYS a",
    "MIGRATE h 6379 k 0 1000 KEYS a",
    "MIGRATE h 6379 '' 0 1000 KEYS",
    "EVAL s 0",
    "EVAL s 2 a b c",
    "EVAL s 3 a b",
    "EVAL s -1",
    "EVAL s x a",
    "EVAL s 1\\0 a",
    "EVALSHA sha 1 a",
    "EVAL_RO s 1 a",
    "EVALSHA_RO s 2 a b",
    "FCALL f 2 a b",
    "FCALL_RO f 0",
    "ZUNIONSTORE d 2 a b",
    "ZUNIONSTORE d 2 a b WEIGHTS 1 2 AGGREGATE SUM",
    "ZUNIONSTORE d 3 a b",
    "ZUNIONSTORE d 0 a",
    "ZUNIONSTORE d x a",
    "ZINTERSTORE d 1 a",
    "ZDIFFSTORE d 2 a b",
    "ZUNION 2 a b WITHSCORES",
    "ZINTER 1 a",
    "ZDIFF 2 a b",
    "ZUNION 4294967297 a b",
    "ZUNION 02 a b",
    "ZUNION -1 a b",
    "ZUNION +2 a b",
    "ZINTERCARD 2 a b LIMIT 1",
    "SINTERCARD 1 a",
    "SINTERCARD 3 a b",
    "LMPOP 2 a b LEFT COUNT 2",
    "LMPOP 1 a RIGHT",
    "LMPOP 5 a b LEFT",
    "BLMPOP 0 2 a b LEFT",
    "ZMPOP 1 a MIN",
    "BZMPOP 1 2 a b MAX COUNT 3",
    "XREAD STREAMS a 0",
    "XREAD COUNT 1 BLOCK 0 STREAMS a b 0 0",
    "XREAD STREAMS a b 0",
    "XREAD COUNT streams STREAMS a 0",
    "XREAD a b STREAMS x 1",
    "XREAD BLOCK 0 STREAMS",
    "XREADGROUP GROUP g c STREAMS a 0",
    "XREADGROUP GROUP g c COUNT 1 NOACK STREAMS a b 0 0",
    "XREADGROUP GROUP g c STREAMS a",
    "GEORADIUS k 0 0 1 km",
    "GEORADIUS k 0 0 1 km STORE d",
    "GEORADIUS k 0 0 1 km STOREDIST d",
    "GEORADIUS k 0 0 1 km STORE a STOREDIST b",
    "GEORADIUS k 0 0 1 km STORE",
    "GEORADIUSBYMEMBER k m 1 km STORE d",
    "GEORADIUS_RO k 0 0 1 km",
    "GEOSEARCHSTORE d s FROMMEMBER m BYRADIUS 1 km",
    "ZRANGESTORE d s 0 -1",
    "LMOVE a b LEFT RIGHT",
    "RENAME a b",
    "COPY a b DB 1",
    "SMOVE a b m",
    "MSET a 1 b 2",
    "MSET a 1 b",
    "MSETNX a 1",
    "DEL a b c",
    "OBJECT ENCODING k",
    "XGROUP CREATE s g $",
    "xgroup createconsumer s g c",
    "XINFO STREAM s FULL",
    "MEMORY USAGE k",
    "PFMERGE d a b",
    "PFCOUNT a b",
    "BITOP AND d a b",
    "WATCH a b",
    "PUBLISH c m",
    "SPUBLISH c m",
    "SSUBSCRIBE c",
    "NOSUCH a",
    "CONFIG",
    "CONFIG GET x",
    "CONFIG BOGUS",
    "XGROUP",
    "XGROUP BOGUS s",
    "GET a b",
    "GET",
    "PING",
    "get\\0x a",
    "CLIENT SETINFO lib-name x",
    "WAITAOF 0 0 0",
];

/// Every row the server knows that can have keys, called with the fewest
/// arguments its arity allows and with two more.
fn generated_lines(served: &Served) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for spec in COMMANDS {
        if !spec.keys.any() || !served.known.contains(&spec.name.to_ascii_lowercase()) {
            continue;
        }
        let prefix: Vec<&str> = spec.name.split('|').collect();
        let min = spec.arity.unsigned_abs() as usize;
        let extra = if spec.arity < 0 {
            [0, 2].as_slice()
        } else {
            [0].as_slice()
        };
        for more in extra {
            let mut line = prefix.join(" ");
            for i in prefix.len()..min + more {
                line.push_str(&format!(" k{i}"));
            }
            lines.push(line.into_bytes());
        }
    }
    lines
}

/// What `keys::key_args` says, rendered as redis-server renders GETKEYSANDFLAGS in RESP3.
fn library_keys(line: &[Vec<u8>]) -> Option<Vec<u8>> {
    let args: Vec<bytes::Bytes> = line.iter().map(|a| bytes::Bytes::from(a.clone())).collect();
    let mut spec = lookup(&args[0], None)?;
    if spec.dispatch == Dispatch::Container && args.len() > 1 {
        spec = lookup(&args[0], Some(&args[1]))?;
    }
    if !spec.arity_ok(args.len()) || !spec.keys.any() {
        return None;
    }
    let found = keys::key_args(&spec.keys, &args);
    let mut out = format!("*{}\r\n", found.len()).into_bytes();
    for k in &found {
        let flags: Vec<&str> = k.flags.names().collect();
        out.extend_from_slice(format!("*2\r\n${}\r\n", args[k.index].len()).as_bytes());
        out.extend_from_slice(&args[k.index]);
        out.extend_from_slice(format!("\r\n~{}\r\n", flags.len()).as_bytes());
        for f in flags {
            out.extend_from_slice(format!("+{f}\r\n").as_bytes());
        }
    }
    Some(out)
}

#[tokio::test]
async fn getkeys_and_getkeysandflags_answer_as_redis() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let served = known_commands(&redis).await;
    let mut lines: Vec<Vec<Vec<u8>>> = GETKEYS_LINES.iter().map(|l| words(l)).collect();
    lines.extend(
        generated_lines(&served)
            .into_iter()
            .map(|l| words(&String::from_utf8(l).unwrap())),
    );
    assert!(lines.len() > 300, "{} lines", lines.len());

    let mut diffs = Vec::new();
    let mut compared = 0;
    for resp3 in [false, true] {
        let mut theirs = RawConn::open_proto(&redis.endpoint(), resp3).await;
        let mut ours = RawConn::open_proto(&proxy.endpoint(), resp3).await;
        for line in &lines {
            let shown = {
                let name = String::from_utf8_lossy(&line[0]).to_ascii_lowercase();
                let full = match line.get(1) {
                    Some(sub) if row(&name).is_some_and(|s| s.dispatch == Dispatch::Container) => {
                        format!(
                            "{name}|{}",
                            String::from_utf8_lossy(sub).to_ascii_lowercase()
                        )
                    }
                    _ => name,
                };
                served.known.contains(&full) && served.shown(&full)
            };
            for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
                let mut request = vec![b"COMMAND".to_vec(), sub.as_bytes().to_vec()];
                request.extend(line.iter().cloned());
                let server = theirs.words(&request).await;
                let proxied = ours.words(&request).await;
                // A command sealcache does not serve is unknown to it, unless
                // GETKEYS itself lacks arguments.
                let expected = if shown || server.starts_with(b"-ERR wrong number of arguments") {
                    server.clone()
                } else {
                    b"-ERR Invalid command specified\r\n".to_vec()
                };
                compared += 1;
                if proxied != expected {
                    diffs.push(format!(
                        "{} COMMAND {sub} {}:\n  sealcache {}\n  expected  {}",
                        if resp3 { "RESP3" } else { "RESP2" },
                        String::from_utf8_lossy(&line.join(&b' ')).escape_debug(),
                        String::from_utf8_lossy(&proxied).escape_debug(),
                        String::from_utf8_lossy(&expected).escape_debug()
                    ));
                }
                // The library agrees with the server for every command,
                // served or not (the router will route rejected ones too).
                if resp3 && sub == "GETKEYSANDFLAGS" {
                    let server_keys = (!server.starts_with(b"-")).then(|| server.clone());
                    let library = library_keys(line)
                        .filter(|l| l != b"*0\r\n" || server_keys.as_deref() == Some(b"*0\r\n"));
                    if library != server_keys {
                        diffs.push(format!(
                            "keys::key_args {}:\n  library {:?}\n  server  {:?}",
                            String::from_utf8_lossy(&line.join(&b' ')).escape_debug(),
                            library.map(|l| String::from_utf8_lossy(&l).into_owned()),
                            server_keys.map(|l| String::from_utf8_lossy(&l).into_owned()),
                        ));
                    }
                }
            }
        }
    }
    assert!(compared > 1000, "{compared} replies compared");
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// Issue 12, criterion 6: introspection never carries a value upstream.
#[tokio::test]
async fn command_family_never_reaches_the_upstream() {
    let redis = upstream();
    let proxy = proxy(&redis);
    let secret = format!("secret-{}", random_password(16));
    let sentinel = format!("sentinel-{}", random_password(16));

    let mut monitor = RawConn::open_proto(&redis.endpoint(), false).await;
    assert_eq!(monitor.call_bytes(&[b"MONITOR"]).await, b"+OK\r\n");

    let mut client = RawConn::open_proto(&proxy.endpoint(), false).await;
    let getkeys = client
        .call_bytes(&[b"COMMAND", b"GETKEYS", b"SET", b"k", secret.as_bytes()])
        .await;
    assert_eq!(getkeys, b"*1\r\n$1\r\nk\r\n");
    let flags = client
        .call_bytes(&[
            b"COMMAND",
            b"GETKEYSANDFLAGS",
            b"SET",
            b"k",
            secret.as_bytes(),
            b"GET",
        ])
        .await;
    assert_eq!(
        flags,
        b"*1\r\n*2\r\n$1\r\nk\r\n*3\r\n+RW\r\n+access\r\n+update\r\n"
    );
    for line in [
        "COMMAND",
        "COMMAND INFO get",
        "COMMAND DOCS get",
        "COMMAND COUNT",
        "COMMAND LIST",
        "COMMAND HELP",
    ] {
        let reply = client.words(&words(line)).await;
        assert!(
            !reply.starts_with(b"-"),
            "{line}: {}",
            String::from_utf8_lossy(&reply)
        );
    }
    // Something that does reach the upstream, to know MONITOR has caught up.
    assert_eq!(
        client.call_bytes(&[b"EXISTS", sentinel.as_bytes()]).await,
        b":0\r\n"
    );

    let mut seen = Vec::new();
    loop {
        let line = String::from_utf8_lossy(&monitor.read().await.bytes).into_owned();
        let done = line.contains(&sentinel);
        seen.push(line);
        if done {
            break;
        }
    }
    let leaked: Vec<&String> = seen
        .iter()
        .filter(|l| l.contains(&secret) || l.to_ascii_lowercase().contains("\"command\""))
        .collect();
    assert!(
        leaked.is_empty(),
        "the upstream saw: {leaked:?}\nall: {seen:?}"
    );
}
