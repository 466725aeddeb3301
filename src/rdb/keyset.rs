//! The fingerprint set of keys (`FingerprintBuckets`, used by verify's `KeySet` and by merge's
//! collision plan), and duplicate-key detection within a database at a small per-key cost: a
//! 64-bit fingerprint and the offset of the key in the file (16 bytes a key). Entries go to 256 buckets by the top byte
//! of the fingerprint; at the end each bucket goes through a fingerprint table of its own (small
//! enough to stay in cache, buckets in parallel), and keys are re-read from the file only where
//! fingerprints meet.

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use std::collections::HashMap;

use crate::error::Result;
use crate::rdb::fpset::FingerprintTable;
use crate::rdb::reader::key_at;

const OFFSET_MASK: u64 = (1 << 48) - 1;

const BUCKETS: usize = 256;

/// The fingerprint of `key` in database `db`: equal keys of one db have equal fingerprints,
/// and the db is folded in so that one set can hold the keys of several dbs.
#[inline]
pub fn fingerprint(db: u64, key: &[u8]) -> u64 {
    xxh3_64(key) ^ db.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Fingerprints with a 64-bit payload each (what the payload means is the caller's: where the
/// key is), in 256 buckets by the fingerprint's top byte, so that a bucket can be sorted or
/// tabled on its own, in cache, and buckets in parallel.
pub struct FingerprintBuckets {
    buckets: Vec<Vec<(u64, u64)>>,
    len: usize,
}

impl Default for FingerprintBuckets {
    fn default() -> FingerprintBuckets {
        FingerprintBuckets { buckets: vec![Vec::new(); BUCKETS], len: 0 }
    }
}

impl FingerprintBuckets {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room for about `n` entries in all.
    pub fn reserve(&mut self, n: usize) {
        let per = n / BUCKETS + n / BUCKETS / 8;
        for b in &mut self.buckets {
            b.reserve(per);
        }
    }

    #[inline]
    pub fn push(&mut self, fp: u64, payload: u64) {
        self.buckets[(fp >> 56) as usize].push((fp, payload));
        self.len += 1;
    }

    /// All entries of `parts`, bucket by bucket (each part's bucket freed as it is moved, so
    /// the peak is one bucket above the entries themselves).
    pub fn concat(mut parts: Vec<FingerprintBuckets>) -> FingerprintBuckets {
        let buckets: Vec<Vec<(u64, u64)>> = (0..BUCKETS)
            .map(|b| {
                let mut v = Vec::with_capacity(parts.iter().map(|p| p.buckets[b].len()).sum());
                for p in parts.iter_mut() {
                    v.append(&mut p.buckets[b]);
                    p.buckets[b] = Vec::new();
                }
                v
            })
            .collect();
        let len = buckets.iter().map(|b| b.len()).sum();
        FingerprintBuckets { buckets, len }
    }

    /// Sorts every bucket by (fingerprint, payload), buckets in parallel.
    pub fn sort(&mut self) {
        self.buckets.par_iter_mut().for_each(|b| b.sort_unstable());
    }

    /// The buckets, each a list of (fingerprint, payload).
    pub fn buckets(&self) -> &[Vec<(u64, u64)>] {
        &self.buckets
    }

    /// The entries with fingerprint `fp` (after `sort`).
    pub fn equal_to(&self, fp: u64) -> &[(u64, u64)] {
        let b = &self.buckets[(fp >> 56) as usize];
        let i = b.partition_point(|x| x.0 < fp);
        let j = i + b[i..].partition_point(|x| x.0 == fp);
        &b[i..j]
    }
}

/// Keys of a file with their offsets: the payload holds the key string's offset in its low 48
/// bits and the db in the high 16, for reporting.
#[derive(Default)]
pub struct KeySet {
    set: FingerprintBuckets,
}

/// A key seen twice in one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The db (saturated at 65535: files with more are corrupt anyway).
    pub db: u64,
    pub key: Vec<u8>,
    /// Offset of the first occurrence's key string.
    pub first: u64,
    /// Offset of the later occurrence's key string.
    pub again: u64,
}

impl KeySet {
    pub fn new() -> KeySet {
        KeySet::default()
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub fn reserve(&mut self, n: usize) {
        self.set.reserve(n);
    }

    /// Records `key` of `db`, whose string starts at `key_offset`.
    #[inline]
    pub fn insert(&mut self, db: u64, key: &[u8], key_offset: u64) {
        self.set.push(fingerprint(db, key), (key_offset & OFFSET_MASK) | (db.min(0xFFFF) << 48));
    }

    /// Every repeated key, in file order of the repetition. `data` is the file the offsets
    /// point into.
    pub fn duplicates(self, data: &[u8]) -> Result<Vec<Duplicate>> {
        let found: Vec<Result<Vec<Duplicate>>> =
            self.set.buckets.into_par_iter().map(|b| bucket_duplicates(&b, data)).collect();
        let mut out = Vec::new();
        for f in found {
            out.extend(f?);
        }
        out.sort_by_key(|d| d.again);
        Ok(out)
    }
}

fn bucket_duplicates(e: &[(u64, u64)], data: &[u8]) -> Result<Vec<Duplicate>> {
    let mut out = Vec::new();
    let mut table = FingerprintTable::default();
    table.reset(e.len());
    // Fingerprints shared by different keys (a true 64-bit collision): every offset seen with
    // them, so a later key is compared with all of them.
    let mut shared: HashMap<u64, Vec<u64>> = HashMap::new();
    for &(fp, packed) in e {
        let Some(prev) = table.insert(fp, packed) else { continue };
        let off = packed & OFFSET_MASK;
        let key = key_at(data, off)?;
        let earlier = shared.entry(fp).or_insert_with(|| vec![prev & OFFSET_MASK]);
        let mut found = None;
        for &o in earlier.iter() {
            if key_at(data, o)? == key {
                found = Some(o);
                break;
            }
        }
        match found {
            // The db is folded into the fingerprint: equal keys here are in the same db.
            Some(first) => out.push(Duplicate { db: packed >> 48, key: key.into_owned(), first, again: off }),
            None => earlier.push(off),
        }
    }
    Ok(out)
}
