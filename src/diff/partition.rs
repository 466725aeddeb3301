//! Hashed partitions of key entries, kept in memory up to a budget and spilled beyond it (to
//! one unnamed temp file, a run per partition each time), so that the join of two key sets
//! takes one partition at a time.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::{DiffError, key_hash, key_hash2};

/// Number of partitions: a partition in memory during the join is 1/1024 of all entries (28 MB
/// per 500 million file keys of 56 bytes).
pub const PARTITIONS: usize = 1024;

pub(crate) struct Partitions {
    bufs: Vec<Vec<u8>>,
    in_memory: usize,
    budget: usize,
    temp_parent: Option<PathBuf>,
    /// The spill file (unnamed: gone when closed, whatever ends the process) and per partition
    /// its runs in it (offset, length).
    file: Option<std::fs::File>,
    end: u64,
    runs: Vec<Vec<(u64, usize)>>,
    /// Bytes spilled so far.
    pub spilled: u64,
}

impl Partitions {
    pub fn new(budget: usize, temp_parent: Option<PathBuf>) -> Partitions {
        Partitions {
            bufs: vec![Vec::new(); PARTITIONS],
            in_memory: 0,
            budget,
            temp_parent,
            file: None,
            end: 0,
            runs: vec![Vec::new(); PARTITIONS],
            spilled: 0,
        }
    }

    /// True when nothing was pushed (or everything was taken).
    pub fn is_empty(&self) -> bool {
        self.in_memory == 0 && self.runs.iter().all(|r| r.is_empty())
    }

    #[inline]
    pub fn partition_of(hash: u64) -> usize {
        (hash as usize) & (PARTITIONS - 1)
    }

    pub fn push(&mut self, hash: u64, rec: &[u8]) -> Result<(), DiffError> {
        let buf = &mut self.bufs[Self::partition_of(hash)];
        let before = buf.capacity();
        buf.extend_from_slice(rec);
        // What the buffers hold, not what they use: the budget bounds memory.
        self.in_memory += buf.capacity() - before;
        if self.in_memory > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), DiffError> {
        let io = |e| DiffError::Io("spilling key partitions to a temp file".into(), e);
        if self.file.is_none() {
            let f = match &self.temp_parent {
                Some(p) => tempfile::tempfile_in(p),
                None => tempfile::tempfile(),
            };
            self.file = Some(f.map_err(io)?);
        }
        let Some(file) = &self.file else { return Ok(()) };
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        for (i, buf) in self.bufs.iter_mut().enumerate() {
            if buf.is_empty() {
                continue;
            }
            out.write_all(buf).map_err(io)?;
            self.runs[i].push((self.end, buf.len()));
            self.end += buf.len() as u64;
            self.spilled += buf.len() as u64;
            *buf = Vec::new();
        }
        out.flush().map_err(io)?;
        self.in_memory = 0;
        Ok(())
    }

    /// The entries of partition `i` (spilled ones first), leaving it empty.
    pub fn take(&mut self, i: usize) -> Result<Vec<u8>, DiffError> {
        let mem = std::mem::take(&mut self.bufs[i]);
        self.in_memory -= mem.capacity().min(self.in_memory);
        let runs = std::mem::take(&mut self.runs[i]);
        let Some(file) = self.file.as_ref().filter(|_| !runs.is_empty()) else { return Ok(mem) };
        let mut v = vec![0u8; runs.iter().map(|r| r.1).sum::<usize>() + mem.len()];
        let mut at = 0;
        for (offset, len) in runs {
            file.read_exact_at(&mut v[at..at + len], offset)
                .map_err(|e| DiffError::Io("reading spilled key partitions back".into(), e))?;
            at += len;
        }
        v[at..].copy_from_slice(&mem);
        Ok(v)
    }
}

/// A file key in a partition: its 128-bit fingerprint (`key_hash`, `key_hash2`: the db is
/// folded in), a 128-bit fingerprint of its value (`value_fingerprint`), where its key string
/// starts, its expire time (`i64::MIN` for none) and its db. Two entries with equal key
/// fingerprints are the same key; with equal value fingerprints too, the same value bytes, so
/// that the join re-reads values only where they may differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileKeyEntry {
    pub hash: u64,
    pub hash2: u64,
    pub value_fp: u128,
    pub key_offset: u64,
    pub expire_at_ms: Option<i64>,
    pub db: u64,
}

impl FileKeyEntry {
    pub const SIZE: usize = 56;

    /// The entry of a key record whose key string starts at `key_offset`.
    pub fn of(k: &crate::rdb::KeyRecord<'_>) -> FileKeyEntry {
        FileKeyEntry {
            hash: key_hash(k.db, &k.key),
            hash2: key_hash2(k.db, &k.key),
            value_fp: value_fingerprint(&k.value),
            key_offset: k.key_offset,
            expire_at_ms: k.expire_at_ms,
            db: k.db,
        }
    }

    /// The key's 128-bit fingerprint.
    #[inline]
    pub fn key_fp(&self) -> (u64, u64) {
        (self.hash, self.hash2)
    }

    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[..8].copy_from_slice(&self.hash.to_le_bytes());
        b[8..16].copy_from_slice(&self.hash2.to_le_bytes());
        b[16..32].copy_from_slice(&self.value_fp.to_le_bytes());
        b[32..40].copy_from_slice(&self.key_offset.to_le_bytes());
        b[40..48].copy_from_slice(&self.expire_at_ms.unwrap_or(i64::MIN).to_le_bytes());
        b[48..].copy_from_slice(&self.db.to_le_bytes());
        b
    }

    pub fn decode_all(buf: &[u8]) -> Vec<FileKeyEntry> {
        let u = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]));
        buf.chunks_exact(Self::SIZE)
            .map(|c| {
                let e = u(&c[40..48]) as i64;
                FileKeyEntry {
                    hash: u(&c[..8]),
                    hash2: u(&c[8..16]),
                    value_fp: u128::from_le_bytes(c[16..32].try_into().unwrap_or([0; 16])),
                    key_offset: u(&c[32..40]),
                    expire_at_ms: (e != i64::MIN).then_some(e),
                    db: u(&c[48..]),
                }
            })
            .collect()
    }
}

/// A 128-bit fingerprint of a value's bytes, its type byte and its file's flavor (what the type
/// byte means): equal fingerprints stand for what `compare` takes as the same bytes.
#[inline]
pub(crate) fn value_fingerprint(v: &crate::rdb::value::RawValue<'_>) -> u128 {
    let flavor = match v.format.flavor {
        crate::rdb::types::Flavor::Redis => 1u64,
        crate::rdb::types::Flavor::Valkey => 2u64,
    };
    xxhash_rust::xxh3::xxh3_128_with_seed(v.bytes, u64::from(v.type_byte) | flavor << 8)
}

/// Runs of equal hashes in entries sorted by hash: the indices whose hash is `h`.
pub(crate) fn equal_hash_range(sorted: &[FileKeyEntry], h: u64) -> std::ops::Range<usize> {
    let lo = sorted.partition_point(|e| e.hash < h);
    let hi = lo + sorted[lo..].partition_point(|e| e.hash == h);
    lo..hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_spill_and_come_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Partitions::new(1000, Some(dir.path().to_path_buf()));
        let mut expect = vec![Vec::new(); PARTITIONS];
        for i in 0..5000u64 {
            let h = key_hash(0, &i.to_le_bytes());
            let rec = i.to_le_bytes();
            p.push(h, &rec).unwrap();
            expect[Partitions::partition_of(h)].extend_from_slice(&rec);
        }
        assert!(p.spilled > 0);
        for (i, e) in expect.iter().enumerate() {
            assert_eq!(&p.take(i).unwrap(), e, "partition {i}");
        }
        assert!(p.is_empty());
    }

    #[test]
    fn entries_round_trip() {
        let a = FileKeyEntry {
            hash: 1,
            hash2: u64::MAX,
            value_fp: u128::MAX - 5,
            key_offset: 1 << 40,
            expire_at_ms: Some(-7),
            db: 15,
        };
        let b = FileKeyEntry { expire_at_ms: None, value_fp: 3, ..a };
        let mut buf = a.encode().to_vec();
        buf.extend_from_slice(&b.encode());
        assert_eq!(FileKeyEntry::decode_all(&buf), vec![a, b]);
    }
}
