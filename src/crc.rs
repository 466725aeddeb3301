//! CRC-64/Redis ("Jones"), the checksum of RDB files and DUMP payloads, via `crc-fast` (SIMD).
//! Not CRC-64/XZ: the `crc64fast` crate computes that one and gives wrong answers here.

use crc_fast::{CrcAlgorithm, Digest};

/// The CRC-64/Redis of `data` in one call (docs/format.md §8: for an RDB file, every byte from
/// the header through the EOF opcode; the result is stored `u64le` after it).
///
/// ```
/// assert_eq!(rdbtool::crc::crc64(b"123456789"), 0xe9c6d914c4b8d9ca); // the check value
/// ```
pub fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(CrcAlgorithm::Crc64Redis, data)
}

/// The CRC-64/Redis of `a` followed by `b`, from the CRCs of each and the length of `b`.
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    crc_fast::checksum_combine(CrcAlgorithm::Crc64Redis, crc_a, crc_b, len_b)
}

/// Incremental form, for writers that produce a file in pieces.
pub struct Crc64(Digest);

impl Default for Crc64 {
    fn default() -> Self {
        Crc64(Digest::new(CrcAlgorithm::Crc64Redis))
    }
}

impl Crc64 {
    /// Feeds the next bytes; pieces of any size give the same result as one call.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data)
    }
    /// The CRC of everything fed so far (the digest stays usable).
    pub fn finish(&self) -> u64 {
        self.0.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
        let mut c = Crc64::default();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xe9c6d914c4b8d9ca);
        assert_eq!(combine(crc64(b"1234"), crc64(b"56789"), 5), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn dump_payload_footer() {
        // docs/format.md §9: DUMP of "12345" = 00 C1 39 30 0A 00 | crc 9D 94 EA 27 93 FC 08 B9.
        let body = [0x00, 0xC1, 0x39, 0x30, 0x0A, 0x00];
        assert_eq!(crc64(&body).to_le_bytes(), [0x9D, 0x94, 0xEA, 0x27, 0x93, 0xFC, 0x08, 0xB9]);
    }
}
