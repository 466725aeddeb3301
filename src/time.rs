//! Times given on the command line, one syntax for every flag that takes one (`aof cut --to`,
//! `aof find --from`, `verify --now`, ...), and the UTC form we print.
//!
//! Accepted: unix seconds (`1795240763`), milliseconds with a unit (`1795240763123ms`), RFC 3339
//! (`2026-11-21T06:13:00Z`, `2026-11-21T08:13:00+02:00`), and a wall-clock time without a zone
//! (`2026-11-21 06:13:00` or `2026-11-21T06:13`), read in the zone of `--tz` (default UTC).
//! A bare number too large for plausible unix seconds is refused with a note on units, never
//! read as a date thousands of years away: a point-in-time restore to "year 58878" would keep
//! everything, the accident included.

/// Unix seconds beyond this (year 5138) are not a plausible time: most likely milliseconds.
const MAX_PLAUSIBLE_SECONDS: i64 = 99_999_999_999;

/// A fixed offset from UTC, in seconds (`--tz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tz(pub i64);

/// `UTC`, `Z`, or `+HH:MM` / `-HH:MM` (also `+HHMM`, `+HH`).
pub fn parse_tz(s: &str) -> Result<Tz, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("gmt") {
        return Ok(Tz(0));
    }
    let bad = || format!("{s:?}: not a time zone offset (UTC, +02:00, -0530; zone names are not supported)");
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|&c| c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return Err(bad());
    }
    let h: i64 = digits[..2].parse().map_err(|_| bad())?;
    let m: i64 = if digits.len() == 4 { digits[2..].parse().map_err(|_| bad())? } else { 0 };
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(Tz(sign * (h * 3600 + m * 60)))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-11-21T06:13:00Z` for unix seconds.
pub fn format_utc(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86400), t.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `2026-11-21T06:13:00.123Z` for unix milliseconds.
pub fn format_utc_ms(ms: i64) -> String {
    let s = format_utc(ms.div_euclid(1000));
    format!("{}.{:03}Z", s.trim_end_matches('Z'), ms.rem_euclid(1000))
}

/// Unix milliseconds of a time in any of the accepted forms; a form without a zone is read in
/// `tz`.
pub fn parse_time_ms(s: &str, tz: Tz) -> Result<i64, String> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms")
        && !ms.is_empty()
        && ms.bytes().all(|b| b.is_ascii_digit())
    {
        return ms.parse().map_err(|_| format!("{s}: too large for unix milliseconds"));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = s.parse().map_err(|_| format!("{s}: too large for unix seconds"))?;
        if secs > MAX_PLAUSIBLE_SECONDS {
            return Err(format!(
                "{s}: read as unix seconds that is the year {}: not a plausible time; for milliseconds write {s}ms, or give RFC 3339 (2026-11-21T06:13:00Z)",
                civil_from_days(secs / 86400).0
            ));
        }
        return Ok(secs * 1000);
    }
    let bad = || {
        format!(
            "{s:?}: not a time: give unix seconds (1795240763), milliseconds (1795240763000ms), RFC 3339 (2026-11-21T06:13:00Z) or 'YYYY-MM-DD HH:MM[:SS]' (in --tz, default UTC)"
        )
    };
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = b.get(r).ok_or_else(bad)?;
        if part.iter().all(|c| c.is_ascii_digit()) {
            Ok(part.iter().fold(0i64, |a, &c| a * 10 + (c - b'0') as i64))
        } else {
            Err(bad())
        }
    };
    if b.len() < 16 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return Err(bad());
    }
    let (y, mo, d, h, mi) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?);
    let mut i = 16;
    let mut sec = 0;
    let mut frac_ms = 0;
    if b.get(i) == Some(&b':') {
        sec = num(17..19)?;
        i = 19;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return Err(bad());
            }
            let ms: String = s[i..i + digits.min(3)].chars().chain("00".chars()).take(3).collect();
            frac_ms = ms.parse::<i64>().map_err(|_| bad())?;
            i += digits;
        }
    }
    let offset = match b.get(i..) {
        Some([]) => tz.0,
        Some(b"Z" | b"z") => 0,
        Some([b'+' | b'-', rest @ ..]) if rest.len() == 5 && rest[2] == b':' => parse_tz(&s[i..])?.0,
        _ => return Err(bad()),
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let mdays = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > mdays[mo as usize - 1] || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    Ok((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset) * 1000 + frac_ms)
}

/// Unix seconds (rounded down) of a time in any of the accepted forms.
pub fn parse_time_s(s: &str, tz: Tz) -> Result<i64, String> {
    parse_time_ms(s, tz).map(|ms| ms.div_euclid(1000))
}

/// The zone of the global `--tz` flag, set once by the binary before the command line is parsed
/// (the time flags are parsed while clap reads them, possibly before `--tz`).
static CLI_TZ: std::sync::OnceLock<Tz> = std::sync::OnceLock::new();

/// Sets the zone that zoneless times on the command line are read in (once; default UTC).
pub fn set_cli_tz(tz: Tz) {
    let _ = CLI_TZ.set(tz);
}

/// clap value parser of a time flag that wants milliseconds (`--now`).
pub fn cli_time_ms(s: &str) -> Result<i64, String> {
    parse_time_ms(s, CLI_TZ.get().copied().unwrap_or_default())
}

/// clap value parser of a time flag that wants seconds (`aof cut --to`: annotations are seconds).
pub fn cli_time_s(s: &str) -> Result<i64, String> {
    parse_time_s(s, CLI_TZ.get().copied().unwrap_or_default())
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: Tz = Tz(0);

    #[test]
    fn round_trips_and_forms() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1795240763), "2026-11-21T05:59:23Z");
        assert_eq!(format_utc(951782400), "2000-02-29T00:00:00Z");
        for t in [0, 1, 86399, 951782400, 1795240763, 4102444800, 253402300799] {
            assert_eq!(parse_time_s(&format_utc(t), UTC), Ok(t));
        }
        assert_eq!(parse_time_s("1795240763", UTC), Ok(1795240763));
        assert_eq!(parse_time_ms("1795240763123ms", UTC), Ok(1795240763123));
        assert_eq!(parse_time_ms("2026-11-21T07:59:23.999+02:00", UTC), Ok(1795240763999));
        assert_eq!(parse_time_s("2026-11-21 00:59:23-05:00", UTC), Ok(1795240763));
        // Without a zone: --tz.
        assert_eq!(parse_time_s("2026-11-21 05:59:23", UTC), Ok(1795240763));
        assert_eq!(parse_time_s("2026-11-21 07:59:23", parse_tz("+02:00").unwrap()), Ok(1795240763));
        assert_eq!(parse_time_s("2026-11-21T05:59", UTC), Ok(1795240740));
        for bad in ["", "yesterday", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "-5", "12ms3", "ms"] {
            assert!(parse_time_ms(bad, UTC).is_err(), "{bad}");
        }
    }

    #[test]
    fn milliseconds_without_a_unit_are_refused() {
        let e = parse_time_ms("1795850604000", UTC).unwrap_err();
        assert!(e.contains("1795850604000ms") && e.contains("year 58878"), "{e}");
        assert_eq!(parse_time_ms("99999999999", UTC), Ok(99_999_999_999_000));
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_a_time_or_an_error(s in "[0-9TZ:+ .\\-ms\\PC]{0,40}") {
            let _ = parse_time_ms(&s, UTC);
            let _ = parse_tz(&s);
        }
    }

    #[test]
    fn zones() {
        assert_eq!(parse_tz("UTC"), Ok(Tz(0)));
        assert_eq!(parse_tz("+02:00"), Ok(Tz(7200)));
        assert_eq!(parse_tz("-0530"), Ok(Tz(-19800)));
        assert_eq!(parse_tz("+09"), Ok(Tz(32400)));
        assert!(parse_tz("Europe/Paris").is_err());
    }
}
