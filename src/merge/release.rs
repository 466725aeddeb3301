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
