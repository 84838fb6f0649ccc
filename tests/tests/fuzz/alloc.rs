//! A counting global allocator: the peak of live bytes and the largest single request, per
//! thread, so that a parser that allocates far more than its input justifies is caught even
//! when the allocation would succeed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Requests larger than this fail (the process aborts naming the size) instead of reaching the
/// system: a parser must never ask for it, and the machine must not swap while one does.
const REFUSED: usize = 8 << 30;

pub struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn grew(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(size);
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

fn shrank(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size)));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// thread-local cells without destructors, touched through `try_with`.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > REFUSED {
            return std::ptr::null_mut();
        }
        grew(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > REFUSED {
            return std::ptr::null_mut();
        }
        grew(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > REFUSED {
            return std::ptr::null_mut();
        }
        shrank(layout.size());
        grew(new_size);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Start measuring on this thread: the peak restarts from the live bytes.
pub fn reset() {
    let live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(live));
    LARGEST.with(|l| l.set(0));
}

/// Bytes allocated on this thread beyond what was live at [`reset`], at the peak; and the
/// largest single request since.
pub fn measured(baseline: usize) -> (usize, usize) {
    (
        PEAK.with(Cell::get).saturating_sub(baseline),
        LARGEST.with(Cell::get),
    )
}

/// Live bytes on this thread now.
pub fn live() -> usize {
    LIVE.with(Cell::get)
}
