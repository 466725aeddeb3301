//! `rdbtool verify` agrees with Redis's own `redis-check-rdb` (Debian's 7.0, so files up to
//! RDB 10) on which files are valid: testdata and Redis's test assets, plus corrupted copies.
//!
//! One known divergence, where our rule is the server's: redis-check-rdb rejects a file with an
//! empty collection, while redis-server loads it and drops that key. `verify` passes such a file
//! with `empty_value` warnings; `empty_keys_load_in_redis_server` shows the server loading one.

mod common;

use std::path::Path;
use std::process::Command;

use rdbtool::verify::{Options, verify_bytes};

/// Some(true) when redis-check-rdb accepts the file, None when it is not installed.
fn redis_check_rdb(path: &Path) -> Option<bool> {
    let out = Command::new("redis-check-rdb").arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some(text.contains("RDB looks OK"))
}

fn ours(path: &Path) -> bool {
    let data = std::fs::read(path).unwrap();
    verify_bytes("x", &data, &Options::default()).ok
}

/// Files that redis-check-rdb rejects only for their empty keys (which redis-server drops).
fn only_empty_keys(path: &Path) -> bool {
    let data = std::fs::read(path).unwrap();
    let r = verify_bytes("x", &data, &Options::default());
    r.ok && r.warning_counts.get("empty_value").is_some_and(|&n| n > 0)
}

#[test]
fn agrees_with_redis_check_rdb() {
    let mut files: Vec<std::path::PathBuf> =
        ["all-types.rdb", "small-db0.rdb", "empty.rdb", "no-checksum.rdb", "uncompressed.rdb"]
            .iter()
            .map(|f| common::testdata(f))
            .collect();
    if let Some(shared) = common::shared_dir() {
        for e in std::fs::read_dir(shared.join("fixtures/redis")).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    // Corrupted copies: a truncation, and a flipped byte inside the data.
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(common::testdata("all-types.rdb")).unwrap();
    let cut = dir.path().join("cut.rdb");
    std::fs::write(&cut, &data[..data.len() - 100]).unwrap();
    files.push(cut);
    let mut flipped = data.clone();
    flipped[data.len() / 2] ^= 0x55;
    let flip = dir.path().join("flip.rdb");
    std::fs::write(&flip, &flipped).unwrap();
    files.push(flip);

    let mut compared = 0;
    let mut diverged = 0;
    for f in &files {
        let Some(theirs) = redis_check_rdb(f) else {
            common::skip("redis-check-rdb not installed");
            assert!(std::env::var_os("RDBTOOL_REQUIRE_REDIS").is_none(), "redis-check-rdb required");
            return;
        };
        if only_empty_keys(f) {
            // The known divergence (see the top of this file).
            assert!(!theirs, "{}: redis-check-rdb now accepts empty keys", f.display());
            diverged += 1;
            continue;
        }
        assert_eq!(ours(f), theirs, "{}: rdbtool and redis-check-rdb disagree", f.display());
        compared += 1;
    }
    assert!(compared >= 7);
    if common::shared_dir().is_some() {
        assert!(diverged >= 1, "corrupt_empty_keys.rdb no longer exercises the divergence");
    }
}

/// The file redis-check-rdb rejects for its empty keys loads in redis-server, which drops them:
/// its log counts them and DBSIZE is what verify counts minus the empty keys.
#[test]
fn empty_keys_load_in_redis_server() {
    let Some(shared) = common::shared_dir() else { return };
    let f = shared.join("fixtures/redis/corrupt_empty_keys.rdb");
    let data = std::fs::read(&f).unwrap();
    let r = verify_bytes("x", &data, &Options::default());
    assert!(r.ok, "{:?}", r.errors);
    let empty = r.warning_counts["empty_value"];
    if let Some(theirs) = redis_check_rdb(&f) {
        assert!(!theirs, "redis-check-rdb accepts the file now");
    }
    let Some(server) = common::RedisServer::start_with_rdb(&f, &[]) else { return };
    assert_eq!(server.cmd(&[b"DBSIZE"]).as_int(), Some((r.keys - empty) as i64));
    let log = std::fs::read_to_string(server.path().join("redis.log")).unwrap();
    assert!(log.contains(&format!("empty keys skipped: {empty}")), "{log}");
}
