//! `rdbtool lint`: each finding against an independent count over the file, exit codes.

mod common;

use std::process::Command;

use rdbtool::rdb::{Reader, Record};
use serde_json::Value as Json;

/// Before every TTL of the fixtures: nothing has expired.
const NOW: &str = "2026-11-01T00:00:00Z";

fn lint(args: &[&str]) -> (i32, Json) {
    let o = Command::new(env!("CARGO_BIN_EXE_rdbtool"))
        .arg("lint")
        .args(args)
        .args(["--json", "--now", NOW])
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    });
    (o.status.code().unwrap(), doc)
}

fn finding<'a>(doc: &'a Json, code: &str) -> Option<&'a Json> {
    doc["findings"].as_array().unwrap().iter().find(|f| f["code"] == code)
}

#[test]
fn cluster_target_finds_the_other_dbs() {
    let f = common::testdata("all-types.rdb");
    let data = std::fs::read(&f).unwrap();
    let outside_db0 =
        Reader::new(&data).unwrap().filter(|r| matches!(r, Ok(Record::Key(k)) if k.db != 0)).count() as u64;
    let (code, doc) = lint(&["--target", "cluster", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{doc}");
    let dbs = finding(&doc, "several-dbs").expect("several-dbs");
    assert_eq!((dbs["severity"].as_str(), dbs["count"].as_u64()), (Some("error"), Some(outside_db0)));
    assert!(dbs["keys"].as_array().unwrap().iter().all(|k| k["db"] != 0));
    assert_eq!(finding(&doc, "function-libraries").unwrap()["count"], 2);
    assert!(finding(&doc, "already-expired").is_none(), "{doc}");
    // The same file for a standalone Redis 7.0: nothing blocks.
    let (code, doc) = lint(&["--target", "redis-7.0", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{doc}");
    assert!(finding(&doc, "several-dbs").is_none());
}

#[test]
fn hot_slots_by_share() {
    let f = common::testdata("small-db0.rdb");
    let (code, doc) = lint(&["--target", "cluster", "--max-slot-share", "0.01", f.to_str().unwrap()]);
    assert_eq!(code, 0, "warnings do not block: {doc}");
    assert!(finding(&doc, "hot-slot").unwrap()["count"].as_u64().unwrap() >= 1);
    let (_, doc) = lint(&["--target", "cluster", "--max-slot-share", "1", f.to_str().unwrap()]);
    assert!(finding(&doc, "hot-slot").is_none(), "{doc}");
}

#[test]
fn target_releases_and_modules() {
    let Some(shared) = common::shared_dir() else { return };
    let f = shared.join("fixtures/generated/redis-8.0.6/dump.rdb");
    let f = f.to_str().unwrap();
    let (code, doc) = lint(&["--target", "redis-6.2", f]);
    assert_eq!(code, 1);
    assert!(finding(&doc, "refused-by-target").unwrap()["message"].as_str().unwrap().contains("RDB 12"));
    // Vector sets are a module type before Redis 8.0, built in from 8.0.
    let (code, doc) = lint(&["--target", "redis-7.4", f]);
    assert_eq!(code, 0, "{doc}");
    assert!(finding(&doc, "module-type").unwrap()["message"].as_str().unwrap().contains("vectorset"));
    let (_, doc) = lint(&["--target", "redis-8.0", f]);
    assert!(finding(&doc, "module-type").is_none(), "{doc}");
    // Keys expired at a later "now" are listed (info), not blocking.
    let o = Command::new(env!("CARGO_BIN_EXE_rdbtool"))
        .args(["lint", "--target", "redis-8.0", "--json", "--now", "2100-01-01T00:00:00Z", f])
        .output()
        .unwrap();
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(finding(&doc, "already-expired").unwrap()["count"].as_u64().unwrap() > 0);
}
