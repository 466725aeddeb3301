//! `aof find`: the commands of a set that match a pattern (`FLUSHALL`, `DEL user:*`), each with
//! its place (file, offset, line, db, the last `#TS` before it) and its position in the set, the
//! number `aof cut --before-command` takes. This is how an accident inside one second is found.

use serde::Serialize;

use crate::aof::resp::{Command, line_at};
use crate::aof::set::{AofSet, SetError, Stamp};
use crate::filter::Glob;

/// A command name (any case) with an optional glob on its keys.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// Lower case.
    name: Vec<u8>,
    key: Option<Glob>,
    text: String,
}

impl Pattern {
    /// `NAME` or `NAME KEYGLOB` (e.g. `FLUSHALL`, `DEL user:*`).
    pub fn parse(s: &str) -> Result<Pattern, String> {
        let mut words = s.split_whitespace();
        let name = words.next().ok_or_else(|| format!("{s:?}: an empty pattern (give a command name)"))?;
        let key = words.next().map(|g| Glob::new(g.as_bytes()));
        if words.next().is_some() {
            return Err(format!("{s:?}: a pattern is a command name and at most one key glob"));
        }
        Ok(Pattern { name: name.to_ascii_lowercase().into_bytes(), key, text: s.trim().to_owned() })
    }

    /// The pattern as given (trimmed), for messages.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Does `argv` match? The glob is tried on the command's keys: the first argument, every
    /// argument of DEL / UNLINK / EXISTS / TOUCH, every other one of MSET / MSETNX.
    pub fn matches(&self, argv: &[&[u8]]) -> bool {
        let Some(name) = argv.first() else { return false };
        if !name.eq_ignore_ascii_case(&self.name) {
            return false;
        }
        let Some(glob) = &self.key else { return true };
        keys_of(argv).iter().any(|k| glob.matches(k))
    }
}

/// The key arguments of a command, as far as `find` needs them.
fn keys_of<'a>(argv: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let name = argv[0].to_ascii_lowercase();
    match name.as_slice() {
        b"del" | b"unlink" | b"exists" | b"touch" => argv[1..].to_vec(),
        b"mset" | b"msetnx" => argv[1..].iter().step_by(2).copied().collect(),
        _ => argv.get(1).copied().into_iter().collect(),
    }
}

/// One command found.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// 1-based position among every command of the set's loaded files, in load order (SELECT,
    /// MULTI and EXEC count): what `aof cut --before-command` takes.
    pub position: u64,
    /// The name of the file it is in, as the manifest lists it.
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub file: Vec<u8>,
    /// File offset of the command's `*`.
    pub offset: u64,
    /// 1-based line number of that offset in the file.
    pub line: u64,
    /// The db it applies to.
    pub db: u64,
    /// The last `#TS` before the command (it was logged in that second or later).
    pub ts: Option<Stamp>,
    /// Offset of the MULTI of the transaction it is in (a cut before it goes before the MULTI).
    pub in_multi: Option<u64>,
    /// The command, arguments beyond the first 8 left out.
    #[serde(serialize_with = "ser_argv")]
    pub command: Vec<Vec<u8>>,
    /// The command's full argument count, its name included.
    pub args: usize,
}

fn ser_argv<S: serde::Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|a| crate::json::bytes(a)))
}

const SHOWN_ARGS: usize = 8;

fn found(set: &AofSet, part: usize, position: u64, cmd: &Command<'_>) -> Found {
    let p = &set.parts[part];
    Found {
        position,
        file: p.name.clone(),
        offset: cmd.meta.offset,
        line: line_at(&p.data, cmd.meta.offset),
        db: cmd.meta.db,
        ts: cmd.meta.ts.map(Stamp::new),
        in_multi: cmd.meta.multi,
        command: cmd.argv.iter().take(SHOWN_ARGS).map(|a| a.to_vec()).collect(),
        args: cmd.argv.len(),
    }
}

/// Every command matching any of `patterns`, in set order, whose last `#TS` is at or after
/// `from` (unix seconds; commands before the first annotation count as before any time), at most
/// `limit` of them. An error in the set ends the search (what was found before it is returned
/// with the error).
pub fn find(set: &AofSet, patterns: &[Pattern], from: Option<i64>, limit: usize) -> (Vec<Found>, Option<SetError>) {
    let mut out = Vec::new();
    for (i, c) in set.commands().enumerate() {
        let c = match c {
            Ok(c) => c,
            Err(e) => return (out, Some(e)),
        };
        if from.is_some_and(|f| c.cmd.meta.ts.is_none_or(|t| t < f)) {
            continue;
        }
        if patterns.iter().any(|p| p.matches(&c.cmd.argv)) {
            out.push(found(set, c.part, i as u64 + 1, &c.cmd));
            if out.len() >= limit {
                break;
            }
        }
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn patterns() {
        let p = Pattern::parse("DEL user:*").unwrap();
        assert!(p.matches(&argv("del a user:1")));
        assert!(!p.matches(&argv("DEL a b")));
        assert!(!p.matches(&argv("SET user:1 v")));
        let p = Pattern::parse("flushall").unwrap();
        assert!(p.matches(&argv("FLUSHALL ASYNC")));
        let p = Pattern::parse("MSET b*").unwrap();
        assert!(p.matches(&argv("MSET a b1 b2 v")));
        assert!(!p.matches(&argv("MSET a bx c v")));
        assert!(Pattern::parse("").is_err());
        assert!(Pattern::parse("DEL a b").is_err());
    }

    #[test]
    fn destructive() {
        use crate::aof::commands::{MASS_DELETE, is_destructive};
        assert!(is_destructive(&argv("FLUSHALL")));
        assert!(is_destructive(&argv("flushdb ASYNC")));
        assert!(!is_destructive(&argv("DEL a b")));
        let many: Vec<String> = (0..MASS_DELETE).map(|i| format!("k{i}")).collect();
        let mut v: Vec<&[u8]> = vec![b"DEL"];
        v.extend(many.iter().map(|s| s.as_bytes()));
        assert!(is_destructive(&v));
    }
}
