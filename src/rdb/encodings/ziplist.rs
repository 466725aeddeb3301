//! Ziplist (RDB 2-9: lists, hashes, zsets, quicklist v1 nodes).
//!
//! `zlbytes u32le | zltail u32le | zllen u16le | entries | 0xFF`; entry = prevlen (1 byte, or
//! 0xFE + u32le) + encoding + data. Validation follows Redis's deep integrity check: each prevlen
//! equals the real size of the previous entry, zltail points at the last entry, the count matches.

use super::Blob;
use crate::error::Result;
use crate::rdb::cursor::Elem;

/// Header size: `zlbytes`, `zltail` and `zllen`.
pub const HEADER: usize = 10;
/// `zllen` saturates here; the real count must then be found by walking.
pub const UNKNOWN_COUNT: u16 = u16::MAX;

/// The entries of a ziplist (docs/format.md §6.1), validated as they are read.
pub struct ZiplistIter<'b> {
    blob: Blob<'b>,
    pos: usize,
    prev_len: usize,
    prev_start: usize,
    tail: usize,
    declared: u16,
    seen: usize,
}

impl<'b> ZiplistIter<'b> {
    /// Checks the header: `zlbytes` against the blob, the terminator, `zltail` inside the blob.
    pub fn new(blob: Blob<'b>) -> Result<ZiplistIter<'b>> {
        let d = blob.data;
        if d.len() < HEADER + 1 {
            return Err(blob.err(0, format!("{} bytes cannot hold a ziplist header and terminator", d.len())));
        }
        let total = u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize;
        if total != d.len() {
            return Err(blob.err(0, format!("header says {total} bytes, the string holds {}", d.len())));
        }
        if d[d.len() - 1] != 0xFF {
            return Err(blob.err(d.len() - 1, "last byte is not the 0xFF terminator"));
        }
        let tail = u32::from_le_bytes([d[4], d[5], d[6], d[7]]) as usize;
        if tail > d.len() - 1 {
            return Err(blob.err(4, format!("tail offset {tail} outside the ziplist")));
        }
        let declared = u16::from_le_bytes([d[8], d[9]]);
        Ok(ZiplistIter { blob, pos: HEADER, prev_len: 0, prev_start: HEADER, tail, declared, seen: 0 })
    }

    /// The blob being read.
    pub fn blob(&self) -> &Blob<'b> {
        &self.blob
    }
    /// Position of the next entry inside the blob.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The next entry; `None` after the terminator, once `zltail` and the count have been
    /// checked against what was read.
    ///
    /// # Errors
    ///
    /// A `prevlen` that is not the previous entry's size, an invalid encoding, an entry past the
    /// end, or a count or tail that does not match.
    #[inline]
    pub fn next_elem(&mut self) -> Result<Option<Elem<'b>>> {
        let d = self.blob.data;
        let p = self.pos;
        let end = d.len() - 1; // index of the terminator
        if d[p] == 0xFF {
            if p != end {
                return Err(self.blob.err(p, format!("terminator at byte {p} but the ziplist is {} bytes", d.len())));
            }
            let last = if self.seen == 0 { HEADER } else { self.prev_start };
            if self.tail != last {
                return Err(self.blob.err(4, format!("tail offset {} but the last entry is at {last}", self.tail)));
            }
            if self.declared != UNKNOWN_COUNT && self.declared as usize != self.seen {
                return Err(self
                    .blob
                    .err(8, format!("header declares {} entries, found {}", self.declared, self.seen)));
            }
            return Ok(None);
        }
        let avail = end - p;
        let need = |n: usize| -> Result<()> {
            if n > avail { Err(self.blob.err(p, format!("entry of {n} bytes runs past the end"))) } else { Ok(()) }
        };
        let (prevlen, plen_size) = if d[p] < 254 {
            (d[p] as usize, 1)
        } else {
            need(5)?;
            (u32::from_le_bytes([d[p + 1], d[p + 2], d[p + 3], d[p + 4]]) as usize, 5)
        };
        if prevlen != self.prev_len {
            return Err(self
                .blob
                .err(p, format!("prevlen {prevlen} but the previous entry is {} bytes", self.prev_len)));
        }
        let q = p + plen_size;
        need(plen_size + 1)?;
        let e = d[q];
        let (elem, size) = match e >> 6 {
            0 => {
                let len = (e & 0x3f) as usize;
                need(plen_size + 1 + len)?;
                (Elem::Bytes(&d[q + 1..q + 1 + len]), plen_size + 1 + len)
            }
            1 => {
                need(plen_size + 2)?;
                let len = (((e & 0x3f) as usize) << 8) | d[q + 1] as usize;
                need(plen_size + 2 + len)?;
                (Elem::Bytes(&d[q + 2..q + 2 + len]), plen_size + 2 + len)
            }
            2 => {
                need(plen_size + 5)?;
                let len = u32::from_be_bytes([d[q + 1], d[q + 2], d[q + 3], d[q + 4]]) as usize;
                need((plen_size + 5).saturating_add(len))?;
                (Elem::Bytes(&d[q + 5..q + 5 + len]), plen_size + 5 + len)
            }
            _ => {
                let (v, n) = match e {
                    0xC0 => {
                        need(plen_size + 3)?;
                        (i16::from_le_bytes([d[q + 1], d[q + 2]]) as i64, 2)
                    }
                    0xD0 => {
                        need(plen_size + 5)?;
                        (i32::from_le_bytes([d[q + 1], d[q + 2], d[q + 3], d[q + 4]]) as i64, 4)
                    }
                    0xE0 => {
                        need(plen_size + 9)?;
                        let mut a = [0u8; 8];
                        a.copy_from_slice(&d[q + 1..q + 9]);
                        (i64::from_le_bytes(a), 8)
                    }
                    0xF0 => {
                        need(plen_size + 4)?;
                        ((i32::from_le_bytes([0, d[q + 1], d[q + 2], d[q + 3]]) >> 8) as i64, 3)
                    }
                    0xFE => {
                        need(plen_size + 2)?;
                        (d[q + 1] as i8 as i64, 1)
                    }
                    0xF1..=0xFD => (((e & 0x0f) as i64) - 1, 0),
                    _ => {
                        return Err(self.blob.err(q, format!("invalid entry encoding byte 0x{e:02x}")));
                    }
                };
                (Elem::Int(v), plen_size + 1 + n)
            }
        };
        self.prev_start = p;
        self.prev_len = size;
        self.pos = p + size;
        self.seen += 1;
        Ok(Some(elem))
    }
}
