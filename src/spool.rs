//! Inputs that cannot be mapped as they are: compressed backups (`.rdb.gz`, `.rdb.zst`,
//! `.rdb.lz4`, or those magic bytes on a stream) and non-seekable streams (`-` for standard
//! input, a FIFO, `<(...)`). Their bytes (decompressed as a stream) are written to an unnamed
//! temporary file, which is then memory-mapped like any backup: the engines keep working on one
//! byte slice, and memory stays bounded whatever the size (pages already read are given back by
//! `Input::release`). The file has no name from the start (or is unlinked at once), so it is
//! gone when the map is dropped, on success, on error, or if the process is killed.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use memmap2::{Advice, Mmap};

use crate::input::Input;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Zstd,
    Lz4,
}

impl Codec {
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
        }
    }

    /// By file name: `.gz`, `.zst`, `.lz4`.
    pub fn from_name(name: &str) -> Option<Codec> {
        if name.ends_with(".gz") {
            Some(Codec::Gzip)
        } else if name.ends_with(".zst") {
            Some(Codec::Zstd)
        } else if name.ends_with(".lz4") {
            Some(Codec::Lz4)
        } else {
            None
        }
    }

    /// By the first bytes of the data (gzip, zstd frame, lz4 frame magic numbers).
    pub fn sniff(head: &[u8]) -> Option<Codec> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Codec::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Codec::Zstd)
        } else if head.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
            Some(Codec::Lz4)
        } else {
            None
        }
    }

    fn decoder<'r>(self, r: impl Read + 'r) -> io::Result<Box<dyn Read + 'r>> {
        Ok(match self {
            // Several members (pigz, concatenated files) are one stream, as gunzip reads them.
            Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
            Codec::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(r)),
        })
    }
}

/// A spooled input: the (decompressed) bytes, mapped.
pub struct Spooled {
    pub data: Input,
    pub codec: Option<Codec>,
    /// The compressed stream ended early or is corrupt: the message; `data` holds what was
    /// decompressed before (so the verdict names where the RDB image stops).
    pub decode_error: Option<(crate::ErrorKind, String)>,
}

/// Whether a path names something to spool rather than map: `-`, a compressed file name, or
/// a file that is not a regular file (a pipe).
pub fn needs_spool(path: &Path) -> bool {
    if path.as_os_str() == "-" {
        return true;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if Codec::from_name(&name).is_some() {
        return true;
    }
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Opens an argument for reading: `-` is standard input, compressed files and pipes are
/// spooled, other files are mapped (`input::open`). A decompression failure is an error here;
/// `verify` uses `open_spooled` to report it as part of the file's verdict.
pub fn open_arg(path: &Path, temp_dir: Option<&Path>) -> io::Result<Input> {
    if !needs_spool(path) {
        return crate::input::open(path);
    }
    let s = open_spooled(path, temp_dir)?;
    match s.decode_error {
        Some((_, msg)) => Err(io::Error::new(io::ErrorKind::InvalidData, msg)),
        None => Ok(s.data),
    }
}

/// Spools `path` (`-`: standard input). The codec is taken from the file name, else from the
/// stream's first bytes.
pub fn open_spooled(path: &Path, temp_dir: Option<&Path>) -> io::Result<Spooled> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let by_name = Codec::from_name(&name);
    if path.as_os_str() == "-" {
        spool(io::stdin().lock(), by_name, temp_dir)
    } else {
        spool(File::open(path)?, by_name, temp_dir)
    }
}

/// Reads `src` to its end into an unnamed temporary file (in `temp_dir`, else `$TMPDIR`),
/// decompressing with `codec` or the codec its first bytes show, and maps the result.
pub fn spool(mut src: impl Read, codec: Option<Codec>, temp_dir: Option<&Path>) -> io::Result<Spooled> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match src.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let codec = codec.or_else(|| Codec::sniff(&head[..got]));
    let chained = io::Cursor::new(head[..got].to_vec()).chain(src);
    let dir = temp_dir.map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
    let file = tempfile::tempfile_in(&dir)
        .map_err(|e| io::Error::new(e.kind(), format!("temp file in {}: {e}", dir.display())))?;
    let mut out = BufWriter::with_capacity(1 << 20, &file);
    let mut decode_error = None;
    match codec {
        None => copy_plain(chained, &mut out)?,
        Some(c) => {
            if let Err(e) = c.decoder(chained).and_then(|mut d| copy_plain(&mut d, &mut out)) {
                let kind = if e.kind() == io::ErrorKind::UnexpectedEof {
                    crate::ErrorKind::Truncated
                } else {
                    crate::ErrorKind::Corrupt
                };
                decode_error = Some((kind, format!("{} stream: {e}", c.as_str())));
            }
        }
    }
    out.flush()?;
    drop(out);
    let len = file.metadata()?.len();
    let data = if len == 0 {
        Input::Owned(Vec::new())
    } else {
        // Safety: the file is ours alone (unnamed, never shared) and no longer written.
        let map = unsafe { Mmap::map(&file)? };
        let _ = map.advise(Advice::Sequential);
        Input::Mapped(map, file)
    };
    Ok(Spooled { data, codec, decode_error })
}

/// `io::copy` with a 1 MiB buffer; an error from the reader keeps what was written before it.
fn copy_plain(mut r: impl Read, w: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(codec: Option<Codec>, packed: &[u8], plain: &[u8]) {
        let s = spool(packed, None, None).unwrap();
        assert_eq!(s.codec, codec);
        assert!(s.decode_error.is_none(), "{:?}", s.decode_error);
        assert_eq!(&*s.data, plain);
    }

    #[test]
    fn every_codec_and_plain() {
        let plain: Vec<u8> = (0..300_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        roundtrip(None, &plain, &plain);
        roundtrip(None, b"", b"");
        roundtrip(None, b"RE", b"RE");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        roundtrip(Some(Codec::Gzip), &gz, &plain);
        // Two gzip members are one stream.
        let twice = [gz.clone(), gz.clone()].concat();
        roundtrip(Some(Codec::Gzip), &twice, &[plain.clone(), plain.clone()].concat());
        roundtrip(Some(Codec::Zstd), &zstd::encode_all(&plain[..], 3).unwrap(), &plain);
        let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz.write_all(&plain).unwrap();
        roundtrip(Some(Codec::Lz4), &lz.finish().unwrap(), &plain);
        // Truncated: what came before, and the error.
        let s = spool(&gz[..gz.len() / 2], None, None).unwrap();
        assert!(s.decode_error.is_some());
        assert!(plain.starts_with(&s.data));
    }
}
