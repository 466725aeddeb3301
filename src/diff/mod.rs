//! The engine behind `rdbtool diff` and `restore-test`: a logical comparison of two datasets, each
//! an RDB file or a live server (`live`).
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
//! `PARTITIONS` partitions by a 64-bit hash of (db, key): a file's keys as (hash, key offset,
//! expire time, db) for file against file, or as two independent 64-bit hashes for file against
//! a live server (`live`), whose SCAN output keeps the key itself. Partitions live in memory up
//! to `Options::memory_budget` and are spilled to files in a temp dir beyond it; the join then
//! takes one partition at a time. Values are never held beyond the keys being compared.

pub mod live;

use std::io::{self, Read, Write};
use std::ops::RangeInclusive;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Value as Json, json};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::{Error, ErrorKind};
use crate::filter::Glob;
use crate::json::{bytes as jbytes, score as jscore};
use crate::rdb::cursor::Cursor;
use crate::rdb::reader::{Reader, Record, key_at};
use crate::rdb::types::{Format, Kind};
use crate::rdb::value::{HashField, RawValue, Stream, StreamEntry, StreamGroup, Value};
use crate::rdb::walk::{Walker, skip_value};

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
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SideInfo {
    pub kind: Kind,
    pub expire_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub db: u64,
    pub key: Vec<u8>,
    pub kind: DiffKind,
    /// The key on side A (absent when it is not there).
    pub a: Option<SideInfo>,
    pub b: Option<SideInfo>,
    /// For `value`: what differs (first differing members, lengths), in the export vocabulary.
    pub detail: Option<Json>,
}

impl Difference {
    /// `{"db","key","kind","a":{"type","expire_at_ms"}|null,"b":...,"detail":...}`, in that
    /// order (the names and byte strings of export's JSON).
    pub fn to_json(&self) -> String {
        let side = |s: &Option<SideInfo>| match s {
            Some(s) => format!(
                "{{\"type\":\"{}\",\"expire_at_ms\":{}}}",
                s.kind.as_str(),
                s.expire_at_ms.map_or_else(|| "null".to_owned(), |t| t.to_string())
            ),
            None => "null".to_owned(),
        };
        let mut o = format!(
            "{{\"db\":{},\"key\":{},\"kind\":\"{}\",\"a\":{},\"b\":{}",
            self.db,
            jbytes(&self.key),
            self.kind.as_str(),
            side(&self.a),
            side(&self.b)
        );
        if let Some(d) = &self.detail {
            o.push_str(",\"detail\":");
            o.push_str(&d.to_string());
        }
        o.push('}');
        o
    }
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
    /// Compare consumer seen / active times and PEL delivery times (with the tolerance).
    pub stream_times: bool,
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
            max_members: 10,
            select: KeySelect::default(),
            memory_budget: 512 << 20,
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

/// Compares one key present on both sides. `None` when it is the same.
pub fn compare_entries(
    db: u64,
    key: &[u8],
    a: &Entry<'_>,
    b: &Entry<'_>,
    w: &mut Walker,
    opts: &Options,
    names: &Names,
) -> Result<Option<Difference>, DiffError> {
    let diff =
        |kind, detail| Some(Difference { db, key: key.to_vec(), kind, a: Some(a.info()), b: Some(b.info()), detail });
    if a.raw.kind() != b.raw.kind() {
        return Ok(diff(DiffKind::Type, None));
    }
    let same_bytes =
        a.raw.type_byte == b.raw.type_byte && a.raw.format.flavor == b.raw.format.flavor && a.raw.bytes == b.raw.bytes;
    if !same_bytes {
        let va = a.raw.decode(w).map_err(|e| DiffError::Input(names.a.clone(), e.in_key(db, key)))?;
        let vb = b.raw.decode(w).map_err(|e| DiffError::Input(names.b.clone(), e.in_key(db, key)))?;
        if let Some(d) = value_detail(&va, &vb, opts) {
            return Ok(diff(DiffKind::Value, Some(d)));
        }
    }
    if !times_close(a.expire_at_ms, b.expire_at_ms, opts.ttl_tolerance_ms) {
        return Ok(diff(DiffKind::Ttl, None));
    }
    Ok(None)
}

/// A key found on one side only. `other_as_of_ms`: when the other side was read (its snapshot
/// time); a key whose expire time had passed by then is `expired`, not missing.
pub fn one_sided(db: u64, key: &[u8], info: SideInfo, in_a: bool, other_as_of_ms: i64, opts: &Options) -> Difference {
    let expired = info.expire_at_ms.is_some_and(|t| t <= other_as_of_ms.saturating_add(opts.ttl_tolerance_ms));
    let kind = match (expired, in_a) {
        (true, _) => DiffKind::Expired,
        (false, true) => DiffKind::OnlyInA,
        (false, false) => DiffKind::OnlyInB,
    };
    let (a, b) = if in_a { (Some(info), None) } else { (None, Some(info)) };
    Difference { db, key: key.to_vec(), kind, a, b, detail: None }
}

fn times_close(a: Option<i64>, b: Option<i64>, tol: i64) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => x.abs_diff(y) <= tol as u64,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Value comparison: `None` when equal, else a small description of what differs.

fn value_detail(a: &Value, b: &Value, o: &Options) -> Option<Json> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => (x != y).then(|| string_detail(x, y)),
        (Value::List(x), Value::List(y)) => list_detail(x, y, o),
        (Value::Set(x), Value::Set(y)) => set_detail(x, y, o),
        (Value::Zset(x), Value::Zset(y)) => zset_detail(x, y, o),
        (Value::Hash(x), Value::Hash(y)) => hash_detail(x, y, o),
        (Value::Stream(x), Value::Stream(y)) => stream_detail(x, y, o),
        (Value::Module(x), Value::Module(y)) => (x.module_type != y.module_type || x.payload != y.payload).then(|| {
            json!({
                "module_a": x.module_type.name(), "version_a": x.module_type.encver(),
                "module_b": y.module_type.name(), "version_b": y.module_type.encver(),
                "payload_bytes_a": x.payload.len(), "payload_bytes_b": y.payload.len(),
            })
        }),
        _ => Some(json!({})),
    }
}

/// Bytes shown around a difference in a long string.
const EXCERPT: usize = 64;

fn string_detail(x: &[u8], y: &[u8]) -> Json {
    let at = x.iter().zip(y).position(|(p, q)| p != q).unwrap_or(x.len().min(y.len()));
    let excerpt = |s: &[u8]| jbytes(&s[at.min(s.len())..(at + EXCERPT).min(s.len())]);
    let mut d = json!({ "length_a": x.len(), "length_b": y.len(), "first_difference_at": at });
    if x.len() <= 2 * EXCERPT && y.len() <= 2 * EXCERPT {
        d["a"] = jbytes(x);
        d["b"] = jbytes(y);
    } else {
        d["a_from_difference"] = excerpt(x);
        d["b_from_difference"] = excerpt(y);
    }
    d
}

fn list_detail(x: &[Vec<u8>], y: &[Vec<u8>], o: &Options) -> Option<Json> {
    if x == y {
        return None;
    }
    let at = x.iter().zip(y).position(|(p, q)| p != q).unwrap_or(x.len().min(y.len()));
    let from = |s: &[Vec<u8>]| -> Vec<Json> { s.iter().skip(at).take(o.max_members).map(|e| jbytes(e)).collect() };
    Some(json!({
        "length_a": x.len(), "length_b": y.len(), "first_difference_at": at,
        "a_from_difference": from(x), "b_from_difference": from(y),
    }))
}

/// Members of `x` not in `y`: the first `max` (sorted) and how many.
fn missing<'v>(x: &'v [Vec<u8>], y: &std::collections::HashSet<&[u8]>, max: usize) -> (Vec<&'v [u8]>, usize) {
    let mut v: Vec<&[u8]> = x.iter().map(|m| m.as_slice()).filter(|m| !y.contains(m)).collect();
    let n = v.len();
    v.sort_unstable();
    v.truncate(max);
    (v, n)
}

fn set_detail(x: &[Vec<u8>], y: &[Vec<u8>], o: &Options) -> Option<Json> {
    let sx: std::collections::HashSet<&[u8]> = x.iter().map(|m| m.as_slice()).collect();
    let sy: std::collections::HashSet<&[u8]> = y.iter().map(|m| m.as_slice()).collect();
    let (oa, na) = missing(x, &sy, o.max_members);
    let (ob, nb) = missing(y, &sx, o.max_members);
    if na == 0 && nb == 0 {
        return None;
    }
    Some(json!({
        "length_a": x.len(), "length_b": y.len(),
        "only_in_a": oa.iter().map(|m| jbytes(m)).collect::<Vec<_>>(), "only_in_a_count": na,
        "only_in_b": ob.iter().map(|m| jbytes(m)).collect::<Vec<_>>(), "only_in_b_count": nb,
    }))
}

fn zset_detail(x: &[(Vec<u8>, f64)], y: &[(Vec<u8>, f64)], o: &Options) -> Option<Json> {
    let mx: std::collections::HashMap<&[u8], f64> = x.iter().map(|(m, s)| (m.as_slice(), *s)).collect();
    let my: std::collections::HashMap<&[u8], f64> = y.iter().map(|(m, s)| (m.as_slice(), *s)).collect();
    let mut only_a: Vec<&[u8]> = mx.keys().filter(|m| !my.contains_key(*m)).copied().collect();
    let mut only_b: Vec<&[u8]> = my.keys().filter(|m| !mx.contains_key(*m)).copied().collect();
    // `==` on doubles: -0.0 equals 0, inf equals inf (NaN is refused by the reader).
    let mut changed: Vec<(&[u8], f64, f64)> =
        mx.iter().filter_map(|(m, s)| my.get(m).filter(|t| **t != *s).map(|t| (*m, *s, *t))).collect();
    if only_a.is_empty() && only_b.is_empty() && changed.is_empty() {
        return None;
    }
    let (na, nb, nc) = (only_a.len(), only_b.len(), changed.len());
    only_a.sort_unstable();
    only_b.sort_unstable();
    changed.sort_unstable_by(|p, q| p.0.cmp(q.0));
    let max = o.max_members;
    Some(json!({
        "length_a": x.len(), "length_b": y.len(),
        "only_in_a": only_a.iter().take(max).map(|m| jbytes(m)).collect::<Vec<_>>(), "only_in_a_count": na,
        "only_in_b": only_b.iter().take(max).map(|m| jbytes(m)).collect::<Vec<_>>(), "only_in_b_count": nb,
        "different_scores": changed.iter().take(max).map(|(m, a, b)| json!([jbytes(m), jscore(*a), jscore(*b)])).collect::<Vec<_>>(),
        "different_scores_count": nc,
    }))
}

fn hash_detail(x: &[HashField], y: &[HashField], o: &Options) -> Option<Json> {
    type Fields<'v> = std::collections::HashMap<&'v [u8], (&'v [u8], Option<i64>)>;
    fn map(h: &[HashField]) -> Fields<'_> {
        h.iter().map(|f| (f.field.as_slice(), (f.value.as_slice(), f.expire_at_ms))).collect()
    }
    let (mx, my) = (map(x), map(y));
    let mut only_a: Vec<&[u8]> = mx.keys().filter(|f| !my.contains_key(*f)).copied().collect();
    let mut only_b: Vec<&[u8]> = my.keys().filter(|f| !mx.contains_key(*f)).copied().collect();
    let mut values = Vec::new();
    let mut ttls = Vec::new();
    for (f, (va, ta)) in &mx {
        if let Some((vb, tb)) = my.get(f) {
            if va != vb {
                values.push((*f, *va, *vb));
            } else if !times_close(*ta, *tb, o.ttl_tolerance_ms) {
                ttls.push((*f, *ta, *tb));
            }
        }
    }
    if only_a.is_empty() && only_b.is_empty() && values.is_empty() && ttls.is_empty() {
        return None;
    }
    let (na, nb, nv, nt) = (only_a.len(), only_b.len(), values.len(), ttls.len());
    only_a.sort_unstable();
    only_b.sort_unstable();
    values.sort_unstable_by(|p, q| p.0.cmp(q.0));
    ttls.sort_unstable_by(|p, q| p.0.cmp(q.0));
    let max = o.max_members;
    let mut d = json!({
        "length_a": x.len(), "length_b": y.len(),
        "only_in_a": only_a.iter().take(max).map(|m| jbytes(m)).collect::<Vec<_>>(), "only_in_a_count": na,
        "only_in_b": only_b.iter().take(max).map(|m| jbytes(m)).collect::<Vec<_>>(), "only_in_b_count": nb,
        "different_values": values.iter().take(max).map(|(f, a, b)| json!([jbytes(f), jbytes(a), jbytes(b)])).collect::<Vec<_>>(),
        "different_values_count": nv,
    });
    if nt > 0 {
        d["different_field_ttls"] = ttls.iter().take(max).map(|(f, a, b)| json!([jbytes(f), a, b])).collect();
        d["different_field_ttls_count"] = json!(nt);
    }
    Some(d)
}

fn entry_json(e: &StreamEntry) -> Json {
    json!({
        "id": e.id.to_string(),
        "fields": e.fields.iter().map(|(f, v)| json!([jbytes(f), jbytes(v)])).collect::<Vec<_>>(),
    })
}

fn stream_detail(x: &Stream, y: &Stream, o: &Options) -> Option<Json> {
    let mut d = serde_json::Map::new();
    if x.entries != y.entries {
        let at =
            x.entries.iter().zip(&y.entries).position(|(p, q)| p != q).unwrap_or(x.entries.len().min(y.entries.len()));
        d.insert(
            "entries".into(),
            json!({
                "length_a": x.entries.len(), "length_b": y.entries.len(), "first_difference_at": at,
                "a": x.entries.get(at).map(entry_json), "b": y.entries.get(at).map(entry_json),
            }),
        );
    }
    let mut meta = serde_json::Map::new();
    let (ma, mb) = (&x.meta, &y.meta);
    if ma.length != mb.length {
        meta.insert("length".into(), json!([ma.length, mb.length]));
    }
    if ma.last_id != mb.last_id {
        meta.insert("last_id".into(), json!([ma.last_id.to_string(), mb.last_id.to_string()]));
    }
    // Fields an older stream type lacks are compared only when both sides have them.
    if let (Some(p), Some(q)) = (ma.first_id, mb.first_id)
        && p != q
    {
        meta.insert("first_id".into(), json!([p.to_string(), q.to_string()]));
    }
    if let (Some(p), Some(q)) = (ma.max_deleted_id, mb.max_deleted_id)
        && p != q
    {
        meta.insert("max_deleted_id".into(), json!([p.to_string(), q.to_string()]));
    }
    if let (Some(p), Some(q)) = (ma.entries_added, mb.entries_added)
        && p != q
    {
        meta.insert("entries_added".into(), json!([p, q]));
    }
    if !meta.is_empty() {
        d.insert("meta".into(), Json::Object(meta));
    }
    if let Some(g) = groups_detail(&x.groups, &y.groups, o) {
        d.insert("groups".into(), g);
    }
    if let (Some(p), Some(q)) = (&x.idmp, &y.idmp) {
        if p != q {
            d.insert("idmp".into(), json!("differs"));
        }
    } else if x.idmp.is_some() != y.idmp.is_some() {
        d.insert("idmp".into(), json!({ "a": x.idmp.is_some(), "b": y.idmp.is_some() }));
    }
    (!d.is_empty()).then_some(Json::Object(d))
}

fn groups_detail(x: &[StreamGroup], y: &[StreamGroup], o: &Options) -> Option<Json> {
    let find = |gs: &'_ [StreamGroup], name: &[u8]| gs.iter().position(|g| g.name == name);
    let only_a: Vec<Json> = x.iter().filter(|g| find(y, &g.name).is_none()).map(|g| jbytes(&g.name)).collect();
    let only_b: Vec<Json> = y.iter().filter(|g| find(x, &g.name).is_none()).map(|g| jbytes(&g.name)).collect();
    let mut different = Vec::new();
    for ga in x {
        let Some(i) = find(y, &ga.name) else { continue };
        let gb = &y[i];
        let mut what = serde_json::Map::new();
        if ga.last_id != gb.last_id {
            what.insert("last_id".into(), json!([ga.last_id.to_string(), gb.last_id.to_string()]));
        }
        if let (Some(p), Some(q)) = (ga.entries_read, gb.entries_read)
            && p != q
        {
            let n = |v: u64| if v == u64::MAX { Json::Null } else { json!(v) };
            what.insert("entries_read".into(), json!([n(p), n(q)]));
        }
        if let Some(p) = pending_detail(ga, gb, o) {
            what.insert("pending".into(), p);
        }
        if let Some(c) = consumers_detail(ga, gb, o) {
            what.insert("consumers".into(), c);
        }
        if !what.is_empty() {
            what.insert("name".into(), jbytes(&ga.name));
            different.push(Json::Object(what));
        }
    }
    if only_a.is_empty() && only_b.is_empty() && different.is_empty() {
        return None;
    }
    Some(json!({ "only_in_a": only_a, "only_in_b": only_b, "different": different }))
}

fn pending_detail(a: &StreamGroup, b: &StreamGroup, o: &Options) -> Option<Json> {
    let name = |g: &'_ StreamGroup, i: usize| g.consumers.get(i).map(|c| c.name.clone()).unwrap_or_default();
    let mb: std::collections::HashMap<_, _> = b.pending.iter().map(|p| (p.id, p)).collect();
    let ma: std::collections::HashMap<_, _> = a.pending.iter().map(|p| (p.id, p)).collect();
    let mut diffs = Vec::new();
    let mut n = 0usize;
    for p in &a.pending {
        let same = mb.get(&p.id).is_some_and(|q| {
            name(a, p.consumer) == name(b, q.consumer)
                && p.delivery_count == q.delivery_count
                && (!o.stream_times || p.delivery_time_ms.abs_diff(q.delivery_time_ms) <= o.ttl_tolerance_ms as u64)
        });
        if !same {
            n += 1;
            if diffs.len() < o.max_members {
                diffs.push(json!({ "id": p.id.to_string(), "in_b": mb.contains_key(&p.id) }));
            }
        }
    }
    for q in b.pending.iter().filter(|q| !ma.contains_key(&q.id)) {
        n += 1;
        if diffs.len() < o.max_members {
            diffs.push(json!({ "id": q.id.to_string(), "in_a": false }));
        }
    }
    (n > 0).then(|| json!({ "length_a": a.pending.len(), "length_b": b.pending.len(), "differing": diffs, "differing_count": n }))
}

fn consumers_detail(a: &StreamGroup, b: &StreamGroup, o: &Options) -> Option<Json> {
    let tol = o.ttl_tolerance_ms as u64;
    let mut only_a = Vec::new();
    let mut times = Vec::new();
    for c in &a.consumers {
        match b.consumers.iter().find(|d| d.name == c.name) {
            None => only_a.push(jbytes(&c.name)),
            Some(d) if o.stream_times => {
                let active = match (c.active_time_ms, d.active_time_ms) {
                    (Some(p), Some(q)) => p.abs_diff(q) > tol,
                    _ => false,
                };
                if c.seen_time_ms.abs_diff(d.seen_time_ms) > tol || active {
                    times.push(json!({
                        "name": jbytes(&c.name),
                        "seen_time_ms": [c.seen_time_ms, d.seen_time_ms],
                        "active_time_ms": [c.active_time_ms, d.active_time_ms],
                    }));
                }
            }
            Some(_) => {}
        }
    }
    let only_b: Vec<Json> =
        b.consumers.iter().filter(|d| !a.consumers.iter().any(|c| c.name == d.name)).map(|d| jbytes(&d.name)).collect();
    if only_a.is_empty() && only_b.is_empty() && times.is_empty() {
        return None;
    }
    times.truncate(o.max_members);
    Some(json!({ "only_in_a": only_a, "only_in_b": only_b, "different_times": times }))
}

// ---------------------------------------------------------------------------------------------
// RDB files as a side.

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
    /// Gives back the pages of a range read already (`Input::release`), so that a sequential
    /// pass over a memory-mapped file larger than RAM keeps RSS flat.
    release: Option<&'a (dyn Fn(std::ops::Range<usize>) + Sync)>,
}

/// A sequential pass releases pages this far behind the record it reads (lookups in flight
/// still point into them; a released page is read again from the file if needed).
const RELEASE_LAG: usize = 64 << 20;

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
        Ok(FileSide { name, data, format, as_of_ms, trailing_bytes: 0, release: None })
    }

    /// Lets sequential passes give back the pages they have read (see `Input::release`).
    pub fn with_release(mut self, release: &'a (dyn Fn(std::ops::Range<usize>) + Sync)) -> FileSide<'a> {
        self.release = Some(release);
        self
    }

    /// Every selected key record, in file order; `f` gets each. Errors name the file.
    pub fn for_each_key(
        &mut self,
        select: &KeySelect,
        mut f: impl FnMut(crate::rdb::KeyRecord<'a>) -> Result<(), DiffError>,
    ) -> Result<(), DiffError> {
        let mut reader = Reader::new(self.data).map_err(|e| DiffError::Input(self.name.clone(), e))?;
        let mut released = 0usize;
        while let Some(rec) = reader.next() {
            match rec.map_err(|e| DiffError::Input(self.name.clone(), e))? {
                Record::Key(k) if select.matches(k.db, &k.key) => f(k)?,
                _ => {}
            }
            if let Some(release) = self.release {
                let upto = (reader.offset() as usize).saturating_sub(RELEASE_LAG);
                if upto >= released + RELEASE_LAG {
                    release(released..upto);
                    released = upto;
                }
            }
        }
        if let Some(t) = reader.trailer() {
            self.trailing_bytes = t.trailing_bytes;
        }
        Ok(())
    }

    /// Keys in the file (for `--sample N`): a pass that reads records without decoding values.
    pub fn count_keys(&self, select: &KeySelect) -> Result<u64, DiffError> {
        let mut n = 0;
        let reader = Reader::new(self.data).map_err(|e| DiffError::Input(self.name.clone(), e))?;
        for rec in reader {
            if let Record::Key(k) = rec.map_err(|e| DiffError::Input(self.name.clone(), e))? {
                n += u64::from(select.matches(k.db, &k.key));
            }
        }
        Ok(n)
    }

    /// The value of the key whose string starts at `key_offset` (from a partition entry).
    fn value_at(&self, key_offset: u64) -> Result<RawValue<'a>, DiffError> {
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

    fn key_at(&self, key_offset: u64) -> Result<std::borrow::Cow<'a, [u8]>, DiffError> {
        key_at(self.data, key_offset).map_err(|e| DiffError::Input(self.name.clone(), e))
    }
}

// ---------------------------------------------------------------------------------------------
// Hashed partitions, spilled to disk beyond a memory budget.

/// Number of partitions: at the default budget of 512 MiB, a partition in memory during the
/// join is 1/1024 of all entries (16 MB per 500 million file keys).
pub const PARTITIONS: usize = 1024;

pub(crate) struct Partitions {
    bufs: Vec<Vec<u8>>,
    in_memory: usize,
    budget: usize,
    temp_parent: Option<PathBuf>,
    dir: Option<tempfile::TempDir>,
    /// Bytes spilled so far.
    pub spilled: u64,
}

impl Drop for Partitions {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            let path = d.path().to_path_buf();
            drop(d);
            crate::cleanup::remove_path(&path);
        }
    }
}

impl Partitions {
    pub fn new(budget: usize, temp_parent: Option<PathBuf>) -> Partitions {
        Partitions { bufs: vec![Vec::new(); PARTITIONS], in_memory: 0, budget, temp_parent, dir: None, spilled: 0 }
    }

    #[inline]
    pub fn partition_of(hash: u64) -> usize {
        (hash as usize) & (PARTITIONS - 1)
    }

    pub fn push(&mut self, hash: u64, rec: &[u8]) -> Result<(), DiffError> {
        self.bufs[Self::partition_of(hash)].extend_from_slice(rec);
        self.in_memory += rec.len();
        if self.in_memory > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), DiffError> {
        let io = |e| DiffError::Io("spilling key partitions to a temp dir".into(), e);
        if self.dir.is_none() {
            let mut b = tempfile::Builder::new();
            b.prefix("rdbtool-diff-");
            // Removed on SIGINT / SIGTERM too.
            let d = crate::cleanup::create_path(
                || match &self.temp_parent {
                    Some(p) => b.tempdir_in(p),
                    None => b.tempdir(),
                },
                |d| d.path().to_path_buf(),
            );
            let d = d.map_err(io)?;
            self.dir = Some(d);
        }
        let dir = self.dir.as_ref().map(|d| d.path().to_path_buf()).unwrap_or_default();
        for (i, buf) in self.bufs.iter_mut().enumerate() {
            if buf.is_empty() {
                continue;
            }
            let mut f =
                std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("p{i}"))).map_err(io)?;
            f.write_all(buf).map_err(io)?;
            self.spilled += buf.len() as u64;
            *buf = Vec::new();
        }
        self.in_memory = 0;
        Ok(())
    }

    /// The entries of partition `i` (spilled ones first), leaving it empty.
    pub fn take(&mut self, i: usize) -> Result<Vec<u8>, DiffError> {
        let mut v = Vec::new();
        if let Some(d) = &self.dir {
            let p = d.path().join(format!("p{i}"));
            match std::fs::File::open(&p) {
                Ok(mut f) => {
                    f.read_to_end(&mut v).map_err(|e| DiffError::Io(p.display().to_string(), e))?;
                    let _ = std::fs::remove_file(&p);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(DiffError::Io(p.display().to_string(), e)),
            }
        }
        let mem = std::mem::take(&mut self.bufs[i]);
        self.in_memory -= mem.len().min(self.in_memory);
        if v.is_empty() {
            return Ok(mem);
        }
        v.extend_from_slice(&mem);
        Ok(v)
    }
}

/// A file key in a partition: hash, key offset, expire time (`i64::MIN` for none), db.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileKeyEntry {
    pub hash: u64,
    pub key_offset: u64,
    pub expire_at_ms: Option<i64>,
    pub db: u64,
}

impl FileKeyEntry {
    pub const SIZE: usize = 32;
    pub fn encode(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&self.hash.to_le_bytes());
        b[8..16].copy_from_slice(&self.key_offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.expire_at_ms.unwrap_or(i64::MIN).to_le_bytes());
        b[24..].copy_from_slice(&self.db.to_le_bytes());
        b
    }
    pub fn decode_all(buf: &[u8]) -> Vec<FileKeyEntry> {
        let u = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]));
        buf.chunks_exact(Self::SIZE)
            .map(|c| {
                let e = u(&c[16..24]) as i64;
                FileKeyEntry {
                    hash: u(&c[..8]),
                    key_offset: u(&c[8..16]),
                    expire_at_ms: (e != i64::MIN).then_some(e),
                    db: u(&c[24..]),
                }
            })
            .collect()
    }
}

/// Runs of equal hashes in entries sorted by hash: the indices whose hash is `h`.
pub(crate) fn equal_hash_range(sorted: &[FileKeyEntry], h: u64) -> std::ops::Range<usize> {
    let lo = sorted.partition_point(|e| e.hash < h);
    let hi = lo + sorted[lo..].partition_point(|e| e.hash == h);
    lo..hi
}

// ---------------------------------------------------------------------------------------------
// File against file.

/// Compares two RDB images. Differences go to `out` partition by partition (hash order, not
/// file order).
pub fn diff_files(
    a: &mut FileSide<'_>,
    b: &mut FileSide<'_>,
    opts: &Options,
    out: &mut dyn Output,
) -> Result<Summary, DiffError> {
    let budget = opts.memory_budget / 2;
    let mut pa = Partitions::new(budget, opts.temp_dir.clone());
    let mut pb = Partitions::new(budget, opts.temp_dir.clone());
    let mut summary = Summary { sample_rate: opts.select.sample_rate, ..Summary::default() };
    summary.keys_a = partition_file(a, opts, &mut pa)?;
    summary.keys_b = partition_file(b, opts, &mut pb)?;
    let names = Names { a: a.name.clone(), b: b.name.clone() };
    let (a, b) = (&*a, &*b);
    let mut tally = Tally::new(out);
    // Partitions in parallel, a few at a time so that their differences stay few in memory.
    let group = rayon::current_num_threads().max(1) * 2;
    for first in (0..PARTITIONS).step_by(group) {
        let mut loaded = Vec::new();
        for i in first..(first + group).min(PARTITIONS) {
            loaded.push((FileKeyEntry::decode_all(&pa.take(i)?), FileKeyEntry::decode_all(&pb.take(i)?)));
        }
        let results: Vec<Result<(Summary, Vec<Difference>), DiffError>> =
            loaded.into_par_iter().map(|(ea, eb)| join_file_partition(a, b, ea, eb, opts, &names)).collect();
        for r in results {
            let (s, diffs) = r?;
            // Differences are counted as they are recorded.
            tally.summary.same += s.same;
            for d in diffs {
                tally.record(Some(d))?;
            }
        }
    }
    tally.summary.keys_a = summary.keys_a;
    tally.summary.keys_b = summary.keys_b;
    tally.summary.sample_rate = summary.sample_rate;
    Ok(tally.summary)
}

/// Puts every selected key of the file into partitions; returns how many.
fn partition_file(side: &mut FileSide<'_>, opts: &Options, parts: &mut Partitions) -> Result<u64, DiffError> {
    let mut n = 0;
    side.for_each_key(&opts.select, |k| {
        n += 1;
        let hash = key_hash(k.db, &k.key);
        let e = FileKeyEntry { hash, key_offset: k.key_offset, expire_at_ms: k.expire_at_ms, db: k.db };
        parts.push(hash, &e.encode())
    })?;
    Ok(n)
}

fn join_file_partition(
    a: &FileSide<'_>,
    b: &FileSide<'_>,
    mut ea: Vec<FileKeyEntry>,
    eb: Vec<FileKeyEntry>,
    opts: &Options,
    names: &Names,
) -> Result<(Summary, Vec<Difference>), DiffError> {
    let mut s = Summary::default();
    let mut diffs = Vec::new();
    let mut w = Walker::new();
    ea.sort_unstable_by_key(|e| (e.hash, e.key_offset));
    let mut matched = vec![false; ea.len()];
    for e in &eb {
        let kb = b.key_at(e.key_offset)?;
        let mut found = None;
        for i in equal_hash_range(&ea, e.hash) {
            if !matched[i] && ea[i].db == e.db && a.key_at(ea[i].key_offset)? == kb {
                found = Some(i);
                break;
            }
        }
        let rb = b.value_at(e.key_offset)?;
        let entry_b = Entry { raw: rb, expire_at_ms: e.expire_at_ms };
        match found {
            Some(i) => {
                matched[i] = true;
                let entry_a = Entry { raw: a.value_at(ea[i].key_offset)?, expire_at_ms: ea[i].expire_at_ms };
                match compare_entries(e.db, &kb, &entry_a, &entry_b, &mut w, opts, names)? {
                    None => s.same += 1,
                    Some(d) => {
                        s.count(d.kind);
                        diffs.push(d);
                    }
                }
            }
            None => {
                let d = one_sided(e.db, &kb, entry_b.info(), false, a.as_of_ms, opts);
                s.count(d.kind);
                diffs.push(d);
            }
        }
    }
    for (i, e) in ea.iter().enumerate() {
        if matched[i] {
            continue;
        }
        let ka = a.key_at(e.key_offset)?;
        let info = SideInfo { kind: a.value_at(e.key_offset)?.kind(), expire_at_ms: e.expire_at_ms };
        let d = one_sided(e.db, &ka, info, true, b.as_of_ms, opts);
        s.count(d.kind);
        diffs.push(d);
    }
    Ok((s, diffs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::value::{Consumer, PendingEntry, StreamId};

    fn opts() -> Options {
        Options::default()
    }

    #[test]
    fn collections_compare_logically() {
        let o = opts();
        let s = |v: &[&str]| v.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
        assert!(value_detail(&Value::Set(s(&["a", "b"])), &Value::Set(s(&["b", "a"])), &o).is_none());
        let d = value_detail(&Value::Set(s(&["a", "b", "c"])), &Value::Set(s(&["b", "d"])), &o).unwrap();
        assert_eq!(d["only_in_a"], json!(["a", "c"]));
        assert_eq!(d["only_in_b"], json!(["d"]));
        // Lists are ordered.
        let d = value_detail(&Value::List(s(&["a", "b"])), &Value::List(s(&["b", "a"])), &o).unwrap();
        assert_eq!(d["first_difference_at"], json!(0));
        // -0.0 == 0, member order does not matter.
        let z = |v: &[(&str, f64)]| Value::Zset(v.iter().map(|(m, s)| (m.as_bytes().to_vec(), *s)).collect());
        assert!(value_detail(&z(&[("a", -0.0), ("b", 1.5)]), &z(&[("b", 1.5), ("a", 0.0)]), &o).is_none());
        let d = value_detail(&z(&[("a", 1.0), ("b", f64::INFINITY)]), &z(&[("a", 2.0), ("b", f64::INFINITY)]), &o);
        assert_eq!(d.unwrap()["different_scores"], json!([["a", 1.0, 2.0]]));
        // Hash fields as a map; field TTLs within the tolerance are equal.
        let h = |v: &[(&str, &str, Option<i64>)]| {
            Value::Hash(
                v.iter()
                    .map(|(f, x, t)| HashField {
                        field: f.as_bytes().to_vec(),
                        value: x.as_bytes().to_vec(),
                        expire_at_ms: *t,
                    })
                    .collect(),
            )
        };
        assert!(
            value_detail(
                &h(&[("f", "1", Some(1000)), ("g", "2", None)]),
                &h(&[("g", "2", None), ("f", "1", Some(2500))]),
                &o
            )
            .is_none()
        );
        let d = value_detail(&h(&[("f", "1", None)]), &h(&[("f", "2", None), ("x", "", None)]), &o).unwrap();
        assert_eq!(d["different_values"], json!([["f", "1", "2"]]));
        assert_eq!(d["only_in_b"], json!(["x"]));
        let d = value_detail(&h(&[("f", "1", Some(1000))]), &h(&[("f", "1", Some(9000))]), &o).unwrap();
        assert_eq!(d["different_field_ttls"], json!([["f", 1000, 9000]]));
        // Binary members use the export vocabulary.
        let d = value_detail(&Value::Set(vec![vec![0xff]]), &Value::Set(vec![]), &o).unwrap();
        assert_eq!(d["only_in_a"], json!([{ "base64": "/w==" }]));
    }

    #[test]
    fn strings_show_where_they_differ() {
        let d = string_detail(b"hello", b"help");
        assert_eq!(d["first_difference_at"], json!(3));
        assert_eq!(d["a"], json!("hello"));
        let long_a = vec![b'x'; 1000];
        let mut long_b = long_a.clone();
        long_b[700] = b'y';
        let d = string_detail(&long_a, &long_b);
        assert_eq!(d["first_difference_at"], json!(700));
        assert!(d.get("a").is_none());
        assert_eq!(d["b_from_difference"].as_str().unwrap().len(), EXCERPT);
    }

    #[test]
    fn stream_times_have_a_tolerance_or_are_ignored() {
        let id = |ms| StreamId { ms, seq: 0 };
        let mk = |seen: i64, delivered: i64| {
            let mut s = Stream::default();
            s.entries.push(StreamEntry { id: id(1), fields: vec![(b"f".to_vec(), b"v".to_vec())] });
            s.groups.push(StreamGroup {
                name: b"g".to_vec(),
                last_id: id(1),
                entries_read: Some(1),
                pending: vec![PendingEntry { id: id(1), consumer: 0, delivery_time_ms: delivered, delivery_count: 1 }],
                consumers: vec![Consumer {
                    name: b"c".to_vec(),
                    seen_time_ms: seen,
                    active_time_ms: None,
                    pending: vec![id(1)],
                }],
            });
            Value::Stream(Box::new(s))
        };
        let mut o = opts();
        assert!(value_detail(&mk(1000, 5000), &mk(2500, 6000), &o).is_none());
        let d = value_detail(&mk(1000, 5000), &mk(9000, 5000), &o).unwrap();
        assert_eq!(d["groups"]["different"][0]["consumers"]["different_times"][0]["seen_time_ms"], json!([1000, 9000]));
        assert!(value_detail(&mk(1000, 5000), &mk(1000, 50000), &o).is_some());
        o.stream_times = false;
        assert!(value_detail(&mk(1000, 5000), &mk(9000, 50000), &o).is_none());
    }

    #[test]
    fn one_sided_keys_that_expired_meanwhile() {
        let o = opts();
        let info = |t| SideInfo { kind: Kind::String, expire_at_ms: t };
        assert_eq!(one_sided(0, b"k", info(None), true, 10_000, &o).kind, DiffKind::OnlyInA);
        assert_eq!(one_sided(0, b"k", info(Some(9_000)), true, 10_000, &o).kind, DiffKind::Expired);
        assert_eq!(one_sided(0, b"k", info(Some(11_000)), false, 10_000, &o).kind, DiffKind::Expired);
        assert_eq!(one_sided(0, b"k", info(Some(13_000)), false, 10_000, &o).kind, DiffKind::OnlyInB);
    }

    #[test]
    fn sampling_is_a_stable_fraction() {
        let sel = KeySelect { sample_rate: Some(0.25), ..KeySelect::default() };
        let n = (0..20_000).filter(|i| sel.matches(0, format!("key:{i}").as_bytes())).count();
        assert!((4_000..6_000).contains(&n), "{n}");
        let again = (0..20_000).filter(|i| sel.matches(0, format!("key:{i}").as_bytes())).count();
        assert_eq!(n, again);
    }

    #[test]
    fn partitions_spill_and_come_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Partitions::new(1000, Some(dir.path().to_path_buf()));
        let mut expect = vec![Vec::new(); PARTITIONS];
        for i in 0..5000u64 {
            let h = key_hash(0, &i.to_le_bytes());
            let rec = i.to_le_bytes();
            p.push(h, &rec).unwrap();
            expect[Partitions::partition_of(h)].extend_from_slice(&rec);
        }
        assert!(p.spilled > 0);
        for (i, e) in expect.iter().enumerate() {
            assert_eq!(&p.take(i).unwrap(), e, "partition {i}");
        }
    }
}
