//! The prefix table of `report`: keys grouped by their prefixes (split on the separators, to a
//! depth), with keys, memory and keys without a TTL per prefix. Capped in size: past the cap the
//! lightest prefixes are folded away and the error that leaves is counted.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use serde::Serialize;

use super::Options;

/// A hasher for keys that are already hashes (a prefix's xxh3): passes the u64 through.
#[derive(Default)]
pub struct IdHasher(u64);
impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; this path folds anything else in.
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type IdHash = BuildHasherDefault<IdHasher>;

/// Totals of the keys under one prefix.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct PrefixStats {
    /// Keys under the prefix.
    pub keys: u64,
    /// Their estimated memory, bytes.
    pub memory: u64,
    /// Those of them without a TTL.
    pub keys_without_ttl: u64,
}

/// A held prefix: its totals and where its bytes are in the name arena (offset in the low 40
/// bits, length in the high 24; a name longer than 16 MiB keeps its first 16 MiB for the listing).
#[derive(Debug, Clone, Copy)]
struct PrefixEntry {
    stats: PrefixStats,
    name: u64,
}

const NAME_LEN_MAX: usize = (1 << 24) - 1;
// A name cut at NAME_LEN_MAX is only shown cut: the entry stays under its full prefix's hash.

/// Key prefixes with their totals, at most `cap` at once. Past the cap the lightest quarter (by
/// memory) is dropped; a dropped prefix that comes back starts again from zero, so any
/// prefix's figures may be short by at most the sum of the drop thresholds (`error_bound`).
///
/// Prefixes are told apart by their 64-bit xxh3 (the bytes are kept once, in an arena, for the
/// listing): a lookup touches one slot of the index and one entry, no key bytes. Two prefixes
/// share a hash with a chance of about n² / 2⁶⁵ (1e-8 for a million held), which would add
/// their figures together. About 50 bytes a prefix held, plus its bytes.
#[derive(Debug, Clone, Default)]
pub struct Prefixes {
    cap: usize,
    /// Hash -> position in `entries`.
    index: HashMap<u64, u32, IdHash>,
    entries: Vec<PrefixEntry>,
    names: Vec<u8>,
    /// Upper bound of the memory any listed prefix may be missing (and of any unlisted one).
    pub error_bound_memory: u64,
    /// The same bound for key counts.
    pub error_bound_keys: u64,
    /// Prefixes dropped so far (a prefix dropped twice counts twice).
    pub dropped: u64,
}

/// Appends the (hash, length) of each prefix of `key` the report counts: up to and including
/// each separator, at most `opts.depth` of them.
#[inline]
pub fn prefix_hashes(key: &[u8], opts: &Options, out: &mut Vec<(u64, u32)>) {
    if opts.depth == 0 {
        return;
    }
    let mut level = 0;
    for (i, b) in key.iter().enumerate() {
        if opts.separators.contains(b) {
            out.push((prefix_hash(&key[..=i]), i as u32 + 1));
            level += 1;
            if level >= opts.depth {
                break;
            }
        }
    }
}

/// The table's hash of a prefix.
#[inline]
pub fn prefix_hash(prefix: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(prefix)
}

impl Prefixes {
    pub(super) fn new(cap: usize) -> Prefixes {
        // At most u32::MAX entries are indexed.
        Prefixes { cap: cap.clamp(1, u32::MAX as usize), ..Default::default() }
    }
    #[inline]
    fn entry(&mut self, hash: u64, prefix: &[u8]) -> &mut PrefixStats {
        let i = match self.index.get(&hash) {
            Some(&i) => i as usize,
            None => self.insert(hash, prefix),
        };
        &mut self.entries[i].stats
    }
    #[cold]
    fn insert(&mut self, hash: u64, prefix: &[u8]) -> usize {
        if self.entries.len() >= self.cap {
            self.shrink();
        }
        if self.entries.capacity() == 0 {
            let first = self.cap.min(1 << 20);
            self.entries.reserve_exact(first);
            self.index.reserve(first);
        }
        let name = &prefix[..prefix.len().min(NAME_LEN_MAX)];
        let packed = self.names.len() as u64 | (name.len() as u64) << 40;
        self.names.extend_from_slice(name);
        let i = self.entries.len();
        self.entries.push(PrefixEntry { stats: PrefixStats::default(), name: packed });
        self.index.insert(hash, i as u32);
        i
    }
    #[inline]
    pub(super) fn add(&mut self, hash: u64, prefix: &[u8], memory: u64, has_ttl: bool) {
        let s = self.entry(hash, prefix);
        s.keys += 1;
        s.memory += memory;
        if !has_ttl {
            s.keys_without_ttl += 1;
        }
    }
    fn add_stats(&mut self, hash: u64, prefix: &[u8], o: &PrefixStats) {
        let s = self.entry(hash, prefix);
        s.keys += o.keys;
        s.memory += o.memory;
        s.keys_without_ttl += o.keys_without_ttl;
    }
    fn name(&self, e: &PrefixEntry) -> &[u8] {
        let off = (e.name & ((1 << 40) - 1)) as usize;
        &self.names[off..off + (e.name >> 40) as usize]
    }
    /// Drops the lightest quarter (at least one), raising the error bounds by the heaviest
    /// dropped; compacts the entries and the name arena and updates the index.
    fn shrink(&mut self) {
        let drop_n = (self.entries.len() / 4).max(1);
        let mut mem: Vec<u64> = self.entries.iter().map(|e| e.stats.memory).collect();
        mem.select_nth_unstable(drop_n - 1);
        let cut = mem[drop_n - 1];
        drop(mem);
        let mut dropped = 0usize;
        let mut max_keys = 0;
        let mut names = Vec::with_capacity(self.names.len() * 3 / 4 + 1024);
        let old_names = std::mem::take(&mut self.names);
        // Old position -> new position (u32::MAX: dropped); the index is updated in place.
        let mut moved = vec![u32::MAX; self.entries.len()];
        let mut old = 0usize;
        let mut kept = 0u32;
        self.entries.retain_mut(|e| {
            let at = old;
            old += 1;
            if dropped < drop_n && e.stats.memory <= cut {
                dropped += 1;
                max_keys = max_keys.max(e.stats.keys);
                false
            } else {
                let off = (e.name & ((1 << 40) - 1)) as usize;
                let len = (e.name >> 40) as usize;
                e.name = names.len() as u64 | (len as u64) << 40;
                names.extend_from_slice(&old_names[off..off + len]);
                moved[at] = kept;
                kept += 1;
                true
            }
        });
        drop(old_names);
        self.names = names;
        self.index.retain(|_, i| {
            *i = moved[*i as usize];
            *i != u32::MAX
        });
        self.error_bound_memory += cut;
        self.error_bound_keys += max_keys;
        self.dropped += dropped as u64;
    }
    pub(super) fn merge(&mut self, o: Prefixes) {
        self.error_bound_memory += o.error_bound_memory;
        self.error_bound_keys += o.error_bound_keys;
        self.dropped += o.dropped;
        for e in &o.entries {
            let name = o.name(e);
            self.add_stats(prefix_hash(name), name, &e.stats);
        }
    }
    /// Prefixes held now (at most the cap).
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// True when no prefix is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The `n` heaviest prefixes by memory (ties by name), heaviest first.
    pub fn heaviest(&self, n: usize) -> Vec<(&[u8], PrefixStats)> {
        let mut v: Vec<(&[u8], PrefixStats)> = self.entries.iter().map(|e| (self.name(e), e.stats)).collect();
        let order = |a: &(&[u8], PrefixStats), b: &(&[u8], PrefixStats)| b.1.memory.cmp(&a.1.memory).then(a.0.cmp(b.0));
        if n < v.len() {
            if n == 0 {
                return Vec::new();
            }
            v.select_nth_unstable_by(n - 1, order);
            v.truncate(n);
        }
        v.sort_by(order);
        v
    }
}
