//! What `verify` reads, found from its arguments: a walk that never stops at a path it cannot
//! read. Every path that fails (a directory without permission, a dangling symlink, a FIFO in a
//! tree, an argument that does not exist) becomes an entry of its own, and the walk goes on.

use std::path::{Path, PathBuf};

use crate::aof::{Target, classify_file, is_aof_dir};
use crate::spool::Codec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A file (RDB, AOF) or an AOF set.
    Target(Target),
    /// A compressed RDB, or a stream (`-`, a pipe given by name): spooled, then verified.
    Spooled(PathBuf),
    /// Could not be read or walked: the path and why.
    Unreadable(PathBuf, String),
}

impl Found {
    pub fn path(&self) -> &Path {
        match self {
            Found::Target(t) => t.path(),
            Found::Spooled(p) | Found::Unreadable(p, _) => p,
        }
    }
}

/// Names a directory walk picks up.
fn wanted(name: &str) -> bool {
    let base = match Codec::from_name(name) {
        Some(_) => name.rsplit_once('.').map_or(name, |(b, _)| b),
        None => return name.ends_with(".rdb") || name.ends_with(".aof"),
    };
    base.ends_with(".rdb")
}

/// Expands `verify`'s arguments, in order. A directory holding a `*.manifest` is an AOF set;
/// other directories are walked (sorted) for AOF directories, `*.rdb`, `*.aof` and
/// `*.rdb.{gz,zst,lz4}` files. Arguments naming files are taken as given: `-` and pipes are
/// streams, `*.gz` / `*.zst` / `*.lz4` compressed, `*.manifest` a set, `*.aof` a single-file
/// AOF, anything else an RDB (a missing one is reported when opened).
pub fn discover(args: &[PathBuf]) -> Vec<Found> {
    let mut out = Vec::new();
    for a in args {
        if a.as_os_str() == "-" || crate::spool::needs_spool(a) {
            out.push(Found::Spooled(a.clone()));
        } else if a.is_dir() {
            dir(a, &mut out);
        } else {
            out.push(Found::Target(classify_file(a)));
        }
    }
    out
}

fn dir(d: &Path, out: &mut Vec<Found>) {
    match is_aof_dir(d) {
        Ok(true) => return out.push(Found::Target(Target::AofSet(d.to_path_buf()))),
        Ok(false) => {}
        Err(e) => return out.push(Found::Unreadable(d.to_path_buf(), format!("cannot read directory: {e}"))),
    }
    let entries =
        match std::fs::read_dir(d).and_then(|rd| rd.map(|e| e.map(|e| e.path())).collect::<Result<Vec<_>, _>>()) {
            Ok(mut v) => {
                v.sort();
                v
            }
            Err(e) => return out.push(Found::Unreadable(d.to_path_buf(), format!("cannot read directory: {e}"))),
        };
    for p in entries {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let meta = match std::fs::metadata(&p) {
            Ok(m) => m,
            Err(e) => {
                // A symlink whose target is gone (or a loop): it may have been a backup, or a
                // directory of them.
                out.push(Found::Unreadable(p, format!("cannot follow symlink: {e}")));
                continue;
            }
        };
        if meta.is_dir() {
            dir(&p, out);
        } else if !wanted(&name) {
        } else if !meta.is_file() {
            // Opening a FIFO would wait for a writer; a walk reads files only.
            out.push(Found::Unreadable(p, "not a regular file (a FIFO, socket or device)".to_owned()));
        } else if Codec::from_name(&name).is_some() {
            out.push(Found::Spooled(p));
        } else {
            out.push(Found::Target(classify_file(&p)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_picked_by_walks() {
        for n in ["a.rdb", "a.aof", "a.rdb.gz", "a.rdb.zst", "a.rdb.lz4"] {
            assert!(wanted(n), "{n}");
        }
        for n in ["a.gz", "a.txt.zst", "a.rdb.bak", "rdb", "a.lz4"] {
            assert!(!wanted(n), "{n}");
        }
    }
}
