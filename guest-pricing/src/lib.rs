//! The reference Tollgate pricing module: a WebAssembly component that
//! implements the `tollgate:pricing` world in `wit/pricing.wit`.
//!
//! Everything it does is driven by the partner's configuration (JSON text;
//! the example is `policies/pricing/reference.toml`), so one build serves
//! every partner:
//!
//! * `quote`, in one call per order:
//!   * prices: markup (positive) or discount (negative) percentages by scope
//!     (global, product, customer group, SKU and its configuration, region,
//!     customer); the most specific matching rule wins, ties go to the rule
//!     written first (the AWS Billing Conductor model). A rule may instead
//!     carry graduated or volume tiers over the instance count, and a fixed
//!     fee per instance. Amounts are rounded once per line (half-up to 2
//!     decimals unless configured otherwise).
//!   * bundles: the partner's own products added per matching line (e.g. a
//!     managed-operations fee per ECS instance per month).
//!   * admission (purchases): quota rules (allowed regions, denied SKUs, max
//!     instances per line, max order amount), scoped by customer, group or
//!     product.
//! * `describe`: name, version and a check of the configuration.
//! * `prepare`: the configuration parsed and checked once per load, as
//!   compact bytes ([`tollgate_pricing_guest::encode`]) that every `quote`
//!   decodes in a fraction of a JSON parse.
//!
//! Built `no_std` (with `tollgate-pricing-guest` for the allocator and panic
//! handler), so the component imports nothing and is one core instance:
//! cheap to instantiate at every call. The logic lives in [`engine`] on the
//! generated WIT types, so the same code also runs natively (the bench
//! compares the two).

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

// The allocator and panic handler of a no_std component.
use tollgate_pricing_guest as _;

pub mod config;
pub mod engine;
pub mod money;

/// The generated bindings: the only place unsafe code is allowed (the
/// canonical-ABI glue wit-bindgen writes).
#[allow(unsafe_code, missing_debug_implementations, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "pricing",
    });

    // The component exports exist only in the WebAssembly build; natively
    // this crate is a plain library (the bench's "native" comparison).
    #[cfg(target_arch = "wasm32")]
    use super::ReferencePricing;
    #[cfg(target_arch = "wasm32")]
    export!(ReferencePricing);
}

use alloc::borrow::ToOwned as _;
use alloc::string::String;
use alloc::vec::Vec;

use bindings::tollgate::pricing::types::{Answer, ModuleInfo, Order};

use crate::config::Config;

/// The component.
#[derive(Debug)]
pub struct ReferencePricing;

impl bindings::Guest for ReferencePricing {
    fn describe(config: String) -> ModuleInfo {
        ModuleInfo {
            name: "reference-pricing".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            self_check_error: Config::parse(&config)
                .and_then(|c| engine::self_check(&c))
                .err(),
        }
    }

    fn prepare(config: String) -> Result<Vec<u8>, String> {
        engine::prepare(&config)
    }

    fn quote(prepared: Vec<u8>, order: Order) -> Result<Answer, String> {
        engine::quote(&Config::decode(&prepared)?, &order)
    }
}
