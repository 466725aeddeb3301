//! What `verify` reports, for RDB files and AOF sets alike: the one report type both sides of
//! `verify` (`verify::rdb`, `aof::set`) fill in, with its options. It imports neither side, so
//! neither imports the other through it.

use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::rdb::servers::{Blocking, Release, Restorable};

/// How `verify` checks a file: how far it goes after an error, and what "now" and the target release are.
#[derive(Debug, Clone)]
pub struct Options {
    /// Report every bad key instead of stopping at the first error.
    pub keep_going: bool,
    /// At most this many errors are listed (the rest are only counted).
    pub max_errors: usize,
    /// "Now" for counting already-expired keys (unix ms).
    pub now_ms: i64,
    /// The server release that is to restore the file (`--target`): a file it refuses is an
    /// error even when another release would restore it.
    pub target: Option<Release>,
}

impl Default for Options {
    fn default() -> Options {
        Options { keep_going: false, max_errors: 1000, now_ms: now_ms(), target: None }
    }
}

pub use crate::time::now_ms;

pub use crate::pass::{Checksum, ChecksumStatus};

/// Key counts of one database, as the key records say (values are not decoded for this).
#[derive(Debug, Clone, Serialize, Default)]
pub struct DbCounts {
    /// The database number (SELECTDB; 0 when the file has none).
    pub db: u64,
    /// Key records in this database.
    pub keys: u64,
    /// Keys with a TTL (an expire prefix, §1.1).
    pub expires: u64,
    /// Keys whose TTL is before [`Options::now_ms`]: still in the file, dropped by a primary that loads it (§5.2).
    pub already_expired: u64,
}

/// One error of a report: an [`Error`] flattened for output, plus where in an AOF set it is.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorEntry {
    /// What kind of problem (corruption, truncation, ...).
    pub kind: ErrorKind,
    /// Byte offset in the file (for AOF sets, in the file named by [`ErrorEntry::file`]).
    pub offset: u64,
    /// The database of the key being read, when known.
    pub db: Option<u64>,
    /// The key being read, when the error is inside a key record past its key (bytes, not text).
    #[serde(serialize_with = "crate::json::ser_opt_bytes")]
    pub key: Option<Vec<u8>>,
    /// What is wrong, in words, without the offset, db or key.
    pub message: String,
    /// The file of an AOF set the offset is in (absent for RDB files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line of the offset, for AOF commands and manifests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl From<&Error> for ErrorEntry {
    fn from(e: &Error) -> ErrorEntry {
        ErrorEntry {
            kind: e.kind,
            offset: e.offset,
            db: e.db,
            key: e.key.clone(),
            message: e.message.clone(),
            file: None,
            line: None,
        }
    }
}

/// The result of `verify` on one RDB file or AOF set (`--json` prints it as it is).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The path as given on the command line.
    pub file: String,
    /// The verdict: true only when there is no error at all (listed or not). Warnings do not count.
    pub ok: bool,
    /// Size of the input in bytes (for an AOF set, the loaded files together).
    pub bytes: u64,
    /// "REDIS" or "VALKEY"; null when the header is unreadable.
    pub magic: Option<&'static str>,
    /// The RDB version from the header (1-13 under `REDIS`, 80 under `VALKEY`, §2); null when unreadable.
    pub version: Option<u32>,
    /// The `redis-ver` (or `valkey-ver`) AUX field.
    pub redis_ver: Option<String>,
    /// The stored and computed CRC-64 and their verdict (§8).
    pub checksum: Checksum,
    /// Key records in the whole file.
    pub keys: u64,
    /// Keys with a TTL.
    pub expires: u64,
    /// Keys whose TTL had passed at [`Options::now_ms`].
    pub already_expired: u64,
    /// Per-database counts, in order of first appearance.
    pub dbs: Vec<DbCounts>,
    /// Errors in file order; the first one is the verdict's reason.
    pub errors: Vec<ErrorEntry>,
    /// Errors found beyond `max_errors`.
    pub errors_not_listed: u64,
    /// What Redis loads but looks odd, in words (an RDB lists 100, then "more warnings not listed").
    pub warnings: Vec<String>,
    /// How many of each kind of value Redis loads but the report warns about, all counted even
    /// beyond the listed warnings: `empty_value` (Redis drops the key), `stream_length`,
    /// `zset_score`.
    pub warning_counts: std::collections::BTreeMap<&'static str, u64>,
    /// Bytes after the RDB's checksum (an RDB-preamble AOF's command tail).
    pub trailing_bytes: u64,
    /// Function libraries in the file (FUNCTION2 records, and 7.0 release-candidate ones).
    pub functions: u64,
    /// The server releases that restore the file (none when it has errors), grouped in ranges.
    pub restorable_by: Vec<Restorable>,
    /// The releases that refuse a valid file, and why.
    pub blocking: Vec<Blocking>,
    /// The verdict of `--target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetVerdict>,
    /// AOF sets and files: the files, commands, transactions, timestamps (the RDB fields above
    /// then describe the base file's RDB image, if any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aof: Option<AofReport>,
}

/// Whether the `--target` release restores the file.
#[derive(Debug, Clone, Serialize)]
pub struct TargetVerdict {
    /// `redis-7.0`.
    pub server: String,
    /// True when that release restores the file.
    pub ok: bool,
    /// Why it refuses the file (absent when it restores it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What it needs besides: modules, databases.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
}

impl Report {
    /// A report with nothing found yet (not ok until the checks ran).
    pub fn empty(file: &str, bytes: u64, checksum: ChecksumStatus) -> Report {
        Report {
            file: file.to_owned(),
            ok: false,
            bytes,
            magic: None,
            version: None,
            redis_ver: None,
            checksum: Checksum { stored: None, computed: None, status: checksum },
            keys: 0,
            expires: 0,
            already_expired: 0,
            dbs: Vec::new(),
            errors: Vec::new(),
            errors_not_listed: 0,
            warnings: Vec::new(),
            warning_counts: Default::default(),
            functions: 0,
            restorable_by: Vec::new(),
            blocking: Vec::new(),
            target: None,
            trailing_bytes: 0,
            aof: None,
        }
    }
}

/// The warning for bytes after an RDB image's checksum (callers reading an RDB-preamble AOF,
/// where those bytes are the command log, leave this one out).
pub fn trailing_bytes_warning(n: u64) -> String {
    format!("{n} bytes after the checksum (Redis ignores them)")
}

/// What a file of an AOF set is to the loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The base file (an RDB or an AOF-format rewrite), loaded first.
    Base,
    /// An incremental file of commands, loaded after the base in manifest order.
    Incr,
    /// Listed as history: not loaded.
    History,
    /// An old single-file AOF (no manifest): the whole log.
    Single,
}

impl Role {
    /// The name used in reports: `base`, `incr`, `history`, or `file` for [`Role::Single`].
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Base => "base",
            Role::Incr => "incr",
            Role::History => "history",
            Role::Single => "file",
        }
    }
}

// --------------------------------------------------------------------------------------------
// AOF sets (filled in by src/aof/set.rs)

/// A unix time with its UTC rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// Seconds since the Unix epoch.
    pub unix: i64,
    /// The same time; serialized as UTC text (`2024-01-02T03:04:05Z` style).
    #[serde(serialize_with = "ser_utc")]
    pub utc: i64,
}

fn ser_utc<S: serde::Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::time::format_utc(*t))
}

impl Stamp {
    /// A stamp for `t` Unix seconds.
    pub fn new(t: i64) -> Stamp {
        Stamp { unix: t, utc: t }
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", crate::time::format_utc(self.unix), self.unix)
    }
}

/// Commands that ran against one database.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DbCommands {
    /// The database number (as selected by `SELECT`).
    pub db: u64,
    /// Commands in it, SELECT / MULTI / EXEC not counted.
    pub commands: u64,
}

/// The RDB image at the start of an AOF file (a base, or a single file's RDB preamble).
#[derive(Debug, Clone, Serialize)]
pub struct RdbPart {
    /// `REDIS` or `VALKEY`.
    pub magic: &'static str,
    /// The RDB version from the header (§2).
    pub version: u32,
    /// The `redis-ver` (or `valkey-ver`) AUX field, when present.
    pub redis_ver: Option<String>,
    /// When the snapshot was taken (the `ctime` AUX field).
    pub ctime: Option<Stamp>,
    /// Key records in the image.
    pub keys: u64,
    /// Null when not checked (timeline reads the RDB without validating it).
    pub checksum: Option<ChecksumStatus>,
}

/// A file that ends inside a command or a transaction.
#[derive(Debug, Clone, Serialize)]
pub struct Truncation {
    /// The file's name (bytes; Redis file names need not be UTF-8).
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub file: Vec<u8>,
    /// Where the incomplete command (or the unfinished MULTI) starts.
    pub at: u64,
    /// What `aof-load-truncated` keeps: the end of the last complete command (before an
    /// unfinished MULTI).
    pub ok_up_to: u64,
    /// Line number (1-based) of `ok_up_to`.
    pub ok_up_to_line: u64,
    /// Bytes from `ok_up_to` to the end of the file.
    pub lost_bytes: u64,
    /// Redis truncates only the last file; a truncated earlier file stops the load.
    pub last_file: bool,
}

/// What `verify` found in one file of an AOF set.
#[derive(Debug, Clone, Serialize)]
pub struct PartReport {
    /// The file's name as listed in the manifest (bytes).
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub name: Vec<u8>,
    /// How the loader treats it.
    pub role: Role,
    /// The `seq` of its manifest line; null for a single-file AOF.
    pub seq: Option<i64>,
    /// Redis 8 replication offsets from the manifest line.
    pub start_offset: Option<i64>,
    /// The Redis 8 `endoffset` of the manifest line.
    pub end_offset: Option<i64>,
    /// Whether the file exists (history files may be gone: Redis deletes them).
    pub exists: bool,
    /// "rdb", "rdb+resp" (RDB preamble and commands), "resp", "empty"; null when not read.
    pub format: Option<&'static str>,
    /// Size of the file in bytes; null when it does not exist.
    pub bytes: Option<u64>,
    /// The RDB image at its start, when it has one.
    pub rdb: Option<RdbPart>,
    /// Offset where the commands start (after an RDB image).
    pub resp_offset: Option<u64>,
    /// Commands read, SELECT / MULTI / EXEC included.
    pub commands: u64,
    /// Commands per database, sorted by db.
    pub dbs: Vec<DbCommands>,
    /// Complete MULTI ... EXEC blocks.
    pub multi_blocks: u64,
    /// Annotation lines (`#...`, §11.5), well-formed or not.
    pub annotations: u64,
    /// The first `#TS:` annotation of the file.
    pub first_ts: Option<Stamp>,
    /// The last `#TS:` annotation of the file.
    pub last_ts: Option<Stamp>,
    /// False when an error was found in this file (or it is missing).
    pub ok: bool,
    /// Set when the file ends inside a command or a transaction.
    pub truncated: Option<Truncation>,
}

impl PartReport {
    pub(crate) fn new(name: Vec<u8>, role: Role, entry: Option<&crate::aof::manifest::ManifestEntry>) -> PartReport {
        PartReport {
            name,
            role,
            seq: entry.map(|e| e.seq),
            start_offset: entry.and_then(|e| e.start_offset()),
            end_offset: entry.and_then(|e| e.end_offset()),
            exists: true,
            format: None,
            bytes: None,
            rdb: None,
            resp_offset: None,
            commands: 0,
            dbs: Vec::new(),
            multi_blocks: 0,
            annotations: 0,
            first_ts: None,
            last_ts: None,
            ok: true,
            truncated: None,
        }
    }
}

/// The time span a point-in-time restore (`aof cut`) can reach.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Range {
    /// The earliest time reachable: the base's time, else the first `#TS`.
    pub from: Stamp,
    /// The latest time reachable: the last `#TS` (never before `from`).
    pub to: Stamp,
}

/// The AOF part of a verify report (and the whole of a timeline).
#[derive(Debug, Clone, Serialize)]
pub struct AofReport {
    /// "multipart" (manifest) or "single" (one old-style file).
    pub layout: &'static str,
    /// The manifest's file name (null for a single-file AOF).
    pub manifest: Option<String>,
    /// Loaded files in loading order, then history files.
    pub files: Vec<PartReport>,
    /// Commands over all loaded files, SELECT / MULTI / EXEC included.
    pub commands: u64,
    /// Complete MULTI ... EXEC blocks over all loaded files.
    pub multi_blocks: u64,
    /// Commands per database over all loaded files, sorted by db.
    pub dbs: Vec<DbCommands>,
    /// The first `#TS:` annotation of the set.
    pub first_ts: Option<Stamp>,
    /// The last `#TS:` annotation of the set.
    pub last_ts: Option<Stamp>,
    /// The point in time the base file holds (RDB `ctime`, or the first `#TS` of an AOF base).
    pub base_time: Option<Stamp>,
    /// From the base time (or the first `#TS`) to the last `#TS`; null without either.
    pub restore_range: Option<Range>,
    /// The first truncated file, with where Redis would cut it.
    pub truncated: Option<Truncation>,
    /// Files in the directory that the manifest does not list (Redis ignores them).
    #[serde(serialize_with = "ser_names")]
    pub stray_files: Vec<Vec<u8>>,
}

impl AofReport {
    /// A report of a set before any file is read.
    pub(crate) fn new(layout: &'static str, manifest: Option<String>, stray_files: Vec<Vec<u8>>) -> AofReport {
        AofReport {
            layout,
            manifest,
            files: Vec::new(),
            commands: 0,
            multi_blocks: 0,
            dbs: Vec::new(),
            first_ts: None,
            last_ts: None,
            base_time: None,
            restore_range: None,
            truncated: None,
            stray_files,
        }
    }
}

fn ser_names<S: serde::Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&v.iter().map(|n| crate::json::bytes(n)).collect::<Vec<_>>(), s)
}

impl AofReport {
    /// One line for `verify`'s OK / FAIL line.
    pub fn summary(&self, rep: &Report) -> String {
        if self.files.is_empty() && !rep.ok {
            return format!("AOF set, manifest {} refused", self.manifest.as_deref().unwrap_or("?"));
        }
        let mut parts = Vec::new();
        if self.layout == "multipart" {
            let n = |r: Role| self.files.iter().filter(|f| f.role == r).count();
            let (incr, hist) = (n(Role::Incr), n(Role::History));
            let mut s = format!("AOF set: {} base + {incr} incr", n(Role::Base));
            if hist > 0 {
                s.push_str(&format!(" + {hist} history"));
            }
            parts.push(s);
        } else {
            parts.push("single-file AOF".to_owned());
        }
        if let Some(f) = self.files.iter().find(|f| f.rdb.is_some()) {
            let r = f.rdb.as_ref().expect("just found");
            let version =
                if r.magic == "VALKEY" { format!("VALKEY{:03}", r.version) } else { format!("RDB {}", r.version) };
            let ver = r.redis_ver.as_deref().map(|v| format!(", server {v}")).unwrap_or_default();
            let checksum = match rep.checksum.status {
                ChecksumStatus::Ok => "checksum ok",
                ChecksumStatus::Mismatch => "checksum MISMATCH",
                ChecksumStatus::NotComputed => "no checksum",
                ChecksumStatus::Absent => "no checksum",
                ChecksumStatus::Unchecked => "checksum not checked",
            };
            parts.push(format!("{version}{ver} with {} keys, {checksum}", r.keys));
        }
        let dbs = self.dbs.len();
        parts.push(format!(
            "{} commands in {dbs} db{}, {} MULTI block{}",
            self.commands,
            if dbs == 1 { "" } else { "s" },
            self.multi_blocks,
            if self.multi_blocks == 1 { "" } else { "s" }
        ));
        match self.restore_range {
            Some(r) => parts.push(format!(
                "restorable {} .. {}",
                crate::time::format_utc(r.from.unix),
                crate::time::format_utc(r.to.unix)
            )),
            None => parts.push("no #TS annotations".to_owned()),
        }
        parts.join(", ")
    }
}
