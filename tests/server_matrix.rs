//! `verify --target SERVER` against the servers themselves: every RDB of `testdata/` and of
//! `../shared/fixtures` is loaded by each server we can run here (Debian's Redis 7.0.15, and from
//! PyPI wheels Redis 5.0.7, 6.0.9, 6.2, Valkey 8.1.8 and 9.1.2: `scripts/ensure_servers.sh`), and our
//! verdict for that target must equal whether the server loaded the file.
//!
//! Servers that can sanitize (Redis >= 6.2, Valkey) run with `sanitize-dump-payload yes`, so a
//! corrupt value is refused while loading. Redis 5.0 and 6.0 cannot: they load some corrupt
//! values and crash later; for a file we call corrupt, they are not compared (our verdict is the
//! same for every target: corrupt). The table of results is written to
//! `target/server-matrix.md` (README shows it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

struct Server {
    /// The `--target` name.
    target: &'static str,
    bin: PathBuf,
    sanitizes: bool,
}

fn servers() -> Option<Vec<Server>> {
    let mut out = vec![
        Server { target: "redis-5.0", bin: common::other_server("redis-5.0.7")?, sanitizes: false },
        Server { target: "redis-6.0", bin: common::other_server("redis-6.0.9")?, sanitizes: false },
        Server { target: "redis-6.2", bin: common::other_server("redis-6.2")?, sanitizes: true },
        Server { target: "valkey-8.1", bin: common::other_server("valkey-8.1.8")?, sanitizes: true },
        Server { target: "valkey-9.1", bin: common::other_server("valkey-9.1.2")?, sanitizes: true },
    ];
    if common::RedisServer::start(&[]).is_some() {
        out.insert(3, Server { target: "redis-7.0", bin: "redis-server".into(), sanitizes: true });
    }
    Some(out)
}

/// Does `server` load `file`? Started in a temp dir with the file as its dump.rdb, on a unix
/// socket only, and stopped by its PID.
fn loads(server: &Server, file: &Path) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(file, dir.path().join("dump.rdb")).unwrap();
    let sock = dir.path().join("s.sock");
    let log = dir.path().join("log");
    let mut cmd = Command::new(&server.bin);
    cmd.args(["--port", "0", "--unixsocket"]).arg(&sock);
    cmd.arg("--dir").arg(dir.path()).args(["--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no"]);
    cmd.arg("--logfile").arg(&log).args(["--daemonize", "no"]);
    if server.sanitizes {
        cmd.args(["--sanitize-dump-payload", "yes"]);
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let verdict = loop {
        if let Ok(Some(_)) = child.try_wait() {
            break false;
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Ready to accept connections") || text.contains("ready to accept connections") {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let why = text
        .lines()
        .filter(|l| l.contains("# ") || l.contains("Wrong") || l.contains("Can't") || l.contains("Fatal"))
        .map(|l| l.split_once(" # ").map_or(l, |(_, r)| r).to_owned())
        .next_back()
        .unwrap_or_default();
    (verdict, why)
}

/// Our verdict with `--target`: (restores, error kind when not).
fn ours(target: &str, file: &Path) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_rdbtool"))
        .args(["verify", "--json", "--target", target])
        .arg(file)
        .output()
        .unwrap();
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", file.display()));
    let f = &doc["files"][0];
    let kind = f["errors"][0]["kind"].as_str().unwrap_or("").to_owned();
    (f["ok"] == true, kind)
}

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(common::testdata(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rdb"))
        .collect();
    if let Some(shared) = common::shared_dir() {
        files.extend(
            std::fs::read_dir(shared.join("fixtures/redis"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "rdb")),
        );
        for e in std::fs::read_dir(shared.join("fixtures/generated")).unwrap() {
            let p = e.unwrap().path().join("dump.rdb");
            if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn verdicts_for_a_target_equal_what_that_server_does() {
    let Some(servers) = servers() else { return };
    let files = fixtures();
    let mut table = String::from("| file |");
    for s in &servers {
        table.push_str(&format!(" {} |", s.target));
    }
    table.push_str("\n|---|");
    table.push_str(&"---|".repeat(servers.len()));
    table.push('\n');
    let mut disagreements = Vec::new();
    let mut compared = 0;
    for f in &files {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let name = match (f.strip_prefix(root), common::shared_dir()) {
            (Ok(p), _) => p.display().to_string(),
            (Err(_), Some(shared)) => {
                let shared = shared.join("fixtures");
                let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
                canon(f)
                    .strip_prefix(canon(&shared))
                    .map_or(f.display().to_string(), |p| format!("shared: {}", p.display()))
            }
            _ => f.display().to_string(),
        };
        table.push_str(&format!("| `{name}` |"));
        for s in &servers {
            let (theirs, why) = loads(s, f);
            let (we, kind) = ours(s.target, f);
            let corrupt = matches!(kind.as_str(), "corrupt" | "truncated" | "checksum");
            let cell = match (theirs, we) {
                (true, true) => "loads / ok".to_owned(),
                (false, false) => "refuses / refused".to_owned(),
                (true, false) if corrupt && !s.sanitizes => format!("loads / {kind} (no sanitization)"),
                (t, w) => {
                    disagreements
                        .push(format!("{name} on {}: server loads={t} ({why}), we say ok={w} ({kind})", s.target));
                    format!("**{} / {}**", if t { "loads" } else { "refuses" }, if w { "ok" } else { "refused" })
                }
            };
            if !corrupt || s.sanitizes {
                compared += 1;
            }
            table.push_str(&format!(" {cell} |"));
        }
        table.push('\n');
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/server-matrix.md");
    std::fs::write(&out, &table).unwrap();
    assert!(compared >= files.len() * 3, "{compared} comparisons");
    assert!(disagreements.is_empty(), "verdicts differ from the servers:\n{}\n\n{table}", disagreements.join("\n"));
}
