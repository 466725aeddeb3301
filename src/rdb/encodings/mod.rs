//! Inner blob encodings: each is an iterator that validates as it walks (bounds, lengths,
//! back-lengths, terminator, declared count), so a full pass is also a full check.

pub mod intset;
pub mod listpack;
pub mod ziplist;
pub mod zipmap;

use crate::error::{Error, Result};
use crate::rdb::cursor::RdbStr;

/// An inner structure (ziplist, listpack, intset, zipmap) and where it came from, for errors.
#[derive(Debug, Clone, Copy)]
pub struct Blob<'b> {
    /// The blob's bytes (decompressed when `compressed`).
    pub data: &'b [u8],
    /// File offset of the blob's first byte, or of the compressed bytes when `compressed`.
    pub offset: u64,
    /// The string was LZF-compressed in the file, so positions in `data` are not file offsets.
    pub compressed: bool,
    /// What the blob is, for messages (`listpack`, `ziplist`, ...).
    pub what: &'static str,
}

impl<'b> Blob<'b> {
    /// A corruption error at position `pos` of `data`: at its file offset for a stored blob, at
    /// the blob's offset naming `pos` in the message for a compressed one.
    #[cold]
    pub fn err(&self, pos: usize, msg: impl std::fmt::Display) -> Error {
        if self.compressed {
            Error::corrupt(
                self.offset,
                format!("{} (LZF-compressed) at byte {pos} of its decompressed bytes: {msg}", self.what),
            )
        } else {
            Error::corrupt(self.offset + pos as u64, format!("{}: {msg}", self.what))
        }
    }
}

/// An inner blob from a string, decompressed into `buf` when LZF-encoded.
pub(crate) fn blob_of<'s>(
    s: RdbStr<'s>,
    end_offset: u64,
    buf: &'s mut Vec<u8>,
    what: &'static str,
) -> Result<Blob<'s>> {
    match s {
        RdbStr::Raw(b) => Ok(Blob { data: b, offset: end_offset - b.len() as u64, compressed: false, what }),
        RdbStr::Lzf { compressed, ulen, offset } => {
            let data = crate::rdb::lzf::decompress_in(compressed, ulen, buf)
                .map_err(|e| Error::corrupt(offset, format!("{what}: {e}")))?;
            Ok(Blob { data, offset, compressed: true, what })
        }
        RdbStr::Int(_) => Err(Error::corrupt(end_offset, format!("{what} stored as an integer string"))),
    }
}
