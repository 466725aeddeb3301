//! Which commands may stand in an AOF, judged by the flags of Redis's own command table.
//!
//! Redis writes to the AOF what it propagates: commands flagged `write`, the MULTI / EXEC around
//! transactions and scripts, and SELECT. When it loads an AOF it runs every command through a
//! client with no connection, whatever the command is. A file with `REPLICAOF host port` makes
//! the loading server connect out and ask for a sync; `CONFIG SET dir` followed by a save writes a
//! file anywhere; `MIGRATE` sends keys to another server. Redis never writes any of these, so an
//! AOF holding one was edited or crafted: `verify` refuses it, and so the tools that replay an
//! AOF in a throwaway server (`aof to-rdb`, `restore-test`) never run one.
//!
//! The lists come from `COMMAND` of a real server (`command_table.rs`, generated). Commands that
//! Redis does not know at all are a warning, not an error: a module's commands are written to the
//! AOF too, and the restoring server then needs the module loaded (without it, Redis stops with
//! "Unknown command ... reading the append only file").

use super::command_table::{ADMIN, CONTAINERS, OTHER, WRITE};

/// What an AOF may hold beyond the `write` commands of the table: the transaction and db
/// commands, what older servers wrote verbatim (scripts and their cache before Redis 7.0 made
/// effects replication the only mode; PFCOUNT, which propagates when it updates the cached
/// cardinality), and write commands newer than the table's server.
const ALSO_LOGGED: &[&str] = &[
    "multi",
    "exec",
    "select",
    "eval",
    "evalsha",
    "fcall",
    "script|load",
    "script|flush",
    "pfcount",
    // Redis 7.4: hash field TTLs.
    "hexpire",
    "hpexpire",
    "hexpireat",
    "hpexpireat",
    "hpersist",
    // Redis 8.0: hash commands with TTLs, vector sets.
    "hsetex",
    "hgetex",
    "hgetdel",
    "vadd",
    "vrem",
    "vsetattr",
    // Redis 8.2: stream deletes with consumer-group policies.
    "xackdel",
    "xdelex",
    // Redis 8.4 / 8.6: MSET with a TTL, conditional DEL, stream idempotency settings.
    "msetex",
    "delex",
    "xcfgset",
    // Valkey 9.0.
    "delifeq",
];

/// Flagged `write` but never logged, and dangerous to replay: Redis logs the DEL that MIGRATE
/// leaves behind, not MIGRATE, which would connect to the server it names.
const NEVER_LOGGED_WRITE: &[&str] = &["migrate"];

/// Not flagged `admin` but never logged, and harmful to replay: they stop a running script or
/// function (nothing runs during a load) or wait for replicas.
const NEVER_LOGGED_OTHER: &[&str] = &["script|kill", "function|kill", "wait", "monitor", "sync", "psync"];

/// The verdict on one command of an AOF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Something Redis writes to an AOF.
    Logged,
    /// Loadable, but not something Redis writes (a read, a module's command): a warning.
    Odd(String),
    /// Something Redis never writes and that acts outside the dataset when replayed: an error.
    Refused(String),
}

/// The lower-case form of a command word, in `buf`; `None` for what cannot be a command name
/// (command names are short ASCII words).
fn lower<'b>(word: &[u8], buf: &'b mut [u8; 64]) -> Option<&'b str> {
    if word.len() > buf.len() || !word.iter().all(|c| c.is_ascii_graphic() && *c != b'|') {
        return None;
    }
    let out = &mut buf[..word.len()];
    for (o, c) in out.iter_mut().zip(word) {
        *o = c.to_ascii_lowercase();
    }
    std::str::from_utf8(out).ok()
}

/// In one of the generated (sorted) lists.
fn listed(list: &[&str], name: &str) -> bool {
    list.binary_search(&name).is_ok()
}

/// Judges the command `argv` (name first) of an AOF. Allocates only for what is not `Logged`.
pub fn judge(argv: &[&[u8]]) -> Judgement {
    let Some(first) = argv.first() else { return Judgement::Odd("an empty command".into()) };
    let mut b1 = [0u8; 64];
    let Some(name) = lower(first, &mut b1) else {
        return Judgement::Odd(format!("{}: not a command name Redis knows", crate::display::quoted(first)));
    };
    // The full name: `container|sub` for container commands.
    let mut b2 = [0u8; 130];
    let mut full: &str = name;
    if listed(CONTAINERS, name) {
        let mut b3 = [0u8; 64];
        if let Some(sub) = argv.get(1).and_then(|s| lower(s, &mut b3)) {
            let n = name.len();
            b2[..n].copy_from_slice(name.as_bytes());
            b2[n] = b'|';
            b2[n + 1..n + 1 + sub.len()].copy_from_slice(sub.as_bytes());
            full = std::str::from_utf8(&b2[..n + 1 + sub.len()]).unwrap_or(name);
        }
    }
    if listed(WRITE, full) && !NEVER_LOGGED_WRITE.contains(&full) || ALSO_LOGGED.contains(&full) {
        return Judgement::Logged;
    }
    let upper = full.replace('|', " ").to_ascii_uppercase();
    if NEVER_LOGGED_WRITE.contains(&full) {
        return Judgement::Refused(format!(
            "{upper}: Redis never writes it to an AOF (it logs the DEL that MIGRATE leaves behind); replaying it would connect to another server"
        ));
    }
    let admin_container =
        full != name && ADMIN.iter().any(|c| c.strip_prefix(name).is_some_and(|r| r.starts_with('|')));
    if listed(ADMIN, full) || NEVER_LOGGED_OTHER.contains(&full) || (admin_container && !listed(OTHER, full)) {
        return Judgement::Refused(format!(
            "{upper}: an administrative command, which Redis never writes to an AOF; replaying it would act on the restoring server itself (configuration, replication, users, modules, cluster)"
        ));
    }
    if listed(OTHER, full) {
        return Judgement::Odd(format!("{upper}: Redis does not write it to an AOF (replaying it changes nothing)"));
    }
    if full != name {
        return Judgement::Odd(format!(
            "{upper}: not a subcommand Redis knows (Redis stops loading at an unknown command)"
        ));
    }
    Judgement::Odd(format!(
        "{upper}: not a command of Redis 7.0 (a module's command, or a newer server's): the restoring server must know it, or it stops loading"
    ))
}

/// FLUSHALL, FLUSHDB, or a DEL / UNLINK of this many keys or more: worth a warning when a cut
/// to a time keeps one logged in its last second.
pub const MASS_DELETE: usize = 100;

/// Is this command one that destroys much of the dataset at once?
pub fn is_destructive(argv: &[&[u8]]) -> bool {
    let Some(name) = argv.first() else { return false };
    let n = name.to_ascii_lowercase();
    matches!(n.as_slice(), b"flushall" | b"flushdb")
        || (matches!(n.as_slice(), b"del" | b"unlink") && argv.len() > MASS_DELETE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(cmd: &str) -> Judgement {
        let parts: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
        judge(&parts)
    }

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for l in [WRITE, ADMIN, OTHER, CONTAINERS] {
            assert!(l.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn what_redis_writes_is_logged() {
        for c in [
            "SET k v",
            "set k v PXAT 1",
            "MULTI",
            "EXEC",
            "SELECT 2",
            "FUNCTION LOAD x",
            "XGROUP CREATE s g $",
            "EVAL x 0",
            "HEXPIRE h 1 FIELDS 1 f",
            "RESTORE k 0 x",
            "SCRIPT LOAD x",
        ] {
            assert_eq!(j(c), Judgement::Logged, "{c}");
        }
    }

    #[test]
    fn administration_is_refused() {
        for c in [
            "REPLICAOF 127.0.0.1 1",
            "slaveof h 1",
            "CONFIG SET dir /tmp",
            "CONFIG FOO",
            "ACL SETUSER x on",
            "MODULE LOAD /x.so",
            "DEBUG SLEEP 0",
            "SHUTDOWN",
            "MIGRATE h 1 k 0 1",
            "CLUSTER MEET h 1",
            "FAILOVER",
            "SCRIPT KILL",
            "BGSAVE",
            "SAVE",
            "CLIENT KILL x",
            "SYNC",
            "PFDEBUG GETREG k",
        ] {
            assert!(matches!(j(c), Judgement::Refused(_)), "{c}: {:?}", j(c));
        }
    }

    #[test]
    fn reads_and_unknown_commands_are_odd() {
        for c in ["GET k", "PING", "JSON.SET k $ 1", "XINFO STREAM s", "\u{1}"] {
            assert!(matches!(j(c), Judgement::Odd(_)), "{c}: {:?}", j(c));
        }
    }
}
