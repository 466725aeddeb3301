//! `rdbtool verify FILE...`: checksum and full structural parse of every key; AOF sets and
//! files go to the AOF verifier (`rdbtool::aof::set`).

use std::io::{self, Write};
use std::path::PathBuf;

use rayon::prelude::*;
use rdbtool::aof::Target;
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
/// Exit status: 0 all files valid, 1 at least one invalid, 2 could not run (unreadable file).
#[derive(clap::Args)]
pub struct Args {
    /// RDB files, AOF files or directories; directories are searched for *.rdb and *.aof files
    /// and AOF directories.
    #[arg(required = true)]
    files: Vec<PathBuf>,
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
}

pub fn run(args: Args) -> u8 {
    let files = match rdbtool::aof::expand_targets(&args.files) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("rdbtool verify: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    if files.is_empty() {
        eprintln!("rdbtool verify: no RDB or AOF files found");
        return EXIT_CANNOT_RUN;
    }
    let opts = verify::Options {
        keep_going: args.keep_going,
        max_errors: args.max_errors,
        now_ms: args.now.unwrap_or_else(verify::now_ms),
        target: args.target,
    };
    let total: u64 = files.iter().filter_map(|f| std::fs::metadata(f.path()).ok()).map(|m| m.len()).sum();
    let bar = super::progress::bytes_bar(total, "verify");
    let results: Vec<Result<Report, String>> = files
        .par_iter()
        .map(|t| {
            let f = t.path();
            let name = f.display().to_string();
            let r = match t {
                Target::Rdb(_) => match rdbtool::input::open(f) {
                    Ok(data) => Ok(verify::verify_bytes_releasing(&name, &data, &opts, &|r| data.release(r))),
                    Err(e) => Err(format!("{name}: cannot read: {e}")),
                },
                Target::AofSet(_) | Target::AofFile(_) => rdbtool::aof::set::verify_path(f, &opts),
            };
            if let Ok(m) = std::fs::metadata(f) {
                bar.inc(m.len());
            }
            r
        })
        .collect();
    bar.finish_and_clear();

    let unreadable = results.iter().any(|r| r.is_err());
    let all_ok = results.iter().all(|r| matches!(r, Ok(rep) if rep.ok));
    let code = if unreadable {
        EXIT_CANNOT_RUN
    } else if all_ok {
        EXIT_OK
    } else {
        EXIT_INVALID
    };
    super::with_stdout(|out| {
        write_results(out, &results, all_ok, args.json)?;
        Ok(code)
    })
}

fn write_results(out: &mut dyn Write, results: &[Result<Report, String>], all_ok: bool, json: bool) -> io::Result<()> {
    if json {
        let files_json: Vec<serde_json::Value> = results
            .iter()
            .map(|r| match r {
                Ok(rep) => serde_json::to_value(rep).unwrap_or(serde_json::Value::Null),
                Err(msg) => serde_json::json!({ "ok": false, "unreadable": msg }),
            })
            .collect();
        let doc = serde_json::json!({ "ok": all_ok, "files": files_json });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
    } else {
        for r in results {
            match r {
                Ok(rep) => print_report(out, rep)?,
                Err(msg) => writeln!(out, "ERROR {msg}")?,
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
