//! One module per subcommand: its arguments, its help text and its `run`.

pub mod aof;
pub mod diff;
pub mod export;
pub mod filter;
pub mod info;
pub mod lint;
pub mod live;
pub mod merge;
pub mod progress;
pub mod report;
pub mod restore;
pub mod restore_test;
pub mod split;
pub mod verify;
pub mod verify_tree;

/// Exit codes shared by every subcommand.
pub const EXIT_OK: u8 = 0;
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_CANNOT_RUN: u8 = 2;

/// Runs a command whose output may go to a pipe: a reader that goes away (`| head`) ends the
/// command quietly with success, as users of `head` expect; other write errors exit 2.
pub fn with_stdout(f: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<u8>) -> u8 {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let res = f(&mut out).and_then(|code| std::io::Write::flush(&mut out).map(|_| code));
    match res {
        Ok(code) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("rdbtool: writing output: {e}");
            EXIT_CANNOT_RUN
        }
    }
}
