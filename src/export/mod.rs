//! The export engine: reads an RDB file record by record, applies a `Filter`, and streams each
//! selected key to one output format (JSON Lines, one JSON array, or Redis protocol commands).
//!
//! Nothing is held beyond the key being written: the format writers are `Sink`s that render a
//! value while the walker decodes it, into one output buffer that is handed to the writer between
//! keys (and inside a value only when it grows past `Out::SPILL_AT`). A key that fails is rolled
//! back from that buffer, so the output never holds half a record unless a single value was
//! bigger than the spill threshold.

pub mod jsonl;
pub mod parquet;
pub mod resp;

use std::io::{self, Write};

use crate::error::{Error, ErrorKind};
use crate::filter::Filter;
use crate::pass::{Follow, Pages};
use crate::rdb::cursor::Elem;
use crate::rdb::keyset::KeySet;
use crate::rdb::reader::{KeyRecord, Reader, Record};
use crate::rdb::types::{Format, id};
use crate::rdb::value::{RawValue, Sink};
use crate::rdb::walk::Walker;

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

/// The output buffer shared by the format writers.
pub struct Out<'w> {
    /// Output rendered and not yet handed to the writer; format writers append to it.
    pub buf: Vec<u8>,
    w: &'w mut dyn Write,
    err: Option<io::Error>,
    mark: usize,
    spilled: bool,
}

impl<'w> Out<'w> {
    /// Between keys, the buffer goes to the writer once it holds this much.
    const FLUSH_AT: usize = 256 << 10;
    /// Inside one value, only past this (so a failing key can usually be rolled back).
    const SPILL_AT: usize = 16 << 20;

    /// A buffer in front of `w`.
    pub fn new(w: &'w mut dyn Write) -> Out<'w> {
        Out { buf: Vec::with_capacity(Self::FLUSH_AT + (64 << 10)), w, err: None, mark: 0, spilled: false }
    }

    /// Called by sinks after each element: hands a very large value over in pieces.
    #[inline]
    pub fn check(&mut self) {
        if self.buf.len() >= Self::SPILL_AT {
            self.spill();
        }
    }

    #[cold]
    fn spill(&mut self) {
        if self.err.is_none()
            && let Err(e) = self.w.write_all(&self.buf)
        {
            self.err = Some(e);
        }
        self.buf.clear();
        self.spilled = true;
    }

    fn begin_key(&mut self) {
        self.mark = self.buf.len();
        self.spilled = false;
    }

    /// Drops what the current key wrote; false if part of it already went out.
    fn rollback(&mut self) -> bool {
        if self.spilled {
            return false;
        }
        self.buf.truncate(self.mark);
        true
    }

    fn end_key(&mut self) -> io::Result<()> {
        if self.buf.len() >= Self::FLUSH_AT && self.err.is_none() {
            let r = self.w.write_all(&self.buf);
            self.buf.clear();
            r?;
        }
        match self.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        self.w.flush()
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
    match opts.format {
        OutputFormat::Jsonl => run(data, pages, opts, jsonl::JsonWriter::new(false, opts.with_meta), w, progress),
        OutputFormat::Json => run(data, pages, opts, jsonl::JsonWriter::new(true, opts.with_meta), w, progress),
        OutputFormat::Resp => run(data, pages, opts, resp::RespWriter::new(opts.resp.clone()), w, progress),
        OutputFormat::Parquet => {
            Err(ExportError::Refused("Parquet is written by export::parquet::export_files".into()))
        }
    }
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
    let mut summary = Summary::default();
    kw.begin(&mut out);
    // The CRC-64 follows the reader, so that every page is read once and can then be released.
    let mut crc = Follow::new(data, pages);
    let mut records = 0u64;
    // Every key of the file, for the duplicate check (a replay of both copies would give the
    // union of two values; Redis refuses such a file).
    let mut keys = KeySet::new();
    while let Some(rec) = reader.next() {
        let rec = rec.map_err(ExportError::Input)?;
        // Everything before this record is exported.
        crc.upto(reader.record_offset() as usize);
        records += 1;
        if records.is_multiple_of(4096) {
            progress(reader.offset());
        }
        let k = match rec {
            Record::Key(k) => {
                keys.insert(k.db, &k.key, k.key_offset);
                k
            }
            Record::Function { source } => {
                kw.function(&source, &mut out);
                out.end_key()?;
                continue;
            }
            Record::FunctionPreGa { name, .. } => {
                summary.warnings.push(format!(
                    "function {} is in the Redis 7.0 release-candidate format, which no GA server loads; left out",
                    crate::display::quoted(&name)
                ));
                continue;
            }
            _ => continue,
        };
        if !filter.matches(&k) {
            continue;
        }
        if filter.limit == Some(0) {
            summary.stopped_at_limit = true;
            break;
        }
        out.begin_key();
        match kw.key(&k, &mut walker, &mut out, &ctx) {
            Ok(true) => summary.keys += 1,
            Ok(false) => summary.skipped_all_fields_expired += 1,
            Err(ExportError::Input(e)) if e.kind == ErrorKind::EmptyValue && out.rollback() => {
                summary.skipped_empty += 1;
                if summary.skipped_empty <= MAX_LISTED {
                    summary.warnings.push(format!("skipped {e}"));
                }
            }
            Err(e) => return Err(e),
        }
        out.end_key()?;
        if filter.limit.is_some_and(|l| summary.keys >= l) {
            summary.stopped_at_limit = true;
            break;
        }
    }
    if summary.skipped_empty > MAX_LISTED {
        summary.warnings.push(format!("... {} empty keys skipped in all", summary.skipped_empty));
    }
    if !summary.stopped_at_limit {
        check_trailer(data, &reader, crc, &mut summary)?;
        keys.check(data).map_err(ExportError::Input)?;
    }
    kw.finish(&mut out);
    out.finish()?;
    progress(reader.offset());
    summary.warnings.extend(kw.warnings());
    Ok(summary)
}

/// The stored CRC-64 must match (0 = not computed); bytes after it are reported, not read.
fn check_trailer(
    data: &[u8],
    reader: &Reader<'_>,
    crc: Follow<'_, '_, '_>,
    summary: &mut Summary,
) -> Result<(), ExportError> {
    let Some(t) = reader.trailer() else { return Ok(()) };
    if let Some(stored) = t.stored_checksum.filter(|&s| s != 0) {
        let computed = crc.finish(t.eof_offset as usize + 1);
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
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
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
