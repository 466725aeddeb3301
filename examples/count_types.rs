//! Counts the keys of an RDB file per type, checking every value on the way (the crate-level
//! example of `src/lib.rs`): `cargo run --release --example count_types -- FILE`.

use std::collections::BTreeMap;

use rdbtool::rdb::{Reader, Record, Walker};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: count_types FILE")?;
    let data = rdbtool::input::open(std::path::Path::new(&path))?;
    let mut per_type: BTreeMap<&str, u64> = BTreeMap::new();
    let mut walker = Walker::new();
    for record in Reader::new(&data)? {
        if let Record::Key(key) = record? {
            // The reader only found where the value ends; this checks all of it.
            key.value.validate(&mut walker)?;
            *per_type.entry(key.value.kind().as_str()).or_default() += 1;
        }
    }
    for (kind, n) in &per_type {
        println!("{kind:<8} {n}");
    }
    Ok(())
}
