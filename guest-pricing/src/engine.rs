//! The reference module's rules, on the generated WIT types (so the same
//! code runs inside the component and natively).

use alloc::borrow::ToOwned as _;
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use rust_decimal::Decimal;

use crate::bindings::tollgate::pricing::types::{
    Admission, Answer, BundleLine, ChargeType, Customer, Denial, Intent, LineItem, Money, Order,
    PeriodUnit, QuoteLine,
};
use crate::config::{Base, Config, Prepared, Quota, Rule, Scope, TierMode};
use crate::money::{format_amount, parse_amount};

/// The rule name reported for a line no rule matched (official price).
pub const NO_RULE: &str = "official";

/// `prepare`: the configuration parsed, self-checked and encoded, once per
/// load.
pub fn prepare(text: &str) -> Result<Vec<u8>, String> {
    let config = Config::parse(text)?;
    self_check(&config)?;
    config.encode()
}

/// `quote`: prices, bundle lines and (for purchases) the quota rules'
/// verdict, in one call.
pub fn quote(c: &Prepared<'_>, order: &Order) -> Result<Answer, String> {
    let lines = price(c, order)?;
    let bundles = bundle(c, order)?;
    let admission = match order.intent {
        // A price query is never refused (the host ignores it anyway).
        Intent::Quote => Admission::Allow,
        Intent::Purchase => admit(c, order, &lines, &bundles)?,
    };
    Ok(Answer {
        lines,
        bundles,
        admission,
    })
}

/// The module's self-check: the configuration parsed; names are unique.
pub fn self_check<S: AsRef<str> + Ord>(c: &Config<S>) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for name in c.rules.iter().map(|r| r.name.as_ref()) {
        if !seen.insert(name) {
            return Err(format!("rule name \"{name}\" is used twice"));
        }
    }
    let mut codes = BTreeSet::new();
    for code in c.bundles.iter().map(|b| b.code.as_ref()) {
        if !codes.insert(code) {
            return Err(format!("bundle code \"{code}\" is used twice"));
        }
    }
    Ok(())
}

fn matches(scope: &Scope<&str>, line: &LineItem, who: &Customer) -> bool {
    let eq = |want: &Option<&str>, have: &str| want.is_none_or(|w| w == have);
    eq(&scope.product, &line.product)
        && scope.sku.is_none_or(|s| s.eq_ignore_ascii_case(&line.sku))
        && scope
            .config
            .iter()
            .all(|(k, v)| line.config.iter().any(|p| &p.name == k && &p.value == v))
        && eq(&scope.region, &line.region)
        && eq(&scope.group, &who.group)
        && eq(&scope.customer, &who.id)
        && scope.charge_type.is_none_or(|c| {
            matches!(
                (c, line.charge_type),
                (
                    crate::config::Charge::Subscription,
                    ChargeType::Subscription
                ) | (crate::config::Charge::PayAsYouGo, ChargeType::PayAsYouGo)
            )
        })
}

/// The most specific matching rule; on a tie, the one written first.
fn best_rule<'c, 'a>(
    c: &'c Prepared<'a>,
    line: &LineItem,
    who: &Customer,
) -> Option<&'c Rule<&'a str>> {
    let mut best: Option<&Rule<&str>> = None;
    for r in c.rules.iter().filter(|r| matches(&r.scope, line, who)) {
        if best.is_none_or(|b| r.scope.specificity() > b.scope.specificity()) {
            best = Some(r);
        }
    }
    best
}

fn money(amount: Decimal, currency: &str) -> Money {
    Money {
        amount: format_amount(amount),
        currency: currency.to_owned(),
    }
}

fn amount_in(m: &Money, currency: &str, what: &str) -> Result<Decimal, String> {
    if m.currency != currency {
        return Err(format!(
            "{what} is in {} but the order is in {currency}",
            m.currency
        ));
    }
    parse_amount(&m.amount).map_err(|e| format!("{what}: {e}"))
}

fn check_currency(c: &Prepared<'_>, order: &Order) -> Result<(), String> {
    match &c.currency {
        Some(want) if *want != order.currency => Err(format!(
            "this price list is in {want}; the order is in {}",
            order.currency
        )),
        _ => Ok(()),
    }
}

/// (markup, discount) amounts of `rule` on `base` for `quantity` instances.
fn adjustments(rule: &Rule<&str>, base: Decimal, quantity: u32) -> (Decimal, Decimal) {
    let hundred = Decimal::ONE_HUNDRED;
    let q = quantity.max(1);
    let mut markup = Decimal::ZERO;
    let mut discount = Decimal::ZERO;
    let mut add = |share: Decimal, percent: Decimal| {
        if percent.is_sign_negative() {
            discount += share * -percent / hundred;
        } else {
            markup += share * percent / hundred;
        }
    };
    match rule.tier_mode {
        TierMode::Volume => {
            let tier = rule
                .tiers
                .iter()
                .find(|t| t.upto.is_none_or(|u| q <= u))
                .or(rule.tiers.last());
            if let Some(t) = tier {
                add(base, t.percent);
            }
        }
        TierMode::Graduated => {
            let mut done = 0;
            for t in &rule.tiers {
                let top = t.upto.map_or(q, |u| u.min(q));
                if top <= done {
                    continue;
                }
                // The share of the line's price for instances done+1..=top.
                let share = base * Decimal::from(top - done) / Decimal::from(q);
                add(share, t.percent);
                done = top;
                if done >= q {
                    break;
                }
            }
        }
    }
    (markup, discount)
}

/// The prices: one quote line per line-item.
pub fn price(c: &Prepared<'_>, order: &Order) -> Result<Vec<QuoteLine>, String> {
    check_currency(c, order)?;
    let cur = order.currency.as_str();
    let mut lines = Vec::with_capacity(order.lines.len());
    for line in &order.lines {
        let base = match c.base {
            Base::List => amount_in(&line.official, cur, &format!("line {} official", line.id))?,
            Base::Trade => amount_in(
                &line.official_trade,
                cur,
                &format!("line {} official-trade", line.id),
            )?,
        };
        let (list, discount, rule) = match best_rule(c, line, &order.customer) {
            Some(rule) => {
                let (markup, discount) = adjustments(rule, base, line.quantity);
                let fee = rule.fee * Decimal::from(line.quantity.max(1));
                let list = c.rounding.apply(base + markup + fee);
                let discount = c.rounding.apply(discount).min(list);
                (list, discount, rule.name.to_owned())
            }
            None => (c.rounding.apply(base), Decimal::ZERO, NO_RULE.to_owned()),
        };
        lines.push(QuoteLine {
            id: line.id.clone(),
            list: money(list, cur),
            discount: money(discount, cur),
            price: money(list - discount, cur),
            rule,
        });
    }
    Ok(lines)
}

/// Months in a period (weeks are a quarter month, as Alibaba prices them).
fn months(line: &LineItem) -> Option<Decimal> {
    let n = Decimal::from(line.period.count);
    match line.period.unit {
        PeriodUnit::Month => Some(n),
        PeriodUnit::Year => Some(n * Decimal::from(12)),
        PeriodUnit::Week => Some(n / Decimal::from(4)),
        PeriodUnit::Day | PeriodUnit::Hour | PeriodUnit::Usage => None,
    }
}

/// The bundle lines: the partner's products per matching line.
pub fn bundle(c: &Prepared<'_>, order: &Order) -> Result<Vec<BundleLine>, String> {
    check_currency(c, order)?;
    let cur = order.currency.as_str();
    let mut out = Vec::new();
    for b in &c.bundles {
        let mut n = 0;
        for line in order
            .lines
            .iter()
            .filter(|l| matches(&b.scope, l, &order.customer))
        {
            let quantity = Decimal::from(line.quantity.max(1));
            let amount = match (line.charge_type, b.monthly, b.hourly) {
                (ChargeType::Subscription, Some(m), _) => match months(line) {
                    Some(months) => m * quantity * months,
                    None => continue,
                },
                (ChargeType::PayAsYouGo, _, Some(h)) if line.period.unit == PeriodUnit::Hour => {
                    h * quantity * Decimal::from(line.period.count.max(1))
                }
                _ => continue,
            };
            n += 1;
            let id = if n == 1 {
                b.code.to_owned()
            } else {
                format!("{}-{n}", b.code)
            };
            let list = c.rounding.apply(amount);
            out.push(BundleLine {
                id,
                attached_to: Some(line.id.clone()),
                description: b.description.to_owned(),
                quantity: line.quantity.max(1),
                list: money(list, cur),
                discount: money(Decimal::ZERO, cur),
                price: money(list, cur),
                rule: b.name.to_owned(),
            });
        }
    }
    Ok(out)
}

fn applies_to(q: &Quota<&str>, who: &Customer) -> bool {
    q.customer.is_none_or(|c| c == who.id) && q.group.is_none_or(|g| g == who.group)
}

fn deny(q: &Quota<&str>, default: String) -> Admission {
    Admission::Deny(Denial {
        rule: q.name.to_owned(),
        message: q.message.map_or(default, str::to_owned),
    })
}

fn describe_sku(line: &LineItem) -> String {
    let props: Vec<String> = line
        .config
        .iter()
        .map(|p| format!("{}={}", p.name, p.value))
        .collect();
    if props.is_empty() {
        format!("{} {}", line.product, line.sku)
    } else {
        format!("{} {} ({})", line.product, line.sku, props.join(", "))
    }
}

/// The admission: the first quota rule an order breaks refuses it.
pub fn admit(
    c: &Prepared<'_>,
    order: &Order,
    priced: &[QuoteLine],
    bundles: &[BundleLine],
) -> Result<Admission, String> {
    let cur = order.currency.as_str();
    let who = &order.customer;
    for q in c.quotas.iter().filter(|q| applies_to(q, who)) {
        let lines = order
            .lines
            .iter()
            .filter(|l| q.product.is_none_or(|p| p == l.product));
        for line in lines {
            if !q.allowed_regions.is_empty() && !q.allowed_regions.contains(&line.region.as_str()) {
                let msg = if line.region.is_empty() {
                    "The order must name a region.".to_owned()
                } else {
                    format!(
                        "Region {} is not available to your account (allowed: {}).",
                        line.region,
                        q.allowed_regions.join(", ")
                    )
                };
                return Ok(deny(q, msg));
            }
            if q.denied_skus.iter().any(|s| matches(s, line, who)) {
                return Ok(deny(
                    q,
                    format!("{} is not available to your account.", describe_sku(line)),
                ));
            }
            if let Some(max) = q.max_quantity
                && line.quantity > max
            {
                return Ok(deny(
                    q,
                    format!(
                        "At most {max} instances per order; this order asks for {}.",
                        line.quantity
                    ),
                ));
            }
        }
        if let Some(max) = q.max_order_amount {
            let mut total = Decimal::ZERO;
            for l in priced {
                total += amount_in(&l.price, cur, "quote line")?;
            }
            for b in bundles {
                total += amount_in(&b.price, cur, "bundle line")?;
            }
            if total > max {
                return Ok(deny(
                    q,
                    format!(
                        "The order total {total} {cur} is above your limit of {max} {cur} per order."
                    ),
                ));
            }
        }
    }
    Ok(Admission::Allow)
}
