//! The command table against a real redis-server: every command and
//! subcommand the server lists has a row with the server's arity, legacy key
//! positions and key specifications.

use std::collections::BTreeSet;

use crate::support::resp::{Node, Raw, parse, text};
use crate::support::{Certs, RedisServer, random_password};
use sealcache::commands::table::COMMANDS;
use sealcache::commands::{CommandSpec, keys, lookup};

/// Rows for commands newer than the server under test (Redis 7.2 commands
/// that real clients send to any server); absent from an older `COMMAND`.
const NEWER_THAN_SERVER: &[&str] = &["CLIENT|NO-TOUCH", "CLIENT|SETINFO", "WAITAOF"];

fn upstream() -> RedisServer {
    RedisServer::start_tls(&Certs::generate(), &random_password(32))
}

// ---- the table and the server ---------------------------------------------------------------

fn row(name: &str) -> Option<&'static CommandSpec> {
    match name.split_once('|') {
        Some((container, sub)) => lookup(container.as_bytes(), Some(sub.as_bytes())),
        None => lookup(name.as_bytes(), None),
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

/// Lower-case full names the server lists.
struct Served {
    known: BTreeSet<String>,
}

async fn known_commands(redis: &RedisServer) -> Served {
    let mut con = Raw::open(&redis.endpoint(), false).await;
    let list = con.call(&[b"COMMAND", b"LIST"]).await;
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
    let mut con = Raw::open(&redis.endpoint(), true).await;

    let mut mismatched = Vec::new();
    let mut missing = Vec::new();
    for name in &served.known {
        let Some(spec) = row(name) else {
            missing.push(name.clone());
            continue;
        };
        let buf = con.call(&[b"COMMAND", b"INFO", name.as_bytes()]).await;
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
