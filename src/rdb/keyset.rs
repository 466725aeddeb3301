//! Duplicate-key detection within a database at a small per-key cost: a 64-bit fingerprint and
//! the offset of the key in the file (16 bytes a key). Entries go to 256 buckets by the top byte
//! of the fingerprint; at the end each bucket goes through a fingerprint table of its own (small
//! enough to stay in cache, buckets in parallel), and keys are re-read from the file only where
//! fingerprints meet.
//!
//! Memory stays flat with the number of keys: past `MEMORY_ENTRIES` entries the buckets are
//! written out to an unnamed temporary file (runs per bucket) and read back one bucket at a time
//! at the end. Repeated keys are listed up to a limit (the first in file order) and the rest
//! counted, so a file of millions of repeats does not hold millions of keys in memory.

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::os::unix::fs::FileExt;

use crate::error::{Error, Result};
use crate::rdb::fpset::FingerprintTable;
use crate::rdb::reader::key_at;

const OFFSET_MASK: u64 = (1 << 48) - 1;

const BUCKETS: usize = 256;

/// Entries held in memory before the buckets are written out (16 bytes each: 16 MiB).
const MEMORY_ENTRIES: usize = 1 << 20;

pub struct KeySet {
    /// (fingerprint of db and key, offset of the key string in the file in the low 48 bits and
    /// the db in the high 16, for reporting), by the fingerprint's top byte.
    buckets: Vec<Vec<(u64, u64)>>,
    len: usize,
    /// Entries in `buckets` now.
    held: usize,
    memory_entries: usize,
    spill: Option<Spill>,
    /// Set when the temporary file failed: entries then stay in memory.
    spill_failed: bool,
}

/// Entries written out: one unnamed file, and per bucket its runs (file offset, entries).
struct Spill {
    file: std::fs::File,
    end: u64,
    runs: Vec<Vec<(u64, usize)>>,
}

impl Default for KeySet {
    fn default() -> KeySet {
        KeySet::with_memory(MEMORY_ENTRIES)
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

/// The repeated keys of a set: the first ones in file order, and how many in all.
#[derive(Debug, Default)]
pub struct Duplicates {
    pub listed: Vec<Duplicate>,
    pub total: u64,
}

impl KeySet {
    pub fn new() -> KeySet {
        KeySet::default()
    }

    /// A set holding at most `entries` entries in memory (the rest in a temporary file).
    pub fn with_memory(entries: usize) -> KeySet {
        KeySet {
            buckets: vec![Vec::new(); BUCKETS],
            len: 0,
            held: 0,
            memory_entries: entries.max(BUCKETS),
            spill: None,
            spill_failed: false,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn reserve(&mut self, n: usize) {
        let n = n.min(self.memory_entries.saturating_sub(self.held));
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
        self.held += 1;
        if self.held >= self.memory_entries && !self.spill_failed {
            self.write_out();
        }
    }

    /// Writes every bucket out as a run of the temporary file (kept in memory if that fails).
    #[cold]
    fn write_out(&mut self) {
        if self.spill.is_none() {
            match tempfile::tempfile() {
                Ok(file) => self.spill = Some(Spill { file, end: 0, runs: vec![Vec::new(); BUCKETS] }),
                Err(_) => {
                    self.spill_failed = true;
                    return;
                }
            }
        }
        let Some(s) = &mut self.spill else { return };
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &s.file);
        let mut end = s.end;
        for (b, entries) in self.buckets.iter_mut().enumerate() {
            if entries.is_empty() {
                continue;
            }
            let mut ok = true;
            for &(fp, packed) in entries.iter() {
                ok &= out.write_all(&fp.to_le_bytes()).is_ok() && out.write_all(&packed.to_le_bytes()).is_ok();
            }
            if !ok {
                self.spill_failed = true;
                return;
            }
            s.runs[b].push((end, entries.len()));
            end += 16 * entries.len() as u64;
            entries.clear();
        }
        if out.flush().is_err() {
            self.spill_failed = true;
            return;
        }
        s.end = end;
        self.held = 0;
    }

    /// Every repeated key, in file order of the repetition: the first `limit` of them with their
    /// key, and the count of all. `data` is the file the offsets point into.
    pub fn duplicates(self, data: &[u8], limit: usize) -> Result<Duplicates> {
        let spill = &self.spill;
        let found: Vec<Result<(Vec<Duplicate>, u64)>> = self
            .buckets
            .into_par_iter()
            .enumerate()
            .map(|(b, mut entries)| {
                if let Some(s) = spill {
                    let mut all = read_runs(s, b)?;
                    all.append(&mut entries);
                    entries = all;
                }
                bucket_duplicates(&entries, data, limit)
            })
            .collect();
        let mut out = Duplicates::default();
        for f in found {
            let (listed, total) = f?;
            out.listed.extend(listed);
            out.total += total;
        }
        out.listed.sort_by_key(|d| d.again);
        out.listed.truncate(limit);
        Ok(out)
    }
}

/// The entries of bucket `b` written out, in the order they were inserted.
fn read_runs(s: &Spill, b: usize) -> Result<Vec<(u64, u64)>> {
    let n: usize = s.runs[b].iter().map(|r| r.1).sum();
    let mut out = Vec::with_capacity(n);
    let mut buf = Vec::new();
    for &(at, count) in &s.runs[b] {
        buf.resize(16 * count, 0);
        s.file
            .read_exact_at(&mut buf, at)
            .map_err(|e| Error::new(crate::error::ErrorKind::Io, 0, format!("reading back key fingerprints: {e}")))?;
        out.extend(buf.chunks_exact(16).map(|c| {
            (u64::from_le_bytes(c[..8].try_into().unwrap()), u64::from_le_bytes(c[8..].try_into().unwrap()))
        }));
    }
    Ok(out)
}

/// The repeats in one bucket: the `limit` earliest (by the repeat's offset) with their key, and
/// the count of all.
fn bucket_duplicates(e: &[(u64, u64)], data: &[u8], limit: usize) -> Result<(Vec<Duplicate>, u64)> {
    let mut table = FingerprintTable::default();
    table.reset(e.len());
    // Fingerprints shared by different keys (a true 64-bit collision): every offset seen with
    // them, so a later key is compared with all of them.
    let mut shared: HashMap<u64, Vec<u64>> = HashMap::new();
    // The earliest repeats (a max-heap on the offset, at most `limit`), then their keys.
    let mut first: BinaryHeap<(u64, u64, u64)> = BinaryHeap::new();
    let mut total = 0u64;
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
            Some(first_at) => {
                total += 1;
                if first.len() < limit || first.peek().is_some_and(|t| t.0 > off) {
                    first.push((off, first_at, packed >> 48));
                    if first.len() > limit {
                        first.pop();
                    }
                }
            }
            None => earlier.push(off),
        }
    }
    let mut out = Vec::with_capacity(first.len());
    for (again, first_at, db) in first.into_sorted_vec() {
        out.push(Duplicate { db, key: key_at(data, again)?.into_owned(), first: first_at, again });
    }
    Ok((out, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake "file" of length-prefixed keys (the RDB string form: 6-bit lengths).
    fn file(keys: &[&[u8]]) -> (Vec<u8>, Vec<u64>) {
        let mut data = Vec::new();
        let mut offsets = Vec::new();
        for k in keys {
            offsets.push(data.len() as u64);
            data.push(k.len() as u8);
            data.extend_from_slice(k);
        }
        (data, offsets)
    }

    #[test]
    fn spilled_sets_find_the_same_repeats_and_list_the_first() {
        let names: Vec<Vec<u8>> = (0..5000u32).map(|i| format!("k{}", i % 3000).into_bytes()).collect();
        let refs: Vec<&[u8]> = names.iter().map(|k| k.as_slice()).collect();
        let (data, offsets) = file(&refs);
        for memory in [usize::MAX, 300, 1000] {
            let mut s = KeySet::with_memory(memory);
            for (k, &o) in refs.iter().zip(&offsets) {
                s.insert(0, k, o);
            }
            // Another db: not a repeat.
            s.insert(1, refs[0], offsets[0]);
            assert_eq!(memory == usize::MAX, s.spill.is_none());
            let d = s.duplicates(&data, 10).unwrap();
            assert_eq!(d.total, 2000, "memory {memory}");
            assert_eq!(d.listed.len(), 10);
            assert_eq!(d.listed[0], Duplicate { db: 0, key: b"k0".to_vec(), first: offsets[0], again: offsets[3000] });
            assert!(d.listed.windows(2).all(|w| w[0].again < w[1].again));
            assert_eq!(d.listed[9].again, offsets[3009]);
        }
    }
}
