//! Redis Cluster hash slots (docs/format.md §10): CRC-16/XMODEM of the key, or of its `{hash tag}`,
//! modulo 16384.
//!
//! Three ways to the same CRC, chosen at run time: carry-less multiplication on x86-64, in 512-bit
//! registers when the CPU has AVX-512 (BW, VBMI) and VPCLMULQDQ (the wide path: one masked load, one
//! byte permute and two multiplies a key) or else with PCLMULQDQ and SSSE3, and a portable table
//! path. All equal the byte-at-a-time definition for every input.

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

/// The table path of [`crc16`].
fn crc16_table(data: &[u8]) -> u16 {
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

/// The portable (table) path of [`key_slot`], what it runs on a CPU without PCLMULQDQ and SSSE3; public
/// for the bench that compares the two. One pass: the CRC of the whole key while no `{` shows
/// (most keys have none); a key with one is hashed again over its tag, if it has one.
pub fn key_slot_portable(key: &[u8]) -> u16 {
    crc_chunks(key, has_open_brace).unwrap_or_else(|| crc16_table(hash_tag(key))) & (SLOTS - 1)
}

/// CRC-16/XMODEM of `data` (check value: `123456789` gives `0x31C3`).
#[inline]
pub fn crc16(data: &[u8]) -> u16 {
    #[cfg(target_arch = "x86_64")]
    if clmul::available() {
        // SAFETY: `clmul::available()` just checked that this CPU has PCLMULQDQ and SSSE3,
        // the features `clmul::crc16` is compiled for.
        return unsafe { clmul::crc16(data) };
    }
    crc16_table(data)
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
#[inline(always)]
pub fn key_slot(key: &[u8]) -> u16 {
    // Inlined at every caller as a load, two compares and a call: the first call, and every
    // call on a CPU without the carry-less path, go through `key_slot_first`.
    #[cfg(target_arch = "x86_64")]
    if let Some(slot) = key_slot_known(key) {
        return slot;
    }
    key_slot_first(key)
}

/// The slot by the carry-less path `clmul::available()` found, once it has looked (`None`
/// before, and on a CPU with neither path).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn key_slot_known(key: &[u8]) -> Option<u16> {
    match clmul::known_level() {
        // SAFETY: the level is `WIDE` only once `clmul::available()` found that this CPU has
        // the features `clmul::key_slot_wide` is compiled for.
        clmul::WIDE => Some(unsafe { clmul::key_slot_wide(key) }),
        // SAFETY: the level is `NARROW` only once `clmul::available()` found that this CPU has
        // PCLMULQDQ and SSSE3, the features `clmul::key_slot` is compiled for.
        clmul::NARROW => Some(unsafe { clmul::key_slot(key) }),
        _ => None,
    }
}

/// [`key_slot`] when the carry-less path is not known to be there (yet): on x86-64 the first
/// call (and every call on a CPU without it), elsewhere the portable path, inlined.
#[cfg_attr(target_arch = "x86_64", inline(never))]
#[cfg_attr(not(target_arch = "x86_64"), inline(always))]
fn key_slot_first(key: &[u8]) -> u16 {
    #[cfg(target_arch = "x86_64")]
    if clmul::available()
        && let Some(slot) = key_slot_known(key)
    {
        return slot;
    }
    key_slot_portable(key)
}

/// Polynomial arithmetic over GF(2) for the constants of the carry-less path, at compile time.
/// `P` is the CRC polynomial with its top term: x^16 + x^12 + x^5 + 1.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const P: u128 = 0x1_1021;

/// x^n mod P.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const fn xpow_mod(n: u32) -> u64 {
    let mut r: u128 = 1;
    let mut i = 0;
    while i < n {
        r <<= 1;
        if r & 0x1_0000 != 0 {
            r ^= P;
        }
        i += 1;
    }
    r as u64
}

/// floor(x^n / P) mod x^64, by long division one bit at a time (the quotient's bits come out
/// from the top; the shift keeps the last 64).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const fn quotient_low64(n: u32) -> u64 {
    let (mut rem, mut q) = (0u32, 0u64);
    let mut i = 0;
    while i <= n {
        rem = (rem << 1) | (i == 0) as u32;
        let bit = (rem >> 16) & 1;
        if bit == 1 {
            rem ^= P as u32;
        }
        q = (q << 1) | bit as u64;
        i += 1;
    }
    q
}

/// The key as one big-endian number when it has at most 16 bytes (right-aligned: the leading
/// zeros leave a CRC that starts at 0 unchanged). Overlapping loads, so at most two words and no
/// byte loop: the overlapped bytes sit at the same place in both words.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[inline(always)]
fn load_short(key: &[u8]) -> u128 {
    let n = key.len();
    debug_assert!(n <= 16);
    if let (Some(a), Some(b)) = (key.first_chunk::<8>(), key.last_chunk::<8>()) {
        (u128::from(u64::from_be_bytes(*a)) << (8 * (n - 8))) | u128::from(u64::from_be_bytes(*b))
    } else if let (Some(a), Some(b)) = (key.first_chunk::<4>(), key.last_chunk::<4>()) {
        (u128::from(u32::from_be_bytes(*a)) << (8 * (n - 4))) | u128::from(u32::from_be_bytes(*b))
    } else if n > 0 {
        // 1 to 3 bytes: the first, the middle and the last (some of them the same byte).
        (u128::from(key[0]) << (8 * (n - 1)))
            | (u128::from(key[n / 2]) << (8 * (n - 1 - n / 2)))
            | u128::from(key[n - 1])
    } else {
        0
    }
}

/// True when one of the sixteen bytes of `x` is `{`.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[inline(always)]
fn has_open_brace_128(x: u128) -> bool {
    has_open_brace(x as u64) | has_open_brace((x >> 64) as u64)
}

/// The carry-less paths (x86-64): `clmul.rs`.
#[cfg(target_arch = "x86_64")]
mod clmul;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// The definition, one bit at a time: no table, no constant but the polynomial.
    fn crc16_bitwise(data: &[u8]) -> u16 {
        let mut crc = 0u16;
        for &b in data {
            crc ^= u16::from(b) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            }
        }
        crc
    }

    /// Redis's rule written out plainly: the tag (see `hash_tag`'s own tests) through the bitwise CRC.
    fn slot_bitwise(key: &[u8]) -> u16 {
        crc16_bitwise(hash_tag(key)) & (SLOTS - 1)
    }

    /// Every path this build has: the dispatched one, the table one, and the carry-less one when
    /// the CPU has it (called directly, so a test run on a CPU without it still says so).
    fn all_paths(key: &[u8]) -> Vec<(&'static str, u16, u16)> {
        let mut v =
            vec![("dispatched", key_slot(key), crc16(key)), ("table", key_slot_portable(key), crc16_table(key))];
        #[cfg(target_arch = "x86_64")]
        if clmul::available() {
            // SAFETY: `clmul::available()` just checked for PCLMULQDQ and SSSE3.
            v.push(("clmul", unsafe { clmul::key_slot(key) }, unsafe { clmul::crc16(key) }));
            if clmul::wide_available() {
                // SAFETY: `wide_available()` just checked for the wide path's features.
                v.push(("wide", unsafe { clmul::key_slot_wide(key) }, unsafe { clmul::crc16(key) }));
            }
        }
        v
    }

    fn assert_paths(key: &[u8]) {
        let (slot, crc) = (slot_bitwise(key), crc16_bitwise(key));
        for (path, s, c) in all_paths(key) {
            assert_eq!(c, crc, "{path} crc16 of {key:?}");
            assert_eq!(s, slot, "{path} key_slot of {key:?}");
        }
    }

    /// The same numbers on every run: a failure names a reproducible input.
    use crate::rng::Rng;

    #[test]
    fn check_value_every_path() {
        assert_eq!(crc16_bitwise(b"123456789"), 0x31C3);
        for (path, _, c) in all_paths(b"123456789") {
            assert_eq!(c, 0x31C3, "{path}");
        }
        for (path, s, _) in all_paths(b"foo") {
            assert_eq!(s, 12182, "{path}");
        }
    }

    /// On a CPU with the carry-less path, `key_slot` settles on it at its first call. A CPU
    /// without it is no failure: the test records a skip (the figures in benches/README.md
    /// would then be the table path's), in the log `scripts/test.sh` counts.
    #[test]
    fn carry_less_path_is_taken_here() {
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(key_slot(b"foo"), 12182);
            let settled = clmul::known_available();
            if clmul::available() {
                assert!(settled, "key_slot's first call did not settle on the carry-less path");
                // With the wide path's features, `key_slot` takes it (the fast path of the
                // figures in benches/README.md); `all_paths` checks it against the others.
                use std::arch::is_x86_feature_detected as has;
                let wide = has!("avx512f") && has!("avx512bw") && has!("avx512vbmi") && has!("vpclmulqdq");
                if wide != clmul::wide_available() {
                    panic!("the wide path is not taken where it should be, or the other way round");
                }
            } else {
                let why = "this CPU has no PCLMULQDQ/SSSE3: key_slot takes the table path";
                eprintln!("skipping (slot::carry_less_path_is_taken_here): {why}");
                if let Some(path) = std::env::var_os("RDBTOOL_SKIP_LOG") {
                    use std::io::Write;
                    let line = format!("rdbtool slot::tests::carry_less_path_is_taken_here: {why}\n");
                    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
                        let _ = f.write_all(line.as_bytes());
                    }
                }
            }
        }
    }

    /// A key that ends where its mapping ends: the wide path's masked load reads no byte past it
    /// (the next page is unmapped: a read there would kill the test with SIGSEGV).
    #[cfg(unix)]
    #[test]
    fn a_key_at_the_end_of_a_mapping() {
        // SAFETY: a fresh private anonymous mapping of two pages, its second page then made
        // inaccessible; the slice covers only the first page; both are unmapped at the end.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
            let none = libc::PROT_NONE;
            let rw = libc::PROT_READ | libc::PROT_WRITE;
            let map = libc::mmap(std::ptr::null_mut(), 2 * page, rw, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            assert_ne!(map, libc::MAP_FAILED);
            assert_eq!(libc::mprotect(map.cast::<u8>().add(page).cast(), page, none), 0);
            let first = std::slice::from_raw_parts_mut(map.cast::<u8>(), page);
            let mut rng = Rng(7);
            for len in 0..=64 {
                let key = &mut first[page - len..];
                key.iter_mut().for_each(|b| *b = (rng.next_u64() as u8) | 0x80);
                assert_paths(key);
            }
            assert_eq!(libc::munmap(map, 2 * page), 0);
        }
    }

    #[test]
    fn every_length_random_bytes() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for len in 0..=64 {
            for round in 0..200 {
                let mut key: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                // Half the rounds without any brace, the other half as the bytes come (with
                // braces now and then), plus one round of braces at random places.
                if round % 2 == 0 {
                    key.iter_mut().filter(|b| **b == b'{').for_each(|b| *b = b'x');
                } else if round == 1 && len > 0 {
                    key[rng.next_u64() as usize % len] = b'{';
                    key[rng.next_u64() as usize % len] = b'}';
                }
                assert_paths(&key);
            }
        }
    }

    #[test]
    fn key_shapes_of_the_bench() {
        for n in [0u64, 7, 100012, 123456, 999_999_999, u64::MAX] {
            for key in [
                format!("user:{n}:profile"),
                format!("counter:{n}"),
                format!("pop:0:{n}"),
                format!("session:{n:016x}"),
                format!("cache:obj:{n}"),
                format!("{{user{n}}}.following"),
            ] {
                assert_paths(key.as_bytes());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        #[test]
        fn any_bytes(key in vec(any::<u8>(), 0..100)) {
            assert_paths(&key);
        }

        #[test]
        fn bytes_with_braces(key in vec(prop::sample::select(&b"{}ab\x00\xff"[..]), 0..100)) {
            assert_paths(&key);
        }

        #[test]
        fn a_tag_somewhere(pre in vec(any::<u8>(), 0..40), tag in vec(any::<u8>(), 0..40), post in vec(any::<u8>(), 0..40)) {
            let key = [&pre[..], b"{", &tag, b"}", &post].concat();
            assert_paths(&key);
        }
    }

    #[test]
    fn slicing_equals_one_byte_at_a_time() {
        let bytewise =
            |d: &[u8]| d.iter().fold(0u16, |crc, &b| (crc << 8) ^ TABLES[0][((crc >> 8) as u8 ^ b) as usize]);
        let data: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for start in 0..8 {
            for end in start..data.len() {
                assert_eq!(crc16_table(&data[start..end]), bytewise(&data[start..end]), "{start}..{end}");
            }
        }
    }

    #[test]
    fn one_pass_slot_equals_tag_then_crc() {
        let data: Vec<u8> = (0..64u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 0x80).collect();
        for len in 0..data.len() {
            let mut key = data[..len].to_vec();
            assert_eq!(key_slot_portable(&key), crc16_table(&key) & (SLOTS - 1), "len {len}");
            // A `{` (and a `}`) anywhere: the tag rule applies whichever chunk holds them.
            for open in 0..len {
                key[open] = b'{';
                assert_eq!(
                    key_slot_portable(&key),
                    crc16_table(hash_tag(&key)) & (SLOTS - 1),
                    "len {len}, {{ at {open}"
                );
                for close in open + 1..len {
                    let mut k = key.clone();
                    k[close] = b'}';
                    assert_eq!(
                        key_slot_portable(&k),
                        crc16_table(hash_tag(&k)) & (SLOTS - 1),
                        "len {len}, {open}..{close}"
                    );
                    assert_paths(&k);
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
