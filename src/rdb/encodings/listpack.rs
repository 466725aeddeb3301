//! Listpack (Redis >= 5 streams, >= 7 hashes/zsets/lists/sets).
//!
//! `total_bytes u32le | num_elements u16le | entries | 0xFF`; entry = encoding+data, then the
//! back-length: the size of encoding+data in 7-bit groups, which Redis requires in its canonical
//! (shortest) form.

use super::Blob;
use crate::error::Result;
use crate::rdb::cursor::Elem;

/// Header size: `total_bytes` and `num_elements`.
pub const HEADER: usize = 6;
/// `num_elements` saturates here; the real count must then be found by walking.
pub const UNKNOWN_COUNT: u16 = u16::MAX;

/// The elements of a listpack (docs/format.md §6.2), validated as they are read.
pub struct ListpackIter<'b> {
    blob: Blob<'b>,
    pos: usize,
    declared: u16,
    seen: usize,
}

impl<'b> ListpackIter<'b> {
    /// Checks the header's size against the blob and the terminator.
    pub fn new(blob: Blob<'b>) -> Result<ListpackIter<'b>> {
        let d = blob.data;
        if d.len() < HEADER + 1 {
            return Err(blob.err(0, format!("{} bytes cannot hold a listpack header and terminator", d.len())));
        }
        let total = u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize;
        if total != d.len() {
            return Err(blob.err(0, format!("header says {total} bytes, the string holds {}", d.len())));
        }
        if d[d.len() - 1] != 0xFF {
            return Err(blob.err(d.len() - 1, "last byte is not the 0xFF terminator"));
        }
        let declared = u16::from_le_bytes([d[4], d[5]]);
        Ok(ListpackIter { blob, pos: HEADER, declared, seen: 0 })
    }

    /// The element count from the header, unless saturated.
    pub fn declared_count(&self) -> Option<usize> {
        (self.declared != UNKNOWN_COUNT).then_some(self.declared as usize)
    }

    /// The blob being read.
    pub fn blob(&self) -> &Blob<'b> {
        &self.blob
    }

    /// Position of the next entry inside the blob.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Next element; `None` after the terminator, once the count has been checked.
    ///
    /// The entries most listpacks are made of (a string of up to 63 bytes, an integer of 7, 13,
    /// 16, 24 or 32 bits, each with its one-byte back-length) are taken inline; anything else, the terminator
    /// and every error go through `next_elem_slow`, which checks them all. The fast path accepts
    /// an entry only where the slow one would return the same element and end.
    #[inline(always)]
    pub fn next_elem(&mut self) -> Result<Option<Elem<'b>>> {
        let d = self.blob.data;
        let p = self.pos;
        // `p < d.len() - 1` (an entry, not the terminator) and the entry with its back-length
        // ends before the terminator: `q + 1 <= d.len() - 1`.
        if let Some(&b) = d.get(p) {
            let (elem, enc_len) = if b & 0xC0 == 0x80 {
                let len = (b & 0x3f) as usize;
                match d.get(p + 1..p + 1 + len) {
                    Some(s) => (Elem::Bytes(s), 1 + len),
                    None => return self.next_elem_slow(),
                }
            } else if b & 0x80 == 0 {
                (Elem::Int(b as i64), 1)
            } else if b & 0xE0 == 0xC0 {
                match d.get(p + 1) {
                    Some(&lo) => {
                        let u = (((b & 0x1f) as i64) << 8) | lo as i64;
                        (Elem::Int(if u >= 4096 { u - 8192 } else { u }), 2)
                    }
                    None => return self.next_elem_slow(),
                }
            } else if (0xF1..=0xF3).contains(&b) {
                // i16, i24, i32: 2-4 bytes after the encoding byte, sign-extended from the top.
                let n = (b - 0xEF) as usize;
                match d.get(p + 1..p + 5) {
                    Some(w) => {
                        let v = u32::from_le_bytes(w.try_into().unwrap()) as i32;
                        let shift = 32 - 8 * n as u32;
                        (Elem::Int(((v << shift) >> shift) as i64), 1 + n)
                    }
                    None => return self.next_elem_slow(),
                }
            } else {
                return self.next_elem_slow();
            };
            let q = p + enc_len;
            if q + 1 < d.len() && d[q] == enc_len as u8 {
                self.pos = q + 1;
                self.seen += 1;
                return Ok(Some(elem));
            }
        }
        self.next_elem_slow()
    }

    /// `next_elem` for every entry and case: the terminator, the count, every encoding and
    /// every error.
    #[inline(never)]
    fn next_elem_slow(&mut self) -> Result<Option<Elem<'b>>> {
        let d = self.blob.data;
        let p = self.pos;
        // The constructor checked that the last byte is 0xFF, so `p` is always in bounds here.
        let b = d[p];
        if b == 0xFF {
            if p != d.len() - 1 {
                return Err(self.blob.err(p, format!("terminator at byte {p} but the listpack is {} bytes", d.len())));
            }
            if self.declared != UNKNOWN_COUNT && self.declared as usize != self.seen {
                return Err(self
                    .blob
                    .err(p, format!("header declares {} elements, found {}", self.declared, self.seen)));
            }
            return Ok(None);
        }
        // Bytes available for encoding+data+backlen: everything before the terminator.
        let avail = d.len() - 1 - p;
        let need = |n: usize| -> Result<()> {
            if n > avail { Err(self.blob.err(p, format!("entry of {n} bytes runs past the end"))) } else { Ok(()) }
        };
        let (elem, enc_len) = if b & 0x80 == 0 {
            (Elem::Int((b & 0x7f) as i64), 1)
        } else if b & 0xC0 == 0x80 {
            let len = (b & 0x3f) as usize;
            need(1 + len)?;
            (Elem::Bytes(&d[p + 1..p + 1 + len]), 1 + len)
        } else if b & 0xE0 == 0xC0 {
            need(2)?;
            let u = (((b & 0x1f) as i64) << 8) | d[p + 1] as i64;
            (Elem::Int(if u >= 4096 { u - 8192 } else { u }), 2)
        } else if b & 0xF0 == 0xE0 {
            need(2)?;
            let len = (((b & 0x0f) as usize) << 8) | d[p + 1] as usize;
            need(2 + len)?;
            (Elem::Bytes(&d[p + 2..p + 2 + len]), 2 + len)
        } else {
            match b {
                0xF0 => {
                    need(5)?;
                    let len = u32::from_le_bytes([d[p + 1], d[p + 2], d[p + 3], d[p + 4]]) as usize;
                    need(5usize.saturating_add(len))?;
                    (Elem::Bytes(&d[p + 5..p + 5 + len]), 5 + len)
                }
                0xF1 => {
                    need(3)?;
                    (Elem::Int(i16::from_le_bytes([d[p + 1], d[p + 2]]) as i64), 3)
                }
                0xF2 => {
                    need(4)?;
                    let v = i32::from_le_bytes([0, d[p + 1], d[p + 2], d[p + 3]]) >> 8;
                    (Elem::Int(v as i64), 4)
                }
                0xF3 => {
                    need(5)?;
                    (Elem::Int(i32::from_le_bytes([d[p + 1], d[p + 2], d[p + 3], d[p + 4]]) as i64), 5)
                }
                0xF4 => {
                    need(9)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&d[p + 1..p + 9]);
                    (Elem::Int(i64::from_le_bytes(a)), 9)
                }
                _ => {
                    return Err(self.blob.err(p, format!("invalid entry encoding byte 0x{b:02x}")));
                }
            }
        };
        let q = p + enc_len;
        let bl_len = if enc_len <= 127 {
            // The common case, checked without building the encoding.
            need(enc_len + 1)?;
            if d[q] != enc_len as u8 {
                return Err(self.blob.err(q, format!("back-length does not encode the entry size {enc_len}")));
            }
            1
        } else {
            let mut bl = [0u8; 5];
            let bl_len = encode_backlen(enc_len, &mut bl);
            need(enc_len + bl_len)?;
            if (0..bl_len).any(|i| d[q + i] != bl[i]) {
                return Err(self.blob.err(q, format!("back-length does not encode the entry size {enc_len}")));
            }
            bl_len
        };
        self.pos = q + bl_len;
        self.seen += 1;
        Ok(Some(elem))
    }

    /// Walks to the end, checking every entry.
    pub fn count_all(mut self) -> Result<usize> {
        while self.next_elem()?.is_some() {}
        Ok(self.seen)
    }
}

/// The canonical back-length bytes for an entry of `n` bytes; returns how many were written.
pub fn encode_backlen(n: usize, out: &mut [u8; 5]) -> usize {
    if n <= 127 {
        out[0] = n as u8;
        1
    } else if n < 16383 {
        out[0] = (n >> 7) as u8;
        out[1] = (n & 127) as u8 | 128;
        2
    } else if n < 2097151 {
        out[0] = (n >> 14) as u8;
        out[1] = ((n >> 7) & 127) as u8 | 128;
        out[2] = (n & 127) as u8 | 128;
        3
    } else if n < 268435455 {
        out[0] = (n >> 21) as u8;
        out[1] = ((n >> 14) & 127) as u8 | 128;
        out[2] = ((n >> 7) & 127) as u8 | 128;
        out[3] = (n & 127) as u8 | 128;
        4
    } else {
        out[0] = (n >> 28) as u8;
        out[1] = ((n >> 21) & 127) as u8 | 128;
        out[2] = ((n >> 14) & 127) as u8 | 128;
        out[3] = ((n >> 7) & 127) as u8 | 128;
        out[4] = (n & 127) as u8 | 128;
        5
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every element (or the error) of `blob`, read by `next_elem` (`fast`) or by the general
    /// path alone.
    fn read_all(data: &[u8], fast: bool) -> Vec<Result<Option<(String, usize)>>> {
        let blob = Blob { data, offset: 100, compressed: false, what: "listpack" };
        let mut out = Vec::new();
        let Ok(mut it) = ListpackIter::new(blob) else { return out };
        loop {
            let r = if fast { it.next_elem() } else { it.next_elem_slow() };
            let stop = !matches!(r, Ok(Some(_)));
            out.push(r.map(|o| o.map(|e| (format!("{e:?}"), it.pos()))));
            if stop {
                return out;
            }
        }
    }

    /// A listpack of `entries` (raw entry bytes, back-lengths included or not), with a header
    /// that fits the blob (or not, by `count`).
    fn blob(entries: &[Vec<u8>], count: u16) -> Vec<u8> {
        let mut d = vec![0; HEADER];
        for e in entries {
            d.extend_from_slice(e);
        }
        d.push(0xFF);
        let n = d.len() as u32;
        d[..4].copy_from_slice(&n.to_le_bytes());
        d[4..6].copy_from_slice(&count.to_le_bytes());
        d
    }

    /// One entry: a valid encoding of some element with its back-length, most of the time, or
    /// a few arbitrary bytes.
    fn entry() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (0u8..128).prop_map(|v| vec![v, 1]),
            proptest::collection::vec(any::<u8>(), 0..70).prop_map(|s| {
                let mut e = if s.len() < 64 { vec![0x80 | s.len() as u8] } else { vec![0xE0, s.len() as u8] };
                e.extend_from_slice(&s);
                let n = e.len() as u8;
                e.push(n);
                e
            }),
            (any::<u16>()).prop_map(|v| vec![0xC0 | ((v >> 8) as u8 & 0x1f), v as u8, 2]),
            (0xF1u8..=0xF4, any::<u64>()).prop_map(|(b, v)| {
                let n = [2, 3, 4, 8][(b - 0xF1) as usize];
                let mut e = vec![b];
                e.extend_from_slice(&v.to_le_bytes()[..n]);
                e.push(1 + n as u8);
                e
            }),
            proptest::collection::vec(any::<u8>(), 1..6),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The inline path returns what the general one returns, entry by entry, on valid and
        /// damaged listpacks alike (a flipped byte, a wrong count).
        #[test]
        fn fast_path_agrees_with_the_general_one(
            entries in proptest::collection::vec(entry(), 0..12),
            flip in any::<Option<(prop::sample::Index, u8)>>(),
            count in prop_oneof![Just(None), any::<u16>().prop_map(Some)],
        ) {
            let mut d = blob(&entries, count.unwrap_or(entries.len() as u16));
            if let Some((i, x)) = flip {
                let i = HEADER + i.index(d.len() - HEADER);
                d[i] ^= x;
            }
            let fast = read_all(&d, true);
            let slow = read_all(&d, false);
            prop_assert_eq!(fast.len(), slow.len());
            for (f, s) in fast.iter().zip(&slow) {
                match (f, s) {
                    (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                    (Err(a), Err(b)) => prop_assert_eq!((a.offset, &a.message), (b.offset, &b.message)),
                    _ => prop_assert!(false, "{f:?} vs {s:?}"),
                }
            }
        }
    }
}
