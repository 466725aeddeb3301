//! `rdbtool aof timeline DIR`, `rdbtool aof find DIR PATTERN...`, `rdbtool aof cut DIR --to TIME
//! -o NEWDIR` (or `--before-command N`, `--before PATTERN`) and `rdbtool aof to-rdb DIR [--to
//! TIME] -o FILE`: what an AOF set covers in time, where a command is in it, a copy of it that
//! stops at a point in time or right before a command, and an RDB of its dataset (made by a
//! throwaway redis-server).

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use rdbtool::aof::cut::{CutError, Stop};
use rdbtool::aof::find::{self, Pattern};
use rdbtool::aof::format_utc;
use rdbtool::aof::set::{AofSet, OpenError, PartReport, Role, Stamp, manifest_failure};
use rdbtool::display::quoted;
use rdbtool::output::AtomicFile;
use rdbtool::redis::server::{self, Dataset, Exposure, Server, ServerConfig, ServerDir, Start};
use rdbtool::time::cli_time_s;
use rdbtool::verify::{self, Report};

use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

/// Inspect and cut AOF sets (appendonlydir/ of Redis >= 7.0, or an old single-file AOF).
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: AofCommand,
}

#[derive(clap::Subcommand)]
enum AofCommand {
    Timeline(TimelineArgs),
    Find(FindArgs),
    Cut(CutArgs),
    ToRdb(ToRdbArgs),
}

/// What each file of the set holds, and the time span a point-in-time restore can reach.
///
/// Per file: type, size, commands, first and last #TS annotation, commands per db, MULTI
/// blocks; for the set: the time span a point-in-time restore can reach (from the base file's
/// time to the last #TS). The base RDB is read, not validated (that is `verify`'s job).
///
/// Exit status: 0 the set reads to its end, 1 it is damaged (the problems are listed), 2 could
/// not run.
#[derive(clap::Args)]
struct TimelineArgs {
    /// An AOF directory (holding a *.manifest), a manifest, or a single AOF file.
    path: PathBuf,
    /// Print the report as JSON (the same document as `verify --json` gives for one set).
    #[arg(long)]
    json: bool,
}

/// Find commands by name and key glob (`FLUSHALL`, `DEL user:*`): where the accident is.
///
/// For each match: its
/// position in the set (what `cut --before-command` takes), file, offset, line, db, and the last
/// #TS before it. The glob is matched on the command's keys (the first argument; every argument
/// of DEL / UNLINK; every key of MSET).
///
/// Exit status: 0 found, 1 nothing found (or the set is damaged before the end: the matches
/// before the damage are printed), 2 could not run.
#[derive(clap::Args)]
struct FindArgs {
    /// An AOF directory (holding a *.manifest), a manifest, or a single AOF file.
    path: PathBuf,
    /// `NAME` or `NAME KEYGLOB` (quoted); several patterns: any of them.
    #[arg(required = true, value_name = "PATTERN")]
    patterns: Vec<String>,
    /// Only commands logged at or after TIME (their last #TS is not before it).
    #[arg(long, value_name = "TIME", value_parser = cli_time_s)]
    from: Option<i64>,
    /// At most N matches.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    limit: usize,
    /// Print the matches as JSON.
    #[arg(long)]
    json: bool,
}

/// Point-in-time restore: a new AOF directory up to a time or right before a command.
///
/// Writes a new, complete AOF directory (manifest + files) holding the
/// base and every command up to the first #TS annotation after TIME (all commands logged in
/// seconds up to TIME), never splitting a MULTI/EXEC block. With --before-command N (a position
/// printed by `aof find`) or --before PATTERN (the first match, after --from TIME), it stops
/// right before that command (before its MULTI when it is in a transaction): the way to undo an
/// accident inside a second. A --to whose last second holds a FLUSHALL, FLUSHDB or mass DEL
/// warns and prints the --before-command that would leave it out. History files are left out. The input
/// is never modified: files that need no change are copied (or hard-linked with --link), the file
/// holding the cut is written short; NEWDIR is built under a temporary name beside it and renamed
/// when complete. Load it with `redis-server --appendonly yes --appenddirname NEWDIR` (and
/// `--dir` its parent).
///
/// Refuses when TIME is before the base file's time, when the log has no #TS annotations, or
/// when the set is damaged before the cut (a truncated tail of the last file is left out).
/// Exit status: 0 written, 1 refused (why on stderr), 2 could not run (NEWDIR exists, I/O).
#[derive(clap::Args)]
struct CutArgs {
    /// An AOF directory (holding a *.manifest), a manifest, or a single AOF file.
    path: PathBuf,
    /// The point in time: unix seconds, RFC 3339 (2026-11-21T06:13:00Z, 2026-11-21T08:13:00+02:00),
    /// or 'YYYY-MM-DD HH:MM:SS' in --tz (default UTC).
    #[arg(long, value_name = "TIME", value_parser = cli_time_s, required_unless_present_any = ["before_command", "before"], conflicts_with_all = ["before_command", "before"])]
    to: Option<i64>,
    /// Stop right before the command at position N of the set (see `aof find`).
    #[arg(long, value_name = "N", conflicts_with = "before")]
    before_command: Option<u64>,
    /// Stop right before the first command matching PATTERN (as for `aof find`).
    #[arg(long, value_name = "PATTERN")]
    before: Option<String>,
    /// With --before: the first match logged at or after TIME.
    #[arg(long, value_name = "TIME", value_parser = cli_time_s, requires = "before")]
    from: Option<i64>,
    /// The new AOF directory (must not exist).
    #[arg(short, long, value_name = "NEWDIR")]
    output: PathBuf,
    /// Hard-link the files that need no change instead of copying them.
    #[arg(long)]
    link: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// An RDB file of the set's dataset (at TIME with --to), made by a throwaway redis-server.
///
/// The set (cut at TIME)
/// is copied to a private temporary directory, loaded by a throwaway redis-server (a unix socket
/// in that directory, a random password, replication / CONFIG / ACL / MODULE / DEBUG and other
/// commands removed, stopped by its PID on every exit path) which SAVEs it; the RDB is
/// verified, then written to FILE
/// through a temporary name. Keys whose TTL has passed are dropped by that server, as by any
/// server restoring the set. The server must be able to load the set (Redis >= 7.0 for an
/// appendonlydir; a Valkey set wants valkey-server).
///
/// Exit status: 0 written, 1 the set was refused (by `cut`, or by the server: its log is shown),
/// 2 could not run (no redis-server, FILE exists, I/O).
#[derive(clap::Args)]
struct ToRdbArgs {
    /// An AOF directory (holding a *.manifest), a manifest, or a single AOF file.
    path: PathBuf,
    /// The point in time (as for `cut`); default: everything the set holds.
    #[arg(long, value_name = "TIME", value_parser = cli_time_s)]
    to: Option<i64>,
    /// The RDB file to write.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
    /// The server binary to load the set with.
    #[arg(long, value_name = "PATH", default_value = "redis-server")]
    redis_server: PathBuf,
}

pub fn run(args: Args) -> u8 {
    match args.command {
        AofCommand::Timeline(a) => timeline(a),
        AofCommand::Find(a) => find_commands(a),
        AofCommand::Cut(a) => cut(a),
        AofCommand::ToRdb(a) => to_rdb(a),
    }
}

fn timeline(args: TimelineArgs) -> u8 {
    let name = args.path.display().to_string();
    let rep = match AofSet::open(&args.path) {
        Ok(set) => set.check(&name, None),
        Err(OpenError::Manifest { path, data_len, error }) => manifest_failure(&name, &path, data_len, &error),
        Err(e) => {
            eprintln!("rdbtool aof timeline: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let code = if rep.ok { EXIT_OK } else { EXIT_INVALID };
    super::with_stdout(|out| {
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&rep).unwrap_or_default())?;
        } else {
            print_timeline(out, &rep)?;
        }
        Ok(code)
    })
}

fn stamp(s: Option<Stamp>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
}

fn print_part(out: &mut dyn Write, f: &PartReport) -> io::Result<()> {
    let seq = f.seq.map(|s| format!(" seq {s}")).unwrap_or_default();
    let offsets = match (f.start_offset, f.end_offset) {
        (Some(s), Some(e)) => format!(", repl offsets {s}..{e}"),
        (Some(s), None) => format!(", repl offset from {s}"),
        _ => String::new(),
    };
    let name = String::from_utf8_lossy(&f.name);
    if !f.exists {
        let note = if f.role == Role::History { "gone (not needed to load)" } else { "MISSING" };
        return writeln!(out, "  {name}  {}{seq}: {note}", f.role.as_str());
    }
    let bytes = f.bytes.map(|b| format!("{b} bytes")).unwrap_or_default();
    if f.role == Role::History {
        return writeln!(out, "  {name}  history{seq}, {bytes} (not loaded)");
    }
    let format = f.format.unwrap_or("not read");
    writeln!(out, "  {name}  {}{seq}, {format}, {bytes}{offsets}", f.role.as_str())?;
    if let Some(r) = &f.rdb {
        let version =
            if r.magic == "VALKEY" { format!("VALKEY{:03}", r.version) } else { format!("RDB {}", r.version) };
        let ver = r.redis_ver.as_deref().map(|v| format!(", server {v}")).unwrap_or_default();
        writeln!(out, "      {version}{ver}: {} keys, saved {}", r.keys, stamp(r.ctime))?;
    }
    if f.resp_offset.is_some() {
        let dbs: Vec<String> = f.dbs.iter().map(|d| format!("db{} {}", d.db, d.commands)).collect();
        let dbs = if dbs.is_empty() { String::new() } else { format!(" ({})", dbs.join(", ")) };
        writeln!(
            out,
            "      {} commands{dbs}, {} MULTI block{}, {} annotation{}",
            f.commands,
            f.multi_blocks,
            if f.multi_blocks == 1 { "" } else { "s" },
            f.annotations,
            if f.annotations == 1 { "" } else { "s" }
        )?;
        if f.first_ts.is_some() {
            writeln!(out, "      first #TS {}, last #TS {}", stamp(f.first_ts), stamp(f.last_ts))?;
        }
    }
    if let Some(t) = &f.truncated {
        writeln!(
            out,
            "      TRUNCATED: complete up to offset {} (line {}), {} bytes after it",
            t.ok_up_to, t.ok_up_to_line, t.lost_bytes
        )?;
    }
    Ok(())
}

fn print_timeline(out: &mut dyn Write, rep: &Report) -> io::Result<()> {
    let Some(aof) = &rep.aof else { return Ok(()) };
    let what = match &aof.manifest {
        Some(m) => format!("AOF set, manifest {m}"),
        None => "single-file AOF".to_owned(),
    };
    writeln!(out, "{}  ({what}, {} bytes loaded)", rep.file, rep.bytes)?;
    for f in &aof.files {
        print_part(out, f)?;
    }
    let dbs: Vec<String> = aof.dbs.iter().map(|d| format!("db{} {}", d.db, d.commands)).collect();
    writeln!(
        out,
        "set: {} commands ({}), {} MULTI blocks",
        aof.commands,
        if dbs.is_empty() { "none".to_owned() } else { dbs.join(", ") },
        aof.multi_blocks
    )?;
    match aof.restore_range {
        Some(r) => {
            let from = if aof.base_time.is_some() { "the base" } else { "the first #TS" };
            writeln!(
                out,
                "restore range: {} ({}, {from}) .. {} ({}, the last #TS)",
                format_utc(r.from.unix),
                r.from.unix,
                format_utc(r.to.unix),
                r.to.unix
            )?;
        }
        None => writeln!(out, "restore range: none (no base time and no #TS annotations)")?,
    }
    for e in &rep.errors {
        writeln!(out, "error: {}", super::verify::error_place(e))?;
    }
    if rep.errors_not_listed > 0 {
        writeln!(out, "error: ... and {} more", rep.errors_not_listed)?;
    }
    for w in &rep.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(())
}

fn find_commands(args: FindArgs) -> u8 {
    let patterns = match args.patterns.iter().map(|p| Pattern::parse(p)).collect::<Result<Vec<_>, _>>() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rdbtool aof find: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let set = match AofSet::open(&args.path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rdbtool aof find: {e}");
            return if matches!(e, OpenError::Manifest { .. }) { EXIT_INVALID } else { EXIT_CANNOT_RUN };
        }
    };
    let (found, error) = find::find(&set, &patterns, args.from, args.limit);
    let error = error.map(|e| {
        let name = set.parts[e.part].name_lossy();
        format!("{name} offset {}: {} [{}]", e.error.offset, e.error.message, e.error.kind.as_str())
    });
    let code = if found.is_empty() || error.is_some() { EXIT_INVALID } else { EXIT_OK };
    super::with_stdout(|out| {
        if args.json {
            let doc = serde_json::json!({ "matches": found, "error": error });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
            return Ok(code);
        }
        for f in &found {
            let shown: Vec<String> = f.command.iter().map(|a| quoted(a)).collect();
            let more = if f.args > f.command.len() { format!(" ... ({} arguments)", f.args) } else { String::new() };
            let multi = f.in_multi.map(|m| format!(", in the MULTI at offset {m}")).unwrap_or_default();
            writeln!(
                out,
                "command {}  {} offset {} (line {})  db {}  #TS {}{multi}\n    {}{more}",
                f.position,
                quoted(&f.file),
                f.offset,
                f.line,
                f.db,
                stamp(f.ts),
                shown.join(" ")
            )?;
        }
        if found.is_empty() {
            writeln!(out, "no command matches")?;
        } else if found.len() >= args.limit {
            writeln!(out, "(stopped at --limit {})", args.limit)?;
        }
        if let Some(e) = &error {
            writeln!(out, "error: the set is damaged: {e}; commands after it were not searched")?;
        }
        Ok(code)
    })
}

fn cut(args: CutArgs) -> u8 {
    let set = match AofSet::open(&args.path) {
        Ok(s) => s,
        Err(e @ OpenError::Manifest { .. }) => {
            eprintln!("rdbtool aof cut: {e}");
            return EXIT_INVALID;
        }
        Err(e) => {
            eprintln!("rdbtool aof cut: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let stop = match (args.to, args.before_command, &args.before) {
        (Some(t), _, _) => Stop::Time(t),
        (_, Some(n), _) => Stop::BeforeCommand(n),
        (_, _, Some(p)) => {
            let pattern = match Pattern::parse(p) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("rdbtool aof cut: --before {e}");
                    return EXIT_CANNOT_RUN;
                }
            };
            match find::find(&set, &[pattern], args.from, 1) {
                (found, _) if !found.is_empty() => {
                    let f = &found[0];
                    eprintln!(
                        "rdbtool aof cut: stopping before command {} ({} offset {}, line {}, db {})",
                        f.position,
                        quoted(&f.file),
                        f.offset,
                        f.line,
                        f.db
                    );
                    Stop::BeforeCommand(f.position)
                }
                (_, Some(e)) => {
                    eprintln!(
                        "rdbtool aof cut: {}: no {p:?} before the set's damage: {}",
                        args.path.display(),
                        e.error
                    );
                    return EXIT_INVALID;
                }
                _ => {
                    eprintln!("rdbtool aof cut: {}: no command matches {p:?}", args.path.display());
                    return EXIT_INVALID;
                }
            }
        }
        _ => unreachable!("clap requires one of --to, --before-command, --before"),
    };
    // The new directory may not be, or be inside, the input set.
    if let Err(e) = rdbtool::output::check_not_input(&args.output, &[&args.path]) {
        eprintln!("rdbtool aof cut: {}: {e}", args.output.display());
        return EXIT_CANNOT_RUN;
    }
    let sum = match set.cut_at(stop, &args.output, args.link) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rdbtool aof cut: {}: {e}", args.path.display());
            return if matches!(e, CutError::Refused(_)) { EXIT_INVALID } else { EXIT_CANNOT_RUN };
        }
    };
    for w in &sum.warnings {
        eprintln!("rdbtool aof cut: warning: {w}");
    }
    super::with_stdout(|out| {
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&sum).unwrap_or_default())?;
            return Ok(EXIT_OK);
        }
        match sum.before_command {
            Some(n) => writeln!(out, "cut {} before command {n} -> {}", args.path.display(), sum.output)?,
            None => writeln!(out, "cut {} at {} -> {}", args.path.display(), sum.to, sum.output)?,
        }
        for f in &sum.files {
            let sizes = match f.action {
                "rewritten" => format!("{} -> {} bytes", f.bytes_in, f.bytes_out),
                "dropped" => format!("{} bytes", f.bytes_in),
                _ => format!("{} bytes", f.bytes_out),
            };
            writeln!(out, "  {}  {}  {}  {sizes}", quoted(&f.name), f.role.as_str(), f.action)?;
        }
        writeln!(out, "  manifest {}", sum.manifest)?;
        if let Some(b) = sum.base_time {
            writeln!(out, "base time {b}")?;
        }
        writeln!(
            out,
            "kept {} logged commands; last kept #TS {}; first dropped #TS {}",
            sum.commands_kept,
            stamp(sum.last_kept_ts),
            stamp(sum.first_dropped_ts)
        )?;
        let dir_name = args.output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let appendfilename = sum.manifest.strip_suffix(".manifest").unwrap_or(&sum.manifest);
        writeln!(
            out,
            "load with: redis-server --dir <parent of {dir_name}> --appendonly yes --appenddirname {dir_name} --appendfilename {appendfilename}"
        )?;
        Ok(EXIT_OK)
    })
}

fn to_rdb(args: ToRdbArgs) -> u8 {
    let fail = |code: u8, msg: String| {
        eprintln!("rdbtool aof to-rdb: {msg}");
        code
    };
    let Some(bin) = server::find_binary(&args.redis_server) else {
        return fail(
            EXIT_CANNOT_RUN,
            format!(
                "{} not found: to-rdb needs a redis-server to load the set (apt-get install redis-server, or --redis-server PATH)",
                args.redis_server.display()
            ),
        );
    };
    let set = match AofSet::open(&args.path) {
        Ok(s) => s,
        Err(e @ OpenError::Manifest { .. }) => return fail(EXIT_INVALID, e.to_string()),
        Err(e) => return fail(EXIT_CANNOT_RUN, e.to_string()),
    };
    if let Some(e) = set.refused_command() {
        return fail(
            EXIT_INVALID,
            format!("{}: not replayed: {}", args.path.display(), super::verify::error_place(&e)),
        );
    }
    let out = match AtomicFile::create(&args.output, &[&args.path], args.force) {
        Ok(o) => o,
        Err(e) => return fail(EXIT_CANNOT_RUN, format!("{}: {e}", args.output.display())),
    };
    let version = match server::server_version(&bin) {
        Ok(v) => v,
        Err(e) => return fail(EXIT_CANNOT_RUN, e),
    };
    let tmp = match ServerDir::create(None, "rdbtool-to-rdb-") {
        Ok(t) => t,
        Err(e) => return fail(EXIT_CANNOT_RUN, e),
    };
    // A manifest that lists no base or incr file (only history) loads as an empty dataset; a
    // copy of it would be an empty manifest, which Redis refuses: start empty instead.
    if set.parts.is_empty() && set.missing.is_empty() {
        eprintln!(
            "rdbtool aof to-rdb: warning: the set loads no file (its manifest lists none to load): the RDB is empty"
        );
        let cfg = ServerConfig { bin, version, dataset: Dataset::Rdb, load_timeout: Duration::from_secs(3600) };
        return save_rdb(tmp, &cfg, out, &args);
    }
    // Anything else is loaded as an append-only directory: multipart sets came with 7.0.
    if server::major_minor(&version) < (7, 0) {
        return fail(
            EXIT_CANNOT_RUN,
            format!(
                "{} is redis-server {version}: aof to-rdb loads the set as an append-only directory, which needs 7.0 or later (--redis-server)",
                bin.display()
            ),
        );
    }
    // Copies, never links: the server may append to the last incr file.
    let aofdir = tmp.path().join("appendonlydir");
    let copied = match args.to {
        Some(t) => set.cut(t, &aofdir, false),
        None => set.copy_to(&aofdir, false),
    };
    let sum = match copied {
        Ok(s) => s,
        Err(e @ CutError::Refused(_)) => return fail(EXIT_INVALID, format!("{}: {e}", args.path.display())),
        Err(e) => return fail(EXIT_CANNOT_RUN, e.to_string()),
    };
    if let Err(e) = server::make_private(&aofdir) {
        return fail(EXIT_CANNOT_RUN, format!("{}: {e}", aofdir.display()));
    }
    for w in &sum.warnings {
        eprintln!("rdbtool aof to-rdb: warning: {w}");
    }
    let appendfilename = sum.manifest.strip_suffix(".manifest").unwrap_or(&sum.manifest).to_owned();
    let cfg = ServerConfig {
        bin,
        version,
        dataset: Dataset::Aof { appendfilename },
        load_timeout: Duration::from_secs(3600),
    };
    save_rdb(tmp, &cfg, out, &args)
}

/// Starts the throwaway server in `tmp` as `cfg` says, has it save, verifies the RDB and writes
/// it to `out`.
fn save_rdb(tmp: ServerDir, cfg: &ServerConfig, mut out: AtomicFile, args: &ToRdbArgs) -> u8 {
    let fail = |code: u8, msg: String| {
        eprintln!("rdbtool aof to-rdb: {msg}");
        code
    };
    // Loading a big set takes a while: a bar (on a terminal) follows the server's progress,
    // mapped onto the bytes of the set.
    let total = dir_bytes(tmp.path());
    let fed = std::sync::atomic::AtomicU64::new(0);
    let started = super::progress::follow(total, "aof to-rdb: loading", &fed, || {
        Server::start_watched(tmp, cfg, &Exposure::default(), &mut |done, of| {
            let at = (done as u128 * total as u128 / of.max(1) as u128) as u64;
            fed.store(at, std::sync::atomic::Ordering::Relaxed);
        })
    });
    let mut srv = match started {
        Ok(Start::Up(s)) => s,
        Ok(Start::Exited { status, log }) => {
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(12)..].join("\n");
            return fail(
                EXIT_INVALID,
                format!(
                    "{}: the server exited ({status}) without loading the set; its log ends with:\n{tail}",
                    args.path.display()
                ),
            );
        }
        Err(e) => return fail(EXIT_INVALID, format!("{}: {e}", args.path.display())),
    };
    let dump = match srv.save(Duration::from_secs(3600)) {
        Ok(p) => p,
        Err(e) => return fail(EXIT_CANNOT_RUN, e),
    };
    srv.kill();
    let data = match rdbtool::input::open(&dump) {
        Ok(d) => d,
        Err(e) => return fail(EXIT_CANNOT_RUN, format!("{}: {e}", dump.display())),
    };
    let rep = verify::verify_bytes("dump.rdb", &data, &verify::Options::default());
    if !rep.ok {
        return fail(EXIT_CANNOT_RUN, format!("the server's RDB does not verify: {:?}", rep.errors.first()));
    }
    if let Err(e) = out.write_all(&data).and_then(|()| out.sync()).and_then(|()| out.commit()) {
        return fail(EXIT_CANNOT_RUN, format!("{}: {e}", args.output.display()));
    }
    let at = args.to.map(|t| format!(" at {}", Stamp::new(t))).unwrap_or_default();
    super::with_stdout(|o| {
        writeln!(
            o,
            "wrote {} ({} bytes, {} keys){at} from {}",
            args.output.display(),
            data.len(),
            rep.keys,
            args.path.display()
        )?;
        Ok(EXIT_OK)
    })
}

/// The bytes of the files under `dir` (the AOF set copied there).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}
