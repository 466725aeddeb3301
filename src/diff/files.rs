//! File against file, in two steps.
//!
//! 1. Both files are read at once (a thread each) and their keys walked side by side in file
//!    order. Where both sides have the same key at the same place (two saves of one dataset,
//!    a file against its copy), the two values are compared there and then, from the records
//!    in hand: nothing is kept and nothing is read twice. Where the orders part, keys wait as
//!    fingerprints (`FileKeyEntry`: key, value, offset, expire time) in a map per side until
//!    the other side brings the same key; a key found there with the same value fingerprint is
//!    the same value, one with another fingerprint is left for step 2. Past `PENDING_MAX`
//!    waiting keys (files in different orders), the maps go to hashed partitions (in memory up
//!    to the budget, spilled beyond).
//! 2. What is left in the partitions is joined one partition at a time (in parallel): keys
//!    matched by fingerprint, values re-read from the files by offset only where their
//!    fingerprints differ (the same logical value may be encoded differently: those are
//!    compared as values, `compare`). The pages re-read that way are given back every
//!    `FORGET_AFTER` bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rayon::prelude::*;

use super::compare::times_close;
use super::partition::{FileKeyEntry, PARTITIONS, Partitions, equal_hash_range};
use super::set::KeySource;
use super::{
    DiffError, DiffKind, Difference, Entry, KeySelect, Names, Options, Output, SideInfo, Summary, Tally,
    compare_entries, one_sided,
};
use crate::rdb::KeyRecord;
use crate::rdb::walk::Walker;

/// Records per batch sent from a reading thread to the join.
const BATCH: usize = 1024;
/// A batch also ends at this many bytes of keys and values.
const BATCH_BYTES: usize = 256 << 10;
/// Batches in flight per side.
const CHANNEL: usize = 4;
/// Each reading pass gives pages back this far behind the record it reads: farther than the
/// records in flight (`CHANNEL` + 2 batches), so that the join compares values still mapped.
const RELEASE_LAG: usize = 4 << 20;
/// Keys waiting for the other side, both sides together, before they go to the partitions.
const PENDING_MAX: usize = 1 << 15;
/// Pages re-read by offset in step 2 are given back after about this many bytes.
const FORGET_AFTER: u64 = 32 << 20;

/// Compares two RDB images. Differences go to `out` as they are found: those of keys met in
/// step 1 in file order, the others partition by partition (hash order).
pub fn diff_files<'a, 'b>(
    a: &mut impl KeySource<'a>,
    b: &mut impl KeySource<'b>,
    opts: &Options,
    out: &mut dyn Output,
) -> Result<Summary, DiffError> {
    let names = Names { a: a.name().to_owned(), b: b.name().to_owned() };
    let budget = opts.memory_budget / 2;
    let mut pa = Partitions::new(budget, opts.temp_dir.clone());
    let mut pb = Partitions::new(budget, opts.temp_dir.clone());
    let mut tally = Tally::new(out);
    a.set_release_lag(RELEASE_LAG);
    b.set_release_lag(RELEASE_LAG);
    let (keys_a, keys_b) = {
        let select = &opts.select;
        // With a partial selection, the records compared may lie farther apart than the pages a
        // pass keeps mapped (its lag): those pages are read again, and given back from here.
        let partial = !selects_everything(select);
        let pages: Vec<&crate::pass::Pages<'_>> = if partial { a.pages() } else { Vec::new() };
        let pages_b = if partial { b.pages() } else { Vec::new() };
        let mut step = Step1 {
            forget_a: pages,
            forget_b: pages_b,
            touched: 0,
            pend_a: FpMap::default(),
            pend_b: FpMap::default(),
            pa: &mut pa,
            pb: &mut pb,
            tally: &mut tally,
            walker: Walker::new(),
            opts,
            names: &names,
        };
        let (ra, rb) = (&mut *a, &mut *b);
        std::thread::scope(|s| {
            let (ta, rxa) = sync_channel(CHANNEL);
            let (tb, rxb) = sync_channel(CHANNEL);
            s.spawn(move || produce(ra, select, ta));
            s.spawn(move || produce(rb, select, tb));
            // The receivers are dropped on return (an error stops the readers at their next batch).
            step.run(Stream::new(rxa), Stream::new(rxb))
        })?
    };
    join_partitions(&*a, &*b, &mut pa, &mut pb, opts, &names, &mut tally)?;
    tally.summary.keys_a = keys_a;
    tally.summary.keys_b = keys_b;
    tally.summary.sample_rate = opts.select.sample_rate;
    Ok(tally.summary)
}

type Batch<'a> = Result<Vec<KeyRecord<'a>>, DiffError>;

/// A reading thread: every selected key of the side, in batches; an error last.
fn produce<'a>(side: &mut impl KeySource<'a>, select: &KeySelect, tx: SyncSender<Batch<'a>>) {
    let stopped = || DiffError::Io("the join stopped".into(), std::io::ErrorKind::BrokenPipe.into());
    let mut batch = Vec::with_capacity(BATCH);
    let mut bytes = 0usize;
    let r = side.for_each_key(select, |k| {
        bytes += k.key.len() + k.value.bytes.len() + 32;
        batch.push(k);
        if batch.len() >= BATCH || bytes >= BATCH_BYTES {
            bytes = 0;
            tx.send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))).map_err(|_| stopped())?;
        }
        Ok(())
    });
    let r = r.and_then(|()| if batch.is_empty() { Ok(()) } else { tx.send(Ok(batch)).map_err(|_| stopped()) });
    if let Err(e) = r {
        let _ = tx.send(Err(e));
    }
}

/// The records of one side as they arrive from its reading thread.
struct Stream<'a> {
    rx: Receiver<Batch<'a>>,
    cur: std::vec::IntoIter<KeyRecord<'a>>,
    /// Records taken so far.
    n: u64,
}

impl<'a> Stream<'a> {
    fn new(rx: Receiver<Batch<'a>>) -> Stream<'a> {
        Stream { rx, cur: Vec::new().into_iter(), n: 0 }
    }

    fn next(&mut self) -> Result<Option<KeyRecord<'a>>, DiffError> {
        loop {
            if let Some(k) = self.cur.next() {
                self.n += 1;
                return Ok(Some(k));
            }
            match self.rx.recv() {
                Ok(Ok(v)) => self.cur = v.into_iter(),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(None),
            }
        }
    }

    /// Reads the rest of the side: its error, if it has one.
    fn drain(&mut self) -> Option<DiffError> {
        self.cur = Vec::new().into_iter();
        loop {
            match self.rx.recv() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Some(e),
                Err(_) => return None,
            }
        }
    }
}

/// Hashes a key fingerprint (already uniform bits) cheaply.
#[derive(Default)]
struct FpHasher(u64);

impl Hasher for FpHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(29) ^ n;
    }
}

/// Keys waiting for the other side, by key fingerprint.
type FpMap = HashMap<(u64, u64), FileKeyEntry, BuildHasherDefault<FpHasher>>;

/// Whether `select` takes every key.
fn selects_everything(select: &KeySelect) -> bool {
    select.dbs.is_empty()
        && select.globs.is_empty()
        && select.slots.is_empty()
        && select.sample_rate.is_none_or(|r| r >= 1.0)
}

/// Step 1: the two sides walked side by side.
struct Step1<'s, 'o, 'pa, 'pb> {
    /// Pages given back every `FORGET_AFTER` bytes of values compared (partial selections).
    forget_a: Vec<&'pa crate::pass::Pages<'pa>>,
    forget_b: Vec<&'pb crate::pass::Pages<'pb>>,
    touched: u64,
    pend_a: FpMap,
    pend_b: FpMap,
    pa: &'s mut Partitions,
    pb: &'s mut Partitions,
    tally: &'s mut Tally<'o>,
    walker: Walker,
    opts: &'s Options,
    names: &'s Names,
}

impl Step1<'_, '_, '_, '_> {
    /// Walks both sides to their ends; returns the keys of each. An error of side A comes
    /// first (as when A was read before B).
    fn run<'x, 'y>(&mut self, mut sa: Stream<'x>, mut sb: Stream<'y>) -> Result<(u64, u64), DiffError> {
        fn next_b<'y>(sa: &mut Stream<'_>, sb: &mut Stream<'y>) -> Result<Option<KeyRecord<'y>>, DiffError> {
            sb.next().map_err(|e| sa.drain().unwrap_or(e))
        }
        let mut ha = sa.next()?;
        let mut hb = next_b(&mut sa, &mut sb)?;
        loop {
            match (ha.take(), hb.take()) {
                (None, None) => break,
                (Some(x), None) => {
                    self.lone(&x, true)?;
                    ha = sa.next()?;
                }
                (None, Some(y)) => {
                    self.lone(&y, false)?;
                    hb = next_b(&mut sa, &mut sb)?;
                }
                (Some(x), Some(y)) => {
                    if x.db == y.db && x.key == y.key {
                        let ea = Entry { raw: x.value, expire_at_ms: x.expire_at_ms };
                        let eb = Entry { raw: y.value, expire_at_ms: y.expire_at_ms };
                        let d = compare_entries(x.db, &x.key, &ea, &eb, &mut self.walker, self.opts, self.names)?;
                        self.tally.record(d)?;
                        self.touched(x.value.bytes.len() + y.value.bytes.len());
                        ha = sa.next()?;
                        hb = next_b(&mut sa, &mut sb)?;
                        continue;
                    }
                    // The orders part: whichever head the other side has seen is resolved (and
                    // the other head kept), else both wait.
                    let (ex, ey) = (FileKeyEntry::of(&x), FileKeyEntry::of(&y));
                    self.touched(x.value.bytes.len() + y.value.bytes.len());
                    if let Some(e) = self.pend_a.remove(&ey.key_fp()) {
                        self.resolve(e, ey, &y)?;
                        ha = Some(x);
                        hb = next_b(&mut sa, &mut sb)?;
                    } else if let Some(e) = self.pend_b.remove(&ex.key_fp()) {
                        self.resolve(ex, e, &x)?;
                        ha = sa.next()?;
                        hb = Some(y);
                    } else {
                        self.pend_a.insert(ex.key_fp(), ex);
                        self.pend_b.insert(ey.key_fp(), ey);
                        ha = sa.next()?;
                        hb = next_b(&mut sa, &mut sb)?;
                    }
                }
            }
            if self.pend_a.len() + self.pend_b.len() > PENDING_MAX {
                self.evict()?;
            }
        }
        self.evict()?;
        Ok((sa.n, sb.n))
    }

    /// Counts what comparing two values mapped (when pages are to be given back here).
    fn touched(&mut self, bytes: usize) {
        if self.forget_a.is_empty() && self.forget_b.is_empty() {
            return;
        }
        self.touched += bytes as u64 + (128 << 10);
        if self.touched >= FORGET_AFTER {
            self.touched = 0;
            self.forget_a.iter().for_each(|p| p.forget(0..p.len()));
            self.forget_b.iter().for_each(|p| p.forget(0..p.len()));
        }
    }

    /// A key of one side while the other has none at hand.
    fn lone(&mut self, k: &KeyRecord<'_>, in_a: bool) -> Result<(), DiffError> {
        let e = FileKeyEntry::of(k);
        self.touched(k.value.bytes.len());
        let other = if in_a { &mut self.pend_b } else { &mut self.pend_a };
        match other.remove(&e.key_fp()) {
            Some(o) if in_a => self.resolve(e, o, k),
            Some(o) => self.resolve(o, e, k),
            None => {
                let mine = if in_a { &mut self.pend_a } else { &mut self.pend_b };
                mine.insert(e.key_fp(), e);
                Ok(())
            }
        }
    }

    /// The same key on both sides, one of them in hand as `k`: the same value fingerprint is the
    /// same value (then only the expire times may differ); another one goes to step 2.
    fn resolve(&mut self, ea: FileKeyEntry, eb: FileKeyEntry, k: &KeyRecord<'_>) -> Result<(), DiffError> {
        if ea.value_fp != eb.value_fp {
            self.pa.push(ea.hash, &ea.encode())?;
            return self.pb.push(eb.hash, &eb.encode());
        }
        if times_close(ea.expire_at_ms, eb.expire_at_ms, self.opts.ttl_tolerance_ms) {
            return self.tally.record(None);
        }
        // Equal fingerprints include the type byte: one kind on both sides.
        let kind = k.value.kind();
        self.tally.record(Some(Difference {
            db: k.db,
            key: k.key.to_vec(),
            kind: DiffKind::Ttl,
            a: Some(SideInfo { kind, expire_at_ms: ea.expire_at_ms }),
            b: Some(SideInfo { kind, expire_at_ms: eb.expire_at_ms }),
            detail: None,
        }))
    }

    /// Every waiting key to the partitions.
    fn evict(&mut self) -> Result<(), DiffError> {
        for (_, e) in self.pend_a.drain() {
            self.pa.push(e.hash, &e.encode())?;
        }
        for (_, e) in self.pend_b.drain() {
            self.pb.push(e.hash, &e.encode())?;
        }
        Ok(())
    }
}

/// Step 2: the partitions joined, a few at a time in parallel.
fn join_partitions<'a, 'b>(
    a: &impl KeySource<'a>,
    b: &impl KeySource<'b>,
    pa: &mut Partitions,
    pb: &mut Partitions,
    opts: &Options,
    names: &Names,
    tally: &mut Tally<'_>,
) -> Result<(), DiffError> {
    if pa.is_empty() && pb.is_empty() {
        return Ok(());
    }
    let reread = AtomicU64::new(0);
    // A few partitions at a time, so that their differences stay few in memory.
    let group = rayon::current_num_threads().max(1) * 2;
    for first in (0..PARTITIONS).step_by(group) {
        let mut loaded = Vec::new();
        for i in first..(first + group).min(PARTITIONS) {
            loaded.push((FileKeyEntry::decode_all(&pa.take(i)?), FileKeyEntry::decode_all(&pb.take(i)?)));
        }
        let results: Vec<Result<(u64, Vec<Difference>), DiffError>> =
            loaded.into_par_iter().map(|(ea, eb)| join_file_partition(a, b, ea, eb, opts, names, &reread)).collect();
        for r in results {
            let (same, diffs) = r?;
            // Differences are counted as they are recorded.
            tally.summary.same += same;
            for d in diffs {
                tally.record(Some(d))?;
            }
        }
        if reread.load(Ordering::Relaxed) >= FORGET_AFTER {
            reread.store(0, Ordering::Relaxed);
            a.forget_pages();
            b.forget_pages();
        }
    }
    Ok(())
}

/// Joins one partition: keys matched by fingerprint; values read again only where their
/// fingerprints differ (or for a difference's key and type). Returns the keys found the same
/// and the differences.
fn join_file_partition<'a, 'b>(
    a: &impl KeySource<'a>,
    b: &impl KeySource<'b>,
    mut ea: Vec<FileKeyEntry>,
    eb: Vec<FileKeyEntry>,
    opts: &Options,
    names: &Names,
    reread: &AtomicU64,
) -> Result<(u64, Vec<Difference>), DiffError> {
    let mut same = 0;
    let mut diffs = Vec::new();
    let mut w = Walker::new();
    // What a re-read value costs in mapped pages, about: a page fault maps the pages around
    // it that are in the page cache too (64 KiB by default).
    let cost = |len: usize| reread.fetch_add(len as u64 + (64 << 10), Ordering::Relaxed);
    ea.sort_unstable_by_key(|e| (e.hash, e.hash2));
    let mut matched = vec![false; ea.len()];
    for e in &eb {
        let found = equal_hash_range(&ea, e.hash).find(|&i| !matched[i] && ea[i].hash2 == e.hash2 && ea[i].db == e.db);
        if let Some(i) = found {
            matched[i] = true;
            let x = &ea[i];
            if x.value_fp == e.value_fp && times_close(x.expire_at_ms, e.expire_at_ms, opts.ttl_tolerance_ms) {
                same += 1;
                continue;
            }
        }
        let kb = b.key_at(e.key_offset)?;
        let rb = b.value_at(e.key_offset)?;
        cost(rb.bytes.len());
        let entry_b = Entry { raw: rb, expire_at_ms: e.expire_at_ms };
        match found {
            Some(i) => {
                let x = &ea[i];
                let ra = a.value_at(x.key_offset)?;
                cost(ra.bytes.len());
                let entry_a = Entry { raw: ra, expire_at_ms: x.expire_at_ms };
                match compare_entries(e.db, &kb, &entry_a, &entry_b, &mut w, opts, names)? {
                    None => same += 1,
                    Some(d) => diffs.push(d),
                }
            }
            None => diffs.push(one_sided(e.db, &kb, entry_b.info(), false, a.as_of_ms(), opts)),
        }
    }
    for (i, e) in ea.iter().enumerate() {
        if matched[i] {
            continue;
        }
        let ka = a.key_at(e.key_offset)?;
        let ra = a.value_at(e.key_offset)?;
        cost(ra.bytes.len());
        let info = SideInfo { kind: ra.kind(), expire_at_ms: e.expire_at_ms };
        diffs.push(one_sided(e.db, &ka, info, true, b.as_of_ms(), opts));
    }
    Ok((same, diffs))
}
