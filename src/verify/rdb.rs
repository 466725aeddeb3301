//! The RDB side of `verify`: checksum, a full structural parse of every value, duplicate keys,
//! the releases that restore the file, and a [`Report`]. Knows nothing of terminals or flags.
//!
//! This file holds the entry points and the verdict (checksum, zeroed blocks, which releases
//! restore the file, `--target`); the per-record checks and verify's side of the parts join are
//! in `rdb_parts.rs`.

use super::progress::Progress;
pub use super::rdb_parts::Observer;
use super::rdb_parts::{Ctx, parse_parts};
use super::report::{ChecksumStatus, Options, Report, TargetVerdict, trailing_bytes_warning};
use crate::error::{Error, ErrorKind};
use std::sync::atomic::AtomicBool;

use crate::pass::Pages;
use crate::rdb::servers::Needs;
use crate::rdb::types::Flavor;

/// Verifies one RDB image. `name` is only used in the report.
pub fn verify_bytes(name: &str, data: &[u8], opts: &Options) -> Report {
    verify_impl(name, data, opts, &|| Pages::unmapped(data.len()), false, None, None)
}

/// `verify_bytes` reading the file in parts of about `part` bytes (each part on whichever
/// thread of the pool is free, joined in file order), whatever its size: for tests that the
/// verdict does not depend on how the file was cut.
#[doc(hidden)]
pub fn verify_bytes_in_parts(name: &str, data: &[u8], opts: &Options, part: usize) -> Report {
    verify_impl(name, data, opts, &|| Pages::unmapped(data.len()), false, Some(part.max(1)), None)
}

/// `verify_bytes` for the RDB preamble of an AOF file: the bytes after its checksum are the
/// command log, whatever the checksum (the caller reports on them).
pub fn verify_preamble(name: &str, data: &[u8], opts: &Options) -> Report {
    verify_impl(name, data, opts, &|| Pages::unmapped(data.len()), true, None, None)
}

/// `verify_bytes` of a mapped input, whose pages are given back behind the parse and the
/// checksum (src/pass.rs): RSS stays flat on big files.
pub fn verify_input(name: &str, input: &crate::input::Input, opts: &Options) -> Report {
    verify_impl(name, input, opts, &|| Pages::new(input, CONSUMERS), false, None, None)
}

/// `verify_bytes`, calling `release(range)` for stretches of `data` it will not read again, so a
/// memory-mapped input can give their pages back (RSS stays flat on big files).
pub fn verify_bytes_releasing(
    name: &str,
    data: &[u8],
    opts: &Options,
    release: &(dyn Fn(std::ops::Range<usize>) + Sync),
) -> Report {
    verify_impl(name, data, opts, &|| Pages::with_release(data.len(), CONSUMERS, release), false, None, None)
}

/// `verify_bytes_releasing` with an [`Observer`] fed in the same reading. When `data` is the
/// mapped `input`, pages read ahead to find part boundaries are given back through it at once
/// (the look-ahead of every part of a big file would otherwise stay mapped until the parse
/// reaches it: RSS that grows with the file).
pub fn verify_bytes_observed(
    name: &str,
    data: &[u8],
    input: Option<&crate::input::Input>,
    opts: &Options,
    release: &(dyn Fn(std::ops::Range<usize>) + Sync),
    observer: &dyn Observer,
) -> Report {
    let pages = || match input.filter(|i| i.len() == data.len()) {
        Some(i) => Pages::with_release_of(i, CONSUMERS, release),
        None => Pages::with_release(data.len(), CONSUMERS, release),
    };
    verify_impl(name, data, opts, &pages, false, None, Some(observer))
}

/// The consumers of an input's pages in one parse: the parse itself, and the checksum.
const CONSUMERS: u32 = 2;

fn verify_impl<'a>(
    name: &str,
    data: &[u8],
    opts: &Options,
    pages: &dyn Fn() -> Pages<'a>,
    preamble: bool,
    part: Option<usize>,
    observer: Option<&dyn Observer>,
) -> Report {
    let observer = observer.filter(|_| !opts.keep_going);
    let (report, guess_crc, guess_end) = parse_with_crc(name, data, opts, pages, Vec::new(), part, observer);
    let (mut report, guess_crc) = {
        // Zeroed blocks at the errors: parse again without the records read from zeros (src/damage.rs).
        let holes = crate::damage::holes_near(data, report.report.errors.iter().map(|e| e.offset));
        if holes.is_empty() {
            (report, guess_crc)
        } else {
            let (r, c, _) = parse_with_crc(name, data, opts, pages, holes, part, None);
            (r, c)
        }
    };
    let holes = report.holes.clone();
    if let (Some(eof), true) = (report.eof_offset, report.report.checksum.status == ChecksumStatus::Unchecked) {
        let end = eof as usize + 1;
        let computed = match guess_crc {
            Some(c) if end == guess_end => c,
            _ => crate::crc::crc64(&data[..end]),
        };
        let stored = report.stored_checksum;
        let (checksum, mismatch) = crate::pass::checksum_verdict(eof, stored, computed);
        if let Some(e) = mismatch {
            report.push_error(&e, opts);
        }
        let trailing = report.report.trailing_bytes;
        if stored == Some(0) && trailing > 0 && !preamble {
            let e = Error::corrupt(
                eof + 9,
                format!(
                    "{trailing} bytes after a zero (not computed) checksum: a file saved without a checksum ends at its EOF, so this EOF is most likely a damaged byte; Redis would load only the keys before it and ignore the rest"
                ),
            );
            report.push_error(&e, opts);
        }
        report.report.checksum = checksum;
    }
    crate::damage::explain(&mut report.report.errors, &holes);
    crate::damage::hint_checksum(&mut report.report.errors, data);
    report.finish_errors(opts);
    judge_restorable(&mut report, opts);
    let mut r = report.report;
    if preamble && r.trailing_bytes > 0 {
        let note = trailing_bytes_warning(r.trailing_bytes);
        r.warnings.retain(|w| *w != note);
    }
    r.ok = r.errors.is_empty() && r.errors_not_listed == 0;
    r
}

/// Which releases restore a file that has no error, and the `--target` verdict: a valid file
/// that no release we know restores, or that the target refuses, gets an error.
fn judge_restorable(p: &mut Progress, opts: &Options) {
    p.needs.max_db = p.report.dbs.iter().map(|d| d.db).max();
    let valid = p.report.errors.is_empty() && p.report.errors_not_listed == 0 && p.needs.flavor.is_some();
    if valid {
        let (ok, blocking) = crate::rdb::servers::restorable_by(&p.needs);
        if ok.is_empty() {
            let reasons: Vec<String> =
                blocking.iter().map(|b| format!("{} {}-{}: {}", b.server, b.min, b.max, b.reason)).collect();
            let e = Error::new(
                ErrorKind::Unsupported,
                0,
                format!("no server release we know restores it ({})", reasons.join("; ")),
            );
            p.push_error(&e, opts);
        }
        p.report.restorable_by = ok;
        p.report.blocking = blocking;
    }
    let Some(t) = &opts.target else { return };
    let verdict = if valid { p.needs.verdict(t) } else { Err("the file has errors".to_owned()) };
    let name = crate::rdb::servers::display(t);
    p.report.target = Some(match verdict {
        Ok(requires) => TargetVerdict { server: t.name(), ok: true, reason: None, requires },
        Err(why) => {
            if valid {
                let e = Error::new(ErrorKind::RefusedByTarget, 0, format!("refused by {name}: {why}"));
                p.push_error(&e, opts);
            }
            TargetVerdict { server: t.name(), ok: false, reason: Some(why), requires: Vec::new() }
        }
    });
}

/// One parse with its checksum beside it: the report so far, the CRC of everything before the
/// usual trailer (the last 8 bytes) when it was computed, and where that range ends.
fn parse_with_crc<'a>(
    name: &str,
    data: &[u8],
    opts: &Options,
    pages: &dyn Fn() -> Pages<'a>,
    holes: Vec<(u64, u64)>,
    part: Option<usize>,
    observer: Option<&dyn Observer>,
) -> (Progress, Option<u64>, usize) {
    // The checksum covers what the usual file holds before its trailer: everything up to the
    // EOF byte, then 8 bytes of checksum. Each part computes it over its own range.
    let guess_end = data.len().saturating_sub(8);
    // Two consumers: the parse, and the checksum (which never reads the last 8 bytes).
    let pages = pages();
    pages.done(guess_end..data.len());
    let fresh = || Progress {
        report: Report::empty(name, data.len() as u64, ChecksumStatus::Unchecked),
        eof_offset: None,
        stored_checksum: None,
        db_index: Default::default(),
        needs: Needs::default(),
        holes: holes.clone(),
    };
    let format = match crate::rdb::reader::parse_header(data) {
        Ok(f) => f,
        Err(e) => {
            let mut p = fresh();
            p.push_error(&e, opts);
            pages.done(0..guess_end);
            drop(pages.lane());
            return (p, None, guess_end);
        }
    };
    let start = || {
        let mut p = fresh();
        p.report.magic = Some(match format.flavor {
            Flavor::Redis => "REDIS",
            Flavor::Valkey => "VALKEY",
        });
        p.report.version = Some(format.version);
        p.needs.flavor = Some(format.flavor);
        p.needs.version = format.version;
        p
    };
    let threads = rayon::current_num_threads();
    let step = part.unwrap_or_else(|| crate::rdb::reader::part_size(data.len(), threads));
    // Record boundaries about every `step` bytes (the first part starts after the header).
    let bounds = crate::rdb::reader::boundaries(data, format, step, &|r| pages.forget(r));
    let ctx = Ctx { data, format, opts, holes: &holes, abort: AtomicBool::new(false), observer };
    let (p, crc, resyncs) = parse_parts(&ctx, start(), &bounds, guess_end, &pages, threads);
    if resyncs > 0 && bounds.len() > 1 {
        // Salvage resynchronized somewhere: its search may cross a boundary, so the verdict is
        // the one of a single reading.
        let ctx = Ctx { abort: AtomicBool::new(false), observer: None, ..ctx };
        let unmapped = Pages::unmapped(data.len());
        let (p, crc, _) = parse_parts(&ctx, start(), &[9], guess_end, &unmapped, 1);
        return (p, crc, guess_end);
    }
    (p, crc, guess_end)
}
