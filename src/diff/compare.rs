//! Comparing one key present on both sides: types, then values as what they mean (not as bytes),
//! then expire times with a tolerance; and what a key found on one side only is.

use serde_json::{Value as Json, json};

use super::{DiffError, DiffKind, Difference, Entry, Names, Options, SideInfo};
use crate::json::{bytes as jbytes, score as jscore};
use crate::rdb::value::{HashField, Stream, StreamEntry, StreamGroup, Value};
use crate::rdb::walk::Walker;

/// Compares one key present on both sides. `None` when it is the same.
pub fn compare_entries(
    db: u64,
    key: &[u8],
    a: &Entry<'_>,
    b: &Entry<'_>,
    w: &mut Walker,
    opts: &Options,
    names: &Names,
) -> Result<Option<Difference>, DiffError> {
    let diff =
        |kind, detail| Some(Difference { db, key: key.to_vec(), kind, a: Some(a.info()), b: Some(b.info()), detail });
    if a.raw.kind() != b.raw.kind() {
        return Ok(diff(DiffKind::Type, None));
    }
    let same_bytes =
        a.raw.type_byte == b.raw.type_byte && a.raw.format.flavor == b.raw.format.flavor && a.raw.bytes == b.raw.bytes;
    if !same_bytes {
        let va = a.raw.decode(w).map_err(|e| DiffError::Input(names.a.clone(), e.in_key(db, key)))?;
        let vb = b.raw.decode(w).map_err(|e| DiffError::Input(names.b.clone(), e.in_key(db, key)))?;
        if let Some(d) = value_detail(&va, &vb, opts) {
            return Ok(diff(DiffKind::Value, Some(d)));
        }
    }
    if !times_close(a.expire_at_ms, b.expire_at_ms, opts.ttl_tolerance_ms) {
        return Ok(diff(DiffKind::Ttl, None));
    }
    Ok(None)
}

/// A key found on one side only. `other_as_of_ms`: when the other side was read (its snapshot
/// time); a key whose expire time had passed by then is `expired`, not missing.
pub fn one_sided(db: u64, key: &[u8], info: SideInfo, in_a: bool, other_as_of_ms: i64, opts: &Options) -> Difference {
    let expired = info.expire_at_ms.is_some_and(|t| t <= other_as_of_ms.saturating_add(opts.ttl_tolerance_ms));
    let kind = match (expired, in_a) {
        (true, _) => DiffKind::Expired,
        (false, true) => DiffKind::OnlyInA,
        (false, false) => DiffKind::OnlyInB,
    };
    let (a, b) = if in_a { (Some(info), None) } else { (None, Some(info)) };
    Difference { db, key: key.to_vec(), kind, a, b, detail: None }
}

pub(super) fn times_close(a: Option<i64>, b: Option<i64>, tol: i64) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => x.abs_diff(y) <= tol as u64,
        _ => false,
    }
}

// Value comparison: `None` when equal, else a small description of what differs.

fn value_detail(a: &Value, b: &Value, o: &Options) -> Option<Json> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => (x != y).then(|| string_detail(x, y)),
        (Value::List(x), Value::List(y)) => list_detail(x, y, o),
        (Value::Set(x), Value::Set(y)) => set_detail(x, y, o),
        (Value::Zset(x), Value::Zset(y)) => zset_detail(x, y, o),
        (Value::Hash(x), Value::Hash(y)) => hash_detail(x, y, o),
        (Value::Stream(x), Value::Stream(y)) => stream_detail(x, y, o),
        (Value::Module(x), Value::Module(y)) => (x.module_type != y.module_type || x.payload != y.payload).then(|| {
            json!({
                "module_a": x.module_type.name(), "version_a": x.module_type.encver(),
                "module_b": y.module_type.name(), "version_b": y.module_type.encver(),
                "payload_bytes_a": x.payload.len(), "payload_bytes_b": y.payload.len(),
            })
        }),
        _ => Some(json!({})),
    }
}

/// Bytes shown around a difference in a long string.
const EXCERPT: usize = 64;

fn string_detail(x: &[u8], y: &[u8]) -> Json {
    let at = x.iter().zip(y).position(|(p, q)| p != q).unwrap_or(x.len().min(y.len()));
    let excerpt = |s: &[u8]| jbytes(&s[at.min(s.len())..(at + EXCERPT).min(s.len())]);
    let mut d = json!({ "length_a": x.len(), "length_b": y.len(), "first_difference_at": at });
    if x.len() <= 2 * EXCERPT && y.len() <= 2 * EXCERPT {
        d["a"] = jbytes(x);
        d["b"] = jbytes(y);
    } else {
        d["a_from_difference"] = excerpt(x);
        d["b_from_difference"] = excerpt(y);
    }
    d
}

fn list_detail(x: &[Vec<u8>], y: &[Vec<u8>], o: &Options) -> Option<Json> {
    if x == y {
        return None;
    }
    let at = x.iter().zip(y).position(|(p, q)| p != q).unwrap_or(x.len().min(y.len()));
    let from = |s: &[Vec<u8>]| -> Vec<Json> { s.iter().skip(at).take(o.max_members).map(|e| jbytes(e)).collect() };
    Some(json!({
        "length_a": x.len(), "length_b": y.len(), "first_difference_at": at,
        "a_from_difference": from(x), "b_from_difference": from(y),
    }))
}

/// Members of `x` not in `y`: the first `max` (sorted) and how many.
fn missing<'v>(x: &'v [Vec<u8>], y: &std::collections::HashSet<&[u8]>, max: usize) -> (Vec<&'v [u8]>, usize) {
    let mut v: Vec<&[u8]> = x.iter().map(|m| m.as_slice()).filter(|m| !y.contains(m)).collect();
    let n = v.len();
    v.sort_unstable();
    v.truncate(max);
    (v, n)
}

fn set_detail(x: &[Vec<u8>], y: &[Vec<u8>], o: &Options) -> Option<Json> {
    let sx: std::collections::HashSet<&[u8]> = x.iter().map(|m| m.as_slice()).collect();
    let sy: std::collections::HashSet<&[u8]> = y.iter().map(|m| m.as_slice()).collect();
    let (oa, na) = missing(x, &sy, o.max_members);
    let (ob, nb) = missing(y, &sx, o.max_members);
    if na == 0 && nb == 0 {
        return None;
    }
    Some(json!({
        "length_a": x.len(), "length_b": y.len(),
        "only_in_a": oa.iter().map(|m| jbytes(m)).collect::<Vec<_>>(), "only_in_a_count": na,
        "only_in_b": ob.iter().map(|m| jbytes(m)).collect::<Vec<_>>(), "only_in_b_count": nb,
    }))
}

fn zset_detail(x: &[(Vec<u8>, f64)], y: &[(Vec<u8>, f64)], o: &Options) -> Option<Json> {
    let mx: std::collections::HashMap<&[u8], f64> = x.iter().map(|(m, s)| (m.as_slice(), *s)).collect();
    let my: std::collections::HashMap<&[u8], f64> = y.iter().map(|(m, s)| (m.as_slice(), *s)).collect();
    let mut only_a: Vec<&[u8]> = mx.keys().filter(|m| !my.contains_key(*m)).copied().collect();
    let mut only_b: Vec<&[u8]> = my.keys().filter(|m| !mx.contains_key(*m)).copied().collect();
    // `==` on doubles: -0.0 equals 0, inf equals inf (NaN is refused by the reader).
    let mut changed: Vec<(&[u8], f64, f64)> =
        mx.iter().filter_map(|(m, s)| my.get(m).filter(|t| **t != *s).map(|t| (*m, *s, *t))).collect();
    if only_a.is_empty() && only_b.is_empty() && changed.is_empty() {
        return None;
    }
    let (na, nb, nc) = (only_a.len(), only_b.len(), changed.len());
    only_a.sort_unstable();
    only_b.sort_unstable();
    changed.sort_unstable_by(|p, q| p.0.cmp(q.0));
    let max = o.max_members;
    Some(json!({
        "length_a": x.len(), "length_b": y.len(),
        "only_in_a": only_a.iter().take(max).map(|m| jbytes(m)).collect::<Vec<_>>(), "only_in_a_count": na,
        "only_in_b": only_b.iter().take(max).map(|m| jbytes(m)).collect::<Vec<_>>(), "only_in_b_count": nb,
        "different_scores": changed.iter().take(max).map(|(m, a, b)| json!([jbytes(m), jscore(*a), jscore(*b)])).collect::<Vec<_>>(),
        "different_scores_count": nc,
    }))
}

fn hash_detail(x: &[HashField], y: &[HashField], o: &Options) -> Option<Json> {
    type Fields<'v> = std::collections::HashMap<&'v [u8], (&'v [u8], Option<i64>)>;
    fn map(h: &[HashField]) -> Fields<'_> {
        h.iter().map(|f| (f.field.as_slice(), (f.value.as_slice(), f.expire_at_ms))).collect()
    }
    let (mx, my) = (map(x), map(y));
    let mut only_a: Vec<&[u8]> = mx.keys().filter(|f| !my.contains_key(*f)).copied().collect();
    let mut only_b: Vec<&[u8]> = my.keys().filter(|f| !mx.contains_key(*f)).copied().collect();
    let mut values = Vec::new();
    let mut ttls = Vec::new();
    for (f, (va, ta)) in &mx {
        if let Some((vb, tb)) = my.get(f) {
            if va != vb {
                values.push((*f, *va, *vb));
            } else if !times_close(*ta, *tb, o.ttl_tolerance_ms) {
                ttls.push((*f, *ta, *tb));
            }
        }
    }
    if only_a.is_empty() && only_b.is_empty() && values.is_empty() && ttls.is_empty() {
        return None;
    }
    let (na, nb, nv, nt) = (only_a.len(), only_b.len(), values.len(), ttls.len());
    only_a.sort_unstable();
    only_b.sort_unstable();
    values.sort_unstable_by(|p, q| p.0.cmp(q.0));
    ttls.sort_unstable_by(|p, q| p.0.cmp(q.0));
    let max = o.max_members;
    let mut d = json!({
        "length_a": x.len(), "length_b": y.len(),
        "only_in_a": only_a.iter().take(max).map(|m| jbytes(m)).collect::<Vec<_>>(), "only_in_a_count": na,
        "only_in_b": only_b.iter().take(max).map(|m| jbytes(m)).collect::<Vec<_>>(), "only_in_b_count": nb,
        "different_values": values.iter().take(max).map(|(f, a, b)| json!([jbytes(f), jbytes(a), jbytes(b)])).collect::<Vec<_>>(),
        "different_values_count": nv,
    });
    if nt > 0 {
        d["different_field_ttls"] = ttls.iter().take(max).map(|(f, a, b)| json!([jbytes(f), a, b])).collect();
        d["different_field_ttls_count"] = json!(nt);
    }
    Some(d)
}

fn entry_json(e: &StreamEntry) -> Json {
    json!({
        "id": e.id.to_string(),
        "fields": e.fields.iter().map(|(f, v)| json!([jbytes(f), jbytes(v)])).collect::<Vec<_>>(),
    })
}

fn stream_detail(x: &Stream, y: &Stream, o: &Options) -> Option<Json> {
    let mut d = serde_json::Map::new();
    if x.entries != y.entries {
        let at =
            x.entries.iter().zip(&y.entries).position(|(p, q)| p != q).unwrap_or(x.entries.len().min(y.entries.len()));
        d.insert(
            "entries".into(),
            json!({
                "length_a": x.entries.len(), "length_b": y.entries.len(), "first_difference_at": at,
                "a": x.entries.get(at).map(entry_json), "b": y.entries.get(at).map(entry_json),
            }),
        );
    }
    let mut meta = serde_json::Map::new();
    let (ma, mb) = (&x.meta, &y.meta);
    if ma.length != mb.length {
        meta.insert("length".into(), json!([ma.length, mb.length]));
    }
    if ma.last_id != mb.last_id {
        meta.insert("last_id".into(), json!([ma.last_id.to_string(), mb.last_id.to_string()]));
    }
    // Fields an older stream type lacks are compared only when both sides have them.
    if let (Some(p), Some(q)) = (ma.first_id, mb.first_id)
        && p != q
    {
        meta.insert("first_id".into(), json!([p.to_string(), q.to_string()]));
    }
    if let (Some(p), Some(q)) = (ma.max_deleted_id, mb.max_deleted_id)
        && p != q
    {
        meta.insert("max_deleted_id".into(), json!([p.to_string(), q.to_string()]));
    }
    if let (Some(p), Some(q)) = (ma.entries_added, mb.entries_added)
        && p != q
    {
        meta.insert("entries_added".into(), json!([p, q]));
    }
    if !meta.is_empty() {
        d.insert("meta".into(), Json::Object(meta));
    }
    if let Some(g) = groups_detail(&x.groups, &y.groups, o) {
        d.insert("groups".into(), g);
    }
    if let (Some(p), Some(q)) = (&x.idmp, &y.idmp) {
        if p != q {
            d.insert("idmp".into(), json!("differs"));
        }
    } else if x.idmp.is_some() != y.idmp.is_some() {
        d.insert("idmp".into(), json!({ "a": x.idmp.is_some(), "b": y.idmp.is_some() }));
    }
    (!d.is_empty()).then_some(Json::Object(d))
}

fn groups_detail(x: &[StreamGroup], y: &[StreamGroup], o: &Options) -> Option<Json> {
    let find = |gs: &'_ [StreamGroup], name: &[u8]| gs.iter().position(|g| g.name == name);
    let only_a: Vec<Json> = x.iter().filter(|g| find(y, &g.name).is_none()).map(|g| jbytes(&g.name)).collect();
    let only_b: Vec<Json> = y.iter().filter(|g| find(x, &g.name).is_none()).map(|g| jbytes(&g.name)).collect();
    let mut different = Vec::new();
    for ga in x {
        let Some(i) = find(y, &ga.name) else { continue };
        let gb = &y[i];
        let mut what = serde_json::Map::new();
        if ga.last_id != gb.last_id {
            what.insert("last_id".into(), json!([ga.last_id.to_string(), gb.last_id.to_string()]));
        }
        if o.strict
            && let (Some(p), Some(q)) = (ga.entries_read, gb.entries_read)
            && p != q
        {
            let n = |v: u64| if v == u64::MAX { Json::Null } else { json!(v) };
            what.insert("entries_read".into(), json!([n(p), n(q)]));
        }
        if let Some(p) = pending_detail(ga, gb, o) {
            what.insert("pending".into(), p);
        }
        if let Some(c) = consumers_detail(ga, gb, o) {
            what.insert("consumers".into(), c);
        }
        if !what.is_empty() {
            what.insert("name".into(), jbytes(&ga.name));
            different.push(Json::Object(what));
        }
    }
    if only_a.is_empty() && only_b.is_empty() && different.is_empty() {
        return None;
    }
    Some(json!({ "only_in_a": only_a, "only_in_b": only_b, "different": different }))
}

fn pending_detail(a: &StreamGroup, b: &StreamGroup, o: &Options) -> Option<Json> {
    let name = |g: &'_ StreamGroup, i: usize| g.consumers.get(i).map(|c| c.name.clone()).unwrap_or_default();
    let mb: std::collections::HashMap<_, _> = b.pending.iter().map(|p| (p.id, p)).collect();
    let ma: std::collections::HashMap<_, _> = a.pending.iter().map(|p| (p.id, p)).collect();
    let mut diffs = Vec::new();
    let mut n = 0usize;
    for p in &a.pending {
        let same = mb.get(&p.id).is_some_and(|q| {
            name(a, p.consumer) == name(b, q.consumer)
                && p.delivery_count == q.delivery_count
                && (!o.stream_times || p.delivery_time_ms.abs_diff(q.delivery_time_ms) <= o.ttl_tolerance_ms as u64)
        });
        if !same {
            n += 1;
            if diffs.len() < o.max_members {
                diffs.push(json!({ "id": p.id.to_string(), "in_b": mb.contains_key(&p.id) }));
            }
        }
    }
    for q in b.pending.iter().filter(|q| !ma.contains_key(&q.id)) {
        n += 1;
        if diffs.len() < o.max_members {
            diffs.push(json!({ "id": q.id.to_string(), "in_a": false }));
        }
    }
    (n > 0).then(|| json!({ "length_a": a.pending.len(), "length_b": b.pending.len(), "differing": diffs, "differing_count": n }))
}

fn consumers_detail(a: &StreamGroup, b: &StreamGroup, o: &Options) -> Option<Json> {
    let tol = o.ttl_tolerance_ms as u64;
    let mut only_a = Vec::new();
    let mut times = Vec::new();
    for c in &a.consumers {
        match b.consumers.iter().find(|d| d.name == c.name) {
            None => only_a.push(jbytes(&c.name)),
            Some(d) if o.strict && o.stream_times => {
                let active = match (c.active_time_ms, d.active_time_ms) {
                    (Some(p), Some(q)) => p.abs_diff(q) > tol,
                    _ => false,
                };
                if c.seen_time_ms.abs_diff(d.seen_time_ms) > tol || active {
                    times.push(json!({
                        "name": jbytes(&c.name),
                        "seen_time_ms": [c.seen_time_ms, d.seen_time_ms],
                        "active_time_ms": [c.active_time_ms, d.active_time_ms],
                    }));
                }
            }
            Some(_) => {}
        }
    }
    let only_b: Vec<Json> =
        b.consumers.iter().filter(|d| !a.consumers.iter().any(|c| c.name == d.name)).map(|d| jbytes(&d.name)).collect();
    if only_a.is_empty() && only_b.is_empty() && times.is_empty() {
        return None;
    }
    times.truncate(o.max_members);
    Some(json!({ "only_in_a": only_a, "only_in_b": only_b, "different_times": times }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::types::Kind;
    use crate::rdb::value::{Consumer, PendingEntry, StreamId};

    fn opts() -> Options {
        Options::default()
    }

    #[test]
    fn collections_compare_logically() {
        let o = opts();
        let s = |v: &[&str]| v.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
        assert!(value_detail(&Value::Set(s(&["a", "b"])), &Value::Set(s(&["b", "a"])), &o).is_none());
        let d = value_detail(&Value::Set(s(&["a", "b", "c"])), &Value::Set(s(&["b", "d"])), &o).unwrap();
        assert_eq!(d["only_in_a"], json!(["a", "c"]));
        assert_eq!(d["only_in_b"], json!(["d"]));
        // Lists are ordered.
        let d = value_detail(&Value::List(s(&["a", "b"])), &Value::List(s(&["b", "a"])), &o).unwrap();
        assert_eq!(d["first_difference_at"], json!(0));
        // -0.0 == 0, member order does not matter.
        let z = |v: &[(&str, f64)]| Value::Zset(v.iter().map(|(m, s)| (m.as_bytes().to_vec(), *s)).collect());
        assert!(value_detail(&z(&[("a", -0.0), ("b", 1.5)]), &z(&[("b", 1.5), ("a", 0.0)]), &o).is_none());
        let d = value_detail(&z(&[("a", 1.0), ("b", f64::INFINITY)]), &z(&[("a", 2.0), ("b", f64::INFINITY)]), &o);
        assert_eq!(d.unwrap()["different_scores"], json!([["a", 1.0, 2.0]]));
        // Hash fields as a map; field TTLs within the tolerance are equal.
        let h = |v: &[(&str, &str, Option<i64>)]| {
            Value::Hash(
                v.iter()
                    .map(|(f, x, t)| HashField {
                        field: f.as_bytes().to_vec(),
                        value: x.as_bytes().to_vec(),
                        expire_at_ms: *t,
                    })
                    .collect(),
            )
        };
        assert!(
            value_detail(
                &h(&[("f", "1", Some(1000)), ("g", "2", None)]),
                &h(&[("g", "2", None), ("f", "1", Some(2500))]),
                &o
            )
            .is_none()
        );
        let d = value_detail(&h(&[("f", "1", None)]), &h(&[("f", "2", None), ("x", "", None)]), &o).unwrap();
        assert_eq!(d["different_values"], json!([["f", "1", "2"]]));
        assert_eq!(d["only_in_b"], json!(["x"]));
        let d = value_detail(&h(&[("f", "1", Some(1000))]), &h(&[("f", "1", Some(9000))]), &o).unwrap();
        assert_eq!(d["different_field_ttls"], json!([["f", 1000, 9000]]));
        // Binary members use the export vocabulary.
        let d = value_detail(&Value::Set(vec![vec![0xff]]), &Value::Set(vec![]), &o).unwrap();
        assert_eq!(d["only_in_a"], json!([{ "base64": "/w==" }]));
    }

    #[test]
    fn strings_show_where_they_differ() {
        let d = string_detail(b"hello", b"help");
        assert_eq!(d["first_difference_at"], json!(3));
        assert_eq!(d["a"], json!("hello"));
        let long_a = vec![b'x'; 1000];
        let mut long_b = long_a.clone();
        long_b[700] = b'y';
        let d = string_detail(&long_a, &long_b);
        assert_eq!(d["first_difference_at"], json!(700));
        assert!(d.get("a").is_none());
        assert_eq!(d["b_from_difference"].as_str().unwrap().len(), EXCERPT);
    }

    #[test]
    fn stream_times_have_a_tolerance_or_are_ignored() {
        let id = |ms| StreamId { ms, seq: 0 };
        let mk = |seen: i64, delivered: i64| {
            let mut s = Stream::default();
            s.entries.push(StreamEntry { id: id(1), fields: vec![(b"f".to_vec(), b"v".to_vec())] });
            s.groups.push(StreamGroup {
                name: b"g".to_vec(),
                last_id: id(1),
                entries_read: Some(1),
                pending: vec![PendingEntry { id: id(1), consumer: 0, delivery_time_ms: delivered, delivery_count: 1 }],
                consumers: vec![Consumer {
                    name: b"c".to_vec(),
                    seen_time_ms: seen,
                    active_time_ms: None,
                    pending: vec![id(1)],
                }],
            });
            Value::Stream(Box::new(s))
        };
        let mut o = opts();
        // By default, what a restore cannot carry over is left out: seen times, entries_read.
        assert!(value_detail(&mk(1000, 5000), &mk(9000, 5000), &o).is_none());
        let mut other_read = mk(1000, 5000);
        if let Value::Stream(s) = &mut other_read {
            s.groups[0].entries_read = Some(7);
        }
        assert!(value_detail(&mk(1000, 5000), &other_read, &o).is_none());
        o.strict = true;
        let d = value_detail(&mk(1000, 5000), &other_read, &o).unwrap();
        assert_eq!(d["groups"]["different"][0]["entries_read"], json!([1, 7]));
        assert!(value_detail(&mk(1000, 5000), &mk(2500, 6000), &o).is_none());
        let d = value_detail(&mk(1000, 5000), &mk(9000, 5000), &o).unwrap();
        assert_eq!(d["groups"]["different"][0]["consumers"]["different_times"][0]["seen_time_ms"], json!([1000, 9000]));
        assert!(value_detail(&mk(1000, 5000), &mk(1000, 50000), &o).is_some());
        o.stream_times = false;
        assert!(value_detail(&mk(1000, 5000), &mk(9000, 50000), &o).is_none());
    }

    #[test]
    fn one_sided_keys_that_expired_meanwhile() {
        let o = opts();
        let info = |t| SideInfo { kind: Kind::String, expire_at_ms: t };
        assert_eq!(one_sided(0, b"k", info(None), true, 10_000, &o).kind, DiffKind::OnlyInA);
        assert_eq!(one_sided(0, b"k", info(Some(9_000)), true, 10_000, &o).kind, DiffKind::Expired);
        assert_eq!(one_sided(0, b"k", info(Some(11_000)), false, 10_000, &o).kind, DiffKind::Expired);
        assert_eq!(one_sided(0, b"k", info(Some(13_000)), false, 10_000, &o).kind, DiffKind::OnlyInB);
    }
}
