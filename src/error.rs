//! One error type for everything that reads untrusted bytes: what went wrong, where (byte offset in
//! the file), and in which db / key when known.

use std::fmt;

/// What kind of problem an [`Error`] is. Reports name it in snake case (`duplicate_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input ended before a structure was complete.
    Truncated,
    /// Bytes that no valid file contains (bad opcode, bad length, broken inner encoding, ...).
    Corrupt,
    /// A collection with no elements: Redis skips such keys on load, redis-check-rdb rejects them.
    EmptyValue,
    /// The same key twice in one database: Redis refuses to load the file.
    DuplicateKey,
    /// The stored CRC-64 does not match the content.
    Checksum,
    /// Valid for some server, but not something this tool (or a current Redis) can load.
    Unsupported,
    /// Loadable, but acting outside the dataset when replayed (an AOF command Redis never writes,
    /// such as REPLICAOF or CONFIG SET): refused, so that no tool of ours replays it.
    Unsafe,
    /// Valid, and restored by some server, but not by the one `verify --target` names.
    RefusedByTarget,
    /// Reading the file itself failed.
    Io,
}

impl ErrorKind {
    /// The kind's name as reports print it (`truncated`, `refused_by_target`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Truncated => "truncated",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::EmptyValue => "empty_value",
            ErrorKind::DuplicateKey => "duplicate_key",
            ErrorKind::Checksum => "checksum",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Unsafe => "unsafe",
            ErrorKind::RefusedByTarget => "refused_by_target",
            ErrorKind::Io => "io",
        }
    }
}

/// A problem found in an input: its kind, byte offset, db and key when known, and a message.
/// Its fields are those of [`ErrorData`], reached through `Deref`. Shown as `at offset N, db D,
/// key "k": message (kind)`.
///
/// Boxed so that `Result<T>` stays two words: the parser returns one from every primitive read,
/// and a large error type would make each of those returns go through memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(Box<ErrorData>);

/// The contents of an [`Error`].
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorData {
    /// What kind of problem.
    pub kind: ErrorKind,
    /// Byte offset in the file (for values inside an LZF-compressed blob: the blob's offset; the
    /// message then names the position inside the decompressed bytes).
    pub offset: u64,
    /// The database of the key being read, when known.
    pub db: Option<u64>,
    /// The key being read, when the problem is inside a key record past its key.
    pub key: Option<Vec<u8>>,
    /// What is wrong, in words (without the offset, db or key).
    pub message: String,
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` at file offset `offset`, no db or key yet.
    #[cold]
    pub fn new(kind: ErrorKind, offset: u64, message: impl Into<String>) -> Error {
        Error(Box::new(ErrorData { kind, offset, db: None, key: None, message: message.into() }))
    }
    /// An [`ErrorKind::Corrupt`] error.
    #[cold]
    pub fn corrupt(offset: u64, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Corrupt, offset, message)
    }
    /// A [`ErrorKind::Truncated`] error.
    #[cold]
    pub fn truncated(offset: u64, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Truncated, offset, message)
    }
    /// Attaches the db and key being read, unless a deeper frame already did (or a `Probe` is
    /// running on this thread: its errors are thrown away, and a would-be key can be megabytes).
    pub fn in_key(mut self, db: u64, key: &[u8]) -> Error {
        if self.key.is_none() && !Probe::running() {
            self.db = Some(db);
            self.key = Some(key.to_vec());
        }
        self
    }
    /// Attaches the db being read, unless a deeper frame already did.
    pub fn in_db(mut self, db: Option<u64>) -> Error {
        if self.db.is_none() {
            self.db = db;
        }
        self
    }
}

thread_local! {
    static PROBING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While one is held, the errors made on this thread are guesses turned down and thrown away
/// (a boundary search trying positions that are not record starts): they skip the context that
/// only a reader of the error needs (the key of [`Error::in_key`]). Which errors are made, and
/// where, does not change. Neither `Send` nor `Sync`: it restores the flag of the thread that
/// started it, so it must be dropped there.
pub(crate) struct Probe {
    was: bool,
    _this_thread: std::marker::PhantomData<*const ()>,
}

impl Probe {
    /// Starts a probe on this thread, until the value is dropped.
    pub(crate) fn start() -> Probe {
        Probe { was: PROBING.with(|p| p.replace(true)), _this_thread: std::marker::PhantomData }
    }

    /// Whether a probe runs on this thread.
    #[inline]
    fn running() -> bool {
        PROBING.with(|p| p.get())
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        PROBING.with(|p| p.set(self.was));
    }
}

impl std::ops::Deref for Error {
    type Target = ErrorData;
    fn deref(&self) -> &ErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut ErrorData {
        &mut self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}", self.offset)?;
        if let Some(db) = self.db {
            write!(f, ", db {db}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key {}", crate::display::quoted(key))?;
        }
        write!(f, ": {} ({})", self.message, self.kind.as_str())
    }
}

impl std::error::Error for Error {}
