//! Pass 2 of a split by pass 1's logs (`route_log`): one writer thread per output copies that
//! output's key records from the inputs by the places its log holds, joining neighbouring
//! records into runs and re-encoding renamed ones, without reading the inputs again. The
//! writers keep within `AHEAD` bytes of the slowest one, so the input pages behind all of them
//! can be given back (RSS stays flat).

use super::conflicts::{Action, Planned};
use super::plan::Plan;
use super::route::Router;
use super::write::{Finished, Job, Out, write_error};
use super::{MergeError, Source};
use crate::error::Error;
use crate::rdb::reader::{Reader, Record};
use crate::rdb::writer::{self, KernelCopy};
use std::collections::BTreeSet;
use std::io::{self};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
    // Per output: finished, stopped because another failed (`None`), or its own error.
    let results: Vec<Result<Option<Finished<W>>, MergeError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = ws
            .into_iter()
            .enumerate()
            .map(|(o, mut out)| {
                let (at, copied, stop) = (&at, &copied, &stop);
                scope.spawn(move || {
                    let _stop_on_panic = StopOnPanic(stop);
                    let mut pace = Pace { at, me: o, stop, next: 0 };
                    let r = copy_routed(plan, sources, router, o, &mut out, &mut pace, copied);
                    drop(pace);
                    match r {
                        Ok(Copied::All) => out.finish(plan, o).map(Some),
                        Ok(Copied::Stopped) => {
                            out.w.release_all();
                            Ok(None)
                        }
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
            .map(|(o, t)| {
                t.join().unwrap_or_else(|p| {
                    Err(MergeError::Io(format!("output {o}: its writer panicked{}", panic_text(&*p))))
                })
            })
            .collect()
    });
    // The progress of each input reaches its length (the bytes between the key records count too).
    for (s, c) in sources.iter().zip(&copied) {
        s.advance((s.data.len() as u64).saturating_sub(c.load(Ordering::Relaxed)));
    }
    // A writer's own error explains the run; the others only stopped after it.
    let (mut done, mut stopped) = (Vec::with_capacity(results.len()), None);
    for (o, r) in results.into_iter().enumerate() {
        match r? {
            Some(f) => done.push(f),
            None => stopped = stopped.or(Some(o)),
        }
    }
    match stopped {
        Some(o) => Err(MergeError::Io(format!("output {o}: stopped (another output failed)"))),
        None => Ok(done),
    }
}

/// Stops every writer when the one that holds it panics (its error is the panic, reported by
/// `write_routed`): the others would otherwise write their outputs to the end for nothing.
struct StopOnPanic<'t>(&'t AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// A panic's message, when it has one (as `": message"`).
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let text = p.downcast_ref::<&str>().copied().or_else(|| p.downcast_ref::<String>().map(|s| s.as_str()));
    text.map(|t| format!(": {t}")).unwrap_or_default()
}

/// How a writer's copy ended, short of an error of its own.
enum Copied {
    /// Every record of its output is written.
    All,
    /// It stopped because another writer failed.
    Stopped,
}

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
) -> Result<Copied, MergeError> {
    if let Some((&db, c)) = plan.counts[o].iter().find(|(_, c)| c.keys > 0) {
        out.apply(o, Job::Begin { db, keys: c.keys, expires: c.expires })?;
    }
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
                return Ok(Copied::Stopped);
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
    Ok(Copied::All)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repo's own test file (testdata/all-types.rdb: 268 keys in 4 dbs).
    fn all_types() -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/all-types.rdb")).unwrap()
    }

    /// Split by the logs writes what split by reading the inputs again writes, byte for byte:
    /// one input, and two copies of it under `rename` (every key renamed, to any output) and
    /// `last` (every key of the first copy dropped).
    #[test]
    fn split_by_logs_is_split_by_reading() {
        use crate::merge::{OnConflict, Options, RenameTemplate, plan, write};
        use crate::split::{DbSelect, Layout, SplitRouter};
        let data = all_types();
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

    /// An output that takes `room` bytes, then fails every write.
    struct Cramped {
        room: usize,
        got: Vec<u8>,
    }

    impl std::io::Write for Cramped {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.got.len() + b.len() > self.room {
                return Err(std::io::Error::other("no space left (test)"));
            }
            self.got.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl crate::rdb::writer::KernelCopy for Cramped {}

    /// When one output fails, the run's error is that output's own, whatever the others did
    /// (finished, or stopped because of it).
    #[test]
    fn a_failing_output_reports_its_own_error() {
        use crate::merge::{OnConflict, Options, plan, write};
        use crate::split::{DbSelect, Layout, SplitRouter};
        let data = all_types();
        let layout = Layout::even(3).unwrap();
        let router = SplitRouter { layout: &layout, dbs: DbSelect::All };
        let sources = vec![Source::new("in.rdb", &data)];
        let p = plan(&sources, &router, &Options { on_conflict: OnConflict::Last, ..Default::default() }).unwrap();
        assert!(usable(&p, 3));
        for failing in 0..3 {
            let outs = (0..3).map(|o| Cramped { room: if o == failing { 100 } else { usize::MAX }, got: Vec::new() });
            let e = write(&p, &sources, &router, outs.collect()).err().expect("an output failed").to_string();
            assert!(e.contains("no space left (test)"), "output {failing}: {e}");
            assert!(!e.contains("stopped"), "output {failing}: {e}");
        }
    }

    /// `keys` keys in db 0, copied under new names from all-types.rdb's (about 400 bytes a key).
    fn many_keys(keys: u64) -> Vec<u8> {
        let data = all_types();
        let format = Reader::new(&data).unwrap().format();
        let recs: Vec<_> = Reader::new(&data)
            .unwrap()
            .filter_map(|r| match r.unwrap() {
                Record::Key(k) if k.expire_at_ms.is_none() => Some(k),
                _ => None,
            })
            .collect();
        let mut w = writer::RdbWriter::new(Vec::new(), format);
        w.begin_db(0, keys, 0).unwrap();
        for i in 0..keys {
            let k = &recs[i as usize % recs.len()];
            w.key(k, &data, format, Some(format!("k{i}").as_bytes())).unwrap();
        }
        w.finish().unwrap().0
    }

    /// An output of a writer thread (what the test's own thread writes passes): it panics at
    /// its first write when `panics`, else waits until that thread has unwound before taking
    /// the bytes (a first write comes when the 1 MiB write buffer is full), for 100 ms at most:
    /// the writes run on the pool, whose threads (two on a 2-core machine) may all be held by
    /// waiting outputs while the panicking one's write waits for a thread.
    struct Gate {
        panics: bool,
        fired: std::sync::Arc<AtomicBool>,
        written: std::sync::Arc<AtomicU64>,
        test: std::thread::ThreadId,
    }

    impl std::io::Write for Gate {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if std::thread::current().id() != self.test {
                if self.panics {
                    panic!("a writer panics (test)");
                }
                let t = std::time::Instant::now();
                while !self.fired.load(Ordering::SeqCst) && t.elapsed().as_millis() < 100 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            self.written.fetch_add(b.len() as u64, Ordering::Relaxed);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl crate::rdb::writer::KernelCopy for Gate {}

    impl Drop for Gate {
        /// The panicking writer's output goes last as its thread unwinds (a capture of the
        /// thread's closure): after everything the thread set up to stop the others.
        fn drop(&mut self) {
            if self.panics && std::thread::panicking() {
                self.fired.store(true, Ordering::SeqCst);
            }
        }
    }

    /// A writer that panics stops the others (they do not write their outputs to the end) and
    /// the run's error is the panic: no output is finished, so none is renamed into place.
    #[test]
    fn a_panicking_output_stops_the_others() {
        use crate::merge::{Options, plan, write};
        use crate::split::{DbSelect, Layout, SplitRouter};
        // Outputs of ~8 MB: a writer stopped by the panic has written a buffer or two (1 MiB
        // each) before the panicking output's first write got a thread, what it copied up to
        // its next look at the stop flag (1 MiB of input further) and its buffer flushed as it
        // is dropped: under half an output (it was 2.1 MB of 3.2 under load with a third of
        // these keys).
        let data = many_keys(64_000);
        assert!(data.len() > 8 << 20, "{} bytes: several of the writers' checks (one a MiB)", data.len());
        let layout = Layout::even(3).unwrap();
        let router = SplitRouter { layout: &layout, dbs: DbSelect::All };
        let sources = vec![Source::new("in.rdb", &data)];
        let p = plan(&sources, &router, &Options::default()).unwrap();
        assert!(usable(&p, 3));
        let full: Vec<usize> =
            write(&p, &sources, &router, vec![Vec::new(); 3]).unwrap().into_iter().map(|x| x.0.len()).collect();
        for panicking in 0..3 {
            let fired = std::sync::Arc::new(AtomicBool::new(false));
            let written: Vec<_> = (0..3).map(|_| std::sync::Arc::new(AtomicU64::new(0))).collect();
            let outs = (0..3)
                .map(|o| Gate {
                    panics: o == panicking,
                    fired: fired.clone(),
                    written: written[o].clone(),
                    test: std::thread::current().id(),
                })
                .collect();
            let e = write(&p, &sources, &router, outs).err().expect("an output panicked").to_string();
            assert!(e.contains(&format!("output {panicking}: its writer panicked: a writer panics (test)")), "{e}");
            for o in (0..3).filter(|&o| o != panicking) {
                let w = written[o].load(Ordering::Relaxed) as usize;
                assert!(w < full[o] / 2, "output {o} wrote {w} of {} bytes after output {panicking} panicked", full[o]);
            }
        }
    }
}
