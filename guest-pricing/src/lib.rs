//! The reference Tollgate pricing module: a WebAssembly component that
//! implements the `tollgate:pricing` world in `wit/`.
//!
//! This first version only describes itself; the pricing issue adds
//! `price`, `bundle` and `admit`, configured by data from `policies/`.

/// The generated bindings: the only place unsafe code is allowed (the
/// canonical-ABI glue wit-bindgen writes).
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "pricing",
    });

    use super::ReferencePricing;
    export!(ReferencePricing);
}

use bindings::{Guest, ModuleInfo};

#[derive(Debug)]
struct ReferencePricing;

impl Guest for ReferencePricing {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "reference-pricing".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            self_check_error: None,
        }
    }
}
