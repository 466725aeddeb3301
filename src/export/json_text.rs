//! JSON text written straight into export's output buffer, without serde: byte strings in the
//! vocabulary of `crate::json` (a JSON string when the bytes are UTF-8, otherwise
//! `{"base64": "..."}`) through a hand-written escaper that copies runs of plain bytes eight at a
//! time, elements, scores and stream ids; a long element is written in pieces, the buffer handed
//! to the writer as it fills.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Out, push_f64, push_i64, push_u64};
use crate::rdb::cursor::Elem;
use crate::rdb::decimal::format_i64;
use crate::rdb::value::StreamId;

pub(super) fn push_opt_i64(buf: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(v) => push_i64(buf, v),
        None => buf.extend_from_slice(b"null"),
    }
}

pub(super) fn push_id(buf: &mut Vec<u8>, id: StreamId) {
    buf.push(b'"');
    push_u64(buf, id.ms);
    buf.push(b'-');
    push_u64(buf, id.seq);
    buf.push(b'"');
}

pub(super) fn push_score(buf: &mut Vec<u8>, v: f64) {
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
pub(super) fn push_elem_out(out: &mut Out<'_>, e: Elem<'_>) {
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
pub(super) fn push_elem(buf: &mut Vec<u8>, e: Elem<'_>) {
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
pub(crate) fn push_bytes(buf: &mut Vec<u8>, b: &[u8]) {
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
pub(super) fn push_base64(buf: &mut Vec<u8>, b: &[u8]) {
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
