//! The throwaway redis-server is contained (unix socket, password, dangerous commands gone,
//! private files) and nothing is left behind when a command is interrupted: SIGINT / SIGTERM
//! during `restore-test`, `aof to-rdb`, `merge`, `split` and `export -o` stop our redis-server
//! (checked by PID in /proc), remove temp dirs and temp files, and exit 130 / 143; SIGKILL still
//! takes the server down (it dies with its parent), and the temp file it leaves is removed by the
//! next run.

mod common;

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{RedisServer, Resp, testdata};
use rdbtool::redis::server::{Dataset, Server, ServerConfig, ServerDir, Start, copy_private, server_version};
use rdbtool::redis::{Addr, ConnectOptions, Connection, Reply};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether a process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// PIDs of the redis-server children of `parent`.
fn redis_children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let ppid: u32 = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == parent && head.contains("(redis-server") {
            out.push(pid);
        }
    }
    out
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(c: &Child, sig: i32) {
    // SAFETY: a signal to our own child process.
    assert_eq!(unsafe { libc::kill(c.id() as libc::pid_t, sig) }, 0);
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn rdbtool(args: &[&str], tmpdir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rdbtool"));
    c.args(args).env("TMPDIR", tmpdir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Waits for the end of `c`; (exit code, stderr).
fn finish(mut c: Child) -> (Option<i32>, String) {
    let mut err = String::new();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let st = c.wait().unwrap();
    (st.code(), err)
}

/// An RDB of `keys` keys (DEBUG POPULATE on a server of the test), in `dir`.
fn big_rdb(dir: &Path, keys: u32) -> Option<PathBuf> {
    let srv = RedisServer::start(&["--enable-debug-command", "yes"])?;
    let n = keys.to_string();
    assert_eq!(srv.cmd(&[b"DEBUG", b"POPULATE", n.as_bytes(), b"key", b"64"]), Resp::Simple("OK".into()));
    assert_eq!(srv.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
    let out = dir.join("big.rdb");
    std::fs::copy(srv.path().join("dump.rdb"), &out).unwrap();
    Some(out)
}

/// Local TCP ports the process listens on (from /proc/net/tcp*, by the inodes of its sockets).
fn tcp_listening(pid: u32) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| l.to_string_lossy().strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
        .collect();
    let mut n = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn the_throwaway_server_is_contained() {
    if RedisServer::start(&[]).is_none() {
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let dir = ServerDir::create(Some(parent.path()), "srv-").unwrap();
    let path = dir.path().to_path_buf();
    copy_private(&testdata("small-db0.rdb"), &path.join("dump.rdb")).unwrap();
    let cfg = ServerConfig {
        bin: "redis-server".into(),
        version: server_version(Path::new("redis-server")).unwrap(),
        dataset: Dataset::Rdb,
        load_timeout: Duration::from_secs(30),
    };
    let Ok(Start::Up(srv)) = Server::start(dir, &cfg) else { panic!("the server did not start") };
    let pid = srv.pid().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o700);
    assert_eq!(mode(&path.join("dump.rdb")), 0o600);
    assert_eq!(mode(&path.join("redis.conf")), 0o600);
    // No TCP port; the settings (password, secret SAVE name) are not on its command line.
    assert_eq!(tcp_listening(pid), 0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!text(&cmdline).contains("requirepass") && !text(&cmdline).contains("SAVE"), "{}", text(&cmdline));
    // Without the password: nothing.
    let Addr::Unix(sock) = srv.connect_options().addr else { panic!("not a unix socket") };
    let mut anon = Connection::connect(&ConnectOptions::new(Addr::Unix(sock))).unwrap();
    assert!(anon.command(&[b"DBSIZE"]).unwrap_err().message.contains("NOAUTH"));
    // With it: the dataset, and none of the commands that reach outside it.
    let mut c = srv.connect(Duration::from_secs(5)).unwrap();
    assert_eq!(c.command(&[b"DBSIZE"]).unwrap(), Reply::Int(15));
    for cmd in [
        &[&b"CONFIG"[..], b"SET", b"dir", b"/tmp"][..],
        &[b"REPLICAOF", b"127.0.0.1", b"1"],
        &[b"SLAVEOF", b"127.0.0.1", b"1"],
        &[b"ACL", b"SETUSER", b"x"],
        &[b"MODULE", b"LIST"],
        &[b"DEBUG", b"SLEEP", b"0"],
        &[b"SHUTDOWN"],
        &[b"MIGRATE", b"127.0.0.1", b"1", b"k", b"0", b"1"],
        &[b"SAVE"],
        &[b"BGSAVE"],
        &[b"BGREWRITEAOF"],
        &[b"MONITOR"],
        &[b"FAILOVER"],
    ] {
        let e = c.command(cmd).unwrap_err();
        assert!(e.message.contains("unknown command"), "{}: {e}", text(cmd[0]));
    }
    // SAVE under its secret name works for us.
    let dump = srv.save(Duration::from_secs(30)).unwrap();
    assert!(dump.is_file());
    drop(c);
    drop(srv);
    assert!(!alive(pid), "the server is still running");
    assert!(!path.exists(), "the server dir is still there");
}

#[test]
fn aof_commands_that_reach_outside_are_refused() {
    if RedisServer::start(&[]).is_none() {
        return;
    }
    // Something a replica would connect to.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let cmd = |args: &[&str]| {
        let mut s = format!("*{}\r\n", args.len());
        for a in args {
            s.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s
    };
    for (name, bad) in [
        ("replicaof", cmd(&["REPLICAOF", "127.0.0.1", &port])),
        ("slaveof", cmd(&["SLAVEOF", "127.0.0.1", &port])),
        ("config", cmd(&["CONFIG", "SET", "dir", "/tmp"])),
        ("acl", cmd(&["ACL", "SETUSER", "evil", "on", "nopass", "+@all"])),
    ] {
        let aof = tmp.path().join(format!("{name}.aof"));
        let body = cmd(&["SELECT", "0"]) + &cmd(&["SET", "k", "v"]) + &bad + &cmd(&["SET", "k2", "v"]);
        std::fs::write(&aof, body).unwrap();
        let o = rdbtool(&["restore-test", aof.to_str().unwrap()], tmp.path()).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{name}: {}{}", text(&o.stdout), text(&o.stderr));
        assert!(text(&o.stdout).contains("REFUSED"), "{name}: {}", text(&o.stdout));
        // Refused before any server starts (the throwaway server has these commands off too:
        // `the_throwaway_server_is_contained`).
        assert!(text(&o.stdout).contains("never writes"), "{name}: {}", text(&o.stdout));
        let out = tmp.path().join(format!("{name}.rdb"));
        let o = rdbtool(&["aof", "to-rdb", aof.to_str().unwrap(), "-o", out.to_str().unwrap()], tmp.path())
            .output()
            .unwrap();
        assert_ne!(o.status.code(), Some(0), "{name}: {}", text(&o.stdout));
        assert!(!out.exists());
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(listener.accept().is_err(), "the throwaway server connected out");
    // Nothing left in the temp dir but the inputs.
    assert!(listing(tmp.path()).iter().all(|n| n.ends_with(".aof")), "{:?}", listing(tmp.path()));
}

#[test]
fn interrupted_restore_test_and_to_rdb_stop_their_server() {
    let data = tempfile::tempdir().unwrap();
    let Some(big) = big_rdb(data.path(), 600_000) else { return };
    // An AOF set whose base is that dataset: BGREWRITEAOF of a server that loaded it.
    let srv = RedisServer::start_with_rdb(&big, &[]).unwrap();
    assert_eq!(srv.cmd(&[b"CONFIG", b"SET", b"appendonly", b"yes"]), Resp::Simple("OK".into()));
    wait_until("the AOF rewrite", Duration::from_secs(60), || {
        let Resp::Bulk(Some(i)) = srv.cmd(&[b"INFO", b"persistence"]) else { return false };
        let i = text(&i);
        i.contains("aof_rewrite_in_progress:0")
            && i.contains("aof_rewrite_scheduled:0")
            && i.contains("aof_enabled:1")
            && i.contains("aof_last_bgrewrite_status:ok")
    });
    let aofdir = srv.path().join("appendonlydir");
    let big_s = big.to_str().unwrap().to_owned();
    let aof_s = aofdir.to_str().unwrap().to_owned();
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        for which in ["restore-test", "to-rdb"] {
            let tmp = tempfile::tempdir().unwrap();
            let out = tmp.path().join("out.rdb");
            let t = tmp.path().to_str().unwrap();
            let args: Vec<&str> = match which {
                "restore-test" => vec!["restore-test", &big_s, "--temp-dir", t],
                _ => vec!["aof", "to-rdb", &aof_s, "-o", out.to_str().unwrap()],
            };
            let child = rdbtool(&args, tmp.path()).spawn().unwrap();
            let mut server = 0;
            wait_until("the throwaway server", Duration::from_secs(30), || {
                server = redis_children(child.id()).first().copied().unwrap_or(0);
                server != 0
            });
            std::thread::sleep(Duration::from_millis(400));
            signal(&child, sig);
            let (status, err) = finish(child);
            assert_eq!(status, Some(code), "{which} {sig}: {err}");
            assert_eq!(err.lines().count(), 1, "{which}: {err}");
            assert!(err.contains("interrupted") && err.contains("stopped redis-server"), "{which}: {err}");
            assert!(!alive(server), "{which}: redis-server {server} is still running");
            assert!(listing(tmp.path()).is_empty(), "{which}: left {:?}", listing(tmp.path()));
        }
    }
    // SIGKILL: no cleanup can run, but the server dies with us.
    let tmp = tempfile::tempdir().unwrap();
    let child =
        rdbtool(&["restore-test", &big_s, "--temp-dir", tmp.path().to_str().unwrap()], tmp.path()).spawn().unwrap();
    let mut server = 0;
    wait_until("the throwaway server", Duration::from_secs(30), || {
        server = redis_children(child.id()).first().copied().unwrap_or(0);
        server != 0
    });
    signal(&child, libc::SIGKILL);
    let _ = finish(child);
    wait_until("the orphaned server to die", Duration::from_secs(5), || !alive(server));
}

#[test]
fn interrupted_writers_leave_no_temp_file() {
    let data = tempfile::tempdir().unwrap();
    let Some(big) = big_rdb(data.path(), 1_000_000) else { return };
    let b = big.to_str().unwrap().to_owned();
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        for which in ["merge", "split", "export"] {
            let out = tempfile::tempdir().unwrap();
            let o = out.path().to_str().unwrap().to_owned();
            let target = out.path().join("out.file");
            let t = target.to_str().unwrap().to_owned();
            let args: Vec<&str> = match which {
                "merge" => vec!["merge", &b, "-o", &t],
                "split" => vec!["split", "--shards", "3", &b, "-o", &o],
                _ => vec!["export", &b, "-o", &t],
            };
            let child = rdbtool(&args, out.path()).spawn().unwrap();
            wait_until("a temp file", Duration::from_secs(30), || {
                listing(out.path()).iter().any(|n| n.contains(".rdbtool-") && n.ends_with(".tmp"))
            });
            signal(&child, sig);
            let (status, err) = finish(child);
            // The signal may land after the last temp file took its final name (a busy machine,
            // a fast run): then nothing is left to remove and the outputs are complete.
            let left = listing(out.path());
            assert!(!left.iter().any(|n| n.ends_with(".tmp")), "{which}: left {left:?}");
            if err.contains("nothing to clean up") || status == Some(0) {
                assert!(matches!(status, Some(0)) || status == Some(code), "{which} {sig}: {err}");
                if which != "export" {
                    for f in &left {
                        let v =
                            rdbtool(&["verify", out.path().join(f).to_str().unwrap()], out.path()).output().unwrap();
                        assert_eq!(v.status.code(), Some(0), "{which}: {f} is not complete");
                    }
                }
                continue;
            }
            assert_eq!(status, Some(code), "{which} {sig}: {err}");
            assert!(err.contains("interrupted") && err.contains("removed"), "{which}: {err}");
            assert!(left.is_empty(), "{which}: left {left:?}");
        }
    }
    // SIGKILL leaves the temp file; the next run removes it and says so.
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("m.rdb");
    let t = target.to_str().unwrap().to_owned();
    let child = rdbtool(&["merge", &b, "-o", &t], out.path()).spawn().unwrap();
    wait_until("a temp file", Duration::from_secs(30), || listing(out.path()).iter().any(|n| n.ends_with(".tmp")));
    signal(&child, libc::SIGKILL);
    let _ = finish(child);
    assert_eq!(listing(out.path()).len(), 1);
    let (status, err) = finish(rdbtool(&["merge", &b, "-o", &t], out.path()).spawn().unwrap());
    assert_eq!(status, Some(0), "{err}");
    assert!(err.contains("left by an interrupted run"), "{err}");
    assert_eq!(listing(out.path()), vec!["m.rdb".to_owned()]);
}
