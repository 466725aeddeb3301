//! Two live servers: A is scanned and each page of keys read from both sides; then B is scanned
//! and its keys checked with EXISTS on A.

use super::super::{DiffError, Entry, Names, Options, Output, SideInfo, Summary, Tally, compare_entries, one_sided};
use super::side::{LiveSide, Query, Reply};
use super::{report_live_only, restrict_to_url_db};
use crate::display::quoted;
use crate::rdb::dump::parse_dump;
use crate::rdb::walk::Walker;

/// Compares two live servers: A is scanned and each page of keys read from both sides; then B
/// is scanned and its keys checked with EXISTS on A.
pub fn diff_live_live(
    a: &mut LiveSide,
    b: &mut LiveSide,
    opts: &Options,
    out: &mut dyn Output,
) -> Result<Summary, DiffError> {
    let names = Names { a: a.name.clone(), b: b.name.clone() };
    let mut tally = Tally::new(out);
    tally.summary.sample_rate = opts.select.sample_rate;
    let batch = opts.batch.max(1);
    let sel_a = restrict_to_url_db(&opts.select, a.url_db);
    let mut w = Walker::new();
    let mut scan_a = a.reconnect()?;
    let mut page: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut keys_a = 0u64;
    let mut compare_page = |page: &mut Vec<(u64, Vec<u8>)>,
                            a: &mut LiveSide,
                            b: &mut LiveSide,
                            tally: &mut Tally<'_>|
     -> Result<(), DiffError> {
        let refs: Vec<(u64, &[u8])> = page.iter().map(|(d, k)| (*d, k.as_slice())).collect();
        let pa = a.send(Query::DumpPttl, &refs)?;
        let pb = b.send(Query::DumpPttl, &refs)?;
        let ra = a.recv(pa)?;
        let rb = b.recv(pb)?;
        for (((db, key), x), y) in page.iter().zip(ra).zip(rb) {
            let (
                Reply::Dump { payload: pa, expire_at_ms: ea, .. },
                Reply::Dump { payload: pb, expire_at_ms: eb, at_ms },
            ) = (x, y)
            else {
                continue;
            };
            let Some(pa) = pa else { continue }; // gone from A since the SCAN
            let da = parse_dump(&pa)
                .map_err(|e| DiffError::Live(format!("{}: DUMP of db {db} key {}: {e}", names.a, quoted(key))))?;
            let ea_ = Entry { raw: da.value, expire_at_ms: ea };
            let d = match pb {
                None => {
                    Some(one_sided(*db, key, SideInfo { kind: da.value.kind(), expire_at_ms: ea }, true, at_ms, opts))
                }
                Some(pb) => {
                    let db_ = parse_dump(&pb).map_err(|e| {
                        DiffError::Live(format!("{}: DUMP of db {db} key {}: {e}", names.b, quoted(key)))
                    })?;
                    compare_entries(*db, key, &ea_, &Entry { raw: db_.value, expire_at_ms: eb }, &mut w, opts, &names)?
                }
            };
            tally.record(d)?;
        }
        page.clear();
        Ok(())
    };
    scan_a.scan(&sel_a, opts.scan_count, |_, db, key| {
        keys_a += 1;
        page.push((db, key));
        if page.len() >= batch {
            compare_page(&mut page, a, b, &mut tally)?;
        }
        Ok(())
    })?;
    compare_page(&mut page, a, b, &mut tally)?;

    let sel_b = restrict_to_url_db(&opts.select, b.url_db);
    let mut scan_b = b.reconnect()?;
    let mut keys_b = 0u64;
    let check_page = |page: &mut Vec<(u64, Vec<u8>)>,
                      a: &mut LiveSide,
                      b: &mut LiveSide,
                      tally: &mut Tally<'_>|
     -> Result<(), DiffError> {
        let refs: Vec<(u64, &[u8])> = page.iter().map(|(d, k)| (*d, k.as_slice())).collect();
        let p = a.send(Query::Exists, &refs)?;
        let r = a.recv(p)?;
        let mut missing: Vec<(u64, Vec<u8>)> =
            page.drain(..).zip(r).filter(|(_, r)| *r == Reply::Exists(false)).map(|(k, _)| k).collect();
        report_live_only(b, &mut missing, true, crate::filter::now_ms(), opts, tally)
    };
    scan_b.scan(&sel_b, opts.scan_count, |_, db, key| {
        keys_b += 1;
        page.push((db, key));
        if page.len() >= batch {
            check_page(&mut page, a, b, &mut tally)?;
        }
        Ok(())
    })?;
    check_page(&mut page, a, b, &mut tally)?;
    tally.summary.keys_a = keys_a;
    tally.summary.keys_b = keys_b;
    Ok(tally.summary)
}
