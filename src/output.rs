//! Output files written atomically: the bytes go to a temporary name in the target's directory,
//! are fsynced, can be re-read and checked under that name, and only then take the target name.
//! A file dropped before `commit` is removed. Without `overwrite`, an existing target is refused
//! up front and the final step is a no-clobber link, so a file that appeared meanwhile survives.
//! The temporary name is registered with `crate::cleanup`, so that SIGINT / SIGTERM remove it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub struct AtomicFile {
    tmp: PathBuf,
    target: PathBuf,
    file: Option<File>,
    overwrite: bool,
    /// Bytes written, and how far writeback to disk was started (`write_behind`).
    written: u64,
    started: u64,
    /// The buffer bytes copied by the kernel are read back into (`copy_range`).
    back: Vec<u8>,
}

/// Writeback of the bytes written is started every this many bytes (`write_behind`).
const WRITE_BEHIND: u64 = 32 << 20;

/// The mode of an output made from `inputs`, as `cp` gives a copy its source's: the read and
/// write bits every input has (the strictest of several; backups hold secrets, so an output of
/// 0600 inputs is 0600 too), never execute bits; 0666 (less the umask) without inputs.
pub fn output_mode(inputs: &[&Path]) -> u32 {
    inputs.iter().filter_map(|p| fs::metadata(p).ok()).map(|m| m.permissions().mode() & 0o666).fold(0o666, |a, m| a & m)
}

impl AtomicFile {
    /// Creates the temporary file next to `target`. `inputs` are files that must not be the
    /// target (refused even with `overwrite`).
    pub fn create(target: &Path, inputs: &[&Path], overwrite: bool) -> io::Result<AtomicFile> {
        check_target(target, inputs, overwrite)?;
        let dir = parent_dir(target);
        let base = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
        let pid = std::process::id();
        remove_stale(&dir, &base);
        let mode = output_mode(inputs);
        for n in 0..1000u32 {
            let tmp = dir.join(format!(".{base}.rdbtool-{pid}-{n}.tmp"));
            let opened = crate::cleanup::create_path(
                || OpenOptions::new().read(true).write(true).create_new(true).mode(mode).open(&tmp),
                |_| tmp.clone(),
            );
            match opened {
                Ok(file) => {
                    return Ok(AtomicFile {
                        tmp,
                        target: target.to_path_buf(),
                        file: Some(file),
                        overwrite,
                        written: 0,
                        started: 0,
                        back: Vec::new(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary file name"))
    }

    /// The temporary file (complete after `sync`, for re-reading before `commit`).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Starts writing the bytes written so far to disk, in the background, every `WRITE_BEHIND`
    /// bytes, and waits for the bytes before the last stretch to be on disk: `sync` at the end then
    /// has little left to wait for (the disk works while the output is written, instead of after),
    /// and dirty pages do not pile up. Durability still comes from `sync` (fsync) before the
    /// rename; this only moves the work earlier. Best effort: a failure is left to `sync`.
    fn write_behind(&mut self) {
        if self.written < self.started + WRITE_BEHIND {
            return;
        }
        let Some(f) = &self.file else { return };
        use std::os::fd::AsRawFd;
        let fd = f.as_raw_fd();
        let (from, len) = (self.started, self.written - self.started);
        // Safety: plain syscalls on a file descriptor we own; no memory is passed.
        unsafe {
            libc::sync_file_range(fd, from as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
            if from > 0 {
                let all =
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
                libc::sync_file_range(fd, 0, from as i64, all);
            }
        }
        self.started = self.written;
    }

    /// Flushes the data to disk; the file keeps its temporary name.
    pub fn sync(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => {
                f.flush()?;
                f.sync_all()
            }
            None => Err(io::Error::other("already closed")),
        }
    }

    /// Gives the file its final name (fsyncing data and directory).
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().ok_or_else(|| io::Error::other("already closed"))?;
        let res = file.sync_all().and_then(|_| {
            drop(file);
            if self.overwrite {
                fs::rename(&self.tmp, &self.target)
            } else {
                // link(2) fails if the target exists: no window in which a new file is replaced.
                match fs::hard_link(&self.tmp, &self.target) {
                    Ok(()) => fs::remove_file(&self.tmp),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(exists_error()),
                    // File systems without hard links: check, then rename.
                    Err(_) if !self.target.exists() => fs::rename(&self.tmp, &self.target),
                    Err(e) => Err(e),
                }
            }
        });
        if res.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        crate::cleanup::remove_path(&self.tmp);
        res?;
        if let Ok(d) = File::open(parent_dir(&self.target)) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Removes the temporary file.
    pub fn discard(mut self) {
        self.file.take();
        let _ = fs::remove_file(&self.tmp);
        crate::cleanup::remove_path(&self.tmp);
    }
}

/// Removes `.BASE.rdbtool-PID-N.tmp` files in `dir` whose PID is no longer running: the
/// temporary outputs of an earlier run that was killed before it could clean up (SIGKILL, a
/// crash). Each removal is recorded with `crate::cleanup::note`, for the binary to report.
fn remove_stale(dir: &Path, base: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!(".{base}.rdbtool-");
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)).and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest.split_once('-').and_then(|(p, n)| {
            n.parse::<u32>().ok()?;
            p.parse::<u32>().ok()
        }) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_file()) && fs::remove_file(e.path()).is_ok() {
            crate::cleanup::note(format!("removed {}, left by an interrupted run (pid {pid})", e.path().display()));
        }
    }
}

/// Refuses a target that is one of the inputs, a directory, or (without `overwrite`) exists.
/// Inputs are refused whatever `overwrite` says (`check_not_input`).
pub fn check_target(target: &Path, inputs: &[&Path], overwrite: bool) -> io::Result<()> {
    check_not_input(target, inputs)?;
    if target.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory"));
    }
    if !overwrite && fs::symlink_metadata(target).is_ok() {
        return Err(exists_error());
    }
    Ok(())
}

/// The one check every writing command makes: an output (a file, or a directory of outputs) may
/// not be an input, nor lie inside one. Refused: the same file (same device and inode: hard
/// links, and symlinks, which are followed), a path inside a directory given as input (after
/// resolving symlinks in the target's existing ancestors), and a path inside the directory of
/// an AOF manifest given as input (the set's files live there). A target that does not exist
/// yet is judged by where it would be created.
pub fn check_not_input(target: &Path, inputs: &[&Path]) -> io::Result<()> {
    let refuse = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
    let resolved = resolve_target(target);
    for input in inputs {
        if same_file(target, input) {
            return refuse(format!("refusing to overwrite an input ({})", input.display()));
        }
        let Ok(meta) = fs::metadata(input) else { continue };
        let zone = if meta.is_dir() {
            fs::canonicalize(input).ok()
        } else if input.extension().is_some_and(|e| e == "manifest") {
            fs::canonicalize(input).ok().and_then(|p| p.parent().map(Path::to_path_buf))
        } else {
            None
        };
        let Some(zone) = zone else { continue };
        if resolved.as_ref().is_some_and(|t| t.starts_with(&zone)) {
            return refuse(format!("refusing to write inside an input directory ({})", zone.display()));
        }
        // A hard link elsewhere to a file of that directory (an AOF set's files).
        if fs::metadata(target).is_ok_and(|m| m.is_file())
            && let Ok(entries) = fs::read_dir(&zone)
            && let Some(f) = entries.flatten().map(|e| e.path()).find(|f| same_file(target, f))
        {
            return refuse(format!("refusing to overwrite an input ({})", f.display()));
        }
    }
    Ok(())
}

/// `target` with its existing ancestors resolved (symlinks, `..`); `None` when nothing of it
/// resolves.
fn resolve_target(target: &Path) -> Option<PathBuf> {
    let abs = if target.is_absolute() { target.to_path_buf() } else { std::env::current_dir().ok()?.join(target) };
    if let Ok(p) = fs::canonicalize(&abs) {
        return Some(p);
    }
    let mut rest = Vec::new();
    let mut at = abs.as_path();
    loop {
        rest.push(at.file_name()?.to_os_string());
        at = at.parent()?;
        if let Ok(mut p) = fs::canonicalize(at) {
            for r in rest.iter().rev() {
                if r == ".." {
                    p.pop();
                } else if r != "." {
                    p.push(r);
                }
            }
            return Some(p);
        }
    }
}

fn exists_error() -> io::Error {
    io::Error::new(io::ErrorKind::AlreadyExists, "already exists (pass --force to replace it)")
}

fn parent_dir(target: &Path) -> PathBuf {
    match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
            crate::cleanup::remove_path(&self.tmp);
        }
    }
}

impl crate::rdb::writer::KernelCopy for AtomicFile {
    /// `copy_file_range` from `src` into the file (page cache to page cache, as `cp` does), then
    /// the copied bytes are read back from the file, 1 MiB at a time into one buffer, for their
    /// CRC-64. `None` when the kernel or the file systems refuse the first copy (nothing copied).
    fn copy_range(&mut self, src: &File, offset: u64, len: u64) -> io::Result<Option<u64>> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::FileExt;
        let Some(f) = &self.file else { return Err(io::Error::other("closed")) };
        let (fd, start) = (f.as_raw_fd(), self.written);
        let mut off_in = i64::try_from(offset).map_err(io::Error::other)?;
        let mut left = len;
        while left > 0 {
            let step = left.min(1 << 30) as usize;
            // Safety: plain syscall on two descriptors we hold; `off_in` outlives the call; the
            // output's own file position (every write goes through it) is used and advanced.
            let n = unsafe { libc::copy_file_range(src.as_raw_fd(), &mut off_in, fd, std::ptr::null_mut(), step, 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                let unsupported =
                    matches!(e.raw_os_error(), Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP));
                if unsupported && left == len {
                    return Ok(None);
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the input ended at offset {off_in}"),
                ));
            }
            left -= n as u64;
            self.written += n as u64;
        }
        // The bytes as the file holds them now.
        if self.back.is_empty() {
            self.back = vec![0; READ_BACK];
        }
        let mut crc = crate::crc::Crc64::default();
        let mut at = start;
        while at < start + len {
            let k = (start + len - at).min(READ_BACK as u64) as usize;
            f.read_exact_at(&mut self.back[..k], at)?;
            crc.update(&self.back[..k]);
            at += k as u64;
        }
        self.write_behind();
        Ok(Some(crc.finish()))
    }
}

/// Bytes copied by the kernel are read back in pieces of this size (`copy_range`).
const READ_BACK: usize = 1 << 20;

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.file {
            Some(f) => f.write(buf)?,
            None => return Err(io::Error::other("closed")),
        };
        self.written += n as u64;
        self.write_behind();
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Whether two paths name the same file (when both exist).
pub fn same_file(a: &Path, b: &Path) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::writer::KernelCopy;

    /// A range of a file copied by the kernel lands after what was written, whole, and the CRC
    /// returned is the one of the bytes the output holds.
    #[test]
    fn kernel_copy_appends_the_range_and_its_crc() {
        let dir = tempfile::tempdir().unwrap();
        let src_path = dir.path().join("in.bin");
        let src: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        fs::write(&src_path, &src).unwrap();
        let input = File::open(&src_path).unwrap();
        let target = dir.path().join("out.bin");
        let mut f = AtomicFile::create(&target, &[], false).unwrap();
        f.write_all(b"head").unwrap();
        let (a, b) = (12_345usize, 2_500_001usize);
        let Some(crc) = f.copy_range(&input, a as u64, (b - a) as u64).unwrap() else {
            eprintln!("skipped: copy_file_range refused on this file system");
            return;
        };
        assert_eq!(crc, crate::crc::crc64(&src[a..b]));
        f.write_all(b"tail").unwrap();
        f.sync().unwrap();
        let mut want = b"head".to_vec();
        want.extend_from_slice(&src[a..b]);
        want.extend_from_slice(b"tail");
        assert_eq!(fs::read(f.tmp_path()).unwrap(), want);
        // A range past the input's end is an error, not a short copy.
        assert!(f.copy_range(&input, src.len() as u64 - 10, 20).is_err());
    }

    #[test]
    fn commit_discard_and_no_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.rdb");
        let mut f = AtomicFile::create(&target, &[], false).unwrap();
        f.write_all(b"one").unwrap();
        f.sync().unwrap();
        assert!(!target.exists());
        assert_eq!(fs::read(f.tmp_path()).unwrap(), b"one");
        f.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"one");
        // Exists: refused without overwrite, replaced with it.
        assert_eq!(AtomicFile::create(&target, &[], false).err().unwrap().kind(), io::ErrorKind::AlreadyExists);
        let mut f = AtomicFile::create(&target, &[], true).unwrap();
        f.write_all(b"two").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        // A file that appears between create and commit is kept.
        let other = dir.path().join("late.rdb");
        let mut f = AtomicFile::create(&other, &[], false).unwrap();
        f.write_all(b"mine").unwrap();
        fs::write(&other, b"theirs").unwrap();
        assert!(f.commit().is_err());
        assert_eq!(fs::read(&other).unwrap(), b"theirs");
        // Dropped or discarded: no temporary left behind.
        let f = AtomicFile::create(&dir.path().join("x"), &[], false).unwrap();
        let tmp = f.tmp_path().to_path_buf();
        drop(f);
        assert!(!tmp.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        // An input is never a target.
        assert!(AtomicFile::create(&target, &[&target], true).is_err());
        // The temporary file of a dead process is removed; a live one's (pid 1) and other
        // targets' are kept.
        let dead = dir.path().join(".out.rdb.rdbtool-999999999-0.tmp");
        let other = dir.path().join(".other.rdb.rdbtool-999999999-0.tmp");
        for p in [&dead, &other] {
            fs::write(p, b"x").unwrap();
        }
        let init = dir.path().join(".out.rdb.rdbtool-1-0.tmp");
        fs::write(&init, b"x").unwrap();
        let f = AtomicFile::create(&target, &[], true).unwrap();
        f.discard();
        assert!(!dead.exists() && init.exists() && other.exists());
        assert!(crate::cleanup::take_notes().iter().any(|n| n.contains("999999999")));
    }
}
