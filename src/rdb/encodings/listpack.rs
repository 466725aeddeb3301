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
    #[inline]
    pub fn next_elem(&mut self) -> Result<Option<Elem<'b>>> {
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
