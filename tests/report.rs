//! `rdbtool report`: per-key formats against each other (the CSV read back by Python's csv
//! module), the JSON summary against sums over the JSON Lines, prefixes against an independent
//! computation, the prefix cap and its error bound.

mod common;
use common::rdbtool;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

/// A fixed "now" (the file's ctime): the TTL histogram does not depend on the day.
const NOW: &str = "1795241896000ms";

fn ok(args: &[&str]) -> String {
    let out = rdbtool(args);
    assert!(out.status.success(), "rdbtool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn all_types() -> String {
    common::testdata("all-types.rdb").display().to_string()
}

fn jsonl_rows(file: &str) -> Vec<Value> {
    ok(&["report", "--format", "jsonl", "--now", NOW, file]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A key of the JSON vocabulary as bytes.
fn key_bytes(v: &Value) -> Vec<u8> {
    rdbtool::json::to_bytes(v).expect("a key is a string or {base64}")
}

#[test]
fn csv_read_back_equals_jsonl() {
    let file = all_types();
    let csv = ok(&["report", "--format", "csv", "--now", NOW, &file]);
    // Python's csv module turns it into JSON rows: the quoting must be what a CSV reader expects.
    let script = r#"
import csv, json, sys, base64
rows = list(csv.reader(sys.stdin))
out = []
for r in rows[1:]:
    k = r[2]
    kb = base64.b64decode(k[7:]) if k.startswith("base64:") else k.encode()
    out.append({"db": int(r[0]), "type": r[1], "key": list(kb), "memory": int(r[3]), "encoding": r[4],
                "elements": int(r[5]), "largest": int(r[6]), "expiry": r[7]})
print(json.dumps({"header": rows[0], "rows": out}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(csv.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        parsed["header"],
        serde_json::json!([
            "database",
            "type",
            "key",
            "size_in_bytes",
            "encoding",
            "num_elements",
            "len_largest_element",
            "expiry"
        ])
    );
    let csv_rows = parsed["rows"].as_array().unwrap();
    let jsonl = jsonl_rows(&file);
    assert_eq!(csv_rows.len(), jsonl.len());
    assert_eq!(jsonl.len(), 268);
    let mut binary = 0;
    for (c, j) in csv_rows.iter().zip(&jsonl) {
        let ck: Vec<u8> = c["key"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
        assert_eq!(ck, key_bytes(&j["key"]));
        binary += usize::from(j["key"].is_object());
        assert_eq!(c["db"], j["db"]);
        assert_eq!(c["type"], j["type"]);
        assert_eq!(c["memory"], j["memory"]);
        assert_eq!(c["encoding"], j["encoding"]);
        assert_eq!(c["elements"], j["elements"]);
        assert_eq!(c["largest"], j["largest_element"]);
        assert_eq!(c["expiry"].as_str().unwrap().is_empty(), j["expire_at_ms"].is_null());
    }
    assert!(binary > 0, "all-types.rdb has binary keys: the base64 path must be exercised");
    // And the per-key figures are the library's.
    let data = std::fs::read(&file).unwrap();
    let mut est = rdbtool::memory::Estimator::new();
    let mut i = 0;
    for rec in rdbtool::rdb::Reader::new(&data).unwrap() {
        if let rdbtool::rdb::Record::Key(k) = rec.unwrap() {
            let f = est.key(&k.key, &k.value).unwrap();
            assert_eq!(jsonl[i]["memory"].as_u64().unwrap(), f.memory);
            assert_eq!(jsonl[i]["slot"].as_u64().unwrap(), rdbtool::slot::key_slot(&k.key) as u64);
            i += 1;
        }
    }
}

#[test]
fn json_summary_equals_sums_over_jsonl() {
    let file = all_types();
    let rows = jsonl_rows(&file);
    let summary: Value = serde_json::from_str(&ok(&["report", "--json", "--now", NOW, &file])).unwrap();
    let sum = |f: &dyn Fn(&Value) -> bool, field: &str| -> u64 {
        rows.iter().filter(|r| f(r)).map(|r| r[field].as_u64().unwrap()).sum()
    };
    let count = |f: &dyn Fn(&Value) -> bool| rows.iter().filter(|r| f(r)).count() as u64;
    assert_eq!(summary["keys"].as_u64().unwrap(), rows.len() as u64);
    assert_eq!(summary["memory"].as_u64().unwrap(), sum(&|_| true, "memory"));
    assert_eq!(summary["elements"].as_u64().unwrap(), sum(&|_| true, "elements"));
    for d in summary["dbs"].as_array().unwrap() {
        let db = d["db"].clone();
        assert_eq!(d["keys"].as_u64().unwrap(), count(&|r| r["db"] == db));
        assert_eq!(d["memory"].as_u64().unwrap(), sum(&|r| r["db"] == db, "memory"));
        assert_eq!(d["elements"].as_u64().unwrap(), sum(&|r| r["db"] == db, "elements"));
    }
    for (list, field) in [("types", "type"), ("encodings", "encoding")] {
        for t in summary[list].as_array().unwrap() {
            let v = t[field].clone();
            assert_eq!(t["keys"].as_u64().unwrap(), count(&|r| r[field] == v), "{list} {v}");
            assert_eq!(t["memory"].as_u64().unwrap(), sum(&|r| r[field] == v, "memory"), "{list} {v}");
        }
    }
    // TTL buckets.
    let now: i64 = NOW.trim_end_matches("ms").parse().unwrap();
    let bucket = |r: &Value| -> &str {
        let Some(t) = r["expire_at_ms"].as_i64() else { return "none" };
        let left = t - now;
        let h = 3_600_000;
        if left < 0 {
            "expired"
        } else if left < h {
            "<1h"
        } else if left < 24 * h {
            "<1d"
        } else if left < 7 * 24 * h {
            "<7d"
        } else if left < 30 * 24 * h {
            "<30d"
        } else {
            "more"
        }
    };
    for t in summary["ttl"].as_array().unwrap() {
        let name = t["ttl"].as_str().unwrap();
        assert_eq!(t["keys"].as_u64().unwrap(), count(&|r| bucket(r) == name), "ttl {name}");
        assert_eq!(t["memory"].as_u64().unwrap(), sum(&|r| bucket(r) == name, "memory"), "ttl {name}");
    }
    // Slots, and the top lists.
    for s in summary["slots"]["all"].as_array().unwrap() {
        let slot = s[0].clone();
        assert_eq!(s[1].as_u64().unwrap(), count(&|r| r["slot"] == slot));
        assert_eq!(s[2].as_u64().unwrap(), sum(&|r| r["slot"] == slot, "memory"));
    }
    let mut mems: Vec<u64> = rows.iter().map(|r| r["memory"].as_u64().unwrap()).collect();
    mems.sort_unstable_by(|a, b| b.cmp(a));
    let top: Vec<u64> =
        summary["top_memory"].as_array().unwrap().iter().map(|k| k["memory"].as_u64().unwrap()).collect();
    assert_eq!(top, mems[..10]);
    let mut els: Vec<u64> = rows.iter().map(|r| r["elements"].as_u64().unwrap()).collect();
    els.sort_unstable_by(|a, b| b.cmp(a));
    let top: Vec<u64> =
        summary["top_elements"].as_array().unwrap().iter().map(|k| k["elements"].as_u64().unwrap()).collect();
    assert_eq!(top, els[..10]);
}

/// Prefixes of `key`: up to and including each separator, at most `depth`.
fn prefixes_of(key: &[u8], seps: &[u8], depth: usize) -> Vec<Vec<u8>> {
    key.iter().enumerate().filter(|(_, b)| seps.contains(b)).take(depth).map(|(i, _)| key[..=i].to_vec()).collect()
}

fn expected_prefixes(rows: &[Value], seps: &[u8], depth: usize) -> BTreeMap<Vec<u8>, (u64, u64, u64)> {
    let mut want: BTreeMap<Vec<u8>, (u64, u64, u64)> = BTreeMap::new();
    for r in rows {
        for p in prefixes_of(&key_bytes(&r["key"]), seps, depth) {
            let e = want.entry(p).or_default();
            e.0 += 1;
            e.1 += r["memory"].as_u64().unwrap();
            e.2 += u64::from(r["expire_at_ms"].is_null());
        }
    }
    want
}

fn listed_prefixes(summary: &Value) -> BTreeMap<Vec<u8>, (u64, u64, u64)> {
    summary["prefixes"]["heaviest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let stats =
                (p["keys"].as_u64().unwrap(), p["memory"].as_u64().unwrap(), p["keys_without_ttl"].as_u64().unwrap());
            (key_bytes(&p["prefix"]), stats)
        })
        .collect()
}

#[test]
fn prefixes_match_an_independent_count() {
    let file = all_types();
    let rows = jsonl_rows(&file);
    for (seps, depth) in [(":", 3usize), (":_", 2), (":", 1)] {
        let summary: Value = serde_json::from_str(&ok(&[
            "report",
            "--json",
            "--now",
            NOW,
            "--top-prefixes",
            "100000",
            "--separators",
            seps,
            "--depth",
            &depth.to_string(),
            &file,
        ]))
        .unwrap();
        let want = expected_prefixes(&rows, seps.as_bytes(), depth);
        assert!(want.len() > 5);
        assert_eq!(listed_prefixes(&summary), want, "separators {seps:?} depth {depth}");
        assert_eq!(summary["prefixes"]["dropped"], 0);
    }
}

#[test]
fn prefix_cap_holds_and_states_its_error_bound() {
    let file = all_types();
    let rows = jsonl_rows(&file);
    let want = expected_prefixes(&rows, b":", 3);
    let summary: Value = serde_json::from_str(&ok(&[
        "report",
        "--json",
        "--now",
        NOW,
        "--max-prefixes",
        "8",
        "--top-prefixes",
        "1000",
        &file,
    ]))
    .unwrap();
    let p = &summary["prefixes"];
    assert!(p["held"].as_u64().unwrap() <= 8);
    assert!(p["dropped"].as_u64().unwrap() > 0);
    let bound_mem = p["error_bound_memory"].as_u64().unwrap();
    let bound_keys = p["error_bound_keys"].as_u64().unwrap();
    let listed = listed_prefixes(&summary);
    assert!(!listed.is_empty() && listed.len() <= 8);
    for (prefix, (keys, mem, _)) in &listed {
        let (tk, tm, _) = want[prefix];
        assert!(*mem <= tm && tm - mem <= bound_mem, "{prefix:?}: {mem} of {tm}, bound {bound_mem}");
        assert!(*keys <= tk && tk - keys <= bound_keys, "{prefix:?}: {keys} of {tk}, bound {bound_keys}");
    }
    // A prefix left out is one whose memory is within the bound (or lighter than every listed
    // one), never a heavy one lost without a word.
    let min_listed = listed.values().map(|s| s.1).min().unwrap();
    for (prefix, (_, tm, _)) in &want {
        if !listed.contains_key(prefix) {
            assert!(*tm <= bound_mem.max(min_listed) + bound_mem, "{prefix:?} ({tm}) missing");
        }
    }
    let text = ok(&["report", "--now", NOW, "--max-prefixes", "8", &file]);
    assert!(text.contains("--max-prefixes 8 reached"), "{text}");
}

#[test]
fn several_files_and_atomic_output() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.rdb", "b.rdb"] {
        std::fs::copy(common::testdata("all-types.rdb"), dir.path().join(name)).unwrap();
    }
    // The output goes beside the input directory: inside it is refused (tests/output_onto_input.rs).
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("report.json");
    let d = dir.path().display().to_string();
    let o = out.display().to_string();
    assert_eq!(ok(&["report", "--json", "--now", NOW, "-o", &o, &d]), "");
    let both: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let one: Value = serde_json::from_str(&ok(&["report", "--json", "--now", NOW, &all_types()])).unwrap();
    assert_eq!(both["files"].as_array().unwrap().len(), 2);
    for f in ["keys", "memory", "elements"] {
        assert_eq!(both[f].as_u64().unwrap(), 2 * one[f].as_u64().unwrap(), "{f}");
        for file in both["files"].as_array().unwrap() {
            assert_eq!(file[f], one[f], "{f}");
        }
    }
    // jsonl of several files names the file of each key.
    let lines = ok(&["report", "--format", "jsonl", "--now", NOW, &d]);
    assert_eq!(lines.lines().count(), 2 * 268);
    assert!(lines.lines().all(|l| l.contains("\"file\":")));
}

#[test]
fn filters_apply() {
    let file = all_types();
    let rows = jsonl_rows(&file);
    let summary: Value =
        serde_json::from_str(&ok(&["report", "--json", "--now", NOW, "--db", "0", "--type", "hash", &file])).unwrap();
    let want = rows.iter().filter(|r| r["db"] == 0 && r["type"] == "hash").count() as u64;
    assert_eq!(summary["keys"].as_u64().unwrap(), want);
}

/// Per-shard views: each shard's keys and memory are the sums over its slots (from the JSON's
/// per-slot list), shards add up to the total, and the hottest slots named are its own, heaviest
/// first. A nodes file that leaves slots unowned reports their keys apart.
#[test]
fn shard_views_sum_their_slots() {
    let file = all_types();
    let check = |v: &Value, ranges: &[(u16, u16)]| {
        let slots: Vec<(u64, u64, u64)> = v["slots"]["all"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s[0].as_u64().unwrap(), s[1].as_u64().unwrap(), s[2].as_u64().unwrap()))
            .collect();
        let shards = v["layout"]["shards"].as_array().unwrap();
        assert_eq!(shards.len(), ranges.len());
        let (mut keys, mut memory) = (0, 0);
        for (sh, &(a, b)) in shards.iter().zip(ranges) {
            let mine: Vec<&(u64, u64, u64)> = slots.iter().filter(|s| s.0 >= a as u64 && s.0 <= b as u64).collect();
            assert_eq!(sh["keys"].as_u64().unwrap(), mine.iter().map(|s| s.1).sum::<u64>(), "{sh}");
            assert_eq!(sh["memory"].as_u64().unwrap(), mine.iter().map(|s| s.2).sum::<u64>(), "{sh}");
            assert_eq!(sh["slot_count"].as_u64().unwrap(), (b - a) as u64 + 1);
            let hot: Vec<u64> =
                sh["hottest"].as_array().unwrap().iter().map(|h| h["memory"].as_u64().unwrap()).collect();
            assert!(!hot.is_empty() && hot.windows(2).all(|w| w[0] >= w[1]), "{sh}");
            let heaviest = mine.iter().map(|s| s.2).max().unwrap();
            assert_eq!(hot[0], heaviest);
            for h in sh["hottest"].as_array().unwrap() {
                let s = h["slot"].as_u64().unwrap();
                assert!(s >= a as u64 && s <= b as u64);
            }
            keys += sh["keys"].as_u64().unwrap();
            memory += sh["memory"].as_u64().unwrap();
        }
        (
            keys + v["layout"]["unassigned"]["keys"].as_u64().unwrap(),
            memory + v["layout"]["unassigned"]["memory"].as_u64().unwrap(),
        )
    };
    let v: Value = serde_json::from_str(&ok(&["report", "--json", "--now", NOW, "--shards", "3", &file])).unwrap();
    assert_eq!(
        check(&v, &[(0, 5460), (5461, 10922), (10923, 16383)]),
        (v["keys"].as_u64().unwrap(), v["memory"].as_u64().unwrap())
    );
    assert_eq!(v["layout"]["unassigned"]["keys"], 0);

    // Two masters leave 16000-16383 to nobody; the replica line is not a target.
    let dir = tempfile::tempdir().unwrap();
    let nodes = dir.path().join("nodes.txt");
    std::fs::write(
        &nodes,
        "a1 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n\
         b2 10.0.0.2:7001@17001 master - 0 0 2 connected 8192-15999\n\
         c3 10.0.0.3:7002@17002 slave a1 0 0 1 connected\n",
    )
    .unwrap();
    let nodes_s = nodes.display().to_string();
    let v: Value = serde_json::from_str(&ok(&["report", "--json", "--now", NOW, "--nodes", &nodes_s, &file])).unwrap();
    assert_eq!(v["layout"]["shards"][0]["node"]["host"], "10.0.0.1");
    let unowned: u64 = v["slots"]["all"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s[0].as_u64().unwrap() >= 16000)
        .map(|s| s[1].as_u64().unwrap())
        .sum();
    assert!(unowned > 0, "the fixture has keys in slots 16000-16383");
    assert_eq!(v["layout"]["unassigned"]["keys"].as_u64().unwrap(), unowned);
    assert_eq!(check(&v, &[(0, 8191), (8192, 15999)]), (v["keys"].as_u64().unwrap(), v["memory"].as_u64().unwrap()));

    // The text summary names the shards and their hottest slots.
    let text = ok(&["report", "--now", NOW, "--nodes", &nodes_s, &file]);
    assert!(text.contains("per shard (2 targets)"), "{text}");
    assert!(text.contains("a1-10.0.0.1-7000 [0-8191]"), "{text}");
    assert!(text.contains("(slots no target owns)"), "{text}");
    // One layout at a time.
    assert_eq!(rdbtool(&["report", "--shards", "2", "--nodes", &nodes_s, &file]).status.code(), Some(2));
}

/// The summary's estimate (values kept as their blob measured from headers) gives every key of
/// every fixture the figures of the full walk, `largest_element` aside.
#[test]
fn header_figures_equal_walked_figures() {
    let mut files = vec![all_types().into()];
    if let Some(shared) = common::shared_dir() {
        let mut stack = vec![shared.join("fixtures")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rdb") {
                    files.push(p);
                }
            }
        }
    }
    let mut compared = 0;
    let mut from_headers = 0;
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let Ok(reader) = rdbtool::rdb::Reader::new(&data) else { continue };
        let (mut full, mut headers) =
            (rdbtool::memory::Estimator::new(), rdbtool::memory::Estimator::without_largest());
        for rec in reader {
            let k = match rec {
                Ok(rdbtool::rdb::Record::Key(k)) => k,
                Ok(_) => continue,
                Err(_) => break,
            };
            // A value the walk refuses may still be measured from its headers: only compare
            // those it accepts (the other side must not panic).
            let h = headers.key(&k.key, &k.value);
            let Ok(f) = full.key(&k.key, &k.value) else { continue };
            let h = h.unwrap_or_else(|e| panic!("{}: {:?}: {e}", file.display(), k.key));
            assert_eq!(
                (f.memory, f.elements, f.encoding),
                (h.memory, h.elements, h.encoding),
                "{}: {:?}",
                file.display(),
                k.key
            );
            compared += 1;
            from_headers += usize::from(h.largest_element == 0 && f.largest_element > 0);
        }
    }
    assert!(compared > 500 && from_headers > 50, "{compared} keys compared, {from_headers} from headers");
    eprintln!("{} files, {compared} keys, {from_headers} measured from headers", files.len());
}

/// Writes to `path` a file of 20,000 string keys `k:N` in db 0 with `records` after the first
/// 12,000 (several batches and parts into the file), its checksum right; returns the path.
fn strings_around(records: &[u8], path: &std::path::Path) -> String {
    let names: Vec<(Vec<u8>, Vec<u8>)> =
        (0..20_000).map(|i| (format!("k:{i}").into_bytes(), format!("value {i}").into_bytes())).collect();
    let keys: Vec<(u64, &[u8], &[u8])> = names.iter().map(|(k, v)| (0, k.as_slice(), v.as_slice())).collect();
    let mut data = common::rdb_of_strings(&keys);
    // After the header, SELECTDB 0 and the first 12,000 records.
    let at = 9 + 2 + names[..12_000].iter().map(|(k, v)| 3 + k.len() + v.len()).sum::<usize>();
    data.splice(at..at, records.iter().copied());
    let crc_at = data.len() - 8;
    let crc = rdbtool::crc::crc64(&data[..crc_at]);
    data[crc_at..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, &data).unwrap();
    path.display().to_string()
}

/// A value that cannot be measured ends its file there, as one pass in file order would: the
/// keys before it are counted (in every aggregate), none after it, and the exit status is 1.
/// 12,000 keys come first, so the failing value is several batches into the file.
#[test]
fn a_value_that_cannot_be_measured_ends_the_file_there() {
    // A listpack hash whose header claims more bytes than its string holds (the reader finds
    // its end; measuring it fails).
    let lp = [20u8, 0, 0, 0, 2, 0, 0x81, b'a', 2, 0x81, b'b', 2, 0xFF];
    let mut bad = vec![16u8, 3, b'b', b'a', b'd', lp.len() as u8];
    bad.extend_from_slice(&lp);
    let dir = tempfile::tempdir().unwrap();
    let file = strings_around(&bad, &dir.path().join("bad.rdb"));

    let out = rdbtool(&["report", "--json", "--now", NOW, "--depth", "1", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"bad\""), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = rdbtool(&["report", "--format", "jsonl", "--now", NOW, &file]);
    assert_eq!(out.status.code(), Some(1));
    let rows: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 12_000);
    assert_eq!(rows.last().unwrap()["key"], "k:11999");
    let memory: u64 = rows.iter().map(|r| r["memory"].as_u64().unwrap()).sum();
    assert_eq!(v["keys"].as_u64().unwrap(), 12_000);
    assert_eq!(v["memory"].as_u64().unwrap(), memory);
    assert_eq!(v["files"][0]["keys"].as_u64().unwrap(), 12_000);
    assert_eq!(v["types"][0]["keys"].as_u64().unwrap(), 12_000);
    let slot_keys: u64 = v["slots"]["all"].as_array().unwrap().iter().map(|s| s[1].as_u64().unwrap()).sum();
    assert_eq!(slot_keys, 12_000);
    let p = &v["prefixes"]["heaviest"][0];
    assert_eq!((p["prefix"].as_str().unwrap(), p["keys"].as_u64().unwrap()), ("k:", 12_000));
    assert_eq!(p["memory"].as_u64().unwrap(), memory);
}

/// A key whose collection is empty (a set, a hash, a listpack hash with no entries) is skipped,
/// as Redis skips it when it loads the file: not counted, named in the file's `empty_keys`, and
/// the file is read to its end with exit status 0, in parts (summary, JSON) and in one reading
/// (JSON Lines) alike.
#[test]
fn a_key_with_an_empty_collection_is_skipped_as_redis_does() {
    // An empty set, an empty hash and a listpack hash of no entries (a 7-byte listpack: total
    // bytes, count 0, end).
    let mut empty = vec![2u8, 4, b'e', b's', b'e', b't', 0];
    empty.extend_from_slice(&[4u8, 5, b'e', b'h', b'a', b's', b'h', 0]);
    empty.extend_from_slice(&[16u8, 6, b'e', b'l', b'p', b'h', b's', b'h', 7, 7, 0, 0, 0, 0, 0, 0xFF]);
    let dir = tempfile::tempdir().unwrap();
    let file = strings_around(&empty, &dir.path().join("empty.rdb"));

    // What `verify` says of it (Redis loads it, dropping the three).
    let out = rdbtool(&["verify", &file]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 empty"), "{}", String::from_utf8_lossy(&out.stdout));

    let v: Value = serde_json::from_str(&ok(&["report", "--json", "--now", NOW, "--depth", "1", &file])).unwrap();
    let rows = jsonl_rows(&file);
    assert_eq!(rows.len(), 20_000);
    assert!(rows.iter().all(|r| r["key"].as_str().is_some_and(|k| k.starts_with("k:"))));
    let memory: u64 = rows.iter().map(|r| r["memory"].as_u64().unwrap()).sum();
    assert_eq!(v["keys"].as_u64().unwrap(), 20_000);
    assert_eq!(v["memory"].as_u64().unwrap(), memory);
    assert_eq!(v["files"][0]["keys"].as_u64().unwrap(), 20_000);
    assert_eq!(v["files"][0]["empty_keys"].as_u64().unwrap(), 3);
    assert!(v["files"][0]["error"].is_null());
    let summary = ok(&["report", "--now", NOW, &file]);
    assert!(summary.contains("20000 keys") && summary.contains("3 empty, not counted"), "{summary}");
}
