//! Provider price answers rewritten to partner prices, in the provider's own
//! fields, JSON types and shapes, so official SDKs parse them unchanged.
//!
//! * Every amount stays a JSON number written from its exact decimal text
//!   (serde_json `arbitrary_precision`; never a float): `118.8`, not
//!   `118.80000305175781`.
//! * `OriginalPrice` / `OriginalCost` = the partner's list price,
//!   `DiscountPrice` / `InvoiceDiscount` = the partner's discount **amount**,
//!   `TradePrice` / `CostAfterDiscount` = what the customer pays, so
//!   `DiscountPrice = OriginalPrice - TradePrice` holds as at the provider.
//! * Totals are recomputed from the re-priced lines (bundle lines
//!   included); `GetPayAsYouGoPrice` has no total and gets none.
//! * **Bundle lines** appear as extra lines of the provider's own list: a
//!   `ModuleDetail` (BSS) or `DetailInfo` (ECS) whose `ModuleCode` /
//!   `Resource` is the partner's product code (e.g. `TG-MANAGED-OPS`), so a
//!   customer sees them next to the cloud lines and in the totals.
//! * The provider's own promotions are the partner's business, not the
//!   customer's: `PromotionDetails` / `Rules` / `SubRules` list the partner
//!   rules that gave a discount instead (ids derived from the rule names).
//!   ECS `ReservedInstanceHourPrice` (an official price) is removed.

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::{Order, PeriodUnit, Quote};

/// An amount as a JSON number built from its decimal text.
pub fn json_number(d: Decimal) -> Value {
    d.normalize()
        .to_string()
        .parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// A stable positive id for a partner rule (Alibaba rule and promotion ids
/// are integers): the first 6 bytes of its name's SHA-256, so it fits any
/// JSON reader's integer range.
pub fn rule_id(rule: &str) -> u64 {
    let h = Sha256::digest(rule.as_bytes());
    h.iter()
        .take(6)
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// The partner's unit price for a line: the official unit price scaled by
/// the line's partner/official ratio (kept at the official value's scale,
/// at least 2 places), or the list price per unit when there is no
/// official price to scale.
pub fn unit_price(
    official_unit: Option<Decimal>,
    official: Decimal,
    list: Decimal,
    units: Decimal,
) -> Decimal {
    let half_up = RoundingStrategy::MidpointAwayFromZero;
    match official_unit {
        Some(u) if !official.is_zero() => {
            let scale = u.scale().clamp(2, 10);
            (u * list / official).round_dp_with_strategy(scale, half_up)
        }
        _ if !units.is_zero() => (list / units).round_dp_with_strategy(4, half_up),
        _ => list,
    }
}

/// Months × instances of a subscription line: the units of a BSS `UnitPrice`.
pub(crate) fn bss_units(quantity: u32, count: u32, unit: PeriodUnit) -> Decimal {
    let q = Decimal::from(quantity.max(1));
    let c = Decimal::from(count.max(1));
    match unit {
        PeriodUnit::Year => q * c * Decimal::from(12),
        PeriodUnit::Month => q * c,
        _ => Decimal::ONE,
    }
}

/// The partner rules that gave a discount, once each, in order.
pub(crate) fn discount_rules(quote: &Quote) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let all = quote
        .lines
        .iter()
        .filter(|l| !l.discount.is_zero())
        .map(|l| l.rule.as_str())
        .chain(
            quote
                .bundles
                .iter()
                .filter(|b| !b.discount.is_zero())
                .map(|b| b.rule.as_str()),
        );
    for r in all {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

fn set(obj: &mut Value, key: &str, v: Value) {
    if let Value::Object(m) = obj {
        m.insert(key.to_owned(), v);
    }
}

/// Rewrites a BSS `GetSubscriptionPrice` / `GetPayAsYouGoPrice` `Data`
/// object. `order` was built from this same `data`, so details and lines
/// correspond by position.
pub fn rewrite_bss(data: &mut Value, order: &Order, quote: &Quote, payg: bool) {
    let Some(details) = data
        .get_mut("ModuleDetails")
        .and_then(|m| m.get_mut("ModuleDetail"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let mut months_per_unit = Decimal::ONE;
    for ((d, line), item) in details.iter_mut().zip(&quote.lines).zip(&order.lines) {
        let u = if payg {
            Decimal::ONE
        } else {
            bss_units(item.quantity, item.period_count, item.period_unit)
        };
        months_per_unit = u / Decimal::from(item.quantity.max(1));
        let official_unit = d.get("UnitPrice").and_then(super::order::decimal);
        set(d, "OriginalCost", json_number(line.list));
        set(d, "InvoiceDiscount", json_number(line.discount));
        set(d, "CostAfterDiscount", json_number(line.price));
        if d.get("UnitPrice").is_some() {
            set(
                d,
                "UnitPrice",
                json_number(unit_price(official_unit, item.official, line.list, u)),
            );
        }
    }
    for b in &quote.bundles {
        let u = Decimal::from(b.quantity.max(1)) * months_per_unit;
        details.push(json!({
            "ModuleCode": b.id,
            "OriginalCost": json_number(b.list),
            "InvoiceDiscount": json_number(b.discount),
            "CostAfterDiscount": json_number(b.price),
            "UnitPrice": json_number(unit_price(None, Decimal::ZERO, b.list, u)),
        }));
    }
    if !payg {
        set(data, "OriginalPrice", json_number(quote.list_total));
        set(data, "DiscountPrice", json_number(quote.discount_total));
        set(data, "TradePrice", json_number(quote.total));
    }
    let promos: Vec<Value> = discount_rules(quote)
        .into_iter()
        .map(|r| {
            json!({
                "PromotionId": rule_id(r),
                "PromotionName": r,
                "PromotionDesc": format!("Partner price rule {r}"),
            })
        })
        .collect();
    set(
        data,
        "PromotionDetails",
        json!({ "PromotionDetail": promos }),
    );
}

fn rule_list(rules: &[&str]) -> Value {
    let list: Vec<Value> = rules
        .iter()
        .map(|r| json!({ "RuleId": rule_id(r), "Description": format!("Partner price rule {r}") }))
        .collect();
    json!({ "Rule": list })
}

/// Rewrites an ECS `DescribePrice` `PriceInfo` object.
pub fn rewrite_ecs(price_info: &mut Value, quote: &Quote) {
    if let Some(price) = price_info.get_mut("Price") {
        if let Some(details) = price
            .get_mut("DetailInfos")
            .and_then(|d| d.get_mut("DetailInfo"))
            .and_then(Value::as_array_mut)
        {
            for (d, line) in details.iter_mut().zip(&quote.lines) {
                set(d, "OriginalPrice", json_number(line.list));
                set(d, "DiscountPrice", json_number(line.discount));
                set(d, "TradePrice", json_number(line.price));
                let sub: Vec<&str> = if line.discount.is_zero() {
                    Vec::new()
                } else {
                    vec![line.rule.as_str()]
                };
                set(d, "SubRules", rule_list(&sub));
            }
            for b in &quote.bundles {
                let sub: Vec<&str> = if b.discount.is_zero() {
                    Vec::new()
                } else {
                    vec![b.rule.as_str()]
                };
                details.push(json!({
                    "Resource": b.id,
                    "OriginalPrice": json_number(b.list),
                    "DiscountPrice": json_number(b.discount),
                    "TradePrice": json_number(b.price),
                    "SubRules": rule_list(&sub),
                }));
            }
        }
        set(price, "OriginalPrice", json_number(quote.list_total));
        set(price, "DiscountPrice", json_number(quote.discount_total));
        set(price, "TradePrice", json_number(quote.total));
        if let Value::Object(m) = price {
            m.remove("ReservedInstanceHourPrice");
        }
    }
    set(price_info, "Rules", rule_list(&discount_rules(quote)));
}

/// Rewrites a purchase's success answer: ECS `RunInstances` reports the
/// order's `TradePrice`, which must be the partner's (never the official
/// one). BSS purchase answers carry no amount.
pub fn rewrite_purchase(answer: &mut Map<String, Value>, quote: &Quote) {
    if answer.contains_key("TradePrice") {
        answer.insert("TradePrice".to_owned(), json_number(quote.total));
    }
}
