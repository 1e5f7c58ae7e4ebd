//! Reused, page-aligned buffers for pieces received into memory.
//!
//! A piece assembled in memory travels to the SHA-1 job, the disk thread and
//! the file SHA-256 thread, and is then dropped. A fresh allocation of a
//! whole piece (1-4 MiB) comes from the kernel as new pages each time, which
//! the kernel must zero on first touch (and, on a virtual machine whose host
//! reclaims freed guest memory, back again): at 4 GiB that was 7% of a
//! client's CPU. The buffers here go back to a small process-wide pool when
//! their [`bytes::Bytes`] is dropped, so the same warm pages carry piece after
//! piece. They start on a 4 KiB boundary so the disk thread can write them
//! with `O_DIRECT` ([`crate::store::Storage::write_checked`]).

use std::sync::Mutex;

use bytes::Bytes;

/// Alignment of every buffer's start (the largest logical block size
/// `O_DIRECT` asks for on common file systems).
pub(crate) const ALIGN: usize = 4096;

/// Bytes of idle buffers the pool keeps at most, all swarms together; more
/// go back to the allocator.
const POOL_IDLE_MAX: usize = 64 << 20;

static POOL: Mutex<Pool> = Pool::new();

struct Pool {
    idle: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pool {
    const fn new() -> Mutex<Pool> {
        Mutex::new(Pool {
            idle: Vec::new(),
            bytes: 0,
        })
    }
}

/// A buffer of `len` bytes whose first byte is [`ALIGN`]ed.
pub(crate) struct PieceBuf {
    /// Over-allocated by up to [`ALIGN`] so an aligned start fits; never
    /// resized, so the start does not move.
    vec: Vec<u8>,
    off: usize,
    len: usize,
    pool: &'static Mutex<Pool>,
}

fn aligned_offset(vec: &[u8]) -> usize {
    vec.as_ptr().align_offset(ALIGN)
}

impl PieceBuf {
    /// A buffer of `len` bytes, reused from the pool when one fits. Its
    /// contents are unspecified (zeros or an earlier piece's bytes): the
    /// caller overwrites every byte it uses.
    pub(crate) fn take(len: usize) -> PieceBuf {
        Self::take_from(&POOL, len)
    }

    fn take_from(pool: &'static Mutex<Pool>, len: usize) -> PieceBuf {
        let reused = pool.lock().ok().and_then(|mut pool| {
            // Smallest idle buffer that fits, not more than twice too big.
            let i = pool
                .idle
                .iter()
                .enumerate()
                .filter(|(_, v)| {
                    let room = v.len() - aligned_offset(v).min(v.len());
                    room >= len && v.len() <= 2 * len + 2 * ALIGN
                })
                .min_by_key(|(_, v)| v.len())
                .map(|(i, _)| i)?;
            let v = pool.idle.swap_remove(i);
            pool.bytes -= v.len();
            Some(v)
        });
        let vec = reused.unwrap_or_else(|| vec![0u8; len.div_ceil(ALIGN) * ALIGN + ALIGN]);
        let off = aligned_offset(&vec);
        debug_assert!(off + len <= vec.len());
        PieceBuf {
            vec,
            off,
            len,
            pool,
        }
    }

    /// Hand the bytes over as [`Bytes`]; the buffer returns to the pool when
    /// the last clone is dropped.
    pub(crate) fn into_bytes(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl std::ops::Deref for PieceBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.vec[self.off..self.off + self.len]
    }
}

impl std::ops::DerefMut for PieceBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.vec[self.off..self.off + self.len]
    }
}

impl AsRef<[u8]> for PieceBuf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Drop for PieceBuf {
    fn drop(&mut self) {
        let vec = std::mem::take(&mut self.vec);
        if let Ok(mut pool) = self.pool.lock() {
            if pool.bytes + vec.len() <= POOL_IDLE_MAX {
                pool.bytes += vec.len();
                pool.idle.push(vec);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_sized_and_reused() {
        static TEST_POOL: Mutex<Pool> = Pool::new();
        let mut a = PieceBuf::take_from(&TEST_POOL, 100_000);
        assert_eq!(a.len(), 100_000);
        assert_eq!(a.as_ptr() as usize % ALIGN, 0);
        a[99_999] = 7;
        let start = a.as_ptr() as usize;
        let bytes = a.into_bytes();
        assert_eq!(bytes.len(), 100_000);
        assert_eq!(bytes.as_ptr() as usize, start, "no copy into Bytes");
        assert_eq!(bytes[99_999], 7);
        let clone = bytes.slice(10..);
        drop(bytes);
        assert_eq!(clone[99_989], 7, "a slice keeps the buffer alive");
        assert!(TEST_POOL.lock().unwrap().idle.is_empty());
        drop(clone);
        assert_eq!(TEST_POOL.lock().unwrap().idle.len(), 1, "back in the pool");
        let tiny = PieceBuf::take_from(&TEST_POOL, 10);
        assert_ne!(tiny.as_ptr() as usize, start, "not lent for a tiny piece");
        let b = PieceBuf::take_from(&TEST_POOL, 99_000);
        assert_eq!(b.len(), 99_000);
        assert_eq!(b.as_ptr() as usize, start, "the same buffer again");
        assert!(TEST_POOL.lock().unwrap().idle.is_empty());
        drop((b, tiny));
        let big = PieceBuf::take_from(&TEST_POOL, POOL_IDLE_MAX);
        drop(big);
        assert_eq!(
            TEST_POOL.lock().unwrap().idle.len(),
            2,
            "a buffer past the idle limit is freed"
        );
    }
}
