//! Which arguments of a command are keys, exactly as redis-server 7.0 finds
//! them (`getKeysFromCommandWithSpecs` in src/db.c): from the command's key
//! specifications, or from its key procedure where the specifications are
//! incomplete or their flags depend on the arguments (SORT … STORE, MIGRATE …
//! KEYS, SET … GET). A router asks [`key_args`] (or `Command::key_args`)
//! where each key is and how the command uses it.
//!
//! Argument indices count the command name as 0 (a subcommand's key indices
//! count the container name too: `XGROUP CREATE key …` has its key at 2).
//! Redis compares option words as C strings: a word ends at its first NUL
//! byte. That is kept here, so the answer is the server's to the byte.

use bytes::Bytes;

/// Key flags as Redis names them in `COMMAND INFO` and `COMMAND GETKEYSANDFLAGS`.
pub mod flags {
    pub const NONE: u16 = 0;
    /// Read-only access to the key's value.
    pub const RO: u16 = 1 << 0;
    /// Read and write.
    pub const RW: u16 = 1 << 1;
    /// Overwrite: the old value is not read.
    pub const OW: u16 = 1 << 2;
    /// Removes the key.
    pub const RM: u16 = 1 << 3;
    pub const ACCESS: u16 = 1 << 4;
    pub const UPDATE: u16 = 1 << 5;
    pub const INSERT: u16 = 1 << 6;
    pub const DELETE: u16 = 1 << 7;
    /// Not a key (a Pub/Sub shard channel): ignored when keys are extracted.
    pub const NOT_KEY: u16 = 1 << 8;
    /// The specification misses some keys: the key procedure decides.
    pub const INCOMPLETE: u16 = 1 << 9;
    /// The flags depend on the arguments: the key procedure decides.
    pub const VARIABLE_FLAGS: u16 = 1 << 10;
}
use flags::*;

/// Names in the order Redis prints them (`addReplyFlagsForKeyArgs`).
const FLAG_NAMES: [(u16, &str); 11] = [
    (RO, "RO"),
    (RW, "RW"),
    (OW, "OW"),
    (RM, "RM"),
    (ACCESS, "access"),
    (UPDATE, "update"),
    (INSERT, "insert"),
    (DELETE, "delete"),
    (NOT_KEY, "not_key"),
    (INCOMPLETE, "incomplete"),
    (VARIABLE_FLAGS, "variable_flags"),
];

/// A set of [`flags`].
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyFlags(u16);

impl KeyFlags {
    pub const fn bits(self) -> u16 {
        self.0
    }

    pub const fn contains(self, flag: u16) -> bool {
        self.0 & flag == flag
    }

    /// The flag names in Redis's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        FLAG_NAMES
            .into_iter()
            .filter(move |(bit, _)| self.0 & bit != 0)
            .map(|(_, name)| name)
    }
}

impl std::fmt::Debug for KeyFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// Where the search for a specification's keys starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginSearch {
    /// At this argument.
    Index(i32),
    /// After this word, searched from `startfrom` (< 0: backwards from the end).
    Keyword(&'static str, i32),
    /// Only the key procedure knows.
    Unknown,
}

/// Which arguments from the start are keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindKeys {
    /// `Range(lastkey, keystep, limit)`: keys up to `lastkey` past the start
    /// (< 0: from the end; with `limit`, up to 1/limit of the rest).
    Range(i32, i32, i32),
    /// `KeyNum(keynumidx, firstkey, keystep)`: the key count is at
    /// start + keynumidx, the first key at start + firstkey.
    KeyNum(i32, i32, i32),
    /// Only the key procedure knows.
    Unknown,
}

/// One of Redis 7's key specifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub flags: KeyFlags,
    pub begin: BeginSearch,
    pub find: FindKeys,
}

/// A key specification, as the table writes it.
pub const fn ks(flags: u16, begin: BeginSearch, find: FindKeys) -> KeySpec {
    KeySpec {
        flags: KeyFlags(flags),
        begin,
        find,
    }
}

/// Redis's `getkeys_proc` of a command: used when the specifications fail
/// (incomplete, or a count that does not parse) or when their flags vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysProc {
    /// `genericGetKeys`: the key count at `count`, keys from `first`, and a
    /// destination key at `store` (0: none). Keys get no flags.
    NumKeys {
        store: u8,
        count: u8,
        first: u8,
    },
    Sort,
    SortRo,
    Migrate,
    GeoRadius,
    XRead,
    Set,
    Bitfield,
}

/// Everything Redis knows about a command's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    pub specs: &'static [KeySpec],
    pub proc: Option<KeysProc>,
    /// A call without keys is valid (EVAL with 0 keys): Redis's `no_mandatory_keys`.
    pub no_mandatory_keys: bool,
}

/// A row's keys, as the table writes them.
pub const fn keys(specs: &'static [KeySpec]) -> Keys {
    Keys {
        specs,
        proc: None,
        no_mandatory_keys: false,
    }
}

impl Keys {
    pub const fn proc(mut self, proc: KeysProc) -> Keys {
        self.proc = Some(proc);
        self
    }

    pub const fn no_mandatory_keys(mut self) -> Keys {
        self.no_mandatory_keys = true;
        self
    }

    /// Whether the command can have keys at all (Redis's `doesCommandHaveKeys`).
    pub fn any(&self) -> bool {
        self.proc.is_some() || self.specs.iter().any(|s| !s.flags.contains(NOT_KEY))
    }
}

/// One key argument: where it is and how the command uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyArg {
    /// Index into the arguments (0 is the command name).
    pub index: usize,
    pub flags: KeyFlags,
}

/// The key arguments of `args` (name first) for a command with `keys`, in
/// the order Redis reports them. Empty when the command has no keys or its
/// arguments are malformed where the keys are (Redis then replies with a
/// syntax error when the command runs).
pub fn key_args(keys: &Keys, args: &[Bytes]) -> Vec<KeyArg> {
    let has_keyspec = keys.specs.iter().any(|s| !s.flags.contains(NOT_KEY));
    let has_varflags = keys.specs.iter().any(|s| s.flags.contains(VARIABLE_FLAGS));
    if has_keyspec
        && !has_varflags
        && let Some(found) = from_specs(keys.specs, args)
    {
        return found;
    }
    match keys.proc {
        Some(proc) => from_proc(proc, args),
        None => Vec::new(),
    }
}

/// `getKeysUsingKeySpecs`: `None` where Redis returns -1 (a specification
/// that is unknown, incomplete, or does not fit the arguments).
fn from_specs(specs: &[KeySpec], args: &[Bytes]) -> Option<Vec<KeyArg>> {
    let argc = args.len() as i32;
    let mut found = Vec::new();
    for spec in specs {
        if spec.flags.contains(NOT_KEY) {
            continue;
        }
        let mut first = match spec.begin {
            BeginSearch::Index(pos) => pos,
            BeginSearch::Keyword(word, startfrom) => {
                match find_keyword(args, word, startfrom) {
                    Some(i) => i + 1,
                    // No keyword, no keys from this specification.
                    None => continue,
                }
            }
            BeginSearch::Unknown => return None,
        };
        let (last, step) = match spec.find {
            FindKeys::Range(lastkey, keystep, limit) => {
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, keystep)
            }
            FindKeys::KeyNum(keynumidx, firstkey, keystep) => {
                // Redis checks keynumidx alone against argc; an index past the
                // end reads nothing here (in C it would read past argv).
                let count = usize::try_from(first + keynumidx)
                    .ok()
                    .and_then(|i| args.get(i))
                    .filter(|_| keynumidx < argc)
                    .and_then(|a| string2ll(a))
                    .filter(|n| *n >= 0)?;
                first += firstkey;
                // C: `first + (int)numkeys - 1`, truncating the count to 32 bits.
                (first.wrapping_add(count as i32).wrapping_sub(1), keystep)
            }
            FindKeys::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            found.push(KeyArg {
                index: i as usize,
                flags: spec.flags,
            });
            i += step.max(1);
        }
        if spec.flags.contains(INCOMPLETE) {
            return None;
        }
    }
    Some(found)
}

/// The index of `word` searched as Redis does: forwards from `startfrom` to
/// the second-to-last argument, or backwards from `argc + startfrom` to 2.
fn find_keyword(args: &[Bytes], word: &str, startfrom: i32) -> Option<i32> {
    let argc = args.len() as i32;
    let (start, end) = if startfrom > 0 {
        (startfrom, argc - 1)
    } else {
        (argc + startfrom, 1)
    };
    let mut i = start;
    while i != end {
        if i >= argc || i < 1 {
            return None;
        }
        if word_is(&args[i as usize], word) {
            return Some(i);
        }
        i = if start <= end { i + 1 } else { i - 1 };
    }
    None
}

fn from_proc(proc: KeysProc, args: &[Bytes]) -> Vec<KeyArg> {
    let argc = args.len();
    let key = |index: usize, flags: u16| KeyArg {
        index,
        flags: KeyFlags(flags),
    };
    match proc {
        KeysProc::NumKeys {
            store,
            count,
            first,
        } => {
            let (store, first) = (store as usize, first as usize);
            let Some(num) = args.get(count as usize).map(|a| atoi(a)) else {
                return Vec::new();
            };
            // Redis: no keys when the command will fail with a syntax error.
            if num < 1 || i64::from(num) > (argc as i64 - first as i64) {
                return Vec::new();
            }
            let mut found: Vec<KeyArg> = (0..num as usize).map(|i| key(first + i, NONE)).collect();
            if store != 0 {
                found.push(key(store, NONE));
            }
            found
        }
        KeysProc::SortRo => vec![key(1, RO | ACCESS)],
        KeysProc::Sort => {
            let mut found = vec![key(1, RO | ACCESS)];
            let mut store = None;
            // Options take no argument unless listed; the last STORE wins.
            let mut i = 2;
            while i < argc {
                let arg = &args[i];
                if word_is(arg, "limit") {
                    i += 2;
                } else if word_is(arg, "get") || word_is(arg, "by") {
                    i += 1;
                } else if word_is(arg, "store") && i + 1 < argc {
                    store = Some(i + 1);
                }
                i += 1;
            }
            found.extend(store.map(|i| key(i, OW | UPDATE)));
            found
        }
        KeysProc::Migrate => {
            let (mut first, mut num) = (3, 1);
            if argc > 6 {
                let mut i = 6;
                while i < argc {
                    let arg = &args[i];
                    if word_is(arg, "keys") {
                        if args[3].is_empty() {
                            first = i + 1;
                            num = argc - first;
                        } else {
                            // A key and KEYS together: MIGRATE reports the syntax error.
                            num = 0;
                        }
                        break;
                    }
                    if word_is(arg, "auth") {
                        i += 1;
                    } else if word_is(arg, "auth2") {
                        i += 2;
                    }
                    i += 1;
                }
            }
            (first..first + num)
                .map(|i| key(i, RW | ACCESS | DELETE))
                .collect()
        }
        KeysProc::GeoRadius => {
            let mut stored = None;
            let mut i = 5;
            while i < argc {
                let arg = &args[i];
                if (word_is(arg, "store") || word_is(arg, "storedist")) && i + 1 < argc {
                    stored = Some(i + 1);
                    i += 1;
                }
                i += 1;
            }
            std::iter::once(key(1, NONE))
                .chain(stored.map(|i| key(i, NONE)))
                .collect()
        }
        KeysProc::XRead => {
            let mut streams = None;
            let mut i = 1;
            while i < argc {
                let arg = &args[i];
                if word_is(arg, "block") || word_is(arg, "count") {
                    i += 1;
                } else if word_is(arg, "group") {
                    i += 2;
                } else if word_is(arg, "noack") {
                } else if word_is(arg, "streams") {
                    streams = Some(i);
                    break;
                } else {
                    break;
                }
                i += 1;
            }
            let Some(streams) = streams else {
                return Vec::new();
            };
            let rest = argc - streams - 1;
            if rest == 0 || !rest.is_multiple_of(2) {
                return Vec::new();
            }
            (streams + 1..streams + 1 + rest / 2)
                .map(|i| key(i, NONE))
                .collect()
        }
        KeysProc::Set => {
            let get = args.iter().skip(3).any(|a| word_is(a, "get"));
            let flags = if get {
                RW | ACCESS | UPDATE
            } else {
                OW | UPDATE
            };
            vec![key(1, flags)]
        }
        KeysProc::Bitfield => {
            let mut readonly = true;
            let mut i = 2;
            while i < argc {
                let remaining = argc - i - 1;
                let arg = &args[i];
                if word_is(arg, "get") && remaining >= 2 {
                    i += 2;
                } else if (word_is(arg, "set") || word_is(arg, "incrby")) && remaining >= 3 {
                    readonly = false;
                    break;
                } else if word_is(arg, "overflow") && remaining >= 1 {
                    i += 1;
                } else {
                    // A syntax error: safer to assume a write, as Redis does.
                    readonly = false;
                    break;
                }
                i += 1;
            }
            let flags = if readonly {
                RO | ACCESS
            } else {
                RW | ACCESS | UPDATE
            };
            vec![key(1, flags)]
        }
    }
}

/// `strcasecmp(arg, word) == 0`: the argument read as a C string, up to its
/// first NUL byte.
pub(crate) fn word_is(arg: &[u8], word: &str) -> bool {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    arg[..end].eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's `string2ll`: an optional '-', digits without a leading zero (so
/// "0" but not "-0" or "007"), nothing else, within i64.
fn string2ll(arg: &[u8]) -> Option<i64> {
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    let canonical = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || arg == b"0");
    if !canonical || arg.len() > 20 {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// C's `atoi` as glibc does it: `(int) strtol(arg, NULL, 10)` on the
/// argument read as a C string. Leading white space and a sign are skipped,
/// parsing stops at the first non-digit, overflow saturates to the `long`
/// range, and the `int` cast keeps the low 32 bits.
fn atoi(arg: &[u8]) -> i32 {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    let mut rest = &arg[..end];
    while let [b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r', tail @ ..] = rest {
        rest = tail;
    }
    let negative = rest.first() == Some(&b'-');
    if let [b'+' | b'-', tail @ ..] = rest {
        rest = tail;
    }
    let mut value: i64 = 0;
    for &b in rest.iter().take_while(|b| b.is_ascii_digit()) {
        let digit = i64::from(b - b'0');
        value = match value.checked_mul(10).and_then(|v| {
            if negative {
                v.checked_sub(digit)
            } else {
                v.checked_add(digit)
            }
        }) {
            Some(v) => v,
            None if negative => i64::MIN,
            None => i64::MAX,
        };
        if value == i64::MIN || value == i64::MAX {
            break;
        }
    }
    value as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::lookup;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    /// The key arguments of a command line, with their flag names.
    fn found(line: &str) -> Vec<(String, String)> {
        let args = args(&line.split(' ').collect::<Vec<_>>());
        let mut spec = lookup(&args[0], None).unwrap();
        if args.len() > 1
            && let Some(sub) = lookup(&args[0], Some(&args[1]))
        {
            spec = sub;
        }
        key_args(&spec.keys, &args)
            .into_iter()
            .map(|k| {
                let names: Vec<&str> = k.flags.names().collect();
                (
                    String::from_utf8_lossy(&args[k.index]).into_owned(),
                    names.join(" "),
                )
            })
            .collect()
    }

    fn keys_of(line: &str) -> Vec<String> {
        found(line).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn fixed_positions_and_flags() {
        assert_eq!(found("GET k"), [("k".into(), "RO access".into())]);
        assert_eq!(keys_of("MSET a 1 b 2"), ["a", "b"]);
        assert_eq!(keys_of("BLPOP a b 0"), ["a", "b"]);
        assert_eq!(keys_of("XGROUP CREATE s g $"), ["s"]);
        assert!(keys_of("PING").is_empty());
        // Shard channels are not keys.
        assert!(keys_of("SPUBLISH ch msg").is_empty());
    }

    #[test]
    fn numkeys_commands() {
        assert_eq!(keys_of("ZUNIONSTORE d 2 a b WEIGHTS 1 2"), ["d", "a", "b"]);
        assert_eq!(keys_of("ZINTER 2 a b"), ["a", "b"]);
        assert_eq!(keys_of("LMPOP 2 a b LEFT"), ["a", "b"]);
        assert_eq!(keys_of("BLMPOP 0 2 a b LEFT"), ["a", "b"]);
        assert_eq!(keys_of("EVAL s 2 a b x"), ["a", "b"]);
        // A count that does not fit: no keys (the command fails when it runs).
        assert!(keys_of("ZUNION 3 a b").is_empty());
        assert!(keys_of("ZUNION x a b").is_empty());
        assert!(keys_of("EVAL s 0").is_empty());
        // 2^32 + 1 truncates to 1, in the C cast Redis makes.
        assert_eq!(keys_of("ZUNION 4294967297 a b"), ["a"]);
    }

    #[test]
    fn procedures_for_incomplete_or_variable_specs() {
        assert_eq!(
            found("SET k v GET"),
            [("k".into(), "RW access update".into())]
        );
        assert_eq!(found("SET k v EX 10"), [("k".into(), "OW update".into())]);
        assert_eq!(
            found("BITFIELD k GET u8 0"),
            [("k".into(), "RO access".into())]
        );
        assert_eq!(keys_of("SORT k BY w LIMIT 0 1 STORE d"), ["k", "d"]);
        assert_eq!(keys_of("SORT k STORE d1 STORE d2"), ["k", "d2"]);
        assert_eq!(keys_of("MIGRATE h 1 k 0 5000"), ["k"]);
        assert_eq!(
            keys_of("MIGRATE h 1  0 5000 AUTH2 u p KEYS a b"),
            ["a", "b"]
        );
        assert_eq!(keys_of("XREAD COUNT 2 STREAMS a b 0 0"), ["a", "b"]);
        assert_eq!(keys_of("XREADGROUP GROUP g c STREAMS a 0"), ["a"]);
        assert_eq!(keys_of("GEORADIUS k 0 0 1 km STORE d"), ["k", "d"]);
    }

    #[test]
    fn words_are_c_strings() {
        assert!(word_is(b"STORE\0junk", "store"));
        assert!(!word_is(b"STORES", "store"));
        assert_eq!(atoi(b"  +12abc"), 12);
        assert_eq!(atoi(b"-3"), -3);
        assert_eq!(atoi(b"99999999999999999999"), -1);
        assert_eq!(string2ll(b"007"), None);
        assert_eq!(string2ll(b"-0"), None);
        assert_eq!(string2ll(b"-12"), Some(-12));
    }
}
