//! JSON output: one object per key, rendered while the walker decodes the value (no `Value` is
//! built), as JSON Lines or as the elements of one streamed JSON array.
//!
//! Byte strings follow `crate::json`: a JSON string when the bytes are UTF-8, otherwise
//! `{"base64": "..."}`.
//!
//! Over 700 lines for now: one renderer per value type and encoding (each streams its elements
//! as the walker yields them) plus the escaper; a split by type (strings, collections, streams)
//! is the next step.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{ExportError, KeyCtx, KeyWriter, Out, all_fields_expired, push_f64, push_i64, push_u64};
use crate::rdb::cursor::{Elem, format_i64};
use crate::rdb::module::ModuleType;
use crate::rdb::reader::KeyRecord;
use crate::rdb::types::Kind;
use crate::rdb::value::{Idmp, Sink, StreamGroup, StreamId, StreamMeta};
use crate::rdb::walk::Walker;

/// The JSON formats: JSON Lines (`--format jsonl`) or one streamed JSON array (`--format json`).
pub struct JsonWriter {
    /// One JSON array (`--format json`) instead of one object per line.
    array: bool,
    with_meta: bool,
    first: bool,
    /// `[field, ms]` pairs of the current hash, rendered, waiting for the end of `value`.
    field_ttls: Vec<u8>,
}

impl JsonWriter {
    /// A writer for one JSON array (`array`) or JSON Lines; `with_meta` adds `encoding`, `idle`,
    /// `freq` and `value_bytes` to each object.
    pub fn new(array: bool, with_meta: bool) -> JsonWriter {
        JsonWriter { array, with_meta, first: true, field_ttls: Vec::new() }
    }

    /// Whether the next key is the first of the array (a part of the file rendered on its own
    /// does not know; see `parts`).
    pub(super) fn set_first(&mut self, first: bool) {
        self.first = first;
    }
}

impl KeyWriter for JsonWriter {
    fn begin(&mut self, out: &mut Out<'_>) {
        if self.array {
            out.buf.push(b'[');
        }
    }

    fn key(
        &mut self,
        k: &KeyRecord<'_>,
        w: &mut Walker,
        out: &mut Out<'_>,
        ctx: &KeyCtx<'_>,
    ) -> Result<bool, ExportError> {
        if all_fields_expired(k, w, ctx.filter)? {
            return Ok(false);
        }
        let buf = &mut out.buf;
        if self.array {
            buf.extend_from_slice(if self.first { b"\n" } else { b",\n" });
        }
        let kind = k.value.kind();
        buf.extend_from_slice(b"{\"db\":");
        push_u64(buf, k.db);
        buf.extend_from_slice(b",\"key\":");
        push_bytes(buf, &k.key);
        buf.extend_from_slice(b",\"type\":\"");
        buf.extend_from_slice(kind.as_str().as_bytes());
        buf.extend_from_slice(b"\",\"expire_at_ms\":");
        push_opt_i64(buf, k.expire_at_ms);
        if self.with_meta {
            buf.extend_from_slice(b",\"encoding\":\"");
            buf.extend_from_slice(k.value.encoding().as_bytes());
            buf.extend_from_slice(b"\",\"idle\":");
            match k.idle_s {
                Some(v) => push_u64(buf, v),
                None => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(b",\"freq\":");
            match k.freq {
                Some(v) => push_u64(buf, v as u64),
                None => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(b",\"value_bytes\":");
            push_u64(buf, k.value.bytes.len() as u64);
            if let Some(m) = &k.meta {
                buf.extend_from_slice(b",\"key_meta_base64\":\"");
                push_base64(buf, m.raw);
                buf.push(b'"');
            }
        }
        buf.extend_from_slice(b",\"value\":");
        self.field_ttls.clear();
        let mut sink = JsonSink {
            out,
            kind,
            n: 0,
            cutoff: ctx.filter.field_cutoff(),
            field_ttls: &mut self.field_ttls,
            stream: StreamState::Entries,
        };
        sink.open();
        w.walk(&k.value, &mut sink).map_err(|e| ExportError::Input(e.in_key(k.db, &k.key)))?;
        sink.close();
        let buf = &mut out.buf;
        if !self.field_ttls.is_empty() {
            buf.extend_from_slice(b",\"field_expire_at_ms\":[");
            buf.extend_from_slice(&self.field_ttls);
            buf.push(b']');
        }
        buf.push(b'}');
        if !self.array {
            buf.push(b'\n');
        }
        self.first = false;
        Ok(true)
    }

    fn finish(&mut self, out: &mut Out<'_>) {
        if self.array {
            out.buf.extend_from_slice(b"\n]\n");
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum StreamState {
    Entries,
    Groups,
    Idmp,
}

/// Renders one value as the walk feeds it.
struct JsonSink<'a, 'w> {
    out: &'a mut Out<'w>,
    kind: Kind,
    /// Elements written so far (for commas).
    n: u64,
    /// Hash fields that expired before this are left out.
    cutoff: Option<i64>,
    field_ttls: &'a mut Vec<u8>,
    stream: StreamState,
}

impl JsonSink<'_, '_> {
    fn open(&mut self) {
        match self.kind {
            Kind::List | Kind::Set | Kind::Zset | Kind::Hash => self.out.buf.push(b'['),
            Kind::Stream => self.out.buf.extend_from_slice(b"{\"entries\":["),
            Kind::String | Kind::Module => {}
        }
    }

    fn close(&mut self) {
        let buf = &mut self.out.buf;
        match self.kind {
            Kind::List | Kind::Set | Kind::Zset | Kind::Hash => buf.push(b']'),
            Kind::Stream => match self.stream {
                StreamState::Entries | StreamState::Groups => buf.extend_from_slice(b"]}"),
                StreamState::Idmp => buf.push(b'}'),
            },
            Kind::String | Kind::Module => {}
        }
    }

    #[inline]
    fn comma(&mut self) {
        if self.n > 0 {
            self.out.buf.push(b',');
        }
        self.n += 1;
    }
}

impl Sink for JsonSink<'_, '_> {
    fn string(&mut self, v: Elem<'_>) {
        push_elem_out(self.out, v);
    }

    fn list_item(&mut self, v: Elem<'_>) {
        self.comma();
        push_elem_out(self.out, v);
    }

    fn set_member(&mut self, m: Elem<'_>) {
        self.list_item(m)
    }

    fn zset_item(&mut self, m: Elem<'_>, score: f64) {
        self.comma();
        let buf = &mut self.out.buf;
        buf.push(b'[');
        push_elem(buf, m);
        buf.push(b',');
        push_score(buf, score);
        buf.push(b']');
        self.out.check();
    }

    fn hash_field(&mut self, f: Elem<'_>, v: Elem<'_>, expire_at_ms: Option<i64>) {
        if let (Some(t), Some(cut)) = (expire_at_ms, self.cutoff)
            && t < cut
        {
            return;
        }
        self.comma();
        let buf = &mut self.out.buf;
        buf.push(b'[');
        push_elem(buf, f);
        buf.push(b',');
        push_elem(buf, v);
        buf.push(b']');
        if let Some(t) = expire_at_ms {
            let ttls = &mut *self.field_ttls;
            if !ttls.is_empty() {
                ttls.push(b',');
            }
            ttls.push(b'[');
            push_elem(ttls, f);
            ttls.push(b',');
            push_i64(ttls, t);
            ttls.push(b']');
        }
        self.out.check();
    }

    fn stream_entry(&mut self, id: StreamId, fields: &[(Elem<'_>, Elem<'_>)]) {
        self.comma();
        let buf = &mut self.out.buf;
        buf.extend_from_slice(b"{\"id\":");
        push_id(buf, id);
        buf.extend_from_slice(b",\"fields\":[");
        for (i, (f, v)) in fields.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.push(b'[');
            push_elem(buf, *f);
            buf.push(b',');
            push_elem(buf, *v);
            buf.push(b']');
        }
        buf.extend_from_slice(b"]}");
        self.out.check();
    }

    fn stream_meta(&mut self, m: &StreamMeta) {
        let buf = &mut self.out.buf;
        buf.extend_from_slice(b"],\"length\":");
        push_u64(buf, m.length);
        buf.extend_from_slice(b",\"last_id\":");
        push_id(buf, m.last_id);
        if let Some(id) = m.first_id {
            buf.extend_from_slice(b",\"first_id\":");
            push_id(buf, id);
        }
        if let Some(id) = m.max_deleted_id {
            buf.extend_from_slice(b",\"max_deleted_id\":");
            push_id(buf, id);
        }
        if let Some(n) = m.entries_added {
            buf.extend_from_slice(b",\"entries_added\":");
            push_u64(buf, n);
        }
        buf.extend_from_slice(b",\"groups\":[");
        self.stream = StreamState::Groups;
        self.n = 0;
    }

    fn stream_group(&mut self, g: &StreamGroup) {
        self.comma();
        let buf = &mut self.out.buf;
        buf.extend_from_slice(b"{\"name\":");
        push_bytes(buf, &g.name);
        buf.extend_from_slice(b",\"last_id\":");
        push_id(buf, g.last_id);
        if let Some(n) = g.entries_read {
            buf.extend_from_slice(b",\"entries_read\":");
            if n == u64::MAX {
                buf.extend_from_slice(b"null");
            } else {
                push_u64(buf, n);
            }
        }
        buf.extend_from_slice(b",\"pending\":[");
        for (i, p) in g.pending.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(b"{\"id\":");
            push_id(buf, p.id);
            buf.extend_from_slice(b",\"consumer\":");
            match g.consumers.get(p.consumer) {
                Some(c) => push_bytes(buf, &c.name),
                None => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(b",\"delivery_time_ms\":");
            push_i64(buf, p.delivery_time_ms);
            buf.extend_from_slice(b",\"delivery_count\":");
            push_u64(buf, p.delivery_count);
            buf.push(b'}');
        }
        buf.extend_from_slice(b"],\"consumers\":[");
        for (i, c) in g.consumers.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(b"{\"name\":");
            push_bytes(buf, &c.name);
            buf.extend_from_slice(b",\"seen_time_ms\":");
            push_i64(buf, c.seen_time_ms);
            if let Some(t) = c.active_time_ms {
                buf.extend_from_slice(b",\"active_time_ms\":");
                push_i64(buf, t);
            }
            buf.extend_from_slice(b",\"pending\":[");
            for (j, id) in c.pending.iter().enumerate() {
                if j > 0 {
                    buf.push(b',');
                }
                push_id(buf, *id);
            }
            buf.extend_from_slice(b"]}");
        }
        buf.extend_from_slice(b"]}");
        self.out.check();
    }

    fn stream_idmp(&mut self, i: &Idmp) {
        let buf = &mut self.out.buf;
        buf.extend_from_slice(b"],\"idmp\":{\"duration_s\":");
        push_u64(buf, i.duration_s);
        buf.extend_from_slice(b",\"maxsize\":");
        push_u64(buf, i.maxsize);
        buf.extend_from_slice(b",\"producers\":[");
        for (n, (pid, entries)) in i.producers.iter().enumerate() {
            if n > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(b"{\"pid\":");
            push_bytes(buf, pid);
            buf.extend_from_slice(b",\"entries\":[");
            for (m, (iid, id)) in entries.iter().enumerate() {
                if m > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(b"{\"iid\":");
                push_bytes(buf, iid);
                buf.extend_from_slice(b",\"id\":");
                push_id(buf, *id);
                buf.push(b'}');
            }
            buf.extend_from_slice(b"]}");
        }
        buf.extend_from_slice(b"],\"iids_added\":");
        push_u64(buf, i.iids_added);
        buf.extend_from_slice(b",\"iids_duplicates\":");
        push_u64(buf, i.iids_duplicates);
        buf.push(b'}');
        self.stream = StreamState::Idmp;
        self.out.check();
    }

    fn module(&mut self, t: ModuleType, payload: &[u8]) {
        let buf = &mut self.out.buf;
        buf.extend_from_slice(b"{\"module\":\"");
        // The module alphabet needs no escaping.
        buf.extend_from_slice(t.name().as_bytes());
        buf.extend_from_slice(b"\",\"version\":");
        push_u64(buf, t.encver());
        buf.extend_from_slice(b",\"payload_base64\":\"");
        push_base64(buf, payload);
        buf.extend_from_slice(b"\"}");
        self.out.check();
    }
}

fn push_opt_i64(buf: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(v) => push_i64(buf, v),
        None => buf.extend_from_slice(b"null"),
    }
}

fn push_id(buf: &mut Vec<u8>, id: StreamId) {
    buf.push(b'"');
    push_u64(buf, id.ms);
    buf.push(b'-');
    push_u64(buf, id.seq);
    buf.push(b'"');
}

fn push_score(buf: &mut Vec<u8>, v: f64) {
    if v.is_infinite() {
        buf.push(b'"');
        push_f64(buf, v);
        buf.push(b'"');
    } else if v.is_nan() {
        // The walker rejects NaN scores; never emit invalid JSON regardless.
        buf.extend_from_slice(b"null");
    } else {
        push_f64(buf, v);
    }
}

/// Elements longer than this are written in pieces of `PIECE` bytes, the buffer handed to the
/// writer as it fills, so that a huge value costs its own bytes once and not twice.
const BIG_ELEM: usize = 4 << 20;
const PIECE: usize = 1 << 20;
/// Base64 pieces: a multiple of 3 bytes, so that no padding falls inside the value.
const B64_PIECE: usize = 3 << 18;

/// `push_elem` into `out`, then the buffer handed over if it is full.
#[inline]
fn push_elem_out(out: &mut Out<'_>, e: Elem<'_>) {
    match e {
        Elem::Bytes(b) if b.len() > BIG_ELEM => push_big_bytes(out, b),
        e => push_elem(&mut out.buf, e),
    }
    out.check();
}

/// `push_bytes` of a long byte string, piece by piece (the same text).
#[cold]
fn push_big_bytes(out: &mut Out<'_>, b: &[u8]) {
    if std::str::from_utf8(b).is_ok() {
        out.buf.push(b'"');
        let mut rest = b;
        while !rest.is_empty() {
            let mut cut = rest.len().min(PIECE);
            // Not inside a UTF-8 sequence: each piece is valid UTF-8 on its own.
            while cut < rest.len() && rest[cut] & 0xC0 == 0x80 {
                cut -= 1;
            }
            let at = out.buf.len();
            push_bytes(&mut out.buf, &rest[..cut]);
            // push_bytes quotes the piece; the quotes belong to the whole string.
            out.buf.remove(at);
            out.buf.pop();
            rest = &rest[cut..];
            out.check();
        }
        out.buf.push(b'"');
    } else {
        out.buf.extend_from_slice(b"{\"base64\":\"");
        for piece in b.chunks(B64_PIECE) {
            push_base64(&mut out.buf, piece);
            out.check();
        }
        out.buf.extend_from_slice(b"\"}");
    }
}

/// An element: integers are the decimal text of a byte string, so they are JSON strings.
#[inline]
pub fn push_elem(buf: &mut Vec<u8>, e: Elem<'_>) {
    match e {
        Elem::Bytes(b) => push_bytes(buf, b),
        Elem::Int(i) => {
            let mut tmp = [0u8; 20];
            buf.push(b'"');
            buf.extend_from_slice(format_i64(i, &mut tmp));
            buf.push(b'"');
        }
    }
}

/// Bytes in the JSON vocabulary: a string when UTF-8, else `{"base64":"..."}`.
///
/// One pass does both jobs: 8 bytes at a time, a word mask finds the next byte that needs a look
/// (below 0x20, `"`, `\\`, or non-ASCII before the UTF-8 check); the plain run before it is copied
/// at once (a short run as one fixed-size move). At the first non-ASCII byte the rest is checked
/// for UTF-8 once (base64 when it is not). Runs of one control byte (NUL padding is common) are
/// written in a tight loop.
#[inline]
pub fn push_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let at = buf.len();
    buf.reserve(b.len() + 2);
    buf.push(b'"');
    let n = b.len();
    let mut i = 0;
    let mut run = 0;
    let mut checked = false;
    loop {
        let pos = loop {
            #[cfg(target_arch = "x86_64")]
            if i + 16 <= n {
                match find_special_16(b, i, checked) {
                    Some(p) => break p,
                    None => {
                        i += 16;
                        continue;
                    }
                }
            }
            let w = if i + 8 <= n {
                let mut w = [0u8; 8];
                w.copy_from_slice(&b[i..i + 8]);
                u64::from_le_bytes(w)
            } else if i < n {
                tail_word(b, i)
            } else {
                break n;
            };
            let m = special_mask(w, checked);
            if m != 0 {
                break i + (m.trailing_zeros() / 8) as usize;
            }
            i += 8;
        };
        if pos >= n {
            break;
        }
        let c = b[pos];
        if c >= 0x80 {
            if !checked {
                if std::str::from_utf8(&b[pos..]).is_err() {
                    buf.truncate(at);
                    buf.extend_from_slice(b"{\"base64\":\"");
                    push_base64(buf, b);
                    buf.extend_from_slice(b"\"}");
                    return;
                }
                checked = true;
            }
            // Part of the plain run from now on.
            i = pos + 1;
            continue;
        }
        if pos > run {
            push_run(buf, b, run, pos);
        }
        let e = ESCAPE[c as usize];
        if e != b'u' {
            // Quotes and backslashes, one at a time (JSON inside JSON: one every few bytes).
            buf.extend_from_slice(&[b'\\', e]);
            run = pos + 1;
            i = pos + 1;
            continue;
        }
        // Runs of one control byte (NUL padding) in a tight loop.
        let mut end = pos + 1;
        while end < n && b[end] == c {
            end += 1;
        }
        let seq = [b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]];
        push_repeated(buf, &seq, end - pos);
        run = end;
        i = end;
    }
    if n > run {
        buf.extend_from_slice(&b[run..]);
    }
    buf.push(b'"');
}

/// Appends `seq` `count` times: a run of one escaped control byte (the NUL padding of fixed-size
/// strings is common), 16 copies at a time.
#[inline(always)]
fn push_repeated(buf: &mut Vec<u8>, seq: &[u8; 6], count: usize) {
    const K: usize = 16;
    if count < 4 {
        for _ in 0..count {
            buf.extend_from_slice(seq);
        }
        return;
    }
    let mut block = [0u8; 6 * K];
    for s in block.chunks_exact_mut(6) {
        s.copy_from_slice(seq);
    }
    buf.reserve(6 * count);
    let mut left = count;
    while left >= K {
        buf.extend_from_slice(&block);
        left -= K;
    }
    buf.extend_from_slice(&block[..6 * left]);
}

/// The first byte of `b[i..i + 16]` that needs a look (as `special_mask` decides), with SSE2
/// (part of every x86-64): 16 bytes a step instead of 8.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn find_special_16(b: &[u8], i: usize, checked: bool) -> Option<usize> {
    use std::arch::x86_64::*;
    let block: &[u8; 16] = b[i..i + 16].try_into().expect("16 bytes");
    // Safety: SSE2 is part of the x86-64 baseline; the load reads exactly the 16 bytes of `block`
    // (unaligned loads are allowed).
    let mask = unsafe {
        let v = _mm_loadu_si128(block.as_ptr() as *const __m128i);
        // Unsigned v <= 0x1f: min(v, 0x1f) == v.
        let ctrl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        let m = _mm_movemask_epi8(_mm_or_si128(ctrl, _mm_or_si128(quote, backslash))) as u32;
        if checked { m } else { m | _mm_movemask_epi8(v) as u32 }
    };
    (mask != 0).then(|| i + mask.trailing_zeros() as usize)
}

/// Appends `b[from..to]`. Runs between escapes are short when strings hold JSON (a quote every
/// few bytes): a short one is copied as one fixed 16-byte move and cut back, not by a call.
#[inline(always)]
fn push_run(buf: &mut Vec<u8>, b: &[u8], from: usize, to: usize) {
    const SHORT: usize = 16;
    let len = to - from;
    match b.get(from..from + SHORT) {
        Some(s) if len <= SHORT => {
            let at = buf.len();
            let block: &[u8; SHORT] = s.try_into().expect("16 bytes");
            buf.extend_from_slice(block);
            buf.truncate(at + len);
        }
        _ => buf.extend_from_slice(&b[from..to]),
    }
}

/// High bit set in each byte of `x` that needs a look (exact per byte: no carries between
/// bytes, so the lowest set bit is the first such byte).
#[inline(always)]
fn special_mask(x: u64, checked: bool) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const L: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let ctrl = !((x & L).wrapping_add(ONES * 0x60) | x) & HIGH;
    let q = x ^ (ONES * b'"' as u64);
    let qz = !((q & L).wrapping_add(L) | q) & HIGH;
    let s = x ^ (ONES * b'\\' as u64);
    let sz = !((s & L).wrapping_add(L) | s) & HIGH;
    let hi = if checked { 0 } else { x & HIGH };
    ctrl | qz | sz | hi
}

/// The last 1 to 7 bytes from `i` as a word, padded with spaces (which need no escaping).
#[inline(always)]
fn tail_word(b: &[u8], i: usize) -> u64 {
    const SPACES: u64 = 0x2020_2020_2020_2020;
    let n = b.len();
    let rem = n - i;
    if n >= 8 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[n - 8..]);
        (u64::from_le_bytes(w) >> (8 * (8 - rem))) | (SPACES << (8 * rem))
    } else {
        let mut w = SPACES;
        for (k, &c) in b[i..].iter().enumerate() {
            w = (w & !(0xff << (8 * k))) | ((c as u64) << (8 * k));
        }
        w
    }
}

/// For each byte: 0 = copy as is, `u` = `\u00XX`, else the letter after a backslash.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0A] = b'n';
    t[0x0C] = b'f';
    t[0x0D] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Standard base64 with padding, appended.
pub fn push_base64(buf: &mut Vec<u8>, b: &[u8]) {
    let at = buf.len();
    match base64::encoded_len(b.len(), true) {
        Some(n) => {
            buf.resize(at + n, 0);
            match STANDARD.encode_slice(b, &mut buf[at..]) {
                Ok(written) => buf.truncate(at + written),
                Err(_) => {
                    buf.truncate(at);
                    buf.extend_from_slice(STANDARD.encode(b).as_bytes());
                }
            }
        }
        None => buf.extend_from_slice(STANDARD.encode(b).as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_element_is_written_in_pieces_as_the_same_text() {
        // UTF-8 with multibyte characters, quotes and control bytes around the piece boundaries.
        let unit = "ab\u{e9}\u{20ac}\"\\\n\u{1f600}x".as_bytes();
        let utf8: Vec<u8> = unit.iter().copied().cycle().take((20 << 20) + 7).collect();
        let utf8 =
            &utf8[..utf8.len() - std::str::from_utf8(&utf8).map_or_else(|e| utf8.len() - e.valid_up_to(), |_| 0)];
        let mut binary = utf8.to_vec();
        binary[PIECE + 1] = 0xff;
        for b in [utf8, &binary[..]] {
            let mut whole = Vec::new();
            push_bytes(&mut whole, b);
            let mut written = Vec::new();
            let mut out = Out::new(&mut written);
            push_big_bytes(&mut out, b);
            assert!(out.buf.len() < (16 << 20) + 2 * PIECE, "the buffer was not handed over");
            out.finish().unwrap();
            assert_eq!(written.len(), whole.len());
            assert!(written == whole, "pieces differ from the whole");
        }
    }

    fn s(b: &[u8]) -> String {
        let mut v = Vec::new();
        push_bytes(&mut v, b);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn byte_strings() {
        assert_eq!(s(b"plain"), "\"plain\"");
        assert_eq!(s(b""), "\"\"");
        assert_eq!(s("é\"\\\n\t\x01\x7f".as_bytes()), "\"é\\\"\\\\\\n\\t\\u0001\x7f\"");
        assert_eq!(s(b"\xff\x00"), "{\"base64\":\"/wA=\"}");
        // Every byte string round-trips through the vocabulary.
        for b in [
            &b"a\x00b"[..],
            b"\x1f\x20",
            "日本".as_bytes(),
            b"\xc3",
            b"\x80abc",
            b"0123456789abcdef\"0123456789\\abcdef\n",
            "0123456789é0123456789\"0123456789".as_bytes(),
            b"0123456789abcdef0123456789\xff",
            b"\xed\xa0\x80 surrogate",
        ] {
            let j: serde_json::Value = serde_json::from_str(&s(b)).unwrap();
            assert_eq!(crate::json::to_bytes(&j).unwrap(), b);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_round_trip(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
                                text in ".{0,40}") {
            for input in [b.clone(), text.clone().into_bytes()] {
                let out = s(&input);
                let j: serde_json::Value = serde_json::from_str(&out).unwrap();
                proptest::prop_assert_eq!(crate::json::to_bytes(&j).unwrap(), input.clone());
                proptest::prop_assert_eq!(j.is_string(), std::str::from_utf8(&input).is_ok());
            }
        }
    }

    #[test]
    fn runs_of_control_bytes_are_escaped_like_serde_json() {
        for len in [1usize, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 36, 100] {
            for c in [0u8, 1, 0x1f, b'\n'] {
                let mut b = b"value:1".to_vec();
                b.extend(std::iter::repeat_n(c, len));
                b.extend_from_slice(b"x");
                b.extend(std::iter::repeat_n(c, len));
                let text = std::str::from_utf8(&b).unwrap();
                assert_eq!(s(&b), serde_json::to_string(text).unwrap(), "{len} x {c:#x}");
            }
        }
    }

    #[test]
    fn elements() {
        let mut v = Vec::new();
        push_elem(&mut v, Elem::Int(-42));
        assert_eq!(v, b"\"-42\"");
    }
}
