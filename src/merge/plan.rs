//! Pass 1: reads every input once (inside `verify`'s reading of it, see `scan::Gather`), checks
//! it, counts keys per (output, target db), keeps the records other than keys, and collects the
//! keys that may collide; then resolves the collisions (`conflicts`) so that the counts of pass
//! 2 are exact.

use std::collections::BTreeMap;
use std::time::Instant;

use rayon::prelude::*;

use super::conflicts::Conflict;
use super::conflicts::{Action, Planned, Resolution, by_input, find_groups, resolve};
use super::keyloc::KeyLoc;
use super::records::{check_target_records, choose_aux, merge_functions, merge_module_aux};
use super::route::Router;
use super::route_log::{RouteLog, Routes};
use super::scan::{Gather, Joined, MAX_AUX, MAX_AUX_BYTES, Scan, Section};
use super::{DbPlan, InputReport, MAX_EXAMPLES, MAX_MESSAGES, MergeError, Options, Source};
use crate::error::Error;
use crate::rdb::keyset::SpilledBuckets;
use crate::rdb::types::{Flavor, Format};
use crate::rdb::writer::magic;

/// The result of pass 1: everything pass 2 needs.
pub struct Plan {
    pub target: Format,
    pub inputs: Vec<InputReport>,
    pub(super) formats: Vec<Format>,
    pub(super) aux: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) functions: Vec<Vec<u8>>,
    pub(super) module_aux: Vec<(u64, u64, Vec<u8>)>,
    pub(super) sections: Vec<Vec<Section>>,
    /// Per input: where its checksummed bytes end (after the EOF opcode) and their CRC-64 as
    /// pass 1 computed it; pass 2 checks the input still gives it.
    pub(super) input_crcs: Vec<(u64, u64)>,
    /// Per output, per target db.
    pub counts: Vec<BTreeMap<u64, DbPlan>>,
    /// Per input: the key records not copied as they are, sorted by offset.
    pub(super) actions: Vec<Vec<Planned>>,
    /// Per input, when pass 1 logged them (split): where each output's key records are.
    pub(super) routes: Vec<Option<Vec<Routes>>>,
    /// Function libraries written, and identical copies left out.
    pub functions_written: usize,
    pub functions_duplicates: usize,
    /// Conflicts resolved by `first` / `last` / `rename`: the first `MAX_LISTED`, and how many.
    pub resolved: Vec<Conflict>,
    pub resolved_total: usize,
    pub plan_s: f64,
}

impl Plan {
    /// What the plan decided for the key whose string starts at `key_offset` in input `input`:
    /// None: written as it is; `Some(None)`: left out; `Some(Some(name))`: written as `name`.
    pub fn decision(&self, input: usize, key_offset: u64) -> Option<Option<&[u8]>> {
        let a = self.actions.get(input)?;
        let i = a.binary_search_by_key(&key_offset, |x| x.key_offset).ok()?;
        Some(match &a[i].action {
            Action::Drop => None,
            Action::Rename(n) => Some(n.as_slice()),
        })
    }
}

/// The default output format: the newest input's; Valkey 80 when any input is Valkey.
pub fn default_target(formats: &[Format]) -> Format {
    if let Some(v) = formats.iter().filter(|f| f.flavor == Flavor::Valkey).max_by_key(|f| f.version) {
        return *v;
    }
    formats.iter().copied().max_by_key(|f| f.version).unwrap_or(Format { flavor: Flavor::Redis, version: 10 })
}

/// Pass 1: reads every input, resolves collisions, and fixes the counts. Fails without writing
/// anything on invalid inputs, unresolved conflicts, rejected keys and content the target
/// format cannot hold.
pub fn plan(sources: &[Source<'_>], router: &dyn Router, opts: &Options) -> Result<Plan, MergeError> {
    plan_with(sources, router, opts, SET_MEMORY)
}

/// Entries of an input's key set held in memory (16 bytes each: 1 MiB); the rest go to a
/// temporary file, read back one bucket at a time when collisions are looked for. Small: pass 1
/// runs beside `verify`, whose own key set and parts are in memory at the same time.
const SET_MEMORY: usize = 1 << 16;

/// `plan` with at most `set_memory` key-set entries in memory per input.
fn plan_with(
    sources: &[Source<'_>],
    router: &dyn Router,
    opts: &Options,
    set_memory: usize,
) -> Result<Plan, MergeError> {
    let t0 = Instant::now();
    if sources.is_empty() {
        return Err(MergeError::Io("no inputs".into()));
    }
    if sources.len() > u16::MAX as usize {
        return Err(MergeError::Io(format!("at most {} inputs", u16::MAX)));
    }
    if router.outputs() >= usize::from(super::scan::NO_OUTPUT) {
        return Err(MergeError::Io(format!("at most {} outputs", super::scan::NO_OUTPUT - 1)));
    }
    let mut formats = Vec::with_capacity(sources.len());
    for s in sources {
        if s.data.len() as u64 > KeyLoc::MAX_OFFSET {
            return Err(MergeError::Io(format!("{}: larger than 128 TiB", s.name)));
        }
        let f = crate::rdb::reader::parse_header(s.data)
            .map_err(|error| MergeError::Input { file: s.name.clone(), error })?;
        formats.push(f);
    }
    let target = opts.target.unwrap_or_else(|| default_target(&formats));
    let detect = sources.len() > 1 || router.joins_dbs();
    let scans: Vec<Result<Scan, MergeError>> =
        sources.par_iter().enumerate().map(|(i, s)| scan_input(i, s, router, target, detect, set_memory)).collect();
    let mut scans: Vec<Scan> = scans.into_iter().collect::<Result<_, _>>()?;

    // Rejections and refusals first: they fail the plan whatever the conflicts.
    let mut rejected_dbs: BTreeMap<u64, u64> = BTreeMap::new();
    let (mut unassigned, mut examples) = (0u64, Vec::new());
    let (mut refused, mut refused_total) = (Vec::new(), 0u64);
    for s in &mut scans {
        for (db, n) in &s.rejected_dbs {
            *rejected_dbs.entry(*db).or_default() += n;
        }
        unassigned += s.unassigned;
        examples.append(&mut s.examples);
        refused_total += s.refused_total;
        refused.append(&mut s.refused);
    }
    if !rejected_dbs.is_empty() || unassigned > 0 {
        examples.truncate(MAX_EXAMPLES);
        return Err(MergeError::Rejected { dbs: rejected_dbs, unassigned, examples });
    }

    let mut res = Resolution::default();
    let (functions, functions_duplicates) = merge_functions(sources, &scans, opts, &mut res);
    let module_aux = merge_module_aux(sources, &scans, opts, &mut res);
    let writer_check = check_target_records(target, &functions, &module_aux);
    if let Some(m) = writer_check {
        refused_total += 1;
        refused.insert(0, m);
    }
    if refused_total > 0 {
        refused.truncate(MAX_MESSAGES);
        return Err(MergeError::Refused { messages: refused, total: refused_total });
    }

    // Per output and target db counts, summed over inputs.
    let mut counts: Vec<BTreeMap<u64, DbPlan>> = vec![BTreeMap::new(); router.outputs()];
    for s in &scans {
        for (o, m) in s.counts.iter().enumerate() {
            for (db, c) in m {
                let e = counts[o].entry(*db).or_insert(DbPlan { db: *db, ..Default::default() });
                e.keys += c.keys;
                e.expires += c.expires;
            }
        }
    }
    let sections: Vec<Vec<Section>> = scans.iter().map(|s| s.sections.clone()).collect();
    let input_crcs: Vec<(u64, u64)> = scans.iter().map(|s| s.crc).collect();
    let routes: Vec<Option<Vec<Routes>>> = scans.iter_mut().map(|s| s.logs.take()).collect();

    if detect {
        let sets: Vec<SpilledBuckets> = scans.iter_mut().map(|s| std::mem::take(&mut s.keys_set)).collect();
        let groups = find_groups(&sets, sources, &sections, router)?;
        resolve(groups, &sets, sources, &sections, router, opts, &mut counts, &mut res)?;
        // Keys whose fingerprints met were re-read here and there (whole records, for the
        // renamed ones): their pages would stay mapped through pass 2.
        for s in sources {
            if let Some(i) = s.input {
                i.release(0..s.data.len());
            }
        }
    }
    if !res.conflicts.is_empty() {
        return Err(MergeError::Conflicts(res.conflicts));
    }

    let inputs = sources
        .iter()
        .zip(&scans)
        .map(|(s, sc)| InputReport {
            file: s.name.clone(),
            format: magic(sc.format),
            bytes: s.data.len() as u64,
            keys: sc.keys,
            dbs: sc.src_dbs.clone(),
            skipped: sc.skipped,
            warnings: sc.warnings.clone(),
        })
        .collect();
    let aux = choose_aux(&scans, target);
    drop(scans);
    give_back_freed_memory();
    Ok(Plan {
        target,
        inputs,
        formats,
        aux,
        functions_written: functions.len(),
        functions,
        functions_duplicates,
        module_aux,
        sections,
        input_crcs,
        counts,
        actions: by_input(res.actions, sources.len()),
        routes,
        resolved: res.examples,
        resolved_total: res.resolved,
        plan_s: t0.elapsed().as_secs_f64(),
    })
}

/// Pass 1 over input `i`: `verify` reads it (every record fully validated, the checksum and
/// duplicate keys checked: the outputs are made of these bytes, and copies that the policy drops
/// are checked too), and in the same reading `Gather` notes what the plan needs.
pub(super) fn scan_input(
    i: usize,
    s: &Source<'_>,
    router: &dyn Router,
    target: Format,
    detect: bool,
    set_memory: usize,
) -> Result<Scan, MergeError> {
    let format =
        crate::rdb::reader::parse_header(s.data).map_err(|error| MergeError::Input { file: s.name.clone(), error })?;
    let sc = Scan {
        format,
        aux: Vec::new(),
        functions: Vec::new(),
        module_aux: Vec::new(),
        sections: vec![Section::new(9, 0)],
        counts: vec![BTreeMap::new(); router.outputs()],
        src_dbs: BTreeMap::new(),
        skipped: 0,
        rejected_dbs: BTreeMap::new(),
        unassigned: 0,
        examples: Vec::new(),
        refused: Vec::new(),
        refused_total: 0,
        keys_set: SpilledBuckets::with_memory(set_memory),
        crc: (0, 0),
        keys: 0,
        warnings: Vec::new(),
        routes: RouteLog::new(router.outputs()),
        logs: None,
    };
    let gather = Gather {
        input: i,
        name: &s.name,
        router,
        format,
        target,
        detect,
        joined: std::sync::Mutex::new(Joined::new(sc, router)),
    };
    let (keys, crc) = validate_input(s, &gather)?;
    let j = gather.joined.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut sc = j.sc;
    // Written out now: the write buffers of every input's logs are not held together.
    sc.logs = sc.routes.take().and_then(RouteLog::finish);
    let t = j.trailer.ok_or_else(|| MergeError::Io(format!("{}: the reading stopped early", s.name)))?;
    if sc.keys != keys {
        return Err(MergeError::Io(format!("{}: pass 1 met {} keys where verify counted {keys}", s.name, sc.keys)));
    }
    if let Some(last) = sc.sections.last_mut() {
        last.end = t.eof_offset;
    }
    sc.crc = (t.eof_offset + 1, crc);
    if j.aux_dropped > 0 {
        sc.warnings.push(format!(
            "{} AUX fields left out (beyond {MAX_AUX} names or {} KiB; servers ignore fields they do not know)",
            j.aux_dropped,
            MAX_AUX_BYTES >> 10
        ));
    }
    if t.trailing_bytes > 0 {
        sc.warnings.push(format!("{} bytes after the checksum left out", t.trailing_bytes));
    }
    Ok(sc)
}

/// Returns memory freed on the pool's threads (the parts of pass 1) to the OS: glibc keeps a
/// thread's freed blocks in its arena, and pass 2 would carry them as resident memory.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // Safety: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs `verify` over input `s`, feeding `gather`: its first error fails the plan. Returns the
/// keys verify counted and the CRC-64 it computed.
fn validate_input(s: &Source<'_>, gather: &Gather<'_>) -> Result<(u64, u64), MergeError> {
    let opts = crate::verify::Options { keep_going: false, max_errors: 1, now_ms: 0, target: None };
    let release = |r: std::ops::Range<usize>| {
        s.advance(r.len() as u64);
        if let Some(input) = s.input {
            input.release(r);
        }
    };
    let rep = crate::verify::verify_bytes_observed(&s.name, s.data, s.input, &opts, &release, gather);
    if rep.ok {
        let crc = rep.checksum.computed.as_deref().and_then(|c| u64::from_str_radix(c, 16).ok());
        let crc = crc.ok_or_else(|| MergeError::Io(format!("{}: verify computed no checksum", s.name)))?;
        return Ok((rep.keys, crc));
    }
    let error = match rep.errors.first() {
        Some(e) => {
            let err = Error::new(e.kind, e.offset, e.message.clone());
            match (&e.key, e.db) {
                (Some(k), db) => err.in_key(db.unwrap_or(0), k),
                (None, db) => err.in_db(db),
            }
        }
        None => Error::corrupt(0, format!("{} errors", rep.errors_not_listed)),
    };
    Err(MergeError::Input { file: s.name.clone(), error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_targets() {
        let r = |v| Format { flavor: Flavor::Redis, version: v };
        let v80 = Format { flavor: Flavor::Valkey, version: 80 };
        assert_eq!(default_target(&[r(9), r(11), r(10)]), r(11));
        assert_eq!(default_target(&[r(11), v80]), v80);
    }

    /// Key sets written out to their temporary files give the plan that sets held in memory
    /// give: the same conflicts, counts and actions (all-types.rdb twice, every key a conflict).
    #[test]
    fn spilled_key_sets_plan_the_same() {
        use crate::merge::{MergeRouter, OnConflict, RenameTemplate};
        let data =
            std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/all-types.rdb")).unwrap();
        let sources = [Source::new("a.rdb", &data), Source::new("b.rdb", &data)];
        let router = MergeRouter { into_db0: true };
        for on_conflict in [OnConflict::Rename, OnConflict::Last] {
            let rename =
                (on_conflict == OnConflict::Rename).then(|| RenameTemplate::parse("{input}:{db}:{key}").unwrap());
            let opts = Options { on_conflict, rename, ..Default::default() };
            let held = plan_with(&sources, &router, &opts, usize::MAX).unwrap();
            // 268 keys an input: the set is written out once past 256 entries.
            let spilled = plan_with(&sources, &router, &opts, 256).unwrap();
            // Keys of one name in several dbs of a copy make one group: fewer groups than keys.
            assert!(held.resolved_total >= 268 / 4, "{on_conflict:?}: {}", held.resolved_total);
            assert_eq!(spilled.resolved_total, held.resolved_total);
            assert_eq!(spilled.counts, held.counts);
            let acts = |p: &Plan| -> Vec<Vec<(u64, Option<Vec<u8>>)>> {
                p.actions
                    .iter()
                    .map(|a| {
                        a.iter()
                            .map(|x| match &x.action {
                                Action::Drop => (x.key_offset, None),
                                Action::Rename(n) => (x.key_offset, Some(n.clone())),
                            })
                            .collect()
                    })
                    .collect()
            };
            assert_eq!(acts(&spilled), acts(&held));
            assert!(acts(&held).iter().map(|a| a.len()).sum::<usize>() >= 268, "every copy of one input at least");
        }
        // A rename that meets an existing key is found in spilled sets too.
        let opts = Options {
            on_conflict: OnConflict::Rename,
            rename: Some(RenameTemplate::parse("{key}").unwrap()),
            ..Default::default()
        };
        for memory in [usize::MAX, 256] {
            match plan_with(&sources, &router, &opts, memory) {
                Err(MergeError::Conflicts(c)) => {
                    assert!(c.iter().all(|c| c.kind == crate::merge::ConflictKind::Rename), "{memory}");
                    assert!(!c.is_empty());
                }
                other => panic!("{memory}: rename clashes expected, got {:?}", other.err()),
            }
        }
    }
}
