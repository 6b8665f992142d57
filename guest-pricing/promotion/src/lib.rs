//! A second Tollgate pricing component with a different policy: one
//! promotion, a percentage off the provider's list price of every line
//! (optionally only some products), no bundles, no quota rules.
//!
//! It exists to prove that modules are swappable: point the gateway's
//! `[pricing] module` at this file instead of the reference module and the
//! next price answer changes. Config (JSON): `{"name": "spring-sale",
//! "percent_off": "30", "products": ["oss"]}` (`products` absent: all).
//!
//! It is also the smallest complete `no_std` module: the shape to copy
//! (guide: `docs/pricing-modules.md`).

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

// The allocator and panic handler of a no_std component.
use tollgate_pricing_guest as _;

/// The generated bindings: the only place unsafe code is allowed.
#[allow(unsafe_code, missing_debug_implementations, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "pricing",
    });

    use super::Promotion;
    export!(Promotion);
}

use alloc::borrow::ToOwned as _;
use alloc::format;
use alloc::string::{String, ToString as _};
use alloc::vec::Vec;

use bindings::tollgate::pricing::types::{Admission, Answer, ModuleInfo, Money, Order, QuoteLine};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// The configuration as written (JSON).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    name: String,
    percent_off: String,
    #[serde(default)]
    products: Vec<String>,
}

/// The configuration as `prepare` leaves it for every `quote`.
#[derive(Debug, Serialize, Deserialize)]
struct Prepared {
    name: String,
    #[serde(with = "tollgate_pricing_guest::decimal")]
    rate: Decimal,
    products: Vec<String>,
}

fn parse(text: &str) -> Result<Prepared, String> {
    let c: Config = serde_json::from_str(text).map_err(|e| format!("configuration: {e}"))?;
    let pct = Decimal::from_str_exact(&c.percent_off)
        .map_err(|e| format!("percent_off \"{}\": {e}", c.percent_off))?;
    if pct.is_sign_negative() || pct > Decimal::ONE_HUNDRED {
        return Err(format!("percent_off {pct} is not between 0 and 100"));
    }
    Ok(Prepared {
        name: c.name,
        rate: pct / Decimal::ONE_HUNDRED,
        products: c.products,
    })
}

fn half_up(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn money(d: Decimal, currency: &str) -> Money {
    Money {
        amount: d.to_string(),
        currency: currency.to_owned(),
    }
}

#[derive(Debug)]
struct Promotion;

impl bindings::Guest for Promotion {
    fn describe(config: String) -> ModuleInfo {
        ModuleInfo {
            name: "promotion".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            self_check_error: parse(&config).err(),
        }
    }

    fn prepare(config: String) -> Result<Vec<u8>, String> {
        tollgate_pricing_guest::encode(&parse(&config)?)
    }

    fn quote(prepared: Vec<u8>, order: Order) -> Result<Answer, String> {
        let p: Prepared = tollgate_pricing_guest::decode(&prepared)?;
        let cur = order.currency.as_str();
        let mut lines = Vec::with_capacity(order.lines.len());
        for l in &order.lines {
            if l.official.currency != cur {
                return Err(format!("line {} is not in {cur}", l.id));
            }
            let list = half_up(
                Decimal::from_str_exact(&l.official.amount)
                    .map_err(|e| format!("line {}: {e}", l.id))?,
            );
            let on_sale = p.products.is_empty() || p.products.contains(&l.product);
            let (discount, rule) = if on_sale {
                (half_up(list * p.rate), p.name.clone())
            } else {
                (Decimal::ZERO, "official".to_owned())
            };
            lines.push(QuoteLine {
                id: l.id.clone(),
                list: money(list, cur),
                discount: money(discount, cur),
                price: money(list - discount, cur),
                rule,
            });
        }
        Ok(Answer {
            lines,
            bundles: Vec::new(),
            admission: Admission::Allow,
        })
    }
}
