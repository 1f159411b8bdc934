//! A bump allocator for plugins (feature `bump-allocator`, wasm only): the
//! right allocator for an instance that lives for exactly one call.
//!
//! Why: the gateway creates a fresh instance for every call and throws its
//! whole linear memory away afterwards, so nothing a plugin allocates needs to
//! be reusable after the call. Rust's default wasm allocator (dlmalloc) pays
//! for free lists it never gets to use, and it always starts its heap with
//! `memory.grow` past the memory the module was linked with, so every call grew
//! memory at least once; with wasmtime's pooling allocator a grow is an
//! `mprotect` (and a TLB shootdown) on the way in and another when the slot is
//! reset. This allocator hands out memory from `__heap_base` upwards, first
//! inside the memory the module starts with, and grows only when that is used
//! up. Measured with `gateway/benches/plugin_invoke.rs` (compose-template,
//! ~0.8 KB event, fresh instance per call, 2 shared cores): p50 37.6 → 27.4 µs
//! per call, a near-empty call 10.0 → 4.6 µs, fuel 266 k → 205 k; memory grows
//! per call went from 1 to 0 (the heap fits in the memory the module starts
//! with: 320 KiB then, 192 KiB since the built-ins' stack went to 128 KiB).
//!
//! What it does:
//! - `alloc`: aligns the top of the heap, bumps it, grows memory if needed (by
//!   at least [`GROW_PAGES`], else by exactly what is needed, so a plugin near
//!   its memory limit is not refused early);
//! - `dealloc`: gives the block back only when it is the last one handed out
//!   (the common case for temporaries); other blocks stay used until the call
//!   ends;
//! - `realloc`: grows or shrinks the last block in place (a `String` or `Vec`
//!   being built), otherwise allocates and copies.
//!
//! The cost: memory freed out of order is not reused within a call, so a call
//! peaks higher than with dlmalloc (for compose-template on a 1 MiB event, a
//! few times the payload size, well inside the gateway's 32 MiB default).
//! When the gateway refuses to grow memory, `alloc` returns null and the call
//! fails with the gateway's memory-limit error, as with any allocator.
//!
//! Opt-in, because a crate may have only one global allocator: a plugin that
//! keeps building and dropping large buffers in an interleaved order is better
//! served by the default allocator.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Wasm page size.
const PAGE: usize = 64 * 1024;

/// Smallest growth (1 MiB), so a call that outgrows its initial memory grows
/// a few times rather than once per page.
const GROW_PAGES: usize = 16;

extern "C" {
    /// First byte after the data segments and the stack, set by the linker.
    static __heap_base: u8;
}

/// The allocator; installed as the global allocator by this module.
pub struct Bump {
    /// Next free address; 0 until the first allocation.
    top: AtomicUsize,
}

#[global_allocator]
static ALLOCATOR: Bump = Bump {
    top: AtomicUsize::new(0),
};

impl Bump {
    /// The current top of the heap.
    fn top(&self) -> usize {
        match self.top.load(Ordering::Relaxed) {
            // Only the address of the linker symbol is taken, never its value.
            0 => core::ptr::addr_of!(__heap_base) as usize,
            top => top,
        }
    }

    /// Makes sure linear memory reaches `end`; false if it cannot grow.
    fn reserve(end: usize) -> bool {
        // Saturating: a full 4 GiB memory is 65,536 pages, one byte past `usize::MAX`.
        let size = wasm32::memory_size(0).saturating_mul(PAGE);
        if end <= size {
            return true;
        }
        let needed = (end - size).div_ceil(PAGE);
        wasm32::memory_grow(0, needed.max(GROW_PAGES)) != usize::MAX
            || wasm32::memory_grow(0, needed) != usize::MAX
    }
}

// SAFETY: every block handed out lies between `__heap_base` and the end of
// linear memory, above every block still in use (the top only moves down
// when the last block is freed or shrunk), and is aligned as asked. Wasm
// without the threads proposal runs one thread, so the relaxed atomics are
// plain loads and stores and no two calls interleave.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let top = self.top();
        let Some(start) = top.checked_next_multiple_of(layout.align()) else {
            return core::ptr::null_mut();
        };
        let Some(end) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if !Self::reserve(end) {
            return core::ptr::null_mut();
        }
        self.top.store(end, Ordering::Relaxed);
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let start = ptr as usize;
        if start + layout.size() == self.top() {
            self.top.store(start, Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        if start + layout.size() == self.top() {
            let Some(end) = start.checked_add(new_size) else {
                return core::ptr::null_mut();
            };
            if !Self::reserve(end) {
                return core::ptr::null_mut();
            }
            self.top.store(end, Ordering::Relaxed);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `layout.align()` is a valid alignment and the caller
        // guarantees `new_size`, rounded up to it, does not overflow `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_layout` has a non-zero size (it is larger than the old one).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for `layout.size()` bytes and the new
            // one starts above the old one's end, so they do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
        }
        new
    }
}
