//! Where pass 1 found the key records of each output (split): while pass 1 replays an input's
//! keys in file order (`scan::Gather`), the place of every key record that goes to an output
//! is appended to that output's log, an unnamed temporary file. Pass 2 then copies each
//! output's records from the input by these places, one writer thread per output, without
//! reading the input again (no second parse of every record, no second hash slot per key):
//! every core copies. Memory stays flat: a log is a file (about 4 to 5 bytes a key), written
//! and read back through small buffers.
//!
//! The places are only as good as the input: pass 2 checks afterwards that the input still
//! holds what pass 1 verified (`check::check_input`), and the writer checks the counts.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;

/// Outputs beyond this get no logs (a file each): pass 2 reads the input again instead.
pub(super) const MAX_LOGGED: usize = 64;

/// The logs of one input being written, one per output.
pub(super) struct RouteLog {
    outs: Vec<Log>,
    failed: bool,
}

struct Log {
    w: BufWriter<File>,
    prev_end: u64,
    entries: u64,
}

/// Bytes of a log written or read at a time.
const BUF: usize = 64 << 10;

/// An entry: the gap from the end of the output's record before (LEB128), then the record's
/// length shifted left by one, its TTL flag in the low bit (LEB128). At most 20 bytes.
const MAX_ENTRY: usize = 20;

impl RouteLog {
    /// Logs for `outputs` outputs; None when there is nothing to gain (one output: merge copies
    /// whole pieces) or the temporary files cannot be made (pass 2 then reads the input).
    pub(super) fn new(outputs: usize) -> Option<RouteLog> {
        if !(2..=MAX_LOGGED).contains(&outputs) {
            return None;
        }
        let outs = (0..outputs)
            .map(|_| tempfile::tempfile().map(|f| Log { w: BufWriter::with_capacity(BUF, f), prev_end: 0, entries: 0 }))
            .collect::<io::Result<Vec<_>>>()
            .ok()?;
        Some(RouteLog { outs, failed: false })
    }

    /// The key record at `start..end` (with a TTL or not) goes to output `o`. Records of one
    /// output come in file order.
    #[inline]
    pub(super) fn push(&mut self, o: usize, start: u64, end: u64, ttl: bool) {
        let Some(l) = self.outs.get_mut(o) else {
            self.failed = true;
            return;
        };
        if start < l.prev_end || end <= start || end - start >= 1 << 62 {
            self.failed = true;
            return;
        }
        let mut buf = [0u8; MAX_ENTRY];
        let n = put(&mut buf, start - l.prev_end);
        let n = n + put(&mut buf[n..], ((end - start) << 1) | u64::from(ttl));
        if l.w.write_all(&buf[..n]).is_err() {
            self.failed = true;
        }
        l.prev_end = end;
        l.entries += 1;
    }

    /// The logs, written out; None when any write failed.
    pub(super) fn finish(self) -> Option<Vec<Routes>> {
        if self.failed {
            return None;
        }
        self.outs.into_iter().map(|l| l.w.into_inner().ok().map(|file| Routes { file, entries: l.entries })).collect()
    }
}

/// One output's log of one input, written.
pub(super) struct Routes {
    file: File,
    entries: u64,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Routes({} entries)", self.entries)
    }
}

impl Routes {
    /// The records, in file order: (start, end, TTL flag).
    pub(super) fn iter(&self) -> RouteIter<'_> {
        RouteIter { file: &self.file, at: 0, buf: vec![0; BUF], pos: 0, len: 0, prev_end: 0, left: self.entries }
    }
}

pub(super) struct RouteIter<'r> {
    file: &'r File,
    /// Where the next read of the file starts.
    at: u64,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    prev_end: u64,
    left: u64,
}

impl RouteIter<'_> {
    /// At least `MAX_ENTRY` bytes in the buffer, unless the file ends first.
    fn fill(&mut self) -> io::Result<()> {
        if self.len - self.pos >= MAX_ENTRY {
            return Ok(());
        }
        self.buf.copy_within(self.pos..self.len, 0);
        self.len -= self.pos;
        self.pos = 0;
        while self.len < self.buf.len() {
            let n = self.file.read_at(&mut self.buf[self.len..], self.at)?;
            if n == 0 {
                break;
            }
            self.len += n;
            self.at += n as u64;
        }
        Ok(())
    }

    fn get(&mut self) -> io::Result<u64> {
        let (v, n) = take(&self.buf[self.pos..self.len])
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a key log ends early"))?;
        self.pos += n;
        Ok(v)
    }
}

impl Iterator for RouteIter<'_> {
    type Item = io::Result<(u64, u64, bool)>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut one = || {
            self.fill()?;
            let start = self.prev_end + self.get()?;
            let x = self.get()?;
            let end = start + (x >> 1);
            self.prev_end = end;
            Ok((start, end, x & 1 == 1))
        };
        let r = one();
        if r.is_err() {
            self.left = 0;
        }
        Some(r)
    }
}

/// Writes `v` as LEB128 into `buf`; returns the bytes written.
#[inline]
fn put(buf: &mut [u8], mut v: u64) -> usize {
    let mut n = 0;
    while v >= 0x80 {
        buf[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    buf[n] = v as u8;
    n + 1
}

/// Reads a LEB128 number from the start of `b`: the value and its length.
#[inline]
fn take(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &x) in b.iter().enumerate().take(10) {
        v |= u64::from(x & 0x7f) << (7 * i);
        if x < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_give_back_what_was_pushed() {
        let mut log = RouteLog::new(3).unwrap();
        let mut want: Vec<Vec<(u64, u64, bool)>> = vec![Vec::new(); 3];
        let mut at = 9u64;
        // Enough entries to cross several buffers, lengths from 1 byte to beyond 2^40.
        for i in 0..200_000u64 {
            let len = 1 + (i * 7919) % 300 + if i % 50_000 == 7 { 1 << 41 } else { 0 };
            let o = ((i * 31) % 3) as usize;
            log.push(o, at, at + len, i % 3 == 1);
            want[o].push((at, at + len, i % 3 == 1));
            at += len;
        }
        let routes = log.finish().unwrap();
        for (o, r) in routes.iter().enumerate() {
            let got: Vec<(u64, u64, bool)> = r.iter().collect::<io::Result<_>>().unwrap();
            assert_eq!(got, want[o], "output {o}");
        }
    }

    #[test]
    fn out_of_order_or_truncated_logs_are_refused() {
        let mut log = RouteLog::new(2).unwrap();
        log.push(0, 100, 200, false);
        log.push(0, 150, 160, false);
        assert!(log.finish().is_none(), "a record before the last one's end");
        assert!(RouteLog::new(1).is_none() && RouteLog::new(MAX_LOGGED + 1).is_none());
        let mut log = RouteLog::new(2).unwrap();
        log.push(1, 100, 100_000, true);
        let routes = log.finish().unwrap();
        routes[1].file.set_len(2).unwrap();
        let got: Vec<io::Result<(u64, u64, bool)>> = routes[1].iter().collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
        assert_eq!(routes[0].iter().count(), 0);
    }
}
