//! A set of AOF files as Redis loads them: a manifest with its base and incr files
//! (`appendonlydir/`, Redis >= 7.0), or one old single-file AOF (with or without an RDB
//! preamble). On top of it: the command stream across files, `verify`, the timeline and the
//! point-in-time cut.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::aof::commands::{self, Judgement};
use crate::aof::is_rdb;
use crate::aof::manifest::{FileType, Manifest, ManifestEntry, ManifestError};
use crate::aof::resp::{Event, RespParser, Stats, line_at};
use crate::error::{Error, ErrorKind};
use crate::input::{self, Input};
use crate::rdb::reader::{Reader, Record};
use crate::rdb::types::Flavor;
use crate::verify::rdb as verify;
use crate::verify::report::{self as vreport, ChecksumStatus, ErrorEntry, Report};
// The report types of a set live with the rest of verify's report (src/verify/report.rs), so
// that the report does not import the set that fills it in.
pub use crate::verify::report::{AofReport, DbCommands, PartReport, Range, RdbPart, Role, Stamp, Truncation};

/// One file Redis loads, mapped.
pub struct Part {
    /// The file's name as the manifest lists it (bytes; Redis does not require UTF-8).
    pub name: Vec<u8>,
    /// Where the file is on disk.
    pub path: PathBuf,
    /// What the loader does with it (base, incr, or the whole log of a single-file AOF).
    pub role: Role,
    /// Its manifest line (none for a single-file AOF).
    pub entry: Option<ManifestEntry>,
    /// The file's contents (memory-mapped or read).
    pub data: Input,
}

impl Part {
    /// The name as text, with invalid UTF-8 replaced.
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// A manifest with its files, or a single-file AOF.
pub struct AofSet {
    /// The directory (multipart) or the file (single).
    pub path: PathBuf,
    /// The manifest file, when the set has one.
    pub manifest_path: Option<PathBuf>,
    /// The parsed manifest, when the set has one.
    pub manifest: Option<Manifest>,
    /// The files Redis loads, in loading order, that exist.
    pub parts: Vec<Part>,
    /// Listed base / incr files that cannot be opened: (line, why).
    pub missing: Vec<(ManifestEntry, String)>,
    /// History lines, with the file's size when it exists.
    pub history: Vec<(ManifestEntry, Option<u64>)>,
    /// Names in the directory the manifest does not list.
    pub strays: Vec<Vec<u8>>,
}

/// Why a set could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The files could not be read (exit 2).
    Io(String),
    /// The manifest is malformed (invalid input, exit 1).
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// Its size in bytes.
        data_len: u64,
        /// What is wrong, with its line and offset.
        error: ManifestError,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(s) => write!(f, "{s}"),
            OpenError::Manifest { path, error, .. } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl AofSet {
    /// Opens an AOF directory, a manifest file, or a single AOF file.
    pub fn open(path: &Path) -> Result<AofSet, OpenError> {
        let io_err = |what: &Path, e: io::Error| OpenError::Io(format!("{}: {e}", what.display()));
        let meta = fs::metadata(path).map_err(|e| io_err(path, e))?;
        let manifest_path = if meta.is_dir() {
            match crate::discover::find_manifest(path).map_err(|e| io_err(path, e))? {
                Some(m) => m,
                None => {
                    return Err(OpenError::Io(format!("{}: no *.manifest file: not an AOF directory", path.display())));
                }
            }
        } else if path.as_os_str().as_bytes().ends_with(b".manifest") {
            path.to_path_buf()
        } else {
            let data = input::open(path).map_err(|e| io_err(path, e))?;
            let name = path.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_default();
            return Ok(AofSet {
                path: path.to_path_buf(),
                manifest_path: None,
                manifest: None,
                parts: vec![Part { name, path: path.to_path_buf(), role: Role::Single, entry: None, data }],
                missing: Vec::new(),
                history: Vec::new(),
                strays: Vec::new(),
            });
        };
        let dir = match manifest_path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let text = input::open(&manifest_path).map_err(|e| io_err(&manifest_path, e))?;
        let manifest = Manifest::parse(&text).map_err(|error| OpenError::Manifest {
            path: manifest_path.clone(),
            data_len: text.len() as u64,
            error,
        })?;
        let mut set = AofSet {
            path: if meta.is_dir() { path.to_path_buf() } else { dir.clone() },
            manifest_path: Some(manifest_path.clone()),
            manifest: None,
            parts: Vec::new(),
            missing: Vec::new(),
            history: Vec::new(),
            strays: Vec::new(),
        };
        for e in manifest.loaded() {
            let p = dir.join(OsStr::from_bytes(&e.name));
            let role = if e.kind == FileType::Base { Role::Base } else { Role::Incr };
            match input::open(&p) {
                Ok(data) => set.parts.push(Part { name: e.name.clone(), path: p, role, entry: Some(e.clone()), data }),
                Err(err) if err.kind() == io::ErrorKind::NotFound => set.missing.push((e.clone(), "missing".into())),
                Err(err) if !p.is_file() => set.missing.push((e.clone(), format!("not a regular file ({err})"))),
                Err(err) => return Err(io_err(&p, err)),
            }
        }
        for e in manifest.history() {
            let size = fs::metadata(dir.join(OsStr::from_bytes(&e.name))).ok().filter(|m| m.is_file()).map(|m| m.len());
            set.history.push((e.clone(), size));
        }
        let manifest_name = manifest_path.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_default();
        let mut strays = Vec::new();
        for ent in fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let name = ent.map_err(|e| io_err(&dir, e))?.file_name().as_bytes().to_vec();
            if name != manifest_name && !manifest.entries.iter().any(|e| e.name == name) {
                strays.push(name);
            }
        }
        strays.sort();
        set.strays = strays;
        set.manifest = Some(manifest);
        Ok(set)
    }

    /// True for a manifest-based set (Redis 7.0+), false for a single AOF file.
    pub fn is_multipart(&self) -> bool {
        self.manifest.is_some()
    }

    /// Bytes of the files Redis loads.
    pub fn loaded_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.data.len() as u64).sum()
    }

    /// The first command of the loaded files that Redis never writes to an AOF and that acts
    /// outside the dataset when replayed (see `commands`), as an error with file and line. Tools
    /// that replay a set in a real server check this first. A set whose files do not parse to
    /// the end is judged on the commands before the damage.
    pub fn refused_command(&self) -> Option<ErrorEntry> {
        for c in self.commands() {
            let Ok(c) = c else { return None };
            if let Judgement::Refused(why) = commands::judge(&c.cmd.argv) {
                let part = &self.parts[c.part];
                let at = c.cmd.meta.offset;
                let e = Error::new(ErrorKind::Unsafe, at, why).in_db(Some(c.cmd.meta.db));
                return Some(entry_with(&e, &part.name, Some(line_at(&part.data, at))));
            }
        }
        None
    }

    /// Every command of the loaded files in order (base, then incr files), with its db, last
    /// timestamp, file and offset. RDB parts are stepped over (structurally read to their end).
    pub fn commands(&self) -> SetCommands<'_> {
        SetCommands { set: self, idx: 0, parser: None, ts: None, failed: false }
    }
}

/// A command of a set: which part it comes from, and the command.
#[derive(Debug, Clone)]
pub struct SetCommand<'a> {
    /// Index of the file in [`AofSet::parts`].
    pub part: usize,
    /// The command with its arguments, db, offset and last timestamp.
    pub cmd: crate::aof::resp::Command<'a>,
}

/// An error in one part of a set.
#[derive(Debug, Clone)]
pub struct SetError {
    /// Index of the file in [`AofSet::parts`].
    pub part: usize,
    /// What is wrong, with its offset in that file.
    pub error: Error,
}

/// Iterator over every command of a set, from [`AofSet::commands`]. The first error ends it.
pub struct SetCommands<'a> {
    set: &'a AofSet,
    idx: usize,
    parser: Option<RespParser<'a>>,
    ts: Option<i64>,
    failed: bool,
}

impl<'a> Iterator for SetCommands<'a> {
    type Item = Result<SetCommand<'a>, SetError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(p) = &mut self.parser {
                match p.next() {
                    Some(Ok(cmd)) => return Some(Ok(SetCommand { part: self.idx, cmd })),
                    Some(Err(error)) => {
                        self.failed = true;
                        return Some(Err(SetError { part: self.idx, error }));
                    }
                    None => {
                        self.ts = p.ts();
                        self.parser = None;
                        self.idx += 1;
                        continue;
                    }
                }
            }
            let part = self.set.parts.get(self.idx)?;
            let data: &'a [u8] = &part.data;
            let start = if is_rdb(data) {
                match rdb_scan(data) {
                    Ok(r) => r.end as usize,
                    Err(error) => {
                        self.failed = true;
                        return Some(Err(SetError { part: self.idx, error }));
                    }
                }
            } else {
                0
            };
            self.parser = Some(RespParser::new(data, start, self.ts));
        }
    }
}

/// Commands Redis does not write to an AOF that are listed as warnings (the rest are counted).
const MAX_ODD_COMMANDS: u64 = 20;

/// What a structural pass over an RDB part tells.
#[derive(Debug, Clone, Default)]
pub struct RdbScan {
    /// `REDIS` or `VALKEY`.
    pub magic: &'static str,
    /// The RDB version from the header (§2).
    pub version: u32,
    /// The `redis-ver` (or `valkey-ver`) AUX field, when present.
    pub redis_ver: Option<String>,
    /// The `ctime` AUX field: when the snapshot was taken (unix seconds).
    pub ctime: Option<i64>,
    /// Key records in the image.
    pub keys: u64,
    /// Offset just after the RDB image (after the checksum): where a RESP tail starts.
    pub end: u64,
}

fn aux_int(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Reads an RDB image to its EOF opcode without validating values.
pub fn rdb_scan(data: &[u8]) -> Result<RdbScan, Error> {
    let mut reader = Reader::new(data)?;
    let f = reader.format();
    let mut s = RdbScan {
        magic: if f.flavor == Flavor::Valkey { "VALKEY" } else { "REDIS" },
        version: f.version,
        ..Default::default()
    };
    for rec in reader.by_ref() {
        match rec? {
            Record::Aux { key, value } if &*key == b"ctime" => s.ctime = aux_int(&value),
            Record::Aux { key, value } if &*key == b"redis-ver" || &*key == b"valkey-ver" => {
                s.redis_ver = Some(String::from_utf8_lossy(&value).into_owned())
            }
            Record::Key(_) => s.keys += 1,
            _ => {}
        }
    }
    let t = reader.trailer().ok_or_else(|| Error::truncated(reader.offset(), "no EOF opcode"))?;
    s.end = data.len() as u64 - t.trailing_bytes;
    Ok(s)
}

/// The AUX fields before the first other record (cheap: stops there).
pub(crate) fn rdb_aux_times(data: &[u8]) -> (Option<i64>, Option<String>) {
    let Ok(reader) = Reader::new(data) else { return (None, None) };
    let (mut ctime, mut ver) = (None, None);
    for rec in reader {
        match rec {
            Ok(Record::Aux { key, value }) => {
                if &*key == b"ctime" {
                    ctime = aux_int(&value);
                } else if &*key == b"redis-ver" || &*key == b"valkey-ver" {
                    ver = Some(String::from_utf8_lossy(&value).into_owned());
                }
            }
            _ => break,
        }
    }
    (ctime, ver)
}

fn add_db(list: &mut Vec<DbCommands>, db: u64, n: u64) {
    match list.iter_mut().find(|d| d.db == db) {
        Some(d) => d.commands += n,
        None => list.push(DbCommands { db, commands: n }),
    }
}

fn entry_with(e: &Error, file: &[u8], line: Option<u64>) -> ErrorEntry {
    let mut x = ErrorEntry::from(e);
    x.file = Some(String::from_utf8_lossy(file).into_owned());
    x.line = line;
    x
}

/// The report for a set whose manifest Redis would refuse.
pub fn manifest_failure(name: &str, manifest: &Path, data_len: u64, e: &ManifestError) -> Report {
    let mut rep = Report::empty(name, 0, ChecksumStatus::Absent);
    let file = manifest.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_default();
    rep.bytes = data_len;
    // The line goes in the entry's own field (the text report shows it after the offset).
    let err = Error::corrupt(e.offset, e.message.clone());
    rep.errors.push(entry_with(&err, &file, (e.line > 0).then_some(e.line as u64)));
    rep.aof = Some(AofReport::new("multipart", Some(String::from_utf8_lossy(&file).into_owned()), Vec::new()));
    rep
}

impl AofSet {
    /// Reads every loaded file: with `verify`, base RDB images are fully verified (checksum,
    /// every value); without, they are only read structurally (for the timeline).
    pub fn check(&self, name: &str, verify: Option<&vreport::Options>) -> Report {
        let mut rep = Report::empty(name, 0, ChecksumStatus::Absent);
        rep.bytes = self.loaded_bytes();
        let mut aof = AofReport::new(
            if self.is_multipart() { "multipart" } else { "single" },
            self.manifest_path.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()),
            self.strays.clone(),
        );
        let keep_going = verify.is_some_and(|o| o.keep_going);
        for (e, why) in &self.missing {
            let what = if e.kind == FileType::Base { "the base file" } else { "an incr file" };
            let err = Error::corrupt(
                0,
                format!("listed in the manifest (line {}) as {what}, but {why}: Redis refuses to start", e.line),
            );
            rep.errors.push(entry_with(&err, &e.name, None));
            let mut p = PartReport::new(
                e.name.clone(),
                if e.kind == FileType::Base { Role::Base } else { Role::Incr },
                Some(e),
            );
            p.exists = false;
            p.ok = false;
            aof.files.push(p);
        }
        if let Some(m) = &self.manifest
            && m.loaded().next().is_none()
        {
            rep.warnings.push("the manifest lists no base or incr file: Redis starts with an empty dataset".into());
        }
        let mut ts: Option<i64> = None;
        // Commands Redis does not write (reads, unknown ones): warned about, the first few listed.
        let mut odd = 0u64;
        let last = self.parts.len().saturating_sub(1);
        let mut first_rdb = true;
        for (i, part) in self.parts.iter().enumerate() {
            let data: &[u8] = &part.data;
            let mut pr = PartReport::new(part.name.clone(), part.role, part.entry.as_ref());
            pr.bytes = Some(data.len() as u64);
            let pname = part.name_lossy();
            let errors_before = rep.errors.len();
            let mut resp_start = Some(0usize);
            if data.is_empty() {
                pr.format = Some("empty");
                resp_start = None;
            } else if is_rdb(data) {
                resp_start = None;
                match verify {
                    Some(opts) => {
                        let r = verify::verify_preamble(&pname, data, opts);
                        let (ctime, _) = rdb_aux_times(data);
                        let rdb_ok = r.errors.is_empty() && r.errors_not_listed == 0;
                        for e in &r.errors {
                            let mut x = e.clone();
                            x.file = Some(pname.clone());
                            rep.errors.push(x);
                        }
                        rep.errors_not_listed += r.errors_not_listed;
                        for w in &r.warnings {
                            rep.warnings.push(format!("{pname}: {w}"));
                        }
                        for (k, n) in &r.warning_counts {
                            *rep.warning_counts.entry(k).or_default() += n;
                        }
                        pr.rdb = Some(RdbPart {
                            magic: r.magic.unwrap_or("REDIS"),
                            version: r.version.unwrap_or(0),
                            redis_ver: r.redis_ver.clone(),
                            ctime: ctime.map(Stamp::new),
                            keys: r.keys,
                            checksum: Some(r.checksum.status.clone()),
                        });
                        if rdb_ok {
                            resp_start = Some(data.len() - r.trailing_bytes as usize);
                        }
                        if first_rdb {
                            first_rdb = false;
                            rep.magic = r.magic;
                            rep.version = r.version;
                            rep.redis_ver = r.redis_ver.clone();
                            rep.checksum = r.checksum.clone();
                            rep.keys = r.keys;
                            rep.expires = r.expires;
                            rep.already_expired = r.already_expired;
                            rep.dbs = r.dbs.clone();
                        }
                    }
                    None => match rdb_scan(data) {
                        Ok(s) => {
                            pr.rdb = Some(RdbPart {
                                magic: s.magic,
                                version: s.version,
                                redis_ver: s.redis_ver.clone(),
                                ctime: s.ctime.map(Stamp::new),
                                keys: s.keys,
                                checksum: None,
                            });
                            resp_start = Some(s.end as usize);
                            if first_rdb {
                                first_rdb = false;
                                rep.magic = Some(s.magic);
                                rep.version = Some(s.version);
                                rep.redis_ver = s.redis_ver;
                                rep.checksum.status = ChecksumStatus::Unchecked;
                                rep.keys = s.keys;
                            }
                        }
                        Err(e) => rep.errors.push(entry_with(&e, &part.name, None)),
                    },
                }
                pr.format = Some(if resp_start.is_some_and(|s| s < data.len()) { "rdb+resp" } else { "rdb" });
            } else {
                pr.format = Some("resp");
            }
            if let Some(start) = resp_start.filter(|&s| s < data.len()) {
                pr.resp_offset = Some(start as u64);
                let mut p = RespParser::new(data, start, ts);
                let mut argv = Vec::new();
                let res = loop {
                    match p.next_event(&mut argv) {
                        Ok(Some(Event::Command(meta))) => match commands::judge(&argv) {
                            Judgement::Logged => {}
                            Judgement::Odd(why) => {
                                odd += 1;
                                if odd <= MAX_ODD_COMMANDS {
                                    let at = meta.offset;
                                    rep.warnings
                                        .push(format!("{pname}: offset {at} (line {}): {why}", line_at(data, at)));
                                }
                            }
                            Judgement::Refused(why) => {
                                // Bounded: a crafted set may hold millions of them.
                                if rep.errors.len() < verify.map_or(1000, |o| o.max_errors.max(1)) {
                                    let e = Error::new(ErrorKind::Unsafe, meta.offset, why).in_db(Some(meta.db));
                                    rep.errors.push(entry_with(&e, &part.name, Some(line_at(data, meta.offset))));
                                } else {
                                    rep.errors_not_listed += 1;
                                }
                            }
                        },
                        Ok(Some(Event::Annotation(_))) => {}
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                };
                ts = p.ts();
                for (off, w) in p.warnings() {
                    rep.warnings.push(format!("{pname}: offset {off} (line {}): {w}", line_at(data, *off)));
                }
                if p.warnings_not_listed() > 0 {
                    rep.warnings.push(format!("{pname}: {} more warnings", p.warnings_not_listed()));
                }
                if let Err(mut e) = res {
                    if e.kind == ErrorKind::Truncated {
                        let ok = p.ok_up_to();
                        let lost = data.len() as u64 - ok;
                        let t = Truncation {
                            file: part.name.clone(),
                            at: e.offset,
                            ok_up_to: ok,
                            ok_up_to_line: line_at(data, ok),
                            lost_bytes: lost,
                            last_file: i == last,
                        };
                        e.message = if i == last {
                            format!(
                                "{}: Redis (aof-load-truncated yes, the default) keeps the first {ok} bytes and drops {lost}",
                                e.message
                            )
                        } else {
                            format!(
                                "{}: not the last file, so Redis refuses to load the set (it would keep {ok} bytes of this file)",
                                e.message
                            )
                        };
                        aof.truncated.get_or_insert_with(|| t.clone());
                        pr.truncated = Some(t);
                    }
                    rep.errors.push(entry_with(&e, &part.name, Some(line_at(data, e.offset))));
                }
                let s: &Stats = p.stats();
                pr.commands = s.commands;
                pr.multi_blocks = s.multi_blocks;
                pr.annotations = s.annotations;
                pr.first_ts = s.first_ts.map(Stamp::new);
                pr.last_ts = s.last_ts.map(Stamp::new);
                for &(db, n) in &s.per_db {
                    add_db(&mut pr.dbs, db, n);
                    add_db(&mut aof.dbs, db, n);
                }
                aof.commands += s.commands;
                aof.multi_blocks += s.multi_blocks;
                if aof.first_ts.is_none() {
                    aof.first_ts = pr.first_ts;
                }
                if pr.last_ts.is_some() {
                    aof.last_ts = pr.last_ts;
                }
            }
            pr.ok = rep.errors.len() == errors_before;
            aof.files.push(pr);
            if !keep_going && rep.errors.len() > errors_before && verify.is_some() {
                // Later files are still listed, unread.
                for later in &self.parts[i + 1..] {
                    let mut p = PartReport::new(later.name.clone(), later.role, later.entry.as_ref());
                    p.bytes = Some(later.data.len() as u64);
                    aof.files.push(p);
                }
                break;
            }
        }
        if odd > MAX_ODD_COMMANDS {
            rep.warnings.push(format!("{} more commands that Redis does not write to an AOF", odd - MAX_ODD_COMMANDS));
        }
        for (e, size) in &self.history {
            let mut p = PartReport::new(e.name.clone(), Role::History, Some(e));
            p.exists = size.is_some();
            p.bytes = *size;
            if size.is_none() {
                rep.warnings.push(format!(
                    "{}: history file listed in the manifest (line {}) is gone (Redis deletes history files; it never loads them)",
                    e.name_lossy(),
                    e.line
                ));
            }
            aof.files.push(p);
        }
        for s in &self.strays {
            let n = String::from_utf8_lossy(s);
            rep.warnings.push(if s.starts_with(b"temp-") {
                format!("{n}: not listed in the manifest: a leftover of an interrupted rewrite (Redis ignores it)")
            } else {
                format!("{n}: not listed in the manifest (Redis ignores it)")
            });
        }
        for f in &mut aof.files {
            f.dbs.sort_by_key(|d| d.db);
        }
        aof.dbs.sort_by_key(|d| d.db);
        aof.base_time = self.base_time(&aof);
        let from = aof.base_time.or(aof.first_ts);
        aof.restore_range = from.map(|f| {
            let to = aof.last_ts.filter(|t| t.unix >= f.unix).unwrap_or(f);
            Range { from: f, to }
        });
        if !keep_going && rep.errors.len() > 1 {
            rep.errors_not_listed += rep.errors.len() as u64 - 1;
            rep.errors.truncate(1);
        }
        rep.ok = rep.errors.is_empty() && rep.errors_not_listed == 0;
        rep.aof = Some(aof);
        rep
    }

    /// The time the base holds: the RDB's ctime, or the first `#TS` of an AOF-format base (a
    /// rewrite writes one first). A single-file AOF counts as a base only for its RDB preamble.
    fn base_time(&self, aof: &AofReport) -> Option<Stamp> {
        let f = aof.files.iter().find(|f| f.role == Role::Base || f.role == Role::Single)?;
        if let Some(r) = &f.rdb {
            return r.ctime;
        }
        if f.role == Role::Base { f.first_ts } else { None }
    }
}
