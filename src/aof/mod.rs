//! AOF: Redis's append-only file, as one old-style file (RESP commands, optionally after an RDB
//! preamble) or as a multipart set (`appendonlydir/`: manifest, base, incr files; Redis >= 7.0).
//!
//! `manifest` reads and writes the manifest with the server's rules, `resp` walks the commands of
//! one file without copying, `commands` judges each command (what Redis writes to an AOF, what it
//! never does), `set` puts a manifest and its files together: the command stream across files,
//! verify, the timeline and the point-in-time cut.

mod command_table;
pub mod commands;
pub mod cut;
pub mod find;
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

pub fn is_aof_dir(dir: &Path) -> io::Result<bool> {
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

pub fn classify_file(p: &Path) -> Target {
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

pub use crate::time::format_utc;
