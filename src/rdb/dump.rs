//! DUMP / RESTORE payloads: `[KEY_META] TYPE VALUE | u16le rdb_version | u64le crc64`. The same
//! value serialization as in RDB files, so the same walker decodes them.

use crate::error::{Error, ErrorKind, Result};
use crate::rdb::cursor::Cursor;
use crate::rdb::module::{self, MetaClass};
use crate::rdb::reader::MAX_REDIS_VERSION;
use crate::rdb::types::{Flavor, Format, describe};
use crate::rdb::value::RawValue;
use crate::rdb::walk::skip_value;

/// A parsed DUMP payload.
#[derive(Debug, Clone)]
pub struct Dump<'a> {
    /// The value, borrowed from the payload (its `offset` is a position in the payload).
    pub value: RawValue<'a>,
    /// The RDB version in the footer (Valkey 9 writes 80).
    pub rdb_version: u16,
    /// Redis 8.6 key metadata classes, when the payload carries them.
    pub meta: Option<Vec<MetaClass>>,
    /// False when the stored checksum is 0 ("not computed", accepted by Redis 8.6).
    pub checksum_checked: bool,
}

/// Parses and checks a DUMP payload: footer, checksum, type, and that the value spans exactly
/// the bytes before the footer. The value itself is walked on demand (`RawValue::decode`).
///
/// ```
/// use rdbtool::rdb::{Value, Walker, parse_dump};
///
/// // DUMP of the string "12345" by Redis 7.0 (docs/format.md §9): an integer-encoded string,
/// // RDB version 10, the CRC-64.
/// let payload = [0x00, 0xC1, 0x39, 0x30, 0x0A, 0x00, 0x9D, 0x94, 0xEA, 0x27, 0x93, 0xFC, 0x08, 0xB9];
/// let dump = parse_dump(&payload)?;
/// assert_eq!(dump.rdb_version, 10);
/// assert_eq!(dump.value.decode(&mut Walker::new())?, Value::String(b"12345".to_vec()));
/// # Ok::<(), rdbtool::Error>(())
/// ```
///
/// # Errors
///
/// A payload too short for its footer, a wrong checksum (a stored 0 is taken as not computed),
/// an RDB version this tool does not know, an unknown type, or a value that does not end
/// exactly at the footer.
pub fn parse_dump(payload: &[u8]) -> Result<Dump<'_>> {
    if payload.len() < 11 {
        return Err(Error::truncated(0, format!("{} bytes cannot hold a DUMP payload", payload.len())));
    }
    let body_end = payload.len() - 10;
    let rdb_version = u16::from_le_bytes([payload[body_end], payload[body_end + 1]]);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&payload[body_end + 2..]);
    let stored = u64::from_le_bytes(stored);
    let checksum_checked = stored != 0;
    if checksum_checked {
        let computed = crate::crc::crc64(&payload[..body_end + 2]);
        if computed != stored {
            return Err(Error::new(
                ErrorKind::Checksum,
                body_end as u64 + 2,
                format!("DUMP payload CRC-64 {stored:016x}, content gives {computed:016x}"),
            ));
        }
    }
    let format = Format::from_dump_version(rdb_version);
    let known = match format.flavor {
        Flavor::Redis => (1..=MAX_REDIS_VERSION).contains(&format.version),
        Flavor::Valkey => crate::rdb::reader::VALKEY_VERSIONS.contains(&format.version),
    };
    if !known {
        return Err(Error::new(
            ErrorKind::Unsupported,
            body_end as u64,
            format!("DUMP payload of RDB version {rdb_version}, which this tool does not know"),
        ));
    }
    let mut c = Cursor::new(&payload[..body_end], 0);
    let mut meta = None;
    if format.flavor == Flavor::Redis && c.peek() == Some(crate::rdb::reader::opcode::KEY_META_OR_SLOT_IMPORT) {
        c.u8("key metadata opcode")?;
        meta = Some(module::skip_key_meta(&mut c, true)?);
    }
    let at = c.offset();
    let type_byte = c.u8("value type")?;
    if describe(type_byte, format).is_none() {
        return Err(Error::corrupt(at, format!("unknown value type {type_byte} in a DUMP payload")));
    }
    let start = c.pos();
    let offset = c.offset();
    skip_value(&mut c, type_byte, format)?;
    if !c.is_empty() {
        return Err(Error::corrupt(c.offset(), format!("{} bytes after the value in a DUMP payload", c.remaining())));
    }
    let value = RawValue { type_byte, format, bytes: &payload[start..body_end], offset };
    Ok(Dump { value, rdb_version, meta, checksum_checked })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::value::Value;
    use crate::rdb::walk::Walker;

    #[test]
    fn dump_of_an_integer_string() {
        // docs/format.md §9: DUMP of "12345" from Redis 7.0.15.
        let p = [0x00, 0xC1, 0x39, 0x30, 0x0A, 0x00, 0x9D, 0x94, 0xEA, 0x27, 0x93, 0xFC, 0x08, 0xB9];
        let d = parse_dump(&p).unwrap();
        assert_eq!(d.rdb_version, 10);
        assert!(d.checksum_checked);
        assert_eq!(d.value.decode(&mut Walker::new()).unwrap(), Value::String(b"12345".to_vec()));
        let mut bad = p;
        bad[2] ^= 1;
        assert_eq!(parse_dump(&bad).unwrap_err().kind, ErrorKind::Checksum);
        // A stored checksum of 0 means "not computed".
        let mut unchecked = p;
        unchecked[6..].fill(0);
        assert!(!parse_dump(&unchecked).unwrap().checksum_checked);
        assert!(parse_dump(&p[..5]).is_err());
    }

    #[test]
    fn dump_of_a_listpack_zset() {
        // docs/format.md §9: zset c=-0.0, a=1.5, b=2 (type 17, listpack), footer added here.
        let mut p = vec![
            0x11, 0x19, 0x19, 0x00, 0x00, 0x00, 0x06, 0x00, 0x81, 0x63, 0x02, 0x00, 0x01, 0x81, 0x61, 0x02, 0x83, 0x31,
            0x2E, 0x35, 0x04, 0x81, 0x62, 0x02, 0x02, 0x01, 0xFF,
        ];
        p.extend_from_slice(&10u16.to_le_bytes());
        let crc = crate::crc::crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        let d = parse_dump(&p).unwrap();
        let v = d.value.decode(&mut Walker::new()).unwrap();
        assert_eq!(v, Value::Zset(vec![(b"c".to_vec(), 0.0), (b"a".to_vec(), 1.5), (b"b".to_vec(), 2.0)]));
        // Trailing garbage inside the body is refused.
        let mut q = p[..p.len() - 10].to_vec();
        q.push(0);
        q.extend_from_slice(&10u16.to_le_bytes());
        let crc = crate::crc::crc64(&q);
        q.extend_from_slice(&crc.to_le_bytes());
        assert!(parse_dump(&q).is_err());
    }
}
