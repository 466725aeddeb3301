//! The key filter flags every command that selects keys shares (`--db`, `--key`, `--key-regex`,
//! `--type`, `--slot`, `--min-bytes`, `--expired`, `--now`, `--limit`), compiled into the
//! library's `Filter`.

use rdbtool::filter::{Expired, Filter, Glob, now_ms, parse_slot_range};
use rdbtool::rdb::Kind;

/// The filter flags, to `#[command(flatten)]` into a subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// Only this database (repeatable).
    #[arg(long = "db", value_name = "N")]
    pub dbs: Vec<u64>,
    /// Only keys matching this Redis glob pattern (`*` `?` `[abc]` `[^a]` `[a-z]` `\x`; repeatable: any).
    #[arg(long = "key", value_name = "GLOB")]
    pub keys: Vec<std::ffi::OsString>,
    /// Only keys matching this regular expression (unanchored; Rust regex syntax, on bytes).
    #[arg(long, value_name = "RE")]
    pub key_regex: Option<String>,
    /// Only values of this type: string, list, set, zset, hash, stream, module (repeatable).
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Only keys whose cluster hash slot is in A-B (or the one slot N; repeatable).
    #[arg(long = "slot", value_name = "A-B")]
    pub slots: Vec<String>,
    /// Only values whose serialized size in the file is at least N bytes.
    #[arg(long, value_name = "N")]
    pub min_bytes: Option<u64>,
    /// Keys whose TTL has passed at --now: include or exclude (default: include; `restore`:
    /// exclude).
    #[arg(long, value_enum)]
    pub expired: Option<Expired>,
    /// "Now" for --expired (default: the clock): unix seconds, 1795240763000ms, RFC 3339, or
    /// 'YYYY-MM-DD HH:MM:SS' in --tz.
    #[arg(long, value_name = "TIME", value_parser = rdbtool::time::cli_time_ms)]
    pub now: Option<i64>,
    /// Stop after N keys.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

impl FilterArgs {
    /// Compiles the flags; the error names the flag and the bad value.
    pub fn build(&self) -> Result<Filter, String> {
        let kinds = self
            .types
            .iter()
            .map(|t| {
                Kind::parse(&t.to_ascii_lowercase())
                    .ok_or_else(|| format!("--type {t}: not one of string, list, set, zset, hash, stream, module"))
            })
            .collect::<Result<_, _>>()?;
        let slots = self.slots.iter().map(|s| parse_slot_range(s)).collect::<Result<_, _>>()?;
        let key_regex = match &self.key_regex {
            Some(re) => Some(regex::bytes::Regex::new(re).map_err(|e| format!("--key-regex: {e}"))?),
            None => None,
        };
        Ok(Filter {
            dbs: self.dbs.clone(),
            globs: self.keys.iter().map(|g| Glob::new(&os_bytes(g))).collect(),
            key_regex,
            kinds,
            slots,
            min_bytes: self.min_bytes,
            expired: self.expired.unwrap_or_default(),
            now_ms: self.now.unwrap_or_else(now_ms),
            limit: self.limit,
        })
    }
}

/// A command-line argument as bytes (patterns may name binary keys).
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        s.as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        s.to_string_lossy().into_owned().into_bytes()
    }
}
