//! `report` of one file read in parts on every core (src/parts.rs), for the aggregates alone
//! (per-key rows keep the one-reader pipeline of `scan_file`: their file order would cost
//! holding each part's rows until the join).
//!
//! Each part measures its keys into figures of its own: sums per db, type, encoding and TTL
//! bucket (`Sums`), and an aggregate holding its slots, prefix table and top lists. The join adds
//! them in file order, the db of the part's first keys fixed up (`Aggregate::add_sums` with the
//! part's db map). The result is that of one reading:
//! - sums are sums, whatever the order;
//! - a top list is a min-heap that a key enters when it ranks above the smallest held; a part
//!   lists every key that entered its own lists, in file order, and the join offers them to the
//!   file's lists in that order. A key that did not enter its part's list ranked at most the
//!   smallest of the part's n best before it, which the file's list holds or beats: it would not
//!   have entered the file's list either, so the file's lists end the same, ties included. Past
//!   `MAX_OFFERS` candidates (or `MAX_SPILLED` sums of dbs switched away from) the join reads
//!   the part again into the file's figures itself;
//! - the prefix table is exact as long as no prefix is dropped. A part gathers its prefixes in
//!   a `PrefixLog` (its hot ones cached, the others logged; the join adds them to the file's
//!   table: totals are sums). A part's log holds at most 1/8 of `--max-prefixes` entries
//!   (parts in flight stay within the memory of one table): a full log is compacted to one
//!   entry a prefix, and a part whose log stays 3/4 full is read again by the join straight
//!   into the file's table. When the file's table itself
//!   reaches the cap, the parts stop and the file is read again by `scan_file` (the drop
//!   order, and so the error bound, of one reading).

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use super::prefixes::PrefixLog;
use super::{Aggregate, Bucket, FileTotals, Options, Sums, TopKey};
use crate::error::{Error, ErrorKind};
use crate::hint::prefetch;
use crate::memory::{Estimator, KeyFigures};
use crate::parts::{Span, Steps, UNKNOWN_DB};
use crate::rdb::reader::{KeyRecord, Reader, Record};
use crate::rdb::types::{Format, Kind};

/// Top-list candidates a part lists at most (both lists) before it asks to be read again.
const MAX_OFFERS: usize = 1 << 14;

/// Buckets a part's sums spill at most (a file switching between many dbs, `Sums`) before it
/// asks to be read again: parts in flight stay within a few MiB whatever the file.
const MAX_SPILLED: usize = 1 << 16;

/// What reading one part gives.
pub(super) struct Part {
    span: Span,
    /// The part's own figures, its prefixes gathered apart (`None`: read again by the join
    /// straight into the file's). Keys before the part's first SELECTDB are in `UNKNOWN_DB`
    /// when its db was not known.
    agg: Option<(Aggregate, PrefixLog)>,
    /// Every key that entered the part's own top lists, in file order.
    offers_memory: Vec<TopKey>,
    offers_elements: Vec<TopKey>,
    /// The part's sums per db, type, encoding and TTL bucket (its keys, memory, elements), which
    /// the join adds to the file's with the db fixed up.
    sums: Sums,
    /// The totals of sums a part read again by the join added to the file's figures as it went
    /// (not in `sums`).
    sums_added: Bucket,
    /// The db the part ended in, if it selected one.
    last_db: Option<u64>,
    /// Keys with an empty collection, not counted (Redis drops them on load).
    empty_keys: u64,
    /// What ended the file in the part: a record that does not parse, or a key whose value
    /// cannot be measured (its db and name).
    error: Option<Error>,
    bad_key: Option<(u64, Vec<u8>, Error)>,
}

/// What every part of one file shares.
struct Ctx<'d, 'o> {
    name: &'d str,
    data: &'d [u8],
    format: Format,
    opts: &'o Options,
    abort: AtomicBool,
    /// Parts' figures joined, emptied for the next parts.
    spare: std::sync::Mutex<Vec<(Aggregate, PrefixLog)>>,
}

/// Log entries a part read again by the join gathers before it adds them to the file's table.
const SPILL: usize = 1 << 12;

/// Keys whose slot counter is updated later (see `read_part`).
const SLOTS_LATER: usize = 4;

/// Measures the keys from `range.start` (a record boundary) until a record starts at or after
/// `range.end`, in db `db` (`None`: not known): into the part's own aggregate, or with `into`
/// straight into the file's (a part read again by the join, its db known).
fn read_part(
    ctx: &Ctx<'_, '_>,
    range: Range<usize>,
    db: Option<u64>,
    into: Option<&mut Aggregate>,
    mut lane: Option<crate::pass::Lane<'_, '_>>,
) -> Part {
    let opts = ctx.opts;
    let mut part = Part {
        span: Span::new(range.start, db),
        agg: None,
        offers_memory: Vec::new(),
        offers_elements: Vec::new(),
        sums: Sums::default(),
        sums_added: Bucket::default(),
        last_db: None,
        empty_keys: 0,
        error: None,
        bad_key: None,
    };
    let own = into.is_none();
    // A part's figures the join is done with, or new ones (fresh tables cost page faults, and
    // their release as much again).
    let spare = ctx.spare.lock().ok().and_then(|mut v| v.pop());
    let (mut mine, mut log) = match spare {
        // Emptied here, by the core that fills it again: the join, which read it last, leaves
        // it (its slot counters emptied there would cross between the cores twice).
        Some((mut mine, log)) => {
            mine.clear();
            (mine, log)
        }
        None => (Aggregate::new(opts), PrefixLog::default()),
    };
    let agg = match into {
        Some(a) => a,
        None => &mut mine,
    };
    // The log entries a part gathers at most: its prefixes stay within the memory of 1/8 of
    // the file's table.
    let max_logged = if own { (opts.max_prefixes / 8).max(1) } else { SPILL };
    let mut est = if opts.largest_element { Estimator::new() } else { Estimator::without_largest() };
    let mut sums = Sums::default();
    let every = opts.filter.keeps_every_key();
    let mut later = [(0usize, 0u64); SLOTS_LATER];
    let mut n_keys = 0usize;
    let mut reader = Reader::resume(ctx.data, ctx.format, range.start, db.unwrap_or(UNKNOWN_DB));
    let mut steps = Steps::new(range.end);
    loop {
        let tick = |at| {
            if let Some(l) = lane.as_mut() {
                l.upto(at);
            }
            !(own && ctx.abort.load(Ordering::Relaxed))
        };
        if !steps.go(reader.offset() as usize, &mut part.span, tick) {
            break;
        }
        // Looked at by reference where the reader built it (no record moved per key: a
        // record copied as 16-byte words stalls on the reader's field-by-field stores).
        // Collections walked in place as the reader finds their end (`est.walked()`), unless
        // the filter may turn the key away.
        let read = if every { reader.read_next_with(&mut est) } else { reader.read_next() };
        let k = match &read {
            Ok(Some(Record::Key(k))) => k,
            Ok(Some(Record::SelectDb { db })) => {
                if part.span.ambiguous_select(*db) {
                    break;
                }
                part.last_db = Some(*db);
                // Sums spill only as the keys of another db come: looked at here, before them.
                if sums.spilled() > MAX_SPILLED {
                    if own {
                        part.span.again = true;
                        break;
                    }
                    // Read again by the join from a known db: its sums go to the file's
                    // figures now.
                    part.sums_added.merge(&sums.total());
                    agg.add_sums(&sums, |d| d);
                    sums.clear();
                }
                continue;
            }
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => {
                part.error = read.err();
                break;
            }
        };
        if !every && !opts.filter.matches(k) {
            continue;
        }
        // The value first (a collection the reader walked is measured already), the key's
        // part after (its name's length is read once the reader's stores of it are done).
        let f = match est.key(&k.key, &k.value) {
            Ok(f) => f,
            // Redis skips a key whose collection is empty as it loads the file: not counted.
            Err(e) if e.kind == ErrorKind::EmptyValue => {
                part.empty_keys += 1;
                continue;
            }
            Err(e) => {
                part.bad_key = Some((k.db, k.key.to_vec(), e));
                break;
            }
        };
        let kind = k.value.kind();
        sums.add(k.db, kind, k.expire_at_ms, &f, opts.now_ms);
        if agg.top_memory.wants(f.memory) || agg.top_elements.wants(f.elements) {
            offer_top(agg, &mut part, own, (k.db, &k.key, kind), &f, ctx.name);
        }
        // The prefixes first: their scan brings the key's bytes into cache for its slot.
        log.add_key(&k.key, opts, f.memory, k.expire_at_ms.is_some());
        // The slot table (256 KiB) does not stay in cache as the part's bytes stream through:
        // each counter is fetched now and updated `SLOTS_LATER` keys later.
        let slot = crate::slot::key_slot(&k.key) as usize;
        prefetch(&agg.slots[slot]);
        let (s, memory) = std::mem::replace(&mut later[n_keys % SLOTS_LATER], (slot, f.memory));
        n_keys += 1;
        let s = &mut agg.slots[s];
        s.0 += (n_keys > SLOTS_LATER) as u64;
        s.1 += memory;
        if log.logged() >= max_logged {
            if !own {
                log.drain_into(&mut agg.prefixes);
            } else {
                log.compact();
                // One entry a prefix and still 3/4 full: past what a part keeps, the join reads
                // it again into the file's figures (each compaction frees at least 1/4).
                if log.logged() >= max_logged - max_logged / 4 {
                    part.span.again = true;
                    break;
                }
            }
        }
        if own && part.offers_memory.len() + part.offers_elements.len() > MAX_OFFERS {
            part.span.again = true;
            break;
        }
        // Done with the key: its name taken out and dropped (the only field that may own
        // memory: an integer or LZF-compressed name), the rest of the record dropped field by
        // field in place, rather than through the drop of the whole `Result` (a call per key).
        if let Ok(Some(Record::Key(KeyRecord { key, .. }))) = read {
            drop(key);
        }
    }
    for &(s, memory) in &later[..n_keys.min(SLOTS_LATER)] {
        agg.slots[s].0 += 1;
        agg.slots[s].1 += memory;
    }
    part.sums = sums;
    if own {
        log.flush_hot();
        part.agg = Some((mine, log));
    } else {
        log.drain_into(&mut agg.prefixes);
        if let Ok(mut v) = ctx.spare.lock() {
            v.push((mine, log));
        }
    }
    part
}

/// A key that enters the top lists of `agg` (one of them at least): pushed there, and listed
/// in the part's offers when the part has figures of its own (few keys do: out of line).
#[cold]
#[inline(never)]
fn offer_top(agg: &mut Aggregate, part: &mut Part, own: bool, key: (u64, &[u8], Kind), f: &KeyFigures, file: &str) {
    let (db, key, kind) = key;
    let top = |rank| TopKey {
        rank,
        db,
        key: key.to_vec(),
        kind,
        encoding: f.encoding,
        memory: f.memory,
        elements: f.elements,
        file: file.to_owned(),
    };
    if agg.top_memory.wants(f.memory) {
        let t = top(f.memory);
        if own {
            part.offers_memory.push(t.clone());
        }
        agg.top_memory.push(t);
    }
    if agg.top_elements.wants(f.elements) {
        let t = top(f.elements);
        if own {
            part.offers_elements.push(t.clone());
        }
        agg.top_elements.push(t);
    }
}

/// The file's figures as the parts are joined in file order.
struct Join<'c, 'd, 'o> {
    ctx: &'c Ctx<'d, 'o>,
    agg: Aggregate,
    totals: FileTotals,
    /// The file's prefix table dropped a prefix: the file is read again in one reading.
    overflow: bool,
    /// Prefixes the last part joined added to the file's table, and its bytes.
    added: Option<(usize, usize)>,
}

impl crate::parts::Join for Join<'_, '_, '_> {
    type Part = Part;

    fn span(part: &Part) -> &Span {
        &part.span
    }

    fn again(&mut self, range: Range<usize>, db: u64) -> Part {
        read_part(self.ctx, range, Some(db), Some(&mut self.agg), None)
    }

    fn apply(&mut self, part: Part, db: &mut u64) -> bool {
        let start_db = *db;
        let span = part.span;
        let fix = |d: u64| span.fix(start_db, d);
        let a = &mut self.agg;
        a.add_sums(&part.sums, fix);
        if let Some((o, mut log)) = part.agg {
            for (x, y) in a.slots.iter_mut().zip(&o.slots) {
                x.0 += y.0;
                x.1 += y.1;
            }
            // The file's table grows once to what the file's prefixes will need at the rate the
            // part before added new ones (growing step by step rehashes every held prefix into
            // fresh pages each time: page faults, then unmapping).
            let held = a.prefixes.len();
            let need = held + log.bound();
            let trend = match (self.added, span.next) {
                (Some((new, bytes)), Some(next)) => {
                    let left = self.ctx.data.len().saturating_sub(next) as u128;
                    (new as u128 * left / bytes.max(1) as u128).min(usize::MAX as u128) as usize
                }
                _ => 0,
            };
            a.prefixes.grow_for(need, need.saturating_add(trend));
            log.drain_into(&mut a.prefixes);
            self.added = span.next.map(|next| (a.prefixes.len().saturating_sub(held), next.saturating_sub(span.start)));
            for mut t in part.offers_memory {
                if a.top_memory.wants(t.rank) {
                    t.db = fix(t.db);
                    a.top_memory.push(t);
                }
            }
            for mut t in part.offers_elements {
                if a.top_elements.wants(t.rank) {
                    t.db = fix(t.db);
                    a.top_elements.push(t);
                }
            }
            if let Ok(mut v) = self.ctx.spare.lock() {
                v.push((o, log));
            }
        }
        let mut total = part.sums.total();
        total.merge(&part.sums_added);
        self.totals.count(&total, part.empty_keys);
        if let Some(d) = part.last_db {
            *db = d;
        }
        if a.prefixes.dropped > 0 {
            self.overflow = true;
            return false;
        }
        if let Some((d, key, e)) = part.bad_key {
            self.totals.error = Some(format!("db {} key {}: {e}", fix(d), crate::display::quoted(&key)));
            return false;
        }
        if let Some(mut e) = part.error {
            e.db = e.db.map(fix);
            self.totals.error = Some(e.to_string());
            return false;
        }
        true
    }
}

/// `scan_file` without per-key rows, reading the file in parts of about `step` bytes on
/// `threads` threads. `None` when the file's prefix table reached its cap (the caller reads
/// the file in one reading).
pub(super) fn scan_parts(
    name: &str,
    data: &[u8],
    opts: &Options,
    pages: &crate::pass::Pages<'_>,
    step: usize,
    threads: usize,
) -> Option<Aggregate> {
    let mut totals = FileTotals::new(name, data.len() as u64);
    let format = match crate::rdb::reader::parse_header(data) {
        Ok(f) => f,
        Err(e) => {
            let mut agg = Aggregate::new(opts);
            totals.error = Some(e.to_string());
            agg.files.push(totals);
            return Some(agg);
        }
    };
    let bounds = crate::rdb::reader::boundaries(data, format, step, &|r| pages.forget(r));
    let ctx = Ctx { name, data, format, opts, abort: AtomicBool::new(false), spare: Default::default() };
    let mut join = Join { ctx: &ctx, agg: Aggregate::new(opts), totals, overflow: false, added: None };
    crate::parts::read_in_parts(
        &bounds,
        threads,
        &ctx.abort,
        |i, range| {
            let lane = pages.lane_over(crate::parts::page_range(&bounds, i, &range));
            if ctx.abort.load(Ordering::Relaxed) {
                return None;
            }
            Some(read_part(&ctx, range, (i == 0).then_some(0), None, Some(lane)))
        },
        &mut join,
    );
    if join.overflow {
        return None;
    }
    let Join { mut agg, totals, .. } = join;
    agg.files.push(totals);
    Some(agg)
}
