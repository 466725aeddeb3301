//! Pass 2: copying the key records into the outputs, and the files around it (temporary names,
//! fsync, the check of every output, the renames).
//!
//! Over 700 lines for now: the copy of whole pieces around dropped or renamed records, split's
//! writer threads and the check that inputs still hold what pass 1 verified all meet in the
//! pass-2 loop; the input check could move to a module of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::conflicts::Action;
use super::plan::Plan;
use super::route::{DbRoute, Router};
use super::scan::Section;
use super::{DbPlan, MergeError, Source};
use crate::display::quoted;
use crate::error::Error;
use crate::output::AtomicFile;
use crate::rdb::reader::{KeyRecord, Reader, Record};
use crate::rdb::types::Format;
use crate::rdb::writer::{self, Copied, KernelCopy, RdbWriter, WriteError};

/// What pass 2 wrote into one output.
#[derive(Debug, Clone)]
pub struct OutputStats {
    pub bytes: u64,
    pub checksum: Option<u64>,
    /// The records this pass encoded itself (not copied from an input), to be read back.
    pub encoded: Encoded,
}

/// Where an output holds records that pass 2 encoded rather than copied (see `write_files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoded {
    /// Byte ranges of the output, in order; the rest is header, AUX, functions and module data
    /// before the first range (read back whole), key records copied from validated inputs, and
    /// the EOF and checksum.
    Ranges(Vec<std::ops::Range<u64>>),
    /// Too many to list (every key re-encoded for another format, or module data after the
    /// keys): the whole output is read back.
    All,
}

/// At most this many encoded ranges are listed per output (16 bytes each); beyond, the whole
/// output is read back.
const MAX_ENCODED: usize = 1 << 20;

/// Encoded ranges of one output while it is written.
struct Tracker(Encoded);

impl Tracker {
    fn add(&mut self, r: std::ops::Range<u64>) {
        if let Encoded::Ranges(v) = &mut self.0 {
            if v.len() >= MAX_ENCODED {
                self.0 = Encoded::All;
            } else if r.start < r.end {
                v.push(r);
            }
        }
    }
}

/// Pass 2: writes every output (`outs[o]` for router output `o`). One output is written by the
/// calling thread; several (split) each by a thread of its own, fed by the one reader of each
/// input in batches, so that copying, checksums and writes run on every core.
pub fn write<'a, W: KernelCopy + Send>(
    plan: &Plan,
    sources: &[Source<'a>],
    router: &dyn Router,
    outs: Vec<W>,
) -> Result<Vec<(W, OutputStats)>, MergeError> {
    // Write buffers share 256 MiB (at most 1 MiB each).
    let limit = ((256usize << 20) / outs.len().max(1)).min(1 << 20);
    let pages: Vec<crate::pass::Pages<'a>> = sources.iter().map(|s| s.pages(outs.len() as u32)).collect();
    let pages = &pages;
    let mut ws: Vec<Out<'_, W>> = outs
        .into_iter()
        .map(|w| Out { w: RdbWriter::with_buffer(w, plan.target, limit), enc: Tracker(Encoded::Ranges(Vec::new())) })
        .collect();
    // Every writer is a consumer of every input's pages (it copies forward through each; the
    // reader of pass 2 moves with the copies, so it is not counted).
    for Out { w, .. } in &mut ws {
        for (s, p) in sources.iter().zip(pages) {
            w.release_into(s.data, p);
            if let Some(f) = s.input.and_then(|i| i.file()) {
                w.copy_from_file(s.data, f);
            }
        }
    }
    for (o, out) in ws.iter_mut().enumerate() {
        out.w.track_copies();
        out.head(plan, o)?;
    }
    let done = if ws.len() == 1 {
        copy_all(plan, sources, router, &mut ws[..])?;
        ws.into_iter().enumerate().map(|(o, out)| out.finish(plan, o)).collect::<Result<Vec<_>, _>>()?
    } else {
        write_threads(plan, sources, router, ws)?
    };
    let mut copies: Vec<Copied> = Vec::new();
    let done: Vec<(W, OutputStats)> = done
        .into_iter()
        .map(|(w, st, c)| {
            copies.extend(c);
            (w, st)
        })
        .collect();
    for (i, s) in sources.iter().enumerate() {
        check_input(s, plan.input_crcs[i], &mut copies)?;
    }
    Ok(done)
}

/// Checks that input `s` still holds what pass 1 verified: its CRC-64 over the bytes up to its
/// EOF (`end`), from the CRCs of the pieces the writers copied straight from it (`copies`, of
/// every input) and, for the rest, its bytes now. An input that changed between the passes
/// (so that the outputs hold bytes pass 1 never validated) fails the run.
fn check_input(s: &Source<'_>, (end, want): (u64, u64), copies: &mut [Copied]) -> Result<(), MergeError> {
    let id = s.data.as_ptr() as usize;
    let end = (end as usize).min(s.data.len());
    copies.sort_unstable_by_key(|c| (c.src, c.start));
    let from = copies.partition_point(|c| c.src < id);
    let mut crc = 0u64;
    let mut at = 0usize;
    let add = |crc: &mut u64, at: usize, c: u64, len: usize| {
        *crc = if at == 0 { c } else { crate::crc::combine(*crc, c, len as u64) };
    };
    // Bytes read now, in steps whose pages are given back (RSS stays flat): everything up to the
    // end of each step, so that the pages a gap shares with the pieces around it (faulted in,
    // but in neither's whole pages) are given back too.
    let mut released = 0usize;
    let mut read = |crc: &mut u64, from: usize, to: usize| {
        let mut at = from;
        while at < to {
            let next = to.min((at / crate::pass::UNIT + 1) * crate::pass::UNIT);
            add(crc, at, crate::crc::crc64(&s.data[at..next]), next - at);
            if let Some(i) = s.input {
                // From the page that holds the end of the last step.
                i.release(released.min(at) / PAGE * PAGE..next);
                released = next;
            }
            at = next;
        }
    };
    for c in copies[from..].iter().take_while(|c| c.src == id) {
        // The same bytes copied twice (one input given twice) count once.
        if c.start < at || c.start + c.len > end {
            continue;
        }
        read(&mut crc, at, c.start);
        at = at.max(c.start);
        add(&mut crc, at, c.crc, c.len);
        at += c.len;
    }
    read(&mut crc, at, end);
    if end == 0 || crc == want {
        return Ok(());
    }
    Err(MergeError::Input {
        file: s.name.clone(),
        error: Error::corrupt(
            0,
            format!(
                "the input changed while it was read (CRC-64 {crc:016x} now, {want:016x} when it was verified): nothing written"
            ),
        ),
    })
}

/// A finished output: the writer's output, what was written, the pieces copied from inputs.
type Finished<W> = (W, OutputStats, Vec<Copied>);

/// Pass 2 into several outputs, each written by a thread of its own.
fn write_threads<'a, W: KernelCopy + Send>(
    plan: &Plan,
    sources: &[Source<'a>],
    router: &dyn Router,
    ws: Vec<Out<'a, W>>,
) -> Result<Vec<Finished<W>>, MergeError> {
    std::thread::scope(|scope| {
        let mut txs = Vec::with_capacity(ws.len());
        let mut threads = Vec::with_capacity(ws.len());
        for (o, mut out) in ws.into_iter().enumerate() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Job<'a, '_>>>(IN_FLIGHT);
            txs.push(tx);
            threads.push(scope.spawn(move || {
                for batch in rx {
                    for job in batch {
                        out.apply(o, job)?;
                    }
                }
                out.finish(plan, o)
            }));
        }
        let mut fan = Fan { batches: (0..txs.len()).map(|_| Vec::with_capacity(BATCH)).collect(), txs };
        let copied = copy_all(plan, sources, router, &mut fan).and_then(|()| fan.flush_all());
        // Closing the channels ends the threads (at once when one of them failed).
        drop(fan);
        let results: Vec<Result<Finished<W>, MergeError>> = threads
            .into_iter()
            .enumerate()
            .map(|(o, t)| t.join().unwrap_or_else(|_| Err(MergeError::Io(format!("output {o}: its writer panicked")))))
            .collect();
        // A writer's own error explains a failed send better than the send does.
        let mut done = Vec::with_capacity(results.len());
        for r in results {
            done.push(r?);
        }
        copied?;
        Ok(done)
    })
}

/// Records sent to an output's thread at a time, and batches queued per output.
const BATCH: usize = 512;
const IN_FLIGHT: usize = 4;

/// The reading side of pass 2 over several outputs: per output a batch being filled, and the
/// channel to its thread.
struct Fan<'a, 'p> {
    batches: Vec<Vec<Job<'a, 'p>>>,
    txs: Vec<std::sync::mpsc::SyncSender<Vec<Job<'a, 'p>>>>,
}

impl<'a, 'p> Fan<'a, 'p> {
    fn send(&mut self, o: usize) -> Result<(), MergeError> {
        let batch = std::mem::replace(&mut self.batches[o], Vec::with_capacity(BATCH));
        // A closed channel: that output's thread stopped on an error (it is reported instead).
        self.txs[o].send(batch).map_err(|_| MergeError::Io(format!("output {o}: its writer stopped")))
    }
    fn flush_all(&mut self) -> Result<(), MergeError> {
        for o in 0..self.batches.len() {
            if !self.batches[o].is_empty() {
                self.send(o)?;
            }
        }
        Ok(())
    }
}

/// What pass 2 writes into an output besides its head and tail.
enum Job<'a, 'p> {
    /// SELECTDB + RESIZEDB.
    Begin { db: u64, keys: u64, expires: u64 },
    /// A key record of input `src` (format `fmt`), under its name or `name`.
    Key { k: KeyRecord<'a>, src: &'a [u8], fmt: Format, name: Option<&'p [u8]>, verbatim: bool },
}

/// Where pass 2 sends what it writes: the one output itself, or the threads of several.
trait Dest<'a, 'p> {
    fn outputs(&self) -> usize;
    fn job(&mut self, o: usize, job: Job<'a, 'p>) -> Result<(), MergeError>;
    /// The outputs themselves, when this thread writes them (whole pieces need them).
    fn direct(&mut self) -> Option<&mut dyn PieceOut<'a>> {
        None
    }
}

impl<'a, 'p> Dest<'a, 'p> for Fan<'a, 'p> {
    fn outputs(&self) -> usize {
        self.batches.len()
    }
    #[inline]
    fn job(&mut self, o: usize, job: Job<'a, 'p>) -> Result<(), MergeError> {
        self.batches[o].push(job);
        if self.batches[o].len() >= BATCH { self.send(o) } else { Ok(()) }
    }
}

impl<'a, 'p, W: KernelCopy + Send> Dest<'a, 'p> for [Out<'a, W>] {
    fn outputs(&self) -> usize {
        self.len()
    }
    #[inline]
    fn job(&mut self, o: usize, job: Job<'a, 'p>) -> Result<(), MergeError> {
        self[o].apply(o, job)
    }
    fn direct(&mut self) -> Option<&mut dyn PieceOut<'a>> {
        match self {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// The one output of a merge, written in whole pieces (see `copy_pieces`).
trait PieceOut<'a> {
    fn pieces(&mut self, plan: &Plan, s: &Source<'a>, i: usize, x: &Section) -> Result<(), MergeError>;
}

fn write_error(o: usize, e: WriteError) -> MergeError {
    match e {
        WriteError::Io(e) => MergeError::Io(format!("output {o}: {e}")),
        WriteError::Refused(m) => MergeError::Refused { messages: vec![m], total: 1 },
    }
}

/// An output being written, and the records encoded into it so far.
struct Out<'a, W: Write> {
    w: RdbWriter<'a, W>,
    enc: Tracker,
}

impl<'a, W: KernelCopy + Send> Out<'a, W> {
    /// AUX fields, module data (before the keys) and functions.
    fn head(&mut self, plan: &Plan, o: usize) -> Result<(), MergeError> {
        let w = &mut self.w;
        for (k, v) in &plan.aux {
            w.aux(k, v).map_err(|e| write_error(o, e.into()))?;
        }
        for (m, when, p) in plan.module_aux.iter().filter(|x| x.1 != 2) {
            w.module_aux(*m, *when, p).map_err(|e| write_error(o, e))?;
        }
        for f in &plan.functions {
            w.function(f).map_err(|e| write_error(o, e))?;
        }
        Ok(())
    }

    #[inline]
    fn apply(&mut self, o: usize, job: Job<'a, '_>) -> Result<(), MergeError> {
        let Out { w, enc } = self;
        let at = w.position();
        match job {
            Job::Begin { db, keys, expires } => {
                w.begin_db(db, keys, expires).map_err(|e| write_error(o, e))?;
                enc.add(at..w.position());
            }
            Job::Key { k, src, fmt, name, verbatim } => {
                w.key(&k, src, fmt, name).map_err(|e| write_error(o, e))?;
                if name.is_some() || !verbatim {
                    enc.add(at..w.position());
                }
            }
        }
        Ok(())
    }

    /// Module data after the keys, EOF and checksum; the pieces copied straight from inputs.
    fn finish(self, plan: &Plan, o: usize) -> Result<Finished<W>, MergeError> {
        let Out { mut w, mut enc } = self;
        for (m, when, p) in plan.module_aux.iter().filter(|x| x.1 == 2) {
            enc.0 = Encoded::All;
            w.module_aux(*m, *when, p).map_err(|e| write_error(o, e))?;
        }
        let (out, written, copies) = w.finish_tracked().map_err(|e| write_error(o, e))?;
        Ok((out, OutputStats { bytes: written.bytes, checksum: written.checksum, encoded: enc.0 }, copies))
    }
}

/// Every input into the outputs, db section by db section.
fn copy_all<'a, 'p, D: Dest<'a, 'p> + ?Sized>(
    plan: &'p Plan,
    sources: &[Source<'a>],
    router: &dyn Router,
    dest: &mut D,
) -> Result<(), MergeError> {
    let dbs: BTreeSet<u64> =
        plan.counts.iter().flat_map(|m| m.iter().filter(|(_, c)| c.keys > 0).map(|(d, _)| *d)).collect();
    // When the target dbs of the inputs' sections, inputs in order, never go down, one read of
    // each input writes every db section in order. Otherwise each target db is a pass of its
    // own over the inputs that hold it (each read up to its last section for that db).
    let order: Vec<u64> = plan
        .sections
        .iter()
        .flatten()
        .filter(|x| x.keys > 0)
        .filter_map(|x| match router.db(x.db) {
            DbRoute::To(d) => Some(d),
            _ => None,
        })
        .collect();
    // An input whose key records go to the one output is copied section by section as whole
    // pieces, without reading it again: only the records the plan drops or renames are read
    // (renamed ones re-encoded), and the pieces go around them.
    let pieces: Vec<bool> = (0..sources.len())
        .map(|i| {
            dest.outputs() == 1
                && writer::verbatim(plan.formats[i], plan.target)
                && plan.sections[i].iter().all(|x| x.keys == 0 || x.pure)
        })
        .collect();
    let mut current = None;
    if order.is_sorted() {
        for (i, s) in sources.iter().enumerate() {
            if pieces[i] {
                copy_pieces(plan, s, i, router, dest, None, &mut current)?;
            } else {
                copy_input(plan, i, s, router, dest, None, u64::MAX, &mut current)?;
            }
        }
    } else {
        for &d in &dbs {
            begin_dbs(plan, dest, d)?;
            current = Some(d);
            for (i, s) in sources.iter().enumerate() {
                if pieces[i] {
                    copy_pieces(plan, s, i, router, dest, Some(d), &mut current)?;
                    continue;
                }
                let to_d = |x: &&Section| x.keys > 0 && router.db(x.db) == DbRoute::To(d);
                if let Some(stop) = plan.sections[i].iter().filter(to_d).map(|x| x.end).max() {
                    copy_input(plan, i, s, router, dest, Some(d), stop, &mut current)?;
                }
            }
        }
    }
    Ok(())
}

/// SELECTDB + RESIZEDB of target db `d` in every output that has keys there.
fn begin_dbs<'a, 'p, D: Dest<'a, 'p> + ?Sized>(plan: &Plan, dest: &mut D, d: u64) -> Result<(), MergeError> {
    for o in 0..dest.outputs() {
        if let Some(c) = plan.counts[o].get(&d).filter(|c| c.keys > 0) {
            dest.job(o, Job::Begin { db: d, keys: c.keys, expires: c.expires })?;
        }
    }
    Ok(())
}

/// Copies the key sections of input `i` (all, or those going to target db `only`) as whole
/// pieces, without reading them again: the input goes into the one output.
fn copy_pieces<'a, 'p, D: Dest<'a, 'p> + ?Sized>(
    plan: &Plan,
    s: &Source<'a>,
    i: usize,
    router: &dyn Router,
    dest: &mut D,
    only: Option<u64>,
    current: &mut Option<u64>,
) -> Result<(), MergeError> {
    for x in plan.sections[i].iter().filter(|x| x.keys > 0) {
        let DbRoute::To(d) = router.db(x.db) else { continue };
        if only.is_some_and(|o| o != d) {
            continue;
        }
        if *current != Some(d) {
            begin_dbs(plan, dest, d)?;
            *current = Some(d);
        }
        let out = dest.direct().ok_or_else(|| MergeError::Io("whole pieces need the one output".into()))?;
        out.pieces(plan, s, i, x)?;
    }
    Ok(())
}

impl<'a, W: KernelCopy + Send> PieceOut<'a> for Out<'a, W> {
    /// Section `x` of input `i`: its key records as whole pieces, around the records the plan
    /// drops or renames.
    fn pieces(&mut self, plan: &Plan, s: &Source<'a>, i: usize, x: &Section) -> Result<(), MergeError> {
        let input_err = |error: Error| MergeError::Input { file: s.name.clone(), error };
        let (a, b) = (x.first_key, x.keys_end);
        // The records the plan drops or renames, in file order.
        let acts = &plan.actions[i];
        let from = acts.partition_point(|p| p.start < a);
        let to = acts.partition_point(|p| p.start < b);
        let (mut keys, mut expires) = (x.keys, x.expires);
        let mut at = a;
        let Out { w, enc } = self;
        for p in &acts[from..to] {
            if p.start < at || p.end > b {
                return Err(MergeError::Io(format!("{}: planned records out of order at {}", s.name, p.start)));
            }
            // The counts go with the last piece (the writer checks the sums).
            w.records(s.data, at as usize, p.start as usize, 0, 0).map_err(|e| write_error(0, e))?;
            keys -= 1;
            expires -= p.ttl as u64;
            if let Action::Rename(name) = &p.action {
                let mut r = Reader::resume_at(s.data, p.start, x.db).map_err(input_err)?;
                let Some(Ok(Record::Key(k))) = r.next() else {
                    return Err(input_err(Error::corrupt(p.start, "no key record where pass 1 found one")));
                };
                let pos = w.position();
                w.key(&k, s.data, plan.formats[i], Some(name)).map_err(|e| write_error(0, e))?;
                enc.add(pos..w.position());
            }
            at = p.end;
        }
        w.records(s.data, at as usize, b as usize, keys, expires).map_err(|e| write_error(0, e))?;
        s.advance(b - a);
        Ok(())
    }
}

/// Copies the keys of input `i` (all, or those going to target db `only`) into their outputs,
/// reading up to the first non-key record at or after `stop`. Starts the db sections of the
/// outputs when the target db changes (`current`).
#[allow(clippy::too_many_arguments)]
fn copy_input<'a, 'p, D: Dest<'a, 'p> + ?Sized>(
    plan: &'p Plan,
    i: usize,
    s: &Source<'a>,
    router: &dyn Router,
    dest: &mut D,
    only: Option<u64>,
    stop: u64,
    current: &mut Option<u64>,
) -> Result<(), MergeError> {
    let fmt = plan.formats[i];
    let verbatim = writer::verbatim(fmt, plan.target);
    let input_err = |error: Error| MergeError::Input { file: s.name.clone(), error };
    let mut reader = Reader::new(s.data).map_err(input_err)?;
    let actions = &plan.actions[i];
    let mut next_action = 0;
    let mut n = 0u32;
    let mut counted = reader.offset();
    while let Some(rec) = reader.next() {
        n = n.wrapping_add(1);
        if n.is_multiple_of(1024) {
            s.advance(reader.offset() - counted);
            counted = reader.offset();
        }
        let rec = rec.map_err(input_err)?;
        let Record::Key(k) = rec else {
            if reader.record_offset() >= stop {
                break;
            }
            continue;
        };
        let DbRoute::To(d) = router.db(k.db) else { continue };
        if only.is_some_and(|o| o != d) {
            continue;
        }
        if *current != Some(d) {
            begin_dbs(plan, dest, d)?;
            *current = Some(d);
        }
        while next_action < actions.len() && actions[next_action].key_offset < k.key_offset {
            next_action += 1;
        }
        let action = actions.get(next_action).filter(|a| a.key_offset == k.key_offset).map(|a| &a.action);
        let (name, o) = match action {
            Some(Action::Drop) => continue,
            Some(Action::Rename(n)) => (Some(n.as_slice()), router.output(n)),
            None => (None, router.output(&k.key)),
        };
        let o = o.ok_or_else(|| MergeError::Io(format!("{}: key {} has no output", s.name, quoted(&k.key))))?;
        dest.job(o, Job::Key { k, src: s.data, fmt, name, verbatim })?;
    }
    Ok(())
}

/// One written and checked output file.
#[derive(Debug, Clone, Serialize)]
pub struct OutputReport {
    pub file: String,
    pub bytes: u64,
    pub keys: u64,
    pub expires: u64,
    pub dbs: Vec<DbPlan>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timings {
    /// Pass 1: reading the inputs, collisions, counts.
    pub plan_s: f64,
    /// Pass 2: copying into the outputs (fsync included).
    pub write_s: f64,
    /// Checking every output (see `check_output`: encoded parts read back, the rest known).
    pub verify_s: f64,
}

/// Pass 2 into files: each output under a temporary name in its directory, fsynced, checked
/// (`check_output`: nothing is renamed that was not checked), and renamed only when every output
/// passed. Returns the reports and timings; on any failure no target is
/// created and the temporary files are removed.
pub fn write_files(
    plan: &Plan,
    sources: &[Source<'_>],
    router: &dyn Router,
    targets: &[PathBuf],
    inputs: &[&Path],
    force: bool,
) -> Result<(Vec<OutputReport>, Timings), MergeError> {
    let t0 = Instant::now();
    let mut files = Vec::with_capacity(targets.len());
    for t in targets {
        let f = AtomicFile::create(t, inputs, force).map_err(|e| MergeError::Io(format!("{}: {e}", t.display())))?;
        files.push(f);
    }
    // Write errors name the output by its index; the user wants its path.
    let written = write(plan, sources, router, files).map_err(|e| match e {
        MergeError::Io(m) => MergeError::Io(
            targets
                .iter()
                .enumerate()
                .find_map(|(o, t)| m.strip_prefix(&format!("output {o}: ")).map(|r| format!("{}: {r}", t.display())))
                .unwrap_or(m),
        ),
        other => other,
    })?;
    let mut files = Vec::with_capacity(written.len());
    for (mut f, st) in written {
        f.sync().map_err(|e| MergeError::Io(format!("{}: {e}", f.target().display())))?;
        files.push((f, st));
    }
    let write_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    // One output at a time: a whole-file `verify` runs on every core, and its memory stays that of one.
    let checks: Vec<Result<OutputReport, MergeError>> = files
        .iter()
        .enumerate()
        .map(|(o, (f, st))| check_output(f.tmp_path(), f.target(), &plan.counts[o], st))
        .collect();
    let reports: Vec<OutputReport> = checks.into_iter().collect::<Result<_, _>>()?;
    let verify_s = t1.elapsed().as_secs_f64();
    for (f, _) in files {
        let target = f.target().to_path_buf();
        f.commit().map_err(|e| MergeError::Io(format!("{}: {e}", target.display())))?;
    }
    Ok((reports, Timings { plan_s: plan.plan_s, write_s, verify_s }))
}

/// Checks a written file without reading all of it again. What it holds is known: the header,
/// AUX fields, function libraries and module data (read back and parsed whole), database
/// headers and key records this pass encoded (each range read back and parsed, values walked),
/// key records copied byte for byte from inputs that pass 1 fully validated (their counts per
/// database checked by the writer against the plan as they were written), then EOF and the
/// CRC-64 the writer computed over every byte it wrote (read back and compared). Its size on
/// disk must be what was written. When the encoded records are too many to list, or come after
/// the keys, the whole file goes through `verify` instead.
fn check_output(
    tmp: &Path,
    target: &Path,
    planned: &BTreeMap<u64, DbPlan>,
    st: &OutputStats,
) -> Result<OutputReport, MergeError> {
    let name = target.display().to_string();
    let fail = |m: String| MergeError::Io(format!("{name}: the written file failed its check: {m}"));
    let data = crate::input::open(tmp).map_err(|e| fail(format!("cannot re-read it: {e}")))?;
    if data.len() as u64 != st.bytes {
        return Err(fail(format!("{} bytes on disk, {} written", data.len(), st.bytes)));
    }
    let dbs: Vec<DbPlan> = planned.values().filter(|c| c.keys > 0 || c.dropped > 0).copied().collect();
    let (keys, expires) = dbs.iter().fold((0, 0), |(k, e), c| (k + c.keys, e + c.expires));
    let report = OutputReport { file: name.clone(), bytes: st.bytes, keys, expires, dbs };
    let ranges = match &st.encoded {
        Encoded::Ranges(r) if !r.is_empty() => r,
        // No key at all (a small file), or too many encoded records: read it all.
        _ => return verify_whole(&name, &data, &report),
    };
    // The trailer: EOF, then the checksum the writer computed.
    let tail = if st.checksum.is_some() { 9 } else { 1 };
    let Some(eof) = data.len().checked_sub(tail) else {
        return Err(fail("shorter than its trailer".into()));
    };
    if data[eof] != 0xFF {
        return Err(fail(format!("no EOF opcode at offset {eof}")));
    }
    if let Some(c) = st.checksum
        && data[eof + 1..] != c.to_le_bytes()
    {
        return Err(fail("the stored checksum is not the one computed while writing".into()));
    }
    // The head (header to the first database), then every encoded range. Pages are given back
    // behind the parse, gaps included: a fault maps a whole folio of the page cache (up to
    // megabytes on ext4), which reaches past the range into the copied bytes around it.
    let format = crate::rdb::reader::parse_header(&data).map_err(|e| fail(e.to_string()))?;
    let head = 9..ranges[0].start as usize;
    let mut last_end = 0u64;
    let mut released = 0usize;
    let mut release = |to: usize| {
        if to > released + RELEASE_STEP {
            data.release(released / PAGE * PAGE..to);
            released = to;
        }
    };
    for r in std::iter::once(head.start as u64..head.end as u64).chain(ranges.iter().cloned()) {
        if r.start < last_end || r.end > eof as u64 {
            return Err(fail(format!("encoded records at {}..{} out of place", r.start, r.end)));
        }
        last_end = r.end;
        parse_back(&data, format, r.start as usize..r.end as usize, r.start == 9, planned, &mut release)
            .map_err(|m| fail(format!("records at {}..{}: {m}", r.start, r.end)))?;
    }
    Ok(report)
}

/// Pages of a written output are given back in steps of this many bytes while it is checked.
const RELEASE_STEP: usize = 1 << 20;
/// The page size `Input::release` works in.
const PAGE: usize = 4096;

/// Parses `data[r]` (whole records, in place in the written file `data` of `format`): they must
/// end exactly at `r.end`, values must be valid, and databases must be planned ones. `head`: the
/// records before the first database (no key records allowed there). `release(to)` is told how
/// far the parse has gone (pages behind it may be given back).
fn parse_back(
    data: &[u8],
    format: Format,
    r: std::ops::Range<usize>,
    head: bool,
    planned: &BTreeMap<u64, DbPlan>,
    release: &mut dyn FnMut(usize),
) -> Result<(), String> {
    let mut reader = Reader::resume(data, format, r.start, 0);
    let mut walker = crate::rdb::walk::Walker::new();
    while (reader.offset() as usize) < r.end {
        let Some(rec) = reader.next() else { break };
        match rec.map_err(|e| e.to_string())? {
            Record::Key(k) if head => return Err(format!("key {} before any database", quoted(&k.key))),
            Record::Key(k) => walker
                .walk(&k.value, &mut crate::rdb::value::Validate)
                .map_err(|e| format!("key {}: {e}", quoted(&k.key)))?,
            Record::SelectDb { db } if planned.get(&db).is_none_or(|c| c.keys == 0) => {
                return Err(format!("db {db} is not planned"));
            }
            _ => {}
        }
        release(reader.offset() as usize);
    }
    if reader.trailer().is_none() && reader.offset() as usize == r.end {
        Ok(())
    } else {
        Err("they do not end where they should".into())
    }
}

/// Re-reads a written file with `verify`: it must be valid and hold exactly the planned counts.
fn verify_whole(name: &str, data: &crate::input::Input, report: &OutputReport) -> Result<OutputReport, MergeError> {
    let fail = |m: String| MergeError::Io(format!("{name}: the written file failed its check: {m}"));
    let opts = crate::verify::Options { keep_going: false, max_errors: 10, now_ms: 0, target: None };
    let rep = crate::verify::verify_bytes_releasing(name, data, &opts, &|r| data.release(r));
    if !rep.ok {
        let e = rep.errors.first().map_or_else(String::new, |e| {
            let key = e.key.as_ref().map(|k| format!(", key {}", quoted(k))).unwrap_or_default();
            format!("at offset {}{key}: {}", e.offset, e.message)
        });
        return Err(MergeError::Invalid(format!(
            "{name}: the written file failed its check ({e}); values are copied unchanged, so an input \
             holds this broken value (check the inputs with `rdbtool verify`); nothing written"
        )));
    }
    let got: Vec<(u64, u64, u64)> = rep.dbs.iter().map(|d| (d.db, d.keys, d.expires)).collect();
    let want: Vec<(u64, u64, u64)> =
        report.dbs.iter().filter(|c| c.keys > 0).map(|c| (c.db, c.keys, c.expires)).collect();
    if got != want {
        return Err(fail(format!("found (db, keys, expires) {got:?}, planned {want:?}")));
    }
    Ok(report.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{MergeRouter, OnConflict, Options, RenameTemplate, plan};

    /// The check of a written output is real: the file as written passes, and a broken encoded
    /// record, a changed checksum or a short file each fail it.
    #[test]
    fn the_output_check_catches_what_it_claims() {
        let data = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/small-db0.rdb")).unwrap();
        // The same file twice under `rename`: every key is a conflict, every copy renamed (encoded).
        let sources = [Source::new("a.rdb", &data), Source::new("b.rdb", &data)];
        let router = MergeRouter { into_db0: false };
        let rename = Some(RenameTemplate::parse("{input}:{key}").unwrap());
        let opts = Options { on_conflict: OnConflict::Rename, rename, ..Default::default() };
        let plan = plan(&sources, &router, &opts).unwrap();
        let (bytes, st) = write(&plan, &sources, &router, vec![Vec::new()]).unwrap().remove(0);
        let Encoded::Ranges(ranges) = &st.encoded else { panic!("ranges expected: {:?}", st.encoded) };
        assert!(ranges.len() > 2, "SELECTDB and renamed keys: {ranges:?}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.rdb");
        let check = |b: &[u8]| {
            std::fs::write(&file, b).unwrap();
            check_output(&file, &file, &plan.counts[0], &st)
        };
        let rep = check(&bytes).unwrap();
        assert_eq!(rep.keys, plan.counts[0].values().map(|c| c.keys).sum::<u64>());
        // A renamed key record whose type byte is garbage.
        let mut broken = bytes.clone();
        broken[ranges[1].start as usize] = 0xEE;
        let e = check(&broken).unwrap_err().to_string();
        assert!(e.contains("failed its check"), "{e}");
        // The stored checksum changed.
        let mut crc = bytes.clone();
        *crc.last_mut().unwrap() ^= 1;
        assert!(check(&crc).unwrap_err().to_string().contains("checksum"));
        // A byte short.
        assert!(check(&bytes[..bytes.len() - 1]).unwrap_err().to_string().contains("bytes on disk"));
    }

    /// An input that changes between pass 1 and pass 2 (same structure, one value byte changed,
    /// so every copied record still parses and the output's own CRC matches what was written)
    /// fails pass 2: merge (whole pieces) and split (record by record, threads), and through
    /// `write_files` nothing is renamed.
    #[test]
    fn an_input_changed_between_the_passes_is_refused() {
        let data = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/all-types.rdb")).unwrap();
        // The last byte of the last string value's data in the file (a plain string record).
        let mut changed = data.clone();
        let mut at = None;
        for r in Reader::new(&data).unwrap() {
            if let Record::Key(k) = r.unwrap()
                && k.value.type_byte == 0
                && k.value.bytes.len() > 4
            {
                at = Some(k.value.offset as usize + k.value.bytes.len() - 1);
            }
        }
        let at = at.expect("a string value");
        changed[at] ^= 0x01;
        let layout = crate::split::Layout::even(3).unwrap();
        let split = crate::split::SplitRouter { layout: &layout, dbs: crate::split::DbSelect::All };
        let merge = MergeRouter { into_db0: true };
        let opts = Options { on_conflict: OnConflict::Last, ..Default::default() };
        for router in [&merge as &dyn Router, &split] {
            let before = [Source::new("in.rdb", &data)];
            let after = [Source::new("in.rdb", &changed)];
            let plan = plan(&before, router, &opts).unwrap();
            let outs = || (0..router.outputs()).map(|_| Vec::new()).collect::<Vec<Vec<u8>>>();
            // Unchanged: written; changed: refused.
            write(&plan, &before, router, outs()).unwrap();
            let Err(e) = write(&plan, &after, router, outs()) else { panic!("a changed input is refused") };
            let e = e.to_string();
            assert!(e.contains("changed while it was read"), "{e}");
        }
        // Through files: no output appears.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.rdb");
        let before = [Source::new("in.rdb", &data)];
        let after = [Source::new("in.rdb", &changed)];
        let plan = plan(&before, &merge, &opts).unwrap();
        let e = write_files(&plan, &after, &merge, std::slice::from_ref(&target), &[], false).err().unwrap();
        assert!(e.to_string().contains("changed"), "{e}");
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "temporary files removed");
        write_files(&plan, &before, &merge, std::slice::from_ref(&target), &[], false).unwrap();
        assert!(target.exists());
    }
}
