//! The bounded table of per-source token buckets: at most `max` sources,
//! the least recently seen one forgotten to make room for a new one, every
//! operation O(1). Pure: the time is a parameter.
//!
//! The slots live in one `Vec` (never more than `max`) threaded by a
//! doubly linked list of indices, most recently seen first; a `HashMap`
//! finds a source's slot. A flood of spoofed sources therefore costs no
//! memory beyond the bound: each new source takes the slot of the one
//! seen longest ago. Forgetting a source can only give it a full bucket
//! again, which it would have had anyway after `burst / rate` seconds of
//! silence; a source that keeps sending stays in the table unless `max`
//! other sources arrive between two of its datagrams.
//!
//! The map keeps std's `RandomState` (SipHash with a random key): the keys
//! come from the network, and a predictable hash would let a sender pick
//! addresses that all collide.

use std::collections::HashMap;

use super::bucket::{Rate, TokenBucket};
use crate::source::Source;

/// "No slot": the end of the list.
const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Slot {
    source: Source,
    bucket: TokenBucket,
    /// The slot seen just more recently, or [`NIL`].
    newer: u32,
    /// The slot seen just less recently, or [`NIL`].
    older: u32,
}

/// Token buckets for at most `max` sources.
#[derive(Debug)]
pub struct RateTable {
    rate: Rate,
    max: usize,
    index: HashMap<Source, u32>,
    slots: Vec<Slot>,
    /// Most recently seen slot.
    newest: u32,
    /// Least recently seen slot: the next to be reused.
    oldest: u32,
}

impl RateTable {
    /// An empty table for at most `max` sources (at least 1). Memory grows
    /// with the sources seen, up to the bound, and never past it.
    pub fn new(rate: Rate, max: usize) -> RateTable {
        RateTable {
            rate,
            max: max.clamp(1, NIL as usize),
            index: HashMap::new(),
            slots: Vec::new(),
            newest: NIL,
            oldest: NIL,
        }
    }

    /// Takes one token from `source`'s bucket at `now` (nanoseconds from
    /// any fixed start); `false` means over the rate. A source not in the
    /// table starts with a full bucket.
    #[inline]
    pub fn take(&mut self, source: Source, now: u64) -> bool {
        let i = match self.index.get(&source) {
            Some(&i) => {
                self.unlink(i);
                i
            }
            None => self.claim(source),
        };
        self.push_newest(i);
        let rate = self.rate;
        self.slots[i as usize].bucket.take(rate, now)
    }

    /// Sources tracked now (at most `max`).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A slot for a new source, with a full bucket, not linked: a fresh one
    /// while under the bound, else the least recently seen one's.
    fn claim(&mut self, source: Source) -> u32 {
        let fresh = Slot {
            source,
            bucket: TokenBucket::FULL,
            newer: NIL,
            older: NIL,
        };
        let i = if self.slots.len() < self.max {
            if self.slots.len() == self.slots.capacity() {
                // Doubling, but never past the bound.
                let more = self.slots.len().max(16).min(self.max - self.slots.len());
                self.slots.reserve_exact(more);
            }
            self.slots.push(fresh);
            (self.slots.len() - 1) as u32
        } else {
            let i = self.oldest;
            self.unlink(i);
            let old = std::mem::replace(&mut self.slots[i as usize], fresh);
            self.index.remove(&old.source);
            i
        };
        self.index.insert(source, i);
        i
    }

    /// Takes slot `i` out of the list.
    fn unlink(&mut self, i: u32) {
        let Slot { newer, older, .. } = self.slots[i as usize];
        match newer {
            NIL => self.newest = older,
            n => self.slots[n as usize].older = older,
        }
        match older {
            NIL => self.oldest = newer,
            o => self.slots[o as usize].newer = newer,
        }
    }

    /// Puts slot `i` (not in the list) at the front.
    fn push_newest(&mut self, i: u32) {
        let old_newest = self.newest;
        let slot = &mut self.slots[i as usize];
        slot.newer = NIL;
        slot.older = old_newest;
        match old_newest {
            NIL => self.oldest = i,
            n => self.slots[n as usize].newer = i,
        }
        self.newest = i;
    }

    /// The sources from most to least recently seen.
    #[cfg(test)]
    fn by_recency(&self) -> Vec<Source> {
        let mut out = Vec::with_capacity(self.slots.len());
        let mut i = self.newest;
        while i != NIL {
            let slot = &self.slots[i as usize];
            out.push(slot.source);
            i = slot.older;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn v4(n: u32) -> Source {
        Source::V4(n)
    }

    fn table(rate: u32, max: usize) -> RateTable {
        RateTable::new(Rate::per_second(rate).unwrap(), max)
    }

    fn takes(t: &mut RateTable, s: Source, now: u64, tries: usize) -> usize {
        (0..tries).filter(|_| t.take(s, now)).count()
    }

    #[test]
    fn each_source_has_its_own_bucket() {
        let mut t = table(10, 16);
        assert_eq!(takes(&mut t, v4(1), 0, 100), 10);
        assert_eq!(
            takes(&mut t, v4(2), 0, 100),
            10,
            "source 1 took none of 2's"
        );
        assert_eq!(takes(&mut t, v4(1), 0, 1), 0);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn the_table_never_holds_more_than_max() {
        let mut t = table(10, 8);
        for n in 0..10_000 {
            assert!(t.take(v4(n), n as u64), "a new source starts full");
            assert!(t.len() <= 8);
        }
        assert_eq!(t.len(), 8);
        assert_eq!(t.index.len(), 8, "the map forgets what the list forgets");
        assert!(t.slots.capacity() <= 8, "no slot allocated past the bound");
    }

    #[test]
    fn the_least_recently_seen_source_is_forgotten_first() {
        let mut t = table(10, 3);
        for n in [1, 2, 3] {
            t.take(v4(n), 0);
        }
        t.take(v4(1), 0); // 1 is now the most recent; 2 the oldest
        assert_eq!(t.by_recency(), [v4(1), v4(3), v4(2)]);
        t.take(v4(4), 0);
        assert_eq!(t.by_recency(), [v4(4), v4(1), v4(3)]);
        assert!(!t.index.contains_key(&v4(2)));
    }

    #[test]
    fn a_busy_source_keeps_its_empty_bucket_through_a_flood_of_new_ones() {
        let mut t = table(10, 64);
        assert_eq!(takes(&mut t, v4(7), 0, 10), 10);
        // Fewer than `max` new sources between two of its datagrams: it
        // stays tracked, and its bucket stays empty.
        for round in 0..100u32 {
            for n in 0..50 {
                t.take(v4(1000 + round * 50 + n), MS);
            }
            assert!(!t.take(v4(7), MS), "round {round}: refilled by a flood");
        }
        assert!(t.len() <= 64);
    }

    #[test]
    fn a_forgotten_source_comes_back_with_a_full_bucket() {
        let mut t = table(10, 2);
        assert_eq!(takes(&mut t, v4(1), 0, 20), 10);
        t.take(v4(2), 0);
        t.take(v4(3), 0); // 1 is forgotten
        assert_eq!(takes(&mut t, v4(1), 0, 20), 10);
    }

    #[test]
    fn one_slot_table_works() {
        let mut t = table(1, 1);
        assert!(t.take(v4(1), 0));
        assert!(!t.take(v4(1), 0));
        assert!(t.take(v4(2), 0));
        assert_eq!(t.by_recency(), [v4(2)]);
    }

    #[test]
    fn the_list_and_the_map_agree_after_churn() {
        let mut t = table(3, 5);
        let mut x = 12345u32;
        for step in 0..5_000u64 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            t.take(v4(x % 9), step * MS);
            let order = t.by_recency();
            assert_eq!(order.len(), t.len());
            assert_eq!(order[0], v4(x % 9), "the last source seen is first");
            for s in &order {
                assert!(t.index.contains_key(s));
            }
        }
    }
}
