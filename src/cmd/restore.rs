//! `rdbtool restore FILE... --to URL`: put a backup into a live server or cluster.

use std::path::PathBuf;

use super::filter::FilterArgs;
use rdbtool::export::resp::OnBusyKey;
use rdbtool::filter::Expired;
use rdbtool::restore::{self, Input, Options, Target};

use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

/// Restore RDB files into a live Redis / Valkey server or cluster.
///
/// Every key goes as RESTORE key ttl payload ABSTTL (with IDLETIME / FREQ from the file), the
/// payload framed from the file's own bytes, pipelined in batches. Standalone or cluster is
/// detected with INFO: a standalone server keeps the databases (SELECT); a cluster takes each
/// key at the master of its slot (one pipeline per master, MOVED / ASK followed, TRYAGAIN /
/// CLUSTERDOWN / LOADING retried), and only db 0 (--db N or --into-db0 for other databases).
/// Keys whose encoding the target's version cannot load (an RDB 10 listpack into Redis 6.2) go
/// as the plain commands of `export --format resp` ("sent as commands"). Function libraries go
/// first, as FUNCTION LOAD on every master.
///
/// Busy keys (--on-busy-key): panic (default) never touches the target's keys: at the first
/// existing key it stops sending, waits for what is in flight, names the key and lists the keys
/// written; skip keeps the target's key and counts it; rewrite replaces it. Keys whose TTL has
/// passed are skipped and counted; --expired include sends them with their past TTL, which the
/// server then drops at once.
///
/// Exit status: 0 every selected key restored (or skipped as asked), 1 some keys not restored
/// (busy under panic, refused, connection lost on the way), 2 could not run.
#[derive(clap::Args)]
pub struct Args {
    /// RDB files (or directories of *.rdb files).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The target: redis://[user[:password]@]host:port, rediss://..., unix:///path (default: the
    /// server of -h/-p/-s).
    #[arg(long, value_name = "URL")]
    to: Option<String>,
    /// What to do with a key (or function library) that exists on the target.
    #[arg(long, value_enum, default_value_t = OnBusyKey::Panic)]
    on_busy_key: OnBusyKey,
    /// Move every expire time by this much (1d, 12h, 30m, 90s, 500ms; negative: -1h) before
    /// anything else looks at it.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_duration_ms)]
    ttl_shift: Option<i64>,
    /// Route and count every key and look up with EXISTS which exist; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write every database's keys into db 0 (for a cluster; a key in several databases is
    /// refused).
    #[arg(long)]
    into_db0: bool,
    #[command(flatten)]
    conflicts: super::merge::ConflictArgs,
    /// Leave out the function libraries.
    #[arg(long)]
    no_functions: bool,
    /// At most N keys per second (a rate limit for a busy target).
    #[arg(long, value_name = "N")]
    max_ops: Option<u64>,
    /// Connections per master, each with its own pipeline (the keys of one hash slot always
    /// go on the same one). Default 2, but 1 under `--on-busy-key panic`: with one connection
    /// every key before the busy one in file order has been written when the run stops.
    #[arg(long, value_name = "N")]
    connections: Option<usize>,
    /// Keys per pipelined batch.
    #[arg(long, value_name = "N", default_value_t = 512)]
    batch: usize,
    /// After the restore, compare the restored keys with the target (`rdbtool diff` of each
    /// file, keys only on the target left out); differences: exit 1.
    #[arg(long)]
    verify: bool,
    /// Record in FILE, durably and about once a second, how far the target acknowledged the
    /// inputs (a small JSON file, replaced atomically).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// Continue an interrupted run (a crash, Ctrl-C, a lost target) where its --journal says:
    /// the same inputs, target and options. Keys acknowledged are not sent again; keys the
    /// interrupted run may have sent without an answer that exist on the target are taken as
    /// its writes (counted as "found on the target").
    #[arg(long, requires = "journal")]
    resume: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    live: super::live::LiveArgs,
}

/// `1d`, `12h`, `30m`, `90s`, `500ms`, `-1h`, or plain seconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| format!("{s:?}: expected a duration such as 1d, 12h, 30m, 90s, 500ms"))?;
    let mul = match unit {
        "" | "s" => 1000,
        "ms" => 1,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h, d, w)")),
    };
    let v = n.checked_mul(mul).ok_or_else(|| format!("{s:?}: too large"))?;
    Ok(if neg { -v } else { v })
}

pub fn run(args: Args) -> u8 {
    let fail = |msg: String| {
        eprintln!("rdbtool restore: {msg}");
        EXIT_CANNOT_RUN
    };
    let mut filter = match args.filter.build() {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    filter.expired = args.filter.expired.unwrap_or(Expired::Exclude);
    if args.journal.is_some() && (args.dry_run || args.filter.limit.is_some()) {
        return fail("--journal cannot be combined with --dry-run or --limit".into());
    }
    if args.batch == 0 {
        return fail("--batch must be at least 1".into());
    }
    let connections = args.connections.unwrap_or(match args.on_busy_key {
        OnBusyKey::Panic => 1,
        _ => restore::DEFAULT_CONNECTIONS,
    });
    if !(1..=64).contains(&connections) {
        return fail("--connections must be between 1 and 64".into());
    }
    if args.to.is_none() && !args.live.names_server() {
        return fail("no target: give --to redis://host:port (or -h/-p/-s)".into());
    }
    if args.to.is_some() && args.live.names_server() {
        return fail("--to and -h/-p/-s both name the target: give one".into());
    }
    let opts = match args.live.resolve(args.to.as_deref(), "restore") {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    if let Some(db) = opts.db {
        return fail(format!(
            "the target names database {db}: restore keeps each key's database; select keys with --db, \
             or use --into-db0"
        ));
    }
    let files = match rdbtool::discover::rdb_files(&args.inputs) {
        Ok(f) => f,
        Err(e) => return fail(e.to_string()),
    };
    let mut maps = Vec::with_capacity(files.len());
    for f in &files {
        match rdbtool::input::open(f) {
            Ok(d) => maps.push(d),
            Err(e) => return fail(format!("{}: cannot read: {e}", f.display())),
        }
    }
    if let Some(j) = &args.journal
        && files.iter().any(|f| rdbtool::output::same_file(j, f))
    {
        return fail(format!("--journal {}: that is an input file", j.display()));
    }
    let inputs: Vec<Input<'_>> = files
        .iter()
        .zip(&maps)
        .map(|(f, d)| Input { name: f.display().to_string(), data: d, mapped: Some(d) })
        .collect();
    let target = match Target::connect(&opts) {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    if args.verify {
        let why = if args.into_db0 || args.conflicts.on_conflict != rdbtool::merge::OnConflict::Error {
            Some("--into-db0 / --on-conflict (keys change db or name)")
        } else if args.ttl_shift.is_some() {
            Some("--ttl-shift (expire times differ from the file's)")
        } else if args.filter.min_bytes.is_some() || args.filter.limit.is_some() {
            Some("--min-bytes / --limit")
        } else if args.dry_run {
            Some("--dry-run")
        } else {
            None
        };
        if let Some(w) = why {
            return fail(format!("--verify cannot be combined with {w}"));
        }
    }
    let conflicts = match args.conflicts.options() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let payload_version = conflicts.target.map(|f| f.version.min(u16::MAX as u32) as u16);
    let ropts = Options {
        conflicts,
        payload_version,
        on_busy_key: args.on_busy_key,
        filter,
        ttl_shift_ms: args.ttl_shift.unwrap_or(0),
        dry_run: args.dry_run,
        functions: !args.no_functions,
        into_db0: args.into_db0,
        batch_keys: args.batch,
        connections,
        max_ops: args.max_ops,
        journal: args.journal.clone(),
        resume: args.resume,
        ..Options::default()
    };
    let total: u64 = inputs.iter().map(|i| i.data.len() as u64).sum();
    let bar = super::progress::bytes_bar(total, "restore");
    // Pages behind the reader are given back by the restore itself (src/pass.rs).
    let mut progress = |pos: u64| bar.set_position(pos);
    let res = restore::run(&inputs, &target, &ropts, &mut progress);
    bar.finish_and_clear();
    let rep = match res {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    for w in &rep.warnings {
        eprintln!("rdbtool restore: warning: {w}");
    }
    for e in &rep.errors {
        eprintln!("rdbtool restore: {e}");
    }
    let mut code = if rep.ok { EXIT_OK } else { EXIT_INVALID };
    let verified = if args.verify && !rep.stopped() {
        if target.is_cluster() && ropts.filter.dbs.iter().any(|&d| d != 0) {
            Err("--verify: the keys went from another db into the cluster's db 0; compare with rdbtool diff".into())
        } else {
            verify(&inputs, &opts, &ropts.filter, &args.filter, rep.counts.sent_as_commands > 0)
        }
    } else {
        Ok(Vec::new())
    };
    let verified = match verified {
        Ok(v) => v,
        Err(e) => {
            eprintln!("rdbtool restore: {e}");
            code = EXIT_INVALID;
            Vec::new()
        }
    };
    if !verified.is_empty() {
        code = EXIT_INVALID;
    }
    super::with_stdout(|out| {
        if args.json {
            let mut doc = serde_json::to_value(&rep).unwrap_or_default();
            if args.verify {
                doc["verify"] = serde_json::json!({ "differences": verified.len(), "keys": verified });
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
        } else {
            rep.print(out)?;
            if args.verify {
                writeln!(out, "  verify: {} differences between the files and the target", verified.len())?;
                for d in verified.iter().take(100) {
                    writeln!(out, "    {d}")?;
                }
            }
        }
        Ok(code)
    })
}

/// `diff` of every input against the target, within the filters; keys only on the target and
/// keys expired meanwhile do not count. The differences, one line each.
fn verify(
    inputs: &[Input<'_>],
    opts: &rdbtool::redis::ConnectOptions,
    filter: &rdbtool::filter::Filter,
    fargs: &FilterArgs,
    plain: bool,
) -> Result<Vec<String>, String> {
    use rdbtool::diff::{DiffKind, Difference, FileSide, KeySelect};
    let select = KeySelect {
        dbs: filter.dbs.clone(),
        globs: filter.globs.clone(),
        glob_patterns: fargs.keys.iter().map(|k| k.as_encoded_bytes().to_vec()).collect(),
        slots: filter.slots.clone(),
        sample_rate: None,
    };
    // Plain streams carry the load time as consumer seen time.
    let dopts = rdbtool::diff::Options { select, stream_times: !plain, ..rdbtool::diff::Options::default() };
    let mut lines = Vec::new();
    for i in inputs {
        let mut live = rdbtool::diff::live::LiveSide::connect(opts).map_err(|e| format!("--verify: {e}"))?;
        let mut file = FileSide::open(i.name.clone(), i.data).map_err(|e| format!("--verify: {e}"))?;
        let mut out = |d: &Difference| -> std::io::Result<()> {
            let counts = match d.kind {
                DiffKind::OnlyInB | DiffKind::Expired => false,
                _ => {
                    let kind_ok =
                        filter.kinds.is_empty() || d.a.as_ref().is_some_and(|a| filter.kinds.contains(&a.kind));
                    let re_ok = filter.key_regex.as_ref().is_none_or(|r| r.is_match(&d.key));
                    let expired =
                        d.a.as_ref()
                            .is_some_and(|a| filter.expired == Expired::Exclude && filter.is_expired(a.expire_at_ms));
                    kind_ok && re_ok && !expired
                }
            };
            if counts {
                lines.push(format!(
                    "{}: db {} key {}: {}",
                    i.name,
                    d.db,
                    rdbtool::display::quoted(&d.key),
                    d.kind.as_str()
                ));
            }
            Ok(())
        };
        rdbtool::diff::live::diff_file_live(&mut file, &mut live, true, &dopts, &mut out)
            .map_err(|e| format!("--verify: {e}"))?;
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("1d"), Ok(86_400_000));
        assert_eq!(parse_duration_ms("-1h"), Ok(-3_600_000));
        assert_eq!(parse_duration_ms("90"), Ok(90_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert!(parse_duration_ms("1y").is_err());
        assert!(parse_duration_ms("").is_err());
    }
}
