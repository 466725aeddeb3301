//! What the producer hands a worker: batches of keys, each key with its commands (whole RESP
//! commands in one buffer) and what it is sent as.

use crate::redis::client::encode_command;

/// What one key (or function library) is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `RESTORE`; with `exists_first`, an `EXISTS` before it tells "replaced" from "written".
    Restore { exists_first: bool },
    /// The plain commands of `export --format resp`, built under a temporary key of the same
    /// slot (`DEL tmp`, the commands, then `RENAME tmp key`, with an `EXISTS key` first to
    /// count replaced keys, under `rewrite`; else `RENAMENX tmp key` and `DEL tmp`): the key
    /// appears whole or not at all, and never merges into an existing one.
    Plain { rewrite: bool },
    /// A key whose TTL has passed that would go as plain commands (`--expired include`): what
    /// `RESTORE` does with such a TTL (the busy-key check first, then the value dropped, the
    /// target's key deleted under `REPLACE`), without building it: `EXISTS key` (an existing key
    /// is busy), under rewrite `EXISTS key` and `DEL key`.
    Expired { rewrite: bool },
    /// `FUNCTION LOAD [REPLACE]`.
    Function,
    /// `--dry-run`: one `EXISTS`.
    Exists,
}

/// One key and its commands (ranges of `Batch::buf`).
#[derive(Debug, Clone)]
pub struct Item {
    pub db: u64,
    /// The key (for a function, the library name).
    pub key: Vec<u8>,
    pub slot: u16,
    pub kind: Kind,
    /// Plain commands under panic / skip: checked with `EXISTS` first, not sent if it exists.
    pub guard: bool,
    /// `--resume`: the interrupted run may have written this key (see `journal`); found on
    /// the target, it is counted as `resumed_existing`, never as a busy key that stops the run.
    pub uncertain: bool,
    /// The key's position in the inputs (see `journal`).
    pub pos: u64,
    pub cmds: Vec<(usize, usize)>,
}

#[derive(Debug, Default)]
pub struct Batch {
    pub buf: Vec<u8>,
    pub items: Vec<Item>,
}

impl Batch {
    /// Adds an item whose commands are the RESP bytes `cmds` (one or more whole commands).
    pub fn push(&mut self, mut item: Item, prefix: Option<&[&[u8]]>, cmds: &[u8]) {
        item.cmds.clear();
        if let Some(p) = prefix {
            let at = self.buf.len();
            encode_command(&mut self.buf, p);
            item.cmds.push((at, self.buf.len()));
        }
        let base = self.buf.len();
        self.buf.extend_from_slice(cmds);
        for (a, b) in split_commands(cmds) {
            item.cmds.push((base + a, base + b));
        }
        self.items.push(item);
    }
}

/// The byte ranges of the whole RESP commands (`*N` arrays of bulk strings) in `buf`.
pub fn split_commands(buf: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    let line = |at: usize| -> Option<(u64, usize)> {
        let end = buf[at..].iter().position(|&b| b == b'\r')? + at;
        let n = std::str::from_utf8(&buf[at + 1..end]).ok()?.parse().ok()?;
        Some((n, end + 2))
    };
    while at < buf.len() {
        let start = at;
        let Some((n, mut p)) = line(at) else { break };
        for _ in 0..n {
            let Some((len, q)) = line(p) else { return out };
            p = q + len as usize + 2;
        }
        at = p;
        out.push((start, at));
    }
    out
}
