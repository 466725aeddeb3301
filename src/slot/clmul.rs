//! The carry-less paths of `key_slot` on x86-64: narrow (PCLMULQDQ and SSSE3, 128-bit
//! registers) and wide (AVX-512 and VPCLMULQDQ, `key_slot_wide`), chosen once at run time.
//!
//! The key's bytes are a polynomial M over GF(2) (the first byte's top bit is
//! the highest term) and the CRC is M·x^16 mod P. A key of 8 to 32 bytes (nearly all keys) goes
//! through `crc_8_to_32`, without a branch on its length. Shorter and longer keys: sixteen bytes
//! at a time are folded into a 64-bit R ≡ M (mod P) (every 32-bit word above the low 64 bits is
//! multiplied by x^k mod P for its place k, a product of at most 47 bits, and XORed into R), and
//! one Barrett reduction gives R·x^16 mod P.

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
