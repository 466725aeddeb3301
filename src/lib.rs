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
//! - [`rdb`]: [`rdb::Reader`], [`rdb::Walker`], [`rdb::parse_dump`] (DUMP payloads),
//!   [`rdb::writer`] (writing RDB files), [`rdb::servers`] (which Redis / Valkey releases read a
//!   file). The types a program meets first are re-exported there: `use rdbtool::rdb::{Reader,
//!   Record, KeyRecord, RawValue, Value, Walker}`.
//! - [`verify`]: [`verify::verify_bytes`], the whole check of one file as a [`verify::Report`];
//!   [`info::gather`] for what a file holds; [`report::scan_file`] and [`memory`] for memory per
//!   key.
//! - [`aof`]: [`aof::set::AofSet::open`] (a manifest and its files, or one old AOF),
//!   [`aof::manifest::Manifest::parse`], [`aof::resp`] (the commands of one file).
//! - [`export::export`] (JSON lines or RESP commands), with [`filter::Filter`] to select keys.
//! - [`crc::crc64`] (the RDB checksum), [`pass`] (one pass over an input: page release behind
//!   every consumer, chunked checksum, the checksum verdict), [`parts`] (a file read in parts on
//!   every core, joined in file order), [`slot::key_slot`] (cluster hash
//!   slots), [`input::open`] (memory-mapped input), `redis` (a Redis client and a throwaway
//!   `redis-server`; feature `live`, on by default), and [`Error`] / [`ErrorKind`], the one error
//!   type of everything that reads untrusted bytes.
//!
//! # What is not the library
//!
//! The other modules (`merge`, `split`, `diff`, `restore`, `restore_test`, `lint`, and the
//! helpers `cleanup`, `output`, `spool`, `discover`, `tree`, `damage`, `display`, `json`, `time`)
//! are the engines of the `rdbtool` binary: they are `pub` only so that the binary (a separate
//! crate) and the integration tests can reach them, are hidden from these docs, and may change
//! shape with any release. Their behaviour is documented as commands in the README.
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

#![warn(missing_docs)]

// The library: the public, documented API.
pub mod aof;
pub mod crc;
pub mod error;
pub mod export;
pub mod filter;
pub mod info;
pub mod input;
pub mod memory;
pub mod parts;
pub mod pass;
pub mod rdb;
#[cfg(feature = "live")]
pub mod redis;
pub mod report;
pub mod slot;
pub mod verify;

// The binary's engines, not a stable API: `pub` for `src/main.rs` and the tests, hidden from the docs.
#[doc(hidden)]
pub mod cleanup;
#[doc(hidden)]
pub mod damage;
#[doc(hidden)]
pub mod diff;
#[doc(hidden)]
pub mod discover;
#[doc(hidden)]
pub mod display;
#[doc(hidden)]
pub mod hint;
#[doc(hidden)]
pub mod json;
#[doc(hidden)]
pub mod lint;
#[doc(hidden)]
pub mod merge;
#[doc(hidden)]
pub mod output;
#[doc(hidden)]
pub mod report_html;
#[doc(hidden)]
#[cfg(feature = "live")]
pub mod restore;
#[doc(hidden)]
#[cfg(feature = "live")]
pub mod restore_test;
#[doc(hidden)]
pub mod rng;
#[doc(hidden)]
pub mod split;
#[doc(hidden)]
pub mod spool;
#[doc(hidden)]
pub mod time;
#[doc(hidden)]
pub mod tree;

pub use error::{Error, ErrorKind, Result};
