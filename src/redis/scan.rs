//! A bounded SCAN of one database (see `Scan`).

use super::client::{Connection, Error, ErrorKind};
use super::resp::Reply;

/// One SCAN of the selected database to its end, bounded: a server whose cursor never comes
/// back to 0, or that returns far more keys than the database holds, gives an error instead of
/// a loop that fills memory or a temp dir. The bounds come from the database's size when the
/// SCAN starts (`DBSIZE`, or INFO keyspace): at most `16 * size / COUNT + 1024` rounds (a round
/// visits at least COUNT buckets of a table that holds the keys, or ten times COUNT empty ones)
/// and `4 * size + 100,000` keys (SCAN may return a key twice while the table is resized, and
/// keys written meanwhile); a page holds at most `10 * COUNT + 1,000` keys.
pub struct Scan {
    cursor: Vec<u8>,
    count: String,
    pattern: Option<Vec<u8>>,
    page_max: usize,
    rounds: u64,
    keys: u64,
    max_rounds: u64,
    max_keys: u64,
    size: u64,
    done: bool,
}

impl Scan {
    /// A SCAN with COUNT `count` (and MATCH `pattern`) of a database of `size` keys.
    pub fn new(size: u64, count: usize, pattern: Option<Vec<u8>>) -> Scan {
        let count = count.max(1);
        Scan {
            cursor: b"0".to_vec(),
            count: count.to_string(),
            pattern,
            page_max: count.saturating_mul(10).saturating_add(1000),
            rounds: 0,
            keys: 0,
            max_rounds: (size.saturating_mul(16) / count as u64).saturating_add(1024),
            max_keys: size.saturating_mul(4).saturating_add(100_000),
            size,
            done: false,
        }
    }

    /// Rounds so far.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// The next page of keys of the database selected on `conn`; `None` once the cursor came
    /// back to 0.
    pub fn next_page(&mut self, conn: &mut Connection) -> Result<Option<Vec<Vec<u8>>>, Error> {
        if self.done {
            return Ok(None);
        }
        self.rounds += 1;
        if self.rounds > self.max_rounds {
            return Err(conn.err(
                ErrorKind::Protocol,
                format!(
                    "SCAN: the cursor has not come back to 0 after {} rounds (a database of {} keys needs far fewer)",
                    self.max_rounds, self.size
                ),
            ));
        }
        let mut args: Vec<&[u8]> = vec![b"SCAN", &self.cursor, b"COUNT", self.count.as_bytes()];
        if let Some(p) = &self.pattern {
            args.push(b"MATCH");
            args.push(p);
        }
        let saved = conn.limits;
        conn.limits.max_items = saved.max_items.min(self.page_max);
        let reply = conn.command(&args);
        conn.limits = saved;
        let bad = |conn: &Connection, why: String| conn.err(ErrorKind::Protocol, format!("SCAN: {why}"));
        let Reply::Array(mut parts) = reply? else { return Err(bad(conn, "the reply is not an array".into())) };
        if parts.len() != 2 {
            return Err(bad(conn, format!("a reply of {} parts, not 2", parts.len())));
        }
        let keys = parts.pop().unwrap_or(Reply::Nil);
        let next = match parts.pop() {
            Some(Reply::Bulk(c)) if !c.is_empty() && c.len() <= 20 && c.iter().all(u8::is_ascii_digit) => c,
            other => return Err(bad(conn, format!("the cursor is {}", other.unwrap_or(Reply::Nil).describe()))),
        };
        let Reply::Array(keys) = keys else { return Err(bad(conn, format!("the keys are {}", keys.describe()))) };
        self.keys += keys.len() as u64;
        if self.keys > self.max_keys {
            return Err(bad(
                conn,
                format!(
                    "more than {} keys returned for a database of {} keys (written to heavily meanwhile? try again)",
                    self.max_keys, self.size
                ),
            ));
        }
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let Reply::Bulk(k) = k else { return Err(bad(conn, "a key is not a bulk string".into())) };
            out.push(k);
        }
        self.done = next == b"0";
        self.cursor = next;
        Ok(Some(out))
    }
}
