//! `restore --journal FILE` / `--resume`: how far the inputs are acknowledged by the target.
//!
//! Positions are byte offsets in the inputs taken end to end (input 2 starts at the length of
//! input 1); a key's position is the offset of its record. The journal holds two of them:
//! - `acked`: every key before it has had its final answer (written, replaced, skipped, failed);
//! - `horizon`: nothing at or after it was ever sent. It is written (durably) *before* a key at
//!   or past it goes into a batch, one step ahead, so it bounds what an interrupted run may have
//!   sent without an answer.
//!
//! The journal is rewritten atomically (temp file, fsync, rename) at the start, at most once
//! per interval while keys are acknowledged, at each horizon step and at the end. A resumed run
//! skips the keys before `acked`; the keys in `[acked, horizon)` are "uncertain": the
//! interrupted run may have written them. RESTORE and the plain commands of a key (built under a
//! temporary name and renamed into place) are all-or-nothing per key, so an uncertain key that
//! exists on the target is one of two cases: written by the interrupted run, or the target's own
//! key. Under rewrite both are replaced, as an uninterrupted run would. Under skip both are kept,
//! as an uninterrupted run would (ours is the value it would have written). Under panic it is
//! taken as written by the interrupted run and counted as `resumed_existing`: a key of the
//! target's own that happens to sit in that window (at most one horizon step of the file) is
//! not reported as busy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How far the horizon moves ahead of the reader at each step (bytes of input).
pub const HORIZON_STEP: u64 = 32 << 20;
/// The journal is rewritten at most this often while keys are acknowledged.
pub const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputId {
    pub name: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    /// What the journal is for: the inputs, the target and the options that select and shape
    /// the keys. A resumed run must match it.
    pub inputs: Vec<InputId>,
    pub target: String,
    pub options: String,
    pub acked: u64,
    pub horizon: u64,
    /// Keys from `acked` up to here may have been written without an answer (the horizon while
    /// running; where the answers ended when a run finished with every sent key answered).
    pub uncertain_end: u64,
    /// A run stopped by a busy key (`--on-busy-key panic`): its position (then `acked`).
    /// That key is sent again as any other key, not as an uncertain one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_at: Option<u64>,
    /// Every key was acknowledged.
    pub complete: bool,
}

pub struct Journal {
    path: PathBuf,
    pub state: State,
    /// `uncertain_end` as the run found it (an earlier interruption's window).
    carried: u64,
    last_write: Instant,
}

impl Journal {
    /// A new journal (an existing file is replaced) or, with `resume`, the one at `path`, which
    /// must describe the same inputs, target and options.
    pub fn open(path: &Path, resume: bool, fresh: State) -> Result<Journal, String> {
        let state = if resume {
            let text = std::fs::read(path)
                .map_err(|e| format!("--resume: cannot read the journal {}: {e}", path.display()))?;
            let old: State = serde_json::from_slice(&text)
                .map_err(|e| format!("--resume: {} is not a restore journal: {e}", path.display()))?;
            if old.inputs != fresh.inputs {
                return Err(format!(
                    "--resume: the journal {} is for other inputs ({}); give the same files in the same order",
                    path.display(),
                    old.inputs.iter().map(|i| format!("{} ({} bytes)", i.name, i.size)).collect::<Vec<_>>().join(", ")
                ));
            }
            if old.target != fresh.target {
                return Err(format!("--resume: the journal {} is for target {}", path.display(), old.target));
            }
            if old.options != fresh.options {
                return Err(format!(
                    "--resume: the journal {} was written with other options (filters, --ttl-shift, --into-db0, \
                     --on-conflict, --no-functions must be the same): {}",
                    path.display(),
                    old.options
                ));
            }
            if old.acked > old.horizon || old.uncertain_end > old.horizon {
                return Err(format!("--resume: the journal {} is inconsistent (acked past horizon)", path.display()));
            }
            old
        } else {
            fresh
        };
        let carried = state.uncertain_end;
        let mut j = Journal { path: path.to_path_buf(), state, carried, last_write: Instant::now() };
        j.write().map_err(|e| format!("--journal {}: {e}", path.display()))?;
        Ok(j)
    }

    /// Writes the state: a temporary file, fsynced, renamed over the journal.
    pub fn write(&mut self) -> std::io::Result<()> {
        let mut f = crate::output::AtomicFile::create(&self.path, &[], true)?;
        let mut text = serde_json::to_vec_pretty(&self.state).map_err(std::io::Error::other)?;
        text.push(b'\n');
        f.write_all(&text)?;
        f.commit()?;
        self.last_write = Instant::now();
        Ok(())
    }

    /// Records `acked` when it moved and the interval has passed.
    pub fn tick(&mut self, acked: u64) -> std::io::Result<()> {
        if acked > self.state.acked && self.last_write.elapsed() >= INTERVAL {
            self.state.acked = acked;
            self.state.uncertain_end = self.state.uncertain_end.max(self.state.horizon);
            self.state.busy_at = None;
            self.write()?;
        }
        Ok(())
    }

    /// Before a key at `pos` is batched: moves the horizon past it (written first).
    pub fn cover(&mut self, pos: u64, acked: u64) -> std::io::Result<()> {
        if pos >= self.state.horizon {
            self.state.horizon = pos + HORIZON_STEP;
            self.state.uncertain_end = self.state.horizon;
            self.state.acked = self.state.acked.max(acked);
            self.state.busy_at = None;
            self.write()?;
        }
        Ok(())
    }

    /// The final state of a run: `acked`; `answered` whether every key sent had its answer
    /// (nothing past `sent_end`, the end of the last key batched, is uncertain then: what the
    /// run wrote before its stop, on any connection, is before it); `busy_at` the busy key
    /// that stopped it.
    pub fn finish(
        &mut self,
        acked: u64,
        answered: bool,
        sent_end: u64,
        busy_at: Option<u64>,
        complete: bool,
    ) -> std::io::Result<()> {
        let acked = self.state.acked.max(acked);
        if answered {
            // What was written past a busy key before the stop is uncertain, nothing further.
            self.state.uncertain_end = acked.max(sent_end).max(self.carried).min(self.state.horizon.max(acked));
        }
        self.state.acked = match busy_at {
            Some(b) if b >= self.state.acked => b.min(acked),
            _ => acked,
        };
        self.state.busy_at = busy_at.filter(|&b| b == self.state.acked);
        self.state.complete = complete;
        self.write()
    }

    /// Keys before this are done; from it to `uncertain_end()` they may have been written.
    pub fn resume_from(&self) -> u64 {
        self.state.acked
    }

    pub fn uncertain_end(&self) -> u64 {
        self.state.uncertain_end.max(self.state.acked)
    }
}
