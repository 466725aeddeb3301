//! Keys met more than once in one target db: grouping the fingerprint matches into real
//! collisions (keys compared on their bytes), and the policy's decision for each copy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use super::keyloc::KeyLoc;
use super::route::{DbRoute, Router};
use super::scan::Section;
use super::{DbPlan, MergeError, OnConflict, Options, Source};
use crate::display::quoted;
use crate::error::{Error, ErrorKind};
use crate::rdb::keyset::{SpilledBuckets, fingerprint};
use crate::rdb::reader::{Reader, Record};

/// One place a colliding key comes from.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Occurrence {
    pub file: String,
    pub input: usize,
    pub db: u64,
    /// File offset of the key string.
    pub offset: u64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// The same key from several places.
    Key,
    /// A renamed key that equals another key (existing or renamed).
    Rename,
    /// A function library of the same name with different code.
    Function,
    /// Module AUX data for the same module and phase, with different content.
    ModuleAux,
}

#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub kind: ConflictKind,
    /// Target db (keys); null for functions and module data.
    pub db: Option<u64>,
    /// The key (for `rename`: the name two keys would get), library name, or module type.
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub key: Vec<u8>,
    pub occurrences: Vec<Occurrence>,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            ConflictKind::Key => "key",
            ConflictKind::Rename => "renamed key",
            ConflictKind::Function => "function library",
            ConflictKind::ModuleAux => "module aux data of",
        };
        write!(f, "{what} {}", quoted(&self.key))?;
        if let Some(db) = self.db {
            write!(f, " (target db {db})")?;
        }
        f.write_str(" from ")?;
        for (i, o) in self.occurrences.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match self.kind {
                ConflictKind::Function | ConflictKind::ModuleAux => write!(f, "{}", o.file)?,
                _ => write!(f, "{} db {}", o.file, o.db)?,
            }
        }
        Ok(())
    }
}

/// What pass 2 does with a key record instead of copying it as it is.
#[derive(Debug, Clone)]
pub(super) enum Action {
    Drop,
    Rename(Vec<u8>),
}

pub(super) fn occurrence(sources: &[Source<'_>], input: usize, db: u64, offset: u64) -> Occurrence {
    Occurrence { file: sources[input].name.clone(), input, db, offset }
}

/// The source db of the key string at `offset` in input `input`.
pub(super) fn src_db(sections: &[Vec<Section>], input: usize, offset: u64) -> u64 {
    let s = &sections[input];
    let i = s.partition_point(|x| x.start <= offset);
    s[i.saturating_sub(1)].db
}

/// A key met more than once in one target db: locations in input order, then file order.
pub(super) struct Group {
    pub(super) db: u64,
    pub(super) key: Vec<u8>,
    pub(super) locs: Vec<Located>,
}

/// A key record of pass 1 read again: where it is, where its key string starts and where the
/// record ends (pass 2 copies around it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Located {
    pub(super) loc: KeyLoc,
    pub(super) key_offset: u64,
    pub(super) end: u64,
}

impl Located {
    pub(super) fn input(self) -> usize {
        self.loc.input()
    }
    /// The offset of the key string (what reports and messages give).
    pub(super) fn offset(self) -> u64 {
        self.key_offset
    }
    pub(super) fn has_ttl(self) -> bool {
        self.loc.has_ttl()
    }
}

/// Reads the key record at `l` again: its key and where it lies.
pub(super) fn read_record<'a>(
    sources: &[Source<'a>],
    sections: &[Vec<Section>],
    l: KeyLoc,
) -> Result<(std::borrow::Cow<'a, [u8]>, Located), MergeError> {
    let (i, at) = (l.input(), l.offset());
    let err = |error: Error| MergeError::Input { file: sources[i].name.clone(), error };
    let mut r = Reader::resume_at(sources[i].data, at, src_db(sections, i, at)).map_err(err)?;
    match r.next() {
        Some(Ok(Record::Key(k))) => {
            let end = r.offset();
            give_back(&sources[i], at, end);
            Ok((k.key, Located { loc: l, key_offset: k.key_offset, end }))
        }
        Some(Err(e)) => Err(err(e)),
        _ => Err(err(Error::corrupt(at, "no key record where pass 1 found one: did the input change?"))),
    }
}

/// Records re-read since the last time every input's pages were given back.
static REREAD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Gives back the pages a re-read record (`at..end` of input `s`) faulted in: at once for a big
/// record (a value of megabytes), and all of the input's every 256 re-reads (each maps the 64 KiB
/// around it: 800 small ones held 50 MB on the bench file; a file merged with a copy of itself
/// re-reads every key). Nothing else reads the inputs while collisions are resolved; a page given
/// back comes back on the next read.
fn give_back(s: &Source<'_>, at: u64, end: u64) {
    const AROUND: usize = 64 << 10;
    let Some(input) = s.input else { return };
    let (a, b) = (at as usize, end as usize);
    if b - a >= AROUND {
        input.release(a / AROUND * AROUND..b.div_ceil(AROUND) * AROUND);
    } else if REREAD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 256 == 255 {
        input.release(0..s.data.len());
    }
}

pub(super) fn target_db(router: &dyn Router, db: u64) -> u64 {
    match router.db(db) {
        DbRoute::To(d) => d,
        _ => db,
    }
}

/// The entries of bucket `b` of every input's set, in no particular order.
fn bucket_of_all(sets: &[SpilledBuckets], sources: &[Source<'_>], b: usize) -> Result<Vec<(u64, u64)>, MergeError> {
    let mut all = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        let mut e = set.bucket(b).map_err(|error| MergeError::Input { file: sources[i].name.clone(), error })?;
        all.append(&mut e);
    }
    Ok(all)
}

/// Keys met more than once in one target db, from the sets of every input (`sets[i]` holds
/// input `i`'s keys by fingerprint of target db and key), one bucket at a time.
pub(super) fn find_groups(
    sets: &[SpilledBuckets],
    sources: &[Source<'_>],
    sections: &[Vec<Section>],
    router: &dyn Router,
) -> Result<Vec<Group>, MergeError> {
    let per: Vec<Result<Vec<Group>, MergeError>> = (0..SpilledBuckets::BUCKETS)
        .into_par_iter()
        .map(|bucket| {
            let mut b = bucket_of_all(sets, sources, bucket)?;
            b.sort_unstable();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                let mut j = i + 1;
                while j < b.len() && b[j].0 == b[i].0 {
                    j += 1;
                }
                if j - i > 1 {
                    // Equal fingerprints: group by the keys themselves (and target db).
                    let mut keyed: Vec<(u64, Vec<u8>, Located)> = Vec::with_capacity(j - i);
                    for &(_, p) in &b[i..j] {
                        let l = KeyLoc::from_payload(p);
                        let (k, at) = read_record(sources, sections, l)?;
                        let db = target_db(router, src_db(sections, l.input(), l.offset()));
                        keyed.push((db, k.into_owned(), at));
                    }
                    keyed.sort();
                    let mut a = 0;
                    while a < keyed.len() {
                        let mut z = a + 1;
                        while z < keyed.len() && keyed[z].0 == keyed[a].0 && keyed[z].1 == keyed[a].1 {
                            z += 1;
                        }
                        if z - a > 1 {
                            let mut locs: Vec<Located> = keyed[a..z].iter().map(|x| x.2).collect();
                            locs.sort_unstable();
                            out.push(Group { db: keyed[a].0, key: keyed[a].1.clone(), locs });
                        }
                        a = z;
                    }
                }
                i = j;
            }
            Ok(out)
        })
        .collect();
    let mut groups = Vec::new();
    for p in per {
        groups.extend(p?);
    }
    groups.sort_by_key(|g| g.locs[0].loc);
    Ok(groups)
}

/// A target db and a key.
pub(super) type DbKey = (u64, Vec<u8>);

/// Which of `names` ((target db, key) pairs) are among the keys read in pass 1, and where: the
/// sets are read back once per bucket that holds a name.
pub(super) fn existing_keys(
    sets: &[SpilledBuckets],
    sources: &[Source<'_>],
    sections: &[Vec<Section>],
    router: &dyn Router,
    names: &[&DbKey],
) -> Result<HashMap<DbKey, Located>, MergeError> {
    let mut by_bucket: BTreeMap<usize, Vec<(u64, &DbKey)>> = BTreeMap::new();
    for &n in names {
        let fp = fingerprint(n.0, &n.1);
        by_bucket.entry(SpilledBuckets::bucket_of(fp)).or_default().push((fp, n));
    }
    let by_bucket: Vec<(usize, Vec<(u64, &DbKey)>)> = by_bucket.into_iter().collect();
    let found: Vec<Result<Vec<(DbKey, Located)>, MergeError>> = by_bucket
        .into_par_iter()
        .map(|(bucket, mut wanted)| {
            // Only the entries with a wanted fingerprint, sorted by (fingerprint, location): a
            // scan of the bucket instead of a sort of all of it.
            wanted.sort_unstable_by_key(|w| w.0);
            let mut b = bucket_of_all(sets, sources, bucket)?;
            b.retain(|x| wanted.binary_search_by_key(&x.0, |w| w.0).is_ok());
            b.sort_unstable();
            let mut out = Vec::new();
            for (fp, (db, key)) in wanted {
                let i = b.partition_point(|x| x.0 < fp);
                for &(_, p) in b[i..].iter().take_while(|x| x.0 == fp) {
                    let l = KeyLoc::from_payload(p);
                    if target_db(router, src_db(sections, l.input(), l.offset())) != *db {
                        continue;
                    }
                    let (k, at) = read_record(sources, sections, l)?;
                    if *k == **key {
                        out.push(((*db, key.clone()), at));
                        break;
                    }
                }
            }
            Ok(out)
        })
        .collect();
    let mut all = HashMap::new();
    for f in found {
        all.extend(f?);
    }
    Ok(all)
}

/// Resolved conflicts listed in reports (the rest are counted).
const MAX_LISTED: usize = 100;

/// What the conflict policy decided, before it is applied to the counts and actions.
#[derive(Default)]
pub(super) struct Resolution {
    /// (location, action), locations unique.
    pub(super) actions: Vec<(Located, Action)>,
    /// Unresolved conflicts (all of them: `error` lists every one).
    pub(super) conflicts: Vec<Conflict>,
    /// Resolved conflicts: how many, and the first `MAX_LISTED`.
    pub(super) resolved: usize,
    pub(super) examples: Vec<Conflict>,
}

impl Resolution {
    /// A function or module-data conflict: only `first` / `last` resolve it.
    pub(super) fn add(&mut self, c: Conflict, policy: OnConflict) {
        match policy {
            OnConflict::First | OnConflict::Last => {
                self.resolved += 1;
                if self.examples.len() < MAX_LISTED {
                    self.examples.push(c);
                }
            }
            _ => self.conflicts.push(c),
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn resolve(
    groups: Vec<Group>,
    sets: &[SpilledBuckets],
    sources: &[Source<'_>],
    sections: &[Vec<Section>],
    router: &dyn Router,
    opts: &Options,
    counts: &mut [BTreeMap<u64, DbPlan>],
    res: &mut Resolution,
) -> Result<(), MergeError> {
    let template = opts.rename.clone().unwrap_or_default();
    let stems: Vec<String> = sources.iter().map(|s| file_stem(&s.name)).collect();
    let occurrences = |locs: &[Located]| -> Vec<Occurrence> {
        locs.iter()
            .map(|&l| {
                let (i, off) = (l.input(), l.offset());
                occurrence(sources, i, src_db(sections, i, off), off)
            })
            .collect()
    };
    // Renamed keys: (target db, new name) -> locations renamed to it.
    let mut renamed: HashMap<(u64, Vec<u8>), Vec<Located>> = HashMap::new();
    let mut rename_clash: BTreeSet<(u64, Vec<u8>)> = BTreeSet::new();
    let mut dbs: Vec<(usize, u64, u64)> = Vec::new();
    for g in groups {
        // Twice in one db of one input: the input is corrupt, whatever the policy.
        dbs.clear();
        dbs.extend(g.locs.iter().map(|&l| (l.input(), src_db(sections, l.input(), l.offset()), l.offset())));
        for (a, x) in dbs.iter().enumerate() {
            if let Some(y) = dbs[..a].iter().find(|y| y.0 == x.0 && y.1 == x.1) {
                let e = Error::new(
                    ErrorKind::DuplicateKey,
                    x.2,
                    format!("key already present in this database (first at offset {})", y.2),
                )
                .in_key(x.1, &g.key);
                return Err(MergeError::Input { file: sources[x.0].name.clone(), error: e });
            }
        }
        let conflict = || Conflict {
            kind: ConflictKind::Key,
            db: Some(g.db),
            key: g.key.clone(),
            occurrences: occurrences(&g.locs),
        };
        if opts.on_conflict == OnConflict::Error {
            res.conflicts.push(conflict());
            continue;
        }
        res.resolved += 1;
        if res.examples.len() < MAX_LISTED {
            res.examples.push(conflict());
        }
        let out = router.output(&g.key).unwrap_or(0);
        let plan = counts[out].entry(g.db).or_insert(DbPlan { db: g.db, ..Default::default() });
        match opts.on_conflict {
            OnConflict::Error => {}
            OnConflict::First | OnConflict::Last => {
                let keep = if opts.on_conflict == OnConflict::First { 0 } else { g.locs.len() - 1 };
                for (n, &l) in g.locs.iter().enumerate() {
                    if n == keep {
                        plan.kept += 1;
                        continue;
                    }
                    plan.dropped += 1;
                    plan.keys -= 1;
                    plan.expires -= l.has_ttl() as u64;
                    res.actions.push((l, Action::Drop));
                }
            }
            OnConflict::Rename => {
                for (&l, &(input, db, _)) in g.locs.iter().zip(&dbs) {
                    let name = template.render(db, &g.key, input, &stems[input]);
                    let ttl = l.has_ttl() as u64;
                    // The new name may belong to another output (split).
                    let Some(to) = router.output(&name) else {
                        return Err(MergeError::Rejected {
                            dbs: BTreeMap::new(),
                            unassigned: 1,
                            examples: vec![(crate::slot::key_slot(&name), name)],
                        });
                    };
                    let from = counts[out].get_mut(&g.db).expect("counted in pass 1");
                    from.keys -= 1;
                    from.expires -= ttl;
                    let dst = counts[to].entry(g.db).or_insert(DbPlan { db: g.db, ..Default::default() });
                    dst.keys += 1;
                    dst.expires += ttl;
                    dst.renamed += 1;
                    let e = renamed.entry((g.db, name.clone())).or_default();
                    e.push(l);
                    if e.len() > 1 {
                        rename_clash.insert((g.db, name.clone()));
                    }
                    res.actions.push((l, Action::Rename(name)));
                }
            }
        }
    }
    // A new name must not be an existing key, nor the new name of another key.
    let mut names: Vec<&(u64, Vec<u8>)> = renamed.keys().collect();
    names.sort();
    let found = existing_keys(sets, sources, sections, router, &names)?;
    for k in names {
        let existing = found.get(k).copied();
        if existing.is_some() || rename_clash.contains(k) {
            let mut locs: Vec<Located> = existing.into_iter().collect();
            locs.extend(&renamed[k]);
            res.conflicts.push(Conflict {
                kind: ConflictKind::Rename,
                db: Some(k.0),
                key: k.1.clone(),
                occurrences: occurrences(&locs),
            });
        }
    }
    Ok(())
}

/// A key record pass 2 does not copy as it is.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    /// Offset of the key string (the reader's `key_offset`).
    pub(super) key_offset: u64,
    /// The record: `start..end` in its input.
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) ttl: bool,
    pub(super) action: Action,
}

/// The actions of each input, sorted by offset (pass 2 walks them with its reader, or copies
/// around them).
pub(super) fn by_input(actions: Vec<(Located, Action)>, inputs: usize) -> Vec<Vec<Planned>> {
    let mut out: Vec<Vec<Planned>> = vec![Vec::new(); inputs];
    for (l, action) in actions {
        out[l.input()].push(Planned {
            key_offset: l.key_offset,
            start: l.loc.offset(),
            end: l.end,
            ttl: l.has_ttl(),
            action,
        });
    }
    for v in &mut out {
        v.sort_unstable_by_key(|x| x.key_offset);
    }
    out
}

pub(super) fn file_stem(name: &str) -> String {
    Path::new(name).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| name.to_owned())
}
