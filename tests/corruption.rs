//! Bad input is the normal case: every truncation point and single-byte change of the small
//! fixtures (sampled positions for the larger ones) must give an error or a valid parse, never a
//! panic or a hang; and since those files carry a CRC-64, every change must be caught.

mod common;

use std::path::Path;

use rdbtool::rdb::{Reader, Record, Walker};
use rdbtool::verify::{Options, verify_bytes};

fn opts() -> Options {
    Options { keep_going: true, max_errors: 5, now_ms: 0, target: None }
}

/// Everything a consumer might do with the bytes: verify, then decode every value it can reach.
fn exercise(data: &[u8]) -> bool {
    let report = verify_bytes("mutant", data, &opts());
    if let Ok(reader) = Reader::new(data) {
        let mut w = Walker::new();
        for rec in reader {
            match rec {
                Ok(Record::Key(k)) => {
                    let decoded = k.value.decode(&mut w);
                    let validated = k.value.validate(&mut w);
                    assert_eq!(decoded.is_ok(), validated.is_ok(), "decode and validate disagree at {}", k.offset);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    report.ok
}

fn mutate_file(path: &Path, step: usize) -> (usize, usize) {
    let data = std::fs::read(path).unwrap();
    assert!(exercise(&data), "{} should be valid", path.display());
    let has_crc = {
        let r = verify_bytes("orig", &data, &opts());
        r.checksum.status == rdbtool::verify::ChecksumStatus::Ok
    };
    let mut cases = 0;
    for cut in (0..data.len()).step_by(step) {
        // Everything up to the last byte of the checksum is needed.
        assert!(!exercise(&data[..cut]), "{}: truncated at {cut} still valid", path.display());
        cases += 1;
    }
    let mut caught = 0;
    let mut m = data.clone();
    for pos in (0..data.len()).step_by(step) {
        for x in [0x01u8, 0x80, 0xFF] {
            m[pos] ^= x;
            let ok = exercise(&m);
            if has_crc {
                assert!(!ok, "{}: byte {pos} ^ {x:#04x} not detected", path.display());
            }
            caught += usize::from(!ok);
            m[pos] ^= x;
            cases += 1;
        }
    }
    (cases, caught)
}

#[test]
fn every_truncation_and_flip_of_small_files() {
    for name in ["small-db0.rdb", "empty.rdb", "no-checksum.rdb", "uncompressed.rdb"] {
        let (cases, caught) = mutate_file(&common::testdata(name), 1);
        assert!(cases > 0 && caught > 0, "{name}");
    }
}

#[test]
fn sampled_truncations_and_flips_of_all_types() {
    // 127 KB: a prime stride samples every structure without taking minutes.
    let (cases, _) = mutate_file(&common::testdata("all-types.rdb"), 37);
    assert!(cases > 10_000);
}

#[test]
fn redis_test_assets_mutated() {
    let Some(shared) = common::shared_dir() else { return };
    for name in ["encodings.rdb", "hash-zipmap.rdb", "hash-ziplist.rdb", "zset-ziplist.rdb", "list-quicklist.rdb"] {
        mutate_file(&shared.join("fixtures/redis").join(name), 1);
    }
}

#[test]
fn newer_fixtures_sampled() {
    let Some(shared) = common::shared_dir() else { return };
    for d in ["redis-8.6.3", "valkey-9.1.2", "redis-7.4.1", "redis-8.6.3-keymeta"] {
        let path = shared.join("fixtures/generated").join(d).join("dump.rdb");
        let step = if d.ends_with("keymeta") { 1 } else { 7919 };
        mutate_file(&path, step);
    }
}

#[test]
fn random_garbage_after_a_valid_header() {
    // A deterministic random stream: no panic, never valid.
    let mut rng = rdbtool::rng::Rng(0x9E3779B97F4A7C15);
    for len in [10usize, 100, 1000, 10_000] {
        for _ in 0..200 {
            let mut data = b"REDIS0012".to_vec();
            data.extend((0..len).map(|_| rng.next_u64() as u8));
            assert!(!exercise(&data));
        }
    }
}

#[test]
fn keep_going_resynchronizes_after_a_structural_error() {
    let data = std::fs::read(common::testdata("all-types.rdb")).unwrap();
    let total = verify_bytes("orig", &data, &opts()).keys;
    // 50 bytes cut out of the middle: everything after is misaligned.
    let mut cut = data[..70000].to_vec();
    cut.extend_from_slice(&data[70050..]);
    let stop = verify_bytes("cut", &cut, &Options { keep_going: false, ..opts() });
    let salvage = verify_bytes("cut", &cut, &opts());
    assert!(!stop.ok && !salvage.ok);
    assert!(stop.keys < total / 2, "{} of {total}", stop.keys);
    assert!(salvage.keys >= total - 5 && salvage.keys <= total, "{} of {total}", salvage.keys);
    assert!(salvage.warnings.iter().any(|w| w.contains("skipped")), "{:?}", salvage.warnings);
}

/// Fuzzer findings (fuzz/regressions/reader-selectdb-*): many SELECTDB records must cost neither
/// quadratic time nor a report line each.
#[test]
fn many_selectdb_records_stay_cheap() {
    let mut data = b"REDIS0011".to_vec();
    for db in 0..40_000u32 {
        data.push(0xFE);
        data.push(0x80);
        data.extend_from_slice(&db.to_be_bytes());
    }
    for _ in 0..40_000 {
        data.extend_from_slice(&[0xFE, 0x10]);
    }
    data.push(0xFF);
    data.extend_from_slice(&rdbtool::crc::crc64(&data).to_le_bytes());
    let t = std::time::Instant::now();
    let r = verify_bytes("many-dbs", &data, &opts());
    assert!(r.ok, "{:?}", r.errors);
    assert_eq!(r.dbs.len(), 40_000);
    assert!(r.warnings.len() <= 101, "{} warnings", r.warnings.len());
    assert!(t.elapsed().as_secs() < 5, "took {:?}", t.elapsed());
}

/// Fuzzer finding: type 24 exists only in Redis files; a Valkey value of type 24 is unknown.
#[test]
fn valkey_has_no_type_24() {
    use rdbtool::rdb::{Flavor, Format, RawValue};
    let bytes = [0u8; 8].iter().copied().chain([1, 0, 1, b'f', 1, b'v']).collect::<Vec<u8>>();
    let mut w = Walker::new();
    let redis =
        RawValue { type_byte: 24, format: Format { flavor: Flavor::Redis, version: 12 }, bytes: &bytes, offset: 0 };
    assert!(redis.decode(&mut w).is_ok());
    let valkey =
        RawValue { type_byte: 24, format: Format { flavor: Flavor::Valkey, version: 80 }, bytes: &bytes, offset: 0 };
    assert!(valkey.decode(&mut w).is_err());
    assert!(valkey.validate(&mut w).is_err());
}
