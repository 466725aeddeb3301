//! `rdbtool export FILE`: the keys of a backup as JSON Lines, JSON or Redis protocol commands.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rdbtool::export::resp::{OnBusyKey, RespOptions, valid_target_version};
use rdbtool::export::{self, ExportError, Options, OutputFormat};
use rdbtool::filter::FilterArgs;

use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

/// Export the keys of an RDB file as JSON Lines, JSON, or Redis commands.
///
/// Formats: jsonl (default) writes one object per key and line:
/// {"db":0,"key":K,"type":T,"expire_at_ms":N|null,"value":V}; json writes one array of the same
/// objects; resp writes commands that rebuild the data (pipe them to `redis-cli --pipe`), and
/// with --restore, RESTORE commands whose payloads are the file's own value bytes. Byte strings
/// are JSON strings when they are UTF-8, otherwise {"base64":"..."}.
///
/// Reads the RDB part of an RDB-preamble AOF file too. Filters combine (AND); repeated values of
/// one filter are alternatives (OR). Empty collections are skipped with a warning, as Redis does.
/// Exit status: 0 done, 1 invalid input (offset, db and key on stderr), 2 could not run.
#[derive(clap::Args)]
pub struct Args {
    /// The RDB file (or an AOF file with an RDB preamble).
    file: PathBuf,
    /// Output format.
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
    /// With --restore: what to do when the key exists: panic (error from the server), rewrite
    /// (REPLACE) or skip (keep the existing key).
    #[arg(long, value_enum, default_value_t = OnBusyKey::Panic)]
    on_busy_key: OnBusyKey,
    /// With --restore: the RDB version written in the payloads (default: the file's). A server
    /// refuses payloads newer than its own version; values this version cannot hold are refused.
    #[arg(long, value_name = "N")]
    target_rdb_version: Option<u16>,
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
    if args.restore && args.format != OutputFormat::Resp {
        return fail("--restore needs --format resp".into());
    }
    if args.batch == 0 {
        return fail("--batch must be at least 1".into());
    }
    if let Some(v) = args.target_rdb_version {
        if !valid_target_version(v) {
            return fail(format!("--target-rdb-version {v}: not an RDB version a server reads (1 to 13, or 80)"));
        }
    }
    let opts = Options {
        format: args.format,
        with_meta: args.with_meta,
        resp: RespOptions {
            batch: args.batch,
            restore: args.restore,
            on_busy_key: args.on_busy_key,
            target_version: args.target_rdb_version,
            functions: !args.no_functions,
        },
        filter,
    };
    let name = args.file.display().to_string();
    let data = match rdbtool::input::open(&args.file) {
        Ok(d) => d,
        Err(e) => return fail(format!("{name}: cannot read: {e}")),
    };
    let bar = super::progress::bytes_bar(data.len() as u64, "export");
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
            let mut file = match AtomicFile::create(path, &args.file) {
                Ok(f) => f,
                Err(e) => return fail(format!("{}: {e}", path.display())),
            };
            let res = export::export(&data, &opts, &mut file, &mut progress);
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
            let res = export::export(&data, &opts, out, &mut progress);
            if let Err(ExportError::Write(e)) = res {
                bar.finish_and_clear();
                return Err(e);
            }
            Ok(report(&res))
        }),
    }
}

/// An output file written under a temporary name in the same directory, then fsynced and
/// renamed over the target; removed if dropped before `commit`.
struct AtomicFile {
    tmp: PathBuf,
    target: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    fn create(target: &Path, input: &Path) -> io::Result<AtomicFile> {
        if same_file(target, input) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "refusing to overwrite the input file"));
        }
        if target.is_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory"));
        }
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "export".into());
        let pid = std::process::id();
        for n in 0..1000u32 {
            let tmp = dir.join(format!(".{base}.rdbtool-{pid}-{n}.tmp"));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => return Ok(AtomicFile { tmp, target: target.to_path_buf(), file: Some(file) }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary file name"))
    }

    fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().ok_or_else(|| io::Error::other("already closed"))?;
        let res = file.sync_all().and_then(|_| {
            drop(file);
            fs::rename(&self.tmp, &self.target)
        });
        if res.is_err() {
            let _ = fs::remove_file(&self.tmp);
            return res;
        }
        // Make the rename itself durable.
        if let Some(dir) = self.target.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn discard(mut self) {
        self.file.take();
        let _ = fs::remove_file(&self.tmp);
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("closed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Whether two paths name the same file (when the target exists).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (fs::metadata(a), fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
