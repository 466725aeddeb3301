//! The engine behind `rdbtool info`: what a backup holds, from one pass of the reader (values are
//! measured, not decoded).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::Serialize;

use crate::error::Error;
use crate::rdb::module::ModuleType;
use crate::rdb::reader::{Reader, Record};
use crate::rdb::types::{Flavor, Kind};
use crate::verify::DbCounts;

pub const LARGEST: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct Aux {
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub key: Vec<u8>,
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Function {
    /// From the library's shebang (`#!lua name=mylib`).
    pub library: String,
    pub engine: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModuleInfo {
    pub name: String,
    pub encver: u64,
    /// "aux" for MODULE_AUX records, "values" for keys of the module's type.
    pub seen_as: &'static str,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Usage {
    pub count: u64,
    /// Serialized value bytes.
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct BigKey {
    pub bytes: u64,
    pub db: u64,
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub key: Vec<u8>,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub encoding: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub file: String,
    pub bytes: u64,
    pub magic: &'static str,
    pub version: u32,
    pub aux: Vec<Aux>,
    pub functions: Vec<Function>,
    pub modules: Vec<ModuleInfo>,
    pub keys: u64,
    pub dbs: Vec<DbCounts>,
    pub types: BTreeMap<Kind, Usage>,
    /// Per on-disk encoding (the names redis-check-rdb uses).
    pub encodings: BTreeMap<&'static str, Usage>,
    pub largest: Vec<BigKey>,
    /// Stored CRC-64 as 16 hex digits (not checked here: that is `verify`'s job).
    pub stored_checksum: Option<String>,
    pub trailing_bytes: u64,
    /// Set when the file could not be read to its end; the figures then cover what came before.
    #[serde(serialize_with = "ser_error")]
    pub error: Option<Error>,
}

fn ser_error<S: serde::Serializer>(e: &Option<Error>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => serde::Serialize::serialize(&crate::verify::ErrorEntry::from(e), s),
        None => s.serialize_none(),
    }
}

/// `#!lua name=mylib ...` -> ("mylib", "lua").
fn library_name(source: &[u8]) -> (String, String) {
    let first = source.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(first);
    let mut engine = String::new();
    let mut name = String::new();
    if let Some(rest) = line.strip_prefix("#!") {
        let mut parts = rest.split_whitespace();
        engine = parts.next().unwrap_or_default().to_owned();
        for p in parts {
            if let Some(n) = p.strip_prefix("name=") {
                name = n.to_owned();
            }
        }
    }
    (name, engine)
}

pub fn gather(name: &str, data: &[u8], now_ms: i64) -> Result<Info, Error> {
    gather_pass(name, data, &crate::pass::Pages::unmapped(data.len()), now_ms)
}

/// `gather` of a mapped input whose pages (`pages`, with this pass as its one consumer) are
/// given back behind the reader: RSS stays flat.
pub fn gather_pass(name: &str, data: &[u8], pages: &crate::pass::Pages<'_>, now_ms: i64) -> Result<Info, Error> {
    let mut lane = pages.lane();
    let mut reader = Reader::new(data)?;
    let format = reader.format();
    let mut info = Info {
        file: name.to_owned(),
        bytes: data.len() as u64,
        magic: if format.flavor == Flavor::Valkey { "VALKEY" } else { "REDIS" },
        version: format.version,
        aux: Vec::new(),
        functions: Vec::new(),
        modules: Vec::new(),
        keys: 0,
        dbs: Vec::new(),
        types: BTreeMap::new(),
        encodings: BTreeMap::new(),
        largest: Vec::new(),
        stored_checksum: None,
        trailing_bytes: 0,
        error: None,
    };
    let mut modules: BTreeMap<(String, u64, &'static str), u64> = BTreeMap::new();
    let mut largest: BinaryHeap<Reverse<(u64, u64, u64, u8)>> = BinaryHeap::new(); // (bytes, db, key offset, type)
    let mut db_index: BTreeMap<u64, usize> = BTreeMap::new();
    while let Some(rec) = reader.next() {
        // Nothing before this record is read again (the record itself borrows from its bytes).
        lane.upto(reader.record_offset() as usize);
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                info.error = Some(e);
                break;
            }
        };
        match rec {
            Record::Aux { key, value } => info.aux.push(Aux { key: key.into_owned(), value: value.into_owned() }),
            Record::Function { source } => {
                let (library, engine) = library_name(&source);
                info.functions.push(Function { library, engine, bytes: source.len() as u64 });
            }
            Record::FunctionPreGa { name, engine, code } => info.functions.push(Function {
                library: String::from_utf8_lossy(&name).into_owned(),
                engine: String::from_utf8_lossy(&engine).into_owned(),
                bytes: code.len() as u64,
            }),
            Record::ModuleAux { module, .. } => {
                *modules.entry((module.name(), module.encver(), "aux")).or_default() += 1;
            }
            Record::Key(k) => {
                let i = *db_index.entry(k.db).or_insert_with(|| {
                    info.dbs.push(DbCounts { db: k.db, ..Default::default() });
                    info.dbs.len() - 1
                });
                let d = &mut info.dbs[i];
                d.keys += 1;
                if let Some(t) = k.expire_at_ms {
                    d.expires += 1;
                    if t < now_ms {
                        d.already_expired += 1;
                    }
                }
                let size = k.value.bytes.len() as u64;
                let kind = k.value.kind();
                let u = info.types.entry(kind).or_default();
                u.count += 1;
                u.bytes += size;
                let u = info.encodings.entry(k.value.encoding()).or_default();
                u.count += 1;
                u.bytes += size;
                if kind == Kind::Module {
                    let mut c = crate::rdb::cursor::Cursor::new(k.value.bytes, k.value.offset);
                    if let Ok(id) = c.len("module type id") {
                        let t = ModuleType(id);
                        *modules.entry((t.name(), t.encver(), "values")).or_default() += 1;
                    }
                }
                // A min-heap of the LARGEST biggest so far: most keys lose to its smallest.
                if largest.len() < LARGEST || largest.peek().is_some_and(|Reverse(min)| size > min.0) {
                    largest.push(Reverse((size, k.db, k.key_offset, k.value.type_byte)));
                    if largest.len() > LARGEST {
                        largest.pop();
                    }
                }
            }
            _ => {}
        }
    }
    info.dbs.sort_by_key(|d| d.db);
    info.keys = info.dbs.iter().map(|d| d.keys).sum();
    info.modules = modules
        .into_iter()
        .map(|((name, encver, seen_as), count)| ModuleInfo { name, encver, seen_as, count })
        .collect();
    let mut big: Vec<_> = largest.into_iter().map(|Reverse(x)| x).collect();
    big.sort_by(|a, b| b.cmp(a));
    for (bytes, db, key_offset, type_byte) in big {
        // Re-read the few winners rather than keeping every key while scanning.
        let mut c = crate::rdb::cursor::Cursor::new(data, 0);
        c.seek(key_offset as usize);
        let key = c.str_cow("key")?.into_owned();
        let (kind, encoding) = crate::rdb::types::describe(type_byte, format).unwrap_or((Kind::Module, "unknown"));
        info.largest.push(BigKey { bytes, db, key, kind, encoding });
    }
    if let Some(t) = reader.trailer() {
        info.stored_checksum = t.stored_checksum.map(|c| format!("{c:016x}"));
        info.trailing_bytes = t.trailing_bytes;
    }
    Ok(info)
}
