//! The record reader: header, opcodes and key records over one borrowed byte slice.
//!
//! `Reader` is an iterator of `Result<Record>`. It checks each value only as far as needed to find
//! where it ends; the `RawValue` it hands out is then walked (validated, decoded) on demand. After
//! the EOF opcode, `trailer()` tells the stored checksum and what follows it. The first error ends
//! the iteration.

use std::borrow::Cow;

use crate::error::{Error, ErrorKind, Result};
use crate::rdb::cursor::Cursor;
use crate::rdb::module::{self, MetaClass, ModuleType};
use crate::rdb::types::{Flavor, Format, describe, min_version_of_type};
use crate::rdb::value::RawValue;
use crate::rdb::walk::skip_value;

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

pub mod opcode {
    pub const KEY_META_OR_SLOT_IMPORT: u8 = 0xF3;
    pub const SLOT_INFO: u8 = 0xF4;
    pub const FUNCTION2: u8 = 0xF5;
    pub const FUNCTION_PRE_GA: u8 = 0xF6;
    pub const MODULE_AUX: u8 = 0xF7;
    pub const IDLE: u8 = 0xF8;
    pub const FREQ: u8 = 0xF9;
    pub const AUX: u8 = 0xFA;
    pub const RESIZEDB: u8 = 0xFB;
    pub const EXPIRETIME_MS: u8 = 0xFC;
    pub const EXPIRETIME: u8 = 0xFD;
    pub const SELECTDB: u8 = 0xFE;
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

#[derive(Debug, Clone)]
pub struct KeyRecord<'a> {
    pub db: u64,
    pub key: Cow<'a, [u8]>,
    /// File offset of the key string (to re-read it when confirming duplicates).
    pub key_offset: u64,
    pub expire_at_ms: Option<i64>,
    pub idle_s: Option<u64>,
    pub freq: Option<u8>,
    pub meta: Option<KeyMeta<'a>>,
    pub value: RawValue<'a>,
    /// File offset of the record's first byte (its first modifier, or the type byte).
    pub offset: u64,
}

#[derive(Debug, Clone)]
pub enum Record<'a> {
    Aux {
        key: Cow<'a, [u8]>,
        value: Cow<'a, [u8]>,
    },
    SelectDb {
        db: u64,
    },
    ResizeDb {
        keys: u64,
        expires: u64,
    },
    /// A function library (FUNCTION2): its full source, shebang first.
    Function {
        source: Cow<'a, [u8]>,
    },
    /// A Redis 7.0-rc function record; GA Redis refuses files holding one.
    FunctionPreGa {
        name: Cow<'a, [u8]>,
        engine: Cow<'a, [u8]>,
        code: Cow<'a, [u8]>,
    },
    ModuleAux {
        module: ModuleType,
        when: u64,
        payload: &'a [u8],
    },
    SlotInfo {
        slot: u64,
        keys: u64,
        expires: u64,
    },
    /// Valkey 9: an unfinished slot import.
    SlotImport {
        job: Cow<'a, [u8]>,
        ranges: Vec<(u64, u64)>,
    },
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

pub struct Reader<'a> {
    data: &'a [u8],
    c: Cursor<'a>,
    format: Format,
    db: u64,
    trailer: Option<Trailer>,
    stopped: bool,
    record_start: u64,
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
    pub fn new(data: &'a [u8]) -> Result<Reader<'a>> {
        let format = parse_header(data)?;
        let mut c = Cursor::new(data, 0);
        c.seek(9);
        Ok(Reader { data, c, format, db: 0, trailer: None, stopped: false, record_start: 9 })
    }

    pub fn format(&self) -> Format {
        self.format
    }
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

    fn read_record(&mut self) -> Result<Option<Record<'a>>> {
        let c = &mut self.c;
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
            if self.format.flavor == Flavor::Redis {
                let is_type = describe(op, self.format).is_some();
                let need = if is_type { min_version_of_type(op) } else { min_version_of_opcode(op) };
                if need > self.format.version {
                    let what = if is_type { "value type" } else { "opcode" };
                    return Err(Error::corrupt(
                        op_at,
                        format!(
                            "{what} 0x{op:02x} exists from RDB {need} on, but the header says RDB {}: damaged header?",
                            self.format.version
                        ),
                    ));
                }
            }
            if meta.is_some() && describe(op, self.format).is_none() {
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
                    if describe(t, self.format).is_none() {
                        return Err(Error::corrupt(op_at, format!("unknown opcode or value type 0x{t:02x} ({t})")));
                    }
                    let key_offset = c.offset();
                    let key = c.str_cow("key").map_err(|e| e.in_db(Some(self.db)))?;
                    let vstart = c.pos();
                    let offset = c.offset();
                    if let Err(e) = skip_value(c, t, self.format) {
                        return Err(e.in_key(self.db, &key));
                    }
                    let value = RawValue { type_byte: t, format: self.format, bytes: c.since(vstart), offset };
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
        if self.stopped {
            return None;
        }
        match self.read_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.stopped = true;
                None
            }
            Err(e) => {
                self.stopped = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads the key string stored at `offset` (from `KeyRecord::key_offset`).
pub fn key_at(data: &[u8], offset: u64) -> Result<Cow<'_, [u8]>> {
    let mut c = Cursor::new(data, 0);
    c.seek(offset as usize);
    c.str_cow("key")
}
