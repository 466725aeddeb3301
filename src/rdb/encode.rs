//! Encoders for the RDB primitives and inner blobs, written from the writer rules in docs/format.md
//! (§3 primitives, §6 inner encodings, §7 module opcodes, §9 DUMP). They produce what a current
//! Redis writes (canonical integer forms, canonical listpack back-lengths, saturated counts), so an
//! RDB writer can build on them, and the tests use them to round-trip every encoding the reader
//! handles.
//!
//! Over 700 lines on purpose: one encoder per on-disk form, each the mirror of a reader in
//! `cursor.rs`, `encodings/` or `stream.rs`; they share the canonical-form helpers at the top.
//!
//! Everything appends to a caller-owned `Vec<u8>` or returns a fresh blob; nothing here fails.

use crate::crc::crc64;

/// Canonical decimal i64 text (Redis's `string2ll` rules): the one test shared by the reader
/// and the encoders, so "stored as an integer" means the same on both sides.
pub use crate::rdb::decimal::parse_canonical_i64 as canonical_i64;

/// Appends an RDB length field (§3.1): `< 64` in 1 byte, `< 16384` in 2, `≤ u32::MAX` in 5
/// (`0x80` + u32be), else 9 (`0x81` + u64be).
pub fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends an RDB string with Redis's policy (§3.2): a canonical integer of at most 11 bytes that
/// fits i32 goes in the smallest INT8/16/32 form; otherwise, with `compress` and more than 20
/// bytes, the LZF form when the compressed bytes fit in `len − 4` (what `rdbcompression yes`
/// does); otherwise the raw form.
pub fn write_string(out: &mut Vec<u8>, bytes: &[u8], compress: bool) {
    let int = (bytes.len() <= 11).then(|| canonical_i64(bytes)).flatten().and_then(|v| i32::try_from(v).ok());
    if let Some(v) = int {
        if let Ok(v) = i8::try_from(v) {
            out.extend_from_slice(&[0xC0, v as u8]);
        } else if let Ok(v) = i16::try_from(v) {
            out.push(0xC1);
            out.extend_from_slice(&v.to_le_bytes());
        } else {
            out.push(0xC2);
            out.extend_from_slice(&v.to_le_bytes());
        }
        return;
    }
    // Redis compresses into a `len − 4` byte buffer: the result is used when it fits.
    let lzf =
        (compress && bytes.len() > 20).then(|| lzf_compress(bytes)).flatten().filter(|c| c.len() <= bytes.len() - 4);
    match lzf {
        Some(c) => write_lzf_parts(out, &c, bytes.len()),
        None => write_raw_string(out, bytes),
    }
}

/// Appends the raw string form: `LEN n` and the bytes, whatever they hold.
pub fn write_raw_string(out: &mut Vec<u8>, bytes: &[u8]) {
    write_len(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends the LZF string form (`0xC3`, `LEN clen`, `LEN ulen`, data) even when it does not save
/// space; readers accept that, Redis never writes it. An empty string cannot be LZF-encoded
/// (`clen` 0 is invalid) and is written raw.
pub fn write_lzf_string(out: &mut Vec<u8>, bytes: &[u8]) {
    match lzf_compress(bytes) {
        Some(c) => write_lzf_parts(out, &c, bytes.len()),
        None => write_raw_string(out, bytes),
    }
}

fn write_lzf_parts(out: &mut Vec<u8>, compressed: &[u8], ulen: usize) {
    out.push(0xC3);
    write_len(out, compressed.len() as u64);
    write_len(out, ulen as u64);
    out.extend_from_slice(compressed);
}

/// LZF-compresses `bytes` (liblzf's token format, §3.3); `None` for empty input.
pub fn lzf_compress(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.is_empty() {
        return None;
    }
    let mut buf = vec![0u8; lzf_rust::max_compressed_size(bytes.len())];
    let n = lzf_rust::compress(bytes, &mut buf).ok()?;
    buf.truncate(n);
    (n > 0).then_some(buf)
}

/// A double as text the way Redis 7.x puts a zset score into a listpack (§3.4, §6.2): `inf` /
/// `-inf` / `nan`; integral values within ±2^62 (Redis's `double2ll` range) as integers, so
/// `-0.0` becomes `"0"` and a listpack stores them as integer entries; everything else in Rust's
/// shortest round-trip form (exponent notation for very large or small magnitudes, e.g. `1e300`).
pub fn double_text(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else if v == v.trunc() && v.abs() <= (1u64 << 62) as f64 {
        (v as i64).to_string()
    } else {
        format!("{v:?}")
    }
}

/// Appends an ASCII double (type-3 zset score, §3.4): one length byte, 253 = NaN, 254 = +inf,
/// 255 = −inf with nothing after; otherwise the length and [`double_text`].
pub fn ascii_double(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.push(253);
    } else if v == f64::INFINITY {
        out.push(254);
    } else if v == f64::NEG_INFINITY {
        out.push(255);
    } else {
        let t = double_text(v);
        out.push(t.len() as u8);
        out.extend_from_slice(t.as_bytes());
    }
}

/// Builds a listpack (§6.2) the way Redis appends to one: canonical i64 text becomes the smallest
/// integer entry, other strings use the 6-bit, 12-bit or 32-bit length form, every entry gets its
/// canonical back-length.
#[derive(Debug, Clone, Default)]
pub struct ListpackBuilder {
    entries: Vec<u8>,
    count: usize,
}

/// The listpack header: `total_bytes u32le`, `num_elements u16le`.
pub const LISTPACK_HEADER: usize = 6;

/// Appends the canonical listpack back-length for an entry of `n` bytes (7-bit groups, most
/// significant first, continuation bit on every byte but the first).
pub fn write_listpack_backlen(out: &mut Vec<u8>, n: usize) {
    let groups = if n <= 127 {
        1
    } else if n < 16383 {
        2
    } else if n < 2097151 {
        3
    } else if n < 268435455 {
        4
    } else {
        5
    };
    for i in (0..groups).rev() {
        let g = ((n >> (7 * i)) & 127) as u8;
        out.push(if i == groups - 1 { g } else { g | 128 });
    }
}

impl ListpackBuilder {
    /// An empty listpack.
    pub fn new() -> ListpackBuilder {
        ListpackBuilder::default()
    }

    /// Elements pushed so far (not saturated).
    pub fn len(&self) -> usize {
        self.count
    }
    /// True before the first push.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn entry(&mut self, enc_data: &[u8]) -> &mut Self {
        self.entries.extend_from_slice(enc_data);
        write_listpack_backlen(&mut self.entries, enc_data.len());
        self.count += 1;
        self
    }

    /// Appends an element: the integer form for canonical i64 text, else a string entry.
    pub fn push(&mut self, b: &[u8]) -> &mut Self {
        match canonical_i64(b) {
            Some(v) => self.push_int(v),
            None => self.push_string_form(b),
        }
    }

    /// [`push`](Self::push) for text.
    pub fn push_str(&mut self, s: &str) -> &mut Self {
        self.push(s.as_bytes())
    }

    /// Appends an element that is always stored as a string entry, even if it looks like an
    /// integer (Redis never does that; useful for tests).
    pub fn push_string_form(&mut self, b: &[u8]) -> &mut Self {
        let n = b.len();
        let mut e = Vec::with_capacity(n + 5);
        if n < 64 {
            e.push(0x80 | n as u8);
        } else if n < 4096 {
            e.push(0xE0 | (n >> 8) as u8);
            e.push(n as u8);
        } else {
            e.push(0xF0);
            e.extend_from_slice(&(n as u32).to_le_bytes());
        }
        e.extend_from_slice(b);
        self.entry(&e)
    }

    /// Appends an integer in the smallest form: uint7, int13, int16, int24, int32, int64.
    pub fn push_int(&mut self, v: i64) -> &mut Self {
        if (0..=127).contains(&v) {
            self.entry(&[v as u8])
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u16) & 0x1FFF;
            self.entry(&[0xC0 | (u >> 8) as u8, u as u8])
        } else if let Ok(v) = i16::try_from(v) {
            let b = v.to_le_bytes();
            self.entry(&[0xF1, b[0], b[1]])
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            let b = (v as i32).to_le_bytes();
            self.entry(&[0xF2, b[0], b[1], b[2]])
        } else if let Ok(v) = i32::try_from(v) {
            let b = v.to_le_bytes();
            self.entry(&[0xF3, b[0], b[1], b[2], b[3]])
        } else {
            let mut e = [0u8; 9];
            e[0] = 0xF4;
            e[1..].copy_from_slice(&v.to_le_bytes());
            self.entry(&e)
        }
    }

    /// The listpack: header (`num_elements` saturated at 65535), entries, `0xFF`.
    pub fn finish(self) -> Vec<u8> {
        let total = LISTPACK_HEADER + self.entries.len() + 1;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(self.count.min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&self.entries);
        out.push(0xFF);
        out
    }
}

/// The ziplist header: `zlbytes u32le`, `zltail u32le`, `zllen u16le`.
pub const ZIPLIST_HEADER: usize = 10;

/// Builds a ziplist (§6.1) the way Redis 2.6–6.2 appended to one: canonical i64 text becomes an
/// integer entry (immediate 0..12, i8, i16, i24, i32, i64), each prevlen takes 1 byte below 254
/// and 5 bytes otherwise, `zltail` points at the last entry, `zllen` saturates at 65535.
#[derive(Debug, Clone, Default)]
pub struct ZiplistBuilder {
    entries: Vec<u8>,
    count: usize,
    prev_len: usize,
    last: usize,
}

impl ZiplistBuilder {
    /// An empty ziplist.
    pub fn new() -> ZiplistBuilder {
        ZiplistBuilder::default()
    }

    /// Entries pushed so far (not saturated).
    pub fn len(&self) -> usize {
        self.count
    }
    /// True before the first push.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn entry(&mut self, enc_data: &[u8]) -> &mut Self {
        let start = self.entries.len();
        if self.prev_len < 254 {
            self.entries.push(self.prev_len as u8);
        } else {
            self.entries.push(0xFE);
            self.entries.extend_from_slice(&(self.prev_len as u32).to_le_bytes());
        }
        self.entries.extend_from_slice(enc_data);
        self.last = ZIPLIST_HEADER + start;
        self.prev_len = self.entries.len() - start;
        self.count += 1;
        self
    }

    /// Appends an element: the integer form for canonical i64 text, else a string entry.
    pub fn push(&mut self, b: &[u8]) -> &mut Self {
        match canonical_i64(b) {
            Some(v) => self.push_int(v),
            None => self.push_string_form(b),
        }
    }

    /// [`push`](Self::push) for text.
    pub fn push_str(&mut self, s: &str) -> &mut Self {
        self.push(s.as_bytes())
    }

    /// Appends a string entry (6-bit, 14-bit big-endian or 32-bit big-endian length), even for
    /// integer-looking text.
    pub fn push_string_form(&mut self, b: &[u8]) -> &mut Self {
        let n = b.len();
        let mut e = Vec::with_capacity(n + 5);
        if n < 64 {
            e.push(n as u8);
        } else if n < 16384 {
            e.push(0x40 | (n >> 8) as u8);
            e.push(n as u8);
        } else {
            e.push(0x80);
            e.extend_from_slice(&(n as u32).to_be_bytes());
        }
        e.extend_from_slice(b);
        self.entry(&e)
    }

    /// Appends an integer in the smallest form.
    pub fn push_int(&mut self, v: i64) -> &mut Self {
        if (0..=12).contains(&v) {
            self.entry(&[0xF1 + v as u8])
        } else if let Ok(v) = i8::try_from(v) {
            self.entry(&[0xFE, v as u8])
        } else if let Ok(v) = i16::try_from(v) {
            let b = v.to_le_bytes();
            self.entry(&[0xC0, b[0], b[1]])
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            let b = (v as i32).to_le_bytes();
            self.entry(&[0xF0, b[0], b[1], b[2]])
        } else if let Ok(v) = i32::try_from(v) {
            let b = v.to_le_bytes();
            self.entry(&[0xD0, b[0], b[1], b[2], b[3]])
        } else {
            let mut e = [0u8; 9];
            e[0] = 0xE0;
            e[1..].copy_from_slice(&v.to_le_bytes());
            self.entry(&e)
        }
    }

    /// The ziplist: header, entries, `0xFF`.
    pub fn finish(self) -> Vec<u8> {
        let total = ZIPLIST_HEADER + self.entries.len() + 1;
        let tail = if self.count == 0 { ZIPLIST_HEADER } else { self.last };
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(tail as u32).to_le_bytes());
        out.extend_from_slice(&(self.count.min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&self.entries);
        out.push(0xFF);
        out
    }
}

/// An intset (§6.3) of `values`, sorted and deduplicated, in the smallest width holding them all
/// (2, 4 or 8 bytes).
pub fn intset(values: &[i64]) -> Vec<u8> {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.dedup();
    let width: usize = if v.iter().all(|&x| i16::try_from(x).is_ok()) {
        2
    } else if v.iter().all(|&x| i32::try_from(x).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + v.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    for x in v {
        out.extend_from_slice(&x.to_le_bytes()[..width]);
    }
    out
}

/// A zipmap (§6.4) of `pairs` in order: `zmlen` (254 = unknown once there are 254 or more pairs),
/// then `len key, key, len value, free 0, value` per pair, lengths in 1 byte below 254 else
/// `0xFE` + u32le, and `0xFF`.
pub fn zipmap<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, n: usize) {
        if n < 254 {
            out.push(n as u8);
        } else {
            out.push(0xFE);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
    }
    let mut out = vec![pairs.len().min(254) as u8];
    for (k, v) in pairs {
        let (k, v) = (k.as_ref(), v.as_ref());
        len(&mut out, k.len());
        out.extend_from_slice(k);
        len(&mut out, v.len());
        out.push(0);
        out.extend_from_slice(v);
    }
    out.push(0xFF);
    out
}

/// One module opcode (§7.2) with its payload.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleOp<'a> {
    /// Opcode 1 (no current server writes it; signed values go out as `UInt` bits).
    SInt(i64),
    /// Opcode 2, a `LEN`.
    UInt(u64),
    /// Opcode 3, `f32le`.
    Float(f32),
    /// Opcode 4, `f64le`.
    Double(f64),
    /// Opcode 5, stored with [`write_string`]'s policy (compression on).
    Str(&'a [u8]),
}

/// Appends a module opcode stream: each op, then the EOF opcode `LEN 0`. The body of a MODULE_2
/// value (after its type id), of MODULE_AUX (after `when`) and of a KEY_META class.
pub fn write_module_opcodes(out: &mut Vec<u8>, ops: &[ModuleOp<'_>]) {
    for op in ops {
        match *op {
            ModuleOp::SInt(v) => {
                write_len(out, 1);
                write_len(out, v as u64);
            }
            ModuleOp::UInt(v) => {
                write_len(out, 2);
                write_len(out, v);
            }
            ModuleOp::Float(v) => {
                write_len(out, 3);
                out.extend_from_slice(&v.to_le_bytes());
            }
            ModuleOp::Double(v) => {
                write_len(out, 4);
                out.extend_from_slice(&v.to_le_bytes());
            }
            ModuleOp::Str(s) => {
                write_len(out, 5);
                write_string(out, s, true);
            }
        }
    }
    write_len(out, 0);
}

/// Appends a MODULE_2 value (type 7): the 64-bit module type id as a `LEN`, then the opcodes.
pub fn write_module_value(out: &mut Vec<u8>, module_type: u64, ops: &[ModuleOp<'_>]) {
    write_len(out, module_type);
    write_module_opcodes(out, ops);
}

/// A DUMP / RESTORE payload (§9): type byte, the serialized value, `u16le` RDB version, and the
/// CRC-64 of all of that as `u64le`.
pub fn dump_payload(type_byte: u8, value: &[u8], rdb_version: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 11);
    out.push(type_byte);
    out.extend_from_slice(value);
    out.extend_from_slice(&rdb_version.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(b: &[u8], compress: bool) -> Vec<u8> {
        let mut out = Vec::new();
        write_string(&mut out, b, compress);
        out
    }

    fn len(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_len(&mut out, n);
        out
    }

    #[test]
    fn lengths() {
        assert_eq!(len(0), [0x00]);
        assert_eq!(len(63), [0x3F]);
        assert_eq!(len(64), [0x40, 0x40]);
        assert_eq!(len(16383), [0x7F, 0xFF]);
        assert_eq!(len(16384), [0x80, 0x00, 0x00, 0x40, 0x00]);
        assert_eq!(len(u32::MAX as u64), [0x80, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(len(u32::MAX as u64 + 1), [0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(len(u64::MAX), [0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn canonical_integers() {
        for ok in ["0", "1", "-1", "12", "9223372036854775807", "-9223372036854775808"] {
            assert_eq!(canonical_i64(ok.as_bytes()), ok.parse().ok(), "{ok}");
        }
        for bad in
            ["", "-", "-0", "007", "+1", " 1", "1 ", "1a", "9223372036854775808", "-9223372036854775809", "00", "01"]
        {
            assert_eq!(canonical_i64(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn string_forms() {
        // docs/format.md §3.2: key "12345" is stored as C1 39 30.
        assert_eq!(string(b"12345", true), [0xC1, 0x39, 0x30]);
        assert_eq!(string(b"-1", false), [0xC0, 0xFF]);
        assert_eq!(string(b"127", false), [0xC0, 0x7F]);
        assert_eq!(string(b"128", false), [0xC1, 0x80, 0x00]);
        assert_eq!(string(b"-2147483648", false), [0xC2, 0, 0, 0, 0x80]);
        // Fits i64 but not i32, or too long: raw.
        assert_eq!(string(b"2147483648", false), b"\x0a2147483648");
        assert_eq!(string(b"007", false), b"\x03007");
        assert_eq!(string(b"-0", false), b"\x02-0");
        assert_eq!(string(b"", true), [0x00]);
        // 21+ compressible bytes: LZF only when asked.
        let a100 = [b'a'; 100];
        let c = string(&a100, true);
        assert_eq!(&c[..4], &[0xC3, c[1], 0x40, 0x64]);
        assert!(c.len() < 20);
        assert_eq!(string(&a100, false)[..2], [0x40, 0x64]);
        // 20 bytes: never compressed.
        assert_eq!(string(&[b'a'; 20], true)[0], 20);
        // Incompressible: raw.
        let noise: Vec<u8> = (0..64u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        assert_eq!(string(&noise, true)[..2], [0x40, 64]);
    }

    #[test]
    fn lzf_string_decodes() {
        let mut out = Vec::new();
        write_lzf_string(&mut out, b"abc");
        assert_eq!(out[0], 0xC3);
        let mut c = crate::rdb::cursor::Cursor::new(&out, 0);
        assert_eq!(&*c.str_cow("s").unwrap(), b"abc");
        let mut out = Vec::new();
        write_lzf_string(&mut out, b"");
        assert_eq!(out, [0x00]);
    }

    #[test]
    fn doubles() {
        let a = |v: f64| {
            let mut out = Vec::new();
            ascii_double(&mut out, v);
            out
        };
        assert_eq!(a(f64::NAN), [253]);
        assert_eq!(a(f64::INFINITY), [254]);
        assert_eq!(a(f64::NEG_INFINITY), [255]);
        assert_eq!(a(1.5), b"\x031.5");
        assert_eq!(a(-0.0), b"\x010");
        assert_eq!(a(-12.0), b"\x03-12");
        assert_eq!(double_text(0.1), "0.1");
        assert_eq!(double_text(1e300), "1e300");
        assert_eq!(double_text(1e17), "100000000000000000");
        assert_eq!(double_text(-4611686018427387904.0), "-4611686018427387904");
        assert_eq!(double_text(9223372036854775808.0), "9.223372036854776e18");
        for v in [0.1, 1e300, -5e-324, f64::MAX, f64::MIN_POSITIVE, 9007199254740993.0] {
            assert_eq!(double_text(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn listpack_worked_example() {
        // docs/format.md §6.2: hash f1=v1 f2=100.
        let mut lp = ListpackBuilder::new();
        lp.push_str("f1").push_str("v1").push_str("f2").push_str("100");
        assert_eq!(
            lp.finish(),
            [
                0x15, 0x00, 0x00, 0x00, 0x04, 0x00, 0x82, 0x66, 0x31, 0x03, 0x82, 0x76, 0x31, 0x03, 0x82, 0x66, 0x32,
                0x03, 0x64, 0x01, 0xFF
            ]
        );
    }

    #[test]
    fn listpack_zset_dump_prefix() {
        // docs/format.md §9: DUMP prefix of zset c=-0.0, a=1.5, b=2 (type 17, STR length 25).
        let mut lp = ListpackBuilder::new();
        for (m, s) in [("c", -0.0), ("a", 1.5), ("b", 2.0)] {
            lp.push_str(m).push_str(&double_text(s));
        }
        let mut value = Vec::new();
        write_string(&mut value, &lp.finish(), true);
        let dump = dump_payload(17, &value, 10);
        assert_eq!(
            dump[..27],
            [
                0x11, 0x19, 0x19, 0x00, 0x00, 0x00, 0x06, 0x00, 0x81, 0x63, 0x02, 0x00, 0x01, 0x81, 0x61, 0x02, 0x83,
                0x31, 0x2E, 0x35, 0x04, 0x81, 0x62, 0x02, 0x02, 0x01, 0xFF
            ]
        );
        assert_eq!(dump[27..29], [0x0A, 0x00]);
    }

    #[test]
    fn listpack_integer_and_string_forms() {
        let one = |v: i64| {
            let mut lp = ListpackBuilder::new();
            lp.push_int(v);
            let b = lp.finish();
            b[6..b.len() - 1].to_vec()
        };
        assert_eq!(one(0), [0x00, 0x01]);
        assert_eq!(one(127), [0x7F, 0x01]);
        assert_eq!(one(128), [0xC0, 0x80, 0x02]);
        assert_eq!(one(-1), [0xDF, 0xFF, 0x02]);
        assert_eq!(one(-10), [0xDF, 0xF6, 0x02]); // seen in §6.6
        assert_eq!(one(-4096), [0xD0, 0x00, 0x02]);
        assert_eq!(one(4096), [0xF1, 0x00, 0x10, 0x03]);
        assert_eq!(one(-32769), [0xF2, 0xFF, 0x7F, 0xFF, 0x04]);
        assert_eq!(one(1 << 23), [0xF3, 0, 0, 0x80, 0, 0x05]);
        assert_eq!(one(i64::MIN)[0], 0xF4);
        let mut lp = ListpackBuilder::new();
        lp.push(&[b'x'; 64]).push(&[b'y'; 4096]).push(b"007");
        let b = lp.finish();
        assert_eq!(b[6..8], [0xE0, 64]);
        // 2 + 64 = 66 bytes → backlen 0x42; then the 32-bit form, LE length.
        assert_eq!(b[8 + 64], 66);
        assert_eq!(b[73..78], [0xF0, 0x00, 0x10, 0x00, 0x00]);
        // 5 + 4096 = 4101 = 32·128 + 5 → 20 85.
        assert_eq!(b[78 + 4096..78 + 4098], [0x20, 0x85]);
        assert_eq!(b[78 + 4098..78 + 4098 + 5], [0x83, b'0', b'0', b'7', 0x04]);
    }

    #[test]
    fn backlens() {
        let bl = |n| {
            let mut o = Vec::new();
            write_listpack_backlen(&mut o, n);
            o
        };
        for n in [0, 1, 127, 128, 16382, 16383, 2097150, 2097151, 268435454, 268435455] {
            let mut theirs = [0u8; 5];
            let k = crate::rdb::encodings::listpack::encode_backlen(n, &mut theirs);
            assert_eq!(bl(n), theirs[..k], "{n}");
        }
        assert_eq!(bl(128), [0x01, 0x80]);
        assert_eq!(bl(16383), [0x00, 0xFF, 0xFF]);
    }

    #[test]
    fn listpack_count_saturates() {
        let mut lp = ListpackBuilder::new();
        for _ in 0..65536 {
            lp.push_int(1);
        }
        let b = lp.finish();
        assert_eq!(b[4..6], [0xFF, 0xFF]);
        assert_eq!(b.len(), 6 + 2 * 65536 + 1);
    }

    #[test]
    fn intset_worked_example() {
        // docs/format.md §6.3: {1, 2, 3}.
        assert_eq!(intset(&[3, 1, 2, 2]), [0x02, 0, 0, 0, 0x03, 0, 0, 0, 0x01, 0x00, 0x02, 0x00, 0x03, 0x00]);
        assert_eq!(intset(&[1, 1 << 20])[..8], [4, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(intset(&[i64::MIN]).len(), 16);
    }

    #[test]
    fn ziplist_forms() {
        let mut zl = ZiplistBuilder::new();
        zl.push(b"a").push_int(5).push_int(-1).push_int(300).push_int(-8388608).push_int(1 << 30);
        zl.push_int(i64::MAX).push(&[b'z'; 300]).push(b"x");
        let b = zl.finish();
        assert_eq!(u32::from_le_bytes(b[0..4].try_into().unwrap()) as usize, b.len());
        assert_eq!(b[8..10], [9, 0]);
        let e = &b[10..];
        assert_eq!(e[..3], [0x00, 0x01, b'a']);
        assert_eq!(e[3..5], [0x03, 0xF6]); // immediate 5
        assert_eq!(e[5..8], [0x02, 0xFE, 0xFF]); // i8 -1
        assert_eq!(e[8..12], [0x03, 0xC0, 0x2C, 0x01]); // i16 300
        assert_eq!(e[12..17], [0x04, 0xF0, 0x00, 0x00, 0x80]); // i24
        assert_eq!(e[17..23], [0x05, 0xD0, 0, 0, 0, 0x40]); // i32
        assert_eq!(e[23..25], [0x06, 0xE0]); // i64
        // 300-byte string: 14-bit big-endian length, then the 5-byte prevlen after it.
        assert_eq!(e[33..36], [0x0A, 0x41, 0x2C]);
        let next = 33 + 3 + 300;
        assert_eq!(e[next..next + 5], [0xFE, 0x2F, 0x01, 0x00, 0x00]);
        let tail = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
        assert_eq!(tail, 10 + next);
        let empty = ZiplistBuilder::new().finish();
        assert_eq!(empty, [11, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0xFF]);
    }

    #[test]
    fn zipmap_layout() {
        let z = zipmap(&[(&b"f"[..], &b"v1"[..])]);
        assert_eq!(z, [0x01, 0x01, b'f', 0x02, 0x00, b'v', b'1', 0xFF]);
        let big = vec![b'k'; 300];
        let z = zipmap(&[(big.as_slice(), &b""[..])]);
        assert_eq!(z[..6], [0x01, 0xFE, 0x2C, 0x01, 0x00, 0x00]);
    }

    #[test]
    fn module_opcodes() {
        let mut out = Vec::new();
        write_module_value(
            &mut out,
            0xBDE72DA2BB1EB400,
            &[ModuleOp::UInt(3), ModuleOp::Str(b"x"), ModuleOp::Float(1.5), ModuleOp::SInt(-1)],
        );
        let mut exp = vec![0x81, 0xBD, 0xE7, 0x2D, 0xA2, 0xBB, 0x1E, 0xB4, 0x00];
        exp.extend_from_slice(&[0x02, 0x03, 0x05, 0x01, b'x', 0x03, 0x00, 0x00, 0xC0, 0x3F]);
        exp.extend_from_slice(&[0x01, 0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00]);
        assert_eq!(out, exp);
    }

    #[test]
    fn dump_of_12345() {
        // docs/format.md §9.
        let mut v = Vec::new();
        write_string(&mut v, b"12345", true);
        assert_eq!(
            dump_payload(0, &v, 10),
            [0x00, 0xC1, 0x39, 0x30, 0x0A, 0x00, 0x9D, 0x94, 0xEA, 0x27, 0x93, 0xFC, 0x08, 0xB9]
        );
    }
}
