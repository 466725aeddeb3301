//! A file read in parts on several threads (`verify` of a big file) gives the verdict of one
//! reading from start to end: the same errors (first one included, with its offset, db and
//! key), warnings, counts and checksum, on valid files and on damaged ones, however the file is
//! cut (including cuts that are not record boundaries, which the join must catch).

mod common;

use std::path::PathBuf;

use rdbtool::verify::{Options, Report, verify_bytes, verify_bytes_in_parts};

fn opts(keep_going: bool) -> Options {
    Options { keep_going, max_errors: 20, now_ms: 0, target: None }
}

/// What must agree: everything in the report.
fn view(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

fn files() -> Vec<PathBuf> {
    common::parts_fixture_files()
}

fn same(name: &str, data: &[u8]) -> bool {
    let mut ok = None;
    for keep_going in [false, true] {
        let o = opts(keep_going);
        let whole = verify_bytes(name, data, &o);
        let want = view(&whole);
        for part in [61, 500, 4096] {
            let got = view(&verify_bytes_in_parts(name, data, &o, part));
            assert_eq!(got, want, "{name}: parts of {part} bytes, keep_going {keep_going}");
        }
        ok = Some(whole.ok);
    }
    ok.unwrap_or(false)
}

#[test]
fn parts_agree_with_one_reading_on_valid_files() {
    let files = files();
    assert!(files.len() >= 4);
    for f in &files {
        let data = std::fs::read(f).unwrap();
        same(&f.display().to_string(), &data);
    }
}

#[test]
fn parts_agree_with_one_reading_on_damaged_files() {
    let mut bad = 0;
    for f in files().iter().take(6) {
        let data = std::fs::read(f).unwrap();
        let step = (data.len() / 40).max(1);
        let mut m = data.clone();
        for pos in (9..data.len()).step_by(step) {
            for x in [0x01u8, 0x80, 0xFF] {
                m[pos] ^= x;
                bad += usize::from(!same(&format!("{} ^{x:#04x}@{pos}", f.display()), &m));
                m[pos] ^= x;
            }
            bad += usize::from(!same(&format!("{} cut at {pos}", f.display()), &data[..pos]));
        }
    }
    // The cases must include failures to compare (else this proves nothing).
    assert!(bad > 100, "{bad} damaged cases");
}

#[test]
fn parts_agree_on_repeated_keys_across_parts() {
    // The same keys in db 0 twice, far apart, and once in db 1: parts must find the repeat
    // with its first occurrence, and must not take db 1's copy for one.
    let keys: Vec<(u64, Vec<u8>, Vec<u8>)> = (0..400u64)
        .map(|i| (if i < 300 { 0 } else { 1 }, format!("key:{}", i % 150).into_bytes(), vec![b'v'; 40]))
        .collect();
    let refs: Vec<(u64, &[u8], &[u8])> = keys.iter().map(|(d, k, v)| (*d, k.as_slice(), v.as_slice())).collect();
    let data = common::rdb_of_strings(&refs);
    assert!(!same("repeats", &data));
    let r = verify_bytes_in_parts("repeats", &data, &opts(false), 300);
    assert_eq!(r.errors.len(), 1);
    assert!(r.errors[0].message.contains("already present"), "{:?}", r.errors[0]);
}

/// `info` of a file read in parts: the same figures (largest keys included) as one reading.
fn same_info(name: &str, data: &[u8]) {
    let view = |r: Result<rdbtool::info::Info, rdbtool::Error>| match r {
        Ok(i) => serde_json::to_string_pretty(&i).unwrap(),
        Err(e) => format!("error {e}"),
    };
    let want = view(rdbtool::info::gather(name, data, 0));
    for part in [61, 500, 4096] {
        let got = view(rdbtool::info::gather_in_parts(name, data, 0, part));
        assert_eq!(got, want, "{name}: info in parts of {part} bytes");
    }
}

#[test]
fn info_in_parts_agrees_with_one_reading() {
    for f in files() {
        let data = std::fs::read(&f).unwrap();
        same_info(&f.display().to_string(), &data);
        let step = (data.len() / 25).max(1);
        let mut m = data.clone();
        for pos in (9..data.len()).step_by(step) {
            m[pos] ^= 0x80;
            same_info(&format!("{} ^0x80@{pos}", f.display()), &m);
            m[pos] ^= 0x80;
            same_info(&format!("{} cut at {pos}", f.display()), &data[..pos]);
        }
    }
}
