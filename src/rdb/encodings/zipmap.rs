//! Zipmap (type 9, Redis <= 2.4 hashes): `zmlen u8 | (len key, key, len value, free u8, value,
//! free padding)* | 0xFF`. Lengths are one byte 0-253, or 0xFE + u32le.

use super::Blob;
use crate::error::Result;
use crate::rdb::cursor::Elem;

const BIGLEN: u8 = 254;
const END: u8 = 255;

/// The pairs of a zipmap (docs/format.md §6.4), validated as they are read.
pub struct ZipmapIter<'b> {
    blob: Blob<'b>,
    pos: usize,
    declared: u8,
    seen: usize,
}

impl<'b> ZipmapIter<'b> {
    /// Checks only that the blob can hold a length byte and a terminator; the rest is checked
    /// while reading.
    pub fn new(blob: Blob<'b>) -> Result<ZipmapIter<'b>> {
        if blob.data.len() < 2 {
            return Err(blob.err(0, "too short for a zipmap"));
        }
        Ok(ZipmapIter { declared: blob.data[0], blob, pos: 1, seen: 0 })
    }

    fn length(&mut self) -> Result<Option<usize>> {
        let d = self.blob.data;
        let p = self.pos;
        let Some(&b) = d.get(p) else {
            return Err(self.blob.err(p, "missing terminator"));
        };
        match b {
            END => Ok(None),
            BIGLEN => {
                let Some(s) = d.get(p + 1..p + 5) else {
                    return Err(self.blob.err(p, "truncated length"));
                };
                self.pos += 5;
                Ok(Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize))
            }
            n => {
                self.pos += 1;
                Ok(Some(n as usize))
            }
        }
    }

    fn bytes(&mut self, n: usize) -> Result<&'b [u8]> {
        let d = self.blob.data;
        let p = self.pos;
        match d.get(p..p.saturating_add(n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.blob.err(p, format!("{n} bytes run past the end"))),
        }
    }

    /// Next (field, value) pair; `None` at the terminator, once the count has been checked.
    pub fn next_pair(&mut self) -> Result<Option<(Elem<'b>, Elem<'b>)>> {
        let start = self.pos;
        let Some(klen) = self.length()? else {
            if self.pos != self.blob.data.len() - 1 {
                return Err(self.blob.err(self.pos, "terminator before the end of the zipmap"));
            }
            if self.declared < BIGLEN && self.declared as usize != self.seen {
                return Err(self.blob.err(0, format!("header declares {} pairs, found {}", self.declared, self.seen)));
            }
            return Ok(None);
        };
        let key = self.bytes(klen)?;
        let Some(vlen) = self.length()? else {
            return Err(self.blob.err(start, "terminator where a value length was expected"));
        };
        let free = self.bytes(1)?[0] as usize;
        let value = self.bytes(vlen)?;
        self.bytes(free)?;
        self.seen += 1;
        Ok(Some((Elem::Bytes(key), Elem::Bytes(value))))
    }
}
