//! The value side of a key record: the raw bytes in the file (`RawValue`), the event interface a
//! walk over them feeds (`Sink`), and the logical value model that one sink builds (`Value`).

use serde::Serialize;

use crate::error::Result;
use crate::rdb::cursor::Elem;
use crate::rdb::module::ModuleType;
use crate::rdb::types::{Format, Kind, describe};
use crate::rdb::walk::Walker;

/// A stream ID: milliseconds and sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub fn from_be_bytes(b: &[u8]) -> StreamId {
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..16]);
        StreamId { ms: u64::from_be_bytes(ms), seq: u64::from_be_bytes(seq) }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Stream-level fields after the entries. Fields an older stream type lacks are `None`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamMeta {
    pub length: u64,
    pub last_id: StreamId,
    pub first_id: Option<StreamId>,
    pub max_deleted_id: Option<StreamId>,
    pub entries_added: Option<u64>,
    pub groups: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PendingEntry {
    pub id: StreamId,
    /// Index into the group's `consumers`.
    pub consumer: usize,
    pub delivery_time_ms: i64,
    pub delivery_count: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    pub name: Vec<u8>,
    pub seen_time_ms: i64,
    /// Stream type 21+ only.
    pub active_time_ms: Option<i64>,
    pub pending: Vec<StreamId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamGroup {
    pub name: Vec<u8>,
    pub last_id: StreamId,
    /// Stream type 19+; `Some(u64::MAX)` is Redis's "unknown" (-1).
    pub entries_read: Option<u64>,
    pub pending: Vec<PendingEntry>,
    pub consumers: Vec<Consumer>,
}

/// A producer id and its (idempotency id, stream id) entries, oldest first.
pub type IdmpProducer = (Vec<u8>, Vec<(Vec<u8>, StreamId)>);

/// Redis 8.6 idempotent-producer state (stream type 26).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Idmp {
    pub duration_s: u64,
    pub maxsize: u64,
    /// Per producer id: (idempotency id, stream id), oldest first.
    pub producers: Vec<IdmpProducer>,
    pub iids_added: u64,
    pub iids_duplicates: u64,
}

/// Receives the logical content of one value as a walk decodes it. Elements borrow from the file
/// or from a scratch buffer and live only for the call. The walk validates everything whether or
/// not a method is overridden.
pub trait Sink {
    /// False for sinks that ignore element bytes: leaf LZF strings are then checked, not
    /// decompressed.
    const WANTS_BYTES: bool = true;

    fn string(&mut self, _v: Elem<'_>) {}
    fn list_item(&mut self, _v: Elem<'_>) {}
    fn set_member(&mut self, _m: Elem<'_>) {}
    fn zset_item(&mut self, _m: Elem<'_>, _score: f64) {}
    /// `expire_at_ms`: the field's own absolute TTL (Redis 7.4+ / Valkey 9 hashes).
    fn hash_field(&mut self, _f: Elem<'_>, _v: Elem<'_>, _expire_at_ms: Option<i64>) {}
    /// One live stream entry (tombstones are not reported).
    fn stream_entry(&mut self, _id: StreamId, _fields: &[(Elem<'_>, Elem<'_>)]) {}
    fn stream_meta(&mut self, _m: &StreamMeta) {}
    fn stream_group(&mut self, _g: &StreamGroup) {}
    fn stream_idmp(&mut self, _i: &Idmp) {}
    /// A module value: its type and the raw opcode stream after the type id.
    fn module(&mut self, _t: ModuleType, _payload: &[u8]) {}
}

/// A sink that keeps nothing: `walk` with it is pure validation.
pub struct Validate;
impl Sink for Validate {
    const WANTS_BYTES: bool = false;
}

/// A value as it sits in the file, not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct RawValue<'a> {
    pub type_byte: u8,
    pub format: Format,
    /// The serialized value (after the key), as in a DUMP payload minus type byte and footer.
    pub bytes: &'a [u8],
    /// File offset of `bytes[0]`.
    pub offset: u64,
}

impl<'a> RawValue<'a> {
    pub fn kind(&self) -> Kind {
        describe(self.type_byte, self.format).map(|d| d.0).unwrap_or(Kind::Module)
    }
    pub fn encoding(&self) -> &'static str {
        describe(self.type_byte, self.format).map(|d| d.1).unwrap_or("unknown")
    }
    /// False when finding the value's end already proved it valid, so a full walk has nothing
    /// left to check: a string stored raw or as an integer (an LZF string must still be walked).
    pub fn needs_walk(&self) -> bool {
        !(self.type_byte == crate::rdb::types::id::STRING
            && self.bytes.first().is_some_and(|&b| b >> 6 != 3 || b & 0x3f != 3))
    }

    /// Full validation without building anything.
    pub fn validate(&self, w: &mut Walker) -> Result<()> {
        w.walk(self, &mut Validate)
    }
    /// Decodes into the logical model.
    pub fn decode(&self, w: &mut Walker) -> Result<Value> {
        let mut b = ValueBuilder::new(self.kind());
        w.walk(self, &mut b)?;
        Ok(b.finish())
    }
}

/// The logical value model shared by every command.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(Vec<u8>),
    List(Vec<Vec<u8>>),
    /// Members in file order.
    Set(Vec<Vec<u8>>),
    /// (member, score) in file order.
    Zset(Vec<(Vec<u8>, f64)>),
    Hash(Vec<HashField>),
    Stream(Box<Stream>),
    Module(ModuleValue),
}

impl Value {
    pub fn kind(&self) -> Kind {
        match self {
            Value::String(_) => Kind::String,
            Value::List(_) => Kind::List,
            Value::Set(_) => Kind::Set,
            Value::Zset(_) => Kind::Zset,
            Value::Hash(_) => Kind::Hash,
            Value::Stream(_) => Kind::Stream,
            Value::Module(_) => Kind::Module,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HashField {
    pub field: Vec<u8>,
    pub value: Vec<u8>,
    pub expire_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    pub id: StreamId,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    pub entries: Vec<StreamEntry>,
    pub meta: StreamMeta,
    pub groups: Vec<StreamGroup>,
    pub idmp: Option<Idmp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModuleValue {
    pub module_type: ModuleType,
    pub payload: Vec<u8>,
}

/// The sink that builds a `Value`.
pub struct ValueBuilder {
    value: Value,
}

impl ValueBuilder {
    pub fn new(kind: Kind) -> ValueBuilder {
        let value = match kind {
            Kind::String => Value::String(Vec::new()),
            Kind::List => Value::List(Vec::new()),
            Kind::Set => Value::Set(Vec::new()),
            Kind::Zset => Value::Zset(Vec::new()),
            Kind::Hash => Value::Hash(Vec::new()),
            Kind::Stream => Value::Stream(Box::default()),
            Kind::Module => Value::Module(ModuleValue { module_type: ModuleType(0), payload: Vec::new() }),
        };
        ValueBuilder { value }
    }
    pub fn finish(self) -> Value {
        self.value
    }
}

impl Sink for ValueBuilder {
    fn string(&mut self, v: Elem<'_>) {
        if let Value::String(s) = &mut self.value {
            *s = v.to_vec();
        }
    }
    fn list_item(&mut self, v: Elem<'_>) {
        if let Value::List(l) = &mut self.value {
            l.push(v.to_vec());
        }
    }
    fn set_member(&mut self, m: Elem<'_>) {
        if let Value::Set(s) = &mut self.value {
            s.push(m.to_vec());
        }
    }
    fn zset_item(&mut self, m: Elem<'_>, score: f64) {
        if let Value::Zset(z) = &mut self.value {
            z.push((m.to_vec(), score));
        }
    }
    fn hash_field(&mut self, f: Elem<'_>, v: Elem<'_>, expire_at_ms: Option<i64>) {
        if let Value::Hash(h) = &mut self.value {
            h.push(HashField { field: f.to_vec(), value: v.to_vec(), expire_at_ms });
        }
    }
    fn stream_entry(&mut self, id: StreamId, fields: &[(Elem<'_>, Elem<'_>)]) {
        if let Value::Stream(s) = &mut self.value {
            let fields = fields.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            s.entries.push(StreamEntry { id, fields });
        }
    }
    fn stream_meta(&mut self, m: &StreamMeta) {
        if let Value::Stream(s) = &mut self.value {
            s.meta = m.clone();
        }
    }
    fn stream_group(&mut self, g: &StreamGroup) {
        if let Value::Stream(s) = &mut self.value {
            s.groups.push(g.clone());
        }
    }
    fn stream_idmp(&mut self, i: &Idmp) {
        if let Value::Stream(s) = &mut self.value {
            s.idmp = Some(i.clone());
        }
    }
    fn module(&mut self, t: ModuleType, payload: &[u8]) {
        self.value = Value::Module(ModuleValue { module_type: t, payload: payload.to_vec() });
    }
}
