//! Splitting RDB files by cluster hash slot: slot layouts (even shards as `redis-cli --cluster
//! create` assigns them, explicit ranges, `CLUSTER NODES` / nodes.conf text, a live cluster's
//! `CLUSTER SLOTS`) and the router that sends every key to the target owning its slot. The
//! passes themselves are `merge`'s engine.

use std::ops::RangeInclusive;

use serde::Serialize;

use crate::merge::{DbRoute, Router};
#[cfg(feature = "live")]
use crate::redis::client::{ConnectOptions, Connection};
#[cfg(feature = "live")]
use crate::redis::cluster::SlotMap;
use crate::slot::{SLOTS, key_slot};

/// One output of a split: the slots it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Output file name without `.rdb`.
    pub name: String,
    #[serde(serialize_with = "ser_ranges")]
    pub ranges: Vec<RangeInclusive<u16>>,
    /// The master's node id and address (from --nodes / --from).
    pub node: Option<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub id: String,
    pub host: String,
    pub port: u16,
}

fn ser_ranges<S: serde::Serializer>(r: &[RangeInclusive<u16>], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ranges_text(r))
}

/// `0-5460,5461-10922` (single slots as `N`).
pub fn ranges_text(r: &[RangeInclusive<u16>]) -> String {
    let parts: Vec<String> = r
        .iter()
        .map(|x| if x.start() == x.end() { x.start().to_string() } else { format!("{}-{}", x.start(), x.end()) })
        .collect();
    parts.join(",")
}

const NONE: u16 = u16::MAX;

/// Targets and the slot -> target table.
#[derive(Debug, Clone)]
pub struct Layout {
    pub targets: Vec<Target>,
    owner: Vec<u16>,
}

impl Layout {
    /// Checks that no slot has two owners and builds the table.
    pub fn new(targets: Vec<Target>) -> Result<Layout, String> {
        if targets.is_empty() {
            return Err("no targets".into());
        }
        if targets.len() >= NONE as usize {
            return Err(format!("too many targets ({})", targets.len()));
        }
        let mut owner = vec![NONE; SLOTS as usize];
        for (t, target) in targets.iter().enumerate() {
            for r in &target.ranges {
                if *r.end() >= SLOTS || r.start() > r.end() {
                    return Err(format!("slot range {}-{} is not within 0-16383", r.start(), r.end()));
                }
                for s in r.clone() {
                    let o = &mut owner[s as usize];
                    if *o != NONE {
                        return Err(format!(
                            "slot {s} is assigned to both {} and {}",
                            targets[*o as usize].name, target.name
                        ));
                    }
                    *o = t as u16;
                }
            }
        }
        let mut names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("two targets named {}", w[0]));
        }
        Ok(Layout { targets, owner })
    }

    /// `n` masters with slots as `redis-cli --cluster create` assigns them: a float step of
    /// 16384 / n, each range ending at `lround(cursor + step - 1)`, the last one at 16383.
    pub fn even(n: usize) -> Result<Layout, String> {
        if n == 0 || n > SLOTS as usize {
            return Err(format!("--shards {n}: expected 1 to 16384"));
        }
        let step = SLOTS as f32 / n as f32;
        let mut cursor = 0f32;
        let mut first = 0i64;
        let mut targets = Vec::with_capacity(n);
        for i in 0..n {
            let mut last = (cursor + step - 1.0).round() as i64;
            if last > SLOTS as i64 || i == n - 1 {
                last = SLOTS as i64 - 1;
            }
            if last < first {
                last = first;
            }
            targets.push(Target { name: format!("shard-{i}"), ranges: vec![first as u16..=last as u16], node: None });
            first = last + 1;
            cursor += step;
        }
        Layout::new(targets)
    }

    /// `0-5460,5461-10922,10923-16383`: one target per comma-separated item; `+` joins several
    /// ranges into one target (`0-99+200-299`).
    pub fn from_spec(spec: &str) -> Result<Layout, String> {
        let mut targets = Vec::new();
        for (i, item) in spec.split(',').enumerate() {
            let ranges = item
                .split('+')
                .map(|r| crate::filter::parse_slot_range(r.trim()).map_err(|_| format!("--slots: bad range {r:?}")))
                .collect::<Result<Vec<_>, _>>()?;
            targets.push(Target { name: format!("shard-{i}"), ranges, node: None });
        }
        Layout::new(targets)
    }

    /// The output of `CLUSTER NODES`, or a nodes.conf: one target per master that owns slots,
    /// named `<node id>-<host>-<port>`. Slots being migrated (`[n->-id]`, `[n-<-id]`) stay with
    /// the node listing them as its own.
    pub fn from_nodes(text: &str) -> Result<Layout, String> {
        let mut targets = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            if f.is_empty() || f[0] == "vars" {
                continue;
            }
            let bad = |m: &str| format!("nodes line {}: {m}: {line:?}", n + 1);
            if f.len() < 8 {
                return Err(bad("fewer than 8 fields"));
            }
            let flags: Vec<&str> = f[2].split(',').collect();
            if !flags.contains(&"master") {
                continue;
            }
            let mut ranges = Vec::new();
            for s in &f[8..] {
                if s.starts_with('[') {
                    continue;
                }
                ranges.push(crate::filter::parse_slot_range(s).map_err(|_| bad(&format!("bad slot range {s}")))?);
            }
            if ranges.is_empty() {
                continue;
            }
            let node = parse_node_addr(f[0], f[1]).ok_or_else(|| bad("bad address"))?;
            targets.push(Target { name: node_file_name(&node), ranges, node: Some(node) });
        }
        if targets.is_empty() {
            return Err("no master with slots in the nodes file".into());
        }
        Layout::new(targets)
    }

    /// A live cluster's slot map (`CLUSTER SLOTS`): one target per master, named
    /// `<node id>-<host>-<port>`, in the order of its first slot.
    #[cfg(feature = "live")]
    pub fn from_slot_map(map: &SlotMap) -> Result<Layout, String> {
        let mut targets: Vec<Target> = Vec::new();
        for (i, n) in map.nodes.iter().enumerate() {
            let ranges: Vec<RangeInclusive<u16>> = map.ranges_of(i).into_iter().map(|(a, b)| a..=b).collect();
            if ranges.is_empty() {
                continue;
            }
            let node = Node { id: n.id.clone(), host: n.host.clone(), port: n.port };
            targets.push(Target { name: node_file_name(&node), ranges, node: Some(node) });
        }
        if targets.is_empty() {
            return Err(
                "CLUSTER SLOTS reply: no slots assigned (is cluster mode enabled and the cluster created?)".into()
            );
        }
        targets.sort_by_key(|t| *t.ranges[0].start());
        Layout::new(targets)
    }

    /// The target owning `slot`.
    pub fn owner(&self, slot: u16) -> Option<usize> {
        self.owner.get(slot as usize).filter(|&&o| o != NONE).map(|&o| o as usize)
    }
}

fn parse_node_addr(id: &str, addr: &str) -> Option<Node> {
    // ip:port@cport[,hostname]
    let hostport = addr.split('@').next()?;
    let (host, port) = hostport.rsplit_once(':')?;
    let hostname = addr.split_once(',').map(|x| x.1).filter(|h| !h.is_empty());
    Some(Node { id: id.to_owned(), host: hostname.unwrap_or(host).to_owned(), port: port.parse().ok()? })
}

/// `<node id>-<host>-<port>`, with characters unfit for file names replaced by `_`.
fn node_file_name(n: &Node) -> String {
    let clean = |s: &str| {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect::<String>()
    };
    format!("{}-{}-{}", clean(&n.id), clean(&n.host), n.port)
}

/// Which source dbs a split takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbSelect {
    /// Only db 0; keys elsewhere are an error.
    Db0,
    /// Only this db (written as db 0); the others are skipped.
    Only(u64),
    /// Every db, written as db 0.
    All,
}

pub struct SplitRouter<'l> {
    pub layout: &'l Layout,
    pub dbs: DbSelect,
}

impl Router for SplitRouter<'_> {
    fn outputs(&self) -> usize {
        self.layout.targets.len()
    }
    fn db(&self, src_db: u64) -> DbRoute {
        match self.dbs {
            DbSelect::All => DbRoute::To(0),
            DbSelect::Only(d) if d == src_db => DbRoute::To(0),
            DbSelect::Only(_) => DbRoute::Skip,
            DbSelect::Db0 if src_db == 0 => DbRoute::To(0),
            DbSelect::Db0 => DbRoute::Reject,
        }
    }
    #[inline]
    fn output(&self, key: &[u8]) -> Option<usize> {
        self.layout.owner(key_slot(key))
    }
    fn joins_dbs(&self) -> bool {
        self.dbs == DbSelect::All
    }
}

/// Reads the slot layout of a live cluster with `CLUSTER SLOTS`.
#[cfg(feature = "live")]
pub fn fetch_layout(opts: &ConnectOptions) -> Result<Layout, String> {
    let mut conn = Connection::connect(opts).map_err(|e| e.to_string())?;
    let seed_host = match &opts.addr {
        crate::redis::Addr::Tcp { host, .. } => host.clone(),
        crate::redis::Addr::Unix(_) => String::new(),
    };
    let map = SlotMap::fetch(&mut conn, &seed_host).map_err(|e| e.to_string())?;
    Layout::from_slot_map(&map).map_err(|e| format!("{}: {e}", opts.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(l: &Layout) -> Vec<String> {
        l.targets.iter().map(|t| ranges_text(&t.ranges)).collect()
    }

    #[test]
    fn even_shards_like_redis_cli() {
        assert_eq!(ranges(&Layout::even(3).unwrap()), ["0-5460", "5461-10922", "10923-16383"]);
        assert_eq!(ranges(&Layout::even(1).unwrap()), ["0-16383"]);
        assert_eq!(ranges(&Layout::even(2).unwrap()), ["0-8191", "8192-16383"]);
        // redis-cli with 6 masters: 0-2730, 2731-5460, 5461-8191, 8192-10922, 10923-13652, 13653-16383.
        assert_eq!(
            ranges(&Layout::even(6).unwrap()),
            ["0-2730", "2731-5460", "5461-8191", "8192-10922", "10923-13652", "13653-16383"]
        );
        let l = Layout::even(7).unwrap();
        assert_eq!((0..16384u16).filter(|&s| l.owner(s).is_some()).count(), 16384);
        assert!(Layout::even(0).is_err());
        assert_eq!(Layout::even(16384).unwrap().targets.len(), 16384);
    }

    #[test]
    fn explicit_ranges() {
        let l = Layout::from_spec("0-99+200-299,100-199").unwrap();
        assert_eq!(l.owner(250), Some(0));
        assert_eq!(l.owner(150), Some(1));
        assert_eq!(l.owner(300), None);
        assert!(Layout::from_spec("0-100,100-200").unwrap_err().contains("slot 100"));
        assert!(Layout::from_spec("0-16384").is_err());
        assert!(Layout::from_spec("x").is_err());
    }

    #[test]
    fn nodes_text() {
        let text = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383 [10000->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001,node-a myself,master - 0 0 1 connected 0-5460
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 master - 0 1426238316232 5 connected
vars currentEpoch 6 lastVoteEpoch 0
";
        let l = Layout::from_nodes(text).unwrap();
        assert_eq!(l.targets.len(), 3);
        assert_eq!(l.targets[0].name, "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1-127.0.0.1-30002");
        assert_eq!(l.targets[2].name, "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca-node-a-30001");
        assert_eq!(l.owner(0), Some(2));
        assert_eq!(l.owner(10000), Some(0));
        assert_eq!(l.owner(16383), Some(1));
        assert!(Layout::from_nodes("garbage").is_err());
        assert!(Layout::from_nodes("").is_err());
    }

    #[test]
    #[cfg(feature = "live")]
    fn cluster_slots_reply() {
        use crate::redis::Reply;
        let node = |h: &str, p: i64, id: &str| {
            Reply::Array(vec![Reply::Bulk(h.into()), Reply::Int(p), Reply::Bulk(id.into()), Reply::Array(vec![])])
        };
        let reply = Reply::Array(vec![
            Reply::Array(vec![Reply::Int(5461), Reply::Int(10922), node("127.0.0.1", 7001, "b")]),
            Reply::Array(vec![
                Reply::Int(0),
                Reply::Int(5460),
                node("127.0.0.1", 7000, "a"),
                node("127.0.0.1", 7003, "r"),
            ]),
            Reply::Array(vec![Reply::Int(10923), Reply::Int(16383), node("127.0.0.1", 7000, "a")]),
        ]);
        let l = Layout::from_slot_map(&SlotMap::from_reply(&reply, "").unwrap()).unwrap();
        assert_eq!(ranges(&l), ["0-5460,10923-16383", "5461-10922"]);
        assert_eq!(l.targets[0].name, "a-127.0.0.1-7000");
        assert!(Layout::from_slot_map(&SlotMap::from_reply(&Reply::Array(vec![]), "").unwrap()).is_err());
        assert!(SlotMap::from_reply(&Reply::Int(1), "").is_err());
    }
}
