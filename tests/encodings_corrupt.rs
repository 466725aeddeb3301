//! One negative test per corruption the reader must report: each names the error kind and an
//! offset inside the value, and validation agrees with decoding.

mod encoding_cases;
use encoding_cases::*;

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
fn decode_with_notes(t: u8, bytes: &[u8]) -> (Value, Vec<rdbtool::rdb::value::Note>) {
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

/// Each walk starts with no notes, for a walker without the duplicate check too (the memory
/// estimate's): its notes once piled up key after key.
#[test]
fn notes_are_those_of_the_last_walk() {
    let bytes = zset3(&[(b"m", b"1e")]);
    let rv = RawValue { type_byte: 3, format: REDIS, bytes: &bytes, offset: BASE };
    for mut w in [Walker::new(), Walker::without_duplicate_check()] {
        for _ in 0..3 {
            rv.validate(&mut w).unwrap();
            assert_eq!(w.notes().len(), 1, "{:?}", w.notes());
        }
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
