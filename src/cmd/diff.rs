//! `rdbtool diff A B`: compare two datasets (RDB files, live servers, AOF sets) logically.

use std::io::Write;
use std::path::PathBuf;

use rdbtool::diff::live::{self, LiveSide};
use rdbtool::diff::{self, DiffError, Difference, FileSet, FileSide, KeySelect, Options, Output, SlotCounter, Summary};
use rdbtool::display::quoted;
use rdbtool::input::Input;
use rdbtool::json::Stream;
use rdbtool::pass::Pages;
use rdbtool::restore_test::{self, Backup, Outcome, ServerOptions, Throwaway};
use std::sync::atomic::AtomicU64;

use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

/// Compare two datasets key by key: RDB files, sets of RDB files, live servers, or AOF sets.
///
/// A and B are each an RDB file (or an AOF file with an RDB preamble: its RDB part), a set of
/// RDB files (a cluster backup, one file per shard), a live server
/// `redis://[user[:password]@]host:port[/db]`, `rediss://...` or `unix:///path` (a cluster is
/// detected and every master read), or an AOF set (an appendonlydir, loaded into a throwaway
/// redis-server). The password comes from REDISCLI_AUTH or --password-file (a password in the
/// URL or with -a works but is visible to other users of the machine).
///
/// Which argument is which side: with two arguments, A then B. With more, the last one is B and
/// all the others are A (`diff shard-*.rdb redis://node:7000`). When B is given by --against
/// (repeatable: a set of files) or by -h/-p/-s (as redis-cli names a server), every argument is
/// A (`diff new-*.rdb --against old-*.rdb`). The files of a set are one dataset: a key in two
/// of them is an error (as a key twice in one file is: Redis refuses it), and the summary gives
/// each file's keys and the differences in the hash slots only that file holds.
///
/// Values are compared logically (lists in order, sets, hashes and zsets as sets, zset scores as
/// numbers, streams by entries, metadata and groups), expire times within --ttl-tolerance. A key
/// missing on a side read after its expire time is reported as "expired", not as missing. Live
/// servers are only read: SCAN, DUMP, PTTL, TYPE, EXISTS, INFO, CLUSTER SLOTS, SELECT, PING.
///
/// Output: one line per difference and a summary; --json one document, --jsonl one object per
/// difference and a last {"summary":...} line. Exit status: 0 identical, 1 differences,
/// 2 could not run.
#[derive(clap::Args)]
pub struct Args {
    /// A then B: each an RDB file, redis://... / rediss://..., or an AOF directory. More than
    /// two: the last is B, the others are A's files (a set). With --against or -h/-p/-s, all are A.
    #[arg(value_name = "A... B", required = true)]
    sides: Vec<String>,
    /// Side B (repeatable: a set of RDB files); every positional argument is then side A.
    #[arg(long, value_name = "B")]
    against: Vec<String>,
    /// Print one JSON document: {"a","b","differences":[...],"summary":{...},"identical"}.
    #[arg(long, conflicts_with = "jsonl")]
    json: bool,
    /// Print one JSON object per difference, then a {"summary":...} line.
    #[arg(long)]
    jsonl: bool,
    /// Expire times this many seconds apart are equal.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    ttl_tolerance: f64,
    /// Do not compare pending-entry delivery times (compared with --ttl-tolerance by default),
    /// nor, under --strict, consumer seen/active times.
    #[arg(long)]
    ignore_stream_times: bool,
    /// Also compare what no restore carries over (a faithful restore or AOF replay still
    /// differs there): stream consumers' seen/active times and consumer groups' entries_read.
    #[arg(long)]
    strict: bool,
    /// Compare about N keys, picked by a hash of (db, key) so that both sides pick the same.
    #[arg(long, value_name = "N", conflicts_with = "sample_rate")]
    sample: Option<u64>,
    /// Compare this fraction of the keys (0 < R <= 1), picked by a hash of (db, key).
    #[arg(long, value_name = "R")]
    sample_rate: Option<f64>,
    /// Only this database (repeatable).
    #[arg(long = "db", value_name = "N")]
    dbs: Vec<u64>,
    /// Only keys matching this Redis glob pattern (repeatable: any).
    #[arg(long = "key", value_name = "GLOB")]
    keys: Vec<std::ffi::OsString>,
    /// Only keys whose cluster hash slot is in A-B (or the one slot N; repeatable).
    #[arg(long = "slot", value_name = "A-B")]
    slots: Vec<String>,
    /// List at most N differing members per value.
    #[arg(long, value_name = "N", default_value_t = 10)]
    max_members: usize,
    /// Keys per pipelined batch on live servers.
    #[arg(long, value_name = "N", default_value_t = 512)]
    batch: usize,
    /// SCAN COUNT hint.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    scan_count: usize,
    /// MiB of key lists kept in memory before they are spilled to a temp dir.
    #[arg(long, value_name = "MIB", default_value_t = 16)]
    memory: usize,
    /// Where spilled key lists and throwaway servers go (default: the system temp dir).
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,
    /// redis-server binary for AOF sides.
    #[arg(long, value_name = "PATH", default_value = "redis-server")]
    redis_server: PathBuf,
    #[command(flatten)]
    live: super::live::LiveArgs,
}

/// An opened side.
enum Side {
    /// One RDB file, or several read as one dataset.
    Files(Vec<(String, Input)>),
    Live(LiveSide),
    /// An AOF set loaded into a throwaway server (kept alive while it is read).
    Loaded(#[allow(dead_code)] Throwaway, LiveSide),
}

impl Side {
    /// Bytes of a file side (0 for a server).
    fn file_len(&self) -> u64 {
        match self {
            Side::Files(f) => f.iter().map(|(_, d)| d.len() as u64).sum(),
            _ => 0,
        }
    }

    fn name(&self) -> String {
        match self {
            Side::Files(f) => diff::set_name(&f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()),
            Side::Live(l) | Side::Loaded(_, l) => l.name.clone(),
        }
    }
}

fn open_side(arg: Option<&str>, args: &Args) -> Result<Side, String> {
    let Some(arg) = arg.filter(|a| !live::is_url(a)) else {
        let opts = args.live.resolve(arg, "diff")?;
        return LiveSide::connect(&opts).map(Side::Live).map_err(|e| e.to_string());
    };
    let path = PathBuf::from(arg);
    match Backup::detect(&path)? {
        Backup::Rdb(p) => {
            let data = rdbtool::input::open(&p).map_err(|e| format!("{arg}: cannot read: {e}"))?;
            Ok(Side::Files(vec![(arg.to_owned(), data)]))
        }
        aof => {
            let so = ServerOptions {
                redis_server: args.redis_server.clone(),
                temp_dir: args.temp_dir.clone(),
                ..ServerOptions::default()
            };
            match restore_test::start(&aof, &so)? {
                Outcome::Accepted(t) => {
                    let mut opts = t.connect_options();
                    opts.timeout = args.live.resolve(None, "diff")?.timeout;
                    let mut l = LiveSide::connect(&opts).map_err(|e| e.to_string())?;
                    let program = rdbtool::restore_test::server_program(&so.redis_server);
                    l.name = format!("{arg} (loaded by {program} {})", t.version);
                    Ok(Side::Loaded(t, l))
                }
                Outcome::Refused(r) => Err(format!(
                    "{arg}: {} {} refused to load it ({}): {}",
                    rdbtool::restore_test::server_program(&so.redis_server),
                    r.version,
                    r.exit,
                    r.reasons.join(" / ")
                )),
            }
        }
    }
}

/// A side given as several arguments: RDB files only.
fn open_set(names: &[String], args: &Args) -> Result<Side, String> {
    if let [one] = names {
        return open_side(Some(one), args);
    }
    let mut files = Vec::with_capacity(names.len());
    for n in names {
        match open_side(Some(n), args)? {
            Side::Files(mut f) => files.append(&mut f),
            _ => {
                return Err(format!(
                    "{n}: a side of several arguments is a set of RDB files (a cluster backup), not a server or an AOF set"
                ));
            }
        }
    }
    Ok(Side::Files(files))
}

fn build_select(args: &Args) -> Result<KeySelect, String> {
    let filter = super::filter::FilterArgs {
        dbs: args.dbs.clone(),
        keys: args.keys.clone(),
        slots: args.slots.clone(),
        ..Default::default()
    }
    .build()?;
    if let Some(r) = args.sample_rate
        && !(r > 0.0 && r <= 1.0)
    {
        return Err(format!("--sample-rate {r}: must be in (0, 1]"));
    }
    Ok(KeySelect {
        dbs: filter.dbs,
        globs: filter.globs,
        glob_patterns: args.keys.iter().map(|k| k.as_encoded_bytes().to_vec()).collect(),
        slots: filter.slots,
        sample_rate: args.sample_rate,
    })
}

pub fn run(args: Args) -> u8 {
    let fail = |msg: String| {
        eprintln!("rdbtool diff: {msg}");
        EXIT_CANNOT_RUN
    };
    let select = match build_select(&args) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if !(args.ttl_tolerance >= 0.0 && args.ttl_tolerance.is_finite()) {
        return fail(format!("--ttl-tolerance {}: must be a number of seconds >= 0", args.ttl_tolerance));
    }
    if !args.against.is_empty() && args.live.names_server() {
        return fail("-h/-p/-s and --against both name side B: give one".into());
    }
    // With B named by --against or -h/-p/-s, every argument is A; else the last one is B.
    let b_named = !args.against.is_empty() || args.live.names_server();
    let (a_args, b_args): (&[String], &[String]) = if b_named {
        (&args.sides, &args.against)
    } else if args.sides.len() < 2 {
        return fail("B is missing: give a file, a URL, --against, or a server with -h/-p/-s".into());
    } else {
        let (a, b) = args.sides.split_at(args.sides.len() - 1);
        (a, b)
    };
    let mut opts = Options {
        ttl_tolerance_ms: (args.ttl_tolerance * 1000.0).round() as i64,
        stream_times: !args.ignore_stream_times,
        strict: args.strict,
        max_members: args.max_members,
        select,
        memory_budget: args.memory.max(1) << 20,
        temp_dir: args.temp_dir.clone(),
        batch: args.batch.max(1),
        scan_count: args.scan_count.max(1),
    };
    let mut a = match open_set(a_args, &args) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let b = if b_args.is_empty() { open_side(None, &args) } else { open_set(b_args, &args) };
    let mut b = match b {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if let Some(n) = args.sample {
        match sample_rate_for(n, &a, &opts.select) {
            Ok(r) => opts.select.sample_rate = Some(r),
            Err(e) => return fail(e.to_string()),
        }
    }
    let mode = if args.json {
        Mode::Json
    } else if args.jsonl {
        Mode::Jsonl
    } else {
        Mode::Text
    };
    let (na, nb) = (a.name(), b.name());
    super::with_stdout(|out| {
        let mut printer = Printer::new(out, mode);
        printer.begin(&na, &nb)?;
        // A bar over the files' bytes as they are read (a live side has no size to show).
        let total = a.file_len() + b.file_len();
        let read = AtomicU64::new(0);
        let res =
            super::progress::follow(total, "diff", &read, || run_sides(&mut a, &mut b, &opts, &mut printer, &read));
        if let Some(e) = printer.err.take() {
            return Err(e);
        }
        match res {
            Ok((summary, warnings)) => {
                for w in warnings {
                    eprintln!("rdbtool diff: warning: {w}");
                }
                printer.end(&na, &nb, &summary)?;
                Ok(if summary.identical() { EXIT_OK } else { EXIT_INVALID })
            }
            Err(DiffError::Write(e)) => Err(e),
            Err(e) => {
                let _ = printer.json.finish();
                out_flush(printer.json.out());
                eprintln!("rdbtool diff: {e}");
                Ok(EXIT_CANNOT_RUN)
            }
        }
    })
}

fn out_flush(out: &mut dyn Write) {
    let _ = out.flush();
}

/// `--sample N` as a rate: N over side A's selected keys.
fn sample_rate_for(n: u64, a: &Side, select: &KeySelect) -> Result<f64, DiffError> {
    let total = match a {
        Side::Files(f) => {
            let mut n = 0;
            for (name, data) in f {
                let pages = Pages::new(data, 1);
                n += FileSide::open(name.clone(), data)?.with_pages(&pages).count_keys(select)?;
            }
            n
        }
        Side::Live(l) | Side::Loaded(_, l) => {
            l.key_counts().iter().filter(|(db, _)| select.wants_db(*db)).map(|(_, k)| *k).sum()
        }
    };
    Ok(if total == 0 { 1.0 } else { (n as f64 / total as f64).clamp(f64::MIN_POSITIVE, 1.0) })
}

/// The pages of each file of a side (one consumer each).
fn pages_of(f: &[(String, Input)]) -> Vec<Pages<'_>> {
    f.iter().map(|(_, d)| Pages::new(d, 1)).collect()
}

/// The files of a side as one set, each giving back its pages and counting its bytes in `read`.
fn file_set<'a>(
    f: &'a [(String, Input)],
    pages: &'a [Pages<'a>],
    read: &'a AtomicU64,
) -> Result<FileSet<'a>, DiffError> {
    let mut sides = Vec::with_capacity(f.len());
    for ((name, data), p) in f.iter().zip(pages) {
        sides.push(FileSide::open(name.clone(), data)?.with_pages(p).with_progress(read));
    }
    Ok(FileSet::new(sides))
}

/// Runs the comparison the two sides call for; returns the summary and warnings.
fn run_sides(
    a: &mut Side,
    b: &mut Side,
    opts: &Options,
    out: &mut dyn Output,
    read: &AtomicU64,
) -> Result<(Summary, Vec<String>), DiffError> {
    let mut warnings = Vec::new();
    let mut counter = SlotCounter::new(out);
    let out = &mut counter;
    let (summary, sa, sb) = match (a, b) {
        (Side::Files(fa), Side::Files(fb)) => {
            let (pa, pb) = (pages_of(fa), pages_of(fb));
            let mut sa = file_set(fa, &pa, read)?;
            let mut sb = file_set(fb, &pb, read)?;
            let s = diff::diff_files(&mut sa, &mut sb, opts, out)?;
            let per = (set_summary(&sa, &out.per_slot, &mut warnings), set_summary(&sb, &out.per_slot, &mut warnings));
            (s, per.0, per.1)
        }
        (Side::Files(f), Side::Live(l) | Side::Loaded(_, l)) => {
            let pages = pages_of(f);
            let mut set = file_set(f, &pages, read)?;
            let s = live::diff_file_live(&mut set, l, true, opts, out)?;
            (s, set_summary(&set, &out.per_slot, &mut warnings), Vec::new())
        }
        (Side::Live(l) | Side::Loaded(_, l), Side::Files(f)) => {
            let pages = pages_of(f);
            let mut set = file_set(f, &pages, read)?;
            let s = live::diff_file_live(&mut set, l, false, opts, out)?;
            (s, Vec::new(), set_summary(&set, &out.per_slot, &mut warnings))
        }
        (Side::Live(x) | Side::Loaded(_, x), Side::Live(y) | Side::Loaded(_, y)) => {
            (live::diff_live_live(x, y, opts, out)?, Vec::new(), Vec::new())
        }
    };
    Ok((Summary { files_a: sa, files_b: sb, ..summary }, warnings))
}

/// The per-file summary of a set of several files (none for one file), after its warnings.
fn set_summary(set: &FileSet<'_>, per_slot: &[u64], w: &mut Vec<String>) -> Vec<diff::FileSummary> {
    for f in &set.files {
        tail_warnings(f, w);
    }
    if set.files.len() > 1 { set.summaries(per_slot) } else { Vec::new() }
}

fn tail_warnings(f: &FileSide<'_>, w: &mut Vec<String>) {
    if f.trailing_bytes > 0 {
        w.push(format!(
            "{}: only its RDB part was compared ({} bytes follow it: an AOF tail?)",
            f.name, f.trailing_bytes
        ));
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    Text,
    Json,
    Jsonl,
}

/// Writes differences as they come; keeps the first write error (the engine stops on it). In
/// JSON, the document goes through `json::Stream`: `{"a","b","differences":[...],"summary",
/// "identical"}`, as the whole output of `diff` or as the `diff` field of restore-test's document.
pub struct Printer<'w> {
    pub json: Stream<'w>,
    pub mode: Mode,
    pub n: u64,
    pub err: Option<std::io::Error>,
}

impl<'w> Printer<'w> {
    pub fn new(out: &'w mut dyn Write, mode: Mode) -> Printer<'w> {
        Printer { json: Stream::new(out), mode, n: 0, err: None }
    }

    /// Opens the document (or, inside restore-test's, its `diff` field).
    pub fn begin(&mut self, a: &str, b: &str) -> std::io::Result<()> {
        if self.mode == Mode::Json {
            self.json.object("diff")?;
            self.json.field("a", a)?;
            self.json.field("b", b)?;
            self.json.array("differences")?;
        }
        Ok(())
    }

    pub fn end(&mut self, a: &str, b: &str, s: &Summary) -> std::io::Result<()> {
        match self.mode {
            Mode::Json => {
                self.json.close()?;
                self.json.field("summary", s)?;
                self.json.field("identical", &s.identical())?;
                self.json.close()
            }
            Mode::Jsonl => {
                let line = serde_json::json!({ "summary": s, "identical": s.identical(), "a": a, "b": b });
                writeln!(self.json.out(), "{line}")
            }
            Mode::Text => {
                let out = self.json.out();
                writeln!(out, "A: {a} ({} keys)", s.keys_a)?;
                file_lines(out, &s.files_a)?;
                writeln!(out, "B: {b} ({} keys)", s.keys_b)?;
                file_lines(out, &s.files_b)?;
                if let Some(r) = s.sample_rate {
                    writeln!(out, "sampled: {:.4}% of the keys (by key hash)", r * 100.0)?;
                }
                writeln!(
                    out,
                    "same {}, only in A {}, only in B {}, different value {}, different type {}, different TTL {}, expired meanwhile {}",
                    s.same, s.only_in_a, s.only_in_b, s.different_value, s.different_type, s.different_ttl, s.expired
                )?;
                writeln!(out, "{}", if s.identical() { "IDENTICAL" } else { "DIFFERENT" })
            }
        }
    }

    fn write_one(&mut self, d: &Difference) -> std::io::Result<()> {
        match self.mode {
            Mode::Json => self.json.item_on_line(d)?,
            Mode::Jsonl => {
                let out = self.json.out();
                serde_json::to_writer(&mut *out, d)?;
                out.write_all(b"\n")?;
            }
            Mode::Text => writeln!(self.json.out(), "{}", text_line(d))?,
        }
        self.n += 1;
        Ok(())
    }
}

impl Output for Printer<'_> {
    fn difference(&mut self, d: &Difference) -> std::io::Result<()> {
        let r = self.write_one(d);
        if let Err(e) = &r {
            self.err.get_or_insert_with(|| std::io::Error::new(e.kind(), e.to_string()));
        }
        r
    }
}

/// One line per file of a set: its keys and the differences in the slots only it holds.
fn file_lines(out: &mut dyn Write, files: &[diff::FileSummary]) -> std::io::Result<()> {
    for f in files {
        let s = if f.differences == 1 { "" } else { "s" };
        writeln!(out, "  {}: {} keys, {} difference{s} in its slots", f.file, f.keys, f.differences)?;
    }
    Ok(())
}

fn ttl(t: Option<i64>) -> String {
    t.map_or_else(|| "none".to_owned(), |t| t.to_string())
}

pub fn text_line(d: &Difference) -> String {
    let head = format!("{:<10} db {} {}", d.kind.as_str(), d.db, quoted(&d.key));
    let kind = |s: &Option<diff::SideInfo>| s.map_or("-", |s| s.kind.as_str());
    match d.kind {
        diff::DiffKind::Type => format!("{head}: {} in A, {} in B", kind(&d.a), kind(&d.b)),
        diff::DiffKind::Ttl => format!(
            "{head}: expire at {} ms in A, {} in B",
            ttl(d.a.and_then(|s| s.expire_at_ms)),
            ttl(d.b.and_then(|s| s.expire_at_ms))
        ),
        diff::DiffKind::Value => {
            let mut detail = d.detail.as_ref().map(|j| j.to_string()).unwrap_or_default();
            if detail.len() > 300 {
                let mut cut = 300;
                while !detail.is_char_boundary(cut) {
                    cut -= 1;
                }
                detail.truncate(cut);
                detail.push_str("...");
            }
            format!("{head} ({}): {detail}", kind(&d.a))
        }
        diff::DiffKind::Expired => {
            let t = d.a.or(d.b).and_then(|s| s.expire_at_ms);
            format!("{head} ({}): expired at {} ms, gone from the other side", kind(&d.a.or(d.b)), ttl(t))
        }
        diff::DiffKind::OnlyInA => format!("{head} ({})", kind(&d.a)),
        diff::DiffKind::OnlyInB => format!("{head} ({})", kind(&d.b)),
    }
}
