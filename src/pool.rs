//! The binary's memory allocator: small blocks are kept for reuse instead of going back to the
//! kernel.
//!
//! Why it exists: musl's malloc (the release binary is static musl) maps and unmaps memory for
//! small allocations as they come and go, and a run builds and drops many small strings (every
//! rule parsed from iptables-save, rendered, compared). perf on a no-op run showed a third of
//! the module's own CPU time in mmap, munmap and their page faults; with the blocks kept, a
//! no-op's CPU time falls by about that much (BENCHMARKS.md, part 1).
//!
//! Blocks of up to `LARGEST` bytes (alignment at most 16) come in size classes; a freed block
//! goes on its class's free list and is handed out again for the next block of that class. New
//! blocks are cut from chunks of `CHUNK` bytes taken from the system allocator, which are never
//! given back: a run lasts milliseconds and the kernel takes everything back at its exit.
//! Larger or more aligned blocks go to the system allocator as before. One spin lock guards the
//! lists: the only other threads are the few that feed and drain a child's pipes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

/// The size classes, in bytes: multiples of 16 (so every block is 16-aligned), each at most
/// 1.5 times the one before, which bounds the space a block wastes.
const CLASSES: [usize; 16] = [
    16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096,
];
/// The largest block kept.
const LARGEST: usize = CLASSES[CLASSES.len() - 1];
/// The alignment every block has.
const ALIGN: usize = 16;
/// How much is taken from the system allocator at a time.
const CHUNK: usize = 64 * 1024;

/// The allocator (`#[global_allocator]` in main.rs).
pub struct Pool {
    locked: AtomicBool,
    state: UnsafeCell<State>,
}

/// What the lock guards.
struct State {
    /// The first free block of each class; each free block holds the address of the next.
    free: [*mut u8; CLASSES.len()],
    /// The unused rest of the current chunk.
    next: *mut u8,
    end: *mut u8,
}

// SAFETY: `state` is only touched with `locked` held (`Pool::with`).
unsafe impl Sync for Pool {}

impl Pool {
    pub const fn new() -> Pool {
        Pool {
            locked: AtomicBool::new(false),
            state: UnsafeCell::new(State {
                free: [ptr::null_mut(); CLASSES.len()],
                next: ptr::null_mut(),
                end: ptr::null_mut(),
            }),
        }
    }

    /// Runs `f` with the lock held.
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: the lock is held, so no other reference to the state exists.
        let out = f(unsafe { &mut *self.state.get() });
        self.locked.store(false, Ordering::Release);
        out
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new()
    }
}

/// The class of a block of this layout, or `None` when the system allocator takes it.
fn class(layout: Layout) -> Option<usize> {
    if layout.align() > ALIGN || layout.size() > LARGEST {
        return None;
    }
    CLASSES.iter().position(|&c| layout.size() <= c)
}

// SAFETY: every block handed out is `CLASSES[i]` bytes (at least the layout's size), 16-aligned
// (chunks are, and every class is a multiple of 16), and used by one owner until it is freed
// and listed again; the rest is the system allocator's.
unsafe impl GlobalAlloc for Pool {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(i) = class(layout) else {
            return System.alloc(layout);
        };
        let size = CLASSES[i];
        self.with(|s| {
            let head = s.free[i];
            if !head.is_null() {
                s.free[i] = head.cast::<*mut u8>().read();
                return head;
            }
            if (s.end as usize) - (s.next as usize) < size {
                let chunk = System.alloc(Layout::from_size_align_unchecked(CHUNK, ALIGN));
                if chunk.is_null() {
                    return chunk;
                }
                s.next = chunk;
                s.end = chunk.add(CHUNK);
            }
            let block = s.next;
            s.next = block.add(size);
            block
        })
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(i) = class(layout) else {
            return System.dealloc(block, layout);
        };
        self.with(|s| {
            block.cast::<*mut u8>().write(s.free[i]);
            s.free[i] = block;
        })
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = Layout::from_size_align_unchecked(new_size, layout.align());
        match (class(layout), class(new)) {
            // The block already has room.
            (Some(a), Some(b)) if a == b => block,
            // Both the system's: it may grow the block where it is.
            (None, None) => System.realloc(block, layout, new_size),
            _ => {
                let moved = self.alloc(new);
                if !moved.is_null() {
                    ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                    self.dealloc(block, layout);
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn a_freed_block_is_handed_out_again_for_its_class_only() {
        let pool = Pool::new();
        unsafe {
            let a = pool.alloc(layout(40, 8));
            let b = pool.alloc(layout(40, 8));
            assert_ne!(a, b);
            assert_eq!(
                b as usize - a as usize,
                48,
                "cut one after the other from the chunk"
            );
            pool.dealloc(a, layout(40, 8));
            // Another class does not take it; the same class (any size in it) does.
            let c = pool.alloc(layout(20, 4));
            assert_ne!(c, a);
            assert_eq!(pool.alloc(layout(33, 1)), a);
        }
    }

    #[test]
    fn blocks_are_aligned_and_hold_their_bytes_through_realloc() {
        let pool = Pool::new();
        unsafe {
            let mut size = 1;
            let mut block = pool.alloc(layout(size, 1));
            block.write(7);
            // Grow through every class and out to the system allocator, and back.
            for new in [5, 16, 17, 100, 1000, 4096, 4097, 100_000, 3000, 10] {
                let grown = pool.realloc(block, layout(size, 1), new);
                assert!(!grown.is_null());
                assert_eq!(grown.read(), 7, "the first byte survives {size} -> {new}");
                assert_eq!(grown as usize % ALIGN, 0);
                block = grown;
                size = new;
            }
            // Within its class the block stays where it is.
            assert_eq!(pool.realloc(block, layout(size, 1), 12), block);
            pool.dealloc(block, layout(12, 1));
            for (size, align) in [(1, 1), (24, 8), (4096, 16), (64, 32), (5000, 8)] {
                let b = pool.alloc(layout(size, align));
                assert_eq!(b as usize % align, 0, "{size} bytes aligned to {align}");
                b.write_bytes(0xAB, size);
                pool.dealloc(b, layout(size, align));
            }
        }
    }

    #[test]
    fn threads_get_distinct_blocks() {
        static POOL: Pool = Pool::new();
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut kept = Vec::new();
                    for i in 0..2000usize {
                        let l = layout(16 + i % 200, 8);
                        let b = unsafe { POOL.alloc(l) };
                        unsafe { b.write_bytes(t, l.size()) };
                        kept.push((b as usize, l));
                        if i % 3 == 0 {
                            let (b, l) = kept.swap_remove(i % kept.len());
                            unsafe { POOL.dealloc(b as *mut u8, l) };
                        }
                    }
                    // Nobody else wrote into this thread's blocks.
                    for &(b, l) in &kept {
                        let bytes = unsafe { std::slice::from_raw_parts(b as *const u8, l.size()) };
                        assert!(bytes.iter().all(|&x| x == t));
                    }
                    kept
                })
            })
            .collect();
        let mut all: Vec<usize> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .map(|(b, _)| b)
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "no block was handed out twice");
    }
}
