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
    match clmul::known_level() {
        // SAFETY: the level is `WIDE` only once `clmul::available()` found that this CPU has
        // the features `clmul::key_slot_wide` is compiled for.
        clmul::WIDE => return unsafe { clmul::key_slot_wide(key) },
        // SAFETY: the level is `NARROW` only once `clmul::available()` found that this CPU has
        // PCLMULQDQ and SSSE3, the features `clmul::key_slot` is compiled for.
        clmul::NARROW => return unsafe { clmul::key_slot(key) },
        _ => {}
    }
    key_slot_first(key)
}

/// [`key_slot`] when the carry-less path is not known to be there (yet): on x86-64 the first
/// call (and every call on a CPU without it), elsewhere the portable path, inlined.
#[cfg_attr(target_arch = "x86_64", inline(never))]
#[cfg_attr(not(target_arch = "x86_64"), inline(always))]
fn key_slot_first(key: &[u8]) -> u16 {
    #[cfg(target_arch = "x86_64")]
    if clmul::available() {
        if clmul::known_level() == clmul::WIDE {
            // SAFETY: `clmul::available()` just found the features of the wide path.
            return unsafe { clmul::key_slot_wide(key) };
        }
        // SAFETY: `clmul::available()` just checked that this CPU has PCLMULQDQ and SSSE3, the
        // features `clmul::key_slot` is compiled for.
        return unsafe { clmul::key_slot(key) };
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

/// The carry-less path. The key's bytes are a polynomial M over GF(2) (the first byte's top bit is
/// the highest term) and the CRC is M·x^16 mod P. A key of 8 to 32 bytes (nearly all keys) goes
/// through `crc_8_to_32`, without a branch on its length. Shorter and longer keys: sixteen bytes
/// at a time are folded into a 64-bit R ≡ M (mod P) (every 32-bit word above the low 64 bits is
/// multiplied by x^k mod P for its place k, a product of at most 47 bits, and XORed into R), and
/// one Barrett reduction gives R·x^16 mod P.
#[cfg(target_arch = "x86_64")]
mod clmul {
    use super::{SLOTS, has_open_brace_128, hash_tag, load_short, quotient_low64, xpow_mod};
    use std::arch::x86_64::{
        __m512i, _mm_clmulepi64_si128, _mm_cmpeq_epi8, _mm_cvtsi64_si128, _mm_cvtsi128_si64, _mm_extract_epi16,
        _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8, _mm_shuffle_epi8, _mm_xor_si128,
        _mm256_castsi256_si128, _mm256_extracti128_si256, _mm256_xor_si256, _mm512_castsi512_si256,
        _mm512_clmulepi64_epi128, _mm512_cmpeq_epi8_mask, _mm512_cmple_epu8_mask, _mm512_extracti64x4_epi64,
        _mm512_maskz_loadu_epi8, _mm512_maskz_permutexvar_epi8, _mm512_set_epi64, _mm512_set1_epi8, _mm512_sub_epi8,
        _mm512_xor_si512,
    };
    use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

    const K64: u64 = xpow_mod(64);
    const K96: u64 = xpow_mod(96);
    const K128: u64 = xpow_mod(128);
    const K160: u64 = xpow_mod(160);
    /// floor(x^80 / P) without its top term x^64: the Barrett constant for 64-bit inputs.
    const MU: u64 = quotient_low64(80);
    /// Barrett constants of the 48-bit pieces of a key of up to 48 bytes: piece i weighs
    /// x^(48i), and `PIECE_MU[i]` is floor(x^(64 + 48i) / P) mod x^64 (see `crc_8_to_32`; the
    /// wide path uses all eight).
    const PIECE_MU: [u64; 8] = {
        let mut t = [0u64; 8];
        let mut i = 0;
        while i < 8 {
            t[i] = quotient_low64(64 + 48 * i as u32);
            i += 1;
        }
        t
    };

    /// For each key length n in 8..=32, six byte shuffles: for each of the three registers of
    /// pieces [p0, p1], [p2, p3], [p4, p5] (a 48-bit piece zero-extended in each 64-bit lane), the
    /// pair for the first and the second loaded register (see `crc_8_to_32`). 0x80 gives a zero
    /// byte.
    static SHUFFLES: Aligned = Aligned({
        let mut t = [[[0x80u8; 16]; 6]; 25];
        let mut n = 8;
        while n <= 32 {
            let mut out = 0;
            while out < 3 {
                let mut byte = 0;
                while byte < 16 {
                    // Which byte of M (little-endian: byte b weighs x^(8b)) goes here: byte
                    // `byte % 8` of piece `2 * out + byte / 8`, which holds M's bytes 6i..6i+6.
                    let b = 6 * (2 * out + byte / 8) + byte % 8;
                    if byte % 8 < 6 && b < n {
                        // M's byte b is the key's byte p; the first load that holds it gives it.
                        let p = n - 1 - b;
                        let mut i = 0;
                        loop {
                            let at = if 8 * i < n - 8 { 8 * i } else { n - 8 };
                            if at <= p && p < at + 8 {
                                let s = 8 * i + p - at;
                                t[n - 8][2 * out + s / 16][byte] = (s % 16) as u8;
                                break;
                            }
                            i += 1;
                        }
                    }
                    byte += 1;
                }
                out += 1;
            }
            n += 1;
        }
        t
    });

    /// Cache-line aligned, so that no 16-byte shuffle load straddles two lines.
    #[repr(align(64))]
    struct Aligned([[[u8; 16]; 6]; 25]);

    /// What `available` found: 0 not asked yet, else one of the levels below.
    static AVAILABLE: AtomicU8 = AtomicU8::new(0);
    /// PCLMULQDQ and SSSE3: `key_slot`.
    pub(super) const NARROW: u8 = 1;
    /// Neither: the table path.
    const NONE: u8 = 2;
    /// `NARROW` and AVX-512 F, BW, VBMI and VPCLMULQDQ: `key_slot_wide`.
    pub(super) const WIDE: u8 = 3;

    /// Whether this CPU multiplies carry-less and shuffles bytes: one load and a compare once
    /// known (the standard library's own cache costs a few more instructions and, kept out of
    /// line, saved registers at every key).
    #[inline(always)]
    pub(super) fn available() -> bool {
        match AVAILABLE.load(Relaxed) {
            NARROW | WIDE => true,
            NONE => false,
            _ => detect(),
        }
    }

    /// What `available` found (0 before its first call).
    #[inline(always)]
    pub(super) fn known_level() -> u8 {
        AVAILABLE.load(Relaxed)
    }

    /// True once `available` has found the features (false before the first call).
    #[cfg(test)]
    pub(super) fn known_available() -> bool {
        matches!(known_level(), NARROW | WIDE)
    }

    /// Whether this CPU has the wide path's features too.
    #[cfg(test)]
    pub(super) fn wide_available() -> bool {
        available() && known_level() == WIDE
    }

    #[cold]
    #[inline(never)]
    fn detect() -> bool {
        use std::arch::is_x86_feature_detected as has;
        let yes = has!("pclmulqdq") && has!("ssse3");
        let wide = yes && has!("avx512f") && has!("avx512bw") && has!("avx512vbmi") && has!("vpclmulqdq");
        AVAILABLE.store(
            match (yes, wide) {
                (true, true) => WIDE,
                (true, false) => NARROW,
                _ => NONE,
            },
            Relaxed,
        );
        yes
    }

    /// The low 64 bits of the carry-less product of `a` and `b`.
    #[inline]
    #[target_feature(enable = "pclmulqdq,ssse3")]
    fn mul_lo(a: u64, b: u64) -> u64 {
        _mm_cvtsi128_si64(_mm_clmulepi64_si128(_mm_cvtsi64_si128(a as i64), _mm_cvtsi64_si128(b as i64), 0)) as u64
    }

    /// The high 64 bits of the carry-less product of `a` and `b`.
    #[inline]
    #[target_feature(enable = "pclmulqdq,ssse3")]
    fn mul_hi(a: u64, b: u64) -> u64 {
        use std::arch::x86_64::_mm_unpackhi_epi64;
        let p = _mm_clmulepi64_si128(_mm_cvtsi64_si128(a as i64), _mm_cvtsi64_si128(b as i64), 0);
        _mm_cvtsi128_si64(_mm_unpackhi_epi64(p, p)) as u64
    }

    /// A 64-bit R ≡ `v` (mod P): the two high words of `v` folded into its low 64 bits.
    #[inline]
    #[target_feature(enable = "pclmulqdq,ssse3")]
    fn fold(v: u128) -> u64 {
        (v as u64) ^ mul_lo((v >> 64) as u32 as u64, K64) ^ mul_lo((v >> 96) as u64, K96)
    }

    /// A 64-bit R' ≡ `r`·x^128 + `v` (mod P): the next sixteen bytes after a prefix `r`.
    #[inline]
    #[target_feature(enable = "pclmulqdq,ssse3")]
    fn fold_after(r: u64, v: u128) -> u64 {
        fold(v) ^ mul_lo(r as u32 as u64, K128) ^ mul_lo(r >> 32, K160)
    }

    /// R·x^16 mod P (Barrett): the quotient of R·x^16 by P is R + floor(R·MU / x^64), exact for
    /// any 64-bit R, and the remainder is the low 16 bits of quotient·P, that is of
    /// quotient·(x^12 + x^5 + 1) since R·x^16 and quotient·x^16 have none.
    #[inline]
    #[target_feature(enable = "pclmulqdq,ssse3")]
    fn reduce(r: u64) -> u16 {
        let q = (r ^ mul_hi(r, MU)) as u16;
        q ^ (q << 5) ^ (q << 12)
    }

    /// The CRC of a key of 8 to 32 bytes, or `None` when `BRACE` asks and it has a `{`. No branch
    /// on the length: four 8-byte loads at offsets min(8i, n - 8) cover the key (overlapping when
    /// it is shorter than 32 bytes), and the byte shuffles of `SHUFFLES[n - 8]` cut the key, as
    /// one big-endian number M, into six 48-bit pieces M = Σ p_i·x^(48i), each byte taken once.
    ///
    /// Every piece is reduced on its own, all six at once (one level of products, no chain): the
    /// CRC is M·x^16 mod P = Σ (p_i·x^(48i + 16) mod P). For A = p·x^(48i + 16) the Barrett
    /// quotient floor(A / P) is floor(p·μ_i / x^48) with μ_i = floor(x^(64 + 48i) / P), exact as
    /// p has under 48 bits; its low 16 bits (bits 48..63 of p·μ_i) need only μ_i mod x^64. As A
    /// has no bits below x^16, A mod P is the low 16 bits of quotient·P, that is of
    /// quotient·(x^12 + x^5 + 1), and that is linear: the six quotients are summed first.
    #[inline]
    #[target_feature(enable = "pclmulqdq,ssse3")]
    fn crc_8_to_32<const BRACE: bool>(data: &[u8]) -> Option<u16> {
        let n = data.len();
        debug_assert!((8..=32).contains(&n));
        let word = |i: usize| {
            let at = (8 * i).min(n - 8);
            i64::from_ne_bytes(*data[at..].first_chunk::<8>().expect("at <= n - 8"))
        };
        let x0 = _mm_set_epi64x(word(1), word(0));
        let x1 = _mm_set_epi64x(word(3), word(2));
        if BRACE {
            let brace = _mm_set1_epi8(b'{' as i8);
            if _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x0, brace), _mm_cmpeq_epi8(x1, brace))) != 0 {
                return None;
            }
        }
        let m = &SHUFFLES.0[n - 8];
        let mask = |k: usize| {
            let v = u128::from_le_bytes(m[k]);
            _mm_set_epi64x((v >> 64) as i64, v as i64)
        };
        let quotients = |r: usize| {
            let pieces = _mm_or_si128(_mm_shuffle_epi8(x0, mask(2 * r)), _mm_shuffle_epi8(x1, mask(2 * r + 1)));
            let mu = _mm_set_epi64x(PIECE_MU[2 * r + 1] as i64, PIECE_MU[2 * r] as i64);
            _mm_xor_si128(_mm_clmulepi64_si128(pieces, mu, 0x00), _mm_clmulepi64_si128(pieces, mu, 0x11))
        };
        let sum = _mm_xor_si128(_mm_xor_si128(quotients(0), quotients(1)), quotients(2));
        let q = _mm_extract_epi16::<3>(sum) as u16;
        Some(q ^ (q << 5) ^ (q << 12))
    }

    /// The CRC of `data`, or `None` as soon as a `{` shows when `BRACE` asks for it.
    #[inline]
    #[target_feature(enable = "pclmulqdq,ssse3")]
    fn crc<const BRACE: bool>(data: &[u8]) -> Option<u16> {
        let n = data.len();
        if (8..=32).contains(&n) {
            return crc_8_to_32::<BRACE>(data);
        }
        let Some(first) = data.first_chunk::<16>() else {
            let v = load_short(data);
            return (!(BRACE && has_open_brace_128(v))).then(|| reduce(fold(v)));
        };
        // The first `n % 16` bytes (16 when that is 0) as one right-aligned block, then whole
        // blocks.
        let head = n - (n - 1) / 16 * 16;
        let first = u128::from_be_bytes(*first);
        if BRACE && has_open_brace_128(first) {
            return None;
        }
        let mut r = fold(first >> (8 * (16 - head)));
        for block in data[head..].as_chunks::<16>().0 {
            let v = u128::from_be_bytes(*block);
            if BRACE && has_open_brace_128(v) {
                return None;
            }
            r = fold_after(r, v);
        }
        Some(reduce(r))
    }

    /// [`super::crc16`] on a CPU with PCLMULQDQ and SSSE3.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    pub(super) fn crc16(data: &[u8]) -> u16 {
        crc::<false>(data).unwrap_or_default()
    }

    /// [`super::key_slot`] on a CPU with PCLMULQDQ and SSSE3. Only the common case is inline (a key of 8
    /// to 32 bytes without `{`), so that this function needs no saved registers.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    pub(super) fn key_slot(key: &[u8]) -> u16 {
        if (8..=32).contains(&key.len())
            && let Some(crc) = crc_8_to_32::<true>(key)
        {
            return crc & (SLOTS - 1);
        }
        key_slot_other(key)
    }

    /// Where the wide path puts M's bytes: byte j < 6 of 64-bit lane i gets M's byte 6i + j (its
    /// key byte n - 1 - 6i - j), the lane's top two bytes stay 0 (marked 255, as is a byte past
    /// the key's). A lane is then the 48-bit piece i of `crc_8_to_32`.
    const PIECE_BYTES: [u64; 8] = {
        let mut t = [0u64; 8];
        let mut i = 0;
        while i < 8 {
            let mut lane = [255u8; 8];
            let mut j = 0;
            while j < 6 {
                lane[j] = (6 * i + j) as u8;
                j += 1;
            }
            t[i] = u64::from_le_bytes(lane);
            i += 1;
        }
        t
    };

    /// Eight 64-bit words as one register, the first lowest.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn words(w: [u64; 8]) -> __m512i {
        let w = w.map(|x| x as i64);
        _mm512_set_epi64(w[7], w[6], w[5], w[4], w[3], w[2], w[1], w[0])
    }

    /// [`super::key_slot`] on a CPU with the wide path's features: a key of 1 to 48 bytes
    /// without `{` (every key of the bench file) is `crc_8_to_32`'s sum over up to eight 48-bit
    /// pieces, done at once in one 512-bit register. One masked load reads exactly the key (the
    /// bytes past it are zero and never touched, so a key that ends a mapping does not fault),
    /// one byte permute cuts it into pieces (lane i of `PIECE_BYTES`; a byte past the key is
    /// masked to zero), two carry-less multiplies give each piece's product with its
    /// `PIECE_MU`, and bits 48..63 of the products summed are the quotients' sum.
    #[target_feature(enable = "pclmulqdq,ssse3,avx512f,avx512bw,avx512vbmi,vpclmulqdq")]
    pub(super) fn key_slot_wide(key: &[u8]) -> u16 {
        let n = key.len();
        if (1..=48).contains(&n) {
            // SAFETY: the mask selects the key's `n` bytes, all inside the slice; a masked-out
            // byte is not read (no fault) and comes as 0.
            let x = unsafe { _mm512_maskz_loadu_epi8(u64::MAX >> (64 - n), key.as_ptr().cast()) };
            if _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8(b'{' as i8)) == 0 {
                let last = _mm512_set1_epi8((n - 1) as i8);
                let at = words(PIECE_BYTES);
                let inside = _mm512_cmple_epu8_mask(at, last);
                let pieces = _mm512_maskz_permutexvar_epi8(inside, _mm512_sub_epi8(last, at), x);
                let mu = words(PIECE_MU);
                let prod = _mm512_xor_si512(
                    _mm512_clmulepi64_epi128(pieces, mu, 0x00),
                    _mm512_clmulepi64_epi128(pieces, mu, 0x11),
                );
                let half = _mm256_xor_si256(_mm512_castsi512_si256(prod), _mm512_extracti64x4_epi64::<1>(prod));
                let sum = _mm_xor_si128(_mm256_castsi256_si128(half), _mm256_extracti128_si256::<1>(half));
                let q = _mm_extract_epi16::<3>(sum) as u16;
                return (q ^ (q << 5) ^ (q << 12)) & (SLOTS - 1);
            }
        }
        key_slot_other(key)
    }

    /// The keys the fast path of `key_slot` or `key_slot_wide` leaves: those with a `{`, and
    /// keys shorter than 8 or longer than 32 bytes (wide: empty or longer than 48).
    #[cold]
    #[inline(never)]
    #[target_feature(enable = "pclmulqdq,ssse3")]
    fn key_slot_other(key: &[u8]) -> u16 {
        crc::<true>(key).unwrap_or_else(|| crc16(hash_tag(key))) & (SLOTS - 1)
    }
}

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
