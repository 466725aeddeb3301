//! `report`'s per-key rows as text: CSV with redis-rdb-tools' columns and JSON Lines in our
//! vocabulary. Written straight into a buffer (numbers by hand, constant names copied, the key
//! through export's JSON escaper): a row through `format!` or serde costs several times more,
//! and a big file has millions of rows.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::KeyRow;
use crate::export::json_text::push_bytes;
use crate::export::{push_i64, push_u64};
use crate::time::format_utc_ms;

/// The CSV header line (redis-rdb-tools' columns), with its newline.
pub const CSV_HEADER: &str = "database,type,key,size_in_bytes,encoding,num_elements,len_largest_element,expiry\n";

/// Appends one CSV row (with its newline): raw numbers, the key as [`push_csv_key`] writes
/// it, the expiry as `2026-11-21T06:13:00.123Z` (empty without a TTL).
pub fn push_csv_row(out: &mut Vec<u8>, r: &KeyRow<'_>) {
    push_u64(out, r.db);
    out.push(b',');
    out.extend_from_slice(r.kind.as_str().as_bytes());
    out.push(b',');
    push_csv_key(out, r.key);
    out.push(b',');
    push_u64(out, r.fig.memory);
    out.push(b',');
    out.extend_from_slice(r.fig.encoding.as_str().as_bytes());
    out.push(b',');
    push_u64(out, r.fig.elements);
    out.push(b',');
    push_u64(out, r.fig.largest_element);
    out.push(b',');
    if let Some(ms) = r.expire_at_ms {
        out.extend_from_slice(format_utc_ms(ms).as_bytes());
    }
    out.push(b'\n');
}

/// A key for CSV: its text when it is UTF-8 (and does not itself start with `base64:`), else
/// `base64:` and its bytes in base64; quoted (quotes doubled) when it holds a comma, quote, CR
/// or LF.
pub fn push_csv_key(out: &mut Vec<u8>, k: &[u8]) {
    let encoded;
    let text = match std::str::from_utf8(k) {
        Ok(s) if !s.starts_with("base64:") => k,
        _ => {
            encoded = format!("base64:{}", STANDARD.encode(k));
            encoded.as_bytes()
        }
    };
    if !text.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.extend_from_slice(text);
        return;
    }
    out.push(b'"');
    for &b in text {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Appends one JSON Lines row (with its newline): its fields in name order, `file` only when
/// given (a report of several files).
pub fn push_jsonl_row(out: &mut Vec<u8>, r: &KeyRow<'_>, file: Option<&str>) {
    // The names written as they are: all of them plain lowercase words (see the tests).
    let name = |out: &mut Vec<u8>, s: &str| {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    };
    out.extend_from_slice(b"{\"db\":");
    push_u64(out, r.db);
    out.extend_from_slice(b",\"elements\":");
    push_u64(out, r.fig.elements);
    out.extend_from_slice(b",\"encoding\":");
    name(out, r.fig.encoding.as_str());
    out.extend_from_slice(b",\"expire_at_ms\":");
    match r.expire_at_ms {
        Some(t) => push_i64(out, t),
        None => out.extend_from_slice(b"null"),
    }
    if let Some(f) = file {
        out.extend_from_slice(b",\"file\":");
        push_bytes(out, f.as_bytes());
    }
    out.extend_from_slice(b",\"key\":");
    push_bytes(out, r.key);
    out.extend_from_slice(b",\"largest_element\":");
    push_u64(out, r.fig.largest_element);
    out.extend_from_slice(b",\"memory\":");
    push_u64(out, r.fig.memory);
    out.extend_from_slice(b",\"rdb_encoding\":");
    name(out, r.rdb_encoding);
    out.extend_from_slice(b",\"slot\":");
    push_u64(out, u64::from(r.slot));
    out.extend_from_slice(b",\"type\":");
    name(out, r.kind.as_str());
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::memory::{Encoding, KeyFigures};

    use crate::report::KINDS;

    /// Every on-disk encoding name a key row can carry.
    fn encoding_names() -> Vec<&'static str> {
        use crate::rdb::types::{Flavor, Format, describe};
        let mut v = vec!["unknown"];
        for flavor in [Flavor::Redis, Flavor::Valkey] {
            for version in [1, 9, 11, 12, 13, 80] {
                v.extend((0..=255).filter_map(|t| describe(t, Format { flavor, version }).map(|d| d.1)));
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The row as serde writes it from a `json!` map (keys in name order).
    fn serde_row(r: &KeyRow<'_>, file: Option<&str>) -> Vec<u8> {
        let mut v = serde_json::json!({
            "db": r.db,
            "key": crate::json::bytes(r.key),
            "type": r.kind.as_str(),
            "expire_at_ms": r.expire_at_ms,
            "encoding": r.fig.encoding,
            "rdb_encoding": r.rdb_encoding,
            "memory": r.fig.memory,
            "elements": r.fig.elements,
            "largest_element": r.fig.largest_element,
            "slot": r.slot,
        });
        if let Some(f) = file {
            v["file"] = serde_json::json!(f);
        }
        let mut out = serde_json::to_vec(&v).unwrap();
        out.push(b'\n');
        out
    }

    /// The CSV row as `format!` writes it.
    fn format_row(r: &KeyRow<'_>) -> Vec<u8> {
        let text = match std::str::from_utf8(r.key) {
            Ok(s) if !s.starts_with("base64:") => s.to_owned(),
            _ => format!("base64:{}", STANDARD.encode(r.key)),
        };
        let key =
            if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text };
        format!(
            "{},{},{},{},{},{},{},{}\n",
            r.db,
            r.kind.as_str(),
            key,
            r.fig.memory,
            r.fig.encoding,
            r.fig.elements,
            r.fig.largest_element,
            r.expire_at_ms.map(format_utc_ms).unwrap_or_default()
        )
        .into_bytes()
    }

    fn row<'a>(key: &'a [u8], n: (u64, u64, u64, u64), expire: Option<i64>, i: usize, slot: u16) -> KeyRow<'a> {
        let names = encoding_names();
        KeyRow {
            db: n.0,
            key,
            kind: KINDS[i % KINDS.len()],
            rdb_encoding: names[i % names.len()],
            expire_at_ms: expire,
            slot,
            value_bytes: 0,
            idle_s: None,
            freq: None,
            fig: KeyFigures {
                memory: n.1,
                elements: n.2,
                largest_element: n.3,
                encoding: Encoding::ALL[i % Encoding::ALL.len()],
            },
        }
    }

    /// Every name the rows copy as they are needs no escaping in JSON or quoting in CSV.
    #[test]
    fn names_are_plain_words() {
        let plain = |s: &str| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        };
        assert!(KINDS.iter().all(|k| plain(k.as_str())));
        assert!(Encoding::ALL.iter().all(|e| plain(e.as_str())));
        let names = encoding_names();
        assert!(names.len() > 20, "{names:?}");
        assert!(names.iter().all(|e| plain(e)), "{names:?}");
    }

    proptest! {
        /// Both rows are byte for byte what serde and `format!` write, for any key bytes
        /// (UTF-8 or not, with quotes, commas, control bytes), numbers and TTL.
        #[test]
        fn rows_are_those_of_serde_and_format(
            key in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..40),
                "[a-z:,\"\\\\\n\r\t\u{1}\u{7f}é😀 ]{0,30}".prop_map(String::into_bytes),
                "base64:[a-z]{0,5}".prop_map(String::into_bytes),
            ],
            n in (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
            expire in proptest::option::of(-100_000_000_000_000i64..100_000_000_000_000),
            i in 0usize..1000,
            slot in 0u16..16384,
            file in proptest::option::of("[a-z/\"é]{0,12}"),
        ) {
            let r = row(&key, n, expire, i, slot);
            let mut got = Vec::new();
            push_jsonl_row(&mut got, &r, file.as_deref());
            let want = serde_row(&r, file.as_deref());
            prop_assert_eq!(&got, &want);
            got.clear();
            push_csv_row(&mut got, &r);
            let want = format_row(&r);
            prop_assert_eq!(&got, &want);
        }
    }
}
