//! The RDB writer: a file for one target format, in Redis's writer order (docs/format.md §1): magic,
//! AUX fields, MODULE_AUX (when = 1), FUNCTION2 records, per database SELECTDB + RESIZEDB and its
//! key records, MODULE_AUX (when = 2), EOF and the CRC-64 trailer (§8).
//!
//! Key records are copied from a reader's `KeyRecord`: the modifiers (EXPIRETIME_MS, IDLE, FREQ,
//! KEY_META) are written anew, the key's string and the value are the input's bytes, unchanged,
//! so nothing is decoded or re-encoded. A value is only written when its type byte means the same
//! encoding at the target version (`can_hold`); otherwise the write is refused naming the key.
//!
//! RESIZEDB needs the counts of a database before its first key: the caller declares them in
//! `begin_db`, and the writer checks that exactly that many keys (and keys with a TTL) follow.

use std::io::{self, Write};

use crate::display::quoted;
use crate::pass::Pages;
use crate::rdb::encode::{write_len, write_string};
use crate::rdb::reader::{KeyRecord, MAX_REDIS_VERSION, VALKEY_VERSIONS, opcode};
use crate::rdb::types::{Flavor, Format, describe, min_version_of_type};

/// Small encoded bytes gathered before a write to the underlying file.
const BUF: usize = 1 << 20;

/// Why writing an RDB failed.
#[derive(Debug)]
pub enum WriteError {
    /// The output could not be written.
    Io(io::Error),
    /// The content cannot be written at the target format (the message names the key).
    Refused(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Io(e) => write!(f, "writing: {e}"),
            WriteError::Refused(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for WriteError {}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> WriteError {
        WriteError::Io(e)
    }
}

/// The format of an output for a version number: 1 to 13 (Redis), 80 (Valkey 9).
pub fn target_format(version: u32) -> Option<Format> {
    if (1..=MAX_REDIS_VERSION).contains(&version) {
        Some(Format { flavor: Flavor::Redis, version })
    } else if VALKEY_VERSIONS.contains(&version) {
        Some(Format { flavor: Flavor::Valkey, version })
    } else {
        None
    }
}

/// The 9-byte magic of a format: `REDIS0010`, `VALKEY080`.
pub fn magic(format: Format) -> String {
    match format.flavor {
        Flavor::Redis => format!("REDIS{:04}", format.version),
        Flavor::Valkey => format!("VALKEY{:03}", format.version),
    }
}

/// Whether a file of format `dst` has the opcode `op` (AUX, RESIZEDB, FUNCTION2, ...).
fn has_opcode(dst: Format, min_redis_version: u32) -> bool {
    dst.flavor == Flavor::Valkey || dst.version >= min_redis_version
}

/// Why value type `type_byte` read from a `src` file cannot be copied into a `dst` file, if it
/// cannot: the byte must exist there and mean the same encoding.
pub fn type_problem(type_byte: u8, src: Format, dst: Format) -> Option<String> {
    let here = describe(type_byte, src);
    let there = describe(type_byte, dst);
    let exists = match dst.flavor {
        Flavor::Redis => min_version_of_type(type_byte) <= dst.version,
        Flavor::Valkey => true,
    };
    if here.is_some() && here == there && exists {
        return None;
    }
    let what = here.map_or("unknown encoding", |d| d.1);
    Some(format!("value type {type_byte} ({what}) does not exist in {} files", magic(dst)))
}

/// Why key record `k` (read from a `src` file) cannot be written to a `dst` file, if it cannot.
pub fn can_hold(k: &KeyRecord<'_>, src: Format, dst: Format) -> Result<(), String> {
    match hold_problem(k, src, dst) {
        None => Ok(()),
        Some(p) => Err(format!("db {}, key {}: {p}", k.db, quoted(&k.key))),
    }
}

/// `can_hold`'s reason without the db and key it names (for a caller that learns the db later).
pub fn hold_problem(k: &KeyRecord<'_>, src: Format, dst: Format) -> Option<String> {
    if let Some(p) = type_problem(k.value.type_byte, src, dst) {
        return Some(p);
    }
    if k.meta.is_some() && !(dst.flavor == Flavor::Redis && dst.version >= 13) {
        return Some(format!("key metadata (Redis 8.6 modules) needs RDB 13, not {}", magic(dst)));
    }
    if let Some(ms) = k.expire_at_ms
        && !has_opcode(dst, 3)
        && i32::try_from(ms.div_euclid(1000) + (ms.rem_euclid(1000) != 0) as i64).is_err()
    {
        return Some(format!("expire time {ms} ms does not fit the seconds field of RDB < 3"));
    }
    None
}

/// Counts declared for one database section and counts written so far.
struct Section {
    db: u64,
    keys: u64,
    expires: u64,
    written_keys: u64,
    written_expires: u64,
}

/// What `finish` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Size of the file written, in bytes (header through the checksum).
    pub bytes: u64,
    /// The stored CRC-64 (None below RDB 5, which has none).
    pub checksum: Option<u64>,
}

/// A piece of an input written straight from it: the input (the address of its first byte),
/// the piece's offset and length in it, and its CRC-64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// The input: the address of its first byte.
    pub src: usize,
    /// Offset of the piece in the input.
    pub start: usize,
    /// Length of the piece.
    pub len: usize,
    /// CRC-64 of the piece.
    pub crc: u64,
}

/// Whether key records of a `src` file can be copied byte for byte (modifiers included) into a
/// `dst` file once `can_hold` accepted them: every opcode of the source exists in the target.
pub fn verbatim(src: Format, dst: Format) -> bool {
    src == dst || (src.flavor == Flavor::Redis && (dst.flavor == Flavor::Valkey || src.version <= dst.version))
}

/// Borrowed input bytes shorter than this are copied into the buffer; longer ones are written
/// straight from the input.
const DIRECT: usize = 64 * 1024;
/// Adjacent borrowed bytes are gathered up to this size before they are written.
const MAX_PENDING: usize = 8 << 20;

/// An output that can take a byte range of a file by a copy inside the kernel
/// (`copy_file_range`: from page cache to page cache, never through this process's memory).
pub trait KernelCopy: Write {
    /// Appends `len` bytes of `src` from `offset` on, and returns the CRC-64 of those bytes as
    /// the output now holds them (read back from it: the checksum the writer stores, and the
    /// caller's proof of what was copied, are computed on the output's own bytes). `Ok(None)`
    /// when this output cannot do it and nothing was appended: the caller writes the bytes.
    fn copy_range(&mut self, src: &std::fs::File, offset: u64, len: u64) -> io::Result<Option<u64>> {
        let _ = (src, offset, len);
        Ok(None)
    }
}

impl KernelCopy for Vec<u8> {}
impl KernelCopy for io::Sink {}

/// Writes one RDB file. `'a` is the lifetime of the input files: key records are taken as
/// slices of them, and runs of records that sit next to each other in an input and are copied
/// unchanged go out as one write straight from the input (no copy through a buffer).
pub struct RdbWriter<'a, W: Write> {
    out: W,
    /// Small encoded bytes, written before `pending`.
    buf: Vec<u8>,
    /// `buf` is written out when it reaches this size.
    buf_limit: usize,
    /// Inputs whose pages this writer reports done once written from (see `release_into`).
    releases: Vec<Source<'a>>,
    /// A run of input bytes (input, start, end) not yet written.
    pending: Option<(&'a [u8], usize, usize)>,
    /// Inputs that are files (their bytes, the file): long runs of them go out by `KernelCopy`.
    files: Vec<(&'a [u8], &'a std::fs::File)>,
    /// CRC-64 of the bytes written so far (pieces combined).
    crc: u64,
    /// Whether pieces written straight from an input are listed in `copies`.
    track: bool,
    copies: Vec<Copied>,
    format: Format,
    bytes: u64,
    section: Option<Section>,
}

impl<'a, W: KernelCopy + Send> RdbWriter<'a, W> {
    /// Starts a file of `format` (see `target_format`) by writing its magic.
    pub fn new(out: W, format: Format) -> RdbWriter<'a, W> {
        RdbWriter::with_buffer(out, format, BUF)
    }

    /// `new` with a write buffer of `limit` bytes (at least 4 KiB; writers of many outputs at
    /// once share a memory budget).
    pub fn with_buffer(out: W, format: Format, limit: usize) -> RdbWriter<'a, W> {
        let buf_limit = limit.max(4096);
        let mut w = RdbWriter {
            out,
            buf: Vec::with_capacity(buf_limit.min(64 * 1024)),
            buf_limit,
            releases: Vec::new(),
            pending: None,
            files: Vec::new(),
            crc: 0,
            track: false,
            copies: Vec::new(),
            format,
            bytes: 0,
            section: None,
        };
        w.buf.extend_from_slice(magic(format).as_bytes());
        w
    }

    /// The magic and version being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The offset in the output of the next byte to be written.
    pub fn position(&self) -> u64 {
        self.bytes + self.buf.len() as u64 + self.pending.map_or(0, |(_, a, b)| (b - a) as u64)
    }

    /// Pages of `input` (whose bytes are `src`) that this writer has written out are given back,
    /// the writer being their only consumer: copying a big file keeps RSS flat.
    pub fn release_written(&mut self, src: &'a [u8], input: &'a crate::input::Input) {
        self.releases.push(Source { src, pages: PagesRef::Own(Pages::new(input, 1)), at: 0 });
    }

    /// The writer is one consumer of `pages` (the pages of `src`): it copies from `src` forward,
    /// so once it has written up to an offset, it reports everything before it done.
    pub fn release_into(&mut self, src: &'a [u8], pages: &'a Pages<'a>) {
        self.releases.push(Source { src, pages: PagesRef::Shared(pages), at: 0 });
    }

    /// The bytes `src` are the contents of `file`: runs of them written straight from the input
    /// (`DIRECT` bytes or more) are copied by the kernel when the output can (`KernelCopy`).
    pub fn copy_from_file(&mut self, src: &'a [u8], file: &'a std::fs::File) {
        self.files.push((src, file));
    }

    /// Reports what the writer will not read again of every source (at the end, or before
    /// dropping a writer that stops early).
    pub fn release_all(&mut self) {
        for r in &mut self.releases {
            r.upto(usize::MAX);
        }
    }

    /// The buffer for small encoded bytes, after any pending run (to keep the order).
    fn small(&mut self) -> io::Result<&mut Vec<u8>> {
        self.flush_pending()?;
        Ok(&mut self.buf)
    }

    /// An AUX field; left out (false) when the format predates AUX (RDB < 7).
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> io::Result<bool> {
        if !has_opcode(self.format, 7) {
            return Ok(false);
        }
        let buf = self.small()?;
        buf.push(opcode::AUX);
        write_string(buf, key, false);
        write_string(buf, value, false);
        self.maybe_flush()?;
        Ok(true)
    }

    /// A MODULE_AUX record: `payload` is the module opcode stream after `when`, its EOF included
    /// (the reader's `Record::ModuleAux::payload`).
    pub fn module_aux(&mut self, module: u64, when: u64, payload: &[u8]) -> Result<(), WriteError> {
        if !has_opcode(self.format, 9) {
            return Err(WriteError::Refused(format!(
                "module aux data needs RDB 9 or later, not {}",
                magic(self.format)
            )));
        }
        let buf = self.small()?;
        buf.push(opcode::MODULE_AUX);
        write_len(buf, module);
        write_len(buf, crate::rdb::module::OPCODE_UINT);
        write_len(buf, when);
        buf.extend_from_slice(payload);
        self.maybe_flush()?;
        Ok(())
    }

    /// A function library (FUNCTION2): its whole source.
    pub fn function(&mut self, source: &[u8]) -> Result<(), WriteError> {
        if !has_opcode(self.format, 10) {
            return Err(WriteError::Refused(format!("functions need RDB 10 or later, not {}", magic(self.format))));
        }
        let buf = self.small()?;
        buf.push(opcode::FUNCTION2);
        write_string(buf, source, true);
        self.maybe_flush()?;
        Ok(())
    }

    /// Starts database `db`, which will hold exactly `keys` keys, `expires` of them with a TTL
    /// (SELECTDB, then RESIZEDB from RDB 7 on). Closes the previous section.
    pub fn begin_db(&mut self, db: u64, keys: u64, expires: u64) -> Result<(), WriteError> {
        self.end_db()?;
        let resize = has_opcode(self.format, 7);
        let buf = self.small()?;
        buf.push(opcode::SELECTDB);
        write_len(buf, db);
        if resize {
            buf.push(opcode::RESIZEDB);
            write_len(buf, keys);
            write_len(buf, expires);
        }
        self.section = Some(Section { db, keys, expires, written_keys: 0, written_expires: 0 });
        self.maybe_flush()?;
        Ok(())
    }

    fn end_db(&mut self) -> Result<(), WriteError> {
        if let Some(s) = self.section.take()
            && (s.written_keys != s.keys || s.written_expires != s.expires)
        {
            return Err(WriteError::Refused(format!(
                "db {}: declared {} keys ({} with TTL) but {} ({}) were written: did an input change while it was read?",
                s.db, s.keys, s.expires, s.written_keys, s.written_expires
            )));
        }
        Ok(())
    }

    /// Copies key record `k`, read from `src` (the whole input file, of format `src_format`),
    /// into the current database section; `rename` writes it under another name.
    pub fn key(
        &mut self,
        k: &KeyRecord<'a>,
        src: &'a [u8],
        src_format: Format,
        rename: Option<&[u8]>,
    ) -> Result<(), WriteError> {
        let Some(section) = &mut self.section else {
            return Err(WriteError::Refused("a key record outside a database section (no begin_db)".into()));
        };
        section.written_keys += 1;
        if section.written_keys > section.keys {
            return Err(WriteError::Refused(format!(
                "db {}: more than the {} keys declared: did an input change while it was read?",
                section.db, section.keys
            )));
        }
        if k.expire_at_ms.is_some() {
            section.written_expires += 1;
            if section.written_expires > section.expires {
                return Err(WriteError::Refused(format!(
                    "db {}: more than the {} keys with TTL declared: did an input change while it was read?",
                    section.db, section.expires
                )));
            }
        }
        can_hold(k, src_format, self.format).map_err(WriteError::Refused)?;
        let range = |a: u64, b: u64| {
            usize::try_from(a)
                .ok()
                .zip(usize::try_from(b).ok())
                .filter(|(a, b)| a <= b && *b <= src.len())
                .ok_or_else(|| WriteError::Refused(format!("key {}: offsets outside its input", quoted(&k.key))))
        };
        let value_end = k.value.offset + k.value.bytes.len() as u64;
        if rename.is_none() && verbatim(src_format, self.format) {
            // The whole record as stored: modifiers, type, key string, value.
            let (a, b) = range(k.offset, value_end)?;
            self.borrowed(src, a, b)?;
            return Ok(());
        }
        let f = self.format;
        let buf = self.small()?;
        if let Some(ms) = k.expire_at_ms {
            if has_opcode(f, 3) {
                buf.push(opcode::EXPIRETIME_MS);
                buf.extend_from_slice(&ms.to_le_bytes());
            } else {
                // Checked by can_hold: whole seconds, rounded up, fit an i32.
                let s = ms.div_euclid(1000) + (ms.rem_euclid(1000) != 0) as i64;
                buf.push(opcode::EXPIRETIME);
                buf.extend_from_slice(&(s as i32).to_le_bytes());
            }
        }
        // LRU / LFU hints exist from RDB 9; older targets go without them.
        if has_opcode(f, 9) {
            if let Some(idle) = k.idle_s {
                buf.push(opcode::IDLE);
                write_len(buf, idle);
            }
            if let Some(freq) = k.freq {
                buf.push(opcode::FREQ);
                buf.push(freq);
            }
        }
        if let Some(m) = &k.meta {
            buf.push(opcode::KEY_META_OR_SLOT_IMPORT);
            buf.extend_from_slice(m.raw);
        }
        buf.push(k.value.type_byte);
        match rename {
            Some(name) => write_string(buf, name, true),
            None => {
                // The key's string as stored (raw, integer or LZF form): it ends where the value starts.
                let (a, b) = range(k.key_offset, k.value.offset)?;
                buf.extend_from_slice(&src[a..b]);
            }
        }
        let (a, b) = range(k.value.offset, value_end)?;
        self.borrowed(src, a, b)?;
        Ok(())
    }

    /// Copies `src[a..b]` as it is: whole key records of a `src` file, `keys` of them and
    /// `expires` with a TTL, that the caller has read and found writable here (`can_hold`, and
    /// `verbatim` formats). The written file's check is what vouches for the bytes.
    pub fn records(&mut self, src: &'a [u8], a: usize, b: usize, keys: u64, expires: u64) -> Result<(), WriteError> {
        let Some(section) = &mut self.section else {
            return Err(WriteError::Refused("key records outside a database section (no begin_db)".into()));
        };
        section.written_keys += keys;
        section.written_expires += expires;
        if section.written_keys > section.keys || section.written_expires > section.expires {
            return Err(WriteError::Refused(format!(
                "db {}: more keys than the {} ({} with TTL) declared: did an input change while it was read?",
                section.db, section.keys, section.expires
            )));
        }
        if a > b || b > src.len() {
            return Err(WriteError::Refused(format!("records at {a}..{b} lie outside their input")));
        }
        // In pieces, so that writes (and page releases) go in steps.
        let mut at = a;
        while at < b {
            let end = b.min(at + MAX_PENDING);
            self.borrowed(src, at, end)?;
            at = end;
        }
        Ok(())
    }

    /// Ends the file: closes the last section, writes EOF and the checksum, flushes, and hands
    /// back the output. MODULE_AUX records with when = 2 go before this.
    pub fn finish(self) -> Result<(W, Written), WriteError> {
        self.finish_inner().map(|(w, written, _)| (w, written))
    }

    fn finish_inner(mut self) -> Result<(W, Written, Vec<Copied>), WriteError> {
        self.end_db()?;
        self.small()?.push(opcode::EOF);
        self.flush_buf()?;
        let checksum = has_opcode(self.format, 5).then_some(self.crc);
        if let Some(c) = checksum {
            self.out.write_all(&c.to_le_bytes())?;
            self.bytes += 8;
        }
        self.out.flush()?;
        self.release_all();
        let copies = std::mem::take(&mut self.copies);
        Ok((self.out, Written { bytes: self.bytes, checksum }, copies))
    }

    /// Appends `src[a..b]`, joining it to the pending run when it directly follows it.
    fn borrowed(&mut self, src: &'a [u8], a: usize, b: usize) -> io::Result<()> {
        if let Some((p, start, end)) = &mut self.pending
            && std::ptr::eq(*p, src)
            && *end == a
        {
            *end = b;
            if b - *start >= MAX_PENDING {
                self.flush_pending()?;
            }
            return Ok(());
        }
        self.flush_pending()?;
        self.pending = Some((src, a, b));
        Ok(())
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        if let Some((src, a, b)) = self.pending.take() {
            let s = &src[a..b];
            if s.len() < DIRECT.min(self.buf_limit) {
                // Copied: the source's bytes up to `b` are not read again.
                self.buf.extend_from_slice(s);
                self.release_upto(src, b);
                return self.maybe_flush();
            }
            self.flush_buf()?;
            self.emit(s, Some((src, a)))?;
            self.release_upto(src, b);
        }
        Ok(())
    }

    /// The writer is done with `src` up to `b` (reported in steps: see `Source::upto`).
    #[inline]
    fn release_upto(&mut self, src: &'a [u8], b: usize) {
        if let Some(r) = self.releases.iter_mut().find(|r| std::ptr::eq(r.src, src)) {
            r.upto(b);
        }
    }

    #[inline]
    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= self.buf_limit { self.flush_buf() } else { Ok(()) }
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            let r = self.emit(&buf, None);
            self.buf = buf;
            self.buf.clear();
            r?;
        }
        Ok(())
    }

    /// Checksums and writes `s` (when `from` is given: `src[a..]` of an input, written straight
    /// from it, by the kernel when the input is a file and the output can); large pieces do both
    /// at once on two threads.
    fn emit(&mut self, s: &[u8], from: Option<(&[u8], usize)>) -> io::Result<()> {
        if let Some((src, a)) = from
            && let Some(&(_, file)) = self.files.iter().find(|(f, _)| std::ptr::eq(*f, src))
        {
            match self.out.copy_range(file, a as u64, s.len() as u64)? {
                Some(c) => {
                    self.emitted(c, s.len(), from);
                    return Ok(());
                }
                // This output cannot: every run is written from the map from now on.
                None => self.files.clear(),
            }
        }
        let (c, written) = if s.len() >= 1 << 20 {
            let out = &mut self.out;
            rayon::join(|| crate::crc::crc64(s), || out.write_all(s))
        } else {
            (crate::crc::crc64(s), self.out.write_all(s))
        };
        written?;
        self.emitted(c, s.len(), from);
        Ok(())
    }

    /// `len` bytes with CRC-64 `c` are out (copied from `src[a..]` when `from` is given).
    fn emitted(&mut self, c: u64, len: usize, from: Option<(&[u8], usize)>) {
        self.crc = if self.bytes == 0 { c } else { crate::crc::combine(self.crc, c, len as u64) };
        self.bytes += len as u64;
        if let (true, Some((src, a))) = (self.track, from) {
            self.copies.push(Copied { src: src.as_ptr() as usize, start: a, len, crc: c });
        }
    }

    /// From now on, pieces written straight from an input are listed with their CRC-64
    /// (`finish_tracked`): a caller can check that the input still holds what an earlier pass
    /// read, without reading those bytes again.
    pub fn track_copies(&mut self) {
        self.track = true;
    }

    /// `finish`, with the pieces listed since `track_copies`.
    pub fn finish_tracked(self) -> Result<(W, Written, Vec<Copied>), WriteError> {
        self.finish_inner()
    }
}

/// The pages of one source a writer copies from.
enum PagesRef<'a> {
    Own(Pages<'a>),
    Shared(&'a Pages<'a>),
}

struct Source<'a> {
    src: &'a [u8],
    pages: PagesRef<'a>,
    /// Reported done up to here.
    at: usize,
}

impl Source<'_> {
    /// Written up to `to`: the bytes before it are done (copies go forward in a source; a copy
    /// behind `at` reports nothing). Reported in steps of 1 MiB (small records come one by one),
    /// the rest by `release_all` or the end of the source.
    #[inline]
    fn upto(&mut self, to: usize) {
        let to = to.min(self.src.len());
        if to >= self.at + (1 << 20) || (to == self.src.len() && to > self.at) {
            match &self.pages {
                PagesRef::Own(p) => p.done(self.at..to),
                PagesRef::Shared(p) => p.done(self.at..to),
            }
            self.at = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::reader::{Reader, Record};

    const V10: Format = Format { flavor: Flavor::Redis, version: 10 };

    fn input() -> Vec<u8> {
        let mut w = RdbWriter::new(Vec::new(), V10);
        w.aux(b"redis-ver", b"7.0.15").unwrap();
        w.finish().unwrap().0
    }

    #[test]
    fn empty_file_layout() {
        let data = input();
        assert_eq!(&data[..9], b"REDIS0010");
        assert_eq!(data[9], opcode::AUX);
        let n = data.len();
        assert_eq!(data[n - 9], opcode::EOF);
        let crc = u64::from_le_bytes(data[n - 8..].try_into().unwrap());
        assert_eq!(crc, crate::crc::crc64(&data[..n - 8]));
        assert_eq!(magic(Format { flavor: Flavor::Valkey, version: 80 }), "VALKEY080");
        // RDB 4: no AUX, no checksum.
        let mut w = RdbWriter::new(Vec::new(), Format { flavor: Flavor::Redis, version: 4 });
        assert!(!w.aux(b"x", b"y").unwrap());
        assert_eq!(w.finish().unwrap().0, b"REDIS0004\xff");
    }

    #[test]
    fn copies_key_records_and_checks_counts() {
        // Build a source by hand: db 0 with key "12345" (INT16 form) -> "v", TTL, IDLE.
        let mut src = b"REDIS0010".to_vec();
        src.extend_from_slice(&[0xFE, 0x00, 0xFB, 0x01, 0x01]);
        src.push(0xFC);
        src.extend_from_slice(&1_900_000_000_000i64.to_le_bytes());
        src.extend_from_slice(&[0xF8, 0x05]);
        src.extend_from_slice(&[0x00, 0xC1, 0x39, 0x30, 0x01, b'v']);
        src.push(0xFF);
        let crc = crate::crc::crc64(&src);
        src.extend_from_slice(&crc.to_le_bytes());
        let recs: Vec<Record> = Reader::new(&src).unwrap().collect::<Result<_, _>>().unwrap();
        let Some(Record::Key(k)) = recs.iter().find(|r| matches!(r, Record::Key(_))).cloned() else { panic!() };

        let mut w = RdbWriter::new(Vec::new(), V10);
        w.begin_db(0, 2, 1).unwrap();
        w.key(&k, &src, V10, None).unwrap();
        w.key(&k, &src, V10, Some(b"renamed")).unwrap_err(); // second key has a TTL: 2 expires > 1 declared
        let mut w = RdbWriter::new(Vec::new(), V10);
        w.begin_db(0, 2, 2).unwrap();
        w.key(&k, &src, V10, None).unwrap();
        w.key(&k, &src, V10, Some(b"renamed")).unwrap();
        let (out, written) = w.finish().unwrap();
        assert_eq!(written.bytes as usize, out.len());
        // The same bytes as the input for the first record (no AUX in either).
        assert_eq!(&out[..9], &src[..9]);
        assert_eq!(&out[14..src.len() - 9], &src[14..src.len() - 9]);
        type Row = (Vec<u8>, Option<i64>, Option<u64>, Vec<u8>);
        let keys: Vec<Row> = Reader::new(&out)
            .unwrap()
            .filter_map(|r| match r.unwrap() {
                Record::Key(k) => Some((k.key.to_vec(), k.expire_at_ms, k.idle_s, k.value.bytes.to_vec())),
                _ => None,
            })
            .collect();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].0, b"12345");
        assert_eq!(keys[1].0, b"renamed");
        assert_eq!(keys[1].1, Some(1_900_000_000_000));
        assert_eq!(keys[1].2, Some(5));
        assert_eq!(keys[1].3, b"\x01v");
        let rep = crate::verify::verify_bytes("out", &out, &Default::default());
        assert!(rep.ok, "{:?}", rep.errors);

        // Declared more than written: finish refuses.
        let mut w = RdbWriter::new(Vec::new(), V10);
        w.begin_db(0, 3, 0).unwrap();
        assert!(matches!(w.finish(), Err(WriteError::Refused(_))));
        // Keys outside a section are refused.
        let mut w = RdbWriter::new(Vec::new(), V10);
        assert!(w.key(&k, &src, V10, None).is_err());
    }

    #[test]
    fn refuses_types_and_opcodes_the_target_lacks() {
        let v9 = Format { flavor: Flavor::Redis, version: 9 };
        let valkey = Format { flavor: Flavor::Valkey, version: 80 };
        let v12 = Format { flavor: Flavor::Redis, version: 12 };
        assert!(type_problem(16, V10, v9).is_some()); // listpack hash needs 10
        assert!(type_problem(16, V10, V10).is_none());
        assert!(type_problem(14, v9, V10).is_none()); // quicklist v1 still loads
        assert!(type_problem(22, valkey, v12).is_some()); // same byte, other meaning
        assert!(type_problem(25, v12, valkey).is_some());
        assert!(type_problem(21, Format { flavor: Flavor::Redis, version: 11 }, valkey).is_none());
        let mut w = RdbWriter::new(Vec::new(), v9);
        assert!(matches!(w.function(b"#!lua name=x\n"), Err(WriteError::Refused(_))));
        assert!(w.module_aux(1, 2, &[0]).is_ok());
        let mut w = RdbWriter::new(Vec::new(), Format { flavor: Flavor::Redis, version: 8 });
        assert!(w.module_aux(1, 2, &[0]).is_err());
        assert_eq!(target_format(80), Some(valkey));
        assert_eq!(target_format(0), None);
        assert_eq!(target_format(14), None);
        assert_eq!(target_format(79), None);
    }
}
