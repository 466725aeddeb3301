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
///
/// CRC-64/Redis starts from 0 and is not inverted at the end, so it is linear over GF(2): the
/// CRC of `a` then `b` is the CRC of `a` shifted over `len_b` zero bytes (multiplied by
/// x^(8 len_b) modulo the polynomial), xored with the CRC of `b`. The power of x comes from a
/// table of x^(2^k): a few dozen carry-less products of 64 steps each, about a microsecond
/// (the generic combine of `crc-fast` squares a 64x64 bit matrix per bit of `len_b`, about
/// 50 µs, which showed in writers that combine thousands of pieces).
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    mul_mod(crc_a, x_pow_8n(len_b)) ^ crc_b
}

/// The polynomial of CRC-64/Redis (0xad93d23594c935a9) with its bits reversed: CRC-64/Redis
/// reads bits low first, so bit 63 of a value is x^0 and bit 0 is x^63.
const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;
/// x^0 in that bit order.
const ONE: u64 = 1 << 63;

/// `a * b` modulo the polynomial, both in reflected bit order.
fn mul_mod(a: u64, mut b: u64) -> u64 {
    let mut product = 0;
    // For each power of x in `a` from x^0 up, add `b` times it; `b` steps to b * x each time.
    for i in (0..64).rev() {
        if a >> i & 1 == 1 {
            product ^= b;
        }
        b = if b & 1 == 1 { (b >> 1) ^ POLY_REFLECTED } else { b >> 1 };
    }
    product
}

/// x^(2^k) modulo the polynomial, for k = 0..67 (8 n needs up to 2^66).
static X_POW_2K: std::sync::LazyLock<[u64; 67]> = std::sync::LazyLock::new(|| {
    let mut t = [0u64; 67];
    t[0] = ONE >> 1; // x^1
    for k in 1..67 {
        t[k] = mul_mod(t[k - 1], t[k - 1]);
    }
    t
});

/// x^(8 n) modulo the polynomial: the factor that shifts a CRC over `n` zero bytes.
fn x_pow_8n(n: u64) -> u64 {
    let t = &*X_POW_2K;
    let mut p = ONE;
    // 8 n = n << 3: bit j of n is the power x^(2^(j + 3)).
    let mut n = n;
    let mut k = 3;
    while n != 0 {
        if n & 1 == 1 {
            p = mul_mod(p, t[k]);
        }
        n >>= 1;
        k += 1;
    }
    p
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

    /// The combine here gives what `crc-fast`'s own combine gives, and the CRC of the joined bytes.
    #[test]
    fn combine_matches_crc_fast() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for cut in [0, 1, 7, 8, 9, 63, 64, 4096, 65_535, 69_999, 70_000] {
            let (a, b) = data.split_at(cut);
            let (ca, cb) = (crc64(a), crc64(b));
            assert_eq!(combine(ca, cb, b.len() as u64), crc64(&data), "cut {cut}");
        }
        for (i, len) in [0u64, 1, 2, 3, 1000, 1 << 20, (1 << 33) + 5, u64::MAX / 3].into_iter().enumerate() {
            let (a, b) = (0x1234_5678_9abc_def0u64.rotate_left(i as u32), 0x0f1e_2d3c_4b5a_6978u64 ^ len);
            assert_eq!(
                combine(a, b, len),
                crc_fast::checksum_combine(CrcAlgorithm::Crc64Redis, a, b, len),
                "len {len}"
            );
        }
    }

    #[test]
    fn dump_payload_footer() {
        // docs/format.md §9: DUMP of "12345" = 00 C1 39 30 0A 00 | crc 9D 94 EA 27 93 FC 08 B9.
        let body = [0x00, 0xC1, 0x39, 0x30, 0x0A, 0x00];
        assert_eq!(crc64(&body).to_le_bytes(), [0x9D, 0x94, 0xEA, 0x27, 0x93, 0xFC, 0x08, 0xB9]);
    }
}
