//! Verify's side of the parts join for one RDB image: each part of the file (cut at record
//! boundaries, read on every core, joined in file order: the mechanics are src/parts.rs's,
//! shared with `info` and `report`) parses and validates its records into events, key
//! fingerprints and notes; the join replays them in file order into the report (`Progress`),
//! finds duplicate keys and combines the parts' checksums.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use super::progress::{MAX_WARNINGS, Progress};
use super::report::{Options, trailing_bytes_warning};
use crate::error::{Error, ErrorKind};
use crate::pass::Pages;
use crate::rdb::keyset::KeySet;
use crate::rdb::reader::{Reader, Record, UNKNOWN_DB, key_at};
use crate::rdb::types::Format;
use crate::rdb::walk::Walker;

/// Something that sees every record a `verify` pass reads, so that a caller needing its own facts
/// about the file (merge's plan) gets them in the same reading. The file is read in parts on
/// several threads: each part gets a state of its own (`part`) that `record` fills on that
/// part's thread; the states of the parts that count are handed to `join` in file order (a part
/// read again by the join gets a fresh state; the discarded one is dropped).
///
/// `record` sees a record before its value is judged: the caller must use what it gathered only
/// when the report is ok. Not called under `keep_going` (salvage reads the file again), nor for
/// the second parse around zeroed blocks (which happens only when there are errors).
pub trait Observer: Sync {
    /// The state of a part that starts at `start`, in db `db` (`None`: not known yet; its keys
    /// carry `UNKNOWN_DB` until the first SELECTDB).
    fn part(&self, start: u64, db: Option<u64>) -> Box<dyn std::any::Any + Send>;
    /// A record of the part: `at` its first byte, `end` the byte after it.
    fn record(&self, part: &mut (dyn std::any::Any + Send), rec: &Record<'_>, at: u64, end: u64);
    /// A part that counts, in file order: `db` is the db it started in; `trailer` is set for the
    /// part the file ended in.
    fn join(&self, part: Box<dyn std::any::Any + Send>, db: u64, trailer: Option<&crate::rdb::reader::Trailer>);
}

/// Salvage mode gives up resynchronizing after this many structural errors in one file.
const MAX_RESYNCS: usize = 1000;

/// Warnings found while validating values: every one counted, the first `MAX_WARNINGS` in file
/// order kept (a file of a million empty keys must not hold a million messages).
#[derive(Default)]
struct Notes {
    counts: std::collections::BTreeMap<&'static str, u64>,
    /// (offset, db, key offset, kind, message), a max-heap on the offset.
    first: std::collections::BinaryHeap<(u64, u64, u64, &'static str, String)>,
}

impl Notes {
    fn add(&mut self, offset: u64, db: u64, key_offset: u64, kind: &'static str, message: &str) {
        *self.counts.entry(kind).or_default() += 1;
        self.keep(offset, db, key_offset, kind, message);
    }

    /// Lists a note (already counted) if it is among the first.
    fn keep(&mut self, offset: u64, db: u64, key_offset: u64, kind: &'static str, message: &str) {
        if self.first.len() < MAX_WARNINGS || self.first.peek().is_some_and(|t| t.0 > offset) {
            self.first.push((offset, db, key_offset, kind, message.to_owned()));
            if self.first.len() > MAX_WARNINGS {
                self.first.pop();
            }
        }
    }
}

thread_local! {
    static WALKER: RefCell<Walker> = RefCell::new(Walker::new());
}

/// What a part needs that does not change while the file is read.
pub(super) struct Ctx<'a, 'o> {
    pub(super) data: &'a [u8],
    pub(super) format: Format,
    pub(super) opts: &'o Options,
    pub(super) holes: &'o [(u64, u64)],
    /// Set when the file ended (EOF, or an error that stops the verdict) in a part already
    /// joined: later parts stop.
    pub(super) abort: AtomicBool,
    pub(super) observer: Option<&'o dyn Observer>,
}

/// Something a part met that the join replays in file order into the report.
enum Event<'a> {
    Error(Error),
    Warn(String),
    SelectDb(u64),
    /// Keys since the last event (their fingerprints are the next `n` of `Part::keys`).
    Keys(crate::parts::KeyCounts),
    RedisVer(String),
    Function {
        source: std::borrow::Cow<'a, [u8]>,
        at: u64,
    },
    FunctionPreGa {
        name: std::borrow::Cow<'a, [u8]>,
        engine: std::borrow::Cow<'a, [u8]>,
        code: std::borrow::Cow<'a, [u8]>,
        at: u64,
    },
    Module(String),
}

/// One range of the file, parsed and validated on one thread. Until the join proves where it
/// started, a part does not know the db its first keys are in: they carry `UNKNOWN_DB`
/// (src/parts.rs).
struct Part<'a> {
    span: crate::parts::Span,
    events: Vec<Event<'a>>,
    /// (xxh3 of the key, offset of the key string) of every key, in file order.
    keys: Vec<(u64, u64)>,
    notes: Notes,
    trailer: Option<crate::rdb::reader::Trailer>,
    resyncs: usize,
    /// The checksum of the part's range (the header with the first part's), when it was read
    /// in place.
    crc: Option<u64>,
    /// The largest RESIZEDB hint (a hint: no event of its own).
    reserve: u64,
    /// Dbs this part selected; a SELECTDB of one of them waits in `pending_db` until a key
    /// needs it (a file of millions of SELECTDB records must not make as many events).
    seen_dbs: std::collections::HashSet<u64>,
    pending_db: Option<u64>,
    /// Errors past the listing limit, only counted.
    errors: usize,
    errors_dropped: u64,
    /// Counts of the keys not yet in an `Event::Keys`.
    pending: crate::parts::KeyCounts,
    /// The observer's state of this part.
    observed: Option<Box<dyn std::any::Any + Send>>,
}

impl<'a> Part<'a> {
    fn flush_keys(&mut self) {
        if let Some(c) = self.pending.take() {
            self.events.push(Event::Keys(c));
        }
    }
    fn event(&mut self, e: Event<'a>) {
        self.flush_keys();
        self.events.push(e);
    }
}

/// Parses and validates the records from `start` (a record boundary) until one starts at or
/// after `end`, in db `db` (`None`: not known).
fn run_part<'a>(
    ctx: &Ctx<'a, '_>,
    start: usize,
    end: usize,
    db: Option<u64>,
    mut pages: Option<(crate::pass::Lane<'_, '_>, crate::pass::Follow<'_, '_, '_>)>,
) -> Part<'a> {
    let opts = ctx.opts;
    let mut part = Part {
        span: crate::parts::Span::new(start, db),
        events: Vec::new(),
        keys: Vec::new(),
        notes: Notes::default(),
        trailer: None,
        resyncs: 0,
        crc: None,
        reserve: 0,
        seen_dbs: Default::default(),
        pending_db: None,
        errors: 0,
        errors_dropped: 0,
        pending: Default::default(),
        observed: ctx.observer.map(|o| o.part(start as u64, db)),
    };
    let max_errors = if opts.keep_going { opts.max_errors.max(1) } else { 1 };
    let error = |part: &mut Part<'a>, e: Error| {
        if crate::damage::inside(ctx.holes, e.offset) {
            return;
        }
        if part.errors < max_errors {
            part.errors += 1;
            part.event(Event::Error(e));
        } else {
            part.errors_dropped += 1;
        }
    };
    let mut reader = Reader::resume(ctx.data, ctx.format, start, db.unwrap_or(UNKNOWN_DB));
    let mut modules: Vec<String> = Vec::new();
    let mut steps = crate::parts::Steps::new(end);
    WALKER.with_borrow_mut(|w| {
        loop {
            let at = reader.offset() as usize;
            let go = steps.go(at, &mut part.span, |at| {
                if let Some((lane, crc)) = pages.as_mut() {
                    lane.upto(at);
                    // The checksum runs ahead: it takes the page faults.
                    crc.upto(at + (2 << 20));
                }
                true
            });
            if !go || ctx.abort.load(Ordering::Relaxed) {
                break;
            }
            // Looked at by reference where the reader built it (src/rdb/reader.rs).
            let mut verdict = Ok(());
            let read = reader.next_validated(w, &mut verdict);
            let rec = match &read {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    error(&mut part, e.clone());
                    // Salvage view: skip to the next record that parses, and say what was lost.
                    if opts.keep_going && part.resyncs < MAX_RESYNCS {
                        part.resyncs += 1;
                        if let Some((from, to)) = reader.resync() {
                            part.event(Event::Warn(format!(
                                "bytes {from}..{to} skipped after the error at offset {}: keys there are lost",
                                e.offset
                            )));
                            continue;
                        }
                    }
                    break;
                }
            };
            if let (Some(o), Some(state)) = (ctx.observer, part.observed.as_deref_mut()) {
                o.record(state, rec, reader.record_offset(), reader.offset());
            }
            match rec {
                Record::Aux { key, value } if (&**key == b"redis-ver" || &**key == b"valkey-ver") => {
                    part.event(Event::RedisVer(String::from_utf8_lossy(value).into_owned()));
                }
                Record::SelectDb { db } => {
                    let db = *db;
                    if part.span.ambiguous_select(db) {
                        break;
                    }
                    if part.seen_dbs.insert(db) {
                        part.pending_db = None;
                        part.event(Event::SelectDb(db));
                    } else {
                        part.pending_db = Some(db);
                    }
                }
                Record::ResizeDb { keys: n, .. } => part.reserve = part.reserve.max(*n),
                Record::Function { source } => {
                    part.event(Event::Function { source: source.clone(), at: reader.record_offset() });
                }
                Record::FunctionPreGa { name, engine, code } => {
                    part.event(Event::FunctionPreGa {
                        name: name.clone(),
                        engine: engine.clone(),
                        code: code.clone(),
                        at: reader.record_offset(),
                    });
                }
                Record::Key(k) if crate::damage::inside(ctx.holes, k.key_offset) => {}
                Record::Key(k) => {
                    if let Some(d) = part.pending_db.take() {
                        part.event(Event::SelectDb(d));
                    }
                    part.pending.count(k.expire_at_ms, opts.now_ms);
                    part.keys.push((xxhash_rust::xxh3::xxh3_64(&k.key), k.key_offset));
                    if k.value.type_byte == crate::rdb::types::id::MODULE_2
                        && let Ok(id) = crate::rdb::cursor::Cursor::new(k.value.bytes, k.value.offset).len("module id")
                    {
                        let name = crate::rdb::module::ModuleType(id).name();
                        if !modules.contains(&name) {
                            modules.push(name.clone());
                            part.event(Event::Module(name));
                        }
                    }
                    for x in w.notes() {
                        part.notes.add(x.offset, k.db, k.key_offset, x.kind, &x.message);
                    }
                    if let Err(e) = verdict {
                        if e.kind == ErrorKind::EmptyValue {
                            // Redis drops the key while loading and goes on: a warning.
                            part.notes.add(e.offset, k.db, k.key_offset, "empty_value", &e.message);
                        } else {
                            error(&mut part, e.in_key(k.db, &k.key));
                            if !opts.keep_going {
                                break;
                            }
                        }
                    }
                }
                Record::ModuleAux { module, .. } => {
                    let name = module.name();
                    if !modules.contains(&name) {
                        modules.push(name.clone());
                        part.event(Event::Module(name));
                    }
                }
                _ => {}
            }
        }
    });
    if let Some(d) = part.pending_db.take() {
        part.event(Event::SelectDb(d));
    }
    part.flush_keys();
    part.trailer = reader.trailer();
    part.crc = pages.map(|(_, crc)| crc.finish(usize::MAX));
    part
}

/// The report as the parts are joined in file order (src/parts.rs drives it).
struct Join<'a, 'c, 'o> {
    ctx: &'c Ctx<'a, 'o>,
    p: Progress,
    keys: KeySet,
    notes: Notes,
    libraries: std::collections::HashSet<Vec<u8>>,
    db_index: Option<usize>,
    trailer: Option<crate::rdb::reader::Trailer>,
    resyncs: usize,
}

impl<'a> crate::parts::Join for Join<'a, '_, '_> {
    type Part = Part<'a>;

    fn span<'p>(part: &'p Part<'a>) -> &'p crate::parts::Span {
        &part.span
    }

    fn again(&mut self, range: std::ops::Range<usize>, db: u64) -> Part<'a> {
        run_part(self.ctx, range.start, range.end, Some(db), None)
    }

    fn apply(&mut self, mut part: Part<'a>, db: &mut u64) -> bool {
        let opts = self.ctx.opts;
        let start_db = *db;
        if let (Some(o), Some(state)) = (self.ctx.observer, part.observed.take()) {
            o.join(state, start_db, part.trailer.as_ref());
        }
        let span = part.span;
        let fix = |d: u64| span.fix(start_db, d);
        let mut keys = part.keys.iter();
        self.resyncs += part.resyncs;
        self.p.report.errors_not_listed += part.errors_dropped;
        if part.reserve > 0 {
            // A sizing hint: trusted only as far as the file could hold that many keys.
            self.keys.reserve((part.reserve as usize).min(self.ctx.data.len() / 4));
        }
        for ev in part.events {
            let p = &mut self.p;
            match ev {
                Event::Error(mut e) => {
                    e.db = e.db.map(fix);
                    p.push_error(&e, opts);
                }
                Event::Warn(w) => p.warn(w),
                Event::SelectDb(d) => {
                    *db = d;
                    self.db_index = Some(p.db_slot(d));
                }
                Event::Keys(c) => {
                    let db = *db;
                    let i = *self.db_index.get_or_insert_with(|| p.db_slot(db));
                    let d = &mut p.report.dbs[i];
                    d.keys += c.n;
                    d.expires += c.expires;
                    d.already_expired += c.expired;
                    for &(h, off) in keys.by_ref().take(c.n as usize) {
                        self.keys.insert_hashed(db, h, off);
                    }
                }
                Event::RedisVer(v) => p.report.redis_ver = Some(v),
                Event::Module(m) => {
                    p.needs.modules.insert(m);
                }
                Event::Function { source, at } => {
                    p.report.functions += 1;
                    let res = crate::rdb::function::check_library(&source);
                    let failure = match res {
                        Ok(name) if !self.libraries.insert(name.clone()) => Some(format!(
                            "function library {}: Redis refuses the file: Library '{}' already exists",
                            crate::display::quoted(&name),
                            String::from_utf8_lossy(&name)
                        )),
                        Ok(_) => None,
                        Err(why) => {
                            let name = crate::rdb::function::library_name(&source);
                            let name = name.map(|n| format!(" {}", crate::display::quoted(&n))).unwrap_or_default();
                            Some(format!("function library{name}: Redis refuses the file: {why}"))
                        }
                    };
                    if let Some(msg) = failure {
                        p.push_error(&Error::corrupt(at, msg), opts);
                        if !opts.keep_going {
                            self.trailer = None;
                            return false;
                        }
                    }
                }
                Event::FunctionPreGa { name, engine, code, at } => {
                    p.report.functions += 1;
                    // Redis 7.0.x turns the record into a library text and creates it as usual.
                    let mut source =
                        format!("#!{} name={}\n", String::from_utf8_lossy(&engine), String::from_utf8_lossy(&name))
                            .into_bytes();
                    let shebang = String::from_utf8_lossy(&source[..source.len() - 1]).into_owned();
                    source.extend_from_slice(&code);
                    let q = crate::display::quoted(&name);
                    let e = match crate::rdb::function::check_library(&source) {
                        Ok(_) => {
                            // Restorable by one release line only: `restorable_by` says which,
                            // `--target` decides.
                            p.needs.function_pre_ga = true;
                            p.warn(format!(
                                "offset {at}: function library {q} in the Redis 7.0 release-candidate format (opcode 246): Redis 7.0.x loads it (as `{shebang}` code); Redis 7.2+ and Valkey refuse the whole file"
                            ));
                            continue;
                        }
                        Err(why) => Error::corrupt(
                            at,
                            format!(
                                "function library {q} in the Redis 7.0 release-candidate format (opcode 246): no server loads it (Redis 7.0.x refuses its code: {why}; Redis 7.2+ and Valkey refuse the format)"
                            ),
                        ),
                    };
                    p.push_error(&e, opts);
                    if !opts.keep_going {
                        self.trailer = None;
                        return false;
                    }
                }
            }
        }
        let counts = part.notes.counts;
        for (k, n) in counts {
            *self.notes.counts.entry(k).or_default() += n;
        }
        for (offset, db, key_offset, kind, message) in part.notes.first {
            self.notes.keep(offset, fix(db), key_offset, kind, &message);
        }
        if span.next.is_none() {
            self.trailer = part.trailer;
        }
        true
    }
}

/// Parses the parts that start at `bounds` (the first right after the header) on `threads`
/// threads, and joins them: the report, the checksum of `data[..guess_end]` when every part's
/// was computed, and how many times salvage resynchronized.
pub(super) fn parse_parts(
    ctx: &Ctx<'_, '_>,
    p: Progress,
    bounds: &[usize],
    guess_end: usize,
    pages: &Pages<'_>,
    threads: usize,
) -> (Progress, Option<u64>, usize) {
    let data = ctx.data;
    let opts = ctx.opts;
    let end_of = |i: usize| bounds.get(i + 1).copied().unwrap_or(usize::MAX);
    let crc_range = |i: usize| {
        let from = if i == 0 { 0 } else { bounds[i] };
        from.min(guess_end)..end_of(i).min(guess_end)
    };
    let crcs: Vec<std::sync::OnceLock<u64>> = bounds.iter().map(|_| std::sync::OnceLock::new()).collect();
    let mut join = Join {
        ctx,
        p,
        keys: KeySet::new(),
        notes: Notes::default(),
        libraries: Default::default(),
        db_index: None,
        trailer: None,
        resyncs: 0,
    };
    crate::parts::read_in_parts(
        bounds,
        threads,
        &ctx.abort,
        |i, range| {
            let crc = crc_range(i);
            let lane_range = crate::parts::page_range(bounds, i, &range);
            if ctx.abort.load(Ordering::Relaxed) {
                pages.done(crc);
                drop(pages.lane_over(lane_range));
                return None;
            }
            let lane = pages.lane_over(lane_range);
            let follow = crate::pass::Follow::over(data, crc, pages);
            let part = run_part(ctx, range.start, range.end, (i == 0).then_some(0), Some((lane, follow)));
            // The checksum of the part's bytes, whether or not the join takes the part as read.
            if let Some(c) = part.crc {
                let _ = crcs[i].set(c);
            }
            Some(part)
        },
        &mut join,
    );
    let Join { mut p, keys, notes, trailer, resyncs, .. } = join;
    let crc = crcs.iter().enumerate().try_fold(None, |acc: Option<u64>, (i, c)| {
        let c = *c.get()?;
        let len = crc_range(i).len() as u64;
        Some(Some(match acc {
            None => c,
            Some(a) => crc_fast::checksum_combine(crc_fast::CrcAlgorithm::Crc64Redis, a, c, len),
        }))
    });
    let crc = crc.flatten();
    let mut listed_empty = 0;
    for (offset, db, key_offset, kind, message) in notes.first.into_sorted_vec() {
        let key = key_at(data, key_offset).map(|k| crate::display::quoted(&k)).unwrap_or_default();
        listed_empty += u64::from(kind == "empty_value");
        p.warn(format!("offset {offset}, db {db}, key {key}: {message} [{kind}]"));
    }
    let dropped = notes.counts.get("empty_value").copied().unwrap_or(0);
    if dropped > listed_empty {
        p.warn(format!("{dropped} empty keys in all: Redis drops them while loading [empty_value]"));
    }
    p.report.warning_counts = notes.counts;
    // Listed up to the error limit (the rest counted): a file of millions of repeated keys
    // must not hold them all.
    let limit = if opts.keep_going { opts.max_errors.max(1) } else { 1 };
    match keys.duplicates(data, limit) {
        Ok(dups) => {
            for d in &dups.listed {
                let e = Error::new(
                    ErrorKind::DuplicateKey,
                    d.again,
                    format!(
                        "key already present in this database (first at offset {}): Redis refuses to load the file",
                        d.first
                    ),
                );
                p.push_error(&e.in_key(d.db, &d.key), opts);
            }
            p.report.errors_not_listed += dups.total - dups.listed.len() as u64;
        }
        Err(e) => p.push_error(&e, opts),
    }
    for d in &p.report.dbs {
        p.report.keys += d.keys;
        p.report.expires += d.expires;
        p.report.already_expired += d.already_expired;
    }
    if let Some(t) = trailer {
        if p.report.errors.is_empty() || opts.keep_going {
            p.eof_offset = Some(t.eof_offset);
            p.stored_checksum = t.stored_checksum;
        }
        p.report.trailing_bytes = t.trailing_bytes;
        if t.trailing_bytes > 0 {
            p.warn(trailing_bytes_warning(t.trailing_bytes));
        }
    }
    (p, crc, resyncs)
}
