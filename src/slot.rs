//! Redis Cluster hash slots (docs/format.md §10): CRC-16/XMODEM of the key, or of its `{hash tag}`,
//! modulo 16384.

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// CRC-16/XMODEM tables: poly 0x1021, init 0, no reflection, xorout 0. `TABLES[0]` is the
/// classic byte table; `TABLES[k][i]` is the CRC of byte `i` followed by `k` zero bytes, so four
/// bytes are folded with four independent lookups (slicing by 4).
const TABLES: [[u16; 256]; 4] = {
    let mut t = [[0u16; 256]; 4];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut b = 0;
        while b < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            b += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 4 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev << 8) ^ t[0][(prev >> 8) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

/// CRC-16/XMODEM of `data` (check value: `123456789` gives `0x31C3`).
pub fn crc16(data: &[u8]) -> u16 {
    let [t0, t1, t2, t3] = &TABLES;
    let mut chunks = data.chunks_exact(4);
    let mut crc = 0u16;
    for c in &mut chunks {
        // The register is 16 bits: the first two bytes absorb it, the last two come in clean.
        let x = crc ^ u16::from_be_bytes([c[0], c[1]]);
        crc = t3[(x >> 8) as usize] ^ t2[(x & 0xff) as usize] ^ t1[c[2] as usize] ^ t0[c[3] as usize];
    }
    chunks.remainder().iter().fold(crc, |crc, &b| (crc << 8) ^ t0[((crc >> 8) as u8 ^ b) as usize])
}

/// The part of `key` that is hashed: the bytes between the first `{` and the first `}` after
/// it, when there is at least one byte between them; otherwise the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// The cluster hash slot of `key` (0..16383).
///
/// ```
/// use rdbtool::slot::key_slot;
///
/// assert_eq!(key_slot(b"foo"), 12182);
/// // Only the hash tag is hashed, so these two keys share a slot.
/// assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn slicing_equals_one_byte_at_a_time() {
        let bytewise =
            |d: &[u8]| d.iter().fold(0u16, |crc, &b| (crc << 8) ^ TABLES[0][((crc >> 8) as u8 ^ b) as usize]);
        let data: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for start in 0..8 {
            for end in start..data.len() {
                assert_eq!(crc16(&data[start..end]), bytewise(&data[start..end]), "{start}..{end}");
            }
        }
    }

    #[test]
    fn format_md_examples() {
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), 3443);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(key_slot(b"foo{}{bar}"), 8363);
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(key_slot(b"foo{{bar}}zap"), 4015);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn tags_edge_cases() {
        assert_eq!(hash_tag(b"{"), b"{");
        assert_eq!(hash_tag(b"a{b"), b"a{b");
        assert_eq!(hash_tag(b"}{x}"), b"x");
        assert_eq!(hash_tag(b"{a}{b}"), b"a");
        assert_eq!(hash_tag(b"{}"), b"{}");
    }
}
