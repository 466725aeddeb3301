//! Human-readable rendering of byte strings for messages (not the JSON vocabulary: see `json`).

/// `"text"` with non-printable bytes as `\xNN`, long strings cut at 200 bytes.
pub fn quoted(bytes: &[u8]) -> String {
    const MAX: usize = 200;
    let mut out = String::with_capacity(bytes.len().min(MAX) + 2);
    out.push('"');
    for &b in bytes.iter().take(MAX) {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    if bytes.len() > MAX {
        out.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    out
}
