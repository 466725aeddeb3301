//! The report of one RDB image as a pass builds it: errors kept in file order and bounded,
//! dbs and warnings, and what the file needs from a server.

use super::report::{DbCounts, Options, Report};
use crate::error::Error;
use crate::rdb::servers::Needs;

/// A verify pass's report so far, with what the verdict needs after the pass.
pub(super) struct Progress {
    pub(super) report: Report,
    pub(super) eof_offset: Option<u64>,
    pub(super) stored_checksum: Option<u64>,
    /// Index of each db in `report.dbs` (a crafted file may select thousands of them).
    pub(super) db_index: std::collections::HashMap<u64, usize>,
    /// What the file needs from a server, for `restorable_by` and `--target`.
    pub(super) needs: Needs,
    /// Zeroed blocks: records read inside them are not keys and their errors are not listed.
    pub(super) holes: Vec<(u64, u64)>,
}

/// At most this many warnings are listed per file; a crafted file must not turn each of its
/// records into a line of report.
pub(super) const MAX_WARNINGS: usize = 100;

impl Progress {
    /// Errors arrive from the parse, the value batches and the duplicate check, not in file
    /// order: at twice the limit the list is sorted and cut back (`finish_errors`), so the
    /// errors listed at the end are the first in file order.
    pub(super) fn push_error(&mut self, e: &Error, opts: &Options) {
        if crate::damage::inside(&self.holes, e.offset) {
            return;
        }
        self.report.errors.push(e.into());
        // Bounded memory, and the first errors in file order whatever order they come in.
        let keep = if opts.keep_going { opts.max_errors.max(1) } else { 1 };
        let errors = &mut self.report.errors;
        if errors.len() >= 2 * keep {
            errors.sort_by_key(|e| e.offset);
            self.report.errors_not_listed += (errors.len() - keep) as u64;
            errors.truncate(keep);
        }
    }

    /// The slot of `db` in the report, created (with its warnings) when first seen.
    pub(super) fn db_slot(&mut self, db: u64) -> usize {
        if let Some(&i) = self.db_index.get(&db) {
            return i;
        }
        self.report.dbs.push(DbCounts { db, ..Default::default() });
        let i = self.report.dbs.len() - 1;
        self.db_index.insert(db, i);
        if db >= 16 {
            self.warn(format!("database {db}: the restoring server needs `databases` > {db} (default 16)"));
        }
        i
    }

    pub(super) fn warn(&mut self, msg: String) {
        match self.report.warnings.len() {
            n if n < MAX_WARNINGS => self.report.warnings.push(msg),
            MAX_WARNINGS => self.report.warnings.push("more warnings not listed".to_owned()),
            _ => {}
        }
    }

    pub(super) fn finish_errors(&mut self, opts: &Options) {
        let errors = &mut self.report.errors;
        errors.sort_by_key(|e| e.offset);
        let keep = if opts.keep_going { opts.max_errors } else { 1 };
        if errors.len() > keep {
            self.report.errors_not_listed += (errors.len() - keep) as u64;
            errors.truncate(keep);
        }
    }
}
