//! `rdbtool split IN... -o DIR`: one RDB file per cluster shard, by hash slot.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rdbtool::merge::{self, OutputReport, Source, Timings};
use rdbtool::rdb::writer::magic;
use rdbtool::split::{DbSelect, Layout, SplitRouter, Target, ranges_text};
use serde::Serialize;

use super::{EXIT_CANNOT_RUN, EXIT_OK};

/// Split RDB files into one RDB file per cluster shard, by hash slot.
///
/// The slot of a key is CRC16 of the key (or of its {hash tag}) modulo 16384, as Redis Cluster
/// computes it. Targets come from exactly one of --shards N (N even ranges, as `redis-cli
/// --cluster create` assigns them), --slots (explicit ranges), --nodes (CLUSTER NODES output or a
/// nodes.conf: one file per master, named by node id and address) or --from (the layout of a
/// live cluster). Key records are copied byte for byte; every output gets the inputs' function
/// libraries and has db 0 only.
///
/// Keys outside db 0 are an error unless --db N selects one database or --into-db0 takes all
/// (then a key in two dbs is a conflict, resolved by --on-conflict as in `merge`). Several inputs
/// (the shards of another layout) can be split together. Outputs are written under temporary
/// names, checked with `verify`, and renamed only when all passed; existing files are kept unless
/// --force. Exit status: 0 written, 1 invalid input, conflicts or keys no target takes, 2 could
/// not run.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("targets").required(true).args(["shards", "slots", "nodes", "from"])))]
pub struct Args {
    /// Input RDB files (or directories holding *.rdb files).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Directory for the output files (created if missing).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// N targets with even slot ranges (shard-0.rdb ... shard-N-1.rdb).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// Explicit targets: comma-separated slot ranges, `+` joins ranges of one target
    /// (e.g. 0-5460,5461-10922,10923-16383).
    #[arg(long, value_name = "RANGES")]
    slots: Option<String>,
    /// A file with the output of CLUSTER NODES, or a nodes.conf.
    #[arg(long, value_name = "FILE")]
    nodes: Option<PathBuf>,
    /// A node of a live cluster (reads CLUSTER SLOTS): redis://[user@]host:port, rediss://...,
    /// or, without URL, the server of -h/-p (password from REDISCLI_AUTH or --password-file).
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    from: Option<String>,
    /// Take only this database (written as db 0).
    #[arg(long, value_name = "N", conflicts_with = "into_db0")]
    db: Option<u64>,
    /// Take every database, written as db 0.
    #[arg(long)]
    into_db0: bool,
    #[command(flatten)]
    conflicts: super::merge::ConflictArgs,
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    live: super::live::LiveArgs,
}

#[derive(Serialize)]
struct TargetReport<'a> {
    name: &'a str,
    slots: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a rdbtool::split::Node>,
    file: String,
    keys: u64,
    expires: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct Summary<'a> {
    ok: bool,
    format: String,
    inputs: Vec<merge::InputReport>,
    targets: Vec<TargetReport<'a>>,
    keys: u64,
    bytes: u64,
    functions: usize,
    /// Conflicts resolved, and the first ones of them.
    conflicts_resolved: usize,
    conflicts: Vec<merge::Conflict>,
    timings: Timings,
}

/// The slot layout named by exactly one of --shards, --slots, --nodes, --from (`from` empty:
/// the server of -h/-p/-s); `cmd` prefixes warnings.
pub fn choose_layout(
    shards: Option<usize>,
    slots: Option<&str>,
    nodes: Option<&Path>,
    from: Option<&str>,
    live: &super::live::LiveArgs,
    cmd: &str,
) -> Result<Layout, String> {
    if let Some(n) = shards {
        Layout::even(n)
    } else if let Some(s) = slots {
        Layout::from_spec(s)
    } else if let Some(f) = nodes {
        match std::fs::read(f) {
            Ok(b) => Layout::from_nodes(&String::from_utf8_lossy(&b)),
            Err(e) => Err(format!("{}: {e}", f.display())),
        }
    } else if let Some(url) = from {
        live.resolve(Some(url).filter(|u| !u.is_empty()), cmd).and_then(|o| rdbtool::split::fetch_layout(&o))
    } else {
        Err("one of --shards, --slots, --nodes, --from is needed".into())
    }
}

pub fn run(args: Args) -> u8 {
    let fail = |msg: String| {
        eprintln!("rdbtool split: {msg}");
        EXIT_CANNOT_RUN
    };
    if args.from.is_none() && args.live.names_server() {
        return fail("-h/-p/-s name the cluster to read with --from: add --from".into());
    }
    let opts = match args.conflicts.options() {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let layout = choose_layout(
        args.shards,
        args.slots.as_deref(),
        args.nodes.as_deref(),
        args.from.as_deref(),
        &args.live,
        "split",
    );
    let layout = match layout {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let files = match rdbtool::discover::rdb_files(&args.inputs) {
        Ok(f) => f,
        Err(e) => return fail(e.to_string()),
    };
    // The files, and the directories they were found in.
    let input_paths: Vec<&Path> = files.iter().chain(&args.inputs).map(|p| p.as_path()).collect();
    if let Err(e) = rdbtool::output::check_not_input(&args.output, &input_paths) {
        return fail(format!("{}: {e}", args.output.display()));
    }
    if let Err(e) = std::fs::create_dir_all(&args.output) {
        return fail(format!("{}: {e}", args.output.display()));
    }
    let outputs: Vec<PathBuf> = layout.targets.iter().map(|t| args.output.join(format!("{}.rdb", t.name))).collect();
    for o in &outputs {
        if let Err(e) = rdbtool::output::check_target(o, &input_paths, args.force) {
            return fail(format!("{}: {e}", o.display()));
        }
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
    // Two passes over every input: verify (which gathers the plan), write.
    let total = 2 * maps.iter().map(|m| m.len() as u64).sum::<u64>();
    let dbs = match (args.db, args.into_db0) {
        (Some(d), _) => DbSelect::Only(d),
        (None, true) => DbSelect::All,
        (None, false) => DbSelect::Db0,
    };
    let router = SplitRouter { layout: &layout, dbs };

    let result = super::progress::follow(total, "split", &done, || {
        merge::plan(&sources, &router, &opts).and_then(|plan| {
            let (outs, timings) = merge::write_files(&plan, &sources, &router, &outputs, &input_paths, args.force)?;
            Ok((plan, outs, timings))
        })
    });
    super::with_stdout(|out| match result {
        Ok((plan, outs, timings)) => {
            let targets: Vec<TargetReport<'_>> =
                layout.targets.iter().zip(&outs).map(|(t, o)| target_report(t, o)).collect();
            let summary = Summary {
                ok: true,
                format: magic(plan.target),
                keys: targets.iter().map(|t| t.keys).sum(),
                bytes: targets.iter().map(|t| t.bytes).sum(),
                inputs: plan.inputs,
                targets,
                functions: plan.functions_written,
                conflicts_resolved: plan.resolved_total,
                conflicts: plan.resolved,
                timings,
            };
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&summary).unwrap_or_default())?;
            } else {
                print_summary(out, &summary)?;
            }
            Ok(EXIT_OK)
        }
        Err(e) => super::merge::report_error(out, "split", &e, args.json),
    })
}

fn target_report<'a>(t: &'a Target, o: &OutputReport) -> TargetReport<'a> {
    TargetReport {
        name: &t.name,
        slots: ranges_text(&t.ranges),
        node: t.node.as_ref(),
        file: o.file.clone(),
        keys: o.keys,
        expires: o.expires,
        bytes: o.bytes,
    }
}

fn print_summary(out: &mut dyn Write, s: &Summary<'_>) -> io::Result<()> {
    let inputs: Vec<&str> = s.inputs.iter().map(|i| i.file.as_str()).collect();
    writeln!(
        out,
        "split {} into {} files ({}, {} keys, {} bytes)",
        inputs.join(", "),
        s.targets.len(),
        s.format,
        s.keys,
        s.bytes
    )?;
    for i in &s.inputs {
        if i.skipped > 0 {
            writeln!(out, "  {}: {} keys of other dbs left out", i.file, i.skipped)?;
        }
        for w in &i.warnings {
            writeln!(out, "  {}: warning: {w}", i.file)?;
        }
    }
    for t in &s.targets {
        writeln!(
            out,
            "  {:<12} slots {:<24} {:>10} keys {:>10} with TTL {:>14} bytes  {}",
            t.name, t.slots, t.keys, t.expires, t.bytes, t.file
        )?;
    }
    if s.functions > 0 {
        writeln!(out, "  {} function libraries in every file", s.functions)?;
    }
    if s.conflicts_resolved > 0 {
        writeln!(out, "  {} conflicts resolved", s.conflicts_resolved)?;
    }
    let t = &s.timings;
    writeln!(out, "  time: plan {:.3} s, write {:.3} s, verify {:.3} s", t.plan_s, t.write_s, t.verify_s)?;
    Ok(())
}
