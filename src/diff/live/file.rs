//! An RDB file against a live server: the file read once in order, its keys looked up on the
//! server in pipelined batches, while a second set of connections SCANs the server into hashed
//! partitions that, joined with the file's keys, give the keys only the server has.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::super::{
    DiffError, Entry, KeySelect, KeySource, Names, Options, Output, PARTITIONS, Partitions, SideInfo, Summary, Tally,
    compare_entries, key_hash, key_hash2, one_sided,
};
use super::side::{LiveSide, Pending, Query, Reply};
use super::{report_live_only, restrict_to_url_db};
use crate::display::quoted;
use crate::rdb::dump::parse_dump;
use crate::rdb::walk::Walker;

/// Batches of lookups sent and not yet read.
const IN_FLIGHT: usize = 4;
/// A lookup batch ends after this many bytes of file values.
const BATCH_BYTES: usize = 4 << 20;

// ---------------------------------------------------------------------------------------------
// Drivers.

/// A key from SCAN in a partition: hash, second hash, db, key length, key.
fn encode_scanned(db: u64, key: &[u8], buf: &mut Vec<u8>) -> u64 {
    let h = key_hash(db, key);
    buf.clear();
    buf.extend_from_slice(&h.to_le_bytes());
    buf.extend_from_slice(&key_hash2(db, key).to_le_bytes());
    buf.extend_from_slice(&db.to_le_bytes());
    buf.extend_from_slice(&(key.len() as u64).to_le_bytes());
    buf.extend_from_slice(key);
    h
}

fn u64_at(s: &[u8]) -> u64 {
    u64::from_le_bytes(s.try_into().unwrap_or([0; 8]))
}

/// (hash, second hash, db, key) of each scanned key in a partition.
fn decode_scanned(mut b: &[u8]) -> Vec<((u64, u64), u64, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 32 {
        let (h, h2, db, n) = (u64_at(&b[..8]), u64_at(&b[8..16]), u64_at(&b[16..24]), u64_at(&b[24..32]) as usize);
        let Some(key) = b.get(32..32 + n) else { break };
        out.push(((h, h2), db, key));
        b = &b[32 + n..];
    }
    out
}

/// A file key in a partition: its two hashes (the file is not re-read to confirm a match).
fn encode_file_key(db: u64, key: &[u8]) -> (u64, [u8; 16]) {
    let h = key_hash(db, key);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&h.to_le_bytes());
    b[8..].copy_from_slice(&key_hash2(db, key).to_le_bytes());
    (h, b)
}

fn decode_file_keys(b: &[u8]) -> Vec<(u64, u64)> {
    b.chunks_exact(16).map(|c| (u64_at(&c[..8]), u64_at(&c[8..]))).collect()
}

/// SCANs `live` into partitions (each selected key once per node that holds it).
fn scan_into_partitions(live: &mut LiveSide, opts: &Options) -> Result<(Partitions, u64), DiffError> {
    let mut parts = Partitions::new(opts.memory_budget / 2, opts.temp_dir.clone());
    let mut n = 0u64;
    let mut buf = Vec::new();
    live.scan(&opts.select, opts.scan_count, |_, db, key| {
        n += 1;
        let h = encode_scanned(db, &key, &mut buf);
        parts.push(h, &buf)
    })?;
    Ok((parts, n))
}

/// Compares an RDB file with a live server. `file_is_a`: the file is side A (else B).
///
/// The file is read once, in order; its keys are looked up on the server in pipelined batches
/// (DUMP + PTTL), the next batch sent before the previous one is compared. Meanwhile a second
/// set of connections SCANs the server into hashed partitions; joined with the file's keys, they
/// give the keys only the server has (then asked TYPE + PTTL).
pub fn diff_file_live<'a>(
    file: &mut impl KeySource<'a>,
    live: &mut LiveSide,
    file_is_a: bool,
    opts: &Options,
    out: &mut dyn Output,
) -> Result<Summary, DiffError> {
    let names = if file_is_a {
        Names { a: file.name().to_owned(), b: live.name.clone() }
    } else {
        Names { a: live.name.clone(), b: file.name().to_owned() }
    };
    let mut scanner = live.reconnect()?;
    let cancel = Arc::new(AtomicBool::new(false));
    scanner.cancel = Some(cancel.clone());
    let mut tally = Tally::new(out);
    tally.summary.sample_rate = opts.select.sample_rate;
    let select = restrict_to_url_db(&opts.select, live.url_db);
    let (file_parts, file_keys, scanned) = std::thread::scope(|s| {
        let scan = s.spawn(|| scan_into_partitions(&mut scanner, opts));
        let mut fparts = Partitions::new(opts.memory_budget / 2, opts.temp_dir.clone());
        let res = lookup_file_keys(file, live, file_is_a, &select, opts, &names, &mut fparts, &mut tally);
        if res.is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
        let scanned = scan.join().unwrap_or_else(|_| Err(DiffError::Live("the SCAN thread failed".into())));
        let n = res?;
        Ok::<_, DiffError>((fparts, n, scanned?))
    })?;
    let (mut live_parts, live_keys) = scanned;
    let mut fparts = file_parts;
    if file_is_a {
        tally.summary.keys_a = file_keys;
        tally.summary.keys_b = live_keys;
    } else {
        tally.summary.keys_a = live_keys;
        tally.summary.keys_b = file_keys;
    }

    // Keys the server has and the file lacks.
    let mut candidates: Vec<(u64, Vec<u8>)> = Vec::new();
    for p in 0..PARTITIONS {
        let mut fe = decode_file_keys(&fparts.take(p)?);
        fe.sort_unstable();
        let raw = live_parts.take(p)?;
        for (h, db, key) in decode_scanned(&raw) {
            let found = fe.binary_search(&h).is_ok();
            if !found {
                candidates.push((db, key.to_vec()));
            }
            if candidates.len() >= opts.batch.max(1) {
                report_live_only(live, &mut candidates, file_is_a, file.as_of_ms(), opts, &mut tally)?;
            }
        }
    }
    report_live_only(live, &mut candidates, file_is_a, file.as_of_ms(), opts, &mut tally)?;
    Ok(tally.summary)
}

#[allow(clippy::too_many_arguments)]
fn lookup_file_keys<'a>(
    file: &mut impl KeySource<'a>,
    live: &mut LiveSide,
    file_is_a: bool,
    select: &KeySelect,
    opts: &Options,
    names: &Names,
    fparts: &mut Partitions,
    tally: &mut Tally<'_>,
) -> Result<u64, DiffError> {
    let batch = opts.batch.max(1);
    let mut w = Walker::new();
    let mut chunk: Vec<crate::rdb::KeyRecord<'a>> = Vec::with_capacity(batch);
    let mut n = 0u64;
    let mut compare = |live: &mut LiveSide,
                       recs: Vec<crate::rdb::KeyRecord<'a>>,
                       p: Pending,
                       tally: &mut Tally<'_>|
     -> Result<(), DiffError> {
        let replies = live.recv(p)?;
        for (k, r) in recs.iter().zip(replies) {
            let Reply::Dump { payload, expire_at_ms, at_ms } = r else {
                return Err(DiffError::Live(format!("{}: unexpected reply kind", live.name)));
            };
            let fe = Entry { raw: k.value, expire_at_ms: k.expire_at_ms };
            let d = match payload {
                None => Some(one_sided(
                    k.db,
                    &k.key,
                    SideInfo { kind: k.value.kind(), expire_at_ms: k.expire_at_ms },
                    file_is_a,
                    at_ms,
                    opts,
                )),
                Some(p) => {
                    let dump = parse_dump(&p).map_err(|e| {
                        DiffError::Live(format!("{}: DUMP of db {} key {}: {e}", live.name, k.db, quoted(&k.key)))
                    })?;
                    let le = Entry { raw: dump.value, expire_at_ms };
                    let (a, b) = if file_is_a { (&fe, &le) } else { (&le, &fe) };
                    compare_entries(k.db, &k.key, a, b, &mut w, opts, names)?
                }
            };
            tally.record(d)?;
        }
        Ok(())
    };
    // Several batches stay in flight so that the server always has the next one queued while
    // we compare the previous; a batch also ends at `BATCH_BYTES` of file values (a proxy for the
    // size of the DUMP replies the server buffers for us).
    let mut inflight: VecDeque<(Vec<crate::rdb::KeyRecord<'a>>, Pending)> = VecDeque::new();
    let mut flush = |live: &mut LiveSide,
                     chunk: Vec<crate::rdb::KeyRecord<'a>>,
                     inflight: &mut VecDeque<(Vec<crate::rdb::KeyRecord<'a>>, Pending)>,
                     tally: &mut Tally<'_>|
     -> Result<(), DiffError> {
        let keys: Vec<(u64, &[u8])> = chunk.iter().map(|k| (k.db, &*k.key)).collect();
        let p = live.send(Query::DumpPttl, &keys)?;
        drop(keys);
        inflight.push_back((chunk, p));
        while inflight.len() > IN_FLIGHT {
            if let Some((recs, prev)) = inflight.pop_front() {
                compare(live, recs, prev, tally)?;
            }
        }
        Ok(())
    };
    let mut chunk_bytes = 0usize;
    file.for_each_key(select, |k| {
        n += 1;
        let (hash, e) = encode_file_key(k.db, &k.key);
        fparts.push(hash, &e)?;
        chunk_bytes += k.value.bytes.len() + k.key.len();
        chunk.push(k);
        if chunk.len() >= batch || chunk_bytes >= BATCH_BYTES {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(batch));
            chunk_bytes = 0;
            flush(live, full, &mut inflight, tally)?;
        }
        Ok(())
    })?;
    if !chunk.is_empty() {
        flush(live, std::mem::take(&mut chunk), &mut inflight, tally)?;
    }
    while let Some((recs, p)) = inflight.pop_front() {
        compare(live, recs, p, tally)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanned_keys_round_trip() {
        let mut buf = Vec::new();
        encode_scanned(2, b"key", &mut buf);
        let mut two = buf.clone();
        encode_scanned(0, b"", &mut buf);
        two.extend_from_slice(&buf);
        let d = decode_scanned(&two);
        assert_eq!(d.iter().map(|x| (x.1, x.2)).collect::<Vec<_>>(), vec![(2, &b"key"[..]), (0, &b""[..])]);
    }
}
