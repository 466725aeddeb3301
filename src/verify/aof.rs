//! The AOF side of `verify`: an AOF set (a manifest with its base and incr files) or an old
//! single-file AOF. `aof::set` reads the files as Redis loads them and judges every command;
//! the base's RDB image goes through `verify::rdb`; both fill in a `verify::report::Report`.

use std::path::Path;

use super::report::{Options, Report};
use crate::aof::set::{AofSet, OpenError, manifest_failure};

/// Opens and checks `path` (AOF directory, manifest, or single AOF file). `Err` only when the
/// files cannot be read (exit 2); a malformed manifest is a failed report.
pub fn verify_aof(path: &Path, opts: &Options) -> Result<Report, String> {
    let name = path.display().to_string();
    match AofSet::open(path) {
        Ok(set) => Ok(set.check(&name, Some(opts))),
        Err(OpenError::Manifest { path: m, data_len, error }) => Ok(manifest_failure(&name, &m, data_len, &error)),
        Err(e) => Err(format!("{name}: cannot read: {e}")),
    }
}
