//! Module values, MODULE_AUX and key metadata are opcode streams that any reader can skip without
//! knowing the module (what redis-check-rdb does): `(LEN opcode, payload)*` ended by opcode 0.

use crate::error::{Error, Result};
use crate::rdb::cursor::Cursor;

pub const OPCODE_EOF: u64 = 0;
pub const OPCODE_SINT: u64 = 1;
pub const OPCODE_UINT: u64 = 2;
pub const OPCODE_FLOAT: u64 = 3;
pub const OPCODE_DOUBLE: u64 = 4;
pub const OPCODE_STRING: u64 = 5;

/// A 64-bit module type id: nine 6-bit characters and a 10-bit encoding version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModuleType(pub u64);

const TYPE_CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl ModuleType {
    pub fn name(&self) -> String {
        (0..9).map(|i| TYPE_CHARSET[((self.0 >> (58 - 6 * i)) & 63) as usize] as char).collect()
    }
    pub fn encver(&self) -> u64 {
        self.0 & 1023
    }
    /// The id for `name` (9 characters of the module alphabet) and `encver`.
    pub fn from_name(name: &str, encver: u64) -> Option<ModuleType> {
        let b = name.as_bytes();
        if b.len() != 9 || encver > 1023 {
            return None;
        }
        let mut id = 0u64;
        for &c in b {
            let v = TYPE_CHARSET.iter().position(|&x| x == c)? as u64;
            id = (id << 6) | v;
        }
        Some(ModuleType((id << 10) | encver))
    }
}

/// Key-metadata class names use the same 6-bit packing with `_` and `-` swapped.
const CLASS_CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// A key-metadata class spec (Redis 8.6 KEY_META): 4-char name, version, flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaClass(pub u32);

impl MetaClass {
    pub fn name(&self) -> String {
        (0..4).map(|i| CLASS_CHARSET[((self.0 >> (26 - 6 * i)) & 63) as usize] as char).collect()
    }
    pub fn version(&self) -> u32 {
        (self.0 >> 3) & 31
    }
    pub fn allow_ignore(&self) -> bool {
        self.0 & 1 != 0
    }
}

/// Consumes one opcode stream up to and including its EOF opcode. With `check_strings`, LZF
/// strings inside are also checked to decompress (deep validation).
pub fn skip_opcodes(c: &mut Cursor<'_>, check_strings: bool) -> Result<()> {
    loop {
        let at = c.offset();
        match c.len("module opcode")? {
            OPCODE_EOF => return Ok(()),
            OPCODE_SINT | OPCODE_UINT => {
                c.len("module integer")?;
            }
            OPCODE_FLOAT => {
                c.take(4, "module float")?;
            }
            OPCODE_DOUBLE => {
                c.take(8, "module double")?;
            }
            OPCODE_STRING => {
                let s = c.str("module string")?;
                if check_strings {
                    s.validate()?;
                }
            }
            op => return Err(Error::corrupt(at, format!("unknown module opcode {op}"))),
        }
    }
}

/// KEY_META payload after the 0xF3 byte: `LEN n` (1..7), then per class a u32le spec and an
/// opcode stream.
pub fn skip_key_meta(c: &mut Cursor<'_>, check_strings: bool) -> Result<Vec<MetaClass>> {
    let at = c.offset();
    let n = c.len("key metadata class count")?;
    if !(1..=7).contains(&n) {
        return Err(Error::corrupt(at, format!("key metadata with {n} classes (Redis allows 1 to 7)")));
    }
    let mut classes = Vec::with_capacity(n as usize);
    for _ in 0..n {
        classes.push(MetaClass(c.u32le("key metadata class spec")?));
        skip_opcodes(c, check_strings)?;
    }
    Ok(classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_type_names_round_trip() {
        // docs/format.md §7.1: "ReJSON-RL" encver 3.
        let t = ModuleType::from_name("ReJSON-RL", 3).unwrap();
        assert_eq!(t.0, 0x45E25238DF912C03);
        assert_eq!(t.name(), "ReJSON-RL");
        assert_eq!(t.encver(), 3);
        // §7.4: vector sets.
        assert_eq!(ModuleType(0xBDE72DA2BB1EB400).name(), "vectorset");
        assert_eq!(ModuleType(0xBDE72DA2BB1EB400).encver(), 0);
    }

    #[test]
    fn meta_class_names() {
        // §7.5: 09 F5 C4 28 = KMT1, version 1, ALLOW_IGNORE.
        let c = MetaClass(u32::from_le_bytes([0x09, 0xF5, 0xC4, 0x28]));
        assert_eq!(c.name(), "KMT1");
        assert_eq!(c.version(), 1);
        assert!(c.allow_ignore());
        let c = MetaClass(u32::from_le_bytes([0x19, 0xF6, 0xC4, 0x28]));
        assert_eq!(c.name(), "KMT2");
        assert_eq!(c.version(), 3);
    }
}
