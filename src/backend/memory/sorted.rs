//! The order of a sorted set: (score, member bytes) ascending, as Redis's
//! skiplist orders it, with ranks. A list of sorted chunks (the layout of
//! Python's `sortedcontainers`): inserts and removals move at most one
//! chunk, a rank costs one pass over the chunk lengths.

use std::cmp::Ordering;

use bytes::Bytes;

/// Chunks split when they reach twice this length.
const CHUNK: usize = 128;

/// Redis's order: score, then member bytes (`-0` equals `0`; scores are never NaN).
pub fn compare(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    a_score
        .partial_cmp(&b_score)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a_member.cmp(b_member))
}

#[derive(Debug, Clone, Default)]
pub struct SortedList {
    chunks: Vec<Vec<(f64, Bytes)>>,
    len: usize,
}

impl SortedList {
    /// The number of leading elements for which `before` holds; `before`
    /// must hold for a prefix of the order and not after it.
    pub fn partition_point(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let chunk = self.chunks.partition_point(|c| {
            let (s, m) = c.last().expect("chunks are never empty");
            before(*s, m)
        });
        let skipped: usize = self.chunks[..chunk].iter().map(Vec::len).sum();
        match self.chunks.get(chunk) {
            Some(c) => skipped + c.partition_point(|(s, m)| before(*s, m)),
            None => skipped,
        }
    }

    /// Where (score, member) is or would go: (chunk, offset).
    fn locate(&self, score: f64, member: &[u8]) -> (usize, usize) {
        let less = |s: f64, m: &[u8]| compare(s, m, score, member) == Ordering::Less;
        let chunk = self.chunks.partition_point(|c| {
            let (s, m) = c.last().expect("chunks are never empty");
            less(*s, m)
        });
        match self.chunks.get(chunk) {
            Some(c) => (chunk, c.partition_point(|(s, m)| less(*s, m))),
            None => (chunk, 0),
        }
    }

    pub fn insert(&mut self, score: f64, member: Bytes) {
        self.len += 1;
        if self.chunks.is_empty() {
            self.chunks.push(vec![(score, member)]);
            return;
        }
        let (mut chunk, mut offset) = self.locate(score, &member);
        if chunk == self.chunks.len() {
            chunk -= 1;
            offset = self.chunks[chunk].len();
        }
        let c = &mut self.chunks[chunk];
        c.insert(offset, (score, member));
        if c.len() >= 2 * CHUNK {
            let tail = c.split_off(CHUNK);
            self.chunks.insert(chunk + 1, tail);
        }
    }

    /// Removes (score, member); false when it is not there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let (chunk, offset) = self.locate(score, member);
        let Some(c) = self.chunks.get_mut(chunk) else {
            return false;
        };
        match c.get(offset) {
            Some((s, m)) if compare(*s, m, score, member) == Ordering::Equal => {}
            _ => return false,
        }
        c.remove(offset);
        if c.is_empty() {
            self.chunks.remove(chunk);
        }
        self.len -= 1;
        true
    }

    /// The 0-based rank of (score, member), which must be present.
    pub fn rank(&self, score: f64, member: &[u8]) -> usize {
        self.partition_point(|s, m| compare(s, m, score, member) == Ordering::Less)
    }

    #[cfg(test)]
    pub fn get(&self, mut index: usize) -> Option<(f64, &Bytes)> {
        for c in &self.chunks {
            if index < c.len() {
                let (s, m) = &c[index];
                return Some((*s, m));
            }
            index -= c.len();
        }
        None
    }

    /// Elements from `start` on, ascending.
    pub fn iter_from(&self, mut start: usize) -> impl Iterator<Item = (f64, &Bytes)> {
        let mut first = self.chunks.len();
        for (i, c) in self.chunks.iter().enumerate() {
            if start < c.len() {
                first = i;
                break;
            }
            start -= c.len();
        }
        let mut offset = start;
        self.chunks[first.min(self.chunks.len())..]
            .iter()
            .flat_map(move |c| {
                let skip = std::mem::take(&mut offset);
                c[skip.min(c.len())..].iter()
            })
            .map(|(s, m)| (*s, m))
    }

    /// Elements from index `end` (inclusive) down to the first, descending.
    pub fn iter_rev_from(&self, end: usize) -> impl Iterator<Item = (f64, &Bytes)> {
        let total = self.len;
        self.chunks
            .iter()
            .rev()
            .flat_map(|c| c.iter().rev())
            .skip(total.saturating_sub(end + 1))
            .map(|(s, m)| (*s, m))
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (f64, &Bytes)> {
        self.chunks.iter().flatten().map(|(s, m)| (*s, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn stays_sorted_with_ranks() {
        let mut rng = rand::rng();
        let mut list = SortedList::default();
        let mut model: Vec<(f64, Bytes)> = Vec::new();
        for i in 0..3000 {
            let score = f64::from(rng.random_range(0..50u8));
            let member = Bytes::from(format!("m{}", rng.random_range(0..2000u32)));
            if model.iter().any(|(_, m)| *m == member) {
                let pos = model.iter().position(|(_, m)| *m == member).unwrap();
                let (s, m) = model.remove(pos);
                assert!(list.remove(s, &m));
            } else {
                model.push((score, member.clone()));
                list.insert(score, member);
            }
            if i % 500 == 0 {
                model.sort_by(|a, b| compare(a.0, &a.1, b.0, &b.1));
                let got: Vec<(f64, Bytes)> = list.iter().map(|(s, m)| (s, m.clone())).collect();
                assert_eq!(got, model);
                for (rank, (s, m)) in model.iter().enumerate() {
                    assert_eq!(list.rank(*s, m), rank);
                    assert_eq!(
                        list.get(rank).map(|(s, m)| (s, m.clone())),
                        Some((*s, m.clone()))
                    );
                }
                let from: Vec<_> = list.iter_from(7).map(|(s, _)| s).collect();
                assert_eq!(from.len(), model.len().saturating_sub(7));
                let rev: Vec<_> = list.iter_rev_from(5).map(|(_, m)| m.clone()).collect();
                let expect: Vec<_> = model[..6.min(model.len())]
                    .iter()
                    .rev()
                    .map(|(_, m)| m.clone())
                    .collect();
                assert_eq!(rev, expect);
            }
        }
        assert!(!list.remove(1000.0, b"absent"));
    }
}
