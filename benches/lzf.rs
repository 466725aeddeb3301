//! LZF decompression throughput on Redis-like string values.
//!
//! Every case is compressed once with `lzf_rust::compress` (the liblzf algorithm Redis uses), then
//! decoded by: the `lzf` crate (allocates its output), `lzf-rust` into a reused buffer, our
//! `decompress_into` into a reused `Vec`, and our `validate` (no output). Throughput counts
//! decompressed bytes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rdbtool::rdb::lzf as rdb_lzf;

/// The same numbers on every run, so every run decodes the same bytes.
use rdbtool::rng::Rng;

/// `len` random lowercase letters.
fn word(rng: &mut Rng, out: &mut String, len: usize) {
    for _ in 0..len {
        out.push((b'a' + rng.below(26) as u8) as char);
    }
}

/// One JSON object per user, like a cached API response.
fn json_record(rng: &mut Rng, out: &mut String) {
    let id = rng.below(1_000_000);
    out.push_str(&format!("{{\"id\":{id},\"name\":\"user_{}\",\"email\":\"", rng.below(100_000)));
    word(rng, out, 8);
    out.push_str("@example.com\",\"created_at\":\"2024-");
    out.push_str(&format!(
        "{:02}-{:02}T{:02}:{:02}:{:02}Z\"",
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    ));
    out.push_str(",\"active\":");
    out.push_str(if rng.below(2) == 0 { "true" } else { "false" });
    out.push_str(&format!(",\"score\":{}.{},\"tags\":[", rng.below(1000), rng.below(100)));
    for t in 0..rng.below(4) {
        if t > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(["redis", "cache", "session", "premium", "beta", "eu-west"][rng.below(6) as usize]);
        out.push('"');
    }
    out.push_str("],\"bio\":\"");
    for w in 0..(3 + rng.below(8)) {
        if w > 0 {
            out.push(' ');
        }
        let n = 2 + rng.below(8) as usize;
        word(rng, out, n);
    }
    out.push_str("\"}");
}

fn json_text(seed: u64, size: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut s = String::from("[");
    while s.len() < size {
        if s.len() > 1 {
            s.push(',');
        }
        json_record(&mut rng, &mut s);
    }
    s.push(']');
    s.into_bytes()
}

/// A list/set serialized as text: "value:000000,value:000001,...".
fn counter_values(first: u64, size: usize) -> Vec<u8> {
    let mut s = String::new();
    let mut i = first;
    while s.len() < size {
        s.push_str(&format!("value:{i:06},"));
        i += 1;
    }
    s.into_bytes()
}

/// Tokens of random letters and digits with the odd repeated word: LZF saves only a little.
fn low_ratio_text(seed: u64, size: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    let common = ["the ", "and ", "user ", "token ", "value "];
    let mut s = String::new();
    while s.len() < size {
        if rng.below(4) == 0 {
            s.push_str(common[rng.below(5) as usize]);
        } else {
            for _ in 0..(3 + rng.below(10)) {
                let c = rng.below(36) as u8;
                s.push(if c < 26 { (b'a' + c) as char } else { (b'0' + c - 26) as char });
            }
            s.push(' ');
        }
    }
    s.into_bytes()
}

/// A big value (a serialized document store): JSON with a base64-like attachment every few records.
fn large_blob(size: usize) -> Vec<u8> {
    let mut rng = Rng(7);
    let mut s = String::from("[");
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    while s.len() < size {
        s.push(',');
        json_record(&mut rng, &mut s);
        if rng.below(8) == 0 {
            s.push_str(",\"");
            for _ in 0..(64 + rng.below(512)) {
                s.push(alphabet[rng.below(64) as usize] as char);
            }
            s.push('"');
        }
    }
    s.truncate(size);
    s.into_bytes()
}

fn compress(raw: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; lzf_rust::max_compressed_size(raw.len())];
    let n = lzf_rust::compress(raw, &mut buf).expect("compress");
    buf.truncate(n);
    buf
}

/// A case is a set of distinct values, about 1 MB in all, decoded one after another as a dump holds
/// many keys. A smaller set repeated lets the branch predictor learn its token sequence by heart
/// (here: 16 × 10 KB of JSON validates 3-4× faster than 64 × 10 KB), which flatters every decoder.
fn cases() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let many = |n: u64, f: &dyn Fn(u64) -> Vec<u8>| (0..n).map(f).collect();
    vec![
        ("json_1k", many(1000, &|i| json_text(1000 + i, 1024))),
        ("json_10k", many(100, &|i| json_text(2000 + i, 10 * 1024))),
        ("values_4k", many(256, &|i| counter_values(i * 1000, 4096))),
        ("lowratio_4k", many(256, &|i| low_ratio_text(3000 + i, 4096))),
        ("a_x100", vec![vec![b'a'; 100]]),
        ("blob_1m", vec![large_blob(1 << 20)]),
    ]
}

fn bench_decompress(c: &mut Criterion) {
    for (name, raws) in cases() {
        let packed: Vec<(Vec<u8>, usize)> = raws.iter().map(|raw| (compress(raw), raw.len())).collect();
        let total: usize = raws.iter().map(Vec::len).sum();
        let clen: usize = packed.iter().map(|(p, _)| p.len()).sum();
        eprintln!("{name}: {} values, {total} -> {clen} bytes ({:.2})", raws.len(), clen as f64 / total as f64);

        // Sanity: every decoder agrees before we time it.
        let mut ours = Vec::new();
        for ((p, ulen), raw) in packed.iter().zip(&raws) {
            assert_eq!(&lzf::decompress(p, *ulen).expect("lzf crate"), raw);
            rdb_lzf::decompress_into(p, *ulen, &mut ours).expect("ours");
            assert_eq!(&ours, raw);
            rdb_lzf::validate(p, *ulen).expect("validate");
        }

        let mut g = c.benchmark_group(format!("lzf/{name}"));
        g.throughput(Throughput::Bytes(total as u64));

        g.bench_function("lzf_crate", |b| {
            b.iter(|| {
                for (p, ulen) in &packed {
                    black_box(lzf::decompress(black_box(p), *ulen).map(|v| v.len())).ok();
                }
            })
        });

        // lzf-rust writes into a slice: give it one buffer of the largest size, sliced per value.
        let mut fixed = vec![0u8; raws.iter().map(Vec::len).max().unwrap_or(0)];
        g.bench_function("lzf_rust", |b| {
            b.iter(|| {
                for (p, ulen) in &packed {
                    black_box(lzf_rust::decompress(black_box(p), &mut fixed[..*ulen])).ok();
                }
            })
        });

        let mut reused = Vec::new();
        g.bench_function("ours", |b| {
            b.iter(|| {
                for (p, ulen) in &packed {
                    black_box(rdb_lzf::decompress_into(black_box(p), *ulen, &mut reused)).ok();
                }
            })
        });

        g.bench_function("validate", |b| {
            b.iter(|| {
                for (p, ulen) in &packed {
                    black_box(rdb_lzf::validate(black_box(p), *ulen)).ok();
                }
            })
        });
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_decompress
}
criterion_main!(benches);
