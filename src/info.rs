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

/// How many of the largest keys [`Info::largest`] lists.
pub const LARGEST: usize = 10;

/// One AUX field (docs/format.md §4.2), as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Aux {
    /// The field's name (`redis-ver`, `ctime`, ...).
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub key: Vec<u8>,
    /// The field's value, integers as their decimal text.
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub value: Vec<u8>,
}

/// One function library (docs/format.md §4.3).
#[derive(Debug, Clone, Serialize)]
pub struct Function {
    /// From the library's shebang (`#!lua name=mylib`), read as the server reads it; empty when
    /// the server would refuse the shebang.
    pub library: String,
    /// The engine from the shebang (`lua`); empty when there is no shebang.
    pub engine: String,
    /// The size of the library's source (for a 7.0 release-candidate record: of its code).
    pub bytes: u64,
}

/// A module the file needs, seen through its module type name and encoding version.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModuleInfo {
    /// The module type's 9-character name (docs/format.md §7.1).
    pub name: String,
    /// The encoding version in the module type id.
    pub encver: u64,
    /// "aux" for MODULE_AUX records, "values" for keys of the module's type.
    pub seen_as: &'static str,
    /// How many records or keys.
    pub count: u64,
}

/// A count of keys and their size.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Usage {
    /// Keys.
    pub count: u64,
    /// Serialized value bytes.
    pub bytes: u64,
}

/// One of the largest keys by serialized value size.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct BigKey {
    /// Serialized value bytes (the key and its prefixes not counted).
    pub bytes: u64,
    /// The key's database.
    pub db: u64,
    /// The key.
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub key: Vec<u8>,
    /// The value's type.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The value's on-disk encoding name.
    pub encoding: &'static str,
}

/// What one RDB file holds: its header, AUX fields, functions, modules and key counts, from the
/// record reader alone (values are measured by their length, not decoded or validated).
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    /// The name the caller gave the file.
    pub file: String,
    /// The file's size.
    pub bytes: u64,
    /// `REDIS` or `VALKEY`.
    pub magic: &'static str,
    /// The RDB version after the magic.
    pub version: u32,
    /// AUX fields in file order.
    pub aux: Vec<Aux>,
    /// Function libraries in file order.
    pub functions: Vec<Function>,
    /// Modules needed, sorted by name, version and how they were seen.
    pub modules: Vec<ModuleInfo>,
    /// Key records in the file.
    pub keys: u64,
    /// Per database, ascending.
    pub dbs: Vec<DbCounts>,
    /// Per logical type.
    pub types: BTreeMap<Kind, Usage>,
    /// Per on-disk encoding (the names redis-check-rdb uses).
    pub encodings: BTreeMap<&'static str, Usage>,
    /// The [`LARGEST`] largest keys, largest first.
    pub largest: Vec<BigKey>,
    /// Stored CRC-64 as 16 hex digits (not checked here: that is `verify`'s job).
    pub stored_checksum: Option<String>,
    /// Bytes after the checksum (or after EOF when the version has none).
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

/// Reads `data`, an RDB file named `name` in the output, in one pass. `now_ms` (Unix
/// milliseconds) decides which TTLs count as already expired.
///
/// # Errors
///
/// Only an unreadable header, or a largest key that cannot be re-read: damage after the header
/// ends the pass with [`Info::error`] set and the figures up to it.
pub fn gather(name: &str, data: &[u8], now_ms: i64) -> Result<Info, Error> {
    gather_pass(name, data, &crate::pass::Pages::unmapped(data.len()), now_ms)
}

/// `gather` of a mapped input whose pages (`pages`, with this pass as its one consumer) are
/// given back behind the reader: RSS stays flat. A big file is read in parts on the pool's
/// threads (src/rdb/reader.rs `boundaries`), joined in file order.
pub fn gather_pass(name: &str, data: &[u8], pages: &crate::pass::Pages<'_>, now_ms: i64) -> Result<Info, Error> {
    let threads = rayon::current_num_threads();
    gather_parts(name, data, pages, now_ms, crate::rdb::reader::part_size(data.len(), threads), threads)
}

/// `gather` reading the file in parts of about `part` bytes whatever its size: for tests that
/// the figures do not depend on how the file was cut.
#[doc(hidden)]
pub fn gather_in_parts(name: &str, data: &[u8], now_ms: i64, part: usize) -> Result<Info, Error> {
    let pages = crate::pass::Pages::unmapped(data.len());
    gather_parts(name, data, &pages, now_ms, part.max(1), rayon::current_num_threads())
}

/// (bytes, db, key offset, type byte) of a key in the running for [`Info::largest`].
type Big = (u64, u64, u64, u8);

/// The rule of the largest keys: a min-heap of the [`LARGEST`] biggest so far, which most keys
/// lose to. True when `b` went in.
fn offer(heap: &mut BinaryHeap<Reverse<Big>>, b: Big) -> bool {
    if heap.len() < LARGEST || heap.peek().is_some_and(|Reverse(min)| b.0 > min.0) {
        heap.push(Reverse(b));
        if heap.len() > LARGEST {
            heap.pop();
        }
        return true;
    }
    false
}

/// Keys a part lists as having entered its own heap before it hands the rest to the join.
const MAX_OFFERS: usize = 1 << 16;

enum Event {
    Aux(Aux),
    Function(Function),
    SelectDb(u64),
    Keys(crate::parts::KeyCounts),
}

/// One range of the file read on one thread (src/parts.rs: the same joining rules as
/// `verify`'s parts).
struct Part {
    span: crate::parts::Span,
    events: Vec<Event>,
    pending: crate::parts::KeyCounts,
    /// Per type byte: keys and value bytes.
    per_type: Vec<(u64, u64)>,
    modules: BTreeMap<(String, u64, &'static str), u64>,
    /// Every key that entered the part's own heap of largest keys, in file order: a superset of
    /// those that enter the file's heap, which the join offers them to in order (the same
    /// verdicts as one reading). Past `MAX_OFFERS` the part asks to be read again by the join.
    offers: Vec<Big>,
    error: Option<Error>,
    trailer: Option<crate::rdb::reader::Trailer>,
}

impl Part {
    fn flush_keys(&mut self) {
        if let Some(c) = self.pending.take() {
            self.events.push(Event::Keys(c));
        }
    }
}

/// Reads the records from `start` until one starts at or after `end`, in db `db` (`None`: not
/// known). With `heap`, keys are offered to it directly (a part read again by the join).
fn read_part(
    data: &[u8],
    format: crate::rdb::types::Format,
    (start, end): (usize, usize),
    db: Option<u64>,
    now_ms: i64,
    mut lane: Option<crate::pass::Lane<'_, '_>>,
    mut heap: Option<&mut BinaryHeap<Reverse<Big>>>,
) -> Part {
    use crate::rdb::reader::UNKNOWN_DB;
    let mut part = Part {
        span: crate::parts::Span::new(start, db),
        events: Vec::new(),
        pending: Default::default(),
        per_type: vec![(0, 0); 256],
        modules: BTreeMap::new(),
        offers: Vec::new(),
        error: None,
        trailer: None,
    };
    let mut local: BinaryHeap<Reverse<Big>> = BinaryHeap::new();
    let mut reader = Reader::resume(data, format, start, db.unwrap_or(UNKNOWN_DB));
    let mut steps = crate::parts::Steps::new(end);
    loop {
        let tick = |at| {
            if let Some(l) = lane.as_mut() {
                l.upto(at);
            }
            true
        };
        if !steps.go(reader.offset() as usize, &mut part.span, tick) {
            break;
        }
        // Looked at by reference where the reader built it (no record moved per key).
        let read = reader.read_next();
        let rec = match &read {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(_) => {
                part.error = read.err();
                break;
            }
        };
        match rec {
            Record::Aux { key, value } => {
                part.flush_keys();
                part.events.push(Event::Aux(Aux { key: key.to_vec(), value: value.to_vec() }));
            }
            Record::Function { source } => {
                let (engine, library) = crate::rdb::function::describe(source);
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                let (library, engine) = (text(&library.unwrap_or_default()), text(&engine));
                part.flush_keys();
                part.events.push(Event::Function(Function { library, engine, bytes: source.len() as u64 }));
            }
            Record::FunctionPreGa { name, engine, code } => {
                part.flush_keys();
                part.events.push(Event::Function(Function {
                    library: String::from_utf8_lossy(name).into_owned(),
                    engine: String::from_utf8_lossy(engine).into_owned(),
                    bytes: code.len() as u64,
                }));
            }
            Record::ModuleAux { module, .. } => {
                *part.modules.entry((module.name(), module.encver(), "aux")).or_default() += 1;
            }
            Record::SelectDb { db } => {
                let db = *db;
                if part.span.ambiguous_select(db) {
                    break;
                }
                part.flush_keys();
                // Only the last of SELECTDB records in a row counts (keys make their db's slot).
                match part.events.last_mut() {
                    Some(Event::SelectDb(d)) => *d = db,
                    _ => part.events.push(Event::SelectDb(db)),
                }
            }
            Record::Key(k) => {
                part.pending.count(k.expire_at_ms, now_ms);
                let size = k.value.bytes.len() as u64;
                let u = &mut part.per_type[k.value.type_byte as usize];
                u.0 += 1;
                u.1 += size;
                if k.value.kind() == Kind::Module {
                    let mut c = crate::rdb::cursor::Cursor::new(k.value.bytes, k.value.offset);
                    if let Ok(id) = c.len("module type id") {
                        let t = ModuleType(id);
                        *part.modules.entry((t.name(), t.encver(), "values")).or_default() += 1;
                    }
                }
                let big = (size, k.db, k.key_offset, k.value.type_byte);
                match heap.as_deref_mut() {
                    Some(h) => {
                        offer(h, big);
                    }
                    None => {
                        if offer(&mut local, big) && !part.span.again {
                            if part.offers.len() < MAX_OFFERS {
                                part.offers.push(big);
                            } else {
                                // Too many to keep: the join reads the part again.
                                part.span.again = true;
                                part.offers = Vec::new();
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    part.flush_keys();
    part.trailer = reader.trailer();
    part
}

/// The join of `info`'s parts: the figures so far, in file order.
struct InfoJoin<'d> {
    data: &'d [u8],
    format: crate::rdb::types::Format,
    now_ms: i64,
    info: Info,
    modules: BTreeMap<(String, u64, &'static str), u64>,
    largest: BinaryHeap<Reverse<Big>>,
    db_index: BTreeMap<u64, usize>,
    per_type: Vec<(u64, u64)>,
    trailer: Option<crate::rdb::reader::Trailer>,
}

impl crate::parts::Join for InfoJoin<'_> {
    type Part = Part;

    fn span(part: &Part) -> &crate::parts::Span {
        &part.span
    }

    fn again(&mut self, range: std::ops::Range<usize>, db: u64) -> Part {
        let (data, format, now_ms) = (self.data, self.format, self.now_ms);
        read_part(data, format, (range.start, range.end), Some(db), now_ms, None, Some(&mut self.largest))
    }

    fn apply(&mut self, part: Part, db: &mut u64) -> bool {
        let info = &mut self.info;
        let start_db = *db;
        let span = part.span;
        for ev in part.events {
            match ev {
                Event::Aux(a) => info.aux.push(a),
                Event::Function(f) => info.functions.push(f),
                Event::SelectDb(d) => *db = d,
                Event::Keys(c) => {
                    let i = *self.db_index.entry(*db).or_insert_with(|| {
                        info.dbs.push(DbCounts { db: *db, ..Default::default() });
                        info.dbs.len() - 1
                    });
                    let d = &mut info.dbs[i];
                    d.keys += c.n;
                    d.expires += c.expires;
                    d.already_expired += c.expired;
                }
            }
        }
        for (t, (n, b)) in part.per_type.iter().enumerate() {
            self.per_type[t].0 += n;
            self.per_type[t].1 += b;
        }
        for (k, n) in part.modules {
            *self.modules.entry(k).or_default() += n;
        }
        for &(size, d, off, t) in &part.offers {
            offer(&mut self.largest, (size, span.fix(start_db, d), off, t));
        }
        if span.next.is_none() || part.error.is_some() {
            info.error = part.error.map(|mut e| {
                e.db = e.db.map(|d| span.fix(start_db, d));
                e
            });
            self.trailer = part.trailer;
            return false;
        }
        true
    }
}

fn gather_parts(
    name: &str,
    data: &[u8],
    pages: &crate::pass::Pages<'_>,
    now_ms: i64,
    step: usize,
    threads: usize,
) -> Result<Info, Error> {
    let format = crate::rdb::reader::parse_header(data)?;
    let info = Info {
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
    let bounds = crate::rdb::reader::boundaries(data, format, step, &|r| pages.forget(r));
    let abort = std::sync::atomic::AtomicBool::new(false);
    let mut join = InfoJoin {
        data,
        format,
        now_ms,
        info,
        modules: BTreeMap::new(),
        largest: BinaryHeap::new(),
        db_index: BTreeMap::new(),
        per_type: vec![(0u64, 0u64); 256],
        trailer: None,
    };
    crate::parts::read_in_parts(
        &bounds,
        threads,
        &abort,
        |i, range| {
            let lane = pages.lane_over(crate::parts::page_range(&bounds, i, &range));
            if abort.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            Some(read_part(data, format, (range.start, range.end), (i == 0).then_some(0), now_ms, Some(lane), None))
        },
        &mut join,
    );
    let InfoJoin { mut info, modules, largest, per_type, trailer, .. } = join;
    for (t, &(n, b)) in per_type.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let (kind, encoding) = crate::rdb::types::describe(t as u8, format).unwrap_or((Kind::Module, "unknown"));
        let u = info.types.entry(kind).or_default();
        u.count += n;
        u.bytes += b;
        let u = info.encodings.entry(encoding).or_default();
        u.count += n;
        u.bytes += b;
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
    if let Some(t) = trailer {
        info.stored_checksum = t.stored_checksum.map(|c| format!("{c:016x}"));
        info.trailing_bytes = t.trailing_bytes;
    }
    Ok(info)
}
