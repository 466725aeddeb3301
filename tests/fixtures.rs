//! Every fixture made by a real server decodes to exactly what that server held after loading it
//! (its `expected` JSON): testdata/ (Redis 7.0), ../shared/fixtures/redis (Redis's own test
//! assets, old encodings) and ../shared/fixtures/generated (Redis 7.2 to 8.6, Valkey 8.1 / 9.1).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use rdbtool::json::to_bytes;
use rdbtool::rdb::value::{Stream, Value};
use rdbtool::rdb::{Reader, Record, Walker};
use serde_json::Value as Json;

struct Key {
    expire_at_ms: Option<i64>,
    value: Value,
}

/// Every key of a file by (db, key).
type Decoded = BTreeMap<(u64, Vec<u8>), Key>;
/// A stream entry: its ID and its field / value pairs.
type EntryFields = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// Decodes every key, then drops what the server drops on load: keys and hash fields whose TTL
/// had passed at `now`, and hashes left without fields.
fn decode_all(data: &[u8], now: i64) -> (Decoded, Vec<Vec<u8>>) {
    let mut out = BTreeMap::new();
    let mut functions = Vec::new();
    let mut w = Walker::new();
    for rec in Reader::new(data).expect("header") {
        match rec.expect("record") {
            Record::Key(k) => {
                if k.expire_at_ms.is_some_and(|t| t < now) {
                    continue;
                }
                let mut value = k.value.decode(&mut w).unwrap_or_else(|e| panic!("decode {:?}: {e}", k.key));
                if let Value::Hash(h) = &mut value {
                    h.retain(|f| f.expire_at_ms.is_none_or(|t| t >= now));
                    if h.is_empty() {
                        continue;
                    }
                }
                let prev = out.insert((k.db, k.key.to_vec()), Key { expire_at_ms: k.expire_at_ms, value });
                assert!(prev.is_none(), "duplicate key {:?}", k.key);
            }
            Record::Function { source } => functions.push(source.to_vec()),
            _ => {}
        }
    }
    (out, functions)
}

fn b(v: &Json) -> Vec<u8> {
    to_bytes(v).unwrap_or_else(|| panic!("not a byte string: {v}"))
}

fn score(v: &Json) -> f64 {
    match v {
        Json::Number(n) => n.as_f64().unwrap(),
        Json::String(s) if s == "inf" => f64::INFINITY,
        Json::String(s) if s == "-inf" => f64::NEG_INFINITY,
        _ => panic!("bad score {v}"),
    }
}

fn sorted<T: Ord + Clone>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Looks up `name` in XINFO's flat [name, value, name, value...] arrays.
fn field<'a>(flat: &'a Json, name: &str) -> &'a Json {
    let a = flat.as_array().unwrap();
    let i = a.iter().position(|x| x.as_str() == Some(name)).unwrap_or_else(|| panic!("no {name} in {flat}"));
    &a[i + 1]
}

fn check_stream(what: &str, s: &Stream, entry: &Json) {
    let exp: Vec<EntryFields> = entry["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let fields = e[1].as_array().unwrap().iter().map(|p| (b(&p[0]), b(&p[1]))).collect();
            (e[0].as_str().unwrap().to_owned(), fields)
        })
        .collect();
    let ours: Vec<EntryFields> = s.entries.iter().map(|e| (e.id.to_string(), e.fields.clone())).collect();
    assert_eq!(ours, exp, "{what}: entries");
    let info = &entry["stream_info"];
    assert_eq!(s.meta.length, info["length"].as_u64().unwrap(), "{what}: length");
    assert_eq!(s.meta.last_id.to_string(), info["last-generated-id"].as_str().unwrap(), "{what}: last id");
    if let Some(m) = s.meta.max_deleted_id {
        assert_eq!(m.to_string(), info["max-deleted-entry-id"].as_str().unwrap(), "{what}: max deleted");
    }
    if let Some(n) = s.meta.entries_added {
        assert_eq!(n, info["entries-added"].as_u64().unwrap(), "{what}: entries added");
    }
    if let Some(f) = s.meta.first_id {
        assert_eq!(f.to_string(), info["recorded-first-entry-id"].as_str().unwrap(), "{what}: first id");
    }
    let groups = info["groups"].as_array().unwrap();
    assert_eq!(s.groups.len(), groups.len(), "{what}: groups");
    for g in groups {
        let name = b(field(g, "name"));
        let ours = s.groups.iter().find(|x| x.name == name).unwrap_or_else(|| panic!("{what}: group missing"));
        assert_eq!(ours.last_id.to_string(), field(g, "last-delivered-id").as_str().unwrap());
        match (ours.entries_read, field(g, "entries-read")) {
            (Some(n), Json::Number(e)) if n != u64::MAX => {
                assert_eq!(Some(n), e.as_u64(), "{what}: entries-read")
            }
            _ => {}
        }
        let pel: Vec<(String, Vec<u8>, i64, u64)> = ours
            .pending
            .iter()
            .map(|p| (p.id.to_string(), ours.consumers[p.consumer].name.clone(), p.delivery_time_ms, p.delivery_count))
            .collect();
        let exp_pel: Vec<(String, Vec<u8>, i64, u64)> = field(g, "pending")
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_owned(), b(&p[1]), p[2].as_i64().unwrap(), p[3].as_u64().unwrap()))
            .collect();
        assert_eq!(sorted(pel), sorted(exp_pel), "{what}: PEL");
        let consumers = field(g, "consumers").as_array().unwrap();
        assert_eq!(ours.consumers.len(), consumers.len(), "{what}: consumers");
        for c in consumers {
            let cname = b(field(c, "name"));
            let oc = ours.consumers.iter().find(|x| x.name == cname).expect("consumer");
            assert_eq!(oc.seen_time_ms, field(c, "seen-time").as_i64().unwrap(), "{what}: seen-time");
            // Redis 7.0's XINFO has no active-time.
            let active = c.as_array().unwrap().iter().position(|x| x.as_str() == Some("active-time"));
            if let (Some(a), Some(e)) = (oc.active_time_ms, active.and_then(|i| c[i + 1].as_i64())) {
                assert_eq!(a, e, "{what}: active-time");
            }
            let ids: Vec<String> = oc.pending.iter().map(|i| i.to_string()).collect();
            let exp_ids: Vec<String> =
                field(c, "pending").as_array().unwrap().iter().map(|p| p[0].as_str().unwrap().to_owned()).collect();
            assert_eq!(sorted(ids), sorted(exp_ids), "{what}: consumer PEL");
        }
    }
    if let (Some(idmp), Some(d)) = (&s.idmp, info.get("idmp-duration")) {
        assert_eq!(idmp.duration_s, d.as_u64().unwrap());
        assert_eq!(idmp.maxsize, info["idmp-maxsize"].as_u64().unwrap());
        assert_eq!(idmp.iids_added, info["iids-added"].as_u64().unwrap());
        assert_eq!(idmp.iids_duplicates, info["iids-duplicates"].as_u64().unwrap());
        assert_eq!(idmp.producers.len() as u64, info["pids-tracked"].as_u64().unwrap());
    }
}

fn check_entry(what: &str, ours: &Key, e: &Json) {
    let exp_expire = e["expire_at_ms"].as_i64().unwrap();
    assert_eq!(ours.expire_at_ms.unwrap_or(-1), exp_expire, "{what}: expire_at_ms");
    let t = e["type"].as_str().unwrap();
    let v = &e["value"];
    match (&ours.value, t) {
        (Value::String(s), "string") => assert_eq!(*s, b(v), "{what}"),
        (Value::List(l), "list") => {
            let exp: Vec<Vec<u8>> = v.as_array().unwrap().iter().map(b).collect();
            assert_eq!(*l, exp, "{what}");
        }
        (Value::Set(s), "set") => {
            let exp: Vec<Vec<u8>> = v.as_array().unwrap().iter().map(b).collect();
            assert_eq!(sorted(s.clone()), sorted(exp), "{what}");
        }
        (Value::Zset(z), "zset") => {
            let mut ours: Vec<(Vec<u8>, f64)> = z.clone();
            ours.sort_by(|a, b| a.0.cmp(&b.0));
            let mut exp: Vec<(Vec<u8>, f64)> = v.as_array().unwrap().iter().map(|p| (b(&p[0]), score(&p[1]))).collect();
            exp.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(ours.len(), exp.len(), "{what}: zset size");
            for (o, x) in ours.iter().zip(&exp) {
                assert_eq!(o.0, x.0, "{what}: member");
                assert_eq!(o.1, x.1, "{what}: score of {:?}", String::from_utf8_lossy(&o.0));
            }
        }
        (Value::Hash(h), "hash") => {
            let ours: Vec<(Vec<u8>, Vec<u8>)> = sorted(h.iter().map(|f| (f.field.clone(), f.value.clone())).collect());
            let exp: Vec<(Vec<u8>, Vec<u8>)> =
                sorted(v.as_array().unwrap().iter().map(|p| (b(&p[0]), b(&p[1]))).collect());
            assert_eq!(ours, exp, "{what}");
            if let Some(fe) = e.get("field_expire_at_ms") {
                let ours: Vec<(Vec<u8>, i64)> =
                    sorted(h.iter().filter_map(|f| f.expire_at_ms.map(|t| (f.field.clone(), t))).collect());
                let exp: Vec<(Vec<u8>, i64)> =
                    sorted(fe.as_array().unwrap().iter().map(|p| (b(&p[0]), p[1].as_i64().unwrap())).collect());
                assert_eq!(ours, exp, "{what}: field TTLs");
            }
        }
        (Value::Stream(s), "stream") => check_stream(what, s, e),
        (Value::Module(m), other) => assert_eq!(m.module_type.name(), other, "{what}: module type"),
        (o, t) => panic!("{what}: decoded a {:?}, the server held a {t}", o.kind()),
    }
}

/// Compares a file with its expected JSON; returns the number of keys compared.
fn check(rdb: &Path, expected: &Path, rdb_part_only: bool) -> usize {
    let data = std::fs::read(rdb).unwrap();
    let exp: Json = serde_json::from_slice(&std::fs::read(expected).unwrap()).unwrap();
    let now = exp["server"]["dump_time_ms"].as_i64().unwrap();
    let (ours, functions) = decode_all(&data, now);
    let mut compared = 0;
    let mut exp_count = 0;
    for (db, entries) in exp["dbs"].as_object().unwrap() {
        let db: u64 = db.parse().unwrap();
        for e in entries.as_array().unwrap() {
            exp_count += 1;
            let key = b(&e["key"]);
            let what = format!("{}: db {db} key {:?}", rdb.display(), String::from_utf8_lossy(&key));
            match ours.get(&(db, key)) {
                Some(k) => {
                    check_entry(&what, k, e);
                    compared += 1;
                }
                None if rdb_part_only => {}
                None => panic!("{what}: missing"),
            }
        }
    }
    if !rdb_part_only {
        assert_eq!(ours.len(), exp_count, "{}: key count", rdb.display());
    }
    if let Some(fs) = exp.get("functions").and_then(|f| f.as_array()) {
        let exp_code: Vec<Vec<u8>> = sorted(fs.iter().map(|l| b(field(l, "library_code"))).collect());
        assert_eq!(sorted(functions), exp_code, "{}: functions", rdb.display());
    }
    compared
}

#[test]
fn testdata_matches_the_server() {
    let dir = common::testdata("expected");
    let mut n = 0;
    for f in ["all-types.rdb", "small-db0.rdb", "no-checksum.rdb", "uncompressed.rdb", "empty.rdb"] {
        n += check(&common::testdata(f), &dir.join(format!("{f}.json")), false);
    }
    assert!(n > 300, "only {n} keys compared");
}

#[test]
fn redis_test_assets_match_the_server() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures/redis");
    for f in [
        "encodings.rdb",
        "hash-zipmap.rdb",
        "hash-ziplist.rdb",
        "zset-ziplist.rdb",
        "list-quicklist.rdb",
        "scriptbackup.rdb",
    ] {
        check(&dir.join(f), &dir.join("expected").join(format!("{f}.json")), false);
    }
    // The RESP tail of a preamble AOF adds keys the RDB part does not hold.
    check(&dir.join("rdb-preamble.aof"), &dir.join("expected/rdb-preamble.aof.json"), true);
}

#[test]
fn newer_servers_match() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures/generated");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let d = entry.unwrap().path();
        if d.join("dump.rdb").is_file() {
            let n = check(&d.join("dump.rdb"), &d.join("expected.json"), false);
            assert!(n > 0);
            seen += 1;
        }
    }
    assert!(seen >= 7, "only {seen} generated fixtures");
}
