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

pub use crate::redis::server::server_version;
use crate::redis::server::{self, Dataset, ServerConfig, ServerDir, Start};

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
            link_or_copy(&abs, &dir.path().join("dump.rdb"))?;
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
            hint: too_old_hint(backup, &opts.redis_server),
            version,
            exit: status,
            reasons: log_reasons(&log),
        })),
    }
}

/// A throwaway cluster of `n` masters (`crate::redis::server::Cluster`: contained as a single
/// throwaway server is, but on loopback TCP ports, which the cluster bus needs) for a set of
/// RDB files, one per shard.
pub fn start_cluster(n: usize, opts: &ServerOptions) -> Result<server::Cluster, String> {
    let version = server_version(&opts.redis_server)?;
    let cfg = ServerConfig {
        bin: opts.redis_server.clone(),
        version,
        dataset: Dataset::Rdb,
        load_timeout: opts.load_timeout,
    };
    let settle = Duration::from_secs(60).max(Duration::from_secs(5 * n as u64).min(opts.load_timeout));
    server::Cluster::start(n, &cfg, &server::Exposure::default(), opts.temp_dir.as_deref(), settle)
}

/// Restores a set of RDB files into a (throwaway, empty) cluster with the restore engine:
/// keys whose TTL has passed are left out (as a loading server drops them), function libraries
/// go to every master (the same library in several shard files, as a cluster backup has it, is
/// loaded once and counted busy after). `progress` gets the bytes read.
pub fn restore_set(
    inputs: &[crate::restore::Input<'_>],
    cluster: &server::Cluster,
    progress: &mut dyn FnMut(u64),
) -> Result<crate::restore::Report, String> {
    let target = crate::restore::Target::connect(&cluster.connect_options(0)).map_err(|e| e.to_string())?;
    let opts = crate::restore::Options {
        // The cluster is empty: a busy key can only be a library loaded from another shard's
        // file (keys in two files are refused before anything is written).
        on_busy_key: crate::export::resp::OnBusyKey::Skip,
        filter: crate::filter::Filter { expired: crate::filter::Expired::Exclude, ..Default::default() },
        ..Default::default()
    };
    crate::restore::run(inputs, &target, &opts, progress)
}

fn link_or_copy(from: &Path, to: &Path) -> Result<(), String> {
    if std::os::unix::fs::symlink(from, to).is_ok() {
        return Ok(());
    }
    server::copy_private(from, to).map_err(|e| format!("copying {}: {e}", from.display()))
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
    }
}
