//! Progress bars on stderr, only when stderr is a terminal (never in pipes or CI logs).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-count bar, or a hidden one when stderr is not a terminal or the work is small.
pub fn bytes_bar(total: u64, label: &str) -> ProgressBar {
    const WORTH_SHOWING: u64 = 64 << 20;
    if !std::io::stderr().is_terminal() || total < WORTH_SHOWING {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_owned());
    bar
}

/// Runs `work` on this thread while a bar shows `counter` (bytes done, out of `total`), refreshed
/// ten times a second from a thread of its own; the bar is cleared at the end.
pub fn follow<T>(total: u64, label: &str, counter: &std::sync::atomic::AtomicU64, work: impl FnOnce() -> T) -> T {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let bar = bytes_bar(total, label);
    if bar.is_hidden() {
        return work();
    }
    let done = AtomicBool::new(false);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Relaxed) {
                bar.set_position(counter.load(Relaxed).min(total));
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        let r = work();
        done.store(true, Relaxed);
        r
    });
    bar.finish_and_clear();
    r
}
