//! The value side of a key record: the raw bytes in the file (`RawValue`), the event interface a
//! walk over them feeds (`Sink`), and the logical value model that one sink builds (`Value`).

use serde::Serialize;

use crate::rdb::cursor::Elem;
use crate::rdb::module::ModuleType;
use crate::rdb::types::{Format, Kind, describe};

/// A stream ID: milliseconds and sequence. IDs order as (ms, seq); shown and serialized as `ms-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// The time part, Unix milliseconds as the producer chose it.
    pub ms: u64,
    /// The sequence number within that millisecond.
    pub seq: u64,
}

impl StreamId {
    /// Reads an `ID128` (docs/format.md §6.6): two `u64be`, ms then seq.
    ///
    /// # Panics
    ///
    /// When `b` is shorter than 16 bytes; callers check the length first.
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
    /// The stored entry count (what XLEN answers). Streams written by Redis 5 and 6 may disagree
    /// with the live entries (docs/format.md §6.6).
    pub length: u64,
    /// The last ID ever generated, never before the last entry.
    pub last_id: StreamId,
    /// The first live entry's ID (type 19+).
    pub first_id: Option<StreamId>,
    /// The highest ID ever deleted (type 19+).
    pub max_deleted_id: Option<StreamId>,
    /// How many entries were ever added, deleted ones included (type 19+).
    pub entries_added: Option<u64>,
    /// The number of consumer groups that follow.
    pub groups: u64,
}

/// One entry of a consumer group's pending entries list (PEL): delivered, not yet acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEntry {
    /// The pending entry's ID.
    pub id: StreamId,
    /// Index into the group's `consumers`.
    pub consumer: usize,
    /// When it was last delivered, Unix milliseconds.
    pub delivery_time_ms: i64,
    /// How many times it was delivered.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    /// The consumer's name, as given to XREADGROUP.
    pub name: Vec<u8>,
    /// When it was last seen, Unix milliseconds.
    pub seen_time_ms: i64,
    /// When it last read successfully, Unix milliseconds. Stream type 21+ only.
    pub active_time_ms: Option<i64>,
    /// The IDs it owns in the group's PEL; each is in `StreamGroup::pending`.
    pub pending: Vec<StreamId>,
}

/// A consumer group of a stream (docs/format.md §6.6).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamGroup {
    /// The group's name.
    pub name: Vec<u8>,
    /// The last ID delivered to the group.
    pub last_id: StreamId,
    /// Stream type 19+; `Some(u64::MAX)` is Redis's "unknown" (-1).
    pub entries_read: Option<u64>,
    /// The group's pending entries list, ascending by ID.
    pub pending: Vec<PendingEntry>,
    /// The group's consumers, in file order.
    pub consumers: Vec<Consumer>,
}

/// A producer id and its (idempotency id, stream id) entries, oldest first.
pub type IdmpProducer = (Vec<u8>, Vec<(Vec<u8>, StreamId)>);

/// Redis 8.6 idempotent-producer state (stream type 26).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Idmp {
    /// How long an idempotency id is remembered, in seconds (1 to 86400).
    pub duration_s: u64,
    /// How many idempotency ids a producer keeps at most (1 to 10000).
    pub maxsize: u64,
    /// Per producer id: (idempotency id, stream id), oldest first.
    pub producers: Vec<IdmpProducer>,
    /// A counter: idempotency ids ever added.
    pub iids_added: u64,
    /// A counter: adds refused as duplicates.
    pub iids_duplicates: u64,
}

/// Receives the logical content of one value as a walk decodes it. Elements borrow from the file
/// or from a scratch buffer and live only for the call. The walk validates everything whether or
/// not a method is overridden.
///
/// A sink that adds up the bytes of every list element, checked against the decoded values:
///
/// ```
/// use rdbtool::rdb::{Elem, Reader, Record, Sink, Value, Walker};
///
/// #[derive(Default)]
/// struct ListBytes(usize);
///
/// impl Sink for ListBytes {
///     fn list_item(&mut self, v: Elem<'_>) {
///         self.0 += v.len(); // an integer element counts the length of its decimal text
///     }
/// }
///
/// let data: &[u8] = include_bytes!("../../testdata/all-types.rdb");
/// let (mut walker, mut sink, mut decoded) = (Walker::new(), ListBytes::default(), 0);
/// for record in Reader::new(data)? {
///     if let Record::Key(key) = record? {
///         walker.walk(&key.value, &mut sink)?;
///         if let Value::List(items) = key.value.decode(&mut walker)? {
///             decoded += items.iter().map(Vec::len).sum::<usize>();
///         }
///     }
/// }
/// assert!(decoded > 0);
/// assert_eq!(sink.0, decoded);
/// # Ok::<(), rdbtool::Error>(())
/// ```
pub trait Sink {
    /// False for sinks that ignore element bytes: leaf LZF strings are then checked, not
    /// decompressed.
    const WANTS_BYTES: bool = true;
    /// False for sinks that ignore every element (pure validation): an inner encoding whose
    /// elements need no check of their own (an intset's ascending integers) is then checked
    /// without yielding them.
    const WANTS_ELEMENTS: bool = true;

    /// The whole value of a string key.
    fn string(&mut self, _v: Elem<'_>) {}
    /// One list element, in list order.
    fn list_item(&mut self, _v: Elem<'_>) {}
    /// One set member, in file order.
    fn set_member(&mut self, _m: Elem<'_>) {}
    /// One sorted-set member and its score, in file order.
    fn zset_item(&mut self, _m: Elem<'_>, _score: f64) {}
    /// `expire_at_ms`: the field's own absolute TTL (Redis 7.4+ / Valkey 9 hashes).
    fn hash_field(&mut self, _f: Elem<'_>, _v: Elem<'_>, _expire_at_ms: Option<i64>) {}
    /// One live stream entry (tombstones are not reported).
    fn stream_entry(&mut self, _id: StreamId, _fields: &[(Elem<'_>, Elem<'_>)]) {}
    /// The stream-level fields, once, after the last entry.
    fn stream_meta(&mut self, _m: &StreamMeta) {}
    /// One consumer group, after `stream_meta`, once its PEL and consumers are checked.
    fn stream_group(&mut self, _g: &StreamGroup) {}
    /// The idempotent-producer state of a type-26 stream, last.
    fn stream_idmp(&mut self, _i: &Idmp) {}
    /// A module value: its type and the raw opcode stream after the type id.
    fn module(&mut self, _t: ModuleType, _payload: &[u8]) {}
}

/// A sink that keeps nothing: `walk` with it is pure validation.
pub struct Validate;
impl Sink for Validate {
    const WANTS_BYTES: bool = false;
    const WANTS_ELEMENTS: bool = false;
}

/// A value as it sits in the file, not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct RawValue<'a> {
    /// The value type byte (docs/format.md §5.1), read under `format`.
    pub type_byte: u8,
    /// The file's format: what `type_byte` means.
    pub format: Format,
    /// The serialized value (after the key), as in a DUMP payload minus type byte and footer.
    pub bytes: &'a [u8],
    /// File offset of `bytes[0]`.
    pub offset: u64,
}

impl<'a> RawValue<'a> {
    /// The logical type (what TYPE answers). A type byte the format does not know, which the
    /// reader never yields, counts as a module value.
    pub fn kind(&self) -> Kind {
        describe(self.type_byte, self.format).map(|d| d.0).unwrap_or(Kind::Module)
    }
    /// The encoding's name as rdbtool prints it (`listpack`, `quicklist-v2`, ...; docs/format.md
    /// §5.1), or `unknown`.
    pub fn encoding(&self) -> &'static str {
        describe(self.type_byte, self.format).map(|d| d.1).unwrap_or("unknown")
    }
    /// False when finding the value's end already proved it valid, so a full walk has nothing
    /// left to check: a string stored raw or as an integer (an LZF string must still be walked).
    pub fn needs_walk(&self) -> bool {
        !(self.type_byte == crate::rdb::types::id::STRING
            && self.bytes.first().is_some_and(|&b| b >> 6 != 3 || b & 0x3f != 3))
    }
}

/// The logical value model shared by every command.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string's bytes (an integer-encoded string as its decimal text, LZF decompressed).
    String(Vec<u8>),
    /// Elements in list order.
    List(Vec<Vec<u8>>),
    /// Members in file order.
    Set(Vec<Vec<u8>>),
    /// (member, score) in file order.
    Zset(Vec<(Vec<u8>, f64)>),
    /// Fields in file order, each with its own TTL if any.
    Hash(Vec<HashField>),
    /// Entries, metadata, groups (boxed: much larger than the other variants).
    Stream(Box<Stream>),
    /// A module value, kept as its opcode stream (docs/format.md §7.2).
    Module(ModuleValue),
}

impl Value {
    /// The logical type of this value.
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

/// One field of a hash.
#[derive(Debug, Clone, PartialEq)]
pub struct HashField {
    /// The field name.
    pub field: Vec<u8>,
    /// The field's value.
    pub value: Vec<u8>,
    /// The field's own expire time, absolute Unix milliseconds (hash field TTLs, docs/format.md
    /// §6.7); `None` when it has none. Expired fields stay in files, so this may be in the past.
    pub expire_at_ms: Option<i64>,
}

/// One live stream entry.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    /// The entry's ID.
    pub id: StreamId,
    /// (field, value) pairs in the order they were added.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A whole stream: live entries ascending by ID, then its metadata, groups and IDMP state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    /// Live entries (deleted ones are left out), ascending by ID.
    pub entries: Vec<StreamEntry>,
    /// The stream-level fields.
    pub meta: StreamMeta,
    /// Consumer groups in file order.
    pub groups: Vec<StreamGroup>,
    /// Idempotent-producer state, present for type 26 only.
    pub idmp: Option<Idmp>,
}

/// A module value: which module type, and its data as the module saved it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleValue {
    /// The module type id (name and encoding version, docs/format.md §7.1).
    pub module_type: ModuleType,
    /// The opcode stream after the type id, through its end opcode (docs/format.md §7.2).
    pub payload: Vec<u8>,
}

/// The sink that builds a `Value`.
pub struct ValueBuilder {
    value: Value,
}

impl ValueBuilder {
    /// An empty value of `kind`, to be filled by a walk of a value of that kind.
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
    /// The value built so far.
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

/// Something a walk accepted, as Redis does, but that deserves a word in a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// File offset of the value (or of the field concerned, when outside a packed blob).
    pub offset: u64,
    /// Stable name of the case: `stream_length`, `zset_score`.
    pub kind: &'static str,
    /// What is odd, in words.
    pub message: String,
}
