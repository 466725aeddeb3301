//! The RESP part of one AOF file: commands (`*<argc>` then `$<len>` bulk strings) and `#`
//! annotation lines, read without copying from the file's bytes.
//!
//! Stricter than Redis's loader, like `redis-check-aof`: counts are decimal digits ending in
//! `\r\n`, and every bulk string must be followed by `\r\n` (the loader skips those two bytes
//! unread). The parser follows what the loader does with state: the db (`SELECT`, reset to 0 at
//! the start of every file), the open MULTI, the last `#TS:` annotation, and the offset
//! `aof-load-truncated` would keep when the file ends inside a command or a transaction.

use crate::error::{Error, Result};

/// Redis reads annotation lines into a 1024-byte buffer: with the newline, at most 1023 bytes.
pub const MAX_ANNOTATION_LINE: usize = 1023;
/// Warnings kept per file (the rest are counted).
const MAX_WARNINGS: usize = 20;

/// The commands the parser's state follows; every other command is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// `SELECT db` (any case), changing the db of the commands after it.
    Select,
    /// `MULTI`, opening a transaction.
    Multi,
    /// `EXEC`, closing one.
    Exec,
    /// Any other command.
    Other,
}

/// Where and in which context a command sits; its arguments are in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandMeta {
    /// File offset of the `*`.
    pub offset: u64,
    /// File offset just after the last argument's `\r\n`.
    pub end: u64,
    /// The db the command applies to (for SELECT: the db it selects).
    pub db: u64,
    /// The last `#TS:` annotation before it, Unix seconds (possibly from an earlier file of the
    /// set).
    pub ts: Option<i64>,
    /// Offset of the MULTI of the transaction it belongs to (MULTI and EXEC included).
    pub multi: Option<u64>,
    /// Whether it is SELECT, MULTI, EXEC or another command.
    pub kind: CommandKind,
}

/// One command with its arguments borrowed from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    /// The command name then its arguments, as bulk strings (never empty).
    pub argv: Vec<&'a [u8]>,
    /// Where it sits and in which context.
    pub meta: CommandMeta,
}

impl<'a> Command<'a> {
    /// The command name, as written (any case).
    pub fn name(&self) -> &'a [u8] {
        self.argv[0]
    }
}

/// A `#` line at a record boundary (docs/format.md §11.5), which the loader skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Annotation<'a> {
    /// File offset of the `#`.
    pub offset: u64,
    /// File offset just after the line's `\n`.
    pub end: u64,
    /// The line without `#` and without the line end.
    pub text: &'a [u8],
    /// The value of a well-formed `#TS:<unix seconds>` annotation.
    pub ts: Option<i64>,
}

/// One record of the RESP section, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A command; its arguments were placed in the caller's buffer.
    Command(CommandMeta),
    /// An annotation line.
    Annotation(Annotation<'a>),
}

/// Counts over what was read so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every command, SELECT / MULTI / EXEC included.
    pub commands: u64,
    /// Commands other than SELECT / MULTI / EXEC, per db, in order of first use.
    pub per_db: Vec<(u64, u64)>,
    /// Completed MULTI ... EXEC blocks.
    pub multi_blocks: u64,
    /// Annotation lines, well-formed or not.
    pub annotations: u64,
    /// The first `#TS:` of this file, Unix seconds.
    pub first_ts: Option<i64>,
    /// The last `#TS:` of this file, Unix seconds.
    pub last_ts: Option<i64>,
}

/// A streaming reader of the RESP section of one file (`data` is the whole file; reading starts
/// at `start`, after an RDB preamble when there is one). The first error ends the reading.
pub struct RespParser<'a> {
    data: &'a [u8],
    pos: usize,
    start: usize,
    db: u64,
    ts: Option<i64>,
    multi: Option<u64>,
    valid_up_to: u64,
    valid_before_multi: u64,
    done: bool,
    stats: Stats,
    warnings: Vec<(u64, String)>,
    warnings_not_listed: u64,
}

fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() { format!("'{}' (0x{b:02x})", b as char) } else { format!("0x{b:02x}") }
}

impl<'a> RespParser<'a> {
    /// `ts` is the last timestamp seen before this file (it carries over in a set).
    pub fn new(data: &'a [u8], start: usize, ts: Option<i64>) -> RespParser<'a> {
        let start = start.min(data.len());
        RespParser {
            data,
            pos: start,
            start,
            db: 0,
            ts,
            multi: None,
            valid_up_to: start as u64,
            valid_before_multi: start as u64,
            done: false,
            stats: Stats::default(),
            warnings: Vec::new(),
            warnings_not_listed: 0,
        }
    }

    /// The whole file the parser reads.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
    /// Where the RESP section starts.
    pub fn start(&self) -> u64 {
        self.start as u64
    }
    /// The current read position.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }
    /// Counts over what was read so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// The last timestamp seen (or carried in).
    pub fn ts(&self) -> Option<i64> {
        self.ts
    }
    /// The db selected at the current position (0 at the start of every file).
    pub fn db(&self) -> u64 {
        self.db
    }
    /// Offset of the open MULTI, if inside a transaction.
    pub fn open_multi(&self) -> Option<u64> {
        self.multi
    }
    /// (offset, message) of odd but loadable things: bad SELECT arguments, clock going back,
    /// malformed `#TS:` lines, a partial annotation at the end.
    pub fn warnings(&self) -> &[(u64, String)] {
        &self.warnings
    }
    /// Warnings beyond the first 20, counted but not kept.
    pub fn warnings_not_listed(&self) -> u64 {
        self.warnings_not_listed
    }

    /// What `aof-load-truncated` keeps: the end of the last complete command, or the end of the
    /// last command before an unfinished MULTI (whose transaction Redis drops).
    pub fn ok_up_to(&self) -> u64 {
        if self.multi.is_some() { self.valid_before_multi } else { self.valid_up_to }
    }

    fn warn(&mut self, offset: u64, msg: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push((offset, msg));
        } else {
            self.warnings_not_listed += 1;
        }
    }

    /// Reads the next command (its arguments into `argv`, replacing what was there) or
    /// annotation. `Ok(None)` at the end of the file; after an error, always `Ok(None)`.
    pub fn next_event(&mut self, argv: &mut Vec<&'a [u8]>) -> Result<Option<Event<'a>>> {
        if self.done {
            return Ok(None);
        }
        let r = self.read_event(argv);
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }

    fn read_event(&mut self, argv: &mut Vec<&'a [u8]>) -> Result<Option<Event<'a>>> {
        let data = self.data;
        let Some(&first) = data.get(self.pos) else {
            if let Some(m) = self.multi {
                return Err(Error::truncated(
                    m,
                    format!("the file ends inside the transaction opened by MULTI at offset {m} (no EXEC)"),
                ));
            }
            return Ok(None);
        };
        match first {
            b'#' => self.read_annotation().map(|a| a.map(Event::Annotation)),
            b'*' => self.read_command(argv).map(|m| Some(Event::Command(m))),
            b => Err(Error::corrupt(
                self.pos as u64,
                format!("expected '*' (a command) or '#' (an annotation), found {}", show_byte(b)),
            )),
        }
    }

    fn read_annotation(&mut self) -> Result<Option<Annotation<'a>>> {
        let data = self.data;
        let start = self.pos;
        let window = &data[start..(start + MAX_ANNOTATION_LINE).min(data.len())];
        let Some(nl) = window.iter().position(|&b| b == b'\n') else {
            if start + MAX_ANNOTATION_LINE >= data.len() {
                // Redis reads the partial line, skips it as an annotation and stops at EOF.
                self.warn(
                    start as u64,
                    format!(
                        "the file ends inside an annotation line ({} bytes without a newline; Redis skips it)",
                        data.len() - start
                    ),
                );
                self.pos = data.len();
                return match self.multi {
                    Some(m) => Err(Error::truncated(
                        m,
                        format!("the file ends inside the transaction opened by MULTI at offset {m} (no EXEC)"),
                    )),
                    None => Ok(None),
                };
            }
            return Err(Error::corrupt(
                start as u64,
                format!(
                    "annotation line longer than {} bytes: Redis would read the rest of it as a command",
                    MAX_ANNOTATION_LINE - 1
                ),
            ));
        };
        let line = &window[1..nl];
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        self.pos = start + nl + 1;
        self.stats.annotations += 1;
        let mut ts = None;
        if let Some(digits) = text.strip_prefix(b"TS:") {
            let parsed = std::str::from_utf8(digits)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<i64>().ok());
            match parsed {
                Some(t) => {
                    if let Some(prev) = self.ts.filter(|&p| t < p) {
                        self.warn(
                            start as u64,
                            format!("#TS:{t} goes back from #TS:{prev} (clock stepped back?): a cut at a time in between keeps only what precedes this line"),
                        );
                    }
                    self.ts = Some(t);
                    self.stats.first_ts.get_or_insert(t);
                    self.stats.last_ts = Some(t);
                    ts = Some(t);
                }
                None => self.warn(
                    start as u64,
                    format!("annotation {} is not #TS:<unix seconds>; ignored", crate::display::quoted(line)),
                ),
            }
        }
        Ok(Some(Annotation { offset: start as u64, end: self.pos as u64, text, ts }))
    }

    /// Reads `<prefix><digits>\r\n` at `at`; returns the number and the offset after the line.
    /// Truncation is reported at `record` (the start of the command it belongs to).
    fn read_count(&self, at: usize, record: usize, what: &str) -> Result<(u64, usize)> {
        let data = self.data;
        let mut i = at + 1;
        let mut v: u64 = 0;
        while let Some(&d) = data.get(i).filter(|d| d.is_ascii_digit()) {
            if i - at > 19 {
                return Err(Error::corrupt(at as u64, format!("{what} has more than 19 digits")));
            }
            v = v * 10 + (d - b'0') as u64;
            i += 1;
        }
        let truncated = || Error::truncated(record as u64, format!("the file ends inside the {what} at offset {at}"));
        let Some(&b) = data.get(i) else { return Err(truncated()) };
        if i == at + 1 {
            let msg = if b == b'-' {
                format!("negative {what}")
            } else {
                format!("expected the digits of the {what} after '{}', found {}", data[at] as char, show_byte(b))
            };
            return Err(Error::corrupt(i as u64, msg));
        }
        if b != b'\r' {
            return Err(Error::corrupt(i as u64, format!("expected \\r\\n after the {what}, found {}", show_byte(b))));
        }
        match data.get(i + 1) {
            None => Err(truncated()),
            Some(b'\n') => Ok((v, i + 2)),
            Some(&b) => Err(Error::corrupt(
                (i + 1) as u64,
                format!("expected \\r\\n after the {what}, found \\r then {}", show_byte(b)),
            )),
        }
    }

    fn read_command(&mut self, argv: &mut Vec<&'a [u8]>) -> Result<CommandMeta> {
        let data = self.data;
        let start = self.pos;
        let (argc, mut p) = self.read_count(start, start, "argument count")?;
        if argc == 0 {
            return Err(Error::corrupt(start as u64, "a command with 0 arguments (*0): Redis stops loading here"));
        }
        if argc > i32::MAX as u64 {
            return Err(Error::corrupt(start as u64, format!("{argc} arguments: more than Redis can read (2^31 - 1)")));
        }
        argv.clear();
        for j in 1..=argc {
            let Some(&b) = data.get(p) else {
                return Err(Error::truncated(
                    start as u64,
                    format!("the file ends after {} of the {argc} arguments of the command", j - 1),
                ));
            };
            if b != b'$' {
                return Err(Error::corrupt(
                    p as u64,
                    format!("argument {j} of {argc}: expected '$' (a bulk string), found {}", show_byte(b)),
                ));
            }
            let (len, q) = self.read_count(p, start, "bulk string length")?;
            let left = (data.len() - q) as u64;
            if len > left || left - len < 2 {
                // (`len < left` first: the length is a claim from the file, up to 19 digits.)
                if let Some(&b) = (len < left).then(|| data[q + len as usize]).as_ref().filter(|&&b| b != b'\r') {
                    return Err(Error::corrupt(
                        q as u64 + len,
                        format!(
                            "argument {j} of {argc}: the {len}-byte string is followed by {}, not \\r\\n",
                            show_byte(b)
                        ),
                    ));
                }
                return Err(Error::truncated(
                    start as u64,
                    format!(
                        "the file ends inside argument {j} of {argc} ({len} bytes at offset {q}, {} bytes left)",
                        left.min(len)
                    ),
                ));
            }
            let end = q + len as usize;
            if &data[end..end + 2] != b"\r\n" {
                let bad = if data[end] == b'\r' { end + 1 } else { end };
                return Err(Error::corrupt(
                    bad as u64,
                    format!("argument {j} of {argc}: the {len}-byte string is not followed by \\r\\n"),
                ));
            }
            argv.push(&data[q..end]);
            p = end + 2;
        }
        self.pos = p;
        let name = argv[0];
        let kind = if name.eq_ignore_ascii_case(b"select") {
            CommandKind::Select
        } else if name.eq_ignore_ascii_case(b"multi") {
            CommandKind::Multi
        } else if name.eq_ignore_ascii_case(b"exec") {
            CommandKind::Exec
        } else {
            CommandKind::Other
        };
        let mut multi = self.multi;
        match kind {
            CommandKind::Select => {
                if argv.len() != 2 {
                    return Err(Error::corrupt(
                        start as u64,
                        format!("SELECT with {} arguments (Redis reads exactly one db number)", argv.len() - 1),
                    ));
                }
                let n = std::str::from_utf8(argv[1]).ok().and_then(|s| s.parse::<u64>().ok());
                match n {
                    Some(db) if db <= i32::MAX as u64 => {
                        if db >= 16 && db != self.db {
                            self.warn(
                                start as u64,
                                format!("SELECT {db}: the restoring server needs `databases` > {db} (default 16)"),
                            );
                        }
                        self.db = db;
                    }
                    _ => self.warn(
                        start as u64,
                        format!(
                            "SELECT {}: not a db number (Redis ignores the command; later commands stay in db {})",
                            crate::display::quoted(argv[1]),
                            self.db
                        ),
                    ),
                }
            }
            CommandKind::Multi => {
                if let Some(m) = self.multi {
                    return Err(Error::corrupt(
                        start as u64,
                        format!("MULTI inside the transaction opened at offset {m} (nested MULTI)"),
                    ));
                }
                self.valid_before_multi = self.valid_up_to;
                self.multi = Some(start as u64);
                multi = self.multi;
            }
            CommandKind::Exec => {
                if self.multi.is_none() {
                    return Err(Error::corrupt(start as u64, "EXEC without MULTI"));
                }
                self.multi = None;
                self.stats.multi_blocks += 1;
            }
            CommandKind::Other => match self.stats.per_db.iter_mut().find(|(d, _)| *d == self.db) {
                Some((_, n)) => *n += 1,
                None => self.stats.per_db.push((self.db, 1)),
            },
        }
        self.stats.commands += 1;
        self.valid_up_to = p as u64;
        Ok(CommandMeta { offset: start as u64, end: p as u64, db: self.db, ts: self.ts, multi, kind })
    }
}

/// Commands only (annotations update `ts` and are skipped); allocates one small `Vec` of
/// borrowed slices per command. Use `next_event` to reuse a buffer instead.
impl<'a> Iterator for RespParser<'a> {
    type Item = Result<Command<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut argv = Vec::new();
        loop {
            match self.next_event(&mut argv) {
                Ok(Some(Event::Command(meta))) => return Some(Ok(Command { argv, meta })),
                Ok(Some(Event::Annotation(_))) => continue,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// 1-based line number of `offset` (lines end in `\n`, counted from the file's start).
pub fn line_at(data: &[u8], offset: u64) -> u64 {
    let end = (offset as usize).min(data.len());
    data[..end].iter().filter(|&&b| b == b'\n').count() as u64 + 1
}

/// Appends one command in the AOF's encoding.
pub fn encode_command(out: &mut Vec<u8>, argv: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn cmd(args: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_command(&mut v, &args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
        v
    }

    fn all(data: &[u8]) -> (Vec<Command<'_>>, Option<Error>, u64) {
        let mut p = RespParser::new(data, 0, None);
        let mut out = Vec::new();
        let mut err = None;
        for c in p.by_ref() {
            match c {
                Ok(c) => out.push(c),
                Err(e) => err = Some(e),
            }
        }
        let ok = p.ok_up_to();
        (out, err, ok)
    }

    #[test]
    fn tracks_db_ts_and_multi() {
        let mut f = b"#TS:100\r\n".to_vec();
        f.extend(cmd(&["SELECT", "3"]));
        f.extend(cmd(&["SET", "k", "v"]));
        f.extend_from_slice(b"#TS:101\r\n");
        f.extend(cmd(&["multi"]));
        f.extend(cmd(&["INCR", "n"]));
        f.extend(cmd(&["EXEC"]));
        let (c, err, ok) = all(&f);
        assert!(err.is_none());
        assert_eq!(ok, f.len() as u64);
        assert_eq!(c.len(), 5);
        assert_eq!((c[1].argv.clone(), c[1].meta.db, c[1].meta.ts), (vec![&b"SET"[..], b"k", b"v"], 3, Some(100)));
        assert_eq!(c[3].meta.multi, Some(c[2].meta.offset));
        assert_eq!(c[3].meta.ts, Some(101));
        let mut p = RespParser::new(&f, 0, None);
        p.by_ref().for_each(drop);
        let s = p.stats();
        assert_eq!((s.commands, s.multi_blocks, s.annotations, s.first_ts, s.last_ts), (5, 1, 2, Some(100), Some(101)));
        assert_eq!(s.per_db, vec![(3, 2)]);
    }

    #[test]
    fn truncation_reports_what_redis_keeps() {
        let mut f = cmd(&["SET", "a", "1"]);
        let first = f.len() as u64;
        f.extend(cmd(&["SET", "b", "2"]));
        for cut in first as usize + 1..f.len() {
            let (c, err, ok) = all(&f[..cut]);
            let e = err.expect("truncated");
            assert_eq!((c.len(), e.kind, e.offset, ok), (1, ErrorKind::Truncated, first, first), "cut at {cut}: {e}");
        }
        // An unfinished transaction: Redis drops it, back to before the MULTI.
        let mut t = cmd(&["SET", "a", "1"]);
        t.extend_from_slice(b"#TS:5\r\n");
        let multi_at = t.len() as u64;
        t.extend(cmd(&["MULTI"]));
        t.extend(cmd(&["SET", "b", "2"]));
        let (_, err, ok) = all(&t);
        let e = err.unwrap();
        assert_eq!((e.kind, e.offset, ok), (ErrorKind::Truncated, multi_at, first));
        assert!(e.message.contains("no EXEC"), "{e}");
    }

    #[test]
    fn corruption_is_located() {
        let mut f = cmd(&["SET", "a", "1"]);
        let at = f.len() as u64;
        f.extend_from_slice(b"garbage");
        f.extend(cmd(&["SET", "b", "2"]));
        let (c, err, _) = all(&f);
        let e = err.unwrap();
        assert_eq!((c.len(), e.kind, e.offset), (1, ErrorKind::Corrupt, at));
        assert!(e.message.contains("found 'g'"), "{e}");

        let (_, err, _) = all(b"*1\r\n$3\r\nSETxx");
        assert_eq!(err.unwrap().offset, 11);
        let (_, err, _) = all(b"*1\r\n$-1\r\n");
        assert!(err.unwrap().message.contains("negative"));
        let (_, err, _) = all(b"*0\r\n");
        assert_eq!(err.unwrap().kind, ErrorKind::Corrupt);
        let (_, err, _) = all(b"*1\n$1\r\na\r\n");
        assert_eq!(err.unwrap().offset, 2);
        let (_, err, _) = all(b"*1\r\n$4\r\nEXEC\r\n");
        assert!(err.unwrap().message.contains("EXEC without MULTI"));
        let (_, err, _) = all(&[cmd(&["MULTI"]), cmd(&["MULTI"])].concat());
        assert!(err.unwrap().message.contains("nested MULTI"));
        let (_, err, _) = all(b"*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(err.unwrap().offset, 11);
    }

    #[test]
    fn huge_lengths_are_truncation_not_panics() {
        for f in
            [&b"*1\r\n$9999999999999999999\r\nab"[..], b"*9999999999999999999\r\n", b"*1\r\n$18446744073709551615\r\n"]
        {
            let (_, err, ok) = all(f);
            let e = err.unwrap();
            assert!(matches!(e.kind, ErrorKind::Truncated | ErrorKind::Corrupt), "{e}");
            assert_eq!(ok, 0);
        }
    }

    #[test]
    fn annotations() {
        let long = [b"#".to_vec(), vec![b'x'; 1100], b"\r\n".to_vec()].concat();
        let (_, err, _) = all(&[long.clone(), cmd(&["PING"])].concat());
        assert!(err.unwrap().message.contains("annotation line longer"));
        // At the end of the file, a partial annotation is skipped (with a warning).
        let f = [cmd(&["PING"]), b"#TS:12".to_vec()].concat();
        let mut p = RespParser::new(&f, 0, Some(50));
        assert_eq!(p.by_ref().count(), 1);
        assert_eq!(p.warnings().len(), 1);
        // Clock going back and malformed #TS are warnings.
        let f = b"#TS:10\r\n#TS:9\n#TS:x\r\n#other\r\n";
        let mut p = RespParser::new(f, 0, None);
        assert_eq!(p.by_ref().count(), 0);
        assert_eq!(p.warnings().len(), 2);
        assert_eq!((p.stats().annotations, p.ts()), (4, Some(9)));
    }
}
