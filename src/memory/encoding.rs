//! The in-memory encodings the estimator gives a value (`OBJECT ENCODING` after a load).

use serde::Serialize;

/// An in-memory encoding as Redis 7.0 names it. The variants are declared in the order of their
/// names, so that the derived order is the alphabetical one the reports list them in; `enc as
/// usize` is the place sums per encoding are kept at. A whole word, so that [`KeyFigures`]
/// has no padding: its seven bytes after a one-byte encoding were copied with overlapping
/// stores and loaded back at every key, a stall costing `report` 2% of its time.
///
/// [`KeyFigures`]: crate::memory::KeyFigures
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u64)]
pub enum Encoding {
    /// A string of up to 44 bytes, allocated with its object.
    Embstr,
    /// A dict (sets and hashes past their small-encoding thresholds).
    Hashtable,
    /// A string held as an integer in the object.
    Int,
    /// A set of integers, packed.
    Intset,
    /// A small hash or zset in one listpack.
    Listpack,
    /// A module value (no `OBJECT ENCODING` of its own: named here for the reports).
    Module,
    /// A list: linked listpack nodes.
    Quicklist,
    /// A longer string in its own sds allocation.
    Raw,
    /// A zset past its listpack thresholds: dict and skiplist.
    Skiplist,
    /// A stream: radix tree of listpacks.
    Stream,
}

impl Encoding {
    /// Every encoding, in the order of their discriminants (and names).
    pub const ALL: [Encoding; 10] = [
        Encoding::Embstr,
        Encoding::Hashtable,
        Encoding::Int,
        Encoding::Intset,
        Encoding::Listpack,
        Encoding::Module,
        Encoding::Quicklist,
        Encoding::Raw,
        Encoding::Skiplist,
        Encoding::Stream,
    ];

    /// The name `OBJECT ENCODING` gives.
    pub const fn as_str(self) -> &'static str {
        match self {
            Encoding::Embstr => "embstr",
            Encoding::Hashtable => "hashtable",
            Encoding::Int => "int",
            Encoding::Intset => "intset",
            Encoding::Listpack => "listpack",
            Encoding::Module => "module",
            Encoding::Quicklist => "quicklist",
            Encoding::Raw => "raw",
            Encoding::Skiplist => "skiplist",
            Encoding::Stream => "stream",
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// `ALL` holds each encoding at its discriminant, in the order of their names (what the derived
// `Ord` then follows).
const _: () = {
    let mut i = 0;
    while i < Encoding::ALL.len() {
        assert!(Encoding::ALL[i] as usize == i);
        if i > 0 {
            let (a, b) = (Encoding::ALL[i - 1].as_str().as_bytes(), Encoding::ALL[i].as_str().as_bytes());
            let mut j = 0;
            while j < a.len() && j < b.len() && a[j] == b[j] {
                j += 1;
            }
            assert!(if j < a.len() && j < b.len() { a[j] < b[j] } else { a.len() < b.len() });
        }
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_serialize_and_sort_as_strings() {
        for e in Encoding::ALL {
            assert_eq!(serde_json::to_string(&e).unwrap(), format!("\"{}\"", e.as_str()));
            assert_eq!(e.to_string(), e.as_str());
        }
        for a in Encoding::ALL {
            for b in Encoding::ALL {
                assert_eq!(a.cmp(&b), a.as_str().cmp(b.as_str()), "{a} {b}");
            }
        }
    }
}
