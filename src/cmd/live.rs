//! The flags that name and reach a live server, as `redis-cli` spells them, shared by every
//! command that talks to one (`diff`, `split --from`).

use std::path::PathBuf;
use std::time::Duration;

use rdbtool::redis::client::{Addr, ConnectOptions, TlsOptions, read_password_file};

/// Live server flags. `-h` is the host, as in redis-cli: help is `--help`.
#[derive(clap::Args, Clone, Debug)]
#[command(disable_help_flag = true)]
pub struct LiveArgs {
    /// Server host (when no URL names the server).
    #[arg(short = 'h', long = "host", value_name = "HOST", help_heading = "Live server")]
    host: Option<String>,
    /// Server port (default 6379).
    #[arg(short = 'p', long = "port", value_name = "PORT", help_heading = "Live server")]
    port: Option<u16>,
    /// Server unix socket (instead of host and port).
    #[arg(short = 's', long = "socket", value_name = "PATH", help_heading = "Live server", conflicts_with_all = ["host", "port"])]
    socket: Option<PathBuf>,
    /// Database number (as /N in a URL).
    #[arg(short = 'n', long = "dbnum", value_name = "N", help_heading = "Live server")]
    dbnum: Option<u64>,
    /// ACL user name.
    #[arg(long, value_name = "NAME", help_heading = "Live server")]
    user: Option<String>,
    /// Password (visible to other users of the machine: prefer REDISCLI_AUTH or --password-file).
    #[arg(short = 'a', long = "pass", value_name = "PASSWORD", help_heading = "Live server")]
    pass: Option<String>,
    /// Read the password from the first line of FILE (default: the REDISCLI_AUTH variable).
    #[arg(long, value_name = "FILE", help_heading = "Live server")]
    password_file: Option<PathBuf>,
    /// Use TLS (as a rediss:// URL does).
    #[arg(long, help_heading = "Live server")]
    tls: bool,
    /// CA certificate(s) (PEM) to trust instead of the system's.
    #[arg(long, visible_alias = "tls-ca-cert", value_name = "FILE", help_heading = "Live server")]
    cacert: Option<PathBuf>,
    /// A directory of CA certificates (PEM files) to trust instead of the system's.
    #[arg(long, value_name = "DIR", help_heading = "Live server")]
    cacertdir: Option<PathBuf>,
    /// Client certificate (PEM), for servers that require one (tls-auth-clients yes).
    #[arg(long, value_name = "FILE", requires = "key", help_heading = "Live server")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert", help_heading = "Live server")]
    key: Option<PathBuf>,
    /// Server name for TLS (SNI and certificate check) instead of the host.
    #[arg(long, value_name = "NAME", help_heading = "Live server")]
    sni: Option<String>,
    /// Do not check the server's TLS certificate.
    #[arg(long, help_heading = "Live server")]
    insecure: bool,
    /// Connect / reply timeout, in seconds; also the longest wait without useful progress (a
    /// reply that arrives a few bytes at a time is an error after it).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, help_heading = "Live server")]
    timeout: u64,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

impl LiveArgs {
    /// Whether -h, -p or -s name a server.
    pub fn names_server(&self) -> bool {
        self.host.is_some() || self.port.is_some() || self.socket.is_some()
    }

    /// The connection settings for `url`, or for -h/-p/-s (default 127.0.0.1:6379) when None.
    /// Warnings (a password on the command line) go to stderr, prefixed with `rdbtool CMD:`.
    pub fn resolve(&self, url: Option<&str>, cmd: &str) -> Result<ConnectOptions, String> {
        let (mut o, url_password) = match url {
            Some(u) => ConnectOptions::parse_url(u)?,
            None => {
                let addr = match &self.socket {
                    Some(p) => Addr::Unix(p.clone()),
                    None => Addr::Tcp {
                        host: self.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
                        port: self.port.unwrap_or(6379),
                    },
                };
                (ConnectOptions::new(addr), false)
            }
        };
        if url_password {
            eprintln!(
                "rdbtool {cmd}: warning: a password in the URL is visible to other users; use REDISCLI_AUTH or --password-file"
            );
        }
        if o.db.is_none() {
            o.db = self.dbnum;
        }
        if o.username.is_none() {
            o.username.clone_from(&self.user);
        }
        if o.password.is_none() {
            o.password = if let Some(p) = &self.pass {
                eprintln!(
                    "rdbtool {cmd}: warning: a password given with -a is visible to other users; use REDISCLI_AUTH or --password-file"
                );
                Some(p.clone())
            } else if let Some(f) = &self.password_file {
                Some(read_password_file(f)?)
            } else {
                std::env::var("REDISCLI_AUTH").ok().filter(|p| !p.is_empty())
            };
        }
        let wants_tls = self.tls
            || self.cacert.is_some()
            || self.cacertdir.is_some()
            || self.cert.is_some()
            || self.sni.is_some()
            || self.insecure;
        if self.tls && matches!(o.addr, Addr::Unix(_)) {
            return Err("--tls: not over a unix socket".into());
        }
        if o.tls.is_some() || (self.tls && !matches!(o.addr, Addr::Unix(_))) {
            o.tls = Some(self.tls_options()?);
        } else if wants_tls && url.is_none() {
            return Err("TLS flags (--cacert, --cert, --sni, --insecure) need --tls or a rediss:// URL".into());
        }
        o.timeout = Duration::from_secs(self.timeout.max(1));
        Ok(o)
    }

    fn tls_options(&self) -> Result<TlsOptions, String> {
        let read = |flag: &str, p: &PathBuf| std::fs::read(p).map_err(|e| format!("--{flag} {}: {e}", p.display()));
        let mut ca = match &self.cacert {
            Some(p) => Some(read("cacert", p)?),
            None => None,
        };
        if let Some(d) = &self.cacertdir {
            let mut all = ca.take().unwrap_or_default();
            let entries = std::fs::read_dir(d).map_err(|e| format!("--cacertdir {}: {e}", d.display()))?;
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()) {
                    let b = read("cacertdir", &e.path())?;
                    if b.windows(11).any(|w| w == b"-----BEGIN ") {
                        all.extend_from_slice(&b);
                        all.push(b'\n');
                    }
                }
            }
            ca = Some(all);
        }
        Ok(TlsOptions {
            ca_pem: ca,
            cert_pem: self.cert.as_ref().map(|p| read("cert", p)).transpose()?,
            key_pem: self.key.as_ref().map(|p| read("key", p)).transpose()?,
            sni: self.sni.clone(),
            insecure: self.insecure,
        })
    }
}
