//! Account, bills, costs and the remaining rows of the permission table
//! (huawei-bss.md §5, §8, §9): balances, coupons, free resources, resource
//! records and fee records (from the account's orders), monthly sums, cost
//! analysis (string amounts), enterprise-project authority, invoices,
//! measurement units.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::state::{Order, status};
use super::{Ctx, Reply, cbc, cbc_param, cycle_of, money_str, num, utc};
use crate::error::Error;

/// `GET /v2/accounts/customer-accounts/balances` (§5.1).
pub fn balances(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let short: String = ctx.account.domain_id.chars().take(12).collect();
    let acct = ctx.acct();
    Ok(Reply::Json(json!({
        "account_balances": [
            { "account_id": format!("CBDA{short}01"), "account_type": 1, "amount": num(acct.cash),
              "currency": "CNY", "designated_amount": 0, "measure_id": 1 },
            { "account_id": format!("CBDA{short}02"), "account_type": 2, "amount": num(acct.credit),
              "credit_amount": num(acct.credit), "currency": "CNY", "measure_id": 1 },
        ],
        "debt_amount": 0,
        "measure_id": 1,
        "currency": "CNY",
    })))
}

/// `GET /v2/promotions/benefits/coupons`: the demo accounts hold none.
pub fn coupons(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let _ = ctx.query_int("limit", 10, 1, 100)?;
    Ok(Reply::Json(json!({ "count": 0, "user_coupons": [] })))
}

/// `POST /v3/payments/free-resources/query`: no resource packages.
pub fn free_resources(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let _ = ctx;
    Ok(Reply::Json(
        json!({ "total_count": 0, "free_resource_packages": [] }),
    ))
}

/// `GET /v2/bills/customer-bills/free-resources-usage-records`.
pub fn free_usage_records(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let _ = required_cycle_query(ctx)?;
    Ok(Reply::Json(
        json!({ "total_count": 0, "free_resources_usage_records": [] }),
    ))
}

/// `POST /v2/payments/free-resources/usages/details/query`.
pub fn free_usages(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let _ = ctx.field("free_resource_ids")?;
    Ok(Reply::Json(json!({ "free_resources": [] })))
}

fn check_cycle(c: &str) -> Result<String, Error> {
    let ok = c.len() == 7
        && c.as_bytes()[4] == b'-'
        && c[..4].bytes().all(|b| b.is_ascii_digit())
        && c[5..].parse::<u8>().is_ok_and(|m| (1..=12).contains(&m));
    if ok && c >= "2019-01" {
        Ok(c.to_owned())
    } else {
        Err(cbc_param("cycle must be YYYY-MM, not before 2019-01"))
    }
}

fn required_cycle_query(ctx: &Ctx<'_>) -> Result<String, Error> {
    check_cycle(
        ctx.query("cycle")
            .ok_or_else(|| cbc_param("cycle is required"))?,
    )
}

/// The billed (paid) orders of a cycle, oldest first.
fn billed<'o>(orders: &'o [Order], cycle: &str) -> Vec<&'o Order> {
    orders
        .iter()
        .filter(|o| o.status == status::COMPLETED)
        .filter(|o| o.payment_time.is_some_and(|t| cycle_of(t) == cycle))
        .collect()
}

/// §8.1 `bill_type` of an order.
fn bill_type(o: &Order) -> i32 {
    match o.order_type {
        2 => 2,
        4 => 4,
        _ => 1,
    }
}

fn page(ctx: &Ctx<'_>) -> Result<(usize, usize), Error> {
    let from_body = |k: &str| ctx.body.get(k).and_then(Value::as_u64);
    let offset = match from_body("offset") {
        Some(n) => n,
        None => u64::try_from(ctx.query_int("offset", 0, 0, i64::from(i32::MAX))?).unwrap_or(0),
    };
    let limit = match from_body("limit") {
        Some(n) => n,
        None => u64::try_from(ctx.query_int("limit", 10, 1, 1000)?).unwrap_or(10),
    };
    if !(1..=1000).contains(&limit) {
        return Err(cbc_param("limit must be 1 to 1000"));
    }
    Ok((
        usize::try_from(offset).unwrap_or(usize::MAX),
        usize::try_from(limit).unwrap_or(10),
    ))
}

/// `GET /v2/bills/customer-bills/res-fee-records` (§8.1).
pub fn fee_records(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let cycle = required_cycle_query(ctx)?;
    let (offset, limit) = page(ctx)?;
    let domain = ctx.account.domain_id.clone();
    let name = ctx.account.name.clone();
    let prices = ctx.prices;
    let acct = ctx.acct();
    let rows = billed(&acct.orders, &cycle);
    let total = rows.len();
    let records: Vec<Value> = rows
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|o| {
            let t = o.payment_time.unwrap_or(o.create_time);
            json!({
                "bill_date": utc(t)[..10],
                "bill_type": bill_type(o),
                "customer_id": domain,
                "region": "cn-north-4",
                "region_name": "CN North-Beijing4",
                "cloud_service_type": o.service_type_code,
                "cloud_service_type_name": prices.service_name(&o.service_type_code),
                "resource_id": o.resource_ids.first(),
                "product_id": o.product_id,
                "product_spec_desc": o.spec_desc,
                "trade_id": o.id,
                "id": format!("{}-F1", o.id),
                "trade_time": utc(t),
                "enterprise_project_id": "0",
                "enterprise_project_name": "default",
                "charge_mode": "1",
                "order_id": o.id,
                "period_type": match o.period { Some((3, _)) => "19", _ => "20" },
                "official_amount": num(o.amounts.official),
                "discount_amount": num(o.amounts.discount),
                "amount": num(o.amounts.amount),
                "cash_amount": num(o.amounts.amount),
                "credit_amount": 0, "coupon_amount": 0, "flexipurchase_coupon_amount": 0,
                "stored_card_amount": 0, "bonus_amount": 0, "debt_amount": 0, "adjustment_amount": 0,
                "measure_id": 1,
                "account_name": name,
            })
        })
        .collect();
    Ok(Reply::Json(
        json!({ "total_count": total, "currency": "CNY", "fee_records": records }),
    ))
}

/// `POST /v2/bills/customer-bills/res-records/query` (§8.2).
pub fn res_records(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let cycle = check_cycle(ctx.required_str("cycle")?)?;
    let (offset, limit) = page(ctx)?;
    let domain = ctx.account.domain_id.clone();
    let acct = ctx.acct();
    let rows = billed(&acct.orders, &cycle);
    let total = rows.len();
    let records: Vec<Value> = rows
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|o| {
            json!({
                "cycle": cycle,
                "bill_date": null,
                "bill_type": bill_type(o),
                "customer_id": domain,
                "region": "cn-north-4",
                "cloud_service_type": o.service_type_code,
                "resource_Type_code": "hws.resource.type.vm",
                "res_instance_id": o.resource_ids.first(),
                "charge_mode": 1,
                "official_amount": num(o.amounts.official),
                "discount_amount": num(o.amounts.discount),
                "consume_amount": num(o.amounts.amount),
                "cash_amount": num(o.amounts.amount),
                "credit_amount": 0, "coupon_amount": 0, "flexipurchase_coupon_amount": 0,
                "stored_card_amount": 0, "bonus_amount": 0, "debt_amount": 0, "adjustment_amount": 0,
                "measure_id": 1,
                "period_type": match o.period { Some((3, _)) => 19, _ => 20 },
                "trade_id": o.id,
            })
        })
        .collect();
    Ok(Reply::Json(
        json!({ "total_count": total, "currency": "CNY", "monthly_records": records }),
    ))
}

/// `GET /v2/bills/customer-bills/monthly-sum?bill_cycle=` and the v1.0 path
/// (whose `{domain_id}` must be the caller's own account).
pub fn monthly_sum(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let in_path = ctx.path_param("domain_id").to_owned();
    if !in_path.is_empty() && in_path != ctx.account.domain_id {
        return Err(cbc(
            http::StatusCode::FORBIDDEN,
            "CBC.0151",
            "Access denied: the account in the path is not the caller's.",
        ));
    }
    let cycle = check_cycle(
        ctx.query("bill_cycle")
            .or_else(|| ctx.query("cycle"))
            .ok_or_else(|| cbc_param("bill_cycle is required"))?,
    )?;
    let prices = ctx.prices;
    let acct = ctx.acct();
    let mut by_service: Vec<(String, Decimal, Decimal)> = Vec::new();
    for o in billed(&acct.orders, &cycle) {
        match by_service
            .iter_mut()
            .find(|(s, _, _)| *s == o.service_type_code)
        {
            Some(row) => {
                row.1 += o.amounts.amount;
                row.2 += o.amounts.official;
            }
            None => by_service.push((
                o.service_type_code.clone(),
                o.amounts.amount,
                o.amounts.official,
            )),
        }
    }
    let total: Decimal = by_service.iter().map(|r| r.1).sum();
    let records: Vec<Value> = by_service
        .iter()
        .map(|(s, amount, official)| {
            json!({
                "bill_cycle": cycle,
                "service_type_code": s,
                "service_type_name": prices.service_name(s),
                "charging_mode": 1,
                "official_amount": num(*official),
                "official_discount_amount": num(*official - *amount),
                "consume_amount": num(*amount),
                "cash_amount": num(*amount),
                "debt_amount": 0,
                "measure_id": 1,
            })
        })
        .collect();
    Ok(Reply::Json(json!({
        "bill_sums": records,
        "consume_amount": num(total),
        "debt_amount": 0,
        "coupon_amount": 0,
        "flexipurchase_coupon_amount": 0,
        "stored_value_card_amount": 0,
        "cash_amount": num(total),
        "credit_amount": 0,
        "writeoff_amount": 0,
        "measure_id": 1,
        "currency": "CNY",
        "total_count": records.len(),
    })))
}

/// `POST /v4/costs/cost-analysed-bills/query` (§8.3): amounts as strings,
/// grouped by cloud service type per month.
pub fn costs(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let tc = ctx.field("time_condition")?.clone();
    let measure = tc.get("time_measure_id").and_then(Value::as_i64);
    let begin = tc.get("begin_time").and_then(Value::as_str).unwrap_or("");
    let end = tc.get("end_time").and_then(Value::as_str).unwrap_or("");
    if measure != Some(2) && measure != Some(1) {
        return Err(cbc_param(
            "time_condition.time_measure_id must be 1 (day) or 2 (month)",
        ));
    }
    if begin.is_empty() || end.is_empty() || begin > end {
        return Err(cbc_param(
            "time_condition.begin_time/end_time are required, begin <= end",
        ));
    }
    let _ = ctx.field("groupby")?;
    match ctx.required_str("cost_type")? {
        "ORIGINAL_COST" | "AMORTIZED_COST" => {}
        _ => {
            return Err(cbc_param(
                "cost_type must be ORIGINAL_COST or AMORTIZED_COST",
            ));
        }
    }
    match ctx.required_str("amount_type")? {
        "PAYMENT_AMOUNT" | "NET_AMOUNT" => {}
        _ => {
            return Err(cbc_param(
                "amount_type must be PAYMENT_AMOUNT or NET_AMOUNT",
            ));
        }
    }
    let (begin, end) = (
        begin[..begin.len().min(7)].to_owned(),
        end[..end.len().min(7)].to_owned(),
    );
    let acct = ctx.acct();
    // (service, cycle) -> (amount, official)
    let mut cells: Vec<(String, String, Decimal, Decimal)> = Vec::new();
    for o in acct.orders.iter().filter(|o| o.status == status::COMPLETED) {
        let Some(t) = o.payment_time else { continue };
        let c = cycle_of(t);
        if c < begin || c > end {
            continue;
        }
        match cells
            .iter_mut()
            .find(|x| x.0 == o.service_type_code && x.1 == c)
        {
            Some(x) => {
                x.2 += o.amounts.amount;
                x.3 += o.amounts.official;
            }
            None => cells.push((
                o.service_type_code.clone(),
                c,
                o.amounts.amount,
                o.amounts.official,
            )),
        }
    }
    let mut services: Vec<&str> = cells.iter().map(|c| c.0.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let data: Vec<Value> = services
        .iter()
        .map(|s| {
            let mine: Vec<&(String, String, Decimal, Decimal)> =
                cells.iter().filter(|c| c.0 == *s).collect();
            let amount: Decimal = mine.iter().map(|c| c.2).sum();
            let official: Decimal = mine.iter().map(|c| c.3).sum();
            json!({
                "dimensions": [{ "key": "CLOUD_SERVICE_TYPE", "value": s }],
                "costs": mine.iter().map(|c| json!({
                    "time_dimension_value": c.1,
                    "time_measure_id": 2,
                    "amount": money_str(c.2),
                    "official_amount": money_str(c.3),
                })).collect::<Vec<_>>(),
                "amount_by_costs": money_str(amount),
                "official_amount_by_costs": money_str(official),
            })
        })
        .collect();
    Ok(Reply::Json(
        json!({ "currency": "CNY", "total_count": data.len(), "cost_data": data }),
    ))
}

/// `POST /v2/enterprises/enterprise-projects/authority`: enables the
/// enterprise-project service (idempotent), 200 with an empty object.
pub fn enterprise_auth(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let _ = ctx;
    Ok(Reply::Json(json!({})))
}

/// `GET /v1.0/{domain_id}/payments/intl-invoices`: none issued.
pub fn intl_invoices(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    if ctx.path_param("domain_id") != ctx.account.domain_id {
        return Err(cbc(
            http::StatusCode::FORBIDDEN,
            "CBC.0151",
            "Access denied: the account in the path is not the caller's.",
        ));
    }
    Ok(Reply::Json(
        json!({ "total_count": 0, "invoice_infos": [] }),
    ))
}

/// `GET /v2/bases/measurements` (§9): the units the amounts refer to.
pub fn measure_units(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let _ = ctx;
    Ok(Reply::Json(json!({ "measure_units": [
        { "measure_id": 1, "measure_name": "元", "abbreviation": "yuan", "measure_type": 1 },
        { "measure_id": 2, "measure_name": "角", "abbreviation": "jiao", "measure_type": 1 },
        { "measure_id": 3, "measure_name": "分", "abbreviation": "fen", "measure_type": 1 },
        { "measure_id": 4, "measure_name": "小时", "abbreviation": "hour", "measure_type": 2 },
        { "measure_id": 14, "measure_name": "个", "abbreviation": "count", "measure_type": 4 },
        { "measure_id": 15, "measure_name": "Mbps", "abbreviation": "Mbps", "measure_type": 5 },
        { "measure_id": 17, "measure_name": "GB", "abbreviation": "GB", "measure_type": 3 },
    ]})))
}
