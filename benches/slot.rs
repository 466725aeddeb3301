//! Cluster hash slot per key (`slot::key_slot`) on keys shaped like the bench file's
//! (`../shared/bench/gen_resp.py`: `counter:N`, `pop:0:N`, `session:<16 hex>`, `user:N:token`,
//! `cache:obj:N`, ...; 8 to 30 bytes, lengths mixed in random order as in a Redis dict).
//!
//! `portable` is the table path (the anchor, measured in the same run), `key_slot` what callers
//! get (carry-less multiply when the CPU has it). `throughput` hashes independent keys;
//! `latency` makes each key's index depend on the previous slot, as when a caller needs the slot
//! at once (report prefetches the slot's counter with it).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rdbtool::slot::{key_slot, key_slot_portable};

/// The same numbers on every run, so every run hashes the same keys.
use rdbtool::rng::Rng;

fn keys(n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(42);
    (0..n)
        .map(|_| {
            let id = rng.next_u64() % 2_000_000;
            match rng.next_u64() % 8 {
                0 => format!("counter:{id}"),
                1 => format!("pop:{}:{id}", rng.next_u64() % 4),
                2 => format!("session:{:016x}", rng.next_u64()),
                3 => format!("user:{id}:token"),
                4 => format!("cache:obj:{id}"),
                5 => format!("page:html:{id}"),
                6 => format!("user:{id}"),
                _ => format!("leaderboard:{}", id % 1000),
            }
            .into_bytes()
        })
        .collect()
}

/// One buffer for all keys (as the key bytes of a part sit in the reader's buffer), small enough
/// for L2: the figure is the hash's, not the memory's.
fn arena(keys: &[Vec<u8>]) -> (Vec<u8>, Vec<(u32, u32)>) {
    let (mut bytes, mut spans) = (Vec::new(), Vec::new());
    for k in keys {
        spans.push((bytes.len() as u32, k.len() as u32));
        bytes.extend_from_slice(k);
    }
    (bytes, spans)
}

fn run(c: &mut Criterion, name: &str, f: impl Fn(&[u8]) -> u16) {
    let (bytes, spans) = arena(&keys(1 << 13));
    let key = |&(at, len): &(u32, u32)| &bytes[at as usize..][..len as usize];
    let mut g = c.benchmark_group("key_slot");
    g.throughput(Throughput::Elements(spans.len() as u64));
    g.bench_function(format!("throughput/{name}"), |b| {
        b.iter(|| spans.iter().fold(0u32, |acc, s| acc.wrapping_add(u32::from(f(black_box(key(s)))))))
    });
    g.bench_function(format!("latency/{name}"), |b| {
        b.iter(|| {
            let (mut i, mut acc) = (0usize, 0u32);
            for _ in 0..spans.len() {
                let s = f(black_box(key(&spans[i])));
                acc = acc.wrapping_add(u32::from(s));
                i = (i + 1 + (s & 1) as usize) & (spans.len() - 1);
            }
            acc
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    run(c, "portable", key_slot_portable);
    run(c, "key_slot", key_slot);
}

criterion_group!(benches, bench);
criterion_main!(benches);
