//! AOF: Redis's append-only file, as one old-style file (RESP commands, optionally after an RDB
//! preamble) or as a multipart set (`appendonlydir/`: manifest, base, incr files; Redis >= 7.0).
//!
//! `manifest` reads and writes the manifest with the server's rules, `resp` walks the commands of
//! one file without copying, `commands` judges each command (what Redis writes to an AOF, what it
//! never does), `set` puts a manifest and its files together: the command stream across files,
//! verify, the timeline and the point-in-time cut.

mod command_table;
pub mod commands;
pub mod manifest;
pub mod resp;
pub mod set;

use std::io;
use std::path::{Path, PathBuf};

pub use manifest::{FileType, Manifest, ManifestEntry, ManifestError};
pub use resp::{Command, CommandMeta, Event, RespParser};
pub use set::{AofReport, AofSet, SetCommand};

/// Does the file start with an RDB image? Redis checks `REDIS`; Valkey 9 writes `VALKEY` too.
pub fn is_rdb(data: &[u8]) -> bool {
    data.starts_with(b"REDIS") || data.starts_with(b"VALKEY")
}

/// What `verify` should do with a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Rdb(PathBuf),
    /// An AOF directory, or its manifest.
    AofSet(PathBuf),
    /// An old single-file AOF.
    AofFile(PathBuf),
}

impl Target {
    pub fn path(&self) -> &Path {
        match self {
            Target::Rdb(p) | Target::AofSet(p) | Target::AofFile(p) => p,
        }
    }
}

fn is_aof_dir(dir: &Path) -> io::Result<bool> {
    Ok(set::find_manifest(dir)?.is_some())
}

/// Expands `verify`'s arguments. A directory holding a `*.manifest` is an AOF set; other
/// directories are walked (sorted) for AOF directories, `*.rdb` and `*.aof` files. Files are
/// taken as given: `*.manifest` is a set, `*.aof` a single-file AOF, anything else an RDB.
pub fn expand_targets(args: &[PathBuf]) -> io::Result<Vec<Target>> {
    let mut out = Vec::new();
    for a in args {
        if a.is_dir() {
            if is_aof_dir(a)? {
                out.push(Target::AofSet(a.clone()));
            } else {
                walk(a, &mut out)?;
            }
        } else {
            out.push(classify_file(a));
        }
    }
    Ok(out)
}

fn classify_file(p: &Path) -> Target {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.ends_with(".manifest") {
        Target::AofSet(p.to_path_buf())
    } else if name.ends_with(".aof") {
        Target::AofFile(p.to_path_buf())
    } else {
        Target::Rdb(p.to_path_buf())
    }
}

fn walk(dir: &Path, out: &mut Vec<Target>) -> io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<io::Result<_>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if is_aof_dir(&p)? {
                out.push(Target::AofSet(p));
            } else {
                walk(&p, out)?;
            }
        } else {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.ends_with(".rdb") || name.ends_with(".aof") {
                out.push(classify_file(&p));
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Time: #TS annotations are unix seconds; users give unix seconds or RFC 3339.

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-11-21T06:13:00Z`.
pub fn format_utc(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86400), t.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Unix seconds from `1795240763` or RFC 3339 (`2026-11-21T06:13:00Z`, `...+02:00`, fractions
/// of a second are dropped: annotations have whole seconds).
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| format!("{s}: too large for unix seconds"));
    }
    let bad = || format!("{s:?}: not unix seconds nor an RFC 3339 time like 2026-11-21T06:13:00Z");
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = b.get(r).ok_or_else(bad)?;
        if part.iter().all(|c| c.is_ascii_digit()) {
            Ok(part.iter().fold(0i64, |a, &c| a * 10 + (c - b'0') as i64))
        } else {
            Err(bad())
        }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        i += digits;
    }
    let offset = match b.get(i..) {
        Some(b"Z" | b"z") => 0,
        Some([sign @ (b'+' | b'-'), rest @ ..]) if rest.len() == 5 && rest[2] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return Err(bad()),
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let mdays = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > mdays[mo as usize - 1] || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    Ok(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1795240763), "2026-11-21T05:59:23Z");
        assert_eq!(format_utc(951782400), "2000-02-29T00:00:00Z");
        for t in [0, 1, 86399, 951782400, 1795240763, 4102444800, 253402300799] {
            assert_eq!(parse_time(&format_utc(t)), Ok(t));
        }
        assert_eq!(parse_time("1795240763"), Ok(1795240763));
        assert_eq!(parse_time("2026-11-21T07:59:23.999+02:00"), Ok(1795240763));
        assert_eq!(parse_time("2026-11-21 00:59:23-05:00"), Ok(1795240763));
        for bad in ["", "yesterday", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-11-21T03:19:23", "-5"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
