//! `rdbtool restore`: the keys of RDB files into a live server or cluster.
//!
//! The producer (the calling thread) reads the files record by record, applies the filters and
//! the expiry rule, renders each key as `RESTORE key ttl payload ABSTTL [REPLACE] [IDLETIME n |
//! FREQ n]` with the payload framed from the file's own bytes (`export::resp::RespWriter`), or,
//! when the target's RDB version cannot hold the value's encoding, as the plain commands of
//! `export --format resp`. Keys go in batches to one worker thread per master (`send`), which
//! pipelines them and counts the outcome of every key (`report`). Routing (`route`): a
//! standalone server takes every key (databases kept, with `SELECT`); a cluster takes each key
//! at the master of its hash slot, after a check that every key is in db 0 (or mapped there).
//!
//! Busy keys (`--on-busy-key`): panic sends `RESTORE` without `REPLACE` and stops at the first
//! `BUSYKEY`; skip sends the same and counts `BUSYKEY` as kept; rewrite adds `REPLACE` and an
//! `EXISTS` before it to count replaced keys. Plain commands build the value under a temporary
//! key of the same slot, then `RENAMENX` it into place under panic / skip and `RENAME` under
//! rewrite, so a key is whole or absent and never added to an existing one.
//!
//! Over 700 lines: `run` is the producer loop (journal, routing, rendering, batching) in one
//! function; splitting it is in the README's open work.

pub mod journal;
pub mod report;
pub mod route;
pub mod send;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::ErrorKind;
use crate::export::resp::{OnBusyKey, RespOptions, RespWriter};
use crate::export::{ExportError, KeyCtx, Out};
use crate::filter::{Expired, Filter};
use crate::rdb::reader::{Reader, Record};
use crate::rdb::value::Validate;
use crate::rdb::walk::Walker;
pub use report::{Counts, Report};
pub use route::Target;
use send::{Batch, Item, Kind, Shared, Worker};

/// One input file.
pub struct Input<'a> {
    pub name: String,
    pub data: &'a [u8],
    /// The mapped file, when `data` is one: the passes before the restore (the cluster db check,
    /// the conflict plan) give its pages back as they go, so RSS stays flat.
    pub mapped: Option<&'a crate::input::Input>,
}

impl<'a> Input<'a> {
    /// The pages of one pass over this input (one consumer).
    fn pages(&self) -> crate::pass::Pages<'a> {
        match self.mapped {
            Some(m) => crate::pass::Pages::new(m, 1),
            None => crate::pass::Pages::unmapped(self.data.len()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub on_busy_key: OnBusyKey,
    /// The key filters; `expired: Exclude` skips (and counts) keys whose TTL has passed.
    pub filter: Filter,
    /// Added to every expire time before anything else looks at it.
    pub ttl_shift_ms: i64,
    pub dry_run: bool,
    /// `FUNCTION LOAD` the files' libraries (on every master).
    pub functions: bool,
    /// Every database into db 0.
    pub into_db0: bool,
    /// A key that comes from several places (two dbs under `into_db0`, two inputs): the
    /// policy of `merge` (error: nothing is written and the keys are listed).
    pub conflicts: crate::merge::Options,
    /// The version written in payload footers instead of the target's own.
    pub payload_version: Option<u16>,
    /// A batch is sent at this many keys or bytes.
    pub batch_keys: usize,
    pub batch_bytes: usize,
    /// At most this many keys per second (None: as fast as the target takes them).
    pub max_ops: Option<u64>,
    /// The names of written keys kept for the report of a run that stops (per master).
    pub keep_written: usize,
    /// `--journal FILE`: how far the target acknowledged the inputs, kept durably.
    pub journal: Option<std::path::PathBuf>,
    /// `--resume`: continue where the journal says.
    pub resume: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            on_busy_key: OnBusyKey::Panic,
            filter: Filter::default(),
            ttl_shift_ms: 0,
            dry_run: false,
            functions: true,
            into_db0: false,
            conflicts: crate::merge::Options::default(),
            payload_version: None,
            max_ops: None,
            batch_keys: 512,
            batch_bytes: 2 << 20,
            keep_written: 100_000,
            journal: None,
            resume: false,
        }
    }
}

/// Collects what an `Out` spills (a value of more than 16 MiB), readable while the `Out`
/// holds the writer.
struct Spill(Rc<RefCell<Vec<u8>>>);

impl Write for Spill {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Node {
    tx: Option<SyncSender<Batch>>,
    join: Option<JoinHandle<report::NodeReport>>,
    batch: Batch,
    /// The position of the first key of `batch` (None: empty).
    first: Option<u64>,
    /// The first positions of the batches handed to the worker and not known finished.
    sent: VecDeque<u64>,
    /// Batches the worker finished (`popped` of them taken off `sent`).
    done: Arc<AtomicU64>,
    popped: u64,
}

impl Node {
    /// Hands the current batch to the worker.
    fn flush(&mut self) {
        if self.batch.items.is_empty() {
            return;
        }
        let b = std::mem::take(&mut self.batch);
        if let Some(tx) = &self.tx {
            self.sent.extend(self.first.take());
            let _ = tx.send(b);
        }
        self.first = None;
    }

    /// Adds an item whose key is at `pos`.
    fn push(&mut self, pos: u64, item: Item, prefix: Option<&[&[u8]]>, cmds: &[u8]) {
        if self.batch.items.is_empty() {
            self.first = Some(pos);
        }
        self.batch.push(item, prefix, cmds);
    }
}

/// The acknowledged position: every key before it has its final outcome. `reading`: the
/// position of the record the producer is at (everything before it was batched or decided).
fn acked(nodes: &mut [Node], reading: u64) -> u64 {
    let mut low = reading;
    for n in nodes.iter_mut() {
        let d = n.done.load(Ordering::SeqCst);
        while n.popped < d && n.sent.pop_front().is_some() {
            n.popped += 1;
        }
        low = low.min(n.sent.front().copied().unwrap_or(u64::MAX)).min(n.first.unwrap_or(u64::MAX));
    }
    low
}

/// The temporary key of `slot` that plain commands build a value under before it is renamed
/// into place (`rdbtool:restore-tmp:N`, N the smallest number whose name hashes to `slot`).
/// One name per slot: an interrupted run's leftover is replaced by the next run's `DEL`.
fn temp_key(slot: u16) -> Vec<u8> {
    static TABLE: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = vec![u32::MAX; 16384];
        let mut left = t.len();
        let mut n = 0u32;
        while left > 0 {
            let s = crate::slot::key_slot(format!("rdbtool:restore-tmp:{n}").as_bytes()) as usize;
            if t[s] == u32::MAX {
                t[s] = n;
                left -= 1;
            }
            n += 1;
        }
        t
    });
    format!("rdbtool:restore-tmp:{}", table[slot as usize & 16383]).into_bytes()
}

/// What a journal must match to be resumed: the options that select and shape the keys.
fn journal_options(opts: &Options) -> String {
    let mut f = opts.filter.clone();
    f.now_ms = 0;
    format!(
        "filter {:?}; ttl-shift {} ms; into-db0 {}; functions {}; conflicts {:?}; payload version {:?}",
        f, opts.ttl_shift_ms, opts.into_db0, opts.functions, opts.conflicts, opts.payload_version
    )
}

/// Where the keys of each source db go, for the conflict check (one output).
struct Router<'a> {
    filter: &'a Filter,
    into_db0: bool,
}

impl crate::merge::Router for Router<'_> {
    fn outputs(&self) -> usize {
        1
    }
    fn db(&self, src_db: u64) -> crate::merge::DbRoute {
        if !self.filter.wants_db(src_db) {
            crate::merge::DbRoute::Skip
        } else {
            crate::merge::DbRoute::To(if self.into_db0 { 0 } else { src_db })
        }
    }
    fn output(&self, _key: &[u8]) -> Option<usize> {
        Some(0)
    }
    fn joins_dbs(&self) -> bool {
        self.into_db0
    }
}

/// Keys per database among the selected keys of `inputs` (for the cluster check).
pub fn selected_dbs(inputs: &[Input<'_>], filter: &Filter) -> Result<BTreeMap<u64, u64>, String> {
    let mut f = filter.clone();
    f.expired = Expired::Include;
    let mut dbs = BTreeMap::new();
    for i in inputs {
        let mut reader = Reader::new(i.data).map_err(|e| format!("{}: {e}", i.name))?;
        let pages = i.pages();
        let mut lane = pages.lane();
        while let Some(rec) = reader.next() {
            lane.upto(reader.record_offset() as usize);
            if let Record::Key(k) = rec.map_err(|e| format!("{}: {e}", i.name))?
                && f.matches(&k)
            {
                *dbs.entry(k.db).or_insert(0) += 1;
            }
        }
    }
    Ok(dbs)
}

/// Restores `inputs` into `target`. `Err` only when nothing could be done (bad input header,
/// refused databases); a run that started always gives a report (its `ok` says whether every
/// key was restored). `progress` gets the bytes read so far, over all inputs.
pub fn run(
    inputs: &[Input<'_>],
    target: &Target,
    opts: &Options,
    progress: &mut dyn FnMut(u64),
) -> Result<Report, String> {
    let started = Instant::now();
    let mut formats = Vec::new();
    for i in inputs {
        formats.push(Reader::new(i.data).map_err(|e| format!("{}: {e}", i.name))?.format());
    }
    if target.is_cluster() && !opts.into_db0 {
        let dbs = selected_dbs(inputs, &opts.filter)?;
        let one = opts.filter.dbs.len() == 1;
        if !one && dbs.keys().any(|&d| d != 0) {
            let list: Vec<String> = dbs.iter().map(|(d, n)| format!("db {d}: {n} keys")).collect();
            return Err(format!(
                "a cluster has only db 0, and the keys are in several databases ({}): choose one with --db N, \
                 or map all to db 0 with --into-db0",
                list.join(", ")
            ));
        }
    }
    // Keys that land on one name from several places: merge's conflict policies decide.
    let plan = if opts.into_db0 || inputs.len() > 1 {
        let sources: Vec<crate::merge::Source<'_>> = inputs
            .iter()
            .map(|i| match i.mapped {
                Some(m) => crate::merge::Source::mapped(i.name.clone(), m),
                None => crate::merge::Source::new(i.name.clone(), i.data),
            })
            .collect();
        let router = Router { filter: &opts.filter, into_db0: opts.into_db0 || target.is_cluster() };
        match crate::merge::plan(&sources, &router, &opts.conflicts) {
            Ok(p) => Some(p),
            Err(crate::merge::MergeError::Conflicts(c)) => {
                let list: Vec<String> = c.iter().take(10).map(|c| c.to_string()).collect();
                let more = if c.len() > 10 { format!("; ... {} more", c.len() - 10) } else { String::new() };
                return Err(format!(
                    "{} keys come from several databases or inputs, nothing written (choose --on-conflict \
                     first, last or rename): {}{more}",
                    c.len(),
                    list.join("; ")
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
    } else {
        None
    };
    let total: u64 = inputs.iter().map(|i| i.data.len() as u64).sum();
    let mut journal = match &opts.journal {
        None => None,
        Some(path) => {
            let fresh = journal::State {
                inputs: inputs
                    .iter()
                    .map(|i| journal::InputId { name: i.name.clone(), size: i.data.len() as u64 })
                    .collect(),
                target: target.opts.name(),
                options: journal_options(opts),
                acked: 0,
                horizon: 0,
                uncertain_end: 0,
                busy_at: None,
                complete: false,
            };
            Some(journal::Journal::open(path, opts.resume, fresh)?)
        }
    };
    // Resumed: keys before `skip_below` are done; up to `uncertain_below` they may be.
    let (skip_below, uncertain_below, resume_busy) = match &journal {
        Some(j) if opts.resume => (j.resume_from(), j.uncertain_end(), j.state.busy_at),
        _ => (0, 0, None),
    };
    let rewrite = opts.on_busy_key == OnBusyKey::Rewrite;
    let shared = Arc::new(Shared {
        stop: Default::default(),
        panic: opts.on_busy_key == OnBusyKey::Panic,
        rewrite,
        slots: target.slots.clone(),
        busy: Mutex::new(None),
        keep_written: opts.keep_written,
    });
    let mut nodes: Vec<Node> = Vec::new();
    let spawn = |o: crate::redis::ConnectOptions, shared: &Arc<Shared>| -> Node {
        let (tx, rx) = sync_channel::<Batch>(2);
        let sh = shared.clone();
        let done = Arc::new(AtomicU64::new(0));
        let d = done.clone();
        let join = std::thread::spawn(move || Worker::new(o, sh, d).run(rx));
        Node {
            tx: Some(tx),
            join: Some(join),
            batch: Batch::default(),
            first: None,
            sent: VecDeque::new(),
            done,
            popped: 0,
        }
    };
    for m in target.masters() {
        nodes.push(spawn(m, &shared));
    }
    let mut filter = opts.filter.clone();
    let skip_expired = filter.expired == Expired::Exclude;
    filter.expired = Expired::Include;

    let mut counts = Counts::default();
    let mut pre_failures = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut payload_version = 0u16;
    let mut sent_keys = 0u64;
    let mut done_bytes = 0u64;
    let spilled = Rc::new(RefCell::new(Vec::new()));
    let mut spill = Spill(spilled.clone());
    let mut walker = Walker::new();
    let mut key_buf = Vec::new();
    // The position of the record being read (inputs end to end), and the first input's start.
    let mut at = 0u64;
    let mut base = 0u64;
    'inputs: for (input_no, (input, format)) in inputs.iter().zip(&formats).enumerate() {
        let mut enc = route::encoding_for(*format, target.release);
        if let Some(v) = opts.payload_version {
            enc.payload_version = v;
        }
        payload_version = payload_version.max(enc.payload_version);
        let mut writer = RespWriter::new(RespOptions {
            batch: 64,
            restore: true,
            on_busy_key: if rewrite { OnBusyKey::Rewrite } else { OnBusyKey::Panic },
            target_version: Some(enc.payload_version),
            functions: true,
            lru_lfu: true,
            legacy_streams: enc.legacy_streams,
            no_createconsumer: enc.no_createconsumer,
            max_bulk: usize::try_from(target.max_bulk).unwrap_or(usize::MAX),
        });
        let ctx = KeyCtx { filter: &filter, format: *format };
        let mut out = Out::new(&mut spill);
        let mut reader = match Reader::new(input.data) {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("{}: {e}", input.name));
                break;
            }
        };
        // Key records are copied into the batches: the bytes before a record are done.
        let pages = input.pages();
        let mut lane = pages.lane();
        let mut records = 0u64;
        loop {
            at = base + reader.offset();
            let pos = at;
            let rec = match reader.next() {
                None => break,
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    errors.push(format!("{}: {e}", input.name));
                    break 'inputs;
                }
            };
            lane.upto(reader.record_offset() as usize);
            records += 1;
            if records.is_multiple_of(4096) {
                progress(done_bytes + reader.offset());
                if shared.stop.load(Ordering::SeqCst) {
                    break 'inputs;
                }
                if let Some(j) = journal.as_mut()
                    && let Err(e) = j.tick(acked(&mut nodes, pos))
                {
                    errors.push(format!("--journal: {e}"));
                    break 'inputs;
                }
            }
            let uncertain = pos < uncertain_below && Some(pos) != resume_busy;
            let mut k = match rec {
                Record::Key(k) => k,
                Record::Function { source } if opts.functions && !opts.dry_run => {
                    if pos < skip_below {
                        counts.already_restored += 1;
                        continue;
                    }
                    if let Some(j) = journal.as_mut()
                        && let Err(e) = j.cover(pos, acked(&mut nodes, pos))
                    {
                        errors.push(format!("--journal: {e}"));
                        break 'inputs;
                    }
                    let name = crate::merge::library_name(&source).unwrap_or(b"?").to_vec();
                    if let Some(r) =
                        target.release.filter(|r| r.flavor == crate::rdb::types::Flavor::Redis && r.major < 7)
                    {
                        counts.functions_failed += 1;
                        pre_failures.push(report::Failure {
                            db: 0,
                            key: name,
                            function: true,
                            error: format!(
                                "{} has no functions (Redis 7.0 and later); not sent (--no-functions leaves them out)",
                                r.name()
                            ),
                        });
                        continue;
                    }
                    let load: Vec<&[u8]> = if rewrite {
                        vec![b"FUNCTION", b"LOAD", b"REPLACE", &source]
                    } else {
                        vec![b"FUNCTION", b"LOAD", &source]
                    };
                    for n in nodes.iter_mut() {
                        let item = Item {
                            db: 0,
                            key: name.clone(),
                            slot: 0,
                            kind: Kind::Function,
                            guard: false,
                            uncertain,
                            pos,
                            cmds: vec![],
                        };
                        n.push(pos, item, Some(&load), &[]);
                    }
                    continue;
                }
                Record::FunctionPreGa { name, .. } => {
                    warnings.push(format!(
                        "function {} is in the Redis 7.0 release-candidate format, which no GA server loads; left out",
                        crate::display::quoted(&name)
                    ));
                    continue;
                }
                _ => continue,
            };
            if let Some(t) = k.expire_at_ms {
                k.expire_at_ms = Some(t.saturating_add(opts.ttl_shift_ms));
            }
            if !filter.matches(&k) {
                continue;
            }
            match plan.as_ref().and_then(|p| p.decision(input_no, k.key_offset)) {
                None => {}
                Some(None) => {
                    counts.conflicts_dropped += 1;
                    continue;
                }
                Some(Some(name)) => {
                    counts.conflicts_renamed += 1;
                    k.key = std::borrow::Cow::Owned(name.to_vec());
                }
            }
            if skip_expired && filter.is_expired(k.expire_at_ms) {
                counts.skipped_expired += 1;
                continue;
            }
            if filter.limit.is_some_and(|l| sent_keys >= l) {
                break 'inputs;
            }
            if pos < skip_below {
                counts.already_restored += 1;
                continue;
            }
            if let Err(e) = walker.walk(&k.value, &mut Validate) {
                if e.kind == ErrorKind::EmptyValue {
                    counts.skipped_empty += 1;
                    continue;
                }
                errors.push(format!("{}: {}", input.name, e.in_key(k.db, &k.key)));
                break 'inputs;
            }
            let db = if opts.into_db0 || target.is_cluster() { 0 } else { k.db };
            let slot = crate::slot::key_slot(&k.key);
            let node = match &target.slots {
                None => 0,
                Some(m) => m.lock().unwrap_or_else(|e| e.into_inner()).master_of(slot).unwrap_or(0),
            };
            if let Some(j) = journal.as_mut()
                && let Err(e) = j.cover(pos, acked(&mut nodes, pos))
            {
                errors.push(format!("--journal: {e}"));
                break 'inputs;
            }
            while nodes.len() <= node {
                let m = target.slots.as_ref().map(|m| {
                    let m = m.lock().unwrap_or_else(|e| e.into_inner());
                    target.opts.with_addr(m.nodes[nodes.len()].addr())
                });
                nodes.push(spawn(m.unwrap_or_else(|| target.opts.clone()), &shared));
            }
            out.buf.clear();
            spilled.borrow_mut().clear();
            let mut kind = Kind::Restore { exists_first: rewrite };
            // A payload (the value, its type byte, version and CRC) longer than the target takes
            // in one bulk string goes as plain commands, a long string in parts.
            let big = k.value.bytes.len() as u64 + 16 > target.max_bulk;
            let r = if big {
                Err(ExportError::Refused(String::new()))
            } else {
                writer.render(&k, &mut walker, &mut out, &ctx, true, true)
            };
            let mut tmp = Vec::new();
            let r = match r {
                Err(ExportError::Refused(_)) => {
                    out.buf.clear();
                    spilled.borrow_mut().clear();
                    kind = Kind::Plain { rewrite };
                    tmp = temp_key(slot);
                    let name = std::mem::replace(&mut k.key, std::borrow::Cow::Borrowed(&tmp));
                    let r = writer.render(&k, &mut walker, &mut out, &ctx, false, true);
                    k.key = name;
                    r
                }
                r => r,
            };
            match r {
                Ok(_) if big => counts.sent_in_parts += 1,
                Ok(_) => {}
                Err(ExportError::Input(e)) if e.kind == ErrorKind::EmptyValue => {
                    counts.skipped_empty += 1;
                    continue;
                }
                Err(ExportError::Input(e)) => {
                    errors.push(format!("{}: {e}", input.name));
                    break 'inputs;
                }
                Err(e) => {
                    counts.failed += 1;
                    if pre_failures.len() < report::MAX_FAILURES {
                        pre_failures.push(report::Failure {
                            db: k.db,
                            key: k.key.to_vec(),
                            function: false,
                            error: format!("not sent: {e}"),
                        });
                    }
                    continue;
                }
            }
            key_buf.clear();
            let plain = matches!(kind, Kind::Plain { .. });
            if plain {
                crate::redis::client::encode_command(&mut key_buf, &[b"DEL", &tmp]);
            }
            key_buf.extend_from_slice(&spilled.borrow());
            key_buf.extend_from_slice(&out.buf);
            if plain && rewrite {
                crate::redis::client::encode_command(&mut key_buf, &[b"RENAME", &tmp, &k.key]);
            } else if plain {
                crate::redis::client::encode_command(&mut key_buf, &[b"RENAMENX", &tmp, &k.key]);
                crate::redis::client::encode_command(&mut key_buf, &[b"DEL", &tmp]);
            }
            let guard = matches!(kind, Kind::Plain { rewrite: false }) && !opts.dry_run;
            let item = Item { db, key: k.key.to_vec(), slot, kind, guard, uncertain, pos, cmds: vec![] };
            let n = &mut nodes[node];
            if opts.dry_run {
                let item = Item { kind: Kind::Exists, guard: false, ..item };
                n.push(pos, item, Some(&[b"EXISTS", &k.key]), &[]);
            } else {
                match kind {
                    Kind::Restore { exists_first: true } => n.push(pos, item, Some(&[b"EXISTS", &k.key]), &key_buf),
                    Kind::Plain { rewrite: true } => n.push(pos, item, Some(&[b"EXISTS", &k.key]), &key_buf),
                    _ => n.push(pos, item, None, &key_buf),
                }
            }
            sent_keys += 1;
            if let Some(rate) = opts.max_ops.filter(|&r| r > 0) {
                // Hand batches over early enough that the workers are not starved by the wait.
                let due = started + std::time::Duration::from_secs_f64(sent_keys as f64 / rate as f64);
                let now = Instant::now();
                if due > now {
                    for n in nodes.iter_mut() {
                        n.flush();
                    }
                    std::thread::sleep(due - now);
                }
            }
            let n = &mut nodes[node];
            if n.batch.items.len() >= opts.batch_keys || n.batch.buf.len() >= opts.batch_bytes {
                n.flush();
            }
        }
        done_bytes += input.data.len() as u64;
        base += input.data.len() as u64;
        at = base;
        progress(done_bytes);
        drop(out);
    }
    let mut joins = Vec::new();
    for n in nodes.iter_mut() {
        n.flush();
        // Dropping the sender ends the worker once its channel is empty.
        n.tx = None;
        joins.extend(n.join.take());
    }
    let mut node_reports = Vec::new();
    for j in joins {
        match j.join() {
            Ok(r) => node_reports.push(r),
            Err(_) => errors.push("a worker thread panicked".into()),
        }
    }
    let busy = shared.busy.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(j) = journal.as_mut() {
        let a = acked(&mut nodes, at);
        let complete = a >= total && errors.is_empty() && busy.is_none();
        let answered = node_reports.iter().all(|n| n.counts.unconfirmed == 0);
        if let Err(e) = j.finish(a, answered, busy.as_ref().map(|b| b.pos), complete) {
            errors.push(format!("--journal: {e}"));
        }
    }
    let mut failures = pre_failures;
    let mut existing = Vec::new();
    let mut written = Vec::new();
    let mut written_truncated = false;
    for n in &node_reports {
        counts.add(&n.counts);
        failures.extend(n.failures.iter().cloned());
        existing.extend(n.existing_keys.iter().map(|(db, key)| report::KeyName { db: *db, key: key.clone() }));
        written.extend(n.written_keys.iter().map(|(db, key)| report::KeyName { db: *db, key: key.clone() }));
        written_truncated |= n.written_keys_truncated;
        if let Some(e) = &n.error {
            errors.push(e.clone());
        }
    }
    failures.truncate(report::MAX_FAILURES);
    existing.truncate(report::MAX_FAILURES);
    let stopped = busy.is_some() || !errors.is_empty();
    let ok = !stopped
        && counts.failed + counts.functions_failed + counts.not_sent + counts.unconfirmed == 0
        && !(opts.dry_run && shared.panic && counts.existing > 0)
        && !(shared.panic && counts.functions_busy > 0);
    Ok(Report {
        ok,
        dry_run: opts.dry_run,
        inputs: inputs.iter().map(|i| i.name.clone()).collect(),
        target: target.opts.name(),
        version: target.version.clone(),
        mode: match &target.slots {
            None => "standalone".into(),
            Some(_) => format!("cluster of {} masters", node_reports.len()),
        },
        payload_rdb_version: payload_version,
        on_busy_key: format!("{:?}", opts.on_busy_key).to_lowercase(),
        counts,
        failures,
        existing_keys: existing,
        busy_key: busy,
        written_keys: stopped.then_some(written),
        written_keys_truncated: stopped && written_truncated,
        nodes: node_reports,
        errors,
        warnings,
        journal: journal.map(|j| report::JournalNote {
            path: opts.journal.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            acked: j.state.acked,
            total,
            complete: j.state.complete,
        }),
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}
