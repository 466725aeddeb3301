//! Finding equal 64-bit fingerprints fast: an open-addressing table, reused across calls, that
//! remembers one payload per fingerprint. Used for duplicate keys (payload: the key's offset) and
//! for duplicate members inside a value. Fingerprints are hashes, so they index the table as-is.
//! A member's fingerprint ([`fingerprint`]) is made here too.

use crate::hint::prefetch;
use crate::rdb::cursor::Elem;

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

/// 64-bit fingerprint of an element's logical bytes: equal elements have equal fingerprints,
/// an integer entry and the same number stored as its decimal text included. A number
/// (an integer entry, or bytes that are the canonical text of one) is mixed as an integer
/// without rendering it, other bytes are hashed (`hash_bytes`); a match between the two kinds
/// is only a suspicion that the caller confirms on the real bytes, like any other.
#[inline(always)]
pub fn fingerprint(e: Elem<'_>) -> u64 {
    match e {
        Elem::Int(i) => mix_int(i),
        Elem::Bytes(b) => match b.first() {
            Some(&c) if (c.is_ascii_digit() || c == b'-') && b.len() <= 20 => number_or_bytes(b),
            _ => hash_bytes(b),
        },
    }
}

/// `fingerprint` of bytes that may be the text of a number.
#[inline(never)]
fn number_or_bytes(b: &[u8]) -> u64 {
    match crate::rdb::decimal::parse_canonical_i64(b) {
        Some(i) => mix_int(i),
        None => hash_bytes(b),
    }
}

/// A 64-bit hash of bytes built from 64x64->128-bit multiplies folded back to 64 bits (the
/// construction of the wyhash / rapidhash family): members are mostly under 64 bytes, where a
/// general hash's dispatch and secret loads cost as much as the mixing. Up to 16 bytes take
/// two multiplies; up to 64, two or four more side by side; longer ones one more per 16 bytes.
/// Not a bijection: equal fingerprints of different bytes are rare and only a suspicion (the
/// caller confirms every match).
#[inline(always)]
fn hash_bytes(b: &[u8]) -> u64 {
    const S0: u64 = 0x2d35_8dcc_aa6c_78a5;
    const S1: u64 = 0x8bb8_4b93_962e_acc9;
    const S2: u64 = 0x4b33_a62e_d433_d4a3;
    const S3: u64 = 0x4d5a_2da5_1de1_aa47;
    const S4: u64 = 0xa076_1d64_78bd_642f;
    const S5: u64 = 0xe703_7ed1_a0b4_28db;
    const S6: u64 = 0x8ebc_6af0_9c88_c6e3;
    const S7: u64 = 0x5899_65cc_7537_4cc3;
    #[inline(always)]
    fn r4(b: &[u8], i: usize) -> u64 {
        u32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as u64
    }
    #[inline(always)]
    fn r8(b: &[u8], i: usize) -> u64 {
        u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
    }
    let n = b.len();
    let mut seed = S0 ^ (n as u64).wrapping_mul(S2);
    let (x, y) = if n <= 16 {
        if n >= 4 {
            // Two (n < 8) or four (n >= 8) words of 4 bytes that cover every byte.
            let d = (n >> 3) << 2;
            ((r4(b, 0) << 32) | r4(b, d), (r4(b, n - 4) << 32) | r4(b, n - 4 - d))
        } else if n > 0 {
            (((b[0] as u64) << 56) | ((b[n >> 1] as u64) << 32) | b[n - 1] as u64, 0)
        } else {
            (0, 0)
        }
    } else if n <= 64 {
        // Independent products of the first and last 16 (and 32) bytes, summed: they overlap
        // in the pipeline instead of waiting on each other.
        let mut acc = seed
            .wrapping_add(fold_mul(r8(b, 0) ^ S1, r8(b, 8) ^ S2))
            .wrapping_add(fold_mul(r8(b, n - 16) ^ S3, r8(b, n - 8) ^ S4));
        if n > 32 {
            acc = acc
                .wrapping_add(fold_mul(r8(b, 16) ^ S5, r8(b, 24) ^ S6))
                .wrapping_add(fold_mul(r8(b, n - 32) ^ S7, r8(b, n - 24) ^ S0));
        }
        (acc, acc.rotate_left(29))
    } else {
        let mut i = 0;
        while n - i > 16 {
            seed = fold_mul(r8(b, i) ^ S1, r8(b, i + 8) ^ seed);
            i += 16;
        }
        (r8(b, n - 16), r8(b, n - 8))
    };
    let m = ((x ^ S1) as u128) * ((y ^ seed) as u128);
    fold_mul((m as u64) ^ S0 ^ n as u64, ((m >> 64) as u64) ^ S1)
}

/// The 128-bit product of `a` and `b`, its halves xored.
#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let m = (a as u128) * (b as u128);
    (m as u64) ^ ((m >> 64) as u64)
}

/// A bijection of the 64-bit integers that scatters every input bit over the output (the
/// MurmurHash3 finalizer): distinct integers never share a fingerprint.
#[inline]
fn mix_int(i: i64) -> u64 {
    let mut h = i as u64;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
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

#[cfg(test)]
mod member_tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_fingerprint_alike_in_both_forms() {
        for i in [0i64, 1, -1, 7, 10, -10, 4095, -4096, i64::MAX, i64::MIN] {
            assert_eq!(fingerprint(Elem::Int(i)), fingerprint(Elem::Bytes(i.to_string().as_bytes())), "{i}");
        }
        // Text that is not the canonical form of a number is another member.
        for (text, n) in [(&b"007"[..], 7i64), (b"-0", 0), (b"+1", 1), (b" 1", 1), (b"1 ", 1)] {
            assert_ne!(fingerprint(Elem::Bytes(text)), fingerprint(Elem::Int(n)));
        }
        assert_ne!(fingerprint(Elem::Bytes(b"a")), fingerprint(Elem::Bytes(b"b")));
    }

    #[test]
    fn byte_hashes_differ_for_every_short_string_and_length() {
        // Every string of 0-2 bytes, the prefixes of one text at every length (where the 4- and
        // 8-byte words overlap differently), and one byte flipped anywhere in texts of 12 to 70 bytes:
        // no two fingerprints meet.
        let mut seen = std::collections::HashSet::new();
        let mut add = |b: &[u8]| assert!(seen.insert(fingerprint(Elem::Bytes(b))), "{b:?}");
        add(b"");
        for x in 0..=255u8 {
            add(&[x]);
            for y in 0..=255u8 {
                add(&[x, y]);
            }
        }
        let text: Vec<u8> = (0..70u8).map(|i| b'a' + i % 26).collect();
        for n in 3..=text.len() {
            add(&text[..n]);
        }
        for n in [12, 24, 40, 64, 70] {
            for i in 0..n {
                let mut t = text[..n].to_vec();
                t[i] ^= 0x20;
                add(&t);
            }
        }
    }

    proptest! {
        #[test]
        fn different_bytes_fingerprint_apart(a in proptest::collection::vec(any::<u8>(), 0..80), b in proptest::collection::vec(any::<u8>(), 0..80)) {
            // Numbers aside (the integer mix is compared as such above), bytes meet only when equal.
            prop_assume!(crate::rdb::decimal::parse_canonical_i64(&a).is_none() || crate::rdb::decimal::parse_canonical_i64(&b).is_none());
            prop_assert_eq!(fingerprint(Elem::Bytes(&a)) == fingerprint(Elem::Bytes(&b)), a == b);
        }

        #[test]
        fn int_and_text_agree(i in any::<i64>(), j in any::<i64>()) {
            prop_assert_eq!(fingerprint(Elem::Int(i)), fingerprint(Elem::Bytes(i.to_string().as_bytes())));
            // Distinct integers never share a fingerprint (the mix is a bijection).
            prop_assert_eq!(fingerprint(Elem::Int(i)) == fingerprint(Elem::Int(j)), i == j);
        }
    }
}
