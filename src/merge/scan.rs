//! What pass 1 records of one input: its sections (runs of records under one source db) and
//! everything else the plan and the conflict resolution read (aux fields, functions, counts,
//! key fingerprints).

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use super::keyloc::KeyLoc;
use super::route::{DbRoute, Router};
use super::route_log::{RouteLog, Routes};
use super::{DbPlan, MAX_EXAMPLES, MAX_MESSAGES};
use crate::display::quoted;
use crate::rdb::keyset::{SpilledBuckets, fingerprint_hashed};
use crate::rdb::reader::{Record, Trailer};
use crate::rdb::types::Format;
use crate::rdb::writer::hold_problem;

/// At most this many AUX field names, and bytes of names and values, are kept per input.
pub(super) const MAX_AUX: usize = 1024;
pub(super) const MAX_AUX_BYTES: usize = 1 << 20;

/// A section of an input: the records from `start` to `end` read under source db `db`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Section {
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) db: u64,
    /// Keys of the section that go to an output, and those of them with a TTL.
    pub(super) keys: u64,
    pub(super) expires: u64,
    /// Offset of the first key record, and the end of the last one (0 when none).
    pub(super) first_key: u64,
    pub(super) keys_end: u64,
    /// Whether `first_key..keys_end` holds nothing but those keys' records (no other record
    /// between them, no key left out), so that it can be copied as one piece.
    pub(super) pure: bool,
}

impl Section {
    pub(super) fn new(start: u64, db: u64) -> Section {
        Section { start, end: start, db, keys: 0, expires: 0, first_key: 0, keys_end: 0, pure: true }
    }
}

/// What pass 1 learned from one input.
pub(super) struct Scan {
    pub(super) format: Format,
    pub(super) aux: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) functions: Vec<Vec<u8>>,
    pub(super) module_aux: Vec<(u64, u64, Vec<u8>)>,
    pub(super) sections: Vec<Section>,
    /// Per output, per target db.
    pub(super) counts: Vec<BTreeMap<u64, DbPlan>>,
    pub(super) src_dbs: BTreeMap<u64, u64>,
    pub(super) skipped: u64,
    pub(super) rejected_dbs: BTreeMap<u64, u64>,
    pub(super) unassigned: u64,
    pub(super) examples: Vec<(u16, Vec<u8>)>,
    pub(super) refused: Vec<String>,
    pub(super) refused_total: u64,
    /// Keys by fingerprint of target db and key, when collisions are looked for.
    pub(super) keys_set: SpilledBuckets,
    pub(super) keys: u64,
    /// The end of the checksummed bytes (after EOF) and their CRC-64 (from `verify`).
    pub(super) crc: (u64, u64),
    pub(super) warnings: Vec<String>,
    /// Where each output's key records are (split: see `routes`): being written, then written.
    pub(super) routes: Option<RouteLog>,
    pub(super) logs: Option<Vec<Routes>>,
}

/// Pass 1's reading of one input, done inside `verify`'s reading of it (`crate::verify::Observer`):
/// each part of the file (read on its own thread) notes its records compactly (`PartScan`), and
/// the parts are replayed in file order into the input's `Scan`, where the db of every key is
/// known.
pub(super) struct Gather<'r> {
    pub(super) input: usize,
    pub(super) name: &'r str,
    pub(super) router: &'r dyn Router,
    pub(super) format: Format,
    pub(super) target: Format,
    /// Whether keys go to the key set (collisions are looked for).
    pub(super) detect: bool,
    pub(super) joined: Mutex<Joined>,
}

/// The replay so far.
pub(super) struct Joined {
    pub(super) sc: Scan,
    /// The source db of the records being replayed, and where its keys go.
    db: u64,
    route: DbRoute,
    /// A record other than a key record met since the section's first key.
    gap: bool,
    aux_names: HashSet<Vec<u8>>,
    aux_bytes: usize,
    pub(super) aux_dropped: u64,
    /// Set by the part the file ended in.
    pub(super) trailer: Option<Trailer>,
}

impl Joined {
    pub(super) fn new(sc: Scan, router: &dyn Router) -> Joined {
        Joined {
            sc,
            db: 0,
            route: router.db(0),
            gap: false,
            aux_names: HashSet::new(),
            aux_bytes: 0,
            aux_dropped: 0,
            trailer: None,
        }
    }
}

/// What one part noted, in file order: its key records (16 bytes each: a part of 32 MiB holds
/// about 150 k), and the other records with the number of key records before each.
struct PartScan {
    /// Per key record: the xxh3 of its key, and `pack`ed its offset, TTL flag and output.
    keys: Vec<(u64, u64)>,
    events: Vec<(u32, Ev)>,
    /// (key number, end) of the key records followed by a record other than a key record (the
    /// others end where the next key record starts, or, for the last, at `last_end`).
    ends: Vec<(u32, u64)>,
    last_end: u64,
    /// Whether the last record was a key record (true at the start: the part before may have
    /// ended with one).
    after_key: bool,
    /// AUX names kept in this part, their bytes, and fields past the limits.
    aux_names: HashSet<Vec<u8>>,
    aux_bytes: usize,
    aux_over: u64,
    /// (key number in the part, slot, key) of the first keys no output takes.
    unassigned: Vec<(u32, u16, Vec<u8>)>,
    /// Key numbers of the keys the target format cannot hold, and (key number, key, why) of
    /// the first of them.
    refused_keys: Vec<u32>,
    refused: Vec<(u32, Vec<u8>, String)>,
}

enum Ev {
    Aux(Vec<u8>, Vec<u8>),
    /// SELECTDB at offset `at`.
    SelectDb(u64, u64),
    Function(Vec<u8>),
    FunctionPreGa(Vec<u8>),
    ModuleAux(u64, u64, Vec<u8>),
    /// Another record right after a key record (RESIZEDB, slot info, an AUX field left out):
    /// the keys around it are not one piece. (Any number of them in a row make one.)
    Other,
}

/// `PartScan::keys`' second word: offset (47 bits), TTL flag, output (16 bits).
fn pack(offset: u64, ttl: bool, output: u16) -> u64 {
    (offset << 17) | (u64::from(ttl) << 16) | u64::from(output)
}

fn unpack(x: u64) -> (u64, bool, u16) {
    (x >> 17, x & (1 << 16) != 0, x as u16)
}

/// `PartScan::keys` grows by this many entries (256 KiB) at a time.
const KEYS_STEP: usize = 16 << 10;

/// The output of a key no output takes (`plan` refuses routers of this many outputs).
pub(super) const NO_OUTPUT: u16 = u16::MAX;

impl crate::verify::Observer for Gather<'_> {
    fn part(&self, _start: u64, _db: Option<u64>) -> Box<dyn Any + Send> {
        Box::new(PartScan {
            keys: Vec::new(),
            events: Vec::new(),
            ends: Vec::new(),
            last_end: 0,
            after_key: true,
            aux_names: HashSet::new(),
            aux_bytes: 0,
            aux_over: 0,
            unassigned: Vec::new(),
            refused_keys: Vec::new(),
            refused: Vec::new(),
        })
    }

    fn record(&self, part: &mut (dyn Any + Send), rec: &Record<'_>, at: u64, end: u64) {
        let Some(p) = part.downcast_mut::<PartScan>() else { return };
        let n = p.keys.len() as u32;
        let after_key = std::mem::replace(&mut p.after_key, false);
        if after_key && n > 0 && !matches!(rec, Record::Key(_)) {
            p.ends.push((n - 1, at));
        }
        let ev = match rec {
            Record::Key(k) => {
                p.after_key = true;
                let output = match self.router.output(&k.key) {
                    Some(o) => o as u16,
                    None => {
                        if p.unassigned.len() < MAX_EXAMPLES {
                            p.unassigned.push((n, crate::slot::key_slot(&k.key), k.key.to_vec()));
                        }
                        NO_OUTPUT
                    }
                };
                if let Some(why) = hold_problem(k, self.format, self.target) {
                    p.refused_keys.push(n);
                    if p.refused.len() < MAX_MESSAGES {
                        p.refused.push((n, k.key.to_vec(), why));
                    }
                }
                p.last_end = end;
                if p.keys.len() == p.keys.capacity() {
                    // Grown in steps, not doubled: parts wait for the join, and a doubled
                    // vector is a quarter empty on average.
                    p.keys.reserve_exact(KEYS_STEP);
                }
                let hash = xxhash_rust::xxh3::xxh3_64(&k.key);
                p.keys.push((hash, pack(k.offset, k.expire_at_ms.is_some(), output)));
                return;
            }
            Record::SelectDb { db } => {
                // A run of SELECTDB records counts as its last.
                if let Some((m, Ev::SelectDb(..))) = p.events.last()
                    && *m == n
                {
                    p.events.pop();
                }
                Ev::SelectDb(*db, at)
            }
            Record::Aux { key, value } => {
                if p.aux_names.contains(key.as_ref()) {
                    Ev::Other
                } else if p.aux_names.len() >= MAX_AUX || p.aux_bytes + key.len() + value.len() > MAX_AUX_BYTES {
                    p.aux_over += 1;
                    Ev::Other
                } else {
                    p.aux_bytes += key.len() + value.len();
                    p.aux_names.insert(key.to_vec());
                    Ev::Aux(key.to_vec(), value.to_vec())
                }
            }
            Record::Function { source } => Ev::Function(source.to_vec()),
            Record::FunctionPreGa { name, .. } => Ev::FunctionPreGa(name.to_vec()),
            Record::ModuleAux { module, when, payload } => Ev::ModuleAux(module.0, *when, payload.to_vec()),
            Record::ResizeDb { .. } | Record::SlotInfo { .. } | Record::SlotImport { .. } => Ev::Other,
        };
        // Only the first record after a key record that is not a key makes a gap (`Ev::Other`).
        if matches!(ev, Ev::Other) && !after_key {
            return;
        }
        p.events.push((n, ev));
    }

    fn join(&self, part: Box<dyn Any + Send>, _db: u64, trailer: Option<&Trailer>) {
        let Ok(p) = part.downcast::<PartScan>() else { return };
        let mut guard = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        let j = &mut *guard;
        j.aux_dropped += p.aux_over;
        let PartScan { keys, events, ends, last_end, unassigned, refused_keys, refused, .. } = *p;
        let part = PartKeys {
            keys: &keys,
            ends: &ends,
            last_end,
            unassigned: &unassigned,
            refused_keys: &refused_keys,
            refused: &refused,
        };
        let mut done = 0usize;
        for (before, ev) in events {
            let before = before as usize;
            for n in done..before {
                self.key(j, &part, n);
            }
            done = before;
            let sc = &mut j.sc;
            if sc.sections.last().is_some_and(|x| x.first_key != 0) && !matches!(ev, Ev::SelectDb(..)) {
                j.gap = true;
            }
            match ev {
                Ev::Aux(key, value) => {
                    // Only the first field of each name counts (`choose_aux`); names and bytes
                    // are bounded, so a file of a million AUX records costs no more than a few.
                    if j.aux_names.contains(&key) {
                        continue;
                    }
                    if j.aux_names.len() >= MAX_AUX || j.aux_bytes + key.len() + value.len() > MAX_AUX_BYTES {
                        j.aux_dropped += 1;
                        continue;
                    }
                    j.aux_bytes += key.len() + value.len();
                    j.aux_names.insert(key.clone());
                    sc.aux.push((key, value));
                }
                Ev::SelectDb(db, at) => {
                    match sc.sections.last_mut() {
                        // A section without a key is reused: a run of SELECTDB records (or a file
                        // of millions of them) costs one section, not one each.
                        Some(last) if last.first_key == 0 => *last = Section::new(at, db),
                        last => {
                            if let Some(last) = last {
                                last.end = at;
                            }
                            sc.sections.push(Section::new(at, db));
                        }
                    }
                    j.gap = false;
                    j.db = db;
                    j.route = self.router.db(db);
                }
                Ev::Function(source) => sc.functions.push(source),
                Ev::FunctionPreGa(name) => {
                    sc.refused_total += 1;
                    sc.refused.push(format!(
                        "{}: function {} is in the Redis 7.0 release-candidate format, which no GA server loads",
                        self.name,
                        quoted(&name)
                    ));
                }
                Ev::ModuleAux(module, when, payload) => sc.module_aux.push((module, when, payload)),
                Ev::Other => {}
            }
        }
        for n in done..keys.len() {
            self.key(j, &part, n);
        }
        if let Some(t) = trailer {
            j.trailer = Some(*t);
        }
    }
}

/// The key records of a part, and what is noted of them on the side.
struct PartKeys<'p> {
    keys: &'p [(u64, u64)],
    ends: &'p [(u32, u64)],
    last_end: u64,
    refused_keys: &'p [u32],
    unassigned: &'p [(u32, u16, Vec<u8>)],
    refused: &'p [(u32, Vec<u8>, String)],
}

impl Gather<'_> {
    /// Replays key record `n` of a part in db `j.db`.
    fn key(&self, j: &mut Joined, part: &PartKeys<'_>, n: usize) {
        let (hash, packed) = part.keys[n];
        let (offset, ttl, output) = unpack(packed);
        let number = n as u32;
        let sc = &mut j.sc;
        sc.keys += 1;
        *sc.src_dbs.entry(j.db).or_default() += 1;
        // A key left out below makes its section no longer one piece.
        let pure = sc.sections.last().is_some_and(|x| x.pure);
        if let Some(last) = sc.sections.last_mut() {
            last.pure = false;
        }
        let db = match j.route {
            DbRoute::To(db) => db,
            DbRoute::Skip => {
                sc.skipped += 1;
                return;
            }
            DbRoute::Reject => {
                *sc.rejected_dbs.entry(j.db).or_default() += 1;
                return;
            }
        };
        if output == NO_OUTPUT {
            sc.unassigned += 1;
            if sc.examples.len() < MAX_EXAMPLES
                && let Some((_, slot, key)) = part.unassigned.iter().find(|x| x.0 == number)
            {
                sc.examples.push((*slot, key.clone()));
            }
            return;
        }
        if part.refused_keys.binary_search(&number).is_ok() {
            sc.refused_total += 1;
            if sc.refused.len() < MAX_MESSAGES
                && let Some((_, key, why)) = part.refused.iter().find(|x| x.0 == number)
            {
                sc.refused.push(format!("{}: db {}, key {}: {why}", self.name, j.db, quoted(key)));
            }
        }
        // Where the record ends: at the next record (noted when not a key record).
        let end = match part.ends.binary_search_by_key(&number, |x| x.0) {
            Ok(i) => part.ends[i].1,
            Err(_) => part.keys.get(n + 1).map_or(part.last_end, |k| unpack(k.1).0),
        };
        if let Some(last) = sc.sections.last_mut() {
            last.pure = if last.first_key == 0 {
                last.first_key = offset;
                pure
            } else {
                pure && !j.gap
            };
            last.keys += 1;
            last.expires += ttl as u64;
            last.keys_end = end;
        }
        j.gap = false;
        let o = usize::from(output);
        if let Some(r) = &mut sc.routes {
            r.push(o, offset, end, ttl);
        }
        let c = sc.counts[o].entry(db).or_insert(DbPlan { db, ..Default::default() });
        c.keys += 1;
        c.expires += ttl as u64;
        if self.detect {
            let fp = fingerprint_hashed(db, hash);
            sc.keys_set.push(fp, KeyLoc::new(self.input, offset, ttl).payload());
        }
    }
}
