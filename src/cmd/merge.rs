//! `rdbtool merge IN... -o OUT`: several RDB files (or the databases of one) into one RDB file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rdbtool::merge::{self, Conflict, MergeError, MergeRouter, OnConflict, Options, RenameTemplate, Report, Source};
use rdbtool::rdb::writer::magic;

use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

/// Merge RDB files into one RDB file.
///
/// Key records are copied byte for byte (values are not re-encoded). With --into-db0 every
/// database goes to db 0, as cluster mode needs; otherwise databases keep their numbers. A key
/// that comes from two places (two dbs under --into-db0, or two files) is a conflict:
/// --on-conflict error (default) writes nothing and lists every one; first / last keep the copy
/// met first / last (inputs in command-line order, then file order); rename writes every copy
/// under the name --rename gives it ({db} source db, {key}, {input} input number from 0, {file}
/// input name without extension; default "{db}:{key}"). Function libraries of all inputs are
/// merged (one name with different code is a conflict that only first / last resolve).
///
/// The output is written to a temporary file, checked with `verify`, and renamed; an existing
/// output is kept unless --force. Memory: flat with the number of keys (collision detection keeps
/// 16 bytes a key, past 16 MiB per input in a temporary file).
/// Exit status: 0 written, 1 invalid input or unresolved conflicts, 2 could not run (arguments,
/// files, or content the output version cannot hold).
#[derive(clap::Args)]
pub struct Args {
    /// Input RDB files (or directories holding *.rdb files), in priority order.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The merged RDB file.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Write every database's keys into db 0.
    #[arg(long)]
    into_db0: bool,
    #[command(flatten)]
    conflicts: ConflictArgs,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// The flags `merge` and `split` share: conflict policy, rename template, output version.
#[derive(clap::Args)]
pub struct ConflictArgs {
    /// What to do with a key that comes from several places (two dbs under --into-db0, or two
    /// inputs).
    #[arg(long, value_enum, default_value_t = OnConflict::Error)]
    pub on_conflict: OnConflict,
    /// With --on-conflict rename: the new names ({db}, {key}, {input}, {file}; {{ }} for braces).
    #[arg(long, value_name = "TEMPLATE")]
    pub rename: Option<String>,
    /// RDB version of the output: 1-13, 80 (Valkey 9), or the release that is to load it
    /// (redis-7.0, valkey-8.1); default: the newest input's.
    #[arg(long, value_name = "N|SERVER", value_parser = rdbtool::rdb::servers::parse_rdb_target)]
    pub rdb_version: Option<rdbtool::rdb::types::Format>,
}

impl ConflictArgs {
    /// The engine options these flags ask for, or why they cannot be combined.
    pub fn options(&self) -> Result<Options, String> {
        let rename = match (&self.rename, self.on_conflict) {
            (Some(t), OnConflict::Rename) => Some(RenameTemplate::parse(t)?),
            (Some(_), _) => return Err("--rename needs --on-conflict rename".into()),
            (None, _) => None,
        };
        let target = self.rdb_version;
        Ok(Options { on_conflict: self.on_conflict, rename, target })
    }
}

pub fn run(args: Args) -> u8 {
    let fail = |msg: String| {
        eprintln!("rdbtool merge: {msg}");
        EXIT_CANNOT_RUN
    };
    let opts = match args.conflicts.options() {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let files = match rdbtool::discover::rdb_files(&args.inputs) {
        Ok(f) => f,
        Err(e) => return fail(e.to_string()),
    };
    // The files, and the directories they were found in.
    let input_paths: Vec<&Path> = files.iter().chain(&args.inputs).map(|p| p.as_path()).collect();
    if let Err(e) = rdbtool::output::check_target(&args.output, &input_paths, args.force) {
        return fail(format!("{}: {e}", args.output.display()));
    }
    let mut maps = Vec::with_capacity(files.len());
    for f in &files {
        match rdbtool::input::open(f) {
            Ok(d) => maps.push(d),
            Err(e) => return fail(format!("{}: cannot read: {e}", f.display())),
        }
    }
    let done = std::sync::atomic::AtomicU64::new(0);
    let sources: Vec<Source<'_>> =
        files.iter().zip(&maps).map(|(f, d)| Source::mapped(f.display().to_string(), d).with_progress(&done)).collect();
    let router = MergeRouter { into_db0: args.into_db0 };
    // Two passes over every input: verify (which gathers the plan), write.
    let total = 2 * maps.iter().map(|m| m.len() as u64).sum::<u64>();

    let result = super::progress::follow(total, "merge", &done, || {
        merge::plan(&sources, &router, &opts).and_then(|plan| {
            let (outs, timings) = merge::write_files(
                &plan,
                &sources,
                &router,
                std::slice::from_ref(&args.output),
                &input_paths,
                args.force,
            )?;
            Ok(Report {
                ok: true,
                format: magic(plan.target),
                inputs: plan.inputs,
                output: outs.into_iter().next(),
                functions: plan.functions_written,
                function_duplicates: plan.functions_duplicates,
                on_conflict: args.conflicts.on_conflict,
                conflicts_resolved: plan.resolved_total,
                conflicts: plan.resolved,
                timings,
            })
        })
    });
    super::with_stdout(|out| match result {
        Ok(rep) => {
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&rep).unwrap_or_default())?;
            } else {
                print_report(out, &rep)?;
            }
            Ok(EXIT_OK)
        }
        Err(e) => report_error(out, "merge", &e, args.json),
    })
}

fn print_report(out: &mut dyn Write, rep: &Report) -> io::Result<()> {
    let Some(o) = &rep.output else { return Ok(()) };
    writeln!(
        out,
        "merged {} input{} into {} ({}, {} keys, {} with TTL, {} bytes)",
        rep.inputs.len(),
        if rep.inputs.len() == 1 { "" } else { "s" },
        o.file,
        rep.format,
        o.keys,
        o.expires,
        o.bytes
    )?;
    for i in &rep.inputs {
        let dbs: Vec<String> = i.dbs.iter().map(|(d, n)| format!("db{d}:{n}")).collect();
        writeln!(out, "  input  {} ({}, {} keys: {})", i.file, i.format, i.keys, dbs.join(" "))?;
        for w in &i.warnings {
            writeln!(out, "         warning: {w}")?;
        }
    }
    for d in &o.dbs {
        writeln!(
            out,
            "  db {}: {} keys written ({} with TTL); conflicts: {} kept, {} dropped, {} renamed",
            d.db, d.keys, d.expires, d.kept, d.dropped, d.renamed
        )?;
    }
    writeln!(out, "  functions: {} written, {} identical copies left out", rep.functions, rep.function_duplicates)?;
    if rep.conflicts_resolved > 0 {
        writeln!(
            out,
            "  {} conflicts resolved by --on-conflict {}",
            rep.conflicts_resolved,
            format!("{:?}", rep.on_conflict).to_lowercase()
        )?;
    }
    let t = &rep.timings;
    writeln!(out, "  time: plan {:.3} s, write {:.3} s, verify {:.3} s", t.plan_s, t.write_s, t.verify_s)?;
    Ok(())
}

/// Prints a failed merge / split (conflicts listed in full) and returns its exit status.
pub fn report_error(out: &mut dyn Write, cmd: &str, e: &MergeError, json: bool) -> io::Result<u8> {
    let code = match e {
        MergeError::Input { .. } | MergeError::Conflicts(_) | MergeError::Rejected { .. } | MergeError::Invalid(_) => {
            EXIT_INVALID
        }
        MergeError::Refused { .. } | MergeError::Io(_) => EXIT_CANNOT_RUN,
    };
    let conflicts: &[Conflict] = match e {
        MergeError::Conflicts(c) => c,
        _ => &[],
    };
    let message = error_message(e);
    if json {
        let doc = serde_json::json!({ "ok": false, "error": message, "conflicts": conflicts });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
    } else {
        for c in conflicts {
            writeln!(out, "conflict: {c}")?;
        }
    }
    eprintln!("rdbtool {cmd}: {message}");
    Ok(code)
}

fn error_message(e: &MergeError) -> String {
    match e {
        MergeError::Conflicts(c) => format!(
            "{} conflicts, nothing written (choose --on-conflict first, last or rename to resolve key conflicts)",
            c.len()
        ),
        MergeError::Rejected { dbs, unassigned, examples } => {
            let mut parts = Vec::new();
            if !dbs.is_empty() {
                let list: Vec<String> = dbs.iter().map(|(d, n)| format!("db {d}: {n} keys")).collect();
                parts.push(format!(
                    "keys outside db 0 ({}): choose one with --db N, or map all to db 0 with --into-db0",
                    list.join(", ")
                ));
            }
            if *unassigned > 0 {
                let ex: Vec<String> =
                    examples.iter().map(|(s, k)| format!("slot {s} ({})", rdbtool::display::quoted(k))).collect();
                parts.push(format!("{unassigned} keys in slots no target owns, e.g. {}", ex.join(", ")));
            }
            format!("nothing written: {}", parts.join("; "))
        }
        MergeError::Refused { messages, total } => {
            let more = if *total as usize > messages.len() {
                format!(" (and {} more)", *total as usize - messages.len())
            } else {
                String::new()
            };
            format!("nothing written: {}{more}", messages.join("; "))
        }
        other => other.to_string(),
    }
}
