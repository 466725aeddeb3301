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

use crate::error::{Error, ErrorKind, Result};
use crate::rdb::fpset::FingerprintTable;
use crate::rdb::reader::key_at;

const OFFSET_MASK: u64 = (1 << 48) - 1;

const BUCKETS: usize = 256;

/// Entries held in memory before the buckets are written out (16 bytes each: 16 MiB).
const MEMORY_ENTRIES: usize = 1 << 20;

/// The fingerprint of `key` in database `db`: equal keys of one db have equal fingerprints,
/// and the db is folded in so that one set can hold the keys of several dbs.
#[inline]
pub fn fingerprint(db: u64, key: &[u8]) -> u64 {
    fold_db(db, xxh3_64(key))
}

/// [`fingerprint`] of a key whose bytes hash (`xxh3_64`) to `key_hash`.
#[inline]
pub fn fingerprint_hashed(db: u64, key_hash: u64) -> u64 {
    fold_db(db, key_hash)
}

#[inline]
fn fold_db(db: u64, key_hash: u64) -> u64 {
    key_hash ^ db.wrapping_mul(0x9E37_79B9_7F4A_7C15)
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
    /// Entries pushed, over all buckets.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when nothing was pushed.
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

    /// Adds a fingerprint (from [`fingerprint`]) with its payload; fingerprints may repeat.
    #[inline]
    pub fn push(&mut self, fp: u64, payload: u64) {
        let b = &mut self.buckets[(fp >> 56) as usize];
        b.push((fp, payload));
        // The next push here comes about `BUCKETS` pushes later: its cache line is asked for
        // now (without it, most pushes wait on a line of a bucket far out of cache).
        crate::hint::prefetch_tail(b, 4);
        self.len += 1;
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

/// A [`FingerprintBuckets`] whose memory stays flat with the number of entries: past
/// `memory_entries` entries every bucket is written out as a run of one unnamed temporary file,
/// and [`SpilledBuckets::bucket`] reads a bucket back (runs, then what is still in memory, in
/// the order pushed) one at a time. When the temporary file fails, entries stay in memory.
pub struct SpilledBuckets {
    set: FingerprintBuckets,
    /// Entries in `set` now.
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

impl Default for SpilledBuckets {
    fn default() -> SpilledBuckets {
        SpilledBuckets::with_memory(MEMORY_ENTRIES)
    }
}

impl SpilledBuckets {
    /// At most `entries` entries (16 bytes each) held in memory; the rest in a temporary file.
    pub fn with_memory(entries: usize) -> SpilledBuckets {
        SpilledBuckets {
            set: FingerprintBuckets::default(),
            held: 0,
            memory_entries: entries.max(BUCKETS),
            spill: None,
            spill_failed: false,
        }
    }

    /// Entries pushed so far, written out or not.
    pub fn len(&self) -> usize {
        self.set.len()
    }
    /// True before the first push.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
    /// Whether entries were written out to the temporary file.
    pub fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    /// Makes room for about `n` more entries in all (never beyond what memory may hold).
    pub fn reserve(&mut self, n: usize) {
        self.set.reserve(n.min(self.memory_entries.saturating_sub(self.held)));
    }

    /// Adds a fingerprint with its payload (see [`FingerprintBuckets::push`]).
    #[inline]
    pub fn push(&mut self, fp: u64, payload: u64) {
        self.set.push(fp, payload);
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
        for (b, entries) in self.set.buckets.iter_mut().enumerate() {
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

    /// Number of buckets (`bucket` takes 0 to this, exclusive).
    pub const BUCKETS: usize = BUCKETS;

    /// The bucket of fingerprint `fp`.
    pub fn bucket_of(fp: u64) -> usize {
        (fp >> 56) as usize
    }

    /// The entries of bucket `b` in the order they were pushed (read back from the temporary
    /// file, then those still in memory).
    pub fn bucket(&self, b: usize) -> Result<Vec<(u64, u64)>> {
        let mut out = match &self.spill {
            Some(s) => read_runs(s, b, self.set.buckets[b].len())?,
            None => Vec::with_capacity(self.set.buckets[b].len()),
        };
        out.extend_from_slice(&self.set.buckets[b]);
        Ok(out)
    }

    /// Every bucket through `f(bucket number, its entries in the order pushed)`, buckets in
    /// parallel, one read back at a time per thread (the in-memory parts are moved, not copied).
    pub fn par_buckets<T: Send>(mut self, f: impl Fn(usize, Vec<(u64, u64)>) -> Result<T> + Sync) -> Result<Vec<T>> {
        let mine: Vec<Vec<(u64, u64)>> = std::mem::take(&mut self.set.buckets);
        let spill = &self.spill;
        mine.into_par_iter()
            .enumerate()
            .map(|(b, mine)| {
                let entries = match spill {
                    Some(s) => {
                        let mut all = read_runs(s, b, mine.len())?;
                        all.extend_from_slice(&mine);
                        drop(mine);
                        all
                    }
                    None => mine,
                };
                f(b, entries)
            })
            .collect()
    }
}

/// The keys of one or more databases by fingerprint, to find keys seen twice in one database
/// (which makes Redis refuse a file, docs/format.md §5.2). Fill it with [`KeySet::insert`],
/// then ask [`KeySet::duplicates`].
pub struct KeySet {
    /// (fingerprint of db and key, offset of the key string in the file in the low 48 bits and
    /// the db in the high 16, for reporting), by the fingerprint's top byte.
    set: SpilledBuckets,
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
    /// The key, re-read from the file.
    pub key: Vec<u8>,
    /// Offset of the first occurrence's key string.
    pub first: u64,
    /// Offset of the later occurrence's key string.
    pub again: u64,
}

/// The repeated keys of a set: the first ones in file order, and how many in all.
#[derive(Debug, Default)]
pub struct Duplicates {
    /// The first repeats in file order, up to the listing limit.
    pub listed: Vec<Duplicate>,
    /// Every repeat found, listed or not.
    pub total: u64,
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
    /// An empty set.
    pub fn new() -> KeySet {
        KeySet::default()
    }

    /// A set holding at most `entries` entries in memory (the rest in a temporary file).
    pub fn with_memory(entries: usize) -> KeySet {
        KeySet { set: SpilledBuckets::with_memory(entries) }
    }

    /// Keys inserted so far (duplicates included).
    pub fn len(&self) -> usize {
        self.set.len()
    }
    /// True before the first insert.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Makes room for about `n` more keys in all (spread over the buckets).
    pub fn reserve(&mut self, n: usize) {
        self.set.reserve(n);
    }

    /// Records `key` of `db`, whose string starts at `key_offset`.
    #[inline]
    pub fn insert(&mut self, db: u64, key: &[u8], key_offset: u64) {
        self.insert_hashed(db, xxh3_64(key), key_offset);
    }

    /// [`KeySet::insert`] of a key whose bytes hash (`xxh3_64`) to `key_hash`: a reader that
    /// did not know the key's db yet hashes the key once and inserts it when the db is known.
    #[inline]
    pub fn insert_hashed(&mut self, db: u64, key_hash: u64, key_offset: u64) {
        self.set.push(fold_db(db, key_hash), (key_offset & OFFSET_MASK) | (db.min(0xFFFF) << 48));
    }

    /// `Ok` when no key repeats, else the error for the first repetition in file order (what a
    /// command that stops at the first error reports).
    pub fn check(self, data: &[u8]) -> Result<()> {
        match self.duplicates(data, 1)?.listed.first() {
            None => Ok(()),
            Some(d) => Err(d.error()),
        }
    }

    /// Every repeated key, in file order of the repetition: the first `limit` of them with their
    /// key, and the count of all. `data` is the file the offsets point into.
    pub fn duplicates(self, data: &[u8], limit: usize) -> Result<Duplicates> {
        self.duplicates_by(&|o| key_at(data, o), limit)
    }

    /// `duplicates`, the keys re-read by `key_of` from the offsets given to `insert` (a set
    /// of files seen as one: the caller maps its offsets to a file).
    pub fn duplicates_by<'d>(
        self,
        key_of: &(dyn Fn(u64) -> Result<std::borrow::Cow<'d, [u8]>> + Sync),
        limit: usize,
    ) -> Result<Duplicates> {
        let found = self.set.par_buckets(|_, entries| bucket_duplicates(&entries, key_of, limit))?;
        let mut out = Duplicates::default();
        for (listed, total) in found {
            out.listed.extend(listed);
            out.total += total;
        }
        out.listed.sort_by_key(|d| d.again);
        out.listed.truncate(limit);
        Ok(out)
    }
}

/// The entries of bucket `b` written out, in the order they were inserted.
fn read_runs(s: &Spill, b: usize, more: usize) -> Result<Vec<(u64, u64)>> {
    let n: usize = s.runs[b].iter().map(|r| r.1).sum();
    let mut out = Vec::with_capacity(n + more);
    let mut buf = Vec::new();
    for &(at, count) in &s.runs[b] {
        buf.resize(16 * count, 0);
        s.file
            .read_exact_at(&mut buf, at)
            .map_err(|e| Error::new(crate::error::ErrorKind::Io, 0, format!("reading back key fingerprints: {e}")))?;
        out.extend(
            buf.chunks_exact(16).map(|c| {
                (u64::from_le_bytes(c[..8].try_into().unwrap()), u64::from_le_bytes(c[8..].try_into().unwrap()))
            }),
        );
    }
    Ok(out)
}

/// The repeats in one bucket: the `limit` earliest (by the repeat's offset) with their key, and
/// the count of all.
fn bucket_duplicates<'d>(
    e: &[(u64, u64)],
    key_of: &(dyn Fn(u64) -> Result<std::borrow::Cow<'d, [u8]>> + Sync),
    limit: usize,
) -> Result<(Vec<Duplicate>, u64)> {
    let mut table = FingerprintTable::default();
    table.reset(e.len());
    // Fingerprints shared by different keys (a true 64-bit collision): every offset seen with
    // them, so a later key is compared with all of them.
    let mut shared: HashMap<u64, Vec<u64>> = HashMap::new();
    // The earliest repeats (a max-heap on the offset, at most `limit`), then their keys.
    let mut first: BinaryHeap<(u64, u64, u64)> = BinaryHeap::new();
    let mut total = 0u64;
    for (i, &(fp, packed)) in e.iter().enumerate() {
        if let Some(&(ahead, _)) = e.get(i + crate::rdb::fpset::AHEAD) {
            table.prefetch(ahead);
        }
        let Some(prev) = table.insert(fp, packed) else { continue };
        let off = packed & OFFSET_MASK;
        let key = key_of(off)?;
        let earlier = shared.entry(fp).or_insert_with(|| vec![prev & OFFSET_MASK]);
        let mut found = None;
        for &o in earlier.iter() {
            if key_of(o)? == key {
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
        out.push(Duplicate { db, key: key_of(again)?.into_owned(), first: first_at, again });
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
            assert_eq!(memory == usize::MAX, !s.set.spilled());
            let d = s.duplicates(&data, 10).unwrap();
            assert_eq!(d.total, 2000, "memory {memory}");
            assert_eq!(d.listed.len(), 10);
            assert_eq!(d.listed[0], Duplicate { db: 0, key: b"k0".to_vec(), first: offsets[0], again: offsets[3000] });
            assert!(d.listed.windows(2).all(|w| w[0].again < w[1].again));
            assert_eq!(d.listed[9].again, offsets[3009]);
        }
    }
}
