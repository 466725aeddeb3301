//! `rdbtool verify` and `rdbtool info` as processes: output, JSON schema and exit codes.

mod common;
use common::rdbtool;

use std::process::Output;

use serde_json::Value as Json;

fn td(name: &str) -> String {
    common::testdata(name).display().to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn verify_ok_file() {
    let o = rdbtool(&["verify", &td("all-types.rdb")]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.starts_with("OK"), "{out}");
    assert!(out.contains("RDB 10") && out.contains("checksum ok"), "{out}");
}

#[test]
fn verify_json_report() {
    let o = rdbtool(&["verify", "--json", &td("all-types.rdb"), &td("no-checksum.rdb")]);
    assert_eq!(o.status.code(), Some(0));
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let f = &files[0];
    assert_eq!(f["ok"], true);
    assert_eq!(f["version"], 10);
    assert_eq!(f["magic"], "REDIS");
    assert_eq!(f["redis_ver"], "7.0.15");
    assert_eq!(f["checksum"]["status"], "ok");
    assert_eq!(f["checksum"]["stored"], f["checksum"]["computed"]);
    // The expected JSON made by the server lists the same keys per db.
    let exp: Json =
        serde_json::from_slice(&std::fs::read(common::testdata("expected/all-types.rdb.json")).unwrap()).unwrap();
    let dbs = f["dbs"].as_array().unwrap();
    for (db, entries) in exp["dbs"].as_object().unwrap() {
        let d = dbs.iter().find(|d| d["db"].as_u64().map(|n| n.to_string()).as_deref() == Some(db.as_str())).unwrap();
        assert_eq!(d["keys"].as_u64().unwrap() as usize, entries.as_array().unwrap().len(), "db {db}");
    }
    assert_eq!(files[1]["checksum"]["status"], "not_computed");
    assert_eq!(files[1]["ok"], true);
}

#[test]
fn verify_corrupt_copy_fails_with_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = std::fs::read(common::testdata("small-db0.rdb")).unwrap();
    let pos = data.len() / 2;
    data[pos] ^= 0xFF;
    let bad = dir.path().join("bad.rdb");
    std::fs::write(&bad, &data).unwrap();
    let o = rdbtool(&["verify", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.starts_with("FAIL") && out.contains("at offset"), "{out}");
    let o = rdbtool(&["verify", "--json", bad.to_str().unwrap()]);
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    let e = &doc["files"][0]["errors"][0];
    assert!(e["offset"].as_u64().unwrap() <= data.len() as u64);
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    // With several files, each verdict is followed by its own details.
    let o = rdbtool(&["verify", &td("small-db0.rdb"), bad.to_str().unwrap(), &td("empty.rdb")]);
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert!(lines[0].starts_with("OK") && lines[1].starts_with("FAIL") && lines[2].contains("at offset"), "{lines:?}");
    // (Details may include warnings: the flipped byte can also make a value odd but loadable.)
    assert!(lines[3..].iter().all(|l| l.starts_with("      ") || l.starts_with("OK")), "{lines:?}");
    assert!(lines.last().unwrap().starts_with("OK"), "{lines:?}");
    // The input is never modified.
    assert_eq!(std::fs::read(&bad).unwrap(), data);
}

#[test]
fn verify_truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(common::testdata("all-types.rdb")).unwrap();
    let bad = dir.path().join("cut.rdb");
    std::fs::write(&bad, &data[..data.len() / 3]).unwrap();
    let o = rdbtool(&["verify", "--json", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    let e = &doc["files"][0]["errors"][0];
    assert_eq!(e["kind"], "truncated");
    assert!(e["db"].is_u64() && !e["key"].is_null(), "{e}");
}

#[test]
fn verify_exit_codes_for_usage_and_unreadable() {
    assert_eq!(rdbtool(&["verify"]).status.code(), Some(2));
    assert_eq!(rdbtool(&["verify", "/nonexistent/x.rdb"]).status.code(), Some(2));
    assert_eq!(rdbtool(&["no-such-command"]).status.code(), Some(2));
}

#[test]
fn verify_walks_directories() {
    let o = rdbtool(&["verify", "--json", &common::testdata("").display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<String> =
        doc["files"].as_array().unwrap().iter().map(|f| f["file"].as_str().unwrap().to_owned()).collect();
    for f in ["all-types.rdb", "small-db0.rdb", "empty.rdb", "no-checksum.rdb", "uncompressed.rdb"] {
        assert!(names.iter().any(|n| n.ends_with(f)), "{f} not in {names:?}");
    }
}

/// Empty collections are dropped by Redis while it loads (the rest loads): warnings, counted as
/// `empty_value`, and the file is OK.
#[test]
fn verify_warns_about_every_empty_key() {
    let Some(shared) = common::shared_dir() else { return };
    let f = shared.join("fixtures/redis/corrupt_empty_keys.rdb");
    let o = rdbtool(&["verify", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(stdout(&o).matches("[empty_value]").count(), 9, "{}", stdout(&o));
    assert!(stdout(&o).contains("9 empty (Redis drops them)"), "{}", stdout(&o));
    let o = rdbtool(&["verify", "--json", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    let file = &doc["files"][0];
    assert_eq!(file["errors"].as_array().unwrap().len(), 0);
    assert_eq!(file["warning_counts"]["empty_value"], 9);
    let warnings: Vec<&str> = file["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(warnings.iter().any(|w| w.contains("key \"set\"")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("key \"list_quicklist_empty_ziplist\"")), "{warnings:?}");
}

#[test]
fn info_reports_contents() {
    let o = rdbtool(&["info", "--json", &td("all-types.rdb")]);
    assert_eq!(o.status.code(), Some(0));
    let info: Json = serde_json::from_slice(&o.stdout).unwrap();
    let exp: Json =
        serde_json::from_slice(&std::fs::read(common::testdata("expected/all-types.rdb.json")).unwrap()).unwrap();
    let total: usize = exp["dbs"].as_object().unwrap().values().map(|v| v.as_array().unwrap().len()).sum();
    assert_eq!(info["keys"].as_u64().unwrap() as usize, total);
    assert_eq!(info["functions"].as_array().unwrap().len(), exp["functions"].as_array().unwrap().len());
    assert!(info["aux"].as_array().unwrap().iter().any(|a| a["key"] == "redis-ver" && a["value"] == "7.0.15"));
    let largest = info["largest"].as_array().unwrap();
    assert_eq!(largest.len(), 10);
    let sizes: Vec<u64> = largest.iter().map(|b| b["bytes"].as_u64().unwrap()).collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    // Per-type counts add up to the key count.
    let by_type: u64 = info["types"].as_object().unwrap().values().map(|u| u["count"].as_u64().unwrap()).sum();
    assert_eq!(by_type as usize, total);
    let o = rdbtool(&["info", &td("all-types.rdb")]);
    assert!(stdout(&o).contains("largest keys"));
}

#[test]
fn info_on_garbage_fails() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.rdb");
    std::fs::write(&f, b"not an rdb file at all").unwrap();
    assert_eq!(rdbtool(&["info", f.to_str().unwrap()]).status.code(), Some(1));
    assert_eq!(rdbtool(&["verify", f.to_str().unwrap()]).status.code(), Some(1));
}
