//! The pool's packages ordered by fee rate: each transaction with its
//! descendants, lowest rate first (what eviction takes), and each with its
//! ancestors, highest first (what a template takes). Bitcoin Core's
//! `CTxMemPool` keeps the same two orders in its multi-index.

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeSet;

/// A package's size: how many transactions, their fees and their bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Package {
    pub count: usize,
    pub fee: u64,
    pub size: usize,
}

impl Package {
    /// One transaction on its own.
    pub fn single(fee: u64, size: usize) -> Package {
        Package {
            count: 1,
            fee,
            size,
        }
    }

    /// With `other` added.
    pub fn plus(self, other: Package) -> Package {
        Package {
            count: self.count + other.count,
            fee: self.fee.saturating_add(other.fee),
            size: self.size + other.size,
        }
    }

    /// With `other` taken away.
    pub fn minus(self, other: Package) -> Package {
        Package {
            count: self.count.saturating_sub(other.count),
            fee: self.fee.saturating_sub(other.fee),
            size: self.size.saturating_sub(other.size),
        }
    }

    pub fn rate(self) -> Rate {
        Rate {
            fee: self.fee,
            size: self.size,
        }
    }
}

/// A fee over a size, ordered by the exact rate (by cross-multiplying).
/// Two rates that are equal as fractions compare equal, so the indexes add
/// the arrival number to each key.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rate {
    pub fee: u64,
    pub size: usize,
}

impl Ord for Rate {
    fn cmp(&self, o: &Self) -> Ordering {
        (u128::from(self.fee) * o.size.max(1) as u128)
            .cmp(&(u128::from(o.fee) * self.size.max(1) as u128))
    }
}

impl PartialOrd for Rate {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl PartialEq for Rate {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}

impl Eq for Rate {}

/// The two orders. Keys carry the entry's arrival number, which is unique,
/// so no two keys are equal.
#[derive(Clone, Debug, Default)]
pub(super) struct PackageIndex {
    /// By descendant-package rate, lowest first; among equals the newest
    /// first.
    pub by_descendants: BTreeSet<(Rate, Reverse<u64>)>,
    /// By ancestor-package rate, highest first; among equals the oldest
    /// first.
    pub by_ancestors: BTreeSet<(Reverse<Rate>, u64)>,
}

impl PackageIndex {
    pub fn insert(&mut self, seq: u64, desc: Package, anc: Package) {
        self.by_descendants.insert((desc.rate(), Reverse(seq)));
        self.by_ancestors.insert((Reverse(anc.rate()), seq));
    }

    pub fn remove(&mut self, seq: u64, desc: Package, anc: Package) {
        self.by_descendants.remove(&(desc.rate(), Reverse(seq)));
        self.by_ancestors.remove(&(Reverse(anc.rate()), seq));
    }

    pub fn clear(&mut self) {
        self.by_descendants.clear();
        self.by_ancestors.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_compare_as_fractions_and_keys_stay_distinct() {
        let a = Rate { fee: 2, size: 200 };
        let b = Rate { fee: 1, size: 100 };
        let c = Rate { fee: 3, size: 200 };
        assert_eq!(a, b);
        assert!(c > a);
        let mut idx = PackageIndex::default();
        idx.insert(1, Package::single(2, 200), Package::single(2, 200));
        idx.insert(2, Package::single(1, 100), Package::single(1, 100));
        idx.insert(3, Package::single(3, 200), Package::single(3, 200));
        let low: Vec<u64> = idx.by_descendants.iter().map(|(_, s)| s.0).collect();
        assert_eq!(
            low,
            vec![2, 1, 3],
            "lowest first, the newest of equals first"
        );
        let high: Vec<u64> = idx.by_ancestors.iter().map(|(_, s)| *s).collect();
        assert_eq!(
            high,
            vec![3, 1, 2],
            "highest first, the oldest of equals first"
        );
        idx.remove(1, Package::single(2, 200), Package::single(2, 200));
        assert_eq!(idx.by_descendants.len(), 2);
        assert_eq!(idx.by_ancestors.len(), 2);
    }
}
