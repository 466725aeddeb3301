//! A connected server or cluster: its nodes and databases (INFO), cluster routing by hash slot,
//! pipelined batches of lookups (DUMP + PTTL, TYPE + PTTL, EXISTS) and SCAN.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::super::{DiffError, KeySelect};
use crate::rdb::types::Kind;
use crate::redis::Scan;
use crate::redis::client::ErrorKind as ClientErrorKind;
use crate::redis::client::{Addr, ConnectOptions, Connection, Reply as RValue, encode_command as push_cmd};
use crate::redis::cluster::SlotMap;
use crate::slot::key_slot;

struct Node {
    addr: String,
    opts: ConnectOptions,
    conn: Connection,
    /// The database selected on `conn` (as of the last command sent).
    db: u64,
    /// Databases with keys on this node (INFO keyspace) and their key counts.
    dbs: Vec<(u64, u64)>,
}

/// A server or cluster, connected.
pub struct LiveSide {
    pub name: String,
    nodes: Vec<Node>,
    /// For a cluster: the index in `nodes` of each slot's master.
    slot_node: Option<Vec<u16>>,
    /// The `/db` of the URL: only that database is read.
    pub url_db: Option<u64>,
    /// `redis_version` (or `valkey_version`) from INFO.
    pub version: String,
    /// Set by another thread to stop a SCAN early (the diff failed elsewhere).
    pub(super) cancel: Option<Arc<AtomicBool>>,
}

fn live_err(name: &str, what: &str, e: impl std::fmt::Display) -> DiffError {
    DiffError::Live(format!("{name}: {what}: {e}"))
}

fn connect(opts: &ConnectOptions) -> Result<Connection, DiffError> {
    Connection::connect(opts).map_err(|e| DiffError::Live(e.to_string()))
}

/// Whether a server of this INFO version has `CLIENT NO-TOUCH` (Redis 7.2+, every Valkey).
fn has_no_touch(version: &str) -> bool {
    // Unknown (INFO refused): asked anyway, a refusal is harmless.
    if version.is_empty() || version.starts_with("valkey") {
        return true;
    }
    let mut it = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (major, minor) >= (7, 2)
}

/// Asks the server not to touch the keys this connection reads: DUMP would otherwise reset
/// their LRU idle time (and LFU counter), which eviction relies on. Refused (an ACL without
/// `client|no-touch`): the diff goes on, as on servers older than 7.2, which have no such mode.
fn no_touch(conn: &mut Connection, version: &str) {
    if has_no_touch(version) {
        let _ = conn.command(&[b"CLIENT", b"NO-TOUCH", b"ON"]);
    }
}

fn text(v: &RValue) -> Option<String> {
    v.text()
}

fn int(v: &RValue) -> Option<i64> {
    v.int()
}

fn describe_reply(v: &RValue) -> String {
    v.describe()
}

/// What to ask about each key of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// DUMP and PTTL: the value and its expire time.
    DumpPttl,
    /// TYPE and PTTL: what a key only this side has is.
    TypePttl,
    /// EXISTS.
    Exists,
}

/// The answer for one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `payload` None: the key does not exist (anymore). `expire_at_ms` from PTTL and the clock.
    Dump {
        payload: Option<Vec<u8>>,
        expire_at_ms: Option<i64>,
        at_ms: i64,
    },
    /// `kind` None: the key does not exist (TYPE said `none`); `Some(Err(name))` for a type name
    /// this tool does not know.
    Type {
        kind: Option<Result<Kind, String>>,
        expire_at_ms: Option<i64>,
    },
    Exists(bool),
}

/// Commands sent and not yet read.
pub struct Pending {
    query: Query,
    /// Per node: (node, key indices in send order, SELECT replies to skip before each key).
    per_node: Vec<(usize, Vec<(usize, bool)>)>,
    n: usize,
}

impl LiveSide {
    /// Connects, reads INFO, and for a cluster CLUSTER SLOTS and a connection per master.
    pub fn connect(opts: &ConnectOptions) -> Result<LiveSide, DiffError> {
        let name = opts.name();
        let url_db = opts.db;
        let conn = connect(opts)?;
        let mut seed = Node { addr: name.clone(), opts: opts.clone(), conn, db: 0, dbs: Vec::new() };
        let mut version = String::new();
        let mut cluster = false;
        match seed.conn.command(&[b"INFO"]) {
            Ok(all) => {
                let all = text(&all)
                    .ok_or_else(|| live_err(&name, "INFO", format!("unexpected {}", describe_reply(&all))))?;
                for (k, v) in crate::redis::info::fields(&all) {
                    match k {
                        "redis_version" if version.is_empty() => version = v.to_owned(),
                        "valkey_version" => version = format!("valkey {v}"),
                        "cluster_enabled" => cluster = v == "1",
                        "loading" if v == "1" => {
                            return Err(live_err(
                                &name,
                                "server",
                                "still loading its dataset (try again when loading ends)",
                            ));
                        }
                        _ => {}
                    }
                    if let Some(d) = crate::redis::info::keyspace_line(k, v) {
                        seed.dbs.push(d);
                    }
                }
            }
            // Refused (an ACL user with `+@read` only): the databases come from SELECT +
            // DBSIZE, the cluster mode from CLUSTER SLOTS, the version stays unknown.
            Err(e) if e.kind == ClientErrorKind::Server && e.message.starts_with("NOPERM") => {
                cluster = seed.conn.command(&[b"CLUSTER", b"SLOTS"]).is_ok();
                seed.dbs = if cluster { vec![(0, seed.dbsize()?)] } else { seed.probe_keyspace()? };
            }
            Err(e) => return Err(DiffError::Live(e.to_string())),
        }
        no_touch(&mut seed.conn, &version);
        let mut live =
            LiveSide { name: name.clone(), nodes: vec![seed], slot_node: None, url_db, version, cancel: None };
        if cluster {
            live.discover_cluster()?;
        }
        Ok(live)
    }

    /// Another set of connections to the same nodes (for a SCAN beside the lookups).
    pub fn reconnect(&self) -> Result<LiveSide, DiffError> {
        let mut nodes = Vec::new();
        for n in &self.nodes {
            let mut conn = connect(&n.opts)?;
            no_touch(&mut conn, &self.version);
            nodes.push(Node { addr: n.addr.clone(), opts: n.opts.clone(), conn, db: 0, dbs: n.dbs.clone() });
        }
        Ok(LiveSide {
            name: self.name.clone(),
            nodes,
            slot_node: self.slot_node.clone(),
            url_db: self.url_db,
            version: self.version.clone(),
            cancel: None,
        })
    }

    pub fn is_cluster(&self) -> bool {
        self.slot_node.is_some()
    }

    /// Masters read (1 for a standalone server).
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    /// Keys per database, summed over the nodes (INFO keyspace).
    pub fn key_counts(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for n in &self.nodes {
            for &(db, k) in &n.dbs {
                match out.iter_mut().find(|(d, _)| *d == db) {
                    Some(e) => e.1 += k,
                    None => out.push((db, k)),
                }
            }
        }
        out.sort();
        out
    }

    fn discover_cluster(&mut self) -> Result<(), DiffError> {
        let seed = self.nodes.pop().expect("the seed node");
        let seed_host = match &seed.opts.addr {
            Addr::Tcp { host, .. } => host.clone(),
            Addr::Unix(_) => String::new(),
        };
        let mut seed_conn = seed.conn;
        let map = SlotMap::fetch(&mut seed_conn, &seed_host).map_err(|e| DiffError::Live(e.to_string()))?;
        let bad = |why: &str| live_err(&self.name, "CLUSTER SLOTS", why);
        if map.nodes.is_empty() {
            return Err(bad("no slot is assigned"));
        }
        if let Some(s) = map.uncovered() {
            return Err(bad(&format!("slot {s} has no master: the cluster is not fully covered")));
        }
        let slot_node: Vec<u16> =
            (0..crate::slot::SLOTS).map(|s| map.master_of(s).map_or(u16::MAX, |m| m as u16)).collect();
        let mut nodes = Vec::new();
        for m in &map.nodes {
            let opts = seed.opts.with_addr(m.addr());
            let mut conn = connect(&opts)?;
            no_touch(&mut conn, &self.version);
            let mut node = Node { addr: opts.name(), opts, conn, db: 0, dbs: Vec::new() };
            node.dbs = match node.conn.command(&[b"INFO", b"keyspace"]) {
                Ok(ks) => {
                    let ks = text(&ks).ok_or_else(|| live_err(&node.addr, "INFO keyspace", describe_reply(&ks)))?;
                    crate::redis::info::keyspace(&ks)
                }
                // INFO refused: a cluster has database 0 only.
                Err(e) if e.kind == ClientErrorKind::Server && e.message.starts_with("NOPERM") => {
                    vec![(0, node.dbsize()?)]
                }
                Err(e) => return Err(DiffError::Live(e.to_string())),
            };
            nodes.push(node);
        }
        self.nodes = nodes;
        self.slot_node = Some(slot_node);
        Ok(())
    }

    fn route(&self, key: &[u8]) -> usize {
        match &self.slot_node {
            Some(t) => t[key_slot(key) as usize] as usize,
            None => 0,
        }
    }

    /// Sends one batch of queries (pipelined, one packet per node). Read the replies with
    /// `recv`, in the order the batches were sent.
    pub fn send(&mut self, query: Query, keys: &[(u64, &[u8])]) -> Result<Pending, DiffError> {
        let mut per_node: Vec<(usize, Vec<(usize, bool)>)> = Vec::new();
        let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); self.nodes.len()];
        for (i, &(db, key)) in keys.iter().enumerate() {
            let n = self.route(key);
            // A database the node's INFO keyspace did not list had no key when we connected (it
            // may not even exist: SELECT would fail; a Redis cluster lists db 0 only, a Valkey 9
            // cluster the `cluster-databases` it holds keys in): keys of such databases are
            // answered "absent" without asking.
            let absent = !self.nodes[n].dbs.iter().any(|d| d.0 == db);
            let slot = match per_node.iter().position(|(x, _)| *x == n) {
                Some(s) => s,
                None => {
                    per_node.push((n, Vec::new()));
                    per_node.len() - 1
                }
            };
            let node = &mut self.nodes[n];
            let buf = &mut bufs[n];
            let mut selected = false;
            if !absent && node.db != db {
                push_cmd(buf, &[b"SELECT", db.to_string().as_bytes()]);
                node.db = db;
                selected = true;
            }
            if absent {
                // Answered without asking: marked by pushing nothing for it.
                per_node[slot].1.push((i | ABSENT, false));
                continue;
            }
            match query {
                Query::DumpPttl => {
                    push_cmd(buf, &[b"DUMP", key]);
                    push_cmd(buf, &[b"PTTL", key]);
                }
                Query::TypePttl => {
                    push_cmd(buf, &[b"TYPE", key]);
                    push_cmd(buf, &[b"PTTL", key]);
                }
                Query::Exists => push_cmd(buf, &[b"EXISTS", key]),
            }
            per_node[slot].1.push((i, selected));
        }
        for (n, _) in &per_node {
            let node = &mut self.nodes[*n];
            if !bufs[*n].is_empty() {
                node.conn.send_raw(&bufs[*n]).map_err(|e| DiffError::Live(e.to_string()))?;
            }
        }
        Ok(Pending { query, per_node, n: keys.len() })
    }

    /// Reads the replies of a batch sent with `send`, one per key in the order given.
    pub fn recv(&mut self, p: Pending) -> Result<Vec<Reply>, DiffError> {
        let mut out: Vec<Option<Reply>> = vec![None; p.n];
        for (n, items) in &p.per_node {
            let node = &mut self.nodes[*n];
            for &(i, selected) in items {
                if i & ABSENT != 0 {
                    out[i & !ABSENT] = Some(absent_reply(p.query));
                    continue;
                }
                if selected {
                    let r = node.read()?;
                    if !r.is_ok() {
                        return Err(live_err(&node.addr, "SELECT", describe_reply(&r)));
                    }
                }
                out[i] = Some(node.read_answer(p.query)?);
            }
        }
        out.into_iter()
            .map(|r| r.ok_or_else(|| DiffError::Live(format!("{}: a reply is missing", self.name))))
            .collect()
    }

    /// SCAN of every node and selected database; `f` gets (db, key) for each selected key.
    pub fn scan(
        &mut self,
        select: &KeySelect,
        count: usize,
        mut f: impl FnMut(&mut LiveSide, u64, Vec<u8>) -> Result<(), DiffError>,
    ) -> Result<(), DiffError> {
        // One pattern goes to the server; the selection is applied here in any case.
        let pattern = match select.glob_patterns.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        };
        for n in 0..self.nodes.len() {
            let dbs: Vec<u64> = self.nodes[n]
                .dbs
                .iter()
                .map(|d| d.0)
                .filter(|&d| select.wants_db(d) && self.url_db.is_none_or(|u| u == d))
                .collect();
            for db in dbs {
                let size = self.nodes[n].dbs.iter().find(|d| d.0 == db).map_or(0, |d| d.1);
                let mut scan = Scan::new(size, count, pattern.clone());
                loop {
                    if self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                        return Err(DiffError::Live(format!("{}: SCAN stopped", self.name)));
                    }
                    let node = &mut self.nodes[n];
                    if node.db != db {
                        node.select(db)?;
                    }
                    let Some(keys) = scan.next_page(&mut node.conn).map_err(|e| DiffError::Live(e.to_string()))? else {
                        break;
                    };
                    for k in keys {
                        if select.matches(db, &k) {
                            f(self, db, k)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Databases probed at most when INFO is refused.
const MAX_PROBED_DBS: u64 = 1 << 14;

const ABSENT: usize = 1 << (usize::BITS - 1);

fn absent_reply(q: Query) -> Reply {
    match q {
        Query::DumpPttl => Reply::Dump { payload: None, expire_at_ms: None, at_ms: crate::filter::now_ms() },
        Query::TypePttl => Reply::Type { kind: None, expire_at_ms: None },
        Query::Exists => Reply::Exists(false),
    }
}

impl Node {
    fn read(&mut self) -> Result<RValue, DiffError> {
        let v = self.conn.read_reply().map_err(|e| DiffError::Live(e.to_string()))?;
        if let RValue::Error(e) = &v {
            return Err(live_err(&self.addr, "the server answered with an error", e));
        }
        Ok(v)
    }

    fn command(&mut self, args: &[&[u8]]) -> Result<RValue, DiffError> {
        let mut buf = Vec::new();
        push_cmd(&mut buf, args);
        self.conn.send_raw(&buf).map_err(|e| DiffError::Live(e.to_string()))?;
        self.read()
    }

    fn dbsize(&mut self) -> Result<u64, DiffError> {
        let r = self.command(&[b"DBSIZE"])?;
        int(&r)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| live_err(&self.addr, "DBSIZE", format!("unexpected {}", describe_reply(&r))))
    }

    /// Databases with keys and their sizes without INFO: SELECT n + DBSIZE for n = 0, 1, ...
    /// (pipelined) until SELECT is refused (past the last database), or up to `MAX_PROBED_DBS`.
    fn probe_keyspace(&mut self) -> Result<Vec<(u64, u64)>, DiffError> {
        let mut out = Vec::new();
        let mut first = 0u64;
        while first < MAX_PROBED_DBS {
            let dbs: Vec<String> = (first..first + 16).map(|d| d.to_string()).collect();
            let cmds: Vec<Vec<&[u8]>> =
                dbs.iter().flat_map(|d| [vec![&b"SELECT"[..], d.as_bytes()], vec![&b"DBSIZE"[..]]]).collect();
            let replies = self.conn.pipeline(&cmds).map_err(|e| DiffError::Live(e.to_string()))?;
            for (i, pair) in replies.chunks(2).enumerate() {
                let db = first + i as u64;
                match (&pair[0], &pair[1]) {
                    (Ok(_), Ok(n)) => {
                        self.db = db;
                        match int(n) {
                            Some(0) => {}
                            Some(n) if n > 0 => out.push((db, n as u64)),
                            _ => return Err(live_err(&self.addr, "DBSIZE", describe_reply(n))),
                        }
                    }
                    // SELECT itself refused (no `+select`): database 0 only.
                    (Err(_), Ok(n)) if db == 0 => {
                        let n = int(n).unwrap_or(0).max(0) as u64;
                        return Ok(if n > 0 { vec![(0, n)] } else { Vec::new() });
                    }
                    (Err(e), _) if db == 0 => return Err(live_err(&self.addr, "SELECT 0", e)),
                    (Err(_), _) => return Ok(out),
                    (Ok(_), Err(e)) => {
                        return Err(live_err(
                            &self.addr,
                            "DBSIZE",
                            format!("{e} (a read-only user needs +@read +select +ping +cluster|slots, and +info)"),
                        ));
                    }
                }
            }
            first += 16;
        }
        Ok(out)
    }

    fn select(&mut self, db: u64) -> Result<(), DiffError> {
        let r = self.command(&[b"SELECT", db.to_string().as_bytes()])?;
        if !r.is_ok() {
            return Err(live_err(&self.addr, "SELECT", describe_reply(&r)));
        }
        self.db = db;
        Ok(())
    }

    fn read_pttl(&mut self) -> Result<(Option<i64>, i64, bool), DiffError> {
        let v = self.read()?;
        let at = crate::filter::now_ms();
        match int(&v) {
            Some(-2) => Ok((None, at, false)),
            Some(-1) => Ok((None, at, true)),
            Some(ms) if ms >= 0 => Ok((Some(at.saturating_add(ms)), at, true)),
            _ => Err(live_err(&self.addr, "PTTL", format!("unexpected {}", describe_reply(&v)))),
        }
    }

    fn read_answer(&mut self, q: Query) -> Result<Reply, DiffError> {
        match q {
            Query::DumpPttl => {
                let d = self.read()?;
                let payload = match d {
                    RValue::Nil => None,
                    RValue::Bulk(b) => Some(b),
                    other => {
                        return Err(live_err(&self.addr, "DUMP", format!("unexpected {}", describe_reply(&other))));
                    }
                };
                let (expire_at_ms, at_ms, exists) = self.read_pttl()?;
                // Gone between DUMP and PTTL: gone.
                let payload = payload.filter(|_| exists);
                Ok(Reply::Dump { payload, expire_at_ms, at_ms })
            }
            Query::TypePttl => {
                let t = self.read()?;
                let name = text(&t).ok_or_else(|| live_err(&self.addr, "TYPE", describe_reply(&t)))?;
                let (expire_at_ms, _, _) = self.read_pttl()?;
                let kind = match name.as_str() {
                    "none" => None,
                    n => Some(Kind::parse(n).ok_or(n.to_owned())),
                };
                Ok(Reply::Type { kind, expire_at_ms })
            }
            Query::Exists => {
                let v = self.read()?;
                match int(&v) {
                    Some(n) if n >= 0 => Ok(Reply::Exists(n > 0)),
                    _ => Err(live_err(&self.addr, "EXISTS", describe_reply(&v))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        let mut b = Vec::new();
        push_cmd(&mut b, &[b"DUMP", b"k\r\n"]);
        assert_eq!(b, b"*2\r\n$4\r\nDUMP\r\n$3\r\nk\r\n\r\n");
    }
}
