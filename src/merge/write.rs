//! Pass 2 by reading the inputs: one output by whole pieces of each input (`copy_all`), several
//! each by a thread of its own fed batches of records (`write_threads`). The entry points, the
//! temporary files, fsync and renames are `super::pass2`'s; the copy by pass 1's logs is
//! `super::write_logged`'s; the checks of the inputs and outputs are in `super::check`.

use std::collections::BTreeSet;
use std::io::Write;

use super::check::{Encoded, OutputStats};
use super::conflicts::Action;
use super::plan::Plan;
use super::route::{DbRoute, Router};
use super::scan::Section;
use super::{MergeError, Source};
use crate::display::quoted;
use crate::error::Error;
use crate::rdb::reader::{KeyRecord, Reader, Record};
use crate::rdb::types::Format;
use crate::rdb::writer::{self, Copied, KernelCopy, RdbWriter, WriteError};

/// At most this many encoded ranges are listed per output (16 bytes each); beyond, the whole
/// output is read back.
const MAX_ENCODED: usize = 1 << 20;

/// Encoded ranges of one output while it is written.
pub(super) struct Tracker(pub(super) Encoded);

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

/// A finished output: the writer's output, what was written, the pieces copied from inputs.
pub(super) type Finished<W> = (W, OutputStats, Vec<Copied>);

/// Pass 2 into several outputs, each written by a thread of its own.
pub(super) fn write_threads<'a, W: KernelCopy + Send>(
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
pub(super) enum Job<'a, 'p> {
    /// SELECTDB + RESIZEDB.
    Begin { db: u64, keys: u64, expires: u64 },
    /// A key record of input `src` (format `fmt`), under its name or `name`.
    Key { k: KeyRecord<'a>, src: &'a [u8], fmt: Format, name: Option<&'p [u8]>, verbatim: bool },
}

/// Where pass 2 sends what it writes: the one output itself, or the threads of several.
pub(super) trait Dest<'a, 'p> {
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
pub(super) trait PieceOut<'a> {
    fn pieces(&mut self, plan: &Plan, s: &Source<'a>, i: usize, x: &Section) -> Result<(), MergeError>;
}

pub(super) fn write_error(o: usize, e: WriteError) -> MergeError {
    match e {
        WriteError::Io(e) => MergeError::Io(format!("output {o}: {e}")),
        WriteError::Refused(m) => MergeError::Refused { messages: vec![m], total: 1 },
    }
}

/// An output being written, and the records encoded into it so far.
pub(super) struct Out<'a, W: Write> {
    pub(super) w: RdbWriter<'a, W>,
    pub(super) enc: Tracker,
}

impl<'a, W: KernelCopy + Send> Out<'a, W> {
    /// AUX fields, module data (before the keys) and functions.
    pub(super) fn head(&mut self, plan: &Plan, o: usize) -> Result<(), MergeError> {
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
    pub(super) fn apply(&mut self, o: usize, job: Job<'a, '_>) -> Result<(), MergeError> {
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
    pub(super) fn finish(self, plan: &Plan, o: usize) -> Result<Finished<W>, MergeError> {
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
pub(super) fn copy_all<'a, 'p, D: Dest<'a, 'p> + ?Sized>(
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
