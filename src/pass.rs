//! One pass over an input: the one mechanism every command uses to read a (memory-mapped) file
//! once and keep RSS flat, checksum it on the way, and judge its stored checksum.
//!
//! - [`Pages`]: the pages of one input and the consumers that read them (a reader, the checksum,
//!   a writer copying from it, threads validating different ranges). Each consumer says which
//!   bytes it will not read again ([`Pages::done`], or a forward [`Lane`]); a stretch of pages is
//!   given back to the OS ([`crate::input::Input::release`]) once *every* consumer is done with
//!   it, whatever the order and whichever thread. Bytes are counted, not positions compared, so
//!   consumers may cover their bytes in any pieces, in parallel.
//! - [`ChunkedCrc`]: CRC-64 of a range as independent chunks computed on the thread pool (or by
//!   the reader itself when the pool lags), combined at the end; it is one consumer of `Pages`.
//! - [`Follow`]: the sequential form, a CRC computed right behind a single reader.
//! - [`checksum_verdict`]: the stored checksum against the computed one, with the one wording of
//!   a mismatch (docs/format.md §8).
//!
//! Releasing is only about memory: a page read after it was given back faults in again from the
//! file (the map is shared and read-only), so a consumer that reads late is slow, never wrong.

use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

use crate::error::{Error, ErrorKind};

/// Pages are tracked (and given back) in units of this many bytes.
pub const UNIT: usize = 8 << 20;

/// What gives bytes back: a mapped input, a caller's function, or nothing (a buffer).
#[derive(Clone, Copy)]
enum Sink<'a> {
    None,
    Input(&'a crate::input::Input),
    /// The caller's function; look-ahead pages (`forget`) go back through the mapped input, when
    /// there is one.
    Fn(&'a (dyn Fn(Range<usize>) + Sync), Option<&'a crate::input::Input>),
}

/// The pages of one input, shared by the consumers that read it (see the module docs).
pub struct Pages<'a> {
    sink: Sink<'a>,
    len: usize,
    /// Per unit: bytes that consumers have still to read (consumers × unit length at first).
    left: Box<[AtomicU64]>,
}

impl<'a> Pages<'a> {
    fn with_sink(sink: Sink<'a>, len: usize, consumers: u32) -> Pages<'a> {
        let units = len.div_ceil(UNIT);
        let left = (0..units)
            .map(|u| {
                let unit_len = ((u + 1) * UNIT).min(len) - u * UNIT;
                AtomicU64::new(unit_len as u64 * u64::from(consumers))
            })
            .collect();
        Pages { sink, len, left }
    }

    /// The pages of a mapped (or owned) input read by `consumers` consumers.
    pub fn new(input: &'a crate::input::Input, consumers: u32) -> Pages<'a> {
        Pages::with_sink(Sink::Input(input), input.len(), consumers)
    }

    /// Pages of `len` bytes given back through `release` (callers holding a callback).
    pub fn with_release(len: usize, consumers: u32, release: &'a (dyn Fn(Range<usize>) + Sync)) -> Pages<'a> {
        Pages::with_sink(Sink::Fn(release, None), len, consumers)
    }

    /// `with_release` for the mapped `input`: pages read ahead out of turn (`forget`) are given
    /// back through it (the caller's function sees only what every consumer is done with).
    pub fn with_release_of(
        input: &'a crate::input::Input,
        consumers: u32,
        release: &'a (dyn Fn(Range<usize>) + Sync),
    ) -> Pages<'a> {
        Pages::with_sink(Sink::Fn(release, Some(input)), input.len(), consumers)
    }

    /// A buffer: nothing to give back (the bookkeeping is skipped).
    pub fn unmapped(len: usize) -> Pages<'static> {
        Pages { sink: Sink::None, len, left: Box::new([]) }
    }

    /// Length of the input in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty input.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One consumer will not read `range` again. Each consumer reports each byte at most once
    /// (pieces in any order, from any thread); a unit is given back when all its bytes are done.
    pub fn done(&self, range: Range<usize>) {
        if matches!(self.sink, Sink::None) {
            return;
        }
        let (start, end) = (range.start, range.end.min(self.len));
        let mut at = start;
        while at < end {
            let u = at / UNIT;
            let unit_end = ((u + 1) * UNIT).min(self.len);
            let n = (unit_end.min(end) - at) as u64;
            let before = self.left[u].fetch_sub(n, Ordering::AcqRel);
            debug_assert!(before >= n, "bytes of unit {u} reported done twice");
            if before == n {
                self.give_back(u * UNIT..unit_end);
            }
            at = unit_end;
        }
    }

    /// Gives `range` of a mapped input back now, whoever is done with it: for bytes read out of
    /// turn (a look-ahead) that the consumers read again later, faulting them in again. A
    /// caller's release function is not called: to it, a range given back means done.
    pub fn forget(&self, range: Range<usize>) {
        if let Sink::Input(i) | Sink::Fn(_, Some(i)) = self.sink {
            i.release(range.start.min(self.len)..range.end.min(self.len));
        }
    }

    fn give_back(&self, range: Range<usize>) {
        match self.sink {
            Sink::None => {}
            Sink::Input(i) => i.release(range),
            Sink::Fn(f, _) => f(range),
        }
    }

    /// A consumer reading forward from `start` (see [`Lane`]).
    pub fn lane_from(&self, start: usize) -> Lane<'_, 'a> {
        Lane { pages: self, at: start.min(self.len), end: self.len, reported: start.min(self.len) }
    }

    /// A consumer reading forward over the whole input.
    pub fn lane(&self) -> Lane<'_, 'a> {
        self.lane_from(0)
    }

    /// A consumer reading forward over `range` only.
    pub fn lane_over(&self, range: Range<usize>) -> Lane<'_, 'a> {
        let end = range.end.min(self.len);
        let start = range.start.min(end);
        Lane { pages: self, at: start, end, reported: start }
    }
}

/// Lanes report to their `Pages` in steps of this size (a call per record would cost more than
/// the bookkeeping saves).
const LANE_STEP: usize = 1 << 20;

/// A consumer of `Pages` reading forward: `upto(x)` says everything before `x` is done. When
/// dropped, the rest of its range is done too (a reader that stops early reads no more).
pub struct Lane<'p, 'a> {
    pages: &'p Pages<'a>,
    /// Done up to here (reported or not).
    at: usize,
    end: usize,
    /// Reported to `pages` up to here.
    reported: usize,
}

impl Lane<'_, '_> {
    /// Everything before `to` will not be read again by this consumer (moves only forward).
    #[inline]
    pub fn upto(&mut self, to: usize) {
        if to > self.at {
            self.at = to.min(self.end);
            if self.at >= self.reported + LANE_STEP {
                self.flush();
            }
        }
    }

    /// Reports what `upto` gathered now.
    pub fn flush(&mut self) {
        if self.at > self.reported {
            self.pages.done(self.reported..self.at);
            self.reported = self.at;
        }
    }

    /// How far this consumer is done.
    pub fn position(&self) -> usize {
        self.at
    }
}

impl Drop for Lane<'_, '_> {
    fn drop(&mut self) {
        self.at = self.end;
        self.flush();
    }
}

/// The CRC-64 chunks of a verify pass are this big.
pub const CRC_CHUNK: usize = 16 << 20;

const FREE: u8 = 0;
const TAKEN: u8 = 1;

/// CRC-64 of `data`, computed as independent chunks (on the pool as the reader enters them, so
/// both read the same pages at about the same time; or by the reader's own thread when no
/// worker took a chunk it has passed) and combined at the end. It is one consumer of `pages`:
/// each chunk is reported done once computed.
pub struct ChunkedCrc<'d, 'p, 'a> {
    data: &'d [u8],
    chunk: usize,
    chunks: Vec<OnceLock<u64>>,
    taken: Vec<AtomicU8>,
    /// The next chunk to spawn.
    next: AtomicUsize,
    pages: &'p Pages<'a>,
}

impl<'d, 'p, 'a> ChunkedCrc<'d, 'p, 'a> {
    /// The checksum of `data` (a prefix of the input `pages` tracks) in chunks of `chunk` bytes.
    pub fn new(data: &'d [u8], chunk: usize, pages: &'p Pages<'a>) -> Self {
        let chunk = chunk.max(1);
        let n = data.len().div_ceil(chunk);
        ChunkedCrc {
            data,
            chunk,
            chunks: (0..n).map(|_| OnceLock::new()).collect(),
            taken: (0..n).map(|_| AtomicU8::new(FREE)).collect(),
            next: AtomicUsize::new(0),
            pages,
        }
    }

    fn range(&self, k: usize) -> Range<usize> {
        k * self.chunk..((k + 1) * self.chunk).min(self.data.len())
    }

    /// Computes chunk `k` unless another thread took it.
    fn compute(&self, k: usize) {
        if self.taken[k].swap(TAKEN, Ordering::AcqRel) == FREE {
            let r = self.range(k);
            let _ = self.chunks[k].set(crate::crc::crc64(&self.data[r.clone()]));
            self.pages.done(r);
        }
    }

    /// Spawns on `scope` the chunks that start at or before `offset` (all with `usize::MAX`).
    pub fn spawn_upto<'s>(&'s self, scope: &rayon::Scope<'s>, offset: usize) {
        loop {
            let k = self.next.load(Ordering::Relaxed);
            // A chunk starts as soon as the reader enters it: the checksum (faster than the
            // parse) runs ahead on another core and takes the page faults off the reader.
            if k >= self.chunks.len() || k * self.chunk > offset {
                return;
            }
            self.next.store(k + 1, Ordering::Relaxed);
            scope.spawn(move |_| self.compute(k));
        }
    }

    /// Computes, on the caller's thread, the chunks that end before `offset` and that no worker
    /// has started (a pool with one thread runs spawned work only when the reader waits: its
    /// pages would stay mapped until the end).
    pub fn help_upto(&self, offset: usize) {
        let spawned = self.next.load(Ordering::Relaxed);
        for k in 0..spawned.min(self.chunks.len()) {
            if self.range(k).end > offset {
                break;
            }
            if self.taken[k].load(Ordering::Relaxed) == FREE {
                self.compute(k);
            }
        }
    }

    /// Computes every chunk not yet taken, on the caller's thread.
    pub fn finish_here(&self) {
        for k in 0..self.chunks.len() {
            self.compute(k);
        }
    }

    /// Gives up the chunks not yet taken (reports them done without computing them).
    pub fn abandon(&self) {
        for k in 0..self.chunks.len() {
            if self.taken[k].swap(TAKEN, Ordering::AcqRel) == FREE {
                self.pages.done(self.range(k));
            }
        }
    }

    /// Bytes from the start whose checksum is done.
    pub fn done_prefix(&self) -> usize {
        let k = self.chunks.iter().take_while(|c| c.get().is_some()).count();
        (k * self.chunk).min(self.data.len())
    }

    /// The checksum of the whole range, if every chunk was computed.
    pub fn combine(&self) -> Option<u64> {
        let mut crc = crate::crc::crc64(&[]);
        for (k, c) in self.chunks.iter().enumerate() {
            let len = self.range(k).len() as u64;
            crc = if k == 0 {
                *c.get()?
            } else {
                crc_fast::checksum_combine(crc_fast::CrcAlgorithm::Crc64Redis, crc, *c.get()?, len)
            };
        }
        Some(crc)
    }
}

/// A CRC-64 computed right behind (or just ahead of) one reader on its own thread, as one
/// consumer of `pages` (export, info, each part of a verify: every page is read once and then
/// given back).
pub struct Follow<'d, 'p, 'a> {
    data: &'d [u8],
    end: usize,
    crc: crate::crc::Crc64,
    lane: Lane<'p, 'a>,
}

impl<'d, 'p, 'a> Follow<'d, 'p, 'a> {
    /// A follower starting at offset 0 of `data`, registered as one consumer of `pages`.
    pub fn new(data: &'d [u8], pages: &'p Pages<'a>) -> Self {
        Follow::over(data, 0..data.len(), pages)
    }

    /// A follower over `range` of `data` only (the checksum of that range).
    pub fn over(data: &'d [u8], range: Range<usize>, pages: &'p Pages<'a>) -> Self {
        let end = range.end.min(data.len());
        let lane = pages.lane_over(range.start.min(end)..end);
        Follow { data, end, crc: crate::crc::Crc64::default(), lane }
    }

    /// The reader is past `to` (or will be soon): checksum up to it, and report those bytes done.
    #[inline]
    pub fn upto(&mut self, to: usize) {
        let to = to.min(self.end);
        let at = self.lane.position();
        if to >= at + LANE_STEP {
            self.crc.update(&self.data[at..to]);
            self.lane.upto(to);
        }
    }

    /// The checksum of the range up to `end` (`end` at or after every `upto`).
    pub fn finish(mut self, end: usize) -> u64 {
        let end = end.min(self.end);
        let at = self.lane.position();
        if end > at {
            self.crc.update(&self.data[at..end]);
            self.lane.upto(end);
        }
        self.crc.finish()
    }
}

/// Results of `in_order` held at most, waiting for an earlier one, before a worker waits too.
const MAX_WAITING: usize = 4;

/// Runs `work(i)` for every `i` in `0..n` on up to `threads` threads (the caller's among them),
/// indexes taken in increasing order, and hands each result to `join` in index order, as soon
/// as every earlier one was joined (on whichever worker finished last). This is how one file
/// read in ranges on several cores is put back together: `join` sees the ranges in file order.
/// Memory stays bounded: a worker whose result waits behind `MAX_WAITING` others waits too
/// (never the one working on the earliest index, so this cannot deadlock).
pub fn in_order<T: Send>(
    n: usize,
    threads: usize,
    work: impl Fn(usize) -> T + Sync,
    join: impl FnMut(usize, T) + Send,
) {
    use std::collections::BTreeMap;
    use std::sync::{Condvar, Mutex};
    struct State<T, J> {
        next_join: usize,
        waiting: BTreeMap<usize, T>,
        join: J,
    }
    let next = AtomicUsize::new(0);
    let state = Mutex::new(State { next_join: 0, waiting: BTreeMap::new(), join });
    let joined = Condvar::new();
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return;
            }
            let t = work(i);
            let Ok(mut st) = state.lock() else { return };
            st.waiting.insert(i, t);
            loop {
                let k = st.next_join;
                let Some(t) = st.waiting.remove(&k) else { break };
                (st.join)(k, t);
                st.next_join = k + 1;
            }
            joined.notify_all();
            while st.waiting.len() >= MAX_WAITING {
                match joined.wait(st) {
                    Ok(s) => st = s,
                    Err(_) => return,
                }
            }
        }
    };
    let extra = threads.clamp(1, n.max(1)) - 1;
    std::thread::scope(|s| {
        for _ in 0..extra {
            s.spawn(worker);
        }
        worker();
    });
}

/// `in_order` with `join` on the caller's thread, for a join that writes to something that
/// cannot move between threads (locked standard output): `work` runs on `threads` new threads,
/// each index taken only when it is fewer than `window` ahead of the join, so at most that many
/// results are held or in the works (the index the join waits for is always within reach: no
/// deadlock). A panic in `work` is resumed on the caller's thread.
pub fn in_order_here<T: Send>(
    n: usize,
    threads: usize,
    window: usize,
    work: impl Fn(usize) -> T + Sync,
    mut join: impl FnMut(usize, T),
) {
    let window = window.max(1);
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Condvar, Mutex, PoisonError};
    type Done<T> = BTreeMap<usize, std::thread::Result<T>>;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // (next index to join, results waiting for it)
    let state: Mutex<(usize, Done<T>)> = Mutex::new((0, BTreeMap::new()));
    let changed = Condvar::new();
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return;
            }
            let mut st = lock();
            while i >= st.0 + window && !stop.load(Ordering::Relaxed) {
                st = changed.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            drop(st);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let t = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(i)));
            lock().1.insert(i, t);
            changed.notify_all();
        }
    };
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            s.spawn(worker);
        }
        for k in 0..n {
            let t = {
                let mut st = lock();
                loop {
                    if let Some(t) = st.1.remove(&k) {
                        st.0 = k + 1;
                        break t;
                    }
                    st = changed.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
            };
            changed.notify_all();
            match t {
                Ok(t) => join(k, t),
                Err(panic) => {
                    stop.store(true, Ordering::Relaxed);
                    // Taken under the lock: no worker is between its check and its wait.
                    drop(lock());
                    changed.notify_all();
                    std::panic::resume_unwind(panic);
                }
            }
        }
    });
}

/// Whether a file's stored checksum matches its content.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumStatus {
    /// Stored and computed agree.
    Ok,
    /// Stored and computed differ: Redis refuses the file (§8).
    Mismatch,
    /// The writer stored 0: saved with `rdbchecksum no`.
    NotComputed,
    /// RDB versions before 5 have no checksum.
    Absent,
    /// The file did not parse up to its EOF opcode.
    Unchecked,
}

/// A file's checksum as a report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Checksum {
    /// Hex, as 16 digits; null when the file has none or was not read that far.
    pub stored: Option<String>,
    /// The CRC-64 computed over the header through the EOF opcode, as 16 hex digits; null when the
    /// file was not read that far.
    pub computed: Option<String>,
    /// The verdict.
    pub status: ChecksumStatus,
}

fn hex(v: u64) -> String {
    format!("{v:016x}")
}

/// The verdict on a stored checksum (`None` below RDB 5, `Some(0)` when not computed) against
/// the one computed over the bytes up to and including the EOF opcode at `eof_offset`
/// (docs/format.md §8). A mismatch comes with the one error every command reports.
pub fn checksum_verdict(eof_offset: u64, stored: Option<u64>, computed: u64) -> (Checksum, Option<Error>) {
    let c = Some(hex(computed));
    match stored {
        None => (Checksum { stored: None, computed: c, status: ChecksumStatus::Absent }, None),
        Some(0) => (Checksum { stored: Some(hex(0)), computed: c, status: ChecksumStatus::NotComputed }, None),
        Some(s) if s == computed => (Checksum { stored: Some(hex(s)), computed: c, status: ChecksumStatus::Ok }, None),
        Some(s) => (
            Checksum { stored: Some(hex(s)), computed: c, status: ChecksumStatus::Mismatch },
            Some(mismatch(eof_offset, s, computed)),
        ),
    }
}

/// The error of a stored checksum that the content does not give.
pub fn mismatch(eof_offset: u64, stored: u64, computed: u64) -> Error {
    Error::new(
        ErrorKind::Checksum,
        eof_offset + 1,
        format!("stored CRC-64 {} but the content gives {}", hex(stored), hex(computed)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Pages that record what they give back.
    fn recording(
        len: usize,
        consumers: u32,
        log: &Mutex<Vec<Range<usize>>>,
    ) -> (usize, u32, impl Fn(Range<usize>) + Sync + '_) {
        (len, consumers, move |r| log.lock().unwrap().push(r))
    }

    #[test]
    fn a_unit_is_given_back_when_every_consumer_is_done() {
        let log = Mutex::new(Vec::new());
        let (len, n, f) = recording(3 * UNIT + 100, 2, &log);
        let pages = Pages::with_release(len, n, &f);
        // Consumer 1 in one piece, consumer 2 in odd pieces, out of order.
        pages.done(0..len);
        assert!(log.lock().unwrap().is_empty());
        pages.done(UNIT + 5..len);
        assert_eq!(*log.lock().unwrap(), vec![2 * UNIT..3 * UNIT, 3 * UNIT..len]);
        pages.done(0..7);
        pages.done(7..UNIT + 5);
        let mut got = log.lock().unwrap().clone();
        got.sort_by_key(|r| r.start);
        assert_eq!(got, vec![0..UNIT, UNIT..2 * UNIT, 2 * UNIT..3 * UNIT, 3 * UNIT..len]);
    }

    #[test]
    fn lanes_report_forward_and_the_rest_when_dropped() {
        let log = Mutex::new(Vec::new());
        let (len, n, f) = recording(2 * UNIT, 1, &log);
        let pages = Pages::with_release(len, n, &f);
        let mut lane = pages.lane();
        lane.upto(UNIT - 1);
        lane.upto(10); // backwards: ignored
        assert!(log.lock().unwrap().is_empty());
        lane.upto(UNIT + LANE_STEP);
        assert_eq!(*log.lock().unwrap(), vec![0..UNIT]);
        drop(lane);
        assert_eq!(*log.lock().unwrap(), vec![0..UNIT, UNIT..2 * UNIT]);
    }

    #[test]
    fn chunked_crc_equals_whole_crc() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let pages = Pages::unmapped(data.len());
        for chunk in [1, 7, 4096, 100_003, 999_999, 1_000_000, 5_000_000] {
            let part = &data[..if chunk == 1 { 1000 } else { data.len() }];
            let crc = ChunkedCrc::new(part, chunk, &pages);
            rayon::scope(|s| crc.spawn_upto(s, usize::MAX));
            assert_eq!(crc.combine(), Some(crate::crc::crc64(part)), "chunk {chunk}");
            assert_eq!(crc.done_prefix(), part.len());
        }
        // Not every chunk computed: no checksum.
        let crc = ChunkedCrc::new(&data, 300_000, &pages);
        // Chunks start as soon as the reader enters them: 650 000 is inside the third one.
        rayon::scope(|s| crc.spawn_upto(s, 650_000));
        assert_eq!(crc.done_prefix(), 900_000);
        assert_eq!(crc.combine(), None);
        // The reader's thread computes what is left.
        crc.finish_here();
        assert_eq!(crc.combine(), Some(crate::crc::crc64(&data)));
        assert_eq!(ChunkedCrc::new(&[], 10, &pages).combine(), Some(crate::crc::crc64(&[])));
    }

    #[test]
    fn help_upto_computes_passed_chunks_and_reports_them() {
        let data = vec![7u8; 2 * UNIT];
        let log = Mutex::new(Vec::new());
        let (len, n, f) = recording(data.len(), 1, &log);
        let pages = Pages::with_release(len, n, &f);
        let crc = ChunkedCrc::new(&data, UNIT, &pages);
        // Spawned on a scope that has not run them yet: the reader takes the first one.
        rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| {
            rayon::scope(|s| {
                crc.spawn_upto(s, UNIT + 1);
                crc.help_upto(UNIT + 1);
                assert!(crc.chunks[0].get().is_some());
                assert_eq!(*log.lock().unwrap(), vec![0..UNIT]);
            })
        });
        assert_eq!(crc.combine(), Some(crate::crc::crc64(&data)));
    }

    #[test]
    fn follow_equals_whole_crc() {
        let data: Vec<u8> = (0..3 * LANE_STEP as u32).map(|i| i as u8).collect();
        let pages = Pages::unmapped(data.len());
        let mut f = Follow::new(&data, &pages);
        for to in (0..data.len()).step_by(100_000) {
            f.upto(to);
        }
        assert_eq!(f.finish(data.len() - 8), crate::crc::crc64(&data[..data.len() - 8]));
    }

    #[test]
    fn in_order_joins_in_index_order() {
        for threads in [1, 2, 4] {
            let mut got = Vec::new();
            in_order(
                50,
                threads,
                |i| {
                    // Later indexes finish first now and then.
                    if i % 7 == 0 {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    i * 10
                },
                |i, t| got.push((i, t)),
            );
            assert_eq!(got, (0..50).map(|i| (i, i * 10)).collect::<Vec<_>>(), "{threads} threads");
        }
    }

    #[test]
    fn one_wording_of_a_mismatch() {
        let (c, e) = checksum_verdict(99, Some(1), 2);
        assert_eq!(c.status, ChecksumStatus::Mismatch);
        let e = e.unwrap();
        assert_eq!((e.kind, e.offset), (ErrorKind::Checksum, 100));
        assert_eq!(e.message, "stored CRC-64 0000000000000001 but the content gives 0000000000000002");
        assert_eq!(checksum_verdict(0, Some(0), 2).0.status, ChecksumStatus::NotComputed);
        assert_eq!(checksum_verdict(0, None, 2).0.status, ChecksumStatus::Absent);
        assert!(checksum_verdict(0, Some(2), 2).1.is_none());
    }
}
