//! Commands as sealcache sees them: parsed arguments plus the row of the
//! command table that classifies them.

pub mod doc;
pub mod introspect;
pub mod keys;
pub mod spec;
pub mod table;

use bytes::Bytes;

pub use keys::{KeyArg, KeyFlags};
pub use spec::{
    CommandSpec, Delta, Dispatch, Emulation, Extras, Follow, KeyPositions, Keyspace, Local, Nulls,
    Policy, Subscription, Syntax, Transaction, ValueRule,
};

/// One client command: its arguments (the name first, as sent) and its table row.
#[derive(Debug, Clone)]
pub struct Command {
    pub args: Vec<Bytes>,
    pub spec: &'static CommandSpec,
}

/// Why a command could not be classified; each maps to Redis's own error text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    Unknown { name: String, args: String },
    #[error("ERR unknown subcommand '{sub}'. Try {container} HELP.")]
    UnknownSubcommand { container: String, sub: String },
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
}

impl Command {
    /// Classifies `args` against the table: unknown commands, unknown
    /// subcommands and wrong arity are errors, as Redis reports them.
    pub fn parse(args: Vec<Bytes>) -> Result<Command, CommandError> {
        let name = args.first().map(|n| n.as_ref()).unwrap_or_default();
        let Some(mut spec) = lookup(name, None) else {
            return Err(CommandError::Unknown {
                name: printable(name),
                args: args_preview(&args[1.min(args.len())..]),
            });
        };
        if spec.dispatch == Dispatch::Container && args.len() >= 2 {
            spec = lookup(name, Some(&args[1])).ok_or_else(|| CommandError::UnknownSubcommand {
                container: spec.name.to_string(),
                sub: printable(&args[1]),
            })?;
        }
        if !spec.arity_ok(args.len()) {
            return Err(CommandError::Arity(spec.name.to_ascii_lowercase()));
        }
        Ok(Command { args, spec })
    }

    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Argument `i` (0 is the command name).
    pub fn arg(&self, i: usize) -> Option<&Bytes> {
        self.args.get(i)
    }

    /// Whether argument `i` equals `word`, ignoring ASCII case.
    pub fn arg_is(&self, i: usize, word: &str) -> bool {
        self.args
            .get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    }

    /// Whether any argument after the name equals `word`, ignoring case.
    pub fn has_word(&self, word: &str) -> bool {
        self.args[1..]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    }

    /// The key arguments (index and flags), exactly as redis-server 7.0
    /// finds them, movable keys included. What a router reads to place a
    /// command by its keys.
    pub fn key_args(&self) -> Vec<KeyArg> {
        keys::key_args(&self.spec.keys, &self.args)
    }

    /// How a null reply is rendered for RESP2 clients (the table's column,
    /// and for LPOP/RPOP whether a count was given).
    pub fn null_style(&self) -> crate::protocol::reply::NullStyle {
        use crate::protocol::reply::NullStyle;
        match self.spec.extras.nulls {
            Nulls::Bulk => NullStyle::Bulk,
            Nulls::Array => NullStyle::ArrayAtTop,
            Nulls::ArrayInElements => NullStyle::ArrayInElements,
            Nulls::ArrayWhenCounted if self.args.len() > 2 => NullStyle::ArrayAtTop,
            Nulls::ArrayWhenCounted => NullStyle::Bulk,
        }
    }

    /// The keys themselves, in [`Command::key_args`] order.
    pub fn keys(&self) -> impl Iterator<Item = &Bytes> {
        self.key_args().into_iter().map(|k| &self.args[k.index])
    }
}

/// Finds the table row for a command name (and subcommand), ignoring case.
pub fn lookup(name: &[u8], sub: Option<&[u8]>) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 64];
    let len = name.len() + sub.map_or(0, |s| s.len() + 1);
    if len > buf.len() {
        return None;
    }
    buf[..name.len()].copy_from_slice(name);
    if let Some(sub) = sub {
        buf[name.len()] = b'|';
        buf[name.len() + 1..len].copy_from_slice(sub);
    }
    let key = &mut buf[..len];
    key.make_ascii_uppercase();
    BY_NAME.get(&*key).copied()
}

/// The row of the command `args` names (name first), its subcommand's for a
/// container; `None` for what [`Command::parse`] refuses by name.
pub fn row_of(args: &[Bytes]) -> Option<&'static CommandSpec> {
    let name = args.first()?;
    let spec = lookup(name, None)?;
    match (spec.dispatch, args.get(1)) {
        (Dispatch::Container, Some(sub)) => lookup(name, Some(sub)),
        _ => Some(spec),
    }
}

/// Every row by its name: looked up once per command, so a hash, not a search.
static BY_NAME: std::sync::LazyLock<
    std::collections::HashMap<&'static [u8], &'static CommandSpec>,
> = std::sync::LazyLock::new(|| {
    table::COMMANDS
        .iter()
        .map(|spec| (spec.name.as_bytes(), spec))
        .collect()
});

/// The name as Redis quotes it in errors (lossy UTF-8, truncated).
fn printable(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    s.chars().take(128).collect()
}

fn args_preview(args: &[Bytes]) -> String {
    let mut out = String::new();
    for a in args {
        if out.len() >= 128 {
            break;
        }
        out.push('\'');
        out.push_str(&printable(a));
        out.push_str("' ");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(words: &[&str]) -> Result<Command, CommandError> {
        Command::parse(
            words
                .iter()
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in table::COMMANDS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn lookup_ignores_case_and_resolves_subcommands() {
        assert_eq!(cmd(&["get", "k"]).unwrap().name(), "GET");
        assert_eq!(
            cmd(&["client", "setname", "x"]).unwrap().name(),
            "CLIENT|SETNAME"
        );
        assert_eq!(
            cmd(&["client", "bogus"]).unwrap_err(),
            CommandError::UnknownSubcommand {
                container: "CLIENT".into(),
                sub: "bogus".into()
            }
        );
    }

    #[test]
    fn arity_and_unknown_commands_use_redis_wording() {
        assert_eq!(
            cmd(&["get"]).unwrap_err().to_string(),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            cmd(&["nosuch", "a"]).unwrap_err().to_string(),
            "ERR unknown command 'nosuch', with args beginning with: 'a' "
        );
    }

    #[test]
    fn key_args_follow_the_key_specs() {
        let keys = |words: &[&str]| {
            let cmd = cmd(words).unwrap();
            cmd.keys().cloned().collect::<Vec<_>>()
        };
        assert_eq!(keys(&["mset", "a", "1", "b", "2"]), ["a", "b"]);
        assert_eq!(keys(&["blpop", "a", "b", "0"]), ["a", "b"]);
        // Movable keys: the legacy positions (0, 0, 0) miss them.
        assert_eq!(keys(&["zunion", "2", "a", "b"]), ["a", "b"]);
        assert!(keys(&["ping"]).is_empty());
    }
}
