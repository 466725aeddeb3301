//! JSON output: one object per key, rendered while the walker decodes the value (no `Value` is
//! built), as JSON Lines or as the elements of one streamed JSON array.
//!
//! Byte strings follow `crate::json`: a JSON string when the bytes are UTF-8, otherwise
//! `{"base64": "..."}`.
//!
//! One renderer per value type and encoding, each streaming its elements as the walker yields
//! them; the JSON text of bytes, elements and numbers is `json_text`'s.

use super::json_text::{push_base64, push_bytes, push_elem, push_elem_out, push_id, push_opt_i64, push_score};
use super::{ExportError, KeyCtx, KeyWriter, Out, all_fields_expired, push_i64, push_u64};
use crate::rdb::cursor::Elem;
use crate::rdb::module::ModuleType;
use crate::rdb::reader::KeyRecord;
use crate::rdb::types::Kind;
use crate::rdb::value::{Idmp, Sink, StreamGroup, StreamId, StreamMeta};
use crate::rdb::walk::Walker;

/// The JSON formats: JSON Lines (`--format jsonl`) or one streamed JSON array (`--format json`).
pub struct JsonWriter {
    /// One JSON array (`--format json`) instead of one object per line.
    array: bool,
    with_meta: bool,
    first: bool,
    /// `[field, ms]` pairs of the current hash, rendered, waiting for the end of `value`.
    field_ttls: Vec<u8>,
}

impl JsonWriter {
    /// A writer for one JSON array (`array`) or JSON Lines; `with_meta` adds `encoding`, `idle`,
    /// `freq` and `value_bytes` to each object.
    pub fn new(array: bool, with_meta: bool) -> JsonWriter {
        JsonWriter { array, with_meta, first: true, field_ttls: Vec::new() }
    }

    /// Whether the next key is the first of the array (a part of the file rendered on its own
    /// does not know; see `parts`).
    pub(super) fn set_first(&mut self, first: bool) {
        self.first = first;
    }
}

impl KeyWriter for JsonWriter {
    fn begin(&mut self, out: &mut Out<'_>) {
        if self.array {
            out.buf.push(b'[');
        }
    }

    fn key(
        &mut self,
        k: &KeyRecord<'_>,
        w: &mut Walker,
        out: &mut Out<'_>,
        ctx: &KeyCtx<'_>,
    ) -> Result<bool, ExportError> {
        if all_fields_expired(k, w, ctx.filter)? {
            return Ok(false);
        }
        let buf = &mut out.buf;
        if self.array {
            buf.extend_from_slice(if self.first { b"\n" } else { b",\n" });
        }
        let kind = k.value.kind();
        buf.extend_from_slice(b"{\"db\":");
        push_u64(buf, k.db);
        buf.extend_from_slice(b",\"key\":");
        push_bytes(buf, &k.key);
        buf.extend_from_slice(b",\"type\":\"");
        buf.extend_from_slice(kind.as_str().as_bytes());
        buf.extend_from_slice(b"\",\"expire_at_ms\":");
        push_opt_i64(buf, k.expire_at_ms);
        if self.with_meta {
            buf.extend_from_slice(b",\"encoding\":\"");
            buf.extend_from_slice(k.value.encoding().as_bytes());
            buf.extend_from_slice(b"\",\"idle\":");
            match k.idle_s {
                Some(v) => push_u64(buf, v),
                None => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(b",\"freq\":");
            match k.freq {
                Some(v) => push_u64(buf, v as u64),
                None => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(b",\"value_bytes\":");
            push_u64(buf, k.value.bytes.len() as u64);
            if let Some(m) = &k.meta {
                buf.extend_from_slice(b",\"key_meta_base64\":\"");
                push_base64(buf, m.raw);
                buf.push(b'"');
            }
        }
        buf.extend_from_slice(b",\"value\":");
        self.field_ttls.clear();
        let mut sink = JsonSink {
            out,
            kind,
            n: 0,
            cutoff: ctx.filter.field_cutoff(),
            field_ttls: &mut self.field_ttls,
            stream: StreamState::Entries,
        };
        sink.open();
        w.walk(&k.value, &mut sink).map_err(|e| ExportError::Input(e.in_key(k.db, &k.key)))?;
        sink.close();
        let buf = &mut out.buf;
        if !self.field_ttls.is_empty() {
            buf.extend_from_slice(b",\"field_expire_at_ms\":[");
            buf.extend_from_slice(&self.field_ttls);
            buf.push(b']');
        }
        buf.push(b'}');
        if !self.array {
            buf.push(b'\n');
        }
        self.first = false;
        Ok(true)
    }

    fn finish(&mut self, out: &mut Out<'_>) {
        if self.array {
            out.buf.extend_from_slice(b"\n]\n");
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum StreamState {
    Entries,
    Groups,
    Idmp,
}

/// Renders one value as the walk feeds it.
struct JsonSink<'a, 'w> {
    out: &'a mut Out<'w>,
    kind: Kind,
    /// Elements written so far (for commas).
    n: u64,
    /// Hash fields that expired before this are left out.
    cutoff: Option<i64>,
    field_ttls: &'a mut Vec<u8>,
    stream: StreamState,
}

impl JsonSink<'_, '_> {
    fn open(&mut self) {
        match self.kind {
            Kind::List | Kind::Set | Kind::Zset | Kind::Hash => self.out.buf.push(b'['),
            Kind::Stream => self.out.buf.extend_from_slice(b"{\"entries\":["),
            Kind::String | Kind::Module => {}
        }
    }

    fn close(&mut self) {
        let buf = &mut self.out.buf;
        match self.kind {
            Kind::List | Kind::Set | Kind::Zset | Kind::Hash => buf.push(b']'),
            Kind::Stream => match self.stream {
                StreamState::Entries | StreamState::Groups => buf.extend_from_slice(b"]}"),
                StreamState::Idmp => buf.push(b'}'),
            },
            Kind::String | Kind::Module => {}
        }
    }

    #[inline]
    fn comma(&mut self) {
        if self.n > 0 {
            self.out.buf.push(b',');
        }
        self.n += 1;
    }
}

impl Sink for JsonSink<'_, '_> {
    fn string(&mut self, v: Elem<'_>) {
        push_elem_out(self.out, v);
    }

    fn list_item(&mut self, v: Elem<'_>) {
        self.comma();
        push_elem_out(self.out, v);
    }

    fn set_member(&mut self, m: Elem<'_>) {
        self.list_item(m)
    }

    fn zset_item(&mut self, m: Elem<'_>, score: f64) {
        self.comma();
        let buf = &mut self.out.buf;
        buf.push(b'[');
        push_elem(buf, m);
        buf.push(b',');
        push_score(buf, score);
        buf.push(b']');
        self.out.check();
    }

    fn hash_field(&mut self, f: Elem<'_>, v: Elem<'_>, expire_at_ms: Option<i64>) {
        if let (Some(t), Some(cut)) = (expire_at_ms, self.cutoff)
            && t < cut
        {
            return;
        }
        self.comma();
        let buf = &mut self.out.buf;
        buf.push(b'[');
        push_elem(buf, f);
        buf.push(b',');
        push_elem(buf, v);
        buf.push(b']');
        if let Some(t) = expire_at_ms {
            let ttls = &mut *self.field_ttls;
            if !ttls.is_empty() {
                ttls.push(b',');
            }
            ttls.push(b'[');
            push_elem(ttls, f);
            ttls.push(b',');
            push_i64(ttls, t);
            ttls.push(b']');
        }
        self.out.check();
    }

    fn stream_entry(&mut self, id: StreamId, fields: &[(Elem<'_>, Elem<'_>)]) {
        self.comma();
        let buf = &mut self.out.buf;
        buf.extend_from_slice(b"{\"id\":");
        push_id(buf, id);
        buf.extend_from_slice(b",\"fields\":[");
        for (i, (f, v)) in fields.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.push(b'[');
            push_elem(buf, *f);
            buf.push(b',');
            push_elem(buf, *v);
            buf.push(b']');
        }
        buf.extend_from_slice(b"]}");
        self.out.check();
    }

    fn stream_meta(&mut self, m: &StreamMeta) {
        let buf = &mut self.out.buf;
        buf.extend_from_slice(b"],\"length\":");
        push_u64(buf, m.length);
        buf.extend_from_slice(b",\"last_id\":");
        push_id(buf, m.last_id);
        if let Some(id) = m.first_id {
            buf.extend_from_slice(b",\"first_id\":");
            push_id(buf, id);
        }
        if let Some(id) = m.max_deleted_id {
            buf.extend_from_slice(b",\"max_deleted_id\":");
            push_id(buf, id);
        }
        if let Some(n) = m.entries_added {
            buf.extend_from_slice(b",\"entries_added\":");
            push_u64(buf, n);
        }
        buf.extend_from_slice(b",\"groups\":[");
        self.stream = StreamState::Groups;
        self.n = 0;
    }

    fn stream_group(&mut self, g: &StreamGroup) {
        self.comma();
        let buf = &mut self.out.buf;
        buf.extend_from_slice(b"{\"name\":");
        push_bytes(buf, &g.name);
        buf.extend_from_slice(b",\"last_id\":");
        push_id(buf, g.last_id);
        if let Some(n) = g.entries_read {
            buf.extend_from_slice(b",\"entries_read\":");
            if n == u64::MAX {
                buf.extend_from_slice(b"null");
            } else {
                push_u64(buf, n);
            }
        }
        buf.extend_from_slice(b",\"pending\":[");
        for (i, p) in g.pending.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(b"{\"id\":");
            push_id(buf, p.id);
            buf.extend_from_slice(b",\"consumer\":");
            match g.consumers.get(p.consumer) {
                Some(c) => push_bytes(buf, &c.name),
                None => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(b",\"delivery_time_ms\":");
            push_i64(buf, p.delivery_time_ms);
            buf.extend_from_slice(b",\"delivery_count\":");
            push_u64(buf, p.delivery_count);
            buf.push(b'}');
        }
        buf.extend_from_slice(b"],\"consumers\":[");
        for (i, c) in g.consumers.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(b"{\"name\":");
            push_bytes(buf, &c.name);
            buf.extend_from_slice(b",\"seen_time_ms\":");
            push_i64(buf, c.seen_time_ms);
            if let Some(t) = c.active_time_ms {
                buf.extend_from_slice(b",\"active_time_ms\":");
                push_i64(buf, t);
            }
            buf.extend_from_slice(b",\"pending\":[");
            for (j, id) in c.pending.iter().enumerate() {
                if j > 0 {
                    buf.push(b',');
                }
                push_id(buf, *id);
            }
            buf.extend_from_slice(b"]}");
        }
        buf.extend_from_slice(b"]}");
        self.out.check();
    }

    fn stream_idmp(&mut self, i: &Idmp) {
        let buf = &mut self.out.buf;
        buf.extend_from_slice(b"],\"idmp\":{\"duration_s\":");
        push_u64(buf, i.duration_s);
        buf.extend_from_slice(b",\"maxsize\":");
        push_u64(buf, i.maxsize);
        buf.extend_from_slice(b",\"producers\":[");
        for (n, (pid, entries)) in i.producers.iter().enumerate() {
            if n > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(b"{\"pid\":");
            push_bytes(buf, pid);
            buf.extend_from_slice(b",\"entries\":[");
            for (m, (iid, id)) in entries.iter().enumerate() {
                if m > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(b"{\"iid\":");
                push_bytes(buf, iid);
                buf.extend_from_slice(b",\"id\":");
                push_id(buf, *id);
                buf.push(b'}');
            }
            buf.extend_from_slice(b"]}");
        }
        buf.extend_from_slice(b"],\"iids_added\":");
        push_u64(buf, i.iids_added);
        buf.extend_from_slice(b",\"iids_duplicates\":");
        push_u64(buf, i.iids_duplicates);
        buf.push(b'}');
        self.stream = StreamState::Idmp;
        self.out.check();
    }

    fn module(&mut self, t: ModuleType, payload: &[u8]) {
        let buf = &mut self.out.buf;
        buf.extend_from_slice(b"{\"module\":\"");
        // The module alphabet needs no escaping.
        buf.extend_from_slice(t.name().as_bytes());
        buf.extend_from_slice(b"\",\"version\":");
        push_u64(buf, t.encver());
        buf.extend_from_slice(b",\"payload_base64\":\"");
        push_base64(buf, payload);
        buf.extend_from_slice(b"\"}");
        self.out.check();
    }
}
