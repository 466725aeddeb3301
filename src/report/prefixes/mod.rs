//! The prefix table of `report`: keys grouped by their prefixes (split on the separators, to a
//! depth), with keys, memory and keys without a TTL per prefix. Capped in size: past the cap the
//! lightest prefixes are folded away and the error that leaves is counted.
//!
//! Where a key's prefixes end is `ends`; a part of a file gathers its prefixes in a `log`
//! (a small cache and a log) that the join drains into the file's [`Prefixes`].

use serde::Serialize;

use super::Options;
use crate::hint::prefetch;

mod ends;
mod log;
pub use ends::{prefix_hash, prefix_hashes};
pub(super) use log::PrefixLog;

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

impl PrefixStats {
    /// Counts one key of `memory` bytes.
    #[inline(always)]
    pub fn count(&mut self, memory: u64, has_ttl: bool) {
        self.keys += 1;
        self.memory += memory;
        self.keys_without_ttl += u64::from(!has_ttl);
    }

    /// Adds another's totals.
    #[inline(always)]
    pub fn merge(&mut self, o: &PrefixStats) {
        self.keys += o.keys;
        self.memory += o.memory;
        self.keys_without_ttl += o.keys_without_ttl;
    }
}

/// Where a held prefix's bytes are in the name arena: offset in the low 40 bits, length in the
/// high 24 (a name longer than 16 MiB keeps its first 16 MiB for the listing).
const NAME_LEN_MAX: usize = (1 << 24) - 1;
// A name cut at NAME_LEN_MAX is only shown cut: the entry stays under its full prefix's hash.

/// A name's place in an arena, packed (see `NAME_LEN_MAX`).
#[inline(always)]
fn pack(off: usize, len: usize) -> u64 {
    off as u64 | (len as u64) << 40
}

/// The arena range of a packed name.
#[inline(always)]
fn unpack(packed: u64) -> std::ops::Range<usize> {
    let off = (packed & ((1 << 40) - 1)) as usize;
    off..off + (packed >> 40) as usize
}

/// Appends a name of `len` bytes, the first bytes of `block`, to `arena`, and returns its
/// place (packed; a name longer than `NAME_LEN_MAX` is cut). A name of up to 16 bytes whose
/// block has 16 is copied as the whole block, one fixed-size store rather than a copy of `len`
/// bytes, then cut to its length unless `keep_block`: a log's arena keeps 16 bytes for each such
/// name, so that `name_block` can read them back the same way.
#[inline(always)]
fn append_name(arena: &mut Vec<u8>, block: &[u8], len: usize, keep_block: bool) -> u64 {
    let len = len.min(NAME_LEN_MAX);
    let start = arena.len();
    match block.first_chunk::<16>() {
        Some(b) if len <= 16 => {
            arena.extend_from_slice(b);
            if !keep_block {
                arena.truncate(start + len);
            }
        }
        _ => {
            arena.extend_from_slice(&block[..len]);
            if keep_block && len < 16 {
                arena.resize(start + 16, 0);
            }
        }
    }
    pack(start, len)
}

/// The bytes of a name that `append_name` put in a log's arena (`keep_block`): its 16-byte
/// block for a name of up to 16 bytes, else the name.
#[inline(always)]
fn name_block(arena: &[u8], packed: u64) -> &[u8] {
    let r = unpack(packed);
    if r.len() <= 16 { &arena[r.start..r.start + 16] } else { &arena[r] }
}

/// A prefix held with several keys: its hash, its name's place in the arena (see
/// `NAME_LEN_MAX`) and its totals.
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    hash: u64,
    name: u64,
    stats: PrefixStats,
}

/// A prefix held with one key (most of a big file's, at the deeper levels), in 24 bytes, not
/// `Held`'s 40 and its name in the arena: the table's fresh memory (which the kernel zeroes and
/// maps page by page) is mostly these. A name of up to 16 bytes is in the entry (`name`, zeros
/// past its end; its hash computed again when needed: an index rebuilt, a match of its index
/// tag, a merge); a longer one in the arena, `name` then holding its place (`pack`) and its
/// hash, 8 bytes each. `meta`: the key's
/// memory (`SINGLE_MEMORY`), the name's length (`LEN_SHIFT`: 1 to 16, or `LONG`; 0 once the
/// prefix has moved to `held`) and `NO_TTL`.
#[derive(Debug, Clone, Copy, Default)]
struct Single {
    name: [u8; 16],
    meta: u64,
}

/// The bit of `Single::meta` that says the key has no TTL.
const NO_TTL: u64 = 1 << 63;

/// The bits of `Single::meta` that hold the key's memory (a key of 64 PiB or more is `held`).
const SINGLE_MEMORY: u64 = (1 << 56) - 1;

/// Where `Single::meta` holds the name's length (6 bits).
const LEN_SHIFT: u32 = 56;

/// The length `Single::meta` gives a name longer than 16 bytes (in the arena).
const LONG: u64 = 0x3f;

impl Single {
    /// A prefix of one key of `memory` bytes (at most `SINGLE_MEMORY`): its name the first
    /// `len` bytes of `block`, or when longer than 16 bytes its place in the arena and its hash.
    #[inline]
    fn new(block: &[u8], len: usize, long: Option<(u64, u64)>, memory: u64, no_ttl: bool) -> Single {
        let mut name = [0; 16];
        let code = match long {
            Some((packed, hash)) => {
                name[..8].copy_from_slice(&packed.to_le_bytes());
                name[8..].copy_from_slice(&hash.to_le_bytes());
                LONG
            }
            None => {
                match block.first_chunk::<16>() {
                    // One 16-byte load, the bytes past the name masked off.
                    Some(b) => {
                        let mask = u128::MAX.checked_shr(128 - 8 * len as u32).unwrap_or(0);
                        name = (u128::from_le_bytes(*b) & mask).to_le_bytes();
                    }
                    None => name[..len].copy_from_slice(&block[..len]),
                }
                len as u64
            }
        };
        Single { name, meta: memory | code << LEN_SHIFT | if no_ttl { NO_TTL } else { 0 } }
    }
    fn len_code(&self) -> u64 {
        self.meta >> LEN_SHIFT & 0x3f
    }
    /// The prefix got a second key: it is in `held` now.
    fn gone(&self) -> bool {
        self.len_code() == 0
    }
    /// The place of a long name in the arena.
    fn long_name(&self) -> Option<u64> {
        self.name.first_chunk::<8>().filter(|_| self.len_code() == LONG).map(|w| u64::from_le_bytes(*w))
    }
    /// The prefix's hash: kept for a long name, computed again from a short one (`prefix_hash`,
    /// as `PrefixLog` and the readers hash a prefix).
    fn hash(&self) -> u64 {
        match (self.len_code(), self.name.last_chunk::<8>()) {
            (LONG, Some(h)) => u64::from_le_bytes(*h),
            (n, _) => prefix_hash(&self.name[..(n as usize).min(16)]),
        }
    }
    fn stats(&self) -> PrefixStats {
        PrefixStats { keys: 1, memory: self.meta & SINGLE_MEMORY, keys_without_ttl: self.meta >> 63 }
    }
}

/// Key prefixes with their totals, at most `cap` at once. Past the cap the lightest quarter (by
/// memory) is dropped; a dropped prefix that comes back starts again from zero, so any
/// prefix's figures may be short by at most the sum of the drop thresholds (`error_bound`).
///
/// Prefixes are told apart by their 64-bit xxh3 (the bytes are kept once, for the listing: in
/// the arena, or in a one-key prefix's entry when short). The prefixes are kept one after the other in the order they came: those with one
/// key in `singles`, the others in `held` (a single moves there with its second key); an index
/// finds them: open addressing with linear probing, at most 3/4 full, each slot 8 bytes (the
/// high half of the prefix's hash and its place). Most prefixes of a big file are new when they
/// come (one key each), and a new one costs a probe of the index, which is small enough to stay
/// in cache and in the TLB's reach, and an entry written at the end of `singles`: no random
/// access to the entries themselves. Two prefixes share a hash with a chance of about n² / 2⁶⁵
/// (1e-8 for a million held), which would add their figures together. 35 to 45 bytes a prefix
/// with one key and a name of up to 16 bytes (its index slot included), the same plus its bytes
/// with a longer name, 51 to 61 plus its bytes with more keys (and 24 left behind by a single
/// that got a second key, until the next shrink).
#[derive(Debug, Clone, Default)]
pub struct Prefixes {
    cap: usize,
    /// Per slot: the high 32 bits of a held prefix's hash, then its place (`Place`); 0: free.
    index: Vec<u64>,
    /// The prefixes with several keys, in the order they came.
    held: Vec<Held>,
    /// The prefixes with one key, in the order they came (some gone to `held`).
    singles: Vec<Single>,
    /// Singles gone to `held`.
    gone: usize,
    names: Vec<u8>,
    /// Upper bound of the memory any listed prefix may be missing (and of any unlisted one).
    pub error_bound_memory: u64,
    /// The same bound for key counts.
    pub error_bound_keys: u64,
    /// Prefixes dropped so far (a prefix dropped twice counts twice).
    pub dropped: u64,
}

/// Where a prefix is: in `held` or in `singles`, at a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Held(usize),
    Single(usize),
}

/// The low half of an index slot: 1 + the place, its top bit set for a single.
const SINGLE_BIT: u64 = 1 << 31;

/// The index slot of the prefix of hash `hash` at `place`.
#[inline(always)]
fn index_slot(hash: u64, place: Place) -> u64 {
    let low = match place {
        Place::Held(at) => at as u64 + 1,
        Place::Single(at) => (at as u64 + 1) | SINGLE_BIT,
    };
    (hash >> 32) << 32 | low
}

/// The place an index slot (not free) points to.
#[inline(always)]
fn place_of(slot: u64) -> Place {
    let low = slot & 0xffff_ffff;
    let at = (low & !SINGLE_BIT) as usize - 1;
    if low & SINGLE_BIT != 0 { Place::Single(at) } else { Place::Held(at) }
}

/// The first free slot of `index` (a power of two long, neither empty nor full) from the home slot of
/// `hash` on.
fn free_slot(index: &[u64], hash: u64) -> usize {
    let mask = index.len() - 1;
    let mut i = hash as usize & mask;
    while index[i] != 0 {
        i = (i + 1) & mask;
    }
    i
}

/// Slots a new table starts with.
const FIRST_SLOTS: usize = 1 << 12;

impl Prefixes {
    pub(super) fn new(cap: usize) -> Prefixes {
        // A place fits the index's 31 bits.
        Prefixes { cap: cap.clamp(1, (SINGLE_BIT - 2) as usize), ..Default::default() }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.index.len().wrapping_sub(1)
    }

    /// Asks the CPU to bring the index slot of `hash` into cache (the folder calls it a few
    /// keys ahead, so that the lookup does not wait for memory).
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        if let Some(slot) = self.index.get(hash as usize & self.mask()) {
            prefetch(slot);
        }
    }

    /// The hash of the prefix at `place`.
    #[inline]
    fn hash_at(&self, place: Place) -> u64 {
        match place {
            Place::Held(at) => self.held[at].hash,
            Place::Single(at) => self.singles[at].hash(),
        }
    }

    /// Where the prefix of hash `hash` is and its index slot, or the index slot where it would go.
    #[inline]
    fn find(&self, hash: u64) -> Result<(Place, usize), usize> {
        let mask = self.mask();
        let mut i = hash as usize & mask;
        loop {
            let slot = self.index[i];
            if slot == 0 {
                return Err(i);
            }
            if slot >> 32 == hash >> 32 {
                let place = place_of(slot);
                if self.hash_at(place) == hash {
                    return Ok((place, i));
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `o` to the totals of the prefix of hash `hash` (its `prefix_hash`: the hash of a
    /// name of up to 16 bytes held with one key is computed again from it), added if new: its
    /// name the first `len` bytes of `block` (see `append_name`).
    #[inline]
    fn add_block(&mut self, hash: u64, block: &[u8], len: usize, o: &PrefixStats) {
        if self.index.is_empty() {
            self.resize(FIRST_SLOTS);
        }
        match self.find(hash) {
            Ok((Place::Held(at), _)) => self.held[at].stats.merge(o),
            Ok((Place::Single(at), slot)) => self.promote(hash, at, slot, o),
            Err(slot) => self.insert(hash, slot, block, len, o),
        }
    }

    /// A single's second key (or more): it moves to `held`.
    #[cold]
    fn promote(&mut self, hash: u64, at: usize, slot: usize, o: &PrefixStats) {
        let s = self.singles[at];
        let mut stats = s.stats();
        stats.merge(o);
        let name = match s.long_name() {
            Some(packed) => packed,
            None => append_name(&mut self.names, &s.name, s.len_code() as usize, false),
        };
        self.singles[at].meta = 0;
        self.gone += 1;
        self.index[slot] = index_slot(hash, Place::Held(self.held.len()));
        self.held.push(Held { hash, name, stats });
    }

    /// Adds a prefix that `find` did not find, at index slot `slot` unless the table must
    /// shrink or grow first.
    #[cold]
    fn insert(&mut self, hash: u64, mut slot: usize, block: &[u8], len: usize, o: &PrefixStats) {
        let full = self.len() >= self.cap;
        if full {
            self.shrink();
        }
        let grow = (self.len() + 1) * 4 > self.index.len() * 3;
        if grow {
            self.resize(self.index.len() * 2);
        }
        if full || grow {
            // The index was rebuilt without the prefix (`find` did not find it; a shrink only
            // drops): its free slot moved.
            slot = free_slot(&self.index, hash);
        }
        // (No prefix is empty: length 0 is a gone single's mark.)
        if o.keys == 1 && o.memory <= SINGLE_MEMORY && len > 0 {
            self.index[slot] = index_slot(hash, Place::Single(self.singles.len()));
            let long = (len > 16).then(|| (append_name(&mut self.names, block, len, false), hash));
            self.singles.push(Single::new(block, len, long, o.memory, o.keys_without_ttl == 1));
        } else {
            self.index[slot] = index_slot(hash, Place::Held(self.held.len()));
            let name = append_name(&mut self.names, block, len, false);
            self.held.push(Held { hash, name, stats: *o });
        }
    }

    /// Indexes every held prefix in an index of `n` slots (a power of two).
    fn resize(&mut self, n: usize) {
        self.index = written(n, 0);
        self.reindex();
    }

    /// Puts every held prefix in the (empty) index.
    fn reindex(&mut self) {
        let held = self.held.iter().enumerate().map(|(at, h)| (h.hash, Place::Held(at)));
        let singles =
            self.singles.iter().enumerate().filter(|(_, s)| !s.gone()).map(|(at, s)| (s.hash(), Place::Single(at)));
        for (hash, place) in held.chain(singles) {
            let i = free_slot(&self.index, hash);
            self.index[i] = index_slot(hash, place);
        }
    }

    /// Makes room for `n` prefixes (at most the cap) without growing step by step.
    pub(super) fn reserve(&mut self, n: usize) {
        let n = n.min(self.cap);
        let want = (n * 4 / 3 + 1).next_power_of_two().max(FIRST_SLOTS);
        if want > self.index.len() {
            self.resize(want);
        }
        let more = n.saturating_sub(self.len());
        // Most new prefixes have one key.
        self.singles.reserve(more);
        // Names as long as those held so far, on average; at most doubling the arena (a few
        // very long names must not turn an estimate into gigabytes).
        let names = more.saturating_mul(self.names.len().div_ceil(self.len().max(1)));
        self.names.reserve(names.min(self.names.len()));
    }

    /// When `need` prefixes would not fit without growing, makes room for `want` (at least
    /// `need`; at most the cap) in one step.
    pub(super) fn grow_for(&mut self, need: usize, want: usize) {
        if need.saturating_mul(4) > self.index.len() * 3 {
            self.reserve(want.max(need));
        }
    }

    /// One key at a time (the readers add a part's or a batch's totals with `add_stats`).
    #[cfg(test)]
    pub(super) fn add(&mut self, hash: u64, prefix: &[u8], memory: u64, has_ttl: bool) {
        let mut o = PrefixStats::default();
        o.count(memory, has_ttl);
        self.add_stats(hash, prefix, &o);
    }
    #[inline]
    pub(super) fn add_stats(&mut self, hash: u64, prefix: &[u8], o: &PrefixStats) {
        self.add_block(hash, prefix, prefix.len(), o);
    }
    fn name(&self, packed: u64) -> &[u8] {
        &self.names[unpack(packed)]
    }
    /// The name of a single (in it or in the arena).
    fn single_name<'s>(&'s self, s: &'s Single) -> &'s [u8] {
        match s.long_name() {
            Some(packed) => self.name(packed),
            None => &s.name[..(s.len_code() as usize).min(16)],
        }
    }
    /// Every prefix held, as (name, totals): `held`'s, then the singles'.
    fn entries(&self) -> impl Iterator<Item = (&[u8], PrefixStats)> + '_ {
        let held = self.held.iter().map(|h| (self.name(h.name), h.stats));
        held.chain(self.singles.iter().filter(|s| !s.gone()).map(|s| (self.single_name(s), s.stats())))
    }
    /// `entries` with their hashes (a single's short name hashed again).
    fn hashed_entries(&self) -> impl Iterator<Item = (u64, &[u8], PrefixStats)> + '_ {
        let held = self.held.iter().map(|h| (h.hash, self.name(h.name), h.stats));
        held.chain(self.singles.iter().filter(|s| !s.gone()).map(|s| (s.hash(), self.single_name(s), s.stats())))
    }
    /// Drops the lightest quarter (at least one; of those as light as the last dropped, the
    /// first in `entries` order), raising the error bounds by the heaviest dropped; rebuilds
    /// the index and compacts the name arena.
    fn shrink(&mut self) {
        let drop_n = (self.len() / 4).max(1);
        let mut mem: Vec<u64> = self.entries().map(|(_, s)| s.memory).collect();
        mem.select_nth_unstable(drop_n - 1);
        let cut = mem[drop_n - 1];
        drop(mem);
        let mut dropped = 0usize;
        let mut max_keys = 0;
        let mut names = Vec::with_capacity(self.names.len() * 3 / 4 + 1024);
        let old_names = std::mem::take(&mut self.names);
        // Whether a prefix stays; if so its name in the arena (if there) moved to the new one.
        let mut keep = |name: Option<&mut u64>, stats: &PrefixStats| {
            if dropped < drop_n && stats.memory <= cut {
                dropped += 1;
                max_keys = max_keys.max(stats.keys);
                return false;
            }
            if let Some(name) = name {
                let bytes = &old_names[unpack(*name)];
                *name = pack(names.len(), bytes.len());
                names.extend_from_slice(bytes);
            }
            true
        };
        self.held.retain_mut(|h| keep(Some(&mut h.name), &h.stats));
        self.singles.retain_mut(|s| {
            if s.gone() {
                return false;
            }
            let stats = s.stats();
            match s.long_name() {
                Some(mut packed) => {
                    let kept = keep(Some(&mut packed), &stats);
                    s.name[..8].copy_from_slice(&packed.to_le_bytes());
                    kept
                }
                // A short name stays in the entry.
                None => keep(None, &stats),
            }
        });
        self.gone = 0;
        self.names = names;
        self.index.fill(0);
        self.reindex();
        self.error_bound_memory += cut;
        self.error_bound_keys += max_keys;
        self.dropped += dropped as u64;
    }
    /// Empties the table, keeping its allocations (a part's table used again).
    pub(super) fn clear(&mut self) {
        self.index.fill(0);
        self.held.clear();
        self.singles.clear();
        self.gone = 0;
        self.names.clear();
        self.error_bound_memory = 0;
        self.error_bound_keys = 0;
        self.dropped = 0;
    }

    /// Adds another table's prefixes and bounds to this one.
    pub(super) fn merge(&mut self, o: Prefixes) {
        self.error_bound_memory += o.error_bound_memory;
        self.error_bound_keys += o.error_bound_keys;
        self.dropped += o.dropped;
        // In the other table's order, this table's index prefetched a few ahead.
        const AHEAD: usize = 16;
        let ahead = o.hashed_entries().skip(AHEAD).map(Some).chain(std::iter::repeat(None));
        for ((hash, name, stats), next) in o.hashed_entries().zip(ahead) {
            if let Some((next, _, _)) = next {
                self.prefetch(next);
            }
            self.add_stats(hash, name, &stats);
        }
    }
    /// Prefixes held now (at most the cap).
    pub fn len(&self) -> usize {
        self.held.len() + self.singles.len() - self.gone
    }
    /// True when no prefix is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The prefix at `i` of `held` then `singles` (`None`: a single gone to `held`).
    fn nth(&self, i: usize) -> Option<(&[u8], PrefixStats)> {
        match self.held.get(i) {
            Some(h) => Some((self.name(h.name), h.stats)),
            None => {
                Some(&self.singles[i - self.held.len()]).filter(|s| !s.gone()).map(|s| (self.single_name(s), s.stats()))
            }
        }
    }
    /// The `n` heaviest prefixes by memory (ties by name), heaviest first.
    pub fn heaviest(&self, n: usize) -> Vec<(&[u8], PrefixStats)> {
        let order = |a: &(&[u8], PrefixStats), b: &(&[u8], PrefixStats)| b.1.memory.cmp(&a.1.memory).then(a.0.cmp(b.0));
        if n == 0 {
            return Vec::new();
        }
        if n >= self.len() {
            let mut v: Vec<(&[u8], PrefixStats)> = self.entries().collect();
            v.sort_by(order);
            return v;
        }
        // One pass on every core over runs of prefixes (a table of a million prefixes takes
        // milliseconds), each run's n first in a bounded heap whose top is the last of them, then
        // the runs' n first of all. A prefix is compared with the last held by its memory, then
        // (a tie: often very many single-key prefixes weigh the same) by the first eight bytes
        // of its name as a number, then by its bytes: most are turned away without their name
        // being compared (see `name_head`).
        use rayon::prelude::*;
        use std::cmp::Reverse;
        const RUN: usize = 1 << 16;
        // Places in `held` then `singles` (see `nth`).
        let total = self.held.len() + self.singles.len();
        let starts: Vec<usize> = (0..total).step_by(RUN).collect();
        // (memory, name's head, name, place): the place tells apart names cut alike.
        type Ranked<'n> = (Reverse<u64>, u64, &'n [u8], usize);
        let first_n = |run: std::ops::Range<usize>| {
            let mut heap: std::collections::BinaryHeap<Ranked<'_>> = std::collections::BinaryHeap::with_capacity(n + 1);
            for (i, (name, stats)) in run.filter_map(|i| Some((i, self.nth(i)?))) {
                if heap.len() == n
                    && let Some(last) = heap.peek()
                    && stats.memory < last.0.0
                {
                    continue;
                }
                let ranked = (Reverse(stats.memory), name_head(name), name, i);
                if heap.len() < n {
                    heap.push(ranked);
                } else if let Some(mut last) = heap.peek_mut()
                    && ranked < *last
                {
                    *last = ranked;
                }
            }
            heap.into_vec()
        };
        let mut all: Vec<Ranked<'_>> =
            starts.par_iter().map(|&at| at..(at + RUN).min(total)).flat_map_iter(first_n).collect();
        all.sort_unstable();
        all.truncate(n);
        all.into_iter().filter_map(|(_, _, name, i)| Some((name, self.nth(i)?.1))).collect()
    }
}

/// The first eight bytes of `name` as a big-endian number, zeros past its end: names ordered
/// by (head, bytes) are in the order of their bytes (where the heads differ, so do the names at
/// that byte, or the shorter name is the start of the longer, whose byte there is not zero).
#[inline(always)]
fn name_head(name: &[u8]) -> u64 {
    match name.first_chunk::<8>() {
        Some(w) => u64::from_be_bytes(*w),
        None => name.iter().enumerate().fold(0, |h, (i, &b)| h | u64::from(b) << (56 - 8 * i)),
    }
}

/// `n` copies of `v`, written (not `vec!`'s zeroed allocation, whose untouched pages all map
/// the kernel's zero page: each first read maps it, each first write then faults again to
/// copy it and flushes the TLB of every core running the process).
fn written<T: Copy>(n: usize, v: T) -> Vec<T> {
    let mut x = Vec::with_capacity(n);
    x.resize(n, v);
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(i: u64) -> Vec<u8> {
        format!("p{i}:").into_bytes()
    }

    /// Every prefix added is held with its exact totals while under the cap, through the
    /// table's growth; merging two tables adds their totals.
    #[test]
    fn holds_every_prefix_under_the_cap() {
        let mut p = Prefixes::new(1 << 20);
        let n = 50_000u64;
        for round in 0..3 {
            for i in 0..n {
                let k = name(i);
                p.add(prefix_hash(&k), &k, i + round, i.is_multiple_of(2));
            }
        }
        assert_eq!(p.len(), n as usize);
        assert!(p.index.len() >= p.len() * 4 / 3);
        let all = p.heaviest(usize::MAX);
        assert_eq!(all.len(), n as usize);
        for (k, s) in &all {
            let i: u64 = std::str::from_utf8(&k[1..k.len() - 1]).unwrap().parse().unwrap();
            assert_eq!(
                *s,
                PrefixStats { keys: 3, memory: 3 * i + 3, keys_without_ttl: if i.is_multiple_of(2) { 0 } else { 3 } }
            );
        }
        let mut q = Prefixes::new(1 << 20);
        let k = name(7);
        q.add(prefix_hash(&k), &k, 1000, true);
        let k = name(n + 1);
        q.add(prefix_hash(&k), &k, 5, true);
        p.merge(q);
        assert_eq!(p.len(), n as usize + 1);
        let got: Vec<_> =
            p.heaviest(usize::MAX).into_iter().filter(|(k, _)| *k == b"p7:" || *k == name(n + 1)).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, PrefixStats { keys: 4, memory: 3 * 7 + 3 + 1000, keys_without_ttl: 3 });
        assert_eq!(got[1].1, PrefixStats { keys: 1, memory: 5, keys_without_ttl: 0 });
        // A hash of 0 (never a `prefix_hash`, whose 0 is a log entry's "none") is held all the
        // same by the table (a name longer than 16 bytes: a shorter one's hash is its
        // `prefix_hash`, computed again from its bytes).
        p.add(0, b"zero-hash-prefix-long:", 1, false);
        p.add(0, b"zero-hash-prefix-long:", 1, false);
        assert!(p.heaviest(usize::MAX).iter().any(|(k, s)| *k == b"zero-hash-prefix-long:" && s.keys == 2));
    }

    /// `grow_for` sizes the table in one step for what is wanted, never past what the cap
    /// needs, and leaves a table with room as it is; what it holds is kept.
    #[test]
    fn grows_in_one_step_within_the_cap() {
        let mut p = Prefixes::new(100_000);
        for i in 0..10u64 {
            let k = name(i);
            p.add(prefix_hash(&k), &k, i, false);
        }
        p.grow_for(10, 5);
        assert_eq!(p.index.len(), FIRST_SLOTS);
        p.grow_for(FIRST_SLOTS, 50_000);
        assert_eq!(p.index.len(), 1 << 17, "50,000 at most 3/4 full");
        p.grow_for(1 << 16, usize::MAX);
        assert_eq!(p.index.len(), 1 << 17, "room enough: as it was");
        p.grow_for(1 << 17, usize::MAX);
        assert_eq!(p.index.len(), 1 << 18, "sized for the cap of 100,000 at most 3/4 full");
        let slots = p.index.len();
        for i in 10..100_000u64 {
            let k = name(i);
            p.add(prefix_hash(&k), &k, i, false);
        }
        assert_eq!((p.index.len(), p.len(), p.dropped), (slots, 100_000, 0));
        let all = p.heaviest(usize::MAX);
        assert!(all.iter().all(|(k, s)| s.keys == 1 && *k == name(s.memory).as_slice()));
    }

    /// The heaviest n: by memory, ties by name, whatever n (against a full sort): short names,
    /// and names alike in their first eight bytes or more (told apart past them), some the
    /// start of others.
    #[test]
    fn heaviest_breaks_ties_by_name() {
        let names: [&dyn Fn(u64) -> Vec<u8>; 3] = [&name, &|i| format!("common-start:{i}:").into_bytes(), &|i| {
            format!("{}{}", "ab".repeat(i as usize % 13), "c".repeat(i as usize / 13 % 4)).into_bytes()
        }];
        for name in names {
            let mut p = Prefixes::new(1 << 20);
            for i in 0..3000u64 {
                let k = name(i * 7919 % 3001);
                // Three weights only: lots of ties at every cut.
                p.add(prefix_hash(&k), &k, i % 3, false);
            }
            let mut all = p.heaviest(usize::MAX);
            all.sort_by(|a, b| b.1.memory.cmp(&a.1.memory).then(a.0.cmp(b.0)));
            for n in [0, 1, 2, 5, 30, 999, 1000, 1001, 2999, 3000, 3001] {
                assert_eq!(p.heaviest(n), all[..n.min(all.len())].to_vec(), "n = {n}");
            }
        }
    }

    /// Names of up to 16 bytes (kept in a single's entry) and longer ones (in the arena), held
    /// with one key or more, through growth, a merge and a shrink: each prefix listed is under
    /// its own name with its own totals.
    #[test]
    fn singles_keep_short_names_in_place_and_long_ones_in_the_arena() {
        let mut model: std::collections::HashMap<Vec<u8>, PrefixStats> = Default::default();
        let (mut p, mut q) = (Prefixes::new(1 << 20), Prefixes::new(1 << 20));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..60_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = x % 30_000;
            // 2 to 7 bytes, exactly 16, exactly 17, and 30 or so.
            let name = match x % 4 {
                0 => format!("s{n}:"),
                1 => format!("{n:0>15}:"),
                2 => format!("{n:0>16}:"),
                _ => format!("a-rather-long-prefix-{n}:"),
            };
            let (memory, ttl) = (x % 1000, i % 3 == 0);
            let t = if i % 2 == 0 { &mut p } else { &mut q };
            t.add(prefix_hash(name.as_bytes()), name.as_bytes(), memory, ttl);
            model.entry(name.into_bytes()).or_default().count(memory, ttl);
        }
        assert!(p.singles.iter().any(|s| s.len_code() == LONG) && p.singles.iter().any(|s| s.len_code() == 16));
        p.merge(q);
        let mut want: Vec<(&[u8], PrefixStats)> = model.iter().map(|(k, s)| (&k[..], *s)).collect();
        want.sort_by(|a, b| b.1.memory.cmp(&a.1.memory).then(a.0.cmp(b.0)));
        assert_eq!(p.heaviest(usize::MAX), want);
        // Capped at half: what stays is listed whole, under its name.
        let mut c = Prefixes::new(model.len() / 2);
        for (k, s) in &model {
            c.add_stats(prefix_hash(k), k, s);
        }
        assert!(c.dropped > 0);
        let kept = c.heaviest(usize::MAX);
        assert!(kept.len() > model.len() / 4);
        for (k, s) in kept {
            assert_eq!(model[k], s, "{}", String::from_utf8_lossy(k));
        }
    }

    /// Past the cap the lightest are dropped: never more than the cap held, the heavy ones kept
    /// exactly, the bound covers what a dropped prefix lost.
    #[test]
    fn the_cap_drops_the_lightest_and_states_the_bound() {
        let mut p = Prefixes::new(1000);
        for i in 0..20_000u64 {
            let k = name(i % 5000);
            // p0..p9 are heavy; the others weigh 1 a key.
            let memory = if i % 5000 < 10 { 1_000_000 } else { 1 };
            p.add(prefix_hash(&k), &k, memory, false);
            assert!(p.len() <= 1000);
        }
        assert!(p.dropped > 0);
        let top = p.heaviest(10);
        for (k, s) in &top {
            assert!(k.len() <= 3, "{:?}", String::from_utf8_lossy(k));
            assert_eq!(s.keys, 4);
        }
        // Each light prefix saw 4 keys of 1 byte: what it shows plus the bound covers them.
        for (_, s) in p.heaviest(usize::MAX).iter().filter(|(k, _)| k.len() > 3) {
            assert!(s.memory + p.error_bound_memory >= 4 && s.keys + p.error_bound_keys >= 4);
        }
    }
}
