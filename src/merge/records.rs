//! The records other than keys: AUX fields, function libraries and module AUX data, merged
//! across inputs (identical copies once; different copies under one name are conflicts).

use std::collections::{BTreeSet, HashMap};

use super::conflicts::{Conflict, ConflictKind, Resolution, occurrence};
use super::scan::Scan;
use super::{OnConflict, Options, Source};
use crate::rdb::types::{Flavor, Format};
use crate::rdb::writer::{RdbWriter, WriteError};

use crate::rdb::function::library_name;

/// AUX fields of the output: `redis-ver` / `valkey-ver` from an input of the target format,
/// `redis-bits`, `ctime` = now, then the inputs' other fields (first of each name) except those
/// that describe the source server or file and no longer hold.
pub(super) fn choose_aux(scans: &[Scan], target: Format) -> Vec<(Vec<u8>, Vec<u8>)> {
    const DROPPED: &[&[u8]] = &[
        b"redis-ver",
        b"valkey-ver",
        b"redis-bits",
        b"ctime",
        b"used-mem",
        b"repl-stream-db",
        b"repl-id",
        b"repl-offset",
        b"aof-base",
        b"aof-preamble",
        b"lua",
        b"slot-info",
        b"cluster-asm-task",
        b"cluster-slot-states",
    ];
    let ver_key: &[u8] = if target.flavor == Flavor::Valkey { b"valkey-ver" } else { b"redis-ver" };
    let mut out = Vec::new();
    if let Some(v) = scans.iter().filter(|s| s.format == target).find_map(|s| s.aux.iter().find(|a| a.0 == ver_key)) {
        out.push(v.clone());
    }
    let bits =
        scans.iter().find_map(|s| s.aux.iter().find(|a| a.0 == b"redis-bits")).map_or(b"64".to_vec(), |a| a.1.clone());
    out.push((b"redis-bits".to_vec(), bits));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    out.push((b"ctime".to_vec(), now.to_string().into_bytes()));
    let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
    for s in scans {
        for (k, v) in &s.aux {
            if DROPPED.contains(&k.as_slice()) || !seen.insert(k.clone()) {
                continue;
            }
            out.push((k.clone(), v.clone()));
        }
    }
    out
}

/// Function libraries of all inputs: identical copies once; one name with different code is a
/// conflict that `first` / `last` resolve and `error` / `rename` do not (a library's name is
/// part of its code).
pub(super) fn merge_functions(
    sources: &[Source<'_>],
    scans: &[Scan],
    opts: &Options,
    res: &mut Resolution,
) -> (Vec<Vec<u8>>, usize) {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut by_name: HashMap<Vec<u8>, (usize, Vec<usize>)> = HashMap::new();
    let mut dups = 0;
    let mut clashes: Vec<Vec<u8>> = Vec::new();
    for (i, s) in scans.iter().enumerate() {
        for f in &s.functions {
            let name = library_name(f).unwrap_or_else(|| f.clone());
            match by_name.get_mut(&name) {
                None => {
                    by_name.insert(name, (out.len(), vec![i]));
                    out.push(f.clone());
                }
                Some((at, from)) => {
                    if out[*at] == *f {
                        dups += 1;
                        continue;
                    }
                    if !clashes.contains(&name) {
                        clashes.push(name.clone());
                    }
                    from.push(i);
                    if opts.on_conflict == OnConflict::Last {
                        out[*at] = f.clone();
                    }
                }
            }
        }
    }
    for name in clashes {
        let from = &by_name[&name].1;
        let c = Conflict {
            kind: ConflictKind::Function,
            db: None,
            key: name.clone(),
            occurrences: from.iter().map(|&i| occurrence(sources, i, 0, 0)).collect(),
        };
        res.add(c, opts.on_conflict);
    }
    (out, dups)
}

/// Module AUX records: identical copies once; the same module and phase with different content
/// is a conflict, resolved like functions.
pub(super) fn merge_module_aux(
    sources: &[Source<'_>],
    scans: &[Scan],
    opts: &Options,
    res: &mut Resolution,
) -> Vec<(u64, u64, Vec<u8>)> {
    let mut out: Vec<(u64, u64, Vec<u8>)> = Vec::new();
    let mut from: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    for (i, s) in scans.iter().enumerate() {
        for (m, when, p) in &s.module_aux {
            match out.iter().position(|(m2, w2, _)| m2 == m && w2 == when) {
                None => {
                    out.push((*m, *when, p.clone()));
                    from.insert((*m, *when), vec![i]);
                }
                Some(at) if out[at].2 == *p => {}
                Some(at) => {
                    from.entry((*m, *when)).or_default().push(i);
                    if opts.on_conflict == OnConflict::Last {
                        out[at].2 = p.clone();
                    }
                }
            }
        }
    }
    for ((m, _), inputs) in from.into_iter().filter(|(_, v)| v.len() > 1) {
        let c = Conflict {
            kind: ConflictKind::ModuleAux,
            db: None,
            key: crate::rdb::module::ModuleType(m).name().into_bytes(),
            occurrences: inputs.iter().map(|&i| occurrence(sources, i, 0, 0)).collect(),
        };
        res.add(c, opts.on_conflict);
    }
    out
}

pub(super) fn check_target_records(
    target: Format,
    functions: &[Vec<u8>],
    module_aux: &[(u64, u64, Vec<u8>)],
) -> Option<String> {
    let mut w = RdbWriter::new(std::io::sink(), target);
    if let Some(f) = functions.first()
        && let Err(WriteError::Refused(m)) = w.function(f)
    {
        return Some(format!("{} function libraries: {m}", functions.len()));
    }
    if let Some((m, when, p)) = module_aux.first()
        && let Err(WriteError::Refused(msg)) = w.module_aux(*m, *when, p)
    {
        return Some(format!("{} module aux records: {msg}", module_aux.len()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names() {
        let name = |s: &[u8]| library_name(s).map(String::from_utf8).map(Result::unwrap);
        assert_eq!(name(b"#!lua name=mylib\nredis.register_function(...)").as_deref(), Some("mylib"));
        // Read as the server reads it: quoted, any case.
        assert_eq!(name(b"#!lua \"name=q\"\n").as_deref(), Some("q"));
        assert_eq!(name(b"#!LUA NAME=up\n").as_deref(), Some("up"));
        // Shebangs the server refuses (an unknown argument, no newline) name no library.
        assert_eq!(name(b"#!lua  foo=1 name=x\n"), None);
        assert_eq!(name(b"#!lua name=x"), None);
        assert_eq!(library_name(b"no shebang"), None);
    }
}
