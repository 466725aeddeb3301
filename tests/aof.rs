//! AOF sets: point-in-time cuts replayed by a real redis-server against the datasets recorded
//! while the fixtures were written (testdata/aof/, scripts/gen_aof_testdata.py), `verify` on
//! damaged copies (each damage: exit 1, the right message, file, offset and line), `verify` and
//! `timeline` on every fixture of ../shared, the command iterator across files, and property
//! tests of the RESP and manifest parsers.

mod common;
use common::rdbtool;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{ExpiryWindow, RedisServer, Resp};
use proptest::prelude::*;
use rdbtool::aof::manifest::{FileType, Manifest, ManifestEntry};
use rdbtool::aof::resp::{CommandKind, Event, RespParser, encode_command};
use rdbtool::aof::set::AofSet;
use rdbtool::json::to_bytes;
use serde_json::Value as Json;

const SETS: [&str; 2] = ["preamble", "plain"];

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn fixture(set: &str) -> PathBuf {
    common::testdata("aof").join(set)
}

/// A copy of a fixture set's appendonlydir in a temp dir, to damage.
fn copy_set(set: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("appendonlydir");
    std::fs::create_dir(&dst).unwrap();
    for e in std::fs::read_dir(fixture(set).join("appendonlydir")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    (tmp, dst)
}

/// Every file of a directory with its bytes (to prove inputs are left alone).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect()
}

fn verify_json(path: &Path) -> (i32, Json) {
    let o = rdbtool(&["verify", "--json", s(path)]);
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    (o.status.code().unwrap(), doc)
}

/// The first error of a one-set verify: (file, offset, line, kind, message).
fn first_error(path: &Path) -> (String, u64, Option<u64>, String, String) {
    let (code, doc) = verify_json(path);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["ok"], false);
    let e = &doc["files"][0]["errors"][0];
    (
        e["file"].as_str().unwrap_or("").to_owned(),
        e["offset"].as_u64().unwrap(),
        e["line"].as_u64(),
        e["kind"].as_str().unwrap().to_owned(),
        e["message"].as_str().unwrap().to_owned(),
    )
}

// ------------------------------------------------------------------------------------------
// The dataset of a server, in the logical terms of testdata/expected/*.json

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Zset(Vec<(Vec<u8>, f64)>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    Stream(Vec<(String, Fields)>),
}

type Dataset = BTreeMap<(u64, Vec<u8>), (i64, Value)>;

fn jb(v: &Json) -> Vec<u8> {
    to_bytes(v).unwrap_or_else(|| panic!("not a byte string: {v}"))
}

fn jscore(v: &Json) -> f64 {
    match v {
        Json::Number(n) => n.as_f64().unwrap(),
        Json::String(s) if s == "inf" => f64::INFINITY,
        Json::String(s) if s == "-inf" => f64::NEG_INFINITY,
        _ => panic!("bad score {v}"),
    }
}

fn sorted<T: PartialOrd>(mut v: Vec<T>) -> Vec<T> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

fn expected_dataset(path: &Path) -> (Dataset, Vec<Vec<u8>>) {
    let doc: Json = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut out = Dataset::new();
    for (db, entries) in doc["dbs"].as_object().unwrap() {
        for e in entries.as_array().unwrap() {
            let v = &e["value"];
            let arr = || v.as_array().unwrap().clone();
            let pairs = || sorted(arr().iter().map(|p| (jb(&p[0]), jb(&p[1]))).collect());
            let value = match e["type"].as_str().unwrap() {
                "string" => Value::Str(jb(v)),
                "list" => Value::List(arr().iter().map(jb).collect()),
                "set" => Value::Set(sorted(arr().iter().map(jb).collect())),
                "zset" => Value::Zset(sorted(arr().iter().map(|p| (jb(&p[0]), jscore(&p[1]))).collect())),
                "hash" => Value::Hash(pairs()),
                "stream" => Value::Stream(
                    arr()
                        .iter()
                        .map(|x| {
                            let f = x[1].as_array().unwrap().iter().map(|p| (jb(&p[0]), jb(&p[1]))).collect();
                            (x[0].as_str().unwrap().to_owned(), f)
                        })
                        .collect(),
                ),
                t => panic!("unexpected type {t}"),
            };
            let key = (db.parse().unwrap(), jb(&e["key"]));
            out.insert(key, (e["expire_at_ms"].as_i64().unwrap(), value));
        }
    }
    let functions = doc["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|lib| {
            let a = lib.as_array().unwrap();
            let i = a.iter().position(|x| x == "library_code").unwrap();
            jb(&a[i + 1])
        })
        .collect();
    (out, sorted(functions))
}

fn bulk(r: &Resp) -> Vec<u8> {
    r.as_bytes().unwrap_or_else(|| panic!("not a bulk: {r:?}")).to_vec()
}

fn array(r: Resp) -> Vec<Resp> {
    match r {
        Resp::Array(Some(a)) => a,
        other => panic!("not an array: {other:?}"),
    }
}

/// What `srv` holds (`common::server_dataset`), in the logical terms of the expected files.
fn server_dataset(srv: &RedisServer) -> (Dataset, Vec<Vec<u8>>) {
    use rdbtool::rdb::value::Value as V;
    let held = common::server_dataset(srv);
    let mut out = Dataset::new();
    for (key, (expire, v)) in held.keys {
        let value = match v {
            V::String(b) => Value::Str(b),
            V::List(l) => Value::List(l),
            V::Set(m) => Value::Set(sorted(m)),
            V::Zset(z) => Value::Zset(sorted(z)),
            V::Hash(h) => Value::Hash(sorted(h.into_iter().map(|f| (f.field, f.value)).collect())),
            V::Stream(st) => Value::Stream(st.entries.into_iter().map(|e| (e.id.to_string(), e.fields)).collect()),
            V::Module(_) => panic!("unexpected module value {key:?}"),
        };
        out.insert(key, (expire.unwrap_or(-1), value));
    }
    (out, held.functions)
}

/// Compares what `srv` holds with the dataset recorded in `expected` when the fixture was made.
///
/// The fixtures' TTLs are absolute times in the AOF (Redis logs `SET .. PX` as `PXAT`, `EXPIRE`
/// as `PEXPIREAT`), so a key recorded with a TTL may have expired since: the recorded dataset
/// minus the keys whose expire time passed before `started_ms` (when the replay began) is what
/// the server must hold; keys expiring while it was read may be on either side. Returns how many
/// recorded keys were left out as expired, so the caller can say so.
fn assert_server_holds(srv: &RedisServer, started_ms: i64, expected: &Path, functions: bool, what: &str) -> usize {
    let (mut got, got_fn) = server_dataset(srv);
    let window = ExpiryWindow { start_ms: started_ms, end_ms: srv.time_ms() };
    let (mut want, want_fn) = expected_dataset(expected);
    assert!(!want.is_empty(), "{what}: empty expected dataset");
    for (key, (exp, _)) in &got {
        assert!(!window.gone(*exp), "{what}: {key:?} expired at {exp} ms, before the replay began ({started_ms})");
    }
    let recorded = want.len();
    want.retain(|_, (exp, _)| window.alive(*exp));
    got.retain(|_, (exp, _)| window.alive(*exp));
    assert_eq!(got, want, "{what} (recorded keys expired since they were recorded: {})", recorded - want.len());
    if functions {
        assert_eq!(got_fn, want_fn, "{what}: functions");
    }
    recorded - want.len()
}

/// A fresh redis-server loading the AOF directory `dir` (its parent is the server's --dir).
fn load_aof_dir(dir: &Path) -> Option<RedisServer> {
    let parent = dir.parent().unwrap();
    let name = dir.file_name().unwrap().to_str().unwrap();
    RedisServer::start(&["--dir", s(parent), "--appendonly", "yes", "--appenddirname", name])
}

// ------------------------------------------------------------------------------------------
// Point-in-time restore

#[test]
fn cut_at_every_batch_boundary_gives_that_dataset() {
    for set in SETS {
        let dir = fixture(set).join("appendonlydir");
        let before = snapshot(&dir);
        let meta: Json = serde_json::from_slice(&std::fs::read(fixture(set).join("batches.json")).unwrap()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let mut compared = 0;
        for b in meta["boundaries"].as_array().unwrap() {
            let name = b["name"].as_str().unwrap();
            let out = tmp.path().join(format!("cut-{name}"));
            // Both spellings of TIME: unix seconds, and RFC 3339.
            let to = if compared % 2 == 0 { b["time"].to_string() } else { b["utc"].as_str().unwrap().to_owned() };
            let o = rdbtool(&["aof", "cut", s(&dir), "--to", &to, "-o", s(&out)]);
            if !b["reachable"].as_bool().unwrap() {
                assert_eq!(o.status.code(), Some(1), "{set} {name}: {}", text(&o));
                assert!(text(&o).contains("before the base file's time"), "{set} {name}: {}", text(&o));
                assert!(!out.exists(), "{set} {name}: a refused cut left {}", out.display());
                continue;
            }
            assert_eq!(o.status.code(), Some(0), "{set} {name}: {}", text(&o));
            let v = rdbtool(&["verify", s(&out)]);
            assert_eq!(v.status.code(), Some(0), "{set} {name}: the cut does not verify: {}", text(&v));
            assert!(
                !std::fs::read_to_string(out.join("appendonly.aof.manifest")).unwrap().contains("type h"),
                "history is left out"
            );
            let started = common::now_ms();
            let Some(srv) = load_aof_dir(&out) else { return };
            let expected = fixture(set).join(b["expected"].as_str().unwrap());
            assert_server_holds(&srv, started, &expected, true, &format!("{set}: cut at {name} ({to})"));
            compared += 1;
        }
        assert_eq!(compared, 4, "{set}: boundaries compared");
        assert_eq!(snapshot(&dir), before, "{set}: the input changed");
    }
}

/// Redis <= 6.2 kept one file: the rewrite (RDB preamble or commands) with the later commands
/// appended. The fixture sets' base + incr files, concatenated, are exactly that.
#[test]
fn single_file_aofs_verify_and_cut() {
    for set in SETS {
        let dir = fixture(set).join("appendonlydir");
        let meta: Json = serde_json::from_slice(&std::fs::read(fixture(set).join("batches.json")).unwrap()).unwrap();
        let manifest = Manifest::parse(&std::fs::read(dir.join("appendonly.aof.manifest")).unwrap()).unwrap();
        let mut one = Vec::new();
        for e in manifest.loaded() {
            one.extend(std::fs::read(dir.join(String::from_utf8_lossy(&e.name).as_ref())).unwrap());
        }
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("appendonly.aof");
        std::fs::write(&file, &one).unwrap();
        let (code, doc) = verify_json(&file);
        assert_eq!(code, 0, "{doc}");
        let aof = &doc["files"][0]["aof"];
        let format = if set == "preamble" { "rdb+resp" } else { "resp" };
        assert_eq!((aof["layout"].as_str(), aof["files"][0]["format"].as_str()), (Some("single"), Some(format)));
        assert_eq!(aof["multi_blocks"], 2);

        for b in meta["boundaries"].as_array().unwrap() {
            let name = b["name"].as_str().unwrap();
            let out = tmp.path().join(format!("cut-{name}"));
            let o = rdbtool(&["aof", "cut", s(&file), "--to", &b["time"].to_string(), "-o", s(&out)]);
            if !b["reachable"].as_bool().unwrap() {
                assert_eq!(o.status.code(), Some(1), "{set} {name}: {}", text(&o));
                continue;
            }
            assert_eq!(o.status.code(), Some(0), "{set} {name}: {}", text(&o));
            assert_eq!(
                std::fs::read_to_string(out.join("appendonly.aof.manifest")).unwrap(),
                "file appendonly.aof seq 1 type b\n"
            );
            if name != "batch-4" {
                continue;
            }
            let started = common::now_ms();
            let Some(srv) = load_aof_dir(&out) else { return };
            let expected = fixture(set).join(b["expected"].as_str().unwrap());
            assert_server_holds(&srv, started, &expected, true, &format!("{set}: single file cut at {name}"));
        }
        assert_eq!(std::fs::read(&file).unwrap(), one, "the input changed");
    }
}

#[test]
fn cut_links_unchanged_files_and_refuses_what_it_cannot_do() {
    use std::os::unix::fs::MetadataExt;
    let dir = fixture("preamble").join("appendonlydir");
    let meta: Json = serde_json::from_slice(&std::fs::read(fixture("preamble").join("batches.json")).unwrap()).unwrap();
    let t3 =
        meta["boundaries"].as_array().unwrap().iter().find(|b| b["name"] == "batch-3").unwrap()["time"].to_string();
    let (tmp, copy) = copy_set("preamble");
    let out = tmp.path().join("linked");
    let o = rdbtool(&["aof", "cut", s(&copy), "--to", &t3, "-o", s(&out), "--link", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let sum: Json = serde_json::from_slice(&o.stdout).unwrap();
    let actions: Vec<(&str, &str)> = sum["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("appendonly.aof.2.base.rdb", "linked"),
            ("appendonly.aof.2.incr.aof", "linked"),
            ("appendonly.aof.3.incr.aof", "rewritten")
        ]
    );
    let ino = |p: PathBuf| std::fs::metadata(p).unwrap().ino();
    assert_eq!(ino(out.join("appendonly.aof.2.base.rdb")), ino(copy.join("appendonly.aof.2.base.rdb")));
    assert_ne!(ino(out.join("appendonly.aof.3.incr.aof")), ino(copy.join("appendonly.aof.3.incr.aof")));

    // The target exists: exit 2, nothing touched.
    let o = rdbtool(&["aof", "cut", s(&dir), "--to", &t3, "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("exists"));
    // A bad TIME is a usage error.
    let o = rdbtool(&["aof", "cut", s(&dir), "--to", "yesterday", "-o", s(&tmp.path().join("x"))]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // Without #TS annotations there is no time to cut at.
    let (_t2, bare) = copy_set("plain");
    for f in ["appendonly.aof.2.incr.aof", "appendonly.aof.3.incr.aof"] {
        let data = std::fs::read(bare.join(f)).unwrap();
        let mut kept = Vec::new();
        let mut p = RespParser::new(&data, 0, None);
        let mut argv = Vec::new();
        while let Some(ev) = p.next_event(&mut argv).unwrap() {
            if let Event::Command(m) = ev {
                kept.extend_from_slice(&data[m.offset as usize..m.end as usize]);
            }
        }
        std::fs::write(bare.join(f), kept).unwrap();
    }
    let o = rdbtool(&["aof", "cut", s(&bare), "--to", "4102444800", "-o", s(&tmp.path().join("y"))]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no #TS annotations"), "{}", text(&o));
    assert!(!tmp.path().join("y").exists());
    // No temporary directory is left behind by any of this.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.iter().all(|n| !n.to_string_lossy().contains(".tmp-")), "{left:?}");
}

#[test]
fn cut_leaves_out_a_truncated_tail() {
    let (tmp, copy) = copy_set("preamble");
    let last = copy.join("appendonly.aof.3.incr.aof");
    let data = std::fs::read(&last).unwrap();
    std::fs::write(&last, &data[..data.len() - 3]).unwrap();
    let out = tmp.path().join("cut");
    let o = rdbtool(&["aof", "cut", s(&copy), "--to", "4102444800", "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("incomplete tail"), "{}", text(&o));
    let v = rdbtool(&["verify", s(&out)]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
}

// ------------------------------------------------------------------------------------------
// verify and timeline on good sets

#[test]
fn verify_and_timeline_accept_our_fixtures() {
    let mut paths: Vec<PathBuf> = SETS.iter().map(|s| fixture(s).join("appendonlydir")).collect();
    paths.push(common::testdata("preamble-aof"));
    for p in &paths {
        let (code, doc) = verify_json(p);
        assert_eq!(code, 0, "{doc}");
        assert_eq!(doc["ok"], true);
        let f = &doc["files"][0];
        assert_eq!(f["aof"]["layout"], "multipart");
        assert!(f["aof"]["commands"].as_u64().unwrap() > 10, "{f}");
        assert!(f["aof"]["restore_range"]["from"]["unix"].as_i64().unwrap() > 1_700_000_000);
        let t = rdbtool(&["aof", "timeline", s(p)]);
        assert_eq!(t.status.code(), Some(0), "{}", text(&t));
        assert!(text(&t).contains("restore range: "), "{}", text(&t));
    }
    // Two incr files, two history files, MULTI blocks, four dbs.
    let (_, doc) = verify_json(&paths[0]);
    let aof = &doc["files"][0]["aof"];
    let roles: Vec<&str> = aof["files"].as_array().unwrap().iter().map(|f| f["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["base", "incr", "incr", "history", "history"]);
    assert_eq!(aof["multi_blocks"], 2);
    let dbs: Vec<u64> = aof["dbs"].as_array().unwrap().iter().map(|d| d["db"].as_u64().unwrap()).collect();
    assert_eq!(dbs, [0, 1, 2, 5]);
    // The text line, like RDB verify's.
    let o = rdbtool(&["verify", s(&paths[0])]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with(&format!("OK    {}  (AOF set: 1 base + 2 incr + 2 history", paths[0].display())), "{out}");
}

#[test]
fn verify_and_timeline_accept_the_shared_fixtures() {
    let Some(shared) = common::shared_dir() else { return };
    let mut seen = 0;
    for e in std::fs::read_dir(shared.join("fixtures/generated")).unwrap() {
        let dir = e.unwrap().path().join("appendonlydir");
        if !dir.is_dir() {
            continue;
        }
        let (code, doc) = verify_json(&dir);
        assert_eq!(code, 0, "{}: {doc}", dir.display());
        assert!(doc["files"][0]["warnings"].as_array().unwrap().is_empty(), "{doc}");
        let t = rdbtool(&["aof", "timeline", "--json", s(&dir)]);
        assert_eq!(t.status.code(), Some(0), "{}", text(&t));
        let tl: Json = serde_json::from_slice(&t.stdout).unwrap();
        let files = tl["aof"]["files"].as_array().unwrap();
        let incr = files.iter().find(|f| f["role"] == "incr").unwrap();
        let manifest = std::fs::read_to_string(dir.join("appendonly.aof.manifest")).unwrap();
        // Redis 8 writes replication offsets on incr lines: they are read.
        assert_eq!(manifest.contains("startoffset"), incr["start_offset"].is_i64(), "{}", dir.display());
        assert!(
            tl["aof"]["restore_range"]["to"]["unix"].as_i64().unwrap()
                >= tl["aof"]["base_time"]["unix"].as_i64().unwrap()
        );
        seen += 1;
    }
    assert!(seen >= 7, "only {seen} generated AOF dirs");
    // The old single-file form, with an RDB preamble.
    let (code, doc) = verify_json(&shared.join("fixtures/redis/rdb-preamble.aof"));
    assert_eq!(code, 0, "{doc}");
    let f = &doc["files"][0];
    assert_eq!(
        (f["aof"]["layout"].as_str(), f["aof"]["files"][0]["format"].as_str()),
        (Some("single"), Some("rdb+resp"))
    );
    assert!(f["warnings"].as_array().unwrap().is_empty(), "the RESP tail is not a trailing-bytes warning: {f}");
    assert_eq!(f["aof"]["commands"], 2);
}

#[test]
fn cut_keeps_redis8_offsets_on_copied_lines() {
    let Some(shared) = common::shared_dir() else { return };
    let dir = shared.join("fixtures/generated/redis-8.6.3/appendonlydir");
    let tmp = tempfile::tempdir().unwrap();
    // After the last #TS: everything is copied, the manifest lines as they were.
    let all = tmp.path().join("all");
    let o = rdbtool(&["aof", "cut", s(&dir), "--to", "4102444800", "-o", s(&all)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = std::fs::read_to_string(all.join("appendonly.aof.manifest")).unwrap();
    assert_eq!(m, std::fs::read_to_string(dir.join("appendonly.aof.manifest")).unwrap());
    // At the base's time: the incr file is cut short, so its endoffset goes and startoffset stays.
    let set = AofSet::open(&dir).unwrap();
    let rep = set.check("x", None);
    let base = rep.aof.unwrap().base_time.unwrap().unix;
    let short = tmp.path().join("short");
    let o = rdbtool(&["aof", "cut", s(&dir), "--to", &base.to_string(), "-o", s(&short)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = std::fs::read_to_string(short.join("appendonly.aof.manifest")).unwrap();
    assert!(m.contains("type i startoffset 1654\n") && !m.contains("endoffset"), "{m}");
}

// ------------------------------------------------------------------------------------------
// verify on damaged sets: exit 1, the right message, file, offset and line

/// Commands of one file: (offset, end, name).
fn commands_of(data: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
    RespParser::new(data, 0, None)
        .map(|c| c.unwrap())
        .map(|c| (c.meta.offset, c.meta.end, c.argv[0].to_vec()))
        .collect()
}

#[test]
fn verify_reports_truncated_files() {
    let (_t, dir) = copy_set("plain");
    let f3 = dir.join("appendonly.aof.3.incr.aof");
    let data = std::fs::read(&f3).unwrap();
    let cmds = commands_of(&data);
    // Cut the last file inside its fourth command.
    let (at, end, _) = cmds[3].clone();
    let prev_end = cmds[2].1;
    let cut = (at + end) / 2;
    std::fs::write(&f3, &data[..cut as usize]).unwrap();
    let (file, offset, line, kind, msg) = first_error(&dir);
    assert_eq!((file.as_str(), offset, kind.as_str()), ("appendonly.aof.3.incr.aof", at, "truncated"));
    assert_eq!(line, Some(rdbtool::aof::resp::line_at(&data, at)));
    assert!(msg.contains(&format!("keeps the first {prev_end} bytes and drops {}", cut - prev_end)), "{msg}");
    let (_, doc) = verify_json(&dir);
    let t = &doc["files"][0]["aof"]["truncated"];
    assert_eq!(
        (t["ok_up_to"].as_u64(), t["lost_bytes"].as_u64(), t["last_file"].as_bool()),
        (Some(prev_end), Some(cut - prev_end), Some(true))
    );
    let o = rdbtool(&["verify", s(&dir)]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("FAIL  "), "{out}");
    assert!(out.contains(&format!("at appendonly.aof.3.incr.aof offset {at} (line ")), "{out}");

    // The same in a file that is not the last: Redis refuses the set.
    let (_t, dir) = copy_set("plain");
    let f2 = dir.join("appendonly.aof.2.incr.aof");
    let data = std::fs::read(&f2).unwrap();
    std::fs::write(&f2, &data[..data.len() - 1]).unwrap();
    let (file, _, _, kind, msg) = first_error(&dir);
    assert_eq!((file.as_str(), kind.as_str()), ("appendonly.aof.2.incr.aof", "truncated"));
    assert!(msg.contains("not the last file"), "{msg}");

    // Ending inside a transaction: what is kept stops before the MULTI.
    let (_t, dir) = copy_set("preamble");
    let f2 = dir.join("appendonly.aof.2.incr.aof");
    let data = std::fs::read(&f2).unwrap();
    let cmds = commands_of(&data);
    let m = cmds.iter().position(|c| c.2.eq_ignore_ascii_case(b"multi")).unwrap();
    std::fs::write(&f2, &data[..cmds[m + 1].1 as usize]).unwrap();
    std::fs::remove_file(dir.join("appendonly.aof.3.incr.aof")).unwrap();
    let manifest = dir.join("appendonly.aof.manifest");
    let text_m =
        std::fs::read_to_string(&manifest).unwrap().replace("file appendonly.aof.3.incr.aof seq 3 type i\n", "");
    std::fs::write(&manifest, text_m).unwrap();
    let (file, offset, _, kind, msg) = first_error(&dir);
    assert_eq!((file.as_str(), offset, kind.as_str()), ("appendonly.aof.2.incr.aof", cmds[m].0, "truncated"));
    assert!(msg.contains("no EXEC") && msg.contains(&format!("keeps the first {} bytes", cmds[m - 1].1)), "{msg}");

    // A truncated base RDB is the RDB verifier's error, named with its file.
    let (_t, dir) = copy_set("preamble");
    let base = dir.join("appendonly.aof.2.base.rdb");
    let data = std::fs::read(&base).unwrap();
    std::fs::write(&base, &data[..data.len() / 2]).unwrap();
    let (file, _, _, kind, _) = first_error(&dir);
    assert_eq!((file.as_str(), kind.as_str()), ("appendonly.aof.2.base.rdb", "truncated"));
}

#[test]
fn verify_reports_bad_manifests() {
    let good = std::fs::read_to_string(fixture("preamble").join("appendonlydir/appendonly.aof.manifest")).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let join = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
    let cases: Vec<(String, usize, &str)> = vec![
        (String::new(), 0, "Found an empty AOF manifest"),
        (good.trim_end().to_owned(), 5, "does not end with a newline"),
        (join(&[lines[0], "", lines[1]]), 2, "blank line"),
        (join(&[lines[0], "file x seq 9 type z", lines[1]]), 2, "Unknown AOF file type"),
        (join(&[lines[0], "file appendonly.aof.9.base.rdb seq 9 type b"]), 2, "duplicate base"),
        (join(&[lines[0], lines[4], lines[3]]), 3, "non-monotonic"),
        (join(&["file ../x seq 1 type b"]), 1, "File can't be a path"),
        (join(&[lines[0], "file x seq 1"]), 2, "Invalid AOF manifest file format"),
        (join(&["# ok", "file \"x seq 1 type b"]), 2, "unbalanced quotes"),
        (join(&[lines[0], "file x seq 0 type i"]), 2, "non-zero seq"),
    ];
    for (content, line, phrase) in cases {
        let (_t, dir) = copy_set("preamble");
        std::fs::write(dir.join("appendonly.aof.manifest"), &content).unwrap();
        let (file, offset, l, kind, msg) = first_error(&dir);
        assert_eq!((file.as_str(), kind.as_str()), ("appendonly.aof.manifest", "corrupt"), "{content:?}");
        assert!(msg.contains(phrase), "{content:?}: {msg}");
        assert_eq!(l, (line > 0).then_some(line as u64), "{content:?}: {msg}");
        let line_start: usize = content.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
        assert_eq!(offset, line_start as u64, "{content:?}");
        let o = rdbtool(&["aof", "timeline", s(&dir)]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains(phrase));
    }
}

#[test]
fn verify_reports_missing_and_stray_files() {
    let (_t, dir) = copy_set("preamble");
    std::fs::remove_file(dir.join("appendonly.aof.2.incr.aof")).unwrap();
    let (file, _, _, _, msg) = first_error(&dir);
    assert_eq!(file, "appendonly.aof.2.incr.aof");
    assert!(msg.contains("listed in the manifest (line 4) as an incr file, but missing"), "{msg}");

    // Stray files and a gone history file are warnings; the set is still OK.
    let (_t, dir) = copy_set("preamble");
    std::fs::write(dir.join("temp-rewriteaof-bg-123.aof"), b"x").unwrap();
    std::fs::write(dir.join("notes.txt"), b"x").unwrap();
    std::fs::remove_file(dir.join("appendonly.aof.1.incr.aof")).unwrap();
    let (code, doc) = verify_json(&dir);
    assert_eq!(code, 0, "{doc}");
    let warnings = doc["files"][0]["warnings"].to_string();
    assert!(warnings.contains("notes.txt: not listed in the manifest"), "{warnings}");
    assert!(warnings.contains("temp-rewriteaof-bg-123.aof: not listed in the manifest: a leftover"), "{warnings}");
    assert!(
        warnings.contains("appendonly.aof.1.incr.aof: history file listed in the manifest (line 2) is gone"),
        "{warnings}"
    );
}

#[test]
fn verify_reports_garbage_and_unbalanced_multi() {
    let damage = |f: &str, edit: &dyn Fn(&[u8]) -> Vec<u8>| {
        let (t, dir) = copy_set("plain");
        let p = dir.join(f);
        let data = std::fs::read(&p).unwrap();
        std::fs::write(&p, edit(&data)).unwrap();
        (t, dir, data)
    };
    let incr = "appendonly.aof.2.incr.aof";
    let data = std::fs::read(fixture("plain").join("appendonlydir").join(incr)).unwrap();
    let cmds = commands_of(&data);
    let m = cmds.iter().position(|c| c.2.eq_ignore_ascii_case(b"multi")).unwrap();
    let e = cmds.iter().position(|c| c.2.eq_ignore_ascii_case(b"exec")).unwrap();

    // Garbage between two commands.
    let at = cmds[2].1 as usize;
    let (_t, dir, _) = damage(incr, &|d| [&d[..at], b"xyz\r\n", &d[at..]].concat());
    let (file, offset, line, kind, msg) = first_error(&dir);
    assert_eq!((file.as_str(), offset, kind.as_str()), (incr, at as u64, "corrupt"));
    assert_eq!(line, Some(rdbtool::aof::resp::line_at(&data, at as u64)));
    assert!(msg.contains("expected '*' (a command) or '#' (an annotation), found 'x'"), "{msg}");

    // A bulk string whose length is off by one: its CRLF is not where it should be.
    let (_t, dir, _) = damage(incr, &|d| {
        let s = String::from_utf8_lossy(d).replacen("$4\r\nRPOP\r\n", "$3\r\nRPOP\r\n", 1);
        s.into_bytes()
    });
    let (_, _, _, kind, msg) = first_error(&dir);
    assert_eq!(kind, "corrupt");
    assert!(msg.contains("not followed by \\r\\n"), "{msg}");

    // EXEC without MULTI: the MULTI removed.
    let (m_at, m_end) = (cmds[m].0 as usize, cmds[m].1 as usize);
    let (_t, dir, _) = damage(incr, &|d| [&d[..m_at], &d[m_end..]].concat());
    let (file, offset, _, kind, msg) = first_error(&dir);
    let exec_at = cmds[e].0 - (m_end - m_at) as u64;
    assert_eq!((file.as_str(), offset, kind.as_str(), msg.as_str()), (incr, exec_at, "corrupt", "EXEC without MULTI"));

    // A MULTI inside a MULTI.
    let (_t, dir, _) = damage(incr, &|d| [&d[..m_end], &d[m_at..]].concat());
    let (_, offset, _, kind, msg) = first_error(&dir);
    assert_eq!((offset, kind.as_str()), (m_end as u64, "corrupt"));
    assert!(msg.contains("nested MULTI") && msg.contains(&format!("opened at offset {m_at}")), "{msg}");

    // A MULTI that never ends in a file that is not the last: EXEC removed.
    let (e_at, e_end) = (cmds[e].0 as usize, cmds[e].1 as usize);
    let (_t, dir, _) = damage(incr, &|d| [&d[..e_at], &d[e_end..]].concat());
    let (_, offset, _, kind, msg) = first_error(&dir);
    assert_eq!((offset, kind.as_str()), (m_at as u64, "truncated"));
    assert!(msg.contains("no EXEC") && msg.contains("not the last file"), "{msg}");
}

/// Commands Redis never writes to an AOF and that act outside the dataset (REPLICAOF, CONFIG,
/// MIGRATE, ...) make `verify` fail and are never replayed by `aof to-rdb`: a crafted set with
/// `REPLICAOF` to a listener of this test gets no connection. Reads and unknown commands are
/// only warnings (Redis replays a GET harmlessly; a module's command needs the module).
#[test]
fn commands_redis_never_writes_are_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let last = "appendonly.aof.3.incr.aof";
    for (cmd, refused) in [
        (vec!["REPLICAOF", "127.0.0.1", port.as_str()], true),
        (vec!["config", "set", "dir", "/tmp"], true),
        (vec!["CONFIG", "NOSUCHSUB"], true),
        (vec!["MIGRATE", "127.0.0.1", port.as_str(), "k", "0", "100"], true),
        (vec!["ACL", "SETUSER", "x", "on", ">p", "+@all"], true),
        (vec!["MODULE", "LOAD", "/tmp/x.so"], true),
        (vec!["DEBUG", "SLEEP", "0"], true),
        (vec!["SHUTDOWN", "NOSAVE"], true),
        (vec!["GET", "k"], false),
        (vec!["JSON.SET", "k", "$", "1"], false),
    ] {
        let (_t, dir) = copy_set("plain");
        let p = dir.join(last);
        let before = std::fs::read(&p).unwrap();
        let argv: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        let at = before.len() as u64;
        let mut data = before.clone();
        encode_command(&mut data, &argv);
        std::fs::write(&p, &data).unwrap();
        let what = cmd.join(" ");
        if refused {
            let (file, offset, line, kind, msg) = first_error(&dir);
            assert_eq!((file.as_str(), offset, kind.as_str()), (last, at, "unsafe"), "{what}: {msg}");
            assert_eq!(line, Some(rdbtool::aof::resp::line_at(&std::fs::read(&p).unwrap(), at)));
            assert!(msg.contains("never writes") && msg.contains("to an AOF"), "{what}: {msg}");
            let out = dir.parent().unwrap().join("out.rdb");
            let o = rdbtool(&["aof", "to-rdb", s(&dir), "-o", s(&out)]);
            assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o));
            assert!(text(&o).contains("not replayed"), "{what}: {}", text(&o));
            assert!(!out.exists());
        } else {
            let (code, doc) = verify_json(&dir);
            assert_eq!(code, 0, "{what}: {doc}");
            let warnings = doc["files"][0]["warnings"].to_string();
            assert!(warnings.contains(&cmd[0].to_ascii_uppercase()), "{what}: {warnings}");
        }
    }
    assert!(listener.accept().is_err(), "something connected to the REPLICAOF / MIGRATE target");
    // Many of them: listed up to --max-errors, the rest counted.
    let (_t, dir) = copy_set("plain");
    let p = dir.join(last);
    let mut data = std::fs::read(&p).unwrap();
    for _ in 0..5000 {
        encode_command(&mut data, &[b"CONFIG", b"SET", b"dir", b"/tmp"]);
    }
    std::fs::write(&p, &data).unwrap();
    let o = rdbtool(&["verify", "--json", "--keep-going", "--max-errors", "10", s(&dir)]);
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    let f = &doc["files"][0];
    assert_eq!(f["errors"].as_array().unwrap().len(), 10, "{}", f["errors_not_listed"]);
    assert_eq!(f["errors"].as_array().unwrap().len() as u64 + f["errors_not_listed"].as_u64().unwrap(), 5000);
}

// ------------------------------------------------------------------------------------------
// The command stream of a set

#[test]
fn commands_run_across_files_with_db_and_time() {
    let set = AofSet::open(&fixture("preamble").join("appendonlydir")).unwrap();
    let cmds: Vec<_> = set.commands().map(|c| c.unwrap()).collect();
    let rep = set.check("x", None);
    assert_eq!(cmds.len() as u64, rep.aof.as_ref().unwrap().commands);
    // Files in manifest order, offsets increasing within each.
    let parts: Vec<usize> = cmds.iter().map(|c| c.part).collect();
    assert!(parts.windows(2).all(|w| w[0] <= w[1]) && parts[0] == 1 && *parts.last().unwrap() == 2);
    for w in cmds.windows(2).filter(|w| w[0].part == w[1].part) {
        assert!(w[0].cmd.meta.end <= w[1].cmd.meta.offset);
    }
    let find = |name: &[u8], key: &[u8]| {
        cmds.iter().find(|c| c.cmd.argv[0].eq_ignore_ascii_case(name) && c.cmd.argv.get(1) == Some(&key)).unwrap()
    };
    assert_eq!(find(b"SET", b"db5:only").cmd.meta.db, 5);
    let tx = find(b"SET", b"db1:tx");
    assert_eq!(tx.cmd.meta.db, 1);
    assert!(tx.cmd.meta.multi.is_some());
    // Timestamps never go back and every command has one.
    let ts: Vec<i64> = cmds.iter().map(|c| c.cmd.meta.ts.unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    // The argument slices point into the mapped file.
    let data: &[u8] = &set.parts[tx.part].data;
    let range = data.as_ptr_range();
    assert!(tx.cmd.argv.iter().all(|a| range.contains(&a.as_ptr())));
    assert!(cmds.iter().filter(|c| c.cmd.meta.kind == CommandKind::Exec).count() == 2);
}

// ------------------------------------------------------------------------------------------
// Properties

#[derive(Debug, Clone)]
enum Rec {
    Cmd(Vec<Vec<u8>>),
    Ts(u32),
}

fn rec() -> impl Strategy<Value = Rec> {
    prop_oneof![
        4 => prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 1..5).prop_map(Rec::Cmd),
        1 => (0u32..2_000_000_000).prop_map(Rec::Ts),
    ]
}

fn encode(recs: &[Rec]) -> (Vec<u8>, Vec<u64>) {
    let mut out = Vec::new();
    let mut ends = Vec::new();
    for r in recs {
        match r {
            Rec::Cmd(argv) => {
                encode_command(&mut out, &argv.iter().map(|a| a.as_slice()).collect::<Vec<_>>());
                ends.push(out.len() as u64);
            }
            Rec::Ts(t) => out.extend_from_slice(format!("#TS:{t}\r\n").as_bytes()),
        }
    }
    (out, ends)
}

fn entry() -> impl Strategy<Value = (Vec<u8>, i64, Fields)> {
    let name =
        prop::collection::vec(any::<u8>().prop_filter("no path or NUL", |b| !matches!(b, b'/' | b'\\' | 0)), 0..30);
    let key = prop::collection::vec(any::<u8>(), 0..12).prop_filter("not file/seq/type", |k| {
        !["file", "seq", "type"].iter().any(|w| k.eq_ignore_ascii_case(w.as_bytes()))
    });
    let extra = prop::collection::vec((key, prop::collection::vec(any::<u8>(), 0..12)), 0..3);
    (name, prop_oneof![1i64..1000, -1000i64..-1, Just(i64::MAX), Just(i64::MIN)], extra)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Encoded commands read back as they were, with their offsets and timestamps; cut at any
    /// byte, the file reads as its complete commands plus a truncation at the next one.
    #[test]
    fn resp_round_trip_and_truncation(recs in prop::collection::vec(rec(), 0..12), cut in any::<prop::sample::Index>()) {
        let (data, ends) = encode(&recs);
        let mut p = RespParser::new(&data, 0, None);
        let mut got = Vec::new();
        let mut last_ts = None;
        let mut want_ts = Vec::new();
        for r in &recs {
            match r {
                Rec::Ts(t) => last_ts = Some(*t as i64),
                Rec::Cmd(_) => want_ts.push(last_ts),
            }
        }
        for c in p.by_ref() {
            let c = c.map_err(|e| TestCaseError::fail(e.to_string()))?;
            got.push((c.argv.iter().map(|a| a.to_vec()).collect::<Vec<_>>(), c.meta.end, c.meta.ts));
        }
        let want: Vec<_> = recs.iter().filter_map(|r| match r { Rec::Cmd(a) => Some(a.clone()), _ => None }).collect();
        prop_assert_eq!(got.iter().map(|g| g.0.clone()).collect::<Vec<_>>(), want);
        prop_assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), ends.clone());
        prop_assert_eq!(got.iter().map(|g| g.2).collect::<Vec<_>>(), want_ts);
        // What aof-load-truncated keeps: up to the last command (trailing annotations carry no data).
        prop_assert_eq!(p.ok_up_to(), ends.last().copied().unwrap_or(0));

        let n = cut.index(data.len() + 1);
        let mut p = RespParser::new(&data[..n], 0, None);
        let complete = ends.iter().filter(|&&e| e <= n as u64).count();
        let mut count = 0;
        let mut err = None;
        for c in p.by_ref() {
            match c { Ok(_) => count += 1, Err(e) => err = Some(e) }
        }
        prop_assert_eq!(count, complete);
        let kept = if complete == 0 { 0 } else { ends[complete - 1] };
        prop_assert_eq!(p.ok_up_to(), kept);
        if let Some(e) = err {
            prop_assert_eq!(e.kind, rdbtool::ErrorKind::Truncated);
            prop_assert_eq!(e.offset, kept.max(e.offset));
        }
    }

    /// Any bytes: an error or commands, never a panic; every argument lies inside the input.
    #[test]
    fn resp_never_panics(data in prop::collection::vec(prop_oneof![Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b'#'), Just(b'1'), any::<u8>()], 0..200)) {
        let mut p = RespParser::new(&data, 0, None);
        for c in p.by_ref().flatten() {
            prop_assert!(c.meta.end as usize <= data.len() && !c.argv.is_empty());
        }
        prop_assert!(p.ok_up_to() as usize <= data.len());
    }

    /// What the writer writes, the parser reads back identically (names and extra keys with
    /// any bytes, quoted as needed).
    #[test]
    fn manifest_round_trip(base in prop::option::of(entry()), hist in prop::collection::vec(entry(), 0..3), incr in prop::collection::vec(entry(), 0..4)) {
        let mut entries = Vec::new();
        if let Some((n, seq, extra)) = base {
            entries.push(ManifestEntry { name: n, seq, kind: FileType::Base, extra, line: 0 });
        }
        for (n, seq, extra) in hist {
            entries.push(ManifestEntry { name: n, seq, kind: FileType::History, extra, line: 0 });
        }
        for (i, (n, _, extra)) in incr.into_iter().enumerate() {
            entries.push(ManifestEntry { name: n, seq: i as i64 * 3 + 1, kind: FileType::Incr, extra, line: 0 });
        }
        for (i, e) in entries.iter_mut().enumerate() {
            e.line = i + 1;
        }
        let m = Manifest { entries };
        if m.entries.is_empty() {
            // Its text would be empty, which Redis refuses: writing it is refused.
            prop_assert!(m.to_bytes().is_err());
            return Ok(());
        }
        let bytes = m.to_bytes().map_err(TestCaseError::fail)?;
        let back = Manifest::parse(&bytes);
        prop_assert_eq!(back.map_err(|e| TestCaseError::fail(e.to_string()))?, m);
    }

    /// Any bytes: a manifest or an error naming a line inside the input, never a panic.
    #[test]
    fn manifest_never_panics(data in prop::collection::vec(prop_oneof![Just(b' '), Just(b'\n'), Just(b'"'), Just(b'\''), Just(b'\\'), Just(b'x'), Just(b'#'), any::<u8>()], 0..300)) {
        match Manifest::parse(&data) {
            Ok(m) => prop_assert!(m.entries.iter().all(|e| e.seq != 0 && !e.name.contains(&b'/'))),
            Err(e) => prop_assert!((e.offset as usize) <= data.len()),
        }
        let mut prefixed = b"file a seq 1 type b\n".to_vec();
        prefixed.extend_from_slice(&data);
        let _ = Manifest::parse(&prefixed);
    }
}

// ------------------------------------------------------------------------------------------
// to-rdb

#[test]
fn to_rdb_gives_the_dataset_at_a_time() {
    if RedisServer::start(&[]).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (set, at) in [("preamble", Some("batch-4")), ("plain", None), ("plain", Some("rewrite"))] {
        let meta: Json = serde_json::from_slice(&std::fs::read(fixture(set).join("batches.json")).unwrap()).unwrap();
        let boundaries = meta["boundaries"].as_array().unwrap();
        let b = match at {
            Some(name) => boundaries.iter().find(|b| b["name"] == name).unwrap(),
            None => boundaries.last().unwrap(),
        };
        let dir = fixture(set).join("appendonlydir");
        let before = snapshot(&dir);
        let out = tmp.path().join(format!("{set}-{}.rdb", at.unwrap_or("all")));
        let mut args = vec!["aof", "to-rdb", s(&dir), "-o", s(&out)];
        let time = b["time"].to_string();
        if at.is_some() {
            args.extend(["--to", &time]);
        }
        // The throwaway server of to-rdb replays the AOF from here on: keys whose PXAT has
        // passed are dropped by it (or by the server loading its RDB below).
        let started = common::now_ms();
        let o = rdbtool(&args);
        assert_eq!(o.status.code(), Some(0), "{set} {at:?}: {}", text(&o));
        assert_eq!(rdbtool(&["verify", s(&out)]).status.code(), Some(0));
        let srv = RedisServer::start_with_rdb(&out, &[]).unwrap();
        let expected = fixture(set).join(b["expected"].as_str().unwrap());
        assert_server_holds(&srv, started, &expected, true, &format!("{set} {at:?}"));
        assert_eq!(snapshot(&dir), before, "{set}: the input changed");
        // The target now exists: refused without --force.
        let o = rdbtool(&args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    }
    // Before the base: refused like cut.
    let dir = fixture("preamble").join("appendonlydir");
    let meta: Json = serde_json::from_slice(&std::fs::read(fixture("preamble").join("batches.json")).unwrap()).unwrap();
    let t1 = meta["boundaries"][0]["time"].to_string();
    let out = tmp.path().join("early.rdb");
    let o = rdbtool(&["aof", "to-rdb", s(&dir), "--to", &t1, "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!out.exists());
    // No server binary: a clear message, exit 2.
    let o = rdbtool(&["aof", "to-rdb", s(&dir), "-o", s(&out), "--redis-server", "/nonexistent/redis-server"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("needs a redis-server"), "{}", text(&o));
    // A server older than 7.0 cannot load an append-only directory: said before it is started.
    if let Some(old) = common::other_server("redis-6.2") {
        let o = rdbtool(&["aof", "to-rdb", s(&dir), "-o", s(&out), "--redis-server", s(&old)]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("is redis-server 6.2") && text(&o).contains("7.0 or later"), "{}", text(&o));
        assert!(!out.exists());
    }
}

// ------------------------------------------------------------------------------------------
// Finding a command and cutting right before it

/// Every (db 0) key with its string value.
fn strings_of(srv: &RedisServer) -> BTreeMap<Vec<u8>, Vec<u8>> {
    srv.select(0);
    let keys = array(srv.cmd(&[b"KEYS", b"*"]));
    keys.iter().map(|k| (bulk(k), bulk(&srv.cmd(&[b"GET", &bulk(k)])))).collect()
}

/// A FLUSHALL in the middle of a second, recorded by a real server: `aof find` gives its
/// position, `aof cut --before-command` (and `--before FLUSHALL`) stop right before it and the
/// cut replays to exactly the dataset before it; `--to` that second keeps it and says how not to.
#[test]
fn cut_before_an_accident_inside_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("appendonlydir");
    // Recorded again if a busy machine made the writes spill into the next second.
    let mut recorded = None;
    for _attempt in 0..5 {
        let Some(srv) =
            RedisServer::start(&["--appendonly", "yes", "--aof-timestamp-enabled", "yes", "--appendfsync", "always"])
        else {
            return;
        };
        // A new second begins, so every write below carries one #TS.
        let t0 = srv.time_ms();
        std::thread::sleep(std::time::Duration::from_millis((1000 - t0 % 1000 + 20) as u64));
        for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
            srv.cmd(&[b"SET", k.as_bytes(), v.as_bytes()]);
        }
        srv.cmd(&[b"MULTI"]);
        srv.cmd(&[b"SET", b"in-tx", b"x"]);
        srv.cmd(&[b"INCR", b"counter"]);
        srv.cmd(&[b"EXEC"]);
        let before = strings_of(&srv);
        srv.cmd(&[b"FLUSHALL"]);
        srv.cmd(&[b"SET", b"d", b"4"]);
        let second = srv.time_ms() / 1000;
        if second != (t0 + 1000) / 1000 {
            continue;
        }
        std::fs::create_dir(&dir).unwrap();
        for e in std::fs::read_dir(srv.path().join("appendonlydir")).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
        recorded = Some((before, second));
        break;
    }
    let (before, second) = recorded.expect("five recordings spilled over a second boundary");

    let o = rdbtool(&["aof", "find", s(&dir), "FLUSHALL", "SET b*", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    let m = doc["matches"].as_array().unwrap();
    assert_eq!(m.len(), 2, "{doc}");
    assert_eq!(m[0]["command"], serde_json::json!(["SET", "b", "2"]));
    assert_eq!(m[1]["command"], serde_json::json!(["FLUSHALL"]));
    assert_eq!(m[1]["ts"]["unix"], second);
    let pos = m[1]["position"].as_u64().unwrap();
    // The position is the command's index in the set (SELECT, MULTI, EXEC count).
    let set = AofSet::open(&dir).unwrap();
    let nth = set.commands().nth(pos as usize - 1).unwrap().unwrap();
    assert!(nth.cmd.name().eq_ignore_ascii_case(b"flushall"));
    assert_eq!(rdbtool(&["aof", "find", s(&dir), "FLUSHDB"]).status.code(), Some(1));

    let replay = |out: &Path| {
        let srv = load_aof_dir(out).unwrap();
        strings_of(&srv)
    };
    let by_position = tmp.path().join("before-position");
    let o = rdbtool(&["aof", "cut", s(&dir), "--before-command", &pos.to_string(), "-o", s(&by_position)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(replay(&by_position), before);
    let by_pattern = tmp.path().join("sub/dir/before-pattern");
    let o = rdbtool(&["aof", "cut", s(&dir), "--before", "FLUSHALL", "-o", s(&by_pattern)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(replay(&by_pattern), before);

    // Before a command inside the MULTI: the cut goes before the whole transaction.
    let incr = set.commands().position(|c| c.unwrap().cmd.name().eq_ignore_ascii_case(b"incr")).unwrap() + 1;
    let in_tx = tmp.path().join("in-tx");
    let o = rdbtool(&["aof", "cut", s(&dir), "--before-command", &incr.to_string(), "-o", s(&in_tx)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut want = before.clone();
    want.remove(b"in-tx".as_slice());
    want.remove(b"counter".as_slice());
    assert_eq!(replay(&in_tx), want);

    // To the second itself: the FLUSHALL is kept, with a warning naming the way out.
    let to = tmp.path().join("to");
    let o = rdbtool(&["aof", "cut", s(&dir), "--to", &second.to_string(), "-o", s(&to)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains(&format!("--before-command {pos}")), "{}", text(&o));

    // Refused: past the end, milliseconds given as seconds.
    let o = rdbtool(&["aof", "cut", s(&dir), "--before-command", "100000", "-o", s(&tmp.path().join("x"))]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let ms = (second * 1000).to_string();
    let o = rdbtool(&["aof", "cut", s(&dir), "--to", &ms, "-o", s(&tmp.path().join("y"))]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains(&format!("{ms}ms")), "{}", text(&o));
    // The same second, as a wall-clock time in another zone.
    let o = rdbtool(&[
        "aof",
        "cut",
        s(&dir),
        "--tz",
        "+02:00",
        "--to",
        rdbtool::time::format_utc(second + 7200).replace('T', " ").trim_end_matches('Z'),
        "-o",
        s(&tmp.path().join("z")),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read(tmp.path().join("z").join("appendonly.aof.manifest")).unwrap(),
        std::fs::read(to.join("appendonly.aof.manifest")).unwrap()
    );
}

/// Outputs are as private as their inputs (as `cp` makes copies): a 0600 set gives a 0700 cut
/// of 0600 files, and a 0600 RDB of `to-rdb`.
#[test]
fn outputs_keep_the_inputs_privacy() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let (tmp, dir) = copy_set("preamble");
    for e in std::fs::read_dir(&dir).unwrap() {
        std::fs::set_permissions(e.unwrap().path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let meta: Json = serde_json::from_slice(&std::fs::read(fixture("preamble").join("batches.json")).unwrap()).unwrap();
    let t = meta["boundaries"][3]["time"].to_string();
    let out = tmp.path().join("cut");
    let o = rdbtool(&["aof", "cut", s(&dir), "--to", &t, "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(mode(&out), 0o700);
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    if RedisServer::start(&[]).is_some() {
        let rdb = tmp.path().join("x.rdb");
        let o = rdbtool(&["aof", "to-rdb", s(&dir), "-o", s(&rdb)]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(mode(&rdb) & 0o077, 0, "to-rdb output is {:o}", mode(&rdb));
        let merged = tmp.path().join("m.rdb");
        let o = rdbtool(&["merge", s(&rdb), "-o", s(&merged)]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(mode(&merged) & 0o077, 0, "merge output is {:o}", mode(&merged));
    }
}

/// A manifest listing only history files loads as an empty dataset: `to-rdb` writes an empty
/// RDB (a copy of the set would be an empty manifest, which Redis refuses).
#[test]
fn to_rdb_of_a_set_with_only_history_is_empty() {
    if RedisServer::start(&[]).is_none() {
        return;
    }
    let (tmp, dir) = copy_set("plain");
    std::fs::write(
        dir.join("appendonly.aof.manifest"),
        "file appendonly.aof.1.base.aof seq 1 type h\nfile appendonly.aof.1.incr.aof seq 1 type h\n",
    )
    .unwrap();
    let out = tmp.path().join("empty.rdb");
    let o = rdbtool(&["aof", "to-rdb", s(&dir), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (code, doc) = verify_json(&out);
    assert_eq!((code, doc["files"][0]["keys"].as_u64()), (0, Some(0)), "{doc}");
    // No append-only directory is loaded for it, so a server older than 7.0 does too.
    if let Some(old) = common::other_server("redis-6.2") {
        let out = tmp.path().join("empty-6.2.rdb");
        let o = rdbtool(&["aof", "to-rdb", s(&dir), "-o", s(&out), "--redis-server", s(&old)]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let (code, doc) = verify_json(&out);
        assert_eq!((code, doc["files"][0]["keys"].as_u64()), (0, Some(0)), "{doc}");
    }
}
