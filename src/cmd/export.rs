//! `rdbtool export FILE`: the keys of a backup as JSON Lines, JSON or Redis protocol commands.

use std::path::PathBuf;

use super::filter::FilterArgs;
use rdbtool::export::resp::{OnBusyKey, RespOptions};
use rdbtool::export::{self, ExportError, Options, OutputFormat};
use rdbtool::output::AtomicFile;
use rdbtool::pass::Pages;

use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

/// Export the keys of an RDB file as JSON Lines, JSON, or Redis commands.
///
/// Formats: jsonl (default) writes one object per key and line:
/// {"db":0,"key":K,"type":T,"expire_at_ms":N|null,"value":V}; json writes one array of the same
/// objects; resp writes commands that rebuild the data (pipe them to `redis-cli --pipe`), and
/// with --restore, RESTORE commands whose payloads are the file's own value bytes. Byte strings
/// are JSON strings when they are UTF-8, otherwise {"base64":"..."}.
///
/// RESP streams are rebuilt with XADD, XSETID, XGROUP CREATE ... ENTRIESREAD, XGROUP
/// CREATECONSUMER and XCLAIM ... FORCE; consumer seen/active times become the load time and the
/// server drops pending entries whose stream entry was deleted: use --restore to keep them.
///
/// parquet (-o DIR; several inputs or directories allowed) writes DIR/NAME.parquet per input, a
/// row per key: file, db, key (bytes), type, encoding, rdb_encoding, expire_at, memory, elements,
/// largest_element, slot, value_bytes, idle_s, freq (memory figures as `rdbtool report`).
///
/// Reads the RDB part of an RDB-preamble AOF file too. Filters combine (AND); repeated values of
/// one filter are alternatives (OR). Empty collections are skipped with a warning, as Redis does.
/// Exit status: 0 done, 1 invalid input (offset, db and key on stderr), 2 could not run.
#[derive(clap::Args)]
pub struct Args {
    /// The RDB file (or an AOF file with an RDB preamble); `-` reads standard input, *.gz / *.zst
    /// / *.lz4 are decompressed (both through an unnamed file in $TMPDIR).
    file: PathBuf,
    /// More inputs (RDB files or directories of *.rdb), with --format parquet only.
    #[arg(value_name = "MORE")]
    more: Vec<PathBuf>,
    /// Output format (parquet: -o names a directory, one FILE.parquet per input).
    #[arg(long, value_enum, default_value_t = OutputFormat::Jsonl)]
    format: OutputFormat,
    /// Write to FILE atomically (temporary file in the same directory, renamed when complete).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// JSON: add "encoding", "idle", "freq" and "value_bytes" to every object.
    #[arg(long)]
    with_meta: bool,
    /// RESP: at most N elements (items, members, pairs) per command.
    #[arg(long, value_name = "N", default_value_t = 64)]
    batch: usize,
    /// RESP: RESTORE key ttl payload ABSTTL commands, payloads built from the file's bytes.
    #[arg(long)]
    restore: bool,
    /// RESP: what RESTORE (every key with --restore, module values always) and FUNCTION LOAD do
    /// when the key or library exists: panic (an error from the server), rewrite (REPLACE) or
    /// skip (keep the existing key; an existing library is still an error). Plain commands
    /// (without --restore): rewrite sends DEL before each key; skip is refused; panic adds to
    /// an existing key (use `rdbtool restore` to check).
    #[arg(long, value_enum, default_value_t = OnBusyKey::Panic)]
    on_busy_key: OnBusyKey,
    /// With --restore: the RDB version written in the payloads: 1-13, 80, or the release that is
    /// to load them (redis-7.0); default: the file's. A server refuses payloads newer than its own
    /// version; values this version cannot hold are refused. (Also --target-rdb-version.)
    #[arg(long = "rdb-version", alias = "target-rdb-version", value_name = "N|SERVER", value_parser = rdbtool::rdb::servers::parse_rdb_target)]
    target_rdb_version: Option<rdbtool::rdb::types::Format>,
    /// RESP: leave out the FUNCTION LOAD commands of the file's function libraries.
    #[arg(long)]
    no_functions: bool,
    #[command(flatten)]
    filter: FilterArgs,
}

pub fn run(args: Args) -> u8 {
    let fail = |msg: String| {
        eprintln!("rdbtool export: {msg}");
        EXIT_CANNOT_RUN
    };
    let filter = match args.filter.build() {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    if args.format == OutputFormat::Parquet {
        return parquet(&args, filter);
    }
    if !args.more.is_empty() {
        return fail("several inputs need --format parquet".into());
    }
    if args.restore && args.format != OutputFormat::Resp {
        return fail("--restore needs --format resp".into());
    }
    if args.on_busy_key == OnBusyKey::Skip && !args.restore && args.format == OutputFormat::Resp {
        return fail(
            "--on-busy-key skip needs --restore: plain commands cannot keep an existing key \
             (use rdbtool restore, or --on-busy-key rewrite, which deletes each key first)"
                .into(),
        );
    }
    if args.batch == 0 {
        return fail("--batch must be at least 1".into());
    }
    let opts = Options {
        format: args.format,
        with_meta: args.with_meta,
        resp: RespOptions {
            batch: args.batch,
            restore: args.restore,
            on_busy_key: args.on_busy_key,
            target_version: args.target_rdb_version.map(|f| f.version as u16),
            functions: !args.no_functions,
            ..RespOptions::default()
        },
        filter,
    };
    let name = args.file.display().to_string();
    let data = match rdbtool::spool::open_arg(&args.file, None) {
        Ok(d) => d,
        Err(e) => return fail(format!("{name}: cannot read: {e}")),
    };
    let bar = super::progress::bytes_bar(data.len() as u64, "export");
    // Pages behind the reader are released as it goes: RSS stays flat on big files.
    let pages = Pages::new(&data, 1);
    let mut progress = |pos: u64| bar.set_position(pos);

    let report = |res: &Result<export::Summary, ExportError>| -> u8 {
        bar.finish_and_clear();
        match res {
            Ok(s) => {
                for w in &s.warnings {
                    eprintln!("rdbtool export: {name}: warning: {w}");
                }
                EXIT_OK
            }
            Err(ExportError::Input(e)) => {
                eprintln!("rdbtool export: {name}: {e}");
                EXIT_INVALID
            }
            Err(e) => {
                eprintln!("rdbtool export: {name}: {e}");
                EXIT_CANNOT_RUN
            }
        }
    };

    match &args.output {
        Some(path) => {
            // An existing output is replaced (never an input).
            let mut file = match AtomicFile::create(path, &[args.file.as_path()], true) {
                Ok(f) => f,
                Err(e) => return fail(format!("{}: {e}", path.display())),
            };
            let res = export::export_pass(&data, &pages, &opts, &mut file, &mut progress);
            let code = report(&res);
            if code != EXIT_OK {
                file.discard();
                return code;
            }
            match file.commit() {
                Ok(()) => EXIT_OK,
                Err(e) => fail(format!("{}: {e}", path.display())),
            }
        }
        None => super::with_stdout(|out| {
            let res = export::export_pass(&data, &pages, &opts, out, &mut progress);
            if let Err(ExportError::Write(e)) = res {
                bar.finish_and_clear();
                return Err(e);
            }
            Ok(report(&res))
        }),
    }
}

/// `--format parquet -o DIR`: one Parquet file per input (`rdbtool::export::parquet`).
fn parquet(args: &Args, filter: rdbtool::filter::Filter) -> u8 {
    let fail = |msg: String| {
        eprintln!("rdbtool export: {msg}");
        EXIT_CANNOT_RUN
    };
    let Some(dir) = &args.output else { return fail("--format parquet needs -o DIR".into()) };
    if args.restore || args.with_meta {
        return fail("--restore and --with-meta do not apply to --format parquet".into());
    }
    let mut given = vec![args.file.clone()];
    given.extend(args.more.iter().cloned());
    let files = match rdbtool::discover::rdb_files(&given) {
        Ok(f) => f,
        Err(e) => return fail(e.to_string()),
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail(format!("{}: {e}", dir.display()));
    }
    let opts = rdbtool::report::Options {
        top: 0,
        separators: b":".to_vec(),
        depth: 0,
        max_prefixes: 1,
        now_ms: filter.now_ms,
        filter,
        largest_element: true,
    };
    match rdbtool::export::parquet::export_files(&files, dir, &opts) {
        Ok(results) => {
            let mut code = EXIT_OK;
            for r in results {
                match r.error {
                    Some(e) => {
                        eprintln!("rdbtool export: {}: {e} (no output written)", r.input.display());
                        code = EXIT_INVALID;
                    }
                    None => eprintln!(
                        "{}: {} keys, {} row groups -> {}",
                        r.input.display(),
                        r.rows,
                        r.row_groups,
                        r.output.display()
                    ),
                }
            }
            code
        }
        Err(e) => fail(e.to_string()),
    }
}
