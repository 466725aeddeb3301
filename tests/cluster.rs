//! The library's throwaway cluster (`rdbtool::redis::throwaway_cluster::Cluster`): contained like the
//! throwaway server, one slot map on every node, every node stopped by its PID on drop and when
//! `rdbtool restore-test` of several files is interrupted.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdbtool::redis::server::{Dataset, Exposure, ServerConfig, server_version};
use rdbtool::redis::throwaway_cluster::{Cluster, slot_ranges};
use rdbtool::redis::{Addr, ConnectOptions, Connection, Reply};

fn alive(pid: u32) -> bool {
    // A zombie (not reaped yet) is not running either.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// PIDs of the running processes whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 1 && f[0] != "Z" && f[1].parse::<u32>() == Ok(parent) {
            out.push(pid);
        }
    }
    out
}

fn listing(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

#[test]
fn the_throwaway_cluster_is_contained_and_stopped_by_pid() {
    if common::RedisServer::start(&[]).is_none() {
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        bin: "redis-server".into(),
        version: server_version(Path::new("redis-server")).unwrap(),
        dataset: Dataset::Rdb,
        load_timeout: Duration::from_secs(60),
    };
    let c = Cluster::start(3, &cfg, &Exposure::default(), Some(parent.path()), Duration::from_secs(60)).unwrap();
    assert_eq!(listing(parent.path()).len(), 3);
    let pids: Vec<u32> = c.nodes.iter().map(|n| n.pid().unwrap()).collect();
    let ranges = slot_ranges(3);
    for (i, n) in c.nodes.iter().enumerate() {
        // The nodes share one password; without it, nothing.
        let o = n.connect_options();
        assert_eq!(o.password, c.nodes[0].connect_options().password);
        let Addr::Tcp { host, port } = o.addr.clone() else { panic!("a cluster node listens on TCP") };
        assert_eq!(host, "127.0.0.1");
        let mut anon = Connection::connect(&ConnectOptions::new(o.addr.clone())).unwrap();
        assert!(anon.command(&[b"CLUSTER", b"INFO"]).unwrap_err().message.contains("NOAUTH"));
        let mut conn = Connection::connect(&o).unwrap();
        let info = conn.command(&[b"CLUSTER", b"INFO"]).unwrap().text().unwrap();
        assert!(info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3"), "{info}");
        // Every node sees the slots assigned, each range on its node.
        let map = rdbtool::redis::SlotMap::fetch(&mut conn, "127.0.0.1").unwrap();
        for (j, &(lo, hi)) in ranges.iter().enumerate() {
            let port_of = |s: u16| match map.nodes[map.master_of(s).unwrap()].addr() {
                Addr::Tcp { port, .. } => port,
                Addr::Unix(_) => 0,
            };
            let want = c.nodes[j].port().unwrap();
            assert_eq!((port_of(lo), port_of(hi)), (want, want), "node {i}: slots {lo}-{hi}");
        }
        // Commands that reach outside the dataset are gone, CLUSTER stays.
        for cmd in [&[&b"CONFIG"[..], b"GET", b"dir"][..], &[b"DEBUG", b"SLEEP", b"0"], &[b"SAVE"]] {
            let e = conn.command(cmd).unwrap_err();
            assert!(e.message.contains("unknown command"), "{:?}: {e}", String::from_utf8_lossy(cmd[0]));
        }
        // A key goes only to the master of its slot.
        let slot = rdbtool::slot::key_slot(b"k");
        let owner = ranges.iter().position(|&(lo, hi)| (lo..=hi).contains(&slot)).unwrap();
        let r = conn.command(&[b"SET", b"k", b"v"]);
        if owner == i {
            assert_eq!(r.unwrap(), Reply::Simple("OK".into()));
        } else {
            assert!(r.unwrap_err().message.starts_with("MOVED"), "node {i}");
        }
        assert_eq!(port, n.port().unwrap());
    }
    assert!(pids.iter().all(|&p| alive(p)));
    drop(c);
    assert!(pids.iter().all(|&p| !alive(p)), "a node is still running");
    assert!(listing(parent.path()).is_empty(), "left {:?}", listing(parent.path()));
    // No node: an error, nothing started.
    assert!(Cluster::start(0, &cfg, &Exposure::default(), Some(parent.path()), Duration::from_secs(5)).is_err());
    // A node that cannot start: the others are stopped too.
    let bad = ServerConfig { bin: "/nonexistent/redis-server".into(), ..cfg };
    assert!(Cluster::start(2, &bad, &Exposure::default(), Some(parent.path()), Duration::from_secs(5)).is_err());
    assert!(listing(parent.path()).is_empty(), "left {:?}", listing(parent.path()));
}

#[test]
fn an_interrupted_restore_test_of_several_files_stops_every_node() {
    if common::RedisServer::start(&[]).is_none() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..3 {
        let keys: Vec<(u64, Vec<u8>, Vec<u8>)> =
            (0..50).map(|k| (0, format!("f{i}:k{k}").into_bytes(), b"v".to_vec())).collect();
        let refs: Vec<(u64, &[u8], &[u8])> = keys.iter().map(|(d, k, v)| (*d, &k[..], &v[..])).collect();
        let p = data.path().join(format!("shard-{i}.rdb"));
        std::fs::write(&p, common::rdb9(common::rdb_of_strings(&refs))).unwrap();
        files.push(p.display().to_string());
    }
    // Untouched, the set passes.
    let o = Command::new(env!("CARGO_BIN_EXE_rdbtool"))
        .arg("restore-test")
        .args(&files)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let tmp = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_rdbtool"))
            .arg("restore-test")
            .args(&files)
            .args(["--temp-dir", tmp.path().to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Interrupted once at least two nodes run (the cluster is being formed, or used).
        let started = Instant::now();
        let mut nodes = Vec::new();
        while nodes.len() < 2 {
            nodes = children(child.id());
            assert!(started.elapsed() < Duration::from_secs(30), "the nodes did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        // (Two nodes of three: the cluster was still being formed, the run far from its end.)
        assert_eq!(o.status.code(), Some(code), "{err}");
        assert!(err.contains("interrupted") && err.contains("stopped redis-server"), "{err}");
        for p in nodes {
            assert!(!alive(p), "redis-server {p} is still running");
        }
        assert!(listing(tmp.path()).is_empty(), "left {:?}", listing(tmp.path()));
    }
}
