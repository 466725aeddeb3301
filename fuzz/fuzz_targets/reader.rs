//! Whole-file target: the verify engine (read whole, and in parts of 97 bytes: the same errors),
//! then `report`'s aggregates (in parts, where the reader measures collections in place, and in
//! one reading: the same figures when both read the file to its end), then every key's value
//! decoded and validated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdbtool::rdb::{Reader, Record, Walker};
use rdbtool::verify::{Options, verify_bytes, verify_bytes_in_parts};

fuzz_target!(|data: &[u8]| {
    let opts = Options {
        keep_going: true,
        max_errors: 10,
        now_ms: 0,
        target: None,
    };
    let whole = verify_bytes("fuzz", data, &opts);
    let parts = verify_bytes_in_parts("fuzz", data, &opts, 97);
    let view = |r: &rdbtool::verify::Report| {
        let e: Vec<_> = r.errors.iter().map(|e| (e.offset, e.message.clone())).collect();
        (r.ok, e, r.keys, r.warnings.clone())
    };
    assert_eq!(view(&whole), view(&parts), "read in parts");

    let ro = rdbtool::report::Options {
        top: 3,
        separators: b":".to_vec(),
        depth: 2,
        max_prefixes: 16,
        now_ms: 0,
        filter: Default::default(),
        largest_element: false,
    };
    let parts = rdbtool::report::scan_in_parts("fuzz", data, &ro, 97);
    let pages = rdbtool::pass::Pages::unmapped(data.len());
    if let Ok(one) = rdbtool::report::scan_file("fuzz", data, &ro, &pages, &mut |_| Ok(())) {
        let clean = |a: &rdbtool::report::Aggregate| a.files.iter().all(|f| f.error.is_none());
        if clean(&parts) && clean(&one) {
            // Everything `report --json` shows (the prefix table as all it holds).
            let view = |a: &rdbtool::report::Aggregate| {
                format!(
                    "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                    a.total,
                    a.dbs,
                    a.types,
                    a.encodings,
                    a.ttl,
                    a.slots,
                    a.top_memory.sorted(),
                    a.top_elements.sorted(),
                    a.prefixes.heaviest(usize::MAX)
                )
            };
            assert_eq!(view(&parts), view(&one), "report in parts");
        }
    }

    if let Ok(reader) = Reader::new(data) {
        let mut w = Walker::new();
        for rec in reader {
            match rec {
                Ok(Record::Key(k)) => {
                    let _ = k.value.decode(&mut w);
                    let _ = k.value.validate(&mut w);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
});
