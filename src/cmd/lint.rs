//! `rdbtool lint FILE|DIR... --target cluster|redis-X.Y|valkey-X.Y|elasticache`: what will break
//! or hurt a migration, before it starts.

use std::path::PathBuf;

use rdbtool::lint::{Lint, Options, Severity, Target, parse_target};
use rdbtool::report::scan_file;

use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

/// Pre-migration checks of RDB files for a cluster, a server release or ElastiCache.
///
/// The targets: cluster (one database, slots), a server
/// release (redis-7.0, valkey-8.1: can it restore the file?), or elasticache (cluster rules, and
/// no key over 250 MB). Each finding has a stable code, a severity, a count of keys and the first
/// 100 of them:
///
/// several-dbs (error for cluster targets), key-over-512mb (error: RESTORE payload over
/// proto-max-bulk-len), key-over-250mb (error for elasticache, else warning), refused-by-target
/// (error), invalid-file (error), hot-slot (warning: a slot over --max-slot-share of the
/// memory), huge-collection (warning: over 10 M elements), module-type (warning: the target needs
/// the module), function-libraries (info), already-expired (info, at --now).
///
/// Exit status: 0 nothing blocks the migration, 1 an error-severity finding, 2 could not run.
#[derive(clap::Args)]
pub struct Args {
    /// RDB files, or directories searched for *.rdb (a cluster's shards together).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where the data is going: cluster, elasticache, or a release (redis-7.0, valkey-9.1).
    #[arg(long, value_name = "TARGET", value_parser = parse_target)]
    target: Target,
    /// A slot holding more than this share of all memory is reported (cluster targets).
    #[arg(long, value_name = "SHARE", default_value_t = 0.2)]
    max_slot_share: f64,
    /// "Now" for already-expired keys (default: the clock); the forms of every time flag.
    #[arg(long, value_name = "TIME", value_parser = rdbtool::time::cli_time_ms)]
    now: Option<i64>,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> u8 {
    let fail = |msg: String| {
        eprintln!("rdbtool lint: {msg}");
        EXIT_CANNOT_RUN
    };
    if !(args.max_slot_share > 0.0 && args.max_slot_share <= 1.0) {
        return fail(format!("--max-slot-share {}: a share between 0 and 1", args.max_slot_share));
    }
    let files = match rdbtool::discover::rdb_files(&args.files) {
        Ok(f) => f,
        Err(e) => return fail(e.to_string()),
    };
    let now_ms = args.now.unwrap_or_else(rdbtool::time::now_ms);
    let opts = Options { target: args.target, max_slot_share: args.max_slot_share, now_ms };
    let filter = match super::filter::FilterArgs::default().build() {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let report_opts = rdbtool::report::Options {
        top: 0,
        separators: Vec::new(),
        depth: 0,
        max_prefixes: 0,
        now_ms,
        filter,
        largest_element: false,
    };
    let vopts = rdbtool::verify::Options {
        target: match args.target {
            Target::Server(r) => Some(r),
            _ => None,
        },
        now_ms,
        ..Default::default()
    };
    let bar = super::progress::bytes_bar(
        files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum(),
        "lint",
    );
    let mut lint = Lint::new();
    for f in &files {
        let name = f.display().to_string();
        let data = match rdbtool::input::open(f) {
            Ok(d) => d,
            Err(e) => return fail(format!("{name}: cannot read: {e}")),
        };
        let rep = rdbtool::verify::verify_bytes(&name, &data, &vopts);
        lint.file(&name, &rep, rep.functions, &opts);
        if rdbtool::lint::readable(&rep) {
            let scanned = scan_file(&name, &data, &report_opts, &rdbtool::pass::Pages::new(&data, 1), &mut |row| {
                lint.key(&name, row, &opts);
                Ok(())
            });
            if let Err(e) = scanned {
                return fail(format!("{name}: {e}"));
            }
        }
        bar.inc(data.len() as u64);
    }
    bar.finish_and_clear();
    let findings = lint.finish(&opts);
    let blocked = findings.iter().any(|f| f.severity == Severity::Error);
    let code = if blocked { EXIT_INVALID } else { EXIT_OK };
    super::with_stdout(|out| {
        if args.json {
            let doc = serde_json::json!({ "ok": !blocked, "files": files.len(), "findings": findings });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
            return Ok(code);
        }
        for f in &findings {
            let sev = match f.severity {
                Severity::Error => "ERROR  ",
                Severity::Warning => "WARNING",
                Severity::Info => "INFO   ",
            };
            let count = if f.count > 0 { format!(" ({})", f.count) } else { String::new() };
            writeln!(out, "{sev} {}{count}: {}", f.code, f.message)?;
            for k in f.keys.iter().take(5) {
                writeln!(out, "        {} db {} {} ({})", k.file, k.db, rdbtool::display::quoted(&k.key), k.value)?;
            }
            if !f.keys.is_empty() && (f.keys.len() > 5 || f.count > f.keys.len() as u64) {
                writeln!(out, "        ... {} in all (--json lists the first {})", f.count, rdbtool::lint::LISTED)?;
            }
        }
        writeln!(
            out,
            "{}: {} finding{} in {} file{}",
            if blocked { "BLOCKED" } else { "OK" },
            findings.len(),
            if findings.len() == 1 { "" } else { "s" },
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        )?;
        Ok(code)
    })
}
