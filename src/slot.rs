//! Redis Cluster hash slots (docs/format.md §10): CRC-16/XMODEM of the key, or of its `{hash tag}`,
//! modulo 16384.

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// CRC-16/XMODEM tables: poly 0x1021, init 0, no reflection, xorout 0. `TABLES[0]` is the
/// classic byte table; `TABLES[k][i]` is the CRC of byte `i` followed by `k` zero bytes, so eight
/// bytes are folded with eight independent lookups (slicing by 8; 4 KiB of tables).
const TABLES: [[u16; 256]; 8] = {
    let mut t = [[0u16; 256]; 8];
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
    while k < 8 {
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

/// Folds eight bytes into `crc`. The register is 16 bits: the first two bytes absorb it, the
/// other six come in clean.
#[inline(always)]
fn fold8(crc: u16, c: &[u8; 8]) -> u16 {
    let t = &TABLES;
    let x = crc ^ u16::from_be_bytes([c[0], c[1]]);
    t[7][(x >> 8) as usize]
        ^ t[6][(x & 0xff) as usize]
        ^ t[5][c[2] as usize]
        ^ t[4][c[3] as usize]
        ^ t[3][c[4] as usize]
        ^ t[2][c[5] as usize]
        ^ t[1][c[6] as usize]
        ^ t[0][c[7] as usize]
}

/// CRC-16/XMODEM of `data` (check value: `123456789` gives `0x31C3`).
pub fn crc16(data: &[u8]) -> u16 {
    crc_chunks(data, |_| false).unwrap_or_default()
}

/// The CRC of `data`, eight bytes at a time: its first `len % 8` bytes go in as a chunk padded
/// with leading zeros, which leave a CRC that starts at 0 unchanged (no byte-at-a-time tail).
/// `stop` sees each chunk's bytes first and ends the fold (`None`) when it says so.
#[inline(always)]
fn crc_chunks(data: &[u8], stop: impl Fn(u64) -> bool) -> Option<u16> {
    let r = data.len() % 8;
    let (first, rest) = data.split_at(r);
    let mut crc = 0u16;
    if r != 0 {
        // The first `r` bytes as the low end of a big-endian word: one load and a shift when
        // the key has eight bytes or more, byte by byte for a shorter one.
        let word = match data.first_chunk::<8>() {
            Some(w) => u64::from_be_bytes(*w) >> (8 * (8 - r)),
            None => first.iter().fold(0u64, |x, &b| x << 8 | b as u64),
        };
        let c = word.to_be_bytes();
        if stop(u64::from_ne_bytes(c)) {
            return None;
        }
        crc = fold8(0, &c);
    }
    for c in rest.as_chunks::<8>().0 {
        if stop(u64::from_ne_bytes(*c)) {
            return None;
        }
        crc = fold8(crc, c);
    }
    Some(crc)
}

/// True when one of the eight bytes of `x` is `{` (exact: the classic zero-byte test on
/// `x ^ "{{{{{{{{"`, whose carries can only flag a byte above a real match).
#[inline(always)]
fn has_open_brace(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let y = x ^ (ONES * b'{' as u64);
    y.wrapping_sub(ONES) & !y & (ONES << 7) != 0
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
    // One pass: the CRC of the whole key while no `{` shows (most keys have none); a key with
    // one is hashed again over its tag, if it has one.
    crc_chunks(key, has_open_brace).unwrap_or_else(|| crc16(hash_tag(key))) & (SLOTS - 1)
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
    fn one_pass_slot_equals_tag_then_crc() {
        let data: Vec<u8> = (0..64u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 0x80).collect();
        for len in 0..data.len() {
            let mut key = data[..len].to_vec();
            assert_eq!(key_slot(&key), crc16(&key) & (SLOTS - 1), "len {len}");
            // A `{` (and a `}`) anywhere: the tag rule applies whichever chunk holds them.
            for open in 0..len {
                key[open] = b'{';
                assert_eq!(key_slot(&key), crc16(hash_tag(&key)) & (SLOTS - 1), "len {len}, {{ at {open}");
                for close in open + 1..len {
                    let mut k = key.clone();
                    k[close] = b'}';
                    assert_eq!(key_slot(&k), crc16(hash_tag(&k)) & (SLOTS - 1), "len {len}, {open}..{close}");
                }
                key[open] = data[open];
            }
        }
        for x in 0..=255u8 {
            assert_eq!(has_open_brace(u64::from_ne_bytes([x, 0, 0x7b ^ 1, 0x7c, 0x7a, 0xfb, 0x80, 0xff])), x == b'{');
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
