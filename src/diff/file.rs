//! An RDB file as a side of a diff: its header and snapshot time, a pass over its selected keys
//! in file order (giving back pages read), and a key's value found again by its offset.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{DiffError, KeySelect};
use crate::error::{Error, ErrorKind};
use crate::pass::Pages;
use crate::rdb::cursor::Cursor;
use crate::rdb::keyset::KeySet;
use crate::rdb::reader::{Reader, Record, key_at};
use crate::rdb::types::Format;
use crate::rdb::value::RawValue;
use crate::rdb::walk::skip_value;

/// An RDB image to compare.
pub struct FileSide<'a> {
    pub name: String,
    pub data: &'a [u8],
    pub format: Format,
    /// When the file was saved (its `ctime` AUX field), else now: keys that had expired by then
    /// are expected to be missing from it.
    pub as_of_ms: i64,
    /// Bytes after the RDB's checksum (an AOF tail, not compared).
    pub trailing_bytes: u64,
    /// The input's pages (`pass::Pages`): a sequential pass is one consumer of them and gives
    /// back what it has read, so that a file larger than RAM keeps RSS flat.
    pub(super) pages: Option<&'a Pages<'a>>,
    /// Bytes read by sequential passes, added as they go (for a progress bar).
    progress: Option<&'a AtomicU64>,
    /// How far behind the record it reads a sequential pass gives pages back.
    release_lag: usize,
}

/// By default a sequential pass releases pages this far behind the record it reads (lookups in
/// flight still point into them; a released page is read again from the file if needed).
const RELEASE_LAG: usize = 64 << 20;

/// Key fingerprints a pass holds in memory for its duplicate check (16 bytes each: 4 MiB, up to
/// twice that in buffer capacity), the rest in a temp file.
const KEYSET_ENTRIES: usize = 1 << 18;

/// The progress counter moves in steps of this many bytes.
const PROGRESS_STEP: u64 = 1 << 20;

impl<'a> FileSide<'a> {
    /// Reads the header and the AUX fields (no key is read).
    pub fn open(name: impl Into<String>, data: &'a [u8]) -> Result<FileSide<'a>, DiffError> {
        let name = name.into();
        let reader = Reader::new(data).map_err(|e| DiffError::Input(name.clone(), e))?;
        let format = reader.format();
        let mut as_of_ms = crate::filter::now_ms();
        for rec in reader {
            match rec {
                Ok(Record::Aux { key, value }) if &*key == b"ctime" => {
                    if let Some(s) = std::str::from_utf8(&value).ok().and_then(|s| s.parse::<i64>().ok()) {
                        as_of_ms = s.saturating_mul(1000);
                    }
                }
                Ok(Record::Aux { .. }) => {}
                _ => break,
            }
        }
        Ok(FileSide {
            name,
            data,
            format,
            as_of_ms,
            trailing_bytes: 0,
            pages: None,
            progress: None,
            release_lag: RELEASE_LAG,
        })
    }

    /// Lets sequential passes give back the pages they have read: the pass is one consumer of
    /// `pages` (made for this file's input).
    pub fn with_pages(mut self, pages: &'a Pages<'a>) -> FileSide<'a> {
        self.pages = Some(pages);
        self
    }

    /// Sequential passes give pages back `lag` bytes behind the record they read (the records
    /// a caller still holds must lie within it to stay mapped).
    pub fn set_release_lag(&mut self, lag: usize) {
        self.release_lag = lag;
    }

    /// Gives every mapped page of the file back now (pages read at random by offset, which no
    /// pass releases; they are read again from the file when needed).
    pub fn forget_pages(&self) {
        if let Some(p) = self.pages {
            p.forget(0..self.data.len());
        }
    }

    /// Adds the bytes each sequential pass reads to `counter`.
    pub fn with_progress(mut self, counter: &'a AtomicU64) -> FileSide<'a> {
        self.progress = Some(counter);
        self
    }

    /// Every selected key record, in file order; `f` gets each. Errors name the file. A key that
    /// appears twice in a database (every key counts, selected or not) is an error at the end of
    /// the pass, as in verify: Redis refuses such a file, and comparing either copy would hide it.
    pub fn for_each_key(
        &mut self,
        select: &KeySelect,
        mut f: impl FnMut(crate::rdb::KeyRecord<'a>) -> Result<(), DiffError>,
    ) -> Result<(), DiffError> {
        let mut reader = Reader::new(self.data).map_err(|e| DiffError::Input(self.name.clone(), e))?;
        let mut lane = self.pages.map(|p| p.lane());
        let mut counted = 0u64;
        // Two files are read at once (file against file): half of a verify's share each.
        let mut keys = KeySet::with_memory(KEYSET_ENTRIES);
        while let Some(rec) = reader.next() {
            if let Record::Key(k) = rec.map_err(|e| DiffError::Input(self.name.clone(), e))? {
                keys.insert(k.db, &k.key, k.key_offset);
                if select.matches(k.db, &k.key) {
                    f(k)?;
                }
            }
            if let Some(lane) = &mut lane {
                lane.upto((reader.offset() as usize).saturating_sub(self.release_lag));
            }
            if let Some(p) = self.progress
                && reader.offset() >= counted + PROGRESS_STEP
            {
                p.fetch_add(reader.offset() - counted, Ordering::Relaxed);
                counted = reader.offset();
            }
        }
        drop(lane);
        if let Some(p) = self.progress {
            p.fetch_add((self.data.len() as u64).saturating_sub(counted), Ordering::Relaxed);
        }
        if let Some(t) = reader.trailer() {
            self.trailing_bytes = t.trailing_bytes;
        }
        keys.check(self.data).map_err(|e| DiffError::Input(self.name.clone(), e))
    }

    /// Keys in the file (for `--sample N`): a pass that reads records without decoding values
    /// (one consumer of the pages given by `with_pages`).
    pub fn count_keys(&self, select: &KeySelect) -> Result<u64, DiffError> {
        let mut n = 0;
        let mut reader = Reader::new(self.data).map_err(|e| DiffError::Input(self.name.clone(), e))?;
        let mut lane = self.pages.map(|p| p.lane());
        while let Some(rec) = reader.next() {
            if let Record::Key(k) = rec.map_err(|e| DiffError::Input(self.name.clone(), e))? {
                n += u64::from(select.matches(k.db, &k.key));
            }
            if let Some(lane) = &mut lane {
                lane.upto(reader.offset() as usize);
            }
        }
        Ok(n)
    }

    /// The value of the key whose string starts at `key_offset` (from a partition entry).
    pub(super) fn value_at(&self, key_offset: u64) -> Result<RawValue<'a>, DiffError> {
        let bad = |e: Error| DiffError::Input(self.name.clone(), e);
        let at = key_offset as usize;
        let type_byte = *self
            .data
            .get(at.wrapping_sub(1))
            .ok_or_else(|| bad(Error::new(ErrorKind::Io, key_offset, "key offset out of range")))?;
        let mut c = Cursor::new(self.data, 0);
        c.seek(at);
        c.str("key").map_err(bad)?;
        let start = c.pos();
        let offset = c.offset();
        skip_value(&mut c, type_byte, self.format).map_err(bad)?;
        Ok(RawValue { type_byte, format: self.format, bytes: &self.data[start..c.pos()], offset })
    }

    pub(super) fn key_at(&self, key_offset: u64) -> Result<std::borrow::Cow<'a, [u8]>, DiffError> {
        key_at(self.data, key_offset).map_err(|e| DiffError::Input(self.name.clone(), e))
    }
}
