//! One RDB file read in parts on every core and joined in file order: the mechanics `info`,
//! `verify` and `report` share.
//!
//! The file is cut at likely record boundaries ([`crate::rdb::reader::boundaries`]); each part
//! is read on a thread of its own from its boundary (`Reader::resume`), in a db it does not
//! know (except the first): its keys carry [`UNKNOWN_DB`] until the join, which knows the db
//! at every part's start, fixes them up ([`Span::fix`]). [`crate::pass::in_order`] hands the
//! parts to the join in file order. A part is taken as read only when it starts where the one
//! before ended (a boundary that was not one is caught there) and met no SELECTDB naming
//! `UNKNOWN_DB` itself (ambiguous); otherwise, or when its reader asks for it ([`Span::again`]),
//! the join reads it again from where the last one ended, with the db it knows. The result is
//! that of one reading from start to end, however the file was cut.
//!
//! A command supplies the per-part reader (a closure) and the join's side ([`Join`]): how a
//! part is read again on the join's thread, and how it is applied.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

pub use crate::rdb::reader::UNKNOWN_DB;

/// Where a part was read and how it ended: what the driver needs to join it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Where the part's first record starts.
    pub start: usize,
    /// Where the record after the part starts, when the part ended at its end bound (`None`:
    /// the file ended in it: EOF, or an error that stops the reading).
    pub next: Option<usize>,
    /// False when the db at `start` was not known: `UNKNOWN_DB` then stands for it.
    pub known_db: bool,
    /// Set when a SELECTDB named `UNKNOWN_DB` itself: the part must be read again.
    pub ambiguous: bool,
    /// Set by a reader whose part the join must read again even if it started right (a bound
    /// the part's own bookkeeping ran past).
    pub again: bool,
}

impl Span {
    /// A part starting at `start` in `db` (`None`: not known).
    pub fn new(start: usize, db: Option<u64>) -> Span {
        Span { start, next: None, known_db: db.is_some(), ambiguous: false, again: false }
    }

    /// The db a part's own figure `db` stands for, once the join knows `start_db`, the db at the
    /// part's start.
    #[inline]
    pub fn fix(&self, start_db: u64, db: u64) -> u64 {
        if !self.known_db && db == UNKNOWN_DB { start_db } else { db }
    }

    /// A SELECTDB of `db` met while reading: true when it names the unknown db itself (the
    /// reader stops; the join reads the part again from a known db).
    #[inline]
    pub fn ambiguous_select(&mut self, db: u64) -> bool {
        if db == UNKNOWN_DB && !self.known_db {
            self.ambiguous = true;
        }
        self.ambiguous
    }
}

/// Keys counted since a part's last event: the part flushes them into an event of its own
/// before the next one (so that the join adds them to the db it knows at that point).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyCounts {
    /// Keys.
    pub n: u64,
    /// Those with a TTL.
    pub expires: u64,
    /// Those whose TTL is before now.
    pub expired: u64,
}

impl KeyCounts {
    /// Counts one key expiring at `expire_at_ms` (Unix ms), `now_ms` being now.
    #[inline]
    pub fn count(&mut self, expire_at_ms: Option<i64>, now_ms: i64) {
        self.n += 1;
        if let Some(t) = expire_at_ms {
            self.expires += 1;
            if t < now_ms {
                self.expired += 1;
            }
        }
    }

    /// The counts so far, if any key was counted, starting again from zero.
    #[inline]
    pub fn take(&mut self) -> Option<KeyCounts> {
        let c = std::mem::take(self);
        (c.n > 0).then_some(c)
    }
}

/// Bytes a part reads between two calls of its `tick` (see [`Steps`]).
pub const TICK: usize = 256 << 10;

/// The head of a part's record loop: it stops the loop at the part's end and, every [`TICK`]
/// bytes, lets the part tell its page lane how far it has read (and check for an abort).
#[derive(Debug, Clone, Copy)]
pub struct Steps {
    end: usize,
    tick: usize,
}

impl Steps {
    /// The head of a loop over the records that start before `end`.
    pub fn new(end: usize) -> Steps {
        Steps { end, tick: 0 }
    }

    /// Called before reading the record at `at`. False when the part ends there: `at` is at or
    /// after its end (`span.next` is then set to `at`), or `tick` said so. `tick(at)` is called
    /// on the first record and then once every [`TICK`] bytes; it returns false to stop.
    #[inline]
    pub fn go(&mut self, at: usize, span: &mut Span, tick: impl FnOnce(usize) -> bool) -> bool {
        if at >= self.end {
            span.next = Some(at);
            return false;
        }
        if at >= self.tick {
            self.tick = at + TICK;
            return tick(at);
        }
        true
    }
}

/// The join's side of a file read in parts.
pub trait Join {
    /// What reading one part gives.
    type Part: Send;

    /// Where the part was read and how it ended.
    fn span(part: &Self::Part) -> &Span;

    /// Reads `range` (from a record boundary, up to the first record at or after its end) on
    /// the join's thread, in the known `db`.
    fn again(&mut self, range: Range<usize>, db: u64) -> Self::Part;

    /// Applies a part that starts where the last one ended. `db` is the db at its start (which
    /// `UNKNOWN_DB` stands for in it); the join leaves in it the db at its end. False when the
    /// file ends here (whatever the part's `next`).
    fn apply(&mut self, part: Self::Part, db: &mut u64) -> bool;
}

/// Reads the parts of a file that start at `bounds` (ascending, the first at the first record,
/// right after the header) on up to `threads` threads with `read(i, range)`, and joins them in
/// file order into `join` (see the module docs). `read` gets part `i`'s range (`bounds[i]` up
/// to the next bound, the last to `usize::MAX`); it reads the first part in db 0 and the others
/// in no known db, and may return `None` when `abort` is set (the file ended in a part already
/// joined; the driver sets it then).
pub fn read_in_parts<J: Join + Send>(
    bounds: &[usize],
    threads: usize,
    abort: &AtomicBool,
    read: impl Fn(usize, Range<usize>) -> Option<J::Part> + Sync,
    join: &mut J,
) {
    let end_of = |i: usize| bounds.get(i + 1).copied().unwrap_or(usize::MAX);
    let (mut db, mut expected, mut finished) = (0u64, bounds.first().copied().unwrap_or(9), false);
    crate::pass::in_order(
        bounds.len(),
        threads,
        |i| read(i, bounds[i]..end_of(i)),
        |i, part| {
            if finished {
                return;
            }
            let end = end_of(i);
            let mut part = match part {
                Some(p) if J::span(&p).start == expected && !J::span(&p).ambiguous => p,
                _ if expected >= end => return,
                _ => join.again(expected..end, db),
            };
            if J::span(&part).again {
                part = join.again(expected..end, db);
            }
            let next = J::span(&part).next;
            let go_on = join.apply(part, &mut db);
            match next {
                Some(n) if go_on => expected = n,
                _ => {
                    finished = true;
                    abort.store(true, Ordering::Relaxed);
                }
            }
        },
    );
}

/// The range part `i` of `bounds` covers in the input's pages: its records, and for the first
/// part the header before them.
pub fn page_range(bounds: &[usize], i: usize, range: &Range<usize>) -> Range<usize> {
    if i == 0 { 0..range.end } else { bounds[i]..range.end }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy file: records are bytes; 0xFE followed by a byte selects that db, anything else is
    /// a key. A part's events: (db or key) in order.
    struct Toy<'a> {
        data: &'a [u8],
        got: Vec<(u64, u8)>,
        again: usize,
    }
    struct ToyPart {
        span: Span,
        keys: Vec<(u64, u8)>,
        last_db: Option<u64>,
    }
    fn read_toy(data: &[u8], range: Range<usize>, db: Option<u64>) -> ToyPart {
        let mut span = Span::new(range.start, db);
        let mut cur = db.unwrap_or(UNKNOWN_DB);
        let (mut keys, mut last_db) = (Vec::new(), None);
        let mut at = range.start;
        loop {
            if at >= range.end {
                span.next = Some(at);
                break;
            }
            match data.get(at) {
                None => break,
                Some(0xFE) => {
                    cur = u64::from(data[at + 1]);
                    last_db = Some(cur);
                    at += 2;
                }
                Some(&k) => {
                    keys.push((cur, k));
                    at += 1;
                }
            }
        }
        ToyPart { span, keys, last_db }
    }
    impl Join for Toy<'_> {
        type Part = ToyPart;
        fn span(p: &ToyPart) -> &Span {
            &p.span
        }
        fn again(&mut self, range: Range<usize>, db: u64) -> ToyPart {
            self.again += 1;
            read_toy(self.data, range, Some(db))
        }
        fn apply(&mut self, p: ToyPart, db: &mut u64) -> bool {
            let start_db = *db;
            self.got.extend(p.keys.iter().map(|&(d, k)| (p.span.fix(start_db, d), k)));
            if let Some(d) = p.last_db {
                *db = d;
            }
            true
        }
    }

    #[test]
    fn parts_give_one_reading_whatever_the_cut() {
        let data: Vec<u8> = vec![1, 2, 0xFE, 3, 4, 5, 0xFE, 7, 6, 0xFE, 0, 8, 9];
        let want = read_toy(&data, 0..usize::MAX, Some(0)).keys;
        for step in 1..data.len() {
            // Cuts anywhere, inside a SELECTDB too (the join must read that part again).
            let bounds: Vec<usize> = (0..data.len()).step_by(step).collect();
            for threads in [1, 2] {
                let mut toy = Toy { data: &data, got: Vec::new(), again: 0 };
                let abort = AtomicBool::new(false);
                read_in_parts(
                    &bounds,
                    threads,
                    &abort,
                    |i, r| Some(read_toy(&data, r, (i == 0).then_some(0))),
                    &mut toy,
                );
                assert_eq!(toy.got, want, "step {step}, {threads} threads");
                assert!(abort.load(Ordering::Relaxed), "the end is joined");
            }
        }
    }
}
