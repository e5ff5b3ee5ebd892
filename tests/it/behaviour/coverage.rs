//! Nothing is skipped silently: every command a route supports has a script
//! line that compares it with redis-server.
//!
//! "Supported" is read from the command table: a row the route's backend
//! serves (`Backend::serves`, with the capability it needs), that the table
//! does not reject on encrypted data and that the suite's proxies allow
//! (admin commands: FLUSHDB and FLUSHALL only). Containers count through
//! their subcommands.
//!
//! - **memory**: every such row. The memory kind serves a closed list, all
//!   of which the issue requires to match Redis.
//! - **redis**: every such row in the command groups the scripts cover
//!   ([`COVERED_GROUPS`], as redis-server's `COMMAND DOCS` names them). The
//!   other groups are tested elsewhere or not at all through a route:
//!   connection and server commands are sealcache's session and admin
//!   surface (`proxy.rs`, `introspection.rs`, `admin.rs`); geo and
//!   HyperLogLog are refused (`ciphertext_order.rs`);
//!   scripting, bitmap and cluster are rejected outright.
//!
//! A line counts when the route compares it (not a refusal) and the table
//! parses it (its arity is right), whatever the reply.

use std::collections::{BTreeMap, BTreeSet};

use sealcache::commands::{Command, Dispatch, Policy, table};

use super::route::{ALLOWED_ADMIN, ROUTES, Route};
use super::script::{Action, Expect, expect, lines, runs};
use super::scripts::ALL;
use crate::support::twin::{Conn, Proto};
use crate::support::{Certs, RedisServer, random_password};

/// redis-server's command groups whose commands the scripts cover on a Redis route.
pub const COVERED_GROUPS: &[&str] = &[
    "string",
    "generic",
    "hash",
    "list",
    "set",
    "sorted-set",
    "stream",
    "pubsub",
    "transactions",
];

/// The rows `route` supports (see the module docs), by name.
fn supported(route: Route, groups: &BTreeMap<String, String>) -> BTreeSet<&'static str> {
    table::COMMANDS
        .iter()
        .filter(|spec| spec.dispatch != Dispatch::Container)
        .filter(|spec| !matches!(spec.policy, Policy::Reject(_)))
        .filter(|spec| spec.policy != Policy::Admin || ALLOWED_ADMIN.contains(&spec.name))
        .filter(|spec| (route.serves)(spec))
        .filter(|spec| spec.needs().is_none_or(|c| (route.capabilities)().has(c)))
        .filter(|spec| match route.groups {
            None => true,
            Some(covered) => groups
                .get(spec.name)
                .is_some_and(|g| covered.contains(&g.as_str())),
        })
        .map(|spec| spec.name)
        .collect()
}

/// The rows some script line compares on `route`.
fn compared(route: Route) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    for script in ALL.iter().flat_map(|s| s.iter()) {
        if !runs(route, script) {
            continue;
        }
        for line in lines(script.text) {
            let counts = !matches!(line.action, Action::Read { .. } | Action::RedisOnly);
            if counts
                && expect(route, &line) == Expect::Same
                && let Ok(cmd) = Command::parse(line.args.clone())
            {
                seen.insert(cmd.spec.name);
            }
        }
    }
    seen
}

/// Each command's group, from redis-server's `COMMAND DOCS` (subcommands
/// as `CONTAINER|SUB`, upper case, as the table names them).
async fn groups() -> BTreeMap<String, String> {
    let redis = RedisServer::start_tls(&Certs::generate(), &random_password(24));
    let mut conn = Conn::open(&redis.endpoint(), Proto::Resp3).await;
    let docs = conn.call(&[b"COMMAND", b"DOCS"]).await;
    let mut groups = BTreeMap::new();
    let mut stack = vec![docs];
    while let Some(map) = stack.pop() {
        for pair in map.items.chunks(2) {
            let name = String::from_utf8_lossy(pair[0].text().unwrap_or_default()).to_uppercase();
            for field in pair[1].items.chunks(2) {
                match field[0].text().unwrap_or_default() {
                    b"group" => {
                        let group = String::from_utf8_lossy(field[1].text().unwrap_or_default());
                        groups.insert(name.clone(), group.into_owned());
                    }
                    b"subcommands" => stack.push(field[1].clone()),
                    _ => {}
                }
            }
        }
    }
    assert!(
        groups.len() > 200,
        "COMMAND DOCS listed {} commands",
        groups.len()
    );
    groups
}

#[tokio::test]
async fn every_supported_command_has_a_compared_line() {
    let groups = groups().await;
    let mut missing = Vec::new();
    for &route in ROUTES {
        let supported = supported(route, &groups);
        let compared = compared(route);
        assert!(
            supported.len() > 100,
            "{route:?} supports {}",
            supported.len()
        );
        let uncovered: Vec<_> = supported.difference(&compared).collect();
        if !uncovered.is_empty() {
            missing.push(format!("{route:?}: {uncovered:?}"));
        }
    }
    assert!(
        missing.is_empty(),
        "supported commands that no script line compares with redis-server:\n{}",
        missing.join("\n")
    );
}
