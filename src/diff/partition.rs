//! Hashed partitions of key entries, kept in memory up to a budget and spilled to files in a
//! temp dir beyond it, so that the join of two key sets takes one partition at a time.

use std::io::{self, Read, Write};
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
    dir: Option<tempfile::TempDir>,
    /// Bytes spilled so far.
    pub spilled: u64,
}

impl Drop for Partitions {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            let path = d.path().to_path_buf();
            drop(d);
            crate::cleanup::remove_path(&path);
        }
    }
}

impl Partitions {
    pub fn new(budget: usize, temp_parent: Option<PathBuf>) -> Partitions {
        Partitions { bufs: vec![Vec::new(); PARTITIONS], in_memory: 0, budget, temp_parent, dir: None, spilled: 0 }
    }

    /// True when nothing was pushed (or everything was taken).
    pub fn is_empty(&self) -> bool {
        self.in_memory == 0 && self.dir.is_none()
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
        let io = |e| DiffError::Io("spilling key partitions to a temp dir".into(), e);
        if self.dir.is_none() {
            let mut b = tempfile::Builder::new();
            b.prefix("rdbtool-diff-");
            // Removed on SIGINT / SIGTERM too.
            let d = crate::cleanup::create_path(
                || match &self.temp_parent {
                    Some(p) => b.tempdir_in(p),
                    None => b.tempdir(),
                },
                |d| d.path().to_path_buf(),
            );
            let d = d.map_err(io)?;
            self.dir = Some(d);
        }
        let dir = self.dir.as_ref().map(|d| d.path().to_path_buf()).unwrap_or_default();
        for (i, buf) in self.bufs.iter_mut().enumerate() {
            if buf.is_empty() {
                continue;
            }
            let mut f =
                std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("p{i}"))).map_err(io)?;
            f.write_all(buf).map_err(io)?;
            self.spilled += buf.len() as u64;
            *buf = Vec::new();
        }
        self.in_memory = 0;
        Ok(())
    }

    /// The entries of partition `i` (spilled ones first), leaving it empty.
    pub fn take(&mut self, i: usize) -> Result<Vec<u8>, DiffError> {
        let mut v = Vec::new();
        if let Some(d) = &self.dir {
            let p = d.path().join(format!("p{i}"));
            match std::fs::File::open(&p) {
                Ok(mut f) => {
                    f.read_to_end(&mut v).map_err(|e| DiffError::Io(p.display().to_string(), e))?;
                    let _ = std::fs::remove_file(&p);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(DiffError::Io(p.display().to_string(), e)),
            }
        }
        let mem = std::mem::take(&mut self.bufs[i]);
        self.in_memory -= mem.capacity().min(self.in_memory);
        if v.is_empty() {
            return Ok(mem);
        }
        v.extend_from_slice(&mem);
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
    }
}
