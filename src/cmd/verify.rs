//! `rdbtool verify FILE...`: checksum and full structural parse of every key; AOF sets and
//! files go to the AOF verifier (`rdbtool::aof::set`).

use std::io::{self, Write};
use std::path::PathBuf;

use rayon::prelude::*;
use rdbtool::aof::Target;
use rdbtool::discover::Found;
use rdbtool::display::quoted;
use rdbtool::verify::{self, ChecksumStatus, ErrorEntry, Report};

use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

/// Verify RDB files: CRC-64 plus a full parse and validation of every value.
///
/// AOF: a directory holding a *.manifest (appendonlydir/), a manifest, or a *.aof file is checked
/// as Redis loads it: the manifest as the server parses it, every listed file present (unlisted
/// files are warnings), the base RDB fully verified, every command well-formed RESP, MULTI/EXEC
/// balanced; a truncated tail is reported with the offset `aof-load-truncated` would keep and
/// the bytes it would drop; #TS going back is a warning.
///
/// Prints one line per file or set: OK, or the first error with its byte offset, db and key
/// (for AOF: the file, offset and line).
/// Compressed backups (.rdb.gz, .rdb.zst, .rdb.lz4) and streams (`-` for standard input, a
/// pipe) are decompressed / spooled to an unnamed temp file first and verified as the RDB they
/// hold. A path that cannot be read (or walked) is reported as such and the run goes on.
///
/// Exit status: 1 if any file is invalid (even when another could not be read), else 2 if any
/// path could not be read (or none was found, or bad usage), else 0.
#[derive(clap::Args)]
pub struct Args {
    /// RDB files, AOF files, directories or `-` (standard input); directories are searched for
    /// *.rdb, *.rdb.gz / .zst / .lz4 and *.aof files and AOF directories.
    #[arg(required_unless_present = "tree")]
    files: Vec<PathBuf>,
    /// Verify a backup tree as backup sets: the files of one backup run of one instance (the
    /// directory holding them, or --layout); several files make a cluster set, checked as
    /// shards; each instance's newest set is compared with its previous one.
    #[arg(long, value_name = "DIR", conflicts_with = "files")]
    tree: Option<PathBuf>,
    /// With --tree: where instance and set are in a path below DIR, e.g.
    /// 'Backup_{instance}/{date}/{task}/*.rdb' ({instance} required; other {fields} name the
    /// set, sets of an instance sort by them; * and ? match within a path component).
    #[arg(long, value_name = "PATTERN", requires = "tree", value_parser = rdbtool::tree::Layout::parse)]
    layout: Option<rdbtool::tree::Layout>,
    /// With --tree: a drop of keys or bytes beyond this since the previous set fails the newest
    /// set (e.g. 20%).
    #[arg(long, value_name = "PERCENT", requires = "tree", value_parser = rdbtool::tree::parse_percent)]
    max_drop: Option<f64>,
    /// With --tree: verify only the newest set of each instance (the previous one is only
    /// read for its counts).
    #[arg(long, requires = "tree")]
    latest: bool,
    /// With --tree: write Prometheus text-format metrics about each instance's newest set to
    /// FILE (atomically), for node_exporter's textfile collector.
    #[arg(long, value_name = "FILE", requires = "tree")]
    metrics: Option<PathBuf>,
    /// Print one JSON report for all files (schema in README.md).
    #[arg(long)]
    json: bool,
    /// Report every bad key instead of stopping at the first error.
    #[arg(long)]
    keep_going: bool,
    /// List at most this many errors per file.
    #[arg(long, default_value_t = 1000)]
    max_errors: usize,
    /// "Now", for counting already-expired keys (default: the clock): unix seconds,
    /// 1795240763000ms, RFC 3339, or 'YYYY-MM-DD HH:MM:SS' in --tz.
    #[arg(long, value_name = "TIME", value_parser = rdbtool::time::cli_time_ms)]
    now: Option<i64>,
    /// The server that is to restore the files (redis-2.6 ... redis-8.6, valkey-7.2 ...
    /// valkey-9.1; a full version such as redis-7.2.4 works): a file it refuses fails, even when
    /// another server would restore it. Without it, each report says which servers restore it.
    #[arg(long, value_name = "SERVER", value_parser = rdbtool::rdb::servers::parse_release)]
    target: Option<rdbtool::rdb::servers::Release>,
    /// Where compressed backups and streams are decompressed / spooled before they are
    /// verified (an unnamed file, gone when done; default: $TMPDIR).
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> u8 {
    let started = std::time::Instant::now();
    let opts = verify::Options {
        keep_going: args.keep_going,
        max_errors: args.max_errors,
        now_ms: args.now.unwrap_or_else(verify::now_ms),
        target: args.target,
    };
    if let Some(root) = &args.tree {
        let t = super::verify_tree::TreeOptions {
            root,
            layout: args.layout.clone(),
            max_drop: args.max_drop,
            latest: args.latest,
            metrics: args.metrics.as_deref(),
            json: args.json,
            temp_dir: args.temp_dir.as_deref(),
        };
        return super::verify_tree::run(t, &opts);
    }
    let found = rdbtool::discover::discover(&args.files);
    if found.is_empty() {
        eprintln!("rdbtool verify: no RDB or AOF files found");
        if args.json {
            return super::with_stdout(|out| {
                let mut doc = json_doc(&[], started.elapsed().as_secs_f64());
                doc["error"] = "no RDB or AOF files found".into();
                writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
                Ok(EXIT_CANNOT_RUN)
            });
        }
        return EXIT_CANNOT_RUN;
    }
    let total: u64 = found.iter().filter_map(|f| std::fs::metadata(f.path()).ok()).map(|m| m.len()).sum();
    let bar = super::progress::bytes_bar(total, "verify");
    let temp_dir = args.temp_dir.as_deref();
    let results: Vec<Entry> = found
        .par_iter()
        .map(|t| {
            let f = t.path();
            let name = f.display().to_string();
            let r = match t {
                Found::Target(Target::Rdb(_)) => match rdbtool::input::open(f) {
                    Ok(data) => Ok(verify::verify_input(&name, &data, &opts)),
                    Err(e) => Err(format!("cannot read: {e}")),
                },
                Found::Target(Target::AofSet(_) | Target::AofFile(_)) => verify::verify_aof(f, &opts)
                    .map_err(|e| e.strip_prefix(&format!("{name}: ")).map(str::to_owned).unwrap_or(e)),
                Found::Spooled(_) => verify_spooled(f, &name, &opts, temp_dir),
                Found::Unreadable(_, why) => Err(why.clone()),
            };
            if let Ok(m) = std::fs::metadata(f) {
                bar.inc(m.len());
            }
            Entry { file: name, result: r }
        })
        .collect();
    bar.finish_and_clear();

    // A file shown invalid is the stronger news: it wins over one that could not be read.
    let invalid = results.iter().any(|e| matches!(&e.result, Ok(rep) if !rep.ok));
    let unreadable = results.iter().any(|e| e.result.is_err());
    let code = if invalid {
        EXIT_INVALID
    } else if unreadable {
        EXIT_CANNOT_RUN
    } else {
        EXIT_OK
    };
    super::with_stdout(|out| {
        write_results(out, &results, args.json, started.elapsed().as_secs_f64())?;
        Ok(code)
    })
}

/// One verified path: its report, or why it could not be read.
struct Entry {
    file: String,
    result: Result<Report, String>,
}

/// A compressed file or a stream: spooled (decompressed) to a temp file, then verified as the
/// file it holds, under the name given. A compressed stream that ends early or does not decode
/// is an error of the verdict (listed first: it is the cause of what the RDB image lacks).
fn verify_spooled(
    f: &std::path::Path,
    name: &str,
    opts: &verify::Options,
    temp_dir: Option<&std::path::Path>,
) -> Result<Report, String> {
    let s = rdbtool::spool::open_spooled(f, temp_dir).map_err(|e| format!("cannot read: {e}"))?;
    let mut rep = verify::verify_input(name, &s.data, opts);
    if let Some((kind, msg)) = s.decode_error {
        let n = s.data.len();
        rep.errors.insert(
            0,
            ErrorEntry {
                kind,
                offset: n as u64,
                db: None,
                key: None,
                message: format!("{msg}: the RDB image ends after {n} decompressed bytes"),
                file: None,
                line: None,
            },
        );
        let keep = if opts.keep_going { opts.max_errors } else { 1 };
        if rep.errors.len() > keep {
            rep.errors_not_listed += (rep.errors.len() - keep) as u64;
            rep.errors.truncate(keep);
        }
        rep.ok = false;
    }
    Ok(rep)
}

/// `{"ok", "files": [...], "summary": {...}}`.
fn json_doc(results: &[Entry], seconds: f64) -> serde_json::Value {
    let reports = || results.iter().filter_map(|e| e.result.as_ref().ok());
    let ok = reports().filter(|r| r.ok).count();
    let unreadable = results.iter().filter(|e| e.result.is_err()).count();
    let files_json: Vec<serde_json::Value> = results
        .iter()
        .map(|e| match &e.result {
            Ok(rep) => serde_json::to_value(rep).unwrap_or(serde_json::Value::Null),
            Err(msg) => serde_json::json!({ "file": e.file, "ok": false, "unreadable": msg }),
        })
        .collect();
    let summary = serde_json::json!({
        "files": results.len(),
        "ok": ok,
        "failed": results.len() - ok - unreadable,
        "unreadable": unreadable,
        "keys": reports().map(|r| r.keys).sum::<u64>(),
        "bytes": reports().map(|r| r.bytes).sum::<u64>(),
        "seconds": (seconds * 1000.0).round() / 1000.0,
    });
    let all_ok = !results.is_empty() && ok == results.len();
    serde_json::json!({ "ok": all_ok, "files": files_json, "summary": summary })
}

fn write_results(out: &mut dyn Write, results: &[Entry], json: bool, seconds: f64) -> io::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&json_doc(results, seconds)).unwrap_or_default())?;
    } else {
        for e in results {
            match &e.result {
                Ok(rep) => print_report(out, rep)?,
                Err(msg) => writeln!(out, "ERROR {}: {msg}", e.file)?,
            }
        }
    }
    Ok(())
}

fn summary(rep: &Report) -> String {
    if let Some(aof) = &rep.aof {
        return aof.summary(rep);
    }
    let version = match (rep.magic, rep.version) {
        (Some("VALKEY"), Some(v)) => format!("VALKEY{v:03}"),
        (Some(_), Some(v)) => format!("RDB {v}"),
        _ => "unknown version".to_owned(),
    };
    let ver = rep.redis_ver.as_deref().map(|v| format!(", server {v}")).unwrap_or_default();
    let checksum = match rep.checksum.status {
        ChecksumStatus::Ok => "checksum ok",
        ChecksumStatus::Mismatch => "checksum MISMATCH",
        ChecksumStatus::NotComputed => "no checksum (saved with rdbchecksum no)",
        ChecksumStatus::Absent => "no checksum (RDB < 5)",
        ChecksumStatus::Unchecked => "checksum not checked",
    };
    let empty = match rep.warning_counts.get("empty_value") {
        Some(n) => format!(", {n} empty (Redis drops them)"),
        None => String::new(),
    };
    let restorable = if rep.ok {
        let servers = rdbtool::rdb::servers::summary(&rep.restorable_by);
        match &rep.target {
            Some(t) => format!("; {} restores it", t.server),
            None => format!("; restorable by {servers}"),
        }
    } else {
        String::new()
    };
    format!(
        "{version}{ver}, {} keys in {} dbs{empty}, {} with TTL, {checksum}{restorable}",
        rep.keys,
        rep.dbs.len(),
        rep.expires
    )
}

/// `[FILE ]offset N[ (line L)][, db D][, key K]: message [kind]`.
pub fn error_place(e: &ErrorEntry) -> String {
    let mut place = String::new();
    if let Some(f) = &e.file {
        place.push_str(&format!("{f} "));
    }
    place.push_str(&format!("offset {}", e.offset));
    if let Some(l) = e.line {
        place.push_str(&format!(" (line {l})"));
    }
    if let Some(db) = e.db {
        place.push_str(&format!(", db {db}"));
    }
    if let Some(k) = &e.key {
        place.push_str(&format!(", key {}", quoted(k)));
    }
    format!("{place}: {} [{}]", e.message, e.kind.as_str())
}

fn print_report(out: &mut dyn Write, rep: &Report) -> io::Result<()> {
    if rep.ok {
        writeln!(out, "OK    {}  ({})", rep.file, summary(rep))?;
    } else {
        let n = rep.errors.len() as u64 + rep.errors_not_listed;
        writeln!(out, "FAIL  {}  ({}; {n} error{})", rep.file, summary(rep), if n == 1 { "" } else { "s" })?;
        for e in &rep.errors {
            writeln!(out, "      at {}", error_place(e))?;
        }
        if rep.errors_not_listed > 0 {
            writeln!(out, "      ... and {} more", rep.errors_not_listed)?;
        }
    }
    for w in &rep.warnings {
        writeln!(out, "      warning: {w}")?;
    }
    match &rep.target {
        Some(t) => {
            for r in &t.requires {
                writeln!(out, "      needs: {r}")?;
            }
        }
        None => {
            for range in rep.restorable_by.iter().filter(|r| !r.requires.is_empty()) {
                let servers = rdbtool::rdb::servers::summary(std::slice::from_ref(range));
                writeln!(out, "      needs ({servers}): {}", range.requires.join(", "))?;
            }
        }
    }
    Ok(())
}
