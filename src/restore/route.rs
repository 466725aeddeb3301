//! The target of a restore: what `INFO` says about it (version, cluster mode, loading), the
//! release that version maps to (and so the newest DUMP payload it takes), and for a cluster the
//! slot map that routes each key to its master.

use std::sync::{Arc, Mutex};

use crate::rdb::servers::{RELEASES, Release};
use crate::rdb::types::{Flavor, Format};
use crate::redis::client::{ConnectOptions, Connection, Error, ErrorKind};
use crate::redis::cluster::SlotMap;

/// A connected target (the seed connection is closed again: workers open their own).
pub struct Target {
    pub opts: ConnectOptions,
    /// `7.0.15`, or `valkey 8.1.8`.
    pub version: String,
    /// The release line of that version (None: a version we cannot read).
    pub release: Option<Release>,
    /// For a cluster: the slot map, shared with the workers (MOVED updates it).
    pub slots: Option<Arc<Mutex<SlotMap>>>,
    /// The longest bulk string it takes (`proto-max-bulk-len`, by `CONFIG GET` when
    /// permitted; else Redis's default, 512 MB).
    pub max_bulk: u64,
    /// The databases a cluster serves: 1, or a Valkey 9 cluster's `cluster-databases` (by
    /// `CONFIG GET` when permitted; else 1). A standalone server: not used (every db is kept).
    pub cluster_dbs: u64,
}

/// Redis's default `proto-max-bulk-len`.
pub const DEFAULT_MAX_BULK: u64 = 512 << 20;

/// `CONFIG GET proto-max-bulk-len`; None when refused (ACL, a managed service) or unreadable.
fn read_max_bulk(conn: &mut Connection) -> Option<u64> {
    match conn.command(&[b"CONFIG", b"GET", b"proto-max-bulk-len"]).ok()? {
        crate::redis::client::Reply::Array(a) if a.len() == 2 => a[1].int().and_then(|n| u64::try_from(n).ok()),
        _ => None,
    }
}

/// `CONFIG GET cluster-databases` of a Valkey 9 (or later) cluster; 1 for any other target, or
/// when refused or unreadable.
fn read_cluster_dbs(conn: &mut Connection, flavor: Flavor, version: &str) -> u64 {
    let major = version.split('.').next().and_then(|m| m.parse::<u32>().ok()).unwrap_or(0);
    if flavor != Flavor::Valkey || major < 9 {
        return 1;
    }
    match conn.command(&[b"CONFIG", b"GET", b"cluster-databases"]) {
        Ok(crate::redis::client::Reply::Array(a)) if a.len() == 2 => {
            a[1].int().and_then(|n| u64::try_from(n).ok()).filter(|&n| n >= 1).unwrap_or(1)
        }
        _ => 1,
    }
}

/// The db a key of `src_db` goes to: db 0 under `--into-db0`; on a cluster, its own db when the
/// cluster serves it (a Valkey 9 cluster with `cluster-databases` > 1), else db 0 (a single db
/// chosen with `--db N`; other dbs were refused before anything was sent); on a standalone
/// server, its own db.
pub fn dest_db(src_db: u64, into_db0: bool, cluster_dbs: Option<u64>) -> u64 {
    match cluster_dbs {
        _ if into_db0 => 0,
        Some(n) if src_db >= n => 0,
        _ => src_db,
    }
}

impl Target {
    /// Connects, reads `INFO`, and for a cluster `CLUSTER SLOTS`.
    pub fn connect(opts: &ConnectOptions) -> Result<Target, Error> {
        let mut conn = Connection::connect(opts)?;
        let info = conn.command(&[b"INFO"])?;
        let bad = |m: String| Error { kind: ErrorKind::Protocol, server: opts.name(), message: m };
        let info = info.text().ok_or_else(|| bad(format!("INFO: unexpected {}", info.describe())))?;
        let (mut redis_v, mut valkey_v, mut cluster) = (None, None, false);
        for (k, v) in crate::redis::info::fields(&info) {
            match k {
                "redis_version" => redis_v = Some(v.to_owned()),
                "valkey_version" => valkey_v = Some(v.to_owned()),
                "cluster_enabled" => cluster = v == "1",
                "loading" if v == "1" => return Err(bad("the server is still loading its dataset".into())),
                _ => {}
            }
        }
        let (flavor, version) = match (valkey_v, redis_v) {
            (Some(v), _) => (Flavor::Valkey, v),
            (None, Some(v)) => (Flavor::Redis, v),
            (None, None) => return Err(bad("INFO holds no redis_version: not a Redis server?".into())),
        };
        let release = release_of(flavor, &version);
        let max_bulk = read_max_bulk(&mut conn).filter(|&n| n > 0).unwrap_or(DEFAULT_MAX_BULK);
        let cluster_dbs = if cluster { read_cluster_dbs(&mut conn, flavor, &version) } else { 1 };
        let slots = if cluster {
            let host = match &opts.addr {
                crate::redis::client::Addr::Tcp { host, .. } => host.clone(),
                crate::redis::client::Addr::Unix(_) => String::new(),
            };
            let map = SlotMap::fetch(&mut conn, &host)?;
            if let Some(s) = map.uncovered() {
                return Err(bad(format!("the cluster serves no master for slot {s} (cluster state not ok)")));
            }
            Some(Arc::new(Mutex::new(map)))
        } else {
            None
        };
        let version = if flavor == Flavor::Valkey { format!("valkey {version}") } else { version };
        Ok(Target { opts: opts.clone(), version, release, slots, max_bulk, cluster_dbs })
    }

    pub fn is_cluster(&self) -> bool {
        self.slots.is_some()
    }

    /// For a cluster, how many databases it serves (see `cluster_dbs`); None: standalone.
    pub fn served_dbs(&self) -> Option<u64> {
        self.is_cluster().then_some(self.cluster_dbs)
    }

    /// The masters (one for a standalone server), as connection settings.
    pub fn masters(&self) -> Vec<ConnectOptions> {
        match &self.slots {
            None => vec![self.opts.clone()],
            Some(m) => {
                let m = m.lock().unwrap_or_else(|e| e.into_inner());
                m.nodes.iter().map(|n| self.opts.with_addr(n.addr())).collect()
            }
        }
    }
}

/// The newest release line we know that is not newer than `version` (`7.0.15` → redis-7.0).
/// None when the version does not parse or is older than every line we know.
pub fn release_of(flavor: Flavor, version: &str) -> Option<Release> {
    let mut it = version.trim().split('.').map(|p| p.parse::<u32>().ok());
    let major = it.next()??;
    let minor = it.next().flatten().unwrap_or(0);
    RELEASES.iter().rfind(|r| r.flavor == flavor && (r.major, r.minor) <= (major, minor)).copied()
}

/// What the writer must produce for a target: the DUMP payload version, and which plain
/// command forms the target lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// The version written in payload footers (a value this version cannot hold goes as
    /// plain commands).
    pub payload_version: u16,
    /// Before Redis 7.0: no `XSETID ... ENTRIESADDED`, no `XGROUP CREATE ... ENTRIESREAD`.
    pub legacy_streams: bool,
    /// Before Redis 6.2: no `XGROUP CREATECONSUMER`.
    pub no_createconsumer: bool,
}

/// The encoding for a file of `file` format restored into `release` (None: trust the file).
pub fn encoding_for(file: Format, release: Option<Release>) -> Encoding {
    let own = file.version.min(u16::MAX as u32) as u16;
    let Some(r) = release else {
        return Encoding { payload_version: own, legacy_streams: false, no_createconsumer: false };
    };
    // Valkey 7.2 and later are Redis 7.2 for command forms.
    let (major, minor) = if r.flavor == Flavor::Valkey { (7, 2) } else { (r.major, r.minor) };
    let payload_version = match (file.flavor, r.valkey_rdb) {
        (Flavor::Valkey, Some(v)) => v.min(file.version) as u16,
        (Flavor::Valkey, None) => r.redis_rdb as u16,
        (Flavor::Redis, _) => file.version.min(r.redis_rdb) as u16,
    };
    Encoding { payload_version, legacy_streams: major < 7, no_createconsumer: (major, minor) < (6, 2) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_to_releases() {
        let r = release_of(Flavor::Redis, "7.0.15").unwrap();
        assert_eq!((r.major, r.minor, r.redis_rdb), (7, 0, 10));
        assert_eq!(release_of(Flavor::Redis, "6.2.14").unwrap().redis_rdb, 9);
        assert_eq!(release_of(Flavor::Redis, "7.3.0").unwrap().minor, 2);
        assert_eq!(release_of(Flavor::Redis, "99.0").unwrap().redis_rdb, 13);
        assert!(release_of(Flavor::Redis, "x").is_none());
        assert_eq!(release_of(Flavor::Valkey, "8.1.8").unwrap().redis_rdb, 11);
        let f10 = Format { flavor: Flavor::Redis, version: 10 };
        let e = encoding_for(f10, release_of(Flavor::Redis, "6.0.9"));
        assert_eq!(e, Encoding { payload_version: 9, legacy_streams: true, no_createconsumer: true });
        let e = encoding_for(f10, release_of(Flavor::Valkey, "8.1.8"));
        assert_eq!(e, Encoding { payload_version: 10, legacy_streams: false, no_createconsumer: false });
        assert_eq!(encoding_for(f10, None).payload_version, 10);
    }

    #[test]
    fn databases_on_clusters() {
        // Standalone: every db kept; --into-db0: db 0.
        assert_eq!(dest_db(5, false, None), 5);
        assert_eq!(dest_db(5, true, None), 0);
        // A cluster of one db: db 0 (only a single --db N gets this far).
        assert_eq!(dest_db(3, false, Some(1)), 0);
        // A Valkey 9 cluster with 16 databases keeps db numbers, unless --into-db0.
        assert_eq!(dest_db(3, false, Some(16)), 3);
        assert_eq!(dest_db(3, true, Some(16)), 0);
        assert_eq!(dest_db(20, false, Some(16)), 0);
    }
}
