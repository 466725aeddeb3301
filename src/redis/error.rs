//! What can go wrong talking to a server: the one error type of the client, the scan and TLS.

use std::fmt;

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
