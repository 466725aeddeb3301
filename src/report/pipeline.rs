//! `report` of one file by one reader, for per-key output (CSV, JSON Lines: rows in file
//! order) and for the aggregates when the file cannot be read in parts (`--db`, `--limit`, a
//! prefix table at its cap): the reader cuts key records into batches, two workers measure
//! them, and the caller's thread folds the results in file order.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use super::{Aggregate, FileTotals, KeyRow, Options, PrefixStats, Sums, prefix_hashes};
use crate::error::{Error, ErrorKind};
use crate::memory::{Encoding, Estimator, KeyFigures};
use crate::rdb::reader::{KeyRecord, Reader, Record};

/// One prefix of a batch's keys with their totals: its hash, where its bytes are (a key of the
/// batch and a length) and the keys' figures.
#[derive(Debug, Clone, Copy)]
struct BatchPrefix {
    hash: u64,
    key: u32,
    len: u32,
    stats: PrefixStats,
}

/// A batch of key records on their way to the workers and back, then back to the reader to be
/// filled again (its buffers are reused).
struct Batch<'a> {
    seq: u64,
    keys: Vec<KeyRecord<'a>>,
    /// Filled by the workers, up to the first key whose value cannot be measured: per key its
    /// figures and slot; the totals of each prefix those keys have (one entry per distinct
    /// prefix of the batch); the sums of those keys.
    figs: Vec<KeyFigures>,
    slots: Vec<u16>,
    prefixes: Vec<BatchPrefix>,
    sums: Sums,
    /// The first key that could not be measured, and why (it and the keys after it are not
    /// counted).
    error: Option<(usize, Error)>,
    /// The keys (their places, in order) whose collection is empty: Redis drops them on load,
    /// they are not counted (their figures and slots are placeholders).
    empty: Vec<u32>,
    /// The input bytes this batch stands for.
    span: std::ops::Range<usize>,
}

impl Batch<'_> {
    fn new(seq: u64) -> Self {
        Batch {
            seq,
            keys: Vec::with_capacity(BATCH_KEYS),
            figs: Vec::with_capacity(BATCH_KEYS),
            slots: Vec::with_capacity(BATCH_KEYS),
            prefixes: Vec::new(),
            sums: Sums::default(),
            error: None,
            empty: Vec::new(),
            span: 0..0,
        }
    }
    fn clear(&mut self) {
        self.keys.clear();
        self.figs.clear();
        self.slots.clear();
        self.prefixes.clear();
        self.sums.clear();
        self.error = None;
        self.empty.clear();
        self.span = 0..0;
    }
}

const BATCH_KEYS: usize = 4096;
const BATCH_BYTES: usize = 1 << 20;
const WORKERS: usize = 2;
/// Batches in flight at most (being read, measured, waiting to be folded).
const IN_FLIGHT: usize = 8;

/// Reads one file and folds every key that passes the filter into a new `Aggregate`, calling
/// `each` for every such key in file order (per-key output). The scan is one consumer of
/// `pages` (each batch's bytes are done once folded). An error of `each` stops the scan and is
/// returned.
///
/// Three stages: the reader (this file's records, cut into batches), two workers (per key its
/// figures and slot; per batch the sums by db, type, encoding and TTL and the totals of each
/// distinct prefix), and the folder on the caller's thread (in file order: `each`, the top
/// lists and slots per key, then the batch's sums and prefixes). A key that cannot be measured
/// ends the file there, as in one pass.
pub fn scan_file(
    name: &str,
    data: &[u8],
    opts: &Options,
    pages: &crate::pass::Pages<'_>,
    each: &mut dyn FnMut(&KeyRow<'_>) -> std::io::Result<()>,
) -> std::io::Result<Aggregate> {
    let mut agg = Aggregate::new(opts);
    let mut totals = FileTotals::new(name, data.len() as u64);
    let mut reader = match Reader::new(data) {
        Ok(r) => r,
        Err(e) => {
            totals.error = Some(e.to_string());
            agg.files.push(totals);
            return Ok(agg);
        }
    };
    let mut io_error = None;
    std::thread::scope(|s| {
        let (to_workers, from_reader) = sync_channel::<Batch<'_>>(WORKERS);
        let (to_folder, from_workers) = sync_channel::<Batch<'_>>(WORKERS * 2);
        let (recycle, recycled) = channel::<Batch<'_>>();
        let from_reader = Arc::new(Mutex::new(from_reader));
        for _ in 0..WORKERS {
            let rx = Arc::clone(&from_reader);
            let tx = to_folder.clone();
            s.spawn(move || worker(rx, tx, opts));
        }
        drop(to_folder);
        // The reader runs on its own thread; this one folds, in order.
        let reader_error = s.spawn(|| read_batches(&mut reader, opts, to_workers, recycled));
        let mut pending: BTreeMap<u64, Batch<'_>> = BTreeMap::new();
        let mut next = 0u64;
        for b in from_workers {
            pending.insert(b.seq, b);
            while let Some(mut b) = pending.remove(&next) {
                next += 1;
                if io_error.is_none() && totals.error.is_none() {
                    fold(&mut agg, &mut totals, &mut io_error, &b, name, each);
                }
                // The batch's keys (borrowed from the input) are folded: its bytes are done.
                pages.done(b.span.clone());
                b.clear();
                let _ = recycle.send(b);
            }
        }
        if let Ok(Some(e)) = reader_error.join()
            && totals.error.is_none()
        {
            totals.error = Some(e.to_string());
        }
    });
    if let Some(e) = io_error {
        return Err(e);
    }
    agg.files.push(totals);
    Ok(agg)
}

/// Folds one measured batch: per key `each`, the top lists, prefixes and slots; then its sums.
fn fold<'a>(
    agg: &mut Aggregate,
    totals: &mut FileTotals,
    io_error: &mut Option<std::io::Error>,
    b: &Batch<'a>,
    name: &str,
    each: &mut dyn FnMut(&KeyRow<'_>) -> std::io::Result<()>,
) {
    // The slot counters and the key bytes of a few keys ahead are prefetched (tables bigger
    // than the caches).
    const AHEAD_KEYS: usize = 8;
    let mut empty = b.empty.iter().peekable();
    for (i, (k, fig)) in b.keys.iter().zip(&b.figs).enumerate() {
        if let Some(&s) = b.slots.get(i + AHEAD_KEYS) {
            crate::hint::prefetch(&agg.slots[s as usize]);
        }
        if empty.next_if(|&&e| e as usize == i).is_some() {
            continue;
        }
        let row = KeyRow {
            db: k.db,
            key: &k.key,
            kind: k.value.kind(),
            rdb_encoding: k.value.encoding(),
            expire_at_ms: k.expire_at_ms,
            slot: b.slots[i],
            value_bytes: k.value.bytes.len() as u64,
            idle_s: k.idle_s,
            freq: k.freq,
            fig: *fig,
        };
        if let Err(e) = each(&row) {
            // The aggregate is dropped with this error: what was folded of the batch is moot.
            *io_error = Some(e);
            return;
        }
        agg.place(&row, name);
    }
    // The batch's prefixes, their slots in the table prefetched this far ahead.
    const AHEAD_PREFIXES: usize = 16;
    for (i, p) in b.prefixes.iter().enumerate() {
        if let Some(next) = b.prefixes.get(i + AHEAD_PREFIXES) {
            agg.prefixes.prefetch(next.hash);
            if let Some(first) = b.keys[next.key as usize].key.first() {
                // Its name too: a new prefix copies its bytes.
                crate::hint::prefetch(first);
            }
        }
        let key = &b.keys[p.key as usize].key;
        agg.prefixes.add_stats(p.hash, &key[..p.len as usize], &p.stats);
    }
    agg.add_sums(&b.sums, |d| d);
    totals.count(&b.sums.total(), b.empty.len() as u64);
    if let Some((i, e)) = &b.error {
        let k = &b.keys[*i];
        totals.error = Some(format!("db {} key {}: {e}", k.db, crate::display::quoted(&k.key)));
    }
}

/// The reader's side: key records that pass the filter, in batches (reusing those the folder
/// sends back). Returns the error that ended the file early, if any.
fn read_batches<'a>(
    reader: &mut Reader<'a>,
    opts: &Options,
    tx: SyncSender<Batch<'a>>,
    recycled: Receiver<Batch<'a>>,
) -> Option<Error> {
    // At most IN_FLIGHT batches exist: past that the reader waits for the folder to send one
    // back, so a worker held up (a busy machine) cannot make batches, and the input pages they
    // keep, pile up in the folder's queue. Every batch before the one asked for has been sent,
    // so the folder can always go on.
    let mut made = 0;
    let mut fresh = |seq| {
        let b = match recycled.try_recv() {
            Ok(b) => Some(b),
            Err(_) if made < IN_FLIGHT => {
                made += 1;
                Some(Batch::new(seq))
            }
            Err(_) => recycled.recv().ok(),
        };
        b.map(|mut b| {
            b.seq = seq;
            b
        })
    };
    let mut seq = 0u64;
    // Batches cover the input end to end (records between keys included), so that the folder
    // reports every byte done.
    let mut from = 0usize;
    // The first batch is always made (none is in flight yet).
    let mut batch = fresh(seq)?;
    let mut bytes = 0usize;
    let mut limit = opts.filter.limit;
    let mut error = None;
    while let Some(rec) = reader.next() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        if let Record::Key(k) = rec {
            if !opts.filter.matches(&k) {
                continue;
            }
            if let Some(l) = &mut limit {
                if *l == 0 {
                    break;
                }
                *l -= 1;
            }
            bytes += k.value.bytes.len();
            batch.keys.push(k);
            if batch.keys.len() >= BATCH_KEYS || bytes >= BATCH_BYTES {
                let at = reader.offset() as usize;
                batch.span = from..at;
                from = at;
                bytes = 0;
                seq += 1;
                // Sent before the next one is asked for (which may wait for the folder).
                if tx.send(batch).is_err() {
                    return error;
                }
                batch = match fresh(seq) {
                    Some(b) => b,
                    None => return error,
                };
            }
        }
    }
    batch.span = from..usize::MAX;
    let _ = tx.send(batch);
    error
}

/// A hasher for keys that are already hashes (a prefix's xxh3): passes the u64 through.
#[derive(Default)]
struct PassThrough(u64);
impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; this path folds anything else in.
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A worker: measures the keys of each batch it takes (up to the first that cannot be
/// measured), their slots, and the batch's sums and prefix totals.
fn worker<'a>(rx: Arc<Mutex<Receiver<Batch<'a>>>>, tx: SyncSender<Batch<'a>>, opts: &Options) {
    let mut est = if opts.largest_element { Estimator::new() } else { Estimator::without_largest() };
    // The batch's distinct prefixes: hash -> position in `b.prefixes`.
    let mut seen: HashMap<u64, u32, BuildHasherDefault<PassThrough>> = HashMap::default();
    let mut hashes = Vec::new();
    loop {
        let b = rx.lock().map(|r| r.recv());
        let Ok(Ok(mut b)) = b else { return };
        for (i, k) in b.keys.iter().enumerate() {
            let f = match est.key(&k.key, &k.value) {
                Ok(f) => f,
                // Redis skips a key whose collection is empty as it loads the file.
                Err(e) if e.kind == ErrorKind::EmptyValue => {
                    b.empty.push(i as u32);
                    b.figs.push(KeyFigures { memory: 0, elements: 0, largest_element: 0, encoding: Encoding::Raw });
                    b.slots.push(0);
                    continue;
                }
                Err(e) => {
                    b.error = Some((i, e));
                    break;
                }
            };
            b.figs.push(f);
            b.sums.add(k.db, k.value.kind(), k.expire_at_ms, &f, opts.now_ms);
            b.slots.push(crate::slot::key_slot(&k.key));
            hashes.clear();
            prefix_hashes(&k.key, opts, &mut hashes);
            for &(hash, len) in &hashes {
                let at = *seen.entry(hash).or_insert_with(|| {
                    b.prefixes.push(BatchPrefix { hash, key: i as u32, len, stats: PrefixStats::default() });
                    b.prefixes.len() as u32 - 1
                });
                b.prefixes[at as usize].stats.count(f.memory, k.expire_at_ms.is_some());
            }
        }
        seen.clear();
        if tx.send(b).is_err() {
            return;
        }
    }
}
