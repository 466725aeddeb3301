//! RDB: the reader, the inner encodings and the value model.
//!
//! The types most programs need are re-exported here: [`Reader`] yields [`Record`]s, a
//! [`KeyRecord`] holds a [`RawValue`], a [`Walker`] validates it or decodes it into a [`Value`]
//! (or feeds any [`Sink`]); [`parse_dump`] reads a DUMP payload into the same [`RawValue`].
//! The submodules hold the parts: the byte cursor and primitives (`cursor`, `lzf`, `strtod`),
//! the inner encodings, streams, modules and functions, the writer and its encoders, and the
//! fingerprint sets used to find duplicate keys and members (`keyset`, `fpset`).

pub mod cursor;
pub mod decimal;
pub mod dump;
pub mod encode;
pub mod encodings;
pub mod fpset;
pub mod function;
pub mod keyset;
pub mod lzf;
pub mod module;
pub mod reader;
pub mod servers;
pub mod splitargs;
pub mod stream;
pub mod strtod;
pub mod types;
pub mod value;
pub mod walk;
pub mod writer;

pub use cursor::Elem;
pub use dump::{Dump, parse_dump};
pub use reader::{KeyRecord, Reader, Record, Trailer};
pub use types::{Flavor, Format, Kind};
pub use value::{HashField, ModuleValue, RawValue, Sink, Stream, StreamEntry, StreamId, Validate, Value};
pub use walk::Walker;
