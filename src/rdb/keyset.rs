//! Duplicate-key detection within a database at a small per-key cost: a 64-bit fingerprint and
//! the offset of the key in the file (16 bytes a key). Entries go to 256 buckets by the top byte
//! of the fingerprint; at the end each bucket goes through a fingerprint table of its own (small
//! enough to stay in cache, buckets in parallel), and keys are re-read from the file only where
//! fingerprints meet.

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use std::collections::HashMap;

use crate::error::{Error, ErrorKind, Result};
use crate::rdb::fpset::FingerprintTable;
use crate::rdb::reader::key_at;

const OFFSET_MASK: u64 = (1 << 48) - 1;

const BUCKETS: usize = 256;

pub struct KeySet {
    /// (fingerprint of db and key, offset of the key string in the file in the low 48 bits and
    /// the db in the high 16, for reporting), by the fingerprint's top byte.
    buckets: Vec<Vec<(u64, u64)>>,
    len: usize,
}

impl Default for KeySet {
    fn default() -> KeySet {
        KeySet { buckets: vec![Vec::new(); BUCKETS], len: 0 }
    }
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

impl Duplicate {
    /// The error a command that reads the file gives for it (Redis refuses such a file), with
    /// the offset of the repetition, the db and the key.
    pub fn error(&self) -> Error {
        Error::new(
            ErrorKind::DuplicateKey,
            self.again,
            format!(
                "key already present in this database (first at offset {}): Redis refuses to load the file",
                self.first
            ),
        )
        .in_key(self.db, &self.key)
    }
}

impl KeySet {
    pub fn new() -> KeySet {
        KeySet::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn reserve(&mut self, n: usize) {
        let per = n / BUCKETS + n / BUCKETS / 8;
        for b in &mut self.buckets {
            b.reserve(per);
        }
    }

    /// Records `key` of `db`, whose string starts at `key_offset`.
    #[inline]
    pub fn insert(&mut self, db: u64, key: &[u8], key_offset: u64) {
        let fp = xxh3_64(key) ^ db.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.buckets[(fp >> 56) as usize].push((fp, (key_offset & OFFSET_MASK) | (db.min(0xFFFF) << 48)));
        self.len += 1;
    }

    /// `Ok` when no key repeats, else the error for the first repetition in file order (what a
    /// command that stops at the first error reports).
    pub fn check(self, data: &[u8]) -> Result<()> {
        match self.duplicates(data)?.first() {
            None => Ok(()),
            Some(d) => Err(d.error()),
        }
    }

    /// Every repeated key, in file order of the repetition. `data` is the file the offsets
    /// point into.
    pub fn duplicates(self, data: &[u8]) -> Result<Vec<Duplicate>> {
        let found: Vec<Result<Vec<Duplicate>>> =
            self.buckets.into_par_iter().map(|b| bucket_duplicates(&b, data)).collect();
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
