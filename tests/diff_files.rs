//! `rdbtool diff A.rdb B.rdb` on files built here: the same data in other encodings and other key
//! orders compares equal, a one-byte change or a changed TTL is found whichever way the keys
//! meet (side by side, waiting out of step, or through spilled partitions). Memory: diff_memory.rs.

mod common;
use common::rdbtool;

use rdbtool::rdb::encode::{ListpackBuilder, intset, write_len, write_lzf_string, write_raw_string, write_string};
use serde_json::Value as Json;

/// A value as what it means.
#[derive(Clone)]
enum Logical {
    Str(Vec<u8>),
    IntSet(Vec<i64>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
}

#[derive(Clone)]
struct Key {
    key: Vec<u8>,
    expire_at_ms: Option<i64>,
    value: Logical,
}

/// How values are written: `Packed` as Redis writes small values (integers as INT, long strings
/// LZF-compressed, sets of integers as an intset, small hashes as a listpack); `Plain` as the
/// generic forms (raw strings, a set and a hash of strings, members in reverse order).
#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Packed,
    Plain,
}

/// A version 11 RDB of `keys` (db 0) in the order given, with its CRC-64.
fn rdb(keys: &[Key], enc: Encoding) -> Vec<u8> {
    let mut out = b"REDIS0011".to_vec();
    out.extend_from_slice(&[0xFE, 0]);
    for k in keys {
        if let Some(t) = k.expire_at_ms {
            out.push(0xFC);
            out.extend_from_slice(&t.to_le_bytes());
        }
        let (type_byte, value) = encode(&k.value, enc);
        out.push(type_byte);
        write_raw_string(&mut out, &k.key);
        out.extend_from_slice(&value);
    }
    out.push(0xFF);
    let crc = rdbtool::crc::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn encode(v: &Logical, enc: Encoding) -> (u8, Vec<u8>) {
    let mut out = Vec::new();
    match (v, enc) {
        (Logical::Str(s), Encoding::Packed) => {
            if s.len() > 100 {
                write_lzf_string(&mut out, s);
            } else {
                write_string(&mut out, s, true);
            }
            (0, out)
        }
        (Logical::Str(s), Encoding::Plain) => {
            write_raw_string(&mut out, s);
            (0, out)
        }
        (Logical::IntSet(m), Encoding::Packed) => {
            write_raw_string(&mut out, &intset(m));
            (11, out)
        }
        (Logical::IntSet(m), Encoding::Plain) => {
            write_len(&mut out, m.len() as u64);
            for x in m.iter().rev() {
                write_raw_string(&mut out, x.to_string().as_bytes());
            }
            (2, out)
        }
        (Logical::Hash(h), Encoding::Packed) => {
            let mut lp = ListpackBuilder::new();
            for (f, v) in h {
                lp.push(f).push(v);
            }
            write_raw_string(&mut out, &lp.finish());
            (16, out)
        }
        (Logical::Hash(h), Encoding::Plain) => {
            write_len(&mut out, h.len() as u64);
            for (f, v) in h.iter().rev() {
                write_raw_string(&mut out, f);
                write_raw_string(&mut out, v);
            }
            (4, out)
        }
    }
}

/// Far in the future whatever today's date (2100-01-01).
const FUTURE_MS: i64 = 4_102_444_800_000;

/// `n` keys of every kind above: short integers, long compressible strings, integer sets and
/// small hashes; every tenth with a TTL.
fn dataset(n: usize) -> Vec<Key> {
    (0..n)
        .map(|i| {
            let (key, value) = match i % 10 {
                0 => (format!("set:{i}"), Logical::IntSet(vec![i as i64, 7, -3, 100_000])),
                1 => (
                    format!("hash:{i}"),
                    Logical::Hash(vec![(b"f1".to_vec(), i.to_string().into_bytes()), (b"f2".to_vec(), b"vv".to_vec())]),
                ),
                2..=5 => (format!("long:{i}"), Logical::Str(format!("{i}:{}", "abcdefgh".repeat(40)).into_bytes())),
                _ => (format!("int:{i}"), Logical::Str((i * 7).to_string().into_bytes())),
            };
            Key { key: key.into_bytes(), expire_at_ms: (i % 10 == 3).then_some(FUTURE_MS + i as i64), value }
        })
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `--jsonl` diff that must exit with `code`: its differences and its summary.
fn diff(a: &str, b: &str, extra: &[&str], code: i32) -> (Vec<Json>, Json) {
    let mut args = vec!["diff", "--jsonl", a, b];
    args.extend_from_slice(extra);
    let o = rdbtool(&args);
    assert_eq!(o.status.code(), Some(code), "{args:?}\n{}\n{}", text(&o.stdout), text(&o.stderr));
    let mut diffs = Vec::new();
    let mut summary = Json::Null;
    for l in o.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let j: Json = serde_json::from_slice(l).unwrap();
        match j.get("summary") {
            Some(s) => summary = s.clone(),
            None => diffs.push(j),
        }
    }
    assert!(summary.is_object(), "{}", text(&o.stdout));
    (diffs, summary)
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

/// 20,000 keys: enough that with `--memory 1` the keys left for the partitions are spilled.
const N: usize = 20_000;

#[test]
fn the_same_data_in_other_encodings_and_orders_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dataset(N);
    let mut reversed = keys.clone();
    reversed.reverse();
    let packed = write(dir.path(), "packed.rdb", &rdb(&keys, Encoding::Packed));
    let plain = write(dir.path(), "plain.rdb", &rdb(&keys, Encoding::Plain));
    let plain_rev = write(dir.path(), "plain-rev.rdb", &rdb(&reversed, Encoding::Plain));
    let packed_rev = write(dir.path(), "packed-rev.rdb", &rdb(&reversed, Encoding::Packed));
    // The encodings do differ.
    assert_ne!(std::fs::read(&packed).unwrap().len(), std::fs::read(&plain).unwrap().len());
    let spill = ["--memory", "1", "--temp-dir", dir.path().to_str().unwrap()];
    for (a, b) in
        [(&packed, &plain), (&plain, &packed), (&packed, &plain_rev), (&plain_rev, &packed), (&packed, &packed_rev)]
    {
        for extra in [&[][..], &spill[..]] {
            let (d, s) = diff(a, b, extra, 0);
            assert!(d.is_empty(), "{a} {b} {extra:?}: {d:?}");
            assert_eq!(
                (s["same"].as_u64(), s["keys_a"].as_u64(), s["keys_b"].as_u64()),
                (Some(N as u64), Some(N as u64), Some(N as u64))
            );
        }
    }
    // Spilled partitions are removed.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rdbtool-diff-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Out of step by a key: one more at the start of A, one fewer in its middle.
    let mut shifted = keys.clone();
    let gone = shifted.remove(N / 2);
    shifted.insert(0, Key { key: b"extra".to_vec(), expire_at_ms: None, value: Logical::Str(b"x".to_vec()) });
    let shifted = write(dir.path(), "shifted.rdb", &rdb(&shifted, Encoding::Packed));
    let (d, s) = diff(&shifted, &plain, &[], 1);
    let mut got: Vec<(String, Vec<u8>)> = d
        .iter()
        .map(|d| (d["kind"].as_str().unwrap().to_owned(), rdbtool::json::to_bytes(&d["key"]).unwrap()))
        .collect();
    got.sort();
    assert_eq!(got, vec![("only_in_a".to_owned(), b"extra".to_vec()), ("only_in_b".to_owned(), gone.key.clone())]);
    assert_eq!(s["same"].as_u64(), Some(N as u64 - 1));
}

#[test]
fn a_one_byte_change_or_a_ttl_is_found_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dataset(N);
    let packed = write(dir.path(), "packed.rdb", &rdb(&keys, Encoding::Packed));
    let plain = write(dir.path(), "plain.rdb", &rdb(&keys, Encoding::Plain));
    // One byte of one long string, the expire time of another key.
    let mut changed = keys.clone();
    let (byte_key, ttl_key) = (12_342, 7_773);
    let Logical::Str(s) = &mut changed[byte_key].value else { panic!() };
    s[150] ^= 1;
    assert_eq!(changed[ttl_key].expire_at_ms, Some(FUTURE_MS + ttl_key as i64));
    changed[ttl_key].expire_at_ms = Some(FUTURE_MS + 3_600_000);
    let mut changed_rev = changed.clone();
    changed_rev.reverse();
    let files = [
        write(dir.path(), "changed-plain.rdb", &rdb(&changed, Encoding::Plain)),
        write(dir.path(), "changed-packed.rdb", &rdb(&changed, Encoding::Packed)),
        write(dir.path(), "changed-plain-rev.rdb", &rdb(&changed_rev, Encoding::Plain)),
        write(dir.path(), "changed-packed-rev.rdb", &rdb(&changed_rev, Encoding::Packed)),
    ];
    let spill = ["--memory", "1", "--temp-dir", dir.path().to_str().unwrap()];
    for a in [&packed, &plain] {
        for b in &files {
            for extra in [&[][..], &spill[..]] {
                let (d, s) = diff(a, b, extra, 1);
                let what = format!("{a} {b} {extra:?}: {d:?}");
                assert_eq!(d.len(), 2, "{what}");
                assert_eq!(s["same"].as_u64(), Some(N as u64 - 2), "{what}");
                let by_kind = |k: &str| d.iter().find(|d| d["kind"] == k).unwrap_or_else(|| panic!("no {k}: {what}"));
                let v = by_kind("value");
                assert_eq!(rdbtool::json::to_bytes(&v["key"]).unwrap(), keys[byte_key].key, "{what}");
                assert_eq!(v["detail"]["first_difference_at"], 150, "{what}");
                let t = by_kind("ttl");
                assert_eq!(rdbtool::json::to_bytes(&t["key"]).unwrap(), keys[ttl_key].key, "{what}");
                assert_eq!(t["b"]["expire_at_ms"].as_i64(), Some(FUTURE_MS + 3_600_000), "{what}");
                assert_eq!(t["a"]["type"], "string", "{what}");
            }
        }
    }
}
