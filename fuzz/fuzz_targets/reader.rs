//! Whole-file target: the verify engine (read whole, and in parts of 97 bytes: the same errors),
//! then every key's value decoded and validated.
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
