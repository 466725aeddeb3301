//! A throwaway `redis-server`, started to load a backup (`restore-test`, `diff` of an AOF set,
//! `aof to-rdb`) and stopped when done.
//!
//! Contained, because the backup is not trusted and other local users are not either:
//! - it listens on a unix socket only (`port 0`), in a 0700 temp dir, with a random
//!   `requirepass`; copies of inputs placed there are 0600;
//! - commands that reach outside the dataset are removed with `rename-command X ""` (replication,
//!   CONFIG, ACL, MODULE, DEBUG, SHUTDOWN, MIGRATE, CLUSTER, FAILOVER, MONITOR, background saves
//!   and rewrites). An AOF that holds one is refused by Redis itself ("Unknown command ... reading
//!   the append only file"), since Redis never writes them to an AOF. SAVE, which `aof to-rdb`
//!   needs, is renamed to a random name only we know;
//! - its settings are in a 0600 config file in that dir, not on its command line (which every
//!   user can read in `ps`);
//! - it runs in its own process group (a terminal's Ctrl-C reaches us, and we stop it), and
//!   dies with us (`PR_SET_PDEATHSIG`) even if we are killed with SIGKILL. (Linux sends that
//!   signal when the *thread* that started the server ends: start it from a thread that lives
//!   as long as the server, as the commands do from the main thread);
//! - it is stopped by its PID and its dir removed on every exit path: `Drop` (errors, panics)
//!   and, through `crate::cleanup`, SIGINT / SIGTERM.
//!
//! A throwaway cluster is made of these servers: `super::throwaway_cluster`.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::client::{Addr, ConnectOptions, Connection, ErrorKind, Reply};

/// Commands the throwaway server does not have: (name, first Redis version that has it, so that
/// older servers are not asked to rename a command they do not know).
const DISABLED: [(&str, (u32, u32)); 16] = [
    ("SLAVEOF", (1, 0)),
    ("REPLICAOF", (5, 0)),
    ("SYNC", (1, 0)),
    ("PSYNC", (2, 8)),
    ("REPLCONF", (2, 8)),
    ("CONFIG", (2, 0)),
    ("ACL", (6, 0)),
    ("MODULE", (4, 0)),
    ("DEBUG", (1, 0)),
    ("SHUTDOWN", (1, 0)),
    ("MIGRATE", (2, 6)),
    ("CLUSTER", (3, 0)),
    ("FAILOVER", (6, 2)),
    ("MONITOR", (1, 0)),
    ("BGSAVE", (1, 0)),
    ("BGREWRITEAOF", (1, 0)),
];

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

/// The release line of a server binary (Redis or Valkey, major.minor), from `--version`, when it
/// is one of the release table's.
pub fn server_release(bin: &Path) -> Option<crate::rdb::servers::Release> {
    let out = Command::new(bin).arg("--version").stdin(Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().find_map(|w| w.strip_prefix("v="))?;
    let family = if text.to_ascii_lowercase().starts_with("valkey") { "valkey" } else { "redis" };
    crate::rdb::servers::parse_release(&format!("{family}-{version}")).ok()
}

/// What a server binary is called in messages: `valkey-server` for Valkey, else `redis-server`.
pub fn server_program(bin: &Path) -> &'static str {
    match server_release(bin) {
        Some(r) if r.flavor == crate::rdb::types::Flavor::Valkey => "valkey-server",
        _ => "redis-server",
    }
}

/// `bin` itself when it is a path, else the first match in PATH.
pub fn find_binary(bin: &Path) -> Option<PathBuf> {
    if bin.components().count() > 1 {
        return bin.is_file().then(|| bin.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(bin)).find(|c| c.is_file())
}

/// `7.0.15` → `(7, 0)` (0 for a part that is not a number).
pub fn major_minor(version: &str) -> (u32, u32) {
    let mut it = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// 32 random hex digits (from the kernel).
pub(crate) fn secret() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A private temp dir (0700) for a server, removed on drop (and on SIGINT / SIGTERM).
pub struct ServerDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl ServerDir {
    /// Creates `PREFIX*` under `parent` (default: the system temp dir).
    pub fn create(parent: Option<&Path>, prefix: &str) -> Result<ServerDir, String> {
        let mut b = tempfile::Builder::new();
        b.prefix(prefix).permissions(std::fs::Permissions::from_mode(0o700));
        let dir = crate::cleanup::create_path(
            || match parent {
                Some(p) => b.tempdir_in(p),
                None => b.tempdir(),
            },
            |d| d.path().to_path_buf(),
        )
        .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let path = dir.path().to_path_buf();
        Ok(ServerDir { dir: Some(dir), path })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ServerDir {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
        crate::cleanup::remove_path(&self.path);
    }
}

/// Copies a file into a server dir, readable by us only.
pub fn copy_private(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut src = std::fs::File::open(from)?;
    let mut dst = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(to)?;
    std::io::copy(&mut src, &mut dst)?;
    Ok(())
}

/// Copies the regular files of `from` into a new directory `to` (0700; files 0600).
pub fn copy_dir_private(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().mode(0o700).create(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            copy_private(&e.path(), &to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Makes every file under `dir` 0600 (after a copy made by other code).
pub fn make_private(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o700))?;
            make_private(&e.path())?;
        } else if t.is_file() {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// What the server loads from its dir.
#[derive(Debug, Clone)]
pub enum Dataset {
    /// `dump.rdb` in the dir (or nothing: an empty server).
    Rdb,
    /// `appendonlydir/` in the dir with this `appendfilename` (the manifest's name without
    /// `.manifest`), or a lone `appendonly.aof` that Redis 7 upgrades into one.
    Aof {
        /// The `appendfilename` setting (`appendonly.aof` by default).
        appendfilename: String,
    },
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The redis-server binary (a name looked up in PATH, or a path).
    pub bin: PathBuf,
    /// `redis-server --version` of `bin` (see `server_version`).
    pub version: String,
    /// What the server loads at start.
    pub dataset: Dataset,
    /// How long loading may take.
    pub load_timeout: Duration,
}

/// How a server is reached and what it keeps, beyond the contained default of the module doc
/// (a unix socket, a random password, the commands that reach outside the dataset removed).
#[derive(Clone, Default)]
pub struct Exposure {
    /// Listen on 127.0.0.1 on a free TCP port (picked here, another one tried when it was
    /// taken meanwhile) instead of a unix socket. Other local users can connect to it; the
    /// password still keeps them out (unless `open`).
    pub tcp: bool,
    /// `cluster-enabled yes` (its `nodes.conf` in the dir), CLUSTER kept (`tcp` implied: the
    /// nodes talk over their TCP bus port, the port + 10000, which must be free too). See
    /// `Cluster`.
    pub cluster: bool,
    /// No password and no command removed: a server driven as a user would drive it (tests).
    pub open: bool,
    /// The password to require (default: a random one). The nodes of a `Cluster` share one,
    /// as a client following the slot map logs into each with the same.
    pub password: Option<String>,
    /// More settings as `redis-server` command-line arguments (`--name value ...`), after the
    /// config file's. Visible in `ps`: nothing secret here.
    pub args: Vec<String>,
    /// Also listen for TLS clients on a free port of 127.0.0.1 (`Server::tls_port`); our own
    /// connections keep the plain port. A cluster node then talks TLS on its bus too (Redis 7.0
    /// or later).
    pub tls: Option<Tls>,
}

/// The files of a TLS listener (PEM), for `Exposure::tls`.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The server's certificate (a cluster's nodes show it to each other too).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA that signed client certificates (and, for a cluster, the nodes' own).
    pub ca: PathBuf,
    /// Refuse clients without a certificate the CA signed (`tls-auth-clients yes`).
    pub auth_clients: bool,
}

impl std::fmt::Debug for Exposure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Exposure")
            .field("tcp", &self.tcp)
            .field("cluster", &self.cluster)
            .field("open", &self.open)
            .field("password", &self.password.as_ref().map(|_| "(set)"))
            .field("args", &self.args)
            .field("tls", &self.tls)
            .finish()
    }
}

/// A running throwaway server. Dropping it stops the server and removes its dir.
pub struct Server {
    child: Option<Child>,
    dir: ServerDir,
    tls_port: Option<u16>,
    /// How its process is started (`restart`): program, settings, address, password.
    launch: Box<Launch>,
    /// The server's version (`7.0.15`).
    pub version: String,
    /// From start to the first PONG (loading the dataset).
    pub load_time: Duration,
}

/// How a start ended.
pub enum Start {
    /// The server answered PING after loading its dataset.
    Up(Server),
    /// The server exited before answering (it refused the dataset): how, and its log.
    Exited {
        /// How it exited (exit code or signal).
        status: String,
        /// Its log file.
        log: String,
    },
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Tries this many ports before giving up (another process may take a free port between our
/// probe and the server's bind).
const PORT_ATTEMPTS: usize = 8;

/// A TCP port of 127.0.0.1 that is free now (and, for a cluster node, its bus port too).
fn free_port(cluster: bool) -> Result<u16, String> {
    use std::net::{Ipv4Addr, TcpListener};
    for _ in 0..200 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("no free TCP port: {e}"))?;
        let port = l.local_addr().map_err(|e| format!("no free TCP port: {e}"))?.port();
        if !cluster {
            return Ok(port);
        }
        // The cluster bus listens on port + 10000.
        if port <= 65535 - 10000 && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10000)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free pair of TCP ports (port, port + 10000) for a cluster node".into())
}

/// `loading_loaded_bytes` and `loading_total_bytes` of an `INFO persistence` reply, while loading.
fn loading_bytes(r: &Reply) -> Option<(u64, u64)> {
    let text = r.text()?;
    let field =
        |name: &str| text.lines().find_map(|l| l.trim_end().strip_prefix(name)?.strip_prefix(':')?.parse::<u64>().ok());
    if field("loading")? != 1 {
        return None;
    }
    Some((field("loading_loaded_bytes")?, field("loading_total_bytes")?))
}

/// What one attempt at starting gave.
enum Attempt {
    Up { child: Child, launch: Launch, load_time: Duration },
    Exited { status: String, log: String },
}

impl Server {
    /// Starts `redis-server` in `dir` (which holds the dataset) and waits until it has loaded
    /// it, or exited. `Err`: it could not be started, or loading took longer than allowed.
    pub fn start(dir: ServerDir, cfg: &ServerConfig) -> Result<Start, String> {
        Server::start_with(dir, cfg, &Exposure::default())
    }

    /// `start`, reached and kept as `exposure` says.
    pub fn start_with(dir: ServerDir, cfg: &ServerConfig, exposure: &Exposure) -> Result<Start, String> {
        Server::start_watched(dir, cfg, exposure, &mut |_, _| {})
    }

    /// `start_with`; while the server loads its dataset, `loading` gets (bytes loaded, bytes
    /// in all) from its `INFO persistence` (for a progress bar).
    pub fn start_watched(
        dir: ServerDir,
        cfg: &ServerConfig,
        exposure: &Exposure,
        loading: &mut dyn FnMut(u64, u64),
    ) -> Result<Start, String> {
        let tcp = exposure.tcp || exposure.cluster;
        if exposure.tls.is_some() && exposure.cluster && major_minor(&cfg.version) < (7, 0) {
            // Before 7.0 a TLS bus listens on the TLS port + 10000, not where `CLUSTER MEET`
            // looks for it.
            return Err(format!(
                "a throwaway cluster on TLS needs Redis 7.0 or later (cluster-port), not {}",
                cfg.version
            ));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = if tcp { Some(free_port(exposure.cluster)?) } else { None };
            let tls_port = match &exposure.tls {
                Some(_) => Some(free_port(false)?),
                None => None,
            };
            match Server::attempt(&dir, cfg, exposure, port, tls_port, loading)? {
                Attempt::Up { child, launch, load_time } => {
                    return Ok(Start::Up(Server {
                        child: Some(child),
                        dir,
                        tls_port,
                        launch: Box::new(launch),
                        version: cfg.version.clone(),
                        load_time,
                    }));
                }
                Attempt::Exited { status, log } => {
                    // The port was taken between the probe and the bind: another one.
                    if tcp && attempt < PORT_ATTEMPTS && log.contains("Address already in use") {
                        for f in ["redis.conf", "redis.log", "nodes.conf"] {
                            let _ = std::fs::remove_file(dir.path().join(f));
                        }
                        continue;
                    }
                    return Ok(Start::Exited { status, log });
                }
            }
        }
    }

    fn attempt(
        dir: &ServerDir,
        cfg: &ServerConfig,
        exposure: &Exposure,
        port: Option<u16>,
        tls_port: Option<u16>,
        loading: &mut dyn FnMut(u64, u64),
    ) -> Result<Attempt, String> {
        let socket = dir.path().join("redis.sock");
        if port.is_none() && socket.as_os_str().len() > 100 {
            return Err(format!(
                "{}: the temp dir's path is too long for a unix socket (at most about 90 bytes: use --temp-dir)",
                dir.path().display()
            ));
        }
        let log = dir.path().join("redis.log");
        let password = match &exposure.password {
            _ if exposure.open => None,
            Some(p) => Some(p.clone()),
            None => Some(secret().map_err(|e| format!("/dev/urandom: {e}"))?),
        };
        let save_command = if exposure.open {
            "SAVE".to_owned()
        } else {
            format!("SAVE-{}", secret().map_err(|e| format!("/dev/urandom: {e}"))?)
        };
        let d = dir.path().to_string_lossy().into_owned();
        let (addr, listen) = match port {
            None => (
                Addr::Unix(socket.clone()),
                format!("port 0\nunixsocket {}\nunixsocketperm 700\n", quote(&socket.to_string_lossy())),
            ),
            Some(p) => (Addr::Tcp { host: "127.0.0.1".into(), port: p }, format!("port {p}\nbind 127.0.0.1\n")),
        };
        let mut conf = format!(
            "{listen}dir {}\ndbfilename dump.rdb\nsave \"\"\ndaemonize no\nlogfile {}\n",
            quote(&d),
            quote(&log.to_string_lossy()),
        );
        if let Some(p) = &password {
            conf.push_str(&format!("requirepass {p}\n"));
        }
        if exposure.cluster {
            conf.push_str("cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 5000\n");
        }
        if let (Some(t), Some(tp)) = (&exposure.tls, tls_port) {
            let path = |p: &Path| quote(&p.to_string_lossy());
            conf.push_str(&format!(
                "tls-port {tp}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients {}\n",
                path(&t.cert),
                path(&t.key),
                path(&t.ca),
                if t.auth_clients { "yes" } else { "no" },
            ));
            if let (true, Some(p)) = (exposure.cluster, port) {
                // The bus on TLS, still at the port + 10000, where `CLUSTER MEET` looks for it.
                conf.push_str(&format!("tls-cluster yes\ncluster-port {}\n", p + 10000));
            }
        }
        match &cfg.dataset {
            Dataset::Rdb => conf.push_str("appendonly no\n"),
            // Before 7.0 an append-only file is one file in the dir, with no `appenddirname`.
            Dataset::Aof { appendfilename } if major_minor(&cfg.version) < (7, 0) => {
                if dir.path().join("appendonlydir").exists() {
                    return Err(format!(
                        "a multipart append-only directory needs Redis 7.0 or later, not {}",
                        cfg.version
                    ));
                }
                conf.push_str(&format!("appendonly yes\nappendfilename {}\n", quote(appendfilename)));
            }
            Dataset::Aof { appendfilename } => {
                conf.push_str(&format!(
                    "appendonly yes\nappenddirname appendonlydir\nappendfilename {}\n",
                    quote(appendfilename)
                ));
            }
        }
        if !exposure.open {
            let version = major_minor(&cfg.version);
            for (name, since) in DISABLED {
                if version >= since && !(exposure.cluster && name == "CLUSTER") {
                    conf.push_str(&format!("rename-command {name} \"\"\n"));
                }
            }
            conf.push_str(&format!("rename-command SAVE {save_command}\n"));
        }
        let conf_path = dir.path().join("redis.conf");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&conf_path)
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(|e| format!("{}: {e}", conf_path.display()))?;

        let launch = Launch {
            bin: cfg.bin.clone(),
            args: exposure.args.clone(),
            addr,
            password,
            save_command,
            load_timeout: cfg.load_timeout,
        };
        launch.run(dir, loading)
    }

    /// Kills the server (if it still runs) and starts it again in the same dir, with the same
    /// settings and address, and waits until it has loaded its dataset again (the append-only
    /// file or `dump.rdb` the last run left).
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        match self.launch.run(&self.dir, &mut |_, _| {})? {
            Attempt::Up { child, load_time, .. } => {
                self.child = Some(child);
                self.load_time = load_time;
                Ok(())
            }
            Attempt::Exited { status, log } => Err(format!("the server exited ({status}); its log:\n{log}")),
        }
    }

    fn connect_options_with(&self, timeout: Duration) -> ConnectOptions {
        let mut o = ConnectOptions::new(self.launch.addr.clone());
        o.password = self.launch.password.clone();
        o.timeout = timeout;
        o
    }

    /// The TCP port, for a server started with `Exposure::tcp` (or `cluster`).
    pub fn port(&self) -> Option<u16> {
        match &self.launch.addr {
            Addr::Tcp { port, .. } => Some(*port),
            Addr::Unix(_) => None,
        }
    }

    /// The TLS port, for a server started with `Exposure::tls`.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// How to connect to the server (its unix socket or TCP port, and password).
    pub fn connect_options(&self) -> ConnectOptions {
        self.connect_options_with(Duration::from_secs(60))
    }

    /// A connection to the server.
    pub fn connect(&self, timeout: Duration) -> Result<Connection, String> {
        Connection::connect(&self.connect_options_with(timeout)).map_err(|e| e.to_string())
    }

    /// SAVE (under its secret name): the dataset to `dump.rdb` in the server's dir.
    pub fn save(&self, timeout: Duration) -> Result<PathBuf, String> {
        let mut c = self.connect(Duration::from_secs(30))?;
        c.set_timeout(timeout).map_err(|e| e.to_string())?;
        match c.command(&[self.launch.save_command.as_bytes()]) {
            Ok(r) if r.is_ok() => Ok(self.dir.path().join("dump.rdb")),
            Ok(r) => Err(format!("SAVE answered {}", r.describe())),
            Err(e) if e.kind == ErrorKind::Server => Err(format!("SAVE answered {}", e.message)),
            Err(e) => Err(format!("SAVE failed: {e}; the server's log ends with:\n{}", self.log_tail(12))),
        }
    }

    /// The server process's PID; `None` once it was stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's dir (its dump.rdb, appendonlydir, redis.log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stops the process (by its PID); the dir stays until the `Server` is dropped.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            crate::cleanup::remove_child(c.id());
            // Child::kill signals exactly this PID.
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server and removes its dir.
    pub fn stop(self) {}
}

/// How a server's process is started (again): its program, settings and address.
#[derive(Clone)]
struct Launch {
    bin: PathBuf,
    args: Vec<String>,
    addr: Addr,
    password: Option<String>,
    save_command: String,
    load_timeout: Duration,
}

impl Launch {
    /// Starts the server on the config file in `dir` and waits for its PONG, or its exit.
    fn run(&self, dir: &ServerDir, loading: &mut dyn FnMut(u64, u64)) -> Result<Attempt, String> {
        let conf_path = dir.path().join("redis.conf");
        let log = dir.path().join("redis.log");
        let parent = std::process::id() as libc::pid_t;
        let mut cmd = Command::new(&self.bin);
        cmd.arg(&conf_path).args(&self.args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Its own process group: a terminal's Ctrl-C is ours to handle.
                libc::setpgid(0, 0);
                // Dies with us, even when we are killed with SIGKILL.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let mut child = crate::cleanup::spawn_child(&mut cmd, "redis-server")
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        let mut opts = ConnectOptions::new(self.addr.clone());
        opts.password = self.password.clone();
        opts.timeout = Duration::from_secs(5);
        let stop = |mut child: Child| {
            crate::cleanup::remove_child(child.id());
            let _ = child.kill();
            let _ = child.wait();
        };
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                crate::cleanup::remove_child(child.id());
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Ok(Attempt::Exited { status: status.to_string(), log });
            }
            let reachable = match &self.addr {
                Addr::Tcp { .. } => true,
                // Not before the server made its socket (a stale one is refused).
                Addr::Unix(socket) => socket.exists(),
            };
            if reachable && let Ok(mut c) = Connection::connect(&opts) {
                match c.command(&[b"PING"]) {
                    Ok(Reply::Simple(s)) if s == "PONG" => {
                        let load_time = started.elapsed();
                        return Ok(Attempt::Up { child, launch: self.clone(), load_time });
                    }
                    // LOADING: still reading the dataset (INFO answers meanwhile).
                    _ => {
                        if let Some((done, total)) =
                            c.command(&[b"INFO", b"persistence"]).ok().and_then(|r| loading_bytes(&r))
                        {
                            loading(done, total);
                        }
                    }
                }
            }
            if started.elapsed() > self.load_timeout {
                stop(child);
                return Err(format!(
                    "redis-server did not finish loading within {} s (--load-timeout)",
                    self.load_timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
