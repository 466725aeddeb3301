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

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::conflicts::{Action, Planned};
use super::plan::Plan;
use super::route::Router;
use super::write::{Finished, Job, Out, write_error};
use super::{MergeError, Source};
use crate::error::Error;
use crate::rdb::reader::{Reader, Record};
use crate::rdb::writer::{self, KernelCopy};

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

/// Whether pass 2 can copy by the logs: several outputs, every input logged, every input's key
/// records copied as they are (no re-encoding for another format), and one target db (so that
/// each output is its records in input and file order).
pub(super) fn usable(plan: &Plan, outputs: usize) -> bool {
    let dbs: BTreeSet<u64> =
        plan.counts.iter().flat_map(|m| m.iter().filter(|(_, c)| c.keys > 0).map(|(d, _)| *d)).collect();
    outputs > 1
        && dbs.len() <= 1
        && plan.routes.iter().all(|r| r.as_ref().is_some_and(|r| r.len() == outputs))
        && plan.formats.iter().all(|&f| writer::verbatim(f, plan.target))
}

/// A writer may run this far ahead of the slowest one in the inputs: the input pages between
/// them stay mapped until every writer has passed them (RSS stays flat).
const AHEAD: u64 = 8 << 20;

/// Pass 2 by the logs: each output written by a thread of its own, straight from the inputs.
pub(super) fn write_routed<'a, W: KernelCopy + Send>(
    plan: &Plan,
    sources: &[Source<'a>],
    router: &dyn Router,
    ws: Vec<Out<'a, W>>,
) -> Result<Vec<Finished<W>>, MergeError> {
    // Where each writer is, as input bytes before the input plus the offset in it.
    let at: Vec<AtomicU64> = ws.iter().map(|_| AtomicU64::new(0)).collect();
    let copied: Vec<AtomicU64> = sources.iter().map(|_| AtomicU64::new(0)).collect();
    let stop = AtomicBool::new(false);
    let results: Vec<Result<Finished<W>, MergeError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = ws
            .into_iter()
            .enumerate()
            .map(|(o, mut out)| {
                let (at, copied, stop) = (&at, &copied, &stop);
                scope.spawn(move || {
                    let mut pace = Pace { at, me: o, stop, next: 0 };
                    let r = copy_routed(plan, sources, router, o, &mut out, &mut pace, copied);
                    drop(pace);
                    match r {
                        Ok(()) => out.finish(plan, o),
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            out.w.release_all();
                            Err(e)
                        }
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .enumerate()
            .map(|(o, t)| t.join().unwrap_or_else(|_| Err(MergeError::Io(format!("output {o}: its writer panicked")))))
            .collect()
    });
    // The progress of each input reaches its length (the bytes between the key records count too).
    for (s, c) in sources.iter().zip(&copied) {
        s.advance((s.data.len() as u64).saturating_sub(c.load(Ordering::Relaxed)));
    }
    // A writer's own error explains the run better than the others' stopping after it.
    if let Some(e) =
        results.iter().position(|r| matches!(r, Err(e) if !matches!(e, MergeError::Io(m) if m.ends_with(STOPPED))))
    {
        return Err(results.into_iter().nth(e).and_then(Result::err).unwrap_or_else(|| MergeError::Io(STOPPED.into())));
    }
    results.into_iter().collect()
}

/// How a writer that stopped because another failed ends its error message.
const STOPPED: &str = "stopped (another output failed)";

/// Keeps a writer within `AHEAD` of the slowest.
struct Pace<'t> {
    at: &'t [AtomicU64],
    me: usize,
    stop: &'t AtomicBool,
    /// The next position at which to look at the others.
    next: u64,
}

impl Pace<'_> {
    /// This writer has come to `pos`: it waits while it is too far ahead of another. False when
    /// another writer failed (this one stops too).
    #[inline]
    fn reached(&mut self, pos: u64) -> bool {
        if pos < self.next {
            return true;
        }
        self.next = pos + (1 << 20);
        self.at[self.me].store(pos, Ordering::Release);
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            let slowest = self.at.iter().map(|a| a.load(Ordering::Acquire)).min().unwrap_or(pos);
            if pos <= slowest + AHEAD {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
    }
}

impl Drop for Pace<'_> {
    /// This writer will not hold the others back any more (done, failed or panicking).
    fn drop(&mut self) {
        self.at[self.me].store(u64::MAX, Ordering::Release);
    }
}

/// Output `o`'s key records from every input, by the logs: records the plan drops or renames
/// are left out, and renamed ones whose new name goes to `o` are written in their place (file
/// order), re-encoded.
fn copy_routed<'a, W: KernelCopy + Send>(
    plan: &Plan,
    sources: &[Source<'a>],
    router: &dyn Router,
    o: usize,
    out: &mut Out<'a, W>,
    pace: &mut Pace<'_>,
    copied: &[AtomicU64],
) -> Result<(), MergeError> {
    if let Some((&db, c)) = plan.counts[o].iter().find(|(_, c)| c.keys > 0) {
        out.apply(o, Job::Begin { db, keys: c.keys, expires: c.expires })?;
    }
    let stopped = || MergeError::Io(format!("output {o}: {STOPPED}"));
    let mut base = 0u64;
    for (i, s) in sources.iter().enumerate() {
        let log_err = |e: io::Error| MergeError::Io(format!("{}: the log of pass 1: {e}", s.name));
        let routes = plan.routes[i].as_ref().ok_or_else(|| MergeError::Io(format!("{}: no log of pass 1", s.name)))?;
        let acts = &plan.actions[i];
        let fmt = plan.formats[i];
        // Writes the renamed record `p` if it goes to this output.
        let renamed = |out: &mut Out<'a, W>, p: &Planned| -> Result<u64, MergeError> {
            let Action::Rename(name) = &p.action else { return Ok(0) };
            if router.output(name) != Some(o) {
                return Ok(0);
            }
            let secs = &plan.sections[i];
            let db = secs[..secs.partition_point(|x| x.start <= p.start)].last().map_or(0, |x| x.db);
            let input_err = |error: Error| MergeError::Input { file: s.name.clone(), error };
            let mut r = Reader::resume_at(s.data, p.start, db).map_err(input_err)?;
            let Some(Ok(Record::Key(k))) = r.next() else {
                return Err(input_err(Error::corrupt(p.start, "no key record where pass 1 found one")));
            };
            out.apply(o, Job::Key { k, src: s.data, fmt, name: Some(name), verbatim: true })?;
            Ok(p.end - p.start)
        };
        // A run of records next to each other in the input: (start, end, keys, expires).
        let mut run: Option<(u64, u64, u64, u64)> = None;
        let flush = |out: &mut Out<'a, W>, run: &mut Option<(u64, u64, u64, u64)>| -> Result<u64, MergeError> {
            let Some((a, b, k, e)) = run.take() else { return Ok(0) };
            out.w.records(s.data, a as usize, b as usize, k, e).map_err(|e| write_error(o, e))?;
            Ok(b - a)
        };
        let (mut next, mut done, mut told) = (0usize, 0u64, 0u64);
        for entry in routes[o].iter() {
            let (start, end, ttl) = entry.map_err(log_err)?;
            let mut planned = false;
            while let Some(p) = acts.get(next).filter(|p| p.start <= start) {
                next += 1;
                planned |= p.start == start;
                if matches!(p.action, Action::Rename(_)) {
                    done += flush(out, &mut run)?;
                    done += renamed(out, p)?;
                }
            }
            if planned {
                continue;
            }
            match &mut run {
                Some((_, b, k, e)) if *b == start => {
                    *b = end;
                    *k += 1;
                    *e += u64::from(ttl);
                }
                _ => {
                    done += flush(out, &mut run)?;
                    run = Some((start, end, 1, u64::from(ttl)));
                }
            }
            if !pace.reached(base + start) {
                return Err(stopped());
            }
            if done >= told + (1 << 20) {
                s.advance(done - told);
                told = done;
            }
        }
        done += flush(out, &mut run)?;
        for p in &acts[next..] {
            done += renamed(out, p)?;
        }
        s.advance(done - told);
        copied[i].fetch_add(done, Ordering::Relaxed);
        base += s.data.len() as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Split by the logs writes what split by reading the inputs again writes, byte for byte:
    /// one input, and two copies of it under `rename` (every key renamed, to any output) and
    /// `last` (every key of the first copy dropped).
    #[test]
    fn split_by_logs_is_split_by_reading() {
        use crate::merge::{OnConflict, Options, RenameTemplate, plan, write};
        use crate::split::{DbSelect, Layout, SplitRouter};
        let data =
            std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/all-types.rdb")).unwrap();
        let layout = Layout::even(3).unwrap();
        let router = SplitRouter { layout: &layout, dbs: DbSelect::All };
        let rename = Some(RenameTemplate::parse("{input}:{db}:{key}").unwrap());
        for (n, on_conflict) in [(1, OnConflict::Rename), (2, OnConflict::Rename), (2, OnConflict::Last)] {
            let sources: Vec<Source<'_>> = (0..n).map(|i| Source::new(format!("in{i}.rdb"), &data)).collect();
            let opts = Options { on_conflict, rename: rename.clone(), ..Default::default() };
            let mut p = plan(&sources, &router, &opts).unwrap();
            assert!(usable(&p, 3), "{n} inputs, {on_conflict:?}");
            let outs = || (0..3).map(|_| Vec::new()).collect::<Vec<Vec<u8>>>();
            let by_logs: Vec<Vec<u8>> =
                write(&p, &sources, &router, outs()).unwrap().into_iter().map(|x| x.0).collect();
            p.routes = p.routes.iter().map(|_| None).collect();
            assert!(!usable(&p, 3));
            let by_reading: Vec<Vec<u8>> =
                write(&p, &sources, &router, outs()).unwrap().into_iter().map(|x| x.0).collect();
            assert_eq!(by_logs, by_reading, "{n} inputs, {on_conflict:?}");
            assert!(by_logs.iter().all(|o| o.len() > 100), "every output has keys");
            if n == 2 {
                let acts = p.actions.iter().map(|a| a.len()).sum::<usize>();
                assert!(acts >= 268, "{on_conflict:?}: {acts} planned records");
            }
        }
    }

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
