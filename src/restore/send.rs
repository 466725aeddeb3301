//! One worker per master: it takes batches of encoded commands, pipelines them (two batches in
//! flight), reads one reply per command and turns them into outcomes per key.
//!
//! Replies that are not final are handled command by command once nothing else is in flight
//! on the connection: `MOVED` updates the shared slot map and resends to the new master, `ASK`
//! sends `ASKING` and the command to the importing node, `TRYAGAIN` / `CLUSTERDOWN` /
//! `LOADING` resend after a bounded backoff.
//!
//! Under `--on-busy-key panic` the first `BUSYKEY` sets the shared stop flag: the producer stops
//! reading, workers send nothing more, replies of batches already sent are still read.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use super::batch::{Batch, Item, Kind, split_commands};
use super::report::{Failure, NodeReport};
use crate::redis::client::{Addr, ConnectOptions, Connection, ErrorKind, Reply, encode_command};
use crate::redis::cluster::{Redirect, SlotMap};

/// State shared by the producer and the workers.
pub struct Shared {
    pub stop: AtomicBool,
    /// Under panic: stop at the first busy key.
    pub panic: bool,
    pub rewrite: bool,
    pub slots: Option<Arc<Mutex<SlotMap>>>,
    /// The first busy key (or function library) under panic.
    pub busy: Mutex<Option<super::report::BusyKey>>,
    /// Keep the names of written keys (up to this many per worker).
    pub keep_written: usize,
}

/// How many batches a connection has in flight.
const DEPTH: usize = 2;
/// Attempts for one command that is redirected or asked to retry.
const ATTEMPTS: u32 = 12;
/// New connections a worker opens after losing one (see `Worker::reconnect`).
const RECONNECTS: u32 = 3;

pub struct Worker {
    name: String,
    opts: ConnectOptions,
    shared: Arc<Shared>,
    conn: Option<Connection>,
    db: u64,
    /// Connections to other nodes, for redirected commands.
    others: HashMap<String, Connection>,
    /// Batches whose every key has its final outcome, in the order they came (the producer
    /// turns it into the journal's acknowledged position).
    done: Arc<AtomicU64>,
    /// Batches finished while an earlier one waits for resent commands: published with it.
    held: u64,
    holding: u32,
    /// A connection failed under a resent command: no batch counts as finished from here on
    /// (its key's failure may not be final).
    broken: bool,
    /// Connections opened again after one was lost.
    reconnects: u32,
    pub report: NodeReport,
}

/// The answer of one command.
type Res = Result<Reply, String>;

/// Why a resent command has no reply: the server's error, or the connection's.
enum Sent {
    Reply(String),
    Io(String),
}

impl Worker {
    pub fn new(opts: ConnectOptions, shared: Arc<Shared>, done: Arc<AtomicU64>) -> Worker {
        let name = opts.name();
        Worker {
            report: NodeReport { node: name.clone(), ..NodeReport::default() },
            name,
            opts,
            shared,
            conn: None,
            db: 0,
            others: HashMap::new(),
            done,
            held: 0,
            holding: 0,
            broken: false,
            reconnects: 0,
        }
    }

    /// Runs until the producer closes the channel; the node's report.
    pub fn run(mut self, rx: Receiver<Batch>) -> NodeReport {
        match Connection::connect(&self.opts) {
            Ok(c) => self.conn = Some(c),
            Err(e) => self.fatal(e.to_string()),
        }
        let mut inflight: VecDeque<(Batch, Vec<Wire>)> = VecDeque::new();
        for batch in rx {
            if self.conn.is_none() || self.shared.stop.load(Ordering::SeqCst) {
                self.report.counts.not_sent += batch.items.len() as u64;
                continue;
            }
            let batch = self.guard(batch, &mut inflight);
            let Some((batch, wire, bytes)) = self.encode(batch) else {
                // Every key had its outcome in the guard (nothing in flight before it).
                if self.conn.is_some() {
                    self.finished();
                }
                continue;
            };
            match self.conn.as_mut().map_or(Ok(()), |c| c.send_raw(&bytes)) {
                // The connection broke: reading its replies finds it and sends them again on a
                // new one (`reconnect`), this batch with them.
                Err(e) if e.kind == ErrorKind::Io => {}
                Err(e) => {
                    self.lost(e.to_string(), &batch.items);
                    continue;
                }
                Ok(()) => {}
            }
            inflight.push_back((batch, wire));
            while inflight.len() >= DEPTH {
                self.read_front(&mut inflight);
            }
        }
        while !inflight.is_empty() {
            self.read_front(&mut inflight);
        }
        self.report
    }

    fn fatal(&mut self, m: String) {
        if self.report.error.is_none() {
            self.report.error = Some(m);
        }
        self.conn = None;
        self.shared.stop.store(true, Ordering::SeqCst);
    }

    /// The connection failed with these items sent and unanswered.
    fn lost(&mut self, m: String, items: &[Item]) {
        self.report.counts.unconfirmed += items.len() as u64;
        self.fatal(m);
    }

    /// Plain items under panic / skip: `EXISTS` first; existing keys are busy and not sent.
    /// (Needs the connection idle: replies of batches in flight are read first.)
    fn guard(&mut self, mut batch: Batch, inflight: &mut VecDeque<(Batch, Vec<Wire>)>) -> Batch {
        if !batch.items.iter().any(|i| i.guard) {
            return batch;
        }
        while !inflight.is_empty() {
            self.read_front(inflight);
        }
        let guarded: Vec<usize> = (0..batch.items.len()).filter(|&i| batch.items[i].guard).collect();
        let (replies, cmds, db) = loop {
            let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();
            let mut db = self.db;
            for &i in &guarded {
                let it = &batch.items[i];
                if it.db != db {
                    cmds.push(vec![b"SELECT".to_vec(), it.db.to_string().into_bytes()]);
                    db = it.db;
                }
                cmds.push(vec![b"EXISTS".to_vec(), it.key.clone()]);
            }
            let Some(conn) = self.conn.as_mut() else { return batch };
            match conn.pipeline(&cmds) {
                Ok(r) => break (r, cmds, db),
                // Read-only: asked again on a new connection.
                Err(e) => match self.reopen() {
                    Some(c) => {
                        self.conn = Some(c);
                        self.report.counts.reconnected += 1;
                    }
                    None => {
                        self.fatal(e.to_string());
                        return batch;
                    }
                },
            }
        };
        self.db = db;
        let mut replies = replies.into_iter().zip(cmds.iter()).filter(|(_, c)| c[0] == b"EXISTS").map(|(r, _)| r);
        let mut busy = vec![false; batch.items.len()];
        for &i in &guarded {
            match replies.next() {
                Some(Ok(Reply::Int(0))) => {}
                Some(Ok(Reply::Int(_))) => busy[i] = true,
                Some(Ok(r)) => busy[i] = self.failed_before(&batch.items[i], format!("EXISTS: {}", r.describe())),
                Some(Err(e)) => busy[i] = self.failed_before(&batch.items[i], e),
                None => {}
            }
        }
        // Under panic, nothing after the first busy key is sent.
        let mut keep = Vec::new();
        let mut stopped = false;
        for (i, it) in std::mem::take(&mut batch.items).into_iter().enumerate() {
            if stopped {
                self.report.counts.not_sent += 1;
            } else if busy[i] {
                if it.cmds.is_empty() {
                    continue;
                }
                stopped = self.busy(&it);
            } else {
                keep.push(it);
            }
        }
        batch.items = keep;
        batch
    }

    /// Counts a failure found before sending; returns true (the item is not sent).
    fn failed_before(&mut self, it: &Item, e: String) -> bool {
        self.fail(it, e);
        true
    }

    fn fail(&mut self, it: &Item, e: String) {
        let c = &mut self.report.counts;
        if it.kind == Kind::Function {
            c.functions_failed += 1;
        } else {
            c.failed += 1;
        }
        if self.report.failures.len() < super::report::MAX_FAILURES {
            self.report.failures.push(Failure {
                db: it.db,
                key: it.key.clone(),
                function: it.kind == Kind::Function,
                error: e,
            });
        }
    }

    /// A busy key or library; under panic it stops the restore. Returns whether it stopped.
    fn busy(&mut self, it: &Item) -> bool {
        if it.uncertain {
            self.report.counts.resumed_existing += 1;
            return false;
        }
        if it.kind == Kind::Function {
            self.report.counts.functions_busy += 1;
        } else {
            self.report.counts.skipped_busy += 1;
        }
        if self.shared.panic {
            let mut b = self.shared.busy.lock().unwrap_or_else(|e| e.into_inner());
            if b.is_none() {
                *b = Some(super::report::BusyKey {
                    db: it.db,
                    key: it.key.clone(),
                    node: self.name.clone(),
                    function: it.kind == Kind::Function,
                    pos: it.pos,
                });
            }
            self.shared.stop.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }

    /// The bytes to send for a batch: its commands, with `SELECT` where the db changes.
    fn encode(&mut self, batch: Batch) -> Option<(Batch, Vec<Wire>, Vec<u8>)> {
        if batch.items.is_empty() {
            return None;
        }
        let mut bytes = Vec::with_capacity(batch.buf.len() + 64);
        let mut wire = Vec::with_capacity(batch.items.len());
        for (i, it) in batch.items.iter().enumerate() {
            if it.db != self.db {
                encode_command(&mut bytes, &[b"SELECT", it.db.to_string().as_bytes()]);
                wire.push(Wire::Select(it.db));
                self.db = it.db;
            }
            for &(a, b) in &it.cmds {
                bytes.extend_from_slice(&batch.buf[a..b]);
            }
            wire.push(Wire::Item(i));
        }
        Some((batch, wire, bytes))
    }

    /// One batch marked finished: published now, or with the batch a resend holds up.
    fn finished(&mut self) {
        if self.broken {
            return;
        }
        if self.holding > 0 {
            self.held += 1;
        } else {
            self.done.fetch_add(1 + std::mem::take(&mut self.held), Ordering::SeqCst);
        }
    }

    fn read_front(&mut self, inflight: &mut VecDeque<(Batch, Vec<Wire>)>) {
        let Some((mut batch, mut wire)) = inflight.pop_front() else { return };
        let mut answers: Vec<(usize, Vec<Res>)> = Vec::with_capacity(batch.items.len());
        let mut complete = true;
        let mut w = 0;
        'read: while w < wire.len() {
            let Some(conn) = self.conn.as_mut() else {
                self.report.counts.unconfirmed += unread(&wire[w..]);
                complete = false;
                break;
            };
            match wire[w] {
                Wire::Select(db) => match conn.read_reply() {
                    Ok(r) if r.is_ok() => {}
                    Err(_) if self.reconnect(&mut batch, &mut wire, w, inflight) => {
                        w = 0;
                        continue 'read;
                    }
                    r => {
                        let why = match r {
                            Ok(r) => format!("{}: SELECT {db}: {}", self.name, r.describe()),
                            Err(e) => e.to_string(),
                        };
                        self.fatal(why);
                        self.report.counts.unconfirmed += unread(&wire[w + 1..]);
                        complete = false;
                        break;
                    }
                },
                Wire::Item(i) => {
                    let n = batch.items[i].cmds.len();
                    let mut res = Vec::with_capacity(n);
                    for _ in 0..n {
                        let Some(conn) = self.conn.as_mut() else { break };
                        match conn.read_reply() {
                            Ok(Reply::Error(e)) => res.push(Err(e)),
                            Ok(r) => res.push(Ok(r)),
                            Err(_) if self.reconnect(&mut batch, &mut wire, w, inflight) => {
                                w = 0;
                                continue 'read;
                            }
                            Err(e) => {
                                self.fatal(e.to_string());
                                self.report.counts.unconfirmed += unread(&wire[w..]);
                                complete = false;
                                break 'read;
                            }
                        }
                    }
                    answers.push((i, res));
                }
            }
            w += 1;
        }
        // Commands to send again: only once the connection is idle.
        let again = answers.iter().any(|(_, r)| r.iter().any(|x| matches!(x, Err(e) if transient(e))));
        if again {
            self.holding += 1;
            while !inflight.is_empty() {
                self.read_front(inflight);
            }
            self.holding -= 1;
        }
        for (i, mut res) in answers {
            let it = &batch.items[i];
            for (c, r) in res.iter_mut().enumerate() {
                if let Err(e) = r
                    && transient(e)
                {
                    let (a, b) = it.cmds[c];
                    let first = e.clone();
                    *r = self.resend(&batch.buf[a..b], it.slot, first);
                }
            }
            self.outcome(it, res);
        }
        // A resend that failed for good counts as that key's failure: the batch is finished
        // unless the connection went away under it.
        if complete && self.conn.is_some() {
            self.finished();
        }
    }

    /// The connection failed with replies of `wire[from..]` (and of every batch in `inflight`)
    /// unread: a new connection to the same node (a few attempts, at most `RECONNECTS` per
    /// worker), on which those items are sent again in the same order, marked uncertain (the
    /// lost connection may have run them, so an existing key is taken as theirs, as after
    /// `--resume`). `wire` and the in-flight wires then describe the new sends. False: no new
    /// connection (nothing changed; the caller gives up on the node).
    fn reconnect(
        &mut self,
        batch: &mut Batch,
        wire: &mut Vec<Wire>,
        from: usize,
        inflight: &mut VecDeque<(Batch, Vec<Wire>)>,
    ) -> bool {
        let Some(mut conn) = self.reopen() else { return false };
        let mut bytes = Vec::new();
        let pending: Vec<usize> =
            wire[from..].iter().filter_map(|w| if let Wire::Item(i) = w { Some(*i) } else { None }).collect();
        let first = self.encode_again(batch, &pending, &mut bytes);
        let mut rest = Vec::with_capacity(inflight.len());
        for (b, _) in inflight.iter_mut() {
            let all: Vec<usize> = (0..b.items.len()).collect();
            rest.push(self.encode_again(b, &all, &mut bytes));
        }
        if conn.send_raw(&bytes).is_err() {
            return false;
        }
        self.conn = Some(conn);
        self.report.counts.reconnected += 1;
        *wire = first;
        for ((_, w), new) in inflight.iter_mut().zip(rest) {
            *w = new;
        }
        true
    }

    /// A new connection to this worker's node after one was lost (a few attempts, at most
    /// `RECONNECTS` per worker, none once the run stops); `db` is then 0.
    fn reopen(&mut self) -> Option<Connection> {
        if self.reconnects >= RECONNECTS || self.shared.stop.load(Ordering::SeqCst) {
            return None;
        }
        self.reconnects += 1;
        self.conn = None;
        self.db = 0;
        for wait in [100, 400, 1000] {
            std::thread::sleep(Duration::from_millis(wait));
            if let Ok(c) = Connection::connect(&self.opts) {
                return Some(c);
            }
        }
        None
    }

    /// The bytes of `batch.items[idx]` for a new connection (`SELECT` where the db changes),
    /// the items marked uncertain; their wire.
    fn encode_again(&mut self, batch: &mut Batch, idx: &[usize], bytes: &mut Vec<u8>) -> Vec<Wire> {
        let mut wire = Vec::with_capacity(idx.len());
        for &i in idx {
            let it = &mut batch.items[i];
            it.uncertain = true;
            if it.db != self.db {
                encode_command(bytes, &[b"SELECT", it.db.to_string().as_bytes()]);
                wire.push(Wire::Select(it.db));
                self.db = it.db;
            }
            for &(a, b) in &it.cmds {
                bytes.extend_from_slice(&batch.buf[a..b]);
            }
            wire.push(Wire::Item(i));
        }
        wire
    }

    /// Sends one command again after a redirect or a retryable error, until it gets a final
    /// answer or the attempts run out.
    fn resend(&mut self, cmd: &[u8], slot: u16, mut err: String) -> Res {
        let mut addr: Option<Addr> = None;
        let mut backoff = Duration::from_millis(20);
        for _ in 0..ATTEMPTS {
            let mut asking = false;
            match Redirect::parse(&err) {
                Some(Redirect::Moved { slot: s, host, port }) => {
                    self.report.counts.moved += 1;
                    if let Some(m) = &self.shared.slots {
                        m.lock().unwrap_or_else(|e| e.into_inner()).moved(s, &host, port);
                    }
                    addr = Some(Addr::Tcp { host, port });
                }
                Some(Redirect::Ask { host, port, .. }) => {
                    self.report.counts.asked += 1;
                    asking = true;
                    addr = Some(Addr::Tcp { host, port });
                }
                None => {
                    self.report.counts.retried += 1;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    // The slot may have moved meanwhile: ask the map.
                    if let Some(m) = &self.shared.slots {
                        let m = m.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(n) = m.master_of(slot) {
                            addr = Some(m.nodes[n].addr());
                        }
                    }
                }
            }
            let mut bytes = Vec::new();
            if asking {
                encode_command(&mut bytes, &[b"ASKING"]);
            }
            bytes.extend_from_slice(cmd);
            let r = self.on_node(addr.as_ref(), &bytes, asking).map_err(|e| match e {
                Sent::Reply(e) => e,
                Sent::Io(e) => {
                    self.broken = true;
                    e
                }
            });
            match r {
                Err(e) if transient(&e) => err = e,
                r => return r,
            }
        }
        Err(format!("gave up after {ATTEMPTS} attempts: {err}"))
    }

    /// Sends `bytes` (one command, after `ASKING` when `asking`) to `addr` (None: this
    /// worker's own node) and reads the command's answer.
    fn on_node(&mut self, addr: Option<&Addr>, bytes: &[u8], asking: bool) -> Result<Reply, Sent> {
        let own = match addr {
            None => true,
            Some(a) => self.opts.addr == *a,
        };
        let io = |e: crate::redis::client::Error| Sent::Io(e.to_string());
        let conn = if own {
            self.conn.as_mut().ok_or_else(|| Sent::Io("connection lost".into()))?
        } else {
            let a = addr.expect("another node");
            let key = a.to_string();
            if !self.others.contains_key(&key) {
                let c = Connection::connect(&self.opts.with_addr(a.clone())).map_err(io)?;
                self.others.insert(key.clone(), c);
            }
            self.others.get_mut(&key).expect("just inserted")
        };
        conn.send_raw(bytes).map_err(io)?;
        if asking && let Reply::Error(e) = conn.read_reply().map_err(io)? {
            return Err(Sent::Reply(format!("ASKING: {e}")));
        }
        match conn.read_reply().map_err(io)? {
            Reply::Error(e) => Err(Sent::Reply(e)),
            r => Ok(r),
        }
    }

    /// Counts what the answers of one item mean.
    fn outcome(&mut self, it: &Item, res: Vec<Res>) {
        if let Some(e) = res.iter().find_map(|r| r.as_ref().err()) {
            let busy = e.starts_with("BUSYKEY") || (it.kind == Kind::Function && e.contains("already exists"));
            if busy {
                self.busy(it);
            } else {
                let mut e = e.clone();
                if let Kind::Plain { rewrite } = it.kind {
                    // A command failed but the rename went through: the key holds part of its
                    // value; it is removed (under rewrite the target's value was replaced).
                    let renamed = match rewrite {
                        true => matches!(res.last(), Some(Ok(r)) if r.is_ok()),
                        false => res.len() >= 2 && matches!(res[res.len() - 2], Ok(Reply::Int(1))),
                    };
                    if renamed {
                        e = match self.remove_partial(it) {
                            Ok(()) => format!("{e} (the partly built key was removed)"),
                            Err(d) => format!("{e}; the partly built key stays: removing it failed: {d}"),
                        };
                    }
                }
                self.fail(it, e);
            }
            return;
        }
        let c = &mut self.report.counts;
        let existed = matches!(res.first(), Some(Ok(Reply::Int(n))) if *n > 0);
        match it.kind {
            Kind::Exists => {
                if existed {
                    c.existing += 1;
                    if self.report.existing_keys.len() < super::report::MAX_FAILURES {
                        self.report.existing_keys.push((it.db, it.key.clone()));
                    }
                } else {
                    c.written += 1;
                }
                return;
            }
            Kind::Function => {
                c.functions_loaded += 1;
                return;
            }
            Kind::Expired { rewrite } => {
                c.expired_unbuilt += 1;
                match (existed, rewrite) {
                    (true, false) => {
                        self.busy(it);
                    }
                    (true, true) if it.uncertain => c.resumed_existing += 1,
                    (true, true) => c.replaced += 1,
                    (false, _) => c.written += 1,
                }
                return;
            }
            Kind::Plain { rewrite: false } => {
                // RENAMENX answered 0: a key of that name appeared after the guard's EXISTS.
                if res.len() >= 2 && matches!(res[res.len() - 2], Ok(Reply::Int(0))) {
                    self.busy(it);
                    return;
                }
                c.written += 1;
                c.sent_as_commands += 1;
            }
            Kind::Restore { exists_first } | Kind::Plain { rewrite: exists_first } => {
                if exists_first && existed && it.uncertain {
                    // Sent again after a lost connection (or `--resume`): the first send may
                    // have made the key, so "replaced" cannot be told from "written".
                    c.resumed_existing += 1;
                } else if exists_first && existed {
                    c.replaced += 1;
                } else {
                    c.written += 1;
                }
                if matches!(it.kind, Kind::Plain { .. }) {
                    c.sent_as_commands += 1;
                }
            }
        }
        if self.report.written_keys.len() < self.shared.keep_written {
            self.report.written_keys.push((it.db, it.key.clone()));
        } else {
            self.report.written_keys_truncated = true;
        }
    }
}

impl Worker {
    /// `DEL` of a key on a connection of its own (the main one has replies in flight).
    fn remove_partial(&mut self, it: &Item) -> Result<(), String> {
        let mut c = Connection::connect(&self.opts).map_err(|e| e.to_string())?;
        if it.db != 0 {
            c.select(it.db).map_err(|e| e.to_string())?;
        }
        match c.command(&[b"DEL", &it.key]).map_err(|e| e.to_string())? {
            Reply::Int(_) => Ok(()),
            r => Err(r.describe()),
        }
    }
}

/// What was sent, in order: a `SELECT` or an item's commands.
#[derive(Debug, Clone, Copy)]
enum Wire {
    Select(u64),
    Item(usize),
}

fn unread(w: &[Wire]) -> u64 {
    w.iter().filter(|x| matches!(x, Wire::Item(_))).count() as u64
}

/// An error reply that is not final: a redirect, or a state that passes.
pub fn transient(e: &str) -> bool {
    ["MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN", "LOADING"].iter().any(|p| e.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_split() {
        let mut b = Vec::new();
        encode_command(&mut b, &[b"SET", b"a\r\nb", b"1"]);
        let first = b.len();
        encode_command(&mut b, &[b"PEXPIREAT", b"a", b"99"]);
        assert_eq!(split_commands(&b), vec![(0, first), (first, b.len())]);
        assert!(split_commands(b"").is_empty());
        assert!(transient("MOVED 1 h:1") && transient("TRYAGAIN x") && !transient("BUSYKEY x"));
    }
}
