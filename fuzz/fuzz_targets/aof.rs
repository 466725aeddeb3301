//! The AOF side: the manifest parser (and its writer: what it writes must parse back to the same
//! manifest), the RESP command parser over one file, and a whole set (a manifest and its files
//! in a temporary directory) through `AofSet::open` and `check` with full verification.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdbtool::aof::manifest::Manifest;
use rdbtool::aof::resp::RespParser;
use rdbtool::aof::set::AofSet;
use rdbtool::verify::Options;

/// Separates the parts of a whole-set input: the manifest, then the files it may name.
const SPLIT: &[u8] = b"\n--8<--\n";
const FILES: [&str; 4] =
    ["appendonly.aof.1.base.rdb", "appendonly.aof.1.base.aof", "appendonly.aof.1.incr.aof", "appendonly.aof.2.incr.aof"];

fn parts(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(SPLIT.len()).position(|w| w == SPLIT) {
        out.push(&rest[..i]);
        rest = &rest[i + SPLIT.len()..];
    }
    out.push(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            if let Ok(m) = Manifest::parse(rest)
                && let Ok(bytes) = m.to_bytes()
            {
                let again = Manifest::parse(&bytes).expect("a manifest we wrote does not parse");
                assert_eq!(again.to_bytes().ok(), Some(bytes), "writing is not stable");
            }
        }
        1 => {
            let mut p = RespParser::new(rest, 0, None);
            let mut argv = Vec::new();
            let mut n = 0u64;
            while let Ok(Some(_)) = p.next_event(&mut argv) {
                n += 1;
                assert!(n <= rest.len() as u64 + 1, "more events than bytes");
            }
            assert!(p.ok_up_to() <= rest.len() as u64);
        }
        _ => {
            let dir = tempfile::tempdir().unwrap();
            let ps = parts(rest);
            std::fs::write(dir.path().join("appendonly.aof.manifest"), ps[0]).unwrap();
            for (name, body) in FILES.iter().zip(ps.iter().skip(1)) {
                std::fs::write(dir.path().join(name), body).unwrap();
            }
            if let Ok(set) = AofSet::open(dir.path()) {
                let opts = Options { keep_going: true, max_errors: 10, now_ms: 0, target: None };
                let _ = set.check("fuzz", Some(&opts));
                let _ = set.check("fuzz", None);
            }
        }
    }
});
