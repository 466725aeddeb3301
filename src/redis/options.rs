//! How to reach a server: its address, TLS settings, reply limits, credentials and timeout
//! (`ConnectOptions`), from a `redis://` / `rediss://` / `unix://` URL or from flags; URLs shown
//! without their password.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// The first line of a password file (without its line ending).
pub fn read_password_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--password-file {}: {e}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").trim_end_matches('\r').to_owned())
}
