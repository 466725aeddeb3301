//! Finding equal 64-bit fingerprints fast: an open-addressing table, reused across calls, that
//! remembers one payload per fingerprint. Used for duplicate keys (payload: the key's offset) and
//! for duplicate members inside a value. Fingerprints are hashes, so they index the table as-is.

/// A set of non-zero 64-bit fingerprints, each with one payload; see the module docs. Call
/// [`FingerprintTable::reset`] before each use.
#[derive(Default)]
pub struct FingerprintTable {
    /// (fingerprint, payload); fingerprint 0 marks an empty slot.
    slots: Vec<(u64, u64)>,
    mask: usize,
    /// `any_repeated`'s own table: fingerprints only (no payload to store), 0 for empty. Half
    /// the bytes to clear and probe as `slots`.
    seen: Vec<u64>,
}

impl FingerprintTable {
    /// Empties the table and sizes it for `n` fingerprints (load factor at most 1/2).
    pub fn reset(&mut self, n: usize) {
        let cap = (n.max(4) * 2).next_power_of_two();
        self.slots.clear();
        self.slots.resize(cap, (0, 0));
        self.mask = cap - 1;
    }

    /// Adds `fp` with `payload`; returns the payload stored with an equal fingerprint instead, if
    /// one is already there. Fingerprint 0 is treated as 1 (a false match is only a suspicion:
    /// callers confirm every match on the real bytes).
    #[inline]
    pub fn insert(&mut self, fp: u64, payload: u64) -> Option<u64> {
        let fp = fp.max(1);
        let mut i = (fp as usize) & self.mask;
        loop {
            let (f, p) = self.slots[i];
            if f == 0 {
                self.slots[i] = (fp, payload);
                return None;
            }
            if f == fp {
                return Some(p);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Asks the processor to bring the home slot of `fp` into cache: a caller that knows the
    /// fingerprints it will insert a few steps ahead hides the miss of a big table's first probe.
    #[inline]
    pub fn prefetch(&self, fp: u64) {
        prefetch_slot(&self.slots, (fp.max(1) as usize) & self.mask);
    }

    /// True when two of `fps` are equal (or are 0 and 1, see `insert`).
    pub fn any_repeated(&mut self, fps: &[u64]) -> bool {
        match fps.len() {
            0 | 1 => false,
            n if n <= 8 => (1..n).any(|i| fps[..i].contains(&fps[i])),
            n => {
                // Small tables at most a quarter full: the first probe finds an empty slot more
                // often, so its branch is mispredicted less (clearing the bigger table costs
                // less than that); big ones at most half full, to stay in cache.
                let cap = (n * if n <= SPARSE_UP_TO { 4 } else { 2 }).next_power_of_two();
                let mask = cap - 1;
                self.seen.clear();
                self.seen.resize(cap, 0);
                let seen = &mut self.seen[..];
                // Tables beyond the first-level cache miss on most first probes: each
                // fingerprint's slot is asked for `AHEAD` fingerprints before it is probed.
                let ahead = if cap > 4096 { AHEAD } else { 0 };
                fps.iter().enumerate().any(|(i, &f)| {
                    if ahead > 0
                        && let Some(&g) = fps.get(i + ahead)
                    {
                        prefetch_slot(seen, (g.max(1) as usize) & mask);
                    }
                    let f = f.max(1);
                    let mut i = (f as usize) & mask;
                    loop {
                        match seen[i] {
                            0 => {
                                seen[i] = f;
                                return false;
                            }
                            x if x == f => return true,
                            _ => i = (i + 1) & mask,
                        }
                    }
                })
            }
        }
    }
}

/// Up to this many fingerprints, `any_repeated`'s table is at most a quarter full.
const SPARSE_UP_TO: usize = 1024;

/// How many fingerprints ahead a big table's slots are prefetched.
pub const AHEAD: usize = 16;

/// A prefetch of `slots[i]` (a hint: no effect on results; nothing where unsupported).
#[inline(always)]
fn prefetch_slot<T>(slots: &[T], i: usize) {
    if let Some(s) = slots.get(i) {
        prefetch(s);
    }
}

/// A prefetch of the spare capacity of `v`, `ahead` elements past its end: a vector pushed to
/// now and then among many others (buckets filled in turn) finds its next cache line there.
#[inline(always)]
pub fn prefetch_tail<T>(v: &mut Vec<T>, ahead: usize) {
    if let Some(s) = v.spare_capacity_mut().get(ahead) {
        prefetch(s);
    }
}

#[inline(always)]
fn prefetch<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of every x86_64 target; a prefetch reads nothing and cannot
        // fault, and the address is that of a live value.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((at as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_repeats_and_only_repeats() {
        let mut t = FingerprintTable::default();
        let distinct: Vec<u64> = (1..1000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
        assert!(!t.any_repeated(&distinct));
        assert!(!t.any_repeated(&distinct[..5]));
        let mut with_dup = distinct.clone();
        with_dup.push(distinct[500]);
        assert!(t.any_repeated(&with_dup));
        assert!(t.any_repeated(&[7, 3, 7]));
        t.reset(10);
        assert_eq!(t.insert(42, 1), None);
        assert_eq!(t.insert(43, 2), None);
        assert_eq!(t.insert(42, 3), Some(1));
        // Keys that land in the same slot (same low bits) are told apart.
        t.reset(4);
        assert_eq!(t.insert(8, 1), None);
        assert_eq!(t.insert(16, 2), None);
        assert_eq!(t.insert(16, 3), Some(2));
    }
}
