//! The JSON export of a file read in parts on several threads (`export::export_in_parts`, what
//! `rdbtool export` does on files of 8 MiB and more) is byte for byte the export of one reading,
//! and fails with the same error, however the file is cut: every fixture, every JSON option,
//! and damaged copies.

mod common;

use std::path::PathBuf;

use rdbtool::export::{self, ExportError, OutputFormat};
use rdbtool::filter::{Expired, Filter};

/// RDB files and RDB-preamble AOF files among the shared fixtures.
fn fixtures() -> Vec<PathBuf> {
    let Some(shared) = common::shared_dir() else {
        common::skip("no ../shared fixtures");
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut dirs = vec![shared.join("fixtures")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.starts_with(b"REDIS") || b.starts_with(b"VALKEY")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn options() -> Vec<(&'static str, export::Options)> {
    let base = |format, with_meta, filter| export::Options { format, with_meta, resp: Default::default(), filter };
    // Far in the future and far in the past, so that the verdicts do not depend on today.
    let late = Filter { expired: Expired::Exclude, now_ms: 4_102_444_800_000, ..Filter::default() };
    let early = Filter { expired: Expired::Exclude, now_ms: 0, ..Filter::default() };
    vec![
        ("jsonl", base(OutputFormat::Jsonl, false, Filter::default())),
        ("json", base(OutputFormat::Json, false, Filter::default())),
        ("jsonl --with-meta", base(OutputFormat::Jsonl, true, Filter::default())),
        ("json --expired exclude (2100)", base(OutputFormat::Json, false, late)),
        ("jsonl --expired exclude (1970)", base(OutputFormat::Jsonl, false, early)),
        ("json --db 1", base(OutputFormat::Json, false, Filter { dbs: vec![1], ..Filter::default() })),
    ]
}

/// Output, or the error's text.
fn one_reading(data: &[u8], opts: &export::Options) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match export::export(data, opts, &mut out, &mut |_| {}) {
        Ok(_) => Ok(out),
        Err(e) => Err(kind(&e)),
    }
}

fn in_parts(data: &[u8], opts: &export::Options, part: usize, threads: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match export::export_in_parts(data, opts, &mut out, part, threads) {
        Ok(_) => Ok(out),
        Err(e) => Err(kind(&e)),
    }
}

fn kind(e: &ExportError) -> String {
    match e {
        ExportError::Input(_) => format!("input: {e}"),
        ExportError::Refused(_) => format!("refused: {e}"),
        ExportError::Write(_) => format!("write: {e}"),
    }
}

#[test]
fn parts_give_the_output_of_one_reading_for_every_fixture() {
    let files = fixtures();
    if files.is_empty() {
        return;
    }
    let mut compared = 0;
    for f in &files {
        let data = std::fs::read(f).unwrap();
        for (name, opts) in options() {
            let whole = one_reading(&data, &opts);
            // Parts far smaller than the real ones, so that most keys sit near a cut.
            for (part, threads) in [(1000, 2), (4096, 3), (65536, 2)] {
                let parts = in_parts(&data, &opts, part, threads);
                assert!(
                    parts == whole,
                    "{} {name}, parts of {part} bytes on {threads} threads: {} vs one reading: {}",
                    f.display(),
                    summary(&parts),
                    summary(&whole)
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 3 * 6 * 10, "only {compared} comparisons");
}

fn summary(r: &Result<Vec<u8>, String>) -> String {
    match r {
        Ok(b) => format!("{} bytes", b.len()),
        Err(e) => e.clone(),
    }
}

#[test]
fn parts_fail_like_one_reading_on_damaged_files() {
    let files = fixtures();
    // The biggest fixtures hold the most records per part.
    let mut sized: Vec<(u64, &PathBuf)> = files.iter().map(|f| (std::fs::metadata(f).unwrap().len(), f)).collect();
    sized.sort();
    let Some(&(_, f)) = sized.iter().rev().find(|(len, _)| *len < (4 << 20)) else { return };
    let data = std::fs::read(f).unwrap();
    let opts = &options()[0].1;
    let mut failures = 0;
    // Deterministic positions all over the file: flipped bytes, then cuts.
    let mut rng = rdbtool::rng::Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..60 {
        let x = rng.next_u64();
        let at = 9 + (x as usize) % (data.len() - 9);
        let mut bad = data.clone();
        if round % 3 == 2 {
            bad.truncate(at);
        } else {
            bad[at] ^= 1 << ((x >> 60) % 8);
        }
        let whole = one_reading(&bad, opts);
        failures += usize::from(whole.is_err());
        let parts = in_parts(&bad, opts, 4096, 2);
        assert!(
            parts == whole,
            "{} damaged at {at} (round {round}): parts {} vs one reading {}",
            f.display(),
            summary(&parts),
            summary(&whole)
        );
    }
    assert!(failures >= 10, "only {failures} of the damaged copies failed");
}
