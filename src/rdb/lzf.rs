//! LZF as Redis uses it (liblzf 3.x raw token stream, no framing).
//!
//! Two entry points: `decompress_into` fills a reused buffer (decode path), `validate` walks the
//! token stream without writing anything (verify path: an LZF string value is fully checked
//! without a copy).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LzfError {
    /// A control byte promised more input than there is.
    TruncatedInput { at: usize },
    /// Output would exceed the declared length.
    OutputOverrun { at: usize },
    /// A back-reference points before the start of the output.
    BadBackReference { at: usize, distance: usize, produced: usize },
    /// The stream ended with fewer bytes than declared.
    ShortOutput { produced: usize, expected: usize },
}

impl fmt::Display for LzfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LzfError::TruncatedInput { at } => write!(f, "LZF stream truncated at compressed byte {at}"),
            LzfError::OutputOverrun { at } => {
                write!(f, "LZF stream at compressed byte {at} writes past the declared length")
            }
            LzfError::BadBackReference { at, distance, produced } => write!(
                f,
                "LZF back-reference at compressed byte {at} reaches {distance} bytes back with only {produced} produced"
            ),
            LzfError::ShortOutput { produced, expected } => {
                write!(f, "LZF stream decompresses to {produced} bytes, declared {expected}")
            }
        }
    }
}

/// Checks that `input` decompresses to exactly `ulen` bytes, without producing them.
pub fn validate(input: &[u8], ulen: usize) -> Result<(), LzfError> {
    let mut ip = 0usize;
    let mut op = 0usize;
    while ip < input.len() {
        let at = ip;
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let len = ctrl + 1;
            if input.len() - ip < len {
                return Err(LzfError::TruncatedInput { at });
            }
            if ulen - op < len {
                return Err(LzfError::OutputOverrun { at });
            }
            ip += len;
            op += len;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                let Some(&b) = input.get(ip) else { return Err(LzfError::TruncatedInput { at }) };
                len += b as usize;
                ip += 1;
            }
            let Some(&lo) = input.get(ip) else { return Err(LzfError::TruncatedInput { at }) };
            ip += 1;
            let distance = ((ctrl & 0x1f) << 8) + lo as usize + 1;
            len += 2;
            if distance > op {
                return Err(LzfError::BadBackReference { at, distance, produced: op });
            }
            if ulen - op < len {
                return Err(LzfError::OutputOverrun { at });
            }
            op += len;
        }
    }
    if op != ulen {
        return Err(LzfError::ShortOutput { produced: op, expected: ulen });
    }
    Ok(())
}

/// Decompresses `input` into `out` (cleared first), which must end up exactly `ulen` bytes long.
pub fn decompress_into(input: &[u8], ulen: usize, out: &mut Vec<u8>) -> Result<(), LzfError> {
    out.clear();
    out.resize(ulen, 0);
    match lzf_rust::decompress(input, out) {
        Ok(n) if n == ulen => Ok(()),
        Ok(n) => Err(LzfError::ShortOutput { produced: n, expected: ulen }),
        // The crate's error does not say where; re-walk to name the place.
        Err(_) => Err(validate(input, ulen).err().unwrap_or(LzfError::TruncatedInput { at: 0 })),
    }
}
