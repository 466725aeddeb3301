//! A part's prefixes on their way to the file's table ([`PrefixLog`]): the hot ones counted in
//! a small cache, the others written one after the other to a log that the join drains into the
//! table ([`Prefixes`]).

use super::ends::{each_prefix_end, head_words};
use super::{FIRST_SLOTS, PrefixStats, Prefixes, append_name, name_block, prefix_hash, unpack, written};
use crate::hint::prefetch;
use crate::report::Options;

/// One entry of a [`PrefixLog`]: a prefix's hash (0: none), its name in the log's arena (packed
/// by `pack`) and its totals.
#[derive(Debug, Clone, Copy, Default)]
struct Logged {
    hash: u64,
    name: u64,
    stats: PrefixStats,
}

/// An entry of the cache of a [`PrefixLog`]: the prefix itself (its length and, when it has
/// at most 16 bytes, its bytes as two words; else its hash and 0), then its log entry.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Hot {
    len: u64,
    tag: (u64, u64),
    e: Logged,
}

/// Sets of the hot cache of a [`PrefixLog`], two entries each (128 KiB: it stays in L2).
const HOT_SETS: usize = 1 << 10;

/// The prefixes of a run of keys (a part of a file), gathered for a [`Prefixes`] table that
/// is bigger than the caches: the hot ones in a small cache, where most of a key's prefixes
/// are found, the others written one after the other to a log that [`PrefixLog::drain_into`]
/// adds to the table (one random access per prefix entry, prefetched). Each prefix's totals
/// are summed, whatever the order: the table ends as if every key had been added to it.
///
/// The cache is set-associative, two entries a set: the first holds the set's prefix with the
/// most keys, the second the last one admitted. Each set has a word of 16-bit marks (a hash of
/// the prefix), one per entry and one for the last prefix logged: small enough to stay in the
/// core's first cache while the file streams through, where the entries do not. A prefix is
/// looked for in an entry only when its mark matches. One whose mark is the set's last logged
/// (seen again, as far as the set remembers) is admitted: it takes the second entry, whose
/// prefix goes to the log. Any other is logged with its key, and its mark becomes the set's
/// last logged. Most prefixes of a big file come once (one key each): they cost a look at the
/// marks and a write at the end of the log, not the entries' lines fetched from memory. A
/// prefix can be logged several times: its entries add up. Its name is copied to the arena, and
/// its hash computed, once as it is logged or admitted: a prefix of up to 16 bytes is found in
/// the cache by its bytes, without hashing it.
#[derive(Debug, Clone)]
pub(in crate::report) struct PrefixLog {
    hot: Box<[[Hot; 2]]>,
    /// Per set of the cache, a 16-bit mark of the prefix in each entry (bits 0-15 and 16-31)
    /// and of the last prefix that came and was logged (bits 32-47); 0: none.
    marks: Box<[u64]>,
    /// Some entry of the cache holds a prefix (else `flush_hot` has nothing to look at).
    hot_used: bool,
    log: Vec<Logged>,
    names: Vec<u8>,
}

impl Default for PrefixLog {
    fn default() -> Self {
        PrefixLog {
            hot: written(HOT_SETS, [Hot::default(); 2]).into_boxed_slice(),
            marks: written(HOT_SETS, 0).into_boxed_slice(),
            hot_used: false,
            log: Vec::new(),
            names: Vec::new(),
        }
    }
}

impl PrefixLog {
    /// Counts a key of `memory` bytes under each of its prefixes (`prefix_hashes`).
    #[inline(always)]
    pub(in crate::report) fn add_key(&mut self, key: &[u8], opts: &Options, memory: u64, has_ttl: bool) {
        let head = head_words(key);
        let (w0, w1) = head;
        each_prefix_end(key, head, opts, |len| {
            let tag = match TAG_MASKS.get(len) {
                // Its bytes, masked without a branch on more or fewer than eight (prefixes of
                // both lengths come mixed).
                Some(&(m0, m1)) => (w0 & m0, w1 & m1),
                None => (prefix_hash(&key[..len]), 0),
            };
            self.add(&key[..len], tag, memory, has_ttl);
        });
    }

    #[inline(always)]
    fn add(&mut self, prefix: &[u8], tag: (u64, u64), memory: u64, has_ttl: bool) {
        let len = prefix.len() as u64;
        let (at, mark) = set_of(tag, len);
        let marks = self.marks[at];
        let set = &mut self.hot[at];
        let add = |s: &mut PrefixStats| s.count(memory, has_ttl);
        // Its bytes (or hash) and length, all three.
        let holds = |h: &Hot| (h.tag.0 ^ tag.0) | (h.tag.1 ^ tag.1) | (h.len ^ len) == 0;
        if marks as u16 == mark && holds(&set[0]) {
            add(&mut set[0].e.stats);
        } else if (marks >> 16) as u16 == mark && holds(&set[1]) {
            add(&mut set[1].e.stats);
            if set[1].e.stats.keys > set[0].e.stats.keys {
                set.swap(0, 1);
                self.marks[at] = marks & !0xffff_ffff | (marks >> 16 & 0xffff) | (marks & 0xffff) << 16;
            }
        } else if (marks >> 32) as u16 == mark {
            let e = self.enter(prefix, tag, at, mark);
            add(&mut e.stats);
        } else {
            // Seen for the first time (as far as its set remembers): logged, not cached.
            self.marks[at] = marks & !(0xffff << 32) | u64::from(mark) << 32;
            let mut stats = PrefixStats::default();
            add(&mut stats);
            self.log_new(prefix, tag, stats);
        }
    }

    /// Logs a prefix that is not in the cache with the totals `stats`.
    #[cold]
    #[inline(never)]
    fn log_new(&mut self, prefix: &[u8], tag: (u64, u64), stats: PrefixStats) {
        self.hot_used = true;
        let (hash, name) = self.named(prefix, tag);
        self.log.push(Logged { hash, name, stats });
    }

    /// Makes room in set `at` for a prefix seen again (`mark` its mark), and returns its entry
    /// (totals at zero).
    #[cold]
    #[inline(never)]
    fn enter(&mut self, prefix: &[u8], tag: (u64, u64), at: usize, mark: u16) -> &mut Logged {
        let len = prefix.len() as u64;
        let (hash, packed) = self.named(prefix, tag);
        self.hot_used = true;
        let set = &mut self.hot[at];
        // A free entry has length 0 (no prefix is empty).
        let way = if set[0].len == 0 { 0 } else { 1 };
        if set[way].len != 0 {
            self.log.push(set[way].e);
        }
        set[way] = Hot { len, tag, e: Logged { hash, name: packed, stats: PrefixStats::default() } };
        // The way's mark is the prefix's; the set's candidate is taken.
        let m = &mut self.marks[at];
        *m = *m & !(0xffff << (16 * way)) & !(0xffff << 32) | u64::from(mark) << (16 * way);
        &mut set[way].e
    }

    /// A prefix's hash and its name put in the arena (see `append_name`).
    fn named(&mut self, prefix: &[u8], tag: (u64, u64)) -> (u64, u64) {
        let len = prefix.len() as u64;
        let hash = if len > 16 { tag.0 } else { prefix_hash(prefix) };
        // A name of up to 16 bytes is its tag's bytes.
        let mut words = [0; 16];
        let block = match prefix.len() {
            ..=16 => {
                words[..8].copy_from_slice(&tag.0.to_le_bytes());
                words[8..].copy_from_slice(&tag.1.to_le_bytes());
                &words[..]
            }
            _ => prefix,
        };
        (hash, append_name(&mut self.names, block, prefix.len(), true))
    }

    /// Entries in the log (a prefix may have several), not counting the cache's.
    #[inline]
    pub(in crate::report) fn logged(&self) -> usize {
        self.log.len()
    }

    /// At most how many prefixes it holds (log and cache).
    pub(in crate::report) fn bound(&self) -> usize {
        self.log.len() + if self.hot_used { 2 * HOT_SETS } else { 0 }
    }

    /// Moves the cache's entries to the log. The reader of a part calls it as it ends: the
    /// cache's lines are in its core's caches, and the join then reads the log in order.
    pub(in crate::report) fn flush_hot(&mut self) {
        if !std::mem::take(&mut self.hot_used) {
            return;
        }
        for set in self.hot.iter_mut() {
            for h in set.iter_mut().filter(|h| h.len != 0) {
                self.log.push(std::mem::take(h).e);
            }
        }
        self.marks.fill(0);
    }

    /// Sums the entries of each prefix into one (the cache's moved to the log first), in
    /// hash order, and keeps only their names: a log that hot prefixes missing from the cache
    /// filled shrinks to one entry per prefix.
    pub(in crate::report) fn compact(&mut self) {
        self.flush_hot();
        self.log.sort_unstable_by_key(|e| e.hash);
        let mut names = Vec::with_capacity(self.names.len() / 2);
        let mut kept = 0;
        for i in 0..self.log.len() {
            let e = self.log[i];
            if kept > 0 && self.log[kept - 1].hash == e.hash {
                self.log[kept - 1].stats.merge(&e.stats);
                continue;
            }
            let name = append_name(&mut names, name_block(&self.names, e.name), unpack(e.name).len(), true);
            self.log[kept] = Logged { name, ..e };
            kept += 1;
        }
        self.log.truncate(kept);
        self.names = names;
    }

    /// Adds every prefix gathered to `t` (the cache's and the log's), and empties it.
    pub(in crate::report) fn drain_into(&mut self, t: &mut Prefixes) {
        self.flush_hot();
        // In log order, the table's entries prefetched a few ahead.
        const AHEAD: usize = 16;
        if t.index.is_empty() {
            t.resize(FIRST_SLOTS);
        }
        for (i, e) in self.log.iter().enumerate() {
            if let Some(next) = self.log.get(i + AHEAD) {
                t.prefetch(next.hash);
                // Its name too: the log was written on the core that read the part, and its
                // names are in the order prefixes entered the cache, not the log's.
                if let Some(b) = self.names.get(unpack(next.name).start) {
                    prefetch(b);
                }
            }
            t.add_block(e.hash, name_block(&self.names, e.name), unpack(e.name).len(), &e.stats);
        }
        self.log.clear();
        self.names.clear();
    }
}

/// For a prefix of `len` bytes (up to 16), the masks of its bytes in the key's first two
/// words (see `head_words`).
const TAG_MASKS: [(u64, u64); 17] = {
    let mut t = [(0, 0); 17];
    let mut len = 1;
    while len <= 16 {
        t[len] = if len <= 8 { (u64::MAX >> (64 - 8 * len), 0) } else { (u64::MAX, u64::MAX >> (128 - 8 * len)) };
        len += 1;
    }
    t
};

/// The cache set of a prefix (its tag and length), and its mark there (not 0: no mark).
#[inline(always)]
fn set_of(tag: (u64, u64), len: u64) -> (usize, u16) {
    let x = (tag.0 ^ tag.1.rotate_left(29) ^ len).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let bits = HOT_SETS.trailing_zeros();
    // The mark from the 16 bits below the set's (a product's low bits mix only the low bits).
    ((x >> (64 - bits)) as usize, (x >> (48 - bits)) as u16 | 1)
}

#[cfg(test)]
mod tests {
    use super::super::prefix_hashes;
    use super::*;

    /// A log drained into a table leaves it as adding every key to the table would: hot
    /// prefixes kept in the cache, cold ones pushed out and coming back (logged several
    /// times), prefixes of every length (found by their bytes or by their hash), names kept,
    /// compacted on the way, several drains in a row.
    #[test]
    fn a_drained_log_adds_up_as_direct_adds() {
        let opts = Options {
            top: 1,
            separators: b":/".to_vec(),
            depth: 3,
            max_prefixes: 1,
            now_ms: 0,
            filter: crate::filter::Filter::default(),
            largest_element: false,
        };
        let mut direct = Prefixes::new(1 << 20);
        let mut via = Prefixes::new(1 << 20);
        let mut log = PrefixLog::default();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut hashes = Vec::new();
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // A few hot prefixes, many cold ones; short and long; some keys end in a separator.
            let key = match x % 6 {
                0 => format!("h{}:{}", x % 5, i),
                1 => format!("c{}/", x % 40_000),
                2 => format!("{}:{}/{}:x", "a".repeat((x % 20) as usize), x % 3, x % 30_000),
                3 => format!("{:x}:", x % 9),
                4 => format!("long-prefix-of-many-bytes{}:{}:", x % 7, x % 1000),
                _ => format!("{}", x % 100),
            };
            let key = key.as_bytes();
            let (memory, ttl) = (x % 1000, i % 3 == 0);
            hashes.clear();
            prefix_hashes(key, &opts, &mut hashes);
            for &(h, len) in &hashes {
                direct.add(h, &key[..len as usize], memory, ttl);
            }
            log.add_key(key, &opts, memory, ttl);
            if i % 70_000 == 0 {
                log.drain_into(&mut via);
            } else if i % 30_000 == 0 {
                let before = log.logged();
                log.compact();
                assert!(log.logged() <= before + 2 * HOT_SETS);
                let mut h: Vec<u64> = log.log.iter().map(|e| e.hash).collect();
                h.dedup();
                assert_eq!(h.len(), log.logged(), "one entry a prefix");
            }
        }
        assert!(log.logged() > 0);
        log.drain_into(&mut via);
        assert_eq!(log.logged(), 0);
        assert!(direct.len() > 10_000, "{}", direct.len());
        assert_eq!(via.len(), direct.len());
        assert_eq!(via.heaviest(usize::MAX), direct.heaviest(usize::MAX));
    }

    /// A prefix seen once is logged without entering the cache; seen again, it enters it, and
    /// its keys from then on are counted there (the log does not grow with a hot prefix).
    #[test]
    fn a_prefix_enters_the_cache_when_seen_again() {
        let opts = Options {
            top: 1,
            separators: b":".to_vec(),
            depth: 2,
            max_prefixes: 1,
            now_ms: 0,
            filter: crate::filter::Filter::default(),
            largest_element: false,
        };
        let mut log = PrefixLog::default();
        for i in 0..10_000u64 {
            // "hot:" every key; "hot:<i>:" once each.
            log.add_key(format!("hot:{i}:x").as_bytes(), &opts, 10, false);
        }
        let logged: Vec<&[u8]> = log.log.iter().map(|e| &log.names[unpack(e.name)]).collect();
        assert_eq!(logged.iter().filter(|n| **n == b"hot:").count(), 1, "hot: logged once, then cached");
        // Each "hot:<i>:" came once: logged, not cached (some may have been: a mark shared).
        assert!(log.logged() >= 10_000 - 10, "{}", log.logged());
        let mut t = Prefixes::new(1 << 20);
        log.drain_into(&mut t);
        assert_eq!(t.len(), 10_001);
        let top = t.heaviest(1);
        assert_eq!(top[0].0, b"hot:");
        assert_eq!(top[0].1, PrefixStats { keys: 10_000, memory: 100_000, keys_without_ttl: 10_000 });
    }
}
