//! Sorted sets over plaintext: the order Redis gives members of equal score,
//! and how redis-server reads the options of the commands that return
//! members (`zrangeGenericCommand`, `zunionInterDiffGenericCommand`,
//! `zrandmemberCommand` and `zmpopGenericCommand` in redis/src/t_zset.c), so
//! a caller knows what a well-formed command asks for.
//!
//! A sorted set is ordered by score, then by member bytes (`memcmp`, a
//! shorter prefix first: Rust's order of byte slices). Read backwards (REV,
//! ZPOPMAX, MAX) both are descending.

use bytes::Bytes;

use super::number::parse_i64;

/// Which way a reply walks the sorted set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Lowest score first; equal scores by ascending member bytes.
    Ascending,
    /// Highest score first; equal scores by descending member bytes.
    Descending,
}

/// Sorts every run of adjacent items with equal keys (scores, or geohashes
/// for geo replies) by member bytes, the way `direction` orders them. Items
/// are otherwise left where they are.
pub fn order_ties<T, K: PartialEq>(
    items: &mut [T],
    key: impl Fn(&T) -> K,
    member: impl Fn(&T) -> &[u8],
    direction: Direction,
) {
    let mut start = 0;
    while start < items.len() {
        let first = key(&items[start]);
        let mut end = start + 1;
        while end < items.len() && key(&items[end]) == first {
            end += 1;
        }
        if end - start > 1 {
            let run = &mut items[start..end];
            match direction {
                Direction::Ascending => run.sort_by(|a, b| member(a).cmp(member(b))),
                Direction::Descending => run.sort_by(|a, b| member(b).cmp(member(a))),
            }
        }
        start = end;
    }
}

/// The rank of `member` (ZRANK, or ZREVRANK when `Descending`) from the
/// number of members with a score before its own and the plaintext members
/// sharing its score (`ties`, itself included or not).
pub fn rank_among_ties<'a>(
    before: i64,
    ties: impl IntoIterator<Item = &'a [u8]>,
    member: &[u8],
    direction: Direction,
) -> i64 {
    let ahead = ties
        .into_iter()
        .filter(|t| match direction {
            Direction::Ascending => *t < member,
            Direction::Descending => *t > member,
        })
        .count();
    before + ahead as i64
}

/// How a range command selects members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeKind {
    Rank,
    Score,
    Lex,
}

/// The options of a well-formed ZRANGE-family command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeOptions {
    pub kind: RangeKind,
    pub direction: Direction,
    pub withscores: bool,
    pub limit: bool,
}

/// Reads the options of ZRANGE, ZRANGESTORE, ZREVRANGE, Z[REV]RANGEBYSCORE
/// and Z[REV]RANGEBYLEX (`name` as the command table spells it) as the first
/// step of `zrangeGenericCommand` does. `None` when that step answers a
/// syntax error, or `name` is none of these. The numbers after LIMIT, the
/// range itself and the combinations Redis refuses afterwards (LIMIT by rank,
/// WITHSCORES with BYLEX) are not checked here.
pub fn range_options(name: &str, args: &[Bytes]) -> Option<RangeOptions> {
    use Direction::*;
    // (first option index, store, fixed kind, fixed direction)
    let (first, store, mut kind, mut direction) = match name {
        "ZRANGE" => (4, false, None, None),
        "ZRANGESTORE" => (5, true, None, None),
        "ZREVRANGE" => (4, false, Some(RangeKind::Rank), Some(Descending)),
        "ZRANGEBYSCORE" => (4, false, Some(RangeKind::Score), Some(Ascending)),
        "ZREVRANGEBYSCORE" => (4, false, Some(RangeKind::Score), Some(Descending)),
        "ZRANGEBYLEX" => (4, false, Some(RangeKind::Lex), Some(Ascending)),
        "ZREVRANGEBYLEX" => (4, false, Some(RangeKind::Lex), Some(Descending)),
        _ => return None,
    };
    let (mut withscores, mut limit) = (false, false);
    let mut j = first;
    while j < args.len() {
        let word = &args[j];
        let left = args.len() - j - 1;
        let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
        if !store && is("WITHSCORES") {
            withscores = true;
        } else if is("LIMIT") && left >= 2 {
            limit = true;
            j += 2;
        } else if direction.is_none() && is("REV") {
            direction = Some(Descending);
        } else if kind.is_none() && is("BYLEX") {
            kind = Some(RangeKind::Lex);
        } else if kind.is_none() && is("BYSCORE") {
            kind = Some(RangeKind::Score);
        } else {
            return None;
        }
        j += 1;
    }
    Some(RangeOptions {
        kind: kind.unwrap_or(RangeKind::Rank),
        direction: direction.unwrap_or(Ascending),
        withscores,
        limit,
    })
}

/// Whether a well-formed ZUNION, ZINTER or ZDIFF asks for scores, read as
/// `zunionInterDiffGenericCommand` reads its arguments. `None` when Redis
/// answers a syntax error (too few keys, an unknown or incomplete option) or
/// cannot read `numkeys`; weights are not checked here.
pub fn combine_withscores(name: &str, args: &[Bytes]) -> Option<bool> {
    let weighted = match name {
        "ZUNION" | "ZINTER" => true,
        "ZDIFF" => false,
        _ => return None,
    };
    let keys: usize = parse_i64(args.get(1)?)?.try_into().ok()?;
    if keys < 1 || keys > args.len() - 2 {
        return None;
    }
    let mut withscores = false;
    let mut j = 2 + keys;
    while j < args.len() {
        let word = &args[j];
        let remaining = args.len() - j;
        let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
        if weighted && remaining > keys && is("WEIGHTS") {
            j += 1 + keys;
        } else if weighted && remaining >= 2 && is("AGGREGATE") {
            let how = &args[j + 1];
            if !["SUM", "MIN", "MAX"]
                .iter()
                .any(|w| how.eq_ignore_ascii_case(w.as_bytes()))
            {
                return None;
            }
            j += 2;
        } else if is("WITHSCORES") {
            withscores = true;
            j += 1;
        } else {
            return None;
        }
    }
    Some(withscores)
}

/// `ZRANDMEMBER key count [WITHSCORES]`: the count and whether scores are
/// asked. `None` without a count or when Redis answers an error.
pub fn random_count(args: &[Bytes]) -> Option<(i64, bool)> {
    let count = parse_i64(args.get(2)?)?;
    if count == i64::MIN {
        return None;
    }
    match args.get(3) {
        None if args.len() == 3 => Some((count, false)),
        Some(w) if args.len() == 4 && w.eq_ignore_ascii_case(b"WITHSCORES") => {
            (count.unsigned_abs() <= RANDOM_COUNT_WITH_SCORES_MAX as u64).then_some((count, true))
        }
        _ => None,
    }
}

/// The largest `ZRANDMEMBER` count Redis accepts together with WITHSCORES
/// (`LONG_MAX / 2`); any larger count asks for the whole set just as well.
pub const RANDOM_COUNT_WITH_SCORES_MAX: i64 = i64::MAX / 2;

/// The end ZMPOP/BZMPOP pop from (`MIN` or `MAX` after the keys).
pub fn multi_pop_direction(name: &str, args: &[Bytes]) -> Option<Direction> {
    let numkeys_at = match name {
        "ZMPOP" => 1,
        "BZMPOP" => 2,
        _ => return None,
    };
    let keys: usize = parse_i64(args.get(numkeys_at)?)?.try_into().ok()?;
    let word = args.get(numkeys_at.checked_add(keys)?.checked_add(1)?)?;
    if word.eq_ignore_ascii_case(b"MIN") {
        Some(Direction::Ascending)
    } else if word.eq_ignore_ascii_case(b"MAX") {
        Some(Direction::Descending)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantics::words as args;

    #[test]
    fn equal_scores_are_ordered_by_member_bytes_and_nothing_else_moves() {
        let mut items: Vec<(f64, &[u8])> = vec![
            (0.0, b"a4"),
            (0.0, b"a2"),
            (-0.0, b"a"),
            (1.0, b"z"),
            (2.0, b"b\xff"),
            (2.0, b"b"),
            (2.0, b""),
            (3.0, b"c"),
        ];
        order_ties(&mut items, |i| i.0, |i| i.1, Direction::Ascending);
        let members: Vec<&[u8]> = items.iter().map(|i| i.1).collect();
        assert_eq!(
            members,
            vec![&b"a"[..], b"a2", b"a4", b"z", b"", b"b", b"b\xff", b"c"]
        );
        order_ties(&mut items, |i| i.0, |i| i.1, Direction::Descending);
        let members: Vec<&[u8]> = items.iter().map(|i| i.1).collect();
        assert_eq!(members[..3], [&b"a4"[..], b"a2", b"a"]);
        assert_eq!(members[4..7], [&b"b\xff"[..], b"b", b""]);
    }

    #[test]
    fn ranks_count_the_equal_scores_ahead_in_plaintext_order() {
        let ties: [&[u8]; 4] = [b"a4", b"a1", b"a3", b"a2"];
        assert_eq!(rank_among_ties(5, ties, b"a3", Direction::Ascending), 7);
        assert_eq!(rank_among_ties(5, ties, b"a3", Direction::Descending), 6);
        assert_eq!(rank_among_ties(0, [], b"x", Direction::Ascending), 0);
    }

    #[test]
    fn range_options_follow_zrange_generic_command() {
        let o = range_options("ZRANGE", &args("ZRANGE z 0 -1")).unwrap();
        assert_eq!(
            o,
            RangeOptions {
                kind: RangeKind::Rank,
                direction: Direction::Ascending,
                withscores: false,
                limit: false
            }
        );
        let o = range_options(
            "ZRANGE",
            &args("ZRANGE z (1 +inf byscore rev LIMIT 0 2 withscores"),
        )
        .unwrap();
        assert_eq!(
            (o.kind, o.direction, o.withscores, o.limit),
            (RangeKind::Score, Direction::Descending, true, true)
        );
        let o = range_options("ZRANGESTORE", &args("ZRANGESTORE d z [a (b BYLEX")).unwrap();
        assert_eq!(o.kind, RangeKind::Lex);
        // The key and the range are not options, whatever they are called.
        let o = range_options("ZRANGE", &args("ZRANGE bylex 0 1")).unwrap();
        assert_eq!(o.kind, RangeKind::Rank);
        let refused = [
            ("ZRANGE", "ZRANGE z 0 1 LIMIT 0"),
            ("ZRANGE", "ZRANGE z 0 1 BYSCORE BYLEX"),
            ("ZRANGE", "ZRANGE z 0 1 REV REV"),
            ("ZRANGE", "ZRANGE z 0 1 bogus"),
            ("ZRANGESTORE", "ZRANGESTORE d z 0 1 WITHSCORES"),
            ("ZREVRANGE", "ZREVRANGE z 0 1 REV"),
            ("ZRANGEBYSCORE", "ZRANGEBYSCORE z 0 1 BYSCORE"),
            ("ZSCORE", "ZSCORE z m"),
        ];
        for (name, line) in refused {
            assert_eq!(range_options(name, &args(line)), None, "{line}");
        }
        let o = range_options(
            "ZREVRANGEBYSCORE",
            &args("ZREVRANGEBYSCORE z 5 0 LIMIT 1 1"),
        );
        assert_eq!(o.unwrap().direction, Direction::Descending);
    }

    #[test]
    fn combine_options_follow_zunion_inter_diff() {
        assert_eq!(
            combine_withscores("ZUNION", &args("ZUNION 2 a b")),
            Some(false)
        );
        assert_eq!(
            combine_withscores(
                "ZINTER",
                &args("ZINTER 2 a b WEIGHTS 1 2 AGGREGATE max WITHSCORES")
            ),
            Some(true)
        );
        assert_eq!(
            combine_withscores("ZUNION", &args("ZUNION 1 WITHSCORES")),
            Some(false),
            "a key may be called WITHSCORES"
        );
        for (name, line) in [
            ("ZUNION", "ZUNION 2 a"),
            ("ZUNION", "ZUNION 0 a"),
            ("ZUNION", "ZUNION x a"),
            ("ZUNION", "ZUNION 2 a b WEIGHTS 1"),
            ("ZUNION", "ZUNION 1 a AGGREGATE avg"),
            ("ZUNION", "ZUNION 1 a AGGREGATE"),
            ("ZDIFF", "ZDIFF 1 a WEIGHTS 1"),
            ("ZDIFF", "ZDIFF 1 a bogus"),
        ] {
            assert_eq!(combine_withscores(name, &args(line)), None, "{line}");
        }
    }

    #[test]
    fn random_counts_and_pop_ends() {
        assert_eq!(random_count(&args("ZRANDMEMBER z")), None);
        assert_eq!(random_count(&args("ZRANDMEMBER z 5")), Some((5, false)));
        assert_eq!(
            random_count(&args("ZRANDMEMBER z -5 withscores")),
            Some((-5, true))
        );
        assert_eq!(random_count(&args("ZRANDMEMBER z 5 bogus")), None);
        assert_eq!(random_count(&args("ZRANDMEMBER z +5")), None);
        assert_eq!(
            random_count(&args("ZRANDMEMBER z 9223372036854775807 WITHSCORES")),
            None
        );
        assert_eq!(
            multi_pop_direction("ZMPOP", &args("ZMPOP 2 a b max COUNT 3")),
            Some(Direction::Descending)
        );
        assert_eq!(
            multi_pop_direction("BZMPOP", &args("BZMPOP 0 1 a MIN")),
            Some(Direction::Ascending)
        );
        assert_eq!(multi_pop_direction("ZMPOP", &args("ZMPOP 3 a MIN")), None);
    }
}
