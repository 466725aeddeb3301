//! `rdbtool restore` as a process, against real redis-servers started here (stopped by PID when
//! dropped) and fake servers that misbehave.

mod common;
use common::{rdbtool, rdbtool_env};

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{FileKey, RedisServer, Resp, file_keys};
use rdbtool::json::to_bytes;
use serde_json::Value as Json;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `restore ... --json`, checks the exit code, returns the report.
fn restore_json(args: &[&str], code: i32) -> Json {
    let mut a = vec!["restore", "--json"];
    a.extend_from_slice(args);
    let o = rdbtool(&a);
    assert_eq!(o.status.code(), Some(code), "rdbtool {a:?}\nstdout: {}\nstderr: {}", text(&o.stdout), text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)))
}

/// `rdbtool diff FILE URL --jsonl`: (exit code, the (db, key) of every difference).
fn diff(file: &Path, s: &RedisServer) -> (i32, BTreeSet<(u64, Vec<u8>)>) {
    let (code, d) = diff_kinds(file, s, &[]);
    (code, d.into_keys().collect())
}

/// `rdbtool diff FILE URL --jsonl EXTRA`: (exit code, (db, key) -> kind of difference).
fn diff_kinds(file: &Path, s: &RedisServer, extra: &[&str]) -> (i32, BTreeMap<(u64, Vec<u8>), String>) {
    let o = rdbtool(&[&["diff", file.to_str().unwrap(), &s.url(), "--jsonl"], extra].concat());
    let mut keys = BTreeMap::new();
    for l in o.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let j: Json = serde_json::from_slice(l).unwrap();
        if j.get("summary").is_none() {
            let kind = j["kind"].as_str().unwrap_or("?").to_owned();
            keys.insert((j["db"].as_u64().unwrap(), to_bytes(&j["key"]).unwrap()), kind);
        }
    }
    (o.status.code().unwrap(), keys)
}

fn exists(s: &RedisServer, db: u64, key: &[u8]) -> bool {
    s.select(db);
    s.cmd(&[b"EXISTS", key]) == Resp::Int(1)
}

fn get(s: &RedisServer, db: u64, key: &[u8]) -> Resp {
    s.select(db);
    s.cmd(&[b"GET", key])
}

fn all_types() -> PathBuf {
    common::with_future_ttls("all-types.rdb")
}

#[test]
fn every_fixture_restored_then_diff_is_identical() {
    let mut files = vec![all_types()];
    for f in
        ["small-db0.rdb", "no-checksum.rdb", "uncompressed.rdb", "empty.rdb", "preamble-aof/appendonly.aof.3.base.rdb"]
    {
        files.push(common::testdata(f));
    }
    for d in
        ["aof/preamble/appendonlydir/appendonly.aof.1.base.rdb", "aof/preamble/appendonlydir/appendonly.aof.2.base.rdb"]
    {
        files.push(common::testdata(d));
    }
    for f in &files {
        let Some(s) = RedisServer::start(&[]) else { return };
        let keys = file_keys(f);
        let r = restore_json(&[f.to_str().unwrap(), "--to", &s.url()], 0);
        // Keys of the AOF bases hold TTLs that were relative when recorded: some have passed.
        let expired = r["skipped_expired"].as_u64().unwrap();
        assert_eq!(r["written"].as_u64().unwrap() + expired, keys.len() as u64, "{}: {r}", f.display());
        assert_eq!(r["failed"].as_u64(), Some(0));
        let (_, d) = diff_kinds(f, &s, &[]);
        assert_eq!(d.len() as u64, expired, "{}: {d:?}", f.display());
        assert!(d.values().all(|k| k == "expired"), "{}: {d:?}", f.display());
    }
}

type Prefilled = (RedisServer, Vec<(u64, Vec<u8>)>);

/// A fresh server holding "prefilled" under three keys of the file (db 0 and db 2, late in file
/// order), and one key of its own.
fn prefilled(keys: &[FileKey]) -> Option<Prefilled> {
    let s = RedisServer::start(&[])?;
    let mut picked = Vec::new();
    for at in [keys.len() / 3, keys.len() / 2, keys.len() * 4 / 5] {
        let FileKey { db, key, .. } = &keys[at];
        s.select(*db);
        assert_eq!(s.cmd(&[b"SET", key, b"prefilled"]), Resp::Simple("OK".into()));
        picked.push((*db, key.clone()));
    }
    s.select(0);
    s.cmd(&[b"SET", b"only-on-target", b"1"]);
    Some((s, picked))
}

#[test]
fn busy_key_policies_key_by_key() {
    let f = all_types();
    let fs = f.to_str().unwrap();
    let keys = file_keys(&f);
    let n = keys.len() as u64;

    // panic: stops at the first busy key, touches none of them, lists what it wrote.
    let Some((s, picked)) = prefilled(&keys) else { return };
    let r = restore_json(&[fs, "--to", &s.url(), "--batch", "8", "--no-functions"], 1);
    let first = &picked[0];
    assert_eq!(r["busy_key"]["db"].as_u64(), Some(first.0), "{r}");
    assert_eq!(to_bytes(&r["busy_key"]["key"]).unwrap(), first.1);
    let written: BTreeSet<(u64, Vec<u8>)> = r["written_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["db"].as_u64().unwrap(), to_bytes(&k["key"]).unwrap()))
        .collect();
    assert_eq!(written.len() as u64, r["written"].as_u64().unwrap());
    assert!(r["skipped_busy"].as_u64().unwrap() >= 1);
    assert_eq!(
        r["written"].as_u64().unwrap() + r["skipped_busy"].as_u64().unwrap() + r["not_sent"].as_u64().unwrap(),
        n
    );
    // Everything before the busy key was written; nothing after the in-flight window.
    let first_at = keys.iter().position(|k| (k.db, &k.key) == (first.0, &first.1)).unwrap();
    for (i, FileKey { db, key, .. }) in keys.iter().enumerate() {
        let id = (*db, key.clone());
        if picked.contains(&id) {
            assert_eq!(get(&s, *db, key), Resp::Bulk(Some(b"prefilled".to_vec())), "{key:?} was touched");
        } else if written.contains(&id) {
            assert!(exists(&s, *db, key), "{key:?} reported written but absent");
        } else {
            assert!(i > first_at, "key {i} before the busy key was not written");
            assert!(!exists(&s, *db, key), "{key:?} written but not reported");
        }
    }
    assert!(written.len() < keys.len() - 3, "the stop came too late: {}", written.len());
    let o = rdbtool(&["restore", fs, "--to", &s.url(), "--no-functions"]);
    let out = text(&o.stdout);
    assert!(out.contains("stopped: db ") && out.contains("--on-busy-key panic"), "{out}");
    // A library that exists stops it too, named as such.
    let o = rdbtool(&["restore", fs, "--to", &s.url(), "--db", "3", "--key", "no-such-key"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let o = rdbtool(&["restore", fs, "--to", &s.url(), "--db", "3", "--key", "no-such-key"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("stopped: function library \"mathlib\""), "{}", text(&o.stdout));
    drop(s);

    // skip: the target's keys stay, everything else is restored.
    let (s, picked) = prefilled(&keys).unwrap();
    let r = restore_json(&[fs, "--to", &s.url(), "--batch", "8", "--on-busy-key", "skip"], 0);
    assert_eq!(
        (r["skipped_busy"].as_u64(), r["written"].as_u64(), r["replaced"].as_u64()),
        (Some(3), Some(n - 3), Some(0))
    );
    for (db, key) in &picked {
        assert_eq!(get(&s, *db, key), Resp::Bulk(Some(b"prefilled".to_vec())));
    }
    let (code, d) = diff(&f, &s);
    let mut expect: BTreeSet<(u64, Vec<u8>)> = picked.iter().cloned().collect();
    expect.insert((0, b"only-on-target".to_vec()));
    assert_eq!((code, d), (1, expect));
    drop(s);

    // rewrite: replaced, counted, and the server ends equal to the file (plus its own key).
    let (s, _) = prefilled(&keys).unwrap();
    let r = restore_json(&[fs, "--to", &s.url(), "--batch", "8", "--on-busy-key", "rewrite"], 0);
    assert_eq!((r["replaced"].as_u64(), r["written"].as_u64()), (Some(3), Some(n - 3)));
    assert_eq!(r["functions_loaded"].as_u64(), Some(2));
    let (code, d) = diff(&f, &s);
    assert_eq!((code, d), (1, BTreeSet::from([(0, b"only-on-target".to_vec())])));
    // Again with rewrite: every key replaced, libraries too.
    let r = restore_json(&[fs, "--to", &s.url(), "--on-busy-key", "rewrite"], 0);
    assert_eq!(
        (r["replaced"].as_u64(), r["written"].as_u64(), r["functions_loaded"].as_u64()),
        (Some(n), Some(0), Some(2))
    );
    drop(s);

    // --dry-run: finds the busy keys, writes nothing.
    let (s, picked) = prefilled(&keys).unwrap();
    let r = restore_json(&[fs, "--to", &s.url(), "--dry-run"], 1);
    assert_eq!((r["existing"].as_u64(), r["written"].as_u64()), (Some(3), Some(n - 3)), "{r}");
    let found: BTreeSet<(u64, Vec<u8>)> = r["existing_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["db"].as_u64().unwrap(), to_bytes(&k["key"]).unwrap()))
        .collect();
    assert_eq!(found, picked.iter().cloned().collect());
    let mut total = 0;
    for db in 0..4 {
        s.select(db);
        total += s.cmd(&[b"DBSIZE"]).as_int().unwrap();
    }
    assert_eq!(total, 4);
    restore_json(&[fs, "--to", &s.url(), "--dry-run", "--on-busy-key", "skip"], 0);
}

#[test]
fn expired_keys_and_ttl_shift() {
    let f = common::testdata("all-types.rdb");
    let fs = f.to_str().unwrap();
    let keys = file_keys(&f);
    // "Now" in 2101: every TTL before it has passed (the file's relative ones and some absolute).
    let now_ms = 4_133_980_800_000i64;
    let gone: Vec<_> = keys.iter().filter(|k| k.expire_at_ms.is_some_and(|t| t < now_ms)).collect();
    assert!(gone.len() >= 7);
    let Some(s) = RedisServer::start(&[]) else { return };
    let r = restore_json(&[fs, "--to", &s.url(), "--now", "4133980800"], 0);
    assert_eq!(r["skipped_expired"].as_u64(), Some(gone.len() as u64));
    assert_eq!(r["written"].as_u64(), Some((keys.len() - gone.len()) as u64));
    for FileKey { db, key, expire_at_ms: t, .. } in &keys {
        assert_eq!(exists(&s, *db, key), !t.is_some_and(|t| t < now_ms), "{key:?}");
    }
    drop(s);

    // --ttl-shift moves every expire time; --expired include sends keys whose TTL passed
    // (the server drops them).
    let f = common::testdata("small-db0.rdb");
    let keys = file_keys(&f);
    let FileKey { db, key, expire_at_ms: t, .. } = keys.iter().find(|k| k.expire_at_ms.is_some()).unwrap().clone();
    let s = RedisServer::start(&[]).unwrap();
    restore_json(&[f.to_str().unwrap(), "--to", &s.url(), "--ttl-shift", "1d"], 0);
    s.select(db);
    assert_eq!(s.cmd(&[b"PEXPIRETIME", &key]).as_int(), Some(t.unwrap() + 86_400_000));
    let s2 = RedisServer::start(&[]).unwrap();
    let shift = format!("-{}s", t.unwrap() / 1000 - 1_000_000_000);
    let r = restore_json(&[f.to_str().unwrap(), "--to", &s2.url(), "--ttl-shift", &shift], 0);
    assert_eq!(r["skipped_expired"].as_u64(), Some(1));
    let r = restore_json(
        &[
            f.to_str().unwrap(),
            "--to",
            &s2.url(),
            "--ttl-shift",
            &shift,
            "--expired",
            "include",
            "--on-busy-key",
            "skip",
        ],
        0,
    );
    assert_eq!((r["skipped_busy"].as_u64(), r["written"].as_u64()), (Some(keys.len() as u64 - 1), Some(1)));
    assert!(!exists(&s2, db, &key));
}

#[test]
fn filters_select_what_is_restored() {
    let f = all_types();
    let Some(s) = RedisServer::start(&[]) else { return };
    let keys = file_keys(&f);
    let r = restore_json(&[f.to_str().unwrap(), "--to", &s.url(), "--db", "2", "--type", "hash", "--no-functions"], 0);
    let want = keys.iter().filter(|k| k.db == 2).count() as u64;
    assert!(r["written"].as_u64().unwrap() < want && r["written"].as_u64().unwrap() > 0);
    s.select(2);
    assert_eq!(s.cmd(&[b"DBSIZE"]).as_int(), r["written"].as_u64().map(|v| v as i64));
    s.select(0);
    assert_eq!(s.cmd(&[b"DBSIZE"]).as_int(), Some(0));
    assert_eq!(s.cmd(&[b"FUNCTION", b"LIST"]), Resp::Array(Some(vec![])));
    // --verify: the restored keys equal the file's, within the same filters.
    let args =
        [f.to_str().unwrap(), "--to", &s.url(), "--db", "2", "--type", "hash", "--on-busy-key", "skip", "--verify"];
    let r = restore_json(&args, 0);
    assert_eq!(r["verify"]["differences"].as_u64(), Some(0), "{r}");
    // A key the target holds otherwise (kept by skip) is a difference.
    let hash = keys.iter().find(|k| k.db == 2 && k.key.starts_with(b"h")).unwrap();
    s.select(2);
    s.cmd(&[b"DEL", &hash.key]);
    s.cmd(&[b"SET", &hash.key, b"other"]);
    let r = restore_json(&args, 1);
    assert_eq!(r["verify"]["differences"].as_u64(), Some(1), "{r}");
    let o = rdbtool(&["restore", f.to_str().unwrap(), "--to", &s.url(), "--verify", "--ttl-shift", "1h"]);
    assert_eq!(o.status.code(), Some(2));
}

// Bad targets: exit 2, a clear message, within bounded time.

fn fake_server(reply: fn(&[u8]) -> Option<Vec<u8>>) -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().take(10) {
            let Ok(mut c) = conn else { continue };
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = c.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    if let Some(r) = reply(&chunk[..n])
                        && c.write_all(&r).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn assert_cannot_run(args: &[&str], env: &[(&str, &str)], what: &str, needle: &str) {
    let t = Instant::now();
    let o = rdbtool_env(args, env);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{what}: stdout {} stderr {err}", text(&o.stdout));
    assert!(err.starts_with("rdbtool restore: "), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(err.to_lowercase().contains(needle), "{what}: expected {needle:?} in {err}");
    assert!(t.elapsed() < Duration::from_secs(20), "{what}: took {:?}", t.elapsed());
}

#[test]
fn bad_targets_cannot_run() {
    let f = common::testdata("small-db0.rdb");
    let fs = f.to_str().unwrap();
    let to = |port: u16| format!("redis://127.0.0.1:{port}");
    let free = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    assert_cannot_run(&["restore", fs, "--to", &to(free), "--timeout", "2"], &[], "closed port", "connect");
    let garbage = fake_server(|_| Some(b"\x00\xffnot resp\r\n".to_vec()));
    assert_cannot_run(&["restore", fs, "--to", &to(garbage), "--timeout", "2"], &[], "garbage", "resp");
    let silent = fake_server(|_| None);
    assert_cannot_run(&["restore", fs, "--to", &to(silent), "--timeout", "2"], &[], "silent", "timeout");
    let no_info = fake_server(|_| Some(b"+OK\r\n".to_vec()));
    assert_cannot_run(&["restore", fs, "--to", &to(no_info), "--timeout", "2"], &[], "INFO not a string", "info");
    let Some(s) = RedisServer::start(&[]) else { return };
    // (Set after start: the harness's readiness PING has no password; its connection stays in.)
    s.cmd(&[b"CONFIG", b"SET", b"requirepass", b"right"]);
    assert_cannot_run(&["restore", fs, "--to", &s.url()], &[("REDISCLI_AUTH", "wrong")], "auth", "auth");
    // Without a password: INFO refused.
    assert_cannot_run(&["restore", fs, "--to", &s.url()], &[], "no auth", "noauth");
    let r = rdbtool_env(&["restore", fs, "--to", &s.url()], &[("REDISCLI_AUTH", "right")]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    // Arguments.
    assert_cannot_run(&["restore", fs], &[], "no target", "no target");
    assert_cannot_run(&["restore", fs, "--to", &format!("{}/3", s.url())], &[], "url db", "database 3");
    assert_cannot_run(&["restore", "/nonexistent.rdb", "--to", &s.url()], &[], "missing file", "nonexistent");
}

#[test]
fn export_plain_commands_honour_the_busy_key_policy() {
    let f = common::testdata("small-db0.rdb");
    let fs = f.to_str().unwrap();
    let o = rdbtool(&["export", "--format", "resp", "--on-busy-key", "skip", fs]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--restore"), "{}", text(&o.stderr));
    let o = rdbtool(&["export", "--format", "resp", "--on-busy-key", "rewrite", "--no-functions", fs]);
    assert!(o.status.success());
    // Piped twice into one server: lists do not double.
    let Some(s) = RedisServer::start(&[]) else { return };
    for _ in 0..2 {
        let (errors, replies) = common::redis_cli_pipe(s.port, &o.stdout);
        assert_eq!(errors, 0, "{replies} replies");
    }
    // (Plain streams get the load time as consumer seen time.)
    let (code, d) = diff_kinds(&f, &s, &["--ignore-stream-times"]);
    assert_eq!((code, d.len()), (0, 0), "{d:?}");
}

// A 3-master cluster.

struct Cluster {
    nodes: Vec<RedisServer>,
}

impl Cluster {
    /// The library's throwaway cluster (slots assigned, `cluster_state:ok` and one slot map
    /// on every node when it returns).
    fn start() -> Option<Cluster> {
        Some(Cluster { nodes: RedisServer::cluster(3, &[])? })
    }

    /// Slot -> port of its master, as `n` sees it.
    fn owner_map(&self, n: &RedisServer) -> Vec<u16> {
        let Resp::Array(Some(ranges)) = n.cmd(&[b"CLUSTER", b"SLOTS"]) else { panic!("CLUSTER SLOTS") };
        let mut owner = vec![0u16; 16384];
        for r in &ranges {
            let Resp::Array(Some(r)) = r else { panic!() };
            let Resp::Array(Some(m)) = &r[2] else { panic!() };
            let port = m[1].as_int().unwrap() as u16;
            for s in r[0].as_int().unwrap()..=r[1].as_int().unwrap() {
                owner[s as usize] = port;
            }
        }
        owner
    }

    fn node(&self, port: u16) -> &RedisServer {
        self.nodes.iter().find(|n| n.port == port).unwrap()
    }

    fn id(n: &RedisServer) -> Vec<u8> {
        n.cmd(&[b"CLUSTER", b"MYID"]).as_bytes().unwrap().to_vec()
    }

    /// Every key is on the master of its slot: per node, the keys of the slots it owns add up
    /// to all its keys.
    fn assert_keys_on_owners(&self) -> i64 {
        let owner = self.owner_map(&self.nodes[0]);
        let mut total = 0;
        for n in &self.nodes {
            let dbsize = n.cmd(&[b"DBSIZE"]).as_int().unwrap();
            let mut owned = 0;
            for (s, &p) in owner.iter().enumerate() {
                if p == n.port {
                    owned += n.cmd(&[b"CLUSTER", b"COUNTKEYSINSLOT", s.to_string().as_bytes()]).as_int().unwrap();
                }
            }
            assert_eq!(owned, dbsize, "node {} holds keys of slots it does not own", n.port);
            total += dbsize;
        }
        total
    }
}

#[test]
fn restore_into_a_cluster() {
    let Some(c) = Cluster::start() else { return };
    let f = all_types();
    let fs = f.to_str().unwrap();
    let to = c.nodes[1].url();
    let keys = file_keys(&f);
    let db0 = keys.iter().filter(|k| k.db == 0).count() as u64;
    // Several databases: refused, with the list.
    let o = rdbtool(&["restore", fs, "--to", &to]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("db 1: 45 keys") && err.contains("--into-db0"), "{err}");
    // Into db 0, keys on their masters, functions on every master.
    let r = restore_json(&[fs, "--to", &to, "--db", "0"], 0);
    assert_eq!((r["written"].as_u64(), r["functions_loaded"].as_u64()), (Some(db0), Some(6)), "{r}");
    assert_eq!(r["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(c.assert_keys_on_owners(), db0 as i64);
    for n in &c.nodes {
        assert!(n.cmd(&[b"DBSIZE"]).as_int().unwrap() > 10);
    }
    let (code, d) = diff_kinds(&f, &c.nodes[2], &["--db", "0"]);
    assert_eq!((code, d.len()), (0, 0), "{d:?}");
    // db 1 mapped to db 0 with --db 1: a new set of keys, busy ones counted under skip.
    let r = restore_json(&[fs, "--to", &to, "--db", "1", "--on-busy-key", "skip", "--no-functions"], 0);
    assert_eq!(r["written"].as_u64().unwrap() + r["skipped_busy"].as_u64().unwrap(), 45);
    // --into-db0: keys in several dbs are conflicts, refused by default, renamed on request.
    let o = rdbtool(&["restore", fs, "--to", &to, "--into-db0", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    assert!(text(&o.stderr).contains("--on-conflict"), "{}", text(&o.stderr));
    let r = restore_json(&[fs, "--to", &to, "--into-db0", "--on-conflict", "first", "--dry-run"], 1);
    assert!(r["conflicts_dropped"].as_u64().unwrap() > 0, "{r}");
}

/// A Valkey 9 cluster serving several databases (`cluster-databases`): keys keep their
/// databases, as on a standalone server, and diff finds the cluster identical to the file. With
/// the default (one database) the file is refused, as for a Redis cluster.
#[test]
fn restore_into_a_valkey_9_cluster_with_several_databases() {
    let Some(bin) = common::other_server("valkey-9.1.2") else { return };
    let f = all_types();
    let fs = f.to_str().unwrap();
    let mut per_db: BTreeMap<u64, i64> = BTreeMap::new();
    for k in file_keys(&f) {
        *per_db.entry(k.db).or_default() += 1;
    }
    assert!(per_db.len() > 1, "{per_db:?}");
    let total: i64 = per_db.values().sum();

    let one = RedisServer::cluster_of(&bin, 3, &[]);
    let o = rdbtool(&["restore", fs, "--to", &one[0].url()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    assert!(text(&o.stderr).contains("only db 0"), "{}", text(&o.stderr));
    drop(one);

    let nodes = RedisServer::cluster_of(&bin, 3, &["--cluster-databases", "16"]);
    let to = nodes[1].url();
    let r = restore_json(&[fs, "--to", &to], 0);
    assert_eq!((r["written"].as_u64(), r["failed"].as_u64()), (Some(total as u64), Some(0)), "{r}");
    for (&db, &n) in &per_db {
        let mut held = 0;
        for node in &nodes {
            node.select(db);
            held += node.cmd(&[b"DBSIZE"]).as_int().unwrap();
            node.select(0);
        }
        assert_eq!(held, n, "db {db}");
    }
    let (code, d) = diff_kinds(&f, &nodes[2], &[]);
    assert_eq!((code, d.len()), (0, 0), "{d:?}");

    // Its backup, one file per shard, restores into a throwaway Valkey 9 cluster (whose nodes
    // serve 16 databases) and is identical there.
    let set = tempfile::tempdir().unwrap();
    let mut shards = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(node.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
        let to = set.path().join(format!("shard{i}.rdb"));
        std::fs::copy(node.path().join("dump.rdb"), &to).unwrap();
        shards.push(to.to_str().unwrap().to_owned());
    }
    let mut args = vec!["restore-test", "--redis-server", bin.to_str().unwrap()];
    args.extend(shards.iter().map(String::as_str));
    let o = rdbtool(&args);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.contains(&format!("valkey-server 9.1.2 masters loaded {total} keys")), "{out}");
    assert!(out.contains("IDENTICAL"), "{out}");
}

#[test]
fn slot_migration_during_a_cluster_restore() {
    let Some(c) = Cluster::start() else { return };
    // A file of 60000 small keys, written by a real server.
    let src = RedisServer::start(&["--enable-debug-command", "yes"]).unwrap();
    assert_eq!(src.cmd(&[b"DEBUG", b"POPULATE", b"60000", b"k", b"8"]), Resp::Simple("OK".into()));
    assert_eq!(src.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
    let f = src.path().join("dump.rdb");
    let owner = c.owner_map(&c.nodes[0]);
    let a = c.nodes[0].port;
    let b = c.nodes[1].port;
    let (na, nb) = (c.node(a), c.node(b));
    let (ida, idb) = (Cluster::id(na), Cluster::id(nb));
    let a_slots: Vec<usize> = (0..16384).filter(|&s| owner[s] == a).collect();
    // One slot half-migrated before the restore starts: keys of it must follow ASK.
    let ask_slot = a_slots[0].to_string();
    assert!(nb.cmd(&[b"CLUSTER", b"SETSLOT", ask_slot.as_bytes(), b"IMPORTING", &ida]).as_bytes().is_some());
    assert!(na.cmd(&[b"CLUSTER", b"SETSLOT", ask_slot.as_bytes(), b"MIGRATING", &idb]).as_bytes().is_some());

    let mut child = spawn_restore(&[f.to_str().unwrap(), "--to", &na.url(), "--batch", "16", "--json"]);
    // While it runs: move 300 more slots from A to B, key by key, as redis-cli --cluster does.
    let deadline = Instant::now() + Duration::from_secs(30);
    while na.cmd(&[b"DBSIZE"]).as_int().unwrap() < 200 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    for &s in &a_slots[1..301] {
        let s = s.to_string();
        let s = s.as_bytes();
        nb.cmd(&[b"CLUSTER", b"SETSLOT", s, b"IMPORTING", &ida]);
        na.cmd(&[b"CLUSTER", b"SETSLOT", s, b"MIGRATING", &idb]);
        loop {
            let Resp::Array(Some(keys)) = na.cmd(&[b"CLUSTER", b"GETKEYSINSLOT", s, b"100"]) else { panic!() };
            if keys.is_empty() {
                break;
            }
            let port = b.to_string();
            let mut m: Vec<&[u8]> = vec![b"MIGRATE", b"127.0.0.1", port.as_bytes(), b"", b"0", b"5000", b"KEYS"];
            m.extend(keys.iter().map(|k| k.as_bytes().unwrap()));
            assert_eq!(na.cmd(&m), Resp::Simple("OK".into()));
        }
        for n in &c.nodes {
            n.cmd(&[b"CLUSTER", b"SETSLOT", s, b"NODE", &idb]);
        }
    }
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let mut err = Vec::new();
    child.stderr.take().unwrap().read_to_end(&mut err).unwrap();
    assert!(child.wait().unwrap().success(), "{}{}", text(&out), text(&err));
    let r: Json = serde_json::from_slice(&out).unwrap();
    assert_eq!(r["written"].as_u64(), Some(60000), "{r}");
    assert!(r["asked"].as_u64().unwrap() > 0, "{r}");
    eprintln!("redirects: moved {} asked {}", r["moved"], r["asked"]);
    // End the half-done migration: every key of that slot went to B already.
    assert_eq!(na.cmd(&[b"CLUSTER", b"COUNTKEYSINSLOT", ask_slot.as_bytes()]).as_int(), Some(0));
    for n in &c.nodes {
        n.cmd(&[b"CLUSTER", b"SETSLOT", ask_slot.as_bytes(), b"NODE", &idb]);
    }
    assert_eq!(c.assert_keys_on_owners(), 60000);
    let (code, d) = diff_kinds(&f, &c.nodes[2], &[]);
    assert_eq!((code, d.len()), (0, 0), "{d:?}");
}

// Older targets (Redis 6.0 / 6.2, Valkey 8.1 from scripts/ensure_servers.sh), each a throwaway
// server of tests/common (`RedisServer::start_of`).

/// The older targets, by name (installed on first use; `None`: a recorded skip).
fn other_servers() -> Option<Vec<(&'static str, PathBuf)>> {
    ["redis-6.0.9", "redis-6.2", "valkey-8.1.8"].into_iter().map(|n| Some((n, common::other_server(n)?))).collect()
}

/// One older target (see `other_servers`).
fn redis_62() -> Option<PathBuf> {
    common::other_server("redis-6.2")
}

#[test]
fn older_targets_get_plain_commands_for_newer_encodings() {
    let Some(servers) = other_servers() else { return };
    let f = all_types();
    let fs = f.to_str().unwrap();
    let n = file_keys(&f).len() as u64;
    for (name, bin) in servers {
        let s = RedisServer::start_of(&bin, &[]);
        let r = restore_json(&[fs, "--to", &s.url(), "--no-functions"], 0);
        assert_eq!((r["written"].as_u64(), r["failed"].as_u64()), (Some(n), Some(0)), "{name}: {r}");
        let plain = r["sent_as_commands"].as_u64().unwrap();
        if name.starts_with("redis") {
            // RDB 9: listpacks (zsets, hashes), quicklist 2 lists, stream v2 go as commands.
            assert_eq!(r["payload_rdb_version"].as_u64(), Some(9));
            assert!(plain > 50 && plain < n, "{name}: {plain} keys as commands");
        } else {
            assert_eq!(plain, 0, "{name}");
        }
        // Plain streams get the load time as consumer seen time (nothing else differs).
        let o = rdbtool(&["diff", fs, &s.url(), "--ignore-stream-times"]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}{}", text(&o.stdout), text(&o.stderr));
        // Function libraries: named as failed on servers without functions.
        let r = restore_json(
            &[fs, "--to", &s.url(), "--on-busy-key", "skip"],
            if name.starts_with("redis") { 1 } else { 0 },
        );
        assert_eq!(r["skipped_busy"].as_u64(), Some(n), "{name}");
        if name.starts_with("redis") {
            assert_eq!(r["functions_failed"].as_u64(), Some(2), "{name}: {r}");
            assert!(r["failures"][0]["error"].as_str().unwrap().contains("no functions"));
        } else {
            assert_eq!(r["functions_loaded"].as_u64(), Some(2), "{name}: {r}");
        }
    }
}

/// `--expired include` with keys that go as plain commands (RDB 10 lists into Redis 6.2) and
/// whose TTL has passed: what RESTORE does with such a TTL (busy-key check first, then the value
/// dropped; under REPLACE the target's key deleted), without building the value.
#[test]
fn expired_keys_sent_as_plain_commands_do_what_restore_does() {
    let Some(bin) = redis_62() else { return };
    let Some(src) = RedisServer::start(&[]) else { return };
    // 20 lists and 20 strings expiring in 2100, one list without a TTL.
    let setup = b"for i=1,20 do redis.call('RPUSH','l:'..i,'a','b','c') redis.call('PEXPIREAT','l:'..i,4102444800000) \
                  redis.call('SET','s:'..i,'v') redis.call('PEXPIREAT','s:'..i,4102444800000) end \
                  redis.call('RPUSH','p','x') return 1";
    assert_eq!(src.cmd(&[b"EVAL", setup, b"0"]), Resp::Int(1));
    assert_eq!(src.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
    let f = src.path().join("dump.rdb");
    let fs = f.to_str().unwrap();
    // Back to 2001: every TTL has passed, for this clock and the server's.
    let shift = format!("-{}s", 4_102_444_800i64 - 1_000_000_000);
    let t = RedisServer::start_of(&bin, &[]);
    let to = t.url();
    let fill = || {
        cli(&t, &["FLUSHALL"]);
        cli(&t, &["SET", "l:1", "theirs"]);
        cli(&t, &["RPUSH", "l:2", "theirs"]);
    };
    let base = [fs, "--to", &to, "--ttl-shift", &shift, "--expired", "include", "--no-functions"];
    let with = |extra: &[&'static str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        a
    };
    let untouched = || {
        assert_eq!(cli(&t, &["GET", "l:1"]), "theirs");
        assert_eq!(cli(&t, &["LRANGE", "l:2", "0", "-1"]), "theirs");
    };

    // panic: a busy key is still busy (the target's key untouched, the run stops, exit 1).
    fill();
    let r = restore_json(&with(&["--batch", "1"]), 1);
    let busy = to_bytes(&r["busy_key"]["key"]).unwrap();
    assert!(busy == b"l:1" || busy == b"l:2", "{r}");
    untouched();

    // skip: both busy keys kept and counted; no expired list built, no temporary key left.
    fill();
    let r = restore_json(&with(&["--on-busy-key", "skip"]), 0);
    assert_eq!(r["skipped_busy"].as_u64(), Some(2), "{r}");
    assert_eq!(r["expired_unbuilt"].as_u64(), Some(20), "{r}");
    assert_eq!(r["failed"].as_u64(), Some(0), "{r}");
    assert_eq!(r["sent_as_commands"].as_u64(), Some(1), "{r}");
    untouched();
    assert_eq!(cli(&t, &["LRANGE", "p", "0", "-1"]), "x");
    assert_eq!(cli(&t, &["DBSIZE"]), "3");

    // rewrite: the target's keys of those names deleted, as RESTORE ... REPLACE would.
    fill();
    let r = restore_json(&with(&["--on-busy-key", "rewrite"]), 0);
    assert_eq!((r["replaced"].as_u64(), r["expired_unbuilt"].as_u64()), (Some(2), Some(20)), "{r}");
    assert_eq!(r["failed"].as_u64(), Some(0), "{r}");
    assert_eq!(cli(&t, &["EXISTS", "l:1", "l:2"]), "0");
    assert_eq!(cli(&t, &["DBSIZE"]), "1");
}

#[test]
fn target_killed_in_the_middle_and_rate_limit() {
    let Some(src) = RedisServer::start(&["--enable-debug-command", "yes"]) else { return };
    assert_eq!(src.cmd(&[b"DEBUG", b"POPULATE", b"50000", b"k", b"8"]), Resp::Simple("OK".into()));
    assert_eq!(src.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
    let f = src.path().join("dump.rdb");
    let fs = f.to_str().unwrap();

    // --max-ops: 2000 keys at 4000/s take about half a second.
    let s = RedisServer::start(&[]).unwrap();
    let t = Instant::now();
    let r = restore_json(&[fs, "--to", &s.url(), "--limit", "2000", "--max-ops", "4000"], 0);
    assert_eq!(r["written"].as_u64(), Some(2000));
    assert!(t.elapsed() >= Duration::from_millis(450), "{:?}", t.elapsed());

    // The target goes away while keys are sent: a clear error, exit 1, counts of what is known.
    let s2 = RedisServer::start(&[]).unwrap();
    let child = spawn_restore(&[fs, "--to", &s2.url(), "--max-ops", "20000", "--json", "--timeout", "5"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while s2.cmd(&[b"DBSIZE"]).as_int().unwrap() < 1000 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    let o = s2.cli(&["SHUTDOWN", "NOSAVE"]);
    let _ = o;
    let t = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.starts_with("rdbtool restore: ") && !err.contains("panicked"), "{err}");
    let r: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!r["errors"].as_array().unwrap().is_empty(), "{r}");
    let w = r["written"].as_u64().unwrap();
    assert!((1000..50000).contains(&w), "{r}");
    assert_eq!(r["written_keys"].as_array().unwrap().len() as u64, w);
}

// --journal / --resume.

/// A file of 40000 strings and 2000 lists (of 3 elements: a list restored twice would show it).
fn resume_source() -> Option<(RedisServer, PathBuf)> {
    let src = RedisServer::start(&["--enable-debug-command", "yes"])?;
    assert_eq!(src.cmd(&[b"DEBUG", b"POPULATE", b"40000", b"k", b"16"]), Resp::Simple("OK".into()));
    let lists = b"for i=1,2000 do redis.call('RPUSH','list:'..i,'a','b',i) end return 1";
    assert_eq!(src.cmd(&[b"EVAL", lists, b"0"]), Resp::Int(1));
    assert_eq!(src.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
    let f = src.path().join("dump.rdb");
    Some((src, f))
}

fn spawn_restore(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_rdbtool"))
        .arg("restore")
        .args(args)
        .env_remove("REDISCLI_AUTH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_keys(t: &RedisServer, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while dbsize(t) < n {
        assert!(Instant::now() < deadline, "the restore did not get to {n} keys");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `redis-cli ARGS` against `t` (a connection of its own each time: `CLIENT KILL` may close
/// any other), its output trimmed.
fn cli(t: &RedisServer, args: &[&str]) -> String {
    text(&t.cli(args).stdout).trim().to_owned()
}

/// DBSIZE (0 while the server is not answering).
fn dbsize(t: &RedisServer) -> u64 {
    cli(t, &["DBSIZE"]).parse().unwrap_or(0)
}

/// `rdbtool diff FILE URL`: exit 0 (identical).
fn assert_identical(f: &Path, to: &str) {
    let o = rdbtool(&["diff", f.to_str().unwrap(), to]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
}

#[test]
fn resume_after_the_target_dies_and_after_sigkill() {
    let Some((_src, f)) = resume_source() else { return };
    let fs = f.to_str().unwrap();
    let total = file_keys(&f).len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("restore.journal");
    let js = journal.to_str().unwrap();

    // 1. The target is killed (SIGKILL) in the middle: a clear error, exit 1.
    let Some(mut t) = RedisServer::persistent(None, &[]) else { return };
    let to = t.url();
    let child = spawn_restore(&[fs, "--to", &to, "--journal", js, "--max-ops", "10000", "--timeout", "5"]);
    wait_for_keys(&t, 12000);
    t.kill();
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}{err}", text(&o.stdout));
    assert!(err.starts_with("rdbtool restore: ") && !err.contains("panicked"), "{err}");
    assert!(text(&o.stdout).contains("--resume"), "{}", text(&o.stdout));
    let j: Json = serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    assert_eq!(j["complete"], Json::Bool(false), "{j}");
    let acked = j["acked"].as_u64().unwrap();
    assert!(acked > 0 && acked < std::fs::metadata(&f).unwrap().len(), "{j}");
    // Restarted on its append-only file: --resume completes it, nothing lost or doubled.
    t.restart();
    let before = dbsize(&t);
    assert!(before >= 12000 && before < total, "{before}");
    let r = restore_json(&[fs, "--to", &to, "--journal", js, "--resume"], 0);
    let (written, already, found) = (
        r["written"].as_u64().unwrap(),
        r["already_restored"].as_u64().unwrap(),
        r["resumed_existing"].as_u64().unwrap(),
    );
    assert!(already > 0, "{r}");
    assert_eq!(written + already + found, total, "{r}");
    assert_eq!(r["skipped_busy"].as_u64(), Some(0), "{r}");
    assert_identical(&f, &to);
    let j: Json = serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    assert_eq!(j["complete"], Json::Bool(true), "{j}");
    // A complete journal: resumed again, nothing is sent.
    let r = restore_json(&[fs, "--to", &to, "--journal", js, "--resume"], 0);
    assert_eq!((r["written"].as_u64(), r["already_restored"].as_u64()), (Some(0), Some(total)), "{r}");

    // 2. rdbtool itself is killed (SIGKILL) in the middle; the same command with --resume.
    cli(&t, &["FLUSHALL"]);
    let mut child = spawn_restore(&[fs, "--to", &to, "--journal", js, "--max-ops", "10000"]);
    wait_for_keys(&t, 15000);
    // At least one journal write after the first keys were acknowledged (once a second).
    std::thread::sleep(Duration::from_millis(1200));
    child.kill().unwrap();
    child.wait().unwrap();
    let r = restore_json(&[fs, "--to", &to, "--journal", js, "--resume"], 0);
    assert!(r["already_restored"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(
        r["written"].as_u64().unwrap()
            + r["already_restored"].as_u64().unwrap()
            + r["resumed_existing"].as_u64().unwrap(),
        total,
        "{r}"
    );
    assert_identical(&f, &to);

    // A journal of other inputs or options is refused.
    let o = rdbtool(&["restore", fs, "--to", &to, "--journal", js, "--resume", "--db", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("other options"), "{}", text(&o.stderr));
    let o = rdbtool(&["restore", fs, "--to", &to, "--journal", dir.path().join("none").to_str().unwrap(), "--resume"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("cannot read the journal"), "{}", text(&o.stderr));
}

/// `--connections 4` into Redis 6.2, where the lists of the RDB 10 file go as plain commands
/// (not idempotent): the target is killed in the middle, restarted on its append-only file, and
/// `--resume` completes it with nothing lost and no list element twice.
#[test]
fn resume_with_four_connections_and_plain_commands_after_the_target_dies() {
    let Some(bin) = redis_62() else { return };
    let Some((_src, f)) = resume_source() else { return };
    let fs = f.to_str().unwrap();
    let total = file_keys(&f).len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let js = dir.path().join("restore.journal").to_str().unwrap().to_owned();
    let mut t = RedisServer::persistent(Some(&bin), &[]).unwrap();
    let to = t.url();
    let args = [fs, "--to", &to, "--journal", &js, "--connections", "4", "--no-functions"];
    let mut first = args.to_vec();
    first.extend(["--max-ops", "10000", "--timeout", "5", "--json"]);
    let child = spawn_restore(&first);
    wait_for_keys(&t, 12000);
    t.kill();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
    let r1: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r1["unconfirmed"].as_u64().unwrap() + r1["not_sent"].as_u64().unwrap() > 0, "{r1}");
    let j: Json = serde_json::from_slice(&std::fs::read(&js).unwrap()).unwrap();
    assert_eq!(j["complete"], Json::Bool(false), "{j}");
    t.restart();
    let before = dbsize(&t);
    assert!(before >= 12000 && before < total, "{before}");
    let mut resume = args.to_vec();
    resume.push("--resume");
    let r = restore_json(&resume, 0);
    let (written, already, found) = (
        r["written"].as_u64().unwrap(),
        r["already_restored"].as_u64().unwrap(),
        r["resumed_existing"].as_u64().unwrap(),
    );
    // What the journal called acknowledged is on the server (the diff below), and no more.
    assert!(already > 0 && already <= before, "{r}");
    assert_eq!(written + already + found, total, "{r}");
    assert_eq!(r["skipped_busy"].as_u64(), Some(0), "{r}");
    assert!(r["sent_as_commands"].as_u64().unwrap() > 0, "{r}");
    // Each list holds its 3 elements once.
    let twice = "local n=0 for i=1,2000 do if redis.call('LLEN','list:'..i)~=3 then n=n+1 end end return n";
    assert_eq!(cli(&t, &["EVAL", twice, "0"]), "0");
    assert_identical(&f, &to);
    let j: Json = serde_json::from_slice(&std::fs::read(&js).unwrap()).unwrap();
    assert_eq!(j["complete"], Json::Bool(true), "{j}");

    // The target's append-only file (one file before Redis 7, no directory) restore-tests on
    // its own server version, every key there.
    let aof = t.path().join("appendonly.aof");
    let o = rdbtool(&["restore-test", "--redis-server", bin.to_str().unwrap(), aof.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.contains(&format!("loaded {total} keys")), "{out}");
}

/// Connections killed by the target in the middle (`CLIENT KILL`): each worker opens a new one
/// and sends what had no reply again; the run completes, nothing lost or doubled (the lists go
/// as plain commands into Redis 6.2).
#[test]
fn lost_connections_are_opened_again_and_unanswered_keys_resent() {
    lost_connections(&[]);
}

/// The same under `--on-busy-key rewrite` into an empty target: keys sent again and found
/// written by the lost connection's send are not counted as replaced (nothing existed before).
#[test]
fn keys_sent_again_after_a_lost_connection_are_not_counted_replaced() {
    lost_connections(&["--on-busy-key", "rewrite"]);
}

fn lost_connections(policy: &[&str]) {
    let Some(bin) = redis_62() else { return };
    let Some((_src, f)) = resume_source() else { return };
    let fs = f.to_str().unwrap();
    let total = file_keys(&f).len() as u64;
    let t = RedisServer::start_of(&bin, &[]);
    let to = t.url();
    let dir = tempfile::tempdir().unwrap();
    let js = dir.path().join("j").to_str().unwrap().to_owned();
    let mut args =
        vec![fs, "--to", &to, "--connections", "4", "--no-functions", "--max-ops", "20000", "--json", "--journal", &js];
    args.extend_from_slice(policy);
    let child = spawn_restore(&args);
    wait_for_keys(&t, 8000);
    assert_ne!(cli(&t, &["CLIENT", "KILL", "TYPE", "normal"]), "0");
    wait_for_keys(&t, 20000);
    assert_ne!(cli(&t, &["CLIENT", "KILL", "TYPE", "normal"]), "0");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    let r: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["reconnected"].as_u64().unwrap() >= 2, "{r}");
    assert_eq!(r["written"].as_u64().unwrap() + r["resumed_existing"].as_u64().unwrap(), total, "{r}");
    assert_eq!((r["skipped_busy"].as_u64(), r["failed"].as_u64()), (Some(0), Some(0)), "{r}");
    assert_eq!(r["replaced"].as_u64(), Some(0), "{r}");
    let twice = "local n=0 for i=1,2000 do if redis.call('LLEN','list:'..i)~=3 then n=n+1 end end return n";
    assert_eq!(cli(&t, &["EVAL", twice, "0"]), "0");
    assert_eq!(dbsize(&t), total);
    assert_identical(&f, &to);
    // The journal saw every answer, resent ones included.
    let j: Json = serde_json::from_slice(&std::fs::read(&js).unwrap()).unwrap();
    let size = std::fs::metadata(&f).unwrap().len();
    assert_eq!((j["complete"].as_bool(), j["acked"].as_u64()), (Some(true), Some(size)), "{j}");
}

#[test]
fn resume_after_a_busy_key_stop_follows_the_new_policy() {
    let Some((_src, f)) = resume_source() else { return };
    let fs = f.to_str().unwrap();
    let total = file_keys(&f).len() as u64;
    let keys = file_keys(&f);
    let dir = tempfile::tempdir().unwrap();
    let js = dir.path().join("j").to_str().unwrap().to_owned();
    let Some(s) = RedisServer::start(&[]) else { return };
    // A key of the target's own, two thirds into the file.
    let busy = &keys[keys.len() * 2 / 3].key;
    s.cmd(&[b"SET", busy, b"the target's"]);
    let r = restore_json(&[fs, "--to", &s.url(), "--journal", &js], 1);
    assert_eq!(to_bytes(&r["busy_key"]["key"]).unwrap(), *busy, "{r}");
    // The same policy stops at the same key again.
    let r = restore_json(&[fs, "--to", &s.url(), "--journal", &js, "--resume"], 1);
    assert_eq!(to_bytes(&r["busy_key"]["key"]).unwrap(), *busy, "{r}");
    // Resumed under rewrite: that key is replaced, the rest goes on; the file and the server agree.
    // Keys the stopped runs may have written are found existing, not counted as replaced: the
    // busy key is the only one the target held before.
    let r = restore_json(&[fs, "--to", &s.url(), "--journal", &js, "--resume", "--on-busy-key", "rewrite"], 0);
    let n = |f: &str| r[f].as_u64().unwrap();
    assert_eq!(n("replaced") + n("written") + n("already_restored") + n("resumed_existing"), total, "{r}");
    assert_eq!(n("replaced"), 1, "{r}");
    let (code, d) = diff(&f, &s);
    assert_eq!((code, d.len()), (0, 0), "{d:?}");
}

// Values longer than the target's proto-max-bulk-len.

/// Bytes that LZF cannot compress (random ones).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = rdbtool::rng::Rng(seed | 1);
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

#[test]
fn values_longer_than_proto_max_bulk_len() {
    let Some(src) = RedisServer::start(&[]) else { return };
    let items: Vec<Vec<u8>> = (0..3).map(|i| noise(600_000, i + 7)).collect();
    assert_eq!(src.cmd(&[b"RPUSH", b"biglist", &items[0], &items[1], &items[2]]), Resp::Int(3));
    assert_eq!(src.cmd(&[b"PEXPIREAT", b"biglist", b"4102444800000"]), Resp::Int(1));
    assert_eq!(src.cmd(&[b"SET", b"bigstr", &noise(3_000_000, 3)]), Resp::Simple("OK".into()));
    assert_eq!(src.cmd(&[b"SADD", b"bigset", &noise(1_500_000, 5)]), Resp::Int(1));
    assert_eq!(src.cmd(&[b"SET", b"small", b"1"]), Resp::Simple("OK".into()));
    assert_eq!(src.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
    let f = src.path().join("dump.rdb");
    let fs = f.to_str().unwrap();
    // Redis's smallest proto-max-bulk-len.
    let Some(t) = RedisServer::start(&["--proto-max-bulk-len", "1mb"]) else { return };
    let r = restore_json(&[fs, "--to", &t.url()], 1);
    // The list (1.8 MB of payload, elements of 600 kB) goes as commands; a string of 3 MB and a
    // member of 1.5 MB cannot be held by that server at all: named, not sent.
    assert_eq!(
        (r["written"].as_u64(), r["sent_in_parts"].as_u64(), r["failed"].as_u64()),
        (Some(2), Some(1), Some(2)),
        "{r}"
    );
    assert_eq!(r["sent_as_commands"].as_u64(), Some(1), "{r}");
    let failed: BTreeSet<Vec<u8>> =
        r["failures"].as_array().unwrap().iter().map(|x| to_bytes(&x["key"]).unwrap()).collect();
    assert_eq!(failed, BTreeSet::from([b"bigstr".to_vec(), b"bigset".to_vec()]), "{r}");
    assert!(r["failures"][0]["error"].as_str().unwrap().contains("proto-max-bulk-len"), "{r}");
    let (_, d) = diff(&f, &t);
    assert_eq!(d, BTreeSet::from([(0, b"bigstr".to_vec()), (0, b"bigset".to_vec())]));
    assert_eq!(
        t.cmd(&[b"LRANGE", b"biglist", b"0", b"-1"]),
        Resp::Array(Some(items.iter().map(|i| Resp::Bulk(Some(i.clone()))).collect()))
    );
    assert_eq!(t.cmd(&[b"KEYS", b"rdbtool:*"]), Resp::Array(Some(vec![])));
    // Busy: skip keeps the target's list, rewrite replaces it (never a merge).
    t.cmd(&[b"DEL", b"biglist"]);
    t.cmd(&[b"RPUSH", b"biglist", b"theirs"]);
    let r = restore_json(&[fs, "--to", &t.url(), "--key", "big*", "--on-busy-key", "skip"], 1);
    assert_eq!(r["skipped_busy"].as_u64(), Some(1), "{r}");
    assert_eq!(t.cmd(&[b"LLEN", b"biglist"]), Resp::Int(1));
    let r = restore_json(&[fs, "--to", &t.url(), "--key", "biglist", "--on-busy-key", "rewrite"], 0);
    assert_eq!(r["replaced"].as_u64(), Some(1), "{r}");
    assert_eq!(t.cmd(&[b"LLEN", b"biglist"]), Resp::Int(3));
    assert_eq!(t.cmd(&[b"KEYS", b"rdbtool:*"]), Resp::Array(Some(vec![])));
    // The same file into a server with the default limit: every key as RESTORE.
    let Some(t2) = RedisServer::start(&[]) else { return };
    let r = restore_json(&[fs, "--to", &t2.url()], 0);
    assert_eq!((r["written"].as_u64(), r["sent_as_commands"].as_u64()), (Some(4), Some(0)), "{r}");
}
