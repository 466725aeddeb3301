//! One module per subcommand: its arguments, its help text and its `run`.

pub mod info;
pub mod progress;
pub mod verify;

/// Exit codes shared by every subcommand.
pub const EXIT_OK: u8 = 0;
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_CANNOT_RUN: u8 = 2;
