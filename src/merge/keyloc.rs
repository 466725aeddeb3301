//! Where a key record is, packed in 64 bits (the planner's per-key payload).

/// Where a key record is: the input, the offset of the record, and whether it has a TTL
/// (so the counts can be corrected without reading it again). Packed in 64 bits as the payload
/// of a fingerprint set entry (16 bytes a key): input in the top 16 bits, the offset (47 bits,
/// 128 TiB) below it, the TTL flag in bit 0, so that the order of locations is input order,
/// then file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct KeyLoc(u64);

impl KeyLoc {
    /// Inputs larger than this cannot be located.
    pub(super) const MAX_OFFSET: u64 = (1 << 47) - 1;

    pub(super) fn new(input: usize, offset: u64, ttl: bool) -> KeyLoc {
        debug_assert!(input <= u16::MAX as usize && offset <= Self::MAX_OFFSET);
        KeyLoc(((input as u64) << 48) | (offset << 1) | ttl as u64)
    }
    pub(super) fn input(self) -> usize {
        (self.0 >> 48) as usize
    }
    pub(super) fn offset(self) -> u64 {
        (self.0 >> 1) & Self::MAX_OFFSET
    }
    pub(super) fn has_ttl(self) -> bool {
        self.0 & 1 != 0
    }
    pub(super) fn payload(self) -> u64 {
        self.0
    }
    pub(super) fn from_payload(p: u64) -> KeyLoc {
        KeyLoc(p)
    }
}
