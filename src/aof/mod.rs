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

use std::path::{Path, PathBuf};

pub use crate::verify::report::AofReport;
pub use manifest::{FileType, Manifest, ManifestEntry, ManifestError};
pub use resp::{Command, CommandMeta, Event, RespParser};
pub use set::{AofSet, SetCommand};

/// Does the file start with an RDB image? Redis checks `REDIS`; Valkey 9 writes `VALKEY` too.
pub fn is_rdb(data: &[u8]) -> bool {
    data.starts_with(b"REDIS") || data.starts_with(b"VALKEY")
}

/// What `verify` should do with a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An RDB file.
    Rdb(PathBuf),
    /// An AOF directory, or its manifest.
    AofSet(PathBuf),
    /// An old single-file AOF.
    AofFile(PathBuf),
}

impl Target {
    /// The path, whatever it is.
    pub fn path(&self) -> &Path {
        match self {
            Target::Rdb(p) | Target::AofSet(p) | Target::AofFile(p) => p,
        }
    }
}

pub use crate::time::format_utc;
