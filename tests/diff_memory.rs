//! `rdbtool diff` of files larger than the memory bound keeps its peak RSS under 100 MiB: a
//! file against itself (compared side by side) and against the same data in another encoding
//! and the reverse order (every value read again by offset). Mapping both files whole would
//! take twice their size. On its own (one test in this binary, data written as it is made): the
//! child's peak RSS counts the test process's memory at the time it was started.

mod common;

use std::io::Write;
use std::process::Command;

use rdbtool::rdb::encode::{write_lzf_string, write_raw_string};
use rdbtool::rng::Rng;

/// Value `i`: 4 KiB of runs of letters (LZF about halves it).
fn value(i: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(4200);
    let mut rng = Rng(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    while v.len() < 4096 {
        let x = rng.next_u64();
        v.extend(std::iter::repeat_n(b'a' + (x % 26) as u8, 1 + (x >> 60) as usize));
    }
    v.truncate(4096);
    v
}

/// Writes a version 11 RDB of the string keys `big:{i}` for `order`, values LZF-compressed or
/// raw, as it goes (with its CRC-64).
fn write_rdb(path: &std::path::Path, order: impl Iterator<Item = u64>, lzf: bool) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut crc = rdbtool::crc::Crc64::default();
    let mut put = |b: &[u8]| {
        crc.update(b);
        f.write_all(b).unwrap();
    };
    put(b"REDIS0011\xFE\x00");
    let mut rec = Vec::new();
    for i in order {
        rec.clear();
        rec.push(0);
        write_raw_string(&mut rec, format!("big:{i}").as_bytes());
        if lzf {
            write_lzf_string(&mut rec, &value(i));
        } else {
            write_raw_string(&mut rec, &value(i));
        }
        put(&rec);
    }
    put(b"\xFF");
    let sum = crc.finish().to_le_bytes();
    f.write_all(&sum).unwrap();
    f.flush().unwrap();
}

#[test]
fn memory_stays_bounded_for_files_larger_than_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    const N: u64 = 30_000;
    let plain = dir.path().join("plain.rdb");
    let packed_rev = dir.path().join("packed-rev.rdb");
    write_rdb(&plain, 0..N, false);
    write_rdb(&packed_rev, (0..N).rev(), true);
    assert!(std::fs::metadata(&plain).unwrap().len() > 100 << 20);
    assert!(std::fs::metadata(&packed_rev).unwrap().len() < 80 << 20);
    for (a, b) in [(&plain, &plain), (&plain, &packed_rev)] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rdbtool"));
        c.arg("diff").arg(a).arg(b);
        let (code, err, rss_kb, _) = common::run_measured(&mut c);
        assert_eq!(code, Some(0), "{a:?} {b:?}: {err}");
        eprintln!("diff {a:?} {b:?}: peak RSS {rss_kb} KiB");
        assert!(rss_kb < 100 << 10, "{a:?} {b:?}: peak RSS {rss_kb} KiB");
    }
}
