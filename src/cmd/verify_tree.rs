//! `rdbtool verify --tree DIR`: every backup set of every instance in a tree verified (in
//! parallel), cluster sets checked as shards, the newest set of each instance compared with the
//! previous one; a table, `--json`, and Prometheus metrics (`--metrics FILE`).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use rayon::prelude::*;
use rdbtool::aof::Target;
use rdbtool::discover::Found;
use rdbtool::tree::{self, FileResult, Layout, ShardCheck, Trend};
use rdbtool::verify;

use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

pub struct TreeOptions<'a> {
    pub root: &'a Path,
    pub layout: Option<Layout>,
    pub max_drop: Option<f64>,
    pub latest: bool,
    pub metrics: Option<&'a Path>,
    pub json: bool,
    pub temp_dir: Option<&'a Path>,
}

/// One backup set and what was found.
struct Set {
    instance: String,
    id: String,
    files: Vec<FileResult>,
    /// Only counted (the previous set under --latest), not verified.
    verified: bool,
    shards: Option<ShardCheck>,
    trend: Option<Trend>,
    problems: Vec<String>,
}

impl Set {
    fn keys(&self) -> u64 {
        self.files.iter().map(|f| f.keys).sum()
    }
    fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
    fn time(&self) -> Option<i64> {
        self.files.iter().filter_map(|f| f.mtime).max()
    }
    fn ok(&self) -> bool {
        self.verified && self.problems.is_empty()
    }
    fn keys_per_db(&self) -> BTreeMap<u64, u64> {
        let mut m = BTreeMap::new();
        for f in &self.files {
            for (db, n) in &f.keys_per_db {
                *m.entry(*db).or_default() += n;
            }
        }
        m
    }
}

pub fn run(t: TreeOptions<'_>, opts: &verify::Options) -> u8 {
    let started = std::time::Instant::now();
    if !t.root.is_dir() {
        eprintln!("rdbtool verify: --tree {}: not a directory", t.root.display());
        return EXIT_CANNOT_RUN;
    }
    let mut unreadable: Vec<(String, String)> = Vec::new();
    let mut unmatched: Vec<String> = Vec::new();
    // instance -> set id -> files (in walk order).
    let mut placed: BTreeMap<String, BTreeMap<String, Vec<Found>>> = BTreeMap::new();
    for f in rdbtool::discover::discover(&[t.root.to_path_buf()]) {
        if let Found::Unreadable(p, why) = &f {
            unreadable.push((p.display().to_string(), why.clone()));
            continue;
        }
        let rel = tree::relative(t.root, f.path());
        let place = match &t.layout {
            Some(l) => l.place(&rel),
            None => Some(tree::default_place(&rel)),
        };
        match place {
            Some((inst, set)) => placed.entry(inst).or_default().entry(set).or_default().push(f),
            None => unmatched.push(rel),
        }
    }
    // (instance, set id, files, verify fully?)
    let mut jobs: Vec<(String, String, Vec<Found>, bool)> = Vec::new();
    for (inst, sets) in placed {
        let n = sets.len();
        for (i, (id, files)) in sets.into_iter().enumerate() {
            let full = !t.latest || i + 1 == n;
            if t.latest && i + 2 < n {
                continue;
            }
            jobs.push((inst.clone(), id, files, full));
        }
    }
    let total: u64 =
        jobs.iter().flat_map(|j| &j.2).filter_map(|f| std::fs::metadata(f.path()).ok()).map(|m| m.len()).sum();
    let bar = super::progress::bytes_bar(total, "verify");
    let flat: Vec<(usize, &Found, bool, bool)> =
        jobs.iter().enumerate().flat_map(|(i, j)| j.2.iter().map(move |f| (i, f, j.3, j.2.len() > 1))).collect();
    let results: Vec<(usize, FileResult)> = flat
        .par_iter()
        .map(|&(i, f, full, shards)| {
            let r = check_file(f, full, shards, opts, t.temp_dir);
            if let Ok(m) = std::fs::metadata(f.path()) {
                bar.inc(m.len());
            }
            (i, r)
        })
        .collect();
    bar.finish_and_clear();
    let mut sets: Vec<Set> = jobs
        .into_iter()
        .map(|(instance, id, _, verified)| Set {
            instance,
            id,
            files: Vec::new(),
            verified,
            shards: None,
            trend: None,
            problems: Vec::new(),
        })
        .collect();
    for (i, r) in results {
        sets[i].files.push(r);
    }
    judge(&mut sets, t.max_drop);

    let now_s = opts.now_ms.div_euclid(1000);
    let failed = sets.iter().any(|s| s.verified && !s.ok());
    let code = if failed {
        EXIT_INVALID
    } else if !unreadable.is_empty() {
        EXIT_CANNOT_RUN
    } else {
        EXIT_OK
    };
    if let Some(path) = t.metrics
        && let Err(e) = write_metrics(path, &sets, now_s)
    {
        eprintln!("rdbtool verify: --metrics {}: {e}", path.display());
        return EXIT_CANNOT_RUN;
    }
    let seconds = started.elapsed().as_secs_f64();
    super::with_stdout(|out| {
        if t.json {
            let doc = json_doc(&sets, &unreadable, &unmatched, seconds);
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
        } else {
            print_table(out, &sets, &unreadable, &unmatched)?;
        }
        Ok(code)
    })
}

/// Verifies (or, for `full == false`, only counts) one file of a set.
fn check_file(f: &Found, full: bool, shards: bool, opts: &verify::Options, temp_dir: Option<&Path>) -> FileResult {
    let started = std::time::Instant::now();
    let path = f.path().to_path_buf();
    let name = path.display().to_string();
    let mtime = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    let mut r = FileResult {
        path: path.clone(),
        ok: false,
        unreadable: None,
        reason: None,
        keys: 0,
        bytes: 0,
        keys_per_db: BTreeMap::new(),
        mtime,
        verify_seconds: 0.0,
        scan: None,
    };
    let data = match f {
        Found::Target(Target::AofSet(_) | Target::AofFile(_)) => {
            match rdbtool::verify::verify_aof(&path, opts) {
                Ok(rep) => fill_from_report(&mut r, &rep),
                Err(e) => {
                    r.reason = Some(e.clone());
                    r.unreadable = Some(e);
                }
            }
            r.verify_seconds = started.elapsed().as_secs_f64();
            return r;
        }
        Found::Unreadable(_, why) => Err(why.clone()),
        Found::Target(Target::Rdb(_)) => rdbtool::input::open(&path).map_err(|e| format!("cannot read: {e}")),
        Found::Spooled(_) => {
            rdbtool::spool::open_spooled(&path, temp_dir).map_err(|e| format!("cannot read: {e}")).map(|s| {
                if let Some((_, msg)) = s.decode_error {
                    r.reason = Some(msg);
                }
                s.data
            })
        }
    };
    let data = match data {
        Ok(d) => d,
        Err(e) => {
            r.reason = Some(e.clone());
            r.unreadable = Some(e);
            return r;
        }
    };
    let decode_failed = r.reason.is_some();
    r.bytes = data.len() as u64;
    if full {
        let rep = verify::verify_input(&name, &data, opts);
        fill_from_report(&mut r, &rep);
        if decode_failed {
            r.ok = false;
        }
    }
    if shards || !full {
        let scan = tree::scan_slots(&data);
        if !full {
            r.keys_per_db = scan.keys_per_db.clone();
            r.keys = scan.keys_per_db.values().sum();
        }
        r.scan = Some(scan);
    }
    r.verify_seconds = started.elapsed().as_secs_f64();
    r
}

fn fill_from_report(r: &mut FileResult, rep: &verify::Report) {
    r.ok = rep.ok;
    r.keys = rep.keys;
    r.bytes = rep.bytes;
    r.keys_per_db = rep.dbs.iter().map(|d| (d.db, d.keys)).collect();
    if r.reason.is_none() {
        r.reason = rep.errors.first().map(super::verify::error_place);
    }
}

/// Shard checks, shard counts and trends; the problems of each set.
fn judge(sets: &mut [Set], max_drop: Option<f64>) {
    for i in 0..sets.len() {
        let prev = (i > 0 && sets[i - 1].instance == sets[i].instance).then(|| i - 1);
        let newest = i + 1 == sets.len() || sets[i + 1].instance != sets[i].instance;
        let mut problems = Vec::new();
        for f in &sets[i].files {
            let file = f.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if let Some(u) = &f.unreadable {
                problems.push(format!("{file}: unreadable: {u}"));
            } else if sets[i].verified && !f.ok {
                problems.push(format!("{file}: invalid: {}", f.reason.as_deref().unwrap_or("?")));
            }
        }
        if sets[i].files.len() > 1 {
            let check = tree::shard_check(&sets[i].files);
            for (slots, a, b) in &check.overlaps {
                problems.push(format!("slots {slots} have keys in both {a} and {b}"));
            }
            if check.coverage == "incomplete" {
                problems.push(format!(
                    "the files' SLOT_INFO covers {} of 16384 slots (missing {})",
                    check.slots_declared.unwrap_or(0),
                    check.missing.as_deref().unwrap_or("?")
                ));
            }
            sets[i].shards = Some(check);
        }
        if let Some(p) = prev {
            let (pn, n) = (sets[p].files.len(), sets[i].files.len());
            if pn != n {
                problems.push(format!(
                    "{n} file(s), the previous set ({}) had {pn}: a missing or extra shard?",
                    sets[p].id
                ));
            }
            if newest {
                let (pk, k, pb, b) = (sets[p].keys(), sets[i].keys(), sets[p].bytes(), sets[i].bytes());
                let prev_db = sets[p].keys_per_db();
                let now_db = sets[i].keys_per_db();
                let mut dbs: Vec<u64> = prev_db.keys().chain(now_db.keys()).copied().collect();
                dbs.sort();
                dbs.dedup();
                let trend = Trend {
                    previous_set: sets[p].id.clone(),
                    previous_keys: pk,
                    previous_bytes: pb,
                    previous_files: pn,
                    keys_change_pct: tree::pct(pk, k),
                    bytes_change_pct: tree::pct(pb, b),
                    dbs: dbs
                        .iter()
                        .map(|d| (*d, prev_db.get(d).copied().unwrap_or(0), now_db.get(d).copied().unwrap_or(0)))
                        .collect(),
                };
                if let Some(max) = max_drop {
                    for (what, c) in [("keys", trend.keys_change_pct), ("bytes", trend.bytes_change_pct)] {
                        if let Some(c) = c.filter(|c| -c > max) {
                            problems
                                .push(format!("{what} dropped {:.1}% since {} (--max-drop {max}%)", -c, sets[p].id));
                        }
                    }
                }
                sets[i].trend = Some(trend);
            }
        }
        sets[i].problems = problems;
    }
}

fn change_text(t: &Option<Trend>) -> String {
    match t {
        Some(t) => {
            let f = |c: Option<f64>| c.map_or("n/a".to_owned(), |c| format!("{c:+.1}%"));
            format!("keys {}, bytes {}", f(t.keys_change_pct), f(t.bytes_change_pct))
        }
        None => "-".to_owned(),
    }
}

/// At most 6 ranges of a list, then how many more (the JSON has them all).
fn short_ranges(r: &str) -> String {
    let parts: Vec<&str> = r.split(',').collect();
    if parts.len() <= 6 { r.to_owned() } else { format!("{},... ({} ranges)", parts[..6].join(","), parts.len()) }
}

fn print_table(
    out: &mut dyn Write,
    sets: &[Set],
    unreadable: &[(String, String)],
    unmatched: &[String],
) -> io::Result<()> {
    let rows: Vec<[String; 8]> = sets
        .iter()
        .filter(|s| s.verified)
        .map(|s| {
            [
                s.instance.clone(),
                s.id.clone(),
                s.time().map_or("-".into(), rdbtool::time::format_utc),
                s.files.len().to_string(),
                s.keys().to_string(),
                s.bytes().to_string(),
                if s.ok() { "OK".into() } else { "FAIL".into() },
                change_text(&s.trend),
            ]
        })
        .collect();
    let head = ["INSTANCE", "SET", "TIME", "FILES", "KEYS", "BYTES", "VERDICT", "CHANGE"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(&head.map(str::to_owned)))?;
    let mut verified = sets.iter().filter(|s| s.verified);
    for r in &rows {
        writeln!(out, "{}", line(r))?;
        if let Some(s) = verified.next() {
            if let Some(sh) = &s.shards {
                let ranges: Vec<String> = sh.ranges.iter().map(|(f, r)| format!("{f} {}", short_ranges(r))).collect();
                writeln!(out, "      slots: {}; coverage {}", ranges.join(", "), sh.coverage)?;
            }
            for p in &s.problems {
                writeln!(out, "      {p}")?;
            }
        }
    }
    for (p, why) in unreadable {
        writeln!(out, "ERROR {p}: {why}")?;
    }
    for p in unmatched {
        writeln!(out, "      not in the layout: {p}")?;
    }
    Ok(())
}

fn json_doc(sets: &[Set], unreadable: &[(String, String)], unmatched: &[String], seconds: f64) -> serde_json::Value {
    use serde_json::json;
    let mut instances: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
    for s in sets {
        let files: Vec<_> = s
            .files
            .iter()
            .map(|f| {
                json!({
                    "file": f.path.display().to_string(),
                    "ok": if s.verified { json!(f.ok) } else { json!(null) },
                    "unreadable": f.unreadable,
                    "reason": f.reason,
                    "keys": f.keys,
                    "bytes": f.bytes,
                    "dbs": f.keys_per_db.iter().map(|(d, n)| json!({"db": d, "keys": n})).collect::<Vec<_>>(),
                    "mtime": f.mtime,
                    "verify_seconds": (f.verify_seconds * 1000.0).round() / 1000.0,
                })
            })
            .collect();
        instances.entry(&s.instance).or_default().push(json!({
            "set": s.id,
            "verified": s.verified,
            "ok": if s.verified { json!(s.ok()) } else { json!(null) },
            "time": s.time().map(rdbtool::time::format_utc),
            "files": files,
            "keys": s.keys(),
            "bytes": s.bytes(),
            "shards": s.shards,
            "trend": s.trend,
            "problems": s.problems,
        }));
    }
    let inst: Vec<_> = instances
        .into_iter()
        .map(|(name, sets)| {
            let newest = sets.last().cloned().unwrap_or(json!(null));
            json!({ "instance": name, "ok": newest["ok"], "newest": newest["set"], "sets": sets })
        })
        .collect();
    let verified: Vec<&Set> = sets.iter().filter(|s| s.verified).collect();
    json!({
        "ok": unreadable.is_empty() && !verified.is_empty() && verified.iter().all(|s| s.ok()),
        "instances": inst,
        "unreadable": unreadable.iter().map(|(f, w)| json!({"file": f, "ok": false, "unreadable": w})).collect::<Vec<_>>(),
        "unmatched": unmatched,
        "summary": {
            "instances": sets.iter().map(|s| &s.instance).collect::<std::collections::BTreeSet<_>>().len(),
            "sets": verified.len(),
            "sets_ok": verified.iter().filter(|s| s.ok()).count(),
            "files": verified.iter().map(|s| s.files.len()).sum::<usize>(),
            "unreadable": unreadable.len(),
            "keys": verified.iter().map(|s| s.keys()).sum::<u64>(),
            "bytes": verified.iter().map(|s| s.bytes()).sum::<u64>(),
            "seconds": (seconds * 1000.0).round() / 1000.0,
        },
    })
}

/// Prometheus text format for the node_exporter textfile collector, about the newest set of
/// each instance; written under a temporary name and renamed.
fn write_metrics(path: &Path, sets: &[Set], now_s: i64) -> io::Result<()> {
    let mut text = String::new();
    let newest: Vec<&Set> = sets
        .iter()
        .enumerate()
        .filter(|(i, s)| sets.get(i + 1).is_none_or(|n| n.instance != s.instance))
        .map(|(_, s)| s)
        .collect();
    let fam = |text: &mut String, name: &str, help: &str, rows: Vec<(String, String)>| {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (labels, v) in rows {
            text.push_str(&format!("{name}{{{labels}}} {v}\n"));
        }
    };
    let file_labels = |s: &Set, f: &FileResult| {
        format!(
            "instance=\"{}\",set=\"{}\",file=\"{}\"",
            tree::label(&s.instance),
            tree::label(&s.id),
            tree::label(&f.path.display().to_string())
        )
    };
    let per_file = |value: &dyn Fn(&Set, &FileResult) -> Option<String>| -> Vec<(String, String)> {
        newest
            .iter()
            .flat_map(|s| s.files.iter().filter_map(move |f| value(s, f).map(|v| (file_labels(s, f), v))))
            .collect()
    };
    fam(
        &mut text,
        "rdbtool_backup_ok",
        "1 if the file of the newest backup set verified valid, else 0.",
        per_file(&|_, f| Some(if f.ok { "1" } else { "0" }.to_owned())),
    );
    fam(&mut text, "rdbtool_backup_keys", "Keys in the file.", per_file(&|_, f| Some(f.keys.to_string())));
    fam(
        &mut text,
        "rdbtool_backup_bytes",
        "Size of the RDB image in bytes.",
        per_file(&|_, f| Some(f.bytes.to_string())),
    );
    fam(
        &mut text,
        "rdbtool_backup_age_seconds",
        "Seconds since the file was last modified.",
        per_file(&|_, f| f.mtime.map(|m| (now_s - m).to_string())),
    );
    fam(
        &mut text,
        "rdbtool_backup_verify_seconds",
        "Seconds spent verifying the file.",
        per_file(&|_, f| Some(format!("{:.3}", f.verify_seconds))),
    );
    fam(
        &mut text,
        "rdbtool_backup_set_ok",
        "1 if the newest backup set of the instance passed every check (files, shards, trend), else 0.",
        newest
            .iter()
            .map(|s| {
                (
                    format!("instance=\"{}\",set=\"{}\"", tree::label(&s.instance), tree::label(&s.id)),
                    if s.ok() { "1" } else { "0" }.to_owned(),
                )
            })
            .collect(),
    );
    let last_ok: Vec<(String, String)> = newest
        .iter()
        .filter_map(|n| {
            let t = sets.iter().filter(|s| s.instance == n.instance && s.ok()).filter_map(|s| s.time()).max()?;
            Some((format!("instance=\"{}\"", tree::label(&n.instance)), t.to_string()))
        })
        .collect();
    fam(
        &mut text,
        "rdbtool_backup_last_success_timestamp_seconds",
        "Modification time of the instance's newest backup set that passed every check.",
        last_ok,
    );
    let mut f = rdbtool::output::AtomicFile::create(path, &[], true)?;
    f.write_all(text.as_bytes())?;
    f.commit()
}
