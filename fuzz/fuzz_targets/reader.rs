//! Whole-file target: the verify engine, then every key's value decoded and validated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdbtool::rdb::{Reader, Record, Walker};
use rdbtool::verify::{Options, verify_bytes};

fuzz_target!(|data: &[u8]| {
    let opts = Options {
        keep_going: true,
        max_errors: 10,
        now_ms: 0,
        target: None,
    };
    let _ = verify_bytes("fuzz", data, &opts);

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
