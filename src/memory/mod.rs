//! Per-key memory, estimated as Redis 7.0 accounts it in `MEMORY USAGE key SAMPLES 0`: the value
//! as the loader would build it in memory (its encoding chosen by the default thresholds), plus
//! the key's sds string and its entry in the keyspace dict. Allocation sizes are rounded to
//! jemalloc's size classes, as `zmalloc_size` reports them on a 64-bit build.
//!
//! What is not in the figure (as in `MEMORY USAGE`): the entry in the expires dict of a key with
//! a TTL (24 bytes), the keyspace dict's bucket array, allocator fragmentation. Module values
//! count their serialized size (a module reports its own figure, which a file cannot tell).
//!
//! `estimate.rs` holds the per-encoding formulas, `encoding.rs` the encodings' names; this file
//! the building blocks: size classes, sds headers, listpack entry sizes, dict bucket counts, radix
//! tree node counts.

mod encoding;
mod estimate;

pub use encoding::Encoding;
pub use estimate::{Estimator, KeyFigures, key_overhead, string_figures};

use crate::rdb::cursor::Elem;
use crate::rdb::decimal::parse_canonical_i64;

/// `sizeof(robj)`.
pub const ROBJ: u64 = 16;
/// `sizeof(dictEntry)`: key, value, next.
pub const DICT_ENTRY: u64 = 24;
/// `sizeof(dict)` in Redis 7.0 (type, two tables, two used counts, rehash index, pause counter,
/// two size exponents).
pub const DICT: u64 = 56;
/// `sizeof(quicklist)` in Redis 7.0.
pub const QUICKLIST: u64 = 40;
/// `sizeof(quicklistNode)` in Redis 7.0.
pub const QUICKLIST_NODE: u64 = 40;
/// `sizeof(zset)`: dict and skiplist pointers.
pub const ZSET_STRUCT: u64 = 16;
/// `sizeof(zskiplist)`: header and tail pointers, length, level.
pub const ZSKIPLIST: u64 = 32;
/// The skiplist header node: 32 levels of 16 bytes after 24 bytes of node, as allocated.
pub const ZSKIPLIST_HEADER: u64 = 640;
/// `sizeof(stream)` in Redis 7.0.
pub const STREAM: u64 = 80;
/// `sizeof(streamCG)` (a consumer group) in Redis 7.0.
pub const STREAM_CG: u64 = 40;
/// `sizeof(streamNACK)` (a pending entry) in Redis 7.0.
pub const STREAM_NACK: u64 = 24;
/// `sizeof(streamConsumer)` in Redis 7.0.
pub const STREAM_CONSUMER: u64 = 24;
/// `sizeof(intset)`: encoding and length.
pub const INTSET_HEADER: u64 = 8;
/// Listpack header (total bytes, element count) plus the terminator.
pub const LP_EMPTY: u64 = 7;

/// Redis 7.0 default `hash-max-listpack-entries`: more fields make a hashtable on load.
pub const HASH_MAX_LISTPACK_ENTRIES: u64 = 128;
/// Redis 7.0 default `hash-max-listpack-value`: a longer field or value makes a hashtable.
pub const HASH_MAX_LISTPACK_VALUE: u64 = 64;
/// Redis 7.0 default `zset-max-listpack-entries`: more members make a skiplist on load.
pub const ZSET_MAX_LISTPACK_ENTRIES: u64 = 128;
/// Redis 7.0 default `zset-max-listpack-value`: a longer member makes a skiplist.
pub const ZSET_MAX_LISTPACK_VALUE: u64 = 64;
/// Redis 7.0 default `set-max-intset-entries`: more integer members make a hashtable set.
pub const SET_MAX_INTSET_ENTRIES: u64 = 512;
/// `list-max-listpack-size -2`: a quicklist node's listpack holds up to 8 KiB.
pub const LIST_NODE_BYTES: u64 = 8192;
/// Strings up to this length are stored with their object in one allocation (embstr).
pub const EMBSTR_MAX: u64 = 44;

/// The usable size jemalloc gives a request of `n` bytes: its size class. Classes are 8, then
/// multiples of 16 up to 128, then four classes per doubling (160, 192, 224, 256, 320, ...).
#[inline]
pub const fn je_size(n: u64) -> u64 {
    if n <= 8 {
        return 8;
    }
    if n <= 128 {
        return (n + 15) & !15;
    }
    let lg = 63 - (n - 1).leading_zeros();
    let spacing = 1u64 << (lg - 2);
    (n + spacing - 1) & !(spacing - 1)
}

/// Header bytes of an sds string of `len` bytes as `sdsnewlen` picks its type.
#[inline]
pub const fn sds_header(len: u64) -> u64 {
    match len {
        0 => 3,
        1..32 => 1,
        32..256 => 3,
        256..65536 => 5,
        65536..=0xffff_ffff => 9,
        _ => 17,
    }
}

/// `sdsZmallocSize` of an sds string of `len` bytes made to measure (as the loader makes them).
#[inline]
pub fn sds_alloc(len: u64) -> u64 {
    match SDS_SMALL.get(len as usize) {
        Some(&a) => a as u64,
        None => sds_alloc_of(len),
    }
}

pub(crate) const fn sds_alloc_of(len: u64) -> u64 {
    je_size(sds_header(len) + len + 1)
}

/// `sds_alloc` of the lengths most elements and keys have, looked up (no branch on the sds
/// type or the size class per element).
static SDS_SMALL: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < t.len() {
        t[i] = sds_alloc_of(i as u64) as u16;
        i += 1;
    }
    t
};

/// Bytes of a listpack back-length field for an entry of `l` bytes (encoding + data).
#[inline]
fn lp_backlen(l: u64) -> u64 {
    match l {
        0..=127 => 1,
        128..16383 => 2,
        16383..2097151 => 3,
        2097151..268435455 => 4,
        _ => 5,
    }
}

/// Bytes of a listpack entry holding the integer `v`.
#[inline]
pub fn lp_int_entry(v: i64) -> u64 {
    let body = match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    };
    body + 1
}

/// Bytes of a listpack entry holding `b` (an integer when it is one in canonical form, as
/// `lpAppend` decides).
#[inline]
pub fn lp_bytes_entry(b: &[u8]) -> u64 {
    if b.len() <= 20
        && let Some(v) = parse_canonical_i64(b)
    {
        return lp_int_entry(v);
    }
    let len = b.len() as u64;
    let body = len
        + match len {
            0..64 => 1,
            64..4096 => 2,
            _ => 5,
        };
    body + lp_backlen(body)
}

/// Bytes of a listpack entry for one element.
#[inline]
pub fn lp_entry(e: Elem<'_>) -> u64 {
    match e {
        Elem::Int(v) => lp_int_entry(v),
        Elem::Bytes(b) => lp_bytes_entry(b),
    }
}

/// Bytes of the listpack entry of a zset score, written as Redis 7.0's `d2string` writes it
/// (an integer when the double is one, else `%.17g`).
pub fn lp_score_entry(score: f64) -> u64 {
    if score == 0.0 {
        // "0", or "-0" (a 2-byte string) for negative zero.
        return if score.is_sign_negative() { 4 } else { 2 };
    }
    if score.is_infinite() {
        return if score < 0.0 { 6 } else { 5 };
    }
    let (min, max) = (-4503599627370495.0, 4503599627370496.0);
    if score > min && score < max && score == (score as i64) as f64 {
        return lp_int_entry(score as i64);
    }
    let text = format_g17(score);
    lp_bytes_entry(text.as_bytes())
}

/// `printf("%.17g", v)` for a finite, non-zero `v`.
pub fn format_g17(v: f64) -> String {
    let sci = format!("{v:.16e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..17).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// Buckets of a dict presized for `n` entries (`dictExpand(n)`: the next power of two, at
/// least 4), which is how the loader and the encoding conversions size them.
#[inline]
pub fn dict_slots(n: u64) -> u64 {
    n.max(4).next_power_of_two()
}

/// Node count of a Redis radix tree holding 16-byte keys (stream IDs) inserted in ascending
/// order: the root, every branching point, every child of a branching point and every key.
/// Constant memory: only the previous key and which depths of its path are nodes.
#[derive(Debug, Clone)]
pub struct RaxCounter {
    prev: [u8; 16],
    is_node: [bool; 17],
    /// Distinct keys added.
    pub keys: u64,
    /// Nodes of the tree so far, the root included.
    pub nodes: u64,
}

impl Default for RaxCounter {
    fn default() -> Self {
        RaxCounter { prev: [0; 16], is_node: [false; 17], keys: 0, nodes: 1 }
    }
}

impl RaxCounter {
    /// Adds the next key, which must not be lower than the previous one (a repeat is ignored).
    pub fn add(&mut self, key: [u8; 16]) {
        if self.keys == 0 {
            // The root becomes a compressed node of all 16 bytes leading to the key.
            self.nodes += 1;
            self.is_node = [false; 17];
            self.is_node[0] = true;
            self.is_node[16] = true;
        } else {
            let l = self.prev.iter().zip(&key).take_while(|(a, b)| a == b).count();
            if l == 16 {
                return; // the same key again: a rax keeps one
            }
            // The depth where the paths part becomes a node (a split), as does the old path's
            // next vertex; the new path adds its first vertex and, deeper, its leaf.
            if !self.is_node[l] {
                self.nodes += 1;
            }
            if !self.is_node[l + 1] {
                self.nodes += 1;
            }
            self.nodes += 1;
            if l + 1 < 16 {
                self.nodes += 1;
            }
            self.is_node[l] = true;
            self.is_node[l + 1] = true;
            for d in l + 2..16 {
                self.is_node[d] = false;
            }
            self.is_node[16] = true;
        }
        self.prev = key;
        self.keys += 1;
    }

    /// `streamRadixTreeMemoryUsage`: 16 bytes a key, a 4-byte header and 30 words a node.
    pub fn memory(&self) -> u64 {
        self.keys * 16 + self.nodes * (4 + 8 * 30)
    }
}

/// A stream ID as a radix tree key: milliseconds and sequence, big-endian.
pub fn id_key(ms: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&ms.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Expected allocation of a skiplist node: 24 bytes plus 16 a level, the level drawn with
/// p = 1/4 up to 32, each size rounded to its class. `MEMORY USAGE` adds the real nodes; over
/// many members the mean is what they come to.
pub fn skiplist_node_mean() -> f64 {
    let mut mean = 0.0;
    let mut p = 0.75;
    for level in 1..=32u64 {
        let pl = if level == 32 { p / 0.75 } else { p };
        mean += pl * je_size(24 + 16 * level) as f64;
        p *= 0.25;
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes() {
        let cases = [
            (0, 8),
            (1, 8),
            (8, 8),
            (9, 16),
            (17, 32),
            (33, 48),
            (100, 112),
            (128, 128),
            (129, 160),
            (200, 224),
            (256, 256),
            (257, 320),
            (500, 512),
            (513, 640),
            (1025, 1280),
            (4097, 5120),
            (14337, 16384),
            (20000, 20480),
            (1 << 20, 1 << 20),
            ((1 << 20) + 1, 1310720),
        ];
        for (n, want) in cases {
            assert_eq!(je_size(n), want, "je_size({n})");
        }
    }

    #[test]
    fn sds_sizes() {
        assert_eq!(sds_alloc(0), 8); // type 8 header, 3 + 0 + 1
        assert_eq!(sds_alloc(5), 8); // 1 + 5 + 1 = 7
        assert_eq!(sds_alloc(6), 8);
        assert_eq!(sds_alloc(7), 16);
        assert_eq!(sds_alloc(31), 48); // 33
        assert_eq!(sds_alloc(32), 48); // 36
        assert_eq!(sds_alloc(300), 320); // 306
        // The looked-up lengths agree with the formula, on both sides of the table's end.
        for len in 0..600 {
            assert_eq!(sds_alloc(len), je_size(sds_header(len) + len + 1), "{len}");
        }
    }

    #[test]
    fn listpack_entries() {
        assert_eq!(lp_bytes_entry(b"12"), 2);
        assert_eq!(lp_bytes_entry(b"-1"), 3);
        assert_eq!(lp_bytes_entry(b"012"), 5); // a string: 1 + 3 + 1
        assert_eq!(lp_bytes_entry(b"70000"), 5);
        assert_eq!(lp_bytes_entry(b"9999999999"), 10);
        assert_eq!(lp_bytes_entry(&[b'a'; 63]), 65);
        assert_eq!(lp_bytes_entry(&[b'a'; 64]), 66 + 1); // 66 bytes need a 1-byte backlen
        assert_eq!(lp_bytes_entry(&[b'a'; 126]), 130); // 128 -> 2-byte backlen
        assert_eq!(lp_bytes_entry(&[b'a'; 4096]), 4101 + 2);
    }

    #[test]
    fn g17() {
        assert_eq!(format_g17(1.5), "1.5");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(-2.25), "-2.25");
        assert_eq!(format_g17(1e-300), "1e-300");
        assert_eq!(format_g17(5e-324), "4.9406564584124654e-324");
        assert_eq!(format_g17(1.2345678901234568e17), "1.2345678901234568e+17");
        assert_eq!(format_g17(123.456), "123.456");
        assert_eq!(format_g17(0.0001), "0.0001");
        assert_eq!(format_g17(0.00001), "1.0000000000000001e-05");
        assert_eq!(lp_score_entry(3.0), 2);
        assert_eq!(lp_score_entry(-0.0), 4);
    }

    #[test]
    fn rax_nodes() {
        let mut r = RaxCounter::default();
        r.add(id_key(1, 0));
        assert_eq!(r.nodes, 2);
        // Differs in the last byte: the parent of both leaves becomes a split node, the old
        // leaf is already a node, the new leaf is one.
        r.add(id_key(1, 1));
        assert_eq!(r.nodes, 4);
        r.add(id_key(1, 2));
        assert_eq!(r.nodes, 5);
        // Differs at depth 7 (the last byte of ms): a new split at depth 7, its old child
        // (depth 8, start of the old chain) and the new child and leaf.
        r.add(id_key(2, 0));
        assert_eq!(r.nodes, 9);
        assert_eq!(r.keys, 4);
    }
}
