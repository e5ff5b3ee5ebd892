//! Renders `docs/commands.md` from the command table, so the user-facing list
//! of what sealcache does to each command is never written twice.
//! Regenerate with `SEALCACHE_UPDATE_DOCS=1 cargo test --lib commands_md_is_current`.

use std::fmt::Write as _;

use super::spec::{CommandSpec, Dispatch, Emulation, Policy, ValueRule};
use super::table::{COMMANDS, note};
use crate::backend::capability::BackendKind;

/// What a value rule encrypts, for a reader who knows the command's syntax.
pub fn describe(rule: ValueRule) -> &'static str {
    use ValueRule::*;
    match rule {
        StringSet => "the value; with `GET`, the old value in the reply",
        StringValueAt(_) => "the value argument",
        StringSwap => "the new value, and the old value in the reply",
        StringGet => "the value in the reply",
        MGet => "each value in the reply",
        MSet => "each value, bound to the key before it",
        HashSet => "each field's value, bound to key and field (field names stay plaintext)",
        HashGet => "the field's value in the reply",
        HashMGet => "each field's value in the reply",
        HashGetAll => "the values in the reply (field names stay plaintext)",
        HashVals => {
            "the values in the reply; sent to Redis as `HGETALL` because each value is bound to its field"
        }
        HashRandField => "with `WITHVALUES`, the values in the reply (field names stay plaintext)",
        HashScan => "the values in the reply (`MATCH` applies to the plaintext field names)",
        ListPush => "each element",
        ListSet => "the new element",
        ListReply => "the element or elements in the reply",
        ListKeyedPop => "the element in the `[key, element]` reply",
        ListMultiPop => "the elements in the `[key, [element …]]` reply",
        MembersFrom(_) => "every member argument, deterministically, so equality still works",
        MemberAt(_) => "the member argument, deterministically",
        GeoDist => "both member arguments, deterministically",
        MemberReply => {
            "the members in the reply (any scores, distances or coordinates stay plaintext)"
        }
        GeoSearch => {
            "the center member (`FROMMEMBER`, or `GEORADIUSBYMEMBER`'s member argument) and the members in the reply"
        }
        SetScan => "the members in the reply",
        ZAdd => "each member, deterministically (scores stay plaintext)",
        RangeStore => "nothing (ranks and scores work on ciphertext); `BYLEX` is refused",
        ZScan => "the members in the reply (scores stay plaintext)",
        ZKeyedPop => "the member in the `[key, member, score]` reply",
        ZMultiPop => "the members in the `[key, [[member, score] …]]` reply",
        GeoAdd => "each member, deterministically (coordinates stay plaintext)",
        XAdd => "each field's value, bound to key and field (field names and IDs stay plaintext)",
        XEntries => "the field values of the entries in the reply",
        XRead => "the field values of each stream's entries in the reply",
        XAutoClaim => "the field values of the claimed entries in the reply",
        XInfoStream => "the field values of the entries inside the reply",
        Publish => "the message, bound to the channel; subscribers receive it decrypted",
    }
}

/// What sealcache does in place of the upstream for an emulated command.
pub fn describe_emulation(emulation: Emulation) -> &'static str {
    use Emulation::*;
    match emulation {
        Session => "answered by sealcache from the client's session",
        IncrBy(_) => "decrypts the integer, adds, and writes it back encrypted",
        IncrByFloat => "decrypts the number, adds, and writes it back encrypted",
        HashIncrBy => "decrypts the field's integer, adds, and writes it back encrypted",
        HashIncrByFloat => "decrypts the field's number, adds, and writes it back encrypted",
        Append => "decrypts the value, appends, and writes it back encrypted",
        Strlen => "decrypts the value and replies with its length",
        GetRange => "decrypts the value and replies with the requested range",
        SetRange => "decrypts the value, overwrites the range, and writes it back encrypted",
        HashStrlen => "decrypts the field's value and replies with its length",
        Rename { .. } => "re-encrypts the value for the new key name, keeping the TTL",
        Copy => "re-encrypts a copy of the value for the destination key, keeping the TTL",
        Rank { .. } => {
            "reads the member's score and the members sharing it, and ranks it among them by plaintext"
        }
    }
}

/// Where the command runs, as the documentation names it.
fn dispatch_label(spec: &CommandSpec) -> &'static str {
    match (spec.dispatch, spec.policy) {
        (Dispatch::Shared, Policy::Emulate(_)) => "pinned (emulation)",
        (Dispatch::Shared, _) => "shared",
        (Dispatch::Local(_), _) => "local",
        (Dispatch::Transaction(_), _) => "pinned (transaction)",
        (Dispatch::Blocking, _) => "blocking",
        (Dispatch::BlockingWithOption, _) => "blocking with `BLOCK`",
        (Dispatch::Subscribe(_), _) => "Pub/Sub",
        (Dispatch::Container, _) => "container",
    }
}

/// `CLIENT|SETNAME` as a user types it.
fn display(name: &str) -> String {
    name.replace('|', " ")
}

/// A table cell: pipes would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn with_note(text: &str, spec: &CommandSpec) -> String {
    match note(spec.name) {
        Some(n) if text.is_empty() => cell(n),
        Some(n) => format!("{}; {}", cell(text), cell(n)),
        None => cell(text),
    }
}

const INTRO: &str = "\
sealcache gives every command of Redis 7 exactly one policy. This page is
generated from the command table (`src/commands/table.rs`); do not edit it by
hand. Regenerate it with
`SEALCACHE_UPDATE_DOCS=1 cargo test --lib commands_md_is_current`.

## Policies

- **pass** — the command carries keys and metadata only and is forwarded
  unchanged (DEL, EXISTS, EXPIRE, TTL, TYPE, SCAN…).
- **encrypt** — the table knows which arguments and which parts of the reply
  are values: arguments are encrypted before they leave sealcache, reply parts
  are decrypted before the client sees them.
- **emulate** — the command cannot run on ciphertext, so sealcache performs it
  itself: it reads and decrypts, computes, and writes back encrypted inside an
  optimistic transaction (WATCH/MULTI/EXEC, retried on conflict until
  `command_timeout_ms`) on a dedicated upstream connection, so concurrent
  clients never lose an update. One key has one such read-modify-write at a
  time in a proxy; the commands that wait on it are applied together in the
  next, in arrival order, each with its own reply. Inside MULTI, the ones that
  compute one value (INCR, APPEND, HINCRBY, STRLEN…) are computed at EXEC.
  Session commands (AUTH, HELLO, SELECT, CLIENT SETNAME…) are answered from
  the client's session.
- **reject** — the command cannot be made correct on encrypted data. The
  client gets `-ERR sealcache: <COMMAND> is not available on encrypted data:
  <reason>` and the connection goes on.
- **admin** — the command reconfigures or wipes the upstream. It is rejected
  unless its name (as written in the tables below, with `|` between a command
  and its subcommand, e.g. `CONFIG|SET`) is listed in `allowed_admin_commands`.

## What is encrypted

- **Values** — string values, hash field values, stream field values, list
  elements and Pub/Sub messages — are encrypted with AES-256-GCM and a random
  nonce, bound to where they live: the key (and the hash or stream field), the
  channel for messages, and the namespace for list elements (so LMOVE and
  BLMOVE can move them between lists). A value copied elsewhere fails to
  decrypt and is never returned.
- **Members** — set, sorted-set and geo members — are encrypted
  deterministically (AES-256-GCM-SIV), bound to the namespace only, so equal
  members give equal ciphertexts in every key: SISMEMBER, SREM, ZSCORE,
  SINTER/SUNION/SDIFF, ZUNION/ZINTER and their `STORE` forms keep working.
  Their order does not survive: Redis orders members of equal score (and
  members at one geo position) by ciphertext, and would match SSCAN/ZSCAN
  patterns against ciphertext. sealcache restores plaintext order in replies
  and applies `MATCH` itself after decrypting; the notes below say exactly
  where a partial range or a pop can still pick other members of one score
  than Redis would. Lexicographic ranges are rejected.
- **Plaintext** — key names, hash and stream field names, sorted-set scores,
  geo coordinates, stream IDs, channel names, TTLs, lengths and counts.

## Dispatch

- **shared** — multiplexed over the pipelined upstream pool.
- **pinned** — on a dedicated upstream connection: transactions
  (MULTI/EXEC/WATCH) until they end, emulated commands while sealcache
  performs them.
- **blocking** — on a dedicated connection while it blocks; *blocking with
  `BLOCK`* only when that option is given.
- **Pub/Sub** — every subscriber shares one upstream connection, fanned out
  by sealcache.
- **local** — answered by sealcache itself.
- **container** — the subcommand's row decides.

## Backend kinds

The last columns of each table say whether a route whose backend is of that
kind (`backends: {name: {type: …}}`, see `docs/backends.md`) runs the
command: `yes`, or `no` — the client then gets `-ERR sealcache: <COMMAND> is
not supported by the <kind> backend '<name>'`. Commands sealcache answers
itself (local) work on every kind; `·` marks a container, whose subcommands
decide. `XREAD … BLOCK` and `XREADGROUP … BLOCK` also need a kind with
blocking commands when `BLOCK` is given.

## COMMAND, COMMAND INFO, DOCS, COUNT, LIST, GETKEYS

sealcache answers the whole COMMAND family itself, in RESP2 and RESP3, with
the bytes redis-server 7.0.15 would send (its replies are stored in
`src/commands/redis_commands.resp3`); nothing is sent to the upstream, so
`COMMAND GETKEYS SET k <value>` never carries a value out of the proxy.
What COMMAND lists is what sealcache serves:

- **reject** commands are left out: COMMAND, COMMAND INFO, DOCS, COUNT and
  LIST do not list them, `COMMAND INFO <name>` answers null for them and
  `COMMAND GETKEYS` answers `Invalid command specified`, as for an unknown
  command.
- **admin** commands appear only when `allowed_admin_commands` allows them.
- a container (CONFIG, CLIENT, SCRIPT…) lists only the subcommands it
  serves, and is left out when it serves none.
- commands newer than Redis 7.0.15 that sealcache serves (CLIENT SETINFO,
  CLIENT NO-TOUCH, WAITAOF) are not listed, as 7.0.15 does not know them.
- commands and subcommands come sorted by name (redis-server lists them in
  its hash order, which changes from run to run).

Inside MULTI, COMMAND is refused like every other local command.
";

/// The whole of `docs/commands.md`.
pub fn render_markdown() -> String {
    let count = |f: fn(&Policy) -> bool| COMMANDS.iter().filter(|c| f(&c.policy)).count();
    let mut out = String::from("# Commands\n\n");
    out.push_str(INTRO);

    let _ = write!(
        out,
        "\n## Summary\n\n\
         | Policy | Commands |\n|---|---:|\n\
         | pass | {} |\n| encrypt | {} |\n| emulate | {} |\n| reject | {} |\n| admin | {} |\n\
         | **total** | **{}** |\n",
        count(|p| matches!(p, Policy::Pass)),
        count(|p| matches!(p, Policy::Encrypt(_))),
        count(|p| matches!(p, Policy::Emulate(_))),
        count(|p| matches!(p, Policy::Reject(_))),
        count(|p| matches!(p, Policy::Admin)),
        COMMANDS.len(),
    );

    section(
        &mut out,
        "Encrypted",
        "Arguments and reply parts that are values; everything else passes unchanged.",
        ["Command", "What is encrypted", "Dispatch"],
        |c| match c.policy {
            Policy::Encrypt(rule) => Some(with_note(describe(rule), c)),
            _ => None,
        },
    );
    section(
        &mut out,
        "Emulated",
        "Performed by sealcache; replies and errors are worded as redis-server words them.",
        ["Command", "What sealcache does", "Dispatch"],
        |c| match c.policy {
            Policy::Emulate(e) => Some(with_note(describe_emulation(e), c)),
            _ => None,
        },
    );
    section(
        &mut out,
        "Rejected",
        "Reply: `-ERR sealcache: <COMMAND> is not available on encrypted data: <reason>`.",
        ["Command", "Reason", "Dispatch"],
        |c| match c.policy {
            Policy::Reject(reason) => Some(with_note(reason, c)),
            _ => None,
        },
    );
    section(
        &mut out,
        "Admin",
        "Rejected unless the entry in the second column is listed in `allowed_admin_commands`.",
        ["Command", "Allow with", "Dispatch"],
        |c| match c.policy {
            Policy::Admin => Some(with_note(&format!("`{}`", c.name), c)),
            _ => None,
        },
    );
    section(
        &mut out,
        "Passed through",
        "Keys and metadata only: forwarded unchanged.",
        ["Command", "Notes", "Dispatch"],
        |c| match c.policy {
            Policy::Pass if c.dispatch == Dispatch::Container => {
                Some(with_note("see its subcommands", c))
            }
            Policy::Pass => Some(with_note("", c)),
            _ => None,
        },
    );
    out
}

/// The backend kinds a route can use, one column each.
const KINDS: [BackendKind; 3] = BackendKind::ALL;

/// Whether a route of `kind` runs the command, as a table cell.
fn support_cell(kind: BackendKind, spec: &CommandSpec) -> &'static str {
    if spec.dispatch == Dispatch::Container {
        "·"
    } else if kind.supports(spec) {
        "yes"
    } else {
        "no"
    }
}

/// One `## title` section: a table of the rows `detail` returns text for,
/// with a column per backend kind.
fn section(
    out: &mut String,
    title: &str,
    lead: &str,
    header: [&str; 3],
    detail: impl Fn(&CommandSpec) -> Option<String>,
) {
    let kinds: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
    let _ = write!(
        out,
        "\n## {title}\n\n{lead}\n\n| {} | {} | {} | {} |\n|---|---|---|{}\n",
        header[0],
        header[1],
        header[2],
        kinds.join(" | "),
        ":-:|".repeat(kinds.len()),
    );
    for c in COMMANDS {
        if let Some(text) = detail(c) {
            let support: Vec<&str> = KINDS.iter().map(|k| support_cell(*k, c)).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&display(c.name)),
                text,
                dispatch_label(c),
                support.join(" | ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/commands.md");

    #[test]
    fn commands_md_is_current() {
        let expected = render_markdown();
        if std::env::var_os("SEALCACHE_UPDATE_DOCS").is_some_and(|v| v == "1") {
            std::fs::write(PATH, &expected).expect("write docs/commands.md");
            return;
        }
        let actual = std::fs::read_to_string(PATH).unwrap_or_default();
        if actual != expected {
            let line = actual
                .lines()
                .zip(expected.lines())
                .position(|(a, e)| a != e)
                .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
            panic!(
                "docs/commands.md is stale (first difference at line {}); regenerate it with\n\
                 \n    SEALCACHE_UPDATE_DOCS=1 cargo test --lib commands_md_is_current\n\n\
                 and commit the result",
                line + 1
            );
        }
    }

    #[test]
    fn every_row_is_rendered_once() {
        let md = render_markdown();
        for c in COMMANDS {
            let row = format!("\n| {} |", display(c.name));
            assert_eq!(md.matches(&row).count(), 1, "{}", c.name);
        }
    }

    #[test]
    fn cells_never_break_the_table() {
        let md = render_markdown();
        for table in md.split("\n\n").filter(|b| b.starts_with("| ")) {
            let columns = table.lines().next().unwrap().matches('|').count();
            for line in table.lines() {
                let unescaped = line.replace("\\|", "");
                assert_eq!(unescaped.matches('|').count(), columns, "{line}");
            }
        }
    }
}
