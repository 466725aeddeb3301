//! Intset (type 11): `width u32le (2/4/8) | count u32le | count × intN le`, strictly ascending.

use super::Blob;
use crate::error::Result;

/// The members of an intset (docs/format.md §6.3), each checked to ascend strictly.
pub struct IntsetIter<'b> {
    blob: Blob<'b>,
    width: usize,
    count: usize,
    i: usize,
    prev: Option<i64>,
}

impl<'b> IntsetIter<'b> {
    /// Checks the header: a width of 2, 4 or 8 and a count that fills the blob exactly.
    pub fn new(blob: Blob<'b>) -> Result<IntsetIter<'b>> {
        let d = blob.data;
        if d.len() < 8 {
            return Err(blob.err(0, format!("{} bytes cannot hold an intset header", d.len())));
        }
        let width = u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize;
        if !matches!(width, 2 | 4 | 8) {
            return Err(blob.err(0, format!("integer width {width} is not 2, 4 or 8")));
        }
        let count = u32::from_le_bytes([d[4], d[5], d[6], d[7]]) as usize;
        if 8 + count * width != d.len() {
            return Err(blob.err(4, format!("{count} integers of {width} bytes do not fill {} bytes", d.len())));
        }
        Ok(IntsetIter { blob, width, count, i: 0, prev: None })
    }

    /// The member count from the header (already checked against the blob's size).
    pub fn len(&self) -> usize {
        self.count
    }
    /// True for an intset with no members (which Redis skips with a warning).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The next member; `None` after the last one.
    ///
    /// # Errors
    ///
    /// A member not greater than the one before it.
    #[inline]
    pub fn next_int(&mut self) -> Result<Option<i64>> {
        if self.i == self.count {
            return Ok(None);
        }
        let p = 8 + self.i * self.width;
        let d = &self.blob.data[p..p + self.width];
        let v = match self.width {
            2 => i16::from_le_bytes([d[0], d[1]]) as i64,
            4 => i32::from_le_bytes([d[0], d[1], d[2], d[3]]) as i64,
            _ => i64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]),
        };
        if let Some(prev) = self.prev
            && v <= prev
        {
            return Err(self.blob.err(p, format!("member {v} after {prev}: intset must be strictly ascending")));
        }
        self.prev = Some(v);
        self.i += 1;
        Ok(Some(v))
    }
}
