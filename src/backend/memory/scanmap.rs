//! A map ordered by a per-process hash of its keys, which gives what Redis's
//! dictionaries give: O(log n) lookups, SCAN cursors that never miss an
//! element present for the whole iteration (and, unlike Redis, never repeat
//! one), and cheap random picks. A cursor is the hash of the next key to
//! return, so it stays valid however the map changes between calls.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::ops::Bound;
use std::sync::LazyLock;

use bytes::Bytes;
use rand::Rng;
use rand::seq::IteratorRandom;

/// One keyed hasher per process: cursors mean nothing to another process, and
/// nobody can choose keys that collide on purpose.
static HASHER: LazyLock<RandomState> = LazyLock::new(RandomState::new);

fn hash_of(key: &[u8]) -> u64 {
    HASHER.hash_one(key)
}

#[derive(Debug, Clone)]
pub struct ScanMap<V> {
    map: BTreeMap<(u64, Bytes), V>,
}

impl<V> Default for ScanMap<V> {
    fn default() -> Self {
        ScanMap {
            map: BTreeMap::new(),
        }
    }
}

impl<V> ScanMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entries whose hash is `hash` (nearly always zero or one).
    fn with_hash(&self, hash: u64) -> impl Iterator<Item = (&(u64, Bytes), &V)> {
        self.map
            .range((Bound::Included((hash, Bytes::new())), Bound::Unbounded))
            .take_while(move |((h, _), _)| *h == hash)
    }

    fn stored_key(&self, key: &[u8]) -> Option<(u64, Bytes)> {
        let hash = hash_of(key);
        self.with_hash(hash)
            .find(|((_, k), _)| k.as_ref() == key)
            .map(|(k, _)| k.clone())
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        let hash = hash_of(key);
        self.with_hash(hash)
            .find(|((_, k), _)| k.as_ref() == key)
            .map(|(_, v)| v)
    }

    pub fn get_key_value(&self, key: &[u8]) -> Option<(&Bytes, &V)> {
        let hash = hash_of(key);
        self.with_hash(hash)
            .find(|((_, k), _)| k.as_ref() == key)
            .map(|((_, k), v)| (k, v))
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let stored = self.stored_key(key)?;
        self.map.get_mut(&stored)
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: Bytes, value: V) -> Option<V> {
        let hash = hash_of(&key);
        self.map.insert((hash, key), value)
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<(Bytes, V)> {
        let stored = self.stored_key(key)?;
        self.map.remove_entry(&stored).map(|((_, k), v)| (k, v))
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Bytes, &V)> + Clone {
        self.map.iter().map(|((_, k), v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Bytes> + Clone {
        self.map.keys().map(|(_, k)| k)
    }

    /// One SCAN step: about `count` entries from `cursor` on (whole groups of
    /// equal hashes, so none is split across pages) and the next cursor, 0
    /// when the iteration is complete.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<(&Bytes, &V)>) {
        let mut out = Vec::new();
        let mut last_hash = None;
        for ((hash, key), value) in self
            .map
            .range((Bound::Included((cursor, Bytes::new())), Bound::Unbounded))
        {
            if out.len() >= count.max(1) && last_hash != Some(*hash) {
                return (*hash, out);
            }
            last_hash = Some(*hash);
            out.push((key, value));
        }
        (0, out)
    }

    /// An entry picked at random (roughly uniformly: the first entry at or
    /// after a random hash).
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<(&Bytes, &V)> {
        if self.map.is_empty() {
            return None;
        }
        let at: u64 = rng.random();
        self.map
            .range((Bound::Included((at, Bytes::new())), Bound::Unbounded))
            .next()
            .or_else(|| self.map.iter().next())
            .map(|((_, k), v)| (k, v))
    }

    /// The picks of HRANDFIELD/SRANDMEMBER/ZRANDMEMBER with a count: that
    /// many distinct entries when `count` is positive (at most all of them),
    /// `-count` entries with repetition when negative.
    pub fn sample(&self, count: i64) -> Vec<(&Bytes, &V)> {
        let mut rng = rand::rng();
        if count >= 0 {
            let n = usize::try_from(count).unwrap_or(usize::MAX).min(self.len());
            return self.iter().choose_multiple(&mut rng, n);
        }
        let all: Vec<(&Bytes, &V)> = self.iter().collect();
        if all.is_empty() {
            return Vec::new();
        }
        (0..count.unsigned_abs())
            .map(|_| all[rng.random_range(0..all.len())])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn scan_survives_changes_between_pages() {
        let mut map = ScanMap::new();
        for i in 0..1000 {
            map.insert(b(&format!("k{i}")), i);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let (next, page) = map.scan(cursor, 10);
            let keys: Vec<Bytes> = page.iter().map(|(k, _)| (*k).clone()).collect();
            for k in keys {
                assert!(seen.insert(k), "no key is returned twice");
            }
            // Churn: remove and add keys that are not part of the invariant.
            round += 1;
            map.insert(b(&format!("new{round}")), -1);
            map.remove(format!("new{}", round - 1).as_bytes());
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..1000 {
            assert!(seen.contains(&b(&format!("k{i}"))), "k{i} was missed");
        }
    }

    #[test]
    fn get_insert_remove() {
        let mut map = ScanMap::new();
        assert_eq!(map.insert(b("a"), 1), None);
        assert_eq!(map.insert(b("a"), 2), Some(1));
        assert_eq!(map.get(b"a"), Some(&2));
        *map.get_mut(b"a").unwrap() = 3;
        assert_eq!(map.remove(b"a"), Some((b("a"), 3)));
        assert!(map.is_empty());
        assert!(map.random(&mut rand::rng()).is_none());
    }
}
