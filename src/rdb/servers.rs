//! Which server releases restore a file: the one table of what each Redis and Valkey release
//! reads (magic, RDB versions, record formats), used by `verify --target` and `restorable_by`,
//! and by the writers' target versions (`merge --rdb-version redis-7.0`, `export
//! --target-rdb-version valkey-8.1`).
//!
//! What a release reads, in short (docs/format.md has the details):
//! - Redis reads `REDIS` files of RDB version 1 up to its own and refuses newer ones, even when no
//!   new feature is used. It never reads the `VALKEY` magic.
//! - Valkey 7.2 to 8.1 read `REDIS` files up to RDB 11. Valkey 9 also reads its own `VALKEY080`;
//!   Redis's RDB 12 and later are "foreign" there and refused unless the server runs with
//!   `rdb-version-check relaxed` (not the default, so not assumed here).
//! - Function libraries in the Redis 7.0 release-candidate format (opcode 246) load in Redis 7.0.x
//!   only; later Redis and every Valkey refuse the whole file.
//! - Module values and module AUX records need their module loaded in the target: a requirement
//!   we name, not a refusal we can decide (Redis 8.0 and later carry the `vectorset` type inside).

use serde::Serialize;

use crate::rdb::types::Flavor;

/// One release line of a server (patch releases read the same files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// Redis or Valkey.
    pub flavor: Flavor,
    /// Major version (`7` of 7.2).
    pub major: u32,
    /// Minor version (`2` of 7.2).
    pub minor: u32,
    /// The newest `REDIS` RDB version it reads (and writes, for Redis).
    pub redis_rdb: u32,
    /// The newest `VALKEY` version it reads (Valkey 9: 80).
    pub valkey_rdb: Option<u32>,
}

const fn redis(major: u32, minor: u32, rdb: u32) -> Release {
    Release { flavor: Flavor::Redis, major, minor, redis_rdb: rdb, valkey_rdb: None }
}

const fn valkey(major: u32, minor: u32, rdb: u32, valkey_rdb: Option<u32>) -> Release {
    Release { flavor: Flavor::Valkey, major, minor, redis_rdb: rdb, valkey_rdb }
}

/// Every release line we know, oldest first per server.
pub const RELEASES: &[Release] = &[
    redis(2, 6, 6),
    redis(2, 8, 6),
    redis(3, 0, 6),
    redis(3, 2, 7),
    redis(4, 0, 8),
    redis(5, 0, 9),
    redis(6, 0, 9),
    redis(6, 2, 9),
    redis(7, 0, 10),
    redis(7, 2, 11),
    redis(7, 4, 12),
    redis(8, 0, 12),
    redis(8, 2, 12),
    redis(8, 4, 12),
    redis(8, 6, 13),
    valkey(7, 2, 11, None),
    valkey(8, 0, 11, None),
    valkey(8, 1, 11, None),
    valkey(9, 0, 11, Some(80)),
    valkey(9, 1, 11, Some(80)),
];

impl Release {
    /// `redis` or `valkey`.
    pub fn server(&self) -> &'static str {
        match self.flavor {
            Flavor::Redis => "redis",
            Flavor::Valkey => "valkey",
        }
    }

    /// `7.2`.
    pub fn version(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }

    /// `redis-7.2`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.server(), self.version())
    }

    /// The RDB version this release writes (what `--rdb-version redis-7.0` means).
    pub fn writes(&self) -> (Flavor, u32) {
        match self.valkey_rdb {
            Some(v) => (Flavor::Valkey, v),
            None => (Flavor::Redis, self.redis_rdb),
        }
    }
}

/// `redis-7.0`, `redis-7.2.4`, `valkey-9.1`, `Redis 8.6` (case and separator are free).
pub fn parse_release(s: &str) -> Result<Release, String> {
    let t = s.trim().to_ascii_lowercase();
    let (server, ver) = t
        .split_once(['-', ' ', '@', ':', '/'])
        .or_else(|| t.find(|c: char| c.is_ascii_digit()).map(|i| (&t[..i], &t[i..])))
        .ok_or_else(|| unknown(s))?;
    let flavor = match server.trim() {
        "redis" => Flavor::Redis,
        "valkey" => Flavor::Valkey,
        _ => return Err(unknown(s)),
    };
    let mut parts = ver.trim().split('.');
    let num = |p: Option<&str>| p.and_then(|x| x.parse::<u32>().ok());
    let (Some(major), minor) = (num(parts.next()), parts.next()) else { return Err(unknown(s)) };
    let minor = match minor {
        Some(m) => m.parse::<u32>().map_err(|_| unknown(s))?,
        None => 0,
    };
    if parts.clone().any(|p| p.parse::<u32>().is_err()) {
        return Err(unknown(s));
    }
    RELEASES
        .iter()
        .find(|r| r.flavor == flavor && r.major == major && r.minor == minor)
        .copied()
        .ok_or_else(|| unknown(s))
}

fn unknown(s: &str) -> String {
    let names: Vec<String> = RELEASES.iter().map(Release::name).collect();
    format!("{s:?}: not a server release we know; one of {}", names.join(", "))
}

/// The RDB version to write for a target: a number (1 to 13, or 80 for Valkey 9) or a release
/// (`redis-7.0` writes RDB 10, `valkey-9.1` writes VALKEY080). The one parser of
/// `--rdb-version` for every command that writes RDB data.
pub fn parse_rdb_target(s: &str) -> Result<crate::rdb::types::Format, String> {
    let t = s.trim();
    if let Ok(v) = t.parse::<u32>() {
        return crate::rdb::writer::target_format(v).ok_or_else(|| {
            format!(
                "{v}: not an RDB version a server reads (1 to 13, or 80 for Valkey 9), nor a release such as redis-7.0"
            )
        });
    }
    let r = parse_release(t)?;
    let (flavor, version) = r.writes();
    Ok(crate::rdb::types::Format { flavor, version })
}

/// What a file needs from the server that loads it, gathered while it is verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// `REDIS` or `VALKEY` magic; `None` until a header was read.
    pub flavor: Option<Flavor>,
    /// The version in the header.
    pub version: u32,
    /// Function libraries in the Redis 7.0 release-candidate format (opcode 246).
    pub function_pre_ga: bool,
    /// Module type names of module values and module AUX records.
    pub modules: std::collections::BTreeSet<String>,
    /// The highest database number used.
    pub max_db: Option<u64>,
}

/// Modules built into the server from some release on.
fn built_in(module: &str, r: &Release) -> bool {
    module == "vectorset" && r.flavor == Flavor::Redis && (r.major, r.minor) >= (8, 0)
}

impl Needs {
    /// Why release `r` refuses the file, if it does, in words that do not name the release (so
    /// that releases refusing for the same reason group together). Modules and database counts
    /// are requirements (`requirements`), not refusals.
    pub fn refusal(&self, r: &Release) -> Option<String> {
        let v = self.version;
        match self.flavor? {
            Flavor::Valkey => match r.valkey_rdb {
                None => return Some("it does not read the VALKEY magic of Valkey 9 files".into()),
                Some(max) if v > max => return Some(format!("it reads VALKEY{max:03} at most, not VALKEY{v:03}")),
                Some(_) => {}
            },
            Flavor::Redis if v > r.redis_rdb => {
                return Some(if r.valkey_rdb.is_some() {
                    format!("RDB {v} is a foreign version to it (Redis 7.4+), read only with rdb-version-check relaxed")
                } else {
                    format!("RDB {v} is newer than the RDB versions it reads")
                });
            }
            Flavor::Redis => {}
        }
        if self.function_pre_ga && !(r.flavor == Flavor::Redis && r.major == 7 && r.minor == 0) {
            return Some(
                "it refuses function libraries in the Redis 7.0 release-candidate format (opcode 246); only Redis 7.0.x loads them"
                    .into(),
            );
        }
        None
    }

    /// What release `r` must have besides reading the file: modules loaded, more databases.
    pub fn requirements(&self, r: &Release) -> Vec<String> {
        let mut out: Vec<String> =
            self.modules.iter().filter(|m| !built_in(m, r)).map(|m| format!("the module of type {m} loaded")).collect();
        if let Some(db) = self.max_db.filter(|&d| d >= 16) {
            out.push(format!("`databases` > {db} (default 16)"));
        }
        out
    }

    /// The verdict for release `r`: what it needs besides, or why it refuses.
    pub fn verdict(&self, r: &Release) -> Result<Vec<String>, String> {
        match self.refusal(r) {
            Some(why) => Err(why),
            None => Ok(self.requirements(r)),
        }
    }
}

/// A range of releases of one server that restore a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restorable {
    /// `redis` or `valkey`.
    pub server: &'static str,
    /// The oldest release of the range (`7.2`).
    pub min: String,
    /// Absent when every later release we know restores it too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
    /// What those releases need besides (modules, databases).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
}

/// Releases of one server that refuse a file, for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocking {
    /// `redis` or `valkey`.
    pub server: &'static str,
    /// The oldest release of the range (`2.6`).
    pub min: String,
    /// The newest release of the range (may equal `min`).
    pub max: String,
    /// Why they refuse it ([`Needs::refusal`]).
    pub reason: String,
}

/// Which releases restore a file with `needs`, and why the others do not: consecutive releases
/// of a server with the same verdict are grouped.
pub fn restorable_by(needs: &Needs) -> (Vec<Restorable>, Vec<Blocking>) {
    let mut ok: Vec<Restorable> = Vec::new();
    let mut blocking: Vec<Blocking> = Vec::new();
    for flavor in [Flavor::Redis, Flavor::Valkey] {
        let line: Vec<&Release> = RELEASES.iter().filter(|r| r.flavor == flavor).collect();
        let mut prev: Option<Result<Vec<String>, String>> = None;
        for (i, r) in line.iter().enumerate() {
            let verdict = needs.verdict(r);
            let newest = i + 1 == line.len();
            let same = prev.as_ref() == Some(&verdict);
            match (&verdict, same) {
                (Ok(_), true) => ok.last_mut().expect("a range was opened").max = (!newest).then(|| r.version()),
                (Ok(requires), false) => ok.push(Restorable {
                    server: r.server(),
                    min: r.version(),
                    max: (!newest).then(|| r.version()),
                    requires: requires.clone(),
                }),
                (Err(_), true) => blocking.last_mut().expect("a range was opened").max = r.version(),
                (Err(why), false) => blocking.push(Blocking {
                    server: r.server(),
                    min: r.version(),
                    max: r.version(),
                    reason: why.clone(),
                }),
            }
            prev = Some(verdict);
        }
    }
    (ok, blocking)
}

/// `Redis 7.0`, `Valkey 9.1`.
pub fn display(r: &Release) -> String {
    format!("{} {}", if r.flavor == Flavor::Redis { "Redis" } else { "Valkey" }, r.version())
}

/// `redis ≥ 7.2, valkey ≥ 7.2` (or `redis 7.0` for a single release, `none`).
pub fn summary(ranges: &[Restorable]) -> String {
    if ranges.is_empty() {
        return "none".into();
    }
    ranges
        .iter()
        .map(|r| match &r.max {
            None => format!("{} ≥ {}", r.server, r.min),
            Some(m) if *m == r.min => format!("{} {}", r.server, r.min),
            Some(m) => format!("{} {}-{}", r.server, r.min, m),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(flavor: Flavor, version: u32) -> Needs {
        Needs { flavor: Some(flavor), version, ..Needs::default() }
    }

    #[test]
    fn parse() {
        assert_eq!(parse_release("redis-7.0").unwrap(), redis(7, 0, 10));
        assert_eq!(parse_release("redis-7.2.4").unwrap(), redis(7, 2, 11));
        assert_eq!(parse_release("Valkey 9.1").unwrap().valkey_rdb, Some(80));
        assert_eq!(parse_release("redis8.6").unwrap().redis_rdb, 13);
        for bad in ["redis-9.9", "keydb-6.0", "redis", "redis-7.x", ""] {
            assert!(parse_release(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        let (ok, blocking) = restorable_by(&needs(Flavor::Redis, 11));
        assert_eq!(summary(&ok), "redis ≥ 7.2, valkey ≥ 7.2");
        assert_eq!(blocking.len(), 1);
        assert_eq!((blocking[0].min.as_str(), blocking[0].max.as_str()), ("2.6", "7.0"));
        let (ok, _) = restorable_by(&needs(Flavor::Redis, 12));
        assert_eq!(summary(&ok), "redis ≥ 7.4");
        let (ok, _) = restorable_by(&needs(Flavor::Valkey, 80));
        assert_eq!(summary(&ok), "valkey ≥ 9.0");
        let (ok, _) = restorable_by(&needs(Flavor::Redis, 6));
        assert_eq!(summary(&ok), "redis ≥ 2.6, valkey ≥ 7.2");
        let mut n = needs(Flavor::Redis, 10);
        n.function_pre_ga = true;
        let (ok, blocking) = restorable_by(&n);
        assert_eq!(summary(&ok), "redis 7.0");
        assert_eq!(blocking.len(), 3, "{blocking:?}");
        let (ok, _) = restorable_by(&needs(Flavor::Redis, 14));
        assert!(ok.is_empty());
    }

    #[test]
    fn modules_are_requirements() {
        let mut n = needs(Flavor::Redis, 11);
        n.modules.insert("vectorset".into());
        n.modules.insert("ReJSON-RL".into());
        let (ok, _) = restorable_by(&n);
        assert_eq!(ok.len(), 3, "{ok:?}");
        assert_eq!(
            ok[0].requires,
            vec!["the module of type ReJSON-RL loaded".to_owned(), "the module of type vectorset loaded".to_owned()]
        );
        assert_eq!((ok[0].min.as_str(), ok[0].max.as_deref()), ("7.2", Some("7.4")));
        assert_eq!((ok[1].min.as_str(), ok[1].max.as_deref()), ("8.0", None));
        assert_eq!(ok[2].server, "valkey");
        let r = parse_release("redis-8.0").unwrap();
        assert_eq!(n.requirements(&r), vec!["the module of type ReJSON-RL loaded".to_owned()]);
    }
}
