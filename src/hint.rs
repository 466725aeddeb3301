//! Cache hints: a prefetch asks the CPU for a cache line before it is read. They change no
//! result, only when memory is waited for; where unsupported they do nothing. The crate's one
//! prefetch (tables, output vectors, the file's bytes a page ahead).

/// A prefetch of the spare capacity of `v`, `ahead` elements past its end: a vector pushed to
/// now and then among many others (buckets filled in turn) finds its next cache line there.
#[inline(always)]
pub fn prefetch_tail<T>(v: &mut Vec<T>, ahead: usize) {
    if let Some(s) = v.spare_capacity_mut().get(ahead) {
        prefetch(s);
    }
}

/// A hint that `*at` will be read soon: brings its cache line in (no effect on what the program
/// does; nothing where unsupported).
#[inline(always)]
pub fn prefetch<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of every x86_64 target; a prefetch reads nothing and cannot
        // fault, and the address is that of a live value.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((at as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
