//! Streams (types 15, 19, 21, 26): a radix tree of listpack nodes, then the stream's metadata,
//! consumer groups with their PEL and consumers, and (26) the idempotent-producer tail.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::rdb::cursor::{Cursor, Elem};
use crate::rdb::decimal::parse_canonical_i64;
use crate::rdb::encodings::blob_of;
use crate::rdb::encodings::listpack::ListpackIter;
use crate::rdb::types::id;
use crate::rdb::value::{Consumer, Idmp, Note, PendingEntry, Sink, StreamGroup, StreamId, StreamMeta};

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

fn id_pair(c: &mut Cursor<'_>, what: &str) -> Result<StreamId> {
    Ok(StreamId { ms: c.len(what)?, seq: c.len(what)? })
}

fn raw_id(c: &mut Cursor<'_>, what: &str) -> Result<StreamId> {
    Ok(StreamId::from_be_bytes(c.take(16, what)?))
}

/// Consumes a stream value, checking only what is needed to find its end.
pub fn skip(c: &mut Cursor<'_>, t: u8) -> Result<()> {
    let nodes = c.count("stream node count", 2)?;
    for _ in 0..nodes {
        c.str("stream node key")?;
        c.str("stream node listpack")?;
    }
    c.len("stream length")?;
    id_pair(c, "stream last id")?;
    if t >= id::STREAM_LISTPACKS_2 {
        id_pair(c, "stream first id")?;
        id_pair(c, "stream max deleted id")?;
        c.len("stream entries added")?;
    }
    let groups = c.count("consumer group count", 3)?;
    for _ in 0..groups {
        c.str("consumer group name")?;
        id_pair(c, "consumer group last id")?;
        if t >= id::STREAM_LISTPACKS_2 {
            c.len("consumer group entries read")?;
        }
        let pel = c.count("consumer group PEL size", 25)?;
        for _ in 0..pel {
            c.take(16 + 8, "PEL entry")?;
            c.len("PEL delivery count")?;
        }
        let consumers = c.count("consumer count", 10)?;
        for _ in 0..consumers {
            c.str("consumer name")?;
            c.take(8, "consumer seen time")?;
            if t >= id::STREAM_LISTPACKS_3 {
                c.take(8, "consumer active time")?;
            }
            let n = c.count("consumer PEL size", 16)?;
            c.take(n as usize * 16, "consumer PEL")?;
        }
    }
    if t == id::STREAM_LISTPACKS_4 {
        c.len("stream IDMP duration")?;
        c.len("stream IDMP max size")?;
        let producers = c.count("stream IDMP producer count", 2)?;
        for _ in 0..producers {
            c.str("stream IDMP producer id")?;
            let n = c.count("stream IDMP entry count", 3)?;
            for _ in 0..n {
                c.str("stream IDMP idempotency id")?;
                id_pair(c, "stream IDMP stream id")?;
            }
        }
        c.len("stream IDMP ids added")?;
        c.len("stream IDMP duplicates")?;
    }
    Ok(())
}

/// An integer listpack element (Redis also accepts integer-looking strings there).
fn lp_int(it: &mut ListpackIter<'_>, what: &str) -> Result<i64> {
    match it.next_elem()? {
        Some(Elem::Int(i)) => Ok(i),
        Some(Elem::Bytes(b)) => {
            parse_canonical_i64(b).ok_or_else(|| it.blob().err(it.pos(), format!("{what} is not an integer")))
        }
        None => Err(it.blob().err(it.pos(), format!("listpack ends where {what} was expected"))),
    }
}

fn lp_elem<'b>(it: &mut ListpackIter<'b>, what: &str) -> Result<Elem<'b>> {
    it.next_elem()?.ok_or_else(|| it.blob().err(it.pos(), format!("listpack ends where {what} was expected")))
}

/// Walks one node listpack; returns (live entries, last ID seen including tombstones).
///
/// What Redis's deep check of a node refuses is refused here: the master entry, every entry's
/// shape and lp-count, and as many entries as the master's live + deleted counts say. What it
/// does not look at (the live / deleted split of that total, entry IDs in ascending order) is
/// noted, not refused: Redis loads such a node.
fn walk_node<S: Sink>(
    it: &mut ListpackIter<'_>,
    master: StreamId,
    mut prev: Option<StreamId>,
    sink: &mut S,
    notes: &mut Vec<Note>,
    offset: u64,
) -> Result<(u64, Option<StreamId>)> {
    let count = lp_int(it, "master entry count")?;
    let deleted = lp_int(it, "master deleted count")?;
    let nmaster = lp_int(it, "master field count")?;
    if count < 0 || deleted < 0 || nmaster < 0 {
        return Err(it.blob().err(0, "negative count in the master entry"));
    }
    let mut master_fields = Vec::with_capacity((nmaster as usize).min(1024));
    for _ in 0..nmaster {
        master_fields.push(lp_elem(it, "master field")?);
    }
    if lp_int(it, "master entry terminator")? != 0 {
        return Err(it.blob().err(it.pos(), "master entry not terminated by 0"));
    }
    let (mut live, mut dead) = (0i64, 0i64);
    let mut fields: Vec<(Elem<'_>, Elem<'_>)> = Vec::new();
    loop {
        let at = it.pos();
        let flags = match it.next_elem()? {
            None => break,
            Some(Elem::Int(i)) => i,
            Some(Elem::Bytes(b)) => {
                parse_canonical_i64(b).ok_or_else(|| it.blob().err(at, "entry flags are not an integer"))?
            }
        };
        let ms_delta = lp_int(it, "entry ms delta")?;
        let seq_delta = lp_int(it, "entry seq delta")?;
        let id =
            StreamId { ms: master.ms.wrapping_add(ms_delta as u64), seq: master.seq.wrapping_add(seq_delta as u64) };
        fields.clear();
        let expect_count = if flags & FLAG_SAMEFIELDS != 0 {
            for f in &master_fields {
                fields.push((*f, lp_elem(it, "entry value")?));
            }
            3 + nmaster
        } else {
            let n = lp_int(it, "entry field count")?;
            if n < 0 {
                return Err(it.blob().err(at, "negative entry field count"));
            }
            for _ in 0..n {
                let f = lp_elem(it, "entry field")?;
                fields.push((f, lp_elem(it, "entry value")?));
            }
            4 + 2 * n
        };
        if lp_int(it, "entry lp-count")? != expect_count {
            return Err(it.blob().err(at, format!("entry {id}: lp-count does not match its {} fields", fields.len())));
        }
        if let Some(p) = prev.filter(|&p| id <= p)
            && !notes.iter().any(|n| n.kind == "stream_ids")
        {
            notes.push(Note {
                offset,
                kind: "stream_ids",
                message: format!(
                    "stream entry {id} does not follow {p}: Redis loads it, but XRANGE / XREAD may skip entries and XADD may refuse new ones"
                ),
            });
        }
        prev = Some(prev.map_or(id, |p| p.max(id)));
        if flags & FLAG_DELETED != 0 {
            dead += 1;
        } else {
            live += 1;
            sink.stream_entry(id, &fields);
        }
    }
    if live + dead != count + deleted {
        return Err(it.blob().err(
            0,
            format!("master entry counts {count} live + {deleted} deleted, the node holds {} entries", live + dead),
        ));
    }
    if live != count {
        notes.push(Note {
            offset,
            kind: "stream_counts",
            message: format!(
                "stream node master entry says {count} live / {deleted} deleted, its entries' flags {live} / {dead}: Redis loads it (it checks only the total)"
            ),
        });
    }
    Ok((live as u64, prev))
}

/// Decodes and validates a stream value.
pub fn walk<S: Sink>(
    c: &mut Cursor<'_>,
    t: u8,
    blob_buf: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    sink: &mut S,
    notes: &mut Vec<Note>,
) -> Result<()> {
    walk_with(c, t, Some((blob_buf, scratch)), sink, notes)
}

/// `walk` stepping over the nodes: their listpacks are neither read nor checked (no entry
/// reaches `sink`), the metadata, consumer groups and IDMP tail are walked as `walk` does. For
/// a reader that measures a stream from its node sizes.
pub fn walk_meta<S: Sink>(c: &mut Cursor<'_>, t: u8, sink: &mut S, notes: &mut Vec<Note>) -> Result<()> {
    walk_with(c, t, None, sink, notes)
}

/// `walk`, the nodes' entries walked when given the buffers they need.
fn walk_with<S: Sink>(
    c: &mut Cursor<'_>,
    t: u8,
    bufs: Option<(&mut Vec<u8>, &mut Vec<u8>)>,
    sink: &mut S,
    notes: &mut Vec<Note>,
) -> Result<()> {
    let nodes = c.count("stream node count", 2)?;
    let mut prev: Option<StreamId> = None;
    let mut live_total = 0u64;
    let Some((blob_buf, scratch)) = bufs else {
        for _ in 0..nodes {
            c.str("stream node key")?;
            c.str("stream node listpack")?;
        }
        return walk_tail(c, t, nodes, None, sink, notes);
    };
    let mut masters = std::collections::HashSet::new();
    for _ in 0..nodes {
        let node_at = c.offset();
        let master = StreamId::from_be_bytes(c.str_exact(16, "stream node key", scratch)?);
        // Nodes are keyed by their master ID in Redis's radix tree: a second node with the same
        // key is refused ("Listpack re-added with existing key").
        if !masters.insert((master.ms, master.seq)) {
            return Err(Error::corrupt(
                node_at,
                format!("two stream nodes with the key {master} (Redis refuses the file)"),
            ));
        }
        let s = c.str("stream node listpack")?;
        let blob = blob_of(s, c.offset(), blob_buf, "stream node listpack")?;
        let mut it = ListpackIter::new(blob)?;
        if it.declared_count() == Some(0) || blob.data.len() <= crate::rdb::encodings::listpack::HEADER + 1 {
            return Err(blob.err(0, "empty listpack inside a stream"));
        }
        let (live, last) = walk_node(&mut it, master, prev, sink, notes, node_at)?;
        live_total += live;
        prev = last;
    }
    walk_tail(c, t, nodes, Some((live_total, prev)), sink, notes)
}

/// The stream after its nodes: length, IDs, groups, IDMP tail. `walked`: the live entries the
/// nodes held and the last entry's ID, when they were walked.
fn walk_tail<S: Sink>(
    c: &mut Cursor<'_>,
    t: u8,
    nodes: u64,
    walked: Option<(u64, Option<StreamId>)>,
    sink: &mut S,
    notes: &mut Vec<Note>,
) -> Result<()> {
    let at = c.offset();
    let length = c.len("stream length")?;
    // Redis keeps the stored length whatever the nodes hold (XLEN answers it); it only refuses
    // a length with no node at all.
    if length > 0 && nodes == 0 {
        return Err(Error::corrupt(
            at,
            format!("stream length {length} but the stream has no nodes (Redis refuses the file)"),
        ));
    }
    if let Some((live_total, _)) = walked
        && length != live_total
    {
        notes.push(Note {
            offset: at,
            kind: "stream_length",
            message: format!(
                "stream length {length} but its nodes hold {live_total} entries: Redis loads it and XLEN answers {length} (Redis 5/6 could write such streams after XDEL/XTRIM)"
            ),
        });
    }
    let at = c.offset();
    let last_id = id_pair(c, "stream last id")?;
    if let Some((_, Some(p))) = walked
        && last_id < p
    {
        notes.push(Note {
            offset: at,
            kind: "stream_last_id",
            message: format!(
                "stream last id {last_id} is before entry {p}: Redis loads it, and XADD * then fails until the last id passes {p}"
            ),
        });
    }
    let mut meta = StreamMeta { length, last_id, ..Default::default() };
    if t >= id::STREAM_LISTPACKS_2 {
        meta.first_id = Some(id_pair(c, "stream first id")?);
        meta.max_deleted_id = Some(id_pair(c, "stream max deleted id")?);
        meta.entries_added = Some(c.len("stream entries added")?);
    }
    meta.groups = c.count("consumer group count", 3)?;
    sink.stream_meta(&meta);
    let mut group_names = HashSet::new();
    for _ in 0..meta.groups {
        let at = c.offset();
        let name = c.str_cow("consumer group name")?.into_owned();
        if !group_names.insert(name.clone()) {
            return Err(Error::corrupt(at, format!("duplicate consumer group {}", crate::display::quoted(&name))));
        }
        let group = walk_group(c, t, name)?;
        sink.stream_group(&group);
    }
    if t == id::STREAM_LISTPACKS_4 {
        let idmp = walk_idmp(c)?;
        sink.stream_idmp(&idmp);
    }
    Ok(())
}

fn walk_group(c: &mut Cursor<'_>, t: u8, name: Vec<u8>) -> Result<StreamGroup> {
    let last_id = id_pair(c, "consumer group last id")?;
    let entries_read = if t >= id::STREAM_LISTPACKS_2 { Some(c.len("consumer group entries read")?) } else { None };
    let npel = c.count("consumer group PEL size", 25)?;
    let mut pending = Vec::with_capacity(npel as usize);
    // Where each PEL entry sits, to blame an entry no consumer claims.
    let mut pel_offsets = Vec::with_capacity(npel as usize);
    for _ in 0..npel {
        pel_offsets.push(c.offset());
        let id = raw_id(c, "PEL entry id")?;
        let delivery_time_ms = c.i64le("PEL delivery time")?;
        let delivery_count = c.len("PEL delivery count")?;
        pending.push(PendingEntry { id, consumer: usize::MAX, delivery_time_ms, delivery_count });
    }
    // IDs sorted once, for duplicate detection and consumer lookups.
    let mut by_id: Vec<(StreamId, usize)> = pending.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    by_id.sort_unstable();
    if let Some(w) = by_id.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::corrupt(
            c.offset(),
            format!("duplicate PEL entry {} in group {}", w[0].0, crate::display::quoted(&name)),
        ));
    }
    let nconsumers = c.count("consumer count", 10)?;
    let mut consumers: Vec<Consumer> = Vec::with_capacity(nconsumers as usize);
    let mut consumer_names = HashSet::new();
    for ci in 0..nconsumers as usize {
        let at = c.offset();
        let cname = c.str_cow("consumer name")?.into_owned();
        if !consumer_names.insert(cname.clone()) {
            return Err(Error::corrupt(at, format!("duplicate consumer {}", crate::display::quoted(&cname))));
        }
        let seen_time_ms = c.i64le("consumer seen time")?;
        let active_time_ms = if t >= id::STREAM_LISTPACKS_3 { Some(c.i64le("consumer active time")?) } else { None };
        let n = c.count("consumer PEL size", 16)?;
        let mut ids = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let at = c.offset();
            let id = raw_id(c, "consumer PEL id")?;
            let Ok(k) = by_id.binary_search_by(|(x, _)| x.cmp(&id)) else {
                return Err(Error::corrupt(at, format!("consumer PEL entry {id} is not in the group PEL")));
            };
            let p = &mut pending[by_id[k].1];
            if p.consumer != usize::MAX {
                return Err(Error::corrupt(at, format!("PEL entry {id} claimed by two consumers")));
            }
            p.consumer = ci;
            ids.push(id);
        }
        consumers.push(Consumer { name: cname, seen_time_ms, active_time_ms, pending: ids });
    }
    if let Some(i) = pending.iter().position(|p| p.consumer == usize::MAX) {
        return Err(Error::corrupt(
            pel_offsets[i],
            format!("PEL entry {} of group {} has no consumer", pending[i].id, crate::display::quoted(&name)),
        ));
    }
    Ok(StreamGroup { name, last_id, entries_read, pending, consumers })
}

fn walk_idmp(c: &mut Cursor<'_>) -> Result<Idmp> {
    let at = c.offset();
    let duration_s = c.len("stream IDMP duration")?;
    if !(1..=86400).contains(&duration_s) {
        return Err(Error::corrupt(at, format!("stream IDMP duration {duration_s} outside 1..86400")));
    }
    let at = c.offset();
    let maxsize = c.len("stream IDMP max size")?;
    if !(1..=10000).contains(&maxsize) {
        return Err(Error::corrupt(at, format!("stream IDMP max size {maxsize} outside 1..10000")));
    }
    let np = c.count("stream IDMP producer count", 2)?;
    let mut producers = Vec::with_capacity(np as usize);
    for _ in 0..np {
        let pid = c.str_cow("stream IDMP producer id")?.into_owned();
        let n = c.count("stream IDMP entry count", 3)?;
        let mut entries = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let iid = c.str_cow("stream IDMP idempotency id")?.into_owned();
            entries.push((iid, id_pair(c, "stream IDMP stream id")?));
        }
        producers.push((pid, entries));
    }
    let iids_added = c.len("stream IDMP ids added")?;
    let iids_duplicates = c.len("stream IDMP duplicates")?;
    Ok(Idmp { duration_s, maxsize, producers, iids_added, iids_duplicates })
}
