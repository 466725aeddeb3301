//! Text to double the way the C library does it, because that is how Redis reads zset scores:
//! type-3 zsets through `sscanf("%lg")` at load (the longest numeric prefix counts; no prefix at
//! all is an error), packed (ziplist / listpack) zsets through `strtod` of at most 127 bytes
//! whenever a score is used (no prefix gives 0).
//!
//! Grammar (C locale): optional white space, optional sign, then a decimal number with optional
//! exponent, a hexadecimal number (`0x`, hex digits, optional binary exponent `p`), `inf` /
//! `infinity`, or `nan` (strtod also takes `nan(chars)`). Case does not matter.

/// How the number is read: `Scanf` is glibc's `sscanf("%lg")`, which differs from `strtod` in
/// three corners: a bare `0x` is no number (strtod reads the `0`), `inf` followed by an `i` must
/// spell out `infinity` (strtod reads `inf`), and `nan(...)` stops after `nan` (same value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As `sscanf("%lg")` reads type-3 scores at load.
    Scanf,
    /// As `strtod` reads scores packed in ziplists and listpacks.
    Strtod,
}

/// C `isspace` in the "C" locale: space, `\t`, `\n`, vertical tab, form feed, `\r`.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What C's number parsers (`strtod`, `strtoll`, `atoll`) skip before the digits: white space
/// (`isspace`), then one sign. Returns the index after them and whether the sign was `-`.
pub fn space_and_sign(b: &[u8]) -> (usize, bool) {
    let mut i = 0;
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    match b.get(i) {
        Some(b'-') => (i + 1, true),
        Some(b'+') => (i + 1, false),
        _ => (i, false),
    }
}

/// The value of the longest numeric prefix of `b` and the bytes it took (white space included),
/// or `None` when there is no number at all.
pub fn parse_prefix(b: &[u8], mode: Mode) -> Option<(f64, usize)> {
    let (i, neg) = space_and_sign(b);
    let sign = |v: f64| if neg { -v } else { v };
    let rest = &b[i..];
    let lower_starts = |s: &[u8], word: &[u8]| s.len() >= word.len() && s[..word.len()].eq_ignore_ascii_case(word);
    if lower_starts(rest, b"inf") {
        let mut n = 3;
        if lower_starts(rest, b"infinity") {
            n = 8;
        } else if mode == Mode::Scanf && rest.get(3).is_some_and(|c| c.eq_ignore_ascii_case(&b'i')) {
            return None;
        }
        return Some((sign(f64::INFINITY), i + n));
    }
    if lower_starts(rest, b"nan") {
        let mut n = 3;
        if mode == Mode::Strtod && rest.get(3) == Some(&b'(') {
            let close = rest[4..].iter().position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'));
            if let Some(k) = close
                && rest[4 + k] == b')'
            {
                n = 4 + k + 1;
            }
        }
        return Some((f64::NAN, i + n));
    }
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] == b'x' || rest[1] == b'X') {
        match hex(&rest[2..]) {
            Some((v, n)) => return Some((sign(v), i + 2 + n)),
            // strtod reads the "0" of a bare "0x"; scanf has consumed "0x" and fails.
            None if mode == Mode::Strtod => return Some((sign(0.0), i + 1)),
            None => return None,
        }
    }
    let (text, n) = decimal(rest)?;
    // The decimal subset of Rust's float syntax is the C one, and Rust rounds correctly too.
    let v: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    Some((sign(v), i + n))
}

/// `parse_prefix` for a whole string: the value, and whether the text was anything but a plain
/// number (trailing bytes, white space, hexadecimal, `nan`...).
pub fn parse(b: &[u8], mode: Mode) -> Option<(f64, bool)> {
    let (v, n) = parse_prefix(b, mode)?;
    Some((v, n != b.len() || !plain(b)))
}

/// An integer or decimal text such as Redis writes (`-12`, `1.5`, `2e-3`, `inf`, `-inf`).
pub fn plain(b: &[u8]) -> bool {
    if matches!(b, b"inf" | b"-inf" | b"+inf") {
        return true;
    }
    let body = b.strip_prefix(b"-").unwrap_or(b);
    matches!(decimal(body), Some((_, n)) if n == body.len())
}

/// The longest decimal number at the start of `b` (no sign): digits, an optional fraction, an
/// optional exponent that has at least one digit. Returns it and its length.
fn decimal(b: &[u8]) -> Option<(&[u8], usize)> {
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - s
    };
    let mut i = 0;
    let mut n = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        let mut j = i + 1;
        let f = digits(&mut j);
        if n + f > 0 {
            n += f;
            i = j;
        }
    }
    if n == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
            j += 1;
        }
        if digits(&mut j) > 0 {
            i = j;
        }
    }
    Some((&b[..i], i))
}

/// A hexadecimal float after its `0x`: digits, optional fraction, optional `p` exponent.
/// Returns the value and the bytes taken, or `None` without a single hex digit.
fn hex(b: &[u8]) -> Option<(f64, usize)> {
    // The first 15 significant digits (60 bits) are kept exactly; further non-zero digits only
    // set the lowest bit, which is enough to round the 53-bit result the same way.
    let mut mant: u64 = 0;
    let mut kept = 0;
    let mut exp: i64 = 0;
    let mut any = false;
    let mut sticky = false;
    let mut i = 0;
    let mut seen_point = false;
    while i < b.len() {
        let c = b[i];
        if c == b'.' && !seen_point {
            seen_point = true;
            i += 1;
            continue;
        }
        let Some(d) = (c as char).to_digit(16) else { break };
        any = true;
        if mant == 0 && d == 0 {
            if seen_point {
                exp -= 4;
            }
        } else if kept < 15 {
            mant = mant << 4 | d as u64;
            kept += 1;
            if seen_point {
                exp -= 4;
            }
        } else {
            sticky |= d != 0;
            if !seen_point {
                exp += 4;
            }
        }
        i += 1;
    }
    if !any {
        return None;
    }
    if i < b.len() && (b[i] == b'p' || b[i] == b'P') {
        let mut j = i + 1;
        let neg = match b.get(j) {
            Some(b'-') => {
                j += 1;
                true
            }
            Some(b'+') => {
                j += 1;
                false
            }
            _ => false,
        };
        let start = j;
        let mut e: i64 = 0;
        while j < b.len() && b[j].is_ascii_digit() {
            e = (e * 10 + (b[j] - b'0') as i64).min(1 << 40);
            j += 1;
        }
        if j > start {
            exp += if neg { -e } else { e };
            i = j;
        }
    }
    if mant == 0 {
        return Some((0.0, i));
    }
    let m = (mant << 1 | sticky as u64) as f64;
    Some((scale2(m, exp - 1), i))
}

/// `m * 2^e` without intermediate overflow or underflow for the exponents a text can reach.
fn scale2(mut m: f64, mut e: i64) -> f64 {
    while e > 1000 {
        m *= 2f64.powi(1000);
        e -= 1000;
        if m.is_infinite() {
            return m;
        }
    }
    while e < -1000 {
        m *= 2f64.powi(-1000);
        e += 1000;
        if m == 0.0 {
            return m;
        }
    }
    m * 2f64.powi(e as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanf(s: &str) -> Option<f64> {
        parse_prefix(s.as_bytes(), Mode::Scanf).map(|x| x.0)
    }
    fn strtod(s: &str) -> Option<(f64, usize)> {
        parse_prefix(s.as_bytes(), Mode::Strtod)
    }

    #[test]
    fn longest_prefix() {
        assert_eq!(scanf("1234567b9"), Some(1234567.0));
        assert_eq!(scanf("3.850 0001"), Some(3.85));
        assert_eq!(scanf(" \t7"), Some(7.0));
        assert_eq!(scanf("1e"), Some(1.0));
        assert_eq!(scanf("1e+"), Some(1.0));
        assert_eq!(scanf("-2.5e3x"), Some(-2500.0));
        assert_eq!(scanf(".5"), Some(0.5));
        assert_eq!(scanf("5."), Some(5.0));
        assert_eq!(scanf("1e400"), Some(f64::INFINITY));
        assert_eq!(scanf("-0"), Some(-0.0));
        assert_eq!(scanf("0x10"), Some(16.0));
        assert_eq!(scanf("-0x1.8p1"), Some(-3.0));
        assert_eq!(scanf("0x.8"), Some(0.5));
        assert_eq!(scanf("inf"), Some(f64::INFINITY));
        assert_eq!(scanf("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(scanf("nan").unwrap().is_nan());
        assert!(scanf("-nan(1)").unwrap().is_nan());
    }

    #[test]
    fn no_number() {
        for s in ["", " ", "abc", ".", "-", "+.e1", "e5", "0x", "0xz", "infin", "in", "na"] {
            assert_eq!(scanf(s), None, "{s:?}");
        }
        // strtod reads the 0 of "0x" and "inf" of "infin"; garbage is no conversion.
        assert_eq!(strtod("0xz"), Some((0.0, 1)));
        assert_eq!(strtod("infin"), Some((f64::INFINITY, 3)));
        assert_eq!(strtod("abc"), None);
        assert_eq!(strtod("nan(x_1)").map(|x| x.1), Some(8));
    }

    #[test]
    fn hex_rounding() {
        // 2^53 + 1 rounds to even (2^53); with a non-zero digit beyond the kept ones it rounds up.
        assert_eq!(scanf("0x20000000000001"), Some(9007199254740992.0));
        assert_eq!(scanf("0x200000000000010000001"), Some(((1u128 << 81) + (1u128 << 29)) as f64));
        assert_eq!(scanf("0x1p-1074"), Some(f64::from_bits(1)));
        assert_eq!(scanf("0x1p1024"), Some(f64::INFINITY));
        assert_eq!(scanf("0x0.0001p16"), Some(1.0));
    }

    #[test]
    fn plain_texts() {
        for s in ["1", "-1", "1.5", "2e-3", "inf", "-inf", "123456789012345678901234567890"] {
            assert!(plain(s.as_bytes()), "{s}");
        }
        for s in ["", " 1", "1 ", "0x1", "nan", "1e", "+1", "1,5", "--1"] {
            assert!(!plain(s.as_bytes()), "{s}");
        }
        assert_eq!(parse(b"1234567b9", Mode::Scanf), Some((1234567.0, true)));
        assert_eq!(parse(b"12", Mode::Scanf), Some((12.0, false)));
    }
}
