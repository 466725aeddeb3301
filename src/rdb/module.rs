//! Module values, MODULE_AUX and key metadata are opcode streams that any reader can skip without
//! knowing the module (what redis-check-rdb does): `(LEN opcode, payload)*` ended by opcode 0.

use crate::error::{Error, Result};
use crate::rdb::cursor::Cursor;

/// Opcode 0: the end of an opcode stream (docs/format.md §7.2).
pub const OPCODE_EOF: u64 = 0;
/// Opcode 1: a signed integer, a `LEN` whose bits are read as `i64`.
pub const OPCODE_SINT: u64 = 1;
/// Opcode 2: an unsigned integer, a `LEN` (current servers write signed ones this way too).
pub const OPCODE_UINT: u64 = 2;
/// Opcode 3: an `f32le`.
pub const OPCODE_FLOAT: u64 = 3;
/// Opcode 4: an `f64le`.
pub const OPCODE_DOUBLE: u64 = 4;
/// Opcode 5: a `STR`, possibly integer-encoded or LZF-compressed.
pub const OPCODE_STRING: u64 = 5;

/// A 64-bit module type id: nine 6-bit characters and a 10-bit encoding version
/// (docs/format.md §7.1). The field is the id as stored.
///
/// ```
/// use rdbtool::rdb::module::ModuleType;
///
/// let t = ModuleType::from_name("ReJSON-RL", 3).unwrap();
/// assert_eq!(t.0, 0x45E25238DF912C03);
/// assert_eq!((t.name().as_str(), t.encver()), ("ReJSON-RL", 3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModuleType(pub u64);

const TYPE_CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl ModuleType {
    /// The module type's 9-character name (`ReJSON-RL`, `vectorset`): every id has one.
    pub fn name(&self) -> String {
        (0..9).map(|i| TYPE_CHARSET[((self.0 >> (58 - 6 * i)) & 63) as usize] as char).collect()
    }
    /// The encoding version the module saved the value with (the low 10 bits, 0 to 1023).
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

/// A key-metadata class spec (Redis 8.6 KEY_META, docs/format.md §7.5): 4-char name, version,
/// flags. The field is the `u32le` as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaClass(pub u32);

impl MetaClass {
    /// The class's 4-character name (`KMT1`).
    pub fn name(&self) -> String {
        (0..4).map(|i| CLASS_CHARSET[((self.0 >> (26 - 6 * i)) & 63) as usize] as char).collect()
    }
    /// The class's version (bits 7-3, 0 to 31).
    pub fn version(&self) -> u32 {
        (self.0 >> 3) & 31
    }
    /// The ALLOW_IGNORE flag: a server without the class may drop the metadata instead of
    /// refusing the file.
    pub fn allow_ignore(&self) -> bool {
        self.0 & 1 != 0
    }
}

/// Consumes one opcode stream up to and including its EOF opcode. With `check_strings`, LZF
/// strings inside are also checked to decompress (deep validation).
///
/// # Errors
///
/// An unknown opcode (with its offset), or a field cut short by the end of the input.
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
/// opcode stream (docs/format.md §7.5). Returns the class specs in file order.
///
/// # Errors
///
/// A class count outside 1..=7, or any error of [`skip_opcodes`].
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
