//! The record reader: header, opcodes and key records over one borrowed byte slice.
//!
//! `Reader` is an iterator of `Result<Record>`. It checks each value only as far as needed to find
//! where it ends; the `RawValue` it hands out is then walked (validated, decoded) on demand. After
//! the EOF opcode, `trailer()` tells the stored checksum and what follows it. The first error ends
//! the iteration.
//!
//! Just over 700 lines: the boundary search for reading in parts (`boundary_after`,
//! `boundaries`, `part_size`) and `resync` step the reader's private cursor record by record;
//! moving them out needs a small crate-visible stepping interface on `Reader` first.

use std::borrow::Cow;

use crate::error::{Error, ErrorKind, Result};
use crate::rdb::cursor::Cursor;
use crate::rdb::module::{self, MetaClass, ModuleType};
use crate::rdb::types::{Flavor, Format, describe, min_version_of_type};
use crate::rdb::value::RawValue;
use crate::rdb::walk::{Walker, skip_value};

/// The newest Redis RDB version this reader knows.
pub const MAX_REDIS_VERSION: u32 = 13;
/// The Valkey RDB versions this reader knows (`VALKEY080`).
pub const VALKEY_VERSIONS: std::ops::RangeInclusive<u32> = 80..=80;

/// The first Redis RDB version whose files can hold this opcode (see `min_version_of_type`).
fn min_version_of_opcode(op: u8) -> u32 {
    match op {
        opcode::EOF | opcode::SELECTDB | opcode::EXPIRETIME => 1,
        opcode::EXPIRETIME_MS => 3,
        opcode::AUX | opcode::RESIZEDB => 7,
        opcode::FREQ | opcode::IDLE | opcode::MODULE_AUX => 9,
        opcode::FUNCTION_PRE_GA | opcode::FUNCTION2 => 10,
        opcode::SLOT_INFO => 12,
        _ => 13,
    }
}

/// Opcode bytes (§4.1). Any other byte at a record boundary must be a value type (§5.1).
pub mod opcode {
    /// 0xF3: KEY_META under `REDIS` (RDB 13), SLOT_IMPORT under `VALKEY` (§4.4).
    pub const KEY_META_OR_SLOT_IMPORT: u8 = 0xF3;
    /// 0xF4: cluster slot sizing hint (RDB 12+).
    pub const SLOT_INFO: u8 = 0xF4;
    /// 0xF5: one function library's source (RDB 10+, §4.3).
    pub const FUNCTION2: u8 = 0xF5;
    /// 0xF6: a function in the Redis 7.0 release-candidate layout.
    pub const FUNCTION_PRE_GA: u8 = 0xF6;
    /// 0xF7: module auxiliary data (§7.3).
    pub const MODULE_AUX: u8 = 0xF7;
    /// 0xF8: LRU idle time of the next key, seconds.
    pub const IDLE: u8 = 0xF8;
    /// 0xF9: LFU counter of the next key, one byte.
    pub const FREQ: u8 = 0xF9;
    /// 0xFA: an AUX name/value pair (§4.2).
    pub const AUX: u8 = 0xFA;
    /// 0xFB: database sizing hint after SELECTDB.
    pub const RESIZEDB: u8 = 0xFB;
    /// 0xFC: expire time of the next key, Unix ms.
    pub const EXPIRETIME_MS: u8 = 0xFC;
    /// 0xFD: expire time of the next key, Unix seconds (4 bytes; not written since RDB 3).
    pub const EXPIRETIME: u8 = 0xFD;
    /// 0xFE: switch to a database.
    pub const SELECTDB: u8 = 0xFE;
    /// 0xFF: end of the records; the CRC-64 follows from RDB 5 on (§8).
    pub const EOF: u8 = 0xFF;
}

/// Redis 8.6 key metadata (KEY_META), carried as-is. Only the bytes are kept (a key record is
/// moved once per key, so it stays small); `classes` reads them again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyMeta<'a> {
    /// The record after the 0xF3 byte: class count and per-class specs and opcode streams.
    pub raw: &'a [u8],
}

impl KeyMeta<'_> {
    /// The classes present (the reader already checked that the bytes parse).
    pub fn classes(&self) -> Vec<MetaClass> {
        module::skip_key_meta(&mut Cursor::new(self.raw, 0), false).unwrap_or_default()
    }
}

/// One key with its prefixes (expire, idle, LFU, key metadata) and its value, not yet decoded.
#[derive(Debug, Clone)]
pub struct KeyRecord<'a> {
    /// The database it is in (the last SELECTDB before it; 0 without one).
    pub db: u64,
    /// The key's bytes: borrowed from the file, owned when stored as an integer or LZF-compressed (§3.2).
    pub key: Cow<'a, [u8]>,
    /// File offset of the key string (to re-read it when confirming duplicates).
    pub key_offset: u64,
    /// Absolute expire time in Unix ms (0xFD seconds are converted); `None` without a TTL.
    pub expire_at_ms: Option<i64>,
    /// LRU idle time in seconds (opcode 0xF8), when stored.
    pub idle_s: Option<u64>,
    /// LFU counter (opcode 0xF9), when stored.
    pub freq: Option<u8>,
    /// Redis 8.6 module key metadata (opcode 0xF3), when stored.
    pub meta: Option<KeyMeta<'a>>,
    /// The value: its type byte and its bytes, found but not yet validated.
    pub value: RawValue<'a>,
    /// File offset of the record's first byte (its first modifier, or the type byte).
    pub offset: u64,
}

/// One record of an RDB file, in file order (§1.1).
#[derive(Debug, Clone)]
pub enum Record<'a> {
    /// An AUX field (§4.2); name and value as strings, integer encodings already turned into text.
    Aux {
        /// The field's name (`redis-ver`, `ctime`, ...).
        key: Cow<'a, [u8]>,
        /// The field's value.
        value: Cow<'a, [u8]>,
    },
    /// SELECTDB: the keys that follow are in this database.
    SelectDb {
        /// The database number.
        db: u64,
    },
    /// RESIZEDB: the sizes of the current database, a hint for the loader.
    ResizeDb {
        /// Keys in the database.
        keys: u64,
        /// How many of them have a TTL.
        expires: u64,
    },
    /// A function library (FUNCTION2): its full source, shebang first.
    Function {
        /// The library's source.
        source: Cow<'a, [u8]>,
    },
    /// A Redis 7.0-rc function record; GA Redis refuses files holding one.
    FunctionPreGa {
        /// The function's name.
        name: Cow<'a, [u8]>,
        /// Its engine's name.
        engine: Cow<'a, [u8]>,
        /// Its code.
        code: Cow<'a, [u8]>,
    },
    /// MODULE_AUX (§7.3): data a module saves outside of any key.
    ModuleAux {
        /// The module's type id (§7.1).
        module: ModuleType,
        /// 1 before the keyspace, 2 after it.
        when: u64,
        /// The module's opcode stream (§7.2), ending with its 0 opcode, as bytes of the file.
        payload: &'a [u8],
    },
    /// SLOT_INFO: sizing hint for one cluster slot (Redis 7.4+ in cluster mode).
    SlotInfo {
        /// The slot, 0-16383.
        slot: u64,
        /// Keys in the slot.
        keys: u64,
        /// How many of them have a TTL.
        expires: u64,
    },
    /// Valkey 9: an unfinished slot import.
    SlotImport {
        /// The import's job name.
        job: Cow<'a, [u8]>,
        /// The slots being imported, as inclusive `(start, end)` ranges, `start <= end < 16384`.
        ranges: Vec<(u64, u64)>,
    },
    /// A key record.
    Key(KeyRecord<'a>),
}

/// What follows the EOF opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Offset of the 0xFF byte.
    pub eof_offset: u64,
    /// The stored CRC-64 (RDB >= 5); `Some(0)` means the writer did not compute one.
    pub stored_checksum: Option<u64>,
    /// Bytes after the checksum (an AOF tail for RDB-preamble AOF files, else garbage).
    pub trailing_bytes: u64,
}

/// Reads an RDB held in one byte slice: parses the header, then yields each [`Record`] in file order,
/// checking each value only as far as needed to find its end. Stops after the EOF opcode
/// (see [`Reader::trailer`]) or at the first error.
pub struct Reader<'a> {
    data: &'a [u8],
    c: Cursor<'a>,
    format: Format,
    db: u64,
    trailer: Option<Trailer>,
    stopped: bool,
    record_start: u64,
    /// The bytes before this offset were asked for (see `prefetch_lines`).
    asked: usize,
    /// What each byte at a record boundary is in this format (see [`ByteClass`]), looked up once
    /// per record instead of matching the type and version tables for every key.
    classes: [ByteClass; 256],
}

/// What a byte at a record boundary is, for one format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteClass {
    /// A value type this format can hold.
    Type,
    /// An opcode (or a byte no record starts with: the opcode match refuses it).
    Other,
    /// A value type newer than the header's version (an error at this byte).
    TypeTooNew,
    /// An opcode newer than the header's version.
    OpcodeTooNew,
}

/// The [`ByteClass`] table of `format`: made once per known format and copied from there (a
/// boundary search resumes a reader at thousands of positions), made afresh for any other.
fn byte_classes(format: Format) -> [ByteClass; 256] {
    use std::sync::OnceLock;
    // Redis 0..=MAX_REDIS_VERSION, then the Valkey versions.
    const REDIS: usize = MAX_REDIS_VERSION as usize + 1;
    const N: usize = REDIS + (*VALKEY_VERSIONS.end() - *VALKEY_VERSIONS.start()) as usize + 1;
    static TABLES: [OnceLock<[ByteClass; 256]>; N] = [const { OnceLock::new() }; N];
    let slot = match format.flavor {
        Flavor::Redis if format.version <= MAX_REDIS_VERSION => format.version as usize,
        Flavor::Valkey if VALKEY_VERSIONS.contains(&format.version) => {
            REDIS + (format.version - VALKEY_VERSIONS.start()) as usize
        }
        _ => return compute_byte_classes(format),
    };
    *TABLES[slot].get_or_init(|| compute_byte_classes(format))
}

fn compute_byte_classes(format: Format) -> [ByteClass; 256] {
    let mut classes = [ByteClass::Other; 256];
    for (op, class) in classes.iter_mut().enumerate() {
        let op = op as u8;
        let is_type = describe(op, format).is_some();
        let need = if is_type { min_version_of_type(op) } else { min_version_of_opcode(op) };
        *class = match (is_type, format.flavor == Flavor::Redis && need > format.version) {
            (true, false) => ByteClass::Type,
            (true, true) => ByteClass::TypeTooNew,
            (false, false) => ByteClass::Other,
            (false, true) => ByteClass::OpcodeTooNew,
        };
    }
    classes
}

/// Parses the 9-byte magic: `REDIS` + 4 digits, or `VALKEY` + 3 digits.
pub fn parse_header(data: &[u8]) -> Result<Format> {
    let digits = |d: &[u8]| -> Option<u32> {
        d.iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as u32))
    };
    if data.len() < 9 {
        return Err(Error::truncated(0, format!("{} bytes cannot hold the 9-byte RDB header", data.len())));
    }
    let format = if &data[..5] == b"REDIS" {
        let v = digits(&data[5..9]).ok_or_else(|| Error::corrupt(5, "RDB version is not 4 digits"))?;
        Format { flavor: Flavor::Redis, version: v }
    } else if &data[..6] == b"VALKEY" {
        let v = digits(&data[6..9]).ok_or_else(|| Error::corrupt(6, "RDB version is not 3 digits"))?;
        Format { flavor: Flavor::Valkey, version: v }
    } else {
        return Err(Error::corrupt(0, "not an RDB file: the header is neither REDIS#### nor VALKEY###"));
    };
    match format.flavor {
        Flavor::Redis if format.version == 0 => {
            Err(Error::new(ErrorKind::Unsupported, 5, "RDB version 0 is not supported"))
        }
        Flavor::Redis if format.version >= 80 => Err(Error::corrupt(
            5,
            format!("RDB version {} under the REDIS magic (Valkey writes VALKEY for >= 80)", format.version),
        )),
        Flavor::Redis if format.version > MAX_REDIS_VERSION => Err(Error::new(
            ErrorKind::Unsupported,
            5,
            format!("RDB version {} is newer than this tool knows (1 to {MAX_REDIS_VERSION})", format.version),
        )),
        Flavor::Valkey if format.version < 80 => {
            Err(Error::corrupt(6, format!("RDB version {} under the VALKEY magic (must be >= 80)", format.version)))
        }
        Flavor::Valkey if !VALKEY_VERSIONS.contains(&format.version) => Err(Error::new(
            ErrorKind::Unsupported,
            6,
            format!("Valkey RDB version {} is newer than this tool knows (80)", format.version),
        )),
        _ => Ok(format),
    }
}

impl<'a> Reader<'a> {
    /// Parses the header; an error when it is not `REDIS` + 4 digits or `VALKEY` + 3 digits of a
    /// version this reader knows (§2). Reading starts right after it, at offset 9.
    pub fn new(data: &'a [u8]) -> Result<Reader<'a>> {
        let format = parse_header(data)?;
        Ok(Reader::resume(data, format, 9, 0))
    }

    /// A reader of `data` (a whole file, header included) that starts at `offset`, a record
    /// boundary an earlier pass over the same data found (a key record's `offset`), as if
    /// database `db` were selected. [`Reader::resume`] without the header known.
    pub fn resume_at(data: &'a [u8], offset: u64, db: u64) -> Result<Reader<'a>> {
        let format = parse_header(data)?;
        if offset < 9 || offset > data.len() as u64 {
            return Err(Error::corrupt(offset, "no record starts here"));
        }
        Ok(Reader::resume(data, format, offset as usize, db))
    }

    /// The magic and version from the header.
    pub fn format(&self) -> Format {
        self.format
    }
    /// The whole input the reader works on.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
    /// Current read position (file offset).
    pub fn offset(&self) -> u64 {
        self.c.offset()
    }
    /// File offset where the record last returned (or the failed one) starts.
    pub fn record_offset(&self) -> u64 {
        self.record_start
    }
    /// Set once the EOF opcode has been read.
    pub fn trailer(&self) -> Option<Trailer> {
        self.trailer
    }
    /// The database of the keys read now (the last SELECTDB; 0 before any).
    pub fn db(&self) -> u64 {
        self.db
    }

    /// A reader of a file whose header said `format`, starting at `pos` (a record boundary) in
    /// database `db` ([`UNKNOWN_DB`] when the caller does not know it yet and will fix it up).
    pub fn resume(data: &'a [u8], format: Format, pos: usize, db: u64) -> Reader<'a> {
        let mut c = Cursor::new(data, 0);
        c.seek(pos);
        Reader {
            data,
            c,
            format,
            db,
            trailer: None,
            stopped: false,
            record_start: pos as u64,
            asked: pos,
            classes: byte_classes(format),
        }
    }

    /// `next`, validating each key record's value completely as it finds its end (one walk
    /// over its bytes instead of a skip and then a walk). `verdict` gets the value's verdict
    /// (left as it is for records other than keys): exactly what `RawValue::validate` gives on
    /// the value. The record's own result is what `next` gives, `Ok(None)` for its `None`.
    ///
    /// Returned as one `Result<Option<Record>>` (the layout of a `Record`, the record built in
    /// place) for a caller that looks at it by reference: no nested `Option<Result<(..)>>` to
    /// rebuild, no 144-byte record moved per key.
    #[inline]
    pub fn next_validated(&mut self, w: &mut Walker, verdict: &mut Result<()>) -> Result<Option<Record<'a>>> {
        self.read_next_with(&mut Validating { w, verdict })
    }

    /// `read_next` where `p` walks each key's value in place to find its end (one pass over
    /// its bytes instead of a skip and then a walk); a value it does not walk to its end is
    /// skipped as `read_next` does.
    #[inline]
    pub fn read_next_with<P: InPlace>(&mut self, p: &mut P) -> Result<Option<Record<'a>>> {
        self.read_unless_stopped(|r| r.read_record_with(Some(p)))
    }

    /// `next` as one `Result<Option<Record>>` (`Ok(None)` for its `None`), like
    /// [`Reader::next_validated`] without the walk: for a loop that looks at each record by
    /// reference where it was built.
    #[inline]
    pub fn read_next(&mut self) -> Result<Option<Record<'a>>> {
        self.read_unless_stopped(Self::read_record)
    }

    /// The one place that keeps `stopped`: nothing is read once the reader has stopped, and
    /// the end (`Ok(None)`) and an error both stop it.
    #[inline(always)]
    fn read_unless_stopped(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<Option<Record<'a>>>,
    ) -> Result<Option<Record<'a>>> {
        if self.stopped {
            return Ok(None);
        }
        let read = read(self);
        if !matches!(read, Ok(Some(_))) {
            self.stopped = true;
        }
        read
    }

    fn read_record(&mut self) -> Result<Option<Record<'a>>> {
        self.read_record_with(None::<&mut Validating<'_>>)
    }

    #[inline(always)]
    fn read_record_with<P: InPlace>(&mut self, mut w: Option<&mut P>) -> Result<Option<Record<'a>>> {
        let c = &mut self.c;
        c.prefetch_page_ahead();
        self.asked = c.prefetch_lines(self.asked);
        let start = c.offset();
        self.record_start = start;
        let mut expire_at_ms = None;
        let mut idle_s = None;
        let mut freq = None;
        let mut meta = None;
        loop {
            if c.is_empty() {
                return Err(Error::truncated(c.offset(), "file ends without the EOF opcode (0xFF)"));
            }
            let op_at = c.offset();
            let op = c.u8("opcode")?;
            let class = self.classes[op as usize];
            if matches!(class, ByteClass::TypeTooNew | ByteClass::OpcodeTooNew) {
                let is_type = class == ByteClass::TypeTooNew;
                let need = if is_type { min_version_of_type(op) } else { min_version_of_opcode(op) };
                let what = if is_type { "value type" } else { "opcode" };
                return Err(Error::corrupt(
                    op_at,
                    format!(
                        "{what} 0x{op:02x} exists from RDB {need} on, but the header says RDB {}: damaged header?",
                        self.format.version
                    ),
                ));
            }
            if meta.is_some() && class != ByteClass::Type {
                return Err(Error::corrupt(op_at, format!("key metadata followed by 0x{op:02x}, not a value type")));
            }
            match op {
                opcode::EOF => {
                    let eof_offset = op_at;
                    let stored_checksum = if self.format.version >= 5 || self.format.flavor == Flavor::Valkey {
                        Some(u64::from_le_bytes(c.array("CRC-64 checksum")?))
                    } else {
                        None
                    };
                    let trailing_bytes = c.remaining() as u64;
                    self.trailer = Some(Trailer { eof_offset, stored_checksum, trailing_bytes });
                    return Ok(None);
                }
                opcode::SELECTDB => {
                    self.db = c.len("database number")?;
                    return Ok(Some(Record::SelectDb { db: self.db }));
                }
                opcode::EXPIRETIME => {
                    expire_at_ms = Some(i32::from_le_bytes(c.array("expire time")?) as i64 * 1000);
                }
                opcode::EXPIRETIME_MS => {
                    expire_at_ms = Some(c.i64le("expire time")?);
                }
                opcode::RESIZEDB => {
                    let keys = c.len("RESIZEDB key count")?;
                    let expires = c.len("RESIZEDB expire count")?;
                    return Ok(Some(Record::ResizeDb { keys, expires }));
                }
                opcode::AUX => {
                    let key = c.str_cow("AUX field name")?;
                    let value = c.str_cow("AUX field value")?;
                    return Ok(Some(Record::Aux { key, value }));
                }
                opcode::FREQ => freq = Some(c.u8("LFU frequency")?),
                opcode::IDLE => idle_s = Some(c.len("LRU idle time")?),
                opcode::MODULE_AUX => {
                    let module = ModuleType(c.len("module id")?);
                    let at = c.offset();
                    if c.len("module aux when opcode")? != module::OPCODE_UINT {
                        return Err(Error::corrupt(at, "module aux: 'when' is not a UINT opcode"));
                    }
                    let when = c.len("module aux when")?;
                    let body = c.pos();
                    module::skip_opcodes(c, false)?;
                    return Ok(Some(Record::ModuleAux { module, when, payload: c.since(body) }));
                }
                opcode::FUNCTION_PRE_GA => {
                    let name = c.str_cow("function name")?;
                    let engine = c.str_cow("function engine")?;
                    if c.len("function has-description flag")? != 0 {
                        c.str("function description")?;
                    }
                    let code = c.str_cow("function code")?;
                    return Ok(Some(Record::FunctionPreGa { name, engine, code }));
                }
                opcode::FUNCTION2 => {
                    let source = c.str_cow("function library")?;
                    return Ok(Some(Record::Function { source }));
                }
                opcode::SLOT_INFO => {
                    let slot = c.len("slot info slot")?;
                    let keys = c.len("slot info key count")?;
                    let expires = c.len("slot info expire count")?;
                    return Ok(Some(Record::SlotInfo { slot, keys, expires }));
                }
                opcode::KEY_META_OR_SLOT_IMPORT if self.format.flavor == Flavor::Valkey => {
                    let at = c.offset();
                    let job = c.str_cow("slot import job name")?;
                    let n = c.count("slot import range count", 2)?;
                    let mut ranges = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        let (a, b) = (c.len("slot range start")?, c.len("slot range end")?);
                        if a > b || b >= 16384 {
                            return Err(Error::corrupt(at, format!("slot import range {a}-{b} is invalid")));
                        }
                        ranges.push((a, b));
                    }
                    return Ok(Some(Record::SlotImport { job, ranges }));
                }
                opcode::KEY_META_OR_SLOT_IMPORT => {
                    if meta.is_some() {
                        return Err(Error::corrupt(op_at, "two key metadata records for one key"));
                    }
                    let body = c.pos();
                    module::skip_key_meta(c, false)?;
                    meta = Some(KeyMeta { raw: c.since(body) });
                }
                t => {
                    if class != ByteClass::Type {
                        return Err(Error::corrupt(op_at, format!("unknown opcode or value type 0x{t:02x} ({t})")));
                    }
                    let key_offset = c.offset();
                    let key = c.str_cow("key").map_err(|e| e.in_db(Some(self.db)))?;
                    let vstart = c.pos();
                    let offset = c.offset();
                    let walked = match w {
                        // Walked in place: its end is where the walk stopped.
                        Some(ref mut w) => w.walk_at(c, t, self.format),
                        None => false,
                    };
                    if !walked {
                        c.seek(vstart);
                        if let Err(e) = skip_value(c, t, self.format) {
                            return Err(e.in_key(self.db, &key));
                        }
                    }
                    let bytes = c.since(vstart);
                    if let (Some(w), false) = (w, walked) {
                        w.missed(t, self.format, bytes, offset);
                    }
                    // Built here from its parts, not from a `RawValue` kept for the call above:
                    // a value stored field by field and copied as 16-byte words stalls the
                    // store forwarding on every key.
                    let value = RawValue { type_byte: t, format: self.format, bytes, offset };
                    return Ok(Some(Record::Key(KeyRecord {
                        db: self.db,
                        key,
                        key_offset,
                        expire_at_ms,
                        idle_s,
                        freq,
                        meta,
                        value,
                        offset: start,
                    })));
                }
            }
        }
    }
}

/// What walks a key's value in place for [`Reader::read_next_with`], the reader's cursor at the
/// value's first byte.
pub trait InPlace {
    /// Walks the value of type `t`, leaving `c` at its end: true when it did. False (`c`
    /// anywhere) when it did not walk it, or the walk failed: the reader then finds the value's
    /// end by skipping it from its start and calls `missed` if that works.
    fn walk_at(&mut self, c: &mut Cursor<'_>, t: u8, format: Format) -> bool;
    /// `walk_at` returned false for the value `bytes`, at file offset `offset`.
    fn missed(&mut self, t: u8, format: Format, bytes: &[u8], offset: u64);
}

/// `next_validated`'s walk: a value validated in place, its verdict in `verdict`.
struct Validating<'v> {
    w: &'v mut Walker,
    verdict: &'v mut Result<()>,
}

impl InPlace for Validating<'_> {
    #[inline(always)]
    fn walk_at(&mut self, c: &mut Cursor<'_>, t: u8, format: Format) -> bool {
        self.w.validate_at(c, t, format).is_ok()
    }
    fn missed(&mut self, t: u8, format: Format, bytes: &[u8], offset: u64) {
        // The walk failed where skipping did not: the verdict, worded as a walk of the
        // value's own bytes words it.
        *self.verdict = validate_raw(self.w, t, format, bytes, offset);
    }
}

/// `RawValue::validate` of a value given by its parts (the path where the walk failed).
#[cold]
#[inline(never)]
fn validate_raw(w: &mut Walker, type_byte: u8, format: Format, bytes: &[u8], offset: u64) -> Result<()> {
    RawValue { type_byte, format, bytes, offset }.validate(w)
}

/// The db of the keys a [`Reader::resume`]d reader reads before its first SELECTDB when its
/// caller does not know it: the caller puts the real one in afterwards.
pub const UNKNOWN_DB: u64 = u64::MAX;

/// Records in a row that must parse at a position for [`boundary_after`] to take it.
const BOUNDARY_RECORDS: usize = 64;
/// Bytes those records may span.
const BOUNDARY_SPAN: usize = 16 << 20;
/// Positions [`boundary_after`] may try, and bytes its attempts may cover in all (most bytes
/// covered are long strings stepped over, not read: this bounds the pathological case).
const BOUNDARY_TRIES: usize = 1 << 9;
const BOUNDARY_BUDGET: usize = 1 << 30;

/// The first position `p` in `from..to` where `BOUNDARY_RECORDS` records in a row parse (or
/// fewer, then the EOF opcode and the checksum at the very end of `data`), and then the start of
/// the last of those records: most likely a record boundary, so that a file can be read in
/// ranges on several cores. A position inside a value (say, between two elements of a big hash)
/// can parse as records for a while, but such a chain, once out of the value, runs in step with
/// the true one; hence the position after the chain, not `p`. Only likely: the reader of the
/// range before must land on it exactly to prove it. `None` when nothing plausible is found
/// within a bounded amount of work. The second value: how far the search read.
pub fn boundary_after(data: &[u8], format: Format, from: usize, to: usize) -> (Option<usize>, usize) {
    // The errors of false starts are thrown away: no context copied into them.
    let _probe = crate::error::Probe::start();
    let mut read_to = from;
    let mut budget = BOUNDARY_BUDGET;
    let mut tries = BOUNDARY_TRIES;
    // Bytes that can start a record in this format (the usual key record, an expire first, a
    // SELECTDB, ...): most positions are turned down by their first byte.
    let mut starts = [false; 256];
    for (op, s) in starts.iter_mut().enumerate() {
        let op = op as u8;
        let is_type = describe(op, format).is_some();
        let need = if is_type { min_version_of_type(op) } else { min_version_of_opcode(op) };
        *s = (is_type || op >= opcode::KEY_META_OR_SLOT_IMPORT)
            && (format.flavor == Flavor::Valkey || need <= format.version);
    }
    for p in from.max(9)..to.min(data.len()) {
        if !starts[data[p] as usize] {
            continue;
        }
        let span = &data[..data.len().min(p + BOUNDARY_SPAN)];
        let mut r = Reader::resume(span, format, p, UNKNOWN_DB);
        let mut ok = true;
        let mut last = p;
        for _ in 0..BOUNDARY_RECORDS {
            last = r.c.pos();
            match r.read_record() {
                Ok(Some(_)) => {}
                Ok(None) => {
                    ok = span.len() == data.len() && r.c.is_empty();
                    break;
                }
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        budget = budget.saturating_sub((r.c.pos() - p).max(1));
        read_to = read_to.max(r.c.pos() + 1);
        tries -= 1;
        if ok {
            return (Some(last), read_to);
        }
        if budget == 0 || tries == 0 {
            return (None, read_to);
        }
    }
    (None, read_to)
}

/// A file is read in parts of about this size (between the two bounds) when more than one
/// thread is there to read them; a file smaller than two parts is read as one.
const MIN_PART: usize = 8 << 20;
const MAX_PART: usize = 32 << 20;

/// The part size for a file of `len` bytes read by `threads` threads (`usize::MAX`: one part).
pub fn part_size(len: usize, threads: usize) -> usize {
    // One thread reads parts too: a part's keys wait for the join, so parts bound that memory.
    if len < 2 * MIN_PART {
        return usize::MAX;
    }
    (len / (threads * 8)).clamp(MIN_PART, MAX_PART)
}

/// Where to cut `data` (a file in `format`) into parts of about `step` bytes, each starting at
/// a likely record boundary ([`boundary_after`], searched on the pool): the first part starts
/// right after the header, at 9. A stretch where no boundary is found joins the part before.
///
/// The search reads ahead of the parts; `release` is given back the stretches it read (to be
/// read again in turn), so that RSS does not grow with the number of parts.
pub fn boundaries(
    data: &[u8],
    format: Format,
    step: usize,
    release: &(dyn Fn(std::ops::Range<usize>) + Sync),
) -> Vec<usize> {
    use rayon::prelude::*;
    let n = data.len() / step.max(1);
    let found: Vec<Option<usize>> = (1..=n)
        .into_par_iter()
        .map(|k| {
            // Inside a big value nothing is found for a while: try further on.
            (0..8).find_map(|t| {
                let from = k * step + t * (step / 8);
                let (found, read_to) = boundary_after(data, format, from, from.saturating_add(step / 8));
                release(from..read_to);
                found
            })
        })
        .collect();
    let mut bounds = vec![9usize];
    for b in found.into_iter().flatten() {
        if b > *bounds.last().unwrap_or(&0) {
            bounds.push(b);
        }
    }
    bounds
}

/// How far past a failed record `resync` searches for the next plausible one.
pub const RESYNC_WINDOW: usize = 64 << 20;
/// Bytes `resync` may parse in all its attempts together (crafted input cannot make it slow).
pub const RESYNC_BUDGET: usize = 4 << 20;

impl<'a> Reader<'a> {
    /// After an error (salvage mode): finds the next position, after the failed record's start,
    /// where a whole key record parses and is followed by something that can follow a record,
    /// and continues from there. Returns the skipped range, or None when nothing plausible is
    /// found within `RESYNC_WINDOW` bytes. Keys found this way may be attributed to the wrong
    /// db if a SELECTDB was lost in the skipped bytes.
    pub fn resync(&mut self) -> Option<(u64, u64)> {
        let from = self.record_start as usize + 1;
        let end = self.data.len().min(from.saturating_add(RESYNC_WINDOW));
        let mut budget = RESYNC_BUDGET;
        let p = (from..end).find(|&p| {
            let (ok, used) = self.plausible_record_at(p);
            budget = budget.saturating_sub(used.max(1));
            ok || budget == 0
        })?;
        if budget == 0 {
            return None;
        }
        self.c.seek(p);
        self.stopped = false;
        self.trailer = None;
        Some((self.record_start, p as u64))
    }

    /// Whether a key record parses at `p`, and how many bytes the attempt read.
    fn plausible_record_at(&self, p: usize) -> (bool, usize) {
        let mut c = Cursor::new(self.data, 0);
        c.seek(p);
        let ok = self.plausible_record(&mut c);
        (ok, c.pos() - p)
    }

    fn plausible_record(&self, c: &mut Cursor<'a>) -> bool {
        if c.peek() == Some(opcode::EXPIRETIME_MS) {
            c.u8("").ok();
            match c.i64le("") {
                Ok(t) if (0..1 << 48).contains(&t) => {}
                _ => return false,
            }
        }
        let Ok(t) = c.u8("") else { return false };
        if describe(t, self.format).is_none() || t == crate::rdb::types::id::MODULE_PRE_GA {
            return false;
        }
        if !matches!(c.str(""), Ok(k) if k.len() <= 1 << 20) || skip_value(c, t, self.format).is_err() {
            return false;
        }
        // What follows must be able to follow a key record.
        match c.peek() {
            None => false,
            Some(next) => describe(next, self.format).is_some() || (0xF4..=0xFF).contains(&next),
        }
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_next().transpose()
    }
}

/// Reads the key string stored at `offset` (from `KeyRecord::key_offset`).
pub fn key_at(data: &[u8], offset: u64) -> Result<Cow<'_, [u8]>> {
    let mut c = Cursor::new(data, 0);
    c.seek(offset as usize);
    c.str_cow("key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_byte_classes_are_those_computed_for_every_format() {
        let redis = (0..=MAX_REDIS_VERSION + 2).map(|version| Format { flavor: Flavor::Redis, version });
        let valkey = (70..=90).map(|version| Format { flavor: Flavor::Valkey, version });
        for format in redis.chain(valkey) {
            // Twice: the first call fills the cache, the second reads it.
            for _ in 0..2 {
                assert_eq!(byte_classes(format), compute_byte_classes(format), "{format:?}");
            }
        }
    }
}
