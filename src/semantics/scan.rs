//! SCAN-family options as redis-server reads them (`scanGenericCommand` in
//! redis/src/db.c): `COUNT n`, `MATCH pattern` and, for SCAN only, `TYPE t`,
//! in any order, each with its argument. Several `MATCH` options are allowed;
//! the last one counts, and a lone `*` means "no pattern".

use bytes::Bytes;

/// Redis 7.0's default encoding limits (`hash-max-listpack-entries`,
/// `…-value`, `set-max-intset-entries`), which change how SCAN-family
/// commands page: a listpack or intset is returned whole, with cursor 0, and
/// a listpack holds integral sorted-set scores as integers.
pub const LISTPACK_ENTRIES: usize = 128;
pub const LISTPACK_VALUE: usize = 64;
pub const INTSET_ENTRIES: usize = 512;

/// A sorted-set score as a ZSCAN of a listpack shows it: integral scores as
/// integers (Redis's `double2ll`), others as `%.17g`.
pub fn listpack_score(score: f64) -> String {
    if score.fract() == 0.0 && score.abs() <= (i64::MAX / 2) as f64 {
        (score as i64).to_string()
    } else {
        super::number::format_double(score)
    }
}

/// The `MATCH` options of a well-formed SCAN-family command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanMatch {
    /// The pattern that filters elements (the last `MATCH`), or `None` when
    /// there is none or it is a lone `*`.
    pub pattern: Option<Bytes>,
    /// Index of each `MATCH` word; its pattern is the argument after it.
    pub at: Vec<usize>,
}

/// Reads the options of a SCAN-family command, starting at `first` (the
/// argument after the cursor). `type_allowed` only for SCAN. `None` when
/// redis-server would answer a syntax error while reading them (an unknown
/// option, an option without its argument); the values of `COUNT` are not
/// checked here.
pub fn scan_match(args: &[Bytes], first: usize, type_allowed: bool) -> Option<ScanMatch> {
    let mut out = ScanMatch {
        pattern: None,
        at: Vec::new(),
    };
    let mut i = first;
    while i < args.len() {
        let has_argument = args.len() - i >= 2;
        let word = &args[i];
        if !has_argument {
            return None;
        }
        if word.eq_ignore_ascii_case(b"MATCH") {
            let pattern = &args[i + 1];
            out.pattern = (pattern.as_ref() != b"*").then(|| pattern.clone());
            out.at.push(i);
        } else if !(word.eq_ignore_ascii_case(b"COUNT")
            || (type_allowed && word.eq_ignore_ascii_case(b"TYPE")))
        {
            return None;
        }
        i += 2;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantics::words;

    #[test]
    fn the_last_match_counts_and_a_lone_star_is_no_pattern() {
        let a = words("SSCAN k 0 match a* COUNT 5 MATCH b?");
        let m = scan_match(&a, 3, false).unwrap();
        assert_eq!(m.pattern.as_deref(), Some(&b"b?"[..]));
        assert_eq!(m.at, vec![3, 7]);
        let a = words("SSCAN k 0 MATCH *");
        assert_eq!(scan_match(&a, 3, false).unwrap().pattern, None);
        let a = words("SSCAN k 0 MATCH **");
        assert!(scan_match(&a, 3, false).unwrap().pattern.is_some());
        let a = words("SSCAN k 0");
        assert_eq!(scan_match(&a, 3, false).unwrap().at, Vec::<usize>::new());
    }

    #[test]
    fn what_redis_refuses_is_not_read() {
        for line in [
            "SSCAN k 0 MATCH",
            "SSCAN k 0 MATCH a* COUNT",
            "SSCAN k 0 NOVALUES MATCH a*",
            "SSCAN k 0 TYPE string",
        ] {
            assert_eq!(scan_match(&words(line), 3, false), None, "{line}");
        }
        // COUNT takes the next argument whatever it is.
        let a = words("SSCAN k 0 COUNT MATCH x y");
        assert_eq!(scan_match(&a, 3, false), None);
        let a = words("SCAN 0 TYPE set MATCH a*");
        assert_eq!(scan_match(&a, 2, true).unwrap().at, vec![4]);
    }
}
