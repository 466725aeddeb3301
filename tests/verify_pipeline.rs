//! `rdbtool verify` in pipelines: unreadable paths as results, the JSON summary, the exit-code
//! rule (invalid beats unreadable), `--max-errors` exactness, zeroed blocks named, compressed
//! backups and standard input (`-`) with the same verdict and JSON as the plain file.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

/// A fixed "now" so that reports of one file compare equal across runs.
const NOW: &str = "1700000000";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rdbtool")
}

use common::{rdbtool, rdbtool_stdin};

fn json(o: &Output) -> Json {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn td(name: &str) -> PathBuf {
    common::testdata(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A temp dir others can enter (for the unprivileged run).
fn open_tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    set_mode(d.path(), 0o755);
    d
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn entry<'a>(doc: &'a Json, file: &str) -> &'a Json {
    doc["files"].as_array().unwrap().iter().find(|f| f["file"] == file).unwrap_or_else(|| panic!("no {file} in {doc}"))
}

/// all-types.rdb with a byte flipped inside a value (a checksum mismatch: invalid).
fn flipped(dir: &Path) -> PathBuf {
    let mut data = std::fs::read(td("all-types.rdb")).unwrap();
    data[5000] ^= 0xff;
    let p = dir.join("bad.rdb");
    std::fs::write(&p, data).unwrap();
    p
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success());
}

#[test]
fn unreadable_paths_are_results_and_the_walk_goes_on() {
    // As root, permissions do not deny reads: the unreadable paths here are a dangling symlink
    // and a FIFO named *.rdb (opening it would wait for a writer forever).
    let d = open_tempdir();
    let root = d.path();
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::create_dir_all(root.join("c")).unwrap();
    std::fs::copy(td("all-types.rdb"), root.join("a/dump.rdb")).unwrap();
    std::os::unix::fs::symlink(root.join("gone"), root.join("c/latest")).unwrap();
    mkfifo(&root.join("c/pipe.rdb"));
    std::fs::copy(td("small-db0.rdb"), root.join("c/small.rdb")).unwrap();

    let o = rdbtool(&["verify", s(root)]);
    assert_eq!(o.status.code(), Some(2), "unreadable, nothing invalid: {}", text(&o));
    let t = text(&o);
    assert!(t.contains(&format!("OK    {}", s(&root.join("a/dump.rdb")))), "{t}");
    assert!(t.contains(&format!("OK    {}", s(&root.join("c/small.rdb")))), "{t}");
    assert!(t.contains(&format!("ERROR {}: cannot follow symlink", s(&root.join("c/latest")))), "{t}");
    assert!(t.contains(&format!("ERROR {}: not a regular file", s(&root.join("c/pipe.rdb")))), "{t}");

    // An invalid file makes it 1, whatever else could not be read.
    let bad = flipped(&root.join("a"));
    let o = rdbtool(&["verify", "--json", "--now", NOW, s(root), "/nonexistent/x.rdb"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let doc = json(&o);
    for f in doc["files"].as_array().unwrap() {
        assert!(f["file"].is_string() && f["ok"].is_boolean(), "{f}");
    }
    let names: Vec<&str> = doc["files"].as_array().unwrap().iter().map(|f| f["file"].as_str().unwrap()).collect();
    let want: Vec<String> = ["a/bad.rdb", "a/dump.rdb", "c/latest", "c/pipe.rdb", "c/small.rdb"]
        .iter()
        .map(|n| s(&root.join(n)).to_owned())
        .chain(["/nonexistent/x.rdb".to_owned()])
        .collect();
    assert_eq!(names, want, "in argument and walk order");
    assert!(entry(&doc, "/nonexistent/x.rdb")["unreadable"].as_str().unwrap().contains("No such file"));
    assert_eq!(entry(&doc, s(&bad))["ok"], false);
    let sum = &doc["summary"];
    assert_eq!(
        (sum["files"].as_u64(), sum["ok"].as_u64(), sum["failed"].as_u64(), sum["unreadable"].as_u64()),
        (Some(6), Some(2), Some(1), Some(3)),
        "{sum}"
    );
    // keys and bytes of the files that were read (the damaged one included).
    assert_eq!(sum["keys"].as_u64(), Some(268 + 268 + 15), "{sum}");
    let bytes = [td("all-types.rdb"), td("all-types.rdb"), td("small-db0.rdb")]
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum::<u64>();
    assert_eq!(sum["bytes"].as_u64(), Some(bytes));
    assert!(sum["seconds"].as_f64().is_some_and(|x| x >= 0.0), "{sum}");
    assert_eq!(doc["ok"], false);
}

#[test]
fn permission_denied_subdirectory_without_privileges() {
    // The real case: a subdirectory this user may not read. Tests run as root, where chmod 000
    // denies nothing, so rdbtool runs as `nobody` through setpriv(1) when we are root.
    let d = open_tempdir();
    let root = d.path();
    for sub in ["a", "b"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
        std::fs::copy(td("small-db0.rdb"), root.join(sub).join("dump.rdb")).unwrap();
        set_mode(&root.join(sub).join("dump.rdb"), 0o644);
        set_mode(&root.join(sub), 0o755);
    }
    set_mode(&root.join("b"), 0o000);
    let root_user = unsafe_geteuid() == 0;
    let mut cmd = if root_user {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
        c
    } else {
        Command::new(bin())
    };
    let o = cmd.args(["verify", "--json", s(root)]).output();
    set_mode(&root.join("b"), 0o755);
    let o = match o {
        Ok(o) if !(root_user && o.stdout.is_empty()) => o,
        other => {
            common::skip(&format!("cannot run rdbtool unprivileged: {other:?}"));
            return;
        }
    };
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let doc = json(&o);
    let b = entry(&doc, s(&root.join("b")));
    assert!(b["unreadable"].as_str().unwrap().contains("Permission denied"), "{b}");
    assert_eq!(entry(&doc, s(&root.join("a/dump.rdb")))["ok"], true);
    assert_eq!(doc["summary"]["unreadable"], 1);
    assert_eq!(doc["summary"]["ok"], 1);
}

fn unsafe_geteuid() -> u32 {
    // No libc dependency: the effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            st.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn no_files_found_is_a_json_document() {
    let d = open_tempdir();
    let o = rdbtool(&["verify", "--json", s(d.path())]);
    assert_eq!(o.status.code(), Some(2));
    let doc = json(&o);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["files"], serde_json::json!([]));
    assert_eq!(doc["summary"]["files"], 0);
    assert!(doc["error"].as_str().unwrap().contains("no RDB"));
    let o = rdbtool(&["verify", s(d.path())]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
}

/// all-types.rdb with `len` zero bytes written at `at`.
fn with_hole(dir: &Path, at: usize, len: usize) -> PathBuf {
    let mut data = std::fs::read(td("all-types.rdb")).unwrap();
    data[at..at + len].fill(0);
    let p = dir.join(format!("hole-{at}.rdb"));
    std::fs::write(&p, data).unwrap();
    p
}

/// The maximal run of zeros around `at` (the hole's neighbours may be zero bytes too).
fn zero_run_around(p: &Path, at: usize) -> (usize, usize) {
    let data = std::fs::read(p).unwrap();
    let mut s = at;
    while s > 0 && data[s - 1] == 0 {
        s -= 1;
    }
    let mut e = at;
    while e < data.len() && data[e] == 0 {
        e += 1;
    }
    (s, e)
}

#[test]
fn max_errors_lists_exactly_n_first_in_file_order() {
    let d = tempfile::tempdir().unwrap();
    // Damage that gives many errors in salvage mode, a checksum mismatch among them.
    let f = with_hole(d.path(), 61440, 4096);
    let all = json(&rdbtool(&["verify", "--json", "--keep-going", "--now", NOW, s(&f)]));
    let all_errors = all["files"][0]["errors"].as_array().unwrap().clone();
    let total = all_errors.len() as u64 + all["files"][0]["errors_not_listed"].as_u64().unwrap();
    assert!(total >= 5, "{all}");
    let offsets: Vec<u64> = all_errors.iter().map(|e| e["offset"].as_u64().unwrap()).collect();
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "file order: {offsets:?}");
    assert_eq!(all_errors.last().unwrap()["kind"], "checksum");
    for n in 0..total + 2 {
        let o = rdbtool(&["verify", "--json", "--keep-going", "--max-errors", &n.to_string(), "--now", NOW, s(&f)]);
        assert_eq!(o.status.code(), Some(1));
        let r = &json(&o)["files"][0];
        let listed = r["errors"].as_array().unwrap();
        assert_eq!(listed.len() as u64, n.min(total), "--max-errors {n}");
        assert_eq!(listed[..], all_errors[..listed.len()], "--max-errors {n}: the first in file order");
        assert_eq!(r["errors_not_listed"].as_u64().unwrap(), total - listed.len() as u64);
        let t = text(&rdbtool(&["verify", "--keep-going", "--max-errors", &n.to_string(), s(&f)]));
        assert_eq!(t.lines().filter(|l| l.starts_with("      at ")).count() as u64, n.min(total), "{t}");
    }
    // Without --keep-going: one error listed, the first.
    let r = json(&rdbtool(&["verify", "--json", "--now", NOW, s(&f)]));
    assert_eq!(r["files"][0]["errors"].as_array().unwrap().len(), 1);
}

#[test]
fn zeroed_block_is_named_not_empty_keys() {
    let d = tempfile::tempdir().unwrap();
    let size = std::fs::metadata(td("all-types.rdb")).unwrap().len() as usize;
    let mut named = 0;
    // Every 4 KiB-aligned hole that the parse trips over (a hole inside a plain string value only
    // changes the checksum: tested below), with and without --keep-going.
    for at in (4096..size - 8192).step_by(4096) {
        let f = with_hole(d.path(), at, 4096);
        let (zs, ze) = zero_run_around(&f, at);
        for keep_going in [false, true] {
            let mut args = vec!["verify", "--json", "--now", NOW];
            if keep_going {
                args.push("--keep-going");
            }
            args.push(s(&f));
            let o = rdbtool(&args);
            assert_eq!(o.status.code(), Some(1));
            let r = &json(&o)["files"][0];
            let errors = r["errors"].as_array().unwrap();
            let first = errors[0]["message"].as_str().unwrap();
            let empty_dups = errors.iter().filter(|e| e["kind"] == "duplicate_key" && e["key"] == "").filter(|e| {
                let o = e["offset"].as_u64().unwrap() as usize;
                o > zs && o < ze
            });
            assert_eq!(empty_dups.count(), 0, "hole at {at}: {errors:?}");
            if errors[0]["kind"] == "checksum" {
                assert!(
                    first.contains(&format!("likely damage: {} zero bytes from offset {zs}", ze - zs)),
                    "hole at {at}: {first}"
                );
                continue;
            }
            named += 1;
            assert_eq!(errors[0]["offset"].as_u64(), Some(zs as u64), "hole at {at}: {first}");
            assert!(
                first.starts_with(&format!("{} zero bytes from offset {zs} (up to {ze})", ze - zs)),
                "hole at {at}: {first}"
            );
        }
    }
    assert!(named >= 10, "{named}");
    // The text verdict names it too; the key count leaves out the 1,365 records read from zeros.
    let f = with_hole(d.path(), 61440, 4096);
    let (zs, ze) = zero_run_around(&f, 61440);
    let t = text(&rdbtool(&["verify", s(&f)]));
    assert!(t.contains(&format!("{} zero bytes from offset {zs}", ze - zs)), "{t}");
    let r = json(&rdbtool(&["verify", "--json", "--keep-going", s(&f)]));
    assert!(r["files"][0]["keys"].as_u64().unwrap() < 268, "{}", r["files"][0]["keys"]);
    // A clean file with the same content has no such error (zeros named only at a failure).
    let o = rdbtool(&["verify", "--json", s(&td("uncompressed.rdb"))]);
    assert_eq!(o.status.code(), Some(0));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn lz4(data: &[u8]) -> Vec<u8> {
    let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The report of one file, its name taken out.
fn report_without_name(o: &Output) -> Json {
    let mut doc = json(o);
    let mut r = doc["files"][0].take();
    r.as_object_mut().unwrap().remove("file");
    r
}

const FIXTURES: [&str; 5] = ["all-types.rdb", "empty.rdb", "no-checksum.rdb", "small-db0.rdb", "uncompressed.rdb"];

#[test]
fn compressed_backups_verify_like_the_file() {
    let d = tempfile::tempdir().unwrap();
    let mut bad = std::fs::read(td("all-types.rdb")).unwrap();
    bad[5000] ^= 0xff;
    let bad_path = d.path().join("bad.rdb");
    std::fs::write(&bad_path, &bad).unwrap();
    let mut sources: Vec<PathBuf> = FIXTURES.iter().map(|n| td(n)).collect();
    sources.push(bad_path);
    for src in &sources {
        let plain = std::fs::read(src).unwrap();
        let want_o = rdbtool(&["verify", "--json", "--keep-going", "--now", NOW, s(src)]);
        let want = report_without_name(&want_o);
        let stem = src.file_name().unwrap().to_str().unwrap();
        for (ext, packed) in
            [("gz", gzip(&plain)), ("zst", zstd::encode_all(&plain[..], 3).unwrap()), ("lz4", lz4(&plain))]
        {
            let p = d.path().join(format!("{stem}.{ext}"));
            std::fs::write(&p, &packed).unwrap();
            let o = rdbtool(&["verify", "--json", "--keep-going", "--now", NOW, s(&p)]);
            assert_eq!(o.status.code(), want_o.status.code(), "{}", s(&p));
            assert_eq!(json(&o)["files"][0]["file"], s(&p));
            assert_eq!(report_without_name(&o), want, "{}", s(&p));
        }
    }
    // Found by a directory walk, beside the plain files.
    let o = rdbtool(&["verify", "--json", s(d.path())]);
    assert_eq!(json(&o)["summary"]["files"], 4 * sources.len() - FIXTURES.len());
    // A compressed stream cut in half: invalid (not unreadable), the stream error first.
    let packed = gzip(&std::fs::read(td("all-types.rdb")).unwrap());
    let cut = d.path().join("cut.rdb.gz");
    std::fs::write(&cut, &packed[..packed.len() / 2]).unwrap();
    let o = rdbtool(&["verify", "--json", s(&cut)]);
    assert_eq!(o.status.code(), Some(1));
    let e = &json(&o)["files"][0]["errors"][0];
    assert_eq!(e["kind"], "truncated", "{e}");
    assert!(e["message"].as_str().unwrap().starts_with("gzip stream"), "{e}");
    // Bytes that are no gzip at all under a .gz name.
    let junk = d.path().join("junk.rdb.gz");
    std::fs::write(&junk, b"REDIS0010 not gzip").unwrap();
    let o = rdbtool(&["verify", "--json", s(&junk)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn stdin_verifies_like_the_file() {
    for name in FIXTURES {
        let src = td(name);
        let data = std::fs::read(&src).unwrap();
        let want_o = rdbtool(&["verify", "--json", "--now", NOW, s(&src)]);
        let want = report_without_name(&want_o);
        for input in [data.clone(), gzip(&data), zstd::encode_all(&data[..], 1).unwrap()] {
            let o = rdbtool_stdin(&["verify", "--json", "--now", NOW, "-"], input);
            assert_eq!(o.status.code(), want_o.status.code(), "{name}");
            assert_eq!(json(&o)["files"][0]["file"], "-");
            assert_eq!(report_without_name(&o), want, "{name}");
        }
        let o = rdbtool_stdin(&["verify", "-"], data.clone());
        assert!(text(&o).starts_with("OK    -  ("), "{}", text(&o));
        // info and export read the stream too, with the output they give for the file.
        let info_file = rdbtool(&["info", "--json", "--now", NOW, s(&src)]);
        let info_pipe = rdbtool_stdin(&["info", "--json", "--now", NOW, "-"], data.clone());
        let mut a = json(&info_file);
        let mut b = json(&info_pipe);
        a.as_object_mut().unwrap().remove("file");
        b.as_object_mut().unwrap().remove("file");
        assert_eq!(a, b, "info {name}");
        let export_file = rdbtool(&["export", s(&src)]);
        let export_pipe = rdbtool_stdin(&["export", "-"], gzip(&data));
        assert_eq!(export_file.status.code(), Some(0));
        assert_eq!(export_pipe.stdout, export_file.stdout, "export {name}");
    }
    // Not an RDB on a pipe: invalid.
    let o = rdbtool_stdin(&["verify", "-"], b"hello, world\n".repeat(1000));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Nothing at all on a pipe: the verdict of an empty file.
    let o = rdbtool_stdin(&["verify", "-"], Vec::new());
    assert_eq!(o.status.code(), Some(1));
    // A flipped byte arrives as it would from the file.
    let mut bad = std::fs::read(td("all-types.rdb")).unwrap();
    bad[5000] ^= 0xff;
    let o = rdbtool_stdin(&["verify", "--json", "-"], bad);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json(&o)["files"][0]["checksum"]["status"], "mismatch");
}

#[test]
fn stdin_spool_leaves_no_file_behind() {
    let d = tempfile::tempdir().unwrap();
    let data = std::fs::read(td("all-types.rdb")).unwrap();
    let o = rdbtool_stdin(&["verify", "--temp-dir", s(d.path()), "-"], data);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    // A temp dir that does not exist: could not run, said so.
    let o = rdbtool_stdin(&["verify", "--temp-dir", "/nonexistent/tmp", "-"], b"REDIS".to_vec());
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("temp file in /nonexistent/tmp"), "{}", text(&o));
}
