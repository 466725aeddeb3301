//! The send loop's producer (the calling thread): reads the inputs record by record, applies
//! the filters, the conflict plan, the expiry rule and the journal, renders each key and puts it
//! in the batch of its master's worker.
//!
//! A key goes as `RESTORE key ttl payload ABSTTL [REPLACE] [IDLETIME n | FREQ n]` with the
//! payload framed from the file's own bytes (`export::resp::RespWriter`), or, when the target's
//! RDB version cannot hold the value's encoding or the payload is longer than one bulk string,
//! as the plain commands of `export --format resp`, built under a temporary key of the same slot
//! and renamed into place (see `send::Kind::Plain`).

use std::cell::RefCell;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::nodes::{Node, acked};
use super::prepare::Prepared;
use super::report::{self, Counts};
use super::send::{Item, Kind, Shared};
use super::{Input, Options, Target, route};
use crate::error::ErrorKind;
use crate::export::resp::{OnBusyKey, RespOptions, RespWriter};
use crate::export::{ExportError, KeyCtx, Out};
use crate::filter::{Expired, Filter};
use crate::rdb::reader::{KeyRecord, Reader, Record};
use crate::rdb::types::Format;
use crate::rdb::value::Validate;
use crate::rdb::walk::Walker;

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

/// The temporary key of `slot` that plain commands build a value under before it is renamed
/// into place (`rdbtool:restore-tmp:N`, N the smallest number whose name hashes to `slot`).
/// One name per slot: an interrupted run's leftover is replaced by the next run's `DEL`.
pub(super) fn temp_key(slot: u16) -> Vec<u8> {
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

/// The producer's state over all inputs.
pub(super) struct Feed<'a> {
    target: &'a Target,
    opts: &'a Options,
    pub pre: Prepared,
    pub shared: Arc<Shared>,
    /// `conns` workers per master: those of master m are `nodes[m * conns..(m + 1) * conns]`.
    pub nodes: Vec<Node>,
    conns: usize,
    /// The filter with `expired: Include` (expiry is decided here, after the TTL shift).
    filter: Filter,
    skip_expired: bool,
    rewrite: bool,
    pub counts: Counts,
    /// Keys (and libraries) that failed before they were sent.
    pub pre_failures: Vec<report::Failure>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// The newest payload version written.
    pub payload_version: u16,
    sent_keys: u64,
    started: Instant,
    /// The position of the record being read (inputs end to end).
    pub at: u64,
    walker: Walker,
    key_buf: Vec<u8>,
    spilled: Rc<RefCell<Vec<u8>>>,
}

impl<'a> Feed<'a> {
    /// Starts `opts.connections` workers per master.
    pub fn new(target: &'a Target, opts: &'a Options, pre: Prepared, started: Instant) -> Feed<'a> {
        let rewrite = opts.on_busy_key == OnBusyKey::Rewrite;
        let conns = opts.connections.max(1);
        let masters = target.masters();
        let shared = Arc::new(Shared {
            stop: Default::default(),
            panic: opts.on_busy_key == OnBusyKey::Panic,
            rewrite,
            slots: target.slots.clone(),
            busy: Mutex::new(None),
            // The names of written keys kept, shared out over the workers.
            keep_written: (opts.keep_written / (masters.len() * conns)).max(opts.keep_written.min(1000)),
        });
        let mut nodes = Vec::new();
        for m in masters {
            for _ in 0..conns {
                nodes.push(Node::spawn(m.clone(), &shared));
            }
        }
        let mut filter = opts.filter.clone();
        let skip_expired = filter.expired == Expired::Exclude;
        filter.expired = Expired::Include;
        Feed {
            target,
            opts,
            pre,
            shared,
            nodes,
            conns,
            filter,
            skip_expired,
            rewrite,
            counts: Counts::default(),
            pre_failures: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            payload_version: 0,
            sent_keys: 0,
            started,
            at: 0,
            walker: Walker::new(),
            key_buf: Vec::new(),
            spilled: Rc::new(RefCell::new(Vec::new())),
        }
    }

    /// Every input in turn, until the end or a stop (an error, a busy key under panic, `--limit`).
    /// `progress` gets the bytes read so far, over all inputs.
    pub fn all(&mut self, inputs: &[Input<'_>], progress: &mut dyn FnMut(u64)) {
        let mut base = 0u64;
        for (input_no, input) in inputs.iter().enumerate() {
            let flow = self.input(input_no, input, base, progress);
            base += input.data.len() as u64;
            if flow.is_break() {
                return;
            }
            self.at = base;
            progress(base);
        }
    }

    /// Records a journal error; the run stops.
    fn journal_failed(&mut self, e: io::Error) -> ControlFlow<()> {
        self.errors.push(format!("--journal: {e}"));
        ControlFlow::Break(())
    }

    /// Moves the journal's horizon past `pos` before a key there is batched.
    fn cover(&mut self, pos: u64) -> ControlFlow<()> {
        if let Some(j) = self.pre.journal.as_mut()
            && let Err(e) = j.cover(pos, acked(&mut self.nodes, pos))
        {
            return self.journal_failed(e);
        }
        ControlFlow::Continue(())
    }

    /// One input, starting at position `base`.
    fn input(
        &mut self,
        input_no: usize,
        input: &Input<'_>,
        base: u64,
        progress: &mut dyn FnMut(u64),
    ) -> ControlFlow<()> {
        let format = self.pre.formats[input_no];
        let mut enc = route::encoding_for(format, self.target.release);
        if let Some(v) = self.opts.payload_version {
            enc.payload_version = v;
        }
        self.payload_version = self.payload_version.max(enc.payload_version);
        let mut writer = RespWriter::new(RespOptions {
            batch: 64,
            restore: true,
            on_busy_key: if self.rewrite { OnBusyKey::Rewrite } else { OnBusyKey::Panic },
            target_version: Some(enc.payload_version),
            functions: true,
            lru_lfu: true,
            legacy_streams: enc.legacy_streams,
            no_createconsumer: enc.no_createconsumer,
            max_bulk: usize::try_from(self.target.max_bulk).unwrap_or(usize::MAX),
        });
        let mut spill = Spill(self.spilled.clone());
        let mut out = Out::new(&mut spill);
        let mut reader = match Reader::new(input.data) {
            Ok(r) => r,
            Err(e) => {
                self.errors.push(format!("{}: {e}", input.name));
                return ControlFlow::Break(());
            }
        };
        // Key records are copied into the batches: the bytes before a record are done.
        let pages = input.pages();
        let mut lane = pages.lane();
        let mut records = 0u64;
        loop {
            self.at = base + reader.offset();
            let pos = self.at;
            let rec = match reader.next() {
                None => return ControlFlow::Continue(()),
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    self.errors.push(format!("{}: {e}", input.name));
                    return ControlFlow::Break(());
                }
            };
            lane.upto(reader.record_offset() as usize);
            records += 1;
            if records.is_multiple_of(4096) {
                progress(base + reader.offset());
                if self.shared.stop.load(Ordering::SeqCst) {
                    return ControlFlow::Break(());
                }
                if let Some(j) = self.pre.journal.as_mut()
                    && let Err(e) = j.tick(acked(&mut self.nodes, pos))
                {
                    return self.journal_failed(e);
                }
            }
            match rec {
                Record::Key(k) => {
                    let mut key = KeyAt { k, pos, input_no, input: &input.name, format };
                    self.key(&mut key, &mut writer, &mut out)?;
                }
                Record::Function { source } if self.opts.functions && !self.opts.dry_run => {
                    self.function(pos, &source)?;
                }
                Record::FunctionPreGa { name, .. } => {
                    self.warnings.push(format!(
                        "function {} is in the Redis 7.0 release-candidate format, which no GA server loads; left out",
                        crate::display::quoted(&name)
                    ));
                }
                _ => {}
            }
        }
    }

    /// Whether the key at `pos` may have been written by the interrupted run (`--resume`).
    fn uncertain(&self, pos: u64) -> bool {
        pos < self.pre.uncertain_below && Some(pos) != self.pre.resume_busy
    }

    /// A function library: `FUNCTION LOAD [REPLACE]` on every master.
    fn function(&mut self, pos: u64, source: &[u8]) -> ControlFlow<()> {
        if pos < self.pre.skip_below {
            self.counts.already_restored += 1;
            return ControlFlow::Continue(());
        }
        self.cover(pos)?;
        let name = crate::rdb::function::library_name(source).unwrap_or_else(|| b"?".to_vec());
        if let Some(r) = self.target.release.filter(|r| r.flavor == crate::rdb::types::Flavor::Redis && r.major < 7) {
            self.counts.functions_failed += 1;
            self.pre_failures.push(report::Failure {
                db: 0,
                key: name,
                function: true,
                error: format!(
                    "{} has no functions (Redis 7.0 and later); not sent (--no-functions leaves them out)",
                    r.name()
                ),
            });
            return ControlFlow::Continue(());
        }
        let load: Vec<&[u8]> = if self.rewrite {
            vec![b"FUNCTION", b"LOAD", b"REPLACE", source]
        } else {
            vec![b"FUNCTION", b"LOAD", source]
        };
        let uncertain = self.uncertain(pos);
        // One connection of each master loads it.
        for n in self.nodes.iter_mut().step_by(self.conns) {
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
        ControlFlow::Continue(())
    }

    /// The worker (index in `nodes`) for a key of `slot`: one of the connections of the master
    /// that serves it, chosen by slot, so that the keys of one slot (and the slot's temporary
    /// key of plain commands) stay in order on one connection. Workers for masters that
    /// appeared since the start (a `MOVED` to a new node) are started here.
    fn node_of(&mut self, slot: u16) -> usize {
        let master = match &self.target.slots {
            None => 0,
            Some(m) => m.lock().unwrap_or_else(|e| e.into_inner()).master_of(slot).unwrap_or(0),
        };
        while self.nodes.len() < (master + 1) * self.conns {
            let m = self.target.slots.as_ref().map(|m| {
                let m = m.lock().unwrap_or_else(|e| e.into_inner());
                self.target.opts.with_addr(m.nodes[self.nodes.len() / self.conns].addr())
            });
            self.nodes.push(Node::spawn(m.unwrap_or_else(|| self.target.opts.clone()), &self.shared));
        }
        master * self.conns + slot as usize % self.conns
    }

    /// A key record: filtered, decided, rendered and batched.
    fn key(&mut self, at: &mut KeyAt<'_, '_>, writer: &mut RespWriter, out: &mut Out<'_>) -> ControlFlow<()> {
        let (pos, opts) = (at.pos, self.opts);
        let k = &mut at.k;
        if let Some(t) = k.expire_at_ms {
            k.expire_at_ms = Some(t.saturating_add(opts.ttl_shift_ms));
        }
        if !self.filter.matches(k) {
            return ControlFlow::Continue(());
        }
        match self.pre.plan.as_ref().and_then(|p| p.decision(at.input_no, k.key_offset)) {
            None => {}
            Some(None) => {
                self.counts.conflicts_dropped += 1;
                return ControlFlow::Continue(());
            }
            Some(Some(name)) => {
                self.counts.conflicts_renamed += 1;
                k.key = std::borrow::Cow::Owned(name.to_vec());
            }
        }
        if self.skip_expired && self.filter.is_expired(k.expire_at_ms) {
            self.counts.skipped_expired += 1;
            return ControlFlow::Continue(());
        }
        if self.filter.limit.is_some_and(|l| self.sent_keys >= l) {
            return ControlFlow::Break(());
        }
        if pos < self.pre.skip_below {
            self.counts.already_restored += 1;
            return ControlFlow::Continue(());
        }
        if let Err(e) = self.walker.walk(&k.value, &mut Validate) {
            if e.kind == ErrorKind::EmptyValue {
                self.counts.skipped_empty += 1;
                return ControlFlow::Continue(());
            }
            self.errors.push(format!("{}: {}", at.input, e.in_key(k.db, &k.key)));
            return ControlFlow::Break(());
        }
        let db = super::route::dest_db(k.db, opts.into_db0, self.target.served_dbs());
        let slot = crate::slot::key_slot(&k.key);
        let node = self.node_of(slot);
        self.cover(pos)?;
        let Some(kind) = self.render(at, slot, writer, out)? else {
            return ControlFlow::Continue(());
        };
        let k = &at.k;
        let uncertain = self.uncertain(pos);
        let guard = matches!(kind, Kind::Plain { rewrite: false }) && !opts.dry_run;
        let item = Item { db, key: k.key.to_vec(), slot, kind, guard, uncertain, pos, cmds: vec![] };
        let n = &mut self.nodes[node];
        if opts.dry_run {
            let item = Item { kind: Kind::Exists, guard: false, ..item };
            n.push(pos, item, Some(&[b"EXISTS", &k.key]), &[]);
        } else {
            match kind {
                Kind::Restore { exists_first: true }
                | Kind::Plain { rewrite: true }
                | Kind::Expired { rewrite: true } => n.push(pos, item, Some(&[b"EXISTS", &k.key]), &self.key_buf),
                _ => n.push(pos, item, None, &self.key_buf),
            }
        }
        self.sent_keys += 1;
        self.rate_limit();
        let n = &mut self.nodes[node];
        if n.batch.items.len() >= opts.batch_keys || n.batch.buf.len() >= opts.batch_bytes {
            n.flush();
        }
        ControlFlow::Continue(())
    }

    /// Renders the key's commands into `key_buf`: `RESTORE`, or plain commands under the
    /// slot's temporary key followed by the rename. None: the key is not sent (counted).
    fn render(
        &mut self,
        at: &mut KeyAt<'_, '_>,
        slot: u16,
        writer: &mut RespWriter,
        out: &mut Out<'_>,
    ) -> ControlFlow<(), Option<Kind>> {
        let rewrite = self.rewrite;
        let k = &mut at.k;
        let ctx = KeyCtx { filter: &self.filter, format: at.format };
        out.buf.clear();
        self.spilled.borrow_mut().clear();
        let mut kind = Kind::Restore { exists_first: rewrite };
        // A payload (the value, its type byte, version and CRC) longer than the target takes
        // in one bulk string goes as plain commands, a long string in parts.
        let big = k.value.bytes.len() as u64 + 16 > self.target.max_bulk;
        let r = if big {
            Err(ExportError::Refused(String::new()))
        } else {
            writer.render(k, &mut self.walker, out, &ctx, true, true)
        };
        let mut tmp = Vec::new();
        let r = match r {
            Err(ExportError::Refused(_)) if self.filter.is_expired(k.expire_at_ms) => {
                // Plain commands would build a key the server then drops, and the rename into
                // place would fail: what RESTORE does instead (see `Kind::Expired`).
                out.buf.clear();
                self.spilled.borrow_mut().clear();
                self.key_buf.clear();
                let cmd: &[u8] = if rewrite { b"DEL" } else { b"EXISTS" };
                crate::redis::client::encode_command(&mut self.key_buf, &[cmd, &k.key]);
                return ControlFlow::Continue(Some(Kind::Expired { rewrite }));
            }
            Err(ExportError::Refused(_)) => {
                out.buf.clear();
                self.spilled.borrow_mut().clear();
                kind = Kind::Plain { rewrite };
                let name = std::mem::replace(&mut k.key, std::borrow::Cow::Owned(temp_key(slot)));
                let r = writer.render(k, &mut self.walker, out, &ctx, false, true);
                tmp = std::mem::replace(&mut k.key, name).into_owned();
                r
            }
            r => r,
        };
        match r {
            Ok(_) if big => self.counts.sent_in_parts += 1,
            Ok(_) => {}
            Err(ExportError::Input(e)) if e.kind == ErrorKind::EmptyValue => {
                self.counts.skipped_empty += 1;
                return ControlFlow::Continue(None);
            }
            Err(ExportError::Input(e)) => {
                self.errors.push(format!("{}: {e}", at.input));
                return ControlFlow::Break(());
            }
            Err(e) => {
                self.counts.failed += 1;
                if self.pre_failures.len() < report::MAX_FAILURES {
                    self.pre_failures.push(report::Failure {
                        db: k.db,
                        key: k.key.to_vec(),
                        function: false,
                        error: format!("not sent: {e}"),
                    });
                }
                return ControlFlow::Continue(None);
            }
        }
        let buf = &mut self.key_buf;
        buf.clear();
        let plain = matches!(kind, Kind::Plain { .. });
        if plain {
            crate::redis::client::encode_command(buf, &[b"DEL", &tmp]);
        }
        buf.extend_from_slice(&self.spilled.borrow());
        buf.extend_from_slice(&out.buf);
        if plain && rewrite {
            crate::redis::client::encode_command(buf, &[b"RENAME", &tmp, &k.key]);
        } else if plain {
            crate::redis::client::encode_command(buf, &[b"RENAMENX", &tmp, &k.key]);
            crate::redis::client::encode_command(buf, &[b"DEL", &tmp]);
        }
        ControlFlow::Continue(Some(kind))
    }

    /// `--max-ops`: waits until the keys sent so far are due, handing the batches over first
    /// so that the workers are not starved by the wait.
    fn rate_limit(&mut self) {
        let Some(rate) = self.opts.max_ops.filter(|&r| r > 0) else { return };
        let due = self.started + std::time::Duration::from_secs_f64(self.sent_keys as f64 / rate as f64);
        let now = Instant::now();
        if due > now {
            for n in self.nodes.iter_mut() {
                n.flush();
            }
            std::thread::sleep(due - now);
        }
    }
}

/// A key record and where it comes from.
struct KeyAt<'r, 'n> {
    k: KeyRecord<'r>,
    pos: u64,
    input_no: usize,
    input: &'n str,
    format: Format,
}
