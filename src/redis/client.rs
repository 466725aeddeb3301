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

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// A TCP address.
    Tcp {
        /// A host name or an IP address (IPv6 without brackets).
        host: String,
        /// The TCP port.
        port: u16,
    },
    /// A Unix socket's path.
    Unix(PathBuf),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Addr::Tcp { host, port } => write!(f, "{host}:{port}"),
            Addr::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// TLS settings (`rediss://`). PEM bytes, read by the caller.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// CA certificate(s) to trust instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and key, for servers with `tls-auth-clients yes`.
    pub cert_pem: Option<Vec<u8>>,
    /// The private key of `cert_pem`.
    pub key_pem: Option<Vec<u8>>,
    /// Server name to send and check instead of the host.
    pub sni: Option<String>,
    /// Do not check the server's certificate at all.
    pub insecure: bool,
}

/// Reply size limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest bulk string accepted (Redis's own `proto-max-bulk-len` default is 512 MiB).
    pub max_bulk: usize,
    /// Most elements in one array.
    pub max_items: usize,
    /// Deepest nesting of arrays.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_bulk: 512 << 20, max_items: 1 << 20, max_depth: 8 }
    }
}

/// How to reach and log into a server.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Where the server listens.
    pub addr: Addr,
    /// Some: TLS. None: plain text.
    pub tls: Option<TlsOptions>,
    /// ACL user (None: `default`).
    pub username: Option<String>,
    /// The password for AUTH (from the URL, the environment or a file); never printed.
    pub password: Option<String>,
    /// The database named by the URL's `/N` or `-n` (not selected by `connect`).
    pub db: Option<u64>,
    /// Connect, read and write timeout.
    pub timeout: Duration,
    /// Reply size limits.
    pub limits: Limits,
}

impl ConnectOptions {
    /// A plain connection to `addr`, no login.
    pub fn new(addr: Addr) -> ConnectOptions {
        ConnectOptions {
            addr,
            tls: None,
            username: None,
            password: None,
            db: None,
            timeout: Duration::from_secs(30),
            limits: Limits::default(),
        }
    }

    /// Parses `redis://[[user][:password]@]host[:port][/db]`, `rediss://...` (TLS) or
    /// `unix:///path/to/socket[?db=N]`. The second value tells whether the URL held a password
    /// (callers warn: a command line is visible to other users). Errors never repeat the URL.
    pub fn parse_url(url: &str) -> Result<(ConnectOptions, bool), String> {
        let bad = |why: &str| format!("{}: {why}", redact(url));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not a redis://, rediss:// or unix:// URL"))?;
        if scheme == "unix" || scheme == "redis+unix" {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if path.is_empty() {
                return Err(bad("no socket path"));
            }
            let mut o = ConnectOptions::new(Addr::Unix(PathBuf::from(percent_decode(path))));
            for kv in query.split('&').filter(|s| !s.is_empty()) {
                match kv.split_once('=') {
                    Some(("db", v)) => o.db = Some(v.parse().map_err(|_| bad("db is not a number"))?),
                    Some(("user", v)) => o.username = Some(percent_decode(v)),
                    _ => return Err(bad("unknown query parameter (db=N and user=NAME are understood)")),
                }
            }
            return Ok((o, false));
        }
        let tls = match scheme {
            "redis" => false,
            "rediss" => true,
            _ => return Err(bad("not a redis://, rediss:// or unix:// URL")),
        };
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (auth, hostport) = match authority.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, after) = h.split_once(']').ok_or_else(|| bad("unclosed [ in the host"))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None | Some("") => 6379,
            Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| bad("the port is not a number"))?,
        };
        let mut o = ConnectOptions::new(Addr::Tcp { host: host.to_owned(), port });
        if tls {
            o.tls = Some(TlsOptions::default());
        }
        let mut had_password = false;
        if let Some(a) = auth {
            let (u, p) = match a.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (a, None),
            };
            if !u.is_empty() {
                o.username = Some(percent_decode(u));
            }
            if let Some(p) = p {
                o.password = Some(percent_decode(p));
                had_password = true;
            }
        }
        let path = path.trim_end_matches('/');
        if !path.is_empty() {
            o.db = Some(path.parse().map_err(|_| bad("the database (/N) is not a number"))?);
        }
        Ok((o, had_password))
    }

    /// The same login and TLS settings for another node (of a cluster).
    pub fn with_addr(&self, addr: Addr) -> ConnectOptions {
        ConnectOptions { addr, ..self.clone() }
    }

    /// `redis://host:port`, `rediss://host:port` or `unix:PATH`: a name for messages.
    pub fn name(&self) -> String {
        match (&self.addr, &self.tls) {
            (Addr::Unix(p), _) => format!("unix:{}", p.display()),
            (a, Some(_)) => format!("rediss://{a}"),
            (a, None) => format!("redis://{a}"),
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("ConnectOptions")
            .field("addr", &self.name())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL: it may still hold a secret (`user:pass@host`), so show nothing of it.
        return if url.contains('@') { "(the URL given)".to_owned() } else { url.to_owned() };
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rfind('@') {
        Some(at) => {
            let user = authority[..at].split(':').next().unwrap_or("");
            let sep = if user.is_empty() { "" } else { ":" };
            format!("{scheme}://{user}{sep}***@{}{tail}", &authority[at + 1..])
        }
        None => url.to_owned(),
    }
}

/// Whether an argument names a live server rather than a file.
pub fn is_url(s: &str) -> bool {
    ["redis://", "rediss://", "unix://", "redis+unix://"].iter().any(|p| s.starts_with(p))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok())
            && let Ok(v) = u8::from_str_radix(v, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

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

/// What went wrong talking to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad settings (a certificate file that holds no certificate, a bad server name).
    Config,
    /// Cannot connect, or the connection failed (timeouts included).
    Io,
    /// TLS handshake or certificate check.
    Tls,
    /// AUTH refused.
    Auth,
    /// The peer did not speak RESP, or a reply broke a limit.
    Protocol,
    /// The server answered with an error reply.
    Server,
}

/// An error talking to a server: what kind, which server, what happened.
#[derive(Debug, Clone)]
pub struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The server, as `ConnectOptions::name` gives it.
    pub server: String,
    /// What happened, in words (never the password).
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.server, self.message)
    }
}

impl std::error::Error for Error {}

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
    limits: Limits,
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

    fn err(&self, kind: ErrorKind, message: String) -> Error {
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

/// One SCAN of the selected database to its end, bounded: a server whose cursor never comes
/// back to 0, or that returns far more keys than the database holds, gives an error instead of
/// a loop that fills memory or a temp dir. The bounds come from the database's size when the
/// SCAN starts (`DBSIZE`, or INFO keyspace): at most `16 * size / COUNT + 1024` rounds (a round
/// visits at least COUNT buckets of a table that holds the keys, or ten times COUNT empty ones)
/// and `4 * size + 100,000` keys (SCAN may return a key twice while the table is resized, and
/// keys written meanwhile); a page holds at most `10 * COUNT + 1,000` keys.
pub struct Scan {
    cursor: Vec<u8>,
    count: String,
    pattern: Option<Vec<u8>>,
    page_max: usize,
    rounds: u64,
    keys: u64,
    max_rounds: u64,
    max_keys: u64,
    size: u64,
    done: bool,
}

impl Scan {
    /// A SCAN with COUNT `count` (and MATCH `pattern`) of a database of `size` keys.
    pub fn new(size: u64, count: usize, pattern: Option<Vec<u8>>) -> Scan {
        let count = count.max(1);
        Scan {
            cursor: b"0".to_vec(),
            count: count.to_string(),
            pattern,
            page_max: count.saturating_mul(10).saturating_add(1000),
            rounds: 0,
            keys: 0,
            max_rounds: (size.saturating_mul(16) / count as u64).saturating_add(1024),
            max_keys: size.saturating_mul(4).saturating_add(100_000),
            size,
            done: false,
        }
    }

    /// Rounds so far.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// The next page of keys of the database selected on `conn`; `None` once the cursor came
    /// back to 0.
    pub fn next_page(&mut self, conn: &mut Connection) -> Result<Option<Vec<Vec<u8>>>, Error> {
        if self.done {
            return Ok(None);
        }
        self.rounds += 1;
        if self.rounds > self.max_rounds {
            return Err(conn.err(
                ErrorKind::Protocol,
                format!(
                    "SCAN: the cursor has not come back to 0 after {} rounds (a database of {} keys needs far fewer)",
                    self.max_rounds, self.size
                ),
            ));
        }
        let mut args: Vec<&[u8]> = vec![b"SCAN", &self.cursor, b"COUNT", self.count.as_bytes()];
        if let Some(p) = &self.pattern {
            args.push(b"MATCH");
            args.push(p);
        }
        let saved = conn.limits;
        conn.limits.max_items = saved.max_items.min(self.page_max);
        let reply = conn.command(&args);
        conn.limits = saved;
        let bad = |conn: &Connection, why: String| conn.err(ErrorKind::Protocol, format!("SCAN: {why}"));
        let Reply::Array(mut parts) = reply? else { return Err(bad(conn, "the reply is not an array".into())) };
        if parts.len() != 2 {
            return Err(bad(conn, format!("a reply of {} parts, not 2", parts.len())));
        }
        let keys = parts.pop().unwrap_or(Reply::Nil);
        let next = match parts.pop() {
            Some(Reply::Bulk(c)) if !c.is_empty() && c.len() <= 20 && c.iter().all(u8::is_ascii_digit) => c,
            other => return Err(bad(conn, format!("the cursor is {}", other.unwrap_or(Reply::Nil).describe()))),
        };
        let Reply::Array(keys) = keys else { return Err(bad(conn, format!("the keys are {}", keys.describe()))) };
        self.keys += keys.len() as u64;
        if self.keys > self.max_keys {
            return Err(bad(
                conn,
                format!(
                    "more than {} keys returned for a database of {} keys (written to heavily meanwhile? try again)",
                    self.max_keys, self.size
                ),
            ));
        }
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let Reply::Bulk(k) = k else { return Err(bad(conn, "a key is not a bulk string".into())) };
            out.push(k);
        }
        self.done = next == b"0";
        self.cursor = next;
        Ok(Some(out))
    }
}

fn tls_connect(
    tcp: TcpStream,
    host: &str,
    t: &TlsOptions,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, (ErrorKind, String)> {
    let config = tls_config(t).map_err(|m| (ErrorKind::Config, m))?;
    let sni = t.sni.as_deref().unwrap_or(host).to_owned();
    let server_name = rustls::pki_types::ServerName::try_from(sni.clone())
        .map_err(|_| (ErrorKind::Config, format!("{sni:?} is not a valid TLS server name (--sni)")))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), server_name)
        .map_err(|e| (ErrorKind::Tls, format!("TLS: {e}")))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    // Complete the handshake now, so that a certificate problem is reported as such.
    while s.conn.is_handshaking() {
        if let Err(e) = s.conn.complete_io(&mut s.sock) {
            use rustls::{CertificateError as C, Error as R};
            let mut m = format!("TLS handshake: {e}");
            let hint = match e.get_ref().and_then(|x| x.downcast_ref::<R>()) {
                Some(R::InvalidCertificate(C::UnknownIssuer)) => {
                    " (the server's certificate is not signed by a trusted CA: give its CA with --cacert)"
                }
                Some(R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => {
                    " (the certificate is for another name: see --sni)"
                }
                Some(R::AlertReceived(rustls::AlertDescription::CertificateRequired)) => {
                    " (the server requires a client certificate: --cert and --key)"
                }
                _ => "",
            };
            m.push_str(hint);
            return Err((ErrorKind::Tls, m));
        }
    }
    Ok(s)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(t: &TlsOptions) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let p = provider();
    let builder = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if t.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoCheck(p)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &t.ca_pem {
            Some(pem) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--cacert: not a PEM certificate file ({e})"))?;
                if certs.is_empty() {
                    return Err("--cacert: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into());
                }
                for c in certs {
                    roots.add(c).map_err(|e| format!("--cacert: {e}"))?;
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(c);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    match (&t.cert_pem, &t.key_pem) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("--cert: not a PEM certificate file ({e})"))?;
            if chain.is_empty() {
                return Err("--cert: no PEM certificate in the file".into());
            }
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("--key: no PEM private key ({e})"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("--cert/--key: {e}"))
        }
        _ => Err("--cert and --key go together".into()),
    }
}

/// `--insecure`: accepts any certificate (the signatures of the handshake are still checked).
#[derive(Debug)]
struct NoCheck(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The first line of a password file (without its line ending).
pub fn read_password_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--password-file {}: {e}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").trim_end_matches('\r').to_owned())
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
