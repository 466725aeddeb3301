//! Whole files through `verify_bytes` and `Reader`: random keys in random dbs with expiries and
//! LRU/LFU modifiers round-trip, and every truncation of a valid file is reported as truncated.

mod encoding_cases;
use encoding_cases::*;

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
