//! Round trips through every encoding the reader handles: random logical values are serialized
//! with `rdbtool::rdb::encode` into each on-disk type, decoded with the `Walker`, and compared with
//! the input; `skip_value` must consume exactly the serialized bytes. Edge cases of each encoding
//! that Redis writes or accepts follow the properties.

mod encoding_cases;
use encoding_cases::*;

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
