//! `export --format parquet -o DIR`: one Parquet file per input, one row per key with the
//! report's per-key figures (`crate::report`: memory as `MEMORY USAGE` would say, elements,
//! largest element, slot) and what the file says of the key (db, bytes, type, encodings, expiry,
//! LRU idle time / LFU counter). Columns (`SCHEMA`):
//!
//! | column | Parquet type | |
//! |---|---|---|
//! | file | string | the input's path as given |
//! | db | int64 | |
//! | key | binary | the key's bytes (DuckDB: `decode(key)` for text) |
//! | type | string | string, list, set, zset, hash, stream, module |
//! | encoding | string | in memory after load (`OBJECT ENCODING`) |
//! | rdb_encoding | string | in the file |
//! | expire_at | timestamp (ms, UTC), null without TTL | |
//! | memory, elements, largest_element | int64 | as `report --format jsonl` |
//! | slot | int32 | cluster hash slot |
//! | value_bytes | int64 | bytes of the value's serialization in the file |
//! | idle_s, freq | int64, int32, null when the file has none | |
//!
//! Rows are buffered per column and written as a row group every `ROW_GROUP_ROWS` keys (or
//! sooner when the buffered key bytes pass `ROW_GROUP_KEY_BYTES`), so memory stays bounded
//! whatever the file's size. Column chunks are zstd-compressed, strings dictionary-encoded.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use crate::output::AtomicFile;
use crate::report::{KeyRow, Options, scan_file};

/// The Parquet schema: one row per key. `expire_at` is a UTC timestamp in ms (null without a
/// TTL); `memory` is the estimated bytes (`MEMORY USAGE`), `value_bytes` the value's size in the
/// file, `idle_s` / `freq` the LRU / LFU fields when the file holds them.
pub const SCHEMA: &str = "message rdbtool_key {
  required binary file (STRING);
  required int64 db;
  required binary key;
  required binary type (STRING);
  required binary encoding (STRING);
  required binary rdb_encoding (STRING);
  optional int64 expire_at (TIMESTAMP(MILLIS,true));
  required int64 memory;
  required int64 elements;
  required int64 largest_element;
  required int32 slot;
  required int64 value_bytes;
  optional int64 idle_s;
  optional int32 freq;
}";

/// Keys per row group.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Buffered key bytes that end a row group early (long keys).
pub const ROW_GROUP_KEY_BYTES: usize = 32 << 20;

fn pq(e: ParquetError) -> io::Error {
    match e {
        ParquetError::External(e) => io::Error::other(e),
        e => io::Error::other(e.to_string()),
    }
}

/// The columns of the row group being filled. An optional column keeps its present values and
/// one definition level a row (1 present, 0 null).
#[derive(Default)]
struct Columns {
    db: Vec<i64>,
    key: Vec<ByteArray>,
    kind: Vec<ByteArray>,
    encoding: Vec<ByteArray>,
    rdb_encoding: Vec<ByteArray>,
    expire_at: Vec<i64>,
    expire_def: Vec<i16>,
    memory: Vec<i64>,
    elements: Vec<i64>,
    largest: Vec<i64>,
    slot: Vec<i32>,
    value_bytes: Vec<i64>,
    idle: Vec<i64>,
    idle_def: Vec<i16>,
    freq: Vec<i32>,
    freq_def: Vec<i16>,
}

/// Writes key rows to one Parquet file.
pub struct KeyWriter<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    file: ByteArray,
    cols: Columns,
    key_bytes: usize,
    /// Shared values of the few distinct names (type, encodings): one buffer each.
    names: HashMap<&'static str, ByteArray>,
    /// Rows written so far.
    pub rows: u64,
    /// Row groups written so far.
    pub row_groups: u64,
}

impl<W: Write + Send> KeyWriter<W> {
    /// Starts a file whose rows all name `file` as their source.
    pub fn new(out: W, file: &str) -> io::Result<KeyWriter<W>> {
        let schema = Arc::new(parse_message_type(SCHEMA).map_err(pq)?);
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("rdbtool {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = SerializedFileWriter::new(out, schema, Arc::new(props)).map_err(pq)?;
        Ok(KeyWriter {
            writer,
            file: ByteArray::from(file),
            cols: Columns::default(),
            key_bytes: 0,
            names: HashMap::new(),
            rows: 0,
            row_groups: 0,
        })
    }

    fn name(&mut self, s: &'static str) -> ByteArray {
        self.names.entry(s).or_insert_with(|| ByteArray::from(s)).clone()
    }

    /// Adds one key as a row; a full row group is written out (errors are the writer's I/O errors).
    pub fn push(&mut self, r: &KeyRow<'_>) -> io::Result<()> {
        let kind = self.name(r.kind.as_str());
        let encoding = self.name(r.fig.encoding.as_str());
        let rdb_encoding = self.name(r.rdb_encoding);
        let c = &mut self.cols;
        c.db.push(r.db as i64);
        c.key.push(ByteArray::from(r.key.to_vec()));
        c.kind.push(kind);
        c.encoding.push(encoding);
        c.rdb_encoding.push(rdb_encoding);
        match r.expire_at_ms {
            Some(t) => {
                c.expire_at.push(t);
                c.expire_def.push(1);
            }
            None => c.expire_def.push(0),
        }
        c.memory.push(r.fig.memory as i64);
        c.elements.push(r.fig.elements as i64);
        c.largest.push(r.fig.largest_element as i64);
        c.slot.push(r.slot as i32);
        c.value_bytes.push(r.value_bytes as i64);
        match r.idle_s {
            Some(i) => {
                c.idle.push(i.min(i64::MAX as u64) as i64);
                c.idle_def.push(1);
            }
            None => c.idle_def.push(0),
        }
        match r.freq {
            Some(f) => {
                c.freq.push(f as i32);
                c.freq_def.push(1);
            }
            None => c.freq_def.push(0),
        }
        self.key_bytes += r.key.len();
        self.rows += 1;
        if c.db.len() >= ROW_GROUP_ROWS || self.key_bytes >= ROW_GROUP_KEY_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffered rows as one row group.
    pub fn flush(&mut self) -> io::Result<()> {
        let n = self.cols.db.len();
        if n == 0 {
            return Ok(());
        }
        let c = std::mem::take(&mut self.cols);
        let files = vec![self.file.clone(); n];
        let mut rg = self.writer.next_row_group().map_err(pq)?;
        let mut i = 0;
        while let Some(mut col) = rg.next_column().map_err(pq)? {
            match i {
                0 => col.typed::<ByteArrayType>().write_batch(&files, None, None),
                1 => col.typed::<Int64Type>().write_batch(&c.db, None, None),
                2 => col.typed::<ByteArrayType>().write_batch(&c.key, None, None),
                3 => col.typed::<ByteArrayType>().write_batch(&c.kind, None, None),
                4 => col.typed::<ByteArrayType>().write_batch(&c.encoding, None, None),
                5 => col.typed::<ByteArrayType>().write_batch(&c.rdb_encoding, None, None),
                6 => col.typed::<Int64Type>().write_batch(&c.expire_at, Some(&c.expire_def), None),
                7 => col.typed::<Int64Type>().write_batch(&c.memory, None, None),
                8 => col.typed::<Int64Type>().write_batch(&c.elements, None, None),
                9 => col.typed::<Int64Type>().write_batch(&c.largest, None, None),
                10 => col.typed::<Int32Type>().write_batch(&c.slot, None, None),
                11 => col.typed::<Int64Type>().write_batch(&c.value_bytes, None, None),
                12 => col.typed::<Int64Type>().write_batch(&c.idle, Some(&c.idle_def), None),
                13 => col.typed::<Int32Type>().write_batch(&c.freq, Some(&c.freq_def), None),
                _ => return Err(io::Error::other("schema has more columns than rows fill")),
            }
            .map_err(pq)?;
            col.close().map_err(pq)?;
            i += 1;
        }
        rg.close().map_err(pq)?;
        self.key_bytes = 0;
        self.row_groups += 1;
        Ok(())
    }

    /// Writes the last row group and the footer; gives back the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        self.writer.into_inner().map_err(pq)
    }
}

/// What one input gave.
#[derive(Debug, Clone)]
pub struct FileResult {
    /// The input RDB file.
    pub input: PathBuf,
    /// The Parquet file written for it.
    pub output: PathBuf,
    /// Rows written (one per key that passed the filter).
    pub rows: u64,
    /// Row groups written.
    pub row_groups: u64,
    /// Why the input could not be read to its end (no output is left then).
    pub error: Option<String>,
}

/// Output names: each input's file name with `.parquet` for `.rdb`; when two inputs share a
/// name, their paths with `/` as `_`.
pub fn output_names(inputs: &[PathBuf], dir: &Path) -> Vec<PathBuf> {
    let stem = |p: &Path| {
        let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "input".into());
        n.strip_suffix(".rdb").map(str::to_owned).unwrap_or(n)
    };
    let mut seen = HashMap::new();
    for p in inputs {
        *seen.entry(stem(p)).or_insert(0usize) += 1;
    }
    inputs
        .iter()
        .map(|p| {
            let s = stem(p);
            let name = if seen[&s] > 1 {
                let full = p.to_string_lossy();
                let full = full.strip_suffix(".rdb").unwrap_or(&full);
                full.trim_start_matches("./").trim_start_matches('/').replace('/', "_")
            } else {
                s
            };
            dir.join(format!("{name}.parquet"))
        })
        .collect()
}

/// Writes `DIR/<input>.parquet` for every input, one after the other; each output appears
/// under its name only when its input was read whole. Write errors end the run.
pub fn export_files(inputs: &[PathBuf], dir: &Path, opts: &Options) -> io::Result<Vec<FileResult>> {
    let outputs = output_names(inputs, dir);
    let input_paths: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    let mut results = Vec::new();
    for (input, output) in inputs.iter().zip(outputs) {
        let name = input.display().to_string();
        let mut res = FileResult { input: input.clone(), output: output.clone(), rows: 0, row_groups: 0, error: None };
        let data = match crate::input::open(input) {
            Ok(d) => d,
            Err(e) => {
                res.error = Some(format!("cannot read: {e}"));
                results.push(res);
                continue;
            }
        };
        let file = AtomicFile::create(&output, &input_paths, true)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", output.display())))?;
        let mut w = KeyWriter::new(file, &name)?;
        let agg = scan_file(&name, &data, opts, &crate::pass::Pages::new(&data, 1), &mut |r| w.push(r))?;
        w.flush()?;
        res.rows = w.rows;
        res.row_groups = w.row_groups;
        let file = w.finish()?;
        res.error = agg.files.first().and_then(|f| f.error.clone());
        if res.error.is_some() {
            file.discard();
        } else {
            file.commit().map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", output.display())))?;
        }
        results.push(res);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{Encoding, KeyFigures};
    use crate::rdb::types::Kind;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    #[test]
    fn row_groups_are_flushed_as_they_fill() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.parquet");
        let mut w = KeyWriter::new(std::fs::File::create(&path).unwrap(), "in.rdb").unwrap();
        let n = 2 * ROW_GROUP_ROWS + 5;
        for i in 0..n {
            let key = format!("key:{i}");
            let row = KeyRow {
                db: (i % 3) as u64,
                key: key.as_bytes(),
                kind: Kind::String,
                rdb_encoding: "string",
                expire_at_ms: (i % 2 == 0).then_some(1_800_000_000_000 + i as i64),
                slot: crate::slot::key_slot(key.as_bytes()),
                value_bytes: 3,
                idle_s: None,
                freq: (i % 5 == 0).then_some(7),
                fig: KeyFigures { memory: 56, elements: 1, largest_element: 3, encoding: Encoding::Embstr },
            };
            w.push(&row).unwrap();
            // Nothing beyond the row group being filled is held.
            assert!(w.cols.db.len() < ROW_GROUP_ROWS);
        }
        assert_eq!(w.row_groups, 2);
        w.finish().unwrap();
        let r = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let md = r.metadata();
        assert_eq!(md.num_row_groups(), 3);
        assert_eq!(md.file_metadata().num_rows(), n as i64);
        assert_eq!(md.row_group(2).num_rows(), 5);
        assert_eq!(md.file_metadata().schema_descr().num_columns(), 14);
    }

    #[test]
    fn output_names_stay_apart() {
        let d = Path::new("/out");
        let names =
            output_names(&[PathBuf::from("a/dump.rdb"), PathBuf::from("b/dump.rdb"), PathBuf::from("c.rdb")], d);
        assert_eq!(names, [d.join("a_dump.parquet"), d.join("b_dump.parquet"), d.join("c.parquet")]);
    }
}
