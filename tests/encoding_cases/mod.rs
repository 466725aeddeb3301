//! Shared by the encoding tests: strategies that generate logical values, their on-disk
//! encodings (cases), streams built by hand, whole-file builders and the helpers the negative
//! tests use. Each `tests/encodings_*.rs` file includes it as a module.
#![allow(dead_code, unused_imports)]

pub use std::collections::HashSet;

pub use proptest::collection::vec;
pub use proptest::prelude::*;
pub use proptest::sample::select;

pub use rdbtool::ErrorKind;
pub use rdbtool::crc::crc64;
pub use rdbtool::rdb::cursor::Cursor;
pub use rdbtool::rdb::encode::*;
pub use rdbtool::rdb::module::ModuleType;
pub use rdbtool::rdb::value::{
    Consumer, HashField, Idmp, ModuleValue, PendingEntry, Stream, StreamEntry, StreamGroup, StreamId, StreamMeta,
};
pub use rdbtool::rdb::walk::skip_value;
pub use rdbtool::rdb::{Flavor, Format, RawValue, Reader, Record, Value, Walker};
pub use rdbtool::verify::{ChecksumStatus, Options, Report, verify_bytes};

pub const REDIS: Format = Format { flavor: Flavor::Redis, version: 12 };
pub const VALKEY: Format = Format { flavor: Flavor::Valkey, version: 80 };
/// Values are decoded as if they sat at this file offset, so error offsets can be checked.
pub const BASE: u64 = 1000;
/// Field TTLs above this are corrupt (Redis keeps 48 bits).
pub const MAX_TTL: i64 = (1 << 48) - 1;

// ---------------------------------------------------------------------------------------------
// Strategies

/// Deterministic filler for long strings: compressible (a short repeated pattern) or noise.
pub fn long_bytes(len: usize, seed: u64, compressible: bool) -> Vec<u8> {
    if compressible {
        let pat: Vec<u8> = (0..1 + seed % 7).map(|i| b'a' + ((seed >> i) % 26) as u8).collect();
        pat.iter().copied().cycle().take(len).collect()
    } else {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }
}

pub fn long_string(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    (len, any::<u64>(), any::<bool>()).prop_map(|(n, s, c)| long_bytes(n, s, c))
}

pub const INT_EDGES: &[i64] = &[
    0,
    1,
    12,
    13,
    -1,
    127,
    128,
    -128,
    -129,
    255,
    256,
    4095,
    4096,
    -4096,
    -4097,
    32767,
    32768,
    -32768,
    -32769,
    8388607,
    8388608,
    -8388608,
    -8388609,
    i32::MAX as i64,
    i32::MAX as i64 + 1,
    i32::MIN as i64,
    i32::MIN as i64 - 1,
    i64::MAX,
    i64::MIN,
];

/// Integer-looking text: canonical integers (edges and random) and near misses that must stay
/// strings.
pub fn int_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        select(INT_EDGES).prop_map(|v| v.to_string().into_bytes()),
        any::<i64>().prop_map(|v| v.to_string().into_bytes()),
        (-300i64..300).prop_map(|v| v.to_string().into_bytes()),
        select(
            &[
                "-0",
                "007",
                "+1",
                " 1",
                "1 ",
                "00",
                "0x10",
                "1e3",
                "1.0",
                "-",
                "9223372036854775808",
                "-9223372036854775809",
                "12345678901234567890123"
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// One logical string element: short binary (empty included), integer-looking, and lengths on
/// both sides of every length-form boundary (listpack 64 / 4096, ziplist and zipmap 254 entry
/// sizes, ziplist 64 / 16384).
pub fn elem() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..8),
        6 => int_text(),
        2 => vec(any::<u8>(), 60..70),
        1 => long_string(248..262),
        1 => long_string(4090..4102),
        1 => long_string(16378..16390),
    ]
    .boxed()
}

/// Small elements only (for stream fields and names).
pub fn small_elem() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..6), int_text()].boxed()
}

pub fn dedup_by_key<T>(v: Vec<T>, key: impl Fn(&T) -> &[u8]) -> Vec<T> {
    let mut seen = HashSet::new();
    v.into_iter().filter(|x| seen.insert(key(x).to_vec())).collect()
}

/// At least one element, unique.
pub fn unique_elems(max: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(elem(), 1..max).prop_map(|v| dedup_by_key(v, |x| x))
}

pub fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("NaN", |v| !v.is_nan()),
        (-1000i64..1000).prop_map(|v| v as f64),
        (-1000i64..1000).prop_map(|v| v as f64 / 8.0),
        select(
            &[
                0.0,
                -0.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
                1e300,
                -1e-300,
                5e-324,
                f64::MAX,
                f64::MIN,
                0.1,
                9007199254740992.0,
                9007199254740994.0,
                -9223372036854775808.0,
                1e20
            ][..]
        ),
    ]
}

pub fn zset_items(max: usize) -> impl Strategy<Value = Vec<(Vec<u8>, f64)>> {
    vec((elem(), score()), 1..max).prop_map(|v| dedup_by_key(v, |x| &x.0))
}

pub fn hash_pairs(max: usize) -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    vec((elem(), elem()), 1..max).prop_map(|v| dedup_by_key(v, |x| &x.0))
}

pub fn expire(min: i64) -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        Just(None),
        (min..=MAX_TTL).prop_map(Some),
        select(vec![min, min + 1, MAX_TTL, 1_700_000_000_000]).prop_map(Some),
    ]
}

pub fn hash_ttl(max: usize, min_expire: i64) -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>, Option<i64>)>> {
    vec((elem(), elem(), expire(min_expire)), 1..max).prop_map(|v| dedup_by_key(v, |x| &x.0))
}

// ---------------------------------------------------------------------------------------------
// Cases: a type, its serialized value and the value the decoder must produce.

#[derive(Debug, Clone)]
pub struct Case {
    pub t: u8,
    pub fmt: Format,
    pub bytes: Vec<u8>,
    pub expected: Value,
}

pub fn case(t: u8, bytes: Vec<u8>, expected: Value) -> Case {
    // Stream type 26 exists from RDB 13 on.
    let fmt = if t == 26 { Format { version: 13, ..REDIS } } else { REDIS };
    Case { t, fmt, bytes, expected }
}

pub fn str_bytes(b: &[u8], compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write_string(&mut out, b, compress);
    out
}

pub fn hash_value(pairs: &[(Vec<u8>, Vec<u8>)]) -> Value {
    Value::Hash(
        pairs.iter().map(|(f, v)| HashField { field: f.clone(), value: v.clone(), expire_at_ms: None }).collect(),
    )
}

pub fn hash_ttl_value(fields: &[(Vec<u8>, Vec<u8>, Option<i64>)]) -> Value {
    Value::Hash(
        fields.iter().map(|(f, v, e)| HashField { field: f.clone(), value: v.clone(), expire_at_ms: *e }).collect(),
    )
}

/// The three ways a string can be stored: Redis policy with and without compression, forced LZF.
pub fn string_case() -> impl Strategy<Value = Case> {
    (elem(), 0..3u8).prop_map(|(s, how)| {
        let mut out = Vec::new();
        match how {
            0 => write_string(&mut out, &s, false),
            1 => write_string(&mut out, &s, true),
            _ => write_lzf_string(&mut out, &s),
        }
        case(0, out, Value::String(s))
    })
}

/// Type 1 (linked list) and 2 (hashtable set): `LEN n` and n strings.
pub fn linked_case(t: u8) -> impl Strategy<Value = Case> {
    let items = if t == 1 { vec(elem(), 1..8).boxed() } else { unique_elems(8).boxed() };
    (items, any::<bool>()).prop_map(move |(items, compress)| {
        let mut out = Vec::new();
        write_len(&mut out, items.len() as u64);
        for i in &items {
            write_string(&mut out, i, compress);
        }
        let v = if t == 1 { Value::List(items) } else { Value::Set(items) };
        case(t, out, v)
    })
}

/// Type 3 (ASCII scores) and 5 (binary scores).
pub fn zset_plain_case(t: u8) -> impl Strategy<Value = Case> {
    (zset_items(8), any::<bool>()).prop_map(move |(items, compress)| {
        let mut out = Vec::new();
        write_len(&mut out, items.len() as u64);
        for (m, s) in &items {
            write_string(&mut out, m, compress);
            if t == 3 {
                ascii_double(&mut out, *s);
            } else {
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
        case(t, out, Value::Zset(items))
    })
}

pub fn hash_plain_case() -> impl Strategy<Value = Case> {
    (hash_pairs(8), any::<bool>()).prop_map(|(pairs, compress)| {
        let mut out = Vec::new();
        write_len(&mut out, pairs.len() as u64);
        for (f, v) in &pairs {
            write_string(&mut out, f, compress);
            write_string(&mut out, v, compress);
        }
        case(4, out, hash_value(&pairs))
    })
}

pub fn zipmap_case() -> impl Strategy<Value = Case> {
    (hash_pairs(8), any::<bool>()).prop_map(|(pairs, compress)| {
        let bytes = str_bytes(&zipmap(&pairs), compress);
        case(9, bytes, hash_value(&pairs))
    })
}

/// Which blob builder a collection type uses.
#[derive(Clone, Copy, Debug)]
pub enum Blob {
    Ziplist,
    Listpack,
}

pub fn blob_of(kind: Blob, items: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    match kind {
        Blob::Ziplist => {
            let mut b = ZiplistBuilder::new();
            for i in items {
                b.push(&i);
            }
            b.finish()
        }
        Blob::Listpack => {
            let mut b = ListpackBuilder::new();
            for i in items {
                b.push(&i);
            }
            b.finish()
        }
    }
}

/// Types 10 (list ziplist) and 20 (set listpack).
pub fn flat_blob_case(t: u8, kind: Blob) -> impl Strategy<Value = Case> {
    let items = if t == 10 { vec(elem(), 1..10).boxed() } else { unique_elems(10).boxed() };
    (items, any::<bool>()).prop_map(move |(items, compress)| {
        let bytes = str_bytes(&blob_of(kind, items.clone()), compress);
        let v = if t == 10 { Value::List(items) } else { Value::Set(items) };
        case(t, bytes, v)
    })
}

/// Types 12 and 17: member, score pairs, the score as Redis prints it.
pub fn zset_blob_case(t: u8, kind: Blob) -> impl Strategy<Value = Case> {
    (zset_items(10), any::<bool>()).prop_map(move |(items, compress)| {
        let flat = items.iter().flat_map(|(m, s)| [m.clone(), double_text(*s).into_bytes()]);
        let bytes = str_bytes(&blob_of(kind, flat), compress);
        case(t, bytes, Value::Zset(items))
    })
}

/// Types 13 and 16: field, value pairs.
pub fn hash_blob_case(t: u8, kind: Blob) -> impl Strategy<Value = Case> {
    (hash_pairs(10), any::<bool>()).prop_map(move |(pairs, compress)| {
        let flat = pairs.iter().flat_map(|(f, v)| [f.clone(), v.clone()]);
        let bytes = str_bytes(&blob_of(kind, flat), compress);
        case(t, bytes, hash_value(&pairs))
    })
}

pub fn intset_case() -> impl Strategy<Value = Case> {
    let v = prop_oneof![select(INT_EDGES), any::<i64>(), -40i64..40];
    (vec(v, 1..12), any::<bool>()).prop_map(|(vals, compress)| {
        let mut sorted = vals.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let bytes = str_bytes(&intset(&vals), compress);
        let members = sorted.iter().map(|v| v.to_string().into_bytes()).collect();
        case(11, bytes, Value::Set(members))
    })
}

/// A quicklist node: its elements, container (v2: plain holds exactly one non-empty element) and
/// whether its `STR` is forced into the LZF form.
#[derive(Debug, Clone)]
pub struct Node {
    pub items: Vec<Vec<u8>>,
    pub plain: bool,
    pub lzf: bool,
}

pub fn quicklist_case(t: u8) -> impl Strategy<Value = Case> {
    let node = (vec(elem(), 1..5), any::<bool>(), any::<bool>()).prop_map(|(items, plain, lzf)| {
        let plain = plain && items.len() == 1 && !items[0].is_empty();
        Node { items, plain, lzf }
    });
    (vec(node, 1..5), any::<bool>()).prop_map(move |(nodes, compress)| {
        let mut out = Vec::new();
        write_len(&mut out, nodes.len() as u64);
        for n in &nodes {
            let payload = if t == 18 && n.plain {
                n.items[0].clone()
            } else if t == 18 {
                blob_of(Blob::Listpack, n.items.clone())
            } else {
                blob_of(Blob::Ziplist, n.items.clone())
            };
            if t == 18 {
                write_len(&mut out, if n.plain { 1 } else { 2 });
            }
            // A plain node goes through the string policy too: an integer-looking element
            // takes the INT form.
            if n.lzf {
                write_lzf_string(&mut out, &payload);
            } else {
                write_string(&mut out, &payload, compress);
            }
        }
        let items = nodes.into_iter().flat_map(|n| n.items).collect();
        case(t, out, Value::List(items))
    })
}

/// Type 24: `MS min_expire`, `LEN n`, n × (`LEN ttl`, field, value); ttl = expire − min + 1.
pub fn hash_metadata_case() -> impl Strategy<Value = Case> {
    (hash_ttl(8, 0), any::<bool>()).prop_map(|(fields, compress)| {
        let min = fields.iter().filter_map(|f| f.2).min().unwrap_or(0);
        let mut out = min.to_le_bytes().to_vec();
        write_len(&mut out, fields.len() as u64);
        for (f, v, e) in &fields {
            write_len(&mut out, e.map_or(0, |e| (e - min + 1) as u64));
            write_string(&mut out, f, compress);
            write_string(&mut out, v, compress);
        }
        case(24, out, hash_ttl_value(&fields))
    })
}

/// Type 25: `MS min_expire`, listpack of (field, value, ttl) triples, ttls ascending, 0 (none)
/// last.
pub fn hash_listpack_ex_case() -> impl Strategy<Value = Case> {
    (hash_ttl(8, 1), any::<bool>()).prop_map(|(mut fields, compress)| {
        fields.sort_by_key(|f| (f.2.is_none(), f.2));
        let min = fields.iter().filter_map(|f| f.2).min().unwrap_or(0);
        let mut lp = ListpackBuilder::new();
        for (f, v, e) in &fields {
            lp.push(f).push(v).push_int(e.unwrap_or(0));
        }
        let mut out = min.to_le_bytes().to_vec();
        write_string(&mut out, &lp.finish(), compress);
        case(25, out, hash_ttl_value(&fields))
    })
}

/// Valkey type 22 HASH_2: `LEN n`, n × (field, value, `MS expire` with −1 = none).
pub fn valkey_hash2_case() -> impl Strategy<Value = Case> {
    (hash_ttl(8, 0), any::<bool>()).prop_map(|(fields, compress)| {
        let mut out = Vec::new();
        write_len(&mut out, fields.len() as u64);
        for (f, v, e) in &fields {
            write_string(&mut out, f, compress);
            write_string(&mut out, v, compress);
            out.extend_from_slice(&e.unwrap_or(-1).to_le_bytes());
        }
        Case { t: 22, fmt: VALKEY, bytes: out, expected: hash_ttl_value(&fields) }
    })
}

/// Redis 7.4-RC type 22 (HASH_METADATA_PRE_GA): `LEN n`, n × (`LEN absolute expire or 0`, field,
/// value).
pub fn hash_metadata_pre_ga_case() -> impl Strategy<Value = Case> {
    (hash_ttl(8, 1), any::<bool>()).prop_map(|(fields, compress)| {
        let mut out = Vec::new();
        write_len(&mut out, fields.len() as u64);
        for (f, v, e) in &fields {
            write_len(&mut out, e.unwrap_or(0) as u64);
            write_string(&mut out, f, compress);
            write_string(&mut out, v, compress);
        }
        case(22, out, hash_ttl_value(&fields))
    })
}

/// Redis 7.4-RC type 23 (HASH_LISTPACK_EX_PRE_GA): type 25 without the `MS` prefix.
pub fn hash_listpack_ex_pre_ga_case() -> impl Strategy<Value = Case> {
    hash_listpack_ex_case().prop_map(|c| case(23, c.bytes[8..].to_vec(), c.expected))
}

#[derive(Debug, Clone)]
pub enum Op {
    SInt(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    Str(Vec<u8>),
}

pub fn module_case() -> impl Strategy<Value = Case> {
    let op = prop_oneof![
        any::<i64>().prop_map(Op::SInt),
        any::<u64>().prop_map(Op::UInt),
        any::<f32>().prop_map(Op::Float),
        any::<f64>().prop_map(Op::Double),
        elem().prop_map(Op::Str),
    ];
    (any::<u64>(), vec(op, 0..6)).prop_map(|(id, ops)| {
        let ops: Vec<ModuleOp<'_>> = ops
            .iter()
            .map(|o| match o {
                Op::SInt(v) => ModuleOp::SInt(*v),
                Op::UInt(v) => ModuleOp::UInt(*v),
                Op::Float(v) => ModuleOp::Float(*v),
                Op::Double(v) => ModuleOp::Double(*v),
                Op::Str(s) => ModuleOp::Str(s),
            })
            .collect();
        let mut out = Vec::new();
        write_module_value(&mut out, id, &ops);
        let mut id_len = Vec::new();
        write_len(&mut id_len, id);
        let payload = out[id_len.len()..].to_vec();
        case(7, out, Value::Module(ModuleValue { module_type: ModuleType(id), payload }))
    })
}

// ---------------------------------------------------------------------------------------------
// Streams (docs/format.md §6.6), built by hand: nodes of entries, metadata, groups, IDMP tail.

#[derive(Debug, Clone)]
pub struct SEntry {
    pub id: StreamId,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    pub deleted: bool,
}

#[derive(Debug, Clone)]
pub struct SConsumer {
    pub name: Vec<u8>,
    pub seen: i64,
    pub active: i64,
    pub pending: Vec<StreamId>,
}

#[derive(Debug, Clone)]
pub struct SGroup {
    pub name: Vec<u8>,
    pub last_id: StreamId,
    pub entries_read: u64,
    /// (id, delivery time, delivery count)
    pub pel: Vec<(StreamId, i64, u64)>,
    pub consumers: Vec<SConsumer>,
}

#[derive(Debug, Clone)]
pub struct SStream {
    pub nodes: Vec<Vec<SEntry>>,
    pub length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    pub groups: Vec<SGroup>,
    pub idmp: Idmp,
}

pub fn sid(ms: u64, seq: u64) -> StreamId {
    StreamId { ms, seq }
}

pub fn id128(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

pub fn id_pair(out: &mut Vec<u8>, id: StreamId) {
    write_len(out, id.ms);
    write_len(out, id.seq);
}

/// A node listpack: master entry (live, deleted, master fields of the first entry, 0), then per
/// entry flags, ID deltas, fields (values only with SAMEFIELDS) and lp-count.
pub fn node_listpack(entries: &[SEntry]) -> Vec<u8> {
    let master = entries[0].id;
    let master_fields: Vec<&[u8]> = entries[0].fields.iter().map(|f| &f.0[..]).collect();
    let live = entries.iter().filter(|e| !e.deleted).count();
    let mut lp = ListpackBuilder::new();
    lp.push_int(live as i64).push_int((entries.len() - live) as i64).push_int(master_fields.len() as i64);
    for f in &master_fields {
        lp.push(f);
    }
    lp.push_int(0);
    for e in entries {
        let same = e.fields.iter().map(|f| &f.0[..]).eq(master_fields.iter().copied());
        lp.push_int(e.deleted as i64 | if same { 2 } else { 0 })
            .push_int(e.id.ms.wrapping_sub(master.ms) as i64)
            .push_int(e.id.seq.wrapping_sub(master.seq) as i64);
        if same {
            for (_, v) in &e.fields {
                lp.push(v);
            }
            lp.push_int(3 + master_fields.len() as i64);
        } else {
            lp.push_int(e.fields.len() as i64);
            for (f, v) in &e.fields {
                lp.push(f).push(v);
            }
            lp.push_int(4 + 2 * e.fields.len() as i64);
        }
    }
    lp.finish()
}

pub fn encode_stream(t: u8, s: &SStream, compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write_len(&mut out, s.nodes.len() as u64);
    for n in &s.nodes {
        let mut key = Vec::new();
        id128(&mut key, n[0].id);
        write_raw_string(&mut out, &key);
        write_string(&mut out, &node_listpack(n), compress);
    }
    write_len(&mut out, s.length);
    id_pair(&mut out, s.last_id);
    if t >= 19 {
        id_pair(&mut out, s.first_id);
        id_pair(&mut out, s.max_deleted);
        write_len(&mut out, s.entries_added);
    }
    write_len(&mut out, s.groups.len() as u64);
    for g in &s.groups {
        write_string(&mut out, &g.name, compress);
        id_pair(&mut out, g.last_id);
        if t >= 19 {
            write_len(&mut out, g.entries_read);
        }
        write_len(&mut out, g.pel.len() as u64);
        for (id, time, count) in &g.pel {
            id128(&mut out, *id);
            out.extend_from_slice(&time.to_le_bytes());
            write_len(&mut out, *count);
        }
        write_len(&mut out, g.consumers.len() as u64);
        for c in &g.consumers {
            write_string(&mut out, &c.name, compress);
            out.extend_from_slice(&c.seen.to_le_bytes());
            if t >= 21 {
                out.extend_from_slice(&c.active.to_le_bytes());
            }
            write_len(&mut out, c.pending.len() as u64);
            for id in &c.pending {
                id128(&mut out, *id);
            }
        }
    }
    if t == 26 {
        let i = &s.idmp;
        write_len(&mut out, i.duration_s);
        write_len(&mut out, i.maxsize);
        write_len(&mut out, i.producers.len() as u64);
        for (pid, entries) in &i.producers {
            write_string(&mut out, pid, compress);
            write_len(&mut out, entries.len() as u64);
            for (iid, id) in entries {
                write_string(&mut out, iid, compress);
                id_pair(&mut out, *id);
            }
        }
        write_len(&mut out, i.iids_added);
        write_len(&mut out, i.iids_duplicates);
    }
    out
}

pub fn expected_stream(t: u8, s: &SStream) -> Value {
    let entries = s
        .nodes
        .iter()
        .flatten()
        .filter(|e| !e.deleted)
        .map(|e| StreamEntry { id: e.id, fields: e.fields.clone() })
        .collect();
    let v2 = t >= 19;
    let meta = StreamMeta {
        length: s.length,
        last_id: s.last_id,
        first_id: v2.then_some(s.first_id),
        max_deleted_id: v2.then_some(s.max_deleted),
        entries_added: v2.then_some(s.entries_added),
        groups: s.groups.len() as u64,
    };
    let groups = s
        .groups
        .iter()
        .map(|g| StreamGroup {
            name: g.name.clone(),
            last_id: g.last_id,
            entries_read: v2.then_some(g.entries_read),
            pending: g
                .pel
                .iter()
                .map(|(id, time, count)| PendingEntry {
                    id: *id,
                    consumer: g
                        .consumers
                        .iter()
                        .position(|c| c.pending.contains(id))
                        .expect("every PEL entry has a consumer"),
                    delivery_time_ms: *time,
                    delivery_count: *count,
                })
                .collect(),
            consumers: g
                .consumers
                .iter()
                .map(|c| Consumer {
                    name: c.name.clone(),
                    seen_time_ms: c.seen,
                    active_time_ms: (t >= 21).then_some(c.active),
                    pending: c.pending.clone(),
                })
                .collect(),
        })
        .collect();
    Value::Stream(Box::new(Stream { entries, meta, groups, idmp: (t == 26).then(|| s.idmp.clone()) }))
}

/// Tiny xorshift for the parts of a stream that only need to be arbitrary, not shrinkable.
pub struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

pub const FIELD_SETS: &[&[&str]] = &[&["f"], &["f", "g"], &["name", "1"], &["x", "y", "z"]];

pub fn stream_case(t: u8) -> impl Strategy<Value = Case> {
    (any::<u64>(), (0u64..1 << 44, 0u64..1000), vec(small_elem(), 24), 0usize..12, 0usize..3, any::<bool>()).prop_map(
        move |(seed, (ms0, seq0), pool, n, ngroups, compress)| {
            let mut r = Rng(seed | 1);
            let pick = |r: &mut Rng| pool[r.below(pool.len() as u64) as usize].clone();
            // Entries with strictly ascending IDs; seq resets when ms moves on, so deltas go
            // negative.
            let mut id = sid(ms0, seq0);
            let mut all = Vec::new();
            for i in 0..n {
                if i > 0 {
                    if r.below(2) == 0 {
                        id.seq += 1 + r.below(3);
                    } else {
                        id = sid(id.ms + 1 + r.below(1000), r.below(5));
                    }
                }
                let names = FIELD_SETS[r.below(FIELD_SETS.len() as u64) as usize];
                let fields = names.iter().map(|f| (f.as_bytes().to_vec(), pick(&mut r))).collect();
                all.push(SEntry { id, fields, deleted: r.below(5) == 0 });
            }
            let mut nodes = Vec::new();
            let mut rest = &all[..];
            while !rest.is_empty() {
                let k = (1 + r.below(4) as usize).min(rest.len());
                nodes.push(rest[..k].to_vec());
                rest = &rest[k..];
            }
            let live: Vec<&SEntry> = all.iter().filter(|e| !e.deleted).collect();
            let last_id = all.last().map_or(sid(ms0, seq0), |e| e.id);
            let mut groups = Vec::new();
            let names: &[&[u8]] = &[b"g1", b"12", b"group:with:colons"];
            for name in names.iter().take(ngroups) {
                let nconsumers = r.below(3) as usize;
                let mut consumers: Vec<SConsumer> = (0..nconsumers)
                    .map(|c| SConsumer {
                        name: format!("c{c}").into_bytes(),
                        seen: r.next() as i64,
                        active: r.next() as i64,
                        pending: Vec::new(),
                    })
                    .collect();
                let mut pel = Vec::new();
                if nconsumers > 0 {
                    for e in &all {
                        if r.below(2) == 0 {
                            pel.push((e.id, r.next() as i64, r.below(5)));
                            consumers[r.below(nconsumers as u64) as usize].pending.push(e.id);
                        }
                    }
                }
                groups.push(SGroup {
                    name: name.to_vec(),
                    last_id: all.get(r.below(n as u64 + 1) as usize).map_or(sid(0, 0), |e| e.id),
                    entries_read: if r.below(3) == 0 { u64::MAX } else { r.below(20) },
                    pel,
                    consumers,
                });
            }
            let nprod = r.below(3) as usize;
            let idmp = Idmp {
                duration_s: 1 + r.below(86400),
                maxsize: 1 + r.below(10000),
                producers: (0..nprod)
                    .map(|p| {
                        let k = r.below(3);
                        let entries = (0..k).map(|_| (pick(&mut r), sid(r.next(), r.next()))).collect();
                        (format!("p{p}").into_bytes(), entries)
                    })
                    .collect(),
                iids_added: r.next(),
                iids_duplicates: r.below(10),
            };
            let s = SStream {
                nodes,
                length: live.len() as u64,
                last_id: sid(last_id.ms + r.below(2), last_id.seq),
                first_id: live.first().map_or(sid(0, 0), |e| e.id),
                max_deleted: all.iter().rfind(|e| e.deleted).map_or(sid(0, 0), |e| e.id),
                entries_added: all.len() as u64 + r.below(3),
                groups,
                idmp,
            };
            case(t, encode_stream(t, &s, compress), expected_stream(t, &s))
        },
    )
}

// ---------------------------------------------------------------------------------------------
// The round-trip check

pub fn raw(c: &Case) -> RawValue<'_> {
    RawValue { type_byte: c.t, format: c.fmt, bytes: &c.bytes, offset: BASE }
}

thread_local! {
    /// One walker for every case a test thread runs: its reused buffers must not leak between
    /// values.
    static SHARED: std::cell::RefCell<Walker> = std::cell::RefCell::new(Walker::new());
}

pub fn check(c: &Case) -> Result<(), TestCaseError> {
    let mut w = Walker::new();
    let got = raw(c).decode(&mut w).map_err(|e| TestCaseError::fail(format!("type {} decode: {e}", c.t)))?;
    prop_assert_eq!(&got, &c.expected, "type {}", c.t);
    let shared = SHARED.with_borrow_mut(|w| raw(c).decode(w));
    prop_assert_eq!(shared.as_ref().ok(), Some(&c.expected), "type {} with a reused walker", c.t);
    raw(c).validate(&mut w).map_err(|e| TestCaseError::fail(format!("type {} validate: {e}", c.t)))?;
    // skip_value stops exactly at the end of the value, even with bytes after it.
    let mut padded = c.bytes.clone();
    padded.extend_from_slice(&[0xFF, 0x00, 0xAB]);
    let mut cur = Cursor::new(&padded, BASE);
    skip_value(&mut cur, c.t, c.fmt).map_err(|e| TestCaseError::fail(format!("type {} skip: {e}", c.t)))?;
    prop_assert_eq!(cur.pos(), c.bytes.len(), "type {} skip_value end", c.t);
    Ok(())
}

/// Case count: `default`, or `PROPTEST_CASES` for a longer soak.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Whole files

#[derive(Debug, Clone)]
pub struct Key {
    pub db: u64,
    pub key: Vec<u8>,
    pub expire: Option<i64>,
    /// IDLE (LRU seconds) or FREQ (LFU counter) modifier.
    pub lru: Lru,
    pub case: Case,
}

#[derive(Debug, Clone, Copy)]
pub enum Lru {
    None,
    Idle(u64),
    Freq(u8),
}

pub fn header(magic: &str) -> Vec<u8> {
    assert_eq!(magic.len(), 9);
    magic.as_bytes().to_vec()
}

pub fn aux(out: &mut Vec<u8>, k: &[u8], v: &[u8]) {
    out.push(0xFA);
    write_string(out, k, true);
    write_string(out, v, true);
}

/// EXPIRETIME_MS, then IDLE or FREQ, then type, key and value (Redis's order).
pub fn key_record(out: &mut Vec<u8>, k: &Key) {
    if let Some(t) = k.expire {
        out.push(0xFC);
        out.extend_from_slice(&t.to_le_bytes());
    }
    match k.lru {
        Lru::None => {}
        Lru::Idle(s) => {
            out.push(0xF8);
            write_len(out, s);
        }
        Lru::Freq(f) => out.extend_from_slice(&[0xF9, f]),
    }
    out.push(k.case.t);
    write_string(out, &k.key, true);
    out.extend_from_slice(&k.case.bytes);
}

pub fn select_db(out: &mut Vec<u8>, db: u64, keys: u64, expires: u64) {
    out.push(0xFE);
    write_len(out, db);
    out.push(0xFB);
    write_len(out, keys);
    write_len(out, expires);
}

/// Appends EOF and the CRC-64 of everything before it (or `crc` when given).
pub fn finish(mut out: Vec<u8>, crc: Option<u64>) -> Vec<u8> {
    out.push(0xFF);
    let c = crc.unwrap_or_else(|| crc64(&out));
    out.extend_from_slice(&c.to_le_bytes());
    out
}

pub fn build_file(magic: &str, keys: &[Key]) -> Vec<u8> {
    let mut out = header(magic);
    aux(&mut out, b"redis-ver", b"7.4.0");
    aux(&mut out, b"redis-bits", b"64");
    aux(&mut out, b"ctime", b"1700000000");
    aux(&mut out, b"used-mem", b"1234567");
    aux(&mut out, b"aof-base", b"0");
    // A function library and a MODULE_AUX record (when = 1) before the keyspace.
    out.push(0xF5);
    write_string(&mut out, b"#!lua name=lib\nredis.register_function('f', function() return 1 end)", true);
    out.push(0xF7);
    write_len(&mut out, 0x45E25238DF912C03);
    write_len(&mut out, 2);
    write_len(&mut out, 1);
    write_module_opcodes(&mut out, &[ModuleOp::UInt(7), ModuleOp::Str(b"aux")]);
    let mut dbs: Vec<u64> = keys.iter().map(|k| k.db).collect();
    dbs.dedup();
    for db in dbs {
        let in_db: Vec<&Key> = keys.iter().filter(|k| k.db == db).collect();
        let expires = in_db.iter().filter(|k| k.expire.is_some()).count();
        select_db(&mut out, db, in_db.len() as u64, expires as u64);
        // Redis 7.4 cluster mode: SLOT_INFO before a slot's first key.
        out.push(0xF4);
        write_len(&mut out, 12182);
        write_len(&mut out, in_db.len() as u64);
        write_len(&mut out, expires as u64);
        for (i, k) in in_db.into_iter().enumerate() {
            if i == 1 {
                // Valkey 8 puts AUX records between keys.
                aux(&mut out, b"slot-info", b"1,2,0");
            }
            key_record(&mut out, k);
        }
    }
    finish(out, None)
}

pub fn opts() -> Options {
    Options { keep_going: false, max_errors: 100, now_ms: 1_700_000_000_000, target: None }
}

pub fn verify(data: &[u8]) -> Report {
    verify_bytes("test.rdb", data, &opts())
}

pub fn first_error(r: &Report) -> (ErrorKind, u64) {
    let e = r.errors.first().unwrap_or_else(|| panic!("no error in {r:?}"));
    (e.kind, e.offset)
}

/// Any value of the Redis-flavour types.
pub fn any_redis_case() -> BoxedStrategy<Case> {
    prop_oneof![
        string_case().boxed(),
        linked_case(1).boxed(),
        linked_case(2).boxed(),
        zset_plain_case(3).boxed(),
        hash_plain_case().boxed(),
        zset_plain_case(5).boxed(),
        module_case().boxed(),
        zipmap_case().boxed(),
        flat_blob_case(10, Blob::Ziplist).boxed(),
        intset_case().boxed(),
        zset_blob_case(12, Blob::Ziplist).boxed(),
        hash_blob_case(13, Blob::Ziplist).boxed(),
        quicklist_case(14).boxed(),
        hash_blob_case(16, Blob::Listpack).boxed(),
        zset_blob_case(17, Blob::Listpack).boxed(),
        quicklist_case(18).boxed(),
        flat_blob_case(20, Blob::Listpack).boxed(),
        stream_case(21).boxed(),
        hash_metadata_case().boxed(),
        hash_listpack_ex_case().boxed(),
    ]
    .boxed()
}

pub fn file_keys() -> impl Strategy<Value = Vec<Key>> {
    let key = (
        small_elem(),
        prop_oneof![Just(None), any::<i64>().prop_map(Some)],
        prop_oneof![Just(Lru::None), any::<u64>().prop_map(Lru::Idle), any::<u8>().prop_map(Lru::Freq)],
        any_redis_case(),
    );
    (vec(key, 1..8), vec(key_db(), 8)).prop_map(|(keys, dbs)| {
        let mut keys: Vec<Key> = keys
            .into_iter()
            .zip(dbs)
            .map(|((key, expire, lru, case), db)| Key { db, key, expire, lru, case })
            .collect();
        keys.sort_by_key(|k| k.db);
        let mut seen = HashSet::new();
        keys.retain(|k| seen.insert((k.db, k.key.clone())));
        keys
    })
}

pub fn key_db() -> impl Strategy<Value = u64> {
    select(vec![0u64, 0, 1, 15])
}

// ---------------------------------------------------------------------------------------------
// Negative tests

pub fn decode_err(t: u8, fmt: Format, bytes: &[u8]) -> rdbtool::Error {
    let rv = RawValue { type_byte: t, format: fmt, bytes, offset: BASE };
    let mut w = Walker::new();
    let e = rv.decode(&mut w).expect_err(&format!("type {t} {bytes:02x?} decoded"));
    // Validation agrees with decoding.
    let e2 = rv.validate(&mut w).expect_err("validate accepted what decode rejected");
    assert_eq!(e.kind, e2.kind, "{e} vs {e2}");
    assert_eq!(e.offset, e2.offset, "{e} vs {e2}");
    e
}

/// Asserts the error kind and that the offset lies inside the value.
pub fn expect_err(t: u8, bytes: &[u8], kind: ErrorKind) -> rdbtool::Error {
    expect_err_fmt(t, REDIS, bytes, kind)
}

pub fn expect_err_fmt(t: u8, fmt: Format, bytes: &[u8], kind: ErrorKind) -> rdbtool::Error {
    let e = decode_err(t, fmt, bytes);
    assert_eq!(e.kind, kind, "type {t}: {e}");
    assert!(
        (BASE..BASE + bytes.len() as u64).contains(&e.offset),
        "type {t}: offset {} outside the value [{BASE}, {}): {e}",
        e.offset,
        BASE + bytes.len() as u64
    );
    e
}

pub fn lp(items: &[&[u8]]) -> Vec<u8> {
    let mut b = ListpackBuilder::new();
    for i in items {
        b.push(i);
    }
    b.finish()
}

pub fn zl(items: &[&[u8]]) -> Vec<u8> {
    let mut b = ZiplistBuilder::new();
    for i in items {
        b.push(i);
    }
    b.finish()
}
