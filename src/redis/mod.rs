//! Talking to Redis: one client (`client`: TCP, TLS, unix sockets, AUTH, bounded replies,
//! pipelining), the cluster slot map (`cluster`), and the throwaway server some commands start
//! to load a backup (`server`), and a throwaway cluster of them (`throwaway_cluster`).
//!
//! `diff`, `split --from`, `restore-test` and `aof to-rdb` use only these.

pub mod client;
pub mod cluster;
pub mod error;
pub mod info;
pub mod options;
pub mod resp;
pub mod scan;
pub mod server;
pub mod throwaway_cluster;
mod tls;

pub use client::{Addr, ConnectOptions, Connection, Error, ErrorKind, Limits, Reply, TlsOptions};
pub use cluster::{Redirect, SlotMap};
pub use scan::Scan;
