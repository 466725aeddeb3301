//! Naming the damage behind a failed verify: a zeroed block (a hole left by a failed copy or a
//! lost disk write) parses as a run of 3-byte records, each an empty key `""` with an empty
//! string value, and then as a resynchronization failure where the zeros end. The verify engine
//! asks `holes_near` for the runs of zeros that lie at its errors, parses again with them cut
//! out (no key, no error inside a hole), and `explain` puts one error per hole in the report.

use crate::error::ErrorKind;
use crate::verify::report::ErrorEntry;

/// Shorter runs of zeros are ordinary content (lengths, small integers, padding).
pub const MIN_HOLE: usize = 512;
/// An error this far before a hole may be the value that runs into it.
const BEFORE: u64 = 1 << 20;
/// An error this far after a hole may be the reader losing its place where the zeros end.
const AFTER: u64 = 64 << 10;
/// A file with more holes than this is not a file with holes: no explanation.
const MAX_HOLES: usize = 100;

/// Runs of at least `min` zero bytes, as `(start, end)` (end exclusive), in file order; at
/// most `limit + 1` of them (the caller can tell "too many").
pub fn zero_runs(data: &[u8], min: usize, limit: usize) -> Vec<(u64, u64)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < data.len() {
        // Skip non-zero bytes, a word at a time where aligned and free of zero bytes.
        if data[i] != 0 {
            i += 1;
            while i + 8 <= data.len() && i % 8 == 0 && !has_zero_byte(&data[i..i + 8]) {
                i += 8;
            }
            continue;
        }
        let start = i;
        while i < data.len() && i % 8 != 0 && data[i] == 0 {
            i += 1;
        }
        while i + 8 <= data.len() && data[i..i + 8] == [0; 8] {
            i += 8;
        }
        while i < data.len() && data[i] == 0 {
            i += 1;
        }
        if i - start >= min {
            runs.push((start as u64, i as u64));
            if runs.len() > limit {
                break;
            }
        }
    }
    runs
}

fn has_zero_byte(w: &[u8]) -> bool {
    let v = u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]));
    v.wrapping_sub(0x0101_0101_0101_0101) & !v & 0x8080_8080_8080_8080 != 0
}

/// The holes (runs of at least `MIN_HOLE` zeros) that an error lies in, shortly after, or up to
/// 1 MiB before (inside the value that runs into the hole). Empty when the file has none, or
/// more than 100 (then zeros are its content, not damage).
pub fn holes_near(data: &[u8], error_offsets: impl Iterator<Item = u64>) -> Vec<(u64, u64)> {
    let offsets: Vec<u64> = error_offsets.collect();
    if offsets.is_empty() {
        return Vec::new();
    }
    let runs = zero_runs(data, MIN_HOLE, MAX_HOLES);
    if runs.len() > MAX_HOLES {
        return Vec::new();
    }
    runs.into_iter().filter(|&(s, e)| offsets.iter().any(|&o| o + BEFORE >= s && o <= e + AFTER)).collect()
}

/// Whether `offset` is strictly inside a hole: a record that starts there was read from zeros.
pub fn inside(holes: &[(u64, u64)], offset: u64) -> bool {
    holes.iter().any(|&(s, e)| s < offset && offset < e)
}

/// One error per hole, at its first byte. The last error before a hole (within 1 MiB, after
/// any earlier hole) is the value the zeros cut into: it is folded into the hole's message.
pub fn explain(errors: &mut Vec<ErrorEntry>, holes: &[(u64, u64)]) {
    let mut prev_end = 0;
    for &(s, e) in holes {
        errors.sort_by_key(|x| x.offset);
        let cut = errors.iter().rposition(|x| {
            x.offset < s && x.offset >= prev_end && x.offset + BEFORE >= s && x.kind != ErrorKind::Checksum
        });
        let mut message = format!(
            "{} zero bytes from offset {s} (up to {e}): a zeroed block, as a failed copy or a lost write leaves; the records that were there are lost",
            e - s
        );
        let mut db = None;
        if let Some(i) = cut {
            let x = errors.remove(i);
            let key = x.key.as_ref().map(|k| format!(", key {}", crate::display::quoted(k))).unwrap_or_default();
            let at_db = x.db.map(|d| format!(", db {d}")).unwrap_or_default();
            message.push_str(&format!("; the record at offset {}{at_db}{key} runs into it: {}", x.offset, x.message));
            db = x.db;
        }
        // First among the errors at its offset (a zeroed header: the hole is the reason).
        let at = errors.partition_point(|x| x.offset < s);
        errors.insert(
            at,
            ErrorEntry { kind: ErrorKind::Corrupt, offset: s, db, key: None, message, file: None, line: None },
        );
        prev_end = e;
    }
}

/// A checksum mismatch with no other error: a zeroed block inside a value changes no
/// structure, only the checksum. Zero runs of 4 KiB or more are named in its message as the
/// likely damage (a value may hold such zeros legitimately, hence "likely").
pub fn hint_checksum(errors: &mut [ErrorEntry], data: &[u8]) {
    let [only] = errors else { return };
    if only.kind != ErrorKind::Checksum {
        return;
    }
    let runs = zero_runs(data, 4096, 3);
    if runs.is_empty() || runs.len() > 3 {
        return;
    }
    let list: Vec<String> =
        runs.iter().map(|(s, e)| format!("{} zero bytes from offset {s} (up to {e})", e - s)).collect();
    only.message.push_str(&format!(
        "; likely damage: {} (a zeroed block inside a value, as a failed copy or a lost write leaves)",
        list.join(", ")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(data: &[u8], min: usize) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let s = i;
            while i < data.len() && data[i] == 0 {
                i += 1;
            }
            if i - s >= min {
                out.push((s as u64, i as u64));
            }
            i = i.max(s + 1);
        }
        out
    }

    #[test]
    fn zero_runs_at_any_alignment() {
        for start in [0usize, 1, 7, 8, 13, 100] {
            for len in [511usize, 512, 513, 4096, 4103] {
                // Background with scattered zero bytes, which may extend a run.
                let mut data: Vec<u8> = (0..10_000u32).map(|i| [0xAA, 0, 0x80, 1, 0, 0, 7][i as usize % 7]).collect();
                data[start..start + len].fill(0);
                assert_eq!(zero_runs(&data, 512, 10), naive(&data, 512), "start {start} len {len}");
                let mut data = vec![0xAAu8; 10_000];
                data[start..start + len].fill(0);
                let want = if len >= 512 { vec![(start as u64, (start + len) as u64)] } else { vec![] };
                assert_eq!(zero_runs(&data, 512, 10), want, "start {start} len {len}");
            }
        }
        let mut data = vec![0u8; 2000];
        data[1000] = 1;
        assert_eq!(zero_runs(&data, 512, 10), vec![(0, 1000), (1001, 2000)]);
        assert_eq!(zero_runs(&data, 512, 0).len(), 1);
    }

    #[test]
    fn holes_near_errors_only() {
        let mut data = vec![1u8; 3 << 20];
        data[2 << 20..(2 << 20) + 4096].fill(0);
        let s = 2u64 << 20;
        assert_eq!(holes_near(&data, [s + 3].into_iter()), vec![(s, s + 4096)]);
        assert_eq!(holes_near(&data, [s - 1000].into_iter()), vec![(s, s + 4096)]);
        assert_eq!(holes_near(&data, [s + 4096 + 100].into_iter()), vec![(s, s + 4096)]);
        assert!(holes_near(&data, [10].into_iter()).is_empty());
        assert!(holes_near(&data, std::iter::empty()).is_empty());
        assert!(inside(&[(10, 20)], 11) && !inside(&[(10, 20)], 10) && !inside(&[(10, 20)], 20));
    }
}
