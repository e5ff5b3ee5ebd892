//! The commands sealcache computes itself because Redis would compute on
//! ciphertext — INCR and friends, INCRBYFLOAT, HINCRBY(FLOAT), APPEND,
//! SETRANGE, GETRANGE, STRLEN — as pure functions over plaintext, with
//! redis-server 7.0's replies and errors in Redis's order.
//!
//! Each command is checked in two steps, as Redis checks it: [`Step::parse`]
//! before the key is read (an argument Redis rejects first), then
//! [`Step::apply`] to the current plaintext (`None`: the key or field does not
//! exist). Reading and writing atomically is the backend's job.

use crate::protocol::Frame;
use crate::protocol::reply::{bulk, int};
use crate::semantics::long_double::LongDouble;
use crate::semantics::number::parse_i64;

/// Redis's default proto-max-bulk-len, the largest string APPEND and
/// SETRANGE may build.
pub const MAX_STRING_LEN: i64 = 512 * 1024 * 1024;

pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_A_FLOAT: &str = "ERR value is not a valid float";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const DECREMENT_OVERFLOW: &str = "ERR decrement would overflow";
pub const NAN_OR_INF: &str = "ERR increment would produce NaN or Infinity";
pub const INCREMENT_NAN_OR_INF: &str = "ERR value is NaN or Infinity";
pub const TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
pub const OFFSET_OUT_OF_RANGE: &str = "ERR offset is out of range";
pub const HASH_NOT_INTEGER: &str = "ERR hash value is not an integer";
pub const HASH_NOT_FLOAT: &str = "ERR hash value is not a float";

/// One emulated command, its arguments checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// INCR/DECR/INCRBY/DECRBY on a string.
    IncrBy(i64),
    /// INCRBYFLOAT on a string (its increment is checked after the value, as Redis does).
    IncrByFloat(Vec<u8>),
    /// HINCRBY on a hash field.
    HashIncrBy(i64),
    /// HINCRBYFLOAT on a hash field.
    HashIncrByFloat(LongDouble),
    Append(Vec<u8>),
    SetRange {
        offset: usize,
        patch: Vec<u8>,
    },
    /// STRLEN / HSTRLEN: nothing written.
    Length,
    /// GETRANGE/SUBSTR: nothing written.
    Range {
        start: i64,
        end: i64,
    },
}

/// What applying a step gives: the client's reply, and the new plaintext to
/// store (`None`: nothing changes).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub reply: Frame,
    pub store: Option<Vec<u8>>,
}

impl Step {
    /// INCR (1), DECR (-1), or INCRBY/DECRBY with their argument.
    pub fn incr_by(increment: Option<&[u8]>, negate: bool) -> Result<Step, &'static str> {
        let n = match increment {
            None => 1,
            Some(text) => parse_i64(text).ok_or(NOT_AN_INTEGER)?,
        };
        if negate {
            n.checked_neg().map(Step::IncrBy).ok_or(DECREMENT_OVERFLOW)
        } else {
            Ok(Step::IncrBy(n))
        }
    }

    pub fn incr_by_float(increment: &[u8]) -> Step {
        Step::IncrByFloat(increment.to_vec())
    }

    pub fn hash_incr_by(increment: &[u8]) -> Result<Step, &'static str> {
        parse_i64(increment)
            .map(Step::HashIncrBy)
            .ok_or(NOT_AN_INTEGER)
    }

    pub fn hash_incr_by_float(increment: &[u8]) -> Result<Step, &'static str> {
        let delta = LongDouble::parse(increment).ok_or(NOT_A_FLOAT)?;
        if !delta.is_finite() {
            return Err(INCREMENT_NAN_OR_INF);
        }
        Ok(Step::HashIncrByFloat(delta))
    }

    pub fn set_range(offset: &[u8], patch: &[u8]) -> Result<Step, &'static str> {
        let offset = parse_i64(offset).ok_or(NOT_AN_INTEGER)?;
        if offset < 0 {
            return Err(OFFSET_OUT_OF_RANGE);
        }
        Ok(Step::SetRange {
            offset: usize::try_from(offset).map_err(|_| TOO_LONG)?,
            patch: patch.to_vec(),
        })
    }

    pub fn range(start: &[u8], end: &[u8]) -> Result<Step, &'static str> {
        Ok(Step::Range {
            start: parse_i64(start).ok_or(NOT_AN_INTEGER)?,
            end: parse_i64(end).ok_or(NOT_AN_INTEGER)?,
        })
    }

    /// Whether the step can change the value (else it only reads).
    pub fn writes(&self) -> bool {
        !matches!(self, Step::Length | Step::Range { .. })
    }

    /// Applies the step to the current plaintext (`None`: absent).
    pub fn apply(&self, current: Option<&[u8]>) -> Result<Outcome, &'static str> {
        let write = |value: Vec<u8>, reply: Frame| Outcome {
            reply,
            store: Some(value),
        };
        match self {
            Step::IncrBy(delta) => {
                let current = match current {
                    None => 0,
                    Some(v) => parse_i64(v).ok_or(NOT_AN_INTEGER)?,
                };
                let next = current.checked_add(*delta).ok_or(OVERFLOW)?;
                Ok(write(next.to_string().into_bytes(), int(next)))
            }
            Step::IncrByFloat(increment) => {
                // Redis checks the key's value before the increment.
                let current = match current {
                    None => LongDouble::ZERO,
                    Some(v) => LongDouble::parse(v).ok_or(NOT_A_FLOAT)?,
                };
                let delta = LongDouble::parse(increment).ok_or(NOT_A_FLOAT)?;
                let text = current
                    .add(&delta)
                    .and_then(|n| n.to_redis_string())
                    .ok_or(NAN_OR_INF)?;
                Ok(write(text.clone().into_bytes(), bulk(text)))
            }
            Step::HashIncrBy(delta) => {
                let current = match current {
                    None => 0,
                    Some(v) => parse_i64(v).ok_or(HASH_NOT_INTEGER)?,
                };
                let next = current.checked_add(*delta).ok_or(OVERFLOW)?;
                Ok(write(next.to_string().into_bytes(), int(next)))
            }
            Step::HashIncrByFloat(delta) => {
                let current = match current {
                    None => LongDouble::ZERO,
                    Some(v) => LongDouble::parse(v).ok_or(HASH_NOT_FLOAT)?,
                };
                let text = current
                    .add(delta)
                    .and_then(|n| n.to_redis_string())
                    .ok_or(NAN_OR_INF)?;
                Ok(write(text.clone().into_bytes(), bulk(text)))
            }
            Step::Append(tail) => {
                let mut value = current.unwrap_or_default().to_vec();
                if (value.len() + tail.len()) as i64 > MAX_STRING_LEN {
                    return Err(TOO_LONG);
                }
                value.extend_from_slice(tail);
                let len = value.len() as i64;
                Ok(write(value, int(len)))
            }
            Step::SetRange { offset, patch } => {
                // Redis's order: the key's type, then an empty patch, then the size limit.
                let mut value = current.unwrap_or_default().to_vec();
                if patch.is_empty() {
                    return Ok(Outcome {
                        reply: int(value.len() as i64),
                        store: None,
                    });
                }
                if (*offset as i64).saturating_add(patch.len() as i64) > MAX_STRING_LEN {
                    return Err(TOO_LONG);
                }
                if value.len() < offset + patch.len() {
                    value.resize(offset + patch.len(), 0);
                }
                value[*offset..offset + patch.len()].copy_from_slice(patch);
                let len = value.len() as i64;
                Ok(write(value, int(len)))
            }
            Step::Length => Ok(Outcome {
                reply: int(current.map_or(0, |v| v.len() as i64)),
                store: None,
            }),
            Step::Range { start, end } => Ok(Outcome {
                reply: bulk(range(current.unwrap_or_default(), *start, *end)),
                store: None,
            }),
        }
    }
}

/// GETRANGE's index arithmetic, as Redis does it.
pub fn range(value: &[u8], start: i64, end: i64) -> Vec<u8> {
    let len = value.len() as i64;
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return Vec::new();
    }
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end {
        return Vec::new();
    }
    value[start as usize..=end as usize].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_matches_redis_index_rules() {
        let v = b"This is a string";
        assert_eq!(range(v, 0, 3), b"This");
        assert_eq!(range(v, -3, -1), b"ing");
        assert_eq!(range(v, 0, -1), v.to_vec());
        assert_eq!(range(v, 10, 100), b"string");
        assert_eq!(range(v, 5, 2), b"");
        assert_eq!(range(b"", 0, -1), b"");
        // Both negative and reversed: empty, even when clamping would meet at 0.
        assert_eq!(range(b"abc", -10, -20), b"");
    }

    #[test]
    fn increments_follow_redis_errors_and_order() {
        let step = Step::incr_by(Some(b"5"), false).unwrap();
        assert_eq!(step.apply(Some(b"10")).unwrap().reply, int(15));
        assert_eq!(step.apply(None).unwrap().reply, int(5));
        assert_eq!(step.apply(Some(b"x")), Err(NOT_AN_INTEGER));
        assert_eq!(
            Step::incr_by(Some(b"-9223372036854775808"), true),
            Err(DECREMENT_OVERFLOW)
        );
        assert_eq!(
            Step::IncrBy(1).apply(Some(b"9223372036854775807")),
            Err(OVERFLOW)
        );
        // INCRBYFLOAT: the value is checked before the increment.
        assert_eq!(
            Step::incr_by_float(b"abc").apply(Some(b"word")),
            Err(NOT_A_FLOAT)
        );
        assert_eq!(
            Step::incr_by_float(b"0.2")
                .apply(Some(b"0.1"))
                .unwrap()
                .reply,
            bulk("0.3")
        );
        assert_eq!(
            Step::HashIncrBy(1).apply(Some(b"1.5")),
            Err(HASH_NOT_INTEGER)
        );
    }

    #[test]
    fn setrange_and_append_build_values_as_redis() {
        let out = Step::set_range(b"5", b"x").unwrap().apply(None).unwrap();
        assert_eq!(out.store.unwrap(), b"\0\0\0\0\0x");
        let empty = Step::set_range(b"600000000", b"")
            .unwrap()
            .apply(Some(b"ab"))
            .unwrap();
        assert_eq!((empty.reply, empty.store), (int(2), None));
        assert_eq!(
            Step::set_range(b"536870912", b"x").unwrap().apply(None),
            Err(TOO_LONG)
        );
        assert_eq!(Step::set_range(b"-1", b"x"), Err(OFFSET_OUT_OF_RANGE));
        let out = Step::Append(b" world".to_vec())
            .apply(Some(b"hello"))
            .unwrap();
        assert_eq!(
            (out.reply, out.store.unwrap()),
            (int(11), b"hello world".to_vec())
        );
    }
}
