//! A set of free addresses stored as disjoint, non-adjacent inclusive intervals.
//!
//! Addresses of both families are plain `u128` here (an IPv4 address is its `u32` value), so one
//! implementation serves a /16 and a /112 alike. Every operation is `O(log k)` in the number `k`
//! of free intervals, never in the number of addresses allocated: taking the lowest free address
//! from a fresh /16 splits nothing, it just moves the first interval's start.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent inclusive intervals `start -> end` of free addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FreeSet {
    intervals: BTreeMap<u128, u128>,
    /// Number of addresses in all intervals; saturates (a /0 of IPv6 holds 2^128 addresses).
    len: u128,
}

impl FreeSet {
    /// Adds the whole inclusive interval `start..=end` (which must not overlap the set).
    pub(crate) fn insert_interval(&mut self, start: u128, end: u128) {
        debug_assert!(start <= end);
        let mut start = start;
        let mut end = end;
        // Merge with a left neighbour ending right before `start`.
        if let Some((&s, &e)) = self.intervals.range(..start).next_back() {
            if e.checked_add(1) == Some(start) {
                self.intervals.remove(&s);
                self.len = self.len.saturating_sub(e - s).saturating_sub(1);
                start = s;
            }
        }
        // Merge with a right neighbour starting right after `end`.
        if let Some(next) = end.checked_add(1) {
            if let Some(e) = self.intervals.remove(&next) {
                self.len = self.len.saturating_sub(e - next).saturating_sub(1);
                end = e;
            }
        }
        self.intervals.insert(start, end);
        self.len = self.len.saturating_add(end - start).saturating_add(1);
    }

    /// Returns `addr` to the set; false when it was already free.
    pub(crate) fn insert(&mut self, addr: u128) -> bool {
        if self.contains(addr) {
            return false;
        }
        self.insert_interval(addr, addr);
        true
    }

    /// Whether `addr` is free.
    pub(crate) fn contains(&self, addr: u128) -> bool {
        self.intervals
            .range(..=addr)
            .next_back()
            .is_some_and(|(_, &e)| addr <= e)
    }

    /// Takes `addr` out of the set; false when it was not free.
    pub(crate) fn remove(&mut self, addr: u128) -> bool {
        let Some((&s, &e)) = self.intervals.range(..=addr).next_back() else {
            return false;
        };
        if addr > e {
            return false;
        }
        self.intervals.remove(&s);
        if s < addr {
            self.intervals.insert(s, addr - 1);
        }
        if addr < e {
            self.intervals.insert(addr + 1, e);
        }
        self.len = self.len.saturating_sub(1);
        true
    }

    /// The lowest free address.
    #[cfg(test)]
    pub(crate) fn first(&self) -> Option<u128> {
        self.intervals.first_key_value().map(|(&s, _)| s)
    }

    /// The lowest free address in the inclusive interval `start..=end`, `O(log k)`.
    pub(crate) fn first_in(&self, start: u128, end: u128) -> Option<u128> {
        // The interval holding `start`, if any, else the first one beginning after it.
        if let Some((_, &e)) = self.intervals.range(..=start).next_back() {
            if start <= e {
                return Some(start);
            }
        }
        self.intervals
            .range(start..)
            .next()
            .map(|(&s, _)| s)
            .filter(|&s| s <= end)
    }

    /// Number of free addresses (saturating at `u128::MAX`).
    pub(crate) fn len(&self) -> u128 {
        self.len
    }

    /// Number of intervals, for tests of the cost model.
    #[cfg(test)]
    pub(crate) fn interval_count(&self) -> usize {
        self.intervals.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn taking_the_lowest_address_of_a_range_keeps_one_interval() {
        let mut s = FreeSet::default();
        s.insert_interval(10, 20);
        assert_eq!(s.first(), Some(10));
        assert!(s.remove(10));
        assert_eq!(s.first(), Some(11));
        assert_eq!(s.interval_count(), 1);
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn lowest_first_allocation_of_a_whole_slash_16_never_fragments() {
        // The cost model: k (free intervals) stays at 1, so every step is O(log 1).
        let mut s = FreeSet::default();
        s.insert_interval(0x0a00_0000, 0x0a00_ffff);
        for _ in 0..65_536 {
            let first = s.first().expect("not exhausted yet");
            assert!(s.remove(first));
            assert!(s.interval_count() <= 1);
        }
        assert_eq!(s.first(), None);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn removing_from_the_middle_splits_and_inserting_merges_back() {
        let mut s = FreeSet::default();
        s.insert_interval(0, 9);
        assert!(s.remove(5));
        assert_eq!(s.interval_count(), 2);
        assert!(!s.contains(5));
        assert!(!s.remove(5));
        assert!(s.insert(5));
        assert!(!s.insert(5));
        assert_eq!(s.interval_count(), 1);
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn first_in_looks_only_inside_the_window() {
        let mut s = FreeSet::default();
        s.insert_interval(0, 9);
        s.insert_interval(20, 29);
        assert_eq!(s.first_in(5, 25), Some(5));
        assert_eq!(s.first_in(10, 25), Some(20));
        assert_eq!(s.first_in(10, 19), None);
        assert_eq!(s.first_in(30, u128::MAX), None);
        assert!(s.remove(20));
        assert_eq!(s.first_in(15, 29), Some(21));
    }

    #[test]
    fn extremes_of_the_u128_space_do_not_overflow() {
        let mut s = FreeSet::default();
        s.insert_interval(u128::MAX - 1, u128::MAX);
        assert!(s.remove(u128::MAX));
        assert!(s.insert(u128::MAX));
        s.insert_interval(0, 0);
        assert!(s.contains(0));
        assert_eq!(s.len(), 3);
        let mut all = FreeSet::default();
        all.insert_interval(0, u128::MAX);
        assert_eq!(all.len(), u128::MAX, "saturates instead of wrapping");
    }

    proptest! {
        #[test]
        fn behaves_like_a_set_of_addresses(ops in proptest::collection::vec((any::<bool>(), 0u128..64), 0..200)) {
            let mut s = FreeSet::default();
            s.insert_interval(0, 63);
            let mut model: BTreeSet<u128> = (0..64).collect();
            for (insert, addr) in ops {
                if insert {
                    prop_assert_eq!(s.insert(addr), model.insert(addr));
                } else {
                    prop_assert_eq!(s.remove(addr), model.remove(&addr));
                }
                prop_assert_eq!(s.first(), model.first().copied());
                prop_assert_eq!(s.first_in(10, 20), model.range(10..=20).next().copied());
                prop_assert_eq!(s.len(), model.len() as u128);
            }
            for a in 0..64u128 {
                prop_assert_eq!(s.contains(a), model.contains(&a));
            }
        }
    }
}
