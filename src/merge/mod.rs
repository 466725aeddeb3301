//! Merging RDB files, and the two-pass engine that `split` shares.
//!
//! Inputs are memory-mapped; nothing of them is held in memory beyond what the plan needs.
//!
//! Pass 1 (`plan`) reads every input once: `verify` itself reads it (in parts on every core,
//! every value validated, the CRC-64 and duplicate keys checked), and in that same reading an
//! observer (`scan::Gather`) notes what the plan needs, part by part, replayed in file order. It
//! counts keys per (output, target db), keeps AUX fields, function libraries and module AUX
//! records (small), and, when two inputs or two source dbs can meet in one target db, a compact
//! key set per input: 16 bytes per key (a 64-bit fingerprint of target db and key, plus input
//! number and key location) in 256 buckets, of which at most 16 MiB stay in memory (the rest is
//! written to a temporary file, `keyset::SpilledBuckets`). Once pass 1 ends, each bucket of every
//! input is read back, sorted and searched on its own. Equal fingerprints are confirmed by
//! re-reading the keys from the inputs. The conflict policy then decides, per colliding key,
//! which copies are dropped or renamed, and the counts are corrected, so that every RESIZEDB of
//! pass 2 holds the true number of keys and TTLs before its first key is written.
//!
//! Pass 2 (`write`) reads the inputs again and copies each key record's bytes into its output
//! (`RdbWriter`), one target database at a time in ascending order. A merge copies whole pieces
//! of an input between the records it drops or renames, by `copy_file_range` when the input is
//! a file (`KernelCopy`: the CRC-64 of each piece is read back from the output). A split whose
//! records are copied as they are into one target db copies each output's records by the log
//! pass 1 wrote of them (`route_log`, `write_logged`), one writer thread per output, instead of
//! reading the records again record by record. An input whose source dbs
//! map to several target dbs is read once per target db, up to the end of its last section for
//! that db.
//!
//! `write_files` wraps pass 2 for files: temporary names, fsync, our own `verify` of every
//! output, then the renames.

mod check;
mod conflicts;
mod keyloc;
mod pass2;
mod plan;
mod policy;
mod records;
mod route;
mod route_log;
mod scan;
mod write;
mod write_logged;

pub use check::{OutputReport, OutputStats};
pub use conflicts::{Conflict, ConflictKind, Occurrence};
pub use pass2::{Timings, write, write_files};
pub use plan::{Plan, default_target, plan};
pub use policy::{OnConflict, RenameTemplate};
pub use route::{DbRoute, MergeRouter, Router};

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Error;
use crate::rdb::types::Format;

/// One input: a display name and the whole file.
pub struct Source<'a> {
    pub name: String,
    pub data: &'a [u8],
    /// The mapped file, when `data` is one: pages behind the readers are released as they go.
    pub input: Option<&'a crate::input::Input>,
    /// Bytes of work done on this source are added here (for a progress bar): each pass over
    /// it (verify with the plan, write) counts its length once.
    pub progress: Option<&'a std::sync::atomic::AtomicU64>,
}

impl<'a> Source<'a> {
    pub fn new(name: impl Into<String>, data: &'a [u8]) -> Source<'a> {
        Source { name: name.into(), data, input: None, progress: None }
    }
    pub fn mapped(name: impl Into<String>, input: &'a crate::input::Input) -> Source<'a> {
        Source { name: name.into(), data: input, input: Some(input), progress: None }
    }
    /// Counts the work done on this source into `p` (two passes: 2 x its length in all).
    pub fn with_progress(mut self, p: &'a std::sync::atomic::AtomicU64) -> Source<'a> {
        self.progress = Some(p);
        self
    }
    fn advance(&self, bytes: u64) {
        if let Some(p) = self.progress {
            p.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The pages of this source for `consumers` readers (`crate::pass`): given back to the OS
    /// once every consumer is done with them, when the source is a mapped file.
    pub(crate) fn pages(&self, consumers: u32) -> crate::pass::Pages<'a> {
        match self.input {
            Some(i) => crate::pass::Pages::new(i, consumers),
            None => crate::pass::Pages::unmapped(self.data.len()),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub on_conflict: OnConflict,
    /// With `OnConflict::Rename` (default `{db}:{key}`).
    pub rename: Option<RenameTemplate>,
    /// Output format; default: the newest input's (Valkey 80 when any input is Valkey).
    pub target: Option<Format>,
}

#[derive(Debug)]
pub enum MergeError {
    /// An input is not a valid RDB file.
    Input { file: String, error: Error },
    /// Collisions under `--on-conflict error` (or that no policy resolves): nothing written.
    Conflicts(Vec<Conflict>),
    /// Keys the router does not accept: source dbs rejected (count per db) and keys in slots
    /// that no output owns (count, and a few (slot, key) examples).
    Rejected { dbs: BTreeMap<u64, u64>, unassigned: u64, examples: Vec<(u16, Vec<u8>)> },
    /// Content the target format cannot hold (messages name the keys), and how many in all.
    Refused { messages: Vec<String>, total: u64 },
    /// A written file failed `verify` (values are copied as they are, so an input holds a
    /// broken value that its checksum did not catch, e.g. one saved with `rdbchecksum no`).
    Invalid(String),
    /// Reading, writing or checking files.
    Io(String),
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::Input { file, error } => write!(f, "{file}: {error}"),
            MergeError::Conflicts(c) => write!(f, "{} conflicts", c.len()),
            MergeError::Rejected { dbs, unassigned, .. } => {
                let n: u64 = dbs.values().sum();
                write!(f, "{n} keys in rejected dbs, {unassigned} keys in unassigned slots")
            }
            MergeError::Refused { messages, total } => {
                write!(f, "{total} records cannot be written: {}", messages.first().map_or("", |s| s))
            }
            MergeError::Invalid(m) | MergeError::Io(m) => f.write_str(m),
        }
    }
}

/// At most this many refusal messages are kept.
pub(crate) const MAX_MESSAGES: usize = 20;
/// At most this many unassigned-slot examples are kept.
pub(crate) const MAX_EXAMPLES: usize = 10;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct DbPlan {
    pub db: u64,
    /// Keys written (RESIZEDB's first number).
    pub keys: u64,
    /// Keys written with a TTL (RESIZEDB's second number).
    pub expires: u64,
    /// Copies kept by `first` / `last` among colliding keys.
    pub kept: u64,
    /// Copies left out by `first` / `last`.
    pub dropped: u64,
    /// Keys written under a new name by `rename`.
    pub renamed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputReport {
    pub file: String,
    pub format: String,
    pub bytes: u64,
    pub keys: u64,
    /// Keys per source db.
    pub dbs: BTreeMap<u64, u64>,
    /// Keys of source dbs that were not selected.
    pub skipped: u64,
    pub warnings: Vec<String>,
}

/// Everything `merge` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub format: String,
    pub inputs: Vec<InputReport>,
    pub output: Option<OutputReport>,
    pub functions: usize,
    pub function_duplicates: usize,
    pub on_conflict: OnConflict,
    /// How many conflicts first / last / rename resolved.
    pub conflicts_resolved: usize,
    /// The first of them (at most 100).
    pub conflicts: Vec<Conflict>,
    pub timings: Timings,
}
