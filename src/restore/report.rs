//! What a restore did: counts (in total and per master), failures named, the busy key that
//! stopped a `panic` run and the keys written before it; as text or JSON.

use std::io::{self, Write};

use serde::Serialize;

use crate::display::quoted;

/// Failures (and, for `--dry-run`, existing keys) named one by one; past this, only counted.
pub const MAX_FAILURES: usize = 100;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Keys created (RESTORE or plain commands).
    pub written: u64,
    /// Keys that existed and were replaced (`--on-busy-key rewrite`); not those found existing
    /// when sent again after a lost connection or on `--resume` (see `resumed_existing`).
    pub replaced: u64,
    /// Keys that existed and were kept (skip), or stopped the run (panic).
    pub skipped_busy: u64,
    /// Keys whose TTL had passed (not sent).
    pub skipped_expired: u64,
    /// Empty collections in the file (Redis skips them on load too).
    pub skipped_empty: u64,
    /// Of `written` + `replaced`: keys sent as plain commands because the target's RDB
    /// version cannot hold their encoding.
    pub sent_as_commands: u64,
    /// Values whose payload is longer than the target's `proto-max-bulk-len`, sent as plain
    /// commands (elements in batches).
    pub sent_in_parts: u64,
    /// `--expired include`: keys whose TTL had passed that would have gone as plain commands.
    /// Not built: as `RESTORE` does with such a TTL, an existing key is busy (panic, skip) or
    /// deleted (rewrite); counted in `written` / `replaced` / `skipped_busy` like those.
    pub expired_unbuilt: u64,
    /// Keys the target refused.
    pub failed: u64,
    /// Keys not sent because the run stopped (busy key under panic, a lost connection).
    pub not_sent: u64,
    /// Keys sent whose reply never came (the connection was lost).
    pub unconfirmed: u64,
    /// `--dry-run`: keys that exist on the target.
    pub existing: u64,
    /// Copies of a key left out / renamed by `--on-conflict` (several dbs or inputs).
    pub conflicts_dropped: u64,
    pub conflicts_renamed: u64,
    /// Commands sent again: after `MOVED`, after `ASK` (with `ASKING`), after `TRYAGAIN` /
    /// `CLUSTERDOWN` / `LOADING`.
    pub moved: u64,
    pub asked: u64,
    pub retried: u64,
    /// Connections lost and opened again; the commands without a reply were sent again on the
    /// new one (a key found existing then is counted as `resumed_existing`).
    pub reconnected: u64,
    pub functions_loaded: u64,
    pub functions_busy: u64,
    pub functions_failed: u64,
    /// `--resume`: keys (and libraries) the journal shows acknowledged by an earlier run; not sent again.
    pub already_restored: u64,
    /// `--resume`: keys past the acknowledged point that the interrupted run may have sent,
    /// found on the target (taken as written by that run); also keys sent again on a new
    /// connection after one was lost, found written by the first send. Under `--on-busy-key
    /// rewrite` they are written again, but neither counted `written` nor `replaced`: whether
    /// the target held the key before this run cannot be told any more.
    pub resumed_existing: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.written += o.written;
        self.replaced += o.replaced;
        self.skipped_busy += o.skipped_busy;
        self.skipped_expired += o.skipped_expired;
        self.skipped_empty += o.skipped_empty;
        self.sent_as_commands += o.sent_as_commands;
        self.sent_in_parts += o.sent_in_parts;
        self.expired_unbuilt += o.expired_unbuilt;
        self.failed += o.failed;
        self.not_sent += o.not_sent;
        self.unconfirmed += o.unconfirmed;
        self.existing += o.existing;
        self.conflicts_dropped += o.conflicts_dropped;
        self.conflicts_renamed += o.conflicts_renamed;
        self.moved += o.moved;
        self.asked += o.asked;
        self.retried += o.retried;
        self.reconnected += o.reconnected;
        self.functions_loaded += o.functions_loaded;
        self.functions_busy += o.functions_busy;
        self.functions_failed += o.functions_failed;
        self.already_restored += o.already_restored;
        self.resumed_existing += o.resumed_existing;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub db: u64,
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub key: Vec<u8>,
    /// A function library (key is its name).
    pub function: bool,
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeReport {
    pub node: String,
    #[serde(flatten)]
    pub counts: Counts,
    #[serde(skip)]
    pub failures: Vec<Failure>,
    #[serde(skip)]
    pub existing_keys: Vec<(u64, Vec<u8>)>,
    #[serde(skip)]
    pub written_keys: Vec<(u64, Vec<u8>)>,
    #[serde(skip)]
    pub written_keys_truncated: bool,
    /// The connection failed (the node's run ended there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl NodeReport {
    /// Adds the report of another connection to the same node.
    pub fn absorb(&mut self, o: NodeReport) {
        self.counts.add(&o.counts);
        let room = MAX_FAILURES.saturating_sub(self.failures.len());
        self.failures.extend(o.failures.into_iter().take(room));
        let room = MAX_FAILURES.saturating_sub(self.existing_keys.len());
        self.existing_keys.extend(o.existing_keys.into_iter().take(room));
        self.written_keys.extend(o.written_keys);
        self.written_keys_truncated |= o.written_keys_truncated;
        if self.error.is_none() {
            self.error = o.error;
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BusyKey {
    pub db: u64,
    /// The key, or the library name when `function`.
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub key: Vec<u8>,
    pub node: String,
    pub function: bool,
    /// Its position in the inputs (for the journal).
    #[serde(skip)]
    pub pos: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyName {
    pub db: u64,
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub key: Vec<u8>,
}

/// Where the journal (`--journal`) left the inputs.
#[derive(Debug, Clone, Serialize)]
pub struct JournalNote {
    pub path: String,
    /// Bytes of the inputs (end to end) acknowledged, of `total`.
    pub acked: u64,
    pub total: u64,
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub dry_run: bool,
    pub inputs: Vec<String>,
    pub target: String,
    pub version: String,
    /// `standalone` or `cluster`.
    pub mode: String,
    /// The version written in RESTORE payloads.
    pub payload_rdb_version: u16,
    pub on_busy_key: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// The first failures (`MAX_FAILURES`).
    pub failures: Vec<Failure>,
    /// `--dry-run`: the first keys that exist on the target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub existing_keys: Vec<KeyName>,
    /// Under panic: the busy key that stopped the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_key: Option<BusyKey>,
    /// When the run stopped early: every key written before the stop (unless more than
    /// `written_keys_cap`, then `written_keys_truncated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_keys: Option<Vec<KeyName>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub written_keys_truncated: bool,
    pub nodes: Vec<NodeReport>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalNote>,
    pub elapsed_s: f64,
}

impl Report {
    /// Whether the run stopped before the end.
    pub fn stopped(&self) -> bool {
        self.busy_key.is_some() || !self.errors.is_empty()
    }

    pub fn print(&self, out: &mut dyn Write) -> io::Result<()> {
        let c = &self.counts;
        let what = if self.dry_run { "dry run: nothing written to" } else { "restored into" };
        writeln!(
            out,
            "{} {what} {} ({}{}, {}, payload RDB {})",
            self.inputs.join(" "),
            self.target,
            if self.version.starts_with("valkey") { "" } else { "redis " },
            self.version,
            self.mode,
            self.payload_rdb_version
        )?;
        if self.dry_run {
            writeln!(
                out,
                "  would write {} keys; {} exist on the target; skipped expired {}",
                c.written, c.existing, c.skipped_expired
            )?;
            for k in &self.existing_keys {
                writeln!(out, "  exists: db {} key {}", k.db, quoted(&k.key))?;
            }
            if c.existing > self.existing_keys.len() as u64 {
                writeln!(out, "  ... {} more existing keys", c.existing - self.existing_keys.len() as u64)?;
            }
        } else {
            writeln!(
                out,
                "  written {}, replaced {}, skipped busy {}, skipped expired {}, sent as commands {}, failed {}",
                c.written, c.replaced, c.skipped_busy, c.skipped_expired, c.sent_as_commands, c.failed
            )?;
        }
        if c.already_restored + c.resumed_existing > 0 {
            writeln!(
                out,
                "  resumed: {} keys acknowledged by the earlier run, {} more found on the target",
                c.already_restored, c.resumed_existing
            )?;
        }
        if c.sent_in_parts > 0 {
            writeln!(out, "  {} values longer than the target takes in one bulk sent as commands", c.sent_in_parts)?;
        }
        if c.reconnected > 0 {
            writeln!(out, "  {} connections lost and opened again (unanswered commands sent again)", c.reconnected)?;
        }
        if c.expired_unbuilt > 0 {
            writeln!(
                out,
                "  {} keys whose TTL had passed not built (as RESTORE: the target's key kept, or deleted under rewrite)",
                c.expired_unbuilt
            )?;
        }
        if c.skipped_empty > 0 {
            writeln!(out, "  skipped {} empty collections", c.skipped_empty)?;
        }
        if c.functions_loaded + c.functions_busy + c.functions_failed > 0 {
            writeln!(
                out,
                "  functions: {} loaded, {} existed, {} failed",
                c.functions_loaded, c.functions_busy, c.functions_failed
            )?;
        }
        if c.conflicts_dropped + c.conflicts_renamed > 0 {
            writeln!(
                out,
                "  conflicts (--on-conflict): {} copies left out, {} renamed",
                c.conflicts_dropped, c.conflicts_renamed
            )?;
        }
        if c.moved + c.asked + c.retried > 0 {
            writeln!(
                out,
                "  sent again: {} after MOVED, {} after ASK, {} after TRYAGAIN / CLUSTERDOWN / LOADING",
                c.moved, c.asked, c.retried
            )?;
        }
        if c.not_sent + c.unconfirmed > 0 {
            writeln!(out, "  not sent {}, sent without a reply {}", c.not_sent, c.unconfirmed)?;
        }
        if self.nodes.len() > 1 {
            for n in &self.nodes {
                let k = &n.counts;
                writeln!(
                    out,
                    "  node {}: written {}, replaced {}, skipped busy {}, sent as commands {}, failed {}",
                    n.node, k.written, k.replaced, k.skipped_busy, k.sent_as_commands, k.failed
                )?;
            }
        }
        for f in &self.failures {
            let what = if f.function { "function" } else { "key" };
            writeln!(out, "  failed: db {} {what} {}: {}", f.db, quoted(&f.key), f.error)?;
        }
        if c.failed + c.functions_failed > self.failures.len() as u64 {
            writeln!(out, "  ... {} more failures", c.failed + c.functions_failed - self.failures.len() as u64)?;
        }
        if let Some(b) = &self.busy_key {
            let what = if b.function { "function library".to_owned() } else { format!("db {} key", b.db) };
            writeln!(
                out,
                "  stopped: {what} {} exists on {} (--on-busy-key panic; rewrite or skip to go on)",
                quoted(&b.key),
                b.node
            )?;
        }
        if let Some(w) = &self.written_keys {
            writeln!(out, "  keys written before the stop: {}", c.written + c.replaced)?;
            for k in w.iter().take(MAX_FAILURES) {
                writeln!(out, "    db {} {}", k.db, quoted(&k.key))?;
            }
            if w.len() > MAX_FAILURES {
                writeln!(out, "    ... {} more (all of them in --json)", w.len() - MAX_FAILURES)?;
            }
            if self.written_keys_truncated {
                writeln!(out, "    (too many to list them all)")?;
            }
        }
        for e in &self.errors {
            writeln!(out, "  error: {e}")?;
        }
        if let Some(j) = self.journal.as_ref().filter(|j| !j.complete) {
            writeln!(
                out,
                "  journal {}: {} of {} bytes of input acknowledged; the same command with --resume continues there",
                j.path, j.acked, j.total
            )?;
        }
        let keys = c.written + c.replaced + c.skipped_busy + c.failed;
        let rate = if self.elapsed_s > 0.0 { keys as f64 / self.elapsed_s } else { 0.0 };
        writeln!(out, "  time {:.3} s ({rate:.0} keys/s)", self.elapsed_s)?;
        Ok(())
    }
}
