//! The simulated cloud's official price list and the arithmetic on it.
//!
//! Prices come from a TOML file (`policies/sim-prices.toml`) holding decimal
//! *strings* only; a TOML float is refused at load, so no binary float ever
//! touches an amount. Per product and module, a price row is chosen by the
//! value of the module's `key` property (e.g. the instance type) and can be
//! multiplied by the numeric value of its `per` property (e.g. a disk size).
//!
//! Rounding: every line is rounded half-up to 2 decimals once (original and
//! discount separately), `trade = original - discount`, and totals are the sums
//! of the rounded lines, so a quote is always internally consistent.
//!
//! Official discount rule (the `[discount]` table): subscriptions of
//! `min_months` or more get `rate` off the list price (the demo file: 15 % off
//! for 12 months or more); pay-as-you-go is never discounted.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context as _, bail};
use http::StatusCode;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::Error;

/// The price file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default = "default_currency")]
    currency: String,
    discount: DiscountRule,
    product: BTreeMap<String, Product>,
}

fn default_currency() -> String {
    "CNY".to_owned()
}

/// The official subscription discount (reported as a promotion / rule).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscountRule {
    /// Subscriptions of at least this many months are discounted.
    pub min_months: u32,
    /// Fraction off the list price, e.g. `"0.15"`.
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    /// `PromotionId` / `RuleId` reported with a discounted quote.
    pub promotion_id: i64,
    /// `PromotionName`.
    pub promotion_name: String,
    /// `PromotionDesc` / rule `Description`.
    pub promotion_desc: String,
}

/// One product (`ProductCode`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// `ProductName`.
    pub name: String,
    /// `ProductType`.
    #[serde(rename = "type")]
    pub product_type: String,
    /// Prefix of the instance ids the simulator makes for this product.
    pub instance_prefix: String,
    /// Pricing modules by `ModuleCode`.
    pub module: BTreeMap<String, Module>,
}

/// One pricing module (`ModuleCode`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    /// `ModuleName`.
    pub name: String,
    /// The property ids a `Config` must give (`ConfigList`).
    pub config: Vec<String>,
    /// The property whose value selects the price row; absent: the row `default`.
    #[serde(default)]
    pub key: Option<String>,
    /// A numeric property the unit price is multiplied by (size, bandwidth).
    #[serde(default)]
    pub per: Option<String>,
    /// Unit of the `per` property (`GB`, `Mbps`), for `AttributeList`.
    #[serde(default)]
    pub unit: String,
    /// Allowed values of other properties; absent: anything goes.
    #[serde(default)]
    pub values: BTreeMap<String, Vec<String>>,
    /// Price rows by `key` value.
    pub price: BTreeMap<String, Rate>,
}

/// The prices of one row, per basis; any may be absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Pay-as-you-go price per hour.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub hour: Option<Decimal>,
    /// Subscription price per month.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub month: Option<Decimal>,
    /// Pay-as-you-go price per unit of usage (GB of traffic, ...).
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub usage: Option<Decimal>,
}

/// What a price is for: BSS `PriceType` / ECS `PriceUnit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Per hour (pay-as-you-go).
    Hour,
    /// Per day: 24 hours.
    Day,
    /// Per week: a quarter of a month.
    Week,
    /// Per month.
    Month,
    /// Per year: 12 months.
    Year,
    /// Per unit of usage.
    Usage,
}

impl Basis {
    /// Reads a `PriceType` / `PriceUnit` value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Hour" => Self::Hour,
            "Day" => Self::Day,
            "Week" => Self::Week,
            "Month" => Self::Month,
            "Year" => Self::Year,
            "Usage" => Self::Usage,
            _ => return None,
        })
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hour => "Hour",
            Self::Day => "Day",
            Self::Week => "Week",
            Self::Month => "Month",
            Self::Year => "Year",
            Self::Usage => "Usage",
        })
    }
}

impl Rate {
    /// The price for one unit of `basis`, derived from the stored rows.
    pub fn for_basis(&self, basis: Basis) -> Option<Decimal> {
        match basis {
            Basis::Hour => self.hour,
            Basis::Day => self.hour.map(|h| h * Decimal::from(24)),
            Basis::Week => self.month.map(|m| m / Decimal::from(4)),
            Basis::Month => self.month,
            Basis::Year => self.month.map(|m| m * Decimal::from(12)),
            Basis::Usage => self.usage,
        }
    }
}

/// The whole price list.
#[derive(Debug, Clone)]
pub struct PriceTable {
    /// Currency of every price (`CNY`).
    pub currency: String,
    /// The subscription discount rule.
    pub discount: DiscountRule,
    /// Products by `ProductCode`.
    pub products: BTreeMap<String, Product>,
}

/// Half-up to 2 decimals: the rounding of every charged line.
pub fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// An amount as a string with exactly two decimals (`"300.00"`), the form of
/// the APIs that send amounts as strings.
pub fn money_string(d: Decimal) -> String {
    let mut r = round2(d);
    r.rescale(2);
    r.to_string()
}

/// An amount as a JSON number, built from its decimal text (never a float):
/// `3712.80` becomes `3712.8`, `900.00` becomes `900`.
pub fn json_number(d: Decimal) -> Value {
    d.normalize()
        .to_string()
        .parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

impl PriceTable {
    /// A table that sells nothing (for a config that was never loaded).
    pub fn empty() -> Self {
        Self {
            currency: default_currency(),
            discount: DiscountRule {
                min_months: u32::MAX,
                rate: Decimal::ZERO,
                promotion_id: 0,
                promotion_name: String::new(),
                promotion_desc: String::new(),
            },
            products: BTreeMap::new(),
        }
    }

    /// Reads and checks a price file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses and checks price-file text.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let file: PriceFile = toml::from_str(text)?;
        if file.discount.rate < Decimal::ZERO || file.discount.rate >= Decimal::ONE {
            bail!("discount.rate must be at least 0 and below 1");
        }
        for (pcode, product) in &file.product {
            if product.module.is_empty() {
                bail!("product {pcode}: no module");
            }
            for (mcode, m) in &product.module {
                let at = format!("product {pcode} module {mcode}");
                for prop in m.key.iter().chain(m.per.iter()).chain(m.values.keys()) {
                    if !m.config.contains(prop) {
                        bail!("{at}: property {prop} is not in its config list");
                    }
                }
                if m.key.is_none() && (m.price.len() != 1 || !m.price.contains_key("default")) {
                    bail!("{at}: without `key` the only price row must be `default`");
                }
                for (row, rate) in &m.price {
                    let all = [rate.hour, rate.month, rate.usage];
                    if all.iter().all(Option::is_none) {
                        bail!("{at} row {row}: no price");
                    }
                    if all.iter().flatten().any(|d| d.is_sign_negative()) {
                        bail!("{at} row {row}: negative price");
                    }
                }
            }
        }
        Ok(Self {
            currency: file.currency,
            discount: file.discount,
            products: file.product,
        })
    }

    /// The product for a `ProductCode`, or `InvalidProductCode`.
    pub fn product(&self, code: &str) -> Result<&Product, Error> {
        self.products.get(code).ok_or_else(|| {
            Error::invalid(
                "ProductCode",
                format_args!("product \"{code}\" is not found"),
            )
        })
    }

    /// The discount rate applying to a subscription of `months`.
    pub fn discount_for_months(&self, months: u32) -> Option<&DiscountRule> {
        (months >= self.discount.min_months && !self.discount.rate.is_zero())
            .then_some(&self.discount)
    }
}

fn invalid_module(product: &str, module: &str, why: impl fmt::Display) -> Error {
    Error::customer(
        StatusCode::BAD_REQUEST,
        "InvalidModuleCode",
        format!("The module \"{module}\" of product \"{product}\" is not valid: {why}."),
        "invalid_parameter",
    )
}

fn invalid_config(module: &str, why: impl fmt::Display) -> Error {
    Error::customer(
        StatusCode::BAD_REQUEST,
        "InvalidConfigCode",
        format!("The config of module \"{module}\" is not valid: {why}."),
        "invalid_parameter",
    )
}

impl Product {
    /// The module for a `ModuleCode`, or `InvalidModuleCode`.
    pub fn module<'a>(&'a self, product_code: &str, code: &str) -> Result<&'a Module, Error> {
        self.module
            .get(code)
            .ok_or_else(|| invalid_module(product_code, code, "no such module"))
    }

    /// Whether any module can be bought as `subscription` (`true`) or pay-as-you-go.
    pub fn sells(&self, subscription: bool) -> bool {
        self.module.values().any(|m| m.sells(subscription))
    }
}

impl Module {
    /// Whether some row has a subscription (monthly) or pay-as-you-go price.
    pub fn sells(&self, subscription: bool) -> bool {
        self.price.values().any(|r| {
            if subscription {
                r.month.is_some()
            } else {
                r.hour.is_some() || r.usage.is_some()
            }
        })
    }

    /// The pay-as-you-go `PriceType` this module is sold by.
    pub fn payg_basis(&self) -> Basis {
        if self.price.values().any(|r| r.hour.is_some()) {
            Basis::Hour
        } else {
            Basis::Usage
        }
    }

    /// The unit price for one instance and one `basis` unit, for a complete
    /// configuration (`get(property)` answers the value given for it).
    ///
    /// Refuses with `InvalidConfigCode` a missing property, a value outside
    /// the allowed set, an unpriced key value or a non-numeric `per` value,
    /// and with `InvalidModuleCode` a basis the module is not sold by.
    pub fn unit_price<'v>(
        &self,
        product_code: &str,
        code: &str,
        basis: Basis,
        get: impl Fn(&str) -> Option<&'v str>,
    ) -> Result<Decimal, Error> {
        for prop in &self.config {
            let Some(value) = get(prop).filter(|v| !v.is_empty()) else {
                return Err(invalid_config(
                    code,
                    format_args!("property \"{prop}\" is missing"),
                ));
            };
            if let Some(allowed) = self.values.get(prop)
                && !allowed.iter().any(|a| a == value)
            {
                return Err(invalid_config(
                    code,
                    format_args!(
                        "\"{value}\" is not a value of \"{prop}\" (one of {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let row_name = match &self.key {
            Some(key) => get(key).unwrap_or_default(),
            None => "default",
        };
        let row = self
            .price
            .get(row_name)
            .ok_or_else(|| invalid_config(code, format_args!("\"{row_name}\" has no price")))?;
        let per = match &self.per {
            Some(prop) => {
                let raw = get(prop).unwrap_or_default();
                let n: Decimal = raw
                    .parse()
                    .ok()
                    .filter(|n: &Decimal| !n.is_sign_negative())
                    .ok_or_else(|| {
                        invalid_config(
                            code,
                            format_args!("\"{prop}\" must be a non-negative number"),
                        )
                    })?;
                n
            }
            None => Decimal::ONE,
        };
        let unit = row.for_basis(basis).ok_or_else(|| {
            invalid_module(product_code, code, format_args!("it has no {basis} price"))
        })?;
        Ok(unit * per)
    }
}

/// One priced line of a quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// `ModuleCode` or ECS `Resource`.
    pub label: String,
    /// Price of one instance for one basis unit (not rounded).
    pub unit_price: Decimal,
    /// List price of the line, rounded.
    pub original: Decimal,
    /// Discount amount, rounded.
    pub discount: Decimal,
    /// `original - discount`.
    pub trade: Decimal,
}

/// A complete, internally consistent quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The lines, in request order.
    pub lines: Vec<Line>,
    /// Sum of the lines' originals.
    pub original: Decimal,
    /// Sum of the lines' discounts.
    pub discount: Decimal,
    /// Sum of the lines' trade prices (`original - discount`).
    pub trade: Decimal,
    /// The rule that gave the discount, if any.
    pub promotion: Option<DiscountRule>,
}

impl Quote {
    /// Prices `items` (`(label, unit price)`) for `units` basis units of
    /// `quantity` instances, with `rule`'s discount if given.
    pub fn new(
        items: Vec<(String, Decimal)>,
        units: u32,
        quantity: u32,
        rule: Option<&DiscountRule>,
    ) -> Self {
        let factor = Decimal::from(units) * Decimal::from(quantity);
        let mut quote = Self {
            lines: Vec::with_capacity(items.len()),
            original: Decimal::ZERO,
            discount: Decimal::ZERO,
            trade: Decimal::ZERO,
            promotion: rule.cloned(),
        };
        for (label, unit_price) in items {
            let original = round2(unit_price * factor);
            let discount = rule.map_or(Decimal::ZERO, |r| round2(original * r.rate));
            let trade = original - discount;
            quote.original += original;
            quote.discount += discount;
            quote.trade += trade;
            quote.lines.push(Line {
                label,
                unit_price,
                original,
                discount,
                trade,
            });
        }
        quote
    }

    /// BSS `ModuleDetails` (`{"ModuleDetail":[...]}`).
    pub fn module_details(&self) -> Value {
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|l| {
                json!({
                    "ModuleCode": l.label,
                    "OriginalCost": json_number(l.original),
                    "InvoiceDiscount": json_number(l.discount),
                    "CostAfterDiscount": json_number(l.trade),
                    "UnitPrice": json_number(l.unit_price),
                })
            })
            .collect();
        json!({ "ModuleDetail": lines })
    }

    /// BSS `PromotionDetails` (`{"PromotionDetail":[...]}`).
    pub fn promotion_details(&self) -> Value {
        let promos: Vec<Value> = self
            .promotion
            .iter()
            .map(|p| {
                json!({
                    "PromotionId": p.promotion_id,
                    "PromotionName": p.promotion_name,
                    "PromotionDesc": p.promotion_desc,
                })
            })
            .collect();
        json!({ "PromotionDetail": promos })
    }
}
