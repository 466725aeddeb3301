//! Key filters shared by the commands that select keys (export today): databases, Redis glob
//! patterns, a byte regex, value types, cluster slots, serialized size and expiry.
//!
//! `Filter` is the compiled form that answers `matches` for a key record (the binary's
//! `FilterArgs` builds it from the flags). `limit` is carried here so that every command spells it
//! the same way, but counting is the caller's job.

use std::ops::RangeInclusive;

use crate::rdb::reader::KeyRecord;
use crate::rdb::types::Kind;
use crate::slot;

/// A Redis glob pattern (the syntax of `KEYS`, `SCAN MATCH`, `PSUBSCRIBE`), matched on bytes
/// exactly as Redis's `stringmatchlen` does: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`.
///
/// Redis quirks kept on purpose: an unterminated `[` class runs to the end of the pattern; in a
/// class, `\` escapes the next byte and `x-y` is a range even when `y` is `]`; range bounds are
/// swapped when reversed and compared as C `char` (signed on x86-64, where Redis runs); an empty
/// key matches only the empty pattern and `*` (which `KEYS` and `SCAN` special-case).
#[derive(Debug, Clone)]
pub struct Glob {
    tokens: Vec<Token>,
    match_all: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Star,
    Any,
    Byte(u8),
    Class { negate: bool, items: Vec<ClassItem> },
}

#[derive(Debug, Clone, PartialEq)]
enum ClassItem {
    Byte(u8),
    /// Bounds as signed chars, low <= high.
    Range(i8, i8),
}

impl Token {
    /// Whether this single-byte token accepts `c` (never called on `Star`).
    fn accepts(&self, c: u8) -> bool {
        match self {
            Token::Star | Token::Any => true,
            Token::Byte(b) => *b == c,
            Token::Class { negate, items } => {
                let hit = items.iter().any(|it| match *it {
                    ClassItem::Byte(b) => b == c,
                    ClassItem::Range(lo, hi) => (lo..=hi).contains(&(c as i8)),
                });
                hit != *negate
            }
        }
    }
}

impl Glob {
    /// Compiles a Redis glob pattern (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`). Every byte
    /// string is a pattern: a malformed class is read the way Redis reads it, never refused.
    pub fn new(pattern: &[u8]) -> Glob {
        let p = pattern;
        let n = p.len();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < n {
            match p[i] {
                b'*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                b'?' => tokens.push(Token::Any),
                b'[' => {
                    i += 1;
                    let negate = i < n && p[i] == b'^';
                    if negate {
                        i += 1;
                    }
                    let mut items = Vec::new();
                    loop {
                        let rem = n - i;
                        if rem == 0 {
                            // Unterminated: the class ends with the pattern.
                            i = n - 1;
                            break;
                        } else if p[i] == b'\\' && rem >= 2 {
                            i += 1;
                            items.push(ClassItem::Byte(p[i]));
                        } else if p[i] == b']' {
                            break;
                        } else if rem >= 3 && p[i + 1] == b'-' {
                            let (a, b) = (p[i] as i8, p[i + 2] as i8);
                            items.push(ClassItem::Range(a.min(b), a.max(b)));
                            i += 2;
                        } else {
                            items.push(ClassItem::Byte(p[i]));
                        }
                        i += 1;
                    }
                    tokens.push(Token::Class { negate, items });
                }
                b'\\' => {
                    if n - i >= 2 {
                        i += 1;
                    }
                    tokens.push(Token::Byte(p[i]));
                }
                c => tokens.push(Token::Byte(c)),
            }
            i += 1;
        }
        Glob { tokens, match_all: pattern == b"*" }
    }

    /// Whether `s` matches. Every token but `*` consumes exactly one byte, so the classic
    /// backtrack-to-the-last-star scan gives the same answers as Redis's recursion, in
    /// O(len(s) * len(pattern)) without recursion.
    pub fn matches(&self, s: &[u8]) -> bool {
        if self.match_all {
            return true;
        }
        if s.is_empty() {
            return self.tokens.is_empty();
        }
        let t = &self.tokens;
        let (mut ti, mut si) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            match t.get(ti) {
                Some(Token::Star) => {
                    star = Some((ti, si));
                    ti += 1;
                }
                Some(tok) if tok.accepts(s[si]) => {
                    ti += 1;
                    si += 1;
                }
                _ => match star {
                    Some((st, ss)) => {
                        ti = st + 1;
                        si = ss + 1;
                        star = Some((st, ss + 1));
                    }
                    None => return false,
                },
            }
        }
        t[ti..].iter().all(|x| *x == Token::Star)
    }
}

/// What to do with keys whose TTL has passed at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Expired {
    /// Keep them (the file's content as it is).
    #[default]
    Include,
    /// Drop them, and hash fields whose own TTL has passed (what a server loading the file does).
    Exclude,
}

/// The compiled filters. An empty list means "no restriction"; different filters combine with
/// AND, repeated values of one filter with OR. `Filter::default()` keeps every key, with
/// `now_ms` the current time (so that a caller asking for `Expired::Exclude` drops what has
/// expired by now, not what expired before 1970).
#[derive(Debug, Clone)]
pub struct Filter {
    /// Databases to keep.
    pub dbs: Vec<u64>,
    /// Key glob patterns; a key matching any is kept.
    pub globs: Vec<Glob>,
    /// A regular expression on the key bytes (unanchored).
    pub key_regex: Option<regex::bytes::Regex>,
    /// Value types to keep.
    pub kinds: Vec<Kind>,
    /// Cluster hash slot ranges to keep (docs/format.md §10).
    pub slots: Vec<RangeInclusive<u16>>,
    /// Minimum serialized value size (`RawValue::bytes.len()`).
    pub min_bytes: Option<u64>,
    /// Whether keys already expired at `now_ms` are kept.
    pub expired: Expired,
    /// "Now" in unix ms for `expired`.
    pub now_ms: i64,
    /// At most this many keys (counted by the caller).
    pub limit: Option<u64>,
}

impl Default for Filter {
    fn default() -> Filter {
        Filter {
            dbs: Vec::new(),
            globs: Vec::new(),
            key_regex: None,
            kinds: Vec::new(),
            slots: Vec::new(),
            min_bytes: None,
            expired: Expired::default(),
            now_ms: now_ms(),
            limit: None,
        }
    }
}

impl Filter {
    /// A key expires when its time is strictly before now (Redis: `now > when`).
    pub fn is_expired(&self, expire_at_ms: Option<i64>) -> bool {
        expire_at_ms.is_some_and(|t| t < self.now_ms)
    }

    /// With `--expired exclude`: the time before which hash fields are dropped.
    pub fn field_cutoff(&self) -> Option<i64> {
        (self.expired == Expired::Exclude).then_some(self.now_ms)
    }

    /// Whether keys of `db` can pass (the db filter alone).
    pub fn wants_db(&self, db: u64) -> bool {
        self.dbs.is_empty() || self.dbs.contains(&db)
    }

    /// Whether `matches` is true of every key (no filter but perhaps `limit`): a caller may
    /// then skip asking per key.
    pub fn keeps_every_key(&self) -> bool {
        let Filter { dbs, globs, key_regex, kinds, slots, min_bytes, expired, now_ms: _, limit: _ } = self;
        dbs.is_empty()
            && globs.is_empty()
            && key_regex.is_none()
            && kinds.is_empty()
            && slots.is_empty()
            && min_bytes.is_none()
            && *expired == Expired::Include
    }

    /// Whether the key passes every filter (all but `limit`).
    pub fn matches(&self, k: &KeyRecord<'_>) -> bool {
        if !self.wants_db(k.db) {
            return false;
        }
        if let Some(min) = self.min_bytes
            && (k.value.bytes.len() as u64) < min
        {
            return false;
        }
        if !self.kinds.is_empty() && !self.kinds.contains(&k.value.kind()) {
            return false;
        }
        if self.expired == Expired::Exclude && self.is_expired(k.expire_at_ms) {
            return false;
        }
        let key: &[u8] = &k.key;
        if !self.slots.is_empty() {
            let s = slot::key_slot(key);
            if !self.slots.iter().any(|r| r.contains(&s)) {
                return false;
            }
        }
        if !self.globs.is_empty() && !self.globs.iter().any(|g| g.matches(key)) {
            return false;
        }
        if let Some(re) = &self.key_regex
            && !re.is_match(key)
        {
            return false;
        }
        true
    }
}

/// The clock in unix milliseconds.
pub use crate::time::now_ms;

/// `A-B` or `N`, within 0..16383.
pub fn parse_slot_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let bad = || format!("--slot {s}: expected A-B or N with 0 <= A <= B <= 16383");
    let num = |x: &str| x.trim().parse::<u16>().ok().filter(|&v| v < slot::SLOTS);
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (num(a).ok_or_else(bad)?, num(b).ok_or_else(bad)?),
        None => {
            let v = num(s).ok_or_else(bad)?;
            (v, v)
        }
    };
    if a > b {
        return Err(bad());
    }
    Ok(a..=b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p.as_bytes()).matches(s.as_bytes())
    }

    #[test]
    fn glob_basics() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("", ""));
        assert!(!m("**", ""));
        assert!(!m("?", ""));
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h*llo", "hllo"));
        assert!(!m("h*llo", "hlo"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*a", "bba"));
        assert!(m("a**", "a"));
        assert!(m("a*", "a"));
    }

    #[test]
    fn glob_escapes_and_quirks() {
        assert!(m(r"\*", "*"));
        assert!(!m(r"\*", "a"));
        assert!(m(r"a\", r"a\"));
        assert!(m(r"[\]]", "]"));
        assert!(m(r"[\-]", "-"));
        // Unterminated class: to the end of the pattern.
        assert!(m("[ab", "a"));
        assert!(m("[ab", "b"));
        assert!(!m("[ab", "c"));
        assert!(!m("[", "["));
        assert!(m("[^", "x"));
        // `]` first closes an empty class, which matches nothing.
        assert!(!m("[]a]", "a"));
        assert!(!m("[]", "]"));
        // A range up to `]`: swapped to `]`..`a`.
        assert!(m("[a-]", "_"));
        assert!(!m("[a-]", "b"));
        // Signed char comparison: 'a'..0xff is really -1..'a'.
        assert!(Glob::new(b"[a-\xff]").matches(b"\x00"));
        assert!(!Glob::new(b"[a-\xff]").matches(b"b"));
        assert!(Glob::new(b"[\x80-\xff]").matches(b"\x90"));
    }

    #[test]
    fn slot_ranges() {
        assert_eq!(parse_slot_range("0-16383").unwrap(), 0..=16383);
        assert_eq!(parse_slot_range("42").unwrap(), 42..=42);
        assert!(parse_slot_range("5-4").is_err());
        assert!(parse_slot_range("0-16384").is_err());
        assert!(parse_slot_range("x").is_err());
    }
}
