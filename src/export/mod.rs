//! The export engine: reads an RDB file record by record, applies a `Filter`, and streams each
//! selected key to one output format (JSON Lines, one JSON array, or Redis protocol commands).
//!
//! Nothing is held beyond the key being written: the format writers are `Sink`s that render a
//! value while the walker decodes it, into one output buffer that is handed to the writer between
//! keys (and inside a value only when it grows past `Out::SPILL_AT`). A key that fails is rolled
//! back from that buffer, so the output never holds half a record unless a single value was
//! bigger than the spill threshold.

pub(crate) mod json_text;
pub mod jsonl;
mod out;
pub mod parquet;
mod parts;
pub mod resp;

use std::io::{self, Write};

use crate::error::{Error, ErrorKind};
use crate::filter::Filter;
use crate::pass::{Follow, Pages};
use crate::rdb::cursor::Elem;
use crate::rdb::keyset::KeySet;
use crate::rdb::reader::{KeyRecord, Reader, Record, Trailer};
use crate::rdb::types::{Format, id};
use crate::rdb::value::{RawValue, Sink};
use crate::rdb::walk::Walker;

pub(crate) use out::Blocks;
pub use out::Out;

/// The output formats of `rdbtool export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum OutputFormat {
    /// One JSON object per key, one per line.
    Jsonl,
    /// One JSON array of the same objects.
    Json,
    /// Redis protocol commands (for `redis-cli --pipe`).
    Resp,
    /// One Parquet file per input in the directory of -o, a row per key (see `parquet`).
    Parquet,
}

/// What `export` writes and which keys it selects.
#[derive(Debug, Clone)]
pub struct Options {
    /// The output format.
    pub format: OutputFormat,
    /// JSON: add `encoding`, `idle`, `freq`, `value_bytes`.
    pub with_meta: bool,
    /// Options of the RESP format (ignored by the others).
    pub resp: resp::RespOptions,
    /// Which keys are written (the others are read past, not decoded).
    pub filter: Filter,
}

/// What an export did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Keys written.
    pub keys: u64,
    /// Empty collections skipped (Redis skips them on load too).
    pub skipped_empty: u64,
    /// Hashes skipped because every field had expired (`--expired exclude`).
    pub skipped_all_fields_expired: u64,
    /// Notes for stderr (empty keys skipped, AOF tail not read, data a format cannot carry).
    pub warnings: Vec<String>,
    /// Whether reading stopped at `--limit` before the end of the file.
    pub stopped_at_limit: bool,
}

/// Why an export failed.
#[derive(Debug)]
pub enum ExportError {
    /// The input is invalid (exit 1).
    Input(Error),
    /// The input is valid but cannot be written as asked (exit 2), e.g. a type the target RDB
    /// version of `--restore` lacks.
    Refused(String),
    /// Writing the output failed.
    Write(io::Error),
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportError::Input(e) => write!(f, "{e}"),
            ExportError::Refused(m) => write!(f, "{m}"),
            ExportError::Write(e) => write!(f, "writing output: {e}"),
        }
    }
}

impl From<io::Error> for ExportError {
    fn from(e: io::Error) -> Self {
        ExportError::Write(e)
    }
}

/// Context a format writer gets with each key.
pub struct KeyCtx<'a> {
    /// The filter of the export (writers ask it which hash fields count as expired).
    pub filter: &'a Filter,
    /// The file's format (for DUMP payload versions).
    pub format: Format,
}

/// One output format.
pub trait KeyWriter {
    /// Called once before anything else is written (a JSON array opens here).
    fn begin(&mut self, _out: &mut Out<'_>) {}
    /// Writes one key; `Ok(false)` when it decided to leave the key out.
    fn key(
        &mut self,
        k: &KeyRecord<'_>,
        w: &mut Walker,
        out: &mut Out<'_>,
        ctx: &KeyCtx<'_>,
    ) -> Result<bool, ExportError>;
    /// A function library (FUNCTION2 record), in file order before the keys.
    fn function(&mut self, _source: &[u8], _out: &mut Out<'_>) {}
    /// Called once after the last key (a JSON array closes here).
    fn finish(&mut self, _out: &mut Out<'_>) {}
    /// Notes collected along the way.
    fn warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Exports `data` (a whole RDB file, or an RDB-preamble AOF file) to `w`. `progress` is called
/// now and then with the file offset reached: nothing before it is read again, so the caller
/// may release those pages.
pub fn export(
    data: &[u8],
    opts: &Options,
    w: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, ExportError> {
    export_pass(data, &Pages::unmapped(data.len()), opts, w, progress)
}

/// `export` of a mapped input whose pages (`pages`, with the export as its one consumer) are
/// given back behind the reader and its checksum.
pub fn export_pass(
    data: &[u8],
    pages: &Pages<'_>,
    opts: &Options,
    w: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, ExportError> {
    let threads = rayon::current_num_threads();
    let json = matches!(opts.format, OutputFormat::Jsonl | OutputFormat::Json);
    if json && parts::worth_it(data.len(), threads, opts) {
        let array = opts.format == OutputFormat::Json;
        return parts::run(data, pages, opts, array, w, parts::PART, threads, progress);
    }
    match opts.format {
        OutputFormat::Jsonl => run(data, pages, opts, jsonl::JsonWriter::new(false, opts.with_meta), w, progress),
        OutputFormat::Json => run(data, pages, opts, jsonl::JsonWriter::new(true, opts.with_meta), w, progress),
        OutputFormat::Resp => run(data, pages, opts, resp::RespWriter::new(opts.resp.clone()), w, progress),
        OutputFormat::Parquet => {
            Err(ExportError::Refused("Parquet is written by export::parquet::export_files".into()))
        }
    }
}

/// The JSON export (`opts.format` json or jsonl) of `data` read in parts of about `part` bytes
/// on `threads` threads whatever its size: for tests that the output does not depend on how the
/// file was cut.
#[doc(hidden)]
pub fn export_in_parts(
    data: &[u8],
    opts: &Options,
    w: &mut dyn Write,
    part: usize,
    threads: usize,
) -> Result<Summary, ExportError> {
    let array = match opts.format {
        OutputFormat::Jsonl => false,
        OutputFormat::Json => true,
        _ => return Err(ExportError::Refused("only the JSON formats are written in parts".into())),
    };
    parts::run(data, &Pages::unmapped(data.len()), opts, array, w, part, threads.max(1), &mut |_| {})
}

/// Skipped keys named one by one on stderr; past this, only counted.
const MAX_LISTED: u64 = 20;

fn run<K: KeyWriter>(
    data: &[u8],
    pages: &Pages<'_>,
    opts: &Options,
    mut kw: K,
    w: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, ExportError> {
    let filter = &opts.filter;
    let mut reader = Reader::new(data).map_err(ExportError::Input)?;
    let ctx = KeyCtx { filter, format: reader.format() };
    let mut walker = Walker::new();
    let mut out = Out::new(w);
    let mut tally = Tally::default();
    kw.begin(&mut out);
    // The CRC-64 follows the reader, so that every page is read once and can then be released.
    let mut crc = Follow::new(data, pages);
    let mut records = 0u64;
    // Every key of the file, for the duplicate check (a replay of both copies would give the
    // union of two values; Redis refuses such a file).
    let mut keys = KeySet::new();
    let stop = export_records(
        &mut reader,
        usize::MAX,
        &mut kw,
        &mut walker,
        &mut out,
        &ctx,
        &mut tally,
        &mut |db, key, at| keys.insert(db, key, at),
        &mut |r| {
            // Everything before this record is exported.
            crc.upto(r.record_offset() as usize);
            records += 1;
            if records.is_multiple_of(4096) {
                progress(r.offset());
            }
        },
    )?;
    let mut summary = tally.summary();
    summary.stopped_at_limit = matches!(stop, Stop::Limit);
    if !summary.stopped_at_limit {
        check_trailer(data, reader.trailer(), |end| crc.finish(end), &mut summary)?;
        keys.check(data).map_err(ExportError::Input)?;
    }
    kw.finish(&mut out);
    out.finish()?;
    progress(reader.offset());
    summary.warnings.extend(kw.warnings());
    Ok(summary)
}

/// What exporting a run of records gathered besides its output.
#[derive(Default)]
struct Tally {
    keys: u64,
    skipped_empty: u64,
    skipped_all_fields_expired: u64,
    /// Notes for stderr in file order; `true` marks an empty key skipped (listed up to
    /// `MAX_LISTED` in all, the rest counted).
    notes: Vec<(bool, String)>,
    /// A SELECTDB record was read.
    selected: bool,
}

impl Tally {
    /// Adds the tally of the records that follow.
    fn add(&mut self, t: Tally) {
        self.keys += t.keys;
        self.skipped_empty += t.skipped_empty;
        self.skipped_all_fields_expired += t.skipped_all_fields_expired;
        self.selected |= t.selected;
        let mut listed = self.notes.iter().filter(|n| n.0).count() as u64;
        for n in t.notes {
            if n.0 {
                if listed >= MAX_LISTED {
                    continue;
                }
                listed += 1;
            }
            self.notes.push(n);
        }
    }

    fn summary(self) -> Summary {
        let mut warnings: Vec<String> = self.notes.into_iter().map(|n| n.1).collect();
        if self.skipped_empty > MAX_LISTED {
            warnings.push(format!("... {} empty keys skipped in all", self.skipped_empty));
        }
        Summary {
            keys: self.keys,
            skipped_empty: self.skipped_empty,
            skipped_all_fields_expired: self.skipped_all_fields_expired,
            warnings,
            stopped_at_limit: false,
        }
    }
}

/// Why `export_records` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The file ended (the reader holds its trailer).
    End,
    /// The next record starts here, at or after the end asked for.
    At(usize),
    /// `--limit` keys were written.
    Limit,
    /// A buffer that holds its output (`Out::held`) grew too big: nothing it holds counts.
    Overflow,
}

/// Exports the records from the reader's position until the file ends or a record starts at or
/// after `end`: each key through `kw` into `out`, `seen(db, key, key offset)` for every key
/// (selected or not), `tick(reader)` after each record read. The one loop of the whole file
/// read at once and of its parts read on several threads.
#[allow(clippy::too_many_arguments)]
fn export_records<K: KeyWriter>(
    reader: &mut Reader<'_>,
    end: usize,
    kw: &mut K,
    walker: &mut Walker,
    out: &mut Out<'_>,
    ctx: &KeyCtx<'_>,
    tally: &mut Tally,
    seen: &mut dyn FnMut(u64, &[u8], u64),
    tick: &mut dyn FnMut(&Reader<'_>),
) -> Result<Stop, ExportError> {
    let filter = ctx.filter;
    let mut listed = tally.notes.iter().filter(|n| n.0).count() as u64;
    loop {
        let at = reader.offset() as usize;
        if at >= end {
            return Ok(Stop::At(at));
        }
        let Some(rec) = reader.next() else { return Ok(Stop::End) };
        let rec = rec.map_err(ExportError::Input)?;
        tick(reader);
        let k = match rec {
            Record::Key(k) => {
                seen(k.db, &k.key, k.key_offset);
                k
            }
            Record::Function { source } => {
                kw.function(&source, out);
                out.end_key()?;
                continue;
            }
            Record::FunctionPreGa { name, .. } => {
                tally.notes.push((
                    false,
                    format!(
                        "function {} is in the Redis 7.0 release-candidate format, which no GA server loads; left out",
                        crate::display::quoted(&name)
                    ),
                ));
                continue;
            }
            Record::SelectDb { .. } => {
                tally.selected = true;
                continue;
            }
            _ => continue,
        };
        if !filter.matches(&k) {
            continue;
        }
        if filter.limit == Some(0) {
            return Ok(Stop::Limit);
        }
        out.begin_key();
        match kw.key(&k, walker, out, ctx) {
            Ok(true) => tally.keys += 1,
            Ok(false) => tally.skipped_all_fields_expired += 1,
            Err(ExportError::Input(e)) if e.kind == ErrorKind::EmptyValue && out.rollback() => {
                tally.skipped_empty += 1;
                if listed < MAX_LISTED {
                    listed += 1;
                    tally.notes.push((true, format!("skipped {e}")));
                }
            }
            Err(e) => return Err(e),
        }
        out.end_key()?;
        if out.overflowed {
            return Ok(Stop::Overflow);
        }
        if filter.limit.is_some_and(|l| tally.keys >= l) {
            return Ok(Stop::Limit);
        }
    }
}

/// The stored CRC-64 must match (0 = not computed); bytes after it are reported, not read.
/// `crc(end)` computes the checksum of the bytes before `end`.
fn check_trailer(
    data: &[u8],
    trailer: Option<Trailer>,
    crc: impl FnOnce(usize) -> u64,
    summary: &mut Summary,
) -> Result<(), ExportError> {
    let Some(t) = trailer else { return Ok(()) };
    if let Some(stored) = t.stored_checksum.filter(|&s| s != 0) {
        let computed = crc(t.eof_offset as usize + 1);
        if let (_, Some(e)) = crate::pass::checksum_verdict(t.eof_offset, Some(stored), computed) {
            return Err(ExportError::Input(e));
        }
    }
    if t.trailing_bytes > 0 {
        let looks_resp = data.get(data.len() - t.trailing_bytes as usize).is_some_and(|&b| b == b'*' || b == b'#');
        summary.warnings.push(if looks_resp {
            format!(
                "{} bytes of AOF commands after the RDB part were not exported (only the RDB preamble is read)",
                t.trailing_bytes
            )
        } else {
            format!("{} bytes after the end of the RDB data were ignored", t.trailing_bytes)
        });
    }
    Ok(())
}

/// Hash types whose fields may carry their own TTL.
pub fn has_field_ttls(v: &RawValue<'_>) -> bool {
    use id::*;
    matches!(v.type_byte, HASH_22 | HASH_LISTPACK_EX_PRE_GA | HASH_METADATA | HASH_LISTPACK_EX)
}

/// With `--expired exclude`: whether every field of a field-TTL hash has expired (a server
/// loading the file drops such a hash). Costs one extra validating walk, for these types only.
pub fn all_fields_expired(k: &KeyRecord<'_>, w: &mut Walker, filter: &Filter) -> Result<bool, ExportError> {
    let Some(cutoff) = filter.field_cutoff() else { return Ok(false) };
    if !has_field_ttls(&k.value) {
        return Ok(false);
    }
    struct Live {
        cutoff: i64,
        live: u64,
    }
    impl Sink for Live {
        const WANTS_BYTES: bool = false;
        fn hash_field(&mut self, _f: Elem<'_>, _v: Elem<'_>, t: Option<i64>) {
            if t.is_none_or(|t| t >= self.cutoff) {
                self.live += 1;
            }
        }
    }
    let mut live = Live { cutoff, live: 0 };
    w.walk(&k.value, &mut live).map_err(|e| ExportError::Input(e.in_key(k.db, &k.key)))?;
    Ok(live.live == 0)
}

/// Decimal text of an unsigned integer.
#[inline]
pub(crate) fn push_u64(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(crate::rdb::decimal::format_u64(n, &mut [0u8; 20]));
}

#[inline]
pub(crate) fn push_i64(buf: &mut Vec<u8>, n: i64) {
    if n < 0 {
        buf.push(b'-');
    }
    push_u64(buf, n.unsigned_abs());
}

/// A score as the shortest text that parses back to the same double (`inf`, `-inf` spelled out;
/// `-0.0` keeps its sign); both JSON and Redis's `strtod` read it.
pub(crate) fn push_f64(buf: &mut Vec<u8>, v: f64) {
    use serde_json::ser::Formatter;
    if v == f64::INFINITY {
        buf.extend_from_slice(b"inf");
    } else if v == f64::NEG_INFINITY {
        buf.extend_from_slice(b"-inf");
    } else {
        // Writing to a Vec cannot fail.
        let _ = serde_json::ser::CompactFormatter.write_f64(buf, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let mut b = Vec::new();
        push_u64(&mut b, u64::MAX);
        b.push(b' ');
        push_i64(&mut b, i64::MIN);
        b.push(b' ');
        push_i64(&mut b, 0);
        assert_eq!(b, b"18446744073709551615 -9223372036854775808 0");
        for v in [0.0, -0.0, 1.0, 1.5, -2.25, 1e-300, 5e-324, f64::MAX, 1.2345678901234568e17, 3.0e20] {
            let mut b = Vec::new();
            push_f64(&mut b, v);
            let s = String::from_utf8(b).unwrap();
            let back: f64 = s.parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{s}");
            // Valid JSON numbers.
            let j: serde_json::Value = serde_json::from_str(&s).unwrap();
            assert_eq!(j.as_f64().unwrap().to_bits(), v.to_bits(), "{s}");
        }
    }
}
