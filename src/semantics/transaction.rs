//! What the server-side commands of one transaction do to the values its
//! emulated commands read. sealcache reads those keys before the
//! transaction runs, then follows them through the queue in order: a
//! command the table marks with a [`Follow`] changes the value as
//! redis-server would (from its own arguments, which sealcache has in
//! plaintext); an emulated command computes on the value it finds there.

use std::collections::HashMap;

use bytes::Bytes;

use super::expiry::{SetCondition, StringOptions, TtlChange};
use super::number::parse_i64;
use crate::commands::Follow;

/// A value as sealcache knows it: the plaintext, or why it cannot be read
/// (a value that failed to decrypt; the emulated command answers that).
pub type Value = Result<Vec<u8>, String>;

/// What one key holds, as far as a transaction's emulated commands need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    Absent,
    String(Value),
    /// A hash: the fields the transaction's emulated commands read and the
    /// fields set since (`None` or not there: the field is missing); other
    /// fields are not known, nor needed.
    Hash(HashMap<Bytes, Option<Value>>),
    /// A list, set, sorted set or stream.
    Other,
}

impl KeyState {
    fn is_string_or_absent(&self) -> bool {
        matches!(self, KeyState::Absent | KeyState::String(_))
    }

    fn is_hash_or_absent(&self) -> bool {
        matches!(self, KeyState::Absent | KeyState::Hash(_))
    }
}

/// Whether sealcache can follow what `follow`'s command (arguments `args`,
/// name first) does to its keys: checked when an emulated command on one of
/// them is queued after it.
pub fn can_follow(follow: Follow, args: &[Bytes]) -> bool {
    match follow {
        Follow::Unknown | Follow::Everything => false,
        // A non-positive amount deletes the key.
        Follow::Expire => args
            .get(2)
            .and_then(|a| parse_i64(a))
            .is_some_and(|n| n > 0),
        _ => true,
    }
}

/// Applies a followed command (`args`, name first) to `state`, the state
/// of its key `key` (one of the command's keys), as redis-server applies
/// it: a command that fails there (wrong type, a syntax error) changes
/// nothing. `now_ms` decides SET's EXAT/PXAT in the past (the key is gone).
pub fn follow(follow: Follow, args: &[Bytes], key: &[u8], state: &mut KeyState, now_ms: i64) {
    let plain = |i: usize| args.get(i).map(|v| Ok(v.to_vec()));
    match follow {
        Follow::Set => {
            let Ok(options) = StringOptions::parse_set(&args[3..]) else {
                return;
            };
            let Some(value) = plain(2) else { return };
            if options.ttl.deadline(now_ms, "set").is_err() {
                return;
            }
            if options.get && !state.is_string_or_absent() {
                return;
            }
            let exists = *state != KeyState::Absent;
            let applies = match options.condition {
                SetCondition::Always => true,
                SetCondition::IfAbsent => !exists,
                SetCondition::IfPresent => exists,
            };
            if applies {
                let expired = matches!(options.ttl, TtlChange::At { .. })
                    && options
                        .ttl
                        .deadline(now_ms, "set")
                        .ok()
                        .flatten()
                        .is_some_and(|at| at <= now_ms);
                *state = if expired {
                    KeyState::Absent
                } else {
                    KeyState::String(value)
                };
            }
        }
        Follow::SetIfAbsent => {
            if *state == KeyState::Absent
                && let Some(value) = plain(2)
            {
                *state = KeyState::String(value);
            }
        }
        Follow::SetWithExpiry => {
            if args
                .get(2)
                .and_then(|a| parse_i64(a))
                .is_some_and(|n| n > 0)
                && let Some(value) = plain(3)
            {
                *state = KeyState::String(value);
            }
        }
        Follow::GetSet => {
            if state.is_string_or_absent()
                && let Some(value) = plain(2)
            {
                *state = KeyState::String(value);
            }
        }
        Follow::GetDel => {
            if state.is_string_or_absent() {
                *state = KeyState::Absent;
            }
        }
        Follow::Delete => *state = KeyState::Absent,
        Follow::MSet => {
            if args.len().is_multiple_of(2) {
                return; // wrong number of arguments: nothing set
            }
            for pair in args[1..].chunks(2) {
                if pair[0] == key {
                    *state = KeyState::String(Ok(pair[1].to_vec()));
                }
            }
        }
        Follow::HashSet | Follow::HashSetIfAbsent => {
            let if_absent = follow == Follow::HashSetIfAbsent;
            if !args.len().is_multiple_of(2) || !state.is_hash_or_absent() {
                return; // wrong number of arguments, or WRONGTYPE
            }
            let mut fields = match std::mem::replace(state, KeyState::Absent) {
                KeyState::Hash(fields) => fields,
                _ => HashMap::new(),
            };
            // A field the map lacks is missing (every field an emulated
            // command reads was read, or set here).
            for pair in args[2..].chunks(2) {
                let present = matches!(fields.get(&pair[0]), Some(Some(_)));
                if !(if_absent && present) {
                    fields.insert(pair[0].clone(), Some(Ok(pair[1].to_vec())));
                }
            }
            *state = KeyState::Hash(fields);
        }
        Follow::Expire | Follow::Keep | Follow::Unknown | Follow::Everything => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantics::words;

    fn string(v: &str) -> KeyState {
        KeyState::String(Ok(v.as_bytes().to_vec()))
    }

    fn after(f: Follow, line: &str, mut state: KeyState) -> KeyState {
        follow(f, &words(line), b"k", &mut state, 1_000_000);
        state
    }

    #[test]
    fn set_follows_its_conditions_and_errors() {
        assert_eq!(after(Follow::Set, "SET k 5", KeyState::Other), string("5"));
        assert_eq!(
            after(Follow::Set, "SET k 5 NX", string("1")),
            string("1"),
            "NX on an existing key"
        );
        assert_eq!(
            after(Follow::Set, "SET k 5 XX", KeyState::Absent),
            KeyState::Absent
        );
        assert_eq!(
            after(Follow::Set, "SET k 5 XX EX 10", string("1")),
            string("5")
        );
        assert_eq!(after(Follow::Set, "SET k 5 EX 0", string("1")), string("1"));
        assert_eq!(
            after(Follow::Set, "SET k 5 BOGUS", string("1")),
            string("1")
        );
        assert_eq!(
            after(Follow::Set, "SET k 5 GET", KeyState::Other),
            KeyState::Other,
            "SET … GET on a list is WRONGTYPE"
        );
        assert_eq!(
            after(Follow::Set, "SET k 5 PXAT 10", string("1")),
            KeyState::Absent,
            "a deadline in the past deletes"
        );
    }

    #[test]
    fn other_string_writes() {
        assert_eq!(
            after(Follow::SetIfAbsent, "SETNX k 2", string("1")),
            string("1")
        );
        assert_eq!(
            after(Follow::SetIfAbsent, "SETNX k 2", KeyState::Absent),
            string("2")
        );
        assert_eq!(
            after(Follow::SetWithExpiry, "SETEX k 0 2", string("1")),
            string("1")
        );
        assert_eq!(
            after(Follow::SetWithExpiry, "SETEX k 9 2", string("1")),
            string("2")
        );
        assert_eq!(
            after(Follow::GetSet, "GETSET k 2", KeyState::Other),
            KeyState::Other
        );
        assert_eq!(
            after(Follow::GetDel, "GETDEL k", string("1")),
            KeyState::Absent
        );
        assert_eq!(
            after(Follow::Delete, "DEL a k", string("1")),
            KeyState::Absent
        );
        assert_eq!(
            after(Follow::MSet, "MSET k 1 a 2 k 3", KeyState::Other),
            string("3")
        );
        assert_eq!(after(Follow::MSet, "MSET k 1 a", string("0")), string("0"));
    }

    #[test]
    fn hash_writes_change_the_fields_read() {
        let known = |v: Option<&str>| {
            KeyState::Hash(HashMap::from([(
                Bytes::from_static(b"f"),
                v.map(|v| Ok(v.as_bytes().to_vec())),
            )]))
        };
        let field = |state: KeyState| match state {
            KeyState::Hash(fields) => fields.get(&b"f"[..]).cloned().flatten(),
            other => panic!("not a hash: {other:?}"),
        };
        let one = Some(Ok(b"1".to_vec()));
        assert_eq!(
            field(after(Follow::HashSet, "HSET k f 1 g 2", known(None))),
            one
        );
        assert_eq!(
            after(Follow::HashSet, "HSET k f 1 g", known(None)),
            known(None)
        );
        assert_eq!(
            after(Follow::HashSet, "HSET k f 1", string("x")),
            string("x")
        );
        assert_eq!(
            after(Follow::HashSetIfAbsent, "HSETNX k f 2", known(Some("1"))),
            known(Some("1"))
        );
        assert_eq!(
            after(Follow::HashSetIfAbsent, "HSETNX k f 2", known(None)),
            known(Some("2"))
        );
        assert_eq!(
            field(after(Follow::HashSet, "HSET k f 1", KeyState::Absent)),
            one
        );
        assert_eq!(
            field(after(Follow::HashSet, "HSET k g 2", KeyState::Absent)),
            None
        );
    }

    #[test]
    fn only_followable_changes_are_followed() {
        assert!(can_follow(Follow::Expire, &words("EXPIRE k 60")));
        assert!(!can_follow(Follow::Expire, &words("EXPIRE k 0")));
        assert!(!can_follow(Follow::Expire, &words("EXPIRE k x")));
        assert!(!can_follow(Follow::Unknown, &words("SUNIONSTORE k a b")));
        assert!(!can_follow(Follow::Everything, &words("FLUSHDB")));
        assert!(can_follow(Follow::Set, &words("SET k 1")));
    }
}
