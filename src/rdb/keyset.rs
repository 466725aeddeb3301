//! Duplicate-key detection within a database at a small per-key cost: a 64-bit fingerprint and
//! the offset of the key in the file (16 bytes), the key itself re-read only when fingerprints meet.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::xxh3_64;

use crate::error::Result;
use crate::rdb::reader::key_at;

/// The fingerprints are already hashes: use them as-is.
#[derive(Default)]
pub struct IdentityHasher(u64);
impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
pub type FingerprintMap<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;

#[derive(Default)]
pub struct KeySet {
    /// (db, fingerprint) folded into one u64 -> offset of the first key with it.
    first: FingerprintMap<u64>,
    /// Further keys whose fingerprint collided with a different key (rare).
    more: FingerprintMap<Vec<u64>>,
}

impl KeySet {
    pub fn new() -> KeySet {
        KeySet::default()
    }

    pub fn len(&self) -> usize {
        self.first.len() + self.more.values().map(Vec::len).sum::<usize>()
    }
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Records `key` (stored at `key_offset` in `data`) in `db`; returns the offset of an earlier
    /// identical key in the same db, if any.
    pub fn insert(
        &mut self,
        data: &[u8],
        db: u64,
        key: &[u8],
        key_offset: u64,
    ) -> Result<Option<u64>> {
        let fp = xxh3_64(key) ^ db.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        match self.first.entry(fp) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(key_offset);
                Ok(None)
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let earlier = *o.get();
                if &*key_at(data, earlier)? == key {
                    return Ok(Some(earlier));
                }
                let others = self.more.entry(fp).or_default();
                for &off in others.iter() {
                    if &*key_at(data, off)? == key {
                        return Ok(Some(off));
                    }
                }
                others.push(key_offset);
                Ok(None)
            }
        }
    }
}
