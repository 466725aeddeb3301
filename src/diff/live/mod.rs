//! A live server (standalone or Redis Cluster) as a side of a diff: connections with the shared
//! client (`crate::redis`), SCAN to list keys, pipelined `DUMP` + `PTTL` to read values, which
//! our own reader decodes (`rdb::dump::parse_dump`), and cluster routing by hash slot.
//!
//! Strictly read-only: the only commands sent are CLIENT NO-TOUCH (7.2+, so that reads leave the
//! keys' LRU / LFU data alone), SCAN, TYPE, PTTL, DUMP, EXISTS, INFO (DBSIZE when INFO is refused),
//! CLUSTER SLOTS, PING, SELECT (connection state, needed to read databases other than 0) and the
//! AUTH the client sends when a password is given (the client sends nothing of its own). A
//! cluster is read through one connection per master (from the slot map): every master is
//! scanned, and a key read by name goes to the master of its slot. A MOVED / ASK reply
//! (resharding during the diff) stops the diff with an error naming the node.
//!
//! Every socket has a read and write timeout, and every reply is checked for its shape: a
//! server that sends something unexpected gives an error, not a panic or a hang.

mod file;
mod servers;
mod side;

pub use file::diff_file_live;
pub use servers::diff_live_live;
pub use side::{LiveSide, Pending, Query, Reply};

use super::{DiffError, KeySelect, Options, SideInfo, Tally, one_sided};
use crate::rdb::types::Kind;
pub use crate::redis::client::{ConnectOptions, is_url, redact};

fn restrict_to_url_db(select: &KeySelect, url_db: Option<u64>) -> KeySelect {
    let mut s = select.clone();
    if let Some(d) = url_db {
        if s.dbs.is_empty() {
            s.dbs = vec![d];
        } else {
            s.dbs.retain(|x| *x == d);
            if s.dbs.is_empty() {
                // Nothing can match: a db no key is in.
                s.dbs = vec![u64::MAX];
            }
        }
    }
    s
}

/// Asks TYPE + PTTL of keys only the live side listed and reports those still there.
fn report_live_only(
    live: &mut LiveSide,
    keys: &mut Vec<(u64, Vec<u8>)>,
    live_is_b: bool,
    other_as_of_ms: i64,
    opts: &Options,
    tally: &mut Tally<'_>,
) -> Result<(), DiffError> {
    if keys.is_empty() {
        return Ok(());
    }
    let refs: Vec<(u64, &[u8])> = keys.iter().map(|(d, k)| (*d, k.as_slice())).collect();
    let p = live.send(Query::TypePttl, &refs)?;
    let replies = live.recv(p)?;
    for ((db, key), r) in keys.iter().zip(replies) {
        let Reply::Type { kind, expire_at_ms } = r else { continue };
        let kind = match kind {
            // Deleted since the SCAN: not a difference any more.
            None => continue,
            Some(Ok(k)) => k,
            // A module type's name (TYPE answers the module's own name).
            Some(Err(_)) => Kind::Module,
        };
        let d = one_sided(*db, key, SideInfo { kind, expire_at_ms }, !live_is_b, other_as_of_ms, opts);
        tally.record(Some(d))?;
    }
    keys.clear();
    Ok(())
}
