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
