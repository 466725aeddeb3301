//! Giving back the mapped pages of an input behind the scans that read it.

use super::Source;

/// Releases the pages of a source behind a reader, in steps of `RELEASE_STEP`.
pub(super) struct Releaser<'a> {
    input: Option<&'a crate::input::Input>,
    done: usize,
}

pub(super) const RELEASE_STEP: usize = 32 << 20;

impl<'a> Releaser<'a> {
    pub(super) fn new(s: &Source<'a>) -> Releaser<'a> {
        Releaser { input: s.input, done: 0 }
    }
    /// Everything before `upto` will not be read again soon.
    #[inline]
    pub(super) fn upto(&mut self, upto: usize) {
        if let Some(i) = self.input
            && upto >= self.done + 2 * RELEASE_STEP
        {
            let end = upto - RELEASE_STEP;
            i.release(self.done..end);
            self.done = end;
        }
    }
}

/// Pages of a source read by two scans at once (pass 1's checksum and its reader): released
/// behind the slower of the two.
pub(super) struct SharedRelease<'a> {
    input: Option<&'a crate::input::Input>,
    pos: [std::sync::atomic::AtomicUsize; 2],
    done: std::sync::atomic::AtomicUsize,
}

impl<'a> SharedRelease<'a> {
    pub(super) fn new(s: &Source<'a>) -> SharedRelease<'a> {
        use std::sync::atomic::AtomicUsize;
        SharedRelease { input: s.input, pos: [AtomicUsize::new(0), AtomicUsize::new(0)], done: AtomicUsize::new(0) }
    }
    /// Waits while scan `who` is more than `lead` bytes ahead of the other one (so the pages
    /// mapped between them stay few), unless the other one has finished.
    pub(super) fn pace(&self, who: usize, at: usize, lead: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.input.is_none() {
            return;
        }
        while at > self.pos[1 - who].load(Relaxed).saturating_add(lead) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Scan `who` (0 or 1) has read everything before `at`.
    pub(super) fn progress(&self, who: usize, at: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(input) = self.input else { return };
        self.pos[who].store(at, Relaxed);
        let low = self.pos[0].load(Relaxed).min(self.pos[1].load(Relaxed));
        let done = self.done.load(Relaxed);
        if low >= done.saturating_add(2 * RELEASE_STEP) {
            let end = low - RELEASE_STEP;
            if self.done.compare_exchange(done, end, Relaxed, Relaxed).is_ok() {
                input.release(done..end);
            }
        }
    }
}
