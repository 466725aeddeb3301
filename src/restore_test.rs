//! A throwaway redis-server loaded with a backup: the machinery behind `rdbtool restore-test`
//! and behind `diff` of an AOF set (whose dataset only Redis itself can replay).
//!
//! The server is `crate::redis::server` (a unix socket in a private temp dir, dangerous commands
//! removed, stopped on every exit path). An RDB file is linked there as `dump.rdb` (Redis only
//! reads it, and no one can make it save); an AOF set is copied (0600), since Redis appends to
//! its last file. When Redis refuses the backup, its own reason is taken from its log.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::redis::server::{self, Dataset, ServerConfig, ServerDir, Start};
pub use crate::redis::server::{server_program, server_version};
use crate::redis::throwaway_cluster::{Cluster, Loaded};

/// What kind of backup a path holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Backup {
    /// An RDB file (or an AOF file with an RDB preamble: Redis loads the RDB part).
    Rdb(PathBuf),
    /// An `appendonlydir` (Redis 7+): the directory and the manifest's file name.
    AofDir { dir: PathBuf, manifest: String },
    /// A single-file AOF of Redis < 7 (commands, no manifest).
    AofFile(PathBuf),
}

impl Backup {
    /// Looks at the path: a directory with a `*.manifest` is an AOF set, a file starting with
    /// `REDIS` / `VALKEY` an RDB, a file starting with `*` (a RESP command) an AOF.
    pub fn detect(path: &Path) -> Result<Backup, String> {
        use crate::aof::Target;
        Ok(match crate::discover::sniff(path)? {
            Target::Rdb(p) => Backup::Rdb(p),
            Target::AofFile(p) => Backup::AofFile(p),
            Target::AofSet(dir) => {
                let manifest = crate::discover::find_manifest(&dir)
                    .ok()
                    .flatten()
                    .and_then(|m| m.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .ok_or_else(|| format!("{}: the AOF manifest went away", dir.display()))?;
                Backup::AofDir { dir, manifest }
            }
        })
    }

    /// The RDB version in the file's header, for an RDB.
    pub fn rdb_version(&self) -> Option<(bool, u32)> {
        let Backup::Rdb(p) = self else { return None };
        let mut head = [0u8; 9];
        std::fs::File::open(p).and_then(|mut f| f.read_exact(&mut head)).ok()?;
        crate::rdb::reader::parse_header(&head).ok().map(|f| (f.flavor == crate::rdb::types::Flavor::Valkey, f.version))
    }
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The redis-server binary (a name looked up in PATH, or a path).
    pub redis_server: PathBuf,
    /// How long loading may take.
    pub load_timeout: Duration,
    /// Where the server's temp dir goes (default: the system temp dir).
    pub temp_dir: Option<PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            redis_server: PathBuf::from("redis-server"),
            load_timeout: Duration::from_secs(600),
            temp_dir: None,
        }
    }
}

/// A running server that accepted the backup. Dropping it stops the server.
pub type Throwaway = server::Server;

/// How a start ended.
pub enum Outcome {
    Accepted(Throwaway),
    Refused(Refusal),
}

/// Redis did not take the backup.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub version: String,
    /// How the process ended (`exit status: 1`).
    pub exit: String,
    /// Redis's own warning / error lines from its log (or its last lines).
    pub reasons: Vec<String>,
    /// Our reading, when we know better (e.g. the file is newer than the server).
    pub hint: Option<String>,
}

/// Warning lines (`pid:role date # message`) of a Redis log, without the ones every start
/// prints, or the last lines when there are none.
pub fn log_reasons(log: &str) -> Vec<String> {
    // A crash: its headline and where, not the stack and register dump after it.
    let log = match log.find("crashed by signal") {
        Some(at) => {
            let end = log[at..].match_indices('\n').nth(2).map_or(log.len(), |(i, _)| at + i);
            &log[..end]
        }
        None => log,
    };
    const NOISE: [&str; 7] = [
        "overcommit_memory",
        "no config file specified",
        "TCP backlog",
        "Redis is starting",
        "Redis version=",
        "Configuration loaded",
        "Server initialized",
    ];
    let mut out: Vec<String> = log
        .lines()
        .filter_map(|l| l.split_once(" # ").map(|(_, m)| m.trim().to_owned()))
        .filter(|m| !NOISE.iter().any(|n| m.contains(n)))
        .collect();
    if out.is_empty() {
        out = log.lines().rev().take(5).map(|l| l.trim().to_owned()).collect();
        out.reverse();
    }
    out.dedup();
    if out.len() > 20 {
        out.drain(..out.len() - 20);
    }
    out
}

/// Starts a server with the backup and waits until it has loaded it (or refused it).
/// `Err` means the test could not run (no binary, no temp dir, loading timed out).
pub fn start(backup: &Backup, opts: &ServerOptions) -> Result<Outcome, String> {
    start_watched(backup, opts, &mut |_, _| {})
}

/// `start`; while the server loads, `loading` gets (bytes loaded, bytes in all).
pub fn start_watched(
    backup: &Backup,
    opts: &ServerOptions,
    loading: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, String> {
    let version = server_version(&opts.redis_server)?;
    // An AOF is replayed by the server: one holding a command Redis never writes (REPLICAOF,
    // CONFIG, ...) is not started at all (the throwaway server has those commands off too).
    if let Backup::AofDir { dir, .. } | Backup::AofFile(dir) = backup
        && let Ok(set) = crate::aof::set::AofSet::open(dir)
        && let Some(e) = set.refused_command()
    {
        let place = format!("{} offset {}", e.file.as_deref().unwrap_or(""), e.offset);
        return Ok(Outcome::Refused(Refusal {
            version,
            exit: "not started".into(),
            reasons: vec![format!("{place}: {}", e.message)],
            hint: Some(
                "rdbtool does not replay an AOF holding commands Redis never writes; see `rdbtool verify`".into(),
            ),
        }));
    }
    let dir = ServerDir::create(opts.temp_dir.as_deref(), "rdbtool-restore-")?;
    let dataset = match backup {
        Backup::Rdb(p) => {
            let abs = std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()))?;
            crate::redis::throwaway_cluster::link_or_copy(&abs, &dir.path().join("dump.rdb"))?;
            Dataset::Rdb
        }
        Backup::AofDir { dir: src, manifest } => {
            server::copy_dir_private(src, &dir.path().join("appendonlydir"))
                .map_err(|e| format!("copying {}: {e}", src.display()))?;
            Dataset::Aof { appendfilename: manifest.trim_end_matches(".manifest").to_owned() }
        }
        Backup::AofFile(p) => {
            // Redis 7 upgrades a lone appendonly.aof in its dir into an appendonlydir set.
            server::copy_private(p, &dir.path().join("appendonly.aof"))
                .map_err(|e| format!("copying {}: {e}", p.display()))?;
            Dataset::Aof { appendfilename: "appendonly.aof".into() }
        }
    };
    let cfg = ServerConfig {
        bin: opts.redis_server.clone(),
        version: version.clone(),
        dataset,
        load_timeout: opts.load_timeout,
    };
    match server::Server::start_watched(dir, &cfg, &server::Exposure::default(), loading)? {
        Start::Up(s) => Ok(Outcome::Accepted(s)),
        Start::Exited { status, log } => Ok(Outcome::Refused(Refusal {
            hint: too_old_hint(backup, &opts.redis_server).or_else(|| verify_hint(backup)),
            version,
            exit: status,
            reasons: log_reasons(&log),
        })),
    }
}

/// How the start of a cluster backup (one RDB file per shard) ended.
pub enum SetOutcome {
    /// Every node loaded its file; the cluster is up (node `i` holds file `i`).
    Accepted(Cluster),
    /// The node given file `file` refused it.
    Refused { file: usize, refusal: Refusal },
    /// Files hold keys of the same slots: (slot, file, other file) for the first of them, and
    /// how many slots in all. A slot is served by one master: loaded as a cluster, the other
    /// master deletes its keys of the slot when the nodes meet.
    SharedSlots { slots: Vec<(u16, usize, usize)>, count: usize },
}

/// A throwaway cluster of as many masters as `files`, each loading its file as its dump.rdb
/// (`crate::redis::throwaway_cluster::Cluster::start_loaded`), as an operator restores a
/// cluster's backup. `loading` gets (bytes loaded, bytes in all).
pub fn start_set_watched(
    files: &[PathBuf],
    opts: &ServerOptions,
    loading: &mut dyn FnMut(u64, u64),
) -> Result<SetOutcome, String> {
    let version = server_version(&opts.redis_server)?;
    let cfg = ServerConfig {
        bin: opts.redis_server.clone(),
        version: version.clone(),
        dataset: Dataset::Rdb,
        load_timeout: opts.load_timeout,
    };
    let n = files.len();
    let settle = Duration::from_secs(60).max(Duration::from_secs(5 * n as u64).min(opts.load_timeout));
    let exposure = server::Exposure { args: cluster_args(&opts.redis_server), ..Default::default() };
    let started = Cluster::start_loaded(files, &cfg, &exposure, opts.temp_dir.as_deref(), settle, loading)?;
    Ok(match started {
        Loaded::Up(c) => SetOutcome::Accepted(c),
        Loaded::Refused { node, status, log } => SetOutcome::Refused {
            file: node,
            refusal: Refusal {
                hint: too_old_hint(&Backup::Rdb(files[node].clone()), &opts.redis_server)
                    .or_else(|| other_db_hint(&files[node], &opts.redis_server))
                    .or_else(|| verify_hint(&Backup::Rdb(files[node].clone()))),
                version,
                exit: status,
                reasons: log_reasons(&log),
            },
        },
        Loaded::SharedSlots { slots, count } => SetOutcome::SharedSlots { slots, count },
    })
}

/// The databases a throwaway cluster node serves: Valkey 9 and later serve `cluster-databases`
/// of them (1 by default, so a multi-database cluster was configured for more, as many as
/// `databases`, 16 by default): their nodes get 16, and a shard file with keys of dbs 1-15
/// loads as in such a cluster. Redis clusters have db 0 only.
pub const VALKEY_CLUSTER_DATABASES: u64 = 16;

fn cluster_args(bin: &Path) -> Vec<String> {
    match server::server_release(bin) {
        Some(r) if r.flavor == crate::rdb::types::Flavor::Valkey && r.major >= 9 => {
            vec!["--cluster-databases".into(), VALKEY_CLUSTER_DATABASES.to_string()]
        }
        _ => Vec::new(),
    }
}

/// Where our own check of an RDB file finds its first error (offset, db, key), which Redis's
/// log rarely says.
fn verify_hint(backup: &Backup) -> Option<String> {
    let Backup::Rdb(path) = backup else { return None };
    let data = crate::input::open(path).ok()?;
    let report = crate::verify::verify_input(&path.display().to_string(), &data, &Default::default());
    let e = report.errors.first()?;
    let mut place = format!("offset {}", e.offset);
    if let Some(db) = e.db {
        place.push_str(&format!(", db {db}"));
    }
    if let Some(k) = &e.key {
        place.push_str(&format!(", key {}", crate::display::quoted(k)));
    }
    Some(format!("rdbtool verify finds it at {place}: {}", e.message))
}

/// For a cluster node's file: the first key outside the databases a node serves (db 0, or
/// `VALKEY_CLUSTER_DATABASES` of them on Valkey 9 and later).
fn other_db_hint(path: &Path, bin: &Path) -> Option<String> {
    let served = if cluster_args(bin).is_empty() { 1 } else { VALKEY_CLUSTER_DATABASES };
    let data = crate::input::open(path).ok()?;
    let (db, key, offset) = first_key(&data, &|db, _| db >= served)?;
    let has = if served == 1 {
        "db 0 only".to_owned()
    } else {
        format!("dbs 0 to {} (cluster-databases {served})", served - 1)
    };
    Some(format!(
        "the file holds keys of db {db} (key {} at offset {offset}), and a cluster node has {has}",
        crate::display::quoted(&key)
    ))
}

/// The first key of an RDB image that `want(db, key)` picks: (db, key, offset of the key),
/// read up to the first unreadable record.
pub fn first_key(data: &[u8], want: &dyn Fn(u64, &[u8]) -> bool) -> Option<(u64, Vec<u8>, u64)> {
    let reader = crate::rdb::reader::Reader::new(data).ok()?;
    for rec in reader {
        match rec {
            Ok(crate::rdb::reader::Record::Key(k)) if want(k.db, &k.key) => {
                return Some((k.db, k.key.into_owned(), k.key_offset));
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

fn too_old_hint(backup: &Backup, bin: &Path) -> Option<String> {
    let (valkey, version) = backup.rdb_version()?;
    let release = server::server_release(bin)?;
    let flavor = if valkey { crate::rdb::types::Flavor::Valkey } else { crate::rdb::types::Flavor::Redis };
    let needs = crate::rdb::servers::Needs { flavor: Some(flavor), version, ..Default::default() };
    let why = needs.refusal(&release)?;
    Some(format!("{} refuses the file: {why}; the server is too old for it", crate::rdb::servers::display(&release)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines() {
        let log = "1:C 21 Nov 2026 07:00:00.000 # WARNING overcommit_memory is set to 0!\n\
                   1:M 21 Nov 2026 07:00:00.001 * Server initialized\n\
                   1:M 21 Nov 2026 07:00:00.002 # Can't handle RDB format version 11\n\
                   1:M 21 Nov 2026 07:00:00.003 # Fatal error loading the DB: Invalid argument. Exiting.\n";
        assert_eq!(
            log_reasons(log),
            vec!["Can't handle RDB format version 11", "Fatal error loading the DB: Invalid argument. Exiting."]
        );
        assert_eq!(log_reasons("a\nb\n"), vec!["a", "b"]);
        let crash = "1:M 28 Nov 2026 17:56:40.710 # Server initialized\n\
                     1:M 28 Nov 2026 17:56:40.711 # Redis 7.0.15 crashed by signal: 11, si_code: 1\n\
                     1:M 28 Nov 2026 17:56:40.711 # Accessing address: 0x95d8\n\
                     1:M 28 Nov 2026 17:56:40.711 # Crashed running the instruction at: 0x564cac9facfa\n\
                     1:M 28 Nov 2026 17:56:40.711 # (00007ffdca50038f) -> 0000000000000000\n";
        assert_eq!(
            log_reasons(crash),
            vec![
                "Redis 7.0.15 crashed by signal: 11, si_code: 1",
                "Accessing address: 0x95d8",
                "Crashed running the instruction at: 0x564cac9facfa"
            ]
        );
    }
}
