//! `rdbtool export --format parquet -o DIR`: the files read back by DuckDB (from PyPI, installed
//! by .ci/run into target/duckdb-venv) agree row for row with `report --format jsonl` and in
//! counts and sums with `report --json`.

mod common;
use common::rdbtool;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const NOW: &str = "1795241896000ms";

fn ok(args: &[&str]) -> Output {
    let out = rdbtool(args);
    assert!(out.status.success(), "rdbtool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A Python that can `import duckdb`: target/duckdb-venv's, else python3's.
fn duckdb_python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/duckdb-venv/bin/python");
    for py in [venv, PathBuf::from("python3")] {
        let ok = Command::new(&py).args(["-c", "import duckdb"]).output().is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("no Python with duckdb, and CI=true: .ci/run installs it into target/duckdb-venv");
    }
    common::skip("no Python with duckdb (pip install duckdb)");
    None
}

/// Runs `sql` in DuckDB; the rows as JSON arrays.
fn duckdb(py: &Path, sql: &str) -> Vec<Vec<Value>> {
    let script = r#"
import duckdb, json, sys
rows = duckdb.sql(sys.argv[1]).fetchall()
print(json.dumps([[v if v is None or isinstance(v, (int, float, str)) else str(v) for v in r] for r in rows]))
"#;
    let out = Command::new(py).args(["-c", script, sql]).output().unwrap();
    assert!(out.status.success(), "duckdb {sql}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

#[test]
fn parquet_read_by_duckdb_matches_the_report() {
    let Some(py) = duckdb_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("pq");
    let a = common::testdata("all-types.rdb").display().to_string();
    let b = common::testdata("small-db0.rdb").display().to_string();
    let od = out_dir.display().to_string();
    let run = ok(&["export", "--format", "parquet", "-o", &od, "--now", NOW, &a, &b]);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(log.contains("all-types.parquet") && log.contains("small-db0.parquet"), "{log}");
    let glob = format!("{od}/*.parquet");

    for file in [&a, &b] {
        // Row for row against the JSON Lines of report.
        let jsonl = ok(&["report", "--format", "jsonl", "--now", NOW, file]);
        let mut want: Vec<Vec<Value>> = String::from_utf8(jsonl.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let key = rdbtool::json::to_bytes(&v["key"]).unwrap();
                vec![
                    v["db"].clone(),
                    Value::from(hex(&key)),
                    v["type"].clone(),
                    v["encoding"].clone(),
                    v["rdb_encoding"].clone(),
                    v["expire_at_ms"].clone(),
                    v["memory"].clone(),
                    v["elements"].clone(),
                    v["largest_element"].clone(),
                    v["slot"].clone(),
                ]
            })
            .collect();
        assert!(want.len() > 10);
        let mut got = duckdb(
            &py,
            &format!(
                "SELECT db, hex(key), type, encoding, rdb_encoding, epoch_ms(expire_at), memory, elements, \
                 largest_element, slot FROM read_parquet('{glob}') WHERE file = '{file}'"
            ),
        );
        want.sort_by_key(|r| r.iter().map(|v| v.to_string()).collect::<Vec<_>>());
        got.sort_by_key(|r| r.iter().map(|v| v.to_string()).collect::<Vec<_>>());
        assert_eq!(got, want, "{file}");

        // Counts and sums against the JSON report.
        let rep: Value = serde_json::from_slice(&ok(&["report", "--json", "--now", NOW, file]).stdout).unwrap();
        let sums = duckdb(
            &py,
            &format!(
                "SELECT count(*), sum(memory), sum(elements), count(expire_at), count(DISTINCT slot) \
                 FROM read_parquet('{glob}') WHERE file = '{file}'"
            ),
        );
        let with_ttl: u64 = rep["ttl"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["ttl"] != "none")
            .map(|t| t["keys"].as_u64().unwrap())
            .sum();
        assert_eq!(
            sums[0],
            vec![
                rep["keys"].clone(),
                rep["memory"].clone(),
                rep["elements"].clone(),
                with_ttl.into(),
                rep["slots"]["used"].clone()
            ],
            "{file}"
        );
        let per_type = duckdb(
            &py,
            &format!(
                "SELECT type, count(*), sum(memory) FROM read_parquet('{glob}') WHERE file = '{file}' \
                 GROUP BY type ORDER BY type"
            ),
        );
        let mut want: Vec<Vec<Value>> = rep["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| vec![t["type"].clone(), t["keys"].clone(), t["memory"].clone()])
            .collect();
        want.sort_by_key(|r| r[0].as_str().unwrap().to_owned());
        assert_eq!(per_type, want, "{file}");
    }

    // The schema as DuckDB sees it: binary keys, a UTC timestamp, strings.
    let types =
        duckdb(&py, &format!("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{glob}'))"));
    let types: Vec<String> =
        types.iter().map(|r| format!("{} {}", r[0].as_str().unwrap(), r[1].as_str().unwrap())).collect();
    for want in ["key BLOB", "expire_at TIMESTAMP WITH TIME ZONE", "type VARCHAR", "memory BIGINT", "slot INTEGER"] {
        assert!(types.iter().any(|t| t == want), "{want} not in {types:?}");
    }

    // A corrupt input leaves no output and exits 1; the good one is still written.
    let bad = dir.path().join("bad.rdb");
    let mut bytes = std::fs::read(&a).unwrap();
    let n = bytes.len();
    bytes.truncate(n / 2);
    std::fs::write(&bad, bytes).unwrap();
    let od2 = dir.path().join("pq2").display().to_string();
    let out = rdbtool(&["export", "--format", "parquet", "-o", &od2, &bad.display().to_string(), &b]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let names: Vec<String> =
        std::fs::read_dir(&od2).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["small-db0.parquet"]);
}

#[test]
fn parquet_needs_a_directory_and_several_inputs_need_parquet() {
    let a = common::testdata("all-types.rdb").display().to_string();
    assert_eq!(rdbtool(&["export", "--format", "parquet", &a]).status.code(), Some(2));
    assert_eq!(rdbtool(&["export", &a, &a]).status.code(), Some(2));
}
