//! The slot map of a Redis Cluster: which master serves each of the 16384 hash slots, read with
//! `CLUSTER SLOTS`, and the `-MOVED` / `-ASK` redirections that tell a client the map changed.
//!
//! `CLUSTER SLOTS` answers one entry per slot range: `[start, end, [host, port, id, ...],
//! replica...]`. An empty host (or `?`) means "the address you reached me at". A range's first
//! node is its master; replicas are not used here.

use super::client::{Addr, Connection, Error, ErrorKind, Reply};
use crate::slot::SLOTS;

/// A master of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node id (empty when the server did not send one).
    pub id: String,
    /// The host to reach it at (the seed host when the server sent an empty one or `?`).
    pub host: String,
    /// Its TCP port.
    pub port: u16,
}

impl Node {
    /// The node's TCP address.
    pub fn addr(&self) -> Addr {
        Addr::Tcp { host: self.host.clone(), port: self.port }
    }
}

/// One range of slots and the index of its master in `SlotMap::nodes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRange {
    /// First slot of the range.
    pub start: u16,
    /// Last slot of the range (inclusive).
    pub end: u16,
    /// Index of its master in [`SlotMap::nodes`].
    pub master: usize,
}

const NONE: u16 = u16::MAX;

/// Slot -> master.
#[derive(Debug, Clone)]
pub struct SlotMap {
    /// Masters, in the order `CLUSTER SLOTS` first names them.
    pub nodes: Vec<Node>,
    /// Slot ranges with their masters, as `CLUSTER SLOTS` lists them.
    pub ranges: Vec<SlotRange>,
    owner: Vec<u16>,
    /// The host the map was read from (stands for an empty host in later replies).
    seed_host: String,
}

impl SlotMap {
    /// Reads `CLUSTER SLOTS` on `conn`. `seed_host` is the host `conn` was opened to.
    pub fn fetch(conn: &mut Connection, seed_host: &str) -> Result<SlotMap, Error> {
        let reply = conn.command(&[b"CLUSTER", b"SLOTS"]).map_err(|mut e| {
            e.message = format!("CLUSTER SLOTS: {}", e.message);
            e
        })?;
        SlotMap::from_reply(&reply, seed_host).map_err(|m| Error {
            kind: ErrorKind::Protocol,
            server: conn.name().to_owned(),
            message: format!("CLUSTER SLOTS: {m}"),
        })
    }

    /// Reads the map again (after a `-MOVED`), keeping node indices of masters that stay.
    pub fn refresh(&mut self, conn: &mut Connection) -> Result<(), Error> {
        let new = SlotMap::fetch(conn, &self.seed_host)?;
        let mut map = SlotMap {
            nodes: self.nodes.clone(),
            ranges: Vec::new(),
            owner: vec![NONE; SLOTS as usize],
            seed_host: self.seed_host.clone(),
        };
        for r in &new.ranges {
            let idx = map.node_index(&new.nodes[r.master]);
            map.assign(r.start, r.end, idx);
        }
        *self = map;
        Ok(())
    }

    /// Parses a `CLUSTER SLOTS` reply.
    pub fn from_reply(reply: &Reply, seed_host: &str) -> Result<SlotMap, String> {
        let Reply::Array(items) = reply else { return Err(format!("not an array but {}", reply.describe())) };
        let mut map = SlotMap {
            nodes: Vec::new(),
            ranges: Vec::new(),
            owner: vec![NONE; SLOTS as usize],
            seed_host: seed_host.into(),
        };
        for it in items {
            let Reply::Array(f) = it else { return Err("a slot range is not an array".into()) };
            let (Some(a), Some(b), Some(Reply::Array(master))) =
                (f.first().and_then(Reply::int), f.get(1).and_then(Reply::int), f.get(2))
            else {
                return Err("a slot range lacks start, end or master".into());
            };
            let range = u16::try_from(a).ok().zip(u16::try_from(b).ok()).filter(|(a, b)| a <= b && *b < SLOTS);
            let Some((a, b)) = range else { return Err(format!("slot range {a}-{b} is out of range")) };
            let host = master.first().and_then(Reply::text).unwrap_or_default();
            let port = master.get(1).and_then(Reply::int).and_then(|p| u16::try_from(p).ok()).filter(|&p| p > 0);
            let Some(port) = port else { return Err("a master without a valid port".into()) };
            let id = master.get(2).and_then(Reply::text).unwrap_or_default();
            let host = if host.is_empty() || host == "?" { seed_host.to_owned() } else { host };
            let idx = map.node_index(&Node { id, host, port });
            if let Some(s) = (a..=b).find(|&s| map.owner[s as usize] != NONE) {
                return Err(format!("slot {s} is listed twice"));
            }
            map.assign(a, b, idx);
        }
        Ok(map)
    }

    fn node_index(&mut self, n: &Node) -> usize {
        let same = |m: &Node| {
            if n.id.is_empty() || m.id.is_empty() { m.host == n.host && m.port == n.port } else { m.id == n.id }
        };
        match self.nodes.iter().position(same) {
            Some(i) => {
                // A node that moved keeps its index, with its new address.
                self.nodes[i].host.clone_from(&n.host);
                self.nodes[i].port = n.port;
                i
            }
            None => {
                self.nodes.push(n.clone());
                self.nodes.len() - 1
            }
        }
    }

    fn assign(&mut self, start: u16, end: u16, master: usize) {
        self.owner[start as usize..=end as usize].fill(master as u16);
        self.ranges.push(SlotRange { start, end, master });
    }

    /// The master serving `slot`.
    pub fn master_of(&self, slot: u16) -> Option<usize> {
        self.owner.get(slot as usize).filter(|&&o| o != NONE).map(|&o| o as usize)
    }

    /// The first slot no master serves.
    pub fn uncovered(&self) -> Option<u16> {
        self.owner.iter().position(|&o| o == NONE).map(|s| s as u16)
    }

    /// The slot ranges of one master, in slot order.
    pub fn ranges_of(&self, master: usize) -> Vec<(u16, u16)> {
        let mut r: Vec<(u16, u16)> =
            self.ranges.iter().filter(|r| r.master == master).map(|r| (r.start, r.end)).collect();
        r.sort_unstable();
        r
    }

    /// Applies a `-MOVED` without reading the whole map: `slot` now lives at `host:port`.
    /// Returns the index of that master (a new one is added).
    pub fn moved(&mut self, slot: u16, host: &str, port: u16) -> usize {
        let host = if host.is_empty() || host == "?" { self.seed_host.clone() } else { host.to_owned() };
        let idx = match self.nodes.iter().position(|n| n.host == host && n.port == port) {
            Some(i) => i,
            None => {
                self.nodes.push(Node { id: String::new(), host, port });
                self.nodes.len() - 1
            }
        };
        if let Some(o) = self.owner.get_mut(slot as usize) {
            *o = idx as u16;
        }
        idx
    }
}

/// A cluster redirection from an error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// The slot has moved for good: update the map.
    Moved {
        /// The slot the command's key is in.
        slot: u16,
        /// Host of the node that serves the slot.
        host: String,
        /// Port of that node.
        port: u16,
    },
    /// Ask that node this once (after `ASKING`): the slot is being migrated.
    Ask {
        /// The slot the command's key is in.
        slot: u16,
        /// Host of the node that serves the slot.
        host: String,
        /// Port of that node.
        port: u16,
    },
}

impl Redirect {
    /// `MOVED 3999 127.0.0.1:6381` / `ASK 3999 127.0.0.1:6381` (without the leading `-`).
    pub fn parse(error: &str) -> Option<Redirect> {
        let mut it = error.split_ascii_whitespace();
        let kind = it.next()?;
        let slot: u16 = it.next()?.parse().ok().filter(|&s| s < SLOTS)?;
        let (host, port) = it.next()?.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = port.parse().ok()?;
        match kind {
            "MOVED" => Some(Redirect::Moved { slot, host, port }),
            "ASK" => Some(Redirect::Ask { slot, host, port }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(h: &str, p: i64, id: &str) -> Reply {
        Reply::Array(vec![Reply::Bulk(h.into()), Reply::Int(p), Reply::Bulk(id.into()), Reply::Array(vec![])])
    }

    #[test]
    fn slots_reply_and_redirects() {
        let reply = Reply::Array(vec![
            Reply::Array(vec![Reply::Int(5461), Reply::Int(10922), node("", 7001, "b")]),
            Reply::Array(vec![
                Reply::Int(0),
                Reply::Int(5460),
                node("127.0.0.1", 7000, "a"),
                node("127.0.0.1", 7003, "r"),
            ]),
            Reply::Array(vec![Reply::Int(10923), Reply::Int(16383), node("127.0.0.1", 7000, "a")]),
        ]);
        let mut m = SlotMap::from_reply(&reply, "seed").unwrap();
        assert_eq!(m.nodes.len(), 2);
        assert_eq!(m.nodes[0], Node { id: "b".into(), host: "seed".into(), port: 7001 });
        assert_eq!(m.master_of(0), Some(1));
        assert_eq!(m.master_of(16383), Some(1));
        assert_eq!(m.ranges_of(1), vec![(0, 5460), (10923, 16383)]);
        assert_eq!(m.uncovered(), None);
        assert_eq!(m.moved(0, "127.0.0.1", 7005), 2);
        assert_eq!(m.master_of(0), Some(2));
        assert!(SlotMap::from_reply(&Reply::Array(vec![]), "").unwrap().uncovered() == Some(0));
        assert!(SlotMap::from_reply(&Reply::Int(1), "").is_err());
        let bad = Reply::Array(vec![Reply::Array(vec![Reply::Int(9), Reply::Int(99999), node("", 1, "")])]);
        assert!(SlotMap::from_reply(&bad, "").is_err());
        assert_eq!(
            Redirect::parse("MOVED 3999 127.0.0.1:6381"),
            Some(Redirect::Moved { slot: 3999, host: "127.0.0.1".into(), port: 6381 })
        );
        assert_eq!(Redirect::parse("ASK 1 [::1]:2"), Some(Redirect::Ask { slot: 1, host: "::1".into(), port: 2 }));
        assert_eq!(Redirect::parse("ERR x"), None);
    }
}
