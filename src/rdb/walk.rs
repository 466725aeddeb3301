//! Walking a value: `skip_value` finds where a value ends (the reader's cheap structural pass);
//! `Walker::walk` decodes and validates it completely, feeding a `Sink`.
//!
//! Over 700 lines on purpose: the two walks are one dispatch over every type byte each, and
//! keeping them side by side is what keeps them agreeing on where every encoding ends (the
//! encodings themselves live in `encodings/` and `stream.rs`).

use crate::error::{Error, ErrorKind, Result};
use crate::rdb::cursor::{Cursor, Elem, RdbStr};
use crate::rdb::encodings::blob_of;
use crate::rdb::encodings::intset::IntsetIter;
use crate::rdb::encodings::listpack::ListpackIter;
use crate::rdb::encodings::ziplist::ZiplistIter;
use crate::rdb::encodings::zipmap::ZipmapIter;
use crate::rdb::fpset::{FingerprintTable, fingerprint};
use crate::rdb::module::{self, ModuleType};
use crate::rdb::stream;
use crate::rdb::strtod;
use crate::rdb::types::{Flavor, Format, id};
use crate::rdb::value::{Note, RawValue, Sink, Validate, Value, ValueBuilder};

/// Field TTLs above this are corrupt (Redis keeps 48 bits of expiry time).
pub const MAX_FIELD_EXPIRE_MS: i64 = (1 << 48) - 1;

/// Consumes one serialized value of type `type_byte`, checking only what is needed to find its
/// end (lengths, counts, module opcodes). Inner blobs and LZF data are not examined.
pub fn skip_value(c: &mut Cursor<'_>, type_byte: u8, format: Format) -> Result<()> {
    use id::*;
    let valkey = format.flavor == Flavor::Valkey;
    match type_byte {
        STRING | HASH_ZIPMAP | LIST_ZIPLIST | SET_INTSET | ZSET_ZIPLIST | HASH_ZIPLIST | HASH_LISTPACK
        | ZSET_LISTPACK | SET_LISTPACK => {
            c.skip_str("value")?;
        }
        HASH_LISTPACK_EX_PRE_GA if !valkey => {
            c.skip_str("value")?;
        }
        HASH_LISTPACK_EX if !valkey => {
            c.take(8, "hash minimum expire time")?;
            c.skip_str("value")?;
        }
        LIST | SET | LIST_QUICKLIST => {
            let n = c.count("element count", 1)?;
            for _ in 0..n {
                c.skip_str("element")?;
            }
        }
        ZSET => {
            let n = c.count("zset size", 2)?;
            for _ in 0..n {
                c.skip_str("zset member")?;
                let l = c.u8("zset score length")?;
                if l < 253 {
                    c.take(l as usize, "zset score")?;
                }
            }
        }
        ZSET_2 => {
            let n = c.count("zset size", 9)?;
            for _ in 0..n {
                c.skip_str("zset member")?;
                c.take(8, "zset score")?;
            }
        }
        HASH => {
            let n = c.count("hash size", 2)?;
            for _ in 0..n {
                c.skip_str("hash field")?;
                c.skip_str("hash value")?;
            }
        }
        LIST_QUICKLIST_2 => {
            let n = c.count("quicklist node count", 2)?;
            for _ in 0..n {
                c.len("quicklist container")?;
                c.skip_str("quicklist node")?;
            }
        }
        MODULE_2 => {
            c.len("module type id")?;
            module::skip_opcodes(c, false)?;
        }
        HASH_22 if valkey => {
            let n = c.count("hash size", 10)?;
            for _ in 0..n {
                c.skip_str("hash field")?;
                c.skip_str("hash value")?;
                c.take(8, "hash field expire time")?;
            }
        }
        HASH_22 | HASH_METADATA if !valkey => {
            if type_byte == HASH_METADATA {
                c.take(8, "hash minimum expire time")?;
            }
            let n = c.count("hash size", 3)?;
            for _ in 0..n {
                c.len("hash field ttl")?;
                c.skip_str("hash field")?;
                c.skip_str("hash value")?;
            }
        }
        STREAM_LISTPACKS | STREAM_LISTPACKS_2 | STREAM_LISTPACKS_3 => stream::skip(c, type_byte)?,
        STREAM_LISTPACKS_4 if !valkey => stream::skip(c, type_byte)?,
        MODULE_PRE_GA => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                c.offset(),
                "module value of type 6 (Redis 4.0 release candidates) has no opcodes and cannot be skipped",
            ));
        }
        t => {
            return Err(Error::corrupt(c.offset(), format!("unknown value type {t}")));
        }
    }
    Ok(())
}

/// Reused state for walking values: decompression buffers and member fingerprints.
#[derive(Default)]
pub struct Walker {
    blob: Vec<u8>,
    s1: Vec<u8>,
    s2: Vec<u8>,
    fps: Vec<u64>,
    fp_table: FingerprintTable,
    /// Off while confirming a suspected duplicate (the confirming walk collects exact members).
    skip_unique: bool,
    /// What the last walk accepted but found worth reporting.
    notes: Vec<Note>,
}

/// Anything that yields elements one by one and can blame a position: ziplists and listpacks.
trait Elems<'b> {
    fn next_elem(&mut self) -> Result<Option<Elem<'b>>>;
    fn blame(&self, msg: String) -> Error;
}

impl<'b> Elems<'b> for ListpackIter<'b> {
    #[inline(always)]
    fn next_elem(&mut self) -> Result<Option<Elem<'b>>> {
        ListpackIter::next_elem(self)
    }
    fn blame(&self, msg: String) -> Error {
        self.blob().err(self.pos(), msg)
    }
}

impl<'b> Elems<'b> for ZiplistIter<'b> {
    fn next_elem(&mut self) -> Result<Option<Elem<'b>>> {
        ZiplistIter::next_elem(self)
    }
    fn blame(&self, msg: String) -> Error {
        self.blob().err(self.pos(), msg)
    }
}

fn empty(offset: u64, what: &str) -> Error {
    Error::new(ErrorKind::EmptyValue, offset, format!("empty {what} (Redis skips such keys on load)"))
}

/// An element from a string: bytes when `want` (decompressing into `buf`), else only checked.
#[inline]
fn elem_of<'s>(s: RdbStr<'s>, buf: &'s mut Vec<u8>, want: bool) -> Result<Elem<'s>> {
    if !want && let RdbStr::Lzf { .. } = s {
        s.validate()?;
        return Ok(Elem::Bytes(&[]));
    }
    s.bytes(buf)
}

/// Packed zsets of more entries than this are converted to a skiplist while Redis loads them
/// (the default `zset-max-listpack-entries`, `zset-max-ziplist-entries` before 7.0).
pub const ZSET_MAX_PACKED_ENTRIES: usize = 128;

/// The score Redis holds for a ziplist / listpack zset entry. Redis does not parse these at
/// load: each use converts the entry with `strtod` of its first 127 bytes (up to a NUL), so text
/// without a number is 0 and "nan" is NaN. Returns the score and whether the text was odd.
pub fn packed_score(e: Elem<'_>) -> (f64, bool) {
    let b = match e {
        Elem::Int(i) => return (i as f64, false),
        Elem::Bytes(b) => b,
    };
    if strtod::plain(b)
        && let Some((v, _)) = strtod::parse_prefix(b, strtod::Mode::Strtod)
    {
        return (v, false);
    }
    let c = &b[..b.len().min(127)];
    let c = c.split(|&x| x == 0).next().unwrap_or_default();
    (strtod::parse_prefix(c, strtod::Mode::Strtod).map_or(0.0, |x| x.0), true)
}

impl Walker {
    /// A walker with empty buffers, checking everything (repeated members included).
    pub fn new() -> Walker {
        Walker::default()
    }

    /// What the last `walk` accepted, as Redis does, but found odd (empty after a clean value).
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// A walker that does not look for repeated set members, hash fields and zset members
    /// (every other check stays): for reports that only measure values.
    pub fn without_duplicate_check() -> Walker {
        Walker { skip_unique: true, ..Walker::default() }
    }

    /// Before each walk: no fingerprints or notes left from the last value (also for a walker
    /// without the duplicate check, whose notes once piled up key after key).
    #[inline(always)]
    fn forget_last_value(&mut self) {
        self.fps.clear();
        self.notes.clear();
    }

    /// Decodes and validates `raw` completely, feeding `sink`.
    pub fn walk<S: Sink>(&mut self, raw: &RawValue<'_>, sink: &mut S) -> Result<()> {
        self.forget_last_value();
        let mut c = Cursor::new(raw.bytes, raw.offset);
        self.walk_inner(&mut c, raw.type_byte, raw.format, sink)?;
        if !c.is_empty() {
            return Err(Error::corrupt(c.offset(), format!("{} unexpected bytes after the value", c.remaining())));
        }
        if !self.skip_unique
            && self.fp_table.any_repeated(&self.fps)
            && let Some(e) = self.confirm_duplicate(raw)?
        {
            return Err(e);
        }
        Ok(())
    }

    /// Validates the value of type `type_byte` that starts at `c`'s position, reading it in
    /// place and leaving `c` at its end: what [`RawValue::validate`] checks, in one walk without
    /// knowing the value's extent first. On an error `c`'s position is unspecified, and the
    /// error may be worded differently from `validate`'s (the reader then finds the extent and
    /// asks `validate`).
    pub fn validate_at<'a>(&mut self, c: &mut Cursor<'a>, type_byte: u8, format: Format) -> Result<()> {
        if type_byte == id::STRING {
            self.forget_last_value();
            // Most keys: only an LZF string has anything to check (what `walk_inner` does for a
            // string, without building the element).
            return c.skip_str_checked("string value");
        }
        self.walk_at(c, type_byte, format, &mut Validate)
    }

    /// Walks the value of type `type_byte` that starts at `c`'s position in place, feeding
    /// `sink` and leaving `c` at its end: [`Walker::walk`] without knowing the value's extent
    /// first (what [`Walker::validate_at`] says of its errors holds here too).
    #[inline]
    pub fn walk_at<S: Sink>(&mut self, c: &mut Cursor<'_>, type_byte: u8, format: Format, sink: &mut S) -> Result<()> {
        self.forget_last_value();
        let (start, offset) = (c.pos(), c.offset());
        self.walk_inner(c, type_byte, format, sink)?;
        if !self.skip_unique && self.fp_table.any_repeated(&self.fps) {
            let raw = RawValue { type_byte, format, bytes: c.since(start), offset };
            if let Some(e) = self.confirm_duplicate(&raw)? {
                return Err(e);
            }
        }
        Ok(())
    }

    /// A fingerprint repeated: walk again collecting exact members to name the duplicate, or to
    /// clear a 64-bit collision between different members (`None`).
    #[cold]
    fn confirm_duplicate(&mut self, raw: &RawValue<'_>) -> Result<Option<Error>> {
        struct Members {
            seen: std::collections::HashSet<Vec<u8>>,
            dup: Option<Vec<u8>>,
        }
        impl Members {
            fn add(&mut self, m: Elem<'_>) {
                let v = m.to_vec();
                if self.dup.is_none() && !self.seen.insert(v.clone()) {
                    self.dup = Some(v);
                }
            }
        }
        impl Sink for Members {
            fn set_member(&mut self, m: Elem<'_>) {
                self.add(m)
            }
            fn zset_item(&mut self, m: Elem<'_>, _s: f64) {
                self.add(m)
            }
            fn hash_field(&mut self, f: Elem<'_>, _v: Elem<'_>, _e: Option<i64>) {
                self.add(f)
            }
        }
        let mut members = Members { seen: Default::default(), dup: None };
        // The confirming walk's notes are those of the walk it confirms: keep those.
        let notes = std::mem::take(&mut self.notes);
        self.skip_unique = true;
        let res = self.walk(raw, &mut members);
        self.skip_unique = false;
        self.notes = notes;
        res?;
        Ok(members.dup.map(|d| {
            Error::corrupt(
                raw.offset,
                format!("duplicate {} {} in {}", member_word(raw), crate::display::quoted(&d), raw.encoding()),
            )
        }))
    }

    fn walk_inner<S: Sink>(&mut self, c: &mut Cursor<'_>, type_byte: u8, format: Format, sink: &mut S) -> Result<()> {
        use id::*;
        let valkey = format.flavor == Flavor::Valkey;
        let start = c.offset();
        let uniq = !self.skip_unique;
        match type_byte {
            STRING => {
                let s = c.str("string value")?;
                let e = elem_of(s, &mut self.s1, S::WANTS_BYTES)?;
                sink.string(e);
            }
            LIST | SET => {
                let n = c.count("element count", 1)?;
                if n == 0 {
                    return Err(empty(start, if type_byte == LIST { "list" } else { "set" }));
                }
                for _ in 0..n {
                    c.prefetch_page_ahead();
                    if type_byte == LIST {
                        let e = match c.short_raw() {
                            Some(b) => Elem::Bytes(b),
                            None => elem_of(c.str("element")?, &mut self.s1, S::WANTS_BYTES)?,
                        };
                        sink.list_item(e);
                    } else {
                        let e = match c.short_raw() {
                            Some(b) => Elem::Bytes(b),
                            None => elem_of(c.str("element")?, &mut self.s1, true)?,
                        };
                        if uniq {
                            self.fps.push(fingerprint(e));
                        }
                        sink.set_member(e);
                    }
                }
            }
            ZSET | ZSET_2 => {
                let n = c.count("zset size", 2)?;
                if n == 0 {
                    return Err(empty(start, "sorted set"));
                }
                for _ in 0..n {
                    c.prefetch_page_ahead();
                    let e = match c.short_raw() {
                        Some(b) => Elem::Bytes(b),
                        None => elem_of(c.str("zset member")?, &mut self.s1, true)?,
                    };
                    let at = c.offset();
                    let score =
                        if type_byte == ZSET { ascii_score(c, &mut self.notes)? } else { c.f64le("zset score")? };
                    if score.is_nan() {
                        return Err(Error::corrupt(at, "zset score is NaN (Redis refuses the file)"));
                    }
                    if uniq {
                        self.fps.push(fingerprint(e));
                    }
                    sink.zset_item(e, score);
                }
            }
            HASH => {
                let n = c.count("hash size", 2)?;
                if n == 0 {
                    return Err(empty(start, "hash"));
                }
                for _ in 0..n {
                    c.prefetch_page_ahead();
                    // Both strings are read before either is decoded (a truncation of the value is
                    // reported before a bad LZF field).
                    let f = match c.short_raw() {
                        Some(b) => Ok(b),
                        None => Err(c.str("hash field")?),
                    };
                    let v = match c.short_raw() {
                        Some(b) => Ok(b),
                        None => Err(c.str("hash value")?),
                    };
                    let (f, v) = match (f, v) {
                        (Ok(f), Ok(v)) => (Elem::Bytes(f), Elem::Bytes(v)),
                        (f, v) => {
                            let f = f.map_or_else(|s| elem_of(s, &mut self.s1, true), |b| Ok(Elem::Bytes(b)))?;
                            let v =
                                v.map_or_else(|s| elem_of(s, &mut self.s2, S::WANTS_BYTES), |b| Ok(Elem::Bytes(b)))?;
                            (f, v)
                        }
                    };
                    if uniq {
                        self.fps.push(fingerprint(f));
                    }
                    sink.hash_field(f, v, None);
                }
            }
            HASH_22 if valkey => {
                let n = c.count("hash size", 10)?;
                if n == 0 {
                    return Err(empty(start, "hash"));
                }
                for _ in 0..n {
                    c.prefetch_page_ahead();
                    let f = c.str("hash field")?;
                    let v = c.str("hash value")?;
                    let at = c.offset();
                    let t = c.i64le("hash field expire time")?;
                    let expire = match t {
                        -1 => None,
                        t if !(-1..=MAX_FIELD_EXPIRE_MS).contains(&t) => {
                            return Err(Error::corrupt(at, format!("hash field expire time {t} out of range")));
                        }
                        t => Some(t),
                    };
                    let f = elem_of(f, &mut self.s1, true)?;
                    let v = elem_of(v, &mut self.s2, S::WANTS_BYTES)?;
                    if uniq {
                        self.fps.push(fingerprint(f));
                    }
                    sink.hash_field(f, v, expire);
                }
            }
            HASH_22 | HASH_METADATA if !valkey => {
                let min_expire =
                    if type_byte == HASH_METADATA { Some(c.i64le("hash minimum expire time")?) } else { None };
                let n = c.count("hash size", 3)?;
                if n == 0 {
                    return Err(empty(start, "hash"));
                }
                for _ in 0..n {
                    c.prefetch_page_ahead();
                    let at = c.offset();
                    let ttl = c.len("hash field ttl")?;
                    let expire = match (ttl, min_expire) {
                        (0, _) => None,
                        (t, Some(min)) => Some(min.wrapping_add(t as i64).wrapping_sub(1)),
                        (t, None) => Some(t as i64),
                    };
                    if let Some(e) = expire
                        && !(0..=MAX_FIELD_EXPIRE_MS).contains(&e)
                    {
                        return Err(Error::corrupt(at, format!("hash field expire time {e} out of range")));
                    }
                    let f = c.str("hash field")?;
                    let v = c.str("hash value")?;
                    let f = elem_of(f, &mut self.s1, true)?;
                    let v = elem_of(v, &mut self.s2, S::WANTS_BYTES)?;
                    if uniq {
                        self.fps.push(fingerprint(f));
                    }
                    sink.hash_field(f, v, expire);
                }
            }
            MODULE_2 => {
                let t = ModuleType(c.len("module type id")?);
                let body = c.pos();
                module::skip_opcodes(c, true)?;
                sink.module(t, c.since(body));
            }
            HASH_ZIPMAP => {
                let s = c.str("zipmap")?;
                let blob = blob_of(s, c.offset(), &mut self.blob, "zipmap")?;
                let mut it = ZipmapIter::new(blob)?;
                let mut n = 0usize;
                while let Some((f, v)) = it.next_pair()? {
                    if uniq {
                        self.fps.push(fingerprint(f));
                    }
                    sink.hash_field(f, v, None);
                    n += 1;
                }
                if n == 0 {
                    return Err(empty(start, "zipmap"));
                }
            }
            SET_INTSET => {
                let s = c.str("intset")?;
                let blob = blob_of(s, c.offset(), &mut self.blob, "intset")?;
                let mut it = IntsetIter::new(blob)?;
                if it.is_empty() {
                    return Err(empty(start, "intset"));
                }
                // Strictly ascending (checked by the iterator) means unique.
                if !S::WANTS_ELEMENTS {
                    it.check_rest()?;
                }
                while let Some(v) = it.next_int()? {
                    sink.set_member(Elem::Int(v));
                }
            }
            LIST_ZIPLIST | ZSET_ZIPLIST | HASH_ZIPLIST => {
                let s = c.str("ziplist")?;
                let blob = blob_of(s, c.offset(), &mut self.blob, "ziplist")?;
                let mut it = ZiplistIter::new(blob)?;
                let fps = if uniq { Some(&mut self.fps) } else { None };
                let n = match type_byte {
                    LIST_ZIPLIST => list_items(&mut it, sink)?,
                    ZSET_ZIPLIST => zset_pairs(&mut it, sink, fps, &mut self.notes, start)?,
                    _ => hash_pairs(&mut it, sink, fps)?,
                };
                if n == 0 {
                    return Err(empty(start, "ziplist"));
                }
            }
            HASH_LISTPACK | ZSET_LISTPACK | SET_LISTPACK => {
                let s = c.str("listpack")?;
                let blob = blob_of(s, c.offset(), &mut self.blob, "listpack")?;
                let mut it = ListpackIter::new(blob)?;
                let fps = if uniq { Some(&mut self.fps) } else { None };
                let n = match type_byte {
                    HASH_LISTPACK => hash_pairs(&mut it, sink, fps)?,
                    ZSET_LISTPACK => zset_pairs(&mut it, sink, fps, &mut self.notes, start)?,
                    _ => set_members(&mut it, sink, fps)?,
                };
                if n == 0 {
                    return Err(empty(start, "listpack"));
                }
            }
            HASH_LISTPACK_EX | HASH_LISTPACK_EX_PRE_GA if !valkey => {
                if type_byte == HASH_LISTPACK_EX {
                    // Minimum field expire time: a hint the loader ignores.
                    c.i64le("hash minimum expire time")?;
                }
                let s = c.str("listpack")?;
                let blob = blob_of(s, c.offset(), &mut self.blob, "listpack")?;
                let mut it = ListpackIter::new(blob)?;
                let fps = if uniq { Some(&mut self.fps) } else { None };
                if hash_triples(&mut it, sink, fps)? == 0 {
                    return Err(empty(start, "listpack"));
                }
            }
            LIST_QUICKLIST | LIST_QUICKLIST_2 => {
                let n = c.count("quicklist node count", 1)?;
                let mut total = 0usize;
                for _ in 0..n {
                    c.prefetch_page_ahead();
                    let container = if type_byte == LIST_QUICKLIST_2 {
                        let at = c.offset();
                        match c.len("quicklist container")? {
                            1 => 1,
                            2 => 2,
                            k => {
                                return Err(Error::corrupt(
                                    at,
                                    format!("quicklist container {k} is neither 1 (plain) nor 2 (packed)"),
                                ));
                            }
                        }
                    } else {
                        0
                    };
                    let at = c.offset();
                    let s = c.str("quicklist node")?;
                    if s.is_empty() {
                        return Err(Error::corrupt(at, "zero-length quicklist node"));
                    }
                    if container == 1 {
                        sink.list_item(elem_of(s, &mut self.s1, S::WANTS_BYTES)?);
                        total += 1;
                        continue;
                    }
                    let blob =
                        blob_of(s, c.offset(), &mut self.blob, if container == 2 { "listpack" } else { "ziplist" })?;
                    // Empty nodes are skipped, as Redis does; an all-empty list is an empty key.
                    total += if container == 2 {
                        list_items(&mut ListpackIter::new(blob)?, sink)?
                    } else {
                        list_items(&mut ZiplistIter::new(blob)?, sink)?
                    };
                }
                if total == 0 {
                    return Err(empty(start, "list"));
                }
            }
            STREAM_LISTPACKS | STREAM_LISTPACKS_2 | STREAM_LISTPACKS_3 => {
                stream::walk(c, type_byte, &mut self.blob, &mut self.s1, sink, &mut self.notes)?;
            }
            STREAM_LISTPACKS_4 if !valkey => {
                stream::walk(c, type_byte, &mut self.blob, &mut self.s1, sink, &mut self.notes)?;
            }
            _ => skip_value(c, type_byte, format)?,
        }
        Ok(())
    }
}

fn member_word(raw: &RawValue<'_>) -> &'static str {
    match raw.kind() {
        crate::rdb::types::Kind::Hash => "hash field",
        crate::rdb::types::Kind::Zset => "zset member",
        _ => "set member",
    }
}

/// An ASCII score of a type-3 zset: `u8 len` (253 NaN, 254 +inf, 255 -inf) then the text, read
/// as Redis does with `sscanf("%lg")`: the longest numeric prefix counts, no number is an error.
fn ascii_score(c: &mut Cursor<'_>, notes: &mut Vec<Note>) -> Result<f64> {
    let at = c.offset();
    let n = c.u8("zset score length")?;
    match n {
        253 => Ok(f64::NAN),
        254 => Ok(f64::INFINITY),
        255 => Ok(f64::NEG_INFINITY),
        n => {
            let t = c.take(n as usize, "zset score")?;
            let Some((v, odd)) = strtod::parse(t, strtod::Mode::Scanf) else {
                return Err(Error::corrupt(
                    at,
                    format!("zset score {} is not a number (Redis refuses the file)", crate::display::quoted(t)),
                ));
            };
            if odd && !v.is_nan() {
                notes.push(Note {
                    offset: at,
                    kind: "zset_score",
                    message: format!(
                        "zset score text {} read as {} (Redis takes the longest numeric prefix)",
                        crate::display::quoted(t),
                        crate::rdb::encode::double_text(v)
                    ),
                });
            }
            Ok(v)
        }
    }
}

fn list_items<'b, S: Sink>(it: &mut impl Elems<'b>, sink: &mut S) -> Result<usize> {
    let mut n = 0;
    while let Some(e) = it.next_elem()? {
        sink.list_item(e);
        n += 1;
    }
    Ok(n)
}

fn set_members<'b, S: Sink>(it: &mut impl Elems<'b>, sink: &mut S, mut fps: Option<&mut Vec<u64>>) -> Result<usize> {
    let mut n = 0;
    while let Some(e) = it.next_elem()? {
        if let Some(f) = fps.as_deref_mut() {
            f.push(fingerprint(e));
        }
        sink.set_member(e);
        n += 1;
    }
    Ok(n)
}

fn hash_pairs<'b, S: Sink>(it: &mut impl Elems<'b>, sink: &mut S, mut fps: Option<&mut Vec<u64>>) -> Result<usize> {
    let mut n = 0;
    while let Some(f) = it.next_elem()? {
        let Some(v) = it.next_elem()? else {
            return Err(it.blame("odd number of entries in a hash (field without value)".into()));
        };
        if let Some(fp) = fps.as_deref_mut() {
            fp.push(fingerprint(f));
        }
        sink.hash_field(f, v, None);
        n += 1;
    }
    Ok(n)
}

fn zset_pairs<'b, S: Sink>(
    it: &mut impl Elems<'b>,
    sink: &mut S,
    mut fps: Option<&mut Vec<u64>>,
    notes: &mut Vec<Note>,
    at: u64,
) -> Result<usize> {
    let mut n = 0;
    let mut nan = None;
    while let Some(m) = it.next_elem()? {
        let Some(s) = it.next_elem()? else {
            return Err(it.blame("odd number of entries in a sorted set (member without score)".into()));
        };
        // Validation needs no value for a plain number: a syntax check, no conversion.
        let score = match s {
            Elem::Int(i) => i as f64,
            Elem::Bytes(b) if !S::WANTS_BYTES && strtod::plain(b) => 0.0,
            _ => {
                let (v, odd) = packed_score(s);
                if odd {
                    let text = match s {
                        Elem::Bytes(b) => crate::display::quoted(b),
                        Elem::Int(_) => String::new(),
                    };
                    if v.is_nan() {
                        nan.get_or_insert(text.clone());
                    }
                    if notes.len() < MAX_NOTES {
                        notes.push(Note {
                            offset: at,
                            kind: "zset_score",
                            message: format!(
                                "zset score {text} is not a plain number: Redis does not check it at load and reads it as {} when used",
                                crate::rdb::encode::double_text(v)
                            ),
                        });
                    }
                }
                v
            }
        };
        if let Some(fp) = fps.as_deref_mut() {
            fp.push(fingerprint(m));
        }
        sink.zset_item(m, score);
        n += 1;
    }
    if let Some(text) = nan
        && n > ZSET_MAX_PACKED_ENTRIES
    {
        return Err(it.blame(format!(
            "score {text} is NaN in a zset of {n} entries: Redis converts a packed zset of more than {ZSET_MAX_PACKED_ENTRIES} entries (zset-max-listpack-entries) to a skiplist while loading, and aborts on a NaN score"
        )));
    }
    Ok(n)
}

/// At most this many notes per value.
const MAX_NOTES: usize = 16;

/// (field, value, ttl) triples of a listpack hash with field TTLs; TTLs ascending, none (0) last.
fn hash_triples<'b, S: Sink>(it: &mut impl Elems<'b>, sink: &mut S, mut fps: Option<&mut Vec<u64>>) -> Result<usize> {
    let mut n = 0;
    let mut prev = 0i64;
    let mut seen_none = false;
    while let Some(f) = it.next_elem()? {
        let (Some(v), Some(t)) = (it.next_elem()?, it.next_elem()?) else {
            return Err(it.blame("entry count is not a multiple of 3 in a hash with field TTLs".into()));
        };
        let ttl = match t {
            Elem::Int(t) => t,
            Elem::Bytes(b) => crate::rdb::decimal::parse_canonical_i64(b)
                .ok_or_else(|| it.blame(format!("field TTL {} is not an integer", crate::display::quoted(b))))?,
        };
        if !(0..=MAX_FIELD_EXPIRE_MS).contains(&ttl) {
            return Err(it.blame(format!("field TTL {ttl} out of range")));
        }
        if ttl == 0 {
            seen_none = true;
        } else if seen_none || ttl < prev {
            return Err(it.blame("field TTLs are not in ascending order (fields without TTL last)".into()));
        } else {
            prev = ttl;
        }
        if let Some(fp) = fps.as_deref_mut() {
            fp.push(fingerprint(f));
        }
        sink.hash_field(f, v, (ttl != 0).then_some(ttl));
        n += 1;
    }
    Ok(n)
}

/// Walking is how a raw value is checked or decoded (the methods live here, beside the walker,
/// so that the value model does not depend on it).
impl RawValue<'_> {
    /// Full validation without building anything.
    ///
    /// # Errors
    ///
    /// The first thing Redis would refuse in the value, with its file offset.
    pub fn validate(&self, w: &mut Walker) -> Result<()> {
        w.walk(self, &mut Validate)
    }
    /// Decodes into the logical model, validating all of it on the way.
    ///
    /// # Errors
    ///
    /// As [`RawValue::validate`]; nothing is returned for a value that fails.
    pub fn decode(&self, w: &mut Walker) -> Result<Value> {
        let mut b = ValueBuilder::new(self.kind());
        w.walk(self, &mut b)?;
        Ok(b.finish())
    }
}
