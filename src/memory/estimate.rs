//! The per-key estimate: for each on-disk encoding, the structure Redis 7.0's loader builds from
//! it (with the default `*-max-listpack-*`, `set-max-intset-entries` and `list-max-listpack-size`
//! settings) and what `objectComputeSize` counts for that structure.
//!
//! The value is walked once with a `Sink` that keeps running sums (element count, the largest
//! element, the sds and listpack bytes the elements would take); containers whose in-memory
//! form is the on-disk blob (listpacks, intsets, quicklist nodes, stream nodes) are measured
//! from their lengths in the file. Nothing of the value is kept.
//!
//! Over 900 lines with its tests (under 700 without): the string values (`string_figures` and
//! what it calls, about 100 lines) are what to move out next, to a module of their own.

use crate::error::Result;
use crate::rdb::cursor::{Cursor, Elem, RdbStr};
use crate::rdb::decimal::{is_canonical_i64, itoa_len, parse_canonical_i64};
use crate::rdb::encodings::blob_of;
use crate::rdb::encodings::ziplist::ZiplistIter;
use crate::rdb::module::ModuleType;
use crate::rdb::reader::InPlace;
use crate::rdb::types::{Format, id};
use crate::rdb::value::{RawValue, Sink, StreamGroup, StreamMeta};
use crate::rdb::walk::Walker;

use super::*;

/// What a key costs and holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFigures {
    /// Bytes, as `MEMORY USAGE key SAMPLES 0` on Redis 7.0 would report them.
    pub memory: u64,
    /// Strings 1; list items, set members, zset members, hash fields, stream entries.
    pub elements: u64,
    /// Bytes of the longest element (a string's length; for hashes the longer of field and
    /// value; 0 for streams and modules).
    pub largest_element: u64,
    /// The in-memory encoding Redis 7.0 gives the value on load (`OBJECT ENCODING`).
    pub encoding: Encoding,
}

/// Running sums over a value's elements. `B` is `Sink::WANTS_BYTES`: false for values whose
/// elements all come from inner blobs (listpacks, ziplists, intsets), where the walk then skips
/// what only a builder needs (parsing listpack zset scores).
#[derive(Default)]
struct Collector<const B: bool> {
    /// Sum listpack entry sizes (the value may become a listpack built from its elements).
    want_lp: bool,
    /// Sum sds sizes (the value may become a hashtable or skiplist).
    want_sds: bool,
    /// Look at whether set members are integers (the set may become an intset).
    want_int: bool,
    n: u64,
    largest: u64,
    /// Listpack entry bytes the elements take (no header).
    lp: u64,
    /// `sdsZmallocSize` of every element as its own sds (members, fields and values).
    sds: u64,
    /// Longest field/value/member, for the listpack value thresholds.
    maxlen: u64,
    /// Set members: all integers so far, and the widest intset encoding they need.
    all_int: bool,
    int_width: u64,
    /// Simulated quicklist of a list pushed element by element: bytes of the open node's
    /// listpack (0: no node), and the allocations of the closed ones.
    simulate_list: bool,
    node_lp: u64,
    nodes_mem: u64,
    /// Streams.
    stream_len: u64,
    groups_mem: u64,
}

impl<const B: bool> Collector<B> {
    fn reset(&mut self, type_byte: u8) {
        use id::*;
        *self = Collector {
            all_int: true,
            int_width: 2,
            simulate_list: matches!(type_byte, LIST | LIST_ZIPLIST),
            want_lp: !matches!(type_byte, ZSET_LISTPACK | HASH_LISTPACK),
            want_sds: true,
            want_int: matches!(type_byte, SET | SET_LISTPACK),
            ..Collector::default()
        };
    }

    #[inline]
    fn elem(&mut self, e: Elem<'_>) -> u64 {
        let len = e.len() as u64;
        self.n += 1;
        self.largest = self.largest.max(len);
        self.maxlen = self.maxlen.max(len);
        if self.want_sds {
            self.sds += sds_alloc(len);
        }
        len
    }

    fn push_list(&mut self, e: Elem<'_>, len: u64) {
        let entry = lp_entry(e);
        // quicklistPushTail with fill -2: the node takes the element while its listpack plus
        // the element plus 8 stays within 8 KiB.
        if self.node_lp == 0 || self.node_lp + len + 8 > LIST_NODE_BYTES {
            self.close_node();
            self.node_lp = LP_EMPTY;
        }
        self.node_lp += entry;
    }

    fn close_node(&mut self) {
        if self.node_lp > 0 {
            self.nodes_mem += QUICKLIST_NODE + je_size(self.node_lp);
            self.node_lp = 0;
        }
    }
}

impl<const B: bool> Sink for Collector<B> {
    const WANTS_BYTES: bool = B;

    #[inline(always)]
    fn string(&mut self, v: Elem<'_>) {
        self.elem(v);
    }
    #[inline(always)]
    fn list_item(&mut self, v: Elem<'_>) {
        let len = self.elem(v);
        if self.simulate_list {
            self.push_list(v, len);
        }
    }
    #[inline(always)]
    fn set_member(&mut self, m: Elem<'_>) {
        self.elem(m);
        if self.want_int && self.all_int {
            let v = match m {
                Elem::Int(v) => Some(v),
                Elem::Bytes(b) => parse_canonical_i64(b),
            };
            match v {
                Some(v) => {
                    let w = if i16::try_from(v).is_ok() {
                        2
                    } else if i32::try_from(v).is_ok() {
                        4
                    } else {
                        8
                    };
                    self.int_width = self.int_width.max(w);
                }
                None => self.all_int = false,
            }
        }
    }
    #[inline(always)]
    fn zset_item(&mut self, m: Elem<'_>, score: f64) {
        self.elem(m);
        // Past the listpack limit the zset is a skiplist: its listpack size no longer matters.
        if self.want_lp && self.n <= ZSET_MAX_LISTPACK_ENTRIES {
            self.lp += lp_entry(m) + lp_score_entry(score);
        }
    }
    #[inline(always)]
    fn hash_field(&mut self, f: Elem<'_>, v: Elem<'_>, _expire_at_ms: Option<i64>) {
        let (fl, vl) = (f.len() as u64, v.len() as u64);
        self.n += 1;
        let l = fl.max(vl);
        self.largest = self.largest.max(l);
        self.maxlen = self.maxlen.max(l);
        if self.want_sds {
            self.sds += sds_alloc(fl) + sds_alloc(vl);
        }
        if self.want_lp && self.n <= HASH_MAX_LISTPACK_ENTRIES {
            self.lp += lp_entry(f) + lp_entry(v);
        }
    }
    fn stream_meta(&mut self, m: &StreamMeta) {
        self.stream_len = m.length;
    }
    fn stream_group(&mut self, g: &StreamGroup) {
        let mut pel = RaxCounter::default();
        for p in &g.pending {
            pel.add(id_key(p.id.ms, p.id.seq));
        }
        self.groups_mem += STREAM_CG + pel.memory() + STREAM_NACK * g.pending.len() as u64;
        for c in &g.consumers {
            let mut cpel = RaxCounter::default();
            for id in &c.pending {
                cpel.add(id_key(id.ms, id.seq));
            }
            self.groups_mem += STREAM_CONSUMER + c.name.len() as u64 + cpel.memory();
        }
    }
    fn module(&mut self, _t: ModuleType, payload: &[u8]) {
        self.sds = payload.len() as u64;
    }
}

/// Estimates keys one after the other, reusing its buffers.
///
/// As the reader's [`InPlace`] walk ([`Reader::read_next_with`](crate::rdb::reader::Reader::read_next_with)),
/// it measures the collections it walks element by element (lists, sets, zsets and hashes of
/// RDB strings) as the reader finds their end, and [`Estimator::walked`] gives their figures:
/// their bytes read once, not skipped and then walked.
pub struct Estimator {
    /// Figures of the value walked by the reader's last key record (`InPlace`).
    walked: Option<KeyFigures>,
    walker: Walker,
    c: Collector<true>,
    light: Collector<false>,
    blob: Vec<u8>,
    /// What walking a stream's metadata noted (not used).
    notes: Vec<crate::rdb::value::Note>,
    skiplist_node: f64,
    /// Whether `largest_element` is wanted: without it, values kept in memory as the blob in
    /// the file are measured from their headers alone (see [`Estimator::without_largest`]).
    largest: bool,
}

impl Default for Estimator {
    fn default() -> Self {
        Estimator {
            walked: None,
            walker: Walker::without_duplicate_check(),
            c: Collector::default(),
            light: Collector::default(),
            blob: Vec::new(),
            notes: Vec::new(),
            skiplist_node: skiplist_node_mean(),
            largest: true,
        }
    }
}

/// A hashtable set or hash: the object, the dict, its buckets and one entry per element.
fn dict_value(n: u64, sds: u64) -> u64 {
    ROBJ + DICT + 8 * dict_slots(n) + DICT_ENTRY * n + sds
}

/// `MEMORY USAGE` adds the key's sds string and its dictEntry to the value.
#[inline]
pub fn key_overhead(key_len: usize) -> u64 {
    sds_alloc(key_len as u64) + DICT_ENTRY
}

/// Length of the first string of a value (the blob of a listpack / intset / ziplist value).
fn first_str_len(raw: &RawValue<'_>) -> Result<u64> {
    let mut c = Cursor::new(raw.bytes, raw.offset);
    if matches!(raw.type_byte, id::HASH_LISTPACK_EX) {
        c.take(8, "hash minimum expire time")?;
    }
    Ok(c.str("value")?.len() as u64)
}

impl Estimator {
    /// An estimator with empty scratch buffers.
    pub fn new() -> Estimator {
        Estimator::default()
    }

    /// An estimator that leaves `largest_element` at 0 for values Redis keeps as the blob in
    /// the file (listpack hashes and zsets, intsets, quicklist nodes): their memory is the
    /// blob's size and their element count is in its header, so they are not walked (the
    /// walk is what finding the longest element costs). `memory`, `elements` and `encoding`
    /// are the same as [`Estimator::new`] gives; the elements inside such a blob are not
    /// checked (a header that does not add up still falls back to the full walk and its
    /// errors).
    pub fn without_largest() -> Estimator {
        Estimator { largest: false, ..Estimator::default() }
    }

    /// The figures of one key: its value's (those of the reader's walk when it walked the
    /// value in place, see [`Estimator::walked`]; a string's from its bytes) and the key's own
    /// memory. Errors are those of walking a corrupt value.
    #[inline(always)]
    pub fn key(&mut self, key: &[u8], raw: &RawValue<'_>) -> Result<KeyFigures> {
        let mut f = match self.walked() {
            Some(f) => f,
            None if raw.type_byte == id::STRING => string_value(raw)?,
            None => self.value(raw)?,
        };
        f.memory += key_overhead(key.len());
        Ok(f)
    }

    /// The value's part alone.
    pub fn value(&mut self, raw: &RawValue<'_>) -> Result<KeyFigures> {
        use id::*;
        let t = raw.type_byte;
        if t == STRING {
            return string_value(raw);
        }
        if !self.largest
            && let Some(f) = from_headers(raw)
        {
            return Ok(f);
        }
        if matches!(t, STREAM_LISTPACKS | STREAM_LISTPACKS_2 | STREAM_LISTPACKS_3 | STREAM_LISTPACKS_4) {
            self.light.reset(t);
            let valkey_26 = t == STREAM_LISTPACKS_4 && raw.format.flavor == crate::rdb::types::Flavor::Valkey;
            if self.largest || valkey_26 {
                self.walker.walk(raw, &mut self.light)?;
            } else {
                // The figures come from the node sizes, the metadata and the groups: the
                // entries inside the nodes are not read (nor checked).
                self.notes.clear();
                let mut c = Cursor::new(raw.bytes, raw.offset);
                crate::rdb::stream::walk_meta(&mut c, t, &mut self.light, &mut self.notes)?;
                if !c.is_empty() {
                    return Err(crate::error::Error::corrupt(
                        c.offset(),
                        format!("{} unexpected bytes after the value", c.remaining()),
                    ));
                }
            }
            let (nodes, lp_bytes) = stream_nodes(raw)?;
            let c = &self.light;
            return Ok(KeyFigures {
                memory: ROBJ + STREAM + nodes.memory() + lp_bytes + c.groups_mem,
                elements: c.stream_len,
                largest_element: 0,
                encoding: Encoding::Stream,
            });
        }
        let quicklist = if matches!(t, LIST_QUICKLIST | LIST_QUICKLIST_2) { self.quicklist_nodes(raw)? } else { 0 };
        // Elements inside blobs always come with their bytes; elements stored as RDB strings
        // may be LZF-compressed, and their length needs the decompressed bytes.
        let blob_elements = matches!(
            t,
            LIST_QUICKLIST
                | LIST_QUICKLIST_2
                | SET_INTSET
                | SET_LISTPACK
                | ZSET_LISTPACK
                | HASH_LISTPACK
                | HASH_ZIPMAP
                | HASH_ZIPLIST
                | LIST_ZIPLIST
                | HASH_LISTPACK_EX
                | HASH_LISTPACK_EX_PRE_GA
        );
        if blob_elements {
            self.light.reset(t);
            self.walker.walk(raw, &mut self.light)?;
            finish(&mut self.light, raw, quicklist, self.skiplist_node)
        } else {
            self.reset_full(t, &Cursor::new(raw.bytes, raw.offset));
            self.walker.walk(raw, &mut self.c)?;
            finish(&mut self.c, raw, quicklist, self.skiplist_node)
        }
    }

    /// The collector of values walked element by element, made ready for a value of type `t`
    /// that starts at `c`.
    #[inline]
    fn reset_full(&mut self, t: u8, c: &Cursor<'_>) {
        self.c.reset(t);
        if t == id::SET && c.clone().len("").is_ok_and(|n| n > SET_MAX_INTSET_ENTRIES) {
            // Too many members for an intset whatever they are: not looked at as integers.
            self.c.want_int = false;
        }
    }

    /// The figures of the value the reader's last key record walked in place (its value part,
    /// as [`Estimator::value`] gives them); `None` when it did not walk it.
    #[inline]
    pub fn walked(&mut self) -> Option<KeyFigures> {
        self.walked.take()
    }

    /// Quicklist nodes as loaded: each node keeps its listpack (or PLAIN element) allocation
    /// of the size in the file; ziplist nodes (RDB 7-9) are converted to listpacks first.
    fn quicklist_nodes(&mut self, raw: &RawValue<'_>) -> Result<u64> {
        let mut c = Cursor::new(raw.bytes, raw.offset);
        let n = c.count("quicklist node count", 1)?;
        let mut mem = 0;
        for _ in 0..n {
            if raw.type_byte == id::LIST_QUICKLIST_2 {
                c.len("quicklist container")?;
                let s = c.str("quicklist node")?;
                mem += QUICKLIST_NODE + je_size(s.len() as u64);
            } else {
                let s = c.str("quicklist node")?;
                let blob = blob_of(s, c.offset(), &mut self.blob, "ziplist")?;
                let mut it = ZiplistIter::new(blob)?;
                let mut lp = LP_EMPTY;
                let mut any = false;
                while let Some(e) = it.next_elem()? {
                    lp += lp_entry(e);
                    any = true;
                }
                if any {
                    mem += QUICKLIST_NODE + je_size(lp);
                }
            }
        }
        Ok(mem)
    }
}

impl InPlace for Estimator {
    #[inline]
    fn walk_at(&mut self, c: &mut Cursor<'_>, t: u8, format: Format) -> bool {
        use id::*;
        self.walked = None;
        if t == STRING {
            // Measured as it is stepped over: its form (raw, integer, LZF) told apart once, not
            // once by the reader's skip and again by `key` (an unpredictable branch per key).
            let Some((f, used)) = string_at(&c.buf()[c.pos()..]) else { return false };
            c.seek(c.pos() + used);
            self.walked = Some(f);
            return true;
        }
        // The types `value` walks with `c` (elements stored as RDB strings), whatever `largest`.
        if !matches!(t, LIST | SET | ZSET | ZSET_2 | HASH) {
            return false;
        }
        let (start, offset) = (c.pos(), c.offset());
        self.reset_full(t, c);
        if self.walker.walk_at(c, t, format, &mut self.c).is_err() {
            return false;
        }
        let raw = RawValue { type_byte: t, format, bytes: c.since(start), offset };
        // `finish` reads nothing of these types' bytes: it cannot fail.
        self.walked = finish(&mut self.c, &raw, 0, self.skiplist_node).ok();
        self.walked.is_some()
    }

    fn missed(&mut self, _t: u8, _format: Format, _bytes: &[u8], _offset: u64) {}
}

/// The figures of a walked collection (not a string, not a stream).
fn finish<const B: bool>(
    c: &mut Collector<B>,
    raw: &RawValue<'_>,
    quicklist: u64,
    skiplist_node: f64,
) -> Result<KeyFigures> {
    use id::*;
    let n = c.n;
    let listpack_of_elems = ROBJ + je_size(LP_EMPTY + c.lp);
    let (memory, encoding) = match raw.type_byte {
        LIST_QUICKLIST_2 | LIST_QUICKLIST => (ROBJ + QUICKLIST + quicklist, Encoding::Quicklist),
        LIST | LIST_ZIPLIST => {
            c.close_node();
            (ROBJ + QUICKLIST + c.nodes_mem, Encoding::Quicklist)
        }
        SET_INTSET if n <= SET_MAX_INTSET_ENTRIES => (ROBJ + je_size(first_str_len(raw)?), Encoding::Intset),
        SET | SET_LISTPACK if n <= SET_MAX_INTSET_ENTRIES && c.all_int => {
            (ROBJ + je_size(INTSET_HEADER + c.int_width * n), Encoding::Intset)
        }
        SET | SET_LISTPACK | SET_INTSET => (dict_value(n, c.sds), Encoding::Hashtable),
        ZSET_LISTPACK if n <= ZSET_MAX_LISTPACK_ENTRIES => (ROBJ + je_size(first_str_len(raw)?), Encoding::Listpack),
        ZSET_ZIPLIST if n <= ZSET_MAX_LISTPACK_ENTRIES => (listpack_of_elems, Encoding::Listpack),
        ZSET | ZSET_2 if n <= ZSET_MAX_LISTPACK_ENTRIES && c.maxlen <= ZSET_MAX_LISTPACK_VALUE => {
            (listpack_of_elems, Encoding::Listpack)
        }
        ZSET | ZSET_2 | ZSET_LISTPACK | ZSET_ZIPLIST => {
            let m = ROBJ
                + ZSET_STRUCT
                + ZSKIPLIST
                + DICT
                + 8 * dict_slots(n)
                + ZSKIPLIST_HEADER
                + c.sds
                + DICT_ENTRY * n
                + (skiplist_node * n as f64).round() as u64;
            (m, Encoding::Skiplist)
        }
        // Redis 7.0.15 keeps a listpack hash from the file whatever its length (it does check
        // zset listpacks and intsets, converted above).
        HASH_LISTPACK => (ROBJ + je_size(first_str_len(raw)?), Encoding::Listpack),
        HASH_ZIPLIST | HASH_LISTPACK_EX | HASH_LISTPACK_EX_PRE_GA if n <= HASH_MAX_LISTPACK_ENTRIES => {
            (listpack_of_elems, Encoding::Listpack)
        }
        HASH_ZIPLIST | HASH_LISTPACK_EX | HASH_LISTPACK_EX_PRE_GA => (dict_value(n, c.sds), Encoding::Hashtable),
        HASH | HASH_ZIPMAP | HASH_22 | HASH_METADATA => {
            if n <= HASH_MAX_LISTPACK_ENTRIES && c.maxlen <= HASH_MAX_LISTPACK_VALUE {
                (listpack_of_elems, Encoding::Listpack)
            } else {
                (dict_value(n, c.sds), Encoding::Hashtable)
            }
        }
        // Module values: their serialized size.
        _ => {
            return Ok(KeyFigures { memory: c.sds, elements: 0, largest_element: 0, encoding: Encoding::Module });
        }
    };
    Ok(KeyFigures { memory, elements: n, largest_element: c.largest, encoding })
}

/// The first `N` bytes a blob decompresses to, when they can be had without decompressing it:
/// stored raw, or LZF whose opening literal run (every LZF stream starts with one, §3.3) holds
/// them. `None` otherwise (the caller then walks the value).
fn blob_head<const N: usize>(s: &RdbStr<'_>) -> Option<[u8; N]> {
    let head = match *s {
        RdbStr::Raw(b) => b.get(..N)?,
        RdbStr::Lzf { compressed, ulen, .. } => {
            let run = *compressed.first()? as usize + 1;
            if run > 32 || run < N || ulen < N {
                return None;
            }
            compressed.get(1..1 + N)?
        }
        RdbStr::Int(_) => return None,
    };
    head.try_into().ok()
}

/// Element count of a listpack of `len` bytes from its header; `None` when the header does not
/// say (a saturated count), does not match the length, or counts nothing.
fn listpack_count(s: &RdbStr<'_>) -> Option<u64> {
    let h = blob_head::<6>(s)?;
    let total = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let n = u16::from_le_bytes([h[4], h[5]]);
    (total == s.len() && n != 0 && n != crate::rdb::encodings::listpack::UNKNOWN_COUNT).then_some(n as u64)
}

/// The figures of a value kept in memory as the blob in the file, from lengths and headers
/// alone (no element is decoded). `None` for anything else, or when a header does not add up
/// (the full walk then measures the value and reports what is wrong with it).
fn from_headers(raw: &RawValue<'_>) -> Option<KeyFigures> {
    use id::*;
    let mut c = Cursor::new(raw.bytes, raw.offset);
    let fig = |memory, elements, encoding| Some(KeyFigures { memory, elements, largest_element: 0, encoding });
    match raw.type_byte {
        SET_INTSET => {
            let s = c.str("").ok()?;
            let h = blob_head::<8>(&s)?;
            let width = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as u64;
            let n = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as u64;
            let len = s.len() as u64;
            if !matches!(width, 2 | 4 | 8) || n == 0 || INTSET_HEADER + n * width != len || n > SET_MAX_INTSET_ENTRIES {
                return None;
            }
            fig(ROBJ + je_size(len), n, Encoding::Intset)
        }
        ZSET_LISTPACK | HASH_LISTPACK => {
            let s = c.str("").ok()?;
            let n = listpack_count(&s)?;
            if n % 2 != 0 || (raw.type_byte == ZSET_LISTPACK && n / 2 > ZSET_MAX_LISTPACK_ENTRIES) {
                return None;
            }
            fig(ROBJ + je_size(s.len() as u64), n / 2, Encoding::Listpack)
        }
        LIST_QUICKLIST_2 => {
            let nodes = c.count("", 2).ok()?;
            let (mut mem, mut n) = (0, 0);
            for _ in 0..nodes {
                let container = c.len("").ok()?;
                let s = c.str("").ok()?;
                n += match container {
                    1 => 1,
                    2 => listpack_count(&s)?,
                    _ => return None,
                };
                mem += QUICKLIST_NODE + je_size(s.len() as u64);
            }
            if n == 0 {
                return None;
            }
            fig(ROBJ + QUICKLIST + mem, n, Encoding::Quicklist)
        }
        _ => None,
    }
}

/// A string value: an integer (the object alone), embstr (object and string in one
/// allocation) or raw (object plus sds).
#[inline(always)]
fn string_value(raw: &RawValue<'_>) -> Result<KeyFigures> {
    match string_figures(raw.bytes) {
        Some(f) => Ok(f),
        None => string_value_read(raw),
    }
}

/// `string_value` of a string in a less common form, read by the cursor.
#[cold]
#[inline(never)]
fn string_value_read(raw: &RawValue<'_>) -> Result<KeyFigures> {
    let s = Cursor::new(raw.bytes, raw.offset).str("string value")?;
    let int = match s {
        RdbStr::Int(_) => true,
        RdbStr::Raw(b) => is_canonical_i64(b),
        RdbStr::Lzf { .. } => false,
    };
    Ok(string_of(s.len() as u64, int))
}

/// The figures of a string value given as its bytes in the file (`bytes`: exactly the value)
/// when it is in one of the common forms (§3.2): raw with a 6- or 14-bit length, an 8/16/32-bit
/// integer, LZF with 6- or 14-bit lengths. `None`
/// for any other form, or one that does not add up (`Estimator::value` reads those, and words
/// what is wrong). Inlined into a caller that measures strings itself: no `Result` through
/// memory.
#[inline(always)]
pub fn string_figures(bytes: &[u8]) -> Option<KeyFigures> {
    string_at(bytes).map(|(f, _)| f)
}

/// `string_figures` of the string value at the start of `bytes` (which may go on past it), with
/// the bytes it takes.
#[inline(always)]
fn string_at(bytes: &[u8]) -> Option<(KeyFigures, usize)> {
    let (len, int, used) = match *bytes {
        [x, ref rest @ ..] if x < 0x40 => {
            let b = rest.get(..x as usize)?;
            // Redis loads a canonical decimal integer string as an integer.
            (x as u64, is_canonical_i64(b), 1 + b.len())
        }
        [x, y, ref rest @ ..] if x < 0x80 => {
            let n = (x as usize & 0x3f) << 8 | y as usize;
            let b = rest.get(..n)?;
            (n as u64, is_canonical_i64(b), 2 + n)
        }
        [0xC0, v, ..] => (itoa_len(v as i8 as i64) as u64, true, 2),
        [0xC1, v0, v1, ..] => (itoa_len(i16::from_le_bytes([v0, v1]) as i64) as u64, true, 3),
        [0xC2, v0, v1, v2, v3, ..] => (itoa_len(i32::from_le_bytes([v0, v1, v2, v3]) as i64) as u64, true, 5),
        [0xC3, ..] => {
            let mut c = Cursor::new(bytes, 0);
            let (_, ulen, _) = c.lzf_parts()?;
            (ulen as u64, false, c.pos())
        }
        _ => return None,
    };
    Some((string_of(len, int), used))
}

/// Memory and encoding of a string (not an integer) of `len` bytes.
const fn long_string(len: u64) -> (u64, Encoding) {
    if len <= EMBSTR_MAX {
        (je_size(ROBJ + 3 + len + 1), Encoding::Embstr)
    } else {
        (ROBJ + sds_alloc_of(len), Encoding::Raw)
    }
}

/// `long_string` of the lengths most strings have, looked up (no branch on embstr or raw, no
/// size class computed per key).
static SHORT_STRINGS: [(u16, Encoding); 256] = {
    let mut t = [(0, Encoding::Embstr); 256];
    let mut i = 0;
    while i < t.len() {
        let (memory, e) = long_string(i as u64);
        t[i] = (memory as u16, e);
        i += 1;
    }
    t
};

/// A string of `len` bytes, `int` when Redis would encode it as an integer.
#[inline(always)]
fn string_of(len: u64, int: bool) -> KeyFigures {
    let (memory, encoding) = match (int, SHORT_STRINGS.get(len as usize)) {
        (true, _) => (ROBJ, Encoding::Int),
        (false, Some(&(memory, e))) => (memory as u64, e),
        (false, None) => long_string(len),
    };
    KeyFigures { memory, elements: 1, largest_element: len, encoding }
}

/// The stream's node radix tree and the allocations of its listpacks, from the node list at the
/// start of the value.
fn stream_nodes(raw: &RawValue<'_>) -> Result<(RaxCounter, u64)> {
    let mut c = Cursor::new(raw.bytes, raw.offset);
    let n = c.count("stream listpack count", 2)?;
    let mut rax = RaxCounter::default();
    let mut bytes = 0;
    for _ in 0..n {
        let k = c.str("stream node key")?;
        if let RdbStr::Raw(k) = k
            && let Ok(k) = <[u8; 16]>::try_from(k)
        {
            rax.add(k);
        }
        bytes += je_size(c.str("stream listpack")?.len() as u64);
    }
    Ok((rax, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::types::{Flavor, Format};

    /// A listpack of one-letter string entries.
    fn listpack(elems: &[u8]) -> Vec<u8> {
        let total = 6 + 3 * elems.len() + 1;
        let mut lp = (total as u32).to_le_bytes().to_vec();
        lp.extend_from_slice(&(elems.len() as u16).to_le_bytes());
        for &e in elems {
            lp.extend_from_slice(&[0x81, e, 2]);
        }
        lp.push(0xFF);
        lp
    }

    /// `blob` as an RDB string: raw, or LZF made of literal runs of the given lengths.
    fn rdb_string(blob: &[u8], runs: Option<&[usize]>) -> Vec<u8> {
        let Some(runs) = runs else {
            let mut v = vec![blob.len() as u8];
            v.extend_from_slice(blob);
            return v;
        };
        let mut z = Vec::new();
        let mut at = 0;
        for &r in runs {
            z.push((r - 1) as u8);
            z.extend_from_slice(&blob[at..at + r]);
            at += r;
        }
        assert_eq!(at, blob.len());
        let mut v = vec![0xC3, z.len() as u8, blob.len() as u8];
        v.extend_from_slice(&z);
        v
    }

    fn both(type_byte: u8, bytes: &[u8]) -> (KeyFigures, KeyFigures) {
        let raw = RawValue { type_byte, format: Format { flavor: Flavor::Redis, version: 10 }, bytes, offset: 0 };
        (Estimator::new().value(&raw).unwrap(), Estimator::without_largest().value(&raw).unwrap())
    }

    /// A value of `n` elements of type `t` (list, set, zset or hash), elements from `elem`.
    fn collection(t: u8, n: usize, elem: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
        use crate::rdb::encode::{write_len, write_string};
        let mut v = Vec::new();
        write_len(&mut v, n as u64);
        for i in 0..n {
            write_string(&mut v, &elem(i), true);
            match t {
                id::ZSET_2 => v.extend_from_slice(&(i as f64 * 1.5).to_le_bytes()),
                id::HASH => write_string(&mut v, &elem(i + 7), true),
                _ => {}
            }
        }
        v
    }

    #[test]
    fn walked_in_place_as_by_value() {
        let format = Format { flavor: Flavor::Redis, version: 10 };
        let word = |i: usize| format!("member-{i}-{}", "x".repeat(i % 50)).into_bytes();
        let number = |i: usize| format!("{}", i as i64 * 7_000_000_011 - 3).into_bytes();
        let mut cases = Vec::new();
        for t in [id::LIST, id::SET, id::ZSET_2, id::HASH] {
            for n in [1, 5, 130, 600] {
                cases.push((t, collection(t, n, word)));
                cases.push((t, collection(t, n, number)));
            }
        }
        // A set of 513 integers and one of 512: a hashtable, an intset.
        cases.push((id::SET, collection(id::SET, 513, number)));
        cases.push((id::SET, collection(id::SET, 512, number)));
        // An LZF member whose data is damaged: both ways refuse it.
        let mut bad = collection(id::SET, 3, |_| vec![b'a'; 60]);
        assert_eq!(bad[1], 0xC3);
        let last = bad.len() - 1;
        bad[last] = 0xFF;
        let raw = RawValue { type_byte: id::SET, format, bytes: &bad, offset: 0 };
        assert!(Estimator::new().value(&raw).is_err());
        cases.push((id::SET, bad));
        for (t, bytes) in cases {
            let raw = RawValue { type_byte: t, format, bytes: &bytes, offset: 0 };
            for largest in [true, false] {
                let mut est = if largest { Estimator::new() } else { Estimator::without_largest() };
                let by_value = est.value(&raw);
                // In place the walk finds the value's end itself: bytes follow it.
                let mut file = bytes.clone();
                file.extend_from_slice(&[0xFE, 0x00, 0xFF]);
                let mut c = Cursor::new(&file, 0);
                let walked = est.walk_at(&mut c, t, format);
                assert_eq!(walked, by_value.is_ok(), "type {t}");
                assert_eq!(est.walked(), by_value.ok(), "type {t}");
                if walked {
                    assert_eq!(c.pos(), bytes.len());
                }
                assert_eq!(est.walked(), None, "taken once");
            }
        }
        // A string cut short is left to the reader's skip (which words the error).
        let mut est = Estimator::new();
        assert!(!est.walk_at(&mut Cursor::new(&[0x02, b'a'], 0), id::STRING, format));
        assert_eq!(est.walked(), None);
    }

    #[test]
    fn strings_as_the_cursor_reads_them() {
        use crate::rdb::encode::write_string;
        let mut texts: Vec<Vec<u8>> = vec![b"".to_vec(), b"0".to_vec(), b"-0".to_vec(), b"007".to_vec()];
        for v in [
            1i64,
            -1,
            127,
            -128,
            128,
            32767,
            -32768,
            65536,
            i32::MAX as i64,
            i32::MIN as i64,
            1 << 40,
            i64::MAX,
            i64::MIN,
        ] {
            texts.push(v.to_string().into_bytes());
        }
        texts.push(b"12345678901234567890".to_vec()); // 20 digits: past i64
        for n in [20, 21, 44, 45, 63, 64, 500, 20000] {
            texts.push(vec![b'a'; n]);
            texts.push((0..n).map(|i| (i * 7 % 251) as u8).collect());
        }
        for t in &texts {
            for compress in [false, true] {
                let mut bytes = Vec::new();
                write_string(&mut bytes, t, compress);
                let raw = RawValue {
                    type_byte: id::STRING,
                    format: Format { flavor: Flavor::Redis, version: 10 },
                    bytes: &bytes,
                    offset: 0,
                };
                // `string_value`'s reading by the cursor, against the inline one.
                let s = Cursor::new(&bytes, 0).str("").unwrap();
                let int = match s {
                    RdbStr::Int(_) => true,
                    RdbStr::Raw(b) => is_canonical_i64(b),
                    RdbStr::Lzf { .. } => false,
                };
                let f = string_of(s.len() as u64, int);
                assert_eq!(Estimator::new().value(&raw).unwrap(), f, "{t:?}");
                if let Some(g) = string_figures(&bytes) {
                    assert_eq!(g, f, "{t:?}");
                }
                // In place, bytes after it: the same figures and its end, in the forms
                // `string_figures` reads (the others are left to the reader's skip).
                let mut file = bytes.clone();
                file.extend_from_slice(&[0x00, 0x01, b'k', 0xFF]);
                let mut est = Estimator::without_largest();
                let mut c = Cursor::new(&file, 0);
                let walked = est.walk_at(&mut c, id::STRING, raw.format);
                assert_eq!(walked, string_figures(&bytes).is_some(), "{} bytes", t.len());
                if walked {
                    assert_eq!((est.walked(), c.pos()), (Some(f), bytes.len()), "{} bytes", t.len());
                }
                let want = match (int, t.len() as u64) {
                    (true, _) => Encoding::Int,
                    (false, ..=EMBSTR_MAX) => Encoding::Embstr,
                    (false, _) => Encoding::Raw,
                };
                assert_eq!(f.encoding, want, "{t:?}");
                assert_eq!(f.largest_element, t.len() as u64);
            }
        }
    }

    #[test]
    fn headers_give_the_walked_figures() {
        let lp = listpack(b"abcd");
        // Stored raw, LZF with the header in the opening literal run, LZF without it (walked).
        for (runs, from_header) in [(None, true), (Some(&[19][..]), true), (Some(&[3, 16][..]), false)] {
            let s = rdb_string(&lp, runs);
            for t in [id::HASH_LISTPACK, id::ZSET_LISTPACK] {
                let (full, header) = both(t, &s);
                assert_eq!(
                    (full.memory, full.elements, full.encoding),
                    (header.memory, header.elements, header.encoding)
                );
                assert_eq!(full.elements, 2);
                assert_eq!(full.largest_element, 1);
                assert_eq!(header.largest_element, if from_header { 0 } else { 1 }, "{runs:?}");
            }
            // A quicklist of two packed nodes and one plain node.
            let mut q = vec![3u8];
            for _ in 0..2 {
                q.push(2);
                q.extend_from_slice(&s);
            }
            q.extend_from_slice(&[1, 3, b'x', b'y', b'z']);
            let (full, header) = both(id::LIST_QUICKLIST_2, &q);
            assert_eq!((full.memory, full.elements), (header.memory, header.elements));
            assert_eq!(full.elements, 9);
            assert_eq!(header.largest_element, if from_header { 0 } else { 3 });
        }
        // An intset of 3 members, 2 bytes each.
        let mut is = 2u32.to_le_bytes().to_vec();
        is.extend_from_slice(&3u32.to_le_bytes());
        for v in [1i16, 5, 300] {
            is.extend_from_slice(&v.to_le_bytes());
        }
        let (full, header) = both(id::SET_INTSET, &rdb_string(&is, None));
        assert_eq!((full.memory, full.elements, full.encoding), (header.memory, header.elements, Encoding::Intset));
        assert_eq!((full.largest_element, header.largest_element), (3, 0));
    }

    #[test]
    fn headers_that_do_not_add_up_are_walked() {
        // The header's total disagrees with the string's length: the walk reports it.
        let mut lp = listpack(b"ab");
        lp[0] += 1;
        let raw = RawValue {
            type_byte: id::HASH_LISTPACK,
            format: Format { flavor: Flavor::Redis, version: 10 },
            bytes: &rdb_string(&lp, None),
            offset: 0,
        };
        assert!(Estimator::without_largest().value(&raw).is_err());
        // A count of 0: the walk calls the value empty.
        let mut lp = listpack(b"");
        lp[4] = 0;
        let bytes = rdb_string(&lp, None);
        let raw = RawValue { bytes: &bytes, ..raw };
        assert!(Estimator::without_largest().value(&raw).is_err());
    }
}
