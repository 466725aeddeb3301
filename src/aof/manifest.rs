//! The AOF manifest (Redis >= 7.0): read with the server's own rules (`aofLoadManifestFromFile`),
//! written the way the server writes it (`aofInfoFormat`).
//!
//! The reader follows Redis byte for byte where it matters for "would the server start": lines are
//! read in `fgets` chunks of at most 1024 bytes, `#` comments are skipped before anything else is
//! checked, tokens are split like `sdssplitargs` (double quotes with escapes, single quotes), keys
//! are case-insensitive, unknown keys are ignored by the server (kept here, so that a rewritten
//! manifest keeps Redis 8's `startoffset` / `endoffset`), `seq` is read like `atoll` and only the
//! first character of `type` counts.

use std::fmt;

use serde::Serialize;

/// `fgets` reads at most this many bytes of a line (the buffer is one byte larger, for the NUL).
pub const MAX_LINE: usize = 1024;

/// The `type` of a manifest line (docs/format.md §11.2, §11.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileType {
    /// `b`: the snapshot the INCR files apply to (at most one).
    Base,
    /// `h`: a previous BASE or INCR; never loaded, deleted by the server unless `aof-disable-auto-gc`.
    History,
    /// `i`: the commands since the BASE, loaded in manifest order.
    Incr,
}

impl FileType {
    /// The type a `type` value's first character names (`b`, `h`, `i`, lowercase only, as in
    /// Redis); `None` for any other byte.
    pub fn from_byte(b: u8) -> Option<FileType> {
        match b {
            b'b' => Some(FileType::Base),
            b'h' => Some(FileType::History),
            b'i' => Some(FileType::Incr),
            _ => None,
        }
    }
    /// The character Redis writes for this type.
    pub fn as_byte(self) -> u8 {
        match self {
            FileType::Base => b'b',
            FileType::History => b'h',
            FileType::Incr => b'i',
        }
    }
    /// The type's name in rdbtool's output (`base`, `history`, `incr`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Base => "base",
            FileType::History => "history",
            FileType::Incr => "incr",
        }
    }
}

/// One `file ... seq ... type ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// The file name (Redis cuts it at a NUL byte, as `sdsnew` does).
    pub name: Vec<u8>,
    /// The sequence number (non-zero; base and incr files count separately).
    pub seq: i64,
    /// Base, history or incr.
    pub kind: FileType,
    /// The other key/value pairs of the line in their order, as read (`startoffset`, `endoffset`,
    /// and whatever later servers add).
    pub extra: Vec<(Vec<u8>, Vec<u8>)>,
    /// 1-based line number in the manifest it was read from; 0 when made in memory.
    pub line: usize,
}

impl ManifestEntry {
    /// An entry made in memory: no extra pairs, line 0.
    pub fn new(name: impl Into<Vec<u8>>, seq: i64, kind: FileType) -> ManifestEntry {
        ManifestEntry { name: name.into(), seq, kind, extra: Vec::new(), line: 0 }
    }

    /// The name for messages and paths (lossy when not UTF-8).
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// The value of an extra key (case-insensitive; the last one wins, as in Redis).
    pub fn extra_value(&self, key: &str) -> Option<&[u8]> {
        self.extra.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(key.as_bytes())).map(|(_, v)| v.as_slice())
    }

    /// Redis 8's replication offset when this INCR file was opened (`atoll`, as the server reads it).
    pub fn start_offset(&self) -> Option<i64> {
        self.extra_value("startoffset").map(atoll)
    }

    /// Redis 8's replication offset when this INCR file was closed cleanly.
    pub fn end_offset(&self) -> Option<i64> {
        self.extra_value("endoffset").map(atoll)
    }

    /// Drops every extra pair with this key (case-insensitive).
    pub fn remove_extra(&mut self, key: &str) {
        self.extra.retain(|(k, _)| !k.eq_ignore_ascii_case(key.as_bytes()));
    }

    /// The line as Redis writes it (without the newline); extra pairs follow `type`.
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.name.len() + 32);
        out.extend_from_slice(b"file ");
        push_token(&mut out, &self.name);
        out.extend_from_slice(format!(" seq {} type ", self.seq).as_bytes());
        out.push(self.kind.as_byte());
        for (k, v) in &self.extra {
            out.push(b' ');
            push_token(&mut out, k);
            out.push(b' ');
            push_token(&mut out, v);
        }
        out
    }
}

/// A parsed manifest: its entries in file order.
///
/// ```
/// use rdbtool::aof::{FileType, Manifest};
///
/// let m = Manifest::parse(b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n")
///     .unwrap();
/// assert_eq!(m.base().unwrap().name, b"appendonly.aof.1.base.rdb");
/// assert_eq!(m.incrs().map(|e| e.kind).collect::<Vec<_>>(), [FileType::Incr]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The `file` lines, in file order (comments are not kept).
    pub entries: Vec<ManifestEntry>,
}

/// Why the server would refuse the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// 1-based line number as Redis counts it (comment lines and `fgets` chunks included); 0 for
    /// an empty manifest.
    pub line: usize,
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// What is wrong, in words close to the server's log line.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {} (offset {}): {}", self.line, self.offset, self.message)
        }
    }
}

impl std::error::Error for ManifestError {}

impl ManifestError {
    /// As the crate's error (kind `corrupt`, at the line's offset; the message names the line).
    pub fn to_error(&self) -> crate::Error {
        let msg = if self.line == 0 { self.message.clone() } else { format!("line {}: {}", self.line, self.message) };
        crate::Error::corrupt(self.offset, msg)
    }
}

impl Manifest {
    /// Parses a manifest with the rules of Redis's loader; the first error is what Redis would
    /// log before refusing to start.
    pub fn parse(data: &[u8]) -> Result<Manifest, ManifestError> {
        if data.is_empty() {
            return Err(ManifestError { line: 0, offset: 0, message: "Found an empty AOF manifest".into() });
        }
        let mut entries: Vec<ManifestEntry> = Vec::new();
        let mut have_base = false;
        let mut max_incr_seq = 0i64;
        let mut pos = 0usize;
        let mut linenum = 0usize;
        while pos < data.len() {
            let start = pos;
            let window = &data[pos..(pos + MAX_LINE).min(data.len())];
            let chunk = match window.iter().position(|&b| b == b'\n') {
                Some(i) => &window[..=i],
                None => window,
            };
            pos += chunk.len();
            linenum += 1;
            let err = |message: String| ManifestError { line: linenum, offset: start as u64, message };
            if chunk[0] == b'#' {
                continue;
            }
            // Redis works on the C string: everything after a NUL byte is invisible to it.
            let nul = chunk.iter().position(|&b| b == 0);
            let visible = &chunk[..nul.unwrap_or(chunk.len())];
            if visible.last() != Some(&b'\n') {
                let why = if nul.is_some() {
                    "a NUL byte before the end of the line (Redis: \"The AOF manifest file contains too long line\")"
                        .to_owned()
                } else if chunk.len() == MAX_LINE {
                    format!(
                        "line longer than {} bytes (Redis: \"The AOF manifest file contains too long line\")",
                        MAX_LINE - 1
                    )
                } else {
                    "the last line does not end with a newline (Redis: \"The AOF manifest file contains too long line\")"
                        .to_owned()
                };
                return Err(err(why));
            }
            let line = trim(visible);
            if line.is_empty() {
                return Err(err("blank line (Redis: \"Invalid AOF manifest file format\")".into()));
            }
            let Some(argv) = crate::rdb::splitargs::split_args(line) else {
                return Err(err(
                    "unbalanced quotes, or a closing quote not followed by a space (Redis: \"Invalid AOF manifest file format\")"
                        .into(),
                ));
            };
            if argv.len() < 6 || argv.len() % 2 != 0 {
                return Err(err(format!(
                    "{} tokens; a line needs key/value pairs, at least file, seq and type (Redis: \"Invalid AOF manifest file format\")",
                    argv.len()
                )));
            }
            let mut name: Option<Vec<u8>> = None;
            let mut seq = 0i64;
            let mut type_byte = 0u8;
            let mut extra = Vec::new();
            for pair in argv.chunks_exact(2) {
                let (k, v) = (&pair[0], &pair[1]);
                if k.eq_ignore_ascii_case(b"file") {
                    let n = &v[..v.iter().position(|&b| b == 0).unwrap_or(v.len())];
                    if n.contains(&b'/') || n.contains(&b'\\') {
                        return Err(err(format!(
                            "file {} is a path (Redis: \"File can't be a path, just a filename\")",
                            crate::display::quoted(n)
                        )));
                    }
                    name = Some(n.to_vec());
                } else if k.eq_ignore_ascii_case(b"seq") {
                    seq = atoll(v);
                } else if k.eq_ignore_ascii_case(b"type") {
                    type_byte = v.first().copied().unwrap_or(0);
                } else {
                    extra.push((k.clone(), v.clone()));
                }
            }
            let (Some(name), true, true) = (name, seq != 0, type_byte != 0) else {
                return Err(err(
                    "file, a non-zero seq and type are all required (Redis: \"Invalid AOF manifest file format\")"
                        .into(),
                ));
            };
            let Some(kind) = FileType::from_byte(type_byte) else {
                return Err(err(format!(
                    "type {} is not b, h or i (Redis: \"Unknown AOF file type\")",
                    crate::display::quoted(&[type_byte])
                )));
            };
            match kind {
                FileType::Base if have_base => {
                    return Err(err("a second base file (Redis: \"Found duplicate base file information\")".into()));
                }
                FileType::Base => have_base = true,
                FileType::Incr if seq <= max_incr_seq => {
                    return Err(err(format!(
                        "incr seq {seq} after seq {max_incr_seq}: incr seqs must increase (Redis: \"Found a non-monotonic sequence number\")"
                    )));
                }
                FileType::Incr => max_incr_seq = seq,
                FileType::History => {}
            }
            entries.push(ManifestEntry { name, seq, kind, extra, line: linenum });
        }
        Ok(Manifest { entries })
    }

    /// The base file's entry; a parsed manifest has at most one.
    pub fn base(&self) -> Option<&ManifestEntry> {
        self.entries.iter().find(|e| e.kind == FileType::Base)
    }
    /// The incr files' entries, in manifest (and load) order.
    pub fn incrs(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.entries.iter().filter(|e| e.kind == FileType::Incr)
    }
    /// The history files' entries, which the server never loads.
    pub fn history(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.entries.iter().filter(|e| e.kind == FileType::History)
    }
    /// The files Redis loads, in order: the base (if any), then the incr files.
    pub fn loaded(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.base().into_iter().chain(self.incrs())
    }

    /// The manifest as Redis writes it: base, then history, then incr lines, each ending in
    /// `\n`. Fails when a line would be too long for Redis to read back, and for a manifest
    /// without a file: its empty text is what Redis refuses as "an empty AOF manifest".
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        if self.entries.is_empty() {
            return Err("the manifest lists no file: Redis refuses an empty AOF manifest".into());
        }
        let mut out = Vec::new();
        let ordered = self
            .base()
            .into_iter()
            .chain(self.history())
            .chain(self.incrs())
            .chain(self.entries.iter().filter(|e| e.kind == FileType::Base).skip(1));
        for e in ordered {
            let line = e.to_line();
            if line.len() + 1 > MAX_LINE {
                return Err(format!(
                    "the manifest line for {} would be {} bytes; Redis reads at most {MAX_LINE}",
                    crate::display::quoted(&e.name),
                    line.len() + 1,
                ));
            }
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
        Ok(out)
    }
}

/// `sdstrim(line, " \t\r\n")`.
fn trim(mut s: &[u8]) -> &[u8] {
    let strip = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    while let [first, rest @ ..] = s {
        if !strip(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !strip(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// C `atoll` (glibc `strtoll` base 10): leading space, a sign, digits; saturates; 0 if none.
pub fn atoll(s: &[u8]) -> i64 {
    let (mut i, neg) = crate::rdb::strtod::space_and_sign(s);
    let mut v: i128 = 0;
    while let Some(d) = s.get(i).filter(|b| b.is_ascii_digit()) {
        v = (v * 10 + (d - b'0') as i128).min(i64::MAX as i128 + 1);
        i += 1;
    }
    let v = if neg { -v } else { v };
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Does the server's writer quote this token (`sdsneedsrepr`)? Also quotes what Redis forgets
/// to: the empty token and a single quote, which its own reader would misread unquoted.
fn needs_quotes(s: &[u8]) -> bool {
    s.is_empty() || s.iter().any(|&b| matches!(b, b'\\' | b'"' | b'\'') || !(0x21..=0x7e).contains(&b))
}

/// Appends `s` as Redis writes a manifest token: bare, or quoted like `sdscatrepr`.
fn push_token(out: &mut Vec<u8>, s: &[u8]) {
    if !needs_quotes(s) {
        out.extend_from_slice(s);
        return;
    }
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {

    use super::*;

    fn err(text: &[u8]) -> ManifestError {
        Manifest::parse(text).expect_err("should be refused")
    }

    #[test]
    fn reads_what_redis_writes() {
        let m = Manifest::parse(
            b"file appendonly.aof.3.base.rdb seq 3 type b\n\
              file appendonly.aof.2.incr.aof seq 2 type h\n\
              file appendonly.aof.3.incr.aof seq 3 type i startoffset 1583 endoffset 1661\n",
        )
        .unwrap();
        assert_eq!(m.entries.len(), 3);
        assert_eq!(m.base().unwrap().name, b"appendonly.aof.3.base.rdb");
        let incr = m.incrs().next().unwrap();
        assert_eq!((incr.seq, incr.line, incr.start_offset(), incr.end_offset()), (3, 3, Some(1583), Some(1661)));
        assert_eq!(m.history().count(), 1);
        assert_eq!(
            m.to_bytes().unwrap(),
            b"file appendonly.aof.3.base.rdb seq 3 type b\n\
              file appendonly.aof.2.incr.aof seq 2 type h\n\
              file appendonly.aof.3.incr.aof seq 3 type i startoffset 1583 endoffset 1661\n"
                .to_vec()
        );
    }

    #[test]
    fn loader_quirks() {
        // Keys are case-insensitive, in any order; only the first byte of type counts; comments
        // are skipped even without a final newline; quoted names with escapes.
        let m = Manifest::parse(b"# c\nSEQ 1 Type incr FILE \"a b\\x41\\n\"\n# no newline").unwrap();
        let e = &m.entries[0];
        assert_eq!((e.name.as_slice(), e.seq, e.kind, e.line), (&b"a bA\n"[..], 1, FileType::Incr, 2));
        assert_eq!(e.to_line(), b"file \"a bA\\n\" seq 1 type i".to_vec());
        // seq is read with atoll.
        assert_eq!(Manifest::parse(b"file a seq 7x type h\n").unwrap().entries[0].seq, 7);
        // A file with only comments is a manifest with no files.
        assert!(Manifest::parse(b"#x\n").unwrap().entries.is_empty());
        // single quotes, and a quote inside a bare token opens a quoted part
        let m = Manifest::parse(b"file 'it\\'s' seq 1 type b\nfile a\"b c\" seq 2 type h\n").unwrap();
        assert_eq!(m.entries[0].name, b"it's");
        assert_eq!(m.entries[1].name, b"ab c");
        assert_eq!(m.entries[0].to_line(), b"file \"it's\" seq 1 type b".to_vec());
    }

    #[test]
    fn refusals_name_the_line() {
        assert_eq!(err(b"").message, "Found an empty AOF manifest");
        let e = err(b"file a seq 1 type b\n\nfile b seq 1 type i\n");
        assert_eq!((e.line, e.offset), (2, 20));
        assert!(e.message.contains("blank line"), "{e}");
        assert!(err(b"file a seq 1 type b").message.contains("does not end with a newline"));
        assert!(err(b"file a seq 1 type b extra\n").message.contains("7 tokens"));
        assert!(err(b"file a seq 1\n").message.contains("4 tokens"));
        assert!(err(b"file a seq 0 type b\n").message.contains("non-zero seq"));
        assert!(err(b"file a seq 1 type \"\"\n").message.contains("non-zero seq and type"));
        assert!(err(b"file a seq 1 type x\n").message.contains("Unknown AOF file type"));
        assert!(err(b"file ../a seq 1 type b\n").message.contains("is a path"));
        assert!(err(b"file \"a\"b seq 1 type b\n").message.contains("unbalanced quotes"));
        assert!(err(b"file \"a seq 1 type b\n").message.contains("unbalanced quotes"));
        let e = err(b"file a seq 1 type b\nfile b seq 2 type b\n");
        assert!(e.message.contains("duplicate base") && e.line == 2, "{e}");
        let e = err(b"file a seq 2 type i\nfile b seq 2 type i\n");
        assert!(e.message.contains("non-monotonic") && e.line == 2, "{e}");
        assert!(err(b"file a seq -1 type i\n").message.contains("non-monotonic"));
        assert!(err(b"file a\0 seq 1 type i\n").message.contains("NUL"));
        let mut long = b"file ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 1100));
        long.extend_from_slice(b" seq 1 type b\n");
        let e = err(&long);
        assert!(e.message.contains("longer than 1023") && e.line == 1, "{e}");
        // A long comment is cut in 1024-byte chunks by fgets: the rest is read as a line.
        let mut comment = b"#".to_vec();
        comment.extend(std::iter::repeat_n(b'c', 1100));
        comment.push(b'\n');
        let e = err(&comment);
        assert_eq!((e.line, e.offset), (2, 1024));
    }

    #[test]
    fn writer_refuses_lines_redis_cannot_read() {
        let m = Manifest { entries: vec![ManifestEntry::new(vec![b'x'; 1010], 1, FileType::Base)] };
        assert!(m.to_bytes().is_err());
        // A manifest of comments only reads as one without files; written, it would be empty,
        // which Redis refuses: writing it is refused instead (found by the aof fuzz target).
        let m = Manifest::parse(b"#").unwrap();
        assert!(m.entries.is_empty());
        assert!(m.to_bytes().is_err());
        assert!(Manifest::parse(b"").is_err());
    }
}
