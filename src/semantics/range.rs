//! Range arithmetic and range arguments as redis-server reads them: index
//! ranges (GETRANGE, LRANGE, ZRANGE), score ranges (`(1.5`, `-inf`) and
//! lexicographic ranges (`[a`, `(b`, `-`, `+`).

use super::number::strtod;

/// GETRANGE's byte range of a `len`-byte string, inclusive; `None` when empty.
pub fn string_range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

/// LRANGE/ZRANGE/LTRIM's inclusive index range over `len` elements; `None`
/// when empty.
pub fn index_range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    }
    .max(0);
    let end = if end < 0 {
        len.saturating_add(end)
    } else {
        end
    };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

/// One end of a score range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

/// ZRANGEBYSCORE's `min max` (`zslParseRange`): `(` makes an end exclusive;
/// the number is read by strtod (leading spaces, `inf`, hex allowed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    pub min: ScoreBound,
    pub max: ScoreBound,
}

fn score_bound(text: &[u8]) -> Option<ScoreBound> {
    let (exclusive, number) = match text.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, text),
    };
    let parsed = strtod(number)?;
    if parsed.value.is_nan() {
        return None;
    }
    Some(ScoreBound {
        value: parsed.value,
        exclusive,
    })
}

impl ScoreRange {
    pub fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        Some(ScoreRange {
            min: score_bound(min)?,
            max: score_bound(max)?,
        })
    }

    pub fn above_min(&self, score: f64) -> bool {
        if self.min.exclusive {
            score > self.min.value
        } else {
            score >= self.min.value
        }
    }

    pub fn below_max(&self, score: f64) -> bool {
        if self.max.exclusive {
            score < self.max.value
        } else {
            score <= self.max.value
        }
    }

    pub fn contains(&self, score: f64) -> bool {
        self.above_min(score) && self.below_max(score)
    }

    /// Redis's `zslIsInRange` emptiness test.
    pub fn is_empty(&self) -> bool {
        self.min.value > self.max.value
            || (self.min.value == self.max.value && (self.min.exclusive || self.max.exclusive))
    }
}

/// One end of a lexicographic range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    /// `-`
    Min,
    /// `+`
    Max,
    Inclusive(Vec<u8>),
    Exclusive(Vec<u8>),
}

impl LexBound {
    pub fn parse(text: &[u8]) -> Option<LexBound> {
        match text.split_first() {
            Some((b'+', [])) => Some(LexBound::Max),
            Some((b'-', [])) => Some(LexBound::Min),
            Some((b'(', rest)) => Some(LexBound::Exclusive(rest.to_vec())),
            Some((b'[', rest)) => Some(LexBound::Inclusive(rest.to_vec())),
            _ => None,
        }
    }
}

/// ZRANGEBYLEX's `min max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn parse(min: &[u8], max: &[u8]) -> Option<LexRange> {
        Some(LexRange {
            min: LexBound::parse(min)?,
            max: LexBound::parse(max)?,
        })
    }

    pub fn above_min(&self, member: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Inclusive(m) => member >= m.as_slice(),
            LexBound::Exclusive(m) => member > m.as_slice(),
        }
    }

    pub fn below_max(&self, member: &[u8]) -> bool {
        match &self.max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(m) => member <= m.as_slice(),
            LexBound::Exclusive(m) => member < m.as_slice(),
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.above_min(member) && self.below_max(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_redis() {
        assert_eq!(string_range(5, 0, -1), Some((0, 4)));
        assert_eq!(string_range(5, -2, -1), Some((3, 4)));
        assert_eq!(string_range(5, -1, -2), None);
        assert_eq!(string_range(5, 3, 100), Some((3, 4)));
        assert_eq!(string_range(0, 0, -1), None);
        assert_eq!(index_range(5, 0, -1), Some((0, 4)));
        assert_eq!(index_range(5, -100, 1), Some((0, 1)));
        assert_eq!(index_range(5, 5, 10), None);
        assert_eq!(index_range(5, 2, 1), None);
        assert_eq!(index_range(5, i64::MIN, i64::MAX), Some((0, 4)));
    }

    #[test]
    fn score_and_lex_bounds() {
        let r = ScoreRange::parse(b"(1", b"+inf").unwrap();
        assert!(!r.contains(1.0) && r.contains(1.5));
        assert!(ScoreRange::parse(b"x", b"1").is_none());
        assert!(ScoreRange::parse(b"nan", b"1").is_none());
        assert!(ScoreRange::parse(b" 1", b"2").is_some());
        let l = LexRange::parse(b"[b", b"(d").unwrap();
        assert!(l.contains(b"b") && l.contains(b"c") && !l.contains(b"d"));
        assert!(LexRange::parse(b"b", b"+").is_none());
    }
}
