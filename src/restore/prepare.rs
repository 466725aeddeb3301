//! The steps before the first key is sent: the input headers, the cluster's one-database
//! check, the conflict plan (a key that lands on one name from several places) and the
//! journal opened or resumed.

use std::collections::BTreeMap;

use super::{Input, Options, Target, journal};
use crate::filter::{Expired, Filter};
use crate::rdb::reader::{Reader, Record};
use crate::rdb::types::Format;

/// What the send loop starts from.
pub(super) struct Prepared {
    /// The format of each input (from its header).
    pub formats: Vec<Format>,
    /// Several inputs or `--into-db0`: merge's decision for each key that is in several places.
    pub plan: Option<crate::merge::Plan>,
    pub journal: Option<journal::Journal>,
    /// Resumed: keys before `skip_below` are done; up to `uncertain_below` they may be.
    pub skip_below: u64,
    pub uncertain_below: u64,
    /// Resumed after a busy-key stop: that key's position (sent as any other key).
    pub resume_busy: Option<u64>,
}

/// Reads the headers, refuses what cannot be restored, plans the conflicts, opens the journal.
pub(super) fn prepare(inputs: &[Input<'_>], target: &Target, opts: &Options) -> Result<Prepared, String> {
    let mut formats = Vec::new();
    for i in inputs {
        formats.push(Reader::new(i.data).map_err(|e| format!("{}: {e}", i.name))?.format());
    }
    if let Some(served) = target.served_dbs()
        && !opts.into_db0
    {
        check_dbs(inputs, &opts.filter, served)?;
    }
    let plan = conflict_plan(inputs, target, opts)?;
    let journal = open_journal(inputs, target, opts)?;
    let (skip_below, uncertain_below, resume_busy) = match &journal {
        Some(j) if opts.resume => (j.resume_from(), j.uncertain_end(), j.state.busy_at),
        _ => (0, 0, None),
    };
    Ok(Prepared { formats, plan, journal, skip_below, uncertain_below, resume_busy })
}

/// A cluster serves db 0 only (a Valkey 9 cluster: `cluster-databases` of them): keys of other
/// databases are refused, with the list of databases, unless one is chosen with `--db N`.
fn check_dbs(inputs: &[Input<'_>], filter: &Filter, served: u64) -> Result<(), String> {
    let dbs = selected_dbs(inputs, filter)?;
    let one = filter.dbs.len() == 1;
    if !one && dbs.keys().any(|&d| d >= served) {
        let list: Vec<String> = dbs.iter().map(|(d, n)| format!("db {d}: {n} keys")).collect();
        let has = if served == 1 { "only db 0".to_owned() } else { format!("dbs 0 to {}", served - 1) };
        return Err(format!(
            "the cluster has {has}, and the keys are in several databases ({}): choose one with --db N, \
             or map all to db 0 with --into-db0",
            list.join(", ")
        ));
    }
    Ok(())
}

/// Keys per database among the selected keys of `inputs` (for the cluster check).
pub fn selected_dbs(inputs: &[Input<'_>], filter: &Filter) -> Result<BTreeMap<u64, u64>, String> {
    let mut f = filter.clone();
    f.expired = Expired::Include;
    let mut dbs = BTreeMap::new();
    for i in inputs {
        let mut reader = Reader::new(i.data).map_err(|e| format!("{}: {e}", i.name))?;
        let pages = i.pages();
        let mut lane = pages.lane();
        while let Some(rec) = reader.next() {
            lane.upto(reader.record_offset() as usize);
            if let Record::Key(k) = rec.map_err(|e| format!("{}: {e}", i.name))?
                && f.matches(&k)
            {
                *dbs.entry(k.db).or_insert(0) += 1;
            }
        }
    }
    Ok(dbs)
}

/// Where the keys of each source db go, for the conflict check (one output).
struct Router<'a> {
    filter: &'a Filter,
    into_db0: bool,
}

impl crate::merge::Router for Router<'_> {
    fn outputs(&self) -> usize {
        1
    }
    fn db(&self, src_db: u64) -> crate::merge::DbRoute {
        if !self.filter.wants_db(src_db) {
            crate::merge::DbRoute::Skip
        } else {
            crate::merge::DbRoute::To(if self.into_db0 { 0 } else { src_db })
        }
    }
    fn output(&self, _key: &[u8]) -> Option<usize> {
        Some(0)
    }
    fn joins_dbs(&self) -> bool {
        self.into_db0
    }
}

/// Keys that land on one name from several places (dbs under `--into-db0`, several inputs):
/// merge's conflict policies decide; under `error` nothing is written and the keys are listed.
fn conflict_plan(inputs: &[Input<'_>], target: &Target, opts: &Options) -> Result<Option<crate::merge::Plan>, String> {
    if !opts.into_db0 && inputs.len() <= 1 {
        return Ok(None);
    }
    let sources: Vec<crate::merge::Source<'_>> = inputs
        .iter()
        .map(|i| match i.mapped {
            Some(m) => crate::merge::Source::mapped(i.name.clone(), m),
            None => crate::merge::Source::new(i.name.clone(), i.data),
        })
        .collect();
    let router = Router { filter: &opts.filter, into_db0: opts.into_db0 || target.served_dbs() == Some(1) };
    match crate::merge::plan(&sources, &router, &opts.conflicts) {
        Ok(p) => Ok(Some(p)),
        Err(crate::merge::MergeError::Conflicts(c)) => {
            let list: Vec<String> = c.iter().take(10).map(|c| c.to_string()).collect();
            let more = if c.len() > 10 { format!("; ... {} more", c.len() - 10) } else { String::new() };
            Err(format!(
                "{} keys come from several databases or inputs, nothing written (choose --on-conflict \
                 first, last or rename): {}{more}",
                c.len(),
                list.join("; ")
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// What a journal must match to be resumed: the options that select and shape the keys.
fn journal_options(opts: &Options) -> String {
    let mut f = opts.filter.clone();
    f.now_ms = 0;
    format!(
        "filter {:?}; ttl-shift {} ms; into-db0 {}; functions {}; conflicts {:?}; payload version {:?}",
        f, opts.ttl_shift_ms, opts.into_db0, opts.functions, opts.conflicts, opts.payload_version
    )
}

/// `--journal`: a fresh journal, or with `--resume` the one on disk (checked to match).
fn open_journal(inputs: &[Input<'_>], target: &Target, opts: &Options) -> Result<Option<journal::Journal>, String> {
    let Some(path) = &opts.journal else { return Ok(None) };
    let fresh = journal::State {
        inputs: inputs.iter().map(|i| journal::InputId { name: i.name.clone(), size: i.data.len() as u64 }).collect(),
        target: target.opts.name(),
        options: journal_options(opts),
        acked: 0,
        horizon: 0,
        uncertain_end: 0,
        busy_at: None,
        complete: false,
    };
    Ok(Some(journal::Journal::open(path, opts.resume, fresh)?))
}
