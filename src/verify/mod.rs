//! `rdbtool verify`'s engine, for RDB files and AOF sets, knowing nothing of terminals or flags:
//!
//! - [`report`]: the report (and its options) both sides fill in; it imports neither side.
//! - [`rdb`]: one RDB image: checksum, a full structural parse of every value, duplicate keys,
//!   the releases that restore it; `rdb_parts` holds its per-record checks and its side of the
//!   parts join, `progress` the report as a pass builds it.
//! - [`aof`]: an AOF set or file, through `aof::set` (which uses `rdb` for a base RDB image).

pub mod aof;
mod progress;
pub mod rdb;
mod rdb_parts;
pub mod report;

pub use aof::verify_aof;
pub use rdb::{
    Observer, verify_bytes, verify_bytes_in_parts, verify_bytes_observed, verify_bytes_releasing, verify_input,
    verify_preamble,
};
pub use report::{
    Checksum, ChecksumStatus, DbCounts, ErrorEntry, Options, Report, TargetVerdict, now_ms, trailing_bytes_warning,
};
