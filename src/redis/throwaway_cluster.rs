//! A throwaway Redis Cluster made of throwaway servers (`super::server`): masters without
//! replicas, each contained as a single throwaway server is, but on loopback TCP ports (the
//! cluster bus needs them).
//!
//! - `Cluster::start`: `n` empty masters, the 16384 slots split into `n` ranges in order.
//! - `Cluster::start_loaded`: one master per file of a cluster backup, each loading its file as
//!   its `dump.rdb`, as an operator restores a cluster's backup. A node that refuses its file
//!   exits, as it would in production (a key outside db 0 is refused by Redis in cluster mode
//!   too). After loading, a master takes the slots it holds keys of ("keys for unassigned slot:
//!   taking responsibility"); two files with keys of one slot cannot both be served (when the
//!   nodes meet, one wins the slot and the other deletes its keys of it), so such a set is
//!   reported, not started. Slots no file has keys of go to the master of the slot before them.
//!
//! Then the slots are assigned (`CLUSTER ADDSLOTSRANGE`, or `ADDSLOTS` before 7.0), each node
//! gets its own config epoch, the nodes are introduced with `CLUSTER MEET`, and the start waits
//! until every node says `cluster_state:ok` and sees the slot map assigned. Dropping the
//! cluster stops every node (by PID) and removes their dirs; each node is registered with
//! `crate::cleanup` for SIGINT / SIGTERM.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::client::{ConnectOptions, Connection, Reply};
use super::server::{Exposure, Server, ServerConfig, ServerDir, Start, major_minor, secret};

/// A throwaway cluster (see the module docs).
pub struct Cluster {
    /// The masters (for a loaded cluster, node `i` loaded file `i`).
    pub nodes: Vec<Server>,
    /// The slot map: (first slot, last slot, index of the master), in slot order.
    pub slots: Vec<(u16, u16, usize)>,
}

/// How the start of a loaded cluster ended (`Err` of `start_loaded`: it could not run).
pub enum Loaded {
    /// Every node loaded its file and the cluster is up.
    Up(Cluster),
    /// A node exited while loading its file (Redis refused it).
    Refused {
        /// The node (and file) index.
        node: usize,
        /// How it exited.
        status: String,
        /// Its log.
        log: String,
    },
    /// Several files hold keys of the same slots.
    SharedSlots {
        /// The first of them (at most `MAX_SHARED_LISTED`): (slot, first file, other file).
        slots: Vec<(u16, usize, usize)>,
        /// How many slots in all.
        count: usize,
    },
}

/// Shared slots listed by `Loaded::SharedSlots`.
pub const MAX_SHARED_LISTED: usize = 16;

/// The slots of each of `n` masters: 16384 split into `n` ranges as even as they go.
pub fn slot_ranges(n: usize) -> Vec<(u16, u16)> {
    let total = crate::slot::SLOTS as usize;
    (0..n).map(|i| ((i * total / n) as u16, ((i + 1) * total / n - 1) as u16)).collect()
}

/// The most masters a throwaway cluster has (each one is a process and two TCP ports).
pub const MAX_CLUSTER_NODES: usize = 256;

impl Cluster {
    /// Starts `n` empty masters (`parent`: where their dirs go, default the system temp dir),
    /// assigns them `slot_ranges(n)`, introduces them and waits (up to `timeout`) for one slot map.
    pub fn start(
        n: usize,
        cfg: &ServerConfig,
        exposure: &Exposure,
        parent: Option<&Path>,
        timeout: Duration,
    ) -> Result<Cluster, String> {
        check_count(n)?;
        let exposure = node_exposure(exposure)?;
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let dir = ServerDir::create(parent, "rdbtool-cluster-")?;
            match Server::start_with(dir, cfg, &exposure)? {
                Start::Up(s) => nodes.push(s),
                Start::Exited { status, log } => {
                    return Err(format!(
                        "cluster node {} of {n} did not start ({status}); its log ends with:\n{}",
                        i + 1,
                        log_tail(&log, 8)
                    ));
                }
            }
        }
        let slots = slot_ranges(n).into_iter().enumerate().map(|(i, (lo, hi))| (lo, hi, i)).collect();
        let c = Cluster { nodes, slots };
        c.form(cfg, &c.slots, timeout)?;
        Ok(c)
    }

    /// Starts one master per file of `files`, each loading its file as its `dump.rdb` (linked,
    /// never modified), then forms the cluster from the slots the files hold keys of (see the
    /// module docs). `loading` gets (bytes loaded, bytes in all) over all the files.
    pub fn start_loaded(
        files: &[PathBuf],
        cfg: &ServerConfig,
        exposure: &Exposure,
        parent: Option<&Path>,
        timeout: Duration,
        loading: &mut dyn FnMut(u64, u64),
    ) -> Result<Loaded, String> {
        let n = files.len();
        check_count(n)?;
        let exposure = node_exposure(exposure)?;
        let sizes: Vec<u64> = files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).collect();
        let total: u64 = sizes.iter().sum();
        let mut nodes = Vec::with_capacity(n);
        let mut before = 0u64;
        for (i, file) in files.iter().enumerate() {
            let dir = ServerDir::create(parent, "rdbtool-cluster-")?;
            let abs = std::fs::canonicalize(file).map_err(|e| format!("{}: {e}", file.display()))?;
            link_or_copy(&abs, &dir.path().join("dump.rdb"))?;
            let mut on_node = |done: u64, _: u64| loading(before + done, total);
            match Server::start_watched(dir, cfg, &exposure, &mut on_node)? {
                Start::Up(s) => nodes.push(s),
                Start::Exited { status, log } => return Ok(Loaded::Refused { node: i, status, log }),
            }
            before += sizes[i];
            loading(before, total);
        }
        // Each master's own view: the slots it took for its keys.
        let mut owner: Vec<Option<usize>> = vec![None; crate::slot::SLOTS as usize];
        let (mut shared, mut count) = (Vec::new(), 0usize);
        for (i, node) in nodes.iter().enumerate() {
            let mut conn = node.connect(Duration::from_secs(30))?;
            let r = conn
                .command(&[b"CLUSTER", b"SLOTS"])
                .map_err(|e| format!("cluster node {}: CLUSTER SLOTS: {e}", i + 1))?;
            for (lo, hi, _) in slot_owners(&r) {
                for s in lo..=hi {
                    match owner[s as usize] {
                        Some(first) => {
                            count += 1;
                            if shared.len() < MAX_SHARED_LISTED {
                                shared.push((s, first, i));
                            }
                        }
                        None => owner[s as usize] = Some(i),
                    }
                }
            }
        }
        if count > 0 {
            return Ok(Loaded::SharedSlots { slots: shared, count });
        }
        let slots = fill_gaps(&owner, n);
        let c = Cluster { nodes, slots };
        c.form(cfg, &c.slots, timeout)?;
        Ok(Loaded::Up(c))
    }

    /// Assigns the slots each node does not hold yet, sets distinct config epochs, introduces
    /// the nodes to the first one and waits for `map`.
    fn form(&self, cfg: &ServerConfig, map: &[(u16, u16, usize)], timeout: Duration) -> Result<(), String> {
        let ranges_cmd = major_minor(&cfg.version) >= (7, 0);
        let first_port = self.nodes[0].port().unwrap_or(0).to_string();
        for (i, node) in self.nodes.iter().enumerate() {
            let mut conn = node.connect(Duration::from_secs(30))?;
            // Distinct config epochs, as `redis-cli --cluster create` sets them: no collision
            // to resolve before the slot map settles.
            check(&mut conn, &[b"CLUSTER", b"SET-CONFIG-EPOCH", (i + 1).to_string().as_bytes()], "SET-CONFIG-EPOCH")?;
            let held = conn.command(&[b"CLUSTER", b"SLOTS"]).map(|r| slot_owners(&r)).unwrap_or_default();
            let held_has = |s: u16| held.iter().any(|&(lo, hi, _)| lo <= s && s <= hi);
            let mut todo: Vec<u16> = Vec::new();
            for &(lo, hi, _) in map.iter().filter(|r| r.2 == i) {
                todo.extend((lo..=hi).filter(|&s| !held_has(s)));
            }
            for run in runs(&todo) {
                if ranges_cmd {
                    let (lo, hi) = (run.0.to_string(), run.1.to_string());
                    check(&mut conn, &[b"CLUSTER", b"ADDSLOTSRANGE", lo.as_bytes(), hi.as_bytes()], "ADDSLOTSRANGE")?;
                } else {
                    let slots: Vec<String> = (run.0..=run.1).map(|s| s.to_string()).collect();
                    let mut args: Vec<&[u8]> = vec![b"CLUSTER", b"ADDSLOTS"];
                    args.extend(slots.iter().map(|s| s.as_bytes()));
                    check(&mut conn, &args, "ADDSLOTS")?;
                }
            }
            if i > 0 {
                check(&mut conn, &[b"CLUSTER", b"MEET", b"127.0.0.1", first_port.as_bytes()], "MEET")?;
            }
        }
        self.wait_ok(map, timeout)
    }

    /// Waits until every node has `cluster_state:ok` and the slot map `map`.
    fn wait_ok(&self, map: &[(u16, u16, usize)], timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        let mut want: Vec<(u16, u16, u16)> =
            map.iter().map(|&(lo, hi, i)| (lo, hi, self.nodes[i].port().unwrap_or(0))).collect();
        want.sort_unstable();
        let mut conns = Vec::new();
        for n in &self.nodes {
            conns.push(n.connect(Duration::from_secs(30))?);
        }
        loop {
            let mut last = String::new();
            let mut all = true;
            for (i, conn) in conns.iter_mut().enumerate() {
                let state = match conn.command(&[b"CLUSTER", b"INFO"]) {
                    Ok(r) => r.text().unwrap_or_default(),
                    Err(e) => return Err(format!("cluster node {}: CLUSTER INFO: {e}", i + 1)),
                };
                let ok = state.lines().any(|l| l.trim_end() == "cluster_state:ok");
                let seen = match conn.command(&[b"CLUSTER", b"SLOTS"]) {
                    Ok(r) => slot_owners(&r),
                    Err(e) => return Err(format!("cluster node {}: CLUSTER SLOTS: {e}", i + 1)),
                };
                if !ok || seen != want {
                    all = false;
                    let st = state.lines().find(|l| l.starts_with("cluster_state")).unwrap_or("").trim_end();
                    last = format!("node {} says {st} and sees {} of {} slot ranges", i + 1, seen.len(), want.len());
                    break;
                }
            }
            if all {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!("the throwaway cluster did not settle within {} s: {last}", timeout.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How to connect to node `i`.
    pub fn connect_options(&self, i: usize) -> ConnectOptions {
        self.nodes[i].connect_options()
    }

    /// Stops every node and removes their dirs.
    pub fn stop(self) {}
}

fn check_count(n: usize) -> Result<(), String> {
    if n == 0 || n > MAX_CLUSTER_NODES {
        return Err(format!("a throwaway cluster has 1 to {MAX_CLUSTER_NODES} masters, not {n}"));
    }
    Ok(())
}

/// Cluster mode on TCP; one password for every node (unless the caller opened them).
fn node_exposure(exposure: &Exposure) -> Result<Exposure, String> {
    let mut e = Exposure { cluster: true, tcp: true, ..exposure.clone() };
    if !e.open && e.password.is_none() {
        e.password = Some(secret().map_err(|e| format!("/dev/urandom: {e}"))?);
    }
    Ok(e)
}

/// The last `n` lines of a log.
pub fn log_tail(log: &str, n: usize) -> String {
    let tail: Vec<&str> = log.lines().rev().take(n).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// A file placed in a server's dir: a symbolic link (Redis only reads it), else a private copy.
pub fn link_or_copy(from: &Path, to: &Path) -> Result<(), String> {
    if std::os::unix::fs::symlink(from, to).is_ok() {
        return Ok(());
    }
    super::server::copy_private(from, to).map_err(|e| format!("copying {}: {e}", from.display()))
}

/// Every slot's master: the one that holds keys of it, else the master of the slot before it
/// (the first slots: of the first slot held). No slot held at all: `slot_ranges(n)`.
fn fill_gaps(owner: &[Option<usize>], n: usize) -> Vec<(u16, u16, usize)> {
    let Some(first) = owner.iter().flatten().next().copied() else {
        return slot_ranges(n).into_iter().enumerate().map(|(i, (lo, hi))| (lo, hi, i)).collect();
    };
    let mut map: Vec<(u16, u16, usize)> = Vec::new();
    let mut current = first;
    for (s, o) in owner.iter().enumerate() {
        if let Some(o) = o {
            current = *o;
        }
        match map.last_mut() {
            Some(last) if last.2 == current && last.1 as usize + 1 == s => last.1 = s as u16,
            _ => map.push((s as u16, s as u16, current)),
        }
    }
    map
}

/// Sorted slots as (first, last) runs of consecutive slots.
fn runs(slots: &[u16]) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for &s in slots {
        match out.last_mut() {
            Some(last) if last.1 + 1 == s => last.1 = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// `CLUSTER SLOTS` as sorted (first slot, last slot, master's port) triples.
fn slot_owners(r: &Reply) -> Vec<(u16, u16, u16)> {
    let Reply::Array(ranges) = r else { return Vec::new() };
    let mut out = Vec::new();
    for range in ranges {
        let Reply::Array(f) = range else { continue };
        let (Some(lo), Some(hi), Some(Reply::Array(m))) = (f.first(), f.get(1), f.get(2)) else { continue };
        let (Some(lo), Some(hi), Some(port)) = (lo.int(), hi.int(), m.get(1).and_then(Reply::int)) else { continue };
        out.push((lo as u16, hi as u16, port as u16));
    }
    out.sort_unstable();
    out
}

/// Sends a command that must answer OK.
fn check(conn: &mut Connection, args: &[&[u8]], what: &str) -> Result<(), String> {
    match conn.command(args) {
        Ok(r) if r.is_ok() => Ok(()),
        Ok(r) => Err(format!("CLUSTER {what} answered {}", r.describe())),
        Err(e) => Err(format!("CLUSTER {what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ranges_cover_every_slot_once() {
        for n in [1, 2, 3, 7, 256] {
            let r = slot_ranges(n);
            assert_eq!(r.len(), n);
            assert_eq!(r[0].0, 0);
            assert_eq!(r[n - 1].1, 16383);
            for w in r.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
        }
    }

    #[test]
    fn gaps_go_to_the_master_before_them() {
        let mut owner = vec![None; 16384];
        assert_eq!(fill_gaps(&owner, 2), vec![(0, 8191, 0), (8192, 16383, 1)]);
        owner[100] = Some(1);
        owner[5000] = Some(0);
        owner[5001] = Some(0);
        owner[9000] = Some(2);
        assert_eq!(fill_gaps(&owner, 3), vec![(0, 4999, 1), (5000, 8999, 0), (9000, 16383, 2)]);
        // Every slot exactly once, in order.
        let m = fill_gaps(&owner, 3);
        assert_eq!(m[0].0, 0);
        assert_eq!(m.last().unwrap().1, 16383);
        for w in m.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0);
        }
        assert_eq!(runs(&[1, 2, 3, 7, 9, 10]), vec![(1, 3), (7, 7), (9, 10)]);
    }
}
