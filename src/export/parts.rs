//! JSON export of a big file on several threads: the file is cut into parts at likely record
//! boundaries (`reader::boundaries`), each part rendered on a worker into output blocks of its
//! own (taken from one pool and given back once written: `Blocks`), and the blocks written in
//! file order on the caller's thread (`pass::in_order_here`). The output is byte for byte the
//! one of a single reading (`super::run`).
//!
//! A part is rendered without knowing what came before it: it starts in the database the
//! nearest earlier part ended in (0 when none has ended yet), and in a JSON array its first key
//! is written as if keys came before it. The join takes a part as it is when it starts where the
//! parts before ended, in the database they ended in; it drops the comma of the array's very
//! first key; anything else (a boundary that was not one, a wrong database, a part in which one
//! key's output grew past `Out::SPILL_AT`) is read again there, in order, straight to the
//! output. Every key goes to one `KeySet` in file order, and the part checksums are combined, so
//! the verdicts (record errors, checksum, repeated keys) are those of a single reading.

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::jsonl::JsonWriter;
use super::{
    Blocks, ExportError, KeyCtx, KeyWriter, Options, Out, Stop, Summary, Tally, check_trailer, export_records,
};
use crate::pass::{Follow, Pages};
use crate::rdb::keyset::KeySet;
use crate::rdb::reader::{Reader, Trailer, UNKNOWN_DB};
use crate::rdb::walk::Walker;

/// Input bytes per part: a part's output (about twice its input as JSON) waits in memory for the
/// parts before it, up to `WINDOW` of them; each part costs a boundary search
/// (`reader::boundaries`). On the 1 GiB bench file, with cheap false starts (CPU user + sys,
/// peak RSS, before blocks stopped growing): 2 MiB 3.10 s, 86-88 MB; 3 MiB 3.08 s, 90-95 MB;
/// 4 MiB 3.04 s, 97-102 MB; 6 MiB 2.95 s, 117-126 MB.
pub const PART: usize = 3 << 20;

/// Parts rendered or waiting ahead of the one being written (each holds its output), at least
/// one per thread.
const WINDOW: usize = 2;

/// Files smaller than this are read at once.
const MIN_LEN: usize = 16 << 20;

/// Whether a file of `len` bytes is read in parts by `threads` threads.
pub fn worth_it(len: usize, threads: usize, opts: &Options) -> bool {
    threads > 1 && len >= MIN_LEN && opts.filter.limit.is_none()
}

/// One part as a worker rendered it.
struct Part {
    start: usize,
    /// The database it was read in.
    db: u64,
    stop: Result<Stop, ExportError>,
    /// The database at its end.
    end_db: u64,
    /// Its output and keys.
    kit: Kit,
    tally: Tally,
    trailer: Option<Trailer>,
}

/// What a part is rendered into.
#[derive(Default)]
struct Kit {
    /// The output, in blocks from the pool (`Blocks`).
    blocks: Vec<Vec<u8>>,
    /// (db, hash of the key, offset of the key) of every key, in file order.
    keys: Vec<(u64, u64, u64)>,
}

/// The JSON export (`array`: one JSON array, else JSON Lines) of `data` in parts of about `step`
/// bytes on `threads` threads; `progress` gets the offset reached after each part.
#[allow(clippy::too_many_arguments)]
pub fn run(
    data: &[u8],
    pages: &Pages<'_>,
    opts: &Options,
    array: bool,
    w: &mut dyn Write,
    step: usize,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, ExportError> {
    let format = crate::rdb::reader::parse_header(data).map_err(ExportError::Input)?;
    let ctx = KeyCtx { filter: &opts.filter, format };
    mmap_threshold(1 << 20);
    // The checksum covers what the usual file holds before its trailer: everything up to the
    // EOF byte, then 8 bytes of checksum. Each part computes it over its own range; a file laid
    // out otherwise (bytes after the trailer) is checked in one piece at the end.
    let guess_end = data.len().saturating_sub(8);
    pages.done(guess_end..data.len());
    let bounds = crate::rdb::reader::boundaries(data, format, step.max(1), &|r| pages.forget(r));
    let end_of = |i: usize| bounds.get(i + 1).copied().unwrap_or(usize::MAX);
    let crc_range = |i: usize| {
        let from = if i == 0 { 0 } else { bounds[i] };
        from.min(guess_end)..end_of(i).min(guess_end)
    };
    let crcs: Vec<AtomicU64> = bounds.iter().map(|_| AtomicU64::new(0)).collect();
    let crc_done: Vec<AtomicBool> = bounds.iter().map(|_| AtomicBool::new(false)).collect();
    let end_dbs: Vec<AtomicU64> = bounds.iter().map(|_| AtomicU64::new(UNKNOWN_DB)).collect();
    let abort = AtomicBool::new(false);
    // Output blocks, key lists and walkers go back here once used, for the next parts (memory
    // freed on one thread and allocated again on another would pile up in the allocator's
    // arenas). Blocks: enough for the usual output (about twice the input) of the parts in flight.
    let window = WINDOW.max(threads);
    let pool = Blocks::new((window + 1) * (5 * step / 2).div_ceil(Blocks::FILL));
    let spare: Mutex<Vec<Kit>> = Mutex::new(Vec::new());
    // One walker a worker (a walker keeps buffers as big as the biggest value it walked).
    let walkers: Mutex<Vec<Walker>> = Mutex::new(Vec::new());

    let work = |i: usize| -> Option<Part> {
        let range = crc_range(i);
        if abort.load(Ordering::Relaxed) {
            pages.done(range);
            return None;
        }
        let mut follow = Follow::over(data, range.clone(), pages);
        let start = bounds[i];
        // The database the nearest earlier part known to end in one ended in (joined, or with a
        // SELECTDB of its own): right unless a SELECTDB lies between.
        let db = (0..i).rev().map(|j| end_dbs[j].load(Ordering::Relaxed)).find(|&d| d != UNKNOWN_DB).unwrap_or(0);
        let mut reader = Reader::resume(data, format, start, db);
        let mut kw = JsonWriter::new(array, opts.with_meta);
        kw.set_first(i == 0);
        let Kit { blocks, mut keys } = spare.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default();
        let mut walker = walkers.lock().ok().and_then(|mut w| w.pop()).unwrap_or_default();
        keys.clear();
        let mut nowhere = io::sink();
        let mut out = Out::held(&mut nowhere, &pool, blocks);
        let mut tally = Tally::default();
        let stop = export_records(
            &mut reader,
            end_of(i),
            &mut kw,
            &mut walker,
            &mut out,
            &ctx,
            &mut tally,
            &mut |db, key, at| keys.push((db, xxhash_rust::xxh3::xxh3_64(key), at)),
            &mut |r| follow.upto(r.record_offset() as usize),
        );
        if let Ok(mut w) = walkers.lock() {
            w.push(walker);
        }
        crcs[i].store(follow.finish(usize::MAX), Ordering::Relaxed);
        crc_done[i].store(true, Ordering::Release);
        // This part's pages now, not once every part sharing their unit of `pages` is done
        // (units are bigger than parts; the join faults in again what it reads twice).
        pages.forget(range);
        if tally.selected {
            // Whatever this part started in, it ends in the database it selected.
            end_dbs[i].store(reader.db(), Ordering::Relaxed);
        }
        Some(Part {
            start,
            db,
            stop,
            end_db: reader.db(),
            kit: Kit { blocks: out.take_held(), keys },
            tally,
            trailer: reader.trailer(),
        })
    };

    let mut out = Out::new(w);
    let mut kw = JsonWriter::new(array, opts.with_meta);
    kw.begin(&mut out);
    let mut walker = Walker::new();
    let mut tally = Tally::default();
    let mut keys = KeySet::new();
    // Its buckets at the size they reach before they are written out: grown one push at a time
    // they overshoot by up to twice (31 MiB held for 16 MiB of entries on the 1 GiB bench file).
    keys.reserve(usize::MAX);
    // Where the next part must start, in which database; set once the file ended or failed.
    let (mut expected, mut db) = (9usize, 0u64);
    let mut ended: Option<Result<Option<Trailer>, ExportError>> = None;
    let mut reread = |from: usize,
                      db: u64,
                      end: usize,
                      kw: &mut JsonWriter,
                      out: &mut Out<'_>,
                      tally: &mut Tally,
                      keys: &mut KeySet|
     -> (Result<Stop, ExportError>, u64, Option<Trailer>) {
        kw.set_first(tally.keys == 0);
        let mut reader = Reader::resume(data, format, from, db);
        let mut t = Tally::default();
        let stop = export_records(
            &mut reader,
            end,
            kw,
            &mut walker,
            out,
            &ctx,
            &mut t,
            &mut |db, key, at| keys.insert(db, key, at),
            &mut |_| {},
        );
        tally.add(t);
        (stop, reader.db(), reader.trailer())
    };
    crate::pass::in_order_here(bounds.len(), threads, window, work, |i, part| {
        let end = end_of(i);
        if ended.is_some() || expected >= end {
            if let Some(p) = part {
                give_back(&spare, &pool, p.kit);
            }
            return;
        }
        let (stop, end_db, trailer) = match part {
            Some(p) if p.start == expected && p.db == db && !matches!(p.stop, Ok(Stop::Overflow)) => {
                // In an array, the very first key is written without a comma before it.
                let mut skip = usize::from(i > 0 && array && tally.keys == 0 && p.tally.keys > 0);
                for b in &p.kit.blocks {
                    let s = skip.min(b.len());
                    skip -= s;
                    if let Err(e) = out.put(&b[s..]) {
                        ended = Some(Err(ExportError::Write(e)));
                        return;
                    }
                }
                kw.set_first(tally.keys + p.tally.keys == 0);
                tally.add(p.tally);
                for &(db, hash, at) in &p.kit.keys {
                    keys.insert_hashed(db, hash, at);
                }
                give_back(&spare, &pool, p.kit);
                (p.stop, p.end_db, p.trailer)
            }
            p => {
                if let Some(p) = p {
                    give_back(&spare, &pool, p.kit);
                }
                reread(expected, db, end, &mut kw, &mut out, &mut tally, &mut keys)
            }
        };
        match stop {
            Ok(Stop::At(next)) => {
                expected = next;
                db = end_db;
                end_dbs[i].store(db, Ordering::Relaxed);
                progress(next as u64);
            }
            Ok(Stop::End) => ended = Some(Ok(trailer)),
            Ok(Stop::Limit | Stop::Overflow) => {
                ended = Some(Err(ExportError::Refused("internal: a part stopped without reason".into())))
            }
            Err(e) => ended = Some(Err(e)),
        }
        if ended.is_some() {
            abort.store(true, Ordering::Relaxed);
        }
    });
    // The parts are written: their blocks go back (mapped, so to the system), and what follows
    // allocates from the heap (see `mmap_threshold`).
    drop(pool);
    mmap_threshold(32 << 20);
    let trailer = match ended {
        Some(r) => r?,
        // The last part always ends with the file; should it not, read on from where it stopped.
        None => match reread(expected, db, usize::MAX, &mut kw, &mut out, &mut tally, &mut keys) {
            (Ok(Stop::End), _, t) => t,
            (Err(e), _, _) => return Err(e),
            (Ok(_), _, _) => return Err(ExportError::Refused("internal: the file did not end".into())),
        },
    };
    let mut summary = tally.summary();
    let crc = |end: usize| {
        let parts = (0..bounds.len()).map(|i| (crc_done[i].load(Ordering::Acquire), crcs[i].load(Ordering::Relaxed)));
        let whole = parts.enumerate().try_fold(None, |acc: Option<u64>, (i, (done, c))| {
            if !done {
                return None;
            }
            let len = crc_range(i).len() as u64;
            Some(Some(match acc {
                None => c,
                Some(a) => crate::crc::combine(a, c, len),
            }))
        });
        match whole.flatten() {
            Some(c) if end == guess_end => c,
            _ => crate::crc::crc64(&data[..end.min(data.len())]),
        }
    };
    check_trailer(data, trailer, crc, &mut summary)?;
    keys.check(data).map_err(ExportError::Input)?;
    kw.finish(&mut out);
    out.finish()?;
    progress(data.len() as u64);
    Ok(summary)
}

/// Keeps `kit` for a later part (its blocks in the pool, its lists in `spare`), unless enough
/// are kept.
fn give_back(spare: &Mutex<Vec<Kit>>, pool: &Blocks, mut kit: Kit) {
    pool.give_back(kit.blocks.drain(..));
    if let Ok(mut s) = spare.lock()
        && s.len() < WINDOW + 1
    {
        s.push(kit);
    }
}

/// Allocations of `bytes` and more are mapped on their own (and given back when freed); the
/// heap keeps up to 8 MiB free at its top instead of giving it back.
///
/// While the parts are read: 1 MiB. glibc's default raises the threshold to the size of each
/// big block freed, after which big blocks freed on one thread and allocated on another pile up
/// in its per-thread arenas (export peaked at 140-185 MB instead of about 105 MB on the 1 GiB
/// bench file, whether the part buffers are reused or not). Then, for the duplicate check,
/// 32 MiB: its table of 1 MiB for each of 256 buckets is better reused from the heap than mapped
/// afresh 256 times. Setting a threshold turns off glibc's own adjustment of the other one,
/// which would then stay at 128 KiB: every free at the top of a heap handed back and faulted in
/// again (with both: 111,000 page faults on that file instead of 185,000).
fn mmap_threshold(bytes: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // Safety: mallopt only sets allocator parameters; any value is accepted or refused.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, bytes);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
    }
}
