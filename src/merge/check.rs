//! The checks around pass 2, so that nothing is renamed that was not checked: every input still
//! holds what pass 1 verified (`check_input`), and every written output holds what was planned
//! (`check_output`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::{DbPlan, MergeError, Source};
use crate::display::quoted;
use crate::error::Error;
use crate::rdb::reader::{Reader, Record};
use crate::rdb::types::Format;
use crate::rdb::writer::Copied;

/// What pass 2 wrote into one output.
#[derive(Debug, Clone)]
pub struct OutputStats {
    pub bytes: u64,
    pub checksum: Option<u64>,
    /// The records this pass encoded itself (not copied from an input), to be read back.
    pub encoded: Encoded,
}

/// Where an output holds records that pass 2 encoded rather than copied (see `write_files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoded {
    /// Byte ranges of the output, in order; the rest is header, AUX, functions and module data
    /// before the first range (read back whole), key records copied from validated inputs, and
    /// the EOF and checksum.
    Ranges(Vec<std::ops::Range<u64>>),
    /// Too many to list (every key re-encoded for another format, or module data after the
    /// keys): the whole output is read back.
    All,
}

/// One written and checked output file.
#[derive(Debug, Clone, Serialize)]
pub struct OutputReport {
    pub file: String,
    pub bytes: u64,
    pub keys: u64,
    pub expires: u64,
    pub dbs: Vec<DbPlan>,
}

/// Checks that input `s` still holds what pass 1 verified: its CRC-64 over the bytes up to its
/// EOF (`end`), from the CRCs of the pieces the writers copied straight from it (`copies`, of
/// every input) and, for the rest, its bytes now. An input that changed between the passes
/// (so that the outputs hold bytes pass 1 never validated) fails the run.
pub(super) fn check_input(s: &Source<'_>, (end, want): (u64, u64), copies: &mut [Copied]) -> Result<(), MergeError> {
    use rayon::prelude::*;
    let id = s.data.as_ptr() as usize;
    let end = (end as usize).min(s.data.len());
    copies.sort_unstable_by_key(|c| (c.src, c.start));
    let from = copies.partition_point(|c| c.src < id);
    // The input in order: pieces whose CRC the writers computed, and stretches read now, in
    // steps of at most `UNIT` bytes (on every core; each step's pages are given back after it,
    // those it shares with the pieces around it too, so RSS stays flat).
    enum Seg {
        Known(u64, usize),
        Read(usize, usize),
    }
    let mut segs: Vec<Seg> = Vec::new();
    let read = |segs: &mut Vec<Seg>, from: usize, to: usize| {
        let mut at = from;
        while at < to {
            let next = to.min((at / crate::pass::UNIT + 1) * crate::pass::UNIT);
            segs.push(Seg::Read(at, next));
            at = next;
        }
    };
    let mut at = 0usize;
    for c in copies[from..].iter().take_while(|c| c.src == id) {
        // The same bytes copied twice (one input given twice) count once.
        if c.start < at || c.start + c.len > end {
            continue;
        }
        read(&mut segs, at, c.start);
        segs.push(Seg::Known(c.crc, c.len));
        at = c.start + c.len;
    }
    read(&mut segs, at, end);
    let crcs: Vec<(u64, usize)> = segs
        .par_iter()
        .map(|seg| match *seg {
            Seg::Known(c, len) => (c, len),
            Seg::Read(a, b) => {
                let c = crate::crc::crc64(&s.data[a..b]);
                if let Some(i) = s.input {
                    i.release(a / PAGE * PAGE..b.next_multiple_of(PAGE));
                }
                (c, b - a)
            }
        })
        .collect();
    let crc = crcs.iter().enumerate().fold(
        0u64,
        |crc, (n, &(c, len))| {
            if n == 0 { c } else { crate::crc::combine(crc, c, len as u64) }
        },
    );
    if end == 0 || crc == want {
        return Ok(());
    }
    Err(MergeError::Input {
        file: s.name.clone(),
        error: Error::corrupt(
            0,
            format!(
                "the input changed while it was read (CRC-64 {crc:016x} now, {want:016x} when it was verified): nothing written"
            ),
        ),
    })
}

/// Checks a written file without reading all of it again. What it holds is known: the header,
/// AUX fields, function libraries and module data (read back and parsed whole), database
/// headers and key records this pass encoded (each range read back and parsed, values walked),
/// key records copied byte for byte from inputs that pass 1 fully validated (their counts per
/// database checked by the writer against the plan as they were written), then EOF and the
/// CRC-64 the writer computed over every byte it wrote (read back and compared). Its size on
/// disk must be what was written. When the encoded records are too many to list, or come after
/// the keys, the whole file goes through `verify` instead.
pub(super) fn check_output(
    tmp: &Path,
    target: &Path,
    planned: &BTreeMap<u64, DbPlan>,
    st: &OutputStats,
) -> Result<OutputReport, MergeError> {
    let name = target.display().to_string();
    let fail = |m: String| MergeError::Io(format!("{name}: the written file failed its check: {m}"));
    let data = crate::input::open(tmp).map_err(|e| fail(format!("cannot re-read it: {e}")))?;
    if data.len() as u64 != st.bytes {
        return Err(fail(format!("{} bytes on disk, {} written", data.len(), st.bytes)));
    }
    let dbs: Vec<DbPlan> = planned.values().filter(|c| c.keys > 0 || c.dropped > 0).copied().collect();
    let (keys, expires) = dbs.iter().fold((0, 0), |(k, e), c| (k + c.keys, e + c.expires));
    let report = OutputReport { file: name.clone(), bytes: st.bytes, keys, expires, dbs };
    let ranges = match &st.encoded {
        Encoded::Ranges(r) if !r.is_empty() => r,
        // No key at all (a small file), or too many encoded records: read it all.
        _ => return verify_whole(&name, &data, &report),
    };
    // The trailer: EOF, then the checksum the writer computed.
    let tail = if st.checksum.is_some() { 9 } else { 1 };
    let Some(eof) = data.len().checked_sub(tail) else {
        return Err(fail("shorter than its trailer".into()));
    };
    if data[eof] != 0xFF {
        return Err(fail(format!("no EOF opcode at offset {eof}")));
    }
    if let Some(c) = st.checksum
        && data[eof + 1..] != c.to_le_bytes()
    {
        return Err(fail("the stored checksum is not the one computed while writing".into()));
    }
    // The head (header to the first database), then every encoded range. Pages are given back
    // behind the parse, gaps included: a fault maps a whole folio of the page cache (up to
    // megabytes on ext4), which reaches past the range into the copied bytes around it.
    let format = crate::rdb::reader::parse_header(&data).map_err(|e| fail(e.to_string()))?;
    let head = 9..ranges[0].start as usize;
    let mut last_end = 0u64;
    let mut released = 0usize;
    let mut release = |to: usize| {
        if to > released + RELEASE_STEP {
            data.release(released / PAGE * PAGE..to);
            released = to;
        }
    };
    for r in std::iter::once(head.start as u64..head.end as u64).chain(ranges.iter().cloned()) {
        if r.start < last_end || r.end > eof as u64 {
            return Err(fail(format!("encoded records at {}..{} out of place", r.start, r.end)));
        }
        last_end = r.end;
        parse_back(&data, format, r.start as usize..r.end as usize, r.start == 9, planned, &mut release)
            .map_err(|m| fail(format!("records at {}..{}: {m}", r.start, r.end)))?;
    }
    Ok(report)
}

/// Pages of a written output are given back in steps of this many bytes while it is checked.
const RELEASE_STEP: usize = 1 << 20;
/// The page size `Input::release` works in.
const PAGE: usize = 4096;

/// Parses `data[r]` (whole records, in place in the written file `data` of `format`): they must
/// end exactly at `r.end`, values must be valid, and databases must be planned ones. `head`: the
/// records before the first database (no key records allowed there). `release(to)` is told how
/// far the parse has gone (pages behind it may be given back).
fn parse_back(
    data: &[u8],
    format: Format,
    r: std::ops::Range<usize>,
    head: bool,
    planned: &BTreeMap<u64, DbPlan>,
    release: &mut dyn FnMut(usize),
) -> Result<(), String> {
    let mut reader = Reader::resume(data, format, r.start, 0);
    let mut walker = crate::rdb::walk::Walker::new();
    while (reader.offset() as usize) < r.end {
        let Some(rec) = reader.next() else { break };
        match rec.map_err(|e| e.to_string())? {
            Record::Key(k) if head => return Err(format!("key {} before any database", quoted(&k.key))),
            Record::Key(k) => walker
                .walk(&k.value, &mut crate::rdb::value::Validate)
                .map_err(|e| format!("key {}: {e}", quoted(&k.key)))?,
            Record::SelectDb { db } if planned.get(&db).is_none_or(|c| c.keys == 0) => {
                return Err(format!("db {db} is not planned"));
            }
            _ => {}
        }
        release(reader.offset() as usize);
    }
    if reader.trailer().is_none() && reader.offset() as usize == r.end {
        Ok(())
    } else {
        Err("they do not end where they should".into())
    }
}

/// Re-reads a written file with `verify`: it must be valid and hold exactly the planned counts.
fn verify_whole(name: &str, data: &crate::input::Input, report: &OutputReport) -> Result<OutputReport, MergeError> {
    let fail = |m: String| MergeError::Io(format!("{name}: the written file failed its check: {m}"));
    let opts = crate::verify::Options { keep_going: false, max_errors: 10, now_ms: 0, target: None };
    let rep = crate::verify::verify_bytes_releasing(name, data, &opts, &|r| data.release(r));
    if !rep.ok {
        let e = rep.errors.first().map_or_else(String::new, |e| {
            let key = e.key.as_ref().map(|k| format!(", key {}", quoted(k))).unwrap_or_default();
            format!("at offset {}{key}: {}", e.offset, e.message)
        });
        return Err(MergeError::Invalid(format!(
            "{name}: the written file failed its check ({e}); values are copied unchanged, so an input \
             holds this broken value (check the inputs with `rdbtool verify`); nothing written"
        )));
    }
    let got: Vec<(u64, u64, u64)> = rep.dbs.iter().map(|d| (d.db, d.keys, d.expires)).collect();
    let want: Vec<(u64, u64, u64)> =
        report.dbs.iter().filter(|c| c.keys > 0).map(|c| (c.db, c.keys, c.expires)).collect();
    if got != want {
        return Err(fail(format!("found (db, keys, expires) {got:?}, planned {want:?}")));
    }
    Ok(report.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{MergeRouter, OnConflict, Options, RenameTemplate, plan, write};

    /// The check of a written output is real: the file as written passes, and a broken encoded
    /// record, a changed checksum or a short file each fail it.
    #[test]
    fn the_output_check_catches_what_it_claims() {
        let data = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/small-db0.rdb")).unwrap();
        // The same file twice under `rename`: every key is a conflict, every copy renamed (encoded).
        let sources = [Source::new("a.rdb", &data), Source::new("b.rdb", &data)];
        let router = MergeRouter { into_db0: false };
        let rename = Some(RenameTemplate::parse("{input}:{key}").unwrap());
        let opts = Options { on_conflict: OnConflict::Rename, rename, ..Default::default() };
        let plan = plan(&sources, &router, &opts).unwrap();
        let (bytes, st) = write(&plan, &sources, &router, vec![Vec::new()]).unwrap().remove(0);
        let Encoded::Ranges(ranges) = &st.encoded else { panic!("ranges expected: {:?}", st.encoded) };
        assert!(ranges.len() > 2, "SELECTDB and renamed keys: {ranges:?}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.rdb");
        let check = |b: &[u8]| {
            std::fs::write(&file, b).unwrap();
            check_output(&file, &file, &plan.counts[0], &st)
        };
        let rep = check(&bytes).unwrap();
        assert_eq!(rep.keys, plan.counts[0].values().map(|c| c.keys).sum::<u64>());
        // A renamed key record whose type byte is garbage.
        let mut broken = bytes.clone();
        broken[ranges[1].start as usize] = 0xEE;
        let e = check(&broken).unwrap_err().to_string();
        assert!(e.contains("failed its check"), "{e}");
        // The stored checksum changed.
        let mut crc = bytes.clone();
        *crc.last_mut().unwrap() ^= 1;
        assert!(check(&crc).unwrap_err().to_string().contains("checksum"));
        // A byte short.
        assert!(check(&bytes[..bytes.len() - 1]).unwrap_err().to_string().contains("bytes on disk"));
    }
}
