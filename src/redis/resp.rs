//! RESP2 on the wire: a reply read with every length bounded (`Limits`), and a command encoded.

use std::io::{self, BufRead, Read};

use super::options::Limits;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+...`: a status line, without the `+`.
    Simple(String),
    /// `-ERR ...`: the server's error line, without the `-`.
    Error(String),
    /// `:...`: an integer.
    Int(i64),
    /// `$...`: a bulk string.
    Bulk(Vec<u8>),
    /// A null bulk string or null array (`$-1`, `*-1`).
    Nil,
    /// `*...`: an array of replies.
    Array(Vec<Reply>),
}

impl Reply {
    /// A simple or bulk string as text.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Simple(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// An integer, or a bulk string holding one.
    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            Reply::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// True for the `+OK` status.
    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Simple(s) if s == "OK")
    }

    /// A short description for error messages (never the content of a bulk string).
    pub fn describe(&self) -> String {
        match self {
            Reply::Error(e) => format!("error reply: {e}"),
            Reply::Nil => "nil".into(),
            Reply::Int(i) => format!("integer {i}"),
            Reply::Simple(s) => format!("{:.80}", format!("status {s:?}")),
            Reply::Bulk(b) => format!("bulk string of {} bytes", b.len()),
            Reply::Array(a) => format!("array of {}", a.len()),
        }
    }
}

/// Reads one reply from `r` within `limits`. `Reply::Error` is a value here.
pub fn read_reply(r: &mut impl BufRead, limits: &Limits) -> Result<Reply, String> {
    read_depth(r, limits, 0)
}

fn read_line(r: &mut impl BufRead) -> Result<Vec<u8>, String> {
    let mut line = Vec::new();
    r.take(64 * 1024).read_until(b'\n', &mut line).map_err(io_text)?;
    if !line.ends_with(b"\r\n") {
        return Err(if line.is_empty() {
            "the connection was closed".into()
        } else {
            "a reply line without CRLF (connection closed, or not RESP)".into()
        });
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn io_text(e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "no reply within the timeout".into(),
        _ if e.to_string().contains("CertificateRequired") => {
            format!("reading a reply: {e} (the server requires a client certificate: --cert and --key)")
        }
        _ => format!("reading a reply: {e}"),
    }
}

fn read_depth(r: &mut impl BufRead, limits: &Limits, depth: usize) -> Result<Reply, String> {
    if depth > limits.max_depth {
        return Err("reply nested too deeply".into());
    }
    let line = read_line(r)?;
    let (&kind, rest) = line.split_first().ok_or("an empty reply line")?;
    let text = || String::from_utf8_lossy(rest).into_owned();
    let int = || -> Result<i64, String> {
        std::str::from_utf8(rest).ok().and_then(|t| t.parse().ok()).ok_or_else(|| {
            format!("not RESP: a bad integer in a reply ({:.40})", String::from_utf8_lossy(&line).escape_debug())
        })
    };
    Ok(match kind {
        b'+' => Reply::Simple(text()),
        b'-' => Reply::Error(text()),
        b':' => Reply::Int(int()?),
        b'$' => {
            let n = int()?;
            if n < 0 {
                return Ok(Reply::Nil);
            }
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= limits.max_bulk)
                .ok_or_else(|| format!("a bulk string of {n} bytes (more than the {} allowed)", limits.max_bulk))?;
            // Read what arrives rather than allocating what is announced.
            let mut data = Vec::with_capacity(n.min(1 << 20) + 2);
            r.take(n as u64 + 2).read_to_end(&mut data).map_err(io_text)?;
            if data.len() < n + 2 {
                return Err("the connection was closed inside a bulk string".into());
            }
            if &data[n..] != b"\r\n" {
                return Err("a bulk string without CRLF".into());
            }
            data.truncate(n);
            Reply::Bulk(data)
        }
        b'*' => {
            let n = int()?;
            if n < 0 {
                return Ok(Reply::Nil);
            }
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= limits.max_items)
                .ok_or_else(|| format!("an array of {n} elements (more than the {} allowed)", limits.max_items))?;
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(read_depth(r, limits, depth + 1)?);
            }
            Reply::Array(items)
        }
        other => return Err(format!("not RESP: a reply starting with byte 0x{other:02x}")),
    })
}

/// Appends the RESP encoding of one command to `buf`.
pub fn encode_command(buf: &mut Vec<u8>, args: &[&[u8]]) {
    buf.push(b'*');
    buf.extend_from_slice(args.len().to_string().as_bytes());
    buf.extend_from_slice(b"\r\n");
    for a in args {
        buf.push(b'$');
        buf.extend_from_slice(a.len().to_string().as_bytes());
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}
