//! A small synchronous RESP2 client: one connection to one server over TCP, TLS (rustls, with
//! optional client certificates for servers that require them) or a unix socket.
//!
//! What it guarantees, since the server is not trusted:
//! - every read and write has a timeout (`ConnectOptions::timeout`), and so has progress: the
//!   time spent waiting on the socket since the last useful progress (a command sent, or
//!   `PROGRESS_BYTES` received or sent) may not exceed that timeout either, so a server that
//!   answers a byte every half second is an error within about the timeout, not a diff that
//!   never ends (`Paced`);
//! - a SCAN of a database ends (`Scan`): its rounds and the keys it returns are bounded from
//!   the database's size, so a cursor that never comes back to 0 is an error;
//! - every reply is bounded (`Limits`: bulk length, array length, nesting depth), so a server
//!   announcing `$99999999999` or a huge array gives an error, not an allocation;
//! - the password is never part of a message: `ConnectOptions` prints without it, errors name
//!   the server by `scheme://host:port` only.
//!
//! Commands can be sent one at a time (`command`), or pipelined: `pipeline` sends N commands
//! in one write and returns N results, each the reply or the server's error string, so that a
//! caller can handle a `-MOVED` / `-ASK` / `-BUSYKEY` per command. For finer control,
//! `send_raw` + `read_reply` keep several batches in flight.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};

use std::time::{Duration, Instant};

pub use super::error::{Error, ErrorKind};
pub use super::options::{Addr, ConnectOptions, Limits, TlsOptions, is_url, read_password_file, redact};
pub use super::resp::{Reply, encode_command, read_reply};
use super::tls::tls_connect;

enum Stream {
    Tcp(TcpStream),
    Unix(std::os::unix::net::UnixStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        let t = Some(t.max(Duration::from_millis(1)));
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t).and_then(|()| s.set_write_timeout(t)),
            Stream::Unix(s) => s.set_read_timeout(t).and_then(|()| s.set_write_timeout(t)),
            Stream::Tls(s) => s.sock.set_read_timeout(t).and_then(|()| s.sock.set_write_timeout(t)),
        }
    }
}

/// Bytes moved (either way) that count as useful progress.
pub const PROGRESS_BYTES: usize = 64 << 10;

/// A stream that keeps the overall deadline: the time spent blocked in reads and writes since
/// the last useful progress (`progress`: a command sent, or `PROGRESS_BYTES` moved) is added up,
/// and past the timeout every read and write fails. A per-read timeout alone lets a server that
/// drips a byte every half second hold us forever; time we spend on our own work between reads
/// does not count. When little budget is left, the socket timeout shrinks to it, so the error
/// comes within about the timeout.
struct Paced {
    inner: Stream,
    timeout: Duration,
    waited: Duration,
    moved: usize,
    /// The socket timeout as last set.
    socket_timeout: Duration,
}

impl Paced {
    fn progress(&mut self) {
        self.waited = Duration::ZERO;
        self.moved = 0;
        if self.socket_timeout != self.timeout && self.inner.set_timeouts(self.timeout).is_ok() {
            self.socket_timeout = self.timeout;
        }
    }

    fn set_timeout(&mut self, t: Duration) -> io::Result<()> {
        self.timeout = t.max(Duration::from_millis(1));
        self.inner.set_timeouts(self.timeout)?;
        self.socket_timeout = self.timeout;
        self.waited = Duration::ZERO;
        self.moved = 0;
        Ok(())
    }

    /// Before a blocking call: an error when the budget is spent; a shorter socket timeout when
    /// little of it is left.
    fn before(&mut self) -> io::Result<()> {
        let left = self.timeout.saturating_sub(self.waited);
        if left.is_zero() {
            return Err(self.no_progress());
        }
        if left < self.socket_timeout / 2 && self.inner.set_timeouts(left).is_ok() {
            self.socket_timeout = left;
        }
        Ok(())
    }

    fn no_progress(&self) -> io::Error {
        io::Error::other(format!(
            "no useful progress for {} s (the server sends or reads a few bytes at a time)",
            self.timeout.as_secs_f64()
        ))
    }

    fn after(&mut self, started: Instant, r: io::Result<usize>) -> io::Result<usize> {
        self.waited += started.elapsed();
        match r {
            Ok(n) => {
                self.moved += n;
                if self.moved >= PROGRESS_BYTES {
                    self.progress();
                }
                Ok(n)
            }
            // The socket timeout was the rest of the budget, not a whole timeout.
            Err(e)
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
                    && self.socket_timeout < self.timeout =>
            {
                Err(self.no_progress())
            }
            Err(e) => Err(e),
        }
    }
}

impl Read for Paced {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.before()?;
        let t = Instant::now();
        let r = self.inner.read(buf);
        self.after(t, r)
    }
}

impl Write for Paced {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.before()?;
        let t = Instant::now();
        let r = self.inner.write(buf);
        self.after(t, r)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One connection to one server.
pub struct Connection {
    stream: BufReader<Paced>,
    name: String,
    pub(super) limits: Limits,
}

impl Connection {
    /// Connects (TCP, TLS or unix socket), sets the timeouts and logs in with AUTH when a
    /// password is given. Sends nothing else (no SELECT, no HELLO, no CLIENT SETINFO).
    pub fn connect(opts: &ConnectOptions) -> Result<Connection, Error> {
        let name = opts.name();
        let err = |kind: ErrorKind, message: String| Error { kind, server: name.clone(), message };
        let timeout = Some(opts.timeout.max(Duration::from_millis(1)));
        let stream = match &opts.addr {
            Addr::Unix(p) => {
                let s = std::os::unix::net::UnixStream::connect(p)
                    .map_err(|e| err(ErrorKind::Io, format!("cannot connect: {e}")))?;
                s.set_read_timeout(timeout).and_then(|()| s.set_write_timeout(timeout)).ok();
                Stream::Unix(s)
            }
            Addr::Tcp { host, port } => {
                let addrs = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| err(ErrorKind::Io, format!("cannot connect: cannot resolve {host}: {e}")))?;
                let mut last = None;
                let mut tcp = None;
                for a in addrs {
                    match TcpStream::connect_timeout(&a, opts.timeout.max(Duration::from_millis(1))) {
                        Ok(s) => {
                            tcp = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let tcp = tcp.ok_or_else(|| {
                    let why = last.map_or_else(|| "no address".to_owned(), |e| e.to_string());
                    err(ErrorKind::Io, format!("cannot connect: {why}"))
                })?;
                tcp.set_read_timeout(timeout).and_then(|()| tcp.set_write_timeout(timeout)).ok();
                let _ = tcp.set_nodelay(true);
                match &opts.tls {
                    None => Stream::Tcp(tcp),
                    Some(t) => Stream::Tls(Box::new(tls_connect(tcp, host, t).map_err(|(k, m)| err(k, m))?)),
                }
            }
        };
        let timeout = opts.timeout.max(Duration::from_millis(1));
        let paced = Paced { inner: stream, timeout, waited: Duration::ZERO, moved: 0, socket_timeout: timeout };
        let mut c =
            Connection { stream: BufReader::with_capacity(64 * 1024, paced), name: name.clone(), limits: opts.limits };
        if let Some(p) = &opts.password {
            let r = match &opts.username {
                Some(u) => c.command(&[b"AUTH", u.as_bytes(), p.as_bytes()]),
                None => c.command(&[b"AUTH", p.as_bytes()]),
            };
            match r {
                Ok(_) => {}
                Err(e) if e.kind == ErrorKind::Server => {
                    return Err(err(ErrorKind::Auth, format!("AUTH refused: {}", e.message)));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(c)
    }

    /// The server's name for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Changes the read and write timeout (e.g. for a SAVE that takes minutes).
    pub fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.stream.get_mut().set_timeout(timeout)
    }

    /// Changes the reply size limits for later replies.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    pub(super) fn err(&self, kind: ErrorKind, message: String) -> Error {
        Error { kind, server: self.name.clone(), message }
    }

    /// Writes already encoded commands (see `encode_command`).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let s = self.stream.get_mut();
        // New work for the server: its answer has a fresh budget.
        s.progress();
        s.write_all(bytes).and_then(|()| s.flush()).map_err(|e| {
            let why = match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "the server takes no more commands".into(),
                _ => e.to_string(),
            };
            Error { kind: ErrorKind::Io, server: self.name.clone(), message: format!("sending commands: {why}") }
        })
    }

    /// Reads the next reply; an error reply is returned as `Reply::Error`.
    pub fn read_reply(&mut self) -> Result<Reply, Error> {
        let limits = self.limits;
        read_reply(&mut self.stream, &limits).map_err(|m| self.err(ErrorKind::Protocol, m))
    }

    /// Sends one command and reads its reply; an error reply is an `Err` of kind `Server`.
    pub fn command(&mut self, args: &[&[u8]]) -> Result<Reply, Error> {
        let mut buf = Vec::new();
        encode_command(&mut buf, args);
        self.send_raw(&buf)?;
        match self.read_reply()? {
            Reply::Error(e) => Err(self.err(ErrorKind::Server, e)),
            r => Ok(r),
        }
    }

    /// Sends the commands in one write and reads one result per command: the reply, or the
    /// server's error line (`MOVED 3999 host:port`, `BUSYKEY ...`). `Err` means the connection
    /// itself failed; the replies read until then are lost with it.
    pub fn pipeline<A: AsRef<[u8]>>(&mut self, commands: &[Vec<A>]) -> Result<Vec<Result<Reply, String>>, Error> {
        let mut buf = Vec::new();
        for c in commands {
            let args: Vec<&[u8]> = c.iter().map(|a| a.as_ref()).collect();
            encode_command(&mut buf, &args);
        }
        self.send_raw(&buf)?;
        let mut out = Vec::with_capacity(commands.len());
        for _ in commands {
            out.push(match self.read_reply()? {
                Reply::Error(e) => Err(e),
                r => Ok(r),
            });
        }
        Ok(out)
    }

    /// SELECT db.
    pub fn select(&mut self, db: u64) -> Result<(), Error> {
        let r = self.command(&[b"SELECT", db.to_string().as_bytes()])?;
        if r.is_ok() { Ok(()) } else { Err(self.err(ErrorKind::Protocol, format!("SELECT: {}", r.describe()))) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (o, pw) = ConnectOptions::parse_url("redis://user:p%40ss@host:7000/3").unwrap();
        assert_eq!(o.addr, Addr::Tcp { host: "host".into(), port: 7000 });
        assert_eq!(
            (o.username.as_deref(), o.password.as_deref(), o.db, pw),
            (Some("user"), Some("p@ss"), Some(3), true)
        );
        assert!(o.tls.is_none());
        let (o, pw) = ConnectOptions::parse_url("rediss://[::1]:1").unwrap();
        assert_eq!((o.addr.to_string(), o.tls.is_some(), pw, o.db), ("[::1]:1".into(), true, false, None));
        assert_eq!(o.name(), "rediss://[::1]:1");
        let (o, _) = ConnectOptions::parse_url("redis://:pw@h").unwrap();
        assert_eq!((o.username, o.password.as_deref(), o.addr.to_string()), (None, Some("pw"), "h:6379".into()));
        let (o, _) = ConnectOptions::parse_url("redis://h:1/0").unwrap();
        assert_eq!(o.db, Some(0));
        let (o, _) = ConnectOptions::parse_url("unix:///tmp/r.sock?db=2").unwrap();
        assert_eq!((o.addr, o.db), (Addr::Unix("/tmp/r.sock".into()), Some(2)));
        for bad in ["http://h:1", "redis://", "redis://h:x", "redis://u:secret@h:notaport", "u:secret@h"] {
            let e = ConnectOptions::parse_url(bad).unwrap_err();
            assert!(!e.contains("secret"), "{e}");
        }
        let (o, _) = ConnectOptions::parse_url("redis://u:secret@h:1").unwrap();
        assert!(!format!("{o:?}").contains("secret"));
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("redis://user:secret@host:1/2"), "redis://user:***@host:1/2");
        assert_eq!(redact("redis://:secret@host:1"), "redis://***@host:1");
        assert_eq!(redact("rediss://host:1"), "rediss://host:1");
        assert!(!redact("u:secret@h").contains("secret"));
    }

    #[test]
    fn replies_and_limits() {
        let l = Limits::default();
        let mut r = &b"*3\r\n:1\r\n$3\r\nabc\r\n-ERR x\r\n"[..];
        assert_eq!(
            read_reply(&mut r, &l).unwrap(),
            Reply::Array(vec![Reply::Int(1), Reply::Bulk(b"abc".to_vec()), Reply::Error("ERR x".into())])
        );
        assert_eq!(read_reply(&mut &b"$-1\r\n"[..], &l).unwrap(), Reply::Nil);
        let small = Limits { max_bulk: 10, max_items: 4, max_depth: 2 };
        for bad in [
            &b"$99999999999\r\nabc"[..],
            b"*5\r\n",
            b"$3\r\nab",
            b"?x\r\n",
            b":1",
            b"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            b"$11\r\n",
        ] {
            assert!(read_reply(&mut &bad[..], &small).is_err(), "{bad:?}");
        }
        let mut b = Vec::new();
        encode_command(&mut b, &[b"DUMP", b"k\r\n"]);
        assert_eq!(b, b"*2\r\n$4\r\nDUMP\r\n$3\r\nk\r\n\r\n");
    }
}
