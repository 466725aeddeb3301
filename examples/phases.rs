//! Times the phases of `verify` one by one on a file (single thread), to see where CPU goes:
//! `cargo run --release --example phases -- FILE`.

use std::time::Instant;

use rdbtool::rdb::keyset::KeySet;
use rdbtool::rdb::{Reader, Record, Walker};

fn main() {
    let path = std::env::args().nth(1).expect("usage: phases FILE");
    let data = rdbtool::input::open(std::path::Path::new(&path)).expect("open");
    let t = Instant::now();
    let crc = rdbtool::crc::crc64(&data[..data.len() - 8]);
    println!("crc            {:>8.3} s  ({crc:x})", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let mut n = 0u64;
    for rec in Reader::new(&data).unwrap() {
        if let Record::Key(_) = rec.unwrap() {
            n += 1;
        }
    }
    println!("reader         {:>8.3} s  ({n} keys)", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let mut ks = KeySet::new();
    ks.reserve(n as usize);
    for rec in Reader::new(&data).unwrap() {
        if let Record::Key(k) = rec.unwrap() {
            ks.insert(k.db, &k.key, k.key_offset);
        }
    }
    let t1 = t.elapsed().as_secs_f64();
    let d = ks.duplicates(&data, 1000).unwrap();
    println!("reader+keyset  {:>8.3} s  + duplicates {:.3} s ({} dups)", t1, t.elapsed().as_secs_f64() - t1, d.total);

    let t = Instant::now();
    let mut w = Walker::new();
    let mut per_type = [(0u64, 0f64, 0u64); 256];
    for rec in Reader::new(&data).unwrap() {
        if let Record::Key(k) = rec.unwrap() {
            let t0 = Instant::now();
            k.value.validate(&mut w).unwrap();
            let e = &mut per_type[k.value.type_byte as usize];
            e.0 += 1;
            e.1 += t0.elapsed().as_secs_f64();
            e.2 += k.value.bytes.len() as u64;
        }
    }
    println!("reader+validate{:>8.3} s", t.elapsed().as_secs_f64());
    for (t, (n, s, b)) in per_type.iter().enumerate() {
        if *n > 0 {
            println!(
                "  type {t:>3}: {n:>9} keys {:>8.1} MB {s:>7.3} s  {:>7.0} MB/s",
                *b as f64 / 1e6,
                *b as f64 / 1e6 / s
            );
        }
    }
}
