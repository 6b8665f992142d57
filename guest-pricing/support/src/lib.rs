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
//! * a global allocator (`dlmalloc`, the one `std` uses on WebAssembly);
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

use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

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

/// Decodes what [`encode`] wrote (at every `quote` call).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
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
