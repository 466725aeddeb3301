//! What a path is, and what command-line arguments name: the one place that tells an RDB file,
//! an old single-file AOF, an AOF directory (by its manifest) and a directory of backups apart.
//!
//! `discover` is `verify`'s walk, which never stops at a path it cannot read: every path that
//! fails (a directory without permission, a dangling symlink, a FIFO in a tree, an argument that
//! does not exist) becomes an entry of its own, and the walk goes on. `rdb_files` is the same walk
//! for the commands that read RDB files only. `find_manifest` and `sniff` answer for one path.

use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::aof::Target;
use crate::spool::Codec;

/// The manifest of an AOF directory: the one `*.manifest` that is not a `temp-` leftover of an
/// interrupted rewrite. None when there is none; an error when there are several.
pub fn find_manifest(dir: &Path) -> io::Result<Option<PathBuf>> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let b = name.as_bytes();
        if b.ends_with(b".manifest") && !b.starts_with(b"temp-") && e.file_type()?.is_file() {
            found.push(e.path());
        }
    }
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(io::Error::other(format!(
            "{} holds {} manifests ({}): name the one to read",
            dir.display(),
            found.len(),
            found.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Whether a directory is an AOF set (holds a manifest).
pub fn is_aof_dir(dir: &Path) -> io::Result<bool> {
    Ok(find_manifest(dir)?.is_some())
}

/// A file by its name: `*.manifest` is a set, `*.aof` a single-file AOF, anything else an RDB.
/// (`sniff` looks at the content instead.)
pub fn classify_file(p: &Path) -> Target {
    let name = p.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    if name.ends_with(b".manifest") {
        Target::AofSet(p.to_path_buf())
    } else if name.ends_with(b".aof") {
        Target::AofFile(p.to_path_buf())
    } else {
        Target::Rdb(p.to_path_buf())
    }
}

/// What a backup path holds, by its content: a directory with a manifest is an AOF set, a file
/// starting with `REDIS` / `VALKEY` an RDB (an AOF file with an RDB preamble included: Redis loads
/// the RDB part), a file starting with `*` (a RESP command) a single-file AOF. Anything else is an
/// error saying what was found.
pub fn sniff(path: &Path) -> Result<Target, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if meta.is_dir() {
        return match find_manifest(path) {
            Ok(Some(_)) => Ok(Target::AofSet(path.to_path_buf())),
            Ok(None) => Err(format!("{shown}: a directory without an AOF manifest (*.manifest)")),
            Err(e) => Err(format!("{shown}: {e}")),
        };
    }
    if !meta.is_file() {
        return Err(format!("{shown}: not a regular file (a FIFO, socket or device)"));
    }
    let mut head = [0u8; 9];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).map_err(|e| format!("{shown}: {e}"))?;
    let head = &head[..n];
    if crate::aof::is_rdb(head) {
        Ok(Target::Rdb(path.to_path_buf()))
    } else if head.starts_with(b"*") {
        Ok(Target::AofFile(path.to_path_buf()))
    } else {
        Err(format!("{shown}: neither an RDB file (REDIS / VALKEY header) nor an AOF"))
    }
}

/// The RDB files arguments name, for the commands that read RDB files only (merge, split,
/// restore, report, lint). Files are taken as given (opening them reports what is wrong);
/// directories are walked as `discover` walks them, keeping `*.rdb` files and leaving out AOF
/// directories met on the way (their base file alone is not the dataset). An AOF directory given
/// as an argument, a path that cannot be read, or arguments that name no RDB file at all (empty
/// directories), is an error.
pub fn rdb_files(args: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for a in args {
        if a.as_os_str() == "-" || !a.is_dir() {
            out.push(a.clone());
            continue;
        }
        if is_aof_dir(a)? {
            return Err(io::Error::other(format!(
                "{}: an AOF directory, not RDB files (rdbtool aof to-rdb makes one RDB of it)",
                a.display()
            )));
        }
        let mut found = Vec::new();
        dir(a, &mut found);
        for f in found {
            match f {
                Found::Target(Target::Rdb(p)) => out.push(p),
                Found::Unreadable(p, why) => return Err(io::Error::other(format!("{}: {why}", p.display()))),
                Found::Target(_) | Found::Spooled(_) => {}
            }
        }
    }
    if out.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no RDB files found"));
    }
    Ok(out)
}

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

    #[test]
    fn rdb_files_leave_out_aof_sets_and_refuse_one_given() {
        let t = tempfile::tempdir().unwrap();
        let w = |rel: &str, data: &[u8]| {
            let p = t.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        };
        w("a/dump.rdb", b"REDIS0011");
        w("a/b/other.rdb", b"REDIS0011");
        w("a/old.rdb.gz", b"x");
        w("a/notes.txt", b"x");
        w("a/appendonlydir/appendonly.aof.1.base.rdb", b"REDIS0011");
        w("a/appendonlydir/appendonly.aof.manifest", b"file appendonly.aof.1.base.rdb seq 1 type b\n");
        let got = rdb_files(&[t.path().join("a")]).unwrap();
        assert_eq!(got, vec![t.path().join("a/b/other.rdb"), t.path().join("a/dump.rdb")]);
        let e = rdb_files(&[t.path().join("a/appendonlydir")]).unwrap_err();
        assert!(e.to_string().contains("an AOF directory"), "{e}");
        // Files are taken as given, whatever their name.
        let given = t.path().join("a/notes.txt");
        assert_eq!(rdb_files(std::slice::from_ref(&given)).unwrap(), vec![given]);
        // Directories without an RDB file: nothing to read is an error, not an empty run.
        std::fs::create_dir_all(t.path().join("empty")).unwrap();
        let e = rdb_files(&[t.path().join("empty")]).unwrap_err();
        assert!(e.to_string().contains("no RDB files found"), "{e}");
    }

    #[test]
    fn sniff_reads_the_content_and_ignores_temp_manifests() {
        let t = tempfile::tempdir().unwrap();
        let f = |name: &str, data: &[u8]| {
            let p = t.path().join(name);
            std::fs::write(&p, data).unwrap();
            p
        };
        assert_eq!(sniff(&f("x.bin", b"*1\r\n$4\r\nPING\r\n")).unwrap(), Target::AofFile(t.path().join("x.bin")));
        assert_eq!(sniff(&f("y.aof", b"REDIS0011")).unwrap(), Target::Rdb(t.path().join("y.aof")));
        assert!(sniff(&f("z", b"hello")).unwrap_err().contains("neither an RDB"));
        let d = t.path().join("aof");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("temp-appendonly.aof.manifest"), b"").unwrap();
        assert!(sniff(&d).unwrap_err().contains("without an AOF manifest"));
        std::fs::write(d.join("appendonly.aof.manifest"), b"").unwrap();
        assert_eq!(sniff(&d).unwrap(), Target::AofSet(d.clone()));
        std::fs::write(d.join("second.manifest"), b"").unwrap();
        assert!(sniff(&d).unwrap_err().contains("2 manifests"));
    }
}
