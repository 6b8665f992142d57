//! The partner's configuration of the reference module: JSON text from the
//! host (the operator writes TOML in `policies/pricing/`; the host converts
//! it). Every amount and percentage is a decimal *string*, so no float is
//! ever involved. Unknown fields are refused, so a typo is a load error
//! (`describe`'s self-check), not a silently ignored rule.
//!
//! The text is parsed once per load ([`Config::parse`], by `prepare`); the
//! parsed [`Config`] travels to every `quote` as compact bytes
//! ([`Config::encode`]: postcard, decimals in their exact 16-byte form).
//! Every call reads them back as a [`Prepared`] view whose texts borrow
//! from the bytes ([`Config::decode`]): decoding allocates only the lists,
//! not one string per name, region and SKU.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Rounding, parse_amount, parse_signed};

/// What a percentage is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Base {
    /// The provider's list price (default): the partner sets its own
    /// discounts and keeps the provider's.
    #[default]
    List,
    /// The provider's price after its own discounts: the partner passes
    /// the provider's promotions on.
    Trade,
}

/// How tiers apply over a line's instance count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TierMode {
    /// Each instance is priced at the tier it falls in (1-10 at the first
    /// tier's rate, 11-50 at the second's, ...).
    #[default]
    Graduated,
    /// Every instance is priced at the tier the whole count reaches.
    Volume,
}

/// `"subscription"` or `"pay-as-you-go"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Charge {
    /// Subscription lines only.
    Subscription,
    /// Pay-as-you-go lines only.
    PayAsYouGo,
}

/// Which lines, customers or orders something applies to. Every field
/// given must match; an empty scope matches everything. `S` is the text
/// type: `String` as parsed, `&str` borrowed from the prepared bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "S: Deserialize<'de> + Ord", serialize = "S: Serialize")
)]
pub struct Scope<S = String> {
    /// Provider product code (`ecs`, `oss`).
    pub product: Option<S>,
    /// SKU: pricing module or ECS resource (`InstanceType`, `instanceType`;
    /// compared without regard to ASCII case).
    pub sku: Option<S>,
    /// SKU properties that must all have these values.
    #[serde(default)]
    pub config: BTreeMap<S, S>,
    /// Region id.
    pub region: Option<S>,
    /// Customer group.
    pub group: Option<S>,
    /// Customer id (a per-customer override).
    pub customer: Option<S>,
    /// Charge type.
    pub charge_type: Option<Charge>,
}

impl<S> Scope<S> {
    /// How specific the scope is: the most specific matching rule wins.
    /// Customer > SKU (+ its config) > region > group > product > global.
    pub fn specificity(&self) -> u32 {
        let mut s = 0;
        if self.product.is_some() {
            s += 1;
        }
        if self.charge_type.is_some() {
            s += 1;
        }
        if self.group.is_some() {
            s += 2;
        }
        if self.region.is_some() {
            s += 4;
        }
        if self.sku.is_some() {
            s += 8;
        }
        if !self.config.is_empty() {
            s += 8;
        }
        if self.customer.is_some() {
            s += 32;
        }
        s
    }
}

/// One tier as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    /// Last instance count of this tier; absent: no upper bound (last tier).
    upto: Option<u32>,
    /// Markup (positive) or discount (negative) percentage.
    percent: String,
}

/// A price rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default, rename = "match")]
    scope: Scope,
    percent: Option<String>,
    #[serde(default)]
    tiers: Vec<RawTier>,
    #[serde(default)]
    tier_mode: TierMode,
    fee: Option<String>,
}

/// A bundle as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    name: String,
    code: String,
    description: String,
    #[serde(default, rename = "match")]
    scope: Scope,
    monthly: Option<String>,
    hourly: Option<String>,
}

/// A quota rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    name: String,
    customer: Option<String>,
    group: Option<String>,
    product: Option<String>,
    #[serde(default)]
    allowed_regions: Vec<String>,
    #[serde(default)]
    denied_skus: Vec<Scope>,
    max_quantity: Option<u32>,
    max_order_amount: Option<String>,
    message: Option<String>,
}

/// The whole file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    currency: Option<String>,
    #[serde(default)]
    base: Base,
    #[serde(default)]
    rounding: Rounding,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
    #[serde(default, rename = "bundle")]
    bundles: Vec<RawBundle>,
    #[serde(default, rename = "quota")]
    quotas: Vec<RawQuota>,
}

/// A tier, parsed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tier {
    /// Last instance count of the tier (`None`: unbounded).
    pub upto: Option<u32>,
    /// Percentage (+ markup, - discount).
    #[serde(with = "tollgate_pricing_guest::decimal")]
    pub percent: Decimal,
}

/// A price rule, parsed: a single percentage is one unbounded tier.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Ord", serialize = "S: Serialize"))]
pub struct Rule<S = String> {
    /// Name reported as the quote line's rule.
    pub name: S,
    /// Where it applies.
    pub scope: Scope<S>,
    /// Tiers over the instance count (at least one).
    pub tiers: Vec<Tier>,
    /// Graduated or volume.
    pub tier_mode: TierMode,
    /// Fixed fee per instance, added to the list price.
    #[serde(with = "tollgate_pricing_guest::decimal")]
    pub fee: Decimal,
}

/// A bundle, parsed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Ord", serialize = "S: Serialize"))]
pub struct Bundle<S = String> {
    /// Rule name reported on the bundle line.
    pub name: S,
    /// Partner product code (the bundle line's id prefix).
    pub code: S,
    /// Shown to the customer.
    pub description: S,
    /// Lines it attaches to.
    pub scope: Scope<S>,
    /// Price per instance per month (subscription lines).
    #[serde(with = "tollgate_pricing_guest::option_decimal")]
    pub monthly: Option<Decimal>,
    /// Price per instance per hour (pay-as-you-go hourly lines).
    #[serde(with = "tollgate_pricing_guest::option_decimal")]
    pub hourly: Option<Decimal>,
}

/// A quota rule, parsed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Ord", serialize = "S: Serialize"))]
pub struct Quota<S = String> {
    /// Reported in the denial.
    pub name: S,
    /// Only for this customer.
    pub customer: Option<S>,
    /// Only for this group.
    pub group: Option<S>,
    /// Only for lines of this product.
    pub product: Option<S>,
    /// Regions allowed (empty: any).
    pub allowed_regions: Vec<S>,
    /// SKUs refused.
    pub denied_skus: Vec<Scope<S>>,
    /// Most instances in one line.
    pub max_quantity: Option<u32>,
    /// Largest order total (partner price, bundles included).
    #[serde(with = "tollgate_pricing_guest::option_decimal")]
    pub max_order_amount: Option<Decimal>,
    /// The customer-facing message (default: one per check).
    pub message: Option<S>,
}

/// The configuration, parsed and checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Ord", serialize = "S: Serialize"))]
pub struct Config<S = String> {
    /// The currency every order must be in, when set.
    pub currency: Option<S>,
    /// What percentages apply to.
    pub base: Base,
    /// Rounding of every line.
    pub rounding: Rounding,
    /// Price rules, in file order.
    pub rules: Vec<Rule<S>>,
    /// Bundles.
    pub bundles: Vec<Bundle<S>>,
    /// Quota rules, checked in file order.
    pub quotas: Vec<Quota<S>>,
}

/// The configuration as every `quote` reads it: texts borrowed from the
/// prepared bytes.
pub type Prepared<'a> = Config<&'a str>;

// Error contexts are built only on error (`what` is a closure).
fn field(what: impl FnOnce() -> String, r: Result<Decimal, String>) -> Result<Decimal, String> {
    r.map_err(|e| format!("{}: {e}", what()))
}

/// Percentages below -100 would make negative prices.
fn percent(what: impl Fn() -> String, s: &str) -> Result<Decimal, String> {
    let p = field(&what, parse_signed(s))?;
    if p < Decimal::from(-100) {
        return Err(format!("{}: {s} % is below -100 %", what()));
    }
    Ok(p)
}

impl Config {
    /// The compact form `prepare` returns.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        tollgate_pricing_guest::encode(self)
    }

    /// Reads what [`Self::encode`] wrote (at every `quote`), borrowing its
    /// texts from `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Prepared<'_>, String> {
        tollgate_pricing_guest::decode(bytes)
    }

    /// Parses and checks the JSON text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawConfig =
            serde_json::from_str(text).map_err(|e| format!("configuration: {e}"))?;
        if raw.rounding.scale > crate::money::MAX_SCALE {
            return Err(format!(
                "rounding.scale {} is above {}",
                raw.rounding.scale,
                crate::money::MAX_SCALE
            ));
        }
        let mut rules = Vec::with_capacity(raw.rules.len());
        for r in raw.rules {
            let name = r.name.as_str();
            let at = || format!("rule \"{name}\"");
            let tiers = match (&r.percent, r.tiers.is_empty()) {
                (Some(p), true) => vec![Tier {
                    upto: None,
                    percent: percent(|| format!("{} percent", at()), p)?,
                }],
                (None, false) => {
                    let mut out = Vec::with_capacity(r.tiers.len());
                    let mut last = 0;
                    for (i, t) in r.tiers.iter().enumerate() {
                        let final_tier = i + 1 == r.tiers.len();
                        match t.upto {
                            Some(u) if u > last && !final_tier => last = u,
                            None if final_tier => {}
                            _ => {
                                return Err(format!(
                                    "{}: tier {} must have an `upto` above the previous one, and only the last tier has none",
                                    at(),
                                    i + 1
                                ));
                            }
                        }
                        out.push(Tier {
                            upto: t.upto,
                            percent: percent(|| format!("{} tier {}", at(), i + 1), &t.percent)?,
                        });
                    }
                    out
                }
                (None, true) if r.fee.is_some() => vec![Tier {
                    upto: None,
                    percent: Decimal::ZERO,
                }],
                _ => {
                    return Err(format!(
                        "{}: give either `percent` or `tiers` (or only a `fee`)",
                        at()
                    ));
                }
            };
            let fee = match &r.fee {
                Some(f) => field(|| format!("{} fee", at()), parse_amount(f))?,
                None => Decimal::ZERO,
            };
            rules.push(Rule {
                name: r.name,
                scope: r.scope,
                tiers,
                tier_mode: r.tier_mode,
                fee,
            });
        }
        let mut bundles = Vec::with_capacity(raw.bundles.len());
        for b in raw.bundles {
            let bname = b.name.as_str();
            let at = || format!("bundle \"{bname}\"");
            if b.code.is_empty() || b.code.len() > 64 {
                return Err(format!("{}: `code` must be 1-64 characters", at()));
            }
            let opt = |v: &Option<String>, name: &str| {
                v.as_deref()
                    .map(|s| field(|| format!("{} {name}", at()), parse_amount(s)))
                    .transpose()
            };
            let monthly = opt(&b.monthly, "monthly")?;
            let hourly = opt(&b.hourly, "hourly")?;
            if monthly.is_none() && hourly.is_none() {
                return Err(format!("{}: give `monthly` and/or `hourly`", at()));
            }
            bundles.push(Bundle {
                name: b.name,
                code: b.code,
                description: b.description,
                scope: b.scope,
                monthly,
                hourly,
            });
        }
        let mut quotas = Vec::with_capacity(raw.quotas.len());
        for q in raw.quotas {
            let max_order_amount = q
                .max_order_amount
                .as_deref()
                .map(|s| {
                    field(
                        || format!("quota \"{}\" max_order_amount", q.name),
                        parse_amount(s),
                    )
                })
                .transpose()?;
            quotas.push(Quota {
                name: q.name,
                customer: q.customer,
                group: q.group,
                product: q.product,
                allowed_regions: q.allowed_regions,
                denied_skus: q.denied_skus,
                max_quantity: q.max_quantity,
                max_order_amount,
                message: q.message,
            });
        }
        Ok(Self {
            currency: raw.currency,
            base: raw.base,
            rounding: raw.rounding,
            rules,
            bundles,
            quotas,
        })
    }
}
