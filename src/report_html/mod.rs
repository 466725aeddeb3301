//! `report --format html`: one self-contained page. The report's JSON document is embedded in
//! the page and drawn by the page's own script (no network: inline CSS and JS, no fonts or
//! images fetched). Sections: files and totals, per db / type / encoding tables, a zoomable
//! prefix flame graph (icicle) by memory, the TTL histogram, a 16384-slot heat map with the
//! hottest slots and the per-shard view, the top keys.
//!
//! The script records any error it meets in `#js-errors` (and `window.onerror` catches the
//! rest), and sets `data-rendered="ok"` on `<body>` when every section is drawn, so a headless
//! browser's DOM dump tells whether the page rendered.

use std::io::{self, Write};

const PAGE: &str = include_str!("page.html");
const DATA_MARK: &str = "/*REPORT_DATA*/";

/// Writes the page for `report` (the document of `report --json`).
pub fn write(out: &mut dyn Write, report: &serde_json::Value) -> io::Result<()> {
    let json = serde_json::to_string(report).map_err(io::Error::other)?;
    let (head, tail) = PAGE.split_once(DATA_MARK).expect("page.html holds the data mark");
    out.write_all(head.as_bytes())?;
    out.write_all(script_safe(&json).as_bytes())?;
    out.write_all(tail.as_bytes())
}

/// JSON text made safe inside `<script>`: `<` only occurs in JSON strings, where `\u003c` means
/// the same, so no `</script>` or `<!--` can end the element early. U+2028/U+2029 are escaped
/// too (valid in JSON strings, line breaks to older script parsers).
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c").replace('\u{2028}', "\\u2028").replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_cannot_close_the_script() {
        let v = serde_json::json!({ "keys": 1, "top_memory": [{ "key": "</script><script>alert(1)</script>" }] });
        let mut out = Vec::new();
        write(&mut out, &v).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert_eq!(page.matches("</script>").count(), PAGE.matches("</script>").count());
        assert!(page.contains("\\u003c/script>\\u003cscript>alert(1)"));
        // What the script will parse is the same document.
        let start = page.find("type=\"application/json\">").unwrap() + "type=\"application/json\">".len();
        let end = start + page[start..].find("</script>").unwrap();
        let back: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn page_fetches_nothing() {
        let lower = PAGE.to_ascii_lowercase();
        for needle in ["http:", "https:", "//cdn", "<link", " src=", "@import", "url("] {
            assert!(!lower.contains(needle), "page.html holds {needle:?}");
        }
    }
}
