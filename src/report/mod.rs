//! The engine behind `rdbtool report`: per-key memory and element figures (`memory`) folded into
//! bounded aggregates — per db / type / encoding, the top keys, a capped prefix tree, a TTL
//! histogram and per-slot load — in one streaming pass per file. Nothing per key is kept but
//! the top-N heaps and the prefix table (at most `max_prefixes` entries).
//!
//! A file is read in one of two ways, with the same figures: for the aggregates alone, in parts
//! on every core joined in file order ([`scan_aggregate`], src/report/parts.rs); for per-key
//! output, by a pipeline ([`scan_file`], src/report/pipeline.rs): the reader cuts key records
//! into batches, two workers estimate them, and the caller's thread folds the results in file
//! order (so rows come out in file order).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::Serialize;

use crate::filter::Filter;
use crate::memory::{Encoding, KeyFigures};
use crate::rdb::types::Kind;

mod parts;
mod pipeline;
mod prefixes;
pub mod rows;
pub use pipeline::scan_file;
pub use prefixes::{PrefixStats, Prefixes, prefix_hash, prefix_hashes};

/// What shapes a report.
#[derive(Debug, Clone)]
pub struct Options {
    /// Keys in each top list.
    pub top: usize,
    /// Bytes that end a prefix segment.
    pub separators: Vec<u8>,
    /// Prefix levels kept (1: `user:`, 2: `user:42:`, ...).
    pub depth: usize,
    /// Most prefixes held at once.
    pub max_prefixes: usize,
    /// "Now" in unix ms for the TTL histogram.
    pub now_ms: i64,
    /// Which keys are counted (keys it rejects are skipped entirely).
    pub filter: Filter,
    /// Whether per-key rows need `largest_element` (CSV, JSON Lines, Parquet). Without it, values
    /// Redis keeps as the blob in the file are measured from their headers, not walked
    /// ([`Estimator::without_largest`](crate::memory::Estimator::without_largest)), and their `largest_element` is 0.
    pub largest_element: bool,
}

/// One key as the report sees it.
#[derive(Debug, Clone)]
pub struct KeyRow<'a> {
    /// The key's database.
    pub db: u64,
    /// The key's name (borrowed from the file unless stored as an integer or compressed).
    pub key: &'a [u8],
    /// The value's logical type.
    pub kind: Kind,
    /// On-disk encoding.
    pub rdb_encoding: &'static str,
    /// When the key expires, Unix ms; `None` without a TTL.
    pub expire_at_ms: Option<i64>,
    /// The key's cluster hash slot (§10).
    pub slot: u16,
    /// Bytes of the value's serialization in the file (what a RESTORE payload carries).
    pub value_bytes: u64,
    /// LRU idle seconds and LFU counter, when the file holds them.
    pub idle_s: Option<u64>,
    /// LFU counter (one byte, §3.5), when the file holds one.
    pub freq: Option<u8>,
    /// Memory and element figures from the estimator.
    pub fig: KeyFigures,
}

/// Totals of a group of keys (a db, a type, an encoding, the whole input).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Bucket {
    /// Keys in the group.
    pub keys: u64,
    /// Estimated memory in bytes, as Redis's `MEMORY USAGE` would count it.
    pub memory: u64,
    /// Elements (1 per string; members, fields, items or stream entries otherwise).
    pub elements: u64,
}

impl Bucket {
    fn add(&mut self, f: &KeyFigures) {
        self.keys += 1;
        self.memory += f.memory;
        self.elements += f.elements;
    }
    fn merge(&mut self, o: &Bucket) {
        self.keys += o.keys;
        self.memory += o.memory;
        self.elements += o.elements;
    }
}

/// One key of a top list.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct TopKey {
    /// What the list is ranked by (memory or elements), first so that the order sorts by it.
    #[serde(skip)]
    pub rank: u64,
    /// The key's database.
    pub db: u64,
    /// The key's name (bytes; JSON shows UTF-8 as a string, anything else as `{"base64": ...}`).
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub key: Vec<u8>,
    /// The value's logical type.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The in-memory encoding Redis would give it on load (`OBJECT ENCODING`).
    pub encoding: Encoding,
    /// Estimated memory in bytes.
    pub memory: u64,
    /// Elements in the value.
    pub elements: u64,
    /// The input file the key is in.
    pub file: String,
}

/// A bounded list of the `n` highest-ranked keys (a min-heap: most keys lose to its smallest).
#[derive(Debug, Clone)]
pub struct Top {
    n: usize,
    heap: BinaryHeap<Reverse<TopKey>>,
    /// The rank a key must pass to enter: the smallest held once the list is full (`None`
    /// before; `Some(u64::MAX)` for a list of 0 keys), kept here so that most keys are turned
    /// away without looking into the heap.
    bar: Option<u64>,
}

impl Top {
    fn new(n: usize) -> Top {
        Top { n, heap: BinaryHeap::new(), bar: (n == 0).then_some(u64::MAX) }
    }
}

impl Default for Top {
    /// A list of 0 keys.
    fn default() -> Top {
        Top::new(0)
    }
}

impl Top {
    #[inline]
    fn wants(&self, rank: u64) -> bool {
        self.bar.is_none_or(|bar| rank > bar)
    }
    fn push(&mut self, k: TopKey) {
        self.heap.push(Reverse(k));
        if self.heap.len() > self.n {
            self.heap.pop();
        }
        if self.heap.len() >= self.n {
            self.bar = Some(self.heap.peek().map_or(u64::MAX, |Reverse(min)| min.rank));
        }
    }
    fn clear(&mut self) {
        self.heap.clear();
        self.bar = (self.n == 0).then_some(u64::MAX);
    }
    fn merge(&mut self, o: Top) {
        for Reverse(k) in o.heap {
            if self.wants(k.rank) {
                self.push(k);
            }
        }
    }
    /// Highest first.
    pub fn sorted(&self) -> Vec<TopKey> {
        let mut v: Vec<TopKey> = self.heap.iter().map(|Reverse(k)| k.clone()).collect();
        v.sort_by(|a, b| b.cmp(a));
        v
    }
}

/// TTL histogram buckets.
pub const TTL_BUCKETS: [&str; 7] = ["none", "expired", "<1h", "<1d", "<7d", "<30d", "more"];

fn ttl_bucket(expire_at_ms: Option<i64>, now_ms: i64) -> usize {
    // Counted, not branched on: whether a key has a TTL and how far it is are as good as
    // random from one key to the next.
    const H: i64 = 3_600_000;
    let (has, t) = match expire_at_ms {
        Some(t) => (1, t),
        None => (0, now_ms),
    };
    let left = t.saturating_sub(now_ms);
    let far = [0, H, 24 * H, 7 * 24 * H, 30 * 24 * H].iter().map(|&b| usize::from(left >= b)).sum::<usize>();
    has * (1 + far)
}

/// Per file: what it held and whether it was read to its end.
#[derive(Debug, Clone, Serialize)]
pub struct FileTotals {
    /// The path as given.
    pub file: String,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Keys counted (those that passed the filter).
    pub keys: u64,
    /// Their estimated memory, bytes.
    pub memory: u64,
    /// Their elements.
    pub elements: u64,
    /// Keys whose collection is empty, not counted: Redis drops them on load (it skips such a
    /// key with a warning, and so does `verify`).
    pub empty_keys: u64,
    /// Why reading stopped early (keys after that point are not counted); `None` when read to the end.
    pub error: Option<String>,
}

impl FileTotals {
    /// A file of `bytes` bytes, nothing counted yet.
    pub fn new(file: &str, bytes: u64) -> FileTotals {
        FileTotals { file: file.to_owned(), bytes, keys: 0, memory: 0, elements: 0, empty_keys: 0, error: None }
    }

    /// Counts a run of keys (their sums) and the keys with an empty collection beside them.
    pub(super) fn count(&mut self, keys: &Bucket, empty_keys: u64) {
        self.keys += keys.keys;
        self.memory += keys.memory;
        self.elements += keys.elements;
        self.empty_keys += empty_keys;
    }
}

/// The aggregates of one or several files.
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// All keys together.
    pub total: Bucket,
    /// Per database.
    pub dbs: BTreeMap<u64, Bucket>,
    /// Per logical type.
    pub types: BTreeMap<Kind, Bucket>,
    /// Per in-memory encoding (`OBJECT ENCODING`).
    pub encodings: BTreeMap<Encoding, Bucket>,
    /// The keys with the most estimated memory.
    pub top_memory: Top,
    /// The keys with the most elements.
    pub top_elements: Top,
    /// Keys and memory per prefix, bounded (see [`Prefixes`]).
    pub prefixes: Prefixes,
    /// Keys and memory per TTL bucket (`TTL_BUCKETS`).
    pub ttl: [(u64, u64); 7],
    /// Keys and memory per cluster hash slot.
    pub slots: Vec<(u64, u64)>,
    /// One entry per file read, in the order they were folded.
    pub files: Vec<FileTotals>,
}

impl Aggregate {
    /// Empty aggregates sized by `opts` (`top` keys per list, `max_prefixes` prefixes).
    pub fn new(opts: &Options) -> Aggregate {
        Aggregate {
            total: Bucket::default(),
            dbs: BTreeMap::new(),
            types: BTreeMap::new(),
            encodings: BTreeMap::new(),
            top_memory: Top::new(opts.top),
            top_elements: Top::new(opts.top),
            prefixes: Prefixes::new(opts.max_prefixes),
            ttl: [(0, 0); 7],
            slots: vec![(0, 0); 16384],
            files: Vec::new(),
        }
    }

    /// What of one key cannot be summed over a batch: its place in the top lists and its slot
    /// (its prefixes go through `Prefixes`).
    #[inline]
    fn place(&mut self, r: &KeyRow<'_>, file: &str) {
        let f = &r.fig;
        let top = |rank| TopKey {
            rank,
            db: r.db,
            key: r.key.to_vec(),
            kind: r.kind,
            encoding: f.encoding,
            memory: f.memory,
            elements: f.elements,
            file: file.to_owned(),
        };
        if self.top_memory.wants(f.memory) {
            self.top_memory.push(top(f.memory));
        }
        if self.top_elements.wants(f.elements) {
            self.top_elements.push(top(f.elements));
        }
        let s = &mut self.slots[r.slot as usize];
        s.0 += 1;
        s.1 += f.memory;
    }

    /// Empties it, keeping its allocations (its tables used again).
    fn clear(&mut self) {
        self.total = Bucket::default();
        self.dbs.clear();
        self.types.clear();
        self.encodings.clear();
        self.top_memory.clear();
        self.top_elements.clear();
        self.prefixes.clear();
        self.ttl = [(0, 0); 7];
        self.slots.fill((0, 0));
        self.files.clear();
    }

    /// Adds another aggregate's figures to this one (top lists and prefixes stay within their bounds).
    pub fn merge(&mut self, o: Aggregate) {
        if self.files.is_empty() && self.total.keys == 0 && self.prefixes.is_empty() {
            // Nothing here yet (the first file of a report): take the other as it is.
            *self = o;
            return;
        }
        self.total.merge(&o.total);
        for (k, v) in &o.dbs {
            self.dbs.entry(*k).or_default().merge(v);
        }
        for (k, v) in &o.types {
            self.types.entry(*k).or_default().merge(v);
        }
        for (k, v) in &o.encodings {
            self.encodings.entry(*k).or_default().merge(v);
        }
        self.top_memory.merge(o.top_memory);
        self.top_elements.merge(o.top_elements);
        self.prefixes.merge(o.prefixes);
        for (a, b) in self.ttl.iter_mut().zip(o.ttl) {
            a.0 += b.0;
            a.1 += b.1;
        }
        for (a, b) in self.slots.iter_mut().zip(o.slots) {
            a.0 += b.0;
            a.1 += b.1;
        }
        self.files.extend(o.files);
    }

    /// The `n` slots with the most memory, heaviest first: (slot, keys, memory).
    pub fn hottest_slots(&self, n: usize) -> Vec<(u16, u64, u64)> {
        let mut v: Vec<(u16, u64, u64)> =
            self.slots.iter().enumerate().filter(|(_, s)| s.0 > 0).map(|(i, s)| (i as u16, s.0, s.1)).collect();
        first_n(&mut v, n, |a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        v
    }
}

/// Keeps the first `n` of `v` in the order `by` (a total order), sorted: the others are only
/// partitioned away (a report's slot lists have up to 16384 entries and show a few).
fn first_n<T>(v: &mut Vec<T>, n: usize, by: impl Fn(&T, &T) -> std::cmp::Ordering) {
    if n == 0 {
        v.clear();
        return;
    }
    if v.len() > n {
        v.select_nth_unstable_by(n - 1, &by);
        v.truncate(n);
    }
    v.sort_unstable_by(by);
}

/// Keys and memory of one hash slot.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct SlotLoad {
    /// The slot, 0-16383 (§10).
    pub slot: u16,
    /// Keys in the slot.
    pub keys: u64,
    /// Their estimated memory, bytes.
    pub memory: u64,
}

/// What one target of a slot layout would hold: its slots' keys and memory, its hottest slots.
#[derive(Debug, Clone, Serialize)]
pub struct ShardLoad {
    /// The target's name (its output file without `.rdb`).
    pub name: String,
    /// Its slot ranges (`0-5460`).
    pub slots: String,
    /// The cluster node that owns these slots, when the layout names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<crate::split::Node>,
    /// How many slots the target owns.
    pub slot_count: u32,
    /// Keys in its slots.
    pub keys: u64,
    /// Their estimated memory, bytes.
    pub memory: u64,
    /// The slots with the most memory, heaviest first (only slots holding keys).
    pub hottest: Vec<SlotLoad>,
}

/// Per-target load under `layout`, in the layout's order, and the keys and memory of slots no
/// target owns.
pub fn shard_loads(a: &Aggregate, layout: &crate::split::Layout, hottest: usize) -> (Vec<ShardLoad>, SlotLoad) {
    let mut shards: Vec<ShardLoad> = layout
        .targets
        .iter()
        .map(|t| ShardLoad {
            name: t.name.clone(),
            slots: crate::split::ranges_text(&t.ranges),
            node: t.node.clone(),
            slot_count: 0,
            keys: 0,
            memory: 0,
            hottest: Vec::new(),
        })
        .collect();
    let mut unowned = SlotLoad { slot: 0, keys: 0, memory: 0 };
    let mut per_shard: Vec<Vec<SlotLoad>> = vec![Vec::new(); shards.len()];
    for (slot, &(keys, memory)) in a.slots.iter().enumerate() {
        let slot = slot as u16;
        match layout.owner(slot) {
            Some(t) => {
                let sh = &mut shards[t];
                sh.slot_count += 1;
                sh.keys += keys;
                sh.memory += memory;
                if keys > 0 {
                    per_shard[t].push(SlotLoad { slot, keys, memory });
                }
            }
            None => {
                unowned.keys += keys;
                unowned.memory += memory;
            }
        }
    }
    for (sh, mut v) in shards.iter_mut().zip(per_shard) {
        first_n(&mut v, hottest, |a, b| b.memory.cmp(&a.memory).then(a.slot.cmp(&b.slot)));
        sh.hottest = v;
    }
    (shards, unowned)
}

/// Sums over a run of keys (a batch, up to its first error) that the folder adds to the
/// aggregate in one go rather than key by key: the pipeline's workers and each part fill them.
///
/// Kept per db, type and encoding together (one bucket per key; the totals per db, type and
/// encoding and the grand total are sums of these, made once per run by [`Sums::total`] and
/// [`Aggregate::add_sums`]), with the db of the last key's bucket at hand (keys come in runs
/// of one db). At most `DENSE_DBS` dbs have their cells (1.7 KB each) at once: past that, the
/// db met longest ago hands its cells to the new one and its buckets go to `spilled`, so a
/// file that switches between many dbs costs an entry per db and bucket, not a box.
#[derive(Debug, Default)]
struct Sums {
    /// Per db: its buckets by type and encoding.
    dbs: Vec<(u64, Box<Cells>)>,
    /// The place in `dbs` of each db (a file may switch between many: no linear search).
    places: std::collections::HashMap<u64, usize>,
    /// The place in `dbs` of the db of the last key.
    cur: usize,
    /// The place in `dbs` whose cells go to the next new db once all `DENSE_DBS` are taken.
    reuse: usize,
    /// The buckets of dbs whose cells went to another (a db may be here several times).
    spilled: Vec<(u64, Kind, Encoding, Bucket)>,
    ttl: [(u64, u64); 7],
}

/// Dbs with cells of their own in a `Sums` at once (see there).
const DENSE_DBS: usize = 32;

/// Buckets by type (its place in `KINDS`) and encoding (`enc as usize`, its place in
/// `Encoding::ALL`).
type Cells = [[Bucket; Encoding::ALL.len()]; KINDS.len()];

impl Sums {
    #[inline(always)]
    fn add(&mut self, db: u64, kind: Kind, expire_at_ms: Option<i64>, f: &KeyFigures, now_ms: i64) {
        let cells = match self.dbs.get_mut(self.cur) {
            Some((d, cells)) if *d == db => cells,
            _ => self.select(db),
        };
        cells[kind as usize][f.encoding as usize].add(f);
        let t = &mut self.ttl[ttl_bucket(expire_at_ms, now_ms)];
        t.0 += 1;
        t.1 += f.memory;
    }

    /// The buckets of `db`, made the current db.
    #[cold]
    fn select(&mut self, db: u64) -> &mut Cells {
        if let Some(&at) = self.places.get(&db) {
            self.cur = at;
        } else if self.dbs.len() < DENSE_DBS {
            self.dbs.push((db, Box::new([[Bucket::default(); Encoding::ALL.len()]; KINDS.len()])));
            self.cur = self.dbs.len() - 1;
            self.places.insert(db, self.cur);
        } else {
            let at = self.reuse;
            self.reuse = (at + 1) % DENSE_DBS;
            let (old, cells) = &mut self.dbs[at];
            self.places.remove(old);
            for (kind, row) in KINDS.iter().zip(cells.iter_mut()) {
                for (enc, b) in Encoding::ALL.iter().zip(row.iter_mut()).filter(|(_, b)| b.keys > 0) {
                    self.spilled.push((*old, *kind, *enc, std::mem::take(b)));
                }
            }
            *old = db;
            self.cur = at;
            self.places.insert(db, at);
        }
        &mut self.dbs[self.cur].1
    }

    /// Every bucket holding keys: db, type, encoding, bucket (a db, type and encoding may come
    /// more than once: their buckets add up).
    fn buckets(&self) -> impl Iterator<Item = (u64, Kind, Encoding, &Bucket)> {
        let dense = self.dbs.iter().flat_map(|(db, cells)| {
            KINDS.iter().zip(cells.iter()).flat_map(move |(kind, row)| {
                Encoding::ALL.iter().zip(row).filter(|(_, b)| b.keys > 0).map(move |(enc, b)| (*db, *kind, *enc, b))
            })
        });
        dense.chain(self.spilled.iter().map(|(db, kind, enc, b)| (*db, *kind, *enc, b)))
    }

    /// Buckets that went from a db's cells to `spilled`.
    fn spilled(&self) -> usize {
        self.spilled.len()
    }

    /// All keys together.
    fn total(&self) -> Bucket {
        let mut t = Bucket::default();
        for (_, _, _, b) in self.buckets() {
            t.merge(b);
        }
        t
    }

    /// Empties it for the next batch: the dbs seen go (a reused batch would otherwise keep, and
    /// go through, a box for every db any batch ever met).
    fn clear(&mut self) {
        self.dbs.clear();
        self.places.clear();
        self.cur = 0;
        self.reuse = 0;
        self.spilled.clear();
        self.ttl = [(0, 0); 7];
    }
}

/// Every `Kind`, in the order of their discriminants (the rows of a db's cells in `Sums`).
const KINDS: [Kind; 7] = [Kind::String, Kind::List, Kind::Set, Kind::Zset, Kind::Hash, Kind::Stream, Kind::Module];
const _: () = {
    let mut i = 0;
    while i < KINDS.len() {
        assert!(KINDS[i] as usize == i);
        i += 1;
    }
};

impl Aggregate {
    /// Adds the sums of a run of keys (their top lists, prefixes and slots go through `place`),
    /// their dbs mapped by `db` (a part read in no known db: `Span::fix`).
    fn add_sums(&mut self, s: &Sums, db: impl Fn(u64) -> u64) {
        for (d, kind, enc, b) in s.buckets() {
            self.total.merge(b);
            self.dbs.entry(db(d)).or_default().merge(b);
            self.types.entry(kind).or_default().merge(b);
            self.encodings.entry(enc).or_default().merge(b);
        }
        for (a, b) in self.ttl.iter_mut().zip(s.ttl) {
            a.0 += b.0;
            a.1 += b.1;
        }
    }
}

/// `scan_file` without per-key rows: the aggregates of one file, read in parts on every core
/// (src/report/parts.rs) when the filter allows it (no `--db`, no `--limit`: both need to know
/// every key's db, or the keys before it, as it is read), else by `scan_file`. The same figures
/// either way. The scan is one consumer of `pages`.
pub fn scan_aggregate(name: &str, data: &[u8], opts: &Options, pages: &crate::pass::Pages<'_>) -> Aggregate {
    let threads = rayon::current_num_threads();
    scan_with_parts(name, data, opts, pages, crate::rdb::reader::part_size(data.len(), threads), threads)
}

/// `scan_aggregate` reading the file in parts of about `part` bytes whatever its size: for
/// tests that the figures do not depend on how the file was cut.
#[doc(hidden)]
pub fn scan_in_parts(name: &str, data: &[u8], opts: &Options, part: usize) -> Aggregate {
    let pages = crate::pass::Pages::unmapped(data.len());
    scan_with_parts(name, data, opts, &pages, part.max(1), rayon::current_num_threads())
}

fn scan_with_parts(
    name: &str,
    data: &[u8],
    opts: &Options,
    pages: &crate::pass::Pages<'_>,
    step: usize,
    threads: usize,
) -> Aggregate {
    let one_reading = |pages: &crate::pass::Pages<'_>| {
        // No row is written: `each` cannot fail.
        scan_file(name, data, opts, pages, &mut |_| Ok(())).unwrap_or_else(|_| Aggregate::new(opts))
    };
    if opts.filter.limit.is_some() || !opts.filter.dbs.is_empty() {
        return one_reading(pages);
    }
    match parts::scan_parts(name, data, opts, pages, step, threads) {
        Some(agg) => agg,
        None => {
            // The prefix table reached its cap: read again in one reading, so that the prefixes
            // dropped (and the error bound) are those of one reading. The parts already told
            // `pages` they were done: this reading gives its bytes back as it goes.
            let forget = |r: std::ops::Range<usize>| pages.forget(r);
            one_reading(&crate::pass::Pages::with_release(data.len(), 1, &forget))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `first_n` keeps what a full sort would put first, for any n, with many ties of the first
    /// key (told apart by the second).
    #[test]
    fn first_n_is_the_start_of_a_sort() {
        let mut rng = crate::rng::Rng(7);
        let by = |a: &(u64, u16), b: &(u64, u16)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        for len in [0usize, 1, 5, 300] {
            let v: Vec<(u64, u16)> = (0..len).map(|i| (rng.below(4), i as u16)).collect();
            let mut sorted = v.clone();
            sorted.sort_by(by);
            for n in [0, 1, 3, len.saturating_sub(1), len, len + 1] {
                let mut got = v.clone();
                first_n(&mut got, n, by);
                assert_eq!(got, sorted[..n.min(len)], "len {len} n {n}");
            }
        }
    }

    /// Keys of many dbs, coming back and forth, are summed per db; a cleared `Sums` keeps no
    /// db for the next batch.
    #[test]
    fn sums_per_db_and_cleared() {
        let f = KeyFigures { memory: 10, elements: 1, largest_element: 1, encoding: Encoding::Raw };
        let mut s = Sums::default();
        for round in 0..3 {
            for db in 0..5000u64 {
                s.add(db * 7, Kind::String, None, &f, 0);
                if round == 0 && db % 2 == 0 {
                    s.add(db * 7, Kind::String, Some(1), &f, 0);
                }
            }
        }
        // At most DENSE_DBS boxes; the other dbs' buckets spilled, once per time a db came back.
        assert_eq!(s.dbs.len(), DENSE_DBS);
        assert_eq!(s.total(), Bucket { keys: 17_500, memory: 175_000, elements: 17_500 });
        let db14: u64 = s.buckets().filter(|b| b.0 == 14).map(|b| b.3.keys).sum();
        assert_eq!(db14, 4);
        // Every db once per round, but the last DENSE_DBS of the last round still dense.
        assert_eq!(s.spilled(), 3 * 5000 - DENSE_DBS);
        s.clear();
        assert!(s.dbs.is_empty() && s.buckets().next().is_none());
        s.add(3, Kind::String, None, &f, 0);
        assert_eq!(s.total().keys, 1);
    }

    /// The counted TTL bucket is the one a plain reading of the bounds gives, at each bound,
    /// next to it, and at the ends of the range.
    #[test]
    fn ttl_bucket_at_every_bound() {
        const H: i64 = 3_600_000;
        let plain = |e: Option<i64>, now: i64| match e {
            None => 0,
            Some(t) => match t.saturating_sub(now) {
                ..0 => 1,
                0..H => 2,
                l if l < 24 * H => 3,
                l if l < 7 * 24 * H => 4,
                l if l < 30 * 24 * H => 5,
                _ => 6,
            },
        };
        let now = 1_795_240_763_000;
        assert_eq!(ttl_bucket(None, now), 0);
        for b in [0, H, 24 * H, 7 * 24 * H, 30 * 24 * H] {
            for d in [-1, 0, 1] {
                let e = Some(now + b + d);
                assert_eq!(ttl_bucket(e, now), plain(e, now), "{b} {d}");
            }
        }
        for t in [i64::MIN, -1, 0, i64::MAX] {
            for now in [i64::MIN, 0, now, i64::MAX] {
                assert_eq!(ttl_bucket(Some(t), now), plain(Some(t), now), "{t} {now}");
            }
        }
        assert_eq!(ttl_bucket(Some(now - 1), now), 1);
        assert_eq!(ttl_bucket(Some(now + 40 * 24 * H), now), 6);
    }
}
