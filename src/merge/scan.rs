//! What pass 1 records of one input: its sections (runs of records under one source db) and
//! everything else the plan and the conflict resolution read (aux fields, functions, counts,
//! key fingerprints).

use std::collections::BTreeMap;

use super::DbPlan;
use crate::rdb::keyset::SpilledBuckets;
use crate::rdb::types::Format;

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
}
