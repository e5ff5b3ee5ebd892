//! The write journal of one outage: every write the fallback accepted, as
//! the sealed commands that replay it on the backend, in the order the
//! fallback applied them. Bounded: when full, the oldest entry is dropped and
//! counted. It also remembers which keys the outage has written whole (set,
//! deleted, flushed): only for those does the fallback hold the value a
//! read-modify-write needs.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

/// One command of an entry: sealed arguments, name first, and its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journaled {
    pub db: u32,
    pub args: Vec<Bytes>,
}

/// One accepted write: replayed as one command, or as one MULTI/EXEC when it
/// has several (a transaction, or a command and the absolute expiry it set).
#[derive(Debug)]
pub struct Entry {
    /// Increases by one per entry: what a replay acknowledges.
    pub seq: u64,
    pub at: SystemTime,
    pub commands: Vec<Journaled>,
    /// The keys it writes (for logs; never the values).
    pub keys: Vec<Bytes>,
}

#[derive(Debug)]
pub struct Journal {
    entries: VecDeque<Arc<Entry>>,
    max_entries: usize,
    next_seq: u64,
    /// Entries dropped because the journal was full (ever).
    pub dropped: u64,
    /// Entries added (ever).
    pub appended: u64,
    /// Entries the backend acknowledged (ever).
    pub replayed: u64,
    /// Keys this outage has written whole, by database.
    established: HashSet<(u32, Bytes)>,
    /// Databases this outage flushed: every key in them is established.
    flushed: HashSet<u32>,
}

impl Journal {
    pub fn new(max_entries: usize) -> Journal {
        Journal {
            entries: VecDeque::new(),
            max_entries: max_entries.max(1),
            next_seq: 1,
            dropped: 0,
            appended: 0,
            replayed: 0,
            established: HashSet::new(),
            flushed: HashSet::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends an entry; `true` when the journal was full and its oldest
    /// entry was dropped to make room.
    pub fn push(&mut self, commands: Vec<Journaled>, keys: Vec<Bytes>) -> bool {
        let dropped = self.entries.len() >= self.max_entries;
        if dropped {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(Arc::new(Entry {
            seq: self.next_seq,
            at: SystemTime::now(),
            commands,
            keys,
        }));
        self.next_seq += 1;
        self.appended += 1;
        dropped
    }

    /// When the oldest entry not yet replayed was written.
    pub fn oldest_at(&self) -> Option<SystemTime> {
        self.entries.front().map(|e| e.at)
    }

    /// The oldest `n` entries, still in the journal until acknowledged.
    pub fn oldest(&self, n: usize) -> Vec<Arc<Entry>> {
        self.entries.iter().take(n).cloned().collect()
    }

    /// Removes every entry up to `seq`, which the backend has applied (those
    /// already dropped meanwhile are simply gone).
    pub fn acknowledge(&mut self, seq: u64) {
        while self.entries.front().is_some_and(|e| e.seq <= seq) {
            self.entries.pop_front();
            self.replayed += 1;
        }
    }

    /// `key` in `db` now holds what this outage wrote, whole.
    pub fn establish(&mut self, db: u32, key: Bytes) {
        // Bounded like the journal; a key not remembered is only refused a
        // read-modify-write, never served a wrong value.
        if self.established.len() < self.max_entries {
            self.established.insert((db, key));
        }
    }

    /// Every key of `db` (FLUSHDB during the outage).
    pub fn establish_db(&mut self, db: u32) {
        self.flushed.insert(db);
    }

    pub fn is_established(&self, db: u32, key: &Bytes) -> bool {
        self.flushed.contains(&db) || self.established.contains(&(db, key.clone()))
    }

    /// The outage is over (the journal is empty and the fallback emptied).
    pub fn end_outage(&mut self) {
        self.established = HashSet::new();
        self.flushed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &'static str) -> Vec<Journaled> {
        vec![Journaled {
            db: 0,
            args: vec![
                Bytes::from_static(b"SET"),
                Bytes::from_static(key.as_bytes()),
            ],
        }]
    }

    #[test]
    fn keeps_order_and_drops_the_oldest_when_full() {
        let mut j = Journal::new(2);
        assert!(!j.push(set("a"), vec![]));
        assert!(!j.push(set("b"), vec![]));
        assert!(j.push(set("c"), vec![]), "full: the oldest goes");
        assert_eq!(j.dropped, 1);
        let keys: Vec<_> = j
            .oldest(10)
            .iter()
            .map(|e| e.commands[0].args[1].clone())
            .collect();
        assert_eq!(keys, ["b", "c"]);
        assert_eq!(j.oldest(10)[0].seq, 2);
    }

    #[test]
    fn acknowledged_entries_leave_and_later_ones_stay() {
        let mut j = Journal::new(10);
        for k in ["a", "b", "c"] {
            j.push(set(k), vec![]);
        }
        let batch = j.oldest(2);
        // A write arriving during the replay goes behind.
        j.push(set("d"), vec![]);
        j.acknowledge(batch.last().unwrap().seq);
        assert_eq!(j.len(), 2);
        assert_eq!(j.replayed, 2);
        assert_eq!(j.oldest(1)[0].commands[0].args[1], "c");
    }

    #[test]
    fn established_keys_are_per_database_and_flushes_cover_all() {
        let mut j = Journal::new(10);
        let k = Bytes::from_static(b"k");
        j.establish(0, k.clone());
        assert!(j.is_established(0, &k) && !j.is_established(1, &k));
        j.establish_db(3);
        assert!(j.is_established(3, &Bytes::from_static(b"any")));
        j.end_outage();
        assert!(!j.is_established(0, &k) && !j.is_established(3, &k));
    }
}
