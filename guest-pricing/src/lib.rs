//! The reference Tollgate pricing module: a WebAssembly component that
//! implements the `tollgate:pricing` world in `wit/pricing.wit`.
//!
//! Everything it does is driven by the partner's configuration (JSON text
//! the host passes with every call; the example is
//! `policies/pricing/reference.toml`), so one build serves every partner:
//!
//! * `price`: markup (positive) or discount (negative) percentages by scope
//!   (global, product, customer group, SKU and its configuration, region,
//!   customer); the most specific matching rule wins, ties go to the rule
//!   written first (the AWS Billing Conductor model). A rule may instead
//!   carry graduated or volume tiers over the instance count, and a fixed
//!   fee per instance. Amounts are rounded once per line (half-up to 2
//!   decimals unless configured otherwise).
//! * `bundle`: the partner's own products added per matching line (e.g. a
//!   managed-operations fee per ECS instance per month).
//! * `admit`: quota rules (allowed regions, denied SKUs, max instances per
//!   line, max order amount), scoped by customer, group or product.
//! * `describe`: name, version and a check of the configuration.
//!
//! The logic lives in [`engine`] on the generated WIT types, so the same code
//! also runs natively (the bench compares the two).

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

use bindings::tollgate::pricing::types::{Admission, BundleLine, ModuleInfo, Order, Quote};

/// The component.
#[derive(Debug)]
pub struct ReferencePricing;

impl bindings::Guest for ReferencePricing {
    fn describe(config: String) -> ModuleInfo {
        ModuleInfo {
            name: "reference-pricing".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            self_check_error: engine::with_config(&config, engine::self_check).err(),
        }
    }

    fn price(config: String, order: Order) -> Result<Quote, String> {
        engine::with_config(&config, |c| engine::price(c, &order))
    }

    fn bundle(config: String, order: Order, quote: Quote) -> Result<Vec<BundleLine>, String> {
        engine::with_config(&config, |c| engine::bundle(c, &order, &quote))
    }

    fn admit(
        config: String,
        order: Order,
        quote: Quote,
        bundles: Vec<BundleLine>,
    ) -> Result<Admission, String> {
        engine::with_config(&config, |c| engine::admit(c, &order, &quote, &bundles))
    }
}
