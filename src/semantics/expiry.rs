//! Time-to-live rules: SET/GETEX expiry options, the EXPIRE family's
//! NX/XX/GT/LT conditions and deadline arithmetic (overflow errors
//! included), and what TTL/PTTL answer — as redis-server 7.0 does them.

use super::errors;
use super::number::parse_i64;

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtlChange {
    /// Remove any deadline (a plain SET).
    #[default]
    Clear,
    /// Keep the deadline (SET … KEEPTTL, GETEX without options).
    Keep,
    /// GETEX … PERSIST.
    Persist,
    /// EX / PX: `amount` from now (`None`: the argument is not an integer,
    /// which Redis reports only once the other options parsed).
    In { amount: Option<i64>, millis: bool },
    /// EXAT / PXAT: at `amount` since the epoch.
    At { amount: Option<i64>, millis: bool },
}

impl TtlChange {
    /// The new deadline in Unix ms for In/At (Redis's
    /// `getExpireMillisecondsOrReply`), `None` for the others; the error
    /// names `command` as Redis does.
    pub fn deadline(self, now: i64, command: &str) -> Result<Option<i64>, String> {
        let (amount, millis, relative) = match self {
            TtlChange::In { amount, millis } => (amount, millis, true),
            TtlChange::At { amount, millis } => (amount, millis, false),
            _ => return Ok(None),
        };
        let invalid = || errors::invalid_expire(command);
        let amount = amount.ok_or_else(|| errors::NOT_INTEGER.to_owned())?;
        if amount <= 0 || (!millis && amount > i64::MAX / 1000) {
            return Err(invalid());
        }
        let mut ms = if millis { amount } else { amount * 1000 };
        if relative {
            ms = ms.checked_add(now).ok_or_else(invalid)?;
        }
        if ms <= 0 {
            return Err(invalid());
        }
        Ok(Some(ms))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    #[default]
    Always,
    /// NX
    IfAbsent,
    /// XX
    IfPresent,
}

/// SET's and GETEX's options (`parseExtendedStringArgumentsOrReply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StringOptions {
    pub condition: SetCondition,
    pub get: bool,
    pub ttl: TtlChange,
}

fn is(opt: &[u8], word: &str) -> bool {
    opt.eq_ignore_ascii_case(word.as_bytes())
}

impl StringOptions {
    /// SET's options, after `key value`.
    pub fn parse_set(args: &[impl AsRef<[u8]>]) -> Result<StringOptions, &'static str> {
        Self::parse(args, true)
    }

    /// GETEX's options, after `key`.
    pub fn parse_getex(args: &[impl AsRef<[u8]>]) -> Result<StringOptions, &'static str> {
        let mut opts = Self::parse(args, false)?;
        if opts.ttl == TtlChange::Clear {
            opts.ttl = TtlChange::Keep;
        }
        Ok(opts)
    }

    fn parse(args: &[impl AsRef<[u8]>], set: bool) -> Result<StringOptions, &'static str> {
        let mut o = StringOptions::default();
        // Which of EX/PX/EXAT/PXAT/KEEPTTL/PERSIST was given, for conflicts.
        let mut timed = false;
        let mut keep = false;
        let mut persist = false;
        let mut j = 0;
        while j < args.len() {
            let opt = args[j].as_ref();
            let next = args.get(j + 1).map(|n| n.as_ref());
            if set && is(opt, "NX") && o.condition != SetCondition::IfPresent {
                o.condition = SetCondition::IfAbsent;
            } else if set && is(opt, "XX") && o.condition != SetCondition::IfAbsent {
                o.condition = SetCondition::IfPresent;
            } else if set && is(opt, "GET") {
                o.get = true;
            } else if set && is(opt, "KEEPTTL") && !timed {
                keep = true;
                o.ttl = TtlChange::Keep;
            } else if !set && is(opt, "PERSIST") && !timed {
                persist = true;
                o.ttl = TtlChange::Persist;
            } else if let (Some(unit @ ("EX" | "PX" | "EXAT" | "PXAT")), Some(next)) = (
                ["EX", "PX", "EXAT", "PXAT"]
                    .into_iter()
                    .find(|w| is(opt, w)),
                next,
            ) {
                // The same option twice is allowed (the last wins); two
                // different ones are not.
                let same = matches!(
                    (unit, o.ttl),
                    ("EX", TtlChange::In { millis: false, .. })
                        | ("PX", TtlChange::In { millis: true, .. })
                        | ("EXAT", TtlChange::At { millis: false, .. })
                        | ("PXAT", TtlChange::At { millis: true, .. })
                );
                if keep || persist || (timed && !same) {
                    return Err(errors::SYNTAX);
                }
                let amount = parse_i64(next);
                let millis = unit.starts_with('P');
                o.ttl = if unit.ends_with("AT") {
                    TtlChange::At { amount, millis }
                } else {
                    TtlChange::In { amount, millis }
                };
                timed = true;
                j += 1;
            } else {
                return Err(errors::SYNTAX);
            }
            j += 1;
        }
        Ok(o)
    }
}

/// EXPIRE's NX/XX/GT/LT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpireFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

impl ExpireFlags {
    pub fn parse(args: &[impl AsRef<[u8]>]) -> Result<ExpireFlags, String> {
        let mut f = ExpireFlags::default();
        for arg in args {
            let opt = arg.as_ref();
            if is(opt, "NX") {
                f.nx = true;
            } else if is(opt, "XX") {
                f.xx = true;
            } else if is(opt, "GT") {
                f.gt = true;
            } else if is(opt, "LT") {
                f.lt = true;
            } else {
                // Redis prints the option as a C string: up to its first NUL.
                let shown = opt.split(|&b| b == 0).next().unwrap_or_default();
                return Err(format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(shown)
                ));
            }
        }
        if f.nx && (f.xx || f.gt || f.lt) {
            return Err(
                "ERR NX and XX, GT or LT options at the same time are not compatible".into(),
            );
        }
        if f.gt && f.lt {
            return Err("ERR GT and LT options at the same time are not compatible".into());
        }
        Ok(f)
    }

    /// Whether the new deadline `when` may replace `current` (None: no TTL).
    pub fn allow(self, current: Option<i64>, when: i64) -> bool {
        if self.nx && current.is_some() {
            return false;
        }
        if self.xx && current.is_none() {
            return false;
        }
        if self.gt && current.is_none_or(|c| when <= c) {
            return false;
        }
        if self.lt && current.is_some_and(|c| when >= c) {
            return false;
        }
        true
    }
}

/// EXPIRE's deadline: `amount` (seconds unless `millis`) plus `base` (now for
/// EXPIRE/PEXPIRE, 0 for the AT forms), refusing overflow as Redis does.
pub fn expire_deadline(amount: i64, millis: bool, base: i64, command: &str) -> Result<i64, String> {
    let invalid = || errors::invalid_expire(command);
    let when = if millis {
        amount
    } else {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&amount) {
            return Err(invalid());
        }
        amount * 1000
    };
    if when > i64::MAX - base {
        return Err(invalid());
    }
    Ok(when + base)
}

/// TTL/PTTL/EXPIRETIME/PEXPIRETIME for a live key whose deadline is `expire_at`.
pub fn ttl_reply(expire_at: Option<i64>, now: i64, millis: bool, absolute: bool) -> i64 {
    let Some(at) = expire_at else {
        return -1;
    };
    let ttl = if absolute { at } else { at - now }.max(0);
    if millis { ttl } else { (ttl + 500) / 1000 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Vec<u8>> {
        s.split_whitespace()
            .map(|a| a.as_bytes().to_vec())
            .collect()
    }

    #[test]
    fn set_options_conflict_as_redis() {
        assert!(StringOptions::parse_set(&args("NX XX")).is_err());
        assert!(StringOptions::parse_set(&args("EX 1 PX 1")).is_err());
        assert!(StringOptions::parse_set(&args("EX 1 EX 2")).is_ok());
        assert!(StringOptions::parse_set(&args("KEEPTTL EX 1")).is_err());
        assert!(StringOptions::parse_set(&args("EX")).is_err());
        assert!(StringOptions::parse_set(&args("PERSIST")).is_err());
        assert!(StringOptions::parse_getex(&args("NX")).is_err());
        let o = StringOptions::parse_set(&args("nx get px 10")).unwrap();
        assert_eq!(o.condition, SetCondition::IfAbsent);
        assert!(o.get);
        assert_eq!(
            o.ttl,
            TtlChange::In {
                amount: Some(10),
                millis: true
            }
        );
    }

    #[test]
    fn expire_flags() {
        assert!(ExpireFlags::parse(&args("NX GT")).is_err());
        assert_eq!(
            ExpireFlags::parse(&args("foo")).unwrap_err(),
            "ERR Unsupported option foo"
        );
        let gt = ExpireFlags::parse(&args("GT")).unwrap();
        assert!(!gt.allow(None, 5));
        assert!(gt.allow(Some(4), 5));
        let lt = ExpireFlags::parse(&args("LT")).unwrap();
        assert!(lt.allow(None, 5));
        assert!(!lt.allow(Some(4), 5));
    }

    #[test]
    fn deadlines_refuse_overflow() {
        assert!(expire_deadline(i64::MAX / 1000 + 1, false, 0, "expire").is_err());
        assert!(expire_deadline(i64::MAX, true, 10, "pexpire").is_err());
        assert_eq!(expire_deadline(-5, false, 1000, "expire"), Ok(-4000));
        assert_eq!(ttl_reply(Some(1499), 0, false, false), 1);
        assert_eq!(ttl_reply(Some(1500), 0, false, false), 2);
        assert_eq!(ttl_reply(None, 0, true, false), -1);
    }
}
