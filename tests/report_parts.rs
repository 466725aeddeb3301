//! `report`'s aggregates of a file read in parts on several threads (what `report`, `--json`
//! and `--format html` use) equal those of one reading (the one-reader pipeline that per-key
//! rows use): every figure, the top lists with their ties, the prefix table under its cap and
//! past it, on valid files and damaged ones, however the file is cut.

mod common;

use std::path::PathBuf;

use rdbtool::filter::Filter;
use rdbtool::report::{Aggregate, Options, scan_file, scan_in_parts};

fn opts(top: usize, depth: usize, max_prefixes: usize) -> Options {
    Options {
        top,
        separators: b":_".to_vec(),
        depth,
        max_prefixes,
        // A fixed "now": the TTL histogram does not depend on the day.
        now_ms: 1_795_241_896_000,
        filter: Filter::default(),
        largest_element: false,
    }
}

/// Everything `report --json` shows of an aggregate (the prefix table as all it holds).
fn view(a: &Aggregate) -> String {
    let mut s = format!(
        "total {:?}\ndbs {:?}\ntypes {:?}\nencodings {:?}\nttl {:?}\nfiles {:?}\n",
        a.total, a.dbs, a.types, a.encodings, a.ttl, a.files
    );
    s += &format!("top_memory {:#?}\ntop_elements {:#?}\n", a.top_memory.sorted(), a.top_elements.sorted());
    s += &format!(
        "prefixes held {} dropped {} bound {} {}\n{:#?}\n",
        a.prefixes.len(),
        a.prefixes.dropped,
        a.prefixes.error_bound_memory,
        a.prefixes.error_bound_keys,
        a.prefixes.heaviest(usize::MAX)
    );
    let slots: Vec<_> = a.slots.iter().enumerate().filter(|(_, s)| s.0 > 0).collect();
    s += &format!("slots {slots:?}\n");
    s
}

fn one_reading(name: &str, data: &[u8], o: &Options) -> Aggregate {
    scan_file(name, data, o, &rdbtool::pass::Pages::unmapped(data.len()), &mut |_| Ok(())).unwrap()
}

fn files() -> Vec<PathBuf> {
    common::parts_fixture_files()
}

/// The options a file is checked with: a short top list (ties), the prefix cap far away, just
/// reached (parts' own tables overflow, the file's does not) and passed (prefixes dropped).
fn option_sets(name: &str, data: &[u8]) -> Vec<Options> {
    let held = one_reading(name, data, &opts(3, 3, 1 << 20)).prefixes.len();
    let mut v = vec![opts(3, 3, 1 << 20), opts(10, 0, 1 << 20), opts(1, 2, held.max(1))];
    if held > 2 {
        v.push(opts(3, 3, held / 2));
    }
    v
}

fn same(name: &str, data: &[u8], sets: &[Options]) {
    for o in sets {
        let want = view(&one_reading(name, data, o));
        for part in [61, 500, 4096] {
            let got = view(&scan_in_parts(name, data, o, part));
            assert_eq!(
                got, want,
                "{name}: parts of {part} bytes, top {} depth {} cap {}",
                o.top, o.depth, o.max_prefixes
            );
        }
    }
}

#[test]
fn parts_agree_with_one_reading_on_valid_files() {
    let files = files();
    assert!(files.len() >= 4);
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let name = f.display().to_string();
        same(&name, &data, &option_sets(&name, &data));
    }
}

#[test]
fn parts_agree_with_one_reading_on_damaged_files() {
    for f in files() {
        let data = std::fs::read(&f).unwrap();
        let name = f.display().to_string();
        let sets = &option_sets(&name, &data)[..1];
        let step = (data.len() / 15).max(1);
        let mut m = data.clone();
        for pos in (9..data.len()).step_by(step) {
            m[pos] ^= 0x80;
            same(&format!("{name} ^0x80@{pos}"), &m, sets);
            m[pos] ^= 0x80;
            same(&format!("{name} cut at {pos}"), &data[..pos], sets);
        }
    }
}

/// Keys in several dbs, selected in the middle of parts: the join gives each part's first keys
/// the db it knows, and a top list ranks equal keys the way one reading does.
#[test]
fn dbs_and_ties_across_parts() {
    let mut keys: Vec<(u64, Vec<u8>, Vec<u8>)> = Vec::new();
    for db in [0u64, 3, 3, 15, 0, 7] {
        for i in 0..400u32 {
            keys.push((db, format!("p{}:{}:k{i}", i % 7, db).into_bytes(), vec![b'v'; (i % 5) as usize * 10 + 1]));
        }
    }
    let refs: Vec<(u64, &[u8], &[u8])> = keys.iter().map(|(d, k, v)| (*d, k.as_slice(), v.as_slice())).collect();
    let data = common::rdb_of_strings(&refs);
    let o = opts(5, 3, 1 << 20);
    let want = one_reading("dbs", &data, &o);
    assert_eq!(want.dbs.len(), 4, "{:?}", want.dbs);
    assert_eq!(want.total.keys, 2400);
    let want = view(&want);
    for part in [1, 97, 1000, 5000] {
        assert_eq!(view(&scan_in_parts("dbs", &data, &o, part)), want, "parts of {part} bytes");
    }
}

/// A file that switches db at every key (a crafted one: 100 000 dbs, each met twice): a part's
/// sums spill the dbs it switched away from, a part that spills too many is read again by the
/// join, which adds its sums as it goes; the figures stay those of one reading.
#[test]
fn a_db_per_key_keeps_the_figures_of_one_reading() {
    let keys: Vec<(u64, Vec<u8>, Vec<u8>)> = (0..200_000u64)
        .map(|i| ((i * 7919) % 100_000, format!("k:{i}").into_bytes(), vec![b'v'; (i % 3) as usize + 1]))
        .collect();
    let refs: Vec<(u64, &[u8], &[u8])> = keys.iter().map(|(d, k, v)| (*d, k.as_slice(), v.as_slice())).collect();
    let data = common::rdb_of_strings(&refs);
    let o = opts(5, 2, 1 << 20);
    let want = one_reading("dbs", &data, &o);
    assert_eq!(want.dbs.len(), 100_000);
    assert!(want.dbs.values().all(|b| b.keys == 2));
    assert_eq!(want.total.keys, 200_000);
    let want = view(&want);
    for part in [data.len(), 1 << 20, 100_000] {
        assert_eq!(view(&scan_in_parts("dbs", &data, &o, part)), want, "parts of {part} bytes");
    }
}
