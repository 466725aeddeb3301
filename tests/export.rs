//! `rdbtool export` as a process: JSON output against what real servers held (every fixture),
//! RESP and RESTORE output loaded into a real redis-server and read back, the filters against
//! selections computed here (and Redis's own KEYS for globs), atomic `-o`, broken pipes.

mod common;
use common::rdbtool;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{FileKey, RedisServer, Resp, read_rdb};
use rdbtool::json::to_bytes;
use rdbtool::rdb::types::Format;
use rdbtool::rdb::value::{RawValue, Value};
use rdbtool::rdb::{Reader, Record, Walker};
use serde_json::Value as Json;

fn td(name: &str) -> String {
    common::testdata(name).display().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs an export that must succeed and returns stdout.
fn export_ok(args: &[&str]) -> Vec<u8> {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    let o = rdbtool(&all);
    assert_eq!(o.status.code(), Some(0), "rdbtool {all:?}: {}", stderr(&o));
    o.stdout
}

fn jsonl(out: &[u8]) -> Vec<Json> {
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l).unwrap_or_else(|e| panic!("bad JSON line {e}: {}", String::from_utf8_lossy(l)))
        })
        .collect()
}

fn b(v: &Json) -> Vec<u8> {
    to_bytes(v).unwrap_or_else(|| panic!("not a byte string: {v}"))
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// 1. JSONL against the servers' own view of every fixture.

fn field<'a>(flat: &'a Json, name: &str) -> &'a Json {
    let a = flat.as_array().unwrap();
    let i = a.iter().position(|x| x.as_str() == Some(name)).unwrap_or_else(|| panic!("no {name} in {flat}"));
    &a[i + 1]
}

fn score(v: &Json) -> f64 {
    match v {
        Json::Number(n) => n.as_f64().unwrap(),
        Json::String(s) if s == "inf" => f64::INFINITY,
        Json::String(s) if s == "-inf" => f64::NEG_INFINITY,
        _ => panic!("bad score {v}"),
    }
}

fn pairs(v: &Json) -> Vec<(Vec<u8>, Vec<u8>)> {
    v.as_array().unwrap().iter().map(|p| (b(&p[0]), b(&p[1]))).collect()
}

/// A stream entry: its ID and its field / value pairs.
type EntryFields = (String, Vec<(Vec<u8>, Vec<u8>)>);

fn check_stream(what: &str, ours: &Json, exp: &Json) {
    let v = &ours["value"];
    let entries: Vec<EntryFields> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap().to_owned(), pairs(&e["fields"])))
        .collect();
    let exp_entries: Vec<EntryFields> =
        exp["value"].as_array().unwrap().iter().map(|e| (e[0].as_str().unwrap().to_owned(), pairs(&e[1]))).collect();
    assert_eq!(entries, exp_entries, "{what}: entries");
    let info = &exp["stream_info"];
    assert_eq!(v["length"], info["length"], "{what}: length");
    assert_eq!(v["last_id"], info["last-generated-id"], "{what}: last id");
    for (ours, theirs) in [
        ("max_deleted_id", "max-deleted-entry-id"),
        ("entries_added", "entries-added"),
        ("first_id", "recorded-first-entry-id"),
    ] {
        if let Some(o) = v.get(ours) {
            assert_eq!(o, &info[theirs], "{what}: {ours}");
        }
    }
    let groups = info["groups"].as_array().unwrap();
    let ours_groups = v["groups"].as_array().unwrap();
    assert_eq!(ours_groups.len(), groups.len(), "{what}: groups");
    for g in groups {
        let name = b(field(g, "name"));
        let og = ours_groups.iter().find(|x| b(&x["name"]) == name).expect("group");
        assert_eq!(og["last_id"], *field(g, "last-delivered-id"), "{what}: group last id");
        if let Some(er) = og.get("entries_read") {
            assert_eq!(er, field(g, "entries-read"), "{what}: entries-read");
        }
        let pel: Vec<(String, Vec<u8>, i64, u64)> = og["pending"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let id = p["id"].as_str().unwrap().to_owned();
                (id, b(&p["consumer"]), p["delivery_time_ms"].as_i64().unwrap(), p["delivery_count"].as_u64().unwrap())
            })
            .collect();
        let exp_pel: Vec<(String, Vec<u8>, i64, u64)> = field(g, "pending")
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_owned(), b(&p[1]), p[2].as_i64().unwrap(), p[3].as_u64().unwrap()))
            .collect();
        assert_eq!(sorted(pel), sorted(exp_pel), "{what}: PEL");
        let consumers = field(g, "consumers").as_array().unwrap();
        let oc = og["consumers"].as_array().unwrap();
        assert_eq!(oc.len(), consumers.len(), "{what}: consumers");
        for c in consumers {
            let cname = b(field(c, "name"));
            let o = oc.iter().find(|x| b(&x["name"]) == cname).expect("consumer");
            assert_eq!(o["seen_time_ms"], *field(c, "seen-time"), "{what}: seen-time");
            if let (Some(a), Some(i)) =
                (o.get("active_time_ms"), c.as_array().unwrap().iter().position(|x| x.as_str() == Some("active-time")))
            {
                assert_eq!(*a, c[i + 1], "{what}: active-time");
            }
            let ids: Vec<String> =
                o["pending"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_owned()).collect();
            let exp_ids: Vec<String> =
                field(c, "pending").as_array().unwrap().iter().map(|p| p[0].as_str().unwrap().to_owned()).collect();
            assert_eq!(sorted(ids), sorted(exp_ids), "{what}: consumer PEL");
        }
    }
    if let (Some(idmp), Some(d)) = (v.get("idmp"), info.get("idmp-duration")) {
        assert_eq!(idmp["duration_s"], *d, "{what}: idmp duration");
        assert_eq!(idmp["maxsize"], info["idmp-maxsize"], "{what}: idmp maxsize");
        assert_eq!(idmp["iids_added"], info["iids-added"], "{what}: iids added");
        assert_eq!(idmp["iids_duplicates"], info["iids-duplicates"], "{what}: iids duplicates");
        assert_eq!(idmp["producers"].as_array().unwrap().len() as u64, info["pids-tracked"].as_u64().unwrap());
    }
}

fn check_entry(what: &str, ours: &Json, exp: &Json) {
    let exp_expire = exp["expire_at_ms"].as_i64().unwrap();
    assert_eq!(ours["expire_at_ms"].as_i64().unwrap_or(-1), exp_expire, "{what}: expire_at_ms");
    let (t, et) = (ours["type"].as_str().unwrap(), exp["type"].as_str().unwrap());
    let (v, ev) = (&ours["value"], &exp["value"]);
    match t {
        "string" => assert_eq!(b(v), b(ev), "{what}"),
        "list" => {
            let ours: Vec<Vec<u8>> = v.as_array().unwrap().iter().map(b).collect();
            let exp: Vec<Vec<u8>> = ev.as_array().unwrap().iter().map(b).collect();
            assert_eq!(ours, exp, "{what}");
        }
        "set" => {
            let ours: Vec<Vec<u8>> = v.as_array().unwrap().iter().map(b).collect();
            let exp: Vec<Vec<u8>> = ev.as_array().unwrap().iter().map(b).collect();
            assert_eq!(sorted(ours), sorted(exp), "{what}");
        }
        "zset" => {
            let mut ours: Vec<(Vec<u8>, f64)> =
                v.as_array().unwrap().iter().map(|p| (b(&p[0]), score(&p[1]))).collect();
            let mut exp: Vec<(Vec<u8>, f64)> =
                ev.as_array().unwrap().iter().map(|p| (b(&p[0]), score(&p[1]))).collect();
            ours.sort_by(|a, b| a.0.cmp(&b.0));
            exp.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(ours, exp, "{what}");
        }
        "hash" => {
            assert_eq!(sorted(pairs(v)), sorted(pairs(ev)), "{what}");
            let ttls = |e: &Json| -> Vec<(Vec<u8>, i64)> {
                e.get("field_expire_at_ms")
                    .map(|f| f.as_array().unwrap().iter().map(|p| (b(&p[0]), p[1].as_i64().unwrap())).collect())
                    .unwrap_or_default()
            };
            assert_eq!(sorted(ttls(ours)), sorted(ttls(exp)), "{what}: field TTLs");
        }
        "stream" => check_stream(what, ours, exp),
        "module" => {
            assert_eq!(v["module"].as_str().unwrap(), et, "{what}: module type");
            assert!(v["payload_base64"].as_str().is_some_and(|p| !p.is_empty()), "{what}");
        }
        _ => panic!("{what}: unknown type {t}"),
    }
    if t != "module" {
        assert_eq!(t, et, "{what}: type");
    }
}

/// Exports `rdb` as JSONL and compares with the expected JSON; returns the keys compared.
fn check_fixture(rdb: &Path, expected: &Path, rdb_part_only: bool) -> usize {
    let exp: Json = serde_json::from_slice(&std::fs::read(expected).unwrap()).unwrap();
    let now = format!("{}ms", exp["server"]["dump_time_ms"].as_i64().unwrap());
    let out = export_ok(&["--expired", "exclude", "--now", &now, rdb.to_str().unwrap()]);
    let mut ours: BTreeMap<(u64, Vec<u8>), Json> = BTreeMap::new();
    for o in jsonl(&out) {
        let k = (o["db"].as_u64().unwrap(), b(&o["key"]));
        assert!(ours.insert(k, o).is_none(), "{}: key exported twice", rdb.display());
    }
    let mut compared = 0;
    let mut exp_count = 0;
    for (db, entries) in exp["dbs"].as_object().unwrap() {
        let db: u64 = db.parse().unwrap();
        for e in entries.as_array().unwrap() {
            exp_count += 1;
            let key = b(&e["key"]);
            let what = format!("{}: db {db} key {:?}", rdb.display(), String::from_utf8_lossy(&key));
            match ours.get(&(db, key)) {
                Some(o) => {
                    check_entry(&what, o, e);
                    compared += 1;
                }
                None if rdb_part_only => {}
                None => panic!("{what}: missing from the export"),
            }
        }
    }
    if !rdb_part_only {
        assert_eq!(ours.len(), exp_count, "{}: key count", rdb.display());
    }
    compared
}

#[test]
fn jsonl_matches_the_server_for_testdata() {
    let dir = common::testdata("expected");
    let mut n = 0;
    for f in ["all-types.rdb", "small-db0.rdb", "no-checksum.rdb", "uncompressed.rdb", "empty.rdb"] {
        n += check_fixture(&common::testdata(f), &dir.join(format!("{f}.json")), false);
    }
    assert!(n > 300, "only {n} keys compared");
}

#[test]
fn jsonl_matches_the_server_for_redis_test_assets() {
    let Some(shared) = common::shared_dir() else { return };
    let dir = shared.join("fixtures/redis");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !(name.ends_with(".rdb") || name.ends_with(".aof")) {
            continue;
        }
        let expected = dir.join("expected").join(format!("{name}.json"));
        if !expected.is_file() {
            // corrupt_ziplist.rdb: no server loads it; export must refuse it.
            let o = rdbtool(&["export", path.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
            assert!(stderr(&o).contains("offset"), "{name}: {}", stderr(&o));
            continue;
        }
        // A preamble AOF: the RESP tail adds keys the RDB part does not hold.
        check_fixture(&path, &expected, name.ends_with(".aof"));
        seen += 1;
    }
    assert!(seen >= 8, "only {seen} fixtures with expected JSON");
    // Empty collections are skipped with a warning, as the server skips them.
    let o = rdbtool(&["export", dir.join("corrupt_empty_keys.rdb").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("empty"), "{}", stderr(&o));
    // The preamble AOF's tail is reported, not silently dropped.
    let o = rdbtool(&["export", dir.join("rdb-preamble.aof").to_str().unwrap()]);
    assert!(stderr(&o).contains("AOF"), "{}", stderr(&o));
}

#[test]
fn jsonl_matches_the_server_for_newer_servers() {
    let Some(shared) = common::shared_dir() else { return };
    let dir = shared.join("fixtures/generated");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let d = entry.unwrap().path();
        if d.join("dump.rdb").is_file() {
            assert!(check_fixture(&d.join("dump.rdb"), &d.join("expected.json"), false) > 0);
            seen += 1;
        }
    }
    assert!(seen >= 7, "only {seen} generated fixtures");
}

#[test]
fn json_array_holds_the_same_objects() {
    let f = td("all-types.rdb");
    let lines = jsonl(&export_ok(&[&f]));
    let doc: Json = serde_json::from_slice(&export_ok(&["--format", "json", &f])).unwrap();
    assert_eq!(doc.as_array().unwrap(), &lines);
    assert_eq!(lines.len(), 268);
    let empty: Json = serde_json::from_slice(&export_ok(&["--format", "json", &td("empty.rdb")])).unwrap();
    assert_eq!(empty, Json::Array(vec![]));
}

#[test]
fn with_meta_adds_encoding_and_sizes() {
    let f = common::testdata("all-types.rdb");
    let (keys, _) = read_rdb(&f);
    let lines = jsonl(&export_ok(&["--with-meta", f.to_str().unwrap()]));
    assert_eq!(lines.len(), keys.len());
    let mut encodings = BTreeSet::new();
    for (o, k) in lines.iter().zip(&keys) {
        assert_eq!(b(&o["key"]), k.key);
        assert_eq!(o["value_bytes"].as_u64().unwrap() as usize, k.value_bytes);
        assert!(o.get("idle").is_some() && o.get("freq").is_some());
        encodings.insert(o["encoding"].as_str().unwrap().to_owned());
    }
    for e in ["string", "quicklist-v2", "set-intset", "hash-listpack", "zset-listpack", "zset-v2", "stream-v2"] {
        assert!(encodings.contains(e), "{e} not in {encodings:?}");
    }
    // Without the flag, none of them.
    let plain = jsonl(&export_ok(&[f.to_str().unwrap()]));
    assert!(plain.iter().all(|o| o.get("encoding").is_none() && o.get("value_bytes").is_none()));
}

// ---------------------------------------------------------------------------------------------
// 2. Round trips through a real server.

/// Pipes `resp` into the server with `redis-cli --pipe`; returns (errors, replies).
fn pipe_into(server: &RedisServer, resp: &[u8]) -> (u64, u64) {
    common::redis_cli_pipe(server.port, resp)
}

fn server_keys(server: &RedisServer, db: u64) -> Vec<Vec<u8>> {
    server.select(db);
    match server.cmd(&[b"KEYS", b"*"]) {
        Resp::Array(Some(a)) => sorted(a.iter().map(|k| k.as_bytes().unwrap().to_vec()).collect()),
        r => panic!("KEYS: {r:?}"),
    }
}

/// DUMP of a key decoded by our reader, after checking the payload footer.
fn dump_value(server: &RedisServer, key: &[u8]) -> Value {
    let Resp::Bulk(Some(p)) = server.cmd(&[b"DUMP", key]) else { panic!("DUMP {key:?}") };
    assert!(p.len() >= 11);
    let (body, crc) = p.split_at(p.len() - 8);
    assert_eq!(rdbtool::crc::crc64(body).to_le_bytes(), crc, "DUMP footer CRC");
    let version = u16::from_le_bytes([body[body.len() - 2], body[body.len() - 1]]);
    let raw = RawValue {
        type_byte: body[0],
        format: Format::from_dump_version(version),
        bytes: &body[1..body.len() - 2],
        offset: 0,
    };
    raw.decode(&mut Walker::new()).unwrap_or_else(|e| panic!("DUMP of {key:?}: {e}"))
}

/// The comparable form of a value: unordered collections sorted; with `rebuilt_streams`, what
/// commands cannot carry is dropped (consumer seen/active times, which the server sets on load,
/// and PEL entries whose stream entry was deleted, which XCLAIM drops).
fn norm(v: &Value, rebuilt_streams: bool) -> Value {
    match v.clone() {
        Value::Set(s) => Value::Set(sorted(s)),
        Value::Zset(mut z) => {
            z.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Zset(z)
        }
        Value::Hash(mut h) => {
            h.sort_by(|a, b| a.field.cmp(&b.field));
            Value::Hash(h)
        }
        Value::Stream(mut s) if rebuilt_streams => {
            let ids: HashSet<_> = s.entries.iter().map(|e| e.id).collect();
            for g in &mut s.groups {
                g.pending.retain(|p| ids.contains(&p.id));
                for c in &mut g.consumers {
                    c.seen_time_ms = 0;
                    c.active_time_ms = c.active_time_ms.map(|_| 0);
                    c.pending.retain(|id| ids.contains(id));
                }
            }
            Value::Stream(s)
        }
        v => v,
    }
}

/// The server's whole dataset equals the file's: the same keys per db (but those expiring
/// around now, which may or may not have gone), TTLs, values, function libraries.
fn assert_server_holds(server: &RedisServer, file: &Path, rebuilt_streams: bool) -> usize {
    let (keys, functions) = read_rdb(file);
    let soon = rdbtool::filter::now_ms() + 60_000;
    let unsure = |k: &FileKey| k.expire_at_ms.is_some_and(|t| t < soon);
    let mut by_db: BTreeMap<u64, Vec<&FileKey>> = BTreeMap::new();
    for k in &keys {
        by_db.entry(k.db).or_default().push(k);
    }
    let mut compared = 0;
    for db in 0..16 {
        let theirs = server_keys(server, db);
        let mine = by_db.get(&db).cloned().unwrap_or_default();
        let sure: Vec<Vec<u8>> = sorted(mine.iter().filter(|k| !unsure(k)).map(|k| k.key.clone()).collect());
        let theirs_sure: Vec<Vec<u8>> =
            theirs.iter().filter(|t| !mine.iter().any(|k| &k.key == *t && unsure(k))).cloned().collect();
        assert_eq!(theirs_sure, sure, "db {db}: keys");
        server.select(db);
        for k in mine.iter().filter(|k| !unsure(k)) {
            let what = format!("db {db} key {:?}", String::from_utf8_lossy(&k.key));
            let pexpiretime = server.cmd(&[b"PEXPIRETIME", &k.key]).as_int().unwrap();
            assert_eq!(pexpiretime, k.expire_at_ms.unwrap_or(-1), "{what}: TTL");
            let got = dump_value(server, &k.key);
            assert_eq!(norm(&got, rebuilt_streams), norm(&k.value, rebuilt_streams), "{what}");
            compared += 1;
        }
    }
    let Resp::Array(Some(libs)) = server.cmd(&[b"FUNCTION", b"LIST", b"WITHCODE"]) else { panic!("FUNCTION LIST") };
    let mut codes = Vec::new();
    for lib in &libs {
        let Resp::Array(Some(kv)) = lib else { panic!() };
        let i = kv.iter().position(|x| x.as_bytes() == Some(b"library_code")).unwrap();
        codes.push(kv[i + 1].as_bytes().unwrap().to_vec());
    }
    assert_eq!(sorted(codes), sorted(functions), "function libraries");
    compared
}

#[test]
fn resp_rebuilds_the_dataset_on_a_server() {
    let Some(server) = RedisServer::start(&[]) else { return };
    let f = common::with_future_ttls("all-types.rdb");
    // A small batch so that most collections need several commands.
    let resp = export_ok(&["--format", "resp", "--batch", "7", f.to_str().unwrap()]);
    let (errors, replies) = pipe_into(&server, &resp);
    assert_eq!(errors, 0);
    assert!(replies > 268);
    let n = assert_server_holds(&server, &f, true);
    assert!(n > 200, "only {n} keys compared");
    // Batching: no data command carries more than 7 elements.
    for cmd in parse_resp(&resp) {
        let per = match cmd[0].as_slice() {
            b"RPUSH" | b"SADD" => 1,
            b"ZADD" | b"HSET" => 2,
            _ => continue,
        };
        assert!(cmd.len() - 2 <= 7 * per, "{} args", cmd.len());
    }
}

#[test]
fn resp_keeps_stream_groups_and_pending_entries() {
    // What XGROUP CREATE / CREATECONSUMER / XCLAIM ... FORCE carry, checked one by one on the
    // streams of all-types.rdb (the rest of the value is compared above). Its relative TTLs
    // are moved past 2100: a stream whose TTL passed would be gone, and this is not about expiry.
    let Some(server) = RedisServer::start(&[]) else { return };
    let f = common::with_future_ttls("all-types.rdb");
    let (errors, _) = pipe_into(&server, &export_ok(&["--format", "resp", "--type", "stream", f.to_str().unwrap()]));
    assert_eq!(errors, 0);
    let (keys, _) = read_rdb(&f);
    let mut groups = 0;
    let mut pending = 0;
    for k in &keys {
        let Value::Stream(s) = &k.value else { continue };
        server.select(k.db);
        let Value::Stream(got) = dump_value(&server, &k.key) else { panic!("not a stream") };
        assert_eq!(got.meta.last_id, s.meta.last_id);
        assert_eq!(got.meta.entries_added, s.meta.entries_added);
        assert_eq!(got.meta.max_deleted_id, s.meta.max_deleted_id);
        assert_eq!(got.groups.len(), s.groups.len());
        for (g, h) in got.groups.iter().zip(&s.groups) {
            assert_eq!((&g.name, g.last_id, g.entries_read), (&h.name, h.last_id, h.entries_read));
            let names = |x: &rdbtool::rdb::value::StreamGroup| -> Vec<Vec<u8>> {
                x.consumers.iter().map(|c| c.name.clone()).collect()
            };
            assert_eq!(names(g), names(h));
            groups += 1;
            pending += g.pending.len();
        }
    }
    assert!(groups >= 3 && pending >= 30, "{groups} groups, {pending} pending");
}

#[test]
fn restore_rebuilds_the_dataset_exactly() {
    let Some(server) = RedisServer::start(&[]) else { return };
    let f = common::with_future_ttls("all-types.rdb");
    let resp = export_ok(&["--format", "resp", "--restore", f.to_str().unwrap()]);
    let (errors, _) = pipe_into(&server, &resp);
    assert_eq!(errors, 0);
    // RESTORE carries the bytes: streams come back whole, consumer times and all.
    let n = assert_server_holds(&server, &f, false);
    assert!(n > 200, "only {n} keys compared");

    // The busy-key policies, on a key changed since.
    let (keys, _) = read_rdb(&f);
    let probe = keys
        .iter()
        .find(|k| k.db == 0 && k.expire_at_ms.is_none() && matches!(k.value, Value::String(_)))
        .map(|k| k.key.clone())
        .unwrap();
    server.select(0);
    server.cmd(&[b"SET", &probe, b"changed"]);
    let (errors, _) = pipe_into(&server, &resp);
    assert!(errors >= 200, "panic: every existing key is a BUSYKEY error ({errors})");
    let skip = export_ok(&["--format", "resp", "--restore", "--on-busy-key", "skip", f.to_str().unwrap()]);
    let (errors, _) = pipe_into(&server, &skip);
    assert_eq!(errors, 2, "skip: only the two FUNCTION LOADs fail");
    server.select(0);
    assert_eq!(server.cmd(&[b"GET", &probe]).as_bytes(), Some(&b"changed"[..]));
    let rewrite = export_ok(&["--format", "resp", "--restore", "--on-busy-key", "rewrite", f.to_str().unwrap()]);
    let (errors, _) = pipe_into(&server, &rewrite);
    assert_eq!(errors, 0);
    server.select(0);
    assert_ne!(server.cmd(&[b"GET", &probe]).as_bytes(), Some(&b"changed"[..]));
    assert_server_holds(&server, &f, false);
}

/// Splits RESP output into commands (arrays of bulk strings), checking the framing.
fn parse_resp(mut r: &[u8]) -> Vec<Vec<Vec<u8>>> {
    fn line<'a>(r: &mut &'a [u8]) -> &'a [u8] {
        let i = r.windows(2).position(|w| w == b"\r\n").expect("CRLF");
        let l = &r[..i];
        *r = &r[i + 2..];
        l
    }
    let num = |l: &[u8]| std::str::from_utf8(l).unwrap().parse::<usize>().unwrap();
    let mut cmds = Vec::new();
    while !r.is_empty() {
        let l = line(&mut r);
        assert_eq!(l[0], b'*');
        let n = num(&l[1..]);
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            let l = line(&mut r);
            assert_eq!(l[0], b'$');
            let len = num(&l[1..]);
            args.push(r[..len].to_vec());
            assert_eq!(&r[len..len + 2], b"\r\n");
            r = &r[len + 2..];
        }
        cmds.push(args);
    }
    cmds
}

#[test]
fn restore_payloads_are_the_file_bytes_with_a_dump_footer() {
    // Every fixture, modules and Valkey included: each RESTORE payload is the key's raw value
    // from the file, the target version and a CRC-64 that checks.
    let mut files = vec![common::testdata("all-types.rdb")];
    if let Some(shared) = common::shared_dir() {
        for d in std::fs::read_dir(shared.join("fixtures/generated")).unwrap() {
            let f = d.unwrap().path().join("dump.rdb");
            if f.is_file() {
                files.push(f);
            }
        }
        assert!(files.len() >= 8);
    }
    for f in files {
        let data = std::fs::read(&f).unwrap();
        let format = Reader::new(&data).unwrap().format();
        let out = export_ok(&["--format", "resp", "--restore", "--no-functions", f.to_str().unwrap()]);
        let mut cmds = parse_resp(&out).into_iter().filter(|c| c[0] != b"SELECT");
        for rec in Reader::new(&data).unwrap() {
            let Record::Key(k) = rec.unwrap() else { continue };
            let c = cmds.next().unwrap_or_else(|| panic!("{}: too few commands", f.display()));
            assert_eq!(c[0], b"RESTORE");
            assert_eq!(c[1], *k.key);
            assert_eq!(c[2], k.expire_at_ms.unwrap_or(0).to_string().as_bytes());
            assert_eq!(c[4], b"ABSTTL");
            let p = &c[3];
            let mut expect = Vec::new();
            if let Some(m) = &k.meta {
                expect.push(0xF3);
                expect.extend_from_slice(m.raw);
            }
            expect.push(k.value.type_byte);
            expect.extend_from_slice(k.value.bytes);
            expect.extend_from_slice(&(format.version as u16).to_le_bytes());
            assert_eq!(&p[..p.len() - 8], &expect[..], "{}: payload of {:?}", f.display(), k.key);
            assert_eq!(p[p.len() - 8..], rdbtool::crc::crc64(&expect).to_le_bytes());
        }
        assert!(cmds.next().is_none());
    }
}

#[test]
fn restore_refuses_types_the_target_version_lacks() {
    // RDB 10 holds listpacks (types 16-19); an RDB 9 server has none of them.
    let o = rdbtool(&["export", "--format", "resp", "--restore", "--rdb-version", "redis-6.2", &td("all-types.rdb")]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("key") && e.contains("target RDB version 9"), "{e}");
    // Strings and intset / hashtable sets exist at 9: their payloads say 9.
    let o = rdbtool(&[
        "export",
        "--format",
        "resp",
        "--restore",
        "--target-rdb-version",
        "9",
        "--type",
        "string",
        "--type",
        "set",
        &td("all-types.rdb"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let restores: Vec<_> = parse_resp(&o.stdout).into_iter().filter(|c| c[0] == b"RESTORE").collect();
    assert!(restores.len() > 100);
    assert!(restores.iter().all(|c| c[3][c[3].len() - 10..c[3].len() - 8] == [9, 0]));
    let Some(shared) = common::shared_dir() else { return };
    // Redis 8.6 streams are type 26: not below RDB 13; Valkey's type 22 is not Redis's.
    let f = shared.join("fixtures/generated/redis-8.6.3/dump.rdb");
    let o = rdbtool(&["export", "--format", "resp", "--restore", "--target-rdb-version", "12", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("stream-v4"), "{}", stderr(&o));
    let f = shared.join("fixtures/generated/valkey-9.1.2/dump.rdb");
    let o = rdbtool(&["export", "--format", "resp", "--restore", "--target-rdb-version", "12", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("hash-hashtable-ttl"), "{}", stderr(&o));
}

#[test]
fn resp_carries_hash_field_ttls() {
    // Redis 7.0 has no HPEXPIREAT, so the commands are checked here against the file: replaying
    // HSET / HPEXPIREAT on a model gives back every field and its TTL (Redis 7.4 and Valkey 9).
    let Some(shared) = common::shared_dir() else { return };
    for fixture in ["redis-7.4.1", "valkey-9.1.2"] {
        let dir = shared.join("fixtures/generated").join(fixture);
        let f = dir.join("dump.rdb");
        let exp: Json = serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
        let now = exp["server"]["dump_time_ms"].as_i64().unwrap();
        let (keys, _) = read_rdb(&f);
        for exclude in [false, true] {
            let mut args = vec!["export", "--format", "resp", "--type", "hash", "--batch", "5"];
            let now_s = format!("{now}ms");
            if exclude {
                args.extend_from_slice(&["--expired", "exclude", "--now", &now_s]);
            }
            args.push(f.to_str().unwrap());
            let o = rdbtool(&args);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            // (db, key) -> field -> (value, ttl)
            type Fields = BTreeMap<Vec<u8>, (Vec<u8>, Option<i64>)>;
            let mut model: BTreeMap<(u64, Vec<u8>), Fields> = BTreeMap::new();
            let mut db = 0;
            for c in parse_resp(&o.stdout) {
                match c[0].as_slice() {
                    b"SELECT" => db = String::from_utf8_lossy(&c[1]).parse().unwrap(),
                    b"HSET" => {
                        let h = model.entry((db, c[1].clone())).or_default();
                        for p in c[2..].chunks(2) {
                            assert!(h.insert(p[0].clone(), (p[1].clone(), None)).is_none());
                        }
                    }
                    b"HPEXPIREAT" => {
                        assert_eq!(c[3], b"FIELDS");
                        let t: i64 = String::from_utf8_lossy(&c[2]).parse().unwrap();
                        let n: usize = String::from_utf8_lossy(&c[4]).parse().unwrap();
                        assert_eq!(c.len(), 5 + n);
                        assert!(n <= 5);
                        let h = model.get_mut(&(db, c[1].clone())).expect("HPEXPIREAT before HSET");
                        for f in &c[5..] {
                            h.get_mut(f).expect("TTL of a field not set").1 = Some(t);
                        }
                    }
                    b"PEXPIREAT" | b"FUNCTION" => {}
                    other => panic!("unexpected {}", String::from_utf8_lossy(other)),
                }
            }
            let mut with_ttls = 0;
            let mut dropped = 0;
            for k in &keys {
                let Value::Hash(h) = &k.value else { continue };
                if exclude && k.expire_at_ms.is_some_and(|t| t < now) {
                    continue;
                }
                let want: Fields = h
                    .iter()
                    .filter(|f| !(exclude && f.expire_at_ms.is_some_and(|t| t < now)))
                    .map(|f| (f.field.clone(), (f.value.clone(), f.expire_at_ms)))
                    .collect();
                dropped += h.len() - want.len();
                with_ttls += want.values().filter(|v| v.1.is_some()).count();
                let got = model.remove(&(k.db, k.key.clone()));
                if want.is_empty() {
                    assert!(got.is_none(), "{fixture}: a hash whose fields all expired is left out");
                } else {
                    assert_eq!(got.as_ref(), Some(&want), "{fixture}: {:?}", String::from_utf8_lossy(&k.key));
                }
            }
            assert!(model.is_empty());
            assert!(with_ttls > 50, "{fixture}: {with_ttls} fields with a TTL");
            assert_eq!(dropped > 0, exclude, "{fixture}: expired fields dropped only with exclude");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Filters, each against a selection computed here from the decoded file.

fn selected(args: &[&str], file: &str) -> Vec<(u64, Vec<u8>)> {
    let mut all = args.to_vec();
    all.push(file);
    jsonl(&export_ok(&all)).iter().map(|o| (o["db"].as_u64().unwrap(), b(&o["key"]))).collect()
}

fn expect(keys: &[FileKey], pred: impl Fn(&FileKey) -> bool) -> Vec<(u64, Vec<u8>)> {
    keys.iter().filter(|k| pred(k)).map(|k| (k.db, k.key.clone())).collect()
}

/// CRC-16/XMODEM bit by bit (independent of the tables in src/slot/), with hash tags.
fn slot_of(key: &[u8]) -> u16 {
    let mut part = key;
    if let Some(o) = key.iter().position(|&c| c == b'{')
        && let Some(l) = key[o + 1..].iter().position(|&c| c == b'}')
        && l > 0
    {
        part = &key[o + 1..o + 1 + l];
    }
    let mut crc: u16 = 0;
    for &byte in part {
        crc ^= (byte as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

fn kind_name(v: &Value) -> &'static str {
    v.kind().as_str()
}

#[test]
fn filters_select_what_they_say() {
    let f = common::testdata("all-types.rdb");
    let fs = f.to_str().unwrap();
    let (keys, _) = read_rdb(&f);
    let check = |args: &[&str], want: Vec<(u64, Vec<u8>)>| {
        let got = selected(args, fs);
        assert!(!want.is_empty(), "{args:?}: the test must select something");
        assert!(want.len() < keys.len(), "{args:?}: the test must leave something out");
        assert_eq!(got, want, "{args:?}");
    };
    check(&["--db", "1", "--db", "3"], expect(&keys, |k| k.db == 1 || k.db == 3));
    check(&["--type", "hash", "--type", "stream"], expect(&keys, |k| matches!(kind_name(&k.value), "hash" | "stream")));
    let re = regex::bytes::Regex::new("^zset:.*[0-9]$").unwrap();
    check(&["--key-regex", "^zset:.*[0-9]$"], expect(&keys, |k| re.is_match(&k.key)));
    check(&["--slot", "0-8191"], expect(&keys, |k| slot_of(&k.key) <= 8191));
    check(
        &["--slot", "100-200", "--slot", "12000-16383"],
        expect(&keys, |k| {
            let s = slot_of(&k.key);
            (100..=200).contains(&s) || s >= 12000
        }),
    );
    check(&["--min-bytes", "1000"], expect(&keys, |k| k.value_bytes >= 1000));
    // A "now" in the middle of the TTLs: some keys expired, some not.
    let mut ttls: Vec<i64> = keys.iter().filter_map(|k| k.expire_at_ms).collect();
    ttls.sort();
    let now = ttls[ttls.len() / 2];
    check(
        &["--expired", "exclude", "--now", &format!("{now}ms")],
        expect(&keys, |k| k.expire_at_ms.is_none_or(|t| t >= now)),
    );
    assert_eq!(selected(&["--expired", "include", "--now", &format!("{now}ms")], fs).len(), keys.len());
    check(&["--limit", "7"], expect(&keys, |_| true).into_iter().take(7).collect());
    check(
        &["--db", "0", "--type", "string", "--limit", "5"],
        expect(&keys, |k| k.db == 0 && kind_name(&k.value) == "string").into_iter().take(5).collect(),
    );
    assert!(selected(&["--limit", "0"], fs).is_empty());
    // Globs on the file, the matcher itself is checked against Redis below.
    let glob = rdbtool::filter::Glob::new(b"hash:*");
    check(&["--key", "hash:*"], expect(&keys, |k| glob.matches(&k.key)));
    // A pattern that is not UTF-8, for binary key names.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let o = Command::new(env!("CARGO_BIN_EXE_rdbtool"))
            .args(["export", "--key"])
            .arg(std::ffi::OsStr::from_bytes(b"?\xffbin-key*"))
            .arg(fs)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0));
        let got: Vec<(u64, Vec<u8>)> =
            jsonl(&o.stdout).iter().map(|o| (o["db"].as_u64().unwrap(), b(&o["key"]))).collect();
        let want = expect(&keys, |k| k.key.starts_with(b"\x00\xffbin-key"));
        assert!(want.len() >= 2);
        assert_eq!(got, want);
    }
    // The same filters apply to RESP output.
    let resp = export_ok(&["--format", "resp", "--type", "set", "--no-functions", fs]);
    let sets = expect(&keys, |k| kind_name(&k.value) == "set");
    let mut keyed: BTreeSet<Vec<u8>> = BTreeSet::new();
    for c in parse_resp(&resp) {
        match c[0].as_slice() {
            b"SELECT" | b"PEXPIREAT" => {}
            b"SADD" => {
                keyed.insert(c[1].clone());
            }
            other => panic!("unexpected {}", String::from_utf8_lossy(other)),
        }
    }
    assert_eq!(keyed, sets.into_iter().map(|(_, k)| k).collect());
}

#[test]
fn glob_matches_like_redis_keys() {
    let Some(server) = RedisServer::start(&[]) else { return };
    let keys: Vec<&[u8]> = vec![
        b"",
        b"a",
        b"b",
        b"ab",
        b"abc",
        b"hello",
        b"hallo",
        b"hxllo",
        b"hllo",
        b"heeello",
        b"*",
        b"?",
        b"[",
        b"]",
        b"\\",
        b"a\\b",
        b"a]b",
        b"a-b",
        b"-",
        b"^",
        b"x^y",
        b"\x00",
        b"\xff",
        b"\x7f",
        b"\x80",
        b"caf\xc3\xa9",
        b"{user}:1",
        b"user:1:name",
        b"a*b",
        b"a?b",
        b"aXb",
        b"[abc]",
        b"_",
        b"`",
    ];
    for k in &keys {
        assert_eq!(server.cmd(&[b"SET", k, b"1"]), Resp::Simple("OK".into()));
    }
    let patterns: Vec<&[u8]> = vec![
        b"*",
        b"**",
        b"?",
        b"*?",
        b"a*",
        b"*b",
        b"a*b*c",
        b"h?llo",
        b"h*llo",
        b"h[ae]llo",
        b"h[^e]llo",
        b"h[a-b]llo",
        b"h[b-a]llo",
        b"[a-c]",
        b"[^a-c]",
        b"\\*",
        b"\\?",
        b"a\\*b",
        b"[",
        b"[]",
        b"[]a]",
        b"[^",
        b"[ab",
        b"[a-]",
        b"[\\]]",
        b"[\\-]",
        b"[]-a]",
        b"\\",
        b"a\\",
        b"a\\\\b",
        b"*\\",
        b"[a-\xff]",
        b"[\x80-\xff]",
        b"[\x00-a]",
        b"caf?",
        b"caf??",
        b"*\xa9",
        b"{*}*",
        b"user:?:*",
        b"[!a]",
        b"[a^]",
        b"[^^]",
        b"",
        b"a[",
        b"*[",
    ];
    let mut differences = Vec::new();
    for p in &patterns {
        let Resp::Array(Some(got)) = server.cmd(&[b"KEYS", p]) else { panic!("KEYS") };
        let redis: BTreeSet<Vec<u8>> = got.iter().map(|k| k.as_bytes().unwrap().to_vec()).collect();
        let g = rdbtool::filter::Glob::new(p);
        let ours: BTreeSet<Vec<u8>> = keys.iter().filter(|k| g.matches(k)).map(|k| k.to_vec()).collect();
        if redis != ours {
            differences.push(format!("{:?}: redis {redis:?} ours {ours:?}", String::from_utf8_lossy(p)));
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
}

// ---------------------------------------------------------------------------------------------
// 4. Output plumbing: broken pipes, atomic -o, exit codes.

#[test]
fn broken_pipe_exits_quietly() {
    let f = td("all-types.rdb");
    for format in ["jsonl", "resp"] {
        let full = export_ok(&["--format", format, &f]);
        assert!(full.len() > 200_000, "output must outgrow the pipe buffer");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rdbtool"))
            .args(["export", "--format", format, &f])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0u8; 100];
        child.stdout.as_mut().unwrap().read_exact(&mut head).unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));
        assert!(out.stderr.is_empty(), "{format}: {}", stderr(&out));
        assert_eq!(head, full[..100]);
    }
}

fn dir_names(d: &Path) -> Vec<String> {
    sorted(std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
}

#[test]
fn output_file_is_written_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let f = td("all-types.rdb");
    // A new file, then one that exists: replaced whole.
    std::fs::write(&out, b"old content").unwrap();
    export_ok(&["-o", out.to_str().unwrap(), &f]);
    assert_eq!(std::fs::read(&out).unwrap(), export_ok(&[&f]));
    assert_eq!(dir_names(dir.path()), ["out.jsonl"]);

    // Invalid input: exit 1, the old file untouched, no temporary left behind.
    let mut bad = std::fs::read(&f).unwrap();
    bad.truncate(bad.len() * 2 / 3);
    let bad_path = dir.path().join("bad.rdb");
    std::fs::write(&bad_path, &bad).unwrap();
    let before = std::fs::read(&out).unwrap();
    let o = rdbtool(&["export", "-o", out.to_str().unwrap(), bad_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("offset"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert_eq!(dir_names(dir.path()), ["bad.rdb", "out.jsonl"]);
    // A damaged byte that only the checksum catches.
    let mut flipped = std::fs::read(&f).unwrap();
    let mid = flipped.len() / 2;
    let (pos, _) =
        flipped[mid..].windows(8).enumerate().find(|(_, w)| w.iter().all(|c| c.is_ascii_lowercase())).unwrap();
    flipped[mid + pos] ^= 0x20;
    let flipped_path = dir.path().join("flipped.rdb");
    std::fs::write(&flipped_path, &flipped).unwrap();
    let new_out = dir.path().join("new.jsonl");
    let o = rdbtool(&["export", "-o", new_out.to_str().unwrap(), flipped_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("checksum") || stderr(&o).contains("CRC"), "{}", stderr(&o));
    assert!(!new_out.exists());
    assert_eq!(dir_names(dir.path()), ["bad.rdb", "flipped.rdb", "out.jsonl"]);

    // Never over the input.
    let input = dir.path().join("in.rdb");
    std::fs::copy(&f, &input).unwrap();
    let o = rdbtool(&["export", "-o", input.to_str().unwrap(), input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&input).unwrap(), std::fs::read(&f).unwrap());
    assert!(!dir_names(dir.path()).iter().any(|n| n.contains("tmp")));
}

#[test]
fn exit_codes_and_messages() {
    let o = rdbtool(&["export", "/nonexistent/x.rdb"]);
    assert_eq!(o.status.code(), Some(2));
    for bad in [&["--slot", "5-4"][..], &["--type", "nope"], &["--key-regex", "("], &["--restore"], &["--batch", "0"]] {
        let mut args = vec!["export"];
        args.extend_from_slice(bad);
        let f = td("small-db0.rdb");
        args.push(&f);
        let o = rdbtool(&args);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(!stderr(&o).is_empty());
    }
    // Corrupt input names the place.
    let dir = tempfile::tempdir().unwrap();
    let mut data = std::fs::read(common::testdata("small-db0.rdb")).unwrap();
    data.truncate(400);
    let p: PathBuf = dir.path().join("t.rdb");
    std::fs::write(&p, &data).unwrap();
    let o = rdbtool(&["export", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at offset"), "{}", stderr(&o));
}

#[test]
fn every_truncation_fails_cleanly() {
    // Any prefix of a valid file: a clear error (exit 1), never a crash, in every format.
    let data = std::fs::read(common::testdata("small-db0.rdb")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.rdb");
    for len in (0..data.len()).step_by(7) {
        std::fs::write(&p, &data[..len]).unwrap();
        for format in ["jsonl", "resp"] {
            let o = rdbtool(&["export", "--format", format, p.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(1), "len {len} {format}: {}", stderr(&o));
        }
    }
}

#[test]
fn every_byte_flip_gives_output_or_an_error_never_a_panic() {
    // In-process, every format, every offset of a small file with every type: each damaged copy
    // either exports (then the checksum must have been the only thing hit... or not caught) or
    // fails with an input error that names an offset inside the file.
    use rdbtool::export::{ExportError, Options, OutputFormat, export, resp::RespOptions};
    let data = std::fs::read(common::testdata("small-db0.rdb")).unwrap();
    let modes = [
        (OutputFormat::Jsonl, false),
        (OutputFormat::Json, false),
        (OutputFormat::Resp, false),
        (OutputFormat::Resp, true),
    ];
    let mut errors = 0;
    for pos in 0..data.len() {
        for mask in [0x01u8, 0x80, 0xFF] {
            let mut d = data.clone();
            d[pos] ^= mask;
            for (format, restore) in modes {
                let opts = Options {
                    format,
                    with_meta: true,
                    resp: RespOptions { restore, ..Default::default() },
                    filter: Default::default(),
                };
                let mut out = Vec::new();
                match export(&d, &opts, &mut out, &mut |_| {}) {
                    Ok(_) => {}
                    Err(ExportError::Input(e)) => {
                        assert!(e.offset <= d.len() as u64, "offset {} past the end", e.offset);
                        errors += 1;
                    }
                    Err(ExportError::Refused(_)) => {}
                    Err(ExportError::Write(e)) => panic!("write error into a Vec: {e}"),
                }
            }
        }
    }
    // The CRC-64 catches what the structure does not: nearly every flip is an error.
    assert!(errors > data.len() * 3 * 4 * 9 / 10, "{errors} errors");
}

/// A key that repeats in one database is an error (exit 1, naming the key and both offsets) in
/// every format, and `-o` leaves no output: a replay of both copies would give the union of two
/// values. The same key in two databases exports.
#[test]
fn duplicate_keys_are_refused_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let dup = dir.path().join("dup.rdb");
    std::fs::write(&dup, common::rdb_of_strings(&[(0, b"k", b"1"), (1, b"k", b"2"), (0, b"j", b"3"), (0, b"k", b"4")]))
        .unwrap();
    let d = dup.display().to_string();
    for format in ["jsonl", "json", "resp"] {
        let out = dir.path().join(format!("out.{format}"));
        let o = rdbtool(&["export", "--format", format, "-o", out.to_str().unwrap(), &d]);
        assert_eq!(o.status.code(), Some(1), "{format}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("already present") && err.contains("db 0") && err.contains("\"k\""), "{format}: {err}");
        assert!(!out.exists(), "{format}: an output was left");
        let o = rdbtool(&["export", "--format", format, &d]);
        assert_eq!(o.status.code(), Some(1), "{format} to stdout: {}", stderr(&o));
    }
    let two = dir.path().join("two.rdb");
    std::fs::write(&two, common::rdb_of_strings(&[(0, b"k", b"1"), (1, b"k", b"2")])).unwrap();
    let out = export_ok(&[two.to_str().unwrap()]);
    assert_eq!(jsonl(&out).len(), 2);
}

/// A file holding one huge compressible string (a few MB on disk, 96 MB decompressed): every
/// output format writes it in pieces, so the peak is about the value once, not twice.
#[test]
fn a_huge_compressed_value_costs_its_size_once() {
    let value: Vec<u8> = b"value-abcdefghij".iter().copied().cycle().take(96 << 20).collect();
    let mut rdb = b"REDIS0011".to_vec();
    rdb.extend_from_slice(&[0xFE, 0, 0]);
    rdbtool::rdb::encode::write_string(&mut rdb, b"big", false);
    rdbtool::rdb::encode::write_lzf_string(&mut rdb, &value);
    rdb.push(0xFF);
    let crc = rdbtool::crc::crc64(&rdb);
    rdb.extend_from_slice(&crc.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.rdb");
    std::fs::write(&path, &rdb).unwrap();
    assert!(rdb.len() < 8 << 20, "the file is small: {}", rdb.len());
    for format in ["jsonl", "resp"] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rdbtool"));
        c.args(["export", "--format", format]).arg(&path);
        let (code, err, kib, _) = common::run_measured(&mut c);
        assert_eq!(code, Some(0), "{format}: {err}");
        // The value once (96 MiB) and the buffers; twice would be over 192 MiB.
        assert!(kib < 150 << 10, "{format}: peak RSS {kib} KiB for a 96 MiB value");
    }
}
