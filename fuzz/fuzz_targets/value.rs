//! One serialized value: data[0] is the type byte, bit 0 of data[1] picks Valkey 80 over
//! Redis 13, data[2..] is the value.
//!
//! Invariants: `decode` and `validate` agree on Ok/Err; when they succeed, `skip_value` succeeds
//! too and consumes exactly data[2..].
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdbtool::rdb::cursor::Cursor;
use rdbtool::rdb::walk::skip_value;
use rdbtool::rdb::{Flavor, Format, RawValue, Walker};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let valkey = data[1] & 1 == 1;
    let format = Format {
        flavor: if valkey { Flavor::Valkey } else { Flavor::Redis },
        version: if valkey { 80 } else { 13 },
    };
    let bytes = &data[2..];
    let raw = RawValue {
        type_byte: data[0],
        format,
        bytes,
        offset: 0,
    };
    let mut w = Walker::new();
    let decoded = raw.decode(&mut w);
    let validated = raw.validate(&mut w);
    assert_eq!(
        decoded.is_ok(),
        validated.is_ok(),
        "decode and validate disagree: decode {:?}, validate {:?}",
        decoded.as_ref().map(|_| ()),
        validated
    );

    let mut c = Cursor::new(bytes, 0);
    let skipped = skip_value(&mut c, data[0], format);
    if decoded.is_ok() || validated.is_ok() {
        assert!(
            skipped.is_ok(),
            "walk accepted the value but skip_value failed: {:?}",
            skipped
        );
        assert_eq!(
            c.pos(),
            bytes.len(),
            "walk accepted the value but skip_value consumed {} of {} bytes",
            c.pos(),
            bytes.len()
        );
    }
});
