//! A small deterministic generator (xorshift64*) for tests and benches: the same seed gives the
//! same numbers on every run, so a failure names a reproducible input. Not for anything that
//! needs unpredictable numbers.

/// xorshift64* from a seed (a seed of 0 gives only zeros).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (not quite uniform: good enough for test data).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
