//! Where a key's prefixes end: its separators found 16 bytes at a time, up to the depth asked,
//! and the hash the prefix table tells prefixes apart by.

use super::Options;

/// Appends the (hash, length) of each prefix of `key` the report counts: up to and including
/// each separator, at most `opts.depth` of them.
#[inline(always)]
pub fn prefix_hashes(key: &[u8], opts: &Options, out: &mut Vec<(u64, u32)>) {
    each_prefix_end(key, head_words(key), opts, |len| out.push((prefix_hash(&key[..len]), len as u32)));
}

/// Calls `f` with the length of each prefix of `key` the report counts (see `prefix_hashes`),
/// `head` its first 16 bytes (`head_words`). The separators are found 16 bytes at a time, as
/// a mask of one bit a byte.
#[inline(always)]
pub(super) fn each_prefix_end(key: &[u8], head: (u64, u64), opts: &Options, mut f: impl FnMut(usize)) {
    if opts.depth == 0 {
        return;
    }
    let seps = opts.separators.as_slice();
    let matches = |w: u64| match seps {
        &[sep] => byte_matches(w, sep),
        seps => seps.iter().fold(0, |m, &sep| m | byte_matches(w, sep)),
    };
    // One call of `f` (a second would keep it out of line).
    let n = key.len();
    let mut level = 0;
    let mut at = 0;
    let (mut a, mut b) = head;
    loop {
        // Bytes past the end are zeros: they would match a zero separator.
        let live = !(u32::MAX << (n - at).min(16));
        let mut m = (byte_mask(matches(a)) | byte_mask(matches(b)) << 8) & live;
        while m != 0 {
            f(at + m.trailing_zeros() as usize + 1);
            level += 1;
            if level >= opts.depth {
                return;
            }
            m &= m - 1;
        }
        at += 16;
        if at >= n {
            return;
        }
        (a, b) = head_words(&key[at..]);
    }
}

/// One bit a byte of `x` (bit i for byte i) from the top bit of each byte (`byte_matches`'s
/// 0x80 marks): the multiplication moves the eight top bits into the top byte without carries.
#[inline(always)]
fn byte_mask(x: u64) -> u32 {
    ((x & 0x8080_8080_8080_8080).wrapping_mul(0x0002_0408_1020_4081) >> 56) as u32
}

/// The first 16 bytes of `key` as two little-endian words, zeros past its end (read as whole
/// words, as `tail_word`; a key of 8 bytes or more without a branch on its length).
#[inline(always)]
pub(super) fn head_words(key: &[u8]) -> (u64, u64) {
    let word = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().unwrap_or_default());
    let n = key.len();
    if n < 8 {
        return (tail_word(key), 0);
    }
    // Bytes 8 to 16 (or to the end): the word ending there, its bytes before 8 shifted out.
    let end = n.min(16);
    let high = word(end - 8) >> ((8 * (16 - end)) & 63);
    (word(0), if n > 8 { high } else { 0 })
}

/// The last `key.len() % 8` bytes of `key` as a little-endian word, zeros above them. Read as
/// whole words where the key allows (bytes stored one by one and read back as a word would
/// wait for the stores).
#[inline(always)]
fn tail_word(key: &[u8]) -> u64 {
    let n = key.len() % 8;
    let len = key.len();
    match n {
        0 => 0,
        _ if len >= 8 => u64::from_le_bytes(key[len - 8..].try_into().unwrap_or_default()) >> (64 - 8 * n),
        // A key shorter than a word: two overlapping reads (their common bytes agree).
        4.. => {
            let lo = u32::from_le_bytes(key[..4].try_into().unwrap_or_default()) as u64;
            let hi = u32::from_le_bytes(key[len - 4..].try_into().unwrap_or_default()) as u64;
            lo | hi << (8 * (len - 4))
        }
        _ => key[0] as u64 | (key[len / 2] as u64) << (8 * (len / 2)) | (key[len - 1] as u64) << (8 * (len - 1)),
    }
}

/// 0x80 in each byte of `x` equal to `b`, 0 in the others (exact: no carry crosses bytes).
#[inline(always)]
fn byte_matches(x: u64, b: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let y = x ^ (0x0101_0101_0101_0101 * b as u64);
    !(((y & LOW7) + LOW7) | y | LOW7)
}

/// The table's hash of a prefix: never 0, which a log entry uses for "none" (a prefix that
/// hashes to 0 is given 1; the table and the log agree, as both hash here).
#[inline]
pub fn prefix_hash(prefix: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(prefix).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prefixes found eight bytes at a time are those found byte by byte, for one
    /// separator or several, whatever the key's length (its ends in the last word or not).
    #[test]
    fn prefix_ends_eight_bytes_at_a_time_as_byte_by_byte() {
        let opts = |seps: &[u8], depth| Options {
            top: 1,
            separators: seps.to_vec(),
            depth,
            max_prefixes: 1,
            now_ms: 0,
            filter: crate::filter::Filter::default(),
            largest_element: false,
        };
        let bytewise = |key: &[u8], seps: &[u8], depth: usize| -> Vec<(u64, u32)> {
            let ends = key.iter().enumerate().filter(|&(_, b)| seps.contains(b)).take(depth);
            ends.map(|(i, _)| (prefix_hash(&key[..=i]), i as u32 + 1)).collect()
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..40 {
            for seps in [&b":"[..], &[0], &[0xff], &[0x7f], &[0x80], b":/", &[0, b'a'], b"abc"] {
                let sep = seps[0];
                for round in 0..20 {
                    // Bytes from a small alphabet around the separator (its neighbours too).
                    let key: Vec<u8> = (0..len)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            [sep, sep ^ 1, sep.wrapping_add(1), sep.wrapping_sub(1), b'a', 0, 0xff, b'/']
                                [(x % 8) as usize]
                        })
                        .collect();
                    for depth in [1, 2, 3, 64] {
                        let mut got = Vec::new();
                        prefix_hashes(&key, &opts(seps, depth), &mut got);
                        assert_eq!(
                            got,
                            bytewise(&key, seps, depth),
                            "{key:?} seps {seps:?} depth {depth} round {round}"
                        );
                    }
                }
            }
        }
    }

    /// The first 16 bytes of a key read as words are its bytes, zeros past its end.
    #[test]
    fn head_words_are_the_first_bytes() {
        let key: Vec<u8> = (1..=40).collect();
        for n in 0..=40 {
            let mut b = [0u8; 16];
            let k = n.min(16);
            b[..k].copy_from_slice(&key[..k]);
            let want = (u64::from_le_bytes(b[..8].try_into().unwrap()), u64::from_le_bytes(b[8..].try_into().unwrap()));
            assert_eq!(head_words(&key[..n]), want, "length {n}");
        }
    }
}
