//! `rdbtool report FILE|DIR...`: where a backup's memory goes, per key (CSV, JSON Lines) or
//! aggregated (text summary, JSON).

use std::io::{self, Write};
use std::path::PathBuf;

use rayon::prelude::*;
use serde_json::{Value as Json, json};

use super::filter::FilterArgs;
use rdbtool::display::quoted;
use rdbtool::output::AtomicFile;
use rdbtool::report::rows;
use rdbtool::report::{Aggregate, KeyRow, Options, TTL_BUCKETS, scan_aggregate, scan_file, shard_loads};
use rdbtool::split::Layout;
use rdbtool::time::format_utc_ms;

use super::{EXIT_CANNOT_RUN, EXIT_INVALID, EXIT_OK};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text tables.
    Summary,
    /// The summary as one JSON document.
    Json,
    /// One line per key, redis-rdb-tools' memory CSV columns.
    Csv,
    /// One JSON object per key and line.
    Jsonl,
    /// One self-contained HTML page (tables, prefix flame graph, TTL histogram, slot heat map).
    Html,
}

/// Where a backup's memory goes: per key, db, type, prefix, TTL and hash slot.
///
/// Per key as Redis 7.0 would account it (MEMORY USAGE SAMPLES 0), per db / type / encoding, the
/// biggest keys, key prefixes, TTLs and hash slots.
///
/// "memory" is an estimate of `MEMORY USAGE key SAMPLES 0` on Redis 7.0 with default settings
/// after loading the file: the value as the loader builds it (listpack, intset, quicklist,
/// hashtable, skiplist, stream), jemalloc size classes, plus the key's string and dict entry.
///
/// Formats: summary (default), json (also --json), csv (database,type,key,size_in_bytes,
/// encoding,num_elements,len_largest_element,expiry; binary keys as base64:...), jsonl
/// ({"db","key","type","expire_at_ms","encoding","rdb_encoding","memory","elements",
/// "largest_element","slot"}; keys as in export), html (one self-contained page, needs -o).
/// --shards N, --slots, --nodes FILE or --from URL add a per-shard view (keys, memory, hottest
/// slots of each target, as split would cut the file). Several files are read in parallel and
/// aggregated, with a line per file. Exit status: 0 done, 1 a file could not be read to its end
/// (its figures cover what came before), 2 could not run.
#[derive(clap::Args)]
pub struct Args {
    /// RDB files, or directories searched for *.rdb.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Summary)]
    format: Format,
    /// Same as --format json.
    #[arg(long)]
    json: bool,
    /// Write to FILE atomically instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Keys in each top list (by memory, by elements).
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
    /// Bytes that end a key prefix segment.
    #[arg(long, value_name = "CHARS", default_value = ":")]
    separators: String,
    /// Prefix levels (1: "user:", 2: "user:42:", ...).
    #[arg(long, value_name = "N", default_value_t = 3)]
    depth: usize,
    /// Most prefixes held in memory; past it the lightest are dropped and the report says by
    /// how much any prefix may be short.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    max_prefixes: usize,
    /// Prefixes listed in the summary and JSON, heaviest first.
    #[arg(long, value_name = "N", default_value_t = 30)]
    top_prefixes: usize,
    /// Per-shard slot view: N shards with even slot ranges (as `redis-cli --cluster create`).
    #[arg(long, value_name = "N", group = "layout")]
    shards: Option<usize>,
    /// Per-shard slot view: explicit ranges, as in `split --slots`.
    #[arg(long, value_name = "RANGES", group = "layout")]
    slots: Option<String>,
    /// Per-shard slot view: the masters of a CLUSTER NODES output or a nodes.conf.
    #[arg(long, value_name = "FILE", group = "layout")]
    nodes: Option<PathBuf>,
    /// Per-shard slot view: the masters of a live cluster (CLUSTER SLOTS): redis://host:port, or
    /// without URL the server of -h/-p/-s.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "", group = "layout")]
    from: Option<String>,
    /// Hottest slots listed (overall and per shard).
    #[arg(long, value_name = "N", default_value_t = 10)]
    top_slots: usize,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    live: super::live::LiveArgs,
}

/// How the aggregates are shown.
struct View {
    format: Format,
    top_prefixes: usize,
    top_slots: usize,
    layout: Option<Layout>,
}

pub fn run(args: Args) -> u8 {
    let fail = |msg: String| {
        eprintln!("rdbtool report: {msg}");
        EXIT_CANNOT_RUN
    };
    let filter = match args.filter.build() {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    if args.separators.is_empty() {
        return fail("--separators needs at least one character".into());
    }
    let format = if args.json { Format::Json } else { args.format };
    if format == Format::Html && args.output.is_none() {
        return fail("--format html needs -o FILE".into());
    }
    if args.from.is_none() && args.live.names_server() {
        return fail("-h/-p/-s name the cluster to read with --from: add --from".into());
    }
    let layout = if args.shards.is_some() || args.slots.is_some() || args.nodes.is_some() || args.from.is_some() {
        match super::split::choose_layout(
            args.shards,
            args.slots.as_deref(),
            args.nodes.as_deref(),
            args.from.as_deref(),
            &args.live,
            "report",
        ) {
            Ok(l) => Some(l),
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    let view = View { format, top_prefixes: args.top_prefixes, top_slots: args.top_slots, layout };
    // Per-key rows show no aggregate: no top lists or prefixes are gathered for them.
    let rows = matches!(format, Format::Csv | Format::Jsonl);
    let opts = Options {
        top: if rows { 0 } else { args.top },
        separators: args.separators.as_bytes().to_vec(),
        depth: if rows { 0 } else { args.depth },
        max_prefixes: args.max_prefixes,
        now_ms: filter.now_ms,
        filter,
        largest_element: rows,
    };
    let files = match rdbtool::discover::rdb_files(&args.files) {
        Ok(f) => f,
        Err(e) => return fail(e.to_string()),
    };
    // The files, and the directories they were found in.
    let inputs: Vec<&std::path::Path> = files.iter().chain(&args.files).map(|p| p.as_path()).collect();
    let write = |out: &mut dyn Write| -> io::Result<u8> { produce(out, &files, &opts, &view) };
    match &args.output {
        Some(path) => {
            let mut file = match AtomicFile::create(path, &inputs, true) {
                Ok(f) => f,
                Err(e) => return fail(format!("{}: {e}", path.display())),
            };
            let code = match write(&mut file) {
                Ok(c) => c,
                Err(e) => {
                    file.discard();
                    return fail(format!("{}: {e}", path.display()));
                }
            };
            match file.commit() {
                Ok(()) => code,
                Err(e) => fail(format!("{}: {e}", path.display())),
            }
        }
        None => super::with_stdout(write),
    }
}

/// What per-key output does with each row.
type EachRow<'e> = &'e mut dyn FnMut(&KeyRow<'_>) -> io::Result<()>;

/// Scans every file and writes the report; the exit code says whether all were read whole.
fn produce(out: &mut dyn Write, files: &[PathBuf], opts: &Options, view: &View) -> io::Result<u8> {
    let format = view.format;
    let several = files.len() > 1;
    // Per-key rows (`each`) come from the one-reader pipeline, in file order; the aggregates
    // alone from the file read in parts on every core.
    let scan_one = |path: &PathBuf, each: Option<EachRow<'_>>| {
        let name = path.display().to_string();
        match rdbtool::input::open(path) {
            Ok(data) => {
                let pages = rdbtool::pass::Pages::new(&data, 1);
                match each {
                    Some(each) => scan_file(&name, &data, opts, &pages, each),
                    None => Ok(scan_aggregate(&name, &data, opts, &pages)),
                }
            }
            Err(e) => {
                let mut a = Aggregate::new(opts);
                let mut totals = rdbtool::report::FileTotals::new(&name, 0);
                totals.error = Some(format!("cannot read: {e}"));
                a.files.push(totals);
                Ok(a)
            }
        }
    };
    let agg = match format {
        Format::Csv | Format::Jsonl => {
            if format == Format::Csv {
                out.write_all(rows::CSV_HEADER.as_bytes())?;
            }
            let mut total = Aggregate::new(opts);
            // Each row made in `line`, then written in one call (a row written piece by piece
            // costs a call through `out` per piece).
            let mut line = Vec::with_capacity(256);
            for path in files {
                let file = path.display().to_string();
                let mut each = |r: &KeyRow<'_>| {
                    line.clear();
                    if format == Format::Csv {
                        rows::push_csv_row(&mut line, r)
                    } else {
                        rows::push_jsonl_row(&mut line, r, several.then_some(file.as_str()))
                    }
                    out.write_all(&line)
                };
                total.merge(scan_one(path, Some(&mut each))?);
            }
            total
        }
        Format::Summary | Format::Json | Format::Html => {
            let parts: Vec<io::Result<Aggregate>> = files.par_iter().map(|p| scan_one(p, None)).collect();
            let mut total = Aggregate::new(opts);
            for p in parts {
                total.merge(p?);
            }
            match format {
                Format::Json => {
                    writeln!(out, "{}", serde_json::to_string_pretty(&to_json(&total, opts, view)).unwrap_or_default())?
                }
                Format::Html => rdbtool::report_html::write(out, &to_json(&total, opts, view))?,
                _ => print_summary(out, &total, opts, view)?,
            }
            total
        }
    };
    let mut code = EXIT_OK;
    for f in &agg.files {
        if let Some(e) = &f.error {
            eprintln!("rdbtool report: {}: {e}", f.file);
            code = EXIT_INVALID;
        }
    }
    Ok(code)
}

fn bucket_rows<K: ToString>(m: impl IntoIterator<Item = (K, rdbtool::report::Bucket)>, key: &str) -> Json {
    Json::Array(
        m.into_iter()
            .map(|(k, b)| {
                let mut v = json!({ "keys": b.keys, "memory": b.memory, "elements": b.elements });
                v[key] = json!(k.to_string());
                v
            })
            .collect(),
    )
}

fn to_json(a: &Aggregate, opts: &Options, view: &View) -> Json {
    // The HTML page draws the prefix tree from more prefixes than a text listing needs.
    let top_prefixes = if view.format == Format::Html { view.top_prefixes.max(2000) } else { view.top_prefixes };
    let dbs: Vec<Json> = a
        .dbs
        .iter()
        .map(|(db, b)| json!({ "db": db, "keys": b.keys, "memory": b.memory, "elements": b.elements }))
        .collect();
    let prefixes: Vec<Json> = a
        .prefixes
        .heaviest(top_prefixes)
        .into_iter()
        .map(|(p, s)| {
            json!({ "prefix": rdbtool::json::bytes(p), "keys": s.keys, "memory": s.memory,
                    "keys_without_ttl": s.keys_without_ttl })
        })
        .collect();
    let ttl: Vec<Json> = TTL_BUCKETS
        .iter()
        .zip(a.ttl)
        .map(|(name, (keys, memory))| json!({ "ttl": name, "keys": keys, "memory": memory }))
        .collect();
    let hottest: Vec<Json> = a
        .hottest_slots(view.top_slots)
        .into_iter()
        .map(|(slot, keys, memory)| json!({ "slot": slot, "keys": keys, "memory": memory }))
        .collect();
    let shards = view.layout.as_ref().map(|l| {
        let (shards, unowned) = shard_loads(a, l, view.top_slots);
        json!({ "shards": shards, "unassigned": { "keys": unowned.keys, "memory": unowned.memory } })
    });
    let slots: Vec<Json> =
        a.slots.iter().enumerate().filter(|(_, s)| s.0 > 0).map(|(i, s)| json!([i, s.0, s.1])).collect();
    json!({
        "memory_model": "MEMORY USAGE key SAMPLES 0, Redis 7.0, default encoding thresholds",
        "now_ms": opts.now_ms,
        "files": a.files,
        "keys": a.total.keys,
        "memory": a.total.memory,
        "elements": a.total.elements,
        "dbs": dbs,
        "types": bucket_rows(a.types.iter().map(|(k, b)| (k.as_str(), *b)), "type"),
        "encodings": bucket_rows(a.encodings.iter().map(|(k, b)| (k.as_str(), *b)), "encoding"),
        "top_memory": a.top_memory.sorted(),
        "top_elements": a.top_elements.sorted(),
        "prefixes": {
            "separators": String::from_utf8_lossy(&opts.separators),
            "depth": opts.depth,
            "held": a.prefixes.len(),
            "dropped": a.prefixes.dropped,
            "error_bound_memory": a.prefixes.error_bound_memory,
            "error_bound_keys": a.prefixes.error_bound_keys,
            "heaviest": prefixes,
        },
        "ttl": ttl,
        "slots": { "used": a.slots.iter().filter(|s| s.0 > 0).count(), "hottest": hottest, "all": slots },
        "layout": shards,
    })
}

fn human(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{b} B") } else { format!("{v:.1} {}", U[i]) }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 { "-".into() } else { format!("{:.1}%", part as f64 * 100.0 / whole as f64) }
}

fn print_summary(out: &mut dyn Write, a: &Aggregate, opts: &Options, view: &View) -> io::Result<()> {
    let top_prefixes = view.top_prefixes;
    let t = &a.total;
    writeln!(out, "memory is the estimate of MEMORY USAGE key SAMPLES 0 on Redis 7.0 (default thresholds)")?;
    for f in &a.files {
        let status = f.error.as_deref().map(|e| format!("  ERROR {e}")).unwrap_or_default();
        let empty = match f.empty_keys {
            0 => String::new(),
            n => format!("  ({n} empty, not counted: Redis drops them on load)"),
        };
        writeln!(
            out,
            "file      {}  ({})  {} keys  {}{empty}{status}",
            f.file,
            human(f.bytes),
            f.keys,
            human(f.memory)
        )?;
    }
    writeln!(out, "total     {} keys  {}  {} elements", t.keys, human(t.memory), t.elements)?;
    let table = |out: &mut dyn Write, title: &str, rows: Vec<(String, rdbtool::report::Bucket)>| -> io::Result<()> {
        writeln!(out, "\n{title:<24} {:>10} {:>12} {:>7} {:>14}", "keys", "memory", "share", "elements")?;
        for (k, b) in rows {
            writeln!(
                out,
                "  {k:<22} {:>10} {:>12} {:>7} {:>14}",
                b.keys,
                human(b.memory),
                pct(b.memory, t.memory),
                b.elements
            )?;
        }
        Ok(())
    };
    table(out, "by db", a.dbs.iter().map(|(d, b)| (format!("db{d}"), *b)).collect())?;
    table(out, "by type", a.types.iter().map(|(k, b)| (k.as_str().to_owned(), *b)).collect())?;
    table(out, "by encoding", a.encodings.iter().map(|(k, b)| (k.to_string(), *b)).collect())?;
    for (title, top) in [("top keys by memory", &a.top_memory), ("top keys by elements", &a.top_elements)] {
        writeln!(out, "\n{title}")?;
        for k in top.sorted() {
            let file = if a.files.len() > 1 { format!("  [{}]", k.file) } else { String::new() };
            writeln!(
                out,
                "  {:>12} {:>12} el  db{} {} ({}, {}){file}",
                human(k.memory),
                k.elements,
                k.db,
                quoted(&k.key),
                k.kind.as_str(),
                k.encoding
            )?;
        }
    }
    writeln!(
        out,
        "\nprefixes (split on {:?}, depth {}; {} held)  {:>10} {:>12} {:>7} {:>10}",
        String::from_utf8_lossy(&opts.separators),
        opts.depth,
        a.prefixes.len(),
        "keys",
        "memory",
        "share",
        "no TTL"
    )?;
    for (p, s) in a.prefixes.heaviest(top_prefixes) {
        writeln!(
            out,
            "  {:<40} {:>10} {:>12} {:>7} {:>10}",
            quoted(p),
            s.keys,
            human(s.memory),
            pct(s.memory, t.memory),
            s.keys_without_ttl
        )?;
    }
    if a.prefixes.dropped > 0 {
        writeln!(
            out,
            "  (--max-prefixes {} reached: {} light prefixes dropped; any prefix may be short by up to {} and {} keys)",
            opts.max_prefixes,
            a.prefixes.dropped,
            human(a.prefixes.error_bound_memory),
            a.prefixes.error_bound_keys
        )?;
    }
    writeln!(out, "\nTTL (now = {})", format_utc_ms(opts.now_ms))?;
    for (name, (keys, mem)) in TTL_BUCKETS.iter().zip(a.ttl) {
        writeln!(out, "  {name:<10} {keys:>12} keys {:>12} {:>7}", human(mem), pct(mem, t.memory))?;
    }
    let used = a.slots.iter().filter(|s| s.0 > 0).count();
    writeln!(out, "\nhash slots: {used} of 16384 hold keys; hottest by memory")?;
    for (slot, keys, mem) in a.hottest_slots(view.top_slots) {
        writeln!(out, "  slot {slot:<6} {keys:>10} keys {:>12} {:>7}", human(mem), pct(mem, t.memory))?;
    }
    if let Some(layout) = &view.layout {
        let (shards, unowned) = shard_loads(a, layout, 3);
        writeln!(
            out,
            "\nper shard ({} targets){:>28} {:>12} {:>7}  hottest slots",
            shards.len(),
            "keys",
            "memory",
            "share"
        )?;
        for s in &shards {
            let hot: Vec<String> = s.hottest.iter().map(|h| format!("{} ({})", h.slot, human(h.memory))).collect();
            writeln!(
                out,
                "  {:<40} {:>10} {:>12} {:>7}  {}",
                format!("{} [{}]", s.name, s.slots),
                s.keys,
                human(s.memory),
                pct(s.memory, t.memory),
                hot.join(", ")
            )?;
        }
        if unowned.keys > 0 {
            writeln!(
                out,
                "  {:<40} {:>10} {:>12} {:>7}",
                "(slots no target owns)",
                unowned.keys,
                human(unowned.memory),
                pct(unowned.memory, t.memory)
            )?;
        }
    }
    Ok(())
}
