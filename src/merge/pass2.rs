//! Pass 2's entry points: `write` fills every output (one output by whole pieces, several by
//! pass 1's logs when it can, else by reading the inputs with a thread per output) and checks
//! that each input still holds what pass 1 verified; `write_files` does it into temporary files,
//! fsyncs and checks each output, and renames them only when all passed.

use super::check::{Encoded, OutputReport, OutputStats, check_input, check_output};
use super::plan::Plan;
use super::route::Router;
use super::write::{Out, Tracker, copy_all, write_threads};
use super::{MergeError, Source};
use crate::output::AtomicFile;
use crate::rdb::writer::{Copied, KernelCopy, RdbWriter};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Pass 2: writes every output (`outs[o]` for router output `o`). One output is written by the
/// calling thread; several (split) each by a thread of its own: by pass 1's logs when they are
/// usable (`write_logged::usable`), else fed by the one reader of each input in batches, so that
/// copying, checksums and writes run on every core.
pub fn write<'a, W: KernelCopy + Send>(
    plan: &Plan,
    sources: &[Source<'a>],
    router: &dyn Router,
    outs: Vec<W>,
) -> Result<Vec<(W, OutputStats)>, MergeError> {
    // Write buffers share 256 MiB (at most 1 MiB each).
    let limit = ((256usize << 20) / outs.len().max(1)).min(1 << 20);
    let pages: Vec<crate::pass::Pages<'a>> = sources.iter().map(|s| s.pages(outs.len() as u32)).collect();
    let pages = &pages;
    let mut ws: Vec<Out<'_, W>> = outs
        .into_iter()
        .map(|w| Out { w: RdbWriter::with_buffer(w, plan.target, limit), enc: Tracker(Encoded::Ranges(Vec::new())) })
        .collect();
    // Every writer is a consumer of every input's pages (it copies forward through each; the
    // reader of pass 2 moves with the copies, so it is not counted).
    for Out { w, .. } in &mut ws {
        for (s, p) in sources.iter().zip(pages) {
            w.release_into(s.data, p);
            if let Some(f) = s.input.and_then(|i| i.file()) {
                w.copy_from_file(s.data, f);
            }
        }
    }
    for (o, out) in ws.iter_mut().enumerate() {
        out.w.track_copies();
        out.head(plan, o)?;
    }
    let done = if ws.len() == 1 {
        copy_all(plan, sources, router, &mut ws[..])?;
        ws.into_iter().enumerate().map(|(o, out)| out.finish(plan, o)).collect::<Result<Vec<_>, _>>()?
    } else if super::write_logged::usable(plan, ws.len()) {
        super::write_logged::write_routed(plan, sources, router, ws)?
    } else {
        write_threads(plan, sources, router, ws)?
    };
    let mut copies: Vec<Copied> = Vec::new();
    let done: Vec<(W, OutputStats)> = done
        .into_iter()
        .map(|(w, st, c)| {
            copies.extend(c);
            (w, st)
        })
        .collect();
    for (i, s) in sources.iter().enumerate() {
        check_input(s, plan.input_crcs[i], &mut copies)?;
    }
    Ok(done)
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timings {
    /// Pass 1: reading the inputs, collisions, counts.
    pub plan_s: f64,
    /// Pass 2: copying into the outputs (fsync included).
    pub write_s: f64,
    /// Checking every output (see `check_output`: encoded parts read back, the rest known).
    pub verify_s: f64,
}

/// Pass 2 into files: each output under a temporary name in its directory, fsynced, checked
/// (`check_output`: nothing is renamed that was not checked), and renamed only when every output
/// passed. Returns the reports and timings; on any failure no target is
/// created and the temporary files are removed.
pub fn write_files(
    plan: &Plan,
    sources: &[Source<'_>],
    router: &dyn Router,
    targets: &[PathBuf],
    inputs: &[&Path],
    force: bool,
) -> Result<(Vec<OutputReport>, Timings), MergeError> {
    let t0 = Instant::now();
    let mut files = Vec::with_capacity(targets.len());
    for t in targets {
        let f = AtomicFile::create(t, inputs, force).map_err(|e| MergeError::Io(format!("{}: {e}", t.display())))?;
        files.push(f);
    }
    // Write errors name the output by its index; the user wants its path.
    let written = write(plan, sources, router, files).map_err(|e| match e {
        MergeError::Io(m) => MergeError::Io(
            targets
                .iter()
                .enumerate()
                .find_map(|(o, t)| m.strip_prefix(&format!("output {o}: ")).map(|r| format!("{}: {r}", t.display())))
                .unwrap_or(m),
        ),
        other => other,
    })?;
    let mut files = Vec::with_capacity(written.len());
    for (mut f, st) in written {
        f.sync().map_err(|e| MergeError::Io(format!("{}: {e}", f.target().display())))?;
        files.push((f, st));
    }
    let write_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    // One output at a time: a whole-file `verify` runs on every core, and its memory stays that of one.
    let checks: Vec<Result<OutputReport, MergeError>> = files
        .iter()
        .enumerate()
        .map(|(o, (f, st))| check_output(f.tmp_path(), f.target(), &plan.counts[o], st))
        .collect();
    let reports: Vec<OutputReport> = checks.into_iter().collect::<Result<_, _>>()?;
    let verify_s = t1.elapsed().as_secs_f64();
    for (f, _) in files {
        let target = f.target().to_path_buf();
        f.commit().map_err(|e| MergeError::Io(format!("{}: {e}", target.display())))?;
    }
    Ok((reports, Timings { plan_s: plan.plan_s, write_s, verify_s }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{MergeRouter, OnConflict, Options, plan};
    use crate::rdb::reader::{Reader, Record};

    /// An input that changes between pass 1 and pass 2 (same structure, one value byte changed,
    /// so every copied record still parses and the output's own CRC matches what was written)
    /// fails pass 2: merge (whole pieces) and split (record by record, threads), and through
    /// `write_files` nothing is renamed.
    #[test]
    fn an_input_changed_between_the_passes_is_refused() {
        let data = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/all-types.rdb")).unwrap();
        // The last byte of the last string value's data in the file (a plain string record).
        let mut changed = data.clone();
        let mut at = None;
        for r in Reader::new(&data).unwrap() {
            if let Record::Key(k) = r.unwrap()
                && k.value.type_byte == 0
                && k.value.bytes.len() > 4
            {
                at = Some(k.value.offset as usize + k.value.bytes.len() - 1);
            }
        }
        let at = at.expect("a string value");
        changed[at] ^= 0x01;
        let layout = crate::split::Layout::even(3).unwrap();
        let split = crate::split::SplitRouter { layout: &layout, dbs: crate::split::DbSelect::All };
        let merge = MergeRouter { into_db0: true };
        let opts = Options { on_conflict: OnConflict::Last, ..Default::default() };
        for router in [&merge as &dyn Router, &split] {
            let before = [Source::new("in.rdb", &data)];
            let after = [Source::new("in.rdb", &changed)];
            let plan = plan(&before, router, &opts).unwrap();
            let outs = || (0..router.outputs()).map(|_| Vec::new()).collect::<Vec<Vec<u8>>>();
            // Unchanged: written; changed: refused.
            write(&plan, &before, router, outs()).unwrap();
            let Err(e) = write(&plan, &after, router, outs()) else { panic!("a changed input is refused") };
            let e = e.to_string();
            assert!(e.contains("changed while it was read"), "{e}");
        }
        // Through files: no output appears.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.rdb");
        let before = [Source::new("in.rdb", &data)];
        let after = [Source::new("in.rdb", &changed)];
        let plan = plan(&before, &merge, &opts).unwrap();
        let e = write_files(&plan, &after, &merge, std::slice::from_ref(&target), &[], false).err().unwrap();
        assert!(e.to_string().contains("changed"), "{e}");
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "temporary files removed");
        write_files(&plan, &before, &merge, std::slice::from_ref(&target), &[], false).unwrap();
        assert!(target.exists());
    }
}
