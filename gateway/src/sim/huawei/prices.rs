//! The simulated Huawei BSS's official price list (`policies/sim-huawei-prices.toml`).
//!
//! Decimal strings only (a TOML float is refused at load). A SKU is found by
//! (cloud service type, resource type, resource spec), case-insensitive as
//! BSS compares them. Linear SKUs (disks per GB, bandwidth per Mbps) are
//! multiplied by `resource_size`. Huawei's own discount on a SKU (the
//! partner-set rate, discount type 607) comes off the list price; amounts
//! are truncated to 6 decimals (BSS's default `inquiry_precision` 0) or 10.

use std::path::Path;

use anyhow::{Context as _, bail};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    currency: String,
    #[serde(rename = "sku")]
    skus: Vec<Sku>,
}

/// One priced SKU.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sku {
    /// `hws.service.type.ec2`.
    pub cloud_service_type: String,
    /// The service's display name.
    pub service_type_name: String,
    /// `hws.resource.type.vm`.
    pub resource_type: String,
    /// `c6.large.2.linux`, `SAS`, `19_bgp`.
    pub resource_spec: String,
    /// BSS product id reported in ratings.
    pub product_id: String,
    /// `product_spec_desc`.
    pub spec_desc: String,
    /// Per unit of size (GB, Mbps) when set: `resource_size` multiplies.
    #[serde(default)]
    pub size_measure_id: Option<u32>,
    /// List price per hour (pay-per-use).
    #[serde(deserialize_with = "decimal_text")]
    pub hourly: Decimal,
    /// List price per month.
    #[serde(deserialize_with = "decimal_text")]
    pub monthly: Decimal,
    /// List price per year.
    #[serde(deserialize_with = "decimal_text")]
    pub yearly: Decimal,
    /// Huawei's discount off the list price, percent (type 607).
    #[serde(deserialize_with = "decimal_text", default)]
    pub discount_percent: Decimal,
}

/// A decimal written as a TOML string; a TOML number (a binary float) is
/// refused, so no float ever carries an amount.
pub fn decimal_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let text = String::deserialize(d)?;
    text.trim()
        .parse::<Decimal>()
        .map_err(|e| serde::de::Error::custom(format!("\"{text}\" is not a decimal: {e}")))
}

/// The loaded price list.
#[derive(Debug, Clone)]
pub struct HuaweiPrices {
    /// Currency of every amount (`CNY`).
    pub currency: String,
    skus: Vec<Sku>,
}

/// A priced line: list, discount, after discount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amounts {
    /// `official_website_amount`.
    pub official: Decimal,
    /// `discount_amount`.
    pub discount: Decimal,
    /// `amount` (after discount).
    pub amount: Decimal,
}

impl Amounts {
    /// Zero.
    pub const ZERO: Self = Self {
        official: Decimal::ZERO,
        discount: Decimal::ZERO,
        amount: Decimal::ZERO,
    };

    /// Component-wise sum.
    pub fn plus(self, o: Self) -> Self {
        Self {
            official: self.official + o.official,
            discount: self.discount + o.discount,
            amount: self.amount + o.amount,
        }
    }
}

/// How a price is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Per hour of use.
    Hour,
    /// Per month.
    Month,
    /// Per year.
    Year,
}

impl HuaweiPrices {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses price-file text.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let file: PriceFile = toml::from_str(text)?;
        for s in &file.skus {
            for (what, v) in [
                ("hourly", s.hourly),
                ("monthly", s.monthly),
                ("yearly", s.yearly),
                ("discount_percent", s.discount_percent),
            ] {
                if v.is_sign_negative() {
                    bail!("sku {}: {what} is negative", s.resource_spec);
                }
            }
            if s.discount_percent > Decimal::ONE_HUNDRED {
                bail!("sku {}: discount_percent above 100", s.resource_spec);
            }
        }
        Ok(Self {
            currency: file.currency,
            skus: file.skus,
        })
    }

    /// No SKUs (a sim without a Huawei price file).
    pub fn empty() -> Self {
        Self {
            currency: "CNY".to_owned(),
            skus: Vec::new(),
        }
    }

    /// The SKU for (service, resource type, spec), compared case-insensitively.
    pub fn sku(&self, service: &str, resource_type: &str, spec: &str) -> Option<&Sku> {
        self.skus.iter().find(|s| {
            s.cloud_service_type.eq_ignore_ascii_case(service)
                && s.resource_type.eq_ignore_ascii_case(resource_type)
                && s.resource_spec.eq_ignore_ascii_case(spec)
        })
    }

    /// The SKU by its product id.
    pub fn by_product_id(&self, product_id: &str) -> Option<&Sku> {
        self.skus.iter().find(|s| s.product_id == product_id)
    }

    /// The service's display name (for order listings).
    pub fn service_name(&self, service: &str) -> &str {
        self.skus
            .iter()
            .find(|s| s.cloud_service_type == service)
            .map_or("", |s| s.service_type_name.as_str())
    }
}

impl Sku {
    /// Prices `units` of `basis` for `count` instances of `size` (1 unless
    /// linear), truncated to `precision` decimals.
    pub fn price(
        &self,
        basis: Basis,
        units: Decimal,
        count: u32,
        size: u32,
        precision: u32,
    ) -> Amounts {
        let unit = match basis {
            Basis::Hour => self.hourly,
            Basis::Month => self.monthly,
            Basis::Year => self.yearly,
        };
        let size = if self.size_measure_id.is_some() {
            size.max(1)
        } else {
            1
        };
        let trunc = |d: Decimal| d.round_dp_with_strategy(precision, RoundingStrategy::ToZero);
        let official = trunc(unit * units * Decimal::from(count) * Decimal::from(size));
        let discount = trunc(official * self.discount_percent / Decimal::ONE_HUNDRED);
        Amounts {
            official,
            discount,
            amount: official - discount,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
currency = "CNY"
[[sku]]
cloud_service_type = "hws.service.type.ec2"
service_type_name = "Elastic Cloud Server"
resource_type = "hws.resource.type.vm"
resource_spec = "c6.large.2.linux"
product_id = "00301-226101-0--0"
spec_desc = "c6.large.2 | 2vCPUs | 4GB | Linux"
hourly = "0.78"
monthly = "87.20"
yearly = "1046.40"
discount_percent = "10"
"#;

    #[test]
    fn yearly_price_has_the_partner_discount_off_the_list_price() {
        let p = HuaweiPrices::from_toml(FILE).expect("parse");
        let sku = p
            .sku(
                "HWS.SERVICE.TYPE.EC2",
                "hws.resource.type.vm",
                "c6.large.2.linux",
            )
            .expect("sku");
        let a = sku.price(Basis::Year, Decimal::ONE, 1, 1, 6);
        assert_eq!(a.official, Decimal::new(104640, 2));
        assert_eq!(a.discount, Decimal::new(10464, 2));
        assert_eq!(a.amount, Decimal::new(94176, 2));
    }

    #[test]
    fn floats_are_refused() {
        let bad = FILE.replace("\"0.78\"", "0.78");
        assert!(HuaweiPrices::from_toml(&bad).is_err());
    }
}
