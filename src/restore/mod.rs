//! `rdbtool restore`: the keys of RDB files into a live server or cluster.
//!
//! The producer (the calling thread) reads the files record by record, applies the filters and
//! the expiry rule, renders each key as `RESTORE key ttl payload ABSTTL [REPLACE] [IDLETIME n |
//! FREQ n]` with the payload framed from the file's own bytes (`export::resp::RespWriter`), or,
//! when the target's RDB version cannot hold the value's encoding, as the plain commands of
//! `export --format resp`. Keys go in batches to one worker thread per master (`send`), which
//! pipelines them and counts the outcome of every key (`report`). Routing (`route`): a
//! standalone server takes every key (databases kept, with `SELECT`); a cluster takes each key
//! at the master of its hash slot, after a check that every key is in db 0 (or mapped there).
//!
//! Busy keys (`--on-busy-key`): panic sends `RESTORE` without `REPLACE` and stops at the first
//! `BUSYKEY`; skip sends the same and counts `BUSYKEY` as kept; rewrite adds `REPLACE` and an
//! `EXISTS` before it to count replaced keys. Plain commands build the value under a temporary
//! key of the same slot, then `RENAMENX` it into place under panic / skip and `RENAME` under
//! rewrite, so a key is whole or absent and never added to an existing one.
//!
//! The steps: `prepare` (headers, the cluster's db check, the conflict plan, the journal),
//! `feed` (the producer loop: filters, rendering, batching), `nodes` (the workers seen from the
//! producer, the acknowledged position), `send` (a worker), `finish` (the report).

mod batch;
mod feed;
mod finish;
pub mod journal;
mod nodes;
mod prepare;
pub mod report;
pub mod route;
pub mod send;

use std::time::Instant;

use crate::export::resp::OnBusyKey;
use crate::filter::Filter;
pub use prepare::selected_dbs;
pub use report::{Counts, Report};
pub use route::Target;

/// One input file.
pub struct Input<'a> {
    pub name: String,
    pub data: &'a [u8],
    /// The mapped file, when `data` is one: the passes before the restore (the cluster db check,
    /// the conflict plan) give its pages back as they go, so RSS stays flat.
    pub mapped: Option<&'a crate::input::Input>,
}

impl<'a> Input<'a> {
    /// The pages of one pass over this input (one consumer).
    fn pages(&self) -> crate::pass::Pages<'a> {
        match self.mapped {
            Some(m) => crate::pass::Pages::new(m, 1),
            None => crate::pass::Pages::unmapped(self.data.len()),
        }
    }
}

/// `--connections`' default (see benches/README.md, restore).
pub const DEFAULT_CONNECTIONS: usize = 2;

#[derive(Debug, Clone)]
pub struct Options {
    pub on_busy_key: OnBusyKey,
    /// The key filters; `expired: Exclude` skips (and counts) keys whose TTL has passed.
    pub filter: Filter,
    /// Added to every expire time before anything else looks at it.
    pub ttl_shift_ms: i64,
    pub dry_run: bool,
    /// `FUNCTION LOAD` the files' libraries (on every master).
    pub functions: bool,
    /// Every database into db 0.
    pub into_db0: bool,
    /// A key that comes from several places (two dbs under `into_db0`, two inputs): the
    /// policy of `merge` (error: nothing is written and the keys are listed).
    pub conflicts: crate::merge::Options,
    /// The version written in payload footers instead of the target's own.
    pub payload_version: Option<u16>,
    /// Connections (each a worker thread with its own pipeline) per master.
    pub connections: usize,
    /// A batch is sent at this many keys or bytes.
    pub batch_keys: usize,
    pub batch_bytes: usize,
    /// At most this many keys per second (None: as fast as the target takes them).
    pub max_ops: Option<u64>,
    /// The names of written keys kept for the report of a run that stops (per master).
    pub keep_written: usize,
    /// `--journal FILE`: how far the target acknowledged the inputs, kept durably.
    pub journal: Option<std::path::PathBuf>,
    /// `--resume`: continue where the journal says.
    pub resume: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            on_busy_key: OnBusyKey::Panic,
            filter: Filter::default(),
            ttl_shift_ms: 0,
            dry_run: false,
            functions: true,
            into_db0: false,
            conflicts: crate::merge::Options::default(),
            payload_version: None,
            max_ops: None,
            connections: DEFAULT_CONNECTIONS,
            batch_keys: 512,
            batch_bytes: 2 << 20,
            keep_written: 100_000,
            journal: None,
            resume: false,
        }
    }
}

/// Restores `inputs` into `target`. `Err` only when nothing could be done (bad input header,
/// refused databases); a run that started always gives a report (its `ok` says whether every
/// key was restored). `progress` gets the bytes read so far, over all inputs.
pub fn run(
    inputs: &[Input<'_>],
    target: &Target,
    opts: &Options,
    progress: &mut dyn FnMut(u64),
) -> Result<Report, String> {
    let started = Instant::now();
    let pre = prepare::prepare(inputs, target, opts)?;
    let mut feed = feed::Feed::new(target, opts, pre, started);
    feed.all(inputs, progress);
    Ok(finish::finish(feed, inputs, target, opts, started))
}
