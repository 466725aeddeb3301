//! The engine behind `rdbtool diff` and `restore-test`: a logical comparison of two datasets, each
//! an RDB file, a set of RDB files (`set`: a cluster backup, one file per shard) or a live server
//! (`live`).
//!
//! Values are compared as what they mean, not as bytes (encodings differ between versions and LZF
//! output is not reproducible): lists in order, sets / hash fields / zset members as sets, zset
//! scores as doubles (-0.0 == 0), streams by entries, metadata and groups, module values by type
//! and payload. Identical value bytes of the same type are equal without decoding (the common
//! case when a server loaded the file being compared). Expire times are compared with a
//! tolerance; a key missing on a side whose snapshot was taken after the key's expire time is
//! reported as `expired`, not as missing.
//!
//! Memory stays bounded: key sets are joined in hashed partitions. Each side's keys go to one of
//! `PARTITIONS` partitions by a 64-bit hash of (db, key): for file against file, the keys the
//! two files do not hold at the same place (`files`), as key and value fingerprints with the key
//! offset and expire time; for file against a live server (`live`), as two independent 64-bit
//! hashes, the SCAN output keeping the key itself. Partitions live in memory up to
//! `Options::memory_budget` and are spilled to an unnamed temp file beyond it; the join then
//! takes one partition at a time. Values are never held beyond the keys being compared.
//!
//! The modules: `compare` (one key on both sides, or on one), `file` (an RDB file as a side),
//! `set` (several files as one side, and the `KeySource` trait the joins take),
//! `partition` (the spilled partitions), `files` (file against file) and `live` (a server as a
//! side: `live::side`, file against server `live::file`, server against server `live::servers`).

#[cfg(feature = "live")]
pub mod live;

mod compare;
mod file;
mod files;
mod partition;
mod set;

pub use compare::{compare_entries, one_sided};
pub use file::FileSide;
pub use files::diff_files;
#[cfg(feature = "live")]
pub(crate) use partition::{PARTITIONS, Partitions};
pub use set::{FileSet, FileSummary, KeySource, SlotCounter, set_name};

use std::io;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value as Json;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::Error;
use crate::filter::Glob;
use crate::rdb::types::Kind;
use crate::rdb::value::RawValue;

/// What differs about one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    OnlyInA,
    OnlyInB,
    /// Different value types (string vs hash, ...).
    Type,
    /// Same type, different content (the TTL may differ too: both are given).
    Value,
    /// Same value, expire times further apart than the tolerance.
    Ttl,
    /// Missing on one side, but its expire time had passed when that side was read.
    Expired,
}

impl DiffKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::OnlyInA => "only_in_a",
            DiffKind::OnlyInB => "only_in_b",
            DiffKind::Type => "type",
            DiffKind::Value => "value",
            DiffKind::Ttl => "ttl",
            DiffKind::Expired => "expired",
        }
    }
}

/// One side's view of a key in a difference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SideInfo {
    /// The value's type on this side.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Its expire time (unix ms), None without a TTL.
    pub expire_at_ms: Option<i64>,
}

/// One key that differs. As JSON: `{"db","key","kind","a":{"type","expire_at_ms"}|null,"b":...,
/// "detail":...}`, in that order (the names and byte strings of export's JSON; no `detail` when
/// there is none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// The database.
    pub db: u64,
    /// The key.
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub key: Vec<u8>,
    /// What differs.
    pub kind: DiffKind,
    /// The key on side A (absent when it is not there).
    pub a: Option<SideInfo>,
    /// The key on side B.
    pub b: Option<SideInfo>,
    /// For `value`: what differs (first differing members, lengths), in the export vocabulary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Json>,
}

/// Counts of keys by outcome. `same` + the others = keys compared (the union of both sides).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub same: u64,
    pub only_in_a: u64,
    pub only_in_b: u64,
    pub different_value: u64,
    pub different_type: u64,
    pub different_ttl: u64,
    pub expired: u64,
    /// Keys selected on each side (after filters and sampling).
    pub keys_a: u64,
    pub keys_b: u64,
    /// The sampling rate, when sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    /// When side A is a set of several files: each file's keys and differences (`FileSet`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_a: Vec<FileSummary>,
    /// The same for side B.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_b: Vec<FileSummary>,
}

impl Summary {
    pub fn differences(&self) -> u64 {
        self.only_in_a + self.only_in_b + self.different_value + self.different_type + self.different_ttl
    }
    /// Identical: no difference; keys that expired meanwhile do not count against it.
    pub fn identical(&self) -> bool {
        self.differences() == 0
    }
    fn count(&mut self, k: DiffKind) {
        match k {
            DiffKind::OnlyInA => self.only_in_a += 1,
            DiffKind::OnlyInB => self.only_in_b += 1,
            DiffKind::Type => self.different_type += 1,
            DiffKind::Value => self.different_value += 1,
            DiffKind::Ttl => self.different_ttl += 1,
            DiffKind::Expired => self.expired += 1,
        }
    }
}

/// Which keys take part: `--db`, `--key`, `--slot` as in export, and hash sampling. Sampling
/// picks keys by a hash of (db, key), so both sides pick the same keys and a key missing on one
/// side is still found.
#[derive(Debug, Clone, Default)]
pub struct KeySelect {
    pub dbs: Vec<u64>,
    pub globs: Vec<Glob>,
    /// The patterns as given (a single one is passed to SCAN MATCH).
    pub glob_patterns: Vec<Vec<u8>>,
    pub slots: Vec<RangeInclusive<u16>>,
    pub sample_rate: Option<f64>,
}

impl KeySelect {
    pub fn wants_db(&self, db: u64) -> bool {
        self.dbs.is_empty() || self.dbs.contains(&db)
    }

    pub fn matches(&self, db: u64, key: &[u8]) -> bool {
        if !self.wants_db(db) {
            return false;
        }
        if let Some(r) = self.sample_rate
            && r < 1.0
        {
            // The top 53 bits as a fraction in [0, 1); partitions use the low bits.
            let h = key_hash(db, key) >> 11;
            if (h as f64) / ((1u64 << 53) as f64) >= r {
                return false;
            }
        }
        if !self.slots.is_empty() {
            let s = crate::slot::key_slot(key);
            if !self.slots.iter().any(|r| r.contains(&s)) {
                return false;
            }
        }
        self.globs.is_empty() || self.globs.iter().any(|g| g.matches(key))
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Expire times (and stream delivery / seen times) this close are equal.
    pub ttl_tolerance_ms: i64,
    /// Compare PEL delivery times (with the tolerance), and under `strict` consumer seen /
    /// active times too.
    pub stream_times: bool,
    /// Also compare what a restore cannot carry over, so that a faithful restore or AOF replay
    /// still differs: stream consumers' seen / active times (the replay sets them to its own
    /// time) and consumer groups' entries_read (recomputed by the replaying server).
    pub strict: bool,
    /// At most this many differing members listed per value.
    pub max_members: usize,
    pub select: KeySelect,
    /// Bytes of partition entries kept in memory before they are spilled to disk.
    pub memory_budget: usize,
    /// Where spilled partitions go (default: the system temp dir).
    pub temp_dir: Option<PathBuf>,
    /// Keys per pipeline on live servers.
    pub batch: usize,
    /// SCAN COUNT hint.
    pub scan_count: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ttl_tolerance_ms: 2000,
            stream_times: true,
            strict: false,
            max_members: 10,
            select: KeySelect::default(),
            memory_budget: 16 << 20,
            temp_dir: None,
            batch: 512,
            scan_count: 1000,
        }
    }
}

/// Why a diff could not run (exit 2).
#[derive(Debug)]
pub enum DiffError {
    /// A file could not be read as an RDB (which side, the error).
    Input(String, Error),
    /// A live server failed, refused a command or sent an unexpected reply.
    Live(String),
    /// Temp files or other local I/O.
    Io(String, io::Error),
    /// Writing the report failed (a closed pipe ends quietly).
    Write(io::Error),
}

impl std::fmt::Display for DiffError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiffError::Input(n, e) => write!(f, "{n}: {e}"),
            DiffError::Live(m) => write!(f, "{m}"),
            DiffError::Io(what, e) => write!(f, "{what}: {e}"),
            DiffError::Write(e) => write!(f, "writing output: {e}"),
        }
    }
}

impl std::error::Error for DiffError {}

/// Receives differences as they are found.
pub trait Output {
    fn difference(&mut self, d: &Difference) -> io::Result<()>;
}

impl<F: FnMut(&Difference) -> io::Result<()>> Output for F {
    fn difference(&mut self, d: &Difference) -> io::Result<()> {
        self(d)
    }
}

/// Collects every difference (tests, small datasets).
#[derive(Default)]
pub struct Collect(pub Vec<Difference>);
impl Output for Collect {
    fn difference(&mut self, d: &Difference) -> io::Result<()> {
        self.0.push(d.clone());
        Ok(())
    }
}

/// Counts outcomes and passes differences on.
pub(crate) struct Tally<'o> {
    pub summary: Summary,
    out: &'o mut dyn Output,
}

impl<'o> Tally<'o> {
    pub fn new(out: &'o mut dyn Output) -> Tally<'o> {
        Tally { summary: Summary::default(), out }
    }
    pub fn record(&mut self, d: Option<Difference>) -> Result<(), DiffError> {
        match d {
            None => {
                self.summary.same += 1;
                Ok(())
            }
            Some(d) => {
                self.summary.count(d.kind);
                self.out.difference(&d).map_err(DiffError::Write)
            }
        }
    }
}

/// The 64-bit hash of (db, key) that partitions and samples keys.
#[inline]
pub fn key_hash(db: u64, key: &[u8]) -> u64 {
    xxh3_64_with_seed(key, db.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5244_4254)
}

/// A second, independent 64-bit hash of (db, key): with `key_hash`, a 128-bit fingerprint that
/// tells keys apart where re-reading them is too slow (a false match needs a 128-bit collision).
#[inline]
pub fn key_hash2(db: u64, key: &[u8]) -> u64 {
    xxh3_64_with_seed(key, db.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ 0x7264_6274_6F6F_6C32)
}

/// One side of a comparison for one key.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub raw: RawValue<'a>,
    pub expire_at_ms: Option<i64>,
}

impl Entry<'_> {
    fn info(&self) -> SideInfo {
        SideInfo { kind: self.raw.kind(), expire_at_ms: self.expire_at_ms }
    }
}

/// Names of the two sides, for error messages.
#[derive(Debug, Clone)]
pub struct Names {
    pub a: String,
    pub b: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_a_stable_fraction() {
        let sel = KeySelect { sample_rate: Some(0.25), ..KeySelect::default() };
        let n = (0..20_000).filter(|i| sel.matches(0, format!("key:{i}").as_bytes())).count();
        assert!((4_000..6_000).contains(&n), "{n}");
        let again = (0..20_000).filter(|i| sel.matches(0, format!("key:{i}").as_bytes())).count();
        assert_eq!(n, again);
    }
}
