//! Backup trees (`verify --tree DIR`): files grouped into backup sets (one backup run of one
//! instance), cluster sets checked as shards (key slots), and each instance's newest set
//! compared with its previous one. Knows nothing of terminals; the command verifies the files
//! and gives this module their counts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::rdb::reader::{Reader, Record};

/// A `--layout` pattern: path components relative to the tree root, with `{name}` fields
/// (`{instance}` names the instance; the other fields name the set) and `*` / `?` globs, e.g.
/// `Backup_{instance}/{date}/{task}/*.rdb`.
#[derive(Debug, Clone)]
pub struct Layout {
    re: Regex,
    fields: Vec<String>,
}

impl Layout {
    pub fn parse(pattern: &str) -> Result<Layout, String> {
        let mut re = String::from("^");
        let mut fields = Vec::new();
        let mut chars = pattern.trim_matches('/').chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        return Err(format!("--layout {pattern:?}: a field is {{name}} with letters, digits, _"));
                    }
                    if fields.contains(&name) {
                        return Err(format!("--layout {pattern:?}: {{{name}}} twice"));
                    }
                    re.push_str(&format!("(?P<{name}>[^/]+?)"));
                    fields.push(name);
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        if !fields.iter().any(|f| f == "instance") {
            return Err(format!("--layout {pattern:?}: needs an {{instance}} field"));
        }
        let re = Regex::new(&re).map_err(|e| format!("--layout {pattern:?}: {e}"))?;
        Ok(Layout { re, fields })
    }

    /// `(instance, set id)` of a path relative to the root, if it matches. The set id is the
    /// other fields' values in pattern order, joined by `/`.
    pub fn place(&self, rel: &str) -> Option<(String, String)> {
        let caps = self.re.captures(rel)?;
        let instance = caps.name("instance")?.as_str().to_owned();
        let set: Vec<&str> =
            self.fields.iter().filter(|f| *f != "instance").filter_map(|f| caps.name(f).map(|m| m.as_str())).collect();
        Some((instance, set.join("/")))
    }
}

/// Without a layout: the set is the directory holding the file (relative to the root), the
/// instance its first component (`.` for files directly in the root).
pub fn default_place(rel: &str) -> (String, String) {
    let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
    let instance = dir.split('/').next().filter(|s| !s.is_empty()).unwrap_or(".");
    (instance.to_owned(), if dir.is_empty() { ".".to_owned() } else { dir.to_owned() })
}

/// The path of `p` relative to `root`, with `/` separators.
pub fn relative(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).to_string_lossy().replace('\\', "/")
}

/// A set of 16384 hash slots.
#[derive(Clone, PartialEq, Eq)]
pub struct Slots(Box<[u64; 256]>);

impl Default for Slots {
    fn default() -> Slots {
        Slots(Box::new([0; 256]))
    }
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", format_ranges(&self.ranges()))
    }
}

impl Slots {
    pub fn insert(&mut self, slot: u16) {
        self.0[slot as usize / 64] |= 1 << (slot % 64);
    }
    pub fn contains(&self, slot: u16) -> bool {
        self.0[slot as usize / 64] & (1 << (slot % 64)) != 0
    }
    pub fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
    pub fn union(&mut self, o: &Slots) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a |= b;
        }
    }
    pub fn intersection(&self, o: &Slots) -> Slots {
        let mut r = Slots::default();
        for (i, w) in r.0.iter_mut().enumerate() {
            *w = self.0[i] & o.0[i];
        }
        r
    }
    /// Inclusive ranges, ascending.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for s in 0..crate::slot::SLOTS {
            if self.contains(s) {
                match out.last_mut() {
                    Some(r) if r.1 + 1 == s => r.1 = s,
                    _ => out.push((s, s)),
                }
            }
        }
        out
    }
}

/// `0-5460,10923-16383`; `-` when empty.
pub fn format_ranges(r: &[(u16, u16)]) -> String {
    if r.is_empty() {
        return "-".to_owned();
    }
    r.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect::<Vec<_>>().join(",")
}

/// What a reader pass (no value validated) finds in a file: the slots of its keys, the slots
/// its SLOT_INFO records declare (RDB 12+), and keys per db.
#[derive(Debug, Clone, Default)]
pub struct SlotScan {
    pub key_slots: Slots,
    /// `None` when the file has no SLOT_INFO record.
    pub slot_info: Option<Slots>,
    pub keys_per_db: BTreeMap<u64, u64>,
}

/// One pass of the reader over `data`. Stops at the first structural error (verify reports it).
pub fn scan_slots(data: &[u8]) -> SlotScan {
    let mut scan = SlotScan::default();
    let Ok(reader) = Reader::new(data) else { return scan };
    for rec in reader {
        match rec {
            Ok(Record::Key(k)) => {
                scan.key_slots.insert(crate::slot::key_slot(&k.key));
                *scan.keys_per_db.entry(k.db).or_default() += 1;
            }
            Ok(Record::SlotInfo { slot, .. }) if slot < u64::from(crate::slot::SLOTS) => {
                scan.slot_info.get_or_insert_with(Slots::default).insert(slot as u16);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    scan
}

/// A file of a set, as the command verified it.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub path: PathBuf,
    /// Verified and valid.
    pub ok: bool,
    /// Could not be read: why.
    pub unreadable: Option<String>,
    /// The first error (or the reason it is unreadable), for the table.
    pub reason: Option<String>,
    pub keys: u64,
    pub bytes: u64,
    pub keys_per_db: BTreeMap<u64, u64>,
    /// Modification time (unix seconds).
    pub mtime: Option<i64>,
    pub verify_seconds: f64,
    /// Only for sets of several files.
    pub scan: Option<SlotScan>,
}

/// Shard checks of a set of several files.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShardCheck {
    /// Per file: the slot ranges of its keys.
    pub ranges: Vec<(String, String)>,
    /// Slots whose keys are in two or more files: the slots and the files.
    pub overlaps: Vec<(String, String, String)>,
    /// `covered`, `incomplete` (SLOT_INFO in every file, union short of 16384), or `unknown`.
    pub coverage: &'static str,
    pub slots_declared: Option<u32>,
    pub missing: Option<String>,
}

pub fn shard_check(files: &[FileResult]) -> ShardCheck {
    let scans: Vec<(&FileResult, &SlotScan)> = files.iter().filter_map(|f| f.scan.as_ref().map(|s| (f, s))).collect();
    let name = |f: &FileResult| f.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ranges = scans.iter().map(|(f, s)| (name(f), format_ranges(&s.key_slots.ranges()))).collect();
    let mut overlaps = Vec::new();
    for (i, (fa, a)) in scans.iter().enumerate() {
        for (fb, b) in &scans[i + 1..] {
            let both = a.key_slots.intersection(&b.key_slots);
            if both.count() > 0 {
                overlaps.push((format_ranges(&both.ranges()), name(fa), name(fb)));
            }
        }
    }
    let all_declare =
        !scans.is_empty() && scans.len() == files.len() && scans.iter().all(|(_, s)| s.slot_info.is_some());
    let (coverage, slots_declared, missing) = if all_declare {
        let mut u = Slots::default();
        for (_, s) in &scans {
            u.union(s.slot_info.as_ref().unwrap_or(&Slots::default()));
        }
        let n = u.count();
        let mut miss = Slots::default();
        for s in 0..crate::slot::SLOTS {
            if !u.contains(s) {
                miss.insert(s);
            }
        }
        let c = if n == u32::from(crate::slot::SLOTS) { "covered" } else { "incomplete" };
        (c, Some(n), (n < u32::from(crate::slot::SLOTS)).then(|| format_ranges(&miss.ranges())))
    } else {
        ("unknown", None, None)
    };
    ShardCheck { ranges, overlaps, coverage, slots_declared, missing }
}

/// Newest set against the previous one of the same instance.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Trend {
    pub previous_set: String,
    pub previous_keys: u64,
    pub previous_bytes: u64,
    pub previous_files: usize,
    /// Percent change of keys and bytes (negative: a drop); null when the previous was 0.
    pub keys_change_pct: Option<f64>,
    pub bytes_change_pct: Option<f64>,
    /// Per db: (db, previous keys, keys).
    pub dbs: Vec<(u64, u64, u64)>,
}

pub fn pct(prev: u64, now: u64) -> Option<f64> {
    (prev > 0).then(|| ((now as f64 - prev as f64) / prev as f64 * 1000.0).round() / 10.0)
}

/// Parses `20%` or `20` into a percentage.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().trim_end_matches('%').parse().map_err(|_| format!("{s:?}: a percentage such as 20%"))?;
    if (0.0..=100.0).contains(&v) { Ok(v) } else { Err(format!("{s:?}: between 0% and 100%")) }
}

/// Escapes a Prometheus label value.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_place_files() {
        let l = Layout::parse("Backup_{instance}/{date}/{task}/*.rdb").unwrap();
        assert_eq!(l.place("Backup_r-1/2026-11-27/t9/dump.rdb"), Some(("r-1".into(), "2026-11-27/t9".into())));
        assert_eq!(l.place("Backup_r-1/2026-11-27/dump.rdb"), None);
        assert_eq!(l.place("Other/2026-11-27/t9/dump.rdb"), None);
        assert!(Layout::parse("{date}/*.rdb").is_err());
        assert!(Layout::parse("{instance}/{instance}").is_err());
        assert_eq!(default_place("a/b/c.rdb"), ("a".into(), "a/b".into()));
        assert_eq!(default_place("c.rdb"), (".".into(), ".".into()));
    }

    #[test]
    fn slot_ranges() {
        let mut s = Slots::default();
        for x in [0u16, 1, 2, 5, 16383] {
            s.insert(x);
        }
        assert_eq!(format_ranges(&s.ranges()), "0-2,5,16383");
        assert_eq!(s.count(), 5);
        assert_eq!(parse_percent("20%"), Ok(20.0));
        assert!(parse_percent("120%").is_err());
        assert_eq!(pct(100, 50), Some(-50.0));
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
