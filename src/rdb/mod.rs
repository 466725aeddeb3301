//! RDB: the reader, the inner encodings and the value model.

pub mod cursor;
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
pub mod stream;
pub mod strtod;
pub mod types;
pub mod value;
pub mod walk;
pub mod writer;

pub use cursor::Elem;
pub use reader::{KeyRecord, Reader, Record, Trailer};
pub use types::{Flavor, Format, Kind};
pub use value::{RawValue, Sink, Value};
pub use walk::Walker;
