//! `rdbtool restore-test FILE_OR_DIR`: load a backup into a throwaway redis-server and compare;
//! `rdbtool restore-test SHARD.rdb...`: load a cluster backup into a throwaway cluster (a file
//! per master) and compare.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rdbtool::diff::live::{self, LiveSide};
use rdbtool::diff::{DiffError, FileSet, FileSide, Options, SlotCounter, Summary};
use rdbtool::restore_test::{self, Backup, Outcome, ServerOptions, SetOutcome};

use super::diff::{Mode, Printer};
use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

/// Restore a backup into a throwaway redis-server and check that Redis takes it.
///
/// Starts redis-server (from PATH, or --redis-server) on a unix socket in a private temp dir,
/// with a random password and the commands that reach outside the dataset (REPLICAOF, CONFIG,
/// ACL, MODULE, DEBUG, ...) removed, with the backup: an RDB file as its dump.rdb (linked, never modified), an AOF set
/// (appendonlydir) copied and loaded with --appendonly yes. Waits until loading ends and reports
/// whether Redis accepted the backup, with Redis's own reason from its log when it did not.
/// For an RDB file, the loaded dataset is then compared with the file (as `rdbtool diff`; keys
/// whose TTL had passed are dropped by Redis and reported as expired). The server is stopped by
/// its PID and its temp dir removed.
///
/// Several RDB files are a cluster backup (one file per shard): a throwaway Redis Cluster of as
/// many masters is started (cluster-enabled, on loopback TCP ports, password and removed
/// commands as above, CLUSTER kept), each master loading one file as its dump.rdb, as an
/// operator restores a cluster's backup (a node that refuses its file makes the set REFUSED;
/// so do two files with keys of one slot). Each master takes the slots of its keys, the others
/// are spread, and the set is compared with the cluster (as `rdbtool diff SHARD.rdb...
/// redis://node`), with a line per file.
///
/// Exit status: 0 accepted (and identical), 1 refused or different, 2 could not run.
#[derive(clap::Args)]
pub struct Args {
    /// An RDB file, or an AOF directory (appendonlydir with its manifest); several RDB files:
    /// a cluster backup, one file per shard.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
    /// The redis-server binary to test with.
    #[arg(long, value_name = "PATH", default_value = "redis-server")]
    redis_server: PathBuf,
    /// Seconds to wait for loading to end.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    load_timeout: u64,
    /// Only check that Redis loads the backup; skip the comparison.
    #[arg(long)]
    no_diff: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
    /// Expire times this many seconds apart are equal.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    ttl_tolerance: f64,
    /// List at most N differing members per value.
    #[arg(long, value_name = "N", default_value_t = 10)]
    max_members: usize,
    /// Where the throwaway server's dir goes (default: the system temp dir).
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> u8 {
    if args.paths.len() > 1 {
        return run_set(args);
    }
    let path = args.paths[0].clone();
    let name = path.display().to_string();
    let fail = |msg: String| {
        eprintln!("rdbtool restore-test: {msg}");
        EXIT_CANNOT_RUN
    };
    if !(args.ttl_tolerance >= 0.0 && args.ttl_tolerance.is_finite()) {
        return fail(format!("--ttl-tolerance {}: must be a number of seconds >= 0", args.ttl_tolerance));
    }
    let backup = match Backup::detect(&path) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let so = ServerOptions {
        redis_server: args.redis_server.clone(),
        load_timeout: Duration::from_secs(args.load_timeout.max(1)),
        temp_dir: args.temp_dir.clone(),
    };
    // A bar while Redis loads (its INFO says how far), then one while the diff reads the file.
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let bar = super::progress::bytes_bar(if path.is_file() { size } else { 0 }, "loading");
    let outcome = restore_test::start_watched(&backup, &so, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let server = match outcome {
        Outcome::Refused(r) => {
            return super::with_stdout(|out| {
                if args.json {
                    let doc = serde_json::json!({
                        "file": name, "server_version": r.version, "accepted": false, "exit": r.exit,
                        "reasons": r.reasons, "hint": r.hint, "ok": false,
                    });
                    writeln!(out, "{doc}")?;
                } else {
                    let program = restore_test::server_program(&so.redis_server);
                    writeln!(out, "REFUSED  {name}  ({program} {} {})", r.version, r.exit)?;
                    let who = program.trim_end_matches("-server");
                    for l in &r.reasons {
                        writeln!(out, "  {who}: {l}")?;
                    }
                    if let Some(h) = &r.hint {
                        writeln!(out, "  hint: {h}")?;
                    }
                }
                Ok(EXIT_INVALID)
            });
        }
        Outcome::Accepted(t) => t,
    };
    let mut conn = server.connect_options();
    conn.timeout = Duration::from_secs(60);
    let mut live = match LiveSide::connect(&conn) {
        Ok(l) => l,
        Err(e) => return fail(e.to_string()),
    };
    let keys: u64 = live.key_counts().iter().map(|(_, k)| k).sum();
    let load_s = server.load_time.as_secs_f64();
    let data = match &backup {
        Backup::Rdb(p) if !args.no_diff => match rdbtool::input::open(p) {
            Ok(d) => Some(d),
            Err(e) => return fail(format!("{name}: cannot read: {e}")),
        },
        _ => None,
    };
    let opts = Options {
        ttl_tolerance_ms: (args.ttl_tolerance * 1000.0).round() as i64,
        max_members: args.max_members,
        temp_dir: args.temp_dir.clone(),
        ..Options::default()
    };
    let version = server.version.clone();
    let code = super::with_stdout(|out| {
        let program = restore_test::server_program(&so.redis_server);
        let accepted = format!("ACCEPTED  {name}  ({program} {version} loaded {keys} keys in {load_s:.1} s)");
        let Some(data) = &data else {
            if args.json {
                let doc = serde_json::json!({
                    "file": name, "server_version": version, "accepted": true, "keys": keys,
                    "load_seconds": load_s, "ok": true,
                });
                writeln!(out, "{doc}")?;
            } else {
                writeln!(out, "{accepted}")?;
                if matches!(backup, Backup::Rdb(_)) {
                    writeln!(out, "(comparison skipped: --no-diff)")?;
                } else {
                    writeln!(out, "(an AOF set is its own reference: nothing to compare it with)")?;
                }
            }
            return Ok(EXIT_OK);
        };
        let mode = if args.json { Mode::Json } else { Mode::Text };
        let mut printer = Printer::new(out, mode);
        if args.json {
            printer.json.object("")?;
            printer.json.field("file", &name)?;
            printer.json.field("server_version", &version)?;
            printer.json.field("accepted", &true)?;
            printer.json.field("keys", &keys)?;
            printer.json.field("load_seconds", &load_s)?;
        } else {
            writeln!(printer.json.out(), "{accepted}")?;
        }
        printer.begin(&name, &live.name)?;
        let read = AtomicU64::new(0);
        let res = super::progress::follow(data.len() as u64, "diff", &read, || {
            compare(&name, data, &mut live, &opts, &mut printer, &read)
        });
        conclude(&mut printer, res, &name, &live.name, args.json)
    });
    drop(live);
    server.stop();
    code
}

fn compare(
    name: &str,
    data: &rdbtool::input::Input,
    live: &mut LiveSide,
    opts: &Options,
    out: &mut dyn rdbtool::diff::Output,
    read: &AtomicU64,
) -> Result<Summary, DiffError> {
    let pages = rdbtool::pass::Pages::new(data, 1);
    let mut f = FileSide::open(name.to_owned(), data)?.with_pages(&pages).with_progress(read);
    live::diff_file_live(&mut f, live, true, opts, out)
}

/// Several RDB files: a throwaway cluster of as many masters, each loading one file, then the
/// set compared with it.
fn run_set(args: Args) -> u8 {
    let fail = |msg: String| {
        eprintln!("rdbtool restore-test: {msg}");
        EXIT_CANNOT_RUN
    };
    if !(args.ttl_tolerance >= 0.0 && args.ttl_tolerance.is_finite()) {
        return fail(format!("--ttl-tolerance {}: must be a number of seconds >= 0", args.ttl_tolerance));
    }
    let names: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
    let mut maps = Vec::with_capacity(args.paths.len());
    for (p, n) in args.paths.iter().zip(&names) {
        match Backup::detect(p) {
            Ok(Backup::Rdb(_)) => {}
            Ok(_) => return fail(format!("{n}: several paths are a cluster backup of RDB files, not AOF sets")),
            Err(e) => return fail(e),
        }
        match rdbtool::input::open(p) {
            Ok(d) => maps.push(d),
            Err(e) => return fail(format!("{n}: cannot read: {e}")),
        }
    }
    let so = ServerOptions {
        redis_server: args.redis_server.clone(),
        load_timeout: Duration::from_secs(args.load_timeout.max(1)),
        temp_dir: args.temp_dir.clone(),
    };
    let version = match restore_test::server_version(&so.redis_server) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let total: u64 = maps.iter().map(|m| m.len() as u64).sum();
    let bar = super::progress::bytes_bar(total, "loading");
    let started = restore_test::start_set_watched(&args.paths, &so, &mut |done, all| {
        bar.set_length(all);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let set_name = rdbtool::diff::set_name(&names);
    let masters = maps.len();
    let program = restore_test::server_program(&so.redis_server);
    let head = format!("cluster of {masters} {program} {version} masters");
    let cluster = match started {
        Err(e) => return fail(e),
        Ok(SetOutcome::Accepted(c)) => c,
        Ok(SetOutcome::Refused { file, refusal: r }) => {
            return super::with_stdout(|out| {
                if args.json {
                    let doc = serde_json::json!({
                        "files": names, "server_version": version, "masters": masters, "accepted": false,
                        "refused_file": names[file], "exit": r.exit, "reasons": r.reasons, "hint": r.hint,
                        "ok": false,
                    });
                    writeln!(out, "{doc}")?;
                } else {
                    writeln!(out, "REFUSED  {set_name}  ({head})")?;
                    writeln!(out, "  the node given {} refused it ({})", names[file], r.exit)?;
                    for l in &r.reasons {
                        writeln!(out, "  {}: {l}", program.trim_end_matches("-server"))?;
                    }
                    if let Some(h) = &r.hint {
                        writeln!(out, "  hint: {h}")?;
                    }
                }
                Ok(EXIT_INVALID)
            });
        }
        Ok(SetOutcome::SharedSlots { slots, count }) => {
            let reasons = shared_slot_reasons(&names, &maps, &slots, count);
            return super::with_stdout(|out| {
                if args.json {
                    let doc = serde_json::json!({
                        "files": names, "server_version": version, "masters": masters, "accepted": false,
                        "reasons": reasons, "ok": false,
                    });
                    writeln!(out, "{doc}")?;
                } else {
                    writeln!(out, "REFUSED  {set_name}  ({head})")?;
                    for l in &reasons {
                        writeln!(out, "  {l}")?;
                    }
                }
                Ok(EXIT_INVALID)
            });
        }
    };
    let load_s: f64 = cluster.nodes.iter().map(|n| n.load_time.as_secs_f64()).sum();
    let mut keys = 0u64;
    for i in 0..masters {
        match count_keys(&cluster, i) {
            Ok(n) => keys += n,
            Err(e) => return fail(e),
        }
    }
    let accepted = format!("ACCEPTED  {set_name}  ({head} loaded {keys} keys in {load_s:.1} s)");
    let code = super::with_stdout(|out| {
        if args.no_diff {
            if args.json {
                let doc = serde_json::json!({
                    "files": names, "server_version": version, "masters": masters, "accepted": true,
                    "keys": keys, "load_seconds": load_s, "ok": true,
                });
                writeln!(out, "{doc}")?;
            } else {
                writeln!(out, "{accepted}")?;
                writeln!(out, "(comparison skipped: --no-diff)")?;
            }
            return Ok(EXIT_OK);
        }
        let mut conn = cluster.connect_options(0);
        conn.timeout = Duration::from_secs(60);
        let mut live = match LiveSide::connect(&conn) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("rdbtool restore-test: {e}");
                return Ok(EXIT_CANNOT_RUN);
            }
        };
        live.name = format!("throwaway cluster ({masters} masters)");
        let mode = if args.json { Mode::Json } else { Mode::Text };
        let mut printer = Printer::new(out, mode);
        if args.json {
            printer.json.object("")?;
            printer.json.field("files", &names)?;
            printer.json.field("server_version", &version)?;
            printer.json.field("masters", &masters)?;
            printer.json.field("accepted", &true)?;
            printer.json.field("keys", &keys)?;
            printer.json.field("load_seconds", &load_s)?;
        } else {
            writeln!(printer.json.out(), "{accepted}")?;
        }
        let opts = Options {
            ttl_tolerance_ms: (args.ttl_tolerance * 1000.0).round() as i64,
            max_members: args.max_members,
            temp_dir: args.temp_dir.clone(),
            ..Options::default()
        };
        printer.begin(&set_name, &live.name)?;
        let read = AtomicU64::new(0);
        let res = super::progress::follow(total, "diff", &read, || {
            compare_set(&names, &maps, &mut live, &opts, &mut printer, &read)
        });
        conclude(&mut printer, res, &set_name, &live.name, args.json)
    });
    cluster.stop();
    code
}

/// The files as one set against the cluster, with a summary per file.
fn compare_set(
    names: &[String],
    maps: &[rdbtool::input::Input],
    live: &mut LiveSide,
    opts: &Options,
    out: &mut dyn rdbtool::diff::Output,
    read: &AtomicU64,
) -> Result<Summary, DiffError> {
    let pages: Vec<rdbtool::pass::Pages<'_>> = maps.iter().map(|m| rdbtool::pass::Pages::new(m, 1)).collect();
    let mut files = Vec::with_capacity(maps.len());
    for ((n, m), p) in names.iter().zip(maps).zip(&pages) {
        files.push(FileSide::open(n.clone(), m)?.with_pages(p).with_progress(read));
    }
    let mut set = FileSet::new(files);
    let mut counter = SlotCounter::new(out);
    let s = live::diff_file_live(&mut set, live, true, opts, &mut counter)?;
    Ok(Summary { files_a: set.summaries(&counter.per_slot), ..s })
}

/// The end of a comparison: the summary (and the closing of the JSON document), the exit status
/// (0 identical, 1 different, 2 the comparison could not run).
fn conclude(
    printer: &mut Printer<'_>,
    res: Result<Summary, DiffError>,
    a: &str,
    b: &str,
    json: bool,
) -> std::io::Result<u8> {
    if let Some(e) = printer.err.take() {
        return Err(e);
    }
    match res {
        Ok(s) => {
            printer.end(a, b, &s)?;
            if json {
                printer.json.field("ok", &s.identical())?;
                printer.json.finish()?;
            }
            Ok(if s.identical() { EXIT_OK } else { EXIT_INVALID })
        }
        Err(DiffError::Write(e)) => Err(e),
        Err(e) => {
            let _ = printer.json.finish();
            let _ = printer.json.out().flush();
            eprintln!("rdbtool restore-test: {e}");
            Ok(EXIT_CANNOT_RUN)
        }
    }
}

/// Keys in node `i` of the cluster (`DBSIZE`).
fn count_keys(cluster: &rdbtool::redis::throwaway_cluster::Cluster, i: usize) -> Result<u64, String> {
    let mut c = cluster.nodes[i].connect(Duration::from_secs(30))?;
    // Every database the node serves (a Valkey 9 node may serve several).
    match c.command(&[b"INFO", b"keyspace"]) {
        Ok(r) => match r.text() {
            Some(t) => Ok(rdbtool::redis::info::keyspace(&t).iter().map(|&(_, k)| k).sum()),
            None => Err(format!("cluster node {}: INFO keyspace answered {}", i + 1, r.describe())),
        },
        Err(e) => Err(format!("cluster node {}: INFO keyspace: {e}", i + 1)),
    }
}

/// Why a set whose files share slots is refused, with a key of the first shared slot from
/// each of its two files.
fn shared_slot_reasons(
    names: &[String],
    maps: &[rdbtool::input::Input],
    slots: &[(u16, usize, usize)],
    count: usize,
) -> Vec<String> {
    let mut out = vec![format!(
        "{count} slots hold keys in two files; a slot is served by one master: loaded as a cluster, the \
         other master deletes its keys of the slot when the nodes meet"
    )];
    for (n, &(slot, a, b)) in slots.iter().enumerate() {
        let mut line = format!("slot {slot}: {} and {}", names[a], names[b]);
        if n == 0 {
            let ex: Vec<String> = [a, b]
                .iter()
                .filter_map(|&f| {
                    let (_, k, _) = restore_test::first_key(&maps[f], &|_, k| rdbtool::slot::key_slot(k) == slot)?;
                    Some(format!("{} in {}", rdbtool::display::quoted(&k), names[f]))
                })
                .collect();
            if !ex.is_empty() {
                line.push_str(&format!(" (e.g. {})", ex.join(", ")));
            }
        }
        out.push(line);
    }
    if count > slots.len() {
        out.push(format!("... {} more slots", count - slots.len()));
    }
    out
}
