//! rdbtool: read, verify and transform Redis / Valkey RDB files and AOF sets.
//!
//! The parser core (`rdb`) borrows from one byte slice (a memory map or a buffer) and knows
//! nothing of terminals or commands; `cmd` holds one module per subcommand on top of it.

pub mod aof;
pub mod cleanup;
pub mod crc;
pub mod diff;
pub mod display;
pub mod error;
pub mod export;
pub mod filter;
pub mod info;
pub mod input;
pub mod json;
pub mod memory;
pub mod merge;
pub mod output;
pub mod rdb;
pub mod redis;
pub mod report;
pub mod restore;
pub mod restore_test;
pub mod slot;
pub mod split;
pub mod time;
pub mod verify;

pub use error::{Error, ErrorKind, Result};
