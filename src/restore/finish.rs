//! The end of a run: the workers closed, the journal's final state, the report assembled from
//! the producer's counts and every worker's.

use std::time::Instant;

use super::feed::Feed;
use super::nodes::{acked, close};
use super::report::{self, Report};
use super::{Input, Options, Target};

/// Waits for the workers and builds the report.
pub(super) fn finish(
    mut feed: Feed<'_>,
    inputs: &[Input<'_>],
    target: &Target,
    opts: &Options,
    started: Instant,
) -> Report {
    let mut errors = std::mem::take(&mut feed.errors);
    let node_reports = close(&mut feed.nodes, &mut errors);
    let shared = feed.shared.clone();
    let busy = shared.busy.lock().unwrap_or_else(|e| e.into_inner()).take();
    let total: u64 = inputs.iter().map(|i| i.data.len() as u64).sum();
    if let Some(j) = feed.pre.journal.as_mut() {
        let a = acked(&mut feed.nodes, feed.at);
        let complete = a >= total && errors.is_empty() && busy.is_none();
        let answered = node_reports.iter().all(|n| n.counts.unconfirmed == 0);
        // Other connections may have written keys past `a` (theirs were in flight when one
        // stopped): up to the last key batched anywhere is uncertain.
        let sent_end = feed.nodes.iter().map(|n| n.last_end).max().unwrap_or(0);
        if let Err(e) = j.finish(a, answered, sent_end, busy.as_ref().map(|b| b.pos), complete) {
            errors.push(format!("--journal: {e}"));
        }
    }
    let mut counts = feed.counts;
    let mut failures = std::mem::take(&mut feed.pre_failures);
    let mut existing = Vec::new();
    let mut written = Vec::new();
    let mut written_truncated = false;
    for n in &node_reports {
        counts.add(&n.counts);
        failures.extend(n.failures.iter().cloned());
        existing.extend(n.existing_keys.iter().map(|(db, key)| report::KeyName { db: *db, key: key.clone() }));
        written.extend(n.written_keys.iter().map(|(db, key)| report::KeyName { db: *db, key: key.clone() }));
        written_truncated |= n.written_keys_truncated;
        if let Some(e) = &n.error {
            errors.push(e.clone());
        }
    }
    failures.truncate(report::MAX_FAILURES);
    existing.truncate(report::MAX_FAILURES);
    let stopped = busy.is_some() || !errors.is_empty();
    let ok = !stopped
        && counts.failed + counts.functions_failed + counts.not_sent + counts.unconfirmed == 0
        && !(opts.dry_run && shared.panic && counts.existing > 0)
        && !(shared.panic && counts.functions_busy > 0);
    Report {
        ok,
        dry_run: opts.dry_run,
        inputs: inputs.iter().map(|i| i.name.clone()).collect(),
        target: target.opts.name(),
        version: target.version.clone(),
        mode: match &target.slots {
            None => "standalone".into(),
            Some(_) => format!("cluster of {} masters", node_reports.len()),
        },
        payload_rdb_version: feed.payload_version,
        on_busy_key: format!("{:?}", opts.on_busy_key).to_lowercase(),
        counts,
        failures,
        existing_keys: existing,
        busy_key: busy,
        written_keys: stopped.then_some(written),
        written_keys_truncated: stopped && written_truncated,
        nodes: node_reports,
        errors,
        warnings: std::mem::take(&mut feed.warnings),
        journal: feed.pre.journal.take().map(|j| report::JournalNote {
            path: opts.journal.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            acked: j.state.acked,
            total,
            complete: j.state.complete,
        }),
        elapsed_s: started.elapsed().as_secs_f64(),
    }
}
