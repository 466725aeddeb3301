//! Several RDB files as one side of a diff: a cluster backup (one file per shard) is one dataset.
//!
//! The files are read one after the other; a key's offset is made global by adding the lengths
//! of the files before its own, so that the joins (`files`, `live::file`) find a key again by one
//! number, as in a single file. A key found in two files of the set is an error, as a key found
//! twice in one file is (Redis refuses such a file, docs/format.md §5.2; a cluster refuses two
//! copies of a key too). Per file: its keys, and the differences whose key hashes to a slot that
//! file alone holds keys of (for a cluster backup: the shard the key belongs to, including keys
//! the file lacks).

use std::borrow::Cow;

use serde::Serialize;

use super::file::FileSide;
use super::{DiffError, Difference, KeySelect, Output};
use crate::pass::Pages;
use crate::rdb::KeyRecord;
use crate::rdb::keyset::KeySet;
use crate::rdb::value::RawValue;
use crate::slot::{SLOTS, key_slot};

/// A side whose keys come from RDB images: one file (`FileSide`) or several (`FileSet`). The
/// joins are written against this.
pub trait KeySource<'a>: Sync + Send {
    /// The side's name in messages and reports.
    fn name(&self) -> &str;
    /// When the side was saved: keys expired by then are expected to be missing from it.
    fn as_of_ms(&self) -> i64;
    /// Every selected key record, in file order; `key_offset` is what `key_at` / `value_at`
    /// take. Duplicates are an error at the end.
    fn for_each_key(
        &mut self,
        select: &KeySelect,
        f: impl FnMut(KeyRecord<'a>) -> Result<(), DiffError>,
    ) -> Result<(), DiffError>;
    /// The key whose string starts at `key_offset`.
    fn key_at(&self, key_offset: u64) -> Result<Cow<'a, [u8]>, DiffError>;
    /// The value of that key.
    fn value_at(&self, key_offset: u64) -> Result<RawValue<'a>, DiffError>;
    /// Passes give pages back `lag` bytes behind the record they read (`FileSide::set_release_lag`).
    fn set_release_lag(&mut self, lag: usize);
    /// Gives back the pages that `key_at` / `value_at` read (`FileSide::forget_pages`).
    fn forget_pages(&self);
    /// The pages of its files (those given by `FileSide::with_pages`).
    fn pages(&self) -> Vec<&'a Pages<'a>>;
}

impl<'a> KeySource<'a> for FileSide<'a> {
    fn name(&self) -> &str {
        &self.name
    }
    fn as_of_ms(&self) -> i64 {
        self.as_of_ms
    }
    fn for_each_key(
        &mut self,
        select: &KeySelect,
        f: impl FnMut(KeyRecord<'a>) -> Result<(), DiffError>,
    ) -> Result<(), DiffError> {
        FileSide::for_each_key(self, select, f)
    }
    fn key_at(&self, key_offset: u64) -> Result<Cow<'a, [u8]>, DiffError> {
        FileSide::key_at(self, key_offset)
    }
    fn value_at(&self, key_offset: u64) -> Result<RawValue<'a>, DiffError> {
        FileSide::value_at(self, key_offset)
    }
    fn set_release_lag(&mut self, lag: usize) {
        FileSide::set_release_lag(self, lag)
    }
    fn forget_pages(&self) {
        FileSide::forget_pages(self)
    }
    fn pages(&self) -> Vec<&'a Pages<'a>> {
        self.pages.into_iter().collect()
    }
}

/// What one file of a set holds (filled by a pass over it).
struct Stats {
    keys: u64,
    /// One bit per hash slot: the file holds a selected key of that slot.
    slots: Vec<u64>,
}

/// Several RDB files as one dataset.
pub struct FileSet<'a> {
    /// The set's name: the files' names (the first ones, and how many).
    pub name: String,
    /// The files, in the order given.
    pub files: Vec<FileSide<'a>>,
    /// The earliest save time of the files.
    pub as_of_ms: i64,
    /// Global offset of each file's first byte.
    bases: Vec<u64>,
    stats: Vec<Stats>,
}

/// One file's part in a comparison (`Summary::files_a` / `files_b`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FileSummary {
    /// The file's name.
    pub file: String,
    /// Its selected keys.
    pub keys: u64,
    /// Differences whose key's slot only this file holds keys of.
    pub differences: u64,
}

/// The name of a set of files: all of them up to three, else the first two and the count.
pub fn set_name(names: &[String]) -> String {
    match names.len() {
        0..=3 => names.join(", "),
        n => format!("{}, {}, ... ({n} files)", names[0], names[1]),
    }
}

impl<'a> FileSet<'a> {
    /// The files as one side (at least one).
    pub fn new(files: Vec<FileSide<'a>>) -> FileSet<'a> {
        let names: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
        let mut bases = Vec::with_capacity(files.len());
        let mut at = 0u64;
        for f in &files {
            bases.push(at);
            at += f.data.len() as u64;
        }
        let as_of_ms = files.iter().map(|f| f.as_of_ms).min().unwrap_or_else(crate::filter::now_ms);
        let stats = files.iter().map(|_| Stats { keys: 0, slots: vec![0; SLOTS as usize / 64] }).collect();
        FileSet { name: set_name(&names), files, as_of_ms, bases, stats }
    }

    /// The file a global offset is in, and the offset within it.
    fn locate(&self, global: u64) -> (usize, u64) {
        let i = self.bases.partition_point(|&b| b <= global).saturating_sub(1);
        (i, global - self.bases[i])
    }

    /// Per file: its keys and the differences attributed to it, from the per-slot difference
    /// counts of a `SlotCounter` (after the comparison).
    pub fn summaries(&self, diffs_per_slot: &[u64]) -> Vec<FileSummary> {
        let mut out: Vec<FileSummary> = self
            .files
            .iter()
            .zip(&self.stats)
            .map(|(f, s)| FileSummary { file: f.name.clone(), keys: s.keys, differences: 0 })
            .collect();
        for (slot, &n) in diffs_per_slot.iter().enumerate().filter(|(_, n)| **n > 0) {
            let (word, bit) = (slot / 64, 1u64 << (slot % 64));
            let mut holders = self.stats.iter().enumerate().filter(|(_, s)| s.slots[word] & bit != 0);
            if let (Some((i, _)), None) = (holders.next(), holders.next()) {
                out[i].differences += n;
            }
        }
        out
    }
}

impl<'a> KeySource<'a> for FileSet<'a> {
    fn name(&self) -> &str {
        &self.name
    }

    fn as_of_ms(&self) -> i64 {
        self.as_of_ms
    }

    fn for_each_key(
        &mut self,
        select: &KeySelect,
        mut f: impl FnMut(KeyRecord<'a>) -> Result<(), DiffError>,
    ) -> Result<(), DiffError> {
        // Within a file, its own pass finds repeats; across files, this set.
        let mut across = (self.files.len() > 1).then(KeySet::new);
        for (i, file) in self.files.iter_mut().enumerate() {
            let base = self.bases[i];
            let stats = &mut self.stats[i];
            stats.keys = 0;
            stats.slots.iter_mut().for_each(|w| *w = 0);
            file.for_each_key(select, |mut k| {
                k.key_offset += base;
                if let Some(s) = &mut across {
                    s.insert(k.db, &k.key, k.key_offset);
                }
                stats.keys += 1;
                let slot = key_slot(&k.key) as usize;
                stats.slots[slot / 64] |= 1 << (slot % 64);
                f(k)
            })?;
        }
        let Some(across) = across else { return Ok(()) };
        let key_of = |o: u64| {
            let (i, local) = self.locate(o);
            crate::rdb::reader::key_at(self.files[i].data, local)
        };
        let dups = across.duplicates_by(&key_of, 1).map_err(|e| DiffError::Input(self.name.clone(), e))?;
        match dups.listed.first() {
            None => Ok(()),
            Some(d) => {
                let (fi, first) = self.locate(d.first);
                let (ai, again) = self.locate(d.again);
                let e = crate::error::Error::new(
                    crate::error::ErrorKind::DuplicateKey,
                    again,
                    format!(
                        "key already in {} (offset {first}): a key belongs in one file of a set ({} repeated keys)",
                        self.files[fi].name, dups.total
                    ),
                )
                .in_key(d.db, &d.key);
                Err(DiffError::Input(self.files[ai].name.clone(), e))
            }
        }
    }

    fn key_at(&self, key_offset: u64) -> Result<Cow<'a, [u8]>, DiffError> {
        let (i, local) = self.locate(key_offset);
        self.files[i].key_at(local)
    }

    fn value_at(&self, key_offset: u64) -> Result<RawValue<'a>, DiffError> {
        let (i, local) = self.locate(key_offset);
        self.files[i].value_at(local)
    }

    fn set_release_lag(&mut self, lag: usize) {
        self.files.iter_mut().for_each(|f| f.set_release_lag(lag));
    }

    fn forget_pages(&self) {
        self.files.iter().for_each(|f| f.forget_pages());
    }

    fn pages(&self) -> Vec<&'a Pages<'a>> {
        self.files.iter().filter_map(|f| f.pages).collect()
    }
}

/// Counts differences per hash slot (for `FileSet::summaries`) and passes them on.
pub struct SlotCounter<'o> {
    out: &'o mut dyn Output,
    /// Differences per slot so far.
    pub per_slot: Vec<u64>,
}

impl<'o> SlotCounter<'o> {
    /// Counts what goes to `out`.
    pub fn new(out: &'o mut dyn Output) -> SlotCounter<'o> {
        SlotCounter { out, per_slot: vec![0; SLOTS as usize] }
    }
}

impl Output for SlotCounter<'_> {
    fn difference(&mut self, d: &Difference) -> std::io::Result<()> {
        self.per_slot[key_slot(&d.key) as usize] += 1;
        self.out.difference(d)
    }
}
