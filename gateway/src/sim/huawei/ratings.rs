//! Price inquiry (huawei-bss.md §4): pay-per-use ratings, yearly/monthly
//! ratings and renewal ratings, from the price file. Amounts are JSON
//! numbers in yuan (`measure_id` 1) for §4.1/§4.2 and strings for §4.3, as
//! BSS answers them.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::prices::{Amounts, Basis, Sku};
use super::{Ctx, Reply, cbc_param, error_in_200, money_str, num};
use crate::error::Error;

/// `discount_id` of the partner-set discount the sim applies.
const PARTNER_DISCOUNT_ID: &str = "CBF0000000000607";
/// At most this many products per inquiry (BSS's limit is 100).
const MAX_PRODUCTS: usize = 100;

/// One `product_infos[]` entry, checked.
struct Product<'a> {
    id: String,
    sku: &'a Sku,
    size: u32,
    count: u32,
}

fn u32_field(info: &Value, name: &str, required: bool) -> Result<Option<u32>, Error> {
    match info.get(name) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => {
            Err(cbc_param(format_args!("product_infos.{name} is required")))
        }
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                cbc_param(format_args!(
                    "product_infos.{name} must be a non-negative integer"
                ))
            }),
    }
}

fn str_field<'v>(info: &'v Value, name: &str) -> Result<&'v str, Error> {
    info.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| cbc_param(format_args!("product_infos.{name} is required")))
}

fn products<'a>(ctx: &'a Ctx<'_>) -> Result<Vec<(Product<'a>, &'a Value)>, Error> {
    let _ = ctx.required_str("project_id")?;
    let infos = ctx
        .field("product_infos")?
        .as_array()
        .filter(|a| !a.is_empty() && a.len() <= MAX_PRODUCTS)
        .ok_or_else(|| cbc_param("product_infos must hold 1 to 100 products"))?;
    let mut out = Vec::with_capacity(infos.len());
    let mut ids = std::collections::HashSet::new();
    for info in infos {
        let id = str_field(info, "id")?.to_owned();
        if !ids.insert(id.clone()) {
            return Err(cbc_param(format_args!(
                "product_infos.id {id} is not unique"
            )));
        }
        let service = str_field(info, "cloud_service_type")?;
        let rtype = str_field(info, "resource_type")?;
        let spec = str_field(info, "resource_spec")?;
        let _ = str_field(info, "region")?;
        let sku = ctx.prices.sku(service, rtype, spec).ok_or_else(|| {
            super::cbc(
                http::StatusCode::BAD_REQUEST,
                "CBC.0101",
                format!("Parameter invalid: no product matches {service} / {rtype} / {spec}."),
            )
        })?;
        let size = u32_field(info, "resource_size", false)?;
        if sku.size_measure_id.is_some() && size.is_none() {
            return Err(cbc_param(format_args!(
                "product_infos.resource_size is required for {spec}"
            )));
        }
        if let (Some(want), Some(got)) = (
            sku.size_measure_id,
            u32_field(info, "size_measure_id", false)?,
        ) && want != got
        {
            return Err(cbc_param(
                "product_infos.size_measure_id does not match the product",
            ));
        }
        let count = u32_field(info, "subscription_num", true)?.unwrap_or(1);
        if count == 0 {
            return Err(cbc_param(
                "product_infos.subscription_num must be at least 1",
            ));
        }
        out.push((
            Product {
                id,
                sku,
                size: size.unwrap_or(1),
                count,
            },
            info,
        ));
    }
    Ok(out)
}

fn precision(ctx: &Ctx<'_>) -> Result<u32, Error> {
    match ctx.body.get("inquiry_precision") {
        None | Some(Value::Null) => Ok(6),
        Some(v) => match v.as_i64() {
            Some(0) => Ok(6),
            Some(1) => Ok(10),
            _ => Err(cbc_param("inquiry_precision must be 0 or 1")),
        },
    }
}

fn discount_results(a: Amounts) -> Value {
    if a.discount.is_zero() {
        json!([])
    } else {
        json!([{
            "discount_id": PARTNER_DISCOUNT_ID,
            "discount_type": 607,
            "amount": num(a.discount),
            "measure_id": 1,
            "discount_name": "partner discount",
        }])
    }
}

/// `POST /v2/bills/ratings/on-demand-resources` (§4.1).
pub fn on_demand(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let precision = precision(ctx)?;
    let mut total = Amounts::ZERO;
    let mut results = Vec::new();
    for (p, info) in products(ctx)? {
        let factor = str_field(info, "usage_factor")?;
        let _ = factor;
        // A JSON number, or the decimal text some SDKs send for it.
        let usage: Decimal = match info.get("usage_value") {
            Some(Value::Number(n)) => n
                .to_string()
                .parse()
                .map_err(|_| cbc_param("product_infos.usage_value must be a number"))?,
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| cbc_param("product_infos.usage_value must be a number"))?,
            _ => return Err(cbc_param("product_infos.usage_value is required")),
        };
        if usage.is_sign_negative() {
            return Err(cbc_param("product_infos.usage_value must not be negative"));
        }
        // Only hours (4) are priced per unit of time in this price list.
        match u32_field(info, "usage_measure_id", true)? {
            Some(4) => {}
            _ => return Err(cbc_param("product_infos.usage_measure_id must be 4 (hour)")),
        }
        let a = p.sku.price(Basis::Hour, usage, p.count, p.size, precision);
        total = total.plus(a);
        results.push(json!({
            "id": p.id,
            "product_id": p.sku.product_id,
            "amount": num(a.amount),
            "discount_amount": num(a.discount),
            "official_website_amount": num(a.official),
            "measure_id": 1,
            "discount_rating_results": discount_results(a),
        }));
    }
    Ok(Reply::Json(json!({
        "amount": num(total.amount),
        "discount_amount": num(total.discount),
        "official_website_amount": num(total.official),
        "measure_id": 1,
        "currency": ctx.prices.currency,
        "product_rating_results": results,
    })))
}

fn period_basis(period_type: u32, n: u32) -> Result<Basis, Error> {
    match (period_type, n) {
        (2, 1..=11) => Ok(Basis::Month),
        (3, 1..=3) => Ok(Basis::Year),
        (2 | 3, _) => Err(cbc_param("period_num must be 1-11 months or 1-3 years")),
        _ => Err(cbc_param("period_type must be 2 (month) or 3 (year)")),
    }
}

/// `POST /v2/bills/ratings/period-resources/subscribe-rate` (§4.2).
pub fn period(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let mut total = Amounts::ZERO;
    let mut official_lines = Vec::new();
    let mut discount_lines = Vec::new();
    for (p, info) in products(ctx)? {
        let period_type = u32_field(info, "period_type", true)?.unwrap_or(0);
        let period_num = u32_field(info, "period_num", true)?.unwrap_or(0);
        let basis = period_basis(period_type, period_num)?;
        let a = p
            .sku
            .price(basis, Decimal::from(period_num), p.count, p.size, 2);
        total = total.plus(a);
        official_lines.push(json!({
            "id": p.id,
            "product_id": p.sku.product_id,
            "official_website_amount": num(a.official),
            "measure_id": 1,
        }));
        discount_lines.push(json!({
            "id": p.id,
            "product_id": p.sku.product_id,
            "official_website_amount": num(a.official),
            "discount_amount": num(a.discount),
            "amount": num(a.amount),
            "measure_id": 1,
        }));
    }
    let optional = if total.discount.is_zero() {
        json!([])
    } else {
        json!([{
            "discount_id": PARTNER_DISCOUNT_ID,
            "discount_type": 607,
            "discount_name": "partner discount",
            "best_offer": 1,
            "official_website_amount": num(total.official),
            "discount_amount": num(total.discount),
            "amount": num(total.amount),
            "measure_id": 1,
            "product_rating_results": discount_lines,
        }])
    };
    Ok(Reply::Json(json!({
        "currency": ctx.prices.currency,
        "official_website_rating_result": {
            "official_website_amount": num(total.official),
            "measure_id": 1,
            "product_rating_results": official_lines,
        },
        "optional_discount_rating_results": optional,
    })))
}

/// `POST /v2/bills/ratings/period-resources/renew-rate` (§4.3). Amounts
/// are strings here. Unknown resources are listed in `fail_resource_infos`;
/// when none is known the whole answer is `CBC.30050009` inside HTTP 200.
pub fn renew(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let ids = ctx.resource_ids(10)?;
    let period_type = u32::try_from(ctx.required_int("period_type")?).unwrap_or(0);
    let period_num = u32::try_from(ctx.required_int("period_num")?).unwrap_or(0);
    let basis = period_basis(period_type, period_num)?;
    let prices = ctx.prices;
    let currency = prices.currency.clone();
    let acct = ctx.acct();
    let mut total = Amounts::ZERO;
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for id in &ids {
        let priced = acct
            .resources
            .iter()
            .find(|r| &r.id == id && r.status == super::state::resource_status::IN_USE)
            .and_then(|r| {
                prices
                    .by_product_id(&r.product_id)
                    .map(|sku| sku.price(basis, Decimal::from(period_num), 1, r.size, 2))
            });
        match priced {
            Some(a) => {
                total = total.plus(a);
                results.push(json!({ "resource_id": id, "amount": money_str(a.amount) }));
            }
            None => failed.push(json!({
                "resource_id": id,
                "error_code": "CBC.30050009",
                "error_msg": "The resource has expired and been deleted, or does not exist.",
            })),
        }
    }
    if results.is_empty() {
        return Ok(error_in_200(
            "CBC.30050009",
            "The resource has expired and been deleted, or does not exist.",
        ));
    }
    let optional = if total.discount.is_zero() {
        json!([])
    } else {
        json!([{
            "discount_id": PARTNER_DISCOUNT_ID,
            "discount_type": 607,
            "discount_name": "partner discount",
            "best_offer": 1,
            "official_website_amount": money_str(total.official),
            "discount_amount": money_str(total.discount),
            "amount": money_str(total.amount),
            "measure_id": 1,
        }])
    };
    Ok(Reply::Json(json!({
        "currency": currency,
        "renew_inquiry_results": results,
        "official_website_rating_result": {
            "official_website_amount": money_str(total.official),
            "measure_id": 1,
        },
        "optional_discount_rating_results": optional,
        "fail_resource_infos": failed,
    })))
}
