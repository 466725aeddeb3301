//! Value type bytes, the logical kinds they decode to, and the names of on-disk encodings.

use serde::Serialize;

/// Which server family wrote the file: type 22 and opcode 243 mean different things in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// A `REDIS` magic: every Redis file, and Valkey's below version 80.
    Redis,
    /// A `VALKEY` magic (version 80 and above, Valkey 9; docs/format.md §2.2).
    Valkey,
}

/// The file's magic and version, which decide how ambiguous bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// The magic: `REDIS` or `VALKEY`.
    pub flavor: Flavor,
    /// The version digits after the magic (1 to 13 under `REDIS`, 80 under `VALKEY`).
    pub version: u32,
}

impl Format {
    /// The format of a DUMP payload, known only from its footer version (>= 80 is Valkey).
    pub fn from_dump_version(version: u16) -> Format {
        let flavor = if version >= 80 { Flavor::Valkey } else { Flavor::Redis };
        Format { flavor, version: version as u32 }
    }
}

/// The logical type of a value, as Redis's TYPE command names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `string`.
    String,
    /// `list`.
    List,
    /// `set`.
    Set,
    /// `zset` (sorted set).
    Zset,
    /// `hash`.
    Hash,
    /// `stream`.
    Stream,
    /// A module type (Redis names the module's own type; rdbtool says `module`).
    Module,
}

impl Kind {
    /// The lowercase name (`string`, `zset`, ...), as in JSON output and `--type` filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::Zset => "zset",
            Kind::Hash => "hash",
            Kind::Stream => "stream",
            Kind::Module => "module",
        }
    }
    /// The kind named by [`Kind::as_str`]'s text, exactly (lowercase); `None` for anything else.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "string" => Kind::String,
            "list" => Kind::List,
            "set" => Kind::Set,
            "zset" => Kind::Zset,
            "hash" => Kind::Hash,
            "stream" => Kind::Stream,
            "module" => Kind::Module,
            _ => return None,
        })
    }
}

/// Value type ids (the byte before the key).
pub mod id {
    /// 0: a string (`STR`).
    pub const STRING: u8 = 0;
    /// 1: a linked list of strings (Redis <= 3.0).
    pub const LIST: u8 = 1;
    /// 2: a hashtable set.
    pub const SET: u8 = 2;
    /// 3: a sorted set with text scores (Redis <= 3.2).
    pub const ZSET: u8 = 3;
    /// 4: a hashtable hash.
    pub const HASH: u8 = 4;
    /// 5: a sorted set with binary `f64le` scores, highest first (RDB 8+).
    pub const ZSET_2: u8 = 5;
    /// 6: a module value of the 4.0 release candidates, with no opcodes; refused.
    pub const MODULE_PRE_GA: u8 = 6;
    /// 7: a module value as an opcode stream (docs/format.md §7.2).
    pub const MODULE_2: u8 = 7;
    /// 9: a hash as a zipmap blob (Redis <= 2.4, docs/format.md §6.4).
    pub const HASH_ZIPMAP: u8 = 9;
    /// 10: a list as one ziplist (Redis <= 3.0, docs/format.md §6.1).
    pub const LIST_ZIPLIST: u8 = 10;
    /// 11: a set of integers as an intset (docs/format.md §6.3).
    pub const SET_INTSET: u8 = 11;
    /// 12: a sorted set as a ziplist of member, score (Redis <= 6.2).
    pub const ZSET_ZIPLIST: u8 = 12;
    /// 13: a hash as a ziplist of field, value (Redis <= 6.2).
    pub const HASH_ZIPLIST: u8 = 13;
    /// 14: a list as ziplist nodes (Redis 3.2-6.2, docs/format.md §6.5).
    pub const LIST_QUICKLIST: u8 = 14;
    /// 15: a stream, first layout (Redis 5.0-6.2, docs/format.md §6.6).
    pub const STREAM_LISTPACKS: u8 = 15;
    /// 16: a hash as a listpack of field, value (docs/format.md §6.2).
    pub const HASH_LISTPACK: u8 = 16;
    /// 17: a sorted set as a listpack of member, score.
    pub const ZSET_LISTPACK: u8 = 17;
    /// 18: a list as plain or listpack nodes (every list since 7.0, docs/format.md §6.5).
    pub const LIST_QUICKLIST_2: u8 = 18;
    /// 19: a stream with first ID, max deleted ID, entries added and entries read (7.0).
    pub const STREAM_LISTPACKS_2: u8 = 19;
    /// 20: a set as a listpack of members (7.2+).
    pub const SET_LISTPACK: u8 = 20;
    /// 21: a stream with consumer active times (Redis 7.2-8.4, Valkey).
    pub const STREAM_LISTPACKS_3: u8 = 21;
    /// Redis: HASH_METADATA_PRE_GA (7.4 RCs); Valkey >= 80: HASH_2.
    pub const HASH_22: u8 = 22;
    /// 23: a listpack hash with field TTLs, 7.4 release candidates (Redis only, docs/format.md §6.7).
    pub const HASH_LISTPACK_EX_PRE_GA: u8 = 23;
    /// 24: a hashtable hash with field TTLs (Redis 7.4+, docs/format.md §6.7).
    pub const HASH_METADATA: u8 = 24;
    /// 25: a listpack hash with field TTLs (Redis 7.4+, docs/format.md §6.7).
    pub const HASH_LISTPACK_EX: u8 = 25;
    /// 26: a stream with the idempotent-producer tail (Redis 8.6, every stream).
    pub const STREAM_LISTPACKS_4: u8 = 26;
}

/// What a value type byte means in a given format: its kind and the name of its on-disk encoding
/// (the names redis-check-rdb prints), or None when the byte is not a value type there.
pub fn describe(type_byte: u8, format: Format) -> Option<(Kind, &'static str)> {
    use id::*;
    let valkey = format.flavor == Flavor::Valkey;
    Some(match type_byte {
        STRING => (Kind::String, "string"),
        LIST => (Kind::List, "list-linked"),
        SET => (Kind::Set, "set-hashtable"),
        ZSET => (Kind::Zset, "zset-v1"),
        HASH => (Kind::Hash, "hash-hashtable"),
        ZSET_2 => (Kind::Zset, "zset-v2"),
        MODULE_PRE_GA => (Kind::Module, "module-pre-release"),
        MODULE_2 => (Kind::Module, "module-value"),
        HASH_ZIPMAP => (Kind::Hash, "hash-zipmap"),
        LIST_ZIPLIST => (Kind::List, "list-ziplist"),
        SET_INTSET => (Kind::Set, "set-intset"),
        ZSET_ZIPLIST => (Kind::Zset, "zset-ziplist"),
        HASH_ZIPLIST => (Kind::Hash, "hash-ziplist"),
        LIST_QUICKLIST => (Kind::List, "quicklist"),
        STREAM_LISTPACKS => (Kind::Stream, "stream"),
        HASH_LISTPACK => (Kind::Hash, "hash-listpack"),
        ZSET_LISTPACK => (Kind::Zset, "zset-listpack"),
        LIST_QUICKLIST_2 => (Kind::List, "quicklist-v2"),
        STREAM_LISTPACKS_2 => (Kind::Stream, "stream-v2"),
        SET_LISTPACK => (Kind::Set, "set-listpack"),
        STREAM_LISTPACKS_3 => (Kind::Stream, "stream-v3"),
        HASH_22 if valkey => (Kind::Hash, "hash-hashtable-ttl"),
        HASH_22 => (Kind::Hash, "hash-hashtable-md-pre-ga"),
        HASH_LISTPACK_EX_PRE_GA if !valkey => (Kind::Hash, "hash-listpack-md-pre-ga"),
        HASH_METADATA if !valkey => (Kind::Hash, "hash-hashtable-md"),
        HASH_LISTPACK_EX if !valkey => (Kind::Hash, "hash-listpack-md"),
        STREAM_LISTPACKS_4 if !valkey => (Kind::Stream, "stream-v4"),
        _ => return None,
    })
}

/// The first Redis RDB version whose files can hold this value type. A file that declares an
/// older version but holds the type has a damaged header (RDB < 5 has no checksum to catch it).
pub fn min_version_of_type(type_byte: u8) -> u32 {
    use id::*;
    match type_byte {
        STRING | LIST | SET | ZSET | HASH => 1,
        HASH_ZIPMAP | LIST_ZIPLIST | SET_INTSET | ZSET_ZIPLIST => 2,
        HASH_ZIPLIST => 4,
        LIST_QUICKLIST => 7,
        ZSET_2 | MODULE_PRE_GA | MODULE_2 => 8,
        STREAM_LISTPACKS => 9,
        HASH_LISTPACK | ZSET_LISTPACK | LIST_QUICKLIST_2 | STREAM_LISTPACKS_2 => 10,
        SET_LISTPACK | STREAM_LISTPACKS_3 => 11,
        HASH_22 | HASH_LISTPACK_EX_PRE_GA | HASH_METADATA | HASH_LISTPACK_EX => 12,
        _ => 13,
    }
}
