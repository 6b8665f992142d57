//! Support for Tollgate pricing modules written in Rust without `std`.
//!
//! A pricing component built from a `#![no_std]` crate imports nothing, so
//! `wasm-component-ld` adds no WASI adapter: the component is one core
//! instance, which is what makes a fresh instance per call cheap (a `std`
//! module brings Rust's WASI glue: three core instances and a dozen
//! imports, linked to traps, instantiated at every call). Such a crate needs
//! two things `std` would provide, and this crate provides them on
//! WebAssembly when linked (`use tollgate_pricing_guest as _;`):
//!
//! * a global allocator: a bump arena in static memory for the short life
//!   of one call, then `dlmalloc` (the one `std` uses on WebAssembly); see
//!   `heap` for why;
//! * a panic handler: a panic executes `unreachable`, which traps, and the
//!   host fails that one call (`trap`). (Return `Err` for anything a caller
//!   should read: a trap carries no message.)
//! * the canonical ABI's allocator export, `cabi_realloc`, through which the
//!   host copies strings and lists into the instance (`std` exports it on
//!   `wasm32-wasip2`);
//! * the memory builtins (`memcpy`, `memcmp`, ...): `build.rs` links them
//!   from wasi-libc's static library, shipped with the target.
//!
//! And the helpers for the WIT `prepare` step: [`encode`] a parsed
//! configuration once per load, [`decode`] it at every call (postcard:
//! compact and fast; a JSON parse per call costs far more). Decimals go in
//! their exact 16-byte form (`#[serde(with = "tollgate_pricing_guest::decimal")]`),
//! never through text or a float.
//!
//! Natively (tests, benches) nothing is installed: `std` provides both.
//! A module that uses `std` on WebAssembly enables the `std` feature.

#![no_std]

extern crate alloc;

use alloc::string::{String, ToString as _};
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[global_allocator]
static ALLOCATOR: heap::Heap = heap::Heap;

/// The allocator: a bump arena in the module's own static memory first,
/// `dlmalloc` after.
///
/// Why: every call runs in a fresh instance, so every call starts with an
/// empty heap. `dlmalloc` (like wasi-libc's `malloc` in a `std` module)
/// gets its memory with `memory.grow`, so each call grew the linear memory,
/// which the host serves with an `mprotect` system call, and undoes with
/// another one when the slot is reused — two system calls (each changing
/// page tables on every core) and fresh page faults per call. The arena is
/// zero-initialised static memory (`.bss`), part of the module's initial
/// memory: a call that fits in it never grows memory, and allocating is a
/// pointer bump. Freeing gives back only the most recent allocation (the
/// common case of a growing `Vec` or `String`, which is extended in place);
/// anything else is reclaimed when the instance is dropped after the call.
/// A call that needs more than the arena continues in `dlmalloc`, which
/// frees normally, so the worst case is that of `dlmalloc` alone.
#[cfg(any(test, all(target_arch = "wasm32", not(feature = "std"))))]
#[allow(unsafe_code)]
mod heap {
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    /// The arena: 256 KiB. A reference-module call allocates tens of KiB.
    /// Untouched arena pages are never backed, but the host scans the whole
    /// initial memory for written pages after every call, so the arena is
    /// not made larger than calls need.
    const ARENA_BYTES: usize = 256 << 10;

    #[repr(C, align(16))]
    struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

    // SAFETY: a component instance runs one thread; `Sync` is only needed
    // to put the arena in a static.
    unsafe impl Sync for Arena {}

    static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));
    /// Bytes of the arena handed out (the next allocation starts here,
    /// aligned).
    static USED: AtomicUsize = AtomicUsize::new(0);
    static FALLBACK: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

    /// The global allocator.
    #[derive(Debug)]
    pub struct Heap;

    fn base() -> usize {
        ARENA.0.get() as usize
    }

    /// The arena offset of `ptr`, if it is in the arena.
    fn offset(ptr: *mut u8) -> Option<usize> {
        (ptr as usize)
            .checked_sub(base())
            .filter(|&o| o < ARENA_BYTES)
    }

    /// Whether `ptr` is in the arena (for the tests).
    #[cfg(test)]
    pub(crate) fn in_arena(ptr: *mut u8) -> bool {
        offset(ptr).is_some()
    }

    /// Takes `size` bytes aligned to `align` from the arena, if they fit.
    fn bump(size: usize, align: usize) -> Option<*mut u8> {
        let base = base();
        let start = (base + USED.load(Relaxed)).checked_next_multiple_of(align)? - base;
        let end = start.checked_add(size).filter(|&e| e <= ARENA_BYTES)?;
        USED.store(end, Relaxed);
        Some((base + start) as *mut u8)
    }

    // SAFETY: every pointer handed out is either a fresh, aligned, unused
    // range of the arena (below `USED`, never handed out twice while live)
    // or comes from `dlmalloc`; each is returned to where it came from.
    unsafe impl GlobalAlloc for Heap {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            match bump(layout.size(), layout.align()) {
                Some(p) => p,
                // SAFETY: same contract.
                None => unsafe { FALLBACK.alloc(layout) },
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            match offset(ptr) {
                Some(o) => {
                    if o + layout.size() == USED.load(Relaxed) {
                        USED.store(o, Relaxed);
                    }
                }
                // SAFETY: not an arena pointer, so `dlmalloc` made it.
                None => unsafe { FALLBACK.dealloc(ptr, layout) },
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if let Some(o) = offset(ptr)
                && o + layout.size() == USED.load(Relaxed)
                && let Some(end) = o.checked_add(new_size).filter(|&e| e <= ARENA_BYTES)
            {
                // The most recent allocation grows (or shrinks) in place.
                USED.store(end, Relaxed);
                return ptr;
            }
            // SAFETY: `layout.align()` is valid and `new_size` was checked
            // by the caller (GlobalAlloc::realloc's contract).
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: same contract.
            let new = unsafe { self.alloc(new_layout) };
            if !new.is_null() {
                // SAFETY: both ranges are live and distinct; the old one is
                // freed after the copy.
                unsafe {
                    core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
            }
            new
        }
    }
}

/// A panic traps: the host fails the call as `trap`, and the instance is
/// dropped (every call has its own).
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// `cabi_realloc`: the allocation function of the component model's
/// canonical ABI (the same as wit-bindgen's own on targets where `std`
/// does not provide it).
#[cfg(all(target_arch = "wasm32", target_os = "wasi", not(feature = "std")))]
#[allow(unsafe_code)]
mod cabi {
    use alloc::alloc::{Layout, alloc, realloc};

    /// Allocates `new_len` bytes aligned to `align` (`old_len == 0`), or
    /// grows `old_ptr` to `new_len`. Traps when memory runs out (the host
    /// fails the call as `memory`).
    ///
    /// # Safety
    /// Called by the host only, with the canonical ABI's arguments: a valid
    /// power-of-two `align`, and `old_ptr`/`old_len` from an earlier call.
    #[unsafe(export_name = "cabi_realloc")]
    pub unsafe extern "C" fn cabi_realloc(
        old_ptr: *mut u8,
        old_len: usize,
        align: usize,
        new_len: usize,
    ) -> *mut u8 {
        let ptr = if old_len == 0 {
            if new_len == 0 {
                return align as *mut u8;
            }
            // SAFETY: the canonical ABI passes a power-of-two alignment and
            // a size that fits the address space.
            unsafe { alloc(Layout::from_size_align_unchecked(new_len, align)) }
        } else {
            // SAFETY: `old_ptr` was allocated by this function with this
            // layout (the canonical ABI's contract).
            unsafe {
                realloc(
                    old_ptr,
                    Layout::from_size_align_unchecked(old_len, align),
                    new_len,
                )
            }
        };
        if ptr.is_null() {
            core::arch::wasm32::unreachable();
        }
        ptr
    }

    /// wit-bindgen links, on every WebAssembly target, a weak C
    /// `cabi_realloc` that forwards to this versioned symbol (defined by
    /// wit-bindgen itself except on wasm32-wasip2, where `std` exports the
    /// strong one). The linker may pick that weak one before ours, so the
    /// forward target must exist: it is ours. (After a wit-bindgen upgrade
    /// the linker names the new symbol, `env::cabi_realloc_wit_bindgen_*`,
    /// as an unresolved import: rename this to match.)
    ///
    /// # Safety
    /// As [`cabi_realloc`].
    #[unsafe(export_name = "cabi_realloc_wit_bindgen_0_57_1")]
    pub unsafe extern "C" fn cabi_realloc_wit_bindgen(
        old_ptr: *mut u8,
        old_len: usize,
        align: usize,
        new_len: usize,
    ) -> *mut u8 {
        // SAFETY: the same contract.
        unsafe { cabi_realloc(old_ptr, old_len, align, new_len) }
    }
}

/// Encodes a prepared configuration (the bytes `prepare` returns).
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_allocvec(value).map_err(|e| e.to_string())
}

/// Decodes what [`encode`] wrote (at every `quote` call). `T` may borrow
/// from `bytes` (`&'a str` fields instead of `String`: no allocation per
/// text).
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| alloc::format!("prepared configuration: {e}"))
}

/// `#[serde(with = "tollgate_pricing_guest::decimal")]`: a `Decimal` as its
/// exact 16-byte form (no text parsing at decode, no float ever).
pub mod decimal {
    use rust_decimal::Decimal;
    use serde::{Deserialize as _, Deserializer, Serializer};

    /// Writes the 16 bytes.
    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&d.serialize())
    }

    /// Reads the 16 bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let bytes = <&[u8]>::deserialize(d)?;
        let raw: [u8; 16] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a decimal is 16 bytes"))?;
        Ok(Decimal::deserialize(raw))
    }
}

/// `#[serde(with = "tollgate_pricing_guest::option_decimal")]`: an optional
/// `Decimal` (see [`decimal`]).
pub mod option_decimal {
    use rust_decimal::Decimal;
    use serde::{Deserialize as _, Deserializer, Serializer};

    /// `None`, or the 16 bytes.
    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&Wire(d.serialize())),
            None => s.serialize_none(),
        }
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        let bytes = Option::<&[u8]>::deserialize(d)?;
        bytes
            .map(|b| {
                let raw: [u8; 16] = b
                    .try_into()
                    .map_err(|_| serde::de::Error::custom("a decimal is 16 bytes"))?;
                Ok(Decimal::deserialize(raw))
            })
            .transpose()
    }

    /// The 16 bytes, written as bytes (as [`super::decimal`] writes them).
    struct Wire([u8; 16]);

    impl serde::Serialize for Wire {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod heap_tests {
    use core::alloc::{GlobalAlloc, Layout};

    use super::heap::Heap;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    /// The arena's bookkeeping, natively (the same code is the global
    /// allocator of no_std modules on WebAssembly).
    #[test]
    fn the_arena_bumps_frees_the_last_allocation_and_falls_back() {
        let h = Heap;
        // SAFETY: every pointer is used within its layout and freed with it.
        unsafe {
            let a = h.alloc(layout(3, 1));
            let b = h.alloc(layout(8, 8));
            assert_eq!(b as usize % 8, 0, "aligned");
            assert!(b as usize >= a as usize + 3, "no overlap");
            b.write_bytes(0xAB, 8);
            // The most recent allocation grows in place...
            let b2 = h.realloc(b, layout(8, 8), 64);
            assert_eq!(b2, b);
            assert_eq!(*b2.add(7), 0xAB);
            // ...an older one moves, keeping its contents.
            a.write_bytes(7, 3);
            let a2 = h.realloc(a, layout(3, 1), 100);
            assert_ne!(a2, a);
            assert_eq!(*a2.add(2), 7);
            // Freeing the most recent allocation gives its bytes back.
            h.dealloc(a2, layout(100, 1));
            let c = h.alloc(layout(100, 1));
            assert_eq!(c, a2);
            // More than the arena holds comes from dlmalloc, and is freed there.
            let big = h.alloc(layout(1 << 20, 16));
            assert!(!big.is_null());
            big.write_bytes(1, 1 << 20);
            assert!(!super::heap::in_arena(big) && super::heap::in_arena(c));
            h.dealloc(big, layout(1 << 20, 16));
            h.dealloc(c, layout(100, 1));
            h.dealloc(b2, layout(64, 8));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Prepared {
        name: String,
        #[serde(with = "decimal")]
        rate: Decimal,
        #[serde(with = "option_decimal")]
        cap: Option<Decimal>,
        #[serde(with = "option_decimal")]
        none: Option<Decimal>,
    }

    #[test]
    fn prepared_values_round_trip_exactly() {
        let p = Prepared {
            name: "spring".into(),
            rate: Decimal::new(-123_456_789, 10),
            cap: Some(Decimal::new(5_000_000, 2)),
            none: None,
        };
        let bytes = encode(&p).unwrap();
        let back: Prepared = decode(&bytes).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.rate.to_string(), "-0.0123456789");
        assert!(decode::<Prepared>(&bytes[..bytes.len() - 3]).is_err());
    }
}
