//! File against file: both files' keys go into hashed partitions, joined one partition at a
//! time (in parallel), each key's values found again in the files by offset.

use rayon::prelude::*;

use super::partition::{FileKeyEntry, PARTITIONS, Partitions, equal_hash_range};
use super::set::KeySource;
use super::{
    DiffError, Difference, Entry, Names, Options, Output, SideInfo, Summary, Tally, compare_entries, key_hash,
    one_sided,
};
use crate::rdb::walk::Walker;

/// Compares two RDB images. Differences go to `out` partition by partition (hash order, not
/// file order).
pub fn diff_files<'a, 'b>(
    a: &mut impl KeySource<'a>,
    b: &mut impl KeySource<'b>,
    opts: &Options,
    out: &mut dyn Output,
) -> Result<Summary, DiffError> {
    let budget = opts.memory_budget / 2;
    let mut pa = Partitions::new(budget, opts.temp_dir.clone());
    let mut pb = Partitions::new(budget, opts.temp_dir.clone());
    let mut summary = Summary { sample_rate: opts.select.sample_rate, ..Summary::default() };
    summary.keys_a = partition_file(a, opts, &mut pa)?;
    summary.keys_b = partition_file(b, opts, &mut pb)?;
    let names = Names { a: a.name().to_owned(), b: b.name().to_owned() };
    let (a, b) = (&*a, &*b);
    let mut tally = Tally::new(out);
    // Partitions in parallel, a few at a time so that their differences stay few in memory.
    let group = rayon::current_num_threads().max(1) * 2;
    for first in (0..PARTITIONS).step_by(group) {
        let mut loaded = Vec::new();
        for i in first..(first + group).min(PARTITIONS) {
            loaded.push((FileKeyEntry::decode_all(&pa.take(i)?), FileKeyEntry::decode_all(&pb.take(i)?)));
        }
        let results: Vec<Result<(Summary, Vec<Difference>), DiffError>> =
            loaded.into_par_iter().map(|(ea, eb)| join_file_partition(a, b, ea, eb, opts, &names)).collect();
        for r in results {
            let (s, diffs) = r?;
            // Differences are counted as they are recorded.
            tally.summary.same += s.same;
            for d in diffs {
                tally.record(Some(d))?;
            }
        }
    }
    tally.summary.keys_a = summary.keys_a;
    tally.summary.keys_b = summary.keys_b;
    tally.summary.sample_rate = summary.sample_rate;
    Ok(tally.summary)
}

/// Puts every selected key of the file into partitions; returns how many.
fn partition_file<'a>(side: &mut impl KeySource<'a>, opts: &Options, parts: &mut Partitions) -> Result<u64, DiffError> {
    let mut n = 0;
    side.for_each_key(&opts.select, |k| {
        n += 1;
        let hash = key_hash(k.db, &k.key);
        let e = FileKeyEntry { hash, key_offset: k.key_offset, expire_at_ms: k.expire_at_ms, db: k.db };
        parts.push(hash, &e.encode())
    })?;
    Ok(n)
}

fn join_file_partition<'a, 'b>(
    a: &impl KeySource<'a>,
    b: &impl KeySource<'b>,
    mut ea: Vec<FileKeyEntry>,
    eb: Vec<FileKeyEntry>,
    opts: &Options,
    names: &Names,
) -> Result<(Summary, Vec<Difference>), DiffError> {
    let mut s = Summary::default();
    let mut diffs = Vec::new();
    let mut w = Walker::new();
    ea.sort_unstable_by_key(|e| (e.hash, e.key_offset));
    let mut matched = vec![false; ea.len()];
    for e in &eb {
        let kb = b.key_at(e.key_offset)?;
        let mut found = None;
        for i in equal_hash_range(&ea, e.hash) {
            if !matched[i] && ea[i].db == e.db && a.key_at(ea[i].key_offset)? == kb {
                found = Some(i);
                break;
            }
        }
        let rb = b.value_at(e.key_offset)?;
        let entry_b = Entry { raw: rb, expire_at_ms: e.expire_at_ms };
        match found {
            Some(i) => {
                matched[i] = true;
                let entry_a = Entry { raw: a.value_at(ea[i].key_offset)?, expire_at_ms: ea[i].expire_at_ms };
                match compare_entries(e.db, &kb, &entry_a, &entry_b, &mut w, opts, names)? {
                    None => s.same += 1,
                    Some(d) => {
                        s.count(d.kind);
                        diffs.push(d);
                    }
                }
            }
            None => {
                let d = one_sided(e.db, &kb, entry_b.info(), false, a.as_of_ms(), opts);
                s.count(d.kind);
                diffs.push(d);
            }
        }
    }
    for (i, e) in ea.iter().enumerate() {
        if matched[i] {
            continue;
        }
        let ka = a.key_at(e.key_offset)?;
        let info = SideInfo { kind: a.value_at(e.key_offset)?.kind(), expire_at_ms: e.expire_at_ms };
        let d = one_sided(e.db, &ka, info, true, b.as_of_ms(), opts);
        s.count(d.kind);
        diffs.push(d);
    }
    Ok((s, diffs))
}
