//! `rdbtool info FILE`: header, aux fields, functions, modules, per-db counts, per type and
//! encoding usage, and the largest keys. One pass of the reader; values are not validated.

use std::io::{self, Write};
use std::path::PathBuf;

use rdbtool::display::quoted;
use rdbtool::info::{self, Info};

use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

/// Show what an RDB file holds: version, aux fields, functions, modules, keys per db, usage per
/// type and encoding, and the 10 largest keys by serialized size.
#[derive(clap::Args)]
pub struct Args {
    /// The RDB file; `-` reads standard input, *.gz / *.zst / *.lz4 are decompressed (both
    /// through an unnamed file in $TMPDIR).
    file: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// "Now", for counting already-expired keys (default: the clock): unix seconds,
    /// 1795240763000ms, RFC 3339, or 'YYYY-MM-DD HH:MM:SS' in --tz.
    #[arg(long, value_name = "TIME", value_parser = rdbtool::time::cli_time_ms)]
    now: Option<i64>,
}

pub fn run(args: Args) -> u8 {
    let name = args.file.display().to_string();
    let data = match rdbtool::spool::open_arg(&args.file, None) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rdbtool info: {name}: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let now = args.now.unwrap_or_else(rdbtool::verify::now_ms);
    let info = match info::gather_pass(&name, &data, &rdbtool::pass::Pages::new(&data, 1), now) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("rdbtool info: {name}: {e}");
            return EXIT_INVALID;
        }
    };
    let code = if info.error.is_some() { EXIT_INVALID } else { EXIT_OK };
    super::with_stdout(|out| {
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&info).unwrap_or_default())?;
        } else {
            print_text(out, &info)?;
        }
        Ok(code)
    })
}

fn mb(b: u64) -> String {
    if b >= 1 << 20 { format!("{:.1} MiB", b as f64 / (1 << 20) as f64) } else { format!("{b} B") }
}

fn print_text(out: &mut dyn Write, i: &Info) -> io::Result<()> {
    let version =
        if i.magic == "VALKEY" { format!("VALKEY{:03}", i.version) } else { format!("REDIS{:04}", i.version) };
    writeln!(out, "file      {}  ({})", i.file, mb(i.bytes))?;
    writeln!(out, "header    {version}")?;
    for a in &i.aux {
        writeln!(out, "aux       {} = {}", quoted(&a.key), quoted(&a.value))?;
    }
    for f in &i.functions {
        writeln!(out, "function  {} ({}, {} bytes)", f.library, f.engine, f.bytes)?;
    }
    for m in &i.modules {
        writeln!(out, "module    {} encver {} ({} {})", m.name, m.encver, m.count, m.seen_as)?;
    }
    writeln!(out, "keys      {}", i.keys)?;
    for d in &i.dbs {
        writeln!(out, "db{:<7} {} keys, {} with TTL, {} already expired", d.db, d.keys, d.expires, d.already_expired)?;
    }
    writeln!(out, "by type")?;
    for (k, u) in &i.types {
        writeln!(out, "  {:<24} {:>10} keys {:>12}", k.as_str(), u.count, mb(u.bytes))?;
    }
    writeln!(out, "by encoding")?;
    for (e, u) in &i.encodings {
        writeln!(out, "  {:<24} {:>10} keys {:>12}", e, u.count, mb(u.bytes))?;
    }
    writeln!(out, "largest keys")?;
    for b in &i.largest {
        writeln!(out, "  {:>12}  db{} {} ({}, {})", mb(b.bytes), b.db, quoted(&b.key), b.kind.as_str(), b.encoding)?;
    }
    if let Some(c) = &i.stored_checksum {
        writeln!(out, "checksum  {c} (stored; run `rdbtool verify` to check it)")?;
    }
    if i.trailing_bytes > 0 {
        writeln!(out, "trailing  {} bytes after the checksum", i.trailing_bytes)?;
    }
    if let Some(e) = &i.error {
        writeln!(out, "ERROR     {e}")?;
    }
    Ok(())
}
