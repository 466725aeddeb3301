//! `rdbtool verify` agrees with Redis's own `redis-check-rdb` (Debian's 7.0, so files up to
//! RDB 10) on which files are valid: testdata and Redis's test assets, plus corrupted copies.

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
    for f in &files {
        let Some(theirs) = redis_check_rdb(f) else {
            common::skip("redis-check-rdb not installed");
            assert!(std::env::var_os("RDBTOOL_REQUIRE_REDIS").is_none(), "redis-check-rdb required");
            return;
        };
        assert_eq!(ours(f), theirs, "{}: rdbtool and redis-check-rdb disagree", f.display());
        compared += 1;
    }
    assert!(compared >= 7);
}
