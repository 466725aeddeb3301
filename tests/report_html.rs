//! `rdbtool report --format html`: the page opened in headless Chromium (Debian's `chromium`,
//! installed by .ci/run): it renders with no console message and no script error, the DOM after
//! the script ran holds the figures of `report --json`, and a screenshot is taken.

mod common;
use common::rdbtool;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const NOW: &str = "1795241896000ms";

fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("chromium not found, and CI=true: .ci/run installs it");
    }
    common::skip("chromium not found");
    None
}

/// Runs headless Chromium on `page` with `extra` flags (its own profile dir, a time limit).
fn headless(chromium: &Path, profile: &Path, page: &Path, extra: &[&str]) -> Output {
    let url = format!("file://{}", page.display());
    let mut args: Vec<String> = vec![
        "120".into(),
        chromium.display().to_string(),
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--no-first-run".into(),
        "--disable-extensions".into(),
        format!("--user-data-dir={}", profile.display()),
        "--enable-logging=stderr".into(),
        "--v=0".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(url);
    let out = Command::new("timeout").args(&args).output().expect("timeout / chromium");
    assert!(out.status.success(), "chromium {extra:?}: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

/// `1234567` as `toLocaleString("en-US")` writes it: `1,234,567`.
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The text inside the element with `id` (up to its first child tag).
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no element {id} in the DOM"));
    let start = at + dom[at..].find('>').unwrap() + 1;
    let end = start + dom[start..].find('<').unwrap();
    &dom[start..end]
}

fn attr<'a>(dom: &'a str, id: &str, name: &str) -> &'a str {
    let at = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no element {id} in the DOM"));
    let open_start = dom[..at].rfind('<').unwrap();
    let tag = &dom[open_start..at + dom[at..].find('>').unwrap()];
    let key = format!("{name}=\"");
    let s = tag.find(&key).unwrap_or_else(|| panic!("{id} has no {name}: {tag}")) + key.len();
    &tag[s..s + tag[s..].find('"').unwrap()]
}

/// The rows of the table with `id`, each a list of cell texts.
fn table_rows(dom: &str, id: &str) -> Vec<Vec<String>> {
    let at = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no table {id}"));
    let body = &dom[at..];
    let body = &body[body.find("<tbody>").unwrap()..body.find("</tbody>").unwrap()];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let s = cell.find('>').unwrap() + 1;
                    let e = cell.find("</td>").unwrap();
                    unescape(&cell[s..e])
                })
                .collect()
        })
        .collect()
}

fn unescape(s: &str) -> String {
    // Cells may hold child elements (the TTL bars): keep only the text.
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
}

#[test]
fn html_report_renders_in_chromium_with_the_json_figures() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = common::testdata("all-types.rdb").display().to_string();
    let page = dir.path().join("report.html");
    let page_s = page.display().to_string();
    let out = rdbtool(&["report", "--format", "html", "-o", &page_s, "--now", NOW, "--shards", "3", &file]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = rdbtool(&["report", "--json", "--now", NOW, "--shards", "3", &file]);
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();

    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained: nothing is fetched.
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<link") && !lower.contains(" src=") && !lower.contains("@import"));

    let profile = dir.path().join("profile");
    let run = headless(&chromium, &profile, &page, &["--dump-dom"]);
    let dom = String::from_utf8(run.stdout).unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert_eq!(text_of(&dom, "js-errors"), "", "script errors recorded by the page");
    assert!(dom.contains("data-rendered=\"ok\""), "the script did not finish");

    // Totals.
    let keys = json["keys"].as_u64().unwrap();
    let memory = json["memory"].as_u64().unwrap();
    assert!(keys > 200);
    assert_eq!(attr(&dom, "total-keys", "data-value"), keys.to_string());
    assert_eq!(text_of(&dom, "total-keys"), grouped(keys));
    assert_eq!(attr(&dom, "total-memory", "data-value"), memory.to_string());
    assert_eq!(attr(&dom, "total-elements", "data-value"), json["elements"].as_u64().unwrap().to_string());

    // Per type: every type's key count in its row.
    let types = table_rows(&dom, "types-table");
    assert_eq!(types.len(), json["types"].as_array().unwrap().len());
    for t in json["types"].as_array().unwrap() {
        let row = types.iter().find(|r| r[0] == t["type"].as_str().unwrap()).expect("type row");
        assert_eq!(row[1], grouped(t["keys"].as_u64().unwrap()));
        assert_eq!(row[4], grouped(t["elements"].as_u64().unwrap()));
    }
    assert_eq!(table_rows(&dom, "dbs-table").len(), json["dbs"].as_array().unwrap().len());

    // Top keys in the JSON's order.
    let top = table_rows(&dom, "top-memory-table");
    let want: Vec<String> = json["top_memory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| match &k["key"] {
            Value::String(s) => s.clone(),
            v => format!("base64:{}", v["base64"].as_str().unwrap()),
        })
        .collect();
    assert_eq!(top.iter().map(|r| r[0].clone()).collect::<Vec<_>>(), want);

    // TTL histogram: seven buckets with the JSON's counts.
    let ttl = table_rows(&dom, "ttl-table");
    let ttl_keys: Vec<String> = ttl.iter().map(|r| r[1].clone()).collect();
    let want: Vec<String> =
        json["ttl"].as_array().unwrap().iter().map(|t| grouped(t["keys"].as_u64().unwrap())).collect();
    assert_eq!(ttl_keys, want);

    // Flame graph: the root plus the heaviest prefixes drawn; heat map: every used slot drawn.
    let nodes: usize = attr(&dom, "flame", "data-nodes").parse().unwrap();
    assert!(nodes > 5, "{nodes} flame graph nodes");
    let heaviest = json["prefixes"]["heaviest"][0]["prefix"].as_str().unwrap();
    assert!(dom.contains(&format!("data-prefix=\"{heaviest}\"")), "heaviest prefix {heaviest} not drawn");
    assert_eq!(attr(&dom, "heat", "data-slots-drawn"), json["slots"]["used"].as_u64().unwrap().to_string());
    let hottest = table_rows(&dom, "hottest-slots-table");
    assert_eq!(hottest[0][0], json["slots"]["hottest"][0]["slot"].as_u64().unwrap().to_string());

    // Per shard: three shards whose keys add up to the total.
    let shards = table_rows(&dom, "shards-table");
    assert_eq!(shards.len(), 3);
    assert_eq!(shards.iter().map(|r| r[1].clone()).collect::<Vec<_>>(), ["0-5460", "5461-10922", "10923-16383"]);
    let sum: u64 = shards.iter().map(|r| r[2].replace(',', "").parse::<u64>().unwrap()).sum();
    assert_eq!(sum, keys);

    // A screenshot of the rendered page: a PNG of the window's size.
    let shot = dir.path().join("shot.png");
    headless(
        &chromium,
        &profile,
        &page,
        &["--hide-scrollbars", "--window-size=1280,2400", &format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 2400));
    assert!(png.len() > 20_000, "a blank page would compress to a few KiB ({} bytes)", png.len());
}

#[test]
fn html_needs_an_output_file() {
    let file = common::testdata("all-types.rdb").display().to_string();
    let out = rdbtool(&["report", "--format", "html", &file]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-o FILE"));
}
