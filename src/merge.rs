//! Merging RDB files, and the two-pass engine that `split` shares.
//!
//! Inputs are memory-mapped; nothing of them is held in memory beyond what the plan needs.
//!
//! Pass 1 (`plan`) reads every input once with the record reader (values are skipped by their
//! length structure, not decoded), in parallel over inputs, and checks each input's CRC-64. It
//! counts keys per (output, target db), keeps AUX fields, function libraries and module AUX
//! records (small), and, when two inputs or two source dbs can meet in one target db, a compact
//! key set: 16 bytes per key (a 64-bit fingerprint of target db and key, plus input number and
//! key offset), sorted in 256 buckets once pass 1 ends. Equal fingerprints are confirmed by
//! re-reading the keys from the inputs. The conflict policy then decides, per colliding key,
//! which copies are dropped or renamed, and the counts are corrected, so that every RESIZEDB of
//! pass 2 holds the true number of keys and TTLs before its first key is written.
//!
//! Pass 2 (`write`) reads the inputs again and copies each key record's bytes into its output
//! (`RdbWriter`), one target database at a time in ascending order. An input whose source dbs
//! map to several target dbs is read once per target db, up to the end of its last section for
//! that db.
//!
//! `write_files` wraps pass 2 for files: temporary names, fsync, our own `verify` of every
//! output, then the renames.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use crate::display::quoted;
use crate::error::{Error, ErrorKind};
use crate::output::AtomicFile;
use crate::rdb::reader::{Reader, Record, key_at};
use crate::rdb::types::{Flavor, Format};
use crate::rdb::writer::{self, RdbWriter, WriteError, can_hold, magic};

/// One input: a display name and the whole file.
pub struct Source<'a> {
    pub name: String,
    pub data: &'a [u8],
    /// The mapped file, when `data` is one: pages behind the readers are released as they go.
    pub input: Option<&'a crate::input::Input>,
}

impl<'a> Source<'a> {
    pub fn new(name: impl Into<String>, data: &'a [u8]) -> Source<'a> {
        Source { name: name.into(), data, input: None }
    }
    pub fn mapped(name: impl Into<String>, input: &'a crate::input::Input) -> Source<'a> {
        Source { name: name.into(), data: input, input: Some(input) }
    }
}

/// Releases the pages of a source behind a reader, in steps of `RELEASE_STEP`.
struct Releaser<'a> {
    input: Option<&'a crate::input::Input>,
    done: usize,
}

const RELEASE_STEP: usize = 32 << 20;

impl<'a> Releaser<'a> {
    fn new(s: &Source<'a>) -> Releaser<'a> {
        Releaser { input: s.input, done: 0 }
    }
    /// Everything before `upto` will not be read again soon.
    #[inline]
    fn upto(&mut self, upto: usize) {
        if let Some(i) = self.input
            && upto >= self.done + 2 * RELEASE_STEP
        {
            let end = upto - RELEASE_STEP;
            i.release(self.done..end);
            self.done = end;
        }
    }
}

/// Pages of a source read by two scans at once (pass 1's checksum and its reader): released
/// behind the slower of the two.
struct SharedRelease<'a> {
    input: Option<&'a crate::input::Input>,
    pos: [std::sync::atomic::AtomicUsize; 2],
    done: std::sync::atomic::AtomicUsize,
}

impl<'a> SharedRelease<'a> {
    fn new(s: &Source<'a>) -> SharedRelease<'a> {
        use std::sync::atomic::AtomicUsize;
        SharedRelease { input: s.input, pos: [AtomicUsize::new(0), AtomicUsize::new(0)], done: AtomicUsize::new(0) }
    }
    /// Waits while scan `who` is more than `lead` bytes ahead of the other one (so the pages
    /// mapped between them stay few), unless the other one has finished.
    fn pace(&self, who: usize, at: usize, lead: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.input.is_none() {
            return;
        }
        while at > self.pos[1 - who].load(Relaxed).saturating_add(lead) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Scan `who` (0 or 1) has read everything before `at`.
    fn progress(&self, who: usize, at: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(input) = self.input else { return };
        self.pos[who].store(at, Relaxed);
        let low = self.pos[0].load(Relaxed).min(self.pos[1].load(Relaxed));
        let done = self.done.load(Relaxed);
        if low >= done.saturating_add(2 * RELEASE_STEP) {
            let end = low - RELEASE_STEP;
            if self.done.compare_exchange(done, end, Relaxed, Relaxed).is_ok() {
                input.release(done..end);
            }
        }
    }
}

/// What to do when one key (in one target db) comes from several places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Write nothing and list every colliding key.
    #[default]
    Error,
    /// Keep the copy met first (inputs in command-line order, then file order).
    First,
    /// Keep the copy met last.
    Last,
    /// Keep every copy, each under the name the rename template gives it.
    Rename,
}

/// A rename template: `{db}` (source db), `{key}`, `{input}` (0-based input number), `{file}`
/// (input file name without its extension); `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenameTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(Vec<u8>),
    Db,
    Key,
    Input,
    File,
}

impl RenameTemplate {
    pub fn parse(s: &str) -> Result<RenameTemplate, String> {
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'{' if b.get(i + 1) == Some(&b'{') => {
                    lit.push(b'{');
                    i += 2;
                }
                b'}' if b.get(i + 1) == Some(&b'}') => {
                    lit.push(b'}');
                    i += 2;
                }
                b'{' => {
                    let end = s[i..].find('}').ok_or_else(|| format!("--rename {s}: '{{' without '}}'"))?;
                    let part = match &s[i + 1..i + end] {
                        "db" => Part::Db,
                        "key" => Part::Key,
                        "input" => Part::Input,
                        "file" => Part::File,
                        other => {
                            return Err(format!(
                                "--rename {s}: unknown placeholder {{{other}}} (known: {{db}} {{key}} {{input}} {{file}}; \
                                 {{{{ and }}}} for literal braces)"
                            ));
                        }
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(part);
                    i += end + 1;
                }
                b'}' => return Err(format!("--rename {s}: lone '}}' (write }}}} for a literal brace)")),
                c => {
                    lit.push(c);
                    i += 1;
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        if !parts.contains(&Part::Key) {
            return Err(format!("--rename {s}: the template must contain {{key}}"));
        }
        Ok(RenameTemplate { parts })
    }

    pub fn render(&self, db: u64, key: &[u8], input: usize, file: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(key.len() + 16);
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.extend_from_slice(l),
                Part::Db => out.extend_from_slice(db.to_string().as_bytes()),
                Part::Key => out.extend_from_slice(key),
                Part::Input => out.extend_from_slice(input.to_string().as_bytes()),
                Part::File => out.extend_from_slice(file.as_bytes()),
            }
        }
        out
    }
}

impl Default for RenameTemplate {
    fn default() -> RenameTemplate {
        RenameTemplate { parts: vec![Part::Db, Part::Lit(b":".to_vec()), Part::Key] }
    }
}

/// Where the keys of a source db go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbRoute {
    To(u64),
    /// Left out on purpose (not selected).
    Skip,
    /// Not allowed: counted, and the plan fails.
    Reject,
}

/// Decides the target db of each source db and the output of each key.
pub trait Router: Sync {
    fn outputs(&self) -> usize;
    fn db(&self, src_db: u64) -> DbRoute;
    /// The output for `key`; None when no output takes it (the plan fails).
    fn output(&self, key: &[u8]) -> Option<usize>;
    /// Whether two source dbs can land in one target db (then inputs are checked for
    /// collisions even when there is only one).
    fn joins_dbs(&self) -> bool;
}

/// `merge`'s router: one output; dbs kept, or all mapped to db 0.
pub struct MergeRouter {
    pub into_db0: bool,
}

impl Router for MergeRouter {
    fn outputs(&self) -> usize {
        1
    }
    fn db(&self, src_db: u64) -> DbRoute {
        DbRoute::To(if self.into_db0 { 0 } else { src_db })
    }
    fn output(&self, _key: &[u8]) -> Option<usize> {
        Some(0)
    }
    fn joins_dbs(&self) -> bool {
        self.into_db0
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

/// One place a colliding key comes from.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Occurrence {
    pub file: String,
    pub input: usize,
    pub db: u64,
    /// File offset of the key string.
    pub offset: u64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// The same key from several places.
    Key,
    /// A renamed key that equals another key (existing or renamed).
    Rename,
    /// A function library of the same name with different code.
    Function,
    /// Module AUX data for the same module and phase, with different content.
    ModuleAux,
}

#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub kind: ConflictKind,
    /// Target db (keys); null for functions and module data.
    pub db: Option<u64>,
    /// The key (for `rename`: the name two keys would get), library name, or module type.
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub key: Vec<u8>,
    pub occurrences: Vec<Occurrence>,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            ConflictKind::Key => "key",
            ConflictKind::Rename => "renamed key",
            ConflictKind::Function => "function library",
            ConflictKind::ModuleAux => "module aux data of",
        };
        write!(f, "{what} {}", quoted(&self.key))?;
        if let Some(db) = self.db {
            write!(f, " (target db {db})")?;
        }
        f.write_str(" from ")?;
        for (i, o) in self.occurrences.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match self.kind {
                ConflictKind::Function | ConflictKind::ModuleAux => write!(f, "{}", o.file)?,
                _ => write!(f, "{} db {}", o.file, o.db)?,
            }
        }
        Ok(())
    }
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
const MAX_MESSAGES: usize = 20;
/// At most this many unassigned-slot examples are kept.
const MAX_EXAMPLES: usize = 10;

/// Per (output, target db): what the plan will write.
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

/// A section of an input: the records from `start` to `end` read under source db `db`.
#[derive(Debug, Clone, Copy)]
struct Section {
    start: u64,
    end: u64,
    db: u64,
    /// Keys of the section that go to an output, and those of them with a TTL.
    keys: u64,
    expires: u64,
    /// Offset of the first key record, and the end of the last one (0 when none).
    first_key: u64,
    keys_end: u64,
    /// Whether `first_key..keys_end` holds nothing but those keys' records (no other record
    /// between them, no key left out), so that it can be copied as one piece.
    pure: bool,
}

impl Section {
    fn new(start: u64, db: u64) -> Section {
        Section { start, end: start, db, keys: 0, expires: 0, first_key: 0, keys_end: 0, pure: true }
    }
}

#[derive(Debug, Clone)]
enum Action {
    Drop,
    Rename(Vec<u8>),
}

/// Location of a key: input number (16 bits), a has-TTL flag (bit 47) and the key string's
/// offset (47 bits, 128 TiB).
const OFFSET_BITS: u32 = 47;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
const TTL_FLAG: u64 = 1 << OFFSET_BITS;
const BUCKETS: usize = 256;

fn loc(input: usize, offset: u64) -> u64 {
    ((input as u64) << 48) | offset
}
fn loc_input(l: u64) -> usize {
    (l >> 48) as usize
}
fn loc_offset(l: u64) -> u64 {
    l & OFFSET_MASK
}

#[inline]
fn fingerprint(db: u64, key: &[u8]) -> u64 {
    xxh3_64(key) ^ db.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// What pass 1 learned from one input.
struct Scan {
    format: Format,
    aux: Vec<(Vec<u8>, Vec<u8>)>,
    functions: Vec<Vec<u8>>,
    module_aux: Vec<(u64, u64, Vec<u8>)>,
    sections: Vec<Section>,
    /// Per output, per target db.
    counts: Vec<BTreeMap<u64, DbPlan>>,
    src_dbs: BTreeMap<u64, u64>,
    skipped: u64,
    rejected_dbs: BTreeMap<u64, u64>,
    unassigned: u64,
    examples: Vec<(u16, Vec<u8>)>,
    refused: Vec<String>,
    refused_total: u64,
    buckets: Vec<Vec<(u64, u64)>>,
    keys: u64,
    warnings: Vec<String>,
}

/// The result of pass 1: everything pass 2 needs.
pub struct Plan {
    pub target: Format,
    pub inputs: Vec<InputReport>,
    formats: Vec<Format>,
    aux: Vec<(Vec<u8>, Vec<u8>)>,
    functions: Vec<Vec<u8>>,
    module_aux: Vec<(u64, u64, Vec<u8>)>,
    sections: Vec<Vec<Section>>,
    /// Per output, per target db.
    pub counts: Vec<BTreeMap<u64, DbPlan>>,
    /// Per input: (key offset, action), sorted by offset (pass 2 walks them with the reader).
    actions: Vec<Vec<(u64, Action)>>,
    /// Function libraries written, and identical copies left out.
    pub functions_written: usize,
    pub functions_duplicates: usize,
    /// Conflicts resolved by `first` / `last` / `rename`: the first `MAX_LISTED`, and how many.
    pub resolved: Vec<Conflict>,
    pub resolved_total: usize,
    pub plan_s: f64,
}

impl Plan {
    /// What the plan decided for the key whose string starts at `key_offset` in input `input`:
    /// None: written as it is; `Some(None)`: left out; `Some(Some(name))`: written as `name`.
    pub fn decision(&self, input: usize, key_offset: u64) -> Option<Option<&[u8]>> {
        let a = self.actions.get(input)?;
        let i = a.binary_search_by_key(&key_offset, |x| x.0).ok()?;
        Some(match &a[i].1 {
            Action::Drop => None,
            Action::Rename(n) => Some(n.as_slice()),
        })
    }
}

/// The default output format: the newest input's; Valkey 80 when any input is Valkey.
pub fn default_target(formats: &[Format]) -> Format {
    if let Some(v) = formats.iter().filter(|f| f.flavor == Flavor::Valkey).max_by_key(|f| f.version) {
        return *v;
    }
    formats.iter().copied().max_by_key(|f| f.version).unwrap_or(Format { flavor: Flavor::Redis, version: 10 })
}

/// The library name in a function's shebang (`#!lua name=mylib ...`).
pub fn library_name(source: &[u8]) -> Option<&[u8]> {
    let line = source.split(|&b| b == b'\n').next()?;
    let rest = line.strip_prefix(b"#!")?;
    rest.split(|b| b.is_ascii_whitespace()).find_map(|t| t.strip_prefix(b"name="))
}

fn file_stem(name: &str) -> String {
    Path::new(name).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| name.to_owned())
}

/// Pass 1: reads every input, resolves collisions, and fixes the counts. Fails without writing
/// anything on invalid inputs, unresolved conflicts, rejected keys and content the target
/// format cannot hold.
pub fn plan(sources: &[Source<'_>], router: &dyn Router, opts: &Options) -> Result<Plan, MergeError> {
    let t0 = Instant::now();
    if sources.is_empty() {
        return Err(MergeError::Io("no inputs".into()));
    }
    if sources.len() > u16::MAX as usize {
        return Err(MergeError::Io(format!("at most {} inputs", u16::MAX)));
    }
    let mut formats = Vec::with_capacity(sources.len());
    for s in sources {
        if s.data.len() as u64 > OFFSET_MASK {
            return Err(MergeError::Io(format!("{}: larger than 128 TiB", s.name)));
        }
        let f = crate::rdb::reader::parse_header(s.data)
            .map_err(|error| MergeError::Input { file: s.name.clone(), error })?;
        formats.push(f);
    }
    let target = opts.target.unwrap_or_else(|| default_target(&formats));
    let detect = sources.len() > 1 || router.joins_dbs();
    let scans: Vec<Result<Scan, MergeError>> =
        sources.par_iter().enumerate().map(|(i, s)| scan_input(i, s, router, target, detect)).collect();
    let mut scans: Vec<Scan> = scans.into_iter().collect::<Result<_, _>>()?;

    // Rejections and refusals first: they fail the plan whatever the conflicts.
    let mut rejected_dbs: BTreeMap<u64, u64> = BTreeMap::new();
    let (mut unassigned, mut examples) = (0u64, Vec::new());
    let (mut refused, mut refused_total) = (Vec::new(), 0u64);
    for s in &mut scans {
        for (db, n) in &s.rejected_dbs {
            *rejected_dbs.entry(*db).or_default() += n;
        }
        unassigned += s.unassigned;
        examples.append(&mut s.examples);
        refused_total += s.refused_total;
        refused.append(&mut s.refused);
    }
    if !rejected_dbs.is_empty() || unassigned > 0 {
        examples.truncate(MAX_EXAMPLES);
        return Err(MergeError::Rejected { dbs: rejected_dbs, unassigned, examples });
    }

    let mut res = Resolution::default();
    let (functions, functions_duplicates) = merge_functions(sources, &scans, opts, &mut res);
    let module_aux = merge_module_aux(sources, &scans, opts, &mut res);
    let writer_check = check_target_records(target, &functions, &module_aux);
    if let Some(m) = writer_check {
        refused_total += 1;
        refused.insert(0, m);
    }
    if refused_total > 0 {
        refused.truncate(MAX_MESSAGES);
        return Err(MergeError::Refused { messages: refused, total: refused_total });
    }

    // Per output and target db counts, summed over inputs.
    let mut counts: Vec<BTreeMap<u64, DbPlan>> = vec![BTreeMap::new(); router.outputs()];
    for s in &scans {
        for (o, m) in s.counts.iter().enumerate() {
            for (db, c) in m {
                let e = counts[o].entry(*db).or_insert(DbPlan { db: *db, ..Default::default() });
                e.keys += c.keys;
                e.expires += c.expires;
            }
        }
    }
    let sections: Vec<Vec<Section>> = scans.iter().map(|s| s.sections.clone()).collect();

    if detect {
        // Bucket b of every input, concatenated (each input's part freed as it is moved).
        let mut buckets: Vec<Vec<(u64, u64)>> = (0..BUCKETS)
            .map(|b| {
                let n = scans.iter().map(|s| s.buckets.get(b).map_or(0, |v| v.len())).sum();
                let mut v = Vec::with_capacity(n);
                for s in scans.iter_mut() {
                    if let Some(part) = s.buckets.get_mut(b) {
                        v.append(part);
                        *part = Vec::new();
                    }
                }
                v
            })
            .collect();
        buckets.par_iter_mut().for_each(|b| b.sort_unstable());
        let groups = find_groups(&buckets, sources, &sections, router)?;
        resolve(groups, &buckets, sources, &sections, router, opts, &mut counts, &mut res)?;
    }
    if !res.conflicts.is_empty() {
        return Err(MergeError::Conflicts(res.conflicts));
    }

    let inputs = sources
        .iter()
        .zip(&scans)
        .map(|(s, sc)| InputReport {
            file: s.name.clone(),
            format: magic(sc.format),
            bytes: s.data.len() as u64,
            keys: sc.keys,
            dbs: sc.src_dbs.clone(),
            skipped: sc.skipped,
            warnings: sc.warnings.clone(),
        })
        .collect();
    let aux = choose_aux(&scans, target);
    Ok(Plan {
        target,
        inputs,
        formats,
        aux,
        functions_written: functions.len(),
        functions,
        functions_duplicates,
        module_aux,
        sections,
        counts,
        actions: by_input(res.actions, sources.len()),
        resolved: res.examples,
        resolved_total: res.resolved,
        plan_s: t0.elapsed().as_secs_f64(),
    })
}

fn check_target_records(target: Format, functions: &[Vec<u8>], module_aux: &[(u64, u64, Vec<u8>)]) -> Option<String> {
    let mut w = RdbWriter::new(std::io::sink(), target);
    if let Some(f) = functions.first()
        && let Err(WriteError::Refused(m)) = w.function(f)
    {
        return Some(format!("{} function libraries: {m}", functions.len()));
    }
    if let Some((m, when, p)) = module_aux.first()
        && let Err(WriteError::Refused(msg)) = w.module_aux(*m, *when, p)
    {
        return Some(format!("{} module aux records: {msg}", module_aux.len()));
    }
    None
}

fn scan_input(i: usize, s: &Source<'_>, router: &dyn Router, target: Format, detect: bool) -> Result<Scan, MergeError> {
    let input_err = |error: Error| MergeError::Input { file: s.name.clone(), error };
    let data = s.data;
    let shared = SharedRelease::new(s);
    // The reader runs here and the checksum beside it when another thread is free (else after it:
    // the checksum only paces itself on the reader, never the other way round).
    let (scan, crc) = rayon::join(
        || -> Result<Scan, MergeError> {
            /// Tells the checksum not to wait for this reader any more, however it ends.
            struct Finished<'s, 'a>(&'s SharedRelease<'a>);
            impl Drop for Finished<'_, '_> {
                fn drop(&mut self) {
                    self.0.progress(1, usize::MAX);
                }
            }
            let _finished = Finished(&shared);
            let mut reader = Reader::new(data).map_err(input_err)?;
            let format = reader.format();
            let mut sc = Scan {
                format,
                aux: Vec::new(),
                functions: Vec::new(),
                module_aux: Vec::new(),
                sections: vec![Section::new(9, 0)],
                counts: vec![BTreeMap::new(); router.outputs()],
                src_dbs: BTreeMap::new(),
                skipped: 0,
                rejected_dbs: BTreeMap::new(),
                unassigned: 0,
                examples: Vec::new(),
                refused: Vec::new(),
                refused_total: 0,
                buckets: if detect { vec![Vec::new(); BUCKETS] } else { Vec::new() },
                keys: 0,
                warnings: Vec::new(),
            };
            let mut route = router.db(0);
            let mut n = 0u32;
            // A record other than a key record met since the section's first key.
            let mut gap = false;
            while let Some(rec) = reader.next() {
                let rec = rec.map_err(input_err)?;
                n = n.wrapping_add(1);
                if n.is_multiple_of(1024) {
                    shared.progress(1, reader.record_offset() as usize);
                }
                if !matches!(rec, Record::Key(_) | Record::SelectDb { .. })
                    && sc.sections.last().is_some_and(|x| x.first_key != 0)
                {
                    gap = true;
                }
                match rec {
                    Record::Aux { key, value } => sc.aux.push((key.into_owned(), value.into_owned())),
                    Record::SelectDb { db } => {
                        let at = reader.record_offset();
                        if let Some(last) = sc.sections.last_mut() {
                            last.end = at;
                        }
                        sc.sections.push(Section::new(at, db));
                        gap = false;
                        route = router.db(db);
                    }
                    Record::Function { source } => sc.functions.push(source.into_owned()),
                    Record::FunctionPreGa { name, .. } => {
                        sc.refused_total += 1;
                        sc.refused.push(format!(
                            "{}: function {} is in the Redis 7.0 release-candidate format, which no GA server loads",
                            s.name,
                            quoted(&name)
                        ));
                    }
                    Record::ModuleAux { module, when, payload } => {
                        sc.module_aux.push((module.0, when, payload.to_vec()))
                    }
                    Record::Key(k) => {
                        sc.keys += 1;
                        *sc.src_dbs.entry(k.db).or_default() += 1;
                        // A key left out below makes its section no longer one piece.
                        let pure = sc.sections.last().is_some_and(|x| x.pure);
                        if let Some(last) = sc.sections.last_mut() {
                            last.pure = false;
                        }
                        let db = match route {
                            DbRoute::To(db) => db,
                            DbRoute::Skip => {
                                sc.skipped += 1;
                                continue;
                            }
                            DbRoute::Reject => {
                                *sc.rejected_dbs.entry(k.db).or_default() += 1;
                                continue;
                            }
                        };
                        let Some(o) = router.output(&k.key) else {
                            sc.unassigned += 1;
                            if sc.examples.len() < MAX_EXAMPLES {
                                sc.examples.push((crate::slot::key_slot(&k.key), k.key.to_vec()));
                            }
                            continue;
                        };
                        if let Err(m) = can_hold(&k, format, target) {
                            sc.refused_total += 1;
                            if sc.refused.len() < MAX_MESSAGES {
                                sc.refused.push(format!("{}: {m}", s.name));
                            }
                        }
                        let ttl = k.expire_at_ms.is_some();
                        if let Some(last) = sc.sections.last_mut() {
                            last.pure = if last.first_key == 0 {
                                last.first_key = k.offset;
                                pure
                            } else {
                                pure && !gap
                            };
                            last.keys += 1;
                            last.expires += ttl as u64;
                            last.keys_end = reader.offset();
                        }
                        gap = false;
                        let c = sc.counts[o].entry(db).or_insert(DbPlan { db, ..Default::default() });
                        c.keys += 1;
                        c.expires += ttl as u64;
                        if detect {
                            let fp = fingerprint(db, &k.key);
                            let l = loc(i, k.key_offset) | if ttl { TTL_FLAG } else { 0 };
                            sc.buckets[(fp >> 56) as usize].push((fp, l));
                        }
                    }
                    // Sizing hints and slot bookkeeping of the source do not hold for the output.
                    Record::ResizeDb { .. } | Record::SlotInfo { .. } | Record::SlotImport { .. } => {}
                }
            }
            let t = reader.trailer().ok_or_else(|| MergeError::Io(format!("{}: reader stopped early", s.name)))?;
            if let Some(last) = sc.sections.last_mut() {
                last.end = t.eof_offset;
            }
            if t.trailing_bytes > 0 {
                sc.warnings.push(format!("{} bytes after the checksum left out", t.trailing_bytes));
            }
            Ok(sc)
        },
        || {
            let mut c = crate::crc::Crc64::default();
            let end = data.len().saturating_sub(8);
            for (n, chunk) in data[..end].chunks(16 << 20).enumerate() {
                shared.pace(0, n * (16 << 20), 4 * RELEASE_STEP);
                c.update(chunk);
                shared.progress(0, (n + 1) * (16 << 20));
            }
            shared.progress(0, usize::MAX);
            c.finish()
        },
    );
    let sc = scan?;
    // The CRC ran over the usual end (EOF, then 8 bytes); recomputed when the file has more.
    if let Some(stored) = stored_checksum(data, &sc) {
        let end = sc.sections.last().map_or(0, |x| x.end as usize + 1);
        let computed = if end == data.len().saturating_sub(8) { crc } else { crate::crc::crc64(&data[..end]) };
        if stored != 0 && stored != computed {
            return Err(input_err(Error::new(
                ErrorKind::Checksum,
                end as u64,
                format!("stored CRC-64 {stored:016x} but the content gives {computed:016x}"),
            )));
        }
    }
    Ok(sc)
}

/// The stored checksum after the EOF byte (the last section ends at the EOF offset).
fn stored_checksum(data: &[u8], sc: &Scan) -> Option<u64> {
    if sc.format.flavor == Flavor::Redis && sc.format.version < 5 {
        return None;
    }
    let eof = sc.sections.last()?.end as usize;
    let b = data.get(eof + 1..eof + 9)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// AUX fields of the output: `redis-ver` / `valkey-ver` from an input of the target format,
/// `redis-bits`, `ctime` = now, then the inputs' other fields (first of each name) except those
/// that describe the source server or file and no longer hold.
fn choose_aux(scans: &[Scan], target: Format) -> Vec<(Vec<u8>, Vec<u8>)> {
    const DROPPED: &[&[u8]] = &[
        b"redis-ver",
        b"valkey-ver",
        b"redis-bits",
        b"ctime",
        b"used-mem",
        b"repl-stream-db",
        b"repl-id",
        b"repl-offset",
        b"aof-base",
        b"aof-preamble",
        b"lua",
        b"slot-info",
        b"cluster-asm-task",
        b"cluster-slot-states",
    ];
    let ver_key: &[u8] = if target.flavor == Flavor::Valkey { b"valkey-ver" } else { b"redis-ver" };
    let mut out = Vec::new();
    if let Some(v) = scans.iter().filter(|s| s.format == target).find_map(|s| s.aux.iter().find(|a| a.0 == ver_key)) {
        out.push(v.clone());
    }
    let bits =
        scans.iter().find_map(|s| s.aux.iter().find(|a| a.0 == b"redis-bits")).map_or(b"64".to_vec(), |a| a.1.clone());
    out.push((b"redis-bits".to_vec(), bits));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    out.push((b"ctime".to_vec(), now.to_string().into_bytes()));
    let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
    for s in scans {
        for (k, v) in &s.aux {
            if DROPPED.contains(&k.as_slice()) || !seen.insert(k.clone()) {
                continue;
            }
            out.push((k.clone(), v.clone()));
        }
    }
    out
}

fn occurrence(sources: &[Source<'_>], input: usize, db: u64, offset: u64) -> Occurrence {
    Occurrence { file: sources[input].name.clone(), input, db, offset }
}

/// Function libraries of all inputs: identical copies once; one name with different code is a
/// conflict that `first` / `last` resolve and `error` / `rename` do not (a library's name is
/// part of its code).
fn merge_functions(
    sources: &[Source<'_>],
    scans: &[Scan],
    opts: &Options,
    res: &mut Resolution,
) -> (Vec<Vec<u8>>, usize) {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut by_name: HashMap<Vec<u8>, (usize, Vec<usize>)> = HashMap::new();
    let mut dups = 0;
    let mut clashes: Vec<Vec<u8>> = Vec::new();
    for (i, s) in scans.iter().enumerate() {
        for f in &s.functions {
            let name = library_name(f).map(|n| n.to_vec()).unwrap_or_else(|| f.clone());
            match by_name.get_mut(&name) {
                None => {
                    by_name.insert(name, (out.len(), vec![i]));
                    out.push(f.clone());
                }
                Some((at, from)) => {
                    if out[*at] == *f {
                        dups += 1;
                        continue;
                    }
                    if !clashes.contains(&name) {
                        clashes.push(name.clone());
                    }
                    from.push(i);
                    if opts.on_conflict == OnConflict::Last {
                        out[*at] = f.clone();
                    }
                }
            }
        }
    }
    for name in clashes {
        let from = &by_name[&name].1;
        let c = Conflict {
            kind: ConflictKind::Function,
            db: None,
            key: name.clone(),
            occurrences: from.iter().map(|&i| occurrence(sources, i, 0, 0)).collect(),
        };
        res.add(c, opts.on_conflict);
    }
    (out, dups)
}

/// Module AUX records: identical copies once; the same module and phase with different content
/// is a conflict, resolved like functions.
fn merge_module_aux(
    sources: &[Source<'_>],
    scans: &[Scan],
    opts: &Options,
    res: &mut Resolution,
) -> Vec<(u64, u64, Vec<u8>)> {
    let mut out: Vec<(u64, u64, Vec<u8>)> = Vec::new();
    let mut from: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    for (i, s) in scans.iter().enumerate() {
        for (m, when, p) in &s.module_aux {
            match out.iter().position(|(m2, w2, _)| m2 == m && w2 == when) {
                None => {
                    out.push((*m, *when, p.clone()));
                    from.insert((*m, *when), vec![i]);
                }
                Some(at) if out[at].2 == *p => {}
                Some(at) => {
                    from.entry((*m, *when)).or_default().push(i);
                    if opts.on_conflict == OnConflict::Last {
                        out[at].2 = p.clone();
                    }
                }
            }
        }
    }
    for ((m, _), inputs) in from.into_iter().filter(|(_, v)| v.len() > 1) {
        let c = Conflict {
            kind: ConflictKind::ModuleAux,
            db: None,
            key: crate::rdb::module::ModuleType(m).name().into_bytes(),
            occurrences: inputs.iter().map(|&i| occurrence(sources, i, 0, 0)).collect(),
        };
        res.add(c, opts.on_conflict);
    }
    out
}

/// The source db of the key string at `offset` in input `input`.
fn src_db(sections: &[Vec<Section>], input: usize, offset: u64) -> u64 {
    let s = &sections[input];
    let i = s.partition_point(|x| x.start <= offset);
    s[i.saturating_sub(1)].db
}

/// A key met more than once in one target db: locations in input order, then file order.
struct Group {
    db: u64,
    key: Vec<u8>,
    locs: Vec<u64>,
}

fn read_key<'a>(sources: &[Source<'a>], l: u64) -> Result<std::borrow::Cow<'a, [u8]>, MergeError> {
    let i = loc_input(l);
    key_at(sources[i].data, loc_offset(l)).map_err(|error| MergeError::Input { file: sources[i].name.clone(), error })
}

fn target_db(router: &dyn Router, db: u64) -> u64 {
    match router.db(db) {
        DbRoute::To(d) => d,
        _ => db,
    }
}

fn find_groups(
    buckets: &[Vec<(u64, u64)>],
    sources: &[Source<'_>],
    sections: &[Vec<Section>],
    router: &dyn Router,
) -> Result<Vec<Group>, MergeError> {
    let per: Vec<Result<Vec<Group>, MergeError>> = buckets
        .par_iter()
        .map(|b| {
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                let mut j = i + 1;
                while j < b.len() && b[j].0 == b[i].0 {
                    j += 1;
                }
                if j - i > 1 {
                    // Equal fingerprints: group by the keys themselves (and target db).
                    let mut keyed: Vec<(u64, Vec<u8>, u64)> = Vec::with_capacity(j - i);
                    for &(_, l) in &b[i..j] {
                        let k = read_key(sources, l & !TTL_FLAG)?.into_owned();
                        let db = target_db(router, src_db(sections, loc_input(l), loc_offset(l)));
                        keyed.push((db, k, l));
                    }
                    keyed.sort();
                    let mut a = 0;
                    while a < keyed.len() {
                        let mut z = a + 1;
                        while z < keyed.len() && keyed[z].0 == keyed[a].0 && keyed[z].1 == keyed[a].1 {
                            z += 1;
                        }
                        if z - a > 1 {
                            let mut locs: Vec<u64> = keyed[a..z].iter().map(|x| x.2).collect();
                            locs.sort_by_key(|l| l & !TTL_FLAG);
                            out.push(Group { db: keyed[a].0, key: keyed[a].1.clone(), locs });
                        }
                        a = z;
                    }
                }
                i = j;
            }
            Ok(out)
        })
        .collect();
    let mut groups = Vec::new();
    for p in per {
        groups.extend(p?);
    }
    groups.sort_by_key(|g| g.locs[0] & !TTL_FLAG);
    Ok(groups)
}

/// Whether (db, key) is among the keys read in pass 1.
fn key_exists(
    buckets: &[Vec<(u64, u64)>],
    sources: &[Source<'_>],
    sections: &[Vec<Section>],
    router: &dyn Router,
    db: u64,
    key: &[u8],
) -> Result<Option<u64>, MergeError> {
    let fp = fingerprint(db, key);
    let b = &buckets[(fp >> 56) as usize];
    let mut i = b.partition_point(|x| x.0 < fp);
    while i < b.len() && b[i].0 == fp {
        let l = b[i].1 & !TTL_FLAG;
        if *read_key(sources, l)? == *key && target_db(router, src_db(sections, loc_input(l), loc_offset(l))) == db {
            return Ok(Some(l));
        }
        i += 1;
    }
    Ok(None)
}

/// Resolved conflicts listed in reports (the rest are counted).
const MAX_LISTED: usize = 100;

/// What the conflict policy decided, before it is applied to the counts and actions.
#[derive(Default)]
struct Resolution {
    /// (location, action), locations unique.
    actions: Vec<(u64, Action)>,
    /// Unresolved conflicts (all of them: `error` lists every one).
    conflicts: Vec<Conflict>,
    /// Resolved conflicts: how many, and the first `MAX_LISTED`.
    resolved: usize,
    examples: Vec<Conflict>,
}

impl Resolution {
    /// A function or module-data conflict: only `first` / `last` resolve it.
    fn add(&mut self, c: Conflict, policy: OnConflict) {
        match policy {
            OnConflict::First | OnConflict::Last => {
                self.resolved += 1;
                if self.examples.len() < MAX_LISTED {
                    self.examples.push(c);
                }
            }
            _ => self.conflicts.push(c),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn resolve(
    groups: Vec<Group>,
    buckets: &[Vec<(u64, u64)>],
    sources: &[Source<'_>],
    sections: &[Vec<Section>],
    router: &dyn Router,
    opts: &Options,
    counts: &mut [BTreeMap<u64, DbPlan>],
    res: &mut Resolution,
) -> Result<(), MergeError> {
    let template = opts.rename.clone().unwrap_or_default();
    let stems: Vec<String> = sources.iter().map(|s| file_stem(&s.name)).collect();
    let occurrences = |locs: &[u64]| -> Vec<Occurrence> {
        locs.iter()
            .map(|&l| {
                let (i, off) = (loc_input(l), loc_offset(l));
                occurrence(sources, i, src_db(sections, i, off), off)
            })
            .collect()
    };
    // Renamed keys: (target db, new name) -> locations renamed to it.
    let mut renamed: HashMap<(u64, Vec<u8>), Vec<u64>> = HashMap::new();
    let mut rename_clash: BTreeSet<(u64, Vec<u8>)> = BTreeSet::new();
    let mut dbs: Vec<(usize, u64, u64)> = Vec::new();
    for g in groups {
        // Twice in one db of one input: the input is corrupt, whatever the policy.
        dbs.clear();
        dbs.extend(
            g.locs.iter().map(|&l| (loc_input(l), src_db(sections, loc_input(l), loc_offset(l)), loc_offset(l))),
        );
        for (a, x) in dbs.iter().enumerate() {
            if let Some(y) = dbs[..a].iter().find(|y| y.0 == x.0 && y.1 == x.1) {
                let e = Error::new(
                    ErrorKind::DuplicateKey,
                    x.2,
                    format!("key already present in this database (first at offset {})", y.2),
                )
                .in_key(x.1, &g.key);
                return Err(MergeError::Input { file: sources[x.0].name.clone(), error: e });
            }
        }
        let conflict = || Conflict {
            kind: ConflictKind::Key,
            db: Some(g.db),
            key: g.key.clone(),
            occurrences: occurrences(&g.locs),
        };
        if opts.on_conflict == OnConflict::Error {
            res.conflicts.push(conflict());
            continue;
        }
        res.resolved += 1;
        if res.examples.len() < MAX_LISTED {
            res.examples.push(conflict());
        }
        let out = router.output(&g.key).unwrap_or(0);
        let plan = counts[out].entry(g.db).or_insert(DbPlan { db: g.db, ..Default::default() });
        match opts.on_conflict {
            OnConflict::Error => {}
            OnConflict::First | OnConflict::Last => {
                let keep = if opts.on_conflict == OnConflict::First { 0 } else { g.locs.len() - 1 };
                for (n, &l) in g.locs.iter().enumerate() {
                    if n == keep {
                        plan.kept += 1;
                        continue;
                    }
                    plan.dropped += 1;
                    plan.keys -= 1;
                    plan.expires -= (l & TTL_FLAG != 0) as u64;
                    res.actions.push((l & !TTL_FLAG, Action::Drop));
                }
            }
            OnConflict::Rename => {
                for (&l, &(input, db, _)) in g.locs.iter().zip(&dbs) {
                    let name = template.render(db, &g.key, input, &stems[input]);
                    let ttl = (l & TTL_FLAG != 0) as u64;
                    // The new name may belong to another output (split).
                    let Some(to) = router.output(&name) else {
                        return Err(MergeError::Rejected {
                            dbs: BTreeMap::new(),
                            unassigned: 1,
                            examples: vec![(crate::slot::key_slot(&name), name)],
                        });
                    };
                    let from = counts[out].get_mut(&g.db).expect("counted in pass 1");
                    from.keys -= 1;
                    from.expires -= ttl;
                    let dst = counts[to].entry(g.db).or_insert(DbPlan { db: g.db, ..Default::default() });
                    dst.keys += 1;
                    dst.expires += ttl;
                    dst.renamed += 1;
                    let e = renamed.entry((g.db, name.clone())).or_default();
                    e.push(l & !TTL_FLAG);
                    if e.len() > 1 {
                        rename_clash.insert((g.db, name.clone()));
                    }
                    res.actions.push((l & !TTL_FLAG, Action::Rename(name)));
                }
            }
        }
    }
    // A new name must not be an existing key, nor the new name of another key.
    let mut names: Vec<&(u64, Vec<u8>)> = renamed.keys().collect();
    names.sort();
    for k in names {
        let existing = key_exists(buckets, sources, sections, router, k.0, &k.1)?;
        if existing.is_some() || rename_clash.contains(k) {
            let mut locs: Vec<u64> = existing.into_iter().collect();
            locs.extend(&renamed[k]);
            res.conflicts.push(Conflict {
                kind: ConflictKind::Rename,
                db: Some(k.0),
                key: k.1.clone(),
                occurrences: occurrences(&locs),
            });
        }
    }
    Ok(())
}

fn by_input(actions: Vec<(u64, Action)>, inputs: usize) -> Vec<Vec<(u64, Action)>> {
    let mut out: Vec<Vec<(u64, Action)>> = vec![Vec::new(); inputs];
    for (l, a) in actions {
        out[loc_input(l)].push((loc_offset(l), a));
    }
    for v in &mut out {
        v.sort_unstable_by_key(|x| x.0);
    }
    out
}

/// What pass 2 wrote into one output.
#[derive(Debug, Clone, Copy)]
pub struct OutputStats {
    pub bytes: u64,
    pub checksum: Option<u64>,
}

/// Pass 2: writes every output (`outs[o]` for router output `o`).
pub fn write<'a, W: Write + Send>(
    plan: &Plan,
    sources: &[Source<'a>],
    router: &dyn Router,
    outs: Vec<W>,
) -> Result<Vec<(W, OutputStats)>, MergeError> {
    let werr = write_error;
    // Write buffers share 256 MiB (at most 1 MiB each).
    let limit = ((256usize << 20) / outs.len().max(1)).min(1 << 20);
    let mut ws: Vec<RdbWriter<'a, W>> =
        outs.into_iter().map(|w| RdbWriter::with_buffer(w, plan.target, limit)).collect();
    for w in &mut ws {
        for s in sources {
            if let Some(input) = s.input {
                w.release_written(s.data, input);
            }
        }
    }
    for (o, w) in ws.iter_mut().enumerate() {
        for (k, v) in &plan.aux {
            w.aux(k, v).map_err(|e| werr(o, e.into()))?;
        }
        for (m, when, p) in plan.module_aux.iter().filter(|x| x.1 != 2) {
            w.module_aux(*m, *when, p).map_err(|e| werr(o, e))?;
        }
        for f in &plan.functions {
            w.function(f).map_err(|e| werr(o, e))?;
        }
    }
    let dbs: BTreeSet<u64> =
        plan.counts.iter().flat_map(|m| m.iter().filter(|(_, c)| c.keys > 0).map(|(d, _)| *d)).collect();
    // When the target dbs of the inputs' sections, inputs in order, never go down, one read of
    // each input writes every db section in order. Otherwise each target db is a pass of its
    // own over the inputs that hold it (each read up to its last section for that db).
    let order: Vec<u64> = plan
        .sections
        .iter()
        .flatten()
        .filter(|x| x.keys > 0)
        .filter_map(|x| match router.db(x.db) {
            DbRoute::To(d) => Some(d),
            _ => None,
        })
        .collect();
    // An input whose key records all go unchanged to the one output is copied section by
    // section as whole pieces, without reading it again.
    let pieces: Vec<bool> = (0..sources.len())
        .map(|i| {
            ws.len() == 1
                && writer::verbatim(plan.formats[i], plan.target)
                && plan.actions[i].is_empty()
                && plan.sections[i].iter().all(|x| x.keys == 0 || x.pure)
        })
        .collect();
    let copy_pieces = |ws: &mut [RdbWriter<'a, W>], i: usize, only: Option<u64>, current: &mut Option<u64>| {
        for x in plan.sections[i].iter().filter(|x| x.keys > 0) {
            let DbRoute::To(d) = router.db(x.db) else { continue };
            if only.is_some_and(|o| o != d) {
                continue;
            }
            if *current != Some(d) {
                begin_dbs(plan, ws, d)?;
                *current = Some(d);
            }
            let (a, b) = (x.first_key as usize, x.keys_end as usize);
            ws[0].records(sources[i].data, a, b, x.keys, x.expires).map_err(|e| write_error(0, e))?;
        }
        Ok::<(), MergeError>(())
    };
    let mut current = None;
    if order.is_sorted() {
        for (i, s) in sources.iter().enumerate() {
            if pieces[i] {
                copy_pieces(&mut ws, i, None, &mut current)?;
            } else {
                copy_input(plan, i, s, router, &mut ws, None, u64::MAX, &mut current)?;
            }
        }
    } else {
        for &d in &dbs {
            begin_dbs(plan, &mut ws, d)?;
            current = Some(d);
            for (i, s) in sources.iter().enumerate() {
                if pieces[i] {
                    copy_pieces(&mut ws, i, Some(d), &mut current)?;
                    continue;
                }
                let to_d = |x: &&Section| x.keys > 0 && router.db(x.db) == DbRoute::To(d);
                if let Some(stop) = plan.sections[i].iter().filter(to_d).map(|x| x.end).max() {
                    copy_input(plan, i, s, router, &mut ws, Some(d), stop, &mut current)?;
                }
            }
        }
    }
    let mut done = Vec::with_capacity(ws.len());
    for (o, mut w) in ws.into_iter().enumerate() {
        for (m, when, p) in plan.module_aux.iter().filter(|x| x.1 == 2) {
            w.module_aux(*m, *when, p).map_err(|e| werr(o, e))?;
        }
        let (out, written) = w.finish().map_err(|e| werr(o, e))?;
        done.push((out, OutputStats { bytes: written.bytes, checksum: written.checksum }));
    }
    Ok(done)
}

fn write_error(o: usize, e: WriteError) -> MergeError {
    match e {
        WriteError::Io(e) => MergeError::Io(format!("output {o}: {e}")),
        WriteError::Refused(m) => MergeError::Refused { messages: vec![m], total: 1 },
    }
}

/// SELECTDB + RESIZEDB of target db `d` in every output that has keys there.
fn begin_dbs<W: Write + Send>(plan: &Plan, ws: &mut [RdbWriter<'_, W>], d: u64) -> Result<(), MergeError> {
    for (o, w) in ws.iter_mut().enumerate() {
        if let Some(c) = plan.counts[o].get(&d).filter(|c| c.keys > 0) {
            w.begin_db(d, c.keys, c.expires).map_err(|e| write_error(o, e))?;
        }
    }
    Ok(())
}

/// Copies the keys of input `i` (all, or those going to target db `only`) into their outputs,
/// reading up to the first non-key record at or after `stop`. Starts the db sections of the
/// outputs when the target db changes (`current`).
#[allow(clippy::too_many_arguments)]
fn copy_input<'a, W: Write + Send>(
    plan: &Plan,
    i: usize,
    s: &Source<'a>,
    router: &dyn Router,
    ws: &mut [RdbWriter<'a, W>],
    only: Option<u64>,
    stop: u64,
    current: &mut Option<u64>,
) -> Result<(), MergeError> {
    let fmt = plan.formats[i];
    let input_err = |error: Error| MergeError::Input { file: s.name.clone(), error };
    let mut reader = Reader::new(s.data).map_err(input_err)?;
    let mut rel = Releaser::new(s);
    let mut n = 0u32;
    let actions = &plan.actions[i];
    let mut next_action = 0;
    while let Some(rec) = reader.next() {
        let rec = rec.map_err(input_err)?;
        n = n.wrapping_add(1);
        if n.is_multiple_of(1024) {
            rel.upto(reader.record_offset() as usize);
        }
        let Record::Key(k) = rec else {
            if reader.record_offset() >= stop {
                break;
            }
            continue;
        };
        let DbRoute::To(d) = router.db(k.db) else { continue };
        if only.is_some_and(|o| o != d) {
            continue;
        }
        if *current != Some(d) {
            begin_dbs(plan, ws, d)?;
            *current = Some(d);
        }
        while next_action < actions.len() && actions[next_action].0 < k.key_offset {
            next_action += 1;
        }
        let action = actions.get(next_action).filter(|a| a.0 == k.key_offset).map(|a| &a.1);
        let (name, o) = match action {
            Some(Action::Drop) => continue,
            Some(Action::Rename(n)) => (Some(n.as_slice()), router.output(n)),
            None => (None, router.output(&k.key)),
        };
        let o = o.ok_or_else(|| MergeError::Io(format!("{}: key {} has no output", s.name, quoted(&k.key))))?;
        ws[o].key(&k, s.data, fmt, name).map_err(|e| write_error(o, e))?;
    }
    Ok(())
}

/// One written and checked output file.
#[derive(Debug, Clone, Serialize)]
pub struct OutputReport {
    pub file: String,
    pub bytes: u64,
    pub keys: u64,
    pub expires: u64,
    pub dbs: Vec<DbPlan>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timings {
    /// Pass 1: reading the inputs, collisions, counts.
    pub plan_s: f64,
    /// Pass 2: copying into the outputs (fsync included).
    pub write_s: f64,
    /// Re-reading every output with `verify`.
    pub verify_s: f64,
}

/// Pass 2 into files: each output under a temporary name in its directory, fsynced, checked with
/// our own `verify` (which must pass and find exactly the planned keys per db), and renamed only
/// when every output passed. Returns the reports and timings; on any failure no target is
/// created and the temporary files are removed.
pub fn write_files(
    plan: &Plan,
    sources: &[Source<'_>],
    router: &dyn Router,
    targets: &[PathBuf],
    inputs: &[&Path],
    force: bool,
) -> Result<(Vec<OutputReport>, Timings), MergeError> {
    let t0 = Instant::now();
    let mut files = Vec::with_capacity(targets.len());
    for t in targets {
        let f = AtomicFile::create(t, inputs, force).map_err(|e| MergeError::Io(format!("{}: {e}", t.display())))?;
        files.push(f);
    }
    // Write errors name the output by its index; the user wants its path.
    let written = write(plan, sources, router, files).map_err(|e| match e {
        MergeError::Io(m) => MergeError::Io(
            targets
                .iter()
                .enumerate()
                .find_map(|(o, t)| m.strip_prefix(&format!("output {o}: ")).map(|r| format!("{}: {r}", t.display())))
                .unwrap_or(m),
        ),
        other => other,
    })?;
    let mut files = Vec::with_capacity(written.len());
    for (mut f, st) in written {
        f.sync().map_err(|e| MergeError::Io(format!("{}: {e}", f.target().display())))?;
        files.push((f, st));
    }
    let write_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    // One output at a time: `verify` itself runs on every core, and its memory stays that of one.
    let checks: Vec<Result<OutputReport, MergeError>> = files
        .iter()
        .enumerate()
        .map(|(o, (f, st))| check_output(f.tmp_path(), f.target(), &plan.counts[o], st))
        .collect();
    let reports: Vec<OutputReport> = checks.into_iter().collect::<Result<_, _>>()?;
    let verify_s = t1.elapsed().as_secs_f64();
    for (f, _) in files {
        let target = f.target().to_path_buf();
        f.commit().map_err(|e| MergeError::Io(format!("{}: {e}", target.display())))?;
    }
    Ok((reports, Timings { plan_s: plan.plan_s, write_s, verify_s }))
}

/// Re-reads a written file with `verify`: it must be valid and hold exactly the planned counts.
fn check_output(
    tmp: &Path,
    target: &Path,
    planned: &BTreeMap<u64, DbPlan>,
    st: &OutputStats,
) -> Result<OutputReport, MergeError> {
    let name = target.display().to_string();
    let fail = |m: String| MergeError::Io(format!("{name}: the written file failed its check: {m}"));
    let data = crate::input::open(tmp).map_err(|e| fail(format!("cannot re-read it: {e}")))?;
    if data.len() as u64 != st.bytes {
        return Err(fail(format!("{} bytes on disk, {} written", data.len(), st.bytes)));
    }
    let opts = crate::verify::Options { keep_going: false, max_errors: 10, now_ms: 0, target: None };
    let rep = crate::verify::verify_bytes_releasing(&name, &data, &opts, &|r| data.release(r));
    if !rep.ok {
        let e = rep.errors.first().map_or_else(String::new, |e| {
            let key = e.key.as_ref().map(|k| format!(", key {}", quoted(k))).unwrap_or_default();
            format!("at offset {}{key}: {}", e.offset, e.message)
        });
        return Err(MergeError::Invalid(format!(
            "{name}: the written file failed its check ({e}); values are copied unchanged, so an input \
             holds this broken value (check the inputs with `rdbtool verify`); nothing written"
        )));
    }
    let dbs: Vec<DbPlan> = planned.values().filter(|c| c.keys > 0 || c.dropped > 0).copied().collect();
    let got: Vec<(u64, u64, u64)> = rep.dbs.iter().map(|d| (d.db, d.keys, d.expires)).collect();
    let want: Vec<(u64, u64, u64)> = dbs.iter().filter(|c| c.keys > 0).map(|c| (c.db, c.keys, c.expires)).collect();
    if got != want {
        return Err(fail(format!("found (db, keys, expires) {got:?}, planned {want:?}")));
    }
    Ok(OutputReport { file: name, bytes: st.bytes, keys: rep.keys, expires: rep.expires, dbs })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = RenameTemplate::parse("{db}:{key}").unwrap();
        assert_eq!(t.render(3, b"k", 0, "a"), b"3:k");
        assert_eq!(t, RenameTemplate::default());
        let t = RenameTemplate::parse("{{{file}}}-{input}/{key}").unwrap();
        assert_eq!(t.render(0, b"x", 2, "dump"), b"{dump}-2/x");
        assert!(RenameTemplate::parse("{db}").is_err());
        assert!(RenameTemplate::parse("{nope}{key}").is_err());
        assert!(RenameTemplate::parse("{key").is_err());
        assert!(RenameTemplate::parse("}{key}").is_err());
    }

    #[test]
    fn library_names() {
        assert_eq!(library_name(b"#!lua name=mylib\nredis.register_function(...)"), Some(&b"mylib"[..]));
        assert_eq!(library_name(b"#!lua  foo=1 name=x"), Some(&b"x"[..]));
        assert_eq!(library_name(b"no shebang"), None);
    }

    #[test]
    fn default_targets() {
        let r = |v| Format { flavor: Flavor::Redis, version: v };
        let v80 = Format { flavor: Flavor::Valkey, version: 80 };
        assert_eq!(default_target(&[r(9), r(11), r(10)]), r(11));
        assert_eq!(default_target(&[r(11), v80]), v80);
    }
}
