//! Round trips through every encoding the reader handles: random logical values are serialized
//! with `rdbtool::rdb::encode` into each on-disk type, decoded with the `Walker`, and compared with
//! the input; `skip_value` must consume exactly the serialized bytes. Then whole files through
//! `verify_bytes` and `Reader`, and one negative test per corruption the reader must report.

use std::collections::HashSet;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use rdbtool::ErrorKind;
use rdbtool::crc::crc64;
use rdbtool::rdb::cursor::Cursor;
use rdbtool::rdb::encode::*;
use rdbtool::rdb::module::ModuleType;
use rdbtool::rdb::value::{
    Consumer, HashField, Idmp, ModuleValue, PendingEntry, Stream, StreamEntry, StreamGroup, StreamId, StreamMeta,
};
use rdbtool::rdb::walk::skip_value;
use rdbtool::rdb::{Flavor, Format, RawValue, Reader, Record, Value, Walker};
use rdbtool::verify::{ChecksumStatus, Options, Report, verify_bytes};

const REDIS: Format = Format { flavor: Flavor::Redis, version: 12 };
const VALKEY: Format = Format { flavor: Flavor::Valkey, version: 80 };
/// Values are decoded as if they sat at this file offset, so error offsets can be checked.
const BASE: u64 = 1000;
/// Field TTLs above this are corrupt (Redis keeps 48 bits).
const MAX_TTL: i64 = (1 << 48) - 1;

// ---------------------------------------------------------------------------------------------
// Strategies

/// Deterministic filler for long strings: compressible (a short repeated pattern) or noise.
fn long_bytes(len: usize, seed: u64, compressible: bool) -> Vec<u8> {
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

fn long_string(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    (len, any::<u64>(), any::<bool>()).prop_map(|(n, s, c)| long_bytes(n, s, c))
}

const INT_EDGES: &[i64] = &[
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
fn int_text() -> impl Strategy<Value = Vec<u8>> {
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
fn elem() -> BoxedStrategy<Vec<u8>> {
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
fn small_elem() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..6), int_text()].boxed()
}

fn dedup_by_key<T>(v: Vec<T>, key: impl Fn(&T) -> &[u8]) -> Vec<T> {
    let mut seen = HashSet::new();
    v.into_iter().filter(|x| seen.insert(key(x).to_vec())).collect()
}

/// At least one element, unique.
fn unique_elems(max: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(elem(), 1..max).prop_map(|v| dedup_by_key(v, |x| x))
}

fn score() -> impl Strategy<Value = f64> {
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

fn zset_items(max: usize) -> impl Strategy<Value = Vec<(Vec<u8>, f64)>> {
    vec((elem(), score()), 1..max).prop_map(|v| dedup_by_key(v, |x| &x.0))
}

fn hash_pairs(max: usize) -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    vec((elem(), elem()), 1..max).prop_map(|v| dedup_by_key(v, |x| &x.0))
}

fn expire(min: i64) -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        Just(None),
        (min..=MAX_TTL).prop_map(Some),
        select(vec![min, min + 1, MAX_TTL, 1_700_000_000_000]).prop_map(Some),
    ]
}

fn hash_ttl(max: usize, min_expire: i64) -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>, Option<i64>)>> {
    vec((elem(), elem(), expire(min_expire)), 1..max).prop_map(|v| dedup_by_key(v, |x| &x.0))
}

// ---------------------------------------------------------------------------------------------
// Cases: a type, its serialized value and the value the decoder must produce.

#[derive(Debug, Clone)]
struct Case {
    t: u8,
    fmt: Format,
    bytes: Vec<u8>,
    expected: Value,
}

fn case(t: u8, bytes: Vec<u8>, expected: Value) -> Case {
    // Stream type 26 exists from RDB 13 on.
    let fmt = if t == 26 { Format { version: 13, ..REDIS } } else { REDIS };
    Case { t, fmt, bytes, expected }
}

fn str_bytes(b: &[u8], compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write_string(&mut out, b, compress);
    out
}

fn hash_value(pairs: &[(Vec<u8>, Vec<u8>)]) -> Value {
    Value::Hash(
        pairs.iter().map(|(f, v)| HashField { field: f.clone(), value: v.clone(), expire_at_ms: None }).collect(),
    )
}

fn hash_ttl_value(fields: &[(Vec<u8>, Vec<u8>, Option<i64>)]) -> Value {
    Value::Hash(
        fields.iter().map(|(f, v, e)| HashField { field: f.clone(), value: v.clone(), expire_at_ms: *e }).collect(),
    )
}

/// The three ways a string can be stored: Redis policy with and without compression, forced LZF.
fn string_case() -> impl Strategy<Value = Case> {
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
fn linked_case(t: u8) -> impl Strategy<Value = Case> {
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
fn zset_plain_case(t: u8) -> impl Strategy<Value = Case> {
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

fn hash_plain_case() -> impl Strategy<Value = Case> {
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

fn zipmap_case() -> impl Strategy<Value = Case> {
    (hash_pairs(8), any::<bool>()).prop_map(|(pairs, compress)| {
        let bytes = str_bytes(&zipmap(&pairs), compress);
        case(9, bytes, hash_value(&pairs))
    })
}

/// Which blob builder a collection type uses.
#[derive(Clone, Copy, Debug)]
enum Blob {
    Ziplist,
    Listpack,
}

fn blob_of(kind: Blob, items: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
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
fn flat_blob_case(t: u8, kind: Blob) -> impl Strategy<Value = Case> {
    let items = if t == 10 { vec(elem(), 1..10).boxed() } else { unique_elems(10).boxed() };
    (items, any::<bool>()).prop_map(move |(items, compress)| {
        let bytes = str_bytes(&blob_of(kind, items.clone()), compress);
        let v = if t == 10 { Value::List(items) } else { Value::Set(items) };
        case(t, bytes, v)
    })
}

/// Types 12 and 17: member, score pairs, the score as Redis prints it.
fn zset_blob_case(t: u8, kind: Blob) -> impl Strategy<Value = Case> {
    (zset_items(10), any::<bool>()).prop_map(move |(items, compress)| {
        let flat = items.iter().flat_map(|(m, s)| [m.clone(), double_text(*s).into_bytes()]);
        let bytes = str_bytes(&blob_of(kind, flat), compress);
        case(t, bytes, Value::Zset(items))
    })
}

/// Types 13 and 16: field, value pairs.
fn hash_blob_case(t: u8, kind: Blob) -> impl Strategy<Value = Case> {
    (hash_pairs(10), any::<bool>()).prop_map(move |(pairs, compress)| {
        let flat = pairs.iter().flat_map(|(f, v)| [f.clone(), v.clone()]);
        let bytes = str_bytes(&blob_of(kind, flat), compress);
        case(t, bytes, hash_value(&pairs))
    })
}

fn intset_case() -> impl Strategy<Value = Case> {
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
struct Node {
    items: Vec<Vec<u8>>,
    plain: bool,
    lzf: bool,
}

fn quicklist_case(t: u8) -> impl Strategy<Value = Case> {
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
fn hash_metadata_case() -> impl Strategy<Value = Case> {
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
fn hash_listpack_ex_case() -> impl Strategy<Value = Case> {
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
fn valkey_hash2_case() -> impl Strategy<Value = Case> {
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
fn hash_metadata_pre_ga_case() -> impl Strategy<Value = Case> {
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
fn hash_listpack_ex_pre_ga_case() -> impl Strategy<Value = Case> {
    hash_listpack_ex_case().prop_map(|c| case(23, c.bytes[8..].to_vec(), c.expected))
}

#[derive(Debug, Clone)]
enum Op {
    SInt(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    Str(Vec<u8>),
}

fn module_case() -> impl Strategy<Value = Case> {
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
struct SEntry {
    id: StreamId,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    deleted: bool,
}

#[derive(Debug, Clone)]
struct SConsumer {
    name: Vec<u8>,
    seen: i64,
    active: i64,
    pending: Vec<StreamId>,
}

#[derive(Debug, Clone)]
struct SGroup {
    name: Vec<u8>,
    last_id: StreamId,
    entries_read: u64,
    /// (id, delivery time, delivery count)
    pel: Vec<(StreamId, i64, u64)>,
    consumers: Vec<SConsumer>,
}

#[derive(Debug, Clone)]
struct SStream {
    nodes: Vec<Vec<SEntry>>,
    length: u64,
    last_id: StreamId,
    first_id: StreamId,
    max_deleted: StreamId,
    entries_added: u64,
    groups: Vec<SGroup>,
    idmp: Idmp,
}

fn sid(ms: u64, seq: u64) -> StreamId {
    StreamId { ms, seq }
}

fn id128(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

fn id_pair(out: &mut Vec<u8>, id: StreamId) {
    write_len(out, id.ms);
    write_len(out, id.seq);
}

/// A node listpack: master entry (live, deleted, master fields of the first entry, 0), then per
/// entry flags, ID deltas, fields (values only with SAMEFIELDS) and lp-count.
fn node_listpack(entries: &[SEntry]) -> Vec<u8> {
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

fn encode_stream(t: u8, s: &SStream, compress: bool) -> Vec<u8> {
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

fn expected_stream(t: u8, s: &SStream) -> Value {
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
struct Rng(u64);
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

const FIELD_SETS: &[&[&str]] = &[&["f"], &["f", "g"], &["name", "1"], &["x", "y", "z"]];

fn stream_case(t: u8) -> impl Strategy<Value = Case> {
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

fn raw(c: &Case) -> RawValue<'_> {
    RawValue { type_byte: c.t, format: c.fmt, bytes: &c.bytes, offset: BASE }
}

thread_local! {
    /// One walker for every case a test thread runs: its reused buffers must not leak between
    /// values.
    static SHARED: std::cell::RefCell<Walker> = std::cell::RefCell::new(Walker::new());
}

fn check(c: &Case) -> Result<(), TestCaseError> {
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
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn rt_00_string(c in string_case()) { check(&c)?; }
    #[test]
    fn rt_01_list_linked(c in linked_case(1)) { check(&c)?; }
    #[test]
    fn rt_02_set_hashtable(c in linked_case(2)) { check(&c)?; }
    #[test]
    fn rt_03_zset_ascii(c in zset_plain_case(3)) { check(&c)?; }
    #[test]
    fn rt_04_hash(c in hash_plain_case()) { check(&c)?; }
    #[test]
    fn rt_05_zset_binary(c in zset_plain_case(5)) { check(&c)?; }
    #[test]
    fn rt_07_module(c in module_case()) { check(&c)?; }
    #[test]
    fn rt_09_zipmap(c in zipmap_case()) { check(&c)?; }
    #[test]
    fn rt_10_list_ziplist(c in flat_blob_case(10, Blob::Ziplist)) { check(&c)?; }
    #[test]
    fn rt_11_intset(c in intset_case()) { check(&c)?; }
    #[test]
    fn rt_12_zset_ziplist(c in zset_blob_case(12, Blob::Ziplist)) { check(&c)?; }
    #[test]
    fn rt_13_hash_ziplist(c in hash_blob_case(13, Blob::Ziplist)) { check(&c)?; }
    #[test]
    fn rt_14_quicklist(c in quicklist_case(14)) { check(&c)?; }
    #[test]
    fn rt_16_hash_listpack(c in hash_blob_case(16, Blob::Listpack)) { check(&c)?; }
    #[test]
    fn rt_17_zset_listpack(c in zset_blob_case(17, Blob::Listpack)) { check(&c)?; }
    #[test]
    fn rt_18_quicklist_v2(c in quicklist_case(18)) { check(&c)?; }
    #[test]
    fn rt_20_set_listpack(c in flat_blob_case(20, Blob::Listpack)) { check(&c)?; }
    #[test]
    fn rt_22_valkey_hash2(c in valkey_hash2_case()) { check(&c)?; }
    #[test]
    fn rt_22_hash_metadata_pre_ga(c in hash_metadata_pre_ga_case()) { check(&c)?; }
    #[test]
    fn rt_23_hash_listpack_ex_pre_ga(c in hash_listpack_ex_pre_ga_case()) { check(&c)?; }
    #[test]
    fn rt_24_hash_metadata(c in hash_metadata_case()) { check(&c)?; }
    #[test]
    fn rt_25_hash_listpack_ex(c in hash_listpack_ex_case()) { check(&c)?; }
    #[test]
    fn rt_15_stream(c in stream_case(15)) { check(&c)?; }
    #[test]
    fn rt_19_stream_v2(c in stream_case(19)) { check(&c)?; }
    #[test]
    fn rt_21_stream_v3(c in stream_case(21)) { check(&c)?; }
    #[test]
    fn rt_26_stream_v4(c in stream_case(26)) { check(&c)?; }
}

/// Large counts: listpack `num_elements` and ziplist `zllen` saturate at 65535, zipmap `zmlen` at
/// 254; the reader must then count by walking.
#[test]
fn saturated_counts() {
    let n = 70_000i64;
    let members: Vec<Vec<u8>> = (0..n).map(|i| (i * 3 - 100_000).to_string().into_bytes()).collect();
    for (t, kind) in [(20u8, Blob::Listpack), (10, Blob::Ziplist)] {
        let c = case(
            t,
            str_bytes(&blob_of(kind, members.clone()), true),
            if t == 20 { Value::Set(members.clone()) } else { Value::List(members.clone()) },
        );
        check(&c).unwrap();
    }
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..300).map(|i| (format!("f{i}").into_bytes(), vec![b'v'; i % 7])).collect();
    let z = zipmap(&pairs);
    assert_eq!(z[0], 254);
    check(&case(9, str_bytes(&z, false), hash_value(&pairs))).unwrap();
}

/// A ziplist prevlen may use the 5-byte form for a small value (Redis avoids shrinking it).
#[test]
fn ziplist_big_prevlen_form_for_small_value() {
    // Two entries "a", "b"; the second's prevlen (3) in the 5-byte form.
    let mut zl = vec![0u8; 10];
    zl.extend_from_slice(&[0x00, 0x01, b'a']);
    let tail = zl.len();
    zl.extend_from_slice(&[0xFE, 3, 0, 0, 0, 0x01, b'b', 0xFF]);
    let total = zl.len() as u32;
    zl[0..4].copy_from_slice(&total.to_le_bytes());
    zl[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
    zl[8..10].copy_from_slice(&2u16.to_le_bytes());
    let c = case(10, str_bytes(&zl, false), Value::List(vec![b"a".to_vec(), b"b".to_vec()]));
    check(&c).unwrap();
}

/// Intset widths only grow: a wider width than the members need is valid.
#[test]
fn intset_non_minimal_width() {
    for width in [4u32, 8] {
        let mut blob = width.to_le_bytes().to_vec();
        blob.extend_from_slice(&2u32.to_le_bytes());
        for v in [-1i64, 2] {
            blob.extend_from_slice(&v.to_le_bytes()[..width as usize]);
        }
        let c = case(11, str_bytes(&blob, false), Value::Set(vec![b"-1".to_vec(), b"2".to_vec()]));
        check(&c).unwrap();
    }
}

/// Zipmap values may carry `free` padding bytes after them.
#[test]
fn zipmap_free_padding() {
    let blob = [0x02, 0x01, b'a', 0x02, 0x03, b'v', b'1', 0xAA, 0xBB, 0xCC, 0x01, b'b', 0x00, 0x01, 0xDD, 0xFF];
    let expected = hash_value(&[(b"a".to_vec(), b"v1".to_vec()), (b"b".to_vec(), Vec::new())]);
    check(&case(9, str_bytes(&blob, false), expected)).unwrap();
}

/// Empty packed nodes are skipped, as Redis does; the list is what the other nodes hold.
#[test]
fn quicklist_v2_empty_packed_node_skipped() {
    let mut v = vec![3, 2];
    write_string(&mut v, &ListpackBuilder::new().finish(), false);
    v.push(2);
    write_string(&mut v, &lp(&[b"a", b"12"]), false);
    v.push(1);
    write_lzf_string(&mut v, b"plain");
    let expected = Value::List(vec![b"a".to_vec(), b"12".to_vec(), b"plain".to_vec()]);
    check(&case(18, v, expected)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Whole files

#[derive(Debug, Clone)]
struct Key {
    db: u64,
    key: Vec<u8>,
    expire: Option<i64>,
    /// IDLE (LRU seconds) or FREQ (LFU counter) modifier.
    lru: Lru,
    case: Case,
}

#[derive(Debug, Clone, Copy)]
enum Lru {
    None,
    Idle(u64),
    Freq(u8),
}

fn header(magic: &str) -> Vec<u8> {
    assert_eq!(magic.len(), 9);
    magic.as_bytes().to_vec()
}

fn aux(out: &mut Vec<u8>, k: &[u8], v: &[u8]) {
    out.push(0xFA);
    write_string(out, k, true);
    write_string(out, v, true);
}

/// EXPIRETIME_MS, then IDLE or FREQ, then type, key and value (Redis's order).
fn key_record(out: &mut Vec<u8>, k: &Key) {
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

fn select_db(out: &mut Vec<u8>, db: u64, keys: u64, expires: u64) {
    out.push(0xFE);
    write_len(out, db);
    out.push(0xFB);
    write_len(out, keys);
    write_len(out, expires);
}

/// Appends EOF and the CRC-64 of everything before it (or `crc` when given).
fn finish(mut out: Vec<u8>, crc: Option<u64>) -> Vec<u8> {
    out.push(0xFF);
    let c = crc.unwrap_or_else(|| crc64(&out));
    out.extend_from_slice(&c.to_le_bytes());
    out
}

fn build_file(magic: &str, keys: &[Key]) -> Vec<u8> {
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

fn opts() -> Options {
    Options { keep_going: false, max_errors: 100, now_ms: 1_700_000_000_000, target: None }
}

fn verify(data: &[u8]) -> Report {
    verify_bytes("test.rdb", data, &opts())
}

fn first_error(r: &Report) -> (ErrorKind, u64) {
    let e = r.errors.first().unwrap_or_else(|| panic!("no error in {r:?}"));
    (e.kind, e.offset)
}

/// Any value of the Redis-flavour types.
fn any_redis_case() -> BoxedStrategy<Case> {
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

fn file_keys() -> impl Strategy<Value = Vec<Key>> {
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

fn key_db() -> impl Strategy<Value = u64> {
    select(vec![0u64, 0, 1, 15])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(128)))]

    #[test]
    fn whole_file(keys in file_keys(), cut in any::<prop::sample::Index>()) {
        let data = build_file("REDIS0012", &keys);
        let r = verify(&data);
        prop_assert!(r.ok, "{:?}", r.errors);
        prop_assert_eq!(r.checksum.status.clone(), ChecksumStatus::Ok);
        prop_assert_eq!(r.keys, keys.len() as u64);
        prop_assert_eq!(r.expires, keys.iter().filter(|k| k.expire.is_some()).count() as u64);
        prop_assert_eq!(r.trailing_bytes, 0);
        let expired = keys.iter().filter(|k| k.expire.is_some_and(|t| t < opts().now_ms)).count();
        prop_assert_eq!(r.already_expired, expired as u64);
        for d in &r.dbs {
            prop_assert_eq!(d.keys, keys.iter().filter(|k| k.db == d.db).count() as u64);
        }

        let mut w = Walker::new();
        let mut got = Vec::new();
        let mut reader = Reader::new(&data).unwrap();
        let (mut functions, mut module_aux) = (0, 0);
        for rec in reader.by_ref() {
            let rec = rec.unwrap();
            match &rec {
                Record::Function { source } => {
                    prop_assert!(source.starts_with(b"#!lua name=lib"));
                    functions += 1;
                }
                Record::ModuleAux { module, when, payload } => {
                    prop_assert_eq!(module.name(), "ReJSON-RL");
                    prop_assert_eq!(*when, 1);
                    prop_assert_eq!(*payload, &[0x02, 0x07, 0x05, 0x03, b'a', b'u', b'x', 0x00][..]);
                    module_aux += 1;
                }
                _ => {}
            }
            if let Record::Key(k) = rec {
                let v = k.value.decode(&mut w).unwrap();
                let lru = match (k.idle_s, k.freq) {
                    (Some(s), None) => Some(Lru::Idle(s)),
                    (None, Some(f)) => Some(Lru::Freq(f)),
                    (None, None) => Some(Lru::None),
                    _ => None,
                };
                got.push((k.db, k.key.to_vec(), k.expire_at_ms, k.value.type_byte, v, lru));
            }
        }
        prop_assert!(reader.trailer().is_some());
        prop_assert_eq!((functions, module_aux), (1, 1));
        prop_assert_eq!(got.len(), keys.len());
        for (g, k) in got.iter().zip(&keys) {
            prop_assert_eq!(g.0, k.db);
            prop_assert_eq!(&g.1, &k.key);
            prop_assert_eq!(g.2, k.expire);
            prop_assert_eq!(g.3, k.case.t);
            prop_assert_eq!(&g.4, &k.case.expected);
            prop_assert_eq!(format!("{:?}", g.5), format!("{:?}", Some(k.lru)));
        }

        // Every strict prefix is a truncated file.
        let n = cut.index(data.len());
        let r = verify(&data[..n]);
        prop_assert!(!r.ok);
        prop_assert_eq!(first_error(&r).0, ErrorKind::Truncated, "cut at {} of {}: {:?}", n, data.len(), r.errors);
    }
}

// ---------------------------------------------------------------------------------------------
// Negative tests

fn decode_err(t: u8, fmt: Format, bytes: &[u8]) -> rdbtool::Error {
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
fn expect_err(t: u8, bytes: &[u8], kind: ErrorKind) -> rdbtool::Error {
    expect_err_fmt(t, REDIS, bytes, kind)
}

fn expect_err_fmt(t: u8, fmt: Format, bytes: &[u8], kind: ErrorKind) -> rdbtool::Error {
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

fn lp(items: &[&[u8]]) -> Vec<u8> {
    let mut b = ListpackBuilder::new();
    for i in items {
        b.push(i);
    }
    b.finish()
}

fn zl(items: &[&[u8]]) -> Vec<u8> {
    let mut b = ZiplistBuilder::new();
    for i in items {
        b.push(i);
    }
    b.finish()
}

#[test]
fn duplicate_set_member_listpack() {
    let e = expect_err(20, &str_bytes(&lp(&[b"a", b"b", b"a"]), false), ErrorKind::Corrupt);
    assert!(e.message.contains("duplicate"), "{e}");
    // "7" as an integer entry and as a string entry are the same member.
    let mut b = ListpackBuilder::new();
    b.push(b"7").push_string_form(b"7");
    let e = expect_err(20, &str_bytes(&b.finish(), false), ErrorKind::Corrupt);
    assert!(e.message.contains("duplicate"), "{e}");
}

#[test]
fn duplicate_set_member_hashtable() {
    let mut v = Vec::new();
    write_len(&mut v, 3);
    for m in [&b"x"[..], b"y", b"x"] {
        write_string(&mut v, m, false);
    }
    let e = expect_err(2, &v, ErrorKind::Corrupt);
    assert!(e.message.contains("duplicate"), "{e}");
    // INT-encoded "123" and raw "123".
    let mut v = Vec::new();
    write_len(&mut v, 2);
    write_string(&mut v, b"123", false);
    write_raw_string(&mut v, b"123");
    expect_err(2, &v, ErrorKind::Corrupt);
}

#[test]
fn duplicate_hash_field() {
    let pairs: &[&[u8]] = &[b"f", b"1", b"g", b"2", b"f", b"3"];
    for (t, blob) in [(16u8, lp(pairs)), (13, zl(pairs))] {
        let e = expect_err(t, &str_bytes(&blob, false), ErrorKind::Corrupt);
        assert!(e.message.contains("duplicate"), "type {t}: {e}");
    }
    let z = zipmap(&[(&b"f"[..], &b"1"[..]), (b"f", b"2")]);
    let e = expect_err(9, &str_bytes(&z, false), ErrorKind::Corrupt);
    assert!(e.message.contains("duplicate"), "{e}");
    // Hashtable hash too.
    let mut v = Vec::new();
    write_len(&mut v, 2);
    for s in [&b"f"[..], b"1", b"f", b"2"] {
        write_string(&mut v, s, false);
    }
    expect_err(4, &v, ErrorKind::Corrupt);
}

#[test]
fn duplicate_zset_member() {
    let mut v = Vec::new();
    write_len(&mut v, 2);
    for (m, s) in [(&b"m"[..], 1.0f64), (b"m", 2.0)] {
        write_string(&mut v, m, false);
        v.extend_from_slice(&s.to_le_bytes());
    }
    let e = expect_err(5, &v, ErrorKind::Corrupt);
    assert!(e.message.contains("duplicate"), "{e}");
    let e = expect_err(17, &str_bytes(&lp(&[b"m", b"1", b"m", b"2"]), false), ErrorKind::Corrupt);
    assert!(e.message.contains("duplicate"), "{e}");
}

#[test]
fn intset_not_ascending() {
    // {2, 1}: width 2, count 2.
    let blob = [2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 1, 0];
    let e = expect_err(11, &str_bytes(&blob, false), ErrorKind::Corrupt);
    // The second integer, at blob byte 10, after the 1-byte STR length.
    assert_eq!(e.offset, BASE + 1 + 10, "{e}");
    // Equal neighbours are a duplicate, also rejected.
    let blob = [2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 5, 0];
    expect_err(11, &str_bytes(&blob, false), ErrorKind::Corrupt);
}

#[test]
fn nan_score() {
    let mut v = Vec::new();
    write_len(&mut v, 1);
    write_string(&mut v, b"m", false);
    let at = v.len() as u64;
    v.extend_from_slice(&f64::NAN.to_le_bytes());
    let e = expect_err(5, &v, ErrorKind::Corrupt);
    assert_eq!(e.offset, BASE + at, "{e}");
    // Type 3: the 253 marker.
    let mut v = Vec::new();
    write_len(&mut v, 1);
    write_string(&mut v, b"m", false);
    v.push(253);
    expect_err(3, &v, ErrorKind::Corrupt);
    // Listpack "nan": Redis does not parse packed scores at load (see
    // packed_zset_scores_are_not_parsed); a note, not an error.
    let (_, notes) = decode_with_notes(17, &str_bytes(&lp(&[b"m", b"nan"]), false));
    assert!(notes[0].message.contains("nan"), "{notes:?}");
}

#[test]
fn listpack_wrong_backlen() {
    let mut b = lp(&[b"a", b"b"]);
    // Entry "a" = 81 61 | backlen 02 at blob byte 8.
    assert_eq!(b[8], 2);
    b[8] = 3;
    let e = expect_err(20, &str_bytes(&b, false), ErrorKind::Corrupt);
    assert_eq!(e.offset, BASE + 1 + 8, "{e}");
    // A non-canonical (2-byte) back-length for a small entry is also rejected.
    let mut b = vec![0, 0, 0, 0, 1, 0, 0x81, b'a', 0x00, 0x82, 0xFF];
    let n = b.len() as u32;
    b[0..4].copy_from_slice(&n.to_le_bytes());
    expect_err(20, &str_bytes(&b, false), ErrorKind::Corrupt);
}

#[test]
fn listpack_count_mismatch() {
    let mut b = lp(&[b"a", b"b"]);
    b[4] = 3;
    let e = expect_err(20, &str_bytes(&b, false), ErrorKind::Corrupt);
    // Blamed at the terminator.
    assert_eq!(e.offset, BASE + 1 + (b.len() as u64 - 1), "{e}");
}

#[test]
fn listpack_total_bytes_mismatch() {
    let mut b = lp(&[b"a", b"b"]);
    let n = b.len() as u32 + 1;
    b[0..4].copy_from_slice(&n.to_le_bytes());
    let e = expect_err(16, &str_bytes(&b, false), ErrorKind::Corrupt);
    assert_eq!(e.offset, BASE + 1, "{e}");
}

#[test]
fn ziplist_wrong_prevlen() {
    let mut b = zl(&[b"a", b"b", b"c"]);
    // Entries at 10 ("00 01 61"), 13 ("03 01 62"), 16.
    assert_eq!(b[13], 3);
    b[13] = 4;
    let e = expect_err(10, &str_bytes(&b, false), ErrorKind::Corrupt);
    assert_eq!(e.offset, BASE + 1 + 13, "{e}");
}

#[test]
fn ziplist_wrong_zltail() {
    let mut b = zl(&[b"a", b"b", b"c"]);
    assert_eq!(b[4], 16);
    b[4] = 13;
    let e = expect_err(10, &str_bytes(&b, false), ErrorKind::Corrupt);
    assert_eq!(e.offset, BASE + 1 + 4, "{e}");
}

#[test]
fn lzf_ulen_larger_than_output() {
    let data = [b'a'; 100];
    let mut v = Vec::new();
    write_lzf_string(&mut v, &data);
    // C3 clen ulen(40 64) ...: claim 110 bytes.
    assert_eq!(&v[2..4], &[0x40, 0x64]);
    v[3] = 110;
    expect_err(0, &v, ErrorKind::Corrupt);
    // Smaller than the output, and zero.
    v[3] = 90;
    expect_err(0, &v, ErrorKind::Corrupt);
    v[2] = 0x00;
    v[3] = v[4];
    let mut w = v.clone();
    w.remove(3);
    w[2] = 0;
    expect_err(0, &w, ErrorKind::Corrupt);
    // clen 0.
    expect_err(0, &[0xC3, 0x00, 0x05], ErrorKind::Corrupt);
    // The same inside a listpack blob.
    let blob = lp(&[&data[..], &data[..]]);
    let mut v = Vec::new();
    write_lzf_string(&mut v, &blob);
    let mut c = Cursor::new(&v, 0);
    c.u8("marker").unwrap();
    let clen_end = {
        c.len("clen").unwrap();
        c.pos()
    };
    // Rewrite ulen as a 2-byte LEN of blob.len() + 7.
    let mut w = v[..clen_end].to_vec();
    let mut c2 = Cursor::new(&v, 0);
    c2.seek(clen_end);
    c2.len("ulen").unwrap();
    write_len(&mut w, blob.len() as u64 + 7);
    w.extend_from_slice(&v[c2.pos()..]);
    expect_err(20, &w, ErrorKind::Corrupt);
}

#[test]
fn empty_collections() {
    let empty_lp = str_bytes(&ListpackBuilder::new().finish(), false);
    let empty_zl = str_bytes(&ZiplistBuilder::new().finish(), false);
    let zero = vec![0u8];
    let mut cases: Vec<(u8, Format, Vec<u8>)> = vec![
        (1, REDIS, zero.clone()),
        (2, REDIS, zero.clone()),
        (3, REDIS, zero.clone()),
        (4, REDIS, zero.clone()),
        (5, REDIS, zero.clone()),
        (9, REDIS, str_bytes(&zipmap::<&[u8], &[u8]>(&[]), false)),
        (10, REDIS, empty_zl.clone()),
        (11, REDIS, str_bytes(&[2, 0, 0, 0, 0, 0, 0, 0], false)),
        (12, REDIS, empty_zl.clone()),
        (13, REDIS, empty_zl.clone()),
        (14, REDIS, zero.clone()),
        (16, REDIS, empty_lp.clone()),
        (17, REDIS, empty_lp.clone()),
        (18, REDIS, zero.clone()),
        (20, REDIS, empty_lp.clone()),
        (22, VALKEY, zero.clone()),
        (22, REDIS, zero.clone()),
        (23, REDIS, empty_lp.clone()),
        (24, REDIS, [&0i64.to_le_bytes()[..], &[0]].concat()),
        (25, REDIS, [&0i64.to_le_bytes()[..], &empty_lp].concat()),
    ];
    // Quicklists whose nodes are all empty.
    let mut q1 = vec![1];
    q1.extend_from_slice(&empty_zl);
    cases.push((14, REDIS, q1));
    let mut q2 = vec![2, 2];
    q2.extend_from_slice(&empty_lp);
    q2.push(2);
    q2.extend_from_slice(&empty_lp);
    cases.push((18, REDIS, q2));
    for (t, fmt, bytes) in cases {
        let e = expect_err_fmt(t, fmt, &bytes, ErrorKind::EmptyValue);
        assert_eq!(e.offset, BASE, "type {t}: {e}");
    }
}

#[test]
fn quicklist_v2_bad_container() {
    let mut v = vec![1, 3];
    write_string(&mut v, &lp(&[b"a"]), false);
    let e = expect_err(18, &v, ErrorKind::Corrupt);
    assert_eq!(e.offset, BASE + 1, "{e}");
    // Container 0 too.
    v[1] = 0;
    expect_err(18, &v, ErrorKind::Corrupt);
}

/// A small valid type-21 stream: entries 1-1, 1-2, 2-0; group "g" with consumer "c" owning 1-1.
fn small_stream() -> SStream {
    let e = |ms, seq| SEntry { id: sid(ms, seq), fields: vec![(b"f".to_vec(), b"v".to_vec())], deleted: false };
    SStream {
        nodes: vec![vec![e(1, 1), e(1, 2), e(2, 0)]],
        length: 3,
        last_id: sid(2, 0),
        first_id: sid(1, 1),
        max_deleted: sid(0, 0),
        entries_added: 3,
        groups: vec![SGroup {
            name: b"g".to_vec(),
            last_id: sid(1, 1),
            entries_read: 1,
            pel: vec![(sid(1, 1), 1_700_000_000_000, 1)],
            consumers: vec![SConsumer {
                name: b"c".to_vec(),
                seen: 1_700_000_000_000,
                active: 1_700_000_000_000,
                pending: vec![sid(1, 1)],
            }],
        }],
        idmp: Idmp::default(),
    }
}

#[test]
fn stream_small_is_valid() {
    let s = small_stream();
    check(&case(21, encode_stream(21, &s, false), expected_stream(21, &s))).unwrap();
}

#[test]
fn stream_pel_entry_without_consumer() {
    // The reader notices only after the group's last consumer, and blames that position: the end
    // of the value here (one past its last byte), so the offset is checked against [start, end].
    let check = |s: &SStream| {
        let bytes = encode_stream(21, s, false);
        let e = decode_err(21, REDIS, &bytes);
        assert_eq!(e.kind, ErrorKind::Corrupt, "{e}");
        assert!(e.message.contains("no consumer"), "{e}");
        assert!((BASE..=BASE + bytes.len() as u64).contains(&e.offset), "{e}");
    };
    let mut s = small_stream();
    s.groups[0].consumers[0].pending.clear();
    check(&s);
    // No consumers at all.
    s.groups[0].consumers.clear();
    check(&s);
}

#[test]
fn stream_consumer_pel_not_in_group_pel() {
    let mut s = small_stream();
    s.groups[0].consumers[0].pending.push(sid(2, 0));
    let bytes = encode_stream(21, &s, false);
    let e = expect_err(21, &bytes, ErrorKind::Corrupt);
    assert!(e.message.contains("not in the group PEL"), "{e}");
    // Blamed at the second consumer-PEL ID: the last 16 bytes of the value.
    assert_eq!(e.offset, BASE + bytes.len() as u64 - 16, "{e}");
}

/// Redis's deep check of a stream node does not look at the order of entry IDs, nor at the live /
/// deleted split of the master's counts (only at their total), nor at the last ID: such streams
/// load (tests/server_verdicts.rs checks it on a real server), with a note. Two nodes with the
/// same key are refused, as Redis's radix tree refuses them.
#[test]
fn stream_entries_not_ascending() {
    let kinds = |s: &SStream| -> Vec<&'static str> {
        let (_, notes) = decode_with_notes(21, &encode_stream(21, s, false));
        notes.iter().map(|n| n.kind).collect()
    };
    // Inside one node.
    let mut s = small_stream();
    s.nodes[0].swap(1, 2);
    s.last_id = sid(2, 0);
    assert_eq!(kinds(&s), ["stream_ids"]);
    // Across nodes: the second node starts before the first one ends.
    let mut s = small_stream();
    let first = s.nodes[0].clone();
    s.nodes = vec![first[1..].to_vec(), first[..1].to_vec()];
    assert_eq!(kinds(&s), ["stream_ids"]);
    // A repeated ID.
    let mut s = small_stream();
    s.nodes[0][2].id = sid(1, 2);
    assert!(kinds(&s).contains(&"stream_ids"));
    // The last ID before the last entry.
    let mut s = small_stream();
    s.last_id = sid(1, 1);
    assert_eq!(kinds(&s), ["stream_last_id"]);
    // Two nodes with the same key: refused.
    let mut s = small_stream();
    let first = s.nodes[0].clone();
    s.nodes = vec![first.clone(), first];
    s.length = 6;
    let e = expect_err(21, &encode_stream(21, &s, false), ErrorKind::Corrupt);
    assert!(e.message.contains("two stream nodes"), "{e}");
}

/// Redis keeps a stream's stored length whatever its nodes hold (XLEN answers it; Redis 5/6
/// wrote such files): a note, not an error. A length with no node at all is refused.
#[test]
fn stream_length_mismatch() {
    for length in [4, 1] {
        let mut s = small_stream();
        s.length = length;
        let (v, notes) = decode_with_notes(21, &encode_stream(21, &s, false));
        let Value::Stream(st) = v else { panic!("not a stream") };
        assert_eq!(st.meta.length, length, "the stored length is kept");
        assert_eq!(st.entries.len(), 3);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].kind, "stream_length");
        assert!(notes[0].message.contains(&format!("length {length} but its nodes hold 3")), "{notes:?}");
    }
    // Tombstones do not count.
    let mut s = small_stream();
    s.nodes[0][1].deleted = true;
    assert_eq!(decode_with_notes(21, &encode_stream(21, &s, false)).1.len(), 1);
    s.length = 2;
    check(&case(21, encode_stream(21, &s, false), expected_stream(21, &s))).unwrap();
    assert!(decode_with_notes(21, &encode_stream(21, &s, false)).1.is_empty());
    // No node, length 3: refused; no node, length 0: an empty stream, fine.
    let mut s = small_stream();
    s.nodes.clear();
    s.groups.clear();
    s.length = 3;
    let e = expect_err(21, &encode_stream(21, &s, false), ErrorKind::Corrupt);
    assert!(e.message.contains("no nodes"), "{e}");
    s.length = 0;
    decode_with_notes(21, &encode_stream(21, &s, false));
}

/// Decodes and validates `bytes`; both must succeed and report the same notes.
fn decode_with_notes(t: u8, bytes: &[u8]) -> (Value, Vec<rdbtool::rdb::walk::Note>) {
    let rv = RawValue { type_byte: t, format: REDIS, bytes, offset: BASE };
    let mut w = Walker::new();
    rv.validate(&mut w).unwrap_or_else(|e| panic!("type {t}: {e}"));
    let notes = w.notes().to_vec();
    let v = rv.decode(&mut w).unwrap_or_else(|e| panic!("type {t}: {e}"));
    assert_eq!(w.notes(), &notes[..], "validate and decode disagree on the notes");
    (v, notes)
}

fn zset3(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut v = Vec::new();
    write_len(&mut v, pairs.len() as u64);
    for (m, score) in pairs {
        write_string(&mut v, m, false);
        v.push(score.len() as u8);
        v.extend_from_slice(score);
    }
    v
}

/// Type-3 scores are read like `sscanf("%lg")`: the longest numeric prefix (a note when there is
/// more), an error without one or for NaN. Values checked against redis-server 7.0.15's ZSCORE.
#[test]
fn zset_text_scores_like_sscanf() {
    for (text, want, odd) in [
        (&b"1234567b9"[..], 1234567.0, true),
        (b"3.850 0001", 3.85, true),
        (b" 7", 7.0, true),
        (b"0x10", 16.0, true),
        (b"1e", 1.0, true),
        (b"1\x005", 1.0, true),
        (b"inf", f64::INFINITY, false),
        (b"-2.5e3", -2500.0, false),
    ] {
        let (v, notes) = decode_with_notes(3, &zset3(&[(b"m", text)]));
        assert_eq!(v, Value::Zset(vec![(b"m".to_vec(), want)]), "{text:?}");
        assert_eq!(notes.len(), usize::from(odd), "{text:?}: {notes:?}");
        if odd {
            assert_eq!(notes[0].kind, "zset_score");
        }
    }
    for text in [&b"abc"[..], b"", b" ", b"0x", b"infin", b"nan", b"-nan", b"\x001"] {
        let e = expect_err(3, &zset3(&[(b"m", text)]), ErrorKind::Corrupt);
        assert!(e.message.contains("score"), "{e}");
    }
}

/// Ziplist / listpack scores are not parsed at load: any text loads, Redis reads it with strtod
/// when used (no number: 0). NaN only breaks a zset big enough to become a skiplist at load.
#[test]
fn packed_zset_scores_are_not_parsed() {
    for (t, blob) in [(17u8, lp as fn(&[&[u8]]) -> Vec<u8>), (12, zl)] {
        let b = blob(&[b"a", b"abc", b"b", b"1234567b9", b"c", b"nan", b"d", b"", b"e", b"2.5"]);
        let (v, notes) = decode_with_notes(t, &str_bytes(&b, false));
        let Value::Zset(z) = v else { panic!() };
        let scores: Vec<f64> = z.iter().map(|x| x.1).collect();
        assert_eq!(scores[0], 0.0);
        assert_eq!(scores[1], 1234567.0);
        assert!(scores[2].is_nan());
        assert_eq!(scores[3], 0.0);
        assert_eq!(scores[4], 2.5);
        assert_eq!(notes.len(), 4, "{notes:?}");
        assert!(notes.iter().all(|n| n.kind == "zset_score"));
        // 129 entries with a NaN: converted to a skiplist while loading, where NaN aborts Redis.
        let names: Vec<Vec<u8>> = (0..129).map(|i| format!("m{i}").into_bytes()).collect();
        let mut items: Vec<&[u8]> = Vec::new();
        for (i, n) in names.iter().enumerate() {
            items.push(n);
            items.push(if i == 7 { b"nan" } else { b"1" });
        }
        let e = expect_err(t, &str_bytes(&blob(&items), false), ErrorKind::Corrupt);
        assert!(e.message.contains("NaN"), "{e}");
        // The same NaN among 128 entries stays packed and loads.
        let (_, notes) = decode_with_notes(t, &str_bytes(&blob(&items[2..]), false));
        assert!(notes.iter().any(|n| n.message.contains("nan")), "{notes:?}");
    }
}

fn string_case_of(s: &[u8]) -> Case {
    case(0, str_bytes(s, true), Value::String(s.to_vec()))
}

fn key(db: u64, k: &[u8], v: &[u8]) -> Key {
    Key { db, key: k.to_vec(), expire: None, lru: Lru::None, case: string_case_of(v) }
}

#[test]
fn duplicate_key_in_one_db() {
    let data = build_file("REDIS0012", &[key(0, b"k", b"1"), key(0, b"j", b"2"), key(0, b"k", b"3")]);
    let r = verify(&data);
    assert!(!r.ok);
    let (kind, off) = first_error(&r);
    assert_eq!(kind, ErrorKind::DuplicateKey, "{:?}", r.errors);
    // Blamed at the second "k" record (its type byte 00) or at its key string (01 'k').
    let second = data.windows(4).rposition(|w| w == [0x00, 0x01, b'k', 0xC0]).unwrap() as u64;
    assert!(off == second || off == second + 1, "{second}: {:?}", r.errors);
    // The same key once INT-encoded and once raw.
    let mut out = header("REDIS0012");
    select_db(&mut out, 0, 2, 0);
    let k = key(0, b"123", b"v");
    key_record(&mut out, &k);
    out.push(0);
    write_raw_string(&mut out, b"123");
    out.extend_from_slice(&k.case.bytes);
    let r = verify(&finish(out, None));
    assert_eq!(first_error(&r).0, ErrorKind::DuplicateKey, "{:?}", r.errors);
}

#[test]
fn same_key_in_two_dbs_is_fine() {
    let data = build_file("REDIS0012", &[key(0, b"k", b"1"), key(3, b"k", b"2")]);
    let r = verify(&data);
    assert!(r.ok, "{:?}", r.errors);
    assert_eq!(r.keys, 2);
    assert_eq!(r.dbs.len(), 2);
}

#[test]
fn unknown_type_byte() {
    for t in [8u8, 27, 30, 0xF0] {
        let mut out = header("REDIS0012");
        select_db(&mut out, 0, 1, 0);
        let at = out.len() as u64;
        out.push(t);
        write_string(&mut out, b"k", false);
        write_string(&mut out, b"v", false);
        let r = verify(&finish(out, None));
        assert_eq!(first_error(&r), (ErrorKind::Corrupt, at), "type {t}: {:?}", r.errors);
        let mut c = Cursor::new(&[0u8, 1, 2], BASE);
        let e = skip_value(&mut c, t, REDIS).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt, "type {t}");
    }
    // Type 26 is Redis-only; under VALKEY080 it is unknown.
    let mut out = header("VALKEY080");
    select_db(&mut out, 0, 1, 0);
    let at = out.len() as u64;
    out.push(26);
    write_string(&mut out, b"k", false);
    let r = verify(&finish(out, None));
    assert_eq!(first_error(&r), (ErrorKind::Corrupt, at), "{:?}", r.errors);
}

#[test]
fn truncated_file() {
    let data = build_file("REDIS0012", &[key(0, b"k", b"hello"), key(0, b"n", b"12345")]);
    assert!(verify(&data).ok);
    for n in 0..data.len() {
        let r = verify(&data[..n]);
        assert_eq!(first_error(&r).0, ErrorKind::Truncated, "cut at {n}: {:?}", r.errors);
    }
}

#[test]
fn crc_mismatch() {
    let data = build_file("REDIS0012", &[key(0, b"k", b"hello")]);
    let mut bad = data.clone();
    *bad.last_mut().unwrap() ^= 1;
    let r = verify(&bad);
    assert!(!r.ok);
    assert_eq!(r.checksum.status, ChecksumStatus::Mismatch);
    assert_eq!(first_error(&r), (ErrorKind::Checksum, data.len() as u64 - 8), "{:?}", r.errors);
    // A changed value byte with the old CRC.
    let mut bad = data.clone();
    let p = bad.windows(5).position(|w| w == b"hello").unwrap();
    bad[p] = b'j';
    let r = verify(&bad);
    assert_eq!(first_error(&r).0, ErrorKind::Checksum, "{:?}", r.errors);
}

#[test]
fn crc_zero_is_not_computed() {
    let mut out = header("REDIS0012");
    select_db(&mut out, 0, 1, 0);
    key_record(&mut out, &key(0, b"k", b"v"));
    let r = verify(&finish(out, Some(0)));
    assert!(r.ok, "{:?}", r.errors);
    assert_eq!(r.checksum.status, ChecksumStatus::NotComputed);
    assert_eq!(r.keys, 1);
}

#[test]
fn version_14_unsupported() {
    let r = verify(&finish(header("REDIS0014"), None));
    assert_eq!(first_error(&r).0, ErrorKind::Unsupported, "{:?}", r.errors);
    assert!(Reader::new(&finish(header("REDIS0014"), None)).is_err());
    // 13 is the newest known.
    assert!(verify(&finish(header("REDIS0013"), None)).ok);
}

#[test]
fn redis_magic_with_valkey_version_is_corrupt() {
    let r = verify(&finish(header("REDIS0080"), None));
    assert_eq!(first_error(&r).0, ErrorKind::Corrupt, "{:?}", r.errors);
}

#[test]
fn valkey_hash2_file_decodes() {
    // docs/format.md §6.7, Valkey 9.1.2: HASH_2 "hfe:b2" with f=v (expires 4102444800008) and g=w (no TTL).
    let mut out = header("VALKEY080");
    aux(&mut out, b"valkey-ver", b"9.1.2");
    select_db(&mut out, 0, 1, 0);
    out.extend_from_slice(&[0x16, 0x06]);
    out.extend_from_slice(b"hfe:b2");
    out.extend_from_slice(&[0x02, 0x01, b'f', 0x01, b'v']);
    out.extend_from_slice(&[0x08, 0xD8, 0xC3, 0x2C, 0xBB, 0x03, 0x00, 0x00]);
    out.extend_from_slice(&[0x01, b'g', 0x01, b'w']);
    out.extend_from_slice(&[0xFF; 8]);
    let data = finish(out, None);
    let r = verify(&data);
    assert!(r.ok, "{:?}", r.errors);
    assert_eq!(r.magic, Some("VALKEY"));
    assert_eq!(r.keys, 1);
    let mut w = Walker::new();
    let mut keys = Vec::new();
    for rec in Reader::new(&data).unwrap() {
        if let Record::Key(k) = rec.unwrap() {
            keys.push((k.key.to_vec(), k.value.decode(&mut w).unwrap()));
        }
    }
    let expected = Value::Hash(vec![
        HashField { field: b"f".to_vec(), value: b"v".to_vec(), expire_at_ms: Some(4102444800008) },
        HashField { field: b"g".to_vec(), value: b"w".to_vec(), expire_at_ms: None },
    ]);
    assert_eq!(keys, vec![(b"hfe:b2".to_vec(), expected)]);
}

#[test]
fn duplicate_hash_field_with_ttls() {
    // Type 24.
    let mut v = 100i64.to_le_bytes().to_vec();
    write_len(&mut v, 2);
    for f in [b"f", b"f"] {
        write_len(&mut v, 0);
        write_string(&mut v, f, false);
        write_string(&mut v, b"v", false);
    }
    expect_err(24, &v, ErrorKind::Corrupt);
    // Type 25.
    let mut b = ListpackBuilder::new();
    b.push(b"f").push(b"1").push_int(5).push(b"f").push(b"2").push_int(0);
    let v = [&5i64.to_le_bytes()[..], &str_bytes(&b.finish(), false)].concat();
    expect_err(25, &v, ErrorKind::Corrupt);
    // Valkey 22.
    let mut v = Vec::new();
    write_len(&mut v, 2);
    for f in [b"f", b"f"] {
        write_string(&mut v, f, false);
        write_string(&mut v, b"v", false);
        v.extend_from_slice(&(-1i64).to_le_bytes());
    }
    expect_err_fmt(22, VALKEY, &v, ErrorKind::Corrupt);
}

#[test]
fn hash_listpack_ex_ttl_order() {
    // A field with a TTL after one without (0): out of order.
    let mut b = ListpackBuilder::new();
    b.push(b"f").push(b"1").push_int(0).push(b"g").push(b"2").push_int(5);
    let v = [&5i64.to_le_bytes()[..], &str_bytes(&b.finish(), false)].concat();
    expect_err(25, &v, ErrorKind::Corrupt);
    // Descending TTLs.
    let mut b = ListpackBuilder::new();
    b.push(b"f").push(b"1").push_int(9).push(b"g").push(b"2").push_int(5);
    let v = [&5i64.to_le_bytes()[..], &str_bytes(&b.finish(), false)].concat();
    expect_err(25, &v, ErrorKind::Corrupt);
    // A field TTL above 2^48 - 1.
    let mut b = ListpackBuilder::new();
    b.push(b"f").push(b"1").push_int(MAX_TTL + 1);
    let v = [&0i64.to_le_bytes()[..], &str_bytes(&b.finish(), false)].concat();
    expect_err(25, &v, ErrorKind::Corrupt);
}

#[test]
fn listpack_hash_odd_count() {
    expect_err(16, &str_bytes(&lp(&[b"f", b"v", b"g"]), false), ErrorKind::Corrupt);
    expect_err(17, &str_bytes(&lp(&[b"m", b"1", b"n"]), false), ErrorKind::Corrupt);
}

/// Errors inside an LZF-compressed blob are blamed at the compressed bytes, inside the value.
#[test]
fn errors_inside_compressed_blobs() {
    let long = [b'q'; 40];
    let dup = lp(&[&long[..], b"x", &long[..]]);
    let mut v = Vec::new();
    write_lzf_string(&mut v, &dup);
    let e = expect_err(20, &v, ErrorKind::Corrupt);
    assert!(e.message.contains("duplicate"), "{e}");
    let mut bad = lp(&[&long[..], &long[..]]);
    let last = bad.len() - 2;
    bad[last] ^= 1; // the second entry's back-length
    let mut v = Vec::new();
    write_lzf_string(&mut v, &bad);
    let e = expect_err(20, &v, ErrorKind::Corrupt);
    assert!(e.message.contains("LZF"), "{e}");
}

#[test]
fn module_pre_ga_type_6_unsupported() {
    expect_err(6, &[0x00, 0x00], ErrorKind::Unsupported);
    let mut c = Cursor::new(&[0u8, 0][..], BASE);
    assert_eq!(skip_value(&mut c, 6, REDIS).unwrap_err().kind, ErrorKind::Unsupported);
}

#[test]
fn module_unknown_opcode() {
    let mut v = Vec::new();
    write_len(&mut v, 0x45E25238DF912C03);
    let at = v.len() as u64;
    v.extend_from_slice(&[0x02, 0x01, 0x06, 0x00]);
    let e = expect_err(7, &v, ErrorKind::Corrupt);
    assert_eq!(e.offset, BASE + at + 2, "{e}");
}

#[test]
fn invalid_entry_encodings() {
    // Listpack 0xF5..0xFE are not encodings.
    let mut b = vec![0, 0, 0, 0, 1, 0, 0xF5, 0x01, 0xFF];
    let n = b.len() as u32;
    b[0..4].copy_from_slice(&n.to_le_bytes());
    let e = expect_err(20, &str_bytes(&b, false), ErrorKind::Corrupt);
    assert_eq!(e.offset, BASE + 1 + 6, "{e}");
    // Ziplist: 0xC1 is not an encoding.
    let mut b = vec![0u8; 10];
    b.extend_from_slice(&[0x00, 0xC1, 0xFF]);
    let n = b.len() as u32;
    b[0..4].copy_from_slice(&n.to_le_bytes());
    b[4..8].copy_from_slice(&10u32.to_le_bytes());
    b[8..10].copy_from_slice(&1u16.to_le_bytes());
    let e = expect_err(10, &str_bytes(&b, false), ErrorKind::Corrupt);
    assert_eq!(e.offset, BASE + 1 + 11, "{e}");
    // String-encoding marker 0xC4 and length prefix 0x82 are invalid.
    expect_err(0, &[0xC4, 0x00], ErrorKind::Corrupt);
    expect_err(0, &[0x82, 0x00], ErrorKind::Corrupt);
}

/// More keys than one validation batch (2048) and a value above the batch byte limit: counts,
/// duplicates and the first error stay right when validation runs on the pool.
#[test]
fn many_keys() {
    let big = long_bytes(1_200_000, 7, false);
    let mut keys: Vec<Key> = (0..6000u64)
        .map(|i| {
            let name = format!("key:{i}").into_bytes();
            let c = match i % 4 {
                0 => string_case_of(&i.to_string().into_bytes()),
                1 => case(
                    20,
                    str_bytes(&lp(&[b"a", b"b", &name[..]]), true),
                    Value::Set(vec![b"a".to_vec(), b"b".to_vec(), name.clone()]),
                ),
                2 => case(16, str_bytes(&lp(&[b"f", &name[..]]), true), hash_value(&[(b"f".to_vec(), name.clone())])),
                _ => case(
                    11,
                    str_bytes(&intset(&[i as i64, -1]), false),
                    Value::Set(vec![b"-1".to_vec(), i.to_string().into_bytes()]),
                ),
            };
            Key { db: 0, key: name, expire: (i % 3 == 0).then_some(i as i64), lru: Lru::None, case: c }
        })
        .collect();
    keys[100].case = string_case_of(&big);
    let data = build_file("REDIS0012", &keys);
    let r = verify(&data);
    assert!(r.ok, "{:?}", r.errors);
    assert_eq!(r.keys, 6000);
    assert_eq!(r.expires, 2000);

    // A duplicate near the end.
    let mut dup = keys.clone();
    dup[5990].key = b"key:17".to_vec();
    let r = verify(&build_file("REDIS0012", &dup));
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].kind, ErrorKind::DuplicateKey);
    assert_eq!(r.errors[0].key.as_deref(), Some(&b"key:17"[..]));

    // A corrupt value after the duplicate: the duplicate is the first error. Before it: the
    // corrupt value is. With keep-going both are listed, in file order.
    let bad = case(20, str_bytes(&lp(&[b"x", b"x"]), false), Value::Set(vec![]));
    for (at, first) in [(5995, ErrorKind::DuplicateKey), (3000, ErrorKind::Corrupt)] {
        let mut k = dup.clone();
        k[at].case = bad.clone();
        let data = build_file("REDIS0012", &k);
        let r = verify(&data);
        assert_eq!(first_error(&r).0, first, "{:?}", r.errors);
        let r = verify_bytes("t", &data, &Options { keep_going: true, ..opts() });
        let kinds: Vec<ErrorKind> = r.errors.iter().map(|e| e.kind).collect();
        let mut expected = vec![ErrorKind::DuplicateKey, ErrorKind::Corrupt];
        if first == ErrorKind::Corrupt {
            expected.reverse();
        }
        assert_eq!(kinds, expected, "{:?}", r.errors);
        assert!(r.errors.windows(2).all(|w| w[0].offset <= w[1].offset));
    }
}

/// RDB 6: no AUX, EXPIRETIME in seconds, old encodings; RDB 4: no CRC at all.
#[test]
fn old_versions() {
    let mut out = header("REDIS0006");
    out.extend_from_slice(&[0xFE, 0x00]);
    out.push(0xFD);
    out.extend_from_slice(&1_500_000_000i32.to_le_bytes());
    let z = Key {
        db: 0,
        key: b"zm".to_vec(),
        expire: None,
        lru: Lru::None,
        case: case(
            9,
            str_bytes(&zipmap(&[(&b"f"[..], &b"v"[..])]), false),
            hash_value(&[(b"f".to_vec(), b"v".to_vec())]),
        ),
    };
    key_record(&mut out, &z);
    let l = Key {
        db: 0,
        key: b"zl".to_vec(),
        expire: None,
        lru: Lru::None,
        case: case(10, str_bytes(&zl(&[b"a", b"7"]), false), Value::List(vec![b"a".to_vec(), b"7".to_vec()])),
    };
    key_record(&mut out, &l);
    let data = finish(out, None);
    let r = verify(&data);
    assert!(r.ok, "{:?}", r.errors);
    assert_eq!((r.keys, r.expires), (2, 1));
    assert_eq!(r.checksum.status, ChecksumStatus::Ok);
    let first = Reader::new(&data).unwrap().find_map(|r| match r.unwrap() {
        Record::Key(k) => Some(k.expire_at_ms),
        _ => None,
    });
    assert_eq!(first, Some(Some(1_500_000_000_000)));

    let mut out = header("REDIS0004");
    out.extend_from_slice(&[0xFE, 0x00]);
    key_record(&mut out, &l);
    out.push(0xFF);
    let r = verify(&out);
    assert!(r.ok, "{:?}", r.errors);
    assert_eq!(r.checksum.status, ChecksumStatus::Absent);
    assert_eq!(r.trailing_bytes, 0);
}

#[test]
fn trailing_bytes_after_crc() {
    let mut data = build_file("REDIS0012", &[key(0, b"k", b"v")]);
    data.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    let r = verify(&data);
    assert!(r.ok, "{:?}", r.errors);
    assert_eq!(r.checksum.status, ChecksumStatus::Ok);
    assert_eq!(r.trailing_bytes, 14);
}

#[test]
fn header_variants() {
    for (magic, kind) in [
        ("REDIS0000", ErrorKind::Unsupported),
        ("REDIS00a1", ErrorKind::Corrupt),
        ("VALKEY079", ErrorKind::Corrupt),
        ("VALKEY081", ErrorKind::Unsupported),
        ("redis0012", ErrorKind::Corrupt),
    ] {
        let r = verify(&finish(header(magic), None));
        assert_eq!(first_error(&r).0, kind, "{magic}: {:?}", r.errors);
    }
    for magic in ["REDIS0001", "REDIS0011", "REDIS0013", "VALKEY080"] {
        let data =
            if magic == "REDIS0001" { [header(magic), vec![0xFF]].concat() } else { finish(header(magic), None) };
        let r = verify(&data);
        assert!(r.ok, "{magic}: {:?}", r.errors);
    }
}
