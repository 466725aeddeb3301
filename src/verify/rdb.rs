//! The RDB side of `verify`: checksum, a full structural parse of every value, duplicate keys,
//! the releases that restore the file, and a [`Report`]. Knows nothing of terminals or flags.

use super::report::{ChecksumStatus, DbCounts, Options, Report, TargetVerdict, trailing_bytes_warning};
use crate::error::{Error, ErrorKind};
use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::pass::{CRC_CHUNK, ChunkedCrc, Pages};
use crate::rdb::keyset::KeySet;
use crate::rdb::reader::{Reader, Record, key_at};
use crate::rdb::servers::Needs;
use crate::rdb::types::Flavor;
use crate::rdb::value::RawValue;
use crate::rdb::walk::Walker;

/// Verifies one RDB image. `name` is only used in the report.
pub fn verify_bytes(name: &str, data: &[u8], opts: &Options) -> Report {
    verify_impl(name, data, opts, &|| Pages::unmapped(data.len()), false)
}

/// `verify_bytes` for the RDB preamble of an AOF file: the bytes after its checksum are the
/// command log, whatever the checksum (the caller reports on them).
pub fn verify_preamble(name: &str, data: &[u8], opts: &Options) -> Report {
    verify_impl(name, data, opts, &|| Pages::unmapped(data.len()), true)
}

/// `verify_bytes` of a mapped input, whose pages are given back behind the parse and the
/// checksum (src/pass.rs): RSS stays flat on big files.
pub fn verify_input(name: &str, input: &crate::input::Input, opts: &Options) -> Report {
    verify_impl(name, input, opts, &|| Pages::new(input, CONSUMERS), false)
}

/// `verify_bytes`, calling `release(range)` for stretches of `data` it will not read again, so a
/// memory-mapped input can give their pages back (RSS stays flat on big files).
pub fn verify_bytes_releasing(
    name: &str,
    data: &[u8],
    opts: &Options,
    release: &(dyn Fn(std::ops::Range<usize>) + Sync),
) -> Report {
    verify_impl(name, data, opts, &|| Pages::with_release(data.len(), CONSUMERS, release), false)
}

/// The consumers of an input's pages in one parse: the parse itself, and the checksum.
const CONSUMERS: u32 = 2;

fn verify_impl<'a>(name: &str, data: &[u8], opts: &Options, pages: &dyn Fn() -> Pages<'a>, preamble: bool) -> Report {
    let (report, guess_crc, guess_end) = parse_with_crc(name, data, opts, pages, Vec::new());
    let (mut report, guess_crc) = {
        // Zeroed blocks at the errors: parse again without the records read from zeros (src/damage.rs).
        let holes = crate::damage::holes_near(data, report.report.errors.iter().map(|e| e.offset));
        if holes.is_empty() {
            (report, guess_crc)
        } else {
            let (r, c, _) = parse_with_crc(name, data, opts, pages, holes);
            (r, c)
        }
    };
    let holes = report.holes.clone();
    if let (Some(eof), true) = (report.eof_offset, report.report.checksum.status == ChecksumStatus::Unchecked) {
        let end = eof as usize + 1;
        let computed = match guess_crc {
            Some(c) if end == guess_end => c,
            _ => crate::crc::crc64(&data[..end]),
        };
        let stored = report.stored_checksum;
        let (checksum, mismatch) = crate::pass::checksum_verdict(eof, stored, computed);
        if let Some(e) = mismatch {
            report.push_error(&e, opts);
        }
        let trailing = report.report.trailing_bytes;
        if stored == Some(0) && trailing > 0 && !preamble {
            let e = Error::corrupt(
                eof + 9,
                format!(
                    "{trailing} bytes after a zero (not computed) checksum: a file saved without a checksum ends at its EOF, so this EOF is most likely a damaged byte; Redis would load only the keys before it and ignore the rest"
                ),
            );
            report.push_error(&e, opts);
        }
        report.report.checksum = checksum;
    }
    crate::damage::explain(&mut report.report.errors, &holes);
    crate::damage::hint_checksum(&mut report.report.errors, data);
    report.finish_errors(opts);
    judge_restorable(&mut report, opts);
    let mut r = report.report;
    if preamble && r.trailing_bytes > 0 {
        let note = trailing_bytes_warning(r.trailing_bytes);
        r.warnings.retain(|w| *w != note);
    }
    r.ok = r.errors.is_empty() && r.errors_not_listed == 0;
    r
}

/// Which releases restore a file that has no error, and the `--target` verdict: a valid file
/// that no release we know restores, or that the target refuses, gets an error.
fn judge_restorable(p: &mut Progress, opts: &Options) {
    p.needs.max_db = p.report.dbs.iter().map(|d| d.db).max();
    let valid = p.report.errors.is_empty() && p.report.errors_not_listed == 0 && p.needs.flavor.is_some();
    if valid {
        let (ok, blocking) = crate::rdb::servers::restorable_by(&p.needs);
        if ok.is_empty() {
            let reasons: Vec<String> =
                blocking.iter().map(|b| format!("{} {}-{}: {}", b.server, b.min, b.max, b.reason)).collect();
            let e = Error::new(
                ErrorKind::Unsupported,
                0,
                format!("no server release we know restores it ({})", reasons.join("; ")),
            );
            p.push_error(&e, opts);
        }
        p.report.restorable_by = ok;
        p.report.blocking = blocking;
    }
    let Some(t) = &opts.target else { return };
    let verdict = if valid { p.needs.verdict(t) } else { Err("the file has errors".to_owned()) };
    let name = crate::rdb::servers::display(t);
    p.report.target = Some(match verdict {
        Ok(requires) => TargetVerdict { server: t.name(), ok: true, reason: None, requires },
        Err(why) => {
            if valid {
                let e = Error::new(ErrorKind::RefusedByTarget, 0, format!("refused by {name}: {why}"));
                p.push_error(&e, opts);
            }
            TargetVerdict { server: t.name(), ok: false, reason: Some(why), requires: Vec::new() }
        }
    });
}

struct Progress {
    report: Report,
    eof_offset: Option<u64>,
    stored_checksum: Option<u64>,
    /// Index of each db in `report.dbs` (a crafted file may select thousands of them).
    db_index: std::collections::HashMap<u64, usize>,
    /// What the file needs from a server, for `restorable_by` and `--target`.
    needs: Needs,
    /// Zeroed blocks: records read inside them are not keys and their errors are not listed.
    holes: Vec<(u64, u64)>,
}

/// At most this many warnings are listed per file; a crafted file must not turn each of its
/// records into a line of report.
const MAX_WARNINGS: usize = 100;

impl Progress {
    /// Errors arrive from the parse, the value batches and the duplicate check, not in file
    /// order: at twice the limit the list is sorted and cut back (`finish_errors`), so the
    /// errors listed at the end are the first in file order.
    fn push_error(&mut self, e: &Error, opts: &Options) {
        if crate::damage::inside(&self.holes, e.offset) {
            return;
        }
        self.report.errors.push(e.into());
        // Bounded memory, and the first errors in file order whatever order they come in.
        let keep = if opts.keep_going { opts.max_errors.max(1) } else { 1 };
        let errors = &mut self.report.errors;
        if errors.len() >= 2 * keep {
            errors.sort_by_key(|e| e.offset);
            self.report.errors_not_listed += (errors.len() - keep) as u64;
            errors.truncate(keep);
        }
    }

    /// The slot of `db` in the report, created (with its warnings) when first seen.
    fn db_slot(&mut self, db: u64) -> usize {
        if let Some(&i) = self.db_index.get(&db) {
            return i;
        }
        self.report.dbs.push(DbCounts { db, ..Default::default() });
        let i = self.report.dbs.len() - 1;
        self.db_index.insert(db, i);
        if db >= 16 {
            self.warn(format!("database {db}: the restoring server needs `databases` > {db} (default 16)"));
        }
        i
    }

    fn warn(&mut self, msg: String) {
        match self.report.warnings.len() {
            n if n < MAX_WARNINGS => self.report.warnings.push(msg),
            MAX_WARNINGS => self.report.warnings.push("more warnings not listed".to_owned()),
            _ => {}
        }
    }

    fn finish_errors(&mut self, opts: &Options) {
        let errors = &mut self.report.errors;
        errors.sort_by_key(|e| e.offset);
        let keep = if opts.keep_going { opts.max_errors } else { 1 };
        if errors.len() > keep {
            self.report.errors_not_listed += (errors.len() - keep) as u64;
            errors.truncate(keep);
        }
    }
}

/// Salvage mode gives up resynchronizing after this many structural errors in one file.
const MAX_RESYNCS: usize = 1000;

/// Values are validated in batches on the thread pool while the reader goes on.
const BATCH_KEYS: usize = 2048;
const BATCH_BYTES: usize = 1 << 20;
/// Batches queued beyond this are validated by the reader's own thread (back-pressure: memory
/// stays bounded when validation is slower than reading).
const MAX_IN_FLIGHT: usize = 4;

#[derive(Default)]
struct Batch<'a> {
    /// (value, db, offset of the key string); sized once, never grown.
    values: Vec<(RawValue<'a>, u64, u64)>,
    bytes: usize,
}

impl Batch<'_> {
    fn new() -> Self {
        Batch { values: Vec::with_capacity(BATCH_KEYS), bytes: 0 }
    }
}

struct Validation<'a, 'o> {
    data: &'a [u8],
    opts: &'o Options,
    /// Start offsets of batches queued or being validated (their bytes must stay readable).
    in_flight_starts: Mutex<std::collections::BTreeMap<u64, usize>>,
    errors: Mutex<Vec<Error>>,
    notes: Mutex<Notes>,
    /// Set on the first error unless keep-going: the reader stops.
    stop: AtomicBool,
    in_flight: AtomicUsize,
}

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

impl<'a, 'o> Validation<'a, 'o> {
    fn submit<'s>(&'s self, scope: &rayon::Scope<'s>, batch: Batch<'a>) {
        let Some(&(_, _, start)) = batch.values.first() else { return };
        // One thread: nothing would run a queued batch before the reader ends (and its pages
        // would stay mapped): validate it here.
        if self.in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT || rayon::current_num_threads() <= 1 {
            self.validate(batch);
            return;
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut s) = self.in_flight_starts.lock() {
            *s.entry(start).or_default() += 1;
        }
        scope.spawn(move |_| {
            self.validate(batch);
            if let Ok(mut s) = self.in_flight_starts.lock()
                && let Some(n) = s.get_mut(&start)
            {
                *n -= 1;
                if *n == 0 {
                    s.remove(&start);
                }
            }
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }

    /// The lowest offset a queued batch may still read, or `reader` when none is queued.
    fn low_water(&self, reader: u64) -> u64 {
        let oldest = self.in_flight_starts.lock().ok().and_then(|s| s.keys().next().copied());
        oldest.map_or(reader, |o| o.min(reader))
    }

    fn validate(&self, batch: Batch<'a>) {
        WALKER.with_borrow_mut(|w| {
            for (value, db, key_offset) in batch.values {
                let res = value.validate(w);
                if !w.notes().is_empty()
                    && let Ok(mut n) = self.notes.lock()
                {
                    for x in w.notes() {
                        n.add(x.offset, db, key_offset, x.kind, &x.message);
                    }
                }
                if let Err(e) = res {
                    if e.kind == ErrorKind::EmptyValue {
                        // Redis drops the key while loading and goes on: a warning.
                        if let Ok(mut n) = self.notes.lock() {
                            n.add(e.offset, db, key_offset, "empty_value", &e.message);
                        }
                        continue;
                    }
                    let key = key_at(self.data, key_offset).map(|k| k.into_owned()).unwrap_or_default();
                    if let Ok(mut errors) = self.errors.lock() {
                        errors.push(e.in_key(db, &key));
                    }
                    if !self.opts.keep_going {
                        self.stop.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
    }
}

/// One parse with its checksum beside it: the report so far, the CRC of everything before the
/// usual trailer (the last 8 bytes) when it was computed, and where that range ends.
fn parse_with_crc<'a>(
    name: &str,
    data: &[u8],
    opts: &Options,
    pages: &dyn Fn() -> Pages<'a>,
    holes: Vec<(u64, u64)>,
) -> (Progress, Option<u64>, usize) {
    // The checksum is computed in chunks on the pool, beside the parse, over what the usual file
    // holds before its trailer: everything up to the EOF byte, then 8 bytes of checksum.
    let guess_end = data.len().saturating_sub(8);
    // Two consumers: the parse, and the checksum (which never reads the last 8 bytes).
    let pages = pages();
    pages.done(guess_end..data.len());
    let crc = ChunkedCrc::new(&data[..guess_end], CRC_CHUNK, &pages);
    let p = parse(name, data, opts, &crc, &pages, holes);
    crc.abandon();
    (p, crc.combine(), guess_end)
}

fn parse(
    name: &str,
    data: &[u8],
    opts: &Options,
    crc: &ChunkedCrc<'_, '_, '_>,
    pages: &Pages<'_>,
    holes: Vec<(u64, u64)>,
) -> Progress {
    let mut lane = pages.lane();
    let mut p = Progress {
        report: Report::empty(name, data.len() as u64, ChecksumStatus::Unchecked),
        eof_offset: None,
        stored_checksum: None,
        db_index: Default::default(),
        needs: Needs::default(),
        holes,
    };
    let mut reader = match Reader::new(data) {
        Ok(r) => r,
        Err(e) => {
            p.push_error(&e, opts);
            return p;
        }
    };
    let format = reader.format();
    p.report.magic = Some(match format.flavor {
        Flavor::Redis => "REDIS",
        Flavor::Valkey => "VALKEY",
    });
    p.report.version = Some(format.version);
    p.needs.flavor = Some(format.flavor);
    p.needs.version = format.version;
    let mut keys = KeySet::new();
    let mut libraries = std::collections::HashSet::new();
    let mut db_index: Option<usize> = None;
    let pool = Validation {
        data,
        opts,
        in_flight_starts: Mutex::new(Default::default()),
        errors: Mutex::new(Vec::new()),
        notes: Mutex::new(Notes::default()),
        stop: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
    };
    rayon::scope(|scope| {
        let mut batch = Batch::new();
        let mut resyncs = 0;
        let mut next_tick = 0usize;
        while let Some(rec) = reader.next() {
            if pool.stop.load(Ordering::Relaxed) {
                break;
            }
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    p.push_error(&e, opts);
                    // Salvage view: skip to the next record that parses, and say what was lost.
                    if opts.keep_going && resyncs < MAX_RESYNCS {
                        resyncs += 1;
                        if let Some((from, to)) = reader.resync() {
                            p.warn(format!(
                                "bytes {from}..{to} skipped after the error at offset {}: keys there are lost",
                                e.offset
                            ));
                            continue;
                        }
                    }
                    break;
                }
            };
            match rec {
                Record::Aux { key, value } if (&*key == b"redis-ver" || &*key == b"valkey-ver") => {
                    p.report.redis_ver = Some(String::from_utf8_lossy(&value).into_owned());
                }
                Record::SelectDb { db } => db_index = Some(p.db_slot(db)),
                Record::ResizeDb { keys: n, .. } => {
                    // A sizing hint: trusted only as far as the file could hold that many keys.
                    keys.reserve((n as usize).min(data.len() / 4));
                }
                Record::Function { source } => {
                    p.report.functions += 1;
                    let at = reader.record_offset();
                    let res = crate::rdb::function::check_library(&source);
                    let failure = match res {
                        Ok(name) if !libraries.insert(name.clone()) => Some(format!(
                            "function library {}: Redis refuses the file: Library '{}' already exists",
                            crate::display::quoted(&name),
                            String::from_utf8_lossy(&name)
                        )),
                        Ok(_) => None,
                        Err(why) => {
                            let name = crate::rdb::function::metadata(&source).map(|(n, _)| n).ok();
                            let name = name.map(|n| format!(" {}", crate::display::quoted(&n))).unwrap_or_default();
                            Some(format!("function library{name}: Redis refuses the file: {why}"))
                        }
                    };
                    if let Some(msg) = failure {
                        p.push_error(&Error::corrupt(at, msg), opts);
                        if !opts.keep_going {
                            break;
                        }
                    }
                }
                Record::FunctionPreGa { name, engine, code } => {
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
                                "offset {}: function library {q} in the Redis 7.0 release-candidate format (opcode 246): Redis 7.0.x loads it (as `{shebang}` code); Redis 7.2+ and Valkey refuse the whole file",
                                reader.record_offset()
                            ));
                            continue;
                        }
                        Err(why) => Error::corrupt(
                            reader.record_offset(),
                            format!(
                                "function library {q} in the Redis 7.0 release-candidate format (opcode 246): no server loads it (Redis 7.0.x refuses its code: {why}; Redis 7.2+ and Valkey refuse the format)"
                            ),
                        ),
                    };
                    p.push_error(&e, opts);
                    if !opts.keep_going {
                        break;
                    }
                }
                Record::Key(k) if crate::damage::inside(&p.holes, k.key_offset) => {}
                Record::Key(k) => {
                    let i = *db_index.get_or_insert_with(|| p.db_slot(k.db));
                    let d = &mut p.report.dbs[i];
                    d.keys += 1;
                    if let Some(t) = k.expire_at_ms {
                        d.expires += 1;
                        if t < opts.now_ms {
                            d.already_expired += 1;
                        }
                    }
                    keys.insert(k.db, &k.key, k.key_offset);
                    if k.value.type_byte == crate::rdb::types::id::MODULE_2
                        && let Ok(id) = crate::rdb::cursor::Cursor::new(k.value.bytes, k.value.offset).len("module id")
                    {
                        let name = crate::rdb::module::ModuleType(id).name();
                        if !p.needs.modules.contains(&name) {
                            p.needs.modules.insert(name);
                        }
                    }
                    if k.value.needs_walk() {
                        batch.bytes += k.value.bytes.len();
                        batch.values.push((k.value, k.db, k.key_offset));
                        if batch.values.len() >= BATCH_KEYS || batch.bytes >= BATCH_BYTES {
                            pool.submit(scope, std::mem::replace(&mut batch, Batch::new()));
                        }
                    }
                }
                Record::ModuleAux { module, .. } => {
                    p.needs.modules.insert(module.name());
                }
                _ => {}
            }
            // Every MiB of input: start the checksum of chunks the reader entered, and give back
            // pages nothing will read again.
            let at = reader.offset() as usize;
            if at >= next_tick {
                next_tick = at + (1 << 20);
                crc.spawn_upto(scope, at);
                crc.help_upto(at.saturating_sub(CRC_CHUNK));
                // The batch being filled still needs its values (keys come before values).
                let pending = batch.values.first().map_or(at as u64, |v| v.2);
                lane.upto(pool.low_water(pending.min(at as u64)) as usize);
            }
        }
        pool.submit(scope, batch);
        if reader.trailer().is_some() {
            crc.spawn_upto(scope, usize::MAX);
        }
    });
    for e in pool.errors.into_inner().unwrap_or_default() {
        p.push_error(&e, opts);
    }
    let notes = pool.notes.into_inner().unwrap_or_default();
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
    if let Some(t) = reader.trailer() {
        if p.report.errors.is_empty() || opts.keep_going {
            p.eof_offset = Some(t.eof_offset);
            p.stored_checksum = t.stored_checksum;
        }
        p.report.trailing_bytes = t.trailing_bytes;
        if t.trailing_bytes > 0 {
            p.warn(trailing_bytes_warning(t.trailing_bytes));
        }
    }
    p
}
