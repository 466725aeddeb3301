//! `rdbtool diff` and `rdbtool restore-test` as processes, against real redis-servers started
//! here (standalone, a 3-master cluster, servers with other encodings) and against fake servers
//! that misbehave.

mod common;
use common::{rdbtool, rdbtool_env};

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{FileKey, RedisServer, Resp, file_keys};
use rdbtool::json::to_bytes;
use rdbtool::rdb::value::Value;
use rdbtool::rdb::{Reader, Record};
use rdbtool::redis::server::Tls;
use serde_json::Value as Json;

fn td(name: &str) -> String {
    common::testdata(name).display().to_string()
}

/// `testdata/all-types.rdb` with its relative TTLs (which pass from 2026-11-30 on) moved past
/// 2100: these tests are about comparing, not about expiry, and must not change with the date.
/// Expiry has its own tests here (`expired` differences).
fn all_types() -> PathBuf {
    common::with_future_ttls("all-types.rdb")
}

fn all_types_s() -> String {
    all_types().display().to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A diff's JSONL output: the differences (by (db, key)) and the summary line.
struct Report {
    diffs: Vec<Json>,
    summary: Json,
}

impl Report {
    fn parse(o: &Output) -> Report {
        let mut diffs = Vec::new();
        let mut summary = Json::Null;
        for l in o.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let j: Json = serde_json::from_slice(l).unwrap_or_else(|e| panic!("bad JSON line {e}: {}", text(l)));
            if j.get("summary").is_some() {
                summary = j["summary"].clone();
            } else {
                diffs.push(j);
            }
        }
        assert!(summary.is_object(), "no summary line in {}\nstderr: {}", text(&o.stdout), text(&o.stderr));
        Report { diffs, summary }
    }

    /// (db, key) -> kind, asserting that no key is listed twice.
    fn kinds(&self) -> BTreeMap<(u64, Vec<u8>), String> {
        let mut m = BTreeMap::new();
        for d in &self.diffs {
            let k = (d["db"].as_u64().unwrap(), to_bytes(&d["key"]).unwrap());
            let prev = m.insert(k.clone(), d["kind"].as_str().unwrap().to_owned());
            assert!(prev.is_none(), "key {k:?} listed twice");
        }
        m
    }

    fn n(&self, field: &str) -> u64 {
        self.summary[field].as_u64().unwrap_or_else(|| panic!("summary has no {field}: {}", self.summary))
    }
}

fn diff_jsonl(a: &str, b: &str, extra: &[&str], expect_code: i32) -> Report {
    let mut args = vec!["diff", a, b, "--jsonl"];
    args.extend_from_slice(extra);
    let o = rdbtool(&args);
    assert_eq!(
        o.status.code(),
        Some(expect_code),
        "rdbtool {args:?}\nstdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    Report::parse(&o)
}

fn sha(path: &Path) -> Vec<u8> {
    // CRC-64 of the whole file is enough to see that nothing changed it.
    rdbtool::crc::crc64(&std::fs::read(path).unwrap()).to_le_bytes().to_vec()
}

// ---------------------------------------------------------------------------------------------
// 1. A file against the server loaded from it.

#[test]
fn file_against_its_server_then_each_change_reported_once() {
    let f = all_types();
    let Some(server) = RedisServer::start_with_rdb(&f, &[]) else { return };
    let keys = file_keys(&f);
    let total = keys.len() as u64;
    let before = sha(&f);

    let r = diff_jsonl(&all_types_s(), &server.url(), &[], 0);
    assert!(r.diffs.is_empty(), "{:?}", r.diffs);
    assert_eq!((r.n("same"), r.n("keys_a"), r.n("keys_b")), (total, total, total));

    // One change of each kind.
    let hash =
        keys.iter().find(|k| k.db == 0 && k.expire_at_ms.is_none() && matches!(k.value, Value::Hash(_))).unwrap();
    let gone = keys.iter().find(|k| k.db == 1).unwrap();
    let ttl =
        keys.iter().find(|k| k.db == 3 && k.expire_at_ms.is_none() && matches!(k.value, Value::String(_))).unwrap();
    server.select(0);
    assert_eq!(server.cmd(&[b"HSET", &hash.key, b"diff:field", b"x"]), Resp::Int(1));
    server.select(1);
    assert_eq!(server.cmd(&[b"DEL", &gone.key]), Resp::Int(1));
    server.select(2);
    assert_eq!(server.cmd(&[b"SET", b"diff:new", b"1"]), Resp::Simple("OK".into()));
    server.select(3);
    assert_eq!(server.cmd(&[b"PEXPIRE", &ttl.key, b"900000000"]), Resp::Int(1));

    let expect = |a_only: &str, b_only: &str| -> BTreeMap<(u64, Vec<u8>), String> {
        [
            ((0, hash.key.clone()), "value".to_owned()),
            ((1, gone.key.clone()), a_only.to_owned()),
            ((2, b"diff:new".to_vec()), b_only.to_owned()),
            ((3, ttl.key.clone()), "ttl".to_owned()),
        ]
        .into_iter()
        .collect()
    };
    let r = diff_jsonl(&all_types_s(), &server.url(), &[], 1);
    assert_eq!(r.kinds(), expect("only_in_a", "only_in_b"));
    assert_eq!(
        (
            r.n("same"),
            r.n("only_in_a"),
            r.n("only_in_b"),
            r.n("different_value"),
            r.n("different_ttl"),
            r.n("different_type")
        ),
        (total - 3, 1, 1, 1, 1, 0)
    );
    // The value difference names the member, not the whole value.
    let v = r.diffs.iter().find(|d| d["kind"] == "value").unwrap();
    assert_eq!(v["detail"]["only_in_b"], serde_json::json!(["diff:field"]));
    assert_eq!(v["detail"]["only_in_a_count"], 0);
    assert_eq!(v["a"]["type"], "hash");
    let t = r.diffs.iter().find(|d| d["kind"] == "ttl").unwrap();
    assert!(t["a"]["expire_at_ms"].is_null() && t["b"]["expire_at_ms"].as_i64().unwrap() > rdbtool::filter::now_ms());

    // Sides swapped: A-only and B-only swap, the rest stays.
    let r = diff_jsonl(&server.url(), &all_types_s(), &[], 1);
    assert_eq!(r.kinds(), expect("only_in_b", "only_in_a"));

    // --json: one document with the same differences.
    let o = rdbtool(&["diff", &all_types_s(), &server.url(), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["differences"].as_array().unwrap().len(), 4);
    assert_eq!(doc["identical"], false);
    assert_eq!(doc["summary"]["same"], total - 3);

    // Text: one line per difference and the summary.
    let o = rdbtool(&["diff", &all_types_s(), &server.url()]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("only_in_") || l.starts_with("value") || l.starts_with("ttl")).count(),
        4,
        "{out}"
    );
    assert!(out.contains("only in A 1, only in B 1, different value 1, different type 0, different TTL 1"), "{out}");
    assert!(out.trim_end().ends_with("DIFFERENT"));

    // Filters as in export.
    let r = diff_jsonl(&all_types_s(), &server.url(), &["--db", "1"], 1);
    assert_eq!(r.kinds().into_values().collect::<Vec<_>>(), vec!["only_in_a"]);
    let r = diff_jsonl(&all_types_s(), &server.url(), &["--key", "diff:*"], 1);
    assert_eq!(r.kinds().keys().cloned().collect::<Vec<_>>(), vec![(2, b"diff:new".to_vec())]);
    assert_eq!(r.n("keys_a"), 0);
    // A database in the URL limits both sides to it.
    let r = diff_jsonl(&all_types_s(), &(server.url() + "/2"), &[], 1);
    assert_eq!(r.kinds().keys().cloned().collect::<Vec<_>>(), vec![(2, b"diff:new".to_vec())]);
    assert_eq!(r.n("keys_a"), keys.iter().filter(|k| k.db == 2).count() as u64);

    // A type change.
    server.select(2);
    server.cmd(&[b"DEL", b"diff:new"]);
    let s = keys.iter().find(|k| k.db == 2 && k.expire_at_ms.is_none() && matches!(k.value, Value::String(_))).unwrap();
    server.cmd(&[b"DEL", &s.key]);
    server.cmd(&[b"RPUSH", &s.key, b"x"]);
    let r = diff_jsonl(&all_types_s(), &server.url(), &["--db", "2"], 1);
    let d = &r.diffs[0];
    assert_eq!(
        (r.diffs.len(), d["kind"].as_str(), d["a"]["type"].as_str(), d["b"]["type"].as_str()),
        (1, Some("type"), Some("string"), Some("list"))
    );

    assert_eq!(sha(&f), before, "the input file was not modified");
}

#[test]
fn sampling_picks_the_same_keys_on_both_sides() {
    let f = all_types();
    let Some(server) = RedisServer::start_with_rdb(&f, &[]) else { return };
    let total = file_keys(&f).len() as f64;
    let r = diff_jsonl(&all_types_s(), &server.url(), &["--sample-rate", "0.3"], 0);
    let n = r.n("keys_a") as f64;
    assert!(n > total * 0.15 && n < total * 0.45, "{n} of {total}");
    assert_eq!(r.n("keys_a"), r.n("keys_b"));
    assert_eq!(r.n("same"), r.n("keys_a"));
    let r = diff_jsonl(&all_types_s(), &server.url(), &["--sample", "50"], 0);
    assert!((20..=90).contains(&r.n("keys_a")), "{}", r.summary);
    // A sampled key that changed is still found; keys outside the sample are not looked at.
    server.select(0);
    for i in 0..100 {
        server.cmd(&[b"SET", format!("sample:new:{i}").as_bytes(), b"v"]);
    }
    let r = diff_jsonl(&all_types_s(), &server.url(), &["--sample-rate", "0.3"], 1);
    let added = r.n("only_in_b");
    assert!((10..=50).contains(&added), "{added} of 100 new keys sampled");
}

#[test]
fn keys_that_expire_meanwhile_are_not_missing() {
    let Some(server) = RedisServer::start(&[]) else { return };
    server.cmd(&[b"SET", b"short", b"v", b"PX", b"300"]);
    server.cmd(&[b"SET", b"keep", b"v"]);
    assert_eq!(server.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.rdb");
    std::fs::copy(server.path().join("dump.rdb"), &file).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let r = diff_jsonl(file.to_str().unwrap(), &server.url(), &[], 0);
    assert_eq!(r.kinds().into_iter().collect::<Vec<_>>(), vec![((0, b"short".to_vec()), "expired".to_owned())]);
    assert_eq!((r.n("expired"), r.n("only_in_a"), r.n("same")), (1, 0, 1));
    // With no tolerance and a key that expires an hour later on one side: a TTL difference.
    server.cmd(&[b"PEXPIRE", b"keep", b"3600000"]);
    let r = diff_jsonl(file.to_str().unwrap(), &server.url(), &["--ttl-tolerance", "0"], 1);
    assert_eq!(r.n("different_ttl"), 1);
}

// ---------------------------------------------------------------------------------------------
// 2. A 3-master cluster.

fn slot_ranges(s: &RedisServer) -> Vec<(u16, u16, u16)> {
    let Resp::Array(Some(ranges)) = s.cmd(&[b"CLUSTER", b"SLOTS"]) else { panic!("CLUSTER SLOTS") };
    ranges
        .iter()
        .map(|r| {
            let Resp::Array(Some(r)) = r else { panic!() };
            let Resp::Array(Some(m)) = &r[2] else { panic!() };
            (r[0].as_int().unwrap() as u16, r[1].as_int().unwrap() as u16, m[1].as_int().unwrap() as u16)
        })
        .collect()
}

/// Pipes `resp` into the server on `port` with `redis-cli --pipe`: the errors it counts.
fn pipe_into(port: u16, resp: &[u8]) -> u64 {
    common::redis_cli_pipe(port, resp).0
}

#[test]
fn cluster_of_three_masters() {
    let Some(nodes) = RedisServer::cluster(3, &[]) else { return };
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);
    let nodes = [n1, n2, n3];
    // Each master gets the db-0 keys of its slots, as RESTORE commands from export.
    let f = all_types_s();
    let mut loaded = 0;
    for (a, b, port) in slot_ranges(n1) {
        let range = format!("{a}-{b}");
        let o =
            rdbtool(&["export", "--format", "resp", "--restore", "--no-functions", "--db", "0", "--slot", &range, &f]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert_eq!(pipe_into(port, &o.stdout), 0);
        loaded += 1;
    }
    assert_eq!(loaded, 3);
    let db0 = file_keys(&all_types()).into_iter().filter(|k| k.db == 0).collect::<Vec<_>>();
    // Every node holds some of them: the diff really has to read all three.
    for n in nodes {
        let Resp::Int(k) = n.cmd(&[b"DBSIZE"]) else { panic!() };
        assert!(k > 10, "node {} holds {k} keys", n.port);
    }

    // Through any node: identical, keys routed to the master of their slot.
    for n in [n1, n3] {
        let r = diff_jsonl(&f, &n.url(), &["--db", "0"], 0);
        assert_eq!((r.n("same"), r.n("keys_b")), (db0.len() as u64, db0.len() as u64));
    }
    // Keys of other databases cannot be in a cluster: only in A.
    let r = diff_jsonl(&f, &n2.url(), &[], 1);
    assert_eq!(r.n("only_in_a"), file_keys(&all_types()).len() as u64 - db0.len() as u64);
    assert_eq!(r.n("only_in_b") + r.n("different_value"), 0);

    // A change on one node and a new key on another, made through redis-cli -c.
    let s = db0
        .iter()
        .find(|k| {
            matches!(k.value, Value::String(_))
                && k.expire_at_ms.is_none()
                && !k.key.is_empty()
                && k.key.iter().all(|b| b.is_ascii_alphanumeric() || b":_-".contains(b))
        })
        .unwrap();
    let key = String::from_utf8(s.key.clone()).unwrap();
    let cli = |args: &[&str]| {
        let o = Command::new("redis-cli").args(["-c", "-p", &n1.port.to_string()]).args(args).output().unwrap();
        assert!(o.status.success());
    };
    cli(&["SET", &key, "changed"]);
    cli(&["SET", "cluster:new{x}", "1"]);
    let r = diff_jsonl(&f, &n2.url(), &["--db", "0"], 1);
    let k = r.kinds();
    assert_eq!(k.len(), 2, "{k:?}");
    assert_eq!(k[&(0, s.key.clone())], "value");
    assert_eq!(k[&(0, b"cluster:new{x}".to_vec())], "only_in_b");
    // --slot narrows to the new key's slot.
    let slot = rdbtool::slot::key_slot(b"cluster:new{x}").to_string();
    let r = diff_jsonl(&f, &n2.url(), &["--db", "0", "--slot", &slot], 1);
    assert_eq!(r.diffs.len(), 1);
}

/// `rdbtool diff ARGS... --jsonl` with the exit code expected.
fn diff_set(args: &[&str], expect_code: i32) -> Report {
    let mut all = vec!["diff", "--jsonl"];
    all.extend_from_slice(args);
    let o = rdbtool(&all);
    assert_eq!(
        o.status.code(),
        Some(expect_code),
        "rdbtool {all:?}\nstdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    Report::parse(&o)
}

/// A cluster's backup: the cluster filled with all-types' db 0 by `rdbtool restore`, then each
/// master SAVEd and its dump.rdb copied to `dir/shard-N.rdb`. Returns the shard paths.
fn cluster_backup(nodes: &[RedisServer], dir: &Path) -> Vec<String> {
    let o = rdbtool(&["restore", &all_types_s(), "--db", "0", "--to", &nodes[0].url()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    let mut shards = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
        let p = dir.join(format!("shard-{i}.rdb"));
        std::fs::copy(n.path().join("dump.rdb"), &p).unwrap();
        shards.push(p.display().to_string());
    }
    shards
}

#[test]
fn a_cluster_backup_is_one_set_of_files() {
    let Some(nodes) = RedisServer::cluster(3, &[]) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let shards = cluster_backup(&nodes, tmp.path());
    let db0 = file_keys(&all_types()).into_iter().filter(|k| k.db == 0).count() as u64;
    let per_shard: Vec<u64> = shards.iter().map(|s| file_keys(Path::new(s)).len() as u64).collect();
    assert_eq!(per_shard.iter().sum::<u64>(), db0);
    assert!(per_shard.iter().all(|&n| n > 10), "{per_shard:?}");
    let s: Vec<&str> = shards.iter().map(String::as_str).collect();
    let node = nodes[1].url();

    // The set against the cluster: identical, one summary per file.
    let r = diff_set(&[s[0], s[1], s[2], &node], 0);
    assert_eq!((r.n("same"), r.n("keys_a"), r.n("keys_b")), (db0, db0, db0));
    let files = r.summary["files_a"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    for (f, (name, n)) in files.iter().zip(shards.iter().zip(&per_shard)) {
        assert_eq!((f["file"].as_str().unwrap(), f["keys"].as_u64().unwrap()), (name.as_str(), *n));
        assert_eq!(f["differences"].as_u64(), Some(0));
    }
    // Text: a line per file.
    let o = rdbtool(&["diff", s[0], s[1], s[2], &node]);
    assert_eq!(o.status.code(), Some(0));
    let t = text(&o.stdout);
    assert!(t.contains(&format!("  {}: {} keys, 0 differences in its slots", s[1], per_shard[1])), "{t}");
    // The server given by -h/-p: every argument is A.
    let port = nodes[2].port.to_string();
    let r = diff_set(&[s[0], s[1], s[2], "-h", "127.0.0.1", "-p", &port], 0);
    assert_eq!(r.n("same"), db0);
    // One shard alone: the others' keys are only on the cluster.
    let r = diff_set(&[s[0], &node], 1);
    assert_eq!((r.n("same"), r.n("only_in_b")), (per_shard[0], db0 - per_shard[0]));

    // A set against a set (--against), in any order.
    let r = diff_set(&[s[0], s[1], s[2], "--against", s[2], "--against", s[0], "--against", s[1]], 0);
    assert_eq!(r.n("same"), db0);
    let r = diff_set(&[s[0], s[1], "--against", s[0], "--against", s[1], "--against", s[2]], 1);
    assert_eq!((r.n("only_in_b"), r.n("only_in_a")), (per_shard[2], 0));
    // The missing keys are in the slots of the shard that holds them.
    let fb = r.summary["files_b"].as_array().unwrap();
    assert_eq!(fb.iter().map(|f| f["differences"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 0, per_shard[2]]);

    // A key in two files of a set: an error naming the key and both files, as a key twice in one
    // file is.
    std::fs::copy(&shards[0], tmp.path().join("copy.rdb")).unwrap();
    let copy = tmp.path().join("copy.rdb").display().to_string();
    let o = rdbtool(&["diff", s[0], &copy, s[1], s[2], &node]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains(&copy) && err.contains(&format!("already in {}", s[0])) && err.contains("key"), "{err}");
    // A set holds RDB files only.
    let o = rdbtool(&["diff", s[0], &node, s[1]]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("set of RDB files"), "{}", text(&o.stderr));

    // A change on the cluster: named, and counted against the shard of its slot.
    let changed = file_keys(Path::new(s[1]))
        .into_iter()
        .find(|k| matches!(k.value, Value::String(_)) && k.expire_at_ms.is_none())
        .unwrap();
    let owner = nodes.iter().find(|n| n.cmd(&[b"EXISTS", &changed.key]) == Resp::Int(1)).unwrap();
    assert_eq!(owner.cmd(&[b"SET", &changed.key, b"changed"]), Resp::Simple("OK".into()));
    let r = diff_set(&[s[0], s[1], s[2], &node], 1);
    let k = r.kinds();
    assert_eq!(k.len(), 1, "{k:?}");
    assert_eq!(k[&(0, changed.key.clone())], "value");
    let fa = r.summary["files_a"].as_array().unwrap();
    assert_eq!(fa.iter().map(|f| f["differences"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 0]);
}

#[test]
fn restore_test_of_a_cluster_backup() {
    let Some(nodes) = RedisServer::cluster(3, &[]) else { return };
    let version = text(&Command::new("redis-server").arg("--version").output().unwrap().stdout);
    let version = version.split("v=").nth(1).unwrap_or("").to_owned();
    let tmp = tempfile::tempdir().unwrap();
    let shards = cluster_backup(&nodes, tmp.path());
    // A copy of one shard in which a key expires 1.5 s after the save: by the time it is
    // loaded its TTL has passed (whatever today's date), so its node drops it, and the
    // comparison counts it as expired, not as missing.
    let expiring = file_keys(Path::new(&shards[2]))
        .into_iter()
        .find(|k| matches!(k.value, Value::String(_)) && k.expire_at_ms.is_none())
        .unwrap();
    let owner = nodes.iter().find(|n| n.cmd(&[b"EXISTS", &expiring.key]) == Resp::Int(1)).unwrap();
    assert_eq!(owner.cmd(&[b"PEXPIRE", &expiring.key, b"1500"]), Resp::Int(1));
    assert_eq!(owner.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
    let expiring_shard = tmp.path().join("expiring-shard.rdb");
    std::fs::copy(owner.path().join("dump.rdb"), &expiring_shard).unwrap();
    let saved_at = Instant::now();
    drop(nodes);
    let s: Vec<&str> = shards.iter().map(String::as_str).collect();
    let db0 = file_keys(&all_types()).into_iter().filter(|k| k.db == 0).count() as u64;
    // Loaded by a throwaway cluster of three masters (one file each), then compared: identical.
    let o = rdbtool(&["restore-test", s[0], s[1], s[2], "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    let j: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((j["accepted"].as_bool(), j["ok"].as_bool(), j["masters"].as_u64()), (Some(true), Some(true), Some(3)));
    assert_eq!(j["diff"]["summary"]["same"].as_u64(), Some(db0), "{j}");
    assert_eq!(j["diff"]["summary"]["files_a"].as_array().unwrap().len(), 3);
    let o = rdbtool(&["restore-test", s[0], s[1], s[2]]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).starts_with("ACCEPTED "), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("cluster of 3 redis-server"), "{}", text(&o.stdout));

    // The set with the expiring key's shard, once that key's TTL has passed: accepted.
    std::thread::sleep(Duration::from_millis(2000).saturating_sub(saved_at.elapsed()));
    let e = expiring_shard.display().to_string();
    let o = rdbtool(&["restore-test", s[0], s[1], &e, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    let j: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["accepted"].as_bool(), Some(true), "{j}");
    let sum = &j["diff"]["summary"];
    assert_eq!((sum["same"].as_u64(), sum["expired"].as_u64()), (Some(db0 - 1), Some(1)), "{j}");
    assert_eq!(j["keys"].as_u64(), Some(db0 - 1), "the node dropped the expired key: {j}");

    // One shard's key also in another shard's file: two nodes would hold keys of one slot
    // (when they meet, one deletes its keys of the slot): refused, the slot and key named.
    // (A key of printable bytes, so that the output names it as the test spells it: Redis's
    // order of keys in a saved file changes from run to run.)
    let one = file_keys(Path::new(s[1]))
        .into_iter()
        .find(|k| {
            matches!(k.value, Value::String(_))
                && k.expire_at_ms.is_none()
                && k.key.iter().all(|b| b.is_ascii_graphic())
        })
        .unwrap();
    let Value::String(v) = &one.value else { unreachable!() };
    let extra = tmp.path().join("extra.rdb");
    std::fs::write(&extra, common::rdb9(common::rdb_of_strings(&[(0, &one.key, &v[..v.len().min(63)])]))).unwrap();
    let e = extra.display().to_string();
    let o = rdbtool(&["restore-test", s[0], s[1], s[2], &e]);
    assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("REFUSED ") && out.contains(&text(&one.key)), "{out}");
    let slot = rdbtool::slot::key_slot(&one.key);
    assert!(out.contains(&format!("slot {slot}: {} and {e}", s[1])), "{out}");
    // A shard with a key outside db 0: its node refuses it (Redis 7.0 crashes loading it in
    // cluster mode, later versions exit saying so), its words and our reading given.
    let other_db = tmp.path().join("db1.rdb");
    std::fs::write(&other_db, common::rdb9(common::rdb_of_strings(&[(1, b"in:db1", b"v")]))).unwrap();
    let d = other_db.display().to_string();
    let o = rdbtool(&["restore-test", s[0], &d, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
    let j: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((j["accepted"].as_bool(), j["refused_file"].as_str()), (Some(false), Some(d.as_str())), "{j}");
    assert!(!j["reasons"].as_array().unwrap().is_empty(), "{j}");
    assert!(j["reasons"].as_array().unwrap().len() <= 6, "a crash's headline, not its dump: {j}");
    assert!(j["hint"].as_str().unwrap().contains("db 1 (key \"in:db1\""), "{j}");
    // A shard in a newer RDB version than the nodes read (RDB 11 into Redis 7.0): refused by
    // its node, as loading it in production would be (restoring it key by key would not show it).
    if version.starts_with("7.0.") {
        let newer = tmp.path().join("rdb11.rdb");
        std::fs::write(&newer, common::rdb_of_strings(&[(0, b"newer", b"v")])).unwrap();
        let n = newer.display().to_string();
        let o = rdbtool(&["restore-test", s[0], &n]);
        assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
        let out = text(&o.stdout);
        assert!(out.contains(&format!("the node given {n} refused it")), "{out}");
        assert!(out.contains("Can't handle RDB format version 11") && out.contains("too old"), "{out}");
    }
    // A shard whose key is altered into a value Redis cannot hold (an intset shorter than its
    // count, the checksum recomputed): refused, the file and the key named.
    let mut bad = b"REDIS0009\xfe\x00\x0b\x0abad:intset\x08\x02\x00\x00\x00\x05\x00\x00\x00\xff".to_vec();
    let crc = rdbtool::crc::crc64(&bad);
    bad.extend_from_slice(&crc.to_le_bytes());
    let badp = tmp.path().join("bad.rdb");
    std::fs::write(&badp, bad).unwrap();
    let b = badp.display().to_string();
    let o = rdbtool(&["restore-test", s[0], s[1], &b]);
    assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("REFUSED ") && out.contains(&b) && out.contains("\"bad:intset\""), "{out}");
}

// ---------------------------------------------------------------------------------------------
// 3. Files against files.

#[test]
fn files_with_different_encodings_are_equal() {
    let f = all_types();
    // A server with small encoding limits and no compression re-encodes what it loads.
    let Some(server) = RedisServer::start_with_rdb(
        &f,
        &[
            "--hash-max-listpack-entries",
            "1",
            "--zset-max-listpack-entries",
            "1",
            "--set-max-intset-entries",
            "1",
            "--list-max-listpack-size",
            "1",
            "--rdbcompression",
            "no",
        ],
    ) else {
        return;
    };
    assert_eq!(server.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("reencoded.rdb");
    std::fs::copy(server.path().join("dump.rdb"), &other).unwrap();

    // Really different bytes: count values whose type byte changed.
    let types = |p: &Path| -> BTreeMap<(u64, Vec<u8>), (u8, Vec<u8>)> {
        let data = std::fs::read(p).unwrap();
        let mut m = BTreeMap::new();
        for r in Reader::new(&data).unwrap() {
            if let Record::Key(k) = r.unwrap() {
                m.insert((k.db, k.key.to_vec()), (k.value.type_byte, k.value.bytes.to_vec()));
            }
        }
        m
    };
    let (ta, tb) = (types(&f), types(&other));
    assert_eq!(ta.len(), tb.len());
    let retyped = ta.iter().filter(|(k, v)| tb[*k].0 != v.0).count();
    let rebytes = ta.iter().filter(|(k, v)| tb[*k].1 != v.1).count();
    assert!(retyped > 20 && rebytes > 50, "{retyped} values changed encoding, {rebytes} changed bytes");

    let r = diff_jsonl(&all_types_s(), other.to_str().unwrap(), &[], 0);
    assert_eq!(r.n("same"), ta.len() as u64);
    // The same data saved with and without LZF.
    let r = diff_jsonl(&td("uncompressed.rdb"), &td("no-checksum.rdb"), &[], 0);
    assert_eq!(r.n("same"), 13);

    // One value changed before the save: exactly that key, with its first differing member.
    let keys = file_keys(&f);
    let z =
        keys.iter().find(|k| k.expire_at_ms.is_none() && matches!(&k.value, Value::Zset(z) if z.len() > 3)).unwrap();
    server.select(z.db);
    let Resp::Array(Some(first)) = server.cmd(&[b"ZRANGE", &z.key, b"0", b"0"]) else { panic!() };
    let member = first[0].as_bytes().unwrap().to_vec();
    server.cmd(&[b"ZINCRBY", &z.key, b"1000", &member]);
    assert_eq!(server.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
    let changed = dir.path().join("changed.rdb");
    std::fs::copy(server.path().join("dump.rdb"), &changed).unwrap();
    let r = diff_jsonl(&all_types_s(), changed.to_str().unwrap(), &["--max-members", "3"], 1);
    assert_eq!(r.diffs.len(), 1);
    let d = &r.diffs[0];
    assert_eq!(
        (d["db"].as_u64(), to_bytes(&d["key"]).unwrap(), d["kind"].as_str()),
        (Some(z.db), z.key.clone(), Some("value"))
    );
    assert_eq!(to_bytes(&d["detail"]["different_scores"][0][0]).unwrap(), member);
    assert_eq!(d["detail"]["different_scores_count"], 1);

    // Different datasets.
    let r = diff_jsonl(&td("small-db0.rdb"), &td("uncompressed.rdb"), &[], 1);
    let k = r.kinds();
    assert!(k.values().any(|v| v == "only_in_a") && k.values().any(|v| v == "only_in_b"));
    assert_eq!(
        r.n("only_in_a") + r.n("same") + r.n("different_value") + r.n("different_type") + r.n("different_ttl"),
        15
    );

    // A tiny memory budget spills the key lists to disk and changes nothing.
    let r = diff_jsonl(
        &all_types_s(),
        other.to_str().unwrap(),
        &["--memory", "1", "--temp-dir", dir.path().to_str().unwrap()],
        0,
    );
    assert_eq!(r.n("same"), ta.len() as u64);
}

// ---------------------------------------------------------------------------------------------
// 4. restore-test.

#[test]
fn restore_test_accepts_a_good_file() {
    if RedisServer::start(&[]).is_none() {
        return;
    }
    let f = all_types();
    let before = sha(&f);
    let o = rdbtool(&["restore-test", f.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.starts_with("ACCEPTED"), "{out}");
    assert!(out.contains("loaded 268 keys"), "{out}");
    assert!(out.trim_end().ends_with("IDENTICAL"), "{out}");
    let o = rdbtool(&["restore-test", "--json", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)));
    assert_eq!(
        (doc["accepted"].as_bool(), doc["ok"].as_bool(), doc["keys"].as_u64()),
        (Some(true), Some(true), Some(268))
    );
    assert_eq!(doc["diff"]["summary"]["same"], 268);
    assert_eq!(sha(&f), before);

    // The committed file as it is, on whatever day this runs: keys whose TTL has passed are
    // dropped by Redis and reported `expired`, which does not make the restore fail.
    let f = common::testdata("all-types.rdb");
    let start = common::now_ms();
    let o = rdbtool(&["restore-test", "--json", f.to_str().unwrap()]);
    let window = common::ExpiryWindow { start_ms: start, end_ms: common::now_ms() };
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    let keys = file_keys(&f);
    let exp = |k: &FileKey| k.expire_at_ms.unwrap_or(-1);
    let gone = keys.iter().filter(|k| window.gone(exp(k))).count() as u64;
    let maybe = keys.iter().filter(|k| window.uncertain(exp(k))).count() as u64;
    let loaded = doc["keys"].as_u64().unwrap();
    let total = keys.len() as u64;
    assert!(loaded <= total - gone && loaded + maybe >= total - gone, "loaded {loaded} of {total}, {gone} expired");
    let summary = &doc["diff"]["summary"];
    assert_eq!(summary["same"].as_u64().unwrap() + summary["expired"].as_u64().unwrap(), total, "{summary}");

    // An AOF set: loaded by Redis from a copy, never changed.
    let dir = common::testdata("preamble-aof");
    let files: Vec<(PathBuf, Vec<u8>)> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).map(|p| (p.clone(), sha(&p))).collect();
    let o = rdbtool(&["restore-test", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).starts_with("ACCEPTED"));
    for (p, h) in files {
        assert_eq!(sha(&p), h, "{} changed", p.display());
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3, "no file added to the AOF dir");
}

#[test]
fn restore_test_reports_why_redis_refuses() {
    if RedisServer::start(&[]).is_none() {
        return;
    }
    // RDB 11 (Redis 7.2) into Debian's Redis 7.0.
    // (Skipped, and said so, without ../shared; a failure under CI.)
    let newer = common::shared_dir().map(|d| d.join("fixtures/generated/redis-7.2.6/dump.rdb"));
    let on_7_0 = common::redis_version().starts_with("7.0.");
    if !on_7_0 {
        common::skip("redis-server on PATH is not 7.0: RDB 11 refusal not checked");
    }
    if let Some(newer) = newer.filter(|_| on_7_0) {
        let o = rdbtool(&["restore-test", newer.to_str().unwrap()]);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
        assert!(out.starts_with("REFUSED"), "{out}");
        assert!(out.contains("Can't handle RDB format version 11"), "Redis's own reason: {out}");
        assert!(out.contains("too old"), "{out}");
        let o = rdbtool(&["restore-test", "--json", newer.to_str().unwrap()]);
        let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(doc["accepted"], false);
        assert!(
            doc["reasons"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("RDB format version 11"))
        );
    }
    // A corrupted copy: one byte flipped inside a value, caught by Redis's checksum.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.rdb");
    let mut data = std::fs::read(all_types()).unwrap();
    let at = data.len() / 2;
    data[at] ^= 0x01;
    std::fs::write(&bad, &data).unwrap();
    let o = rdbtool(&["restore-test", bad.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(out.starts_with("REFUSED") && out.contains("redis: "), "{out}");
    assert_eq!(std::fs::read(&bad).unwrap(), data, "the input was not modified");
    // A truncated file.
    std::fs::write(&bad, &data[..data.len() / 3]).unwrap();
    let o = rdbtool(&["restore-test", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    // Not a backup at all, or no server binary: could not run.
    std::fs::write(&bad, b"hello").unwrap();
    assert_eq!(rdbtool(&["restore-test", bad.to_str().unwrap()]).status.code(), Some(2));
    let o = rdbtool(&["restore-test", "--redis-server", "/nonexistent/redis-server", &all_types_s()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("/nonexistent/redis-server"));
}

#[test]
fn aof_sets_are_loaded_to_be_compared() {
    if RedisServer::start(&[]).is_none() {
        return;
    }
    let aof = td("preamble-aof");
    // The same set on both sides (two throwaway servers, compared live against live).
    let r = diff_jsonl(&aof, &aof, &[], 0);
    assert!(r.n("same") >= 19, "{}", r.summary);
    // Against the small file it started from: the commands after the base changed things.
    let r = diff_jsonl(&td("small-db0.rdb"), &aof, &[], 1);
    assert!(!r.diffs.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 5. Read-only: what the live side received.

const ALLOWED: [&str; 12] =
    ["scan", "type", "pttl", "dump", "exists", "info", "cluster", "auth", "hello", "ping", "select", "monitor"];

#[test]
fn the_live_side_receives_no_write() {
    let f = all_types();
    let Some(server) = RedisServer::start_with_rdb(&f, &[]) else { return };
    // Something only B has, so that TYPE and the SCAN join are exercised too.
    server.select(2);
    server.cmd(&[b"SET", b"only:b", b"1"]);
    let stats = |s: &RedisServer| -> BTreeMap<String, u64> {
        let Resp::Bulk(Some(t)) = s.cmd(&[b"INFO", b"commandstats"]) else { panic!() };
        text(&t)
            .lines()
            .filter_map(|l| l.strip_prefix("cmdstat_"))
            .filter_map(|l| {
                let (name, rest) = l.split_once(':')?;
                let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?.parse().ok()?;
                Some((name.to_owned(), calls))
            })
            .collect()
    };
    let dirty = |s: &RedisServer| -> String {
        let Resp::Bulk(Some(t)) = s.cmd(&[b"INFO", b"persistence"]) else { panic!() };
        text(&t).lines().find(|l| l.starts_with("rdb_changes_since_last_save")).unwrap().to_owned()
    };
    let before = stats(&server);
    let dirty_before = dirty(&server);

    // MONITOR from a second connection records every command the diff sends.
    let mut mon = TcpStream::connect((Ipv4Addr::LOCALHOST, server.port)).unwrap();
    mon.write_all(b"*1\r\n$7\r\nMONITOR\r\n").unwrap();
    mon.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let recorder = std::thread::spawn(move || {
        let mut r = BufReader::new(mon);
        let mut lines = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => lines.push(line.trim_end().to_owned()),
                Err(_) if stop2.load(Ordering::SeqCst) => break,
                Err(_) => {}
            }
        }
        lines
    });
    std::thread::sleep(Duration::from_millis(200));
    let r = diff_jsonl(&all_types_s(), &server.url(), &[], 1);
    assert_eq!(r.kinds().into_values().collect::<Vec<_>>(), vec!["only_in_b"]);
    let r = diff_jsonl(&server.url(), &server.url(), &[], 0);
    assert_eq!(r.n("same"), 269);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let lines = recorder.join().unwrap();

    let mut seen = BTreeSet::new();
    for l in lines.iter().filter(|l| l.starts_with('+') && l.contains("] \"")) {
        let name = l.split("] \"").nth(1).unwrap().split('"').next().unwrap().to_ascii_lowercase();
        seen.insert(name);
    }
    for c in ["scan", "dump", "pttl", "type", "exists", "info"] {
        assert!(seen.contains(c), "MONITOR saw no {c}: {seen:?}");
    }
    for c in &seen {
        assert!(ALLOWED.contains(&c.as_str()), "the diff sent {c}");
    }
    // The server's own counters agree: only allowed commands ran, and nothing was written.
    let after = stats(&server);
    for (name, calls) in &after {
        if before.get(name).copied().unwrap_or(0) < *calls {
            let base = name.split('|').next().unwrap();
            assert!(ALLOWED.contains(&base), "commandstats: {name} ran during the diff");
        }
    }
    assert_eq!(dirty(&server), dirty_before, "the dataset did not change");
    // And none of them is a write command in the server's own table.
    for c in seen.iter().filter(|c| *c != "monitor") {
        let Resp::Array(Some(info)) = server.cmd(&[b"COMMAND", b"INFO", c.as_bytes()]) else { panic!() };
        let Resp::Array(Some(doc)) = &info[0] else { panic!("COMMAND INFO {c}") };
        let Resp::Array(Some(flags)) = &doc[2] else { panic!() };
        let flags: Vec<&[u8]> = flags.iter().map(|f| f.as_bytes().unwrap()).collect();
        assert!(!flags.contains(&&b"write"[..]), "{c} is a write command: {flags:?}");
    }
}

#[test]
fn passwords_come_from_the_environment_or_a_file() {
    let f = common::testdata("small-db0.rdb");
    let Some(server) = RedisServer::start_with_rdb(&f, &[]) else { return };
    assert_eq!(server.cmd(&[b"CONFIG", b"SET", b"requirepass", b"s3cret"]), Resp::Simple("OK".into()));
    let u = server.url();
    let o = rdbtool(&["diff", f.to_str().unwrap(), &u]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).to_lowercase().contains("auth"), "{}", text(&o.stderr));
    let o = rdbtool_env(&["diff", f.to_str().unwrap(), &u], &[("REDISCLI_AUTH", "s3cret")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let o = rdbtool(&["diff", f.to_str().unwrap(), &u, "--password-file", pw.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = rdbtool_env(&["diff", f.to_str().unwrap(), &u], &[("REDISCLI_AUTH", "wrong")]);
    assert_eq!(o.status.code(), Some(2));
    // A password in the URL works, with a warning, and is never printed back.
    let o = rdbtool(&["diff", f.to_str().unwrap(), &format!("redis://:s3cret@127.0.0.1:{}", server.port)]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stderr).contains("visible"));
    assert!(!text(&o.stdout).contains("s3cret") && !text(&o.stderr).contains("s3cret"));
}

// ---------------------------------------------------------------------------------------------
// 6. Servers and files that misbehave: a clear error and exit 2, never a panic or a hang.

/// A fake server: for each command it reads, `reply` decides the bytes to send (None: silence).
fn fake_server(reply: impl Fn(&[Vec<u8>]) -> Option<Vec<u8>> + Send + Sync + 'static) -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let reply = Arc::new(reply);
    std::thread::spawn(move || {
        for conn in l.incoming().take(20) {
            let Ok(mut c) = conn else { continue };
            let reply = reply.clone();
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = c.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some((cmd, used)) = parse_command(&buf) {
                        buf.drain(..used);
                        if let Some(r) = reply(&cmd)
                            && c.write_all(&r).is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

/// One RESP array of bulk strings from the front of `b`, and the bytes it took.
fn parse_command(b: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    let line = |at: usize| -> Option<(&[u8], usize)> {
        let end = b[at..].windows(2).position(|w| w == b"\r\n")? + at;
        Some((&b[at..end], end + 2))
    };
    let (head, mut at) = line(0)?;
    let n: usize = std::str::from_utf8(head.strip_prefix(b"*")?).ok()?.parse().ok()?;
    let mut args = Vec::new();
    for _ in 0..n {
        let (h, next) = line(at)?;
        let len: usize = std::str::from_utf8(h.strip_prefix(b"$")?).ok()?.parse().ok()?;
        let data = b.get(next..next + len)?;
        args.push(data.to_vec());
        at = next + len + 2;
        if at > b.len() {
            return None;
        }
    }
    Some((args, at))
}

fn bulk(s: &[u8]) -> Vec<u8> {
    let mut v = format!("${}\r\n", s.len()).into_bytes();
    v.extend_from_slice(s);
    v.extend_from_slice(b"\r\n");
    v
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn assert_cannot_run(args: &[&str], what: &str, needle: &str) {
    let t = Instant::now();
    let o = rdbtool(args);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{what}: stdout {} stderr {err}", text(&o.stdout));
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(err.starts_with("rdbtool diff: "), "{what}: {err}");
    assert!(err.to_lowercase().contains(needle), "{what}: expected {needle:?} in {err}");
    assert!(t.elapsed() < Duration::from_secs(30), "{what}: took {:?}", t.elapsed());
}

#[test]
fn misbehaving_servers_give_clean_errors() {
    let file = td("small-db0.rdb");
    let fast = ["--timeout", "2"];
    let run = |port: u16, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["diff".into(), file.clone(), format!("redis://127.0.0.1:{port}")];
        v.extend(fast.iter().map(|s| s.to_string()));
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    // Nobody listens.
    let free = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let v = run(free, &[]);
    assert_cannot_run(&refs(&v), "closed port", "connect");
    // Never answers.
    let silent = fake_server(|_| None);
    let v = run(silent, &[]);
    assert_cannot_run(&refs(&v), "silent server", "");
    // Answers garbage.
    let garbage = fake_server(|_| Some(b"\x00\xffnot resp at all\r\n".to_vec()));
    let v = run(garbage, &[]);
    assert_cannot_run(&refs(&v), "garbage", "");
    // Claims to be a cluster and sends nonsense slots.
    let bad_cluster = fake_server(|c| {
        Some(match c[0].to_ascii_uppercase().as_slice() {
            b"INFO" => bulk(b"# Server\r\nredis_version:7.0.15\r\ncluster_enabled:1\r\n"),
            b"CLUSTER" => b"*1\r\n*3\r\n:9\r\n:99999\r\n*2\r\n$0\r\n\r\n:1\r\n".to_vec(),
            _ => b"-ERR unknown\r\n".to_vec(),
        })
    });
    let v = run(bad_cluster, &[]);
    assert_cannot_run(&refs(&v), "bad CLUSTER SLOTS", "cluster slots");
    // A standalone server whose DUMP payloads are not DUMP payloads.
    let bad_dump = fake_server(|c| {
        Some(match c[0].to_ascii_uppercase().as_slice() {
            b"INFO" => bulk(b"# Server\r\nredis_version:7.0.15\r\n# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n"),
            b"DUMP" => bulk(b"\x00\x03abc\x0a\x00XXXXXXXX"),
            b"PTTL" => b":-1\r\n".to_vec(),
            b"SCAN" => b"*2\r\n$1\r\n0\r\n*0\r\n".to_vec(),
            b"SELECT" => b"+OK\r\n".to_vec(),
            _ => b"-ERR unknown\r\n".to_vec(),
        })
    });
    let v = run(bad_dump, &[]);
    assert_cannot_run(&refs(&v), "bad DUMP payload", "dump of db 0");
    // A server that answers a DUMP with an error.
    let err_dump = fake_server(|c| {
        Some(match c[0].to_ascii_uppercase().as_slice() {
            b"INFO" => bulk(b"# Server\r\nredis_version:7.0.15\r\n# Keyspace\r\ndb0:keys=3\r\n"),
            b"SCAN" => b"*2\r\n$1\r\n0\r\n*0\r\n".to_vec(),
            b"SELECT" => b"+OK\r\n".to_vec(),
            _ => b"-MOVED 123 127.0.0.1:1\r\n".to_vec(),
        })
    });
    let v = run(err_dump, &[]);
    assert_cannot_run(&refs(&v), "error replies", "moved");
    // A reply that announces more bytes than it sends (and more than any value holds).
    let huge = fake_server(|c| {
        Some(match c[0].to_ascii_uppercase().as_slice() {
            b"INFO" => bulk(b"# Keyspace\r\ndb0:keys=3\r\n"),
            b"SCAN" => b"*2\r\n$1\r\n0\r\n*0\r\n".to_vec(),
            b"DUMP" => b"$99999999999\r\nabc".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        })
    });
    let v = run(huge, &[]);
    assert_cannot_run(&refs(&v), "huge bulk length", "");
    // A SCAN cursor that is not a number.
    let bad_scan = fake_server(|c| {
        Some(match c[0].to_ascii_uppercase().as_slice() {
            b"INFO" => bulk(b"# Keyspace\r\ndb0:keys=3\r\n"),
            b"SCAN" => b"*2\r\n$2\r\n-1\r\n*0\r\n".to_vec(),
            b"DUMP" => b"$-1\r\n".to_vec(),
            b"PTTL" => b":-2\r\n".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        })
    });
    let v = run(bad_scan, &[]);
    assert_cannot_run(&refs(&v), "bad SCAN cursor", "scan");

    // Files: truncated, not an RDB, missing.
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(all_types()).unwrap();
    let cut = dir.path().join("cut.rdb");
    std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
    assert_cannot_run(&["diff", cut.to_str().unwrap(), &all_types_s()], "truncated", "cut.rdb");
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"REDIS0010\xff\x00").unwrap();
    assert_cannot_run(&["diff", junk.to_str().unwrap(), &all_types_s()], "junk", "junk");
    assert_cannot_run(&["diff", "/nonexistent.rdb", &all_types_s()], "missing", "nonexistent");
    assert_cannot_run(&["diff", &all_types_s(), &all_types_s(), "--sample-rate", "2"], "bad rate", "sample-rate");
    // Every truncation of a small file fails cleanly (or, cut after the EOF, compares).
    let small = std::fs::read(common::testdata("small-db0.rdb")).unwrap();
    for n in (0..small.len()).step_by(37) {
        std::fs::write(&cut, &small[..n]).unwrap();
        let o = rdbtool(&["diff", cut.to_str().unwrap(), &td("small-db0.rdb")]);
        assert_eq!(o.status.code(), Some(2), "cut at {n}");
        assert!(!text(&o.stderr).contains("panicked"));
    }
}

// ---------------------------------------------------------------------------------------------
// 7. TLS (rediss://) with a private CA.

#[test]
fn tls_servers_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tls) = common::make_certs(dir.path()) else { return };
    let ca = tls.ca.to_str().unwrap().to_owned();
    let f = common::testdata("small-db0.rdb");
    let Some(server) = RedisServer::start_with_rdb_tls(&f, Tls { auth_clients: false, ..tls }) else { return };
    let tls_port = server.tls_port();
    let u = format!("rediss://127.0.0.1:{tls_port}");
    let r = diff_jsonl(f.to_str().unwrap(), &u, &["--tls-ca-cert", &ca], 0);
    assert_eq!(r.n("same"), 15);
    // Without the CA the certificate is not trusted: a clear error, not a plaintext fallback.
    assert_cannot_run(&["diff", f.to_str().unwrap(), &u, "--timeout", "3"], "unknown CA", "certificate");
}

#[test]
fn databases_the_server_does_not_have() {
    // A server holding only db 0: the file's keys of dbs 1-3 are only in A (asked nowhere).
    let Some(server) = RedisServer::start_with_rdb(&common::testdata("small-db0.rdb"), &[]) else { return };
    let all = file_keys(&all_types());
    let r = diff_jsonl(&all_types_s(), &server.url(), &["--db", "1", "--db", "3"], 1);
    let expect = all.iter().filter(|k| k.db == 1 || k.db == 3).count() as u64;
    assert_eq!((r.n("only_in_a"), r.n("keys_b"), r.diffs.len() as u64), (expect, 0, expect));
    // Sides swapped: only in B.
    let r = diff_jsonl(&server.url(), &all_types_s(), &["--db", "2"], 1);
    assert_eq!(r.n("only_in_b"), all.iter().filter(|k| k.db == 2).count() as u64);
}

/// On servers with `CLIENT NO-TOUCH` (Redis 7.2+, Valkey), reading every key with DUMP leaves
/// their LRU idle time alone: a diff does not disturb what eviction relies on. Valkey 8.1.8 from
/// PyPI (`scripts/ensure_servers.sh`).
#[test]
fn diff_leaves_idle_times_alone_where_the_server_can() {
    let Some(bin) = common::other_server("valkey-8.1.8") else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let mut child = Command::new(&bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cli = |args: &[&str]| -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let o = Command::new("redis-cli").args(["-p", &port.to_string()]).args(args).output().unwrap();
            let out = text(&o.stdout);
            if o.status.success() && !out.contains("Could not connect") || Instant::now() > deadline {
                return out.trim().to_owned();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(cli(&["SET", "k", "v"]), "OK");
    assert_eq!(cli(&["SAVE"]), "OK");
    std::thread::sleep(Duration::from_millis(2200));
    let idle = |cli: &dyn Fn(&[&str]) -> String| cli(&["OBJECT", "IDLETIME", "k"]).parse::<u64>().unwrap();
    assert!(idle(&cli) >= 2);
    let r = diff_jsonl(dir.path().join("dump.rdb").to_str().unwrap(), &format!("redis://127.0.0.1:{port}"), &[], 0);
    assert_eq!(r.n("same"), 1);
    let after = idle(&cli);
    let _ = child.kill();
    let _ = child.wait();
    assert!(after >= 2, "DUMP reset the idle time to {after}");
}

/// A file where one key repeats (Redis refuses it) is an error naming the key, never IDENTICAL to
/// itself, and found in time linear in the copies (the join once compared every copy with every
/// other: 30 s for 800 KB).
#[test]
fn duplicate_keys_are_an_error_found_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("dup.rdb");
    std::fs::write(
        &small,
        common::rdb_of_strings(&[(0, b"k", b"1"), (1, b"k", b"2"), (0, b"j", b"3"), (0, b"k", b"4")]),
    )
    .unwrap();
    let s = small.display().to_string();
    let o = rdbtool(&["diff", &s, &s]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("already present") && err.contains("\"k\"") && err.contains("db 0"), "{err}");
    assert!(!text(&o.stdout).contains("IDENTICAL"), "{}", text(&o.stdout));
    // Against a clean file, on either side.
    let clean = dir.path().join("clean.rdb");
    std::fs::write(&clean, common::rdb_of_strings(&[(0, b"k", b"1"), (0, b"j", b"3")])).unwrap();
    let c = clean.display().to_string();
    for args in [[&c, &s], [&s, &c]] {
        let o = rdbtool(&["diff", args[0], args[1]]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains("already present"), "{}", text(&o.stderr));
    }
    // The same key in two databases is two keys.
    let two = dir.path().join("two.rdb");
    std::fs::write(&two, common::rdb_of_strings(&[(0, b"k", b"1"), (1, b"k", b"1")])).unwrap();
    let t = two.display().to_string();
    assert_eq!(rdbtool(&["diff", &t, &t]).status.code(), Some(0));
    // 60,000 copies of one key (~600 KB).
    let keys: Vec<(u64, &[u8], &[u8])> = (0..60_000).map(|_| (0, &b"same"[..], &b"value"[..])).collect();
    let big = dir.path().join("many.rdb");
    std::fs::write(&big, common::rdb_of_strings(&keys)).unwrap();
    let b = big.display().to_string();
    let started = std::time::Instant::now();
    let o = rdbtool(&["diff", &b, &b]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("already present"), "{}", text(&o.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
}

/// A fake server whose replies go out one byte every `every`: per-read timeouts never fire.
fn dripping_server(reply: impl Fn(&[Vec<u8>]) -> Vec<u8> + Send + Sync + 'static, every: Duration) -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let reply = Arc::new(reply);
    std::thread::spawn(move || {
        for conn in l.incoming().take(20) {
            let Ok(mut c) = conn else { continue };
            let reply = reply.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = c.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some((cmd, used)) = parse_command(&buf) {
                        buf.drain(..used);
                        for b in reply(&cmd) {
                            if c.write_all(&[b]).is_err() {
                                return;
                            }
                            std::thread::sleep(every);
                        }
                    }
                }
            });
        }
    });
    port
}

/// Hostile servers that answer, but never usefully: dripping bytes, a SCAN that never ends
/// (with pages of new keys, or empty), a SCAN page larger than asked. Each is an error within
/// about the timeout (or the SCAN bound), with memory bounded.
#[test]
fn hostile_servers_are_stopped_by_the_deadline_and_the_scan_bound() {
    let file = td("small-db0.rdb");
    let measure = |port: u16, what: &str| -> (String, Duration) {
        let url = format!("redis://127.0.0.1:{port}");
        let mut c = Command::new(env!("CARGO_BIN_EXE_rdbtool"));
        c.args(["diff", &file, &url, "--timeout", "2"]).env_remove("REDISCLI_AUTH");
        let (code, err, rss_kb, took) = common::run_measured(&mut c);
        assert_eq!(code, Some(2), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(rss_kb < 100 << 10, "{what}: peak RSS {rss_kb} KiB");
        (err.to_lowercase(), took)
    };
    // INFO's 2 KB reply, a byte every 0.2 s (7 minutes), all of it within any per-read timeout.
    let drip = dripping_server(
        |c| match c[0].to_ascii_uppercase().as_slice() {
            b"INFO" => bulk(format!("# Server\r\nredis_version:7.0.15\r\n{}", "x:y\r\n".repeat(400)).as_bytes()),
            _ => b"+OK\r\n".to_vec(),
        },
        Duration::from_millis(200),
    );
    let (err, took) = measure(drip, "dripping INFO");
    assert!(err.contains("no useful progress"), "{err}");
    assert!(took < Duration::from_secs(8), "dripping: {took:?}");
    // A SCAN whose cursor never comes back to 0, each page 1000 new keys of a db of 3 keys.
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let endless = fake_server(move |c| {
        Some(match c[0].to_ascii_uppercase().as_slice() {
            b"INFO" => bulk(b"# Server\r\nredis_version:7.0.15\r\n# Keyspace\r\ndb0:keys=3\r\n"),
            b"SCAN" => {
                let base = counter.fetch_add(1000, std::sync::atomic::Ordering::Relaxed);
                let mut r = b"*2\r\n$1\r\n7\r\n*1000\r\n".to_vec();
                for i in base..base + 1000 {
                    r.extend_from_slice(&bulk(format!("garbage:{i:020}").as_bytes()));
                }
                r
            }
            b"DUMP" => b"$-1\r\n".to_vec(),
            b"PTTL" => b":-2\r\n".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        })
    });
    let (err, took) = measure(endless, "endless SCAN of new keys");
    assert!(err.contains("scan") && err.contains("more than 100012 keys"), "{err}");
    assert!(took < Duration::from_secs(30), "endless SCAN: {took:?}");
    // Empty pages forever.
    let empty = fake_server(|c| {
        Some(match c[0].to_ascii_uppercase().as_slice() {
            b"INFO" => bulk(b"# Server\r\nredis_version:7.0.15\r\n# Keyspace\r\ndb0:keys=3\r\n"),
            b"SCAN" => b"*2\r\n$1\r\n7\r\n*0\r\n".to_vec(),
            b"DUMP" => b"$-1\r\n".to_vec(),
            b"PTTL" => b":-2\r\n".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        })
    });
    let (err, took) = measure(empty, "endless empty SCAN");
    assert!(err.contains("has not come back to 0 after 1024 rounds"), "{err}");
    assert!(took < Duration::from_secs(30), "empty SCAN: {took:?}");
    // A page of a million keys when 1000 were asked: refused at its header.
    let big_page = fake_server(|c| {
        Some(match c[0].to_ascii_uppercase().as_slice() {
            b"INFO" => bulk(b"# Server\r\nredis_version:7.0.15\r\n# Keyspace\r\ndb0:keys=3\r\n"),
            b"SCAN" => b"*2\r\n$1\r\n0\r\n*1000000\r\n".to_vec(),
            b"DUMP" => b"$-1\r\n".to_vec(),
            b"PTTL" => b":-2\r\n".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        })
    });
    let (err, _) = measure(big_page, "oversized SCAN page");
    assert!(err.contains("an array of 1000000 elements"), "{err}");
}

/// `split --from` reads CLUSTER SLOTS through the same client: a dripping reply is an error
/// within about the timeout.
#[test]
fn split_from_a_dripping_server_stops() {
    let drip = dripping_server(
        |_| {
            let mut r = b"*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n".to_vec();
            r.extend_from_slice(&bulk("127.0.0.1".repeat(100).as_bytes()));
            r.extend_from_slice(b":7000\r\n$1\r\na\r\n");
            r
        },
        Duration::from_millis(200),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_rdbtool"));
    c.args(["split", &td("small-db0.rdb"), "--from", &format!("redis://127.0.0.1:{drip}"), "--timeout", "2", "-o"])
        .arg(dir.path().join("out"))
        .env_remove("REDISCLI_AUTH");
    let (code, err, _, took) = common::run_measured(&mut c);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no useful progress"), "{err}");
    assert!(took < Duration::from_secs(8), "{took:?}");
}

/// A read-only ACL user without INFO (`+@read`, with or without `+select`): diff finds the
/// databases with SELECT + DBSIZE and compares as with INFO.
#[test]
fn read_only_users_without_info_still_compare() {
    let f = common::testdata("small-db0.rdb");
    let Some(server) = RedisServer::start_with_rdb(&f, &[]) else { return };
    for (user, rules) in [("reader", &["+@read", "+select", "+ping"][..]), ("bare", &["+@read"][..])] {
        let mut acl: Vec<&[u8]> = vec![b"ACL", b"SETUSER", user.as_bytes(), b"on", b">pw", b"~*"];
        acl.extend(rules.iter().map(|r| r.as_bytes()));
        assert_eq!(server.cmd(&acl), Resp::Simple("OK".into()));
    }
    let u = |user: &str| format!("redis://{user}@127.0.0.1:{}", server.port);
    let env = [("REDISCLI_AUTH", "pw")];
    // INFO is refused to both.
    let o = rdbtool_env(&["diff", f.to_str().unwrap(), &u("reader")], &env);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    let o = rdbtool_env(&["diff", f.to_str().unwrap(), &u("bare")], &env);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    // A key in db 3 only the server has: found by the probe.
    server.select(3);
    assert_eq!(server.cmd(&[b"SET", b"extra", b"1"]), Resp::Simple("OK".into()));
    let o = rdbtool_env(&["diff", f.to_str().unwrap(), &u("reader"), "--jsonl"], &env);
    assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("\"db\":3,\"key\":\"extra\",\"kind\":\"only_in_b\""), "{out}");
}
