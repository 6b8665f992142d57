//! Partner prices in Huawei rating answers (huawei-bss.md §4): the answer
//! is turned into a pricing [`Order`], priced by the partner's Wasm module,
//! and rewritten in Huawei's own fields so the SDKs parse it unchanged.
//!
//! Huawei semantics, which differ from Alibaba's:
//! * `amount` is the price **after** Huawei's discounts (the partner's
//!   cost, `official_trade`), `official_website_amount` the list price
//!   (`official`);
//! * every amount is in the unit its `measure_id` names (1 yuan, 2 jiao,
//!   3 fen): normalised to yuan before the module sees it, written back in
//!   the answer's own unit;
//! * §4.1/§4.2 amounts are JSON numbers, §4.3 (renewal) amounts strings;
//! * a period rating has no single price: offers are listed in
//!   `optional_discount_rating_results`. The rewritten answer lists exactly
//!   one offer, the partner's price (`best_offer` 1), or none when the
//!   partner price has no discount (then the list price is the price).
//!
//! A business error inside HTTP 200 (`error_code` in the body) passes
//! through untouched. An answer that cannot be read fails the call: an
//! official price is never shown as a partner price.

use http::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::pricing::{
    ChargeType, CustomerInfo, Intent, LineItem, Order, OrderKind, PeriodUnit, Quote, QuoteLine,
};

/// The APIs whose answers carry prices the customer must see as partner
/// prices: the three ratings, and the order listings (an order shows what
/// the customer pays the partner, never the partner's cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PricedAnswer {
    /// `ListOnDemandResourceRatings`.
    OnDemand,
    /// `ListRateOnPeriodDetail`.
    Period,
    /// `ListRenewRateOnPeriod`.
    Renew,
    /// `ListCustomerOrders`: each `order_infos[]` entry.
    Orders,
    /// `ShowCustomerOrderDetails`: `order_info` and its `order_line_items[]`.
    OrderDetail,
}

impl PricedAnswer {
    /// The rating an SDK operation (catalog name) is, if any.
    pub fn of(operation: &str) -> Option<Self> {
        match operation {
            "ListOnDemandResourceRatings" => Some(Self::OnDemand),
            "ListRateOnPeriodDetail" => Some(Self::Period),
            "ListRenewRateOnPeriod" => Some(Self::Renew),
            "ListCustomerOrders" => Some(Self::Orders),
            "ShowCustomerOrderDetails" => Some(Self::OrderDetail),
            _ => None,
        }
    }
}

/// The id of the single offer a rewritten period rating lists.
pub const PARTNER_OFFER_ID: &str = "TOLLGATE-PARTNER-PRICE";
/// Discount type reported for the partner's price (607, "partner-set
/// discount rate", the type BSS itself uses for a partner's discount).
pub const PARTNER_DISCOUNT_TYPE: i64 = 607;

/// Yuan per unit of a currency `measure_id`: 1 yuan, 2 jiao, 3 fen.
pub fn measure_factor(measure_id: i64) -> Option<Decimal> {
    match measure_id {
        1 => Some(Decimal::ONE),
        2 => Some(Decimal::new(1, 1)),
        3 => Some(Decimal::new(1, 2)),
        _ => None,
    }
}

fn unreadable(what: &str) -> Error {
    Error::pricing(
        StatusCode::BAD_GATEWAY,
        "CBC.0999",
        format!("The official price could not be read ({what}); no partner price can be given."),
        "pricing_official_unreadable",
        true,
    )
}

/// An amount written as a JSON number or a decimal string.
pub fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => n.to_string().parse().ok(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The unit factor of `obj.measure_id` (default 1: BSS omits it for yuan
/// in some answers; an unknown unit is unreadable). Accepts `"1"` too.
fn factor_of(obj: &Value, default: Decimal) -> Result<Decimal, Error> {
    match obj.get("measure_id") {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .and_then(measure_factor)
            .ok_or_else(|| unreadable("an amount is in an unknown measure_id")),
    }
}

fn amount(obj: &Value, field: &str, factor: Decimal) -> Result<Decimal, Error> {
    obj.get(field)
        .and_then(decimal)
        .map(|d| d * factor)
        .filter(|d| !d.is_sign_negative())
        .ok_or_else(|| unreadable(&format!("no {field}")))
}

/// An exact JSON number.
pub fn num(d: Decimal) -> Value {
    d.normalize()
        .to_string()
        .parse::<serde_json::Number>()
        .map_or(Value::Null, Value::Number)
}

/// A string amount with at least 2 decimals (the §4.3 style).
pub fn money_str(d: Decimal) -> String {
    let mut d = d.normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    d.to_string()
}

fn last_segment(s: &str) -> String {
    s.rsplit('.').next().unwrap_or(s).to_owned()
}

fn request_products(request: &Value) -> Vec<&Value> {
    request
        .get("product_infos")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn product_line(info: Option<&Value>, id: &str, product_id: &str) -> LineItem {
    let s = |k: &str| {
        info.and_then(|i| i.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let mut config = vec![
        ("resource_spec".to_owned(), s("resource_spec").to_owned()),
        ("product_id".to_owned(), product_id.to_owned()),
    ];
    if let Some(size) = info
        .and_then(|i| i.get("resource_size"))
        .filter(|v| !v.is_null())
    {
        config.push(("resource_size".to_owned(), size.to_string()));
    }
    LineItem {
        id: id.to_owned(),
        product: last_segment(s("cloud_service_type")),
        sku: last_segment(s("resource_type")),
        config,
        region: s("region").to_owned(),
        quantity: info
            .and_then(|i| i.get("subscription_num"))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(1),
        period_count: 1,
        period_unit: PeriodUnit::Hour,
        charge_type: ChargeType::PayAsYouGo,
        official: Decimal::ZERO,
        official_trade: Decimal::ZERO,
    }
}

fn period_of(info: Option<&Value>) -> (u32, PeriodUnit) {
    let n = info
        .and_then(|i| i.get("period_num"))
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(1);
    let unit = match info
        .and_then(|i| i.get("period_type"))
        .and_then(Value::as_i64)
    {
        Some(0) => PeriodUnit::Day,
        Some(3) => PeriodUnit::Year,
        Some(4) => PeriodUnit::Hour,
        _ => PeriodUnit::Month,
    };
    (n, unit)
}

/// One rating result: its id, its unit factor (the result's own
/// `measure_id`, else `top`'s), what the customer asked for it, and the
/// line it becomes (amounts still to fill in).
fn rated<'a, 'b>(
    r: &'a Value,
    top: Decimal,
    info_for: &impl Fn(&str) -> Option<&'b Value>,
) -> Result<(&'a str, Decimal, Option<&'b Value>, LineItem), Error> {
    let id = r
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| unreadable("a result has no id"))?;
    let info = info_for(id);
    let line = product_line(
        info,
        id,
        r.get("product_id").and_then(Value::as_str).unwrap_or(""),
    );
    Ok((id, factor_of(r, top)?, info, line))
}

/// Builds the order a rating answer prices. `request` is the customer's
/// JSON body, `answer` BSS's 200 answer (without `error_code`).
pub fn order_from_rating(
    rating: PricedAnswer,
    request: &Value,
    answer: &Value,
    customer: CustomerInfo,
) -> Result<Order, Error> {
    let infos = request_products(request);
    let info_for = |id: &str| {
        infos
            .iter()
            .copied()
            .find(|i| i.get("id").and_then(Value::as_str) == Some(id))
    };
    let currency = answer
        .get("currency")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .unwrap_or("CNY")
        .to_owned();
    let mut lines = Vec::new();
    let kind = match rating {
        PricedAnswer::OnDemand => {
            let top = factor_of(answer, Decimal::ONE)?;
            let results = answer
                .get("product_rating_results")
                .and_then(Value::as_array)
                .ok_or_else(|| unreadable("no product_rating_results"))?;
            for r in results {
                let (_, f, info, mut line) = rated(r, top, &info_for)?;
                if let Some(usage) = info.and_then(|i| i.get("usage_value")).and_then(decimal)
                    && usage.fract().is_zero()
                    && usage >= Decimal::ONE
                {
                    line.period_count =
                        u32::try_from(usage.mantissa() / 10i128.pow(usage.scale())).unwrap_or(1);
                }
                line.official = amount(r, "official_website_amount", f)?;
                line.official_trade = amount(r, "amount", f)?;
                lines.push(line);
            }
            OrderKind::New
        }
        PricedAnswer::Period => {
            let official = answer
                .get("official_website_rating_result")
                .ok_or_else(|| unreadable("no official_website_rating_result"))?;
            let top = factor_of(official, Decimal::ONE)?;
            let best = best_offer(answer);
            let results = official
                .get("product_rating_results")
                .and_then(Value::as_array)
                .ok_or_else(|| unreadable("no product_rating_results"))?;
            for r in results {
                let (id, f, info, mut line) = rated(r, top, &info_for)?;
                (line.period_count, line.period_unit) = period_of(info);
                line.charge_type = ChargeType::Subscription;
                line.official = amount(r, "official_website_amount", f)?;
                line.official_trade = match best.and_then(|b| offer_line(b, id)) {
                    Some(o) => {
                        let of = factor_of(o, f)?;
                        amount(o, "amount", of)?
                    }
                    None => line.official,
                };
                lines.push(line);
            }
            OrderKind::New
        }
        PricedAnswer::Renew => {
            let official = answer
                .get("official_website_rating_result")
                .ok_or_else(|| unreadable("no official_website_rating_result"))?;
            let f = factor_of(official, Decimal::ONE)?;
            let total_official = amount(official, "official_website_amount", f)?;
            let results = answer
                .get("renew_inquiry_results")
                .and_then(Value::as_array)
                .ok_or_else(|| unreadable("no renew_inquiry_results"))?;
            let amounts: Vec<(String, Decimal)> = results
                .iter()
                .map(|r| {
                    let id = r
                        .get("resource_id")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    amount(r, "amount", f).map(|a| (id, a))
                })
                .collect::<Result<_, _>>()?;
            let total_trade: Decimal = amounts.iter().map(|(_, a)| *a).sum();
            let (n, unit) = period_of(Some(request));
            // BSS gives the list price only in total: it is split over the
            // resources in proportion to their amounts, to the cent, the
            // rounding remainder on the last one, so the lines add up.
            let mut left = total_official;
            for (i, (id, trade)) in amounts.iter().enumerate() {
                let official = if i + 1 == amounts.len() {
                    left
                } else if total_trade.is_zero() {
                    Decimal::ZERO
                } else {
                    (total_official * *trade / total_trade).round_dp(2)
                };
                left -= official;
                lines.push(LineItem {
                    id: id.clone(),
                    product: "renewal".to_owned(),
                    sku: "resource".to_owned(),
                    config: vec![("resource_id".to_owned(), id.clone())],
                    region: String::new(),
                    quantity: 1,
                    period_count: n,
                    period_unit: unit,
                    charge_type: ChargeType::Subscription,
                    official: official.max(*trade),
                    official_trade: *trade,
                });
            }
            OrderKind::Renewal
        }
        PricedAnswer::Orders | PricedAnswer::OrderDetail => {
            for (i, o) in order_entries(answer, rating).into_iter().enumerate() {
                let mut line = order_line(o)?;
                line.id = format!("o{i}");
                lines.push(line);
            }
            OrderKind::New
        }
    };
    Ok(Order {
        action: match rating {
            PricedAnswer::OnDemand => "ListOnDemandResourceRatings",
            PricedAnswer::Period => "ListRateOnPeriodDetail",
            PricedAnswer::Renew => "ListRenewRateOnPeriod",
            PricedAnswer::Orders => "ListCustomerOrders",
            PricedAnswer::OrderDetail => "ShowCustomerOrderDetails",
        }
        .to_owned(),
        intent: Intent::Quote,
        kind,
        customer,
        currency,
        lines,
    })
}

/// The priced entries of an order answer, in a fixed order: every
/// `order_infos[]` (listing), or `order_info` then `order_line_items[]`
/// (details). Each is keyed by its position (`o<i>`), since a detail's
/// order and its single line share the order id.
fn order_entries(answer: &Value, which: PricedAnswer) -> Vec<&Value> {
    match which {
        PricedAnswer::Orders => answer
            .get("order_infos")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        _ => answer
            .get("order_info")
            .into_iter()
            .chain(
                answer
                    .get("order_line_items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            )
            .collect(),
    }
}

fn order_entries_mut(answer: &mut Value, which: PricedAnswer) -> Vec<&mut Value> {
    match which {
        PricedAnswer::Orders => answer
            .get_mut("order_infos")
            .and_then(Value::as_array_mut)
            .map(|a| a.iter_mut().collect())
            .unwrap_or_default(),
        _ => {
            let Value::Object(m) = answer else {
                return Vec::new();
            };
            let mut out = Vec::new();
            let mut lines = None;
            for (k, v) in m.iter_mut() {
                match k.as_str() {
                    "order_info" => out.insert(0, v),
                    "order_line_items" => lines = v.as_array_mut(),
                    _ => {}
                }
            }
            out.extend(lines.into_iter().flatten());
            out
        }
    }
}

/// One order (or order line) as a pricing line. Amounts are magnitudes:
/// unsubscribe orders carry negative (refund) amounts, priced like the
/// purchase they undo and written back negative.
fn order_line(o: &Value) -> Result<LineItem, Error> {
    let f = factor_of(o, Decimal::ONE)?;
    let magnitude = |field: &str| {
        o.get(field)
            .and_then(decimal)
            .map(|d| d.abs() * f)
            .ok_or_else(|| unreadable(&format!("an order has no {field}")))
    };
    let trade = magnitude("amount_after_discount")?;
    let official = magnitude("official_amount").unwrap_or(trade);
    let service = o
        .get("service_type_code")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (count, unit) = match (
        o.get("period_type").and_then(Value::as_i64),
        o.get("period_num").and_then(Value::as_u64),
    ) {
        (Some(3), Some(n)) => (u32::try_from(n).unwrap_or(1), PeriodUnit::Year),
        (Some(0), Some(n)) => (u32::try_from(n).unwrap_or(1), PeriodUnit::Day),
        (_, Some(n)) => (u32::try_from(n).unwrap_or(1), PeriodUnit::Month),
        _ => (1, PeriodUnit::Month),
    };
    Ok(LineItem {
        id: String::new(),
        product: last_segment(service),
        sku: o
            .get("product_id")
            .and_then(Value::as_str)
            .unwrap_or("order")
            .to_owned(),
        config: vec![(
            "order_id".to_owned(),
            o.get("order_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        )],
        region: String::new(),
        quantity: 1,
        period_count: count,
        period_unit: unit,
        charge_type: ChargeType::Subscription,
        official: official.max(trade),
        official_trade: trade,
    })
}

/// The offer BSS marks best (`best_offer` 1), else the cheapest.
fn best_offer(answer: &Value) -> Option<&Value> {
    let offers = answer.get("optional_discount_rating_results")?.as_array()?;
    offers
        .iter()
        .find(|o| o.get("best_offer").and_then(Value::as_i64) == Some(1))
        .or_else(|| {
            offers
                .iter()
                .filter_map(|o| o.get("amount").and_then(decimal).map(|a| (a, o)))
                .min_by(|a, b| a.0.cmp(&b.0))
                .map(|(_, o)| o)
        })
}

fn offer_line<'a>(offer: &'a Value, id: &str) -> Option<&'a Value> {
    offer
        .get("product_rating_results")?
        .as_array()?
        .iter()
        .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
}

fn quote_line<'q>(quote: &'q Quote, id: &str) -> Option<&'q QuoteLine> {
    quote.lines.iter().find(|l| l.id == id)
}

fn partner_discount(discount: Decimal, f: Decimal, rule: &str) -> Value {
    if discount.is_zero() {
        json!([])
    } else {
        json!([{
            "discount_id": PARTNER_OFFER_ID,
            "discount_type": PARTNER_DISCOUNT_TYPE,
            "amount": num(discount / f),
            "measure_id": measure_of(f),
            "discount_name": rule,
        }])
    }
}

fn measure_of(f: Decimal) -> i64 {
    if f == Decimal::new(1, 1) {
        2
    } else if f == Decimal::new(1, 2) {
        3
    } else {
        1
    }
}

fn set(obj: &mut Value, field: &str, v: Value) {
    if let Value::Object(m) = obj {
        m.insert(field.to_owned(), v);
    }
}

/// Rewrites `answer` (as read by [`order_from_rating`]) to the partner's
/// quote. Partner bundle lines are added as extra rating results (id
/// `tollgate:<code>`) and counted in the totals.
pub fn rewrite(rating: PricedAnswer, answer: &mut Value, quote: &Quote) -> Result<(), Error> {
    let bundles: Vec<(&str, Decimal, Decimal, Decimal)> = quote
        .bundles
        .iter()
        .map(|b| (b.id.as_str(), b.list, b.discount, b.price))
        .collect();
    match rating {
        PricedAnswer::OnDemand => {
            let top = factor_of(answer, Decimal::ONE)?;
            if let Some(results) = answer
                .get_mut("product_rating_results")
                .and_then(Value::as_array_mut)
            {
                for r in results.iter_mut() {
                    let f = factor_of(r, top)?;
                    let id = r.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
                    let line = quote_line(quote, &id)
                        .ok_or_else(|| unreadable("a result the module did not price"))?;
                    set(r, "amount", num(line.price / f));
                    set(r, "official_website_amount", num(line.list / f));
                    set(r, "discount_amount", num(line.discount / f));
                    set(
                        r,
                        "discount_rating_results",
                        partner_discount(line.discount, f, &line.rule),
                    );
                }
                for (id, list, discount, price) in &bundles {
                    results.push(json!({
                        "id": format!("tollgate:{id}"),
                        "product_id": id,
                        "amount": num(*price / top),
                        "official_website_amount": num(*list / top),
                        "discount_amount": num(*discount / top),
                        "measure_id": measure_of(top),
                        "discount_rating_results": [],
                    }));
                }
            }
            set(answer, "amount", num(quote.total / top));
            set(
                answer,
                "official_website_amount",
                num(quote.list_total / top),
            );
            set(answer, "discount_amount", num(quote.discount_total / top));
        }
        PricedAnswer::Period => {
            let official = answer
                .get_mut("official_website_rating_result")
                .ok_or_else(|| unreadable("no official_website_rating_result"))?;
            let top = factor_of(official, Decimal::ONE)?;
            let mut offer_lines = Vec::new();
            if let Some(results) = official
                .get_mut("product_rating_results")
                .and_then(Value::as_array_mut)
            {
                for r in results.iter_mut() {
                    let f = factor_of(r, top)?;
                    let id = r.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
                    let line = quote_line(quote, &id)
                        .ok_or_else(|| unreadable("a result the module did not price"))?;
                    set(r, "official_website_amount", num(line.list / f));
                    let mut o = Map::new();
                    o.insert("id".into(), json!(id));
                    o.insert(
                        "product_id".into(),
                        r.get("product_id").cloned().unwrap_or(Value::Null),
                    );
                    o.insert("official_website_amount".into(), num(line.list / f));
                    o.insert("discount_amount".into(), num(line.discount / f));
                    o.insert("amount".into(), num(line.price / f));
                    o.insert("measure_id".into(), json!(measure_of(f)));
                    offer_lines.push(Value::Object(o));
                }
                for (id, list, discount, price) in &bundles {
                    results.push(json!({
                        "id": format!("tollgate:{id}"),
                        "product_id": id,
                        "official_website_amount": num(*list / top),
                        "measure_id": measure_of(top),
                    }));
                    offer_lines.push(json!({
                        "id": format!("tollgate:{id}"),
                        "product_id": id,
                        "official_website_amount": num(*list / top),
                        "discount_amount": num(*discount / top),
                        "amount": num(*price / top),
                        "measure_id": measure_of(top),
                    }));
                }
            }
            set(
                official,
                "official_website_amount",
                num(quote.list_total / top),
            );
            let offers = if quote.discount_total.is_zero() {
                json!([])
            } else {
                json!([{
                    "discount_id": PARTNER_OFFER_ID,
                    "discount_type": PARTNER_DISCOUNT_TYPE,
                    "discount_name": quote.lines.first().map_or("", |l| l.rule.as_str()),
                    "best_offer": 1,
                    "official_website_amount": num(quote.list_total / top),
                    "discount_amount": num(quote.discount_total / top),
                    "amount": num(quote.total / top),
                    "measure_id": measure_of(top),
                    "product_rating_results": offer_lines,
                }])
            };
            set(answer, "optional_discount_rating_results", offers);
        }
        PricedAnswer::Renew => {
            let f = answer
                .get("official_website_rating_result")
                .map_or(Ok(Decimal::ONE), |o| factor_of(o, Decimal::ONE))?;
            if let Some(results) = answer
                .get_mut("renew_inquiry_results")
                .and_then(Value::as_array_mut)
            {
                for r in results.iter_mut() {
                    let id = r
                        .get("resource_id")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    let line = quote_line(quote, &id)
                        .ok_or_else(|| unreadable("a resource the module did not price"))?;
                    set(r, "amount", json!(money_str(line.price / f)));
                }
            }
            if let Some(o) = answer.get_mut("official_website_rating_result") {
                set(
                    o,
                    "official_website_amount",
                    json!(money_str(quote.list_total / f)),
                );
            }
            let offers = if quote.discount_total.is_zero() {
                json!([])
            } else {
                json!([{
                    "discount_id": PARTNER_OFFER_ID,
                    "discount_type": PARTNER_DISCOUNT_TYPE,
                    "discount_name": quote.lines.first().map_or("", |l| l.rule.as_str()),
                    "best_offer": 1,
                    "official_website_amount": money_str(quote.list_total / f),
                    "discount_amount": money_str(quote.discount_total / f),
                    "amount": money_str(quote.total / f),
                    "measure_id": measure_of(f),
                }])
            };
            set(answer, "optional_discount_rating_results", offers);
        }
        PricedAnswer::Orders | PricedAnswer::OrderDetail => {
            for (i, o) in order_entries_mut(answer, rating).into_iter().enumerate() {
                let f = factor_of(o, Decimal::ONE)?;
                let line = quote_line(quote, &format!("o{i}"))
                    .ok_or_else(|| unreadable("an order the module did not price"))?;
                let refund = o
                    .get("amount_after_discount")
                    .and_then(decimal)
                    .is_some_and(|d| d.is_sign_negative());
                let signed = |d: Decimal| if refund { -d } else { d };
                set(o, "amount_after_discount", num(signed(line.price / f)));
                set(o, "official_amount", num(signed(line.list / f)));
                if let Some(info) = o.get_mut("amount_info") {
                    let discounts = if line.discount.is_zero() {
                        json!([])
                    } else {
                        json!([{
                            "discount_type": PARTNER_DISCOUNT_TYPE.to_string(),
                            "discount_amount": num(line.discount / f),
                        }])
                    };
                    set(info, "discounts", discounts);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
