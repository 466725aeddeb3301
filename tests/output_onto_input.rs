//! No writing command writes onto or into its input, `--force` or not: the output is refused
//! when it is an input, a hard link or symlink to one, or lies inside a directory given as
//! input (directly or through a symlinked directory), or inside an AOF set. Every input is
//! byte-identical afterwards.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
    out
}

fn refused(args: &[&str], inputs: &Path, what: &str) {
    let before = snapshot(inputs);
    let o = Command::new(env!("CARGO_BIN_EXE_rdbtool")).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{what}: accepted: {err}");
    assert!(err.contains("refusing to"), "{what}: {err}");
    assert_eq!(snapshot(inputs), before, "{what}: an input changed");
}

struct Setup {
    _tmp: tempfile::TempDir,
    /// `in/a.rdb`, a copy of testdata/small-db0.rdb.
    input_dir: PathBuf,
    rdb: PathBuf,
    /// `other/hl.rdb` (hard link to a.rdb), `other/sl.rdb` (symlink to it), `other/d` (symlink
    /// to in/).
    hard: PathBuf,
    soft: PathBuf,
    dir_link: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let input_dir = tmp.path().join("in");
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&input_dir).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let rdb = input_dir.join("a.rdb");
    std::fs::copy(common::testdata("small-db0.rdb"), &rdb).unwrap();
    let hard = other.join("hl.rdb");
    std::fs::hard_link(&rdb, &hard).unwrap();
    let soft = other.join("sl.rdb");
    symlink(&rdb, &soft).unwrap();
    let dir_link = other.join("d");
    symlink(&input_dir, &dir_link).unwrap();
    Setup { _tmp: tmp, input_dir, rdb, hard, soft, dir_link }
}

#[test]
fn rdb_commands_refuse_their_inputs() {
    let t = setup();
    let (rdb, dir) = (s(&t.rdb), s(&t.input_dir));
    let inside = t.input_dir.join("new.rdb");
    let via_link = t.dir_link.join("new.rdb");
    for (name, file_cmd, dir_cmd) in [
        ("export", vec!["export", rdb, "-o"], None),
        ("report", vec!["report", rdb, "-o"], Some(vec!["report", dir, "-o"])),
        ("merge", vec!["merge", rdb, "--force", "-o"], Some(vec!["merge", dir, "--force", "-o"])),
    ] {
        for (how, target) in [("direct", &t.rdb), ("hard link", &t.hard), ("symlink", &t.soft)] {
            let mut a = file_cmd.clone();
            a.push(s(target));
            refused(&a, &t.input_dir, &format!("{name} {how}"));
        }
        if let Some(dir_cmd) = dir_cmd {
            for (how, target) in [("inside the input dir", &inside), ("inside it via a symlinked dir", &via_link)] {
                let mut a = dir_cmd.clone();
                a.push(s(target));
                refused(&a, &t.input_dir, &format!("{name} {how}"));
                assert!(!target.exists(), "{name} {how}");
            }
        }
    }
    // split: its output directory is, or is inside, the input dir (directly or via a link).
    for (how, out) in [
        ("the input dir", t.input_dir.clone()),
        ("inside it", t.input_dir.join("shards")),
        ("via a symlinked dir", t.dir_link.join("shards")),
    ] {
        refused(&["split", dir, "--shards", "2", "--force", "-o", s(&out)], &t.input_dir, &format!("split {how}"));
    }
    // split: an output file that is a hard link or symlink to the input.
    let probe = t._tmp.path().join("probe");
    let o = Command::new(env!("CARGO_BIN_EXE_rdbtool"))
        .args(["split", rdb, "--shards", "2", "-o", s(&probe)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first = std::fs::read_dir(&probe).unwrap().map(|e| e.unwrap().file_name()).min().unwrap();
    for (how, link) in [("hard link", true), ("symlink", false)] {
        let out = t._tmp.path().join(format!("split-{link}"));
        std::fs::create_dir_all(&out).unwrap();
        if link {
            std::fs::hard_link(&t.rdb, out.join(&first)).unwrap();
        } else {
            symlink(&t.rdb, out.join(&first)).unwrap();
        }
        refused(&["split", rdb, "--shards", "2", "--force", "-o", s(&out)], &t.input_dir, &format!("split {how}"));
    }
}

#[test]
fn aof_commands_refuse_their_set() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("appendonlydir");
    std::fs::create_dir(&set).unwrap();
    for e in std::fs::read_dir(common::testdata("aof/preamble/appendonlydir")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, set.join(p.file_name().unwrap())).unwrap();
    }
    let manifest = set.join("appendonly.aof.manifest");
    let base = set.join("appendonly.aof.2.base.rdb");
    let hard = tmp.path().join("hl.rdb");
    std::fs::hard_link(&base, &hard).unwrap();
    let soft = tmp.path().join("sl.rdb");
    symlink(&base, &soft).unwrap();
    let dir_link = tmp.path().join("d");
    symlink(&set, &dir_link).unwrap();
    for input in [&set, &manifest] {
        for (how, target) in [
            ("a file of the set", base.clone()),
            ("a new file in the set's dir", set.join("new.rdb")),
            ("a hard link to a file of the set", hard.clone()),
            ("a symlink to a file of the set", soft.clone()),
            ("a new file via a symlinked dir", dir_link.join("new.rdb")),
        ] {
            let what = format!("aof to-rdb {} -> {how}", input.display());
            refused(&["aof", "to-rdb", s(input), "--force", "-o", s(&target)], &set, &what);
        }
        for (how, target) in
            [("inside the set", set.join("cut")), ("inside it via a symlinked dir", dir_link.join("cut"))]
        {
            let what = format!("aof cut {} -> {how}", input.display());
            refused(&["aof", "cut", s(input), "--before-command", "2", "-o", s(&target)], &set, &what);
            assert!(!target.exists(), "{what}");
        }
    }
}
