//! Integers as decimal text, the way Redis writes and reads them: written (`format_i64`),
//! counted (`itoa_len`), and recognised as canonical (`is_canonical_i64`, `parse_canonical_i64`:
//! what `string2ll` accepts, so that `"12"` and the integer 12 are one member).

/// Decimal text of `n` written at the end of `buf` (20 bytes hold every u64).
#[inline]
pub fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[pos..]
}

/// Decimal text of `i` written at the end of `buf` (20 bytes hold every i64: a sign and at most
/// 19 digits).
#[inline]
pub fn format_i64(i: i64, buf: &mut [u8; 20]) -> &[u8] {
    let pos = buf.len() - format_u64(i.unsigned_abs(), buf).len();
    if i < 0 {
        buf[pos - 1] = b'-';
        &buf[pos - 1..]
    } else {
        &buf[pos..]
    }
}

/// Length of the decimal text of `i`, counted without writing it.
#[inline]
pub(crate) fn itoa_len(i: i64) -> usize {
    // Powers of ten from 10^0 to 10^19 (the last that fits 64 bits).
    const POW10: [u64; 20] = {
        let mut t = [1u64; 20];
        let mut k = 1;
        while k < 20 {
            t[k] = t[k - 1] * 10;
            k += 1;
        }
        t
    };
    // `| 1` gives 0 its one digit. A number of b bits has floor(b·log10 2) or one more digits
    // (1233 / 4096 is log10 2 from below, close enough for b up to 64): one compare tells.
    let n = i.unsigned_abs() | 1;
    let guess = ((64 - n.leading_zeros() as usize) * 1233) >> 12;
    guess + usize::from(n >= POW10[guess]) + usize::from(i < 0)
}

/// Whether `parse_canonical_i64` accepts `b`, found without parsing: a string longer than 20
/// bytes is turned away here, inline, without its bytes read (most string values are); the
/// others have their digits checked eight at a time, and only a number of 19 digits is compared
/// with the ends of the i64 range (fewer always fit, more never do).
#[inline(always)]
pub fn is_canonical_i64(b: &[u8]) -> bool {
    b.len() <= 20 && is_canonical_short(b)
}

/// `is_canonical_i64` of at most 20 bytes.
#[inline]
fn is_canonical_short(b: &[u8]) -> bool {
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    let n = digits.len();
    // No leading zero, except for "0" itself.
    if n == 0 || n > 19 || (digits[0] == b'0' && b.len() != 1) || !all_digits(digits) {
        return false;
    }
    // Digit strings of the same length compare as their numbers.
    n < 19 || digits <= if neg { &b"9223372036854775808"[..] } else { &b"9223372036854775807"[..] }
}

/// True when every byte of `d` (at most 24 bytes) is an ASCII digit.
#[inline(always)]
fn all_digits(d: &[u8]) -> bool {
    // Every byte in 0x30..=0x39: high nibble 3, and still 3 after adding 6 (no byte carries
    // into the next once every high nibble is 3).
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    let ok = |w: u64| (w & HIGH == THREES) & (w.wrapping_add(0x0606_0606_0606_0606) & HIGH == THREES);
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
    match d.len() {
        // Overlapping whole words: the first and last eight, and the middle eight of up to 24.
        8.. => ok(word(&d[..8])) & ok(word(&d[d.len() - 8..])) & (d.len() <= 16 || ok(word(&d[8..16]))),
        // Shorter: the bytes as a word over a background of digits.
        n => {
            let mut w = [b'0'; 8];
            w[..n].copy_from_slice(d);
            ok(u64::from_le_bytes(w))
        }
    }
}

/// Parses a canonical decimal i64 the way Redis's `string2ll` accepts it (no sign on zero, no
/// leading zeros, no spaces). Used to treat `"12"` and the integer 12 as the same member.
pub fn parse_canonical_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    if b == b"0" {
        return Some(0);
    }
    let (neg, digits) = if b[0] == b'-' { (true, &b[1..]) } else { (false, b) };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    if neg {
        if v <= i64::MAX as u64 + 1 { Some((v as i64).wrapping_neg()) } else { None }
    } else if v <= i64::MAX as u64 {
        Some(v as i64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `is_canonical_i64` says yes exactly where `parse_canonical_i64` parses: around every
    /// length, sign, leading zero, the ends of the i64 range, and non-digits at every place.
    #[test]
    fn is_canonical_i64_as_the_parser() {
        let mut cases: Vec<Vec<u8>> = vec![];
        for s in [
            "0",
            "-0",
            "00",
            "01",
            "-",
            "",
            "1",
            "-1",
            "9",
            "10",
            "-10",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "1000000000000000000",
            "-1000000000000000000",
            "12345678",
            "123456789012345678",
            "1234567890123456789",
            "12345678901234567890",
            "+1",
            " 1",
            "1 ",
            "1a",
            "a1",
            "/",
            ":",
            "-/",
            "-:",
        ] {
            cases.push(s.as_bytes().to_vec());
        }
        for len in 1..=24 {
            let digits: Vec<u8> = (0..len).map(|i| b'1' + (i % 9) as u8).collect();
            cases.push(digits.clone());
            let mut neg = vec![b'-'];
            neg.extend(&digits);
            cases.push(neg);
            for at in 0..len {
                for bad in [b'/', b':', b'0' - 16, b'9' + 16, 0xff, 0, b' ', b'0' + 0x80] {
                    let mut d = digits.clone();
                    d[at] = bad;
                    cases.push(d);
                }
            }
        }
        // And many strings of digits, signs and near-digits, of every length up to 24.
        let mut rng = crate::rng::Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200_000 {
            let x = rng.next_u64();
            let len = (x % 25) as usize;
            let c: Vec<u8> = (0..len)
                .map(|i| {
                    let r = x.rotate_left(i as u32 * 5);
                    if r.is_multiple_of(13) {
                        [b'-', b'/', b':', b'0', b'a'][(r >> 8) as usize % 5]
                    } else {
                        b'0' + (r >> 16) as u8 % 10
                    }
                })
                .collect();
            cases.push(c);
        }
        for c in &cases {
            assert_eq!(is_canonical_i64(c), parse_canonical_i64(c).is_some(), "{:?}", String::from_utf8_lossy(c));
        }
    }

    #[test]
    fn formats_as_the_standard_library() {
        let mut buf = [0u8; 20];
        for i in [0, 1, -1, 9, 10, -10, 12345, i64::MAX, i64::MIN, i64::MIN + 1] {
            assert_eq!(format_i64(i, &mut buf), i.to_string().as_bytes(), "{i}");
        }
        for n in [0, 1, 9, 10, u64::from(u32::MAX), i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(format_u64(n, &mut buf), n.to_string().as_bytes(), "{n}");
        }
    }

    #[test]
    fn itoa_len_matches_format() {
        for i in [
            0,
            1,
            -1,
            9,
            10,
            -10,
            99,
            100,
            12345,
            -99999,
            i64::MAX,
            i64::MIN,
            999_999_999_999_999_999,
            1_000_000_000_000_000_000,
        ] {
            let mut buf = [0u8; 20];
            assert_eq!(itoa_len(i), format_i64(i, &mut buf).len(), "{i}");
        }
        // Every power of ten and two, either side, both signs (where the digit count changes
        // and where the bit length does).
        let mut edges: Vec<i64> = (0..19).map(|k| 10i64.pow(k)).chain((0..63).map(|k| 1i64 << k)).collect();
        edges.extend([i64::MAX, i64::MIN, 0]);
        for e in edges {
            for i in [e.saturating_sub(1), e, e.saturating_add(1)] {
                for i in [i, i.saturating_neg()] {
                    assert_eq!(itoa_len(i), i.to_string().len(), "{i}");
                }
            }
        }
    }
}
