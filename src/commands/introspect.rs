//! The COMMAND family (COMMAND, COUNT, LIST, INFO, DOCS, GETKEYS,
//! GETKEYSANDFLAGS, HELP), answered by sealcache itself: from the command
//! table and from redis-server 7.0.15's own replies, stored in
//! `redis_commands.resp3` by `scripts/dev/gen_command_table.py`. Nothing
//! reaches the upstream, so GETKEYS never carries a plaintext value out, the
//! answer does not depend on which backend a route uses, and it is the same
//! bytes in RESP2 and RESP3 as redis-server would send.
//!
//! What is listed is what sealcache serves: rejected commands are left out,
//! admin commands appear only when `allowed_admin_commands` allows them, and
//! a container appears with the subcommands it serves (and not at all when
//! it serves none). Commands newer than Redis 7.0.15 (CLIENT SETINFO,
//! CLIENT NO-TOUCH, WAITAOF) are served but not listed, as 7.0.15 does not
//! know them. Entries come sorted by name where Redis uses its hash order.

use std::collections::HashMap;
use std::sync::LazyLock;

use bytes::{BufMut, Bytes, BytesMut};

use super::keys::key_args;
use super::spec::{CommandSpec, Policy};
use super::{CommandError, lookup, printable};
use crate::protocol::Protocol;
use crate::semantics::glob;

/// redis-server 7.0.15's RESP3 replies to `COMMAND INFO <all>`,
/// `COMMAND DOCS <all>` and `COMMAND HELP`, commands sorted by name.
static REDIS_REPLIES: &[u8] = include_bytes!("redis_commands.resp3");

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog::parse(REDIS_REPLIES));

/// Errors worded as redis-server 7.0 words them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntrospectError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("ERR Invalid command specified")]
    InvalidCommand,
    #[error("ERR The command has no key arguments")]
    NoKeyArguments,
    #[error("ERR Invalid number of arguments specified for command")]
    ArgumentCount,
    #[error("ERR Invalid arguments specified for command")]
    InvalidArguments,
    #[error("ERR syntax error")]
    Syntax,
}

/// Answers `args` (`COMMAND …`, name first) in the client's protocol.
/// `admin_allowed` tells whether an admin command (named as the table names
/// it, `CONFIG|SET`) is allowed by configuration, and so listed.
pub fn answer(
    args: &[Bytes],
    proto: Protocol,
    admin_allowed: &dyn Fn(&str) -> bool,
) -> Result<Bytes, IntrospectError> {
    let served = |spec: &CommandSpec| match spec.policy {
        Policy::Reject(_) => false,
        Policy::Admin => admin_allowed(spec.name),
        _ => true,
    };
    let view = View {
        catalog: &CATALOG,
        served: &served,
    };
    let mut out = Out::new(proto);
    view.answer(args, &mut out)?;
    Ok(out.buf.freeze())
}

/// One command of the catalog: slices of redis-server's replies.
struct Entry {
    spec: &'static CommandSpec,
    /// Its `COMMAND INFO` reply; for a container, up to its subcommand list.
    info: &'static [u8],
    /// Its `name => docs` pair in `COMMAND DOCS`; for a container, up to
    /// the value of its `subcommands` field (the last field).
    docs: &'static [u8],
    /// Subcommands, sorted by name (indices into `Catalog::entries`).
    subs: Vec<usize>,
    /// ACL categories without the `@`, for `COMMAND LIST FILTERBY ACLCAT`.
    categories: Vec<&'static [u8]>,
}

struct Catalog {
    entries: Vec<Entry>,
    /// Top-level commands, sorted by name.
    top: Vec<usize>,
    by_name: HashMap<&'static str, usize>,
    help: &'static [u8],
}

impl Catalog {
    /// Splits the stored replies. They are generated data, checked by the
    /// tests below: a malformed file is a build defect, hence the panics.
    fn parse(bytes: &'static [u8]) -> Catalog {
        let mut catalog = Catalog {
            entries: Vec::new(),
            top: Vec::new(),
            by_name: HashMap::new(),
            help: &[],
        };
        let info = Token::at(bytes, 0);
        assert_eq!(info.kind, b'*', "COMMAND INFO reply first");
        let mut pos = info.body;
        for _ in 0..info.len {
            let (index, end) = catalog.parse_info(bytes, pos);
            catalog.top.push(index);
            pos = end;
        }
        let docs = Token::at(bytes, pos);
        assert_eq!(docs.kind, b'%', "COMMAND DOCS reply second");
        pos = docs.body;
        for _ in 0..docs.len {
            pos = catalog.parse_docs(bytes, pos);
        }
        let help_end = skip(bytes, pos);
        assert_eq!(help_end, bytes.len(), "COMMAND HELP reply last");
        catalog.help = &bytes[pos..];
        catalog
    }

    /// One `COMMAND INFO` entry (and its subcommands) at `pos`.
    fn parse_info(&mut self, bytes: &'static [u8], pos: usize) -> (usize, usize) {
        let entry = Token::at(bytes, pos);
        assert!(
            entry.kind == b'*' && entry.len == 10,
            "an INFO entry has 10 fields"
        );
        let mut fields = Vec::with_capacity(10);
        let mut at = entry.body;
        for _ in 0..10 {
            fields.push(at);
            at = skip(bytes, at);
        }
        let end = at;
        let name = Token::at(bytes, fields[0]).bulk(bytes);
        let spec = row(name);
        let categories = Token::at(bytes, fields[6])
            .items(bytes)
            .map(|item| {
                let text = Token::at(bytes, item).line;
                text.strip_prefix(b"@").unwrap_or(text)
            })
            .collect();
        let subcommands = Token::at(bytes, fields[9]);
        let (info, subs) = if subcommands.kind == b'*' {
            let subs = subcommands
                .items(bytes)
                .map(|item| self.parse_info(bytes, item).0)
                .collect();
            (&bytes[pos..fields[9]], subs)
        } else {
            (&bytes[pos..end], Vec::new())
        };
        self.entries.push(Entry {
            spec,
            info,
            docs: &[],
            subs,
            categories,
        });
        let index = self.entries.len() - 1;
        let duplicate = self.by_name.insert(spec.name, index);
        assert!(duplicate.is_none(), "{} listed twice", spec.name);
        (index, end)
    }

    /// One `name => docs` pair of `COMMAND DOCS` (and its subcommands) at `pos`.
    fn parse_docs(&mut self, bytes: &'static [u8], pos: usize) -> usize {
        let name = Token::at(bytes, pos).bulk(bytes);
        let index = self.by_name[row(name).name];
        let docs_at = skip(bytes, pos);
        let docs = Token::at(bytes, docs_at);
        assert_eq!(docs.kind, b'%', "docs are a map");
        let mut at = docs.body;
        let mut head_end = None;
        for _ in 0..docs.len {
            let field = Token::at(bytes, at).bulk(bytes);
            let value = skip(bytes, at);
            if field == b"subcommands" {
                head_end = Some(value);
                let subs = Token::at(bytes, value);
                let mut sub = subs.body;
                for _ in 0..subs.len {
                    sub = self.parse_docs(bytes, sub);
                }
            }
            at = skip(bytes, value);
        }
        let end = at;
        if let Some(head_end) = head_end {
            assert_eq!(skip(bytes, head_end), end, "subcommands is the last field");
        }
        self.entries[index].docs = &bytes[pos..head_end.unwrap_or(end)];
        end
    }
}

/// The table row of a command as `COMMAND INFO` names it (`config|get`).
fn row(name: &[u8]) -> &'static CommandSpec {
    let found = match name.iter().position(|&b| b == b'|') {
        Some(bar) => lookup(&name[..bar], Some(&name[bar + 1..])),
        None => lookup(name, None),
    };
    found.unwrap_or_else(|| {
        panic!(
            "{} is in redis_commands.resp3 but has no table row: rerun scripts/dev/gen_command_table.py",
            String::from_utf8_lossy(name)
        )
    })
}

/// The catalog as one client may see it.
struct View<'a> {
    catalog: &'a Catalog,
    served: &'a dyn Fn(&CommandSpec) -> bool,
}

impl View<'_> {
    fn answer(&self, args: &[Bytes], out: &mut Out) -> Result<(), IntrospectError> {
        let Some(sub) = args.get(1) else {
            // COMMAND: every command's info.
            return self.info(&[], out);
        };
        let spec =
            lookup(b"COMMAND", Some(sub)).ok_or_else(|| CommandError::UnknownSubcommand {
                container: "COMMAND".into(),
                sub: printable(sub),
            })?;
        if !spec.arity_ok(args.len()) {
            return Err(CommandError::Arity(spec.name.to_ascii_lowercase()).into());
        }
        match spec.name {
            "COMMAND|COUNT" => {
                let count = self.visible(&self.catalog.top).count();
                out.int(count as i64);
            }
            "COMMAND|LIST" => self.list(&args[2..], out)?,
            "COMMAND|INFO" => self.info(&args[2..], out)?,
            "COMMAND|DOCS" => self.docs(&args[2..], out),
            "COMMAND|GETKEYS" => self.getkeys(&args[2..], false, out)?,
            "COMMAND|GETKEYSANDFLAGS" => self.getkeys(&args[2..], true, out)?,
            "COMMAND|HELP" => out.resp3(self.catalog.help),
            other => unreachable!("{other} has a row but no answer"),
        }
        Ok(())
    }

    /// Whether the client may see entry `index`: a container when it serves
    /// at least one subcommand.
    fn shown(&self, index: usize) -> bool {
        let entry = &self.catalog.entries[index];
        (self.served)(entry.spec)
            && (entry.subs.is_empty() || entry.subs.iter().any(|&s| self.shown(s)))
    }

    fn visible<'s>(&'s self, indices: &'s [usize]) -> impl Iterator<Item = usize> + 's {
        indices.iter().copied().filter(|&i| self.shown(i))
    }

    /// Redis's `lookupCommandBySds`: `name` or `container|sub`, any case.
    fn by_name(&self, name: &[u8]) -> Option<usize> {
        let mut parts = name.split(|&b| b == b'|');
        let base = parts.next()?;
        let spec = match (parts.next(), parts.next()) {
            (None, _) => lookup(base, None)?,
            (Some(sub), None) => {
                let container = self.catalog.by_name.get(lookup(base, None)?.name)?;
                if self.catalog.entries[*container].subs.is_empty() {
                    return None;
                }
                lookup(base, Some(sub))?
            }
            _ => return None,
        };
        self.catalog
            .by_name
            .get(spec.name)
            .copied()
            .filter(|&i| self.shown(i))
    }

    /// Redis's `lookupCommand` on a command line: the subcommand when the
    /// first word is a container and a second word follows.
    fn by_args(&self, argv: &[Bytes]) -> Option<usize> {
        let base = lookup(argv.first()?, None)?;
        let base = *self.catalog.by_name.get(base.name)?;
        let index = match argv.get(1) {
            Some(sub) if !self.catalog.entries[base].subs.is_empty() => {
                let spec = lookup(&argv[0], Some(sub))?;
                *self.catalog.by_name.get(spec.name)?
            }
            _ => base,
        };
        self.shown(index).then_some(index)
    }

    fn put_info(&self, index: usize, out: &mut Out) {
        let entry = &self.catalog.entries[index];
        out.resp3(entry.info);
        if !entry.subs.is_empty() {
            let subs: Vec<usize> = self.visible(&entry.subs).collect();
            out.array(subs.len());
            for sub in subs {
                self.put_info(sub, out);
            }
        }
    }

    fn put_docs(&self, index: usize, out: &mut Out) {
        let entry = &self.catalog.entries[index];
        out.resp3(entry.docs);
        if !entry.subs.is_empty() {
            let subs: Vec<usize> = self.visible(&entry.subs).collect();
            out.map(subs.len());
            for sub in subs {
                self.put_docs(sub, out);
            }
        }
    }

    /// COMMAND INFO [name …]: every command, or each name's info or null.
    fn info(&self, names: &[Bytes], out: &mut Out) -> Result<(), IntrospectError> {
        if names.is_empty() {
            let all: Vec<usize> = self.visible(&self.catalog.top).collect();
            out.array(all.len());
            for index in all {
                self.put_info(index, out);
            }
            return Ok(());
        }
        out.array(names.len());
        for name in names {
            match self.by_name(name) {
                Some(index) => self.put_info(index, out),
                None => out.null(),
            }
        }
        Ok(())
    }

    /// COMMAND DOCS [name …]: a map of every command, or of the names found.
    fn docs(&self, names: &[Bytes], out: &mut Out) {
        let found: Vec<usize> = if names.is_empty() {
            self.visible(&self.catalog.top).collect()
        } else {
            names.iter().filter_map(|n| self.by_name(n)).collect()
        };
        out.map(found.len());
        for index in found {
            self.put_docs(index, out);
        }
    }

    /// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN glob].
    fn list(&self, options: &[Bytes], out: &mut Out) -> Result<(), IntrospectError> {
        let filter: Box<dyn Fn(&Entry) -> bool> = match options {
            [] => Box::new(|_| true),
            [word, kind, arg] if super::keys::word_is(word, "filterby") => {
                let kind = |k: &str| super::keys::word_is(kind, k);
                if kind("module") {
                    // No modules are loaded: nothing belongs to one.
                    Box::new(|_| false)
                } else if kind("aclcat") {
                    let arg = arg.clone();
                    Box::new(move |e: &Entry| {
                        e.categories.iter().any(|c| {
                            super::keys::word_is(&arg, std::str::from_utf8(c).unwrap_or(""))
                        })
                    })
                } else if kind("pattern") {
                    // Redis matches without case: lower-casing both sides is the same.
                    let pattern = arg.to_ascii_lowercase();
                    Box::new(move |e: &Entry| {
                        glob::matches(&pattern, e.spec.name.to_ascii_lowercase().as_bytes())
                    })
                } else {
                    return Err(IntrospectError::Syntax);
                }
            }
            _ => return Err(IntrospectError::Syntax),
        };
        let mut names = Vec::new();
        for top in self.visible(&self.catalog.top) {
            for index in std::iter::once(top).chain(self.visible(&self.catalog.entries[top].subs)) {
                let entry = &self.catalog.entries[index];
                if filter(entry) {
                    names.push(entry.spec.name.to_ascii_lowercase());
                }
            }
        }
        out.array(names.len());
        for name in names {
            out.bulk(name.as_bytes());
        }
        Ok(())
    }

    /// COMMAND GETKEYS / GETKEYSANDFLAGS <command line>.
    fn getkeys(
        &self,
        argv: &[Bytes],
        with_flags: bool,
        out: &mut Out,
    ) -> Result<(), IntrospectError> {
        let index = self.by_args(argv).ok_or(IntrospectError::InvalidCommand)?;
        let spec = self.catalog.entries[index].spec;
        if !spec.keys.any() {
            return Err(IntrospectError::NoKeyArguments);
        }
        let argc = argv.len() as i64;
        let arity = i64::from(spec.arity);
        if (arity > 0 && arity != argc) || argc < -arity {
            return Err(IntrospectError::ArgumentCount);
        }
        let found = key_args(&spec.keys, argv);
        if found.is_empty() && !spec.keys.no_mandatory_keys {
            return Err(IntrospectError::InvalidArguments);
        }
        out.array(found.len());
        for key in found {
            if with_flags {
                out.array(2);
                out.bulk(&argv[key.index]);
                out.set(key.flags.names().count());
                for name in key.flags.names() {
                    out.simple(name);
                }
            } else {
                out.bulk(&argv[key.index]);
            }
        }
        Ok(())
    }
}

/// A reply being written in the client's protocol.
struct Out {
    resp3: bool,
    buf: BytesMut,
}

impl Out {
    fn new(proto: Protocol) -> Out {
        Out {
            resp3: proto == Protocol::Resp3,
            buf: BytesMut::with_capacity(256),
        }
    }

    fn header(&mut self, kind: u8, n: usize) {
        self.buf.put_u8(kind);
        self.buf.put_slice(itoa::Buffer::new().format(n).as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    fn array(&mut self, n: usize) {
        self.header(b'*', n);
    }

    fn set(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'~', n)
        } else {
            self.header(b'*', n)
        }
    }

    fn map(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'%', n)
        } else {
            self.header(b'*', 2 * n)
        }
    }

    fn null(&mut self) {
        self.buf
            .put_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }

    fn int(&mut self, n: i64) {
        self.buf.put_u8(b':');
        self.buf.put_slice(itoa::Buffer::new().format(n).as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    fn bulk(&mut self, data: &[u8]) {
        self.header(b'$', data.len());
        self.buf.put_slice(data);
        self.buf.put_slice(b"\r\n");
    }

    fn simple(&mut self, text: &str) {
        self.buf.put_u8(b'+');
        self.buf.put_slice(text.as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    /// Copies stored RESP3 (whole values or a prefix of one), rendered as
    /// redis-server renders the same reply for a RESP2 client.
    fn resp3(&mut self, bytes: &[u8]) {
        if self.resp3 {
            self.buf.put_slice(bytes);
            return;
        }
        let mut pos = 0;
        while pos < bytes.len() {
            let token = Token::at(bytes, pos);
            match token.kind {
                b'%' => self.header(b'*', 2 * token.len),
                b'~' => self.header(b'*', token.len),
                b'_' => self.buf.put_slice(b"$-1\r\n"),
                _ => self.buf.put_slice(&bytes[pos..token.body]),
            }
            pos = token.body;
            if token.kind == b'$' {
                self.buf.put_slice(&bytes[pos..pos + token.len + 2]);
                pos += token.len + 2;
            }
        }
    }
}

/// One RESP3 header line of the stored replies.
struct Token<'a> {
    kind: u8,
    /// The header's text after the type byte.
    line: &'a [u8],
    /// Element count of an aggregate (pairs for a map), length of a bulk.
    len: usize,
    /// Where the header ends.
    body: usize,
}

impl<'a> Token<'a> {
    fn at(bytes: &'a [u8], pos: usize) -> Token<'a> {
        let eol = pos
            + bytes[pos..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("a RESP line ends with CRLF");
        let kind = bytes[pos];
        let line = &bytes[pos + 1..eol];
        let len = match kind {
            b'*' | b'%' | b'~' | b'$' => std::str::from_utf8(line)
                .ok()
                .and_then(|n| n.parse().ok())
                .expect("a RESP length"),
            b'+' | b':' | b'_' => 0,
            other => panic!(
                "unexpected RESP3 type {:?} in redis_commands.resp3",
                other as char
            ),
        };
        Token {
            kind,
            line,
            len,
            body: eol + 2,
        }
    }

    /// A bulk string's bytes.
    fn bulk(&self, bytes: &'a [u8]) -> &'a [u8] {
        assert_eq!(self.kind, b'$', "a bulk string");
        &bytes[self.body..self.body + self.len]
    }

    /// Where each element of an array or set starts.
    fn items(&self, bytes: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        let mut at = self.body;
        (0..self.len).map(move |_| {
            let item = at;
            at = skip(bytes, at);
            item
        })
    }
}

/// Where the value at `pos` ends.
fn skip(bytes: &[u8], pos: usize) -> usize {
    let token = Token::at(bytes, pos);
    match token.kind {
        b'$' => token.body + token.len + 2,
        b'*' | b'~' => (0..token.len).fold(token.body, |at, _| skip(bytes, at)),
        b'%' => (0..2 * token.len).fold(token.body, |at, _| skip(bytes, at)),
        _ => token.body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::table::COMMANDS;

    /// Commands sealcache serves that Redis 7.0.15 does not know.
    const NEWER_THAN_CATALOG: &[&str] = &["CLIENT|NO-TOUCH", "CLIENT|SETINFO", "WAITAOF"];

    fn everything(_: &CommandSpec) -> bool {
        true
    }

    fn run(words: &[&str], proto: Protocol, served: &dyn Fn(&CommandSpec) -> bool) -> String {
        let args: Vec<Bytes> = words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let view = View {
            catalog: &CATALOG,
            served,
        };
        let mut out = Out::new(proto);
        match view.answer(&args, &mut out) {
            Ok(()) => String::from_utf8(out.buf.to_vec()).unwrap(),
            Err(e) => format!("-{e}\r\n"),
        }
    }

    #[test]
    fn every_row_is_in_the_catalog_and_back() {
        let catalog = &*CATALOG;
        for spec in COMMANDS {
            assert_eq!(
                catalog.by_name.contains_key(spec.name),
                !NEWER_THAN_CATALOG.contains(&spec.name),
                "{}",
                spec.name
            );
        }
        assert_eq!(catalog.by_name.len(), catalog.entries.len());
        assert!(catalog.entries.iter().all(|e| !e.docs.is_empty()));
    }

    /// With nothing hidden, the parts reassemble into the stored replies.
    #[test]
    fn unfiltered_replies_are_the_stored_bytes() {
        let info = run(&["COMMAND", "INFO"], Protocol::Resp3, &everything);
        let docs = run(&["COMMAND", "DOCS"], Protocol::Resp3, &everything);
        let help = run(&["COMMAND", "HELP"], Protocol::Resp3, &everything);
        assert_eq!(
            format!("{info}{docs}{help}").as_bytes(),
            REDIS_REPLIES,
            "COMMAND INFO + DOCS + HELP"
        );
        assert_eq!(run(&["COMMAND"], Protocol::Resp3, &everything), info);
    }

    #[test]
    fn resp2_renders_maps_and_sets_as_arrays() {
        let get = run(&["COMMAND", "INFO", "get"], Protocol::Resp2, &everything);
        assert!(get.starts_with("*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n"));
        assert!(!get.contains('~') && !get.contains('%'));
        assert_eq!(
            run(&["COMMAND", "INFO", "nosuch"], Protocol::Resp2, &everything),
            "*1\r\n$-1\r\n"
        );
        assert_eq!(
            run(&["COMMAND", "INFO", "nosuch"], Protocol::Resp3, &everything),
            "*1\r\n_\r\n"
        );
        assert_eq!(
            run(&["COMMAND", "DOCS", "nosuch"], Protocol::Resp2, &everything),
            "*0\r\n"
        );
    }

    #[test]
    fn lookups_follow_redis() {
        let info = |name: &str| run(&["COMMAND", "INFO", name], Protocol::Resp3, &everything);
        assert!(info("Config|GET").contains("config|get"));
        for missing in ["", "get|x", "config|", "|get", "config|get|x", "nosuch"] {
            assert_eq!(info(missing), "*1\r\n_\r\n", "{missing:?}");
        }
        // Redis 7.0.15 does not know it, so COMMAND does not either.
        assert_eq!(info("waitaof"), "*1\r\n_\r\n");
    }

    #[test]
    fn hidden_commands_are_left_out() {
        let served = |spec: &CommandSpec| !matches!(spec.policy, Policy::Reject(_) | Policy::Admin);
        assert_eq!(
            run(
                &["COMMAND", "INFO", "eval", "flushall"],
                Protocol::Resp3,
                &served
            ),
            "*2\r\n_\r\n_\r\n"
        );
        assert_eq!(
            run(
                &["COMMAND", "GETKEYS", "eval", "s", "1", "k"],
                Protocol::Resp3,
                &served
            ),
            "-ERR Invalid command specified\r\n"
        );
        let config = run(&["COMMAND", "INFO", "config"], Protocol::Resp3, &served);
        assert!(config.contains("config|get") && !config.contains("config|set"));
        let list = run(&["COMMAND", "LIST"], Protocol::Resp3, &served);
        assert!(list.contains("$10\r\nconfig|get\r\n") && !list.contains("config|set"));
        assert!(!list.contains("$4\r\neval\r\n"));
        let count: usize = run(&["COMMAND", "COUNT"], Protocol::Resp3, &served)
            .trim_start_matches(':')
            .trim_end()
            .parse()
            .unwrap();
        let top = COMMANDS
            .iter()
            .filter(|c| !c.name.contains('|') && CATALOG.by_name.contains_key(c.name))
            .count();
        assert!(count < top && count > 150, "{count} of {top}");
    }

    #[test]
    fn getkeys_replies_and_errors() {
        let getkeys = |words: &[&str]| {
            let mut line = vec!["COMMAND", "GETKEYSANDFLAGS"];
            line.extend_from_slice(words);
            run(&line, Protocol::Resp3, &everything)
        };
        assert_eq!(
            getkeys(&["set", "k", "v", "get"]),
            "*1\r\n*2\r\n$1\r\nk\r\n~3\r\n+RW\r\n+access\r\n+update\r\n"
        );
        assert_eq!(getkeys(&["eval", "s", "0"]), "*0\r\n");
        assert_eq!(
            getkeys(&["nosuch", "a"]),
            "-ERR Invalid command specified\r\n"
        );
        assert_eq!(
            getkeys(&["ping", "a"]),
            "-ERR The command has no key arguments\r\n"
        );
        assert_eq!(
            getkeys(&["get", "a", "b"]),
            "-ERR Invalid number of arguments specified for command\r\n"
        );
        assert_eq!(
            getkeys(&["zunion", "5", "a", "b"]),
            "-ERR Invalid arguments specified for command\r\n"
        );
        assert_eq!(
            run(&["COMMAND", "GETKEYS", "get"], Protocol::Resp3, &everything),
            "-ERR wrong number of arguments for 'command|getkeys' command\r\n"
        );
        assert_eq!(
            run(&["COMMAND", "bogus"], Protocol::Resp3, &everything),
            "-ERR unknown subcommand 'bogus'. Try COMMAND HELP.\r\n"
        );
    }

    #[test]
    fn list_filters() {
        let list = |words: &[&str]| {
            let mut line = vec!["COMMAND", "LIST"];
            line.extend_from_slice(words);
            run(&line, Protocol::Resp3, &everything)
        };
        assert_eq!(
            list(&["FILTERBY", "pattern", "CONFIG|G*"]),
            "*1\r\n$10\r\nconfig|get\r\n"
        );
        assert!(list(&["filterby", "aclcat", "HyperLogLog"]).contains("pfadd"));
        assert_eq!(list(&["filterby", "aclcat", "nosuch"]), "*0\r\n");
        assert_eq!(list(&["filterby", "module", "x"]), "*0\r\n");
        assert_eq!(list(&["filterby", "other", "x"]), "-ERR syntax error\r\n");
        assert_eq!(list(&["filterby", "pattern"]), "-ERR syntax error\r\n");
    }
}
