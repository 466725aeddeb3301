//! `rdbtool verify --tree`: a backup tree written by real redis-servers (three standalone
//! instances and a real 3-master cluster, two days each) with the damage a backup job meets:
//! a truncated file, a flipped byte, an empty file, a non-RDB `.rdb`, a missing shard, a slot in
//! two shard files and an instance whose key count dropped by half. Each is reported as such in
//! the table, the JSON and the Prometheus metrics (checked by `promtool` when installed).

mod common;
use common::rdbtool;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{RedisServer, Resp};
use serde_json::Value as Json;

const DAY1: i64 = 1_790_000_000;
const DAY2: i64 = DAY1 + 86_400;
const NOW: i64 = DAY2 + 3_600;
const LAYOUT: &str = "Backup_{instance}/{date}/{task}/*.rdb";

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(r: &Resp) -> bool {
    !matches!(r, Resp::Error(_))
}

/// `n` string keys `prefix:i` through MSET.
fn fill(srv: &RedisServer, prefix: &str, n: usize) {
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}:{i}")).collect();
    for chunk in keys.chunks(200) {
        let mut args: Vec<&[u8]> = vec![b"MSET"];
        for k in chunk {
            args.push(k.as_bytes());
            args.push(b"some value");
        }
        let r = srv.cmd(&args);
        assert!(ok(&r), "{r:?}");
    }
}

/// SAVE, then the dump copied to `dest` with the modification time `mtime`.
fn save(srv: &RedisServer, dest: &Path, mtime: i64) {
    let r = srv.cmd(&[b"SAVE"]);
    assert!(ok(&r), "{r:?}");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(srv.path().join("dump.rdb"), dest).unwrap();
    set_mtime(dest, mtime);
}

fn set_mtime(p: &Path, t: i64) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64)).unwrap();
}

fn file(root: &Path, instance: &str, date: &str, name: &str) -> PathBuf {
    root.join(format!("Backup_{instance}/{date}/t1/{name}"))
}

/// A 3-master cluster (the library's throwaway cluster, slots split in order as `redis-cli
/// --cluster create` splits them); `n` keys written to the master of their slot.
fn cluster(n: usize) -> Option<Vec<RedisServer>> {
    let nodes = RedisServer::cluster(3, &[])?;
    let by_port: BTreeMap<u16, usize> = nodes.iter().enumerate().map(|(i, n)| (n.port, i)).collect();
    for i in 0..n {
        let key = format!("user:{i}");
        let mut at = 0;
        loop {
            match nodes[at].cmd(&[b"SET", key.as_bytes(), b"v"]) {
                Resp::Error(e) if e.starts_with("MOVED") => {
                    let port: u16 = e.rsplit(':').next().unwrap().trim().parse().unwrap();
                    at = by_port[&port];
                }
                r => {
                    assert!(ok(&r), "{r:?}");
                    break;
                }
            }
        }
    }
    Some(nodes)
}

/// The tree. Instances: `ok` (grows), `half` (drops by half), `damaged` (day 1 truncated, day 2
/// a flipped byte), `empty` (day 2 an empty file), `junk` (day 2 not an RDB), `c1` (a cluster,
/// day 2 missing a shard), `c2` (a cluster, day 2 with a key of one shard's slot in another).
fn build(root: &Path) -> Option<()> {
    let srv = RedisServer::start(&[])?;
    fill(&srv, "a", 1000);
    save(&srv, &file(root, "ok", "2026-11-27", "dump.rdb"), DAY1);
    fill(&srv, "b", 100);
    save(&srv, &file(root, "ok", "2026-11-28", "dump.rdb"), DAY2);

    let srv = RedisServer::start(&[])?;
    fill(&srv, "a", 1000);
    save(&srv, &file(root, "half", "2026-11-27", "dump.rdb"), DAY1);
    srv.cmd(&[b"FLUSHALL"]);
    fill(&srv, "a", 500);
    save(&srv, &file(root, "half", "2026-11-28", "dump.rdb"), DAY2);

    let srv = RedisServer::start(&[])?;
    fill(&srv, "d", 300);
    for (date, t) in [("2026-11-27", DAY1), ("2026-11-28", DAY2)] {
        save(&srv, &file(root, "damaged", date, "dump.rdb"), t);
        for inst in ["empty", "junk"] {
            save(&srv, &file(root, inst, date, "dump.rdb"), t);
        }
    }
    let p = file(root, "damaged", "2026-11-27", "dump.rdb");
    let data = std::fs::read(&p).unwrap();
    std::fs::write(&p, &data[..data.len() / 2]).unwrap();
    set_mtime(&p, DAY1);
    let p = file(root, "damaged", "2026-11-28", "dump.rdb");
    let mut data = std::fs::read(&p).unwrap();
    // Inside a value (the keys' order in the file varies between runs): only the CRC tells.
    let at = data.windows(10).position(|w| w == b"some value").unwrap();
    data[at] ^= 0x01;
    std::fs::write(&p, &data).unwrap();
    set_mtime(&p, DAY2);
    let p = file(root, "empty", "2026-11-28", "dump.rdb");
    std::fs::write(&p, b"").unwrap();
    set_mtime(&p, DAY2);
    let p = file(root, "junk", "2026-11-28", "dump.rdb");
    std::fs::write(&p, b"<html>403 Forbidden</html>\n").unwrap();
    set_mtime(&p, DAY2);

    let nodes = cluster(600)?;
    for (i, n) in nodes.iter().enumerate() {
        for inst in ["c1", "c2"] {
            save(n, &file(root, inst, "2026-11-27", &format!("shard-{i}.rdb")), DAY1);
            if inst == "c1" && i == 2 {
                continue; // the missing shard
            }
            save(n, &file(root, inst, "2026-11-28", &format!("shard-{i}.rdb")), DAY2);
        }
    }
    // A key left behind on shard 2 by an unfinished resharding: its slot is shard 0's.
    let stale = (0..600)
        .map(|i| format!("user:{i}"))
        .find(|k| matches!(nodes[0].cmd(&[b"CLUSTER", b"KEYSLOT", k.as_bytes()]), Resp::Int(s) if s <= 5460))?;
    let srv = RedisServer::start_with_rdb(&file(root, "c2", "2026-11-28", "shard-2.rdb"), &[])?;
    srv.cmd(&[b"SET", stale.as_bytes(), b"stale"]);
    save(&srv, &file(root, "c2", "2026-11-28", "shard-2.rdb"), DAY2);
    Some(())
}

fn instance<'a>(doc: &'a Json, name: &str) -> &'a Json {
    doc["instances"].as_array().unwrap().iter().find(|i| i["instance"] == name).unwrap_or_else(|| panic!("{name}"))
}

fn problems(inst: &Json) -> String {
    inst["sets"].as_array().unwrap().last().unwrap()["problems"].to_string()
}

/// `name{labels} value` lines of a metrics file: (name, labels) -> value.
fn metrics(text: &str) -> BTreeMap<(String, String), f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap();
            ((name.to_owned(), labels.trim_end_matches('}').to_owned()), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn backup_tree_sets_shards_trends_and_metrics() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("backups");
    if build(&root).is_none() {
        return;
    }
    let r = root.to_str().unwrap();
    let prom = d.path().join("rdbtool.prom");
    let now = NOW.to_string();
    let args = ["verify", "--tree", r, "--layout", LAYOUT, "--max-drop", "20%", "--now", &now];
    let o = rdbtool(&[&args[..], &["--metrics", prom.to_str().unwrap()]].concat());
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let row = |inst: &str| {
        t.lines()
            .find(|l| l.starts_with(&format!("{inst} ")) && l.contains("2026-11-28"))
            .unwrap_or_else(|| panic!("{inst}: {t}"))
            .to_owned()
    };
    assert!(row("ok").contains(" OK ") && row("ok").contains("keys +10.0%"), "{t}");
    assert!(row("half").contains("FAIL") && row("half").contains("keys -50.0%"), "{t}");
    for inst in ["damaged", "empty", "junk", "c1", "c2"] {
        assert!(row(inst).contains("FAIL"), "{inst}: {t}");
    }
    assert!(t.contains("keys dropped 50.0% since 2026-11-27/t1 (--max-drop 20%)"), "{t}");
    assert!(t.contains("dump.rdb: invalid: ") && t.contains("CRC-64"), "flipped byte: {t}");
    assert!(t.contains("2 file(s), the previous set (2026-11-27/t1) had 3: a missing or extra shard?"), "{t}");
    assert!(t.contains("have keys in both shard-0.rdb and shard-2.rdb"), "{t}");
    assert!(t.contains("coverage unknown"), "Redis 7.0 writes no SLOT_INFO: {t}");

    let o = rdbtool(&[&args[..], &["--json"]].concat());
    assert_eq!(o.status.code(), Some(1));
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(instance(&doc, "ok")["ok"], true);
    for inst in ["half", "damaged", "empty", "junk", "c1", "c2"] {
        assert_eq!(instance(&doc, inst)["ok"], false, "{inst}");
    }
    let day1 = |inst: &str| instance(&doc, inst)["sets"][0].clone();
    assert_eq!(day1("damaged")["ok"], false, "truncated");
    assert!(day1("damaged")["files"][0]["reason"].as_str().unwrap().contains("truncated"), "{}", day1("damaged"));
    assert_eq!(day1("c1")["ok"], true);
    let half = instance(&doc, "half");
    let trend = &half["sets"][1]["trend"];
    assert_eq!((trend["previous_keys"].as_u64(), half["sets"][1]["keys"].as_u64()), (Some(1000), Some(500)));
    assert_eq!(trend["keys_change_pct"], -50.0);
    assert!(problems(instance(&doc, "empty")).contains("dump.rdb: invalid"), "{}", problems(instance(&doc, "empty")));
    assert!(problems(instance(&doc, "junk")).contains("not an RDB file"), "{}", problems(instance(&doc, "junk")));
    let c2 = &instance(&doc, "c2")["sets"][1]["shards"];
    assert_eq!(c2["overlaps"].as_array().unwrap().len(), 1, "{c2}");
    assert_eq!(c2["coverage"], "unknown");
    let c1 = &instance(&doc, "c1")["sets"][0]["shards"];
    let ranges: Vec<&str> = c1["ranges"].as_array().unwrap().iter().map(|r| r[1].as_str().unwrap()).collect();
    // Each shard's keys lie in its master's slot range (redis-cli --cluster create's split).
    for (i, (lo, hi)) in [(0u32, 5460u32), (5461, 10922), (10923, 16383)].iter().enumerate() {
        for part in ranges[i].split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            assert!(
                (*lo..=*hi).contains(&a.parse().unwrap()) && (*lo..=*hi).contains(&b.parse().unwrap()),
                "{ranges:?}"
            );
        }
    }
    assert_eq!(doc["summary"]["instances"], 7);
    assert_eq!(doc["summary"]["sets"], 14);

    // Metrics: the newest set of each instance.
    let m_text = std::fs::read_to_string(&prom).unwrap();
    if Command::new("promtool").arg("--version").output().is_ok() {
        let o = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&prom).unwrap())
            .output()
            .unwrap();
        assert!(o.status.success(), "promtool: {}{}", text(&o), String::from_utf8_lossy(&o.stderr));
        assert!(
            o.stdout.is_empty() && o.stderr.is_empty(),
            "promtool lint: {}{}",
            text(&o),
            String::from_utf8_lossy(&o.stderr)
        );
    } else {
        assert!(std::env::var("CI").ok().as_deref() != Some("true"), "promtool missing under CI (.ci/run installs it)");
        common::skip("promtool (Debian package prometheus) not installed: metrics not checked by a real parser");
    }
    let m = metrics(&m_text);
    let file_labels = |inst: &str, name: &str| {
        let f = file(&root, inst, "2026-11-28", name);
        format!("instance=\"{inst}\",set=\"2026-11-28/t1\",file=\"{}\"", f.display())
    };
    let get = |metric: &str, labels: String| {
        m.get(&(metric.to_owned(), labels.clone())).copied().unwrap_or_else(|| panic!("{metric}{{{labels}}}: {m_text}"))
    };
    assert_eq!(get("rdbtool_backup_ok", file_labels("ok", "dump.rdb")), 1.0);
    assert_eq!(get("rdbtool_backup_ok", file_labels("damaged", "dump.rdb")), 0.0);
    assert_eq!(get("rdbtool_backup_ok", file_labels("empty", "dump.rdb")), 0.0);
    assert_eq!(get("rdbtool_backup_ok", file_labels("junk", "dump.rdb")), 0.0);
    assert_eq!(get("rdbtool_backup_keys", file_labels("half", "dump.rdb")), 500.0);
    assert_eq!(get("rdbtool_backup_bytes", file_labels("junk", "dump.rdb")), 27.0);
    assert_eq!(get("rdbtool_backup_age_seconds", file_labels("ok", "dump.rdb")), 3600.0);
    assert!(get("rdbtool_backup_verify_seconds", file_labels("ok", "dump.rdb")) >= 0.0);
    let set = |inst: &str| format!("instance=\"{inst}\",set=\"2026-11-28/t1\"");
    assert_eq!(get("rdbtool_backup_set_ok", set("ok")), 1.0);
    for inst in ["half", "c1", "c2"] {
        assert_eq!(get("rdbtool_backup_set_ok", set(inst)), 0.0, "{inst}");
    }
    let inst = |i: &str| format!("instance=\"{i}\"");
    assert_eq!(get("rdbtool_backup_last_success_timestamp_seconds", inst("ok")), DAY2 as f64);
    assert_eq!(get("rdbtool_backup_last_success_timestamp_seconds", inst("half")), DAY1 as f64);
    assert!(!m.contains_key(&("rdbtool_backup_last_success_timestamp_seconds".to_owned(), inst("damaged"))));
    assert!(std::fs::read_dir(d.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));

    // --latest: only the newest sets are verified; the trend still has the previous counts.
    let o = rdbtool(&[&args[..], &["--json", "--latest"]].concat());
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(day1_of(&doc, "damaged")["verified"], false);
    assert_eq!(instance(&doc, "half")["sets"][1]["trend"]["previous_keys"], 1000);
    assert_eq!(doc["summary"]["sets"], 7);
    // Without --max-drop a drop is reported, not a failure.
    let o = rdbtool(&["verify", "--tree", r, "--layout", LAYOUT, "--json", "--now", &now]);
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(instance(&doc, "half")["ok"], true);
    // Without a layout, the set is the directory and the instance its first component.
    let o = rdbtool(&["verify", "--tree", r, "--json", "--now", &now]);
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(instance(&doc, "Backup_c1")["sets"][1]["set"], "Backup_c1/2026-11-28/t1");
}

fn day1_of(doc: &Json, inst: &str) -> Json {
    instance(doc, inst)["sets"][0].clone()
}

#[test]
fn tree_flags_need_a_tree() {
    assert_eq!(rdbtool(&["verify", "--latest", "x.rdb"]).status.code(), Some(2));
    assert_eq!(rdbtool(&["verify", "--tree", "/nonexistent"]).status.code(), Some(2));
    let o = rdbtool(&["verify", "--tree", ".", "--layout", "{date}/*.rdb"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("{instance}"));
}
