//! `rdbtool merge` and `rdbtool split`, and the RDB writer under them: outputs verify, load into a
//! real redis-server holding exactly the expected data, split keys sit in their shard's slots,
//! split-then-merge gives back the input's records, and a live 3-master cluster serves every key
//! after a split by its own layout. Property tests drive the engine in memory.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value as Json;

use common::{RedisServer, Resp, testdata};
use rdbtool::crc::crc64;
use rdbtool::merge::{self, MergeError, MergeRouter, OnConflict, Options, Source};
use rdbtool::rdb::encode::*;
use rdbtool::rdb::value::Value;
use rdbtool::rdb::writer::RdbWriter;
use rdbtool::rdb::{Flavor, Format, RawValue, Reader, Record, Walker};
use rdbtool::slot::key_slot;
use rdbtool::split::{DbSelect, Layout, SplitRouter};

const V10: Format = Format { flavor: Flavor::Redis, version: 10 };

fn rdbtool<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rdbtool")).args(args).output().expect("run rdbtool")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr));
}

/// Files in `dir` (to check that nothing, not even a temporary, was left behind).
fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// Records and logical datasets

/// A key record as the file holds it (value bytes raw).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    db: u64,
    key: Vec<u8>,
    expire: Option<i64>,
    t: u8,
    value: Vec<u8>,
}

fn records(data: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    for r in Reader::new(data).expect("header") {
        if let Record::Key(k) = r.expect("record") {
            out.push(Rec {
                db: k.db,
                key: k.key.to_vec(),
                expire: k.expire_at_ms,
                t: k.value.type_byte,
                value: k.value.bytes.to_vec(),
            });
        }
    }
    out
}

fn functions(data: &[u8]) -> Vec<Vec<u8>> {
    Reader::new(data)
        .unwrap()
        .filter_map(|r| match r.unwrap() {
            Record::Function { source } => Some(source.to_vec()),
            _ => None,
        })
        .collect()
}

/// Orders what has no order in Redis (set members, hash fields, zset members), so that a value
/// read back from a server compares equal to the one decoded from a file.
fn normalize(v: Value) -> Value {
    match v {
        Value::Set(mut s) => {
            s.sort();
            Value::Set(s)
        }
        Value::Zset(mut z) => {
            z.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Zset(z)
        }
        Value::Hash(mut h) => {
            h.sort_by(|a, b| a.field.cmp(&b.field));
            Value::Hash(h)
        }
        v => v,
    }
}

/// (db, key) -> (expire, value).
type Dataset = BTreeMap<(u64, Vec<u8>), (Option<i64>, Value)>;

/// Keys a server may or may not have dropped on load: TTL within a minute of now.
fn uncertain(expire: Option<i64>) -> bool {
    expire.is_some_and(|t| t < rdbtool::verify::now_ms() + 60_000)
}

fn decode(rec: &Rec) -> Value {
    let raw = RawValue { type_byte: rec.t, format: V10, bytes: &rec.value, offset: 0 };
    normalize(raw.decode(&mut Walker::new()).unwrap_or_else(|e| panic!("decode {:?}: {e}", text(&rec.key))))
}

fn dataset(recs: &[Rec]) -> Dataset {
    let mut out = Dataset::new();
    for r in recs {
        if uncertain(r.expire) {
            continue;
        }
        let prev = out.insert((r.db, r.key.clone()), (r.expire, decode(r)));
        assert!(prev.is_none(), "duplicate key in expected data: db {} {:?}", r.db, text(&r.key));
    }
    out
}

/// Everything a server holds (`common::server_dataset`: DUMP decoded by our walker,
/// PEXPIRETIME), ordered as `dataset` orders it, without the keys it leaves out.
fn server_dataset(srv: &RedisServer) -> Dataset {
    common::server_dataset(srv)
        .keys
        .into_iter()
        .filter(|(_, (expire, _))| !uncertain(*expire))
        .map(|(k, (expire, v))| (k, (expire, normalize(v))))
        .collect()
}

/// Loads `path` into a fresh redis-server and compares its whole dataset with `expected`.
/// Returns false when redis-server is not available (the harness printed why).
fn assert_loads_as(path: &Path, expected: &Dataset) -> bool {
    let Some(srv) = RedisServer::start_with_rdb(path, &[]) else { return false };
    let got = server_dataset(&srv);
    assert_eq!(got.len(), expected.len(), "{}: number of keys", path.display());
    for (k, v) in expected {
        let g = got.get(k).unwrap_or_else(|| panic!("{}: db {} key {:?} missing", path.display(), k.0, text(&k.1)));
        assert_eq!(g, v, "{}: db {} key {:?}", path.display(), k.0, text(&k.1));
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Merge of the 4-db fixture into db 0, each policy

/// The expected union of `recs` mapped to db 0 under a policy (first / last / rename '{db}:{key}'),
/// computed from the input alone.
fn expected_into_db0(recs: &[Rec], policy: &str) -> Vec<Rec> {
    let mut count: BTreeMap<&[u8], usize> = BTreeMap::new();
    for r in recs {
        *count.entry(&r.key).or_default() += 1;
    }
    let mut out: Vec<Rec> = Vec::new();
    let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for r in recs {
        let mut r2 = r.clone();
        r2.db = 0;
        if count[r.key.as_slice()] == 1 {
            out.push(r2);
            continue;
        }
        match policy {
            "rename" => {
                r2.key = format!("{}:", r.db).into_bytes();
                r2.key.extend_from_slice(&r.key);
                out.push(r2);
            }
            "first" => {
                if !seen.contains_key(&r.key) {
                    seen.insert(r.key.clone(), out.len());
                    out.push(r2);
                }
            }
            "last" => match seen.get(&r.key) {
                Some(&i) => out[i] = r2,
                None => {
                    seen.insert(r.key.clone(), out.len());
                    out.push(r2);
                }
            },
            _ => unreachable!(),
        }
    }
    out
}

#[test]
fn merge_four_dbs_into_db0_error_policy_lists_every_conflict() {
    let input = testdata("all-types.rdb");
    let recs = records(&std::fs::read(&input).unwrap());
    let mut names: BTreeMap<Vec<u8>, Vec<u64>> = BTreeMap::new();
    for r in &recs {
        names.entry(r.key.clone()).or_default().push(r.db);
    }
    let colliding: BTreeMap<Vec<u8>, Vec<u64>> = names.into_iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(colliding.len() > 10, "the fixture repeats key names across dbs");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.rdb");
    for policy in [&["--on-conflict", "error"][..], &[]] {
        let o = rdbtool(
            &[&["merge", "--json", "--into-db0"][..], policy, &[input.to_str().unwrap(), "-o", out.to_str().unwrap()]]
                .concat(),
        );
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        assert!(!out.exists());
        assert!(listing(dir.path()).is_empty(), "left behind: {:?}", listing(dir.path()));
        let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(doc["ok"], false);
        let conflicts = doc["conflicts"].as_array().unwrap();
        // Every colliding key, each with every db it comes from.
        let listed: BTreeMap<Vec<u8>, Vec<u64>> = conflicts
            .iter()
            .map(|c| {
                assert_eq!(c["kind"], "key");
                assert_eq!(c["db"], 0);
                let dbs = c["occurrences"].as_array().unwrap().iter().map(|o| o["db"].as_u64().unwrap()).collect();
                (rdbtool::json::to_bytes(&c["key"]).unwrap(), dbs)
            })
            .collect();
        assert_eq!(listed, colliding);
    }
    // Text mode lists them too, one line each.
    let o = rdbtool(&["merge", "--into-db0", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout).lines().filter(|l| l.starts_with("conflict: key")).count(), colliding.len());
    assert!(text(&o.stderr).contains("nothing written"));
}

#[test]
fn merge_four_dbs_into_db0_first_last_rename() {
    let input = testdata("all-types.rdb");
    let data = std::fs::read(&input).unwrap();
    let recs = records(&data);
    let dir = tempfile::tempdir().unwrap();
    for policy in ["first", "last", "rename"] {
        let out = dir.path().join(format!("{policy}.rdb"));
        let mut args = vec!["merge", "--json", "--into-db0", "--on-conflict", policy];
        if policy == "rename" {
            args.extend(["--rename", "{db}:{key}"]);
        }
        args.extend([input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        let o = rdbtool(&args);
        ok(&o);
        let report: Json = serde_json::from_slice(&o.stdout).unwrap();
        let written = std::fs::read(&out).unwrap();
        ok(&rdbtool(&["verify", out.to_str().unwrap()]));
        // Records: exactly the expected ones, value bytes unchanged.
        let mut want = expected_into_db0(&recs, policy);
        let mut got = records(&written);
        want.sort();
        got.sort();
        assert_eq!(got, want, "{policy}");
        // The report's per-db counts.
        let db0 = &report["output"]["dbs"][0];
        assert_eq!(db0["keys"].as_u64().unwrap() as usize, want.len());
        let mut per_name: BTreeMap<&[u8], u64> = BTreeMap::new();
        for r in &recs {
            *per_name.entry(&r.key).or_default() += 1;
        }
        let names = per_name.values().filter(|&&n| n > 1).count() as u64;
        let copies: u64 = per_name.values().filter(|&&n| n > 1).sum();
        let (kept, dropped, renamed) = match policy {
            "rename" => (0, 0, copies),
            _ => (names, copies - names, 0),
        };
        assert_eq!(
            (db0["kept"].as_u64(), db0["dropped"].as_u64(), db0["renamed"].as_u64()),
            (Some(kept), Some(dropped), Some(renamed))
        );
        assert_eq!(report["conflicts"].as_array().unwrap().len() as u64, names);
        // Functions and expires carried over.
        assert_eq!(functions(&written), functions(&data));
        assert_eq!(db0["expires"].as_u64().unwrap() as usize, want.iter().filter(|r| r.expire.is_some()).count());
        // And a real server loads exactly that.
        if !assert_loads_as(&out, &dataset(&want)) {
            return;
        }
    }
    // Rename with a template that gives two keys the same name: refused, listing them.
    let out = dir.path().join("clash.rdb");
    let o = rdbtool(&[
        "merge",
        "--json",
        "--into-db0",
        "--on-conflict",
        "rename",
        "--rename",
        "x{key}",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert!(doc["conflicts"].as_array().unwrap().iter().all(|c| c["kind"] == "rename"));
    assert!(!out.exists());
}

#[test]
fn merge_several_files_keeps_dbs_and_unions_functions() {
    let files = ["all-types.rdb", "small-db0.rdb", "uncompressed.rdb", "no-checksum.rdb"].map(testdata);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("all.rdb");
    let mut args: Vec<&OsStr> = vec!["merge".as_ref(), "--on-conflict".as_ref(), "last".as_ref(), "--json".as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    args.extend(["-o".as_ref(), out.as_os_str()]);
    let o = rdbtool(&args);
    ok(&o);
    // Expected: per (db, key) the copy of the last file holding it.
    let mut want: BTreeMap<(u64, Vec<u8>), Rec> = BTreeMap::new();
    let mut libs: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        for r in records(&data) {
            want.insert((r.db, r.key.clone()), r);
        }
        for src in functions(&data) {
            libs.entry(rdbtool::rdb::function::library_name(&src).unwrap().to_vec()).or_insert(src);
        }
    }
    let written = std::fs::read(&out).unwrap();
    let mut got = records(&written);
    got.sort();
    let want: Vec<Rec> = want.into_values().collect();
    assert_eq!(got, want);
    let got_libs: BTreeSet<Vec<u8>> =
        functions(&written).iter().map(|s| rdbtool::rdb::function::library_name(s).unwrap().to_vec()).collect();
    assert_eq!(got_libs, libs.keys().cloned().collect());
    // no-checksum.rdb and uncompressed.rdb hold the same keys: every one a resolved conflict.
    let report: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["conflicts"].as_array().unwrap().len() >= 13);
    ok(&rdbtool(&["verify", out.to_str().unwrap()]));
    if !assert_loads_as(&out, &dataset(&want)) {
        return;
    }
    let Some(srv) = RedisServer::start_with_rdb(&out, &[]) else { return };
    let Resp::Array(Some(list)) = srv.cmd(&[b"FUNCTION", b"LIST"]) else { panic!("FUNCTION LIST") };
    assert_eq!(list.len(), libs.len());
}

// ---------------------------------------------------------------------------------------------
// Small RDB files built by hand (encode primitives), for conflicts and properties

/// One key of a generated dataset: its type byte and serialized value.
#[derive(Debug, Clone)]
struct GKey {
    db: u64,
    key: Vec<u8>,
    expire: Option<i64>,
    t: u8,
    value: Vec<u8>,
}

/// An RDB 10 file: AUX fields, the given function libraries, then the keys grouped by db (keys
/// must be sorted by db), with true RESIZEDB counts.
fn build_rdb(keys: &[GKey], libs: &[&[u8]]) -> Vec<u8> {
    let mut out = b"REDIS0010".to_vec();
    for (k, v) in [(&b"redis-ver"[..], &b"7.0.15"[..]), (b"redis-bits", b"64"), (b"ctime", b"1700000000")] {
        out.push(0xFA);
        write_string(&mut out, k, true);
        write_string(&mut out, v, true);
    }
    for l in libs {
        out.push(0xF5);
        write_string(&mut out, l, true);
    }
    let dbs: BTreeSet<u64> = keys.iter().map(|k| k.db).collect();
    for db in dbs {
        let in_db: Vec<&GKey> = keys.iter().filter(|k| k.db == db).collect();
        out.push(0xFE);
        write_len(&mut out, db);
        out.push(0xFB);
        write_len(&mut out, in_db.len() as u64);
        write_len(&mut out, in_db.iter().filter(|k| k.expire.is_some()).count() as u64);
        for k in in_db {
            if let Some(t) = k.expire {
                out.push(0xFC);
                out.extend_from_slice(&t.to_le_bytes());
            }
            out.push(k.t);
            write_string(&mut out, &k.key, true);
            out.extend_from_slice(&k.value);
        }
    }
    out.push(0xFF);
    let c = crc64(&out);
    out.extend_from_slice(&c.to_le_bytes());
    out
}

fn string_value(s: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    write_string(&mut v, s, true);
    v
}

#[test]
fn function_libraries_with_one_name_and_different_code_conflict() {
    let lib_a: &[u8] = b"#!lua name=shared\nredis.register_function('f', function() return 1 end)";
    let lib_b: &[u8] = b"#!lua name=shared\nredis.register_function('f', function() return 2 end)";
    let lib_c: &[u8] = b"#!lua name=other\nredis.register_function('g', function() return 3 end)";
    let k = |key: &[u8], v: &[u8]| GKey { db: 0, key: key.to_vec(), expire: None, t: 0, value: string_value(v) };
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.rdb");
    let b = dir.path().join("b.rdb");
    let a2 = dir.path().join("a2.rdb");
    std::fs::write(&a, build_rdb(&[k(b"x", b"1")], &[lib_a, lib_c])).unwrap();
    std::fs::write(&b, build_rdb(&[k(b"y", b"2")], &[lib_b])).unwrap();
    std::fs::write(&a2, build_rdb(&[k(b"z", b"3")], &[lib_c])).unwrap();
    let out = dir.path().join("out.rdb");
    let run = |extra: &[&str], inputs: &[&Path]| {
        let mut args: Vec<&OsStr> = vec!["merge".as_ref(), "--json".as_ref()];
        args.extend(extra.iter().map(OsStr::new));
        args.extend(inputs.iter().map(|p| p.as_os_str()));
        args.extend(["-o".as_ref(), out.as_os_str(), "--force".as_ref()]);
        rdbtool(&args)
    };
    // Identical copies are not a conflict.
    ok(&run(&[], &[&a, &a2]));
    assert_eq!(functions(&std::fs::read(&out).unwrap()), vec![lib_a.to_vec(), lib_c.to_vec()]);
    // Same name, other code: a conflict, under error and rename alike.
    for extra in [&[][..], &["--on-conflict", "rename"]] {
        let o = run(extra, &[&a, &b]);
        assert_eq!(o.status.code(), Some(1));
        let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(doc["conflicts"][0]["kind"], "function");
        assert_eq!(doc["conflicts"][0]["key"], "shared");
    }
    ok(&run(&["--on-conflict", "first"], &[&a, &b]));
    assert!(functions(&std::fs::read(&out).unwrap()).contains(&lib_a.to_vec()));
    ok(&run(&["--on-conflict", "last"], &[&a, &b]));
    assert!(functions(&std::fs::read(&out).unwrap()).contains(&lib_b.to_vec()));
    let Some(srv) = RedisServer::start_with_rdb(&out, &[]) else { return };
    assert_eq!(srv.cmd(&[b"FCALL", b"f", b"0"]), Resp::Int(2));
    assert_eq!(srv.cmd(&[b"FCALL", b"g", b"0"]), Resp::Int(3));
}

#[test]
fn records_between_keys_are_not_copied() {
    // db 0: a, [AUX slot-info], b, [SLOT_INFO], c; db 1: d. Only key records may reach the
    // output, whether sections are copied whole or record by record.
    let k = |key: &[u8]| GKey { db: 0, key: key.to_vec(), expire: None, t: 0, value: string_value(key) };
    let plain = build_rdb(&[k(b"a"), k(b"b"), k(b"c")], &[]);
    let mut data = plain[..plain.len() - 9].to_vec();
    let recs = records(&plain);
    // Rebuild db 0's records with the extra records between them.
    let first = data.windows(3).position(|w| w == [0x00, 0x01, b'a']).unwrap();
    let mut body = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        body.push(0);
        write_string(&mut body, &r.key, true);
        body.extend_from_slice(&r.value);
        if i == 0 {
            body.push(0xFA);
            write_string(&mut body, b"slot-info", true);
            write_string(&mut body, b"1,2,0", true);
        }
        if i == 1 {
            body.extend_from_slice(&[0xF4, 0x01, 0x01, 0x00]);
        }
    }
    data.truncate(first);
    data.extend_from_slice(&body);
    data.extend_from_slice(&[0xFE, 0x01, 0xFB, 0x01, 0x00, 0x00, 0x01, b'd', 0x01, b'd']);
    data[5..9].copy_from_slice(b"0012"); // SLOT_INFO exists from RDB 12
    data.push(0xFF);
    let c = crc64(&data);
    data.extend_from_slice(&c.to_le_bytes());
    let want = records(&data);
    assert_eq!(want.len(), 4);
    for into_db0 in [false, true] {
        let sources = [Source::new("in", &data)];
        let router = MergeRouter { into_db0 };
        let plan = merge::plan(&sources, &router, &Options::default()).unwrap();
        let (out, _) = merge::write(&plan, &sources, &router, vec![Vec::new()]).unwrap().remove(0);
        verify_ok(&out).unwrap();
        let got = records(&out);
        let expect: Vec<Rec> = want
            .iter()
            .cloned()
            .map(|mut r| {
                if into_db0 {
                    r.db = 0;
                }
                r
            })
            .collect();
        assert_eq!(got, expect);
        assert!(!out.windows(9).any(|w| w == b"slot-info"));
        assert!(Reader::new(&out).unwrap().all(|r| !matches!(r.unwrap(), Record::SlotInfo { .. })));
    }
}

// ---------------------------------------------------------------------------------------------
// Split into 3 shards

#[test]
fn split_three_shards_load_own_their_slots_and_merge_back() {
    let input = testdata("all-types.rdb");
    let data = std::fs::read(&input).unwrap();
    let db0: Vec<Rec> = records(&data).into_iter().filter(|r| r.db == 0).collect();
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    let o = rdbtool(&[
        "split",
        "--json",
        "--db",
        "0",
        "--shards",
        "3",
        input.to_str().unwrap(),
        "-o",
        shards.to_str().unwrap(),
    ]);
    ok(&o);
    let summary: Json = serde_json::from_slice(&o.stdout).unwrap();
    let targets = summary["targets"].as_array().unwrap();
    let ranges = [(0u16, 5460u16), (5461, 10922), (10923, 16383)];
    assert_eq!(targets.len(), 3);
    let mut all = Vec::new();
    let mut files = Vec::new();
    for (t, (lo, hi)) in targets.iter().zip(ranges) {
        assert_eq!(t["slots"], format!("{lo}-{hi}"));
        let path = PathBuf::from(t["file"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        ok(&rdbtool(&[OsStr::new("verify"), path.as_os_str()]));
        let recs = records(&bytes);
        assert_eq!(t["keys"].as_u64().unwrap() as usize, recs.len());
        assert!(!recs.is_empty());
        for r in &recs {
            assert_eq!(r.db, 0);
            let s = key_slot(&r.key);
            assert!((lo..=hi).contains(&s), "{:?} slot {s} in shard {lo}-{hi}", text(&r.key));
        }
        // Every shard gets the function libraries.
        assert_eq!(functions(&bytes), functions(&data));
        if !assert_loads_as(&path, &dataset(&recs)) {
            return;
        }
        all.extend(recs);
        files.push(path);
    }
    // The shards hold exactly db 0's records between them...
    let mut sorted = all.clone();
    sorted.sort();
    let mut want = db0.clone();
    want.sort();
    assert_eq!(sorted, want);
    // ...and merging them back gives the original records.
    let back = dir.path().join("back.rdb");
    let mut args: Vec<&OsStr> = vec!["merge".as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    args.extend(["-o".as_ref(), back.as_os_str()]);
    ok(&rdbtool(&args));
    let mut got = records(&std::fs::read(&back).unwrap());
    got.sort();
    assert_eq!(got, want);
}

#[test]
fn split_refuses_keys_outside_db0_and_unowned_slots() {
    let input = testdata("all-types.rdb");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = rdbtool(&["split", "--shards", "3", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    for want in ["db 1: 45 keys", "db 2: 45 keys", "db 3: 46 keys", "--db", "--into-db0"] {
        assert!(err.contains(want), "{err}");
    }
    assert!(listing(&out).is_empty());
    let o = rdbtool(&[
        "split",
        "--db",
        "0",
        "--slots",
        "0-100,200-300",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("slots no target owns"), "{}", text(&o.stderr));
    assert!(listing(&out).is_empty());
    // --into-db0 with conflicts resolved: every key of every db lands somewhere.
    let o = rdbtool(&[
        "split",
        "--json",
        "--into-db0",
        "--on-conflict",
        "rename",
        "--slots",
        "0-8000,8001-16383",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["keys"], 268);
    assert_eq!(listing(&out), BTreeSet::from(["shard-0.rdb".to_owned(), "shard-1.rdb".to_owned()]));
}

#[test]
fn split_by_nodes_file_names_outputs_by_node() {
    let input = testdata("small-db0.rdb");
    let dir = tempfile::tempdir().unwrap();
    let nodes = dir.path().join("nodes.conf");
    std::fs::write(
        &nodes,
        "aaaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n\
         bbbb 127.0.0.1:7001@17001 master - 0 0 2 connected 8192-16383\n\
         cccc 127.0.0.1:7002@17002 slave aaaa 0 0 1 connected\n\
         vars currentEpoch 2 lastVoteEpoch 0\n",
    )
    .unwrap();
    let out = dir.path().join("o");
    ok(&rdbtool(&[
        OsStr::new("split"),
        "--nodes".as_ref(),
        nodes.as_os_str(),
        input.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]));
    assert_eq!(
        listing(&out),
        BTreeSet::from(["aaaa-127.0.0.1-7000.rdb".to_owned(), "bbbb-127.0.0.1-7001.rdb".to_owned()])
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals: existing outputs, versions, corrupt inputs

#[test]
fn outputs_are_not_overwritten_without_force_and_inputs_never() {
    let input = testdata("small-db0.rdb");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.rdb");
    std::fs::write(&out, b"precious").unwrap();
    let o = rdbtool(&[OsStr::new("merge"), input.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--force"), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    ok(&rdbtool(&[OsStr::new("merge"), input.as_os_str(), "-o".as_ref(), out.as_os_str(), "--force".as_ref()]));
    assert_eq!(records(&std::fs::read(&out).unwrap()), records(&std::fs::read(&input).unwrap()));
    assert_eq!(listing(dir.path()), BTreeSet::from(["m.rdb".to_owned()]));
    // The input as output: refused even with --force.
    let copy = dir.path().join("in.rdb");
    std::fs::copy(&input, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let o = rdbtool(&[OsStr::new("merge"), copy.as_os_str(), "-o".as_ref(), copy.as_os_str(), "--force".as_ref()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    // Split: an existing shard file stops everything before any is written.
    let shards = dir.path().join("s");
    std::fs::create_dir(&shards).unwrap();
    std::fs::write(shards.join("shard-1.rdb"), b"old").unwrap();
    let o = rdbtool(&[
        OsStr::new("split"),
        "--shards".as_ref(),
        "2".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        shards.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(listing(&shards), BTreeSet::from(["shard-1.rdb".to_owned()]));
}

#[test]
fn version_refusal_names_the_key_and_older_versions_work() {
    let input = testdata("all-types.rdb");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.rdb");
    let o = rdbtool(&[
        OsStr::new("merge"),
        "--rdb-version".as_ref(),
        "9".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("key \"") && err.contains("REDIS0009"), "{err}");
    assert!(!out.exists());
    // Strings only, written at RDB 9 (no functions allowed there either) and at 11 and 12.
    let k = |key: &[u8]| GKey {
        db: 0,
        key: key.to_vec(),
        expire: Some(4_000_000_000_000),
        t: 0,
        value: string_value(b"v"),
    };
    let src = dir.path().join("s.rdb");
    std::fs::write(&src, build_rdb(&[k(b"a"), k(b"b")], &[])).unwrap();
    for v in ["7", "9", "11", "12"] {
        let o = rdbtool(&[
            OsStr::new("merge"),
            "--rdb-version".as_ref(),
            v.as_ref(),
            src.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--force".as_ref(),
        ]);
        ok(&o);
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(&bytes[..9], format!("REDIS{v:0>4}").as_bytes());
        assert_eq!(records(&bytes).len(), 2);
    }
    let o = rdbtool(&[
        OsStr::new("merge"),
        "--rdb-version".as_ref(),
        "14".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--force".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    // RDB 7 loads into Redis 7.0 (it reads every older version).
    let o = rdbtool(&[
        OsStr::new("merge"),
        "--rdb-version".as_ref(),
        "7".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--force".as_ref(),
    ]);
    ok(&o);
    let want: Vec<Rec> = records(&std::fs::read(&src).unwrap());
    assert_loads_as(&out, &dataset(&want));
}

#[test]
fn corrupt_inputs_fail_cleanly() {
    let good = std::fs::read(testdata("small-db0.rdb")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.rdb");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // A flipped byte inside a value (CRC catches it), a truncation, garbage.
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n / 2] ^= 0x40;
    for (what, bytes) in [
        ("flip", flipped),
        ("cut", good[..n - 20].to_vec()),
        ("garbage", b"REDIS0010\xf0\xf1".to_vec()),
        ("empty", vec![]),
    ] {
        std::fs::write(&bad, &bytes).unwrap();
        let o = rdbtool(&[OsStr::new("merge"), bad.as_os_str(), "-o".as_ref(), out.join("m.rdb").as_os_str()]);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("bad.rdb"), "{what}: {}", text(&o.stderr));
        let o = rdbtool(&[
            OsStr::new("split"),
            "--shards".as_ref(),
            "2".as_ref(),
            bad.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{what}");
        assert!(listing(&out).is_empty(), "{what}: {:?}", listing(&out));
        assert_eq!(std::fs::read(&bad).unwrap(), bytes);
    }
    // A broken listpack in a file saved without a checksum: pass 1 only skips values by their
    // length, so the check of the written file is what catches it.
    let mut lp = ListpackBuilder::new();
    lp.push(b"f").push(b"v");
    let mut blob = lp.finish();
    blob[6] = 0x85; // first entry claims 5 bytes
    let k = GKey { db: 0, key: b"h".to_vec(), expire: None, t: 16, value: string_value(&blob) };
    let mut bytes = build_rdb(&[k], &[]);
    let n = bytes.len();
    bytes[n - 8..].fill(0);
    std::fs::write(&bad, &bytes).unwrap();
    let o = rdbtool(&[OsStr::new("merge"), bad.as_os_str(), "-o".as_ref(), out.join("m.rdb").as_os_str()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("key \"h\""), "{}", text(&o.stderr));
    assert!(listing(&out).is_empty(), "{:?}", listing(&out));
}

/// A hash whose listpack's first entry claims 5 bytes: broken, but only a full walk of the value
/// sees it (the record's length structure is intact).
fn broken_hash(key: &[u8]) -> GKey {
    let mut lp = ListpackBuilder::new();
    lp.push(b"f").push(b"v");
    let mut blob = lp.finish();
    blob[6] = 0x85;
    GKey { db: 0, key: key.to_vec(), expire: None, t: 16, value: string_value(&blob) }
}

fn string_key(db: u64, key: &[u8], v: &[u8]) -> GKey {
    GKey { db, key: key.to_vec(), expire: None, t: 0, value: string_value(v) }
}

/// Saved without a checksum (stored 0), so only the value check can catch a broken value.
fn without_checksum(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len();
    bytes[n - 8..].fill(0);
    bytes
}

#[test]
fn a_dropped_copy_is_validated_like_a_kept_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.rdb");
    let bad = dir.path().join("bad.rdb");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(&good, build_rdb(&[string_key(0, b"h", b"fine"), string_key(0, b"x", b"1")], &[])).unwrap();
    std::fs::write(&bad, without_checksum(build_rdb(&[broken_hash(b"h")], &[]))).unwrap();
    // Whichever copy the policy keeps, the broken one in bad.rdb fails the merge: exit 1, the
    // file and key named, nothing written.
    for (policy, order) in [("first", [&good, &bad]), ("last", [&bad, &good]), ("rename", [&good, &bad])] {
        let o = rdbtool(&[
            OsStr::new("merge"),
            "--on-conflict".as_ref(),
            policy.as_ref(),
            order[0].as_os_str(),
            order[1].as_os_str(),
            "-o".as_ref(),
            out.join("m.rdb").as_os_str(),
        ]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{policy}: {err}");
        assert!(err.contains("bad.rdb") && err.contains("key \"h\""), "{policy}: {err}");
        assert!(listing(&out).is_empty(), "{policy}: {:?}", listing(&out));
    }
    // The same inputs with the broken value repaired merge fine (the check is not a blanket refusal).
    std::fs::write(&bad, without_checksum(build_rdb(&[string_key(0, b"h", b"other")], &[]))).unwrap();
    let o = rdbtool(&[
        OsStr::new("merge"),
        "--on-conflict".as_ref(),
        "first".as_ref(),
        good.as_os_str(),
        bad.as_os_str(),
        "-o".as_ref(),
        out.join("m.rdb").as_os_str(),
    ]);
    ok(&o);
    let recs = records(&std::fs::read(out.join("m.rdb")).unwrap());
    assert_eq!(recs.iter().map(|r| text(&r.key)).collect::<Vec<_>>(), ["h", "x"]);
    assert_eq!(recs[0].value, string_value(b"fine"));
}

#[test]
fn duplicate_keys_in_one_input_are_refused_by_merge_and_split() {
    let dir = tempfile::tempdir().unwrap();
    let dup = dir.path().join("dup.rdb");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // Twice in db 0, once in db 1: only the db-0 pair is a duplicate.
    let keys =
        [string_key(0, b"a", b"1"), string_key(0, b"b", b"2"), string_key(0, b"a", b"3"), string_key(1, b"a", b"4")];
    std::fs::write(&dup, build_rdb(&keys, &[])).unwrap();
    let runs: [&[&str]; 3] = [&["merge"], &["merge", "--on-conflict", "first"], &["split", "--shards", "2"]];
    for args in runs {
        let target = if args[0] == "split" { out.clone() } else { out.join("m.rdb") };
        let mut a: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        a.extend([dup.as_os_str(), OsStr::new("-o"), target.as_os_str()]);
        let o = rdbtool(&a);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("dup.rdb") && err.contains("key \"a\"") && err.contains("already"), "{args:?}: {err}");
        assert!(listing(&out).is_empty(), "{args:?}: {:?}", listing(&out));
    }
}

/// Runs rdbtool with `args`: its exit code, peak RSS in KiB (this child's own figure) and stderr.
fn exit_and_peak_kib(args: &[&OsStr]) -> (i32, i64, String) {
    let (code, err, kib, _) = common::run_measured(Command::new(env!("CARGO_BIN_EXE_rdbtool")).args(args));
    (code.unwrap_or_else(|| panic!("rdbtool did not exit normally: {err}")), kib, err)
}

#[test]
fn many_selectdb_and_aux_records_cost_bounded_memory() {
    // 4 M SELECTDB records (8 MB) and 1 M AUX records (about 12 MB) around two keys: each record
    // used to cost its own plan entry (about 128 B a SELECTDB, 117 B an AUX field: over 600 MB).
    let mut out = b"REDIS0010".to_vec();
    for (k, v) in [(&b"redis-ver"[..], &b"7.0.15"[..]), (b"redis-bits", b"64")] {
        out.push(0xFA);
        write_string(&mut out, k, true);
        write_string(&mut out, v, true);
    }
    for i in 0..1_000_000u32 {
        out.push(0xFA);
        write_string(&mut out, format!("f{i}").as_bytes(), true);
        write_string(&mut out, b"v", true);
    }
    for i in 0..4_000_000u32 {
        out.extend_from_slice(&[0xFE, (i % 2) as u8]);
    }
    out.extend_from_slice(&[0xFE, 0]);
    for k in [&b"a"[..], b"b"] {
        out.push(0);
        write_string(&mut out, k, true);
        write_string(&mut out, b"1", true);
    }
    out.push(0xFF);
    let c = crc64(&out);
    out.extend_from_slice(&c.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many.rdb");
    std::fs::write(&input, &out).unwrap();
    let merged = dir.path().join("m.rdb");
    let shards = dir.path().join("shards");
    let runs: [Vec<&OsStr>; 2] = [
        vec!["merge".as_ref(), input.as_os_str(), "-o".as_ref(), merged.as_os_str()],
        vec!["split".as_ref(), "--shards".as_ref(), "2".as_ref(), input.as_os_str(), "-o".as_ref(), shards.as_os_str()],
    ];
    for args in runs {
        let (code, kib, err) = exit_and_peak_kib(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(kib < 100 << 10, "{args:?}: peak RSS {} MiB", kib >> 10);
    }
    // Both keys are there; the AUX fields beyond the bound are left out (servers ignore them).
    let recs = records(&std::fs::read(&merged).unwrap());
    assert_eq!(recs.iter().map(|r| text(&r.key)).collect::<Vec<_>>(), ["a", "b"]);
    let (code, _, _) = exit_and_peak_kib(&["verify".as_ref(), merged.as_os_str()]);
    assert_eq!(code, 0);
}

// ---------------------------------------------------------------------------------------------
// A real 3-master Redis Cluster

struct ClusterNode {
    srv: RedisServer,
    id: String,
}

/// `DUMP key` through the cluster: asks `nodes[0]`, follows MOVED.
fn cluster_dump(nodes: &[ClusterNode], key: &[u8]) -> Resp {
    let mut at = 0;
    for _ in 0..3 {
        match nodes[at].srv.cmd(&[b"DUMP", key]) {
            Resp::Error(e) if e.starts_with("MOVED") => {
                let port: u16 = e.rsplit(':').next().unwrap().parse().unwrap();
                at = nodes.iter().position(|n| n.srv.port == port).expect("MOVED to a known node");
            }
            r => return r,
        }
    }
    panic!("too many redirections for {:?}", text(key));
}

#[test]
fn split_from_live_cluster_and_restore_into_its_masters() {
    let args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"];
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let Some(srv) = RedisServer::start(&args) else { return };
        let Resp::Bulk(Some(id)) = srv.cmd(&[b"CLUSTER", b"MYID"]) else { panic!("CLUSTER MYID") };
        nodes.push(ClusterNode { srv, id: text(&id) });
    }
    let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.srv.port)).collect();
    let o = Command::new("redis-cli").args(["--cluster", "create"]).args(&addrs).arg("--cluster-yes").output().unwrap();
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for n in &nodes {
        loop {
            let Resp::Bulk(Some(info)) = n.srv.cmd(&[b"CLUSTER", b"INFO"]) else { panic!() };
            if text(&info).contains("cluster_state:ok") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "cluster not ok: {}", text(&info));
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    let input = testdata("all-types.rdb");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shards");
    let url = format!("redis://127.0.0.1:{}", nodes[1].srv.port);
    let o = rdbtool(&[
        OsStr::new("split"),
        "--json".as_ref(),
        "--db".as_ref(),
        "0".as_ref(),
        "--from".as_ref(),
        url.as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    ok(&o);
    let summary: Json = serde_json::from_slice(&o.stdout).unwrap();
    let targets = summary["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 3);
    // The same ranges redis-cli assigned (and our --shards 3 computes).
    let slots: BTreeSet<String> = targets.iter().map(|t| t["slots"].as_str().unwrap().to_owned()).collect();
    assert_eq!(slots, BTreeSet::from(["0-5460".to_owned(), "5461-10922".to_owned(), "10923-16383".to_owned()]));
    // report --from reads the same layout: a shard per master with the keys split wrote for it.
    let o = rdbtool(&[
        OsStr::new("report"),
        "--json".as_ref(),
        "--db".as_ref(),
        "0".as_ref(),
        "--from".as_ref(),
        url.as_ref(),
        input.as_os_str(),
    ]);
    ok(&o);
    let report: Json = serde_json::from_slice(&o.stdout).unwrap();
    let shards = report["layout"]["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 3);
    for t in targets {
        let s = shards.iter().find(|s| s["name"] == t["name"]).expect("the same targets");
        assert_eq!(s["slots"], t["slots"]);
        assert_eq!(s["node"]["id"], t["node"]["id"]);
        assert_eq!(s["keys"], t["keys"], "{}", t["name"]);
    }
    for t in targets {
        let id = t["node"]["id"].as_str().unwrap();
        let node = nodes.iter().find(|n| n.id == id).expect("a target per master");
        let file = t["file"].as_str().unwrap();
        assert!(file.contains(id) && file.contains(&node.srv.port.to_string()), "{file}");
        // RESTORE every key of the shard file into its master.
        let export = rdbtool(&["export", "--format", "resp", "--restore", "--no-functions", file]);
        ok(&export);
        let (errors, replies) = common::redis_cli_pipe(node.srv.port, &export.stdout);
        assert_eq!(errors, 0, "{replies} replies");
    }
    // Every key of db 0 is readable through the cluster, with its value.
    let want = dataset(&records(&std::fs::read(&input).unwrap()).into_iter().filter(|r| r.db == 0).collect::<Vec<_>>());
    for ((_, key), (_, value)) in &want {
        let Resp::Bulk(Some(p)) = cluster_dump(&nodes, key) else { panic!("{:?} not found in the cluster", text(key)) };
        let n = p.len();
        let raw = RawValue { type_byte: p[0], format: V10, bytes: &p[1..n - 10], offset: 0 };
        assert_eq!(&normalize(raw.decode(&mut Walker::new()).unwrap()), value, "{:?}", text(key));
    }
    let total: i64 = nodes.iter().map(|n| n.srv.cmd(&[b"DBSIZE"]).as_int().unwrap()).sum();
    assert_eq!(total as usize, want.len());
}

// ---------------------------------------------------------------------------------------------
// Properties: the engine in memory

fn key_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..10),
        (vec(b'a'..=b'e', 1..3), vec(any::<u8>(), 0..4)).prop_map(|(tag, rest)| {
            let mut k = b"{".to_vec();
            k.extend(tag);
            k.push(b'}');
            k.extend(rest);
            k
        }),
        (0i64..100_000).prop_map(|n| n.to_string().into_bytes()),
    ]
}

fn value_strategy() -> impl Strategy<Value = (u8, Vec<u8>)> {
    let elem = || prop_oneof![vec(any::<u8>(), 0..8), (0i64..1000).prop_map(|n| n.to_string().into_bytes())];
    prop_oneof![
        vec(any::<u8>(), 0..40).prop_map(|s| (0u8, string_value(&s))),
        vec(elem(), 1..6).prop_map(|items| {
            let mut lp = ListpackBuilder::new();
            for i in &items {
                lp.push(i);
            }
            let mut v = Vec::new();
            write_len(&mut v, 1);
            write_len(&mut v, 2);
            write_string(&mut v, &lp.finish(), true);
            (18u8, v)
        }),
        vec(elem(), 1..6).prop_map(|mut items| {
            items.sort();
            items.dedup();
            let mut v = Vec::new();
            write_len(&mut v, items.len() as u64);
            for i in &items {
                write_string(&mut v, i, true);
            }
            (2u8, v)
        }),
        vec((elem(), elem()), 1..5).prop_map(|mut pairs| {
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            pairs.dedup_by(|a, b| a.0 == b.0);
            let mut lp = ListpackBuilder::new();
            for (f, v) in &pairs {
                lp.push(f).push(v);
            }
            (16u8, string_value(&lp.finish()))
        }),
    ]
}

fn gkeys(max_db: u64) -> impl Strategy<Value = Vec<GKey>> {
    let one = (
        0..=max_db,
        key_strategy(),
        prop_oneof![Just(None), (1i64..5_000_000_000_000).prop_map(Some)],
        value_strategy(),
    );
    vec(one, 0..40).prop_map(|v| {
        let mut seen = BTreeSet::new();
        let mut keys: Vec<GKey> = v
            .into_iter()
            .filter(|(db, k, _, _)| seen.insert((*db, k.clone())))
            .map(|(db, key, expire, (t, value))| GKey { db, key, expire, t, value })
            .collect();
        keys.sort_by_key(|k| k.db);
        keys
    })
}

fn verify_ok(data: &[u8]) -> Result<(), TestCaseError> {
    let r = rdbtool::verify::verify_bytes("out", data, &Default::default());
    prop_assert!(r.ok, "{:?}", r.errors);
    Ok(())
}

fn sorted(mut v: Vec<Rec>) -> Vec<Rec> {
    v.sort();
    v
}

fn as_recs(keys: &[GKey]) -> Vec<Rec> {
    sorted(
        keys.iter()
            .map(|k| Rec { db: k.db, key: k.key.clone(), expire: k.expire, t: k.t, value: k.value.clone() })
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)))]

    /// The writer copies records: what it writes parses back to the same records (verbatim
    /// copies and re-encoded ones alike), at the input's version and at newer ones.
    #[test]
    fn writer_output_parses_back_to_the_same_records(keys in gkeys(3), version in 10u32..=12, rename in any::<bool>()) {
        let data = build_rdb(&keys, &[]);
        let recs = records(&data);
        prop_assert_eq!(sorted(recs.clone()), as_recs(&keys));
        let target = Format { flavor: Flavor::Redis, version };
        let mut w = RdbWriter::new(Vec::new(), target);
        w.aux(b"redis-bits", b"64").unwrap();
        let mut current = None;
        for r in Reader::new(&data).unwrap() {
            if let Record::Key(k) = r.unwrap() {
                if current != Some(k.db) {
                    let n = recs.iter().filter(|r| r.db == k.db).count() as u64;
                    let e = recs.iter().filter(|r| r.db == k.db && r.expire.is_some()).count() as u64;
                    w.begin_db(k.db, n, e).unwrap();
                    current = Some(k.db);
                }
                let name = k.key.to_vec();
                w.key(&k, &data, V10, rename.then_some(name.as_slice())).unwrap();
            }
        }
        let (out, written) = w.finish().unwrap();
        prop_assert_eq!(written.bytes as usize, out.len());
        verify_ok(&out)?;
        let magic = format!("REDIS{version:04}");
        prop_assert_eq!(&out[..9], magic.as_bytes());
        prop_assert_eq!(records(&out), recs);
    }

    /// Split then merge is the identity on the multiset of records, each shard holding only
    /// keys of its slots.
    #[test]
    fn split_then_merge_is_the_identity(keys in gkeys(0), n in 1usize..5) {
        let data = build_rdb(&keys, &[b"#!lua name=l\nredis.register_function('f', function() return 1 end)"]);
        let layout = Layout::even(n).unwrap();
        let router = SplitRouter { layout: &layout, dbs: DbSelect::Db0 };
        let sources = [Source::new("in", &data)];
        let plan = merge::plan(&sources, &router, &Options::default()).unwrap();
        let outs = merge::write(&plan, &sources, &router, vec![Vec::new(); n]).unwrap();
        let shards: Vec<Vec<u8>> = outs.into_iter().map(|(o, _)| o).collect();
        for (i, s) in shards.iter().enumerate() {
            verify_ok(s)?;
            prop_assert_eq!(functions(s).len(), 1);
            for r in records(s) {
                prop_assert_eq!(layout.owner(key_slot(&r.key)), Some(i));
            }
        }
        let sources: Vec<Source<'_>> = shards.iter().enumerate().map(|(i, s)| Source::new(format!("shard{i}"), s)).collect();
        let router = MergeRouter { into_db0: false };
        let plan = merge::plan(&sources, &router, &Options::default()).unwrap();
        let (back, _) = merge::write(&plan, &sources, &router, vec![Vec::new()]).unwrap().remove(0);
        verify_ok(&back)?;
        prop_assert_eq!(sorted(records(&back)), as_recs(&keys));
    }

    /// Merging random inputs into db 0 matches a model of each policy.
    #[test]
    fn merge_into_db0_matches_a_model(inputs in vec(gkeys(2), 1..4), policy in 0usize..4) {
        let files: Vec<Vec<u8>> = inputs.iter().map(|k| build_rdb(k, &[])).collect();
        let sources: Vec<Source<'_>> = files.iter().enumerate().map(|(i, f)| Source::new(format!("f{i}.rdb"), f)).collect();
        let on_conflict = [OnConflict::Error, OnConflict::First, OnConflict::Last, OnConflict::Rename][policy];
        let opts = Options { on_conflict, rename: Some(merge::RenameTemplate::parse("{input}/{db}/{key}").unwrap()), target: None };
        let router = MergeRouter { into_db0: true };
        // The model: keys in encounter order (input, then file order).
        let all: Vec<(usize, &GKey)> = inputs.iter().enumerate().flat_map(|(i, ks)| ks.iter().map(move |k| (i, k))).collect();
        let mut count: BTreeMap<&[u8], usize> = BTreeMap::new();
        for (_, k) in &all {
            *count.entry(&k.key).or_default() += 1;
        }
        let collisions = count.values().filter(|&&c| c > 1).count();
        let mut model: BTreeMap<Vec<u8>, Rec> = BTreeMap::new();
        for (i, k) in &all {
            let mut r = Rec { db: 0, key: k.key.clone(), expire: k.expire, t: k.t, value: k.value.clone() };
            if count[k.key.as_slice()] > 1 {
                match on_conflict {
                    OnConflict::First if model.contains_key(&k.key) => continue,
                    OnConflict::Rename => r.key = [format!("{i}/{}/", k.db).as_bytes(), &k.key].concat(),
                    _ => {}
                }
            }
            model.insert(r.key.clone(), r);
        }
        let renamed_clash = on_conflict == OnConflict::Rename
            && model.len() != all.len();
        match merge::plan(&sources, &router, &opts) {
            Err(MergeError::Conflicts(c)) => {
                prop_assert!(on_conflict == OnConflict::Error && collisions > 0 || renamed_clash, "{c:?}");
                if on_conflict == OnConflict::Error {
                    prop_assert_eq!(c.len(), collisions);
                }
            }
            Err(e) => prop_assert!(false, "{e}"),
            Ok(plan) => {
                prop_assert!(on_conflict != OnConflict::Error || collisions == 0);
                let (out, _) = merge::write(&plan, &sources, &router, vec![Vec::new()]).unwrap().remove(0);
                verify_ok(&out)?;
                prop_assert_eq!(sorted(records(&out)), sorted(model.into_values().collect()));
            }
        }
    }
}
