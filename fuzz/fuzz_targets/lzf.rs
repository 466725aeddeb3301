//! Differential LZF: data[0..2] is the declared length (u16 LE), the rest the compressed stream.
//! `validate`, `decompress_into` and `decompress_in` agree on Ok/Err (and on the error), and on
//! success the output matches `lzf_rust::decompress` into a buffer of exactly `ulen` bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdbtool::rdb::lzf::{decompress_in, decompress_into, validate};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let ulen = u16::from_le_bytes([data[0], data[1]]) as usize;
    let input = &data[2..];

    let v = validate(input, ulen);
    let mut fresh = Vec::new();
    let d = decompress_into(input, ulen, &mut fresh);
    // Also into a buffer holding stale bytes: reuse must not leak into the result.
    let mut stale = vec![0xA5u8; ulen + 64];
    let d_stale = decompress_into(input, ulen, &mut stale);
    assert_eq!(v, d, "validate and decompress_into disagree");
    assert_eq!(d, d_stale, "decompress_into depends on the buffer's old contents");
    // Into a longer buffer kept as it is past the output.
    let mut kept = vec![0x5Au8; ulen + 64];
    let d_kept = decompress_in(input, ulen, &mut kept).map(|o| o.to_vec());
    assert_eq!(d, d_kept.as_ref().map(|_| ()).map_err(|e| e.clone()), "decompress_in disagrees");

    let mut reference = vec![0u8; ulen];
    let r = lzf_rust::decompress(input, &mut reference);
    match d {
        Ok(()) => {
            assert_eq!(fresh.len(), ulen);
            assert_eq!(r, Ok(ulen), "ours Ok, lzf-rust {:?}", r);
            assert_eq!(fresh, reference, "output differs from lzf-rust");
            assert_eq!(stale, reference, "output (reused buffer) differs from lzf-rust");
            assert_eq!(d_kept.unwrap(), reference, "output (kept buffer) differs from lzf-rust");
        }
        Err(e) => {
            assert!(fresh.is_empty() && stale.is_empty(), "buffer not emptied on error");
            assert!(
                !matches!(r, Ok(n) if n == ulen),
                "ours {:?}, lzf-rust decoded all {} bytes",
                e,
                ulen
            );
        }
    }
});
