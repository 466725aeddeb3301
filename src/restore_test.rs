//! A throwaway redis-server loaded with a backup: the machinery behind `rdbtool restore-test`
//! and behind `diff` of an AOF set (whose dataset only Redis itself can replay).
//!
//! The server runs on a free loopback port in a private temp dir, with saving off. An RDB file
//! is linked there as `dump.rdb` (Redis only reads it, and a save would replace the link, not
//! the file); an AOF set is copied, since Redis appends to its last file. When Redis refuses the
//! backup, its own reason is taken from its log. The server is stopped by its PID.

use std::io::{self, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis::client::{Addr, ConnectOptions, Connection, Reply};

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
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
        if meta.is_dir() {
            let mut manifests: Vec<String> = std::fs::read_dir(path)
                .map_err(|e| format!("{shown}: {e}"))?
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".manifest"))
                .collect();
            manifests.sort();
            return match manifests.as_slice() {
                [m] => Ok(Backup::AofDir { dir: path.to_path_buf(), manifest: m.clone() }),
                [] => Err(format!("{shown}: a directory without an AOF manifest (*.manifest)")),
                _ => Err(format!("{shown}: several AOF manifests ({})", manifests.join(", "))),
            };
        }
        let mut head = [0u8; 9];
        let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).map_err(|e| format!("{shown}: {e}"))?;
        let head = &head[..n];
        if head.starts_with(b"REDIS") || head.starts_with(b"VALKEY") {
            Ok(Backup::Rdb(path.to_path_buf()))
        } else if head.starts_with(b"*") {
            Ok(Backup::AofFile(path.to_path_buf()))
        } else {
            Err(format!("{shown}: neither an RDB file (REDIS / VALKEY header) nor an AOF"))
        }
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
pub struct Throwaway {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    pub version: String,
    pub load_time: Duration,
}

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

/// `redis-server --version` → `7.0.15`.
pub fn server_version(bin: &Path) -> Result<String, String> {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .map(str::to_owned)
        .ok_or_else(|| format!("{} --version printed no version: {}", bin.display(), text.trim()))
}

/// The newest RDB version a Redis release loads (FORMAT.md §2.1); Valkey reads 11 (8.x) or 80.
pub fn max_rdb_version(version: &str) -> Option<u32> {
    let mut it = version.split('.').map(|p| p.parse::<u32>().ok());
    let (major, minor) = (it.next()??, it.next()??);
    Some(match (major, minor) {
        (2, 6) | (2, 8) | (3, 0) => 6,
        (3, 2) => 7,
        (4, _) => 8,
        (5, _) | (6, _) => 9,
        (7, 0) => 10,
        (7, 2) => 11,
        (7, _) => 12,
        (8, m) if m < 6 => 12,
        (8, _) => 13,
        _ => return None,
    })
}

fn free_port() -> io::Result<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr().map(|a| a.port())
}

/// Whether the server answers PING with PONG (not while it is loading, or not up yet).
fn ping(port: u16) -> bool {
    let mut o = ConnectOptions::new(Addr::Tcp { host: Ipv4Addr::LOCALHOST.to_string(), port });
    o.timeout = Duration::from_secs(2);
    let Ok(mut c) = Connection::connect(&o) else { return false };
    matches!(c.command(&[b"PING"]), Ok(Reply::Simple(s)) if s == "PONG")
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

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Starts a server with the backup and waits until it has loaded it (or refused it).
/// `Err` means the test could not run (no binary, no temp dir, loading timed out).
pub fn start(backup: &Backup, opts: &ServerOptions) -> Result<Outcome, String> {
    let version = server_version(&opts.redis_server)?;
    let mut b = tempfile::Builder::new();
    b.prefix("rdbtool-restore-");
    let dir = match &opts.temp_dir {
        Some(p) => b.tempdir_in(p),
        None => b.tempdir(),
    }
    .map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let mut args: Vec<String> = Vec::new();
    match backup {
        Backup::Rdb(p) => {
            let abs = std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()))?;
            link_or_copy(&abs, &dir.path().join("dump.rdb"))?;
            args.extend(["--appendonly", "no"].map(String::from));
        }
        Backup::AofDir { dir: src, manifest } => {
            copy_dir(src, &dir.path().join("appendonlydir")).map_err(|e| format!("copying {}: {e}", src.display()))?;
            let base = manifest.trim_end_matches(".manifest").to_owned();
            args.extend(
                ["--appendonly", "yes", "--appenddirname", "appendonlydir", "--appendfilename"].map(String::from),
            );
            args.push(base);
        }
        Backup::AofFile(p) => {
            // Redis 7 upgrades a lone appendonly.aof in --dir into an appendonlydir set.
            std::fs::copy(p, dir.path().join("appendonly.aof")).map_err(|e| format!("copying {}: {e}", p.display()))?;
            args.extend(
                ["--appendonly", "yes", "--appenddirname", "appendonlydir", "--appendfilename", "appendonly.aof"]
                    .map(String::from),
            );
        }
    }
    let log = dir.path().join("redis.log");
    for _ in 0..5 {
        let port = free_port().map_err(|e| format!("no free loopback port: {e}"))?;
        let _ = std::fs::remove_file(&log);
        let started = Instant::now();
        let mut child = Command::new(&opts.redis_server)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(dir.path())
            .args(["--dbfilename", "dump.rdb", "--save", "", "--daemonize", "no", "--logfile"])
            .arg(&log)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", opts.redis_server.display()))?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("Address already in use") {
                    break; // another process took the port: try another one
                }
                let hint = too_old_hint(backup, &version);
                return Ok(Outcome::Refused(Refusal {
                    version,
                    exit: status.to_string(),
                    reasons: log_reasons(&text),
                    hint,
                }));
            }
            if ping(port) {
                return Ok(Outcome::Accepted(Throwaway { child, port, dir, version, load_time: started.elapsed() }));
            }
            if started.elapsed() > opts.load_timeout {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "redis-server did not finish loading within {} s (--load-timeout)",
                    opts.load_timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Err("could not find a free port for redis-server".into())
}

fn link_or_copy(from: &Path, to: &Path) -> Result<(), String> {
    #[cfg(unix)]
    if std::os::unix::fs::symlink(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("copying {}: {e}", from.display()))
}

fn too_old_hint(backup: &Backup, version: &str) -> Option<String> {
    let (valkey, v) = backup.rdb_version()?;
    let max = max_rdb_version(version)?;
    if valkey || v > max {
        let what = if valkey { format!("a Valkey RDB {v}") } else { format!("RDB {v}") };
        Some(format!(
            "the file is {what}; redis-server {version} reads RDB {max} at most: the server is too old for it"
        ))
    } else {
        None
    }
}

impl Throwaway {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
    /// How to connect to the server.
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions::new(Addr::Tcp { host: Ipv4Addr::LOCALHOST.to_string(), port: self.port })
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// Stops the server (by its PID) and removes its temp dir.
    pub fn stop(self) {}
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        // Child::kill signals exactly this PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_log_lines() {
        assert_eq!(max_rdb_version("7.0.15"), Some(10));
        assert_eq!(max_rdb_version("7.2.6"), Some(11));
        assert_eq!(max_rdb_version("8.6.3"), Some(13));
        assert_eq!(max_rdb_version("x"), None);
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
