//! The byte-level cursor over a borrowed slice and the RDB primitives on top of it: length fields,
//! strings (raw, integer, LZF), doubles and times. Every read is bounds-checked; a short read is a
//! `Truncated` error at the offset where the missing bytes should have been.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::rdb::decimal::{format_i64, itoa_len};
use crate::rdb::lzf;

/// An RDB length field, or the special-string marker that may stand where a string is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    /// A length (docs/format.md §3.1), any of its four forms.
    Plain(u64),
    /// `11kkkkkk`: string encoding `k` (0 INT8, 1 INT16, 2 INT32, 3 LZF).
    Special(u8),
}

/// An RDB string as it sits in the file: nothing decoded, nothing copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdbStr<'a> {
    /// Stored as its bytes, borrowed from the input.
    Raw(&'a [u8]),
    /// Stored as an 8, 16 or 32-bit integer; the string is its decimal text.
    Int(i64),
    /// Stored LZF-compressed (docs/format.md §3.3); not yet checked to decompress.
    Lzf {
        /// The compressed bytes, borrowed from the input.
        compressed: &'a [u8],
        /// The declared decompressed length; [`Cursor::str`] has checked it against what LZF
        /// can reach from `compressed.len()` bytes.
        ulen: usize,
        /// File offset of `compressed[0]`, for errors.
        offset: u64,
    },
}

/// LZF cannot expand more than this: a 3-byte back-reference token yields at most 264 bytes.
const LZF_MAX_RATIO: usize = 88;

impl<'a> RdbStr<'a> {
    /// The logical length in bytes.
    pub fn len(&self) -> usize {
        match self {
            RdbStr::Raw(b) => b.len(),
            RdbStr::Int(i) => itoa_len(*i),
            RdbStr::Lzf { ulen, .. } => *ulen,
        }
    }
    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decoded bytes; borrowed unless the string was LZF- or integer-encoded.
    pub fn to_cow(&self) -> Result<Cow<'a, [u8]>> {
        Ok(match *self {
            RdbStr::Raw(b) => Cow::Borrowed(b),
            RdbStr::Int(i) => Cow::Owned(i.to_string().into_bytes()),
            RdbStr::Lzf { compressed, ulen, offset } => {
                let mut out = Vec::new();
                lzf::decompress_into(compressed, ulen, &mut out).map_err(|e| Error::corrupt(offset, e.to_string()))?;
                Cow::Owned(out)
            }
        })
    }

    /// Decoded bytes, decompressing into `scratch` when needed (no allocation once warmed up).
    pub fn bytes<'s>(&self, scratch: &'s mut Vec<u8>) -> Result<Elem<'s>>
    where
        'a: 's,
    {
        Ok(match *self {
            RdbStr::Raw(b) => Elem::Bytes(b),
            RdbStr::Int(i) => Elem::Int(i),
            RdbStr::Lzf { compressed, ulen, offset } => {
                lzf::decompress_into(compressed, ulen, scratch).map_err(|e| Error::corrupt(offset, e.to_string()))?;
                Elem::Bytes(scratch.as_slice())
            }
        })
    }

    /// Checks that the string decodes, without producing it.
    pub fn validate(&self) -> Result<()> {
        match *self {
            RdbStr::Lzf { compressed, ulen, offset } => {
                lzf::validate(compressed, ulen).map_err(|e| Error::corrupt(offset, e.to_string()))
            }
            _ => Ok(()),
        }
    }
}

/// One logical element: a byte string, or an integer that stands for its decimal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'b> {
    /// The element's bytes.
    Bytes(&'b [u8]),
    /// An integer entry; the element is its decimal text.
    Int(i64),
}

impl<'b> Elem<'b> {
    /// Calls `f` with the element's bytes (integers rendered on the stack).
    #[inline]
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match *self {
            Elem::Bytes(b) => f(b),
            Elem::Int(i) => {
                let mut buf = [0u8; 20];
                f(format_i64(i, &mut buf))
            }
        }
    }
    /// The element's bytes, owned (an integer as its decimal text).
    pub fn to_vec(&self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }
    /// The element's length in bytes (an integer's: the length of its decimal text).
    pub fn len(&self) -> usize {
        match *self {
            Elem::Bytes(b) => b.len(),
            Elem::Int(i) => itoa_len(i),
        }
    }
    /// True for the empty string (never for an integer).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A read position in a borrowed byte slice that knows the slice's file offset. Every read
/// checks the bytes that remain first and names what it was reading in its error, so a short or
/// damaged input is an [`Error`] with an offset, never a panic. After an error the position is
/// unspecified: callers stop reading there.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// File offset of `buf[0]`, so errors name positions in the file.
    base: u64,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`, whose first byte is at file offset `base`.
    pub fn new(buf: &'a [u8], base: u64) -> Cursor<'a> {
        Cursor { buf, pos: 0, base }
    }
    /// The position in `buf` (0 at its start).
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }
    /// The position as a file offset (`base + pos`).
    #[inline]
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }
    /// A hint that the bytes a page ahead will be read soon: asked for before each record and
    /// each element, so the next page's translation and first line are there when the cursor
    /// gets to it (a CPU's own prefetcher does not cross pages, and a mapped file's pages are
    /// scattered in memory).
    #[inline(always)]
    pub fn prefetch_page_ahead(&self) {
        const PAGE: usize = 4096;
        if let Some(b) = self.buf.get(self.pos + PAGE) {
            crate::hint::prefetch(b);
        }
    }
    /// Asks for every line from `asked` (or the position, if further) to `LINES_AHEAD` bytes
    /// ahead of the position, once each; returns where the next call starts. The records'
    /// `prefetch_page_ahead` reaches a few lines of each page: this one all of them, before
    /// the cursor gets there.
    #[inline(always)]
    pub fn prefetch_lines(&self, asked: usize) -> usize {
        const LINES_AHEAD: usize = 1536;
        let end = (self.pos + LINES_AHEAD).min(self.buf.len());
        let mut at = asked.max(self.pos);
        while at < end {
            crate::hint::prefetch(&self.buf[at]);
            at += 64;
        }
        at
    }
    /// The file offset of `buf[0]`.
    pub fn base(&self) -> u64 {
        self.base
    }
    /// Bytes left after the position.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }
    /// The whole buffer, read or not.
    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }
    /// Bytes from `start` (a position in this buffer) to the current position.
    pub fn since(&self, start: usize) -> &'a [u8] {
        &self.buf[start..self.pos]
    }
    /// Moves to position `pos` in the buffer (clamped to its end).
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.buf.len());
    }

    #[cold]
    fn short(&self, what: &str, need: usize) -> Error {
        Error::truncated(
            self.offset(),
            format!("unexpected end of input reading {what}: need {need} bytes, {} left", self.remaining()),
        )
    }

    /// The next `n` bytes, borrowed. `what` names the field in the error when fewer remain.
    #[inline]
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(self.short(what, n));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// The next `N` bytes, copied into an array.
    #[inline]
    pub fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    /// The next byte.
    #[inline]
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.short(what, 1)),
        }
    }
    /// The next byte without consuming it; `None` at the end.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }
    /// A little-endian `u32`.
    pub fn u32le(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    /// A little-endian `i64` (an `MS` time, docs/format.md §3.5).
    pub fn i64le(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }
    /// A little-endian `f64` (binary scores, module doubles; docs/format.md §3.4).
    pub fn f64le(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    /// An RDB length field, or the special-string marker.
    #[inline(always)]
    pub fn len_or_special(&mut self, what: &str) -> Result<Len> {
        // One-byte forms (6-bit lengths, string markers) are most lengths in real files.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x40 {
                self.pos += 1;
                return Ok(Len::Plain(b as u64));
            }
            if b >= 0xC0 {
                self.pos += 1;
                return Ok(Len::Special(b & 0x3f));
            }
        }
        self.len_or_special_slow(what)
    }

    #[inline(never)]
    fn len_or_special_slow(&mut self, what: &str) -> Result<Len> {
        let at = self.offset();
        let b = self.u8(what)?;
        match b >> 6 {
            0 => Ok(Len::Plain((b & 0x3f) as u64)),
            1 => {
                let b1 = self.u8(what)?;
                Ok(Len::Plain((((b & 0x3f) as u64) << 8) | b1 as u64))
            }
            2 => match b {
                0x80 => Ok(Len::Plain(u32::from_be_bytes(self.array(what)?) as u64)),
                0x81 => Ok(Len::Plain(u64::from_be_bytes(self.array(what)?))),
                _ => Err(Error::corrupt(at, format!("invalid length prefix 0x{b:02x} reading {what}"))),
            },
            _ => Ok(Len::Special(b & 0x3f)),
        }
    }

    /// An RDB length field where a plain length is required.
    #[inline]
    pub fn len(&mut self, what: &str) -> Result<u64> {
        let at = self.offset();
        match self.len_or_special(what)? {
            Len::Plain(n) => Ok(n),
            Len::Special(_) => {
                Err(Error::corrupt(at, format!("expected a length for {what}, found a string encoding marker")))
            }
        }
    }

    /// A length used as a count of following items; each item takes at least `min_item_bytes`, so
    /// a count larger than the remaining input allows is rejected before any loop or allocation.
    pub fn count(&mut self, what: &str, min_item_bytes: usize) -> Result<u64> {
        let at = self.offset();
        let n = self.len(what)?;
        let max = (self.remaining() / min_item_bytes.max(1)) as u64;
        if n > max {
            return Err(Error::truncated(
                at,
                format!("{what} claims {n} items but only {} bytes remain", self.remaining()),
            ));
        }
        Ok(n)
    }

    /// An RDB string, not decoded.
    #[inline(always)]
    pub fn str(&mut self, what: &str) -> Result<RdbStr<'a>> {
        if let Some(s) = self.short_raw() {
            return Ok(RdbStr::Raw(s));
        }
        self.str_slow(what)
    }

    /// Steps over the next string when it is raw with a 1- or 2-byte length, or an integer of
    /// 1, 2 or 4 bytes, and it fits: nothing in it can be wrong. False (nothing read) for any
    /// other form, which the caller reads through `str`.
    #[inline(always)]
    fn skip_plain_str(&mut self) -> bool {
        let Some(&b) = self.buf.get(self.pos) else { return false };
        let left = self.buf.len() - self.pos;
        let n = b as usize;
        if n < 0x40 && n < left {
            self.pos += 1 + n;
            return true;
        }
        if b & 0xC0 == 0x40 && left >= 2 {
            let n = ((n & 0x3f) << 8) | self.buf[self.pos + 1] as usize;
            if n <= left - 2 {
                self.pos += 2 + n;
                return true;
            }
        }
        // An integer of 1, 2 or 4 bytes (special encodings 0, 1, 2): any bytes are valid.
        if (0xC0..=0xC2).contains(&b) {
            let k = 1usize << (b & 3);
            if k < left {
                self.pos += 1 + k;
                return true;
            }
        }
        false
    }

    /// Steps over the next string when it is LZF-compressed with both lengths in their 1- or
    /// 2-byte forms and nothing `str` refuses about them: its compressed bytes, its claimed
    /// length and the file offset of the compressed bytes (what `str` gives). `None` (nothing
    /// read) otherwise: `str` reads it, and words any error.
    #[inline(always)]
    pub(crate) fn lzf_parts(&mut self) -> Option<(&'a [u8], usize, u64)> {
        let rest = self.buf.get(self.pos..)?;
        if rest.first() != Some(&0xC3) {
            return None;
        }
        // A length in its 1- or 2-byte form at `at`: (value, bytes it takes).
        let short_len = |at: usize| -> Option<(usize, usize)> {
            let b = *rest.get(at)? as usize;
            match b >> 6 {
                0 => Some((b, 1)),
                1 => Some((((b & 0x3f) << 8) | *rest.get(at + 1)? as usize, 2)),
                _ => None,
            }
        };
        let (clen, k1) = short_len(1)?;
        let (ulen, k2) = short_len(1 + k1)?;
        let start = 1 + k1 + k2;
        if clen == 0 || clen > rest.len() - start || ulen > clen.saturating_mul(LZF_MAX_RATIO) {
            return None;
        }
        let compressed = &rest[start..start + clen];
        let offset = self.offset() + start as u64;
        self.pos += start + clen;
        Some((compressed, ulen, offset))
    }

    /// Steps over an RDB string: `str` with the same errors, without building the `RdbStr`
    /// (raw strings with a 1- or 2-byte length and integers inline; the rest through `str`).
    #[inline(always)]
    pub fn skip_str(&mut self, what: &str) -> Result<()> {
        if self.skip_plain_str() || self.lzf_parts().is_some() {
            return Ok(());
        }
        self.skip_str_slow(what)
    }

    #[inline(never)]
    fn skip_str_slow(&mut self, what: &str) -> Result<()> {
        self.str_slow(what).map(|_| ())
    }

    /// Steps over an RDB string after checking that it decodes: `str` then
    /// [`RdbStr::validate`], with the same errors, without building the `RdbStr` for raw
    /// strings (most values of a file).
    #[inline(always)]
    pub fn skip_str_checked(&mut self, what: &str) -> Result<()> {
        if self.skip_plain_str() {
            return Ok(());
        }
        if let Some((compressed, ulen, offset)) = self.lzf_parts() {
            return RdbStr::Lzf { compressed, ulen, offset }.validate();
        }
        self.skip_str_checked_slow(what)
    }

    #[inline(never)]
    fn skip_str_checked_slow(&mut self, what: &str) -> Result<()> {
        self.str_slow(what)?.validate()
    }

    #[inline(never)]
    fn str_slow(&mut self, what: &str) -> Result<RdbStr<'a>> {
        let at = self.offset();
        match self.len_or_special(what)? {
            Len::Plain(n) => {
                if n > self.remaining() as u64 {
                    return Err(Error::truncated(
                        at,
                        format!("{what}: string of {n} bytes but only {} bytes remain", self.remaining()),
                    ));
                }
                Ok(RdbStr::Raw(self.take(n as usize, what)?))
            }
            Len::Special(0) => Ok(RdbStr::Int(self.u8(what)? as i8 as i64)),
            Len::Special(1) => Ok(RdbStr::Int(i16::from_le_bytes(self.array(what)?) as i64)),
            Len::Special(2) => Ok(RdbStr::Int(i32::from_le_bytes(self.array(what)?) as i64)),
            Len::Special(3) => {
                let clen = self.len(what)?;
                let ulen = self.len(what)?;
                if clen > self.remaining() as u64 {
                    return Err(Error::truncated(
                        at,
                        format!("{what}: LZF string of {clen} compressed bytes but only {} remain", self.remaining()),
                    ));
                }
                if clen == 0 || ulen > clen.saturating_mul(LZF_MAX_RATIO as u64) {
                    return Err(Error::corrupt(
                        at,
                        format!("{what}: LZF string claims {ulen} bytes from {clen} compressed bytes"),
                    ));
                }
                let data_at = self.offset();
                let compressed = self.take(clen as usize, what)?;
                Ok(RdbStr::Lzf { compressed, ulen: ulen as usize, offset: data_at })
            }
            Len::Special(k) => Err(Error::corrupt(at, format!("{what}: unknown string encoding {k}"))),
        }
    }

    /// An RDB string decoded to bytes (borrowed unless LZF or integer).
    #[inline(always)]
    pub fn str_cow(&mut self, what: &str) -> Result<Cow<'a, [u8]>> {
        // `str`'s fast path, building the `Cow` directly: every key is read here.
        if let Some(s) = self.short_raw() {
            return Ok(Cow::Borrowed(s));
        }
        self.str_cow_slow(what)
    }

    /// The next string when it is stored raw with a one-byte length (most members and fields),
    /// stepped over; `None` (nothing read) for any other form, which `str` then reads.
    #[inline(always)]
    pub fn short_raw(&mut self) -> Option<&'a [u8]> {
        let n = *self.buf.get(self.pos)? as usize;
        if n < 0x40 && n < self.buf.len() - self.pos {
            let start = self.pos + 1;
            self.pos = start + n;
            return Some(&self.buf[start..start + n]);
        }
        None
    }

    #[inline(never)]
    fn str_cow_slow(&mut self, what: &str) -> Result<Cow<'a, [u8]>> {
        self.str_slow(what)?.to_cow()
    }

    /// A string that must be stored raw with exactly `n` bytes in its decoded form (stream IDs);
    /// Redis accepts any string encoding here, so LZF/int forms are decoded into `scratch`.
    pub fn str_exact<'s>(&mut self, n: usize, what: &str, scratch: &'s mut Vec<u8>) -> Result<&'s [u8]>
    where
        'a: 's,
    {
        let at = self.offset();
        let s = self.str(what)?;
        let got = match s {
            RdbStr::Raw(b) => b,
            RdbStr::Int(i) => {
                scratch.clear();
                scratch.extend_from_slice(i.to_string().as_bytes());
                scratch.as_slice()
            }
            RdbStr::Lzf { compressed, ulen, offset } => {
                lzf::decompress_into(compressed, ulen, scratch).map_err(|e| Error::corrupt(offset, e.to_string()))?;
                scratch.as_slice()
            }
        };
        if got.len() != n {
            return Err(Error::corrupt(at, format!("{what}: expected {n} bytes, found {}", got.len())));
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    /// `skip_str_checked` is `str` then `validate`, and `skip_str` is `str`: same verdict, same
    /// error, same end.
    fn agree(buf: &[u8]) -> std::result::Result<(), TestCaseError> {
        let mut a = Cursor::new(buf, 100);
        let mut b = Cursor::new(buf, 100);
        let ra = a.skip_str_checked("s");
        let rb = b.str("s").and_then(|s| s.validate());
        prop_assert_eq!(&ra, &rb);
        if ra.is_ok() {
            prop_assert_eq!(a.pos(), b.pos());
        }
        // `skip_str` is `str` without the value: same verdict, same error, same end.
        let mut a = Cursor::new(buf, 100);
        let mut b = Cursor::new(buf, 100);
        let ra = a.skip_str("s");
        let rb = b.str("s").map(|_| ());
        prop_assert_eq!(&ra, &rb);
        if ra.is_ok() {
            prop_assert_eq!(a.pos(), b.pos());
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn skip_str_checked_agrees_with_str(first in prop_oneof![0u8..0x40, 0x40u8..0x80, 0x80u8..0xC0, 0xC0u8..=0xFF],
                                            rest in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut buf = vec![first];
            buf.extend(&rest);
            agree(&buf)?;
        }

        #[test]
        fn skip_str_checked_agrees_on_lzf(raw in proptest::collection::vec(prop_oneof![Just(b'a'), any::<u8>()], 1..200),
                                          cut in any::<prop::sample::Index>(), flip in any::<Option<(prop::sample::Index, u8)>>()) {
            let mut packed = vec![0u8; lzf_rust::max_compressed_size(raw.len())];
            let n = lzf_rust::compress(&raw, &mut packed).expect("room");
            packed.truncate(n);
            if let Some((i, v)) = flip {
                let i = i.index(packed.len());
                packed[i] = v;
            }
            let mut buf = vec![0xC3];
            crate::rdb::encode::write_len(&mut buf, packed.len() as u64);
            crate::rdb::encode::write_len(&mut buf, raw.len() as u64);
            buf.extend(&packed);
            agree(&buf)?;
            agree(&buf[..cut.index(buf.len())])?;
        }
    }
}
