//! The producer's side of the workers: one `Node` per worker thread (a connection to a master),
//! the batch being filled for it, and which batches it finished, from which the journal's
//! acknowledged position is computed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::report::NodeReport;
use super::send::{Batch, Item, Shared, Worker};
use crate::redis::ConnectOptions;

pub(super) struct Node {
    tx: Option<SyncSender<Batch>>,
    join: Option<JoinHandle<NodeReport>>,
    pub batch: Batch,
    /// The position of the first key of `batch` (None: empty).
    first: Option<u64>,
    /// The first positions of the batches handed to the worker and not known finished.
    sent: VecDeque<u64>,
    /// Batches the worker finished (`popped` of them taken off `sent`).
    done: Arc<AtomicU64>,
    popped: u64,
    /// Past the position of the last key batched for this worker (0: none).
    pub last_end: u64,
}

impl Node {
    /// Starts a worker connected to `o`.
    pub fn spawn(o: ConnectOptions, shared: &Arc<Shared>) -> Node {
        let (tx, rx) = sync_channel::<Batch>(2);
        let sh = shared.clone();
        let done = Arc::new(AtomicU64::new(0));
        let d = done.clone();
        let join = std::thread::spawn(move || Worker::new(o, sh, d).run(rx));
        Node {
            tx: Some(tx),
            join: Some(join),
            batch: Batch::default(),
            first: None,
            sent: VecDeque::new(),
            done,
            popped: 0,
            last_end: 0,
        }
    }

    /// Hands the current batch to the worker.
    pub fn flush(&mut self) {
        if self.batch.items.is_empty() {
            return;
        }
        let b = std::mem::take(&mut self.batch);
        if let Some(tx) = &self.tx {
            self.sent.extend(self.first.take());
            let _ = tx.send(b);
        }
        self.first = None;
    }

    /// Adds an item whose key is at `pos`.
    pub fn push(&mut self, pos: u64, item: Item, prefix: Option<&[&[u8]]>, cmds: &[u8]) {
        if self.batch.items.is_empty() {
            self.first = Some(pos);
        }
        self.last_end = self.last_end.max(pos + 1);
        self.batch.push(item, prefix, cmds);
    }
}

/// The acknowledged position: every key before it has its final outcome. `reading`: the
/// position of the record the producer is at (everything before it was batched or decided).
pub(super) fn acked(nodes: &mut [Node], reading: u64) -> u64 {
    let mut low = reading;
    for n in nodes.iter_mut() {
        let d = n.done.load(Ordering::SeqCst);
        while n.popped < d && n.sent.pop_front().is_some() {
            n.popped += 1;
        }
        low = low.min(n.sent.front().copied().unwrap_or(u64::MAX)).min(n.first.unwrap_or(u64::MAX));
    }
    low
}

/// Sends the last batches, closes the channels and waits for every worker: their reports, one
/// per master (its connections' added up; a worker that panicked adds an error).
pub(super) fn close(nodes: &mut [Node], errors: &mut Vec<String>) -> Vec<NodeReport> {
    let mut joins = Vec::new();
    for n in nodes.iter_mut() {
        n.flush();
        // Dropping the sender ends the worker once its channel is empty.
        n.tx = None;
        joins.extend(n.join.take());
    }
    let mut reports: Vec<NodeReport> = Vec::new();
    for j in joins {
        match j.join() {
            Ok(r) => match reports.iter_mut().find(|m| m.node == r.node) {
                Some(m) => m.absorb(r),
                None => reports.push(r),
            },
            Err(_) => errors.push("a worker thread panicked".into()),
        }
    }
    reports
}
