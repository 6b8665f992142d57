//! Host types <-> WIT types, and the checks on everything a module returns.
//!
//! Nothing a module says is trusted: amounts must be plain non-negative
//! decimals with at most [`limits::MAX_SCALE`] places, in the order's
//! currency, with `price = list - discount` exactly; every provider line is
//! priced exactly once; ids, names and texts are bounded and printable.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context as _, bail};
use rust_decimal::Decimal;

use super::{
    Admission, BundleLine, ChargeType, FailureKind, Intent, ModuleInfo, Order, OrderKind,
    PeriodUnit, PricingError, QuoteLine, limits, wit,
};

fn invalid(message: impl Into<String>) -> PricingError {
    PricingError::new(FailureKind::InvalidOutput, message)
}

/// Parses a WIT amount: ASCII digits, optional `.` and fraction, at most
/// [`limits::MAX_SCALE`] places; no sign, exponent, spaces or separators.
pub fn parse_amount(s: &str) -> Result<Decimal, String> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if s.is_empty()
        || int.is_empty()
        || !digits(int)
        || !digits(frac)
        || (s.contains('.') && frac.is_empty())
    {
        return Err(format!(
            "\"{}\" is not a non-negative decimal",
            s.escape_default()
        ));
    }
    if frac.len() > limits::MAX_SCALE as usize {
        return Err(format!(
            "\"{s}\" has more than {} decimal places",
            limits::MAX_SCALE
        ));
    }
    Decimal::from_str_exact(s).map_err(|e| format!("\"{s}\": {e}"))
}

/// Formats an amount for a module: plain decimal text.
pub fn format_amount(d: Decimal) -> String {
    d.to_string()
}

/// Checks one returned amount; `what` names it in the error.
fn amount(
    m: &wit::MoneyResult,
    currency: &str,
    what: impl FnOnce() -> String,
) -> Result<Decimal, PricingError> {
    if m.currency != currency {
        return Err(invalid(format!(
            "{} is in currency \"{}\", expected {currency}",
            what(),
            m.currency.escape_default()
        )));
    }
    parse_amount(&m.amount).map_err(|e| invalid(format!("{}: {e}", what())))
}

/// `(list, discount, price)` with `price = list - discount`.
fn triple(
    list: &wit::MoneyResult,
    discount: &wit::MoneyResult,
    price: &wit::MoneyResult,
    currency: &str,
    what: &dyn Fn() -> String,
) -> Result<(Decimal, Decimal, Decimal), PricingError> {
    let l = amount(list, currency, || format!("{} list", what()))?;
    let d = amount(discount, currency, || format!("{} discount", what()))?;
    let p = amount(price, currency, || format!("{} price", what()))?;
    if l - d != p {
        return Err(invalid(format!(
            "{}: price {p} is not list {l} minus discount {d}",
            what()
        )));
    }
    Ok((l, d, p))
}

fn name(s: &str, what: impl FnOnce() -> String) -> Result<String, PricingError> {
    text(s, what, limits::MAX_NAME_BYTES)
}

fn text(s: &str, what: impl FnOnce() -> String, max: usize) -> Result<String, PricingError> {
    if s.len() > max {
        return Err(invalid(format!(
            "{} is {} bytes long (at most {max})",
            what(),
            s.len()
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(format!("{} contains control characters", what())));
    }
    Ok(s.to_owned())
}

/// Calls `f` with the order as the module sees it. The WIT order borrows
/// every text from `o` (nothing is cloned); only the amounts are formatted,
/// and the lists of borrowed items are built here.
pub fn with_wit_order<R>(o: &Order, f: impl FnOnce(wit::Order<'_>) -> R) -> R {
    let cur = o.currency.as_str();
    let amounts: Vec<[String; 2]> = o
        .lines
        .iter()
        .map(|l| [format_amount(l.official), format_amount(l.official_trade)])
        .collect();
    let configs: Vec<Vec<wit::Property<'_>>> = o
        .lines
        .iter()
        .map(|l| {
            l.config
                .iter()
                .map(|(n, v)| wit::Property { name: n, value: v })
                .collect()
        })
        .collect();
    let tags: Vec<&str> = o.customer.tags.iter().map(String::as_str).collect();
    let lines: Vec<wit::LineItem<'_>> = o
        .lines
        .iter()
        .zip(&amounts)
        .zip(&configs)
        .map(|((l, [official, trade]), config)| wit::LineItem {
            id: &l.id,
            product: &l.product,
            sku: &l.sku,
            config,
            region: &l.region,
            quantity: l.quantity,
            period: wit::Period {
                count: l.period_count,
                unit: match l.period_unit {
                    PeriodUnit::Hour => wit::PeriodUnit::Hour,
                    PeriodUnit::Day => wit::PeriodUnit::Day,
                    PeriodUnit::Week => wit::PeriodUnit::Week,
                    PeriodUnit::Month => wit::PeriodUnit::Month,
                    PeriodUnit::Year => wit::PeriodUnit::Year,
                    PeriodUnit::Usage => wit::PeriodUnit::Usage,
                },
            },
            charge_type: match l.charge_type {
                ChargeType::Subscription => wit::ChargeType::Subscription,
                ChargeType::PayAsYouGo => wit::ChargeType::PayAsYouGo,
            },
            official: wit::MoneyParam {
                amount: official,
                currency: cur,
            },
            official_trade: wit::MoneyParam {
                amount: trade,
                currency: cur,
            },
        })
        .collect();
    f(wit::Order {
        action: &o.action,
        intent: match o.intent {
            Intent::Quote => wit::Intent::Quote,
            Intent::Purchase => wit::Intent::Purchase,
        },
        kind: match o.kind {
            OrderKind::New => wit::OrderKind::New,
            OrderKind::Renewal => wit::OrderKind::Renewal,
            OrderKind::Upgrade => wit::OrderKind::Upgrade,
            OrderKind::Downgrade => wit::OrderKind::Downgrade,
        },
        customer: wit::Customer {
            id: &o.customer.id,
            uid: &o.customer.uid,
            group: &o.customer.group,
            tags: &tags,
        },
        currency: cur,
        lines: &lines,
    })
}

/// Checks a module's quote against the order: one valid line per
/// line-item, returned in the order's line order.
pub fn check_quote(order: &Order, q: &[wit::QuoteLine]) -> Result<Vec<QuoteLine>, PricingError> {
    if q.len() != order.lines.len() {
        return Err(invalid(format!(
            "the quote has {} lines for an order of {} (every line must be priced once)",
            q.len(),
            order.lines.len()
        )));
    }
    let mut out = Vec::with_capacity(order.lines.len());
    for item in &order.lines {
        let mut found = q.iter().filter(|l| l.id == item.id);
        let (Some(l), None) = (found.next(), found.next()) else {
            return Err(invalid(format!(
                "line \"{}\" must be priced exactly once",
                item.id
            )));
        };
        let what = || format!("quote line \"{}\"", item.id);
        let (list, discount, price) =
            triple(&l.list, &l.discount, &l.price, &order.currency, &what)?;
        out.push(QuoteLine {
            id: item.id.clone(),
            official: item.official,
            list,
            discount,
            price,
            rule: name(&l.rule, || format!("{} rule", what()))?,
        });
    }
    Ok(out)
}

/// Checks bundle lines: bounded count, unique ids not clashing with the
/// order's, attached to existing lines, valid amounts.
pub fn check_bundles(
    order: &Order,
    bundles: &[wit::BundleLine],
) -> Result<Vec<BundleLine>, PricingError> {
    if bundles.len() > limits::MAX_BUNDLE_LINES {
        return Err(invalid(format!(
            "{} bundle lines (at most {})",
            bundles.len(),
            limits::MAX_BUNDLE_LINES
        )));
    }
    let mut ids: BTreeSet<&str> = order.lines.iter().map(|l| l.id.as_str()).collect();
    let mut out = Vec::with_capacity(bundles.len());
    for b in bundles {
        let id = name(&b.id, || "bundle line id".to_owned())?;
        if id.is_empty() || !ids.insert(b.id.as_str()) {
            return Err(invalid(format!(
                "bundle line id \"{}\" is empty or not unique",
                id.escape_default()
            )));
        }
        if let Some(a) = &b.attached_to
            && !order.lines.iter().any(|l| &l.id == a)
        {
            return Err(invalid(format!(
                "bundle line \"{id}\" is attached to \"{}\", which is not a line of the order",
                a.escape_default()
            )));
        }
        if b.quantity == 0 {
            return Err(invalid(format!("bundle line \"{id}\" has quantity 0")));
        }
        let what = || format!("bundle line \"{id}\"");
        let (list, discount, price) =
            triple(&b.list, &b.discount, &b.price, &order.currency, &what)?;
        out.push(BundleLine {
            attached_to: b.attached_to.clone(),
            description: text(
                &b.description,
                || format!("{} description", what()),
                limits::MAX_TEXT_BYTES,
            )?,
            quantity: b.quantity,
            list,
            discount,
            price,
            rule: name(&b.rule, || format!("{} rule", what()))?,
            id,
        });
    }
    Ok(out)
}

/// Checks `admit`'s answer.
pub fn check_admission(a: wit::Admission) -> Result<Admission, PricingError> {
    Ok(match a {
        wit::Admission::Allow => Admission::Allow,
        wit::Admission::Deny(d) => {
            let message = text(
                &d.message,
                || "denial message".to_owned(),
                limits::MAX_TEXT_BYTES,
            )?;
            if message.trim().is_empty() {
                return Err(invalid("a denial must say why (empty message)"));
            }
            Admission::Deny {
                rule: name(&d.rule, || "denial rule".to_owned())?,
                message,
            }
        }
    })
}

/// Checks `describe`'s answer: `(info, self-check error)`.
pub fn check_info(i: wit::ModuleInfo) -> Result<(ModuleInfo, Option<String>), PricingError> {
    let n = name(&i.name, || "module name".to_owned())?;
    let v = name(&i.version, || "module version".to_owned())?;
    if n.is_empty() || v.is_empty() || n.contains(char::is_whitespace) || v.contains(' ') {
        return Err(invalid(
            "module name and version must be non-empty, without spaces",
        ));
    }
    let err = match i.self_check_error {
        Some(e) => Some(text(
            &e,
            || "self-check error".to_owned(),
            limits::MAX_TEXT_BYTES,
        )?),
        None => None,
    };
    Ok((
        ModuleInfo {
            name: n,
            version: v,
        },
        err,
    ))
}

/// Reads a module configuration file as compact JSON text: `.json` is
/// checked and passed as is; anything else is read as TOML and converted.
/// TOML floats are refused (amounts and percentages are strings, so no
/// binary float ever carries money).
pub fn config_json(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the pricing config {}", path.display()))?;
    let value: serde_json::Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).with_context(|| format!("in {}", path.display()))?
    } else {
        let t: toml::Value =
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        toml_to_json(&t, "").with_context(|| format!("in {}", path.display()))?
    };
    Ok(value.to_string())
}

fn toml_to_json(v: &toml::Value, at: &str) -> anyhow::Result<serde_json::Value> {
    use serde_json::Value as J;
    Ok(match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::Number((*i).into()),
        toml::Value::Float(_) => bail!(
            "{at}: write decimal numbers as strings (e.g. \"12.5\"): a float cannot carry an exact amount"
        ),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| toml_to_json(x, &format!("{at}[{i}]")))
                .collect::<anyhow::Result<_>>()?,
        ),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, x)| {
                    let path = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    Ok((k.clone(), toml_to_json(x, &path)?))
                })
                .collect::<anyhow::Result<_>>()?,
        ),
    })
}
