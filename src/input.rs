//! Opening inputs: files are memory-mapped read-only (the one place that decides), and directory
//! arguments are expanded to the files a command can read.

use std::fs::File;
use std::io;
use std::path::Path;

use memmap2::{Advice, Mmap, UncheckedAdvice};

/// A read-only view of a whole file.
pub enum Input {
    /// A read-only memory map of the file, and the file (for copies made by the kernel, see
    /// `crate::rdb::writer::KernelCopy`).
    Mapped(Mmap, File),
    /// Empty files cannot be mapped; and tests pass buffers.
    Owned(Vec<u8>),
}

impl std::ops::Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Mapped(m, _) => m,
            Input::Owned(v) => v,
        }
    }
}

impl Input {
    /// The mapped file (none for a buffer).
    pub fn file(&self) -> Option<&File> {
        match self {
            Input::Mapped(_, f) => Some(f),
            Input::Owned(_) => None,
        }
    }

    /// Drops the pages of `range` from this process (they stay in the page cache and come back
    /// on the next read): keeps RSS flat while a big file is scanned once.
    pub fn release(&self, range: std::ops::Range<usize>) {
        const PAGE: usize = 4096;
        if let Input::Mapped(m, _) = self {
            let start = range.start.div_ceil(PAGE) * PAGE;
            let end = (range.end / PAGE * PAGE).min(m.len() / PAGE * PAGE);
            if start < end {
                // Safety: the map is a read-only, shared file mapping; after MADV_DONTNEED a read
                // faults the same bytes back in from the file, so no slice handed out changes.
                let _ = unsafe { m.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start) };
            }
        }
    }
}

/// Opens `path` for reading as one byte slice: memory-mapped (advised sequential), or an empty
/// buffer for an empty file. The file is never written. If another process truncates it while
/// it is mapped, the OS may end this process with SIGBUS: backups are expected to be at rest.
///
/// # Errors
///
/// When the file cannot be opened, its metadata read or mapped, or the path is a directory.
pub fn open(path: &Path) -> io::Result<Input> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory"));
    }
    if meta.len() == 0 {
        return Ok(Input::Owned(Vec::new()));
    }
    // Safety: the map is read-only; if another process truncates the file while we read it, the
    // OS may deliver SIGBUS. Backups being verified are not expected to change underneath us.
    let map = unsafe { Mmap::map(&file)? };
    let _ = map.advise(Advice::Sequential);
    Ok(Input::Mapped(map, file))
}
