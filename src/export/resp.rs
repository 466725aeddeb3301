//! Redis protocol output: commands that rebuild each key on a server (`redis-cli --pipe`).
//!
//! Plain mode writes what Redis's own AOF rewrite writes (docs/format.md §11.6): `SET`, and `RPUSH` /
//! `SADD` / `ZADD` / `HSET` in batches of at most `batch` elements per command; streams as one
//! `XADD` per entry, `XSETID` (last id, entries added, max deleted id), then per group `XGROUP
//! CREATE ... ENTRIESREAD`, `XGROUP CREATECONSUMER` for every consumer and `XCLAIM ... TIME
//! RETRYCOUNT JUSTID FORCE` per pending entry; `PEXPIREAT` for key TTLs and `HPEXPIREAT` for hash
//! field TTLs. Module values have no generic command form and go as `RESTORE` payloads.
//!
//! Function libraries go first as `FUNCTION LOAD` (`--no-functions` leaves them out).
//!
//! `--restore` mode writes `RESTORE key ttl payload ABSTTL [REPLACE]`, the payload being the
//! value's bytes from the file framed as a DUMP payload (docs/format.md §9) without re-encoding.

use super::{ExportError, KeyCtx, KeyWriter, Out, all_fields_expired, push_f64, push_i64, push_u64};
use crate::crc::Crc64;
use crate::rdb::cursor::Elem;
use crate::rdb::decimal::format_i64;
use crate::rdb::module::ModuleType;
use crate::rdb::reader::KeyRecord;
use crate::rdb::types::{Flavor, Format, Kind, describe, min_version_of_type};
use crate::rdb::value::{Idmp, Sink, StreamGroup, StreamId, StreamMeta, Validate};
use crate::rdb::walk::Walker;

/// What `RESTORE` does when the key already exists (RedisShake's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum OnBusyKey {
    /// Plain RESTORE: the server answers BUSYKEY and keeps its key (redis-cli --pipe counts the
    /// error and exits non-zero).
    #[default]
    Panic,
    /// RESTORE ... REPLACE.
    Rewrite,
    /// Keep the existing key without an error (a small EVAL script around RESTORE).
    Skip,
}

/// How the RESP format writes keys (`--format resp`).
#[derive(Debug, Clone)]
pub struct RespOptions {
    /// At most this many elements (list items, members, pairs) per command.
    pub batch: usize,
    /// RESTORE payloads instead of data commands.
    pub restore: bool,
    /// With `restore`: what happens when the key exists on the server.
    pub on_busy_key: OnBusyKey,
    /// RDB version written in payload footers; `None` = the file's own version.
    pub target_version: Option<u16>,
    /// `FUNCTION LOAD` the file's function libraries before the keys.
    pub functions: bool,
    /// RESTORE: add `IDLETIME` / `FREQ` from the file's LRU / LFU record (Redis >= 5).
    pub lru_lfu: bool,
    /// Plain streams for servers before 7.0: `XSETID` without `ENTRIESADDED` / `MAXDELETEDID`,
    /// `XGROUP CREATE` without `ENTRIESREAD` (what those servers cannot hold is left out).
    pub legacy_streams: bool,
    /// Plain output without `XGROUP CREATECONSUMER` (servers before 6.2): consumers are created
    /// with `XREADGROUP ... STREAMS key 0` instead.
    pub no_createconsumer: bool,
    /// The longest bulk string the target takes (`proto-max-bulk-len`). A string value or an
    /// element longer than that is refused: Redis also caps a string built with `APPEND` /
    /// `SETRANGE` at that length for every client but its master.
    pub max_bulk: usize,
}

impl Default for RespOptions {
    fn default() -> Self {
        RespOptions {
            batch: 64,
            restore: false,
            on_busy_key: OnBusyKey::Panic,
            target_version: None,
            functions: true,
            lru_lfu: false,
            legacy_streams: false,
            no_createconsumer: false,
            max_bulk: usize::MAX,
        }
    }
}

/// The RESP format: per key, the commands that rebuild it (§11.6) or a RESTORE payload (§9).
pub struct RespWriter {
    opts: RespOptions,
    db: Option<u64>,
    args: Vec<u8>,
    field_ttls: Vec<(i64, Vec<u8>)>,
    warned_meta: bool,
    warned_idmp: bool,
    warnings: Vec<String>,
}

const SKIP_SCRIPT: &[u8] = b"if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end \
return redis.call('RESTORE', KEYS[1], ARGV[1], ARGV[2], 'ABSTTL')";

impl RespWriter {
    /// A writer with these options.
    pub fn new(opts: RespOptions) -> RespWriter {
        RespWriter {
            opts,
            db: None,
            args: Vec::new(),
            field_ttls: Vec::new(),
            warned_meta: false,
            warned_idmp: false,
            warnings: Vec::new(),
        }
    }

    /// `RESTORE key ttl payload ABSTTL [REPLACE]` (or the skip script) for a validated value.
    fn restore(&mut self, k: &KeyRecord<'_>, out: &mut Out<'_>, ctx: &KeyCtx<'_>) -> Result<(), ExportError> {
        let target = self.opts.target_version.unwrap_or(ctx.format.version.min(u16::MAX as u32) as u16);
        check_target(k, ctx.format, target)?;
        let meta = k.meta.as_ref().map(|m| m.raw);
        // An absolute time <= 0 would read as "no TTL": any past time expires the key alike.
        let ttl = k.expire_at_ms.map(|t| t.max(1)).unwrap_or(0);
        let buf = &mut out.buf;
        let skip = self.opts.on_busy_key == OnBusyKey::Skip;
        // RESTORE takes one of IDLETIME and FREQ.
        let lru = k.idle_s.filter(|_| self.opts.lru_lfu && !skip);
        let lfu = k.freq.filter(|_| self.opts.lru_lfu && !skip && lru.is_none());
        let extra = if lru.is_some() || lfu.is_some() { 2 } else { 0 };
        if skip {
            push_header(buf, 6, b"EVAL");
            push_bulk(buf, SKIP_SCRIPT);
            push_bulk(buf, b"1");
            push_bulk(buf, &k.key);
        } else {
            let replace = self.opts.on_busy_key == OnBusyKey::Rewrite;
            push_header(buf, if replace { 6 } else { 5 } + extra, b"RESTORE");
            push_bulk(buf, &k.key);
        }
        push_bulk_i64(buf, ttl);
        // The payload, framed in place: [0xF3 meta] type value version crc.
        let len = meta.map_or(0, |m| 1 + m.len()) + 1 + k.value.bytes.len() + 2 + 8;
        buf.push(b'$');
        push_u64(buf, len as u64);
        buf.extend_from_slice(b"\r\n");
        let mut crc = Crc64::default();
        let start = buf.len();
        if let Some(m) = meta {
            buf.push(0xF3);
            buf.extend_from_slice(m);
        }
        buf.push(k.value.type_byte);
        crc.update(&buf[start..]);
        out.check();
        let buf = &mut out.buf;
        buf.extend_from_slice(k.value.bytes);
        crc.update(k.value.bytes);
        let version = target.to_le_bytes();
        crc.update(&version);
        buf.extend_from_slice(&version);
        buf.extend_from_slice(&crc.finish().to_le_bytes());
        buf.extend_from_slice(b"\r\n");
        if !skip {
            push_bulk(buf, b"ABSTTL");
            if self.opts.on_busy_key == OnBusyKey::Rewrite {
                push_bulk(buf, b"REPLACE");
            }
            if let Some(idle) = lru {
                push_bulk(buf, b"IDLETIME");
                push_bulk_u64(buf, idle);
            } else if let Some(f) = lfu {
                push_bulk(buf, b"FREQ");
                push_bulk_u64(buf, f as u64);
            }
        }
        out.check();
        Ok(())
    }
}

/// Refuses what a server of the target version cannot load: a type byte that does not exist
/// there or means something else there, and key metadata before RDB 13.
fn check_target(k: &KeyRecord<'_>, src: Format, target: u16) -> Result<(), ExportError> {
    let dst = Format::from_dump_version(target);
    let t = k.value.type_byte;
    let name = || crate::display::quoted(&k.key);
    let here = describe(t, src);
    let there = describe(t, dst);
    let ok =
        here.is_some() && here == there && (dst.flavor == Flavor::Valkey || min_version_of_type(t) <= target as u32);
    if !ok {
        let what = here.map_or("unknown encoding", |d| d.1);
        return Err(ExportError::Refused(format!(
            "db {}, key {}: value type {t} ({what}) does not exist at target RDB version {target}; \
             pick a newer --target-rdb-version, or export without --restore",
            k.db,
            name()
        )));
    }
    if k.meta.is_some() && !(dst.flavor == Flavor::Redis && target >= 13) {
        return Err(ExportError::Refused(format!(
            "db {}, key {}: key metadata (Redis 8.6 modules) needs target RDB version 13, not {target}",
            k.db,
            name()
        )));
    }
    Ok(())
}

impl KeyWriter for RespWriter {
    fn key(
        &mut self,
        k: &KeyRecord<'_>,
        w: &mut Walker,
        out: &mut Out<'_>,
        ctx: &KeyCtx<'_>,
    ) -> Result<bool, ExportError> {
        let restore = self.opts.restore || k.value.kind() == Kind::Module;
        if restore {
            // Never hand a server a payload that would not load: validate it fully first.
            w.walk(&k.value, &mut Validate).map_err(|e| ExportError::Input(e.in_key(k.db, &k.key)))?;
        } else if all_fields_expired(k, w, ctx.filter)? {
            return Ok(false);
        }
        if self.db != Some(k.db) {
            push_header(&mut out.buf, 2, b"SELECT");
            push_bulk_u64(&mut out.buf, k.db);
            self.db = Some(k.db);
        }
        if !restore && self.opts.on_busy_key == OnBusyKey::Rewrite {
            // Plain commands add to what a key holds: rewrite starts from an empty key.
            push_header(&mut out.buf, 2, b"DEL");
            push_bulk(&mut out.buf, &k.key);
        }
        self.render(k, w, out, ctx, restore, true)
    }

    fn function(&mut self, source: &[u8], out: &mut Out<'_>) {
        if !self.opts.functions {
            return;
        }
        // A library that exists: an error (panic, skip) or replaced (rewrite), like keys.
        let buf = &mut out.buf;
        if self.opts.on_busy_key == OnBusyKey::Rewrite {
            push_header(buf, 4, b"FUNCTION");
            push_bulk(buf, b"LOAD");
            push_bulk(buf, b"REPLACE");
        } else {
            push_header(buf, 3, b"FUNCTION");
            push_bulk(buf, b"LOAD");
        }
        push_bulk(buf, source);
    }

    fn warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

impl RespWriter {
    /// The commands of one key, without a `SELECT`: `RESTORE` (`restore`; module values
    /// always) or the plain commands. `validated`: the value was already walked with
    /// `Validate` (a RESTORE payload is never sent unchecked). A value the target version
    /// cannot hold as a payload is `ExportError::Refused` (then nothing was written).
    pub fn render(
        &mut self,
        k: &KeyRecord<'_>,
        w: &mut Walker,
        out: &mut Out<'_>,
        ctx: &KeyCtx<'_>,
        restore: bool,
        validated: bool,
    ) -> Result<bool, ExportError> {
        let kind = k.value.kind();
        let restore = restore || kind == Kind::Module;
        if restore {
            if !validated {
                w.walk(&k.value, &mut Validate).map_err(|e| ExportError::Input(e.in_key(k.db, &k.key)))?;
            }
            self.restore(k, out, ctx)?;
            return Ok(true);
        }
        if k.meta.is_some() && !self.warned_meta {
            self.warned_meta = true;
            self.warnings.push(
                "key metadata (Redis 8.6 module classes) has no command form and was left out; use --restore".into(),
            );
        }
        let (cmd, per_item): (&'static [u8], usize) = match kind {
            Kind::List => (b"RPUSH", 1),
            Kind::Set => (b"SADD", 1),
            Kind::Zset => (b"ZADD", 2),
            Kind::Hash => (b"HSET", 2),
            _ => (b"", 0),
        };
        self.args.clear();
        self.field_ttls.clear();
        let mut sink = RespSink {
            out,
            key: &k.key,
            cmd,
            per_item,
            batch: self.opts.batch.max(1),
            pending: 0,
            args: &mut self.args,
            cutoff: ctx.filter.field_cutoff(),
            field_ttls: &mut self.field_ttls,
            entries: 0,
            idmp_lost: false,
            legacy_streams: self.opts.legacy_streams,
            no_createconsumer: self.opts.no_createconsumer,
            max_bulk: self.opts.max_bulk,
            too_big: None,
        };
        w.walk(&k.value, &mut sink).map_err(|e| ExportError::Input(e.in_key(k.db, &k.key)))?;
        sink.flush_batch();
        if let Some(n) = sink.too_big {
            return Err(ExportError::Refused(format!(
                "a string of {n} bytes (the value or one element) is longer than the target's proto-max-bulk-len ({}), \
                 the longest string it takes from a client",
                self.opts.max_bulk
            )));
        }
        let idmp_lost = sink.idmp_lost;
        if idmp_lost && !self.warned_idmp {
            self.warned_idmp = true;
            self.warnings.push(format!(
                "stream idempotent-producer state (Redis 8.6 IDMP, e.g. key {}) was left out; use --restore",
                crate::display::quoted(&k.key)
            ));
        }
        self.field_expires(&k.key, out);
        if let Some(t) = k.expire_at_ms {
            let buf = &mut out.buf;
            push_header(buf, 3, b"PEXPIREAT");
            push_bulk(buf, &k.key);
            push_bulk_i64(buf, t);
        }
        Ok(true)
    }

    /// `HPEXPIREAT key ms FIELDS n f...`, fields grouped by time, at most `batch` per command.
    fn field_expires(&mut self, key: &[u8], out: &mut Out<'_>) {
        if self.field_ttls.is_empty() {
            return;
        }
        self.field_ttls.sort();
        let batch = self.opts.batch.max(1);
        let mut i = 0;
        while i < self.field_ttls.len() {
            let t = self.field_ttls[i].0;
            let run = self.field_ttls[i..].iter().take(batch).take_while(|(x, _)| *x == t).count();
            let buf = &mut out.buf;
            push_header(buf, 5 + run, b"HPEXPIREAT");
            push_bulk(buf, key);
            push_bulk_i64(buf, t);
            push_bulk(buf, b"FIELDS");
            push_bulk_u64(buf, run as u64);
            for (_, f) in &self.field_ttls[i..i + run] {
                push_bulk(buf, f);
            }
            i += run;
            out.check();
        }
    }
}

/// Renders one value as commands while the walk feeds it.
struct RespSink<'a, 'w> {
    out: &'a mut Out<'w>,
    key: &'a [u8],
    cmd: &'static [u8],
    per_item: usize,
    batch: usize,
    /// Elements in `args` not yet written.
    pending: usize,
    args: &'a mut Vec<u8>,
    cutoff: Option<i64>,
    field_ttls: &'a mut Vec<(i64, Vec<u8>)>,
    /// Stream entries written.
    entries: u64,
    idmp_lost: bool,
    legacy_streams: bool,
    no_createconsumer: bool,
    max_bulk: usize,
    /// The length of an element longer than `max_bulk` (not splittable).
    too_big: Option<usize>,
}

impl RespSink<'_, '_> {
    fn check_len(&mut self, e: Elem<'_>) {
        if let Elem::Bytes(b) = e
            && b.len() > self.max_bulk
        {
            self.too_big = Some(b.len());
        }
    }

    fn flush_batch(&mut self) {
        if self.pending == 0 {
            return;
        }
        let buf = &mut self.out.buf;
        push_header(buf, 2 + self.pending * self.per_item, self.cmd);
        push_bulk(buf, self.key);
        buf.extend_from_slice(self.args);
        self.args.clear();
        self.pending = 0;
        self.out.check();
    }

    #[inline]
    fn added(&mut self) {
        self.pending += 1;
        if self.pending >= self.batch {
            self.flush_batch();
        }
    }

    /// A command whose arguments are all at hand.
    fn command(&mut self, args: &[&[u8]]) {
        let buf = &mut self.out.buf;
        push_header(buf, args.len(), args[0]);
        for a in &args[1..] {
            push_bulk(buf, a);
        }
    }
}

impl Sink for RespSink<'_, '_> {
    fn string(&mut self, v: Elem<'_>) {
        self.check_len(v);
        if self.too_big.is_some() {
            return;
        }
        let buf = &mut self.out.buf;
        push_header(buf, 3, b"SET");
        push_bulk(buf, self.key);
        match v {
            // A long string goes in pieces, the buffer handed to the writer as it fills, so that
            // it costs its own bytes once and not twice.
            Elem::Bytes(b) if b.len() > BIG_STRING => {
                buf.push(b'$');
                push_u64(buf, b.len() as u64);
                buf.extend_from_slice(b"\r\n");
                for piece in b.chunks(BIG_STRING / 4) {
                    self.out.buf.extend_from_slice(piece);
                    self.out.check();
                }
                self.out.buf.extend_from_slice(b"\r\n");
            }
            v => push_bulk_elem(buf, v),
        }
        self.out.check();
    }

    fn list_item(&mut self, v: Elem<'_>) {
        self.check_len(v);
        push_bulk_elem(self.args, v);
        self.added();
    }

    fn set_member(&mut self, m: Elem<'_>) {
        self.check_len(m);
        push_bulk_elem(self.args, m);
        self.added();
    }

    fn zset_item(&mut self, m: Elem<'_>, score: f64) {
        self.check_len(m);
        let mut s = Vec::with_capacity(24);
        push_f64(&mut s, score);
        push_bulk(self.args, &s);
        push_bulk_elem(self.args, m);
        self.added();
    }

    fn hash_field(&mut self, f: Elem<'_>, v: Elem<'_>, expire_at_ms: Option<i64>) {
        self.check_len(f);
        self.check_len(v);
        if let Some(t) = expire_at_ms {
            if self.cutoff.is_some_and(|cut| t < cut) {
                return;
            }
            self.field_ttls.push((t, f.to_vec()));
        }
        push_bulk_elem(self.args, f);
        push_bulk_elem(self.args, v);
        self.added();
    }

    fn stream_entry(&mut self, id: StreamId, fields: &[(Elem<'_>, Elem<'_>)]) {
        let buf = &mut self.out.buf;
        push_header(buf, 3 + 2 * fields.len(), b"XADD");
        push_bulk(buf, self.key);
        push_bulk_id(buf, id);
        for (f, v) in fields {
            push_bulk_elem(buf, *f);
            push_bulk_elem(buf, *v);
        }
        self.entries += 1;
        self.out.check();
    }

    fn stream_meta(&mut self, m: &StreamMeta) {
        let key = self.key;
        if self.entries == 0 {
            // Redis's own trick to create an empty stream (AOF rewrite): add 0-1, trim to 0.
            self.command(&[b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]);
        }
        let last = id_text(m.last_id);
        match (m.entries_added, m.max_deleted_id) {
            (Some(added), Some(maxdel)) if !self.legacy_streams => {
                let added = added.to_string();
                let maxdel = id_text(maxdel);
                self.command(&[
                    b"XSETID",
                    key,
                    last.as_bytes(),
                    b"ENTRIESADDED",
                    added.as_bytes(),
                    b"MAXDELETEDID",
                    maxdel.as_bytes(),
                ]);
            }
            _ => self.command(&[b"XSETID", key, last.as_bytes()]),
        }
    }

    fn stream_group(&mut self, g: &StreamGroup) {
        let key = self.key;
        let last = id_text(g.last_id);
        match g.entries_read.filter(|_| !self.legacy_streams) {
            Some(n) => {
                // u64::MAX is Redis's -1 ("unknown"), which ENTRIESREAD accepts as such.
                let n = if n == u64::MAX { "-1".to_owned() } else { n.to_string() };
                self.command(&[b"XGROUP", b"CREATE", key, &g.name, last.as_bytes(), b"ENTRIESREAD", n.as_bytes()]);
            }
            None => self.command(&[b"XGROUP", b"CREATE", key, &g.name, last.as_bytes()]),
        }
        // Every consumer, also those whose pending entries are all gone from the stream (XCLAIM
        // of a deleted entry creates nothing).
        for c in &g.consumers {
            if self.no_createconsumer {
                // Before 6.2: XREADGROUP of the consumer's own history (id 0) creates it and
                // changes nothing else.
                self.command(&[b"XREADGROUP", b"GROUP", &g.name, &c.name, b"COUNT", b"1", b"STREAMS", key, b"0"]);
                continue;
            }
            self.command(&[b"XGROUP", b"CREATECONSUMER", key, &g.name, &c.name]);
        }
        for p in &g.pending {
            let Some(c) = g.consumers.get(p.consumer) else { continue };
            let id = id_text(p.id);
            let time = p.delivery_time_ms.to_string();
            let count = p.delivery_count.to_string();
            self.command(&[
                b"XCLAIM",
                key,
                &g.name,
                &c.name,
                b"0",
                id.as_bytes(),
                b"TIME",
                time.as_bytes(),
                b"RETRYCOUNT",
                count.as_bytes(),
                b"JUSTID",
                b"FORCE",
            ]);
        }
        self.out.check();
    }

    fn stream_idmp(&mut self, i: &Idmp) {
        if !i.producers.is_empty() || i.iids_added > 0 {
            self.idmp_lost = true;
        }
    }

    fn module(&mut self, _t: ModuleType, _payload: &[u8]) {
        // Module values always take the RESTORE path; the walk here never sees one.
    }
}

fn id_text(id: StreamId) -> String {
    format!("{}-{}", id.ms, id.seq)
}

/// `*argc` and the command name.
#[inline]
fn push_header(buf: &mut Vec<u8>, argc: usize, cmd: &[u8]) {
    buf.push(b'*');
    push_u64(buf, argc as u64);
    buf.extend_from_slice(b"\r\n");
    push_bulk(buf, cmd);
}

/// Strings longer than this are written in pieces (see `RespSink::string`).
const BIG_STRING: usize = 4 << 20;

#[inline]
fn push_bulk(buf: &mut Vec<u8>, b: &[u8]) {
    buf.push(b'$');
    push_u64(buf, b.len() as u64);
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(b);
    buf.extend_from_slice(b"\r\n");
}

#[inline]
fn push_bulk_elem(buf: &mut Vec<u8>, e: Elem<'_>) {
    match e {
        Elem::Bytes(b) => push_bulk(buf, b),
        Elem::Int(i) => {
            let mut tmp = [0u8; 20];
            push_bulk(buf, format_i64(i, &mut tmp));
        }
    }
}

fn push_bulk_i64(buf: &mut Vec<u8>, v: i64) {
    let mut tmp = Vec::with_capacity(20);
    push_i64(&mut tmp, v);
    push_bulk(buf, &tmp);
}

fn push_bulk_u64(buf: &mut Vec<u8>, v: u64) {
    let mut tmp = Vec::with_capacity(20);
    push_u64(&mut tmp, v);
    push_bulk(buf, &tmp);
}

fn push_bulk_id(buf: &mut Vec<u8>, id: StreamId) {
    push_bulk(buf, id_text(id).as_bytes());
}
