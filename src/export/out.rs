//! The output buffer the format writers render into (`Out`), and the pool of fixed-size blocks
//! that held keys go on in when export renders in parts (`Blocks`).

use std::io::{self, Write};

/// The output buffer shared by the format writers.
pub struct Out<'w> {
    /// Output rendered and not yet handed to the writer; format writers append to it.
    pub buf: Vec<u8>,
    w: &'w mut dyn Write,
    err: Option<io::Error>,
    /// Where the current key starts in `buf` (in `held[mark_block]` once its block is held).
    mark: usize,
    spilled: bool,
    /// `buf.len()` past which `check` acts: `SPILL_AT`, or `Blocks::FILL` for a held output.
    check_at: usize,
    /// A part of the file rendered on a worker: everything is kept (nothing goes to `w`), in
    /// blocks of about `Blocks::FILL` taken from this pool (`held`); a key may go on from one
    /// block into the next (a block never grows for a big key); past `SPILL_AT` inside one key
    /// the part is given up (`overflowed`) and rendered again in order.
    hold: Option<&'w Blocks>,
    /// The full blocks of a held output, in order (`buf` continues them).
    held: Vec<Vec<u8>>,
    /// `held.len()` when the current key began.
    mark_block: usize,
    /// Bytes of blocks held since the current key began (from the block it began in).
    key_held: usize,
    pub(super) overflowed: bool,
}

/// Output blocks used again and again by the parts rendered on workers (`Out::held`): a block
/// freshly allocated costs a page fault every 4 KiB, a big growing buffer copies itself as it
/// grows, and memory freed on one thread and allocated on another piles up in the allocator.
pub(crate) struct Blocks {
    free: std::sync::Mutex<Vec<Vec<u8>>>,
    /// Blocks kept at most (enough for the parts in flight).
    keep: usize,
}

impl Blocks {
    /// A block is full between keys once it holds this much.
    pub(super) const FILL: usize = 1 << 20;
    /// It holds `FILL` and the key that crosses it, usually without growing.
    const CAPACITY: usize = Self::FILL + (Self::FILL >> 3);

    /// A pool that keeps up to `keep` free blocks.
    pub(crate) fn new(keep: usize) -> Blocks {
        Blocks { free: std::sync::Mutex::new(Vec::new()), keep }
    }

    fn take(&self) -> Vec<u8> {
        let kept = self.free.lock().ok().and_then(|mut f| f.pop());
        kept.unwrap_or_else(|| Vec::with_capacity(Self::CAPACITY))
    }

    /// Keeps `blocks` for later use, up to `keep` of them (a block grown far past its usual
    /// size by a big key is dropped).
    pub(crate) fn give_back(&self, blocks: impl IntoIterator<Item = Vec<u8>>) {
        let Ok(mut free) = self.free.lock() else { return };
        for mut b in blocks {
            if free.len() < self.keep && b.capacity() <= 2 * Self::CAPACITY {
                b.clear();
                free.push(b);
            }
        }
    }
}

impl<'w> Out<'w> {
    /// Between keys, the buffer goes to the writer once it holds this much.
    const FLUSH_AT: usize = 256 << 10;
    /// Inside one value, only past this (so a failing key can usually be rolled back).
    const SPILL_AT: usize = 16 << 20;

    /// A buffer in front of `w`.
    pub fn new(w: &'w mut dyn Write) -> Out<'w> {
        let mut out = Out::new_empty(w);
        out.buf = Vec::with_capacity(Self::FLUSH_AT + (64 << 10));
        out
    }

    /// A buffer that keeps everything, in blocks from `pool`: see `hold`.
    pub(super) fn held(w: &'w mut dyn Write, pool: &'w Blocks, held: Vec<Vec<u8>>) -> Out<'w> {
        let mut out = Out::new_empty(w);
        out.buf = pool.take();
        out.hold = Some(pool);
        out.held = held;
        out.mark_block = out.held.len();
        out.check_at = Blocks::FILL;
        out
    }

    fn new_empty(w: &'w mut dyn Write) -> Out<'w> {
        Out {
            buf: Vec::new(),
            w,
            err: None,
            mark: 0,
            spilled: false,
            check_at: Self::SPILL_AT,
            hold: None,
            held: Vec::new(),
            mark_block: 0,
            key_held: 0,
            overflowed: false,
        }
    }

    /// The blocks a held buffer holds, in order (the last one possibly empty).
    pub(super) fn take_held(&mut self) -> Vec<Vec<u8>> {
        let mut held = std::mem::take(&mut self.held);
        held.push(std::mem::take(&mut self.buf));
        held
    }

    /// Hands what is buffered, then `bytes`, to the writer (a part rendered elsewhere).
    pub(super) fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.w.write_all(&self.buf)?;
            self.buf.clear();
        }
        self.w.write_all(bytes)
    }

    /// Called by sinks after each element: hands a very large value over in pieces.
    #[inline]
    pub fn check(&mut self) {
        if self.buf.len() >= self.check_at {
            self.spill();
        }
    }

    #[cold]
    fn spill(&mut self) {
        if let Some(pool) = self.hold {
            // The key goes on in a new block; the part is given up past `SPILL_AT` of one key
            // (what is written after that is dropped).
            if self.overflowed || self.key_held + self.buf.len() - self.mark >= Self::SPILL_AT {
                self.overflowed = true;
                self.spilled = true;
                self.buf.clear();
                self.mark = 0;
            } else {
                self.key_held += self.buf.len();
                let full = std::mem::replace(&mut self.buf, pool.take());
                self.held.push(full);
            }
            return;
        } else if self.err.is_none()
            && let Err(e) = self.w.write_all(&self.buf)
        {
            self.err = Some(e);
        }
        self.buf.clear();
        self.spilled = true;
    }

    pub(super) fn begin_key(&mut self) {
        self.mark = self.buf.len();
        self.mark_block = self.held.len();
        self.key_held = 0;
        self.spilled = false;
    }

    /// Drops what the current key wrote; false if part of it already went out.
    pub(super) fn rollback(&mut self) -> bool {
        if self.spilled {
            return false;
        }
        if let Some(pool) = self.hold
            && self.held.len() > self.mark_block
        {
            // The key began in a held block: the blocks after it, and `buf`, are all its own.
            let mut own = self.held.split_off(self.mark_block);
            let began = own.remove(0);
            pool.give_back(own);
            pool.give_back([std::mem::replace(&mut self.buf, began)]);
            self.key_held = 0;
        }
        self.buf.truncate(self.mark);
        true
    }

    pub(super) fn end_key(&mut self) -> io::Result<()> {
        if let Some(pool) = self.hold {
            if self.buf.len() >= Blocks::FILL {
                let full = std::mem::replace(&mut self.buf, pool.take());
                self.held.push(full);
            }
        } else if self.buf.len() >= Self::FLUSH_AT && self.err.is_none() {
            let r = self.w.write_all(&self.buf);
            self.buf.clear();
            r?;
        }
        match self.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub(super) fn finish(&mut self) -> io::Result<()> {
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(blocks: &[Vec<u8>]) -> Vec<u8> {
        blocks.concat()
    }

    #[test]
    fn a_held_key_goes_on_in_new_blocks_and_rolls_back_across_them() {
        let pool = Blocks::new(64);
        let mut sink = io::sink();
        let mut out = Out::held(&mut sink, &pool, Vec::new());
        let piece = vec![b'x'; 100 << 10];
        // A first key, then one of 5 MiB written in pieces: blocks never grow past their capacity.
        out.begin_key();
        out.buf.extend_from_slice(b"first\n");
        out.end_key().unwrap();
        out.begin_key();
        for _ in 0..50 {
            out.buf.extend_from_slice(&piece);
            out.check();
            assert!(out.buf.capacity() <= Blocks::CAPACITY);
        }
        assert!(out.held.len() >= 4, "the key went on in new blocks");
        // Dropped: back to the first key alone, in one block.
        assert!(out.rollback());
        out.end_key().unwrap();
        assert!(out.held.is_empty());
        assert_eq!(joined(&out.take_held()), b"first\n");

        // A key of more than `SPILL_AT` gives the part up.
        let mut out = Out::held(&mut sink, &pool, Vec::new());
        out.begin_key();
        out.buf.extend_from_slice(b"second");
        for _ in 0..((Out::SPILL_AT >> 17) + 40) {
            out.buf.extend_from_slice(&piece);
            out.check();
        }
        assert!(out.overflowed && !out.rollback());

        // A key of a few blocks kept: the blocks hold its bytes in order.
        let mut out = Out::held(&mut sink, &pool, Vec::new());
        out.begin_key();
        let mut want = Vec::new();
        for i in 0..30u8 {
            let p = vec![b'a' + i % 26; 70 << 10];
            out.buf.extend_from_slice(&p);
            want.extend_from_slice(&p);
            out.check();
        }
        out.end_key().unwrap();
        assert_eq!(joined(&out.take_held()), want);
    }
}
