//! rdbtool: read, verify and transform Redis / Valkey RDB files and AOF sets.
//!
//! The library behind the `rdbtool` command: a zero-copy parser for every RDB version (1 to 13,
//! and Valkey's `VALKEY080`) that validates as strictly as Redis's own loader, and the engines of
//! the subcommands built on it. The parser core ([`rdb`]) borrows from one byte slice (a memory
//! map or a buffer) and knows nothing of terminals or commands; the binary's `cmd` modules (not
//! part of the library) hold the flags and output of each subcommand. The format facts the code
//! relies on are written down in `docs/format.md`, which comments cite by section (`§6.2`).
//!
//! # The data path
//!
//! A [`rdb::Reader`] parses the header and yields [`rdb::Record`]s in file order: AUX fields,
//! function libraries, SELECTDB, and key records ([`rdb::KeyRecord`]: db, key, TTL, and the value
//! as a [`rdb::RawValue`]). The reader checks each value only as far as needed to find its end; a
//! [`rdb::Walker`] then decodes and validates a `RawValue` on demand, feeding any [`rdb::Sink`]:
//! [`rdb::value::Validate`] (pure validation, nothing built), the logical [`rdb::Value`]
//! ([`rdb::RawValue::decode`]), or a streaming writer of your own.
//!
//! # Entry points
//!
//! - [`rdb`]: [`rdb::Reader`], [`rdb::Walker`], [`rdb::dump::parse_dump`] (DUMP payloads),
//!   [`rdb::writer`] (writing RDB files), [`rdb::servers`] (which Redis / Valkey releases read a
//!   file).
//! - [`verify`]: [`verify::verify_bytes`], the whole check of one file as a [`verify::Report`];
//!   [`info::gather`] for what a file holds; [`report::scan_file`] for memory per key.
//! - [`aof`]: [`aof::set::AofSet::open`] (a manifest and its files, or one old AOF),
//!   [`aof::manifest::Manifest::parse`], [`aof::resp`] (the commands of one file).
//! - [`export::export`], [`merge`] / [`split`], [`diff::diff_files`]: the engines of those commands.
//! - [`crc::crc64`] (the RDB checksum), [`pass`] (one pass over an input: page release behind
//!   every consumer, chunked checksum, the checksum verdict), [`slot::key_slot`] (cluster hash
//!   slots), [`input::open`]
//!   (memory-mapped input), [`redis`] (a Redis client and a throwaway `redis-server`).
//!
//! # Example: count keys per type in an RDB
//!
//! The same program, taking a path, is `examples/count_types.rs`.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use rdbtool::rdb::{Reader, Record, Walker};
//!
//! let data: &[u8] = include_bytes!("../testdata/small-db0.rdb");
//! let mut per_type: BTreeMap<&str, u64> = BTreeMap::new();
//! let mut walker = Walker::new();
//! for record in Reader::new(data)? {
//!     if let Record::Key(key) = record? {
//!         // The reader only found where the value ends; this checks all of it.
//!         key.value.validate(&mut walker)?;
//!         *per_type.entry(key.value.kind().as_str()).or_default() += 1;
//!     }
//! }
//! for (kind, n) in &per_type {
//!     println!("{kind:<8} {n}");
//! }
//! assert_eq!(per_type["string"], 6);
//! assert_eq!(per_type.values().sum::<u64>(), 15);
//! # Ok::<(), rdbtool::Error>(())
//! ```

pub mod aof;
pub mod cleanup;
pub mod crc;
pub mod damage;
pub mod diff;
pub mod discover;
pub mod display;
pub mod error;
pub mod export;
pub mod filter;
pub mod info;
pub mod input;
pub mod json;
pub mod lint;
pub mod memory;
pub mod merge;
pub mod output;
pub mod pass;
pub mod rdb;
pub mod redis;
pub mod report;
pub mod restore;
pub mod restore_test;
pub mod slot;
pub mod split;
pub mod spool;
pub mod time;
pub mod tree;
pub mod verify;

pub use error::{Error, ErrorKind, Result};
