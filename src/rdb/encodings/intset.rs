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

    /// Checks the members that remain without yielding them: `Ok` when they are strictly
    /// ascending, else the error `next_int` gives at the first that is not (the check runs
    /// branch-free over blocks of members; only a failing intset is walked again).
    ///
    /// # Errors
    ///
    /// As `next_int`.
    pub fn check_rest(&mut self) -> Result<()> {
        let body = &self.blob.data[8 + self.i * self.width..];
        let ok = match self.width {
            2 => ascending::<2>(body, |c| i16::from_le_bytes(c) as i64),
            4 => ascending::<4>(body, |c| i32::from_le_bytes(c) as i64),
            _ => ascending::<8>(body, i64::from_le_bytes),
        };
        // A member before this position bounds the first one here.
        let joins = match (self.prev, self.i < self.count) {
            (Some(prev), true) => {
                let mut it = IntsetIter { prev: None, ..*self };
                it.next_int()?.is_some_and(|v| v > prev)
            }
            _ => true,
        };
        if ok && joins {
            self.i = self.count;
            return Ok(());
        }
        while self.next_int()?.is_some() {}
        Ok(())
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

/// True when the `W`-byte integers of `body` are strictly ascending.
#[inline]
fn ascending<const W: usize>(body: &[u8], read: impl Fn([u8; W]) -> i64) -> bool {
    // `chunks_exact(W)` gives W-byte chunks only: the conversion cannot fail.
    let at = |c: &[u8]| read(c.try_into().unwrap());
    let (a, b) = (body.chunks_exact(W), body.get(W..).unwrap_or_default().chunks_exact(W));
    let mut pairs = a.zip(b);
    let mut ok = true;
    loop {
        // Blocks of 16 pairs without a branch each, then a look at the verdict.
        let mut n = 0;
        for (x, y) in pairs.by_ref().take(16) {
            ok &= at(x) < at(y);
            n += 1;
        }
        if !ok || n < 16 {
            return ok;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// `check_rest` accepts exactly the intsets `next_int` walks to the end, and fails with
        /// the same error, from the start or after some members were read.
        #[test]
        fn check_rest_agrees_with_the_walk(
            width in prop_oneof![Just(2usize), Just(4), Just(8)],
            mut vals in proptest::collection::vec(any::<i64>(), 0..60),
            sorted in any::<bool>(),
            swap in any::<Option<prop::sample::Index>>(),
            read_first in 0usize..4,
        ) {
            let mask = if width == 8 { -1i64 } else { (1i64 << (8 * width - 1)) - 1 };
            for v in &mut vals { *v = if *v < 0 { -(*v & mask) - 1 } else { *v & mask }; }
            if sorted { vals.sort(); vals.dedup(); }
            if let (Some(i), true) = (swap, vals.len() > 1) {
                let i = i.index(vals.len() - 1);
                vals.swap(i, i + 1);
            }
            let mut d = Vec::new();
            d.extend_from_slice(&(width as u32).to_le_bytes());
            d.extend_from_slice(&(vals.len() as u32).to_le_bytes());
            for v in &vals { d.extend_from_slice(&v.to_le_bytes()[..width]); }
            let blob = Blob { data: &d, offset: 7, compressed: false, what: "intset" };
            let (mut a, mut b) = (IntsetIter::new(blob).unwrap(), IntsetIter::new(blob).unwrap());
            for _ in 0..read_first {
                let (x, y) = (a.next_int(), b.next_int());
                prop_assert_eq!(format!("{x:?}"), format!("{y:?}"));
                if !matches!(x, Ok(Some(_))) { return Ok(()); }
            }
            let walked = loop {
                match b.next_int() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            let checked = a.check_rest();
            prop_assert_eq!(format!("{checked:?}"), format!("{walked:?}"));
            if checked.is_ok() { prop_assert_eq!(a.next_int().unwrap(), None); }
        }
    }
}
