//! `rdbtool lint`: what in a backup will break or hurt a migration to a given target, found in
//! one pass over each file (the report's per-key figures) plus the verifier's verdict on which
//! releases restore it. Each finding has a stable code, a severity, a count and the first keys.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::rdb::servers::Release;
use crate::report::KeyRow;

/// Where the backup is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Redis Cluster (any version): one database, keys spread over slots.
    Cluster,
    /// A standalone server of this release.
    Server(Release),
    /// AWS ElastiCache (cluster mode): a cluster whose slots cannot move keys over 250 MB.
    ElastiCache,
}

/// `cluster`, `elasticache`, or a release (`redis-7.0`, `valkey-8.1`).
pub fn parse_target(s: &str) -> Result<Target, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "cluster" => Ok(Target::Cluster),
        "elasticache" => Ok(Target::ElastiCache),
        other => crate::rdb::servers::parse_release(other).map(Target::Server),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    /// Blocks the migration: `lint` exits 1.
    Error,
}

/// One kind of problem found, with its keys.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable: `several-dbs`, `key-over-512mb`, ...
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    /// Every key it concerns (0 for file-wide findings).
    pub count: u64,
    /// The first keys: `{"file", "db", "key", "bytes"}`.
    pub keys: Vec<KeyRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyRef {
    pub file: String,
    pub db: u64,
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub key: Vec<u8>,
    /// The figure the finding is about (bytes, elements).
    pub value: u64,
}

/// Keys listed per finding (the rest are counted).
pub const LISTED: usize = 100;
/// `proto-max-bulk-len` default: a RESTORE payload larger than this is refused.
pub const MAX_BULK: u64 = 512 << 20;
/// ElastiCache does not migrate a slot that holds a key larger than this.
pub const ELASTICACHE_MAX_KEY: u64 = 250 << 20;
/// Elements beyond which a key is slow to move and to delete.
pub const HUGE_ELEMENTS: u64 = 10_000_000;

/// What the checks need to know beyond the keys.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    /// A slot holding more than this share of all memory is a hot spot (cluster targets).
    pub max_slot_share: f64,
    pub now_ms: i64,
}

/// Whether the file's keys can be read: it verifies, or its only error is that the target
/// release refuses it (a finding of its own).
pub fn readable(rep: &crate::verify::Report) -> bool {
    rep.errors_not_listed == 0 && rep.errors.iter().all(|e| e.kind == crate::ErrorKind::RefusedByTarget)
}

/// Findings folded over keys and files.
#[derive(Debug, Default)]
pub struct Lint {
    findings: BTreeMap<&'static str, Finding>,
    slot_memory: Vec<u64>,
    total_memory: u64,
    dbs: std::collections::BTreeSet<u64>,
}

impl Lint {
    pub fn new() -> Lint {
        Lint { slot_memory: vec![0; 16384], ..Lint::default() }
    }

    /// The finding `code` (created with `severity` and `message` the first time), counting `key`.
    fn note(&mut self, code: &'static str, severity: Severity, message: String, key: Option<KeyRef>) -> &mut Finding {
        let f = self.findings.entry(code).or_insert_with(|| Finding {
            code,
            severity,
            message,
            count: 0,
            keys: Vec::new(),
        });
        if let Some(k) = key {
            f.count += 1;
            if f.keys.len() < LISTED {
                f.keys.push(k);
            }
        }
        f
    }

    /// Folds one key of `file`.
    pub fn key(&mut self, file: &str, r: &KeyRow<'_>, opts: &Options) {
        let at = |value: u64| Some(KeyRef { file: file.to_owned(), db: r.db, key: r.key.to_vec(), value });
        self.dbs.insert(r.db);
        self.slot_memory[r.slot as usize] += r.fig.memory;
        self.total_memory += r.fig.memory;
        let cluster = matches!(opts.target, Target::Cluster | Target::ElastiCache);
        if r.db != 0 && cluster {
            self.note(
                "several-dbs",
                Severity::Error,
                "keys outside db 0: a cluster has one database (Valkey 9 clusters with cluster-databases > 1 excepted); restore with --into-db0 or --db N".into(),
                at(r.db),
            );
        }
        // A RESTORE payload is the value's serialization plus an 10-byte footer.
        if r.value_bytes + 10 > MAX_BULK {
            self.note(
                "key-over-512mb",
                Severity::Error,
                "values whose RESTORE payload exceeds proto-max-bulk-len (512 MB by default): MIGRATE and RESTORE refuse them; they move only as chunked commands".into(),
                at(r.value_bytes),
            );
        }
        if r.fig.memory > ELASTICACHE_MAX_KEY {
            let severity = if opts.target == Target::ElastiCache { Severity::Error } else { Severity::Warning };
            self.note(
                "key-over-250mb",
                severity,
                "keys over 250 MB: ElastiCache does not move a slot holding one, so resharding and removing a shard fail".into(),
                at(r.fig.memory),
            );
        }
        if r.fig.elements > HUGE_ELEMENTS {
            self.note(
                "huge-collection",
                Severity::Warning,
                format!("collections of more than {HUGE_ELEMENTS} elements: slow to migrate and to delete (the server blocks)"),
                at(r.fig.elements),
            );
        }
        if r.expire_at_ms.is_some_and(|t| t < opts.now_ms) {
            self.note(
                "already-expired",
                Severity::Info,
                "keys whose TTL has passed: the target drops them on load or restore".into(),
                at(r.expire_at_ms.unwrap_or(0) as u64),
            );
        }
    }

    /// Folds a file's verdict: whether the target release restores it, modules, functions.
    pub fn file(&mut self, file: &str, rep: &crate::verify::Report, functions: u64, opts: &Options) {
        if !readable(rep) {
            let first = rep.errors.first().map(|e| format!("offset {}: {}", e.offset, e.message)).unwrap_or_default();
            let f = self.note("invalid-file", Severity::Error, "files that do not verify".into(), None);
            f.count += 1;
            f.message = format!("files that do not verify (first: {file}: {first})");
            return;
        }
        if let Target::Server(release) = opts.target
            && let Some(t) = &rep.target
            && !t.ok
        {
            let why = t.reason.clone().unwrap_or_default();
            self.note(
                "refused-by-target",
                Severity::Error,
                format!("{} does not restore the file: {why}", crate::rdb::servers::display(&release)),
                None,
            )
            .count += 1;
        }
        let requires: Vec<&String> = match &rep.target {
            Some(t) => t.requires.iter().collect(),
            None => rep.restorable_by.iter().flat_map(|r| &r.requires).collect(),
        };
        for r in requires.into_iter().filter(|r| r.starts_with("the module")) {
            self.note("module-type", Severity::Warning, format!("the target needs {r}"), None);
        }
        if functions > 0 {
            let where_ = if matches!(opts.target, Target::Cluster | Target::ElastiCache) {
                "loaded on every master (FUNCTION LOAD does not follow slots)"
            } else {
                "loaded with FUNCTION LOAD before the keys that call them"
            };
            self.note("function-libraries", Severity::Info, format!("function libraries must be {where_}"), None)
                .count += functions;
        }
    }

    /// Findings that need every key: hot slots.
    pub fn finish(mut self, opts: &Options) -> Vec<Finding> {
        if matches!(opts.target, Target::Cluster | Target::ElastiCache) && self.total_memory > 0 {
            let limit = (self.total_memory as f64 * opts.max_slot_share) as u64;
            let mut hot: Vec<(usize, u64)> =
                self.slot_memory.iter().copied().enumerate().filter(|&(_, m)| m > limit && m > 0).collect();
            hot.sort_by_key(|h| std::cmp::Reverse(h.1));
            if !hot.is_empty() {
                let list: Vec<String> = hot
                    .iter()
                    .take(10)
                    .map(|(s, m)| format!("slot {s}: {:.1}%", 100.0 * *m as f64 / self.total_memory as f64))
                    .collect();
                self.note(
                    "hot-slot",
                    Severity::Warning,
                    format!(
                        "slots holding more than {:.0}% of the memory, which one shard must carry alone: {}",
                        opts.max_slot_share * 100.0,
                        list.join(", ")
                    ),
                    None,
                )
                .count = hot.len() as u64;
            }
        }
        let mut out: Vec<Finding> = self.findings.into_values().collect();
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.code.cmp(b.code)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{Encoding, KeyFigures};
    use crate::rdb::types::Kind;

    fn row(db: u64, key: &[u8], memory: u64, elements: u64, slot: u16) -> KeyRow<'_> {
        KeyRow {
            db,
            key,
            kind: Kind::String,
            rdb_encoding: "string",
            expire_at_ms: None,
            slot,
            value_bytes: memory,
            idle_s: None,
            freq: None,
            fig: KeyFigures { memory, elements, largest_element: 0, encoding: Encoding::Raw },
        }
    }

    #[test]
    fn findings() {
        let opts = Options { target: Target::Cluster, max_slot_share: 0.5, now_ms: 0 };
        let mut l = Lint::new();
        l.key("f", &row(0, b"a", 10, 1, 1), &opts);
        l.key("f", &row(1, b"b", 600 << 20, HUGE_ELEMENTS + 1, 2), &opts);
        let f = l.finish(&opts);
        let codes: Vec<&str> = f.iter().map(|f| f.code).collect();
        assert_eq!(codes, ["key-over-512mb", "several-dbs", "hot-slot", "huge-collection", "key-over-250mb"]);
        assert_eq!(f[1].keys[0].key, b"b");
        assert_eq!(
            parse_target("redis-7.0").unwrap(),
            Target::Server(crate::rdb::servers::parse_release("redis-7.0").unwrap())
        );
        assert!(parse_target("mongodb").is_err());
    }
}
