//! `rdbtool info FILE`: header, aux fields, functions, modules, per-db counts, per type and
//! encoding usage, and the largest keys. One pass of the reader; values are not validated.

use std::path::PathBuf;

use rdbtool::display::quoted;
use rdbtool::info::{self, Info};

use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

/// Show what an RDB file holds: version, aux fields, functions, modules, keys per db, usage per
/// type and encoding, and the 10 largest keys by serialized size.
#[derive(clap::Args)]
pub struct Args {
    file: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// "Now" in unix milliseconds, for counting already-expired keys (default: the clock).
    #[arg(long)]
    now: Option<i64>,
}

pub fn run(args: Args) -> u8 {
    let name = args.file.display().to_string();
    let data = match rdbtool::input::open(&args.file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rdbtool info: {name}: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let now = args.now.unwrap_or_else(rdbtool::verify::now_ms);
    let info = match info::gather(&name, &data, now) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("rdbtool info: {name}: {e}");
            return EXIT_INVALID;
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&info).unwrap_or_default()
        );
    } else {
        print_text(&info);
    }
    if info.error.is_some() {
        EXIT_INVALID
    } else {
        EXIT_OK
    }
}

fn mb(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    } else {
        format!("{b} B")
    }
}

fn print_text(i: &Info) {
    let version = if i.magic == "VALKEY" {
        format!("VALKEY{:03}", i.version)
    } else {
        format!("REDIS{:04}", i.version)
    };
    println!("file      {}  ({})", i.file, mb(i.bytes));
    println!("header    {version}");
    for a in &i.aux {
        println!("aux       {} = {}", quoted(&a.key), quoted(&a.value));
    }
    for f in &i.functions {
        println!("function  {} ({}, {} bytes)", f.library, f.engine, f.bytes);
    }
    for m in &i.modules {
        println!(
            "module    {} encver {} ({} {})",
            m.name, m.encver, m.count, m.seen_as
        );
    }
    println!("keys      {}", i.keys);
    for d in &i.dbs {
        println!(
            "db{:<7} {} keys, {} with TTL, {} already expired",
            d.db, d.keys, d.expires, d.already_expired
        );
    }
    println!("by type");
    for (k, u) in &i.types {
        println!(
            "  {:<24} {:>10} keys {:>12}",
            k.as_str(),
            u.count,
            mb(u.bytes)
        );
    }
    println!("by encoding");
    for (e, u) in &i.encodings {
        println!("  {:<24} {:>10} keys {:>12}", e, u.count, mb(u.bytes));
    }
    println!("largest keys");
    for b in &i.largest {
        println!(
            "  {:>12}  db{} {} ({}, {})",
            mb(b.bytes),
            b.db,
            quoted(&b.key),
            b.kind.as_str(),
            b.encoding
        );
    }
    if let Some(c) = &i.stored_checksum {
        println!("checksum  {c} (stored; run `rdbtool verify` to check it)");
    }
    if i.trailing_bytes > 0 {
        println!("trailing  {} bytes after the checksum", i.trailing_bytes);
    }
    if let Some(e) = &i.error {
        println!("ERROR     {e}");
    }
}
